//! The CLI's JSON-RPC client: `stint-api`'s typed [`ApiClient`] with the CLI's errors.

use serde::de::DeserializeOwned;
use serde_json::Value;
use stint_api::{ApiClient, ClientError};

use crate::error::CliError;

/// Default timeout of one request.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = stint_api::DEFAULT_REQUEST_TIMEOUT;

/// A JSON-RPC client bound to one node URL.
#[derive(Debug)]
pub struct RpcClient {
    inner: ApiClient,
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::BadUrl { url } => {
                CliError::Usage(format!("--rpc {url}: expected an http:// or https:// URL"))
            }
            ClientError::Unreachable { url, reason } => CliError::Unreachable { url, reason },
            ClientError::Rpc {
                method,
                code,
                message,
            } => CliError::Rpc {
                method,
                code,
                message,
            },
            ClientError::Protocol { method, reason } => CliError::Protocol { method, reason },
        }
    }
}

impl RpcClient {
    /// A client for `url` (e.g. `http://127.0.0.1:7545`).
    pub fn new(url: impl Into<String>) -> Result<Self, CliError> {
        Ok(Self {
            inner: ApiClient::new(url)?,
        })
    }

    /// The node URL.
    pub fn url(&self) -> &str {
        self.inner.url()
    }

    /// The typed client.
    pub fn api(&self) -> &ApiClient {
        &self.inner
    }

    /// Calls `method` with `params` and decodes the result.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, CliError> {
        Ok(self.inner.call(method, params).await?)
    }
}
