//! Tree nodes and their hashes.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::hash::{internal_hash, leaf_hash, Hash, Key};

/// A leaf: a key and the SHA-256 of its value. Its hash is [`leaf_hash`]`(key, value_hash)`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct LeafNode {
    /// The full 256-bit key.
    pub key: Key,
    /// `SHA256(value)`.
    pub value_hash: Hash,
}

impl LeafNode {
    /// The leaf's hash, `SHA256(0x00 ‖ key ‖ value_hash)`.
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.key, &self.value_hash)
    }
}

/// An internal node: the hashes of its two children (either may be the empty hash, not both).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct InternalNode {
    /// Hash of the child whose keys have a 0 bit at this depth.
    pub left: Hash,
    /// Hash of the child whose keys have a 1 bit at this depth.
    pub right: Hash,
}

impl InternalNode {
    /// The node's hash, `SHA256(0x01 ‖ left ‖ right)`.
    pub fn hash(&self) -> Hash {
        internal_hash(&self.left, &self.right)
    }

    /// The child on `bit`'s side (`false` = left).
    pub fn child(&self, bit: bool) -> &Hash {
        if bit {
            &self.right
        } else {
            &self.left
        }
    }
}

/// A stored (non-empty) tree node. Nodes are content-addressed: stored under their own hash.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub enum Node {
    /// A node with two children.
    Internal(InternalNode),
    /// A leaf holding one key.
    Leaf(LeafNode),
}

impl Node {
    /// The node's hash.
    pub fn hash(&self) -> Hash {
        match self {
            Node::Internal(node) => node.hash(),
            Node::Leaf(leaf) => leaf.hash(),
        }
    }
}

/// Bit `depth` of `key`, most significant bit of byte 0 first. `None` when `depth >= 256`.
#[inline]
pub(crate) fn key_bit(key: &Key, depth: usize) -> Option<bool> {
    let byte = key.get(depth / 8)?;
    Some(byte.wrapping_shl((depth % 8) as u32) & 0x80 != 0)
}

/// Set bit `depth` of `key` (no-op when `depth >= 256`).
#[inline]
pub(crate) fn set_key_bit(key: &mut Key, depth: usize, bit: bool) {
    if let Some(byte) = key.get_mut(depth / 8) {
        let mask = 0x80u8.wrapping_shr((depth % 8) as u32);
        if bit {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// Whether the first `bits` bits of `a` and `b` agree.
pub(crate) fn shares_prefix(a: &Key, b: &Key, bits: usize) -> bool {
    let whole = bits / 8;
    let (Some(a_whole), Some(b_whole)) = (a.get(..whole), b.get(..whole)) else {
        return bits == 256 && a == b;
    };
    if a_whole != b_whole {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8.wrapping_shl(8u32.saturating_sub(rest as u32));
    match (a.get(whole), b.get(whole)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_msb_first() {
        let mut key = [0u8; 32];
        key[0] = 0b1010_0000;
        key[31] = 1;
        assert_eq!(key_bit(&key, 0), Some(true));
        assert_eq!(key_bit(&key, 1), Some(false));
        assert_eq!(key_bit(&key, 2), Some(true));
        assert_eq!(key_bit(&key, 255), Some(true));
        assert_eq!(key_bit(&key, 254), Some(false));
        assert_eq!(key_bit(&key, 256), None);
        let mut k = [0u8; 32];
        for d in [0, 3, 9, 255] {
            set_key_bit(&mut k, d, true);
            assert_eq!(key_bit(&k, d), Some(true));
            set_key_bit(&mut k, d, false);
        }
        assert_eq!(k, [0u8; 32]);
    }

    #[test]
    fn prefixes() {
        let a = [0u8; 32];
        let mut b = [0u8; 32];
        b[1] = 0b0001_0000;
        assert!(shares_prefix(&a, &b, 11));
        assert!(!shares_prefix(&a, &b, 12));
        assert!(shares_prefix(&a, &b, 0));
        assert!(shares_prefix(&a, &a, 256));
        assert!(!shares_prefix(&a, &b, 256));
    }
}
