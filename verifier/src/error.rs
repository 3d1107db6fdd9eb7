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
    /// The verifier's storage failed (internal): a read or write failed (`corrupt: false`,
    /// perhaps passing, as a full disk), or a record does not decode (`corrupt: true`).
    #[error("storage: {what}{}", cause_text(source))]
    Storage {
        /// What was being read or written.
        what: String,
        /// The cause.
        #[source]
        source: Option<BoxError>,
        /// Whether stored data is damaged (retrying cannot help).
        corrupt: bool,
    },
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

/// A boxed cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Whether a failed step may succeed when retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// It may pass (bitcoind unreachable, a storage write failing on a full disk): the loop
    /// retries at its next poll.
    Transient,
    /// It will not pass by itself (damaged data, a bug, a bad config): the loop keeps retrying so
    /// the node stays up for its RPC, but logs it at error level for the operator.
    Fatal,
}

fn cause_text(source: &Option<BoxError>) -> String {
    source
        .as_ref()
        .map(|s| format!(": {s}"))
        .unwrap_or_default()
}

impl From<StateError> for VerifierError {
    fn from(e: StateError) -> Self {
        VerifierError::storage("state tree", e)
    }
}

impl From<rocksdb::Error> for VerifierError {
    fn from(e: rocksdb::Error) -> Self {
        VerifierError::storage("RocksDB", e)
    }
}

impl VerifierError {
    /// A failed read or write while doing `what`.
    pub fn storage(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Storage {
            what: what.into(),
            source: Some(Box::new(source)),
            corrupt: false,
        }
    }

    /// A stored record that is damaged (`what` says which and how).
    pub fn corrupt(what: impl Into<String>) -> Self {
        Self::Storage {
            what: what.into(),
            source: None,
            corrupt: true,
        }
    }

    /// A stored record that does not decode, with the decoder's reason.
    pub fn corrupt_by(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Storage {
            what: what.into(),
            source: Some(Box::new(source)),
            corrupt: true,
        }
    }

    /// Whether retrying may help.
    pub fn severity(&self) -> Severity {
        match self {
            VerifierError::Storage { corrupt: false, .. } => Severity::Transient,
            _ if self.is_transient() => Severity::Transient,
            _ => Severity::Fatal,
        }
    }

    /// Whether retrying later may succeed (bitcoind unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            VerifierError::Bitcoind(e) => e.is_transient(),
            VerifierError::Anchor(AnchorError::Rpc(e)) => e.is_transient(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn severity_and_causes() {
        let disk = VerifierError::storage(
            "writing a verified batch",
            std::io::Error::other("No space left on device"),
        );
        assert_eq!(disk.severity(), Severity::Transient);
        assert!(disk
            .source()
            .is_some_and(|s| s.to_string().contains("No space")));
        assert!(
            disk.to_string()
                .contains("writing a verified batch: No space"),
            "{disk}"
        );
        assert!(
            !disk.is_transient(),
            "storage is not bitcoind being unreachable"
        );
        let damaged = VerifierError::corrupt("batch body 7");
        assert_eq!(damaged.severity(), Severity::Fatal);
        let down = VerifierError::Bitcoind(BitcoindError::Transport("refused".into()));
        assert_eq!(down.severity(), Severity::Transient);
        assert!(down.is_transient());
        assert_eq!(
            VerifierError::Internal("bug".into()).severity(),
            Severity::Fatal
        );
    }
}
