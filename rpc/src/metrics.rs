//! The RPC server's own metrics: `prometheus-client` counters, gauges and histograms that
//! [`serve`](crate::serve) registers in the node's registry
//! ([`RpcModule::metrics_registry_mut`](crate::RpcModule::metrics_registry_mut)).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::codes;

/// Labels of `stint_rpc_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    method: String,
    outcome: &'static str,
}

/// Labels of `stint_rpc_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

/// Labels of `stint_rpc_rejected_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Upper bounds (seconds) of the call duration buckets: 100 µs to 10 s (the default request
/// timeout), plus the implicit `+Inf`.
const DURATION_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Counters, gauges and histograms of one RPC server. Obtain it from
/// [`RpcServerHandle::metrics`](crate::RpcServerHandle::metrics); [`serve`](crate::serve)
/// registers them in the module's registry
/// ([`RpcModule::metrics_registry_mut`](crate::RpcModule::metrics_registry_mut)), after the
/// node's own, and `GET /metrics` serves that registry.
///
/// Metric names: `stint_rpc_requests_total{method,outcome}`,
/// `stint_rpc_request_duration_seconds{method}` (histogram: `_bucket{le}`/`_sum`/`_count`),
/// `stint_rpc_in_flight`, `stint_rpc_connections`, `stint_rpc_ws_connections`,
/// `stint_rpc_ws_subscriptions`, `stint_rpc_ws_slow_consumers_dropped_total`,
/// `stint_rpc_rejected_total{reason}` (every reason from the start, at 0).
///
/// `method` is a registered method name, `unknown` (method not found) or `invalid`
/// (unparseable request), so clients cannot grow the label set. `outcome` is `ok`,
/// `parse_error`, `invalid_request`, `method_not_found`, `invalid_params`,
/// `internal_error`, `unauthorized`, `timeout` or `app_error`. `reason` is `body_too_large`,
/// `batch_too_long`, `connection_limit`, `per_ip_limit`, `header_timeout`, `content_type` or
/// `busy`.
pub struct RpcMetrics {
    calls: Family<CallLabels, Counter>,
    durations: Family<MethodLabels, Histogram>,
    in_flight: gauge::Gauge,
    connections: gauge::Gauge,
    ws_connections: gauge::Gauge,
    ws_subscriptions: gauge::Gauge,
    slow_consumers: Counter,
    rejected: Family<ReasonLabels, Counter>,
    /// The series of `rejected`, by [`Rejection`] (the family is filled at construction).
    rejected_by_reason: [Counter; Rejection::ALL.len()],
}

impl Default for RpcMetrics {
    fn default() -> Self {
        let rejected = Family::<ReasonLabels, Counter>::default();
        let rejected_by_reason = Rejection::ALL
            .map(|r| rejected.get_or_create_owned(&ReasonLabels { reason: r.label() }));
        Self {
            calls: Family::default(),
            durations: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            in_flight: gauge::Gauge::default(),
            connections: gauge::Gauge::default(),
            ws_connections: gauge::Gauge::default(),
            ws_subscriptions: gauge::Gauge::default(),
            slow_consumers: Counter::default(),
            rejected,
            rejected_by_reason,
        }
    }
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

/// Every `outcome` label [`outcome_label`] gives.
const OUTCOMES: [&str; 9] = [
    "ok",
    "parse_error",
    "invalid_request",
    "method_not_found",
    "invalid_params",
    "internal_error",
    "unauthorized",
    "timeout",
    "app_error",
];

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
    /// Fresh, zeroed metrics, registered nowhere yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers every metric in `registry` (handles to the same values: the registry encodes
    /// what this server records from then on).
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "stint_rpc_requests",
            "JSON-RPC calls handled, by method and outcome",
            self.calls.clone(),
        );
        registry.register(
            "stint_rpc_request_duration_seconds",
            "Time spent handling JSON-RPC calls, by method",
            self.durations.clone(),
        );
        let gauges = [
            (
                "stint_rpc_in_flight",
                "JSON-RPC calls currently executing",
                &self.in_flight,
            ),
            (
                "stint_rpc_connections",
                "Open TCP connections to the RPC server",
                &self.connections,
            ),
            (
                "stint_rpc_ws_connections",
                "Open WebSocket connections",
                &self.ws_connections,
            ),
            (
                "stint_rpc_ws_subscriptions",
                "Open WebSocket subscriptions",
                &self.ws_subscriptions,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "stint_rpc_ws_slow_consumers_dropped",
            "WebSocket connections closed because they could not keep up with their subscriptions",
            self.slow_consumers.clone(),
        );
        registry.register(
            "stint_rpc_rejected",
            "Requests rejected before dispatch, by reason",
            self.rejected.clone(),
        );
    }

    pub(crate) fn record_call(&self, method: &str, error_code: Option<i64>, elapsed: Duration) {
        let outcome = outcome_label(error_code);
        self.calls
            .get_or_create(&CallLabels {
                method: method.to_string(),
                outcome,
            })
            .inc();
        self.durations
            .get_or_create(&MethodLabels {
                method: method.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn gauge(&self, gauge: Gauge) -> &gauge::Gauge {
        match gauge {
            Gauge::InFlight => &self.in_flight,
            Gauge::Connections => &self.connections,
            Gauge::WsConnections => &self.ws_connections,
            Gauge::WsSubscriptions => &self.ws_subscriptions,
        }
    }

    pub(crate) fn inc(&self, gauge: Gauge) {
        self.gauge(gauge).inc();
    }

    pub(crate) fn dec(&self, gauge: Gauge) {
        self.gauge(gauge).dec();
    }

    pub(crate) fn reject(&self, reason: Rejection) {
        if let Some(counter) = self.rejected_by_reason.get(reason as usize) {
            counter.inc();
        }
    }

    pub(crate) fn record_slow_consumer(&self) {
        self.slow_consumers.inc();
    }

    /// How many requests or connections were refused for `reason` (a `reason` label, see the
    /// type docs); 0 for an unknown label.
    pub fn rejected_count(&self, reason: &str) -> u64 {
        Rejection::ALL
            .iter()
            .zip(&self.rejected_by_reason)
            .find(|(r, _)| r.label() == reason)
            .map_or(0, |(_, counter)| counter.get())
    }

    /// How many calls of `method` ended with `outcome` (see the type docs for the labels); 0
    /// for an unknown label.
    pub fn call_count(&self, method: &str, outcome: &str) -> u64 {
        let Some(outcome) = OUTCOMES.into_iter().find(|o| *o == outcome) else {
            return 0;
        };
        self.calls
            .get(&CallLabels {
                method: method.to_string(),
                outcome,
            })
            .map_or(0, |counter| counter.get())
    }

    /// Calls currently executing.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// Open WebSocket connections.
    pub fn ws_connections(&self) -> i64 {
        self.ws_connections.get()
    }

    /// Open subscriptions over all connections.
    pub fn ws_subscriptions(&self) -> i64 {
        self.ws_subscriptions.get()
    }

    /// WebSocket connections closed because they could not keep up with their subscriptions.
    pub fn slow_consumers_dropped(&self) -> u64 {
        self.slow_consumers.get()
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::prometheus_text::encode;

    use super::*;

    #[test]
    fn registered_metrics_are_encoded() {
        let m = RpcMetrics::new();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.record_call("stint_chainInfo", None, Duration::from_millis(2));
        m.record_call("stint_chainInfo", Some(1001), Duration::from_millis(2));
        m.record_call("we\"ird", Some(codes::INVALID_PARAMS), Duration::ZERO);
        m.inc(Gauge::WsConnections);
        m.reject(Rejection::BatchTooLong);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            "# TYPE stint_rpc_requests_total counter",
            "stint_rpc_requests_total{method=\"stint_chainInfo\",outcome=\"ok\"} 1",
            "stint_rpc_requests_total{method=\"stint_chainInfo\",outcome=\"app_error\"} 1",
            "stint_rpc_requests_total{method=\"we\\\"ird\",outcome=\"invalid_params\"} 1",
            "# TYPE stint_rpc_request_duration_seconds histogram",
            "stint_rpc_request_duration_seconds_count{method=\"stint_chainInfo\"} 2",
            "stint_rpc_request_duration_seconds_bucket{method=\"stint_chainInfo\",le=\"0.0025\"} 2",
            "stint_rpc_request_duration_seconds_bucket{method=\"stint_chainInfo\",le=\"0.001\"} 0",
            "stint_rpc_request_duration_seconds_bucket{method=\"we\\\"ird\",le=\"+Inf\"} 1",
            "stint_rpc_ws_connections 1",
            "stint_rpc_in_flight 0",
            "stint_rpc_ws_slow_consumers_dropped_total 0",
            "stint_rpc_rejected_total{reason=\"batch_too_long\"} 1",
            "stint_rpc_rejected_total{reason=\"busy\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert_eq!(m.call_count("stint_chainInfo", "ok"), 1);
        assert_eq!(m.call_count("stint_chainInfo", "no_such_outcome"), 0);
        assert_eq!(m.rejected_count("batch_too_long"), 1);
        m.dec(Gauge::WsConnections);
        assert_eq!(m.ws_connections(), 0);
    }
}
