//! Configuration: [`VerifierConfig`] (TOML file) and [`VerifierArgs`] (flags and `STINT_*`
//! environment variables, which override the file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::FeeRate;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Default JSON-RPC listen address of a verifier.
pub const DEFAULT_RPC_ADDR: &str = "127.0.0.1:7546";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "stint-verifier";
/// Default genesis file.
pub const DEFAULT_GENESIS_FILE: &str = "genesis.json";
/// Default bitcoind RPC URL (regtest).
pub const DEFAULT_BITCOIND_RPC: &str = "http://127.0.0.1:18443";
/// Default bitcoind wallet that pays for challenges.
pub const DEFAULT_BITCOIND_WALLET: &str = "stint-verifier";
/// Default Bitcoin network.
pub const DEFAULT_NETWORK: &str = "regtest";
/// Default pause between two polls of bitcoind, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;
/// Default replay threads (0 = one per core).
pub const DEFAULT_REPLAY_THREADS: usize = 0;
/// Default fee rate of a challenge, sat/vB.
pub const DEFAULT_FEE_RATE_SAT_VB: u64 = 2;
/// Default ceiling of fee bumps, sat/vB.
pub const DEFAULT_MAX_FEE_RATE_SAT_VB: u64 = 200;
/// Default number of blocks a challenge may stay unconfirmed before its fee is bumped.
pub const DEFAULT_BUMP_AFTER_BLOCKS: u64 = 1;
/// Default: alert (log at error level) while a fraud's window has at most this many blocks left
/// and no challenge against it is accepted.
pub const DEFAULT_ALERT_BLOCKS: u64 = 3;

/// The verifier's settings (`stint verifier --config FILE`). Every field has a default; unknown
/// keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifierConfig {
    /// Where the verifier keeps its RocksDB databases.
    pub data_dir: PathBuf,
    /// The chain's genesis file (JSON).
    pub genesis: PathBuf,
    /// JSON-RPC listen address.
    pub rpc_addr: SocketAddr,
    /// bitcoind connection.
    pub bitcoind: BitcoindConfig,
    /// Key file (`{"address", "secret_key"}`) whose key signs challenge envelopes and whose L2
    /// account is named as challenger. Without it the verifier only watches and alerts.
    pub challenge_key_file: Option<PathBuf>,
    /// Bitcoin network: `regtest`, `signet`, `testnet` or `bitcoin`.
    pub network: String,
    /// Pause between two polls of bitcoind, in milliseconds.
    pub poll_interval_ms: u64,
    /// Replay threads (0 = one per core).
    pub replay_threads: usize,
    /// Fee rate of a new challenge, sat/vB.
    pub fee_rate_sat_vb: u64,
    /// Ceiling of fee bumps, sat/vB.
    pub max_fee_rate_sat_vb: u64,
    /// Blocks a challenge may stay unconfirmed before its fee is bumped.
    pub bump_after_blocks: u64,
    /// Alert while a fraud's window has at most this many blocks left unanswered.
    pub alert_blocks: u64,
}

pub use stint_anchor::Secret;

/// How to reach bitcoind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BitcoindConfig {
    /// RPC URL.
    pub rpc_url: String,
    /// Cookie file (preferred over user/password).
    pub cookie_file: Option<PathBuf>,
    /// RPC user.
    pub user: Option<String>,
    /// RPC password (never printed or serialized in clear).
    pub password: Option<Secret>,
    /// Wallet that funds challenges.
    pub wallet: String,
}

impl Default for BitcoindConfig {
    fn default() -> Self {
        Self {
            rpc_url: DEFAULT_BITCOIND_RPC.into(),
            cookie_file: None,
            user: None,
            password: None,
            wallet: DEFAULT_BITCOIND_WALLET.into(),
        }
    }
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            genesis: PathBuf::from(DEFAULT_GENESIS_FILE),
            rpc_addr: DEFAULT_RPC_ADDR
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7546))),
            bitcoind: BitcoindConfig::default(),
            challenge_key_file: None,
            network: DEFAULT_NETWORK.into(),
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            replay_threads: DEFAULT_REPLAY_THREADS,
            fee_rate_sat_vb: DEFAULT_FEE_RATE_SAT_VB,
            max_fee_rate_sat_vb: DEFAULT_MAX_FEE_RATE_SAT_VB,
            bump_after_blocks: DEFAULT_BUMP_AFTER_BLOCKS,
            alert_blocks: DEFAULT_ALERT_BLOCKS,
        }
    }
}

impl VerifierConfig {
    /// Parse a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Read and parse a TOML file; relative paths in it are resolved against the file's folder
    /// (as the sequencer does), so a config works from any working directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut config = Self::from_toml(&text)?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.genesis);
        if let Some(key) = &mut self.challenge_key_file {
            fix(key);
        }
        if let Some(cookie) = &mut self.bitcoind.cookie_file {
            fix(cookie);
        }
    }

    /// Check the values that parsing cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bitcoin_network()?;
        if self.poll_interval_ms == 0 {
            return Err(ConfigError::Invalid {
                field: "poll_interval_ms",
                reason: "must be > 0".into(),
            });
        }
        if self.fee_rate_sat_vb == 0 || self.max_fee_rate_sat_vb < self.fee_rate_sat_vb {
            return Err(ConfigError::Invalid {
                field: "max_fee_rate_sat_vb",
                reason: "fee rates must be > 0 and the maximum at least the starting rate".into(),
            });
        }
        if self.bitcoind.user.is_some() != self.bitcoind.password.is_some() {
            return Err(ConfigError::Invalid {
                field: "bitcoind.user",
                reason: "user and password go together".into(),
            });
        }
        Ok(())
    }

    /// The Bitcoin network named by `network`.
    pub fn bitcoin_network(&self) -> Result<bitcoin::Network, ConfigError> {
        match self.network.as_str() {
            "regtest" => Ok(bitcoin::Network::Regtest),
            "signet" => Ok(bitcoin::Network::Signet),
            "testnet" => Ok(bitcoin::Network::Testnet),
            "bitcoin" | "mainnet" => Ok(bitcoin::Network::Bitcoin),
            other => Err(ConfigError::Invalid {
                field: "network",
                reason: format!("unknown network {other:?}"),
            }),
        }
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// The starting fee rate of a challenge.
    pub fn fee_rate(&self) -> FeeRate {
        FeeRate::from_sat_per_vb(self.fee_rate_sat_vb).unwrap_or(FeeRate::BROADCAST_MIN)
    }

    /// The fee-bump ceiling.
    pub fn max_fee_rate(&self) -> FeeRate {
        FeeRate::from_sat_per_vb(self.max_fee_rate_sat_vb).unwrap_or(FeeRate::MAX)
    }
}

/// Command-line flags of `stint verifier` (each also read from a `STINT_*` variable); they
/// override the config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifierArgs {
    /// TOML config file.
    #[arg(long, env = "STINT_VERIFIER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory.
    #[arg(long, env = "STINT_VERIFIER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Genesis file.
    #[arg(long, env = "STINT_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// JSON-RPC listen address.
    #[arg(long, env = "STINT_VERIFIER_RPC_ADDR")]
    pub rpc_addr: Option<SocketAddr>,
    /// bitcoind RPC URL.
    #[arg(long, env = "STINT_BITCOIND_RPC")]
    pub bitcoind_rpc: Option<String>,
    /// bitcoind cookie file.
    #[arg(long, env = "STINT_BITCOIND_COOKIE")]
    pub bitcoind_cookie: Option<PathBuf>,
    /// bitcoind RPC user (instead of a cookie file).
    #[arg(long, env = "STINT_BITCOIND_USER")]
    pub bitcoind_user: Option<String>,
    /// bitcoind RPC password.
    #[arg(long, env = "STINT_BITCOIND_PASSWORD", hide_env_values = true)]
    pub bitcoind_password: Option<Secret>,
    /// bitcoind wallet that funds challenges.
    #[arg(long, env = "STINT_BITCOIND_WALLET")]
    pub bitcoind_wallet: Option<String>,
    /// Challenge key file.
    #[arg(long, env = "STINT_VERIFIER_KEY")]
    pub challenge_key: Option<PathBuf>,
    /// Bitcoin network.
    #[arg(long, env = "STINT_NETWORK")]
    pub network: Option<String>,
    /// Replay threads (0 = one per core).
    #[arg(long, env = "STINT_VERIFIER_REPLAY_THREADS")]
    pub replay_threads: Option<usize>,
}

impl VerifierArgs {
    /// The config file (or the defaults) with these flags applied, validated.
    pub fn resolve(&self) -> Result<VerifierConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => VerifierConfig::load(path)?,
            None => VerifierConfig::default(),
        };
        self.apply(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// Override the fields of `config` given as flags.
    pub fn apply(&self, config: &mut VerifierConfig) {
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &self.genesis {
            config.genesis = v.clone();
        }
        if let Some(v) = self.rpc_addr {
            config.rpc_addr = v;
        }
        if let Some(v) = &self.bitcoind_rpc {
            config.bitcoind.rpc_url = v.clone();
        }
        if let Some(v) = &self.bitcoind_cookie {
            config.bitcoind.cookie_file = Some(v.clone());
        }
        if let Some(v) = &self.bitcoind_user {
            config.bitcoind.user = Some(v.clone());
            config.bitcoind.cookie_file = None;
        }
        if let Some(v) = &self.bitcoind_password {
            config.bitcoind.password = Some(v.clone());
        }
        if let Some(v) = &self.bitcoind_wallet {
            config.bitcoind.wallet = v.clone();
        }
        if let Some(v) = &self.challenge_key {
            config.challenge_key_file = Some(v.clone());
        }
        if let Some(v) = &self.network {
            config.network = v.clone();
        }
        if let Some(v) = self.replay_threads {
            config.replay_threads = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: VerifierArgs,
    }

    #[test]
    fn the_example_config_parses_and_shows_the_defaults() {
        let text = include_str!("../../examples/verifier.toml");
        let mut config = VerifierConfig::from_toml(text).unwrap();
        assert!(config.bitcoind.cookie_file.take().is_some());
        assert_eq!(config, VerifierConfig::default());
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let config = VerifierConfig::from_toml("").unwrap();
        assert_eq!(config, VerifierConfig::default());
        assert_eq!(config.rpc_addr.to_string(), DEFAULT_RPC_ADDR);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(matches!(
            VerifierConfig::from_toml("rpc_port = 1"),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            VerifierConfig::from_toml("[bitcoind]\nwalet = \"x\""),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            VerifierConfig::from_toml("network = \"moon\""),
            Err(ConfigError::Invalid {
                field: "network",
                ..
            })
        ));
        assert!(matches!(
            VerifierConfig::from_toml("fee_rate_sat_vb = 10\nmax_fee_rate_sat_vb = 5"),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("verifier.toml");
        std::fs::write(
            &file,
            "data_dir = \"v1\"\nchallenge_key_file = \"v1.key\"\ngenesis = \"/abs/genesis.json\"\n\
             [bitcoind]\ncookie_file = \"regtest/.cookie\"\n",
        )
        .unwrap();
        let config = VerifierConfig::load(&file).unwrap();
        assert_eq!(config.data_dir, dir.path().join("v1"));
        assert_eq!(config.challenge_key_file, Some(dir.path().join("v1.key")));
        assert_eq!(config.genesis, PathBuf::from("/abs/genesis.json"));
        assert_eq!(
            config.bitcoind.cookie_file,
            Some(dir.path().join("regtest/.cookie"))
        );
    }

    #[test]
    fn the_bitcoind_password_never_shows() {
        let password = "hunter2-very-secret";
        let config = VerifierConfig::from_toml(&format!(
            "[bitcoind]\nuser = \"stint\"\npassword = \"{password}\"\n"
        ))
        .unwrap();
        let secret = config.bitcoind.password.as_ref().unwrap();
        assert_eq!(secret.expose(), password);
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        for shown in [
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{:?}", config.bitcoind),
            serde_json::to_string(&config).unwrap(),
            toml::to_string(&config).unwrap(),
        ] {
            assert!(!shown.contains(password), "password leaked: {shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }

        // From a flag (or STINT_BITCOIND_PASSWORD): the parsed flags do not show it either.
        let cli = Cli::try_parse_from([
            "stint",
            "--bitcoind-user",
            "stint",
            "--bitcoind-password",
            password,
        ])
        .unwrap();
        assert!(!format!("{:?}", cli.args).contains(password));
        let config = cli.args.resolve().unwrap();
        assert_eq!(
            config.bitcoind.password.as_ref().unwrap().expose(),
            password
        );
        assert!(!format!("{config:?}").contains(password));
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("verifier.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nreplay_threads = 3\n[bitcoind]\nwallet = \"w\"\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "stint",
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            "/from/flag",
            "--rpc-addr",
            "127.0.0.1:9999",
        ])
        .unwrap();
        let config = cli.args.resolve().unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.rpc_addr.port(), 9999);
        assert_eq!(config.replay_threads, 3);
        assert_eq!(config.bitcoind.wallet, "w");
    }
}
