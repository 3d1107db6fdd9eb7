//! Server limits and the admin token.

use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::error::ServeError;

/// Default maximum size of an HTTP request body or WebSocket message: 512 KiB.
///
/// Sized to the largest legitimate request with room to spare: a batch of
/// [`DEFAULT_MAX_BATCH_LEN`] calls, each at most a full-payroll `stint_sendTransaction` (about
/// 4 KiB of JSON); a node's own tests check that such a batch fits.
pub const DEFAULT_MAX_BODY_BYTES: usize = 512 * 1024;
/// Default budget of request bytes being read or handled at once, over all connections: 32 MiB.
/// A body waits (within the request timeout) for its share before it is read.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 32 * 1024 * 1024;
/// Default maximum number of calls in one batch.
pub const DEFAULT_MAX_BATCH_LEN: usize = 100;
/// Default maximum number of open TCP connections (HTTP and WebSocket together).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default maximum number of open TCP connections from one IP address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
/// Default time a client has to send a request's headers, also the time an idle keep-alive
/// HTTP connection stays open.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default maximum number of calls executing at once, over all connections.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Default time limit of one call (including waiting for an in-flight slot) and of
/// reading an HTTP request body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default maximum number of subscriptions one WebSocket connection may hold.
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 64;
/// Default capacity (in messages) of a WebSocket connection's outbound queue.
pub const DEFAULT_WS_OUTBOUND_QUEUE: usize = 1024;

/// The bearer token that admin methods require. Its `Debug` output is redacted so it
/// never reaches a log; it is compared in constant time.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// Wraps a token. An empty token matches nothing (admin methods stay closed).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Whether `presented` equals the token. Constant time in the token's content (a
    /// length mismatch returns early; the length is not secret enough to matter).
    pub fn matches(&self, presented: &str) -> bool {
        !self.0.is_empty() && bool::from(self.0.as_bytes().ct_eq(presented.as_bytes()))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Limits and settings of an RPC server. `Default` uses the `DEFAULT_*` constants and no
/// admin token (admin methods are then refused to everyone).
///
/// Limit behaviour:
/// - body larger than `max_body_bytes`: HTTP **413** with a JSON-RPC error body
///   (−32600, `id: null`); on WebSocket the connection is closed (message too big);
/// - batch longer than `max_batch_len`: one −32600 error object (`id: null`), nothing runs;
/// - more than `max_connections` TCP connections, or more than `max_connections_per_ip` from
///   one address: a further connection is accepted and closed at once (so the backlog never
///   fills with connections nobody serves);
/// - headers not received within `header_read_timeout` (also the idle time of a keep-alive
///   connection between requests): the connection is closed;
/// - request bodies being read or handled beyond `max_in_flight_bytes` in total: a body waits
///   for room within `request_timeout`, then gets HTTP 503;
/// - a `Content-Type` other than `application/json` on `POST /`: HTTP 415;
/// - more than `max_in_flight` executing calls: further calls wait for a slot, within
///   their `request_timeout`;
/// - a call (waiting included) longer than `request_timeout`: −32002; reading an HTTP body
///   longer than that: HTTP 408.
#[derive(Debug, Clone)]
pub struct RpcServerConfig {
    /// Maximum HTTP body / WebSocket message size in bytes.
    pub max_body_bytes: usize,
    /// Maximum number of calls in a batch.
    pub max_batch_len: usize,
    /// Maximum number of open TCP connections.
    pub max_connections: usize,
    /// Maximum number of open TCP connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Time limit for a request's headers, and idle time of a keep-alive connection.
    pub header_read_timeout: Duration,
    /// Budget of request body bytes in flight over all connections.
    pub max_in_flight_bytes: usize,
    /// Maximum number of concurrently executing calls.
    pub max_in_flight: usize,
    /// Time limit of one call.
    pub request_timeout: Duration,
    /// Maximum subscriptions per WebSocket connection.
    pub max_subscriptions_per_connection: usize,
    /// Outbound message queue per WebSocket connection; a subscriber whose queue is full
    /// is disconnected.
    pub ws_outbound_queue: usize,
    /// Token required by admin methods (`Authorization: Bearer <token>`).
    pub admin_token: Option<AdminToken>,
}

impl Default for RpcServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_batch_len: DEFAULT_MAX_BATCH_LEN,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_in_flight_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_subscriptions_per_connection: DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
            ws_outbound_queue: DEFAULT_WS_OUTBOUND_QUEUE,
            admin_token: None,
        }
    }
}

impl RpcServerConfig {
    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<(), ServeError> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_batch_len", self.max_batch_len),
            ("max_connections", self.max_connections),
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("max_in_flight", self.max_in_flight),
            ("max_in_flight_bytes", self.max_in_flight_bytes),
            ("ws_outbound_queue", self.ws_outbound_queue),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ServeError::InvalidConfig(format!("{name} must be > 0")));
            }
        }
        if self.max_in_flight > tokio::sync::Semaphore::MAX_PERMITS
            || self.max_connections > tokio::sync::Semaphore::MAX_PERMITS
        {
            return Err(ServeError::InvalidConfig(
                "max_in_flight / max_connections too large".into(),
            ));
        }
        if u32::try_from(self.max_body_bytes).is_err() {
            return Err(ServeError::InvalidConfig("max_body_bytes too large".into()));
        }
        if self.max_in_flight_bytes < self.max_body_bytes {
            return Err(ServeError::InvalidConfig(
                "max_in_flight_bytes must be at least max_body_bytes".into(),
            ));
        }
        if self.max_in_flight_bytes > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ServeError::InvalidConfig(
                "max_in_flight_bytes too large".into(),
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err(ServeError::InvalidConfig(
                "header_read_timeout must be > 0".into(),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(ServeError::InvalidConfig(
                "request_timeout must be > 0".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted_and_compared() {
        let t = AdminToken::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cres"));
        assert!(!t.matches("s3cret "));
        assert!(!t.matches(""));
        assert!(!AdminToken::new("").matches(""));
        let cfg = RpcServerConfig {
            admin_token: Some(t),
            ..Default::default()
        };
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn validation() {
        assert!(RpcServerConfig::default().validate().is_ok());
        let bad = RpcServerConfig {
            max_batch_len: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
