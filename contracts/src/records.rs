//! State records (accounts, tasks, streams), the keys they live under, and strict decoding.
//!
//! Every value in the state tree is a borsh-encoded [`Record`]; the enum tag says which kind of
//! record it is, so a state can be audited (for example by [`total_value`]) without knowing the
//! keys' preimages.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use stint_state::{tagged_hash, ChangeSet, Hash, Key, StateView};

use crate::error::{DecodeError, ExecError};
use crate::tx::{strict_decode, to_borsh, MAX_MILESTONES};
use crate::types::{hex_bytes, AccountId, StreamId, TaskId, WithdrawalId};

/// Tag of state keys: `key = tagged_hash("stint/key", kind ‖ id)`.
pub const KEY_TAG: &str = "stint/key";
/// Largest encoding of a record (a task with [`MAX_MILESTONES`] submitted milestones is about
/// 3.4 KB).
pub const MAX_RECORD_SIZE: usize = 8192;
/// Encoded size of an account record (tag + balance + nonce): every account record has it.
pub const ACCOUNT_RECORD_SIZE: usize = 1 + 8 + 8;
/// Encoded size of a stream record (tag, two ids, six `u64`s, `cancelable`, status): every
/// stream record has it.
pub const STREAM_RECORD_SIZE: usize = 1 + 32 + 32 + 8 + 8 + 8 + 1 + 1 + 8 + 8 + 8;
/// Largest encoded task record (bounded by [`MAX_RECORD_SIZE`], which decoding enforces).
pub const MAX_TASK_RECORD_SIZE: usize = MAX_RECORD_SIZE;

/// The kinds of state keys (the first byte of the key preimage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyKind {
    /// An [`Account`].
    Account = 1,
    /// A [`Task`].
    Task = 2,
    /// A [`Stream`].
    Stream = 3,
    /// Chain metadata (reserved; protocol v1 stores none in the tree).
    Meta = 4,
    /// A pending [`Withdrawal`] (protocol v3).
    Withdrawal = 5,
}

/// The key of `(kind, id)`.
pub fn state_key(kind: KeyKind, id: &[u8; 32]) -> Key {
    tagged_hash(KEY_TAG, &[&[kind as u8], id])
}

/// Key of an account record.
pub fn account_key(id: &AccountId) -> Key {
    state_key(KeyKind::Account, &id.0)
}

/// Key of a task record.
pub fn task_key(id: &TaskId) -> Key {
    state_key(KeyKind::Task, &id.0)
}

/// Key of a stream record.
pub fn stream_key(id: &StreamId) -> Key {
    state_key(KeyKind::Stream, &id.0)
}

/// Key of a withdrawal record.
pub fn withdrawal_key(id: &WithdrawalId) -> Key {
    state_key(KeyKind::Withdrawal, &id.0)
}

/// Longest Bitcoin output script a withdrawal may name (P2WSH and P2TR: 34 bytes).
pub const MAX_BTC_SCRIPT_LEN: usize = 34;
/// Largest encoded withdrawal record (tag, sender, script with its length, amount).
pub const WITHDRAWAL_RECORD_SIZE: usize = 1 + 32 + 4 + MAX_BTC_SCRIPT_LEN + 8;

/// Bitcoin Core's dust limit of a standard output script (at its default `dustrelayfee` of
/// 3 sat/vB), or `None` when the script is not one of the standard kinds a withdrawal may pay:
/// P2PKH 546, P2SH 540, P2WPKH 294, P2WSH and P2TR 330 sats. Pure (consensus): only the
/// script's bytes decide.
pub fn standard_output_dust(script: &[u8]) -> Option<u64> {
    match script {
        [0x76, 0xa9, 0x14, rest @ ..] if rest.len() == 22 && rest.ends_with(&[0x88, 0xac]) => {
            Some(546)
        }
        [0xa9, 0x14, rest @ ..] if rest.len() == 21 && rest.ends_with(&[0x87]) => Some(540),
        [0x00, 0x14, rest @ ..] if rest.len() == 20 => Some(294),
        [0x00, 0x20, rest @ ..] if rest.len() == 32 => Some(330),
        [0x51, 0x20, rest @ ..] if rest.len() == 32 => Some(330),
        _ => None,
    }
}

/// A withdrawal (protocol v3): `amount` units burned from `from`, owed as bitcoin to
/// `btc_script` once its batch is final. The record stays until the bridge pays it, so the
/// state's value counts what the bridge owes.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawal {
    /// Who withdrew.
    pub from: AccountId,
    /// The Bitcoin output script to pay (a standard one: [`standard_output_dust`]).
    #[serde(with = "crate::types::hex_vec")]
    pub btc_script: Vec<u8>,
    /// Units (sats) owed.
    pub amount: u64,
}

/// An account: spendable balance and next nonce. An absent record reads as the default (zero
/// balance, nonce 0); a record that becomes the default is deleted, so the state stays canonical.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Spendable units.
    pub balance: u64,
    /// The nonce the account's next tx must carry.
    pub nonce: u64,
}

/// Status of a task. Transitions:
///
/// ```text
/// Open --accept--> Active --dispute--> Disputed --resolve--> Resolved
///  |                 |  \--(all milestones paid)-----------> Completed
///  |                 \--(all settled, some refunded)--------> Canceled
///  \--cancel------------------------------------------------> Canceled
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum TaskStatus {
    /// Created, no worker has accepted yet.
    Open,
    /// A worker accepted; milestones are being submitted and paid.
    Active,
    /// Frozen until the arbiter resolves.
    Disputed,
    /// The arbiter split the escrow (terminal).
    Resolved,
    /// Every milestone was paid (terminal).
    Completed,
    /// Every milestone is paid or refunded and at least one was refunded (terminal).
    Canceled,
}

/// Status of one milestone: `Pending -> Submitted -> Paid`, `Pending -> Refunded` on cancel, or
/// `Pending | Submitted -> Resolved` when the arbiter splits a disputed task's escrow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(
    tag = "state",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum MilestoneStatus {
    /// Not submitted yet.
    Pending,
    /// Submitted at `at` with a deliverable.
    Submitted {
        /// Batch timestamp of the submission.
        at: u64,
        /// Hash of the deliverable.
        #[serde(with = "hex_bytes")]
        deliverable_hash: Hash,
    },
    /// Paid to the worker.
    Paid,
    /// Refunded to the employer.
    Refunded,
    /// Settled by the arbiter's split of the escrow (the task's [`Resolution`] says how).
    Resolved,
}

/// One milestone of a task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct Milestone {
    /// Units paid for it.
    pub amount: u64,
    /// Where it stands.
    pub status: MilestoneStatus,
}

/// A dispute raised on a task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct Dispute {
    /// Who raised it (employer or worker).
    pub by: AccountId,
    /// Hash of the stated reason.
    #[serde(with = "hex_bytes")]
    pub reason_hash: Hash,
    /// Batch timestamp when it was raised.
    pub at: u64,
}

/// How the arbiter settled a disputed task: the escrow at resolution went `to_worker` and
/// `to_employer` (together exactly the escrow), by `worker_share_bps`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    /// The worker's share in basis points (0..=10,000).
    pub worker_share_bps: u16,
    /// Units paid to the worker.
    pub to_worker: u64,
    /// Units refunded to the employer.
    pub to_employer: u64,
    /// Batch timestamp of the resolution.
    pub at: u64,
}

/// A task escrow. Invariant: `escrow` = sum of the `Pending` and `Submitted` milestone amounts
/// while the task is `Open`, `Active` or `Disputed`, and 0 once it is terminal.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Who created and funded it.
    pub employer: AccountId,
    /// The worker (named at creation, or whoever accepted an open task).
    pub worker: Option<AccountId>,
    /// Who resolves disputes.
    pub arbiter: Option<AccountId>,
    /// Hash of the specification.
    #[serde(with = "hex_bytes")]
    pub spec_hash: Hash,
    /// The milestones.
    pub milestones: Vec<Milestone>,
    /// No acceptance or submission after this time.
    pub deadline: u64,
    /// Review period of a submission before the worker may claim it.
    pub review_secs: u64,
    /// Batch timestamp of creation.
    pub created_at: u64,
    /// Status.
    pub status: TaskStatus,
    /// Units still held in escrow.
    pub escrow: u64,
    /// The dispute, if one was raised.
    pub dispute: Option<Dispute>,
    /// The arbiter's split, once the dispute is resolved.
    pub resolution: Option<Resolution>,
}

/// Status of a stream.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum StreamStatus {
    /// Accruing (from `resumed_at`, until the funded seconds are used up).
    Active,
    /// Not accruing; what accrued stays owed.
    Paused,
    /// Ended by the employer; everything settled (terminal).
    Canceled,
}

/// A wage stream. Value held: `rate_per_sec × funded_secs − withdrawn` (see [`Stream::escrow`]).
///
/// Accrual: `accrued_secs(now) = min(funded_secs, banked_secs + (now − resumed_at))` while
/// active (the subtraction saturating at 0 before `resumed_at`), and `min(funded_secs,
/// banked_secs)` otherwise. Every pause and top-up "banks" the active seconds so far.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stream {
    /// Who funds it.
    pub employer: AccountId,
    /// Who is paid.
    pub worker: AccountId,
    /// Units per active second.
    pub rate_per_sec: u64,
    /// Accrual never counts time before this.
    pub start: u64,
    /// Seconds of wages paid into escrow so far (open plus top-ups; set to the accrued seconds
    /// on cancel).
    pub funded_secs: u64,
    /// Whether the employer may cancel.
    pub cancelable: bool,
    /// Status.
    pub status: StreamStatus,
    /// Active seconds accrued before `resumed_at`.
    pub banked_secs: u64,
    /// While active: when the current run started (never before `start`).
    pub resumed_at: u64,
    /// Units paid out to the worker so far.
    pub withdrawn: u64,
}

impl Stream {
    /// Active seconds accrued by `now` (capped at the funded seconds).
    pub fn accrued_secs(&self, now: u64) -> u64 {
        let running = match self.status {
            StreamStatus::Active => now.saturating_sub(self.resumed_at),
            StreamStatus::Paused | StreamStatus::Canceled => 0,
        };
        self.banked_secs
            .saturating_add(running)
            .min(self.funded_secs)
    }

    /// Units accrued by `now` (`None` on overflow, impossible for records the STF wrote).
    pub fn accrued(&self, now: u64) -> Option<u64> {
        self.rate_per_sec.checked_mul(self.accrued_secs(now))
    }

    /// Units accrued by `now` and not yet withdrawn.
    pub fn withdrawable(&self, now: u64) -> Option<u64> {
        self.accrued(now)?.checked_sub(self.withdrawn)
    }

    /// Units still held in escrow: `rate × funded_secs − withdrawn`.
    pub fn escrow(&self) -> Option<u64> {
        self.rate_per_sec
            .checked_mul(self.funded_secs)?
            .checked_sub(self.withdrawn)
    }
}

/// Any value stored in the state tree. The borsh tag is the record kind.
// Records are decoded transiently, one at a time; boxing the task would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Record {
    /// An account.
    Account(Account),
    /// A task escrow.
    Task(Task),
    /// A wage stream.
    Stream(Stream),
    /// A pending withdrawal (protocol v3).
    Withdrawal(Withdrawal),
}

impl Record {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        to_borsh(self)
    }

    /// Strict decoding: bounded size, no trailing bytes, canonical, milestone bound.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let record: Record = strict_decode(bytes, MAX_RECORD_SIZE)?;
        if let Record::Withdrawal(w) = &record {
            if w.btc_script.len() > MAX_BTC_SCRIPT_LEN {
                return Err(DecodeError::TooMany {
                    what: "btc_script bytes",
                    len: w.btc_script.len(),
                    max: MAX_BTC_SCRIPT_LEN,
                });
            }
        }
        if let Record::Task(task) = &record {
            if task.milestones.len() > MAX_MILESTONES {
                return Err(DecodeError::TooMany {
                    what: "milestones",
                    len: task.milestones.len(),
                    max: MAX_MILESTONES,
                });
            }
        }
        Ok(record)
    }

    /// Units of value this record holds (balance or escrow).
    pub fn value(&self) -> Option<u64> {
        match self {
            Record::Account(a) => Some(a.balance),
            Record::Task(t) => Some(t.escrow),
            Record::Stream(s) => s.escrow(),
            Record::Withdrawal(w) => Some(w.amount),
        }
    }
}

fn corrupt(key: Key, reason: DecodeError) -> ExecError {
    ExecError::CorruptRecord { key, reason }
}

fn wrong_kind(key: Key, expected: &'static str) -> ExecError {
    corrupt(
        key,
        DecodeError::Malformed(format!("expected a {expected} record")),
    )
}

/// Read an account (the default if absent).
pub fn read_account(view: &impl StateView, id: &AccountId) -> Result<Account, ExecError> {
    let key = account_key(id);
    match view.get(&key)? {
        None => Ok(Account::default()),
        Some(bytes) => match Record::decode(&bytes).map_err(|e| corrupt(key, e))? {
            Record::Account(a) => Ok(a),
            _ => Err(wrong_kind(key, "account")),
        },
    }
}

/// Read a task.
pub fn read_task(view: &impl StateView, id: &TaskId) -> Result<Option<Task>, ExecError> {
    let key = task_key(id);
    match view.get(&key)? {
        None => Ok(None),
        Some(bytes) => match Record::decode(&bytes).map_err(|e| corrupt(key, e))? {
            Record::Task(t) => Ok(Some(t)),
            _ => Err(wrong_kind(key, "task")),
        },
    }
}

/// Read a stream.
pub fn read_stream(view: &impl StateView, id: &StreamId) -> Result<Option<Stream>, ExecError> {
    let key = stream_key(id);
    match view.get(&key)? {
        None => Ok(None),
        Some(bytes) => match Record::decode(&bytes).map_err(|e| corrupt(key, e))? {
            Record::Stream(s) => Ok(Some(s)),
            _ => Err(wrong_kind(key, "stream")),
        },
    }
}

/// Read a withdrawal.
pub fn read_withdrawal(
    view: &impl StateView,
    id: &WithdrawalId,
) -> Result<Option<Withdrawal>, ExecError> {
    let key = withdrawal_key(id);
    match view.get(&key)? {
        None => Ok(None),
        Some(bytes) => match Record::decode(&bytes).map_err(|e| corrupt(key, e))? {
            Record::Withdrawal(w) => Ok(Some(w)),
            _ => Err(wrong_kind(key, "withdrawal")),
        },
    }
}

/// The state entry of an account: `(key, Some(encoded))`, or `(key, None)` (delete) for the
/// default account. Use it to build genesis states.
pub fn account_entry(id: &AccountId, account: &Account) -> (Key, Option<Vec<u8>>) {
    let value = if *account == Account::default() {
        None
    } else {
        Some(Record::Account(*account).encode())
    };
    (account_key(id), value)
}

/// Apply a change set to an in-memory state map (deletions remove the key).
pub fn apply_changes(state: &mut BTreeMap<Key, Vec<u8>>, changes: &ChangeSet) {
    for (key, value) in changes {
        match value {
            Some(v) => {
                state.insert(*key, v.clone());
            }
            None => {
                state.remove(key);
            }
        }
    }
}

/// Total value held in a state: balances (fees included, as they are credited to the fee
/// account) plus task escrows plus stream escrows plus pending withdrawals. The STF conserves
/// it exactly.
pub fn total_value(state: &BTreeMap<Key, Vec<u8>>) -> Result<u128, ExecError> {
    let mut total: u128 = 0;
    for (key, bytes) in state {
        let record = Record::decode(bytes).map_err(|e| corrupt(*key, e))?;
        let value = record.value().ok_or_else(|| {
            corrupt(
                *key,
                DecodeError::Malformed("stream escrow overflows".into()),
            )
        })?;
        total = total.saturating_add(u128::from(value));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_separated_by_kind() {
        let id = [7u8; 32];
        assert_ne!(
            state_key(KeyKind::Account, &id),
            state_key(KeyKind::Task, &id)
        );
        assert_ne!(
            state_key(KeyKind::Task, &id),
            state_key(KeyKind::Stream, &id)
        );
        assert_eq!(
            account_key(&AccountId(id)),
            tagged_hash(KEY_TAG, &[&[1], &id])
        );
    }

    #[test]
    fn records_decode_strictly() {
        let rec = Record::Account(Account {
            balance: 5,
            nonce: 1,
        });
        let mut bytes = rec.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), rec);
        bytes.push(0);
        assert!(Record::decode(&bytes).is_err());
        assert!(Record::decode(&[9]).is_err());
        assert!(Record::decode(&vec![0u8; MAX_RECORD_SIZE + 1]).is_err());
    }

    #[test]
    fn default_account_entry_deletes() {
        let id = AccountId([1; 32]);
        assert_eq!(account_entry(&id, &Account::default()).1, None);
        assert!(account_entry(
            &id,
            &Account {
                balance: 1,
                nonce: 0
            }
        )
        .1
        .is_some());
    }

    #[test]
    fn stream_accrual_caps_and_pauses() {
        let mut s = Stream {
            employer: AccountId([1; 32]),
            worker: AccountId([2; 32]),
            rate_per_sec: 3,
            start: 100,
            funded_secs: 10,
            cancelable: true,
            status: StreamStatus::Active,
            banked_secs: 0,
            resumed_at: 100,
            withdrawn: 0,
        };
        assert_eq!(s.accrued_secs(50), 0);
        assert_eq!(s.accrued_secs(104), 4);
        assert_eq!(s.accrued_secs(1000), 10);
        assert_eq!(s.accrued(104), Some(12));
        s.status = StreamStatus::Paused;
        s.banked_secs = 4;
        assert_eq!(s.accrued_secs(1000), 4);
        assert_eq!(s.escrow(), Some(30));
    }
}
