//! A bitcoind regtest node owned by this process (tests and `stint devnet`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::rpc::{Auth, BitcoindClient, RpcError};

/// How long to wait for bitcoind's RPC to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// How long to wait for bitcoind to exit after RPC `stop` before killing it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors starting or stopping a regtest node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No bitcoind binary could be found.
    #[error("no bitcoind found: set STINT_BITCOIND, or run scripts/bitcoind.sh, or put bitcoind on PATH ({0})")]
    NotFound(String),
    /// The process could not be spawned or waited on.
    #[error("bitcoind process: {0}")]
    Process(#[from] std::io::Error),
    /// bitcoind exited during startup.
    #[error("bitcoind exited during startup ({status}); last log lines:\n{log}")]
    Exited {
        /// Exit status.
        status: String,
        /// Tail of debug.log.
        log: String,
    },
    /// RPC did not answer in time.
    #[error("bitcoind RPC did not come up within {0:?}: {1}")]
    Timeout(Duration, String),
    /// Another live bitcoind holds the data directory and could not be stopped.
    #[error("data directory {path} is in use by live process {pid}")]
    DatadirInUse {
        /// The data directory.
        path: PathBuf,
        /// The other process.
        pid: u32,
    },
    /// An RPC call failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

/// Settings of a [`RegtestNode`].
#[derive(Debug, Clone)]
pub struct RegtestConfig {
    /// Data directory (created if missing; reused if it exists).
    pub datadir: PathBuf,
    /// RPC port on 127.0.0.1 (0 = pick a free one).
    pub rpc_port: u16,
    /// P2P port on 127.0.0.1 (0 = pick a free one).
    pub p2p_port: u16,
    /// Extra `-arg=value` options passed to bitcoind.
    pub extra_args: Vec<String>,
    /// Path of the bitcoind binary (`None` = discover, see [`find_bitcoind`]).
    pub bitcoind: Option<PathBuf>,
}

impl RegtestConfig {
    /// Defaults for `datadir`: free ports, no extra arguments, discovered binary.
    pub fn new(datadir: impl Into<PathBuf>) -> Self {
        Self {
            datadir: datadir.into(),
            rpc_port: 0,
            p2p_port: 0,
            extra_args: Vec::new(),
            bitcoind: None,
        }
    }
}

/// Finds bitcoind: `STINT_BITCOIND`, else the folder printed by `scripts/bitcoind.sh` (which also
/// installs one if needed), else `bitcoind` on `PATH`.
pub fn find_bitcoind() -> Result<PathBuf, NodeError> {
    if let Some(path) = std::env::var_os("STINT_BITCOIND").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    // Every workspace crate sits one folder below the root. Cargo names the crate's folder at
    // run time too (tests, `cargo run`), which is right even when the binary was built from
    // another checkout sharing the target folder.
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let script = crate_dir.join("../scripts/bitcoind.sh");
    let mut reasons = Vec::new();
    if script.exists() {
        match Command::new(&script).stderr(Stdio::inherit()).output() {
            Ok(out) if out.status.success() => {
                let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                let path = Path::new(&dir).join("bitcoind");
                if path.exists() {
                    return Ok(path);
                }
                reasons.push(format!(
                    "{} printed {dir:?} without bitcoind",
                    script.display()
                ));
            }
            Ok(out) => reasons.push(format!("{} failed ({})", script.display(), out.status)),
            Err(e) => reasons.push(format!("{}: {e}", script.display())),
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let path = dir.join("bitcoind");
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    reasons.push("no bitcoind on PATH".into());
    Err(NodeError::NotFound(reasons.join("; ")))
}

/// A bitcoind in regtest mode, bound to 127.0.0.1, with cookie auth. Stopped on drop (RPC `stop`,
/// then killed after a timeout).
#[derive(Debug)]
pub struct RegtestNode {
    config: RegtestConfig,
    bitcoind: PathBuf,
    child: Option<Child>,
    client: BitcoindClient,
}

impl RegtestNode {
    /// Starts a node on `datadir` with free ports.
    pub async fn start(datadir: impl Into<PathBuf>) -> Result<Self, NodeError> {
        Self::start_with(RegtestConfig::new(datadir)).await
    }

    /// Starts a node with `config`. A data directory left by a killed run is reused (stale pid
    /// file removed; a still-running orphan bitcoind on it is shut down first).
    pub async fn start_with(mut config: RegtestConfig) -> Result<Self, NodeError> {
        let bitcoind = match &config.bitcoind {
            Some(path) => path.clone(),
            None => find_bitcoind()?,
        };
        std::fs::create_dir_all(&config.datadir)?;
        config.datadir = config.datadir.canonicalize()?;
        // Ports picked here are free when picked, but another process (a test run beside this
        // one) may bind one before bitcoind does: then bitcoind exits at once, and we try again
        // on other ports.
        let (pick_rpc, pick_p2p) = (config.rpc_port == 0, config.p2p_port == 0);
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            if pick_rpc {
                config.rpc_port = free_port()?;
            }
            if pick_p2p {
                config.p2p_port = free_port()?;
            }
            let url = format!("http://127.0.0.1:{}", config.rpc_port);
            let client = BitcoindClient::new(url, Auth::Cookie(cookie_path(&config.datadir)));
            let mut node = Self {
                config: config.clone(),
                bitcoind: bitcoind.clone(),
                child: None,
                client,
            };
            match node.launch().await {
                Ok(()) => return Ok(node),
                Err(NodeError::Exited { .. })
                    if (pick_rpc || pick_p2p) && attempt < PORT_ATTEMPTS =>
                {
                    tracing::warn!(target: "anchor::node", attempt, "bitcoind exited during startup (a port taken meanwhile?); retrying on other ports");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A client for the node (no wallet).
    pub fn client(&self) -> &BitcoindClient {
        &self.client
    }

    /// The RPC URL (`http://127.0.0.1:<port>`).
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.config.rpc_port)
    }

    /// The cookie file bitcoind writes (`<datadir>/regtest/.cookie`).
    pub fn cookie_file(&self) -> PathBuf {
        cookie_path(&self.config.datadir)
    }

    /// The data directory.
    pub fn datadir(&self) -> &Path {
        &self.config.datadir
    }

    /// The P2P port.
    pub fn p2p_port(&self) -> u16 {
        self.config.p2p_port
    }

    /// The bitcoind binary in use.
    pub fn bitcoind_path(&self) -> &Path {
        &self.bitcoind
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Stops bitcoind (RPC `stop`, then kill after a timeout) and waits for it to exit.
    pub async fn stop(&mut self) -> Result<(), NodeError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if matches!(child.try_wait(), Ok(None)) {
            // A transport error here means it is already going down.
            let _ = self.client.stop().await;
            let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if matches!(child.try_wait(), Ok(None)) {
                tracing::warn!("bitcoind did not stop within {SHUTDOWN_TIMEOUT:?}; killing it");
                let _ = child.kill();
            }
        }
        child.wait()?;
        Ok(())
    }

    /// Kills bitcoind with SIGKILL (simulates a crash; the data directory stays as left).
    pub fn kill(&mut self) -> Result<(), NodeError> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    /// Starts bitcoind again on the same data directory and ports (after [`stop`](Self::stop)
    /// or [`kill`](Self::kill)); stops it first if it is running.
    pub async fn restart(&mut self) -> Result<(), NodeError> {
        self.stop().await?;
        self.launch().await
    }

    async fn launch(&mut self) -> Result<(), NodeError> {
        clear_stale_pid(&self.config.datadir).await?;
        let mut cmd = Command::new(&self.bitcoind);
        cmd.arg("-regtest")
            .arg(format!("-datadir={}", self.config.datadir.display()))
            .arg(format!("-rpcport={}", self.config.rpc_port))
            .arg(format!("-port={}", self.config.p2p_port))
            .arg("-rpcbind=127.0.0.1")
            .arg("-rpcallowip=127.0.0.1")
            .arg(format!("-bind=127.0.0.1:{}", self.config.p2p_port))
            .arg("-server=1")
            .arg("-listen=1")
            .arg("-dnsseed=0")
            .arg("-discover=0")
            .arg("-listenonion=0")
            .arg("-fixedseeds=0")
            .arg("-txindex=1")
            .arg("-fallbackfee=0.0002")
            .arg("-printtoconsole=0")
            .arg("-rpcthreads=8")
            .arg("-rpcworkqueue=64");
        if is_knots(&self.bitcoind) {
            // Bitcoin Knots filters data-carrying scripts by default (witness-script size limit,
            // envelope data counted against -datacarriersize and at 4x weight, OP_FALSE OP_IF
            // refused); `-corepolicy` applies Bitcoin Core's default policy instead, so that
            // "standard" means what it means on the Core network.
            cmd.arg("-corepolicy=1");
        }
        // Its own process group: a Ctrl-C in the terminal reaches our process, which stops
        // bitcoind in order (after the nodes using it), instead of reaching bitcoind directly.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(&self.config.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn()?;
        tracing::debug!(pid = child.id(), datadir = %self.config.datadir.display(), "started bitcoind");
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), NodeError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(NodeError::Exited {
                        status: status.to_string(),
                        log: log_tail(&self.config.datadir),
                    });
                }
            }
            match self.client.get_blockchain_info().await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) if e.is_transient() => {
                    return Err(NodeError::Timeout(STARTUP_TIMEOUT, e.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for RegtestNode {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        // Drop cannot await: send `stop` over a plain blocking HTTP request.
        let cookie = std::fs::read_to_string(cookie_path(&self.config.datadir)).unwrap_or_default();
        let stopped = blocking_stop(self.config.rpc_port, cookie.trim()).is_ok();
        let deadline = Instant::now()
            + if stopped {
                SHUTDOWN_TIMEOUT
            } else {
                Duration::ZERO
            };
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

fn cookie_path(datadir: &Path) -> PathBuf {
    datadir.join("regtest").join(".cookie")
}

/// Launch attempts on freshly picked ports before a start gives up.
const PORT_ATTEMPTS: u32 = 3;

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn is_knots(bitcoind: &Path) -> bool {
    Command::new(bitcoind)
        .arg("-version")
        .stderr(Stdio::null())
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("Knots"))
        .unwrap_or(false)
}

fn log_tail(datadir: &Path) -> String {
    let log =
        std::fs::read_to_string(datadir.join("regtest").join("debug.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Handles a pid file left behind: if its process is gone, removes it; if it is a live bitcoind
/// on this data directory (an orphan of a killed parent), asks it to exit (SIGTERM makes bitcoind
/// shut down cleanly) and waits. The `.lock` file needs no handling: it is an flock released by
/// the kernel when its holder dies.
async fn clear_stale_pid(datadir: &Path) -> Result<(), NodeError> {
    let pid_file = datadir.join("regtest").join("bitcoind.pid");
    let Ok(text) = std::fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        let _ = std::fs::remove_file(&pid_file);
        return Ok(());
    };
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let ours =
        String::from_utf8_lossy(&cmdline).contains(&format!("-datadir={}", datadir.display()));
    if !proc_dir.exists() || !ours {
        tracing::info!(pid, "removing stale bitcoind pid file");
        let _ = std::fs::remove_file(&pid_file);
        return Ok(());
    }
    tracing::warn!(
        pid,
        "an orphaned bitcoind still runs on this data directory; stopping it"
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
    while proc_dir.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if proc_dir.exists() {
        return Err(NodeError::DatadirInUse {
            path: datadir.to_owned(),
            pid,
        });
    }
    Ok(())
}

fn blocking_stop(port: u16, cookie: &str) -> std::io::Result<()> {
    let body = r#"{"jsonrpc":"1.0","id":0,"method":"stop","params":[]}"#;
    let auth = base64(cookie.as_bytes());
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = [0u8; 64];
    let n = stream.read(&mut response)?;
    if response[..n].starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other("stop rejected"))
    }
}

fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }
}
