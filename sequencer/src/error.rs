//! Errors: *invalid input* (a bad config, a refused transaction) versus *internal* faults
//! (storage, bitcoind, bugs). Invalid input changes nothing.

use std::path::PathBuf;

/// Application error codes of the sequencer's JSON-RPC methods (positive, as the JSON-RPC
/// framework reserves the negative range).
pub mod codes {
    /// The transaction does not decode (bad hex, bad encoding, bad JSON shape).
    pub const INVALID_TRANSACTION: i64 = 1;
    /// The transaction is for another chain.
    pub const WRONG_CHAIN: i64 = 2;
    /// The signature does not verify.
    pub const INVALID_SIGNATURE: i64 = 3;
    /// The nonce was already used.
    pub const NONCE_TOO_LOW: i64 = 4;
    /// The nonce is too far above the account's next nonce.
    pub const NONCE_GAP_TOO_LARGE: i64 = 5;
    /// The fee is below the sequencer's minimum.
    pub const FEE_TOO_LOW: i64 = 6;
    /// The sender cannot pay the fee (with its other pending txs).
    pub const FEE_UNPAYABLE: i64 = 7;
    /// A tx with the same nonce is pending and this one does not pay a higher fee.
    pub const REPLACEMENT_UNDERPRICED: i64 = 8;
    /// The same tx is already pending or executed.
    pub const ALREADY_KNOWN: i64 = 9;
    /// The mempool (or the sender's share of it) is full.
    pub const MEMPOOL_FULL: i64 = 10;
    /// The transaction is larger than allowed.
    pub const TOO_LARGE: i64 = 11;
    /// The requested object does not exist.
    pub const NOT_FOUND: i64 = 12;
    /// The tx with this nonce is being sealed into a batch and cannot be replaced.
    pub const BEING_SEALED: i64 = 13;
}

/// Why a transaction was refused at admission. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// It does not decode.
    #[error("invalid transaction: {0}")]
    Malformed(String),
    /// It is larger than a signed tx may be.
    #[error("transaction too large: {size} bytes, the limit is {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Its chain id is not this chain's.
    #[error("wrong chain: transaction is for chain {found}, this is chain {expected}")]
    WrongChain {
        /// The tx's chain id.
        found: u64,
        /// This chain's id.
        expected: u64,
    },
    /// Its signature does not verify against `from`.
    #[error("invalid signature")]
    InvalidSignature,
    /// The nonce was already used.
    #[error("nonce too low: {found}, the account's next nonce is {next}")]
    NonceTooLow {
        /// The tx's nonce.
        found: u64,
        /// The account's next nonce.
        next: u64,
    },
    /// The nonce leaves too large a gap.
    #[error("nonce gap too large: nonce {found}, the account's next pending nonce is {next}, at most {max} ahead are queued")]
    NonceGapTooLarge {
        /// The tx's nonce.
        found: u64,
        /// The account's next nonce after its pending txs.
        next: u64,
        /// The largest gap.
        max: u64,
    },
    /// The fee is below the minimum.
    #[error("fee too low: {fee}, the minimum is {min}")]
    FeeTooLow {
        /// The tx's fee.
        fee: u64,
        /// The minimum fee.
        min: u64,
    },
    /// The sender's balance does not cover this fee plus the fees of its other pending txs.
    #[error("fee unpayable: balance {balance} does not cover fees of {needed} for this and the account's pending transactions")]
    FeeUnpayable {
        /// The sender's balance.
        balance: u64,
        /// The fees needed.
        needed: u64,
    },
    /// A pending tx has the same nonce and the fee is not enough above its fee.
    #[error(
        "replacement underpriced: fee {fee} is below {min}, the pending transaction's fee \
         {pending} plus 10 %"
    )]
    ReplacementUnderpriced {
        /// The tx's fee.
        fee: u64,
        /// The pending tx's fee.
        pending: u64,
        /// The lowest fee that replaces it.
        min: u64,
    },
    /// The pending tx with this nonce is being sealed.
    #[error("the pending transaction with nonce {nonce} is being sealed into a batch and cannot be replaced")]
    BeingSealed {
        /// The nonce.
        nonce: u64,
    },
    /// The same tx is already pending or was executed.
    #[error("transaction already known")]
    AlreadyKnown,
    /// The mempool is full.
    #[error("mempool full: {0}")]
    MempoolFull(&'static str),
    /// The call names an account whose 32 bytes are not a public key (units sent there could
    /// never move again).
    #[error(
        "the call names an account that is not a public key ({account}, account {index} of \
         the call): nobody could ever spend from it"
    )]
    NotAKey {
        /// Position among the accounts the call names.
        index: usize,
        /// The account.
        account: stint_contracts::AccountId,
    },
}

impl Rejection {
    /// The JSON-RPC application code (see [`codes`]).
    pub fn code(&self) -> i64 {
        match self {
            Rejection::Malformed(_) => codes::INVALID_TRANSACTION,
            Rejection::TooLarge { .. } => codes::TOO_LARGE,
            Rejection::WrongChain { .. } => codes::WRONG_CHAIN,
            Rejection::InvalidSignature => codes::INVALID_SIGNATURE,
            Rejection::NonceTooLow { .. } => codes::NONCE_TOO_LOW,
            Rejection::NonceGapTooLarge { .. } => codes::NONCE_GAP_TOO_LARGE,
            Rejection::FeeTooLow { .. } => codes::FEE_TOO_LOW,
            Rejection::FeeUnpayable { .. } => codes::FEE_UNPAYABLE,
            Rejection::ReplacementUnderpriced { .. } => codes::REPLACEMENT_UNDERPRICED,
            Rejection::BeingSealed { .. } => codes::BEING_SEALED,
            Rejection::AlreadyKnown => codes::ALREADY_KNOWN,
            Rejection::MempoolFull(_) => codes::MEMPOOL_FULL,
            Rejection::NotAKey { .. } => codes::INVALID_TRANSACTION,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read or parsed.
    #[error("{}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The TOML text does not parse into a config.
    #[error("config: {0}")]
    Toml(String),
    /// A value is out of range.
    #[error("config `{field}`: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A boxed error cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a loop treats an internal error (see [`SequencerError::severity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The cause may go away by itself (bitcoind down, a full disk, an I/O error): retry.
    Transient,
    /// Retrying cannot help (corrupt or missing data, a bug, a bad config): the operator must act.
    Fatal,
}

/// Errors of the sequencer.
#[derive(Debug, thiserror::Error)]
pub enum SequencerError {
    /// Invalid input: the configuration (or a file it names) is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Invalid input: a transaction was refused.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Internal: the database failed (`source` is the I/O or engine error) or holds something
    /// unexpected (`corrupt`).
    #[error("storage: {what}{}", cause_text(source))]
    Storage {
        /// What was being done, or what is wrong.
        what: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
        /// The data is corrupt or missing (retrying cannot help), rather than the I/O failing.
        corrupt: bool,
    },
    /// Internal: talking to bitcoind failed.
    #[error("bitcoind: {what}{}", cause_text(source))]
    Bitcoind {
        /// What was being asked.
        what: String,
        /// The client's error.
        #[source]
        source: Option<BoxError>,
    },
    /// Internal: anything else that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `": cause"`, so that a log line of the error keeps its cause.
fn cause_text(source: &Option<BoxError>) -> String {
    source
        .as_ref()
        .map(|s| format!(": {s}"))
        .unwrap_or_default()
}

impl SequencerError {
    /// Whether the error is the caller's (bad input) rather than the sequencer's.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::Config(_) | Self::Rejected(_))
    }

    /// Whether a loop should retry ([`Severity::Transient`]: bitcoind, storage I/O) or stop
    /// and alert ([`Severity::Fatal`]: corrupt data, bugs, configuration). A refused
    /// transaction is the client's and counts as transient for the node.
    pub fn severity(&self) -> Severity {
        match self {
            Self::Rejected(_) | Self::Bitcoind { .. } => Severity::Transient,
            Self::Storage { corrupt, .. } if !corrupt => Severity::Transient,
            Self::Storage { .. } | Self::Config(_) | Self::Internal(_) => Severity::Fatal,
        }
    }

    /// Storage I/O failed while doing `what` (transient).
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

    /// The database holds something it should not, or lacks something it should (fatal).
    pub fn corrupt(what: impl Into<String>) -> Self {
        Self::Storage {
            what: what.into(),
            source: None,
            corrupt: true,
        }
    }

    /// Like [`SequencerError::corrupt`], with the decoding error that found it.
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

    /// A call to bitcoind (`what`) failed (transient).
    pub fn bitcoind(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Bitcoind {
            what: what.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl From<rocksdb::Error> for SequencerError {
    fn from(e: rocksdb::Error) -> Self {
        Self::storage("RocksDB", e)
    }
}

impl From<stint_state::StateError> for SequencerError {
    fn from(e: stint_state::StateError) -> Self {
        Self::storage("state tree", e)
    }
}

impl From<std::io::Error> for SequencerError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn severity_and_causes() {
        let disk = SequencerError::storage(
            "admission log",
            std::io::Error::other("No space left on device"),
        );
        assert_eq!(disk.severity(), Severity::Transient);
        assert!(disk.source().is_some(), "the cause is kept");
        assert_eq!(
            disk.to_string(),
            "storage: admission log: No space left on device"
        );
        let corrupt = SequencerError::corrupt("sealed batch 7 missing");
        assert_eq!(corrupt.severity(), Severity::Fatal);
        let down =
            SequencerError::bitcoind("getblockcount", std::io::Error::other("connection refused"));
        assert_eq!(down.severity(), Severity::Transient);
        assert_eq!(
            SequencerError::Internal("bug".into()).severity(),
            Severity::Fatal
        );
        assert_eq!(
            SequencerError::from(Rejection::AlreadyKnown).severity(),
            Severity::Transient
        );
    }
}
