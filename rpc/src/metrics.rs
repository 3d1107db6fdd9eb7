//! The RPC server's own counters, rendered in the Prometheus text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::codes;

#[derive(Default)]
struct CallStats {
    /// (method, outcome) → count
    calls: BTreeMap<(String, &'static str), u64>,
    /// method → (sum of seconds, count)
    durations: BTreeMap<String, (f64, u64)>,
}

/// Counters and gauges of one RPC server. Obtain it from
/// [`RpcServerHandle::metrics`](crate::RpcServerHandle::metrics); `GET /metrics` serves
/// [`RpcMetrics::render`] after the node's own exposition text.
///
/// Metric names: `stint_rpc_requests_total{method,outcome}`,
/// `stint_rpc_request_duration_seconds{method}` (summary: `_sum`/`_count`),
/// `stint_rpc_in_flight`, `stint_rpc_connections`, `stint_rpc_ws_connections`,
/// `stint_rpc_ws_subscriptions`, `stint_rpc_ws_slow_consumers_dropped_total`,
/// `stint_rpc_rejected_total{reason}`.
///
/// `method` is a registered method name, `unknown` (method not found) or `invalid`
/// (unparseable request), so clients cannot grow the label set. `outcome` is `ok`,
/// `parse_error`, `invalid_request`, `method_not_found`, `invalid_params`,
/// `internal_error`, `unauthorized`, `timeout` or `app_error`. `reason` is `body_too_large`,
/// `batch_too_long`, `connection_limit`, `per_ip_limit`, `header_timeout`, `content_type` or
/// `busy`.
#[derive(Default)]
pub struct RpcMetrics {
    stats: Mutex<CallStats>,
    in_flight: AtomicI64,
    connections: AtomicI64,
    ws_connections: AtomicI64,
    ws_subscriptions: AtomicI64,
    slow_consumers: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
}

impl std::fmt::Debug for RpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcMetrics")
            .field("in_flight", &self.in_flight())
            .field("ws_connections", &self.ws_connections())
            .finish_non_exhaustive()
    }
}

/// Gauges that can be moved up and down.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Gauge {
    InFlight,
    Connections,
    WsConnections,
    WsSubscriptions,
}

/// Reasons a request is rejected before dispatch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rejection {
    BodyTooLarge,
    BatchTooLong,
    /// The server held `max_connections` connections.
    ConnectionLimit,
    /// The client's IP held `max_connections_per_ip` connections.
    PerIpLimit,
    /// Headers not received in time (or an idle keep-alive connection timed out).
    HeaderTimeout,
    /// `POST /` without `Content-Type: application/json`.
    ContentType,
    /// No room in the in-flight byte budget within the request timeout.
    Busy,
}

impl Rejection {
    const ALL: [Rejection; 7] = [
        Rejection::BodyTooLarge,
        Rejection::BatchTooLong,
        Rejection::ConnectionLimit,
        Rejection::PerIpLimit,
        Rejection::HeaderTimeout,
        Rejection::ContentType,
        Rejection::Busy,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::BodyTooLarge => "body_too_large",
            Rejection::BatchTooLong => "batch_too_long",
            Rejection::ConnectionLimit => "connection_limit",
            Rejection::PerIpLimit => "per_ip_limit",
            Rejection::HeaderTimeout => "header_timeout",
            Rejection::ContentType => "content_type",
            Rejection::Busy => "busy",
        }
    }
}

pub(crate) fn outcome_label(code: Option<i64>) -> &'static str {
    match code {
        None => "ok",
        Some(codes::PARSE_ERROR) => "parse_error",
        Some(codes::INVALID_REQUEST) => "invalid_request",
        Some(codes::METHOD_NOT_FOUND) => "method_not_found",
        Some(codes::INVALID_PARAMS) => "invalid_params",
        Some(codes::INTERNAL_ERROR) => "internal_error",
        Some(codes::UNAUTHORIZED) => "unauthorized",
        Some(codes::REQUEST_TIMEOUT) => "timeout",
        Some(_) => "app_error",
    }
}

impl RpcMetrics {
    /// Fresh, zeroed metrics.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn record_call(&self, method: &str, error_code: Option<i64>, elapsed: Duration) {
        let outcome = outcome_label(error_code);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        *stats
            .calls
            .entry((method.to_string(), outcome))
            .or_insert(0) += 1;
        let d = stats
            .durations
            .entry(method.to_string())
            .or_insert((0.0, 0));
        d.0 += elapsed.as_secs_f64();
        d.1 += 1;
    }

    pub(crate) fn gauge(&self, gauge: Gauge) -> &AtomicI64 {
        match gauge {
            Gauge::InFlight => &self.in_flight,
            Gauge::Connections => &self.connections,
            Gauge::WsConnections => &self.ws_connections,
            Gauge::WsSubscriptions => &self.ws_subscriptions,
        }
    }

    pub(crate) fn inc(&self, gauge: Gauge) {
        self.gauge(gauge).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dec(&self, gauge: Gauge) {
        self.gauge(gauge).fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self, reason: Rejection) {
        if let Some(counter) = self.rejected.get(reason as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn slow_consumer_dropped(&self) {
        self.slow_consumers.fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests or connections were refused for `reason` (a `reason` label, see the
    /// type docs); 0 for an unknown label.
    pub fn rejected_count(&self, reason: &str) -> u64 {
        Rejection::ALL
            .iter()
            .zip(&self.rejected)
            .find(|(r, _)| r.label() == reason)
            .map_or(0, |(_, v)| v.load(Ordering::Relaxed))
    }

    /// How many calls of `method` ended with `outcome` (see the type docs for the labels).
    pub fn call_count(&self, method: &str, outcome: &str) -> u64 {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats
            .calls
            .iter()
            .filter(|((m, o), _)| m == method && *o == outcome)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Calls currently executing.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Open WebSocket connections.
    pub fn ws_connections(&self) -> i64 {
        self.ws_connections.load(Ordering::Relaxed)
    }

    /// Open subscriptions over all connections.
    pub fn ws_subscriptions(&self) -> i64 {
        self.ws_subscriptions.load(Ordering::Relaxed)
    }

    /// Renders every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        {
            let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            header(
                &mut out,
                "stint_rpc_requests_total",
                "JSON-RPC calls handled, by method and outcome.",
                "counter",
            );
            for ((method, outcome), n) in &stats.calls {
                let _ = writeln!(
                    out,
                    "stint_rpc_requests_total{{method=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(method)
                );
            }
            header(
                &mut out,
                "stint_rpc_request_duration_seconds",
                "Time spent handling JSON-RPC calls, by method.",
                "summary",
            );
            for (method, (sum, count)) in &stats.durations {
                let m = escape(method);
                let _ = writeln!(
                    out,
                    "stint_rpc_request_duration_seconds_sum{{method=\"{m}\"}} {sum}"
                );
                let _ = writeln!(
                    out,
                    "stint_rpc_request_duration_seconds_count{{method=\"{m}\"}} {count}"
                );
            }
        }
        let gauges = [
            (
                "stint_rpc_in_flight",
                "JSON-RPC calls currently executing.",
                &self.in_flight,
            ),
            (
                "stint_rpc_connections",
                "Open TCP connections to the RPC server.",
                &self.connections,
            ),
            (
                "stint_rpc_ws_connections",
                "Open WebSocket connections.",
                &self.ws_connections,
            ),
            (
                "stint_rpc_ws_subscriptions",
                "Open WebSocket subscriptions.",
                &self.ws_subscriptions,
            ),
        ];
        for (name, help, value) in gauges {
            header(&mut out, name, help, "gauge");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        header(
            &mut out,
            "stint_rpc_ws_slow_consumers_dropped_total",
            "WebSocket connections closed because they could not keep up with their subscriptions.",
            "counter",
        );
        let _ = writeln!(
            out,
            "stint_rpc_ws_slow_consumers_dropped_total {}",
            self.slow_consumers.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "stint_rpc_rejected_total",
            "Requests rejected before dispatch, by reason.",
            "counter",
        );
        for (reason, value) in Rejection::ALL.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "stint_rpc_rejected_total{{reason=\"{}\"}} {}",
                reason.label(),
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn escape(label: &str) -> String {
    let mut s = String::with_capacity(label.len());
    for c in label.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let m = RpcMetrics::new();
        m.record_call("stint_chainInfo", None, Duration::from_millis(2));
        m.record_call("stint_chainInfo", Some(1001), Duration::from_millis(2));
        m.record_call("we\"ird", Some(codes::INVALID_PARAMS), Duration::ZERO);
        m.inc(Gauge::WsConnections);
        m.reject(Rejection::BatchTooLong);
        let text = m.render();
        assert!(
            text.contains("stint_rpc_requests_total{method=\"stint_chainInfo\",outcome=\"ok\"} 1")
        );
        assert!(text.contains(
            "stint_rpc_requests_total{method=\"stint_chainInfo\",outcome=\"app_error\"} 1"
        ));
        assert!(text.contains(
            "stint_rpc_requests_total{method=\"we\\\"ird\",outcome=\"invalid_params\"} 1"
        ));
        assert!(
            text.contains("stint_rpc_request_duration_seconds_count{method=\"stint_chainInfo\"} 2")
        );
        assert!(text.contains("stint_rpc_ws_connections 1"));
        assert!(text.contains("stint_rpc_rejected_total{reason=\"batch_too_long\"} 1"));
        assert_eq!(m.call_count("stint_chainInfo", "ok"), 1);
        m.dec(Gauge::WsConnections);
        assert_eq!(m.ws_connections(), 0);
    }
}
