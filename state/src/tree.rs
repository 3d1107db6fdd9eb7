//! The compact sparse Merkle tree over 256-bit keys.
//!
//! # Tree rules (consensus)
//!
//! Keys are 256 bits, read most significant bit of byte 0 first; bit `d` picks the side at depth
//! `d` (0 = left, 1 = right). For a set of key/value pairs, the node at a bit prefix `p` is:
//!
//! - **empty** if no key starts with `p`. Hash: 32 zero bytes ([`EMPTY_HASH`]).
//! - a **leaf** if exactly one key `k` starts with `p`. Hash: `SHA256(0x00 ‖ k ‖ SHA256(value))`.
//!   The leaf therefore sits at the *shortest unique prefix* of its key.
//! - an **internal node** if two or more keys start with `p`. Hash:
//!   `SHA256(0x01 ‖ hash(p‖0) ‖ hash(p‖1))`. One child may be empty (a chain of such nodes
//!   covers a long common prefix); never both, and never an empty child beside a leaf child (that
//!   subtree holds one key, so it is a leaf).
//!
//! The root is the node at the empty prefix, so the empty tree's root is [`EMPTY_HASH`] and a
//! tree with one key has that key's leaf hash as its root. The root depends only on the set of
//! key/value pairs: insertion order, batching and parallelism cannot change it, and deleting keys
//! collapses the tree back to exactly the shape it had without them.
//!
//! # Storage
//!
//! Nodes ([`Node`]) are content-addressed in a [`NodeStore`]: internal nodes as their two child
//! hashes, leaves as key and value hash, and the value itself under the leaf's hash. Updates are
//! copy-on-write: [`SparseMerkleTree::apply`] never modifies a stored node, it returns the new
//! nodes to persist ([`TreeUpdate`]), so every older root stays readable as long as its nodes are
//! kept. Because the tree is canonical, a node hash occurs at one position only, and an update
//! also reports exactly which nodes of the old tree the new tree no longer uses (`stale_nodes`),
//! which is what pruning works from.

use std::collections::BTreeSet;

use rayon::join;

use crate::hash::{internal_hash, leaf_hash, sha256, Hash, Key, EMPTY_HASH};
use crate::node::{key_bit, InternalNode, LeafNode, Node};
use crate::proof::{MultiProof, ProofNode, SparseMerkleProof};
use crate::store::NodeStore;
use crate::witness::StateWitness;
use crate::{ChangeSet, StateError, StateView};

/// Batches at least this large are split across rayon threads (by default).
pub const DEFAULT_PARALLEL_THRESHOLD: usize = 512;

/// Parallel splitting stops below this depth (2^8 = 256 tasks at most).
const MAX_PARALLEL_DEPTH: usize = 8;

/// The result of applying a change set: the new root and what to persist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeUpdate {
    /// The root the changes were applied to.
    pub base_root: Hash,
    /// The new root.
    pub root: Hash,
    /// Nodes of the new tree that were not in the base tree, children before parents.
    pub new_nodes: Vec<(Hash, Node)>,
    /// Values of the new leaves, keyed by leaf hash.
    pub new_values: Vec<(Hash, Vec<u8>)>,
    /// Nodes of the base tree that the new tree no longer uses.
    pub stale_nodes: Vec<Hash>,
}

/// A change for one key, borrowed from a [`ChangeSet`].
#[derive(Clone, Copy)]
struct Change<'a> {
    key: &'a Key,
    value: Option<&'a [u8]>,
}

/// A subtree after an update.
#[derive(Clone, Copy)]
enum Sub {
    Empty,
    Leaf(Hash),
    Internal(Hash),
    /// An untouched, non-empty subtree whose kind has not been looked up.
    Unknown(Hash),
}

impl Sub {
    fn of_hash(hash: Hash) -> Sub {
        if hash == EMPTY_HASH {
            Sub::Empty
        } else {
            Sub::Unknown(hash)
        }
    }

    fn hash(&self) -> Hash {
        match self {
            Sub::Empty => EMPTY_HASH,
            Sub::Leaf(h) | Sub::Internal(h) | Sub::Unknown(h) => *h,
        }
    }
}

/// What one recursive update produced.
#[derive(Default)]
struct Output {
    nodes: Vec<(Hash, Node)>,
    values: Vec<(Hash, Vec<u8>)>,
    stale: Vec<Hash>,
}

impl Output {
    fn append(&mut self, mut other: Output) {
        self.nodes.append(&mut other.nodes);
        self.values.append(&mut other.values);
        self.stale.append(&mut other.stale);
    }
}

fn depth_error(key: &Key) -> StateError {
    StateError::Internal(format!(
        "tree deeper than 256 bits at key {}",
        hex::encode(key)
    ))
}

/// Split sorted `changes` (all sharing the first `depth` bits) by bit `depth`.
fn split<'c, 'a>(
    changes: &'c [Change<'a>],
    depth: usize,
) -> Result<(&'c [Change<'a>], &'c [Change<'a>]), StateError> {
    if let Some(first) = changes.first() {
        if depth >= 256 {
            return Err(depth_error(first.key));
        }
    }
    let mid = changes.partition_point(|c| key_bit(c.key, depth) == Some(false));
    Ok(changes.split_at(mid))
}

/// A sparse Merkle tree handle over a node store. It holds no root: every operation takes the
/// root to work on, so any number of versions can be read side by side.
#[derive(Debug, Clone)]
pub struct SparseMerkleTree<S> {
    store: S,
    parallel_threshold: usize,
}

impl<S: NodeStore> SparseMerkleTree<S> {
    /// A tree over `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            parallel_threshold: DEFAULT_PARALLEL_THRESHOLD,
        }
    }

    /// Split batches of at least `threshold` changes across rayon threads (`usize::MAX`: never).
    /// The result is identical either way.
    pub fn with_parallel_threshold(mut self, threshold: usize) -> Self {
        self.parallel_threshold = threshold.max(2);
        self
    }

    /// The node store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Mutable access to the node store (to persist an update).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Give up the handle and keep the store.
    pub fn into_store(self) -> S {
        self.store
    }

    pub(crate) fn load(&self, hash: &Hash, key: &Key) -> Result<Node, StateError> {
        self.store
            .get_node(hash)?
            .ok_or_else(|| self.store.missing(hash, key))
    }

    /// The leaf for `key` under `root`, if present.
    pub fn get_leaf(&self, root: &Hash, key: &Key) -> Result<Option<(Hash, LeafNode)>, StateError> {
        let mut hash = *root;
        for depth in 0..=256 {
            if hash == EMPTY_HASH {
                return Ok(None);
            }
            match self.load(&hash, key)? {
                Node::Leaf(leaf) => {
                    return Ok((leaf.key == *key).then_some((hash, leaf)));
                }
                Node::Internal(node) => {
                    let bit = key_bit(key, depth).ok_or_else(|| depth_error(key))?;
                    hash = *node.child(bit);
                }
            }
        }
        Err(depth_error(key))
    }

    /// The value stored under `key` in the tree with root `root`.
    pub fn get(&self, root: &Hash, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        match self.get_leaf(root, key)? {
            None => Ok(None),
            Some((hash, _)) => match self.store.get_value(&hash)? {
                Some(value) => Ok(Some(value)),
                None => Err(self.store.missing(&hash, key)),
            },
        }
    }

    /// The value of `key` under `root` and a proof of it (inclusion, or exclusion if absent).
    pub fn prove(
        &self,
        root: &Hash,
        key: &Key,
    ) -> Result<(Option<Vec<u8>>, SparseMerkleProof), StateError> {
        let mut siblings = Vec::new();
        let mut hash = *root;
        for depth in 0..=256 {
            if hash == EMPTY_HASH {
                return Ok((
                    None,
                    SparseMerkleProof {
                        siblings,
                        leaf: None,
                    },
                ));
            }
            match self.load(&hash, key)? {
                Node::Leaf(leaf) => {
                    let value = if leaf.key == *key {
                        match self.store.get_value(&hash)? {
                            Some(value) => Some(value),
                            None => return Err(self.store.missing(&hash, key)),
                        }
                    } else {
                        None
                    };
                    return Ok((
                        value,
                        SparseMerkleProof {
                            siblings,
                            leaf: Some(leaf),
                        },
                    ));
                }
                Node::Internal(node) => {
                    let bit = key_bit(key, depth).ok_or_else(|| depth_error(key))?;
                    siblings.push(*node.child(!bit));
                    hash = *node.child(bit);
                }
            }
        }
        Err(depth_error(key))
    }

    /// A multiproof for `keys` under `root` (see [`MultiProof`] for the format).
    pub fn multiproof(&self, root: &Hash, keys: &BTreeSet<Key>) -> Result<MultiProof, StateError> {
        let keys: Vec<Key> = keys.iter().copied().collect();
        let mut nodes = Vec::new();
        self.collect(root, 0, &keys, &[0u8; 32], &mut nodes)?;
        Ok(MultiProof { nodes })
    }

    /// A witness for `keys` under `root`: their multiproof plus the values of those present.
    pub fn witness(&self, root: &Hash, keys: &BTreeSet<Key>) -> Result<StateWitness, StateError> {
        let proof = self.multiproof(root, keys)?;
        let mut values = Vec::new();
        for key in keys {
            if let Some(value) = self.get(root, key)? {
                values.push((*key, value));
            }
        }
        Ok(StateWitness { proof, values })
    }

    fn collect(
        &self,
        hash: &Hash,
        depth: usize,
        keys: &[Key],
        hint: &Key,
        out: &mut Vec<ProofNode>,
    ) -> Result<(), StateError> {
        if *hash == EMPTY_HASH {
            out.push(ProofNode::Empty);
            return Ok(());
        }
        let key = keys.first().unwrap_or(hint);
        match self.load(hash, key)? {
            Node::Leaf(leaf) => out.push(ProofNode::Leaf(leaf)),
            Node::Internal(node) => {
                out.push(ProofNode::Branch);
                if keys.is_empty() {
                    for child in [node.left, node.right] {
                        out.push(if child == EMPTY_HASH {
                            ProofNode::Empty
                        } else {
                            ProofNode::Opaque(child)
                        });
                    }
                } else {
                    if depth >= 256 {
                        return Err(depth_error(key));
                    }
                    let mid = keys.partition_point(|k| key_bit(k, depth) == Some(false));
                    let (left, right) = keys.split_at(mid);
                    let next = depth.saturating_add(1);
                    self.collect(&node.left, next, left, key, out)?;
                    self.collect(&node.right, next, right, key, out)?;
                }
            }
        }
        Ok(())
    }

    /// A [`StateView`] of the tree at `root`.
    pub fn view(&self, root: Hash) -> TreeView<'_, S> {
        TreeView { tree: self, root }
    }

    /// Insert or update one key.
    pub fn insert(&self, root: &Hash, key: Key, value: Vec<u8>) -> Result<TreeUpdate, StateError> {
        let mut changes = ChangeSet::new();
        changes.insert(key, Some(value));
        self.apply(root, &changes)
    }

    /// Delete one key (a no-op if absent).
    pub fn delete(&self, root: &Hash, key: Key) -> Result<TreeUpdate, StateError> {
        let mut changes = ChangeSet::new();
        changes.insert(key, None);
        self.apply(root, &changes)
    }

    /// Apply a batch of changes to the tree at `root`: the new root plus the nodes to persist.
    ///
    /// Copy-on-write: nothing in the store changes. Large batches are split by key prefix across
    /// rayon threads; the result is bit-identical to applying the changes one by one.
    pub fn apply(&self, root: &Hash, changes: &ChangeSet) -> Result<TreeUpdate, StateError> {
        let changes: Vec<Change<'_>> = changes
            .iter()
            .map(|(key, value)| Change {
                key,
                value: value.as_deref(),
            })
            .collect();
        let mut out = Output::default();
        let sub = self.update(*root, 0, &changes, &mut out)?;
        Ok(TreeUpdate {
            base_root: *root,
            root: sub.hash(),
            new_nodes: out.nodes,
            new_values: out.values,
            stale_nodes: out.stale,
        })
    }

    fn parallel(&self, changes: &[Change<'_>], depth: usize) -> bool {
        depth < MAX_PARALLEL_DEPTH && changes.len() >= self.parallel_threshold
    }

    /// Run `f` on both halves, in parallel when the batch is large.
    fn both<F>(
        &self,
        depth: usize,
        changes: &[Change<'_>],
        out: &mut Output,
        f: F,
    ) -> Result<(Sub, Sub), StateError>
    where
        F: Fn(bool, &mut Output) -> Result<Sub, StateError> + Sync,
    {
        if self.parallel(changes, depth) {
            let (left, right) = join(
                || {
                    let mut o = Output::default();
                    f(false, &mut o).map(|s| (s, o))
                },
                || {
                    let mut o = Output::default();
                    f(true, &mut o).map(|s| (s, o))
                },
            );
            let (left, left_out) = left?;
            let (right, right_out) = right?;
            out.append(left_out);
            out.append(right_out);
            Ok((left, right))
        } else {
            let left = f(false, out)?;
            let right = f(true, out)?;
            Ok((left, right))
        }
    }

    /// Apply `changes` (sorted, all under the prefix of this position) to the subtree `hash` at
    /// `depth`.
    fn update(
        &self,
        hash: Hash,
        depth: usize,
        changes: &[Change<'_>],
        out: &mut Output,
    ) -> Result<Sub, StateError> {
        let Some(first) = changes.first() else {
            return Ok(Sub::of_hash(hash));
        };
        if hash == EMPTY_HASH {
            return self.build(depth, changes, None, out);
        }
        match self.load(&hash, first.key)? {
            Node::Leaf(leaf) => self.build(depth, changes, Some((hash, leaf)), out),
            Node::Internal(node) => {
                let (lc, rc) = split(changes, depth)?;
                let next = depth.checked_add(1).ok_or_else(|| depth_error(first.key))?;
                let (left, right) = self.both(depth, changes, out, |side, o| {
                    if side {
                        self.update(node.right, next, rc, o)
                    } else {
                        self.update(node.left, next, lc, o)
                    }
                })?;
                if left.hash() == node.left && right.hash() == node.right {
                    return Ok(Sub::Internal(hash));
                }
                out.stale.push(hash);
                self.combine(left, right, first.key, out)
            }
        }
    }

    /// Build the subtree at `depth` from `changes` and at most one existing leaf (the old content
    /// of this position, which is either empty or that leaf).
    fn build(
        &self,
        depth: usize,
        changes: &[Change<'_>],
        existing: Option<(Hash, LeafNode)>,
        out: &mut Output,
    ) -> Result<Sub, StateError> {
        let Some(first) = changes.first() else {
            return Ok(match existing {
                Some((hash, _)) => Sub::Leaf(hash),
                None => Sub::Empty,
            });
        };
        if changes.len() == 1 {
            match existing {
                None => {
                    return Ok(match first.value {
                        None => Sub::Empty,
                        Some(value) => Sub::Leaf(self.new_leaf(first.key, value, out)),
                    });
                }
                Some((old_hash, leaf)) if leaf.key == *first.key => {
                    return Ok(match first.value {
                        None => {
                            out.stale.push(old_hash);
                            Sub::Empty
                        }
                        Some(value) => {
                            let value_hash = sha256(value);
                            if value_hash == leaf.value_hash {
                                Sub::Leaf(old_hash)
                            } else {
                                out.stale.push(old_hash);
                                let hash = leaf_hash(first.key, &value_hash);
                                out.nodes.push((
                                    hash,
                                    Node::Leaf(LeafNode {
                                        key: *first.key,
                                        value_hash,
                                    }),
                                ));
                                out.values.push((hash, value.to_vec()));
                                Sub::Leaf(hash)
                            }
                        }
                    });
                }
                Some((old_hash, _)) if first.value.is_none() => {
                    // Deleting an absent key next to a lone leaf changes nothing.
                    return Ok(Sub::Leaf(old_hash));
                }
                Some(_) => {}
            }
        } else if existing.is_none() && changes.iter().all(|c| c.value.is_none()) {
            return Ok(Sub::Empty);
        }
        let (lc, rc) = split(changes, depth)?;
        let next = depth.checked_add(1).ok_or_else(|| depth_error(first.key))?;
        let existing_side = match existing {
            Some((_, leaf)) => {
                Some(key_bit(&leaf.key, depth).ok_or_else(|| depth_error(&leaf.key))?)
            }
            None => None,
        };
        let (left, right) = self.both(depth, changes, out, |side, o| {
            let here = if existing_side == Some(side) {
                existing
            } else {
                None
            };
            self.build(next, if side { rc } else { lc }, here, o)
        })?;
        self.combine(left, right, first.key, out)
    }

    fn new_leaf(&self, key: &Key, value: &[u8], out: &mut Output) -> Hash {
        let value_hash = sha256(value);
        let hash = leaf_hash(key, &value_hash);
        out.nodes.push((
            hash,
            Node::Leaf(LeafNode {
                key: *key,
                value_hash,
            }),
        ));
        out.values.push((hash, value.to_vec()));
        hash
    }

    /// Join two updated children into the node at their parent's position.
    fn combine(
        &self,
        left: Sub,
        right: Sub,
        key: &Key,
        out: &mut Output,
    ) -> Result<Sub, StateError> {
        let lone = match (left, right) {
            (Sub::Empty, Sub::Empty) => return Ok(Sub::Empty),
            (Sub::Empty, other) | (other, Sub::Empty) => Some(other),
            _ => None,
        };
        if let Some(other) = lone {
            match other {
                Sub::Leaf(hash) => return Ok(Sub::Leaf(hash)),
                Sub::Unknown(hash) => {
                    if let Node::Leaf(_) = self.load(&hash, key)? {
                        return Ok(Sub::Leaf(hash));
                    }
                }
                Sub::Internal(_) | Sub::Empty => {}
            }
        }
        let node = InternalNode {
            left: left.hash(),
            right: right.hash(),
        };
        let hash = internal_hash(&node.left, &node.right);
        out.nodes.push((hash, Node::Internal(node)));
        Ok(Sub::Internal(hash))
    }
}

/// A [`StateView`] of one version of a [`SparseMerkleTree`].
#[derive(Debug, Clone, Copy)]
pub struct TreeView<'a, S> {
    tree: &'a SparseMerkleTree<S>,
    root: Hash,
}

impl<S: NodeStore> TreeView<'_, S> {
    /// The root this view reads.
    pub fn root(&self) -> Hash {
        self.root
    }
}

impl<S: NodeStore> StateView for TreeView<'_, S> {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        self.tree.get(&self.root, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryNodeStore;

    fn persist(tree: &mut SparseMerkleTree<MemoryNodeStore>, update: TreeUpdate) -> Hash {
        let root = update.root;
        tree.store_mut().write_owned(update);
        root
    }

    #[test]
    fn test_vectors_computed_independently() {
        // Expected roots computed with Python's hashlib from the documented rules.
        let mut tree = SparseMerkleTree::new(MemoryNodeStore::new());
        let update = tree.insert(&EMPTY_HASH, [1; 32], b"one".to_vec()).unwrap();
        let root = persist(&mut tree, update);
        assert_eq!(
            hex::encode(root),
            "4046a4e0d231b572b2285d0cd5226d01ce8de1a5d06edd9ea0a9ce272fb408f7"
        );
        // 0x01.. and 0x02.. first differ at bit 6: six one-sided internal nodes above the pair.
        let update = tree.insert(&root, [2; 32], b"two".to_vec()).unwrap();
        let two = persist(&mut tree, update);
        assert_eq!(
            hex::encode(two),
            "b34039020022f610e5b90f81351979f209a9e93edd2ac37565f9d318eac36efc"
        );
        let (_, proof) = tree.prove(&two, &[2; 32]).unwrap();
        assert_eq!(proof.siblings.len(), 7);
        assert_eq!(proof.siblings[..6], [EMPTY_HASH; 6]);
        // Deleting collapses back to the single leaf, and to the empty root.
        let back = tree.delete(&two, [2; 32]).unwrap();
        assert_eq!(back.root, root);
        assert_eq!(back.new_nodes, vec![]);
        assert_eq!(
            back.stale_nodes.len(),
            8,
            "seven internal nodes and the deleted leaf"
        );
        assert_eq!(tree.delete(&root, [1; 32]).unwrap().root, EMPTY_HASH);
    }

    #[test]
    fn no_op_changes_write_nothing() {
        let mut tree = SparseMerkleTree::new(MemoryNodeStore::new());
        let changes: ChangeSet = (0..20u8).map(|i| ([i; 32], Some(vec![i]))).collect();
        let update = tree.apply(&EMPTY_HASH, &changes).unwrap();
        let root = persist(&mut tree, update);
        let mut same = changes.clone();
        same.insert([99; 32], None);
        let update = tree.apply(&root, &same).unwrap();
        assert_eq!(update.root, root);
        assert!(update.new_nodes.is_empty() && update.stale_nodes.is_empty());
    }

    #[test]
    fn missing_nodes_are_internal_errors() {
        let tree = SparseMerkleTree::new(MemoryNodeStore::new());
        assert!(matches!(
            tree.get(&[5; 32], &[1; 32]),
            Err(StateError::Internal(_))
        ));
    }
}
