//! The segment budget: every fraud is provable within one challenge (protocol v2).
//!
//! A challenge carries one [`FraudProof`](crate::FraudProof) in one envelope, so the proof of any
//! segment of any batch that derivation accepts must fit [`MAX_FRAUD_PROOF_BYTES`]. The rule that
//! guarantees it is structural: [`segment_cost`] bounds, from a segment's txs alone, the size of
//! the proof against it, whatever the state and however the sequencer ground its keys, and
//! [`Batch::check_body`](crate::Batch::check_body) rejects a batch with a segment over the budget.
//! Segments therefore close by budget as well as by count (`K` txs at most); the builder closes a
//! segment when the next tx would not fit.
//!
//! # The bound
//! A proof is its fixed fields ([`PROOF_FIXED_BYTES`]), the segment's txs with one path to
//! `tx_root` each ([`TX_PATH_BYTES`]), and a witness: a multiproof of the pre-state with the
//! values of every key the segment reads or writes. [`Call::key_bound`](stint_contracts::Call)
//! bounds those keys per kind; the fee recipient adds one account per segment.
//!
//! One key's part of the multiproof is at most [`KEY_PATH_BYTES`]: a path of at most 256 levels,
//! each a `Branch` (1 byte) and a sibling that is `Empty` (1 byte) or non-empty (a `Leaf`, 65
//! bytes, or an internal node disclosed one level deep, 67 bytes), plus the terminal leaf (65).
//! Keys are tagged hashes of ids that anyone may choose, so a sequencer can grind ids whose keys
//! share long prefixes. A non-empty sibling at a depth below the top `log2(keys)` levels needs a
//! key that shares that many bits with the path, so `s` non-empty siblings on one path need about
//! `2^s` hash evaluations (an attacker's trie of `2^s` ground keys has paths with about `s`
//! non-empty siblings). **Grinding bound:** we assume nobody evaluates [`GRINDING_BOUND_BITS`]
//! = 2^128 SHA-256 hashes, the work that would also break the BIP340 keys the whole system
//! rests on; with [`SIBLING_MARGIN`] levels for the statistical tail, a path has at most
//! [`MAX_NONEMPTY_SIBLINGS`] non-empty siblings. Every value adds its key and length prefix and
//! the record itself (accounts and streams have fixed sizes, tasks at most
//! [`MAX_TASK_RECORD_SIZE`]).
//!
//! The proof of a segment is at most `segment_cost(txs)`, and encoded proofs up to
//! [`MAX_FRAUD_PROOF_BYTES`] compress into one envelope body even when incompressible (zstd
//! falls back to raw blocks: 3 bytes per 128 KiB block plus an 18-byte frame header). The
//! arithmetic is in `docs/decisions.md`.

use stint_contracts::{
    KeyBound, SignedTx, ACCOUNT_RECORD_SIZE, MAX_TASK_RECORD_SIZE, STREAM_RECORD_SIZE,
    WITHDRAWAL_RECORD_SIZE,
};

use crate::{L1Message, L1MessageKind, MAX_ENVELOPE_BODY};

/// Largest encoded fraud proof: one envelope body minus room for zstd's framing of
/// incompressible data (raw blocks), so every proof the budget admits can be posted.
pub const MAX_FRAUD_PROOF_BYTES: usize = MAX_ENVELOPE_BODY - 1024;

/// The grinding bound, in bits of work: nobody evaluates `2^128` hashes.
pub const GRINDING_BOUND_BITS: u64 = 128;

/// Extra non-empty siblings allowed for the statistical tail of random tries.
pub const SIBLING_MARGIN: u64 = 8;

/// Most non-empty siblings on one key's path under the grinding bound.
pub const MAX_NONEMPTY_SIBLINGS: u64 = GRINDING_BOUND_BITS + SIBLING_MARGIN;

/// Levels of the state tree (one per key bit).
const TREE_LEVELS: u64 = 256;

/// Worst-case multiproof bytes of one key: `Branch` + `Empty` on every level, 66 more bytes on
/// each level with a non-empty sibling, and the 65-byte terminal leaf.
pub const KEY_PATH_BYTES: u64 = 2 * TREE_LEVELS + 66 * MAX_NONEMPTY_SIBLINGS + 65;

/// A witness value's key and length prefix.
const VALUE_OVERHEAD: u64 = 32 + 4;

/// Levels of a Merkle path to `tx_root` or `trace_root`: lists hold at most
/// [`MAX_BATCH_TXS`](crate::MAX_BATCH_TXS) = 2^16 items.
const LIST_PATH_LEVELS: u64 = 16;

/// One Merkle path to `tx_root` or `trace_root` (length prefix and siblings).
pub const TX_PATH_BYTES: u64 = 4 + 32 * LIST_PATH_LEVELS;

/// Worst-case witness bytes of one account key (path, key, length, record).
pub const ACCOUNT_KEY_BYTES: u64 = KEY_PATH_BYTES + VALUE_OVERHEAD + ACCOUNT_RECORD_SIZE as u64;
/// Worst-case witness bytes of one stream key.
pub const STREAM_KEY_BYTES: u64 = KEY_PATH_BYTES + VALUE_OVERHEAD + STREAM_RECORD_SIZE as u64;
/// Worst-case witness bytes of one task key.
pub const TASK_KEY_BYTES: u64 = KEY_PATH_BYTES + VALUE_OVERHEAD + MAX_TASK_RECORD_SIZE as u64;
/// Worst-case witness bytes of one withdrawal key (protocol v3).
pub const WITHDRAWAL_KEY_BYTES: u64 =
    KEY_PATH_BYTES + VALUE_OVERHEAD + WITHDRAWAL_RECORD_SIZE as u64;

/// The proof's fixed fields: batch number, hash, segment, segment count, two checkpoints with
/// their paths, the list length prefixes (txs, tx paths, L1 messages, message paths, witness
/// nodes, witness values), the challenger, and the fee recipient's account (credited once per
/// segment).
pub const PROOF_FIXED_BYTES: u64 =
    8 + 32 + 8 + 8 + 2 * (36 + TX_PATH_BYTES) + 6 * 4 + 32 + ACCOUNT_KEY_BYTES;

/// The worst-case witness bytes of the keys in `bound`.
pub fn witness_cost(bound: KeyBound) -> u64 {
    bound
        .accounts
        .saturating_mul(ACCOUNT_KEY_BYTES)
        .saturating_add(bound.tasks.saturating_mul(TASK_KEY_BYTES))
        .saturating_add(bound.streams.saturating_mul(STREAM_KEY_BYTES))
        .saturating_add(bound.withdrawals.saturating_mul(WITHDRAWAL_KEY_BYTES))
}

/// What one tx adds to the proof of its segment, at most: its encoding, its path to `tx_root`
/// and the witness of the keys it may touch.
pub fn tx_cost(tx: &SignedTx) -> u64 {
    let encoded = borsh::object_length(tx).map_or(u64::MAX, |len| len as u64);
    encoded
        .saturating_add(TX_PATH_BYTES)
        .saturating_add(witness_cost(tx.tx.call.key_bound()))
}

/// The most bytes the fraud proof against a segment of `txs` can take.
pub fn segment_cost(txs: &[SignedTx]) -> u64 {
    txs.iter().fold(PROOF_FIXED_BYTES, |cost, tx| {
        cost.saturating_add(tx_cost(tx))
    })
}

/// What one L1 message adds to the proof of its message segment, at most: its encoding, its
/// path to `msg_root` (a batch executes at most [`MAX_BATCH_MESSAGES`](crate::MAX_BATCH_MESSAGES)
/// = 2^16 messages, so the path is as long as a tx's) and the witness of the keys it may touch:
/// a deposit's one account, a forced tx's call bound (an invalid forced tx touches less).
pub fn message_cost(message: &L1Message) -> u64 {
    let encoded = borsh::object_length(message).map_or(u64::MAX, |len| len as u64);
    let witness = match &message.kind {
        L1MessageKind::Deposit(_) => ACCOUNT_KEY_BYTES,
        L1MessageKind::Forced(forced) => witness_cost(forced.tx.tx.call.key_bound()),
    };
    encoded
        .saturating_add(TX_PATH_BYTES)
        .saturating_add(witness)
}

/// The most bytes the fraud proof against a segment of L1 `messages` can take.
pub fn message_segment_cost(messages: &[L1Message]) -> u64 {
    messages.iter().fold(PROOF_FIXED_BYTES, |cost, message| {
        cost.saturating_add(message_cost(message))
    })
}

/// The segment budget: [`segment_cost`] and [`message_segment_cost`] must not exceed it.
pub const SEGMENT_BUDGET: u64 = MAX_FRAUD_PROOF_BYTES as u64;

#[cfg(test)]
mod tests {
    use stint_contracts::{
        AccountId, Call, Payment, Record, Stream, StreamStatus, Tx, MAX_PAYROLL_PAYMENTS,
    };

    use super::*;

    fn signed(call: Call) -> SignedTx {
        SignedTx {
            tx: Tx {
                chain_id: u64::MAX,
                from: AccountId([1; 32]),
                nonce: u64::MAX,
                fee: u64::MAX,
                call,
            },
            sig: [0; 64],
        }
    }

    /// The largest tx there is: a payroll of the most payments, every field at its maximum.
    fn largest_payroll() -> SignedTx {
        signed(Call::Payroll {
            payments: vec![
                Payment {
                    to: AccountId([2; 32]),
                    amount: u64::MAX,
                };
                MAX_PAYROLL_PAYMENTS
            ],
        })
    }

    #[test]
    fn the_largest_tx_fits_an_empty_segment() {
        let payroll = largest_payroll();
        let cost = segment_cost(std::slice::from_ref(&payroll));
        assert!(cost <= SEGMENT_BUDGET, "{cost} > {SEGMENT_BUDGET}");
    }

    #[test]
    fn the_largest_forced_tx_fits_an_empty_message_segment() {
        let payroll = largest_payroll();
        let message = L1Message {
            height: u64::MAX,
            index: u32::MAX,
            kind: L1MessageKind::Forced(Box::new(crate::ForcedTx {
                btc_txid: [0xff; 32],
                tx: payroll.clone(),
            })),
        };
        let cost = message_segment_cost(std::slice::from_ref(&message));
        assert!(cost <= SEGMENT_BUDGET, "{cost} > {SEGMENT_BUDGET}");
        assert!(cost > segment_cost(std::slice::from_ref(&payroll)));
    }

    #[test]
    fn record_sizes_are_what_the_budget_assumes() {
        let account = Record::Account(stint_contracts::Account {
            balance: u64::MAX,
            nonce: u64::MAX,
        });
        assert_eq!(account.encode().len(), ACCOUNT_RECORD_SIZE);
        let stream = Record::Stream(Stream {
            employer: AccountId([1; 32]),
            worker: AccountId([2; 32]),
            rate_per_sec: u64::MAX,
            start: u64::MAX,
            funded_secs: u64::MAX,
            cancelable: true,
            status: StreamStatus::Canceled,
            banked_secs: u64::MAX,
            resumed_at: u64::MAX,
            withdrawn: u64::MAX,
        });
        assert_eq!(stream.encode().len(), STREAM_RECORD_SIZE);
    }

    #[test]
    fn incompressible_proofs_of_the_maximum_size_fit_one_envelope() {
        // A pseudo-random buffer: zstd cannot compress it and falls back to raw blocks.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let data: Vec<u8> = (0..MAX_FRAUD_PROOF_BYTES)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let body = zstd::bulk::compress(&data, crate::COMPRESSION_LEVEL).unwrap();
        assert!(body.len() <= MAX_ENVELOPE_BODY, "{}", body.len());
    }
}
