//! # stint-state
//!
//! Authenticated state for Stint: a compact sparse Merkle tree over 256-bit keys, its proofs, and
//! the views the state transition function reads through. This crate knows nothing of
//! transactions.
//!
//! ## Key components
//! - [`StateView`]: the read interface the STF and the fraud-proof judge are written against;
//!   [`ChangeSet`] is a batch of writes (`None` deletes).
//! - [`Overlay`]: uncommitted writes over any view (nestable, so a failed call can be discarded).
//! - [`SparseMerkleTree`]: the compact sparse Merkle tree (leaves at the shortest unique prefix,
//!   SHA-256, domain-separated leaf/internal hashes; exact rules in [`tree`]). `get`, `insert`,
//!   `delete`, and the copy-on-write batch update `apply` (rayon-parallel for large batches,
//!   bit-identical to sequential) returning a [`TreeUpdate`] (new root, new nodes and values,
//!   stale nodes). [`TreeView`] is one version as a [`StateView`].
//! - [`NodeStore`]: content-addressed node storage; [`MemoryNodeStore`] in memory and, with the
//!   `rocksdb` feature, `RocksNodeStore` with atomically committed versioned roots, rollback
//!   (`truncate_above`) and pruning (`prune_below`) through a stale-node index.
//! - [`SparseMerkleProof`]: inclusion/exclusion proof for one key; [`MultiProof`]: deduplicated
//!   proof for a set of keys. Pure verification, canonical strict borsh encoding, bounded sizes.
//! - [`StateWitness`] / [`WitnessView`]: a multiproof plus values, verified against a root; a
//!   stateless [`StateView`] that answers covered keys exactly, refuses others with
//!   [`InvalidState::KeyNotInWitness`], and computes the root after inserts, updates and deletes.
//! - [`RecordingView`]: records every key read through it (to build a witness for a segment).
//! - [`tagged_hash`], [`sha256`], [`leaf_hash`], [`internal_hash`], [`EMPTY_HASH`]: hashing.
//!
//! ## Usage
//! ```
//! use std::collections::BTreeSet;
//! use stint_state::{
//!     ChangeSet, MemoryNodeStore, SparseMerkleTree, StateView, WitnessView, EMPTY_HASH,
//! };
//!
//! let mut tree = SparseMerkleTree::new(MemoryNodeStore::new());
//! let changes = ChangeSet::from([([1; 32], Some(b"one".to_vec())), ([2; 32], Some(b"two".to_vec()))]);
//! let update = tree.apply(&EMPTY_HASH, &changes)?;
//! let root = update.root;
//! tree.store_mut().write_owned(update);
//! assert_eq!(tree.get(&root, &[1; 32])?, Some(b"one".to_vec()));
//!
//! // A stateless view of the keys a computation touches, checked against the root alone.
//! let witness = tree.witness(&root, &BTreeSet::from([[1; 32], [3; 32]]))?;
//! let mut view = WitnessView::new(root, &witness)?;
//! assert_eq!(view.get(&[3; 32])?, None);
//! let delete = ChangeSet::from([([1; 32], None)]);
//! assert_eq!(view.apply(&delete)?, tree.apply(&root, &delete)?.root);
//! # Ok::<(), stint_state::StateError>(())
//! ```
//!
//! [`Overlay`] stages writes over any view:
//! ```
//! use std::collections::BTreeMap;
//! use stint_state::{Overlay, StateView};
//!
//! let base: BTreeMap<[u8; 32], Vec<u8>> = BTreeMap::new();
//! let mut overlay = Overlay::new(&base);
//! overlay.put([7; 32], b"value".to_vec());
//! assert_eq!(overlay.get(&[7; 32]).unwrap(), Some(b"value".to_vec()));
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

mod error;
mod hash;
mod node;
mod overlay;
mod proof;
mod recording;
#[cfg(feature = "rocksdb")]
mod rocks;
mod store;
pub mod tree;
mod view;
mod witness;

pub use error::{InvalidState, StateError};
pub use hash::{internal_hash, leaf_hash, sha256, tagged_hash, Hash, Key, EMPTY_HASH};
pub use node::{InternalNode, LeafNode, Node};
pub use overlay::Overlay;
pub use proof::{MultiProof, ProofNode, SparseMerkleProof, MAX_MULTIPROOF_NODES, MAX_PROOF_DEPTH};
pub use recording::RecordingView;
#[cfg(feature = "rocksdb")]
pub use rocks::{RocksNodeStore, DEFAULT_NODE_CACHE_ITEMS};
pub use store::{DigestHasher, DigestMap, MemoryNodeStore, NodeStore};
pub use tree::{SparseMerkleTree, TreeUpdate, TreeView, DEFAULT_PARALLEL_THRESHOLD};
pub use view::{ChangeSet, StateView};
pub use witness::{StateWitness, WitnessView, MAX_WITNESS_VALUES};
