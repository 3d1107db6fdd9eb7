//! Unit tests of the pure replay: parallel replay is bit-identical to the sequential reference on
//! random honest and random forged batches; a proof that cannot be encoded or judged as fraud is
//! an alert; the challenge key file must be private.

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use k256::schnorr::SigningKey;
use proptest::prelude::*;
use stint_contracts::{execute_segment, AccountId, Call, Payment, SignedTx, Tx};

use stint_protocol::{
    block_context, trace_root, tx_root, Anchor, Batch, BatchBuilder, BatchHeader, BuildParams,
    Checkpoint, Genesis, GenesisAlloc, Judge, L1Origin, ParentFacts, Verdict, BATCH_VERSION,
};
use stint_state::{Hash, MemoryNodeStore, ProofNode, SparseMerkleTree, MAX_MULTIPROOF_NODES};

use crate::challenge::ChallengeKey;
use crate::engine::PendingFraud;
use crate::metrics::VerifierMetrics;
use crate::replay::{
    challenge_bytes, judge_proof, replay_batch, replay_batch_sequential, ChallengeStage,
    DetectedFraud, ReplayVerdict,
};
use crate::status::ChallengeAlert;

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
        let parallel = pool(4).install(|| replay_batch(&f.genesis, &f.store, &batch, &[], challenger)).unwrap();
        let sequential = replay_batch_sequential(&f.genesis, &f.store, &batch, &[], challenger).unwrap();
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
        let parallel = pool(4).install(|| replay_batch(&f.genesis, &f.store, &batch, &[], challenger)).unwrap();
        let sequential = replay_batch_sequential(&f.genesis, &f.store, &batch, &[], challenger).unwrap();
        prop_assert_eq!(&parallel, &sequential);
        let one_thread = pool(1).install(|| replay_batch(&f.genesis, &f.store, &batch, &[], challenger)).unwrap();
        prop_assert_eq!(&parallel, &one_thread);
    }
}

#[test]
fn empty_batch_is_honest_with_one_checkpoint() {
    let f = fixture(4);
    let sealed = BatchBuilder::new(&f.genesis)
        .build(&f.store, &params(&f), Vec::new())
        .unwrap();
    let verdict =
        replay_batch(&f.genesis, &f.store, &sealed.batch, &[], AccountId([7; 32])).unwrap();
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
    let verdict = replay_batch(&f.genesis, &f.store, &batch, &[], AccountId([7; 32])).unwrap();
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
    let verdict = replay_batch(&f.genesis, &f.store, &batch, &[], AccountId([7; 32])).unwrap();
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

/// The fraud of `a_wrong_last_checkpoint_is_caught_in_its_segment`, as the engine keeps it.
fn pending(batch: &Batch, detected: ReplayVerdict) -> PendingFraud {
    let detected = match detected {
        ReplayVerdict::Fraud(d) => Ok(*d),
        ReplayVerdict::Unprovable(u) => Err(*u),
        ReplayVerdict::Honest(_) => panic!("not a fraud"),
    };
    PendingFraud {
        number: batch.header().number,
        hash: batch.hash(),
        anchor: Anchor {
            height: 100,
            block_hash: bitcoin::BlockHash::all_zeros(),
            btc_txid: bitcoin::Txid::all_zeros(),
        },
        detected,
    }
}

fn forged_with_wrong_last_checkpoint(f: &Fixture) -> (Batch, DetectedFraud) {
    let ops: Vec<Op> = (0..10)
        .map(|i| (i, (i + 1) % ACCOUNTS, 10, 1, false, 0, false))
        .collect();
    let batch = forge(f, make_txs(f, &ops), Some(3));
    let ReplayVerdict::Fraud(fraud) =
        replay_batch(&f.genesis, &f.store, &batch, &[], AccountId([7; 32])).unwrap()
    else {
        panic!("fraud not detected");
    };
    (batch, *fraud)
}

#[test]
fn the_detected_fraud_carries_the_judged_bytes() {
    let f = fixture(4);
    let (batch, fraud) = forged_with_wrong_last_checkpoint(&f);
    assert_eq!(fraud.bytes, fraud.proof.encode().unwrap());
    assert!(!fraud.bytes.is_empty());
    assert!(matches!(
        Judge::judge_bytes(&f.genesis, batch.header(), &fraud.bytes),
        Ok(Verdict::Fraud(_))
    ));
}

/// An attacker's batch whose proof cannot be encoded (a witness over the multiproof node limit)
/// or whose encoded proof the judge rejects: replay says so, with the failed step, instead of
/// failing silently (today's `JudgeDisagrees`: no challenge, no alert), and the node turns that
/// into an alert that lasts until the window closes.
#[test]
fn a_proof_that_does_not_encode_or_judge_as_fraud_is_an_alert_not_silence() {
    let f = fixture(4);
    let (batch, fraud) = forged_with_wrong_last_checkpoint(&f);
    let header = batch.header();

    // Over the node limit: encoding fails.
    let mut huge = fraud.proof.clone();
    huge.witness.proof.nodes = vec![ProofNode::Empty; MAX_MULTIPROOF_NODES + 1];
    let verdict = judge_proof(&f.genesis, header, fraud.segment, huge);
    let ReplayVerdict::Unprovable(u) = &verdict else {
        panic!("over-limit proof accepted: {verdict:?}");
    };
    assert_eq!(u.stage, ChallengeStage::Encode);
    assert_eq!(u.segment, 3);
    let (stage, reason) = (u.stage, u.reason.clone());
    assert!(challenge_bytes(&fraud.proof).is_ok());

    // Tampered: the judge rejects the bytes (a post checkpoint the trace root does not hold).
    let mut tampered = fraud.proof.clone();
    tampered.post_checkpoint.state_root[0] ^= 1;
    let verdict2 = judge_proof(&f.genesis, header, fraud.segment, tampered);
    let ReplayVerdict::Unprovable(u2) = &verdict2 else {
        panic!("tampered proof accepted: {verdict2:?}");
    };
    assert_eq!(u2.stage, ChallengeStage::Judge);
    assert!(u2.reason.contains("checkpoint"), "{}", u2.reason);

    // A proof against an honest segment: the judge finds no fraud in it.
    let mut honest_segment = fraud.proof.clone();
    honest_segment.segment = 1;
    let verdict3 = judge_proof(&f.genesis, header, 1, honest_segment);
    assert!(
        matches!(&verdict3, ReplayVerdict::Unprovable(u) if u.stage == ChallengeStage::Judge),
        "{verdict3:?}"
    );

    // The node's alert for it: stage, reason and blocks left, until the window closes.
    let pending = pending(&batch, verdict);
    assert!(pending.detected.is_err());
    let window_end = pending.anchor.height + 6;
    let alert = ChallengeAlert::new(
        &pending,
        stage,
        reason.clone(),
        pending.anchor.height + 2,
        window_end,
    )
    .expect("alert while the window is open");
    assert_eq!(alert.batch, 1);
    assert_eq!(alert.batch_hash, batch.hash());
    assert_eq!(alert.stage.as_str(), "encode");
    assert_eq!(alert.blocks_left, 4);
    assert_eq!(alert.window_ends_at, window_end);
    assert!(ChallengeAlert::new(&pending, stage, reason, window_end, window_end).is_none());

    // The metric is exported.
    let metrics = VerifierMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    metrics.unprovable_frauds.set(1);
    metrics.challenge_failures.inc();
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("\nstint_verifier_unprovable_frauds 1\n"),
        "{text}"
    );
    assert!(
        text.contains("\nstint_verifier_challenge_failures_total 1\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE stint_verifier_unprovable_frauds gauge\n"));
    assert!(text.contains("# TYPE stint_verifier_challenge_failures_total counter\n"));
}

#[test]
fn a_challenge_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verifier.json");
    let secret = [0x51u8; 32];
    let account = ChallengeKey::from_secret(&secret).unwrap().account();
    std::fs::write(
        &path,
        serde_json::json!({"address": account.to_address(), "secret_key": hex::encode(secret)})
            .to_string(),
    )
    .unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = ChallengeKey::load(&path).unwrap_err().to_string();
        assert!(err.contains("too open"), "{mode:o}: {err}");
        assert!(err.contains("chmod 600"), "{mode:o}: {err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains(&hex::encode(secret)), "{err}");
    }
    for mode in [0o600, 0o400] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(ChallengeKey::load(&path).unwrap().account(), account);
    }
}
