//! # stint-sequencer
//!
//! The sequencer. Not built yet: see the sequencer issue. This crate is a documented skeleton.
