//! The axum server: routes, connection limit, start and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::config::{AdminToken, RpcServerConfig};
use crate::dispatch::{response, CallCx, Dispatcher};
use crate::error::{codes, RpcError, ServeError};
use crate::metrics::{Gauge, Rejection, RpcMetrics};
use crate::module::{HealthFn, HealthStatus, MetricsFn, RpcModule};
use crate::subscription::SubscriptionHub;
use crate::ws::{self, WsTracker};

/// Content type of `GET /metrics`.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct ServerState {
    dispatcher: Arc<Dispatcher>,
    health: Option<HealthFn>,
    metrics_source: Option<MetricsFn>,
    shutdown: watch::Receiver<bool>,
    ws_tracker: Arc<WsTracker>,
}

/// A running server. Dropping the handle also stops the server (gracefully, without
/// waiting); call [`RpcServerHandle::shutdown`] to stop and wait.
pub struct RpcServerHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
    metrics: Arc<RpcMetrics>,
    hub: SubscriptionHub,
    ws_tracker: Arc<WsTracker>,
}

impl std::fmt::Debug for RpcServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcServerHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl RpcServerHandle {
    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's own metrics.
    pub fn metrics(&self) -> &Arc<RpcMetrics> {
        &self.metrics
    }

    /// The subscription hub (same as [`RpcModule::subscriptions`]).
    pub fn subscriptions(&self) -> &SubscriptionHub {
        &self.hub
    }

    /// Asks the server to stop without waiting: no new connections are accepted, idle
    /// connections close, running requests finish, WebSocket clients get close code 1001.
    pub fn stop(&self) {
        self.shutdown.send_replace(true);
    }

    /// Stops the server and waits until every HTTP connection and WebSocket session
    /// has ended.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        self.stop();
        if let Some(task) = self.task.take() {
            task.await.map_err(|e| ServeError::Task(e.to_string()))??;
        }
        self.ws_tracker.wait_idle().await;
        Ok(())
    }
}

impl Drop for RpcServerHandle {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// Starts serving `module` on `listener` (`POST /`, `GET /ws`, `GET /health`,
/// `GET /metrics`) in a background task and returns its handle. Needs a Tokio runtime.
pub async fn serve<Ctx: Send + Sync + 'static>(
    listener: TcpListener,
    module: RpcModule<Ctx>,
    config: RpcServerConfig,
) -> Result<RpcServerHandle, ServeError> {
    config.validate()?;
    let local_addr = listener.local_addr()?;
    let metrics = Arc::new(RpcMetrics::new());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ws_tracker = Arc::new(WsTracker::default());
    let hub = module.hub.clone();
    let max_connections = config.max_connections;
    let dispatcher = Arc::new(Dispatcher::new(
        module.methods,
        module.info,
        module.hub,
        metrics.clone(),
        config,
    ));
    let state = Arc::new(ServerState {
        dispatcher,
        health: module.health,
        metrics_source: module.metrics_source,
        shutdown: shutdown_rx.clone(),
        ws_tracker: ws_tracker.clone(),
    });
    let app = Router::new()
        .route("/", post(http_rpc))
        .route("/ws", get(ws_upgrade))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    let listener = LimitedListener {
        inner: listener,
        permits: Arc::new(Semaphore::new(max_connections)),
        metrics: metrics.clone(),
    };
    let mut signal = shutdown_rx;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // An error means the handle is gone: stop as well.
                let _ = signal.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(%local_addr, "JSON-RPC server listening");
    Ok(RpcServerHandle {
        local_addr,
        shutdown: shutdown_tx,
        task: Some(task),
        metrics,
        hub,
        ws_tracker,
    })
}

fn authorized(headers: &HeaderMap, token: Option<&AdminToken>) -> bool {
    let Some(token) = token else {
        return false;
    };
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, credentials)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && token.matches(credentials.trim())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

fn too_large(metrics: &RpcMetrics, limit: usize) -> Response {
    metrics.reject(Rejection::BodyTooLarge);
    let err = RpcError::new(
        codes::INVALID_REQUEST,
        format!("Invalid Request: body exceeds the limit of {limit} bytes"),
    )
    .with_data(json!({"limit": limit}));
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        response(serde_json::Value::Null, Err(err)).to_string(),
    )
}

enum BodyError {
    TooLarge,
    Broken,
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

async fn http_rpc(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dispatcher = &state.dispatcher;
    let config = &dispatcher.config;
    let limit = config.max_body_bytes;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large(&dispatcher.metrics, limit);
    }
    let bytes = match tokio::time::timeout(config.request_timeout, read_limited(body, limit)).await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyError::TooLarge)) => return too_large(&dispatcher.metrics, limit),
        Ok(Err(BodyError::Broken)) => return StatusCode::BAD_REQUEST.into_response(),
        Err(_) => return StatusCode::REQUEST_TIMEOUT.into_response(),
    };
    let cx = CallCx {
        authorized: authorized(&headers, config.admin_token.as_ref()),
        ws: None,
    };
    match dispatcher.handle_payload(&bytes, &cx).await {
        Some(body) => json_response(StatusCode::OK, body),
        // Only notifications: the specification says to return nothing at all.
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn ws_upgrade(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let config = &state.dispatcher.config;
    let is_admin = authorized(&headers, config.admin_token.as_ref());
    let limit = config.max_body_bytes;
    let dispatcher = state.dispatcher.clone();
    let shutdown = state.shutdown.clone();
    let tracker = state.ws_tracker.clone();
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| ws::run(socket, dispatcher, is_admin, shutdown, tracker))
}

async fn health(State(state): State<Arc<ServerState>>) -> Response {
    let status = match &state.health {
        Some(f) => f(),
        None => HealthStatus::healthy(json!({"status": "ok"})),
    };
    let code = if status.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(code, status.body.to_string())
}

async fn metrics_text(State(state): State<Arc<ServerState>>) -> Response {
    let mut text = state
        .metrics_source
        .as_ref()
        .map(|f| f())
        .unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&state.dispatcher.metrics.render());
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE),
        )],
        text,
    )
        .into_response()
}

/// A TCP listener that holds at most `permits` connections open at once.
struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    metrics: Arc<RpcMetrics>,
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so `acquire_owned` only fails in theory.
        let permit = self.permits.clone().acquire_owned().await.ok();
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    self.metrics.inc(Gauge::Connections);
                    return (
                        LimitedStream {
                            stream,
                            _permit: permit,
                            metrics: self.metrics.clone(),
                        },
                        addr,
                    );
                }
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // E.g. too many open files: back off instead of spinning.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A TCP stream that holds a connection permit until dropped.
struct LimitedStream {
    stream: TcpStream,
    _permit: Option<OwnedSemaphorePermit>,
    metrics: Arc<RpcMetrics>,
}

impl Drop for LimitedStream {
    fn drop(&mut self) {
        self.metrics.dec(Gauge::Connections);
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
