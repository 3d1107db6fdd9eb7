//! `stint status`: the network at a glance, for people (a table) and for monitoring (`--json`,
//! `--field`, and an exit code that says what is wrong).
//!
//! The report is gathered from the sequencer and the verifier ([`gather`]), judged by a pure
//! function ([`assess`]) and rendered ([`table`], [`Report::output`]), so the rules are tested
//! without nodes.

use serde_json::{json, Value};
use stint_api::{BatchInfo, BatchRef, Head, L1Ref, NOT_FOUND};

use crate::error::CliError;
use crate::time;
use crate::wallet::plain;
use crate::RpcClient;

/// Exit code when the verifier disagrees with the sequencer, has found fraud in an anchored
/// batch, or could not post a challenge it should.
pub const EXIT_VERIFIER_DISAGREES: u8 = 2;
/// Exit code when the verifier cannot be reached.
pub const EXIT_VERIFIER_UNREACHABLE: u8 = 3;
/// Exit code when anchoring stalls: a sealed batch has waited longer than `--stall-secs` for
/// its Bitcoin block.
pub const EXIT_ANCHORING_STALLED: u8 = 4;
/// Default of `--stall-secs`: ten minutes suits a devnet or regtest (a block every few
/// seconds); on mainnet, where a block takes ten minutes on average, use about an hour.
pub const DEFAULT_STALL_SECS: u64 = 600;

/// A head with what the table shows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadView {
    pub(crate) head: Head,
    /// The batch's timestamp (`None` for the genesis).
    pub(crate) timestamp: Option<u64>,
    /// The height of its anchoring Bitcoin block, once anchored.
    pub(crate) anchor_height: Option<u64>,
}

/// What the verifier said, or why it could not be asked.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per `stint status` run; boxing buys nothing"
)]
pub(crate) enum VerifierView {
    Unreachable {
        url: String,
        reason: String,
    },
    Reached {
        url: String,
        /// Its newest verified batch.
        verified: Head,
        /// The sequencer's batch with the same number (`None`: the sequencer has none).
        ours: Option<Head>,
        challenges: Vec<Value>,
        pending_fraud: Option<Value>,
        alerts: Vec<Value>,
    },
}

/// Everything `stint status` knows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub(crate) chain_id: u64,
    pub(crate) dispute_window: u64,
    pub(crate) l1: Option<L1Ref>,
    pub(crate) soft: HeadView,
    pub(crate) anchored: HeadView,
    pub(crate) final_: HeadView,
    /// The oldest sealed batch not anchored yet: its number and timestamp.
    pub(crate) oldest_unanchored: Option<(u64, u64)>,
    pub(crate) verifier: VerifierView,
}

/// One thing wrong, with the exit code it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) code: u8,
    pub(crate) what: String,
}

/// The verdict on a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    /// Worst first.
    pub(crate) problems: Vec<Problem>,
    /// Whether the verifier agrees (`None`: it could not be compared).
    pub(crate) agrees: Option<bool>,
    /// Why it agrees or not, in words.
    pub(crate) why: String,
}

impl Health {
    /// The exit code: the worst problem's, 0 when there is none.
    pub(crate) fn exit_code(&self) -> u8 {
        self.problems.first().map_or(0, |p| p.code)
    }
}

/// Reads everything from the sequencer (`client`) and the verifier at `verifier_url`.
pub(crate) async fn gather(client: &RpcClient, verifier_url: &str) -> Result<Report, CliError> {
    let api = client.api();
    let info = api.chain_info().await?;
    let sync = api.sync_status().await?;
    let soft = head_view(client, sync.soft).await?;
    let anchored = head_view(client, sync.anchored).await?;
    let final_ = head_view(client, sync.final_).await?;
    let oldest_unanchored = if sync.soft.number > sync.anchored.number {
        let next = sync.anchored.number.saturating_add(1);
        batch(client, next).await?.map(|b| (b.number, b.timestamp))
    } else {
        None
    };
    let verifier = verifier_view(client, verifier_url).await?;
    Ok(Report {
        chain_id: info.chain_id,
        dispute_window: info.dispute_window,
        l1: sync.l1,
        soft,
        anchored,
        final_,
        oldest_unanchored,
        verifier,
    })
}

async fn batch(client: &RpcClient, number: u64) -> Result<Option<BatchInfo>, CliError> {
    match client.api().batch(BatchRef::Number(number)).await {
        Ok(batch) => Ok(Some(batch)),
        Err(e) if e.code() == Some(NOT_FOUND) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn head_view(client: &RpcClient, head: Head) -> Result<HeadView, CliError> {
    if head.number == 0 {
        return Ok(HeadView {
            head,
            timestamp: None,
            anchor_height: None,
        });
    }
    let found = batch(client, head.number).await?;
    Ok(HeadView {
        head,
        timestamp: found.as_ref().map(|b| b.timestamp),
        anchor_height: found.and_then(|b| b.anchor).map(|a| a.height),
    })
}

async fn verifier_view(client: &RpcClient, url: &str) -> Result<VerifierView, CliError> {
    let unreachable = |reason: String| VerifierView::Unreachable {
        url: url.to_owned(),
        reason,
    };
    let verifier = match RpcClient::new(url) {
        Ok(verifier) => verifier,
        Err(e) => return Ok(unreachable(e.to_string())),
    };
    let status: Value = match verifier.call("stint_verifierStatus", json!([])).await {
        Ok(status) => status,
        Err(CliError::Unreachable { reason, .. }) => return Ok(unreachable(reason)),
        Err(e) => return Ok(unreachable(e.to_string())),
    };
    let verified: Head = match status.get("verified").cloned().map(serde_json::from_value) {
        Some(Ok(head)) => head,
        _ => {
            return Err(CliError::Protocol {
                method: "stint_verifierStatus".into(),
                reason: "no `verified` head in the answer".into(),
            })
        }
    };
    let ours = if verified.number == 0 {
        None
    } else {
        batch(client, verified.number).await?.map(|b| Head {
            number: b.number,
            hash: b.hash,
            state_root: b.state_root,
        })
    };
    let list = |name: &str| {
        status
            .get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    Ok(VerifierView::Reached {
        url: url.to_owned(),
        verified,
        ours,
        challenges: list("challenges"),
        pending_fraud: status.get("pendingFraud").filter(|v| !v.is_null()).cloned(),
        alerts: list("alerts"),
    })
}

/// Judges `report` at time `now`: what is wrong, worst first, and whether the verifier agrees.
pub(crate) fn assess(report: &Report, stall_secs: u64, now: u64) -> Health {
    let mut problems = Vec::new();
    let (agrees, why) = match &report.verifier {
        VerifierView::Unreachable { url, reason } => {
            problems.push(Problem {
                code: EXIT_VERIFIER_UNREACHABLE,
                what: format!(
                    "cannot reach the verifier at {url}: {reason} (is it running? set \
                     --verifier-rpc or STINT_VERIFIER_RPC)"
                ),
            });
            (None, "the verifier cannot be reached".to_owned())
        }
        VerifierView::Reached {
            verified,
            ours,
            pending_fraud,
            alerts,
            ..
        } => {
            let mut verdict = match ours {
                _ if verified.number == 0 => (
                    None,
                    "the verifier has verified no batch yet (nothing anchored)".to_owned(),
                ),
                None => (
                    Some(false),
                    format!(
                        "the verifier verified batch {} from Bitcoin; the sequencer has no such \
                         batch",
                        verified.number
                    ),
                ),
                Some(ours) if ours.hash != verified.hash => (
                    Some(false),
                    format!(
                        "batch {}: the verifier's header {} differs from the sequencer's {}",
                        verified.number,
                        short(&verified.hash.to_string()),
                        short(&ours.hash.to_string())
                    ),
                ),
                Some(ours) if ours.state_root != verified.state_root => (
                    Some(false),
                    format!(
                        "batch {}: the verifier's state root {} differs from the sequencer's {}",
                        verified.number,
                        short(&verified.state_root.to_string()),
                        short(&ours.state_root.to_string())
                    ),
                ),
                Some(_) => (
                    Some(true),
                    format!(
                        "same header and state root at batch {}{}",
                        verified.number,
                        match report.anchored.head.number.checked_sub(verified.number) {
                            Some(0) | None => String::new(),
                            Some(behind) => format!(
                                " ({behind} anchored batch{} not verified yet)",
                                plural(behind, "es")
                            ),
                        }
                    ),
                ),
            };
            if verdict.0 == Some(false) {
                problems.push(Problem {
                    code: EXIT_VERIFIER_DISAGREES,
                    what: format!("the verifier disagrees: {}", verdict.1),
                });
            }
            if let Some(fraud) = pending_fraud {
                let batch = fraud.get("batch").cloned().unwrap_or(Value::Null);
                problems.push(Problem {
                    code: EXIT_VERIFIER_DISAGREES,
                    what: format!(
                        "the verifier found fraud in batch {batch} and is challenging it"
                    ),
                });
                verdict = (Some(false), format!("it found fraud in batch {batch}"));
            }
            for alert in alerts {
                let text = |name: &str| {
                    alert
                        .get(name)
                        .map(|v| crate::text::shown(&plain(v)))
                        .unwrap_or_default()
                };
                problems.push(Problem {
                    code: EXIT_VERIFIER_DISAGREES,
                    what: format!(
                        "the verifier cannot challenge batch {} ({} failed: {}); {} blocks of \
                         its window left",
                        text("batch"),
                        text("stage"),
                        text("reason"),
                        text("blocksLeft")
                    ),
                });
            }
            verdict
        }
    };
    if let Some((batch, sealed_at)) = report.oldest_unanchored {
        let waited = now.saturating_sub(sealed_at);
        if waited > stall_secs {
            problems.push(Problem {
                code: EXIT_ANCHORING_STALLED,
                what: format!(
                    "anchoring stalled: batch {batch} was sealed {} and is still not in a \
                     Bitcoin block ({} batch{} waiting; threshold --stall-secs {stall_secs})",
                    time::relative(sealed_at, now),
                    report
                        .soft
                        .head
                        .number
                        .saturating_sub(report.anchored.head.number),
                    plural(
                        report
                            .soft
                            .head
                            .number
                            .saturating_sub(report.anchored.head.number),
                        "es"
                    ),
                ),
            });
        }
    }
    problems.sort_by_key(|p| p.code);
    Health {
        problems,
        agrees,
        why,
    }
}

/// Blocks left in the dispute window of the newest anchored batch (`None`: nothing anchored).
fn window_left(report: &Report) -> Option<u64> {
    let anchored_at = report.anchored.anchor_height?;
    let tip = report.l1.map_or(anchored_at, |l1| l1.height);
    Some(
        anchored_at
            .saturating_add(report.dispute_window)
            .saturating_sub(tip),
    )
}

impl Report {
    /// The report as one JSON object (what `--json` and `--field` see).
    pub(crate) fn output(&self, health: &Health, now: u64) -> serde_json::Map<String, Value> {
        let head = |view: &HeadView| {
            let mut value = json!({
                "number": view.head.number,
                "hash": view.head.hash,
                "stateRoot": view.head.state_root,
            });
            if let Some(ts) = view.timestamp {
                value["timestamp"] = json!(ts);
                value["age_secs"] = json!(now.saturating_sub(ts));
            }
            if let Some(height) = view.anchor_height {
                value["anchor_height"] = json!(height);
            }
            value
        };
        let verifier = match &self.verifier {
            VerifierView::Unreachable { url, reason } => json!({
                "url": url,
                "reachable": false,
                "error": reason,
                "agrees": null,
                "why": health.why,
            }),
            VerifierView::Reached {
                url,
                verified,
                challenges,
                pending_fraud,
                alerts,
                ..
            } => json!({
                "url": url,
                "reachable": true,
                "verified": verified,
                "agrees": health.agrees,
                "why": health.why,
                "behind_anchored": self.anchored.head.number.saturating_sub(verified.number),
                "challenges": challenges,
                "pending_fraud": pending_fraud,
                "alerts": alerts,
            }),
        };
        let mut map = serde_json::Map::new();
        map.insert("chain_id".into(), json!(self.chain_id));
        map.insert("l1".into(), json!(self.l1));
        map.insert("soft".into(), head(&self.soft));
        map.insert("anchored".into(), head(&self.anchored));
        map.insert("final".into(), head(&self.final_));
        map.insert(
            "lags".into(),
            json!({
                "soft_anchored": self.soft.head.number.saturating_sub(self.anchored.head.number),
                "anchored_final": self.anchored.head.number.saturating_sub(self.final_.head.number),
            }),
        );
        map.insert(
            "window_blocks_left".into(),
            match window_left(self) {
                Some(blocks) => json!({"batch": self.anchored.head.number, "blocks": blocks}),
                None => Value::Null,
            },
        );
        map.insert(
            "oldest_unanchored".into(),
            match self.oldest_unanchored {
                Some((batch, ts)) => json!({"batch": batch, "age_secs": now.saturating_sub(ts)}),
                None => Value::Null,
            },
        );
        map.insert("verifier".into(), verifier);
        map.insert(
            "health".into(),
            json!({
                "ok": health.problems.is_empty(),
                "exit_code": health.exit_code(),
                "problems": health.problems.iter().map(|p| p.what.clone()).collect::<Vec<_>>(),
            }),
        );
        map
    }
}

/// The report as a table for people: one row per head, then the verifier and the verdict.
pub(crate) fn table(report: &Report, health: &Health, now: u64) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    rows.push((
        "chain".into(),
        format!(
            "{} (dispute window {} Bitcoin blocks)",
            report.chain_id, report.dispute_window
        ),
    ));
    rows.push((
        "bitcoin".into(),
        match report.l1 {
            Some(l1) => format!("block {} ({})", l1.height, short(&l1.hash.to_string())),
            None => "no block processed yet".into(),
        },
    ));
    let sealed = |view: &HeadView| match view.timestamp {
        Some(ts) => format!("sealed {}", time::relative(ts, now)),
        None => "the genesis".into(),
    };
    rows.push((
        "soft".into(),
        format!(
            "batch {:<6} {}",
            report.soft.head.number,
            sealed(&report.soft)
        ),
    ));
    let soft_lag = report
        .soft
        .head
        .number
        .saturating_sub(report.anchored.head.number);
    let anchored_where = match (report.anchored.anchor_height, report.l1) {
        (Some(at), Some(l1)) => {
            let ago = l1.height.saturating_sub(at);
            format!("in block {at} ({ago} block{} ago)", plural(ago, "s"))
        }
        (Some(at), None) => format!("in block {at}"),
        (None, _) => "nothing anchored yet".into(),
    };
    rows.push((
        "anchored".into(),
        format!(
            "batch {:<6} {anchored_where}; {soft_lag} behind soft",
            report.anchored.head.number
        ),
    ));
    let final_lag = report
        .anchored
        .head
        .number
        .saturating_sub(report.final_.head.number);
    let window = match window_left(report) {
        Some(0) => format!("; batch {} is final now", report.anchored.head.number),
        Some(left) => format!(
            "; batch {} final in {left} block{}",
            report.anchored.head.number,
            plural(left, "s")
        ),
        None => String::new(),
    };
    rows.push((
        "final".into(),
        format!(
            "batch {:<6} {final_lag} behind anchored{window}",
            report.final_.head.number
        ),
    ));
    match &report.verifier {
        VerifierView::Unreachable { url, .. } => {
            rows.push(("verifier".into(), format!("unreachable at {url}")));
        }
        VerifierView::Reached {
            verified,
            challenges,
            ..
        } => {
            let verdict = match health.agrees {
                Some(true) => "agrees",
                Some(false) => "DISAGREES",
                None => "nothing to compare yet",
            };
            rows.push((
                "verifier".into(),
                format!("batch {:<6} {verdict}: {}", verified.number, health.why),
            ));
            rows.push((
                "challenges".into(),
                if challenges.is_empty() {
                    "none".into()
                } else {
                    challenges
                        .iter()
                        .map(|c| {
                            format!(
                                "batch {} {}",
                                plain(c.get("batch").unwrap_or(&Value::Null)),
                                crate::text::shown(&plain(c.get("status").unwrap_or(&Value::Null)))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ));
        }
    }
    rows.push((
        "health".into(),
        if health.problems.is_empty() {
            "ok".into()
        } else {
            health
                .problems
                .iter()
                .map(|p| p.what.clone())
                .collect::<Vec<_>>()
                .join("\n            ")
        },
    ));
    rows.iter()
        .map(|(name, value)| format!("{name:<11} {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `abcdef012345…` (the first 12 hex digits).
fn short(hex: &str) -> String {
    match hex.get(..12) {
        Some(prefix) if hex.len() > 12 => format!("{prefix}…"),
        _ => hex.to_owned(),
    }
}

fn plural(n: u64, suffix: &'static str) -> &'static str {
    if n == 1 {
        ""
    } else {
        suffix
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stint_api::Hex32;

    fn head(number: u64, byte: u8) -> Head {
        Head {
            number,
            hash: Hex32([byte; 32]),
            state_root: Hex32([byte.wrapping_add(1); 32]),
        }
    }

    fn view(number: u64, byte: u8, ts: u64, anchor: Option<u64>) -> HeadView {
        HeadView {
            head: head(number, byte),
            timestamp: Some(ts),
            anchor_height: anchor,
        }
    }

    const NOW: u64 = 1_800_000_000;

    fn healthy() -> Report {
        Report {
            chain_id: 7,
            dispute_window: 6,
            l1: Some(L1Ref {
                height: 210,
                hash: "00000000000000000000000000000000000000000000000000000000000000aa"
                    .parse()
                    .unwrap(),
            }),
            soft: view(12, 12, NOW - 2, None),
            anchored: view(11, 11, NOW - 10, Some(208)),
            final_: view(8, 8, NOW - 60, Some(203)),
            oldest_unanchored: Some((12, NOW - 2)),
            verifier: VerifierView::Reached {
                url: "http://v".into(),
                verified: head(11, 11),
                ours: Some(head(11, 11)),
                challenges: vec![],
                pending_fraud: None,
                alerts: vec![],
            },
        }
    }

    #[test]
    fn a_healthy_network_exits_zero_and_the_table_shows_lags_and_the_window() {
        let report = healthy();
        let health = assess(&report, DEFAULT_STALL_SECS, NOW);
        assert_eq!(health.exit_code(), 0, "{health:?}");
        assert_eq!(health.agrees, Some(true));
        let table = table(&report, &health, NOW);
        for part in [
            "chain       7 (dispute window 6 Bitcoin blocks)",
            "bitcoin     block 210 (000000000000…)",
            "soft        batch 12     sealed 2 s ago",
            "anchored    batch 11     in block 208 (2 blocks ago); 1 behind soft",
            "final       batch 8      3 behind anchored; batch 11 final in 4 blocks",
            "verifier    batch 11     agrees: same header and state root at batch 11",
            "challenges  none",
            "health      ok",
        ] {
            assert!(table.contains(part), "missing {part:?} in\n{table}");
        }
        let out = report.output(&health, NOW);
        assert_eq!(
            out["lags"],
            json!({"soft_anchored": 1, "anchored_final": 3})
        );
        assert_eq!(out["window_blocks_left"], json!({"batch": 11, "blocks": 4}));
        assert_eq!(out["verifier"]["agrees"], json!(true));
        assert_eq!(out["health"]["exit_code"], json!(0));
        assert_eq!(out["soft"]["age_secs"], json!(2));
    }

    #[test]
    fn a_different_state_root_is_disagreement_with_exit_code_2() {
        let mut report = healthy();
        report.verifier = VerifierView::Reached {
            url: "http://v".into(),
            verified: head(11, 11),
            ours: Some(Head {
                state_root: Hex32([0xee; 32]),
                ..head(11, 11)
            }),
            challenges: vec![],
            pending_fraud: None,
            alerts: vec![],
        };
        let health = assess(&report, DEFAULT_STALL_SECS, NOW);
        assert_eq!(health.exit_code(), EXIT_VERIFIER_DISAGREES);
        assert_eq!(health.agrees, Some(false));
        assert!(health.why.contains("state root"), "{}", health.why);
        assert!(table(&report, &health, NOW).contains("DISAGREES"));
    }

    #[test]
    fn pending_fraud_and_alerts_are_disagreement() {
        let mut report = healthy();
        if let VerifierView::Reached {
            pending_fraud,
            alerts,
            ..
        } = &mut report.verifier
        {
            *pending_fraud = Some(json!({"batch": 10, "windowEnd": 214}));
            alerts.push(
                json!({"batch": 10, "stage": "post", "reason": "no funds\u{1b}[31m",
                               "blocksLeft": 3}),
            );
        }
        let health = assess(&report, DEFAULT_STALL_SECS, NOW);
        assert_eq!(health.exit_code(), EXIT_VERIFIER_DISAGREES);
        assert_eq!(health.problems.len(), 2, "{health:?}");
        assert!(health.problems[1].what.contains("no funds\\u{1b}[31m"));
    }

    #[test]
    fn an_unreachable_verifier_names_the_flag_that_points_at_it() {
        let mut report = healthy();
        report.verifier = VerifierView::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        let health = assess(&report, DEFAULT_STALL_SECS, NOW);
        assert_eq!(health.exit_code(), EXIT_VERIFIER_UNREACHABLE);
        assert!(health.problems[0].what.contains("--verifier-rpc"));
        assert!(!health.problems[0].what.contains("--rpc "));
        assert_eq!(
            report.output(&health, NOW)["verifier"]["reachable"],
            json!(false)
        );
    }

    #[test]
    fn anchoring_stalls_once_the_oldest_unanchored_batch_waits_past_the_threshold() {
        let mut report = healthy();
        report.soft = view(32, 32, NOW - 1, None);
        report.oldest_unanchored = Some((12, NOW - 601));
        let health = assess(&report, 600, NOW);
        assert_eq!(health.exit_code(), EXIT_ANCHORING_STALLED);
        assert!(
            health.problems[0]
                .what
                .contains("batch 12 was sealed 10 min ago"),
            "{:?}",
            health.problems
        );
        assert!(health.problems[0].what.contains("21 batches waiting"));
        // The verifier still agrees on what is anchored: both facts are shown.
        assert_eq!(health.agrees, Some(true));
        assert_eq!(assess(&report, 601, NOW).exit_code(), 0);
    }

    #[test]
    fn the_worst_problem_sets_the_exit_code() {
        let mut report = healthy();
        report.oldest_unanchored = Some((12, NOW - 10_000));
        report.verifier = VerifierView::Reached {
            url: "http://v".into(),
            verified: head(11, 11),
            ours: None,
            challenges: vec![],
            pending_fraud: None,
            alerts: vec![],
        };
        let health = assess(&report, DEFAULT_STALL_SECS, NOW);
        assert_eq!(health.exit_code(), EXIT_VERIFIER_DISAGREES);
        assert_eq!(health.problems.len(), 2);
    }
}
