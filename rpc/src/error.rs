//! Error types: the JSON-RPC error object, the error-code table, and the
//! framework's own setup errors.

use serde::Serialize;
use serde_json::Value;

/// The JSON-RPC error codes used by this framework.
///
/// | code | meaning | when |
/// | --- | --- | --- |
/// | −32700 | Parse error | the body / frame is not valid JSON (`id` is `null`) |
/// | −32600 | Invalid Request | not a valid request object; empty batch; batch longer than [`RpcServerConfig::max_batch_len`](crate::RpcServerConfig::max_batch_len); body larger than [`RpcServerConfig::max_body_bytes`](crate::RpcServerConfig::max_body_bytes) (HTTP status 413) |
/// | −32601 | Method not found | no method of that name is registered |
/// | −32602 | Invalid params | the params do not fit the method (the message says why) |
/// | −32603 | Internal error | a handler failed internally or panicked |
/// | −32001 | Unauthorized | an admin method was called without the right bearer token |
/// | −32002 | Request timed out | the call did not finish within [`RpcServerConfig::request_timeout`](crate::RpcServerConfig::request_timeout) |
/// | −32003 | WebSocket required | `stint_subscribe` / `stint_unsubscribe` called over HTTP |
/// | −32004 | Too many subscriptions | the connection already holds [`RpcServerConfig::max_subscriptions_per_connection`](crate::RpcServerConfig::max_subscriptions_per_connection) subscriptions |
///
/// The range −32000..=−32099 ("implementation-defined server errors" in the JSON-RPC 2.0
/// specification) is reserved for this framework. **Domain (application) errors of the
/// embedding node use positive codes** — the specification leaves everything outside
/// −32768..=−32000 to the application. Build them with [`RpcError::new`].
pub mod codes {
    /// Invalid JSON was received by the server.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid Request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist / is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameter(s).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Admin method called without a valid `Authorization: Bearer <token>` header.
    pub const UNAUTHORIZED: i64 = -32001;
    /// The call did not complete within the configured request timeout.
    pub const REQUEST_TIMEOUT: i64 = -32002;
    /// The method is only available over the WebSocket endpoint `/ws`.
    pub const WEBSOCKET_REQUIRED: i64 = -32003;
    /// The connection holds the maximum number of subscriptions.
    pub const TOO_MANY_SUBSCRIPTIONS: i64 = -32004;
}

/// A JSON-RPC error object: `{"code", "message", "data"?}`.
///
/// Handlers return it for every failure; the server puts it into the response unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// Error code (see [`codes`]); application errors use positive codes.
    pub code: i64,
    /// A short, readable description of the error.
    pub message: String,
    /// Optional structured detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with any code and message (use positive codes for application errors).
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches structured detail as the `data` member.
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// −32700 `Parse error`.
    pub fn parse_error() -> Self {
        Self::new(codes::PARSE_ERROR, "Parse error")
    }

    /// −32600 `Invalid Request`.
    pub fn invalid_request() -> Self {
        Self::new(codes::INVALID_REQUEST, "Invalid Request")
    }

    /// −32601 `Method not found`.
    pub fn method_not_found() -> Self {
        Self::new(codes::METHOD_NOT_FOUND, "Method not found")
    }

    /// −32602 with the message `Invalid params: <reason>`.
    pub fn invalid_params(reason: impl std::fmt::Display) -> Self {
        Self::new(codes::INVALID_PARAMS, format!("Invalid params: {reason}"))
    }

    /// −32603 with the message `Internal error: <reason>`.
    ///
    /// The reason is sent to the client: keep secrets and internal paths out of it.
    pub fn internal(reason: impl std::fmt::Display) -> Self {
        Self::new(codes::INTERNAL_ERROR, format!("Internal error: {reason}"))
    }

    /// −32001: admin method without a valid bearer token.
    pub fn unauthorized() -> Self {
        Self::new(
            codes::UNAUTHORIZED,
            "Unauthorized: this method requires a valid admin bearer token",
        )
    }
}

/// Why a method or topic could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// A method or topic of that name already exists.
    #[error("`{0}` is already registered")]
    Duplicate(String),
    /// The name is empty.
    #[error("method and topic names must not be empty")]
    EmptyName,
    /// Names starting with `rpc.` are reserved by the JSON-RPC specification.
    #[error("`{0}`: names starting with `rpc.` are reserved")]
    Reserved(String),
    /// Two params of the method share a name.
    #[error("method `{method}` declares param `{param}` twice")]
    DuplicateParam {
        /// The method.
        method: String,
        /// The repeated param name.
        param: String,
    },
    /// A required param follows an optional one (by-position calls could not omit it).
    #[error("method `{method}`: required param `{param}` follows an optional param")]
    RequiredAfterOptional {
        /// The method.
        method: String,
        /// The misplaced param.
        param: String,
    },
}

/// Why a value could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// No topic of that name is registered.
    #[error("unknown subscription topic `{0}`")]
    UnknownTopic(String),
}

/// Why the server could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A configuration value is out of range.
    #[error("invalid RPC server config: {0}")]
    InvalidConfig(String),
    /// Socket error (e.g. reading the bound address).
    #[error("RPC server I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The server task panicked or was cancelled.
    #[error("RPC server task failed: {0}")]
    Task(String),
}
