//! Benchmark 6: RocksDB commit throughput of state tree updates.
//!
//! A base tree of `base_keys` keys is committed first (untimed). Then, for each batch size,
//! `commits` tree updates (half updates of existing keys, half new keys) are computed in memory
//! beforehand and committed one after the other with [`RocksNodeStore::commit`] (one atomic
//! write batch each, RocksDB default options: WAL on, no fsync per write), in a temporary
//! directory. The ceiling is raw RocksDB: the same number of records of the same sizes written
//! as one plain `WriteBatch` per commit into a fresh database with default options.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rocksdb::{WriteBatch, DB};
use stint_state::{
    sha256, ChangeSet, Hash, Key, MemoryNodeStore, Node, RocksNodeStore, SparseMerkleTree,
    TreeUpdate, EMPTY_HASH,
};

use crate::report::{Measure, Row};

/// Sizes of the RocksDB benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RocksParams {
    /// Keys in the committed base tree.
    pub base_keys: usize,
    /// Changes per commit, one measurement each.
    pub batch_sizes: Vec<usize>,
    /// Commits per batch size.
    pub commits: usize,
}

/// Figures for one batch size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommitFigures {
    /// Changes per commit.
    pub batch: usize,
    /// Commits measured.
    pub commits: usize,
    /// Total time of the commits.
    pub elapsed: Duration,
    /// Total time of the raw write ceiling.
    pub raw_elapsed: Duration,
    /// Tree nodes written per commit, on average.
    pub nodes_per_commit: f64,
}

fn key(i: usize) -> Key {
    sha256(&[b"rocks/".as_slice(), &(i as u64).to_le_bytes()].concat())
}

/// Records of the sizes `RocksNodeStore::commit` writes for `update` (distinct keys, filler
/// values), the `c`-th commit.
fn raw_records(c: usize, update: &TreeUpdate) -> Vec<(Vec<u8>, Vec<u8>)> {
    let values: BTreeMap<&Hash, usize> = update
        .new_values
        .iter()
        .map(|(h, v)| (h, v.len()))
        .collect();
    let mut sizes = Vec::with_capacity(update.new_nodes.len() + update.stale_nodes.len() + 1);
    for (hash, node) in &update.new_nodes {
        let value = match node {
            Node::Internal(_) => 0,
            Node::Leaf(_) => values.get(hash).copied().unwrap_or(0),
        };
        // written_at (8) + tag (1) + two hashes (64) + leaf value.
        sizes.push((32, 73 + value));
    }
    sizes.extend(update.stale_nodes.iter().map(|_| (40, 0)));
    sizes.push((8, 32));
    sizes
        .into_iter()
        .enumerate()
        .map(|(r, (klen, vlen))| {
            let mut k = sha256(&[c as u64, r as u64].map(u64::to_le_bytes).concat()).to_vec();
            k.resize(klen, 0);
            (k, vec![0xab; vlen])
        })
        .collect()
}

/// Measure every batch size in `params`.
pub fn measure(params: &RocksParams) -> anyhow::Result<Vec<CommitFigures>> {
    let mut results = Vec::new();
    for &batch in &params.batch_sizes {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let rocks = RocksNodeStore::open(dir.path().join("nodes"))?;
        let raw = DB::open_default(dir.path().join("raw")).context("raw RocksDB")?;

        // Base tree, committed as version 1 (untimed).
        let mut mirror = SparseMerkleTree::new(MemoryNodeStore::new());
        let base: ChangeSet = (0..params.base_keys)
            .map(|i| (key(i), Some((i as u64).to_le_bytes().to_vec())))
            .collect();
        let update = mirror.apply(&EMPTY_HASH, &base)?;
        let mut root: Hash = update.root;
        rocks.commit(1, &update)?;
        mirror.store_mut().write_owned(update);

        // The timed updates, computed beforehand.
        let mut updates = Vec::with_capacity(params.commits);
        let mut next_new = params.base_keys;
        for c in 0..params.commits {
            let mut cs = ChangeSet::new();
            for j in 0..batch {
                let k = if j % 2 == 0 {
                    key((c * batch + j) % params.base_keys.max(1))
                } else {
                    next_new += 1;
                    key(next_new)
                };
                cs.insert(k, Some([c as u64, j as u64].map(u64::to_le_bytes).concat()));
            }
            let update = mirror.apply(&root, &cs)?;
            root = update.root;
            mirror.store_mut().write(&update);
            updates.push(update);
        }
        let nodes: usize = updates.iter().map(|u| u.new_nodes.len()).sum();
        let raw_batches: Vec<Vec<(Vec<u8>, Vec<u8>)>> = updates
            .iter()
            .enumerate()
            .map(|(c, u)| raw_records(c, u))
            .collect();

        let start = Instant::now();
        for (i, update) in updates.iter().enumerate() {
            rocks.commit(i as u64 + 2, update)?;
        }
        let elapsed = start.elapsed();
        anyhow::ensure!(
            rocks.latest()?.map(|(_, r)| r) == Some(root),
            "RocksDB's latest root differs from the in-memory tree's"
        );

        let start = Instant::now();
        for records in &raw_batches {
            let mut wb = WriteBatch::default();
            for (k, v) in records {
                wb.put(k, v);
            }
            raw.write(wb).context("raw RocksDB write")?;
        }
        let raw_elapsed = start.elapsed();

        results.push(CommitFigures {
            batch,
            commits: params.commits,
            elapsed,
            raw_elapsed,
            nodes_per_commit: nodes as f64 / params.commits.max(1) as f64,
        });
    }
    Ok(results)
}

impl CommitFigures {
    /// The table rows.
    pub fn rows(&self, base_keys: usize) -> Vec<Row> {
        let secs = self.elapsed.as_secs_f64();
        let raw_secs = self.raw_elapsed.as_secs_f64();
        let changes = (self.batch * self.commits) as f64;
        let b = self.batch;
        vec![
            Row::new(
                format!("rocks.{b}.changes"),
                format!(
                    "RocksDB commit, {b} changes/commit ({:.0} nodes) on {base_keys} keys",
                    self.nodes_per_commit
                ),
                Measure::new(changes / secs, "chg/s"),
            )
            .against("raw WriteBatch", Measure::new(changes / raw_secs, "chg/s")),
            Row::new(
                format!("rocks.{b}.commits"),
                format!("RocksDB commits, {b} changes/commit"),
                Measure::new(self.commits as f64 / secs, "commit/s"),
            )
            .against(
                "raw WriteBatch",
                Measure::new(self.commits as f64 / raw_secs, "commit/s"),
            ),
        ]
    }
}
