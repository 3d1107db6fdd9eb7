//! The I/O loop: follow Bitcoin through a [`BlockSource`], drive the [`Engine`], hand the
//! [`Challenger`] what it needs to post and watch challenges, publish the [`Status`] that the
//! RPC's [`VerifierView`] reads. Generic over the block source and the challenger's wallet
//! ([`start_with`]); [`start`] runs it on bitcoind for both.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use stint_anchor::{
    AnchorWallet, BitcoindClient, BlockSource, ChainEvent, ChainFollower, FeeSource,
};
use stint_contracts::AccountId;
use stint_protocol::Genesis;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::challenge::{ChainFacts, ChallengeKey, ChallengePolicy, Challenger};
use crate::config::VerifierConfig;
use crate::engine::{BlockReport, Engine};
use crate::error::{ConfigError, Severity, VerifierError};
use crate::metrics::VerifierMetrics;
use crate::status::{ChallengeAlert, Snapshot, Status};
use crate::view::VerifierView;

/// A running verifier.
#[derive(Debug)]
pub struct VerifierHandle {
    status: Arc<Status>,
    view: Arc<VerifierView>,
    metrics: Arc<VerifierMetrics>,
    rpc: stint_rpc::RpcServerHandle,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), VerifierError>>,
}

impl VerifierHandle {
    /// The JSON-RPC address.
    pub fn rpc_addr(&self) -> std::net::SocketAddr {
        self.rpc.local_addr()
    }

    /// The status the loop publishes after every poll.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// The read-only chain view the RPC serves.
    pub fn view(&self) -> &Arc<VerifierView> {
        &self.view
    }

    /// The metrics (`/metrics`).
    pub fn metrics(&self) -> &Arc<VerifierMetrics> {
        &self.metrics
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

/// Open the verifier's storage, start its RPC server and its loop, on the bitcoind of
/// `config.bitcoind`: blocks from it, challenges funded by its wallet `config.wallet()`.
pub async fn start(config: VerifierConfig) -> Result<VerifierHandle, VerifierError> {
    config.validate()?;
    let auth = config
        .bitcoind
        .auth()
        .map_err(|reason| ConfigError::Invalid {
            field: "bitcoind",
            reason,
        })?;
    let client = BitcoindClient::new(config.bitcoind.rpc_url.clone(), auth);
    let wallet = client.with_wallet(config.wallet());
    start_with(config, Some(wallet), client).await
}

/// [`start`] on any block source and fee wallet: blocks are read from `source`; challenges
/// are funded, signed and sent through `wallet` (`None`: frauds are reported, not challenged,
/// as without a challenge key). Tests run it on a `MemoryChain` and a `MemoryWallet`.
pub async fn start_with<W, S>(
    config: VerifierConfig,
    wallet: Option<W>,
    source: S,
) -> Result<VerifierHandle, VerifierError>
where
    W: AnchorWallet + FeeSource + 'static,
    S: BlockSource + Clone + 'static,
{
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
    let mut builder = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("stint-replay-{i}"));
    if config.replay_threads > 0 {
        builder = builder.num_threads(config.replay_threads);
    }
    let pool = Arc::new(
        builder
            .build()
            .map_err(|e| VerifierError::Internal(format!("replay pool: {e}")))?,
    );
    let challenger_account = key
        .as_ref()
        .map_or(AccountId([0; 32]), ChallengeKey::account);
    let data_dir = config.data_dir.clone();
    let genesis_for_engine = genesis.clone();
    let engine = tokio::task::spawn_blocking(move || {
        Engine::open(genesis_for_engine, &data_dir, challenger_account, pool)
    })
    .await
    .map_err(|e| VerifierError::Internal(e.to_string()))??;

    let metrics = Arc::new(VerifierMetrics::default());
    let status = Arc::new(Status::default());
    publish(&status, &metrics, &engine, true, None, Vec::new());
    let view = Arc::new(VerifierView::new(
        genesis.clone(),
        engine.genesis_root(),
        Arc::clone(engine.state()),
        engine.store_handle(),
        Arc::clone(&status),
        config.bitcoind.network,
    ));

    let module = crate::rpc::module(Arc::clone(&view), &metrics)?;
    let listener = tokio::net::TcpListener::bind(config.rpc_addr)
        .await
        .map_err(|e| VerifierError::Rpc(format!("bind {}: {e}", config.rpc_addr)))?;
    let rpc = stint_rpc::serve(listener, module, stint_rpc::RpcServerConfig::default())
        .await
        .map_err(|e| VerifierError::Rpc(e.to_string()))?;

    let policy = ChallengePolicy {
        network,
        wallet_name: config.wallet().to_owned(),
        fees: config.fee_policy(),
        bump_after_blocks: config.bump_after_blocks,
        alert_blocks: config.alert_blocks,
    };
    let mut challenger = Challenger::new(
        key,
        wallet,
        policy,
        engine.store_handle(),
        Arc::clone(&metrics),
    );
    challenger.open_wallet().await;

    let (stop, stop_rx) = watch::channel(false);
    let looper = Loop {
        follower: ChainFollower::from_height(source.clone(), genesis.l1_start_height),
        source,
        l1_start: genesis.l1_start_height,
        engine: Arc::new(Mutex::new(engine)),
        status: Arc::clone(&status),
        metrics: Arc::clone(&metrics),
        challenger,
        poll_interval: config.poll_interval(),
    };
    let task = tokio::spawn(looper.run(stop_rx));
    Ok(VerifierHandle {
        status,
        view,
        metrics,
        rpc,
        stop,
        task,
    })
}

struct Loop<W, S> {
    engine: Arc<Mutex<Engine>>,
    status: Arc<Status>,
    metrics: Arc<VerifierMetrics>,
    follower: ChainFollower<S>,
    /// What the follower reads (to follow again from the engine after a failed step).
    source: S,
    /// The genesis L1 start height.
    l1_start: u64,
    challenger: Challenger<W>,
    poll_interval: Duration,
}

/// Publish what `engine` knows (and the loop's alerts) to `status`, and refresh the gauges.
fn publish(
    status: &Status,
    metrics: &VerifierMetrics,
    engine: &Engine,
    bitcoind_ok: bool,
    last_error: Option<String>,
    alerts: Vec<ChallengeAlert>,
) {
    let snapshot = Snapshot::of(engine, bitcoind_ok, last_error, alerts);
    // After a restart, batches verified before it are kept while derivation re-reads Bitcoin
    // and has not reached them yet: more verified than canonical is no lag, not a negative one.
    metrics.replay_lag_batches.set(
        (snapshot.canonical.len() as i64)
            .saturating_sub(engine.verified().len() as i64)
            .max(0),
    );
    metrics
        .l1_height
        .set(snapshot.l1.map_or(-1, |(h, _)| h as i64));
    let remaining = match (snapshot.pending_fraud, snapshot.l1) {
        (Some((_, end)), Some((tip, _))) => end.saturating_sub(tip) as i64,
        _ => -1,
    };
    metrics.window_remaining_blocks.set(remaining);
    metrics.unprovable_frauds.set(snapshot.alerts.len() as i64);
    status.publish(snapshot);
}

impl<W, S> Loop<W, S>
where
    W: AnchorWallet + FeeSource + 'static,
    S: BlockSource + Clone + 'static,
{
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), VerifierError> {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let result = match self.sync().await {
                Ok(()) => {
                    let facts = ChainFacts::of(&self.engine.lock());
                    match facts {
                        Ok(facts) => self.challenger.manage(facts).await,
                        Err(e) => Err(e),
                    }
                }
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
                let alerts = self.challenger.alerts();
                let engine = self.engine.lock();
                publish(&self.status, &self.metrics, &engine, ok, error, alerts);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll_interval) => {}
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
                            ChainFollower::resume(self.source.clone(), height, hash)
                        }
                        None => ChainFollower::from_height(self.source.clone(), self.l1_start),
                    };
                    return Err(e);
                }
            }
        }
    }

    fn account(&self, report: &BlockReport) {
        let m = &self.metrics;
        m.batches_verified.inc_by(report.verified.len() as u64);
        m.txs_replayed.inc_by(report.txs_replayed);
        m.rollbacks.inc_by(report.rolled_back.len() as u64);
        if report.fraud.is_some() {
            m.frauds_detected.inc();
        }
    }
}
