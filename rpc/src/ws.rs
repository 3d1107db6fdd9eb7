//! The WebSocket transport: JSON-RPC over text frames plus subscriptions.
//!
//! Each connection has a reader (handles requests in order, one message at a time) and a
//! writer task (drains a bounded outbound queue). Responses wait for queue space;
//! subscription events never wait: if the queue is full, or the subscriber lags more than
//! the topic's broadcast capacity, the connection is closed with code 1008 (see
//! [`crate::subscription`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, watch, Notify};

use crate::dispatch::{CallCx, Dispatcher};
use crate::error::{codes, RpcError};
use crate::metrics::{Gauge, RpcMetrics};
use crate::module::SUBSCRIPTION_NOTIFICATION;
use crate::subscription::{EventFilter, SubscriptionHub};

/// How long the writer may take to flush a closing frame before the connection is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Close code: normal closure.
const CLOSE_NORMAL: u16 = 1000;
/// Close code: a message larger than the server takes.
const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: server going away.
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: policy violation (used for slow consumers).
const CLOSE_POLICY: u16 = 1008;

static NEXT_SUBSCRIPTION: AtomicU64 = AtomicU64::new(1);

enum Outbound {
    Text(String),
    Close(u16, &'static str),
}

enum SubState {
    Pending {
        rx: broadcast::Receiver<Arc<Value>>,
        filter: Option<EventFilter>,
    },
    Active(tokio::task::JoinHandle<()>),
    /// Transient state while a pending subscription is being started.
    Starting,
}

struct Subscription {
    cancelled: Arc<AtomicBool>,
    state: SubState,
}

/// Counts live WebSocket connection tasks so shutdown can wait for them.
#[derive(Default)]
pub(crate) struct WsTracker {
    active: std::sync::atomic::AtomicUsize,
    idle: Notify,
}

impl WsTracker {
    fn enter(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
    }

    fn leave(&self) {
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no connection task is running.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Per-connection state shared by the reader, the dispatcher and subscription forwarders.
pub(crate) struct WsConn {
    out: mpsc::Sender<Outbound>,
    subs: Mutex<HashMap<String, Subscription>>,
    kill: watch::Sender<Option<&'static str>>,
    metrics: Arc<RpcMetrics>,
    max_subs: usize,
}

impl WsConn {
    /// Opens a subscription; forwarding starts once the response has been queued
    /// ([`WsConn::activate_pending`]) so the client sees the id before any event.
    pub(crate) fn subscribe(
        &self,
        hub: &SubscriptionHub,
        topic: &str,
        params: Option<Value>,
    ) -> Result<String, RpcError> {
        let Some(topic_ref) = hub.topic(topic) else {
            return Err(RpcError::invalid_params(format_args!(
                "unknown topic `{topic}` (available: {})",
                hub.topic_names().join(", ")
            )));
        };
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        if subs.len() >= self.max_subs {
            return Err(RpcError::new(
                codes::TOO_MANY_SUBSCRIPTIONS,
                format!(
                    "Too many subscriptions: this connection already holds the maximum of {}",
                    self.max_subs
                ),
            ));
        }
        let (rx, filter) = topic_ref.subscribe(params.as_ref())?;
        let id = format!(
            "0x{:016x}",
            NEXT_SUBSCRIPTION.fetch_add(1, Ordering::Relaxed)
        );
        subs.insert(
            id.clone(),
            Subscription {
                cancelled: Arc::new(AtomicBool::new(false)),
                state: SubState::Pending { rx, filter },
            },
        );
        self.metrics.inc(Gauge::WsSubscriptions);
        Ok(id)
    }

    /// Cancels a subscription of this connection; `false` if it does not exist. No event
    /// is sent for it after this returns.
    pub(crate) fn unsubscribe(&self, id: &str) -> bool {
        let removed = self
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        match removed {
            Some(sub) => {
                cancel(sub);
                self.metrics.dec(Gauge::WsSubscriptions);
                true
            }
            None => false,
        }
    }

    fn activate_pending(self: &Arc<Self>) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        for (id, sub) in subs.iter_mut() {
            if !matches!(sub.state, SubState::Pending { .. }) {
                continue;
            }
            if let SubState::Pending { rx, filter } =
                std::mem::replace(&mut sub.state, SubState::Starting)
            {
                let task = tokio::spawn(forward(
                    self.clone(),
                    id.clone(),
                    sub.cancelled.clone(),
                    rx,
                    filter,
                ));
                sub.state = SubState::Active(task);
            }
        }
    }

    fn close_all(&self) {
        let subs: Vec<Subscription> = self
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        for sub in subs {
            cancel(sub);
            self.metrics.dec(Gauge::WsSubscriptions);
        }
    }

    fn drop_slow_consumer(&self, why: &str) {
        tracing::info!("closing WebSocket connection of a slow subscriber: {why}");
        self.metrics.record_slow_consumer();
        self.kill.send_replace(Some("slow consumer"));
    }
}

fn cancel(sub: Subscription) {
    sub.cancelled.store(true, Ordering::SeqCst);
    if let SubState::Active(task) = sub.state {
        task.abort();
    }
}

async fn forward(
    conn: Arc<WsConn>,
    id: String,
    cancelled: Arc<AtomicBool>,
    mut rx: broadcast::Receiver<Arc<Value>>,
    filter: Option<EventFilter>,
) {
    loop {
        match rx.recv().await {
            Ok(event) => {
                if cancelled.load(Ordering::SeqCst) {
                    return;
                }
                if !filter.as_ref().is_none_or(|f| f(event.as_ref())) {
                    continue;
                }
                let text = json!({
                    "jsonrpc": "2.0",
                    "method": SUBSCRIPTION_NOTIFICATION,
                    "params": {"subscription": id, "result": &*event},
                })
                .to_string();
                match conn.out.try_send(Outbound::Text(text)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        conn.drop_slow_consumer("outbound queue full");
                        return;
                    }
                    Err(TrySendError::Closed(_)) => return,
                }
            }
            Err(RecvError::Lagged(n)) => {
                conn.drop_slow_consumer(&format!("lagged {n} events behind"));
                return;
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Serves one upgraded WebSocket connection until the client leaves, the server shuts
/// down, or the connection is dropped as a slow consumer.
pub(crate) async fn run(
    socket: WebSocket,
    dispatcher: Arc<Dispatcher>,
    authorized: bool,
    mut shutdown: watch::Receiver<bool>,
    tracker: Arc<WsTracker>,
) {
    tracker.enter();
    let metrics = dispatcher.metrics.clone();
    metrics.inc(Gauge::WsConnections);

    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Outbound>(dispatcher.config.ws_outbound_queue);
    let (kill_tx, kill_rx) = watch::channel(None);
    let conn = Arc::new(WsConn {
        out: out_tx,
        subs: Mutex::new(HashMap::new()),
        kill: kill_tx,
        metrics: metrics.clone(),
        max_subs: dispatcher.config.max_subscriptions_per_connection,
    });

    let mut writer_kill = kill_rx.clone();
    let mut writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                killed = async { writer_kill.wait_for(Option::is_some).await.ok().and_then(|r| *r) } => {
                    let reason = killed.unwrap_or("closing");
                    let frame = Message::Close(Some(CloseFrame { code: CLOSE_POLICY, reason: reason.into() }));
                    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(frame)).await;
                    break;
                }
                msg = out_rx.recv() => match msg {
                    Some(Outbound::Text(text)) => {
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Outbound::Close(code, reason)) => {
                        let frame = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
                        let _ = sink.send(frame).await;
                        break;
                    }
                    None => break,
                }
            }
        }
    });

    let mut reader_kill = kill_rx;
    let mut close = (CLOSE_NORMAL, "bye");
    loop {
        let msg = tokio::select! {
            _ = reader_kill.wait_for(Option::is_some) => break,
            _ = shutdown.wait_for(|s| *s) => {
                close = (CLOSE_GOING_AWAY, "server shutting down");
                break;
            }
            msg = stream.next() => msg,
        };
        let payload = match msg {
            Some(Ok(Message::Text(text))) => axum::body::Bytes::from(text),
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Err(e)) => {
                if is_too_big(e) {
                    close = (CLOSE_TOO_BIG, "message too big");
                }
                break;
            }
            Some(Ok(Message::Close(_))) | None => break,
        };
        let cx = CallCx {
            authorized,
            ws: Some(&conn),
        };
        if let Some(reply) = dispatcher.handle_payload(&payload, &cx).await {
            tokio::select! {
                sent = conn.out.send(Outbound::Text(reply)) => if sent.is_err() { break },
                _ = reader_kill.wait_for(Option::is_some) => break,
            }
        }
        conn.activate_pending();
    }

    conn.close_all();
    let _ = conn.out.try_send(Outbound::Close(close.0, close.1));
    if tokio::time::timeout(CLOSE_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    metrics.dec(Gauge::WsConnections);
    tracker.leave();
}

/// Whether a WebSocket read failed because a frame or message exceeded the size limit.
fn is_too_big(e: axum::Error) -> bool {
    e.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}
