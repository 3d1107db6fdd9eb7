//! Priority 5: a reorg removes an anchoring block: the batch returns to soft, is anchored again,
//! and finalizes.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{account, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorged_anchor_returns_to_soft_is_reanchored_and_finalizes() {
    const W: u64 = 3;
    let mut env = Env::start(W).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws",
        env.url.trim_start_matches("http://")
    ))
    .await
    .unwrap();
    ws.send(Message::text(
        json!({"jsonrpc": "2.0", "id": 1, "method": "stint_subscribe", "params": ["finality"]})
            .to_string(),
    ))
    .await
    .unwrap();

    let bob = account(&env.keys[1]);
    let txid = env.transfer(0, 0, bob, 77).await;
    let r = env.wait_finality(&txid, "anchored").await;
    let number = r["batch"].as_u64().unwrap();
    let batch = env.call("stint_getBatch", json!([number])).await;
    let first_anchor = batch["anchor"].clone();
    let height = first_anchor["height"].as_u64().unwrap();

    // Reorg the anchoring block out.
    let client = env.node.client().clone();
    let hash = client.get_block_hash(height).await.unwrap();
    client.invalidate_block(&hash).await.unwrap();

    // The sequencer sees the batch leave the chain (soft), then anchors it again.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(seen.contains(&"soft".to_owned()) && seen.last() == Some(&"anchored".to_owned())) {
        assert!(Instant::now() < deadline, "events so far: {seen:?}");
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("no finality event")
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        if v["method"] == "stint_subscription" && v["params"]["result"]["batch"] == number {
            seen.push(v["params"]["result"]["status"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("anchored"),
        "{seen:?}"
    );

    let batch = env.call("stint_getBatch", json!([number])).await;
    assert_eq!(batch["status"], "anchored");
    let new_anchor = batch["anchor"].clone();
    let new_block = client
        .get_block_hash(new_anchor["height"].as_u64().unwrap())
        .await
        .unwrap();
    assert_ne!(new_block, hash, "anchored in a new block");

    // A fresh window: final W blocks after the new anchor.
    env.mine(W).await;
    let r = env.wait_finality(&txid, "final").await;
    assert_eq!(r["finality"], "final");
    assert_eq!(
        env.call("stint_getBatch", json!([number])).await["status"],
        "final"
    );
    assert_eq!(env.balance(1).await, crate::common::START_BALANCE + 77);
    env.shutdown().await;
}

/// Issue 13 §4: a reorg deeper than `l1_origin_depth` removes the L1 origin of an anchored
/// batch. Re-posting that batch could never be accepted again, so the sequencer rolls it back
/// on its own, seals its tx again on an origin of the new chain, and the tx ends final exactly
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_removing_the_l1_origin_reseals_the_batch_on_the_new_chain() {
    const W: u64 = 3;
    let mut env = Env::start(W).await;
    // An origin above the genesis start block (which no reorg may remove).
    let start = env.genesis.l1_start_height;
    env.advance(3).await;
    let bob = account(&env.keys[1]);
    let txid = env.transfer(0, 0, bob, 41).await;
    let r = env.wait_finality(&txid, "anchored").await;
    let number = r["batch"].as_u64().unwrap();
    let before = env.call("stint_getBatch", json!([number])).await;
    let origin = before["l1Origin"]["height"].as_u64().unwrap();
    assert!(origin > start, "{before}");
    assert!(
        before["anchor"]["height"].as_u64().unwrap() > origin,
        "{before}"
    );
    assert_eq!(env.metric("stint_sequencer_rollbacks_total").await, 0);

    // Take the origin block (and with it the anchoring block) away; the new chain is built by
    // another miner, so none of its blocks is the old origin.
    let client = env.node.client().clone();
    let origin_hash = client.get_block_hash(origin).await.unwrap();
    client.invalidate_block(&origin_hash).await.unwrap();
    env.mine(2).await;

    // Sealed again (a new header) and anchored on the new chain.
    // Between the rollback and the new seal the batch does not exist.
    let after = env
        .wait_batch(number, "re-sealed", |b| {
            b["hash"] != before["hash"] && b["status"] == "anchored"
        })
        .await;
    let r = env.wait_finality(&txid, "anchored").await;
    assert_eq!(r["batch"].as_u64(), Some(number), "{r}");
    let new_origin = client
        .get_block_hash(after["l1Origin"]["height"].as_u64().unwrap())
        .await
        .unwrap();
    assert_eq!(
        after["l1Origin"]["hash"].as_str().unwrap(),
        new_origin.to_string(),
        "the new origin is on the new chain"
    );
    assert!(env.metric("stint_sequencer_rollbacks_total").await >= 1);

    env.mine(W).await;
    let r = env.wait_finality(&txid, "final").await;
    assert_eq!(r["batch"].as_u64(), Some(number), "{r}");
    assert_eq!(env.balance(1).await, crate::common::START_BALANCE + 41);
    assert_eq!(env.balance(0).await, crate::common::START_BALANCE - 42);
    env.shutdown().await;
}
