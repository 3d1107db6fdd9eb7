//! Inclusion and exclusion proofs for one key, and multiproofs for a set of keys.
//!
//! # Single-key proof ([`SparseMerkleProof`])
//!
//! The hashes of the siblings along the key's path, from the root (depth 0) down, and the node
//! the path ends at: the key's own leaf (inclusion), another key's leaf sitting at a prefix of the
//! key (exclusion), or nothing, meaning an empty subtree (exclusion).
//!
//! # Multiproof ([`MultiProof`])
//!
//! The part of the tree the keys' paths cover, as a pre-order list of [`ProofNode`]s:
//! `Branch` (an internal node; its left then right child follow), `Leaf`, `Empty`, and
//! `Opaque(hash)` (a subtree not disclosed). Shared path nodes and siblings appear once. Every
//! child of a `Branch` that is not itself on a path is disclosed one level deep: a leaf as `Leaf`,
//! an internal node as `Branch` with two `Opaque`/`Empty` children. That makes the *kind* of every
//! sibling verifiable (a leaf and an internal node hash under different domain bytes), which a
//! stateless update needs to collapse a subtree correctly when keys are deleted.
//!
//! # Encoding
//!
//! Borsh, canonical and strict: decoding rejects trailing bytes, unknown tags, more than
//! [`MAX_PROOF_DEPTH`] siblings or [`MAX_MULTIPROOF_NODES`] nodes, `Opaque` of the empty hash, and
//! non-canonical shapes (a branch with two empty children or an empty child beside a leaf).

use std::io::{Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};

use crate::hash::{internal_hash, sha256, Hash, Key, EMPTY_HASH};
use crate::node::{key_bit, set_key_bit, shares_prefix, InternalNode, LeafNode, Node};
use crate::InvalidState;

/// The deepest a path can be: one level per key bit.
pub const MAX_PROOF_DEPTH: usize = 256;

/// The most nodes a multiproof may hold (about 2 MB of hashes; far above what fits on Bitcoin).
pub const MAX_MULTIPROOF_NODES: usize = 1 << 16;

fn io_invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// A proof that a key has a given value, or is absent, under a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseMerkleProof {
    /// Sibling hashes from depth 0 down to the end of the path.
    pub siblings: Vec<Hash>,
    /// The leaf the path ends at, or `None` if it ends at an empty subtree.
    pub leaf: Option<LeafNode>,
}

impl BorshSerialize for SparseMerkleProof {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        if self.siblings.len() > MAX_PROOF_DEPTH {
            return Err(io_invalid("too many siblings"));
        }
        self.siblings.serialize(writer)?;
        self.leaf.serialize(writer)
    }
}

impl BorshDeserialize for SparseMerkleProof {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > MAX_PROOF_DEPTH {
            return Err(io_invalid("too many siblings"));
        }
        let mut siblings = Vec::with_capacity(len);
        for _ in 0..len {
            siblings.push(<Hash>::deserialize_reader(reader)?);
        }
        let leaf = Option::<LeafNode>::deserialize_reader(reader)?;
        Ok(Self { siblings, leaf })
    }
}

impl SparseMerkleProof {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, InvalidState> {
        borsh::to_vec(self).map_err(|e| InvalidState::MalformedProof(e.to_string()))
    }

    /// Strict decoding: rejects trailing bytes and oversized proofs.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidState> {
        borsh::from_slice(bytes).map_err(|e| InvalidState::MalformedProof(e.to_string()))
    }

    /// The root this proof implies for `key` having `value` (`None`: absent).
    pub fn compute_root(&self, key: &Key, value: Option<&[u8]>) -> Result<Hash, InvalidState> {
        let depth = self.siblings.len();
        if depth > MAX_PROOF_DEPTH {
            return Err(InvalidState::MalformedProof("too many siblings".into()));
        }
        let terminal = match (&self.leaf, value) {
            (Some(leaf), Some(value)) => {
                if leaf.key != *key || leaf.value_hash != sha256(value) {
                    return Err(InvalidState::BadProof(
                        "leaf does not hold this key and value".into(),
                    ));
                }
                leaf.hash()
            }
            (Some(leaf), None) => {
                if leaf.key == *key {
                    return Err(InvalidState::BadProof("key is present".into()));
                }
                if !shares_prefix(&leaf.key, key, depth) {
                    return Err(InvalidState::BadProof(
                        "leaf is not on the key's path".into(),
                    ));
                }
                leaf.hash()
            }
            (None, None) => EMPTY_HASH,
            (None, Some(_)) => {
                return Err(InvalidState::BadProof(
                    "path ends in an empty subtree".into(),
                ));
            }
        };
        if depth > 0 && self.siblings.last() == Some(&EMPTY_HASH) {
            return Err(InvalidState::MalformedProof(
                "non-canonical: last sibling is empty".into(),
            ));
        }
        let mut hash = terminal;
        for (depth, sibling) in self.siblings.iter().enumerate().rev() {
            let bit = key_bit(key, depth)
                .ok_or_else(|| InvalidState::MalformedProof("too many siblings".into()))?;
            hash = if bit {
                internal_hash(sibling, &hash)
            } else {
                internal_hash(&hash, sibling)
            };
        }
        Ok(hash)
    }

    /// Check that under `root`, `key` has `value` (`Some`, inclusion) or is absent (`None`).
    pub fn verify(&self, root: &Hash, key: &Key, value: Option<&[u8]>) -> Result<(), InvalidState> {
        if self.compute_root(key, value)? == *root {
            Ok(())
        } else {
            Err(InvalidState::BadProof("root mismatch".into()))
        }
    }
}

/// One node of a [`MultiProof`], in pre-order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ProofNode {
    /// An empty subtree.
    Empty,
    /// A leaf.
    Leaf(LeafNode),
    /// An internal node; its left and right subtrees follow.
    Branch,
    /// A subtree given only by its (non-empty) hash.
    Opaque(Hash),
}

/// A proof for a set of keys: the covered part of the tree, deduplicated (see module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiProof {
    /// Pre-order nodes.
    pub nodes: Vec<ProofNode>,
}

impl BorshSerialize for MultiProof {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        if self.nodes.len() > MAX_MULTIPROOF_NODES {
            return Err(io_invalid("too many multiproof nodes"));
        }
        self.nodes.serialize(writer)
    }
}

impl BorshDeserialize for MultiProof {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > MAX_MULTIPROOF_NODES {
            return Err(io_invalid("too many multiproof nodes"));
        }
        let mut nodes = Vec::with_capacity(len.min(4096));
        for _ in 0..len {
            nodes.push(ProofNode::deserialize_reader(reader)?);
        }
        Ok(Self { nodes })
    }
}

/// What a reconstructed subtree is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Empty,
    Leaf,
    Internal,
    Opaque,
}

impl MultiProof {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, InvalidState> {
        borsh::to_vec(self).map_err(|e| InvalidState::MalformedProof(e.to_string()))
    }

    /// Strict decoding: rejects trailing bytes and oversized proofs. (Shape is checked when the
    /// proof is used.)
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidState> {
        borsh::from_slice(bytes).map_err(|e| InvalidState::MalformedProof(e.to_string()))
    }

    /// The root the proof hashes to.
    pub fn root(&self) -> Result<Hash, InvalidState> {
        self.reconstruct().map(|(root, _)| root)
    }

    /// The root and every disclosed node (leaves and branches) under its hash; checks the shape.
    pub fn reconstruct(&self) -> Result<(Hash, Vec<(Hash, Node)>), InvalidState> {
        if self.nodes.len() > MAX_MULTIPROOF_NODES {
            return Err(InvalidState::MalformedProof(
                "too many multiproof nodes".into(),
            ));
        }
        let mut pos = 0usize;
        let mut path = [0u8; 32];
        let mut out = Vec::new();
        let (root, _) = self.walk(&mut pos, 0, &mut path, &mut out)?;
        if pos != self.nodes.len() {
            return Err(InvalidState::MalformedProof(format!(
                "{} trailing multiproof nodes",
                self.nodes.len().saturating_sub(pos)
            )));
        }
        Ok((root, out))
    }

    fn walk(
        &self,
        pos: &mut usize,
        depth: usize,
        path: &mut Key,
        out: &mut Vec<(Hash, Node)>,
    ) -> Result<(Hash, Kind), InvalidState> {
        let index = *pos;
        let node = self
            .nodes
            .get(index)
            .ok_or_else(|| InvalidState::MalformedProof("multiproof ends early".into()))?;
        *pos = index.saturating_add(1);
        match node {
            ProofNode::Empty => Ok((EMPTY_HASH, Kind::Empty)),
            ProofNode::Opaque(hash) => {
                if *hash == EMPTY_HASH {
                    return Err(InvalidState::MalformedProof(format!(
                        "node {index}: opaque empty hash"
                    )));
                }
                Ok((*hash, Kind::Opaque))
            }
            ProofNode::Leaf(leaf) => {
                if !shares_prefix(&leaf.key, path, depth) {
                    return Err(InvalidState::MalformedProof(format!(
                        "node {index}: leaf is not under its position"
                    )));
                }
                let hash = leaf.hash();
                out.push((hash, Node::Leaf(*leaf)));
                Ok((hash, Kind::Leaf))
            }
            ProofNode::Branch => {
                if depth >= MAX_PROOF_DEPTH {
                    return Err(InvalidState::MalformedProof(format!(
                        "node {index}: branch below depth 256"
                    )));
                }
                let next = depth.saturating_add(1);
                set_key_bit(path, depth, false);
                let (left, left_kind) = self.walk(pos, next, path, out)?;
                set_key_bit(path, depth, true);
                let (right, right_kind) = self.walk(pos, next, path, out)?;
                set_key_bit(path, depth, false);
                match (left_kind, right_kind) {
                    (Kind::Empty, Kind::Empty | Kind::Leaf) | (Kind::Leaf, Kind::Empty) => {
                        return Err(InvalidState::MalformedProof(format!(
                            "node {index}: non-canonical branch"
                        )));
                    }
                    _ => {}
                }
                let node = InternalNode { left, right };
                let hash = internal_hash(&left, &right);
                out.push((hash, Node::Internal(node)));
                Ok((hash, Kind::Internal))
            }
        }
    }

    /// Check that under `root` every key in `entries` has the given value (`None`: absent).
    ///
    /// Fails with [`InvalidState::KeyNotInWitness`] for a key the proof does not cover.
    pub fn verify(
        &self,
        root: &Hash,
        entries: &[(Key, Option<&[u8]>)],
    ) -> Result<(), crate::StateError> {
        use crate::StateView;
        let values = entries
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v.to_vec())));
        let view = crate::WitnessView::from_parts(*root, self, values)?;
        for (key, value) in entries {
            if view.get(key)?.as_deref() != *value {
                return Err(InvalidState::BadProof(format!(
                    "key {} has another value",
                    hex::encode(key)
                ))
                .into());
            }
        }
        Ok(())
    }
}
