//! # stint-bench
//!
//! Benchmarks and load generation. Criterion benches live beside the crates they measure until the bench issue lands.
