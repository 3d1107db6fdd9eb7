//! Two verifiers watch the same chain: both detect the fraud; the first valid challenge wins and
//! anything after it changes nothing.

use stint_verifier::ChallengeStatus;

use crate::common::{start_verifier, verified_number, wait_for, Net, Rollup};
use crate::forge;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_valid_challenge_wins() {
    let net = Net::start(&["v1", "v2"]).await;
    let mut rollup = Rollup::new(&net, 6).await;
    let v1 = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "v1")).await;
    let v2 = start_verifier(&net, net.verifier_config(&rollup, "v2", 0x52, "v2")).await;
    let first = rollup.honest_batch(&net, 4).await;
    for v in [&v1, &v2] {
        wait_for(v, "batch 1", |s| verified_number(s) == 1).await;
    }

    let parent = rollup.parent;
    let nonces = rollup.nonces.clone();
    let txs = rollup.transfers(7, 20);
    let honest = rollup.build(&net, txs).await;
    let forged = forge::bad_checkpoint(&honest, 1);
    rollup.post(&forged, &[]).await;

    let mut accepted = Vec::new();
    for v in [&v1, &v2] {
        let s = wait_for(v, "the invalidation", |s| {
            s.invalidated.iter().any(|b| b.record.hash == forged.hash())
                && s.challenges.iter().all(|c| {
                    matches!(
                        c.status,
                        ChallengeStatus::Accepted | ChallengeStatus::Rejected
                    )
                })
        })
        .await;
        assert_eq!(verified_number(&s), 1);
        assert_eq!(s.verified.unwrap().state_root, first.header().state_root);
        assert!(s.pending_fraud.is_none());
        accepted.extend(
            s.challenges
                .iter()
                .filter(|c| c.status == ChallengeStatus::Accepted)
                .map(|c| c.btc_txid),
        );
    }
    assert_eq!(
        accepted.len(),
        1,
        "exactly one challenge wins: {accepted:?}"
    );

    // Both follow the honest re-execution to the same root.
    rollup.rewind_to(parent, nonces);
    rollup.post(&honest.batch, &honest.updates).await;
    for v in [&v1, &v2] {
        let s = wait_for(v, "the honest batch 2", |s| verified_number(s) == 2).await;
        assert_eq!(
            s.verified.unwrap().state_root,
            honest.batch.header().state_root
        );
    }
    v1.stop().await.unwrap();
    v2.stop().await.unwrap();
}
