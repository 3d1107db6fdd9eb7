//! # stint-testkit
//!
//! Dev-only helpers shared by the integration tests of Stint's crates (never a dependency of
//! a shipped crate). Issue 14 asks for one place for what the tests of `cli/`, `sequencer/` and
//! `verifier/` each copied; this crate starts with what the hostile-client tests need.
//!
//! ## Key components
//!
//! - [`connect_from`] — a TCP connection from a chosen loopback source address: Linux routes all
//!   of 127.0.0.0/8 to the loopback interface, so each address is a distinct client IP to a
//!   server (per-IP limits can be tested on one machine).
//! - [`client_from`] — an HTTP client bound to such an address.
//! - [`rss_mib`] — this process's resident memory, for memory bounds under load.
//! - [`write_private`] — a key file with mode 0600; [`wait_until`] — poll until a probe holds.
//! - [`modules_in_cycles`] — the modules of a crate that import one that imports them back.
//! - [`FundedNode`] — a regtest bitcoind with a funded wallet (and more wallets on demand);
//!   [`free_port`].
//! - [`promtool_check_metrics`] — `promtool check metrics` on a node's `/metrics` text, with the
//!   [`promtool`] that `scripts/promtool.sh` finds or installs (`STINT_PROMTOOL`, `PATH`, cache).
//!
//! ## Usage
//!
//! ```no_run
//! # async fn demo(addr: std::net::SocketAddr) {
//! use std::net::Ipv4Addr;
//! let socket = stint_testkit::connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
//! assert!(stint_testkit::rss_mib() > 0);
//! # }
//! ```

mod promtool;

pub use promtool::{
    assert_exports_deploy_metrics, check_deploy_kit, deploy_metric_names, promtool,
    promtool_check_metrics,
};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `addr` from source address `ip` (any port), or `None` if it could not be
/// made (the server may refuse; the caller counts).
pub async fn connect_from(ip: Ipv4Addr, addr: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).ok()?;
    socket.connect(addr).await.ok()
}

/// An HTTP client whose connections come from `ip`, with a 60 s timeout per request.
pub fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|e| panic!("an HTTP client bound to {ip}: {e}"))
}

/// This process's resident set size in MiB (`VmRSS` of `/proc/self/status`; 0 where that is
/// not readable).
pub fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// Writes `text` to `path` with mode 0600, as the nodes require of key files.
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `timeout` (`Err(())` when
/// time runs out).
pub async fn wait_until<T, F, Fut>(timeout: Duration, mut probe: F) -> Result<T, ()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released: another process may take it first, so
/// use it at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A regtest bitcoind owned by the test, with a wallet holding mature coins. Field order
/// matters: the node stops before the caller's directory is deleted.
#[derive(Debug)]
pub struct FundedNode {
    /// The node.
    pub node: stint_anchor::RegtestNode,
    /// Its main wallet (`stint`), funded with 110 blocks' coinbases.
    pub wallet: stint_anchor::BitcoindClient,
}

impl FundedNode {
    /// Starts a node in `dir/bitcoind`, funds the `stint` wallet with 110 blocks (so coinbases
    /// are mature) and each of `extra_wallets` with 2 blocks' worth (mature under the 110).
    pub async fn start(dir: &std::path::Path, extra_wallets: &[&str]) -> FundedNode {
        let node = stint_anchor::RegtestNode::start_with(stint_anchor::RegtestConfig::new(
            dir.join("bitcoind"),
        ))
        .await
        .unwrap_or_else(|e| panic!("cannot start bitcoind: {e}"));
        let wallet = node
            .client()
            .ensure_wallet("stint")
            .await
            .unwrap_or_else(|e| panic!("wallet stint: {e}"));
        for name in extra_wallets {
            let w = node
                .client()
                .ensure_wallet(name)
                .await
                .unwrap_or_else(|e| panic!("wallet {name}: {e}"));
            let to = w
                .get_new_address(bitcoin::Network::Regtest)
                .await
                .unwrap_or_else(|e| panic!("address: {e}"));
            w.generate_to_address(2, &to)
                .await
                .unwrap_or_else(|e| panic!("mining: {e}"));
        }
        let funded = FundedNode { node, wallet };
        funded.mine(110).await;
        funded
    }

    /// Mines `n` blocks to the main wallet.
    pub async fn mine(&self, n: u64) {
        let to = self
            .wallet
            .get_new_address(bitcoin::Network::Regtest)
            .await
            .unwrap_or_else(|e| panic!("address: {e}"));
        self.wallet
            .generate_to_address(n, &to)
            .await
            .unwrap_or_else(|e| panic!("mining: {e}"));
    }

    /// The tip's height.
    pub async fn tip(&self) -> u64 {
        self.node
            .client()
            .get_block_count()
            .await
            .unwrap_or_else(|e| panic!("getblockcount: {e}"))
    }
}

/// The modules of the crate whose sources are the `*.rs` files in `src_dir` (one level, as
/// Stint's crates are laid out) that import, through `crate::<module>` paths, a module that
/// imports them back, directly or not. Test-only modules (`tests`, `*_tests`) are ignored.
/// Empty when the module graph has no cycle.
pub fn modules_in_cycles(src_dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let is_test = |m: &str| m == "tests" || m.ends_with("_tests") || m == "lib" || m == "main";
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(src_dir)? {
        let path = entry?.path();
        let Some(module) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|_| path.extension().is_some_and(|e| e == "rs"))
        else {
            continue;
        };
        if is_test(module) {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let deps = text
            .match_indices("crate::")
            .filter_map(|(at, _)| {
                let rest = text.get(at + "crate::".len()..)?;
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                (!name.is_empty() && name != module && !is_test(&name)).then_some(name)
            })
            .collect();
        graph.insert(module.to_owned(), deps);
    }
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    };
    Ok(graph.keys().filter(|m| reaches(m, m)).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_comes_from_the_chosen_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let from = Ipv4Addr::new(127, 0, 0, 7);
        let (_client, accepted) = tokio::join!(connect_from(from, addr), listener.accept());
        assert_eq!(accepted.unwrap().1.ip(), IpAddr::V4(from));
        assert!(rss_mib() > 0);
    }

    #[test]
    fn module_cycles_are_found() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("a.rs"), "use crate::b::X;").unwrap();
        std::fs::write(dir.join("b.rs"), "use crate::c::Y;").unwrap();
        std::fs::write(dir.join("c.rs"), "fn f() { crate::a::g() }").unwrap();
        std::fs::write(dir.join("d.rs"), "use crate::a::Z;").unwrap();
        std::fs::write(dir.join("tests.rs"), "use crate::d::W;").unwrap();
        assert_eq!(super::modules_in_cycles(&dir).unwrap(), ["a", "b", "c"]);
        std::fs::write(dir.join("c.rs"), "fn f() {}").unwrap();
        assert!(super::modules_in_cycles(&dir).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("stint-testkit-cycles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
