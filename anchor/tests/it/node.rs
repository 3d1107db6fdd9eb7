//! RegtestNode lifecycle: restart, crash (SIGKILL) and re-attach, outages seen by the follower.

use stint_anchor::{ChainFollower, RegtestConfig, RegtestNode};

use crate::common::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_kill_and_reattach_keep_the_chain() {
    let mut h = Harness::start(&[]).await;
    let client = h.node.client().clone();
    let height = client.get_block_count().await.unwrap();
    let mut follower = ChainFollower::from_height(client.clone(), height);
    assert_eq!(follower.poll().await.unwrap().len(), 1);

    // Outage: the follower reports a transient error and keeps its state.
    h.node.stop().await.unwrap();
    let err = follower.poll().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(follower.tip().map(|t| t.0), Some(height));

    // Clean restart on the same data directory and ports; the cookie is re-read.
    h.node.restart().await.unwrap();
    assert_eq!(client.get_block_count().await.unwrap(), height);
    let wallet = client.ensure_wallet("stint").await.unwrap();
    assert_eq!(wallet.wallet(), Some("stint"));
    h.mine(2).await;
    assert_eq!(follower.poll().await.unwrap().len(), 2);

    // Crash, then a fresh RegtestNode attaches to the data directory left behind.
    let datadir = h.node.datadir().to_owned();
    h.node.kill().unwrap();
    assert!(!h.node.is_running());
    let mut config = RegtestConfig::new(&datadir);
    config.rpc_port = 0;
    let mut reattached = RegtestNode::start_with(config).await.unwrap();
    let height_after = reattached.client().get_block_count().await.unwrap();
    assert!(
        height_after >= height,
        "chain lost: {height_after} < {height}"
    );
    reattached.stop().await.unwrap();
    assert!(!reattached.is_running());
}
