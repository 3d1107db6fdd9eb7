//! `stint-bench`: runs Stint's benchmark suite and prints the results table.
//!
//! `--quick` runs everything at small sizes (under a minute on 2 cores); the default full mode
//! uses the sizes, repeats each measurement and writes `bench/RESULTS.md` plus the
//! replay-versus-threads chart next to it.

use std::path::PathBuf;

use clap::Parser;
use stint_bench::{run, Config, Suite};

/// Where the full mode writes its results by default: this crate's folder, as `cargo run` names
/// it (a binary built in another checkout sharing the target folder writes to this one), else as
/// it was when the binary was built.
fn default_results_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

#[derive(Debug, Parser)]
#[command(name = "stint-bench", version, about = "Stint benchmarks (issue #7)")]
struct Args {
    /// Small sizes, one repetition, no results file (under a minute on 2 cores).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// The sizes, repeated; writes RESULTS.md and the chart (the default).
    #[arg(long)]
    full: bool,
    /// Threads for the "all threads" figures (default: every available core).
    #[arg(long)]
    threads: Option<usize>,
    /// Folder for RESULTS.md and the chart in full mode [default: the `bench/` folder].
    #[arg(long)]
    results_dir: Option<PathBuf>,
    /// Do not write RESULTS.md even in full mode.
    #[arg(long)]
    no_write: bool,
    /// Run only these benchmarks (comma-separated) besides the signature ceiling; never writes
    /// RESULTS.md.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Suite>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = if args.quick {
        Config::quick()
    } else {
        Config::full()
    };
    if !args.only.is_empty() {
        config.only = Some(args.only.iter().copied().collect());
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let report = run(&config, threads)?;
    println!(
        "stint-bench {} mode, {} threads, {} cores ({}), load average at start {}",
        config.mode,
        report.threads,
        report.machine.cores,
        report.machine.cpu,
        report
            .machine
            .load_at_start
            .map_or_else(|| "unknown".into(), |l| format!("{l:.2}")),
    );
    println!("{}", report.table.to_text());
    for note in &report.notes {
        println!("note: {note}");
    }
    println!("took {:.1} s", report.seconds);
    if config.mode == "full" && !args.no_write && config.only.is_none() {
        let dir = args.results_dir.unwrap_or_else(default_results_dir);
        report.write_results(&dir)?;
        println!("wrote {}", dir.join("RESULTS.md").display());
    }
    Ok(())
}
