//! `stint devnet`: a whole Stint network on this machine in one command.
//!
//! It starts bitcoind in regtest (from `STINT_BITCOIND` or `PATH`, see
//! [`stint_anchor::find_bitcoind`]), funds the sequencer's and the verifier's Bitcoin wallets,
//! writes a genesis that funds the demo accounts, runs a sequencer and a verifier in this process
//! (from the same TOML configs an operator would use, written into the devnet folder), mines a
//! block every `--block-interval` seconds, and writes `DIR/devnet.json` once everything is up.
//! Ctrl-C (or SIGTERM) stops the verifier, the sequencer and bitcoind, in that order.
//!
//! The folder holds everything, so `stint devnet --dir DIR` on an existing folder resumes the same
//! chain with the same keys, state and ports — also after a SIGKILL left an orphaned bitcoind
//! behind (it is shut down and restarted on the same data directory). While a devnet runs it
//! holds the folder's lock, and a second `stint devnet` on the folder exits without touching it.
//!
//! | path in `DIR` | what |
//! | --- | --- |
//! | `devnet.json` | endpoints and accounts (DESIGN §5); removed at start, written when up |
//! | `devnet.lock` | `flock`ed by the running devnet (holds its pid): a second one is refused |
//! | `ports.json` | the JSON-RPC ports (from the flags at creation, or later); a resume keeps them |
//! | `env.sh` | `source` it: `stint` on `PATH`, `STINT_RPC`, `STINT_VERIFIER_RPC`, `STINT_BITCOIND_RPC`/`_COOKIE` (for `stint deposit`), `$ALICE`, `$ALICE_KEY`, … |
//! | `genesis.json` | the chain's genesis (written last when a folder is created) |
//! | `keys/*.json` | key files (mode 0600): demo accounts, `anchor`, `verifier`, `fees`, the bridge's `bridge-signer-1..3` |
//! | `sequencer.toml`, `verifier.toml` | the node configs (rewritten at every start) |
//! | `admin.token` | the sequencer's admin bearer token (mode 0600) |
//! | `bitcoind/`, `sequencer/`, `verifier/` | the nodes' data directories |

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::hashes::Hash as _;
use bitcoin::{BlockHash, FeeRate, Network, XOnlyPublicKey};
use rand::RngCore;
use serde_json::json;
use stint_anchor::{BitcoindClient, RegtestConfig, RegtestNode};
use stint_contracts::AccountId;
use stint_protocol::{
    Bridge, Genesis, GenesisAlloc, DEVNET_DISPUTE_WINDOW, DEVNET_SEQUENCING_WINDOW,
};
use stint_sequencer::{FaultMode, Sequencer, SequencerConfig};
use stint_verifier::{VerifierConfig, VerifierHandle};

use crate::keys::Key;

/// Default folder of `stint devnet`.
pub const DEFAULT_DEVNET_DIR: &str = "devnet";
/// Default seconds between mined blocks.
pub const DEFAULT_BLOCK_INTERVAL_SECS: u64 = 2;
/// Longest wait for the demo accounts' deposits to be credited when a devnet is created.
const FUNDING_TIMEOUT: Duration = Duration::from_secs(120);
/// Signers of the devnet's bridge federation.
pub const DEVNET_BRIDGE_SIGNERS: u32 = 3;
/// Signatures a devnet bridge payout needs.
pub const DEVNET_BRIDGE_THRESHOLD: u32 = 2;
/// The devnet bridge's `min_deposit`, sats.
pub const DEVNET_MIN_DEPOSIT: u64 = 1_000;
/// Default sequencer JSON-RPC port.
pub const DEFAULT_DEVNET_RPC_PORT: u16 = 7545;
/// Default verifier JSON-RPC port.
pub const DEFAULT_DEVNET_VERIFIER_RPC_PORT: u16 = 7546;
/// Chain id of every devnet.
pub const DEVNET_CHAIN_ID: u64 = 1337;
/// The funded demo accounts, by name.
pub const DEMO_ACCOUNTS: [&str; 4] = ["alice", "bob", "carol", "arbiter"];
/// What each demo account starts with, in units.
pub const DEMO_BALANCE: u64 = 1_000_000;
/// Milliseconds between the sequencer's batches on a devnet.
pub const DEVNET_BATCH_INTERVAL_MS: u64 = 1_000;
/// How often the devnet's nodes poll bitcoind.
pub const DEVNET_POLL_INTERVAL_MS: u64 = 250;
/// Longest the banner waits for the nodes to catch up with Bitcoin after a start.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);
/// The sequencer's Bitcoin wallet (funds anchors).
const SEQUENCER_WALLET: &str = "stint";
/// The (first) verifier's Bitcoin wallet (funds challenges); the others get `-2`, `-3`, ….
const VERIFIER_WALLET: &str = "stint-verifier";
/// Most verifiers `stint genesis` prepares.
const MAX_VERIFIERS: u8 = 16;

/// Name of the `i`-th verifier (0-based): its key file and wallet are named after it.
fn verifier_name(i: usize) -> String {
    match i {
        0 => "verifier".to_owned(),
        n => format!("verifier-{}", n.saturating_add(1)),
    }
}

fn verifier_wallet_name(i: usize) -> String {
    match i {
        0 => VERIFIER_WALLET.to_owned(),
        n => format!("{VERIFIER_WALLET}-{}", n.saturating_add(1)),
    }
}
/// Blocks mined to the verifier's wallet when a devnet is created (matured by the ones after).
const VERIFIER_FUNDING_BLOCKS: u64 = 5;
/// Blocks mined to the sequencer's wallet when a devnet is created (coinbases mature after 100).
const SEQUENCER_FUNDING_BLOCKS: u64 = 101;

/// Flags of `stint devnet`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetArgs {
    /// Folder holding the devnet (created if missing, resumed if it exists).
    #[arg(long, default_value = DEFAULT_DEVNET_DIR, value_name = "DIR")]
    pub dir: PathBuf,
    /// Seconds between mined Bitcoin blocks.
    #[arg(long, default_value_t = DEFAULT_BLOCK_INTERVAL_SECS, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub block_interval: u64,
    /// Dispute window in Bitcoin blocks (only when the devnet is created; default 6).
    #[arg(long, value_name = "BLOCKS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub dispute_window: Option<u64>,
    /// Sequencer JSON-RPC port on 127.0.0.1 [default: 7545 for a new devnet; a resumed devnet
    /// keeps the port stored in its folder].
    #[arg(long, value_name = "P")]
    pub rpc_port: Option<u16>,
    /// Verifier JSON-RPC port on 127.0.0.1 [default: 7546 for a new devnet; a resumed devnet
    /// keeps the port stored in its folder].
    #[arg(long, value_name = "P")]
    pub verifier_rpc_port: Option<u16>,
    /// Make the sequencer misbehave on purpose (to watch the verifier catch it, or, with
    /// `censor`, to watch Bitcoin defeat censorship).
    #[arg(long, value_enum, value_name = "MODE")]
    pub fault: Option<FaultMode>,
    /// The batch number to misbehave at (`censor`: from; default 1).
    #[arg(long, requires = "fault", value_name = "N", required_if_eq_any = [
        ("fault", "bad-state-root"),
        ("fault", "bad-checkpoint"),
        ("fault", "invalid-signature"),
        ("fault", "overdraft"),
    ])]
    pub fault_batch: Option<u64>,
    /// The account `--fault censor` censors: an address, or a demo account's name (`alice`,
    /// `bob`, `carol`, `arbiter`).
    #[arg(
        long,
        requires = "fault",
        value_name = "ACCOUNT",
        required_if_eq("fault", "censor")
    )]
    pub fault_account: Option<String>,
}

/// Flags of `stint genesis`: prepare a network against a bitcoind that runs elsewhere (what
/// `docker-compose.yml` does before it starts the nodes).
#[derive(Debug, Clone, clap::Args)]
pub struct GenesisArgs {
    /// Folder for the genesis, the keys and the nodes' data (created if missing). When it holds a
    /// genesis already, nothing is changed and the genesis is printed.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// bitcoind JSON-RPC URL (regtest).
    #[arg(long, value_name = "URL")]
    pub bitcoind_rpc: String,
    /// bitcoind cookie file (or give --bitcoind-user and --bitcoind-password).
    #[arg(long, value_name = "FILE", conflicts_with = "bitcoind_user")]
    pub bitcoind_cookie: Option<PathBuf>,
    /// bitcoind RPC user.
    #[arg(long, requires = "bitcoind_password")]
    pub bitcoind_user: Option<String>,
    /// bitcoind RPC password (redacted in `Debug`).
    #[arg(long, requires = "bitcoind_user", hide_env_values = true)]
    pub bitcoind_password: Option<stint_verifier::Secret>,
    /// How many verifiers to make keys and fund wallets for (`stint-verifier`, `stint-verifier-2`, …).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=MAX_VERIFIERS as i64))]
    pub verifiers: u8,
    /// Dispute window in Bitcoin blocks (default 6).
    #[arg(long, value_name = "BLOCKS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub dispute_window: Option<u64>,
}

/// `stint genesis`: fund the wallets on a running regtest bitcoind, make the keys and write the
/// genesis (once; a folder that has one is left as it is). Returns the genesis.
pub async fn run_genesis(args: &GenesisArgs) -> Result<Genesis, DevnetError> {
    let auth = match (
        &args.bitcoind_cookie,
        &args.bitcoind_user,
        &args.bitcoind_password,
    ) {
        (Some(cookie), _, _) => stint_anchor::Auth::Cookie(cookie.clone()),
        (None, Some(user), Some(password)) => stint_anchor::Auth::UserPass {
            user: user.clone(),
            password: password.expose().to_owned(),
        },
        _ => {
            return Err(DevnetError::Invalid(
                "give --bitcoind-cookie, or --bitcoind-user and --bitcoind-password".into(),
            ))
        }
    };
    let layout = Layout::create(&args.dir)?;
    let genesis_file = layout.path("genesis.json");
    if genesis_file.exists() {
        tracing::info!(target: "devnet", file = %genesis_file.display(), "the network exists already");
        return load_genesis(&genesis_file);
    }
    let client = BitcoindClient::new(args.bitcoind_rpc.clone(), auth);
    wait_for_bitcoind(&client).await?;
    let sequencer_wallet = client.ensure_wallet(SEQUENCER_WALLET).await?;
    let mut verifier_wallets = Vec::new();
    for i in 0..usize::from(args.verifiers) {
        verifier_wallets.push(client.ensure_wallet(&verifier_wallet_name(i)).await?);
    }
    create(
        &layout,
        &sequencer_wallet,
        &verifier_wallets,
        args.dispute_window,
    )
    .await
}

/// bitcoind may still be starting (in a container): retry for a while.
async fn wait_for_bitcoind(client: &BitcoindClient) -> Result<(), DevnetError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        match client.get_blockchain_info().await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why the devnet could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The flags or the folder are not usable (the user's to fix).
    #[error("{0}")]
    Invalid(String),
    /// bitcoind could not be started or stopped.
    #[error("bitcoind: {0}")]
    Bitcoind(#[from] stint_anchor::NodeError),
    /// A bitcoind RPC call failed.
    #[error("bitcoind RPC: {0}")]
    BitcoindRpc(#[from] stint_anchor::RpcError),
    /// The sequencer failed.
    #[error("sequencer: {0}")]
    Sequencer(#[from] stint_sequencer::SequencerError),
    /// The verifier failed.
    #[error("verifier: {0}")]
    Verifier(#[from] stint_verifier::VerifierError),
    /// Another devnet runs in this folder (it was left alone).
    #[error(
        "a devnet is already running in {dir}{}; it was left alone. Use it from another shell \
         (`source {dir}/env.sh`), or stop it (Ctrl-C in its terminal) before starting it again",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        dir = dir.display()
    )]
    Running {
        /// The folder.
        dir: PathBuf,
        /// The running devnet's pid, if its lock file says.
        pid: Option<u32>,
    },
    /// A file of the devnet folder could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> DevnetError + '_ {
    move |e| DevnetError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// A demo account of a devnet.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    /// Its name (`alice`, …).
    pub name: &'static str,
    /// Its account.
    pub account: AccountId,
    /// Its key file.
    pub key_file: PathBuf,
}

/// The lock file of a devnet folder; its holder's pid is written in it.
const LOCK_FILE: &str = "devnet.lock";
/// Where a devnet keeps the ports it was created with (and any given later with the flags).
const PORTS_FILE: &str = "ports.json";

/// The exclusive `flock(2)` on `DIR/devnet.lock` that a running devnet holds for its whole life.
/// The kernel drops it when the process ends, however it ends (a SIGKILL too), so a stale lock
/// never blocks a resume; bitcoind, a child, does not inherit it (Rust opens files close-on-exec).
#[derive(Debug)]
struct DevnetLock {
    _file: std::fs::File,
}

impl DevnetLock {
    fn acquire(dir: &Path) -> Result<Self, DevnetError> {
        use std::io::{Read, Seek, Write};
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(file_error(&path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(DevnetError::Running {
                    dir: dir.to_owned(),
                    pid: holder.trim().parse().ok(),
                });
            }
            Err(e) => return Err(file_error(&path)(e.into())),
        }
        file.set_len(0).map_err(file_error(&path))?;
        file.rewind().map_err(file_error(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(file_error(&path))?;
        Ok(Self { _file: file })
    }
}

/// The devnet's JSON-RPC ports, stored in `DIR/ports.json` so that a resume keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Ports {
    rpc_port: u16,
    verifier_rpc_port: u16,
}

impl Ports {
    /// The flags where given, else the folder's stored ports, else the defaults.
    fn resolve(dir: &Path, args: &DevnetArgs) -> Result<Self, DevnetError> {
        let path = dir.join(PORTS_FILE);
        let stored: Option<Ports> = match std::fs::read_to_string(&path) {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| DevnetError::File {
                path: path.clone(),
                reason: format!("{e} (delete it to go back to the default ports)"),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(file_error(&path)(e)),
        };
        let ports = Ports {
            rpc_port: args
                .rpc_port
                .or(stored.map(|p| p.rpc_port))
                .unwrap_or(DEFAULT_DEVNET_RPC_PORT),
            verifier_rpc_port: args
                .verifier_rpc_port
                .or(stored.map(|p| p.verifier_rpc_port))
                .unwrap_or(DEFAULT_DEVNET_VERIFIER_RPC_PORT),
        };
        if ports.rpc_port == ports.verifier_rpc_port {
            return Err(DevnetError::Invalid(format!(
                "--rpc-port and --verifier-rpc-port must differ (both are {})",
                ports.rpc_port
            )));
        }
        if stored.is_some_and(|s| s != ports) {
            tracing::info!(target: "devnet", rpc_port = ports.rpc_port, verifier_rpc_port = ports.verifier_rpc_port, "moving the devnet to the ports given");
        }
        Ok(ports)
    }

    /// Fails, naming the flag, when a port is taken: before bitcoind starts or a folder is made.
    fn check_free(&self) -> Result<(), DevnetError> {
        for (port, flag) in [
            (self.rpc_port, "--rpc-port"),
            (self.verifier_rpc_port, "--verifier-rpc-port"),
        ] {
            if let Err(e) = std::net::TcpListener::bind(loopback(port)) {
                return Err(DevnetError::Invalid(format!(
                    "port {port} on 127.0.0.1 is not free ({e}): stop what uses it, or pass \
                     {flag} with another port"
                )));
            }
        }
        Ok(())
    }

    fn store(&self, layout: &Layout) -> Result<(), DevnetError> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        write_atomic(&layout.path(PORTS_FILE), text.as_bytes(), false)
    }
}

/// The paths of a devnet folder.
#[derive(Debug, Clone)]
struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The devnet folder `dir` (created with its `keys/` folder if missing), by absolute path.
    fn create(dir: &Path) -> Result<Self, DevnetError> {
        std::fs::create_dir_all(dir.join("keys")).map_err(file_error(dir))?;
        let dir = dir.canonicalize().map_err(file_error(dir))?;
        Ok(Self { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    fn key(&self, name: &str) -> PathBuf {
        self.dir.join("keys").join(format!("{name}.json"))
    }
}

/// Run a devnet until `shutdown` resolves (or a node fails), then stop it cleanly.
pub async fn run_devnet(
    args: &DevnetArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DevnetError> {
    let mut devnet = Devnet::start(args).await?;
    // On a resume the nodes first log every past batch again as they re-derive the chain: the
    // banner comes once they have caught up, so it is the last thing on the screen.
    devnet.caught_up().await;
    devnet.print_banner(&args.dir);
    tokio::pin!(shutdown);
    let mut restarts: Vec<std::time::Instant> = Vec::new();
    let failed = loop {
        let failure = tokio::select! {
            () = &mut shutdown => break None,
            failure = devnet.failure() => failure,
        };
        restarts.retain(|t| t.elapsed() < BITCOIND_RESTART_PERIOD);
        match failure {
            // A dead or hung bitcoind is restarted (a few times): the nodes keep their data and
            // follow whatever chain it comes back with (a regtest node without peers flushes its
            // chain only on a clean shutdown, so after a kill it can come back lower: a reorg,
            // which the nodes handle).
            Failure::Bitcoind if restarts.len() < MAX_BITCOIND_RESTARTS => {
                restarts.push(std::time::Instant::now());
                tracing::warn!(target: "devnet", "bitcoind stopped answering; restarting it");
                match devnet.restart_bitcoind().await {
                    Ok(()) => {
                        tracing::info!(target: "devnet", "bitcoind restarted; the nodes follow it again")
                    }
                    Err(e) => {
                        break Some(format!(
                            "bitcoind stopped answering and could not be restarted: {e}"
                        ))
                    }
                }
            }
            Failure::Bitcoind => {
                break Some(format!(
                    "bitcoind stopped answering {MAX_BITCOIND_RESTARTS} times within {} minutes",
                    BITCOIND_RESTART_PERIOD.as_secs() / 60
                ))
            }
            Failure::Other(reason) => break Some(reason),
        }
    };
    tracing::info!(target: "devnet", "stopping the verifier, the sequencer and bitcoind");
    devnet.stop().await?;
    match failed {
        Some(reason) => Err(DevnetError::Invalid(reason)),
        None => Ok(()),
    }
}

/// Why the devnet cannot go on as it is.
enum Failure {
    /// bitcoind does not answer (dead or hung): restarted.
    Bitcoind,
    /// Anything else: the devnet stops.
    Other(String),
}

/// Restarts of a dead bitcoind allowed within [`BITCOIND_RESTART_PERIOD`] before the devnet
/// gives up.
const MAX_BITCOIND_RESTARTS: usize = 5;
/// See [`MAX_BITCOIND_RESTARTS`].
const BITCOIND_RESTART_PERIOD: Duration = Duration::from_secs(600);

/// A running devnet.
#[derive(Debug)]
pub struct Devnet {
    layout: Layout,
    /// Held until the devnet is dropped (the kernel releases it if the process dies).
    _lock: DevnetLock,
    node: RegtestNode,
    sequencer: Sequencer,
    verifier: VerifierHandle,
    miner: tokio::task::JoinHandle<()>,
    accounts: Vec<DemoAccount>,
    genesis: Genesis,
}

impl Devnet {
    /// Start (or resume) the devnet in `args.dir` and write `devnet.json` once it is up.
    pub async fn start(args: &DevnetArgs) -> Result<Self, DevnetError> {
        // A running devnet holds the folder's lock: say so before anything here is touched.
        let lock = if args.dir.is_dir() {
            Some(DevnetLock::acquire(&args.dir)?)
        } else {
            None
        };
        let ports = Ports::resolve(&args.dir, args)?;
        ports.check_free()?;
        let layout = Layout::create(&args.dir)?;
        let lock = match lock {
            Some(lock) => lock,
            None => DevnetLock::acquire(&layout.dir)?,
        };
        ports.store(&layout)?;
        let info = layout.path("devnet.json");
        match std::fs::remove_file(&info) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_error(&info)(e)),
            _ => {}
        }

        let node = RegtestNode::start_with(RegtestConfig::new(layout.path("bitcoind"))).await?;
        tracing::info!(target: "devnet", bitcoind = %node.bitcoind_path().display(), rpc = %node.rpc_url(), "bitcoind running");
        let client = node.client().clone();
        let sequencer_wallet = client.ensure_wallet(SEQUENCER_WALLET).await?;
        let verifier_wallet = client.ensure_wallet(VERIFIER_WALLET).await?;

        let genesis_file = layout.path("genesis.json");
        let genesis = if genesis_file.exists() {
            let genesis = load_genesis(&genesis_file)?;
            check_resume(&genesis, &client, args).await?;
            tracing::info!(target: "devnet", dir = %layout.dir.display(), "resuming the devnet");
            genesis
        } else {
            create(
                &layout,
                &sequencer_wallet,
                std::slice::from_ref(&verifier_wallet),
                args.dispute_window,
            )
            .await?
        };
        let accounts = demo_accounts(&layout)?;

        // The token stays in admin.token (0600); sequencer.toml names the file.
        ensure_admin_token(&layout)?;
        let sequencer_config = write_sequencer_config(&layout, &node, args, &ports)?;
        let verifier_config = write_verifier_config(&layout, &node, &ports)?;
        let sequencer = Sequencer::start(sequencer_config)
            .await
            .map_err(|e| port_hint(e.into(), ports.rpc_port, "--rpc-port"))?;
        let verifier = stint_verifier::start(verifier_config)
            .await
            .map_err(|e| port_hint(e.into(), ports.verifier_rpc_port, "--verifier-rpc-port"))?;

        let mining_address = sequencer_wallet.get_new_address(Network::Regtest).await?;
        let miner = tokio::spawn(mine_every(
            sequencer_wallet.clone(),
            mining_address,
            Duration::from_secs(args.block_interval),
        ));

        let devnet = Self {
            layout,
            _lock: lock,
            node,
            sequencer,
            verifier,
            miner,
            accounts,
            genesis,
        };
        devnet.fund_demo_accounts(&sequencer_wallet).await?;
        devnet.write_env()?;
        devnet.write_info()?;
        Ok(devnet)
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Fund each demo account with [`DEMO_BALANCE`] sats by a real deposit to the bridge (from
    /// the devnet's bitcoind wallet), mining until the sequencer credited them all; once per
    /// devnet (`funded` marks it done). A demo account that already holds units is skipped, so
    /// a devnet stopped while funding finishes on resume without paying twice for a credited
    /// deposit (a deposit still unconfirmed when it stopped is paid again: the account then
    /// ends with twice the amount).
    async fn fund_demo_accounts(&self, wallet: &BitcoindClient) -> Result<(), DevnetError> {
        let marker = self.layout.path("funded");
        if marker.exists() {
            return Ok(());
        }
        let script = self
            .genesis
            .bridge
            .as_ref()
            .and_then(|b| b.script_pubkey())
            .ok_or_else(|| DevnetError::Invalid("the devnet genesis has no bridge".into()))?;
        let api = stint_api::ApiClient::new(self.rpc_url())
            .map_err(|e| DevnetError::Invalid(e.to_string()))?;
        let balance = |account: AccountId| {
            let api = &api;
            async move {
                api.account(&account.to_address(), stint_api::ReadOptions::default())
                    .await
                    .map(|a| a.balance)
                    .unwrap_or(0)
            }
        };
        let fee_rate = FeeRate::from_sat_per_vb_u32(2);
        for demo in &self.accounts {
            if balance(demo.account).await > 0 {
                continue;
            }
            let (txid, vout) =
                crate::deposit::pay_bridge(wallet, &script, demo.account, DEMO_BALANCE, fee_rate)
                    .await
                    .map_err(|e| DevnetError::Invalid(e.to_string()))?;
            tracing::info!(target: "devnet", account = demo.name, outpoint = %format!("{txid}:{vout}"), sats = DEMO_BALANCE, "funding a demo account by a deposit");
        }
        let to = wallet.get_new_address(Network::Regtest).await?;
        let deadline = tokio::time::Instant::now() + FUNDING_TIMEOUT;
        loop {
            let mut done = true;
            for demo in &self.accounts {
                done &= balance(demo.account).await >= DEMO_BALANCE;
            }
            if done {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(DevnetError::Invalid(format!(
                    "the demo accounts' deposits were not credited within {} s",
                    FUNDING_TIMEOUT.as_secs()
                )));
            }
            wallet.generate_to_address(1, &to).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        flush_chain(wallet).await;
        write_atomic(
            &marker,
            b"the demo accounts were funded by deposits\n",
            false,
        )?;
        tracing::info!(target: "devnet", accounts = self.accounts.len(), sats = DEMO_BALANCE, "demo accounts funded by deposits");
        Ok(())
    }

    /// The demo accounts.
    pub fn accounts(&self) -> &[DemoAccount] {
        &self.accounts
    }

    /// The sequencer's JSON-RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.sequencer.rpc_addr())
    }

    /// The verifier's JSON-RPC URL.
    pub fn verifier_rpc_url(&self) -> String {
        format!("http://{}", self.verifier.rpc_addr())
    }

    /// Waits (at most [`CATCH_UP_TIMEOUT`]) until the sequencer's and the verifier's chain
    /// followers have reached the Bitcoin tip of now and the verifier has verified every batch
    /// the sequencer found anchored.
    async fn caught_up(&self) {
        let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
        let Ok(tip) = self.node.client().get_block_count().await else {
            return;
        };
        let (Ok(sequencer), Ok(verifier)) = (
            crate::client::RpcClient::new(self.rpc_url()),
            crate::client::RpcClient::new(self.verifier_rpc_url()),
        ) else {
            return;
        };
        let number = |v: &serde_json::Value, path: &[&str]| {
            path.iter()
                .try_fold(v, |v, key| v.get(key))
                .and_then(serde_json::Value::as_u64)
        };
        loop {
            let seq = sequencer
                .call::<serde_json::Value>("stint_syncStatus", json!([]))
                .await;
            let ver = verifier
                .call::<serde_json::Value>("stint_syncStatus", json!([]))
                .await;
            if let (Ok(seq), Ok(ver)) = (seq, ver) {
                let followed = |v: &serde_json::Value| number(v, &["l1", "height"]) >= Some(tip);
                if followed(&seq)
                    && followed(&ver)
                    && number(&ver, &["anchored", "number"])
                        >= number(&seq, &["anchored", "number"])
                {
                    return;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(target: "devnet", "the nodes are still catching up with Bitcoin");
                return;
            }
            tokio::time::sleep(Duration::from_millis(DEVNET_POLL_INTERVAL_MS)).await;
        }
    }

    /// Resolves when a part of the devnet stopped on its own (bitcoind exited, the verifier's
    /// loop ended), with the reason.
    async fn failure(&self) -> Failure {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            if self.verifier.is_finished() {
                return Failure::Other(
                    "the verifier stopped on its own (see its log above)".into(),
                );
            }
            if self.miner.is_finished() {
                return Failure::Other("the block miner stopped".into());
            }
            if self.node.client().get_block_count().await.is_err()
                && self.node.client().get_block_count().await.is_err()
            {
                return Failure::Bitcoind;
            }
        }
    }

    /// Restart bitcoind on the same data directory and ports, and load the wallets again
    /// (bitcoind does not reload wallets created over RPC).
    async fn restart_bitcoind(&mut self) -> Result<(), DevnetError> {
        self.node.restart().await?;
        let client = self.node.client().clone();
        client.ensure_wallet(SEQUENCER_WALLET).await?;
        client.ensure_wallet(VERIFIER_WALLET).await?;
        Ok(())
    }

    /// Stop the miner, the verifier, the sequencer and bitcoind, in that order.
    pub async fn stop(self) -> Result<(), DevnetError> {
        let Self {
            mut node,
            sequencer,
            verifier,
            miner,
            ..
        } = self;
        miner.abort();
        let _ = miner.await;
        let verifier_result = verifier.stop().await;
        let sequencer_result = sequencer.shutdown().await;
        node.stop().await?;
        verifier_result?;
        sequencer_result?;
        tracing::info!(target: "devnet", "stopped");
        Ok(())
    }

    fn write_info(&self) -> Result<(), DevnetError> {
        let accounts: Vec<_> = self
            .accounts
            .iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "address": a.account.to_string(),
                    "key_file": a.key_file.display().to_string(),
                })
            })
            .collect();
        let info = json!({
            "chain_id": self.genesis.chain_id,
            "rpc": self.rpc_url(),
            "verifier_rpc": self.verifier_rpc_url(),
            "bitcoind": {
                "rpc": self.node.rpc_url(),
                "cookie_file": self.node.cookie_file().display().to_string(),
                "wallet": SEQUENCER_WALLET,
            },
            "accounts": accounts,
            "dispute_window": self.genesis.dispute_window,
            "genesis": self.layout.path("genesis.json").display().to_string(),
            "admin_token_file": self.layout.path("admin.token").display().to_string(),
            "env": self.layout.path("env.sh").display().to_string(),
        });
        let text = serde_json::to_string_pretty(&info).unwrap_or_default();
        write_atomic(&self.layout.path("devnet.json"), text.as_bytes(), false)
    }

    fn write_env(&self) -> Result<(), DevnetError> {
        let bin = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        let mut out = String::from(
            "# Written by `stint devnet` at every start: `source` it to use this devnet from a shell.\n",
        );
        if let Some(bin) = bin {
            out.push_str(&format!(
                "export PATH={}:\"$PATH\"\n",
                shell_quote(&bin.display().to_string())
            ));
        }
        out.push_str(&format!(
            "export STINT_RPC={}\nexport STINT_VERIFIER_RPC={}\n",
            shell_quote(&self.rpc_url()),
            shell_quote(&self.verifier_rpc_url())
        ));
        out.push_str(&format!(
            "export STINT_DEVNET={}\n",
            shell_quote(&self.layout.dir.display().to_string())
        ));
        // For `stint deposit` (it pays from a bitcoind wallet).
        out.push_str(&format!(
            "export STINT_BITCOIND_RPC={}\nexport STINT_BITCOIND_COOKIE={}\n",
            shell_quote(&self.node.rpc_url()),
            shell_quote(&self.node.cookie_file().display().to_string())
        ));
        for a in &self.accounts {
            let upper = a.name.to_uppercase();
            out.push_str(&format!(
                "export {upper}={}\nexport {upper}_KEY={}\n",
                shell_quote(&a.account.to_string()),
                shell_quote(&a.key_file.display().to_string())
            ));
        }
        write_atomic(&self.layout.path("env.sh"), out.as_bytes(), false)
    }

    fn print_banner(&self, shown_dir: &Path) {
        let dir = shown_dir.display();
        let mut out = String::new();
        out.push_str("\nStint devnet is up.\n\n");
        out.push_str(&format!("  sequencer JSON-RPC  {}\n", self.rpc_url()));
        out.push_str(&format!(
            "  verifier JSON-RPC   {}\n",
            self.verifier_rpc_url()
        ));
        out.push_str(&format!(
            "  bitcoind (regtest)  {}  cookie {}\n",
            self.node.rpc_url(),
            self.node.cookie_file().display()
        ));
        out.push_str(&format!(
            "  chain id {}, dispute window {} blocks\n\n  accounts:\n",
            self.genesis.chain_id, self.genesis.dispute_window
        ));
        for a in &self.accounts {
            out.push_str(&format!(
                "    {:<8} {}  {}\n",
                a.name,
                a.account,
                a.key_file.display()
            ));
        }
        out.push_str(&format!(
            "\nIn another shell (from this folder):\n\n  source {dir}/env.sh\n  stint account \"$ALICE\"\n  stint --key \"$ALICE_KEY\" transfer --to \"$BOB\" --amount 1000 --wait final\n  stint status\n\nDetails in {dir}/devnet.json. Ctrl-C stops the devnet; `stint devnet --dir {dir}` resumes it.\n"
        ));
        println!("{out}");
    }
}

/// Create a new devnet in `layout`: fund the wallets, make the keys, write the genesis (last).
async fn create(
    layout: &Layout,
    sequencer_wallet: &BitcoindClient,
    verifier_wallets: &[BitcoindClient],
    dispute_window: Option<u64>,
) -> Result<Genesis, DevnetError> {
    tracing::info!(target: "devnet", dir = %layout.dir.display(), "creating a network");
    for (i, wallet) in verifier_wallets.iter().enumerate() {
        let to = wallet.get_new_address(Network::Regtest).await?;
        wallet
            .generate_to_address(VERIFIER_FUNDING_BLOCKS, &to)
            .await?;
        ensure_key(&layout.key(&verifier_name(i)))?;
    }
    let to = sequencer_wallet.get_new_address(Network::Regtest).await?;
    sequencer_wallet
        .generate_to_address(SEQUENCER_FUNDING_BLOCKS, &to)
        .await?;
    let info = sequencer_wallet.get_blockchain_info().await?;

    let anchor = ensure_key(&layout.key("anchor"))?;
    let fees = ensure_key(&layout.key("fees"))?;
    // The demo accounts are funded by real deposits once the nodes run (`fund_demo_accounts`):
    // the genesis mints nothing.
    for name in DEMO_ACCOUNTS {
        ensure_key(&layout.key(name))?;
    }
    let alloc: Vec<GenesisAlloc> = Vec::new();
    let anchor_key = XOnlyPublicKey::from_slice(&anchor.account().0)
        .map_err(|e| DevnetError::Invalid(format!("anchor key: {e}")))?;
    let mut genesis = Genesis::new(
        DEVNET_CHAIN_ID,
        anchor_key,
        fees.account(),
        alloc,
        info.blocks,
        info.bestblockhash,
    );
    genesis.dispute_window = dispute_window.unwrap_or(DEVNET_DISPUTE_WINDOW);
    // A forced tx (`--via-bitcoin`) is executed within S + c − 1 blocks even under `--fault
    // censor`: a devnet shows it in under a minute.
    genesis.sequencing_window = DEVNET_SEQUENCING_WINDOW;
    // A 2-of-3 bridge federation whose keys the devnet keeps (signing payouts is issue 16's), so
    // `stint deposit` brings bitcoin in.
    let mut signers = Vec::new();
    for i in 1..=DEVNET_BRIDGE_SIGNERS {
        let key = ensure_key(&layout.key(&format!("bridge-signer-{i}")))?;
        signers.push(
            XOnlyPublicKey::from_slice(&key.account().0)
                .map_err(|e| DevnetError::Invalid(format!("bridge key: {e}")))?,
        );
    }
    genesis.bridge = Some(Bridge {
        signers,
        threshold: DEVNET_BRIDGE_THRESHOLD,
        min_deposit: DEVNET_MIN_DEPOSIT,
    });
    genesis
        .validate()
        .map_err(|e| DevnetError::Invalid(format!("genesis: {e}")))?;
    // The genesis names this block: it must survive a crash of bitcoind.
    flush_chain(sequencer_wallet).await;
    write_atomic(
        &layout.path("genesis.json"),
        genesis.to_json().as_bytes(),
        false,
    )?;
    Ok(genesis)
}

fn load_genesis(path: &Path) -> Result<Genesis, DevnetError> {
    let text = std::fs::read_to_string(path).map_err(file_error(path))?;
    Genesis::from_json(&text).map_err(|e| DevnetError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// A resumed devnet must be the chain its folder describes.
async fn check_resume(
    genesis: &Genesis,
    client: &BitcoindClient,
    args: &DevnetArgs,
) -> Result<(), DevnetError> {
    if let Some(window) = args.dispute_window {
        if window != genesis.dispute_window {
            return Err(DevnetError::Invalid(format!(
                "this devnet was created with a dispute window of {} blocks; the genesis cannot \
                 change (drop --dispute-window, or use a new --dir)",
                genesis.dispute_window
            )));
        }
    }
    let start: BlockHash = match client.get_block_hash(genesis.l1_start_height).await {
        Ok(hash) => hash,
        Err(_) => BlockHash::all_zeros(),
    };
    if start != genesis.l1_start_hash {
        return Err(DevnetError::Invalid(format!(
            "the bitcoind data in this devnet folder does not hold the genesis block {} at height \
             {} (was bitcoind/ deleted?); use a new --dir",
            genesis.l1_start_hash, genesis.l1_start_height
        )));
    }
    Ok(())
}

fn demo_accounts(layout: &Layout) -> Result<Vec<DemoAccount>, DevnetError> {
    DEMO_ACCOUNTS
        .iter()
        .map(|name| {
            let key_file = layout.key(name);
            let key = Key::load(&key_file).map_err(|e| DevnetError::Invalid(e.to_string()))?;
            Ok(DemoAccount {
                name,
                account: key.account(),
                key_file,
            })
        })
        .collect()
}

/// The key in `path`, generated first if the file does not exist.
fn ensure_key(path: &Path) -> Result<Key, DevnetError> {
    if path.exists() {
        Key::load(path)
    } else {
        Key::generate_to(path, false).map(|(key, _)| key)
    }
    .map_err(|e| DevnetError::Invalid(e.to_string()))
}

/// Makes the sequencer's admin token once, in `admin.token` with mode 0600; the sequencer reads
/// it from there (`admin_token_file`).
fn ensure_admin_token(layout: &Layout) -> Result<(), DevnetError> {
    let path = layout.path("admin.token");
    if path.exists() {
        return Ok(());
    }
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    write_atomic(&path, hex::encode(bytes).as_bytes(), true)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The `[bitcoind]` table both devnet nodes use: the devnet's node, its cookie, `wallet`.
fn devnet_bitcoind(node: &RegtestNode, wallet: &str) -> stint_anchor::BitcoindConfig {
    stint_anchor::BitcoindConfig {
        rpc_url: node.rpc_url(),
        cookie_file: Some(node.cookie_file()),
        wallet: Some(wallet.to_owned()),
        network: bitcoin::Network::Regtest,
        poll_interval_ms: DEVNET_POLL_INTERVAL_MS,
        ..stint_anchor::BitcoindConfig::default()
    }
}

/// `config` as TOML under a header line, written to `path` (0600 when `private`).
fn write_toml(
    path: &Path,
    config: &impl serde::Serialize,
    command: &str,
    private: bool,
) -> Result<(), DevnetError> {
    let body = toml::to_string(config)
        .map_err(|e| DevnetError::Invalid(format!("{}: {e}", path.display())))?;
    let text = format!(
        "# Written by `stint devnet` at every start; `{command} --config` reads it as is.\n{body}"
    );
    write_atomic(path, text.as_bytes(), private)
}

/// Write `sequencer.toml` (the config serialized; the admin token stays in `admin.token`) and
/// load it the way `stint sequencer --config` does.
fn write_sequencer_config(
    layout: &Layout,
    node: &RegtestNode,
    args: &DevnetArgs,
    ports: &Ports,
) -> Result<SequencerConfig, DevnetError> {
    let config = SequencerConfig {
        data_dir: "sequencer".into(),
        genesis: "genesis.json".into(),
        anchor_key: "keys/anchor.json".into(),
        rpc_addr: loopback(ports.rpc_port),
        admin_token_file: Some("admin.token".into()),
        batch_interval_ms: DEVNET_BATCH_INTERVAL_MS,
        bitcoind: devnet_bitcoind(node, SEQUENCER_WALLET),
        fault: fault_config(layout, args)?,
        ..SequencerConfig::default()
    };
    let path = layout.path("sequencer.toml");
    write_toml(&path, &config, "stint sequencer", true)?;
    let config =
        SequencerConfig::from_file(&path).map_err(stint_sequencer::SequencerError::from)?;
    config
        .validate()
        .map_err(stint_sequencer::SequencerError::from)?;
    Ok(config)
}

/// The sequencer's `[fault]` from `--fault`, `--fault-batch` and `--fault-account`.
fn fault_config(
    layout: &Layout,
    args: &DevnetArgs,
) -> Result<Option<stint_sequencer::FaultConfig>, DevnetError> {
    let Some(mode) = args.fault else {
        return Ok(None);
    };
    let account = match (&args.fault_account, mode) {
        (None, FaultMode::Censor) => {
            return Err(DevnetError::Invalid(
                "--fault censor needs --fault-account (an address, or alice, bob, carol, \
                 arbiter)"
                    .into(),
            ))
        }
        (Some(_), mode) if mode != FaultMode::Censor => {
            return Err(DevnetError::Invalid(
                "--fault-account goes with --fault censor only".into(),
            ))
        }
        (None, _) => None,
        (Some(named), _) => Some(
            match DEMO_ACCOUNTS
                .iter()
                .find(|name| name.eq_ignore_ascii_case(named))
            {
                Some(name) => Key::load(&layout.key(name))
                    .map_err(|e| DevnetError::Invalid(e.to_string()))?
                    .account(),
                None => AccountId::from_address(named).map_err(|e| {
                    DevnetError::Invalid(format!(
                        "--fault-account {named}: not a demo account's name nor an address \
                         ({e})"
                    ))
                })?,
            },
        ),
    };
    let batch = match (args.fault_batch, mode) {
        (Some(batch), _) => batch,
        (None, FaultMode::Censor) => 1,
        (None, _) => {
            return Err(DevnetError::Invalid(
                "--fault needs --fault-batch N (the batch to misbehave at)".into(),
            ))
        }
    };
    Ok(Some(stint_sequencer::FaultConfig {
        mode,
        batch,
        account,
    }))
}

/// Write `verifier.toml` (the config serialized) and load it the way `stint verifier --config`
/// does.
fn write_verifier_config(
    layout: &Layout,
    node: &RegtestNode,
    ports: &Ports,
) -> Result<VerifierConfig, DevnetError> {
    let config = VerifierConfig {
        data_dir: "verifier".into(),
        genesis: "genesis.json".into(),
        rpc_addr: loopback(ports.verifier_rpc_port),
        challenge_key_file: Some("keys/verifier.json".into()),
        bitcoind: devnet_bitcoind(node, VERIFIER_WALLET),
        ..VerifierConfig::default()
    };
    let path = layout.path("verifier.toml");
    write_toml(&path, &config, "stint verifier", false)?;
    VerifierConfig::load(&path).map_err(|e| DevnetError::Verifier(e.into()))
}

/// Add a hint to a failure to bind a port.
fn port_hint(error: DevnetError, port: u16, flag: &str) -> DevnetError {
    let text = error.to_string();
    if text.contains("in use") || text.contains("AddrInUse") {
        DevnetError::Invalid(format!(
            "port {port} is in use (another devnet?): stop it or pass {flag} ({text})"
        ))
    } else {
        error
    }
}

/// Mine a block every `interval` until aborted.
async fn mine_every(wallet: BitcoindClient, to: bitcoin::Address, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match wallet.generate_to_address(1, &to).await {
            Ok(_) => {
                tracing::debug!(target: "devnet", "mined a block");
                flush_chain(&wallet).await;
            }
            Err(e) => tracing::warn!(target: "devnet", error = %e, "cannot mine a block"),
        }
    }
}

/// Make bitcoind write its chain state and block index to disk now. A regtest node without
/// peers otherwise flushes only on a clean shutdown (or after hours), so a `kill -9` took back
/// every block since it started, the genesis start block included (seen: the devnet's chain
/// then no longer held its own genesis). `gettxoutsetinfo` forces the flush
/// (`ForceFlushStateToDisk`); with `hash_type` `none` it computes nothing else.
async fn flush_chain(client: &BitcoindClient) {
    if let Err(e) = client
        .call::<serde_json::Value>("gettxoutsetinfo", json!(["none"]))
        .await
    {
        tracing::warn!(target: "devnet", error = %e, "cannot make bitcoind flush its chain to disk");
    }
}

/// Write `bytes` to `path` through a temporary file and a rename (mode 0600 when `private`).
///
/// A stale temporary file (left by a killed devnet, possibly with a wider mode or owned by a
/// symlink) is removed first and the new one is created with `create_new`, so a private file
/// always ends up 0600 whatever was there before.
fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), DevnetError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("tmp");
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(&tmp)(e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(file_error(&tmp))?;
    if private {
        // `mode` is filtered by the umask; say it explicitly.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(file_error(&tmp))?;
    }
    file.write_all(bytes).map_err(file_error(&tmp))?;
    file.sync_all().map_err(file_error(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(file_error(path))
}

/// `text` single-quoted for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn write_atomic_over_a_stale_wide_tmp_leaves_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        let tmp = path.with_extension("tmp");
        // A killed devnet left a world-readable temporary file behind.
        std::fs::write(&tmp, b"stale").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();

        write_atomic(&path, b"secret token", true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "private file has mode {mode:o}");
        assert_eq!(std::fs::read(&path).unwrap(), b"secret token");
        assert!(!tmp.exists());

        // Over an existing wide file too (the rename replaces it).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&tmp, b"stale").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_atomic(&path, b"again", true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "private file has mode {mode:o}");
        assert_eq!(std::fs::read(&path).unwrap(), b"again");

        // A public file is written whatever the stale tmp was.
        let public = dir.path().join("genesis.json");
        std::fs::write(public.with_extension("tmp"), b"stale").unwrap();
        write_atomic(&public, b"{}", false).unwrap();
        assert_eq!(std::fs::read(&public).unwrap(), b"{}");
    }
}
