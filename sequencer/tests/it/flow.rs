//! Priority 1: a tx goes pending/soft → anchored → final with the right balances at each step;
//! a task flow and a stream flow.

use serde_json::json;
use stint_contracts::{stream_id, task_id, Call};

use crate::common::{account, Env, FEE_RECIPIENT, START_BALANCE};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_goes_soft_anchored_final_with_right_balances() {
    const W: u64 = 3;
    let mut env = Env::start(W).await;
    let bob = account(&env.keys[1]);
    let tx = env.sign(
        0,
        0,
        10,
        Call::Transfer {
            to: bob,
            amount: 1_000,
        },
    );
    let txid = env.send(&tx).await;

    // Acknowledged means durable: the receipt exists at once (pending, or soft if already sealed).
    let r = env.call("stint_getReceipt", json!([txid])).await;
    assert!(
        ["pending", "soft"].contains(&r["finality"].as_str().unwrap()),
        "{r}"
    );

    let soft = env.wait_finality(&txid, "soft").await;
    assert_eq!(soft["status"], "executed");
    assert_eq!(soft["index"], 0);
    assert_eq!(soft["error"], serde_json::Value::Null);
    assert_eq!(env.balance(0).await, START_BALANCE - 1_010);
    assert_eq!(env.balance(1).await, START_BALANCE + 1_000);
    assert_eq!(env.balance_of(&FEE_RECIPIENT).await, 10);
    let number = soft["batch"].as_u64().unwrap();
    let batch = env.call("stint_getBatch", json!([number])).await;
    assert_eq!(batch["txids"], json!([txid]));

    let anchored = env.wait_finality(&txid, "anchored").await;
    assert_eq!(anchored["batch"], number);
    let batch = env.call("stint_getBatch", json!([number])).await;
    let hash = batch["hash"].as_str().unwrap().to_owned();
    assert_eq!(batch["status"], "anchored", "{batch}");
    let anchor_height = batch["anchor"]["height"].as_u64().unwrap();
    assert!(batch["anchor"]["btcTxid"].as_str().unwrap().len() == 64);
    // By hash too.
    assert_eq!(
        env.call("stint_getBatch", json!([hash])).await["number"],
        number
    );
    // Balances unchanged by anchoring.
    assert_eq!(env.balance(0).await, START_BALANCE - 1_010);
    assert_eq!(env.balance(1).await, START_BALANCE + 1_000);

    // Final once the L1 tip is W blocks past the anchor.
    let tip = env.node.client().get_block_count().await.unwrap();
    let missing = (anchor_height + W).saturating_sub(tip);
    if missing > 1 {
        env.mine(missing - 1).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let r = env.call("stint_getReceipt", json!([txid])).await;
        assert_eq!(r["finality"], "anchored", "final too early: {r}");
    }
    env.mine(1).await;
    let fin = env.wait_finality(&txid, "final").await;
    assert_eq!(fin["finality"], "final");
    let batch = env.call("stint_getBatch", json!([number])).await;
    assert_eq!(batch["status"], "final");
    let sync = env.call("stint_syncStatus", json!([])).await;
    assert!(
        sync["final"]["number"].as_u64().unwrap() >= number,
        "{sync}"
    );
    assert!(sync["l1"]["height"].as_u64().unwrap() >= anchor_height + W);
    assert_eq!(env.balance(0).await, START_BALANCE - 1_010);
    assert_eq!(env.balance(1).await, START_BALANCE + 1_000);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_and_stream_flows() {
    let mut env = Env::start(2).await;
    let (alice, bob, carol, dave) = (0, 1, 2, 3);
    let bob_id = account(&env.keys[bob]);
    let carol_id = account(&env.keys[carol]);
    let dave_id = account(&env.keys[dave]);
    let fee = 1;

    // Task: alice employs bob with carol as arbiter, two milestones.
    let create = env.sign(
        alice,
        0,
        fee,
        Call::TaskCreate {
            worker: Some(bob_id),
            arbiter: Some(carol_id),
            spec_hash: [7; 32],
            milestones: vec![300, 700],
            deadline: now() + 3_600,
            review_secs: 3_600,
        },
    );
    let task = task_id(&account(&env.keys[alice]), 0);
    let mut txids = vec![env.send(&create).await];
    txids.push(
        env.send(&env.sign(bob, 0, fee, Call::TaskAccept { id: task }))
            .await,
    );
    txids.push(
        env.send(&env.sign(
            bob,
            1,
            fee,
            Call::TaskSubmit {
                id: task,
                milestone: 0,
                deliverable_hash: [8; 32],
            },
        ))
        .await,
    );
    txids.push(
        env.send(&env.sign(
            alice,
            1,
            fee,
            Call::TaskApprove {
                id: task,
                milestone: 0,
            },
        ))
        .await,
    );
    // A call that fails is still executed (fee and nonce), with the failure code.
    let failing = env
        .send(&env.sign(
            alice,
            2,
            fee,
            Call::TaskApprove {
                id: task,
                milestone: 1,
            },
        ))
        .await;

    // Stream: alice pays dave 10/s, back-dated 100 s, 1,000 s funded, cancelable.
    let open = env.sign(
        alice,
        3,
        fee,
        Call::StreamOpen {
            worker: dave_id,
            rate_per_sec: 10,
            start: now() - 100,
            duration_secs: 1_000,
            cancelable: true,
        },
    );
    let stream = stream_id(&account(&env.keys[alice]), 3);
    txids.push(env.send(&open).await);
    txids.push(
        env.send(&env.sign(dave, 0, fee, Call::StreamWithdraw { id: stream }))
            .await,
    );

    for txid in &txids {
        let r = env.wait_finality(txid, "soft").await;
        assert_eq!(r["status"], "executed", "{r}");
    }
    let r = env.wait_finality(&failing, "soft").await;
    assert_eq!(r["status"], "failed");
    assert_eq!(r["error"], "milestoneNotSubmitted");

    let t = env.call("stint_getTask", json!([task.to_string()])).await;
    assert_eq!(t["id"], task.to_string());
    assert_eq!(t["escrow"], 700);
    assert_eq!(t["status"], "active");
    for role in ["worker", "employer", "arbiter"] {
        let user = match role {
            "worker" => bob,
            "employer" => alice,
            _ => carol,
        };
        let tasks = env
            .call("stint_getTasks", json!([{ role: env.addr(user) }]))
            .await;
        assert_eq!(tasks.as_array().unwrap().len(), 1, "{role}: {tasks}");
        assert_eq!(tasks[0]["id"], task.to_string());
    }
    let none = env
        .call("stint_getTasks", json!([{"worker": env.addr(dave)}]))
        .await;
    assert_eq!(none, json!([]));
    assert_eq!(env.balance(bob).await, START_BALANCE + 300 - 2 * fee);

    let s = env
        .call("stint_getStream", json!([stream.to_string()]))
        .await;
    assert_eq!(s["status"], "active");
    let withdrawn = s["withdrawn"].as_u64().unwrap();
    assert!(withdrawn >= 1_000, "at least 100 s accrued: {s}");
    assert_eq!(env.balance(dave).await, START_BALANCE + withdrawn - fee);

    // Cancel: dave gets what accrued since, alice the rest.
    let cancel = env
        .send(&env.sign(alice, 4, fee, Call::StreamCancel { id: stream }))
        .await;
    assert_eq!(
        env.wait_finality(&cancel, "soft").await["status"],
        "executed"
    );
    let s = env
        .call("stint_getStream", json!([stream.to_string()]))
        .await;
    assert_eq!(s["status"], "canceled");
    let paid_to_dave = s["withdrawn"].as_u64().unwrap();
    let dave_balance = env.balance(dave).await;
    assert!(dave_balance >= START_BALANCE + paid_to_dave - fee, "{s}");

    // Value is conserved: balances + task escrow = supply.
    let mut total = env.balance_of(&FEE_RECIPIENT).await;
    for user in 0..4 {
        total += env.balance(user).await;
    }
    assert_eq!(total + 700, 4 * START_BALANCE);
    // Fees: 8 txs.
    assert_eq!(env.balance_of(&crate::common::FEE_RECIPIENT).await, 8 * fee);

    // Everything goes on to be anchored.
    for txid in txids.iter().chain([&failing, &cancel]) {
        env.wait_finality(txid, "anchored").await;
    }
    env.shutdown().await;
}
