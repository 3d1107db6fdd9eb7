//! The verifier's metrics: [`VerifierMetrics`], the counters and gauges the loop and the
//! challenger update and `GET /metrics` serves. Imports no other module of the crate.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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
