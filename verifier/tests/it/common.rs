//! Shared setup: a funded regtest node, a rollup whose sequencer role the test plays (it holds
//! the anchor key), and verifiers started in-process on real RocksDB.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{FeeRate, Network};
use k256::schnorr::SigningKey;
use stint_anchor::{Anchorer, BitcoindClient, PostedEnvelope, RegtestNode};
use stint_contracts::{AccountId, Call, SignedTx, Tx};
use stint_protocol::{
    Batch, BatchBuilder, BuildParams, Envelope, EnvelopeKind, FraudProof, Genesis, GenesisAlloc,
    IndexHint, L1Origin, ParentFacts, SealedBatch,
};
use stint_state::MemoryNodeStore;
use stint_verifier::{Snapshot, VerifierConfig, VerifierHandle};
use tempfile::TempDir;

pub(crate) const CHAIN_ID: u64 = 4242;
pub(crate) const USERS: usize = 8;
pub(crate) const START_BALANCE: u64 = 1_000_000;

pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,verifier=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A regtest node with the main wallet (`stint`, the sequencer's) and one funded wallet per
/// verifier. Field order matters: the node stops before its directory is deleted.
pub(crate) struct Net {
    pub(crate) node: RegtestNode,
    pub(crate) wallet: BitcoindClient,
    pub(crate) dir: TempDir,
}

impl Net {
    pub(crate) async fn start(verifier_wallets: &[&str]) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let stint_testkit::FundedNode { node, wallet } =
            stint_testkit::FundedNode::start(dir.path(), verifier_wallets).await;
        Net { node, wallet, dir }
    }

    pub(crate) fn client(&self) -> &BitcoindClient {
        self.node.client()
    }

    pub(crate) async fn tip(&self) -> u64 {
        self.client().get_block_count().await.unwrap()
    }

    pub(crate) async fn mine(&self, n: u64) {
        let to = self.wallet.get_new_address(Network::Regtest).await.unwrap();
        self.wallet.generate_to_address(n, &to).await.unwrap();
    }

    /// A verifier config for this node, with its own data dir, key and fee wallet.
    pub(crate) fn verifier_config(
        &self,
        rollup: &Rollup,
        name: &str,
        key_seed: u8,
        wallet: &str,
    ) -> VerifierConfig {
        let data_dir = self.dir.path().join(name);
        std::fs::create_dir_all(&data_dir).unwrap();
        let key_file = self.dir.path().join(format!("{name}.key.json"));
        let secret = [key_seed; 32];
        let account = stint_verifier::ChallengeKey::from_secret(&secret)
            .unwrap()
            .account();
        std::fs::write(
            &key_file,
            serde_json::json!({
                "address": account.to_address(),
                "secret_key": hex::encode(secret),
            })
            .to_string(),
        )
        .unwrap();
        // Key files are private (the verifier refuses others).
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let mut config = VerifierConfig {
            data_dir: data_dir.join("db"),
            genesis: rollup.genesis_file.clone(),
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            challenge_key_file: Some(key_file),
            ..VerifierConfig::default()
        };
        config.bitcoind.poll_interval_ms = 100;
        config.bitcoind.rpc_url = self.node.rpc_url();
        config.bitcoind.cookie_file = Some(self.node.cookie_file());
        config.bitcoind.wallet = Some(wallet.into());
        config
    }
}

pub(crate) fn user(i: usize) -> (SigningKey, AccountId) {
    let mut seed = [0x11u8; 32];
    seed[31] = i as u8;
    let key = SigningKey::from_bytes(&seed).unwrap();
    let id = AccountId::from_signing_key(&key);
    (key, id)
}

pub(crate) fn anchor_keypair() -> Keypair {
    anchor_keypair_for(0x42)
}

/// A Bitcoin keypair from a one-byte seed.
pub(crate) fn anchor_keypair_for(seed: u8) -> Keypair {
    Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[seed; 32]).unwrap(),
    )
}

/// The rollup, with the test in the sequencer's role.
pub(crate) struct Rollup {
    pub(crate) genesis: Genesis,
    pub(crate) genesis_file: PathBuf,
    pub(crate) anchorer: Anchorer,
    /// Honest state: every node of every batch built, so any parent's state is readable.
    pub(crate) store: MemoryNodeStore,
    /// The tip the next batch builds on.
    pub(crate) parent: ParentFacts,
    pub(crate) nonces: Vec<u64>,
    pub(crate) users: Vec<(SigningKey, AccountId)>,
}

impl Rollup {
    /// A genesis starting at the current tip, with dispute window `window` and `K` = 4.
    pub(crate) async fn new(net: &Net, window: u64) -> Self {
        let client = net.client();
        let height = client.get_block_count().await.unwrap();
        let hash = client.get_block_hash(height).await.unwrap();
        let users: Vec<_> = (0..USERS).map(user).collect();
        let anchorer = Anchorer::new(net.wallet.clone(), anchor_keypair(), Network::Regtest);
        let mut genesis = Genesis::new(
            CHAIN_ID,
            anchorer.key(),
            AccountId([0xfe; 32]),
            users
                .iter()
                .map(|(_, id)| GenesisAlloc {
                    account: *id,
                    balance: START_BALANCE,
                })
                .collect(),
            height,
            hash,
        );
        genesis.dispute_window = window;
        genesis.checkpoint_interval = 4;
        let genesis_file = net.dir.path().join("genesis.json");
        std::fs::write(&genesis_file, genesis.to_json()).unwrap();
        let update = genesis.state_update().unwrap();
        let mut store = MemoryNodeStore::new();
        store.write(&update);
        Rollup {
            parent: ParentFacts::genesis(&genesis, update.root),
            genesis,
            genesis_file,
            anchorer,
            store,
            nonces: vec![0; USERS],
            users,
        }
    }

    /// `n` honest transfers, round robin between users (nonces tracked).
    pub(crate) fn transfers(&mut self, n: usize, amount: u64) -> Vec<SignedTx> {
        (0..n)
            .map(|i| {
                let from = i % USERS;
                let to = (i + 3) % USERS;
                self.tx(
                    from,
                    Call::Transfer {
                        to: self.users[to].1,
                        amount,
                    },
                )
            })
            .collect()
    }

    /// A signed tx from user `from` with the next nonce.
    pub(crate) fn tx(&mut self, from: usize, call: Call) -> SignedTx {
        let (key, id) = &self.users[from];
        let tx = Tx {
            chain_id: CHAIN_ID,
            from: *id,
            nonce: self.nonces[from],
            fee: 3,
            call,
        };
        self.nonces[from] += 1;
        tx.sign(key).unwrap()
    }

    /// Build the honest batch of `txs` on the current parent, with the current L1 tip as origin.
    pub(crate) async fn build(&self, net: &Net, txs: Vec<SignedTx>) -> SealedBatch {
        let client = net.client();
        let height = client.get_block_count().await.unwrap();
        let hash = client.get_block_hash(height).await.unwrap();
        let time = u64::from(client.get_block(&hash).await.unwrap().header.time);
        let params = BuildParams {
            parent: self.parent,
            timestamp: time.max(self.parent.timestamp),
            l1_origin: L1Origin {
                height,
                hash: hash.to_byte_array(),
            },
        };
        let sealed = BatchBuilder::new(&self.genesis)
            .build(&self.store, &params, txs)
            .unwrap();
        assert!(sealed.rejected.is_empty(), "{:?}", sealed.rejected);
        sealed
    }

    /// Post a batch under the anchor key (mined at once on regtest Knots) and make it the parent
    /// of the next one. `updates` (the honest segment updates, if any) join the state.
    pub(crate) async fn post(
        &mut self,
        batch: &Batch,
        updates: &[stint_state::TreeUpdate],
    ) -> PostedEnvelope {
        for update in updates {
            self.store.write(update);
        }
        let hint = IndexHint {
            kind: EnvelopeKind::Batch,
            number: batch.header().number,
            header_hash: batch.hash(),
        };
        let envelope = self.anchorer.batch_envelope(
            &self.genesis.hash(),
            batch.hash(),
            batch.encode().unwrap(),
        );
        let posted = self
            .anchorer
            .post(&envelope, Some(hint), FeeRate::from_sat_per_vb_u32(2))
            .await
            .unwrap();
        self.parent = ParentFacts::of(batch.header());
        posted
    }

    /// Build and post an honest batch of `n` transfers.
    pub(crate) async fn honest_batch(&mut self, net: &Net, n: usize) -> Batch {
        let txs = self.transfers(n, 100);
        let sealed = self.build(net, txs).await;
        self.post(&sealed.batch, &sealed.updates).await;
        sealed.batch
    }

    /// After a valid challenge: the next batch builds on `parent` again.
    pub(crate) fn rewind_to(&mut self, parent: ParentFacts, nonces: Vec<u64>) {
        self.parent = parent;
        self.nonces = nonces;
    }

    /// Post a challenge envelope carrying `proof` under `keypair` (a third party).
    pub(crate) async fn post_challenge(
        &self,
        net: &Net,
        keypair: Keypair,
        proof: &FraudProof,
    ) -> PostedEnvelope {
        let anchorer = Anchorer::new(net.wallet.clone(), keypair, Network::Regtest);
        let envelope = Envelope::new(
            EnvelopeKind::Challenge,
            anchorer.key(),
            proof.encode().unwrap(),
        );
        anchorer
            .post(&envelope, None, FeeRate::from_sat_per_vb_u32(2))
            .await
            .unwrap()
    }
}

/// Start a verifier and wait until it processed the current L1 tip.
pub(crate) async fn start_verifier(net: &Net, config: VerifierConfig) -> VerifierHandle {
    let handle = stint_verifier::start(config).await.unwrap();
    let tip = net.tip().await;
    wait_for(&handle, "the L1 tip", |s| {
        s.l1.is_some_and(|(h, _)| h >= tip)
    })
    .await;
    handle
}

/// Wait (up to 60 s) until the verifier's snapshot satisfies `cond`.
pub(crate) async fn wait_for(
    handle: &VerifierHandle,
    what: &str,
    cond: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let snapshot = handle.status().snapshot();
        if cond(&snapshot) {
            return snapshot;
        }
        assert!(
            !handle.is_finished(),
            "verifier stopped while waiting for {what}"
        );
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last snapshot: l1={:?} verified={:?} fraud={:?} challenges={:?} error={:?}",
            snapshot.l1,
            snapshot.verified,
            snapshot.pending_fraud,
            snapshot.challenges,
            snapshot.last_error
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until the verifier has seen the current L1 tip.
pub(crate) async fn wait_synced(net: &Net, handle: &VerifierHandle) -> Snapshot {
    let tip = net.tip().await;
    wait_for(handle, "the L1 tip", |s| {
        s.l1.is_some_and(|(h, _)| h >= tip)
    })
    .await
}

/// The verified tip number (0 = genesis).
pub(crate) fn verified_number(s: &Snapshot) -> u64 {
    s.verified.map_or(0, |v| v.number)
}

/// Writes `doc` (an `rpc.discover` answer) to `$STINT_OPENRPC_OUT/<node>.json` when that is
/// set: `scripts/test.sh` validates the files with an OpenRPC validator after the tests.
pub(crate) fn save_openrpc(node: &str, doc: &serde_json::Value) {
    if let Some(dir) = std::env::var_os("STINT_OPENRPC_OUT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{node}.json")), doc.to_string()).unwrap();
    }
}

/// Calls `method` on the verifier; the whole response object.
pub(crate) async fn rpc_raw(
    handle: &VerifierHandle,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    stint_api::ApiClient::new(format!("http://{}/", handle.rpc_addr()))
        .unwrap()
        .call_raw(method, params)
        .await
        .unwrap()
}

/// Calls `method` on the verifier, expecting a result; returns it.
pub(crate) async fn rpc(
    handle: &VerifierHandle,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let response = rpc_raw(handle, method, params).await;
    assert!(response.get("error").is_none(), "{method}: {response}");
    response["result"].clone()
}

/// Calls `method` on the verifier, expecting a JSON-RPC error; returns it.
pub(crate) async fn rpc_err(
    handle: &VerifierHandle,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let response = rpc_raw(handle, method, params).await;
    assert!(response.get("result").is_none(), "{method}: {response}");
    response["error"].clone()
}

/// The verifier's `/metrics` text.
pub(crate) async fn metrics(v: &stint_verifier::VerifierHandle) -> String {
    reqwest::Client::new()
        .get(format!("http://{}/metrics", v.rpc_addr()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
