//! A stateless [`StateView`] backed by a multiproof witness.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};

use crate::hash::{leaf_hash, sha256, Hash, Key};
use crate::node::Node;
use crate::proof::MultiProof;
use crate::store::NodeStore;
use crate::tree::SparseMerkleTree;
use crate::{ChangeSet, InvalidState, StateError, StateView};

/// The most values a witness may carry.
pub const MAX_WITNESS_VALUES: usize = 1 << 16;

/// A multiproof plus the values of the covered keys that are present: everything a stateless
/// executor needs to read those keys and compute the root after writing them.
///
/// Encoding: borsh of the proof, then the values as a `u32` count and `(key, bytes)` pairs in
/// strictly increasing key order (checked on decoding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateWitness {
    /// The multiproof of the covered keys.
    pub proof: MultiProof,
    /// Values of the covered keys that are present, sorted by key.
    pub values: Vec<(Key, Vec<u8>)>,
}

impl BorshSerialize for StateWitness {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.proof.serialize(writer)?;
        if self.values.len() > MAX_WITNESS_VALUES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "too many values",
            ));
        }
        self.values.serialize(writer)
    }
}

impl BorshDeserialize for StateWitness {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let invalid =
            |msg: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned());
        let proof = MultiProof::deserialize_reader(reader)?;
        let len = u32::deserialize_reader(reader)? as usize;
        if len > MAX_WITNESS_VALUES {
            return Err(invalid("too many values"));
        }
        let mut values: Vec<(Key, Vec<u8>)> = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            let entry = <(Key, Vec<u8>)>::deserialize_reader(reader)?;
            if values.last().is_some_and(|(last, _)| *last >= entry.0) {
                return Err(invalid(
                    "witness values not in strictly increasing key order",
                ));
            }
            values.push(entry);
        }
        Ok(Self { proof, values })
    }
}

impl StateWitness {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, InvalidState> {
        borsh::to_vec(self).map_err(|e| InvalidState::MalformedProof(e.to_string()))
    }

    /// Strict decoding: rejects trailing bytes, oversized or unsorted witnesses.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidState> {
        borsh::from_slice(bytes).map_err(|e| InvalidState::MalformedProof(e.to_string()))
    }
}

/// The nodes a witness discloses; anything else is reported as not covered.
#[derive(Debug, Clone, Default)]
struct WitnessStore {
    nodes: BTreeMap<Hash, Node>,
    values: BTreeMap<Hash, Vec<u8>>,
}

impl NodeStore for WitnessStore {
    fn get_node(&self, hash: &Hash) -> Result<Option<Node>, StateError> {
        Ok(self.nodes.get(hash).copied())
    }
    fn get_value(&self, leaf_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.values.get(leaf_hash).cloned())
    }
    fn missing(&self, _hash: &Hash, key: &Key) -> StateError {
        InvalidState::KeyNotInWitness(*key).into()
    }
}

/// A [`StateView`] over a verified witness, with no database behind it.
///
/// Reads of covered keys return exactly what the full tree would; reads of any other key fail
/// with [`InvalidState::KeyNotInWitness`], never with a guess. [`apply`](Self::apply) computes the
/// new root after a change set touching covered keys (inserts, updates and deletes), exactly as
/// the full tree would.
#[derive(Debug, Clone)]
pub struct WitnessView {
    tree: SparseMerkleTree<WitnessStore>,
    root: Hash,
}

impl WitnessView {
    /// Verify `witness` against `root` and build the view.
    pub fn new(root: Hash, witness: &StateWitness) -> Result<Self, StateError> {
        Self::from_parts(root, &witness.proof, witness.values.iter().cloned())
    }

    /// Verify `proof` and `values` against `root` and build the view. Every value must belong to
    /// a leaf the proof discloses.
    pub fn from_parts(
        root: Hash,
        proof: &MultiProof,
        values: impl IntoIterator<Item = (Key, Vec<u8>)>,
    ) -> Result<Self, StateError> {
        let (computed, nodes) = proof.reconstruct()?;
        if computed != root {
            return Err(InvalidState::BadProof("multiproof root mismatch".into()).into());
        }
        let mut store = WitnessStore {
            nodes: nodes.into_iter().collect(),
            values: BTreeMap::new(),
        };
        for (key, value) in values {
            let hash = leaf_hash(&key, &sha256(&value));
            match store.nodes.get(&hash) {
                Some(Node::Leaf(leaf)) if leaf.key == key => {
                    store.values.insert(hash, value);
                }
                _ => {
                    return Err(InvalidState::BadProof(format!(
                        "value for key {} does not match a leaf of the witness",
                        hex::encode(key)
                    ))
                    .into());
                }
            }
        }
        Ok(Self {
            tree: SparseMerkleTree::new(store).with_parallel_threshold(usize::MAX),
            root,
        })
    }

    /// The current root (the witness root, or the root after the last [`apply`](Self::apply)).
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The root after applying `changes`, without changing the view.
    pub fn root_after(&self, changes: &ChangeSet) -> Result<Hash, StateError> {
        Ok(self.tree.apply(&self.root, changes)?.root)
    }

    /// Apply `changes`: the view then reads the new state. Returns the new root. On error the
    /// view is unchanged.
    pub fn apply(&mut self, changes: &ChangeSet) -> Result<Hash, StateError> {
        let update = self.tree.apply(&self.root, changes)?;
        let store = self.tree.store_mut();
        store.nodes.extend(update.new_nodes);
        store.values.extend(update.new_values);
        self.root = update.root;
        Ok(self.root)
    }
}

impl StateView for WitnessView {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        self.tree.get(&self.root, key)
    }
}
