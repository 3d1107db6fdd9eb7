//! Integration tests of stint-contracts: test vectors and property tests.

mod prop;
mod vectors;
