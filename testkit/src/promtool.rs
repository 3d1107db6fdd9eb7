//! Checking a node's `/metrics` text with Prometheus' `promtool check metrics`.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to do when no promtool is found.
const HOW_TO_GET_ONE: &str =
    "run scripts/promtool.sh (it installs one into the cache and prints its path) or set STINT_PROMTOOL";

fn executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `promtool` to check metrics with, found as `scripts/promtool.sh` finds it:
/// `$STINT_PROMTOOL`, else a `promtool` on `PATH`, else the one that script installs into
/// `${STINT_CACHE:-$HOME/.cache/stint}/prometheus`. Installs nothing. Panics when
/// `STINT_PROMTOOL` is set but names no executable file.
pub fn promtool() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STINT_PROMTOOL").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            executable(&path),
            "STINT_PROMTOOL={} is not an executable file: {HOW_TO_GET_ONE}",
            path.display()
        );
        return Some(path);
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| executable(p))
    }) {
        return Some(found);
    }
    let cache = match std::env::var_os("STINT_CACHE").filter(|c| !c.is_empty()) {
        Some(cache) => PathBuf::from(cache),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/stint"),
    };
    Some(cache.join("prometheus/usr/bin/promtool")).filter(|p| executable(p))
}

/// Runs `promtool check metrics` on `text` (the body of a `GET /metrics`) and panics unless
/// promtool accepts it without a word: any parse error or lint (missing help, a counter without
/// `_total`, …) fails the calling test, with promtool's report and the text. Also panics when
/// `text` is empty or no promtool is found (see [`promtool`]).
pub fn promtool_check_metrics(text: &str) {
    assert!(!text.trim().is_empty(), "no metrics to check");
    let Some(promtool) = promtool() else {
        panic!("no promtool found to check the metrics: {HOW_TO_GET_ONE}");
    };
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e} ({HOW_TO_GET_ONE})", promtool.display()));
    // Written from a thread: promtool may answer (and fill its pipes) before reading it all.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {}: {e}", promtool.display()));
    let written = writer.join().expect("the stdin writer panicked");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.trim().is_empty(),
        "`{} check metrics` {}:\n{report}\n--- the metrics checked ---\n{text}",
        promtool.display(),
        output.status
    );
    written.unwrap_or_else(|e| panic!("writing the metrics to promtool: {e}"));
    println!(
        "`{} check metrics`: no problem in {} lines",
        promtool.display(),
        text.lines().count()
    );
}

/// The repository's operator kit: `deploy/prometheus/stint-alerts.yml` and
/// `deploy/grafana/stint-dashboard.json`.
fn deploy_files() -> [std::path::PathBuf; 2] {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        root.join("deploy/prometheus/stint-alerts.yml"),
        root.join("deploy/grafana/stint-dashboard.json"),
    ]
}

/// Runs `promtool check rules` on the operator kit's alert rules and checks the dashboard is
/// JSON with panels; panics (with promtool's report) unless both hold.
pub fn check_deploy_kit() {
    let [rules, dashboard] = deploy_files();
    let Some(promtool) = promtool() else {
        panic!("no promtool found to check the alert rules: {HOW_TO_GET_ONE}");
    };
    let output = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", promtool.display()));
    assert!(
        output.status.success(),
        "`promtool check rules {}`:\n{}{}",
        rules.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&dashboard).expect("the dashboard");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(
        json["panels"].as_array().is_some_and(|p| !p.is_empty()),
        "the dashboard has no panels"
    );
}

/// The `prefix*` metric names the operator kit (alert rules and dashboard) uses, e.g. every
/// `stint_sequencer_` name, so a node's test can check its `/metrics` exports each one.
pub fn deploy_metric_names(prefix: &str) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for file in deploy_files() {
        let text = std::fs::read_to_string(&file).expect("an operator kit file");
        let mut rest = text.as_str();
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names.into_iter().collect()
}

/// Panics unless every `prefix*` metric of the operator kit is in the exposition `metrics`.
pub fn assert_exports_deploy_metrics(metrics: &str, prefix: &str) {
    let names = deploy_metric_names(prefix);
    assert!(
        !names.is_empty(),
        "the operator kit names no {prefix}* metric"
    );
    for name in names {
        assert!(
            metrics
                .lines()
                .any(|l| !l.starts_with('#') && l.split([' ', '{']).next() == Some(name.as_str())),
            "the operator kit uses {name}, which /metrics does not export:\n{metrics}"
        );
    }
}
