//! Fuzzes the envelope and index-hint decoders: no panics on any script, and whatever decodes is
//! canonical (re-encoding gives back the same content / bytes).
#![no_main]

use bitcoin::Script;
use libfuzzer_sys::fuzz_target;
use stint_protocol::{AnchorAuth, Envelope, EnvelopeKind, IndexHint, RawEnvelope};

fuzz_target!(|data: &[u8]| {
    let script = Script::from_bytes(data);
    if let Ok(envelope) = Envelope::from_leaf_script(script) {
        assert!(!envelope.payload.is_empty());
        // Our compressor may produce a different (even larger) body than the one decoded, but if
        // it encodes at all, the result must decode to the same envelope.
        if let Ok(again) = envelope.leaf_script() {
            assert_eq!(Envelope::from_leaf_script(&again).ok(), Some(envelope));
        }
    }
    // Parsing the layout alone never decompresses and never panics; the frame checks neither.
    if let Ok(raw) = RawEnvelope::from_leaf_script(script) {
        let _ = raw.declared_size(usize::MAX);
    }
    if let Ok(hint) = IndexHint::from_script(script) {
        assert_eq!(hint.to_script().as_bytes(), data);
    }
    // Also use the input as a payload: encoding then decoding is the identity.
    if let Some((&first, payload)) = data.split_first() {
        let kind = if first & 1 == 0 {
            EnvelopeKind::Batch
        } else {
            EnvelopeKind::Challenge
        };
        let secp = bitcoin::secp256k1::Secp256k1::signing_only();
        let key = bitcoin::secp256k1::SecretKey::from_slice(&[first.max(1); 32])
            .map(|sk| sk.x_only_public_key(&secp).0);
        if let (Ok(key), false) = (key, payload.is_empty()) {
            let mut envelope = Envelope::new(kind, key, payload.to_vec());
            if kind == EnvelopeKind::Batch {
                // Layout only: derivation, not the codec, verifies the signature.
                envelope = envelope.with_auth(AnchorAuth {
                    header_hash: [first; 32],
                    signature: [first; 64],
                });
            }
            let script = envelope
                .leaf_script()
                .expect("small payloads always encode");
            assert_eq!(Envelope::from_leaf_script(&script).ok(), Some(envelope));
        }
    }
});
