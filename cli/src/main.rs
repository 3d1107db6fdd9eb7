//! The `stint` command: operators run `stint sequencer` / `stint verifier`, employers and workers
//! use the wallet and contract commands (DESIGN §5).
//!
//! Logs go to stderr (`RUST_LOG` sets the filter; default `info` for node commands, `warn` for
//! wallet commands). Every error exits non-zero with its reason on stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stint::{
    run_deposit, run_devnet, run_genesis, run_wallet, CliError, DepositArgs, DevnetArgs,
    GenesisArgs, WalletCommand, WalletOpts,
};
use stint_sequencer::SequencerArgs;
use stint_verifier::VerifierArgs;

#[derive(Debug, Parser)]
#[command(
    name = "stint",
    version,
    about = "Stint: an optimistic rollup for wage and task settlement on Bitcoin"
)]
struct Cli {
    #[command(flatten)]
    wallet: WalletOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole network here: bitcoind (regtest), a sequencer, a verifier, funded accounts.
    Devnet(DevnetArgs),
    /// Prepare a network against a running regtest bitcoind: fund wallets, make keys, write the
    /// genesis (used by docker-compose.yml).
    Genesis(GenesisArgs),
    /// Run a sequencer (TOML config; `STINT_*` variables and flags override it).
    Sequencer(SequencerArgs),
    /// Run a verifier (watchtower) that reads Bitcoin only.
    Verifier(VerifierArgs),
    #[command(flatten)]
    Wallet(WalletCommand),
    /// Deposit bitcoin: pay sats from a bitcoind wallet to the bridge, tagged for an account.
    Deposit(DepositArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Wallet(_) | Command::Deposit(_) => "warn",
        // The nodes' own progress (batches sealed, anchored, verified, final), without the
        // lower layers' chatter.
        Command::Devnet(_) => "info,anchor=warn,stint_rpc=warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
    let result: anyhow::Result<()> = runtime.block_on(async {
        match cli.command {
            Command::Devnet(args) => Ok(run_devnet(&args, shutdown_signal()).await?),
            Command::Genesis(args) => {
                let genesis = run_genesis(&args).await?;
                println!("{}", genesis.to_json());
                Ok(())
            }
            Command::Sequencer(args) => Ok(stint_sequencer::run(&args).await?),
            Command::Verifier(args) => {
                let config = args.resolve()?;
                Ok(stint_verifier::run(config, shutdown_signal()).await?)
            }
            Command::Wallet(command) => Ok(run_wallet(command, &cli.wallet).await?),
            Command::Deposit(args) => Ok(run_deposit(&args, &cli.wallet).await?),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stint: {e:#}");
            // `stint status` picks its own code for each kind of trouble; everything else is 1.
            ExitCode::from(e.downcast_ref::<CliError>().map_or(1, CliError::exit_code))
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: a signal that arrives while a node is still starting (a
/// devnet funding its accounts, say) is kept and stops it cleanly once it listens, instead of
/// killing the process with the signal's default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
