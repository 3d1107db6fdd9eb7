//! Batches: the header, the body, canonical encoding, and the rules a batch must satisfy.
//!
//! # Shape
//! A [`Batch`] is a [`BatchHeader`], the list of checkpoints and the signed transactions. The
//! header commits to the transactions (`tx_root`, the [Merkle root](crate::merkle_root) of the
//! txids in order, and `tx_count`) and to the execution trace (`trace_root`, the Merkle root of
//! the checkpoints).
//!
//! # Checkpoints and segments
//! The txs are cut into *segments* of `K = checkpoint_interval` txs (the last one may be shorter).
//! Checkpoint `j` (1-based) is the state root after segment `j`; checkpoint 0 is the header's
//! `prev_state_root` and is not stored in the list. So a batch of `n` txs has
//! `max(1, ceil(n / K))` checkpoints and the last one equals `state_root`.
//!
//! **Empty batches** (`n = 0`) have exactly one, empty, segment and one checkpoint, equal to
//! `state_root`. Executing an empty segment changes nothing, so an honest empty batch has
//! `state_root == prev_state_root`; a dishonest one is fraud-provable like any other segment.
//!
//! # Encoding
//! Borsh of `(header, checkpoints, txs)`; decoding is strict: at most [`MAX_BATCH_BYTES`] bytes,
//! no trailing bytes, list lengths within [`MAX_BATCH_TXS`] and [`MAX_CHECKPOINTS`]. Borsh is
//! canonical for these types, so any accepted encoding re-encodes to the same bytes.
//!
//! # Typestate
//! Decoding gives a [`Batch<Unchecked>`]. [`Batch::check`] applies every rule that can be checked
//! without executing the txs, against the genesis parameters, the [`ParentFacts`] of the tip it
//! claims to extend and the [`L1Chain`] around the Bitcoin block that anchors it, and returns a
//! [`Batch<Checked>`]. State roots are *not* checked: that is the optimistic part, settled by
//! fraud proofs.

use std::marker::PhantomData;

use borsh::{BorshDeserialize, BorshSerialize};
use stint_contracts::SignedTx;
use stint_state::{tagged_hash, Hash};

use crate::{merkle_root, Genesis};

/// The protocol version every batch header carries.
pub const BATCH_VERSION: u32 = 1;

/// Tag of the batch header hash.
pub const BATCH_TAG: &str = "stint/batch";

/// Hard cap on an encoded batch, whatever the genesis says (genesis `max_batch_bytes` must not
/// exceed it). A reveal transaction holds about 390 KB of envelope.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// Hard cap on the number of txs in one batch (genesis `max_batch_txs` must not exceed it).
pub const MAX_BATCH_TXS: usize = 1 << 16;

/// Hard cap on the number of checkpoints in one batch (one per tx plus the empty-batch case).
pub const MAX_CHECKPOINTS: usize = MAX_BATCH_TXS;

/// The Bitcoin block a batch was built on top of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct L1Origin {
    /// Height of the block.
    pub height: u64,
    /// Hash of the block, in Bitcoin's internal byte order (`BlockHash::to_byte_array`).
    pub hash: Hash,
}

/// The header of a batch; its hash identifies the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BatchHeader {
    /// Protocol version, [`BATCH_VERSION`].
    pub version: u32,
    /// The rollup's chain id (genesis `chain_id`).
    pub chain_id: u64,
    /// Batch number; the first batch after genesis is 1.
    pub number: u64,
    /// Hash of the parent batch header (the genesis hash for batch 1).
    pub parent: Hash,
    /// Batch timestamp in Unix seconds: the time every tx in the batch executes at.
    pub timestamp: u64,
    /// The Bitcoin block this batch was built on.
    pub l1_origin: L1Origin,
    /// State root before the batch (the parent's `state_root`).
    pub prev_state_root: Hash,
    /// Claimed state root after the batch (the last checkpoint).
    pub state_root: Hash,
    /// Merkle root of the txids, in order.
    pub tx_root: Hash,
    /// Merkle root of the checkpoints, in order.
    pub trace_root: Hash,
    /// Number of txs in the batch.
    pub tx_count: u32,
}

impl BatchHeader {
    /// The canonical encoding of the header.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    /// The header hash: `tagged_hash("stint/batch", borsh(header))`.
    pub fn hash(&self) -> Hash {
        tagged_hash(BATCH_TAG, &[&self.encode()])
    }
}

/// Number of segments (and so of checkpoints) of a batch of `tx_count` txs with checkpoint
/// interval `k`: `max(1, ceil(tx_count / k))`. `None` when `k == 0`.
pub fn segment_count(tx_count: u64, k: u64) -> Option<u64> {
    let full = tx_count.checked_div(k)?;
    let partial = u64::from(tx_count.checked_rem(k)? != 0);
    Some(full.checked_add(partial)?.max(1))
}

/// The half-open tx index range `[start, end)` of segment `j` (1-based), or `None` when `j` is not
/// a segment of a batch of `tx_count` txs.
pub fn segment_range(tx_count: u64, k: u64, j: u64) -> Option<(u64, u64)> {
    if j == 0 || j > segment_count(tx_count, k)? {
        return None;
    }
    let start = j.checked_sub(1)?.checked_mul(k)?;
    let end = j.checked_mul(k)?.min(tx_count);
    Some((start, end.max(start)))
}

/// Marker: a batch that has not been checked yet (decoded, or built locally).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unchecked;

/// Marker: a batch that passed [`Batch::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked;

/// A batch: header, checkpoints and txs. `S` is [`Unchecked`] or [`Checked`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch<S = Unchecked> {
    header: BatchHeader,
    checkpoints: Vec<Hash>,
    txs: Vec<SignedTx>,
    _state: PhantomData<S>,
}

#[derive(BorshSerialize)]
struct BatchWireRef<'a> {
    header: &'a BatchHeader,
    checkpoints: &'a Vec<Hash>,
    txs: &'a Vec<SignedTx>,
}

#[derive(BorshDeserialize)]
struct BatchWire {
    header: BatchHeader,
    checkpoints: Vec<Hash>,
    txs: Vec<SignedTx>,
}

/// Why bytes are not a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than allowed.
    #[error("encoding is {len} bytes, more than the maximum of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// Allowed maximum.
        max: usize,
    },
    /// A list is longer than allowed.
    #[error("{what} list has {len} entries, more than the maximum of {max}")]
    ListTooLong {
        /// Which list.
        what: &'static str,
        /// Its length.
        len: usize,
        /// Allowed maximum.
        max: usize,
    },
    /// The bytes are not a canonical encoding (bad tag, truncated, trailing bytes, ...).
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

/// Why a batch breaks the protocol rules. Every variant is an *invalid input*; checking is pure
/// and cannot fail for internal reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Unknown protocol version.
    #[error("unsupported batch version {got} (expected {expected})")]
    Version {
        /// Expected version.
        expected: u32,
        /// Version in the header.
        got: u32,
    },
    /// Wrong chain id.
    #[error("wrong chain id {got} (expected {expected})")]
    ChainId {
        /// Expected chain id.
        expected: u64,
        /// Chain id in the header.
        got: u64,
    },
    /// The number is not the parent's plus one.
    #[error("batch number {got} does not follow the tip (expected {expected})")]
    Number {
        /// Expected number.
        expected: u64,
        /// Number in the header.
        got: u64,
    },
    /// The parent hash is not the tip's hash.
    #[error("parent {} is not the tip {}", hex::encode(.got), hex::encode(.expected))]
    Parent {
        /// The tip's hash.
        expected: Hash,
        /// Parent hash in the header.
        got: Hash,
    },
    /// `prev_state_root` is not the parent's `state_root`.
    #[error("prev_state_root does not match the parent's state root")]
    PrevStateRoot,
    /// The timestamp is older than the parent's.
    #[error("timestamp {got} is before the parent's {parent}")]
    TimestampBeforeParent {
        /// Parent timestamp.
        parent: u64,
        /// Timestamp in the header.
        got: u64,
    },
    /// The timestamp is too far from the L1 origin block's time.
    #[error("timestamp {got} is more than {drift}s away from the L1 origin time {origin_time}")]
    TimestampDrift {
        /// L1 origin block time.
        origin_time: u64,
        /// Timestamp in the header.
        got: u64,
        /// Allowed drift in seconds.
        drift: u64,
    },
    /// The L1 origin is lower than the parent's.
    #[error("l1 origin height {got} is below the parent's {parent}")]
    L1OriginBeforeParent {
        /// Parent's L1 origin height.
        parent: u64,
        /// L1 origin height in the header.
        got: u64,
    },
    /// The L1 origin is not strictly below the anchoring block.
    #[error("l1 origin height {got} is not below the anchoring block {anchor_height}")]
    L1OriginNotBeforeAnchor {
        /// Height of the anchoring block.
        anchor_height: u64,
        /// L1 origin height in the header.
        got: u64,
    },
    /// The L1 origin is not a block of the anchoring block's chain.
    #[error("l1 origin at height {height} is not an ancestor of the anchoring block")]
    L1OriginNotAncestor {
        /// L1 origin height in the header.
        height: u64,
    },
    /// `tx_count` does not match the number of txs.
    #[error("header tx_count {header} but the body has {body} txs")]
    TxCount {
        /// Count in the header.
        header: u32,
        /// Number of txs in the body.
        body: usize,
    },
    /// `tx_root` does not match the txs.
    #[error("tx_root does not match the txs")]
    TxRoot,
    /// Wrong number of checkpoints for the tx count.
    #[error("{got} checkpoints, expected {expected}")]
    CheckpointCount {
        /// Expected count.
        expected: u64,
        /// Count in the body.
        got: usize,
    },
    /// `trace_root` does not match the checkpoints.
    #[error("trace_root does not match the checkpoints")]
    TraceRoot,
    /// The last checkpoint is not `state_root`.
    #[error("last checkpoint is not the state root")]
    LastCheckpoint,
    /// More txs than the genesis allows.
    #[error("{count} txs, more than the maximum of {max}")]
    TooManyTxs {
        /// Number of txs.
        count: usize,
        /// Allowed maximum.
        max: u64,
    },
    /// The encoded batch is larger than the genesis allows.
    #[error("encoded batch is {bytes} bytes, more than the maximum of {max}")]
    TooLarge {
        /// Encoded size.
        bytes: usize,
        /// Allowed maximum.
        max: u64,
    },
}

/// What a batch must link to: the current canonical tip (or genesis, see
/// [`ParentFacts::genesis`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentFacts {
    /// The tip's number (0 for genesis).
    pub number: u64,
    /// The tip's hash (the genesis hash for genesis).
    pub hash: Hash,
    /// The tip's state root.
    pub state_root: Hash,
    /// The tip's timestamp (0 for genesis).
    pub timestamp: u64,
    /// The tip's L1 origin height (`l1_start_height` for genesis).
    pub l1_origin_height: u64,
}

impl ParentFacts {
    /// The facts of the virtual batch 0 that genesis stands for.
    pub fn genesis(genesis: &Genesis, genesis_state_root: Hash) -> Self {
        Self {
            number: 0,
            hash: genesis.hash(),
            state_root: genesis_state_root,
            timestamp: 0,
            l1_origin_height: genesis.l1_start_height,
        }
    }

    /// The facts of a header as a parent.
    pub fn of(header: &BatchHeader) -> Self {
        Self {
            number: header.number,
            hash: header.hash(),
            state_root: header.state_root,
            timestamp: header.timestamp,
            l1_origin_height: header.l1_origin.height,
        }
    }
}

/// A Bitcoin block as the batch rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1BlockInfo {
    /// Block hash, internal byte order.
    pub hash: Hash,
    /// Block header time (Unix seconds).
    pub time: u64,
}

/// The Bitcoin chain that ends in the anchoring block, as far as the caller knows it.
pub trait L1Chain {
    /// Height of the block that anchors the batch being checked.
    fn anchor_height(&self) -> u64;
    /// The block at `height` on the anchoring block's chain, if known.
    fn block_at(&self, height: u64) -> Option<L1BlockInfo>;
}

impl<S> Batch<S> {
    /// The header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The checkpoints (checkpoint 1 first; checkpoint 0 is `prev_state_root`).
    pub fn checkpoints(&self) -> &[Hash] {
        &self.checkpoints
    }

    /// The txs, in order.
    pub fn txs(&self) -> &[SignedTx] {
        &self.txs
    }

    /// The header hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Checkpoint `j`, counting `prev_state_root` as checkpoint 0.
    pub fn checkpoint(&self, j: u64) -> Option<Hash> {
        if j == 0 {
            return Some(self.header.prev_state_root);
        }
        let index = usize::try_from(j.checked_sub(1)?).ok()?;
        self.checkpoints.get(index).copied()
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(&self.wire()).unwrap_or_default()
    }

    /// Length of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(&self.wire()).unwrap_or(usize::MAX)
    }

    /// Split into header, checkpoints and txs.
    pub fn into_parts(self) -> (BatchHeader, Vec<Hash>, Vec<SignedTx>) {
        (self.header, self.checkpoints, self.txs)
    }

    /// Forget the check (for example to store or re-check it).
    pub fn into_unchecked(self) -> Batch<Unchecked> {
        Batch {
            header: self.header,
            checkpoints: self.checkpoints,
            txs: self.txs,
            _state: PhantomData,
        }
    }

    fn wire(&self) -> BatchWireRef<'_> {
        BatchWireRef {
            header: &self.header,
            checkpoints: &self.checkpoints,
            txs: &self.txs,
        }
    }
}

impl Batch<Unchecked> {
    /// A batch from its parts (nothing is checked).
    pub fn new(header: BatchHeader, checkpoints: Vec<Hash>, txs: Vec<SignedTx>) -> Self {
        Self {
            header,
            checkpoints,
            txs,
            _state: PhantomData,
        }
    }

    /// Strictly decode a batch (see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_BATCH_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_BATCH_BYTES,
            });
        }
        let wire: BatchWire =
            borsh::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if wire.txs.len() > MAX_BATCH_TXS {
            return Err(DecodeError::ListTooLong {
                what: "tx",
                len: wire.txs.len(),
                max: MAX_BATCH_TXS,
            });
        }
        if wire.checkpoints.len() > MAX_CHECKPOINTS {
            return Err(DecodeError::ListTooLong {
                what: "checkpoint",
                len: wire.checkpoints.len(),
                max: MAX_CHECKPOINTS,
            });
        }
        for (index, tx) in wire.txs.iter().enumerate() {
            tx.tx
                .call
                .check_bounds()
                .map_err(|e| DecodeError::Malformed(format!("tx {index}: {e}")))?;
        }
        let batch = Self::new(wire.header, wire.checkpoints, wire.txs);
        if batch.encode() != bytes {
            return Err(DecodeError::Malformed("non-canonical encoding".into()));
        }
        Ok(batch)
    }

    /// Check the rules that need no execution and no chain context: version, chain id, limits,
    /// `tx_count`/`tx_root` against the txs, checkpoint count, `trace_root` and the last
    /// checkpoint against `state_root`.
    pub fn check_body(&self, genesis: &Genesis) -> Result<(), BatchError> {
        let h = &self.header;
        if h.version != BATCH_VERSION {
            return Err(BatchError::Version {
                expected: BATCH_VERSION,
                got: h.version,
            });
        }
        if h.chain_id != genesis.chain_id {
            return Err(BatchError::ChainId {
                expected: genesis.chain_id,
                got: h.chain_id,
            });
        }
        let max_txs = u64::from(genesis.max_batch_txs);
        if self.txs.len() as u64 > max_txs {
            return Err(BatchError::TooManyTxs {
                count: self.txs.len(),
                max: max_txs,
            });
        }
        let bytes = self.encoded_len();
        let max_bytes = u64::from(genesis.max_batch_bytes);
        if bytes as u64 > max_bytes {
            return Err(BatchError::TooLarge {
                bytes,
                max: max_bytes,
            });
        }
        if usize::try_from(h.tx_count).ok() != Some(self.txs.len()) {
            return Err(BatchError::TxCount {
                header: h.tx_count,
                body: self.txs.len(),
            });
        }
        if tx_root(&self.txs) != h.tx_root {
            return Err(BatchError::TxRoot);
        }
        let expected = segment_count(
            u64::from(h.tx_count),
            u64::from(genesis.checkpoint_interval),
        )
        .unwrap_or(0);
        if self.checkpoints.len() as u64 != expected {
            return Err(BatchError::CheckpointCount {
                expected,
                got: self.checkpoints.len(),
            });
        }
        if merkle_root(&self.checkpoints) != h.trace_root {
            return Err(BatchError::TraceRoot);
        }
        if self.checkpoints.last() != Some(&h.state_root) {
            return Err(BatchError::LastCheckpoint);
        }
        Ok(())
    }

    /// Check every rule of a batch that extends `parent` and is anchored in the last block of
    /// `l1` (see the module docs), turning it into a [`Batch<Checked>`].
    pub fn check(
        self,
        genesis: &Genesis,
        parent: &ParentFacts,
        l1: &impl L1Chain,
    ) -> Result<Batch<Checked>, BatchError> {
        let h = &self.header;
        // Cheap linkage rules first: derivation sees many non-linking batches.
        let expected_number = parent.number.saturating_add(1);
        if h.number != expected_number {
            return Err(BatchError::Number {
                expected: expected_number,
                got: h.number,
            });
        }
        if h.parent != parent.hash {
            return Err(BatchError::Parent {
                expected: parent.hash,
                got: h.parent,
            });
        }
        if h.prev_state_root != parent.state_root {
            return Err(BatchError::PrevStateRoot);
        }
        if h.timestamp < parent.timestamp {
            return Err(BatchError::TimestampBeforeParent {
                parent: parent.timestamp,
                got: h.timestamp,
            });
        }
        let origin = h.l1_origin;
        if origin.height < parent.l1_origin_height {
            return Err(BatchError::L1OriginBeforeParent {
                parent: parent.l1_origin_height,
                got: origin.height,
            });
        }
        let anchor_height = l1.anchor_height();
        if origin.height >= anchor_height {
            return Err(BatchError::L1OriginNotBeforeAnchor {
                anchor_height,
                got: origin.height,
            });
        }
        let block = l1
            .block_at(origin.height)
            .filter(|block| block.hash == origin.hash)
            .ok_or(BatchError::L1OriginNotAncestor {
                height: origin.height,
            })?;
        let drift = genesis.max_timestamp_drift_secs;
        if h.timestamp.abs_diff(block.time) > drift {
            return Err(BatchError::TimestampDrift {
                origin_time: block.time,
                got: h.timestamp,
                drift,
            });
        }
        self.check_body(genesis)?;
        Ok(Batch {
            header: self.header,
            checkpoints: self.checkpoints,
            txs: self.txs,
            _state: PhantomData,
        })
    }
}

/// The `tx_root` of a list of txs: the Merkle root of their txids, in order.
pub fn tx_root(txs: &[SignedTx]) -> Hash {
    let ids: Vec<Hash> = txs.iter().map(txid_of).collect();
    merkle_root(&ids)
}

pub(crate) fn txid_of(tx: &SignedTx) -> Hash {
    tx.txid().0
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash as _;
    use bitcoin::secp256k1::{Keypair, Secp256k1};
    use bitcoin::BlockHash;
    use stint_contracts::AccountId;

    use super::*;

    struct Chain {
        anchor_height: u64,
        blocks: Vec<L1BlockInfo>,
    }

    impl L1Chain for Chain {
        fn anchor_height(&self) -> u64 {
            self.anchor_height
        }
        fn block_at(&self, height: u64) -> Option<L1BlockInfo> {
            self.blocks.get(height as usize).copied()
        }
    }

    fn genesis() -> Genesis {
        let secp = Secp256k1::new();
        let key = Keypair::from_seckey_slice(&secp, &[3; 32])
            .unwrap()
            .x_only_public_key()
            .0;
        let mut g = Genesis::new(
            7,
            key,
            AccountId([9; 32]),
            vec![],
            0,
            BlockHash::all_zeros(),
        );
        g.checkpoint_interval = 4;
        g
    }

    /// An empty batch 1 on genesis root `[1; 32]`, origin block 1, and the chain it is checked in.
    fn fixture() -> (Genesis, ParentFacts, Chain, BatchHeader) {
        let g = genesis();
        let parent = ParentFacts::genesis(&g, [1; 32]);
        let chain = Chain {
            anchor_height: 3,
            blocks: (0..4)
                .map(|h| L1BlockInfo {
                    hash: [h as u8; 32],
                    time: 1000 + h * 600,
                })
                .collect(),
        };
        let header = BatchHeader {
            version: BATCH_VERSION,
            chain_id: 7,
            number: 1,
            parent: parent.hash,
            timestamp: 1700,
            l1_origin: L1Origin {
                height: 1,
                hash: [1; 32],
            },
            prev_state_root: [1; 32],
            state_root: [1; 32],
            tx_root: merkle_root(&[]),
            trace_root: merkle_root(&[[1; 32]]),
            tx_count: 0,
        };
        (g, parent, chain, header)
    }

    fn check(header: BatchHeader, checkpoints: Vec<Hash>) -> Result<Batch<Checked>, BatchError> {
        let (g, parent, chain, _) = fixture();
        Batch::new(header, checkpoints, vec![]).check(&g, &parent, &chain)
    }

    #[test]
    fn segments() {
        assert_eq!(segment_count(0, 4), Some(1));
        assert_eq!(segment_count(4, 4), Some(1));
        assert_eq!(segment_count(5, 4), Some(2));
        assert_eq!(segment_count(5, 0), None);
        assert_eq!(segment_range(0, 4, 1), Some((0, 0)));
        assert_eq!(segment_range(10, 4, 3), Some((8, 10)));
        assert_eq!(segment_range(10, 4, 4), None);
        assert_eq!(segment_range(10, 4, 0), None);
    }

    #[test]
    fn an_honest_empty_batch_passes() {
        let (_, _, _, header) = fixture();
        let checked = check(header.clone(), vec![[1; 32]]).unwrap();
        assert_eq!(checked.hash(), header.hash());
        assert_eq!(checked.checkpoint(0), Some([1; 32]));
        assert_eq!(checked.checkpoint(1), Some([1; 32]));
        assert_eq!(checked.checkpoint(2), None);
    }

    #[test]
    fn every_rule_is_enforced_with_its_reason() {
        let (_, _, _, h) = fixture();
        let cp = vec![[1u8; 32]];
        type Case = (BatchHeader, Vec<Hash>, fn(&BatchError) -> bool);
        let cases: Vec<Case> = vec![
            (
                BatchHeader {
                    version: 2,
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::Version { .. }),
            ),
            (
                BatchHeader {
                    chain_id: 8,
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::ChainId { .. }),
            ),
            (
                BatchHeader {
                    number: 2,
                    ..h.clone()
                },
                cp.clone(),
                |e| {
                    matches!(
                        e,
                        BatchError::Number {
                            expected: 1,
                            got: 2
                        }
                    )
                },
            ),
            (
                BatchHeader {
                    parent: [0; 32],
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::Parent { .. }),
            ),
            (
                BatchHeader {
                    prev_state_root: [2; 32],
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::PrevStateRoot),
            ),
            (
                BatchHeader {
                    timestamp: 1000 + 600 + 7201,
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::TimestampDrift { .. }),
            ),
            (
                BatchHeader {
                    l1_origin: L1Origin {
                        height: 3,
                        hash: [3; 32],
                    },
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::L1OriginNotBeforeAnchor { .. }),
            ),
            (
                BatchHeader {
                    l1_origin: L1Origin {
                        height: 2,
                        hash: [9; 32],
                    },
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::L1OriginNotAncestor { height: 2 }),
            ),
            (
                BatchHeader {
                    tx_count: 1,
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::TxCount { .. }),
            ),
            (
                BatchHeader {
                    tx_root: [0; 32],
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::TxRoot),
            ),
            (h.clone(), vec![[1; 32], [1; 32]], |e| {
                matches!(
                    e,
                    BatchError::CheckpointCount {
                        expected: 1,
                        got: 2
                    }
                )
            }),
            (h.clone(), vec![[2; 32]], |e| {
                matches!(e, BatchError::TraceRoot)
            }),
            (
                BatchHeader {
                    state_root: [2; 32],
                    ..h.clone()
                },
                cp.clone(),
                |e| matches!(e, BatchError::LastCheckpoint),
            ),
        ];
        for (i, (header, checkpoints, expected)) in cases.into_iter().enumerate() {
            let err = check(header, checkpoints).unwrap_err();
            assert!(expected(&err), "case {i}: {err}");
        }
    }

    #[test]
    fn timestamps_and_origins_may_not_go_back() {
        let (g, _, chain, h) = fixture();
        let parent = ParentFacts {
            number: 1,
            hash: [5; 32],
            state_root: [1; 32],
            timestamp: 1800,
            l1_origin_height: 2,
        };
        let next = BatchHeader {
            number: 2,
            parent: [5; 32],
            ..h
        };
        let err = Batch::new(next.clone(), vec![[1; 32]], vec![])
            .check(&g, &parent, &chain)
            .unwrap_err();
        assert_eq!(
            err,
            BatchError::TimestampBeforeParent {
                parent: 1800,
                got: 1700
            }
        );
        let later = BatchHeader {
            timestamp: 1800,
            ..next
        };
        let err = Batch::new(later, vec![[1; 32]], vec![])
            .check(&g, &parent, &chain)
            .unwrap_err();
        assert_eq!(err, BatchError::L1OriginBeforeParent { parent: 2, got: 1 });
    }

    #[test]
    fn limits_are_enforced() {
        let (mut g, parent, chain, h) = fixture();
        g.max_batch_txs = 1;
        g.max_batch_bytes = 100;
        let err = Batch::new(h, vec![[1; 32]], vec![])
            .check(&g, &parent, &chain)
            .unwrap_err();
        assert!(
            matches!(err, BatchError::TooLarge { max: 100, .. }),
            "{err}"
        );
        assert!(matches!(
            Batch::decode(&vec![0; MAX_BATCH_BYTES + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
