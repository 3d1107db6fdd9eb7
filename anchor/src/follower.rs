//! Following bitcoind's active chain block by block, with reorgs of any depth.

use std::collections::BTreeMap;

use bitcoin::{Block, BlockHash};

use crate::rpc::{BitcoindClient, RpcError};
use crate::source::BlockSource;

/// How many hashes of the followed chain are kept in memory. Deeper reorgs still work: parents
/// beyond this window are fetched from bitcoind's headers (it keeps stale headers).
const DEFAULT_HISTORY: usize = 2_016;

/// A change of the followed chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// `block` at `height` extends the followed chain.
    Connected {
        /// The block's height.
        height: u64,
        /// The block.
        block: Block,
    },
    /// The block at `height` with `hash` left the followed chain (emitted newest first).
    Disconnected {
        /// The block's height.
        height: u64,
        /// The block's hash.
        hash: BlockHash,
    },
}

/// Polls a [`BlockSource`] (bitcoind by default) and turns the active chain's changes into an
/// ordered stream of [`ChainEvent`]s.
///
/// The follower remembers the hash it followed at every recent height. When bitcoind's block at
/// the followed tip height differs (or the chain got shorter), it disconnects its tip, newest
/// first, until it is back on the active chain, then connects the new blocks in order. Each call
/// to [`next_event`](Self::next_event) changes the state only together with the event it returns,
/// so a transport error (bitcoind down) loses nothing: the caller retries later.
#[derive(Debug, Clone)]
pub struct ChainFollower<S = BitcoindClient> {
    source: S,
    /// Followed chain: height → hash, contiguous up to the tip (older entries pruned).
    chain: BTreeMap<u64, BlockHash>,
    /// Lowest height this follower ever connects (its starting point).
    first_height: u64,
    history: usize,
}

impl<S: BlockSource> ChainFollower<S> {
    /// Follows from `height`: the first event is `Connected` for the active block at `height`.
    pub fn from_height(source: S, height: u64) -> Self {
        Self {
            source,
            chain: BTreeMap::new(),
            first_height: height,
            history: DEFAULT_HISTORY,
        }
    }

    /// Resumes after the caller already processed the chain up to block `hash` at `height`: the
    /// next events continue from there, starting with `Disconnected` for it (and its ancestors,
    /// as deep as needed) if it left the active chain meanwhile.
    pub fn resume(source: S, height: u64, hash: BlockHash) -> Self {
        let chain = BTreeMap::from([(height, hash)]);
        Self {
            source,
            chain,
            first_height: 0,
            history: DEFAULT_HISTORY,
        }
    }

    /// Keeps at most `blocks` hashes in memory (default 2,016); deeper reorgs fetch parents from
    /// the source.
    pub fn with_history(mut self, blocks: usize) -> Self {
        self.history = blocks.max(1);
        self
    }

    /// The followed tip (height, hash), if any block was followed yet.
    pub fn tip(&self) -> Option<(u64, BlockHash)> {
        self.chain.last_key_value().map(|(h, hash)| (*h, *hash))
    }

    /// The hash the follower followed at `height`, if still in memory.
    pub fn hash_at(&self, height: u64) -> Option<BlockHash> {
        self.chain.get(&height).copied()
    }

    /// Returns the next change of the chain, or `None` when the follower is at bitcoind's tip.
    pub async fn next_event(&mut self) -> Result<Option<ChainEvent>, RpcError> {
        // A few retries cover a reorg that races with our reads; the state stays consistent
        // either way, so giving up with `None` only delays the event to the next poll.
        for _ in 0..8 {
            let best = self.source.best_height().await?;
            let Some((height, hash)) = self.tip() else {
                if best < self.first_height {
                    return Ok(None);
                }
                let hash = self.source.block_hash(self.first_height).await?;
                let block = self.source.block(&hash).await?;
                if block.block_hash() != hash {
                    continue;
                }
                return Ok(Some(self.connect(self.first_height, block)));
            };
            let on_active_chain = height <= best && self.source.block_hash(height).await? == hash;
            if !on_active_chain {
                return self.disconnect_tip(height, hash).await.map(Some);
            }
            if height == best {
                return Ok(None);
            }
            let next = height.saturating_add(1);
            let next_hash = self.source.block_hash(next).await?;
            let block = self.source.block(&next_hash).await?;
            if block.header.prev_blockhash != hash || block.block_hash() != next_hash {
                // The chain changed between our reads; look again.
                continue;
            }
            return Ok(Some(self.connect(next, block)));
        }
        Ok(None)
    }

    /// Collects events until the follower reaches bitcoind's tip. If bitcoind fails midway, the
    /// events gathered so far are returned (the error will show again on the next call).
    pub async fn poll(&mut self) -> Result<Vec<ChainEvent>, RpcError> {
        let mut events = Vec::new();
        loop {
            match self.next_event().await {
                Ok(Some(event)) => events.push(event),
                Ok(None) => return Ok(events),
                Err(e) if events.is_empty() => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "chain poll interrupted");
                    return Ok(events);
                }
            }
        }
    }

    fn connect(&mut self, height: u64, block: Block) -> ChainEvent {
        self.chain.insert(height, block.block_hash());
        while self.chain.len() > self.history {
            self.chain.pop_first();
        }
        ChainEvent::Connected { height, block }
    }

    async fn disconnect_tip(
        &mut self,
        height: u64,
        hash: BlockHash,
    ) -> Result<ChainEvent, RpcError> {
        // The parent must be known to keep following: it is in memory unless pruned (or this is
        // the resume point). Blocks below `first_height` are not ours to track.
        let parent = match height.checked_sub(1) {
            Some(p) if p >= self.first_height && !self.chain.contains_key(&p) => {
                // Fetch before changing state, so an error leaves everything as it was.
                let parent = self.source.parent_hash(&hash).await?;
                parent.map(|parent| (p, parent))
            }
            _ => None,
        };
        self.chain.remove(&height);
        if let Some((p, parent)) = parent {
            self.chain.insert(p, parent);
        }
        Ok(ChainEvent::Disconnected { height, hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::Auth;

    #[test]
    fn resume_and_from_height_set_the_tip() {
        let client = BitcoindClient::new(
            "http://127.0.0.1:1",
            Auth::UserPass {
                user: "u".into(),
                password: "p".into(),
            },
        );
        let hash =
            bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest).block_hash();
        assert_eq!(
            ChainFollower::resume(client.clone(), 0, hash).tip(),
            Some((0, hash))
        );
        assert_eq!(ChainFollower::from_height(client, 5).tip(), None);
    }

    #[tokio::test]
    async fn unreachable_bitcoind_is_a_transient_error_and_keeps_state() {
        let client = BitcoindClient::new(
            "http://127.0.0.1:1",
            Auth::UserPass {
                user: "u".into(),
                password: "p".into(),
            },
        );
        let hash =
            bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest).block_hash();
        let mut follower = ChainFollower::resume(client, 0, hash);
        let err = follower.poll().await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(follower.tip(), Some((0, hash)));
    }

    use crate::source::MemoryChain;

    /// Applies `events` to `view` (height → hash), checking their order on the way.
    fn apply(view: &mut BTreeMap<u64, BlockHash>, events: Vec<ChainEvent>) {
        for event in events {
            match event {
                ChainEvent::Connected { height, block } => {
                    let expected = view.last_key_value().map_or(height, |(h, _)| h + 1);
                    assert_eq!(height, expected, "connected out of order");
                    if let Some(parent) = height.checked_sub(1).and_then(|p| view.get(&p)) {
                        assert_eq!(block.header.prev_blockhash, *parent);
                    }
                    view.insert(height, block.block_hash());
                }
                ChainEvent::Disconnected { height, hash } => {
                    let (tip, tip_hash) = view.pop_last().expect("disconnected below the view");
                    assert_eq!((height, hash), (tip, tip_hash), "disconnected not the tip");
                }
            }
        }
    }

    fn active(chain: &MemoryChain, from: u64) -> BTreeMap<u64, BlockHash> {
        (from..=chain.height())
            .map(|h| (h, chain.hash_at(h).unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn reorgs_come_out_as_disconnects_newest_first_then_connects() {
        let chain = MemoryChain::new();
        chain.mine_empty(10);
        let mut follower = ChainFollower::from_height(chain.clone(), 1);
        let mut view = BTreeMap::new();
        apply(&mut view, follower.poll().await.unwrap());
        assert_eq!(view, active(&chain, 1));

        let stale: Vec<BlockHash> = (8..=10).map(|h| chain.hash_at(h).unwrap()).collect();
        chain.reorg_to(7);
        chain.mine_empty(5);
        let events = follower.poll().await.unwrap();
        let disconnected: Vec<(u64, BlockHash)> = events
            .iter()
            .filter_map(|e| match e {
                ChainEvent::Disconnected { height, hash } => Some((*height, *hash)),
                ChainEvent::Connected { .. } => None,
            })
            .collect();
        assert_eq!(
            disconnected,
            vec![(10, stale[2]), (9, stale[1]), (8, stale[0])]
        );
        assert_eq!(events.len(), 3 + 5);
        apply(&mut view, events);
        assert_eq!(view, active(&chain, 1));
        assert_eq!(follower.tip(), Some((12, chain.tip())));
    }

    #[tokio::test]
    async fn a_reorg_deeper_than_the_history_fetches_parents_from_the_source() {
        let chain = MemoryChain::new();
        chain.mine_empty(30);
        let mut follower = ChainFollower::from_height(chain.clone(), 0).with_history(4);
        let mut view = BTreeMap::new();
        apply(&mut view, follower.poll().await.unwrap());
        chain.reorg_to(5);
        chain.mine_empty(30);
        apply(&mut view, follower.poll().await.unwrap());
        assert_eq!(view, active(&chain, 0));
    }

    #[tokio::test]
    async fn an_outage_loses_nothing_and_resumes_where_it_stopped() {
        let chain = MemoryChain::new();
        chain.mine_empty(3);
        let mut follower = ChainFollower::from_height(chain.clone(), 1);
        let mut view = BTreeMap::new();
        apply(&mut view, follower.poll().await.unwrap());
        let tip = follower.tip();

        chain.set_down(true);
        chain.mine_empty(2);
        let e = follower.poll().await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert_eq!(follower.tip(), tip, "an outage changes nothing");

        chain.reorg_to(2);
        chain.mine_empty(3);
        chain.set_down(false);
        apply(&mut view, follower.poll().await.unwrap());
        assert_eq!(view, active(&chain, 1));
    }

    #[tokio::test]
    async fn resuming_at_a_block_that_left_the_chain_disconnects_it_first() {
        let chain = MemoryChain::new();
        chain.mine_empty(6);
        let (height, hash) = (6, chain.tip());
        chain.reorg_to(3);
        chain.mine_empty(4);
        let mut follower = ChainFollower::resume(chain.clone(), height, hash);
        let events = follower.poll().await.unwrap();
        assert_eq!(
            events.first(),
            Some(&ChainEvent::Disconnected { height, hash })
        );
        // The view the caller had: the now stale branch up to `hash`.
        let mut view = BTreeMap::new();
        let mut at = hash;
        for h in (0..=height).rev() {
            view.insert(h, at);
            at = chain.get(&at).unwrap().header.prev_blockhash;
        }
        apply(&mut view, events);
        assert_eq!(view, active(&chain, 0));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Mine(u8),
        Reorg { depth: u8, mine: u8 },
        Poll,
        Outage,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (1u8..4).prop_map(Op::Mine),
            (1u8..8, 0u8..10).prop_map(|(depth, mine)| Op::Reorg { depth, mine }),
            Just(Op::Poll),
            Just(Op::Outage),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever the chain does between polls (blocks, reorgs of any depth, outages), the
        /// events a caller applies rebuild exactly the source's active chain.
        #[test]
        fn events_rebuild_the_active_chain(ops in proptest::collection::vec(op(), 1..40), history in 1usize..6) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let chain = MemoryChain::new();
                chain.mine_empty(2);
                let mut follower = ChainFollower::from_height(chain.clone(), 1).with_history(history);
                let mut view = BTreeMap::new();
                for op in ops {
                    match op {
                        Op::Mine(n) => { chain.mine_empty(u64::from(n)); }
                        Op::Reorg { depth, mine } => {
                            let to = chain.height().saturating_sub(u64::from(depth)).max(1);
                            chain.reorg_to(to);
                            chain.mine_empty(u64::from(mine));
                        }
                        Op::Poll => apply(&mut view, follower.poll().await.unwrap()),
                        Op::Outage => {
                            chain.set_down(true);
                            assert!(follower.poll().await.unwrap_err().is_transient());
                            chain.set_down(false);
                        }
                    }
                }
                apply(&mut view, follower.poll().await.unwrap());
                assert_eq!(view, active(&chain, 1));
            });
        }
    }
}
