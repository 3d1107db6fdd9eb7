//! Integration tests of the `stint` binary (real bitcoind in regtest, real RocksDB). Set
//! `STINT_BITCOIND` to the bitcoind to use.

mod args;
mod common;
mod crash;
mod retry;
mod tour;
mod watchtower;
