//! Replaying one batch against the verifier's own state: pure functions over values.
//!
//! [`replay_batch`] is the verifier's hot path. Over a [`NodeStore`] holding the batch's
//! `prev_state_root` it
//! 1. checks every signature of the batch at once on the rayon pool ([`VerifiedTxs::verify`]),
//!    overlapped with steps 2 and 3 run as if every signature were valid (the optimistic result
//!    is kept only when they all are);
//! 2. executes the segments the batch's checkpoints delimit with
//!    [`execute_verified_segments_parallel`]: txs of a segment whose access
//!    sets are disjoint run in parallel, falling back to sequential execution when a group strays
//!    outside its declared keys;
//! 3. applies each segment's change set to the Merkle tree (the tree's `apply` hashes large change
//!    sets in parallel) and compares each resulting root with the batch's claimed checkpoint;
//! 4. on the first wrong checkpoint or invalid tx, builds the [`FraudProof`] for that segment from
//!    the honest pre-state it just computed, encodes it ([`challenge_bytes`]) and has the [`Judge`]
//!    judge *those bytes* ([`Judge::judge_bytes`]) before handing them out. When any of the three
//!    steps fails the batch is still fraud, but one this verifier cannot prove:
//!    [`ReplayVerdict::Unprovable`] says which step failed and why, so the caller can alert
//!    instead of staying silent.
//!
//! A batch that executes L1 messages (protocol v3) runs its message segments first, in order,
//! with [`execute_messages`] (the messages come from derivation, which checked the header
//! commits to them); its tx segments then start from the state after the messages.
//!
//! [`replay_batch_sequential`] computes the same [`ReplayVerdict`] with the sequential reference
//! executor ([`BatchBuilder::replay`]); the two are bit-identical (property-tested), which is what
//! makes the parallel replay safe to challenge with.
//!
//! Neither function writes to the store: an honest verdict carries the [`TreeUpdate`] of each
//! segment, which together take the state from `prev_state_root` to the batch's `state_root`, for
//! the caller to persist (as one version: `RocksNodeStore::stage_commit`).

use std::ops::Range;

use stint_contracts::{
    execute_messages, execute_verified_segments, execute_verified_segments_parallel, AccountId,
    ExecError, MessageReceipt, Receipt, SegmentOutcome, VerifiedTxs,
};
use stint_protocol::{
    block_context, build_fraud_proof_restating, message_effects, message_segment_context, Batch,
    BatchBuilder, BatchHeader, BuildError, Checkpoint, DerivedSpan, Fraud, FraudProof, Genesis,
    Judge, L1Message, LayeredNodeStore, ProveError, Verdict,
};
use stint_state::{ChangeSet, Hash, NodeStore, SparseMerkleTree, StateError, TreeUpdate};

/// What replaying a batch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// Every checkpoint is what the batch claims.
    Honest(HonestBatch),
    /// The batch is fraudulent; the encoded proof has been checked by the judge.
    Fraud(Box<DetectedFraud>),
    /// The batch is fraudulent (a checkpoint or a tx is wrong), but no proof that the judge
    /// accepts could be made: building, encoding or judging it failed.
    Unprovable(Box<UnprovableFraud>),
}

/// The result of an honest batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HonestBatch {
    /// The checkpoints computed (equal to the batch's).
    pub checkpoints: Vec<Checkpoint>,
    /// One receipt per L1 message, in order.
    pub message_receipts: Vec<MessageReceipt>,
    /// One receipt per tx.
    pub receipts: Vec<Receipt>,
    /// The tree update of each segment, in order: the first starts from `prev_state_root`, the
    /// last ends at `state_root`. [`RocksNodeStore::stage_commit`] persists them as one version
    /// (their net effect), so replay never merkleizes the batch a second time.
    ///
    /// [`RocksNodeStore::stage_commit`]: stint_state::RocksNodeStore::stage_commit
    pub updates: Vec<TreeUpdate>,
}

impl HonestBatch {
    /// The state root after the batch (the last checkpoint).
    pub fn state_root(&self) -> Option<Hash> {
        self.updates.last().map(|u| u.root)
    }
}

/// A fraud found by replay, with its judged proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedFraud {
    /// The first fraudulent segment (1-based).
    pub segment: u64,
    /// What the judge found in it.
    pub fraud: Fraud,
    /// The proof to post (its `challenger` is the account given to the replay).
    pub proof: FraudProof,
    /// Its encoding: the exact bytes the judge found fraud in, and the payload to post.
    pub bytes: Vec<u8>,
}

/// The step of turning a detected fraud into a posted challenge that failed (see
/// [`ReplayVerdict::Unprovable`]; `Fit` and `Post` are the node's steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeStage {
    /// The proof could not be built from the pre-state.
    Build,
    /// The proof could not be encoded.
    Encode,
    /// The judge does not find fraud in the encoded proof (or rejects it).
    Judge,
    /// The envelope carrying the proof does not fit one reveal (`MAX_ENVELOPE_BODY`).
    Fit,
    /// Posting the envelope failed (or nothing can post: no key, no fee wallet).
    Post,
}

impl ChallengeStage {
    /// Its name in `stint_verifierStatus` and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeStage::Build => "build",
            ChallengeStage::Encode => "encode",
            ChallengeStage::Judge => "judge",
            ChallengeStage::Fit => "fit",
            ChallengeStage::Post => "post",
        }
    }
}

impl std::fmt::Display for ChallengeStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fraud replay found but could not prove (see [`ReplayVerdict::Unprovable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnprovableFraud {
    /// The first fraudulent segment (1-based).
    pub segment: u64,
    /// The step that failed: [`ChallengeStage::Build`], [`ChallengeStage::Encode`] or
    /// [`ChallengeStage::Judge`].
    pub stage: ChallengeStage,
    /// Why.
    pub reason: String,
}

/// The bytes a challenge carries for `proof`: the one place a proof is encoded for posting. An
/// empty encoding is an error (it must never be judged, stored or posted).
pub fn challenge_bytes(proof: &FraudProof) -> Result<Vec<u8>, String> {
    let bytes = proof.encode().map_err(|e| e.to_string())?;
    if bytes.is_empty() {
        return Err("the proof does not encode (empty encoding)".into());
    }
    Ok(bytes)
}

/// Encode `proof` against `segment` of the batch with `header` and have the judge decide on
/// the encoded bytes: [`ReplayVerdict::Fraud`] only when it finds fraud in them.
pub fn judge_proof(
    genesis: &Genesis,
    header: &BatchHeader,
    segment: u64,
    proof: FraudProof,
) -> ReplayVerdict {
    judge_proof_restating(genesis, header, &[], segment, proof)
}

/// [`judge_proof`] for a batch restating the derived batches `spans`.
pub fn judge_proof_restating(
    genesis: &Genesis,
    header: &BatchHeader,
    spans: &[DerivedSpan],
    segment: u64,
    proof: FraudProof,
) -> ReplayVerdict {
    let unprovable = |stage, reason: String| {
        ReplayVerdict::Unprovable(Box::new(UnprovableFraud {
            segment,
            stage,
            reason,
        }))
    };
    let bytes = match challenge_bytes(&proof) {
        Ok(bytes) => bytes,
        Err(reason) => return unprovable(ChallengeStage::Encode, reason),
    };
    let judged = FraudProof::decode(&bytes)
        .and_then(|decoded| Judge::judge_restating(genesis, header, &decoded, spans));
    match judged {
        Ok(Verdict::Fraud(fraud)) => ReplayVerdict::Fraud(Box::new(DetectedFraud {
            segment,
            fraud,
            proof,
            bytes,
        })),
        Ok(Verdict::NoFraud) => unprovable(
            ChallengeStage::Judge,
            format!("the judge finds no fraud in segment {segment}"),
        ),
        Err(e) => unprovable(
            ChallengeStage::Judge,
            format!("the judge rejects the proof: {e}"),
        ),
    }
}

/// Why a batch could not be replayed. Never caused by the batch's content: a fraudulent batch is
/// a [`ReplayVerdict::Fraud`], not an error.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The pre-state could not be read or the tree could not be updated.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// The executor failed for another reason than an invalid tx (our own state is corrupt).
    #[error("execution: {0}")]
    Execution(String),
}

impl From<BuildError> for ReplayError {
    fn from(error: BuildError) -> Self {
        match error {
            BuildError::State(e) => ReplayError::State(e),
            BuildError::Execution(e) | BuildError::Messages(e) => ReplayError::Execution(e),
        }
    }
}

fn exec_failure(error: ExecError) -> ReplayError {
    match error {
        ExecError::Internal(e) => ReplayError::State(e),
        other => ReplayError::Execution(other.to_string()),
    }
}

/// Replay `batch` over `store` (which must hold its `prev_state_root`) in parallel on the current
/// rayon pool; `messages` are the L1 messages it executes first (derivation's
/// [`batch_messages`](stint_protocol::Derivation::batch_messages)). See the module docs.
///
/// Checking the signatures is most of the work, so it runs on the pool *while* the batch is
/// executed and merkleized as if every signature were valid; that optimistic verdict stands when
/// they all are (the common case), and otherwise the batch is replayed again with the bad
/// signatures known, which makes it fraud at the first of them.
pub fn replay_batch<S: NodeStore + Sync, B: Sync>(
    genesis: &Genesis,
    store: &S,
    batch: &Batch<B>,
    messages: &[L1Message],
    challenger: AccountId,
) -> Result<ReplayVerdict, ReplayError> {
    replay_batch_restating(genesis, store, batch, messages, &[], challenger)
}

/// [`replay_batch`] of a batch restating the derived batches `spans` (derivation's
/// [`batch_spans`](stint_protocol::Derivation::batch_spans)): their message segments run at
/// their timestamps.
pub fn replay_batch_restating<S: NodeStore + Sync, B: Sync>(
    genesis: &Genesis,
    store: &S,
    batch: &Batch<B>,
    messages: &[L1Message],
    spans: &[DerivedSpan],
    challenger: AccountId,
) -> Result<ReplayVerdict, ReplayError> {
    let txs = batch.txs();
    let input = Input {
        genesis,
        batch,
        messages,
        spans,
        challenger,
    };
    let (verified, optimistic) = rayon::join(
        || VerifiedTxs::verify(txs),
        || {
            let assumed = VerifiedTxs::assume_valid(txs);
            replay_verified(&input, store, &assumed)
        },
    );
    if verified.first_bad_signature().is_none() {
        return optimistic;
    }
    replay_verified(&input, store, &verified)
}

/// What one replay is about.
struct Input<'a, B> {
    genesis: &'a Genesis,
    batch: &'a Batch<B>,
    messages: &'a [L1Message],
    spans: &'a [DerivedSpan],
    challenger: AccountId,
}

/// [`replay_batch`] with the signature checks done.
fn replay_verified<S: NodeStore + Sync, B>(
    input: &Input<'_, B>,
    store: &S,
    verified: &VerifiedTxs<'_>,
) -> Result<ReplayVerdict, ReplayError> {
    let Input {
        genesis,
        batch,
        messages,
        spans,
        ..
    } = *input;
    let header = batch.header();
    let context = block_context(genesis, header);
    let txs = batch.txs();
    let mut tree = SparseMerkleTree::new(LayeredNodeStore::new(store));
    let mut checkpoints = Vec::with_capacity(batch.checkpoints().len());
    let mut updates = Vec::with_capacity(batch.checkpoints().len());
    let mut message_receipts = Vec::with_capacity(messages.len());

    // The message segments, in order (derivation checked the header commits to `messages`).
    let message_segments = batch.message_segment_count();
    let mut root = header.prev_state_root;
    for j in 1..=message_segments {
        let slice = batch
            .segment_messages(j)
            .and_then(|range| messages.get(range))
            .ok_or_else(|| {
                ReplayError::Execution(format!("the L1 messages of segment {j} are missing"))
            })?;
        let range = batch.segment_messages(j).unwrap_or_default();
        let segment_context = message_segment_context(&context, spans, &range);
        let outcome = execute_messages(tree.view(root), &segment_context, &message_effects(slice))
            .map_err(exec_failure)?;
        let update = tree.apply(&root, &outcome.changes)?;
        let Some(claimed) = batch
            .checkpoint_at(j)
            .filter(|c| c.state_root == update.root)
        else {
            return prove(input, &tree, j);
        };
        tree.store_mut().write(&update);
        root = update.root;
        checkpoints.push(claimed);
        updates.push(update);
        message_receipts.extend(outcome.receipts);
    }

    let prev_root = root;
    // The tx segments the batch's checkpoints delimit (derivation checked they cover the txs).
    let ranges: Vec<Range<usize>> = batch.segment_ranges();
    // The segment (1-based) holding tx `index`.
    let segment_of = |index: usize| {
        ranges
            .iter()
            .position(|r| r.contains(&index))
            .map_or(0, |i| {
                (i as u64)
                    .saturating_add(1)
                    .saturating_add(message_segments)
            })
    };

    let executed =
        execute_verified_segments_parallel(tree.view(prev_root), &context, verified, &ranges);
    let (segments, invalid_at) = match executed {
        Ok(outcome) => (outcome.segments, None),
        Err(ExecError::Invalid { index, .. }) => {
            // Every tx before `index` is valid (signatures included), so the whole segments
            // before the invalid tx can be re-executed as pre-verified.
            let whole = segment_of(index)
                .saturating_sub(1)
                .saturating_sub(message_segments) as usize;
            let prefix = ranges.get(..whole).unwrap_or_default();
            let outcome = execute_verified_segments_parallel(
                tree.view(prev_root),
                &context,
                &VerifiedTxs::assume_valid(txs),
                prefix,
            )
            .map_err(exec_failure)?;
            (outcome.segments, Some(index))
        }
        Err(other) => return Err(exec_failure(other)),
    };
    // An empty batch still has one (empty) segment and one checkpoint.
    let segments = if segments.is_empty() && txs.is_empty() && messages.is_empty() {
        vec![SegmentOutcome {
            changes: ChangeSet::new(),
            receipts: Vec::new(),
            fees: 0,
        }]
    } else {
        segments
    };

    let mut root = prev_root;
    let mut receipts = Vec::with_capacity(txs.len());
    let mut fraud_segment = None;
    for (i, segment) in segments.iter().enumerate() {
        let j = (i as u64)
            .saturating_add(1)
            .saturating_add(message_segments);
        let update = tree.apply(&root, &segment.changes)?;
        let claimed = batch
            .checkpoint_at(j)
            .filter(|c| c.state_root == update.root);
        let Some(claimed) = claimed else {
            fraud_segment = Some(j);
            break;
        };
        tree.store_mut().write(&update);
        root = update.root;
        checkpoints.push(claimed);
        updates.push(update);
        receipts.extend(segment.receipts.iter().copied());
    }
    if fraud_segment.is_none() {
        if let Some(index) = invalid_at {
            fraud_segment = Some(segment_of(index));
        }
    }
    match fraud_segment {
        Some(segment) => prove(input, &tree, segment),
        None => Ok(ReplayVerdict::Honest(HonestBatch {
            checkpoints,
            message_receipts,
            receipts,
            updates,
        })),
    }
}

/// The reference: [`replay_batch`] computed with the sequential executor
/// ([`BatchBuilder::replay`]). Same verdict, bit for bit.
pub fn replay_batch_sequential<S: NodeStore, B>(
    genesis: &Genesis,
    store: &S,
    batch: &Batch<B>,
    messages: &[L1Message],
    challenger: AccountId,
) -> Result<ReplayVerdict, ReplayError> {
    let replay = BatchBuilder::new(genesis).replay_with_messages(store, batch, messages)?;
    let tree = SparseMerkleTree::new(replay.store);
    match replay.fraud_segment {
        Some(segment) => {
            let input = Input {
                genesis,
                batch,
                messages,
                spans: &[],
                challenger,
            };
            prove(&input, &tree, segment)
        }
        None => {
            // The tx segments start from the state after the message segments.
            let message_segments = usize::try_from(batch.message_segment_count()).unwrap_or(0);
            let prev_root = message_segments
                .checked_sub(1)
                .and_then(|i| replay.checkpoints.get(i))
                .map_or(batch.header().prev_state_root, |c| c.state_root);
            let final_root = replay
                .checkpoints
                .last()
                .map_or(prev_root, |c| c.state_root);
            // The merged update comes from sequential whole-batch execution.
            let outcome = execute_verified_segments(
                tree.view(prev_root),
                &block_context(genesis, batch.header()),
                &VerifiedTxs::verify(batch.txs()),
                &batch.segment_ranges(),
            )
            .map_err(exec_failure)?;
            let merged = tree.apply(&prev_root, &outcome.changes())?;
            if merged.root != final_root {
                return Err(ReplayError::Execution(
                    "sequential batch execution disagrees with segment replay".into(),
                ));
            }
            Ok(ReplayVerdict::Honest(HonestBatch {
                checkpoints: replay.checkpoints,
                message_receipts: replay.message_receipts,
                receipts: replay.receipts,
                updates: replay.updates,
            }))
        }
    }
}

/// Build the proof against `segment` from `tree` (holding its pre-state), encode it and have the
/// judge confirm the encoding ([`judge_proof`]). Only a failure to read our own state is an
/// error (retried); any other failure makes the fraud [`ReplayVerdict::Unprovable`].
fn prove<S: NodeStore, B>(
    input: &Input<'_, B>,
    tree: &SparseMerkleTree<S>,
    segment: u64,
) -> Result<ReplayVerdict, ReplayError> {
    let Input {
        genesis,
        batch,
        messages,
        spans,
        challenger,
    } = *input;
    match build_fraud_proof_restating(genesis, tree, batch, messages, spans, segment, challenger) {
        Ok(proof) => Ok(judge_proof_restating(
            genesis,
            batch.header(),
            spans,
            segment,
            proof,
        )),
        Err(ProveError::State(StateError::Internal(e))) => {
            Err(ReplayError::State(StateError::Internal(e)))
        }
        Err(e) => Ok(ReplayVerdict::Unprovable(Box::new(UnprovableFraud {
            segment,
            stage: ChallengeStage::Build,
            reason: e.to_string(),
        }))),
    }
}
