//! Checks a wallet command makes before it signs, against the task or stream as the node has it
//! at its soft head: each mistake the contracts would punish with a failed tx (and a fee) is
//! refused here instead, with what to do about it.

use serde_json::Value;

use crate::error::CliError;
use crate::time;

/// What a task command is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskAction {
    Accept,
    Submit(u32),
    Approve(u32),
    Claim(u32),
    Dispute,
    Resolve,
    Cancel,
}

impl TaskAction {
    fn verb(self) -> String {
        match self {
            TaskAction::Accept => "accept".into(),
            TaskAction::Submit(m) => format!("submit milestone {m} of"),
            TaskAction::Approve(m) => format!("approve milestone {m} of"),
            TaskAction::Claim(m) => format!("claim milestone {m} of"),
            TaskAction::Dispute => "dispute".into(),
            TaskAction::Resolve => "resolve".into(),
            TaskAction::Cancel => "cancel".into(),
        }
    }
}

fn text<'a>(record: &'a Value, field: &str) -> &'a str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Refuses `action` on `task` (the `stint_getTask` JSON) when the contracts would fail it.
pub(crate) fn check_task(
    id: &str,
    task: &Value,
    action: TaskAction,
    now: u64,
) -> Result<(), CliError> {
    let refuse =
        |why: String| CliError::Usage(format!("cannot {} task {id}: {why}", action.verb()));
    let status = text(task, "status");
    let needed: &[&str] = match action {
        TaskAction::Accept => &["open"],
        TaskAction::Resolve => &["disputed"],
        TaskAction::Cancel => &["open", "active"],
        _ => &["active"],
    };
    if !needed.contains(&status) {
        let hint = match (status, action) {
            ("open", _) => "the worker accepts it first (`stint task accept`)",
            ("disputed", _) => "it is frozen until the arbiter resolves it (`stint task resolve`)",
            ("active", TaskAction::Resolve) => "nobody disputed it (`stint task dispute`)",
            ("active", TaskAction::Accept) => "it was accepted already",
            _ => "it is settled: nothing more can happen to it",
        };
        return Err(refuse(format!(
            "it is {status}, not {} ({hint})",
            needed.join(" or ")
        )));
    }
    if action == TaskAction::Dispute && task.get("arbiter").is_none_or(Value::is_null) {
        return Err(refuse("it has no arbiter to settle a dispute".into()));
    }
    let index = match action {
        TaskAction::Submit(m) | TaskAction::Approve(m) | TaskAction::Claim(m) => m,
        _ => return Ok(()),
    };
    let milestones = task
        .get("milestones")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(milestone) = milestones.get(index as usize) else {
        return Err(refuse(format!(
            "it has {} milestone{} (--milestone 0{}); there is no milestone {index}",
            milestones.len(),
            if milestones.len() == 1 { "" } else { "s" },
            match milestones.len() {
                0 | 1 => String::new(),
                n => format!(" to {}", n - 1),
            }
        )));
    };
    let state = milestone
        .get("status")
        .map(|s| text(s, "state"))
        .unwrap_or("");
    match (action, state) {
        (TaskAction::Submit(_), "pending") => Ok(()),
        (TaskAction::Submit(_), other) => Err(refuse(format!(
            "it is {other}, not pending (each milestone is submitted once)"
        ))),
        (_, "submitted") => {
            let at = milestone
                .get("status")
                .and_then(|s| s.get("at"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let review = task.get("reviewSecs").and_then(Value::as_u64).unwrap_or(0);
            let claimable = at.saturating_add(review);
            if matches!(action, TaskAction::Claim(_)) && claimable > now {
                return Err(refuse(format!(
                    "its review period ends at {}; until then the employer approves it",
                    time::describe(claimable, now)
                )));
            }
            Ok(())
        }
        (_, "pending") => Err(refuse(
            "it is pending, not submitted (the worker submits it first with `stint task submit`)"
                .into(),
        )),
        (_, other) => Err(refuse(format!("it is {other} already"))),
    }
}

/// What a stream command is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamAction {
    Withdraw,
    Topup,
    Pause,
    Resume,
    Cancel,
}

/// Refuses `action` on `stream` (the `stint_getStream` JSON) when the contracts would fail it.
pub(crate) fn check_stream(id: &str, stream: &Value, action: StreamAction) -> Result<(), CliError> {
    let verb = format!("{action:?}").to_lowercase();
    let refuse = |why: &str| CliError::Usage(format!("cannot {verb} stream {id}: {why}"));
    let status = text(stream, "status");
    if status == "canceled" {
        return Err(refuse("it was canceled (everything is settled)"));
    }
    match action {
        StreamAction::Withdraw if stream.get("withdrawable").and_then(Value::as_u64) == Some(0) => {
            Err(refuse("nothing has accrued since the last withdrawal"))
        }
        StreamAction::Pause if status == "paused" => Err(refuse("it is paused already")),
        StreamAction::Resume if status != "paused" => Err(refuse("it is not paused")),
        StreamAction::Cancel if stream.get("cancelable") == Some(&Value::Bool(false)) => {
            Err(refuse("it was opened with --not-cancelable"))
        }
        _ => Ok(()),
    }
}

/// Refuses a zero amount of `flag`.
pub(crate) fn positive(flag: &str, amount: u64, what: &str) -> Result<(), CliError> {
    if amount == 0 {
        return Err(CliError::Usage(format!(
            "{flag} must be positive: {what} of 0 would only pay the fee"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(status: &str, milestones: Value) -> Value {
        json!({"status": status, "arbiter": "stint1x", "reviewSecs": 100, "milestones": milestones})
    }

    #[test]
    fn milestone_state_and_range_are_checked() {
        let t = task(
            "active",
            json!([{"amount": 300, "status": {"state": "pending"}},
                   {"amount": 700, "status": {"state": "submitted", "at": 1_000, "deliverableHash": "00"}}]),
        );
        let err = |action| check_task("T", &t, action, 1_050).unwrap_err().to_string();
        assert!(err(TaskAction::Approve(0)).contains("pending, not submitted"));
        assert!(err(TaskAction::Approve(5))
            .contains("2 milestones (--milestone 0 to 1); there is no milestone 5"));
        assert!(err(TaskAction::Submit(1)).contains("submitted, not pending"));
        assert!(err(TaskAction::Claim(1)).contains("review period ends at"));
        assert!(err(TaskAction::Resolve).contains("nobody disputed it"));
        check_task("T", &t, TaskAction::Approve(1), 1_050).unwrap();
        check_task("T", &t, TaskAction::Claim(1), 1_100).unwrap();
        check_task("T", &t, TaskAction::Submit(0), 1_050).unwrap();
        let open = task("open", json!([]));
        assert!(check_task("T", &open, TaskAction::Approve(0), 0)
            .unwrap_err()
            .to_string()
            .contains("the worker accepts it first"));
        let resolved = task("resolved", json!([]));
        assert!(check_task("T", &resolved, TaskAction::Dispute, 0)
            .unwrap_err()
            .to_string()
            .contains("settled"));
    }

    #[test]
    fn stream_states_are_checked() {
        let s = json!({"status": "paused", "withdrawable": 0, "cancelable": false});
        let err = |a| check_stream("S", &s, a).unwrap_err().to_string();
        assert!(err(StreamAction::Withdraw).contains("nothing has accrued"));
        assert!(err(StreamAction::Pause).contains("paused already"));
        assert!(err(StreamAction::Cancel).contains("--not-cancelable"));
        check_stream("S", &s, StreamAction::Resume).unwrap();
        assert!(positive("--amount", 0, "a transfer")
            .unwrap_err()
            .to_string()
            .contains("only pay the fee"));
    }
}
