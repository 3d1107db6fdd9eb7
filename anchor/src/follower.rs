//! Following bitcoind's active chain block by block, with reorgs of any depth.

use std::collections::BTreeMap;

use bitcoin::{Block, BlockHash};

use crate::rpc::{BitcoindClient, RpcError};

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

/// Polls bitcoind and turns the active chain's changes into an ordered stream of
/// [`ChainEvent`]s.
///
/// The follower remembers the hash it followed at every recent height. When bitcoind's block at
/// the followed tip height differs (or the chain got shorter), it disconnects its tip, newest
/// first, until it is back on the active chain, then connects the new blocks in order. Each call
/// to [`next_event`](Self::next_event) changes the state only together with the event it returns,
/// so a transport error (bitcoind down) loses nothing: the caller retries later.
#[derive(Debug, Clone)]
pub struct ChainFollower {
    client: BitcoindClient,
    /// Followed chain: height → hash, contiguous up to the tip (older entries pruned).
    chain: BTreeMap<u64, BlockHash>,
    /// Lowest height this follower ever connects (its starting point).
    first_height: u64,
    history: usize,
}

impl ChainFollower {
    /// Follows from `height`: the first event is `Connected` for the active block at `height`.
    pub fn from_height(client: BitcoindClient, height: u64) -> Self {
        Self {
            client,
            chain: BTreeMap::new(),
            first_height: height,
            history: DEFAULT_HISTORY,
        }
    }

    /// Resumes after the caller already processed the chain up to block `hash` at `height`: the
    /// next events continue from there, starting with `Disconnected` for it (and its ancestors,
    /// as deep as needed) if it left the active chain meanwhile.
    pub fn resume(client: BitcoindClient, height: u64, hash: BlockHash) -> Self {
        let chain = BTreeMap::from([(height, hash)]);
        Self {
            client,
            chain,
            first_height: 0,
            history: DEFAULT_HISTORY,
        }
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
            let best = self.client.get_block_count().await?;
            let Some((height, hash)) = self.tip() else {
                if best < self.first_height {
                    return Ok(None);
                }
                let hash = self.client.get_block_hash(self.first_height).await?;
                let block = self.client.get_block(&hash).await?;
                if block.block_hash() != hash {
                    continue;
                }
                return Ok(Some(self.connect(self.first_height, block)));
            };
            let on_active_chain =
                height <= best && self.client.get_block_hash(height).await? == hash;
            if !on_active_chain {
                return self.disconnect_tip(height, hash).await.map(Some);
            }
            if height == best {
                return Ok(None);
            }
            let next = height.saturating_add(1);
            let next_hash = self.client.get_block_hash(next).await?;
            let block = self.client.get_block(&next_hash).await?;
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
                let info = self.client.get_block_header_info(&hash).await?;
                info.previous_block_hash.map(|parent| (p, parent))
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
}
