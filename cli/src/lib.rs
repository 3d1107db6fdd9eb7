//! # stint (the command)
//!
//! The `stint` command's library: everything the binary does that is worth testing on its own.
//!
//! ## Key components
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
//! let opts = WalletOpts { rpc: "http://127.0.0.1:7545".into(), key: Some("alice.json".into()), json: true };
//! run_wallet(WalletCommand::Account { address: None }, &opts).await?;
//! # Ok(()) }
//! ```

mod client;
mod error;
mod keys;
mod payroll;
mod wallet;

pub use client::{RpcClient, DEFAULT_REQUEST_TIMEOUT};
pub use error::CliError;
pub use keys::{write_key_file, Key, KeyFile};
pub use payroll::parse_payroll_csv;
pub use wallet::{
    parse_address, run_wallet, KeyCommand, SendOpts, StreamCommand, TaskCommand, WaitLevel,
    WalletCommand, WalletOpts, DEFAULT_FEE, DEFAULT_RPC_URL, DEFAULT_VERIFIER_RPC_URL,
    DEFAULT_WAIT_TIMEOUT_SECS,
};
