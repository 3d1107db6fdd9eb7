//! The axum server: routes, connection limit, start and graceful shutdown.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::config::{AdminToken, RpcServerConfig};
use crate::dispatch::{response, CallCx, Dispatcher, NULL_ID};
use crate::error::{codes, RpcError, ServeError};
use crate::metrics::{Gauge, Rejection, RpcMetrics};
use crate::module::{HealthFn, HealthStatus, RpcModule};
use crate::subscription::SubscriptionHub;
use crate::ws::{self, WsTracker};

struct ServerState {
    dispatcher: Arc<Dispatcher>,
    health: Option<HealthFn>,
    /// The node's registry, with this server's [`RpcMetrics`] in it (`GET /metrics`).
    registry: Registry,
    shutdown: watch::Receiver<bool>,
    ws_tracker: Arc<WsTracker>,
    /// Request body bytes in flight ([`RpcServerConfig::max_in_flight_bytes`]).
    body_budget: Semaphore,
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
///
/// The server's [`RpcMetrics`] are registered in the module's registry
/// ([`RpcModule::metrics_registry_mut`]), after what the node registered; `GET /metrics`
/// serves that registry.
pub async fn serve<Ctx: Send + Sync + 'static>(
    listener: TcpListener,
    module: RpcModule<Ctx>,
    config: RpcServerConfig,
) -> Result<RpcServerHandle, ServeError> {
    config.validate()?;
    let local_addr = listener.local_addr()?;
    let metrics = Arc::new(RpcMetrics::new());
    let mut registry = module.registry;
    metrics.register(&mut registry);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ws_tracker = Arc::new(WsTracker::default());
    let hub = module.hub.clone();
    let max_connections = config.max_connections;
    let max_per_ip = config.max_connections_per_ip;
    let header_read_timeout = config.header_read_timeout;
    let body_budget = Semaphore::new(config.max_in_flight_bytes);
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
        registry,
        shutdown: shutdown_rx.clone(),
        ws_tracker: ws_tracker.clone(),
        body_budget,
    });
    let app = Router::new()
        .route("/", post(http_rpc))
        .route("/ws", get(ws_upgrade))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    let admission = Arc::new(Admission {
        permits: Arc::new(Semaphore::new(max_connections)),
        per_ip: Mutex::new(HashMap::new()),
        max_per_ip,
        metrics: metrics.clone(),
    });
    let task = tokio::spawn(accept_loop(
        listener,
        app,
        admission,
        header_read_timeout,
        shutdown_rx,
    ));
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
    json_response(StatusCode::PAYLOAD_TOO_LARGE, response(NULL_ID, Err(err)))
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

/// Whether `headers` declare a JSON body (`application/json`, parameters such as `charset`
/// allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

async fn http_rpc(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dispatcher = &state.dispatcher;
    let config = &dispatcher.config;
    if !is_json(&headers) {
        dispatcher.metrics.reject(Rejection::ContentType);
        let err = RpcError::new(
            codes::INVALID_REQUEST,
            "Invalid Request: Content-Type must be application/json",
        );
        return json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            response(NULL_ID, Err(err)),
        );
    }
    let limit = config.max_body_bytes;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large(&dispatcher.metrics, limit);
    }
    // The body's share of the in-flight byte budget, held until the response is built: its
    // declared length, or the whole limit when it does not say (chunked).
    let share = declared.map_or(limit, |len| len as usize).clamp(1, limit);
    let share = u32::try_from(share).unwrap_or(u32::MAX);
    let deadline = tokio::time::Instant::now() + config.request_timeout;
    let _budget =
        match tokio::time::timeout_at(deadline, state.body_budget.acquire_many(share)).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => {
                dispatcher.metrics.reject(Rejection::Busy);
                let err = RpcError::new(
                    codes::INVALID_REQUEST,
                    "Invalid Request: the server is busy, retry later",
                );
                return json_response(StatusCode::SERVICE_UNAVAILABLE, response(NULL_ID, Err(err)));
            }
        };
    let bytes = match tokio::time::timeout_at(deadline, read_limited(body, limit)).await {
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

/// `GET /metrics`: the node's registry (with the server's metrics) in the Prometheus text
/// format, version 0.0.4.
async fn metrics_text(State(state): State<Arc<ServerState>>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_text::encode(&mut text, &state.registry) {
        // Only a node's collector can fail (the encoder writes into a String).
        tracing::error!("encoding the metrics failed: {e}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
        )],
        text,
    )
        .into_response()
}

/// Accepts connections until shutdown, admits each one or closes it at once, and serves the
/// admitted ones over HTTP/1.1 (with upgrades, for WebSocket) with a header-read timeout that
/// also bounds the idle time of a keep-alive connection. Returns once every connection it
/// served has ended (a WebSocket session, which holds its connection's guard, may outlive it;
/// [`RpcServerHandle::shutdown`] waits for those separately).
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    admission: Arc<Admission>,
    header_read_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    // Every connection task holds a clone of `open_rx`; `open_tx.closed()` resolves when the
    // last one ends.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // E.g. too many open files: back off instead of spinning.
                tracing::error!("accept failed: {e}");
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        // Closed at once when over a limit: the client sees a reset instead of waiting in a
        // backlog that nobody drains.
        let Some(guard) = admission.admit(addr.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(LimitedStream {
            stream,
            _guard: guard,
        });
        let service = TowerToHyperService::new(app.clone());
        let mut stop = shutdown.clone();
        let open = open_rx.clone();
        let metrics = admission.metrics.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(io, service).with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    served = conn.as_mut() => {
                        if let Err(e) = served {
                            if e.is_timeout() {
                                metrics.reject(Rejection::HeaderTimeout);
                            }
                            tracing::trace!(%addr, "connection ended: {e}");
                        }
                        break;
                    }
                    _ = stop.wait_for(|stop| *stop), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(open);
        });
    }
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// The connection limits: at most `permits` connections in all and `max_per_ip` per address.
struct Admission {
    permits: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
    metrics: Arc<RpcMetrics>,
}

impl Admission {
    /// A guard for one more connection from `ip`, or `None` (counted) when over a limit.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnGuard> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.metrics.reject(Rejection::ConnectionLimit);
            return None;
        };
        {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let open = per_ip.entry(ip).or_insert(0);
            if *open >= self.max_per_ip {
                drop(per_ip);
                self.metrics.reject(Rejection::PerIpLimit);
                return None;
            }
            *open += 1;
        }
        self.metrics.inc(Gauge::Connections);
        Some(ConnGuard {
            admission: self.clone(),
            ip,
            _permit: permit,
        })
    }
}

/// One admitted connection: releases its permit and its per-IP count when dropped.
struct ConnGuard {
    admission: Arc<Admission>,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut per_ip = self
            .admission
            .per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(open) = per_ip.get_mut(&self.ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                per_ip.remove(&self.ip);
            }
        }
        drop(per_ip);
        self.admission.metrics.dec(Gauge::Connections);
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

/// A TCP stream that holds its connection's [`ConnGuard`] until dropped; the guard travels
/// with the stream into a WebSocket session after an upgrade.
struct LimitedStream {
    stream: TcpStream,
    _guard: ConnGuard,
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
