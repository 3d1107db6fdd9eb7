//! Fraud proofs and the judge that checks them (one round, no interaction).
//!
//! A [`FraudProof`] points at one segment `j` of an anchored batch and brings everything needed
//! to re-execute that segment with no database:
//! - the number of segments, and checkpoints `j - 1` and `j` ([`Checkpoint`]: state root and
//!   segment end) with their [Merkle proofs](MerkleProof) to the header's `trace_root`
//!   (checkpoint 0 is `(prev_state_root, 0)`; for `j = 1` the pre-checkpoint proof must be empty).
//!   The segment is the txs `[pre.tx_end, post.tx_end)`; `trace_root` binds the count, so a proof
//!   verifies for one `(index, count)` only;
//! - the segment's signed txs with their Merkle proofs to `tx_root` (by wtxid, so signatures are
//!   committed too; exactly the txs
//!   `[(j-1)·K, min(j·K, n))`, in order);
//! - for a *message segment* (protocol v3: the batch's first segments, covering items below
//!   `msg_count`), its L1 messages with their Merkle proofs to `msg_root` instead of txs;
//! - a [`StateWitness`] of the pre-state (checkpoint `j - 1`) covering every key the segment reads
//!   or writes;
//! - the challenger's L2 account.
//!
//! [`Judge::judge`] verifies all of it, executes the segment statelessly with
//! [`execute_segment`] (a message segment with [`execute_messages`], where an invalid forced tx
//! is skipped, not a fraud) and returns [`Verdict::Fraud`] when a tx is invalid or the resulting
//! root differs from checkpoint `j`, [`Verdict::NoFraud`] when the segment is honest, and a
//! [`JudgeError`] when the proof itself is bad (wrong target, bad path, a witness that misses a
//! key the segment needs, a pre-state record that does not decode). A rejected proof says nothing
//! about the batch.
//!
//! [`build_fraud_proof`] is the prover side: it executes the segment over the full pre-state
//! through a [`RecordingView`] to learn which keys it touches and builds the witness for them.
//!
//! Encoding: borsh, at most [`MAX_FRAUD_PROOF_BYTES`] (checked before any decoding work; every
//! segment a valid batch can hold has a proof within it, see [`crate::segment_cost`]), no
//! trailing bytes, canonical (re-encodes to the same bytes).

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use stint_contracts::{
    execute_messages, execute_segment, AccountId, BlockContext, ExecError, InvalidTxReason,
    SignedTx,
};
use stint_state::{
    Hash, InvalidState, Key, NodeStore, RecordingView, SparseMerkleTree, StateError, StateWitness,
    WitnessView,
};

use crate::{
    message_effects, message_leaves, message_segment_context, trace_leaves, tx_leaves, Batch,
    BatchHeader, Checkpoint, DerivedSpan, EncodeError, Genesis, L1Message, L1MessageKind,
    MerkleProof, MAX_CHECKPOINT_INTERVAL, MAX_FRAUD_PROOF_BYTES, MAX_MERKLE_DEPTH,
};

/// A one-round fraud proof against segment `segment` of batch `batch_number` (see module docs).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FraudProof {
    /// Number of the challenged batch.
    pub batch_number: u64,
    /// Header hash of the challenged batch.
    pub batch_hash: Hash,
    /// The challenged segment, 1-based.
    pub segment: u64,
    /// Number of segments (checkpoints) of the batch.
    pub segments: u64,
    /// Checkpoint `segment - 1` (`(prev_state_root, 0)` for segment 1).
    pub pre_checkpoint: Checkpoint,
    /// Its proof to `trace_root` (empty for segment 1).
    pub pre_proof: MerkleProof,
    /// Checkpoint `segment` as the batch claims it.
    pub post_checkpoint: Checkpoint,
    /// Its proof to `trace_root`.
    pub post_proof: MerkleProof,
    /// The segment's txs, in order.
    pub txs: Vec<SignedTx>,
    /// One proof to `tx_root` per tx.
    pub tx_proofs: Vec<MerkleProof>,
    /// The segment's L1 messages, in order, when it is a message segment (protocol v3; then
    /// `txs` is empty, and otherwise this is).
    pub messages: Vec<L1Message>,
    /// One proof to `msg_root` per message.
    pub message_proofs: Vec<MerkleProof>,
    /// Witness of the pre-state for every key the segment reads or writes.
    pub witness: StateWitness,
    /// Who challenges (the L2 account to credit once challenger rewards exist).
    pub challenger: AccountId,
}

/// The fraud a judge found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fraud {
    /// The segment holds an invalid tx.
    #[error("tx {index} of the batch is invalid: {reason}")]
    InvalidTx {
        /// Batch-wide index of the tx.
        index: u64,
        /// Why it is invalid.
        reason: InvalidTxReason,
    },
    /// Executing the segment gives another state root than the claimed checkpoint.
    #[error(
        "segment {segment} ends in state root {} but the batch claims {}",
        hex::encode(.computed),
        hex::encode(.claimed)
    )]
    WrongCheckpoint {
        /// The segment.
        segment: u64,
        /// Checkpoint claimed by the batch.
        claimed: Hash,
        /// Root computed by the judge.
        computed: Hash,
    },
}

/// The judge's finding on a well-formed proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The segment is fraudulent.
    Fraud(Fraud),
    /// The segment is honest.
    NoFraud,
}

/// Why a fraud proof is rejected (it proves nothing either way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    /// Larger than [`MAX_FRAUD_PROOF_BYTES`].
    #[error("fraud proof is {len} bytes, more than the maximum of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Not a canonical encoding.
    #[error("malformed fraud proof: {0}")]
    Malformed(String),
    /// It targets another batch than the one given.
    #[error("the proof targets batch {proof_number} with another hash than batch {batch_number}")]
    WrongBatch {
        /// Number in the proof.
        proof_number: u64,
        /// Number of the batch judged.
        batch_number: u64,
    },
    /// The segment index is not a segment of the batch.
    #[error("segment {segment} does not exist (the batch has {segments})")]
    WrongSegment {
        /// Segment in the proof.
        segment: u64,
        /// Number of segments of the batch.
        segments: u64,
    },
    /// A checkpoint proof does not lead to `trace_root` (or `prev_state_root` for segment 1).
    #[error("{which} checkpoint does not verify against the batch")]
    BadCheckpoint {
        /// `"pre"` or `"post"`.
        which: &'static str,
    },
    /// The checkpoints verify but do not delimit a segment of the batch's txs (a batch that
    /// passed derivation never has such checkpoints).
    #[error("checkpoints give the tx range [{start}, {end}), not a segment of {tx_count} txs")]
    BadSegmentRange {
        /// `pre.tx_end`.
        start: u32,
        /// `post.tx_end`.
        end: u32,
        /// The header's `tx_count`.
        tx_count: u32,
    },
    /// The number of txs (or tx proofs) is not the segment's length.
    #[error("segment has {expected} txs but the proof carries {txs} txs and {proofs} proofs")]
    WrongTxCount {
        /// Segment length.
        expected: u64,
        /// Txs carried.
        txs: usize,
        /// Tx proofs carried.
        proofs: usize,
    },
    /// A tx is not the batch's tx at its position.
    #[error("tx {index} of the proof is not the batch's tx at that position")]
    BadTxProof {
        /// Index within the proof.
        index: usize,
    },
    /// The witness does not verify against the pre-checkpoint.
    #[error("witness does not verify against the pre-checkpoint: {0}")]
    BadWitness(String),
    /// The witness does not cover a key the segment reads or writes.
    #[error("witness does not cover key {}", hex::encode(.0))]
    WitnessMissingKey(Key),
    /// A record in the pre-state does not decode: the fraud, if any, is in an earlier segment.
    #[error("pre-state is corrupt: {0}")]
    CorruptPreState(String),
    /// The executor failed for another reason.
    #[error("execution failed: {0}")]
    Execution(String),
}

/// Why a fraud proof could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The segment is not a segment of the batch.
    #[error("segment {segment} does not exist (the batch has {segments})")]
    WrongSegment {
        /// Segment asked for.
        segment: u64,
        /// Number of segments of the batch.
        segments: u64,
    },
    /// The batch's checkpoint list does not match its header (it was never checked).
    #[error("batch checkpoints or txs do not match its header")]
    Inconsistent,
    /// Reading the pre-state or executing failed.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// The executor failed for another reason than an invalid tx.
    #[error("execution: {0}")]
    Execution(String),
}

impl FraudProof {
    /// The canonical encoding. Fails (never with empty bytes) when the proof breaks an
    /// encoding bound, e.g. a witness of more than [`stint_state::MAX_MULTIPROOF_NODES`] nodes:
    /// such a proof could not be posted or judged.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        borsh::to_vec(self).map_err(|e| EncodeError::new("fraud proof", e))
    }

    /// Strictly decode a proof: size first, then borsh with no trailing bytes, canonical
    /// re-encoding and list bounds.
    pub fn decode(bytes: &[u8]) -> Result<Self, JudgeError> {
        if bytes.len() > MAX_FRAUD_PROOF_BYTES {
            return Err(JudgeError::TooLarge {
                len: bytes.len(),
                max: MAX_FRAUD_PROOF_BYTES,
            });
        }
        let proof: Self =
            borsh::from_slice(bytes).map_err(|e| JudgeError::Malformed(e.to_string()))?;
        let max_txs = MAX_CHECKPOINT_INTERVAL as usize;
        if proof.txs.len() > max_txs
            || proof.tx_proofs.len() > max_txs
            || proof.messages.len() > max_txs
            || proof.message_proofs.len() > max_txs
        {
            return Err(JudgeError::Malformed(format!(
                "more than {max_txs} txs, messages or proofs of them"
            )));
        }
        let too_deep = |p: &MerkleProof| p.siblings.len() > MAX_MERKLE_DEPTH;
        if too_deep(&proof.pre_proof)
            || too_deep(&proof.post_proof)
            || proof.tx_proofs.iter().any(too_deep)
            || proof.message_proofs.iter().any(too_deep)
        {
            return Err(JudgeError::Malformed(
                "merkle proof deeper than 32 levels".into(),
            ));
        }
        for (index, tx) in proof.txs.iter().enumerate() {
            tx.tx
                .call
                .check_bounds()
                .map_err(|e| JudgeError::Malformed(format!("tx {index}: {e}")))?;
        }
        for (index, message) in proof.messages.iter().enumerate() {
            if let L1MessageKind::Forced(forced) = &message.kind {
                forced
                    .tx
                    .tx
                    .call
                    .check_bounds()
                    .map_err(|e| JudgeError::Malformed(format!("message {index}: {e}")))?;
            }
        }
        if proof.encode().ok().as_deref() != Some(bytes) {
            return Err(JudgeError::Malformed("non-canonical encoding".into()));
        }
        Ok(proof)
    }
}

/// The block context every tx of a batch executes in.
pub fn block_context(genesis: &Genesis, header: &BatchHeader) -> BlockContext {
    BlockContext {
        chain_id: genesis.chain_id,
        timestamp: header.timestamp,
        fee_recipient: genesis.fee_recipient,
    }
}

/// The judge: a pure function from (genesis, batch header, proof) to a verdict.
#[derive(Clone, Copy, Debug, Default)]
pub struct Judge;

impl Judge {
    /// Decode and judge an encoded proof (the size bound is applied before decoding).
    pub fn judge_bytes(
        genesis: &Genesis,
        header: &BatchHeader,
        proof: &[u8],
    ) -> Result<Verdict, JudgeError> {
        Self::judge(genesis, header, &FraudProof::decode(proof)?)
    }

    /// Judge `proof` against the batch with header `header` (see the module docs), a batch
    /// that restates no derived batch.
    pub fn judge(
        genesis: &Genesis,
        header: &BatchHeader,
        proof: &FraudProof,
    ) -> Result<Verdict, JudgeError> {
        Self::judge_restating(genesis, header, proof, &[])
    }

    /// [`judge`](Self::judge) for a batch that restates the derived batches `spans`
    /// (derivation's [`batch_spans`](crate::Derivation::batch_spans)): their message segments
    /// execute at their timestamps.
    pub fn judge_restating(
        genesis: &Genesis,
        header: &BatchHeader,
        proof: &FraudProof,
        spans: &[DerivedSpan],
    ) -> Result<Verdict, JudgeError> {
        if proof.batch_number != header.number || proof.batch_hash != header.hash() {
            return Err(JudgeError::WrongBatch {
                proof_number: proof.batch_number,
                batch_number: header.number,
            });
        }
        let n = u64::from(header.tx_count);
        let segments = proof.segments;
        let j = proof.segment;
        if j == 0 || j > segments {
            return Err(JudgeError::WrongSegment {
                segment: j,
                segments,
            });
        }

        // Checkpoints j-1 and j (the root binds `segments`, so a wrong count fails here).
        let pre = proof.pre_checkpoint;
        let pre_ok = match j.checked_sub(2) {
            None => {
                pre == Checkpoint::new(header.prev_state_root, 0)
                    && proof.pre_proof.siblings.is_empty()
            }
            Some(index) => proof
                .pre_proof
                .verify(&header.trace_root, &pre.leaf(), index, segments),
        };
        if !pre_ok {
            return Err(JudgeError::BadCheckpoint { which: "pre" });
        }
        let post = proof.post_checkpoint;
        let post_index = j.saturating_sub(1);
        if !proof
            .post_proof
            .verify(&header.trace_root, &post.leaf(), post_index, segments)
        {
            return Err(JudgeError::BadCheckpoint { which: "post" });
        }
        let (start, end) = (u64::from(pre.tx_end), u64::from(post.tx_end));
        let m = u64::from(header.msg_count);
        let items = m.saturating_add(n);
        let bad_range = || JudgeError::BadSegmentRange {
            start: pre.tx_end,
            end: post.tx_end,
            tx_count: header.tx_count,
        };
        if start > end || end > items || (start == end && items != 0) || (start < m && end > m) {
            return Err(bad_range());
        }
        let expected = end.saturating_sub(start);
        let view = |proof: &FraudProof| {
            WitnessView::new(pre.state_root, &proof.witness)
                .map_err(|e| JudgeError::BadWitness(e.to_string()))
        };
        let context = block_context(genesis, header);
        let wrong_count = || JudgeError::WrongTxCount {
            expected,
            txs: proof.txs.len().saturating_add(proof.messages.len()),
            proofs: proof
                .tx_proofs
                .len()
                .saturating_add(proof.message_proofs.len()),
        };
        let changes = if end <= m && start < end {
            // A message segment: its messages, proven against `msg_root`.
            if !proof.txs.is_empty() || !proof.tx_proofs.is_empty() {
                return Err(wrong_count());
            }
            let leaves = proof.messages.iter().map(L1Message::leaf);
            verify_items(
                leaves,
                &proof.message_proofs,
                &header.msg_root,
                start,
                m,
                expected,
            )
            .map_err(|e| e.unwrap_or_else(wrong_count))?;
            let view = view(proof)?;
            let end = usize::try_from(end).unwrap_or(usize::MAX);
            let context = message_segment_context(&context, spans, &(0..end));
            let outcome = execute_messages(&view, &context, &message_effects(&proof.messages))
                .map_err(exec_failure)?;
            view.root_after(&outcome.changes).map_err(state_failure)?
        } else {
            // A tx segment: its txs, proven against `tx_root` (positions after the messages).
            if !proof.messages.is_empty() || !proof.message_proofs.is_empty() {
                return Err(wrong_count());
            }
            let first_tx = start.saturating_sub(m);
            let leaves = proof.txs.iter().map(SignedTx::wtxid);
            verify_items(
                leaves,
                &proof.tx_proofs,
                &header.tx_root,
                first_tx,
                n,
                expected,
            )
            .map_err(|e| e.unwrap_or_else(wrong_count))?;
            // Stateless execution on the witness.
            let view = view(proof)?;
            let outcome = match execute_segment(&view, &context, &proof.txs) {
                Ok(outcome) => outcome,
                Err(ExecError::Invalid { index, reason }) => {
                    let index = first_tx.saturating_add(index as u64);
                    return Ok(Verdict::Fraud(Fraud::InvalidTx { index, reason }));
                }
                Err(e) => return Err(exec_failure(e)),
            };
            view.root_after(&outcome.changes).map_err(state_failure)?
        };
        let computed = changes;
        if computed != post.state_root {
            return Ok(Verdict::Fraud(Fraud::WrongCheckpoint {
                segment: j,
                claimed: post.state_root,
                computed,
            }));
        }
        Ok(Verdict::NoFraud)
    }
}

/// Checks that `leaves` and `proofs` are `expected` each and that leaf `i` sits at position
/// `first + i` of the `count` items under `root`. `Err(None)`: a count is wrong (the caller
/// names it); `Err(Some(_))`: a path does not verify.
fn verify_items(
    leaves: impl ExactSizeIterator<Item = Hash>,
    proofs: &[MerkleProof],
    root: &Hash,
    first: u64,
    count: u64,
    expected: u64,
) -> Result<(), Option<JudgeError>> {
    if leaves.len() as u64 != expected || proofs.len() as u64 != expected {
        return Err(None);
    }
    for (i, (leaf, path)) in leaves.zip(proofs).enumerate() {
        let position = first
            .checked_add(i as u64)
            .ok_or(Some(JudgeError::BadTxProof { index: i }))?;
        if !path.verify(root, &leaf, position, count) {
            return Err(Some(JudgeError::BadTxProof { index: i }));
        }
    }
    Ok(())
}

/// The Merkle paths of the items at `positions` among `leaves`.
fn paths(
    leaves: &[Hash],
    positions: std::ops::Range<usize>,
) -> Result<Vec<MerkleProof>, ProveError> {
    positions
        .map(|position| MerkleProof::build(leaves, position).ok_or(ProveError::Inconsistent))
        .collect()
}

fn state_failure(error: StateError) -> JudgeError {
    match error {
        StateError::Invalid(InvalidState::KeyNotInWitness(key)) => {
            JudgeError::WitnessMissingKey(key)
        }
        other => JudgeError::Execution(other.to_string()),
    }
}

fn exec_failure(error: ExecError) -> JudgeError {
    match error {
        ExecError::Internal(state) => state_failure(state),
        ExecError::CorruptRecord { key, reason } => {
            JudgeError::CorruptPreState(format!("record {}: {reason}", hex::encode(key)))
        }
        other => JudgeError::Execution(other.to_string()),
    }
}

/// Build a fraud proof against segment `segment` of `batch`.
///
/// `tree` must hold the pre-state of the segment, i.e. the root `batch.checkpoint(segment - 1)`
/// (an honest verifier has it: it is the last checkpoint its own replay agreed with). The proof
/// is built whether or not the segment is actually fraudulent; check it with [`Judge::judge`]
/// before posting.
pub fn build_fraud_proof<S: NodeStore, B>(
    genesis: &Genesis,
    tree: &SparseMerkleTree<S>,
    batch: &Batch<B>,
    segment: u64,
    challenger: AccountId,
) -> Result<FraudProof, ProveError> {
    build_fraud_proof_with_messages(genesis, tree, batch, &[], segment, challenger)
}

/// [`build_fraud_proof`] for a batch that executes the L1 `messages` (the ones its header
/// commits to, from derivation's [`messages_due`](crate::Derivation::messages_due)).
pub fn build_fraud_proof_with_messages<S: NodeStore, B>(
    genesis: &Genesis,
    tree: &SparseMerkleTree<S>,
    batch: &Batch<B>,
    messages: &[L1Message],
    segment: u64,
    challenger: AccountId,
) -> Result<FraudProof, ProveError> {
    build_fraud_proof_restating(genesis, tree, batch, messages, &[], segment, challenger)
}

/// [`build_fraud_proof_with_messages`] for a batch restating the derived batches `spans`.
pub fn build_fraud_proof_restating<S: NodeStore, B>(
    genesis: &Genesis,
    tree: &SparseMerkleTree<S>,
    batch: &Batch<B>,
    messages: &[L1Message],
    spans: &[DerivedSpan],
    segment: u64,
    challenger: AccountId,
) -> Result<FraudProof, ProveError> {
    let header = batch.header();
    if usize::try_from(header.msg_count).ok() != Some(messages.len()) {
        return Err(ProveError::Inconsistent);
    }
    let segments = batch.segment_count();
    if segment == 0 || segment > segments {
        return Err(ProveError::WrongSegment { segment, segments });
    }
    let pre_index = segment.saturating_sub(1);
    let pre_checkpoint = batch
        .checkpoint_at(pre_index)
        .ok_or(ProveError::Inconsistent)?;
    let post_checkpoint = batch
        .checkpoint_at(segment)
        .ok_or(ProveError::Inconsistent)?;
    let leaves = trace_leaves(batch.checkpoints());
    let pre_proof = match segment.checked_sub(2) {
        None => MerkleProof::default(),
        Some(index) => {
            MerkleProof::build(&leaves, to_usize(index)?).ok_or(ProveError::Inconsistent)?
        }
    };
    let post_proof =
        MerkleProof::build(&leaves, to_usize(pre_index)?).ok_or(ProveError::Inconsistent)?;

    let context = block_context(genesis, header);
    let recording = RecordingView::new(tree.view(pre_checkpoint.state_root));
    let (txs, tx_proofs, segment_messages, message_proofs, written) =
        if let Some(range) = batch.segment_messages(segment) {
            let slice = messages
                .get(range.clone())
                .ok_or(ProveError::Inconsistent)?;
            let context = message_segment_context(&context, spans, &range);
            let proofs = paths(&message_leaves(messages), range)?;
            // Learn the keys the segment touches by running it over the full pre-state.
            let written: BTreeSet<Key> =
                match execute_messages(&recording, &context, &message_effects(slice)) {
                    Ok(outcome) => outcome.changes.keys().copied().collect(),
                    Err(ExecError::Internal(e)) => return Err(ProveError::State(e)),
                    Err(e) => return Err(ProveError::Execution(e.to_string())),
                };
            (Vec::new(), Vec::new(), slice.to_vec(), proofs, written)
        } else {
            let range = batch
                .segment_range(segment)
                .ok_or(ProveError::Inconsistent)?;
            let txs = batch
                .txs()
                .get(range.clone())
                .ok_or(ProveError::Inconsistent)?;
            let tx_proofs = paths(&tx_leaves(batch.txs()), range)?;
            // Learn the keys the segment touches by running it over the full pre-state.
            let written: BTreeSet<Key> = match execute_segment(&recording, &context, txs) {
                Ok(outcome) => outcome.changes.keys().copied().collect(),
                Err(ExecError::Invalid { .. }) => BTreeSet::new(),
                Err(ExecError::Internal(e)) => return Err(ProveError::State(e)),
                Err(e) => return Err(ProveError::Execution(e.to_string())),
            };
            (txs.to_vec(), tx_proofs, Vec::new(), Vec::new(), written)
        };
    let (_, mut keys) = recording.into_parts();
    keys.extend(written);
    let witness = tree.witness(&pre_checkpoint.state_root, &keys)?;

    Ok(FraudProof {
        batch_number: header.number,
        batch_hash: header.hash(),
        segment,
        segments,
        pre_checkpoint,
        pre_proof,
        post_checkpoint,
        post_proof,
        txs,
        tx_proofs,
        messages: segment_messages,
        message_proofs,
        witness,
        challenger,
    })
}

fn to_usize(value: u64) -> Result<usize, ProveError> {
    usize::try_from(value).map_err(|_| ProveError::Inconsistent)
}
