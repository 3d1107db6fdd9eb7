//! The I/O loop: follow bitcoind, drive the [`Engine`], post and watch challenges, publish the
//! status that the RPC serves.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{FeeRate, ScriptBuf};
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use stint_anchor::{Anchorer, BitcoindClient, ChainEvent, ChainFollower};
use stint_contracts::AccountId;
use stint_protocol::{
    BatchRecord, BatchStatus, ChallengeOutcome, Envelope, EnvelopeKind, Genesis, IndexHint,
};
use stint_state::Hash;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::VerifierConfig;
use crate::engine::{BlockReport, Engine, PendingFraud};
use crate::error::{ConfigError, Severity, VerifierError};
use crate::replay::ChallengeStage;
use crate::shared::{BatchSummary, ChallengeAlert, Shared, Snapshot, VerifierMetrics};
use crate::store::{ChallengeEntry, ChallengeStatus, StoredPosted, VerifiedBatch};

/// The JSON key file (`{"address", "secret_key"}`, as `stint key new --out FILE` writes it).
#[derive(Deserialize)]
struct KeyFile {
    address: Option<String>,
    secret_key: String,
}

/// The challenge key: signs envelopes on Bitcoin, names the L2 challenger account.
#[derive(Clone)]
pub struct ChallengeKey {
    keypair: Keypair,
    account: AccountId,
}

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("ChallengeKey")
            .field("account", &self.account.to_address())
            .finish()
    }
}

impl ChallengeKey {
    /// From 32 secret bytes.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, String> {
        let sk = SecretKey::from_slice(secret).map_err(|e| e.to_string())?;
        let keypair = Keypair::from_secret_key(&Secp256k1::new(), &sk);
        let account = AccountId(keypair.x_only_public_key().0.serialize());
        Ok(Self { keypair, account })
    }

    /// Read a key file (`{"address", "secret_key"}`); like the CLI wallet, refuses a file that
    /// group or others can read.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let mode = std::fs::metadata(path)
            .map_err(|e| bad(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "permissions {:o} are too open: the key must be readable by its owner only \
                 (run `chmod 600 {}`)",
                mode & 0o777,
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let bytes: [u8; 32] = hex::decode(file.secret_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("secret_key must be 64 hex digits".into()))?;
        let key = Self::from_secret(&bytes).map_err(bad)?;
        if let Some(address) = file.address {
            if address != key.account.to_address() {
                return Err(bad("address does not match secret_key".into()));
            }
        }
        Ok(key)
    }

    /// The L2 account of this key.
    pub fn account(&self) -> AccountId {
        self.account
    }
}

/// A running verifier.
#[derive(Debug)]
pub struct VerifierHandle {
    shared: Arc<Shared>,
    rpc: stint_rpc::RpcServerHandle,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), VerifierError>>,
}

impl VerifierHandle {
    /// The JSON-RPC address.
    pub fn rpc_addr(&self) -> std::net::SocketAddr {
        self.rpc.local_addr()
    }

    /// The shared state (status snapshot, metrics, state store).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Whether the loop has ended (it only ends on a fatal error or a stop).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stop the loop and the RPC server; returns the loop's result.
    pub async fn stop(self) -> Result<(), VerifierError> {
        let _ = self.stop.send(true);
        let result = self
            .task
            .await
            .map_err(|e| VerifierError::Internal(format!("verifier task: {e}")))?;
        self.rpc
            .shutdown()
            .await
            .map_err(|e| VerifierError::Rpc(e.to_string()))?;
        result
    }
}

/// Run the verifier until `shutdown` completes (the `stint verifier --config FILE` entry point).
pub async fn run(
    config: VerifierConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), VerifierError> {
    let handle = start(config).await?;
    tracing::info!(target: "verifier", rpc = %handle.rpc_addr(), "verifier running");
    shutdown.await;
    tracing::info!(target: "verifier", "shutting down");
    handle.stop().await
}

/// Open the verifier's storage, start its RPC server and its loop.
pub async fn start(config: VerifierConfig) -> Result<VerifierHandle, VerifierError> {
    config.validate()?;
    let network = config.bitcoin_network()?;
    let genesis_text = std::fs::read_to_string(&config.genesis).map_err(|e| ConfigError::Read {
        path: config.genesis.clone(),
        reason: e.to_string(),
    })?;
    let genesis = Genesis::from_json(&genesis_text).map_err(ConfigError::from)?;
    let key = match &config.challenge_key_file {
        Some(path) => Some(ChallengeKey::load(path)?),
        None => None,
    };
    let auth = config
        .bitcoind
        .auth()
        .map_err(|reason| ConfigError::Invalid {
            field: "bitcoind",
            reason,
        })?;
    let client = BitcoindClient::new(config.bitcoind.rpc_url.clone(), auth);
    let mut builder = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("stint-replay-{i}"));
    if config.replay_threads > 0 {
        builder = builder.num_threads(config.replay_threads);
    }
    let pool = Arc::new(
        builder
            .build()
            .map_err(|e| VerifierError::Internal(format!("replay pool: {e}")))?,
    );
    let challenger = key
        .as_ref()
        .map_or(AccountId([0; 32]), ChallengeKey::account);
    let data_dir = config.data_dir.clone();
    let genesis_for_engine = genesis.clone();
    let engine = tokio::task::spawn_blocking(move || {
        Engine::open(genesis_for_engine, &data_dir, challenger, pool)
    })
    .await
    .map_err(|e| VerifierError::Internal(e.to_string()))??;
    let shared = Arc::new(Shared {
        genesis: genesis.clone(),
        genesis_root: engine.genesis_root(),
        state: Arc::clone(engine.state()),
        store: engine.store_handle(),
        snapshot: RwLock::new(Snapshot::default()),
        metrics: VerifierMetrics::default(),
    });
    publish(&shared, &engine, true, None, Vec::new());

    let module = crate::rpc::module(Arc::clone(&shared))?;
    let listener = tokio::net::TcpListener::bind(config.rpc_addr)
        .await
        .map_err(|e| VerifierError::Rpc(format!("bind {}: {e}", config.rpc_addr)))?;
    let rpc = stint_rpc::serve(listener, module, stint_rpc::RpcServerConfig::default())
        .await
        .map_err(|e| VerifierError::Rpc(e.to_string()))?;

    let mut wallet_error = None;
    let anchorer = match &key {
        Some(key) => {
            let wallet = client.ensure_wallet(config.wallet()).await;
            match wallet {
                Ok(wallet) => Some(Anchorer::new(wallet, key.keypair, network)),
                Err(e) => {
                    tracing::warn!(target: "verifier::challenge", error = %e, "fee wallet unavailable; retrying later");
                    wallet_error = Some(e.to_string());
                    None
                }
            }
        }
        None => {
            tracing::warn!(target: "verifier::challenge", "no challenge key configured: frauds will be reported, not challenged");
            None
        }
    };
    let (stop, stop_rx) = watch::channel(false);
    let follower = ChainFollower::from_height(client.clone(), genesis.l1_start_height);
    let looper = Loop {
        engine: Arc::new(Mutex::new(engine)),
        shared: Arc::clone(&shared),
        follower,
        client,
        anchorer,
        key,
        config,
        last_alert: None,
        last_nursed: None,
        failure: None,
        last_failure_log: None,
        leaf: None,
        wallet_error,
    };
    let task = tokio::spawn(looper.run(stop_rx));
    Ok(VerifierHandle {
        shared,
        rpc,
        stop,
        task,
    })
}

struct Loop {
    engine: Arc<Mutex<Engine>>,
    shared: Arc<Shared>,
    follower: ChainFollower,
    client: BitcoindClient,
    anchorer: Option<Anchorer>,
    key: Option<ChallengeKey>,
    config: VerifierConfig,
    /// L1 height of the last alert (alerts are logged once per block).
    last_alert: Option<u64>,
    /// L1 height at which an unconfirmed challenge was last re-broadcast or bumped.
    last_nursed: Option<u64>,
    /// Why the pending fraud has no challenge on its way, if it has none.
    failure: Option<ChallengeAlert>,
    /// L1 height of the last `error!` about `failure` (logged once per block).
    last_failure_log: Option<u64>,
    /// The envelope leaf of the pending fraud's proof under our key, built once per fraud (or
    /// why it does not fit one reveal).
    leaf: Option<(Hash, Result<ScriptBuf, String>)>,
    /// Why the fee wallet could not be opened, when it could not.
    wallet_error: Option<String>,
}

/// Refresh the shared snapshot and gauges from the engine (and the loop's alerts).
fn publish(
    shared: &Shared,
    engine: &Engine,
    bitcoind_ok: bool,
    last_error: Option<String>,
    alerts: Vec<ChallengeAlert>,
) {
    let derivation = engine.derivation();
    let verified_numbers = engine.verified().len();
    let summary = |record: &BatchRecord, status: BatchStatus| BatchSummary {
        verified: engine
            .verified()
            .get(
                usize::try_from(record.header.number)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(1),
            )
            .is_some_and(|v| v.hash == record.hash),
        record: record.clone(),
        status,
    };
    let canonical: Vec<BatchSummary> = derivation
        .canonical()
        .iter()
        .map(|r| {
            let status = if derivation.is_final(r) {
                BatchStatus::Final
            } else {
                BatchStatus::Anchored
            };
            summary(r, status)
        })
        .collect();
    let invalidated = derivation
        .invalidated()
        .iter()
        .map(|i| summary(&i.record, BatchStatus::Invalidated))
        .collect();
    let final_tip = derivation.final_tip().map(|r| VerifiedBatch {
        number: r.header.number,
        hash: r.hash,
        state_root: r.header.state_root,
    });
    let window = engine.pending_fraud().map(|f| {
        (
            f.number,
            f.anchor
                .height
                .saturating_add(engine.genesis().dispute_window),
        )
    });
    let challenges = engine.store().challenges().unwrap_or_default();
    let l1 = derivation.l1_tip();
    let metrics = &shared.metrics;
    metrics
        .replay_lag_batches
        .set((canonical.len() as i64).saturating_sub(verified_numbers as i64));
    metrics.l1_height.set(l1.map_or(-1, |(h, _)| h as i64));
    let remaining = match (window, l1) {
        (Some((_, end)), Some((tip, _))) => end.saturating_sub(tip) as i64,
        _ => -1,
    };
    metrics.window_remaining_blocks.set(remaining);
    metrics.unprovable_frauds.set(alerts.len() as i64);
    *shared.snapshot.write() = Snapshot {
        l1,
        verified: engine.verified_tip().copied(),
        final_tip,
        canonical,
        invalidated,
        challenges,
        pending_fraud: window,
        alerts,
        bitcoind_ok,
        last_error,
    };
}

impl Loop {
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), VerifierError> {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let result = match self.sync().await {
                Ok(()) => self.manage_challenges().await,
                Err(e) => Err(e),
            };
            let (ok, error) = match result {
                Ok(()) => (true, None),
                Err(e) if e.is_transient() => {
                    tracing::warn!(target: "verifier", error = %e, "bitcoind unreachable; retrying");
                    (false, Some(e.to_string()))
                }
                Err(e) => {
                    match e.severity() {
                        Severity::Transient => tracing::warn!(
                            target: "verifier", error = %e, "verifier step failed; retrying"
                        ),
                        Severity::Fatal => tracing::error!(
                            target: "verifier", error = %e,
                            "verifier step failed and will not pass by itself; retrying"
                        ),
                    }
                    (true, Some(e.to_string()))
                }
            };
            {
                let alerts = self.failure.iter().cloned().collect();
                let engine = self.engine.lock();
                publish(&self.shared, &engine, ok, error, alerts);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval()) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Feed every new block to the engine, one event at a time.
    async fn sync(&mut self) -> Result<(), VerifierError> {
        loop {
            let Some(event) = self.follower.next_event().await? else {
                return Ok(());
            };
            let engine = Arc::clone(&self.engine);
            let result = tokio::task::spawn_blocking(move || {
                let mut engine = engine.lock();
                match event {
                    ChainEvent::Connected { height, block } => engine.connect_block(height, &block),
                    ChainEvent::Disconnected { height, hash } => {
                        engine.disconnect_block(height, hash)
                    }
                }
            })
            .await
            .map_err(|e| VerifierError::Internal(format!("replay task: {e}")))?;
            match result {
                Ok(report) => self.account(&report),
                Err(e) => {
                    // The follower moved but the engine did not: follow again from the engine.
                    let tip = self.engine.lock().derivation().l1_tip();
                    self.follower = match tip {
                        Some((height, hash)) => {
                            ChainFollower::resume(self.client.clone(), height, hash)
                        }
                        None => ChainFollower::from_height(
                            self.client.clone(),
                            self.shared.genesis.l1_start_height,
                        ),
                    };
                    return Err(e);
                }
            }
        }
    }

    fn account(&self, report: &BlockReport) {
        let m = &self.shared.metrics;
        m.batches_verified.inc_by(report.verified.len() as u64);
        m.txs_replayed.inc_by(report.txs_replayed);
        m.rollbacks.inc_by(report.rolled_back.len() as u64);
        if report.fraud.is_some() {
            m.frauds_detected.inc();
        }
    }

    /// Update our challenges' statuses; post, re-broadcast or bump for the pending fraud; alert.
    async fn manage_challenges(&mut self) -> Result<(), VerifierError> {
        let (fraud, tip, window, mut entries) = {
            let engine = self.engine.lock();
            (
                engine.pending_fraud().cloned(),
                engine.derivation().l1_tip().map_or(0, |(h, _)| h),
                engine.genesis().dispute_window,
                engine.store().challenges()?,
            )
        };
        if self.anchorer.is_none() {
            if let Some(key) = &self.key {
                match self.client.ensure_wallet(self.config.wallet()).await {
                    Ok(wallet) => {
                        let network = self.config.bitcoin_network()?;
                        self.anchorer = Some(Anchorer::new(wallet, key.keypair, network));
                        self.wallet_error = None;
                    }
                    Err(e) => self.wallet_error = Some(e.to_string()),
                }
            }
        }

        // Statuses.
        for entry in &mut entries {
            let outcome = self
                .engine
                .lock()
                .challenge_outcome(&entry.btc_txid)
                .cloned();
            let (status, reason) = match outcome {
                Some(ChallengeOutcome::Accepted { .. }) => (ChallengeStatus::Accepted, None),
                Some(ChallengeOutcome::Rejected { reason }) => {
                    (ChallengeStatus::Rejected, Some(reason))
                }
                None => match &self.anchorer {
                    Some(anchorer) => match anchorer.confirmations(&entry.btc_txid).await {
                        Ok(c) if c > 0 => (ChallengeStatus::Confirmed, None),
                        Ok(_) => (ChallengeStatus::Posted, None),
                        Err(e) => {
                            tracing::debug!(target: "verifier::challenge", error = %e, "confirmations");
                            (entry.status, entry.reason.clone())
                        }
                    },
                    None => (entry.status, entry.reason.clone()),
                },
            };
            if status != entry.status || reason != entry.reason {
                tracing::info!(target: "verifier::challenge", batch = entry.batch, btc_txid = %entry.btc_txid, ?status, "challenge status");
                entry.status = status;
                entry.reason = reason;
                self.engine.lock().store().put_challenge(entry)?;
            }
        }

        let Some(fraud) = fraud else {
            self.failure = None;
            self.leaf = None;
            return Ok(());
        };
        let window_end = fraud.anchor.height.saturating_add(window);
        let remaining = window_end.saturating_sub(tip);
        let batch_hash = hex::encode(fraud.hash);
        let active = entries.iter().find(|e| {
            e.batch_hash == batch_hash
                && matches!(
                    e.status,
                    ChallengeStatus::Posted | ChallengeStatus::Confirmed
                )
        });
        let accepted = entries
            .iter()
            .any(|e| e.batch_hash == batch_hash && e.status == ChallengeStatus::Accepted);
        // The next block is `tip + 1`; a challenge in it counts if `tip + 1 < window_end`.
        let can_land = tip.saturating_add(1) < window_end;
        // Every step from the proof to a posted challenge; the first that fails becomes the
        // alert. A failure never skips the window-closing alert below.
        let mut result = Ok(());
        let failure = if accepted || active.is_some() {
            if let (Some(entry), Some(anchorer)) = (active.cloned(), &self.anchorer) {
                if entry.status == ChallengeStatus::Posted && self.last_nursed != Some(tip) {
                    result = self.nurse(anchorer, entry, tip, can_land).await;
                    self.last_nursed = Some(tip);
                }
            }
            None
        } else {
            match &fraud.detected {
                Err(unprovable) => Some((unprovable.stage, unprovable.reason.clone())),
                Ok(_) if !can_land => self.failure.as_ref().map(|f| (f.stage, f.reason.clone())),
                Ok(_) => match (&self.key, self.anchorer.clone()) {
                    (None, _) => Some((
                        ChallengeStage::Post,
                        "no challenge key configured: this verifier only watches".to_owned(),
                    )),
                    (Some(_), None) => Some((
                        ChallengeStage::Post,
                        format!(
                            "fee wallet {:?} unavailable: {}",
                            self.config.wallet(),
                            self.wallet_error.as_deref().unwrap_or("not opened yet")
                        ),
                    )),
                    (Some(_), Some(anchorer)) => match self.leaf_for(&anchorer, &fraud) {
                        Err(reason) => Some((ChallengeStage::Fit, reason)),
                        Ok(leaf) => {
                            let seq = entries.last().map_or(0, |e| e.seq.saturating_add(1));
                            match self.post(&anchorer, &fraud, leaf, seq, tip).await {
                                Ok(()) => None,
                                Err(e) => Some((ChallengeStage::Post, e.to_string())),
                            }
                        }
                    },
                },
            }
        };
        self.note_failure(&fraud, failure, tip, window_end);

        if remaining <= self.config.alert_blocks && self.last_alert != Some(tip) {
            self.last_alert = Some(tip);
            if !accepted {
                if can_land {
                    tracing::error!(
                        target: "verifier::challenge",
                        batch = fraud.number,
                        remaining_blocks = remaining,
                        window_end,
                        "ALERT: dispute window of a fraudulent batch is closing without a confirmed challenge"
                    );
                } else {
                    tracing::error!(
                        target: "verifier::challenge",
                        batch = fraud.number,
                        window_end,
                        "ALERT: dispute window of a fraudulent batch closed without a confirmed challenge"
                    );
                }
            }
        }
        result
    }

    /// Record why the pending fraud has no challenge on its way (`None`: it has one, or needs
    /// none): count it, log it at error level once per L1 block while the window is open, and
    /// keep it for `stint_verifierStatus` until the window closes.
    fn note_failure(
        &mut self,
        fraud: &PendingFraud,
        failure: Option<(ChallengeStage, String)>,
        tip: u64,
        window_end: u64,
    ) {
        let Some((stage, reason)) = failure else {
            if let Some(old) = self.failure.take() {
                tracing::info!(target: "verifier::challenge", batch = old.batch, stage = %old.stage, "challenge on its way; alert cleared");
            }
            return;
        };
        let Some(alert) = ChallengeAlert::new(fraud, stage, reason, tip, window_end) else {
            // The window closed: the window-closing alert takes over.
            self.failure = None;
            return;
        };
        let same = self
            .failure
            .as_ref()
            .is_some_and(|f| f.batch_hash == fraud.hash && f.stage == stage);
        // Deterministic steps count once per fraud; every failed post counts.
        if !same || stage == ChallengeStage::Post {
            self.shared.metrics.challenge_failures.inc();
        }
        if !same || self.last_failure_log != Some(tip) {
            self.last_failure_log = Some(tip);
            tracing::error!(
                target: "verifier::challenge",
                batch = fraud.number,
                batch_hash = %hex::encode(fraud.hash),
                segment = fraud.segment(),
                stage = %alert.stage,
                reason = %alert.reason,
                blocks_left = alert.blocks_left,
                window_end,
                "ALERT: a fraudulent batch cannot be challenged"
            );
        }
        self.failure = Some(alert);
    }

    /// The leaf script carrying the pending fraud's judged bytes under `anchorer`'s key, or why
    /// it does not fit one reveal (built once per fraud: compressing a large proof is slow).
    fn leaf_for(&mut self, anchorer: &Anchorer, fraud: &PendingFraud) -> Result<ScriptBuf, String> {
        if let Some((hash, leaf)) = &self.leaf {
            if *hash == fraud.hash {
                return leaf.clone();
            }
        }
        let leaf = match &fraud.detected {
            Ok(detected) => Envelope::new(
                EnvelopeKind::Challenge,
                anchorer.key(),
                detected.bytes.clone(),
            )
            .leaf_script()
            .map_err(|e| format!("the challenge envelope cannot be built: {e}")),
            Err(unprovable) => Err(unprovable.reason.clone()),
        };
        self.leaf = Some((fraud.hash, leaf.clone()));
        leaf
    }

    async fn post(
        &self,
        anchorer: &Anchorer,
        fraud: &PendingFraud,
        leaf: ScriptBuf,
        seq: u64,
        tip: u64,
    ) -> Result<(), VerifierError> {
        let hint = IndexHint {
            kind: EnvelopeKind::Challenge,
            number: fraud.number,
            header_hash: fraud.hash,
        };
        let fee_rate = self.config.fee_policy().rate(anchorer.wallet()).await;
        let posted = anchorer.post_leaf(leaf, Some(hint), fee_rate).await?;
        tracing::warn!(
            target: "verifier::challenge",
            batch = fraud.number,
            segment = fraud.segment(),
            btc_txid = %posted.reveal_txid,
            "challenge posted"
        );
        self.shared.metrics.challenges_posted.inc();
        let entry = ChallengeEntry {
            seq,
            batch: fraud.number,
            batch_hash: hex::encode(fraud.hash),
            btc_txid: posted.reveal_txid,
            status: ChallengeStatus::Posted,
            posted_at: tip,
            reason: None,
            posted: StoredPosted::from_posted(&posted),
        };
        self.engine.lock().store().put_challenge(&entry)?;
        Ok(())
    }

    /// An unconfirmed challenge: re-broadcast it (a reorg may have dropped it) and bump its fee
    /// when it waited `bump_after_blocks`.
    async fn nurse(
        &self,
        anchorer: &Anchorer,
        mut entry: ChallengeEntry,
        tip: u64,
        can_land: bool,
    ) -> Result<(), VerifierError> {
        if !can_land {
            return Ok(());
        }
        let posted = entry.posted.to_posted()?;
        if let Err(e) = anchorer.rebroadcast(&posted).await {
            tracing::warn!(target: "verifier::challenge", error = %e, btc_txid = %entry.btc_txid, "re-broadcast failed");
        }
        if tip.saturating_sub(entry.posted_at) < self.config.bump_after_blocks {
            return Ok(());
        }
        let current = posted.fee_rate.to_sat_per_kwu();
        let next = FeeRate::from_sat_per_kwu(current.saturating_mul(3) / 2)
            .min(self.config.max_fee_rate());
        if next.to_sat_per_kwu() <= current {
            tracing::error!(target: "verifier::challenge", btc_txid = %entry.btc_txid, "challenge unconfirmed at the maximum fee rate");
            return Ok(());
        }
        match anchorer.bump(&posted, next).await {
            Ok(bumped) => {
                tracing::warn!(target: "verifier::challenge", old = %entry.btc_txid, new = %bumped.reveal_txid, fee_rate = %next, "challenge fee bumped");
                entry.btc_txid = bumped.reveal_txid;
                entry.posted = StoredPosted::from_posted(&bumped);
                entry.posted_at = tip;
                self.engine.lock().store().put_challenge(&entry)?;
            }
            Err(e) => {
                tracing::warn!(target: "verifier::challenge", error = %e, "fee bump failed");
            }
        }
        Ok(())
    }
}
