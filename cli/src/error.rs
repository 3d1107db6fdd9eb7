//! The CLI's errors: each says what went wrong in words a user can act on.

use std::path::PathBuf;

/// Errors of the `stint` command's library.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or input files (the user's to fix).
    #[error("{0}")]
    Usage(String),
    /// A key file cannot be read, written or trusted.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The node could not be reached.
    #[error("cannot reach the node at {url}: {reason} (is it running? set --rpc or STINT_RPC)")]
    Unreachable {
        /// The RPC URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{method}: {message} (code {code})")]
    Rpc {
        /// The method called.
        method: String,
        /// JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The node's answer did not have the expected shape.
    #[error("unexpected answer to {method}: {reason}")]
    Protocol {
        /// The method called.
        method: String,
        /// Why.
        reason: String,
    },
    /// The transaction was executed but failed (its effects were reverted; the fee was paid).
    #[error("transaction {txid} failed: {reason}")]
    TxFailed {
        /// The txid.
        txid: String,
        /// The receipt's error.
        reason: String,
    },
    /// The transaction was dropped (its batch was invalidated and it could not be re-included).
    #[error("transaction {txid} was dropped")]
    TxDropped {
        /// The txid.
        txid: String,
    },
    /// The node went away while a tx was being sent: it may or may not have arrived.
    #[error(
        "cannot reach the node at {url} to send {txid}: {reason}. It may or may not have \
         arrived: run the same command again once the node is back (it sends this same \
         transaction, not a second one)"
    )]
    SendInDoubt {
        /// The txid.
        txid: String,
        /// The RPC URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// `--wait` lost the node for longer than `--reconnect-secs`.
    #[error(
        "lost the node at {url} for {secs}s while waiting for {txid} (last seen: {seen}): \
         {reason}. The transaction was sent: run the same command again to go on waiting (it \
         sends no second transaction), or raise --reconnect-secs"
    )]
    WaitLost {
        /// The txid.
        txid: String,
        /// The RPC URL.
        url: String,
        /// Why.
        reason: String,
        /// The last level seen.
        seen: String,
        /// `--reconnect-secs`.
        secs: u64,
    },
    /// `--wait` ran out of time.
    #[error(
        "timed out after {secs}s waiting for {txid} to become {level} (last seen: {seen}); it \
         was sent: run the same command again to go on waiting (it sends no second \
         transaction), or raise --wait-timeout"
    )]
    WaitTimeout {
        /// The txid.
        txid: String,
        /// The level waited for.
        level: String,
        /// The last level seen.
        seen: String,
        /// The timeout.
        secs: u64,
    },
    /// `stint status` found the network unhealthy; the binary exits with `code`.
    #[error("unhealthy: {problems}")]
    Unhealthy {
        /// The exit code (see `stint status --help`).
        code: u8,
        /// What is wrong, worst first.
        problems: String,
    },
}

impl CliError {
    /// The process exit code for this error: 1, or the code `stint status` chose.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Unhealthy { code, .. } => *code,
            _ => 1,
        }
    }
}
