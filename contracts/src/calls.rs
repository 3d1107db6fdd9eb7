//! The calls' semantics, run on a staging overlay that the STF discards if the call fails.
//!
//! Checks run in a fixed order, which decides the failure code when several apply (consensus):
//! object existence, caller authorization, object status, arguments, time, then balances and
//! arithmetic as the effects are applied.

use stint_state::{Overlay, StateView};

use crate::error::ExecError;
use crate::receipt::FailureCode;
use crate::records::{
    account_entry, read_account, read_stream, read_task, read_withdrawal, standard_output_dust,
    stream_key, task_key, withdrawal_key, Milestone, MilestoneStatus, Record, Resolution, Stream,
    StreamStatus, Task, TaskStatus, Withdrawal,
};
use crate::tx::{
    stream_id, task_id, withdrawal_id, Call, BPS_DENOMINATOR, MAX_MILESTONES, MAX_PAYROLL_PAYMENTS,
};
use crate::types::{AccountId, StreamId, TaskId};

/// Why a call did not complete.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The call fails; its effects are reverted and the receipt records the code.
    Fail(FailureCode),
    /// The view failed: execution as a whole stops.
    Exec(ExecError),
}

impl From<FailureCode> for CallError {
    fn from(code: FailureCode) -> Self {
        CallError::Fail(code)
    }
}

impl From<ExecError> for CallError {
    fn from(e: ExecError) -> Self {
        CallError::Exec(e)
    }
}

type CallResult<T = ()> = Result<T, CallError>;

/// Who calls, with which tx nonce, at what time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallEnv {
    pub(crate) from: AccountId,
    pub(crate) nonce: u64,
    pub(crate) now: u64,
}

fn overflow<T>(v: Option<T>) -> CallResult<T> {
    v.ok_or(CallError::Fail(FailureCode::Overflow))
}

fn ensure(cond: bool, code: FailureCode) -> CallResult {
    if cond {
        Ok(())
    } else {
        Err(CallError::Fail(code))
    }
}

/// Take `amount` from `id`. A zero amount touches nothing.
pub(crate) fn debit<V: StateView>(st: &mut Overlay<V>, id: &AccountId, amount: u64) -> CallResult {
    if amount == 0 {
        return Ok(());
    }
    let mut account = read_account(st, id)?;
    account.balance = account
        .balance
        .checked_sub(amount)
        .ok_or(CallError::Fail(FailureCode::InsufficientBalance))?;
    write_account(st, id, &account);
    Ok(())
}

/// Give `amount` to `id`. A zero amount touches nothing.
pub(crate) fn credit<V: StateView>(st: &mut Overlay<V>, id: &AccountId, amount: u64) -> CallResult {
    if amount == 0 {
        return Ok(());
    }
    let mut account = read_account(st, id)?;
    account.balance = overflow(account.balance.checked_add(amount))?;
    write_account(st, id, &account);
    Ok(())
}

/// Stage an account record (deleting it if it is the default).
pub(crate) fn write_account<V: StateView>(
    st: &mut Overlay<V>,
    id: &AccountId,
    account: &crate::records::Account,
) {
    match account_entry(id, account) {
        (key, Some(value)) => st.put(key, value),
        (key, None) => st.delete(key),
    }
}

fn write_task<V: StateView>(st: &mut Overlay<V>, id: &TaskId, task: Task) {
    st.put(task_key(id), Record::Task(task).encode());
}

fn write_stream<V: StateView>(st: &mut Overlay<V>, id: &StreamId, stream: Stream) {
    st.put(stream_key(id), Record::Stream(stream).encode());
}

fn load_task<V: StateView>(st: &Overlay<V>, id: &TaskId) -> CallResult<Task> {
    read_task(st, id)?.ok_or(CallError::Fail(FailureCode::UnknownTask))
}

fn load_stream<V: StateView>(st: &Overlay<V>, id: &StreamId) -> CallResult<Stream> {
    read_stream(st, id)?.ok_or(CallError::Fail(FailureCode::UnknownStream))
}

/// Run `call` for `env` on `st`.
pub(crate) fn run_call<V: StateView>(
    st: &mut Overlay<V>,
    env: &CallEnv,
    call: &Call,
) -> CallResult {
    match call {
        Call::Transfer { to, amount } => {
            ensure(*amount != 0, FailureCode::ZeroAmount)?;
            debit(st, &env.from, *amount)?;
            credit(st, to, *amount)
        }
        Call::Withdraw { btc_script, amount } => {
            ensure(*amount != 0, FailureCode::ZeroAmount)?;
            let dust = standard_output_dust(btc_script)
                .ok_or(CallError::Fail(FailureCode::NonStandardScript))?;
            ensure(*amount >= dust, FailureCode::BelowDust)?;
            let id = withdrawal_id(&env.from, env.nonce);
            ensure(
                read_withdrawal(st, &id)?.is_none(),
                FailureCode::AlreadyExists,
            )?;
            debit(st, &env.from, *amount)?;
            let withdrawal = Withdrawal {
                from: env.from,
                btc_script: btc_script.clone(),
                amount: *amount,
            };
            st.put(withdrawal_key(&id), Record::Withdrawal(withdrawal).encode());
            Ok(())
        }
        Call::Payroll { payments } => {
            ensure(
                payments.len() <= MAX_PAYROLL_PAYMENTS,
                FailureCode::TooManyPayments,
            )?;
            ensure(!payments.is_empty(), FailureCode::EmptyPayroll)?;
            ensure(
                payments.iter().all(|p| p.amount != 0),
                FailureCode::ZeroAmount,
            )?;
            let total = overflow(
                payments
                    .iter()
                    .try_fold(0u64, |acc, p| acc.checked_add(p.amount)),
            )?;
            debit(st, &env.from, total)?;
            for p in payments {
                credit(st, &p.to, p.amount)?;
            }
            Ok(())
        }
        Call::StreamOpen {
            worker,
            rate_per_sec,
            start,
            duration_secs,
            cancelable,
        } => {
            ensure(*worker != env.from, FailureCode::InvalidParticipant)?;
            ensure(
                *rate_per_sec != 0 && *duration_secs != 0,
                FailureCode::ZeroAmount,
            )?;
            let deposit = overflow(rate_per_sec.checked_mul(*duration_secs))?;
            let id = stream_id(&env.from, env.nonce);
            ensure(read_stream(st, &id)?.is_none(), FailureCode::AlreadyExists)?;
            debit(st, &env.from, deposit)?;
            let stream = Stream {
                employer: env.from,
                worker: *worker,
                rate_per_sec: *rate_per_sec,
                start: *start,
                funded_secs: *duration_secs,
                cancelable: *cancelable,
                status: StreamStatus::Active,
                banked_secs: 0,
                resumed_at: *start,
                withdrawn: 0,
            };
            write_stream(st, &id, stream);
            Ok(())
        }
        Call::StreamWithdraw { id } => {
            let mut s = load_stream(st, id)?;
            ensure(env.from == s.worker, FailureCode::Unauthorized)?;
            ensure(s.status != StreamStatus::Canceled, FailureCode::WrongStatus)?;
            let owed = overflow(s.withdrawable(env.now))?;
            ensure(owed != 0, FailureCode::NothingToWithdraw)?;
            s.withdrawn = overflow(s.withdrawn.checked_add(owed))?;
            let worker = s.worker;
            write_stream(st, id, s);
            credit(st, &worker, owed)
        }
        Call::StreamTopUp { id, extra_secs } => {
            let mut s = load_stream(st, id)?;
            ensure(s.status != StreamStatus::Canceled, FailureCode::WrongStatus)?;
            ensure(*extra_secs != 0, FailureCode::ZeroAmount)?;
            let cost = overflow(s.rate_per_sec.checked_mul(*extra_secs))?;
            let funded = overflow(s.funded_secs.checked_add(*extra_secs))?;
            // The whole escrow must stay representable.
            overflow(s.rate_per_sec.checked_mul(funded))?;
            bank(&mut s, env.now);
            s.funded_secs = funded;
            write_stream(st, id, s);
            debit(st, &env.from, cost)
        }
        Call::StreamPause { id } => {
            let mut s = load_stream(st, id)?;
            ensure(env.from == s.employer, FailureCode::Unauthorized)?;
            ensure(s.status != StreamStatus::Canceled, FailureCode::WrongStatus)?;
            ensure(s.status != StreamStatus::Paused, FailureCode::StreamPaused)?;
            bank(&mut s, env.now);
            s.status = StreamStatus::Paused;
            write_stream(st, id, s);
            Ok(())
        }
        Call::StreamResume { id } => {
            let mut s = load_stream(st, id)?;
            ensure(env.from == s.employer, FailureCode::Unauthorized)?;
            ensure(s.status != StreamStatus::Canceled, FailureCode::WrongStatus)?;
            ensure(
                s.status == StreamStatus::Paused,
                FailureCode::StreamNotPaused,
            )?;
            s.status = StreamStatus::Active;
            s.resumed_at = env.now.max(s.start);
            write_stream(st, id, s);
            Ok(())
        }
        Call::StreamCancel { id } => {
            let mut s = load_stream(st, id)?;
            ensure(env.from == s.employer, FailureCode::Unauthorized)?;
            ensure(s.status != StreamStatus::Canceled, FailureCode::WrongStatus)?;
            ensure(s.cancelable, FailureCode::NotCancelable)?;
            let escrow = overflow(s.escrow())?;
            let accrued_secs = s.accrued_secs(env.now);
            let accrued = overflow(s.rate_per_sec.checked_mul(accrued_secs))?;
            let to_worker = overflow(accrued.checked_sub(s.withdrawn))?;
            let to_employer = overflow(escrow.checked_sub(to_worker))?;
            s.status = StreamStatus::Canceled;
            s.banked_secs = accrued_secs;
            s.funded_secs = accrued_secs;
            s.withdrawn = accrued;
            let (worker, employer) = (s.worker, s.employer);
            write_stream(st, id, s);
            credit(st, &worker, to_worker)?;
            credit(st, &employer, to_employer)
        }
        Call::TaskCreate {
            worker,
            arbiter,
            spec_hash,
            milestones,
            deadline,
            review_secs,
        } => {
            ensure(!milestones.is_empty(), FailureCode::NoMilestones)?;
            ensure(
                milestones.len() <= MAX_MILESTONES,
                FailureCode::TooManyMilestones,
            )?;
            ensure(milestones.iter().all(|m| *m != 0), FailureCode::ZeroAmount)?;
            let participants_ok = *worker != Some(env.from)
                && *arbiter != Some(env.from)
                && (worker.is_none() || worker != arbiter);
            ensure(participants_ok, FailureCode::InvalidParticipant)?;
            ensure(*deadline > env.now, FailureCode::DeadlinePassed)?;
            let total = overflow(
                milestones
                    .iter()
                    .try_fold(0u64, |acc, m| acc.checked_add(*m)),
            )?;
            let id = task_id(&env.from, env.nonce);
            ensure(read_task(st, &id)?.is_none(), FailureCode::AlreadyExists)?;
            debit(st, &env.from, total)?;
            let task = Task {
                employer: env.from,
                worker: *worker,
                arbiter: *arbiter,
                spec_hash: *spec_hash,
                milestones: milestones
                    .iter()
                    .map(|amount| Milestone {
                        amount: *amount,
                        status: MilestoneStatus::Pending,
                    })
                    .collect(),
                deadline: *deadline,
                review_secs: *review_secs,
                created_at: env.now,
                status: TaskStatus::Open,
                escrow: total,
                dispute: None,
                resolution: None,
            };
            write_task(st, &id, task);
            Ok(())
        }
        Call::TaskAccept { id } => {
            let mut t = load_task(st, id)?;
            let allowed = match t.worker {
                Some(worker) => worker == env.from,
                None => env.from != t.employer && t.arbiter != Some(env.from),
            };
            ensure(allowed, FailureCode::Unauthorized)?;
            ensure(t.status == TaskStatus::Open, FailureCode::WrongStatus)?;
            ensure(env.now <= t.deadline, FailureCode::DeadlinePassed)?;
            t.worker = Some(env.from);
            t.status = TaskStatus::Active;
            write_task(st, id, t);
            Ok(())
        }
        Call::TaskSubmit {
            id,
            milestone,
            deliverable_hash,
        } => {
            let mut t = load_task(st, id)?;
            ensure(t.worker == Some(env.from), FailureCode::Unauthorized)?;
            ensure(t.status == TaskStatus::Active, FailureCode::WrongStatus)?;
            let now = env.now;
            let deadline = t.deadline;
            let m = milestone_mut(&mut t, *milestone)?;
            ensure(
                m.status == MilestoneStatus::Pending,
                FailureCode::MilestoneNotPending,
            )?;
            ensure(now <= deadline, FailureCode::DeadlinePassed)?;
            m.status = MilestoneStatus::Submitted {
                at: now,
                deliverable_hash: *deliverable_hash,
            };
            write_task(st, id, t);
            Ok(())
        }
        Call::TaskApprove { id, milestone } => {
            let mut t = load_task(st, id)?;
            ensure(env.from == t.employer, FailureCode::Unauthorized)?;
            ensure(t.status == TaskStatus::Active, FailureCode::WrongStatus)?;
            let m = milestone_mut(&mut t, *milestone)?;
            ensure(
                matches!(m.status, MilestoneStatus::Submitted { .. }),
                FailureCode::MilestoneNotSubmitted,
            )?;
            pay_milestone(st, id, t, *milestone)
        }
        Call::TaskClaim { id, milestone } => {
            let mut t = load_task(st, id)?;
            ensure(t.worker == Some(env.from), FailureCode::Unauthorized)?;
            ensure(t.status == TaskStatus::Active, FailureCode::WrongStatus)?;
            let review_secs = t.review_secs;
            let m = milestone_mut(&mut t, *milestone)?;
            let MilestoneStatus::Submitted { at, .. } = m.status else {
                return Err(FailureCode::MilestoneNotSubmitted.into());
            };
            let claimable_at = overflow(at.checked_add(review_secs))?;
            ensure(env.now >= claimable_at, FailureCode::ReviewPeriodNotOver)?;
            pay_milestone(st, id, t, *milestone)
        }
        Call::TaskDispute { id, reason_hash } => {
            let mut t = load_task(st, id)?;
            ensure(
                env.from == t.employer || t.worker == Some(env.from),
                FailureCode::Unauthorized,
            )?;
            ensure(t.status == TaskStatus::Active, FailureCode::WrongStatus)?;
            ensure(t.arbiter.is_some(), FailureCode::NoArbiter)?;
            t.status = TaskStatus::Disputed;
            t.dispute = Some(crate::records::Dispute {
                by: env.from,
                reason_hash: *reason_hash,
                at: env.now,
            });
            write_task(st, id, t);
            Ok(())
        }
        Call::TaskResolve {
            id,
            worker_share_bps,
        } => {
            let mut t = load_task(st, id)?;
            ensure(t.arbiter == Some(env.from), FailureCode::Unauthorized)?;
            ensure(t.status == TaskStatus::Disputed, FailureCode::WrongStatus)?;
            ensure(
                *worker_share_bps <= BPS_DENOMINATOR,
                FailureCode::InvalidShare,
            )?;
            let worker = t.worker.ok_or(CallError::Fail(FailureCode::WrongStatus))?;
            let (to_worker, to_employer) = split_bps(t.escrow, *worker_share_bps)?;
            for m in &mut t.milestones {
                if matches!(
                    m.status,
                    MilestoneStatus::Pending | MilestoneStatus::Submitted { .. }
                ) {
                    m.status = MilestoneStatus::Resolved;
                }
            }
            t.escrow = 0;
            t.status = TaskStatus::Resolved;
            t.resolution = Some(Resolution {
                worker_share_bps: *worker_share_bps,
                to_worker,
                to_employer,
                at: env.now,
            });
            let employer = t.employer;
            write_task(st, id, t);
            credit(st, &worker, to_worker)?;
            credit(st, &employer, to_employer)
        }
        Call::TaskCancel { id } => {
            let mut t = load_task(st, id)?;
            ensure(env.from == t.employer, FailureCode::Unauthorized)?;
            let refund = match t.status {
                TaskStatus::Open => {
                    for m in &mut t.milestones {
                        m.status = MilestoneStatus::Refunded;
                    }
                    let refund = t.escrow;
                    t.escrow = 0;
                    t.status = TaskStatus::Canceled;
                    refund
                }
                TaskStatus::Active => {
                    ensure(env.now > t.deadline, FailureCode::DeadlineNotPassed)?;
                    let mut refund = 0u64;
                    for m in &mut t.milestones {
                        if m.status == MilestoneStatus::Pending {
                            refund = overflow(refund.checked_add(m.amount))?;
                            m.status = MilestoneStatus::Refunded;
                        }
                    }
                    ensure(refund != 0, FailureCode::NothingToRefund)?;
                    t.escrow = overflow(t.escrow.checked_sub(refund))?;
                    settle_status(&mut t);
                    refund
                }
                _ => return Err(FailureCode::WrongStatus.into()),
            };
            let employer = t.employer;
            write_task(st, id, t);
            credit(st, &employer, refund)
        }
    }
}

/// Bank the active seconds so far, restarting the current run at `now` (never before `start`).
/// Accrual beyond the funded seconds is lost here, so a later top-up never pays for a gap.
fn bank(s: &mut Stream, now: u64) {
    if s.status == StreamStatus::Active {
        s.banked_secs = s.accrued_secs(now);
        s.resumed_at = now.max(s.start);
    }
}

fn milestone_mut(t: &mut Task, index: u32) -> CallResult<&mut Milestone> {
    usize::try_from(index)
        .ok()
        .and_then(|i| t.milestones.get_mut(i))
        .ok_or(CallError::Fail(FailureCode::MilestoneOutOfRange))
}

/// Pay milestone `index` (known to be submitted) to the worker and store the task.
fn pay_milestone<V: StateView>(
    st: &mut Overlay<V>,
    id: &TaskId,
    mut t: Task,
    index: u32,
) -> CallResult {
    let worker = t.worker.ok_or(CallError::Fail(FailureCode::WrongStatus))?;
    let m = milestone_mut(&mut t, index)?;
    m.status = MilestoneStatus::Paid;
    let amount = m.amount;
    t.escrow = overflow(t.escrow.checked_sub(amount))?;
    settle_status(&mut t);
    write_task(st, id, t);
    credit(st, &worker, amount)
}

/// Once no milestone is pending or submitted, the task is terminal: `Completed` if all were
/// paid, else `Canceled`.
fn settle_status(t: &mut Task) {
    let open = t.milestones.iter().any(|m| {
        matches!(
            m.status,
            MilestoneStatus::Pending | MilestoneStatus::Submitted { .. }
        )
    });
    if !open {
        let all_paid = t
            .milestones
            .iter()
            .all(|m| m.status == MilestoneStatus::Paid);
        t.status = if all_paid {
            TaskStatus::Completed
        } else {
            TaskStatus::Canceled
        };
    }
}

/// Split `escrow`: the worker gets `floor(escrow × bps / 10,000)`, the employer the rest, so
/// the two always add up to `escrow` exactly.
pub(crate) fn split_bps(escrow: u64, bps: u16) -> CallResult<(u64, u64)> {
    let scaled = u128::from(escrow)
        .checked_mul(u128::from(bps))
        .and_then(|v| v.checked_div(u128::from(BPS_DENOMINATOR)));
    let to_worker = overflow(scaled.and_then(|v| u64::try_from(v).ok()))?;
    let to_employer = overflow(escrow.checked_sub(to_worker))?;
    Ok((to_worker, to_employer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_conserves_value_and_rounds_down_for_worker() {
        for escrow in [0u64, 1, 3, 9_999, 10_001, u64::MAX] {
            for bps in [0u16, 1, 3_333, 5_000, 9_999, 10_000] {
                let (w, e) = match split_bps(escrow, bps) {
                    Ok(v) => v,
                    Err(_) => panic!("split failed"),
                };
                assert_eq!(u128::from(w) + u128::from(e), u128::from(escrow));
                assert_eq!(u128::from(w), u128::from(escrow) * u128::from(bps) / 10_000);
            }
        }
    }
}
