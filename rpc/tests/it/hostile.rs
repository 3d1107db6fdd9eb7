//! What a hostile client can send: silent and half-sent connections, floods from one address,
//! exotic ids, duplicate keys, wrong content types, oversized frames. Each test asserts the
//! server refuses it and keeps serving honest clients.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// A TCP connection to `addr` from the loopback address `from` (see
/// [`stint_testkit::connect_from`]); the test fails if it cannot be made.
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    stint_testkit::connect_from(from.into(), addr)
        .await
        .expect("connect from a loopback source address")
}

/// Waits until the server closes `stream` (EOF or reset) and returns how long it took, or
/// `None` if it stayed open for `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + within),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue, // a response (or an error page): keep reading until closed
        }
    }
}

/// A raw HTTP/1.1 request for `body` over `stream`; returns the response head and body text.
async fn raw_post(stream: &mut TcpStream, content_type: Option<&str>, body: &str) -> String {
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(HANG_GUARD, stream.read(&mut buf))
        .await
        .expect("no answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn short_timeouts() -> RpcServerConfig {
    RpcServerConfig {
        header_read_timeout: Duration::from_millis(300),
        ..Default::default()
    }
}

#[tokio::test]
async fn silent_half_sent_and_idle_connections_are_closed() {
    let s = start(short_timeouts()).await;
    let addr = s.handle.local_addr();
    // Connected, sends nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Half the headers, then nothing.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    // One complete request answered, then an idle keep-alive connection.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let answer = raw_post(
        &mut idle,
        Some("application/json"),
        r#"{"jsonrpc":"2.0","method":"get_data","id":1}"#,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for (name, stream) in [
        ("silent", &mut silent),
        ("half-sent headers", &mut half),
        ("idle keep-alive", &mut idle),
    ] {
        let took = closed_within(stream, Duration::from_secs(5)).await;
        assert!(took.is_some(), "{name} connection still open after 5 s");
    }
    assert!(s.handle.metrics().rejected_count("header_timeout") >= 2);
    // The server still serves.
    let r = s
        .call(json!({"jsonrpc": "2.0", "method": "get_data", "id": 2}))
        .await;
    assert_eq!(r["result"], json!(["hello", 5]));
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let s = start(RpcServerConfig {
        max_connections: 12,
        max_connections_per_ip: 4,
        ..Default::default()
    })
    .await;
    let addr = s.handle.local_addr();
    // An attacker on 127.0.0.2 holds its 4 connections and tries for 20 more: each extra one
    // is closed at once.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from([127, 0, 0, 2], addr).await);
    }
    // Let the server admit them before the extra ones arrive.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..20 {
        let mut extra = connect_from([127, 0, 0, 2], addr).await;
        assert!(
            closed_within(&mut extra, Duration::from_secs(2))
                .await
                .is_some(),
            "extra connection {i} from the same address was kept open"
        );
    }
    assert!(s.handle.metrics().rejected_count("per_ip_limit") >= 20);
    // Its held connections are still open (the header timeout is 10 s by default)...
    for stream in &mut held {
        assert!(closed_within(stream, Duration::from_millis(50))
            .await
            .is_none());
    }
    // ...and an honest client elsewhere is served.
    let mut honest = connect_from([127, 0, 0, 3], addr).await;
    let answer = raw_post(
        &mut honest,
        Some("application/json"),
        r#"{"jsonrpc":"2.0","method":"get_data","id":1}"#,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_full_server_closes_new_connections_instead_of_queueing_them() {
    let s = start(RpcServerConfig {
        max_connections: 3,
        header_read_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let addr = s.handle.local_addr();
    let mut held = Vec::new();
    for i in 0..3u8 {
        held.push(connect_from([127, 0, 1, i + 1], addr).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = connect_from([127, 0, 1, 9], addr).await;
    assert!(closed_within(&mut extra, Duration::from_millis(400))
        .await
        .is_some());
    assert!(s.handle.metrics().rejected_count("connection_limit") >= 1);
    // The silent ones time out, which frees the server for a new client.
    for stream in &mut held {
        assert!(closed_within(stream, Duration::from_secs(5))
            .await
            .is_some());
    }
    let r = s
        .call(json!({"jsonrpc": "2.0", "method": "get_data", "id": 2}))
        .await;
    assert_eq!(r["result"], json!(["hello", 5]));
}

#[tokio::test]
async fn ids_are_echoed_exactly() {
    let s = default_server().await;
    for id in [
        "18446744073709551616",
        "-12345678901234567890123",
        "1.50",
        "1e400",
        r#""caf\u00e9""#,
        "0",
    ] {
        let body = format!(r#"{{"jsonrpc":"2.0","method":"get_data","id":{id}}}"#);
        let (status, text) = s.post(&body).await;
        assert_eq!(status, 200);
        assert!(text.ends_with(&format!(r#""id":{id}}}"#)), "{id}: {text}");
    }
}

#[tokio::test]
async fn duplicate_keys_and_unknown_members_are_invalid_requests() {
    let s = default_server().await;
    let invalid = json!({"code": -32600, "message": "Invalid Request"});
    for (body, id) in [
        // Which method would a proxy that reads the first key see?
        (
            r#"{"jsonrpc":"2.0","method":"get_data","method":"sum","params":[1],"id":1}"#,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"sum","params":[1],"id":1,"id":2}"#,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend":5,"minuend":1,"subtrahend":3},"id":3}"#,
            json!(3),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"get_data","id":4,"extra":true}"#,
            Value::Null,
        ),
    ] {
        let (status, text) = s.post(body).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"], invalid, "{body}");
        assert_eq!(v["id"], id, "{body}");
    }
    assert_eq!(
        s.handle.metrics().call_count("sum", "ok")
            + s.handle.metrics().call_count("subtract", "ok"),
        0,
        "nothing ran"
    );
}

#[tokio::test]
async fn content_type_must_be_json() {
    let s = default_server().await;
    let body = r#"{"jsonrpc":"2.0","method":"get_data","id":1}"#;
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut stream = TcpStream::connect(s.handle.local_addr()).await.unwrap();
        let answer = raw_post(&mut stream, ct, body).await;
        assert!(answer.starts_with("HTTP/1.1 415"), "{ct:?}: {answer}");
    }
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
    ] {
        let mut stream = TcpStream::connect(s.handle.local_addr()).await.unwrap();
        let answer = raw_post(&mut stream, Some(ct), body).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{ct}: {answer}");
    }
    assert_eq!(s.handle.metrics().rejected_count("content_type"), 3);
}

#[tokio::test]
async fn bodies_wait_for_room_in_the_byte_budget() {
    let s = start(RpcServerConfig {
        max_body_bytes: 1000,
        max_in_flight_bytes: 1500,
        request_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let addr = s.handle.local_addr();
    // A slow client declares 1,000 bytes and sends 10: it holds 1,000 of the 1,500.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another body of 900 does not fit beside it: it waits until the slow one is cut off at
    // its request timeout (408), which frees the budget.
    let padded = format!(
        r#"{{"jsonrpc":"2.0","method":"get_data","id":1}}{}"#,
        " ".repeat(850)
    );
    let started = Instant::now();
    let second = async {
        let (status, _) = s.post(&padded).await;
        (status, started.elapsed())
    };
    let first = async {
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(HANG_GUARD, slow.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        (
            String::from_utf8_lossy(&buf[..n]).into_owned(),
            started.elapsed(),
        )
    };
    let ((status, answered_at), (cut, cut_at)) = tokio::join!(second, first);
    assert!(cut.starts_with("HTTP/1.1 408"), "{cut}");
    assert_eq!(status, 200);
    // The slow one is cut at its 500 ms timeout, ~400 ms after `started`; without the budget
    // the second would have been answered at once (a few ms after `started`).
    assert!(
        answered_at >= Duration::from_millis(300),
        "the second body was handled at {answered_at:?}, before the first released its share \
         (cut at {cut_at:?})"
    );
}

#[tokio::test]
async fn oversized_websocket_message_closes_with_1009() {
    let s = start(RpcServerConfig {
        max_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let mut ws = s.ws().await;
    let big = json!({"jsonrpc": "2.0", "method": "sum", "params": vec![1; 2000], "id": 1});
    // The server may close before the client has written all of it.
    let _ = ws.stream.send(Message::text(big.to_string())).await;
    match ws.next_event().await {
        WsEvent::Closed(code) => assert_eq!(code, Some(1009)),
        WsEvent::Json(v) => panic!("unexpected frame {v}"),
    }
}

#[tokio::test]
async fn params_a_method_does_not_take_are_refused() {
    let s = default_server().await;
    for params in [json!([1]), json!({"verbose": true})] {
        let r = s
            .call(json!({"jsonrpc": "2.0", "method": "get_data", "params": params, "id": 1}))
            .await;
        assert_eq!(r["error"]["code"], json!(codes::INVALID_PARAMS), "{params}");
    }
    let r = s
        .call(json!({"jsonrpc": "2.0", "method": "subtract",
            "params": {"minuend": 5, "subtrahend": 3, "memo": "x"}, "id": 2}))
        .await;
    assert_eq!(r["error"]["code"], json!(codes::INVALID_PARAMS));
    assert!(
        r["error"]["message"].as_str().unwrap().contains("memo"),
        "{r}"
    );
    // Empty forms are "no params".
    for params in [json!([]), json!({}), Value::Null] {
        let r = s
            .call(json!({"jsonrpc": "2.0", "method": "get_data", "params": params, "id": 3}))
            .await;
        assert_eq!(r["result"], json!(["hello", 5]), "{params}");
    }
}

#[tokio::test]
async fn without_topics_subscriptions_are_neither_documented_nor_served() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = serve(listener, module(), RpcServerConfig::default())
        .await
        .unwrap();
    let url = format!("http://{}/", handle.local_addr());
    let client = reqwest::Client::new();
    let call = |body: Value| {
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let doc = call(json!({"jsonrpc": "2.0", "method": "rpc.discover", "id": 1})).await;
    let names: Vec<&str> = doc["result"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"stint_subscribe"), "{names:?}");
    assert!(!names.contains(&"stint_unsubscribe"), "{names:?}");
    assert!(!doc.to_string().contains("\"enum\":[]"));
    let r = call(json!({"jsonrpc": "2.0", "method": "stint_subscribe", "params": ["x"], "id": 2}))
        .await;
    assert_eq!(r["error"]["code"], json!(codes::METHOD_NOT_FOUND));
}
