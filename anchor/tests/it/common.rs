//! Shared setup: a funded regtest node per test.

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{Block, BlockHash, FeeRate, Network};
use stint_anchor::{
    Anchorer, BitcoindClient, PostedEnvelope, RegtestConfig, RegtestNode, Submission,
};
use tempfile::TempDir;

/// A running regtest node with a funded wallet. Field order matters: the node stops before its
/// data directory is deleted.
pub(crate) struct Harness {
    pub(crate) node: RegtestNode,
    pub(crate) wallet: BitcoindClient,
    pub _dir: TempDir,
}

impl Harness {
    pub(crate) async fn start(extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RegtestConfig::new(dir.path().join("bitcoind"));
        config.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
        let node = RegtestNode::start_with(config).await.unwrap();
        let wallet = node.client().ensure_wallet("stint").await.unwrap();
        // Idempotent.
        node.client().ensure_wallet("stint").await.unwrap();
        let address = wallet.get_new_address(Network::Regtest).await.unwrap();
        wallet.generate_to_address(110, &address).await.unwrap();
        Harness {
            node,
            wallet,
            _dir: dir,
        }
    }

    pub(crate) fn anchorer(&self, seed: u8) -> Anchorer {
        Anchorer::new(self.wallet.clone(), keypair(seed), Network::Regtest)
    }

    /// The block that confirms a just-posted pair: with [`Submission::Mempool`] the next mined
    /// block; with [`Submission::MineDirectly`] the tip, which `post` mined itself.
    pub(crate) async fn confirm(&self, anchorer: &Anchorer, posted: &PostedEnvelope) -> BlockHash {
        let hash = match anchorer.submission().await.unwrap() {
            Submission::Mempool => self.mine(1).await[0],
            Submission::MineDirectly => self.node.client().get_best_block_hash().await.unwrap(),
        };
        let block = self.block(&hash).await;
        assert!(
            block
                .txdata
                .iter()
                .any(|tx| tx.compute_txid() == posted.reveal_txid),
            "reveal not in the confirming block"
        );
        hash
    }

    /// Mines `n` blocks to a fresh address (so re-mined blocks differ from invalidated ones).
    pub(crate) async fn mine(&self, n: u64) -> Vec<bitcoin::BlockHash> {
        let to = self.wallet.get_new_address(Network::Regtest).await.unwrap();
        self.wallet.generate_to_address(n, &to).await.unwrap()
    }

    pub(crate) async fn block(&self, hash: &bitcoin::BlockHash) -> Block {
        self.node.client().get_block(hash).await.unwrap()
    }
}

pub(crate) fn keypair(seed: u8) -> Keypair {
    Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[seed; 32]).unwrap(),
    )
}

/// Incompressible bytes: a SHA-256 chain.
pub(crate) fn incompressible(len: usize, seed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut h = sha256::Hash::hash(seed);
    while out.len() < len {
        out.extend_from_slice(h.as_byte_array());
        h = sha256::Hash::hash(h.as_byte_array());
    }
    out.truncate(len);
    out
}

pub(crate) fn sat_vb(n: u32) -> FeeRate {
    FeeRate::from_sat_per_vb_u32(n)
}

/// Feeds every pending follower event into derivation, returning derivation's events.
pub(crate) async fn sync(
    follower: &mut stint_anchor::ChainFollower,
    derivation: &mut stint_protocol::Derivation,
) -> Vec<stint_protocol::DerivationEvent> {
    let mut out = Vec::new();
    for event in follower.poll().await.unwrap() {
        match event {
            stint_anchor::ChainEvent::Connected { height, block } => {
                out.extend(derivation.connect_block(height, &block).unwrap())
            }
            stint_anchor::ChainEvent::Disconnected { height, hash } => {
                out.extend(derivation.disconnect_block(height, hash).unwrap())
            }
        }
    }
    out
}
