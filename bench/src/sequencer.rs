//! Benchmark 2: sequencer throughput and latency to `soft` over JSON-RPC.
//!
//! A real [`Sequencer`] (RocksDB in a temporary folder, a regtest bitcoind for its view of L1)
//! runs on its own tokio runtime in this process; `N` closed-loop clients run on a second
//! runtime, each with its own HTTP connection, sending JSON-RPC **batch requests** of
//! [`REQUEST_TXS`] `stint_sendRawTransaction` calls and waiting for the answers (the sequencer
//! answers once the txs are durable) before sending the next. All txs are signed and all request
//! bodies serialized before the clock starts, so the clients' work is HTTP and JSON parsing only.
//!
//! - **Throughput**: txs sealed (`soft`) per second from the first request to the moment the
//!   sequencer's `stint_sequencer_txs_sealed_total` covers every tx sent.
//! - **Latency to `soft`**: for one tx of every request, the client subscribes over WebSocket to
//!   its `txStatus` (filter `{txid}`) before sending the request; the latency is from just before
//!   the request to the `soft` notification.
//!
//! Each measurement point starts a fresh sequencer on a fresh genesis (its own anchor key, so a
//! point never sees another's batches). The anchoring loop follows L1 once at start and then
//! polls only every [`ANCHOR_POLL_MS`]: during a point nothing is anchored, so the figures are
//! admission, sealing and persistence. Anchoring costs one envelope per batch; its bytes are
//! benchmark 5. Batches are sealed every [`BATCH_INTERVAL_MS`] (the sequencer's default is
//! 1,000 ms; the short interval is what a latency target in milliseconds needs).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stint_anchor::{RegtestNode, RpcError};
use stint_contracts::{AccountId, SignedTx};
use stint_protocol::Genesis;
use stint_sequencer::{Sequencer, SequencerConfig};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{Measure, Row, Target};
use crate::signatures::SigCeiling;
use crate::workload::Accounts;

/// Txs per JSON-RPC batch request.
pub const REQUEST_TXS: usize = 64;
/// The benchmark sequencer's `batch_interval_ms`.
pub const BATCH_INTERVAL_MS: u64 = 20;
/// The anchoring loop's poll interval during the benchmark.
pub const ANCHOR_POLL_MS: u64 = 120_000;
/// Sustained throughput must reach this fraction of the all-thread signature ceiling.
pub const CEILING_TARGET: f64 = 0.5;
/// p99 latency to `soft` must stay below this, in milliseconds.
pub const P99_TARGET_MS: f64 = 50.0;
/// How long to wait for the last txs to be sealed after the last answer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Sizes of the sequencer benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencerParams {
    /// Txs sent per measurement point (per workload and client count).
    pub txs: usize,
    /// Client counts to measure (the concurrency sweep).
    pub clients: Vec<usize>,
}

/// One measurement point.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPoint {
    /// Workload name.
    pub workload: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Txs sent (all were admitted and sealed).
    pub txs: usize,
    /// Seconds from the first request until every tx was sealed.
    pub seconds: f64,
    /// Sealed txs per second.
    pub tx_per_sec: f64,
    /// Latency to `soft`, median, in milliseconds.
    pub p50_ms: f64,
    /// Latency to `soft`, 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Latency samples taken.
    pub samples: usize,
    /// Batches the sequencer sealed.
    pub batches: u64,
    /// Seconds the sequencer spent sealing (from its metrics; the sealer is one thread).
    pub seal_secs: f64,
    /// … of which executing and merkleizing.
    pub build_secs: f64,
    /// … of which the synced database write.
    pub commit_secs: f64,
    /// Seconds the admission log writer spent in synced group writes (one thread).
    pub log_secs: f64,
}

impl LoadPoint {
    /// Where the sequencer's two serial stages spent the run (a stage busy ~100 % of the run is
    /// the bottleneck).
    pub fn note(&self) -> String {
        let pct = |secs: f64| 100.0 * secs / self.seconds.max(1e-9);
        format!(
            "sequencer {}, {} clients: sealing busy {:.0} % of the run ({:.0} % building, {:.0} % \
             synced writes; {:.2} ms per batch of {:.0} txs on average), admission log writer busy \
             {:.0} %",
            self.workload,
            self.clients,
            pct(self.seal_secs),
            pct(self.build_secs),
            pct(self.commit_secs),
            1e3 * self.seal_secs / self.batches.max(1) as f64,
            self.txs as f64 / self.batches.max(1) as f64,
            pct(self.log_secs),
        )
    }

    /// The table rows of this point, against the signature ceiling.
    pub fn rows(&self, ceiling: &SigCeiling) -> Vec<Row> {
        let id = format!("sequencer.{}.{}", self.workload, self.clients);
        vec![
            Row::new(
                format!("{id}.tps"),
                format!(
                    "sequencer {} over JSON-RPC, {} clients ({} txs, {} batches)",
                    self.workload, self.clients, self.txs, self.batches
                ),
                Measure::new(self.tx_per_sec, "tx/s"),
            )
            .against(
                format!("sig ceiling, {} threads", ceiling.threads),
                Measure::new(ceiling.all, "sig/s"),
            )
            .with_target(Target::AtLeast(CEILING_TARGET)),
            Row::new(
                format!("{id}.p50"),
                format!("  latency to soft, p50 ({} samples)", self.samples),
                Measure::new(self.p50_ms, "ms"),
            ),
            Row::new(
                format!("{id}.p99"),
                "  latency to soft, p99",
                Measure::new(self.p99_ms, "ms"),
            )
            .with_target(Target::ValueAtMost(P99_TARGET_MS)),
        ]
    }
}

/// A regtest bitcoind and the runtimes of one benchmark.
struct Bench {
    node: RegtestNode,
    dir: tempfile::TempDir,
    /// Runs the sequencer (and bitcoind calls of the setup).
    node_rt: tokio::runtime::Runtime,
    /// Runs the clients.
    load_rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

/// Measure every workload at every client count of `params`.
pub fn measure(
    params: &SequencerParams,
    accounts: &Accounts,
    workloads: &[(&str, Vec<SignedTx>)],
) -> anyhow::Result<Vec<LoadPoint>> {
    let node_rt = runtime("stint-seq", 2)?;
    let load_rt = runtime("bench-client", 2)?;
    let dir = tempfile::tempdir()?;
    let node = node_rt
        .block_on(RegtestNode::start(dir.path().join("bitcoind")))
        .context("starting a regtest bitcoind (set STINT_BITCOIND or run scripts/bitcoind.sh)")?;
    node_rt.block_on(async {
        let wallet = node.client().ensure_wallet("stint").await?;
        let to = wallet.get_new_address(bitcoin::Network::Regtest).await?;
        wallet.generate_to_address(10, &to).await?;
        Ok::<_, RpcError>(())
    })?;
    let bench = Bench {
        node,
        dir,
        node_rt,
        load_rt,
        http: reqwest::Client::new(),
    };
    let index: HashMap<AccountId, usize> = accounts
        .ids()
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let mut points = Vec::new();
    let mut seed = 1u8;
    for (name, txs) in workloads {
        let txs = &txs[..params.txs.min(txs.len())];
        for &clients in &params.clients {
            seed = seed.wrapping_add(1).max(1);
            let point = bench.point(name, accounts, &index, txs, clients, seed)?;
            eprintln!(
                "    sequencer {name}, {clients} clients: {:.0} tx/s, soft p50 {:.1} ms, p99 {:.1} ms",
                point.tx_per_sec, point.p50_ms, point.p99_ms
            );
            points.push(point);
        }
    }
    Ok(points)
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .context("building a tokio runtime")
}

impl Bench {
    /// One point: a fresh sequencer, `clients` clients sending `txs`.
    fn point(
        &self,
        workload: &str,
        accounts: &Accounts,
        index: &HashMap<AccountId, usize>,
        txs: &[SignedTx],
        clients: usize,
        seed: u8,
    ) -> anyhow::Result<LoadPoint> {
        let clients = clients.max(1);
        let folder = self.dir.path().join(format!("{workload}-{clients}-{seed}"));
        std::fs::create_dir_all(&folder)?;
        let config = self.write_config(&folder, accounts, seed)?;
        let sequencer = self.node_rt.block_on(Sequencer::start(config))?;
        let url = format!("http://{}", sequencer.rpc_addr());
        let result = self.load(&url, index, txs, clients);
        self.node_rt.block_on(sequencer.shutdown())?;
        let mut point = result?;
        point.workload = workload.to_owned();
        Ok(point)
    }

    /// Genesis, anchor key and config of one point's sequencer.
    fn write_config(
        &self,
        folder: &Path,
        accounts: &Accounts,
        seed: u8,
    ) -> anyhow::Result<SequencerConfig> {
        let info = self
            .node_rt
            .block_on(self.node.client().get_blockchain_info())?;
        let secret = SecretKey::from_slice(&[seed; 32])?;
        let anchor = Keypair::from_secret_key(&Secp256k1::new(), &secret);
        let template = accounts.genesis()?;
        let genesis = Genesis::new(
            template.chain_id,
            anchor.x_only_public_key().0,
            template.fee_recipient,
            template.alloc,
            info.blocks,
            info.bestblockhash,
        );
        let genesis_file = folder.join("genesis.json");
        std::fs::write(&genesis_file, genesis.to_json())?;
        let key_file = folder.join("anchor.key");
        std::fs::write(&key_file, hex::encode(secret.secret_bytes()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
        let mut config = SequencerConfig {
            data_dir: folder.join("data"),
            genesis: genesis_file,
            anchor_key: key_file,
            rpc_addr: "127.0.0.1:0".parse()?,
            batch_interval_ms: BATCH_INTERVAL_MS,
            ..SequencerConfig::default()
        };
        config.bitcoind.rpc_url = self.node.rpc_url();
        config.bitcoind.cookie_file = Some(self.node.cookie_file());
        config.bitcoind.poll_interval_ms = ANCHOR_POLL_MS;
        config.mempool.max_txs = config.mempool.max_txs.max(accounts.len() * 64);
        config.validate()?;
        Ok(config)
    }

    /// Drive `clients` closed-loop clients over `txs` against the sequencer at `url`.
    fn load(
        &self,
        url: &str,
        index: &HashMap<AccountId, usize>,
        txs: &[SignedTx],
        clients: usize,
    ) -> anyhow::Result<LoadPoint> {
        // Each client takes the txs of its own senders, in order (so each account's nonces
        // arrive in order), cut into requests.
        let mut streams: Vec<Vec<&SignedTx>> = vec![Vec::new(); clients];
        for tx in txs {
            let sender = index.get(&tx.tx.from).copied().unwrap_or(0);
            if let Some(stream) = streams.get_mut(sender % clients) {
                stream.push(tx);
            }
        }
        let plans: Vec<Vec<Request>> = streams
            .iter()
            .map(|stream| stream.chunks(REQUEST_TXS).map(Request::new).collect())
            .collect();
        let ws_url = format!("{}/ws", url.replacen("http://", "ws://", 1));
        let http = self.http.clone();
        let url = url.to_owned();
        let total = txs.len();
        self.load_rt.block_on(async move {
            wait_for_l1(&url).await?;
            let sealed_before = metric(&http, &url, "stint_sequencer_txs_sealed_total").await?;
            let batches_before =
                metric(&http, &url, "stint_sequencer_batches_sealed_total").await?;
            let started = Instant::now();
            let mut tasks = Vec::new();
            for plan in plans {
                tasks.push(tokio::spawn(run_client(url.clone(), ws_url.clone(), plan)));
            }
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.context("client task")??);
            }
            // Every tx answered: wait until the sequencer has sealed them all.
            let target = sealed_before + total as u64;
            let deadline = Instant::now() + DRAIN_TIMEOUT;
            loop {
                let sealed = metric(&http, &url, "stint_sequencer_txs_sealed_total").await?;
                if sealed >= target {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("only {} of {total} txs were sealed", sealed - sealed_before);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let elapsed = started.elapsed();
            let batches =
                metric(&http, &url, "stint_sequencer_batches_sealed_total").await? - batches_before;
            let mut busy = Vec::new();
            for name in [
                "stint_sequencer_seal_seconds_total",
                "stint_sequencer_seal_build_seconds_total",
                "stint_sequencer_seal_commit_seconds_total",
                "stint_sequencer_admission_log_seconds_total",
            ] {
                busy.push(seconds(&http, &url, name).await?);
            }
            latencies.sort();
            let percentile = |p: f64| -> f64 {
                if latencies.is_empty() {
                    return f64::NAN;
                }
                let rank = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len());
                latencies[rank - 1].as_secs_f64() * 1e3
            };
            Ok(LoadPoint {
                workload: String::new(),
                clients,
                txs: total,
                seconds: elapsed.as_secs_f64(),
                tx_per_sec: total as f64 / elapsed.as_secs_f64().max(1e-9),
                p50_ms: percentile(0.50),
                p99_ms: percentile(0.99),
                samples: latencies.len(),
                batches,
                seal_secs: busy[0],
                build_secs: busy[1],
                commit_secs: busy[2],
                log_secs: busy[3],
            })
        })
    }
}

/// One prepared batch request: its body and the txid whose latency it samples.
struct Request {
    body: String,
    count: usize,
    sample: String,
}

impl Request {
    fn new(txs: &[&SignedTx]) -> Self {
        let calls: Vec<Value> = txs
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                json!({"jsonrpc": "2.0", "id": i, "method": "stint_sendRawTransaction",
                       "params": [hex::encode(tx.encode())]})
            })
            .collect();
        Self {
            body: Value::Array(calls).to_string(),
            count: txs.len(),
            sample: txs
                .first()
                .map(|tx| tx.txid().to_string())
                .unwrap_or_default(),
        }
    }
}

/// What the WebSocket reader shares with its client.
#[derive(Default)]
struct Samples {
    /// Subscribe requests in flight: request id → who waits for the subscription id.
    subscribing: HashMap<u64, oneshot::Sender<String>>,
    /// Open sample subscriptions: subscription id → when its request was sent.
    open: HashMap<String, Instant>,
    /// Measured latencies.
    done: Vec<Duration>,
}

/// One closed-loop client: for each request, subscribe to the sample tx, send, await answers.
async fn run_client(
    url: String,
    ws_url: String,
    plan: Vec<Request>,
) -> anyhow::Result<Vec<Duration>> {
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let http = reqwest::Client::new();
    let (ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .with_context(|| format!("connecting to {ws_url}"))?;
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let samples = Arc::new(Mutex::new(Samples::default()));
    let writer = tokio::spawn(async move {
        while let Some(text) = out_rx.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });
    let reader = {
        let samples = Arc::clone(&samples);
        let out_tx = out_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(id) = value.get("id").and_then(Value::as_u64) {
                    if let (Some(waiter), Some(sub)) =
                        (s.subscribing.remove(&id), value["result"].as_str())
                    {
                        let _ = waiter.send(sub.to_owned());
                    }
                } else if value["params"]["result"]["finality"] == "soft" {
                    let sub = value["params"]["subscription"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(sent) = s.open.remove(&sub) {
                        s.done.push(sent.elapsed());
                        let _ = out_tx.send(
                            json!({"jsonrpc": "2.0", "id": 0, "method": "stint_unsubscribe",
                                   "params": [sub]})
                            .to_string(),
                        );
                    }
                }
            }
        })
    };

    for (n, request) in plan.iter().enumerate() {
        let id = n as u64 + 1;
        let (waiter, subscribed) = oneshot::channel();
        samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .subscribing
            .insert(id, waiter);
        let _ = out_tx.send(
            json!({"jsonrpc": "2.0", "id": id, "method": "stint_subscribe",
                   "params": ["txStatus", {"txid": request.sample}]})
            .to_string(),
        );
        let sub = subscribed
            .await
            .context("the txStatus subscription was not answered")?;
        let sent = Instant::now();
        samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open
            .insert(sub, sent);
        let answers: Value = http
            .post(&url)
            .header("content-type", "application/json")
            .body(request.body.clone())
            .send()
            .await?
            .json()
            .await?;
        let answers = answers
            .as_array()
            .context("a batch request answers with an array")?;
        if answers.len() != request.count {
            bail!("{} answers to {} calls", answers.len(), request.count);
        }
        if let Some(error) = answers.iter().find_map(|a| a.get("error")) {
            bail!("the sequencer refused a tx: {error}");
        }
    }
    // Wait for the last samples (bounded by the drain timeout of the caller's check).
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while !samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .open
        .is_empty()
    {
        if Instant::now() > deadline {
            bail!("latency samples never saw their tx become soft");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(out_tx);
    reader.abort();
    let _ = writer.await;
    let done = std::mem::take(&mut samples.lock().unwrap_or_else(|e| e.into_inner()).done);
    Ok(done)
}

/// Wait until the sequencer has followed L1 (it needs an L1 origin to seal).
async fn wait_for_l1(url: &str) -> anyhow::Result<()> {
    let node = stint_api::ApiClient::new(url)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = node.sync_status().await?;
        if status.l1.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the sequencer never saw an L1 block: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A counter from the sequencer's `/metrics`.
async fn metric(http: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<u64> {
    Ok(seconds(http, url, name).await? as u64)
}

/// A (possibly fractional) counter from the sequencer's `/metrics`.
async fn seconds(http: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<f64> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .with_context(|| format!("no metric {name}"))
}
