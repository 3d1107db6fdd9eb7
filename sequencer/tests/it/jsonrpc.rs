//! Priority 2: the JSON-RPC 2.0 specification's examples answered exactly by the sequencer, and
//! its application errors (each refusal changes nothing).

use serde_json::{json, Value};
use stint_contracts::{AccountId, Call, Tx};

use crate::common::{account, key, Env, ADMIN_TOKEN, CHAIN_ID};

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specification_examples_and_application_errors() {
    let mut env = Env::start(3).await;

    // --- JSON-RPC 2.0 specification, section 7 ---
    // Parse error.
    let (status, body) = env
        .post_raw(r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        parse(&body),
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );
    // Invalid Request object.
    let (_, body) = env
        .post_raw(r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#)
        .await;
    assert_eq!(
        parse(&body),
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null})
    );
    // Batch, invalid JSON.
    let (_, body) = env
        .post_raw(
            r#"[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]"#,
        )
        .await;
    assert_eq!(
        parse(&body),
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );
    // Empty batch.
    let (_, body) = env.post_raw("[]").await;
    assert_eq!(
        parse(&body),
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null})
    );
    // Invalid batch, not empty.
    let invalid = json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null});
    let (_, body) = env.post_raw("[1]").await;
    assert_eq!(parse(&body), json!([invalid]));
    let (_, body) = env.post_raw("[1,2,3]").await;
    assert_eq!(parse(&body), json!([invalid, invalid, invalid]));
    // Mixed batch with notifications (ours: chainInfo, a notification, unknown method, an
    // invalid object, invalid params).
    let (_, body) = env
        .post_raw(
            r#"[
  {"jsonrpc": "2.0", "method": "stint_estimateFee", "id": "1"},
  {"jsonrpc": "2.0", "method": "stint_chainInfo"},
  {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
  {"foo": "boo"},
  {"jsonrpc": "2.0", "method": "stint_getReceipt", "params": ["zz"], "id": "9"}
]"#,
        )
        .await;
    let answers = parse(&body);
    let answers = answers.as_array().unwrap();
    assert_eq!(
        answers.len(),
        4,
        "the notification gets no answer: {answers:?}"
    );
    assert_eq!(answers[0]["id"], "1");
    assert_eq!(answers[0]["result"]["fee"], 1);
    assert_eq!(
        answers[1],
        json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"})
    );
    assert_eq!(answers[2], invalid);
    assert_eq!(answers[3]["id"], "9");
    assert_eq!(answers[3]["error"]["code"], -32602);
    assert!(answers[3]["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid params"));
    // Batch of notifications only: nothing to answer.
    let (status, body) = env
        .post_raw(
            r#"[{"jsonrpc": "2.0", "method": "stint_chainInfo", "params": []},
                {"jsonrpc": "2.0", "method": "stint_syncStatus"}]"#,
        )
        .await;
    assert_eq!((status, body.as_str()), (204, ""));
    // Method not found, invalid params.
    assert_eq!(env.call_err("stint_nope", json!([])).await["code"], -32601);
    let e = env
        .call_err("stint_getAccount", json!(["stint1notanaddress"]))
        .await;
    assert_eq!(e["code"], -32602, "{e}");
    let e = env.call_err("stint_getBatch", json!([true])).await;
    assert_eq!(e["code"], -32602, "{e}");
    // Params a method does not take are refused, not ignored.
    let e = env.call_err("stint_chainInfo", json!([1])).await;
    assert_eq!(e["code"], -32602, "{e}");
    let e = env
        .call_err("stint_estimateFee", json!({"priority": "high"}))
        .await;
    assert_eq!(e["code"], -32602, "{e}");
    // An address that is not a public key (0xff..ff) is refused as a param and as a recipient.
    let burn = stint_contracts::AccountId([0xff; 32]);
    let e = env
        .call_err("stint_getAccount", json!([burn.to_address()]))
        .await;
    assert_eq!(e["code"], -32602, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("not a public key"),
        "{e}"
    );
    let to_burn = env.sign(
        0,
        0,
        1,
        stint_contracts::Call::Transfer {
            to: burn,
            amount: 1,
        },
    );
    let e = env
        .call_err(
            "stint_sendRawTransaction",
            json!([hex::encode(to_burn.encode())]),
        )
        .await;
    assert_eq!(
        e["code"],
        stint_sequencer::codes::INVALID_TRANSACTION,
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("not a public key"),
        "{e}"
    );
    let e = env
        .call_err(
            "stint_sendTransaction",
            json!([serde_json::to_value(&to_burn).unwrap()]),
        )
        .await;
    assert_eq!(e["code"], -32602, "{e}");

    // --- Discovery, health, metrics, admin ---
    let doc = env.call("rpc.discover", json!([])).await;
    if let Some(dir) = std::env::var_os("STINT_OPENRPC_OUT") {
        // Validated by scripts/test.sh with an OpenRPC validator after the tests.
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sequencer.json"), doc.to_string()).unwrap();
    }
    let names: Vec<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for method in [
        "stint_chainInfo",
        "stint_syncStatus",
        "stint_sendTransaction",
        "stint_sendRawTransaction",
        "stint_getTransaction",
        "stint_getReceipt",
        "stint_getAccount",
        "stint_getTask",
        "stint_getStream",
        "stint_getTasks",
        "stint_getBatch",
        "stint_estimateFee",
        "stint_subscribe",
        "stint_unsubscribe",
    ] {
        assert!(names.contains(&method), "{method} missing from {names:?}");
    }
    let health = env
        .http
        .get(format!("{}/health", env.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let info = env.call("stint_chainInfo", json!([])).await;
    assert_eq!(info["chainId"], CHAIN_ID);
    assert_eq!(info["disputeWindow"], 3);
    let e = env.call_err("stint_sealBatch", json!([])).await;
    assert_eq!(e["code"], -32001);
    let sealed: Value = env
        .http
        .post(&env.url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "stint_sealBatch"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sealed["result"],
        json!({"batch": null}),
        "nothing pending: {sealed}"
    );

    // --- Application errors; each changes nothing ---
    let bob = account(&env.keys[1]);
    let before = env.call("stint_getAccount", json!([env.addr(0)])).await;

    let mut bad_sig = env.sign(0, 0, 1, Call::Transfer { to: bob, amount: 5 });
    bad_sig.sig[10] ^= 0x55;
    let e = env
        .call_err("stint_sendTransaction", json!([bad_sig]))
        .await;
    assert_eq!(e["code"], 3, "{e}");
    assert_eq!(e["message"], "invalid signature");

    let other_chain = Tx {
        chain_id: CHAIN_ID + 1,
        from: account(&env.keys[0]),
        nonce: 0,
        fee: 1,
        call: Call::Transfer { to: bob, amount: 5 },
    }
    .sign(&env.keys[0])
    .unwrap();
    let e = env
        .call_err("stint_sendTransaction", json!([other_chain]))
        .await;
    assert_eq!(e["code"], 2, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("wrong chain"),
        "{e}"
    );

    let gap = env.sign(0, 1_000, 1, Call::Transfer { to: bob, amount: 5 });
    let e = env.call_err("stint_sendTransaction", json!([gap])).await;
    assert_eq!(e["code"], 5, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("nonce gap too large"),
        "{e}"
    );

    let poor_key = key(99);
    let poor = Tx {
        chain_id: CHAIN_ID,
        from: AccountId::from_signing_key(&poor_key),
        nonce: 0,
        fee: 1,
        call: Call::Transfer { to: bob, amount: 5 },
    }
    .sign(&poor_key)
    .unwrap();
    let e = env.call_err("stint_sendTransaction", json!([poor])).await;
    assert_eq!(e["code"], 7, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("fee unpayable"),
        "{e}"
    );

    let free = env.sign(0, 0, 0, Call::Transfer { to: bob, amount: 5 });
    let e = env.call_err("stint_sendTransaction", json!([free])).await;
    assert_eq!(e["code"], 6, "{e}");

    let e = env
        .call_err("stint_sendRawTransaction", json!(["00ff"]))
        .await;
    assert_eq!(e["code"], 1, "{e}");
    let e = env
        .call_err("stint_sendRawTransaction", json!(["xyz"]))
        .await;
    assert_eq!(e["code"], -32602, "{e}");
    let e = env
        .call_err("stint_sendTransaction", json!([{"tx": 1}]))
        .await;
    assert_eq!(e["code"], -32602, "{e}");

    assert_eq!(
        env.call("stint_getAccount", json!([env.addr(0)])).await,
        before
    );
    assert_eq!(
        env.call("stint_syncStatus", json!([])).await["soft"]["number"],
        0
    );

    // A good tx (raw form), then its nonce again: nonce too low once sealed, or already known.
    let good = env.sign(0, 0, 1, Call::Transfer { to: bob, amount: 5 });
    let txid = env
        .call(
            "stint_sendRawTransaction",
            json!([hex::encode(good.encode())]),
        )
        .await;
    assert_eq!(txid, good.txid().to_string());
    let e = env.call_err("stint_sendTransaction", json!([good])).await;
    assert_eq!(e["code"], 9, "{e}");
    env.wait_finality(txid.as_str().unwrap(), "soft").await;
    let again = env.sign(0, 0, 2, Call::Transfer { to: bob, amount: 6 });
    let e = env.call_err("stint_sendTransaction", json!([again])).await;
    assert_eq!(e["code"], 4, "{e}");
    assert_eq!(
        e["message"],
        "nonce too low: 0, the account's next nonce is 1"
    );

    // Lookups of unknown things.
    let unknown = "ab".repeat(32);
    for method in [
        "stint_getReceipt",
        "stint_getTransaction",
        "stint_getTask",
        "stint_getStream",
    ] {
        let e = env.call_err(method, json!([unknown])).await;
        assert_eq!(e["code"], 12, "{method}: {e}");
        assert!(
            e["message"].as_str().unwrap().starts_with("not found"),
            "{e}"
        );
    }
    assert_eq!(
        env.call_err("stint_getBatch", json!([99])).await["code"],
        12
    );
    let tx = env.call("stint_getTransaction", json!([txid])).await;
    assert_eq!(tx["tx"]["tx"]["nonce"], 0);
    assert_eq!(tx["raw"], hex::encode(good.encode()));

    // Proofs verify against the returned state root.
    let acc = env
        .call("stint_getAccount", json!([env.addr(0), {"proof": true}]))
        .await;
    let proof = stint_state::SparseMerkleProof::from_bytes(
        &hex::decode(acc["proof"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let mut root = [0u8; 32];
    hex::decode_to_slice(acc["stateRoot"].as_str().unwrap(), &mut root).unwrap();
    let value = hex::decode(acc["value"].as_str().unwrap()).unwrap();
    proof
        .verify(
            &root,
            &stint_contracts::account_key(&account(&env.keys[0])),
            Some(&value),
        )
        .unwrap();
    let old = env
        .call("stint_getAccount", json!([env.addr(0), {"at": 0}]))
        .await;
    assert_eq!(old["nonce"], 0);
    assert_eq!(acc["nonce"], 1);

    let metrics = env.metrics().await;
    assert!(
        metrics.contains("stint_sequencer_txs_admitted_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stint_sequencer_batches_sealed_total 1"),
        "{metrics}"
    );
    // One exposition: the sequencer's metrics and the RPC server's, labelled series included
    // by now; promtool accepts all of it.
    for series in [
        "stint_rpc_requests_total{method=\"stint_getAccount\",outcome=\"ok\"} ",
        "stint_rpc_requests_total{method=\"stint_getAccount\",outcome=\"invalid_params\"} ",
        "stint_rpc_request_duration_seconds_count{method=\"stint_getAccount\"} ",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(series)),
            "no {series} in\n{metrics}"
        );
    }
    stint_testkit::promtool_check_metrics(&metrics);
    // The operator kit (deploy/): its rules pass `promtool check rules`, and every sequencer
    // metric its alerts and dashboard use is exported here.
    stint_testkit::check_deploy_kit();
    stint_testkit::assert_exports_deploy_metrics(&metrics, "stint_sequencer_");
    env.shutdown().await;
}
