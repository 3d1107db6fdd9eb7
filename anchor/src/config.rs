//! [`BitcoindConfig`]: how a node reaches bitcoind, the `[bitcoind]` table of both nodes'
//! configs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rpc::Auth;
use crate::Secret;

/// Default bitcoind RPC URL (regtest's port).
pub const DEFAULT_BITCOIND_RPC_URL: &str = "http://127.0.0.1:18443";
/// Default pause between two polls of bitcoind, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 500;

/// How a node reaches bitcoind (`[bitcoind]` in the sequencer's and the verifier's TOML).
/// Every field has a default; unknown keys are refused.
///
/// ```toml
/// [bitcoind]
/// rpc_url = "http://127.0.0.1:18443"
/// cookie_file = "/path/to/regtest/.cookie"   # or user = "..." and password = "..."
/// wallet = "stint"                           # default: the node's own wallet name
/// network = "regtest"
/// poll_interval_ms = 500
/// ```
///
/// Serializing redacts the password ([`Secret`]): a config with a password does not round-trip
/// through its serialization; one with a cookie file does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BitcoindConfig {
    /// JSON-RPC URL (no wallet path).
    pub rpc_url: String,
    /// Cookie file (preferred); if unset, `user` and `password` are used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_file: Option<PathBuf>,
    /// RPC user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// RPC password. Never logged or serialized in clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// The node's wallet (the sequencer's funds anchors, a verifier's funds challenges); unset:
    /// the node's default name ([`BitcoindConfig::wallet_or`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet: Option<String>,
    /// The Bitcoin network (`bitcoin`, `testnet`, `signet`, `regtest`); it must be bitcoind's.
    pub network: bitcoin::Network,
    /// Milliseconds between two polls of bitcoind.
    pub poll_interval_ms: u64,
}

impl Default for BitcoindConfig {
    fn default() -> Self {
        Self {
            rpc_url: DEFAULT_BITCOIND_RPC_URL.into(),
            cookie_file: None,
            user: None,
            password: None,
            wallet: None,
            network: bitcoin::Network::Regtest,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
        }
    }
}

impl BitcoindConfig {
    /// The RPC authentication this config names: the cookie file, else user and password.
    pub fn auth(&self) -> Result<Auth, String> {
        match (&self.cookie_file, &self.user, &self.password) {
            (Some(cookie), _, _) => Ok(Auth::Cookie(cookie.clone())),
            (None, Some(user), Some(password)) => Ok(Auth::UserPass {
                user: user.clone(),
                password: password.expose().to_owned(),
            }),
            _ => Err("set cookie_file, or both user and password".into()),
        }
    }

    /// Checks what parsing cannot; the error names the offending field (`bitcoind.<field>`).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(self.rpc_url.starts_with("http://") || self.rpc_url.starts_with("https://")) {
            return Err((
                "bitcoind.rpc_url",
                "must be an http:// or https:// URL".into(),
            ));
        }
        if self.poll_interval_ms == 0 {
            return Err(("bitcoind.poll_interval_ms", "must be greater than 0".into()));
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(("bitcoind.user", "user and password go together".into()));
        }
        if self.wallet.as_deref() == Some("") {
            return Err((
                "bitcoind.wallet",
                "must not be empty (leave it unset for the default)".into(),
            ));
        }
        self.auth()
            .map(|_| ())
            .map_err(|reason| ("bitcoind", reason))
    }

    /// The wallet name, or `default` when none is set.
    pub fn wallet_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.wallet.as_deref().unwrap_or(default)
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// Resolves a relative cookie file against `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(cookie) = &mut self.cookie_file {
            if cookie.is_relative() {
                *cookie = base.join(&*cookie);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_and_checked() {
        let empty: BitcoindConfig = toml::from_str("").unwrap();
        assert_eq!(empty, BitcoindConfig::default());
        assert!(toml::from_str::<BitcoindConfig>("wallett = \"x\"").is_err());
        assert!(toml::from_str::<BitcoindConfig>("network = \"moon\"").is_err());
        let with_cookie = BitcoindConfig {
            cookie_file: Some("/c".into()),
            ..BitcoindConfig::default()
        };
        assert!(with_cookie.check().is_ok());
        assert_eq!(BitcoindConfig::default().check().unwrap_err().0, "bitcoind");
        let half = BitcoindConfig {
            user: Some("u".into()),
            ..with_cookie.clone()
        };
        assert_eq!(half.check().unwrap_err().0, "bitcoind.user");
        let slow = BitcoindConfig {
            poll_interval_ms: 0,
            ..with_cookie.clone()
        };
        assert_eq!(slow.check().unwrap_err().0, "bitcoind.poll_interval_ms");
        assert_eq!(with_cookie.wallet_or("stint-verifier"), "stint-verifier");
    }

    #[test]
    fn serializing_round_trips_and_redacts_the_password() {
        let config = BitcoindConfig {
            cookie_file: Some("/a/.cookie".into()),
            wallet: Some("w".into()),
            ..BitcoindConfig::default()
        };
        let text = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<BitcoindConfig>(&text).unwrap(), config);
        let secret = BitcoindConfig {
            user: Some("u".into()),
            password: Some(Secret::new("hunter2")),
            ..BitcoindConfig::default()
        };
        let text = toml::to_string(&secret).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
    }
}
