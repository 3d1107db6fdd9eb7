//! Watchtowers end to end (issue #5): a real `stint sequencer` process (with a fault mode), real
//! `stint verifier` processes and a real bitcoind in regtest.
//!
//! Every test drives the sequencer over JSON-RPC, seals batches with the admin method (so the
//! batch contents are known), and mines a block on every poll while it waits, so dispute windows
//! run out in seconds. What is checked is what users see: receipts reaching `final`, balances on
//! the sequencer and on the verifiers, the verifiers' status, and the metrics of both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, rpc_result, write_private};
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{FeeRate, Network};
use k256::schnorr::SigningKey;
use serde_json::{json, Value};
use stint_anchor::{Anchorer, BitcoindClient, RegtestNode};
use stint_contracts::{AccountId, Call, Tx};
use stint_protocol::{
    build_fraud_proof, find_block_envelopes, Batch, Bridge, DepositTag, Envelope, EnvelopeKind,
    FraudProof, Genesis, GenesisAlloc, Judge, Verdict,
};
use stint_state::MemoryNodeStore;
use stint_verifier::{replay_batch, ReplayVerdict};

const CHAIN_ID: u64 = 5_150;
const USERS: u8 = 5;
const START: u64 = 1_000_000;
const FEE: u64 = 2;
const ADMIN_TOKEN: &str = "watchtower-test-admin-token";
/// Blocks a batch can be challenged for. The tests mine a block about every 300 ms while they
/// wait, so this is several seconds for the verifier to detect, prove and post.
const WINDOW: u64 = 24;
const WAIT: Duration = Duration::from_secs(180);

fn user_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[0x20 + i; 32]).unwrap()
}

fn user(i: u8) -> AccountId {
    AccountId::from_signing_key(&user_key(i))
}

/// A transfer of `amount` from user `from` to user `to` at `nonce`, signed.
fn signed_transfer(from: u8, to: u8, nonce: u64, amount: u64) -> stint_contracts::SignedTx {
    Tx {
        chain_id: CHAIN_ID,
        from: user(from),
        nonce,
        fee: FEE,
        call: Call::Transfer {
            to: user(to),
            amount,
        },
    }
    .sign(&user_key(from))
    .unwrap()
}

/// A child `stint` process, killed when dropped (its log is printed on failure).
struct Node {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(&self.log) {
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- last lines of {} ---", self.log.display());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

fn spawn(command: &str, config: &Path, log: PathBuf, url: String) -> Node {
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_stint"))
        .args([command, "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    Node { child, url, log }
}

/// Runs `stint status` against a sequencer and a verifier: exit code, stdout, stderr.
fn stint_status(rpc: &str, verifier_rpc: &str, extra: &[&str]) -> (Option<u8>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stint"))
        .args(["status", "--rpc", rpc, "--verifier-rpc", verifier_rpc])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().and_then(|c| u8::try_from(c).ok()),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A regtest node, a genesis and the users' nonces.
struct Net {
    dir: tempfile::TempDir,
    node: RegtestNode,
    wallet: BitcoindClient,
    genesis: Genesis,
    http: reqwest::Client,
    nonces: BTreeMap<u8, u64>,
}

impl Net {
    async fn start(verifier_wallets: &[&str]) -> Net {
        Self::start_with_window(verifier_wallets, stint_protocol::MAX_SEQUENCING_WINDOW).await
    }

    /// [`Net::start`] with genesis `sequencing_window` = `window`.
    async fn start_with_window(verifier_wallets: &[&str], window: u64) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let stint_testkit::FundedNode { node, wallet } =
            stint_testkit::FundedNode::start(dir.path(), verifier_wallets).await;
        let info = node.client().get_blockchain_info().await.unwrap();

        let secret = SecretKey::from_slice(&[0x5a; 32]).unwrap();
        let anchor = Keypair::from_secret_key(&Secp256k1::new(), &secret);
        write_private(
            &dir.path().join("anchor.key"),
            &hex::encode(secret.secret_bytes()),
        );
        let alloc = (0..USERS)
            .map(|i| GenesisAlloc {
                account: user(i),
                balance: START,
            })
            .collect();
        let mut genesis = Genesis::new(
            CHAIN_ID,
            anchor.x_only_public_key().0,
            AccountId([0xfe; 32]),
            alloc,
            info.blocks,
            info.bestblockhash,
        );
        genesis.dispute_window = WINDOW;
        genesis.checkpoint_interval = 4;
        // Most tests seal hundreds of batches at once and the sequencer anchors one per block: a
        // window of 144 blocks would make it re-seal the later ones on fresher origins
        // (correctly), which is not what they are about; they use the largest window.
        genesis.sequencing_window = window;
        genesis.bridge = Some(Bridge {
            signers: (1..=3u8)
                .map(|i| {
                    let secret = SecretKey::from_slice(&[0x60 + i; 32]).unwrap();
                    Keypair::from_secret_key(&Secp256k1::new(), &secret)
                        .x_only_public_key()
                        .0
                })
                .collect(),
            threshold: 2,
            min_deposit: 1_000,
        });
        std::fs::write(dir.path().join("genesis.json"), genesis.to_json()).unwrap();
        Net {
            dir,
            node,
            wallet,
            genesis,
            http: reqwest::Client::new(),
            nonces: BTreeMap::new(),
        }
    }

    fn bitcoind_toml(&self, wallet: &str) -> String {
        format!(
            "[bitcoind]\nrpc_url = \"{}\"\ncookie_file = \"{}\"\nwallet = \"{wallet}\"\n\
             poll_interval_ms = 100\n",
            self.node.rpc_url(),
            self.node.cookie_file().display()
        )
    }

    /// A `stint sequencer` process; batches are sealed only by [`Net::seal`] (or when a rollback
    /// re-seals).
    async fn sequencer(&self, fault: Option<(&str, u64)>) -> Node {
        let fault = fault
            .map(|(mode, batch)| format!("[fault]\nmode = \"{mode}\"\nbatch = {batch}\n"))
            .unwrap_or_default();
        self.sequencer_with(&fault).await
    }

    /// A `stint sequencer` process whose config ends with `fault` (a `[fault]` table or nothing).
    async fn sequencer_with(&self, fault: &str) -> Node {
        let port = free_port();
        let config = self.dir.path().join("sequencer.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"sequencer\"\ngenesis = \"genesis.json\"\nanchor_key = \"anchor.key\"\n\
                 rpc_addr = \"127.0.0.1:{port}\"\nbatch_interval_ms = 3600000\n\
                 admin_token = \"{ADMIN_TOKEN}\"\n{fault}{}",
                self.bitcoind_toml("stint")
            ),
        )
        .unwrap();
        let node = spawn(
            "sequencer",
            &config,
            self.dir.path().join("sequencer.log"),
            format!("http://127.0.0.1:{port}"),
        );
        self.wait_healthy(&node).await;
        node
    }

    /// A `stint verifier` process named `name` with its own fee wallet; it posts challenges when
    /// `challenges` is set (otherwise it only watches).
    async fn verifier(&self, name: &str, key_seed: u8, challenges: bool) -> Node {
        let port = free_port();
        let key = if challenges {
            let secret = [key_seed; 32];
            let account = stint_verifier::ChallengeKey::from_secret(&secret)
                .unwrap()
                .account();
            let path = self.dir.path().join(format!("{name}.key"));
            write_private(
                &path,
                &json!({"address": account.to_address(), "secret_key": hex::encode(secret)})
                    .to_string(),
            );
            format!("challenge_key_file = \"{}\"\n", path.display())
        } else {
            String::new()
        };
        let config = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{name}\"\ngenesis = \"{}\"\nrpc_addr = \"127.0.0.1:{port}\"\n\
                 bump_after_blocks = 2\n{key}{}",
                self.dir.path().join("genesis.json").display(),
                self.bitcoind_toml(name)
            ),
        )
        .unwrap();
        let node = spawn(
            "verifier",
            &config,
            self.dir.path().join(format!("{name}.log")),
            format!("http://127.0.0.1:{port}"),
        );
        self.wait_healthy(&node).await;
        node
    }

    async fn wait_healthy(&self, node: &Node) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) = self.http.get(format!("{}/health", node.url)).send().await {
                if resp.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{} did not come up", node.url);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn rpc(&self, node: &Node, method: &str, params: Value) -> Value {
        rpc_result(&node.url, Some(ADMIN_TOKEN), method, params).await
    }

    async fn metric(&self, node: &Node, name: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", node.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }

    async fn mine(&self, n: u64) {
        let to = self.wallet.get_new_address(Network::Regtest).await.unwrap();
        self.wallet.generate_to_address(n, &to).await.unwrap();
    }

    /// Mine a block every ~300 ms until `done` holds.
    async fn mine_until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + WAIT;
        while !done().await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.mine(1).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Mine until the sequencer's final head reaches its soft head as it is now; returns that
    /// batch number.
    async fn wait_soft_head_final(&self, seq: &Node) -> u64 {
        let soft = self.rpc(seq, "stint_syncStatus", json!([])).await["soft"]["number"]
            .as_u64()
            .unwrap();
        self.mine_until("the soft head to be final", || async {
            self.rpc(seq, "stint_syncStatus", json!([])).await["final"]["number"].as_u64()
                >= Some(soft)
        })
        .await;
        soft
    }

    /// Send a transfer signed by user `from`; returns its txid.
    async fn transfer(&mut self, seq: &Node, from: u8, to: u8, amount: u64) -> String {
        let nonce = self.nonces.entry(from).or_insert(0);
        let tx = signed_transfer(from, to, *nonce, amount);
        *nonce += 1;
        let txid = self.rpc(seq, "stint_sendTransaction", json!([tx])).await;
        assert_eq!(txid, json!(tx.txid().to_string()));
        tx.txid().to_string()
    }

    async fn seal(&self, seq: &Node) -> u64 {
        let sealed = self.rpc(seq, "stint_sealBatch", json!([])).await;
        sealed["batch"].as_u64().expect("a batch was sealed")
    }

    async fn receipt(&self, seq: &Node, txid: &str) -> Value {
        self.rpc(seq, "stint_getReceipt", json!([txid])).await
    }

    /// Wait until every tx in `txids` is `final` on the sequencer.
    async fn wait_final(&self, seq: &Node, txids: &[String]) {
        self.mine_until("every tx final", || async {
            for txid in txids {
                if self.receipt(seq, txid).await["finality"] != "final" {
                    return false;
                }
            }
            true
        })
        .await;
    }

    async fn balance(&self, node: &Node, i: u8) -> u64 {
        let account = self
            .rpc(node, "stint_getAccount", json!([user(i).to_address()]))
            .await;
        account["balance"].as_u64().unwrap()
    }

    /// Every batch envelope under the genesis anchor key found on the active chain, decoded.
    async fn anchored_batches(&self) -> Vec<Batch> {
        let client = self.node.client();
        let tip = client.get_block_count().await.unwrap();
        let mut out = Vec::new();
        for height in self.genesis.l1_start_height + 1..=tip {
            let hash = client.get_block_hash(height).await.unwrap();
            let block = client.get_block(&hash).await.unwrap();
            for found in find_block_envelopes(&block) {
                if found.envelope.kind == EnvelopeKind::Batch
                    && found.envelope.key == self.genesis.anchor_key
                {
                    let Ok(envelope) = found.envelope.decode() else {
                        continue;
                    };
                    if let Ok(batch) = Batch::decode(&envelope.payload) {
                        out.push(batch);
                    }
                }
            }
        }
        out
    }

    /// Post a challenge envelope carrying `proof` from a key nobody else uses.
    async fn post_challenge(&self, proof: &FraudProof) {
        let secret = SecretKey::from_slice(&[0x77; 32]).unwrap();
        let keypair = Keypair::from_secret_key(&Secp256k1::new(), &secret);
        let anchorer = Anchorer::new(self.wallet.clone(), keypair, Network::Regtest);
        let envelope = Envelope::new(
            EnvelopeKind::Challenge,
            anchorer.key(),
            proof.encode().unwrap(),
        );
        anchorer
            .post(&envelope, None, FeeRate::from_sat_per_vb_u32(2))
            .await
            .unwrap();
    }

    /// Post a forced-tx envelope carrying `tx` from a key nobody else uses (protocol v3).
    async fn post_forced(&self, tx: &stint_contracts::SignedTx) {
        let secret = SecretKey::from_slice(&[0x78; 32]).unwrap();
        let keypair = Keypair::from_secret_key(&Secp256k1::new(), &secret);
        let anchorer = Anchorer::new(self.wallet.clone(), keypair, Network::Regtest);
        let envelope = Envelope::new(EnvelopeKind::ForcedTx, anchorer.key(), tx.encode());
        anchorer
            .post(&envelope, None, FeeRate::from_sat_per_vb_u32(2))
            .await
            .unwrap();
    }

    /// Pay `sats` to the bridge with a deposit tag naming `to`, from the main wallet, and mine it
    /// (through `generateblock`, so relay policy on data outputs plays no part); returns the
    /// block that holds it.
    async fn deposit(&self, to: AccountId, sats: u64) -> bitcoin::BlockHash {
        let bridge = self.genesis.bridge.as_ref().unwrap();
        let unfunded = bitcoin::Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![],
            output: vec![
                bitcoin::TxOut {
                    value: bitcoin::Amount::from_sat(sats),
                    script_pubkey: bridge.script_pubkey().unwrap(),
                },
                bitcoin::TxOut {
                    value: bitcoin::Amount::ZERO,
                    script_pubkey: DepositTag { account: to }.to_script(),
                },
            ],
        };
        let (funded, _) = self
            .wallet
            .fund_raw_transaction(&unfunded, FeeRate::from_sat_per_vb_u32(2))
            .await
            .unwrap();
        let signed = self
            .wallet
            .sign_raw_transaction_with_wallet(&funded)
            .await
            .unwrap();
        let to_address = self.wallet.get_new_address(Network::Regtest).await.unwrap();
        self.wallet
            .generate_block(&to_address, &[], &[&signed])
            .await
            .unwrap()
    }

    /// A key file (mode 0600) for user `i`, for the `stint` wallet commands.
    fn user_key_file(&self, i: u8) -> PathBuf {
        let path = self.dir.path().join(format!("user{i}.key"));
        write_private(
            &path,
            &json!({"address": user(i).to_address(), "secret_key": hex::encode(user_key(i).to_bytes())})
                .to_string(),
        );
        path
    }

    /// The outpoint paying the bridge in block `block` (mined by [`Net::deposit`]).
    async fn deposit_outpoint(&self, block: bitcoin::BlockHash) -> bitcoin::OutPoint {
        let script = self
            .genesis
            .bridge
            .as_ref()
            .unwrap()
            .script_pubkey()
            .unwrap();
        let block = self.node.client().get_block(&block).await.unwrap();
        for tx in &block.txdata {
            if let Some(vout) = tx.output.iter().position(|o| o.script_pubkey == script) {
                return bitcoin::OutPoint {
                    txid: tx.compute_txid(),
                    vout: vout as u32,
                };
            }
        }
        panic!("no bridge payment in the block");
    }

    /// The JSON-RPC error `method` answers with.
    async fn rpc_error(&self, node: &Node, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp: Value = self
            .http
            .post(&node.url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["error"].clone()
    }

    fn genesis_store(&self) -> MemoryNodeStore {
        let mut store = MemoryNodeStore::new();
        store.write(&self.genesis.state_update().unwrap());
        store
    }
}

/// The balances the honest execution of `transfers` (from, to, amount; all succeed) leaves.
fn expected_balances(transfers: &[(u8, u8, u64)], failed: &[u8]) -> BTreeMap<u8, u64> {
    let mut balances: BTreeMap<u8, u64> = (0..USERS).map(|i| (i, START)).collect();
    for (from, to, amount) in transfers {
        *balances.get_mut(from).unwrap() -= amount + FEE;
        *balances.get_mut(to).unwrap() += amount;
    }
    for from in failed {
        *balances.get_mut(from).unwrap() -= FEE;
    }
    balances
}

async fn verified(net: &Net, v: &Node) -> (u64, String) {
    let status = net.rpc(v, "stint_verifierStatus", json!([])).await;
    (
        status["verified"]["number"].as_u64().unwrap(),
        status["verified"]["stateRoot"].as_str().unwrap().to_owned(),
    )
}

async fn challenges(net: &Net, v: &Node) -> Vec<Value> {
    net.rpc(v, "stint_verifierStatus", json!([])).await["challenges"]
        .as_array()
        .unwrap()
        .clone()
}

/// The sequencer's final head and the verifier's verified head agree (same number and root).
async fn assert_agree(net: &Net, seq: &Node, verifiers: &[&Node]) -> (u64, String) {
    let sync = net.rpc(seq, "stint_syncStatus", json!([])).await;
    let number = sync["final"]["number"].as_u64().unwrap();
    let root = sync["final"]["stateRoot"].as_str().unwrap().to_owned();
    for v in verifiers {
        net.mine_until("the verifier to verify the final head", || async {
            verified(net, v).await.0 >= number
        })
        .await;
        let batch = net.rpc(v, "stint_getBatch", json!([number])).await;
        assert_eq!(
            batch["stateRoot"],
            json!(root),
            "verifier {} disagrees",
            v.url
        );
    }
    (number, root)
}

/// One fault mode, end to end: batch 1 honest, batch 2 committed with `mode`, batch 3 on top.
/// The verifier(s) challenge batch 2; it and batch 3 are rolled back on every node; the
/// sequencer re-executes all their txs honestly; every honest tx ends `final`.
async fn fault_mode_is_challenged_and_rolled_back(mode: &str, verifiers: &[&str]) {
    let mut net = Net::start(verifiers).await;
    let seq = net.sequencer(Some((mode, 2))).await;
    let mut vs = Vec::new();
    for (i, name) in verifiers.iter().enumerate() {
        vs.push(net.verifier(name, 0x51 + i as u8, true).await);
    }

    let mut transfers = Vec::new();
    let mut txids = Vec::new();
    // Batch 1.
    for (from, to, amount) in [(0, 1, 1_000), (1, 2, 500), (2, 3, 250)] {
        txids.push(net.transfer(&seq, from, to, amount).await);
        transfers.push((from, to, amount));
    }
    assert_eq!(net.seal(&seq).await, 1);
    // Batch 2: 9 transfers (segments of 4, 4, 1), and for `overdraft` one beyond the balance
    // last (the sequencer overdraws a sender that sends nothing after it).
    let mut failed = Vec::new();
    let mut overdraft_txid = None;
    for i in 0..9u8 {
        let (from, to) = (i % USERS, (i + 2) % USERS);
        let amount = 100 + u64::from(i);
        txids.push(net.transfer(&seq, from, to, amount).await);
        transfers.push((from, to, amount));
    }
    if mode == "overdraft" {
        let txid = net.transfer(&seq, 4, 0, START * 10).await;
        overdraft_txid = Some(txid.clone());
        txids.push(txid);
        failed.push(4);
    }
    assert_eq!(net.seal(&seq).await, 2);
    let forged = net.rpc(&seq, "stint_getBatch", json!([2])).await;
    let forged_hash = forged["hash"].as_str().unwrap().to_owned();
    // Batch 3 on top of the fraudulent one (unless the challenge already rolled it back).
    for (from, to, amount) in [(3, 4, 70), (4, 0, 30)] {
        txids.push(net.transfer(&seq, from, to, amount).await);
        transfers.push((from, to, amount));
    }
    net.seal(&seq).await;

    // Every verifier detects the fraud; exactly one challenge is accepted.
    net.mine_until("an accepted challenge", || async {
        for v in &vs {
            if challenges(&net, v)
                .await
                .iter()
                .any(|c| c["status"] == "accepted")
            {
                return true;
            }
        }
        false
    })
    .await;
    // Every honest tx ends final (the rolled-back ones re-executed).
    net.wait_final(&seq, &txids).await;
    let mut accepted = 0;
    for v in &vs {
        for c in challenges(&net, v).await {
            assert_eq!(c["batch"], json!(2), "{c}");
            assert_eq!(c["batchHash"], json!(forged_hash), "{c}");
            if c["status"] == "accepted" {
                accepted += 1;
            } else {
                assert!(
                    ["posted", "confirmed", "rejected"].contains(&c["status"].as_str().unwrap()),
                    "{c}"
                );
            }
        }
    }
    assert_eq!(accepted, 1, "exactly one challenge wins");
    for txid in &txids {
        let receipt = net.receipt(&seq, txid).await;
        let expected = if Some(txid) == overdraft_txid.as_ref() {
            "failed"
        } else {
            "executed"
        };
        assert_eq!(receipt["status"], expected, "{receipt}");
        assert_eq!(receipt["finality"], "final", "{receipt}");
    }
    // Batch 2 is a different (honest) batch now.
    let batch2 = net.rpc(&seq, "stint_getBatch", json!([2])).await;
    assert_ne!(batch2["hash"], json!(forged_hash));
    assert_eq!(net.metric(&seq, "stint_sequencer_rollbacks_total").await, 1);

    // Sequencer and verifiers agree on the final state, and on every balance.
    let refs: Vec<&Node> = vs.iter().collect();
    assert_agree(&net, &seq, &refs).await;
    let want = expected_balances(&transfers, &failed);
    for (i, balance) in want {
        assert_eq!(
            net.balance(&seq, i).await,
            balance,
            "user {i} on the sequencer"
        );
        for v in &vs {
            assert_eq!(net.balance(v, i).await, balance, "user {i} on {}", v.url);
        }
    }
    // Every verifier dropped the fraudulent batch 2 (it never took on its state) and verified
    // the honest batch 2 the sequencer re-sealed in its place.
    for v in &vs {
        let theirs = net.rpc(v, "stint_getBatch", json!([2])).await;
        assert_eq!(theirs["hash"], batch2["hash"], "verifier {}", v.url);
        let status = net.rpc(v, "stint_verifierStatus", json!([])).await;
        assert!(
            status["verified"]["number"].as_u64() >= Some(2),
            "verifier {}: {status}",
            v.url
        );
        assert!(
            status["pendingFraud"].is_null(),
            "verifier {}: {status}",
            v.url
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_state_root_with_two_verifiers() {
    fault_mode_is_challenged_and_rolled_back("bad-state-root", &["v1", "v2"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_checkpoint() {
    fault_mode_is_challenged_and_rolled_back("bad-checkpoint", &["v1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_signature() {
    fault_mode_is_challenged_and_rolled_back("invalid-signature", &["v1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdraft() {
    fault_mode_is_challenged_and_rolled_back("overdraft", &["v1"]).await;
}

/// A well-formed challenge against an honest batch of the real sequencer, and a valid challenge
/// anchored after the window closed, change nothing anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_late_challenges_change_nothing() {
    let mut net = Net::start(&["v1"]).await;
    // Batch 1 honest, batch 2 fraudulent, and nobody watching in time.
    let seq = net.sequencer(Some(("bad-state-root", 2))).await;
    let mut txids = Vec::new();
    for i in 0..6u8 {
        txids.push(net.transfer(&seq, i % USERS, (i + 1) % USERS, 10).await);
    }
    assert_eq!(net.seal(&seq).await, 1);
    net.mine_until("batch 1 anchored", || async {
        net.rpc(&seq, "stint_syncStatus", json!([])).await["anchored"]["number"] == 1
    })
    .await;
    let honest = match net.anchored_batches().await.as_slice() {
        [one] => one.clone(),
        other => panic!("expected 1 anchored batch, found {}", other.len()),
    };
    let genesis_store = net.genesis_store();

    // Forged: a well-formed proof against honest segment 1 of batch 1 (its pre-state is the
    // genesis), inside its window; the judge finds no fraud.
    let tree = stint_state::SparseMerkleTree::new(&genesis_store);
    let proof = build_fraud_proof(&net.genesis, &tree, &honest, 1, AccountId([3; 32])).unwrap();
    assert_eq!(
        Judge::judge(&net.genesis, honest.header(), &proof).unwrap(),
        Verdict::NoFraud
    );
    net.post_challenge(&proof).await;

    for i in 0..5u8 {
        txids.push(net.transfer(&seq, i, (i + 3) % USERS, 20).await);
    }
    assert_eq!(net.seal(&seq).await, 2);
    net.mine_until("batch 2 final", || async {
        net.rpc(&seq, "stint_syncStatus", json!([])).await["final"]["number"] == 2
    })
    .await;
    let forged = match net.anchored_batches().await.as_slice() {
        [_, two] => two.clone(),
        other => panic!("expected 2 anchored batches, found {}", other.len()),
    };

    // Late: a valid proof against batch 2, after its window closed.
    let mut store = genesis_store.clone();
    let ReplayVerdict::Honest(first) =
        replay_batch(&net.genesis, &store, &honest, &[], AccountId([3; 32])).unwrap()
    else {
        panic!("batch 1 is honest");
    };
    for update in &first.updates {
        store.write(update);
    }
    let ReplayVerdict::Fraud(fraud) =
        replay_batch(&net.genesis, &store, &forged, &[], AccountId([3; 32])).unwrap()
    else {
        panic!("batch 2 is fraudulent");
    };
    net.post_challenge(&fraud.proof).await;
    net.mine(3).await;

    // A verifier started now sees both challenges fail: it holds batch 2 as final but unverified
    // (the fraud it finds can no longer be challenged), and posts nothing.
    let v = net.verifier("v1", 0x51, true).await;
    net.mine_until("the verifier to find the fraud", || async {
        net.rpc(&v, "stint_verifierStatus", json!([])).await["pendingFraud"]["batch"] == 2
    })
    .await;
    assert_eq!(verified(&net, &v).await.0, 1);
    assert!(challenges(&net, &v).await.is_empty());
    // A monitor running `stint status` is told: exit code 2, and the fraud named. Against an
    // unreachable verifier, exit code 3 naming the flag to fix.
    let (code, stdout, stderr) = stint_status(&seq.url, &v.url, &["--json"]);
    assert_eq!(
        code,
        Some(stint::EXIT_VERIFIER_DISAGREES),
        "{stdout}{stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["verifier"]["agrees"], json!(false), "{report}");
    assert_eq!(
        report["verifier"]["pending_fraud"]["batch"],
        json!(2),
        "{report}"
    );
    assert!(stderr.contains("found fraud in batch 2"), "{stderr}");
    let (code, stdout, stderr) = stint_status(&seq.url, "http://127.0.0.1:1", &[]);
    assert_eq!(
        code,
        Some(stint::EXIT_VERIFIER_UNREACHABLE),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("verifier    unreachable at http://127.0.0.1:1"),
        "{stdout}"
    );
    assert!(stderr.contains("--verifier-rpc"), "{stderr}");
    let batch2 = net.rpc(&v, "stint_getBatch", json!([2])).await;
    assert_eq!(batch2["status"], "final");
    assert_eq!(batch2["hash"], json!(hex::encode(forged.hash())));
    assert_eq!(net.metric(&v, "stint_verifier_rollbacks_total").await, 0);
    // The sequencer rolled nothing back: every tx is final in its original batch.
    net.wait_final(&seq, &txids).await;
    assert_eq!(net.metric(&seq, "stint_sequencer_rollbacks_total").await, 0);
    let seq_batch2 = net.rpc(&seq, "stint_getBatch", json!([2])).await;
    assert_eq!(seq_batch2["hash"], json!(hex::encode(forged.hash())));
}

/// A verifier started from scratch against a chain of hundreds of batches catches up and agrees
/// with the sequencer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_catches_up_on_hundreds_of_batches() {
    const BATCHES: u64 = 200;
    let mut net = Net::start(&["v1"]).await;
    let seq = net.sequencer(None).await;
    let mut transfers = Vec::new();
    let mut last = String::new();
    for n in 1..=BATCHES {
        let from = (n % u64::from(USERS)) as u8;
        let to = ((n + 1) % u64::from(USERS)) as u8;
        last = net.transfer(&seq, from, to, n).await;
        transfers.push((from, to, n));
        assert_eq!(net.seal(&seq).await, n);
    }
    net.wait_final(&seq, &[last]).await;
    let v = net.verifier("v1", 0x51, true).await;
    let (number, root) = assert_agree(&net, &seq, &[&v]).await;
    assert_eq!(number, BATCHES);
    assert_eq!(verified(&net, &v).await, (BATCHES, root));
    for (i, balance) in expected_balances(&transfers, &[]) {
        assert_eq!(
            net.balance(&v, i).await,
            balance,
            "user {i} on the verifier"
        );
    }
    assert!(challenges(&net, &v).await.is_empty());
}

/// Bitcoin in (protocol v3): a deposit to the bridge and a forced transfer posted by a stranger
/// are executed by the sequencer's next batch, an invalid forced tx is skipped, the batch is
/// anchored and final, and the verifier, reading Bitcoin alone, computes the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_and_forced_txs_from_bitcoin_are_executed_on_both_nodes() {
    let net = Net::start(&["v1"]).await;
    let seq = net.sequencer(None).await;
    let v = net.verifier("v1", 0x61, true).await;
    let forced = |nonce, amount| signed_transfer(0, 1, nonce, amount);
    // Deposits first: they are mined at once with `generateblock` and must not spend the
    // unconfirmed change of the forced txs' commits.
    let depositor = AccountId::from_signing_key(&SigningKey::from_bytes(&[0x44; 32]).unwrap());
    let credited = net
        .deposit_outpoint(net.deposit(depositor, 25_000).await)
        .await;
    // Seen once the sequencer follows its block, not credited before l1_confirmations.
    let deadline = Instant::now() + Duration::from_secs(30);
    let deposit = loop {
        let found =
            rpc_raw_params(&seq.url, "stint_getDeposit", json!([credited.to_string()])).await;
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the sequencer never saw the deposit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(deposit["status"], json!("seen"), "{deposit}");
    assert_eq!(deposit["account"], json!(depositor.to_address()));
    assert_eq!(deposit["amount"], json!(25_000));
    // A deposit below min_deposit is not credited (not a deposit at all).
    let dust = net.deposit_outpoint(net.deposit(user(2), 999).await).await;
    // Nonce 5 is wrong: skipped with a receipt, changes nothing.
    let skipped = forced(5, 1);
    let executed = forced(0, 700);
    net.post_forced(&skipped).await;
    net.post_forced(&executed).await;

    // The messages become due once their blocks have l1_confirmations; the sequencer then
    // seals a batch for them with no tx in its mempool.
    let depositor_balance = |node| {
        let net = &net;
        async move {
            net.rpc(node, "stint_getAccount", json!([depositor.to_address()]))
                .await["balance"]
                .as_u64()
        }
    };
    let sealed = std::cell::Cell::new(0u32);
    net.mine_until("batches executing the L1 messages", || async {
        if rpc_raw_result(&seq.url, "stint_sealBatch")
            .await
            .is_some_and(|b| b["batch"].as_u64().is_some())
        {
            sealed.set(sealed.get() + 1);
        }
        net.balance(&seq, 1).await == START + 700 && depositor_balance(&seq).await == Some(25_000)
    })
    .await;
    assert!(sealed.get() >= 1);
    assert_eq!(net.balance(&seq, 1).await, START + 700);
    assert_eq!(net.balance(&seq, 0).await, START - 700 - FEE);
    assert_eq!(net.balance(&seq, 2).await, START);

    // Anchored, final, and the verifier agrees on the state root and the balances.
    let soft = net.wait_soft_head_final(&seq).await;
    let (number, _) = assert_agree(&net, &seq, &[&v]).await;
    assert!(number >= soft);
    // The batches committed to exactly three messages (the deposit and both forced txs; the
    // dust payment is not a message), and both nodes say so.
    for node in [&seq, &v] {
        let mut messages = 0;
        for n in 1..=number {
            messages += net.rpc(node, "stint_getBatch", json!([n])).await["msgCount"]
                .as_u64()
                .unwrap();
        }
        assert_eq!(messages, 3, "{}", node.url);
    }
    assert_eq!(net.balance(&v, 1).await, START + 700);
    assert_eq!(depositor_balance(&v).await, Some(25_000));
    assert_eq!(
        net.metric(&seq, "stint_sequencer_envelopes_rejected_total")
            .await,
        0
    );
    // Both nodes answer for the deposit and the forced txs from their own records.
    for node in [&seq, &v] {
        let deposit = net
            .rpc(node, "stint_getDeposit", json!([credited.to_string()]))
            .await;
        assert_eq!(deposit["status"], json!("credited"), "{deposit}");
        assert_eq!(deposit["amount"], json!(25_000));
        assert_eq!(deposit["finality"], json!("final"));
        assert!(deposit["batch"].as_u64().is_some());
        let err = net
            .rpc_error(node, "stint_getDeposit", json!([dust.to_string()]))
            .await;
        assert_eq!(err["code"], json!(12), "{err}");
        let err = net
            .rpc_error(node, "stint_getDeposit", json!(["not-an-outpoint"]))
            .await;
        assert_eq!(err["code"], json!(-32602), "{err}");

        let receipt = net
            .rpc(
                node,
                "stint_getReceipt",
                json!([executed.txid().to_string()]),
            )
            .await;
        assert_eq!(receipt["status"], json!("executed"), "{receipt}");
        assert_eq!(receipt["finality"], json!("final"));
        assert_eq!(receipt["fee"], json!(FEE));
        assert!(receipt["forced"]["btcTxid"].is_string(), "{receipt}");
        let receipt = net
            .rpc(
                node,
                "stint_getReceipt",
                json!([skipped.txid().to_string()]),
            )
            .await;
        assert_eq!(receipt["status"], json!("skipped"), "{receipt}");
        assert!(
            receipt["error"].as_str().unwrap().contains("nonce"),
            "{receipt}"
        );
        let tx = net
            .rpc(
                node,
                "stint_getTransaction",
                json!([executed.txid().to_string()]),
            )
            .await;
        assert_eq!(tx["raw"], json!(hex::encode(executed.encode())));
        assert_eq!(tx["finality"], json!("final"));
        // The dust payment is reported by every node, not dropped silently.
        let log = std::fs::read_to_string(&node.log).unwrap();
        assert!(
            log.lines()
                .any(|l| l.contains("not a deposit") && l.contains(&dust.to_string())),
            "{} does not report {dust}",
            node.log.display()
        );
    }
}

/// `stint_sealBatch` with the admin token: the result, or `None` when nothing was sealed.
async fn rpc_raw_result(url: &str, method: &str) -> Option<Value> {
    rpc_raw_params(url, method, json!([])).await
}

/// `method(params)` with the admin token: the result, or `None` on an error or a null result.
async fn rpc_raw_params(url: &str, method: &str, params: Value) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let resp: Value = reqwest::Client::new()
        .post(url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    resp.get("result").filter(|r| !r.is_null()).cloned()
}

/// Censorship defeated through Bitcoin (protocol v3): a sequencer running `--fault censor`
/// acknowledges the censored account's RPC txs and never seals them, and holds its L1 origin
/// below the account's forced tx for as long as it can. The sequencing window (S = 6 here,
/// l1_confirmations = 3) forces it in within S + c − 1 blocks of the forced tx's block; the
/// batch is final and the verifier agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_censoring_sequencer_must_execute_a_forced_tx_within_the_sequencing_window() {
    const S: u64 = 6;
    let net = Net::start_with_window(&["v1"], S).await;
    let c = net.genesis.l1_confirmations;
    let seq = net
        .sequencer_with(&format!(
            "[fault]\nmode = \"censor\"\naccount = \"{}\"\n",
            user(0).to_address()
        ))
        .await;
    let v = net.verifier("v1", 0x61, true).await;
    let transfer = |nonce, amount| signed_transfer(0, 1, nonce, amount);
    // The censored account's RPC tx is acknowledged and never executed.
    let ignored = transfer(0, 5);
    let txid = net
        .rpc(&seq, "stint_sendTransaction", json!([ignored]))
        .await;
    assert_eq!(txid, json!(ignored.txid().to_string()));

    let before = net.node.client().get_block_count().await.unwrap();
    net.post_forced(&transfer(0, 700)).await;
    net.mine(1).await;
    let forced_block = before + 1; // mined directly (Knots) or from the mempool (Core)
    let executed_at = std::cell::Cell::new(0u64);
    net.mine_until("the forced transfer to be executed", || async {
        let _ = rpc_raw_result(&seq.url, "stint_sealBatch").await;
        let done = net.balance(&seq, 1).await == START + 700;
        if done {
            executed_at.set(net.node.client().get_block_count().await.unwrap());
        }
        done
    })
    .await;
    let delay = executed_at.get() - forced_block;
    eprintln!("forced tx in block {forced_block}, executed by the censoring sequencer at tip {} ({delay} blocks; S = {S}, c = {c})", executed_at.get());
    // Without the fault it would run once its block has c confirmations (origin tip − 1: a
    // delay of c blocks); the censor held it until the window left no origin below it.
    assert!(
        delay > c,
        "the censor did not hold the forced tx back ({delay} blocks)"
    );
    assert!(delay < S + c, "executed {delay} blocks after its block");
    assert_eq!(net.balance(&seq, 0).await, START - 700 - FEE);

    net.wait_soft_head_final(&seq).await;
    assert_agree(&net, &seq, &[&v]).await;
    assert_eq!(net.balance(&v, 1).await, START + 700);
    assert_eq!(net.balance(&v, 0).await, START - 700 - FEE);
}

/// No sequencer, no stall: with the sequencer stopped, a forced transfer and a deposit are
/// executed by a batch every node derives itself once the sequencing window has passed; the
/// verifier computes its root, the restarted sequencer computes the same one, and continues on
/// top with a batch that restates it; nothing is executed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_sequencer_stopped_every_node_derives_the_batch_and_the_sequencer_continues_on_top(
) {
    const S: u64 = 6;
    let mut net = Net::start_with_window(&["v1"], S).await;
    let c = net.genesis.l1_confirmations;
    let seq = net.sequencer(None).await;
    let v = net.verifier("v1", 0x61, true).await;
    // Batch 1: an ordinary one, anchored, so the derived batch builds on a posted batch.
    net.transfer(&seq, 2, 3, 10).await;
    assert_eq!(net.seal(&seq).await, 1);
    net.wait_soft_head_final(&seq).await;
    drop(seq);

    let depositor = AccountId::from_signing_key(&SigningKey::from_bytes(&[0x47; 32]).unwrap());
    let before = net.node.client().get_block_count().await.unwrap();
    let forced_tx = signed_transfer(0, 1, 0, 700);
    net.post_forced(&forced_tx).await;
    net.mine(1).await;
    let forced_block = before + 1;
    net.deposit(depositor, 30_000).await; // block forced_block + 1
    let derived_at = std::cell::Cell::new(0u64);
    net.mine_until("the verifier to derive batch 2", || async {
        let found = net
            .http
            .post(&v.url)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "stint_getBatch", "params": [2]}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let done = found["result"]["derived"] == json!(true);
        if done {
            derived_at.set(net.node.client().get_block_count().await.unwrap());
        }
        done
    })
    .await;
    let delay = derived_at.get() - forced_block;
    eprintln!(
        "forced tx in block {forced_block}, executed by a derived batch at tip {} ({delay} blocks; S = {S}, c = {c}), with the sequencer stopped",
        derived_at.get()
    );
    assert!(
        delay <= S + c,
        "derived {delay} blocks after the forced tx's block"
    );
    let derived = net.rpc(&v, "stint_getBatch", json!([2])).await;
    assert_eq!(derived["txCount"], json!(0));
    assert_eq!(derived["msgCount"], json!(1), "{derived}");
    assert_eq!(derived["anchor"]["btcTxid"], json!("0".repeat(64)));
    assert_ne!(derived["stateRoot"], json!("0".repeat(64)));
    assert_eq!(net.balance(&v, 1).await, START + 700);
    assert_eq!(net.balance(&v, 0).await, START - 700 - FEE);
    // The deposit's window passes a block later: a second derived batch.
    net.mine_until("the verifier to credit the deposit", || async {
        net.rpc(&v, "stint_getAccount", json!([depositor.to_address()]))
            .await["balance"]
            .as_u64()
            == Some(30_000)
    })
    .await;

    // The sequencer comes back: it derives the same batches with the same roots, and seals on
    // top of them.
    let seq = net.sequencer(None).await;
    let tip = net.rpc(&v, "stint_verifierStatus", json!([])).await["verified"]["number"]
        .as_u64()
        .unwrap();
    assert!(tip >= 3, "two derived batches: {tip}");
    let deadline = Instant::now() + WAIT;
    loop {
        let ours = rpc_raw_result(&seq.url, "stint_syncStatus").await;
        if ours.as_ref().and_then(|s| s["soft"]["number"].as_u64()) >= Some(tip) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sequencer never derived the batches"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for number in 2..=tip {
        let ours = net.rpc(&seq, "stint_getBatch", json!([number])).await;
        let theirs = net.rpc(&v, "stint_getBatch", json!([number])).await;
        assert_eq!(ours["derived"], json!(true), "{ours}");
        assert_eq!(ours["hash"], theirs["hash"]);
        assert_eq!(ours["stateRoot"], theirs["stateRoot"], "batch {number}");
    }
    net.transfer(&seq, 2, 3, 20).await;
    let top = net.seal(&seq).await;
    assert_eq!(top, tip + 1);
    let restating = net.rpc(&seq, "stint_getBatch", json!([top])).await;
    assert_eq!(restating["derived"], json!(false));
    net.wait_soft_head_final(&seq).await;
    assert_agree(&net, &seq, &[&v]).await;
    // Nothing executed twice; the forced tx's receipt names the derived batch on both nodes.
    for node in [&seq, &v] {
        let receipt = net
            .rpc(
                node,
                "stint_getReceipt",
                json!([forced_tx.txid().to_string()]),
            )
            .await;
        assert_eq!(receipt["status"], json!("executed"), "{receipt}");
        assert_eq!(receipt["batch"], json!(2), "{receipt}");
        assert_eq!(receipt["finality"], json!("final"), "{receipt}");
        assert_eq!(net.balance(node, 1).await, START + 700);
        assert_eq!(net.balance(node, 0).await, START - 700 - FEE);
        assert_eq!(net.balance(node, 3).await, START + 30);
        assert_eq!(
            net.rpc(node, "stint_getAccount", json!([depositor.to_address()]))
                .await["balance"],
            json!(30_000)
        );
    }
}

/// `stint transfer --via-bitcoin` while the sequencer censors the account: the CLI writes the
/// signed transfer to Bitcoin as a forced tx, reports its Bitcoin block while it waits, and
/// returns once a batch executed it; an account with txs pending at the sequencer is refused
/// (a forced tx runs before them and would be skipped), and one without a cookie file is told
/// what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stint_transfer_via_bitcoin_gets_past_a_censoring_sequencer() {
    const S: u64 = 6;
    let net = Net::start_with_window(&[], S).await;
    let seq = net
        .sequencer_with(&format!(
            "[fault]\nmode = \"censor\"\naccount = \"{}\"\n",
            user(0).to_address()
        ))
        .await;
    let key = net.user_key_file(0);
    let cookie = net.node.cookie_file().display().to_string();
    let stint_as = |key: &Path, extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stint"));
        command
            .args(["transfer", "--to", &user(1).to_address(), "--amount", "700"])
            .args(["--rpc", &seq.url, "--key"])
            .arg(key)
            .args([
                "--bitcoind-rpc",
                &net.node.rpc_url(),
                "--btc-wallet",
                "stint",
            ])
            .env("STINT_STATE_DIR", net.dir.path().join("state"))
            .args(extra);
        command
    };
    let stint = |extra: &[&str]| stint_as(&key, extra);
    // No cookie: a clear error, nothing written.
    let out = stint(&["--via-bitcoin"])
        .env_remove("STINT_BITCOIND_COOKIE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--bitcoind-cookie"), "{stderr}");

    let mut child = stint(&[
        "--via-bitcoin",
        "--bitcoind-cookie",
        &cookie,
        "--wait",
        "soft",
        "--json",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "stint transfer --via-bitcoin never returned"
        );
        let _ = rpc_raw_result(&seq.url, "stint_sealBatch").await;
        net.mine(1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("written to Bitcoin as a forced tx"),
        "{stderr}"
    );
    assert!(stderr.contains("in Bitcoin block"), "{stderr}");
    // One JSON line as soon as the tx is written, the result when it is in a batch.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(
        ["soft", "anchored", "final"].contains(&result["status"].as_str().unwrap()),
        "{result}"
    );
    assert_eq!(net.balance(&seq, 1).await, START + 700);
    let receipt = net
        .rpc(&seq, "stint_getReceipt", json!([result["txid"]]))
        .await;
    assert_eq!(receipt["status"], json!("executed"));
    assert!(receipt["forced"]["btcTxid"].is_string());

    // An account with a tx waiting in the sequencer's mempool is refused: its forced tx would
    // run first, with a used nonce.
    let pending = signed_transfer(2, 3, 0, 5);
    net.rpc(&seq, "stint_sendTransaction", json!([pending]))
        .await;
    let key2 = net.user_key_file(2);
    let out = stint_as(&key2, &["--via-bitcoin", "--bitcoind-cookie", &cookie])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("pending at the sequencer"), "{stderr}");
}

/// `stint withdraw` (issue 16, first step): units are burned into a withdrawal record that both
/// nodes report as `pending`, then `final` with its batch; an address of another network or
/// below the dust limit is refused before anything is signed; a crafted tx naming a
/// non-standard script is executed as a failed call and burns nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stint_withdraw_burns_into_a_withdrawal_both_nodes_report_final() {
    let net = Net::start(&["v1"]).await;
    let seq = net.sequencer(None).await;
    let v = net.verifier("v1", 0x61, true).await;
    let key = net.user_key_file(3);
    let to = net.wallet.get_new_address(Network::Regtest).await.unwrap();
    let stint = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_stint"))
            .args(["withdraw"])
            .args(args)
            .args(["--rpc", &seq.url, "--fee", &FEE.to_string(), "--key"])
            .arg(&key)
            .env("STINT_STATE_DIR", net.dir.path().join("state"))
            .output()
            .unwrap()
    };
    // Refused before signing: a mainnet address, and an amount below P2WPKH's dust limit.
    let mainnet = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
    let out = stint(&["--btc-address", mainnet, "--amount", "10000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("network"),
        "{stderr}"
    );
    let p2wpkh = net
        .wallet
        .call::<String>("getnewaddress", json!(["", "bech32"]))
        .await
        .unwrap();
    let out = stint(&["--btc-address", &p2wpkh, "--amount", "293"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("dust"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stint"))
        .args([
            "withdraw",
            "--btc-address",
            &to.to_string(),
            "--amount",
            "10000",
        ])
        .args(["--rpc", &seq.url, "--fee", &FEE.to_string(), "--key"])
        .arg(&key)
        .args(["--field", "withdrawal_id"])
        .env("STINT_STATE_DIR", net.dir.path().join("state"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    net.seal(&seq).await;
    let pending = net.rpc(&seq, "stint_getWithdrawal", json!([id])).await;
    assert_eq!(pending["status"], json!("pending"), "{pending}");
    assert_eq!(pending["amount"], json!(10_000));
    assert_eq!(pending["btcAddress"], json!(to.to_string()));
    assert_eq!(pending["from"], json!(user(3).to_address()));
    assert_eq!(net.balance(&seq, 3).await, START - 10_000 - FEE);

    // A crafted withdrawal to an OP_RETURN script: a failed call, nothing burned.
    let crafted = Tx {
        chain_id: CHAIN_ID,
        from: user(3),
        nonce: 1,
        fee: FEE,
        call: Call::Withdraw {
            btc_script: vec![0x6a, 0x01, 0x00],
            amount: 10_000,
        },
    }
    .sign(&user_key(3))
    .unwrap();
    net.rpc(&seq, "stint_sendTransaction", json!([crafted]))
        .await;
    net.seal(&seq).await;
    let receipt = net
        .rpc(
            &seq,
            "stint_getReceipt",
            json!([crafted.txid().to_string()]),
        )
        .await;
    assert_eq!(receipt["status"], json!("failed"), "{receipt}");
    assert_eq!(receipt["error"], json!("nonStandardScript"), "{receipt}");
    assert_eq!(net.balance(&seq, 3).await, START - 10_000 - 2 * FEE);

    net.wait_soft_head_final(&seq).await;
    assert_agree(&net, &seq, &[&v]).await;
    for node in [&seq, &v] {
        let w = net.rpc(node, "stint_getWithdrawal", json!([id])).await;
        assert_eq!(w["status"], json!("final"), "{} {w}", node.url);
        assert_eq!(w["amount"], json!(10_000));
    }
    let err = net
        .rpc_error(&v, "stint_getWithdrawal", json!([hex::encode([7u8; 32])]))
        .await;
    assert_eq!(err["code"], json!(12), "{err}");
}

/// The payout transaction (issue 16, second step) is valid Bitcoin: built from two real deposits
/// to the devnet-style 2-of-3 bridge, signed by signers 1 and 3, it is mined and the sats arrive
/// at both withdrawal addresses (`getreceivedbyaddress`); the same transaction with one signature
/// is refused by bitcoind's consensus rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_of_three_payout_spends_real_deposits_and_one_signature_does_not() {
    use stint_protocol::{
        assemble_payout, build_payout, sign_payout, BridgeUtxo, PayableWithdrawal,
    };
    let net = Net::start(&[]).await;
    let bridge = net.genesis.bridge.clone().unwrap();
    let mut utxos = Vec::new();
    for (who, sats) in [(0u8, 30_000u64), (1, 20_000)] {
        let block = net.deposit(user(who), sats).await;
        let outpoint = net.deposit_outpoint(block).await;
        utxos.push(BridgeUtxo {
            outpoint,
            value: sats,
        });
    }
    let mut addresses = Vec::new();
    let mut withdrawals = Vec::new();
    for (i, amount) in [(1u8, 12_000u64), (2, 7_000)] {
        let address = net.wallet.get_new_address(Network::Regtest).await.unwrap();
        withdrawals.push(PayableWithdrawal {
            id: stint_contracts::WithdrawalId([i; 32]),
            script: address.script_pubkey(),
            amount,
        });
        addresses.push(address);
    }
    let payout = build_payout(&bridge, &utxos, &withdrawals, 2).unwrap();
    let signer = |i: u8| {
        Keypair::from_secret_key(
            &Secp256k1::new(),
            &SecretKey::from_slice(&[0x60 + i; 32]).unwrap(),
        )
    };
    let s1 = sign_payout(&bridge, &payout, &signer(1)).unwrap();
    let s3 = sign_payout(&bridge, &payout, &signer(3)).unwrap();
    let signed = assemble_payout(&bridge, &payout, &[Some(s1), None, Some(s3)]).unwrap();

    // One signature: refused by consensus (the NUMEQUAL fails), even mined directly.
    let mut one = signed.clone();
    for input in &mut one.input {
        let mut items: Vec<Vec<u8>> = input.witness.iter().map(<[u8]>::to_vec).collect();
        items[0] = Vec::new(); // signer 3's signature (the stack holds the last signer first)
        input.witness = bitcoin::Witness::from_slice(&items);
    }
    let miner = net.wallet.get_new_address(Network::Regtest).await.unwrap();
    assert!(net
        .wallet
        .generate_block(&miner, &[], &[&one])
        .await
        .is_err());

    let accepted = net
        .node
        .client()
        .test_mempool_accept(&[&signed])
        .await
        .unwrap();
    eprintln!(
        "payout of {} withdrawals: {} vB, fee {} sats, mempool policy: {accepted:?}",
        withdrawals.len(),
        signed.weight().to_vbytes_ceil(),
        payout.fee
    );
    net.wallet
        .generate_block(&miner, &[], &[&signed])
        .await
        .unwrap();
    for (address, output) in addresses.iter().zip(&signed.output) {
        let received: f64 = net
            .wallet
            .call("getreceivedbyaddress", json!([address.to_string(), 1]))
            .await
            .unwrap();
        assert_eq!(
            bitcoin::Amount::from_btc(received).unwrap(),
            output.value,
            "{address}"
        );
    }
    let paid: u64 = signed.output[..2].iter().map(|o| o.value.to_sat()).sum();
    assert_eq!(paid + payout.fee, 19_000, "the withdrawals paid the fee");
}

/// A reorg that removes a deposit's block reverts the deposit on both nodes; mined again, it is
/// credited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_removed_by_a_reorg_is_reverted_and_credited_once_when_mined_again() {
    let net = Net::start(&["v1"]).await;
    let seq = net.sequencer(None).await;
    let v = net.verifier("v1", 0x61, true).await;
    let depositor = AccountId::from_signing_key(&SigningKey::from_bytes(&[0x45; 32]).unwrap());
    let balance = |node| {
        let net = &net;
        async move {
            net.rpc(node, "stint_getAccount", json!([depositor.to_address()]))
                .await["balance"]
                .as_u64()
        }
    };
    let deposit_block = net.deposit(depositor, 25_000).await;
    let outpoint = net.deposit_outpoint(deposit_block).await.to_string();
    net.mine_until("the deposit credited on both nodes", || async {
        let _ = rpc_raw_result(&seq.url, "stint_sealBatch").await;
        balance(&seq).await == Some(25_000) && balance(&v).await == Some(25_000)
    })
    .await;

    // The deposit's block leaves the chain; a longer branch without it is mined (generateblock
    // with no transactions: the deposit waits in the mempool).
    let client = net.node.client();
    let tip = client.get_block_count().await.unwrap();
    let depth = tip
        - client
            .get_block_header_info(&deposit_block)
            .await
            .unwrap()
            .height
        + 1;
    client.invalidate_block(&deposit_block).await.unwrap();
    let to = net.wallet.get_new_address(Network::Regtest).await.unwrap();
    for _ in 0..depth + 1 {
        net.wallet.generate_block(&to, &[], &[]).await.unwrap();
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let _ = rpc_raw_result(&seq.url, "stint_sealBatch").await;
        if balance(&seq).await == Some(0) && balance(&v).await == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "the deposit was never reverted");
        net.wallet.generate_block(&to, &[], &[]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Each node reports it reverted once it has published the rollback (the next poll).
    for node in [&seq, &v] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let deposit = net.rpc(node, "stint_getDeposit", json!([outpoint])).await;
            if deposit["status"] == json!("reverted") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} still says {deposit}",
                node.url
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Mined again from the mempool: credited once on both nodes.
    net.mine_until("the deposit credited again", || async {
        let _ = rpc_raw_result(&seq.url, "stint_sealBatch").await;
        balance(&seq).await == Some(25_000) && balance(&v).await == Some(25_000)
    })
    .await;
    net.wait_soft_head_final(&seq).await;
    assert_agree(&net, &seq, &[&v]).await;
    assert_eq!(balance(&seq).await, Some(25_000));
    assert_eq!(balance(&v).await, Some(25_000));
    for node in [&seq, &v] {
        let deposit = net.rpc(node, "stint_getDeposit", json!([outpoint])).await;
        assert_eq!(deposit["status"], json!("credited"), "{deposit}");
    }
}

/// `stint deposit`: a deposit below `min_deposit` is refused before any bitcoin moves; a real one
/// pays the bridge from the bitcoind wallet and `--wait credited` returns once the sequencer's
/// state shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stint_deposit_pays_the_bridge_and_waits_until_credited() {
    let net = Net::start(&[]).await;
    let seq = net.sequencer(None).await;
    let to = AccountId::from_signing_key(&SigningKey::from_bytes(&[0x46; 32]).unwrap());
    let cookie = net.node.cookie_file().display().to_string();
    let deposit = |amount: &str, extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stint"));
        command
            .args(["deposit", "--amount", amount, "--to", &to.to_address()])
            .args(["--rpc", &seq.url, "--bitcoind-rpc", &net.node.rpc_url()])
            .args(["--bitcoind-cookie", &cookie, "--btc-wallet", "stint"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let balance_before = net.wallet.get_balance().await.unwrap();
    let refused = deposit("999", &[]).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("min_deposit of 1000"), "{stderr}");
    assert_eq!(net.wallet.get_balance().await.unwrap(), balance_before);

    let mut child = deposit("30000", &["--wait", "credited", "--json"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "stint deposit never returned");
        net.mine(1).await;
        let _ = rpc_raw_result(&seq.url, "stint_sealBatch").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let output = child.wait_with_output().unwrap();
    assert!(
        status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["balance"], json!(30_000));
    assert_eq!(printed["amount"], json!(30_000));
    assert!(printed["outpoint"].as_str().unwrap().contains(':'));
    let account = net
        .rpc(&seq, "stint_getAccount", json!([to.to_address()]))
        .await;
    assert_eq!(account["balance"], json!(30_000));
}
