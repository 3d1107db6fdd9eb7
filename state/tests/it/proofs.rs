//! Single-key proofs and multiproofs: completeness, tampering, encoding.

use std::collections::BTreeSet;

use proptest::prelude::*;
use stint_state::{sha256, InvalidState, Key, MultiProof, ProofNode, SparseMerkleProof};

use crate::model::{key, value, MemTree, Model};

fn model() -> impl Strategy<Value = Model> {
    prop::collection::btree_map(key(), value(), 0..40)
}

proptest! {
    #[test]
    fn single_proofs_verify_and_tampering_fails(
        model in model(),
        probes in prop::collection::vec(key(), 1..8),
        flip in any::<(u8, u8)>(),
    ) {
        let tree = MemTree::from_model(&model, usize::MAX);
        let root = tree.root;
        let mut wrong_root = root;
        wrong_root[0] ^= 1;
        for k in model.keys().chain(probes.iter()) {
            let (value, proof) = tree.tree.prove(&root, k).unwrap();
            prop_assert_eq!(value.as_ref(), model.get(k));
            proof.verify(&root, k, value.as_deref()).unwrap();
            // Strict, canonical encoding round trip.
            let bytes = proof.to_bytes().unwrap();
            prop_assert_eq!(SparseMerkleProof::from_bytes(&bytes).unwrap(), proof.clone());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(SparseMerkleProof::from_bytes(&longer).is_err());
            prop_assert!(SparseMerkleProof::from_bytes(&bytes[..bytes.len() - 1]).is_err());
            // Wrong root.
            prop_assert!(proof.verify(&wrong_root, k, value.as_deref()).is_err());
            // Wrong claims: another value, or the opposite presence.
            match &value {
                Some(v) => {
                    let mut other = v.clone();
                    other.push(9);
                    prop_assert!(proof.verify(&root, k, Some(&other)).is_err());
                    prop_assert!(proof.verify(&root, k, None).is_err());
                    // Wrong key: the inclusion proof does not prove the value for another key.
                    let mut k2 = *k;
                    k2[(flip.0 % 32) as usize] ^= 1 << (flip.1 % 8);
                    prop_assert!(proof.verify(&root, &k2, Some(v)).is_err());
                }
                None => {
                    prop_assert!(proof.verify(&root, k, Some(b"x")).is_err());
                    // The exclusion proof does not prove any present key absent.
                    for present in model.keys() {
                        prop_assert!(proof.verify(&root, present, None).is_err());
                    }
                }
            }
            // Flip one bit of one sibling.
            if !proof.siblings.is_empty() {
                let mut bad = proof.clone();
                let i = flip.0 as usize % bad.siblings.len();
                bad.siblings[i][(flip.1 % 32) as usize] ^= 1;
                prop_assert!(bad.verify(&root, k, value.as_deref()).is_err());
            }
        }
    }

    #[test]
    fn multiproofs_verify_share_siblings_and_tampering_fails(
        model in model(),
        extra in prop::collection::btree_set(key(), 0..8),
        pick in any::<prop::sample::Index>(),
        flip in any::<u8>(),
    ) {
        let tree = MemTree::from_model(&model, usize::MAX);
        let root = tree.root;
        let keys: BTreeSet<Key> = model.keys().step_by(2).copied().chain(extra).collect();
        let proof = tree.tree.multiproof(&root, &keys).unwrap();
        let entries: Vec<(Key, Option<&[u8]>)> =
            keys.iter().map(|k| (*k, model.get(k).map(|v| v.as_slice()))).collect();
        proof.verify(&root, &entries).unwrap();
        prop_assert_eq!(proof.root().unwrap(), root);

        // Deduplicated: never larger than the single proofs together.
        let singles: usize = keys.iter().map(|k| tree.tree.prove(&root, k).unwrap().1.siblings.len() + 1).sum();
        prop_assert!(proof.nodes.len() <= 3 * singles.max(1) + 1);

        // Encoding round trip; trailing bytes rejected.
        let bytes = proof.to_bytes().unwrap();
        prop_assert_eq!(MultiProof::from_bytes(&bytes).unwrap(), proof.clone());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(MultiProof::from_bytes(&longer).is_err());

        // Wrong root.
        let mut wrong_root = root;
        wrong_root[31] ^= 0x80;
        prop_assert!(proof.verify(&wrong_root, &entries).is_err());

        // Wrong value for one entry.
        if let Some((k, v)) = entries.get(pick.index(entries.len().max(1))) {
            let mut bad_entries = entries.clone();
            let other = match v { Some(v) => { let mut o = v.to_vec(); o.push(1); Some(o) } None => Some(vec![1]) };
            bad_entries.retain(|(x, _)| x != k);
            bad_entries.push((*k, other.as_deref()));
            prop_assert!(proof.verify(&root, &bad_entries).is_err());
        }

        // Tamper with one node.
        if !proof.nodes.is_empty() {
            let mut bad = proof.clone();
            let i = pick.index(bad.nodes.len());
            let changed = match &mut bad.nodes[i] {
                ProofNode::Opaque(h) => { h[(flip % 32) as usize] ^= 1; true }
                ProofNode::Leaf(l) => { l.value_hash[(flip % 32) as usize] ^= 1; true }
                ProofNode::Branch => { bad.nodes[i] = ProofNode::Empty; true }
                ProofNode::Empty => { bad.nodes[i] = ProofNode::Opaque(sha256(&[flip])); true }
            };
            prop_assert!(changed);
            prop_assert!(bad.verify(&root, &entries).is_err());
        }
    }
}

#[test]
fn decoding_rejects_oversized_and_non_canonical_proofs() {
    // 257 siblings.
    let proof = SparseMerkleProof {
        siblings: vec![[1; 32]; 257],
        leaf: None,
    };
    assert!(proof.to_bytes().is_err());
    let mut bytes = 257u32.to_le_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(1u8, 257 * 32));
    bytes.push(0);
    assert!(matches!(
        SparseMerkleProof::from_bytes(&bytes),
        Err(InvalidState::MalformedProof(_))
    ));

    // A multiproof claiming more nodes than allowed is rejected before reading them.
    let bytes = (stint_state::MAX_MULTIPROOF_NODES as u32 + 1).to_le_bytes();
    assert!(MultiProof::from_bytes(&bytes).is_err());

    // Unknown node tag.
    let bytes = [1, 0, 0, 0, 9];
    assert!(MultiProof::from_bytes(&bytes).is_err());

    // Non-canonical shapes.
    let leaf = stint_state::LeafNode {
        key: [0; 32],
        value_hash: [1; 32],
    };
    for nodes in [
        vec![ProofNode::Branch, ProofNode::Empty, ProofNode::Empty],
        vec![ProofNode::Branch, ProofNode::Leaf(leaf), ProofNode::Empty],
        vec![ProofNode::Opaque([0; 32])],
        vec![ProofNode::Branch, ProofNode::Opaque([1; 32])],
        vec![ProofNode::Empty, ProofNode::Empty],
        // A leaf placed where its key does not belong (key starts with bit 0, placed right).
        vec![
            ProofNode::Branch,
            ProofNode::Opaque([1; 32]),
            ProofNode::Leaf(leaf),
        ],
    ] {
        assert!(MultiProof { nodes }.root().is_err());
    }
}
