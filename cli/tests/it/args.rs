//! Argument and input errors: non-zero exits with clear reasons, before anything is sent.

use std::path::Path;
use std::process::{Command, Output};

fn stint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stint"))
        .args(args)
        .env_remove("STINT_RPC")
        .env_remove("STINT_KEY")
        .env(
            "STINT_STATE_DIR",
            std::env::temp_dir().join("stint-args-test-state"),
        )
        .output()
        .expect("run stint")
}

fn fails_with(args: &[&str], code: i32, needle: &str) {
    let out = stint(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected {needle:?} in {stderr}"
    );
}

#[test]
fn key_new_writes_a_private_key_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.json");
    let p = path.to_str().unwrap();
    let out = stint(&["key", "new", "--out", p, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let address = printed["address"].as_str().unwrap().to_string();
    assert!(address.starts_with("stint1"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let out = stint(&["key", "show", "--key", p]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&address));

    fails_with(&["key", "new", "--out", p], 1, "already exists");
}

#[test]
fn bad_arguments_exit_non_zero_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.json");
    let k = key.to_str().unwrap();
    assert!(stint(&["key", "new", "--out", k]).status.success());
    let valid = {
        let out = stint(&["key", "show", "--key", k, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["address"].as_str().unwrap().to_string()
    };
    // Flip the last checksum character.
    let mut broken = valid.clone();
    let last = broken.pop().unwrap();
    broken.push(if last == 'q' { 'p' } else { 'q' });

    // clap's own errors: exit 2.
    fails_with(&["transfer", "--amount", "5"], 2, "--to");
    fails_with(
        &["transfer", "--to", &valid, "--amount", "lots"],
        2,
        "--amount",
    );
    fails_with(&["no-such-command"], 2, "unrecognized subcommand");
    fails_with(
        &[
            "task",
            "resolve",
            "--id",
            &"ab".repeat(32),
            "--worker-share-bps",
            "20000",
        ],
        2,
        "--worker-share-bps",
    );
    // Ours: exit 1, before any network use.
    fails_with(
        &["transfer", "--to", &broken, "--amount", "5", "--key", k],
        1,
        "--to",
    );
    // An address that is not a public key (0xff..ff): nobody could ever spend from it.
    let burn = stint_contracts::AccountId([0xff; 32]).to_address();
    assert!(burn.starts_with("stint1llll"));
    fails_with(
        &["transfer", "--to", &burn, "--amount", "5", "--key", k],
        1,
        "not a public key",
    );
    let burn_csv = dir.path().join("burn.csv");
    std::fs::write(&burn_csv, format!("{valid},10\n{burn},5\n")).unwrap();
    fails_with(
        &[
            "payroll",
            "--csv",
            burn_csv.to_str().unwrap(),
            "--key",
            k,
            "--rpc",
            "http://127.0.0.1:9",
        ],
        1,
        "not a public key",
    );
    fails_with(&["account"], 1, "--key");
    fails_with(
        &[
            "task",
            "approve",
            "--id",
            "xyz",
            "--milestone",
            "0",
            "--key",
            k,
        ],
        1,
        "64 hex digits",
    );
    fails_with(
        &[
            "transfer",
            "--to",
            &valid,
            "--amount",
            "5",
            "--key",
            "/nonexistent/k.json",
        ],
        1,
        "key file",
    );
    fails_with(
        &[
            "transfer",
            "--to",
            &valid,
            "--amount",
            "5",
            "--key",
            k,
            "--rpc",
            "http://127.0.0.1:9",
        ],
        1,
        "cannot reach the node",
    );
    fails_with(&["account", "--rpc", "ftp://x", "--key", k], 1, "http://");
    // Local pre-checks: refused before any network use (the node here does not exist).
    let offline = ["--key", k, "--rpc", "http://127.0.0.1:9"];
    fails_with(
        &[&["transfer", "--to", &valid, "--amount", "0"][..], &offline].concat(),
        1,
        "--amount must be positive: a transfer of 0 would only pay the fee",
    );
    let twice = dir.path().join("twice.csv");
    std::fs::write(&twice, format!("address,amount\n{valid},10\n{valid},5\n")).unwrap();
    fails_with(
        &[&["payroll", "--csv", twice.to_str().unwrap()][..], &offline].concat(),
        1,
        "payroll CSV line 3: ",
    );
    fails_with(
        &[&["payroll", "--csv", twice.to_str().unwrap()][..], &offline].concat(),
        1,
        "is paid on line 2 already",
    );
    let csv = dir.path().join("pay.csv");
    std::fs::write(&csv, format!("{valid},10\n{broken},5\n")).unwrap();
    fails_with(
        &[
            "payroll",
            "--csv",
            csv.to_str().unwrap(),
            "--key",
            k,
            "--rpc",
            "http://127.0.0.1:9",
        ],
        1,
        "line 2",
    );
}

#[test]
fn devnet_and_genesis_refuse_bad_flags_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("net");
    let d = d.to_str().unwrap();
    fails_with(
        &["devnet", "--dir", d, "--fault", "overdraft"],
        2,
        "--fault-batch",
    );
    fails_with(
        &["devnet", "--dir", d, "--fault", "lying"],
        2,
        "bad-state-root",
    );
    fails_with(
        &["devnet", "--dir", d, "--fault", "censor"],
        2,
        "--fault-account",
    );
    fails_with(
        &["devnet", "--dir", d, "--block-interval", "0"],
        2,
        "--block-interval",
    );
    fails_with(
        &["devnet", "--dir", d, "--dispute-window", "0"],
        2,
        "--dispute-window",
    );
    fails_with(
        &[
            "devnet",
            "--dir",
            d,
            "--rpc-port",
            "7000",
            "--verifier-rpc-port",
            "7000",
        ],
        1,
        "must differ",
    );
    fails_with(
        &[
            "genesis",
            "--dir",
            d,
            "--bitcoind-rpc",
            "http://127.0.0.1:1",
        ],
        1,
        "--bitcoind-cookie",
    );
    fails_with(
        &[
            "genesis",
            "--dir",
            d,
            "--bitcoind-rpc",
            "http://127.0.0.1:1",
            "--bitcoind-user",
            "u",
        ],
        2,
        "--bitcoind-password",
    );
    // A port in use is found before bitcoind starts or the folder is made.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    fails_with(
        &["devnet", "--dir", d, "--verifier-rpc-port", &port],
        1,
        "pass --verifier-rpc-port with another port",
    );
    // Nothing was created.
    assert!(!Path::new(d).exists());
}

#[test]
fn field_prints_one_field_or_names_the_ones_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.json");
    let k = key.to_str().unwrap();
    assert!(stint(&["key", "new", "--out", k]).status.success());
    let out = stint(&["key", "show", "--key", k, "--field", "address"]);
    assert!(out.status.success());
    let address = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        address.starts_with("stint1") && !address.contains(' '),
        "{address}"
    );
    fails_with(
        &["key", "show", "--key", k, "--field", "balance"],
        1,
        "it has: address",
    );
    fails_with(
        &["key", "show", "--key", k, "--field", "address", "--json"],
        2,
        "--json",
    );
}

#[test]
fn mistakes_get_messages_that_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.json");
    let k = key.to_str().unwrap();
    assert!(stint(&["key", "new", "--out", k]).status.success());
    // A name where an address goes: say what an address looks like.
    fails_with(
        &["transfer", "--to", "bob", "--amount", "5", "--key", k],
        1,
        "--to bob: not a Stint address (an address starts with stint1",
    );
    // Control characters from arguments are never echoed raw to the terminal.
    let out = stint(&[
        "transfer",
        "--to",
        "bob\u{1b}[31m",
        "--amount",
        "5",
        "--key",
        k,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "raw escape echoed: {stderr:?}");
    assert!(stderr.contains("not a Stint address"), "{stderr}");
    // `stint account` reads; without an address or a key it asks which account.
    let out = stint(&["account"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("which account?"), "{stderr}");
    assert!(!stderr.contains("signs"), "{stderr}");
    // A folder given as --key is named as a folder, not as a key with open permissions.
    let folder = format!("{}/", dir.path().display());
    fails_with(
        &["account", "--key", &folder],
        1,
        "is a directory, not a key file",
    );
}

/// The help of every wallet command has one layout: the command's own options first, then
/// "Sending options" (fee, waiting, `--via-bitcoin`, on commands that send), the bitcoind
/// wallet that pays for `--via-bitcoin`, then the wallet options every command takes, each
/// group under its heading and nothing of one group mixed into another.
#[test]
fn help_groups_own_sending_and_wallet_options_the_same_way_everywhere() {
    let sections = |args: &[&str]| {
        let out = stint(args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // Heading → the flags listed under it, in order.
        let mut sections: Vec<(String, Vec<String>)> = Vec::new();
        for line in text.lines() {
            if !line.starts_with(' ') && line.ends_with(':') {
                sections.push((line.trim_end_matches(':').to_owned(), Vec::new()));
            } else if let Some(flag) = line.trim_start().strip_prefix("--") {
                let name = flag.split([' ', '=', '<']).next().unwrap_or("").to_owned();
                if let Some((_, flags)) = sections.last_mut() {
                    flags.push(name);
                }
            }
        }
        sections
    };
    let wallet = "Wallet options (any wallet command, before or after its name)";
    let wallet_flags = ["rpc", "key", "json", "field"];
    let sending_flags = [
        "fee",
        "wait",
        "wait-timeout",
        "reconnect-secs",
        "via-bitcoin",
        "btc-fee-rate",
    ];
    let bitcoin = "Bitcoin options (stint deposit, --via-bitcoin)";
    let bitcoin_flags = ["btc-wallet", "bitcoind-rpc", "bitcoind-cookie"];
    for (args, own) in [
        (&["transfer", "--help"][..], &["to", "amount"][..]),
        (
            &["task", "create", "--help"],
            &["worker", "arbiter", "milestones"],
        ),
        (&["task", "approve", "--help"], &["id", "milestone"]),
        (
            &["stream", "open", "--help"],
            &["worker", "rate", "duration-secs"],
        ),
        (&["stream", "withdraw", "--help"], &["id"]),
    ] {
        let sections = sections(args);
        let names: Vec<&str> = sections.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(
            names,
            ["Options", "Sending options", bitcoin, wallet],
            "{args:?}: headings {names:?}"
        );
        let flags = |heading: &str| {
            sections
                .iter()
                .find(|(h, _)| h == heading)
                .map(|(_, f)| f.clone())
                .unwrap_or_default()
        };
        for flag in own {
            assert!(
                flags("Options").contains(&flag.to_string()),
                "{args:?} --{flag}"
            );
        }
        assert_eq!(flags("Sending options"), sending_flags, "{args:?}");
        assert_eq!(flags(bitcoin), bitcoin_flags, "{args:?}");
        assert_eq!(flags(wallet), wallet_flags, "{args:?}");
    }
    // Read-only commands take the wallet options too, and have no sending options.
    let show = sections(&["task", "show", "--help"]);
    assert!(show.iter().all(|(h, _)| h != "Sending options"), "{show:?}");
    assert!(show.iter().any(|(h, f)| h == wallet && f == &wallet_flags));
}
