//! Smoke test of the benchmark suite: every benchmark runs at tiny sizes (seconds) and the table
//! holds every row with sane values. It checks that the suite works, not how fast anything is.

use stint_bench::replay::{replay_parallel, replay_phased, replay_sequential, PreState};
use stint_bench::workload::{self, Accounts};
use stint_bench::{run, Config};

/// Every row the suite prints for [`Config::tiny`] on 2 threads.
const EXPECTED_ROWS: &[&str] = &[
    "sig.1",
    "sig.all",
    "replay.transfers.sequential",
    "replay.transfers.phased",
    "replay.transfers.1",
    "replay.transfers.cpu",
    "replay.transfers.all",
    "replay.transfers.speedup",
    "verifier.transfers.1",
    "verifier.transfers.all",
    "verifier.transfers.speedup",
    "replay.mix.sequential",
    "replay.mix.phased",
    "replay.mix.1",
    "replay.mix.cpu",
    "replay.mix.all",
    "replay.mix.speedup",
    "verifier.mix.1",
    "verifier.mix.all",
    "verifier.mix.speedup",
    "sequencer.transfers.2.tps",
    "sequencer.transfers.2.p50",
    "sequencer.transfers.2.p99",
    "sequencer.mix.2.tps",
    "sequencer.mix.2.p50",
    "sequencer.mix.2.p99",
    "tree.1",
    "tree.all",
    "tree.proof",
    "da.transfers",
    "da.payroll",
    "da.payroll.per_payment",
    "da.task-flow",
    "rocks.100.changes",
    "rocks.100.commits",
];

#[test]
fn tiny_run_reports_every_row_with_sane_values() {
    let dir = tempfile::tempdir().unwrap();
    let report = run(&Config::tiny(), 2).unwrap();
    let table = &report.table;

    let ids: Vec<&str> = table.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, EXPECTED_ROWS, "rows of the table");
    for row in &table.rows {
        // CPU-time rows read 0 where the OS reports no CPU time.
        let min = if row.id.ends_with(".cpu") {
            0.0
        } else {
            f64::MIN_POSITIVE
        };
        assert!(
            row.value.value.is_finite() && row.value.value >= min,
            "{}: {:?}",
            row.id,
            row.value
        );
        if let Some((_, reference)) = &row.reference {
            assert!(reference.value > 0.0, "{}: reference {reference:?}", row.id);
        }
    }
    // Compressed envelopes are smaller than the encoded batches but not implausibly so: each
    // transfer carries a 64-byte signature that does not compress.
    let da = table.get("da.transfers").unwrap();
    assert!(da.value.value > 64.0, "{da:?}");
    assert!(da.ratio.unwrap() < 1.0, "{da:?}");
    // Stint's proofs and jmt's are both tens to hundreds of bytes for 2,000 keys.
    let proof = table.get("tree.proof").unwrap();
    assert!((32.0..2_000.0).contains(&proof.value.value), "{proof:?}");

    assert!(
        report.notes.iter().all(|n| !n.contains("failed")),
        "{:?}",
        report.notes
    );
    assert_eq!(report.sweep.len(), 3, "ceiling + two replay series");
    assert!(report.sweep.iter().all(|s| s.points.len() == 2));

    report.write_results(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("RESULTS.md")).unwrap();
    assert!(md.contains("| metric |") && md.contains("replay-threads.svg"));
    let svg = std::fs::read_to_string(dir.path().join("replay-threads.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("replay transfers"));
}

#[test]
fn parallel_replay_matches_sequential_replay() {
    let accounts = Accounts::generate(48).unwrap();
    let genesis = accounts.genesis().unwrap();
    let pre = PreState::genesis(&genesis).unwrap();
    let ctx = workload::block_context();
    for txs in [
        workload::transfers(&accounts, 200).unwrap(),
        workload::mix(&accounts, 900).unwrap(),
    ] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let sequential = replay_sequential(&pre, &ctx, &txs).unwrap();
        for replay in [replay_parallel, replay_phased] {
            let parallel = pool.install(|| replay(&pre, &ctx, &txs)).unwrap();
            assert_eq!(parallel.checkpoints, sequential.checkpoints);
            assert_eq!(parallel.receipts, sequential.receipts);
        }
        let parallel = pool.install(|| replay_parallel(&pre, &ctx, &txs)).unwrap();
        assert_ne!(parallel.root(), Some(pre.root()));
        assert!(
            sequential.receipts.iter().all(|r| r.error.is_none()),
            "every generated call succeeds"
        );
        assert_eq!(
            sequential.checkpoints.len(),
            txs.len().div_ceil(workload::SEGMENT_LEN)
        );
    }
}

#[test]
fn a_bad_signature_fails_the_replay() {
    let accounts = Accounts::generate(8).unwrap();
    let pre = PreState::genesis(&accounts.genesis().unwrap()).unwrap();
    let mut txs = workload::transfers(&accounts, 40).unwrap();
    txs[17].sig[5] ^= 1;
    let ctx = workload::block_context();
    assert!(replay_parallel(&pre, &ctx, &txs).is_err());
    assert!(replay_phased(&pre, &ctx, &txs).is_err());
    assert!(replay_sequential(&pre, &ctx, &txs).is_err());
}
