//! The sequencer's JSON-RPC methods (DESIGN §3), registered on the `stint-rpc` framework.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use stint_contracts::SignedTx;
use stint_rpc::{
    AdminToken, EventFilter, HealthStatus, MethodSpec, Params, RpcError, RpcModule,
    RpcServerConfig, TopicSpec,
};
use stint_state::Hash;

use crate::admission::Admission;
use crate::batcher::Sealer;
use crate::chain::ChainState;
use crate::config::SequencerConfig;
use crate::error::{codes, Rejection, SequencerError};
use crate::metrics::{Gauges, GaugesCollector, Metrics};
use crate::publish::Publishers;
use crate::view::SequencerView;

fn to_rpc(e: SequencerError) -> RpcError {
    match e {
        SequencerError::Rejected(r) => RpcError::new(r.code(), r.to_string()),
        SequencerError::Config(c) => RpcError::invalid_params(c),
        other => {
            // The details (file paths, bitcoind's words) go to the operator's log only.
            tracing::error!(target: "sequencer::rpc", error = %other, "internal error answering a call");
            RpcError::internal(internal_reason(&other))
        }
    }
}

/// What a client is told of an internal error: its kind, never its details.
fn internal_reason(e: &SequencerError) -> &'static str {
    match e {
        SequencerError::Storage { .. } => "the node's storage failed (details in the node's log)",
        SequencerError::Bitcoind { .. } => "bitcoind did not answer (details in the node's log)",
        _ => "the node failed (details in the node's log)",
    }
}

fn parse_hash(s: &str, what: &str) -> Result<Hash, RpcError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| RpcError::invalid_params(format!("{what} must be 64 hex digits")))?;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxidParam {
    txid: String,
}

/// The JSON-RPC server limits for `config`.
pub(crate) fn server_config(config: &SequencerConfig) -> RpcServerConfig {
    RpcServerConfig {
        admin_token: config
            .admin_token
            .as_ref()
            .map(|t| AdminToken::new(t.expose())),
        ..RpcServerConfig::default()
    }
}

fn txid_filter(params: Option<&Value>) -> Result<EventFilter, RpcError> {
    match params {
        None => Ok(Box::new(|_| true)),
        Some(value) => {
            let p: TxidParam = serde_json::from_value(value.clone())
                .map_err(|e| RpcError::invalid_params(format!("txStatus filter: {e}")))?;
            let want = parse_hash(&p.txid, "txid")?;
            let want = hex::encode(want);
            Ok(Box::new(move |event: &Value| {
                event["txid"] == want.as_str()
            }))
        }
    }
}

/// Every code admission answers with ([`Rejection::code`]), as documented on both submit
/// methods.
pub(crate) const SUBMIT_ERRORS: [(i64, &str); 12] = [
    (
        codes::INVALID_TRANSACTION,
        "invalid transaction: does not decode, breaks a bound, or names an account that is not a public key",
    ),
    (codes::WRONG_CHAIN, "wrong chain id"),
    (codes::INVALID_SIGNATURE, "invalid signature"),
    (codes::NONCE_TOO_LOW, "nonce too low"),
    (codes::NONCE_GAP_TOO_LARGE, "nonce gap too large"),
    (codes::FEE_TOO_LOW, "fee below the sequencer's minimum"),
    (codes::FEE_UNPAYABLE, "the sender cannot pay the fees of its pending transactions"),
    (
        codes::REPLACEMENT_UNDERPRICED,
        "replacement fee not at least 10 % above the pending transaction's",
    ),
    (codes::ALREADY_KNOWN, "already pending or executed"),
    (codes::MEMPOOL_FULL, "mempool full (in all, for the sender, or for queued transactions)"),
    (codes::TOO_LARGE, "transaction too large"),
    (
        codes::BEING_SEALED,
        "the pending transaction with this nonce is being sealed and cannot be replaced",
    ),
];

/// Documents [`SUBMIT_ERRORS`] on a method.
trait WithSubmitErrors {
    fn with_submit_errors(self) -> Self;
}

impl WithSubmitErrors for MethodSpec {
    fn with_submit_errors(self) -> Self {
        SUBMIT_ERRORS
            .iter()
            .fold(self, |spec, (code, message)| spec.error(*code, *message))
    }
}

/// How many full batches of `txStatus` events a subscriber may fall behind before it is
/// disconnected as a slow consumer.
const TX_STATUS_CAPACITY_BATCHES: usize = 4;

/// What the sequencer's own methods (admission, fees, sealing) answer from.
#[derive(Debug)]
pub(crate) struct RpcContext {
    pub(crate) admission: Arc<Admission>,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) min_fee: u64,
}

/// The gauges `/metrics` shows, read from the live state at each scrape.
fn gauges(chain: &ChainState, admission: &Admission) -> Gauges {
    let soft = chain.head().number;
    let status = chain.status();
    let (pending, queued) = admission.pending_counts();
    Gauges {
        pending: pending as u64,
        queued: queued as u64,
        soft,
        anchored: status.anchored_number(),
        final_number: status.final_number,
        l1_height: status.l1_tip.map_or(0, |(h, _)| h),
        bitcoind_up: status.bitcoind_up,
        waiting: status.waiting.as_ref().map_or(0, |(n, _)| *n),
    }
}

/// Build the method table: `ctx` for the sequencer's own methods, `view` for the shared read
/// methods, `chain` for health and gauges; installs the topics in `publishers` and registers
/// `metrics`.
pub(crate) fn module(
    ctx: RpcContext,
    chain: Arc<ChainState>,
    view: Arc<SequencerView>,
    publishers: &Publishers,
    metrics: &Metrics,
) -> Result<RpcModule<RpcContext>, SequencerError> {
    let max_batch_txs = ctx.sealer.max_batch_txs();
    let admission = Arc::clone(&ctx.admission);
    let mut m = RpcModule::new(ctx);
    m.set_info("Stint sequencer", env!("CARGO_PKG_VERSION"));
    let reg = |e: stint_rpc::RegisterError| SequencerError::Internal(e.to_string());

    let hub = m.subscriptions();
    publishers.install(
        hub
            .register_topic(
                TopicSpec::new("newBatches")
                    .summary("Every sealed batch (status soft)")
                    .result_schema(json!({"type": "object"})),
            )
            .map_err(reg)?,
        hub
            .register_topic(
                // One event per tx of a batch is published at once: room for several full
                // batches, or every subscriber (filtered ones too) would fall behind and be
                // disconnected whenever a batch holds more txs than the default capacity.
                TopicSpec::new("txStatus")
                    .capacity(TX_STATUS_CAPACITY_BATCHES.saturating_mul(max_batch_txs))
                    .summary("Finality changes of transactions: {txid, finality, batch}; optional filter {txid}")
                    .params_schema(json!({"type": "object", "properties": {"txid": {"type": "string"}}}))
                    .result_schema(json!({"type": "object"}))
                    .filter(txid_filter),
            )
            .map_err(reg)?,
        hub
            .register_topic(
                TopicSpec::new("finality")
                    .summary("Batch status changes: {batch, hash, status: soft|anchored|final|invalidated}")
                    .result_schema(json!({"type": "object"})),
            )
            .map_err(reg)?,
    )?;

    {
        let chain = Arc::clone(&chain);
        let started = std::time::Instant::now();
        m.set_health(move || {
            let head = chain.head().number;
            let chain = chain.status();
            let problems =
                crate::chain::health_problems(&chain, head, std::time::Instant::now(), started);
            let body = json!({
                "status": if problems.is_empty() { "ok" } else { "degraded" },
                "problems": problems,
                "soft": head,
                "anchored": chain.anchored_number(),
                "final": chain.final_number,
                "bitcoind": if chain.bitcoind_up { "up" } else { "down" },
            });
            if problems.is_empty() {
                HealthStatus::healthy(body)
            } else {
                HealthStatus::unhealthy(body)
            }
        });
    }
    {
        // One registry for the node: the sequencer's counters, its gauges (read at each
        // scrape), and the RPC server's metrics, which `serve` adds.
        let registry = m.metrics_registry_mut();
        metrics.register(registry);
        registry.register_collector(Box::new(GaugesCollector(move || {
            gauges(&chain, &admission)
        })));
    }

    stint_api::register_read_methods(&mut m, view).map_err(reg)?;

    let hash_schema = json!({"type": "string", "pattern": "^[0-9a-f]{64}$"});
    let obj = json!({"type": "object"});

    m.register(
        MethodSpec::new("stint_sendTransaction")
            .summary("Submit a signed transaction in JSON form; answers with the txid once durable")
            .param("tx", obj.clone())
            .result("txid", hash_schema.clone())
            .with_submit_errors(),
        |s: Arc<RpcContext>, p: Params| async move {
            let (value,): (Value,) = p.parse_positional()?;
            if value.is_null() {
                return Err(RpcError::invalid_params("missing param `tx`"));
            }
            let tx: SignedTx = serde_json::from_value(value)
                .map_err(|e| RpcError::invalid_params(format!("tx: {e}")))?;
            let txid = s.admission.submit(tx).await.map_err(to_rpc)?;
            Ok(json!(txid.to_string()))
        },
    )
    .map_err(reg)?;

    m.register(
        MethodSpec::new("stint_sendRawTransaction")
            .summary("Submit a signed transaction as hex of its canonical encoding")
            .param("raw", json!({"type": "string"}))
            .result("txid", hash_schema.clone())
            .with_submit_errors(),
        |s: Arc<RpcContext>, p: Params| async move {
            let (raw,): (String,) = p.parse_positional()?;
            let bytes = hex::decode(raw.trim_start_matches("0x"))
                .map_err(|_| RpcError::invalid_params("raw must be hex"))?;
            if bytes.len() > stint_contracts::MAX_SIGNED_TX_SIZE {
                let r = Rejection::TooLarge {
                    size: bytes.len(),
                    max: stint_contracts::MAX_SIGNED_TX_SIZE,
                };
                return Err(RpcError::new(r.code(), r.to_string()));
            }
            let tx = SignedTx::decode(&bytes).map_err(|e| {
                let r = Rejection::Malformed(e.to_string());
                RpcError::new(r.code(), r.to_string())
            })?;
            let txid = s.admission.submit(tx).await.map_err(to_rpc)?;
            Ok(json!(txid.to_string()))
        },
    )
    .map_err(reg)?;

    m.register(
        MethodSpec::new("stint_estimateFee")
            .summary("The fee to attach to a transaction (the sequencer's minimum; fees do not depend on size in v1)")
            .optional_param("tx", obj.clone())
            .result("fee", obj.clone()),
        |s: Arc<RpcContext>, _p: Params| async move {
            Ok(json!({"fee": s.min_fee, "minFee": s.min_fee}))
        },
    )
    .map_err(reg)?;

    m.register(
        MethodSpec::new("stint_sealBatch")
            .summary("Admin: seal a batch now from the pending transactions")
            .admin()
            .result("batch", json!({"type": ["integer", "null"]})),
        |s: Arc<RpcContext>, _p: Params| async move {
            let sealed = s.sealer.seal_blocking().await.map_err(to_rpc)?;
            Ok(json!({"batch": sealed}))
        },
    )
    .map_err(reg)?;

    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_show_server_paths_to_clients() {
        let e = SequencerError::storage(
            "admission log",
            std::io::Error::other("No space left on device: /srv/stint/seq/db/000123.log"),
        );
        let rpc = to_rpc(e);
        let text = format!("{rpc:?}");
        assert!(!text.contains("/srv/stint"), "{text}");
        assert!(text.contains("storage failed"), "{text}");
    }

    #[test]
    fn every_rejection_code_is_documented_on_the_submit_methods() {
        let account = stint_contracts::AccountId([0xff; 32]);
        let every = [
            Rejection::Malformed(String::new()),
            Rejection::WrongChain {
                found: 0,
                expected: 1,
            },
            Rejection::InvalidSignature,
            Rejection::NonceTooLow { found: 0, next: 1 },
            Rejection::NonceGapTooLarge {
                found: 9,
                next: 1,
                max: 2,
            },
            Rejection::FeeTooLow { fee: 0, min: 1 },
            Rejection::FeeUnpayable {
                balance: 0,
                needed: 1,
            },
            Rejection::ReplacementUnderpriced {
                fee: 1,
                pending: 1,
                min: 2,
            },
            Rejection::BeingSealed { nonce: 0 },
            Rejection::AlreadyKnown,
            Rejection::MempoolFull(""),
            Rejection::TooLarge { size: 2, max: 1 },
            Rejection::NotAKey { index: 0, account },
        ];
        for rejection in every {
            // A new variant must be added above (the match makes the compiler ask).
            match rejection {
                Rejection::Malformed(_)
                | Rejection::WrongChain { .. }
                | Rejection::InvalidSignature
                | Rejection::NonceTooLow { .. }
                | Rejection::NonceGapTooLarge { .. }
                | Rejection::FeeTooLow { .. }
                | Rejection::FeeUnpayable { .. }
                | Rejection::ReplacementUnderpriced { .. }
                | Rejection::BeingSealed { .. }
                | Rejection::AlreadyKnown
                | Rejection::MempoolFull(_)
                | Rejection::TooLarge { .. }
                | Rejection::NotAKey { .. } => {}
            }
            let code = rejection.code();
            assert!(
                SUBMIT_ERRORS.iter().any(|(c, _)| *c == code),
                "{rejection:?} answers code {code}, which the submit methods do not document"
            );
        }
    }

    #[test]
    fn a_batch_of_the_largest_legitimate_calls_fits_the_body_limit() {
        use k256::schnorr::SigningKey;
        use stint_contracts::{AccountId, Call, Payment, Tx};
        let key = SigningKey::from_bytes(&[1; 32]).unwrap();
        let to = AccountId::from_signing_key(&SigningKey::from_bytes(&[2; 32]).unwrap());
        // The largest call: a full payroll with the widest numbers JSON can carry.
        let tx = Tx {
            chain_id: u64::MAX,
            from: AccountId::from_signing_key(&key),
            nonce: u64::MAX,
            fee: u64::MAX,
            call: Call::Payroll {
                payments: vec![
                    Payment {
                        to,
                        amount: u64::MAX
                    };
                    stint_contracts::MAX_PAYROLL_PAYMENTS
                ],
            },
        }
        .sign(&key)
        .unwrap();
        let call = json!({"jsonrpc": "2.0", "id": u64::MAX, "method": "stint_sendTransaction",
            "params": [serde_json::to_value(&tx).unwrap()]});
        let batch: Vec<Value> = vec![call; stint_rpc::DEFAULT_MAX_BATCH_LEN];
        let body = serde_json::to_string(&batch).unwrap();
        assert!(
            body.len() <= stint_rpc::DEFAULT_MAX_BODY_BYTES,
            "{} bytes do not fit the {} byte limit",
            body.len(),
            stint_rpc::DEFAULT_MAX_BODY_BYTES
        );
    }
}
