//! Integration tests of stint-state: property tests against a `BTreeMap` model, proofs,
//! witnesses, and the RocksDB store.

mod model;
mod proofs;
#[cfg(feature = "rocksdb")]
mod rocks;
mod tree;
mod witness;
