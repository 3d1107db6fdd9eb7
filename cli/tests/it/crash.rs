//! Priority 3: `stint sequencer` under steady JSON-RPC load, killed with SIGKILL at random
//! moments several times. After each restart every acknowledged tx has a receipt, nothing is
//! executed twice, and the balances equal exactly the sum of the executed transfers.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{free_port, write_private};
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use k256::schnorr::SigningKey;
use rand::Rng;
use serde_json::{json, Value};
use stint_contracts::{AccountId, Call, Tx};
use stint_protocol::{Genesis, GenesisAlloc};
use tokio::sync::Mutex;

const CHAIN_ID: u64 = 4242;
const SENDERS: u8 = 6;
const START: u64 = 10_000_000;
const FEE: u64 = 1;
const KILLS: usize = 4;

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32]).unwrap()
}

/// One transfer a sender made: acknowledged (the RPC answered with the txid) or in doubt (the
/// connection broke before an answer; it may or may not be durable).
#[derive(Clone, Debug)]
struct Sent {
    txid: String,
    from: usize,
    to: usize,
    amount: u64,
    acked: bool,
}

struct Sender {
    index: usize,
    key: SigningKey,
    nonce: u64,
}

async fn rpc(url: &str, method: &str, params: Value) -> Result<Value, String> {
    let client = stint_api::ApiClient::with_timeout(url, Duration::from_secs(10))
        .map_err(|e| format!("client: {e}"))?;
    client.call(method, params).await.map_err(|e| match e {
        stint_api::ClientError::Rpc { .. } => format!("rpc: {e}"),
        other => format!("transport: {other}"),
    })
}

fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_stint"))
        .args(["sequencer", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_healthy(http: &reqwest::Client, url: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = http.get(format!("{url}/health")).send().await {
            if resp.status().is_success() {
                return;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "sequencer exited during startup"
        );
        assert!(Instant::now() < deadline, "sequencer did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Load: each sender sends transfers one after the other until told to stop.
async fn load(
    url: String,
    sender: Arc<Mutex<Sender>>,
    log: Arc<Mutex<Vec<Sent>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let accounts: Vec<AccountId> = (1..=SENDERS)
        .map(|i| AccountId::from_signing_key(&key(i)))
        .collect();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let mut s = sender.lock().await;
        let (to, amount) = {
            let mut rng = rand::thread_rng();
            let mut to = rng.gen_range(0..SENDERS as usize);
            if to == s.index {
                to = (to + 1) % SENDERS as usize;
            }
            (to, rng.gen_range(1..=100u64))
        };
        let tx = Tx {
            chain_id: CHAIN_ID,
            from: AccountId::from_signing_key(&s.key),
            nonce: s.nonce,
            fee: FEE,
            call: Call::Transfer {
                to: accounts[to],
                amount,
            },
        }
        .sign(&s.key)
        .unwrap();
        let txid = tx.txid().to_string();
        match rpc(&url, "stint_sendTransaction", json!([tx])).await {
            Ok(v) => {
                assert_eq!(v, json!(txid));
                s.nonce += 1;
                log.lock().await.push(Sent {
                    txid,
                    from: s.index,
                    to,
                    amount,
                    acked: true,
                });
            }
            Err(e) if e.starts_with("transport") => {
                // In doubt: resolved after the restart.
                log.lock().await.push(Sent {
                    txid,
                    from: s.index,
                    to,
                    amount,
                    acked: false,
                });
                s.nonce += 1;
                drop(s);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_tx_and_executes_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let stint_testkit::FundedNode { node, .. } =
        stint_testkit::FundedNode::start(dir.path(), &[]).await;
    let info = node.client().get_blockchain_info().await.unwrap();

    let secret = SecretKey::from_slice(&[0x43; 32]).unwrap();
    let anchor = Keypair::from_secret_key(&Secp256k1::new(), &secret);
    let anchor_path = dir.path().join("anchor.key");
    write_private(&anchor_path, &hex::encode(secret.secret_bytes()));
    let alloc = (1..=SENDERS)
        .map(|i| GenesisAlloc {
            account: AccountId::from_signing_key(&key(i)),
            balance: START,
        })
        .collect();
    let fee_recipient = AccountId([0xee; 32]);
    let mut genesis = Genesis::new(
        CHAIN_ID,
        anchor.x_only_public_key().0,
        fee_recipient,
        alloc,
        info.blocks,
        info.bestblockhash,
    );
    genesis.dispute_window = 3;
    std::fs::write(dir.path().join("genesis.json"), genesis.to_json()).unwrap();
    let port = free_port();
    let config = dir.path().join("sequencer.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\ngenesis = \"genesis.json\"\nanchor_key = \"anchor.key\"\n\
             rpc_addr = \"127.0.0.1:{port}\"\nbatch_interval_ms = 100\n\
             [bitcoind]\nrpc_url = \"{}\"\ncookie_file = \"{}\"\npoll_interval_ms = 200\n",
            node.rpc_url(),
            node.cookie_file().display()
        ),
    )
    .unwrap();
    let log_path = dir.path().join("sequencer.log");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let senders: Vec<Arc<Mutex<Sender>>> = (1..=SENDERS)
        .map(|i| {
            Arc::new(Mutex::new(Sender {
                index: usize::from(i - 1),
                key: key(i),
                nonce: 0,
            }))
        })
        .collect();
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let mut child = spawn(&config, &log_path);
    let mut acked_total = 0usize;
    for round in 0..=KILLS {
        wait_healthy(&http, &url, &mut child).await;
        check(&url, &log, &senders, fee_recipient).await;
        if round == KILLS {
            break;
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks: Vec<_> = senders
            .iter()
            .map(|s| tokio::spawn(load(url.clone(), s.clone(), log.clone(), stop.clone())))
            .collect();
        // Kill at a random moment after the restarted sequencer acknowledged something (a
        // loaded machine can take a while to answer the first request after a restart).
        let progress_deadline = Instant::now() + Duration::from_secs(60);
        while log.lock().await.iter().filter(|s| s.acked).count() <= acked_total {
            assert!(
                Instant::now() < progress_deadline,
                "round {round}: no acknowledgement within 60 s under load"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pause = rand::thread_rng().gen_range(0..1_200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
        let acked = log.lock().await.iter().filter(|s| s.acked).count();
        assert!(acked > acked_total, "round {round}: no progress under load");
        acked_total = acked;
        child = spawn(&config, &log_path);
    }
    println!("{acked_total} acknowledged transfers over {KILLS} kills");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// After a (re)start: every acknowledged tx has a receipt; in-doubt txs either have one or are
/// unknown (then their nonce is reused); once everything is executed, every balance is exactly
/// what the executed transfers imply.
async fn check(
    url: &str,
    log: &Arc<Mutex<Vec<Sent>>>,
    senders: &[Arc<Mutex<Sender>>],
    fee_recipient: AccountId,
) {
    let mut log = log.lock().await;
    let mut executed: Vec<Sent> = Vec::new();
    let mut lost_nonce: BTreeMap<usize, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for sent in log.iter_mut() {
        loop {
            match rpc(url, "stint_getReceipt", json!([sent.txid])).await {
                Ok(r) if r["finality"] == "pending" => {
                    assert!(Instant::now() < deadline, "not sealed: {r}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(r) => {
                    assert_eq!(r["status"], "executed", "{r}");
                    executed.push(sent.clone());
                    sent.acked = true;
                    break;
                }
                Err(e) => {
                    assert!(!sent.acked, "acknowledged tx {} lost: {e}", sent.txid);
                    *lost_nonce.entry(sent.from).or_default() += 1;
                    break;
                }
            }
        }
    }
    // Unknown in-doubt txs never happened: forget them and give their nonces back. (They are the
    // last ones of their sender, since each sender waits for an answer before the next.)
    log.retain(|s| s.acked);
    for (from, n) in lost_nonce {
        senders[from].lock().await.nonce -= n as u64;
    }
    // Each txid at most once (the log holds distinct nonces per sender).
    let mut seen = std::collections::BTreeSet::new();
    for s in &executed {
        assert!(seen.insert(s.txid.clone()), "{} executed twice", s.txid);
    }
    let mut expected: Vec<i128> = vec![i128::from(START); usize::from(SENDERS)];
    for s in &executed {
        expected[s.from] -= i128::from(s.amount + FEE);
        expected[s.to] += i128::from(s.amount);
    }
    for (i, want) in expected.iter().enumerate() {
        let address = AccountId::from_signing_key(&key(i as u8 + 1)).to_address();
        let acc = rpc(url, "stint_getAccount", json!([address]))
            .await
            .unwrap();
        assert_eq!(
            i128::from(acc["balance"].as_u64().unwrap()),
            *want,
            "sender {i}"
        );
        let nonce = senders[i].lock().await.nonce;
        assert_eq!(acc["nonce"].as_u64().unwrap(), nonce, "sender {i} nonce");
    }
    let fees = rpc(url, "stint_getAccount", json!([fee_recipient.to_address()]))
        .await
        .unwrap();
    assert_eq!(
        fees["balance"].as_u64().unwrap(),
        executed.len() as u64 * FEE
    );
}
