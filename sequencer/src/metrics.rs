//! Sequencer metrics: `prometheus-client` counters the tasks update and gauges read from the
//! live state at scrape time, registered in the node's registry, which `GET /metrics` serves
//! together with the RPC server's own metrics.

use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// A counter of seconds (fractional).
pub(crate) type SecondsCounter = Counter<f64, AtomicU64>;

/// Counters updated by the tasks (`inc`/`inc_by` on the fields); the gauges are read from the
/// live state at scrape time ([`GaugesCollector`]). A clone counts into the same values (each
/// handle holds one).
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    pub(crate) admitted: Counter,
    pub(crate) rejected: Counter,
    pub(crate) group_commits: Counter,
    pub(crate) group_commit_txs: Counter,
    pub(crate) batches_sealed: Counter,
    pub(crate) txs_sealed: Counter,
    pub(crate) txs_dropped: Counter,
    pub(crate) envelopes_posted: Counter,
    pub(crate) fee_bumps: Counter,
    pub(crate) anchor_failures: Counter,
    pub(crate) rollbacks: Counter,
    pub(crate) txs_requeued: Counter,
    pub(crate) batches_restored: Counter,
    pub(crate) envelopes_rejected: Counter,
    /// Time spent sealing batches (from taking candidates to the in-memory head moving).
    pub(crate) seal_seconds: SecondsCounter,
    /// … of which executing and merkleizing them (the batch builder).
    pub(crate) seal_build_seconds: SecondsCounter,
    /// … of which the synced RocksDB write of batch, state, receipts and log deletions.
    pub(crate) seal_commit_seconds: SecondsCounter,
    /// Time the admission log writer spent in synced group writes.
    pub(crate) log_write_seconds: SecondsCounter,
}

impl Metrics {
    /// Registers every counter in `registry` (handles to the same values). Counter names get
    /// their `_total` suffix from the encoder.
    pub(crate) fn register(&self, registry: &mut Registry) {
        let counters = [
            (
                "stint_sequencer_txs_admitted",
                "Transactions admitted (durable)",
                &self.admitted,
            ),
            (
                "stint_sequencer_txs_rejected",
                "Transactions refused at admission",
                &self.rejected,
            ),
            (
                "stint_sequencer_group_commits",
                "Admission log fsyncs",
                &self.group_commits,
            ),
            (
                "stint_sequencer_group_commit_txs",
                "Transactions written by admission log fsyncs",
                &self.group_commit_txs,
            ),
            (
                "stint_sequencer_batches_sealed",
                "Batches sealed",
                &self.batches_sealed,
            ),
            (
                "stint_sequencer_txs_sealed",
                "Transactions executed in sealed batches",
                &self.txs_sealed,
            ),
            (
                "stint_sequencer_txs_dropped",
                "Acknowledged transactions dropped (invalid when sealed, or replaced)",
                &self.txs_dropped,
            ),
            (
                "stint_sequencer_envelopes_posted",
                "Batch envelopes posted to Bitcoin",
                &self.envelopes_posted,
            ),
            (
                "stint_sequencer_fee_bumps",
                "Envelope fee bumps",
                &self.fee_bumps,
            ),
            (
                "stint_sequencer_anchor_failures",
                "Failed anchoring attempts",
                &self.anchor_failures,
            ),
            (
                "stint_sequencer_rollbacks",
                "Rewinds of the sequencer's chain to derivation's canonical chain (a valid challenge, a batch derivation would refuse, or a reorg)",
                &self.rollbacks,
            ),
            (
                "stint_sequencer_txs_requeued",
                "Transactions of rolled-back batches put back to be sealed again",
                &self.txs_requeued,
            ),
            (
                "stint_sequencer_batches_restored",
                "Rolled-back batches restored because derivation made them canonical again",
                &self.batches_restored,
            ),
            (
                "stint_sequencer_envelopes_rejected",
                "Envelopes of ours that derivation rejected when they were mined (posted anew)",
                &self.envelopes_rejected,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let timers = [
            (
                "stint_sequencer_seal_seconds",
                "Time spent sealing batches",
                &self.seal_seconds,
            ),
            (
                "stint_sequencer_seal_build_seconds",
                "Time spent executing and merkleizing batches while sealing",
                &self.seal_build_seconds,
            ),
            (
                "stint_sequencer_seal_commit_seconds",
                "Time spent in the synced database write of sealed batches",
                &self.seal_commit_seconds,
            ),
            (
                "stint_sequencer_admission_log_seconds",
                "Time spent in synced admission log writes (group commits)",
                &self.log_write_seconds,
            ),
        ];
        for (name, help, seconds) in timers {
            registry.register(name, help, seconds.clone());
        }
    }
}

/// The sequencer's gauges, read from its live state (the chain state and admission's mempool).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Gauges {
    pub(crate) pending: u64,
    pub(crate) queued: u64,
    pub(crate) soft: u64,
    pub(crate) anchored: u64,
    pub(crate) final_number: u64,
    pub(crate) l1_height: u64,
    pub(crate) bitcoind_up: bool,
    pub(crate) waiting: u64,
}

/// A [`Collector`] that encodes the [`Gauges`] its function reads, once per scrape (no
/// background refresh: a scrape sees the state of that moment).
pub(crate) struct GaugesCollector<F>(pub(crate) F);

impl<F> std::fmt::Debug for GaugesCollector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GaugesCollector")
    }
}

impl<F: Fn() -> Gauges + Send + Sync + 'static> Collector for GaugesCollector<F> {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Gauges {
            pending,
            queued,
            soft,
            anchored,
            final_number,
            l1_height,
            bitcoind_up,
            waiting,
        } = (self.0)();
        // Help texts as `Registry::register` would make them (it appends the full stop).
        let gauges = [
            (
                "stint_sequencer_mempool_txs",
                "Pending transactions.",
                pending,
            ),
            (
                "stint_sequencer_mempool_queued_txs",
                "Pending transactions admitted behind a nonce gap (not executable yet).",
                queued,
            ),
            (
                "stint_sequencer_soft_batch",
                "Latest sealed batch number.",
                soft,
            ),
            (
                "stint_sequencer_anchored_batch",
                "Latest anchored batch number.",
                anchored,
            ),
            (
                "stint_sequencer_final_batch",
                "Latest final batch number.",
                final_number,
            ),
            (
                "stint_sequencer_l1_height",
                "Followed Bitcoin tip height.",
                l1_height,
            ),
            (
                "stint_sequencer_bitcoind_up",
                "1 if the last bitcoind poll succeeded.",
                u64::from(bitcoind_up),
            ),
            (
                "stint_sequencer_waiting_for_batch",
                "A canonical batch this sequencer does not hold (anchoring paused), or 0.",
                waiting,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::prometheus_text::encode;

    use super::*;

    #[test]
    fn counters_and_scrape_time_gauges_are_encoded() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let gauges = std::sync::Arc::new(parking_lot::Mutex::new(Gauges::default()));
        let read = std::sync::Arc::clone(&gauges);
        registry.register_collector(Box::new(GaugesCollector(move || *read.lock())));
        metrics.admitted.inc();
        metrics.txs_sealed.inc_by(3);
        metrics.seal_seconds.inc_by(0.25);
        gauges.lock().pending = 2;
        gauges.lock().bitcoind_up = true;
        let scrape = || {
            let mut text = String::new();
            encode(&mut text, &registry).unwrap();
            text
        };
        let text = scrape();
        for line in [
            "# HELP stint_sequencer_txs_admitted_total Transactions admitted (durable).",
            "# TYPE stint_sequencer_txs_admitted_total counter",
            "stint_sequencer_txs_admitted_total 1",
            "stint_sequencer_txs_sealed_total 3",
            "stint_sequencer_seal_seconds_total 0.25",
            "# HELP stint_sequencer_mempool_txs Pending transactions.",
            "# TYPE stint_sequencer_mempool_txs gauge",
            "stint_sequencer_mempool_txs 2",
            "stint_sequencer_bitcoind_up 1",
            "stint_sequencer_waiting_for_batch 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        // Gauges are read at each scrape.
        gauges.lock().pending = 0;
        assert!(scrape()
            .lines()
            .any(|l| l == "stint_sequencer_mempool_txs 0"));
    }
}
