//! Helpers the integration tests share.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The first line of `stint devnet`'s banner.
pub(crate) const BANNER: &str = "Stint devnet is up.";
/// Longest a devnet may take to come up.
const UP_TIMEOUT: Duration = Duration::from_secs(240);

pub(crate) use stint_testkit::free_port;

/// One JSON-RPC call through the typed client (with the admin bearer token when given); panics
/// on any error.
pub(crate) async fn rpc_result(
    url: &str,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> Value {
    let mut client = stint_api::ApiClient::with_timeout(url, Duration::from_secs(30)).unwrap();
    if let Some(token) = token {
        client = client.with_bearer_token(token);
    }
    client
        .call(method, params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// [`rpc_result`] from a synchronous test.
pub(crate) fn rpc_call(url: &str, method: &str, params: Value) -> Value {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(rpc_result(url, None, method, params))
}

/// Write `text` to `path` readable by its owner only (what key files need).
/// Writes a private (0600) file; panics on failure.
pub(crate) fn write_private(path: &Path, text: &str) {
    stint_testkit::write_private(path, text).unwrap();
}

/// This crate's folder, as cargo names it when it runs the test (not as it was when the test was
/// built: a target folder shared between checkouts must not make one checkout read another's
/// files).
pub(crate) fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

/// A `stint devnet` child process.
pub(crate) struct Devnet {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
    /// Where this start's output begins in the (shared, appended) log.
    log_offset: usize,
}

impl Devnet {
    /// Starts `stint devnet --dir DIR` (with `--rpc-port`/`--verifier-rpc-port` when `ports` is
    /// given) and waits until its `devnet.json` is there.
    pub(crate) fn start(dir: &Path, ports: Option<(u16, u16)>, log: PathBuf) -> Devnet {
        Self::start_with(dir, ports, log, &[])
    }

    /// [`Devnet::start`] with more `stint devnet` flags.
    pub(crate) fn start_with(
        dir: &Path,
        ports: Option<(u16, u16)>,
        log: PathBuf,
        extra: &[&str],
    ) -> Devnet {
        let _ = std::fs::remove_file(dir.join("devnet.json"));
        let log_offset = std::fs::read(&log).map_or(0, |bytes| bytes.len());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_stint"));
        command
            .args(["devnet", "--dir"])
            .arg(dir)
            .args(["--block-interval", "1"])
            .args(extra);
        if let Some((rpc, verifier)) = ports {
            command
                .args(["--rpc-port", &rpc.to_string()])
                .args(["--verifier-rpc-port", &verifier.to_string()]);
        }
        let child = command
            .env("RUST_LOG", "info")
            .env_remove("STINT_RPC")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut devnet = Devnet {
            child: Some(child),
            dir: dir.to_owned(),
            log,
            log_offset,
        };
        devnet.wait_up();
        devnet
    }

    pub(crate) fn wait_up(&mut self) {
        let deadline = Instant::now() + UP_TIMEOUT;
        while !self.dir.join("devnet.json").exists() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("stint devnet exited early ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "devnet did not come up:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub(crate) fn info(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("devnet.json")).unwrap())
            .unwrap()
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What this start printed so far (stdout and stderr).
    pub(crate) fn log_since_start(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&bytes[self.log_offset.min(bytes.len())..]).into_owned()
    }

    /// Waits for this start's banner, then checks that no line after it is about a batch the
    /// chain had anchored (`anchored`) or finalised (`final_`) before this start: what the nodes
    /// log while they re-derive the past comes before the banner, which stays on screen.
    pub(crate) fn assert_banner_last(&self, anchored: u64, final_: u64) {
        let deadline = Instant::now() + UP_TIMEOUT;
        let text = loop {
            let text = self.log_since_start();
            if text.contains(BANNER) {
                break text;
            }
            assert!(Instant::now() < deadline, "no banner:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let after = &text[text.find(BANNER).unwrap()..];
        let number = |line: &str| -> Option<u64> {
            let rest = &line[line.find("number=")? + "number=".len()..];
            rest.split_whitespace().next()?.parse().ok()
        };
        for line in after.lines() {
            let past = match number(line) {
                Some(n) if line.contains("batch anchored") => n <= anchored,
                Some(n) if line.contains("batch final") => n <= final_,
                _ => false,
            };
            assert!(
                !past,
                "a line about a past batch after the banner: {line}\n{text}"
            );
        }
    }

    pub(crate) fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "devnet did not exit on {signal}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT first so bitcoind is stopped too.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of the devnet log ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
