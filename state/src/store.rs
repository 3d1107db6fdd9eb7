//! Where tree nodes live: the [`NodeStore`] trait and the in-memory [`MemoryNodeStore`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::hash::{Hash, Key};
use crate::node::Node;
use crate::tree::TreeUpdate;
use crate::StateError;

/// Content-addressed storage of tree nodes and leaf values.
///
/// Nodes are stored under their own hash; the value of a leaf is stored under the leaf's hash
/// (which commits to the key and the value). The empty hash is never stored.
pub trait NodeStore: Sync {
    /// The node whose hash is `hash`, if stored.
    fn get_node(&self, hash: &Hash) -> Result<Option<Node>, StateError>;

    /// The value of the leaf whose hash is `leaf_hash`, if stored.
    fn get_value(&self, leaf_hash: &Hash) -> Result<Option<Vec<u8>>, StateError>;

    /// The error to report when a node or value needed to answer for `key` is not stored.
    ///
    /// A full store is missing nothing, so by default this is an internal error; a witness-backed
    /// store reports that the key is not covered.
    fn missing(&self, hash: &Hash, key: &Key) -> StateError {
        StateError::Internal(format!(
            "node {} (needed for key {}) is not in the store",
            hex::encode(hash),
            hex::encode(key)
        ))
    }
}

impl<T: NodeStore + ?Sized> NodeStore for &T {
    fn get_node(&self, hash: &Hash) -> Result<Option<Node>, StateError> {
        (**self).get_node(hash)
    }
    fn get_value(&self, leaf_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get_value(leaf_hash)
    }
    fn missing(&self, hash: &Hash, key: &Key) -> StateError {
        (**self).missing(hash, key)
    }
}

impl<T: NodeStore + ?Sized + Send> NodeStore for Arc<T> {
    fn get_node(&self, hash: &Hash) -> Result<Option<Node>, StateError> {
        (**self).get_node(hash)
    }
    fn get_value(&self, leaf_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get_value(leaf_hash)
    }
    fn missing(&self, hash: &Hash, key: &Key) -> StateError {
        (**self).missing(hash, key)
    }
}

/// A `Hasher` for keys that are already SHA-256 digests: it uses their first 8 bytes.
///
/// Node hashes cannot be chosen cheaply, so this is as good as a keyed hash for bucket spreading
/// and much faster. Maps using it are only ever looked up, never iterated in consensus paths.
#[derive(Default, Clone, Copy)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        for (dst, src) in word.iter_mut().zip(bytes) {
            *dst = *src;
        }
        self.0 ^= u64::from_le_bytes(word);
    }
}

/// A hash map keyed by SHA-256 digests, bucketed with [`DigestHasher`].
pub type DigestMap<V> = HashMap<Hash, V, BuildHasherDefault<DigestHasher>>;

/// Nodes and values in memory. Old roots stay readable: nothing is ever removed.
#[derive(Debug, Default, Clone)]
pub struct MemoryNodeStore {
    nodes: DigestMap<Node>,
    values: DigestMap<Vec<u8>>,
}

impl MemoryNodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Persist the new nodes and values of a tree update.
    pub fn write(&mut self, update: &TreeUpdate) {
        self.nodes.reserve(update.new_nodes.len());
        for (hash, node) in &update.new_nodes {
            self.nodes.insert(*hash, *node);
        }
        for (hash, value) in &update.new_values {
            self.values.insert(*hash, value.clone());
        }
    }

    /// Like [`write`](Self::write) but moves the values instead of cloning them.
    pub fn write_owned(&mut self, update: TreeUpdate) {
        self.nodes.reserve(update.new_nodes.len());
        self.nodes.extend(update.new_nodes);
        self.values.extend(update.new_values);
    }

    /// Insert one node under its hash.
    pub fn insert_node(&mut self, node: Node) -> Hash {
        let hash = node.hash();
        self.nodes.insert(hash, node);
        hash
    }

    /// Store `value` as the value of the leaf `leaf_hash`.
    pub fn insert_value(&mut self, leaf_hash: Hash, value: Vec<u8>) {
        self.values.insert(leaf_hash, value);
    }

    /// Number of stored nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl NodeStore for MemoryNodeStore {
    fn get_node(&self, hash: &Hash) -> Result<Option<Node>, StateError> {
        Ok(self.nodes.get(hash).copied())
    }
    fn get_value(&self, leaf_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.values.get(leaf_hash).cloned())
    }
}
