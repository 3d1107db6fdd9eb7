//! Integration tests of stint-anchor against a real bitcoind in regtest (see `RegtestNode`).
//!
//! They run against Bitcoin Core and Bitcoin Knots alike: on Knots (whose relay policy refuses
//! `OP_IF` in tapscript) the anchorer mines envelope pairs directly ([`Submission::MineDirectly`]),
//! and the tests check whichever path the node needs.
//!
//! [`Submission::MineDirectly`]: stint_anchor::Submission::MineDirectly

mod budget;
mod common;
mod derivation;
mod envelopes;
mod fee_bump;
mod forged;
mod node;
mod reorg;
