//! An in-memory overlay of uncommitted changes on top of any [`StateView`].

use crate::{ChangeSet, Key, StateError, StateView};

/// Uncommitted writes layered over a base view.
///
/// Reads see the overlay's own writes first (including deletions), then the base. Overlays nest:
/// an `Overlay<&Overlay<V>>` is how the STF stages one call and throws it away if the call fails.
#[derive(Debug, Clone)]
pub struct Overlay<V> {
    base: V,
    changes: ChangeSet,
}

impl<V: StateView> Overlay<V> {
    /// An empty overlay over `base`.
    pub fn new(base: V) -> Self {
        Self {
            base,
            changes: ChangeSet::new(),
        }
    }

    /// Stage `value` under `key`.
    pub fn put(&mut self, key: Key, value: Vec<u8>) {
        self.changes.insert(key, Some(value));
    }

    /// Stage the deletion of `key`.
    pub fn delete(&mut self, key: Key) {
        self.changes.insert(key, None);
    }

    /// Merge a change set (for example a finished child overlay) into this one.
    pub fn extend(&mut self, changes: ChangeSet) {
        self.changes.extend(changes);
    }

    /// The staged changes.
    pub fn changes(&self) -> &ChangeSet {
        &self.changes
    }

    /// The base view.
    pub fn base(&self) -> &V {
        &self.base
    }

    /// Give up the base and keep the staged changes.
    pub fn into_changes(self) -> ChangeSet {
        self.changes
    }
}

impl<V: StateView> StateView for Overlay<V> {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        match self.changes.get(key) {
            Some(staged) => Ok(staged.clone()),
            None => self.base.get(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn overlay_reads_its_writes_then_the_base() {
        let mut base = BTreeMap::new();
        base.insert([1; 32], b"one".to_vec());
        base.insert([2; 32], b"two".to_vec());
        let mut ov = Overlay::new(&base);
        ov.put([3; 32], b"three".to_vec());
        ov.delete([2; 32]);
        assert_eq!(ov.get(&[1; 32]).unwrap(), Some(b"one".to_vec()));
        assert_eq!(ov.get(&[2; 32]).unwrap(), None);
        assert_eq!(ov.get(&[3; 32]).unwrap(), Some(b"three".to_vec()));

        let child_changes = {
            let mut child = Overlay::new(&ov);
            child.put([1; 32], b"uno".to_vec());
            assert_eq!(child.get(&[3; 32]).unwrap(), Some(b"three".to_vec()));
            child.into_changes()
        };
        ov.extend(child_changes);
        assert_eq!(ov.get(&[1; 32]).unwrap(), Some(b"uno".to_vec()));
    }
}
