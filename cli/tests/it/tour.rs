//! The README tour, word for word, against a real `stint devnet` (issue #6).
//!
//! The test starts `stint devnet` in a temporary folder, takes every ```sh block between
//! `<!-- tour:begin -->` and `<!-- tour:end -->` in README.md, and runs them in order in one
//! bash session from the folder that holds `devnet/` (as a reader would, from the clone). After
//! each block it records every demo account's balance, then checks each step's effect on the
//! balances. Then it stops the devnet with SIGINT (clean exit), resumes it, kills it with
//! SIGKILL (leaving bitcoind behind), and resumes it again: same chain, same balances.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{crate_dir, free_port, rpc_call, Devnet};

/// What every demo account starts with (`stint::DEMO_BALANCE`).
const START: i64 = stint::DEMO_BALANCE as i64;
/// The default fee of a wallet command (`stint::DEFAULT_FEE`).
const FEE: i64 = stint::DEFAULT_FEE as i64;
const NAMES: [&str; 4] = ["ALICE", "BOB", "CAROL", "ARBITER"];

/// The tour's shell blocks, in order.
fn tour_blocks() -> Vec<String> {
    readme_blocks("tour")
}

/// The shell blocks of README.md between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.
fn readme_blocks(name: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(crate_dir().join("../README.md")).unwrap();
    let begin = readme
        .find(&format!("<!-- {name}:begin -->"))
        .expect("begin marker");
    let end = readme
        .find(&format!("<!-- {name}:end -->"))
        .expect("end marker");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme[begin..end].lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "unterminated code block in the tour");
    blocks
}

/// Balances per step (`step → name → balance`) from the tour's checkpoint file.
fn read_balances(path: &Path) -> BTreeMap<usize, BTreeMap<String, i64>> {
    let mut out: BTreeMap<usize, BTreeMap<String, i64>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [step, name, balance] = parts.as_slice() else {
            panic!("bad checkpoint line {line:?}");
        };
        out.entry(step.parse().unwrap())
            .or_default()
            .insert((*name).to_owned(), balance.parse().unwrap());
    }
    out
}

/// The change in each account's balance a tour step must cause. Streams accrue by the second, so
/// the stream step is checked by what is conserved instead.
enum Effect {
    Exact([i64; 4]),
    /// Alice streams to Carol: together they lose exactly `fees`, and Carol gains something.
    Stream {
        fees: i64,
    },
}

fn expected_effects() -> Vec<(&'static str, Effect)> {
    vec![
        ("first look", Effect::Exact([0, 0, 0, 0])),
        ("transfer", Effect::Exact([-1_000 - FEE, 1_000, 0, 0])),
        (
            // create, approve, dispute | accept, submit ×2 | resolve; 300 approved, the disputed
            // 700 split 50/50.
            "task with milestones",
            Effect::Exact([-1_000 - 3 * FEE + 350, 300 + 350 - 3 * FEE, 0, -FEE]),
        ),
        ("wage stream", Effect::Stream { fees: 3 * FEE }),
        ("payroll", Effect::Exact([-150 - 250 - FEE, 150, 250, 0])),
        (
            "soft → anchored → final",
            Effect::Exact([0, -5 - FEE, 5, 0]),
        ),
        ("deposit", Effect::Exact([50_000, 0, 0, 0])),
        ("forced transfer", Effect::Exact([0, -100 - FEE, 100, 0])),
        ("status and reads", Effect::Exact([0, 0, 0, 0])),
    ]
}

#[test]
fn the_readme_tour_works_word_for_word() {
    let blocks = tour_blocks();
    let effects = expected_effects();
    assert_eq!(
        blocks.len(),
        effects.len(),
        "the README tour has {} blocks; this test checks {} steps ({:?})",
        blocks.len(),
        effects.len(),
        effects.iter().map(|(n, _)| *n).collect::<Vec<_>>()
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let ports = (free_port(), free_port());
    let log = tmp.path().join("devnet.log");
    let mut devnet = Devnet::start(&dir, Some(ports), log.clone());
    let info = devnet.info();
    assert_eq!(info["rpc"], format!("http://127.0.0.1:{}", ports.0));
    assert_eq!(
        info["verifier_rpc"],
        format!("http://127.0.0.1:{}", ports.1)
    );
    assert_eq!(info["accounts"].as_array().unwrap().len(), 4);
    devnet.assert_banner_last(0, 0);
    assert_second_devnet_is_refused(&devnet, &dir, ports);
    for account in info["accounts"].as_array().unwrap() {
        let key = Path::new(account["key_file"].as_str().unwrap());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(
        devnet.log_text().contains("source "),
        "the banner shows how to start"
    );

    // The tour, in one shell, with a balance checkpoint after each block.
    let balances = tmp.path().join("balances.txt");
    let mut script = String::from("set -euo pipefail\n");
    script.push_str(&format!(
        "__tour_checkpoint() {{ for who in {}; do echo \"$1 $who $(stint account \"${{!who}}\" --field balance)\" >> {}; done; }}\n",
        NAMES.join(" "),
        balances.display()
    ));
    for (i, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '==> tour step {i}' >&2\n"));
        script.push_str(block);
        script.push_str(&format!("__tour_checkpoint {i}\n"));
    }
    let (stdout, stderr) = run_script("the tour", &script, tmp.path(), &tmp.path().join("state"));
    // What people read: the task shows the arbiter's split and the milestone it settled, the
    // stream commands what they paid, `stint status` a table that says all is well.
    for part in [
        "resolution  the arbiter gave the worker 50.00 % (350 units) and the employer 350 units back",
        "1: 700 units      settled by the arbiter's split",
        "0: 300 units      paid to the worker",
        "paid_to_worker: ",
        "refunded_to_employer: ",
        "escrow        0 units",
        "total: 400",
        "verifier    batch ",
        "health      ok",
    ] {
        assert!(
            stdout.contains(part),
            "{part:?} is not in the tour's output:\n{stdout}"
        );
    }
    // `--wait final` shows the tx's progress (on a Knots devnet a batch is often anchored
    // before the first poll sees it `soft`).
    assert!(stderr.contains("→ anchored"), "{stderr}");
    assert!(stderr.contains("anchored → final"), "{stderr}");

    let seen = read_balances(&balances);
    let mut before: BTreeMap<String, i64> =
        NAMES.iter().map(|n| ((*n).to_owned(), START)).collect();
    for (i, (name, effect)) in effects.iter().enumerate() {
        let after = seen
            .get(&i)
            .unwrap_or_else(|| panic!("no checkpoint for step {i}"));
        let delta = |who: &str| after[who] - before[who];
        match effect {
            Effect::Exact(want) => {
                for (who, want) in NAMES.iter().zip(want) {
                    assert_eq!(delta(who), *want, "step {i} ({name}): {who}\n{stdout}");
                }
            }
            Effect::Stream { fees } => {
                assert_eq!(delta("ALICE") + delta("CAROL"), -fees, "step {i} ({name})");
                assert!(
                    delta("CAROL") > -FEE,
                    "step {i} ({name}): Carol earned nothing"
                );
                assert_eq!(delta("BOB"), 0);
                assert_eq!(delta("ARBITER"), 0);
            }
        }
        before = after.clone();
    }

    // Ctrl-C stops everything cleanly.
    let mut heads = rpc_heads(ports.0);
    let status = devnet.signal("-INT");
    assert!(
        status.success(),
        "devnet exit on SIGINT: {status}\n{}",
        devnet.log_text()
    );
    let final_balances = before;

    // Resume without the port flags (the folder keeps them): same chain, ports and balances, the
    // banner last; then SIGKILL (bitcoind is orphaned) and resume again.
    for round in ["after Ctrl-C", "after SIGKILL"] {
        let mut devnet = Devnet::start(&dir, None, log.clone());
        assert_eq!(devnet.info()["chain_id"], info["chain_id"]);
        assert_eq!(devnet.info()["rpc"], info["rpc"], "{round}");
        assert_eq!(
            devnet.info()["verifier_rpc"],
            info["verifier_rpc"],
            "{round}"
        );
        devnet.assert_banner_last(heads.0, heads.1);
        for account in devnet.info()["accounts"].as_array().unwrap() {
            let name = account["name"].as_str().unwrap().to_uppercase();
            let out = Command::new(env!("CARGO_BIN_EXE_stint"))
                .args([
                    "account",
                    account["address"].as_str().unwrap(),
                    "--field",
                    "balance",
                ])
                .env("STINT_RPC", format!("http://127.0.0.1:{}", ports.0))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let balance: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
            assert_eq!(balance, final_balances[&name], "{name} {round}");
        }
        if round == "after Ctrl-C" {
            heads = rpc_heads(ports.0);
            devnet.signal("-KILL");
        }
    }
}

/// The address of demo account `name` in a `devnet.json`.
fn demo_address(info: &serde_json::Value, name: &str) -> String {
    info["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs `script` in bash from `dir` as a reader would (no `STINT_*` of the test's environment,
/// the send journal in `state`); fails the test with both outputs unless it succeeds. Returns
/// stdout and stderr.
fn run_script(what: &str, script: &str, dir: &Path, state: &Path) -> (String, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_remove("STINT_RPC")
        .env_remove("STINT_KEY")
        .env_remove("STINT_VERIFIER_RPC")
        .env("STINT_STATE_DIR", state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// The sequencer's anchored and final batch numbers.
fn rpc_heads(rpc_port: u16) -> (u64, u64) {
    let sync = rpc_call(
        &format!("http://127.0.0.1:{rpc_port}"),
        "stint_syncStatus",
        serde_json::json!([]),
    );
    let number = |head: &str| sync[head]["number"].as_u64().unwrap();
    (number("anchored"), number("final"))
}

/// A second `stint devnet` on the running devnet's folder (with or without other ports) says so
/// and exits 1, and the running devnet goes on as if nothing happened.
fn assert_second_devnet_is_refused(devnet: &Devnet, dir: &Path, ports: (u16, u16)) {
    let before = std::fs::read_to_string(dir.join("devnet.json")).unwrap();
    let other = (free_port(), free_port());
    for extra in [vec![], vec!["--rpc-port".to_owned(), other.0.to_string()]] {
        let out = Command::new(env!("CARGO_BIN_EXE_stint"))
            .args(["devnet", "--dir"])
            .arg(dir)
            .args(&extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("a devnet is already running in") && stderr.contains("left alone"),
            "{stderr}"
        );
        assert!(!stderr.contains("orphaned"), "{stderr}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("devnet.json")).unwrap(),
        before
    );
    // Still up, on the same ports, and its bitcoind still mines.
    let rpc = format!("http://127.0.0.1:{}", ports.0);
    let tip = |_: ()| {
        rpc_call(&rpc, "stint_syncStatus", serde_json::json!([]))["l1"]["height"]
            .as_u64()
            .unwrap()
    };
    let first = tip(());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tip(()) <= first {
        assert!(
            std::time::Instant::now() < deadline,
            "the running devnet stopped mining"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(devnet.log_text().matches(crate::common::BANNER).count() >= 1);
    assert!(!devnet.log_text().contains("bitcoind stopped answering"));
}

/// The README's censorship section, word for word, against `stint devnet --fault censor
/// --fault-account carol`: the deposit to Carol is credited, her transfer through Bitcoin is
/// executed although the sequencer censors her, `stint_getDeposit` (from the verifier) says
/// `credited`, and her transfer sent to the sequencer the usual way is acknowledged and never
/// executed.
#[test]
fn the_readme_censorship_section_works_word_for_word() {
    let blocks = readme_blocks("censor");
    assert_eq!(blocks.len(), 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet-censor");
    let ports = (free_port(), free_port());
    let log = tmp.path().join("devnet.log");
    let devnet = Devnet::start_with(
        &dir,
        Some(ports),
        log,
        &["--fault", "censor", "--fault-account", "carol"],
    );
    let info = devnet.info();
    let address = |name: &str| demo_address(&info, name);
    let rpc = format!("http://127.0.0.1:{}", ports.0);
    let balance = |who: &str| {
        rpc_call(&rpc, "stint_getAccount", serde_json::json!([address(who)]))["balance"]
            .as_i64()
            .unwrap()
    };
    let (carol, bob) = (balance("carol"), balance("bob"));
    assert_eq!((carol, bob), (START, START));

    // Sent to the sequencer, Carol's transfer is acknowledged and never sealed.
    let key = |who: &str| dir.join(format!("keys/{who}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_stint"))
        .args(["--key"])
        .arg(key("carol"))
        .args([
            "transfer",
            "--to",
            &address("bob"),
            "--amount",
            "1",
            "--json",
        ])
        .env("STINT_RPC", &rpc)
        .env("STINT_STATE_DIR", tmp.path().join("state"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (stdout, stderr) = run_script(
        "the censorship section",
        &format!("set -euo pipefail\n{}", blocks[0]),
        tmp.path(),
        &tmp.path().join("state2"),
    );
    assert!(stdout.contains("\"status\":\"credited\""), "{stdout}");
    assert!(
        stderr.contains("written to Bitcoin as a forced tx"),
        "{stderr}"
    );
    assert_eq!(balance("carol"), START + 20_000 - 300 - FEE);
    assert_eq!(balance("bob"), START + 300);
    assert!(
        devnet.log_text().contains("fault censor"),
        "the sequencer did censor"
    );
}

/// A devnet whose bitcoind is killed with SIGKILL restarts it by itself and keeps going: a
/// transfer sent afterwards goes `final`, and both nodes agree (issue 17).
#[test]
fn a_devnet_restarts_a_killed_bitcoind_and_keeps_going() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let ports = (free_port(), free_port());
    let devnet = Devnet::start(&dir, Some(ports), tmp.path().join("devnet.log"));
    // Up: the banner is printed once the nodes caught up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !devnet.log_text().contains(crate::common::BANNER) {
        assert!(std::time::Instant::now() < deadline, "no banner");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pid_file = dir.join("bitcoind/regtest/bitcoind.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let status = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !devnet.log_text().contains("bitcoind restarted") {
        assert!(
            std::time::Instant::now() < deadline,
            "the devnet did not restart bitcoind:\n{}",
            devnet.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let info = devnet.info();
    let address = |name: &str| demo_address(&info, name);
    let rpc = format!("http://127.0.0.1:{}", ports.0);
    let balance = |url: &str, who: &str| {
        rpc_call(url, "stint_getAccount", serde_json::json!([address(who)]))["balance"]
            .as_i64()
            .unwrap()
    };
    // A killed regtest bitcoind comes back without the blocks it had not flushed: the funding
    // deposits may be reorged out, and come back (the wallet puts its transactions back in the
    // mempool; they are mined and credited again). Nothing is lost.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while ["alice", "bob"]
        .iter()
        .any(|who| balance(&rpc, who) != START)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the demo funding did not come back:\n{}",
            devnet.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stint"))
        .args(["--key"])
        .arg(dir.join("keys/alice.json"))
        .args([
            "transfer",
            "--to",
            &address("bob"),
            "--amount",
            "7",
            "--wait",
            "final",
        ])
        .args(["--wait-timeout", "180"])
        .env("STINT_RPC", &rpc)
        .env("STINT_STATE_DIR", tmp.path().join("state"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        devnet.log_text()
    );
    assert_eq!(balance(&rpc, "bob"), START + 7);
    assert_eq!(balance(&rpc, "alice"), START - 7 - FEE);
    let verifier = format!("http://127.0.0.1:{}", ports.1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while balance(&verifier, "bob") != START + 7 {
        assert!(
            std::time::Instant::now() < deadline,
            "the verifier never caught up"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// Ctrl-C while the devnet is still starting (funding its accounts) stops it cleanly: the
/// signal handlers are installed before anything starts, so the signal is not the process's
/// death (it was, when the handler was installed only once the devnet listened).
#[test]
fn ctrl_c_during_startup_stops_the_devnet_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("devnet.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stint"))
        .args(["devnet", "--dir"])
        .arg(tmp.path().join("devnet"))
        .args(["--block-interval", "1"])
        .args(["--rpc-port", &free_port().to_string()])
        .args(["--verifier-rpc-port", &free_port().to_string()])
        .env("RUST_LOG", "info")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("creating a network")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the devnet never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "exit {exit} on Ctrl-C during startup:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
}
