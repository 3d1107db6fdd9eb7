//! Issue 13 §2 on a real node: a fraudulent segment at the segment budget's limit, paying
//! accounts whose keys were ground to share prefixes, is anchored; its fraud proof is built,
//! encoded, posted as a challenge and accepted by derivation reading the blocks back.

use bitcoin::hashes::Hash as _;
use k256::schnorr::SigningKey;
use stint_anchor::ChainFollower;
use stint_contracts::{account_key, AccountId, Call, Payment, SignedTx, Tx, MAX_PAYROLL_PAYMENTS};
use stint_protocol::{
    build_fraud_proof, segment_cost, trace_root, Batch, BatchBuilder, BuildParams, Derivation,
    DerivationEvent, Envelope, EnvelopeKind, Genesis, GenesisAlloc, IndexHint, Judge, L1Origin,
    ParentFacts, Verdict, SEGMENT_BUDGET,
};
use stint_state::{Key, MemoryNodeStore, SparseMerkleTree};

use crate::common::{sat_vb, sync, Harness};

const CHAIN_ID: u64 = 78;
/// Ground levels per payee beyond what the background accounts give (cheap enough for CI;
/// `protocol/tests/it/budget.rs` shows how the proof grows with the depth).
const GROUND: usize = 3;

fn shared_bits(a: &Key, b: &Key) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .map_or(256, |i| i * 8 + (a[i] ^ b[i]).leading_zeros() as usize)
}

fn id(tag: u8, a: u64, b: u64) -> AccountId {
    let mut id = [tag; 32];
    id[..8].copy_from_slice(&a.to_le_bytes());
    id[8..16].copy_from_slice(&b.to_le_bytes());
    AccountId(id)
}

fn grind(target: &Key, bits: usize, seed: u64) -> AccountId {
    (0u64..)
        .map(|n| id(0xee, seed * 1_000 + bits as u64, n))
        .find(|c| shared_bits(&account_key(c), target) == bits)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fraud_at_the_segment_budget_limit_is_challenged_and_accepted_on_regtest() {
    let h = Harness::start(&[]).await;
    let client = h.node.client().clone();
    let sequencer = h.anchorer(1);
    let watchtower = h.anchorer(2);

    let start_height = client.get_block_count().await.unwrap();
    let start_hash = client.get_block_hash(start_height).await.unwrap();
    let start_time = u64::from(h.block(&start_hash).await.header.time);
    let alice_key = SigningKey::from_bytes(&[1; 32]).unwrap();
    let alice = AccountId::from_signing_key(&alice_key);
    let mut alloc = vec![GenesisAlloc {
        account: alice,
        balance: 1_000_000,
    }];
    alloc.extend((0..1024).map(|n| GenesisAlloc {
        account: id(0xbb, n, 0),
        balance: 1,
    }));
    let payees: Vec<AccountId> = (0..MAX_PAYROLL_PAYMENTS as u64)
        .map(|n| id(0xaa, n, 0))
        .collect();
    for (seed, payee) in payees.iter().enumerate() {
        let target = account_key(payee);
        for bits in 10..10 + GROUND {
            alloc.push(GenesisAlloc {
                account: grind(&target, bits, seed as u64),
                balance: 1,
            });
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    alloc.retain(|a| seen.insert(a.account));
    let mut genesis = Genesis::new(
        CHAIN_ID,
        sequencer.key(),
        id(0x99, 0, 0),
        alloc,
        start_height,
        start_hash,
    );
    genesis.dispute_window = 6;
    let update = genesis.state_update().unwrap();
    let mut store = MemoryNodeStore::new();
    store.write(&update);

    // A full payroll to the ground payees, then transfers: the budget closes segment 1.
    let sign = |nonce: u64, call: Call| -> SignedTx {
        Tx {
            chain_id: CHAIN_ID,
            from: alice,
            nonce,
            fee: 1,
            call,
        }
        .sign(&alice_key)
        .unwrap()
    };
    let mut txs = vec![sign(
        0,
        Call::Payroll {
            payments: payees
                .iter()
                .map(|to| Payment { to: *to, amount: 7 })
                .collect(),
        },
    )];
    txs.extend((1..8).map(|n| {
        sign(
            n,
            Call::Transfer {
                to: payees[n as usize],
                amount: 11,
            },
        )
    }));
    let params = BuildParams {
        parent: ParentFacts::genesis(&genesis, update.root),
        timestamp: start_time,
        l1_origin: L1Origin {
            height: start_height,
            hash: start_hash.to_byte_array(),
        },
    };
    let sealed = BatchBuilder::new(&genesis)
        .build(&store, &params, txs.clone())
        .unwrap();
    for u in &sealed.updates {
        store.write(u);
    }
    let first = sealed.batch.segment_range(1).unwrap();
    assert!(segment_cost(&sealed.batch.txs()[first.clone()]) <= SEGMENT_BUDGET);
    assert!(segment_cost(&txs[..first.end + 1]) > SEGMENT_BUDGET);

    // The sequencer lies about checkpoint 1 and anchors the batch.
    let (mut header, mut checkpoints, body) = sealed.batch.clone().into_parts();
    checkpoints[0].state_root = [0x42; 32];
    header.trace_root = trace_root(&checkpoints);
    let fraudulent = Batch::new(header, checkpoints, body);
    fraudulent.check_body(&genesis).unwrap();
    let envelope = sequencer.batch_envelope(
        &genesis.hash(),
        fraudulent.hash(),
        fraudulent.encode().unwrap(),
    );
    let hint = IndexHint {
        kind: EnvelopeKind::Batch,
        number: 1,
        header_hash: fraudulent.hash(),
    };
    let posted = sequencer
        .post(&envelope, Some(hint), sat_vb(2))
        .await
        .unwrap();
    h.confirm(&sequencer, &posted).await;

    let mut derivation = Derivation::new(genesis.clone(), update.root);
    let mut follower = ChainFollower::from_height(client.clone(), start_height);
    sync(&mut follower, &mut derivation).await;
    assert_eq!(
        derivation.canonical().len(),
        1,
        "the fraudulent batch is anchored"
    );

    // A watchtower builds the proof from public data and its own replay, judges its bytes, and
    // posts them.
    let proof = build_fraud_proof(
        &genesis,
        &SparseMerkleTree::new(&store),
        &fraudulent,
        1,
        id(0x77, 0, 0),
    )
    .unwrap();
    let bytes = proof.encode().unwrap();
    assert!(bytes.len() as u64 <= segment_cost(&sealed.batch.txs()[first]));
    assert!(matches!(
        Judge::judge_bytes(&genesis, fraudulent.header(), &bytes).unwrap(),
        Verdict::Fraud(_)
    ));
    let challenge = Envelope::new(EnvelopeKind::Challenge, watchtower.key(), bytes);
    let hint = IndexHint {
        kind: EnvelopeKind::Challenge,
        number: 1,
        header_hash: fraudulent.hash(),
    };
    let posted = watchtower
        .post(&challenge, Some(hint), sat_vb(2))
        .await
        .unwrap();
    h.confirm(&watchtower, &posted).await;
    let events = sync(&mut follower, &mut derivation).await;
    assert!(
        events.iter().any(|e| matches!(
            e,
            DerivationEvent::ChallengeAccepted { btc_txid, batch: 1, .. } if *btc_txid == posted.reveal_txid
        )),
        "{events:?}"
    );
    assert!(
        derivation.canonical().is_empty(),
        "the batch is invalidated"
    );
}
