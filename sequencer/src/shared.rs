//! The sequencer's state shared by its tasks: the soft head, what derivation says of the chain,
//! the mempool, the store, the subscription publishers, and admission with the durable
//! group-committed log. The tasks (`batcher`, `anchoring`, `rpc`) and the node's startup
//! (`node`) use this module; it uses none of them.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::Hash as _;
use bitcoin::BlockHash;
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use stint_contracts::{read_account, Account, AccountId, SignedTx, Txid, MAX_SIGNED_TX_SIZE};
use stint_protocol::{BatchHeader, Genesis, L1Origin};
use stint_rpc::Publisher;
use stint_state::{Hash, SparseMerkleTree};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::config::SequencerConfig;
use crate::error::{Rejection, SequencerError};
use crate::mempool::Mempool;
use crate::metrics::{Gauges, Metrics};
use crate::store::Store;

/// The latest sealed batch (or genesis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) number: u64,
    pub(crate) hash: Hash,
    /// The state root the header claims.
    pub(crate) claimed_root: Hash,
    /// The state root this sequencer computed (equal unless a fault mode lied).
    pub(crate) honest_root: Hash,
    pub(crate) timestamp: u64,
    pub(crate) l1_origin: L1Origin,
}

/// Where a canonical batch is anchored (from derivation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AnchorInfo {
    pub(crate) hash: Hash,
    pub(crate) state_root: Hash,
    pub(crate) btc_txid: bitcoin::Txid,
    pub(crate) height: u64,
}

/// What derivation says about the chain, as of the last poll.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChainStatus {
    /// Canonical anchored batches, by number.
    pub(crate) anchored: BTreeMap<u64, AnchorInfo>,
    /// Highest final batch number (0: none).
    pub(crate) final_number: u64,
    /// Batches invalidated by a valid challenge.
    pub(crate) invalidated: BTreeMap<u64, Hash>,
    /// The followed L1 tip.
    pub(crate) l1_tip: Option<(u64, BlockHash)>,
    /// Recent followed blocks: height → (hash, time).
    pub(crate) l1_blocks: BTreeMap<u64, (BlockHash, u64)>,
    /// Whether the last poll of bitcoind succeeded.
    pub(crate) bitcoind_up: bool,
    /// The canonical batch this sequencer does not hold and waits for (see `converge`), with
    /// the reason; anchoring is paused meanwhile.
    pub(crate) waiting: Option<(u64, String)>,
}

/// Finality of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchFinality {
    Soft,
    Anchored,
    Final,
    Invalidated,
}

impl BatchFinality {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Soft => "soft",
            Self::Anchored => "anchored",
            Self::Final => "final",
            Self::Invalidated => "invalidated",
        }
    }
}

impl ChainStatus {
    /// Finality of batch `number` with header hash `hash`.
    pub(crate) fn finality(&self, number: u64, hash: &Hash) -> BatchFinality {
        if self.invalidated.get(&number) == Some(hash) {
            return BatchFinality::Invalidated;
        }
        match self.anchored.get(&number) {
            Some(a) if a.hash == *hash && number <= self.final_number => BatchFinality::Final,
            Some(a) if a.hash == *hash => BatchFinality::Anchored,
            _ => BatchFinality::Soft,
        }
    }

    /// Highest anchored batch number (0: none).
    pub(crate) fn anchored_number(&self) -> u64 {
        self.anchored.keys().next_back().copied().unwrap_or(0)
    }
}

/// Subscription publishers.
pub(crate) struct Publishers {
    pub(crate) new_batches: Publisher,
    pub(crate) tx_status: Publisher,
    pub(crate) finality: Publisher,
}

/// A request to the admission log writer.
pub(crate) struct LogRequest {
    seq: u64,
    bytes: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Everything the tasks and RPC handlers share.
pub(crate) struct Shared {
    pub(crate) genesis: Genesis,
    pub(crate) genesis_root: Hash,
    pub(crate) config: SequencerConfig,
    pub(crate) store: Store,
    pub(crate) pool: Mutex<Mempool>,
    pub(crate) head: RwLock<Head>,
    pub(crate) chain: RwLock<ChainStatus>,
    pub(crate) metrics: Metrics,
    pub(crate) publishers: OnceLock<Publishers>,
    pub(crate) seal_now: Notify,
    /// Held while a batch is being sealed (one at a time).
    pub(crate) seal_lock: Mutex<()>,
    /// Whether the configured fault was committed by this process (once, at the first batch at
    /// or after `fault.batch` where it applies).
    pub(crate) fault_done: std::sync::atomic::AtomicBool,
    pub(crate) log_tx: mpsc::UnboundedSender<LogRequest>,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Shared {
    /// The account `id` in the state with root `root`.
    pub(crate) fn account_at(&self, root: Hash, id: &AccountId) -> Result<Account, SequencerError> {
        let tree = SparseMerkleTree::new(self.store.state());
        read_account(&tree.view(root), id)
            .map_err(|e| SequencerError::storage("reading the state", e))
    }

    pub(crate) fn publish_tx_status(&self, txid: &Txid, finality: &str, batch: Option<u64>) {
        if let Some(p) = self.publishers.get() {
            p.tx_status.publish(serde_json::json!({
                "txid": txid.to_string(),
                "finality": finality,
                "batch": batch,
            }));
        }
    }

    /// Admit `tx`: stateless checks, the signature on the rayon pool, the mempool rules, then the
    /// durable log. Returns once the tx is fsync'd.
    pub(crate) async fn submit(&self, tx: SignedTx) -> Result<Txid, SequencerError> {
        let result = self.submit_inner(tx).await;
        match &result {
            Ok(_) => {
                self.metrics.admitted.inc();
            }
            Err(SequencerError::Rejected(r)) => {
                self.metrics.rejected.inc();
                tracing::debug!(target: "sequencer::admission", reason = %r, "tx refused");
            }
            Err(e) => {
                tracing::error!(target: "sequencer::admission", error = %e, "admission failed")
            }
        }
        result
    }

    async fn submit_inner(&self, tx: SignedTx) -> Result<Txid, SequencerError> {
        if tx.tx.chain_id != self.genesis.chain_id {
            return Err(Rejection::WrongChain {
                found: tx.tx.chain_id,
                expected: self.genesis.chain_id,
            }
            .into());
        }
        tx.tx
            .call
            .check_bounds()
            .map_err(|e| Rejection::Malformed(e.to_string()))?;
        if let Some((index, account)) = tx.tx.call.first_non_key() {
            return Err(Rejection::NotAKey { index, account }.into());
        }
        let bytes = tx.encode();
        if bytes.len() > MAX_SIGNED_TX_SIZE {
            return Err(Rejection::TooLarge {
                size: bytes.len(),
                max: MAX_SIGNED_TX_SIZE,
            }
            .into());
        }
        let (tx, txid) = verify_on_pool(tx).await?;
        if self.store.receipt(&txid)?.is_some() {
            return Err(Rejection::AlreadyKnown.into());
        }
        let admitted = {
            let mut pool = self.pool.lock();
            let root = self.head.read().honest_root;
            let account = self.account_at(root, &tx.tx.from)?;
            pool.insert(tx, txid, account, None, Instant::now())?
        };
        let (done, wait) = oneshot::channel();
        let sent = self.log_tx.send(LogRequest {
            seq: admitted.seq,
            bytes,
            done,
        });
        let outcome = match sent {
            Ok(()) => wait
                .await
                .unwrap_or_else(|_| Err("admission log writer stopped".into())),
            Err(_) => Err("admission log writer stopped".into()),
        };
        let mut pool = self.pool.lock();
        match outcome {
            Ok(()) => {
                pool.mark_durable(&txid);
                let full = pool.len() >= self.max_batch_txs();
                drop(pool);
                if full {
                    self.seal_now.notify_one();
                }
                self.publish_tx_status(&txid, "pending", None);
                Ok(txid)
            }
            Err(e) => {
                pool.remove_failed(&txid);
                // Writing failed (a full disk, an I/O error): the client may retry.
                Err(SequencerError::Storage {
                    what: format!("admission log: {e}"),
                    source: None,
                    corrupt: false,
                })
            }
        }
    }

    /// The effective `max_batch_txs`.
    pub(crate) fn max_batch_txs(&self) -> usize {
        let genesis = self.genesis.max_batch_txs;
        self.config.max_batch_txs.unwrap_or(genesis).min(genesis) as usize
    }
}

/// Check the signature on the rayon pool (keeps the async workers free).
async fn verify_on_pool(tx: SignedTx) -> Result<(SignedTx, Txid), SequencerError> {
    let (send, recv) = oneshot::channel();
    rayon::spawn(move || {
        let ok = tx.verify();
        let txid = tx.txid();
        let _ = send.send((tx, txid, ok));
    });
    let (tx, txid, ok) = recv
        .await
        .map_err(|_| SequencerError::Internal("signature pool dropped a job".into()))?;
    if ok {
        Ok((tx, txid))
    } else {
        Err(Rejection::InvalidSignature.into())
    }
}

/// The admission log writer: takes every queued request, writes them in one synced RocksDB
/// write (one fsync per group), then answers them all.
pub(crate) fn run_log_writer(
    shared: std::sync::Weak<Shared>,
    mut rx: mpsc::UnboundedReceiver<LogRequest>,
    max_group: usize,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < max_group {
            match rx.try_recv() {
                Ok(req) => group.push(req),
                Err(_) => break,
            }
        }
        let entries: Vec<(u64, Vec<u8>)> = group
            .iter_mut()
            .map(|r| (r.seq, std::mem::take(&mut r.bytes)))
            .collect();
        let result = match shared.upgrade() {
            Some(shared) => {
                let started = std::time::Instant::now();
                let result = shared.store.append_log(&entries).map_err(|e| e.to_string());
                let m = &shared.metrics;
                m.log_write_seconds.inc_by(started.elapsed().as_secs_f64());
                m.group_commits.inc();
                m.group_commit_txs.inc_by(group.len() as u64);
                result
            }
            None => Err("shutting down".to_owned()),
        };
        if let Err(e) = &result {
            tracing::error!(target: "sequencer::admission", error = %e, "admission log write failed");
        }
        for req in group {
            let _ = req.done.send(result.clone());
        }
    }
}

/// The head as of stored batch `number` (0: genesis).
pub(crate) fn head_at(
    store: &Store,
    genesis: &Genesis,
    genesis_root: Hash,
    number: u64,
) -> Result<Head, SequencerError> {
    let state_root = store.state_root(number)?;
    if number == 0 {
        if state_root != Some(genesis_root) {
            return Err(SequencerError::corrupt(
                "state version 0 is not the genesis state",
            ));
        }
        return Ok(Head {
            number: 0,
            hash: genesis.hash(),
            claimed_root: genesis_root,
            honest_root: genesis_root,
            timestamp: 0,
            l1_origin: L1Origin {
                height: genesis.l1_start_height,
                hash: genesis.l1_start_hash.to_byte_array(),
            },
        });
    }
    let stored = store
        .batch(number)?
        .ok_or_else(|| SequencerError::corrupt(format!("batch {number} vanished")))?;
    if state_root != Some(stored.honest_root) {
        return Err(SequencerError::corrupt(format!(
            "state version {number} does not match batch {number}"
        )));
    }
    let batch = stored.batch()?;
    let header = batch.header();
    Ok(Head {
        number,
        hash: header.hash(),
        claimed_root: header.state_root,
        honest_root: stored.honest_root,
        timestamp: header.timestamp,
        l1_origin: header.l1_origin,
    })
}

/// The JSON of a batch header with its status and anchor (the `newBatches` event).
pub(crate) fn batch_json(
    header: &BatchHeader,
    hash: &Hash,
    status: BatchFinality,
    anchor: Option<&AnchorInfo>,
) -> Value {
    json!({
        "number": header.number,
        "hash": hex::encode(hash),
        "parent": hex::encode(header.parent),
        "stateRoot": hex::encode(header.state_root),
        "prevStateRoot": hex::encode(header.prev_state_root),
        "txRoot": hex::encode(header.tx_root),
        "traceRoot": hex::encode(header.trace_root),
        "timestamp": header.timestamp,
        "l1Origin": {"height": header.l1_origin.height, "hash": BlockHash::from_byte_array(header.l1_origin.hash).to_string()},
        "txCount": header.tx_count,
        "status": status.as_str(),
        "anchor": anchor.map(|a| json!({"btcTxid": a.btc_txid.to_string(), "height": a.height})),
    })
}

impl Shared {
    /// The gauges `/metrics` shows, read from the live state at each scrape.
    pub(crate) fn gauges(&self) -> Gauges {
        let soft = self.head.read().number;
        let chain = self.chain.read();
        let pool = self.pool.lock();
        Gauges {
            pending: pool.len() as u64,
            queued: pool.queued_len() as u64,
            soft,
            anchored: chain.anchored_number(),
            final_number: chain.final_number,
            l1_height: chain.l1_tip.map_or(0, |(h, _)| h),
            bitcoind_up: chain.bitcoind_up,
            waiting: chain.waiting.as_ref().map_or(0, |(n, _)| *n),
        }
    }
}
