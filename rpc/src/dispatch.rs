//! JSON-RPC 2.0 request handling shared by the HTTP and WebSocket transports.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::config::RpcServerConfig;
use crate::error::{codes, RpcError};
use crate::json::{self, Envelope, EnvelopeError, RawCall};
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
struct Request<'a> {
    /// `None` for a notification; else the id's exact text.
    id: Option<&'a RawValue>,
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

/// A response object; the id is written back exactly as it was received.
#[derive(Serialize)]
struct ResponseObject<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
    id: &'a RawValue,
}

/// Writes a response object.
pub(crate) fn response(id: &RawValue, result: Result<Value, RpcError>) -> String {
    let (result, error) = match &result {
        Ok(value) => (Some(value), None),
        Err(error) => (None, Some(error)),
    };
    let object = ResponseObject {
        jsonrpc: "2.0",
        result,
        error,
        id,
    };
    // Serializing values, an error object and raw JSON text cannot fail.
    serde_json::to_string(&object).unwrap_or_default()
}

/// The id of answers to requests whose own id cannot be read.
pub(crate) const NULL_ID: &RawValue = RawValue::NULL;

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
        let limit = self.config.max_batch_len;
        let items = match json::split(payload, limit) {
            Ok(Envelope::Single(item)) => return self.handle_item(item, cx).await,
            Ok(Envelope::Batch(items)) => items,
            Err(EnvelopeError::Parse) => {
                self.metrics
                    .record_call("invalid", Some(codes::PARSE_ERROR), Default::default());
                return Some(response(NULL_ID, Err(RpcError::parse_error())));
            }
            Err(EnvelopeError::TooLong) => {
                self.metrics.reject(Rejection::BatchTooLong);
                let err = RpcError::new(
                    codes::INVALID_REQUEST,
                    format!("Invalid Request: a batch holds at most {limit} calls"),
                )
                .with_data(json!({"limit": limit}));
                return Some(response(NULL_ID, Err(err)));
            }
        };
        if items.is_empty() {
            self.metrics
                .record_call("invalid", Some(codes::INVALID_REQUEST), Default::default());
            return Some(response(NULL_ID, Err(RpcError::invalid_request())));
        }
        let responses: Vec<String> =
            join_all(items.into_iter().map(|item| self.handle_item(item, cx)))
                .await
                .into_iter()
                .flatten()
                .collect();
        if responses.is_empty() {
            None
        } else {
            Some(format!("[{}]", responses.join(",")))
        }
    }

    async fn handle_item(&self, item: &RawValue, cx: &CallCx<'_>) -> Option<String> {
        let request = match validate(item) {
            Ok(r) => r,
            Err((id, err)) => {
                self.metrics.record_call(
                    "invalid",
                    Some(codes::INVALID_REQUEST),
                    Default::default(),
                );
                return Some(response(id, Err(err)));
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
        let Some(entry) = self
            .methods
            .get(method)
            .filter(|e| !e.is_subscription() || !self.hub.all_topics().is_empty())
        else {
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
        if !entry.spec.is_variadic() {
            if let Err(e) = params.check_declared() {
                return (label, Err(e));
            }
        }
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

/// Checks the request object's structure. On failure returns the id to answer with (the
/// request's own id when it is readable, else `null`) and the error.
fn validate(item: &RawValue) -> Result<Request<'_>, (&RawValue, RpcError)> {
    fn invalid(id: &RawValue) -> (&RawValue, RpcError) {
        (id, RpcError::invalid_request())
    }
    let call: RawCall<'_> = match serde_json::from_str(item.get()) {
        Ok(call) => call,
        Err(e) => {
            // Not an object, a member named twice or one the specification does not define.
            // The answer carries the specification's exact message; the reason goes to the log.
            tracing::debug!("invalid request: {e}");
            return Err(invalid(NULL_ID));
        }
    };
    let id = match call.id {
        None => None,
        Some(id) if json::is_valid_id(id) => Some(id),
        Some(_) => return Err(invalid(NULL_ID)),
    };
    let err_id = id.unwrap_or(NULL_ID);
    let text =
        |raw: Option<&RawValue>| raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok());
    if text(call.jsonrpc).as_deref() != Some("2.0") {
        return Err(invalid(err_id));
    }
    let Some(method) = text(call.method) else {
        return Err(invalid(err_id));
    };
    // `"params": null` is accepted as "no params" (a common client habit).
    let params = match call.params.map(RawValue::get) {
        None | Some("null") => None,
        Some(raw) if raw.starts_with(['[', '{']) => match json::parse_strict(raw) {
            Ok(params) => Some(params),
            Err(e) => {
                tracing::debug!("invalid request params: {e}");
                return Err(invalid(err_id));
            }
        },
        Some(_) => return Err(invalid(err_id)),
    };
    Ok(Request { id, method, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Option<String>, String> {
        let raw: &RawValue = serde_json::from_str(text).unwrap();
        validate(raw)
            .map(|r| r.id.map(|id| id.get().to_owned()))
            .map_err(|(id, _)| id.get().to_owned())
    }

    #[test]
    fn validation() {
        assert_eq!(
            check(r#"{"jsonrpc": "2.0", "method": "a", "id": 1}"#),
            Ok(Some("1".into()))
        );
        assert_eq!(check(r#"{"jsonrpc": "2.0", "method": "a"}"#), Ok(None));
        assert_eq!(
            check(r#"{"jsonrpc": "2.0", "method": "a", "id": null}"#),
            Ok(Some("null".into())),
            "id null is a call, not a notification"
        );
        assert_eq!(
            check(r#"{"jsonrpc": "2.0", "method": "a", "id": 18446744073709551616}"#),
            Ok(Some("18446744073709551616".into()))
        );
        assert_eq!(
            check(r#"{"jsonrpc": "1.0", "method": "a", "id": 7}"#),
            Err("7".into())
        );
        assert_eq!(
            check(r#"{"jsonrpc": "2.0", "method": "a", "id": [1]}"#),
            Err("null".into())
        );
        assert_eq!(
            check(r#"{"jsonrpc": "2.0", "method": "a", "params": 3, "id": "x"}"#),
            Err("\"x\"".into())
        );
        assert_eq!(
            check(r#"{"jsonrpc": "2.0", "method": "a", "params": {"k": 1, "k": 2}, "id": "x"}"#),
            Err("\"x\"".into())
        );
        assert_eq!(check("1"), Err("null".into()));
    }

    #[test]
    fn responses_echo_the_id_text() {
        let id: &RawValue = serde_json::from_str("18446744073709551616").unwrap();
        assert_eq!(
            response(id, Ok(json!(true))),
            r#"{"jsonrpc":"2.0","result":true,"id":18446744073709551616}"#
        );
    }
}
