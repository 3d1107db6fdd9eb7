//! What the verifier's loop publishes and its RPC reads: the [`Snapshot`] of derivation and
//! verification after each poll, the [`Shared`] handle holding it with the stores, the alerts
//! for frauds it cannot challenge, and the metrics. `node` writes it, `rpc` reads it; this module
//! uses neither.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bitcoin::BlockHash;
use parking_lot::RwLock;
use stint_protocol::{BatchRecord, BatchStatus, Genesis};
use stint_state::{Hash, RocksNodeStore};

use crate::engine::PendingFraud;
use crate::replay::ChallengeStage;
use crate::store::{ChallengeEntry, VerifiedBatch, VerifierStore};

/// Counters and gauges for `/metrics`.
#[derive(Debug, Default)]
pub struct VerifierMetrics {
    /// Batches replayed and found honest.
    pub batches_verified: AtomicU64,
    /// Txs replayed.
    pub txs_replayed: AtomicU64,
    /// Frauds detected.
    pub frauds_detected: AtomicU64,
    /// Challenges posted (fee bumps not counted).
    pub challenges_posted: AtomicU64,
    /// Verified batches rolled back.
    pub rollbacks: AtomicU64,
    /// Canonical batches not verified yet.
    pub replay_lag_batches: AtomicI64,
    /// Blocks left in the window of the pending fraud (-1: none).
    pub window_remaining_blocks: AtomicI64,
    /// L1 height processed.
    pub l1_height: AtomicI64,
    /// Frauds in an open window that this verifier cannot challenge (0 or 1: replay stops at
    /// the first fraud).
    pub unprovable_frauds: AtomicI64,
    /// Failed steps towards a challenge: a proof that cannot be built, encoded, judged as fraud
    /// or fit one envelope (counted once per fraud), and every failed post attempt.
    pub challenge_failures: AtomicU64,
}

impl VerifierMetrics {
    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: i128| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        let load = |a: &AtomicU64| i128::from(a.load(Ordering::Relaxed));
        let load_i = |a: &AtomicI64| i128::from(a.load(Ordering::Relaxed));
        metric(
            "stint_verifier_batches_verified_total",
            "counter",
            "Batches replayed and found honest.",
            load(&self.batches_verified),
        );
        metric(
            "stint_verifier_txs_replayed_total",
            "counter",
            "Transactions replayed.",
            load(&self.txs_replayed),
        );
        metric(
            "stint_verifier_frauds_detected_total",
            "counter",
            "Fraudulent batches detected.",
            load(&self.frauds_detected),
        );
        metric(
            "stint_verifier_challenges_posted_total",
            "counter",
            "Challenges posted to Bitcoin.",
            load(&self.challenges_posted),
        );
        metric(
            "stint_verifier_rollbacks_total",
            "counter",
            "Verified batches rolled back (reorgs, invalidations).",
            load(&self.rollbacks),
        );
        metric(
            "stint_verifier_replay_lag_batches",
            "gauge",
            "Canonical batches not verified yet.",
            load_i(&self.replay_lag_batches),
        );
        metric(
            "stint_verifier_window_remaining_blocks",
            "gauge",
            "Blocks left to challenge the pending fraud (-1 when none).",
            load_i(&self.window_remaining_blocks),
        );
        metric(
            "stint_verifier_l1_height",
            "gauge",
            "Height of the last Bitcoin block processed.",
            load_i(&self.l1_height),
        );
        metric(
            "stint_verifier_unprovable_frauds",
            "gauge",
            "Frauds in an open dispute window that this verifier cannot challenge (see alerts in stint_verifierStatus).",
            load_i(&self.unprovable_frauds),
        );
        metric(
            "stint_verifier_challenge_failures_total",
            "counter",
            "Failed steps towards a challenge (build, encode, judge, fit once per fraud; every failed post).",
            load(&self.challenge_failures),
        );
        out
    }
}

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
    /// Whether this verifier replayed it and found it honest.
    pub verified: bool,
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
}

/// State shared between the loop and the RPC.
#[derive(Debug)]
pub struct Shared {
    /// The genesis.
    pub genesis: Genesis,
    /// Its state root.
    pub genesis_root: Hash,
    /// The state store (read by version = batch number).
    pub state: Arc<RocksNodeStore>,
    /// The verifier's store (batch bodies for the reads).
    pub store: Arc<VerifierStore>,
    /// The latest snapshot.
    pub snapshot: RwLock<Snapshot>,
    /// Metrics.
    pub metrics: VerifierMetrics,
}

impl Shared {
    /// A copy of the latest snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.read().clone()
    }
}
