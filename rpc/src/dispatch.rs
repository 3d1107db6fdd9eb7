//! JSON-RPC 2.0 request handling shared by the HTTP and WebSocket transports.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use futures_util::FutureExt;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::config::RpcServerConfig;
use crate::error::{codes, RpcError};
use crate::metrics::{Gauge, Rejection, RpcMetrics};
use crate::module::{ApiInfo, MethodEntry, MethodKind};
use crate::params::Params;
use crate::subscription::SubscriptionHub;
use crate::ws::WsConn;

/// Who is calling and over what.
pub(crate) struct CallCx<'a> {
    /// The caller presented the admin bearer token.
    pub(crate) authorized: bool,
    /// The WebSocket connection, when the call came over `/ws`.
    pub(crate) ws: Option<&'a Arc<WsConn>>,
}

/// A structurally valid request.
struct Request {
    /// `None` for a notification.
    id: Option<Value>,
    method: String,
    params: Option<Value>,
}

pub(crate) struct Dispatcher {
    methods: BTreeMap<String, MethodEntry>,
    info: ApiInfo,
    pub(crate) hub: SubscriptionHub,
    pub(crate) metrics: Arc<RpcMetrics>,
    pub(crate) config: RpcServerConfig,
    in_flight: Semaphore,
}

struct GaugeGuard<'a>(&'a RpcMetrics, Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec(self.1);
    }
}

/// Builds a response object.
pub(crate) fn response(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err(error) => json!({"jsonrpc": "2.0", "error": error, "id": id}),
    }
}

impl Dispatcher {
    pub(crate) fn new(
        methods: BTreeMap<String, MethodEntry>,
        info: ApiInfo,
        hub: SubscriptionHub,
        metrics: Arc<RpcMetrics>,
        config: RpcServerConfig,
    ) -> Self {
        let in_flight = Semaphore::new(config.max_in_flight);
        Self {
            methods,
            info,
            hub,
            metrics,
            config,
            in_flight,
        }
    }

    /// Handles one HTTP body or WebSocket message. `None` means "send nothing" (only
    /// notifications were received).
    pub(crate) async fn handle_payload(&self, payload: &[u8], cx: &CallCx<'_>) -> Option<String> {
        let value: Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(_) => {
                self.metrics
                    .record_call("invalid", Some(codes::PARSE_ERROR), Default::default());
                return Some(response(Value::Null, Err(RpcError::parse_error())).to_string());
            }
        };
        match value {
            Value::Array(items) => {
                if items.is_empty() {
                    self.metrics.record_call(
                        "invalid",
                        Some(codes::INVALID_REQUEST),
                        Default::default(),
                    );
                    return Some(
                        response(Value::Null, Err(RpcError::invalid_request())).to_string(),
                    );
                }
                let limit = self.config.max_batch_len;
                if items.len() > limit {
                    self.metrics.reject(Rejection::BatchTooLong);
                    let err = RpcError::new(
                        codes::INVALID_REQUEST,
                        format!(
                            "Invalid Request: batch of {} calls exceeds the limit of {limit}",
                            items.len()
                        ),
                    )
                    .with_data(json!({"limit": limit, "received": items.len()}));
                    return Some(response(Value::Null, Err(err)).to_string());
                }
                let responses: Vec<Value> =
                    join_all(items.into_iter().map(|item| self.handle_item(item, cx)))
                        .await
                        .into_iter()
                        .flatten()
                        .collect();
                if responses.is_empty() {
                    None
                } else {
                    Some(Value::Array(responses).to_string())
                }
            }
            single => self.handle_item(single, cx).await.map(|v| v.to_string()),
        }
    }

    async fn handle_item(&self, item: Value, cx: &CallCx<'_>) -> Option<Value> {
        let request = match validate(item) {
            Ok(r) => r,
            Err(id) => {
                self.metrics.record_call(
                    "invalid",
                    Some(codes::INVALID_REQUEST),
                    Default::default(),
                );
                return Some(response(id, Err(RpcError::invalid_request())));
            }
        };
        let started = Instant::now();
        let (label, result) = self.execute(&request.method, request.params, cx).await;
        self.metrics.record_call(
            label,
            result.as_ref().err().map(|e| e.code),
            started.elapsed(),
        );
        if let Err(e) = &result {
            tracing::debug!(
                method = label,
                code = e.code,
                "rpc call failed: {}",
                e.message
            );
        }
        request.id.map(|id| response(id, result))
    }

    async fn execute<'s>(
        &'s self,
        method: &str,
        params: Option<Value>,
        cx: &CallCx<'_>,
    ) -> (&'s str, Result<Value, RpcError>) {
        let Some(entry) = self.methods.get(method) else {
            return ("unknown", Err(RpcError::method_not_found()));
        };
        let label = entry.spec.name();
        if entry.spec.is_admin() && !cx.authorized {
            tracing::warn!(
                method = label,
                "rejected admin call without a valid bearer token"
            );
            return (label, Err(RpcError::unauthorized()));
        }
        let params = Params::new(params, entry.names.clone());
        let call = async {
            let Ok(_permit) = self.in_flight.acquire().await else {
                return Err(RpcError::internal("server is shutting down"));
            };
            self.metrics.inc(Gauge::InFlight);
            let _gauge = GaugeGuard(&self.metrics, Gauge::InFlight);
            match &entry.kind {
                MethodKind::Handler(handler) => {
                    let fut = async { handler(params).await };
                    match AssertUnwindSafe(fut).catch_unwind().await {
                        Ok(result) => result,
                        Err(_) => {
                            tracing::error!(method = label, "rpc handler panicked");
                            Err(RpcError::new(codes::INTERNAL_ERROR, "Internal error"))
                        }
                    }
                }
                MethodKind::Discover => Ok(crate::openrpc::document(
                    &self.info,
                    &self.methods,
                    &self.hub,
                )),
                MethodKind::Subscribe => match cx.ws {
                    Some(conn) => {
                        let (topic, sub_params) =
                            params.parse_positional::<(String, Option<Value>)>()?;
                        conn.subscribe(&self.hub, &topic, sub_params)
                            .map(Value::String)
                    }
                    None => Err(websocket_required(label)),
                },
                MethodKind::Unsubscribe => match cx.ws {
                    Some(conn) => {
                        let (id,) = params.parse_positional::<(String,)>()?;
                        Ok(Value::Bool(conn.unsubscribe(&id)))
                    }
                    None => Err(websocket_required(label)),
                },
            }
        };
        let timeout = self.config.request_timeout;
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::new(
                codes::REQUEST_TIMEOUT,
                format!("Request timed out after {} ms", timeout.as_millis()),
            )),
        };
        (label, result)
    }
}

fn websocket_required(method: &str) -> RpcError {
    RpcError::new(
        codes::WEBSOCKET_REQUIRED,
        format!("{method} is only available over the WebSocket endpoint /ws"),
    )
}

/// Checks the request object's structure. On failure returns the id to answer with
/// (the request's own id when it is readable, else `null`).
fn validate(item: Value) -> Result<Request, Value> {
    let Value::Object(mut obj) = item else {
        return Err(Value::Null);
    };
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => return Err(Value::Null),
    };
    let err_id = || id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(err_id());
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(err_id()),
    };
    // `"params": null` is accepted as "no params" (a common client habit).
    let params = match obj.remove("params") {
        None | Some(Value::Null) => None,
        Some(p @ (Value::Array(_) | Value::Object(_))) => Some(p),
        Some(_) => return Err(err_id()),
    };
    Ok(Request { id, method, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(validate(json!({"jsonrpc": "2.0", "method": "a", "id": 1})).is_ok());
        let notif = validate(json!({"jsonrpc": "2.0", "method": "a"})).unwrap();
        assert!(notif.id.is_none());
        let null_id = validate(json!({"jsonrpc": "2.0", "method": "a", "id": null})).unwrap();
        assert_eq!(
            null_id.id,
            Some(Value::Null),
            "id null is a call, not a notification"
        );
        assert_eq!(
            validate(json!({"jsonrpc": "1.0", "method": "a", "id": 7})).err(),
            Some(json!(7))
        );
        assert_eq!(
            validate(json!({"jsonrpc": "2.0", "method": "a", "id": [1]})).err(),
            Some(Value::Null)
        );
        assert_eq!(
            validate(json!({"jsonrpc": "2.0", "method": "a", "params": 3, "id": "x"})).err(),
            Some(json!("x"))
        );
        assert_eq!(validate(json!(1)).err(), Some(Value::Null));
    }
}
