//! Error types. Each enum separates *invalid* input (a bad config, a bad request: the caller
//! must fix it, nothing changed) from *internal* failures (storage, bitcoind, bugs).

use std::path::PathBuf;

use stint_anchor::{AnchorError, RpcError as BitcoindError};
use stint_protocol::{DerivationError, GenesisError};
use stint_state::StateError;

use crate::replay::ReplayError;

/// A configuration the verifier cannot run with (invalid input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TOML does not parse (syntax, types, unknown keys).
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value is out of range.
    #[error("invalid config field {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The genesis file is not a valid genesis.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// The challenge key file is not a valid key file.
    #[error("invalid key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl From<GenesisError> for ConfigError {
    fn from(e: GenesisError) -> Self {
        ConfigError::Genesis(e.to_string())
    }
}

/// Why the verifier stopped or a step failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// Invalid input: the configuration, genesis or key file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory belongs to another chain (invalid input: wrong directory).
    #[error("data directory holds chain {found}, not this genesis ({expected})")]
    WrongChain {
        /// Genesis hash recorded in the data directory.
        found: String,
        /// Hash of the configured genesis.
        expected: String,
    },
    /// bitcoind could not be reached or answered with an error (internal; transport errors are
    /// retried by the run loop).
    #[error("bitcoind: {0}")]
    Bitcoind(#[from] BitcoindError),
    /// Posting or tracking a challenge failed (internal).
    #[error("anchoring: {0}")]
    Anchor(#[from] AnchorError),
    /// The verifier's storage failed (internal).
    #[error("storage: {0}")]
    Storage(String),
    /// Replaying a batch failed for a reason other than fraud (internal).
    #[error("replay: {0}")]
    Replay(#[from] ReplayError),
    /// Derivation refused a block (internal: the follower and derivation disagree).
    #[error("derivation: {0}")]
    Derivation(#[from] DerivationError),
    /// The RPC server could not start.
    #[error("rpc server: {0}")]
    Rpc(String),
    /// Any other internal failure.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StateError> for VerifierError {
    fn from(e: StateError) -> Self {
        VerifierError::Storage(e.to_string())
    }
}

impl From<rocksdb::Error> for VerifierError {
    fn from(e: rocksdb::Error) -> Self {
        VerifierError::Storage(format!("rocksdb: {e}"))
    }
}

impl VerifierError {
    /// Whether retrying later may succeed (bitcoind unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            VerifierError::Bitcoind(e) => e.is_transient(),
            VerifierError::Anchor(AnchorError::Rpc(e)) => e.is_transient(),
            _ => false,
        }
    }
}
