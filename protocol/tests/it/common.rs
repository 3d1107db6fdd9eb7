//! Shared fixtures: keys, a genesis, signed transfers, synthetic Bitcoin blocks with envelopes.

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{Keypair, Secp256k1, XOnlyPublicKey};
use bitcoin::taproot::{LeafVersion, TaprootBuilder};
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, Sequence, Transaction, TxIn, TxMerkleNode,
    TxOut, Witness,
};
use k256::schnorr::SigningKey;
use stint_contracts::{AccountId, Call, SignedTx, Tx};
use stint_protocol::{
    AnchorAuth, Batch, BatchBuilder, Bridge, BuildParams, DepositTag, Envelope, EnvelopeKind,
    Genesis, GenesisAlloc, L1Origin, ParentFacts, SealedBatch,
};
use stint_state::{Hash, MemoryNodeStore};

pub(crate) const CHAIN_ID: u64 = 4242;
pub(crate) const T0: u64 = 1_700_000_000;

pub(crate) fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32]).unwrap()
}

pub(crate) fn account(seed: u8) -> AccountId {
    AccountId::from_signing_key(&signing_key(seed))
}

pub(crate) fn btc_key(seed: u8) -> XOnlyPublicKey {
    let secp = Secp256k1::new();
    Keypair::from_seckey_slice(&secp, &[seed; 32])
        .unwrap()
        .x_only_public_key()
        .0
}

pub(crate) const ALICE: u8 = 1;
pub(crate) const BOB: u8 = 2;
pub(crate) const FEES: u8 = 9;
pub(crate) const ANCHOR: u8 = 7;

pub(crate) fn genesis_with(start: &Block, k: u32, window: u64) -> Genesis {
    let mut g = Genesis::new(
        CHAIN_ID,
        btc_key(ANCHOR),
        account(FEES),
        vec![
            GenesisAlloc {
                account: account(ALICE),
                balance: 1_000_000,
            },
            GenesisAlloc {
                account: account(BOB),
                balance: 1_000,
            },
        ],
        0,
        start.block_hash(),
    );
    g.checkpoint_interval = k;
    g.dispute_window = window;
    g
}

pub(crate) fn transfer(from: u8, to: u8, nonce: u64, amount: u64) -> SignedTx {
    Tx {
        chain_id: CHAIN_ID,
        from: account(from),
        nonce,
        fee: 1,
        call: Call::Transfer {
            to: account(to),
            amount,
        },
    }
    .sign(&signing_key(from))
    .unwrap()
}

/// A store holding the genesis state, and the genesis root.
pub(crate) fn genesis_store(g: &Genesis) -> (MemoryNodeStore, Hash) {
    let update = g.state_update().unwrap();
    let mut store = MemoryNodeStore::new();
    store.write(&update);
    (store, update.root)
}

/// Build a batch on `parent` over `store` and persist its states in `store`.
pub(crate) fn build(
    g: &Genesis,
    store: &mut MemoryNodeStore,
    parent: ParentFacts,
    origin: (u64, &Block),
    txs: Vec<SignedTx>,
) -> SealedBatch {
    let params = BuildParams {
        parent,
        timestamp: T0 + parent.number * 10,
        l1_origin: L1Origin {
            height: origin.0,
            hash: origin.1.block_hash().to_byte_array(),
        },
    };
    let sealed = BatchBuilder::new(g).build(&*store, &params, txs).unwrap();
    for update in &sealed.updates {
        store.write(update);
    }
    sealed
}

/// Replace checkpoint `index` (0-based in the list) and reseal the header's trace/state roots.
pub(crate) fn forge_checkpoint(batch: &Batch, index: usize, value: Hash) -> Batch {
    let (mut header, mut checkpoints, txs) = batch.clone().into_parts();
    checkpoints[index].state_root = value;
    header.trace_root = stint_protocol::trace_root(&checkpoints);
    header.state_root = checkpoints.last().unwrap().state_root;
    Batch::new(header, checkpoints, txs)
}

pub(crate) fn block(prev: BlockHash, time: u64, salt: u32, txdata: Vec<Transaction>) -> Block {
    Block {
        header: Header {
            version: Version::TWO,
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::from_byte_array([salt as u8; 32]),
            time: time as u32,
            bits: CompactTarget::from_consensus(0x207fffff),
            nonce: salt,
        },
        txdata,
    }
}

pub(crate) fn start_block() -> Block {
    block(BlockHash::all_zeros(), T0 as u32 as u64, 0, Vec::new())
}

/// What the anchorer does: `key_seed`'s BIP340 signature over (genesis hash, kind, header hash).
pub(crate) fn anchor_auth(g: &Genesis, key_seed: u8, header_hash: Hash) -> AnchorAuth {
    let secp = Secp256k1::new();
    let keypair = Keypair::from_seckey_slice(&secp, &[key_seed; 32]).unwrap();
    let message = bitcoin::secp256k1::Message::from_digest(AnchorAuth::message(
        &g.hash(),
        EnvelopeKind::Batch,
        &header_hash,
    ));
    AnchorAuth {
        header_hash,
        signature: secp
            .sign_schnorr_no_aux_rand(&message, &keypair)
            .serialize(),
    }
}

/// A batch envelope under `key_seed`'s leaf key, signed by `key_seed` for `header_hash`.
pub(crate) fn batch_envelope(
    g: &Genesis,
    key_seed: u8,
    header_hash: Hash,
    payload: Vec<u8>,
) -> Envelope {
    Envelope::new(EnvelopeKind::Batch, btc_key(key_seed), payload).with_auth(anchor_auth(
        g,
        key_seed,
        header_hash,
    ))
}

/// A reveal transaction spending a taproot script path whose leaf is the envelope (kind 2: no
/// auth; use [`reveal_envelope`] for batches).
pub(crate) fn reveal(kind: EnvelopeKind, key_seed: u8, payload: Vec<u8>, salt: u32) -> Transaction {
    reveal_envelope(
        &Envelope::new(kind, btc_key(key_seed), payload),
        key_seed,
        salt,
    )
}

/// A reveal transaction carrying `envelope` (taproot internal key: `key_seed`'s).
pub(crate) fn reveal_envelope(envelope: &Envelope, key_seed: u8, salt: u32) -> Transaction {
    reveal_leaf(envelope.leaf_script().unwrap(), key_seed, salt)
}

/// A reveal transaction spending a taproot script path whose leaf is `script` (any bytes), with
/// a junk signature.
pub(crate) fn reveal_leaf(script: bitcoin::ScriptBuf, key_seed: u8, salt: u32) -> Transaction {
    let secp = Secp256k1::new();
    let spend = TaprootBuilder::new()
        .add_leaf(0, script.clone())
        .unwrap()
        .finalize(&secp, btc_key(key_seed))
        .unwrap();
    let control = spend
        .control_block(&(script.clone(), LeafVersion::TapScript))
        .unwrap();
    let mut witness = Witness::new();
    witness.push([1u8; 64]);
    witness.push(script.as_bytes());
    witness.push(control.serialize());
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: bitcoin::Txid::all_zeros(),
                vout: salt,
            },
            script_sig: bitcoin::ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness,
        }],
        output: Vec::new(),
    }
}

/// The test federation: 2 of keys 31–33, `min_deposit` 1,000 sats.
pub(crate) fn bridge() -> Bridge {
    Bridge {
        signers: vec![btc_key(31), btc_key(32), btc_key(33)],
        threshold: 2,
        min_deposit: 1_000,
    }
}

/// A deposit of `sats` to [`bridge`] naming `account(to)`; `salt` makes its txid unique.
pub(crate) fn deposit_tx(to: u8, sats: u64, salt: u32) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: bitcoin::Txid::from_byte_array([salt as u8; 32]),
                vout: salt,
            },
            script_sig: bitcoin::ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![
            TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: bridge().script_pubkey().unwrap(),
            },
            TxOut {
                value: Amount::ZERO,
                script_pubkey: DepositTag {
                    account: account(to),
                }
                .to_script(),
            },
        ],
    }
}
