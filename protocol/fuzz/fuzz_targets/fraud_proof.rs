#![no_main]
//! Fraud-proof decoding must never panic, and every accepted encoding must be canonical.

use libfuzzer_sys::fuzz_target;
use stint_protocol::FraudProof;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = FraudProof::decode(data) {
        assert_eq!(
            proof.encode().ok().as_deref(),
            Some(data),
            "accepted a non-canonical fraud proof encoding"
        );
    }
});
