//! Issue 13 §4: the sequencer's chain follows derivation's canonical chain when a reorg changes
//! which envelope holds a slot: reveals mined out of order on a miner's side chain, an accepted
//! challenge reorged out, and an old envelope of ours taking its slot back. Each is built from
//! public data only (the envelopes and the challenge are on Bitcoin) and ends with every tx
//! final exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{Block, BlockHash, FeeRate, Network, Transaction, Txid};
use serde_json::{json, Value};
use stint_anchor::{Anchorer, BitcoindClient, RegtestConfig, RegtestNode};
use stint_contracts::{AccountId, Call};
use stint_protocol::{
    build_fraud_proof, Batch, BatchBuilder, BuildParams, Envelope, EnvelopeKind, FraudProof,
    Genesis, L1Origin, ParentFacts,
};
use stint_sequencer::{FaultConfig, FaultMode};
use stint_state::{MemoryNodeStore, SparseMerkleTree};

use crate::common::{account, Env, START_BALANCE};

async fn submit_block(client: &BitcoindClient, block: &Block) {
    let r: Value = client
        .call("submitblock", json!([serialize_hex(block)]))
        .await
        .unwrap();
    assert!(r.is_null() || r == "inconclusive", "submitblock: {r}");
}

/// A miner's side chain: a second node copies the main chain up to `fork`, mines one block per
/// entry of `blocks` (raw txs, only consensus rules apply), and the whole branch is handed to
/// the main node only once complete, so the main node switches to it in one step.
async fn publish_side_chain(env: &Env, fork: u64, blocks: &[Vec<Transaction>]) -> Vec<BlockHash> {
    let dir = tempfile::tempdir().unwrap();
    let side = RegtestNode::start_with(RegtestConfig::new(dir.path().join("bitcoind")))
        .await
        .unwrap();
    let main = env.node.client();
    for height in 1..=fork {
        let block = main
            .get_block(&main.get_block_hash(height).await.unwrap())
            .await
            .unwrap();
        submit_block(side.client(), &block).await;
    }
    let to = env.wallet.get_new_address(Network::Regtest).await.unwrap();
    let mut hashes = Vec::new();
    for txs in blocks {
        let raw: Vec<&Transaction> = txs.iter().collect();
        hashes.push(side.client().generate_block(&to, &[], &raw).await.unwrap());
    }
    for hash in &hashes {
        submit_block(main, &side.client().get_block(hash).await.unwrap()).await;
    }
    assert_eq!(
        main.get_best_block_hash().await.unwrap(),
        *hashes.last().unwrap(),
        "the main node did not switch to the side chain"
    );
    hashes
}

fn reveal_of(batch: &Value) -> Txid {
    batch["anchor"]["btcTxid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A miner reorgs the chain and mines batch 2's reveal before batch 1's: derivation refuses
/// batch 2 there (its parent is not canonical yet) and accepts batch 1 a block later. The
/// sequencer posts batch 2 anew, unchanged, and both txs end final once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveals_mined_out_of_order_by_a_reorg_are_posted_anew() {
    const W: u64 = 3;
    let mut env = Env::start(W).await;
    let client = env.node.client().clone();
    let bob = account(&env.keys[1]);
    let first = env.transfer(0, 0, bob, 5).await;
    env.wait_finality(&first, "anchored").await;
    let one = env.call("stint_getBatch", json!([1])).await;
    let reveal_one = reveal_of(&one);
    // Batch 1's reveal pays its postage to the wallet; keep that output from funding batch 2's
    // commit, so that a miner may order the two reveals either way.
    let locked: bool = env
        .wallet
        .call(
            "lockunspent",
            json!([false, [{"txid": reveal_one.to_string(), "vout": 0}]]),
        )
        .await
        .unwrap();
    assert!(locked);
    let second = env.transfer(0, 1, bob, 6).await;
    let r = env.wait_finality(&second, "anchored").await;
    assert_eq!(r["batch"], 2, "{r}");
    let two = env.call("stint_getBatch", json!([2])).await;
    let reveal_two = reveal_of(&two);
    let h1 = one["anchor"]["height"].as_u64().unwrap();
    let h2 = two["anchor"]["height"].as_u64().unwrap();
    assert!(h2 > h1, "{one}\n{two}");
    let fork = h1 - 1;
    assert!(
        two["l1Origin"]["height"].as_u64().unwrap() <= fork,
        "batch 2's origin must survive the reorg: {two}"
    );

    // The side chain holds every tx of the replaced blocks, but batch 1's reveal (and whatever
    // spends it) one block later than batch 2's reveal.
    let tip = client.get_block_count().await.unwrap();
    let (mut early, mut late) = (Vec::new(), Vec::new());
    let mut late_ids = HashSet::from([reveal_one]);
    for height in h1..=tip {
        let block = client
            .get_block(&client.get_block_hash(height).await.unwrap())
            .await
            .unwrap();
        for tx in block.txdata.into_iter().skip(1) {
            let txid = tx.compute_txid();
            if txid == reveal_one
                || tx
                    .input
                    .iter()
                    .any(|i| late_ids.contains(&i.previous_output.txid))
            {
                late_ids.insert(txid);
                late.push(tx);
            } else {
                early.push(tx);
            }
        }
    }
    assert!(!late_ids.contains(&reveal_two));
    assert!(early.iter().any(|tx| tx.compute_txid() == reveal_two));
    let mut blocks = vec![early, late];
    while (blocks.len() as u64) < tip - fork + 1 {
        blocks.push(Vec::new());
    }
    assert_eq!(
        env.metric("stint_sequencer_envelopes_rejected_total").await,
        0
    );
    publish_side_chain(&env, fork, &blocks).await;

    // Batch 2 anchored again, the same batch in a new envelope.
    let after = env
        .wait_batch(2, "posted anew", |b| {
            b["status"] == "anchored" && b["anchor"]["btcTxid"] != two["anchor"]["btcTxid"]
        })
        .await;
    assert_eq!(after["hash"], two["hash"], "{after}");
    assert_eq!(
        env.call("stint_getBatch", json!([1])).await["hash"],
        one["hash"]
    );
    assert!(env.metric("stint_sequencer_envelopes_rejected_total").await >= 1);
    assert_eq!(env.metric("stint_sequencer_rollbacks_total").await, 0);

    env.mine(W).await;
    for txid in [&first, &second] {
        env.wait_finality(txid, "final").await;
    }
    assert_eq!(env.balance(1).await, START_BALANCE + 11);
    assert_eq!(env.balance(0).await, START_BALANCE - 13);
    env.shutdown().await;
}

/// The fraud proof against batch 1 (replayed from genesis), naming a third party.
fn fraud_proof(genesis: &Genesis, batch: &Batch) -> FraudProof {
    let update = genesis.state_update().unwrap();
    let mut tree = SparseMerkleTree::new(MemoryNodeStore::new());
    tree.store_mut().write(&update);
    let replay = BatchBuilder::new(genesis)
        .replay(tree.store(), batch)
        .unwrap();
    let segment = replay.fraud_segment.expect("batch 1 replays honest");
    build_fraud_proof(genesis, &tree, batch, segment, AccountId([3; 32])).unwrap()
}

/// A watchtower convicts batch 1; the sequencer rolls it back and seals its tx again. A reorg
/// then removes the challenge: derivation reinstates the convicted batch, and the sequencer
/// restores it from the batches it parked (instead of halting on a batch it does not hold).
/// When anyone mines the public challenge again, the batch is rolled back again and the tx
/// ends final exactly once, in an honest batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_removing_an_accepted_challenge_restores_the_convicted_batch() {
    const W: u64 = 6;
    let fault = FaultConfig {
        mode: FaultMode::BadStateRoot,
        batch: 1,
        account: None,
    };
    let mut env = Env::start_with(W, Some(fault)).await;
    let client = env.node.client().clone();
    let bob = account(&env.keys[1]);
    let txid = env.transfer(0, 0, bob, 23).await;
    let r = env.wait_finality(&txid, "anchored").await;
    assert_eq!(r["batch"], 1, "{r}");
    let raw = env.call("stint_getBatch", json!([1, {"raw": true}])).await;
    let convicted = Batch::decode(&hex::decode(raw["raw"].as_str().unwrap()).unwrap()).unwrap();
    let convicted_hash = hex::encode(convicted.hash());
    let proof = fraud_proof(&env.genesis, &convicted);

    // The challenge, under a watchtower's own key, in a block of its own.
    let before = client.get_block_count().await.unwrap();
    let secret = SecretKey::from_slice(&[0x77; 32]).unwrap();
    let watchtower = Anchorer::new(
        env.wallet.clone(),
        Keypair::from_secret_key(&Secp256k1::new(), &secret),
        Network::Regtest,
    );
    let envelope = Envelope::new(
        EnvelopeKind::Challenge,
        watchtower.key(),
        proof.encode().unwrap(),
    );
    let challenge = watchtower
        .post(&envelope, None, FeeRate::from_sat_per_vb_u32(2))
        .await
        .unwrap();
    if watchtower
        .confirmations(&challenge.reveal_txid)
        .await
        .unwrap()
        < 1
    {
        env.mine(1).await;
    }
    let challenge_block = client.get_block_hash(before + 1).await.unwrap();

    let resealed = env
        .wait_batch(1, "re-sealed after the challenge", |b| {
            b["hash"] != convicted_hash.as_str() && b["status"] == "anchored"
        })
        .await;
    assert!(env.metric("stint_sequencer_rollbacks_total").await >= 1);
    assert_eq!(
        env.metric("stint_sequencer_batches_restored_total").await,
        0
    );

    // The challenge's block (and the re-sealed batch's anchor after it) leaves the chain.
    client.invalidate_block(&challenge_block).await.unwrap();
    env.wait_batch(1, "restored", |b| b["hash"] == convicted_hash.as_str())
        .await;
    assert!(env.metric("stint_sequencer_batches_restored_total").await >= 1);
    assert_eq!(env.metric("stint_sequencer_waiting_for_batch").await, 0);
    let r = env.call("stint_getReceipt", json!([txid])).await;
    assert_eq!(r["batch"], 1, "{r}");

    // Anyone can mine the public challenge again.
    let to = env.wallet.get_new_address(Network::Regtest).await.unwrap();
    client
        .generate_block(&to, &[], &[&challenge.commit, &challenge.reveal])
        .await
        .unwrap();
    let honest = env
        .wait_batch(1, "re-sealed after the challenge came back", |b| {
            b["hash"] != convicted_hash.as_str() && b["status"] == "anchored"
        })
        .await;
    assert_eq!(honest["stateRoot"], resealed["stateRoot"], "{honest}");
    env.mine(W).await;
    let r = env.wait_finality(&txid, "final").await;
    assert_eq!(r["batch"], 1, "{r}");
    assert_eq!(env.balance(1).await, START_BALANCE + 23);
    assert_eq!(env.balance(0).await, START_BALANCE - 24);
    env.shutdown().await;
}

/// A reorg removes batch 1's L1 origin, so the sequencer re-seals it on the new chain; then the
/// old chain comes back, and with it batch 1's first envelope, which takes the slot again. The
/// sequencer restores that batch from the ones it parked and the tx ends final once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_envelope_taking_its_slot_back_restores_its_batch() {
    const W: u64 = 3;
    let mut env = Env::start(W).await;
    let client = env.node.client().clone();
    // An origin above the genesis start block (which no reorg may remove).
    env.advance(3).await;
    let bob = account(&env.keys[1]);
    let txid = env.transfer(0, 0, bob, 19).await;
    env.wait_finality(&txid, "anchored").await;
    let first = env.call("stint_getBatch", json!([1])).await;
    let origin = first["l1Origin"]["height"].as_u64().unwrap();
    assert!(origin > env.genesis.l1_start_height, "{first}");
    let origin_hash = client.get_block_hash(origin).await.unwrap();
    let old_tip = client.get_best_block_hash().await.unwrap();

    // Chain B: without the origin, batch 1 is re-sealed and anchored anew.
    client.invalidate_block(&origin_hash).await.unwrap();
    env.mine(2).await;
    let second = env
        .wait_batch(1, "re-sealed on the new chain", |b| {
            b["hash"] != first["hash"] && b["status"] == "anchored"
        })
        .await;
    assert_eq!(
        env.metric("stint_sequencer_batches_restored_total").await,
        0
    );

    // Chain A again, in one step: its first envelope holds slot 1.
    let b_first = client.get_block_hash(origin).await.unwrap();
    client.reconsider_block(&origin_hash).await.unwrap();
    client.invalidate_block(&b_first).await.unwrap();
    assert_eq!(client.get_best_block_hash().await.unwrap(), old_tip);
    let back = env
        .wait_batch(1, "restored", |b| {
            b["hash"] == first["hash"] && b["status"] == "anchored"
        })
        .await;
    assert_ne!(back["hash"], second["hash"]);
    assert!(env.metric("stint_sequencer_batches_restored_total").await >= 1);
    assert_eq!(env.metric("stint_sequencer_waiting_for_batch").await, 0);

    env.mine(W).await;
    let r = env.wait_finality(&txid, "final").await;
    assert_eq!(r["batch"], 1, "{r}");
    assert_eq!(env.balance(1).await, START_BALANCE + 19);
    assert_eq!(env.balance(0).await, START_BALANCE - 20);
    env.shutdown().await;
}

/// Another process holding the sequencer's anchor key (a second sequencer started by mistake,
/// or a leaked key) anchors a valid batch 1 of its own. Derivation accepts it; this sequencer
/// cannot link anything to a batch it never held, so it stops anchoring and says so (gauge and
/// `stint_syncStatus`) instead of posting envelopes derivation would refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_under_our_key_from_another_process_pauses_anchoring_visibly() {
    const W: u64 = 3;
    let mut env = Env::start(W).await;
    let client = env.node.client().clone();

    // The other process: a valid batch 1 of user 3's transfer, under the genesis anchor key.
    let update = env.genesis.state_update().unwrap();
    let mut store = MemoryNodeStore::new();
    store.write(&update);
    let height = client.get_block_count().await.unwrap();
    let hash = client.get_block_hash(height).await.unwrap();
    let time = u64::from(client.get_block(&hash).await.unwrap().header.time);
    let params = BuildParams {
        parent: ParentFacts::genesis(&env.genesis, update.root),
        timestamp: time,
        l1_origin: L1Origin {
            height,
            hash: bitcoin::hashes::Hash::to_byte_array(hash),
        },
    };
    let bob = account(&env.keys[1]);
    let theirs = BatchBuilder::new(&env.genesis)
        .build(
            &store,
            &params,
            vec![env.sign(2, 0, 1, Call::Transfer { to: bob, amount: 3 })],
        )
        .unwrap();
    assert!(theirs.rejected.is_empty(), "{:?}", theirs.rejected);
    let secret = SecretKey::from_slice(&[0x42; 32]).unwrap();
    let other = Anchorer::new(
        env.wallet.clone(),
        Keypair::from_secret_key(&Secp256k1::new(), &secret),
        Network::Regtest,
    );
    assert_eq!(other.key(), env.genesis.anchor_key);
    let envelope = other.batch_envelope(
        &env.genesis.hash(),
        theirs.batch.hash(),
        theirs.batch.encode().unwrap(),
    );
    let posted = other
        .post(&envelope, None, FeeRate::from_sat_per_vb_u32(2))
        .await
        .unwrap();
    if other.confirmations(&posted.reveal_txid).await.unwrap() < 1 {
        env.mine(1).await;
    }
    env.advance(0).await;

    // Our sequencer seals its own batch 1 for a new tx, and must not anchor it.
    let txid = env.transfer(0, 0, bob, 4).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.metric("stint_sequencer_waiting_for_batch").await != 1 {
        assert!(Instant::now() < deadline, "{}", env.metrics().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = env.call("stint_syncStatus", json!([])).await;
    assert!(
        status
            .to_string()
            .contains(&hex::encode(theirs.batch.hash())),
        "the reason names the batch: {status}"
    );
    let tip = client.get_block_count().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        client.get_block_count().await.unwrap(),
        tip,
        "nothing was posted"
    );
    let r = env.call("stint_getReceipt", json!([txid])).await;
    assert_eq!(r["finality"], "soft", "{r}");
    env.shutdown().await;
}
