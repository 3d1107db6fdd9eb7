//! [`BlockSource`]: where a follower reads Bitcoin's active chain from — bitcoind, or the
//! in-memory [`MemoryChain`] that tests of chain-following logic run on (reorgs of any depth and
//! outages on demand, no process to start).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash as _;
use bitcoin::pow::CompactTarget;
use bitcoin::{
    Amount, Block, BlockHash, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode,
    TxOut, Witness,
};

use crate::rpc::{BitcoindClient, RpcError};

/// bitcoind's code for a height above its tip.
const RPC_INVALID_PARAMETER: i64 = -8;
/// bitcoind's code for an unknown block.
const RPC_INVALID_ADDRESS_OR_KEY: i64 = -5;

/// Read access to a Bitcoin node's block tree and active chain.
///
/// Errors are [`RpcError`]s, so callers keep one rule: [`RpcError::is_transient`] means "the
/// source is unreachable, retry later".
pub trait BlockSource: Send + Sync {
    /// The height of the active chain's tip.
    fn best_height(&self) -> impl Future<Output = Result<u64, RpcError>> + Send;

    /// The hash of the active chain's block at `height`.
    fn block_hash(&self, height: u64) -> impl Future<Output = Result<BlockHash, RpcError>> + Send;

    /// The block with `hash` (active or stale).
    fn block(&self, hash: &BlockHash) -> impl Future<Output = Result<Block, RpcError>> + Send;

    /// The parent of the block with `hash` (active or stale); `None` for the genesis block.
    fn parent_hash(
        &self,
        hash: &BlockHash,
    ) -> impl Future<Output = Result<Option<BlockHash>, RpcError>> + Send;
}

impl BlockSource for BitcoindClient {
    async fn best_height(&self) -> Result<u64, RpcError> {
        self.get_block_count().await
    }

    async fn block_hash(&self, height: u64) -> Result<BlockHash, RpcError> {
        self.get_block_hash(height).await
    }

    async fn block(&self, hash: &BlockHash) -> Result<Block, RpcError> {
        self.get_block(hash).await
    }

    async fn parent_hash(&self, hash: &BlockHash) -> Result<Option<BlockHash>, RpcError> {
        Ok(self.get_block_header_info(hash).await?.previous_block_hash)
    }
}

/// An in-memory Bitcoin chain: a block tree with an active chain, for tests of code that
/// follows Bitcoin. Blocks are built on demand ([`MemoryChain::mine`]), the active chain can be
/// cut back to any height ([`MemoryChain::reorg_to`]: the cut blocks stay known, as stale blocks
/// do in bitcoind), and the source can be taken down ([`MemoryChain::set_down`]: every read then
/// fails with a transient error). Clones share one chain.
///
/// Blocks are structurally valid (merkle root over their transactions, a unique coinbase) but
/// carry no proof of work and their transactions are not validated: a test decides what a miner
/// would mine.
#[derive(Debug, Clone)]
pub struct MemoryChain {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    /// The active chain; index = height.
    active: Vec<BlockHash>,
    /// Every block ever mined, active or stale.
    blocks: BTreeMap<BlockHash, Block>,
    down: bool,
    /// Makes every coinbase (so every block) unique.
    mined: u32,
}

impl Default for MemoryChain {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryChain {
    /// A chain holding only the regtest genesis block (height 0).
    pub fn new() -> Self {
        let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest);
        let hash = genesis.block_hash();
        Self {
            inner: Arc::new(Mutex::new(Inner {
                active: vec![hash],
                blocks: BTreeMap::from([(hash, genesis)]),
                down: false,
                mined: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The height of the tip.
    pub fn height(&self) -> u64 {
        self.lock().active.len().saturating_sub(1) as u64
    }

    /// The tip's hash.
    pub fn tip(&self) -> BlockHash {
        let inner = self.lock();
        inner
            .active
            .last()
            .copied()
            .unwrap_or_else(BlockHash::all_zeros)
    }

    /// The active block at `height`.
    pub fn hash_at(&self, height: u64) -> Option<BlockHash> {
        let index = usize::try_from(height).ok()?;
        self.lock().active.get(index).copied()
    }

    /// The block with `hash` (active or stale).
    pub fn get(&self, hash: &BlockHash) -> Option<Block> {
        self.lock().blocks.get(hash).cloned()
    }

    /// Mines a block on the tip holding a fresh coinbase and then `txdata`; its hash.
    pub fn mine(&self, txdata: Vec<Transaction>) -> BlockHash {
        let mut inner = self.lock();
        inner.mined = inner.mined.wrapping_add(1);
        let height = inner.active.len() as u64;
        let prev = inner
            .active
            .last()
            .copied()
            .unwrap_or_else(BlockHash::all_zeros);
        let prev_time = inner.blocks.get(&prev).map_or(0, |b| b.header.time);
        let coinbase = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::builder()
                    .push_int(height as i64)
                    .push_slice(inner.mined.to_le_bytes())
                    .into_script(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(50_0000_0000),
                script_pubkey: ScriptBuf::new_op_return([]),
            }],
        };
        let mut block = Block {
            header: Header {
                version: Version::TWO,
                prev_blockhash: prev,
                merkle_root: TxMerkleNode::all_zeros(),
                time: prev_time.saturating_add(600),
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: inner.mined,
            },
            txdata: std::iter::once(coinbase).chain(txdata).collect(),
        };
        if let Some(root) = block.compute_merkle_root() {
            block.header.merkle_root = root;
        }
        let hash = block.block_hash();
        inner.blocks.insert(hash, block);
        inner.active.push(hash);
        hash
    }

    /// Mines `n` blocks without transactions; their hashes.
    pub fn mine_empty(&self, n: u64) -> Vec<BlockHash> {
        (0..n).map(|_| self.mine(Vec::new())).collect()
    }

    /// Cuts the active chain back to `height` (the blocks above become stale); the next
    /// [`MemoryChain::mine`] builds on the block at `height`.
    pub fn reorg_to(&self, height: u64) {
        let keep = usize::try_from(height)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        self.lock().active.truncate(keep.max(1));
    }

    /// Takes the source down (every read fails, transiently) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    fn read<T>(&self, f: impl FnOnce(&Inner) -> Result<T, RpcError>) -> Result<T, RpcError> {
        let inner = self.lock();
        if inner.down {
            return Err(RpcError::Transport("the memory chain is down".into()));
        }
        f(&inner)
    }
}

fn not_found(method: &str, message: String, code: i64) -> RpcError {
    RpcError::Rpc {
        method: method.into(),
        code,
        message,
    }
}

impl BlockSource for MemoryChain {
    async fn best_height(&self) -> Result<u64, RpcError> {
        self.read(|inner| Ok(inner.active.len().saturating_sub(1) as u64))
    }

    async fn block_hash(&self, height: u64) -> Result<BlockHash, RpcError> {
        self.read(|inner| {
            usize::try_from(height)
                .ok()
                .and_then(|i| inner.active.get(i).copied())
                .ok_or_else(|| {
                    not_found(
                        "getblockhash",
                        "Block height out of range".into(),
                        RPC_INVALID_PARAMETER,
                    )
                })
        })
    }

    async fn block(&self, hash: &BlockHash) -> Result<Block, RpcError> {
        self.read(|inner| {
            inner.blocks.get(hash).cloned().ok_or_else(|| {
                not_found(
                    "getblock",
                    format!("Block {hash} not found"),
                    RPC_INVALID_ADDRESS_OR_KEY,
                )
            })
        })
    }

    async fn parent_hash(&self, hash: &BlockHash) -> Result<Option<BlockHash>, RpcError> {
        self.read(|inner| {
            let block = inner.blocks.get(hash).ok_or_else(|| {
                not_found(
                    "getblockheader",
                    format!("Block {hash} not found"),
                    RPC_INVALID_ADDRESS_OR_KEY,
                )
            })?;
            let parent = block.header.prev_blockhash;
            Ok((parent != BlockHash::all_zeros()).then_some(parent))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_chain_answers_like_bitcoind() {
        let chain = MemoryChain::new();
        let genesis = chain.tip();
        let mined = chain.mine_empty(3);
        assert_eq!(chain.best_height().await.unwrap(), 3);
        assert_eq!(chain.block_hash(2).await.unwrap(), mined[1]);
        assert_eq!(chain.parent_hash(&mined[0]).await.unwrap(), Some(genesis));
        assert_eq!(chain.parent_hash(&genesis).await.unwrap(), None);
        let block = chain.block(&mined[2]).await.unwrap();
        assert_eq!(block.block_hash(), mined[2]);
        assert!(block.check_merkle_root());
        let e = chain.block_hash(4).await.unwrap_err();
        assert_eq!(e.rpc_code(), Some(RPC_INVALID_PARAMETER));
        assert!(!e.is_transient());

        // A reorg keeps the old blocks as stale; new blocks differ from them.
        chain.reorg_to(1);
        let replacement = chain.mine(Vec::new());
        assert_ne!(replacement, mined[1]);
        assert_eq!(chain.block(&mined[2]).await.unwrap().block_hash(), mined[2]);
        assert_eq!(chain.best_height().await.unwrap(), 2);

        chain.set_down(true);
        assert!(chain.best_height().await.unwrap_err().is_transient());
        chain.set_down(false);
        assert_eq!(chain.best_height().await.unwrap(), 2);
    }
}
