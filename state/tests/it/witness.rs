//! The witness-backed stateless view against the full tree.

use std::collections::BTreeSet;

use proptest::prelude::*;
use stint_state::{
    ChangeSet, InvalidState, Key, RecordingView, StateError, StateView, StateWitness, WitnessView,
};

use crate::model::{key, value, MemTree, Model};

proptest! {
    #[test]
    fn witness_reads_and_new_root_match_the_full_tree(
        model in prop::collection::btree_map(key(), value(), 0..40),
        extra in prop::collection::btree_set(key(), 0..8),
        changes in prop::collection::vec((any::<prop::sample::Index>(), prop::option::weighted(0.6, value())), 0..12),
        outside in prop::collection::vec(key(), 0..8),
    ) {
        let tree = MemTree::from_model(&model, usize::MAX);
        let root = tree.root;
        let covered: BTreeSet<Key> = model.keys().step_by(2).copied().chain(extra).collect();
        let witness = tree.tree.witness(&root, &covered).unwrap();

        // Strict encoding round trip.
        let bytes = witness.to_bytes().unwrap();
        prop_assert_eq!(StateWitness::from_bytes(&bytes).unwrap(), witness.clone());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(StateWitness::from_bytes(&longer).is_err());

        let mut view = WitnessView::new(root, &witness).unwrap();
        for k in &covered {
            prop_assert_eq!(view.get(k).unwrap(), model.get(k).cloned());
        }
        // Never a wrong answer outside the witness: the right one, or KeyNotInWitness.
        for k in outside.iter().chain(model.keys()) {
            match view.get(k) {
                Ok(v) => prop_assert_eq!(v, model.get(k).cloned()),
                Err(StateError::Invalid(InvalidState::KeyNotInWitness(missing))) => prop_assert_eq!(&missing, k),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }

        // Changes restricted to covered keys: inserts, updates and deletes.
        let covered_list: Vec<Key> = covered.iter().copied().collect();
        if !covered_list.is_empty() {
            let cs: ChangeSet = changes.iter()
                .map(|(i, v)| (covered_list[i.index(covered_list.len())], v.clone()))
                .collect();
            let full = tree.tree.apply(&root, &cs).unwrap().root;
            prop_assert_eq!(view.root_after(&cs).unwrap(), full);
            prop_assert_eq!(view.apply(&cs).unwrap(), full);
            let mut new_model = model.clone();
            crate::model::apply_model(&mut new_model, &cs);
            for k in &covered {
                prop_assert_eq!(view.get(k).unwrap(), new_model.get(k).cloned());
            }
        }
    }
}

#[test]
fn uncovered_keys_and_bad_witnesses_are_rejected() {
    let mut model = Model::new();
    for i in 0..64u8 {
        model.insert([i.wrapping_mul(37); 32], vec![i]);
    }
    let tree = MemTree::from_model(&model, usize::MAX);
    let covered = BTreeSet::from([[0u8; 32], [37; 32]]);
    let witness = tree.tree.witness(&tree.root, &covered).unwrap();
    let view = WitnessView::new(tree.root, &witness).unwrap();
    assert_eq!(view.get(&[37; 32]).unwrap(), Some(vec![1]));

    // A present key outside the witness: an error, never a guess.
    let far = [74u8; 32];
    assert!(model.contains_key(&far));
    assert!(matches!(
        view.get(&far),
        Err(StateError::Invalid(InvalidState::KeyNotInWitness(k))) if k == far
    ));
    // Writing it is refused too.
    let cs = ChangeSet::from([(far, None)]);
    assert!(matches!(
        view.root_after(&cs),
        Err(StateError::Invalid(InvalidState::KeyNotInWitness(_)))
    ));

    // Wrong root, a value that does not match, a value for an undisclosed key.
    let mut wrong_root = tree.root;
    wrong_root[5] ^= 4;
    assert!(WitnessView::new(wrong_root, &witness).is_err());
    let mut bad = witness.clone();
    bad.values[0].1.push(1);
    assert!(WitnessView::new(tree.root, &bad).is_err());
    let mut bad = witness.clone();
    bad.values.push((far, vec![2]));
    assert!(WitnessView::new(tree.root, &bad).is_err());

    // Unsorted values are not canonical.
    let mut unsorted = witness.clone();
    unsorted.values.reverse();
    assert!(StateWitness::from_bytes(&unsorted.to_bytes().unwrap()).is_err());
}

#[test]
fn recorded_reads_make_a_sufficient_witness() {
    let model: Model = (0..50u8)
        .map(|i| ([i.wrapping_mul(13); 32], vec![i]))
        .collect();
    let tree = MemTree::from_model(&model, usize::MAX);
    let recorder = RecordingView::new(tree.tree.view(tree.root));
    for k in [[0u8; 32], [13; 32], [200; 32]] {
        recorder.get(&k).unwrap();
    }
    let reads = recorder.reads();
    assert_eq!(reads.len(), 3);
    let view =
        WitnessView::new(tree.root, &tree.tree.witness(&tree.root, &reads).unwrap()).unwrap();
    for k in &reads {
        assert_eq!(view.get(k).unwrap(), model.get(k).cloned());
    }
}
