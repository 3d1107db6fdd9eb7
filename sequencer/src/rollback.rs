//! Rollback after a valid challenge: every node drops the invalidated batch and its descendants;
//! the sequencer then re-executes their txs honestly.
//!
//! Derivation (the same on every node) decides what is invalidated. After each poll the
//! anchoring loop asks [`first_invalidated`]: the lowest stored batch whose header hash
//! derivation lists as invalidated. [`rollback_to`] then, under the seal lock and in one synced
//! write, drops the state versions, batches, anchors and receipts above its parent and puts every
//! tx of the dropped batches back into the admission log (a signature a fault mode replaced is
//! restored to the one the user sent). The mempool takes them back ahead of the pending txs of
//! the same accounts, so the batcher seals them again, honestly, into a batch with the same
//! number that links to the parent, and the anchoring loop writes it to Bitcoin. The txs end
//! `final` (or `dropped` only when they are invalid on the honest state).
//!
//! The check is a pure function of the store and derivation's view, so it is also correct after
//! a restart (derivation rescans Bitcoin and lists the same invalidated batches).

use std::collections::BTreeSet;

use stint_contracts::Txid;
use stint_protocol::Derivation;
use stint_state::Hash;

use crate::error::SequencerError;
use crate::node::{head_at, Shared};
use crate::store::RollbackWrite;

/// The lowest batch number we hold whose stored header hash derivation has invalidated.
pub(crate) fn first_invalidated(
    shared: &Shared,
    derivation: &Derivation,
) -> Result<Option<u64>, SequencerError> {
    let head = shared.head.read().number;
    let candidates: BTreeSet<(u64, Hash)> = derivation
        .invalidated()
        .iter()
        .map(|b| (b.record.header.number, b.record.hash))
        .filter(|(number, _)| *number >= 1 && *number <= head)
        .collect();
    for (number, hash) in candidates {
        let ours = shared.store.batch(number)?.map(|s| s.batch()).transpose()?;
        if ours.is_some_and(|b| b.hash() == hash) {
            return Ok(Some(number));
        }
    }
    Ok(None)
}

/// Roll back so that batch `to` is the head again, and queue the dropped batches' txs to be
/// sealed again. Returns how many txs were queued again (0 when the head is at or below `to`).
pub(crate) fn rollback_to(shared: &Shared, to: u64) -> Result<usize, SequencerError> {
    let _guard = shared.seal_lock.lock();
    let from = shared.head.read().number;
    if from <= to {
        return Ok(0);
    }
    let mut hashes = Vec::new();
    let mut receipts: Vec<Txid> = Vec::new();
    let mut requeue = Vec::new();
    let mut number = to.saturating_add(1);
    while number <= from {
        let stored = shared
            .store
            .batch(number)?
            .ok_or_else(|| SequencerError::Storage(format!("sealed batch {number} missing")))?;
        let batch = stored.batch()?;
        hashes.push(batch.hash());
        for (index, tx) in batch.txs().iter().enumerate() {
            let mut tx = tx.clone();
            if let Some((_, sig)) = stored
                .original_sigs
                .iter()
                .find(|(i, _)| usize::try_from(*i).ok() == Some(index))
            {
                tx.sig = *sig;
            }
            let txid = tx.txid();
            receipts.push(txid);
            if tx.verify() {
                requeue.push((tx, txid));
            } else {
                tracing::error!(target: "sequencer::rollback", number, index, %txid, "a rolled-back tx has no valid signature; not sealed again");
            }
        }
        number = number.saturating_add(1);
    }
    let head = head_at(&shared.store, &shared.genesis, shared.genesis_root, to)?;
    let mut pool = shared.pool.lock();
    let first_seq = pool.reserve_seqs(requeue.len() as u64);
    let queued: Vec<_> = requeue
        .into_iter()
        .zip(first_seq..)
        .map(|((tx, txid), seq)| (tx, txid, seq))
        .collect();
    let log: Vec<(u64, Vec<u8>)> = queued
        .iter()
        .map(|(tx, _, seq)| (*seq, tx.encode()))
        .collect();
    shared.store.rollback(&RollbackWrite {
        to,
        from,
        hashes,
        receipts,
        log,
    })?;
    // Durable: move the in-memory view back.
    *shared.head.write() = head;
    let count = queued.len();
    let txids: Vec<Txid> = queued.iter().map(|(_, txid, _)| *txid).collect();
    pool.requeue(queued);
    drop(pool);
    let m = &shared.metrics;
    m.inc(&m.rollbacks);
    m.add(&m.txs_requeued, count as u64);
    tracing::warn!(target: "sequencer::rollback", to, from, requeued = count, "rolled back after a valid challenge; the txs will be sealed again");
    for txid in &txids {
        shared.publish_tx_status(txid, "pending", None);
    }
    shared.seal_now.notify_one();
    Ok(count)
}
