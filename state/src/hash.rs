//! SHA-256, BIP340-style tagged hashes, and the two node hashes of the state tree.
//!
//! The tree hashes are consensus rules (see the [`crate::tree`] docs for the full tree rules):
//!
//! | node | hash |
//! | --- | --- |
//! | empty subtree | `[0u8; 32]` ([`EMPTY_HASH`]) |
//! | leaf | `SHA256(0x00 ‖ key ‖ SHA256(value))` ([`leaf_hash`]) |
//! | internal | `SHA256(0x01 ‖ left ‖ right)` ([`internal_hash`]) |
//!
//! Both node preimages are 65 bytes (two SHA-256 blocks); they are hashed with the raw
//! compression function and precomputed padding, which is bit-identical to plain SHA-256.

#[allow(deprecated)] // generic-array 0.14 is what sha2 0.10's compression API takes.
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 digest.
pub type Hash = [u8; 32];

/// A 256-bit key in the state tree.
pub type Key = [u8; 32];

/// Plain SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// BIP340-style tagged hash: `SHA256(SHA256(tag) || SHA256(tag) || data...)`.
///
/// Every kind of object Stint hashes uses its own tag (`stint/tx`, `stint/batch`, ...) so that no
/// two kinds can ever collide.
pub fn tagged_hash(tag: &str, parts: &[&[u8]]) -> Hash {
    let tag_hash = Sha256::digest(tag.as_bytes());
    let mut hasher = Sha256::new();
    hasher.update(tag_hash);
    hasher.update(tag_hash);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The hash of an empty subtree, and the root of the empty tree.
pub const EMPTY_HASH: Hash = [0u8; 32];

/// Domain byte of a leaf preimage.
pub(crate) const LEAF_DOMAIN: u8 = 0x00;
/// Domain byte of an internal-node preimage.
pub(crate) const INTERNAL_DOMAIN: u8 = 0x01;

const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// SHA-256 of the 65-byte message `domain ‖ a ‖ b`, straight on the compression function.
#[inline]
#[allow(deprecated)]
fn hash_65(domain: u8, a: &[u8; 32], b: &[u8; 32]) -> Hash {
    let mut first = [0u8; 64];
    let mut second = [0u8; 64];
    let (head, rest) = first.split_at_mut(1);
    head.copy_from_slice(&[domain]);
    let (mid, tail) = rest.split_at_mut(32);
    mid.copy_from_slice(a);
    let (b_head, b_last) = b.split_at(31);
    tail.copy_from_slice(b_head);
    // Second block: the last byte of `b`, the 0x80 terminator, zeros, and the bit length (520).
    let (s_head, s_len) = second.split_at_mut(56);
    if let (Some(dst), Some(src)) = (s_head.get_mut(..1), b_last.get(..1)) {
        dst.copy_from_slice(src);
    }
    if let Some(marker) = s_head.get_mut(1) {
        *marker = 0x80;
    }
    s_len.copy_from_slice(&520u64.to_be_bytes());
    let mut state = SHA256_IV;
    sha2::compress256(
        &mut state,
        &[
            *GenericArray::from_slice(&first),
            *GenericArray::from_slice(&second),
        ],
    );
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// The hash of a leaf: `SHA256(0x00 ‖ key ‖ value_hash)` where `value_hash = SHA256(value)`.
#[inline]
pub fn leaf_hash(key: &Key, value_hash: &Hash) -> Hash {
    hash_65(LEAF_DOMAIN, key, value_hash)
}

/// The hash of an internal node: `SHA256(0x01 ‖ left ‖ right)`.
#[inline]
pub fn internal_hash(left: &Hash, right: &Hash) -> Hash {
    hash_65(INTERNAL_DOMAIN, left, right)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_hash_matches_bip340_construction() {
        let tag = Sha256::digest(b"stint/test");
        let mut buf = Vec::new();
        buf.extend_from_slice(&tag);
        buf.extend_from_slice(&tag);
        buf.extend_from_slice(b"abc");
        assert_eq!(tagged_hash("stint/test", &[b"a", b"bc"]), sha256(&buf));
        assert_ne!(
            tagged_hash("stint/a", &[b"x"]),
            tagged_hash("stint/b", &[b"x"])
        );
    }

    #[test]
    fn node_hashes_are_plain_sha256_of_the_documented_preimage() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        let mut pre = vec![0x00];
        pre.extend_from_slice(&a);
        pre.extend_from_slice(&b);
        assert_eq!(leaf_hash(&a, &b), sha256(&pre));
        pre[0] = 0x01;
        assert_eq!(internal_hash(&a, &b), sha256(&pre));
        assert_ne!(leaf_hash(&a, &b), internal_hash(&a, &b));
    }

    #[test]
    fn node_hash_test_vector() {
        // Computed independently with Python's hashlib.
        assert_eq!(
            hex::encode(internal_hash(&EMPTY_HASH, &EMPTY_HASH)),
            "ae0798d0ecaed2b778eddebf18f071a561c53658c05e76cedecc27cafbdbc577"
        );
        assert_eq!(
            hex::encode(leaf_hash(&[7; 32], &sha256(b"value"))),
            "c97e767a1b3256639e99dadc0a50e0ff6951f3779846e62f22240d490d9a6b9d"
        );
    }
}
