//! Derivation over blocks read from a real node: batches posted by commit/reveal are derived
//! back; foreign-key and malformed envelopes are ignored; reorgs remove and restore them.

use bitcoin::hashes::Hash as _;
use bitcoin::opcodes::all::{OP_CHECKSIG, OP_ENDIF, OP_IF};
use bitcoin::opcodes::OP_FALSE;
use bitcoin::script::Builder;
use bitcoin::Network;
use k256::schnorr::SigningKey;
use stint_anchor::{Anchorer, ChainFollower};
use stint_contracts::{AccountId, Call, Tx};
use stint_protocol::{
    BatchBuilder, BuildParams, Derivation, DerivationEvent, EnvelopeKind, Genesis, GenesisAlloc,
    IndexHint, L1Origin, ParentFacts,
};
use stint_state::MemoryNodeStore;

use crate::common::{sat_vb, sync, Harness};

const CHAIN_ID: u64 = 77;

fn account(seed: u8) -> (SigningKey, AccountId) {
    let key = SigningKey::from_bytes(&[seed; 32]).unwrap();
    let id = AccountId::from_signing_key(&key);
    (key, id)
}

fn anchored_numbers(derivation: &Derivation) -> Vec<u64> {
    derivation
        .canonical()
        .iter()
        .map(|r| r.header.number)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derivation_follows_posted_batches_through_reorgs() {
    let h = Harness::start(&[]).await;
    let client = h.node.client().clone();
    let ours: Anchorer = h.anchorer(1);
    let foreign = h.anchorer(2);

    // A genesis anchored at the current tip, with the anchorer's key.
    let start_height = client.get_block_count().await.unwrap();
    let start_hash = client.get_block_hash(start_height).await.unwrap();
    let start_time = u64::from(h.block(&start_hash).await.header.time);
    let (alice_key, alice) = account(1);
    let (_, bob) = account(2);
    let (_, fees) = account(9);
    let genesis = Genesis::new(
        CHAIN_ID,
        ours.key(),
        fees,
        vec![GenesisAlloc {
            account: alice,
            balance: 1_000_000,
        }],
        start_height,
        start_hash,
    );
    let update = genesis.state_update().unwrap();
    let mut store = MemoryNodeStore::new();
    store.write(&update);

    let transfer = Tx {
        chain_id: CHAIN_ID,
        from: alice,
        nonce: 0,
        fee: 10,
        call: Call::Transfer {
            to: bob,
            amount: 5_000,
        },
    }
    .sign(&alice_key)
    .unwrap();
    let params = BuildParams {
        parent: ParentFacts::genesis(&genesis, update.root),
        timestamp: start_time,
        l1_origin: L1Origin {
            height: start_height,
            hash: start_hash.to_byte_array(),
        },
    };
    let sealed = BatchBuilder::new(&genesis)
        .build(&store, &params, vec![transfer])
        .unwrap();
    assert_eq!(sealed.batch.txs().len(), 1);
    let payload = sealed.batch.encode().unwrap();
    let hint = IndexHint {
        kind: EnvelopeKind::Batch,
        number: 1,
        header_hash: sealed.batch.hash(),
    };

    // The same batch under a foreign key, and a malformed envelope under ours, come first.
    let forged = foreign.batch_envelope(&genesis.hash(), sealed.batch.hash(), payload.clone());
    foreign.post(&forged, Some(hint), sat_vb(2)).await.unwrap();
    let malformed = Builder::new()
        .push_x_only_key(&ours.key())
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_FALSE)
        .push_opcode(OP_IF)
        .push_slice(b"stint")
        .push_slice([1u8])
        .push_slice(b"not zstd at all")
        .push_opcode(OP_ENDIF)
        .into_script();
    ours.post_leaf(malformed, None, sat_vb(2)).await.unwrap();
    let envelope = ours.batch_envelope(&genesis.hash(), sealed.batch.hash(), payload);
    let posted = ours.post(&envelope, Some(hint), sat_vb(2)).await.unwrap();
    let anchor_block = h.confirm(&ours, &posted).await;

    let mut derivation = Derivation::new(genesis.clone(), update.root);
    let mut follower = ChainFollower::from_height(client.clone(), start_height);
    let events = sync(&mut follower, &mut derivation).await;
    assert_eq!(anchored_numbers(&derivation), vec![1]);
    let record = &derivation.canonical()[0];
    assert_eq!(record.hash, sealed.batch.hash());
    assert_eq!(record.header.state_root, sealed.batch.header().state_root);
    assert_eq!(record.anchor.btc_txid, posted.reveal_txid);
    assert_eq!(record.anchor.block_hash, anchor_block);
    // The foreign envelope is not even considered; nothing under our key was rejected but the
    // malformed one, which never decodes as an envelope.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, DerivationEvent::BatchRejected { .. })),
        "{events:?}"
    );

    // Reorg: the anchoring block goes away, and the batch with it.
    client.invalidate_block(&anchor_block).await.unwrap();
    let events = sync(&mut follower, &mut derivation).await;
    assert!(events.contains(&DerivationEvent::BatchUnanchored {
        number: 1,
        hash: sealed.batch.hash()
    }));
    assert!(anchored_numbers(&derivation).is_empty());

    // It comes back with the block.
    client.reconsider_block(&anchor_block).await.unwrap();
    sync(&mut follower, &mut derivation).await;
    assert_eq!(anchored_numbers(&derivation), vec![1]);
    assert_eq!(
        derivation.canonical()[0].anchor.btc_txid,
        posted.reveal_txid
    );

    // Finality after the dispute window, as seen on the real chain.
    let window = genesis.dispute_window;
    let to = h.wallet.get_new_address(Network::Regtest).await.unwrap();
    h.wallet.generate_to_address(window, &to).await.unwrap();
    let events = sync(&mut follower, &mut derivation).await;
    assert!(events.contains(&DerivationEvent::BatchFinal {
        number: 1,
        hash: sealed.batch.hash()
    }));
    assert!(derivation.is_final(&derivation.canonical()[0]));
}
