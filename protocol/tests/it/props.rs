use proptest::prelude::*;
use stint_protocol::{merkle_root, Batch, BatchHeader, Checkpoint, MerkleProof};

use crate::common::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn merkle_proofs_verify_and_tampering_fails(
        items in prop::collection::vec(any::<[u8; 32]>(), 1..40),
        pick in any::<prop::sample::Index>(),
        flip in any::<(u8, u8)>(),
    ) {
        let root = merkle_root(&items);
        let n = items.len() as u64;
        let i = pick.index(items.len());
        let proof = MerkleProof::build(&items, i).unwrap();
        prop_assert!(proof.verify(&root, &items[i], i as u64, n));
        let mut item = items[i];
        item[(flip.0 % 32) as usize] ^= flip.1 | 1;
        prop_assert!(!proof.verify(&root, &item, i as u64, n));
        if !proof.siblings.is_empty() {
            let mut bad = proof.clone();
            let s = flip.0 as usize % bad.siblings.len();
            bad.siblings[s][(flip.1 % 32) as usize] ^= 1;
            prop_assert!(!bad.verify(&root, &items[i], i as u64, n));
        }
        if n > 1 {
            prop_assert!(!proof.verify(&root, &items[i], (i as u64 + 1) % n, n));
        }
    }

    #[test]
    fn batch_encoding_round_trips_and_is_strict(
        number in any::<u64>(),
        checkpoints in prop::collection::vec(any::<([u8; 32], u32)>(), 0..5),
        ntx in 0u64..4,
        extra in any::<u8>(),
    ) {
        let txs: Vec<_> = (0..ntx).map(|n| transfer(ALICE, BOB, n, 1 + n)).collect();
        let header = BatchHeader { number, tx_count: ntx as u32, ..BatchHeader::default() };
        let checkpoints = checkpoints.into_iter().map(|(r, e)| Checkpoint::new(r, e)).collect();
        let batch = Batch::new(header, checkpoints, txs);
        let bytes = batch.encode().unwrap();
        prop_assert_eq!(bytes.len(), batch.encoded_len());
        prop_assert_eq!(&Batch::decode(&bytes).unwrap(), &batch);
        let mut longer = bytes.clone();
        longer.push(extra);
        prop_assert!(Batch::decode(&longer).is_err());
        prop_assert!(Batch::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn batch_decoding_never_panics_and_accepts_only_canonical_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        if let Ok(batch) = Batch::decode(&bytes) {
            prop_assert_eq!(batch.encode().unwrap(), bytes);
        }
    }
}
