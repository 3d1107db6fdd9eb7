//! Fault modes (for watchtower tests): each fraudulent batch passes every structural check of
//! derivation (it is anchored) and only replay finds the fraud.

use futures_util::future::join_all;
use serde_json::json;
use stint_contracts::{execute_batch, Call};
use stint_protocol::{block_context, Batch, BatchBuilder};
use stint_sequencer::{FaultConfig, FaultMode};
use stint_state::{MemoryNodeStore, SparseMerkleTree};

use crate::common::{account, Env, START_BALANCE};

/// Replay every sealed batch honestly from genesis; the number of the first fraudulent one.
async fn first_fraud(env: &Env) -> Option<(u64, Batch)> {
    let head = env.call("stint_syncStatus", json!([])).await["soft"]["number"]
        .as_u64()
        .unwrap();
    let genesis = &env.genesis;
    let update = genesis.state_update().unwrap();
    let mut tree = SparseMerkleTree::new(MemoryNodeStore::new());
    tree.store_mut().write(&update);
    let mut root = update.root;
    for n in 1..=head {
        let b = env.call("stint_getBatch", json!([n, {"raw": true}])).await;
        assert_eq!(
            b["status"], "anchored",
            "derivation accepted batch {n}: {b}"
        );
        let batch = Batch::decode(&hex::decode(b["raw"].as_str().unwrap()).unwrap()).unwrap();
        let replay = BatchBuilder::new(genesis)
            .replay(tree.store(), &batch)
            .unwrap();
        if replay.fraud_segment.is_some() {
            return Some((n, batch));
        }
        let ctx = block_context(genesis, batch.header());
        let k = genesis.checkpoint_interval as usize;
        let outcome = execute_batch(tree.view(root), &ctx, batch.txs(), k).unwrap();
        let update = tree.apply(&root, &outcome.changes()).unwrap();
        tree.store_mut().write(&update);
        root = update.root;
        assert_eq!(root, batch.header().state_root, "honest batch {n}");
    }
    None
}

async fn run(mode: FaultMode) {
    let mut env = Env::start_with(
        3,
        Some(FaultConfig {
            mode,
            batch: 1,
            account: None,
        }),
    )
    .await;
    let bob = account(&env.keys[1]);
    let txs: Vec<_> = match mode {
        // Two segments (K = 4) are needed for an intermediate checkpoint.
        FaultMode::BadCheckpoint => (0..10)
            .map(|n| env.sign(0, n, 1, Call::Transfer { to: bob, amount: 1 }))
            .collect(),
        FaultMode::Overdraft => vec![env.sign(
            0,
            0,
            1,
            Call::Transfer {
                to: bob,
                amount: 3 * START_BALANCE,
            },
        )],
        _ => vec![env.sign(0, 0, 1, Call::Transfer { to: bob, amount: 5 })],
    };
    let txids = join_all(txs.iter().map(|tx| env.send(tx))).await;
    for txid in &txids {
        env.wait_finality(txid, "anchored").await;
    }
    let (number, batch) = first_fraud(&env).await.expect("a fraudulent batch");
    assert!(number >= 1);
    match mode {
        FaultMode::InvalidSignature => {
            assert!(batch.txs().iter().any(|t| !t.verify()), "a bad signature");
        }
        FaultMode::Overdraft => {
            // Only the anchored header lies (replay found it above); the sequencer's own state
            // and receipts stay honest: the transfer failed and only its fee was paid.
            let r = env.call("stint_getReceipt", json!([txids[0]])).await;
            assert_eq!(r["status"], "failed", "{r}");
            assert_eq!(r["error"], "insufficientBalance", "{r}");
            assert_eq!(env.balance(1).await, START_BALANCE);
            assert_eq!(env.balance(0).await, START_BALANCE - 1);
        }
        FaultMode::BadCheckpoint => assert!(batch.checkpoints().len() >= 2),
        FaultMode::BadStateRoot => {}
        FaultMode::Censor => unreachable!("censoring is not a fraud replay catches"),
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_state_root_is_anchored_and_caught_only_by_replay() {
    run(FaultMode::BadStateRoot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_checkpoint_is_anchored_and_caught_only_by_replay() {
    run(FaultMode::BadCheckpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_signature_is_anchored_and_caught_only_by_replay() {
    run(FaultMode::InvalidSignature).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdraft_is_anchored_and_caught_only_by_replay() {
    run(FaultMode::Overdraft).await;
}
