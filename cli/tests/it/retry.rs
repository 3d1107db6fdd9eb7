//! Wallet commands against a live devnet (issue 18): `--wait` reconnects across a restart and
//! finishes, the txid is on stdout before any waiting, a retried command reuses its transaction
//! instead of paying twice (§2); mistakes on a live task are refused before signing, and a
//! payroll longer than one transaction holds is split (§4).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use serde_json::Value;

use crate::common::{free_port, Devnet};

/// `stint ARGS` against the devnet, with the journal in `state`.
fn stint(rpc: &str, state: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stint"));
    command
        .args(args)
        .env("STINT_RPC", rpc)
        .env("STINT_STATE_DIR", state)
        .env_remove("STINT_KEY")
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Starts a command and reads its first stdout line (what it printed before waiting).
fn spawn_until_first_line(command: &mut Command) -> (Child, BufReader<ChildStdout>, Value) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let first: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, stdout, first)
}

fn balance(rpc: &str, state: &Path, address: &str) -> u64 {
    let out = run(&mut stint(
        rpc,
        state,
        &["account", address, "--field", "balance"],
    ));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn wait_survives_a_restart_and_a_retry_pays_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let state = tmp.path().join("state");
    let log = tmp.path().join("devnet.log");
    let ports = (free_port(), free_port());
    let mut devnet = Devnet::start(&dir, Some(ports), log.clone());
    let info = devnet.info();
    let rpc = info["rpc"].as_str().unwrap().to_owned();
    let account = |name: &str| {
        let a = info["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap();
        (
            a["address"].as_str().unwrap().to_owned(),
            a["key_file"].as_str().unwrap().to_owned(),
        )
    };
    let (_, alice_key) = account("alice");
    let (bob, _) = account("bob");
    let (carol, _) = account("carol");

    // 1. `--wait final --json`: the txid comes first, on stdout; the devnet then stops and is
    // resumed under the waiting command, which reconnects and finishes.
    let bob_before = balance(&rpc, &state, &bob);
    let transfer = |to: &str, amount: &str| {
        let mut command = stint(
            &rpc,
            &state,
            &[
                "--key", &alice_key, "transfer", "--to", to, "--amount", amount, "--wait", "final",
                "--json",
            ],
        );
        command.env_remove("STINT_VERIFIER_RPC");
        command
    };
    let (child, mut stdout, first) = spawn_until_first_line(&mut transfer(&bob, "7"));
    let txid = first["txid"].as_str().unwrap().to_owned();
    assert_eq!(first["status"], "pending", "{first}");
    assert!(devnet.signal("-INT").success());
    let devnet = Devnet::start(&dir, None, log);
    assert_eq!(devnet.info()["rpc"], info["rpc"]);
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let last: Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
    assert_eq!(last["txid"], txid.as_str(), "{rest}");
    assert_eq!(last["status"], "final", "{rest}");
    assert!(stderr.contains("lost the node at"), "{stderr}");
    assert!(stderr.contains("reconnected"), "{stderr}");
    assert!(stderr.contains("more Bitcoin block"), "countdown: {stderr}");
    assert_eq!(balance(&rpc, &state, &bob), bob_before + 7);

    // 2. The same command, killed while it waits and run again: the retry takes the same
    // transaction (no second nonce, no second payment).
    let carol_before = balance(&rpc, &state, &carol);
    let (mut child, _stdout, first) = spawn_until_first_line(&mut transfer(&carol, "9"));
    let killed_txid = first["txid"].as_str().unwrap().to_owned();
    child.kill().unwrap();
    child.wait().unwrap();
    let out = run(&mut transfer(&carol, "9"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["txid"], killed_txid.as_str(), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reusing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(balance(&rpc, &state, &carol), carol_before + 9);
    // After a command succeeded, the same command is a new payment.
    let out = run(&mut transfer(&carol, "9"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_ne!(last["txid"], killed_txid.as_str(), "{stdout}");
    assert_eq!(balance(&rpc, &state, &carol), carol_before + 18);

    prechecks_on_a_live_task(&rpc, &state, &alice_key, &bob);
    long_payroll_is_split(&rpc, &state, &alice_key);
    drop(devnet);
}

/// The nonce and balance of the account of `key`.
fn nonce_and_balance(rpc: &str, state: &Path, key: &str) -> (u64, u64) {
    let out = run(&mut stint(rpc, state, &["account", "--key", key, "--json"]));
    let account: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        account["nonce"].as_u64().unwrap(),
        account["balance"].as_u64().unwrap(),
    )
}

/// `task approve` of each `(milestone, reason)` exits 1 with the reason.
fn approve_is_refused(rpc: &str, state: &Path, key: &str, task: &str, cases: &[(&str, &str)]) {
    for (milestone, needle) in cases {
        let out = stint(
            rpc,
            state,
            &[
                "--key",
                key,
                "task",
                "approve",
                "--id",
                task,
                "--milestone",
                milestone,
            ],
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}

fn prechecks_on_a_live_task(rpc: &str, state: &Path, alice_key: &str, bob: &str) {
    let out = run(&mut stint(
        rpc,
        state,
        &[
            "--key",
            alice_key,
            "task",
            "create",
            "--worker",
            bob,
            "--milestones",
            "300,700",
            "--deadline-secs",
            "3600",
            "--review-secs",
            "60",
            "--spec",
            "s",
            "--wait",
            "soft",
            "--field",
            "task_id",
        ],
    ));
    let task = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let before = nonce_and_balance(rpc, state, alice_key);
    approve_is_refused(
        rpc,
        state,
        alice_key,
        &task,
        &[
            ("0", "the worker accepts it first"),
            ("5", "the worker accepts it first"),
        ],
    );
    let bob_key = alice_key.replace("alice", "bob");
    run(&mut stint(
        rpc,
        state,
        &[
            "--key", &bob_key, "task", "accept", "--id", &task, "--wait", "soft",
        ],
    ));
    approve_is_refused(
        rpc,
        state,
        alice_key,
        &task,
        &[
            ("0", "it is pending, not submitted"),
            (
                "5",
                "it has 2 milestones (--milestone 0 to 1); there is no milestone 5",
            ),
        ],
    );
    // Nothing was signed: no nonce used, no fee paid.
    assert_eq!(nonce_and_balance(rpc, state, alice_key), before);
}

fn long_payroll_is_split(rpc: &str, state: &Path, alice_key: &str) {
    let rows = stint_contracts::MAX_PAYROLL_PAYMENTS + 8;
    let payees: Vec<String> = (0..rows)
        .map(|i| {
            let secret = [u8::try_from(i + 1).unwrap(); 32];
            let key = k256::schnorr::SigningKey::from_bytes(&secret).unwrap();
            stint_contracts::AccountId::from_signing_key(&key).to_string()
        })
        .collect();
    let csv = state.with_file_name("payroll.csv");
    let text: String = payees.iter().map(|a| format!("{a},3\n")).collect();
    std::fs::write(&csv, text).unwrap();
    let (_, before) = nonce_and_balance(rpc, state, alice_key);
    let out = run(&mut stint(
        rpc,
        state,
        &[
            "--key",
            alice_key,
            "payroll",
            "--csv",
            csv.to_str().unwrap(),
            "--wait",
            "soft",
            "--json",
        ],
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sending 2 transactions"), "{stderr}");
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["transactions"], 2, "{stdout}");
    assert_eq!(last["txids"].as_array().unwrap().len(), 2, "{stdout}");
    assert_eq!(last["payments"], rows, "{stdout}");
    assert_eq!(last["total"], 3 * rows, "{stdout}");
    for payee in &payees {
        assert_eq!(balance(rpc, state, payee), 3, "{payee}");
    }
    let fees = 2 * stint::DEFAULT_FEE;
    assert_eq!(
        nonce_and_balance(rpc, state, alice_key).1,
        before - 3 * rows as u64 - fees
    );
}
