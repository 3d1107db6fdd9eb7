//! Challenges that must change nothing: one against an honest batch, and a valid proof anchored
//! after the window closed.

use stint_contracts::AccountId;
use stint_protocol::{build_fraud_proof, BatchStatus, Judge, Verdict};
use stint_state::SparseMerkleTree;
use stint_verifier::{replay_batch, ReplayVerdict};

use crate::common::{start_verifier, verified_number, wait_for, wait_synced, Net, Rollup};
use crate::forge;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_against_an_honest_batch_is_ignored() {
    let net = Net::start(&["v1"]).await;
    let mut rollup = Rollup::new(&net, 6).await;
    let v = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "v1")).await;
    let batch = rollup.honest_batch(&net, 6).await;
    wait_for(&v, "batch 1", |s| verified_number(s) == 1).await;

    // A well-formed proof against the honest segment 2: the judge finds no fraud.
    let tree = SparseMerkleTree::new(&rollup.store);
    let proof = build_fraud_proof(&rollup.genesis, &tree, &batch, 2, AccountId([3; 32])).unwrap();
    assert_eq!(
        Judge::judge(&rollup.genesis, batch.header(), &proof).unwrap(),
        Verdict::NoFraud
    );
    rollup
        .post_challenge(&net, crate::common::anchor_keypair_for(0x77), &proof)
        .await;
    let s = wait_synced(&net, &v).await;
    assert_eq!(verified_number(&s), 1);
    assert_eq!(s.verified.unwrap().state_root, batch.header().state_root);
    assert_eq!(s.canonical.len(), 1);
    assert!(s.invalidated.is_empty());
    assert!(
        s.challenges.is_empty(),
        "the verifier posted {:?}",
        s.challenges
    );
    assert_eq!(v.metrics().rollbacks.get(), 0);
    v.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_challenge_is_ignored() {
    let window = 4;
    let net = Net::start(&["v1"]).await;
    let mut rollup = Rollup::new(&net, window).await;
    rollup.honest_batch(&net, 3).await;

    // A fraudulent batch 2 that nobody challenges in time (no verifier is running).
    let txs = rollup.transfers(6, 10);
    let honest = rollup.build(&net, txs).await;
    let forged = forge::bad_state_root(&honest);
    rollup.post(&forged, &[]).await;
    net.mine(window).await;

    // A valid proof, anchored after the window closed.
    let ReplayVerdict::Fraud(fraud) = replay_batch(
        &rollup.genesis,
        &rollup.store,
        &forged,
        &[],
        AccountId([3; 32]),
    )
    .unwrap() else {
        panic!("the forged batch replays honest");
    };
    rollup
        .post_challenge(&net, crate::common::anchor_keypair_for(0x77), &fraud.proof)
        .await;

    // A verifier starting now finds the fraud, but can no longer challenge it; the late
    // challenge did not invalidate anything.
    let v = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "v1")).await;
    let s = wait_for(&v, "the fraud", |s| s.pending_fraud.is_some()).await;
    assert_eq!(s.pending_fraud.unwrap().0, 2);
    assert_eq!(verified_number(&s), 1);
    assert_eq!(s.canonical.len(), 2);
    assert_eq!(s.canonical[1].record.hash, forged.hash());
    assert_eq!(s.canonical[1].status, BatchStatus::Final);
    assert!(!s.canonical[1].verified);
    assert!(s.invalidated.is_empty());
    // Give it a few polls: it must not post a challenge that cannot count.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let s = wait_synced(&net, &v).await;
    assert!(s.challenges.is_empty(), "{:?}", s.challenges);
    v.stop().await.unwrap();
}
