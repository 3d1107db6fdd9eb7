//! Configuration: a TOML file, `STINT_*` environment variables and command-line flags.
//!
//! Precedence, lowest first: the defaults (the `DEFAULT_*` constants), the TOML file
//! (`--config FILE`), then each setting's `STINT_*` environment variable or flag (a flag beats
//! its variable). Relative paths in the file are relative to the file's folder.
//!
//! ```toml
//! data_dir = "data"                # RocksDB lives in data_dir/db
//! genesis = "genesis.json"
//! anchor_key = "anchor.key"        # {"address","secret_key"} (mode 0600) or a hex secret
//! rpc_addr = "127.0.0.1:7545"
//! batch_interval_ms = 1000
//!
//! fee_rate_sat_vb = 2              # anchoring envelopes: the floor (and the rate without an estimate)
//! max_fee_rate_sat_vb = 500        # ceiling of the starting rate and of fee bumps
//! fee_conf_target = 6              # blocks asked of bitcoind's estimatesmartfee
//! bump_after_blocks = 3
//!
//! [bitcoind]                       # stint_anchor::BitcoindConfig, the same table as a verifier's
//! rpc_url = "http://127.0.0.1:18443"
//! cookie_file = "/path/to/regtest/.cookie"   # or user = "..." and password = "..."
//! wallet = "stint"
//! network = "regtest"
//! poll_interval_ms = 500
//!
//! [fault]                          # watchtower testing only
//! mode = "bad-state-root"
//! batch = 3
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stint_contracts::AccountId;

use crate::error::ConfigError;

/// Default JSON-RPC listen address.
pub const DEFAULT_RPC_ADDR: &str = "127.0.0.1:7545";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "stint-sequencer";
/// Default genesis file.
pub const DEFAULT_GENESIS_FILE: &str = "genesis.json";
/// Default anchor key file.
pub const DEFAULT_ANCHOR_KEY_FILE: &str = "anchor.key";
/// Default time between batches.
pub const DEFAULT_BATCH_INTERVAL_MS: u64 = 1_000;
/// Default lowest fee a tx must pay to be admitted.
pub const DEFAULT_MIN_FEE: u64 = 1;
/// Default bound on the mempool (txs over all accounts).
pub const DEFAULT_MEMPOOL_MAX_TXS: usize = 100_000;
/// Default bound on one account's txs in the mempool.
pub const DEFAULT_MEMPOOL_MAX_PER_ACCOUNT: usize = 1_024;
/// Default largest nonce gap queued (a tx whose nonce is more than this above the account's next
/// nonce is refused).
pub const DEFAULT_MAX_NONCE_GAP: u64 = 64;
/// Default bound on one account's queued txs (a nonce gap before them, so not executable yet).
pub const DEFAULT_MEMPOOL_MAX_QUEUED_PER_ACCOUNT: usize = 16;
/// Default bound on queued txs over all accounts.
pub const DEFAULT_MEMPOOL_MAX_QUEUED: usize = 10_000;
/// Default lifetime of a queued tx whose gap stays open: 10 minutes.
pub const DEFAULT_MEMPOOL_QUEUED_TTL_SECS: u64 = 600;
use bitcoin::FeeRate;
use stint_anchor::FeePolicy;
pub use stint_anchor::{BitcoindConfig, DEFAULT_BITCOIND_RPC_URL, DEFAULT_POLL_INTERVAL_MS};
/// Default bitcoind wallet funding the anchors (when `bitcoind.wallet` is unset).
pub const DEFAULT_BITCOIND_WALLET: &str = "stint";
/// Default anchoring fee floor in sat/vB (the rate when bitcoind has no estimate).
pub const DEFAULT_FEE_RATE_SAT_VB: u64 = 2;
/// Default ceiling of anchoring fee rates (the starting rate and bumps), sat/vB.
pub const DEFAULT_MAX_FEE_RATE_SAT_VB: u64 = 500;
pub use stint_anchor::DEFAULT_CONF_TARGET as DEFAULT_FEE_CONF_TARGET;
/// Default number of blocks an envelope may wait unconfirmed before its fee is bumped.
pub const DEFAULT_BUMP_AFTER_BLOCKS: u64 = 3;
/// Default depth below the L1 tip of a new batch's `l1_origin` (so shallow reorgs never remove
/// an origin).
pub const DEFAULT_L1_ORIGIN_DEPTH: u64 = 3;
/// Default number of admissions written and fsync'd together at most.
pub const DEFAULT_MAX_GROUP_COMMIT: usize = 4_096;

pub use stint_anchor::Secret;

/// Bounds of the mempool.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolConfig {
    /// Most txs over all accounts.
    pub max_txs: usize,
    /// Most txs of one account.
    pub max_per_account: usize,
    /// Largest gap between a tx's nonce and its account's next nonce.
    pub max_nonce_gap: u64,
    /// Most queued txs (a nonce gap before them) of one account.
    pub max_queued_per_account: usize,
    /// Most queued txs over all accounts.
    pub max_queued: usize,
    /// Seconds a queued tx may wait for its gap to fill before it is dropped.
    pub queued_ttl_secs: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: DEFAULT_MEMPOOL_MAX_TXS,
            max_per_account: DEFAULT_MEMPOOL_MAX_PER_ACCOUNT,
            max_nonce_gap: DEFAULT_MAX_NONCE_GAP,
            max_queued_per_account: DEFAULT_MEMPOOL_MAX_QUEUED_PER_ACCOUNT,
            max_queued: DEFAULT_MEMPOOL_MAX_QUEUED,
            queued_ttl_secs: DEFAULT_MEMPOOL_QUEUED_TTL_SECS,
        }
    }
}

/// A deliberate misbehaviour, for testing watchtowers. Each produces a batch that passes every
/// structural check of derivation, so only replay can catch it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FaultMode {
    /// Claim a wrong state root (the last checkpoint and `trace_root` agree with it).
    BadStateRoot,
    /// Claim one wrong intermediate checkpoint (`trace_root` agrees with it).
    BadCheckpoint,
    /// Include a tx whose signature does not verify, executed as if it did.
    InvalidSignature,
    /// Execute a transfer beyond the sender's balance as if it succeeded.
    Overdraft,
    /// Censor `account` from batch `batch` on: its RPC txs are acknowledged and never sealed,
    /// and its forced txs are kept out of batches for as long as the sequencing window lets
    /// the sequencer hold its L1 origin below them (protocol v3: then derivation forces them in).
    Censor,
}

/// Which fault to commit, at which batch.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// The fault.
    pub mode: FaultMode,
    /// The batch number to misbehave at (`censor`: from; default 1).
    #[serde(default = "first_batch")]
    pub batch: u64,
    /// The censored account (`censor` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
}

fn first_batch() -> u64 {
    1
}

/// The sequencer's whole configuration.
///
/// Serializing it writes a config `stint sequencer --config` reads back, with secrets redacted
/// ([`Secret`]): name the admin token with `admin_token_file` for a config that round-trips.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SequencerConfig {
    /// Data directory (RocksDB in `data_dir/db`).
    pub data_dir: PathBuf,
    /// Genesis JSON file.
    pub genesis: PathBuf,
    /// Anchor key file: JSON `{"address", "secret_key"}` or 64 hex digits.
    pub anchor_key: PathBuf,
    /// JSON-RPC listen address.
    pub rpc_addr: SocketAddr,
    /// Bearer token of admin methods (none: admin methods are closed). Never logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// A file (mode 0600) holding the bearer token, read when the config file is loaded;
    /// instead of `admin_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
    /// Milliseconds between batches (a batch is sealed earlier when full).
    pub batch_interval_ms: u64,
    /// Most txs in a batch (at most the genesis `max_batch_txs`; `None` = the genesis value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batch_txs: Option<u32>,
    /// Most bytes in an encoded batch (at most the genesis `max_batch_bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batch_bytes: Option<u32>,
    /// Lowest fee admitted.
    pub min_fee: u64,
    /// Depth below the L1 tip of a new batch's `l1_origin`.
    pub l1_origin_depth: u64,
    /// Most admissions fsync'd together.
    pub max_group_commit: usize,
    /// Floor of anchoring fee rates, sat/vB: envelopes start at bitcoind's estimate for
    /// `fee_conf_target` blocks, never below this (and at this when there is no estimate).
    pub fee_rate_sat_vb: u64,
    /// Ceiling of anchoring fee rates (the starting rate and bumps), sat/vB.
    pub max_fee_rate_sat_vb: u64,
    /// Confirmation target asked of bitcoind's fee estimator, in blocks.
    pub fee_conf_target: u16,
    /// Blocks an envelope may stay unconfirmed before its fee is bumped.
    pub bump_after_blocks: u64,
    /// Mempool bounds.
    pub mempool: MempoolConfig,
    /// bitcoind connection.
    pub bitcoind: BitcoindConfig,
    /// Fault mode (testing only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultConfig>,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        Self {
            data_dir: DEFAULT_DATA_DIR.into(),
            genesis: DEFAULT_GENESIS_FILE.into(),
            anchor_key: DEFAULT_ANCHOR_KEY_FILE.into(),
            rpc_addr: DEFAULT_RPC_ADDR
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7545))),
            admin_token: None,
            admin_token_file: None,
            batch_interval_ms: DEFAULT_BATCH_INTERVAL_MS,
            max_batch_txs: None,
            max_batch_bytes: None,
            min_fee: DEFAULT_MIN_FEE,
            l1_origin_depth: DEFAULT_L1_ORIGIN_DEPTH,
            max_group_commit: DEFAULT_MAX_GROUP_COMMIT,
            fee_rate_sat_vb: DEFAULT_FEE_RATE_SAT_VB,
            max_fee_rate_sat_vb: DEFAULT_MAX_FEE_RATE_SAT_VB,
            fee_conf_target: DEFAULT_FEE_CONF_TARGET,
            bump_after_blocks: DEFAULT_BUMP_AFTER_BLOCKS,
            mempool: MempoolConfig::default(),
            bitcoind: BitcoindConfig::default(),
            fault: None,
        }
    }
}

impl SequencerConfig {
    /// Parse a TOML document; relative paths are resolved against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Self =
            toml::from_str(text).map_err(|e| ConfigError::Toml(e.message().to_owned()))?;
        config.resolve_paths(base);
        Ok(config)
    }

    /// Read and parse a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::from_toml(&text, base).map_err(|e| match e {
            ConfigError::Toml(reason) => ConfigError::Read {
                path: path.to_owned(),
                reason,
            },
            other => other,
        })?;
        config.read_admin_token_file()?;
        Ok(config)
    }

    /// Reads `admin_token_file` into `admin_token` (the file must be private, as key files are).
    pub fn read_admin_token_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.admin_token_file else {
            return Ok(());
        };
        if self.admin_token.is_some() {
            return Err(ConfigError::Invalid {
                field: "admin_token_file",
                reason: "set admin_token or admin_token_file, not both".into(),
            });
        }
        let read = |reason: String| ConfigError::Read {
            path: path.clone(),
            reason,
        };
        crate::keys::check_private(path, "the token file's").map_err(read)?;
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        self.admin_token = Some(Secret::new(text.trim()));
        Ok(())
    }

    /// The anchoring wallet's name.
    pub fn wallet(&self) -> &str {
        self.bitcoind.wallet_or(DEFAULT_BITCOIND_WALLET)
    }

    /// How envelopes choose their starting fee rate (floor, ceiling, confirmation target).
    pub fn fee_policy(&self) -> FeePolicy {
        FeePolicy {
            floor: FeeRate::from_sat_per_vb(self.fee_rate_sat_vb).unwrap_or(FeeRate::BROADCAST_MIN),
            ceiling: self.max_fee_rate(),
            conf_target: self.fee_conf_target,
        }
    }

    /// The ceiling of anchoring fee rates.
    pub fn max_fee_rate(&self) -> FeeRate {
        FeeRate::from_sat_per_vb(self.max_fee_rate_sat_vb).unwrap_or(FeeRate::MAX)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.genesis);
        fix(&mut self.anchor_key);
        if let Some(token) = &mut self.admin_token_file {
            fix(token);
        }
        self.bitcoind.resolve_paths(base);
    }

    /// Check every value (before anything is opened).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("batch_interval_ms", self.batch_interval_ms),
            ("fee_rate_sat_vb", self.fee_rate_sat_vb),
            ("bump_after_blocks", self.bump_after_blocks),
            ("mempool.max_nonce_gap", self.mempool.max_nonce_gap),
            ("mempool.queued_ttl_secs", self.mempool.queued_ttl_secs),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "must be greater than 0".into(),
                });
            }
        }
        let positive_sizes = [
            ("max_group_commit", self.max_group_commit),
            ("mempool.max_txs", self.mempool.max_txs),
            ("mempool.max_per_account", self.mempool.max_per_account),
            (
                "mempool.max_queued_per_account",
                self.mempool.max_queued_per_account,
            ),
            ("mempool.max_queued", self.mempool.max_queued),
        ];
        for (field, value) in positive_sizes {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "must be greater than 0".into(),
                });
            }
        }
        if self.max_batch_txs == Some(0) {
            return Err(ConfigError::Invalid {
                field: "max_batch_txs",
                reason: "must be greater than 0".into(),
            });
        }
        if self.fee_rate_sat_vb > 10_000 || self.max_fee_rate_sat_vb > 10_000 {
            return Err(ConfigError::Invalid {
                field: "max_fee_rate_sat_vb",
                reason: "above 10000 sat/vB; refusing an absurd fee".into(),
            });
        }
        if self.fee_rate_sat_vb == 0 || self.max_fee_rate_sat_vb < self.fee_rate_sat_vb {
            return Err(ConfigError::Invalid {
                field: "max_fee_rate_sat_vb",
                reason: "fee rates must be > 0 and the maximum at least the floor".into(),
            });
        }
        if self.fee_conf_target == 0 || self.fee_conf_target > 1008 {
            return Err(ConfigError::Invalid {
                field: "fee_conf_target",
                reason: "must be between 1 and 1008 blocks".into(),
            });
        }
        if let Some(fault) = self.fault {
            if fault.batch == 0 {
                return Err(ConfigError::Invalid {
                    field: "fault.batch",
                    reason: "batch numbers start at 1".into(),
                });
            }
            match (fault.mode, fault.account) {
                (FaultMode::Censor, None) => {
                    return Err(ConfigError::Invalid {
                        field: "fault.account",
                        reason: "the censor fault needs the account to censor".into(),
                    })
                }
                (FaultMode::Censor, Some(_)) | (_, None) => {}
                (_, Some(_)) => {
                    return Err(ConfigError::Invalid {
                        field: "fault.account",
                        reason: "only the censor fault takes an account".into(),
                    })
                }
            }
        }
        if let Some(token) = &self.admin_token {
            if token.expose().len() < 16 {
                return Err(ConfigError::Invalid {
                    field: "admin_token",
                    reason: "must be at least 16 characters".into(),
                });
            }
        }
        self.bitcoind
            .check()
            .map_err(|(field, reason)| ConfigError::Invalid { field, reason })
    }

    /// The batch interval.
    pub fn batch_interval(&self) -> Duration {
        Duration::from_millis(self.batch_interval_ms)
    }

    /// The bitcoind poll interval.
    pub fn poll_interval(&self) -> Duration {
        self.bitcoind.poll_interval()
    }
}

/// Command-line flags of `stint sequencer` (flatten into the CLI's subcommand). Each flag also
/// reads its `STINT_*` environment variable and overrides the config file.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SequencerArgs {
    /// TOML config file.
    #[arg(long, env = "STINT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory.
    #[arg(long, env = "STINT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Genesis JSON file.
    #[arg(long, env = "STINT_GENESIS", value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// Anchor key file.
    #[arg(long, env = "STINT_ANCHOR_KEY", value_name = "FILE")]
    pub anchor_key: Option<PathBuf>,
    /// JSON-RPC listen address.
    #[arg(long, env = "STINT_RPC_ADDR", value_name = "ADDR")]
    pub rpc_addr: Option<SocketAddr>,
    /// Bearer token of admin methods.
    #[arg(long, env = "STINT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Milliseconds between batches.
    #[arg(long, env = "STINT_BATCH_INTERVAL_MS", value_name = "MS")]
    pub batch_interval_ms: Option<u64>,
    /// bitcoind JSON-RPC URL.
    #[arg(long, env = "STINT_BITCOIND_RPC", value_name = "URL")]
    pub bitcoind_rpc: Option<String>,
    /// bitcoind cookie file.
    #[arg(long, env = "STINT_BITCOIND_COOKIE", value_name = "FILE")]
    pub bitcoind_cookie: Option<PathBuf>,
    /// bitcoind RPC user.
    #[arg(long, env = "STINT_BITCOIND_USER")]
    pub bitcoind_user: Option<String>,
    /// bitcoind RPC password.
    #[arg(long, env = "STINT_BITCOIND_PASSWORD", hide_env_values = true)]
    pub bitcoind_password: Option<Secret>,
    /// bitcoind wallet funding the anchors.
    #[arg(long, env = "STINT_BITCOIND_WALLET")]
    pub bitcoind_wallet: Option<String>,
    /// Misbehave on purpose (watchtower and censorship-resistance testing).
    #[arg(long, env = "STINT_FAULT", value_enum)]
    pub fault: Option<FaultMode>,
    /// The batch number to misbehave at (required but for `censor`, which starts at once).
    #[arg(long, env = "STINT_FAULT_BATCH", requires = "fault", value_name = "N")]
    pub fault_batch: Option<u64>,
    /// The account `--fault censor` censors.
    #[arg(
        long,
        env = "STINT_FAULT_ACCOUNT",
        requires = "fault",
        value_name = "ADDR"
    )]
    pub fault_account: Option<AccountId>,
}

impl SequencerArgs {
    /// The config file (if any) with the flags and environment applied, validated.
    pub fn load(&self) -> Result<SequencerConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => SequencerConfig::from_file(path)?,
            None => SequencerConfig::default(),
        };
        self.apply(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// Override `config` with every flag given.
    pub fn apply(&self, config: &mut SequencerConfig) {
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &self.genesis {
            config.genesis = v.clone();
        }
        if let Some(v) = &self.anchor_key {
            config.anchor_key = v.clone();
        }
        if let Some(v) = self.rpc_addr {
            config.rpc_addr = v;
        }
        if let Some(v) = &self.admin_token {
            config.admin_token = Some(Secret::new(v.clone()));
        }
        if let Some(v) = self.batch_interval_ms {
            config.batch_interval_ms = v;
        }
        if let Some(v) = &self.bitcoind_rpc {
            config.bitcoind.rpc_url = v.clone();
        }
        if let Some(v) = &self.bitcoind_cookie {
            config.bitcoind.cookie_file = Some(v.clone());
        }
        if let Some(v) = &self.bitcoind_user {
            config.bitcoind.user = Some(v.clone());
        }
        if let Some(v) = &self.bitcoind_password {
            config.bitcoind.password = Some(v.clone());
        }
        if let Some(v) = &self.bitcoind_wallet {
            config.bitcoind.wallet = Some(v.clone());
        }
        if let Some(mode) = self.fault {
            let batch = match (mode, self.fault_batch) {
                (_, Some(batch)) => batch,
                (FaultMode::Censor, None) => 1,
                // Refused by `validate` with the field's name.
                (_, None) => 0,
            };
            config.fault = Some(FaultConfig {
                mode,
                batch,
                account: self.fault_account,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_validates_and_shows_the_defaults() {
        let text = include_str!("../../examples/sequencer.toml");
        let config = SequencerConfig::from_toml(text, Path::new("/etc/stint")).unwrap();
        config.validate().unwrap();
        let defaults = SequencerConfig::default();
        assert_eq!(config.rpc_addr, defaults.rpc_addr);
        assert_eq!(config.batch_interval_ms, defaults.batch_interval_ms);
        assert_eq!(config.min_fee, defaults.min_fee);
        assert_eq!(config.l1_origin_depth, defaults.l1_origin_depth);
        assert_eq!(config.max_group_commit, defaults.max_group_commit);
        assert_eq!(config.mempool, defaults.mempool);
        assert_eq!(config.bitcoind.rpc_url, defaults.bitcoind.rpc_url);
        assert_eq!(config.wallet(), defaults.wallet());
        assert_eq!(
            config.bitcoind.poll_interval_ms,
            defaults.bitcoind.poll_interval_ms
        );
        assert_eq!(config.fee_rate_sat_vb, defaults.fee_rate_sat_vb);
        assert_eq!(config.bump_after_blocks, defaults.bump_after_blocks);
        assert_eq!(config.data_dir, PathBuf::from("/etc/stint/stint-sequencer"));
        assert_eq!(config.anchor_key, PathBuf::from("/etc/stint/anchor.key"));
    }

    #[test]
    fn defaults_fill_missing_fields_and_paths_are_relative_to_the_file() {
        let config = SequencerConfig::from_toml(
            "genesis = \"g.json\"\n[bitcoind]\ncookie_file = \"/c/.cookie\"\nnetwork = \"signet\"\n",
            Path::new("/etc/stint"),
        )
        .unwrap();
        assert_eq!(config.genesis, PathBuf::from("/etc/stint/g.json"));
        assert_eq!(config.data_dir, PathBuf::from("/etc/stint/stint-sequencer"));
        assert_eq!(config.rpc_addr.to_string(), DEFAULT_RPC_ADDR);
        assert_eq!(config.batch_interval_ms, DEFAULT_BATCH_INTERVAL_MS);
        assert_eq!(config.bitcoind.cookie_file, Some("/c/.cookie".into()));
        assert_eq!(config.bitcoind.network, bitcoin::Network::Signet);
        config.validate().unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_clearly() {
        let err = SequencerConfig::from_toml("batch_intervall_ms = 5", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_intervall_ms"), "{err}");
        let err = SequencerConfig::from_toml("[fault]\nmode = \"lie\"\nbatch = 1", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lie"), "{err}");
        let mut config = SequencerConfig::default();
        assert!(config.validate().is_err(), "no bitcoind auth");
        config.bitcoind.user = Some("u".into());
        config.bitcoind.password = Some(Secret::new("p"));
        config.validate().unwrap();
        config.batch_interval_ms = 0;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("batch_interval_ms"));
    }

    #[test]
    fn the_bitcoind_password_never_shows() {
        let password = "hunter2-very-secret";
        let args = SequencerArgs {
            bitcoind_user: Some("u".into()),
            bitcoind_password: Some(password.parse().unwrap()),
            ..SequencerArgs::default()
        };
        let mut config = SequencerConfig::default();
        args.apply(&mut config);
        let secret = config.bitcoind.password.as_ref().unwrap();
        assert_eq!(secret.expose(), password);
        assert_eq!(format!("{secret}"), "<redacted>");
        for shown in [
            format!("{args:?}"),
            format!("{config:?}"),
            format!("{config:#?}"),
        ] {
            assert!(!shown.contains(password), "password leaked: {shown}");
        }
    }

    #[test]
    fn the_censor_fault_needs_an_account_and_only_it_takes_one() {
        let account =
            AccountId::from_signing_key(&k256::schnorr::SigningKey::from_bytes(&[5; 32]).unwrap());
        let with = |mode, account| SequencerConfig {
            fault: Some(FaultConfig {
                mode,
                batch: 1,
                account,
            }),
            bitcoind: BitcoindConfig {
                cookie_file: Some("/c/.cookie".into()),
                ..BitcoindConfig::default()
            },
            ..SequencerConfig::default()
        };
        with(FaultMode::Censor, Some(account)).validate().unwrap();
        let err = with(FaultMode::Censor, None).validate().unwrap_err();
        assert!(err.to_string().contains("fault.account"), "{err}");
        let err = with(FaultMode::Overdraft, Some(account))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("fault.account"), "{err}");
        // From the command line: `--fault censor --fault-account ADDR`, no batch needed.
        let args = SequencerArgs {
            fault: Some(FaultMode::Censor),
            fault_account: Some(account),
            ..SequencerArgs::default()
        };
        let mut config = SequencerConfig::default();
        args.apply(&mut config);
        assert_eq!(
            config.fault,
            Some(FaultConfig {
                mode: FaultMode::Censor,
                batch: 1,
                account: Some(account)
            })
        );
        // A TOML `[fault]` table may leave `batch` out.
        let parsed: SequencerConfig = toml::from_str(&format!(
            "[fault]\nmode = \"censor\"\naccount = \"{}\"\n",
            account.to_address()
        ))
        .unwrap();
        assert_eq!(parsed.fault, config.fault);
    }

    #[test]
    fn flags_override_the_file() {
        let mut config = SequencerConfig::default();
        let args = SequencerArgs {
            batch_interval_ms: Some(50),
            fault: Some(FaultMode::Overdraft),
            fault_batch: Some(2),
            ..SequencerArgs::default()
        };
        args.apply(&mut config);
        assert_eq!(config.batch_interval_ms, 50);
        assert_eq!(
            config.fault,
            Some(FaultConfig {
                mode: FaultMode::Overdraft,
                batch: 2,
                account: None,
            })
        );
    }

    #[test]
    fn a_serialized_config_reads_back_as_itself() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("admin.token");
        std::fs::write(&token, "0123456789abcdef-token\n").unwrap();
        let mut config = SequencerConfig {
            admin_token_file: Some(token.clone()),
            fault: Some(FaultConfig {
                mode: FaultMode::BadCheckpoint,
                batch: 3,
                account: None,
            }),
            ..SequencerConfig::default()
        };
        config.bitcoind.cookie_file = Some(dir.path().join(".cookie"));
        config.bitcoind.wallet = Some("w".into());
        config.data_dir = dir.path().join("data");
        config.genesis = dir.path().join("genesis.json");
        config.anchor_key = dir.path().join("anchor.key");
        let text = toml::to_string(&config).unwrap();
        let path = dir.path().join("sequencer.toml");
        std::fs::write(&path, &text).unwrap();

        // The token file must be private.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = SequencerConfig::from_file(&path).unwrap_err().to_string();
            assert!(err.contains("0600"), "{err}");
            std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let back = SequencerConfig::from_file(&path).unwrap();
        assert_eq!(
            back.admin_token.as_ref().map(Secret::expose),
            Some("0123456789abcdef-token")
        );
        config.admin_token = back.admin_token.clone();
        assert_eq!(back, config);
        back.validate().unwrap();

        // A token given both ways is refused.
        std::fs::write(&path, format!("admin_token = \"0123456789abcdef\"\n{text}")).unwrap();
        assert!(SequencerConfig::from_file(&path).is_err());
    }
}
