use std::collections::BTreeSet;

use bitcoin::hashes::Hash as _;
use proptest::prelude::*;
use stint_contracts::{account_entry, account_key, Account, Call, InvalidTxReason, SignedTx};
use stint_protocol::{
    build_fraud_proof, BatchBuilder, BuildParams, Checkpoint, Fraud, FraudProof, Genesis, Judge,
    JudgeError, L1Origin, ParentFacts, Verdict, MAX_FRAUD_PROOF_BYTES,
};
use stint_state::{ChangeSet, MemoryNodeStore, SparseMerkleTree};

use crate::common::*;

/// Genesis with K = 4 and an honest batch 1 of 10 transfers (segments of 4, 4, 2).
fn honest() -> (Genesis, MemoryNodeStore, stint_protocol::SealedBatch) {
    let g = genesis_with(&start_block(), 4, 6);
    let (mut store, root) = genesis_store(&g);
    let txs = (0..10).map(|n| transfer(ALICE, BOB, n, 100 + n)).collect();
    let sealed = build(
        &g,
        &mut store,
        ParentFacts::genesis(&g, root),
        (0, &start_block()),
        txs,
    );
    assert_eq!(sealed.batch.checkpoints().len(), 3);
    assert!(sealed.rejected.is_empty());
    (g, store, sealed)
}

#[test]
fn honest_segments_are_not_fraud() {
    let (g, store, sealed) = honest();
    let tree = SparseMerkleTree::new(&store);
    for j in 1..=3 {
        let proof = build_fraud_proof(&g, &tree, &sealed.batch, j, account(BOB)).unwrap();
        let bytes = proof.encode().unwrap();
        assert_eq!(FraudProof::decode(&bytes).unwrap(), proof);
        assert_eq!(
            Judge::judge_bytes(&g, sealed.batch.header(), &bytes).unwrap(),
            Verdict::NoFraud
        );
    }
    let replay = BatchBuilder::new(&g).replay(&store, &sealed.batch).unwrap();
    assert_eq!(replay.fraud_segment, None);
    assert_eq!(replay.checkpoints, sealed.batch.checkpoints());
}

#[test]
fn forged_checkpoint_is_fraud_and_bad_proofs_are_rejected() {
    let (g, store, sealed) = honest();
    let forged = forge_checkpoint(&sealed.batch, 1, [0xab; 32]);
    let header = forged.header().clone();
    let replay = BatchBuilder::new(&g).replay(&store, &forged).unwrap();
    assert_eq!(replay.fraud_segment, Some(2));

    let tree = SparseMerkleTree::new(&store);
    let proof = build_fraud_proof(&g, &tree, &forged, 2, account(BOB)).unwrap();
    match Judge::judge(&g, &header, &proof).unwrap() {
        Verdict::Fraud(Fraud::WrongCheckpoint {
            segment: 2,
            claimed,
            computed,
        }) => {
            assert_eq!(claimed, [0xab; 32]);
            assert_eq!(computed, sealed.batch.checkpoints()[1].state_root);
        }
        other => panic!("expected fraud, got {other:?}"),
    }
    // Segment 3 starts from the forged checkpoint, which the honest tree does not hold.
    assert!(build_fraud_proof(&g, &tree, &forged, 3, account(BOB)).is_err());

    // Against the honest batch the same proof targets another batch.
    assert!(matches!(
        Judge::judge(&g, sealed.batch.header(), &proof),
        Err(JudgeError::WrongBatch { .. })
    ));

    // A tampered checkpoint path.
    let mut bad = proof.clone();
    bad.post_proof.siblings[0][0] ^= 1;
    assert_eq!(
        Judge::judge(&g, &header, &bad),
        Err(JudgeError::BadCheckpoint { which: "post" })
    );
    let mut bad = proof.clone();
    bad.pre_proof.siblings.push([0; 32]);
    assert_eq!(
        Judge::judge(&g, &header, &bad),
        Err(JudgeError::BadCheckpoint { which: "pre" })
    );

    // A tampered tx path.
    let mut bad = proof.clone();
    bad.tx_proofs[2].siblings[0][5] ^= 1;
    assert_eq!(
        Judge::judge(&g, &header, &bad),
        Err(JudgeError::BadTxProof { index: 2 })
    );
    let mut bad = proof.clone();
    bad.txs.swap(0, 1);
    assert!(matches!(
        Judge::judge(&g, &header, &bad),
        Err(JudgeError::BadTxProof { .. })
    ));

    // Wrong segment indices.
    let mut bad = proof.clone();
    bad.segment = 4;
    assert_eq!(
        Judge::judge(&g, &header, &bad),
        Err(JudgeError::WrongSegment {
            segment: 4,
            segments: 3
        })
    );
    let mut bad = proof.clone();
    bad.segment = 0;
    assert!(matches!(
        Judge::judge(&g, &header, &bad),
        Err(JudgeError::WrongSegment { .. })
    ));
    let mut bad = proof.clone();
    bad.segment = 3;
    assert!(Judge::judge(&g, &header, &bad).is_err());

    // A witness that misses a key the segment writes (the fee recipient and Bob).
    let mut bad = proof.clone();
    let only_alice: BTreeSet<_> = [account_key(&account(ALICE))].into_iter().collect();
    bad.witness = tree
        .witness(&proof.pre_checkpoint.state_root, &only_alice)
        .unwrap();
    assert!(matches!(
        Judge::judge(&g, &header, &bad),
        Err(JudgeError::WitnessMissingKey(_))
    ));

    // A witness for another root.
    let mut bad = proof.clone();
    bad.witness = tree.witness(&header.prev_state_root, &only_alice).unwrap();
    assert!(matches!(
        Judge::judge(&g, &header, &bad),
        Err(JudgeError::BadWitness(_))
    ));
}

/// v1 committed txids only, so a copy of an honest batch with one signature swapped built a
/// proof that convicted the honest header. v2's `tx_root` covers the signature: the proof is
/// rejected (it proves nothing), and derivation would not accept the copy as a batch either.
#[test]
fn a_swapped_signature_in_a_copy_does_not_convict_the_honest_batch() {
    let (g, store, sealed) = honest();
    let (header, checkpoints, mut txs) = sealed.batch.clone().into_parts();
    txs[5].sig = [7; 64];
    let copy = stint_protocol::Batch::new(header.clone(), checkpoints, txs);
    let tree = SparseMerkleTree::new(&store);
    let proof = build_fraud_proof(&g, &tree, &copy, 2, account(BOB)).unwrap();
    // The copy's paths lead to another tx_root: the first tx of the segment already fails.
    assert!(matches!(
        Judge::judge(&g, &header, &proof),
        Err(JudgeError::BadTxProof { .. })
    ));
    assert_eq!(copy.check_body(&g), Err(stint_protocol::BatchError::TxRoot));
}

/// A sequencer that really seals a tx with a bad signature commits to it (by wtxid), so that
/// fraud stays provable.
#[test]
fn a_sealed_invalid_signature_is_fraud() {
    let (g, store, sealed) = honest();
    let (mut header, checkpoints, mut txs) = sealed.batch.clone().into_parts();
    txs[5].sig = [7; 64];
    header.tx_root = stint_protocol::tx_root(&txs);
    let forged = stint_protocol::Batch::new(header.clone(), checkpoints, txs);
    let tree = SparseMerkleTree::new(&store);
    let proof = build_fraud_proof(&g, &tree, &forged, 2, account(BOB)).unwrap();
    assert_eq!(
        Judge::judge(&g, &header, &proof).unwrap(),
        Verdict::Fraud(Fraud::InvalidTx {
            index: 5,
            reason: InvalidTxReason::BadSignature
        })
    );
    assert_eq!(
        BatchBuilder::new(&g)
            .replay(&store, &forged)
            .unwrap()
            .fraud_segment,
        Some(2)
    );
}

/// What an outsider can change in a proof or in the batch copy it builds the proof from.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip a byte of a tx's signature in the copy, then build the proof from the copy.
    CopySig { tx: usize, byte: usize },
    /// Change a tx's amount or fee in the copy (and re-sign it: any key can sign anything).
    CopyCall { tx: usize, delta: u64, resign: bool },
    /// Drop a tx from the copy.
    CopyDrop { tx: usize },
    /// Swap two txs of the copy.
    CopySwap { a: usize, b: usize },
    /// Flip a byte of a tx inside the proof (signature, or a re-signed amount).
    ProofTx {
        tx: usize,
        byte: usize,
        amount: bool,
    },
    /// Flip a byte of a tx path.
    TxPath {
        tx: usize,
        sibling: usize,
        byte: usize,
    },
    /// Another segment index.
    Segment { delta: i64 },
    /// Another pre or post checkpoint (with or without a matching path).
    Checkpoint { post: bool, byte: usize },
    /// Flip a byte of a checkpoint path.
    CheckpointPath {
        post: bool,
        sibling: usize,
        byte: usize,
    },
    /// Change, add or drop a witness value.
    WitnessValue { index: usize, byte: usize, kind: u8 },
    /// Replace a witness node by an opaque hash or drop it.
    WitnessNode { index: usize, drop: bool, byte: u8 },
    /// Truncate the proof's tx list.
    DropTx { tx: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = 0usize..16;
    prop_oneof![
        (i.clone(), 0usize..64).prop_map(|(tx, byte)| Mutation::CopySig { tx, byte }),
        (i.clone(), 1u64..1_000, any::<bool>())
            .prop_map(|(tx, delta, resign)| Mutation::CopyCall { tx, delta, resign }),
        i.clone().prop_map(|tx| Mutation::CopyDrop { tx }),
        (i.clone(), i.clone()).prop_map(|(a, b)| Mutation::CopySwap { a, b }),
        (i.clone(), 0usize..64, any::<bool>()).prop_map(|(tx, byte, amount)| Mutation::ProofTx {
            tx,
            byte,
            amount
        }),
        (i.clone(), 0usize..8, 0usize..32).prop_map(|(tx, sibling, byte)| Mutation::TxPath {
            tx,
            sibling,
            byte
        }),
        (-2i64..=2).prop_map(|delta| Mutation::Segment { delta }),
        (any::<bool>(), 0usize..32).prop_map(|(post, byte)| Mutation::Checkpoint { post, byte }),
        (any::<bool>(), 0usize..8, 0usize..32).prop_map(|(post, sibling, byte)| {
            Mutation::CheckpointPath {
                post,
                sibling,
                byte,
            }
        }),
        (0usize..16, 0usize..64, 0u8..3).prop_map(|(index, byte, kind)| Mutation::WitnessValue {
            index,
            byte,
            kind
        }),
        (0usize..64, any::<bool>(), any::<u8>())
            .prop_map(|(index, drop, byte)| Mutation::WitnessNode { index, drop, byte }),
        i.prop_map(|tx| Mutation::DropTx { tx }),
    ]
}

/// Builds the proof an attacker would post after `mutation`; `None` when the prover refuses.
fn mutated_proof(
    g: &Genesis,
    store: &MemoryNodeStore,
    honest: &stint_protocol::Batch,
    segment: u64,
    mutation: &Mutation,
) -> Option<FraudProof> {
    let tree = SparseMerkleTree::new(store);
    let (header, checkpoints, mut txs) = honest.clone().into_parts();
    let n = txs.len();
    let from_copy = |txs: Vec<SignedTx>| {
        let copy = stint_protocol::Batch::new(header.clone(), checkpoints.clone(), txs);
        build_fraud_proof(g, &tree, &copy, segment, account(BOB)).ok()
    };
    let mut proof = match mutation {
        Mutation::CopySig { tx, byte } => {
            txs[tx % n].sig[*byte] ^= 0x5a;
            return from_copy(txs);
        }
        Mutation::CopyCall { tx, delta, resign } => {
            let stx = &mut txs[tx % n];
            if let Call::Transfer { amount, .. } = &mut stx.tx.call {
                *amount = amount.wrapping_add(*delta);
            }
            stx.tx.fee = stx.tx.fee.wrapping_add(*delta % 3);
            if *resign {
                let signer = if stx.tx.from == account(ALICE) {
                    ALICE
                } else {
                    BOB
                };
                *stx = stx.tx.clone().sign(&signing_key(signer)).unwrap();
            }
            return from_copy(txs);
        }
        Mutation::CopyDrop { tx } => {
            txs.remove(tx % n);
            return from_copy(txs);
        }
        Mutation::CopySwap { a, b } => {
            txs.swap(a % n, b % n);
            return from_copy(txs);
        }
        _ => build_fraud_proof(g, &tree, honest, segment, account(BOB)).ok()?,
    };
    match mutation {
        Mutation::ProofTx { tx, byte, amount } if !proof.txs.is_empty() => {
            let len = proof.txs.len();
            let stx = &mut proof.txs[tx % len];
            if *amount {
                if let Call::Transfer { amount, .. } = &mut stx.tx.call {
                    *amount ^= 1 << (byte % 16);
                }
                let signer = if stx.tx.from == account(ALICE) {
                    ALICE
                } else {
                    BOB
                };
                *stx = stx.tx.clone().sign(&signing_key(signer)).unwrap();
            } else {
                stx.sig[*byte] ^= 1;
            }
        }
        Mutation::TxPath { tx, sibling, byte } if !proof.tx_proofs.is_empty() => {
            let len = proof.tx_proofs.len();
            let path = &mut proof.tx_proofs[tx % len];
            if path.siblings.is_empty() {
                path.siblings.push([*byte as u8; 32]);
            } else {
                let s = sibling % path.siblings.len();
                path.siblings[s][*byte] ^= 1;
            }
        }
        Mutation::Segment { delta } => {
            proof.segment = proof.segment.wrapping_add_signed(*delta);
        }
        Mutation::Checkpoint { post, byte } => {
            let target = if *post {
                &mut proof.post_checkpoint
            } else {
                &mut proof.pre_checkpoint
            };
            if *byte < 4 {
                target.tx_end ^= 1 << byte;
            } else {
                target.state_root[*byte] ^= 1;
            }
        }
        Mutation::CheckpointPath {
            post,
            sibling,
            byte,
        } => {
            let path = if *post {
                &mut proof.post_proof
            } else {
                &mut proof.pre_proof
            };
            if path.siblings.is_empty() {
                path.siblings.push([*byte as u8; 32]);
            } else {
                let s = sibling % path.siblings.len();
                path.siblings[s][*byte] ^= 1;
            }
        }
        Mutation::WitnessValue { index, byte, kind } => {
            let values = &mut proof.witness.values;
            match kind {
                0 if !values.is_empty() => {
                    let len = values.len();
                    let value = &mut values[index % len].1;
                    if value.is_empty() {
                        value.push(1);
                    } else {
                        let b = byte % value.len();
                        value[b] ^= 1;
                    }
                }
                1 if !values.is_empty() => {
                    let len = values.len();
                    values.remove(index % len);
                }
                _ => {
                    let mut key = [0xffu8; 32];
                    key[31] = *byte as u8;
                    if values.iter().all(|(k, _)| *k < key) {
                        values.push((key, vec![1, 2, 3]));
                    }
                }
            }
        }
        Mutation::WitnessNode { index, drop, byte } if !proof.witness.proof.nodes.is_empty() => {
            let nodes = &mut proof.witness.proof.nodes;
            let i = index % nodes.len();
            if *drop {
                nodes.remove(i);
            } else {
                nodes[i] = stint_state::ProofNode::Opaque([*byte | 1; 32]);
            }
        }
        Mutation::DropTx { tx } if !proof.txs.is_empty() => {
            let len = proof.txs.len();
            proof.txs.remove(tx % len);
            proof.tx_proofs.remove(tx % len);
        }
        _ => {}
    }
    Some(proof)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Soundness for the honest sequencer: whatever an outsider changes in a proof, or in the
    /// copy of the honest batch it builds the proof from, the judge never finds fraud in an
    /// honest header (it rejects the proof or finds no fraud).
    #[test]
    fn no_modified_proof_convicts_an_honest_batch(
        amounts in prop::collection::vec(1u64..2_000, 1..13),
        segment in 1u64..5,
        mutation in mutation(),
    ) {
        let g = genesis_with(&start_block(), 4, 6);
        let (mut store, root) = genesis_store(&g);
        // Alice and Bob alternate; some of Bob's transfers overdraw (they fail, honestly).
        let txs: Vec<SignedTx> = amounts
            .iter()
            .enumerate()
            .map(|(i, amount)| {
                let (from, to) = if i % 2 == 0 { (ALICE, BOB) } else { (BOB, ALICE) };
                transfer(from, to, (i / 2) as u64, *amount)
            })
            .collect();
        let sealed = build(&g, &mut store, ParentFacts::genesis(&g, root), (0, &start_block()), txs);
        let header = sealed.batch.header().clone();
        let segments = sealed.batch.checkpoints().len() as u64;
        let segment = (segment - 1) % segments + 1;
        if let Some(proof) = mutated_proof(&g, &store, &sealed.batch, segment, &mutation) {
            let verdict = Judge::judge(&g, &header, &proof);
            prop_assert!(!matches!(verdict, Ok(Verdict::Fraud(_))), "{mutation:?} convicted: {verdict:?}");
            if let Ok(bytes) = proof.encode() {
                let verdict = Judge::judge_bytes(&g, &header, &bytes);
                prop_assert!(!matches!(verdict, Ok(Verdict::Fraud(_))), "{mutation:?} convicted: {verdict:?}");
            }
        }
    }
}

#[test]
fn overdraft_claimed_as_success_is_fraud() {
    let g = genesis_with(&start_block(), 4, 6);
    let (mut store, root) = genesis_store(&g);
    // Bob has 1,000 and sends 5,000: honestly the call fails and only the fee is charged.
    let tx = transfer(BOB, ALICE, 0, 5_000);
    let sealed = build(
        &g,
        &mut store,
        ParentFacts::genesis(&g, root),
        (0, &start_block()),
        vec![tx],
    );
    assert!(sealed.receipts[0].error.is_some());
    // The sequencer pretends it succeeded.
    let pretend: ChangeSet = [
        account_entry(
            &account(BOB),
            &Account {
                balance: 0,
                nonce: 1,
            },
        ),
        account_entry(
            &account(ALICE),
            &Account {
                balance: 1_005_000,
                nonce: 0,
            },
        ),
        account_entry(
            &account(FEES),
            &Account {
                balance: 1,
                nonce: 0,
            },
        ),
    ]
    .into_iter()
    .collect();
    let update = SparseMerkleTree::new(&store)
        .apply(&root, &pretend)
        .unwrap();
    let forged = forge_checkpoint(&sealed.batch, 0, update.root);
    let proof = build_fraud_proof(
        &g,
        &SparseMerkleTree::new(&store),
        &forged,
        1,
        account(ALICE),
    )
    .unwrap();
    assert!(matches!(
        Judge::judge(&g, forged.header(), &proof).unwrap(),
        Verdict::Fraud(Fraud::WrongCheckpoint { segment: 1, .. })
    ));
}

#[test]
fn oversized_and_malformed_proofs_are_rejected_before_judging() {
    let (g, _, sealed) = honest();
    let big = vec![0u8; MAX_FRAUD_PROOF_BYTES + 1];
    assert!(matches!(
        Judge::judge_bytes(&g, sealed.batch.header(), &big),
        Err(JudgeError::TooLarge { .. })
    ));
    assert!(matches!(
        FraudProof::decode(&[1, 2, 3]),
        Err(JudgeError::Malformed(_))
    ));
}

#[test]
fn builder_drops_invalid_txs_and_refills_segments() {
    let g = genesis_with(&start_block(), 2, 6);
    let (mut store, root) = genesis_store(&g);
    let txs = vec![
        transfer(ALICE, BOB, 0, 1),
        transfer(ALICE, BOB, 5, 1), // wrong nonce
        transfer(ALICE, BOB, 1, 1),
        transfer(ALICE, BOB, 2, 1),
    ];
    let sealed = build(
        &g,
        &mut store,
        ParentFacts::genesis(&g, root),
        (0, &start_block()),
        txs,
    );
    assert_eq!(sealed.rejected.len(), 1);
    assert_eq!(sealed.rejected[0].index, 1);
    assert!(matches!(
        sealed.rejected[0].reason,
        InvalidTxReason::WrongNonce { .. }
    ));
    assert_eq!(sealed.batch.txs().len(), 3);
    assert_eq!(sealed.batch.checkpoints().len(), 2);
    assert_eq!(sealed.batch.header().state_root, sealed.updates[1].root);
    sealed.batch.check_body(&g).unwrap();
    let store2 = genesis_store(&g).0;
    assert_eq!(
        BatchBuilder::new(&g)
            .replay(&store2, &sealed.batch)
            .unwrap()
            .fraud_segment,
        None
    );
}

#[test]
fn prechecked_signatures_build_the_same_batch_and_trust_what_they_are_given() {
    let g = genesis_with(&start_block(), 2, 6);
    let (store, root) = genesis_store(&g);
    let params = BuildParams {
        parent: ParentFacts::genesis(&g, root),
        timestamp: T0,
        l1_origin: L1Origin {
            height: 0,
            hash: start_block().block_hash().to_byte_array(),
        },
    };
    let txs: Vec<SignedTx> = (0..5).map(|n| transfer(ALICE, BOB, n, 1)).collect();
    let checked = BatchBuilder::new(&g)
        .build(&store, &params, txs.clone())
        .unwrap();
    let trusted = BatchBuilder::new(&g)
        .with_prechecked_signatures()
        .build(&store, &params, txs.clone())
        .unwrap();
    assert_eq!(checked.batch, trusted.batch);
    assert_eq!(checked.receipts, trusted.receipts);

    // A bad signature on the last tx: the checking builder drops it, the trusting one seals it,
    // and replay finds the fraud in its segment (the third, with K = 2).
    let mut forged = txs;
    forged[4].sig[63] ^= 1;
    let checked = BatchBuilder::new(&g)
        .build(&store, &params, forged.clone())
        .unwrap();
    assert_eq!(checked.rejected.len(), 1);
    assert!(matches!(
        checked.rejected[0].reason,
        InvalidTxReason::BadSignature
    ));
    let trusted = BatchBuilder::new(&g)
        .with_prechecked_signatures()
        .build(&store, &params, forged)
        .unwrap();
    assert_eq!(trusted.batch.txs().len(), 5);
    assert_eq!(
        BatchBuilder::new(&g)
            .replay(&store, &trusted.batch)
            .unwrap()
            .fraud_segment,
        Some(3)
    );
}

#[test]
fn empty_batch_has_one_checkpoint_equal_to_the_parent_root() {
    let g = genesis_with(&start_block(), 4, 6);
    let (mut store, root) = genesis_store(&g);
    let sealed = build(
        &g,
        &mut store,
        ParentFacts::genesis(&g, root),
        (0, &start_block()),
        vec![],
    );
    assert_eq!(sealed.batch.checkpoints(), &[Checkpoint::new(root, 0)]);
    assert_eq!(sealed.batch.header().state_root, root);
    sealed.batch.check_body(&g).unwrap();
    let proof = build_fraud_proof(
        &g,
        &SparseMerkleTree::new(&store),
        &sealed.batch,
        1,
        account(BOB),
    )
    .unwrap();
    assert_eq!(
        Judge::judge(&g, sealed.batch.header(), &proof).unwrap(),
        Verdict::NoFraud
    );
}
