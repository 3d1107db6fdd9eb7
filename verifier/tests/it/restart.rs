//! A verifier stopped and restarted resumes from its persisted progress.

use crate::common::{start_verifier, verified_number, wait_for, Net, Rollup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_persisted_progress() {
    let net = Net::start(&["v1"]).await;
    let mut rollup = Rollup::new(&net, 5).await;
    let config = net.verifier_config(&rollup, "v1", 0x51, "v1");
    let v = start_verifier(&net, config.clone()).await;
    for n in [3, 4, 5] {
        rollup.honest_batch(&net, n).await;
    }
    let before = wait_for(&v, "3 batches", |s| verified_number(s) == 3).await;
    v.stop().await.unwrap();

    // The chain moves on while the verifier is down.
    rollup.honest_batch(&net, 2).await;
    net.mine(2).await;
    let last = rollup.honest_batch(&net, 6).await;

    let v = start_verifier(&net, config).await;
    let s = wait_for(&v, "5 batches", |s| verified_number(s) == 5).await;
    assert_eq!(s.verified.unwrap().state_root, last.header().state_root);
    assert_eq!(s.canonical[2].record.hash, before.verified.unwrap().hash);
    // Batches 1..=3 were not replayed again: only 4 and 5 were.
    assert_eq!(v.metrics().batches_verified.get(), 2);
    assert!(s.challenges.is_empty());
    v.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitcoind_outage_is_survived() {
    let mut net = Net::start(&["v1"]).await;
    let mut rollup = Rollup::new(&net, 5).await;
    let v = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "v1")).await;
    rollup.honest_batch(&net, 2).await;
    wait_for(&v, "batch 1", |s| verified_number(s) == 1).await;

    net.node.stop().await.unwrap();
    let s = wait_for(&v, "the outage to show", |s| !s.bitcoind_ok).await;
    assert!(s.last_error.is_some());
    let health = reqwest::get(format!("http://{}/health", v.rpc_addr()))
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("bitcoind unreachable"),
        "{body}"
    );

    net.node.restart().await.unwrap();
    net.client().ensure_wallet("stint").await.unwrap();
    net.client().ensure_wallet("v1").await.unwrap();
    let last = rollup.honest_batch(&net, 3).await;
    let s = wait_for(&v, "batch 2 after the outage", |s| verified_number(s) == 2).await;
    assert!(s.bitcoind_ok);
    assert_eq!(s.verified.unwrap().state_root, last.header().state_root);
    v.stop().await.unwrap();
}
