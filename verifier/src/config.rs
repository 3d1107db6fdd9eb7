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
pub const DEFAULT_BITCOIND_RPC: &str = stint_anchor::DEFAULT_BITCOIND_RPC_URL;
/// Default bitcoind wallet that pays for challenges (when `bitcoind.wallet` is unset).
pub const DEFAULT_BITCOIND_WALLET: &str = "stint-verifier";
/// Default replay threads (0 = one per core).
pub const DEFAULT_REPLAY_THREADS: usize = 0;
/// Default fee rate of a challenge, sat/vB.
pub const DEFAULT_FEE_RATE_SAT_VB: u64 = 2;
/// Default ceiling of fee bumps, sat/vB.
pub const DEFAULT_MAX_FEE_RATE_SAT_VB: u64 = 200;
pub use stint_anchor::DEFAULT_CONF_TARGET as DEFAULT_FEE_CONF_TARGET;
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
    /// bitcoind connection (network and poll interval included): the same table as the
    /// sequencer's.
    pub bitcoind: BitcoindConfig,
    /// Key file (`{"address", "secret_key"}`) whose key signs challenge envelopes and whose L2
    /// account is named as challenger. Without it the verifier only watches and alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge_key_file: Option<PathBuf>,
    /// Replay threads (0 = one per core).
    pub replay_threads: usize,
    /// Floor of a new challenge's fee rate, sat/vB: it starts at bitcoind's estimate for
    /// `fee_conf_target` blocks, never below this (and at this when there is no estimate).
    pub fee_rate_sat_vb: u64,
    /// Ceiling of the starting rate and of fee bumps, sat/vB.
    pub max_fee_rate_sat_vb: u64,
    /// Confirmation target asked of bitcoind's fee estimator, in blocks.
    pub fee_conf_target: u16,
    /// Blocks a challenge may stay unconfirmed before its fee is bumped.
    pub bump_after_blocks: u64,
    /// Alert while a fraud's window has at most this many blocks left unanswered.
    pub alert_blocks: u64,
}

pub use stint_anchor::Secret;

pub use stint_anchor::BitcoindConfig;

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
            replay_threads: DEFAULT_REPLAY_THREADS,
            fee_rate_sat_vb: DEFAULT_FEE_RATE_SAT_VB,
            max_fee_rate_sat_vb: DEFAULT_MAX_FEE_RATE_SAT_VB,
            fee_conf_target: DEFAULT_FEE_CONF_TARGET,
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
        self.bitcoind.resolve_paths(base);
    }

    /// Check the values that parsing cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.fee_rate_sat_vb == 0 || self.max_fee_rate_sat_vb < self.fee_rate_sat_vb {
            return Err(ConfigError::Invalid {
                field: "max_fee_rate_sat_vb",
                reason: "fee rates must be > 0 and the maximum at least the starting rate".into(),
            });
        }
        if self.fee_conf_target == 0 || self.fee_conf_target > 1008 {
            return Err(ConfigError::Invalid {
                field: "fee_conf_target",
                reason: "must be between 1 and 1008 blocks".into(),
            });
        }
        match self.bitcoind.check() {
            // A verifier without credentials fails at its first call to bitcoind, with the
            // same reason; every other mistake is refused here.
            Err(("bitcoind", _)) | Ok(()) => Ok(()),
            Err((field, reason)) => Err(ConfigError::Invalid { field, reason }),
        }
    }

    /// The Bitcoin network (`bitcoind.network`).
    pub fn bitcoin_network(&self) -> Result<bitcoin::Network, ConfigError> {
        Ok(self.bitcoind.network)
    }

    /// The fee wallet's name.
    pub fn wallet(&self) -> &str {
        self.bitcoind.wallet_or(DEFAULT_BITCOIND_WALLET)
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        self.bitcoind.poll_interval()
    }

    /// How a new challenge chooses its starting fee rate (floor, ceiling, confirmation target).
    pub fn fee_policy(&self) -> stint_anchor::FeePolicy {
        stint_anchor::FeePolicy {
            floor: FeeRate::from_sat_per_vb(self.fee_rate_sat_vb).unwrap_or(FeeRate::BROADCAST_MIN),
            ceiling: self.max_fee_rate(),
            conf_target: self.fee_conf_target,
        }
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
    /// Bitcoin network (`bitcoin`, `testnet`, `signet`, `regtest`).
    #[arg(long, env = "STINT_NETWORK")]
    pub network: Option<bitcoin::Network>,
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
            config.bitcoind.wallet = Some(v.clone());
        }
        if let Some(v) = &self.challenge_key {
            config.challenge_key_file = Some(v.clone());
        }
        if let Some(v) = self.network {
            config.bitcoind.network = v;
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
            VerifierConfig::from_toml("[bitcoind]\nnetwork = \"moon\""),
            Err(ConfigError::Parse(_))
        ));
        // The network and poll interval live in [bitcoind], as on the sequencer.
        assert!(matches!(
            VerifierConfig::from_toml("network = \"regtest\""),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            VerifierConfig::from_toml("[bitcoind]\npoll_interval_ms = 0"),
            Err(ConfigError::Invalid {
                field: "bitcoind.poll_interval_ms",
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
        assert_eq!(config.wallet(), "w");
    }

    #[test]
    fn a_serialized_config_reads_back_as_itself() {
        let mut config = VerifierConfig {
            challenge_key_file: Some("/k/verifier.json".into()),
            alert_blocks: 7,
            ..VerifierConfig::default()
        };
        config.bitcoind.cookie_file = Some("/b/.cookie".into());
        config.bitcoind.wallet = Some("v2".into());
        config.bitcoind.network = bitcoin::Network::Signet;
        let text = toml::to_string(&config).unwrap();
        assert_eq!(VerifierConfig::from_toml(&text).unwrap(), config, "{text}");
    }
}
