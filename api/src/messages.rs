//! What nodes record of the L1 messages they executed (protocol v3: deposits and forced txs),
//! so `stint_getDeposit`, `stint_getReceipt` and `stint_getTransaction` answer for them.
//!
//! A node writes one [`MessageRecord`] per message a batch executes, keyed by
//! [`MessageKey`] (a deposit's outpoint, a forced tx's txid), when it persists the batch, and
//! never deletes it: a later execution (after a rollback) overwrites it, and a read checks that
//! the batch it names is still held ([`ChainView::batch_state`](crate::ChainView::batch_state))
//! before trusting it.

use borsh::{BorshDeserialize, BorshSerialize};
use stint_contracts::{AccountId, MessageReceipt, Receipt, SignedTx, Txid};
use stint_protocol::{L1Message, L1MessageKind};
use stint_state::Hash;

/// How a node looks up an L1 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKey {
    /// A deposit, by its Bitcoin outpoint (txid in internal byte order, vout).
    Deposit {
        /// The paying transaction.
        txid: [u8; 32],
        /// The bridge output.
        vout: u32,
    },
    /// A forced tx, by its L2 txid.
    Forced(Txid),
}

impl MessageKey {
    /// The key of `message`.
    pub fn of(message: &L1Message) -> Self {
        match &message.kind {
            L1MessageKind::Deposit(d) => MessageKey::Deposit {
                txid: d.txid,
                vout: d.vout,
            },
            L1MessageKind::Forced(f) => MessageKey::Forced(f.tx.txid()),
        }
    }

    /// Its bytes in a node's key-value store: `b'D' ‖ txid ‖ vout (BE)` or `b'F' ‖ txid`.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            MessageKey::Deposit { txid, vout } => {
                let mut out = Vec::with_capacity(37);
                out.push(b'D');
                out.extend_from_slice(txid);
                out.extend_from_slice(&vout.to_be_bytes());
                out
            }
            MessageKey::Forced(txid) => {
                let mut out = Vec::with_capacity(33);
                out.push(b'F');
                out.extend_from_slice(&txid.0);
                out
            }
        }
    }
}

/// What one executed L1 message did, as a node records it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct MessageRecord {
    /// The batch that executed it.
    pub batch: u64,
    /// That batch's header hash.
    pub batch_hash: Hash,
    /// Its position among the batch's L1 messages.
    pub index: u32,
    /// Height of the Bitcoin block it came in.
    pub l1_height: u64,
    /// The Bitcoin transaction that carried it (internal byte order).
    pub btc_txid: [u8; 32],
    /// What it did.
    pub outcome: RecordedOutcome,
}

/// The outcome part of a [`MessageRecord`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum RecordedOutcome {
    /// A deposit credited `amount` to `account`.
    Credited {
        /// The account.
        account: AccountId,
        /// Units (sats).
        amount: u64,
    },
    /// A deposit that could not be credited (the state is unchanged by it).
    NotCredited {
        /// The account it named.
        account: AccountId,
        /// Units (sats).
        amount: u64,
        /// Why.
        reason: String,
    },
    /// A forced tx that ran (its call may still have failed: see the receipt).
    Executed {
        /// The tx.
        tx: SignedTx,
        /// Its receipt.
        receipt: Receipt,
    },
    /// A forced tx that was invalid and skipped.
    Skipped {
        /// The tx.
        tx: SignedTx,
        /// Why it is invalid.
        reason: String,
    },
}

/// The records of the messages a batch executed: `messages` and their `receipts` in order,
/// from message `from` on (a batch restating derived batches does not record their messages
/// again: the derived batches did). Receipts that do not match their message are skipped (they
/// cannot occur for receipts of the same execution).
pub fn message_records(
    batch: u64,
    batch_hash: Hash,
    messages: &[L1Message],
    receipts: &[MessageReceipt],
    from: usize,
) -> Vec<(MessageKey, MessageRecord)> {
    let mut out = Vec::new();
    for (index, (message, receipt)) in messages.iter().zip(receipts).enumerate().skip(from) {
        let (btc_txid, outcome) = match (&message.kind, receipt) {
            (L1MessageKind::Deposit(d), MessageReceipt::Credited { account, amount }) => (
                d.txid,
                RecordedOutcome::Credited {
                    account: *account,
                    amount: *amount,
                },
            ),
            (
                L1MessageKind::Deposit(d),
                MessageReceipt::NotCredited {
                    account,
                    amount,
                    reason,
                },
            ) => (
                d.txid,
                RecordedOutcome::NotCredited {
                    account: *account,
                    amount: *amount,
                    reason: reason.to_string(),
                },
            ),
            (L1MessageKind::Forced(f), MessageReceipt::Executed(receipt)) => (
                f.btc_txid,
                RecordedOutcome::Executed {
                    tx: f.tx.clone(),
                    receipt: *receipt,
                },
            ),
            (L1MessageKind::Forced(f), MessageReceipt::Skipped { reason, .. }) => (
                f.btc_txid,
                RecordedOutcome::Skipped {
                    tx: f.tx.clone(),
                    reason: reason.to_string(),
                },
            ),
            _ => continue,
        };
        let Ok(index) = u32::try_from(index) else {
            continue;
        };
        out.push((
            MessageKey::of(message),
            MessageRecord {
                batch,
                batch_hash,
                index,
                l1_height: message.height,
                btc_txid,
                outcome,
            },
        ));
    }
    out
}

/// The forced txs among `records` (their txids), for status notifications.
pub fn forced_txids(records: &[(MessageKey, MessageRecord)]) -> Vec<Txid> {
    records
        .iter()
        .filter_map(|(key, _)| match key {
            MessageKey::Forced(txid) => Some(*txid),
            MessageKey::Deposit { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_do_not_collide_across_kinds() {
        let deposit = MessageKey::Deposit {
            txid: [1; 32],
            vout: 0,
        };
        let forced = MessageKey::Forced(Txid([1; 32]));
        assert_ne!(deposit.to_bytes(), forced.to_bytes());
        assert_eq!(deposit.to_bytes().len(), 37);
        assert_eq!(forced.to_bytes().len(), 33);
    }
}
