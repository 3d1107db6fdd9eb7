//! Integration tests of stint-protocol: genesis, batches, the judge and derivation.

mod budget;
mod common;
mod derivation;
mod genesis;
mod judge;
mod l1;
mod messages;
mod props;
