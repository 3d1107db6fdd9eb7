//! Building honest batches, and replaying batches to find the first fraudulent segment.
//!
//! [`BatchBuilder::build`] takes a pre-state (any [`NodeStore`] holding the parent's state root),
//! candidate txs and the batch context, and produces a [`SealedBatch`]: it keeps the longest
//! prefix of the candidates that fits `max_batch_txs`/`max_batch_bytes`, executes it segment by
//! segment with [`execute_segment`], drops every *invalid* tx it meets (re-executing the segment
//! without it and refilling it from the following candidates), records one checkpoint per segment
//! and seals the header (`tx_root`, `trace_root`, `state_root`, `tx_count`). The new tree nodes of
//! every segment are returned as [`TreeUpdate`]s, so the caller can persist all checkpoint states.
//!
//! [`BatchBuilder::replay`] re-executes a batch honestly and reports the first segment whose
//! claimed checkpoint is wrong or that holds an invalid tx; its [`Replay::store`] then holds the
//! pre-state a [fraud proof](crate::build_fraud_proof) needs.

use std::collections::VecDeque;

use stint_contracts::{
    execute_segment, execute_verified_segment, ExecError, InvalidTxReason, Receipt, SignedTx, Txid,
    VerifiedTxs,
};
use stint_state::{
    Hash, MemoryNodeStore, Node, NodeStore, SparseMerkleTree, StateError, TreeUpdate,
};

use crate::{
    block_context, merkle_root, segment_count, tx_root, Batch, BatchHeader, Genesis, L1Origin,
    ParentFacts, BATCH_VERSION,
};

/// A node store that reads new nodes from memory first, then from a base store it never writes.
#[derive(Debug)]
pub struct LayeredNodeStore<'a, S> {
    base: &'a S,
    top: MemoryNodeStore,
}

impl<'a, S: NodeStore> LayeredNodeStore<'a, S> {
    /// An empty layer over `base`.
    pub fn new(base: &'a S) -> Self {
        Self {
            base,
            top: MemoryNodeStore::new(),
        }
    }

    /// Add the new nodes and values of an update to the memory layer.
    pub fn write(&mut self, update: &TreeUpdate) {
        self.top.write(update);
    }

    /// The memory layer.
    pub fn top(&self) -> &MemoryNodeStore {
        &self.top
    }
}

impl<S: NodeStore> NodeStore for LayeredNodeStore<'_, S> {
    fn get_node(&self, hash: &Hash) -> Result<Option<Node>, StateError> {
        match self.top.get_node(hash)? {
            Some(node) => Ok(Some(node)),
            None => self.base.get_node(hash),
        }
    }

    fn get_value(&self, leaf_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        match self.top.get_value(leaf_hash)? {
            Some(value) => Ok(Some(value)),
            None => self.base.get_value(leaf_hash),
        }
    }

    fn missing(&self, hash: &Hash, key: &stint_state::Key) -> StateError {
        self.base.missing(hash, key)
    }
}

/// What a batch is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildParams {
    /// The batch it extends (see [`ParentFacts::genesis`] for batch 1).
    pub parent: ParentFacts,
    /// Batch timestamp (Unix seconds).
    pub timestamp: u64,
    /// The Bitcoin block it is built on.
    pub l1_origin: L1Origin,
}

/// A candidate tx the builder dropped because it is invalid in the batch's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedTx {
    /// Index in the candidate list given to [`BatchBuilder::build`].
    pub index: usize,
    /// Its txid.
    pub txid: Txid,
    /// Why it is invalid.
    pub reason: InvalidTxReason,
}

/// The output of [`BatchBuilder::build`].
#[derive(Debug)]
pub struct SealedBatch {
    /// The sealed batch.
    pub batch: Batch,
    /// One receipt per included tx, in order.
    pub receipts: Vec<Receipt>,
    /// Fees collected (credited to the genesis fee recipient).
    pub fees: u64,
    /// Tree updates, one per segment, in order (`updates[j-1].root` is checkpoint `j`).
    pub updates: Vec<TreeUpdate>,
    /// Candidates dropped as invalid.
    pub rejected: Vec<RejectedTx>,
    /// Candidates not considered because the batch was full, in their original order.
    pub leftover: Vec<SignedTx>,
}

/// Why a batch could not be built or replayed (never because of a candidate tx: those are
/// dropped).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The pre-state could not be read or updated.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// The executor failed for a reason other than an invalid tx (a corrupt record).
    #[error("execution: {0}")]
    Execution(String),
}

/// The outcome of [`BatchBuilder::replay`].
#[derive(Debug)]
pub struct Replay<'a, S> {
    /// The honest checkpoints computed so far (all of them when no fraud was found).
    pub checkpoints: Vec<Hash>,
    /// The first fraudulent segment (1-based), if any.
    pub fraud_segment: Option<u64>,
    /// Receipts of the txs executed before stopping.
    pub receipts: Vec<Receipt>,
    /// The tree update of each honest checkpoint, in order (each starts from the previous
    /// one's root); together they are the batch's state transition.
    pub updates: Vec<TreeUpdate>,
    /// The base store plus every honest checkpoint state computed.
    pub store: LayeredNodeStore<'a, S>,
}

/// Builds and replays batches under one genesis.
#[derive(Clone, Copy, Debug)]
pub struct BatchBuilder<'g> {
    genesis: &'g Genesis,
    signatures_checked: bool,
}

fn encoded_tx_len(tx: &SignedTx) -> usize {
    borsh::object_length(tx).unwrap_or(usize::MAX)
}

impl<'g> BatchBuilder<'g> {
    /// A builder for `genesis`. [`build`](Self::build) checks every candidate's signature.
    pub fn new(genesis: &'g Genesis) -> Self {
        Self {
            genesis,
            signatures_checked: false,
        }
    }

    /// Trust the candidates' signatures instead of checking them again: for a sequencer whose
    /// mempool verified every signature at admission (checking twice would halve its throughput).
    /// A candidate with a bad signature would then be sealed into an invalid, fraud-provable
    /// batch, so only hand such a builder txs whose signatures were verified. Replay
    /// ([`replay`](Self::replay)) always checks signatures.
    pub fn with_prechecked_signatures(mut self) -> Self {
        self.signatures_checked = true;
        self
    }

    fn k(&self) -> usize {
        (self.genesis.checkpoint_interval as usize).max(1)
    }

    /// Split `candidates` into the prefix that fits the batch limits and the rest.
    fn select(&self, candidates: Vec<SignedTx>) -> (Vec<SignedTx>, Vec<SignedTx>) {
        let max_txs = self.genesis.max_batch_txs as usize;
        let max_bytes = self.genesis.max_batch_bytes as usize;
        let k = self.genesis.checkpoint_interval as u64;
        // header + checkpoint list length + tx list length
        let fixed = borsh::object_length(&BatchHeader::default())
            .unwrap_or(usize::MAX)
            .saturating_add(8);
        let mut tx_bytes: usize = 0;
        let mut count = 0usize;
        for tx in &candidates {
            let next = count.saturating_add(1);
            let checkpoints = segment_count(next as u64, k).unwrap_or(u64::MAX) as usize;
            let bytes = tx_bytes.saturating_add(encoded_tx_len(tx));
            let total = fixed
                .saturating_add(checkpoints.saturating_mul(32))
                .saturating_add(bytes);
            if next > max_txs || total > max_bytes {
                break;
            }
            tx_bytes = bytes;
            count = next;
        }
        let mut selected = candidates;
        let leftover = selected.split_off(count.min(selected.len()));
        (selected, leftover)
    }

    /// Build the honest batch extending `params.parent` from `candidates` over `store` (which
    /// must hold the state `params.parent.state_root`). See the module docs.
    pub fn build<S: NodeStore>(
        &self,
        store: &S,
        params: &BuildParams,
        candidates: Vec<SignedTx>,
    ) -> Result<SealedBatch, BuildError> {
        let (selected, leftover) = self.select(candidates);
        let k = self.k();
        let header = BatchHeader {
            version: BATCH_VERSION,
            chain_id: self.genesis.chain_id,
            number: params.parent.number.saturating_add(1),
            parent: params.parent.hash,
            timestamp: params.timestamp,
            l1_origin: params.l1_origin,
            prev_state_root: params.parent.state_root,
            ..BatchHeader::default()
        };
        let context = block_context(self.genesis, &header);
        let mut tree = SparseMerkleTree::new(LayeredNodeStore::new(store));
        let mut pending: VecDeque<(usize, SignedTx)> = selected.into_iter().enumerate().collect();
        let mut root = params.parent.state_root;
        let mut included = Vec::new();
        let mut checkpoints = Vec::new();
        let mut receipts = Vec::new();
        let mut updates = Vec::new();
        let mut rejected = Vec::new();
        let mut fees: u64 = 0;
        loop {
            let take = k.min(pending.len());
            if take == 0 && !checkpoints.is_empty() {
                break;
            }
            let segment: Vec<SignedTx> = pending
                .iter()
                .take(take)
                .map(|(_, tx)| tx.clone())
                .collect();
            let executed = if self.signatures_checked {
                let verified = VerifiedTxs::assume_valid(&segment);
                execute_verified_segment(tree.view(root), &context, &verified)
            } else {
                execute_segment(tree.view(root), &context, &segment)
            };
            match executed {
                Ok(outcome) => {
                    let update = tree.apply(&root, &outcome.changes)?;
                    tree.store_mut().write(&update);
                    root = update.root;
                    checkpoints.push(root);
                    updates.push(update);
                    receipts.extend(outcome.receipts);
                    fees = fees.saturating_add(outcome.fees);
                    included.extend(segment);
                    pending.drain(..take);
                    if pending.is_empty() {
                        break;
                    }
                }
                Err(ExecError::Invalid { index, reason }) => match pending.remove(index) {
                    Some((position, tx)) => {
                        rejected.push(RejectedTx {
                            index: position,
                            txid: tx.txid(),
                            reason,
                        });
                    }
                    None => return Err(BuildError::Execution(format!("invalid tx index {index}"))),
                },
                Err(ExecError::Internal(e)) => return Err(BuildError::State(e)),
                Err(e) => return Err(BuildError::Execution(e.to_string())),
            }
        }
        let sealed = BatchHeader {
            state_root: root,
            tx_root: tx_root(&included),
            trace_root: merkle_root(&checkpoints),
            tx_count: u32::try_from(included.len()).unwrap_or(u32::MAX),
            ..header
        };
        Ok(SealedBatch {
            batch: Batch::new(sealed, checkpoints, included),
            receipts,
            fees,
            updates,
            rejected,
            leftover,
        })
    }

    /// Re-execute `batch` over `store` (which must hold its `prev_state_root`) and find the first
    /// segment that is fraudulent: it holds an invalid tx, or its claimed checkpoint differs from
    /// the honest one. Stops there: `checkpoints` then holds the honest checkpoints `1..j-1`,
    /// and `store` can read the pre-state of segment `j`.
    pub fn replay<'s, S: NodeStore, B>(
        &self,
        store: &'s S,
        batch: &Batch<B>,
    ) -> Result<Replay<'s, S>, BuildError> {
        let header = batch.header();
        let context = block_context(self.genesis, header);
        let mut tree = SparseMerkleTree::new(LayeredNodeStore::new(store));
        let mut root = header.prev_state_root;
        let mut checkpoints = Vec::new();
        let mut receipts = Vec::new();
        let mut updates = Vec::new();
        let mut fraud_segment = None;
        let k = self.k();
        let txs = batch.txs();
        let segments: Vec<&[SignedTx]> = if txs.is_empty() {
            vec![txs]
        } else {
            txs.chunks(k).collect()
        };
        for (i, segment) in segments.into_iter().enumerate() {
            let j = (i as u64).saturating_add(1);
            match execute_segment(tree.view(root), &context, segment) {
                Ok(outcome) => {
                    let update = tree.apply(&root, &outcome.changes)?;
                    tree.store_mut().write(&update);
                    if batch.checkpoint(j) != Some(update.root) {
                        fraud_segment = Some(j);
                        break;
                    }
                    root = update.root;
                    checkpoints.push(root);
                    receipts.extend(outcome.receipts);
                    updates.push(update);
                }
                Err(ExecError::Invalid { .. }) => {
                    fraud_segment = Some(j);
                    break;
                }
                Err(ExecError::Internal(e)) => return Err(BuildError::State(e)),
                Err(e) => return Err(BuildError::Execution(e.to_string())),
            }
        }
        Ok(Replay {
            checkpoints,
            fraud_segment,
            receipts,
            updates,
            store: tree.into_store(),
        })
    }
}
