//! # stint-bench
//!
//! Stint's benchmark suite (issue #7): every figure is measured in the same run as the ceiling
//! or peer it is judged against, on the same machine, and reported as a ratio (DESIGN §6).
//!
//! ## Key components
//! - [`workload`]: deterministic funded accounts, a genesis, and signed tx streams (transfers,
//!   and a mix of payroll, task and stream flows).
//! - [`signatures`] (benchmark 1): the ceiling, BIP340 verifications/s with `k256` on 1 and on
//!   all threads.
//! - [`replay`] (benchmark 3): verifier replay — signatures in parallel, execution by conflict
//!   groups, checkpoint Merkle updates — on 1 and on all threads, checked bit-identical to the
//!   sequential reference, against the signature ceiling; and the verifier's own
//!   `stint_verifier::replay_batch` on recorded full batches (where the targets are judged).
//! - [`state_tree`] (benchmark 4): state tree updates/s and proof sizes against Penumbra's
//!   `jmt` on the same keys with the same hash.
//! - [`da`] (benchmark 5): DA bytes per tx of real batch envelopes.
//! - [`rocks`] (benchmark 6): RocksDB commit throughput of tree updates against raw RocksDB.
//! - [`sequencer`] (benchmark 2): a real sequencer under `N` JSON-RPC clients (batch requests):
//!   sustained tx/s to `soft` against the signature ceiling, and p50/p99 latency to `soft`.
//! - [`report`], [`chart`], [`machine`], [`timing`]: the table, the SVG chart, machine facts,
//!   and measurement helpers. [`run`] runs a whole [`Config`] and returns a [`Report`];
//!   [`Report::to_markdown`] is what `bench/RESULTS.md` holds.
//!
//! ## Usage
//! ```text
//! cargo run -p stint-bench --release -- --quick   # everything, small sizes, < 1 minute
//! cargo run -p stint-bench --release              # full sizes; writes bench/RESULTS.md + SVG
//! ```
//! From code (sizes as in the smoke test):
//! ```no_run
//! let report = stint_bench::run(&stint_bench::Config::tiny(), 2)?;
//! println!("{}", report.table.to_text());
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod chart;
pub mod da;
pub mod machine;
pub mod replay;
pub mod report;
pub mod rocks;
pub mod sequencer;
pub mod signatures;
pub mod state_tree;
pub mod timing;
pub mod workload;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::chart::Series;
use crate::machine::Machine;
use crate::replay::{PreState, ReplayFigures};
use crate::report::Table;
use crate::rocks::RocksParams;
use crate::sequencer::SequencerParams;
use crate::state_tree::TreeParams;
use crate::workload::{Accounts, MixWeights, MIX_PAYROLL_PAYMENTS};

/// The benchmarks of the suite that can be selected (`--only`); the signature ceiling always runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Suite {
    /// Benchmark 3: replay.
    Replay,
    /// Benchmark 2: the sequencer over JSON-RPC.
    Sequencer,
    /// Benchmark 4: the state tree against jmt.
    Tree,
    /// Benchmark 5: DA bytes.
    Da,
    /// Benchmark 6: RocksDB commits.
    Rocks,
}

/// Sizes of one run of the whole suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Run only these benchmarks (and the signature ceiling); `None`: all.
    pub only: Option<std::collections::BTreeSet<Suite>>,
    /// Name of the mode (`quick`, `full`, ...), printed with the results.
    pub mode: &'static str,
    /// Funded accounts of the replay workloads.
    pub accounts: usize,
    /// Signed transfers replayed.
    pub transfers: usize,
    /// Txs of the contract mix replayed.
    pub mix_txs: usize,
    /// Signatures of the ceiling measurement.
    pub signatures: usize,
    /// State tree benchmark sizes.
    pub tree: TreeParams,
    /// Txs per DA workload.
    pub da_txs: usize,
    /// RocksDB benchmark sizes.
    pub rocks: RocksParams,
    /// Sequencer benchmark sizes.
    pub sequencer: SequencerParams,
    /// Repetitions of each timed measurement (the best run counts).
    pub reps: usize,
    /// Measure replay on every thread count from 1 to the maximum (for the chart).
    pub sweep: bool,
}

/// Quick mode: replay sizes.
pub const QUICK_ACCOUNTS: usize = 4_000;
/// Quick mode: transfers replayed.
pub const QUICK_TRANSFERS: usize = 6_000;
/// Quick mode: mix txs replayed.
pub const QUICK_MIX_TXS: usize = 3_000;
/// Quick mode: keys of the state tree benchmark (the issue's 100k).
pub const QUICK_TREE_KEYS: usize = 100_000;
/// Quick mode: tree update rounds.
pub const QUICK_TREE_ROUNDS: usize = 10;
/// Full mode: funded accounts (the issue's 10k).
pub const FULL_ACCOUNTS: usize = 10_000;
/// Full mode: transfers replayed (the issue's 20k).
pub const FULL_TRANSFERS: usize = 20_000;
/// Full mode: mix txs replayed.
pub const FULL_MIX_TXS: usize = 20_000;
/// Full mode: keys of the state tree benchmark.
pub const FULL_TREE_KEYS: usize = 100_000;
/// Full mode: tree update rounds.
pub const FULL_TREE_ROUNDS: usize = 50;
/// Updates per tree version.
pub const TREE_BATCH: usize = 1_000;
/// Full mode: txs sent per sequencer measurement point.
pub const FULL_SEQUENCER_TXS: usize = 20_000;
/// Full mode: repetitions per measurement.
pub const FULL_REPS: usize = 3;

impl Config {
    /// Whether `suite` is part of this run.
    pub fn runs(&self, suite: Suite) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&suite))
    }

    /// Everything in under a minute on 2 cores (release build).
    pub fn quick() -> Self {
        Self {
            mode: "quick",
            only: None,
            accounts: QUICK_ACCOUNTS,
            transfers: QUICK_TRANSFERS,
            mix_txs: QUICK_MIX_TXS,
            signatures: QUICK_TRANSFERS,
            tree: TreeParams {
                keys: QUICK_TREE_KEYS,
                batch: TREE_BATCH,
                rounds: QUICK_TREE_ROUNDS,
                proofs: 200,
            },
            da_txs: 3_000,
            rocks: RocksParams {
                base_keys: 50_000,
                batch_sizes: vec![1_000, 10_000],
                commits: 5,
            },
            sequencer: SequencerParams {
                txs: 3_000,
                clients: vec![4],
            },
            reps: 1,
            sweep: false,
        }
    }

    /// Stable figures: the issue's sizes, repeated, with the thread sweep for the chart.
    pub fn full() -> Self {
        Self {
            mode: "full",
            only: None,
            accounts: FULL_ACCOUNTS,
            transfers: FULL_TRANSFERS,
            mix_txs: FULL_MIX_TXS,
            signatures: FULL_TRANSFERS,
            tree: TreeParams {
                keys: FULL_TREE_KEYS,
                batch: TREE_BATCH,
                rounds: FULL_TREE_ROUNDS,
                proofs: 1_000,
            },
            da_txs: 12_000,
            rocks: RocksParams {
                base_keys: 200_000,
                batch_sizes: vec![1_000, 10_000],
                commits: 20,
            },
            sequencer: SequencerParams {
                txs: FULL_SEQUENCER_TXS,
                clients: vec![1, 2, 4, 8, 16],
            },
            reps: FULL_REPS,
            sweep: true,
        }
    }

    /// Seconds-long sizes for the smoke test.
    pub fn tiny() -> Self {
        Self {
            mode: "tiny",
            only: None,
            accounts: 64,
            transfers: 256,
            mix_txs: 600,
            signatures: 128,
            tree: TreeParams {
                keys: 2_000,
                batch: 100,
                rounds: 3,
                proofs: 20,
            },
            da_txs: 300,
            rocks: RocksParams {
                base_keys: 1_000,
                batch_sizes: vec![100],
                commits: 3,
            },
            sequencer: SequencerParams {
                txs: 256,
                clients: vec![2],
            },
            reps: 1,
            sweep: true,
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The sizes.
    pub config: Config,
    /// Threads used for the "all threads" figures.
    pub threads: usize,
    /// Every figure.
    pub table: Table,
    /// Phase breakdowns and other remarks.
    pub notes: Vec<String>,
    /// Replay throughput per thread count (and the signature ceiling), for the chart.
    pub sweep: Vec<Series>,
    /// Sequencer throughput per client count, for the second chart.
    pub concurrency: Vec<Series>,
    /// Where the run happened.
    pub machine: Machine,
    /// When the run started.
    pub date: String,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
}

/// Run every benchmark of `config`, the parallel figures on `threads` threads.
pub fn run(config: &Config, threads: usize) -> anyhow::Result<Report> {
    let started = Instant::now();
    let machine = Machine::detect();
    let date = machine::utc_now();
    let threads = threads.max(1);
    let mut table = Table::default();
    let mut notes = Vec::new();
    let progress = |what: &str| eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());

    progress("generating accounts and signed txs");
    let accounts = Accounts::generate(config.accounts)?;
    let genesis = accounts.genesis()?;
    let pre = PreState::genesis(&genesis)?;
    let ctx = workload::block_context();
    let transfers = workload::transfers(&accounts, config.transfers)?;
    let mix = workload::mix(&accounts, config.mix_txs)?;

    progress("benchmark 1: signature ceiling");
    let sig_inputs = signatures::prepare(&transfers[..config.signatures.min(transfers.len())]);
    let ceiling = signatures::SigCeiling::measure(&sig_inputs, threads, config.reps)?;
    table.extend(ceiling.rows());

    let sweep_threads: Vec<usize> = if config.sweep {
        (1..=threads).collect()
    } else {
        Vec::new()
    };
    let mut sweep = Vec::new();
    if config.sweep {
        let mut points = Vec::new();
        for &n in &sweep_threads {
            let v = match n {
                1 => ceiling.one,
                n if n == threads => ceiling.all,
                n => signatures::verifications_per_sec(&sig_inputs, n, config.reps)?,
            };
            points.push((n, v));
        }
        sweep.push(Series {
            label: "signature ceiling (sig/s)".into(),
            points,
        });
    }

    let mut replays: Vec<ReplayFigures> = Vec::new();
    let replay_workloads = if config.runs(Suite::Replay) {
        vec![("transfers", &transfers), ("mix", &mix)]
    } else {
        Vec::new()
    };
    for (name, txs) in replay_workloads {
        progress(&format!("benchmark 3: replay of {} {name}", txs.len()));
        let figures = replay::measure(name, &pre, &ctx, txs, threads, config.reps, &sweep_threads)?;
        table.extend(figures.rows(&ceiling));
        notes.push(figures.phase_note());
        if figures.failed_calls > 0 {
            notes.push(format!(
                "replay {name}: {} calls failed (the workload should have none)",
                figures.failed_calls
            ));
        }
        if config.sweep {
            sweep.push(Series {
                label: format!("replay {name} (tx/s)"),
                points: figures.sweep.clone(),
            });
        }
        replays.push(figures);
        progress(&format!(
            "benchmark 3: stint-verifier replay_batch of {name}"
        ));
        let verifier = replay::measure_verifier(name, &genesis, txs, threads, config.reps)?;
        table.extend(verifier.rows());
    }
    let points = if config.runs(Suite::Sequencer) {
        progress("benchmark 2: sequencer over JSON-RPC");
        sequencer::measure(
            &config.sequencer,
            &accounts,
            &[("transfers", transfers), ("mix", mix)],
        )?
    } else {
        Vec::new()
    };
    let mut concurrency: Vec<Series> = Vec::new();
    for point in &points {
        table.extend(point.rows(&ceiling));
        notes.push(point.note());
        let label = format!("sequencer {} (tx/s)", point.workload);
        match concurrency.iter_mut().find(|s| s.label == label) {
            Some(series) => series.points.push((point.clients, point.tx_per_sec)),
            None => concurrency.push(Series {
                label,
                points: vec![(point.clients, point.tx_per_sec)],
            }),
        }
    }
    if concurrency.iter().all(|s| s.points.len() < 2) {
        concurrency.clear();
    } else {
        let clients: Vec<usize> = concurrency[0].points.iter().map(|p| p.0).collect();
        concurrency.push(Series {
            label: format!("signature ceiling, {threads} threads (sig/s)"),
            points: clients.iter().map(|&c| (c, ceiling.all)).collect(),
        });
    }

    if config.runs(Suite::Tree) {
        progress("benchmark 4: state tree vs jmt");
        let tree = state_tree::measure(&config.tree, threads)?;
        table.extend(tree.rows());
    }

    if config.runs(Suite::Da) {
        progress("benchmark 5: DA bytes per tx");
        let da_accounts = &accounts;
        let payroll = workload::mix_with(da_accounts, config.da_txs / 8, &MixWeights::PAYROLL)?;
        let payments = payroll.len() * MIX_PAYROLL_PAYMENTS;
        for (name, txs, unit) in [
            (
                "transfers",
                workload::transfers(da_accounts, config.da_txs)?,
                None,
            ),
            ("payroll", payroll, Some(("payment", payments))),
            (
                "task-flow",
                workload::mix_with(da_accounts, config.da_txs, &MixWeights::TASK_FLOW)?,
                None,
            ),
        ] {
            let figures = da::measure(name, &genesis, txs, unit)?;
            table.extend(figures.rows());
        }
    }

    if config.runs(Suite::Rocks) {
        progress("benchmark 6: RocksDB commits");
        for figures in rocks::measure(&config.rocks)? {
            table.extend(figures.rows(config.rocks.base_keys));
        }
    }
    progress("done");

    Ok(Report {
        config: config.clone(),
        threads,
        table,
        notes,
        sweep,
        concurrency,
        machine,
        date,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Report {
    /// The results file: table, machine, date, notes and links to the `charts` (title, file).
    pub fn to_markdown(&self, charts: &[(&str, &str)]) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "# Stint benchmark results\n");
        let _ = writeln!(
            out,
            "Written by `cargo run -p stint-bench --release` ({} mode). Every ratio compares two \
             figures measured in this same run on this machine; each timed figure is the best of \
             {} run(s).\n",
            self.config.mode, self.config.reps
        );
        let _ = writeln!(out, "- Date: {}", self.date);
        let _ = writeln!(
            out,
            "- Machine: {} logical cores, {}, {:.1} GiB RAM",
            m.cores, m.cpu, m.ram_gib
        );
        if let Some(load) = m.load_at_start {
            let _ = writeln!(
                out,
                "- 1-minute load average at start: {load:.2} (above 0 means other work shared the machine)"
            );
        }
        let _ = writeln!(
            out,
            "- Parallel figures: {} threads; run took {:.0} s\n",
            self.threads, self.seconds
        );
        out.push_str(&self.table.to_markdown());
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        for (title, file) in charts {
            let _ = writeln!(out, "\n## {title}\n\n![{title}]({file})");
        }
        out
    }

    /// Write `RESULTS.md` and the charts (where there is a sweep) into `dir`.
    pub fn write_results(&self, dir: &Path) -> anyhow::Result<()> {
        let mut charts = Vec::new();
        for (title, file, x, series) in [
            (
                "Replay throughput versus threads",
                "replay-threads.svg",
                "threads",
                &self.sweep,
            ),
            (
                "Sequencer throughput versus concurrent clients",
                "sequencer-clients.svg",
                "concurrent JSON-RPC clients",
                &self.concurrency,
            ),
        ] {
            if !series.is_empty() {
                chart::draw_chart(&dir.join(file), title, x, series)?;
                charts.push((title, file));
            }
        }
        std::fs::write(dir.join("RESULTS.md"), self.to_markdown(&charts))?;
        Ok(())
    }
}
