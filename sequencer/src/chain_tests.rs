//! Unit tests of the sequencer's chain logic on the in-memory chain and wallet
//! ([`MemoryChain`], [`MemoryWallet`]): the real node (RocksDB store, batcher, anchoring loop)
//! with its Bitcoin edge in memory, through anchoring in order, a reorg that removes an anchored
//! batch (anchored again), and finality after the dispute window. No bitcoind.

use std::time::Duration;

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::Network;
use k256::schnorr::SigningKey;
use stint_anchor::{Anchorer, MemoryChain, MemoryWallet, Submission};
use stint_api::{BatchRef, BatchState, ChainView, TxEntry};
use stint_contracts::{AccountId, Call, Tx, Txid};
use stint_protocol::{Genesis, GenesisAlloc};

use crate::{BitcoindConfig, Sequencer, SequencerConfig};

const CHAIN_ID: u64 = 99;
const WINDOW: u64 = 3;

struct World {
    seq: Sequencer,
    chain: MemoryChain,
    wallet: MemoryWallet,
    users: Vec<SigningKey>,
    nonce: u64,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start(submission: Submission) -> World {
        let dir = tempfile::tempdir().unwrap();
        let chain = MemoryChain::new();
        chain.mine_empty(3);
        let wallet = MemoryWallet::new(chain.clone(), submission);
        let keypair = Keypair::from_secret_key(
            &Secp256k1::new(),
            &SecretKey::from_slice(&[0x42; 32]).unwrap(),
        );
        let users: Vec<SigningKey> = (1..=2u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]).unwrap())
            .collect();
        let alloc = users
            .iter()
            .map(|k| GenesisAlloc {
                account: AccountId::from_signing_key(k),
                balance: 1_000_000,
            })
            .collect();
        let mut genesis = Genesis::new(
            CHAIN_ID,
            keypair.x_only_public_key().0,
            AccountId([0xfe; 32]),
            alloc,
            chain.height(),
            chain.tip(),
        );
        genesis.dispute_window = WINDOW;
        let config = SequencerConfig {
            data_dir: dir.path().join("seq"),
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            batch_interval_ms: 3_600_000,
            l1_origin_depth: 0,
            bitcoind: BitcoindConfig {
                poll_interval_ms: 10,
                ..BitcoindConfig::default()
            },
            ..SequencerConfig::default()
        };
        let anchorer = Anchorer::new(wallet.clone(), keypair, Network::Regtest);
        let seq = Sequencer::start_with(config, genesis, anchorer, chain.clone())
            .await
            .unwrap();
        World {
            seq,
            chain,
            wallet,
            users,
            nonce: 0,
            _dir: dir,
        }
    }

    /// A transfer from user 0 to user 1, sealed into its own batch; its txid and batch.
    async fn sealed_transfer(&mut self, amount: u64) -> (Txid, u64) {
        let tx = Tx {
            chain_id: CHAIN_ID,
            from: AccountId::from_signing_key(&self.users[0]),
            nonce: self.nonce,
            fee: 10,
            call: Call::Transfer {
                to: AccountId::from_signing_key(&self.users[1]),
                amount,
            },
        }
        .sign(&self.users[0])
        .unwrap();
        self.nonce += 1;
        // The batcher needs an L1 origin: wait until the loop has followed the chain.
        wait("the chain followed", || {
            self.seq.view().sync_status().l1.is_some()
        })
        .await;
        let txid = self.seq.submit(tx).await.unwrap();
        let batch = self
            .seq
            .seal_now()
            .await
            .unwrap()
            .expect("a batch was sealed");
        (txid, batch)
    }

    fn anchored(&self) -> u64 {
        self.seq.view().sync_status().anchored.number
    }

    fn final_number(&self) -> u64 {
        self.seq.view().sync_status().final_.number
    }

    /// Plays the miner until batch `number` is anchored: mines what the mempool holds.
    async fn mine_until_anchored(&self, number: u64) {
        for _ in 0..500 {
            if self.anchored() >= number {
                return;
            }
            if !self.wallet.mempool().is_empty() {
                self.wallet.mine_mempool();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "batch {number} never anchored (anchored {}, mempool {:?})",
            self.anchored(),
            self.wallet.mempool()
        );
    }

    fn status(&self, batch: u64) -> BatchState {
        self.seq
            .view()
            .batch(BatchRef::Number(batch))
            .unwrap()
            .expect("the batch is kept")
            .status
    }
}

async fn wait(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_anchored_in_order_reanchored_after_a_reorg_and_final_after_the_window() {
    let mut w = World::start(Submission::Mempool).await;
    let (txid, first) = w.sealed_transfer(100).await;
    assert_eq!(first, 1);
    assert_eq!(w.status(1), BatchState::Soft);
    w.mine_until_anchored(1).await;
    let anchored_at = w.chain.height();
    assert_eq!(w.status(1), BatchState::Anchored);

    // A second batch: anchored after the first, never before it.
    let (_, second) = w.sealed_transfer(5).await;
    assert_eq!(second, 2);
    w.mine_until_anchored(2).await;

    // A reorg removes both anchoring blocks: both batches go back to soft, and the sequencer
    // writes them to Bitcoin again, in order.
    w.chain.reorg_to(anchored_at - 1);
    w.chain.mine_empty(2);
    wait("the reorg to reach the sequencer", || w.anchored() == 0).await;
    assert_eq!(w.status(1), BatchState::Soft);
    w.mine_until_anchored(2).await;
    assert_eq!(w.status(2), BatchState::Anchored);

    // The window passes: both are final, and the tx's receipt says so.
    w.chain.mine_empty(WINDOW + 1);
    wait("finality", || w.final_number() == 2).await;
    assert_eq!(w.status(1), BatchState::Final);
    match w.seq.view().transaction(&txid).unwrap() {
        Some(TxEntry::Included {
            batch,
            index,
            receipt,
            ..
        }) => {
            assert_eq!((batch, index, receipt.error), (1, 0, None));
        }
        other => panic!("tx not included: {other:?}"),
    }
    w.seq.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mined_directly_each_batch_gets_its_own_block_and_anchoring_waits_out_an_outage() {
    let mut w = World::start(Submission::MineDirectly).await;
    for expected in 1..=3 {
        let (_, batch) = w.sealed_transfer(expected).await;
        assert_eq!(batch, expected);
        wait("the batch anchored", || w.anchored() == expected).await;
    }
    // Every anchoring block holds one commit/reveal pair, in batch order.
    assert!(w.wallet.mempool().is_empty());
    let start = w.chain.height() - 2;
    for (offset, height) in (start..=w.chain.height()).enumerate() {
        let block = w.chain.get(&w.chain.hash_at(height).unwrap()).unwrap();
        assert_eq!(
            block.txdata.len(),
            3,
            "coinbase, commit, reveal at {height} ({offset})"
        );
    }
    // The chain goes down: sealing goes on, anchoring waits, and resumes when it is back.
    w.chain.set_down(true);
    let (_, fourth) = w.sealed_transfer(4).await;
    assert_eq!(fourth, 4);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.anchored(), 3);
    w.chain.set_down(false);
    wait("anchoring after the outage", || w.anchored() == 4).await;
    w.seq.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_start_at_the_fee_estimate_clamped_to_the_configured_floor_and_ceiling() {
    let mut w = World::start(Submission::Mempool).await;
    let rate_of = |w: &World, number: u64| {
        let stored = w.seq.store().anchor(number).unwrap().unwrap();
        bitcoin::FeeRate::from_sat_per_kwu(stored.fee_rate_sat_kwu)
    };
    let vb = bitcoin::FeeRate::from_sat_per_vb_u32;
    // No estimate (regtest): the floor.
    w.sealed_transfer(1).await;
    wait("batch 1 posted", || {
        w.seq.store().anchor(1).unwrap().is_some()
    })
    .await;
    assert_eq!(rate_of(&w, 1), vb(crate::DEFAULT_FEE_RATE_SAT_VB as u32));
    w.mine_until_anchored(1).await;
    // An estimate inside the bounds is taken as it is.
    w.wallet.set_fee_estimate(Some(vb(17)));
    w.sealed_transfer(2).await;
    wait("batch 2 posted", || {
        w.seq.store().anchor(2).unwrap().is_some()
    })
    .await;
    assert_eq!(rate_of(&w, 2), vb(17));
    w.mine_until_anchored(2).await;
    // An absurd estimate is capped at the ceiling.
    w.wallet.set_fee_estimate(Some(vb(90_000)));
    w.sealed_transfer(3).await;
    wait("batch 3 posted", || {
        w.seq.store().anchor(3).unwrap().is_some()
    })
    .await;
    assert_eq!(
        rate_of(&w, 3),
        vb(crate::DEFAULT_MAX_FEE_RATE_SAT_VB as u32)
    );
    w.mine_until_anchored(3).await;
    w.seq.shutdown().await.unwrap();
}
