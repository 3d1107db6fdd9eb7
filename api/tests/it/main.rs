//! Integration tests of the API crate: both nodes, on one real regtest chain, answer every
//! shared read method alike.

mod identical;
