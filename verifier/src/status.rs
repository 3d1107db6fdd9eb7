//! What the verifier publishes after every poll: the [`Snapshot`] of derivation and
//! verification (with the alerts for frauds it cannot challenge), held by the [`Status`] handle
//! that the loop [`publish`](Status::publish)es to and the RPC reads. Imports neither `node` nor
//! `rpc`.

use std::collections::BTreeMap;

use bitcoin::BlockHash;
use parking_lot::{RwLock, RwLockReadGuard};
use stint_api::MessageKey;
use stint_protocol::{BatchRecord, BatchStatus, L1Message};
use stint_state::Hash;

use crate::engine::{Engine, PendingFraud};
use crate::replay::ChallengeStage;
use crate::store::{ChallengeEntry, VerifiedBatch};

/// A fraud this verifier cannot challenge right now, reported loudly until its window closes
/// (`alerts` in `stint_verifierStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeAlert {
    /// The fraudulent batch.
    pub batch: u64,
    /// Its hash.
    pub batch_hash: Hash,
    /// The step that failed.
    pub stage: ChallengeStage,
    /// Why.
    pub reason: String,
    /// The first L1 height at which a challenge no longer counts.
    pub window_ends_at: u64,
    /// Blocks until then, from the last processed L1 block.
    pub blocks_left: u64,
}

impl ChallengeAlert {
    /// The alert for `fraud` whose step `stage` failed for `reason`, seen at L1 tip `tip`;
    /// `None` once its window (ending at `window_end`) has closed.
    pub fn new(
        fraud: &PendingFraud,
        stage: ChallengeStage,
        reason: String,
        tip: u64,
        window_end: u64,
    ) -> Option<Self> {
        (tip < window_end).then(|| Self {
            batch: fraud.number,
            batch_hash: fraud.hash,
            stage,
            reason,
            window_ends_at: window_end,
            blocks_left: window_end.saturating_sub(tip),
        })
    }
}

/// A batch as the RPC reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// The record derivation keeps.
    pub record: BatchRecord,
    /// Derivation's status.
    pub status: BatchStatus,
    /// Whether this verifier replayed it and found it honest (or, for a derived batch,
    /// executed it).
    pub verified: bool,
    /// The state root this verifier computed for it, once verified.
    pub computed_root: Option<Hash>,
}

/// What the verifier knows, refreshed after every poll (what the RPC serves).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Last processed L1 block.
    pub l1: Option<(u64, BlockHash)>,
    /// Verified tip.
    pub verified: Option<VerifiedBatch>,
    /// Newest final canonical batch.
    pub final_tip: Option<VerifiedBatch>,
    /// Canonical batches by number (batch 1 first).
    pub canonical: Vec<BatchSummary>,
    /// Invalidated batches.
    pub invalidated: Vec<BatchSummary>,
    /// Challenges this verifier posted.
    pub challenges: Vec<ChallengeEntry>,
    /// The pending fraud: (batch number, window end height).
    pub pending_fraud: Option<(u64, u64)>,
    /// Frauds this verifier cannot challenge right now (see [`ChallengeAlert`]).
    pub alerts: Vec<ChallengeAlert>,
    /// Whether the last poll reached bitcoind.
    pub bitcoind_ok: bool,
    /// The last error, if the last poll failed.
    pub last_error: Option<String>,
    /// The L1 messages on the followed chain that no verified batch executed yet (protocol v3),
    /// by key: what `stint_getDeposit` reports as `seen`.
    pub waiting: BTreeMap<MessageKey, L1Message>,
}

impl Snapshot {
    /// What `engine` knows now, with the loop's view of bitcoind (`bitcoind_ok`, `last_error`)
    /// and its `alerts`.
    pub fn of(
        engine: &Engine,
        bitcoind_ok: bool,
        last_error: Option<String>,
        alerts: Vec<ChallengeAlert>,
    ) -> Self {
        let derivation = engine.derivation();
        let summary = |record: &BatchRecord, status: BatchStatus| {
            let verified = engine
                .verified()
                .get(
                    usize::try_from(record.header.number)
                        .unwrap_or(usize::MAX)
                        .saturating_sub(1),
                )
                .filter(|v| v.hash == record.hash);
            BatchSummary {
                verified: verified.is_some(),
                computed_root: verified.map(|v| v.state_root),
                record: record.clone(),
                status,
            }
        };
        let canonical = derivation
            .canonical()
            .iter()
            .map(|r| {
                let status = if derivation.is_final(r) {
                    BatchStatus::Final
                } else {
                    BatchStatus::Anchored
                };
                summary(r, status)
            })
            .collect();
        let invalidated = derivation
            .invalidated()
            .iter()
            .map(|i| summary(&i.record, BatchStatus::Invalidated))
            .collect();
        let final_tip = derivation.final_tip().map(|r| VerifiedBatch {
            number: r.header.number,
            hash: r.hash,
            state_root: r.header.state_root,
        });
        let pending_fraud = engine.pending_fraud().map(|f| {
            (
                f.number,
                f.anchor
                    .height
                    .saturating_add(engine.genesis().dispute_window),
            )
        });
        // Messages after the verified tip's horizon have not been executed by a batch we hold.
        let verified_origin = engine
            .verified_tip()
            .and_then(|v| derivation.batch(v.number))
            .map_or(engine.genesis().l1_start_height, |(r, _)| {
                r.header.l1_origin.height
            });
        let waiting = derivation
            .l1_messages(engine.genesis().message_horizon(verified_origin), u64::MAX)
            .map(|m| (MessageKey::of(m), m.clone()))
            .collect();
        Self {
            waiting,
            l1: derivation.l1_tip(),
            verified: engine.verified_tip().copied(),
            final_tip,
            canonical,
            invalidated,
            challenges: engine.store().challenges().unwrap_or_default(),
            pending_fraud,
            alerts,
            bitcoind_ok,
            last_error,
        }
    }

    /// The canonical batch numbered `number`: derivation's canonical chain holds batches 1..=n
    /// in order, so it is at index `number − 1` (O(1), not a scan per read); the scan stays as a
    /// fallback should that ever not hold.
    pub fn canonical_at(&self, number: u64) -> Option<&BatchSummary> {
        let at = |b: &&BatchSummary| b.record.header.number == number;
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        self.canonical
            .get(index)
            .filter(at)
            .or_else(|| self.canonical.iter().find(at))
    }
}

/// The published [`Snapshot`]: the loop replaces it after every poll, readers (the RPC, the
/// [`VerifierView`](crate::VerifierView), tests) copy or borrow it.
#[derive(Debug, Default)]
pub struct Status {
    snapshot: RwLock<Snapshot>,
    /// When the loop last published (a poll completed).
    published_at: RwLock<Option<std::time::Instant>>,
}

/// How long the loop may go without completing a poll before `/health` says so (a hung
/// bitcoind does not fail requests; they time out after minutes).
pub const POLL_SILENCE: std::time::Duration = std::time::Duration::from_secs(30);
/// Canonical batches not replayed yet above which `/health` reports the replay lagging.
pub const HEALTH_MAX_REPLAY_LAG: usize = 100;

impl Status {
    /// A status holding `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            snapshot: RwLock::new(snapshot),
            published_at: RwLock::new(None),
        }
    }

    /// Replaces the published snapshot.
    pub fn publish(&self, snapshot: Snapshot) {
        *self.snapshot.write() = snapshot;
        *self.published_at.write() = Some(std::time::Instant::now());
    }

    /// What is wrong, for `/health` (empty: healthy): bitcoind unreachable, the loop silent
    /// for longer than [`POLL_SILENCE`] (since `started` if it never published), replay behind
    /// by more than [`HEALTH_MAX_REPLAY_LAG`] batches, frauds it cannot challenge.
    pub fn health_problems(
        &self,
        now: std::time::Instant,
        started: std::time::Instant,
    ) -> Vec<String> {
        let s = self.snapshot.read();
        let mut problems = Vec::new();
        if !s.bitcoind_ok {
            problems.push(format!(
                "bitcoind unreachable{}",
                s.last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        let since = self.published_at.read().unwrap_or(started);
        let silent = now.saturating_duration_since(since);
        if silent > POLL_SILENCE {
            problems.push(format!(
                "bitcoind not answering: no poll completed for {} s",
                silent.as_secs()
            ));
        }
        let verified = s.verified.map_or(0, |v| v.number);
        let lag = (s.canonical.len() as u64).saturating_sub(verified);
        if lag > HEALTH_MAX_REPLAY_LAG as u64 {
            problems.push(format!(
                "replay lagging: {lag} canonical batches not verified yet"
            ));
        }
        if !s.alerts.is_empty() {
            problems.push(format!(
                "{} fraud(s) this verifier cannot challenge (see stint_verifierStatus alerts)",
                s.alerts.len()
            ));
        }
        problems
    }

    /// A copy of the latest snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.read().clone()
    }

    /// The latest snapshot, borrowed (hold it briefly: the loop waits to publish).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read()
    }
}

#[cfg(test)]
mod health_tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_silent_loop_and_an_unreachable_bitcoind_are_reported() {
        let t0 = Instant::now();
        let status = Status::new(Snapshot::default());
        // Never published, started just now: only the failed first poll is reported.
        let p = status.health_problems(t0, t0);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("bitcoind unreachable"));
        status.publish(Snapshot {
            bitcoind_ok: true,
            ..Snapshot::default()
        });
        let now = Instant::now();
        assert!(status.health_problems(now, t0).is_empty());
        // A hung bitcoind: the loop stops completing polls, nothing fails.
        let p = status.health_problems(now + POLL_SILENCE + Duration::from_secs(1), t0);
        assert!(p[0].starts_with("bitcoind not answering"), "{p:?}");
    }
}
