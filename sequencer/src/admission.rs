//! The admission handle ([`Admission`]): stateless checks, the signature on the rayon pool, the
//! mempool rules against the soft state, then the durable group-committed admission log; it owns
//! the mempool. The sealer takes its candidates from that mempool and convergence puts the txs
//! of rolled-back batches back into it. Also the log writer thread and the replay of the log
//! into the mempool at startup.

use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Mutex, MutexGuard};
use stint_contracts::{read_account, Account, AccountId, SignedTx, Txid, MAX_SIGNED_TX_SIZE};
use stint_state::{Hash, SparseMerkleTree};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::chain::ChainState;
use crate::error::{Rejection, SequencerError};
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::publish::Publishers;
use crate::store::{Store, StoredReceipt};

/// A request to the admission log writer.
pub(crate) struct LogRequest {
    seq: u64,
    bytes: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Admission of transactions into the mempool and the durable log.
pub(crate) struct Admission {
    chain_id: u64,
    /// The effective `max_batch_txs`: a mempool holding that many wakes the sealer.
    max_batch_txs: usize,
    store: Arc<Store>,
    /// The soft head, whose state admission checks accounts against.
    chain: Arc<ChainState>,
    pool: Mutex<Mempool>,
    publishers: Arc<Publishers>,
    metrics: Metrics,
    /// Wakes the sealer: a full batch is waiting, or a rewind queued txs again.
    seal_wanted: Notify,
    log_tx: mpsc::UnboundedSender<LogRequest>,
    /// The account the `censor` fault mode ignores: its txs are acknowledged, never admitted.
    censored: Option<AccountId>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("chain_id", &self.chain_id)
            .field("max_batch_txs", &self.max_batch_txs)
            .finish_non_exhaustive()
    }
}

/// The account `id` in the state with root `root`.
fn account_at(store: &Store, root: Hash, id: &AccountId) -> Result<Account, SequencerError> {
    let tree = SparseMerkleTree::new(store.state());
    read_account(&tree.view(root), id).map_err(|e| SequencerError::storage("reading the state", e))
}

impl Admission {
    /// Admission over an empty `pool`, and the receiving end of its log, for
    /// [`run_log_writer`].
    pub(crate) fn new(
        chain_id: u64,
        max_batch_txs: usize,
        store: Arc<Store>,
        chain: Arc<ChainState>,
        pool: Mempool,
        publishers: Arc<Publishers>,
        metrics: Metrics,
    ) -> (Self, mpsc::UnboundedReceiver<LogRequest>) {
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let admission = Self {
            chain_id,
            max_batch_txs,
            store,
            chain,
            pool: Mutex::new(pool),
            publishers,
            metrics,
            seal_wanted: Notify::new(),
            log_tx,
            censored: None,
        };
        (admission, log_rx)
    }

    /// Fault mode `censor`: acknowledge and drop every tx of `account`.
    pub(crate) fn with_censored(mut self, account: Option<AccountId>) -> Self {
        self.censored = account;
        self
    }

    /// The mempool (for the sealer and convergence; see [`ChainState`] for the lock order).
    pub(crate) fn pool(&self) -> MutexGuard<'_, Mempool> {
        self.pool.lock()
    }

    /// The pending tx `txid`, if any.
    pub(crate) fn pending_tx(&self, txid: &Txid) -> Option<SignedTx> {
        self.pool.lock().get(txid).map(|e| e.tx.clone())
    }

    /// The next nonce of `account` counting its pending txs (`state_nonce` from the state).
    pub(crate) fn pending_nonce(&self, account: &AccountId, state_nonce: u64) -> u64 {
        self.pool.lock().pending_nonce(account, state_nonce)
    }

    /// Pending txs, and of those the ones behind a nonce gap.
    pub(crate) fn pending_counts(&self) -> (usize, usize) {
        let pool = self.pool.lock();
        (pool.len(), pool.queued_len())
    }

    /// Whether a full batch is pending.
    pub(crate) fn full_batch_pending(&self) -> bool {
        self.pool.lock().len() >= self.max_batch_txs
    }

    /// Wake the sealer.
    pub(crate) fn request_seal(&self) {
        self.seal_wanted.notify_one();
    }

    /// Wait until [`Admission::request_seal`] is called.
    pub(crate) async fn seal_requested(&self) {
        self.seal_wanted.notified().await;
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
        if self.censored == Some(tx.tx.from) {
            // Fault mode `censor`: answer as if admitted, keep nothing.
            tracing::warn!(target: "sequencer::admission", "fault censor: ignoring a tx of the censored account");
            return Ok(tx.txid());
        }
        if tx.tx.chain_id != self.chain_id {
            return Err(Rejection::WrongChain {
                found: tx.tx.chain_id,
                expected: self.chain_id,
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
            let root = self.chain.head().honest_root;
            let account = account_at(&self.store, root, &tx.tx.from)?;
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
                let full = pool.len() >= self.max_batch_txs;
                drop(pool);
                if full {
                    self.request_seal();
                }
                self.publishers.tx_status(&txid, "pending", None);
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

    /// Put every acknowledged, unsealed tx of the admission log back into the mempool (in
    /// admission order, signatures re-checked in parallel); record the ones no longer
    /// admissible as dropped.
    pub(crate) fn recover_log(&self) -> Result<(), SequencerError> {
        use rayon::prelude::*;
        let entries = self.store.load_log()?;
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
        let root = self.chain.head().honest_root;
        let mut pool = self.pool.lock();
        let mut dropped = Vec::new();
        let mut restored = 0usize;
        for (seq, bytes, parsed) in decoded {
            match parsed {
                Ok((tx, txid)) => {
                    let account = account_at(&self.store, root, &tx.tx.from)?;
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
            self.store.drop_logged(&dropped)?;
        }
        tracing::info!(target: "sequencer::admission", restored, dropped = dropped.len(), "admission log recovered");
        Ok(())
    }
}

/// An admission log entry: sequence, bytes, and the decoded, signature-checked tx or why not.
type LoggedTx = (u64, Vec<u8>, Result<(SignedTx, Txid), String>);

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
/// write (one fsync per group), then answers them all. It ends when `admission` (which holds the
/// only sender) is dropped.
pub(crate) fn run_log_writer(
    admission: Weak<Admission>,
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
        let result = match admission.upgrade() {
            Some(admission) => {
                let started = std::time::Instant::now();
                let result = admission
                    .store
                    .append_log(&entries)
                    .map_err(|e| e.to_string());
                let m = &admission.metrics;
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
