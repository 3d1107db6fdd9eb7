//! # stint-protocol
//!
//! The rules every Stint node shares, as pure functions and state machines over values: no I/O,
//! no clocks, no randomness. Bitcoin blocks come in as `bitcoin::Block` values, state through the
//! `stint-state` traits, execution through `stint-contracts`.
//!
//! ## Key components
//! - [`Genesis`] (module `genesis`): chain parameters (`chain_id`, anchor key, dispute window `W`,
//!   checkpoint interval `K`, batch limits, timestamp drift, fee recipient, allocations, L1 start),
//!   loaded strictly from JSON; its hash and genesis state root.
//! - [`merkle_root`] / [`MerkleProof`] (module `merkle`): the small binary Merkle tree over lists
//!   of hashes used for `tx_root` and `trace_root`.
//! - [`BatchHeader`] / [`Batch`] (module `batch`): the batch, its checkpoints and segments, strict
//!   encoding, and the typestate [`Batch<Unchecked>`] → [`Batch::check`] → [`Batch<Checked>`]
//!   enforcing every rule that needs no execution ([`BatchError`]).
//! - [`segment_cost`] / [`SEGMENT_BUDGET`] (module `budget`): the structural bound on the fraud
//!   proof of a segment that makes every fraud provable within one challenge.
//! - [`BatchBuilder`] (module `builder`): builds the honest [`SealedBatch`] from a pre-state and
//!   candidate txs (dropping invalid ones), and [`BatchBuilder::replay`]s a batch to find its first
//!   fraudulent segment.
//! - [`Envelope`] (module `envelope`): the taproot envelope codec that carries batches and
//!   challenges on Bitcoin, and the `OP_RETURN` index hint.
//! - [`L1Message`] (module `l1`, protocol v2): what Bitcoin feeds the rollup — deposits to the
//!   genesis [`Bridge`] address (tagged with a [`DepositTag`] naming the L2 account) and forced
//!   txs in kind-3 envelopes — found in a block by [`block_messages`].
//! - [`Derivation`] (module `derivation`): the state machine that turns Bitcoin blocks (with
//!   reorgs) into the canonical chain of anchored batches, judges challenges, invalidates and
//!   finalizes batches ([`DerivationEvent`]).
//! - [`FraudProof`] / [`Judge`] (module `fraud`): one-round fraud proofs against one segment,
//!   the pure judge ([`Verdict`]), and [`build_fraud_proof`] for provers.
//!
//! ## Usage
//! ```no_run
//! use stint_protocol::{BatchBuilder, BuildParams, Derivation, Genesis, L1Origin, ParentFacts};
//! use stint_state::MemoryNodeStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let genesis = Genesis::from_json(&std::fs::read_to_string("genesis.json")?)?;
//! let update = genesis.state_update()?;
//! let mut store = MemoryNodeStore::new();
//! store.write(&update);
//!
//! // Sequencer: build batch 1 on top of genesis.
//! let params = BuildParams {
//!     parent: ParentFacts::genesis(&genesis, update.root),
//!     timestamp: 1_700_000_000,
//!     l1_origin: L1Origin { height: genesis.l1_start_height, hash: [0; 32] },
//! };
//! let sealed = BatchBuilder::new(&genesis).build(&store, &params, Vec::new())?;
//! let _payload = sealed.batch.encode()?; // goes into an `Envelope` of kind `Batch`
//!
//! // Every node: derive the canonical chain from Bitcoin blocks.
//! let mut derivation = Derivation::new(genesis, update.root);
//! # let block: bitcoin::Block = unimplemented!();
//! for event in derivation.connect_block(0, &block)? {
//!     println!("{event:?}");
//! }
//! # Ok(())
//! # }
//! ```
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod batch;
mod budget;
mod builder;
mod derivation;
mod envelope;
mod fraud;
mod genesis;
mod l1;
mod merkle;
mod payout;

pub use batch::*;
pub use budget::*;
pub use builder::*;
pub use derivation::*;
pub use envelope::*;
pub use fraud::*;
pub use genesis::*;
pub use l1::*;
pub use merkle::*;
pub use payout::*;
