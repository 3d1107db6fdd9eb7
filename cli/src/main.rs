//! The `stint` command.
//!
//! `stint sequencer --config FILE` runs a sequencer (flags and `STINT_*` variables override the
//! file; see `stint_sequencer::SequencerArgs`). Logs go to stderr; `RUST_LOG` sets the filter
//! (default `info`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stint_sequencer::SequencerArgs;

#[derive(Debug, Parser)]
#[command(
    name = "stint",
    version,
    about = "Stint: an optimistic rollup for wage and task settlement on Bitcoin"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a sequencer.
    Sequencer(SequencerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("stint: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match &cli.command {
        Command::Sequencer(args) => runtime.block_on(stint_sequencer::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stint: {e}");
            ExitCode::FAILURE
        }
    }
}
