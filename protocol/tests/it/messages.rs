//! L1 messages in batches (protocol v3): a batch executes, first and in order, exactly the
//! messages due at its origin; derivation rejects one that omits, reorders, drops or invents a
//! message, and a message segment is fraud-provable like any other.

use bitcoin::hashes::Hash as _;
use bitcoin::{Block, Transaction};
use stint_contracts::{read_account, InvalidTxReason, MessageReceipt, SignedTx};
use stint_protocol::{
    build_fraud_proof_with_messages, Batch, BatchBuilder, BatchError, BuildParams, Checkpoint,
    Deposit, Derivation, DerivationEvent, EnvelopeKind, Fraud, Genesis, Judge, JudgeError,
    L1Message, L1MessageKind, L1Origin, ParentFacts, SealedBatch, Verdict,
};
use stint_state::{MemoryNodeStore, SparseMerkleTree};

use crate::common::*;

const CONFIRMATIONS: u64 = 2;
const WINDOW: u64 = 3;

/// A chain of synthetic blocks with a bridge genesis (`K` = 2, 2 confirmations), a derivation
/// following it and a store of honest states.
struct World {
    g: Genesis,
    store: MemoryNodeStore,
    genesis_root: [u8; 32],
    derivation: Derivation,
    blocks: Vec<Block>,
    salt: u32,
}

impl World {
    fn new() -> Self {
        let start = start_block();
        let mut g = genesis_with(&start, 2, 6);
        g.bridge = Some(bridge());
        g.l1_confirmations = CONFIRMATIONS;
        g.sequencing_window = WINDOW;
        g.validate().unwrap();
        let (store, genesis_root) = genesis_store(&g);
        let mut derivation = Derivation::new(g.clone(), genesis_root);
        derivation.connect_block(0, &start).unwrap();
        Self {
            g,
            store,
            genesis_root,
            derivation,
            blocks: vec![start],
            salt: 200,
        }
    }

    fn tip(&self) -> u64 {
        self.blocks.len() as u64 - 1
    }

    fn mine(&mut self, txdata: Vec<Transaction>) -> Vec<DerivationEvent> {
        self.salt += 1;
        let prev = self.blocks.last().unwrap().block_hash();
        let b = block(prev, T0 + 600 * self.blocks.len() as u64, self.salt, txdata);
        let events = self.derivation.connect_block(self.tip() + 1, &b).unwrap();
        self.blocks.push(b);
        events
    }

    fn params(&self, parent: ParentFacts) -> BuildParams {
        self.params_at(parent, self.tip())
    }

    fn params_at(&self, parent: ParentFacts, origin: u64) -> BuildParams {
        BuildParams {
            parent,
            timestamp: T0 + 600 * origin,
            l1_origin: L1Origin {
                height: origin,
                hash: self.blocks[origin as usize].block_hash().to_byte_array(),
            },
        }
    }

    /// Build (honestly) a batch on `parent` with the current tip as origin that executes
    /// `messages`, whatever derivation says is due.
    fn build(
        &self,
        parent: ParentFacts,
        messages: &[L1Message],
        txs: Vec<SignedTx>,
    ) -> SealedBatch {
        BatchBuilder::new(&self.g)
            .build_with_messages(&self.store, &self.params(parent), messages, txs)
            .unwrap()
    }

    fn keep(&mut self, sealed: &SealedBatch) {
        for update in &sealed.updates {
            self.store.write(update);
        }
    }

    fn reveal_batch(&mut self, batch: &Batch) -> Transaction {
        self.salt += 1;
        let envelope = batch_envelope(&self.g, ANCHOR, batch.hash(), batch.encode().unwrap());
        reveal_envelope(&envelope, ANCHOR, self.salt)
    }

    fn genesis_parent(&self) -> ParentFacts {
        ParentFacts::genesis(&self.g, self.genesis_root)
    }
}

fn anchored(events: &[DerivationEvent]) -> Vec<(u64, [u8; 32])> {
    events
        .iter()
        .filter_map(|e| match e {
            DerivationEvent::BatchAnchored { batch, .. } => {
                Some((batch.header().number, batch.hash()))
            }
            _ => None,
        })
        .collect()
}

fn rejections(events: &[DerivationEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            DerivationEvent::BatchRejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Block 1 holds a deposit of 50,000 sats to account 3, a forced transfer from Alice, and a
/// forced transfer with a wrong nonce; block 2 is empty. With 2 confirmations, a batch with
/// origin 2 must execute block 1's three messages.
fn world_with_messages() -> (World, Vec<L1Message>) {
    let mut w = World::new();
    w.mine(vec![
        deposit_tx(3, 50_000, 1),
        reveal(
            EnvelopeKind::ForcedTx,
            40,
            transfer(ALICE, BOB, 0, 7).encode(),
            2,
        ),
        reveal(
            EnvelopeKind::ForcedTx,
            41,
            transfer(ALICE, BOB, 9, 7).encode(),
            3,
        ),
    ]);
    assert_eq!(
        w.derivation.messages_due(0, 1).len(),
        0,
        "one confirmation is not enough"
    );
    w.mine(vec![]);
    let due = w.derivation.messages_due(0, w.tip());
    assert_eq!(due.len(), 3);
    (w, due)
}

#[test]
fn deposits_credit_and_an_invalid_forced_tx_is_skipped_with_a_receipt() {
    let (w, due) = world_with_messages();
    let sealed = w.build(w.genesis_parent(), &due, vec![transfer(ALICE, BOB, 1, 5)]);
    let header = sealed.batch.header();
    assert_eq!(header.msg_count, 3);
    assert_eq!(header.msg_root, stint_protocol::message_root(&due));
    // K = 2: two message segments, then the tx segment.
    assert_eq!(sealed.batch.message_segment_count(), 2);
    assert_eq!(sealed.batch.segment_count(), 3);
    assert_eq!(sealed.batch.segment_range(3), Some(0..1));
    assert!(matches!(
        sealed.message_receipts.as_slice(),
        [
            MessageReceipt::Credited { amount: 50_000, .. },
            MessageReceipt::Executed(r),
            MessageReceipt::Skipped {
                reason: InvalidTxReason::WrongNonce { found: 9, expected: 1 },
                ..
            },
        ] if r.error.is_none()
    ));
    let mut store = w.store;
    for update in &sealed.updates {
        store.write(update);
    }
    let tree = SparseMerkleTree::new(&store);
    let balance = |seed| {
        read_account(&tree.view(header.state_root), &account(seed))
            .unwrap()
            .balance
    };
    assert_eq!(balance(3), 50_000);
    assert_eq!(balance(ALICE), 1_000_000 - 1 - 7 - 1 - 5);
    assert_eq!(balance(BOB), 1_000 + 7 + 5);
    assert_eq!(balance(FEES), 2);
}

#[test]
fn a_batch_that_omits_reorders_drops_or_invents_a_message_is_rejected() {
    let (mut w, due) = world_with_messages();
    let parent = w.genesis_parent();
    let honest = w.build(parent, &due, vec![]);
    // An attacker's batches, each built honestly over the wrong messages and signed with the
    // anchor key (the sequencer is the attacker), so only the message rule can refuse them.
    let omitted = w.build(parent, &[], vec![transfer(ALICE, BOB, 0, 5)]);
    let reordered = w.build(
        parent,
        &[due[1].clone(), due[0].clone(), due[2].clone()],
        vec![],
    );
    let dropped = w.build(parent, &due[..2], vec![]);
    let invented = {
        let mut more = due.clone();
        more.push(L1Message {
            height: 1,
            index: 3,
            kind: L1MessageKind::Deposit(Deposit {
                txid: [0xaa; 32],
                vout: 0,
                account: account(ALICE),
                amount: 1_000_000,
            }),
        });
        w.build(parent, &more, vec![])
    };
    let forged_count = {
        // Header copied from the honest batch, the count lowered: structure still checks out.
        let (mut header, checkpoints, txs) = honest.batch.clone().into_parts();
        header.msg_count = 2;
        let checkpoints = vec![Checkpoint::new(checkpoints[0].state_root, 2)];
        header.trace_root = stint_protocol::trace_root(&checkpoints);
        header.state_root = checkpoints[0].state_root;
        Batch::new(header, checkpoints, txs)
    };
    let forgeries = [
        &omitted.batch,
        &reordered.batch,
        &dropped.batch,
        &invented.batch,
        &forged_count,
    ];
    let mut txs: Vec<Transaction> = forgeries.iter().map(|b| w.reveal_batch(b)).collect();
    txs.push(w.reveal_batch(&honest.batch));
    let events = w.mine(txs);
    assert_eq!(anchored(&events), vec![(1, honest.batch.hash())]);
    let reasons = rejections(&events);
    assert_eq!(reasons.len(), forgeries.len(), "{reasons:?}");
    for reason in &reasons {
        assert!(
            reason.contains("msg_count") || reason.contains("msg_root"),
            "{reason}"
        );
    }
    // What the batch executed is on record, and nothing is pending any more.
    assert_eq!(w.derivation.batch_messages(1), due);
    assert_eq!(w.derivation.pending_l1_messages().count(), 0);
}

#[test]
fn the_same_message_is_never_due_twice_and_later_blocks_come_later() {
    let (mut w, due) = world_with_messages();
    let first = w.build(w.genesis_parent(), &due, vec![]);
    w.keep(&first);
    let reveal = w.reveal_batch(&first.batch);
    w.mine(vec![reveal, deposit_tx(4, 2_000, 5)]); // block 3, with a deposit
                                                   // Batch 2 with origin 3 covers block 2 only: block 1's messages are not due again and
                                                   // block 3's deposit is not confirmed enough yet.
    let parent = ParentFacts::of(first.batch.header());
    assert!(w.derivation.messages_due(2, 3).is_empty());
    let again = w.build(parent, &due, vec![]);
    let second = w.build(parent, &[], vec![]);
    w.keep(&second);
    let (r1, r2) = (w.reveal_batch(&again.batch), w.reveal_batch(&second.batch));
    let events = w.mine(vec![r1, r2]); // block 4
    assert_eq!(anchored(&events), vec![(2, second.batch.hash())]);
    // Batch 3 with origin 4 must credit block 3's deposit.
    let parent = ParentFacts::of(second.batch.header());
    let due3 = w.derivation.messages_due(3, 4);
    assert!(matches!(
        due3.as_slice(),
        [L1Message { height: 3, kind: L1MessageKind::Deposit(d), .. }] if d.amount == 2_000
    ));
    let third = w.build(parent, &due3, vec![]);
    let reveal = w.reveal_batch(&third.batch);
    assert_eq!(
        anchored(&w.mine(vec![reveal])),
        vec![(3, third.batch.hash())]
    );
}

#[test]
fn precheck_and_check_name_the_message_rule() {
    let (w, due) = world_with_messages();
    let omitted = w.build(w.genesis_parent(), &[], vec![]);
    let reason = w.derivation.precheck(&omitted.batch).unwrap_err();
    assert!(reason.contains("msg_count 0 but 3"), "{reason}");
    let honest = w.build(w.genesis_parent(), &due, vec![]);
    assert_eq!(w.derivation.precheck(&honest.batch), Ok(()));
    let reordered = w.build(
        w.genesis_parent(),
        &[due[0].clone(), due[2].clone(), due[1].clone()],
        vec![],
    );
    assert_eq!(
        w.derivation.precheck(&reordered.batch).unwrap_err(),
        BatchError::MsgRoot.to_string()
    );
}

#[test]
fn message_segments_are_fraud_provable_and_honest_ones_are_not() {
    let (mut w, due) = world_with_messages();
    let parent = w.genesis_parent();
    let honest = w.build(parent, &due, vec![transfer(ALICE, BOB, 1, 5)]);
    let g = w.g.clone();
    let builder = BatchBuilder::new(&g);

    // Honest: replay agrees, and no segment's proof convinces the judge.
    let replay = builder
        .replay_with_messages(&w.store, &honest.batch, &due)
        .unwrap();
    assert_eq!(replay.fraud_segment, None);
    assert_eq!(replay.message_receipts, honest.message_receipts);
    let mut store = w.store.clone();
    for update in &honest.updates {
        store.write(update);
    }
    let full = SparseMerkleTree::new(&store);
    for j in 1..=3 {
        let proof =
            build_fraud_proof_with_messages(&w.g, &full, &honest.batch, &due, j, account(BOB))
                .unwrap();
        let bytes = proof.encode().unwrap();
        assert_eq!(
            Judge::judge_bytes(&w.g, honest.batch.header(), &bytes),
            Ok(Verdict::NoFraud),
            "segment {j}"
        );
    }
    // Replaying with other messages than the committed ones is refused, not judged.
    assert!(builder
        .replay_with_messages(&w.store, &honest.batch, &due[..2])
        .is_err());

    // A copy of the honest batch whose first message checkpoint credits someone else.
    let forged = forge_checkpoint(&honest.batch, 0, [0xee; 32]);
    let replay = builder
        .replay_with_messages(&w.store, &forged, &due)
        .unwrap();
    assert_eq!(replay.fraud_segment, Some(1));
    let tree = SparseMerkleTree::new(&w.store);
    let proof =
        build_fraud_proof_with_messages(&w.g, &tree, &forged, &due, 1, account(BOB)).unwrap();
    assert_eq!(proof.messages.len(), 2);
    assert!(proof.txs.is_empty());
    match Judge::judge(&w.g, forged.header(), &proof).unwrap() {
        Verdict::Fraud(Fraud::WrongCheckpoint { segment: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    // The proof's messages are bound to msg_root: a swapped message is a bad proof.
    let mut tampered = proof.clone();
    tampered.messages.swap(0, 1);
    assert_eq!(
        Judge::judge(&w.g, forged.header(), &tampered),
        Err(JudgeError::BadTxProof { index: 0 })
    );
    // Txs instead of messages for a message segment is a bad proof too.
    let mut mixed = proof.clone();
    mixed.txs.push(transfer(ALICE, BOB, 1, 5));
    assert!(matches!(
        Judge::judge(&w.g, forged.header(), &mixed),
        Err(JudgeError::WrongTxCount { .. })
    ));

    // The challenge goes through derivation: the forged batch is anchored, then invalidated.
    let reveal = w.reveal_batch(&forged);
    assert_eq!(anchored(&w.mine(vec![reveal])), vec![(1, forged.hash())]);
    w.salt += 1;
    let challenge = reveal_challenge(&proof, w.salt);
    let events = w.mine(vec![challenge.clone()]);
    assert!(
        events.contains(&DerivationEvent::BatchInvalidated {
            number: 1,
            hash: forged.hash(),
            by: challenge.compute_txid(),
        }),
        "{events:?}"
    );

    // A wrong checkpoint in the tx segment after the messages is proven at the right tx.
    let forged_tx = forge_checkpoint(&honest.batch, 2, [0xdd; 32]);
    let replay = builder
        .replay_with_messages(&w.store, &forged_tx, &due)
        .unwrap();
    assert_eq!(replay.fraud_segment, Some(3));
    let mut store = w.store.clone();
    store.write(&honest.updates[0]);
    store.write(&honest.updates[1]);
    let tree = SparseMerkleTree::new(&store);
    let proof =
        build_fraud_proof_with_messages(&w.g, &tree, &forged_tx, &due, 3, account(BOB)).unwrap();
    assert_eq!(proof.txs.len(), 1);
    assert!(matches!(
        Judge::judge(&w.g, forged_tx.header(), &proof).unwrap(),
        Verdict::Fraud(Fraud::WrongCheckpoint { segment: 3, .. })
    ));
}

fn reveal_challenge(proof: &stint_protocol::FraudProof, salt: u32) -> Transaction {
    reveal(EnvelopeKind::Challenge, 3, proof.encode().unwrap(), salt)
}

/// A censoring sequencer that keeps its L1 origin below a message's block can delay it only
/// until the origin is more than the sequencing window below the anchoring block: then its
/// batch is refused, and any origin it may use covers the message.
#[test]
fn a_censor_that_keeps_its_origin_is_refused_after_the_sequencing_window() {
    let (mut w, due) = world_with_messages(); // messages in block 1, tip 2
    let parent = w.genesis_parent();
    // Origin 1 covers no message yet (horizon 0): a valid batch without them.
    let censoring = BatchBuilder::new(&w.g)
        .build(
            &w.store,
            &w.params_at(parent, 1),
            vec![transfer(ALICE, BOB, 0, 5)],
        )
        .unwrap();
    assert!(w.derivation.messages_due(0, 1).is_empty());
    w.mine(vec![]); // 3: anchoring in block 4 with origin 1 is within the window (lag 3)
    assert_eq!(w.derivation.precheck(&censoring.batch), Ok(()));
    w.mine(vec![]); // 4
                    // In block 5 the lag would be 4 > 3.
    let reveal = w.reveal_batch(&censoring.batch);
    let events = w.mine(vec![reveal]);
    assert!(anchored(&events).is_empty());
    let reasons = rejections(&events);
    assert!(reasons[0].contains("sequencing window"), "{reasons:?}");
    // Every origin the window allows now covers block 1, and no batch executed the messages in
    // time: every node derived batch 1 with just them.
    let derived = derived(&events);
    assert_eq!(derived.len(), 1, "{events:?}");
    assert_eq!(derived[0].1, due);
    // The censor's next batch must restate it: the same messages, from the genesis state.
    let next = w.derivation.next_batch();
    assert_eq!(next.parent.state_root, parent.state_root);
    let honest = BatchBuilder::new(&w.g)
        .build_restating(
            &w.store,
            &w.params(next.parent),
            &w.derivation
                .messages_due(next.message_origin_height, w.tip()),
            &next.spans,
            vec![],
        )
        .unwrap();
    assert_eq!(honest.batch.header().l1_origin.height, 5);
    let reveal = w.reveal_batch(&honest.batch);
    assert_eq!(
        anchored(&w.mine(vec![reveal])),
        vec![(2, honest.batch.hash())]
    );
}

fn derived(events: &[DerivationEvent]) -> Vec<(stint_protocol::BatchRecord, Vec<L1Message>)> {
    events
        .iter()
        .filter_map(|e| match e {
            DerivationEvent::BatchDerived { record, messages } => {
                Some((record.as_ref().clone(), messages.clone()))
            }
            _ => None,
        })
        .collect()
}

/// No sequencer, no stall: with no batch at all, every node derives a batch holding just the
/// messages whose window expired, exactly when it expires (block `h + S + c − 1`); the next
/// posted batch restates the derived ones with a checkpoint at each one's end (a batch without
/// those checkpoints is refused), a wrong restated root is fraud-provable and its challenge
/// leaves the derived batches canonical, a derived batch cannot be challenged, and a reorg
/// removes and re-derives one.
#[test]
fn a_stopped_sequencer_does_not_stall_l1_messages() {
    let (mut w, due) = world_with_messages(); // 3 messages in block 1, tip 2; S = 3, c = 2
    let g = w.g.clone();
    let builder = BatchBuilder::new(&g);
    for _ in 3..5 {
        assert!(derived(&w.mine(vec![])).is_empty(), "not before block 5");
    }
    let events = w.mine(vec![]); // 5 = 1 + S + c - 1
    let d1 = derived(&events);
    assert_eq!(d1.len(), 1, "{events:?}");
    let (d1, d1_messages) = d1.into_iter().next().unwrap();
    assert_eq!(d1_messages, due);
    assert!(d1.header.is_derived());
    assert_eq!((d1.header.number, d1.anchor.height), (1, 5));
    assert_eq!(d1.header.l1_origin.height, 5 - WINDOW);
    assert_eq!(w.derivation.pending_l1_messages().count(), 0);
    assert_eq!(w.derivation.batch_messages(1), due);

    // Every node computes its state: the deposit is credited, the valid forced tx executed and
    // the one with a wrong nonce skipped with a receipt.
    let exec1 = builder
        .execute_derived(&w.store, &d1.header, w.genesis_root, &d1_messages)
        .unwrap();
    w.keep(&exec1);
    let root1 = exec1.updates.last().unwrap().root;
    let tree = SparseMerkleTree::new(&w.store);
    let view = tree.view(root1);
    assert_eq!(read_account(&view, &account(3)).unwrap().balance, 50_000);
    assert_eq!(read_account(&view, &account(ALICE)).unwrap().nonce, 1);
    assert!(matches!(
        exec1.message_receipts[2],
        MessageReceipt::Skipped { .. }
    ));
    // Giving it other messages is refused.
    assert!(builder
        .execute_derived(&w.store, &d1.header, w.genesis_root, &due[..2])
        .is_err());

    // A forced tx in block 6 is derived, on top, at block 10.
    w.mine(vec![reveal(
        EnvelopeKind::ForcedTx,
        42,
        transfer(ALICE, BOB, 1, 11).encode(),
        4,
    )]);
    for _ in 7..10 {
        assert!(derived(&w.mine(vec![])).is_empty());
    }
    let (d2, d2_messages) = derived(&w.mine(vec![])).into_iter().next().unwrap();
    assert_eq!((d2.header.number, d2.header.parent), (2, d1.hash));
    assert_eq!(d2.header.prev_state_root, w.genesis_root);
    let exec2 = builder
        .execute_derived(&w.store, &d2.header, root1, &d2_messages)
        .unwrap();
    w.keep(&exec2);
    let root2 = exec2.updates.last().unwrap().root;

    // The sequencer comes back: its batch restates both, from the genesis state.
    let next = w.derivation.next_batch();
    assert_eq!((next.parent.number, next.parent.hash), (2, d2.hash));
    assert_eq!(next.parent.state_root, w.genesis_root);
    assert_eq!(next.message_origin_height, 0);
    let ends: Vec<u32> = next.spans.iter().map(|s| s.msg_end).collect();
    assert_eq!(ends, vec![3, 4]);
    let messages = w
        .derivation
        .messages_due(next.message_origin_height, w.tip());
    assert_eq!(messages.len(), 4);
    let params = w.params(next.parent);
    let honest = builder
        .build_restating(
            &w.store,
            &params,
            &messages,
            &next.spans,
            vec![transfer(ALICE, BOB, 2, 1)],
        )
        .unwrap();
    let roots: Vec<_> = honest
        .batch
        .checkpoints()
        .iter()
        .map(|c| (c.tx_end, c.state_root))
        .collect();
    assert!(
        roots.contains(&(3, root1)),
        "restates batch 1's root: {roots:?}"
    );
    assert!(
        roots.contains(&(4, root2)),
        "restates batch 2's root: {roots:?}"
    );

    // Without a checkpoint at the end of batch 1's messages (K = 2: segments 0..2, 2..4) it is
    // refused, though every root in it is honest.
    let uncut = builder
        .build_with_messages(
            &w.store,
            &params,
            &messages,
            vec![transfer(ALICE, BOB, 2, 1)],
        )
        .unwrap();
    assert_eq!(
        w.derivation.precheck(&uncut.batch),
        Err(BatchError::DerivedSpan {
            number: 1,
            msg_end: 3
        }
        .to_string())
    );
    let reveal = w.reveal_batch(&uncut.batch);
    let reasons = rejections(&w.mine(vec![reveal]));
    assert!(reasons[0].contains("derived batch 1"), "{reasons:?}");

    // A copy whose checkpoint for batch 1 credits someone else is anchored, proven and judged
    // fraudulent; its challenge leaves the derived batches canonical.
    let at = honest
        .batch
        .checkpoints()
        .iter()
        .position(|c| c.tx_end == 3)
        .unwrap();
    let forged = forge_checkpoint(&honest.batch, at, [0xee; 32]);
    let reveal = w.reveal_batch(&forged);
    assert_eq!(anchored(&w.mine(vec![reveal])), vec![(3, forged.hash())]);
    let spans = w.derivation.batch_spans(3);
    assert_eq!(spans, next.spans);
    assert_eq!(w.derivation.batch_messages(3), messages);
    let replay = builder
        .replay_restating(&w.store, &forged, &messages, &spans)
        .unwrap();
    let segment = at as u64 + 1;
    assert_eq!(replay.fraud_segment, Some(segment));
    let mut store = w.store.clone();
    for update in &replay.updates {
        store.write(update);
    }
    let tree = SparseMerkleTree::new(&store);
    let proof = stint_protocol::build_fraud_proof_restating(
        &g,
        &tree,
        &forged,
        &messages,
        &spans,
        segment,
        account(BOB),
    )
    .unwrap();
    assert!(matches!(
        Judge::judge_restating(&g, forged.header(), &proof, &spans).unwrap(),
        Verdict::Fraud(Fraud::WrongCheckpoint { .. })
    ));
    // The honest batch's same segment is not fraud.
    let mut honest_store = w.store.clone();
    for update in &honest.updates {
        honest_store.write(update);
    }
    let honest_proof = stint_protocol::build_fraud_proof_restating(
        &g,
        &SparseMerkleTree::new(&honest_store),
        &honest.batch,
        &messages,
        &spans,
        segment,
        account(BOB),
    )
    .unwrap();
    assert_eq!(
        Judge::judge_restating(&g, honest.batch.header(), &honest_proof, &spans),
        Ok(Verdict::NoFraud)
    );
    // A challenge against a derived batch is refused: it claims nothing.
    let mut at_derived = proof.clone();
    at_derived.batch_number = 1;
    at_derived.batch_hash = d1.hash;
    w.salt += 1;
    let events = w.mine(vec![reveal_challenge(&at_derived, w.salt)]);
    assert!(
        events.iter().any(|e| matches!(e, DerivationEvent::ChallengeRejected { reason, .. } if reason.contains("derived"))),
        "{events:?}"
    );
    w.salt += 1;
    let challenge = reveal_challenge(&proof, w.salt);
    let events = w.mine(vec![challenge.clone()]);
    assert!(events.contains(&DerivationEvent::BatchInvalidated {
        number: 3,
        hash: forged.hash(),
        by: challenge.compute_txid(),
    }));
    let canonical: Vec<_> = w.derivation.canonical().iter().map(|r| r.hash).collect();
    assert_eq!(canonical, vec![d1.hash, d2.hash]);

    // An honest batch links again after the challenge (on a fresh origin: the window moved).
    let again = builder
        .build_restating(
            &w.store,
            &w.params(w.derivation.next_batch().parent),
            &w.derivation.messages_due(0, w.tip()),
            &w.derivation.next_batch().spans,
            vec![],
        )
        .unwrap();
    let reveal = w.reveal_batch(&again.batch);
    assert_eq!(
        anchored(&w.mine(vec![reveal])),
        vec![(3, again.batch.hash())]
    );
    assert_eq!(w.derivation.next_batch().spans, vec![]);

    // A reorg back below block 10 removes batch 2 (and what builds on it); the same blocks
    // derive it again, with the same hash.
    let mut removed = Vec::new();
    while w.tip() >= 10 {
        let b = w.blocks.pop().unwrap();
        removed.push(b.clone());
        let events = w
            .derivation
            .disconnect_block(w.tip() + 1, b.block_hash())
            .unwrap();
        if w.tip() + 1 == 10 {
            assert!(events.contains(&DerivationEvent::BatchUnanchored {
                number: 2,
                hash: d2.hash
            }));
        }
    }
    assert_eq!(w.derivation.canonical().len(), 1);
    let b10 = removed.pop().unwrap();
    let events = w.derivation.connect_block(10, &b10).unwrap();
    w.blocks.push(b10);
    assert_eq!(derived(&events)[0].0, d2);
}

/// A flood of forced txs is bounded per block and neither stalls derivation nor breaks the v2
/// proof-size rule: 300 forced txs (largest payrolls among them) in one block count as the
/// first 256 messages, the batch that executes them has message segments within the budget,
/// derivation accepts it, and every segment's fraud proof fits one challenge.
#[test]
fn a_flood_of_forced_txs_is_bounded_and_every_message_segment_is_provable() {
    use stint_contracts::{Call, Payment, Tx, MAX_PAYROLL_PAYMENTS};
    use stint_protocol::{message_segment_cost, MAX_FRAUD_PROOF_BYTES, SEGMENT_BUDGET};
    let mut w = World::new();
    let payroll = |nonce: u64| {
        Tx {
            chain_id: CHAIN_ID,
            from: account(ALICE),
            nonce,
            fee: 1,
            call: Call::Payroll {
                payments: (0..MAX_PAYROLL_PAYMENTS)
                    .map(|i| Payment {
                        to: account((i % 200) as u8 + 20),
                        amount: 1,
                    })
                    .collect(),
            },
        }
        .sign(&signing_key(ALICE))
        .unwrap()
    };
    let flood: Vec<Transaction> = (0..300u32)
        .map(|i| {
            let tx = if i % 10 == 0 {
                payroll(u64::from(i / 10))
            } else {
                transfer(BOB, ALICE, u64::from(i), 1)
            };
            reveal(EnvelopeKind::ForcedTx, 50, tx.encode(), 1_000 + i)
        })
        .collect();
    w.mine(flood);
    w.mine(vec![]);
    let due = w.derivation.messages_due(0, w.tip());
    assert_eq!(due.len(), stint_protocol::MAX_L1_MESSAGES_PER_BLOCK);
    let sealed = w.build(w.genesis_parent(), &due, vec![]);
    let batch = &sealed.batch;
    assert!(batch.message_segment_count() > 1);
    for j in 1..=batch.message_segment_count() {
        let range = batch.segment_messages(j).unwrap();
        assert!(message_segment_cost(&due[range]) <= SEGMENT_BUDGET);
    }
    let reveal_tx = w.reveal_batch(batch);
    assert_eq!(anchored(&w.mine(vec![reveal_tx])), vec![(1, batch.hash())]);
    let mut store = w.store.clone();
    for update in &sealed.updates {
        store.write(update);
    }
    let tree = SparseMerkleTree::new(&store);
    for j in 1..=batch.message_segment_count() {
        let proof =
            build_fraud_proof_with_messages(&w.g, &tree, batch, &due, j, account(BOB)).unwrap();
        let bytes = proof.encode().unwrap();
        assert!(bytes.len() <= MAX_FRAUD_PROOF_BYTES, "segment {j}");
        assert_eq!(
            Judge::judge_bytes(&w.g, batch.header(), &bytes),
            Ok(Verdict::NoFraud),
            "segment {j}"
        );
    }
}

/// A payment to the bridge that is not a deposit (below `min_deposit` here) is reported by
/// derivation, not dropped silently, and is not a message.
#[test]
fn a_payment_that_is_not_a_deposit_is_reported() {
    let mut w = World::new();
    let min = w.g.bridge.as_ref().unwrap().min_deposit;
    let events = w.mine(vec![deposit_tx(3, min - 1, 7)]);
    let reported: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DerivationEvent::DepositNotCredited { height, deposit } => Some((*height, *deposit)),
            _ => None,
        })
        .collect();
    assert_eq!(reported.len(), 1, "{events:?}");
    assert_eq!(reported[0].0, 1);
    assert_eq!(reported[0].1.amount, min - 1);
    assert_eq!(reported[0].1.reason, stint_protocol::UncreditedReason::Dust);
    assert_eq!(w.derivation.pending_l1_messages().count(), 0);
}

/// The bridge's coins as derivation tracks them (issue 16): deposits (credited or not) are
/// coins; a payout built from them spends them, its change is a coin and not a deposit, and it
/// is recorded with its commitment; a reorg puts everything back and the same block does it
/// again. The coins always add up to what came in minus what the payout paid out.
#[test]
fn derivation_tracks_the_bridge_coins_and_its_payouts_across_a_reorg() {
    use stint_protocol::{build_payout, payout_commitment, PayableWithdrawal};
    let mut w = World::new();
    let bridge = w.g.bridge.clone().unwrap();
    let min = bridge.min_deposit;
    w.mine(vec![deposit_tx(3, 40_000, 1), deposit_tx(4, min - 1, 2)]);
    assert_eq!(
        w.derivation.bridge_utxos().len(),
        2,
        "the dust payment is a bridge coin too"
    );
    assert_eq!(w.derivation.bridge_balance(), 40_000 + min - 1);

    let withdrawals: Vec<PayableWithdrawal> = (1..=2u8)
        .map(|i| PayableWithdrawal {
            id: stint_contracts::WithdrawalId([i; 32]),
            script: bitcoin::ScriptBuf::from_bytes([vec![0x00, 0x14], vec![i; 20]].concat()),
            amount: 5_000 * u64::from(i),
        })
        .collect();
    let payout = build_payout(&bridge, &w.derivation.bridge_utxos(), &withdrawals, 2).unwrap();
    let ids: Vec<_> = withdrawals.iter().map(|w| w.id).collect();
    let events = w.mine(vec![payout.tx.clone()]);
    let txid = payout.tx.compute_txid();
    assert!(events.contains(&DerivationEvent::PayoutConfirmed {
        txid,
        height: 2,
        commitment: payout_commitment(&ids),
    }));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, DerivationEvent::DepositNotCredited { .. })),
        "the payout's change is not reported as a payment: {events:?}"
    );
    assert_eq!(
        w.derivation
            .payout_by_commitment(&payout_commitment(&ids))
            .map(|p| p.txid),
        Some(txid)
    );
    let paid: u64 = payout.tx.output[..2].iter().map(|o| o.value.to_sat()).sum();
    assert_eq!(paid + payout.fee, 15_000);
    assert_eq!(
        w.derivation.bridge_balance(),
        40_000 + min - 1 - 15_000,
        "coins = in − paid out − fee"
    );
    assert_eq!(
        w.derivation.pending_l1_messages().count(),
        1,
        "only the deposit"
    );

    // A reorg removes the payout: its inputs are coins again, its change is gone.
    let before: Vec<_> = {
        let b = w.blocks.pop().unwrap();
        let events = w.derivation.disconnect_block(2, b.block_hash()).unwrap();
        assert!(events.contains(&DerivationEvent::PayoutRemoved { txid }));
        vec![b]
    };
    assert_eq!(w.derivation.bridge_balance(), 40_000 + min - 1);
    assert_eq!(w.derivation.payouts().count(), 0);
    w.derivation.connect_block(2, &before[0]).unwrap();
    w.blocks.push(before[0].clone());
    assert_eq!(w.derivation.payouts().count(), 1);
    assert_eq!(w.derivation.bridge_balance(), 40_000 + min - 1 - 15_000);

    // Spending bridge coins without a payout tag is reported.
    let mut untagged = payout.tx.clone();
    untagged.output.pop();
    untagged.input = vec![bitcoin::TxIn {
        previous_output: w.derivation.bridge_utxos()[0].outpoint,
        ..untagged.input[0].clone()
    }];
    let events = w.mine(vec![untagged.clone()]);
    assert!(events.contains(&DerivationEvent::BridgeSpentWithoutPayout {
        txid: untagged.compute_txid(),
        height: 3,
    }));
}
