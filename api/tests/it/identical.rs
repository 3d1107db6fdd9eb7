//! A sequencer and a verifier on the same chain (real bitcoind in regtest, real RocksDB) give
//! identical answers to every shared read method: present and missing objects, every param
//! form, and every malformed param a client might send.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::Network;
use k256::schnorr::SigningKey;
use serde_json::{json, Value};
use stint_anchor::RegtestNode;
use stint_api::{ApiClient, BatchRef, BatchState, ReadOptions, READ_METHODS};
use stint_contracts::{stream_id, task_id, AccountId, Call, Tx};
use stint_protocol::{Genesis, GenesisAlloc};
use stint_sequencer::{Secret, Sequencer, SequencerConfig};
use stint_testkit::{wait_until, write_private};

const CHAIN_ID: u64 = 4242;
const WINDOW: u64 = 2;

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32]).unwrap()
}

fn account(k: &SigningKey) -> AccountId {
    AccountId::from_signing_key(k)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(k: &SigningKey, nonce: u64, call: Call) -> stint_contracts::SignedTx {
    Tx {
        chain_id: CHAIN_ID,
        from: account(k),
        nonce,
        fee: 1,
        call,
    }
    .sign(k)
    .unwrap()
}

/// Sends `txs` and waits until every one is in an anchored batch; returns the anchored head and
/// the txids.
async fn send_and_anchor(
    seq: &ApiClient,
    node: &RegtestNode,
    txs: &[stint_contracts::SignedTx],
) -> (u64, Vec<stint_api::Hex32>) {
    let mut txids = Vec::new();
    for tx in txs {
        txids.push(seq.send_transaction(tx).await.unwrap());
    }
    let wallet = node.client().ensure_wallet("stint").await.unwrap();
    let to = wallet.get_new_address(Network::Regtest).await.unwrap();
    wait_until(Duration::from_secs(120), || async {
        for txid in &txids {
            let r = seq.receipt(*txid).await.unwrap();
            if !matches!(r.finality.as_str(), "anchored" | "final") {
                // Mine, in case the anchorer's pair waits in the mempool (Core's path).
                wallet.generate_to_address(1, &to).await.unwrap();
                return None;
            }
        }
        Some(())
    })
    .await
    .expect("the transactions were never anchored");
    (seq.sync_status().await.unwrap().anchored.number, txids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_nodes_answer_every_read_alike() {
    let dir = tempfile::tempdir().unwrap();
    let funded = stint_testkit::FundedNode::start(dir.path(), &[]).await;
    let (node, wallet) = (&funded.node, &funded.wallet);
    let address = wallet.get_new_address(Network::Regtest).await.unwrap();
    let info = node.client().get_blockchain_info().await.unwrap();

    let secret = SecretKey::from_slice(&[0x42; 32]).unwrap();
    let anchor = Keypair::from_secret_key(&Secp256k1::new(), &secret);
    let anchor_key = dir.path().join("anchor.key");
    write_private(&anchor_key, &hex::encode(secret.secret_bytes())).unwrap();
    let keys: Vec<SigningKey> = (1..=4).map(key).collect();
    let (alice, bob, carol) = (&keys[0], &keys[1], &keys[2]);
    let mut genesis = Genesis::new(
        CHAIN_ID,
        anchor.x_only_public_key().0,
        account(&keys[3]),
        keys.iter()
            .map(|k| GenesisAlloc {
                account: account(k),
                balance: 1_000_000,
            })
            .collect(),
        info.blocks,
        info.bestblockhash,
    );
    genesis.dispute_window = WINDOW;
    genesis.checkpoint_interval = 4;
    genesis.bridge = Some(stint_protocol::Bridge {
        signers: vec![anchor.x_only_public_key().0],
        threshold: 1,
        min_deposit: 5_000,
    });
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json()).unwrap();

    let config = SequencerConfig {
        data_dir: dir.path().join("seq"),
        genesis: genesis_path.clone(),
        anchor_key,
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        admin_token: Some(Secret::new("identical-answers-token")),
        batch_interval_ms: 150,
        l1_origin_depth: 1,
        bitcoind: stint_sequencer::BitcoindConfig {
            rpc_url: node.rpc_url(),
            cookie_file: Some(node.cookie_file()),
            poll_interval_ms: 100,
            ..Default::default()
        },
        ..SequencerConfig::default()
    };
    let sequencer = Sequencer::start(config).await.unwrap();
    let seq = ApiClient::new(format!("http://{}", sequencer.rpc_addr())).unwrap();

    // Round 1: a transfer, a task and a stream; anchored, then final.
    let task = task_id(&account(alice), 1);
    let stream = stream_id(&account(alice), 2);
    let (first, round1) = send_and_anchor(
        &seq,
        node,
        &[
            sign(
                alice,
                0,
                Call::Transfer {
                    to: account(bob),
                    amount: 500,
                },
            ),
            sign(
                alice,
                1,
                Call::TaskCreate {
                    worker: Some(account(bob)),
                    arbiter: Some(account(carol)),
                    spec_hash: [7; 32],
                    milestones: vec![300, 700],
                    deadline: now() + 3_600,
                    review_secs: 3_600,
                },
            ),
            sign(
                alice,
                2,
                Call::StreamOpen {
                    worker: account(carol),
                    rate_per_sec: 3,
                    start: now() - 100,
                    duration_secs: 1_000,
                    cancelable: true,
                },
            ),
        ],
    )
    .await;
    wallet
        .generate_to_address(WINDOW + 1, &address)
        .await
        .unwrap();
    // Round 2: the task moves on; anchored, not final.
    let (tip, round2) = send_and_anchor(
        &seq,
        node,
        &[
            sign(bob, 0, Call::TaskAccept { id: task }),
            sign(carol, 0, Call::StreamWithdraw { id: stream }),
            // Executed and failed (a zero amount): a receipt with an error, the fee charged.
            sign(
                bob,
                1,
                Call::Transfer {
                    to: account(alice),
                    amount: 0,
                },
            ),
        ],
    )
    .await;
    assert!(tip > first, "round 2 sealed a new batch");

    // A verifier (no challenge key: it only verifies) follows the same chain.
    let mut vconfig = stint_verifier::VerifierConfig {
        data_dir: dir.path().join("verifier"),
        genesis: genesis_path,
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        ..stint_verifier::VerifierConfig::default()
    };
    vconfig.bitcoind.poll_interval_ms = 100;
    vconfig.bitcoind.rpc_url = node.rpc_url();
    vconfig.bitcoind.cookie_file = Some(node.cookie_file());
    let verifier = stint_verifier::start(vconfig).await.unwrap();
    let ver = ApiClient::new(format!("http://{}", verifier.rpc_addr())).unwrap();

    // Both settle on the same chain: the verifier verified everything the sequencer anchored
    // and sealed, and both processed the same Bitcoin tip.
    let height = node.client().get_block_count().await.unwrap();
    let settled = wait_until(Duration::from_secs(120), || async {
        let (s, v) = (seq.sync_status().await.ok()?, ver.sync_status().await.ok()?);
        let same = s == v && s.soft.number == tip && s.l1.map(|l| l.height) == Some(height);
        same.then_some(s)
    })
    .await;
    let status = match settled {
        Ok(s) => s,
        Err(()) => panic!(
            "the nodes never settled: sequencer {:?}, verifier {:?}",
            seq.sync_status().await,
            ver.sync_status().await
        ),
    };
    assert_eq!(
        status.final_.number, first,
        "round 1 is final, round 2 is not"
    );

    // What the table reads.
    let (a, b) = (account(alice).to_address(), account(bob).to_address());
    let unfunded = account(&key(9)).to_address();
    let (t, st) = (task.to_string(), stream.to_string());
    let unknown = "ab".repeat(32);
    let first_hash = seq
        .batch(BatchRef::Number(first))
        .await
        .unwrap()
        .hash
        .to_string();
    let too_far = tip + 1;
    let (final_tx, anchored_tx, failed_tx) = (
        round1[0].to_string(),
        round2[0].to_string(),
        round2[2].to_string(),
    );
    let table: Vec<(&str, Value)> = vec![
        ("stint_getReceipt", json!([final_tx])),
        ("stint_getReceipt", json!([anchored_tx])),
        ("stint_getReceipt", json!([failed_tx])),
        ("stint_getReceipt", json!({"txid": final_tx})),
        ("stint_getReceipt", json!([unknown])),
        ("stint_getReceipt", json!([format!("0x{final_tx}")])),
        ("stint_getReceipt", json!([final_tx, 1])),
        ("stint_getReceipt", json!([])),
        ("stint_getTransaction", json!([final_tx])),
        ("stint_getTransaction", json!([failed_tx])),
        ("stint_getTransaction", json!({"txid": anchored_tx})),
        ("stint_getTransaction", json!([unknown])),
        ("stint_getTransaction", json!([7])),
        ("stint_getTasks", json!([{"employer": a}])),
        ("stint_getTasks", json!([{"worker": b}])),
        ("stint_getTasks", json!([{"arbiter": unfunded}])),
        ("stint_getTasks", json!([{"employer": a, "limit": 0}])),
        ("stint_getTasks", json!({"filter": {"worker": b}})),
        ("stint_getTasks", json!([{"employer": a, "worker": b}])),
        ("stint_getTasks", json!([{}])),
        ("stint_getTasks", json!([{"employer": "stint1nope"}])),
        ("stint_getTasks", json!([{"employer": a, "role": "x"}])),
        ("stint_getTasks", json!([])),
        ("stint_chainInfo", json!([])),
        ("stint_chainInfo", json!({})),
        ("stint_chainInfo", json!([1])),
        ("stint_bridgeInfo", json!([])),
        ("stint_bridgeInfo", json!(["x"])),
        ("stint_getDeposit", json!([format!("{unknown}:0")])),
        (
            "stint_getDeposit",
            json!({"outpoint": format!("{unknown}:1")}),
        ),
        ("stint_getDeposit", json!(["not an outpoint"])),
        ("stint_getDeposit", json!([format!("{unknown}:x")])),
        ("stint_getDeposit", json!([])),
        ("stint_getWithdrawal", json!([unknown])),
        ("stint_getWithdrawal", json!({"id": unknown})),
        ("stint_getWithdrawal", json!(["xyz"])),
        ("stint_getWithdrawal", json!([])),
        ("stint_syncStatus", json!(null)),
        ("stint_syncStatus", json!({"verbose": true})),
        ("stint_getAccount", json!([a])),
        ("stint_getAccount", json!([b, {"proof": true}])),
        ("stint_getAccount", json!([a, {"at": first}])),
        ("stint_getAccount", json!([a, {"at": 0, "proof": true}])),
        (
            "stint_getAccount",
            json!({"address": b, "options": {"at": first}}),
        ),
        ("stint_getAccount", json!([unfunded, {"proof": true}])),
        ("stint_getAccount", json!([a, {"at": too_far}])),
        ("stint_getAccount", json!([a, {"raw": true}])),
        ("stint_getAccount", json!([a, {"at": -1}])),
        (
            "stint_getAccount",
            json!([format!("stint1{}", "l".repeat(58))]),
        ),
        ("stint_getAccount", json!(["not an address"])),
        ("stint_getAccount", json!([])),
        ("stint_getAccount", json!([a, {}, 3])),
        ("stint_getAccount", json!({"address": a, "extra": 1})),
        ("stint_getTask", json!([t])),
        ("stint_getTask", json!([t, {"proof": true}])),
        ("stint_getTask", json!([t, {"at": first}])),
        ("stint_getTask", json!([t, {"at": 0}])),
        ("stint_getTask", json!({"id": t})),
        ("stint_getTask", json!([unknown])),
        ("stint_getTask", json!([format!("0x{t}")])),
        ("stint_getTask", json!([t.to_uppercase()])),
        ("stint_getTask", json!([7])),
        ("stint_getStream", json!([st])),
        ("stint_getStream", json!([st, {"at": first, "proof": true}])),
        ("stint_getStream", json!([unknown])),
        ("stint_getStream", json!([st, {"at": too_far}])),
        ("stint_getBatch", json!([first])),
        ("stint_getBatch", json!([tip])),
        ("stint_getBatch", json!([first_hash])),
        ("stint_getBatch", json!([tip, {"raw": true}])),
        (
            "stint_getBatch",
            json!({"batch": first, "options": {"raw": false}}),
        ),
        ("stint_getBatch", json!([0])),
        ("stint_getBatch", json!([too_far])),
        ("stint_getBatch", json!([unknown])),
        ("stint_getBatch", json!([-1])),
        ("stint_getBatch", json!([1.5])),
        ("stint_getBatch", json!(["zz"])),
        ("stint_getBatch", json!([true])),
        ("stint_getBatch", json!([first, {"proof": true}])),
    ];
    let mut methods_seen = std::collections::BTreeSet::new();
    let (mut results, mut errors) = (0, 0);
    for (method, params) in &table {
        let (s, v) = (
            seq.call_raw(method, params.clone()).await.unwrap(),
            ver.call_raw(method, params.clone()).await.unwrap(),
        );
        let answer = |r: &Value| {
            r.get("result")
                .map(|x| ("result", x.clone()))
                .or_else(|| r.get("error").map(|x| ("error", x.clone())))
                .unwrap_or_else(|| panic!("{method} {params}: neither result nor error: {r}"))
        };
        let (s, v) = (answer(&s), answer(&v));
        assert_eq!(
            s, v,
            "{method} {params}: the sequencer and the verifier answer differently"
        );
        match s.0 {
            "result" => results += 1,
            _ => errors += 1,
        }
        methods_seen.insert(*method);
    }
    assert_eq!(
        methods_seen.len(),
        READ_METHODS.len(),
        "the table covers every read method"
    );
    assert!(
        results >= 20 && errors >= 20,
        "{results} results, {errors} errors"
    );

    // The typed client reads the same shapes from both.
    let (sa, va) = (
        seq.account(
            &a,
            ReadOptions {
                proof: true,
                at: None,
            },
        )
        .await
        .unwrap(),
        ver.account(
            &a,
            ReadOptions {
                proof: true,
                at: None,
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!(sa, va);
    assert_eq!(sa.nonce, 3);
    assert_eq!(sa.pending_nonce, 3);
    assert!(sa.proof.is_some());
    let task_info = ver
        .task(stint_api::Hex32(task.0), ReadOptions::default())
        .await
        .unwrap();
    assert_eq!(task_info.task.worker, Some(account(bob)));
    let stream_info = ver
        .stream(stint_api::Hex32(stream.0), ReadOptions::default())
        .await
        .unwrap();
    assert!(
        stream_info.stream.withdrawn >= 300,
        "carol withdrew 100 s at 3/s"
    );
    assert_eq!(
        Some(stream_info.withdrawable),
        stream_info.stream.withdrawable(stream_info.as_of)
    );
    let batch = ver.batch(BatchRef::Number(first)).await.unwrap();
    assert_eq!(batch.status, BatchState::Final);
    assert_eq!(
        seq.batch(BatchRef::Number(tip)).await.unwrap().status,
        BatchState::Anchored
    );
    let missing = ver
        .task(stint_api::Hex32([0xab; 32]), ReadOptions::default())
        .await;
    assert_eq!(missing.unwrap_err().code(), Some(stint_api::NOT_FOUND));

    // The task is listed for its employer and its worker, with its id.
    let listed: Value = ver
        .call("stint_getTasks", json!([{"worker": b}]))
        .await
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], json!(t));

    // Receipts say what happened, the same on both.
    for (txid, finality, status, error) in [
        (round1[0], "final", "executed", None),
        (round2[0], "anchored", "executed", None),
        (round2[2], "anchored", "failed", Some("zeroAmount")),
    ] {
        let (sr, vr) = (
            seq.receipt(txid).await.unwrap(),
            ver.receipt(txid).await.unwrap(),
        );
        assert_eq!(sr, vr);
        assert_eq!(
            (
                vr.finality.as_str(),
                vr.status.as_deref(),
                vr.error.as_deref()
            ),
            (finality, Some(status), error),
            "{txid}"
        );
    }

    // Both documents describe the shared methods identically.
    let (sd, vd): (Value, Value) = (
        seq.call("rpc.discover", json!([])).await.unwrap(),
        ver.call("rpc.discover", json!([])).await.unwrap(),
    );
    let method = |doc: &Value, name: &str| {
        doc["methods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing from a document"))
    };
    for name in READ_METHODS {
        assert_eq!(
            method(&sd, name),
            method(&vd, name),
            "{name}'s documentation"
        );
    }

    verifier.stop().await.unwrap();
    sequencer.shutdown().await.unwrap();
}
