//! # stint-verifier
//!
//! The verifier. Not built yet: see the verifier issue. This crate is a documented skeleton.
