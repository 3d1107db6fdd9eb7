//! Benchmark 3: verifier replay throughput.
//!
//! Replaying a batch is what a verifier does for every batch it reads from Bitcoin: check every
//! signature, execute the txs segment by segment (`K` = [`SEGMENT_LEN`] txs), and compute each
//! segment's checkpoint state root with the sparse Merkle tree. Three implementations run here,
//! all keeping the checkpoint trees in a [`ReplayStore`]:
//!
//! - [`replay_sequential`]: the reference — the STF's sequential executor
//!   ([`execute_verified_batch`]) and one tree update per segment, on the calling thread.
//! - [`replay_phased`]: signatures checked in parallel ([`VerifiedTxs::verify`]), then every
//!   segment's txs executed by conflict groups ([`execute_verified_batch_parallel`]), then the
//!   checkpoint tree updates — one phase after the other.
//! - [`replay_parallel`]: the same work pipelined — signature checks, execution of the next
//!   chunk of segments and tree updates of the previous chunk all run at once on the pool.
//!
//! These three are studies of where replay time goes; the verifier's own code,
//! [`stint_verifier::replay_batch`], is measured by [`measure_verifier`] on recorded batches, and
//! the targets are judged there.
//!
//! The benchmark checks that every implementation produces the sequential checkpoints and
//! receipts before reporting a figure, and reports tx/s against the signature ceiling of
//! [`crate::signatures`]. Its phase note also times the checkpoint updates the way
//! `BatchBuilder::replay` keeps state ([`LayeredNodeStore`], every checkpoint's nodes kept).

use std::time::{Duration, Instant};

use anyhow::Context;
use stint_contracts::{
    execute_verified_batch, execute_verified_batch_parallel, BatchOutcome, BlockContext, Receipt,
    SignedTx, VerifiedTxs,
};
use stint_protocol::{Genesis, LayeredNodeStore};
use stint_state::{
    DigestMap, Hash, MemoryNodeStore, Node, NodeStore, Overlay, SparseMerkleTree, StateError,
    TreeUpdate, TreeView,
};

use crate::report::{Measure, Row, Target};
use crate::signatures::{self, SigCeiling};
use crate::timing::{best_of, cpu_timed, per_sec, pool};
use crate::workload::SEGMENT_LEN;

/// Replay throughput must reach this fraction of the all-thread signature ceiling.
pub const CEILING_TARGET: f64 = 0.85;
/// The 2-thread replay must be at least this much faster than the 1-thread replay.
pub const SPEEDUP_TARGET_2: f64 = 1.8;

/// The state a batch is replayed on: a node store holding `root`.
#[derive(Debug, Clone)]
pub struct PreState {
    store: MemoryNodeStore,
    root: Hash,
}

impl PreState {
    /// The genesis state of `genesis`.
    pub fn genesis(genesis: &Genesis) -> anyhow::Result<Self> {
        let update = genesis.state_update().context("genesis state")?;
        let root = update.root;
        let mut store = MemoryNodeStore::new();
        store.write_owned(update);
        Ok(Self { store, root })
    }

    /// The state root.
    pub fn root(&self) -> Hash {
        self.root
    }
}

/// The node store of one replay: the pre-state store below, and on top only the nodes of the
/// *latest* checkpoint tree that the replay wrote.
///
/// Each checkpoint's update removes the nodes it made stale from the top layer before adding its
/// new nodes, so the top layer stays the size of the state the batch touched instead of growing
/// with every intermediate checkpoint (what [`LayeredNodeStore`] does, keeping every version
/// readable). Intermediate checkpoint trees are not needed after the next checkpoint: a fraud
/// proof is built from a fresh sequential replay of the one bad segment.
#[derive(Debug)]
pub struct ReplayStore<'a> {
    base: &'a MemoryNodeStore,
    nodes: DigestMap<Node>,
    values: DigestMap<Vec<u8>>,
}

impl<'a> ReplayStore<'a> {
    /// An empty top layer over `base`.
    pub fn new(base: &'a MemoryNodeStore) -> Self {
        Self {
            base,
            nodes: DigestMap::default(),
            values: DigestMap::default(),
        }
    }

    /// Move to the tree after `update`: drop its stale nodes from the top layer, add its new ones.
    pub fn advance(&mut self, update: TreeUpdate) {
        for hash in &update.stale_nodes {
            if self.nodes.remove(hash).is_some() {
                self.values.remove(hash);
            }
        }
        self.nodes.extend(update.new_nodes);
        self.values.extend(update.new_values);
    }

    /// Nodes in the top layer.
    pub fn top_len(&self) -> usize {
        self.nodes.len()
    }
}

impl NodeStore for ReplayStore<'_> {
    fn get_node(&self, hash: &Hash) -> Result<Option<Node>, StateError> {
        match self.nodes.get(hash) {
            Some(node) => Ok(Some(*node)),
            None => self.base.get_node(hash),
        }
    }

    fn get_value(&self, leaf_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        match self.values.get(leaf_hash) {
            Some(value) => Ok(Some(value.clone())),
            None => self.base.get_value(leaf_hash),
        }
    }
}

/// Wall-clock time of each replay phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Txids and signature checks.
    pub signatures: Duration,
    /// Executing the txs (and, in the parallel replay, the overlapped tree updates).
    pub execution: Duration,
    /// Tree updates not overlapped with execution.
    pub merkle: Duration,
}

/// What a replay computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOutput {
    /// The checkpoint state root after every segment.
    pub checkpoints: Vec<Hash>,
    /// Every receipt, in tx order.
    pub receipts: Vec<Receipt>,
    /// Where the time went.
    pub phases: Phases,
}

impl ReplayOutput {
    /// The final state root.
    pub fn root(&self) -> Option<Hash> {
        self.checkpoints.last().copied()
    }
}

fn check_signatures(verified: &VerifiedTxs<'_>) -> anyhow::Result<()> {
    match verified.first_bad_signature() {
        None => Ok(()),
        Some(index) => anyhow::bail!("tx {index} has a bad signature: the batch is invalid"),
    }
}

/// Compute the checkpoints of `outcome` over a [`ReplayStore`] on `pre`.
fn checkpoints(pre: &PreState, outcome: &BatchOutcome) -> anyhow::Result<Vec<Hash>> {
    let mut tree = SparseMerkleTree::new(ReplayStore::new(&pre.store));
    let mut root = pre.root;
    let mut out = Vec::with_capacity(outcome.segments.len());
    for segment in &outcome.segments {
        let update = tree.apply(&root, &segment.changes)?;
        root = update.root;
        tree.store_mut().advance(update);
        out.push(root);
    }
    Ok(out)
}

/// [`checkpoints`] the way `BatchBuilder::replay` keeps state: every checkpoint's nodes stay in a
/// [`LayeredNodeStore`]. For the profile note only.
fn checkpoints_keep_all(pre: &PreState, outcome: &BatchOutcome) -> anyhow::Result<Vec<Hash>> {
    let mut tree = SparseMerkleTree::new(LayeredNodeStore::new(&pre.store));
    let mut root = pre.root;
    let mut out = Vec::with_capacity(outcome.segments.len());
    for segment in &outcome.segments {
        let update = tree.apply(&root, &segment.changes)?;
        tree.store_mut().write(&update);
        root = update.root;
        out.push(root);
    }
    Ok(out)
}

/// The sequential reference replay of `txs` on `pre` (see the module docs). Signature checks use
/// the current rayon pool: run it inside a 1-thread pool for a fully sequential figure.
pub fn replay_sequential(
    pre: &PreState,
    ctx: &BlockContext,
    txs: &[SignedTx],
) -> anyhow::Result<ReplayOutput> {
    let t0 = Instant::now();
    let verified = VerifiedTxs::verify(txs);
    check_signatures(&verified)?;
    let t1 = Instant::now();
    let base = SparseMerkleTree::new(&pre.store);
    let outcome = execute_verified_batch(base.view(pre.root), ctx, &verified, SEGMENT_LEN)?;
    let t2 = Instant::now();
    let checkpoints = checkpoints(pre, &outcome)?;
    let t3 = Instant::now();
    Ok(ReplayOutput {
        checkpoints,
        receipts: outcome.receipts().copied().collect(),
        phases: Phases {
            signatures: t1 - t0,
            execution: t2 - t1,
            merkle: t3 - t2,
        },
    })
}

/// The phased parallel replay on the current rayon pool: all signatures (parallel), then all
/// segments (conflict groups in parallel), then the checkpoint tree updates, one phase after the
/// other. Kept as the baseline of [`replay_parallel`].
pub fn replay_phased(
    pre: &PreState,
    ctx: &BlockContext,
    txs: &[SignedTx],
) -> anyhow::Result<ReplayOutput> {
    let t0 = Instant::now();
    let verified = VerifiedTxs::verify(txs);
    check_signatures(&verified)?;
    let t1 = Instant::now();
    let base = SparseMerkleTree::new(&pre.store);
    let view: TreeView<'_, &MemoryNodeStore> = base.view(pre.root);
    let outcome = execute_verified_batch_parallel(view, ctx, &verified, SEGMENT_LEN)?;
    let t2 = Instant::now();
    let checkpoints = checkpoints(pre, &outcome)?;
    let t3 = Instant::now();
    Ok(ReplayOutput {
        checkpoints,
        receipts: outcome.receipts().copied().collect(),
        phases: Phases {
            signatures: t1 - t0,
            execution: t2 - t1,
            merkle: t3 - t2,
        },
    })
}

/// Segments executed per pipeline step of [`replay_parallel`].
pub const PIPELINE_SEGMENTS: usize = 8;

/// The parallel replay of `txs` on `pre` on the current rayon pool (see the module docs).
///
/// Three kinds of work overlap: the signature checks of the whole batch; the execution of chunk
/// `i + 1` ([`PIPELINE_SEGMENTS`] segments, each by conflict groups); and the checkpoint tree
/// updates of chunk `i`. Execution does not wait for the signature checks: it runs on the txs
/// as if their signatures were valid, and the result is only returned once every signature
/// verified, so it is exactly the result of checking first. A bad signature fails the replay
/// (the batch is invalid; a fraud proof is then built from the sequential replay).
pub fn replay_parallel(
    pre: &PreState,
    ctx: &BlockContext,
    txs: &[SignedTx],
) -> anyhow::Result<ReplayOutput> {
    let t0 = Instant::now();
    let (verified, replayed) = rayon::join(
        || {
            let verified = VerifiedTxs::verify(txs);
            (verified, t0.elapsed())
        },
        || pipeline(pre, ctx, txs),
    );
    let (verified, sig_time) = verified;
    check_signatures(&verified)?;
    let (checkpoints, receipts) = replayed?;
    Ok(ReplayOutput {
        checkpoints,
        receipts,
        phases: Phases {
            signatures: sig_time,
            execution: t0.elapsed(),
            merkle: Duration::ZERO,
        },
    })
}

type Chunk = (Vec<Hash>, Vec<Receipt>);

/// Execution of chunk `i + 1` overlapped with the tree updates of chunk `i`.
fn pipeline(pre: &PreState, ctx: &BlockContext, txs: &[SignedTx]) -> anyhow::Result<Chunk> {
    let base = SparseMerkleTree::new(&pre.store);
    let mut state = Overlay::new(base.view(pre.root));
    let mut tree = SparseMerkleTree::new(ReplayStore::new(&pre.store));
    let mut root = pre.root;
    let mut checkpoints = Vec::with_capacity(txs.len().div_ceil(SEGMENT_LEN));
    let mut receipts = Vec::with_capacity(txs.len());
    let chunk_len = SEGMENT_LEN * PIPELINE_SEGMENTS;
    let mut chunks = if txs.is_empty() {
        vec![txs].into_iter()
    } else {
        txs.chunks(chunk_len).collect::<Vec<_>>().into_iter()
    };
    let mut executed: Option<BatchOutcome> = None;
    loop {
        let next = chunks.next();
        let (outcome, merkle) = rayon::join(
            || -> anyhow::Result<Option<BatchOutcome>> {
                let Some(chunk) = next else {
                    return Ok(None);
                };
                // Signatures are checked alongside (see `replay_parallel`).
                let v = VerifiedTxs::assume_valid(chunk);
                let outcome = execute_verified_batch_parallel(&state, ctx, &v, SEGMENT_LEN)?;
                Ok(Some(outcome))
            },
            || -> anyhow::Result<()> {
                if let Some(done) = &executed {
                    for segment in &done.segments {
                        let update = tree.apply(&root, &segment.changes)?;
                        root = update.root;
                        tree.store_mut().advance(update);
                        checkpoints.push(root);
                    }
                }
                Ok(())
            },
        );
        merkle?;
        if let Some(done) = executed.take() {
            receipts.extend(done.receipts().copied());
        }
        match outcome? {
            Some(outcome) => {
                for segment in &outcome.segments {
                    state.extend(segment.changes.clone());
                }
                executed = Some(outcome);
            }
            None => break,
        }
    }
    Ok((checkpoints, receipts))
}

/// Replay figures of one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayFigures {
    /// Workload name (`transfers`, `mix`).
    pub workload: String,
    /// Txs replayed.
    pub txs: usize,
    /// Sequential reference on 1 thread, tx/s.
    pub sequential: f64,
    /// Phased parallel replay on `threads` threads, tx/s.
    pub phased: f64,
    /// Parallel (pipelined) replay on 1 thread, tx/s.
    pub one: f64,
    /// Parallel (pipelined) replay on `threads` threads, tx/s.
    pub all: f64,
    /// Thread count of `all`.
    pub threads: usize,
    /// Signature ceiling on 1 thread measured alternately with the 1-thread replays, sig/s.
    pub ceiling_one: f64,
    /// Signature ceiling on `threads` threads measured alternately with those replays, sig/s.
    pub ceiling_all: f64,
    /// Pipelined replay on 1 thread and the signature ceiling on 1 thread, per CPU-second
    /// (tx and signatures per second of process CPU time), when the OS reports CPU time.
    pub cpu_one: Option<(f64, f64)>,
    /// Phases of the best sequential run (the per-phase profile).
    pub phases_sequential: Phases,
    /// Phases of the best phased run on `threads` threads.
    pub phases_phased: Phases,
    /// The sequential checkpoint updates keeping every checkpoint's nodes (the
    /// [`LayeredNodeStore`] way) instead of a [`ReplayStore`], 1 thread.
    pub merkle_keep_all: Duration,
    /// Throughput of the pipelined replay for each thread count of the sweep, `(threads, tx/s)`.
    pub sweep: Vec<(usize, f64)>,
    /// The final state root (equal in every implementation and thread count).
    pub root: Hash,
    /// Receipts whose call failed (0 for the generated workloads).
    pub failed_calls: usize,
}

/// What [`measure`]'s alternating runs found for one thread count.
struct Interleaved {
    /// Best wall-clock time of the pipelined replay.
    elapsed: Duration,
    /// Best signature ceiling, sig/s.
    ceiling: f64,
    /// Least CPU time of the replay and of the ceiling run.
    cpu: Option<(Duration, Duration)>,
}

type ReplayFn = fn(&PreState, &BlockContext, &[SignedTx]) -> anyhow::Result<ReplayOutput>;

/// Replay `txs` on `pre` with every implementation; fails if any result differs from the
/// sequential reference. `sweep` lists the thread counts to measure for the chart.
///
/// The signature ceiling is measured again on the workload's own signatures, alternating with
/// the replay runs of the same thread count (best of `reps` each), so that a ratio compares two
/// figures taken under the same load even on a shared machine.
pub fn measure(
    workload: &str,
    pre: &PreState,
    ctx: &BlockContext,
    txs: &[SignedTx],
    threads: usize,
    reps: usize,
    sweep: &[usize],
) -> anyhow::Result<ReplayFigures> {
    let sig_inputs = signatures::prepare(txs);
    let single = pool(1)?;
    let (seq_time, reference) =
        best_of(reps, || single.install(|| replay_sequential(pre, ctx, txs)))?;
    let root = reference.root().context("no checkpoint")?;
    let merkle_keep_all = single.install(|| -> anyhow::Result<Duration> {
        // Signatures were checked by the reference replay.
        let verified = VerifiedTxs::assume_valid(txs);
        let base = SparseMerkleTree::new(&pre.store);
        let outcome = execute_verified_batch(base.view(pre.root), ctx, &verified, SEGMENT_LEN)?;
        let start = Instant::now();
        let checkpoints = checkpoints_keep_all(pre, &outcome)?;
        let elapsed = start.elapsed();
        anyhow::ensure!(
            checkpoints == reference.checkpoints,
            "{workload}: keep-all checkpoints differ"
        );
        Ok(elapsed)
    })?;
    let check = |out: &ReplayOutput, n: usize| -> anyhow::Result<()> {
        anyhow::ensure!(
            out.checkpoints == reference.checkpoints,
            "{workload}: parallel replay on {n} threads diverged from the sequential checkpoints"
        );
        anyhow::ensure!(
            out.receipts == reference.receipts,
            "{workload}: parallel replay on {n} threads produced different receipts"
        );
        Ok(())
    };
    let run = |f: ReplayFn, n: usize| -> anyhow::Result<(Duration, ReplayOutput)> {
        let pool = pool(n)?;
        let (elapsed, out) = best_of(reps, || pool.install(|| f(pre, ctx, txs)))?;
        check(&out, n)?;
        Ok((elapsed, out))
    };
    // The pipelined replay and the ceiling, alternately, best of `reps` each; also their CPU
    // time (least of `reps`), which a shared machine disturbs far less than wall-clock time.
    let interleaved = |n: usize| -> anyhow::Result<Interleaved> {
        let pool = pool(n)?;
        let mut best: Option<Duration> = None;
        let mut ceiling = 0.0f64;
        let (mut replay_cpu, mut sig_cpu): (Option<Duration>, Option<Duration>) = (None, None);
        let least = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for _ in 0..reps.max(1) {
            let (cpu, rate) = cpu_timed(|| signatures::verifications_per_sec(&sig_inputs, n, 1))?;
            ceiling = ceiling.max(rate);
            sig_cpu = least(sig_cpu, cpu);
            let start = Instant::now();
            let (cpu, out) = cpu_timed(|| pool.install(|| replay_parallel(pre, ctx, txs)))?;
            let elapsed = start.elapsed();
            check(&out, n)?;
            replay_cpu = least(replay_cpu, cpu);
            best = Some(best.map_or(elapsed, |b| b.min(elapsed)));
        }
        Ok(Interleaved {
            elapsed: best.context("no run")?,
            ceiling,
            cpu: replay_cpu.zip(sig_cpu),
        })
    };
    let (phased_time, phased_out) = run(replay_phased, threads)?;
    let one = interleaved(1)?;
    let all = interleaved(threads)?;
    let (one_time, ceiling_one) = (one.elapsed, one.ceiling);
    let (all_time, ceiling_all) = (all.elapsed, all.ceiling);
    let per_cpu_sec = |cpu: Duration| per_sec(txs.len(), cpu);
    let cpu_one = one
        .cpu
        .map(|(replay, sig)| (per_cpu_sec(replay), per_cpu_sec(sig)));
    let mut points = Vec::new();
    for &n in sweep {
        let elapsed = match n {
            1 => one_time,
            n if n == threads => all_time,
            n => run(replay_parallel, n)?.0,
        };
        points.push((n, per_sec(txs.len(), elapsed)));
    }
    Ok(ReplayFigures {
        workload: workload.to_string(),
        txs: txs.len(),
        sequential: per_sec(txs.len(), seq_time),
        phased: per_sec(txs.len(), phased_time),
        one: per_sec(txs.len(), one_time),
        all: per_sec(txs.len(), all_time),
        threads,
        ceiling_one,
        ceiling_all,
        cpu_one,
        phases_sequential: reference.phases,
        phases_phased: phased_out.phases,
        merkle_keep_all,
        sweep: points,
        root,
        failed_calls: reference
            .receipts
            .iter()
            .filter(|r| r.error.is_some())
            .count(),
    })
}

impl ReplayFigures {
    /// The table rows. The pipelined figures are judged against the ceiling measured alongside
    /// them; the sequential and phased ones against the suite's `ceiling` (benchmark 1).
    pub fn rows(&self, ceiling: &SigCeiling) -> Vec<Row> {
        let w = &self.workload;
        let n = self.threads;
        let speedup = self.all / self.one;
        let ceiling_speedup = self.ceiling_all / self.ceiling_one;
        let speedup_row = Row::new(
            format!("replay.{w}.speedup"),
            format!("replay {w}: pipelined speed-up {n} threads / 1 thread"),
            Measure::new(speedup, "×"),
        )
        .against(
            "sig ceiling's speed-up, same runs",
            Measure::new(ceiling_speedup, "×"),
        );
        let (replay_cpu, sig_cpu) = self.cpu_one.unwrap_or((0.0, 0.0));
        let cpu_row = Row::new(
            format!("replay.{w}.cpu"),
            format!("replay {w}: pipelined, 1 thread, per CPU-second"),
            Measure::new(replay_cpu, "tx/cpu-s"),
        )
        .against(
            "sig ceiling per CPU-second, same runs",
            Measure::new(sig_cpu, "sig/cpu-s"),
        );
        vec![
            Row::new(
                format!("replay.{w}.sequential"),
                format!(
                    "replay {w} ({} txs): sequential reference, 1 thread",
                    self.txs
                ),
                Measure::new(self.sequential, "tx/s"),
            )
            .against("sig ceiling, 1 thread", Measure::new(ceiling.one, "sig/s")),
            Row::new(
                format!("replay.{w}.phased"),
                format!("replay {w}: phased (sigs, then exec, then merkle), {n} threads"),
                Measure::new(self.phased, "tx/s"),
            )
            .against(
                format!("sig ceiling, {} threads", ceiling.threads),
                Measure::new(ceiling.all, "sig/s"),
            ),
            Row::new(
                format!("replay.{w}.1"),
                format!("replay {w}: pipelined, 1 thread"),
                Measure::new(self.one, "tx/s"),
            )
            .against(
                "sig ceiling, 1 thread, same runs",
                Measure::new(self.ceiling_one, "sig/s"),
            ),
            cpu_row,
            Row::new(
                format!("replay.{w}.all"),
                format!("replay {w}: pipelined, {n} threads"),
                Measure::new(self.all, "tx/s"),
            )
            .against(
                format!("sig ceiling, {n} threads, same runs"),
                Measure::new(self.ceiling_all, "sig/s"),
            ),
            speedup_row,
        ]
    }

    /// Where the time of the sequential and phased replays went, per tx.
    pub fn phase_note(&self) -> String {
        let us = |d: Duration| d.as_secs_f64() * 1e6 / self.txs.max(1) as f64;
        let s = self.phases_sequential;
        let p = self.phases_phased;
        format!(
            "replay {} ({} txs), µs per tx — sequential, 1 thread: signatures {:.1}, execution \
             {:.1}, merkle {:.1} (keeping every checkpoint's nodes: {:.1}); phased, {} threads: \
             signatures {:.1}, execution {:.1}, merkle {:.1}",
            self.workload,
            self.txs,
            us(s.signatures),
            us(s.execution),
            us(s.merkle),
            us(self.merkle_keep_all),
            self.threads,
            us(p.signatures),
            us(p.execution),
            us(p.merkle),
        )
    }
}

/// The verifier's own replay ([`stint_verifier::replay_batch`]) of recorded batches: what a
/// watchtower runs for every batch it reads from Bitcoin (signatures overlapped with optimistic
/// execution, conflict-group execution, checkpoint Merkle updates, the merged update to persist).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifierReplay {
    /// Workload name.
    pub workload: String,
    /// Batches replayed (full batches, as the honest builder seals them).
    pub batches: usize,
    /// Txs in them.
    pub txs: usize,
    /// tx/s on 1 thread.
    pub one: f64,
    /// tx/s on `threads` threads.
    pub all: f64,
    /// Thread count of `all`.
    pub threads: usize,
    /// Signature ceiling on 1 thread, measured alternately with the 1-thread replays.
    pub ceiling_one: f64,
    /// Signature ceiling on `threads` threads, measured alternately with those replays.
    pub ceiling_all: f64,
}

/// Record `txs` into batches with the honest builder and time `stint_verifier::replay_batch`
/// over all of them, on 1 and on `threads` threads (best of `reps`, alternating with the
/// signature ceiling on the same txs). Every batch must replay as honest.
pub fn measure_verifier(
    workload: &str,
    genesis: &Genesis,
    txs: &[SignedTx],
    threads: usize,
    reps: usize,
) -> anyhow::Result<VerifierReplay> {
    let recorded = crate::workload::record_batches(workload, genesis, txs.to_vec())?;
    let sig_inputs = signatures::prepare(txs);
    let challenger = stint_contracts::AccountId([0xcc; 32]);
    let replay_all = || -> anyhow::Result<()> {
        for batch in &recorded.batches {
            match stint_verifier::replay_batch(genesis, &recorded.store, batch, &[], challenger)? {
                stint_verifier::ReplayVerdict::Honest(_) => {}
                stint_verifier::ReplayVerdict::Fraud(f) => {
                    anyhow::bail!(
                        "{workload}: honest batch {} replayed as fraud in segment {}",
                        batch.header().number,
                        f.segment
                    )
                }
                stint_verifier::ReplayVerdict::Unprovable(u) => {
                    anyhow::bail!(
                        "{workload}: honest batch {} replayed as unprovable fraud in segment {}",
                        batch.header().number,
                        u.segment
                    )
                }
            }
        }
        Ok(())
    };
    let timed = |n: usize| -> anyhow::Result<(f64, f64)> {
        let pool = pool(n)?;
        let mut best: Option<Duration> = None;
        let mut ceiling = 0.0f64;
        for _ in 0..reps.max(1) {
            ceiling = ceiling.max(signatures::verifications_per_sec(&sig_inputs, n, 1)?);
            let start = Instant::now();
            pool.install(replay_all)?;
            let elapsed = start.elapsed();
            best = Some(best.map_or(elapsed, |b| b.min(elapsed)));
        }
        Ok((per_sec(txs.len(), best.context("no run")?), ceiling))
    };
    let (one, ceiling_one) = timed(1)?;
    let (all, ceiling_all) = timed(threads)?;
    Ok(VerifierReplay {
        workload: workload.to_owned(),
        batches: recorded.batches.len(),
        txs: txs.len(),
        one,
        all,
        threads,
        ceiling_one,
        ceiling_all,
    })
}

impl VerifierReplay {
    /// The table rows; the targets apply here, to the verifier's own code.
    pub fn rows(&self) -> Vec<Row> {
        let w = &self.workload;
        let n = self.threads;
        let mut speedup = Row::new(
            format!("verifier.{w}.speedup"),
            format!("verifier replay {w}: speed-up {n} threads / 1 thread"),
            Measure::new(self.all / self.one, "×"),
        )
        .against(
            "sig ceiling's speed-up, same runs",
            Measure::new(self.ceiling_all / self.ceiling_one, "×"),
        );
        if n == 2 {
            speedup = speedup.with_target(Target::ValueAtLeast(SPEEDUP_TARGET_2));
        }
        vec![
            Row::new(
                format!("verifier.{w}.1"),
                format!(
                    "verifier replay_batch {w} ({} txs in {} batches), 1 thread",
                    self.txs, self.batches
                ),
                Measure::new(self.one, "tx/s"),
            )
            .against(
                "sig ceiling, 1 thread, same runs",
                Measure::new(self.ceiling_one, "sig/s"),
            ),
            Row::new(
                format!("verifier.{w}.all"),
                format!("verifier replay_batch {w}, {n} threads"),
                Measure::new(self.all, "tx/s"),
            )
            .against(
                format!("sig ceiling, {n} threads, same runs"),
                Measure::new(self.ceiling_all, "sig/s"),
            )
            .with_target(Target::AtLeast(CEILING_TARGET)),
            speedup,
        ]
    }
}
