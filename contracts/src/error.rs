//! Errors of the contracts crate: *invalid* input (carrying the offending index and the reason)
//! versus *internal* faults (a state view that cannot answer).

use stint_state::{Key, StateError};

/// Why a bech32m address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not a bech32 string at all (bad characters, mixed case, missing separator, ...).
    #[error("malformed address: {0}")]
    Malformed(String),
    /// A human-readable part other than `stint`.
    #[error("wrong address prefix {0:?}, expected \"stint\"")]
    WrongHrp(String),
    /// The checksum does not verify.
    #[error("address checksum does not verify")]
    BadChecksum,
    /// A valid bech32 (BIP173) checksum where bech32m (BIP350) is required.
    #[error("address uses the bech32 checksum, expected bech32m")]
    WrongVariant,
    /// The payload is not 32 bytes.
    #[error("address payload is {0} bytes, expected 32")]
    WrongLength(usize),
    /// Valid checksum but not the canonical encoding (non-zero padding bits).
    #[error("address is not canonically encoded")]
    NonCanonical,
    /// The 32 bytes are not an x-only public key: nobody could ever sign for the account.
    #[error(
        "address is not a public key: nobody could ever spend from it, so units sent there \
         would be lost"
    )]
    NotAKey,
}

/// Why bytes do not decode as a transaction or record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than the bound for its type.
    #[error("encoding is {size} bytes, the limit is {max}")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// Borsh rejected the input (truncation, trailing bytes, bad enum/option/bool tag).
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// Decoded, but re-encoding does not give the same bytes.
    #[error("non-canonical encoding")]
    NonCanonical,
    /// A list is longer than its bound.
    #[error("{what} has {len} entries, the limit is {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
}

/// Why a transaction is *invalid* (its batch is invalid as a whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTxReason {
    /// `chain_id` is not the chain's.
    #[error("wrong chain id {found}, expected {expected}")]
    WrongChainId {
        /// The tx's chain id.
        found: u64,
        /// The chain's id.
        expected: u64,
    },
    /// The signature does not verify against `from` (or `from` is not a valid x-only key).
    #[error("signature does not verify")]
    BadSignature,
    /// The nonce is not the sender's next nonce.
    #[error("nonce {found}, expected {expected}")]
    WrongNonce {
        /// The tx's nonce.
        found: u64,
        /// The account's next nonce.
        expected: u64,
    },
    /// The sender's nonce is at `u64::MAX`; no further tx can be executed.
    #[error("nonce exhausted")]
    NonceExhausted,
    /// The sender's balance is below the fee.
    #[error("balance {balance} cannot pay fee {fee}")]
    CannotPayFee {
        /// The sender's balance.
        balance: u64,
        /// The fee.
        fee: u64,
    },
    /// The segment's fee total, or the fee recipient's balance plus it, exceeds `u64::MAX`.
    ///
    /// Unreachable when genesis supply fits in a `u64` (value is conserved).
    #[error("fee total overflows")]
    FeeOverflow,
}

/// Execution of a segment or batch could not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The tx at `index` (within the executed slice) is invalid: the batch is invalid.
    #[error("tx {index} is invalid: {reason}")]
    Invalid {
        /// Index of the offending tx within the executed slice (batch-wide for batch functions).
        index: usize,
        /// What is wrong with it.
        reason: InvalidTxReason,
    },
    /// A stored record does not decode (our fault, or a corrupt witness).
    #[error("record under key {} does not decode: {reason}", hex::encode(.key))]
    CorruptRecord {
        /// The key.
        key: Key,
        /// The decode failure.
        reason: DecodeError,
    },
    /// The segment length `k` is zero.
    #[error("segment length must be at least 1")]
    ZeroSegmentLength,
    /// A segment range lies outside the txs (or ends before it starts).
    #[error("segment range outside the txs")]
    SegmentOutOfRange,
    /// The state view failed (for example a witness that does not cover a key).
    #[error("state view failed: {0}")]
    Internal(#[from] StateError),
}

/// A signature check of a batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature of tx {index} does not verify")]
pub struct BadSignature {
    /// Index of the first tx whose signature does not verify.
    pub index: usize,
}

/// Signing failed (the BIP340 nonce or signature scalar came out zero; negligible probability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("schnorr signing failed")]
pub struct SignError;
