//! Sequencer metrics, rendered as Prometheus text on `GET /metrics` (before the RPC server's own).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated by the tasks; gauges are read from the shared state at render time.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) admitted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) group_commits: AtomicU64,
    pub(crate) group_commit_txs: AtomicU64,
    pub(crate) batches_sealed: AtomicU64,
    pub(crate) txs_sealed: AtomicU64,
    pub(crate) txs_dropped: AtomicU64,
    pub(crate) envelopes_posted: AtomicU64,
    pub(crate) fee_bumps: AtomicU64,
    pub(crate) anchor_failures: AtomicU64,
    pub(crate) rollbacks: AtomicU64,
    pub(crate) txs_requeued: AtomicU64,
    pub(crate) batches_restored: AtomicU64,
    pub(crate) envelopes_rejected: AtomicU64,
    /// Microseconds spent sealing batches (from taking candidates to the in-memory head moving).
    pub(crate) seal_micros: AtomicU64,
    /// … of which executing and merkleizing them (the batch builder).
    pub(crate) seal_build_micros: AtomicU64,
    /// … of which the synced RocksDB write of batch, state, receipts and log deletions.
    pub(crate) seal_commit_micros: AtomicU64,
    /// Microseconds the admission log writer spent in synced group writes.
    pub(crate) log_write_micros: AtomicU64,
}

impl Metrics {
    pub(crate) fn inc(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Add the time since `start` to a microsecond counter.
    pub(crate) fn add_elapsed(&self, counter: &AtomicU64, start: std::time::Instant) {
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        counter.fetch_add(micros, Ordering::Relaxed);
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// The sequencer's gauges, read from its live state (`Shared::gauges`).
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

/// The Prometheus text of the sequencer's counters `m` and gauges `g`.
pub(crate) fn render(m: &Metrics, g: &Gauges) -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let counters = [
        (
            "stint_sequencer_txs_admitted_total",
            "Transactions admitted (durable).",
            &m.admitted,
        ),
        (
            "stint_sequencer_txs_rejected_total",
            "Transactions refused at admission.",
            &m.rejected,
        ),
        (
            "stint_sequencer_group_commits_total",
            "Admission log fsyncs.",
            &m.group_commits,
        ),
        (
            "stint_sequencer_group_commit_txs_total",
            "Transactions written by admission log fsyncs.",
            &m.group_commit_txs,
        ),
        (
            "stint_sequencer_batches_sealed_total",
            "Batches sealed.",
            &m.batches_sealed,
        ),
        (
            "stint_sequencer_txs_sealed_total",
            "Transactions executed in sealed batches.",
            &m.txs_sealed,
        ),
        (
            "stint_sequencer_txs_dropped_total",
            "Acknowledged transactions dropped (invalid when sealed, or replaced).",
            &m.txs_dropped,
        ),
        (
            "stint_sequencer_envelopes_posted_total",
            "Batch envelopes posted to Bitcoin.",
            &m.envelopes_posted,
        ),
        (
            "stint_sequencer_fee_bumps_total",
            "Envelope fee bumps.",
            &m.fee_bumps,
        ),
        (
            "stint_sequencer_anchor_failures_total",
            "Failed anchoring attempts.",
            &m.anchor_failures,
        ),
        (
            "stint_sequencer_rollbacks_total",
            "Rewinds of the sequencer's chain to derivation's canonical chain (a valid challenge, a batch derivation would refuse, or a reorg).",
            &m.rollbacks,
        ),
        (
            "stint_sequencer_txs_requeued_total",
            "Transactions of rolled-back batches put back to be sealed again.",
            &m.txs_requeued,
        ),
        (
            "stint_sequencer_batches_restored_total",
            "Rolled-back batches restored because derivation made them canonical again.",
            &m.batches_restored,
        ),
        (
            "stint_sequencer_envelopes_rejected_total",
            "Envelopes of ours that derivation rejected when they were mined (posted anew).",
            &m.envelopes_rejected,
        ),
    ];
    for (name, help, counter) in counters {
        metric(&mut out, name, "counter", help, get(counter));
    }
    let timers = [
        (
            "stint_sequencer_seal_seconds_total",
            "Time spent sealing batches.",
            &m.seal_micros,
        ),
        (
            "stint_sequencer_seal_build_seconds_total",
            "Time spent executing and merkleizing batches while sealing.",
            &m.seal_build_micros,
        ),
        (
            "stint_sequencer_seal_commit_seconds_total",
            "Time spent in the synced database write of sealed batches.",
            &m.seal_commit_micros,
        ),
        (
            "stint_sequencer_admission_log_seconds_total",
            "Time spent in synced admission log writes (group commits).",
            &m.log_write_micros,
        ),
    ];
    for (name, help, micros) in timers {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {:.6}", get(micros) as f64 / 1e6);
    }
    let Gauges {
        pending,
        queued,
        soft,
        anchored,
        final_number,
        l1_height: l1,
        bitcoind_up: up,
        waiting,
    } = *g;
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
            l1,
        ),
        (
            "stint_sequencer_bitcoind_up",
            "1 if the last bitcoind poll succeeded.",
            u64::from(up),
        ),
        (
            "stint_sequencer_waiting_for_batch",
            "A canonical batch this sequencer does not hold (anchoring paused), or 0.",
            waiting,
        ),
    ];
    for (name, help, value) in gauges {
        metric(&mut out, name, "gauge", help, value);
    }
    out
}
