//! How the read commands print a task, a stream and an account for people: one aligned
//! `name  value` row each, times in RFC 3339 with how far away they are, amounts in units, roles
//! by name. `--json` and `--field` print the node's JSON instead.

use stint_api::{AccountInfo, StreamInfo, TaskInfo};
use stint_contracts::{AccountId, MilestoneStatus, StreamStatus, TaskStatus};

use crate::time;

/// Rows as aligned text; a value with several lines is indented under the first.
fn rows(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(name, value)| {
            let indent = " ".repeat(width + 2);
            let value = value.replace('\n', &format!("\n{indent}"));
            format!("{name:<width$}  {value}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `1 unit`, `1,200 units`.
pub(crate) fn units(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped} unit{}", if n == 1 { "" } else { "s" })
}

/// `1 h`, `90 s`: a duration as its largest whole unit, exact below a minute.
fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3_599 if secs % 60 == 0 => format!("{} min", secs / 60),
        3_600..=u64::MAX if secs % 3_600 == 0 => format!("{} h", secs / 3_600),
        _ => format!("{secs} s"),
    }
}

fn read_at(at: u64, state_root: &impl std::fmt::Display) -> String {
    let root = state_root.to_string();
    let root = root.get(..12).unwrap_or(&root).to_owned();
    if at == 0 {
        format!("batch 0, the genesis: no batch sealed yet (state root {root}…)")
    } else {
        format!("batch {at} (state root {root}…)")
    }
}

fn status_name<T: serde::Serialize>(status: &T) -> String {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "?".into(),
    }
}

/// A task: who, how much, when, each milestone's state, the dispute and the arbiter's split.
pub(crate) fn task(info: &TaskInfo, now: u64) -> String {
    let t = &info.task;
    let who = |id: &AccountId| {
        if *id == t.employer {
            "the employer"
        } else if Some(*id) == t.worker {
            "the worker"
        } else {
            "the arbiter"
        }
    };
    let mut out = vec![
        ("task", info.id.to_string()),
        ("status", status_name(&t.status)),
        ("employer", t.employer.to_string()),
        (
            "worker",
            t.worker.map_or(
                "none yet (an open task: anyone may accept it)".into(),
                |w| w.to_string(),
            ),
        ),
        (
            "arbiter",
            t.arbiter
                .map_or("none (no dispute possible)".into(), |a| a.to_string()),
        ),
        ("escrow", units(t.escrow)),
        ("created", time::describe(t.created_at, now)),
        ("deadline", time::describe(t.deadline, now)),
        (
            "review",
            format!("{} after each submission", duration(t.review_secs)),
        ),
    ];
    let milestones = t
        .milestones
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let state = match m.status {
                MilestoneStatus::Pending if t.status == TaskStatus::Canceled => {
                    "pending".to_owned()
                }
                MilestoneStatus::Pending => "pending (not submitted)".to_owned(),
                MilestoneStatus::Submitted { at, .. } => {
                    let claimable = at.saturating_add(t.review_secs);
                    if t.status == TaskStatus::Disputed {
                        format!(
                            "submitted {}; frozen by the dispute",
                            time::describe(at, now)
                        )
                    } else {
                        format!(
                            "submitted {}; the worker may claim it from {}",
                            time::describe(at, now),
                            time::describe(claimable, now)
                        )
                    }
                }
                MilestoneStatus::Paid => "paid to the worker".to_owned(),
                MilestoneStatus::Refunded => "refunded to the employer".to_owned(),
                MilestoneStatus::Resolved => "settled by the arbiter's split".to_owned(),
            };
            format!("{i}: {:<14} {state}", units(m.amount))
        })
        .collect::<Vec<_>>()
        .join("\n");
    out.push(("milestones", milestones));
    if let Some(dispute) = &t.dispute {
        out.push((
            "dispute",
            format!(
                "raised by {} {}",
                who(&dispute.by),
                time::describe(dispute.at, now)
            ),
        ));
    }
    if let Some(r) = &t.resolution {
        out.push((
            "resolution",
            format!(
                "the arbiter gave the worker {}.{:02} % ({}) and the employer {} back, {}",
                r.worker_share_bps / 100,
                r.worker_share_bps % 100,
                units(r.to_worker),
                units(r.to_employer),
                time::describe(r.at, now)
            ),
        ));
    }
    out.push(("read at", read_at(info.at, &info.state_root)));
    rows(&out)
}

/// A stream: rate, funding, what accrued, was withdrawn and is withdrawable, and when it runs
/// dry.
pub(crate) fn stream(info: &StreamInfo, now: u64) -> String {
    let s = &info.stream;
    let funded_units = s.rate_per_sec.saturating_mul(s.funded_secs);
    let accrued_secs = s.accrued_secs(info.as_of);
    let mut out = vec![
        ("stream", info.id.to_string()),
        ("status", status_name(&s.status)),
        ("employer", s.employer.to_string()),
        ("worker", s.worker.to_string()),
        ("rate", format!("{}/s", units(s.rate_per_sec))),
        ("start", time::describe(s.start, now)),
        (
            "funded",
            format!("{} ({})", duration(s.funded_secs), units(funded_units)),
        ),
        (
            "accrued",
            format!(
                "{} ({}) by {}",
                duration(accrued_secs),
                units(s.rate_per_sec.saturating_mul(accrued_secs)),
                time::describe(info.as_of, now)
            ),
        ),
        ("withdrawn", units(s.withdrawn)),
        ("withdrawable", units(info.withdrawable)),
        ("escrow", units(s.escrow().unwrap_or(0))),
        (
            "cancelable",
            if s.cancelable {
                "yes (the employer may cancel: the worker keeps what accrued)".into()
            } else {
                "no".into()
            },
        ),
    ];
    match s.status {
        StreamStatus::Active => {
            let left = s.funded_secs.saturating_sub(accrued_secs);
            out.push((
                "runs dry",
                time::describe(info.as_of.saturating_add(left), now),
            ));
        }
        StreamStatus::Paused => out.push(("runs dry", "never while paused".into())),
        StreamStatus::Canceled => {}
    }
    out.push(("read at", read_at(info.at, &info.state_root)));
    rows(&out)
}

/// An account: balance, nonces, and which state it was read from.
pub(crate) fn account(info: &AccountInfo) -> String {
    let nonce = if info.pending_nonce == info.nonce {
        info.nonce.to_string()
    } else {
        format!(
            "{} ({} after this node's {} pending tx{})",
            info.nonce,
            info.pending_nonce,
            info.pending_nonce.saturating_sub(info.nonce),
            if info.pending_nonce.saturating_sub(info.nonce) == 1 {
                ""
            } else {
                "s"
            }
        )
    };
    rows(&[
        ("address", info.address.clone()),
        ("balance", units(info.balance)),
        ("nonce", nonce),
        ("read at", read_at(info.at, &info.state_root)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use stint_api::Hex32;
    use stint_contracts::{Dispute, Milestone, Resolution, Stream, Task};

    const NOW: u64 = 1_800_000_000;

    fn id(byte: u8) -> AccountId {
        AccountId([byte; 32])
    }

    #[test]
    fn units_group_thousands_and_say_unit_once() {
        assert_eq!(units(0), "0 units");
        assert_eq!(units(1), "1 unit");
        assert_eq!(units(999), "999 units");
        assert_eq!(units(1_200), "1,200 units");
        assert_eq!(units(1_000_000), "1,000,000 units");
        assert_eq!(duration(3_600), "1 h");
        assert_eq!(duration(600), "10 min");
        assert_eq!(duration(61), "61 s");
    }

    #[test]
    fn a_resolved_task_shows_its_split_and_settled_milestones() {
        let (employer, worker, arbiter) = (id(1), id(2), id(3));
        let info = TaskInfo {
            id: Hex32([7; 32]),
            task: Task {
                employer,
                worker: Some(worker),
                arbiter: Some(arbiter),
                spec_hash: [0; 32],
                milestones: vec![
                    Milestone {
                        amount: 300,
                        status: MilestoneStatus::Paid,
                    },
                    Milestone {
                        amount: 700,
                        status: MilestoneStatus::Resolved,
                    },
                ],
                deadline: NOW + 7_200,
                review_secs: 3_600,
                created_at: NOW - 300,
                status: TaskStatus::Resolved,
                escrow: 0,
                dispute: Some(Dispute {
                    by: employer,
                    reason_hash: [1; 32],
                    at: NOW - 60,
                }),
                resolution: Some(Resolution {
                    worker_share_bps: 5_000,
                    to_worker: 350,
                    to_employer: 350,
                    at: NOW,
                }),
            },
            at: 17,
            state_root: Hex32([0xab; 32]),
            proof: None,
        };
        let text = task(&info, NOW);
        for line in [
            "status      resolved",
            "escrow      0 units",
            "deadline    2027-01-15T10:00:00Z (in 2 h)",
            "review      1 h after each submission",
            "milestones  0: 300 units      paid to the worker",
            "            1: 700 units      settled by the arbiter's split",
            "dispute     raised by the employer 2027-01-15T07:59:00Z (1 min ago)",
            "resolution  the arbiter gave the worker 50.00 % (350 units) and the employer 350 \
             units back, 2027-01-15T08:00:00Z (now)",
            "read at     batch 17 (state root abababababab…)",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("submitted"), "{text}");
    }

    #[test]
    fn a_stream_shows_amounts_and_when_it_runs_dry() {
        let info = StreamInfo {
            id: Hex32([9; 32]),
            stream: Stream {
                employer: id(1),
                worker: id(2),
                rate_per_sec: 2,
                start: NOW - 100,
                funded_secs: 600,
                cancelable: true,
                status: StreamStatus::Active,
                banked_secs: 0,
                resumed_at: NOW - 100,
                withdrawn: 50,
            },
            withdrawable: 150,
            as_of: NOW,
            at: 0,
            state_root: Hex32([0xcd; 32]),
            proof: None,
        };
        let text = stream(&info, NOW);
        for line in [
            "rate          2 units/s",
            "funded        10 min (1,200 units)",
            "accrued       100 s (200 units) by",
            "withdrawn     50 units",
            "withdrawable  150 units",
            "escrow        1,150 units",
            "runs dry      2027-01-15T08:08:20Z (in 8 min)",
            "read at       batch 0, the genesis: no batch sealed yet",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn an_account_explains_its_nonces_and_the_batch_it_was_read_at() {
        let mut info = AccountInfo {
            address: id(1).to_string(),
            balance: 998_990,
            nonce: 1,
            pending_nonce: 3,
            at: 0,
            state_root: Hex32([0x11; 32]),
            proof: None,
        };
        let text = account(&info);
        assert!(text.contains("balance  998,990 units"), "{text}");
        assert!(
            text.contains("nonce    1 (3 after this node's 2 pending txs)"),
            "{text}"
        );
        assert!(text.contains("the genesis: no batch sealed yet"), "{text}");
        info.pending_nonce = 1;
        info.at = 4;
        let text = account(&info);
        assert!(text.contains("nonce    1\n"), "{text}");
        assert!(text.contains("read at  batch 4 (state root 111111111111…)"));
    }
}
