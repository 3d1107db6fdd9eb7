//! The chain state handle ([`ChainState`]): the soft head (the latest sealed batch) and what
//! derivation says of the chain ([`ChainStatus`]: anchors, finality, the followed L1 tip). The
//! batcher and convergence move the head; the anchoring loop writes the status; admission, the
//! RPC and the read view read both.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash as _;
use bitcoin::BlockHash;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use stint_protocol::{Genesis, L1Message, L1Origin};
use stint_state::Hash;

use crate::error::SequencerError;
use crate::store::Store;

/// The latest sealed batch (or genesis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) number: u64,
    pub(crate) hash: Hash,
    /// The state root the header claims.
    pub(crate) claimed_root: Hash,
    /// The state root this sequencer computed (equal unless a fault mode lied).
    pub(crate) honest_root: Hash,
    pub(crate) timestamp: u64,
    pub(crate) l1_origin: L1Origin,
}

/// Where a canonical batch is anchored (from derivation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AnchorInfo {
    pub(crate) hash: Hash,
    pub(crate) state_root: Hash,
    pub(crate) btc_txid: bitcoin::Txid,
    pub(crate) height: u64,
}

/// What derivation says about the chain, as of the last poll.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChainStatus {
    /// Canonical anchored batches, by number.
    pub(crate) anchored: BTreeMap<u64, AnchorInfo>,
    /// Highest final batch number (0: none).
    pub(crate) final_number: u64,
    /// Batches invalidated by a valid challenge.
    pub(crate) invalidated: BTreeMap<u64, Hash>,
    /// The followed L1 tip.
    pub(crate) l1_tip: Option<(u64, BlockHash)>,
    /// Recent followed blocks: height → (hash, time).
    pub(crate) l1_blocks: BTreeMap<u64, (BlockHash, u64)>,
    /// The L1 messages of recent followed blocks that carry any: height → messages in order
    /// (protocol v3: a batch executes those its origin newly covers).
    pub(crate) l1_messages: BTreeMap<u64, Vec<L1Message>>,
    /// Whether the last poll of bitcoind succeeded.
    pub(crate) bitcoind_up: bool,
    /// The canonical batch this sequencer does not hold and waits for (see `converge`), with
    /// the reason; anchoring is paused meanwhile.
    pub(crate) waiting: Option<(u64, String)>,
    /// When a poll of bitcoind last succeeded.
    pub(crate) bitcoind_ok_at: Option<std::time::Instant>,
    /// When the anchored head last moved (or the sequencer started).
    pub(crate) anchored_moved_at: Option<std::time::Instant>,
}

/// How long bitcoind may stay silent before `/health` says it is not answering (a hung
/// bitcoind does not fail requests; they time out after minutes).
pub(crate) const BITCOIND_SILENCE: std::time::Duration = std::time::Duration::from_secs(30);
/// How long sealed batches may wait for anchoring before `/health` says it stalled.
pub(crate) const ANCHOR_STALL: std::time::Duration = std::time::Duration::from_secs(600);

/// What is wrong with the node, for `/health` (empty: healthy). Pure: the chain status, the
/// soft head and the time.
pub(crate) fn health_problems(
    chain: &ChainStatus,
    soft: u64,
    now: std::time::Instant,
    started: std::time::Instant,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !chain.bitcoind_up {
        problems.push("bitcoind unreachable: the last poll failed".to_owned());
    } else {
        let since = chain.bitcoind_ok_at.unwrap_or(started);
        let silent = now.saturating_duration_since(since);
        if silent > BITCOIND_SILENCE {
            problems.push(format!(
                "bitcoind not answering: no successful poll for {} s",
                silent.as_secs()
            ));
        }
    }
    let anchored = chain.anchored_number();
    let moved = chain.anchored_moved_at.unwrap_or(started);
    let waited = now.saturating_duration_since(moved);
    if soft > anchored && waited > ANCHOR_STALL {
        problems.push(format!(
            "anchoring stalled: {} sealed batch(es) wait, the anchored head has not moved for {} s",
            soft - anchored,
            waited.as_secs()
        ));
    }
    if let Some((number, reason)) = &chain.waiting {
        problems.push(format!(
            "anchoring paused, waiting for canonical batch {number}: {reason}"
        ));
    }
    problems
}

/// Finality of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchFinality {
    Soft,
    Anchored,
    Final,
    Invalidated,
}

impl BatchFinality {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Soft => "soft",
            Self::Anchored => "anchored",
            Self::Final => "final",
            Self::Invalidated => "invalidated",
        }
    }
}

#[cfg(test)]
mod health_tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn status() -> ChainStatus {
        ChainStatus {
            bitcoind_up: true,
            ..ChainStatus::default()
        }
    }

    #[test]
    fn healthy_unreachable_silent_stalled_and_waiting_are_told_apart() {
        let t0 = Instant::now();
        let mut s = status();
        s.bitcoind_ok_at = Some(t0);
        s.anchored_moved_at = Some(t0);
        assert!(health_problems(&s, 0, t0 + Duration::from_secs(5), t0).is_empty());
        // A hung bitcoind: no failure, no answer either.
        let p = health_problems(&s, 0, t0 + BITCOIND_SILENCE + Duration::from_secs(1), t0);
        assert!(p[0].starts_with("bitcoind not answering"), "{p:?}");
        s.bitcoind_up = false;
        let p = health_problems(&s, 0, t0, t0);
        assert!(p[0].starts_with("bitcoind unreachable"), "{p:?}");
        s.bitcoind_up = true;
        // Batches sealed, nothing anchored for longer than the limit.
        let later = t0 + ANCHOR_STALL + Duration::from_secs(1);
        s.bitcoind_ok_at = Some(later);
        let p = health_problems(&s, 3, later, t0);
        assert!(p[0].starts_with("anchoring stalled: 3 sealed"), "{p:?}");
        // Nothing to anchor is not a stall.
        assert!(health_problems(&s, 0, later, t0).is_empty());
        s.waiting = Some((7, "not ours".into()));
        assert!(health_problems(&s, 0, later, t0)[0].contains("canonical batch 7"));
    }
}

impl ChainStatus {
    /// The L1 messages a batch with origin height `origin` on a parent with origin height
    /// `parent_origin` must execute, as far as the followed blocks tell
    /// ([`Derivation::messages_due`](stint_protocol::Derivation::messages_due)).
    pub(crate) fn messages_due(
        &self,
        genesis: &Genesis,
        parent_origin: u64,
        origin: u64,
    ) -> Vec<L1Message> {
        let Some((after, up_to)) = genesis.message_blocks(parent_origin, origin) else {
            return Vec::new();
        };
        self.l1_messages
            .range(after.saturating_add(1)..=up_to)
            .flat_map(|(_, messages)| messages.iter().cloned())
            .collect()
    }

    /// Finality of batch `number` with header hash `hash`.
    pub(crate) fn finality(&self, number: u64, hash: &Hash) -> BatchFinality {
        if self.invalidated.get(&number) == Some(hash) {
            return BatchFinality::Invalidated;
        }
        match self.anchored.get(&number) {
            Some(a) if a.hash == *hash && number <= self.final_number => BatchFinality::Final,
            Some(a) if a.hash == *hash => BatchFinality::Anchored,
            _ => BatchFinality::Soft,
        }
    }

    /// Highest anchored batch number (0: none).
    pub(crate) fn anchored_number(&self) -> u64 {
        self.anchored.keys().next_back().copied().unwrap_or(0)
    }
}

/// The soft head and derivation's view of the chain, each behind its own lock.
///
/// Lock order: a caller holding the mempool lock may take the head lock (admission reads the
/// head's root under it, the sealer moves the head under it); never the other way round.
#[derive(Debug)]
pub(crate) struct ChainState {
    /// The head at batch 0.
    genesis: Head,
    /// The state root of the genesis (state version 0 must hold it).
    genesis_root: Hash,
    head: RwLock<Head>,
    status: RwLock<ChainStatus>,
}

impl ChainState {
    /// The chain state of `store`, whose head is its latest stored batch; the status is empty
    /// until the anchoring loop's first poll.
    pub(crate) fn open(
        store: &Store,
        genesis: &Genesis,
        genesis_root: Hash,
    ) -> Result<Self, SequencerError> {
        let genesis_head = Head {
            number: 0,
            hash: genesis.hash(),
            claimed_root: genesis_root,
            honest_root: genesis_root,
            timestamp: 0,
            l1_origin: L1Origin {
                height: genesis.l1_start_height,
                hash: genesis.l1_start_hash.to_byte_array(),
            },
        };
        let mut chain = Self {
            genesis: genesis_head,
            genesis_root,
            head: RwLock::new(genesis_head),
            status: RwLock::new(ChainStatus::default()),
        };
        let head = chain.head_at(store, store.head_number()?)?;
        *chain.head.get_mut() = head;
        Ok(chain)
    }

    /// The soft head.
    pub(crate) fn head(&self) -> Head {
        *self.head.read()
    }

    /// Move the soft head (after the batch it names, or the rewind to it, is durable).
    pub(crate) fn set_head(&self, head: Head) {
        *self.head.write() = head;
    }

    /// What derivation said at the last poll.
    pub(crate) fn status(&self) -> RwLockReadGuard<'_, ChainStatus> {
        self.status.read()
    }

    /// The status, to update after a poll (the anchoring loop only).
    pub(crate) fn status_mut(&self) -> RwLockWriteGuard<'_, ChainStatus> {
        self.status.write()
    }

    /// The head as of stored batch `number` (0: genesis).
    pub(crate) fn head_at(&self, store: &Store, number: u64) -> Result<Head, SequencerError> {
        let state_root = store.state_root(number)?;
        if number == 0 {
            if state_root != Some(self.genesis_root) {
                return Err(SequencerError::corrupt(
                    "state version 0 is not the genesis state",
                ));
            }
            return Ok(self.genesis);
        }
        let stored = store
            .batch(number)?
            .ok_or_else(|| SequencerError::corrupt(format!("batch {number} vanished")))?;
        if state_root != Some(stored.honest_root) {
            return Err(SequencerError::corrupt(format!(
                "state version {number} does not match batch {number}"
            )));
        }
        let batch = stored.batch()?;
        let header = batch.header();
        Ok(Head {
            number,
            hash: header.hash(),
            // A derived batch claims nothing: every node computes its root.
            claimed_root: if header.is_derived() {
                stored.honest_root
            } else {
                header.state_root
            },
            honest_root: stored.honest_root,
            timestamp: header.timestamp,
            l1_origin: header.l1_origin,
        })
    }
}
