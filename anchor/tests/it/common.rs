//! Shared setup: a funded regtest node per test.

use bitcoin::Network;
use stint_anchor::{BitcoindClient, RegtestConfig, RegtestNode};
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

    /// Mines `n` blocks to a fresh address (so re-mined blocks differ from invalidated ones).
    pub(crate) async fn mine(&self, n: u64) -> Vec<bitcoin::BlockHash> {
        let to = self.wallet.get_new_address(Network::Regtest).await.unwrap();
        self.wallet.generate_to_address(n, &to).await.unwrap()
    }
}
