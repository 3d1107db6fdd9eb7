//! # stint-contracts
//!
//! The settlement contracts of Stint (protocol v1): accounts and transfers, payroll, wage
//! streams, and task escrow with milestones and arbitration. This crate defines the
//! transaction format, signing, the state records, and the state transition function (STF).
//! It is pure and deterministic: no I/O, clocks or randomness; the only time is the batch
//! timestamp in [`BlockContext`]. The STF never computes Merkle roots: it returns
//! [`ChangeSet`](stint_state::ChangeSet)s that callers apply to the state tree.
//!
//! ## Key components
//! - [`Tx`], [`SignedTx`], [`Call`]: the transaction format. Canonical borsh encoding with a
//!   strict decoder ([`SignedTx::decode`]: size bound [`MAX_SIGNED_TX_SIZE`], no trailing
//!   bytes, canonical tags, list bounds). `txid = tagged_hash("stint/tx", borsh(tx))`
//!   ([`Tx::txid`]); the signature is BIP340 Schnorr over the 32-byte txid.
//! - [`AccountId`] / [`Address`]: x-only public keys, written as bech32m with hrp `stint`.
//! - [`TaskId`], [`StreamId`]: `tagged_hash("stint/task" | "stint/stream", creator ‖ nonce_le)`
//!   ([`task_id`], [`stream_id`]).
//! - [`Record`] ([`Account`], [`Task`], [`Stream`]) stored under [`account_key`],
//!   [`task_key`], [`stream_key`] (`tagged_hash("stint/key", kind ‖ id)`).
//! - [`execute_segment`], [`execute_batch`], [`execute_batch_parallel`]: the STF.
//!   [`verify_signatures`] / [`VerifiedTxs`] check signatures in parallel.
//! - [`execute_messages`] (protocol v2): a segment of L1 messages — deposits credit
//!   ([`L1Effect::Credit`]), forced txs run, and an invalid forced tx is skipped with a
//!   [`MessageReceipt::Skipped`] instead of invalidating the batch.
//! - [`Receipt`] and [`FailureCode`]; [`ExecError`] for invalid txs and view failures.
//! - [`access_set`]: the keys a tx may touch, for parallel replay and fraud-proof witnesses.
//! - [`total_value`]: the conserved quantity (balances + task escrows + stream escrows).
//!
//! ## Validity versus failure
//! A tx is **invalid** — and the whole batch with it ([`ExecError::Invalid`]) — if, checked in
//! this order, its chain id is wrong, its signature does not verify, its nonce is not the
//! sender's next nonce (or the nonce is exhausted), or the sender's balance is below the fee.
//! Otherwise it is **executed**: the nonce is incremented and the fee charged; then the call runs
//! on a nested overlay. If the call fails, its effects are discarded and the [`Receipt`] carries
//! the [`FailureCode`]. Each segment's fees are credited to [`BlockContext::fee_recipient`]
//! after the segment's last tx (so fees earned in a segment are spendable from the next one).
//!
//! ## Semantics (consensus)
//! Checks within a call run in this order, which decides the failure code when several apply:
//! the object exists, the caller is authorized, the object's status allows the call, the
//! arguments are valid, the time rules hold, then balances and arithmetic as effects apply.
//! All arithmetic is checked; an overflow fails the call with [`FailureCode::Overflow`].
//! Zero amounts are rejected ([`FailureCode::ZeroAmount`]); zero-value payouts touch no state.
//! An account record equal to the default (balance 0, nonce 0) is deleted.
//!
//! **Transfers and payroll.** Payroll pays 1..=1,024 non-zero payments all-or-nothing.
//!
//! **Streams.** `StreamOpen` escrows `rate × duration` (worker ≠ employer; rate and duration
//! non-zero); accrual counts from `start` (which may lie in the past, back-paying wages).
//! `accrued = rate × active seconds`, capped at the funded seconds; paused time does not accrue
//! and what accrued before a pause stays owed. `StreamWithdraw` (worker; not after cancel) pays
//! accrued minus withdrawn, failing with `NothingToWithdraw` if that is zero. `StreamTopUp`
//! (anyone; not after cancel) pays `rate × extra_secs` and first banks the active seconds so far,
//! so seconds that passed after the funding ran out are never paid retroactively.
//! `StreamPause`/`StreamResume` (employer) bank and restart accrual (`StreamPaused` /
//! `StreamNotPaused` when already in that state). `StreamCancel` (employer, if cancelable) pays
//! the worker what accrued and is unwithdrawn, refunds the rest, and ends the stream.
//!
//! **Tasks.** `TaskCreate` escrows the sum of 1..=64 non-zero milestones; the deadline must be
//! in the future; worker and arbiter must differ from the employer and from each other. States:
//! `Open → Active → (Disputed → Resolved | Completed | Canceled)`, `Open → Canceled`.
//! `TaskAccept`: a named worker, or for an open task anyone but the employer and arbiter, by
//! the deadline. `TaskSubmit` (worker, `Active`, milestone `Pending`, by the deadline).
//! `TaskApprove` (employer, `Active`, milestone `Submitted`) pays the milestone. `TaskClaim`
//! (worker, `Active`, milestone `Submitted` at `t`, `now ≥ t + review_secs`) pays it; a dispute
//! freezes the task, so claims stop. `TaskDispute` (employer or worker, `Active`, the task has an
//! arbiter). `TaskResolve` (arbiter, `Disputed`, `worker_share_bps ≤ 10,000`) gives the worker
//! `floor(escrow × bps / 10,000)` and the employer the remainder — value is conserved exactly;
//! the milestones still pending or submitted become `Resolved` and the task records the split
//! (`resolution`: share, both amounts, time).
//! `TaskCancel` (employer): an `Open` task is refunded entirely at any time; an `Active` task
//! only after its deadline, refunding the milestones still `Pending` (submitted ones stay
//! claimable), failing with `NothingToRefund` if there are none. When no milestone is pending or
//! submitted any more, the task becomes `Completed` (all paid) or `Canceled`.
//!
//! ## Usage
//! ```
//! use std::collections::BTreeMap;
//! use k256::schnorr::SigningKey;
//! use stint_contracts::{
//!     account_entry, apply_changes, execute_batch, read_account, Account, AccountId,
//!     BlockContext, Call, Tx,
//! };
//!
//! let alice_key = SigningKey::from_bytes(&[1; 32]).unwrap();
//! let alice = AccountId::from_signing_key(&alice_key);
//! let bob: AccountId = AccountId([2; 32]);
//! let sequencer = AccountId([3; 32]);
//!
//! // A genesis state funding Alice.
//! let mut state = BTreeMap::new();
//! let (key, value) = account_entry(&alice, &Account { balance: 1_000, nonce: 0 });
//! state.insert(key, value.unwrap());
//!
//! let tx = Tx { chain_id: 1, from: alice, nonce: 0, fee: 5, call: Call::Transfer { to: bob, amount: 100 } };
//! let signed = tx.sign(&alice_key).unwrap();
//!
//! let ctx = BlockContext { chain_id: 1, timestamp: 1_700_000_000, fee_recipient: sequencer };
//! let outcome = execute_batch(&state, &ctx, &[signed], 32).unwrap();
//! assert!(outcome.segments[0].receipts[0].error.is_none());
//! for segment in &outcome.segments {
//!     apply_changes(&mut state, &segment.changes);
//! }
//! assert_eq!(read_account(&state, &alice).unwrap(), Account { balance: 895, nonce: 1 });
//! assert_eq!(read_account(&state, &bob).unwrap().balance, 100);
//! assert_eq!(read_account(&state, &sequencer).unwrap().balance, 5);
//! ```
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod calls;
mod error;
mod l1;
mod parallel;
mod receipt;
mod records;
mod stf;
mod tx;
mod types;

pub use error::{AddressError, BadSignature, DecodeError, ExecError, InvalidTxReason, SignError};
pub use l1::{execute_messages, CreditRefusal, L1Effect, MessageOutcome, MessageReceipt};
pub use parallel::{
    access_set, execute_batch_parallel, execute_verified_batch_parallel,
    execute_verified_segments_parallel,
};
pub use receipt::{FailureCode, Receipt, TxStatus};
pub use records::{
    account_entry, account_key, apply_changes, read_account, read_stream, read_task,
    read_withdrawal, standard_output_dust, state_key, stream_key, task_key, total_value,
    withdrawal_key, Account, Dispute, KeyKind, Milestone, MilestoneStatus, Record, Resolution,
    Stream, StreamStatus, Task, TaskStatus, Withdrawal, ACCOUNT_RECORD_SIZE, KEY_TAG,
    MAX_BTC_SCRIPT_LEN, MAX_RECORD_SIZE, MAX_TASK_RECORD_SIZE, STREAM_RECORD_SIZE,
    WITHDRAWAL_RECORD_SIZE,
};
pub use stf::{
    execute_batch, execute_segment, execute_verified_batch, execute_verified_segment,
    execute_verified_segments, verify_signatures, BatchOutcome, BlockContext, SegmentOutcome,
    VerifiedTxs,
};
pub use tx::{
    stream_id, task_id, withdrawal_id, Call, KeyBound, Payment, SignedTx, Tx, BPS_DENOMINATOR,
    MAX_MILESTONES, MAX_PAYROLL_PAYMENTS, MAX_SIGNED_TX_SIZE, MAX_TX_SIZE, STREAM_TAG, TASK_TAG,
    TX_TAG, WITHDRAWAL_TAG, WTX_TAG,
};
pub use types::{AccountId, Address, StreamId, TaskId, Txid, WithdrawalId, ADDRESS_HRP};

#[cfg(test)]
mod tests;
