//! # stint-sequencer
//!
//! The Stint sequencer: it admits signed transactions over JSON-RPC, makes each durable before
//! acknowledging it, orders them into batches, persists each batch with its state and receipts
//! atomically, writes the batches to Bitcoin, and reports finality from derivation.
//!
//! ## Key components
//! - **Admission** ([`Sequencer::submit`], `stint_sendTransaction`): decode and size limits,
//!   chain id, the signature on the rayon pool, then the mempool rules against the sealed state
//!   (nonce not used, nonce gap bounded, fee at least `min_fee` and payable together with the
//!   account's other pending txs, per-account and global bounds, same-nonce replacement by a
//!   higher fee). Refusals are [`Rejection`]s with readable messages and stable [`codes`].
//! - **Durable admission log**: accepted txs go to a writer thread that appends everything queued
//!   in one synced RocksDB write (group commit: one fsync per group). The RPC answers only after
//!   that fsync. On restart the log is replayed into the mempool.
//! - **Batch builder** (every `batch_interval_ms`, or at once when a full batch is waiting): the
//!   honest [`stint_protocol::BatchBuilder`] executes the candidates; the batch, its state
//!   version, receipts, task index and the deletion of the consumed log entries are written in
//!   **one** synced RocksDB write batch, so a `kill -9` at any moment loses no acknowledged tx
//!   and executes none twice. Receipts are `soft` at once.
//! - **Anchoring loop**: follows Bitcoin with [`stint_anchor::ChainFollower`], runs
//!   [`stint_protocol::Derivation`] over the blocks (the source of `anchored` and `final`), and
//!   posts the batch after derivation's canonical tip with a commit/reveal pair (envelope kind
//!   Batch + index hint): in order, one in flight, re-broadcast, fee-bumped, and re-posted after
//!   a reorg. While bitcoind is unreachable admission and sealing go on; the backlog is anchored
//!   in order once it is back.
//! - **Convergence** (module `converge`): the sequencer's chain always becomes derivation's
//!   canonical chain. When derivation invalidates one of our batches (a valid challenge), would
//!   refuse the next one (its L1 origin was reorged out), or holds batches other than ours (a
//!   reorg removed the challenge, or an older envelope of ours was mined), our chain is rewound
//!   in one synced write: dropped batches are parked until their slot is final, parked ones
//!   derivation made canonical are restored, and every other dropped tx goes back into the
//!   admission log to be sealed again; each acknowledged tx ends in exactly one canonical batch
//!   (or `dropped` when invalid on the canonical state).
//! - **JSON-RPC** on `POST /` and `/ws` (via `stint-rpc`): `stint_chainInfo`, `stint_syncStatus`,
//!   `stint_sendTransaction`, `stint_sendRawTransaction`, `stint_getTransaction`,
//!   `stint_getReceipt`, `stint_getAccount`, `stint_getTask`, `stint_getStream`,
//!   `stint_getTasks`, `stint_getBatch`, `stint_estimateFee`, admin `stint_sealBatch`,
//!   subscriptions `newBatches`, `txStatus`, `finality`; `rpc.discover`; `GET /health`;
//!   `GET /metrics` (the node's one `prometheus-client` registry: the sequencer's counters,
//!   its gauges read from the live state at each scrape, and the RPC server's metrics).
//! - **Fault modes** ([`FaultMode`]) for watchtower tests: a batch that passes every structural
//!   check of derivation but lies about its result.
//! - **Configuration** ([`SequencerConfig`], [`SequencerArgs`]): TOML file, `STINT_*`
//!   environment, flags; defaults are the `DEFAULT_*` constants.
//!
//! ## Usage
//! ```no_run
//! use stint_sequencer::{Sequencer, SequencerConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SequencerConfig::from_file("sequencer.toml".as_ref())?;
//! let sequencer = Sequencer::start(config).await?;
//! println!("JSON-RPC on http://{}", sequencer.rpc_addr());
//! tokio::signal::ctrl_c().await?;
//! sequencer.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod admission;
mod anchoring;
mod batcher;
mod chain;
#[cfg(test)]
mod chain_tests;
mod config;
mod converge;
mod error;
mod keys;
mod mempool;
mod metrics;
mod node;
mod publish;
mod rpc;
mod store;
mod view;

pub use config::{
    BitcoindConfig, FaultConfig, FaultMode, MempoolConfig, Secret, SequencerArgs, SequencerConfig,
    DEFAULT_ANCHOR_KEY_FILE, DEFAULT_BATCH_INTERVAL_MS, DEFAULT_BITCOIND_RPC_URL,
    DEFAULT_BITCOIND_WALLET, DEFAULT_BUMP_AFTER_BLOCKS, DEFAULT_DATA_DIR, DEFAULT_FEE_CONF_TARGET,
    DEFAULT_FEE_RATE_SAT_VB, DEFAULT_GENESIS_FILE, DEFAULT_L1_ORIGIN_DEPTH,
    DEFAULT_MAX_FEE_RATE_SAT_VB, DEFAULT_MAX_GROUP_COMMIT, DEFAULT_MAX_NONCE_GAP,
    DEFAULT_MEMPOOL_MAX_PER_ACCOUNT, DEFAULT_MEMPOOL_MAX_QUEUED,
    DEFAULT_MEMPOOL_MAX_QUEUED_PER_ACCOUNT, DEFAULT_MEMPOOL_MAX_TXS,
    DEFAULT_MEMPOOL_QUEUED_TTL_SECS, DEFAULT_MIN_FEE, DEFAULT_POLL_INTERVAL_MS, DEFAULT_RPC_ADDR,
};
pub use error::{codes, BoxError, ConfigError, Rejection, SequencerError, Severity};
pub use keys::load_anchor_key;
pub use node::Sequencer;

/// Run a sequencer with `args` until Ctrl-C or SIGTERM, then stop it cleanly (what
/// `stint sequencer` does).
pub async fn run(args: &SequencerArgs) -> Result<(), SequencerError> {
    let config = args.load()?;
    let sequencer = Sequencer::start(config).await?;
    wait_for_signal().await?;
    tracing::info!(target: "sequencer", "shutting down");
    sequencer.shutdown().await
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<(), SequencerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<(), SequencerError> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
