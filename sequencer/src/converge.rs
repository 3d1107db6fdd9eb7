//! Convergence: the sequencer's chain always becomes derivation's canonical chain.
//!
//! Derivation (the same on every node) decides which batches are canonical; the sequencer's own
//! chain is a guess that must follow it. After every poll the anchoring loop asks [`plan`] to
//! compare the two and, when they differ, [`rewind`] moves the sequencer's chain:
//!
//! - **Divergence below derivation's tip.** Derivation's canonical chain holds, from some number
//!   `d` on, batches other than ours. That happens when a reorg removes an accepted challenge
//!   (derivation reinstates the batches it had invalidated, which we rolled back and replaced) or
//!   when an older envelope of ours for a batch we have since re-sealed is mined. Every batch we
//!   roll back is *parked* (kept with its honest state root and receipts), so we restore the
//!   canonical batches `d ..` from the parked ones and seal the txs of the batches they replace
//!   again (except those the restored batches executed). If a canonical batch is not one we hold
//!   at all (another process with our anchor key, or a lost database), we [`Step::Wait`]: nothing
//!   we could seal would link, so anchoring pauses and the condition is logged and exported.
//! - **Our next batch would be refused.** Our chain extends derivation's tip, but the first batch
//!   above it is invalidated (a valid challenge), or [`Derivation::precheck`] says derivation
//!   would refuse its envelope in the next block (its L1 origin was reorged out, deeper than
//!   `l1_origin_depth`, or any other structural rule), or a later pending batch's L1 origin is no
//!   longer on the chain. We roll back to the last batch that can stay and seal the rest again,
//!   on a fresh L1 origin.
//!
//! Rolled-back batches stay parked until derivation's final tip reaches their number: a final
//! slot never changes, so they can never be canonical again (in particular, the batches a
//! challenge invalidated are kept until the challenge is final).
//!
//! A rewind is one synced write (see [`crate::store`]), taken under the seal lock. Every tx the
//! sequencer acknowledged ends up executed in exactly one batch of the canonical chain, or
//! dropped with a reason when it is invalid on the canonical state.

use std::collections::{BTreeMap, BTreeSet};

use stint_contracts::{read_account, Txid};
use stint_protocol::{Batch, BatchBuilder, BatchRecord, BatchStatus, Derivation, L1Message};
use stint_state::{Hash, SparseMerkleTree};

use crate::batcher::Sealer;
use crate::chain::ChainState;
use crate::chain::Head;
use crate::error::SequencerError;
use crate::store::{ParkedBatch, RewindWrite, SealWrite, Store, StoredBatch, StoredReceipt};

/// What the sequencer's chain must do to follow derivation's canonical chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Ours is the canonical chain, possibly followed by batches derivation would accept next.
    Converged,
    /// Keep batches `..= to`, then restore the parked batches `restore` (in order) and seal the
    /// txs of every other dropped batch again.
    Rewind {
        to: u64,
        restore: Vec<Hash>,
        reason: String,
    },
    /// The canonical chain holds batch `number`, which we do not hold: nothing to do but wait.
    Wait { number: u64, reason: String },
    /// The canonical chain continues our head with derived batches (no batch executed the L1
    /// messages due within the sequencing window): execute them, in order, like every node.
    Adopt {
        derived: Vec<(BatchRecord, Vec<L1Message>)>,
    },
}

/// What [`rewind`] did.
#[derive(Debug, Default)]
pub(crate) struct Rewound {
    /// How many txs were queued to be sealed again.
    pub(crate) requeued: usize,
    /// The restored batches, `(number, header hash)`, in order.
    pub(crate) restored: Vec<(u64, Hash)>,
}

fn our_hash(store: &Store, number: u64) -> Result<Option<Hash>, SequencerError> {
    Ok(store
        .batch(number)?
        .map(|s| s.batch())
        .transpose()?
        .map(|b| b.hash()))
}

/// Compare our chain with derivation's canonical chain (see the module docs).
pub(crate) fn plan(
    chain: &ChainState,
    store: &Store,
    derivation: &Derivation,
) -> Result<Step, SequencerError> {
    let head = chain.head().number;
    let canonical = derivation.canonical();
    let tip = canonical.len() as u64;
    // Header hashes chain: equal at `n` means equal below. Look down from the highest number
    // both chains hold for the first match; divergence is at the top in practice.
    let mut diverges_at = tip.min(head).saturating_add(1);
    let mut number = tip.min(head);
    while number >= 1 {
        let index = usize::try_from(number - 1)
            .map_err(|_| SequencerError::Internal("batch number overflows".into()))?;
        let theirs = canonical.get(index).map(|r| r.hash);
        if theirs.is_some() && our_hash(store, number)? == theirs {
            break;
        }
        diverges_at = number;
        number -= 1;
    }
    if diverges_at <= tip {
        let mut restore = Vec::new();
        let mut adopt = Vec::new();
        for record in canonical
            .iter()
            .skip_while(|r| r.header.number < diverges_at)
        {
            let number = record.header.number;
            if record.header.is_derived() && (restore.is_empty() || !adopt.is_empty()) {
                // Executed below once our chain ends right under it.
                adopt.push((record.clone(), derivation.batch_messages(number)));
                continue;
            }
            if !adopt.is_empty() {
                break;
            }
            match store.parked(&record.hash)? {
                Some(parked) if parked.number == number => restore.push(record.hash),
                Some(_) | None if record.header.is_derived() => break,
                _ => {
                    return Ok(Step::Wait {
                        number,
                        reason: format!(
                            "derivation's canonical batch {number} ({}) is not one this sequencer holds",
                            hex::encode(record.hash)
                        ),
                    })
                }
            }
        }
        let to = diverges_at.saturating_sub(1);
        if restore.is_empty() && head == to && !adopt.is_empty() {
            return Ok(Step::Adopt { derived: adopt });
        }
        let reason = if restore.is_empty() {
            format!("derivation's canonical chain holds derived batches from {diverges_at} on")
        } else {
            format!("derivation's canonical chain holds our parked batches from {diverges_at} on")
        };
        return Ok(Step::Rewind {
            to,
            reason,
            restore,
        });
    }
    if head <= tip {
        return Ok(Step::Converged);
    }
    let next = tip.saturating_add(1);
    let stored = store
        .batch(next)?
        .ok_or_else(|| SequencerError::corrupt(format!("sealed batch {next} missing")))?;
    let batch = stored.batch()?;
    if batch.header().is_derived() {
        return Ok(Step::Rewind {
            to: tip,
            restore: Vec::new(),
            reason: format!("derived batch {next} is no longer canonical (a reorg removed it)"),
        });
    }
    if let Some((_, BatchStatus::Invalidated)) = derivation.batch_by_hash(&batch.hash()) {
        return Ok(Step::Rewind {
            to: tip,
            restore: Vec::new(),
            reason: format!("batch {next} was invalidated by a valid challenge"),
        });
    }
    if let Err(reason) = derivation.precheck(&batch) {
        return Ok(Step::Rewind {
            to: tip,
            restore: Vec::new(),
            reason: format!("derivation would refuse batch {next}: {reason}"),
        });
    }
    for number in next.saturating_add(1)..=head {
        let stored = store
            .batch(number)?
            .ok_or_else(|| SequencerError::corrupt(format!("sealed batch {number} missing")))?;
        let origin = stored.batch()?.header().l1_origin;
        let on_chain = derivation
            .l1_block(origin.height)
            .is_some_and(|(hash, _)| bitcoin::hashes::Hash::to_byte_array(hash) == origin.hash);
        if !on_chain {
            return Ok(Step::Rewind {
                to: number.saturating_sub(1),
                restore: Vec::new(),
                reason: format!(
                    "the L1 origin of batch {number} (height {}) is no longer on the chain",
                    origin.height
                ),
            });
        }
    }
    Ok(Step::Converged)
}

/// Keep batches `..= to`, restore the parked batches `restore` after it, park every batch
/// dropped, and queue the dropped txs the restored batches do not execute to be sealed again.
pub(crate) fn rewind(
    sealer: &Sealer,
    to: u64,
    restore: &[Hash],
) -> Result<Rewound, SequencerError> {
    let _guard = sealer.lock();
    let (store, chain) = (sealer.store(), sealer.chain());
    let from = chain.head().number;
    if from <= to && restore.is_empty() {
        return Ok(Rewound::default());
    }
    let mut restored = Vec::with_capacity(restore.len());
    let mut restored_txids = BTreeSet::new();
    for hash in restore {
        let parked = store.parked(hash)?.ok_or_else(|| {
            SequencerError::corrupt(format!("parked batch {} vanished", hex::encode(hash)))
        })?;
        for tx in parked.stored.batch()?.txs() {
            restored_txids.insert(tx.txid());
        }
        restored.push((*hash, parked));
    }

    let mut parked = Vec::new();
    let mut requeue = Vec::new();
    for number in to.saturating_add(1)..=from {
        let stored = store
            .batch(number)?
            .ok_or_else(|| SequencerError::corrupt(format!("sealed batch {number} missing")))?;
        let batch = stored.batch()?;
        let mut receipts = Vec::with_capacity(batch.txs().len());
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
            if let Some(receipt @ StoredReceipt::Included { .. }) = store.receipt(&txid)? {
                receipts.push((txid, receipt));
            }
            if restored_txids.contains(&txid) {
                continue;
            }
            if tx.verify() {
                requeue.push((tx, txid));
            } else {
                tracing::error!(target: "sequencer::converge", number, index, %txid, "a rolled-back tx has no valid signature; not sealed again");
            }
        }
        parked.push((
            batch.hash(),
            ParkedBatch {
                number,
                stored,
                receipts,
            },
        ));
    }

    let new_head = to.saturating_add(restored.len() as u64);
    let mut pool = sealer.admission().pool();
    // Pending txs the restored batches executed (queued again by the rollback that parked them).
    let consumed: BTreeMap<Txid, u64> = restored_txids
        .iter()
        .filter_map(|txid| pool.get(txid).map(|p| (*txid, p.seq)))
        .collect();
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
    let restored_numbers: Vec<(u64, Hash)> = restored.iter().map(|(h, p)| (p.number, *h)).collect();
    store.rewind(&RewindWrite {
        to,
        from,
        parked,
        restored,
        log,
        consumed_log: consumed.values().copied().collect(),
    })?;
    // Durable: move the in-memory view.
    let head = chain.head_at(store, new_head)?;
    chain.set_head(head);
    let count = queued.len();
    let txids: Vec<Txid> = queued.iter().map(|(_, txid, _)| *txid).collect();
    pool.requeue(queued);
    let done: Vec<Txid> = consumed.keys().copied().collect();
    let evicted = {
        let tree = SparseMerkleTree::new(store.state());
        let view = tree.view(head.honest_root);
        pool.finish_seal(&done, |a| read_account(&view, a).map_or(0, |acc| acc.nonce))
    };
    drop(pool);
    crate::batcher::record_evicted(store, &evicted)?;

    let m = sealer.metrics();
    m.rollbacks.inc();
    m.txs_requeued.inc_by(count as u64);
    m.batches_restored.inc_by(restored_numbers.len() as u64);
    tracing::warn!(target: "sequencer::converge", to, from, restored = restored_numbers.len(), requeued = count, "rewound to derivation's canonical chain; the dropped txs will be sealed again");
    for txid in &txids {
        sealer.publishers().tx_status(txid, "pending", None);
    }
    sealer.admission().request_seal();
    Ok(Rewound {
        requeued: count,
        restored: restored_numbers,
    })
}

/// Execute the derived batches `derived` on top of our head, in order, and store each as our
/// batch of that number (see [`Step::Adopt`]). Returns their numbers and hashes.
pub(crate) fn adopt(
    sealer: &Sealer,
    derived: &[(BatchRecord, Vec<L1Message>)],
) -> Result<Vec<(u64, Hash)>, SequencerError> {
    let _guard = sealer.lock();
    let (store, chain) = (sealer.store(), sealer.chain());
    let mut adopted = Vec::with_capacity(derived.len());
    for (record, messages) in derived {
        let head = chain.head();
        let number = record.header.number;
        if number != head.number.saturating_add(1) || record.header.parent != head.hash {
            return Err(SequencerError::Internal(format!(
                "derived batch {number} does not extend our head {}",
                head.number
            )));
        }
        let executed = BatchBuilder::new(sealer.limits())
            .execute_derived(store.state(), &record.header, head.honest_root, messages)
            .map_err(|e| {
                SequencerError::Internal(format!("executing derived batch {number}: {e}"))
            })?;
        let honest_root = executed.updates.last().map_or(head.honest_root, |u| u.root);
        let batch = Batch::new(record.header.clone(), Vec::new(), Vec::new());
        let records = stint_api::message_records(
            number,
            record.hash,
            messages,
            &executed.message_receipts,
            0,
        );
        let forced = stint_api::forced_txids(&records);
        store.commit_seal(SealWrite {
            number,
            hash: record.hash,
            batch: StoredBatch {
                encoded: batch
                    .encode()
                    .map_err(|e| SequencerError::Internal(e.to_string()))?,
                honest_root,
                original_sigs: Vec::new(),
                forced: forced.clone(),
            },
            updates: &executed.updates,
            receipts: Vec::new(),
            consumed_log: Vec::new(),
            task_index: Vec::new(),
            fault_committed: false,
            messages: records,
        })?;
        chain.set_head(Head {
            number,
            hash: record.hash,
            claimed_root: honest_root,
            honest_root,
            timestamp: record.header.timestamp,
            l1_origin: record.header.l1_origin,
        });
        tracing::warn!(
            target: "sequencer::converge",
            number,
            messages = messages.len(),
            state_root = %hex::encode(honest_root),
            "derived batch executed: no batch executed these L1 messages within the sequencing window"
        );
        // Its header claims no root (`derived: true`); `stint_getBatch` shows the one computed.
        sealer.publishers().new_batch(&record.header, &record.hash);
        for txid in &forced {
            sealer.publishers().tx_status(txid, "soft", Some(number));
        }
        adopted.push((number, record.hash));
    }
    sealer.admission().request_seal();
    Ok(adopted)
}
