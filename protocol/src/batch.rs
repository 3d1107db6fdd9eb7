//! Batches: the header, the body, canonical encoding, and the rules a batch must satisfy.
//!
//! # Shape
//! A [`Batch`] is a [`BatchHeader`], the list of checkpoints and the signed transactions. The
//! header commits to the transactions (`tx_root`, the [Merkle root](crate::merkle_root) of the
//! wtxids in order: every byte of every signed tx, and `tx_count`) and to the execution trace (`trace_root`, the Merkle root of
//! the checkpoints).
//!
//! # L1 messages (protocol v3)
//! A batch executes first, in order, the L1 messages (deposits and forced txs, see
//! [`L1Message`]) of the Bitcoin blocks its `l1_origin` newly covers, then its txs. The messages
//! are not in the body: every node finds them in Bitcoin itself, and the header commits to them
//! (`msg_count`, and `msg_root`, the [`message_root`]). [`Batch::check`] takes the messages
//! derivation says are due and rejects a batch whose commitment differs: omitting, reordering or
//! inventing a message is a structural rejection, no state needed.
//!
//! # Checkpoints and segments
//! The batch's *items* are its `msg_count` messages followed by its `tx_count` txs (item `i` is
//! message `i` for `i < msg_count`, else tx `i − msg_count`). They are cut into consecutive
//! *segments* of 1 to `K = checkpoint_interval` items, each within the
//! [segment budget](crate::segment_cost) (protocol v2: so the fraud proof of any segment fits
//! one challenge); no segment holds both messages and txs. Checkpoint `j` (1-based) is a
//! [`Checkpoint`]: the state root after segment `j` and `tx_end`, the item index one past its
//! last item, so the header commits to where every segment starts and ends. Checkpoint 0 is
//! `(prev_state_root, 0)` and is not stored. The `tx_end`s strictly increase, the last one is
//! `msg_count + tx_count`, and the last state root equals `state_root`. The builder closes a
//! segment at `K` items or when the next item would break the budget.
//!
//! **Empty batches** (no messages, no txs) have exactly one, empty, segment and one checkpoint, with
//! `tx_end = 0` and the root `state_root`. Executing an empty segment changes nothing, so an
//! honest empty batch has `state_root == prev_state_root`; a dishonest one is fraud-provable like
//! any other segment.
//!
//! # Encoding
//! Borsh of `(header, checkpoints, txs)`; decoding is strict: at most [`MAX_BATCH_BYTES`] bytes,
//! no trailing bytes, list lengths within [`MAX_BATCH_TXS`] and [`MAX_CHECKPOINTS`]. Borsh is
//! canonical for these types, so any accepted encoding re-encodes to the same bytes.
//!
//! # Typestate
//! Decoding gives a [`Batch<Unchecked>`]. [`Batch::check`] applies every rule that can be checked
//! without executing the txs, against the genesis parameters, the [`ParentFacts`] of the tip it
//! claims to extend and the [`L1Chain`] around the Bitcoin block that anchors it, and returns a
//! [`Batch<Checked>`]. State roots are *not* checked: that is the optimistic part, settled by
//! fraud proofs.

use std::marker::PhantomData;
use std::ops::Range;

use borsh::{BorshDeserialize, BorshSerialize};
use stint_contracts::SignedTx;
use stint_state::{tagged_hash, Hash};

use crate::{merkle_root, message_segment_cost, segment_cost, Genesis, L1Message, SEGMENT_BUDGET};

/// The protocol version every batch header carries (2: `tx_root` over wtxids, budgeted
/// segments, authenticated anchors; 3: the header commits to the L1 messages the batch
/// executes first, `msg_root` and `msg_count`).
pub const BATCH_VERSION: u32 = 3;

/// Tag of the batch header hash.
pub const BATCH_TAG: &str = "stint/batch";

/// Tag of a checkpoint's leaf in `trace_root`.
pub const CHECKPOINT_TAG: &str = "stint/checkpoint";

/// Hard cap on an encoded batch, whatever the genesis says (genesis `max_batch_bytes` must not
/// exceed it). A reveal transaction holds about 390 KB of envelope.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// Hard cap on the number of txs in one batch (genesis `max_batch_txs` must not exceed it).
pub const MAX_BATCH_TXS: usize = 1 << 16;

/// Hard cap on the number of L1 messages one batch executes (protocol v3).
pub const MAX_BATCH_MESSAGES: usize = 1 << 16;

/// Hard cap on the number of checkpoints in one batch (one per tx plus the empty-batch case).
pub const MAX_CHECKPOINTS: usize = MAX_BATCH_TXS;

/// The Bitcoin block a batch was built on top of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct L1Origin {
    /// Height of the block.
    pub height: u64,
    /// Hash of the block, in Bitcoin's internal byte order (`BlockHash::to_byte_array`).
    pub hash: Hash,
}

/// A checkpoint: the state root after a segment, and where the segment ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Checkpoint {
    /// State root after the segment.
    pub state_root: Hash,
    /// Index one past the segment's last tx (the next segment starts there).
    pub tx_end: u32,
}

impl Checkpoint {
    /// A checkpoint.
    pub fn new(state_root: Hash, tx_end: u32) -> Self {
        Self { state_root, tx_end }
    }

    /// Its item in `trace_root`: `tagged_hash("stint/checkpoint", state_root ‖ le32(tx_end))`.
    pub fn leaf(&self) -> Hash {
        tagged_hash(
            CHECKPOINT_TAG,
            &[&self.state_root, &self.tx_end.to_le_bytes()],
        )
    }
}

/// The `trace_root` of a list of checkpoints: the Merkle root of their leaves, in order.
pub fn trace_root(checkpoints: &[Checkpoint]) -> Hash {
    merkle_root(&trace_leaves(checkpoints))
}

/// The items of `trace_root`, in order.
pub fn trace_leaves(checkpoints: &[Checkpoint]) -> Vec<Hash> {
    checkpoints.iter().map(Checkpoint::leaf).collect()
}

/// The header of a batch; its hash identifies the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BatchHeader {
    /// Protocol version, [`BATCH_VERSION`].
    pub version: u32,
    /// The rollup's chain id (genesis `chain_id`).
    pub chain_id: u64,
    /// Batch number; the first batch after genesis is 1.
    pub number: u64,
    /// Hash of the parent batch header (the genesis hash for batch 1).
    pub parent: Hash,
    /// Batch timestamp in Unix seconds: the time every tx in the batch executes at.
    pub timestamp: u64,
    /// The Bitcoin block this batch was built on.
    pub l1_origin: L1Origin,
    /// State root before the batch (the parent's `state_root`).
    pub prev_state_root: Hash,
    /// Claimed state root after the batch (the last checkpoint).
    pub state_root: Hash,
    /// Merkle root of the wtxids ([`SignedTx::wtxid`]), in order.
    pub tx_root: Hash,
    /// Merkle root of the checkpoints' leaves ([`Checkpoint::leaf`]), in order.
    pub trace_root: Hash,
    /// Number of txs in the batch.
    pub tx_count: u32,
    /// [`message_root`] of the L1 messages the batch executes before its txs (protocol v3).
    pub msg_root: Hash,
    /// Number of those L1 messages.
    pub msg_count: u32,
}

/// Length of an encoded [`BatchHeader`]: every field has a fixed size.
pub const BATCH_HEADER_LEN: usize = 4 + 8 + 8 + 32 + 8 + (8 + 32) + 32 + 32 + 32 + 32 + 4 + 32 + 4;

impl BatchHeader {
    /// The canonical encoding of the header (its borsh encoding, written field by field, so it
    /// cannot fail: every field has a fixed size).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BATCH_HEADER_LEN);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.chain_id.to_le_bytes());
        out.extend_from_slice(&self.number.to_le_bytes());
        out.extend_from_slice(&self.parent);
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&self.l1_origin.height.to_le_bytes());
        out.extend_from_slice(&self.l1_origin.hash);
        out.extend_from_slice(&self.prev_state_root);
        out.extend_from_slice(&self.state_root);
        out.extend_from_slice(&self.tx_root);
        out.extend_from_slice(&self.trace_root);
        out.extend_from_slice(&self.tx_count.to_le_bytes());
        out.extend_from_slice(&self.msg_root);
        out.extend_from_slice(&self.msg_count.to_le_bytes());
        out
    }

    /// The header hash: `tagged_hash("stint/batch", borsh(header))`.
    pub fn hash(&self) -> Hash {
        tagged_hash(BATCH_TAG, &[&self.encode()])
    }

    /// Whether this is the header of a *derived* batch: one every node derives itself when no
    /// batch executed the L1 messages due within the sequencing window (see
    /// [`Derivation`](crate::Derivation)). It claims no state: `state_root` and `trace_root` are
    /// zero, which no posted batch can have (its `trace_root` is the root of at least one
    /// checkpoint, and its last checkpoint is its `state_root`).
    pub fn is_derived(&self) -> bool {
        self.trace_root == [0; 32] && self.state_root == [0; 32]
    }
}

/// A derived batch as the next posted batch restates it (protocol v3, "no sequencer, no
/// stall"): a posted batch whose parent chain ends in derived batches executes their L1
/// messages again, first, from the last posted batch's state, and its trace has a checkpoint at
/// the end of each derived batch's messages, so that checkpoint is the derived batch's state root,
/// claimed and fraud-provable like any other. Those messages execute at the derived batch's
/// timestamp, as they did when every node derived it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerivedSpan {
    /// The derived batch's number.
    pub number: u64,
    /// Where its messages end among the posted batch's messages (exclusive).
    pub msg_end: u32,
    /// Its timestamp: the time its messages execute at.
    pub timestamp: u64,
}

/// The timestamp message segment ending at message `segment_end` executes at: that of the
/// derived batch whose messages it restates (the first span ending at or after it), else the
/// batch's own.
pub fn span_timestamp(spans: &[DerivedSpan], segment_end: u32, batch_timestamp: u64) -> u64 {
    spans
        .iter()
        .find(|span| span.msg_end >= segment_end)
        .map_or(batch_timestamp, |span| span.timestamp)
}

/// Marker: a batch that has not been checked yet (decoded, or built locally).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unchecked;

/// Marker: a batch that passed [`Batch::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked;

/// A batch: header, checkpoints and txs. `S` is [`Unchecked`] or [`Checked`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch<S = Unchecked> {
    header: BatchHeader,
    checkpoints: Vec<Checkpoint>,
    txs: Vec<SignedTx>,
    _state: PhantomData<S>,
}

#[derive(BorshSerialize)]
struct BatchWireRef<'a> {
    header: &'a BatchHeader,
    checkpoints: &'a Vec<Checkpoint>,
    txs: &'a Vec<SignedTx>,
}

#[derive(BorshDeserialize)]
struct BatchWire {
    header: BatchHeader,
    checkpoints: Vec<Checkpoint>,
    txs: Vec<SignedTx>,
}

/// Why a value could not be encoded (internal: only values no rule admits fail to encode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode the {what}: {reason}")]
pub struct EncodeError {
    /// What was being encoded.
    pub what: &'static str,
    /// Why it failed.
    pub reason: String,
}

impl EncodeError {
    pub(crate) fn new(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            what,
            reason: reason.to_string(),
        }
    }
}

/// Why bytes are not a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than allowed.
    #[error("encoding is {len} bytes, more than the maximum of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// Allowed maximum.
        max: usize,
    },
    /// A list is longer than allowed.
    #[error("{what} list has {len} entries, more than the maximum of {max}")]
    ListTooLong {
        /// Which list.
        what: &'static str,
        /// Its length.
        len: usize,
        /// Allowed maximum.
        max: usize,
    },
    /// The bytes are not a canonical encoding (bad tag, truncated, trailing bytes, ...).
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

/// Why a batch breaks the protocol rules. Every variant is an *invalid input*; checking is pure
/// and cannot fail for internal reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Unknown protocol version.
    #[error("unsupported batch version {got} (expected {expected})")]
    Version {
        /// Expected version.
        expected: u32,
        /// Version in the header.
        got: u32,
    },
    /// Wrong chain id.
    #[error("wrong chain id {got} (expected {expected})")]
    ChainId {
        /// Expected chain id.
        expected: u64,
        /// Chain id in the header.
        got: u64,
    },
    /// The number is not the parent's plus one.
    #[error("batch number {got} does not follow the tip (expected {expected})")]
    Number {
        /// Expected number.
        expected: u64,
        /// Number in the header.
        got: u64,
    },
    /// The parent hash is not the tip's hash.
    #[error("parent {} is not the tip {}", hex::encode(.got), hex::encode(.expected))]
    Parent {
        /// The tip's hash.
        expected: Hash,
        /// Parent hash in the header.
        got: Hash,
    },
    /// `prev_state_root` is not the parent's `state_root`.
    #[error("prev_state_root does not match the parent's state root")]
    PrevStateRoot,
    /// No checkpoint ends where the messages of a derived batch the batch restates end.
    #[error(
        "no checkpoint at the end of derived batch {number}'s L1 messages (message {msg_end})"
    )]
    DerivedSpan {
        /// The derived batch.
        number: u64,
        /// Where its messages end.
        msg_end: u32,
    },
    /// The timestamp is older than the parent's.
    #[error("timestamp {got} is before the parent's {parent}")]
    TimestampBeforeParent {
        /// Parent timestamp.
        parent: u64,
        /// Timestamp in the header.
        got: u64,
    },
    /// The timestamp is before the L1 origin block's time or more than the drift after it.
    #[error(
        "timestamp {got} is not within [{origin_time}, {origin_time} + {drift}s] of the L1 origin"
    )]
    TimestampDrift {
        /// L1 origin block time.
        origin_time: u64,
        /// Timestamp in the header.
        got: u64,
        /// Allowed drift in seconds.
        drift: u64,
    },
    /// The L1 origin is lower than the parent's.
    #[error("l1 origin height {got} is below the parent's {parent}")]
    L1OriginBeforeParent {
        /// Parent's L1 origin height.
        parent: u64,
        /// L1 origin height in the header.
        got: u64,
    },
    /// The L1 origin is not strictly below the anchoring block.
    #[error("l1 origin height {got} is not below the anchoring block {anchor_height}")]
    L1OriginNotBeforeAnchor {
        /// Height of the anchoring block.
        anchor_height: u64,
        /// L1 origin height in the header.
        got: u64,
    },
    /// The L1 origin lags the anchoring block by more than the sequencing window (protocol v3:
    /// so no L1 message waits longer than `S` blocks for a batch).
    #[error(
        "l1 origin height {got} is more than the sequencing window of {window} blocks below the anchoring block {anchor_height}"
    )]
    L1OriginTooOld {
        /// Height of the anchoring block.
        anchor_height: u64,
        /// L1 origin height in the header.
        got: u64,
        /// Genesis `sequencing_window`.
        window: u64,
    },
    /// The L1 origin is not a block of the anchoring block's chain.
    #[error("l1 origin at height {height} is not an ancestor of the anchoring block")]
    L1OriginNotAncestor {
        /// L1 origin height in the header.
        height: u64,
    },
    /// `tx_count` does not match the number of txs.
    #[error("header tx_count {header} but the body has {body} txs")]
    TxCount {
        /// Count in the header.
        header: u32,
        /// Number of txs in the body.
        body: usize,
    },
    /// `tx_root` does not match the txs.
    #[error("tx_root does not match the txs")]
    TxRoot,
    /// `msg_count` is not the number of L1 messages due (protocol v3).
    #[error("header msg_count {header} but {due} L1 messages are due")]
    MsgCount {
        /// Count in the header.
        header: u32,
        /// Messages due (from derivation).
        due: usize,
    },
    /// `msg_root` does not commit to the L1 messages due, in order (protocol v3).
    #[error("msg_root does not match the L1 messages due")]
    MsgRoot,
    /// A batch has no checkpoint, or an empty batch more than one.
    #[error("{got} checkpoints for {txs} txs")]
    CheckpointCount {
        /// Number of txs.
        txs: u32,
        /// Count in the body.
        got: usize,
    },
    /// A checkpoint's `tx_end` does not follow the previous one, or the last is not `tx_count`.
    #[error("segment {segment} ends at tx {tx_end}, after tx {start}: {reason}")]
    SegmentBounds {
        /// The segment (1-based).
        segment: u64,
        /// Where the previous segment ended.
        start: u32,
        /// Where this one ends.
        tx_end: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A segment holds more than `K` txs.
    #[error("segment {segment} holds {len} txs, more than the checkpoint interval {max}")]
    SegmentTooLong {
        /// The segment (1-based).
        segment: u64,
        /// Its txs.
        len: u64,
        /// `K`.
        max: u32,
    },
    /// A segment's worst-case fraud proof would not fit one challenge.
    #[error("segment {segment} costs {cost} proof bytes, more than the budget of {budget}")]
    SegmentOverBudget {
        /// The segment (1-based).
        segment: u64,
        /// Its [`segment_cost`](crate::segment_cost).
        cost: u64,
        /// [`SEGMENT_BUDGET`](crate::SEGMENT_BUDGET).
        budget: u64,
    },
    /// `trace_root` does not match the checkpoints.
    #[error("trace_root does not match the checkpoints")]
    TraceRoot,
    /// The last checkpoint is not `state_root`.
    #[error("last checkpoint is not the state root")]
    LastCheckpoint,
    /// More txs than the genesis allows.
    #[error("{count} txs, more than the maximum of {max}")]
    TooManyTxs {
        /// Number of txs.
        count: usize,
        /// Allowed maximum.
        max: u64,
    },
    /// More L1 messages than one batch may execute.
    #[error("{count} L1 messages, more than the maximum of {max}")]
    TooManyMessages {
        /// Number of messages.
        count: usize,
        /// Allowed maximum.
        max: usize,
    },
    /// The encoded batch is larger than the genesis allows.
    #[error("encoded batch is {bytes} bytes, more than the maximum of {max}")]
    TooLarge {
        /// Encoded size.
        bytes: usize,
        /// Allowed maximum.
        max: u64,
    },
}

/// What a batch must link to: the current canonical tip (or genesis, see
/// [`ParentFacts::genesis`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentFacts {
    /// The tip's number (0 for genesis).
    pub number: u64,
    /// The tip's hash (the genesis hash for genesis).
    pub hash: Hash,
    /// The tip's state root.
    pub state_root: Hash,
    /// The tip's timestamp (0 for genesis).
    pub timestamp: u64,
    /// The tip's L1 origin height (`l1_start_height` for genesis).
    pub l1_origin_height: u64,
}

impl ParentFacts {
    /// The facts of the virtual batch 0 that genesis stands for.
    pub fn genesis(genesis: &Genesis, genesis_state_root: Hash) -> Self {
        Self {
            number: 0,
            hash: genesis.hash(),
            state_root: genesis_state_root,
            timestamp: 0,
            l1_origin_height: genesis.l1_start_height,
        }
    }

    /// The facts of a header as a parent.
    pub fn of(header: &BatchHeader) -> Self {
        Self {
            number: header.number,
            hash: header.hash(),
            state_root: header.state_root,
            timestamp: header.timestamp,
            l1_origin_height: header.l1_origin.height,
        }
    }
}

/// A Bitcoin block as the batch rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1BlockInfo {
    /// Block hash, internal byte order.
    pub hash: Hash,
    /// Block header time (Unix seconds).
    pub time: u64,
}

/// The Bitcoin chain that ends in the anchoring block, as far as the caller knows it.
pub trait L1Chain {
    /// Height of the block that anchors the batch being checked.
    fn anchor_height(&self) -> u64;
    /// The block at `height` on the anchoring block's chain, if known.
    fn block_at(&self, height: u64) -> Option<L1BlockInfo>;
}

impl<S> Batch<S> {
    /// The header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The checkpoints (checkpoint 1 first; checkpoint 0 is `(prev_state_root, 0)`).
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// The state roots of the checkpoints, checkpoint 1 first.
    pub fn checkpoint_roots(&self) -> Vec<Hash> {
        self.checkpoints.iter().map(|c| c.state_root).collect()
    }

    /// The txs, in order.
    pub fn txs(&self) -> &[SignedTx] {
        &self.txs
    }

    /// The header hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The state root of checkpoint `j`, counting `prev_state_root` as checkpoint 0.
    pub fn checkpoint(&self, j: u64) -> Option<Hash> {
        self.checkpoint_at(j).map(|c| c.state_root)
    }

    /// Checkpoint `j`, counting `(prev_state_root, 0)` as checkpoint 0.
    pub fn checkpoint_at(&self, j: u64) -> Option<Checkpoint> {
        if j == 0 {
            return Some(Checkpoint::new(self.header.prev_state_root, 0));
        }
        let index = usize::try_from(j.checked_sub(1)?).ok()?;
        self.checkpoints.get(index).copied()
    }

    /// Number of segments (= checkpoints).
    pub fn segment_count(&self) -> u64 {
        self.checkpoints.len() as u64
    }

    /// Number of L1 messages the batch executes first (`msg_count`).
    pub fn msg_count(&self) -> usize {
        usize::try_from(self.header.msg_count).unwrap_or(usize::MAX)
    }

    /// The item range of segment `j` (1-based), as the checkpoints say: item `i` is L1 message
    /// `i` below [`msg_count`](Self::msg_count), else tx `i − msg_count`.
    pub fn segment_items(&self, j: u64) -> Option<Range<usize>> {
        let start = usize::try_from(self.checkpoint_at(j.checked_sub(1)?)?.tx_end).ok()?;
        let end = usize::try_from(self.checkpoint_at(j)?.tx_end).ok()?;
        let items = self.msg_count().checked_add(self.txs.len())?;
        (start <= end && end <= items).then_some(start..end)
    }

    /// The L1-message index range of segment `j` when it is a message segment.
    pub fn segment_messages(&self, j: u64) -> Option<Range<usize>> {
        let items = self.segment_items(j)?;
        (!items.is_empty() && items.end <= self.msg_count()).then_some(items)
    }

    /// Number of message segments (they come first: segments `1..=message_segment_count()`).
    pub fn message_segment_count(&self) -> u64 {
        (1..=self.segment_count())
            .take_while(|j| self.segment_messages(*j).is_some())
            .count() as u64
    }

    /// The tx index range of segment `j` (1-based) when it is a tx segment (or the one empty
    /// segment of an empty batch); `None` for a message segment.
    pub fn segment_range(&self, j: u64) -> Option<Range<usize>> {
        let items = self.segment_items(j)?;
        let m = self.msg_count();
        let start = items.start.checked_sub(m)?;
        let end = items.end.checked_sub(m)?;
        (items.start >= m || (items.is_empty() && m == 0)).then_some(start..end)
    }

    /// The tx index ranges of the tx segments, in order (for a batch that passed
    /// [`Batch::check_body`], they cover the txs exactly); segment
    /// `message_segment_count() + 1 + i` is range `i`.
    pub fn segment_ranges(&self) -> Vec<Range<usize>> {
        (self.message_segment_count().saturating_add(1)..=self.segment_count())
            .map_while(|j| self.segment_range(j))
            .collect()
    }

    /// The txs of segment `j` (1-based), when it is a tx segment.
    pub fn segment_txs(&self, j: u64) -> Option<&[SignedTx]> {
        self.txs.get(self.segment_range(j)?)
    }

    /// The canonical encoding. Fails only for a batch no rule admits (a list longer than
    /// `u32::MAX`); the error is never an empty encoding.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        borsh::to_vec(&self.wire()).map_err(|e| EncodeError::new("batch", e))
    }

    /// Length of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(&self.wire()).unwrap_or(usize::MAX)
    }

    /// Split into header, checkpoints and txs.
    pub fn into_parts(self) -> (BatchHeader, Vec<Checkpoint>, Vec<SignedTx>) {
        (self.header, self.checkpoints, self.txs)
    }

    /// Forget the check (for example to store or re-check it).
    pub fn into_unchecked(self) -> Batch<Unchecked> {
        Batch {
            header: self.header,
            checkpoints: self.checkpoints,
            txs: self.txs,
            _state: PhantomData,
        }
    }

    fn wire(&self) -> BatchWireRef<'_> {
        BatchWireRef {
            header: &self.header,
            checkpoints: &self.checkpoints,
            txs: &self.txs,
        }
    }
}

impl Batch<Unchecked> {
    /// A batch from its parts (nothing is checked).
    pub fn new(header: BatchHeader, checkpoints: Vec<Checkpoint>, txs: Vec<SignedTx>) -> Self {
        Self {
            header,
            checkpoints,
            txs,
            _state: PhantomData,
        }
    }

    /// Strictly decode a batch (see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_BATCH_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_BATCH_BYTES,
            });
        }
        let wire: BatchWire =
            borsh::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if wire.txs.len() > MAX_BATCH_TXS {
            return Err(DecodeError::ListTooLong {
                what: "tx",
                len: wire.txs.len(),
                max: MAX_BATCH_TXS,
            });
        }
        if wire.checkpoints.len() > MAX_CHECKPOINTS {
            return Err(DecodeError::ListTooLong {
                what: "checkpoint",
                len: wire.checkpoints.len(),
                max: MAX_CHECKPOINTS,
            });
        }
        for (index, tx) in wire.txs.iter().enumerate() {
            tx.tx
                .call
                .check_bounds()
                .map_err(|e| DecodeError::Malformed(format!("tx {index}: {e}")))?;
        }
        let batch = Self::new(wire.header, wire.checkpoints, wire.txs);
        if batch.encode().ok().as_deref() != Some(bytes) {
            return Err(DecodeError::Malformed("non-canonical encoding".into()));
        }
        Ok(batch)
    }

    /// Check the rules that need no execution and no chain context: version, chain id, limits,
    /// `tx_count`/`tx_root` against the txs, checkpoint count, `trace_root` and the last
    /// checkpoint against `state_root`.
    pub fn check_body(&self, genesis: &Genesis) -> Result<(), BatchError> {
        let h = &self.header;
        if h.version != BATCH_VERSION {
            return Err(BatchError::Version {
                expected: BATCH_VERSION,
                got: h.version,
            });
        }
        if h.chain_id != genesis.chain_id {
            return Err(BatchError::ChainId {
                expected: genesis.chain_id,
                got: h.chain_id,
            });
        }
        let max_txs = u64::from(genesis.max_batch_txs);
        if self.txs.len() as u64 > max_txs {
            return Err(BatchError::TooManyTxs {
                count: self.txs.len(),
                max: max_txs,
            });
        }
        if self.msg_count() > MAX_BATCH_MESSAGES {
            return Err(BatchError::TooManyMessages {
                count: self.msg_count(),
                max: MAX_BATCH_MESSAGES,
            });
        }
        let bytes = self.encoded_len();
        let max_bytes = u64::from(genesis.max_batch_bytes);
        if bytes as u64 > max_bytes {
            return Err(BatchError::TooLarge {
                bytes,
                max: max_bytes,
            });
        }
        if usize::try_from(h.tx_count).ok() != Some(self.txs.len()) {
            return Err(BatchError::TxCount {
                header: h.tx_count,
                body: self.txs.len(),
            });
        }
        if tx_root(&self.txs) != h.tx_root {
            return Err(BatchError::TxRoot);
        }
        self.check_segments(genesis)?;
        if trace_root(&self.checkpoints) != h.trace_root {
            return Err(BatchError::TraceRoot);
        }
        if self.checkpoints.last().map(|c| c.state_root) != Some(h.state_root) {
            return Err(BatchError::LastCheckpoint);
        }
        Ok(())
    }

    /// The segment rules: one checkpoint per segment, `tx_end`s strictly increasing up to
    /// `msg_count + tx_count` (an empty batch has one empty segment), no segment holding both
    /// messages and txs, at most `K` items and, for tx segments, at most [`SEGMENT_BUDGET`] of
    /// [`segment_cost`] per segment (message segments' budget needs the messages:
    /// [`check`](Self::check)).
    fn check_segments(&self, genesis: &Genesis) -> Result<(), BatchError> {
        let tx_count = self.header.tx_count;
        let msg_count = self.header.msg_count;
        let got = self.checkpoints.len();
        let items = msg_count
            .checked_add(tx_count)
            .ok_or(BatchError::CheckpointCount { txs: tx_count, got })?;
        if got == 0 || (items == 0 && got != 1) {
            return Err(BatchError::CheckpointCount { txs: tx_count, got });
        }
        let k = genesis.checkpoint_interval;
        let mut start: u32 = 0;
        for (i, checkpoint) in self.checkpoints.iter().enumerate() {
            let segment = (i as u64).saturating_add(1);
            let tx_end = checkpoint.tx_end;
            let bounds = |reason| BatchError::SegmentBounds {
                segment,
                start,
                tx_end,
                reason,
            };
            let is_last = i.saturating_add(1) == got;
            if tx_end > items {
                return Err(bounds("past the last item"));
            }
            if items > 0 && tx_end <= start {
                return Err(bounds("empty segment"));
            }
            if is_last && tx_end != items {
                return Err(bounds("the last segment must end at the last item"));
            }
            if start < msg_count && tx_end > msg_count {
                return Err(bounds("a segment holds both L1 messages and txs"));
            }
            let len = tx_end.saturating_sub(start);
            if len > k {
                return Err(BatchError::SegmentTooLong {
                    segment,
                    len: u64::from(len),
                    max: k,
                });
            }
            if start >= msg_count {
                let txs = usize::try_from(start.saturating_sub(msg_count))
                    .ok()
                    .zip(usize::try_from(tx_end.saturating_sub(msg_count)).ok())
                    .and_then(|(a, b)| self.txs.get(a..b))
                    .ok_or_else(|| bounds("past the last item"))?;
                let cost = segment_cost(txs);
                if cost > SEGMENT_BUDGET {
                    return Err(BatchError::SegmentOverBudget {
                        segment,
                        cost,
                        budget: SEGMENT_BUDGET,
                    });
                }
            }
            start = tx_end;
        }
        Ok(())
    }

    /// The L1-message rules (protocol v3): the header commits to exactly `due`, in order, and
    /// every message segment is within the budget.
    fn check_messages(&self, due: &[L1Message]) -> Result<(), BatchError> {
        let h = &self.header;
        if usize::try_from(h.msg_count).ok() != Some(due.len()) {
            return Err(BatchError::MsgCount {
                header: h.msg_count,
                due: due.len(),
            });
        }
        if message_root(due) != h.msg_root {
            return Err(BatchError::MsgRoot);
        }
        for j in 1..=self.message_segment_count() {
            let messages = self
                .segment_messages(j)
                .and_then(|range| due.get(range))
                .unwrap_or(&[]);
            let cost = message_segment_cost(messages);
            if cost > SEGMENT_BUDGET {
                return Err(BatchError::SegmentOverBudget {
                    segment: j,
                    cost,
                    budget: SEGMENT_BUDGET,
                });
            }
        }
        Ok(())
    }

    /// Every derived batch restated has a checkpoint at the end of its messages.
    fn check_spans(&self, spans: &[DerivedSpan]) -> Result<(), BatchError> {
        for span in spans {
            let at_boundary =
                span.msg_end == 0 || self.checkpoints.iter().any(|c| c.tx_end == span.msg_end);
            if !at_boundary || span.msg_end > self.header.msg_count {
                return Err(BatchError::DerivedSpan {
                    number: span.number,
                    msg_end: span.msg_end,
                });
            }
        }
        Ok(())
    }

    /// Check every rule of a batch that extends `parent`, is anchored in the last block of
    /// `l1` and must execute the L1 messages `due` (derivation's
    /// [`messages_due`](crate::Derivation::messages_due) for its origin; see the module docs),
    /// turning it into a [`Batch<Checked>`]. With no derived batch restated: see
    /// [`check_restating`](Self::check_restating).
    pub fn check(
        self,
        genesis: &Genesis,
        parent: &ParentFacts,
        l1: &impl L1Chain,
        due: &[L1Message],
    ) -> Result<Batch<Checked>, BatchError> {
        self.check_restating(genesis, parent, l1, due, &[])
    }

    /// [`check`](Self::check) of a batch whose parent chain ends in derived batches: `due`
    /// starts with their messages, and `spans` says where each ends (it needs a checkpoint
    /// there).
    pub fn check_restating(
        self,
        genesis: &Genesis,
        parent: &ParentFacts,
        l1: &impl L1Chain,
        due: &[L1Message],
        spans: &[DerivedSpan],
    ) -> Result<Batch<Checked>, BatchError> {
        let h = &self.header;
        // Cheap linkage rules first: derivation sees many non-linking batches.
        let expected_number = parent.number.saturating_add(1);
        if h.number != expected_number {
            return Err(BatchError::Number {
                expected: expected_number,
                got: h.number,
            });
        }
        if h.parent != parent.hash {
            return Err(BatchError::Parent {
                expected: parent.hash,
                got: h.parent,
            });
        }
        if h.prev_state_root != parent.state_root {
            return Err(BatchError::PrevStateRoot);
        }
        if h.timestamp < parent.timestamp {
            return Err(BatchError::TimestampBeforeParent {
                parent: parent.timestamp,
                got: h.timestamp,
            });
        }
        let origin = h.l1_origin;
        if origin.height < parent.l1_origin_height {
            return Err(BatchError::L1OriginBeforeParent {
                parent: parent.l1_origin_height,
                got: origin.height,
            });
        }
        let anchor_height = l1.anchor_height();
        if origin.height >= anchor_height {
            return Err(BatchError::L1OriginNotBeforeAnchor {
                anchor_height,
                got: origin.height,
            });
        }
        let window = genesis.sequencing_window;
        if origin.height.saturating_add(window) < anchor_height {
            return Err(BatchError::L1OriginTooOld {
                anchor_height,
                got: origin.height,
                window,
            });
        }
        let block = l1
            .block_at(origin.height)
            .filter(|block| block.hash == origin.hash)
            .ok_or(BatchError::L1OriginNotAncestor {
                height: origin.height,
            })?;
        let drift = genesis.max_timestamp_drift_secs;
        if h.timestamp < block.time || h.timestamp.saturating_sub(block.time) > drift {
            return Err(BatchError::TimestampDrift {
                origin_time: block.time,
                got: h.timestamp,
                drift,
            });
        }
        self.check_body(genesis)?;
        self.check_messages(due)?;
        self.check_spans(spans)?;
        Ok(Batch {
            header: self.header,
            checkpoints: self.checkpoints,
            txs: self.txs,
            _state: PhantomData,
        })
    }
}

/// The `msg_root` of the L1 messages a batch executes: the Merkle root of their
/// [leaves](L1Message::leaf), in order, and all zeros when there are none (so a batch without
/// messages has the header of version 2 plus zeros).
pub fn message_root(messages: &[L1Message]) -> Hash {
    if messages.is_empty() {
        return [0; 32];
    }
    merkle_root(&message_leaves(messages))
}

/// The leaves of `msg_root`, in order.
pub fn message_leaves(messages: &[L1Message]) -> Vec<Hash> {
    messages.iter().map(L1Message::leaf).collect()
}

/// The `tx_root` of a list of txs: the Merkle root of their wtxids ([`SignedTx::wtxid`]), in
/// order. It commits to every byte of every signed tx, signatures included, so every tx a fraud
/// proof carries is the one the sequencer wrote (protocol v2).
pub fn tx_root(txs: &[SignedTx]) -> Hash {
    merkle_root(&tx_leaves(txs))
}

/// The leaves of `tx_root`: one wtxid per tx, in order.
pub fn tx_leaves(txs: &[SignedTx]) -> Vec<Hash> {
    txs.iter().map(SignedTx::wtxid).collect()
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash as _;
    use bitcoin::secp256k1::{Keypair, Secp256k1};
    use bitcoin::BlockHash;
    use stint_contracts::AccountId;

    use super::*;

    struct Chain {
        anchor_height: u64,
        blocks: Vec<L1BlockInfo>,
    }

    impl L1Chain for Chain {
        fn anchor_height(&self) -> u64 {
            self.anchor_height
        }
        fn block_at(&self, height: u64) -> Option<L1BlockInfo> {
            self.blocks.get(height as usize).copied()
        }
    }

    fn genesis() -> Genesis {
        let secp = Secp256k1::new();
        let key = Keypair::from_seckey_slice(&secp, &[3; 32])
            .unwrap()
            .x_only_public_key()
            .0;
        let mut g = Genesis::new(
            7,
            key,
            AccountId([9; 32]),
            vec![],
            0,
            BlockHash::all_zeros(),
        );
        g.checkpoint_interval = 4;
        g
    }

    /// An empty batch 1 on genesis root `[1; 32]`, origin block 1, and the chain it is checked in.
    fn fixture() -> (Genesis, ParentFacts, Chain, BatchHeader) {
        let g = genesis();
        let parent = ParentFacts::genesis(&g, [1; 32]);
        let chain = Chain {
            anchor_height: 3,
            blocks: (0..4)
                .map(|h| L1BlockInfo {
                    hash: [h as u8; 32],
                    time: 1000 + h * 600,
                })
                .collect(),
        };
        let header = BatchHeader {
            version: BATCH_VERSION,
            chain_id: 7,
            number: 1,
            parent: parent.hash,
            timestamp: 1700,
            l1_origin: L1Origin {
                height: 1,
                hash: [1; 32],
            },
            prev_state_root: [1; 32],
            state_root: [1; 32],
            tx_root: merkle_root(&[]),
            trace_root: trace_root(&[cp(1, 0)]),
            tx_count: 0,
            msg_root: message_root(&[]),
            msg_count: 0,
        };
        (g, parent, chain, header)
    }

    fn check(
        header: BatchHeader,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<Batch<Checked>, BatchError> {
        let (g, parent, chain, _) = fixture();
        Batch::new(header, checkpoints, vec![]).check(&g, &parent, &chain, &[])
    }

    fn cp(root: u8, tx_end: u32) -> Checkpoint {
        Checkpoint::new([root; 32], tx_end)
    }

    /// A batch of `n` minimal txs cut at `ends`, its header sealed to match (roots all `[1; 32]`).
    fn cut(n: usize, ends: &[u32]) -> (Genesis, Batch) {
        let (g, _, _, h) = fixture();
        let tx = SignedTx {
            tx: stint_contracts::Tx {
                chain_id: 7,
                from: AccountId([4; 32]),
                nonce: 0,
                fee: 0,
                call: stint_contracts::Call::Transfer {
                    to: AccountId([5; 32]),
                    amount: 1,
                },
            },
            sig: [0; 64],
        };
        let txs = vec![tx; n];
        let checkpoints: Vec<Checkpoint> = ends.iter().map(|e| cp(1, *e)).collect();
        let header = BatchHeader {
            tx_count: n as u32,
            tx_root: tx_root(&txs),
            trace_root: trace_root(&checkpoints),
            ..h
        };
        (g, Batch::new(header, checkpoints, txs))
    }

    #[test]
    fn segments_are_what_the_checkpoints_say() {
        let (g, batch) = cut(10, &[4, 8, 10]);
        assert_eq!(batch.check_body(&g), Ok(()));
        assert_eq!(batch.segment_ranges(), vec![0..4, 4..8, 8..10]);
        assert_eq!(batch.segment_range(0), None);
        assert_eq!(batch.segment_range(4), None);
        assert_eq!(batch.checkpoint_at(0), Some(cp(1, 0)));
        // Uneven cuts are fine as long as each segment is within K and the budget.
        assert_eq!(cut(10, &[1, 5, 9, 10]).1.check_body(&g), Ok(()));
    }

    #[test]
    fn segment_bounds_are_enforced() {
        let (g, _) = cut(0, &[0]);
        let reason = |ends: &[u32]| match cut(10, ends).1.check_body(&g) {
            Err(BatchError::SegmentBounds { reason, .. }) => reason,
            other => panic!("{ends:?}: {other:?}"),
        };
        assert_eq!(reason(&[4, 4, 10]), "empty segment");
        assert_eq!(reason(&[4, 3, 10]), "empty segment");
        assert_eq!(reason(&[4, 8, 11]), "past the last item");
        assert_eq!(
            reason(&[4, 8]),
            "the last segment must end at the last item"
        );
        assert!(matches!(
            cut(10, &[5, 10]).1.check_body(&g),
            Err(BatchError::SegmentTooLong {
                segment: 1,
                len: 5,
                max: 4
            })
        ));
        assert!(matches!(
            cut(10, &[]).1.check_body(&g),
            Err(BatchError::CheckpointCount { txs: 10, got: 0 })
        ));
        assert_eq!(cut(0, &[0]).1.check_body(&g), Ok(()));
        assert!(matches!(
            cut(0, &[1]).1.check_body(&g),
            Err(BatchError::SegmentBounds { .. })
        ));
    }

    #[test]
    fn the_header_encoding_is_its_borsh_encoding() {
        let (_, _, _, mut header) = fixture();
        header.tx_count = 0x0102_0304;
        header.l1_origin.height = u64::MAX - 7;
        let encoded = header.encode();
        assert_eq!(encoded.len(), BATCH_HEADER_LEN);
        assert_eq!(encoded, borsh::to_vec(&header).unwrap());
        assert_eq!(borsh::from_slice::<BatchHeader>(&encoded).unwrap(), header);
    }

    #[test]
    fn an_honest_empty_batch_passes() {
        let (_, _, _, header) = fixture();
        let checked = check(header.clone(), vec![cp(1, 0)]).unwrap();
        assert_eq!(checked.hash(), header.hash());
        assert_eq!(checked.checkpoint(0), Some([1; 32]));
        assert_eq!(checked.checkpoint(1), Some([1; 32]));
        assert_eq!(checked.checkpoint(2), None);
    }

    #[test]
    fn every_rule_is_enforced_with_its_reason() {
        let (_, _, _, h) = fixture();
        let one = vec![cp(1, 0)];
        type Case = (BatchHeader, Vec<Checkpoint>, fn(&BatchError) -> bool);
        let cases: Vec<Case> = vec![
            (
                BatchHeader {
                    version: 1, // a v1 header is refused
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::Version { .. }),
            ),
            (
                BatchHeader {
                    chain_id: 8,
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::ChainId { .. }),
            ),
            (
                BatchHeader {
                    number: 2,
                    ..h.clone()
                },
                one.clone(),
                |e| {
                    matches!(
                        e,
                        BatchError::Number {
                            expected: 1,
                            got: 2
                        }
                    )
                },
            ),
            (
                BatchHeader {
                    parent: [0; 32],
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::Parent { .. }),
            ),
            (
                BatchHeader {
                    prev_state_root: [2; 32],
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::PrevStateRoot),
            ),
            (
                BatchHeader {
                    timestamp: 1000 + 600 + 7201,
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::TimestampDrift { .. }),
            ),
            (
                // One second before the origin block (v1 allowed 2 h either side).
                BatchHeader {
                    timestamp: 1000 + 600 - 1,
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::TimestampDrift { .. }),
            ),
            (
                // One second past origin + drift (30 min by default).
                BatchHeader {
                    timestamp: 1000 + 600 + 1801,
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::TimestampDrift { .. }),
            ),
            (
                BatchHeader {
                    l1_origin: L1Origin {
                        height: 3,
                        hash: [3; 32],
                    },
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::L1OriginNotBeforeAnchor { .. }),
            ),
            (
                BatchHeader {
                    l1_origin: L1Origin {
                        height: 2,
                        hash: [9; 32],
                    },
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::L1OriginNotAncestor { height: 2 }),
            ),
            (
                BatchHeader {
                    tx_count: 1,
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::TxCount { .. }),
            ),
            (
                BatchHeader {
                    tx_root: [0; 32],
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::TxRoot),
            ),
            (h.clone(), vec![cp(1, 0), cp(1, 0)], |e| {
                matches!(e, BatchError::CheckpointCount { txs: 0, got: 2 })
            }),
            (h.clone(), vec![cp(2, 0)], |e| {
                matches!(e, BatchError::TraceRoot)
            }),
            (
                BatchHeader {
                    state_root: [2; 32],
                    ..h.clone()
                },
                one.clone(),
                |e| matches!(e, BatchError::LastCheckpoint),
            ),
        ];
        for (i, (header, checkpoints, expected)) in cases.into_iter().enumerate() {
            let err = check(header, checkpoints).unwrap_err();
            assert!(expected(&err), "case {i}: {err}");
        }
    }

    #[test]
    fn the_origin_may_lag_the_anchor_by_at_most_the_sequencing_window() {
        // The fixture anchors at height 3 with origin 1: a lag of 2 blocks.
        let (mut g, parent, chain, h) = fixture();
        let batch = Batch::new(h, vec![cp(1, 0)], vec![]);
        g.sequencing_window = 2;
        assert!(batch.clone().check(&g, &parent, &chain, &[]).is_ok());
        g.sequencing_window = 1;
        assert_eq!(
            batch.check(&g, &parent, &chain, &[]).unwrap_err(),
            BatchError::L1OriginTooOld {
                anchor_height: 3,
                got: 1,
                window: 1
            }
        );
    }

    #[test]
    fn timestamps_and_origins_may_not_go_back() {
        let (g, _, chain, h) = fixture();
        let parent = ParentFacts {
            number: 1,
            hash: [5; 32],
            state_root: [1; 32],
            timestamp: 1800,
            l1_origin_height: 2,
        };
        let next = BatchHeader {
            number: 2,
            parent: [5; 32],
            ..h
        };
        let err = Batch::new(next.clone(), vec![cp(1, 0)], vec![])
            .check(&g, &parent, &chain, &[])
            .unwrap_err();
        assert_eq!(
            err,
            BatchError::TimestampBeforeParent {
                parent: 1800,
                got: 1700
            }
        );
        let later = BatchHeader {
            timestamp: 1800,
            ..next
        };
        let err = Batch::new(later, vec![cp(1, 0)], vec![])
            .check(&g, &parent, &chain, &[])
            .unwrap_err();
        assert_eq!(err, BatchError::L1OriginBeforeParent { parent: 2, got: 1 });
    }

    #[test]
    fn limits_are_enforced() {
        let (mut g, parent, chain, h) = fixture();
        g.max_batch_txs = 1;
        g.max_batch_bytes = 100;
        let err = Batch::new(h, vec![cp(1, 0)], vec![])
            .check(&g, &parent, &chain, &[])
            .unwrap_err();
        assert!(
            matches!(err, BatchError::TooLarge { max: 100, .. }),
            "{err}"
        );
        assert!(matches!(
            Batch::decode(&vec![0; MAX_BATCH_BYTES + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
