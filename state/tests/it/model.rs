//! A `BTreeMap` model and an independent definition of the root.

use std::collections::BTreeMap;

use proptest::prelude::*;
use stint_state::{
    internal_hash, leaf_hash, sha256, ChangeSet, Hash, Key, MemoryNodeStore, SparseMerkleTree,
    EMPTY_HASH,
};

pub(crate) type Model = BTreeMap<Key, Vec<u8>>;

fn bit(key: &Key, depth: usize) -> bool {
    key[depth / 8] & (0x80 >> (depth % 8)) != 0
}

/// The root straight from the tree rules, by recursion over the key set (no tree code involved).
pub(crate) fn spec_root(model: &Model) -> Hash {
    let entries: Vec<(&Key, &Vec<u8>)> = model.iter().collect();
    spec(&entries, 0)
}

fn spec(entries: &[(&Key, &Vec<u8>)], depth: usize) -> Hash {
    match entries {
        [] => EMPTY_HASH,
        [(k, v)] => leaf_hash(k, &sha256(v)),
        _ => {
            let mid = entries.partition_point(|(k, _)| !bit(k, depth));
            let (l, r) = entries.split_at(mid);
            internal_hash(&spec(l, depth + 1), &spec(r, depth + 1))
        }
    }
}

/// Keys that are either random or crowded into a few long shared prefixes (deep paths, chains
/// of one-sided internal nodes, collapses).
pub(crate) fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        any::<[u8; 32]>(),
        (0u8..4, 0u8..8).prop_map(|(a, b)| {
            let mut k = [0u8; 32];
            k[0] = a;
            k[31] = b;
            k
        }),
    ]
}

/// Short values from a small alphabet, so rewrites of an equal value happen.
pub(crate) fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..3, 0..3)
}

pub(crate) fn change_set() -> impl Strategy<Value = ChangeSet> {
    prop::collection::btree_map(key(), prop::option::weighted(0.7, value()), 0..40)
}

/// A tree that persists every update into a memory store.
pub(crate) struct MemTree {
    pub(crate) tree: SparseMerkleTree<MemoryNodeStore>,
    pub(crate) root: Hash,
}

impl MemTree {
    pub(crate) fn new(parallel_threshold: usize) -> Self {
        Self {
            tree: SparseMerkleTree::new(MemoryNodeStore::new())
                .with_parallel_threshold(parallel_threshold),
            root: EMPTY_HASH,
        }
    }

    pub(crate) fn apply(&mut self, changes: &ChangeSet) -> Hash {
        let update = self.tree.apply(&self.root, changes).unwrap();
        self.root = update.root;
        self.tree.store_mut().write_owned(update);
        self.root
    }

    pub(crate) fn from_model(model: &Model, parallel_threshold: usize) -> Self {
        let mut t = Self::new(parallel_threshold);
        t.apply(&model.iter().map(|(k, v)| (*k, Some(v.clone()))).collect());
        t
    }
}

pub(crate) fn apply_model(model: &mut Model, changes: &ChangeSet) {
    for (k, v) in changes {
        match v {
            Some(v) => model.insert(*k, v.clone()),
            None => model.remove(k),
        };
    }
}
