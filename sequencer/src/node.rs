//! The running sequencer: startup and recovery, the tasks it spawns, and shutdown. The state
//! the tasks share is in `shared`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use stint_anchor::{AnchorWallet, Anchorer, BitcoindClient, BlockSource, FeeSource};
use stint_contracts::{SignedTx, Txid};
use stint_protocol::Genesis;
use stint_rpc::RpcServerHandle;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::config::SequencerConfig;
use crate::error::{ConfigError, SequencerError};
use crate::keys::load_anchor_key;
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::shared::{head_at, run_log_writer, ChainStatus, Shared};
use crate::store::{Store, StoredReceipt};

/// A running sequencer. Dropping it without [`Sequencer::shutdown`] aborts its tasks.
pub struct Sequencer {
    shared: Arc<Shared>,
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
        let head = head_at(&store, &genesis, genesis_root, store.head_number()?)?;
        let fault_done = store.fault_done()?;
        tracing::info!(target: "sequencer", batch = head.number, "opened data directory");

        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pool: Mutex::new(Mempool::new(config.mempool.clone(), config.min_fee, 0)),
            genesis,
            genesis_root,
            store,
            head: RwLock::new(head),
            chain: RwLock::new(ChainStatus::default()),
            metrics: Metrics::default(),
            publishers: OnceLock::new(),
            seal_now: Notify::new(),
            seal_lock: Mutex::new(()),
            fault_done: std::sync::atomic::AtomicBool::new(fault_done),
            log_tx,
            config,
        });
        recover_log(&shared)?;

        {
            // The writer ends when the shared state (which holds the only sender) is dropped.
            let weak = Arc::downgrade(&shared);
            let max_group = shared.config.max_group_commit;
            std::thread::Builder::new()
                .name("stint-admission-log".into())
                .spawn(move || run_log_writer(weak, log_rx, max_group))?;
        }

        let (stop, stop_rx) = watch::channel(false);
        let module = crate::rpc::module(Arc::clone(&shared))?;
        let listener = tokio::net::TcpListener::bind(shared.config.rpc_addr).await?;
        let server = stint_rpc::serve(listener, module, crate::rpc::server_config(&shared.config))
            .await
            .map_err(|e| SequencerError::Internal(e.to_string()))?;
        tracing::info!(target: "sequencer", addr = %server.local_addr(), "JSON-RPC listening");
        let tasks = vec![
            tokio::spawn(crate::batcher::run(Arc::clone(&shared), stop_rx.clone())),
            tokio::spawn(crate::anchoring::run(
                Arc::clone(&shared),
                anchorer,
                source,
                stop_rx,
            )),
        ];
        Ok(Self {
            shared,
            server: Some(server),
            tasks,
            stop,
        })
    }

    /// The node's shared state (for the crate's unit tests).
    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The address the JSON-RPC server listens on.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .map(RpcServerHandle::local_addr)
            .unwrap_or(self.shared.config.rpc_addr)
    }

    /// Admit a transaction directly (what `stint_sendTransaction` does). Returns once durable.
    pub async fn submit(&self, tx: SignedTx) -> Result<Txid, SequencerError> {
        self.shared.submit(tx).await
    }

    /// Seal a batch now from what is pending (also sealed on the interval). Returns the new
    /// batch number, or `None` when nothing was pending.
    pub async fn seal_now(&self) -> Result<Option<u64>, SequencerError> {
        crate::batcher::seal_blocking(Arc::clone(&self.shared)).await
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

/// An admission log entry: sequence, bytes, and the decoded, signature-checked tx or why not.
type LoggedTx = (u64, Vec<u8>, Result<(SignedTx, Txid), String>);

/// Put every acknowledged, unsealed tx of the admission log back into the mempool (in admission
/// order, signatures re-checked in parallel); record the ones no longer admissible as dropped.
fn recover_log(shared: &Shared) -> Result<(), SequencerError> {
    use rayon::prelude::*;
    let entries = shared.store.load_log()?;
    if entries.is_empty() {
        return Ok(());
    }
    let decoded: Vec<LoggedTx> = entries
        .into_par_iter()
        .map(|(seq, bytes)| {
            let parsed = match SignedTx::decode(&bytes) {
                Ok(tx) if tx.verify() => {
                    let txid = tx.txid();
                    Ok((tx, txid))
                }
                Ok(_) => Err("invalid signature".to_owned()),
                Err(e) => Err(format!("does not decode: {e}")),
            };
            (seq, bytes, parsed)
        })
        .collect();
    let root = shared.head.read().honest_root;
    let mut pool = shared.pool.lock();
    let mut dropped = Vec::new();
    let mut restored = 0usize;
    for (seq, bytes, parsed) in decoded {
        match parsed {
            Ok((tx, txid)) => {
                let account = shared.account_at(root, &tx.tx.from)?;
                match pool.insert(tx, txid, account, Some(seq), Instant::now()) {
                    Ok(_) => {
                        pool.mark_durable(&txid);
                        restored = restored.saturating_add(1);
                    }
                    Err(reason) => dropped.push((
                        seq,
                        txid,
                        StoredReceipt::Dropped {
                            reason: reason.to_string(),
                            tx: bytes,
                        },
                    )),
                }
            }
            Err(reason) => {
                tracing::error!(target: "sequencer::admission", seq, %reason, "corrupt admission log entry");
                dropped.push((
                    seq,
                    Txid(stint_state::sha256(&bytes)),
                    StoredReceipt::Dropped { reason, tx: bytes },
                ));
            }
        }
    }
    // Replacements among the restored txs.
    let evicted = pool.finish_seal(&[], |_| 0);
    drop(pool);
    for e in evicted {
        dropped.push((
            e.seq,
            e.txid,
            StoredReceipt::Dropped {
                reason: e.reason,
                tx: e.tx.encode(),
            },
        ));
    }
    if !dropped.is_empty() {
        shared.store.drop_logged(&dropped)?;
    }
    tracing::info!(target: "sequencer::admission", restored, dropped = dropped.len(), "admission log recovered");
    Ok(())
}
