//! Integration tests: a real server on 127.0.0.1:0, real HTTP (reqwest), real WebSocket
//! (tokio-tungstenite).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use stint_rpc::{
    codes, serve, AdminToken, HealthStatus, MethodSpec, Params, Publisher, RpcError, RpcModule,
    RpcServerConfig, RpcServerHandle, TopicSpec,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod hostile;

/// Guard against hangs only: a correct server answers in milliseconds.
const HANG_GUARD: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Ctx {
    hellos: AtomicU64,
}

#[derive(Deserialize)]
struct Subtract {
    minuend: i64,
    subtrahend: i64,
}

struct Server {
    handle: RpcServerHandle,
    methods: Vec<String>,
    new_batches: Publisher,
    tx_status: Publisher,
    firehose: Publisher,
    client: reqwest::Client,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle.local_addr())
    }

    async fn post(&self, body: &str) -> (reqwest::StatusCode, String) {
        self.post_with(body, None).await
    }

    async fn post_with(&self, body: &str, bearer: Option<&str>) -> (reqwest::StatusCode, String) {
        let mut req = self
            .client
            .post(self.url("/"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = bearer {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let resp = req.send().await.expect("http request");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    /// Posts and parses the JSON response (expects HTTP 200).
    async fn call(&self, body: Value) -> Value {
        let (status, text) = self.post(&body.to_string()).await;
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).expect("json response")
    }

    /// The body of `GET path`.
    async fn get_text(&self, path: &str) -> String {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    async fn ws(&self) -> Ws {
        let (stream, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/ws", self.handle.local_addr()))
                .await
                .expect("ws connect");
        Ws { stream }
    }
}

struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

enum WsEvent {
    Json(Value),
    Closed(Option<u16>),
}

impl Ws {
    async fn send(&mut self, v: Value) {
        self.stream
            .send(Message::text(v.to_string()))
            .await
            .expect("ws send");
    }

    async fn next_event(&mut self) -> WsEvent {
        loop {
            let msg = tokio::time::timeout(HANG_GUARD, self.stream.next())
                .await
                .expect("server did not answer");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return WsEvent::Json(serde_json::from_str(t.as_str()).expect("json frame"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return WsEvent::Closed(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return WsEvent::Closed(None),
            }
        }
    }

    async fn next_json(&mut self) -> Value {
        match self.next_event().await {
            WsEvent::Json(v) => v,
            WsEvent::Closed(code) => panic!("connection closed ({code:?})"),
        }
    }

    async fn call(&mut self, v: Value) -> Value {
        self.send(v).await;
        self.next_json().await
    }
}

fn module() -> RpcModule<Ctx> {
    let mut m = RpcModule::new(Ctx::default());
    m.register(
        MethodSpec::new("subtract")
            .summary("minuend - subtrahend")
            .param("minuend", json!({"type": "integer"}))
            .param("subtrahend", json!({"type": "integer"}))
            .result("difference", json!({"type": "integer"})),
        |_, params: Params| async move {
            let p: Subtract = params.parse()?;
            Ok(json!(p.minuend - p.subtrahend))
        },
    )
    .unwrap();
    m.register(
        MethodSpec::new("sum")
            .summary("sum of all params")
            .variadic(),
        |_, params: Params| async move {
            let xs: Vec<i64> = params.parse()?;
            Ok(json!(xs.iter().sum::<i64>()))
        },
    )
    .unwrap();
    m.register(MethodSpec::new("get_data"), |_, _| async {
        Ok(json!(["hello", 5]))
    })
    .unwrap();
    m.register(
        MethodSpec::new("notify_hello").param("n", json!({"type": "integer"})),
        |ctx: Arc<Ctx>, params: Params| async move {
            let (_n,): (i64,) = params.parse_positional()?;
            ctx.hellos.fetch_add(1, Ordering::SeqCst);
            Ok(Value::Null)
        },
    )
    .unwrap();
    m.register(MethodSpec::new("hellos"), |ctx: Arc<Ctx>, _| async move {
        Ok(json!(ctx.hellos.load(Ordering::SeqCst)))
    })
    .unwrap();
    m.register(
        MethodSpec::new("admin_echo")
            .admin()
            .param("value", json!({})),
        |_, params: Params| async move {
            let (v,): (Value,) = params.parse_positional()?;
            Ok(v)
        },
    )
    .unwrap();
    m.register(MethodSpec::new("hang"), |_, _| async {
        std::future::pending::<()>().await;
        Ok(Value::Null)
    })
    .unwrap();
    m.register(MethodSpec::new("explode"), |_, _| async {
        if std::hint::black_box(true) {
            panic!("handler bug");
        }
        Ok(Value::Null)
    })
    .unwrap();
    m.register(
        MethodSpec::new("app_error").error(1001, "always fails"),
        |_, _| async {
            Err(RpcError::new(1001, "unknown account").with_data(json!({"address": "x"})))
        },
    )
    .unwrap();
    m.set_health(|| HealthStatus::healthy(json!({"status": "ok", "softHead": 12})));
    let node_up: prometheus_client::metrics::gauge::Gauge = Default::default();
    node_up.set(1);
    m.metrics_registry_mut()
        .register("node_up", "Whether the node is up", node_up);
    m
}

async fn start(config: RpcServerConfig) -> Server {
    let m = module();
    let hub = m.subscriptions().clone();
    let new_batches = hub.register_topic(TopicSpec::new("newBatches")).unwrap();
    let tx_status = hub
        .register_topic(
            TopicSpec::new("txStatus")
                .summary("status changes of one transaction")
                .filter(|params| {
                    let txid = params
                        .and_then(|p| p.get("txid"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| RpcError::invalid_params("txStatus needs {\"txid\": ...}"))?
                        .to_string();
                    Ok(Box::new(move |event: &Value| {
                        event["txid"] == txid.as_str()
                    }))
                }),
        )
        .unwrap();
    let firehose = hub
        .register_topic(TopicSpec::new("firehose").capacity(4))
        .unwrap();
    let methods = m.method_names().into_iter().map(String::from).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = serve(listener, m, config).await.unwrap();
    Server {
        handle,
        methods,
        new_batches,
        tx_status,
        firehose,
        client: reqwest::Client::new(),
    }
}

async fn default_server() -> Server {
    start(RpcServerConfig::default()).await
}

/// Sorts a batch response so it can be compared regardless of order.
fn sorted(v: Value) -> Vec<String> {
    let mut items: Vec<String> = v
        .as_array()
        .expect("batch response is an array")
        .iter()
        .map(|x| x.to_string())
        .collect();
    items.sort();
    items
}

// ---------------------------------------------------------------------------------------
// The examples of the JSON-RPC 2.0 specification, section 7, with their exact responses.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn spec_positional_params() {
    let s = default_server().await;
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}))
            .await,
        json!({"jsonrpc": "2.0", "result": 19, "id": 1})
    );
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}))
            .await,
        json!({"jsonrpc": "2.0", "result": -19, "id": 2})
    );
}

#[tokio::test]
async fn spec_named_params() {
    let s = default_server().await;
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}))
            .await,
        json!({"jsonrpc": "2.0", "result": 19, "id": 3})
    );
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}))
            .await,
        json!({"jsonrpc": "2.0", "result": 19, "id": 4})
    );
}

#[tokio::test]
async fn spec_notifications_get_nothing_but_run() {
    let s = default_server().await;
    for body in [
        r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#,
        r#"{"jsonrpc": "2.0", "method": "foobar"}"#,
        r#"{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}"#,
    ] {
        let (status, text) = s.post(body).await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(text, "");
    }
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": "hellos", "id": 1}))
            .await["result"],
        json!(1),
        "the notification was executed"
    );
}

#[tokio::test]
async fn spec_method_not_found() {
    let s = default_server().await;
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": "foobar", "id": "1"}))
            .await,
        json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"})
    );
}

#[tokio::test]
async fn spec_invalid_json() {
    let s = default_server().await;
    let (status, text) = s
        .post(r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );
}

#[tokio::test]
async fn spec_invalid_request_object() {
    let s = default_server().await;
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": 1, "params": "bar"}))
            .await,
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null})
    );
    // Wrong protocol version: still invalid (answered with the readable id).
    assert_eq!(
        s.call(json!({"jsonrpc": "1.0", "method": "subtract", "params": [1, 1], "id": 9}))
            .await,
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": 9})
    );
}

#[tokio::test]
async fn spec_batch_invalid_json() {
    let s = default_server().await;
    let (status, text) = s
        .post(
            r#"[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );
}

#[tokio::test]
async fn spec_empty_batch() {
    let s = default_server().await;
    assert_eq!(
        s.call(json!([])).await,
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null})
    );
}

#[tokio::test]
async fn spec_invalid_batches() {
    let s = default_server().await;
    let invalid = json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null});
    assert_eq!(s.call(json!([1])).await, json!([invalid]));
    assert_eq!(
        s.call(json!([1, 2, 3])).await,
        json!([invalid, invalid, invalid])
    );
}

#[tokio::test]
async fn spec_mixed_batch() {
    let s = default_server().await;
    let got = s
        .call(json!([
            {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
            {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
            {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
            {"foo": "boo"},
            {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
            {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
        ]))
        .await;
    let want = json!([
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
    ]);
    assert_eq!(sorted(got), sorted(want));
}

#[tokio::test]
async fn spec_batch_of_notifications_returns_nothing() {
    let s = default_server().await;
    let (status, text) = s
        .post(
            r#"[
  {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
]"#,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(text, "");
}

// ---------------------------------------------------------------------------------------
// Params, errors, auth, limits.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_params_have_readable_messages() {
    let s = default_server().await;
    let r = s
        .call(json!({"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 1}, "id": 1}))
        .await;
    assert_eq!(
        r["error"],
        json!({"code": -32602, "message": "Invalid params: missing field `subtrahend`"})
    );
    let r = s
        .call(json!({"jsonrpc": "2.0", "method": "subtract", "params": ["a", 1], "id": 2}))
        .await;
    assert_eq!(r["error"]["code"], json!(codes::INVALID_PARAMS));
    assert_eq!(
        r["error"]["message"],
        json!("Invalid params: invalid type: string \"a\", expected i64")
    );
    let r = s
        .call(json!({"jsonrpc": "2.0", "method": "subtract", "params": [1, 2, 3], "id": 3}))
        .await;
    assert_eq!(
        r["error"]["message"],
        json!("Invalid params: expected at most 2 params, got 3")
    );
}

#[tokio::test]
async fn application_errors_and_panics() {
    let s = default_server().await;
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": "app_error", "id": 1}))
            .await,
        json!({"jsonrpc": "2.0", "error": {"code": 1001, "message": "unknown account", "data": {"address": "x"}}, "id": 1})
    );
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": "explode", "id": 2}))
            .await,
        json!({"jsonrpc": "2.0", "error": {"code": -32603, "message": "Internal error"}, "id": 2})
    );
    // Still serving after the panic.
    assert_eq!(
        s.call(json!({"jsonrpc": "2.0", "method": "get_data", "id": 3}))
            .await["result"],
        json!(["hello", 5])
    );
}

#[tokio::test]
async fn admin_methods_need_the_bearer_token() {
    let s = start(RpcServerConfig {
        admin_token: Some(AdminToken::new("correct-horse")),
        ..Default::default()
    })
    .await;
    let body =
        json!({"jsonrpc": "2.0", "method": "admin_echo", "params": ["hi"], "id": 1}).to_string();
    let unauthorized = json!({"jsonrpc": "2.0", "error": {
        "code": codes::UNAUTHORIZED,
        "message": "Unauthorized: this method requires a valid admin bearer token"}, "id": 1});
    for token in [None, Some("wrong"), Some("correct-hors"), Some("")] {
        let (status, text) = s.post_with(&body, token).await;
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            unauthorized,
            "token {token:?}"
        );
    }
    let (_, text) = s.post_with(&body, Some("correct-horse")).await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"jsonrpc": "2.0", "result": "hi", "id": 1})
    );
    // Public methods need no token.
    let (_, text) = s
        .post(&json!({"jsonrpc": "2.0", "method": "get_data", "id": 2}).to_string())
        .await;
    assert!(text.contains("hello"));
}

#[tokio::test]
async fn admin_methods_are_closed_without_a_configured_token() {
    let s = default_server().await;
    let (_, text) = s
        .post_with(
            &json!({"jsonrpc": "2.0", "method": "admin_echo", "params": [1], "id": 1}).to_string(),
            Some("anything"),
        )
        .await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], json!(codes::UNAUTHORIZED));
}

#[tokio::test]
async fn body_too_large_is_413() {
    let s = start(RpcServerConfig {
        max_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let big =
        json!({"jsonrpc": "2.0", "method": "sum", "params": vec![1; 1000], "id": 1}).to_string();
    assert!(big.len() > 1024);
    let (status, text) = s.post(&big).await;
    assert_eq!(status, 413);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], json!(codes::INVALID_REQUEST));
    assert_eq!(
        v["error"]["message"],
        json!("Invalid Request: body exceeds the limit of 1024 bytes")
    );
    assert_eq!(v["id"], Value::Null);
    // A body within the limit still works.
    let small = json!({"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 1});
    assert_eq!(s.call(small).await["result"], json!(3));
}

#[tokio::test]
async fn batch_too_long_is_rejected() {
    let s = start(RpcServerConfig {
        max_batch_len: 3,
        ..Default::default()
    })
    .await;
    let call = |id: u64| json!({"jsonrpc": "2.0", "method": "get_data", "id": id});
    let ok = s.call(json!([call(1), call(2), call(3)])).await;
    assert_eq!(ok.as_array().map(Vec::len), Some(3));
    let r = s.call(json!([call(1), call(2), call(3), call(4)])).await;
    assert_eq!(
        r,
        json!({"jsonrpc": "2.0", "error": {
            "code": -32600,
            "message": "Invalid Request: a batch holds at most 3 calls",
            "data": {"limit": 3}}, "id": null})
    );
}

#[tokio::test]
async fn slow_calls_time_out() {
    let s = start(RpcServerConfig {
        request_timeout: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let r = s
        .call(json!({"jsonrpc": "2.0", "method": "hang", "id": 1}))
        .await;
    assert_eq!(
        r,
        json!({"jsonrpc": "2.0", "error": {"code": codes::REQUEST_TIMEOUT, "message": "Request timed out after 100 ms"}, "id": 1})
    );
}

#[tokio::test]
async fn subscribe_over_http_is_refused() {
    let s = default_server().await;
    let r = s
        .call(json!({"jsonrpc": "2.0", "method": "stint_subscribe", "params": ["newBatches"], "id": 1}))
        .await;
    assert_eq!(r["error"]["code"], json!(codes::WEBSOCKET_REQUIRED));
}

// ---------------------------------------------------------------------------------------
// Discovery, health, metrics.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn discover_lists_every_method() {
    let s = default_server().await;
    let r = s
        .call(json!({"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}))
        .await;
    let doc = &r["result"];
    assert_eq!(doc["openrpc"], json!("1.2.6"));
    assert_eq!(doc["info"]["title"], json!("Stint JSON-RPC"));
    let mut listed: Vec<String> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut registered = s.methods.clone();
    registered.sort();
    assert_eq!(listed, registered);
    for name in [
        "subtract",
        "admin_echo",
        "rpc.discover",
        "stint_subscribe",
        "stint_unsubscribe",
    ] {
        assert!(listed.iter().any(|m| m == name), "{name} missing");
    }
    let method = |name: &str| {
        doc["methods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .cloned()
            .unwrap()
    };
    let subtract = method("subtract");
    assert_eq!(subtract["params"][0]["name"], json!("minuend"));
    assert_eq!(subtract["params"][1]["required"], json!(true));
    assert_eq!(subtract["result"]["name"], json!("difference"));
    assert_eq!(method("admin_echo")["x-admin"], json!(true));
    assert_eq!(
        method("stint_subscribe")["params"][0]["schema"]["enum"],
        json!(["firehose", "newBatches", "txStatus"])
    );
    assert_eq!(method("app_error")["errors"][0]["code"], json!(1001));
}

#[tokio::test]
async fn health_and_metrics() {
    let s = default_server().await;
    let resp = s.client.get(s.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "ok", "softHead": 12})
    );

    s.call(json!({"jsonrpc": "2.0", "method": "subtract", "params": [2, 1], "id": 1}))
        .await;
    s.call(json!({"jsonrpc": "2.0", "method": "subtract", "params": [], "id": 2}))
        .await;
    s.call(json!({"jsonrpc": "2.0", "method": "no_such_method", "id": 3}))
        .await;
    let _ws = s.ws().await;
    // The WebSocket task registers itself right after the upgrade; wait for it without
    // timing assumptions by polling the server's own gauge.
    tokio::time::timeout(HANG_GUARD, async {
        while s.handle.metrics().ws_connections() < 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("ws connection registered");
    let resp = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    // The node's metrics first, the server's after them, in one registry.
    assert!(
        text.starts_with(
            "# HELP node_up Whether the node is up.\n# TYPE node_up gauge\nnode_up 1\n"
        ),
        "{text}"
    );
    for line in [
        "stint_rpc_requests_total{method=\"subtract\",outcome=\"ok\"} 1",
        "stint_rpc_requests_total{method=\"subtract\",outcome=\"invalid_params\"} 1",
        "stint_rpc_requests_total{method=\"unknown\",outcome=\"method_not_found\"} 1",
        "stint_rpc_ws_connections 1",
        "stint_rpc_in_flight 0",
        "# TYPE stint_rpc_request_duration_seconds histogram",
        "stint_rpc_request_duration_seconds_count{method=\"subtract\"} 2",
        "stint_rpc_request_duration_seconds_bucket{method=\"subtract\",le=\"+Inf\"} 2",
        "stint_rpc_rejected_total{reason=\"busy\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    stint_testkit::promtool_check_metrics(&text);
}

#[tokio::test]
async fn unhealthy_is_503() {
    let mut m = module();
    m.set_health(|| HealthStatus::unhealthy(json!({"status": "syncing"})));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = serve(listener, m, RpcServerConfig::default())
        .await
        .unwrap();
    let resp = reqwest::get(format!("http://{}/health", handle.local_addr()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "syncing"})
    );
    handle.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// WebSocket.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn ws_single_and_batch_calls() {
    let s = default_server().await;
    let mut ws = s.ws().await;
    assert_eq!(
        ws.call(json!({"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 5, "subtrahend": 3}, "id": 1}))
            .await,
        json!({"jsonrpc": "2.0", "result": 2, "id": 1})
    );
    let batch = ws
        .call(json!([
            {"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": "a"},
            {"jsonrpc": "2.0", "method": "notify_hello", "params": [1]},
            {"jsonrpc": "2.0", "method": "nope", "id": "b"}
        ]))
        .await;
    assert_eq!(
        sorted(batch),
        sorted(json!([
            {"jsonrpc": "2.0", "result": 3, "id": "a"},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "b"}
        ]))
    );
    // Notification only: no frame; the next call's answer is the next frame.
    ws.send(json!({"jsonrpc": "2.0", "method": "notify_hello", "params": [2]}))
        .await;
    assert_eq!(
        ws.call(json!({"jsonrpc": "2.0", "method": "hellos", "id": 2}))
            .await,
        json!({"jsonrpc": "2.0", "result": 2, "id": 2})
    );
    // Garbage: parse error, connection stays usable.
    ws.stream.send(Message::text("{not json")).await.unwrap();
    assert_eq!(
        ws.next_json().await,
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );
    assert_eq!(
        ws.call(json!({"jsonrpc": "2.0", "method": "get_data", "id": 3}))
            .await["result"],
        json!(["hello", 5])
    );
}

fn is_notification_for(v: &Value, sub: &str) -> bool {
    v["method"] == "stint_subscription" && v["params"]["subscription"] == sub
}

#[tokio::test]
async fn ws_subscribe_receive_unsubscribe() {
    let s = default_server().await;
    let mut ws = s.ws().await;

    let r = ws
        .call(json!({"jsonrpc": "2.0", "method": "stint_subscribe", "params": ["newBatches"], "id": 1}))
        .await;
    let batches_sub = r["result"].as_str().expect("subscription id").to_string();
    assert_eq!(s.new_batches.publish(json!({"number": 1})), 1);
    assert_eq!(
        ws.next_json().await,
        json!({"jsonrpc": "2.0", "method": "stint_subscription",
               "params": {"subscription": batches_sub, "result": {"number": 1}}})
    );

    // Filtered topic, subscribed by name.
    let r = ws
        .call(json!({"jsonrpc": "2.0", "method": "stint_subscribe",
                     "params": {"topic": "txStatus", "params": {"txid": "aa"}}, "id": 2}))
        .await;
    let tx_sub = r["result"].as_str().expect("subscription id").to_string();
    s.tx_status.publish(json!({"txid": "bb", "status": "soft"}));
    s.tx_status.publish(json!({"txid": "aa", "status": "soft"}));
    let n = ws.next_json().await;
    assert!(is_notification_for(&n, &tx_sub), "{n}");
    assert_eq!(
        n["params"]["result"],
        json!({"txid": "aa", "status": "soft"})
    );

    // Filter validation happens at subscribe time.
    let r = ws
        .call(
            json!({"jsonrpc": "2.0", "method": "stint_subscribe", "params": ["txStatus"], "id": 3}),
        )
        .await;
    assert_eq!(
        r["error"],
        json!({"code": -32602, "message": "Invalid params: txStatus needs {\"txid\": ...}"})
    );
    let r = ws
        .call(json!({"jsonrpc": "2.0", "method": "stint_subscribe", "params": ["nope"], "id": 4}))
        .await;
    assert_eq!(
        r["error"]["message"],
        json!("Invalid params: unknown topic `nope` (available: firehose, newBatches, txStatus)")
    );

    // Unsubscribe: true once, then false.
    assert_eq!(
        ws.call(json!({"jsonrpc": "2.0", "method": "stint_unsubscribe", "params": [batches_sub], "id": 5}))
            .await,
        json!({"jsonrpc": "2.0", "result": true, "id": 5})
    );
    assert_eq!(
        ws.call(json!({"jsonrpc": "2.0", "method": "stint_unsubscribe", "params": {"subscription": batches_sub}, "id": 6}))
            .await,
        json!({"jsonrpc": "2.0", "result": false, "id": 6})
    );

    // After unsubscribing, newBatches events are not delivered; the txStatus marker
    // published afterwards is, and so is the answer to a later call.
    s.new_batches.publish(json!({"number": 2}));
    s.tx_status
        .publish(json!({"txid": "aa", "status": "final"}));
    ws.send(json!({"jsonrpc": "2.0", "method": "get_data", "id": 7}))
        .await;
    let mut saw_marker = false;
    let mut saw_answer = false;
    while !(saw_marker && saw_answer) {
        let v = ws.next_json().await;
        assert!(
            !is_notification_for(&v, &batches_sub),
            "event after unsubscribe: {v}"
        );
        if is_notification_for(&v, &tx_sub) {
            assert_eq!(v["params"]["result"]["status"], json!("final"));
            saw_marker = true;
        } else {
            assert_eq!(v["id"], json!(7), "{v}");
            saw_answer = true;
        }
    }
    assert_eq!(s.handle.metrics().ws_subscriptions(), 1);
}

#[tokio::test]
async fn ws_subscription_limit() {
    let s = start(RpcServerConfig {
        max_subscriptions_per_connection: 1,
        ..Default::default()
    })
    .await;
    let mut ws = s.ws().await;
    let sub = |id: u64| json!({"jsonrpc": "2.0", "method": "stint_subscribe", "params": ["newBatches"], "id": id});
    assert!(ws.call(sub(1)).await["result"].is_string());
    let r = ws.call(sub(2)).await;
    assert_eq!(r["error"]["code"], json!(codes::TOO_MANY_SUBSCRIPTIONS));
    // Another connection has its own budget.
    let mut other = s.ws().await;
    assert!(other.call(sub(3)).await["result"].is_string());
}

#[tokio::test]
async fn ws_slow_consumer_is_dropped() {
    // Current-thread runtime: the 50 publishes below run back to back, so the forwarder
    // cannot drain between them and the subscriber overruns the topic's capacity of 4.
    let s = default_server().await;
    let mut ws = s.ws().await;
    let r = ws
        .call(
            json!({"jsonrpc": "2.0", "method": "stint_subscribe", "params": ["firehose"], "id": 1}),
        )
        .await;
    assert!(r["result"].is_string());
    for i in 0..50 {
        s.firehose.publish(json!(i));
    }
    let close_code = loop {
        match ws.next_event().await {
            WsEvent::Json(v) => assert_eq!(v["method"], json!("stint_subscription")),
            WsEvent::Closed(code) => break code,
        }
    };
    assert_eq!(close_code, Some(1008));
    // The publisher was never blocked and the server is still fine.
    let mut ws2 = s.ws().await;
    assert_eq!(
        ws2.call(json!({"jsonrpc": "2.0", "method": "get_data", "id": 1}))
            .await["result"],
        json!(["hello", 5])
    );
    assert_eq!(s.handle.metrics().slow_consumers_dropped(), 1);
    let text = s.get_text("/metrics").await;
    assert!(
        text.lines()
            .any(|l| l == "stint_rpc_ws_slow_consumers_dropped_total 1"),
        "{text}"
    );
}

#[tokio::test]
async fn graceful_shutdown_closes_websockets() {
    let s = default_server().await;
    let mut ws = s.ws().await;
    assert_eq!(
        ws.call(json!({"jsonrpc": "2.0", "method": "get_data", "id": 1}))
            .await["result"],
        json!(["hello", 5])
    );
    let addr = s.handle.local_addr();
    let Server { handle, .. } = s;
    handle.shutdown().await.unwrap();
    match ws.next_event().await {
        WsEvent::Closed(code) => assert_eq!(code, Some(1001)),
        WsEvent::Json(v) => panic!("unexpected frame {v}"),
    }
    assert!(
        reqwest::get(format!("http://{addr}/health")).await.is_err(),
        "server still accepting after shutdown"
    );
}
