//! Catch-up from scratch against a long chain of small batches.

use crate::common::{start_verifier, verified_number, wait_for, Net, Rollup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_up_from_scratch_on_many_batches() {
    const BATCHES: usize = 120;
    let net = Net::start(&["v1"]).await;
    let mut rollup = Rollup::new(&net, 4).await;
    let mut last = None;
    for i in 0..BATCHES {
        last = Some(rollup.honest_batch(&net, 1 + i % 3).await);
    }
    let last = last.unwrap();

    let v = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "v1")).await;
    let s = wait_for(&v, "every batch", |s| verified_number(s) == BATCHES as u64).await;
    assert_eq!(s.verified.unwrap().state_root, last.header().state_root);
    assert!(s.challenges.is_empty());
    assert!(s.canonical.iter().all(|b| b.verified));
    v.stop().await.unwrap();
}
