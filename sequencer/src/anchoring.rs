//! The anchoring loop: follow Bitcoin, run derivation over its blocks (finality), and write the
//! sealed batches to Bitcoin in order.
//!
//! Each round: (1) the chain follower brings every new block (and every reorg) into the
//! [`Derivation`] state machine; its canonical chain is the source of truth for `anchored` and
//! `final`, and a reorg that removes an anchoring block sends that batch back to `soft`.
//! (2) The next batch to anchor is always the one after derivation's canonical tip, so the
//! backlog is anchored strictly in order, and after a reorg the lost batches are anchored again.
//! Its last posted envelope (kept in the database) is tracked: left alone while confirmed,
//! re-broadcast while unconfirmed, fee-bumped after `bump_after_blocks` blocks, and posted anew
//! when it can no longer confirm (conflicted, or dropped from the mempool). While bitcoind is
//! unreachable the round just fails and is retried; admission and sealing never wait for it.
//!
//! At most one batch envelope is in flight at a time: posting batch `n + 1` before `n` is in a
//! block could let a miner order the reveals the wrong way round, and derivation would reject
//! `n + 1`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::{Amount, FeeRate, ScriptBuf};
use stint_anchor::{
    AnchorWallet, Anchorer, BlockSource, ChainEvent, ChainFollower, FeeSource, PostedEnvelope,
};
use stint_protocol::{BatchStatus, Derivation, DerivationEvent, EnvelopeKind, Genesis, IndexHint};
use stint_state::Hash;
use tokio::sync::watch;

use crate::batcher::Sealer;
use crate::chain::{AnchorInfo, BatchFinality, ChainState};
use crate::config::SequencerConfig;
use crate::converge::Step;
use crate::error::{SequencerError, Severity};
use crate::metrics::Metrics;
use crate::publish::Publishers;
use crate::store::{Store, StoredAnchor};

/// How many recent L1 blocks (hash, time) are remembered for choosing batch origins.
const L1_BLOCK_MEMORY: u64 = 1_000;

/// What the anchoring loop works with (owned by its task).
pub(crate) struct Anchoring {
    pub(crate) genesis: Genesis,
    pub(crate) genesis_root: Hash,
    /// The wallet, poll interval and fee settings.
    pub(crate) config: SequencerConfig,
    pub(crate) store: Arc<Store>,
    /// Derivation's status is written here; the head is read.
    pub(crate) chain: Arc<ChainState>,
    /// For rewinds (under the seal lock).
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) publishers: Arc<Publishers>,
    pub(crate) metrics: Metrics,
}

/// Run until `stop`, following the chain of `source` and anchoring through `anchorer`'s wallet
/// (bitcoind in production; the in-memory chain and wallet in unit tests).
pub(crate) async fn run<W: AnchorWallet + FeeSource, S: BlockSource>(
    ctx: Anchoring,
    anchorer: Anchorer<W>,
    source: S,
    mut stop: watch::Receiver<bool>,
) {
    let mut derivation = Derivation::new(ctx.genesis.clone(), ctx.genesis_root);
    let mut follower = ChainFollower::from_height(source, ctx.genesis.l1_start_height);
    let mut was_up = true;
    // bitcoind does not reload wallets created over RPC when it restarts: (re)load ours after
    // every outage before anchoring.
    let mut wallet_loaded = false;
    // Reveals of ours derivation rejected when they were mined (rebuilt by the rescan after a
    // restart): such an envelope is posted anew instead of waited for.
    let mut rejected: HashSet<bitcoin::Txid> = HashSet::new();
    let mut converged = None;
    loop {
        let mut again = false;
        let followed = match follow(&ctx, &mut follower, &mut derivation, &mut rejected).await {
            Ok(()) => converge(&ctx, &derivation, &mut converged).await,
            Err(e) => Err(e),
        };
        match followed {
            Ok(proceed) => {
                if !was_up {
                    tracing::info!(target: "sequencer::anchor", "bitcoind reachable again");
                }
                was_up = true;
                {
                    let mut chain = ctx.chain.status_mut();
                    chain.bitcoind_up = true;
                    chain.bitcoind_ok_at = Some(std::time::Instant::now());
                }
                if !wallet_loaded {
                    match anchorer.wallet().load().await {
                        Ok(()) => wallet_loaded = true,
                        Err(e) => {
                            tracing::warn!(target: "sequencer::anchor", error = %e, wallet = %ctx.config.wallet(), "cannot load the anchoring wallet")
                        }
                    }
                }
                let attempt = if wallet_loaded && proceed {
                    anchor_next(&ctx, &anchorer, &derivation, &rejected).await
                } else {
                    Ok(false)
                };
                match attempt {
                    Ok(posted) => again = posted,
                    Err(e) => {
                        ctx.metrics.anchor_failures.inc();
                        tracing::warn!(target: "sequencer::anchor", error = %e, "anchoring attempt failed; will retry");
                    }
                }
            }
            // Only bitcoind's failures mean bitcoind is down; a storage or internal failure of
            // following or converging is reported as what it is (before, any of them marked
            // bitcoind down).
            Err(e @ SequencerError::Bitcoind { .. }) => {
                if was_up {
                    tracing::warn!(target: "sequencer::anchor", error = %e, "bitcoind unreachable; sealing continues, anchoring waits");
                }
                was_up = false;
                wallet_loaded = false;
                ctx.chain.status_mut().bitcoind_up = false;
            }
            Err(e) => {
                ctx.metrics.anchor_failures.inc();
                match e.severity() {
                    Severity::Transient => {
                        tracing::warn!(target: "sequencer::anchor", error = %e, "following the chain failed; will retry")
                    }
                    Severity::Fatal => {
                        tracing::error!(target: "sequencer::anchor", error = %e, "following the chain failed and retrying cannot help; anchoring is stuck until the operator acts")
                    }
                }
            }
        }
        if *stop.borrow() {
            break;
        }
        if !again {
            tokio::select! {
                _ = tokio::time::sleep(ctx.config.poll_interval()) => {}
                _ = stop.changed() => break,
            }
        }
    }
}

/// The chains matched at this head, canonical tip and L1 tip.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConvergedAt {
    head: Hash,
    tip: Option<Hash>,
    l1_tip: Option<(u64, bitcoin::BlockHash)>,
}

/// Move our chain to derivation's canonical chain when they differ (see [`crate::converge`]).
/// Returns whether anchoring may go on (not waiting for a batch we do not hold).
async fn converge(
    ctx: &Anchoring,
    derivation: &Derivation,
    converged: &mut Option<ConvergedAt>,
) -> Result<bool, SequencerError> {
    // Nothing moved since the chains last matched: they still do.
    let now = ConvergedAt {
        head: ctx.chain.head().hash,
        tip: derivation.tip().map(|r| r.hash),
        l1_tip: derivation.l1_tip(),
    };
    if converged.as_ref() == Some(&now) {
        return Ok(true);
    }
    *converged = None;
    let step = {
        let (chain, store) = (Arc::clone(&ctx.chain), Arc::clone(&ctx.store));
        let derivation = derivation.clone();
        tokio::task::spawn_blocking(move || crate::converge::plan(&chain, &store, &derivation))
            .await
            .map_err(|e| SequencerError::Internal(format!("convergence task: {e}")))??
    };
    let proceed = match step {
        Step::Converged => {
            ctx.chain.status_mut().waiting = None;
            *converged = Some(now);
            true
        }
        Step::Wait { number, reason } => {
            let mut chain = ctx.chain.status_mut();
            if chain.waiting.as_ref().map(|(n, _)| *n) != Some(number) {
                tracing::error!(target: "sequencer::converge", number, %reason, "anchoring paused");
            }
            chain.waiting = Some((number, reason));
            false
        }
        Step::Rewind {
            to,
            restore,
            reason,
        } => {
            tracing::warn!(target: "sequencer::converge", to, restore = restore.len(), %reason, "rewinding");
            ctx.chain.status_mut().waiting = None;
            let rewound = {
                let sealer = Arc::clone(&ctx.sealer);
                tokio::task::spawn_blocking(move || crate::converge::rewind(&sealer, to, &restore))
                    .await
                    .map_err(|e| SequencerError::Internal(format!("rewind task: {e}")))??
            };
            tracing::info!(target: "sequencer::converge", requeued = rewound.requeued, restored = rewound.restored.len(), "rewound");
            for (number, hash) in rewound.restored {
                let finality = match derivation.batch(number) {
                    Some((_, BatchStatus::Final)) => BatchFinality::Final,
                    _ => BatchFinality::Anchored,
                };
                publish_finality(ctx, number, &hash, finality);
            }
            true
        }
        Step::Adopt { derived } => {
            ctx.chain.status_mut().waiting = None;
            let adopted = {
                let sealer = Arc::clone(&ctx.sealer);
                tokio::task::spawn_blocking(move || crate::converge::adopt(&sealer, &derived))
                    .await
                    .map_err(|e| SequencerError::Internal(format!("adopt task: {e}")))??
            };
            for (number, hash) in adopted {
                let finality = match derivation.batch(number) {
                    Some((_, BatchStatus::Final)) => BatchFinality::Final,
                    _ => BatchFinality::Anchored,
                };
                publish_finality(ctx, number, &hash, finality);
            }
            true
        }
    };
    let final_number = derivation.final_tip().map_or(0, |r| r.header.number);
    let pruned = ctx.store.prune_parked(final_number)?;
    if pruned > 0 {
        tracing::debug!(target: "sequencer::converge", pruned, final_number, "parked batches below the final tip deleted");
    }
    Ok(proceed)
}

/// Bring derivation up to bitcoind's tip and publish what changed.
async fn follow<S: BlockSource>(
    ctx: &Anchoring,
    follower: &mut ChainFollower<S>,
    derivation: &mut Derivation,
    rejected: &mut HashSet<bitcoin::Txid>,
) -> Result<(), SequencerError> {
    let mut changed = false;
    loop {
        let event = follower
            .next_event()
            .await
            .map_err(|e| SequencerError::bitcoind("following the chain", e))?;
        let Some(event) = event else { break };
        changed = true;
        let events = match event {
            ChainEvent::Connected { height, block } => {
                let events = derivation.connect_block(height, &block).map_err(|e| {
                    SequencerError::Internal(format!("derivation refused block {height}: {e}"))
                })?;
                let messages: Vec<_> = derivation
                    .l1_messages(height.saturating_sub(1), height)
                    .cloned()
                    .collect();
                let mut chain = ctx.chain.status_mut();
                chain
                    .l1_blocks
                    .insert(height, (block.block_hash(), u64::from(block.header.time)));
                if !messages.is_empty() {
                    tracing::info!(target: "sequencer::anchor", height, messages = messages.len(), "L1 messages found");
                    chain.l1_messages.insert(height, messages);
                }
                let keep_from = height.saturating_sub(L1_BLOCK_MEMORY);
                chain.l1_blocks = chain.l1_blocks.split_off(&keep_from);
                // Messages are kept as long as a batch may still have to execute them: the
                // sequencing window bounds how far an origin lags the tip.
                let window = ctx
                    .genesis
                    .sequencing_window
                    .saturating_add(ctx.genesis.l1_confirmations);
                let keep_messages_from = height.saturating_sub(L1_BLOCK_MEMORY.max(window));
                chain.l1_messages = chain.l1_messages.split_off(&keep_messages_from);
                events
            }
            ChainEvent::Disconnected { height, hash } => {
                let events = derivation.disconnect_block(height, hash).map_err(|e| {
                    SequencerError::Internal(format!("derivation refused disconnect {height}: {e}"))
                })?;
                let mut chain = ctx.chain.status_mut();
                chain.l1_blocks.remove(&height);
                chain.l1_messages.remove(&height);
                drop(chain);
                tracing::info!(target: "sequencer::anchor", height, %hash, "L1 block disconnected");
                events
            }
        };
        // Snapshot first, so subscribers that react to an event read the new status.
        snapshot(ctx, derivation);
        for event in events {
            if let DerivationEvent::BatchRejected { btc_txid, .. } = &event {
                if rejected.insert(*btc_txid) {
                    ctx.metrics.envelopes_rejected.inc();
                }
            }
            handle_event(ctx, event);
        }
    }
    if changed {
        snapshot(ctx, derivation);
    }
    Ok(())
}

fn snapshot(ctx: &Anchoring, derivation: &Derivation) {
    let anchored: BTreeMap<u64, AnchorInfo> = derivation
        .canonical()
        .iter()
        .map(|r| {
            (
                r.header.number,
                AnchorInfo {
                    hash: r.hash,
                    state_root: r.header.state_root,
                    btc_txid: r.anchor.btc_txid,
                    height: r.anchor.height,
                },
            )
        })
        .collect();
    let mut chain = ctx.chain.status_mut();
    let moved = anchored.keys().next_back() != chain.anchored.keys().next_back();
    if moved || chain.anchored_moved_at.is_none() {
        chain.anchored_moved_at = Some(std::time::Instant::now());
    }
    chain.anchored = anchored;
    chain.final_number = derivation.final_tip().map_or(0, |r| r.header.number);
    chain.invalidated = derivation
        .invalidated()
        .iter()
        .map(|b| (b.record.header.number, b.record.hash))
        .collect();
    chain.l1_tip = derivation.l1_tip();
}

fn publish_finality(ctx: &Anchoring, number: u64, hash: &[u8; 32], finality: BatchFinality) {
    ctx.publishers.finality(number, hash, finality);
    // Per-tx status for the batch's txs.
    let tx_finality = match finality {
        BatchFinality::Invalidated => "dropped",
        other => other.as_str(),
    };
    if let Ok(Some(stored)) = ctx.store.batch(number) {
        if let Ok(batch) = stored.batch() {
            if batch.hash() == *hash {
                let txids = batch.txs().iter().map(|tx| tx.txid());
                for txid in txids.chain(stored.forced.iter().copied()) {
                    ctx.publishers.tx_status(&txid, tx_finality, Some(number));
                }
            }
        }
    }
}

fn handle_event(ctx: &Anchoring, event: DerivationEvent) {
    match event {
        DerivationEvent::BatchAnchored { batch, anchor } => {
            let number = batch.header().number;
            let hash = batch.hash();
            let ours = ctx
                .store
                .batch(number)
                .ok()
                .flatten()
                .and_then(|s| s.batch().ok())
                .map(|b| b.hash());
            if ours != Some(hash) {
                tracing::error!(target: "sequencer::anchor", number, "an anchored batch under our key differs from the batch we sealed");
            }
            tracing::info!(target: "sequencer::anchor", number, height = anchor.height, btc_txid = %anchor.btc_txid, "batch anchored");
            publish_finality(ctx, number, &hash, BatchFinality::Anchored);
        }
        DerivationEvent::BatchUnanchored { number, hash } => {
            tracing::warn!(target: "sequencer::anchor", number, "reorg removed the batch's anchor; back to soft, will re-anchor");
            publish_finality(ctx, number, &hash, BatchFinality::Soft);
        }
        DerivationEvent::BatchFinal { number, hash } => {
            tracing::info!(target: "sequencer::anchor", number, "batch final");
            publish_finality(ctx, number, &hash, BatchFinality::Final);
        }
        DerivationEvent::BatchUnfinalized { number, hash } => {
            tracing::warn!(target: "sequencer::anchor", number, "reorg undid the batch's finality");
            publish_finality(ctx, number, &hash, BatchFinality::Anchored);
        }
        DerivationEvent::BatchInvalidated { number, hash, by } => {
            tracing::error!(target: "sequencer::anchor", number, challenge = %by, "batch INVALIDATED by a valid challenge");
            publish_finality(ctx, number, &hash, BatchFinality::Invalidated);
        }
        DerivationEvent::BatchReinstated { number, hash } => {
            tracing::warn!(target: "sequencer::anchor", number, "batch reinstated (the challenge was reorged out)");
            publish_finality(ctx, number, &hash, BatchFinality::Anchored);
        }
        DerivationEvent::BatchDerived { record, messages } => {
            tracing::warn!(target: "sequencer::anchor", number = record.header.number, messages = messages.len(), height = record.anchor.height, "no batch executed the L1 messages due within the sequencing window: every node derives this batch");
        }
        DerivationEvent::PayoutConfirmed {
            txid,
            height,
            commitment,
        } => {
            tracing::info!(target: "sequencer::bridge", %txid, height, commitment = %hex::encode(commitment), "bridge payout confirmed");
        }
        DerivationEvent::PayoutRemoved { txid } => {
            tracing::warn!(target: "sequencer::bridge", %txid, "a reorg removed a bridge payout");
        }
        DerivationEvent::BridgeSpentWithoutPayout { txid, height } => {
            tracing::error!(target: "sequencer::bridge", %txid, height, "bridge outputs spent by a transaction that is not a payout");
        }
        DerivationEvent::DepositNotCredited { height, deposit } => {
            tracing::warn!(target: "sequencer::bridge", height, outpoint = %deposit.outpoint, sats = deposit.amount, reason = %deposit.reason, "a payment to the bridge is not a deposit: not credited (its bitcoin stays with the bridge)");
        }
        DerivationEvent::BatchRejected { btc_txid, reason } => {
            tracing::warn!(target: "sequencer::anchor", %btc_txid, %reason, "derivation rejected an envelope of ours; its batch will be posted anew or sealed again");
        }
        DerivationEvent::ChallengeAccepted {
            btc_txid, batch, ..
        } => {
            tracing::error!(target: "sequencer::anchor", %btc_txid, batch, "challenge accepted");
        }
        DerivationEvent::ChallengeRejected { btc_txid, .. } => {
            tracing::info!(target: "sequencer::anchor", %btc_txid, "challenge rejected");
        }
        DerivationEvent::ChallengeRemoved { btc_txid } => {
            tracing::info!(target: "sequencer::anchor", %btc_txid, "challenge reorged out");
        }
    }
}

fn to_posted(number: u64, stored: &StoredAnchor) -> Result<PostedEnvelope, SequencerError> {
    let commit: bitcoin::Transaction =
        deserialize(&stored.commit).map_err(|e| SequencerError::corrupt_by("stored commit", e))?;
    let reveal: bitcoin::Transaction =
        deserialize(&stored.reveal).map_err(|e| SequencerError::corrupt_by("stored reveal", e))?;
    Ok(PostedEnvelope {
        commit_txid: commit.compute_txid(),
        reveal_txid: reveal.compute_txid(),
        commit,
        reveal,
        commit_vout: stored.commit_vout,
        commit_fee: Amount::from_sat(stored.commit_fee),
        reveal_fee: Amount::from_sat(stored.reveal_fee),
        fee_rate: FeeRate::from_sat_per_kwu(stored.fee_rate_sat_kwu),
        leaf_script: ScriptBuf::from_bytes(stored.leaf_script.clone()),
        hint: Some(IndexHint {
            kind: EnvelopeKind::Batch,
            number,
            header_hash: stored.batch_hash,
        }),
    })
}

fn to_stored(batch_hash: [u8; 32], posted: &PostedEnvelope, height: u64) -> StoredAnchor {
    StoredAnchor {
        batch_hash,
        commit: serialize(&posted.commit),
        reveal: serialize(&posted.reveal),
        commit_vout: posted.commit_vout,
        commit_fee: posted.commit_fee.to_sat(),
        reveal_fee: posted.reveal_fee.to_sat(),
        fee_rate_sat_kwu: posted.fee_rate.to_sat_per_kwu(),
        leaf_script: posted.leaf_script.to_bytes(),
        posted_at_height: height,
    }
}

/// Work on the batch after derivation's canonical tip. Returns `true` when a new envelope was
/// posted (so the caller looks again at once).
async fn anchor_next<W: AnchorWallet + FeeSource>(
    ctx: &Anchoring,
    anchorer: &Anchorer<W>,
    derivation: &Derivation,
    rejected: &HashSet<bitcoin::Txid>,
) -> Result<bool, SequencerError> {
    let next = derivation
        .tip()
        .map_or(0, |r| r.header.number)
        .saturating_add(1);
    if next > ctx.chain.head().number {
        return Ok(false);
    }
    let stored = ctx
        .store
        .batch(next)?
        .ok_or_else(|| SequencerError::corrupt(format!("sealed batch {next} missing")))?;
    let batch = stored.batch()?;
    let hash = batch.hash();
    let parent = derivation.tip_facts().hash;
    if batch.header().parent != parent {
        // Our batch does not extend derivation's canonical tip (a rollback is pending, or a reorg
        // brought back a batch we rolled back): posting it would only be rejected.
        tracing::debug!(target: "sequencer::anchor", number = next, "sealed batch does not extend the canonical chain; not anchoring it");
        return Ok(false);
    }
    let height = derivation.l1_tip().map_or(0, |(h, _)| h);
    let previous = ctx.store.anchor(next)?.filter(|a| a.batch_hash == hash);
    if let Some(previous) = previous {
        let posted = to_posted(next, &previous)?;
        match anchorer.status(&posted).await {
            // Mined, but derivation refused it there (mined before its parent after a reorg):
            // the batch still extends the tip (convergence checked it), so post it again.
            Ok(status)
                if status.reveal_confirmations > 0 && rejected.contains(&posted.reveal_txid) =>
            {
                tracing::info!(target: "sequencer::anchor", number = next, reveal = %posted.reveal_txid, "previous envelope was mined out of order; posting anew");
            }
            // In a block: derivation will pick it up on the next poll.
            Ok(status) if status.reveal_confirmations > 0 => return Ok(false),
            Ok(status) if status.reveal_confirmations == 0 && status.commit_confirmations >= 0 => {
                match anchorer.rebroadcast(&posted).await {
                    Ok(()) => {
                        let bump_at = previous
                            .posted_at_height
                            .saturating_add(ctx.config.bump_after_blocks);
                        if height < bump_at {
                            return Ok(false);
                        }
                        let rate = FeeRate::from_sat_per_kwu(
                            posted.fee_rate.to_sat_per_kwu().saturating_mul(2),
                        )
                        .min(ctx.config.max_fee_rate());
                        if rate <= posted.fee_rate {
                            tracing::warn!(target: "sequencer::anchor", number = next, fee_rate = %posted.fee_rate, "envelope unconfirmed at the maximum fee rate");
                            return Ok(false);
                        }
                        match anchorer.bump(&posted, rate).await {
                            Ok(bumped) => {
                                ctx.store
                                    .put_anchor(next, &to_stored(hash, &bumped, height))?;
                                ctx.metrics.fee_bumps.inc();
                                tracing::info!(target: "sequencer::anchor", number = next, reveal = %bumped.reveal_txid, "envelope fee bumped");
                                return Ok(false);
                            }
                            Err(e) => {
                                tracing::warn!(target: "sequencer::anchor", number = next, error = %e, "fee bump failed; posting anew");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::info!(target: "sequencer::anchor", number = next, error = %e, "previous envelope cannot be re-broadcast; posting anew");
                    }
                }
            }
            Ok(_) => {
                tracing::info!(target: "sequencer::anchor", number = next, "previous envelope conflicted; posting anew");
            }
            Err(e) => {
                tracing::info!(target: "sequencer::anchor", number = next, error = %e, "previous envelope unknown to the wallet; posting anew");
            }
        }
    }
    let envelope = anchorer.batch_envelope(&ctx.genesis.hash(), hash, stored.encoded);
    let hint = IndexHint {
        kind: EnvelopeKind::Batch,
        number: next,
        header_hash: hash,
    };
    let fee_rate = ctx.config.fee_policy().rate(anchorer.wallet()).await;
    let posted = anchorer
        .post(&envelope, Some(hint), fee_rate)
        .await
        .map_err(|e| SequencerError::bitcoind(format!("posting batch {next}"), e))?;
    ctx.store
        .put_anchor(next, &to_stored(hash, &posted, height))?;
    ctx.metrics.envelopes_posted.inc();
    tracing::info!(target: "sequencer::anchor", number = next, commit = %posted.commit_txid, reveal = %posted.reveal_txid, "batch envelope posted");
    Ok(true)
}
