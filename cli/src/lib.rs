//! # stint (the command)
//!
//! The `stint` command's library: everything the binary does that is worth testing on its own.
//!
//! ## Key components
//! - [`Devnet`] / [`run_devnet`] (`stint devnet`): bitcoind in regtest, a sequencer and a
//!   verifier in one process, funded demo accounts, a block every `--block-interval` seconds,
//!   `devnet.json` and `env.sh` in the devnet folder; resumable. [`run_genesis`]
//!   (`stint genesis`) prepares a network against a bitcoind that runs elsewhere.
//! - [`WalletCommand`] and friends ([`TaskCommand`], [`StreamCommand`], [`KeyCommand`]): the
//!   wallet and contract commands of DESIGN §5 as clap subcommands, run by [`run_wallet`]. They
//!   check what can be checked before sending (address checksums, balances, roles on a task or
//!   stream), sign with the `--key` file, send over JSON-RPC, and with `--wait` block until
//!   `soft`, `anchored` or `final`, printing progress on stderr.
//! - [`Key`] / [`KeyFile`]: key files `{"address", "secret_key"}` with mode 0600.
//! - [`RpcClient`]: a small JSON-RPC 2.0 client.
//! - [`parse_payroll_csv`]: `address,amount` rows for `stint payroll --csv`.
//! - [`CliError`]: every failure with a reason a user can act on; the binary prints it on
//!   stderr and exits non-zero.
//!
//! ## Usage
//! ```no_run
//! # async fn demo() -> Result<(), stint::CliError> {
//! use stint::{run_wallet, WalletCommand, WalletOpts};
//! let opts = WalletOpts { rpc: "http://127.0.0.1:7545".into(), key: Some("alice.json".into()), json: true, field: None };
//! run_wallet(WalletCommand::Account { address: None }, &opts).await?;
//! # Ok(()) }
//! ```

mod client;
mod deposit;
mod devnet;
mod error;
mod forced;
mod journal;
mod keys;
mod payroll;
mod precheck;
mod show;
mod status;
mod text;
mod time;
mod wallet;

pub use client::{RpcClient, DEFAULT_REQUEST_TIMEOUT};
pub use deposit::{
    run_deposit, DepositArgs, DepositWait, DEFAULT_DEPOSIT_FEE_RATE, DEFAULT_DEPOSIT_TIMEOUT_SECS,
};
pub use devnet::{
    run_devnet, run_genesis, DemoAccount, Devnet, DevnetArgs, DevnetError, GenesisArgs,
    DEFAULT_BLOCK_INTERVAL_SECS, DEFAULT_DEVNET_DIR, DEFAULT_DEVNET_RPC_PORT,
    DEFAULT_DEVNET_VERIFIER_RPC_PORT, DEMO_ACCOUNTS, DEMO_BALANCE, DEVNET_BATCH_INTERVAL_MS,
    DEVNET_BRIDGE_SIGNERS, DEVNET_BRIDGE_THRESHOLD, DEVNET_CHAIN_ID, DEVNET_MIN_DEPOSIT,
    DEVNET_POLL_INTERVAL_MS,
};
pub use error::CliError;
pub use forced::{BitcoindOpts, DEFAULT_BTC_WALLET, DEFAULT_FORCED_FEE_RATE};
pub use keys::{write_key_file, Key, KeyFile};
pub use payroll::parse_payroll_csv;
pub use status::{
    DEFAULT_STALL_SECS, EXIT_ANCHORING_STALLED, EXIT_VERIFIER_DISAGREES, EXIT_VERIFIER_UNREACHABLE,
};
pub use wallet::{
    parse_address, run_wallet, KeyCommand, SendOpts, StreamCommand, TaskCommand, WaitLevel,
    WalletCommand, WalletOpts, DEFAULT_FEE, DEFAULT_RECONNECT_SECS, DEFAULT_RPC_URL,
    DEFAULT_VERIFIER_RPC_URL, DEFAULT_WAIT_TIMEOUT_SECS,
};
