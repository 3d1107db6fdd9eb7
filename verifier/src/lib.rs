//! # stint-verifier
//!
//! The Stint verifier (watchtower). It reads Bitcoin through bitcoind only — never the sequencer —
//! derives the canonical chain of anchored batches with the shared protocol rules, replays every
//! batch against its own state in parallel, and challenges a fraudulent batch on Bitcoin with a
//! fraud proof inside the dispute window. It serves its own view over JSON-RPC, so dApps can read
//! from a node that does not trust the sequencer.
//!
//! ## Key components
//! - [`replay_batch`] (module `replay`, pure): rayon-parallel replay of one batch over a node
//!   store — all signatures at once, non-conflicting txs of a segment in parallel (by access
//!   sets), Merkle updates in parallel — returning [`ReplayVerdict::Honest`] with the
//!   per-segment tree updates to persist, or [`ReplayVerdict::Fraud`] with a
//!   [`FraudProof`](stint_protocol::FraudProof) for the first wrong segment (or invalid tx) that
//!   the [`Judge`](stint_protocol::Judge) has confirmed *on its encoded bytes* (the bytes that
//!   get posted), or [`ReplayVerdict::Unprovable`] when the proof cannot be built, encoded or
//!   judged as fraud. [`replay_batch_sequential`] is the sequential reference it is
//!   bit-identical to.
//! - [`Engine`] (module `engine`): a [`Derivation`](stint_protocol::Derivation) plus the verified
//!   chain. Fed Bitcoin blocks (connect/disconnect), it keeps its verified chain a prefix of the
//!   canonical chain: rolls its state back when batches leave it (reorgs, valid challenges) and
//!   replays new ones, recording the first fraud as [`PendingFraud`].
//! - [`VerifierStore`] (module `store`): RocksDB persistence — state per batch version, verified
//!   batches, batch bodies, last processed L1 block, the challenges it posted.
//! - [`start`] / [`start_with`] / [`run`] (module `node`): the I/O loop — a
//!   [`ChainFollower`](stint_anchor::ChainFollower) on a [`BlockSource`](stint_anchor::BlockSource)
//!   (bitcoind for [`start`], any source for [`start_with`]; survives outages and reorgs), the
//!   engine on a blocking thread, then the challenger, then the published status. The
//!   [`VerifierHandle`] gives out narrow handles: [`status`](VerifierHandle::status),
//!   [`view`](VerifierHandle::view), [`metrics`](VerifierHandle::metrics).
//! - The challenger (module `challenge`): owns the anchoring of fraud proofs with its
//!   [`ChallengeKey`] and fee wallet (any [`AnchorWallet`](stint_anchor::AnchorWallet) +
//!   [`FeeSource`](stint_anchor::FeeSource), through an [`Anchorer`](stint_anchor::Anchorer)):
//!   posting, fee bumps capped by the [`FeePolicy`](stint_anchor::FeePolicy) ceiling,
//!   re-broadcasts, and `error!` alerts while a fraud's window closes unanswered. A fraud whose
//!   challenge cannot be built, encoded, judged as fraud, fit one envelope or posted is an
//!   *alert* ([`ChallengeAlert`]): an `error!` on every new L1 block, the
//!   `stint_verifier_unprovable_frauds` gauge and `stint_verifier_challenge_failures_total`
//!   counter, and an entry in `stint_verifierStatus`'s `alerts`, until its window closes.
//! - [`Status`] (module `status`): the [`Snapshot`] the loop publishes after every poll.
//! - [`VerifierView`] (module `view`): the read-only [`ChainView`](stint_api::ChainView) over the
//!   verified state, the store and the status, which the RPC serves.
//! - [`VerifierMetrics`] (module `metrics`): the loop's and the challenger's counters and gauges.
//! - RPC (module `rpc`): `stint_verifierStatus`, `stint_syncStatus`, `stint_chainInfo`,
//!   `stint_getAccount`, `stint_getTask`, `stint_getStream`, `stint_getBatch`, plus `/health` and
//!   `/metrics` (one `prometheus-client` registry: [`VerifierMetrics`] and the RPC server's
//!   metrics), over the [`VerifierView`] only.
//! - [`VerifierConfig`] / [`VerifierArgs`] (module `config`): TOML settings and their flag/`STINT_*`
//!   overrides.
//!
//! Tracing targets: `verifier`, `verifier::replay`, `verifier::challenge`.
//!
//! ## Usage
//! ```no_run
//! use stint_verifier::{run, VerifierConfig};
//!
//! # async fn demo() -> Result<(), stint_verifier::VerifierError> {
//! let config = VerifierConfig::load(std::path::Path::new("verifier.toml"))?;
//! run(config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
//!
//! The pure replay on its own:
//! ```no_run
//! use stint_protocol::{Batch, Genesis};
//! use stint_state::MemoryNodeStore;
//! use stint_verifier::{replay_batch, ReplayVerdict};
//!
//! # fn demo(genesis: &Genesis, store: &MemoryNodeStore, batch: &Batch) {
//! match replay_batch(genesis, store, batch, &[], stint_contracts::AccountId([0; 32])) {
//!     Ok(ReplayVerdict::Honest(honest)) => println!("state root {:?}", honest.state_root()),
//!     Ok(ReplayVerdict::Fraud(fraud)) => println!("fraud in segment {}", fraud.segment),
//!     Ok(ReplayVerdict::Unprovable(u)) => eprintln!("unprovable fraud ({}): {}", u.stage, u.reason),
//!     Err(e) => eprintln!("cannot replay: {e}"),
//! }
//! # }
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod challenge;
mod config;
mod engine;
mod error;
mod metrics;
mod node;
mod replay;
mod rpc;
mod status;
mod store;
mod view;

pub use challenge::ChallengeKey;
pub use config::{
    BitcoindConfig, Secret, VerifierArgs, VerifierConfig, DEFAULT_ALERT_BLOCKS,
    DEFAULT_BITCOIND_RPC, DEFAULT_BITCOIND_WALLET, DEFAULT_BUMP_AFTER_BLOCKS, DEFAULT_DATA_DIR,
    DEFAULT_FEE_CONF_TARGET, DEFAULT_FEE_RATE_SAT_VB, DEFAULT_GENESIS_FILE,
    DEFAULT_MAX_FEE_RATE_SAT_VB, DEFAULT_REPLAY_THREADS, DEFAULT_RPC_ADDR,
};
pub use engine::{BlockReport, Engine, PendingFraud};
pub use error::{BoxError, ConfigError, Severity, VerifierError};
pub use metrics::VerifierMetrics;
pub use node::{run, start, start_with, VerifierHandle};
pub use replay::{
    challenge_bytes, judge_proof, judge_proof_restating, replay_batch, replay_batch_restating,
    replay_batch_sequential, ChallengeStage, DetectedFraud, HonestBatch, ReplayError,
    ReplayVerdict, UnprovableFraud,
};
pub use rpc::{module as rpc_module, NOT_FOUND};
pub use status::{
    BatchSummary, ChallengeAlert, Snapshot, Status, HEALTH_MAX_REPLAY_LAG, POLL_SILENCE,
};
pub use store::{
    ChallengeEntry, ChallengeStatus, StoredPosted, TxRecord, VerifiedBatch, VerifierStore,
};
pub use view::VerifierView;

#[cfg(test)]
mod chain_tests;
#[cfg(test)]
mod node_tests;
#[cfg(test)]
mod tests;
