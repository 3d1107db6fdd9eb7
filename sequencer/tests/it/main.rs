//! Integration tests of the sequencer against a real bitcoind (regtest) and real RocksDB.
//! Set `STINT_BITCOIND` to the bitcoind to use.

mod common;
mod faults;
mod flow;
mod hostile;
mod jsonrpc;
mod outage;
mod reorg;
mod slots;
mod structure;
