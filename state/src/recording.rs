//! A view that records which keys were read.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::{Key, StateError, StateView};

/// Wraps a view and records every key read through it (whether the read succeeded or not), so a
/// fraud-proof builder knows which keys a segment touched.
#[derive(Debug)]
pub struct RecordingView<V> {
    inner: V,
    reads: Mutex<BTreeSet<Key>>,
}

impl<V: StateView> RecordingView<V> {
    /// Start recording reads of `inner`.
    pub fn new(inner: V) -> Self {
        Self {
            inner,
            reads: Mutex::new(BTreeSet::new()),
        }
    }

    /// The keys read so far.
    pub fn reads(&self) -> BTreeSet<Key> {
        match self.reads.lock() {
            Ok(reads) => reads.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Stop recording: the wrapped view and the keys read.
    pub fn into_parts(self) -> (V, BTreeSet<Key>) {
        let reads = match self.reads.into_inner() {
            Ok(reads) => reads,
            Err(poisoned) => poisoned.into_inner(),
        };
        (self.inner, reads)
    }
}

impl<V: StateView> StateView for RecordingView<V> {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        match self.reads.lock() {
            Ok(mut reads) => reads.insert(*key),
            Err(poisoned) => poisoned.into_inner().insert(*key),
        };
        self.inner.get(key)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::Overlay;

    #[test]
    fn records_every_read_key_once() {
        let mut base = BTreeMap::new();
        base.insert([1; 32], b"one".to_vec());
        let rec = RecordingView::new(&base);
        assert_eq!(rec.get(&[1; 32]).unwrap(), Some(b"one".to_vec()));
        assert_eq!(rec.get(&[2; 32]).unwrap(), None);
        assert_eq!(rec.get(&[1; 32]).unwrap(), Some(b"one".to_vec()));
        // Reads through an overlay on top are recorded only when they reach the base.
        let mut overlay = Overlay::new(&rec);
        overlay.put([3; 32], b"three".to_vec());
        overlay.get(&[3; 32]).unwrap();
        overlay.get(&[4; 32]).unwrap();
        let (_, reads) = rec.into_parts();
        assert_eq!(reads, BTreeSet::from([[1; 32], [2; 32], [4; 32]]));
    }
}
