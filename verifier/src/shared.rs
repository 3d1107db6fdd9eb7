//! What the verifier's loop publishes and its RPC reads: the [`Snapshot`] of derivation and
//! verification after each poll, the [`Shared`] handle holding it with the stores, the alerts
//! for frauds it cannot challenge, and the metrics. `node` writes it, `rpc` reads it; this module
//! uses neither.

use std::sync::Arc;

use bitcoin::BlockHash;
use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use stint_protocol::{BatchRecord, BatchStatus, Genesis};
use stint_state::{Hash, RocksNodeStore};

use crate::engine::PendingFraud;
use crate::replay::ChallengeStage;
use crate::store::{ChallengeEntry, VerifiedBatch, VerifierStore};

/// Counters and gauges for `/metrics`: `prometheus-client` metrics the loop updates
/// (`inc`/`inc_by` on counters, `set` on gauges), registered in the node's registry by
/// [`VerifierMetrics::register`]. Counter names get their `_total` suffix from the encoder.
#[derive(Debug, Default)]
pub struct VerifierMetrics {
    /// Batches replayed and found honest.
    pub batches_verified: Counter,
    /// Txs replayed.
    pub txs_replayed: Counter,
    /// Frauds detected.
    pub frauds_detected: Counter,
    /// Challenges posted (fee bumps not counted).
    pub challenges_posted: Counter,
    /// Verified batches rolled back.
    pub rollbacks: Counter,
    /// Canonical batches not verified yet.
    pub replay_lag_batches: Gauge,
    /// Blocks left in the window of the pending fraud (-1: none).
    pub window_remaining_blocks: Gauge,
    /// L1 height processed.
    pub l1_height: Gauge,
    /// Frauds in an open window that this verifier cannot challenge (0 or 1: replay stops at
    /// the first fraud).
    pub unprovable_frauds: Gauge,
    /// Failed steps towards a challenge: a proof that cannot be built, encoded, judged as fraud
    /// or fit one envelope (counted once per fraud), and every failed post attempt.
    pub challenge_failures: Counter,
}

impl VerifierMetrics {
    /// Registers every metric in `registry` (handles to the same values: the registry encodes
    /// what the loop records from then on). The verifier's RPC registers them in its module's
    /// registry, which `GET /metrics` serves with the RPC server's own metrics.
    pub fn register(&self, registry: &mut Registry) {
        let counters = [
            (
                "stint_verifier_batches_verified",
                "Batches replayed and found honest",
                &self.batches_verified,
            ),
            (
                "stint_verifier_txs_replayed",
                "Transactions replayed",
                &self.txs_replayed,
            ),
            (
                "stint_verifier_frauds_detected",
                "Fraudulent batches detected",
                &self.frauds_detected,
            ),
            (
                "stint_verifier_challenges_posted",
                "Challenges posted to Bitcoin",
                &self.challenges_posted,
            ),
            (
                "stint_verifier_rollbacks",
                "Verified batches rolled back (reorgs, invalidations)",
                &self.rollbacks,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let gauges = [
            (
                "stint_verifier_replay_lag_batches",
                "Canonical batches not verified yet",
                &self.replay_lag_batches,
            ),
            (
                "stint_verifier_window_remaining_blocks",
                "Blocks left to challenge the pending fraud (-1 when none)",
                &self.window_remaining_blocks,
            ),
            (
                "stint_verifier_l1_height",
                "Height of the last Bitcoin block processed",
                &self.l1_height,
            ),
            (
                "stint_verifier_unprovable_frauds",
                "Frauds in an open dispute window that this verifier cannot challenge (see alerts in stint_verifierStatus)",
                &self.unprovable_frauds,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "stint_verifier_challenge_failures",
            "Failed steps towards a challenge (build, encode, judge, fit once per fraud; every failed post)",
            self.challenge_failures.clone(),
        );
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
