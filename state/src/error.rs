//! Errors of the state crate, split into *invalid* input and *internal* faults.

use crate::Key;

/// Everything that can go wrong reading or updating state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The input breaks a rule (a proof that does not verify, a key a witness does not cover).
    #[error("invalid: {0}")]
    Invalid(#[from] InvalidState),
    /// Our fault or I/O: storage failures, missing nodes in our own store.
    #[error("internal: {0}")]
    Internal(String),
}

/// Ways an input to the state layer can be invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidState {
    /// A stateless view was asked about a key its witness does not cover.
    #[error("key {} is not covered by the witness", hex::encode(.0))]
    KeyNotInWitness(Key),
    /// A proof or witness does not verify against the expected root.
    #[error("proof does not verify: {0}")]
    BadProof(String),
    /// A proof or witness is not in canonical form, or its encoding is malformed or too large.
    #[error("malformed proof: {0}")]
    MalformedProof(String),
}
