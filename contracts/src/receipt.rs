//! Receipts of executed transactions and the failure codes of calls.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::types::Txid;

/// Why an executed tx's call failed (its effects were reverted; nonce and fee still count).
///
/// The variant order is the borsh tag and is consensus (receipts are committed to via state
/// roots only indirectly, but nodes must agree on them for RPC and tooling).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
    thiserror::Error,
)]
#[serde(rename_all = "camelCase")]
pub enum FailureCode {
    /// The caller may not make this call on this object.
    #[error("caller is not authorized")]
    Unauthorized,
    /// The task or stream is not in a status that allows the call.
    #[error("wrong status for this call")]
    WrongStatus,
    /// An amount computation overflowed `u64`.
    #[error("arithmetic overflow")]
    Overflow,
    /// The payer's balance is too low.
    #[error("insufficient balance")]
    InsufficientBalance,
    /// An amount, rate or duration is zero.
    #[error("zero amount")]
    ZeroAmount,
    /// A payroll with more than 1,024 payments.
    #[error("too many payments")]
    TooManyPayments,
    /// A payroll with no payments.
    #[error("empty payroll")]
    EmptyPayroll,
    /// No stream with this id.
    #[error("unknown stream")]
    UnknownStream,
    /// No task with this id.
    #[error("unknown task")]
    UnknownTask,
    /// The stream is already paused.
    #[error("stream is paused")]
    StreamPaused,
    /// The stream is not paused.
    #[error("stream is not paused")]
    StreamNotPaused,
    /// The stream was opened as not cancelable.
    #[error("stream is not cancelable")]
    NotCancelable,
    /// Nothing has accrued that was not already withdrawn.
    #[error("nothing to withdraw")]
    NothingToWithdraw,
    /// The task's deadline has passed (or, at creation, is not in the future).
    #[error("deadline passed")]
    DeadlinePassed,
    /// Canceling an accepted task needs its deadline to have passed.
    #[error("deadline not passed")]
    DeadlineNotPassed,
    /// The milestone index is not below the milestone count.
    #[error("milestone out of range")]
    MilestoneOutOfRange,
    /// The milestone was already submitted, paid or refunded.
    #[error("milestone is not pending")]
    MilestoneNotPending,
    /// The milestone has not been submitted (or was already paid or refunded).
    #[error("milestone is not submitted")]
    MilestoneNotSubmitted,
    /// The review period of the submission has not passed.
    #[error("review period not over")]
    ReviewPeriodNotOver,
    /// The task has no arbiter, so it cannot be disputed.
    #[error("task has no arbiter")]
    NoArbiter,
    /// `worker_share_bps` above 10,000.
    #[error("share above 10,000 bps")]
    InvalidShare,
    /// A task with no milestones.
    #[error("no milestones")]
    NoMilestones,
    /// A task with more than 64 milestones.
    #[error("too many milestones")]
    TooManyMilestones,
    /// Participants that must differ coincide (worker or arbiter = employer, worker = arbiter).
    #[error("invalid participant")]
    InvalidParticipant,
    /// An object with this id already exists.
    #[error("already exists")]
    AlreadyExists,
    /// A cancel that would refund nothing.
    #[error("nothing to refund")]
    NothingToRefund,
    /// A withdrawal's Bitcoin output script is not a standard one (P2PKH, P2SH, P2WPKH,
    /// P2WSH, P2TR).
    #[error("not a standard Bitcoin output script")]
    NonStandardScript,
    /// A withdrawal's amount is below the dust limit of its output script.
    #[error("below the Bitcoin dust limit")]
    BelowDust,
}

/// Outcome status of an executed tx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TxStatus {
    /// The call succeeded.
    Executed,
    /// The call failed and was reverted.
    Failed,
}

/// What executing one tx did.
///
/// JSON: `{"txid", "fee", "status": "executed"|"failed", "error": code|null}`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(into = "ReceiptJson", try_from = "ReceiptJson")]
pub struct Receipt {
    /// The tx.
    pub txid: Txid,
    /// Fee charged.
    pub fee: u64,
    /// `None` if the call succeeded, else why it failed.
    pub error: Option<FailureCode>,
}

impl Receipt {
    /// Executed or failed.
    pub fn status(&self) -> TxStatus {
        match self.error {
            None => TxStatus::Executed,
            Some(_) => TxStatus::Failed,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReceiptJson {
    txid: Txid,
    fee: u64,
    status: TxStatus,
    error: Option<FailureCode>,
}

impl From<Receipt> for ReceiptJson {
    fn from(r: Receipt) -> Self {
        ReceiptJson {
            txid: r.txid,
            fee: r.fee,
            status: r.status(),
            error: r.error,
        }
    }
}

impl TryFrom<ReceiptJson> for Receipt {
    type Error = &'static str;

    fn try_from(j: ReceiptJson) -> Result<Self, Self::Error> {
        let receipt = Receipt {
            txid: j.txid,
            fee: j.fee,
            error: j.error,
        };
        if receipt.status() != j.status {
            return Err("receipt status and error disagree");
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_json_shape() {
        let r = Receipt {
            txid: Txid([1; 32]),
            fee: 3,
            error: Some(FailureCode::WrongStatus),
        };
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"], "wrongStatus");
        assert_eq!(serde_json::from_value::<Receipt>(v).unwrap(), r);
        let bad = serde_json::json!({"txid": Txid([1; 32]), "fee": 3, "status": "executed",
            "error": "wrongStatus"});
        assert!(serde_json::from_value::<Receipt>(bad).is_err());
    }
}
