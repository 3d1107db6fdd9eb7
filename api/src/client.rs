//! [`ApiClient`]: a typed JSON-RPC client for Stint's nodes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use stint_contracts::SignedTx;

use crate::types::{
    AccountInfo, BatchInfo, BatchRef, BridgeInfo, ChainInfo, Hex32, ReadOptions, Receipt,
    StreamInfo, SyncStatus, TaskInfo,
};

/// Default timeout of one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an `http://` or `https://` URL.
    #[error("{url}: expected an http:// or https:// URL")]
    BadUrl {
        /// The URL given.
        url: String,
    },
    /// The node could not be reached (connection refused, timeout, TLS).
    #[error("cannot reach the node at {url}: {reason}")]
    Unreachable {
        /// The node URL.
        url: String,
        /// The innermost cause.
        reason: String,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{method}: error {code}: {message}")]
    Rpc {
        /// The method called.
        method: String,
        /// The JSON-RPC error code.
        code: i64,
        /// Its message.
        message: String,
    },
    /// The node's answer is not the JSON-RPC response or result type expected.
    #[error("{method}: unexpected answer: {reason}")]
    Protocol {
        /// The method called.
        method: String,
        /// What was wrong.
        reason: String,
    },
}

impl ClientError {
    /// The JSON-RPC error code, when the node answered with an error.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A JSON-RPC client bound to one node URL (a sequencer or a verifier).
pub struct ApiClient {
    url: String,
    http: reqwest::Client,
    next_id: AtomicU64,
    /// The admin bearer token sent with every call, if any (never printed).
    bearer: Option<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("url", &self.url)
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
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

impl ApiClient {
    /// A client for `url` (e.g. `http://127.0.0.1:7545`) with [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn new(url: impl Into<String>) -> Result<Self, ClientError> {
        Self::with_timeout(url, DEFAULT_REQUEST_TIMEOUT)
    }

    /// A client for `url` whose requests time out after `timeout`.
    pub fn with_timeout(url: impl Into<String>, timeout: Duration) -> Result<Self, ClientError> {
        let url = url.into();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ClientError::BadUrl { url });
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: url.clone(),
                reason: root_cause(&e),
            })?;
        Ok(Self {
            url,
            http,
            next_id: AtomicU64::new(1),
            bearer: None,
        })
    }

    /// This client, sending `token` as `Authorization: Bearer` with every call (the
    /// sequencer's admin methods need it).
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// The node URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` with `params`; the whole response object (`result` or `error`).
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut post = self.http.post(&self.url).json(&request);
        if let Some(token) = &self.bearer {
            post = post.bearer_auth(token);
        }
        let response = post.send().await.map_err(|e| ClientError::Unreachable {
            url: self.url.clone(),
            reason: root_cause(&e),
        })?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| ClientError::Protocol {
            method: method.to_owned(),
            reason: format!("HTTP {status}: {}", root_cause(&e)),
        })?;
        if body.get("id") != Some(&json!(id)) {
            return Err(ClientError::Protocol {
                method: method.to_owned(),
                reason: format!("the response's id is not the request's {id}"),
            });
        }
        Ok(body)
    }

    /// Calls `method` with `params` and decodes the result as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, ClientError> {
        let body = self.call_raw(method, params).await?;
        let protocol = |reason: String| ClientError::Protocol {
            method: method.to_owned(),
            reason,
        };
        if let Some(error) = body.get("error") {
            return Err(ClientError::Rpc {
                method: method.to_owned(),
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_owned(),
            });
        }
        let result = body
            .get("result")
            .cloned()
            .ok_or_else(|| protocol("neither result nor error".into()))?;
        serde_json::from_value(result).map_err(|e| protocol(e.to_string()))
    }

    /// `stint_chainInfo`.
    pub async fn chain_info(&self) -> Result<ChainInfo, ClientError> {
        self.call("stint_chainInfo", json!([])).await
    }

    /// `stint_bridgeInfo`.
    pub async fn bridge_info(&self) -> Result<BridgeInfo, ClientError> {
        self.call("stint_bridgeInfo", json!([])).await
    }

    /// `stint_syncStatus`.
    pub async fn sync_status(&self) -> Result<SyncStatus, ClientError> {
        self.call("stint_syncStatus", json!([])).await
    }

    /// `stint_getAccount(address, options)`.
    pub async fn account(
        &self,
        address: &str,
        options: ReadOptions,
    ) -> Result<AccountInfo, ClientError> {
        self.call("stint_getAccount", json!([address, options]))
            .await
    }

    /// `stint_getTask(id, options)`.
    pub async fn task(&self, id: Hex32, options: ReadOptions) -> Result<TaskInfo, ClientError> {
        self.call("stint_getTask", json!([id, options])).await
    }

    /// `stint_getStream(id, options)`.
    pub async fn stream(&self, id: Hex32, options: ReadOptions) -> Result<StreamInfo, ClientError> {
        self.call("stint_getStream", json!([id, options])).await
    }

    /// `stint_getBatch(which)`.
    pub async fn batch(&self, which: BatchRef) -> Result<BatchInfo, ClientError> {
        self.call("stint_getBatch", json!([which])).await
    }

    /// `stint_sendTransaction(tx)` (sequencer): the txid once the tx is durable.
    pub async fn send_transaction(&self, tx: &SignedTx) -> Result<Hex32, ClientError> {
        self.call("stint_sendTransaction", json!([tx])).await
    }

    /// `stint_getReceipt(txid)`.
    pub async fn receipt(&self, txid: Hex32) -> Result<Receipt, ClientError> {
        self.call("stint_getReceipt", json!([txid])).await
    }
}
