//! Priority 4: bitcoind stopped for a while and restarted: admission and sealing go on, no tx is
//! lost, and the backlog is anchored in order.

use std::time::{Duration, Instant};

use serde_json::json;
use stint_contracts::Call;

use crate::common::{account, Env, START_BALANCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitcoind_outage_backlog_is_anchored_in_order() {
    let mut env = Env::start(3).await;
    let bob = account(&env.keys[1]);
    let first = env
        .send(&env.sign(
            0,
            0,
            1,
            Call::Transfer {
                to: bob,
                amount: 10,
            },
        ))
        .await;
    env.wait_finality(&first, "anchored").await;
    let anchored_before = env.call("stint_syncStatus", json!([])).await["anchored"]["number"]
        .as_u64()
        .unwrap();

    env.node.stop().await.unwrap();
    // Admission and sealing continue: several batches while bitcoind is down.
    let mut backlog = Vec::new();
    for nonce in 1..=4u64 {
        let txid = env
            .send(&env.sign(
                0,
                nonce,
                1,
                Call::Transfer {
                    to: bob,
                    amount: 10,
                },
            ))
            .await;
        let r = env.wait_finality(&txid, "soft").await;
        backlog.push((txid, r["batch"].as_u64().unwrap()));
    }
    let batches: Vec<u64> = backlog.iter().map(|(_, b)| *b).collect();
    assert!(
        batches.windows(2).all(|w| w[0] < w[1]),
        "one batch each: {batches:?}"
    );
    // /health tells the truth: degraded (HTTP 503) with the reason.
    let response = env
        .http
        .get(format!("{}/health", env.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let health: serde_json::Value = response.json().await.unwrap();
    assert_eq!(health["bitcoind"], "down", "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("bitcoind unreachable"),
        "{health}"
    );
    let sync = env.call("stint_syncStatus", json!([])).await;
    assert_eq!(sync["anchored"]["number"], anchored_before);
    assert_eq!(sync["soft"]["number"], *batches.last().unwrap());
    for (txid, _) in &backlog {
        let r = env.call("stint_getReceipt", json!([txid])).await;
        assert_eq!(r["finality"], "soft", "{r}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    env.node.restart().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    for (txid, _) in &backlog {
        loop {
            let r = env.call("stint_getReceipt", json!([txid])).await;
            if r["finality"] == "anchored" || r["finality"] == "final" {
                break;
            }
            assert!(Instant::now() < deadline, "backlog not anchored: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // In order: each batch's anchor is no earlier than its predecessor's.
    let mut last = 0;
    for number in 1..=*batches.last().unwrap() {
        let b = env.call("stint_getBatch", json!([number])).await;
        let height = b["anchor"]["height"].as_u64().unwrap();
        assert!(
            height >= last,
            "batch {number} anchored before its parent: {b}"
        );
        last = height;
    }
    assert_eq!(env.balance(1).await, START_BALANCE + 50);
    assert_eq!(env.balance(0).await, START_BALANCE - 55);
    // Healthy again by itself once bitcoind is back.
    let response = env
        .http
        .get(format!("{}/health", env.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let health: serde_json::Value = response.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["problems"], json!([]), "{health}");
    env.shutdown().await;
}

/// Issue 13 §4: a sequencer started while bitcoind is down admits txs but seals none until it
/// knows its L1 origin's block time (a wall-clock guess could break the drift rule and leave a
/// batch derivation refuses); once bitcoind is back the tx is sealed, anchored and final once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_with_bitcoind_down_seals_only_once_bitcoin_is_known() {
    const W: u64 = 3;
    let mut env = Env::start(W).await;
    env.shutdown().await;
    env.node.stop().await.unwrap();
    env.restart_sequencer().await;

    let bob = account(&env.keys[1]);
    let txid = env
        .send(&env.sign(
            0,
            0,
            1,
            Call::Transfer {
                to: bob,
                amount: 12,
            },
        ))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = env.call("stint_getReceipt", json!([txid])).await;
    assert_eq!(
        r["finality"], "pending",
        "nothing sealed without Bitcoin: {r}"
    );
    let sync = env.call("stint_syncStatus", json!([])).await;
    assert_eq!(sync["soft"]["number"], 0, "{sync}");

    env.node.restart().await.unwrap();
    let r = env.wait_finality(&txid, "anchored").await;
    assert_eq!(r["batch"], 1, "{r}");
    env.mine(W).await;
    let r = env.wait_finality(&txid, "final").await;
    assert_eq!(r["batch"], 1, "{r}");
    assert_eq!(env.balance(1).await, START_BALANCE + 12);
    assert_eq!(env.balance(0).await, START_BALANCE - 13);
    env.shutdown().await;
}
