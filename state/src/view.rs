//! The read interface every consumer of state (the STF, the judge) is written against.

use std::collections::BTreeMap;

use crate::{Key, StateError};

/// A set of pending writes: `Some(value)` inserts or updates, `None` deletes.
///
/// A `BTreeMap` so that iteration order is the key order on every node.
pub type ChangeSet = BTreeMap<Key, Option<Vec<u8>>>;

/// Read access to a state: the full tree, an overlay, or a witness-backed stateless view.
///
/// Implementations must never return a wrong answer: a view that cannot answer for a key (for
/// example a witness that does not cover it) returns an error.
pub trait StateView {
    /// The value stored under `key`, if any.
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError>;
}

impl<T: StateView + ?Sized> StateView for &T {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get(key)
    }
}

impl<T: StateView + ?Sized> StateView for Box<T> {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get(key)
    }
}

impl<T: StateView + ?Sized> StateView for std::sync::Arc<T> {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get(key)
    }
}

/// A plain in-memory map is a state view (handy for tests and genesis building).
impl StateView for BTreeMap<Key, Vec<u8>> {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        Ok(BTreeMap::get(self, key).cloned())
    }
}
