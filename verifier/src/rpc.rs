//! The verifier's JSON-RPC methods, answered from its own derived state (never the sequencer's).
//!
//! The read methods (`stint_chainInfo`, `stint_syncStatus`, `stint_getAccount`, `stint_getTask`,
//! `stint_getStream`, `stint_getBatch`) are `stint-api`'s, over this node's [`VerifierView`]
//! (its `ChainView`; the RPC depends on the view, never on the node's loop): a dApp gets the
//! same answers as from the sequencer. Reads default to the verified tip, and `at` may name at
//! most the verified tip; soft and anchored are the verified tip.
//!
//! `stint_verifierStatus` is `{verified: {number, hash, stateRoot}, challenges: [{batch,
//! batchHash, btcTxid, status}], pendingFraud, alerts: [{batch, batchHash, stage, reason,
//! windowEndsAt, blocksLeft}]}`. Its `alerts` lists the frauds this verifier detected but cannot
//! challenge right now, each until its dispute window closes: `stage` is the step that failed —
//! `build` (the proof cannot be built), `encode` (it cannot be encoded), `judge` (the judge does
//! not find fraud in the encoded bytes), `fit` (the envelope exceeds one reveal) or `post`
//! (posting failed, or there is no challenge key or fee wallet) — with the `reason`,
//! `windowEndsAt` (the first L1 height at which a challenge no longer counts) and `blocksLeft`
//! (from the last processed L1 block). An entry clears once a challenge is posted.
//! `pendingFraud` is `{batch, windowEnd}` or `null`.

use std::sync::Arc;

use serde_json::{json, Value};
use stint_rpc::{HealthStatus, MethodSpec, Params, RpcModule};

use crate::error::VerifierError;
use crate::metrics::VerifierMetrics;
use crate::view::VerifierView;

/// Application error: the object is not known to this verifier, or not retained
/// ([`stint_api::NOT_FOUND`], the same code the sequencer answers with).
pub const NOT_FOUND: i64 = stint_api::NOT_FOUND;

/// Build the RPC module over `view`, with `metrics` in its registry (served by `/metrics`).
pub fn module(
    view: Arc<VerifierView>,
    metrics: &VerifierMetrics,
) -> Result<RpcModule<VerifierView>, VerifierError> {
    let mut module = RpcModule::from_arc(Arc::clone(&view));
    module.set_info("Stint verifier", env!("CARGO_PKG_VERSION"));
    let status = Arc::clone(view.status());
    let started = std::time::Instant::now();
    module.set_health(move || {
        let problems = status.health_problems(std::time::Instant::now(), started);
        let s = status.read();
        let body = json!({
            "status": if problems.is_empty() { "ok" } else { "degraded" },
            "problems": problems,
            "l1Height": s.l1.map(|(h, _)| h),
            "verified": s.verified.map_or(0, |v| v.number),
            "pendingFraud": s.pending_fraud.map(|(n, _)| n),
            "alerts": s.alerts.len(),
            "lastError": s.last_error,
        });
        if problems.is_empty() {
            HealthStatus::healthy(body)
        } else {
            HealthStatus::unhealthy(body)
        }
    });
    // One registry for the node: the verifier's metrics and the RPC server's, which `serve`
    // adds.
    metrics.register(module.metrics_registry_mut());

    let register_err = |e: stint_rpc::RegisterError| VerifierError::Rpc(e.to_string());
    let head_schema = json!({"type": "object", "properties": {
        "number": {"type": "integer"}, "hash": {"type": "string"}, "stateRoot": {"type": "string"}}});

    module
        .register(
            MethodSpec::new("stint_verifierStatus")
                .summary("The verifier's verified tip, the challenges it posted, and alerts for frauds it cannot challenge")
                .result("status", json!({"type": "object", "properties": {
                    "verified": head_schema.clone(),
                    "challenges": {"type": "array", "items": {"type": "object", "properties": {
                        "batch": {"type": "integer"}, "batchHash": {"type": "string"},
                        "btcTxid": {"type": "string"},
                        "status": {"enum": ["posted", "confirmed", "accepted", "rejected"]},
                        "reason": {"type": ["string", "null"]}}}},
                    "pendingFraud": {"type": ["object", "null"], "properties": {
                        "batch": {"type": "integer"}, "windowEnd": {"type": "integer"}}},
                    "alerts": {"type": "array", "items": {"type": "object", "properties": {
                        "batch": {"type": "integer"}, "batchHash": {"type": "string"},
                        "stage": {"enum": ["build", "encode", "judge", "fit", "post"]},
                        "reason": {"type": "string"},
                        "windowEndsAt": {"type": "integer"}, "blocksLeft": {"type": "integer"}}}}}})),
            |view: Arc<VerifierView>, _params: Params| async move {
                let s = view.status().snapshot();
                let challenges: Vec<Value> = s
                    .challenges
                    .iter()
                    .map(|c| {
                        json!({
                            "batch": c.batch,
                            "batchHash": c.batch_hash,
                            "btcTxid": c.btc_txid.to_string(),
                            "status": c.status,
                            "reason": c.reason,
                        })
                    })
                    .collect();
                Ok(json!({
                    "verified": view.head_of(s.verified),
                    "challenges": challenges,
                    "pendingFraud": s.pending_fraud.map(|(batch, end)| json!({"batch": batch, "windowEnd": end})),
                    "alerts": s.alerts.iter().map(|a| json!({
                        "batch": a.batch,
                        "batchHash": hex::encode(a.batch_hash),
                        "stage": a.stage.as_str(),
                        "reason": a.reason,
                        "windowEndsAt": a.window_ends_at,
                        "blocksLeft": a.blocks_left,
                    })).collect::<Vec<_>>(),
                }))
            },
        )
        .map_err(register_err)?;

    stint_api::register_read_methods(&mut module, view).map_err(register_err)?;

    Ok(module)
}
