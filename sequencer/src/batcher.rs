//! The sealer ([`Sealer`]) and its loop: seal a batch every `batch_interval_ms` (or at once when
//! the mempool holds a full batch), persist batch + state + receipts + consumed admission log
//! entries in one synced RocksDB write, then update the head and the mempool. One batch is
//! sealed at a time (the seal lock, which a rewind takes too). Fault modes are applied here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::Hash as _;
use parking_lot::{Mutex, MutexGuard};
use stint_api::{forced_txids, message_records};
use stint_contracts::{
    account_entry, execute_segment, read_account, AccountId, Call, FailureCode, SignedTx, Txid,
};
use stint_protocol::{
    block_context, own_updates, restated_segments, trace_root, tx_root, Batch, BatchBuilder,
    BuildParams, Checkpoint, DerivedSpan, Genesis, L1Origin, LayeredNodeStore, ParentFacts,
    SealedBatch,
};
use stint_state::{tagged_hash, ChangeSet, Hash, SparseMerkleTree};
use tokio::sync::watch;

use crate::admission::Admission;
use crate::chain::{ChainState, ChainStatus, Head};
use crate::config::{FaultConfig, FaultMode, SequencerConfig};
use crate::error::SequencerError;
use crate::mempool::Evicted;
use crate::metrics::Metrics;
use crate::publish::Publishers;
use crate::store::{SealWrite, Store, StoredBatch, StoredReceipt};

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The batch limits in effect: the genesis's, lowered by the config.
pub(crate) fn limits(genesis: &Genesis, config: &SequencerConfig) -> Genesis {
    let mut limits = genesis.clone();
    let max_txs = genesis.max_batch_txs;
    limits.max_batch_txs = config.max_batch_txs.unwrap_or(max_txs).min(max_txs);
    if let Some(bytes) = config.max_batch_bytes {
        limits.max_batch_bytes = limits.max_batch_bytes.min(bytes);
    }
    limits
}

/// Seals batches from the admission's mempool onto the chain state's head, one at a time.
pub(crate) struct Sealer {
    /// The genesis with the batch limits in effect ([`limits`]).
    limits: Genesis,
    interval: Duration,
    l1_origin_depth: u64,
    fault: Option<FaultConfig>,
    store: Arc<Store>,
    admission: Arc<Admission>,
    chain: Arc<ChainState>,
    publishers: Arc<Publishers>,
    metrics: Metrics,
    /// Held while a batch is being sealed or the chain rewound (one at a time).
    lock: Mutex<()>,
    /// Whether the configured fault was committed by this process (once, at the first batch at
    /// or after `fault.batch` where it applies).
    fault_done: AtomicBool,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("interval", &self.interval)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer with `config`'s settings, sealing into `store` (which says whether the
    /// configured fault was committed already).
    pub(crate) fn new(
        genesis: &Genesis,
        config: &SequencerConfig,
        store: Arc<Store>,
        admission: Arc<Admission>,
        chain: Arc<ChainState>,
        publishers: Arc<Publishers>,
        metrics: Metrics,
    ) -> Result<Self, SequencerError> {
        let fault_done = store.fault_done()?;
        Ok(Self {
            limits: limits(genesis, config),
            interval: config.batch_interval(),
            l1_origin_depth: config.l1_origin_depth,
            fault: config.fault,
            store,
            admission,
            chain,
            publishers,
            metrics,
            lock: Mutex::new(()),
            fault_done: AtomicBool::new(fault_done),
        })
    }

    /// The effective `max_batch_txs`.
    pub(crate) fn max_batch_txs(&self) -> usize {
        self.limits.max_batch_txs as usize
    }

    /// The genesis with the batch limits in effect.
    pub(crate) fn limits(&self) -> &Genesis {
        &self.limits
    }

    /// Take the seal lock: no batch is sealed until the guard is dropped.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock()
    }

    /// The store batches are sealed into.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The admission whose mempool is sealed.
    pub(crate) fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The chain state whose head the sealer moves.
    pub(crate) fn chain(&self) -> &ChainState {
        &self.chain
    }

    /// Where sealed batches and tx statuses are published.
    pub(crate) fn publishers(&self) -> &Publishers {
        &self.publishers
    }

    /// The node's counters.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Seal one batch on a blocking thread.
    pub(crate) async fn seal_blocking(self: &Arc<Self>) -> Result<Option<u64>, SequencerError> {
        let sealer = Arc::clone(self);
        tokio::task::spawn_blocking(move || seal_once(&sealer))
            .await
            .map_err(|e| SequencerError::Internal(format!("seal task: {e}")))?
    }
}

/// Seal on the interval and on demand until `stop`.
pub(crate) async fn run(sealer: Arc<Sealer>, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(sealer.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = sealer.admission.seal_requested() => {}
            _ = stop.changed() => break,
        }
        // Keep sealing while full batches are waiting.
        loop {
            match sealer.seal_blocking().await {
                Ok(Some(_)) if sealer.admission.full_batch_pending() => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(target: "sequencer::batch", error = %e, "sealing failed; will retry");
                    break;
                }
            }
        }
    }
}

/// Fault mode `censor`: the highest L1 origin that keeps the censored account's first pending
/// forced tx out of the next batch (its block above the origin's message horizon), but never
/// lower than the sequencing window lets a batch anchored in the next block or the one after
/// have: then derivation forces the message in, and so does this sequencer.
fn censor_cap(sealer: &Sealer, chain: &ChainStatus, head: &Head, tip: u64) -> Option<u64> {
    let fault = sealer
        .fault
        .filter(|f| f.mode == FaultMode::Censor && head.number.saturating_add(1) >= f.batch)?;
    let account = fault.account?;
    let genesis = &sealer.limits;
    let after = genesis.message_horizon(head.l1_origin.height);
    let (first, _) = chain
        .l1_messages
        .range(after.saturating_add(1)..)
        .find(|(_, messages)| {
            messages.iter().any(|m| {
                matches!(&m.kind, stint_protocol::L1MessageKind::Forced(f) if f.tx.tx.from == account)
            })
        })?;
    // horizon(o) = o + 1 − c stays below `first` for o ≤ first + c − 2.
    let below = first
        .saturating_add(genesis.l1_confirmations.max(1))
        .saturating_sub(2);
    let lowest = tip
        .saturating_add(2)
        .saturating_sub(genesis.sequencing_window);
    Some(below.max(lowest))
}

/// The L1 origin and timestamp of the next batch, or `None` when no valid timestamp exists yet.
fn origin_and_time(sealer: &Sealer, head: &Head) -> Option<(L1Origin, u64)> {
    let chain = sealer.chain.status();
    let floor = head.l1_origin.height;
    let mut origin = (head.l1_origin, None);
    if let Some((tip, _)) = chain.l1_tip {
        let mut target = tip.saturating_sub(sealer.l1_origin_depth).max(floor);
        if let Some(cap) = censor_cap(sealer, &chain, head, tip).filter(|cap| *cap < target) {
            tracing::warn!(target: "sequencer::batch", origin = cap.max(floor), tip, "fault censor: holding the L1 origin below a forced tx of the censored account");
            target = cap.max(floor);
        }
        if let Some((hash, time)) = chain.l1_blocks.get(&target) {
            origin = (
                L1Origin {
                    height: target,
                    hash: hash.to_byte_array(),
                },
                Some(*time),
            );
        }
    }
    if origin.1.is_none() {
        origin.1 = chain
            .l1_blocks
            .get(&floor)
            .filter(|(hash, _)| hash.to_byte_array() == head.l1_origin.hash)
            .map(|(_, time)| *time);
    }
    drop(chain);
    let now = now_secs().max(head.timestamp);
    let Some(origin_time) = origin.1 else {
        // Origin time unknown (bitcoind unreachable since startup): no timestamp can be proven
        // valid, and a guess from the wall clock may break the rule. Wait for Bitcoin.
        tracing::warn!(target: "sequencer::batch", "the L1 origin's block time is unknown (bitcoind not reached yet); waiting for Bitcoin");
        return None;
    };
    let drift = sealer.limits.max_timestamp_drift_secs;
    // Protocol v2: origin time <= timestamp <= origin time + drift, and never before the parent.
    let low = origin_time.max(head.timestamp);
    let high = origin_time.saturating_add(drift);
    if low > high {
        tracing::warn!(target: "sequencer::batch", "parent timestamp is beyond the drift allowed by the L1 origin; waiting for Bitcoin");
        return None;
    }
    Some((origin.0, now.clamp(low, high)))
}

/// Where the next batch starts when the head is a derived batch (protocol v3, "no sequencer,
/// no stall"): it restates the derived batches above the last posted one, from that batch's
/// state, with their messages first.
#[derive(Debug, Clone)]
struct Restating {
    /// The last posted batch (or genesis) below the derived ones.
    base: Head,
    /// The derived batches, oldest first.
    spans: Vec<DerivedSpan>,
}

fn restating(sealer: &Sealer, head: &Head) -> Result<Option<Restating>, SequencerError> {
    let mut derived = Vec::new();
    let mut number = head.number;
    while number > 0 {
        let stored = sealer
            .store
            .batch(number)?
            .ok_or_else(|| SequencerError::corrupt(format!("sealed batch {number} missing")))?;
        let batch = stored.batch()?;
        let header = batch.header();
        if !header.is_derived() {
            break;
        }
        derived.push((number, header.msg_count, header.timestamp));
        number = number.saturating_sub(1);
    }
    if derived.is_empty() {
        return Ok(None);
    }
    let base = sealer.chain.head_at(&sealer.store, number)?;
    let mut msg_end: u32 = 0;
    let spans = derived
        .into_iter()
        .rev()
        .map(|(number, count, timestamp)| {
            msg_end = msg_end.saturating_add(count);
            DerivedSpan {
                number,
                msg_end,
                timestamp,
            }
        })
        .collect();
    Ok(Some(Restating { base, spans }))
}

/// Seal one batch from the mempool's candidates. `None` when nothing is pending.
fn seal_once(sealer: &Sealer) -> Result<Option<u64>, SequencerError> {
    let _guard = sealer.lock();
    let started = std::time::Instant::now();
    let sealed = seal_locked(sealer);
    if matches!(sealed, Ok(Some(_))) {
        sealer
            .metrics
            .seal_seconds
            .inc_by(started.elapsed().as_secs_f64());
    }
    sealed
}

/// [`seal_once`] under the seal lock.
fn seal_locked(sealer: &Sealer) -> Result<Option<u64>, SequencerError> {
    let head = sealer.chain.head();
    let limits = &sealer.limits;
    let candidates = {
        let mut pool = sealer.admission.pool();
        let tree = SparseMerkleTree::new(sealer.store.state());
        let view = tree.view(head.honest_root);
        let mut failure = None;
        // An account that cannot be read has no candidates and nothing expires for it; the
        // failure aborts the seal below.
        let mut state_nonce = |a: &AccountId| {
            read_account(&view, a)
                .map(|acc| acc.nonce)
                .unwrap_or_else(|e| {
                    failure = Some(e);
                    u64::MAX
                })
        };
        pool.expire(Instant::now(), &mut state_nonce);
        let picked = pool.take_candidates(limits.max_batch_txs as usize, &mut state_nonce);
        if let Some(e) = failure {
            pool.abort_seal();
            return Err(SequencerError::storage("reading an account", e));
        }
        picked
    };
    // The L1 messages the next batch must execute (protocol v3): deposits and forced txs of
    // the blocks its origin newly covers. A batch is sealed for them even with no tx waiting.
    let messages_waiting = {
        let after = limits.message_horizon(head.l1_origin.height);
        let chain = sealer.chain.status();
        chain
            .l1_messages
            .range(after.saturating_add(1)..)
            .next()
            .is_some()
    };
    let origin = if candidates.is_empty() && !messages_waiting {
        None
    } else {
        origin_and_time(sealer, &head)
    };
    let new_due = origin.map_or_else(Vec::new, |(l1_origin, _)| {
        sealer
            .chain
            .status()
            .messages_due(limits, head.l1_origin.height, l1_origin.height)
    });
    if candidates.is_empty() && new_due.is_empty() {
        // No batch to carry them: the drop records of expired txs are written now.
        let evicted = sealer.admission.pool().take_evicted();
        if !evicted.is_empty() {
            record_evicted(&sealer.store, &evicted)?;
            sealer.metrics.txs_dropped.inc_by(evicted.len() as u64);
            for e in &evicted {
                sealer.publishers.tx_status(&e.txid, "dropped", None);
            }
        }
        return Ok(None);
    }
    let restating = match restating(sealer, &head) {
        Ok(restating) => restating,
        Err(e) => {
            sealer.admission.pool().abort_seal();
            return Err(e);
        }
    };
    // Above derived batches, the batch executes their messages again first (see `Restating`).
    let due = match (&restating, origin) {
        (Some(r), Some((l1_origin, _))) => {
            sealer
                .chain
                .status()
                .messages_due(limits, r.base.l1_origin.height, l1_origin.height)
        }
        _ => new_due,
    };
    let result = build_and_commit(
        sealer,
        &head,
        limits,
        origin,
        &due,
        restating.as_ref(),
        candidates,
    );
    if result.is_err() {
        sealer.admission.pool().abort_seal();
    }
    result.map(Some)
}

fn build_and_commit(
    sealer: &Sealer,
    head: &Head,
    limits: &Genesis,
    origin: Option<(L1Origin, u64)>,
    due: &[stint_protocol::L1Message],
    restating: Option<&Restating>,
    candidates: Vec<(SignedTx, u64)>,
) -> Result<u64, SequencerError> {
    let Some((l1_origin, timestamp)) = origin else {
        return Err(SequencerError::Internal(
            "no valid batch timestamp for the L1 origin yet".into(),
        ));
    };
    let seqs: std::collections::HashMap<Txid, u64> = candidates
        .iter()
        .map(|(tx, seq)| (tx.txid(), *seq))
        .collect();
    let txs: Vec<SignedTx> = candidates.into_iter().map(|(tx, _)| tx).collect();
    let number = head.number.saturating_add(1);
    // The state the batch starts from: the head's, or above derived batches the last posted
    // batch's (it restates them).
    let start = restating.map_or(*head, |r| r.base);
    let spans = restating.map_or(&[][..], |r| &r.spans);
    let params = BuildParams {
        parent: ParentFacts {
            number: head.number,
            hash: head.hash,
            state_root: start.honest_root,
            timestamp: head.timestamp,
            l1_origin_height: head.l1_origin.height,
        },
        timestamp,
        l1_origin,
    };
    // Every candidate's signature was verified at admission (or when the log was recovered, or
    // a rollback re-queued it).
    let builder = BatchBuilder::new(limits).with_prechecked_signatures();
    let build_started = std::time::Instant::now();
    let mut sealed = builder
        .build_restating(sealer.store.state(), &params, due, spans, txs)
        .map_err(|e| SequencerError::Internal(format!("building batch {number}: {e}")))?;
    sealer
        .metrics
        .seal_build_seconds
        .inc_by(build_started.elapsed().as_secs_f64());
    let honest_root = sealed
        .updates
        .last()
        .map(|u| u.root)
        .unwrap_or(head.honest_root);
    let mut honest_root = honest_root;
    let mut original_sigs = Vec::new();
    let mut fault_committed = false;
    if let Some(fault) = sealer.fault {
        if number >= fault.batch && !sealer.fault_done.load(Ordering::SeqCst) {
            if let Some(root) = apply_fault(sealer, fault, head, &mut sealed, &mut original_sigs)? {
                honest_root = root;
                fault_committed = true;
            }
        }
    }
    // The header links to the parent's *claimed* root (equal to the honest one unless a fault
    // lied about it).
    if start.claimed_root != start.honest_root {
        let (mut header, checkpoints, txs) = sealed.batch.clone().into_parts();
        header.prev_state_root = start.claimed_root;
        sealed.batch = Batch::new(header, checkpoints, txs);
    }
    // The restated segments rebuild the derived batches' states, which the store holds: only
    // the updates after them are this batch's (they start from the head's root).
    let restated = restated_segments(sealed.batch.checkpoints(), spans);
    let own = own_updates(sealed.updates.clone(), restated, head.honest_root);
    if own.first().map(|u| u.base_root) != Some(head.honest_root) {
        return Err(SequencerError::Internal(format!(
            "batch {number} restates the derived batches below it to another root than this \
             sequencer computed for them"
        )));
    }
    let batch = &sealed.batch;
    let hash = batch.hash();
    let header = batch.header().clone();

    let mut receipts = Vec::with_capacity(batch.txs().len() + sealed.rejected.len());
    let mut consumed_log = Vec::with_capacity(receipts.capacity());
    let tree = SparseMerkleTree::new(LayeredNodeStore::new(sealer.store.state()));
    let mut layered = tree;
    for update in &sealed.updates {
        layered.store_mut().write(update);
    }
    let view = layered.view(honest_root);
    for (index, (_, receipt)) in batch.txs().iter().zip(&sealed.receipts).enumerate() {
        receipts.push((
            receipt.txid,
            StoredReceipt::Included {
                batch: number,
                batch_hash: hash,
                index: index as u32,
                receipt: *receipt,
            },
        ));
        if let Some(seq) = seqs.get(&receipt.txid) {
            consumed_log.push(*seq);
        }
    }
    let task_index = stint_api::task_index_entries(&view, batch.txs(), &sealed.receipts)
        .map_err(|e| SequencerError::storage("reading the state", e))?;
    let mut dropped = Vec::new();
    for rejected in &sealed.rejected {
        if let Some(seq) = seqs.get(&rejected.txid) {
            consumed_log.push(*seq);
        }
        let tx = sealer
            .admission
            .pool()
            .get(&rejected.txid)
            .map(|p| p.tx.encode())
            .unwrap_or_default();
        receipts.push((
            rejected.txid,
            StoredReceipt::Dropped {
                reason: rejected.reason.to_string(),
                tx,
            },
        ));
        dropped.push(rejected.txid);
    }
    let included: Vec<Txid> = sealed.receipts.iter().map(|r| r.txid).collect();
    // The L1 messages it executes itself (not those of the derived batches it restates).
    let from = spans.last().map_or(0, |span| span.msg_end as usize);
    let messages = message_records(number, hash, due, &sealed.message_receipts, from);
    let forced = forced_txids(&messages);
    let commit_started = std::time::Instant::now();
    sealer.store.commit_seal(SealWrite {
        number,
        hash,
        batch: StoredBatch {
            encoded: batch
                .encode()
                .map_err(|e| SequencerError::Internal(e.to_string()))?,
            honest_root,
            original_sigs,
            forced: forced.clone(),
        },
        updates: &own,
        receipts,
        consumed_log,
        task_index,
        fault_committed,
        messages,
    })?;
    sealer
        .metrics
        .seal_commit_seconds
        .inc_by(commit_started.elapsed().as_secs_f64());
    if fault_committed {
        sealer.fault_done.store(true, Ordering::SeqCst);
    }

    // Durable: now the in-memory view moves on.
    let evicted = {
        let mut pool = sealer.admission.pool();
        sealer.chain.set_head(Head {
            number,
            hash,
            claimed_root: header.state_root,
            honest_root,
            timestamp: header.timestamp,
            l1_origin: header.l1_origin,
        });
        let done: Vec<Txid> = included.iter().chain(&dropped).copied().collect();
        let tree = SparseMerkleTree::new(sealer.store.state());
        let view = tree.view(honest_root);
        pool.finish_seal(&done, |a| read_account(&view, a).map_or(0, |acc| acc.nonce))
    };
    record_evicted(&sealer.store, &evicted)?;
    let m = &sealer.metrics;
    m.batches_sealed.inc();
    m.txs_sealed.inc_by(included.len() as u64);
    m.txs_dropped.inc_by((dropped.len() + evicted.len()) as u64);
    tracing::info!(
        target: "sequencer::batch",
        number,
        txs = included.len(),
        dropped = dropped.len(),
        hash = %hex::encode(hash),
        "batch sealed"
    );
    sealer.publishers.new_batch(&header, &hash);
    for txid in included.iter().chain(&forced) {
        sealer.publishers.tx_status(txid, "soft", Some(number));
    }
    for txid in dropped.iter().chain(evicted.iter().map(|e| &e.txid)) {
        sealer.publishers.tx_status(txid, "dropped", None);
    }
    Ok(number)
}

fn fake_root(honest: &Hash) -> Hash {
    tagged_hash("stint/fault", &[honest])
}

/// Rewrite `sealed` to commit `fault`. Returns the state root the sequencer itself now holds
/// (the honest one for lies about roots; the overdrawn one for overdraft), or `None` when the
/// fault does not apply to this batch (it is then tried on the next one).
fn apply_fault(
    sealer: &Sealer,
    fault: FaultConfig,
    head: &Head,
    sealed: &mut SealedBatch,
    original_sigs: &mut Vec<(u32, [u8; 64])>,
) -> Result<Option<Hash>, SequencerError> {
    let honest = sealed
        .updates
        .last()
        .map(|u| u.root)
        .unwrap_or(head.honest_root);
    let (mut header, mut checkpoints, mut txs) = sealed.batch.clone().into_parts();
    match fault.mode {
        FaultMode::BadStateRoot => {
            let fake = fake_root(&honest);
            if let Some(last) = checkpoints.last_mut() {
                last.state_root = fake;
            }
            header.state_root = fake;
            header.trace_root = trace_root(&checkpoints);
        }
        FaultMode::BadCheckpoint => {
            if checkpoints.len() < 2 {
                return Ok(None);
            }
            if let Some(first) = checkpoints.first_mut() {
                first.state_root = fake_root(&first.state_root);
            }
            header.trace_root = trace_root(&checkpoints);
        }
        FaultMode::InvalidSignature => {
            let Some(first) = txs.first_mut() else {
                return Ok(None);
            };
            // The batch commits to the bad signature (tx_root is over wtxids), as a real
            // sequencer sealing it would.
            original_sigs.push((0, first.sig));
            let mut sig = first.sig;
            if let Some(byte) = sig.last_mut() {
                *byte ^= 0x01;
            }
            first.sig = sig;
            header.tx_root = tx_root(&txs);
        }
        FaultMode::Overdraft => return overdraft(sealer, sealed, honest),
        // Censoring acts on admission and on the choice of L1 origin, not on a sealed batch.
        FaultMode::Censor => return Ok(None),
    }
    tracing::warn!(target: "sequencer::batch", number = header.number, mode = ?fault.mode, "FAULT MODE: sealing a fraudulent batch");
    sealed.batch = Batch::new(header, checkpoints, txs);
    Ok(Some(honest))
}

/// Re-execute the batch with the first transfer that failed for lack of balance executed as if
/// it succeeded (the sender drops to 0, the recipient receives the full amount). Only a transfer
/// whose sender sends nothing after it in the batch qualifies: a later tx of a drained sender
/// could not pay its fee, and the batch would hold an invalid tx instead of an overdraft.
///
/// As in the other modes, only the header lies: the sequencer keeps the honest state, receipts
/// and tree updates (`honest` is returned as the batch's honest root).
fn overdraft(
    sealer: &Sealer,
    sealed: &mut SealedBatch,
    honest: Hash,
) -> Result<Option<Hash>, SequencerError> {
    let txs = sealed.batch.txs();
    let Some(victim) = sealed.receipts.iter().enumerate().position(|(i, r)| {
        r.error == Some(FailureCode::InsufficientBalance)
            && txs.get(i).is_some_and(|t| {
                matches!(t.tx.call, Call::Transfer { .. })
                    && !txs
                        .iter()
                        .skip(i.saturating_add(1))
                        .any(|later| later.tx.from == t.tx.from)
            })
    }) else {
        return Ok(None);
    };
    let header = sealed.batch.header().clone();
    let txs = sealed.batch.txs().to_vec();
    let segments = sealed.batch.checkpoints().to_vec();
    let ctx = block_context(&sealer.limits, &header);
    let mut tree = SparseMerkleTree::new(LayeredNodeStore::new(sealer.store.state()));
    // Still the honest parent root: the claimed one is patched in after the fault.
    let mut root = header.prev_state_root;
    let mut checkpoints = Vec::new();
    let mut start = 0usize;
    for honest_checkpoint in segments {
        let end = honest_checkpoint.tx_end as usize;
        let segment = txs.get(start..end).unwrap_or_default();
        let outcome = execute_segment(tree.view(root), &ctx, segment)
            .map_err(|e| SequencerError::Internal(format!("overdraft re-execution: {e}")))?;
        let update = tree.apply(&root, &outcome.changes)?;
        tree.store_mut().write(&update);
        root = update.root;
        if (start..end).contains(&victim) {
            if let Some(Call::Transfer { to, amount }) = txs.get(victim).map(|t| &t.tx.call) {
                let from = txs.get(victim).map(|t| t.tx.from).unwrap_or_default();
                let view = tree.view(root);
                let mut sender = read_account(&view, &from)
                    .map_err(|e| SequencerError::storage("reading the state", e))?;
                let mut recipient = read_account(&view, to)
                    .map_err(|e| SequencerError::storage("reading the state", e))?;
                sender.balance = sender.balance.saturating_sub(*amount);
                recipient.balance = recipient.balance.saturating_add(*amount);
                let mut patch = ChangeSet::new();
                let (key, value) = account_entry(&from, &sender);
                patch.insert(key, value);
                let (key, value) = account_entry(to, &recipient);
                patch.insert(key, value);
                let update = tree.apply(&root, &patch)?;
                tree.store_mut().write(&update);
                root = update.root;
            }
        }
        checkpoints.push(Checkpoint::new(root, honest_checkpoint.tx_end));
        start = end;
    }
    let new_header = stint_protocol::BatchHeader {
        state_root: root,
        tx_root: tx_root(&txs),
        trace_root: trace_root(&checkpoints),
        ..header
    };
    tracing::warn!(target: "sequencer::batch", number = new_header.number, "FAULT MODE: sealing a batch with an overdraft");
    sealed.batch = Batch::new(new_header, checkpoints, txs);
    Ok(Some(honest))
}

/// Write drop records for txs the mempool evicted (replaced, or their nonce was used), and
/// delete their admission log entries.
pub(crate) fn record_evicted(store: &Store, evicted: &[Evicted]) -> Result<(), SequencerError> {
    if evicted.is_empty() {
        return Ok(());
    }
    let records: Vec<(u64, Txid, StoredReceipt)> = evicted
        .iter()
        .map(|e| {
            (
                e.seq,
                e.txid,
                StoredReceipt::Dropped {
                    reason: e.reason.clone(),
                    tx: e.tx.encode(),
                },
            )
        })
        .collect();
    store.drop_logged(&records)
}
