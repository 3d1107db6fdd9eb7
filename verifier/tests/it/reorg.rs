//! Reorgs: one that removes a verified batch (the state rolls back, and forward again when the
//! block returns), and one that removes the verifier's accepted challenge (the fraudulent batch
//! comes back and the verifier challenges it again).

use stint_verifier::ChallengeStatus;

use crate::common::{start_verifier, verified_number, wait_for, wait_synced, Net, Rollup};
use crate::forge;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_removing_a_verified_batch_rolls_back_and_forward() {
    let net = Net::start(&["v1"]).await;
    let mut rollup = Rollup::new(&net, 6).await;
    let v = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "v1")).await;
    let first = rollup.honest_batch(&net, 3).await;
    let second = rollup.honest_batch(&net, 5).await;
    let s = wait_for(&v, "2 batches", |s| verified_number(s) == 2).await;
    let anchor_block = s.canonical[1].record.anchor.block_hash;

    net.client().invalidate_block(&anchor_block).await.unwrap();
    let s = wait_for(&v, "the rollback", |s| verified_number(s) == 1).await;
    assert_eq!(s.verified.unwrap().state_root, first.header().state_root);
    assert_eq!(s.canonical.len(), 1);

    net.client().reconsider_block(&anchor_block).await.unwrap();
    let s = wait_for(&v, "batch 2 again", |s| verified_number(s) == 2).await;
    assert_eq!(s.verified.unwrap().state_root, second.header().state_root);
    assert!(s.challenges.is_empty());
    v.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_removing_the_challenge_makes_the_verifier_challenge_again() {
    let net = Net::start(&["v1"]).await;
    let mut rollup = Rollup::new(&net, 8).await;
    let v = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "v1")).await;
    let first = rollup.honest_batch(&net, 3).await;
    wait_for(&v, "batch 1", |s| verified_number(s) == 1).await;
    let txs = rollup.transfers(6, 10);
    let honest = rollup.build(&net, txs).await;
    let forged = forge::bad_state_root(&honest);
    rollup.post(&forged, &[]).await;
    let s = wait_for(&v, "an accepted challenge", |s| {
        s.challenges
            .iter()
            .any(|c| c.status == ChallengeStatus::Accepted)
            && s.canonical.len() == 1
    })
    .await;
    let challenge_tx = s.challenges[0].btc_txid;

    // Remove the block carrying the challenge: the forged batch is canonical again.
    let fee_wallet = net.client().ensure_wallet("v1").await.unwrap();
    let block = fee_wallet
        .get_transaction(&challenge_tx)
        .await
        .unwrap()
        .block_hash
        .unwrap();
    net.client().invalidate_block(&block).await.unwrap();

    // The verifier notices and gets a challenge accepted again.
    let s = wait_for(&v, "a challenge accepted on the new chain", |s| {
        s.l1.is_some_and(|(_, hash)| hash != block)
            && s.invalidated.iter().any(|b| b.record.hash == forged.hash())
            && s.challenges
                .iter()
                .any(|c| c.status == ChallengeStatus::Accepted)
    })
    .await;
    assert_eq!(verified_number(&s), 1);
    assert_eq!(s.verified.unwrap().state_root, first.header().state_root);
    let s = wait_synced(&net, &v).await;
    assert!(s.pending_fraud.is_none());
    v.stop().await.unwrap();
}
