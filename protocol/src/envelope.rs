//! The Bitcoin envelope codec: how batches and challenges are written into taproot leaf scripts,
//! and the `OP_RETURN` index hint that travels next to them.
//!
//! # Leaf script layout
//!
//! ```text
//! <xonly_key> OP_CHECKSIG
//! OP_FALSE OP_IF
//!   "stint" <kind> [<auth>] <chunk_0> <chunk_1> ... <chunk_n>
//! OP_ENDIF
//! ```
//!
//! * kind 1 (batch): `<auth>` is one 96-byte push, `header_hash (32) ‖ signature (64)`: an
//!   [`AnchorAuth`], the BIP340 signature of the genesis anchor key over
//!   `tagged_hash("stint/anchor", genesis_hash ‖ kind_byte ‖ header_hash)`
//!   ([`AnchorAuth::message`]);
//! * kind 2 (challenge, written under any key): no `<auth>` push.
//!
//! The body (`chunk_0 ‖ … ‖ chunk_n`) is one zstd frame holding the caller's payload (e.g. an
//! encoded batch).
//!
//! # Authorship (protocol v2)
//!
//! The leaf's `<key> OP_CHECKSIG` does **not** prove who wrote an envelope: Bitcoin executes a
//! tapscript leaf only when the spent output is a real P2TR output (witness v1, 32-byte program,
//! not P2SH-wrapped). Spends of witness v1 programs of another length, of v2–v16 programs and of
//! P2SH-wrapped v1 programs are anyone-can-spend by consensus, and their witness can look exactly
//! like an envelope spend with a junk signature. So a batch envelope counts only through its
//! `<auth>` signature, which derivation verifies against the genesis anchor key
//! ([`AnchorAuth::verify`]); the leaf key is only a cheap filter. The signed `header_hash` must
//! be the hash of the batch the body decodes to.
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
//! * a batch has exactly one 96-byte auth push right after the kind, a challenge none;
//! * the body is split into chunks of exactly [`MAX_CHUNK_LEN`] (520) bytes, except the last, which
//!   holds 1..=520 bytes; there is at least one chunk;
//! * nothing follows `OP_ENDIF`.
//!
//! Parsing the layout ([`RawEnvelope::from_leaf_script`]) never decompresses: callers run the
//! cheap checks (kind, key, auth signature) first and decompress only what passed them
//! ([`RawEnvelope::decompress`]).
//!
//! # Body: zstd frame rules
//!
//! The body must be exactly one *standard* zstd frame (RFC 8878), checked before zstd is called:
//!
//! * it starts with the magic `28 B5 2F FD` (legacy zstd formats, which some zstd builds decode
//!   and others do not, and skippable frames are rejected by magic), and nothing follows the frame;
//! * its header has the single-segment flag (so the window is the content size, whatever the
//!   decoder's window limit) and no dictionary id, and so **declares its content size**;
//! * the declared size is `1..=` the kind's bound ([`EnvelopeKind::max_payload_bytes`]; derivation
//!   passes the genesis `max_batch_bytes` for batches and [`MAX_FRAUD_PROOF_BYTES`] for
//!   challenges);
//! * **expansion bound**: the declared size is at most
//!   [`MAX_EXPANSION_RATIO`] × body length + [`EXPANSION_SLACK`] ([`max_declared_size`]);
//! * the frame decompresses to exactly the declared size.
//!
//! The expansion bound caps decompression work per Bitcoin block at a multiple of the block's own
//! size (≈ 32 × 4 MB witness bytes + 1 KiB per envelope, ~150 MB in the worst case, well under a
//! second of zstd), so every envelope of a block can be decompressed and an attacker cannot crowd
//! out a valid envelope by exhausting a per-block budget: there is none. It never restricts honest
//! content: a writer whose payload compresses better than the ratio simply stores it instead
//! ([`Envelope::leaf_script`] falls back to a frame of raw zstd blocks, ratio ≤ 1), and every
//! payload bound is below [`MAX_ENVELOPE_BODY`].
//!
//! The compressed bytes themselves are *not* required to be what this crate's zstd would produce
//! (compressors may differ between versions); any frame following the rules above is accepted, so
//! derivation never depends on the compressor.
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
use bitcoin::secp256k1::{schnorr, Message, Secp256k1, XOnlyPublicKey};
use bitcoin::taproot::{ControlBlock, LeafVersion};
use bitcoin::{Block, Script, ScriptBuf, Transaction, Txid};
use stint_state::{tagged_hash, Hash};

use crate::{Genesis, MAX_BATCH_BYTES, MAX_FRAUD_PROOF_BYTES};

/// The protocol tag pushed right after `OP_IF` in every envelope.
pub const ENVELOPE_TAG: &[u8; 5] = b"stint";

/// The tag pushed right after `OP_RETURN` in every index hint.
pub const INDEX_HINT_TAG: &[u8; 4] = b"STNT";

/// Tag of the message an [`AnchorAuth`] signs.
pub const ANCHOR_AUTH_TAG: &str = "stint/anchor";

/// Length of the auth push of a batch envelope: header hash (32) ‖ BIP340 signature (64).
pub const ANCHOR_AUTH_LEN: usize = 96;

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
///   push 6, kind push 2, `OP_ENDIF`) + 98 bytes of auth push for a batch (`OP_PUSHDATA1`, length,
///   96 bytes) + body + 3 bytes per 520-byte chunk (`OP_PUSHDATA2` + length).
///
/// With a 395,000-byte batch body: 760 chunks → leaf script 395,000 + 2,280 + 45 + 98 = 397,423
/// bytes, and the reveal weighs 612 + 107 + 397,423 = 398,142 WU, leaving ~1,850 WU of headroom
/// (Citrea, for comparison, caps bodies at 397,000 bytes).
pub const MAX_ENVELOPE_BODY: usize = 395_000;

/// Expansion bound: a body of `n` bytes may declare at most `MAX_EXPANSION_RATIO × n +`
/// [`EXPANSION_SLACK`] bytes of content (see the module docs).
pub const MAX_EXPANSION_RATIO: usize = 32;

/// The constant part of the expansion bound (room for small payloads that compress well).
pub const EXPANSION_SLACK: usize = 1024;

/// zstd level used to compress payloads (a deterministic function of the payload for a given
/// zstd version; decoding does not depend on it).
pub const COMPRESSION_LEVEL: i32 = 12;

/// The zstd frame magic number, as it appears on the wire (`0xFD2FB528` little-endian).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Largest raw block of a zstd frame (`Block_Maximum_Size`, 128 KiB).
const ZSTD_MAX_BLOCK: usize = 128 * 1024;

/// The largest content size a body of `body_len` bytes may declare (the expansion bound).
pub fn max_declared_size(body_len: usize) -> usize {
    body_len
        .saturating_mul(MAX_EXPANSION_RATIO)
        .saturating_add(EXPANSION_SLACK)
}

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum EnvelopeKind {
    /// An encoded batch written by the sequencer (must carry an [`AnchorAuth`] of the genesis
    /// anchor key).
    Batch = 1,
    /// An encoded fraud proof written by a challenger (any key).
    Challenge = 2,
    /// A signed L2 transaction forced in through Bitcoin (protocol v2; any key, see
    /// [`crate::forced_txs_in`]).
    ForcedTx = 3,
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
            3 => Ok(Self::ForcedTx),
            other => Err(EnvelopeError::UnknownKind(other)),
        }
    }

    /// Whether envelopes of this kind carry an auth push.
    pub fn has_auth(self) -> bool {
        self == Self::Batch
    }

    /// The largest payload of this kind whatever the genesis says: [`MAX_BATCH_BYTES`] for a
    /// batch, [`MAX_FRAUD_PROOF_BYTES`] for a challenge. Derivation bounds batches tighter, by the
    /// genesis `max_batch_bytes`.
    pub fn max_payload_bytes(self) -> usize {
        match self {
            Self::Batch => MAX_BATCH_BYTES,
            Self::Challenge => MAX_FRAUD_PROOF_BYTES,
            Self::ForcedTx => stint_contracts::MAX_SIGNED_TX_SIZE,
        }
    }
}

impl fmt::Display for EnvelopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Batch => f.write_str("batch"),
            Self::Challenge => f.write_str("challenge"),
            Self::ForcedTx => f.write_str("forced tx"),
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
    /// A batch envelope without an auth, or a challenge envelope with one.
    #[error("{kind} envelope with a missing or unexpected anchor auth")]
    Auth {
        /// The envelope's kind.
        kind: EnvelopeKind,
    },
    /// The compressed body exceeds [`MAX_ENVELOPE_BODY`].
    #[error("compressed body of {size} bytes exceeds the maximum of {max}")]
    BodyTooLarge {
        /// Size of the compressed body.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is (or declares to be) larger than its bound.
    #[error("payload exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// The limit.
        max: usize,
    },
    /// The frame declares more content than the expansion bound allows for its body.
    #[error("frame declares {declared} bytes from a {body}-byte body (expansion bound {max})")]
    ExpansionTooLarge {
        /// The declared content size.
        declared: u64,
        /// The body length.
        body: usize,
        /// [`max_declared_size`] of the body.
        max: usize,
    },
    /// The payload is empty.
    #[error("empty payload")]
    EmptyPayload,
    /// The body is not exactly one standard zstd frame following the rules, or does not
    /// decompress to its declared size.
    #[error("invalid zstd body: {0}")]
    Decompress(String),
    /// Compressing the payload failed (internal: zstd could not allocate / initialise).
    #[error("compression failed: {0}")]
    Compress(String),
}

/// The authorship proof of a batch envelope: the header hash it vouches for and the BIP340
/// signature of the genesis anchor key over [`AnchorAuth::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnchorAuth {
    /// Hash of the batch header the envelope carries.
    pub header_hash: Hash,
    /// BIP340 signature over [`AnchorAuth::message`].
    pub signature: [u8; 64],
}

impl AnchorAuth {
    /// The signed message: `tagged_hash("stint/anchor", genesis_hash ‖ kind_byte ‖ header_hash)`.
    pub fn message(genesis_hash: &Hash, kind: EnvelopeKind, header_hash: &Hash) -> Hash {
        tagged_hash(
            ANCHOR_AUTH_TAG,
            &[genesis_hash, &[kind.to_byte()], header_hash],
        )
    }

    /// Whether the signature is `key`'s over the message for `genesis_hash` and `kind`.
    pub fn verify_with(
        &self,
        key: &XOnlyPublicKey,
        genesis_hash: &Hash,
        kind: EnvelopeKind,
    ) -> bool {
        let Ok(signature) = schnorr::Signature::from_slice(&self.signature) else {
            return false;
        };
        let message = Message::from_digest(Self::message(genesis_hash, kind, &self.header_hash));
        Secp256k1::verification_only()
            .verify_schnorr(&signature, &message, key)
            .is_ok()
    }

    /// Whether this is a valid batch auth of `genesis`'s anchor key for `genesis`'s hash.
    /// (Computes the genesis hash; [`Derivation`](crate::Derivation) caches it and calls
    /// [`verify_with`](Self::verify_with).)
    pub fn verify(&self, genesis: &Genesis) -> bool {
        self.verify_with(&genesis.anchor_key, &genesis.hash(), EnvelopeKind::Batch)
    }

    /// The 96-byte push: `header_hash ‖ signature`.
    pub fn to_bytes(&self) -> [u8; ANCHOR_AUTH_LEN] {
        let mut out = [0u8; ANCHOR_AUTH_LEN];
        let (hash, signature) = out.split_at_mut(32);
        hash.copy_from_slice(&self.header_hash);
        signature.copy_from_slice(&self.signature);
        out
    }

    /// Parses the 96-byte push.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ANCHOR_AUTH_LEN {
            return None;
        }
        let (hash, signature) = bytes.split_at(32);
        Some(Self {
            header_hash: hash.try_into().ok()?,
            signature: signature.try_into().ok()?,
        })
    }
}

/// A decoded envelope: who wrote it, what it is, its auth (batches), and the uncompressed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// What the payload is.
    pub kind: EnvelopeKind,
    /// The x-only key in the leaf (the writer if the spend is a real P2TR spend; for batches only
    /// [`Envelope::auth`] proves it).
    pub key: XOnlyPublicKey,
    /// The anchor auth: `Some` for a batch, `None` for a challenge.
    pub auth: Option<AnchorAuth>,
    /// The uncompressed payload (e.g. a borsh-encoded batch).
    pub payload: Vec<u8>,
}

impl Envelope {
    /// Creates an envelope without auth (a challenge; a batch needs [`Envelope::with_auth`]).
    pub fn new(kind: EnvelopeKind, key: XOnlyPublicKey, payload: Vec<u8>) -> Self {
        Self {
            kind,
            key,
            auth: None,
            payload,
        }
    }

    /// The same envelope carrying `auth`.
    pub fn with_auth(self, auth: AnchorAuth) -> Self {
        Self {
            auth: Some(auth),
            ..self
        }
    }

    /// Compresses the payload and builds the tapscript leaf that carries it.
    ///
    /// The body is the zstd frame at [`COMPRESSION_LEVEL`], or, when that would break the
    /// expansion bound, a frame of raw blocks (see the module docs).
    pub fn leaf_script(&self) -> Result<ScriptBuf, EnvelopeError> {
        if self.auth.is_some() != self.kind.has_auth() {
            return Err(EnvelopeError::Auth { kind: self.kind });
        }
        if self.payload.is_empty() {
            return Err(EnvelopeError::EmptyPayload);
        }
        let max = self.kind.max_payload_bytes();
        if self.payload.len() > max {
            return Err(EnvelopeError::PayloadTooLarge { max });
        }
        let mut body = zstd::bulk::compress(&self.payload, COMPRESSION_LEVEL)
            .map_err(|e| EnvelopeError::Compress(e.to_string()))?;
        if self.payload.len() > max_declared_size(body.len()) || !is_single_segment(&body) {
            body = stored_frame(&self.payload)?;
        }
        if body.len() > MAX_ENVELOPE_BODY {
            return Err(EnvelopeError::BodyTooLarge {
                size: body.len(),
                max: MAX_ENVELOPE_BODY,
            });
        }
        build_leaf_script(self.kind, &self.key, self.auth.as_ref(), &body)
    }

    /// Decodes a tapscript leaf strictly and decompresses it under the kind's bound
    /// ([`EnvelopeKind::max_payload_bytes`]); see the module docs. Derivation instead parses with
    /// [`RawEnvelope::from_leaf_script`] and decompresses only after the cheap checks.
    pub fn from_leaf_script(script: &Script) -> Result<Self, EnvelopeError> {
        RawEnvelope::from_leaf_script(script)?.decode()
    }
}

/// An envelope whose layout parsed (canonical form, body size) but whose body is still
/// compressed: nothing has been decompressed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEnvelope {
    /// What the payload is.
    pub kind: EnvelopeKind,
    /// The x-only key in the leaf (see [`Envelope::key`]).
    pub key: XOnlyPublicKey,
    /// The anchor auth: `Some` for a batch, `None` for a challenge.
    pub auth: Option<AnchorAuth>,
    /// The compressed body (one zstd frame, not yet checked).
    pub body: Vec<u8>,
}

impl RawEnvelope {
    /// Parses a leaf script strictly (layout and canonical form, body ≤ [`MAX_ENVELOPE_BODY`])
    /// without decompressing anything.
    pub fn from_leaf_script(script: &Script) -> Result<Self, EnvelopeError> {
        let parsed = parse_leaf_layout(script)?;
        if parsed.body.len() > MAX_ENVELOPE_BODY {
            return Err(EnvelopeError::BodyTooLarge {
                size: parsed.body.len(),
                max: MAX_ENVELOPE_BODY,
            });
        }
        let canonical =
            build_leaf_script(parsed.kind, &parsed.key, parsed.auth.as_ref(), &parsed.body)?;
        if canonical.as_bytes() != script.as_bytes() {
            return Err(EnvelopeError::NonCanonical);
        }
        Ok(parsed)
    }

    /// Checks the frame header without decompressing (magic, one frame covering the whole body,
    /// single segment, no dictionary, declared content size within `max_payload` and the
    /// expansion bound) and returns the declared content size.
    pub fn declared_size(&self, max_payload: usize) -> Result<usize, EnvelopeError> {
        check_frame(&self.body, max_payload)
    }

    /// Checks the frame ([`declared_size`](Self::declared_size)) and decompresses it; the
    /// payload must have exactly the declared size.
    pub fn decompress(&self, max_payload: usize) -> Result<Vec<u8>, EnvelopeError> {
        let declared = check_frame(&self.body, max_payload)?;
        let mut decompressor = zstd::bulk::Decompressor::new()
            .map_err(|e| EnvelopeError::Decompress(e.to_string()))?;
        // The output buffer holds exactly the declared size: a frame with more content fails.
        let payload = decompressor
            .decompress(&self.body, declared)
            .map_err(|e| EnvelopeError::Decompress(e.to_string()))?;
        if payload.len() != declared {
            return Err(EnvelopeError::Decompress(format!(
                "frame decompressed to {} bytes, declared {declared}",
                payload.len()
            )));
        }
        Ok(payload)
    }

    /// Decompresses under the kind's bound ([`EnvelopeKind::max_payload_bytes`]) into an
    /// [`Envelope`].
    pub fn decode(&self) -> Result<Envelope, EnvelopeError> {
        let payload = self.decompress(self.kind.max_payload_bytes())?;
        Ok(Envelope {
            kind: self.kind,
            key: self.key,
            auth: self.auth,
            payload,
        })
    }
}

fn layout(position: usize, reason: &'static str) -> EnvelopeError {
    EnvelopeError::Layout { position, reason }
}

fn parse_leaf_layout(script: &Script) -> Result<RawEnvelope, EnvelopeError> {
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
    let auth = if kind.has_auth() {
        match next("missing auth")? {
            (i, Instruction::PushBytes(bytes)) => Some(
                AnchorAuth::from_bytes(bytes.as_bytes())
                    .ok_or_else(|| layout(i, "expected a 96-byte auth push"))?,
            ),
            (i, _) => return Err(layout(i, "expected a 96-byte auth push")),
        }
    } else {
        None
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
    Ok(RawEnvelope {
        kind,
        key,
        auth,
        body,
    })
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
    auth: Option<&AnchorAuth>,
    body: &[u8],
) -> Result<ScriptBuf, EnvelopeError> {
    if auth.is_some() != kind.has_auth() {
        return Err(EnvelopeError::Auth { kind });
    }
    let mut builder = Builder::new()
        .push_x_only_key(key)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_FALSE)
        .push_opcode(OP_IF)
        .push_slice(ENVELOPE_TAG)
        .push_slice([kind.to_byte()]);
    if let Some(auth) = auth {
        let push = PushBytesBuf::try_from(auth.to_bytes().to_vec())
            .map_err(|_| EnvelopeError::Compress("auth exceeds push limit".into()))?;
        builder = builder.push_slice(push);
    }
    for chunk in body.chunks(MAX_CHUNK_LEN) {
        let push = PushBytesBuf::try_from(chunk.to_vec())
            .map_err(|_| EnvelopeError::Compress("chunk exceeds push limit".into()))?;
        builder = builder.push_slice(push);
    }
    Ok(builder.push_opcode(OP_ENDIF).into_script())
}

/// Frame header descriptor bits (RFC 8878 §3.1.1.1.1).
const FHD_SINGLE_SEGMENT: u8 = 0x20;
const FHD_DICTIONARY_ID: u8 = 0x03;

fn is_single_segment(body: &[u8]) -> bool {
    body.get(4).is_some_and(|fhd| fhd & FHD_SINGLE_SEGMENT != 0)
}

/// The frame rules of the module docs, checked on the header alone (zstd only parses it).
fn check_frame(body: &[u8], max_payload: usize) -> Result<usize, EnvelopeError> {
    let bad = |reason: &str| EnvelopeError::Decompress(reason.to_string());
    if body.get(..4) != Some(ZSTD_MAGIC.as_slice()) {
        return Err(bad("not a standard zstd frame (magic)"));
    }
    let fhd = *body.get(4).ok_or_else(|| bad("truncated frame header"))?;
    if fhd & FHD_SINGLE_SEGMENT == 0 {
        return Err(bad("frame is not single-segment"));
    }
    if fhd & FHD_DICTIONARY_ID != 0 {
        return Err(bad("frame names a dictionary"));
    }
    // Exactly one frame, covering the whole body (no trailing bytes or extra frames).
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(body)
        .map_err(|code| EnvelopeError::Decompress(zstd::zstd_safe::get_error_name(code).into()))?;
    if frame_len != body.len() {
        return Err(bad("trailing data after the zstd frame"));
    }
    let declared = match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(size)) => size,
        Ok(None) => return Err(bad("frame does not declare its content size")),
        Err(_) => return Err(bad("unreadable frame header")),
    };
    if declared == 0 {
        return Err(EnvelopeError::EmptyPayload);
    }
    if declared > max_payload as u64 {
        return Err(EnvelopeError::PayloadTooLarge { max: max_payload });
    }
    let expansion = max_declared_size(body.len());
    if declared > expansion as u64 {
        return Err(EnvelopeError::ExpansionTooLarge {
            declared,
            body: body.len(),
            max: expansion,
        });
    }
    usize::try_from(declared).map_err(|_| EnvelopeError::PayloadTooLarge { max: max_payload })
}

/// A standard single-segment zstd frame of raw (stored) blocks: magic, header descriptor
/// (4-byte content size, single segment, no checksum, no dictionary), content size, then
/// blocks of at most 128 KiB, each with a 3-byte header (last flag, type 0 = raw, size).
fn stored_frame(payload: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let size = u32::try_from(payload.len()).map_err(|_| EnvelopeError::PayloadTooLarge {
        max: u32::MAX as usize,
    })?;
    let blocks = payload.len().div_ceil(ZSTD_MAX_BLOCK);
    let mut out = Vec::with_capacity(
        payload
            .len()
            .saturating_add(blocks.saturating_mul(3))
            .saturating_add(9),
    );
    out.extend_from_slice(&ZSTD_MAGIC);
    out.push(0x80 | FHD_SINGLE_SEGMENT);
    out.extend_from_slice(&size.to_le_bytes());
    let mut chunks = payload.chunks(ZSTD_MAX_BLOCK).peekable();
    while let Some(chunk) = chunks.next() {
        let last = u32::from(chunks.peek().is_none());
        // chunk.len() ≤ 128 KiB, so the shift cannot overflow a u32.
        let len =
            u32::try_from(chunk.len()).map_err(|_| EnvelopeError::Compress("block".into()))?;
        let header = len.checked_shl(3).unwrap_or(0) | last;
        out.extend_from_slice(header.to_le_bytes().get(..3).unwrap_or(&[]));
        out.extend_from_slice(chunk);
    }
    Ok(out)
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

/// Finds the envelopes in a transaction, in input order, and decompresses them under their
/// kind's bound (a convenience for tools and tests; derivation uses [`find_block_envelopes`],
/// which does not decompress).
///
/// Every input whose witness is a taproot script-path spend (`[.., leaf script, control block]`,
/// optional annex, leaf version 0xc0) is tried; leaves that are not valid envelopes are skipped.
/// The key and auth are returned as written, unverified: callers check them (derivation verifies
/// the auth against the genesis anchor key).
pub fn find_envelopes(tx: &Transaction) -> Vec<Envelope> {
    tx.input
        .iter()
        .filter_map(|input| raw_envelope_in_witness(&input.witness)?.decode().ok())
        .collect()
}

/// Parses the envelope layout of a witness, if it is a script-path spend of a valid envelope
/// leaf (not decompressed). The witness shape is all that is looked at: whether the spent output
/// really is P2TR is unknown here, which is why batches need an [`AnchorAuth`].
pub fn raw_envelope_in_witness(witness: &bitcoin::Witness) -> Option<RawEnvelope> {
    let leaf = witness.taproot_leaf_script()?;
    if leaf.version != LeafVersion::TapScript {
        return None;
    }
    ControlBlock::decode(witness.taproot_control_block()?).ok()?;
    RawEnvelope::from_leaf_script(leaf.script).ok()
}

/// Finds the first valid index hint among a transaction's outputs.
pub fn find_index_hint(tx: &Transaction) -> Option<IndexHint> {
    tx.output
        .iter()
        .find_map(|out| IndexHint::from_script(&out.script_pubkey).ok())
}

/// An envelope found in a block, with where it was found. The body is still compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedEnvelope {
    /// Position of the transaction in the block.
    pub tx_index: usize,
    /// The transaction's id.
    pub txid: Txid,
    /// Position of the spending input in the transaction.
    pub input_index: usize,
    /// The parsed envelope (layout only; decompress with [`RawEnvelope::decompress`]).
    pub envelope: RawEnvelope,
    /// The transaction's index hint, if it has a valid one.
    pub hint: Option<IndexHint>,
}

/// Finds every envelope of a transaction with its position (`tx_index` is supplied by the caller).
pub fn locate_envelopes(tx_index: usize, tx: &Transaction) -> Vec<LocatedEnvelope> {
    let mut found = Vec::new();
    let mut hint_and_txid = None;
    for (input_index, input) in tx.input.iter().enumerate() {
        if let Some(envelope) = raw_envelope_in_witness(&input.witness) {
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

/// Finds every envelope of a block in block order (transaction order, then input order),
/// without decompressing any.
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

    const GENESIS_HASH: Hash = [0x11; 32];

    fn keypair(seed: u8) -> Keypair {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(&[seed.clamp(1, 0x7f); 32]).unwrap();
        Keypair::from_secret_key(&secp, &sk)
    }

    fn key(seed: u8) -> XOnlyPublicKey {
        keypair(seed).x_only_public_key().0
    }

    /// What the anchorer does: sign (genesis hash, kind, header hash) with the anchor key.
    fn sign(seed: u8, genesis_hash: &Hash, kind: EnvelopeKind, header_hash: Hash) -> AnchorAuth {
        let secp = Secp256k1::new();
        let message = Message::from_digest(AnchorAuth::message(genesis_hash, kind, &header_hash));
        let signature = secp.sign_schnorr_no_aux_rand(&message, &keypair(seed));
        AnchorAuth {
            header_hash,
            signature: signature.serialize(),
        }
    }

    /// An honest batch envelope under `seed` (header hash is a stand-in).
    fn batch_env(seed: u8, payload: Vec<u8>) -> Envelope {
        let auth = sign(seed, &GENESIS_HASH, EnvelopeKind::Batch, [0x22; 32]);
        Envelope::new(EnvelopeKind::Batch, key(seed), payload).with_auth(auth)
    }

    fn env(kind: EnvelopeKind, seed: u8, payload: Vec<u8>) -> Envelope {
        match kind {
            EnvelopeKind::Batch => batch_env(seed, payload),
            EnvelopeKind::Challenge | EnvelopeKind::ForcedTx => {
                Envelope::new(kind, key(seed), payload)
            }
        }
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

    const AUTH: [u8; ANCHOR_AUTH_LEN] = [0x33; ANCHOR_AUTH_LEN];

    /// Builds a leaf by hand from a raw body (no compression), for reject tests. Kind 1 gets a
    /// dummy auth push.
    fn raw_leaf(kind: u8, body: &[u8]) -> ScriptBuf {
        let mut b = Builder::new()
            .push_x_only_key(&key(1))
            .push_opcode(OP_CHECKSIG)
            .push_opcode(OP_FALSE)
            .push_opcode(OP_IF)
            .push_slice(ENVELOPE_TAG)
            .push_slice([kind]);
        if kind == 1 {
            b = b.push_slice(PushBytesBuf::try_from(AUTH.to_vec()).unwrap());
        }
        for chunk in body.chunks(MAX_CHUNK_LEN) {
            b = b.push_slice(PushBytesBuf::try_from(chunk.to_vec()).unwrap());
        }
        b.push_opcode(OP_ENDIF).into_script()
    }

    /// Parses a hand-built challenge leaf around `body` and decompresses it.
    fn open_challenge(body: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        RawEnvelope::from_leaf_script(&raw_leaf(2, body))?.decompress(MAX_FRAUD_PROOF_BYTES)
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
            // Compresses far beyond the expansion bound: stored instead.
            (EnvelopeKind::Challenge, vec![0u8; 300_000]),
            (EnvelopeKind::Batch, noise(300_000)),
        ] {
            let env = env(kind, 3, payload);
            let script = env.leaf_script().unwrap();
            assert_eq!(Envelope::from_leaf_script(&script).unwrap(), env);
            let raw = RawEnvelope::from_leaf_script(&script).unwrap();
            assert_eq!(raw.auth, env.auth);
            assert!(raw.declared_size(kind.max_payload_bytes()).unwrap() == env.payload.len());
        }
    }

    #[test]
    fn batch_layout_carries_the_auth_push() {
        let env = batch_env(3, b"payload".to_vec());
        let script = env.leaf_script().unwrap();
        let bytes = script.as_bytes();
        // key 33, CHECKSIG, FALSE, IF, tag 6, kind 2, then OP_PUSHDATA1 96 ‖ auth.
        assert_eq!(&bytes[44..46], &[0x4c, 96]);
        assert_eq!(&bytes[46..142], &env.auth.unwrap().to_bytes());
        // A batch needs an auth and a challenge must not have one.
        let bare = Envelope::new(EnvelopeKind::Batch, key(3), b"x".to_vec());
        assert_eq!(
            bare.leaf_script(),
            Err(EnvelopeError::Auth {
                kind: EnvelopeKind::Batch
            })
        );
        let odd = Envelope::new(EnvelopeKind::Challenge, key(3), b"x".to_vec())
            .with_auth(env.auth.unwrap());
        assert_eq!(
            odd.leaf_script(),
            Err(EnvelopeError::Auth {
                kind: EnvelopeKind::Challenge
            })
        );
        // A kind-1 leaf without the auth push (body right after the kind) is not an envelope:
        // its first chunk is not 96 bytes.
        let body = zstd::bulk::compress(b"payload", COMPRESSION_LEVEL).unwrap();
        let mut no_auth = raw_leaf(2, &body).into_bytes();
        no_auth[43] = 1;
        assert!(matches!(
            RawEnvelope::from_leaf_script(Script::from_bytes(&no_auth)),
            Err(EnvelopeError::Layout { .. })
        ));
    }

    #[test]
    fn auth_verifies_only_for_its_key_genesis_kind_and_header() {
        let header = [0x44; 32];
        let auth = sign(5, &GENESIS_HASH, EnvelopeKind::Batch, header);
        assert!(auth.verify_with(&key(5), &GENESIS_HASH, EnvelopeKind::Batch));
        // Signed by another key.
        assert!(
            !sign(6, &GENESIS_HASH, EnvelopeKind::Batch, header).verify_with(
                &key(5),
                &GENESIS_HASH,
                EnvelopeKind::Batch
            )
        );
        // Another genesis.
        assert!(!auth.verify_with(&key(5), &[0x12; 32], EnvelopeKind::Batch));
        assert!(
            !sign(5, &[0x12; 32], EnvelopeKind::Batch, header).verify_with(
                &key(5),
                &GENESIS_HASH,
                EnvelopeKind::Batch
            )
        );
        // Another kind.
        assert!(
            !sign(5, &GENESIS_HASH, EnvelopeKind::Challenge, header).verify_with(
                &key(5),
                &GENESIS_HASH,
                EnvelopeKind::Batch
            )
        );
        // Another header hash under the same signature.
        let moved = AnchorAuth {
            header_hash: [0x45; 32],
            ..auth
        };
        assert!(!moved.verify_with(&key(5), &GENESIS_HASH, EnvelopeKind::Batch));
        // Junk signatures (not on the curve, all zero) never verify and never panic.
        for junk in [[0u8; 64], [0xff; 64], [7u8; 64]] {
            let forged = AnchorAuth {
                signature: junk,
                ..auth
            };
            assert!(!forged.verify_with(&key(5), &GENESIS_HASH, EnvelopeKind::Batch));
        }
        // Byte form.
        assert_eq!(AnchorAuth::from_bytes(&auth.to_bytes()), Some(auth));
        assert_eq!(AnchorAuth::from_bytes(&[0; 95]), None);
        // The message is the documented tagged hash.
        let mut data = GENESIS_HASH.to_vec();
        data.push(1);
        data.extend_from_slice(&header);
        assert_eq!(
            AnchorAuth::message(&GENESIS_HASH, EnvelopeKind::Batch, &header),
            tagged_hash("stint/anchor", &[&data])
        );
    }

    #[test]
    fn max_body_fits_and_oversize_is_rejected() {
        // Incompressible payload slightly above the body limit.
        let env = batch_env(3, noise(MAX_ENVELOPE_BODY + 100));
        assert!(matches!(
            env.leaf_script(),
            Err(EnvelopeError::BodyTooLarge { .. })
        ));
        // Just below: accepted, and the leaf script has the size the docs compute.
        let env = batch_env(3, noise(MAX_ENVELOPE_BODY - 200));
        let script = env.leaf_script().unwrap();
        assert!(script.len() <= MAX_ENVELOPE_BODY + 3 * MAX_ENVELOPE_BODY.div_ceil(520) + 45 + 98);
        assert_eq!(Envelope::from_leaf_script(&script).unwrap(), env);
        // A hand-built script whose body exceeds the limit is rejected on decode too.
        let big = raw_leaf(1, &noise(MAX_ENVELOPE_BODY + 1));
        assert!(matches!(
            RawEnvelope::from_leaf_script(&big),
            Err(EnvelopeError::BodyTooLarge { .. })
        ));
    }

    #[test]
    fn empty_and_oversized_payloads_are_rejected() {
        let env = batch_env(3, Vec::new());
        assert_eq!(env.leaf_script(), Err(EnvelopeError::EmptyPayload));
        let env = batch_env(3, vec![0; MAX_BATCH_BYTES + 1]);
        assert!(matches!(
            env.leaf_script(),
            Err(EnvelopeError::PayloadTooLarge { .. })
        ));
        let env = Envelope::new(
            EnvelopeKind::Challenge,
            key(3),
            vec![0; MAX_FRAUD_PROOF_BYTES + 1],
        );
        assert!(matches!(
            env.leaf_script(),
            Err(EnvelopeError::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn compressible_payloads_are_stored_within_the_expansion_bound() {
        for len in [
            1,
            100,
            5_000,
            ZSTD_MAX_BLOCK,
            ZSTD_MAX_BLOCK + 1,
            3 * ZSTD_MAX_BLOCK,
        ] {
            let payload = vec![0xaa; len];
            let frame = stored_frame(&payload).unwrap();
            assert_eq!(check_frame(&frame, usize::MAX), Ok(len));
            assert_eq!(zstd::bulk::decompress(&frame, len).unwrap(), payload);
            let env = Envelope::new(EnvelopeKind::Challenge, key(3), payload);
            let raw = RawEnvelope::from_leaf_script(&env.leaf_script().unwrap()).unwrap();
            assert!(env.payload.len() <= max_declared_size(raw.body.len()));
            assert_eq!(raw.decode().unwrap(), env);
        }
        // An ordinary payload is compressed (single segment, as the rules require).
        let text = noise(2_000).repeat(3);
        let env = Envelope::new(EnvelopeKind::Challenge, key(3), text.clone());
        let raw = RawEnvelope::from_leaf_script(&env.leaf_script().unwrap()).unwrap();
        assert!(raw.body.len() < text.len());
        assert!(is_single_segment(&raw.body));
    }

    #[test]
    fn frames_outside_the_rules_are_rejected_before_decompressing() {
        let payload = b"a small fraud proof".to_vec();
        let good = zstd::bulk::compress(&payload, COMPRESSION_LEVEL).unwrap();
        assert_eq!(open_challenge(&good), Ok(payload.clone()));

        // Legacy zstd magics (v0.1–v0.7: 0xFD2FB51E..=0xFD2FB527), with the rest of a valid frame.
        for legacy in 0x1e..=0x27u8 {
            let mut body = good.clone();
            body[0] = legacy;
            assert_eq!(
                open_challenge(&body),
                Err(EnvelopeError::Decompress(
                    "not a standard zstd frame (magic)".into()
                ))
            );
        }
        // A real legacy frame, if this zstd build has the legacy decoders: still refused.
        // Skippable frame (magic 0x184D2A50..5F, size, data), alone or before a frame.
        let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
        assert!(matches!(
            open_challenge(&skippable),
            Err(EnvelopeError::Decompress(_))
        ));
        skippable.extend_from_slice(&good);
        assert!(matches!(
            open_challenge(&skippable),
            Err(EnvelopeError::Decompress(_))
        ));
        // A frame followed by a skippable frame: trailing data.
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
        assert!(matches!(
            open_challenge(&trailing),
            Err(EnvelopeError::Decompress(_))
        ));

        // A frame that does not declare its content size (streaming encoder).
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut enc, &payload).unwrap();
        let unsized_frame = enc.finish().unwrap();
        assert!(matches!(
            open_challenge(&unsized_frame),
            Err(EnvelopeError::Decompress(_))
        ));
        assert!(RawEnvelope::from_leaf_script(&raw_leaf(2, &unsized_frame))
            .unwrap()
            .declared_size(usize::MAX)
            .is_err());

        // A frame naming a dictionary.
        let mut dict = good.clone();
        dict[4] |= 0x01;
        assert!(matches!(
            open_challenge(&dict),
            Err(EnvelopeError::Decompress(_))
        ));

        // Declared size over the kind's bound: rejected on the header, even though the body
        // is corrupt (decompressing would fail differently).
        let big = MAX_FRAUD_PROOF_BYTES + 1;
        let mut bomb = zstd::bulk::compress(&vec![0u8; big], 3).unwrap();
        let middle = bomb.len() / 2;
        bomb[middle] ^= 0xff;
        assert_eq!(
            open_challenge(&bomb),
            Err(EnvelopeError::PayloadTooLarge {
                max: MAX_FRAUD_PROOF_BYTES
            })
        );
        // Within the kind's bound but over the expansion bound: rejected on the header too.
        let within = MAX_FRAUD_PROOF_BYTES / 2;
        let mut bomb = zstd::bulk::compress(&vec![0u8; within], 3).unwrap();
        assert!(within > max_declared_size(bomb.len()));
        let middle = bomb.len() / 2;
        bomb[middle] ^= 0xff;
        assert_eq!(
            open_challenge(&bomb),
            Err(EnvelopeError::ExpansionTooLarge {
                declared: within as u64,
                body: bomb.len(),
                max: max_declared_size(bomb.len()),
            })
        );
        // A stored frame whose declared size differs from its content.
        let mut lying = stored_frame(&payload).unwrap();
        lying[5] = lying[5].wrapping_add(1);
        assert!(matches!(
            open_challenge(&lying),
            Err(EnvelopeError::Decompress(_))
        ));
        // Declared size zero.
        let empty = [0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 0x01, 0x00, 0x00];
        assert!(open_challenge(&empty).is_err());
        // The genesis bound is what the caller passes.
        let raw = RawEnvelope::from_leaf_script(&raw_leaf(2, &good)).unwrap();
        assert_eq!(
            raw.decompress(payload.len() - 1),
            Err(EnvelopeError::PayloadTooLarge {
                max: payload.len() - 1
            })
        );
    }

    #[test]
    fn strict_rejects() {
        let env = batch_env(3, b"payload".to_vec());
        let good = env.leaf_script().unwrap();
        let body = zstd::bulk::compress(b"payload", COMPRESSION_LEVEL).unwrap();
        assert_eq!(good, {
            let mut s = raw_leaf(1, &body).into_bytes();
            s[1..33].copy_from_slice(&key(3).serialize());
            s[46..142].copy_from_slice(&env.auth.unwrap().to_bytes());
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
            Envelope::from_leaf_script(&raw_leaf(4, &body)),
            Err(EnvelopeError::UnknownKind(4))
        );

        // Non-minimal push of the body (OP_PUSHDATA1 for a short chunk).
        let prefix_len = 33 + 1 + 1 + 1 + 6 + 2 + 98;
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
            .push_slice([2]);
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

        // Invalid key (all-0xff is not a valid x coordinate).
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
        let env = batch_env(4, b"batch bytes".to_vec());
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

        // Locating does not decompress: a leaf whose body is not zstd is still located (and
        // fails only when decompressed).
        let junk = spend_with_leaf(&raw_leaf(2, b"junk"));
        let block = Block {
            header: bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest).header,
            txdata: vec![junk.clone(), tx.clone(), tx.clone()],
        };
        let found = find_block_envelopes(&block);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].txid, junk.compute_txid());
        assert!(found[0].envelope.decode().is_err());
        assert_eq!((found[1].tx_index, found[1].input_index), (1, 0));
        assert_eq!(found[2].tx_index, 2);
        assert_eq!(found[1].txid, tx.compute_txid());
        assert_eq!(found[1].hint, Some(hint));
        assert_eq!(found[1].envelope.auth, env.auth);
        assert_eq!(found[1].envelope.decode().unwrap(), env);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn prop_round_trip(kind in prop_oneof![Just(EnvelopeKind::Batch), Just(EnvelopeKind::Challenge)],
                           seed in 1u8..=255, payload in proptest::collection::vec(any::<u8>(), 1..4000)) {
            let env = env(kind, seed, payload);
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
            if let Ok(raw) = RawEnvelope::from_leaf_script(Script::from_bytes(&bytes)) {
                let _ = raw.declared_size(usize::MAX);
                let _ = raw.decompress(usize::MAX);
                if let Some(auth) = raw.auth {
                    let _ = auth.verify_with(&raw.key, &GENESIS_HASH, raw.kind);
                }
            }
            let _ = IndexHint::from_script(Script::from_bytes(&bytes));
        }

        #[test]
        fn prop_mutations_never_panic(payload in proptest::collection::vec(any::<u8>(), 1..600),
                                      batch in any::<bool>(),
                                      pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let kind = if batch { EnvelopeKind::Batch } else { EnvelopeKind::Challenge };
            let env = env(kind, 5, payload);
            let mut bytes = env.leaf_script().unwrap().into_bytes();
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            // Decoding is deterministic whatever the outcome.
            let first = Envelope::from_leaf_script(Script::from_bytes(&bytes));
            prop_assert_eq!(first, Envelope::from_leaf_script(Script::from_bytes(&bytes)));
        }

        #[test]
        fn prop_body_mutations_never_panic(payload in proptest::collection::vec(any::<u8>(), 1..3000),
                                           stored in any::<bool>(),
                                           edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
                                           cut in any::<prop::sample::Index>()) {
            let mut body = if stored {
                stored_frame(&payload).unwrap()
            } else {
                zstd::bulk::compress(&payload, COMPRESSION_LEVEL).unwrap()
            };
            for (pos, byte) in edits {
                let i = pos.index(body.len());
                body[i] = byte;
            }
            body.truncate(cut.index(body.len()) + 1);
            // Whatever a body is, the frame rules either accept it with a payload of exactly the
            // declared size within both bounds, or reject it; never panic.
            if let Ok(raw) = RawEnvelope::from_leaf_script(&raw_leaf(2, &body)) {
                if let Ok(out) = raw.decompress(MAX_FRAUD_PROOF_BYTES) {
                    prop_assert!(out.len() <= max_declared_size(body.len()));
                    prop_assert_eq!(Ok(out.len()), raw.declared_size(MAX_FRAUD_PROOF_BYTES));
                }
            }
        }

        #[test]
        fn prop_hint_round_trip(number in any::<u64>(), hash in any::<[u8; 32]>(), challenge in any::<bool>()) {
            let kind = if challenge { EnvelopeKind::Challenge } else { EnvelopeKind::Batch };
            let hint = IndexHint { kind, number, header_hash: hash };
            prop_assert_eq!(IndexHint::from_script(&hint.to_script()), Ok(hint));
        }
    }
}
