//! The RocksDB node store, on a real database in a temporary directory.

use stint_state::{
    ChangeSet, Hash, NodeStore, RocksNodeStore, SparseMerkleTree, StateView, EMPTY_HASH,
};

fn key(i: u32) -> [u8; 32] {
    stint_state::sha256(&i.to_be_bytes())
}

fn changes(range: std::ops::Range<u32>, tag: u8) -> ChangeSet {
    range.map(|i| (key(i), Some(vec![tag, i as u8]))).collect()
}

fn commit(store: &RocksNodeStore, version: u64, base: Hash, cs: &ChangeSet) -> Hash {
    let update = SparseMerkleTree::new(store).apply(&base, cs).unwrap();
    store.commit(version, &update).unwrap();
    update.root
}

#[test]
fn versions_survive_reopen_and_pruning_keeps_retained_roots() {
    let dir = tempfile::tempdir().unwrap();
    let mut roots = Vec::new();
    {
        let store = RocksNodeStore::open(dir.path()).unwrap();
        let mut root = EMPTY_HASH;
        // v1: 200 keys; v2: update 50; v3: delete 30, add 20; v4: restore v1's values of 0..10.
        root = commit(&store, 1, root, &changes(0..200, 1));
        roots.push(root);
        root = commit(&store, 2, root, &changes(0..50, 2));
        roots.push(root);
        let mut cs: ChangeSet = (50..80).map(|i| (key(i), None)).collect();
        cs.extend(changes(200..220, 3));
        root = commit(&store, 3, root, &cs);
        roots.push(root);
        root = commit(&store, 4, root, &changes(0..10, 1));
        roots.push(root);

        // Committing out of order or from a stale base is refused.
        let update = SparseMerkleTree::new(&store)
            .apply(&roots[0], &changes(0..1, 9))
            .unwrap();
        assert!(store.commit(5, &update).is_err());
        let update = SparseMerkleTree::new(&store)
            .apply(&root, &changes(0..1, 9))
            .unwrap();
        assert!(store.commit(4, &update).is_err());
    }

    let store = RocksNodeStore::open(dir.path()).unwrap();
    assert_eq!(store.latest().unwrap(), Some((4, roots[3])));
    let tree = SparseMerkleTree::new(&store);
    for (v, root) in roots.iter().enumerate() {
        assert_eq!(store.root(v as u64 + 1).unwrap(), Some(*root));
    }
    // Every version reads its own values.
    assert_eq!(tree.get(&roots[0], &key(5)).unwrap(), Some(vec![1, 5]));
    assert_eq!(tree.get(&roots[1], &key(5)).unwrap(), Some(vec![2, 5]));
    assert_eq!(tree.get(&roots[2], &key(60)).unwrap(), None);
    assert_eq!(tree.get(&roots[1], &key(60)).unwrap(), Some(vec![1, 60]));
    assert_eq!(tree.get(&roots[3], &key(5)).unwrap(), Some(vec![1, 5]));
    assert_eq!(tree.get(&roots[3], &key(20)).unwrap(), Some(vec![2, 20]));

    let before = store.node_count().unwrap();
    let deleted = store.prune_below(3).unwrap();
    assert!(deleted > 0);
    assert_eq!(store.node_count().unwrap(), before - deleted);
    assert_eq!(store.pruned_below().unwrap(), 3);
    assert_eq!(store.root(1).unwrap(), None);
    assert_eq!(store.root(2).unwrap(), None);
    // Old roots are gone (their nodes deleted) ...
    assert!(store.get_node(&roots[0]).unwrap().is_none());
    assert!(store.get_node(&roots[1]).unwrap().is_none());
    assert!(tree.get(&roots[0], &key(100)).is_err());
    // ... and every key of every retained version is intact, including leaves of v1 that v4
    // brought back after v2 had made them stale.
    for (v, root) in [(3usize, roots[2]), (4, roots[3])] {
        let view = tree.view(root);
        for i in 0..220 {
            let expected = match (v, i) {
                (_, 50..80) => None,
                (4, 0..10) => Some(vec![1, i as u8]),
                (_, 0..50) => Some(vec![2, i as u8]),
                (_, 200..220) => Some(vec![3, i as u8]),
                _ => Some(vec![1, i as u8]),
            };
            assert_eq!(view.get(&key(i)).unwrap(), expected, "version {v} key {i}");
        }
    }
    // Pruning everything but the latest, then reopening, still reads the latest completely.
    store.prune_below(4).unwrap();
    drop(store);
    let store = RocksNodeStore::open(dir.path()).unwrap();
    let tree = SparseMerkleTree::new(&store);
    assert!(store.get_node(&roots[2]).unwrap().is_none());
    assert_eq!(tree.get(&roots[3], &key(219)).unwrap(), Some(vec![3, 219]));
    // Only nodes of the latest tree remain.
    let mut reachable = 0usize;
    let mut stack = vec![roots[3]];
    while let Some(h) = stack.pop() {
        if h == EMPTY_HASH {
            continue;
        }
        reachable += 1;
        if let Some(stint_state::Node::Internal(n)) = store.get_node(&h).unwrap() {
            stack.push(n.left);
            stack.push(n.right);
        }
    }
    assert_eq!(store.node_count().unwrap(), reachable);
}

#[test]
fn truncate_above_rolls_back_to_an_earlier_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksNodeStore::open(dir.path()).unwrap();
    let r1 = commit(&store, 1, EMPTY_HASH, &changes(0..20, 1));
    let r2 = commit(&store, 2, r1, &changes(0..5, 2));
    store.truncate_above(1).unwrap();
    assert_eq!(store.latest().unwrap(), Some((1, r1)));
    assert_eq!(store.root(2).unwrap(), None);
    let r2b = commit(&store, 2, r1, &changes(5..10, 4));
    assert_ne!(r2, r2b);
    store.prune_below(2).unwrap();
    let tree = SparseMerkleTree::new(&store);
    for i in 0..20 {
        let expected = if (5..10).contains(&i) {
            vec![4, i as u8]
        } else {
            vec![1, i as u8]
        };
        assert_eq!(tree.get(&r2b, &key(i)).unwrap(), Some(expected));
    }
}

/// A truncated version comes back (a reorg reinstated a rolled-back batch): its nodes were
/// kept, so restoring the root entry makes every value readable again; a root whose nodes are
/// not stored is refused.
#[test]
fn a_truncated_version_is_restored_from_its_kept_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksNodeStore::open(dir.path()).unwrap();
    let r1 = commit(&store, 1, EMPTY_HASH, &changes(0..20, 1));
    let r2 = commit(&store, 2, r1, &changes(0..5, 2));
    store.truncate_above(1).unwrap();
    let r2b = commit(&store, 2, r1, &changes(5..10, 4));

    let mut batch = rocksdb::WriteBatch::default();
    store.stage_truncate_above(&mut batch, 1).unwrap();
    store.stage_restore_version(&mut batch, 2, &r2).unwrap();
    store.db().write(batch).unwrap();
    assert_eq!(store.latest().unwrap(), Some((2, r2)));
    let tree = SparseMerkleTree::new(&store);
    for i in 0..20 {
        let expected = if i < 5 {
            vec![2, i as u8]
        } else {
            vec![1, i as u8]
        };
        assert_eq!(tree.get(&r2, &key(i)).unwrap(), Some(expected));
    }
    assert_ne!(r2, r2b);
    let mut batch = rocksdb::WriteBatch::default();
    assert!(store
        .stage_restore_version(&mut batch, 3, &[0xab; 32])
        .is_err());
}

#[test]
fn staged_multi_update_version_commits_with_the_callers_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksNodeStore::open_with_column_families(dir.path(), &["mine"]).unwrap();
    assert!(RocksNodeStore::open_with_column_families(dir.path().join("x"), &["smt_x"]).is_err());
    let tree = SparseMerkleTree::new(&store);
    let first = tree.apply(&EMPTY_HASH, &changes(0..40, 1)).unwrap();
    let mut scratch = stint_state::MemoryNodeStore::new();
    scratch.write(&first);
    let layered = SparseMerkleTree::new(Layer(&store, &scratch));
    let second = layered.apply(&first.root, &changes(20..60, 2)).unwrap();

    // Nothing is visible until the caller writes the batch; then everything at once.
    let mut batch = rocksdb::WriteBatch::default();
    let cf = store.db().cf_handle("mine").unwrap();
    batch.put_cf(cf, b"k", b"v");
    assert!(store.stage_commit(&mut batch, 1, &[]).is_err());
    assert!(store
        .stage_commit(&mut batch, 1, &[second.clone(), first.clone()])
        .is_err());
    store
        .stage_commit(&mut batch, 1, &[first.clone(), second.clone()])
        .unwrap();
    assert_eq!(store.latest().unwrap(), None);
    store.db().write(batch).unwrap();
    assert_eq!(store.latest().unwrap(), Some((1, second.root)));
    assert_eq!(
        store.db().get_cf(cf, b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    let view = SparseMerkleTree::new(&store);
    for i in 0..60u32 {
        let want = if i < 20 {
            vec![1, i as u8]
        } else {
            vec![2, i as u8]
        };
        assert_eq!(view.view(second.root).get(&key(i)).unwrap(), Some(want));
    }
    // Only the version's net effect is written: nodes `first` created and `second` retired (the
    // intermediate state) are not stored.
    let intermediate: Vec<Hash> = first
        .new_nodes
        .iter()
        .map(|(hash, _)| *hash)
        .filter(|hash| second.stale_nodes.contains(hash))
        .collect();
    assert!(!intermediate.is_empty());
    for hash in &intermediate {
        assert_eq!(store.get_node(hash).unwrap(), None);
    }
    // The next version must start from the committed root.
    let mut batch = rocksdb::WriteBatch::default();
    assert!(store.stage_commit(&mut batch, 2, &[first]).is_err());
}

#[test]
fn nodes_a_version_retires_and_creates_again_survive_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksNodeStore::open(dir.path()).unwrap();
    let r1 = commit(&store, 1, EMPTY_HASH, &changes(0..30, 1));
    // Version 2 changes keys 0..10 and then changes them back: its net effect retires and
    // re-creates the same nodes, so they must be rewritten, and pruning must keep them.
    let tree = SparseMerkleTree::new(&store);
    let away = tree.apply(&r1, &changes(0..10, 2)).unwrap();
    let mut scratch = stint_state::MemoryNodeStore::new();
    scratch.write(&away);
    let back = SparseMerkleTree::new(Layer(&store, &scratch))
        .apply(&away.root, &changes(0..10, 1))
        .unwrap();
    assert_eq!(back.root, r1);
    let mut batch = rocksdb::WriteBatch::default();
    store
        .stage_commit(&mut batch, 2, &[away.clone(), back])
        .unwrap();
    store.db().write(batch).unwrap();
    for (hash, _) in &away.new_nodes {
        assert_eq!(
            store.get_node(hash).unwrap(),
            None,
            "intermediate node kept"
        );
    }
    store.prune_below(2).unwrap();
    let tree = SparseMerkleTree::new(&store);
    for i in 0..30 {
        assert_eq!(tree.get(&r1, &key(i)).unwrap(), Some(vec![1, i as u8]));
    }
    // Pruned through a reopen too (no cache).
    drop(store);
    let store = RocksNodeStore::open(dir.path()).unwrap();
    let tree = SparseMerkleTree::new(&store);
    for i in 0..30 {
        assert_eq!(tree.get(&r1, &key(i)).unwrap(), Some(vec![1, i as u8]));
    }
}

/// Reads from a memory layer first, then the store.
struct Layer<'a>(&'a RocksNodeStore, &'a stint_state::MemoryNodeStore);

impl NodeStore for Layer<'_> {
    fn get_node(&self, hash: &Hash) -> Result<Option<stint_state::Node>, stint_state::StateError> {
        match self.1.get_node(hash)? {
            Some(node) => Ok(Some(node)),
            None => self.0.get_node(hash),
        }
    }
    fn get_value(&self, hash: &Hash) -> Result<Option<Vec<u8>>, stint_state::StateError> {
        match self.1.get_value(hash)? {
            Some(value) => Ok(Some(value)),
            None => self.0.get_value(hash),
        }
    }
}
