//! An honest chain: verified batch by batch, roots agree, nothing is posted; RPC reads.

use serde_json::json;
use stint_contracts::{account_key, read_account};
use stint_state::{SparseMerkleProof, SparseMerkleTree};

use crate::common::{metrics, rpc, start_verifier, verified_number, wait_for, Net, Rollup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_chain_is_verified_and_never_challenged() {
    let net = Net::start(&["v1"]).await;
    let mut rollup = Rollup::new(&net, 5).await;
    let v = start_verifier(&net, net.verifier_config(&rollup, "v1", 0x51, "v1")).await;

    let mut batches = Vec::new();
    for n in [0, 5, 9, 1] {
        batches.push(rollup.honest_batch(&net, n).await);
    }
    let s = wait_for(&v, "4 verified batches", |s| verified_number(s) == 4).await;
    let tip = batches.last().unwrap();
    assert_eq!(s.verified.unwrap().state_root, tip.header().state_root);
    assert_eq!(s.verified.unwrap().hash, tip.hash());
    assert!(s.challenges.is_empty());
    assert!(s.pending_fraud.is_none());
    assert!(s.canonical.iter().all(|b| b.verified));

    // JSON-RPC from the verifier's own state.
    let status = rpc(&v, "stint_verifierStatus", json!([])).await;
    assert_eq!(status["verified"]["number"], 4);
    assert_eq!(
        status["verified"]["stateRoot"],
        hex::encode(tip.header().state_root)
    );
    assert_eq!(status["challenges"], json!([]));
    let doc = rpc(&v, "rpc.discover", json!([])).await;
    crate::common::save_openrpc("verifier", &doc);
    let sync = rpc(&v, "stint_syncStatus", json!([])).await;
    assert_eq!(sync["soft"]["number"], 4);
    assert_eq!(sync["anchored"]["number"], 4);
    assert_eq!(sync["l1"]["height"], net.tip().await);

    let (_, alice) = rollup.users[3];
    let tree = SparseMerkleTree::new(&rollup.store);
    for (at, batch) in [(4u64, tip), (1, &batches[0])] {
        let root = batch.header().state_root;
        let expected = read_account(&tree.view(root), &alice).unwrap();
        let account = rpc(
            &v,
            "stint_getAccount",
            json!([alice.to_address(), {"proof": true, "at": at}]),
        )
        .await;
        assert_eq!(account["address"], alice.to_address());
        assert_eq!(account["balance"], expected.balance);
        assert_eq!(account["nonce"], expected.nonce);
        let proof = SparseMerkleProof::from_bytes(
            &hex::decode(account["proof"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let key = account_key(&alice);
        let value = tree.get(&root, &key).unwrap();
        proof.verify(&root, &key, value.as_deref()).unwrap();
    }
    assert_ne!(
        rpc(&v, "stint_getAccount", json!([alice.to_address()])).await["nonce"],
        0
    );

    let by_number = rpc(&v, "stint_getBatch", json!([2])).await;
    assert_eq!(by_number["hash"], hex::encode(batches[1].hash()));
    assert_eq!(by_number["parent"], hex::encode(batches[0].hash()));
    assert_eq!(by_number["status"], "anchored");
    // Verified: the verifier's reads never go past its verified tip, which covers batch 2.
    assert_eq!(
        by_number["txids"].as_array().unwrap().len(),
        batches[1].txs().len()
    );
    assert_eq!(
        by_number["txRoot"],
        hex::encode(batches[1].header().tx_root)
    );
    assert!(by_number["anchor"]["height"].as_u64().unwrap() > rollup.genesis.l1_start_height);
    let by_hash = rpc(
        &v,
        "stint_getBatch",
        json!([hex::encode(batches[1].hash())]),
    )
    .await;
    assert_eq!(by_hash, by_number);
    // Unknown objects are code 12 (stint_api::NOT_FOUND) on the verifier as on the sequencer.
    for (method, params) in [
        ("stint_getBatch", json!([9])),
        ("stint_getTask", json!(["ab".repeat(32)])),
        ("stint_getStream", json!(["ab".repeat(32)])),
        ("stint_getAccount", json!([alice.to_address(), {"at": 5}])),
    ] {
        let e = crate::common::rpc_err(&v, method, params).await;
        assert_eq!(e["code"], stint_api::NOT_FOUND, "{method}: {e}");
    }

    // The window passes: everything is final.
    net.mine(5).await;
    let s = wait_for(&v, "finality", |s| {
        s.final_tip.is_some_and(|f| f.number == 4)
    })
    .await;
    assert!(s.challenges.is_empty());
    let sync = rpc(&v, "stint_syncStatus", json!([])).await;
    assert_eq!(sync["final"]["number"], 4);
    assert_eq!(
        rpc(&v, "stint_getBatch", json!([4])).await["status"],
        "final"
    );

    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{}/health", v.rpc_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = metrics(&v).await;
    assert!(
        metrics.contains("stint_verifier_batches_verified_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stint_verifier_challenges_posted_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stint_verifier_replay_lag_batches 0"),
        "{metrics}"
    );
    // One exposition: the verifier's metrics and the RPC server's, labelled series included by
    // now; promtool accepts all of it.
    assert!(
        metrics.lines().any(|l| l
            .starts_with("stint_rpc_requests_total{method=\"stint_getBatch\",outcome=\"ok\"} ")),
        "{metrics}"
    );
    stint_testkit::promtool_check_metrics(&metrics);
    // Every verifier metric the operator kit (deploy/) uses is exported here.
    stint_testkit::assert_exports_deploy_metrics(&metrics, "stint_verifier_");
    v.stop().await.unwrap();
}
