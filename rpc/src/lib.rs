//! # stint-rpc
//!
//! A domain-free JSON-RPC 2.0 server framework over axum, shared by Stint's sequencer and
//! verifier. The nodes register their `stint_*` methods on it; this crate provides the
//! transport, the protocol rules, limits, auth, discovery, subscriptions and metrics.
//!
//! ## Key components
//!
//! - [`RpcModule`] — the method table. Each method is a [`MethodSpec`] (name, admin flag,
//!   summary, params with JSON Schemas, result schema, documented errors) plus an async
//!   handler `Fn(Arc<Ctx>, Params) -> impl Future<Output = Result<Value, RpcError>>`.
//!   The built-ins `rpc.discover`, `stint_subscribe` and `stint_unsubscribe` live in the
//!   same table.
//! - [`Params`] — by-position or by-name params; [`Params::parse`] (structs) and
//!   [`Params::parse_positional`] (tuples) accept both forms using the declared param
//!   names and fail with −32602 and a readable reason.
//! - [`RpcError`] and the [`codes`] table — standard codes −32700/−32600/−32601/−32602/
//!   −32603, framework codes −32001..=−32004, application codes positive.
//! - OpenRPC — `rpc.discover` returns an OpenRPC 1.2.6 document generated from the very
//!   table the server dispatches from ([`RpcModule::openrpc`]).
//! - [`SubscriptionHub`] / [`TopicSpec`] / [`Publisher`] — topics backed by Tokio broadcast
//!   channels, optional per-subscription filters, non-blocking publishing; slow WebSocket
//!   consumers are disconnected rather than slowing publishers.
//! - [`RpcServerConfig`] — body size, batch length, connection and in-flight limits,
//!   request timeout, subscription limits, the [`AdminToken`]; defaults are the
//!   `DEFAULT_*` constants.
//! - [`serve`] → [`RpcServerHandle`] — binds routes `POST /` (JSON-RPC), `GET /ws`
//!   (JSON-RPC over WebSocket + subscriptions), `GET /health` (node-supplied
//!   [`HealthStatus`]), `GET /metrics` (the node's `prometheus-client` registry,
//!   [`RpcModule::metrics_registry_mut`], into which the server registers its own
//!   [`RpcMetrics`], in the Prometheus text format 0.0.4); graceful shutdown.
//!
//! ## Protocol details
//!
//! - Batches are executed concurrently; responses keep request order; notifications get
//!   no response; if nothing is left to answer, HTTP returns **204 No Content** with an
//!   empty body (WebSocket sends no frame).
//! - Standard errors (parse error, invalid request, method not found) carry exactly the
//!   specification's messages; an invalid request is answered with its own `id` when that
//!   is readable, else `null`. `"params": null` is accepted as "no params".
//! - Admin methods need `Authorization: Bearer <token>` (on the upgrade request for
//!   WebSocket); a missing or wrong token yields −32001; the token is compared in
//!   constant time and never logged.
//! - A panicking handler yields −32603 `Internal error`; the server keeps running.
//!
//! ## Usage
//!
//! ```
//! use std::sync::Arc;
//! use serde::Deserialize;
//! use serde_json::json;
//! use stint_rpc::{serve, MethodSpec, Params, RpcModule, RpcServerConfig};
//!
//! struct Node { chain_id: u64 }
//!
//! #[derive(Deserialize)]
//! struct AddParams { a: u64, b: u64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut module = RpcModule::new(Node { chain_id: 7 });
//! module.register(
//!     MethodSpec::new("stint_add")
//!         .summary("Adds two numbers")
//!         .param("a", json!({"type": "integer"}))
//!         .param("b", json!({"type": "integer"}))
//!         .result("sum", json!({"type": "integer"})),
//!     |node: Arc<Node>, params: Params| async move {
//!         let p: AddParams = params.parse()?; // [1, 2] or {"a": 1, "b": 2}
//!         Ok(json!(p.a + p.b + node.chain_id - node.chain_id))
//!     },
//! )?;
//! assert!(module.method_names().contains(&"stint_add"));
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = serve(listener, module, RpcServerConfig::default()).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod dispatch;
mod error;
mod json;
mod metrics;
mod module;
mod openrpc;
mod params;
mod server;
mod subscription;
mod ws;

pub use config::{
    AdminToken, RpcServerConfig, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_BATCH_LEN,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES, DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_WS_OUTBOUND_QUEUE,
};
pub use error::{codes, PublishError, RegisterError, RpcError, ServeError};
pub use metrics::RpcMetrics;
pub use module::{
    ApiInfo, BoxFuture, ErrorSpec, HealthStatus, MethodResult, MethodSpec, ParamSpec, RpcModule,
    DISCOVER_METHOD, SUBSCRIBE_METHOD, SUBSCRIPTION_NOTIFICATION, UNSUBSCRIBE_METHOD,
};
pub use openrpc::OPENRPC_VERSION;
pub use params::Params;
pub use server::{serve, RpcServerHandle};
pub use subscription::{
    EventFilter, Publisher, SubscriptionHub, TopicSpec, DEFAULT_TOPIC_CAPACITY,
};
