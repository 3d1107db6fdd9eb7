use bitcoin::{Block, BlockHash, Transaction};
use stint_protocol::{
    build_fraud_proof, Batch, BatchStatus, Checkpoint, Derivation, DerivationEvent, EnvelopeKind,
    Genesis, ParentFacts,
};
use stint_state::{MemoryNodeStore, SparseMerkleTree};

use crate::common::*;

const W: u64 = 6;

/// A derivation over a chain of synthetic blocks, with a store of honest states.
struct Fixture {
    g: Genesis,
    store: MemoryNodeStore,
    genesis_root: [u8; 32],
    derivation: Derivation,
    blocks: Vec<Block>,
    salt: u32,
}

impl Fixture {
    fn new() -> Self {
        let start = start_block();
        let g = genesis_with(&start, 4, W);
        let (store, genesis_root) = genesis_store(&g);
        let mut derivation = Derivation::new(g.clone(), genesis_root);
        derivation.connect_block(0, &start).unwrap();
        Self {
            g,
            store,
            genesis_root,
            derivation,
            blocks: vec![start],
            salt: 100,
        }
    }

    fn tip_hash(&self) -> BlockHash {
        self.blocks.last().unwrap().block_hash()
    }

    fn height(&self) -> u64 {
        self.blocks.len() as u64 - 1
    }

    fn mine(&mut self, txdata: Vec<Transaction>) -> Vec<DerivationEvent> {
        self.salt += 1;
        let b = block(
            self.tip_hash(),
            T0 + 600 * self.blocks.len() as u64,
            self.salt,
            txdata,
        );
        let events = self
            .derivation
            .connect_block(self.height() + 1, &b)
            .unwrap();
        self.blocks.push(b);
        events
    }

    fn unmine(&mut self) -> Vec<DerivationEvent> {
        let b = self.blocks.pop().unwrap();
        self.derivation
            .disconnect_block(self.height() + 1, b.block_hash())
            .unwrap()
    }

    /// Build an honest batch on `parent` with origin = the current tip block.
    fn batch(&mut self, parent: ParentFacts, txs: Vec<stint_contracts::SignedTx>) -> Batch {
        let origin = self.blocks.last().unwrap().clone();
        let height = self.height();
        build(&self.g, &mut self.store, parent, (height, &origin), txs).batch
    }

    fn genesis_parent(&self) -> ParentFacts {
        ParentFacts::genesis(&self.g, self.genesis_root)
    }

    fn reveal_batch(&mut self, batch: &Batch, key: u8) -> Transaction {
        self.salt += 1;
        let envelope = batch_envelope(&self.g, key, batch.hash(), batch.encode().unwrap());
        reveal_envelope(&envelope, key, self.salt)
    }
}

fn anchored(events: &[DerivationEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            DerivationEvent::BatchAnchored { batch, .. } => Some(batch.header().number),
            _ => None,
        })
        .collect()
}

#[test]
fn accepts_linking_batches_and_ignores_the_rest() {
    let mut f = Fixture::new();
    let b1 = f.batch(f.genesis_parent(), vec![transfer(ALICE, BOB, 0, 10)]);
    let b2 = f.batch(
        ParentFacts::of(b1.header()),
        vec![transfer(ALICE, BOB, 1, 10)],
    );

    // Foreign key: silently ignored. Malformed payload: rejected. Batch 2 first: does not link.
    let foreign = f.reveal_batch(&b1, 3);
    let malformed = reveal_envelope(
        &batch_envelope(&f.g, ANCHOR, [3; 32], vec![1, 2, 3]),
        ANCHOR,
        1,
    );
    let early = f.reveal_batch(&b2, ANCHOR);
    let events = f.mine(vec![foreign, malformed, early]);
    assert!(anchored(&events).is_empty());
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, DerivationEvent::BatchRejected { .. }))
            .count(),
        2
    );
    assert!(f.derivation.canonical().is_empty());

    let t1 = f.reveal_batch(&b1, ANCHOR);
    let t2 = f.reveal_batch(&b2, ANCHOR);
    let dup = f.reveal_batch(&b1, ANCHOR);
    let events = f.mine(vec![t1.clone(), t2, dup]);
    assert_eq!(anchored(&events), vec![1, 2]);
    let (record, status) = f.derivation.batch(1).unwrap();
    assert_eq!(status, BatchStatus::Anchored);
    assert_eq!(record.anchor.btc_txid, t1.compute_txid());
    assert_eq!(record.anchor.height, 2);
    assert_eq!(f.derivation.tip().unwrap().hash, b2.hash());
}

#[test]
fn a_tampered_tx_root_is_rejected() {
    let mut f = Fixture::new();
    let b1 = f.batch(f.genesis_parent(), vec![transfer(ALICE, BOB, 0, 10)]);
    let (mut header, checkpoints, txs) = b1.into_parts();
    header.tx_root[0] ^= 1;
    let bad = Batch::new(header, checkpoints, txs);
    let t = f.reveal_batch(&bad, ANCHOR);
    let events = f.mine(vec![t]);
    assert!(anchored(&events).is_empty());
    assert!(
        matches!(&events[0], DerivationEvent::BatchRejected { reason, .. } if reason.contains("tx_root"))
    );
}

#[test]
fn reorgs_of_depth_one_and_three_undo_exactly() {
    let mut f = Fixture::new();
    let b1 = f.batch(f.genesis_parent(), vec![transfer(ALICE, BOB, 0, 10)]);
    let b2 = f.batch(ParentFacts::of(b1.header()), vec![]);
    let t1 = f.reveal_batch(&b1, ANCHOR);
    assert_eq!(anchored(&f.mine(vec![t1])), vec![1]);

    // Depth 1: the anchoring block goes away, then the batch is re-anchored elsewhere.
    let events = f.unmine();
    assert!(events.contains(&DerivationEvent::BatchUnanchored {
        number: 1,
        hash: b1.hash()
    }));
    assert!(f.derivation.canonical().is_empty());
    let t1 = f.reveal_batch(&b1, ANCHOR);
    assert_eq!(anchored(&f.mine(vec![t1])), vec![1]);

    // Depth 3.
    let t2 = f.reveal_batch(&b2, ANCHOR);
    assert_eq!(anchored(&f.mine(vec![t2])), vec![2]);
    f.mine(vec![]);
    assert_eq!(f.derivation.canonical().len(), 2);
    f.unmine();
    assert_eq!(f.derivation.canonical().len(), 2);
    assert!(f.unmine().contains(&DerivationEvent::BatchUnanchored {
        number: 2,
        hash: b2.hash()
    }));
    assert!(f.unmine().contains(&DerivationEvent::BatchUnanchored {
        number: 1,
        hash: b1.hash()
    }));
    assert!(f.derivation.canonical().is_empty());
    assert_eq!(f.derivation.l1_tip().unwrap().0, 0);

    // Disconnecting anything but the tip is refused.
    assert!(f
        .derivation
        .disconnect_block(5, BlockHash::from_byte_array_for_test())
        .is_err());
}

trait ForTest {
    fn from_byte_array_for_test() -> Self;
}
impl ForTest for BlockHash {
    fn from_byte_array_for_test() -> Self {
        use bitcoin::hashes::Hash as _;
        BlockHash::from_byte_array([5; 32])
    }
}

#[test]
fn finality_after_the_window() {
    let mut f = Fixture::new();
    let b1 = f.batch(f.genesis_parent(), vec![]);
    let t1 = f.reveal_batch(&b1, ANCHOR);
    f.mine(vec![t1]); // height 1
    for _ in 0..W - 1 {
        let events = f.mine(vec![]);
        assert!(!events
            .iter()
            .any(|e| matches!(e, DerivationEvent::BatchFinal { .. })));
        assert_eq!(f.derivation.batch(1).unwrap().1, BatchStatus::Anchored);
    }
    let events = f.mine(vec![]); // height 1 + W
    assert!(events.contains(&DerivationEvent::BatchFinal {
        number: 1,
        hash: b1.hash()
    }));
    assert_eq!(f.derivation.batch(1).unwrap().1, BatchStatus::Final);
    assert_eq!(f.derivation.final_tip().unwrap().hash, b1.hash());
    let events = f.unmine();
    assert!(events.contains(&DerivationEvent::BatchUnfinalized {
        number: 1,
        hash: b1.hash()
    }));
    assert_eq!(f.derivation.batch(1).unwrap().1, BatchStatus::Anchored);
}

#[test]
fn valid_challenge_invalidates_target_and_descendants_and_a_replacement_links() {
    let mut f = Fixture::new();
    let b1 = f.batch(f.genesis_parent(), vec![transfer(ALICE, BOB, 0, 10)]);
    let honest2 = f.batch(
        ParentFacts::of(b1.header()),
        (1..7).map(|n| transfer(ALICE, BOB, n, 10)).collect(),
    );
    let forged2 = forge_checkpoint(&honest2, 0, [0xee; 32]);
    let b3 = Batch::new(
        stint_protocol::BatchHeader {
            number: 3,
            parent: forged2.hash(),
            prev_state_root: forged2.header().state_root,
            state_root: forged2.header().state_root,
            tx_root: stint_protocol::merkle_root(&[]),
            trace_root: stint_protocol::trace_root(&[Checkpoint::new(
                forged2.header().state_root,
                0,
            )]),
            tx_count: 0,
            ..forged2.header().clone()
        },
        vec![Checkpoint::new(forged2.header().state_root, 0)],
        vec![],
    );
    let txs = vec![
        f.reveal_batch(&b1, ANCHOR),
        f.reveal_batch(&forged2, ANCHOR),
        f.reveal_batch(&b3, ANCHOR),
    ];
    assert_eq!(anchored(&f.mine(txs)), vec![1, 2, 3]);

    // A challenge against an honest segment is rejected.
    let tree = SparseMerkleTree::new(&f.store);
    let honest_proof = build_fraud_proof(&f.g, &tree, &b1, 1, account(BOB)).unwrap();
    // The fraud proof against segment 1 of the forged batch 2.
    let proof = build_fraud_proof(&f.g, &tree, &forged2, 1, account(BOB)).unwrap();
    f.salt += 1;
    let c0 = reveal(
        EnvelopeKind::Challenge,
        3,
        honest_proof.encode().unwrap(),
        f.salt,
    );
    let events = f.mine(vec![c0]);
    assert!(
        matches!(&events[0], DerivationEvent::ChallengeRejected { .. }),
        "{events:?}"
    );
    assert_eq!(f.derivation.canonical().len(), 3);

    f.salt += 1;
    let challenge = reveal(EnvelopeKind::Challenge, 3, proof.encode().unwrap(), f.salt);
    let events = f.mine(vec![challenge.clone()]);
    assert!(events.contains(&DerivationEvent::BatchInvalidated {
        number: 2,
        hash: forged2.hash(),
        by: challenge.compute_txid()
    }));
    assert!(events.contains(&DerivationEvent::BatchInvalidated {
        number: 3,
        hash: b3.hash(),
        by: challenge.compute_txid()
    }));
    assert!(events
        .iter()
        .any(|e| matches!(e, DerivationEvent::ChallengeAccepted { batch: 2, .. })));
    assert_eq!(f.derivation.canonical().len(), 1);
    assert_eq!(
        f.derivation.batch_by_hash(&b3.hash()).unwrap().1,
        BatchStatus::Invalidated
    );

    // A second challenge against the now invalidated batch is rejected.
    f.salt += 1;
    let again = reveal(EnvelopeKind::Challenge, 4, proof.encode().unwrap(), f.salt);
    let events = f.mine(vec![again]);
    assert!(matches!(
        &events[0],
        DerivationEvent::ChallengeRejected { .. }
    ));
    f.unmine();

    // The honest replacement links to batch 1.
    let t = f.reveal_batch(&honest2, ANCHOR);
    assert_eq!(anchored(&f.mine(vec![t])), vec![2]);
    assert_eq!(f.derivation.tip().unwrap().hash, honest2.hash());

    // Reorg out the replacement and the challenge: the forged batches come back.
    f.unmine();
    let events = f.unmine();
    assert!(events.contains(&DerivationEvent::BatchReinstated {
        number: 2,
        hash: forged2.hash()
    }));
    assert!(events.contains(&DerivationEvent::BatchReinstated {
        number: 3,
        hash: b3.hash()
    }));
    assert!(events.contains(&DerivationEvent::ChallengeRemoved {
        btc_txid: challenge.compute_txid()
    }));
    assert_eq!(f.derivation.canonical().len(), 3);
    assert_eq!(f.derivation.tip().unwrap().hash, b3.hash());
    assert!(f.derivation.invalidated().is_empty());
}

#[test]
fn challenge_after_the_window_is_ignored() {
    let mut f = Fixture::new();
    let b1 = f.batch(f.genesis_parent(), vec![transfer(ALICE, BOB, 0, 10)]);
    let forged = forge_checkpoint(&b1, 0, [0xee; 32]);
    let t = f.reveal_batch(&forged, ANCHOR);
    f.mine(vec![t]); // anchored at height 1
    for _ in 0..W - 1 {
        f.mine(vec![]);
    }
    // Height 1 + W: the window is closed (and the batch final).
    let proof = build_fraud_proof(
        &f.g,
        &SparseMerkleTree::new(&f.store),
        &forged,
        1,
        account(BOB),
    )
    .unwrap();
    f.salt += 1;
    let late = reveal(EnvelopeKind::Challenge, 3, proof.encode().unwrap(), f.salt);
    let events = f.mine(vec![late]);
    assert!(
        events.iter().any(|e| matches!(e, DerivationEvent::ChallengeRejected { reason, .. } if reason.contains("window"))),
        "{events:?}"
    );
    assert_eq!(f.derivation.batch(1).unwrap().1, BatchStatus::Final);

    // One block earlier it would have been accepted.
    f.unmine();
    f.unmine();
    f.salt += 1;
    let in_time = reveal(EnvelopeKind::Challenge, 3, proof.encode().unwrap(), f.salt);
    let events = f.mine(vec![in_time]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DerivationEvent::ChallengeAccepted { .. })),
        "{events:?}"
    );
    assert!(f.derivation.canonical().is_empty());
}

#[test]
fn wrong_start_and_non_child_blocks_are_refused() {
    let start = start_block();
    let g = genesis_with(&start, 4, W);
    let root = g.state_root().unwrap();
    let mut d = Derivation::new(g, root);
    let other = block(BlockHash::all_zeros_for_test(), T0, 77, vec![]);
    assert!(d.connect_block(0, &other).is_err());
    assert!(d.connect_block(1, &start).is_err());
    d.connect_block(0, &start).unwrap();
    assert!(d.connect_block(1, &other).is_err());
    assert_eq!(d.l1_tip().unwrap(), (0, start.block_hash()));
}

trait Zeros {
    fn all_zeros_for_test() -> Self;
}
impl Zeros for BlockHash {
    fn all_zeros_for_test() -> Self {
        use bitcoin::hashes::Hash as _;
        BlockHash::all_zeros()
    }
}

/// Issue 13 §3: envelopes that look like batches under the anchor key but are not signed by it
/// for this genesis and this header. Built the way an attacker would, from public data only
/// (the genesis, the honest envelope's bytes), next to the honest batch in the same block.
fn forgeries(f: &mut Fixture, honest: &Batch, forged: &Batch) -> Vec<(Transaction, bool)> {
    let anchor_key = btc_key(ANCHOR);
    let payload = forged.encode().unwrap();
    let honest_auth = anchor_auth(&f.g, ANCHOR, honest.hash());
    let mut out = Vec::new();
    let mut next = f.salt;
    let mut salt = || {
        next += 1;
        next
    };
    // (tx, whether derivation reports it as rejected rather than ignoring it)
    // 1. Junk signature over the forged header.
    let junk = stint_protocol::AnchorAuth {
        header_hash: forged.hash(),
        signature: [1; 64],
    };
    let env = stint_protocol::Envelope::new(EnvelopeKind::Batch, anchor_key, payload.clone())
        .with_auth(junk);
    out.push((reveal_envelope(&env, 3, salt()), false));
    // 2. The attacker's own signature, anchor key in the leaf.
    let env = stint_protocol::Envelope::new(EnvelopeKind::Batch, anchor_key, payload.clone())
        .with_auth(anchor_auth(&f.g, 3, forged.hash()));
    out.push((reveal_envelope(&env, 3, salt()), false));
    // 3. The honest signature moved onto the forged header (signature over another header).
    let moved = stint_protocol::AnchorAuth {
        header_hash: forged.hash(),
        ..honest_auth
    };
    let env = stint_protocol::Envelope::new(EnvelopeKind::Batch, anchor_key, payload.clone())
        .with_auth(moved);
    out.push((reveal_envelope(&env, 3, salt()), false));
    // 4. A real anchor-key signature for the same header on another chain (same anchor key,
    //    other genesis): replayed here.
    let mut other = f.g.clone();
    other.chain_id += 1;
    let env = stint_protocol::Envelope::new(EnvelopeKind::Batch, anchor_key, payload.clone())
        .with_auth(anchor_auth(&other, ANCHOR, forged.hash()));
    out.push((reveal_envelope(&env, 3, salt()), false));
    // 5. The honest auth copied from the honest envelope, with the forged body: the signature
    //    verifies, but the decoded header is not the signed one.
    let env = stint_protocol::Envelope::new(EnvelopeKind::Batch, anchor_key, payload.clone())
        .with_auth(honest_auth);
    out.push((reveal_envelope(&env, 3, salt()), true));
    // 6. No auth push at all: the v1 layout.
    let body = zstd::bulk::compress(&payload, 12).unwrap();
    let mut b = bitcoin::script::Builder::new()
        .push_x_only_key(&anchor_key)
        .push_opcode(bitcoin::opcodes::all::OP_CHECKSIG)
        .push_opcode(bitcoin::opcodes::OP_FALSE)
        .push_opcode(bitcoin::opcodes::all::OP_IF)
        .push_slice(b"stint")
        .push_slice([1u8]);
    for chunk in body.chunks(520) {
        b = b.push_slice(bitcoin::script::PushBytesBuf::try_from(chunk.to_vec()).unwrap());
    }
    let v1 = b.push_opcode(bitcoin::opcodes::all::OP_ENDIF).into_script();
    out.push((reveal_leaf(v1, 3, salt()), false));
    f.salt = salt();
    out
}

#[test]
fn forged_batch_envelopes_never_take_the_slot() {
    for honest_first in [false, true] {
        let mut f = Fixture::new();
        let honest = f.batch(f.genesis_parent(), vec![transfer(ALICE, BOB, 0, 10)]);
        // The attacker's batch 1: valid, links to genesis, moves other funds.
        let forged = f.batch(f.genesis_parent(), vec![transfer(ALICE, FEES, 0, 999)]);
        assert_ne!(forged.hash(), honest.hash());
        let fakes = forgeries(&mut f, &honest, &forged);
        let rejected: Vec<_> = fakes
            .iter()
            .filter(|(_, r)| *r)
            .map(|(tx, _)| tx.compute_txid())
            .collect();
        let mut txs: Vec<Transaction> = fakes.into_iter().map(|(tx, _)| tx).collect();
        let honest_tx = f.reveal_batch(&honest, ANCHOR);
        if honest_first {
            txs.insert(0, honest_tx.clone());
        } else {
            txs.push(honest_tx.clone());
        }
        let events = f.mine(txs);
        assert_eq!(anchored(&events), vec![1], "{events:?}");
        let (record, _) = f.derivation.batch(1).unwrap();
        assert_eq!(record.hash, honest.hash());
        assert_eq!(record.anchor.btc_txid, honest_tx.compute_txid());
        // Forgeries with a bad signature are ignored without a word; the copied signature is
        // reported, as an envelope that really is the anchor key's.
        let reported: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                DerivationEvent::BatchRejected { btc_txid, .. } => Some(*btc_txid),
                _ => None,
            })
            .collect();
        assert_eq!(reported, rejected);
        assert!(events.iter().any(|e| matches!(e,
            DerivationEvent::BatchRejected { reason, .. } if reason.contains("signed"))));

        // Alone in a block (no honest batch to compete with), the forgeries anchor nothing.
        let mut f = Fixture::new();
        let honest = f.batch(f.genesis_parent(), vec![transfer(ALICE, BOB, 0, 10)]);
        let forged = f.batch(f.genesis_parent(), vec![transfer(ALICE, FEES, 0, 999)]);
        let fakes = forgeries(&mut f, &honest, &forged);
        let events = f.mine(fakes.into_iter().map(|(tx, _)| tx).collect());
        assert!(anchored(&events).is_empty(), "{events:?}");
        assert!(f.derivation.canonical().is_empty());
    }
}

/// `precheck` gives the decision derivation takes when the envelope is mined in the next block:
/// a linking batch passes, one that skips a number or whose L1 origin a reorg removed fails with
/// the reason derivation then reports.
#[test]
fn precheck_predicts_the_next_blocks_verdict() {
    let mut f = Fixture::new();
    // Blocks at the batches' timestamp, so the drift rule holds for an origin above the start.
    let at_t0 = |f: &mut Fixture, salt: u32| {
        let b = block(f.tip_hash(), T0, salt, vec![]);
        f.derivation.connect_block(f.height() + 1, &b).unwrap();
        f.blocks.push(b);
    };
    at_t0(&mut f, 1);
    let b1 = f.batch(f.genesis_parent(), vec![transfer(ALICE, BOB, 0, 10)]);
    let b2 = f.batch(
        ParentFacts::of(b1.header()),
        vec![transfer(ALICE, BOB, 1, 10)],
    );
    assert_eq!(f.derivation.l1_block(f.height()), Some((f.tip_hash(), T0)));
    assert_eq!(f.derivation.l1_block(f.height() + 1), None);
    assert_eq!(f.derivation.precheck(&b1), Ok(()));
    let early = f.derivation.precheck(&b2).unwrap_err();
    let reveal = f.reveal_batch(&b2, ANCHOR);
    let events = f.mine(vec![reveal]);
    assert!(
        events.iter().any(
            |e| matches!(e, DerivationEvent::BatchRejected { reason, .. } if *reason == early)
        ),
        "{early}: {events:?}"
    );

    // The origin of b1 is the block at height 1: take it away and mine another one there.
    f.unmine();
    f.unmine();
    assert!(f.derivation.precheck(&b1).is_err(), "origin not seen yet");
    at_t0(&mut f, 2);
    let gone = f.derivation.precheck(&b1).unwrap_err();
    let reveal = f.reveal_batch(&b1, ANCHOR);
    let events = f.mine(vec![reveal]);
    assert!(anchored(&events).is_empty());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DerivationEvent::BatchRejected { reason, .. } if *reason == gone)),
        "{gone}: {events:?}"
    );
}
