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
//! With L1 messages due (protocol v3), [`BatchBuilder::build_with_messages`] executes them first,
//! in message segments (closed at `K` messages or by the budget, see
//! [`message_segment_cost`](crate::message_segment_cost)) with
//! [`execute_messages`]: deposits credit, forced txs run, an invalid forced tx is skipped with a
//! [`MessageReceipt`]. Messages are never dropped: they are the batch's obligation.
//!
//! [`BatchBuilder::replay`] re-executes a batch honestly and reports the first segment whose
//! claimed checkpoint is wrong or that holds an invalid tx; its [`Replay::store`] then holds the
//! pre-state a [fraud proof](crate::build_fraud_proof) needs.

use std::collections::VecDeque;

use stint_contracts::{
    execute_messages, execute_segment, execute_verified_segment, ExecError, InvalidTxReason,
    MessageReceipt, Receipt, SignedTx, Txid, VerifiedTxs,
};
use stint_state::{
    Hash, MemoryNodeStore, Node, NodeStore, SparseMerkleTree, StateError, TreeUpdate,
};

use crate::{
    block_context, message_cost, message_effects, message_root, span_timestamp, trace_root,
    tx_cost, tx_root, Batch, BatchHeader, Checkpoint, DerivedSpan, Genesis, L1Message, L1Origin,
    ParentFacts, BATCH_HEADER_LEN, BATCH_VERSION, MAX_BATCH_MESSAGES, MAX_CHECKPOINTS,
    PROOF_FIXED_BYTES, SEGMENT_BUDGET,
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
    /// One receipt per L1 message executed, in order (protocol v3).
    pub message_receipts: Vec<MessageReceipt>,
    /// One receipt per included tx, in order.
    pub receipts: Vec<Receipt>,
    /// Fees collected, forced txs' included (credited to the genesis fee recipient).
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
    /// The L1 messages given are not the ones the batch commits to, or more than one batch can
    /// execute.
    #[error("L1 messages: {0}")]
    Messages(String),
}

/// The outcome of [`BatchBuilder::replay`].
#[derive(Debug)]
pub struct Replay<'a, S> {
    /// The honest checkpoints computed so far (all of them when no fraud was found).
    pub checkpoints: Vec<Checkpoint>,
    /// The first fraudulent segment (1-based), if any.
    pub fraud_segment: Option<u64>,
    /// Receipts of the L1 messages executed before stopping.
    pub message_receipts: Vec<MessageReceipt>,
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

/// Greedy segmentation of L1 messages: how many of `messages` (from the front) the next message
/// segment takes, closing at `k` or before the first message that would take it over
/// [`SEGMENT_BUDGET`]. At least one when there is one (every message fits an empty segment).
pub fn next_message_segment_len(messages: &[L1Message], k: usize) -> usize {
    let mut cost = PROOF_FIXED_BYTES;
    let mut len = 0usize;
    for message in messages.iter().take(k) {
        cost = cost.saturating_add(message_cost(message));
        if cost > SEGMENT_BUDGET && len > 0 {
            break;
        }
        len = len.saturating_add(1);
    }
    len
}

/// How many of a batch's first segments restate the derived batches `spans`: a node that
/// executed those derived batches itself persists only the updates after them (the restated
/// ones rebuild states it already holds, and end at the last derived batch's root).
pub fn restated_segments(checkpoints: &[Checkpoint], spans: &[DerivedSpan]) -> usize {
    let end = spans.last().map_or(0, |span| span.msg_end);
    checkpoints.iter().take_while(|c| c.tx_end <= end).count()
}

/// The updates of a batch's own work: `updates` without the first `restated` ones (see
/// [`restated_segments`]), or one update that changes nothing when no other is left (the
/// batch only restated: its state is the last derived batch's, `root`).
pub fn own_updates(mut updates: Vec<TreeUpdate>, restated: usize, root: Hash) -> Vec<TreeUpdate> {
    let own = updates.split_off(restated.min(updates.len()));
    if own.is_empty() {
        return vec![TreeUpdate {
            base_root: root,
            root,
            new_nodes: Vec::new(),
            new_values: Vec::new(),
            stale_nodes: Vec::new(),
        }];
    }
    own
}

/// The context message segment `range` executes in: the batch's, at the timestamp of the
/// derived batch it restates, if any ([`span_timestamp`]).
pub fn message_segment_context(
    context: &stint_contracts::BlockContext,
    spans: &[DerivedSpan],
    range: &std::ops::Range<usize>,
) -> stint_contracts::BlockContext {
    let end = u32::try_from(range.end).unwrap_or(u32::MAX);
    stint_contracts::BlockContext {
        timestamp: span_timestamp(spans, end, context.timestamp),
        ..*context
    }
}

/// Execute the message segments of a batch over `tree` from `root`, calling `segment` with each
/// segment's first message index and honest outcome (its tree update already written).
fn run_message_segments<S: NodeStore>(
    tree: &mut SparseMerkleTree<LayeredNodeStore<'_, S>>,
    context: &stint_contracts::BlockContext,
    spans: &[DerivedSpan],
    root: Hash,
    segments: impl IntoIterator<Item = std::ops::Range<usize>>,
    messages: &[L1Message],
    mut segment: impl FnMut(std::ops::Range<usize>, TreeUpdate, stint_contracts::MessageOutcome) -> bool,
) -> Result<Hash, BuildError> {
    let mut root = root;
    for range in segments {
        let slice = messages
            .get(range.clone())
            .ok_or_else(|| BuildError::Messages(format!("no messages {range:?}")))?;
        let context = message_segment_context(context, spans, &range);
        let outcome = execute_messages(tree.view(root), &context, &message_effects(slice))
            .map_err(|e| match e {
                ExecError::Internal(e) => BuildError::State(e),
                other => BuildError::Execution(other.to_string()),
            })?;
        let update = tree.apply(&root, &outcome.changes)?;
        tree.store_mut().write(&update);
        root = update.root;
        if !segment(range, update, outcome) {
            break;
        }
    }
    Ok(root)
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
    /// `message_segments` checkpoints are taken by the batch's L1 messages already.
    fn select(
        &self,
        candidates: Vec<SignedTx>,
        message_segments: usize,
    ) -> (Vec<SignedTx>, Vec<SignedTx>) {
        let max_txs = self.genesis.max_batch_txs as usize;
        let max_bytes = self.genesis.max_batch_bytes as usize;
        let k = self.k();
        // header + checkpoint list length + tx list length
        let fixed = BATCH_HEADER_LEN.saturating_add(8);
        let checkpoint_bytes = borsh::object_length(&Checkpoint::default()).unwrap_or(usize::MAX);
        let mut tx_bytes: usize = 0;
        let mut count = 0usize;
        let mut segments = message_segments;
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
            if next > max_txs || total > max_bytes || next_segments > MAX_CHECKPOINTS {
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
    /// must hold the state `params.parent.state_root`), with no L1 message due. See the module
    /// docs.
    pub fn build<S: NodeStore>(
        &self,
        store: &S,
        params: &BuildParams,
        candidates: Vec<SignedTx>,
    ) -> Result<SealedBatch, BuildError> {
        self.build_with_messages(store, params, &[], candidates)
    }

    /// Build the honest batch that executes the L1 `messages` due (all of them, first) and
    /// then as many of `candidates` as fit. See the module docs.
    pub fn build_with_messages<S: NodeStore>(
        &self,
        store: &S,
        params: &BuildParams,
        messages: &[L1Message],
        candidates: Vec<SignedTx>,
    ) -> Result<SealedBatch, BuildError> {
        self.build_restating(store, params, messages, &[], candidates)
    }

    /// [`build_with_messages`](Self::build_with_messages) of a batch that restates the derived
    /// batches `spans` (its parent chain ends in them; `messages` start with theirs and
    /// `params.parent.state_root` is the last posted batch's root): a message segment closes at
    /// the end of each span, and runs at its timestamp.
    pub fn build_restating<S: NodeStore>(
        &self,
        store: &S,
        params: &BuildParams,
        messages: &[L1Message],
        spans: &[DerivedSpan],
        candidates: Vec<SignedTx>,
    ) -> Result<SealedBatch, BuildError> {
        let k = self.k();
        if messages.len() > MAX_BATCH_MESSAGES {
            return Err(BuildError::Messages(format!(
                "{} messages due, more than one batch executes ({MAX_BATCH_MESSAGES})",
                messages.len()
            )));
        }
        let mut message_segments = Vec::new();
        let mut at = 0usize;
        while let Some(rest) = messages.get(at..).filter(|rest| !rest.is_empty()) {
            let len = next_message_segment_len(rest, k).max(1);
            // Close at the end of the derived batch the segment restates.
            let cut = spans
                .iter()
                .map(|span| span.msg_end as usize)
                .find(|end| *end > at)
                .unwrap_or(usize::MAX);
            let end = at.saturating_add(len).min(messages.len()).min(cut);
            message_segments.push(at..end);
            at = end;
        }
        let msg_count = u32::try_from(messages.len())
            .map_err(|_| BuildError::Messages("too many messages".into()))?;
        let (selected, leftover) = self.select(candidates, message_segments.len());
        let header = BatchHeader {
            version: BATCH_VERSION,
            chain_id: self.genesis.chain_id,
            number: params.parent.number.saturating_add(1),
            parent: params.parent.hash,
            timestamp: params.timestamp,
            l1_origin: params.l1_origin,
            prev_state_root: params.parent.state_root,
            msg_root: message_root(messages),
            msg_count,
            ..BatchHeader::default()
        };
        let context = block_context(self.genesis, &header);
        let mut tree = SparseMerkleTree::new(LayeredNodeStore::new(store));
        let mut pending: VecDeque<(usize, SignedTx)> = selected.into_iter().enumerate().collect();
        let mut included = Vec::new();
        let mut checkpoints = Vec::new();
        let mut message_receipts = Vec::new();
        let mut receipts = Vec::new();
        let mut updates = Vec::new();
        let mut rejected = Vec::new();
        let mut fees: u64 = 0;
        let mut root = run_message_segments(
            &mut tree,
            &context,
            spans,
            params.parent.state_root,
            message_segments,
            messages,
            |range, update, outcome| {
                checkpoints.push(Checkpoint::new(
                    update.root,
                    u32::try_from(range.end).unwrap_or(u32::MAX),
                ));
                updates.push(update);
                message_receipts.extend(outcome.receipts);
                fees = fees.saturating_add(outcome.fees);
                true
            },
        )?;
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
                        .ok()
                        .and_then(|n| n.checked_add(msg_count))
                        .ok_or_else(|| BuildError::Execution("too many txs".into()))?;
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
            message_receipts,
            receipts,
            fees,
            updates,
            rejected,
            leftover,
        })
    }

    /// Execute the derived batch `header` (see [`BatchHeader::is_derived`]): its L1 `messages`
    /// (derivation's [`BatchDerived`](crate::DerivationEvent::BatchDerived) gives them) over
    /// `store` from `pre_state_root`, the state this node computed for its parent. The result's
    /// `updates`, `message_receipts` and last update's root are the derived batch's state
    /// transition; its `batch` is a by-product (the header every node uses is `header`). The
    /// segments are the ones a batch restating it uses, so its root is the checkpoint that batch
    /// must claim.
    pub fn execute_derived<S: NodeStore>(
        &self,
        store: &S,
        header: &BatchHeader,
        pre_state_root: Hash,
        messages: &[L1Message],
    ) -> Result<SealedBatch, BuildError> {
        if !header.is_derived()
            || usize::try_from(header.msg_count).ok() != Some(messages.len())
            || message_root(messages) != header.msg_root
        {
            return Err(BuildError::Messages(format!(
                "{} messages given for derived batch {}, which commits to {} others",
                messages.len(),
                header.number,
                header.msg_count
            )));
        }
        let params = BuildParams {
            parent: ParentFacts {
                number: header.number.saturating_sub(1),
                hash: header.parent,
                state_root: pre_state_root,
                timestamp: header.timestamp,
                l1_origin_height: header.l1_origin.height,
            },
            timestamp: header.timestamp,
            l1_origin: header.l1_origin,
        };
        self.build_with_messages(store, &params, messages, Vec::new())
    }

    /// Re-execute `batch` over `store` (which must hold its `prev_state_root`) and find the first
    /// segment that is fraudulent: it holds an invalid tx, or its claimed checkpoint differs from
    /// the honest one. Stops there: `checkpoints` then holds the honest checkpoints `1..j-1`,
    /// and `store` can read the pre-state of segment `j`. For a batch with no L1 messages.
    pub fn replay<'s, S: NodeStore, B>(
        &self,
        store: &'s S,
        batch: &Batch<B>,
    ) -> Result<Replay<'s, S>, BuildError> {
        self.replay_with_messages(store, batch, &[])
    }

    /// [`replay`](Self::replay) of a batch that executes the L1 `messages` (derivation's
    /// [`messages_due`](crate::Derivation::messages_due) for it). Messages that are not the ones
    /// the header commits to are an error, not a fraud: derivation rejects such a batch.
    pub fn replay_with_messages<'s, S: NodeStore, B>(
        &self,
        store: &'s S,
        batch: &Batch<B>,
        messages: &[L1Message],
    ) -> Result<Replay<'s, S>, BuildError> {
        self.replay_restating(store, batch, messages, &[])
    }

    /// [`replay_with_messages`](Self::replay_with_messages) of a batch restating the derived
    /// batches `spans` (derivation's [`batch_spans`](crate::Derivation::batch_spans)).
    pub fn replay_restating<'s, S: NodeStore, B>(
        &self,
        store: &'s S,
        batch: &Batch<B>,
        messages: &[L1Message],
        spans: &[DerivedSpan],
    ) -> Result<Replay<'s, S>, BuildError> {
        let header = batch.header();
        if usize::try_from(header.msg_count).ok() != Some(messages.len())
            || message_root(messages) != header.msg_root
        {
            return Err(BuildError::Messages(format!(
                "{} messages given, the batch commits to {} others",
                messages.len(),
                header.msg_count
            )));
        }
        let context = block_context(self.genesis, header);
        let mut tree = SparseMerkleTree::new(LayeredNodeStore::new(store));
        let mut checkpoints = Vec::new();
        let mut message_receipts = Vec::new();
        let mut receipts = Vec::new();
        let mut updates = Vec::new();
        let mut fraud_segment = None;
        let message_segments = batch.message_segment_count();
        let mut root = run_message_segments(
            &mut tree,
            &context,
            spans,
            header.prev_state_root,
            (1..=message_segments).filter_map(|j| batch.segment_messages(j)),
            messages,
            |_, update, outcome| {
                let j = (checkpoints.len() as u64).saturating_add(1);
                match batch.checkpoint_at(j) {
                    Some(claimed) if claimed.state_root == update.root => {
                        checkpoints.push(claimed);
                        updates.push(update);
                        message_receipts.extend(outcome.receipts);
                        true
                    }
                    _ => {
                        fraud_segment = Some(j);
                        false
                    }
                }
            },
        )?;
        if fraud_segment.is_some() {
            root = checkpoints
                .last()
                .map_or(header.prev_state_root, |c| c.state_root);
        }
        let first_tx_segment = message_segments.saturating_add(1);
        for j in (first_tx_segment..=batch.segment_count()).take_while(|_| fraud_segment.is_none())
        {
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
            message_receipts,
            receipts,
            updates,
            store: tree.into_store(),
        })
    }
}
