//! Issue 13 §3 on a real node: a batch envelope carried by the spend of an output Bitcoin does not
//! treat as taproot. Such a spend is anyone-can-spend by consensus (the leaf, with its
//! `<anchor key> OP_CHECKSIG`, is never executed), so a miner can include one with a junk
//! signature. Built the way an attacker would — public data only: the genesis, its anchor key,
//! the honest chain tip — and mined with `generateblock` (consensus rules only). Derivation must
//! ignore it, and the sequencer's envelope for the same number must then take the slot.

use bitcoin::hashes::Hash as _;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::taproot::{LeafVersion, TaprootBuilder};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
    WitnessProgram, WitnessVersion,
};
use k256::schnorr::SigningKey;
use stint_anchor::ChainFollower;
use stint_contracts::{AccountId, Call, Tx};
use stint_protocol::{
    find_block_envelopes, AnchorAuth, BatchBuilder, BuildParams, Derivation, DerivationEvent,
    Envelope, EnvelopeKind, Genesis, GenesisAlloc, IndexHint, L1Origin, ParentFacts,
};
use stint_state::MemoryNodeStore;

use crate::common::{keypair, sat_vb, sync, Harness};

const CHAIN_ID: u64 = 78;

/// The outputs an attacker can spend with any witness: not a real P2TR output, so Bitcoin
/// does not run the leaf. Returns (scriptPubKey, scriptSig of the spend).
fn anyone_can_spend_outputs() -> Vec<(&'static str, ScriptBuf, ScriptBuf)> {
    let v1_33 = WitnessProgram::new(WitnessVersion::V1, &[0x42; 33]).unwrap();
    let v2_32 = WitnessProgram::new(WitnessVersion::V2, &[0x43; 32]).unwrap();
    let v1_32 = WitnessProgram::new(WitnessVersion::V1, &[0x44; 32]).unwrap();
    let redeem = ScriptBuf::new_witness_program(&v1_32);
    let script_sig = Builder::new()
        .push_slice(PushBytesBuf::try_from(redeem.to_bytes()).unwrap())
        .into_script();
    vec![
        (
            "witness v1, 33-byte program",
            ScriptBuf::new_witness_program(&v1_33),
            ScriptBuf::new(),
        ),
        (
            "witness v2 program",
            ScriptBuf::new_witness_program(&v2_32),
            ScriptBuf::new(),
        ),
        (
            "P2SH-wrapped witness v1",
            ScriptBuf::new_p2sh(&redeem.script_hash()),
            script_sig,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_batch_in_a_non_taproot_spend_is_ignored_and_the_honest_batch_takes_the_slot() {
    let h = Harness::start(&[]).await;
    let client = h.node.client().clone();
    let ours = h.anchorer(1);

    // A genesis anchored at the current tip under the sequencer's key.
    let start_height = client.get_block_count().await.unwrap();
    let start_hash = client.get_block_hash(start_height).await.unwrap();
    let start_time = u64::from(h.block(&start_hash).await.header.time);
    let alice_key = SigningKey::from_bytes(&[1; 32]).unwrap();
    let alice = AccountId::from_signing_key(&alice_key);
    let bob = AccountId::from_signing_key(&SigningKey::from_bytes(&[2; 32]).unwrap());
    let fees = AccountId::from_signing_key(&SigningKey::from_bytes(&[9; 32]).unwrap());
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
    let params = BuildParams {
        parent: ParentFacts::genesis(&genesis, update.root),
        timestamp: start_time,
        l1_origin: L1Origin {
            height: start_height,
            hash: start_hash.to_byte_array(),
        },
    };
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
    let honest = BatchBuilder::new(&genesis)
        .build(&store, &params, vec![transfer])
        .unwrap()
        .batch;
    // The attacker's batch 1: the real builder on the public genesis state; it links to the
    // tip exactly like the honest one (an empty batch needs no one's key).
    let forged = BatchBuilder::new(&genesis)
        .build(&store, &params, Vec::new())
        .unwrap()
        .batch;
    assert_ne!(forged.hash(), honest.hash());

    // Forged envelopes: the anchor key's x-only key in the leaf, no valid auth.
    let attacker = keypair(0x66);
    let secp = Secp256k1::new();
    let attacker_auth = {
        let message = bitcoin::secp256k1::Message::from_digest(AnchorAuth::message(
            &genesis.hash(),
            EnvelopeKind::Batch,
            &forged.hash(),
        ));
        AnchorAuth {
            header_hash: forged.hash(),
            signature: secp
                .sign_schnorr_no_aux_rand(&message, &attacker)
                .serialize(),
        }
    };
    let junk_auth = AnchorAuth {
        header_hash: forged.hash(),
        signature: [0x5a; 64],
    };
    let hint = IndexHint {
        kind: EnvelopeKind::Batch,
        number: 1,
        header_hash: forged.hash(),
    };

    // Fund one output of each anyone-can-spend kind from the wallet with a raw transaction.
    let outputs = anyone_can_spend_outputs();
    let unfunded = Transaction {
        version: Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: Vec::new(),
        output: outputs
            .iter()
            .map(|(_, spk, _)| TxOut {
                value: Amount::from_sat(20_000),
                script_pubkey: spk.clone(),
            })
            .collect(),
    };
    let (funded, _) = h
        .wallet
        .fund_raw_transaction(&unfunded, sat_vb(2))
        .await
        .unwrap();
    let funding = h
        .wallet
        .sign_raw_transaction_with_wallet(&funded)
        .await
        .unwrap();
    let funding_txid = funding.compute_txid();

    // Spend each with witness [junk signature, forged leaf, control block].
    let mut spends = Vec::new();
    for (i, (what, spk, script_sig)) in outputs.iter().enumerate() {
        let auth = if i == 1 { attacker_auth } else { junk_auth };
        let leaf = Envelope::new(EnvelopeKind::Batch, ours.key(), forged.encode().unwrap())
            .with_auth(auth)
            .leaf_script()
            .unwrap();
        let control = TaprootBuilder::new()
            .add_leaf(0, leaf.clone())
            .unwrap()
            .finalize(&secp, ours.key())
            .unwrap()
            .control_block(&(leaf.clone(), LeafVersion::TapScript))
            .unwrap();
        let mut witness = Witness::new();
        witness.push([0x01; 64]);
        witness.push(leaf.as_bytes());
        witness.push(control.serialize());
        let vout = funding
            .output
            .iter()
            .position(|o| &o.script_pubkey == spk)
            .unwrap() as u32;
        let spend = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: funding_txid,
                    vout,
                },
                script_sig: script_sig.clone(),
                sequence: Sequence::MAX,
                witness,
            }],
            output: vec![
                TxOut {
                    value: Amount::ZERO,
                    script_pubkey: hint.to_script(),
                },
                TxOut {
                    value: Amount::from_sat(10_000),
                    script_pubkey: h
                        .wallet
                        .get_new_address(Network::Regtest)
                        .await
                        .unwrap()
                        .script_pubkey(),
                },
            ],
        };
        spends.push((*what, spend));
    }
    let to = h.wallet.get_new_address(Network::Regtest).await.unwrap();
    let mut raw = vec![&funding];
    raw.extend(spends.iter().map(|(_, tx)| tx));
    let forged_block = client
        .generate_block(&to, &[], &raw)
        .await
        .expect("consensus accepts the spends: nothing executes their leaf");
    // Bitcoin took them, and they look exactly like envelopes under the anchor key.
    let block = h.block(&forged_block).await;
    let located = find_block_envelopes(&block);
    assert_eq!(located.len(), spends.len(), "{located:?}");
    for (what, spend) in &spends {
        let found = located
            .iter()
            .find(|l| l.txid == spend.compute_txid())
            .unwrap_or_else(|| panic!("{what}: not found in the block"));
        assert_eq!(found.envelope.key, genesis.anchor_key, "{what}");
        assert_eq!(
            found.envelope.decode().unwrap().payload,
            forged.encode().unwrap()
        );
    }

    // The sequencer's envelope for the same number, posted afterwards with the real anchorer.
    let envelope = ours.batch_envelope(&genesis.hash(), honest.hash(), honest.encode().unwrap());
    let honest_hint = IndexHint {
        kind: EnvelopeKind::Batch,
        number: 1,
        header_hash: honest.hash(),
    };
    let posted = ours
        .post(&envelope, Some(honest_hint), sat_vb(2))
        .await
        .unwrap();
    let anchor_block = h.confirm(&ours, &posted).await;

    // Every node: derivation fed the real blocks ignores the forgeries without a word, and
    // anchors the honest batch.
    let mut derivation = Derivation::new(genesis.clone(), update.root);
    let mut follower = ChainFollower::from_height(client.clone(), start_height);
    let events = sync(&mut follower, &mut derivation).await;
    let anchored: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DerivationEvent::BatchAnchored { batch, anchor } => Some((batch.hash(), *anchor)),
            _ => None,
        })
        .collect();
    assert_eq!(anchored.len(), 1, "{events:?}");
    assert_eq!(anchored[0].0, honest.hash());
    assert_eq!(anchored[0].1.btc_txid, posted.reveal_txid);
    assert_eq!(anchored[0].1.block_hash, anchor_block);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, DerivationEvent::BatchRejected { .. })),
        "{events:?}"
    );
    assert_eq!(derivation.canonical().len(), 1);
    assert_eq!(derivation.tip().unwrap().hash, honest.hash());
}
