//! The segment budget against a sequencer that grinds account keys (issue 13 §2): the fraud
//! proof of a segment at the budget's limit is built, encoded, judged from its bytes and fits
//! one challenge envelope; one tx more in the segment and derivation refuses the batch.

use std::collections::BTreeSet;

use stint_contracts::{account_key, AccountId, Call, Payment, SignedTx, Tx, MAX_PAYROLL_PAYMENTS};
use stint_protocol::{
    build_fraud_proof, segment_cost, trace_root, Batch, BatchError, Checkpoint, Envelope,
    EnvelopeKind, Fraud, Genesis, GenesisAlloc, Judge, ParentFacts, Verdict, KEY_PATH_BYTES,
    MAX_ENVELOPE_BODY, MAX_FRAUD_PROOF_BYTES, MAX_NONEMPTY_SIBLINGS, SEGMENT_BUDGET,
};
use stint_state::{Key, SparseMerkleTree};

use crate::common::*;

/// Accounts in the tree besides the attacker's: the top `log2` levels are full.
const BACKGROUND: u64 = 2_048;

fn shared_bits(a: &Key, b: &Key) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .map_or(256, |i| i * 8 + (a[i] ^ b[i]).leading_zeros() as usize)
}

fn id(tag: u8, a: u64, b: u64) -> AccountId {
    let mut id = [tag; 32];
    id[..8].copy_from_slice(&a.to_le_bytes());
    id[8..16].copy_from_slice(&b.to_le_bytes());
    AccountId(id)
}

/// An id whose account key shares exactly `bits` leading bits with `target` (about
/// `2^(bits + 1)` hashes): what a sequencer grinds to put a non-empty sibling at depth `bits` on
/// the target's path.
fn grind(target: &Key, bits: usize, seed: u64) -> AccountId {
    (0u64..)
        .map(|n| {
            id(
                0xee,
                seed.wrapping_mul(1_000_003).wrapping_add(bits as u64),
                n,
            )
        })
        .find(|candidate| shared_bits(&account_key(candidate), target) == bits)
        .unwrap()
}

struct Scenario {
    genesis: Genesis,
    store: stint_state::MemoryNodeStore,
    root: [u8; 32],
    payees: Vec<AccountId>,
}

/// A genesis with Alice, [`BACKGROUND`] random accounts, `payees` fresh targets and, for each
/// target, accounts ground to share `depth` more bits than the background gives for free (each
/// one a non-empty sibling on the target's path).
fn scenario(depth: usize) -> Scenario {
    let start = start_block();
    let mut g = genesis_with(&start, 32, 6);
    let free = (BACKGROUND as f64).log2() as usize;
    let mut alloc: Vec<GenesisAlloc> = (0..BACKGROUND)
        .map(|n| GenesisAlloc {
            account: id(0xbb, n, 0),
            balance: 1,
        })
        .collect();
    let payees: Vec<AccountId> = (0..MAX_PAYROLL_PAYMENTS as u64)
        .map(|n| id(0xaa, n, 0))
        .collect();
    for (seed, payee) in payees.iter().enumerate() {
        let target = account_key(payee);
        for bits in free..free + depth {
            alloc.push(GenesisAlloc {
                account: grind(&target, bits, seed as u64),
                balance: 1,
            });
        }
        alloc.push(GenesisAlloc {
            account: *payee,
            balance: 1,
        });
    }
    g.alloc.extend(alloc);
    let mut seen = BTreeSet::new();
    g.alloc.retain(|a| seen.insert(a.account));
    let (store, root) = genesis_store(&g);
    Scenario {
        genesis: g,
        store,
        root,
        payees,
    }
}

fn payroll(payees: &[AccountId], nonce: u64) -> SignedTx {
    Tx {
        chain_id: CHAIN_ID,
        from: account(ALICE),
        nonce,
        fee: 1,
        call: Call::Payroll {
            payments: payees
                .iter()
                .map(|to| Payment { to: *to, amount: 3 })
                .collect(),
        },
    }
    .sign(&signing_key(ALICE))
    .unwrap()
}

/// A full payroll to the ground payees, then transfers to them: the builder's first segment is
/// the longest prefix within the budget.
fn candidates(s: &Scenario) -> Vec<SignedTx> {
    let mut txs = vec![payroll(&s.payees, 0)];
    txs.extend((1..8).map(|n| {
        Tx {
            chain_id: CHAIN_ID,
            from: account(ALICE),
            nonce: n,
            fee: 1,
            call: Call::Transfer {
                to: s.payees[n as usize],
                amount: 5,
            },
        }
        .sign(&signing_key(ALICE))
        .unwrap()
    }));
    txs
}

/// Builds the batch, forges checkpoint 1 and returns the encoded proof against segment 1 with
/// the segment's length.
fn fraud_at_the_limit(s: &mut Scenario) -> (Vec<u8>, usize) {
    let txs = candidates(s);
    let sealed = build(
        &s.genesis,
        &mut s.store,
        ParentFacts::genesis(&s.genesis, s.root),
        (0, &start_block()),
        txs.clone(),
    );
    assert!(sealed.rejected.is_empty());
    let first = sealed.batch.segment_range(1).unwrap();
    // At the limit: the first segment holds what fits, and one tx more would not.
    let segment = &sealed.batch.txs()[first.clone()];
    assert!(segment_cost(segment) <= SEGMENT_BUDGET);
    assert!(segment_cost(&txs[..first.end + 1]) > SEGMENT_BUDGET);
    assert!(first.len() < 32, "the budget, not K, closed the segment");

    let forged = forge_checkpoint(&sealed.batch, 0, [0x5a; 32]);
    let tree = SparseMerkleTree::new(&s.store);
    let proof = build_fraud_proof(&s.genesis, &tree, &forged, 1, account(BOB)).unwrap();
    let bytes = proof.encode().unwrap();
    assert!(
        bytes.len() as u64 <= segment_cost(segment),
        "the bound holds"
    );
    assert!(bytes.len() <= MAX_FRAUD_PROOF_BYTES);
    assert!(matches!(
        Judge::judge_bytes(&s.genesis, forged.header(), &bytes).unwrap(),
        Verdict::Fraud(Fraud::WrongCheckpoint { segment: 1, .. })
    ));
    let envelope = Envelope::new(EnvelopeKind::Challenge, btc_key(3), bytes.clone());
    envelope
        .leaf_script()
        .expect("the proof fits one challenge envelope");
    (bytes, first.len())
}

#[test]
fn a_fraudulent_segment_at_the_budget_limit_with_ground_keys_is_provable_in_one_challenge() {
    // Witness bytes per ground level and key: the bound assumes at most 68 (a `Branch` and a
    // non-empty sibling disclosed one level deep), on at most `MAX_NONEMPTY_SIBLINGS` levels.
    let depths = [0usize, 3, 6];
    let mut sizes = Vec::new();
    for depth in depths {
        let mut s = scenario(depth);
        let (bytes, len) = fraud_at_the_limit(&mut s);
        sizes.push(bytes.len());
        println!(
            "ground depth {depth:2}: segment of {len} txs, proof {} bytes (envelope body max {MAX_ENVELOPE_BODY})",
            bytes.len()
        );
    }
    // Keys whose paths were ground: the 32 payees (the transfers pay some of them again).
    let keys = MAX_PAYROLL_PAYMENTS as f64;
    let per_level = (sizes[2] - sizes[0]) as f64 / (keys * (depths[2] - depths[0]) as f64);
    println!(
        "measured {per_level:.1} bytes per ground level and key; at the grinding bound \
         ({MAX_NONEMPTY_SIBLINGS} non-empty siblings) one key's path is at most {KEY_PATH_BYTES} bytes"
    );
    assert!(
        per_level > 30.0,
        "grinding made the proof grow ({per_level:.1})"
    );
    assert!(
        per_level <= 68.0,
        "the per-level bound holds ({per_level:.1})"
    );
}

#[test]
fn a_segment_one_tx_over_the_budget_is_refused_by_derivation() {
    let mut s = scenario(0);
    let txs = candidates(&s);
    let sealed = build(
        &s.genesis,
        &mut s.store,
        ParentFacts::genesis(&s.genesis, s.root),
        (0, &start_block()),
        txs,
    );
    let first = sealed.batch.segment_range(1).unwrap();
    assert!(sealed.batch.segment_count() >= 2);
    // Move the first tx of segment 2 into segment 1: same txs, same roots, one segment fewer
    // boundary. Every other rule holds (the header is resealed to match).
    let (mut header, mut checkpoints, txs) = sealed.batch.clone().into_parts();
    checkpoints[0] = Checkpoint::new(checkpoints[0].state_root, first.end as u32 + 1);
    if checkpoints[1].tx_end == checkpoints[0].tx_end {
        checkpoints.remove(1);
    }
    header.trace_root = trace_root(&checkpoints);
    let over = Batch::new(header, checkpoints, txs);
    match over.check_body(&s.genesis) {
        Err(BatchError::SegmentOverBudget {
            segment: 1,
            cost,
            budget,
        }) => assert!(cost > budget && budget == SEGMENT_BUDGET),
        other => panic!("expected SegmentOverBudget, got {other:?}"),
    }
    // The honest cut passes.
    sealed.batch.check_body(&s.genesis).unwrap();
}
