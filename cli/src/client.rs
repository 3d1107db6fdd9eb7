//! A small JSON-RPC 2.0 client over HTTP for the sequencer's and verifier's APIs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::CliError;

/// Default timeout of one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A JSON-RPC client bound to one node URL.
#[derive(Debug)]
pub struct RpcClient {
    url: String,
    http: reqwest::Client,
    next_id: AtomicU64,
}

impl RpcClient {
    /// A client for `url` (e.g. `http://127.0.0.1:7545`).
    pub fn new(url: impl Into<String>) -> Result<Self, CliError> {
        let url = url.into();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--rpc {url}: expected an http:// or https:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(DEFAULT_REQUEST_TIMEOUT)
            .build()
            .map_err(|e| CliError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            url,
            http,
            next_id: AtomicU64::new(1),
        })
    }

    /// The node URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` with `params` and decodes the result.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, CliError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self
            .http
            .post(&self.url)
            .json(&request)
            .send()
            .await
            .map_err(|e| CliError::Unreachable {
                url: self.url.clone(),
                reason: root_cause(&e),
            })?;
        let protocol = |reason: String| CliError::Protocol {
            method: method.to_string(),
            reason,
        };
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| protocol(format!("HTTP {status}: {e}")))?;
        if let Some(error) = body.get("error") {
            return Err(CliError::Rpc {
                method: method.to_string(),
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
            });
        }
        let result = body
            .get("result")
            .cloned()
            .ok_or_else(|| protocol("no result".into()))?;
        serde_json::from_value(result).map_err(|e| protocol(e.to_string()))
    }
}

/// The innermost error message (reqwest wraps hyper wraps io).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}
