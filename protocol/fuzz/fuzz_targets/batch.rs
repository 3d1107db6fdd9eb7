#![no_main]
//! Batch decoding must never panic, and every accepted encoding must be canonical.

use libfuzzer_sys::fuzz_target;
use stint_protocol::Batch;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = Batch::decode(data) {
        assert_eq!(
            batch.encode().ok().as_deref(),
            Some(data),
            "accepted a non-canonical batch encoding"
        );
        let _ = batch.hash();
    }
});
