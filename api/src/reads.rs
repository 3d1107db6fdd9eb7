//! The read methods both nodes serve, written once over a [`ChainView`].

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use stint_contracts::{
    account_key, read_account, read_stream, read_task, read_withdrawal, stream_key, task_key,
    AccountId, SignedTx, StreamId, TaskId, Txid, WithdrawalId,
};
use stint_rpc::{BoxFuture, MethodResult, MethodSpec, Params, RegisterError, RpcError, RpcModule};
use stint_state::{Hash, Key, SparseMerkleTree};

use bitcoin::hashes::Hash as _;
use stint_protocol::{L1Message, L1MessageKind};

use crate::messages::{MessageKey, MessageRecord, RecordedOutcome};
use crate::types::{
    AccountInfo, BatchInfo, BatchRef, BatchState, BridgeInfo, ChainInfo, DepositInfo, ForcedRef,
    Hex32, L1Ref, ProofFields, ReadOptions, Receipt, StreamInfo, TaskInfo, TransactionInfo,
    WithdrawalInfo,
};
use crate::view::{ChainView, TaskRole, TxEntry, ViewError};
use crate::NOT_FOUND;

/// The methods [`register_read_methods`] registers, in order.
pub const READ_METHODS: [&str; 12] = [
    "stint_chainInfo",
    "stint_bridgeInfo",
    "stint_syncStatus",
    "stint_getAccount",
    "stint_getTask",
    "stint_getStream",
    "stint_getBatch",
    "stint_getTransaction",
    "stint_getReceipt",
    "stint_getDeposit",
    "stint_getWithdrawal",
    "stint_getTasks",
];

/// Most tasks `stint_getTasks` answers with (its `limit` is capped to this).
pub const MAX_TASKS_PER_QUERY: usize = 1_000;

/// `stint_getTasks`' filter: exactly one role, and an optional limit.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksFilter {
    employer: Option<String>,
    worker: Option<String>,
    arbiter: Option<String>,
    limit: Option<usize>,
}

/// `stint_getBatch`'s options.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct BatchOptions {
    /// Include the canonical encoding of the whole batch (hex).
    raw: bool,
}

/// A node failure: logged with its cause, answered with its kind only.
fn internal(e: ViewError) -> RpcError {
    tracing::error!(target: "api::reads", error = %e, "a read failed");
    RpcError::internal("the node's storage failed (details in the node's log)")
}

fn not_found(what: impl std::fmt::Display) -> RpcError {
    RpcError::new(NOT_FOUND, format!("not found: {what}"))
}

fn to_value(value: &impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| internal(ViewError::new("encoding a result", e)))
}

fn parse_hash(text: &str, what: &str) -> Result<Hash, RpcError> {
    Hex32::parse(text)
        .map(|h| h.0)
        .map_err(|e| RpcError::invalid_params(format_args!("{what}: {e}")))
}

/// The version a read names and its state root.
fn version<V: ChainView>(view: &V, at: Option<u64>) -> Result<(u64, Hash), RpcError> {
    let tip = view.read_tip();
    let version = at.unwrap_or(tip);
    if version > tip {
        return Err(not_found(format_args!(
            "state at batch {version} (this node's newest is batch {tip})"
        )));
    }
    match view.state_root(version).map_err(internal)? {
        Some(root) => Ok((version, root)),
        None => Err(not_found(format_args!(
            "state at batch {version} (not retained)"
        ))),
    }
}

/// The proof of `key` under `root`, when asked for.
fn proof_of<V: ChainView>(
    view: &V,
    root: &Hash,
    key: &Key,
    wanted: bool,
) -> Result<Option<ProofFields>, RpcError> {
    if !wanted {
        return Ok(None);
    }
    let tree = SparseMerkleTree::new(view.state());
    let (value, proof) = tree
        .prove(root, key)
        .map_err(|e| internal(ViewError::new("proving a state key", e)))?;
    let proof = proof
        .to_bytes()
        .map_err(|e| internal(ViewError::new("encoding a proof", e)))?;
    Ok(Some(ProofFields {
        proof: hex::encode(proof),
        value: value.map(hex::encode),
    }))
}

fn account<V: ChainView>(
    view: &V,
    address: &str,
    options: ReadOptions,
) -> Result<AccountInfo, RpcError> {
    let id = AccountId::from_address(address)
        .map_err(|e| RpcError::invalid_params(format_args!("address: {e}")))?;
    let (at, root) = version(view, options.at)?;
    let tree = SparseMerkleTree::new(view.state());
    let record = read_account(&tree.view(root), &id)
        .map_err(|e| internal(ViewError::new("reading an account", e)))?;
    let pending_nonce = match options.at {
        None => view.pending_nonce(&id, record.nonce),
        Some(_) => record.nonce,
    };
    Ok(AccountInfo {
        address: id.to_address(),
        balance: record.balance,
        nonce: record.nonce,
        pending_nonce,
        at,
        state_root: Hex32(root),
        proof: proof_of(view, &root, &account_key(&id), options.proof)?,
    })
}

fn task<V: ChainView>(view: &V, id: &str, options: ReadOptions) -> Result<TaskInfo, RpcError> {
    let id = TaskId(parse_hash(id, "id")?);
    let (at, root) = version(view, options.at)?;
    let tree = SparseMerkleTree::new(view.state());
    let record = read_task(&tree.view(root), &id)
        .map_err(|e| internal(ViewError::new("reading a task", e)))?
        .ok_or_else(|| not_found(format_args!("task {id} at batch {at}")))?;
    Ok(TaskInfo {
        id: Hex32(id.0),
        task: record,
        at,
        state_root: Hex32(root),
        proof: proof_of(view, &root, &task_key(&id), options.proof)?,
    })
}

fn stream<V: ChainView>(view: &V, id: &str, options: ReadOptions) -> Result<StreamInfo, RpcError> {
    let id = StreamId(parse_hash(id, "id")?);
    let (at, root) = version(view, options.at)?;
    let tree = SparseMerkleTree::new(view.state());
    let record = read_stream(&tree.view(root), &id)
        .map_err(|e| internal(ViewError::new("reading a stream", e)))?
        .ok_or_else(|| not_found(format_args!("stream {id} at batch {at}")))?;
    let as_of = view
        .timestamp(at)
        .map_err(internal)?
        .ok_or_else(|| not_found(format_args!("the timestamp of batch {at}")))?;
    let withdrawable = record.withdrawable(as_of).ok_or_else(|| {
        internal(ViewError::new(
            format!("reading stream {id}"),
            "its accrual overflows (a record the STF cannot write)",
        ))
    })?;
    Ok(StreamInfo {
        id: Hex32(id.0),
        withdrawable,
        stream: record,
        as_of,
        at,
        state_root: Hex32(root),
        proof: proof_of(view, &root, &stream_key(&id), options.proof)?,
    })
}

/// `stint_getWithdrawal(id)`: see [`WithdrawalInfo`].
fn withdrawal<V: ChainView>(view: &V, id: &str) -> Result<WithdrawalInfo, RpcError> {
    let id = WithdrawalId(parse_hash(id, "id")?);
    let (at, root) = version(view, None)?;
    let tree = SparseMerkleTree::new(view.state());
    let read = |root: Hash| {
        read_withdrawal(&tree.view(root), &id)
            .map_err(|e| internal(ViewError::new("reading a withdrawal", e)))
    };
    let record =
        read(root)?.ok_or_else(|| not_found(format_args!("withdrawal {id} at batch {at}")))?;
    // Final once the newest final batch's state holds it.
    let final_number = view.sync_status().final_.number.min(at);
    let is_final = match view.state_root(final_number).map_err(internal)? {
        Some(final_root) => read(final_root)?.is_some(),
        None => false,
    };
    let btc_address = bitcoin::Address::from_script(
        bitcoin::Script::from_bytes(&record.btc_script),
        view.network(),
    )
    .ok()
    .map(|a| a.to_string());
    Ok(WithdrawalInfo {
        id: Hex32(id.0),
        from: record.from.to_address(),
        btc_script: hex::encode(&record.btc_script),
        btc_address,
        amount: record.amount,
        status: if is_final { "final" } else { "pending" }.into(),
        at,
    })
}

fn batch<V: ChainView>(
    view: &V,
    which: &Value,
    options: BatchOptions,
) -> Result<BatchInfo, RpcError> {
    let which = match which {
        Value::Number(n) => BatchRef::Number(n.as_u64().ok_or_else(|| {
            RpcError::invalid_params("batch: a number must be a non-negative integer")
        })?),
        Value::String(text) => BatchRef::Hash(parse_hash(text, "batch")?),
        _ => {
            return Err(RpcError::invalid_params(
                "batch: expected a batch number or a 64-hex-digit header hash",
            ))
        }
    };
    let shown = match which {
        BatchRef::Number(n) => n.to_string(),
        BatchRef::Hash(h) => hex::encode(h),
    };
    let entry = view
        .batch(which)
        .map_err(internal)?
        .ok_or_else(|| not_found(format_args!("batch {shown}")))?;
    let batch = &entry.batch;
    let hash = batch.hash();
    let found = match which {
        BatchRef::Number(n) => batch.header().number == n,
        BatchRef::Hash(h) => hash == h,
    };
    if !found {
        return Err(internal(ViewError::new(
            format!("reading batch {shown}"),
            "the node returned another batch",
        )));
    }
    let header = batch.header();
    Ok(BatchInfo {
        number: header.number,
        hash: Hex32(hash),
        parent: Hex32(header.parent),
        state_root: Hex32(entry.derived_root.unwrap_or(header.state_root)),
        derived: header.is_derived(),
        prev_state_root: Hex32(header.prev_state_root),
        tx_root: Hex32(header.tx_root),
        trace_root: Hex32(header.trace_root),
        timestamp: header.timestamp,
        l1_origin: L1Ref {
            height: header.l1_origin.height,
            hash: bitcoin::hashes::Hash::from_byte_array(header.l1_origin.hash),
        },
        tx_count: header.tx_count,
        msg_root: Hex32(header.msg_root),
        msg_count: header.msg_count,
        status: entry.status,
        anchor: entry.anchor,
        txids: batch.txs().iter().map(|t| Hex32(t.txid().0)).collect(),
        raw: options.raw.then(|| hex::encode(&entry.encoded)),
    })
}

/// Where a txid stands: a node's own entry, or what it knows of a forced tx (protocol v3).
enum Located {
    /// The node's own entry (a sequencer's admitted tx, a verified batch's tx).
    Entry(TxEntry),
    /// A forced tx a batch executed (or skipped): the record, and whether its batch is held.
    Forced(MessageRecord, bool),
    /// A forced tx on the followed Bitcoin chain that no held batch executed yet.
    ForcedWaiting(L1Message),
}

/// The finality of a tx executed in batch `hash` at `number`: that batch's status, or
/// `dropped` once it was rolled back (invalidated, or replaced at its number).
fn included_finality<V: ChainView>(
    view: &V,
    number: u64,
    hash: &Hash,
) -> Result<&'static str, RpcError> {
    Ok(match view.batch_state(number, hash).map_err(internal)? {
        Some(BatchState::Invalidated) | None => "dropped",
        Some(state) => state.as_str(),
    })
}

/// Whether the batch a record names is still held (and not invalidated).
fn record_held<V: ChainView>(view: &V, record: &MessageRecord) -> Result<bool, RpcError> {
    Ok(matches!(
        view.batch_state(record.batch, &record.batch_hash)
            .map_err(internal)?,
        Some(state) if state != BatchState::Invalidated
    ))
}

/// Where a tx stands, by txid text.
fn locate<V: ChainView>(view: &V, text: &str) -> Result<(Txid, Located), RpcError> {
    let txid = Txid(parse_hash(text, "txid")?);
    let entry = view.transaction(&txid).map_err(internal)?;
    if let Some(entry @ TxEntry::Included { .. }) = entry {
        return Ok((txid, Located::Entry(entry)));
    }
    let key = MessageKey::Forced(txid);
    let record = view.message(&key).map_err(internal)?;
    if let Some(record) = &record {
        if record_held(view, record)? {
            return Ok((txid, Located::Forced(record.clone(), true)));
        }
    }
    if let Some(message) = view.waiting_message(&key) {
        return Ok((txid, Located::ForcedWaiting(message)));
    }
    match (entry, record) {
        (Some(entry), _) => Ok((txid, Located::Entry(entry))),
        (None, Some(record)) => Ok((txid, Located::Forced(record, false))),
        (None, None) => Err(not_found(format_args!("transaction {txid}"))),
    }
}

/// The Bitcoin origin of a forced tx.
fn forced_ref(btc_txid: [u8; 32], height: u64) -> ForcedRef {
    ForcedRef {
        btc_txid: bitcoin::Txid::from_byte_array(btc_txid),
        height,
    }
}

/// A waiting forced tx's tx and origin.
fn waiting_forced(message: &L1Message) -> Option<(SignedTx, ForcedRef)> {
    match &message.kind {
        L1MessageKind::Forced(f) => Some((f.tx.clone(), forced_ref(f.btc_txid, message.height))),
        L1MessageKind::Deposit(_) => None,
    }
}

/// The finality of a record's batch: its status while held, `dropped` once not.
fn record_finality<V: ChainView>(
    view: &V,
    record: &MessageRecord,
    held: bool,
) -> Result<&'static str, RpcError> {
    if held {
        included_finality(view, record.batch, &record.batch_hash)
    } else {
        Ok("dropped")
    }
}

fn receipt<V: ChainView>(view: &V, text: &str) -> Result<Receipt, RpcError> {
    let (txid, located) = locate(view, text)?;
    let txid = Hex32(txid.0);
    let pending = |forced| Receipt {
        txid,
        status: None,
        finality: "pending".into(),
        batch: None,
        index: None,
        error: None,
        fee: None,
        forced,
    };
    Ok(match located {
        Located::Entry(TxEntry::Pending(_)) => pending(None),
        Located::ForcedWaiting(message) => pending(waiting_forced(&message).map(|(_, r)| r)),
        Located::Entry(TxEntry::Dropped { reason, .. }) => Receipt {
            txid,
            status: None,
            finality: "dropped".into(),
            batch: None,
            index: None,
            error: Some(reason),
            fee: None,
            forced: None,
        },
        Located::Entry(TxEntry::Included {
            batch,
            batch_hash,
            index,
            receipt,
        }) => {
            // The receipt's own JSON names its status and failure code.
            let named = to_value(&receipt)?;
            let text = |field: &str| named.get(field).and_then(Value::as_str).map(str::to_owned);
            Receipt {
                txid,
                status: text("status"),
                finality: included_finality(view, batch, &batch_hash)?.into(),
                batch: Some(batch),
                index: Some(index),
                error: text("error"),
                fee: Some(receipt.fee),
                forced: None,
            }
        }
        Located::Forced(record, held) => {
            let finality = record_finality(view, &record, held)?.into();
            let (status, error, fee) = match &record.outcome {
                RecordedOutcome::Executed { receipt, .. } => {
                    let named = to_value(receipt)?;
                    let text =
                        |field: &str| named.get(field).and_then(Value::as_str).map(str::to_owned);
                    (text("status"), text("error"), Some(receipt.fee))
                }
                RecordedOutcome::Skipped { reason, .. } => {
                    (Some("skipped".into()), Some(reason.clone()), None)
                }
                RecordedOutcome::Credited { .. } | RecordedOutcome::NotCredited { .. } => {
                    return Err(internal(ViewError::new(
                        format!("reading the receipt of {txid}"),
                        "a deposit record under a forced tx's key",
                    )))
                }
            };
            Receipt {
                txid,
                status,
                finality,
                batch: Some(record.batch),
                index: Some(record.index),
                error,
                fee,
                forced: Some(forced_ref(record.btc_txid, record.l1_height)),
            }
        }
    })
}

fn transaction<V: ChainView>(view: &V, text: &str) -> Result<TransactionInfo, RpcError> {
    let (txid, located) = locate(view, text)?;
    let (tx, finality, batch, index, forced): (SignedTx, &str, _, _, _) = match located {
        Located::Entry(TxEntry::Pending(tx)) => (tx, "pending", None, None, None),
        Located::Entry(TxEntry::Dropped { tx, .. }) => (tx, "dropped", None, None, None),
        Located::Entry(TxEntry::Included {
            batch,
            batch_hash,
            index,
            ..
        }) => {
            let finality = included_finality(view, batch, &batch_hash)?;
            let held = view.batch(BatchRef::Number(batch)).map_err(internal)?;
            let tx = held
                .as_ref()
                .and_then(|entry| entry.batch.txs().get(index as usize))
                .filter(|tx| tx.txid() == txid)
                .cloned()
                .ok_or_else(|| {
                    internal(ViewError::new(
                        format!("reading transaction {txid}"),
                        format!("batch {batch} does not hold it at index {index}"),
                    ))
                })?;
            (tx, finality, Some(batch), Some(index), None)
        }
        Located::ForcedWaiting(message) => {
            let (tx, origin) = waiting_forced(&message).ok_or_else(|| {
                internal(ViewError::new(
                    format!("reading transaction {txid}"),
                    "a deposit under a forced tx's key",
                ))
            })?;
            (tx, "pending", None, None, Some(origin))
        }
        Located::Forced(record, held) => {
            let tx = match &record.outcome {
                RecordedOutcome::Executed { tx, .. } | RecordedOutcome::Skipped { tx, .. } => {
                    tx.clone()
                }
                _ => {
                    return Err(internal(ViewError::new(
                        format!("reading transaction {txid}"),
                        "a deposit record under a forced tx's key",
                    )))
                }
            };
            (
                tx,
                record_finality(view, &record, held)?,
                Some(record.batch),
                Some(record.index),
                Some(forced_ref(record.btc_txid, record.l1_height)),
            )
        }
    };
    Ok(TransactionInfo {
        txid: Hex32(txid.0),
        raw: hex::encode(tx.encode()),
        tx,
        finality: finality.into(),
        batch,
        index,
        forced,
    })
}

/// `stint_getDeposit(outpoint)`: see [`DepositInfo`].
fn deposit<V: ChainView>(view: &V, text: &str) -> Result<DepositInfo, RpcError> {
    let outpoint: bitcoin::OutPoint = text.parse().map_err(|e| {
        RpcError::invalid_params(format_args!("outpoint: expected txid:vout ({e})"))
    })?;
    let key = MessageKey::Deposit {
        txid: outpoint.txid.to_byte_array(),
        vout: outpoint.vout,
    };
    let record = view.message(&key).map_err(internal)?;
    let outpoint = outpoint.to_string();
    if let Some(record) = &record {
        if record_held(view, record)? {
            let finality = Some(included_finality(view, record.batch, &record.batch_hash)?.into());
            let (status, account, amount, reason) = match &record.outcome {
                RecordedOutcome::Credited { account, amount } => {
                    ("credited", account, *amount, None)
                }
                RecordedOutcome::NotCredited {
                    account,
                    amount,
                    reason,
                } => ("not_credited", account, *amount, Some(reason.clone())),
                _ => {
                    return Err(internal(ViewError::new(
                        format!("reading deposit {outpoint}"),
                        "a forced tx record under a deposit's key",
                    )))
                }
            };
            return Ok(DepositInfo {
                outpoint,
                status: status.into(),
                account: account.to_address(),
                amount,
                l1_height: record.l1_height,
                batch: Some(record.batch),
                finality,
                reason,
            });
        }
    }
    if let Some(message) = view.waiting_message(&key) {
        if let L1MessageKind::Deposit(d) = &message.kind {
            return Ok(DepositInfo {
                outpoint,
                status: "seen".into(),
                account: d.account.to_address(),
                amount: d.amount,
                l1_height: message.height,
                batch: None,
                finality: None,
                reason: None,
            });
        }
    }
    match record {
        Some(record) => {
            let (account, amount) = match &record.outcome {
                RecordedOutcome::Credited { account, amount }
                | RecordedOutcome::NotCredited {
                    account, amount, ..
                } => (account.to_address(), *amount),
                _ => (String::new(), 0),
            };
            Ok(DepositInfo {
                outpoint,
                status: "reverted".into(),
                account,
                amount,
                l1_height: record.l1_height,
                batch: Some(record.batch),
                finality: None,
                reason: None,
            })
        }
        None => Err(not_found(format_args!(
            "deposit {outpoint} (not on the chain this node follows, or not a deposit: a payment \
             without a valid tag or below min_deposit is not one)"
        ))),
    }
}

fn tasks<V: ChainView>(view: &V, filter: TasksFilter) -> Result<Vec<TaskInfo>, RpcError> {
    let (role, address) = match (&filter.employer, &filter.worker, &filter.arbiter) {
        (Some(a), None, None) => (TaskRole::Employer, a),
        (None, Some(a), None) => (TaskRole::Worker, a),
        (None, None, Some(a)) => (TaskRole::Arbiter, a),
        _ => {
            return Err(RpcError::invalid_params(
                "give exactly one of employer, worker, arbiter",
            ))
        }
    };
    let account = AccountId::from_address(address)
        .map_err(|e| RpcError::invalid_params(format_args!("address: {e}")))?;
    let limit = filter
        .limit
        .unwrap_or(MAX_TASKS_PER_QUERY)
        .min(MAX_TASKS_PER_QUERY);
    let (at, root) = version(view, None)?;
    let ids = view.tasks_of(role, &account, limit).map_err(internal)?;
    let tree = SparseMerkleTree::new(view.state());
    let state = tree.view(root);
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(task) =
            read_task(&state, &id).map_err(|e| internal(ViewError::new("reading a task", e)))?
        else {
            continue;
        };
        // The index may remember a role a rolled-back batch gave; the state decides.
        let holds = match role {
            TaskRole::Employer => task.employer == account,
            TaskRole::Worker => task.worker == Some(account),
            TaskRole::Arbiter => task.arbiter == Some(account),
        };
        if holds {
            out.push(TaskInfo {
                id: Hex32(id.0),
                task,
                at,
                state_root: Hex32(root),
                proof: None,
            });
        }
    }
    Ok(out)
}

/// Runs a read (RocksDB, CPU-bound proofs) on Tokio's blocking pool, so slow reads never hold
/// an async worker and the framework's per-call timeout covers them.
async fn blocking(
    read: impl FnOnce() -> Result<Value, RpcError> + Send + 'static,
) -> Result<Value, RpcError> {
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or_else(|e| Err(internal(ViewError::new("running a read", e))))
}

/// A handler that parses the params by position into `P` and answers `read(view, params)` on
/// the blocking pool ([`blocking`]).
fn parsed_read<C, V, P, R>(
    view: &Arc<V>,
    read: fn(&V, P) -> Result<R, RpcError>,
) -> impl Fn(Arc<C>, Params) -> BoxFuture<MethodResult> + Send + Sync + 'static
where
    C: Send + Sync + 'static,
    V: ChainView,
    P: serde::de::DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    let view = Arc::clone(view);
    move |_ctx: Arc<C>, params: Params| {
        let view = Arc::clone(&view);
        Box::pin(blocking(move || {
            let params = params.parse_positional::<P>()?;
            to_value(&read(&view, params)?)
        }))
    }
}

fn hash_schema() -> Value {
    json!({"type": "string", "pattern": "^[0-9a-f]{64}$"})
}

fn head_schema() -> Value {
    json!({"type": "object", "required": ["number", "hash", "stateRoot"], "properties": {
        "number": {"type": "integer", "minimum": 0},
        "hash": hash_schema(), "stateRoot": hash_schema()}})
}

fn l1_schema() -> Value {
    json!({"type": "object", "required": ["height", "hash"], "properties": {
        "height": {"type": "integer", "minimum": 0}, "hash": hash_schema()}})
}

fn read_options_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": {
        "proof": {"type": "boolean", "description": "include a Merkle proof against stateRoot"},
        "at": {"type": "integer", "minimum": 0, "description": "read the state after this batch (default: the soft head)"}}})
}

/// The fields every state read answers with, plus `extra`.
fn state_read_schema(required: &[&str], extra: Value) -> Value {
    let mut properties = json!({
        "at": {"type": "integer", "minimum": 0},
        "stateRoot": hash_schema(),
        "proof": {"type": "string", "description": "hex of the SparseMerkleProof (with {proof: true})"},
        "value": {"type": ["string", "null"], "description": "hex of the leaf value (with {proof: true})"},
    });
    if let (Some(map), Value::Object(more)) = (properties.as_object_mut(), extra) {
        map.extend(more);
    }
    let mut required: Vec<&str> = required.to_vec();
    required.extend(["at", "stateRoot"]);
    json!({"type": "object", "required": required, "properties": properties})
}

/// Registers the shared read methods ([`READ_METHODS`]) on `module`, answering from `view`.
pub fn register_read_methods<C, V>(
    module: &mut RpcModule<C>,
    view: Arc<V>,
) -> Result<(), RegisterError>
where
    C: Send + Sync + 'static,
    V: ChainView,
{
    let not_found_doc = |what: &str| (NOT_FOUND, format!("not found: {what}"));

    {
        let view = Arc::clone(&view);
        module.register(
            MethodSpec::new("stint_chainInfo")
                .summary("Chain parameters from the genesis")
                .result("info", json!({"type": "object", "required": ["chainId", "genesisHash", "genesisStateRoot", "disputeWindow"], "properties": {
                    "chainId": {"type": "integer"}, "genesisHash": hash_schema(),
                    "genesisStateRoot": hash_schema(), "anchorKey": {"type": "string"},
                    "disputeWindow": {"type": "integer"}, "checkpointInterval": {"type": "integer"},
                    "maxBatchTxs": {"type": "integer"}, "maxBatchBytes": {"type": "integer"},
                    "feeRecipient": {"type": "string"}, "l1StartHeight": {"type": "integer"},
                    "l1StartHash": hash_schema()}})),
            move |_ctx: Arc<C>, _params: Params| {
                let info = ChainInfo::new(view.genesis(), view.genesis_root());
                async move { to_value(&info) }
            },
        )?;
    }
    {
        let view = Arc::clone(&view);
        module.register(
            MethodSpec::new("stint_bridgeInfo")
                .summary("How bitcoin enters: the bridge's deposit address and tag, its signers and threshold, min_deposit, and the L1-message parameters")
                .result("info", json!({"type": "object", "required": ["enabled", "depositTagPrefix", "signers", "threshold", "minDeposit", "sequencingWindow", "l1Confirmations"], "properties": {
                    "enabled": {"type": "boolean"},
                    "depositAddress": {"type": ["string", "null"]},
                    "depositScript": {"type": ["string", "null"]},
                    "depositTagPrefix": {"type": "string"},
                    "signers": {"type": "array", "items": {"type": "string"}},
                    "threshold": {"type": "integer"}, "minDeposit": {"type": "integer"},
                    "sequencingWindow": {"type": "integer"}, "l1Confirmations": {"type": "integer"}}})),
            move |_ctx: Arc<C>, _params: Params| {
                let info = BridgeInfo::new(view.genesis(), view.network());
                async move { to_value(&info) }
            },
        )?;
    }
    {
        let view = Arc::clone(&view);
        module.register(
            MethodSpec::new("stint_syncStatus")
                .summary("Heads: soft (what reads default to), anchored, final; the last processed Bitcoin block")
                .description("On a verifier, soft and anchored are its newest verified batch.")
                .result("status", json!({"type": "object", "required": ["soft", "anchored", "final", "l1"], "properties": {
                    "soft": head_schema(), "anchored": head_schema(), "final": head_schema(),
                    "l1": {"oneOf": [l1_schema(), {"type": "null"}]}}})),
            move |_ctx: Arc<C>, _params: Params| {
                let status = view.sync_status();
                async move { to_value(&status) }
            },
        )?;
    }
    {
        let (code, message) =
            not_found_doc("state at that batch (newer than the soft head, or not retained)");
        module.register(
            MethodSpec::new("stint_getAccount")
                .summary("An account {address, balance, nonce, pendingNonce} at the soft head or batch `at`, optionally with a Merkle proof")
                .param("address", json!({"type": "string"}))
                .optional_param("options", read_options_schema())
                .result("account", state_read_schema(
                    &["address", "balance", "nonce", "pendingNonce"],
                    json!({"address": {"type": "string"}, "balance": {"type": "integer"},
                        "nonce": {"type": "integer"}, "pendingNonce": {"type": "integer"}})))
                .error(code, message),
            parsed_read(&view, |view, (address, options): (String, Option<ReadOptions>)| account(view, &address, options.unwrap_or_default())),
        )?;
    }
    {
        let (code, message) = not_found_doc("the task, or the state at that batch");
        module.register(
            MethodSpec::new("stint_getTask")
                .summary("A task escrow by id at the soft head or batch `at`, optionally with a Merkle proof")
                .param("id", hash_schema())
                .optional_param("options", read_options_schema())
                .result("task", state_read_schema(
                    &["id", "employer", "milestones", "status", "escrow"],
                    json!({"id": hash_schema()})))
                .error(code, message),
            parsed_read(&view, |view, (id, options): (String, Option<ReadOptions>)| task(view, &id, options.unwrap_or_default())),
        )?;
    }
    {
        let (code, message) = not_found_doc("the stream, or the state at that batch");
        module.register(
            MethodSpec::new("stint_getStream")
                .summary("A wage stream by id at the soft head or batch `at`, with what is withdrawable at that batch's time")
                .param("id", hash_schema())
                .optional_param("options", read_options_schema())
                .result("stream", state_read_schema(
                    &["id", "employer", "worker", "status", "withdrawable", "asOf"],
                    json!({"id": hash_schema(), "withdrawable": {"type": "integer"},
                        "asOf": {"type": "integer"}})))
                .error(code, message),
            parsed_read(&view, |view, (id, options): (String, Option<ReadOptions>)| stream(view, &id, options.unwrap_or_default())),
        )?;
    }
    {
        let (code, message) = not_found_doc("no such batch");
        module.register(
            MethodSpec::new("stint_getBatch")
                .summary("A batch by number (canonical) or header hash (canonical or invalidated)")
                .param("batch", json!({"oneOf": [{"type": "integer", "minimum": 0}, hash_schema()]}))
                .optional_param("options", json!({"type": "object", "additionalProperties": false, "properties": {
                    "raw": {"type": "boolean", "description": "include the canonical encoding, hex"}}}))
                .result("batch", json!({"type": "object",
                    "required": ["number", "hash", "parent", "stateRoot", "status", "anchor", "txids"],
                    "properties": {
                        "number": {"type": "integer"}, "hash": hash_schema(), "parent": hash_schema(),
                        "stateRoot": hash_schema(),
                        "derived": {"type": "boolean", "description": "derived by every node: no batch executed the L1 messages due within the sequencing window (stateRoot is then the root this node computed)"},
                        "prevStateRoot": hash_schema(),
                        "txRoot": hash_schema(), "traceRoot": hash_schema(),
                        "timestamp": {"type": "integer"}, "l1Origin": l1_schema(),
                        "txCount": {"type": "integer"},
                        "msgRoot": hash_schema(), "msgCount": {"type": "integer"},
                        "status": {"enum": ["soft", "anchored", "final", "invalidated"]},
                        "anchor": {"oneOf": [{"type": "object", "properties": {
                            "btcTxid": hash_schema(), "height": {"type": "integer"}}}, {"type": "null"}]},
                        "txids": {"type": "array", "items": hash_schema()},
                        "raw": {"type": "string"}}}))
                .error(code, message),
            parsed_read(&view, |view, (which, options): (Value, Option<BatchOptions>)| batch(view, &which, options.unwrap_or_default())),
        )?;
    }
    let finality_schema = || json!({"enum": ["pending", "soft", "anchored", "final", "dropped"]});
    let forced_schema = || {
        json!({"type": "object", "description": "present for a forced tx: the Bitcoin transaction that carried it",
            "properties": {"btcTxid": {"type": "string"}, "height": {"type": "integer"}}})
    };
    {
        let (code, message) = not_found_doc("a transaction this node does not know");
        module.register(
            MethodSpec::new("stint_getTransaction")
                .summary("A transaction by txid, with where it is")
                .description("A sequencer knows what it admitted (pending, in a batch, or dropped); a verifier knows the transactions of the batches it verified.")
                .param("txid", hash_schema())
                .result("transaction", json!({"type": "object",
                    "required": ["txid", "tx", "raw", "finality", "batch", "index"],
                    "properties": {
                        "txid": hash_schema(), "tx": {"type": "object"}, "raw": {"type": "string"},
                        "finality": finality_schema(),
                        "batch": {"type": ["integer", "null"]}, "index": {"type": ["integer", "null"]},
                        "forced": forced_schema()}}))
                .error(code, message),
            parsed_read(&view, |view, (txid,): (String,)| transaction(view, &txid)),
        )?;
    }
    {
        let (code, message) = not_found_doc("a transaction this node does not know");
        module.register(
            MethodSpec::new("stint_getReceipt")
                .summary("Receipt {txid, status, finality, batch, index, error, fee}")
                .description("status is executed or failed once in a batch (null while pending or once dropped); error is the failure code, or why it was dropped.")
                .param("txid", hash_schema())
                .result("receipt", json!({"type": "object",
                    "required": ["txid", "status", "finality", "batch", "index", "error", "fee"],
                    "properties": {
                        "txid": hash_schema(),
                        "status": {"oneOf": [{"enum": ["executed", "failed", "skipped"]}, {"type": "null"}]},
                        "finality": finality_schema(),
                        "batch": {"type": ["integer", "null"]}, "index": {"type": ["integer", "null"]},
                        "error": {"type": ["string", "null"]}, "fee": {"type": ["integer", "null"]},
                        "forced": forced_schema()}}))
                .error(code, message),
            parsed_read(&view, |view, (txid,): (String,)| receipt(view, &txid)),
        )?;
    }
    {
        let (code, message) = not_found_doc("a deposit this node does not know");
        module.register(
            MethodSpec::new("stint_getDeposit")
                .summary("A deposit to the bridge by Bitcoin outpoint: seen, credited, not_credited or reverted; its account, amount and batch")
                .description("seen: on the followed chain, waiting for a batch; credited or not_credited: executed by `batch` (its finality given); reverted: a batch executed it, then it left the chain (reorg or valid challenge) and it is not on the chain now.")
                .param("outpoint", json!({"type": "string", "description": "txid:vout"}))
                .result("deposit", json!({"type": "object",
                    "required": ["outpoint", "status", "account", "amount", "l1Height", "batch", "finality", "reason"],
                    "properties": {
                        "outpoint": {"type": "string"},
                        "status": {"enum": ["seen", "credited", "not_credited", "reverted"]},
                        "account": {"type": "string"}, "amount": {"type": "integer"},
                        "l1Height": {"type": "integer"},
                        "batch": {"type": ["integer", "null"]},
                        "finality": {"oneOf": [finality_schema(), {"type": "null"}]},
                        "reason": {"type": ["string", "null"]}}}))
                .error(code, message),
            parsed_read(&view, |view, (outpoint,): (String,)| deposit(view, &outpoint)),
        )?;
    }
    {
        let (code, message) = not_found_doc("a withdrawal this node's state does not hold");
        module.register(
            MethodSpec::new("stint_getWithdrawal")
                .summary("A withdrawal by id: who, the Bitcoin script and address it pays, the amount, and pending or final")
                .description("pending: its batch is not final; final: payable. Read from the state this node serves (soft head on a sequencer, verified tip on a verifier).")
                .param("id", hash_schema())
                .result("withdrawal", json!({"type": "object",
                    "required": ["id", "from", "btcScript", "btcAddress", "amount", "status", "at"],
                    "properties": {
                        "id": hash_schema(), "from": {"type": "string"},
                        "btcScript": {"type": "string"},
                        "btcAddress": {"type": ["string", "null"]},
                        "amount": {"type": "integer"},
                        "status": {"enum": ["pending", "final"]},
                        "at": {"type": "integer"}}}))
                .error(code, message),
            parsed_read(&view, |view, (id,): (String,)| withdrawal(view, &id)),
        )?;
    }
    module.register(
        MethodSpec::new("stint_getTasks")
            .summary("Tasks where an account is the employer, worker or arbiter (exactly one), at the soft head")
            .description("In task id order, at most `limit` (default and cap 1000).")
            .param("filter", json!({"type": "object", "additionalProperties": false,
                "properties": {
                    "employer": {"type": "string"}, "worker": {"type": "string"},
                    "arbiter": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 0, "maximum": MAX_TASKS_PER_QUERY}}}))
            .result("tasks", json!({"type": "array", "items": state_read_schema(
                &["id", "employer", "milestones", "status", "escrow"],
                json!({"id": hash_schema()}))})),
        parsed_read(&view, |view, (filter,): (TasksFilter,)| tasks(view, filter)),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Head, SyncStatus};
    use stint_contracts::{Milestone, MilestoneStatus, Record, Task, TaskStatus};
    use stint_protocol::Genesis;
    use stint_state::{ChangeSet, MemoryNodeStore, EMPTY_HASH};

    /// A chain of one state version holding `task`, whose task index also remembers `stale`
    /// roles (as one a rolled-back batch leaves).
    struct OneTask {
        genesis: Genesis,
        store: MemoryNodeStore,
        root: Hash,
        index: Vec<(TaskRole, AccountId, TaskId)>,
    }

    impl ChainView for OneTask {
        type State = MemoryNodeStore;
        fn genesis(&self) -> &Genesis {
            &self.genesis
        }
        fn genesis_root(&self) -> Hash {
            self.root
        }
        fn network(&self) -> bitcoin::Network {
            bitcoin::Network::Regtest
        }
        fn state(&self) -> &MemoryNodeStore {
            &self.store
        }
        fn read_tip(&self) -> u64 {
            0
        }
        fn state_root(&self, _: u64) -> Result<Option<Hash>, ViewError> {
            Ok(Some(self.root))
        }
        fn timestamp(&self, _: u64) -> Result<Option<u64>, ViewError> {
            Ok(Some(0))
        }
        fn batch(&self, _: BatchRef) -> Result<Option<crate::BatchEntry>, ViewError> {
            Ok(None)
        }
        fn batch_state(&self, _: u64, _: &Hash) -> Result<Option<BatchState>, ViewError> {
            Ok(None)
        }
        fn sync_status(&self) -> SyncStatus {
            let head = Head {
                number: 0,
                hash: Hex32([0; 32]),
                state_root: Hex32(self.root),
            };
            SyncStatus {
                soft: head,
                anchored: head,
                final_: head,
                l1: None,
            }
        }
        fn transaction(&self, _: &Txid) -> Result<Option<TxEntry>, ViewError> {
            Ok(None)
        }
        fn message(&self, _: &MessageKey) -> Result<Option<MessageRecord>, ViewError> {
            Ok(None)
        }
        fn waiting_message(&self, _: &MessageKey) -> Option<L1Message> {
            None
        }
        fn tasks_of(
            &self,
            role: TaskRole,
            account: &AccountId,
            limit: usize,
        ) -> Result<Vec<TaskId>, ViewError> {
            Ok(self
                .index
                .iter()
                .filter(|(r, a, _)| *r == role && a == account)
                .map(|(_, _, id)| *id)
                .take(limit)
                .collect())
        }
    }

    fn filter(role: &str, account: &AccountId) -> TasksFilter {
        let address = Some(account.to_address());
        TasksFilter {
            employer: (role == "employer").then(|| address.clone()).flatten(),
            worker: (role == "worker").then(|| address.clone()).flatten(),
            arbiter: (role == "arbiter").then(|| address.clone()).flatten(),
            limit: None,
        }
    }

    #[test]
    fn get_tasks_lists_only_roles_the_state_confirms() {
        let key = |i: u8| {
            AccountId::from_signing_key(&k256::schnorr::SigningKey::from_bytes(&[i; 32]).unwrap())
        };
        let (employer, worker, stale_worker) = (key(1), key(2), key(3));
        let id = TaskId([9; 32]);
        let task = Task {
            employer,
            worker: Some(worker),
            arbiter: None,
            spec_hash: [0; 32],
            milestones: vec![Milestone {
                amount: 5,
                status: MilestoneStatus::Pending,
            }],
            deadline: 10,
            review_secs: 1,
            created_at: 0,
            status: TaskStatus::Active,
            escrow: 5,
            dispute: None,
            resolution: None,
        };
        let mut store = MemoryNodeStore::default();
        let tree = SparseMerkleTree::new(&store);
        let changes = ChangeSet::from([(task_key(&id), Some(Record::Task(task).encode()))]);
        let update = tree.apply(&EMPTY_HASH, &changes).unwrap();
        let root = update.root;
        store.write(&update);
        let view = OneTask {
            genesis: Genesis::from_json(include_str!(
                "../../protocol/testdata/devnet-genesis.json"
            ))
            .unwrap(),
            store,
            root,
            index: vec![
                (TaskRole::Employer, employer, id),
                (TaskRole::Worker, worker, id),
                // A worker a rolled-back TaskAccept indexed; the task has another one now.
                (TaskRole::Worker, stale_worker, id),
                // An index entry for a task that no longer exists at all.
                (TaskRole::Employer, employer, TaskId([8; 32])),
            ],
        };
        let ids = |role: &str, account: &AccountId| {
            tasks(&view, filter(role, account))
                .unwrap()
                .into_iter()
                .map(|t| t.id.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("employer", &employer), vec![[9; 32]]);
        assert_eq!(ids("worker", &worker), vec![[9; 32]]);
        assert!(ids("worker", &stale_worker).is_empty());
        assert!(ids("arbiter", &employer).is_empty());
        let mut both = filter("employer", &employer);
        both.worker = Some(worker.to_address());
        assert!(tasks(&view, both).is_err(), "exactly one role");
    }
}
