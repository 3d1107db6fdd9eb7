//! Integration tests of stint-verifier against a real bitcoind in regtest and real RocksDB. The
//! test plays the sequencer: it builds batches from a genesis whose anchor key it holds and posts
//! them with an `Anchorer`; forged batches come from `forge`.

mod alerts;
mod catchup;
mod challenges;
mod common;
mod faults;
mod forge;
mod honest;
mod hostile;
mod reorg;
mod restart;
mod structure;
mod two_verifiers;
