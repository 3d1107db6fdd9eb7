//! Shared setup: a funded regtest node, a genesis anchored at its tip, a sequencer on a fresh
//! data directory, and a small JSON-RPC client.

use std::time::{Duration, Instant};

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::Network;
use k256::schnorr::SigningKey;
use serde_json::{json, Value};
use stint_anchor::{BitcoindClient, RegtestNode};
use stint_contracts::{AccountId, Call, SignedTx, Tx};
use stint_protocol::{Genesis, GenesisAlloc};
use stint_sequencer::{Secret, Sequencer, SequencerConfig};
use tempfile::TempDir;

pub(crate) const CHAIN_ID: u64 = 1337;
pub(crate) const START_BALANCE: u64 = 1_000_000;
pub(crate) const FEE_RECIPIENT: AccountId = AccountId([0xfe; 32]);
pub(crate) const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A sequencer with its own regtest node. Field order matters: the sequencer stops before the
/// node, the node before its directory is deleted.
pub(crate) struct Env {
    pub(crate) seq: Option<Sequencer>,
    pub(crate) node: RegtestNode,
    pub(crate) wallet: BitcoindClient,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) keys: Vec<SigningKey>,
    pub(crate) genesis: Genesis,
    pub(crate) config: SequencerConfig,
    pub(crate) _dir: TempDir,
}

pub(crate) fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32]).unwrap()
}

pub(crate) fn account(k: &SigningKey) -> AccountId {
    AccountId::from_signing_key(k)
}

impl Env {
    /// A node with 110 mature blocks, a genesis starting at its tip with dispute window `w`, four
    /// funded users (keys 1..=4), and a running sequencer.
    pub(crate) async fn start(w: u64) -> Env {
        Self::start_with(w, None).await
    }

    /// Like [`Env::start`], with a fault mode.
    pub(crate) async fn start_with(w: u64, fault: Option<stint_sequencer::FaultConfig>) -> Env {
        Self::start_users(w, fault, 4).await
    }

    /// Like [`Env::start_with`], with `users` funded users (keys 1..=users, at most 255).
    pub(crate) async fn start_users(
        w: u64,
        fault: Option<stint_sequencer::FaultConfig>,
        users: u8,
    ) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let stint_testkit::FundedNode { node, wallet } =
            stint_testkit::FundedNode::start(dir.path(), &[]).await;
        let info = node.client().get_blockchain_info().await.unwrap();

        let secret = SecretKey::from_slice(&[0x42; 32]).unwrap();
        let anchor = Keypair::from_secret_key(&Secp256k1::new(), &secret);
        let anchor_key = dir.path().join("anchor.key");
        stint_testkit::write_private(&anchor_key, &hex::encode(secret.secret_bytes())).unwrap();

        let keys: Vec<SigningKey> = (1..=users).map(key).collect();
        let alloc = keys
            .iter()
            .map(|k| GenesisAlloc {
                account: account(k),
                balance: START_BALANCE,
            })
            .collect();
        let mut genesis = Genesis::new(
            CHAIN_ID,
            anchor.x_only_public_key().0,
            FEE_RECIPIENT,
            alloc,
            info.blocks,
            info.bestblockhash,
        );
        genesis.dispute_window = w;
        genesis.checkpoint_interval = 4;
        let genesis_path = dir.path().join("genesis.json");
        std::fs::write(&genesis_path, genesis.to_json()).unwrap();

        let config = SequencerConfig {
            data_dir: dir.path().join("seq"),
            genesis: genesis_path,
            anchor_key,
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            admin_token: Some(Secret::new(ADMIN_TOKEN)),
            batch_interval_ms: 150,
            l1_origin_depth: 1,
            bitcoind: stint_sequencer::BitcoindConfig {
                rpc_url: node.rpc_url(),
                cookie_file: Some(node.cookie_file()),
                poll_interval_ms: 100,
                ..Default::default()
            },
            fault,
            ..SequencerConfig::default()
        };
        let seq = Sequencer::start(config.clone()).await.unwrap();
        let url = format!("http://{}", seq.rpc_addr());
        Env {
            seq: Some(seq),
            node,
            wallet,
            url,
            http: reqwest::Client::new(),
            keys,
            genesis,
            config,
            _dir: dir,
        }
    }

    /// Start the sequencer again on the same data directory (after [`Env::shutdown`]).
    pub(crate) async fn restart_sequencer(&mut self) {
        let seq = Sequencer::start(self.config.clone()).await.unwrap();
        self.url = format!("http://{}", seq.rpc_addr());
        self.seq = Some(seq);
    }

    /// POST a raw body; returns the HTTP status and the body text.
    pub(crate) async fn post_raw(&self, body: &str) -> (u16, String) {
        let resp = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// Call `method` and return the whole response object.
    pub(crate) async fn call_raw(&self, method: &str, params: Value) -> Value {
        stint_api::ApiClient::new(&self.url)
            .unwrap()
            .call_raw(method, params)
            .await
            .unwrap()
    }

    /// The Prometheus text of `GET /metrics`.
    pub(crate) async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// One counter or gauge of `/metrics`, by name.
    pub(crate) async fn metric(&self, name: &str) -> u64 {
        self.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing"))
    }

    /// Sign and send a transfer of `amount` from user `signer` (fee 1); its txid.
    pub(crate) async fn transfer(
        &self,
        signer: usize,
        nonce: u64,
        to: AccountId,
        amount: u64,
    ) -> String {
        self.send(&self.sign(signer, nonce, 1, Call::Transfer { to, amount }))
            .await
    }

    /// Mine `n` blocks and wait until the sequencer followed them.
    pub(crate) async fn advance(&self, n: u64) {
        let target = self.node.client().get_block_count().await.unwrap() + n;
        self.mine(n).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.call("stint_syncStatus", json!([])).await["l1"]["height"].as_u64() < Some(target)
        {
            assert!(
                Instant::now() < deadline,
                "the sequencer never followed the new blocks"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Poll `stint_getBatch(number)` until `done` holds for it (the batch may not exist between
    /// a rollback and the next seal).
    pub(crate) async fn wait_batch(
        &self,
        number: u64,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let b = self.call_raw("stint_getBatch", json!([number])).await["result"].clone();
            if b.is_object() && done(&b) {
                return b;
            }
            if Instant::now() > deadline {
                let status = self.call("stint_syncStatus", json!([])).await;
                panic!(
                    "batch {number}: never {what}: {b}\n{status}\n{}",
                    self.metrics().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Call `method`, expecting a result.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Value {
        let resp = self.call_raw(method, params).await;
        assert!(resp.get("error").is_none(), "{method}: {resp}");
        resp["result"].clone()
    }

    /// Call `method`, expecting an error; returns it.
    pub(crate) async fn call_err(&self, method: &str, params: Value) -> Value {
        let resp = self.call_raw(method, params).await;
        assert!(resp.get("result").is_none(), "{method} should fail: {resp}");
        resp["error"].clone()
    }

    pub(crate) fn sign(&self, signer: usize, nonce: u64, fee: u64, call: Call) -> SignedTx {
        let k = &self.keys[signer];
        Tx {
            chain_id: CHAIN_ID,
            from: account(k),
            nonce,
            fee,
            call,
        }
        .sign(k)
        .unwrap()
    }

    pub(crate) fn addr(&self, user: usize) -> String {
        account(&self.keys[user]).to_address()
    }

    /// Submit over JSON-RPC; returns the txid.
    pub(crate) async fn send(&self, tx: &SignedTx) -> String {
        let txid = self
            .call("stint_sendTransaction", json!([tx]))
            .await
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(txid, tx.txid().to_string());
        txid
    }

    pub(crate) async fn balance(&self, user: usize) -> u64 {
        self.call("stint_getAccount", json!([self.addr(user)]))
            .await["balance"]
            .as_u64()
            .unwrap()
    }

    pub(crate) async fn balance_of(&self, id: &AccountId) -> u64 {
        self.call("stint_getAccount", json!([id.to_address()]))
            .await["balance"]
            .as_u64()
            .unwrap()
    }

    /// Poll the receipt of `txid` until its finality is `want` (or a later one).
    pub(crate) async fn wait_finality(&self, txid: &str, want: &str) -> Value {
        let order = ["pending", "soft", "anchored", "final"];
        let rank = |f: &str| order.iter().position(|x| *x == f);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.call("stint_getReceipt", json!([txid])).await;
            let f = r["finality"].as_str().unwrap().to_owned();
            assert_ne!(f, "dropped", "{r}");
            if rank(&f) >= rank(want) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {want}: {r}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn mine(&self, n: u64) {
        let to = self.wallet.get_new_address(Network::Regtest).await.unwrap();
        self.wallet.generate_to_address(n, &to).await.unwrap();
    }

    pub(crate) async fn shutdown(&mut self) {
        if let Some(seq) = self.seq.take() {
            seq.shutdown().await.unwrap();
        }
    }
}
