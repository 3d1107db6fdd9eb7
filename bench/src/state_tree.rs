//! Benchmark 4: state tree update rate and proof size against the peer, Penumbra's `jmt`.
//!
//! Both trees hold the same keys (`SHA256(i)` for `i < keys`) with the same values and hash with
//! SHA-256 (`jmt` through its `SimpleHasher` impl for [`sha2::Sha256`]; keys are already hashes,
//! so they are given to `jmt` as its key hashes). Both live in memory: Stint's
//! [`MemoryNodeStore`], and for `jmt` [`JmtMemoryStore`], a `HashMap` store in the style of
//! `jmt`'s own mock store. A round is one version: a batch of updates of existing keys, applied
//! and written to the store; the rate is updates per second over all rounds, the contenders
//! taking turns round by round. `jmt` is single-threaded, so the like-for-like ratio is Stint's
//! 1-thread rate; the all-thread rate is reported beside it.
//!
//! Proof sizes are the serialized inclusion proofs of sampled keys: Stint's canonical encoding
//! ([`stint_state::SparseMerkleProof::to_bytes`]) and `jmt`'s borsh encoding. Every sampled proof
//! is verified against its root.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use sha2::Sha256;
use stint_state::{sha256, ChangeSet, Hash, Key, MemoryNodeStore, SparseMerkleTree, EMPTY_HASH};

use crate::report::{Measure, Row, Target};
use crate::timing::pool;

/// Stint's tree must update at least this many times faster than `jmt`.
pub const JMT_TARGET: f64 = 3.0;
/// Keys inserted per version while building the initial trees.
const BUILD_CHUNK: usize = 10_000;

/// `jmt`'s tree over [`JmtMemoryStore`] with SHA-256.
type Jmt<'a> = JellyfishMerkleTree<'a, JmtMemoryStore, Sha256>;

/// An in-memory node store for `jmt`: nodes by node key, values by key hash with their history.
#[derive(Debug, Default)]
pub struct JmtMemoryStore {
    nodes: HashMap<NodeKey, Node>,
    values: HashMap<KeyHash, Vec<(Version, Option<OwnedValue>)>>,
}

impl JmtMemoryStore {
    /// Persist a tree update (nodes and values; stale nodes are kept, like Stint's store).
    pub fn write(&mut self, batch: TreeUpdateBatch) {
        let node_batch = batch.node_batch;
        for (key, node) in node_batch.nodes() {
            self.nodes.insert(key.clone(), node.clone());
        }
        for ((version, key_hash), value) in node_batch.values() {
            self.values
                .entry(*key_hash)
                .or_default()
                .push((*version, value.clone()));
        }
    }
}

impl TreeReader for JmtMemoryStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.get(node_key).cloned())
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.values.get(&key_hash).and_then(|history| {
            history
                .iter()
                .rev()
                .find(|(version, _)| *version <= max_version)
                .and_then(|(_, value)| value.clone())
        }))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("state restoration is not used by the benchmark")
    }
}

/// Sizes of one tree benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeParams {
    /// Keys in each tree.
    pub keys: usize,
    /// Updates per version.
    pub batch: usize,
    /// Versions applied (timed).
    pub rounds: usize,
    /// Keys whose proofs are measured.
    pub proofs: usize,
}

/// The results.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeFigures {
    /// The parameters.
    pub params: TreeParams,
    /// Stint, updates/s on 1 thread.
    pub stint_one: f64,
    /// Stint, updates/s on `threads` threads.
    pub stint_all: f64,
    /// Thread count of `stint_all`.
    pub threads: usize,
    /// `jmt`, updates/s.
    pub jmt: f64,
    /// Mean inclusion proof size in bytes, Stint.
    pub stint_proof_bytes: f64,
    /// Mean inclusion proof size in bytes, `jmt`.
    pub jmt_proof_bytes: f64,
}

fn key(i: usize) -> Key {
    sha256(&(i as u64).to_le_bytes())
}

fn value(i: usize, round: usize) -> Vec<u8> {
    [(i as u64).to_le_bytes(), (round as u64).to_le_bytes()].concat()
}

/// The update batches: `rounds` batches of `batch` distinct existing keys.
fn update_batches(p: &TreeParams) -> Vec<Vec<(Key, Vec<u8>)>> {
    (1..=p.rounds)
        .map(|round| {
            let mut picked: Vec<usize> = (0..p.batch)
                .map(|j| {
                    let seed = sha256(&[round as u64, j as u64].map(u64::to_le_bytes).concat());
                    (u64::from_le_bytes([
                        seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7],
                    ]) % p.keys as u64) as usize
                })
                .collect();
            picked.sort_unstable();
            picked.dedup();
            picked
                .into_iter()
                .map(|i| (key(i), value(i, round)))
                .collect()
        })
        .collect()
}

/// Stint's tree with `keys` keys.
fn build_stint(keys: usize) -> anyhow::Result<(SparseMerkleTree<MemoryNodeStore>, Hash)> {
    let mut tree = SparseMerkleTree::new(MemoryNodeStore::new());
    let mut root = EMPTY_HASH;
    for start in (0..keys).step_by(BUILD_CHUNK) {
        let cs: ChangeSet = (start..(start + BUILD_CHUNK).min(keys))
            .map(|i| (key(i), Some(value(i, 0))))
            .collect();
        let update = tree.apply(&root, &cs)?;
        root = update.root;
        tree.store_mut().write_owned(update);
    }
    Ok((tree, root))
}

/// `jmt` with `keys` keys; returns the store and the last version.
fn build_jmt(keys: usize) -> anyhow::Result<(JmtMemoryStore, Version)> {
    let mut store = JmtMemoryStore::default();
    let mut version: Version = 0;
    for start in (0..keys).step_by(BUILD_CHUNK) {
        let set: Vec<(KeyHash, Option<OwnedValue>)> = (start..(start + BUILD_CHUNK).min(keys))
            .map(|i| (KeyHash(key(i)), Some(value(i, 0))))
            .collect();
        let (_, batch) = Jmt::new(&store).put_value_set(set, version)?;
        store.write(batch);
        version += 1;
    }
    Ok((store, version.saturating_sub(1)))
}

/// Apply one batch to Stint's tree and persist it; returns the new root.
fn stint_round(
    tree: &mut SparseMerkleTree<MemoryNodeStore>,
    root: &Hash,
    cs: &ChangeSet,
) -> anyhow::Result<Hash> {
    let update = tree.apply(root, cs)?;
    let new_root = update.root;
    tree.store_mut().write_owned(update);
    Ok(new_root)
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed(), out))
}

/// Measure both trees.
pub fn measure(p: &TreeParams, threads: usize) -> anyhow::Result<TreeFigures> {
    anyhow::ensure!(
        p.keys > 0 && p.batch > 0 && p.rounds > 0,
        "empty tree benchmark"
    );
    let batches = update_batches(p);
    let updates: usize = batches.iter().map(Vec::len).sum();
    let stint_sets: Vec<ChangeSet> = batches
        .iter()
        .map(|b| b.iter().map(|(k, v)| (*k, Some(v.clone()))).collect())
        .collect();

    // The same rounds from the same base trees: Stint on 1 thread, Stint on all threads and jmt
    // take turns round by round, so that all three see the same load on a shared machine.
    let (mut tree_one, base_root) = build_stint(p.keys)?;
    let mut tree_all = tree_one.clone();
    let (mut store, mut version) = build_jmt(p.keys)?;
    let jmt_sets: Vec<Vec<(KeyHash, Option<OwnedValue>)>> = batches
        .iter()
        .map(|b| {
            b.iter()
                .map(|(k, v)| (KeyHash(*k), Some(v.clone())))
                .collect()
        })
        .collect();
    let (one_pool, all_pool) = (pool(1)?, pool(threads)?);
    let (mut root_one, mut root_all) = (base_root, base_root);
    let (mut one_time, mut all_time, mut jmt_time) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for (cs, set) in stint_sets.iter().zip(jmt_sets) {
        let (d, r) = timed(|| one_pool.install(|| stint_round(&mut tree_one, &root_one, cs)))?;
        (one_time, root_one) = (one_time + d, r);
        let (d, r) = timed(|| all_pool.install(|| stint_round(&mut tree_all, &root_all, cs)))?;
        (all_time, root_all) = (all_time + d, r);
        version += 1;
        let (d, ()) = timed(|| {
            let (_, batch) = Jmt::new(&store).put_value_set(set, version)?;
            store.write(batch);
            Ok(())
        })?;
        jmt_time += d;
    }
    anyhow::ensure!(
        root_one == root_all,
        "Stint's tree: 1-thread and all-thread roots differ"
    );
    drop(tree_all);
    let jmt_root = Jmt::new(&store).get_root_hash(version)?;

    // Proofs of sampled keys against the final roots.
    let mut stint_bytes = 0usize;
    let mut jmt_bytes = 0usize;
    let samples = p.proofs.max(1);
    for s in 0..samples {
        let i = (s * p.keys) / samples;
        let k = key(i);
        let (value, proof) = tree_one.prove(&root_one, &k)?;
        let value = value.context("sampled key missing from Stint's tree")?;
        proof
            .verify(&root_one, &k, Some(&value))
            .map_err(|e| anyhow::anyhow!("Stint proof: {e}"))?;
        stint_bytes += proof.to_bytes().map_err(|e| anyhow::anyhow!("{e}"))?.len();
        let (jvalue, jproof) = Jmt::new(&store).get_with_proof(KeyHash(k), version)?;
        anyhow::ensure!(
            jvalue.as_ref() == Some(&value),
            "jmt and Stint disagree on a value"
        );
        jproof.verify(jmt_root, KeyHash(k), jvalue.as_ref())?;
        jmt_bytes += borsh::to_vec(&jproof)?.len();
    }

    Ok(TreeFigures {
        params: *p,
        stint_one: updates as f64 / one_time.as_secs_f64(),
        stint_all: updates as f64 / all_time.as_secs_f64(),
        threads,
        jmt: updates as f64 / jmt_time.as_secs_f64(),
        stint_proof_bytes: stint_bytes as f64 / samples as f64,
        jmt_proof_bytes: jmt_bytes as f64 / samples as f64,
    })
}

impl TreeFigures {
    /// The table rows.
    pub fn rows(&self) -> Vec<Row> {
        let p = &self.params;
        let jmt = Measure::new(self.jmt, "upd/s");
        vec![
            Row::new(
                "tree.1",
                format!(
                    "state tree updates, {} keys, {} per version, 1 thread",
                    p.keys, p.batch
                ),
                Measure::new(self.stint_one, "upd/s"),
            )
            .against("jmt, 1 thread", jmt)
            .with_target(Target::AtLeast(JMT_TARGET)),
            Row::new(
                "tree.all",
                format!("state tree updates, {} threads", self.threads),
                Measure::new(self.stint_all, "upd/s"),
            )
            .against("jmt, 1 thread", jmt),
            Row::new(
                "tree.proof",
                format!("inclusion proof size, {} keys", p.keys),
                Measure::new(self.stint_proof_bytes, "B"),
            )
            .against("jmt", Measure::new(self.jmt_proof_bytes, "B")),
        ]
    }
}
