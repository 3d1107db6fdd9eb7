//! The running sequencer: startup and recovery, the tasks it spawns, and shutdown. It builds
//! the handles the tasks share (the store, [`ChainState`], [`Publishers`], [`Admission`],
//! [`Sealer`], [`SequencerView`]), each with only the others it needs.

use std::net::SocketAddr;
use std::sync::Arc;

use stint_anchor::{AnchorWallet, Anchorer, BitcoindClient, BlockSource, FeeSource};
use stint_contracts::{SignedTx, Txid};
use stint_protocol::Genesis;
use stint_rpc::RpcServerHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admission::{run_log_writer, Admission};
use crate::anchoring::Anchoring;
use crate::batcher::Sealer;
use crate::chain::ChainState;
use crate::config::{FaultMode, SequencerConfig};
use crate::error::{ConfigError, SequencerError};
use crate::keys::load_anchor_key;
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::publish::Publishers;
use crate::rpc::RpcContext;
use crate::store::Store;
use crate::view::SequencerView;

/// A running sequencer. Dropping it without [`Sequencer::shutdown`] aborts its tasks.
pub struct Sequencer {
    admission: Arc<Admission>,
    sealer: Arc<Sealer>,
    /// Kept for the crate's unit tests (the RPC module holds its own).
    #[cfg(test)]
    view: Arc<SequencerView>,
    /// The configured address (what [`Sequencer::rpc_addr`] answers without a server).
    configured_rpc_addr: SocketAddr,
    server: Option<RpcServerHandle>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("rpc_addr", &self.rpc_addr())
            .finish_non_exhaustive()
    }
}

impl Sequencer {
    /// Open the data directory, recover (reload the admission log into the mempool), connect to
    /// bitcoind lazily, and start the batch, anchoring and RPC tasks.
    ///
    /// Invalid configuration (files, keys, genesis mismatch) fails here, before anything is
    /// written.
    pub async fn start(config: SequencerConfig) -> Result<Self, SequencerError> {
        config.validate()?;
        let genesis_text =
            std::fs::read_to_string(&config.genesis).map_err(|e| ConfigError::Read {
                path: config.genesis.clone(),
                reason: e.to_string(),
            })?;
        let genesis = Genesis::from_json(&genesis_text).map_err(|e| ConfigError::Read {
            path: config.genesis.clone(),
            reason: e.to_string(),
        })?;
        let keypair = load_anchor_key(&config.anchor_key)?;
        let bitcoind = BitcoindClient::new(
            config.bitcoind.rpc_url.clone(),
            config
                .bitcoind
                .auth()
                .map_err(|reason| ConfigError::Invalid {
                    field: "bitcoind",
                    reason,
                })?,
        );
        let wallet = bitcoind.with_wallet(config.wallet().to_owned());
        let anchorer = Anchorer::new(wallet, keypair, config.bitcoind.network);
        Self::start_with(config, genesis, anchorer, bitcoind).await
    }

    /// [`Sequencer::start`] on any Bitcoin edge: the anchoring loop follows `source` and
    /// anchors through `anchorer`'s wallet (the unit tests run it on the in-memory chain).
    pub(crate) async fn start_with<W, S>(
        config: SequencerConfig,
        genesis: Genesis,
        anchorer: Anchorer<W>,
        source: S,
    ) -> Result<Self, SequencerError>
    where
        W: AnchorWallet + FeeSource + 'static,
        S: BlockSource + 'static,
    {
        if anchorer.key() != genesis.anchor_key {
            return Err(ConfigError::Invalid {
                field: "anchor_key",
                reason: "the key is not the genesis anchor_key".into(),
            }
            .into());
        }
        if config.l1_origin_depth >= genesis.sequencing_window {
            // Every batch would lag its anchor by more than the window and be refused.
            return Err(ConfigError::Invalid {
                field: "l1_origin_depth",
                reason: format!(
                    "must be below the genesis sequencing_window ({})",
                    genesis.sequencing_window
                ),
            }
            .into());
        }
        let genesis_root = genesis
            .state_root()
            .map_err(|e| SequencerError::Internal(e.to_string()))?;

        std::fs::create_dir_all(&config.data_dir)?;
        let db_path = config.data_dir.join("db");
        let store = tokio::task::spawn_blocking({
            let genesis = genesis.clone();
            move || Store::open(&db_path, &genesis)
        })
        .await
        .map_err(|e| SequencerError::Internal(e.to_string()))??;
        let store = Arc::new(store);
        let chain = Arc::new(ChainState::open(&store, &genesis, genesis_root)?);
        tracing::info!(target: "sequencer", batch = chain.head().number, "opened data directory");

        let metrics = Metrics::default();
        let publishers = Arc::new(Publishers::default());
        let max_batch_txs = crate::batcher::limits(&genesis, &config).max_batch_txs as usize;
        let (admission, log_rx) = Admission::new(
            genesis.chain_id,
            max_batch_txs,
            Arc::clone(&store),
            Arc::clone(&chain),
            Mempool::new(config.mempool.clone(), config.min_fee, 0),
            Arc::clone(&publishers),
            metrics.clone(),
        );
        let censored = config
            .fault
            .filter(|f| f.mode == FaultMode::Censor)
            .and_then(|f| f.account);
        let admission = Arc::new(admission.with_censored(censored));
        admission.recover_log()?;
        {
            // The writer ends when the admission (which holds the only sender) is dropped.
            let weak = Arc::downgrade(&admission);
            let max_group = config.max_group_commit;
            std::thread::Builder::new()
                .name("stint-admission-log".into())
                .spawn(move || run_log_writer(weak, log_rx, max_group))?;
        }
        let sealer = Arc::new(Sealer::new(
            &genesis,
            &config,
            Arc::clone(&store),
            Arc::clone(&admission),
            Arc::clone(&chain),
            Arc::clone(&publishers),
            metrics.clone(),
        )?);
        let view = Arc::new(SequencerView::new(
            genesis.clone(),
            genesis_root,
            Arc::clone(&store),
            Arc::clone(&chain),
            Arc::clone(&admission),
            config.bitcoind.network,
        ));

        let (stop, stop_rx) = watch::channel(false);
        let module = crate::rpc::module(
            RpcContext {
                admission: Arc::clone(&admission),
                sealer: Arc::clone(&sealer),
                min_fee: config.min_fee,
            },
            Arc::clone(&chain),
            Arc::clone(&view),
            &publishers,
            &metrics,
        )?;
        let listener = tokio::net::TcpListener::bind(config.rpc_addr).await?;
        let server = stint_rpc::serve(listener, module, crate::rpc::server_config(&config))
            .await
            .map_err(|e| SequencerError::Internal(e.to_string()))?;
        tracing::info!(target: "sequencer", addr = %server.local_addr(), "JSON-RPC listening");
        let configured_rpc_addr = config.rpc_addr;
        let anchoring = Anchoring {
            genesis,
            genesis_root,
            config,
            store,
            chain,
            sealer: Arc::clone(&sealer),
            publishers,
            metrics,
        };
        let tasks = vec![
            tokio::spawn(crate::batcher::run(Arc::clone(&sealer), stop_rx.clone())),
            tokio::spawn(crate::anchoring::run(anchoring, anchorer, source, stop_rx)),
        ];
        Ok(Self {
            admission,
            sealer,
            #[cfg(test)]
            view,
            configured_rpc_addr,
            server: Some(server),
            tasks,
            stop,
        })
    }

    /// The node's read view (for the crate's unit tests).
    #[cfg(test)]
    pub(crate) fn view(&self) -> &SequencerView {
        &self.view
    }

    /// The node's store (for the crate's unit tests).
    #[cfg(test)]
    pub(crate) fn store(&self) -> &Store {
        self.view.store()
    }

    /// The address the JSON-RPC server listens on.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .map(RpcServerHandle::local_addr)
            .unwrap_or(self.configured_rpc_addr)
    }

    /// Admit a transaction directly (what `stint_sendTransaction` does). Returns once durable.
    pub async fn submit(&self, tx: SignedTx) -> Result<Txid, SequencerError> {
        self.admission.submit(tx).await
    }

    /// Seal a batch now from what is pending (also sealed on the interval). Returns the new
    /// batch number, or `None` when nothing was pending.
    pub async fn seal_now(&self) -> Result<Option<u64>, SequencerError> {
        self.sealer.seal_blocking().await
    }

    /// Stop the tasks and the RPC server; pending txs stay in the durable log.
    pub async fn shutdown(mut self) -> Result<(), SequencerError> {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        if let Some(server) = self.server.take() {
            server
                .shutdown()
                .await
                .map_err(|e| SequencerError::Internal(e.to_string()))?;
        }
        tracing::info!(target: "sequencer", "stopped");
        Ok(())
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
        if let Some(server) = &self.server {
            server.stop();
        }
    }
}
