//! The verifier's JSON-RPC methods, answered from its own derived state (never the sequencer's).
//!
//! | method | result |
//! | --- | --- |
//! | `stint_verifierStatus` | `{verified: {number, hash, stateRoot}, challenges: [{batch, batchHash, btcTxid, status}], pendingFraud, alerts: [{batch, batchHash, stage, reason, windowEndsAt, blocksLeft}]}` |
//! | `stint_syncStatus` | `{soft, anchored, final: {number, hash, stateRoot}, l1: {height, hash}}`; soft = anchored = the verified tip |
//! | `stint_chainInfo` | chain parameters |
//! | `stint_getAccount(address, {proof, at})` | `{address, balance, nonce}` (+ `proof`, `stateRoot`, `at`) |
//! | `stint_getTask(id, {at})`, `stint_getStream(id, {at})` | the record, or `null` |
//! | `stint_getBatch(number | hash)` | `{number, hash, parent, stateRoot, status, anchor: {btcTxid, height}, verified}` or `null` |
//!
//! `stint_verifierStatus`'s `alerts` lists the frauds this verifier detected but cannot challenge
//! right now, each until its dispute window closes: `stage` is the step that failed — `build`
//! (the proof cannot be built), `encode` (it cannot be encoded), `judge` (the judge does not find
//! fraud in the encoded bytes), `fit` (the envelope exceeds one reveal) or `post` (posting failed,
//! or there is no challenge key or fee wallet) — with the `reason`, `windowEndsAt` (the first L1
//! height at which a challenge no longer counts) and `blocksLeft` (from the last processed L1
//! block). An entry clears once a challenge is posted. `pendingFraud` is `{batch, windowEnd}` or
//! `null`.
//!
//! `at` is a batch number; it defaults to the verified tip and must be at most the verified tip.
//! Application errors: [`NOT_FOUND`] (an unknown or pruned state version).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use stint_contracts::{
    account_key, read_account, read_stream, read_task, AccountId, StreamId, TaskId,
};
use stint_protocol::BatchStatus;
use stint_rpc::{HealthStatus, MethodSpec, Params, RpcError, RpcModule};
use stint_state::{Hash, SparseMerkleTree};

use crate::error::VerifierError;
use crate::node::{BatchSummary, Shared};
use crate::store::VerifiedBatch;

/// Application error: the requested state version is not available.
pub const NOT_FOUND: i64 = 404;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ReadOptions {
    proof: bool,
    at: Option<u64>,
}

fn head(number: u64, hash: &Hash, state_root: &Hash) -> Value {
    json!({"number": number, "hash": hex::encode(hash), "stateRoot": hex::encode(state_root)})
}

fn verified_head(shared: &Shared, v: Option<VerifiedBatch>) -> Value {
    match v {
        Some(v) => head(v.number, &v.hash, &v.state_root),
        None => head(0, &shared.genesis.hash(), &shared.genesis_root),
    }
}

fn status_name(status: BatchStatus) -> &'static str {
    match status {
        BatchStatus::Anchored => "anchored",
        BatchStatus::Final => "final",
        BatchStatus::Invalidated => "invalidated",
    }
}

fn batch_json(b: &BatchSummary) -> Value {
    let h = &b.record.header;
    json!({
        "number": h.number,
        "hash": hex::encode(b.record.hash),
        "parent": hex::encode(h.parent),
        "stateRoot": hex::encode(h.state_root),
        "prevStateRoot": hex::encode(h.prev_state_root),
        "timestamp": h.timestamp,
        "txCount": h.tx_count,
        "status": status_name(b.status),
        "verified": b.verified,
        "anchor": {"btcTxid": b.record.anchor.btc_txid.to_string(), "height": b.record.anchor.height},
    })
}

/// The state root at batch `at` (default: the verified tip).
fn root_at(shared: &Shared, at: Option<u64>) -> Result<(u64, Hash), RpcError> {
    let tip = shared.snapshot.read().verified.map_or(0, |v| v.number);
    let version = at.unwrap_or(tip);
    if version > tip {
        return Err(RpcError::new(
            NOT_FOUND,
            format!("batch {version} is not verified (verified tip is {tip})"),
        ));
    }
    match shared.state.root(version) {
        Ok(Some(root)) => Ok((version, root)),
        Ok(None) => Err(RpcError::new(
            NOT_FOUND,
            format!("state at batch {version} is not available"),
        )),
        Err(e) => Err(RpcError::internal(e)),
    }
}

fn parse_id(text: &str) -> Result<[u8; 32], RpcError> {
    hex::decode(text.trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| RpcError::invalid_params("id must be 64 hex digits"))
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::internal(e)
}

/// Build the RPC module over the shared state.
pub fn module(shared: Arc<Shared>) -> Result<RpcModule<Shared>, VerifierError> {
    let mut module = RpcModule::from_arc(Arc::clone(&shared));
    module.set_info("Stint verifier", env!("CARGO_PKG_VERSION"));
    let health_shared = Arc::clone(&shared);
    module.set_health(move || {
        let s = health_shared.snapshot.read();
        let body = json!({
            "status": if s.bitcoind_ok { "ok" } else { "bitcoind unreachable" },
            "l1Height": s.l1.map(|(h, _)| h),
            "verified": s.verified.map_or(0, |v| v.number),
            "pendingFraud": s.pending_fraud.map(|(n, _)| n),
            "alerts": s.alerts.len(),
            "lastError": s.last_error,
        });
        if s.bitcoind_ok {
            HealthStatus::healthy(body)
        } else {
            HealthStatus::unhealthy(body)
        }
    });
    let metrics_shared = Arc::clone(&shared);
    module.set_metrics_source(move || metrics_shared.metrics.render());

    let register_err = |e: stint_rpc::RegisterError| VerifierError::Rpc(e.to_string());
    let head_schema = json!({"type": "object", "properties": {
        "number": {"type": "integer"}, "hash": {"type": "string"}, "stateRoot": {"type": "string"}}});
    let options_schema = json!({"type": "object", "properties": {
        "proof": {"type": "boolean"}, "at": {"type": "integer"}}});

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
            |shared: Arc<Shared>, _params: Params| async move {
                let s = shared.snapshot();
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
                    "verified": verified_head(&shared, s.verified),
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

    module
        .register(
            MethodSpec::new("stint_syncStatus")
                .summary("Heads: soft = anchored = the verified tip; final; the L1 tip")
                .result("status", json!({"type": "object", "properties": {
                    "soft": head_schema.clone(), "anchored": head_schema.clone(), "final": head_schema.clone()}})),
            |shared: Arc<Shared>, _params: Params| async move {
                let s = shared.snapshot();
                let tip = verified_head(&shared, s.verified);
                let final_head = verified_head(&shared, s.final_tip);
                Ok(json!({
                    "soft": tip,
                    "anchored": tip,
                    "final": final_head,
                    "l1": s.l1.map(|(height, hash)| json!({"height": height, "hash": hash.to_string()})),
                }))
            },
        )
        .map_err(register_err)?;

    module
        .register(
            MethodSpec::new("stint_chainInfo")
                .summary("Chain parameters from the genesis")
                .result("info", json!({"type": "object"})),
            |shared: Arc<Shared>, _params: Params| async move {
                let mut info = shared.genesis.chain_info(&shared.genesis_root);
                info["node"] = json!("verifier");
                Ok(info)
            },
        )
        .map_err(register_err)?;

    module
        .register(
            MethodSpec::new("stint_getAccount")
                .summary("An account in the verifier's own state")
                .param("address", json!({"type": "string"}))
                .optional_param("options", options_schema.clone())
                .result("account", json!({"type": "object"}))
                .error(NOT_FOUND, "state version not available"),
            |shared: Arc<Shared>, params: Params| async move {
                let (address, options): (String, Option<ReadOptions>) =
                    params.parse_positional()?;
                let id = AccountId::from_address(&address).map_err(RpcError::invalid_params)?;
                let options = options.unwrap_or_default();
                let (at, root) = root_at(&shared, options.at)?;
                let tree = SparseMerkleTree::new(&*shared.state);
                let account = read_account(&tree.view(root), &id).map_err(internal)?;
                let mut out = json!({
                    "address": id.to_address(),
                    "balance": account.balance,
                    "nonce": account.nonce,
                    "at": at,
                    "stateRoot": hex::encode(root),
                });
                if options.proof {
                    let (_, proof) = tree.prove(&root, &account_key(&id)).map_err(internal)?;
                    let bytes = proof.to_bytes().map_err(internal)?;
                    out["proof"] = json!(hex::encode(bytes));
                }
                Ok(out)
            },
        )
        .map_err(register_err)?;

    module
        .register(
            MethodSpec::new("stint_getTask")
                .summary("A task escrow in the verifier's own state, or null")
                .param("id", json!({"type": "string"}))
                .optional_param("options", options_schema.clone())
                .result("task", json!({"type": ["object", "null"]})),
            |shared: Arc<Shared>, params: Params| async move {
                let (id, options): (String, Option<ReadOptions>) = params.parse_positional()?;
                let id = TaskId(parse_id(&id)?);
                let (_, root) = root_at(&shared, options.unwrap_or_default().at)?;
                let tree = SparseMerkleTree::new(&*shared.state);
                let task = read_task(&tree.view(root), &id).map_err(internal)?;
                serde_json::to_value(task).map_err(internal)
            },
        )
        .map_err(register_err)?;

    module
        .register(
            MethodSpec::new("stint_getStream")
                .summary("A wage stream in the verifier's own state, or null")
                .param("id", json!({"type": "string"}))
                .optional_param("options", options_schema)
                .result("stream", json!({"type": ["object", "null"]})),
            |shared: Arc<Shared>, params: Params| async move {
                let (id, options): (String, Option<ReadOptions>) = params.parse_positional()?;
                let id = StreamId(parse_id(&id)?);
                let (_, root) = root_at(&shared, options.unwrap_or_default().at)?;
                let tree = SparseMerkleTree::new(&*shared.state);
                let stream = read_stream(&tree.view(root), &id).map_err(internal)?;
                serde_json::to_value(stream).map_err(internal)
            },
        )
        .map_err(register_err)?;

    module
        .register(
            MethodSpec::new("stint_getBatch")
                .summary(
                    "A batch by number (canonical) or hash (canonical or invalidated), or null",
                )
                .param("batch", json!({"type": ["integer", "string"]}))
                .result("batch", json!({"type": ["object", "null"]})),
            |shared: Arc<Shared>, params: Params| async move {
                let (which,): (Value,) = params.parse_positional()?;
                let s = shared.snapshot.read();
                let found = match &which {
                    Value::Number(n) => {
                        let n = n
                            .as_u64()
                            .ok_or_else(|| RpcError::invalid_params("batch number must be >= 0"))?;
                        s.canonical.iter().find(|b| b.record.header.number == n)
                    }
                    Value::String(text) => {
                        let hash = parse_id(text)?;
                        s.canonical
                            .iter()
                            .chain(s.invalidated.iter().rev())
                            .find(|b| b.record.hash == hash)
                    }
                    _ => return Err(RpcError::invalid_params("batch must be a number or a hash")),
                };
                Ok(found.map_or(Value::Null, batch_json))
            },
        )
        .map_err(register_err)?;

    Ok(module)
}
