//! Integration tests of stint-anchor against a real bitcoind in regtest (see `RegtestNode`).
//!
//! The envelope, reorg and fee-bump tests live in `tests/pending/` until they can run here: the
//! only bitcoind this machine kind can install (Debian's Bitcoin Knots 29.5) refuses every
//! `OP_FALSE OP_IF` envelope reveal by policy (`mempool-script-verify-flag-failed (OP_IF/NOTIF
//! argument must be minimal in tapscript)`), even with `-corepolicy=1`. See
//! `tests/pending/README.md`.

mod common;
mod node;
