use std::collections::BTreeSet;

use bitcoin::hashes::Hash as _;
use stint_contracts::{account_entry, account_key, Account, InvalidTxReason, SignedTx};
use stint_protocol::{
    build_fraud_proof, BatchBuilder, BuildParams, Fraud, FraudProof, Genesis, Judge, JudgeError,
    L1Origin, ParentFacts, Verdict, MAX_FRAUD_PROOF_BYTES,
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
        let bytes = proof.encode();
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
            assert_eq!(computed, sealed.batch.checkpoints()[1]);
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
    bad.witness = tree.witness(&proof.pre_checkpoint, &only_alice).unwrap();
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

#[test]
fn invalid_signature_is_fraud() {
    let (g, store, sealed) = honest();
    let (header, checkpoints, mut txs) = sealed.batch.clone().into_parts();
    txs[5].sig = [7; 64]; // the txid does not cover the signature: roots stay the same
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
    assert_eq!(sealed.batch.checkpoints(), &[root]);
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
