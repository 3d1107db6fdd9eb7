#![no_main]
//! State record decoding (accounts, tasks, streams read from a witness) must never panic, and
//! every accepted encoding must be canonical.

use libfuzzer_sys::fuzz_target;
use stint_contracts::Record;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::decode(data) {
        assert_eq!(record.encode(), data, "accepted a non-canonical record");
    }
});
