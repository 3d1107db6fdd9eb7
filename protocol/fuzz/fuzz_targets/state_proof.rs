#![no_main]
//! Decoding of Merkle proofs, multiproofs and state witnesses (all carried inside fraud proofs
//! and `stint_getAccount` answers) must never panic; accepted encodings must be canonical, and
//! using a decoded proof must not panic.

use libfuzzer_sys::fuzz_target;
use stint_state::{ChangeSet, MultiProof, SparseMerkleProof, StateWitness, WitnessView};

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = SparseMerkleProof::from_bytes(data) {
        assert_eq!(proof.to_bytes().ok().as_deref(), Some(data), "non-canonical proof");
        let _ = proof.compute_root(&[7u8; 32], Some(b"v"));
        let _ = proof.compute_root(&[7u8; 32], None);
    }
    if let Ok(proof) = MultiProof::from_bytes(data) {
        assert_eq!(proof.to_bytes().ok().as_deref(), Some(data), "non-canonical multiproof");
    }
    if let Ok(witness) = StateWitness::from_bytes(data) {
        assert_eq!(witness.to_bytes().ok().as_deref(), Some(data), "non-canonical witness");
        if let Ok(mut view) = WitnessView::new([3u8; 32], &witness) {
            let _ = view.root_after(&ChangeSet::new());
            let _ = view.apply(&ChangeSet::new());
        }
    }
});
