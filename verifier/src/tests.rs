//! Unit tests of the pure replay: parallel replay is bit-identical to the sequential reference on
//! random honest and random forged batches.

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use k256::schnorr::SigningKey;
use proptest::prelude::*;
use stint_contracts::{execute_segment, AccountId, Call, Payment, SignedTx, Tx};
use stint_protocol::{
    block_context, trace_root, tx_root, Batch, BatchBuilder, BatchHeader, BuildParams, Checkpoint,
    Genesis, GenesisAlloc, L1Origin, ParentFacts, BATCH_VERSION,
};
use stint_state::{Hash, MemoryNodeStore, SparseMerkleTree};

use crate::replay::{replay_batch, replay_batch_sequential, ReplayVerdict};

const CHAIN_ID: u64 = 5;
const ACCOUNTS: usize = 12;
const TIMESTAMP: u64 = 1_700_000_000;

fn signer(i: usize) -> (SigningKey, AccountId) {
    let mut seed = [0u8; 32];
    seed[0] = 1;
    seed[1] = i as u8;
    let key = SigningKey::from_bytes(&seed).unwrap();
    let id = AccountId::from_signing_key(&key);
    (key, id)
}

struct Fixture {
    genesis: Genesis,
    store: MemoryNodeStore,
    root: Hash,
    signers: Vec<(SigningKey, AccountId)>,
}

fn fixture(k: u32) -> Fixture {
    let signers: Vec<_> = (0..ACCOUNTS).map(signer).collect();
    let anchor =
        Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[9; 32]).unwrap())
            .x_only_public_key()
            .0;
    let alloc = signers
        .iter()
        .map(|(_, id)| GenesisAlloc {
            account: *id,
            balance: 10_000,
        })
        .collect();
    let mut genesis = Genesis::new(
        CHAIN_ID,
        anchor,
        AccountId([0xfe; 32]),
        alloc,
        0,
        bitcoin::BlockHash::all_zeros(),
    );
    genesis.checkpoint_interval = k;
    let update = genesis.state_update().unwrap();
    let mut store = MemoryNodeStore::new();
    store.write(&update);
    Fixture {
        genesis,
        store,
        root: update.root,
        signers,
    }
}

/// One random tx: (from, to, amount, fee, payroll?, nonce skew, bad signature?).
type Op = (usize, usize, u64, u64, bool, u8, bool);

fn op() -> impl Strategy<Value = Op> {
    (
        0..ACCOUNTS,
        0..ACCOUNTS,
        prop_oneof![1u64..3_000, 9_000u64..20_000],
        0u64..20,
        prop::bool::weighted(0.15),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8)],
        prop::bool::weighted(0.03),
    )
}

fn make_txs(f: &Fixture, ops: &[Op]) -> Vec<SignedTx> {
    let mut nonces = [0u64; ACCOUNTS];
    ops.iter()
        .map(|&(from, to, amount, fee, payroll, skew, bad_sig)| {
            let (key, id) = &f.signers[from];
            let to_id = f.signers[to].1;
            let call = if payroll {
                Call::Payroll {
                    payments: vec![
                        Payment { to: to_id, amount },
                        Payment {
                            to: f.signers[(to + 1) % ACCOUNTS].1,
                            amount: amount / 2 + 1,
                        },
                    ],
                }
            } else {
                Call::Transfer { to: to_id, amount }
            };
            let tx = Tx {
                chain_id: CHAIN_ID,
                from: *id,
                nonce: nonces[from] + u64::from(skew),
                fee,
                call,
            };
            nonces[from] += 1;
            let mut signed = tx.sign(key).unwrap();
            if bad_sig {
                signed.sig[5] ^= 1;
            }
            signed
        })
        .collect()
}

fn params(f: &Fixture) -> BuildParams {
    BuildParams {
        parent: ParentFacts::genesis(&f.genesis, f.root),
        timestamp: TIMESTAMP,
        l1_origin: L1Origin {
            height: 0,
            hash: [0; 32],
        },
    }
}

/// A batch holding exactly `txs`, claiming the honest checkpoints up to the first invalid tx
/// (random ones after it), with checkpoint `corrupt` (1-based) replaced when given.
fn forge(f: &Fixture, txs: Vec<SignedTx>, corrupt: Option<usize>) -> Batch {
    let k = f.genesis.checkpoint_interval as usize;
    let header = BatchHeader {
        version: BATCH_VERSION,
        chain_id: CHAIN_ID,
        number: 1,
        parent: f.genesis.hash(),
        timestamp: TIMESTAMP,
        l1_origin: L1Origin {
            height: 0,
            hash: [0; 32],
        },
        prev_state_root: f.root,
        ..BatchHeader::default()
    };
    let context = block_context(&f.genesis, &header);
    let mut tree = SparseMerkleTree::new(f.store.clone());
    let mut root = f.root;
    let mut checkpoints = Vec::new();
    let mut broken = false;
    let segments: Vec<&[SignedTx]> = if txs.is_empty() {
        vec![&txs[..0]]
    } else {
        txs.chunks(k).collect()
    };
    let mut tx_end = 0u32;
    for (i, segment) in segments.iter().enumerate() {
        tx_end += segment.len() as u32;
        if !broken {
            match execute_segment(tree.view(root), &context, segment) {
                Ok(outcome) => {
                    let update = tree.apply(&root, &outcome.changes).unwrap();
                    root = update.root;
                    tree.store_mut().write(&update);
                }
                Err(_) => broken = true,
            }
        }
        let claimed = if broken { [i as u8 + 1; 32] } else { root };
        checkpoints.push(Checkpoint::new(claimed, tx_end));
    }
    if let Some(j) = corrupt {
        let j = (j - 1) % checkpoints.len();
        checkpoints[j].state_root[0] ^= 0x80;
    }
    let header = BatchHeader {
        state_root: checkpoints.last().unwrap().state_root,
        tx_root: tx_root(&txs),
        trace_root: trace_root(&checkpoints),
        tx_count: txs.len() as u32,
        ..header
    };
    Batch::new(header, checkpoints, txs)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Honest batches (built by the builder): the parallel replay agrees with the batch's own
    /// roots and with the sequential reference, bit for bit.
    #[test]
    fn parallel_replay_of_honest_batches_is_sequential_replay(
        ops in prop::collection::vec(op(), 0..48),
        k in 2u32..9,
    ) {
        let f = fixture(k);
        let sealed = BatchBuilder::new(&f.genesis)
            .build(&f.store, &params(&f), make_txs(&f, &ops))
            .unwrap();
        let batch = sealed.batch;
        let challenger = AccountId([7; 32]);
        let parallel = pool(4).install(|| replay_batch(&f.genesis, &f.store, &batch, challenger)).unwrap();
        let sequential = replay_batch_sequential(&f.genesis, &f.store, &batch, challenger).unwrap();
        prop_assert_eq!(&parallel, &sequential);
        let ReplayVerdict::Honest(honest) = parallel else {
            return Err(TestCaseError::fail("honest batch judged fraudulent"));
        };
        prop_assert_eq!(honest.checkpoints.as_slice(), batch.checkpoints());
        prop_assert_eq!(honest.state_root(), Some(batch.header().state_root));
        prop_assert_eq!(honest.receipts, sealed.receipts);
    }

    /// Forged batches (invalid txs kept, checkpoints possibly corrupted): the parallel replay
    /// reaches the same verdict and builds the same proof as the sequential reference.
    #[test]
    fn parallel_replay_of_forged_batches_is_sequential_replay(
        ops in prop::collection::vec(op(), 1..48),
        k in 2u32..9,
        corrupt in prop::option::of(1usize..12),
    ) {
        let f = fixture(k);
        let batch = forge(&f, make_txs(&f, &ops), corrupt);
        let challenger = AccountId([7; 32]);
        let parallel = pool(4).install(|| replay_batch(&f.genesis, &f.store, &batch, challenger)).unwrap();
        let sequential = replay_batch_sequential(&f.genesis, &f.store, &batch, challenger).unwrap();
        prop_assert_eq!(&parallel, &sequential);
        let one_thread = pool(1).install(|| replay_batch(&f.genesis, &f.store, &batch, challenger)).unwrap();
        prop_assert_eq!(&parallel, &one_thread);
    }
}

#[test]
fn empty_batch_is_honest_with_one_checkpoint() {
    let f = fixture(4);
    let sealed = BatchBuilder::new(&f.genesis)
        .build(&f.store, &params(&f), Vec::new())
        .unwrap();
    let verdict = replay_batch(&f.genesis, &f.store, &sealed.batch, AccountId([7; 32])).unwrap();
    let ReplayVerdict::Honest(honest) = verdict else {
        panic!("empty batch judged fraudulent");
    };
    assert_eq!(honest.checkpoints, vec![Checkpoint::new(f.root, 0)]);
    assert_eq!(honest.state_root(), Some(f.root));
}

#[test]
fn a_wrong_last_checkpoint_is_caught_in_its_segment() {
    let f = fixture(4);
    let ops: Vec<Op> = (0..10)
        .map(|i| (i, (i + 1) % ACCOUNTS, 10, 1, false, 0, false))
        .collect();
    // 10 txs, K = 4: segments 1..=3; corrupt the third (the batch's state root).
    let batch = forge(&f, make_txs(&f, &ops), Some(3));
    let verdict = replay_batch(&f.genesis, &f.store, &batch, AccountId([7; 32])).unwrap();
    let ReplayVerdict::Fraud(fraud) = verdict else {
        panic!("fraud not detected");
    };
    assert_eq!(fraud.segment, 3);
    assert!(matches!(
        fraud.fraud,
        stint_protocol::Fraud::WrongCheckpoint { segment: 3, .. }
    ));
    assert_eq!(fraud.proof.txs.len(), 2);
}

#[test]
fn a_bad_signature_is_caught_as_an_invalid_tx() {
    let f = fixture(4);
    let mut ops: Vec<Op> = (0..9)
        .map(|i| (i, (i + 1) % ACCOUNTS, 10, 1, false, 0, false))
        .collect();
    ops[6].6 = true;
    let batch = forge(&f, make_txs(&f, &ops), None);
    let verdict = replay_batch(&f.genesis, &f.store, &batch, AccountId([7; 32])).unwrap();
    let ReplayVerdict::Fraud(fraud) = verdict else {
        panic!("fraud not detected");
    };
    assert_eq!(fraud.segment, 2);
    assert!(matches!(
        fraud.fraud,
        stint_protocol::Fraud::InvalidTx {
            index: 6,
            reason: stint_contracts::InvalidTxReason::BadSignature
        }
    ));
}
