//! One test per fault kind: the verifier detects the forged batch, its challenge confirms inside
//! the window, derivation invalidates the batch and the verifier rolls back; the sequencer's
//! honest re-execution then verifies to the honest root.

use stint_contracts::Call;
use stint_verifier::ChallengeStatus;

use crate::common::{start_verifier, verified_number, wait_for, Net, Rollup, START_BALANCE};
use crate::forge;

#[derive(Clone, Copy, Debug)]
enum Fault {
    BadStateRoot,
    BadCheckpoint,
    InvalidSignature,
    Overdraft,
}

async fn fault_is_challenged_and_rolled_back(fault: Fault) {
    let net = Net::start(&["v1"]).await;
    let mut rollup = Rollup::new(&net, 6).await;
    let v = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "v1")).await;

    let first = rollup.honest_batch(&net, 5).await;
    wait_for(&v, "batch 1", |s| verified_number(s) == 1).await;

    // Batch 2: 9 transfers (segments of 4, 4, 1), plus an overdraft for that fault.
    let parent = rollup.parent;
    let nonces = rollup.nonces.clone();
    let mut txs = rollup.transfers(9, 250);
    if let Fault::Overdraft = fault {
        let to = rollup.users[5].1;
        txs.push(rollup.tx(
            0,
            Call::Transfer {
                to,
                amount: START_BALANCE * 10,
            },
        ));
    }
    let honest = rollup.build(&net, txs).await;
    let forged = match fault {
        Fault::BadStateRoot => forge::bad_state_root(&honest),
        Fault::BadCheckpoint => forge::bad_checkpoint(&honest, 1),
        Fault::InvalidSignature => forge::invalid_signature(&honest, 5),
        Fault::Overdraft => forge::overdraft(&honest, &rollup.store),
    };
    assert_ne!(forged, honest.batch);
    rollup.post(&forged, &[]).await;
    let anchored_at = net.tip().await;

    // Detected, challenged, accepted; the verifier is back on batch 1.
    let s = wait_for(&v, "an accepted challenge", |s| {
        s.challenges
            .iter()
            .any(|c| c.status == ChallengeStatus::Accepted)
    })
    .await;
    let s = if s.canonical.len() == 1 {
        s
    } else {
        wait_for(&v, "the rollback", |s| s.canonical.len() == 1).await
    };
    assert_eq!(s.challenges.len(), 1, "{:?}", s.challenges);
    let challenge = &s.challenges[0];
    assert_eq!(challenge.batch, 2);
    assert_eq!(challenge.batch_hash, hex::encode(forged.hash()));
    assert_eq!(verified_number(&s), 1);
    assert_eq!(s.verified.unwrap().state_root, first.header().state_root);
    assert!(s.pending_fraud.is_none());
    assert!(s.invalidated.iter().any(|b| b.record.hash == forged.hash()));
    let (l1_height, _) = s.l1.unwrap();
    assert!(
        l1_height < anchored_at + rollup.genesis.dispute_window,
        "challenge landed at {l1_height}, window of batch anchored at {anchored_at}"
    );

    // The sequencer re-executes batch 2 honestly from batch 1.
    rollup.rewind_to(parent, nonces);
    rollup.post(&honest.batch, &honest.updates).await;
    let s = wait_for(&v, "the honest batch 2", |s| verified_number(s) == 2).await;
    assert_eq!(
        s.verified.unwrap().state_root,
        honest.batch.header().state_root
    );
    assert_eq!(s.verified.unwrap().hash, honest.batch.hash());
    assert_eq!(s.challenges.len(), 1);
    v.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_state_root_is_challenged() {
    fault_is_challenged_and_rolled_back(Fault::BadStateRoot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_checkpoint_is_challenged() {
    fault_is_challenged_and_rolled_back(Fault::BadCheckpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_signature_is_challenged() {
    fault_is_challenged_and_rolled_back(Fault::InvalidSignature).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdraft_is_challenged() {
    fault_is_challenged_and_rolled_back(Fault::Overdraft).await;
}
