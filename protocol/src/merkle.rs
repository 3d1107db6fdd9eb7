//! A small binary Merkle tree over an ordered list of hashes.
//!
//! Used for a batch's `tx_root` (over the txids, in order) and its `trace_root` (over the
//! checkpoints, in order).
//!
//! # Construction
//! - A leaf is `tagged_hash("stint/merkle/leaf", item)`; an inner node is
//!   `tagged_hash("stint/merkle/inner", left || right)`. The two tags differ, so a leaf can never
//!   be passed off as an inner node or the other way round (no second-preimage ambiguity).
//! - Levels are built pairwise from the left. When a level has an odd number of nodes, the last one
//!   is **promoted** unchanged to the next level (it is *not* paired with a copy of itself, which is
//!   what made Bitcoin's tree malleable).
//! - The root binds the leaf count: `root = tagged_hash("stint/merkle/root", le_u64(n) || top)`,
//!   where `top` is the single node left after the levels collapse (32 zero bytes for `n = 0`).
//!   A proof is therefore only ever valid for one `(index, n)` pair.
//!
//! A [`MerkleProof`] is the list of sibling hashes from the leaf up; levels where the node was
//! promoted contribute no sibling. [`MerkleProof::verify`] recomputes the root from the item, its
//! index and the leaf count, and requires every sibling to be used exactly once.

use borsh::{BorshDeserialize, BorshSerialize};
use stint_state::{tagged_hash, Hash};

/// Tag of a leaf hash.
pub const MERKLE_LEAF_TAG: &str = "stint/merkle/leaf";
/// Tag of an inner node hash.
pub const MERKLE_INNER_TAG: &str = "stint/merkle/inner";
/// Tag of the root (which binds the leaf count).
pub const MERKLE_ROOT_TAG: &str = "stint/merkle/root";

/// The most siblings a proof can need: a tree of up to `u32::MAX` leaves has at most 32 levels.
pub const MAX_MERKLE_DEPTH: usize = 32;

/// Hash of one list item as a leaf.
pub fn merkle_leaf(item: &Hash) -> Hash {
    tagged_hash(MERKLE_LEAF_TAG, &[item])
}

/// Hash of an inner node from its two children.
pub fn merkle_inner(left: &Hash, right: &Hash) -> Hash {
    tagged_hash(MERKLE_INNER_TAG, &[left, right])
}

fn merkle_seal(count: u64, top: &Hash) -> Hash {
    tagged_hash(MERKLE_ROOT_TAG, &[&count.to_le_bytes(), top])
}

/// Collapse one level into the next (pairs from the left, odd last node promoted).
fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => merkle_inner(left, right),
            [single] => *single,
            // `chunks(2)` yields one or two items only.
            _ => [0; 32],
        })
        .collect()
}

/// The Merkle root of `items` (see the module docs for the construction).
pub fn merkle_root(items: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = items.iter().map(merkle_leaf).collect();
    while level.len() > 1 {
        level = next_level(&level);
    }
    let top = level.first().copied().unwrap_or([0; 32]);
    merkle_seal(items.len() as u64, &top)
}

/// An inclusion proof of one item of a list: the sibling hashes from the leaf level up.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct MerkleProof {
    /// Siblings, leaf level first. Levels where the path node was promoted have none.
    pub siblings: Vec<Hash>,
}

impl MerkleProof {
    /// The proof for `items[index]`, or `None` when `index` is out of range.
    pub fn build(items: &[Hash], index: usize) -> Option<Self> {
        if index >= items.len() {
            return None;
        }
        let mut siblings = Vec::new();
        let mut level: Vec<Hash> = items.iter().map(merkle_leaf).collect();
        let mut idx = index;
        while level.len() > 1 {
            let sibling = idx ^ 1;
            if let Some(hash) = level.get(sibling) {
                siblings.push(*hash);
            }
            level = next_level(&level);
            idx /= 2;
        }
        Some(Self { siblings })
    }

    /// The root this proof leads to for `item` at `index` in a list of `count` items, or `None`
    /// when the proof cannot belong to that position (index out of range, wrong number of
    /// siblings).
    pub fn compute_root(&self, item: &Hash, index: u64, count: u64) -> Option<Hash> {
        if index >= count || self.siblings.len() > MAX_MERKLE_DEPTH {
            return None;
        }
        let mut hash = merkle_leaf(item);
        let mut idx = index;
        let mut width = count;
        let mut siblings = self.siblings.iter();
        while width > 1 {
            if idx % 2 == 1 {
                hash = merkle_inner(siblings.next()?, &hash);
            } else if idx.checked_add(1)? < width {
                hash = merkle_inner(&hash, siblings.next()?);
            }
            // else: last node of an odd level, promoted as is.
            idx /= 2;
            width = width.div_ceil(2);
        }
        if siblings.next().is_some() {
            return None;
        }
        Some(merkle_seal(count, &hash))
    }

    /// Whether this proof shows `item` at `index` in a list of `count` items with root `root`.
    pub fn verify(&self, root: &Hash, item: &Hash, index: u64, count: u64) -> bool {
        self.compute_root(item, index, count)
            .is_some_and(|computed| &computed == root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Hash> {
        (0..n).map(|i| [i as u8; 32]).collect()
    }

    #[test]
    fn empty_and_single_roots_are_distinct() {
        let empty = merkle_root(&[]);
        let one = merkle_root(&[[0; 32]]);
        assert_ne!(empty, one);
        assert_eq!(empty, merkle_seal(0, &[0; 32]));
        assert_eq!(one, merkle_seal(1, &merkle_leaf(&[0; 32])));
    }

    #[test]
    fn odd_level_promotes_instead_of_duplicating() {
        let three = items(3);
        let expected = merkle_seal(
            3,
            &merkle_inner(
                &merkle_inner(&merkle_leaf(&three[0]), &merkle_leaf(&three[1])),
                &merkle_leaf(&three[2]),
            ),
        );
        assert_eq!(merkle_root(&three), expected);
        // Bitcoin-style duplication of the last item must give a different root.
        let mut four = three.clone();
        four.push(three[2]);
        assert_ne!(merkle_root(&three), merkle_root(&four));
    }

    #[test]
    fn every_proof_verifies_for_small_trees() {
        for n in 1..=17 {
            let list = items(n);
            let root = merkle_root(&list);
            for (i, item) in list.iter().enumerate() {
                let proof = MerkleProof::build(&list, i).unwrap();
                assert!(proof.verify(&root, item, i as u64, n as u64), "n={n} i={i}");
                // Wrong index, wrong count, wrong item all fail.
                assert!(!proof.verify(&root, item, (i as u64 + 1) % n as u64 + n as u64, n as u64));
                assert!(!proof.verify(&root, item, i as u64, n as u64 + 1));
                assert!(!proof.verify(&root, &[0xff; 32], i as u64, n as u64));
            }
            assert!(MerkleProof::build(&list, n).is_none());
        }
    }

    #[test]
    fn extra_or_missing_siblings_fail() {
        let list = items(5);
        let root = merkle_root(&list);
        let mut proof = MerkleProof::build(&list, 4).unwrap();
        assert_eq!(proof.siblings.len(), 1, "index 4 of 5 is promoted twice");
        proof.siblings.push([9; 32]);
        assert!(!proof.verify(&root, &list[4], 4, 5));
        proof.siblings.clear();
        assert!(!proof.verify(&root, &list[4], 4, 5));
    }
}
