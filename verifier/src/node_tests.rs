//! Unit tests of the whole verifier node — loop, engine on RocksDB, challenger, published status,
//! view — with its Bitcoin edge in memory ([`MemoryChain`] for blocks, [`MemoryWallet`] for the
//! challenge wallet), through [`start_with`]: an honest batch verified and final; a forged batch
//! challenged through the wallet and invalidated by derivation; a challenge's fee bumped up to
//! the policy's ceiling; a reorg that drops an accepted challenge, re-broadcast; a block-source
//! outage; a restart on the same data directory. No bitcoind.

use std::time::{Duration, Instant};

use bitcoin::hashes::Hash as _;
use bitcoin::FeeRate;
use k256::schnorr::SigningKey;
use stint_anchor::{BitcoindConfig, MemoryChain, MemoryWallet, PostedEnvelope, Submission};
use stint_api::{BatchRef, BatchState, ChainView, TxEntry};
use stint_contracts::{AccountId, Call, SignedTx, Tx};
use stint_protocol::{
    trace_root, Batch, BatchBuilder, BuildParams, Genesis, GenesisAlloc, L1Origin, ParentFacts,
    SealedBatch,
};
use stint_state::MemoryNodeStore;

use crate::chain_tests::{anchor_keypair, reveal};
use crate::{
    start_with, ChallengeEntry, ChallengeKey, ChallengeStatus, Snapshot, VerifierConfig,
    VerifierHandle,
};

const CHAIN_ID: u64 = 78;
/// The dispute window, in blocks: long enough for every fee bump below.
const WINDOW: u64 = 12;
const CHALLENGE_SECRET: [u8; 32] = [0x5c; 32];

/// How a test's node is configured.
#[derive(Clone, Copy)]
struct Settings {
    fee_rate_sat_vb: u64,
    max_fee_rate_sat_vb: u64,
    bump_after_blocks: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            fee_rate_sat_vb: 2,
            max_fee_rate_sat_vb: 50,
            // No bumps unless a test asks for them.
            bump_after_blocks: 1_000,
        }
    }
}

struct World {
    node: Option<VerifierHandle>,
    chain: MemoryChain,
    wallet: MemoryWallet,
    config: VerifierConfig,
    genesis: Genesis,
    /// The honest state after the last batch [`World::honest`] built.
    store: MemoryNodeStore,
    /// The parent of the next honest batch.
    parent: ParentFacts,
    users: Vec<SigningKey>,
    nonce: u64,
    _dir: tempfile::TempDir,
}

impl World {
    /// A chain of 3 blocks, a genesis starting at block 1 (window [`WINDOW`]), two funded users,
    /// a challenge key file, and the node started on a fresh data directory.
    async fn start(settings: Settings) -> World {
        let dir = tempfile::tempdir().unwrap();
        let chain = MemoryChain::new();
        chain.mine_empty(3);
        let wallet = MemoryWallet::new(chain.clone(), Submission::Mempool);
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
        genesis.dispute_window = WINDOW;
        genesis.checkpoint_interval = 2;
        let update = genesis.state_update().unwrap();
        let mut store = MemoryNodeStore::new();
        store.write(&update);

        let genesis_file = dir.path().join("genesis.json");
        std::fs::write(&genesis_file, genesis.to_json()).unwrap();
        let key_file = dir.path().join("challenger.json");
        let account = ChallengeKey::from_secret(&CHALLENGE_SECRET)
            .unwrap()
            .account();
        stint_testkit::write_private(
            &key_file,
            &serde_json::json!({
                "address": account.to_address(),
                "secret_key": hex::encode(CHALLENGE_SECRET),
            })
            .to_string(),
        )
        .unwrap();
        let config = VerifierConfig {
            data_dir: dir.path().join("data"),
            genesis: genesis_file,
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            bitcoind: BitcoindConfig {
                poll_interval_ms: 10,
                ..BitcoindConfig::default()
            },
            challenge_key_file: Some(key_file),
            replay_threads: 2,
            fee_rate_sat_vb: settings.fee_rate_sat_vb,
            max_fee_rate_sat_vb: settings.max_fee_rate_sat_vb,
            bump_after_blocks: settings.bump_after_blocks,
            ..VerifierConfig::default()
        };
        let mut world = World {
            node: None,
            parent: ParentFacts::genesis(&genesis, update.root),
            chain,
            wallet,
            config,
            genesis,
            store,
            users,
            nonce: 0,
            _dir: dir,
        };
        world.boot().await;
        world
    }

    /// Starts the node on the world's chain, wallet and data directory.
    async fn boot(&mut self) {
        assert!(self.node.is_none(), "the node is running");
        let node = start_with(
            self.config.clone(),
            Some(self.wallet.clone()),
            self.chain.clone(),
        )
        .await
        .unwrap();
        self.node = Some(node);
        self.synced().await;
    }

    /// Stops the node (its loop must end cleanly).
    async fn stop(&mut self) {
        self.node.take().unwrap().stop().await.unwrap();
    }

    fn node(&self) -> &VerifierHandle {
        self.node.as_ref().unwrap()
    }

    /// Waits (up to 10 s) until the published snapshot satisfies `cond`.
    async fn wait(&self, what: &str, cond: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.node().status().snapshot();
            if cond(&s) {
                return s;
            }
            assert!(
                !self.node().is_finished(),
                "the node stopped waiting for {what}"
            );
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: l1 {:?}, verified {:?}, fraud {:?}, challenges {:?}, \
                 alerts {:?}, error {:?}",
                s.l1,
                s.verified,
                s.pending_fraud,
                s.challenges,
                s.alerts,
                s.last_error
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the node has processed the chain's tip (and managed its challenges there).
    async fn synced(&self) -> Snapshot {
        let tip = (self.chain.height(), self.chain.tip());
        self.wait("the L1 tip", |s| s.l1 == Some(tip) && s.bitcoind_ok)
            .await
    }

    fn transfer(&mut self, amount: u64) -> SignedTx {
        let key = &self.users[0];
        let tx = Tx {
            chain_id: CHAIN_ID,
            from: AccountId::from_signing_key(key),
            nonce: self.nonce,
            fee: 1,
            call: Call::Transfer {
                to: AccountId::from_signing_key(&self.users[1]),
                amount,
            },
        }
        .sign(key)
        .unwrap();
        self.nonce += 1;
        tx
    }

    /// The next honest batch (on the last one built) with two transfers, on L1 block 1; the
    /// world's honest state moves to it.
    fn honest(&mut self) -> SealedBatch {
        let txs = vec![self.transfer(100), self.transfer(7)];
        let origin = self.chain.get(&self.chain.hash_at(1).unwrap()).unwrap();
        let params = BuildParams {
            parent: self.parent,
            timestamp: u64::from(origin.header.time) + 60 * (self.parent.number + 1),
            l1_origin: L1Origin {
                height: 1,
                hash: self.chain.hash_at(1).unwrap().to_byte_array(),
            },
        };
        let sealed = BatchBuilder::new(&self.genesis)
            .build(&self.store, &params, txs)
            .unwrap();
        assert!(sealed.rejected.is_empty(), "{:?}", sealed.rejected);
        for update in &sealed.updates {
            self.store.write(update);
        }
        self.parent = ParentFacts::of(sealed.batch.header());
        sealed
    }

    /// Mines a block holding `batch`'s envelope, signed by the sequencer's anchor key.
    fn anchor(&self, batch: &Batch) {
        self.chain.mine(vec![reveal(&self.genesis, batch)]);
    }

    /// Our challenge records, published.
    fn challenges(&self) -> Vec<ChallengeEntry> {
        self.node().status().snapshot().challenges
    }
}

/// A copy of `honest` with its last checkpoint's state root changed and the header resealed
/// over it (what an attacker holding the sequencer key can anchor).
fn forge(honest: &Batch) -> Batch {
    let (mut header, mut checkpoints, txs) = honest.clone().into_parts();
    let last = checkpoints.len() - 1;
    checkpoints[last].state_root[0] ^= 1;
    header.trace_root = trace_root(&checkpoints);
    header.state_root = checkpoints[last].state_root;
    Batch::new(header, checkpoints, txs)
}

fn posted(entry: &ChallengeEntry) -> PostedEnvelope {
    entry.posted.to_posted().unwrap()
}

fn vb(sat: u64) -> FeeRate {
    FeeRate::from_sat_per_vb(sat).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_batch_is_verified_served_and_final_after_the_window() {
    let mut w = World::start(Settings::default()).await;
    let sealed = w.honest();
    let batch = &sealed.batch;
    w.anchor(batch);
    let s = w
        .wait("batch 1 verified", |s| {
            s.verified.map(|v| v.number) == Some(1)
        })
        .await;
    assert_eq!(s.verified.unwrap().hash, batch.hash());
    assert_eq!(s.verified.unwrap().state_root, batch.header().state_root);
    assert!(s.canonical[0].verified);
    assert!(s.pending_fraud.is_none() && s.challenges.is_empty() && s.alerts.is_empty());
    let m = w.node().metrics();
    assert_eq!(m.batches_verified.get(), 1);
    assert_eq!(m.txs_replayed.get(), 2);
    assert_eq!(m.frauds_detected.get(), 0);
    assert!(w.wallet.mempool().is_empty(), "nothing to challenge");

    // The view serves it: heads, the batch, its txs, the state at its version.
    let view = w.node().view();
    assert_eq!(view.read_tip(), 1);
    assert_eq!(view.sync_status().soft.number, 1);
    assert_eq!(view.sync_status().final_.number, 0);
    let entry = view.batch(BatchRef::Number(1)).unwrap().unwrap();
    assert_eq!(entry.batch.hash(), batch.hash());
    assert_eq!(entry.status, BatchState::Anchored);
    let txid = batch.txs()[1].txid();
    assert!(matches!(
        view.transaction(&txid).unwrap(),
        Some(TxEntry::Included {
            batch: 1,
            index: 1,
            ..
        })
    ));
    assert_eq!(view.state_root(1).unwrap(), Some(batch.header().state_root));

    // After the window it is final.
    w.chain.mine_empty(WINDOW);
    let s = w.synced().await;
    assert_eq!(s.final_tip.map(|f| f.hash), Some(batch.hash()));
    assert_eq!(
        w.node().view().batch_state(1, &batch.hash()).unwrap(),
        Some(BatchState::Final)
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_batch_is_challenged_through_the_wallet_and_invalidated() {
    let mut w = World::start(Settings::default()).await;
    let honest = w.honest().batch;
    let forged = forge(&honest);
    w.anchor(&forged);
    let anchored_at = w.chain.height();

    // Detected and challenged: the pair waits in the wallet's mempool, recorded as posted.
    let s = w
        .wait("the challenge posted", |s| s.challenges.len() == 1)
        .await;
    assert!(s.verified.is_none(), "a forged batch is never verified");
    assert_eq!(s.pending_fraud, Some((1, anchored_at + WINDOW)));
    let challenge = s.challenges[0].clone();
    assert_eq!(challenge.batch, 1);
    assert_eq!(challenge.batch_hash, hex::encode(forged.hash()));
    assert_eq!(challenge.status, ChallengeStatus::Posted);
    let pair = posted(&challenge);
    assert_eq!(pair.reveal_txid, challenge.btc_txid);
    assert_eq!(w.wallet.mempool(), vec![pair.commit_txid, pair.reveal_txid]);
    // At the floor: the wallet has no estimate.
    assert_eq!(pair.fee_rate, vb(2));
    assert_eq!(w.node().metrics().frauds_detected.get(), 1);
    assert_eq!(w.node().metrics().challenges_posted.get(), 1);

    // Mined: derivation accepts the challenge and invalidates the batch.
    w.wallet.mine_mempool();
    let s = w
        .wait("the challenge accepted", |s| {
            s.challenges
                .first()
                .is_some_and(|c| c.status == ChallengeStatus::Accepted)
        })
        .await;
    assert_eq!(s.challenges.len(), 1, "posted once");
    assert!(s.pending_fraud.is_none());
    assert!(s.canonical.is_empty());
    assert_eq!(
        s.invalidated
            .iter()
            .map(|b| b.record.hash)
            .collect::<Vec<_>>(),
        vec![forged.hash()]
    );
    assert_eq!(
        w.node()
            .view()
            .batch(BatchRef::Hash(forged.hash()))
            .unwrap()
            .map(|e| e.status),
        Some(BatchState::Invalidated)
    );

    // The honest batch takes the slot.
    w.anchor(&honest);
    let s = w
        .wait("the honest batch verified", |s| {
            s.verified.map(|v| v.number) == Some(1)
        })
        .await;
    assert_eq!(s.verified.unwrap().hash, honest.hash());
    assert_eq!(w.node().metrics().challenges_posted.get(), 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_challenge_is_bumped_up_to_the_fee_ceiling() {
    let mut w = World::start(Settings {
        fee_rate_sat_vb: 2,
        max_fee_rate_sat_vb: 5,
        bump_after_blocks: 1,
    })
    .await;
    // The estimate (3 sat/vB) is within [2, 5]: the challenge starts there.
    w.wallet.set_fee_estimate(Some(vb(3)));
    let forged = forge(&w.honest().batch);
    w.anchor(&forged);
    w.wait("the challenge posted", |s| s.challenges.len() == 1)
        .await;
    let first = w.challenges()[0].clone();
    assert_eq!(posted(&first).fee_rate, vb(3));

    // Nobody mines the pair: every block it waited, its fee goes up by half, to the ceiling.
    let mut rates = vec![posted(&first).fee_rate.to_sat_per_kwu()];
    let mut txids = vec![first.btc_txid];
    for _ in 0..4 {
        w.chain.mine_empty(1);
        w.synced().await;
        let entry = w.challenges()[0].clone();
        let pair = posted(&entry);
        rates.push(pair.fee_rate.to_sat_per_kwu());
        txids.push(entry.btc_txid);
        // Only the newest pair is in the mempool (each bump replaced the one before).
        assert_eq!(w.wallet.mempool(), vec![pair.commit_txid, pair.reveal_txid]);
    }
    // 3 sat/vB = 750 sat/kwu; ×1.5 = 1125; then the 5 sat/vB ceiling (1250), and no further.
    assert_eq!(rates, vec![750, 1125, 1250, 1250, 1250]);
    assert_ne!(txids[0], txids[1]);
    assert_ne!(txids[1], txids[2]);
    assert_eq!(txids[2], txids[4], "no bump above the ceiling");
    assert_eq!(w.challenges().len(), 1);
    assert_eq!(
        w.node().metrics().challenges_posted.get(),
        1,
        "bumps are not new challenges"
    );

    // The capped pair confirms and is accepted.
    w.wallet.mine_mempool();
    let s = w
        .wait("the bumped challenge accepted", |s| {
            s.challenges
                .first()
                .is_some_and(|c| c.status == ChallengeStatus::Accepted)
        })
        .await;
    assert_eq!(s.challenges[0].btc_txid, txids[4]);
    assert_eq!(s.invalidated.len(), 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_that_drops_an_accepted_challenge_makes_the_node_rebroadcast_it() {
    let mut w = World::start(Settings::default()).await;
    let forged = forge(&w.honest().batch);
    w.anchor(&forged);
    let anchored_at = w.chain.height();
    w.wait("the challenge posted", |s| s.challenges.len() == 1)
        .await;
    let pair = posted(&w.challenges()[0]);
    w.wallet.mine_mempool();
    w.wait("the challenge accepted", |s| {
        s.challenges
            .first()
            .is_some_and(|c| c.status == ChallengeStatus::Accepted)
    })
    .await;
    assert!(w.wallet.mempool().is_empty());

    // A reorg replaces the block holding the challenge: the forged batch is canonical again,
    // the pair is unknown to the wallet, and the node sends the same pair again.
    w.chain.reorg_to(anchored_at);
    w.chain.mine_empty(1);
    let s = w
        .wait("the challenge re-broadcast", |s| {
            s.pending_fraud.is_some()
                && s.challenges
                    .first()
                    .is_some_and(|c| c.status == ChallengeStatus::Posted)
        })
        .await;
    assert_eq!(s.canonical.len(), 1);
    assert_eq!(s.canonical[0].record.hash, forged.hash());
    assert!(s.invalidated.is_empty());
    w.synced().await;
    assert_eq!(w.wallet.mempool(), vec![pair.commit_txid, pair.reveal_txid]);
    assert_eq!(
        w.challenges()[0].btc_txid,
        pair.reveal_txid,
        "the same pair"
    );
    assert_eq!(
        w.node().metrics().challenges_posted.get(),
        1,
        "not posted anew"
    );

    // Mined on the new branch: accepted again.
    w.wallet.mine_mempool();
    let s = w
        .wait("the challenge accepted again", |s| {
            s.challenges
                .first()
                .is_some_and(|c| c.status == ChallengeStatus::Accepted)
        })
        .await;
    assert!(s.pending_fraud.is_none());
    assert_eq!(s.invalidated.len(), 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_source_outage_is_reported_and_survived() {
    let mut w = World::start(Settings::default()).await;
    let batch = w.honest().batch;
    w.chain.set_down(true);
    w.anchor(&batch);
    w.chain.mine_empty(1);
    let s = w.wait("the outage reported", |s| !s.bitcoind_ok).await;
    assert!(
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("memory chain is down")),
        "{:?}",
        s.last_error
    );
    assert!(s.verified.is_none());
    assert_eq!(
        s.l1.map(|(h, _)| h),
        Some(3),
        "nothing processed while down"
    );
    assert!(!w.node().is_finished(), "an outage does not stop the node");

    w.chain.set_down(false);
    let s = w.synced().await;
    assert_eq!(s.verified.map(|v| v.hash), Some(batch.hash()));
    assert!(s.last_error.is_none());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_directory_resumes_without_replaying() {
    let mut w = World::start(Settings::default()).await;
    let first = w.honest().batch;
    w.anchor(&first);
    w.wait("batch 1 verified", |s| {
        s.verified.map(|v| v.number) == Some(1)
    })
    .await;
    w.stop().await;

    // The chain moves on while the node is down.
    let second = w.honest().batch;
    w.anchor(&second);
    w.chain.mine_empty(1);

    w.boot().await;
    let s = w
        .wait("batch 2 verified", |s| {
            s.verified.map(|v| v.number) == Some(2)
        })
        .await;
    assert_eq!(s.verified.unwrap().hash, second.hash());
    assert_eq!(s.verified.unwrap().state_root, second.header().state_root);
    assert_eq!(s.canonical[0].record.hash, first.hash());
    // Batch 1 came from the store: only batch 2 was replayed by this run.
    let m = w.node().metrics();
    assert_eq!(m.batches_verified.get(), 1);
    assert_eq!(m.txs_replayed.get(), 2);
    assert_eq!(
        w.node().view().state_root(1).unwrap(),
        Some(first.header().state_root)
    );
    w.stop().await;
}
