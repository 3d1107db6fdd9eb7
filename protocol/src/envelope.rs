//! The Bitcoin envelope codec: how batches and challenges are written into taproot leaf scripts,
//! and the `OP_RETURN` index hint that travels next to them.
//!
//! # Leaf script layout
//!
//! ```text
//! <anchor_xonly_key> OP_CHECKSIG
//! OP_FALSE OP_IF
//!   "stint" <kind> <chunk_0> <chunk_1> ... <chunk_n>
//! OP_ENDIF
//! ```
//!
//! The body (`chunk_0 ‖ … ‖ chunk_n`) is one zstd frame holding the caller's payload (e.g. an
//! encoded batch). The `OP_FALSE OP_IF … OP_ENDIF` branch never executes, so the leaf is spendable
//! exactly by a BIP340 signature of `anchor_xonly_key`: Bitcoin itself proves who wrote it.
//!
//! # Canonical form
//!
//! Decoding is strict and deterministic; a script is an envelope only if it is *byte-identical* to
//! what [`Envelope::leaf_script`] would build from the decoded fields (and the same compressed
//! body). Concretely:
//!
//! * every data push uses the shortest push opcode for its length (`OP_PUSHBYTES_n` up to 75 bytes,
//!   `OP_PUSHDATA1` up to 255, `OP_PUSHDATA2` up to 520); `OP_FALSE` is the single byte `0x00`;
//! * the tag is the 5-byte push `"stint"`, the kind a 1-byte push (`0x01 0x01` / `0x01 0x02`);
//! * the body is split into chunks of exactly [`MAX_CHUNK_LEN`] (520) bytes, except the last, which
//!   holds 1..=520 bytes; there is at least one chunk;
//! * nothing follows `OP_ENDIF`;
//! * the body is exactly one zstd frame (no trailing or skippable frames) that decompresses to
//!   1..=[`MAX_PAYLOAD_BYTES`] bytes (zip-bomb safe: decompression stops at the bound).
//!
//! The compressed bytes themselves are *not* required to be what this crate's zstd would produce
//! (compressors may differ between versions); any valid frame is accepted, so derivation never
//! depends on the compressor.
//!
//! # Index hint
//!
//! `OP_RETURN "STNT" <kind: 1 byte> <number: 8 bytes big-endian> <header_hash: 32 bytes>` — a
//! 50-byte script (within the 83-byte standard `OP_RETURN` limit) that lets indexers find a batch
//! without decompressing the envelope. It is only a hint: derivation trusts the envelope.

use std::fmt;

use bitcoin::opcodes::all::{OP_CHECKSIG, OP_ENDIF, OP_IF, OP_RETURN};
use bitcoin::opcodes::OP_FALSE;
use bitcoin::script::{Builder, Instruction, PushBytesBuf};
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::taproot::{ControlBlock, LeafVersion};
use bitcoin::{Block, Script, ScriptBuf, Transaction, Txid};

/// The protocol tag pushed right after `OP_IF` in every envelope.
pub const ENVELOPE_TAG: &[u8; 5] = b"stint";

/// The tag pushed right after `OP_RETURN` in every index hint.
pub const INDEX_HINT_TAG: &[u8; 4] = b"STNT";

/// Largest data push allowed by Bitcoin's script interpreter (`MAX_SCRIPT_ELEMENT_SIZE`).
pub const MAX_CHUNK_LEN: usize = 520;

/// Largest compressed envelope body (zstd frame) in bytes.
///
/// One reveal must stay within Bitcoin's standard transaction weight (400,000 WU). The reveal
/// built by the anchorer has one input and two outputs (index hint + change, P2TR):
///
/// * non-witness bytes, ×4: version 4 + input count 1 + input 41 (outpoint 36, empty scriptSig 1,
///   sequence 4) + output count 1 + hint output 59 (value 8, length 1, script 50) + P2TR change 43
///   + lock time 4 = 153 bytes = 612 WU;
/// * witness bytes, ×1: marker/flag 2 + item count 1 + signature 65 + leaf script length prefix 5
///   + leaf script + control block 34 (1 + 33, single-leaf tree) = 107 WU + leaf script;
/// * leaf script = 45 bytes of fixed parts (key push 33, `OP_CHECKSIG`, `OP_FALSE`, `OP_IF`, tag
///   push 6, kind push 2, `OP_ENDIF`) + body + 3 bytes per 520-byte chunk (`OP_PUSHDATA2` + length).
///
/// With a 395,000-byte body: 760 chunks → leaf script 395,000 + 2,280 + 45 = 397,325 bytes, and
/// the reveal weighs 612 + 107 + 397,325 = 398,044 WU, leaving ~1,950 WU of headroom
/// (Citrea, for comparison, caps bodies at 397,000 bytes).
pub const MAX_ENVELOPE_BODY: usize = 395_000;

/// Largest decompressed payload in bytes (bounds the work and memory of decoding an envelope).
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// zstd level used to compress payloads (a deterministic function of the payload for a given
/// zstd version; decoding does not depend on it).
pub const COMPRESSION_LEVEL: i32 = 12;

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum EnvelopeKind {
    /// An encoded batch written by the sequencer (must be signed by the genesis anchor key).
    Batch = 1,
    /// An encoded fraud proof written by a challenger (any key).
    Challenge = 2,
}

impl EnvelopeKind {
    /// The byte that identifies this kind on chain.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// Parses the on-chain kind byte.
    pub fn from_byte(byte: u8) -> Result<Self, EnvelopeError> {
        match byte {
            1 => Ok(Self::Batch),
            2 => Ok(Self::Challenge),
            other => Err(EnvelopeError::UnknownKind(other)),
        }
    }
}

impl fmt::Display for EnvelopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Batch => f.write_str("batch"),
            Self::Challenge => f.write_str("challenge"),
        }
    }
}

/// Why a script is not a valid envelope / index hint, or why an envelope cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The script does not follow the envelope (or hint) opcode layout.
    #[error("invalid layout at instruction {position}: {reason}")]
    Layout {
        /// Index of the offending instruction.
        position: usize,
        /// What was expected there.
        reason: &'static str,
    },
    /// The script has the right shape but is not byte-identical to its canonical encoding
    /// (a non-minimal push, a short inner chunk, …).
    #[error("script is not in canonical form")]
    NonCanonical,
    /// The kind byte is not a known [`EnvelopeKind`].
    #[error("unknown envelope kind {0}")]
    UnknownKind(u8),
    /// The key push is not a valid x-only public key.
    #[error("invalid x-only public key")]
    InvalidKey,
    /// The compressed body exceeds [`MAX_ENVELOPE_BODY`].
    #[error("compressed body of {size} bytes exceeds the maximum of {max}")]
    BodyTooLarge {
        /// Size of the compressed body.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is larger than [`MAX_PAYLOAD_BYTES`] (or decompresses beyond it).
    #[error("payload exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// The limit.
        max: usize,
    },
    /// The payload is empty.
    #[error("empty payload")]
    EmptyPayload,
    /// The body is not exactly one well-formed zstd frame.
    #[error("invalid zstd body: {0}")]
    Decompress(String),
    /// Compressing the payload failed (internal: zstd could not allocate / initialise).
    #[error("compression failed: {0}")]
    Compress(String),
}

/// A decoded envelope: who wrote it, what it is, and the uncompressed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// What the payload is.
    pub kind: EnvelopeKind,
    /// The x-only key whose signature spends the leaf (the writer).
    pub key: XOnlyPublicKey,
    /// The uncompressed payload (e.g. a borsh-encoded batch).
    pub payload: Vec<u8>,
}

impl Envelope {
    /// Creates an envelope.
    pub fn new(kind: EnvelopeKind, key: XOnlyPublicKey, payload: Vec<u8>) -> Self {
        Self { kind, key, payload }
    }

    /// Compresses the payload and builds the tapscript leaf that carries it.
    pub fn leaf_script(&self) -> Result<ScriptBuf, EnvelopeError> {
        if self.payload.is_empty() {
            return Err(EnvelopeError::EmptyPayload);
        }
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(EnvelopeError::PayloadTooLarge {
                max: MAX_PAYLOAD_BYTES,
            });
        }
        let body = zstd::bulk::compress(&self.payload, COMPRESSION_LEVEL)
            .map_err(|e| EnvelopeError::Compress(e.to_string()))?;
        if body.len() > MAX_ENVELOPE_BODY {
            return Err(EnvelopeError::BodyTooLarge {
                size: body.len(),
                max: MAX_ENVELOPE_BODY,
            });
        }
        build_leaf_script(self.kind, &self.key, &body)
    }

    /// Decodes a tapscript leaf strictly (see the module docs for the canonical form).
    pub fn from_leaf_script(script: &Script) -> Result<Self, EnvelopeError> {
        let parsed = parse_leaf_layout(script)?;
        if parsed.body.len() > MAX_ENVELOPE_BODY {
            return Err(EnvelopeError::BodyTooLarge {
                size: parsed.body.len(),
                max: MAX_ENVELOPE_BODY,
            });
        }
        let canonical = build_leaf_script(parsed.kind, &parsed.key, &parsed.body)?;
        if canonical.as_bytes() != script.as_bytes() {
            return Err(EnvelopeError::NonCanonical);
        }
        let payload = decompress_body(&parsed.body)?;
        Ok(Self {
            kind: parsed.kind,
            key: parsed.key,
            payload,
        })
    }
}

/// The fields of a leaf script, before canonical-form and body checks.
struct ParsedLeaf {
    kind: EnvelopeKind,
    key: XOnlyPublicKey,
    body: Vec<u8>,
}

fn layout(position: usize, reason: &'static str) -> EnvelopeError {
    EnvelopeError::Layout { position, reason }
}

fn parse_leaf_layout(script: &Script) -> Result<ParsedLeaf, EnvelopeError> {
    let mut instructions = script.instructions().enumerate();
    let mut next = |reason: &'static str| next_instruction(&mut instructions, reason);

    let key = match next("missing key")? {
        (_, Instruction::PushBytes(bytes)) if bytes.len() == 32 => {
            XOnlyPublicKey::from_slice(bytes.as_bytes()).map_err(|_| EnvelopeError::InvalidKey)?
        }
        (i, _) => return Err(layout(i, "expected a 32-byte key push")),
    };
    match next("missing OP_CHECKSIG")? {
        (_, Instruction::Op(op)) if op == OP_CHECKSIG => {}
        (i, _) => return Err(layout(i, "expected OP_CHECKSIG")),
    }
    match next("missing OP_FALSE")? {
        (_, Instruction::PushBytes(bytes)) if bytes.is_empty() => {}
        (i, _) => return Err(layout(i, "expected OP_FALSE")),
    }
    match next("missing OP_IF")? {
        (_, Instruction::Op(op)) if op == OP_IF => {}
        (i, _) => return Err(layout(i, "expected OP_IF")),
    }
    match next("missing tag")? {
        (_, Instruction::PushBytes(bytes)) if bytes.as_bytes() == ENVELOPE_TAG => {}
        (i, _) => return Err(layout(i, "expected the \"stint\" tag")),
    }
    let kind = match next("missing kind")? {
        (_, Instruction::PushBytes(bytes)) => match bytes.as_bytes() {
            [byte] => EnvelopeKind::from_byte(*byte)?,
            _ => return Err(EnvelopeError::NonCanonical),
        },
        (i, _) => return Err(layout(i, "expected a 1-byte kind push")),
    };
    let mut body = Vec::new();
    loop {
        match next("missing OP_ENDIF")? {
            (_, Instruction::PushBytes(bytes)) => {
                // Bound the work on hostile scripts before copying further.
                if body.len() > MAX_ENVELOPE_BODY {
                    return Err(EnvelopeError::BodyTooLarge {
                        size: body.len(),
                        max: MAX_ENVELOPE_BODY,
                    });
                }
                body.extend_from_slice(bytes.as_bytes());
            }
            (_, Instruction::Op(op)) if op == OP_ENDIF => break,
            (i, _) => return Err(layout(i, "expected a body push or OP_ENDIF")),
        }
    }
    if let Some((i, _)) = instructions.next() {
        return Err(layout(i, "trailing data after OP_ENDIF"));
    }
    if body.is_empty() {
        return Err(EnvelopeError::EmptyPayload);
    }
    Ok(ParsedLeaf { kind, key, body })
}

type Instructions<'a> = std::iter::Enumerate<bitcoin::script::Instructions<'a>>;

fn next_instruction<'a>(
    instructions: &mut Instructions<'a>,
    reason: &'static str,
) -> Result<(usize, Instruction<'a>), EnvelopeError> {
    match instructions.next() {
        Some((i, Ok(instruction))) => Ok((i, instruction)),
        Some((i, Err(_))) => Err(layout(i, "truncated push")),
        None => Err(layout(usize::MAX, reason)),
    }
}

fn build_leaf_script(
    kind: EnvelopeKind,
    key: &XOnlyPublicKey,
    body: &[u8],
) -> Result<ScriptBuf, EnvelopeError> {
    let mut builder = Builder::new()
        .push_x_only_key(key)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_FALSE)
        .push_opcode(OP_IF)
        .push_slice(ENVELOPE_TAG)
        .push_slice([kind.to_byte()]);
    for chunk in body.chunks(MAX_CHUNK_LEN) {
        let push = PushBytesBuf::try_from(chunk.to_vec())
            .map_err(|_| EnvelopeError::Compress("chunk exceeds push limit".into()))?;
        builder = builder.push_slice(push);
    }
    Ok(builder.push_opcode(OP_ENDIF).into_script())
}

fn decompress_body(body: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    // Exactly one frame, covering the whole body (no trailing bytes or extra/skippable frames).
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(body)
        .map_err(|code| EnvelopeError::Decompress(zstd::zstd_safe::get_error_name(code).into()))?;
    if frame_len != body.len() {
        return Err(EnvelopeError::Decompress(
            "trailing data after the zstd frame".into(),
        ));
    }
    // A declared content size above the bound is rejected before allocating anything.
    match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(size)) if size > MAX_PAYLOAD_BYTES as u64 => {
            return Err(EnvelopeError::PayloadTooLarge {
                max: MAX_PAYLOAD_BYTES,
            })
        }
        Ok(_) => {}
        Err(_) => return Err(EnvelopeError::Decompress("unreadable frame header".into())),
    }
    let mut decompressor =
        zstd::bulk::Decompressor::new().map_err(|e| EnvelopeError::Decompress(e.to_string()))?;
    // Decoding into a buffer of exactly MAX_PAYLOAD_BYTES fails (dstSize_tooSmall) on anything
    // bigger, so a zip bomb costs at most MAX_PAYLOAD_BYTES of output.
    let payload = decompressor
        .decompress(body, MAX_PAYLOAD_BYTES)
        .map_err(|e| {
            if e.to_string().contains("Destination buffer is too small") {
                EnvelopeError::PayloadTooLarge {
                    max: MAX_PAYLOAD_BYTES,
                }
            } else {
                EnvelopeError::Decompress(e.to_string())
            }
        })?;
    if payload.is_empty() {
        return Err(EnvelopeError::EmptyPayload);
    }
    Ok(payload)
}

/// The `OP_RETURN` index hint a reveal carries next to its envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexHint {
    /// Kind of the envelope in the same transaction.
    pub kind: EnvelopeKind,
    /// Batch number (for a challenge: the number of the challenged batch).
    pub number: u64,
    /// Header hash of the batch (for a challenge: of the challenged batch).
    pub header_hash: [u8; 32],
}

impl IndexHint {
    /// Builds the `OP_RETURN "STNT" <kind> <number be8> <hash>` output script (50 bytes).
    pub fn to_script(&self) -> ScriptBuf {
        Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice(INDEX_HINT_TAG)
            .push_slice([self.kind.to_byte()])
            .push_slice(self.number.to_be_bytes())
            .push_slice(self.header_hash)
            .into_script()
    }

    /// Parses an index hint output script strictly (exact layout and pushes, nothing else).
    pub fn from_script(script: &Script) -> Result<Self, EnvelopeError> {
        let mut instructions = script.instructions().enumerate();
        match instructions.next() {
            Some((_, Ok(Instruction::Op(op)))) if op == OP_RETURN => {}
            _ => return Err(layout(0, "expected OP_RETURN")),
        }
        let mut pushes: [&[u8]; 4] = [&[]; 4];
        for slot in pushes.iter_mut() {
            match instructions.next() {
                Some((_, Ok(Instruction::PushBytes(bytes)))) => *slot = bytes.as_bytes(),
                Some((i, _)) => return Err(layout(i, "expected a data push")),
                None => return Err(layout(usize::MAX, "too few pushes")),
            }
        }
        if let Some((i, _)) = instructions.next() {
            return Err(layout(i, "trailing data after the hash"));
        }
        let [tag, kind, number, hash] = pushes;
        if tag != INDEX_HINT_TAG {
            return Err(layout(1, "expected the \"STNT\" tag"));
        }
        let kind = match kind {
            [byte] => EnvelopeKind::from_byte(*byte)?,
            _ => return Err(layout(2, "expected a 1-byte kind")),
        };
        let number = <[u8; 8]>::try_from(number)
            .map(u64::from_be_bytes)
            .map_err(|_| layout(3, "expected an 8-byte number"))?;
        let header_hash =
            <[u8; 32]>::try_from(hash).map_err(|_| layout(4, "expected a 32-byte hash"))?;
        let hint = Self {
            kind,
            number,
            header_hash,
        };
        if hint.to_script().as_bytes() != script.as_bytes() {
            return Err(EnvelopeError::NonCanonical);
        }
        Ok(hint)
    }
}

/// Finds the envelopes in a transaction, in input order.
///
/// Every input whose witness is a taproot script-path spend (`[.., leaf script, control block]`,
/// optional annex, leaf version 0xc0) is tried; leaves that are not valid envelopes are skipped.
/// The key is returned as written, so callers filter on it (e.g. the genesis anchor key).
pub fn find_envelopes(tx: &Transaction) -> Vec<Envelope> {
    tx.input
        .iter()
        .filter_map(|input| envelope_in_witness(&input.witness))
        .collect()
}

fn envelope_in_witness(witness: &bitcoin::Witness) -> Option<Envelope> {
    let leaf = witness.taproot_leaf_script()?;
    if leaf.version != LeafVersion::TapScript {
        return None;
    }
    ControlBlock::decode(witness.taproot_control_block()?).ok()?;
    Envelope::from_leaf_script(leaf.script).ok()
}

/// Finds the first valid index hint among a transaction's outputs.
pub fn find_index_hint(tx: &Transaction) -> Option<IndexHint> {
    tx.output
        .iter()
        .find_map(|out| IndexHint::from_script(&out.script_pubkey).ok())
}

/// An envelope found in a block, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedEnvelope {
    /// Position of the transaction in the block.
    pub tx_index: usize,
    /// The transaction's id.
    pub txid: Txid,
    /// Position of the spending input in the transaction.
    pub input_index: usize,
    /// The decoded envelope.
    pub envelope: Envelope,
    /// The transaction's index hint, if it has a valid one.
    pub hint: Option<IndexHint>,
}

/// Finds every envelope of a transaction with its position (`tx_index` is supplied by the caller).
pub fn locate_envelopes(tx_index: usize, tx: &Transaction) -> Vec<LocatedEnvelope> {
    let mut found = Vec::new();
    let mut hint_and_txid = None;
    for (input_index, input) in tx.input.iter().enumerate() {
        if let Some(envelope) = envelope_in_witness(&input.witness) {
            let (txid, hint) =
                *hint_and_txid.get_or_insert_with(|| (tx.compute_txid(), find_index_hint(tx)));
            found.push(LocatedEnvelope {
                tx_index,
                txid,
                input_index,
                envelope,
                hint,
            });
        }
    }
    found
}

/// Finds every envelope of a block in block order (transaction order, then input order).
pub fn find_block_envelopes(block: &Block) -> Vec<LocatedEnvelope> {
    block
        .txdata
        .iter()
        .enumerate()
        .flat_map(|(tx_index, tx)| locate_envelopes(tx_index, tx))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
    use bitcoin::taproot::TaprootBuilder;
    use bitcoin::{absolute, transaction, Amount, OutPoint, Sequence, TxIn, TxOut, Witness};
    use proptest::prelude::*;

    fn key(seed: u8) -> XOnlyPublicKey {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(&[seed.clamp(1, 0x7f); 32]).unwrap();
        Keypair::from_secret_key(&secp, &sk).x_only_public_key().0
    }

    /// Deterministic incompressible bytes (SHA-256 chain).
    fn noise(len: usize) -> Vec<u8> {
        use bitcoin::hashes::{sha256, Hash};
        let mut out = Vec::with_capacity(len + 32);
        let mut h = sha256::Hash::hash(b"seed");
        while out.len() < len {
            out.extend_from_slice(h.as_byte_array());
            h = sha256::Hash::hash(h.as_byte_array());
        }
        out.truncate(len);
        out
    }

    /// Builds a leaf by hand from a raw body (no compression), for reject tests.
    fn raw_leaf(kind: u8, body: &[u8]) -> ScriptBuf {
        let mut b = Builder::new()
            .push_x_only_key(&key(1))
            .push_opcode(OP_CHECKSIG)
            .push_opcode(OP_FALSE)
            .push_opcode(OP_IF)
            .push_slice(ENVELOPE_TAG)
            .push_slice([kind]);
        for chunk in body.chunks(MAX_CHUNK_LEN) {
            b = b.push_slice(PushBytesBuf::try_from(chunk.to_vec()).unwrap());
        }
        b.push_opcode(OP_ENDIF).into_script()
    }

    fn spend_with_leaf(leaf: &ScriptBuf) -> Transaction {
        let secp = Secp256k1::new();
        let info = TaprootBuilder::new()
            .add_leaf(0, leaf.clone())
            .unwrap()
            .finalize(&secp, key(9))
            .unwrap();
        let cb = info
            .control_block(&(leaf.clone(), LeafVersion::TapScript))
            .unwrap();
        let mut witness = Witness::new();
        witness.push([7u8; 64]);
        witness.push(leaf.as_bytes());
        witness.push(cb.serialize());
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness,
            }],
            output: vec![TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::new(),
            }],
        }
    }

    #[test]
    fn round_trip_small_and_large() {
        for (kind, payload) in [
            (EnvelopeKind::Batch, b"hello".to_vec()),
            (EnvelopeKind::Challenge, vec![0u8; 1_000_000]),
            (EnvelopeKind::Batch, noise(300_000)),
        ] {
            let env = Envelope::new(kind, key(3), payload);
            let script = env.leaf_script().unwrap();
            assert_eq!(Envelope::from_leaf_script(&script).unwrap(), env);
        }
    }

    #[test]
    fn max_body_fits_and_oversize_is_rejected() {
        // Incompressible payload slightly above the body limit.
        let env = Envelope::new(EnvelopeKind::Batch, key(3), noise(MAX_ENVELOPE_BODY + 100));
        assert!(matches!(
            env.leaf_script(),
            Err(EnvelopeError::BodyTooLarge { .. })
        ));
        // Just below: accepted, and the leaf script has the size the docs compute.
        let env = Envelope::new(EnvelopeKind::Batch, key(3), noise(MAX_ENVELOPE_BODY - 200));
        let script = env.leaf_script().unwrap();
        assert!(script.len() <= MAX_ENVELOPE_BODY + 3 * MAX_ENVELOPE_BODY.div_ceil(520) + 45);
        assert_eq!(Envelope::from_leaf_script(&script).unwrap(), env);
        // A hand-built script whose body exceeds the limit is rejected on decode too.
        let big = raw_leaf(1, &noise(MAX_ENVELOPE_BODY + 1));
        assert!(matches!(
            Envelope::from_leaf_script(&big),
            Err(EnvelopeError::BodyTooLarge { .. })
        ));
    }

    #[test]
    fn empty_and_oversized_payloads_are_rejected() {
        let env = Envelope::new(EnvelopeKind::Batch, key(3), Vec::new());
        assert_eq!(env.leaf_script(), Err(EnvelopeError::EmptyPayload));
        let env = Envelope::new(EnvelopeKind::Batch, key(3), vec![0; MAX_PAYLOAD_BYTES + 1]);
        assert!(matches!(
            env.leaf_script(),
            Err(EnvelopeError::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn zip_bomb_is_rejected() {
        // 64 MiB of zeros compresses to a few KiB; with and without a declared content size.
        let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 3).unwrap();
        assert!(bomb.len() < MAX_ENVELOPE_BODY);
        assert_eq!(
            Envelope::from_leaf_script(&raw_leaf(1, &bomb)),
            Err(EnvelopeError::PayloadTooLarge {
                max: MAX_PAYLOAD_BYTES
            })
        );
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut enc, &vec![0u8; 8 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert_eq!(
            Envelope::from_leaf_script(&raw_leaf(1, &bomb)),
            Err(EnvelopeError::PayloadTooLarge {
                max: MAX_PAYLOAD_BYTES
            })
        );
    }

    #[test]
    fn strict_rejects() {
        let env = Envelope::new(EnvelopeKind::Batch, key(3), b"payload".to_vec());
        let good = env.leaf_script().unwrap();
        let body = zstd::bulk::compress(b"payload", COMPRESSION_LEVEL).unwrap();
        assert_eq!(good, {
            let mut s = raw_leaf(1, &body).into_bytes();
            s[1..33].copy_from_slice(&key(3).serialize());
            ScriptBuf::from_bytes(s)
        });

        // Trailing opcode after OP_ENDIF.
        let mut bytes = good.to_bytes();
        bytes.push(OP_CHECKSIG.to_u8());
        assert!(matches!(
            Envelope::from_leaf_script(Script::from_bytes(&bytes)),
            Err(EnvelopeError::Layout { .. })
        ));

        // Wrong tag.
        let mut bytes = good.to_bytes();
        bytes[38] = b'S';
        assert!(matches!(
            Envelope::from_leaf_script(Script::from_bytes(&bytes)),
            Err(EnvelopeError::Layout { .. })
        ));

        // Unknown kind.
        assert_eq!(
            Envelope::from_leaf_script(&raw_leaf(3, &body)),
            Err(EnvelopeError::UnknownKind(3))
        );

        // Non-minimal push of the body (OP_PUSHDATA1 for a short chunk).
        let prefix_len = 33 + 1 + 1 + 1 + 6 + 2;
        let mut bytes = good.as_bytes()[..prefix_len].to_vec();
        bytes.push(0x4c);
        bytes.push(body.len() as u8);
        bytes.extend_from_slice(&body);
        bytes.push(OP_ENDIF.to_u8());
        assert_eq!(
            Envelope::from_leaf_script(Script::from_bytes(&bytes)),
            Err(EnvelopeError::NonCanonical)
        );

        // Body split into a short chunk followed by another one.
        let mut b = Builder::new()
            .push_x_only_key(&key(1))
            .push_opcode(OP_CHECKSIG)
            .push_opcode(OP_FALSE)
            .push_opcode(OP_IF)
            .push_slice(ENVELOPE_TAG)
            .push_slice([1]);
        let (a, c) = body.split_at(3);
        b = b.push_slice(PushBytesBuf::try_from(a.to_vec()).unwrap());
        b = b.push_slice(PushBytesBuf::try_from(c.to_vec()).unwrap());
        let split = b.push_opcode(OP_ENDIF).into_script();
        assert_eq!(
            Envelope::from_leaf_script(&split),
            Err(EnvelopeError::NonCanonical)
        );

        // Trailing bytes after the zstd frame, and a second frame.
        let mut two = body.clone();
        two.push(0);
        assert!(matches!(
            Envelope::from_leaf_script(&raw_leaf(1, &two)),
            Err(EnvelopeError::Decompress(_))
        ));
        let mut two = body.clone();
        two.extend_from_slice(&body);
        assert!(matches!(
            Envelope::from_leaf_script(&raw_leaf(1, &two)),
            Err(EnvelopeError::Decompress(_))
        ));

        // Not zstd at all; empty body.
        assert!(matches!(
            Envelope::from_leaf_script(&raw_leaf(1, b"not zstd")),
            Err(EnvelopeError::Decompress(_))
        ));
        assert_eq!(
            Envelope::from_leaf_script(&raw_leaf(1, b"")),
            Err(EnvelopeError::EmptyPayload)
        );

        // Invalid key (not on the curve: x = 0x05 is not a valid x coordinate? use all-0xff).
        let mut bytes = good.to_bytes();
        bytes[1..33].copy_from_slice(&[0xff; 32]);
        assert_eq!(
            Envelope::from_leaf_script(Script::from_bytes(&bytes)),
            Err(EnvelopeError::InvalidKey)
        );

        // Truncated script.
        let bytes = &good.as_bytes()[..good.len() - 5];
        assert!(Envelope::from_leaf_script(Script::from_bytes(bytes)).is_err());
    }

    #[test]
    fn index_hint_round_trip_and_rejects() {
        let hint = IndexHint {
            kind: EnvelopeKind::Challenge,
            number: 42,
            header_hash: [9; 32],
        };
        let script = hint.to_script();
        assert_eq!(script.len(), 50);
        assert!(script.is_op_return());
        assert_eq!(IndexHint::from_script(&script), Ok(hint));

        let mut bad = script.to_bytes();
        bad[2] = b'X';
        assert!(IndexHint::from_script(Script::from_bytes(&bad)).is_err());
        let mut bad = script.to_bytes();
        bad.push(0x51);
        assert!(IndexHint::from_script(Script::from_bytes(&bad)).is_err());
        let mut bad = script.to_bytes();
        bad[7] = 7;
        assert_eq!(
            IndexHint::from_script(Script::from_bytes(&bad)),
            Err(EnvelopeError::UnknownKind(7))
        );
        // Number pushed with OP_PUSHDATA1 (non-minimal).
        let mut bad = script.as_bytes()[..8].to_vec();
        bad.extend_from_slice(&[0x4c, 8]);
        bad.extend_from_slice(&42u64.to_be_bytes());
        bad.extend_from_slice(&script.as_bytes()[17..]);
        assert_eq!(
            IndexHint::from_script(Script::from_bytes(&bad)),
            Err(EnvelopeError::NonCanonical)
        );
        assert!(IndexHint::from_script(Script::new()).is_err());
    }

    #[test]
    fn finds_envelopes_in_transactions_and_blocks() {
        let env = Envelope::new(EnvelopeKind::Batch, key(4), b"batch bytes".to_vec());
        let leaf = env.leaf_script().unwrap();
        let mut tx = spend_with_leaf(&leaf);
        let hint = IndexHint {
            kind: EnvelopeKind::Batch,
            number: 1,
            header_hash: [1; 32],
        };
        tx.output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: hint.to_script(),
        });
        assert_eq!(find_envelopes(&tx), vec![env.clone()]);
        assert_eq!(find_index_hint(&tx), Some(hint));

        // A malformed leaf (wrong tag) in a second input is skipped.
        let mut bad = leaf.to_bytes();
        bad[38] = b'X';
        let bad_tx = spend_with_leaf(&ScriptBuf::from_bytes(bad));
        tx.input.push(bad_tx.input[0].clone());
        // A key-path spend (single signature) is not an envelope either.
        tx.input.push(TxIn {
            witness: Witness::from_slice(&[[1u8; 64]]),
            ..bad_tx.input[0].clone()
        });
        assert_eq!(find_envelopes(&tx), vec![env.clone()]);

        let block = Block {
            header: bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest).header,
            txdata: vec![
                spend_with_leaf(&raw_leaf(2, b"junk")),
                tx.clone(),
                tx.clone(),
            ],
        };
        let found = find_block_envelopes(&block);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].tx_index, found[0].input_index), (1, 0));
        assert_eq!(found[1].tx_index, 2);
        assert_eq!(found[0].txid, tx.compute_txid());
        assert_eq!(found[0].hint, Some(hint));
        assert_eq!(found[0].envelope, env);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn prop_round_trip(kind in prop_oneof![Just(EnvelopeKind::Batch), Just(EnvelopeKind::Challenge)],
                           seed in 1u8..=255, payload in proptest::collection::vec(any::<u8>(), 1..4000)) {
            let env = Envelope::new(kind, key(seed), payload);
            let script = env.leaf_script().unwrap();
            prop_assert_eq!(Envelope::from_leaf_script(&script).unwrap(), env);
        }

        #[test]
        fn prop_decode_never_panics_and_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            if let Ok(env) = Envelope::from_leaf_script(Script::from_bytes(&bytes)) {
                // Whatever decodes re-encodes to a valid envelope with the same content.
                if let Ok(script) = env.leaf_script() {
                    prop_assert_eq!(Envelope::from_leaf_script(&script).unwrap(), env);
                }
            }
            let _ = IndexHint::from_script(Script::from_bytes(&bytes));
        }

        #[test]
        fn prop_mutations_never_panic(payload in proptest::collection::vec(any::<u8>(), 1..600),
                                      pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let env = Envelope::new(EnvelopeKind::Batch, key(5), payload);
            let mut bytes = env.leaf_script().unwrap().into_bytes();
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            // Decoding is deterministic whatever the outcome.
            let first = Envelope::from_leaf_script(Script::from_bytes(&bytes));
            prop_assert_eq!(first, Envelope::from_leaf_script(Script::from_bytes(&bytes)));
        }

        #[test]
        fn prop_hint_round_trip(number in any::<u64>(), hash in any::<[u8; 32]>(), challenge in any::<bool>()) {
            let kind = if challenge { EnvelopeKind::Challenge } else { EnvelopeKind::Batch };
            let hint = IndexHint { kind, number, header_hash: hash };
            prop_assert_eq!(IndexHint::from_script(&hint.to_script()), Ok(hint));
        }
    }
}
