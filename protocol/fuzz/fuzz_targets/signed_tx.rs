#![no_main]
//! Signed-tx decoding (the bytes of `stint_sendRawTransaction` and of every batch) must never
//! panic; an accepted encoding must be canonical, and verifying it must not panic either.

use libfuzzer_sys::fuzz_target;
use stint_contracts::{SignedTx, Tx};

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = SignedTx::decode(data) {
        assert_eq!(tx.encode(), data, "accepted a non-canonical signed tx");
        let _ = tx.txid();
        let _ = tx.verify();
    }
    if let Ok(tx) = Tx::decode(data) {
        assert_eq!(tx.encode(), data, "accepted a non-canonical tx");
    }
});
