//! An async JSON-RPC client for bitcoind.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{Address, Amount, Block, BlockHash, FeeRate, Transaction, Txid};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// bitcoind's "wallet already loaded" / "database already exists" error code.
const RPC_WALLET_ERROR: i64 = -4;
/// bitcoind's "wallet already loaded" error code (newer releases).
const RPC_WALLET_ALREADY_LOADED: i64 = -35;
/// bitcoind's "requested wallet does not exist or is not loaded" error code.
const RPC_WALLET_NOT_FOUND: i64 = -18;
/// bitcoind's "still warming up" error code.
pub const RPC_IN_WARMUP: i64 = -28;

/// How the client authenticates to bitcoind.
#[derive(Clone)]
pub enum Auth {
    /// Read `user:password` from bitcoind's cookie file on every request (the cookie changes
    /// whenever bitcoind restarts).
    Cookie(PathBuf),
    /// A fixed `-rpcuser`/`-rpcpassword` pair.
    UserPass {
        /// RPC user name.
        user: String,
        /// RPC password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        match self {
            Self::Cookie(path) => f.debug_tuple("Cookie").field(path).finish(),
            Self::UserPass { user, .. } => f
                .debug_struct("UserPass")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Errors talking to bitcoind.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// bitcoind could not be reached (down, restarting, cookie not yet written). Retry later.
    #[error("bitcoind unreachable: {0}")]
    Transport(String),
    /// bitcoind refused the credentials (HTTP 401).
    #[error("bitcoind rejected the RPC credentials")]
    Unauthorized,
    /// bitcoind answered with a JSON-RPC error.
    #[error("bitcoind RPC error {code} in {method}: {message}")]
    Rpc {
        /// The method called.
        method: String,
        /// bitcoind's error code (e.g. -5 not found, -26 rejected by policy, -28 warming up).
        code: i64,
        /// bitcoind's message.
        message: String,
    },
    /// bitcoind's answer could not be decoded into the expected type.
    #[error("cannot decode bitcoind's answer to {method}: {reason}")]
    Decode {
        /// The method called.
        method: String,
        /// What went wrong.
        reason: String,
    },
}

impl RpcError {
    /// Whether the error is about reaching bitcoind (a retry may succeed) rather than about the
    /// request. Warm-up answers count as transient too.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transport(_)) || self.rpc_code() == Some(RPC_IN_WARMUP)
    }

    /// The JSON-RPC error code, if bitcoind answered with one.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            Self::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn decode(method: &str, reason: impl ToString) -> Self {
        Self::Decode {
            method: method.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// `getblockchaininfo` (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct BlockchainInfo {
    /// Network name (`main`, `test`, `regtest`, …).
    pub chain: String,
    /// Height of the active tip.
    pub blocks: u64,
    /// Height of the best known header.
    pub headers: u64,
    /// Hash of the active tip.
    pub bestblockhash: BlockHash,
    /// Whether the node is still syncing.
    #[serde(rename = "initialblockdownload")]
    pub initial_block_download: bool,
}

/// `getnetworkinfo` (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkInfo {
    /// Numeric version, e.g. `290500`.
    pub version: u64,
    /// User agent, e.g. `/Satoshi:29.0.0/` or `/Satoshi:29.5.0/Knots:20260508/`.
    pub subversion: String,
}

impl NetworkInfo {
    /// Whether the node is Bitcoin Knots (whose default relay policy differs from Core's).
    pub fn is_knots(&self) -> bool {
        self.subversion.contains("Knots")
    }
}

#[derive(Debug, Deserialize)]
struct AncestorEntry {
    ancestorcount: u64,
}

#[derive(Debug, Deserialize)]
struct GeneratedBlock {
    hash: BlockHash,
}

/// `getblockheader` with verbose output (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct BlockHeaderInfo {
    /// Block hash.
    pub hash: BlockHash,
    /// Height.
    pub height: u64,
    /// Confirmations (-1 if not on the active chain).
    pub confirmations: i64,
    /// Block time (seconds since the epoch).
    pub time: u64,
    /// Parent hash (absent for genesis).
    #[serde(rename = "previousblockhash")]
    pub previous_block_hash: Option<BlockHash>,
}

/// `gettransaction` (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct WalletTransaction {
    /// Confirmations: 0 unconfirmed, negative when conflicted with a confirmed transaction.
    pub confirmations: i64,
    /// Block the transaction is in, if confirmed.
    #[serde(rename = "blockhash")]
    pub block_hash: Option<BlockHash>,
    /// Height of that block.
    #[serde(rename = "blockheight")]
    pub block_height: Option<u64>,
    /// The raw transaction (hex).
    pub hex: String,
}

/// `testmempoolaccept` result for one transaction.
#[derive(Debug, Clone, Deserialize)]
pub struct MempoolAcceptResult {
    /// The transaction id.
    pub txid: Txid,
    /// Whether the mempool would accept it (absent, hence `false`, when package validation
    /// stopped before this transaction).
    #[serde(default)]
    pub allowed: bool,
    /// Why not, if rejected.
    #[serde(rename = "reject-reason")]
    pub reject_reason: Option<String>,
    /// Package-level error, if the package as a whole failed.
    #[serde(rename = "package-error")]
    pub package_error: Option<String>,
}

/// `getmempoolentry` (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct MempoolEntry {
    /// Virtual size.
    pub vsize: u64,
    /// Fees.
    pub fees: MempoolFees,
}

/// Fee figures of a mempool entry.
#[derive(Debug, Clone, Deserialize)]
pub struct MempoolFees {
    /// The transaction's own fee.
    #[serde(with = "bitcoin::amount::serde::as_btc")]
    pub base: Amount,
}

/// `fundrawtransaction` result.
#[derive(Debug, Clone, Deserialize)]
pub struct FundedTransaction {
    /// The funded, unsigned transaction (hex).
    pub hex: String,
    /// Fee paid.
    #[serde(with = "bitcoin::amount::serde::as_btc")]
    pub fee: Amount,
    /// Position of the change output, -1 if none.
    #[serde(rename = "changepos")]
    pub change_position: i64,
}

#[derive(Debug, Deserialize)]
struct SignedTransaction {
    hex: String,
    complete: bool,
}

#[derive(Debug, Deserialize)]
struct SmartFee {
    #[serde(rename = "feerate")]
    fee_rate: Option<f64>,
}

#[derive(Deserialize)]
struct Response {
    result: Option<Value>,
    error: Option<ResponseError>,
}

#[derive(Deserialize)]
struct ResponseError {
    code: i64,
    message: String,
}

/// An async JSON-RPC client for one bitcoind (optionally scoped to one wallet). Cheap to clone.
#[derive(Clone, Debug)]
pub struct BitcoindClient {
    http: reqwest::Client,
    base_url: String,
    wallet: Option<String>,
    auth: Auth,
    next_id: Arc<AtomicU64>,
}

impl BitcoindClient {
    /// A client for bitcoind at `url` (e.g. `http://127.0.0.1:18443`).
    pub fn new(url: impl Into<String>, auth: Auth) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let base_url = url.into().trim_end_matches('/').to_owned();
        Self {
            http,
            base_url,
            wallet: None,
            auth,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The same connection, scoped to wallet `name` (requests go to `/wallet/<name>`).
    pub fn with_wallet(&self, name: impl Into<String>) -> Self {
        Self {
            wallet: Some(name.into()),
            ..self.clone()
        }
    }

    /// The wallet this client is scoped to, if any.
    pub fn wallet(&self) -> Option<&str> {
        self.wallet.as_deref()
    }

    /// bitcoind's base URL (without wallet path).
    pub fn url(&self) -> &str {
        &self.base_url
    }

    fn credentials(&self) -> Result<(String, String), RpcError> {
        match &self.auth {
            Auth::UserPass { user, password } => Ok((user.clone(), password.clone())),
            Auth::Cookie(path) => {
                let cookie = std::fs::read_to_string(path).map_err(|e| {
                    RpcError::Transport(format!("cookie file {} unreadable: {e}", path.display()))
                })?;
                let (user, password) = cookie
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| RpcError::Transport("malformed cookie file".into()))?;
                Ok((user.to_owned(), password.to_owned()))
            }
        }
    }

    /// Calls `method` with positional `params` and decodes the result.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, RpcError> {
        let value = self.call_value(method, params).await?;
        serde_json::from_value(value).map_err(|e| RpcError::decode(method, e))
    }

    async fn call_value(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let (user, password) = self.credentials()?;
        let url = match &self.wallet {
            Some(wallet) => format!("{}/wallet/{}", self.base_url, wallet),
            None => self.base_url.clone(),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "1.0", "id": id, "method": method, "params": params });
        let response = self
            .http
            .post(&url)
            .basic_auth(user, Some(password))
            .json(&body)
            .send()
            .await
            .map_err(|e| RpcError::Transport(format!("{method}: {}", without_url(&e))))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RpcError::Unauthorized);
        }
        let text = response
            .text()
            .await
            .map_err(|e| RpcError::Transport(format!("{method}: {}", without_url(&e))))?;
        let parsed: Response = serde_json::from_str(&text).map_err(|_| {
            if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                RpcError::Transport(format!("{method}: bitcoind busy (HTTP 503)"))
            } else {
                RpcError::decode(method, format!("HTTP {status}, non-JSON body"))
            }
        })?;
        if let Some(err) = parsed.error {
            return Err(RpcError::Rpc {
                method: method.to_owned(),
                code: err.code,
                message: err.message,
            });
        }
        Ok(parsed.result.unwrap_or(Value::Null))
    }

    /// `getblockchaininfo`.
    pub async fn get_blockchain_info(&self) -> Result<BlockchainInfo, RpcError> {
        self.call("getblockchaininfo", json!([])).await
    }

    /// `getblockcount`: height of the active tip.
    pub async fn get_block_count(&self) -> Result<u64, RpcError> {
        self.call("getblockcount", json!([])).await
    }

    /// `getblockhash`: hash of the active-chain block at `height`.
    pub async fn get_block_hash(&self, height: u64) -> Result<BlockHash, RpcError> {
        self.call("getblockhash", json!([height])).await
    }

    /// `getbestblockhash`.
    pub async fn get_best_block_hash(&self) -> Result<BlockHash, RpcError> {
        self.call("getbestblockhash", json!([])).await
    }

    /// `getblock <hash> 0`, decoded with consensus deserialization.
    pub async fn get_block(&self, hash: &BlockHash) -> Result<Block, RpcError> {
        let hex: String = self.call("getblock", json!([hash, 0])).await?;
        deserialize_hex(&hex).map_err(|e| RpcError::decode("getblock", e))
    }

    /// `getblockheader <hash> true`.
    pub async fn get_block_header_info(
        &self,
        hash: &BlockHash,
    ) -> Result<BlockHeaderInfo, RpcError> {
        self.call("getblockheader", json!([hash, true])).await
    }

    /// `getrawtransaction <txid>` (needs `-txindex` for transactions outside the mempool/wallet).
    pub async fn get_raw_transaction(&self, txid: &Txid) -> Result<Transaction, RpcError> {
        let hex: String = self.call("getrawtransaction", json!([txid, false])).await?;
        deserialize_hex(&hex).map_err(|e| RpcError::decode("getrawtransaction", e))
    }

    /// `sendrawtransaction` with bitcoind's default policy. Returns the txid.
    pub async fn send_raw_transaction(&self, tx: &Transaction) -> Result<Txid, RpcError> {
        self.call("sendrawtransaction", json!([serialize_hex(tx)]))
            .await
    }

    /// `testmempoolaccept` for a package of transactions (parents first).
    pub async fn test_mempool_accept(
        &self,
        txs: &[&Transaction],
    ) -> Result<Vec<MempoolAcceptResult>, RpcError> {
        let hexes: Vec<String> = txs.iter().map(|tx| serialize_hex(*tx)).collect();
        self.call("testmempoolaccept", json!([hexes])).await
    }

    /// `getnetworkinfo` (the fields we use).
    pub async fn get_network_info(&self) -> Result<NetworkInfo, RpcError> {
        self.call("getnetworkinfo", json!([])).await
    }

    /// The unconfirmed ancestors of a mempool transaction, parents before children (ordered by
    /// their own ancestor count, which is a topological order).
    pub async fn get_mempool_ancestors(&self, txid: &Txid) -> Result<Vec<Txid>, RpcError> {
        let entries: std::collections::BTreeMap<Txid, AncestorEntry> = self
            .call("getmempoolancestors", json!([txid, true]))
            .await?;
        let mut ordered: Vec<(u64, Txid)> = entries
            .into_iter()
            .map(|(txid, entry)| (entry.ancestorcount, txid))
            .collect();
        ordered.sort();
        Ok(ordered.into_iter().map(|(_, txid)| txid).collect())
    }

    /// `generateblock` (regtest): mines one block holding exactly the given mempool
    /// transactions followed by the given raw transactions, in that order, with the coinbase
    /// paying `output`. Only consensus rules apply to the listed transactions, not relay policy.
    pub async fn generate_block(
        &self,
        output: &Address,
        mempool: &[Txid],
        raw: &[&Transaction],
    ) -> Result<BlockHash, RpcError> {
        let txs: Vec<String> = mempool
            .iter()
            .map(Txid::to_string)
            .chain(raw.iter().map(|tx| serialize_hex(*tx)))
            .collect();
        let generated: GeneratedBlock = self
            .call("generateblock", json!([output.to_string(), txs]))
            .await?;
        Ok(generated.hash)
    }

    /// `getmempoolentry`.
    pub async fn get_mempool_entry(&self, txid: &Txid) -> Result<MempoolEntry, RpcError> {
        self.call("getmempoolentry", json!([txid])).await
    }

    /// `estimatesmartfee <blocks>`; `None` when bitcoind has no estimate yet (common on regtest).
    pub async fn estimate_smart_fee(&self, conf_target: u16) -> Result<Option<FeeRate>, RpcError> {
        let fee: SmartFee = self.call("estimatesmartfee", json!([conf_target])).await?;
        // BTC/kvB → sat/kwu: × 1e8 sat / 1000 vB / 4 wu per vB.
        Ok(fee.fee_rate.and_then(|btc_per_kvb| {
            let sat_per_kvb = (btc_per_kvb * 100_000_000.0).round();
            if sat_per_kvb.is_finite() && sat_per_kvb > 0.0 {
                Some(FeeRate::from_sat_per_kwu((sat_per_kvb as u64).div_ceil(4)))
            } else {
                None
            }
        }))
    }

    /// `invalidateblock`.
    pub async fn invalidate_block(&self, hash: &BlockHash) -> Result<(), RpcError> {
        self.call::<Value>("invalidateblock", json!([hash]))
            .await
            .map(drop)
    }

    /// `reconsiderblock`.
    pub async fn reconsider_block(&self, hash: &BlockHash) -> Result<(), RpcError> {
        self.call::<Value>("reconsiderblock", json!([hash]))
            .await
            .map(drop)
    }

    /// `stop`: asks bitcoind to shut down.
    pub async fn stop(&self) -> Result<(), RpcError> {
        self.call::<Value>("stop", json!([])).await.map(drop)
    }

    /// Creates wallet `name` or loads it; succeeds if it is already loaded. Returns a client
    /// scoped to it.
    pub async fn ensure_wallet(&self, name: &str) -> Result<Self, RpcError> {
        let base = Self {
            wallet: None,
            ..self.clone()
        };
        match base.call::<Value>("loadwallet", json!([name])).await {
            Ok(_) => {}
            Err(e) if matches!(e.rpc_code(), Some(RPC_WALLET_ALREADY_LOADED)) => {}
            Err(e) if e.rpc_code() == Some(RPC_WALLET_ERROR) && is_already_loaded(&e) => {}
            Err(e) if matches!(e.rpc_code(), Some(RPC_WALLET_NOT_FOUND | RPC_WALLET_ERROR)) => {
                match base.call::<Value>("createwallet", json!([name])).await {
                    Ok(_) => {}
                    Err(e) if is_already_loaded(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        Ok(self.with_wallet(name))
    }

    /// `getnewaddress` (bech32m / taproot), checked against `network`.
    pub async fn get_new_address(&self, network: bitcoin::Network) -> Result<Address, RpcError> {
        let address: bitcoin::address::Address<bitcoin::address::NetworkUnchecked> =
            self.call("getnewaddress", json!(["", "bech32m"])).await?;
        address
            .require_network(network)
            .map_err(|e| RpcError::decode("getnewaddress", e))
    }

    /// `generatetoaddress`: mines `blocks` blocks (regtest), returns their hashes.
    pub async fn generate_to_address(
        &self,
        blocks: u64,
        address: &Address,
    ) -> Result<Vec<BlockHash>, RpcError> {
        self.call("generatetoaddress", json!([blocks, address.to_string()]))
            .await
    }

    /// `getbalance` of the wallet (trusted, confirmed or own unconfirmed).
    pub async fn get_balance(&self) -> Result<Amount, RpcError> {
        let btc: f64 = self.call("getbalance", json!([])).await?;
        Amount::from_btc(btc).map_err(|e| RpcError::decode("getbalance", e))
    }

    /// `fundrawtransaction` of a transaction without inputs: the wallet adds inputs and change,
    /// paying `fee_rate`; the result is BIP125-replaceable.
    pub async fn fund_raw_transaction(
        &self,
        tx: &Transaction,
        fee_rate: FeeRate,
    ) -> Result<(Transaction, FundedTransaction), RpcError> {
        let options = json!({
            "fee_rate": fee_rate_sat_vb(fee_rate),
            "replaceable": true,
        });
        // rust-bitcoin serializes an input-less transaction in the segwit format, which bitcoind
        // rejects (no witness data): send the legacy form and tell bitcoind `iswitness = false`.
        let mut legacy = bitcoin::consensus::encode::serialize(&tx.version);
        legacy.push(0); // no inputs
        legacy.extend(bitcoin::consensus::encode::serialize(&tx.output));
        legacy.extend(bitcoin::consensus::encode::serialize(&tx.lock_time));
        let funded: FundedTransaction = self
            .call(
                "fundrawtransaction",
                json!([hex::encode(legacy), options, false]),
            )
            .await?;
        let tx =
            deserialize_hex(&funded.hex).map_err(|e| RpcError::decode("fundrawtransaction", e))?;
        Ok((tx, funded))
    }

    /// `signrawtransactionwithwallet`; fails unless the wallet could sign every input.
    pub async fn sign_raw_transaction_with_wallet(
        &self,
        tx: &Transaction,
    ) -> Result<Transaction, RpcError> {
        let signed: SignedTransaction = self
            .call("signrawtransactionwithwallet", json!([serialize_hex(tx)]))
            .await?;
        if !signed.complete {
            return Err(RpcError::decode(
                "signrawtransactionwithwallet",
                "wallet could not sign every input",
            ));
        }
        deserialize_hex(&signed.hex)
            .map_err(|e| RpcError::decode("signrawtransactionwithwallet", e))
    }

    /// `walletcreatefundedpsbt` + `walletprocesspsbt` + `finalizepsbt` in one go: a signed
    /// transaction paying `outputs`.
    pub async fn wallet_create_signed_transaction(
        &self,
        outputs: &[(Address, Amount)],
        fee_rate: FeeRate,
    ) -> Result<Transaction, RpcError> {
        #[derive(Deserialize)]
        struct Psbt {
            psbt: String,
        }
        #[derive(Deserialize)]
        struct Finalized {
            hex: Option<String>,
            complete: bool,
        }
        let outs: Vec<Value> = outputs
            .iter()
            .map(|(addr, amount)| json!({ addr.to_string(): amount.to_btc() }))
            .collect();
        let options = json!({ "fee_rate": fee_rate_sat_vb(fee_rate), "replaceable": true });
        let created: Psbt = self
            .call("walletcreatefundedpsbt", json!([[], outs, 0, options]))
            .await?;
        let processed: Psbt = self
            .call("walletprocesspsbt", json!([created.psbt]))
            .await?;
        let finalized: Finalized = self.call("finalizepsbt", json!([processed.psbt])).await?;
        match (finalized.complete, finalized.hex) {
            (true, Some(hex)) => {
                deserialize_hex(&hex).map_err(|e| RpcError::decode("finalizepsbt", e))
            }
            _ => Err(RpcError::decode("finalizepsbt", "psbt not complete")),
        }
    }

    /// `gettransaction` (wallet transactions only).
    pub async fn get_transaction(&self, txid: &Txid) -> Result<WalletTransaction, RpcError> {
        self.call("gettransaction", json!([txid])).await
    }

    /// `bumpfee` with an explicit fee rate (wallet transactions without wallet descendants).
    /// Returns the replacement's txid.
    pub async fn bump_fee(&self, txid: &Txid, fee_rate: FeeRate) -> Result<Txid, RpcError> {
        #[derive(Deserialize)]
        struct Bumped {
            txid: Txid,
        }
        let bumped: Bumped = self
            .call(
                "bumpfee",
                json!([txid, { "fee_rate": fee_rate_sat_vb(fee_rate) }]),
            )
            .await?;
        Ok(bumped.txid)
    }
}

/// A fee rate as the decimal sat/vB figure bitcoind's `fee_rate` options take.
fn fee_rate_sat_vb(fee_rate: FeeRate) -> Value {
    // sat/kwu × 4 = sat/kvB; three decimals of sat/vB.
    let sat_per_kvb = fee_rate.to_sat_per_kwu().saturating_mul(4);
    let text = format!("{}.{:03}", sat_per_kvb / 1000, sat_per_kvb % 1000);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn is_already_loaded(e: &RpcError) -> bool {
    match e {
        RpcError::Rpc { message, .. } => {
            message.contains("already loaded") || message.contains("already exists")
        }
        _ => false,
    }
}

/// A reqwest error message without the URL (which may embed a wallet name; never credentials,
/// but keep logs short).
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "<bitcoind>");
    }
    if e.is_connect() {
        format!("connection failed ({msg})")
    } else if e.is_timeout() {
        format!("timed out ({msg})")
    } else {
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rate_formatting() {
        assert_eq!(fee_rate_sat_vb(FeeRate::from_sat_per_vb_u32(2)), json!(2.0));
        assert_eq!(
            fee_rate_sat_vb(FeeRate::from_sat_per_kwu(251)),
            json!(1.004)
        );
    }

    #[test]
    fn auth_debug_redacts_password() {
        let auth = Auth::UserPass {
            user: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }

    #[test]
    fn transient_classification() {
        assert!(RpcError::Transport("x".into()).is_transient());
        let warm = RpcError::Rpc {
            method: "m".into(),
            code: RPC_IN_WARMUP,
            message: String::new(),
        };
        assert!(warm.is_transient());
        let other = RpcError::Rpc {
            method: "m".into(),
            code: -5,
            message: String::new(),
        };
        assert!(!other.is_transient());
    }
}
