//! Tree update throughput: batches of 1k and 10k random keys (half updates of existing keys, half
//! inserts) applied to an in-memory tree of 1M keys, on one rayon thread and on all of them.
//!
//! `STINT_BENCH_TREE_KEYS` overrides the tree size (default 1,000,000).

use std::time::Duration;

use criterion::{criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use stint_state::{sha256, ChangeSet, Hash, Key, MemoryNodeStore, SparseMerkleTree, EMPTY_HASH};

fn key(i: u64) -> Key {
    sha256(&i.to_le_bytes())
}

fn build(n: u64) -> (SparseMerkleTree<MemoryNodeStore>, Hash) {
    let mut tree = SparseMerkleTree::new(MemoryNodeStore::new());
    let mut root = EMPTY_HASH;
    let chunk = 100_000u64;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let cs: ChangeSet = (start..end)
            .map(|i| (key(i), Some(i.to_le_bytes().to_vec())))
            .collect();
        let update = tree.apply(&root, &cs).unwrap();
        root = update.root;
        tree.store_mut().write_owned(update);
        start = end;
    }
    (tree, root)
}

fn batch(n: u64, size: u64, round: u64) -> ChangeSet {
    (0..size)
        .map(|j| {
            let seed = sha256(&[round.to_le_bytes(), j.to_le_bytes()].concat());
            let pick = u64::from_le_bytes(seed[..8].try_into().unwrap());
            let k = if j % 2 == 0 { key(pick % n) } else { seed };
            (k, Some(seed[8..16].to_vec()))
        })
        .collect()
}

fn updates(c: &mut Criterion) {
    let n: u64 = std::env::var("STINT_BENCH_TREE_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (tree, root) = build(n);
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group(format!("smt_update_{n}_keys"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for size in [1_000u64, 10_000] {
        group.throughput(Throughput::Elements(size));
        let mut round = 0u64;
        group.bench_with_input(BenchmarkId::new("1_thread", size), &size, |b, &size| {
            b.iter_batched(
                || {
                    round += 1;
                    batch(n, size, round)
                },
                |cs| single.install(|| tree.apply(&root, &cs).unwrap()),
                BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("all_threads", size), &size, |b, &size| {
            b.iter_batched(
                || {
                    round += 1;
                    batch(n, size, round)
                },
                |cs| tree.apply(&root, &cs).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::updates);
}
criterion_main!(group::benches);
