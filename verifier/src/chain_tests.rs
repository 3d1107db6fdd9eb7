//! Unit tests of the verifier's chain logic on the in-memory chain ([`MemoryChain`]): the engine
//! driven by a [`ChainFollower`] exactly as the node's loop drives it, through honest batches,
//! reorgs that remove and re-mine them, source outages, and a forged batch.

use std::sync::Arc;

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{Keypair, Message, Secp256k1, SecretKey};
use bitcoin::{BlockHash, Transaction};
use k256::schnorr::SigningKey;
use stint_anchor::{ChainEvent, ChainFollower, MemoryChain, RpcError};
use stint_contracts::{AccountId, Call, SignedTx, Tx};
use stint_protocol::{
    trace_root, AnchorAuth, Batch, BatchBuilder, BuildParams, Envelope, EnvelopeKind, Genesis,
    GenesisAlloc, L1Origin, ParentFacts,
};
use stint_state::{Hash, MemoryNodeStore};

use crate::engine::Engine;

const CHAIN_ID: u64 = 77;
const ANCHOR_SEED: [u8; 32] = [0x42; 32];

struct World {
    chain: MemoryChain,
    follower: ChainFollower<MemoryChain>,
    engine: Engine,
    genesis: Genesis,
    store: MemoryNodeStore,
    root: Hash,
    users: Vec<SigningKey>,
    _dir: tempfile::TempDir,
}

pub(crate) fn anchor_keypair() -> Keypair {
    Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&ANCHOR_SEED).unwrap(),
    )
}

impl World {
    /// A chain of 3 blocks, a genesis starting at block 1 (window 3 blocks), two funded users,
    /// and an engine on a fresh RocksDB directory following from block 1.
    fn new() -> World {
        let chain = MemoryChain::new();
        chain.mine_empty(3);
        let users: Vec<SigningKey> = (1..=2u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]).unwrap())
            .collect();
        let mut genesis = Genesis::new(
            CHAIN_ID,
            anchor_keypair().x_only_public_key().0,
            AccountId::from_signing_key(&SigningKey::from_bytes(&[9; 32]).unwrap()),
            users
                .iter()
                .map(|k| GenesisAlloc {
                    account: AccountId::from_signing_key(k),
                    balance: 10_000,
                })
                .collect(),
            1,
            chain.hash_at(1).unwrap(),
        );
        genesis.dispute_window = 3;
        genesis.checkpoint_interval = 2;
        let update = genesis.state_update().unwrap();
        let mut store = MemoryNodeStore::new();
        store.write(&update);
        let dir = tempfile::tempdir().unwrap();
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap(),
        );
        let engine = Engine::open(genesis.clone(), dir.path(), AccountId([7; 32]), pool).unwrap();
        World {
            follower: ChainFollower::from_height(chain.clone(), genesis.l1_start_height),
            chain,
            engine,
            genesis,
            store,
            root: update.root,
            users,
            _dir: dir,
        }
    }

    fn transfer(&self, from: usize, nonce: u64, amount: u64) -> SignedTx {
        let key = &self.users[from];
        Tx {
            chain_id: CHAIN_ID,
            from: AccountId::from_signing_key(key),
            nonce,
            fee: 1,
            call: Call::Transfer {
                to: AccountId::from_signing_key(&self.users[1 - from]),
                amount,
            },
        }
        .sign(key)
        .unwrap()
    }

    /// Batch 1 on the genesis with `txs`, built on L1 block 1 (a minute after it).
    fn batch_one(&self, txs: Vec<SignedTx>) -> Batch {
        let origin = self.chain.get(&self.chain.hash_at(1).unwrap()).unwrap();
        let params = BuildParams {
            parent: ParentFacts::genesis(&self.genesis, self.root),
            timestamp: u64::from(origin.header.time) + 60,
            l1_origin: L1Origin {
                height: 1,
                hash: self.chain.hash_at(1).unwrap().to_byte_array(),
            },
        };
        BatchBuilder::new(&self.genesis)
            .build(&self.store, &params, txs)
            .unwrap()
            .batch
    }

    /// Feeds every chain change to the engine, as the node's loop does.
    async fn sync(&mut self) -> Result<(), RpcError> {
        for event in self.follower.poll().await? {
            match event {
                ChainEvent::Connected { height, block } => {
                    self.engine.connect_block(height, &block).unwrap();
                }
                ChainEvent::Disconnected { height, hash } => {
                    self.engine.disconnect_block(height, hash).unwrap();
                }
            }
        }
        Ok(())
    }

    fn verified_hashes(&self) -> Vec<Hash> {
        self.engine.verified().iter().map(|v| v.hash).collect()
    }
}

/// The reveal transaction an anchorer would mine for `batch`: a taproot script-path spend whose
/// leaf is the batch envelope, signed (auth) by the anchor key. The spend's own signature is
/// junk: nothing here validates scripts, as derivation does not.
pub(crate) fn reveal(genesis: &Genesis, batch: &Batch) -> Transaction {
    let secp = Secp256k1::new();
    let keypair = anchor_keypair();
    let header_hash = batch.hash();
    let digest = AnchorAuth::message(&genesis.hash(), EnvelopeKind::Batch, &header_hash);
    let auth = AnchorAuth {
        header_hash,
        signature: secp
            .sign_schnorr_no_aux_rand(&Message::from_digest(digest), &keypair)
            .serialize(),
    };
    let envelope = Envelope::new(
        EnvelopeKind::Batch,
        keypair.x_only_public_key().0,
        batch.encode().unwrap(),
    )
    .with_auth(auth);
    let script = envelope.leaf_script().unwrap();
    let spend = bitcoin::taproot::TaprootBuilder::new()
        .add_leaf(0, script.clone())
        .unwrap()
        .finalize(&secp, keypair.x_only_public_key().0)
        .unwrap();
    let control = spend
        .control_block(&(script.clone(), bitcoin::taproot::LeafVersion::TapScript))
        .unwrap();
    let mut witness = bitcoin::Witness::new();
    witness.push([1u8; 64]);
    witness.push(script.as_bytes());
    witness.push(control.serialize());
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: bitcoin::OutPoint {
                txid: bitcoin::Txid::from_byte_array(header_hash),
                vout: 0,
            },
            script_sig: bitcoin::ScriptBuf::new(),
            sequence: bitcoin::Sequence::MAX,
            witness,
        }],
        output: Vec::new(),
    }
}

#[tokio::test]
async fn an_anchored_batch_is_verified_rolled_back_by_a_reorg_and_verified_again() {
    let mut w = World::new();
    let batch = w.batch_one(vec![w.transfer(0, 0, 100), w.transfer(1, 0, 5)]);
    let txids: Vec<_> = batch.txs().iter().map(|t| t.txid()).collect();
    let indexed = |w: &World| {
        txids
            .iter()
            .map(|txid| {
                w.engine
                    .store()
                    .transaction(txid)
                    .unwrap()
                    .map(|r| (r.batch, r.index))
            })
            .collect::<Vec<_>>()
    };
    let reveal = reveal(&w.genesis, &batch);
    w.chain.mine(vec![reveal.clone()]);
    w.sync().await.unwrap();
    assert_eq!(w.verified_hashes(), vec![batch.hash()]);
    assert!(w.engine.pending_fraud().is_none());
    // Its txs are indexed where they executed, with their receipts.
    assert_eq!(indexed(&w), vec![Some((1, 0)), Some((1, 1))]);
    let record = w.engine.store().transaction(&txids[0]).unwrap().unwrap();
    assert_eq!(
        (record.batch_hash, record.receipt.txid),
        (batch.hash(), txids[0])
    );

    // A reorg drops the anchoring block: the batch and its state go, and its txs with them.
    w.chain.reorg_to(3);
    w.chain.mine_empty(2);
    w.sync().await.unwrap();
    assert!(
        w.verified_hashes().is_empty(),
        "the reorg rolled the batch back"
    );
    assert!(w.engine.derivation().canonical().is_empty());
    assert_eq!(indexed(&w), vec![None, None]);

    // Re-mined: verified again, to the same state.
    w.chain.mine(vec![reveal]);
    w.sync().await.unwrap();
    assert_eq!(w.verified_hashes(), vec![batch.hash()]);
    assert_eq!(indexed(&w), vec![Some((1, 0)), Some((1, 1))]);
    assert_eq!(
        w.engine.verified_tip().map(|v| v.state_root),
        Some(batch.header().state_root)
    );
}

#[tokio::test]
async fn an_outage_changes_nothing_and_the_engine_catches_up_after_it() {
    let mut w = World::new();
    let batch = w.batch_one(vec![w.transfer(0, 0, 1)]);
    let reveal = reveal(&w.genesis, &batch);
    w.chain.set_down(true);
    w.chain.mine(vec![reveal.clone()]);
    w.chain.mine_empty(1);
    let e = w.sync().await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(w.verified_hashes().is_empty());
    let l1_before = w.engine.derivation().l1_tip();

    // While down, the anchoring block is reorged out and replaced by an empty one.
    w.chain.reorg_to(3);
    let replaced: BlockHash = w.chain.mine(Vec::new());
    assert_eq!(w.engine.derivation().l1_tip(), l1_before);
    w.chain.set_down(false);
    w.sync().await.unwrap();
    assert!(
        w.verified_hashes().is_empty(),
        "the batch never reached the active chain"
    );
    assert_eq!(w.engine.derivation().l1_tip(), Some((4, replaced)));

    // Mined for good: verified.
    w.chain.mine(vec![reveal]);
    w.sync().await.unwrap();
    assert_eq!(w.verified_hashes(), vec![batch.hash()]);
}

#[tokio::test]
async fn a_forged_batch_is_detected_as_fraud_and_a_reorg_clears_it() {
    let mut w = World::new();
    let honest = w.batch_one(vec![w.transfer(0, 0, 100), w.transfer(0, 1, 100)]);
    // What an attacker can build from public data: the honest batch with its last checkpoint's
    // root changed and the header resealed over it.
    let (mut header, mut checkpoints, txs) = honest.clone().into_parts();
    let last = checkpoints.len() - 1;
    checkpoints[last].state_root[0] ^= 1;
    header.trace_root = trace_root(&checkpoints);
    header.state_root = checkpoints[last].state_root;
    let forged = Batch::new(header, checkpoints, txs);
    w.chain.mine(vec![reveal(&w.genesis, &forged)]);
    w.sync().await.unwrap();
    assert!(
        w.verified_hashes().is_empty(),
        "a forged batch is never verified"
    );
    let fraud = w
        .engine
        .pending_fraud()
        .expect("the fraud is pending a challenge");
    assert_eq!(fraud.number, 1);

    w.chain.reorg_to(3);
    w.chain.mine(vec![reveal(&w.genesis, &honest)]);
    w.sync().await.unwrap();
    assert!(
        w.engine.pending_fraud().is_none(),
        "the forged batch left the chain"
    );
    assert_eq!(w.verified_hashes(), vec![honest.hash()]);
}
