//! A fraud whose challenge cannot be posted is loud until it can: the verifier's fee wallet is
//! empty when a forged batch lands, so every post fails; `stint_verifierStatus` shows the alert
//! (stage, reason, blocks left), the metrics say so, and once the wallet is funded the
//! challenge is posted, accepted, and the alert clears.

use bitcoin::Network;
use serde_json::{json, Value};
use stint_verifier::{ChallengeStage, ChallengeStatus};

use crate::common::{metrics, rpc, start_verifier, verified_number, wait_for, Net, Rollup};
use crate::forge;

/// The value of metric `name` in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|line| {
            let (n, value) = line.split_once(' ')?;
            (n == name).then(|| value.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_that_cannot_be_posted_alerts_until_it_is_posted() {
    let window = 12;
    // No funded verifier wallet: "poor" is created empty by the verifier itself.
    let net = Net::start(&[]).await;
    let mut rollup = Rollup::new(&net, window).await;
    let v = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "poor")).await;
    rollup.honest_batch(&net, 5).await;
    wait_for(&v, "batch 1", |s| verified_number(s) == 1).await;

    let txs = rollup.transfers(9, 250);
    let honest = rollup.build(&net, txs).await;
    let forged = forge::bad_state_root(&honest);
    rollup.post(&forged, &[]).await;
    let anchored_at = net.tip().await;
    let window_end = anchored_at + window;

    // Detected, but every post fails: the alert says which step, why, and how long is left.
    let s = wait_for(&v, "the alert", |s| !s.alerts.is_empty()).await;
    assert_eq!(s.pending_fraud, Some((2, window_end)));
    assert!(s.challenges.is_empty(), "{:?}", s.challenges);
    let alert = &s.alerts[0];
    assert_eq!(alert.batch, 2);
    assert_eq!(alert.batch_hash, forged.hash());
    assert_eq!(alert.stage, ChallengeStage::Post);
    assert_eq!(alert.window_ends_at, window_end);
    assert_eq!(alert.blocks_left, window_end - anchored_at);

    let status = rpc(&v, "stint_verifierStatus", json!([])).await;
    let alerts = status["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{status}");
    assert_eq!(alerts[0]["batch"], 2);
    assert_eq!(alerts[0]["batchHash"], hex::encode(forged.hash()));
    assert_eq!(alerts[0]["stage"], "post");
    assert_eq!(alerts[0]["windowEndsAt"], window_end);
    assert_eq!(alerts[0]["blocksLeft"], window);
    let reason = alerts[0]["reason"].as_str().unwrap().to_lowercase();
    assert!(reason.contains("insufficient funds"), "{reason}");
    assert_eq!(status["challenges"], json!([]));
    assert_eq!(status["verified"]["number"], 1);

    let text = metrics(&v).await;
    assert_eq!(metric(&text, "stint_verifier_unprovable_frauds"), 1);
    assert!(metric(&text, "stint_verifier_challenge_failures_total") >= 1);
    assert_eq!(metric(&text, "stint_verifier_challenges_posted_total"), 0);

    // A block later it still alerts, one block closer to the end of the window.
    net.mine(1).await;
    let s = wait_for(&v, "the alert a block later", |s| {
        s.alerts
            .first()
            .is_some_and(|a| a.blocks_left == window - 1)
    })
    .await;
    assert_eq!(s.alerts[0].stage, ChallengeStage::Post);
    let failures = metric(
        &metrics(&v).await,
        "stint_verifier_challenge_failures_total",
    );
    assert!(failures >= 2, "{failures}");

    // Fund the fee wallet: the next attempt posts, the challenge is accepted, the alert clears.
    let poor = net.client().ensure_wallet("poor").await.unwrap();
    let to = poor.get_new_address(Network::Regtest).await.unwrap();
    let _: Value = net
        .wallet
        .call("sendtoaddress", json!([to.to_string(), 1.0]))
        .await
        .unwrap();
    net.mine(1).await;
    let s = wait_for(&v, "an accepted challenge", |s| {
        s.challenges
            .iter()
            .any(|c| c.status == ChallengeStatus::Accepted)
    })
    .await;
    assert_eq!(s.challenges.len(), 1, "{:?}", s.challenges);
    assert_eq!(s.challenges[0].batch, 2);
    assert_eq!(s.challenges[0].batch_hash, hex::encode(forged.hash()));
    let (l1_height, _) = s.l1.unwrap();
    assert!(l1_height < window_end, "challenge landed at {l1_height}");
    let s = wait_for(&v, "the alert to clear and the rollback", |s| {
        s.alerts.is_empty() && s.pending_fraud.is_none() && s.canonical.len() == 1
    })
    .await;
    assert_eq!(verified_number(&s), 1);
    assert!(s.invalidated.iter().any(|b| b.record.hash == forged.hash()));
    let status = rpc(&v, "stint_verifierStatus", json!([])).await;
    assert_eq!(status["alerts"], json!([]));
    assert_eq!(status["challenges"][0]["status"], "accepted");
    let text = metrics(&v).await;
    assert_eq!(metric(&text, "stint_verifier_unprovable_frauds"), 0);
    assert_eq!(metric(&text, "stint_verifier_challenges_posted_total"), 1);
    v.stop().await.unwrap();
}
