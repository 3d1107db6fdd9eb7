//! Tree properties against the model.

use proptest::prelude::*;
use stint_state::{ChangeSet, StateView, EMPTY_HASH};

use crate::model::{apply_model, change_set, key, spec_root, MemTree, Model};

proptest! {
    #[test]
    fn roots_follow_the_spec_whatever_the_order_or_batching(
        batches in prop::collection::vec(change_set(), 1..5),
        probes in prop::collection::vec(key(), 0..10),
    ) {
        let mut model = Model::new();
        let mut batched = MemTree::new(usize::MAX);
        let mut parallel = MemTree::new(2);
        let mut one_by_one = MemTree::new(usize::MAX);
        for changes in &batches {
            apply_model(&mut model, changes);
            let root = batched.apply(changes);
            prop_assert_eq!(root, spec_root(&model));
            prop_assert_eq!(parallel.apply(changes), root);
            for (k, v) in changes {
                one_by_one.apply(&ChangeSet::from([(*k, v.clone())]));
            }
            prop_assert_eq!(one_by_one.root, root);
        }
        // Same set, inserted in reverse order one by one, then in one parallel batch.
        let mut reverse = MemTree::new(usize::MAX);
        for (k, v) in model.iter().rev() {
            reverse.apply(&ChangeSet::from([(*k, Some(v.clone()))]));
        }
        prop_assert_eq!(reverse.root, batched.root);
        prop_assert_eq!(MemTree::from_model(&model, 2).root, batched.root);
        // Reads match the model, present or absent.
        let view = batched.tree.view(batched.root);
        for k in model.keys().chain(probes.iter()).chain(batches.iter().flat_map(|b| b.keys())) {
            prop_assert_eq!(view.get(k).unwrap(), model.get(k).cloned());
        }
    }

    #[test]
    fn deleting_inserted_keys_restores_the_earlier_root(
        base in prop::collection::btree_map(key(), crate::model::value(), 0..30),
        extra in prop::collection::btree_map(key(), crate::model::value(), 1..30),
    ) {
        let mut tree = MemTree::from_model(&base, usize::MAX);
        let before = tree.root;
        let added: ChangeSet = extra.iter().filter(|(k, _)| !base.contains_key(*k))
            .map(|(k, v)| (*k, Some(v.clone()))).collect();
        tree.apply(&added);
        for k in added.keys() {
            tree.apply(&ChangeSet::from([(*k, None)]));
        }
        prop_assert_eq!(tree.root, before);
        // Old roots stay readable (copy-on-write).
        for (k, v) in &base {
            prop_assert_eq!(tree.tree.get(&before, k).unwrap(), Some(v.clone()));
        }
        // Deleting everything gives the empty root.
        tree.apply(&base.keys().map(|k| (*k, None)).collect());
        prop_assert_eq!(tree.root, EMPTY_HASH);
    }

    #[test]
    fn update_reports_exactly_the_new_and_stale_nodes(
        base in prop::collection::btree_map(key(), crate::model::value(), 0..30),
        changes in change_set(),
    ) {
        use std::collections::BTreeSet;
        let tree = MemTree::from_model(&base, usize::MAX);
        let update = tree.tree.apply(&tree.root, &changes).unwrap();
        let mut new_model = base.clone();
        apply_model(&mut new_model, &changes);
        let after = MemTree::from_model(&new_model, usize::MAX);
        let old_nodes = reachable(&tree, tree.root);
        let new_nodes = reachable(&after, after.root);
        let reported_new: BTreeSet<_> = update.new_nodes.iter().map(|(h, _)| *h).collect();
        let reported_stale: BTreeSet<_> = update.stale_nodes.iter().copied().collect();
        prop_assert_eq!(reported_new.len(), update.new_nodes.len(), "new nodes are unique");
        prop_assert_eq!(reported_stale.len(), update.stale_nodes.len(), "stale nodes are unique");
        prop_assert_eq!(&reported_new, &new_nodes.difference(&old_nodes).copied().collect());
        prop_assert_eq!(&reported_stale, &old_nodes.difference(&new_nodes).copied().collect());
    }
}

/// Every node hash reachable from `root`.
fn reachable(
    tree: &MemTree,
    root: stint_state::Hash,
) -> std::collections::BTreeSet<stint_state::Hash> {
    use stint_state::{Node, NodeStore};
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![root];
    while let Some(h) = stack.pop() {
        if h == EMPTY_HASH || !seen.insert(h) {
            continue;
        }
        if let Node::Internal(n) = tree.tree.store().get_node(&h).unwrap().unwrap() {
            stack.push(n.left);
            stack.push(n.right);
        }
    }
    seen
}

#[test]
fn large_parallel_batch_equals_sequential() {
    let mut model = Model::new();
    let mut seed = 7u64;
    for i in 0..5000u32 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&seed.to_be_bytes());
        k[8..12].copy_from_slice(&i.to_be_bytes());
        model.insert(k, i.to_le_bytes().to_vec());
    }
    let sequential = MemTree::from_model(&model, usize::MAX);
    let parallel = MemTree::from_model(&model, 64);
    assert_eq!(sequential.root, parallel.root);
    assert_eq!(sequential.root, spec_root(&model));
}
