//! Fuzzes the L1-message decoders: an encoded [`L1Message`] and a deposit tag script. No panics
//! on any input, and whatever decodes is canonical (re-encoding gives back the same bytes).
#![no_main]

use bitcoin::Script;
use libfuzzer_sys::fuzz_target;
use stint_protocol::{DepositTag, L1Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = L1Message::decode(data) {
        assert_eq!(message.encode(), data);
    }
    if let Some(tag) = DepositTag::from_script(Script::from_bytes(data)) {
        assert_eq!(tag.to_script().as_bytes(), data);
    }
});
