//! Building honest batches, and replaying batches to find the first fraudulent segment.
//!
//! [`BatchBuilder::build`] takes a pre-state (any [`NodeStore`] holding the parent's state root),
//! candidate txs and the batch context, and produces a [`SealedBatch`]: it keeps the longest
//! prefix of the candidates that fits `max_batch_txs`/`max_batch_bytes`, executes it segment by
//! segment with [`execute_segment`], drops every *invalid* tx it meets (re-executing the segment
//! without it and refilling it from the following candidates), records one checkpoint per segment
//! and seals the header (`tx_root`, `trace_root`, `state_root`, `tx_count`). A segment closes at
//! `K` txs or when the next tx would take it over the [segment budget](crate::segment_cost). The new tree nodes of
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
    block_context, trace_root, tx_cost, tx_root, Batch, BatchHeader, Checkpoint, Genesis, L1Origin,
    ParentFacts, BATCH_HEADER_LEN, BATCH_VERSION, PROOF_FIXED_BYTES, SEGMENT_BUDGET,
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
    pub checkpoints: Vec<Checkpoint>,
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

/// Greedy segmentation: how many of `txs` (from the front) the next segment takes, closing at
/// `k` txs or before the first tx that would take it over [`SEGMENT_BUDGET`]. At least one tx
/// when there is one (every tx fits an empty segment: see the budget's tests).
pub fn next_segment_len<'t>(txs: impl IntoIterator<Item = &'t SignedTx>, k: usize) -> usize {
    let mut cost = PROOF_FIXED_BYTES;
    let mut len = 0usize;
    for tx in txs.into_iter().take(k) {
        cost = cost.saturating_add(tx_cost(tx));
        if cost > SEGMENT_BUDGET && len > 0 {
            break;
        }
        len = len.saturating_add(1);
    }
    len
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
    ///
    /// Counts one checkpoint per segment of the greedy segmentation of the prefix; dropping
    /// invalid txs later never needs more segments (greedy is optimal for these monotone limits,
    /// and a subsequence of a feasible cut stays feasible), so the sealed batch fits too.
    fn select(&self, candidates: Vec<SignedTx>) -> (Vec<SignedTx>, Vec<SignedTx>) {
        let max_txs = self.genesis.max_batch_txs as usize;
        let max_bytes = self.genesis.max_batch_bytes as usize;
        let k = self.k();
        // header + checkpoint list length + tx list length
        let fixed = BATCH_HEADER_LEN.saturating_add(8);
        let checkpoint_bytes = borsh::object_length(&Checkpoint::default()).unwrap_or(usize::MAX);
        let mut tx_bytes: usize = 0;
        let mut count = 0usize;
        let mut segments = 0usize;
        let (mut segment_len, mut segment_cost) = (0usize, PROOF_FIXED_BYTES);
        for tx in &candidates {
            let next = count.saturating_add(1);
            let cost = tx_cost(tx);
            let opens_segment = segment_len == 0
                || segment_len >= k
                || segment_cost.saturating_add(cost) > SEGMENT_BUDGET;
            let next_segments = segments.saturating_add(usize::from(opens_segment));
            let bytes = tx_bytes.saturating_add(encoded_tx_len(tx));
            let total = fixed
                .saturating_add(next_segments.max(1).saturating_mul(checkpoint_bytes))
                .saturating_add(bytes);
            if next > max_txs || total > max_bytes {
                break;
            }
            if opens_segment {
                (segment_len, segment_cost) = (0, PROOF_FIXED_BYTES);
            }
            segment_len = segment_len.saturating_add(1);
            segment_cost = segment_cost.saturating_add(cost);
            segments = next_segments;
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
            let take = next_segment_len(pending.iter().map(|(_, tx)| tx), k);
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
                    updates.push(update);
                    receipts.extend(outcome.receipts);
                    fees = fees.saturating_add(outcome.fees);
                    included.extend(segment);
                    let tx_end = u32::try_from(included.len())
                        .map_err(|_| BuildError::Execution("too many txs".into()))?;
                    checkpoints.push(Checkpoint::new(root, tx_end));
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
            trace_root: trace_root(&checkpoints),
            tx_count: u32::try_from(included.len())
                .map_err(|_| BuildError::Execution("too many txs".into()))?,
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
        for j in 1..=batch.segment_count() {
            let Some((segment, claimed)) = batch.segment_txs(j).zip(batch.checkpoint_at(j)) else {
                // The checkpoints do not describe the txs: the batch was never checked.
                fraud_segment = Some(j);
                break;
            };
            match execute_segment(tree.view(root), &context, segment) {
                Ok(outcome) => {
                    let update = tree.apply(&root, &outcome.changes)?;
                    tree.store_mut().write(&update);
                    if claimed.state_root != update.root {
                        fraud_segment = Some(j);
                        break;
                    }
                    root = update.root;
                    checkpoints.push(claimed);
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
