//! The verifier's JSON-RPC methods, answered from its own derived state (never the sequencer's).
//!
//! The read methods (`stint_chainInfo`, `stint_syncStatus`, `stint_getAccount`, `stint_getTask`,
//! `stint_getStream`, `stint_getBatch`) are `stint-api`'s, over this node's [`ChainView`]: a
//! dApp gets the same answers as from the sequencer. Reads default to the verified tip, and `at`
//! may name at most the verified tip; soft and anchored are the verified tip.
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
use stint_api::{
    AnchorRef, BatchEntry, BatchRef, BatchState, ChainView, Head, Hex32, L1Ref, SyncStatus,
    TaskRole, TxEntry, ViewError,
};
use stint_protocol::{Batch, BatchStatus, Genesis};
use stint_rpc::{HealthStatus, MethodSpec, Params, RpcModule};
use stint_state::{Hash, RocksNodeStore};

use crate::error::VerifierError;
use crate::shared::{BatchSummary, Shared, Snapshot};
use crate::store::VerifiedBatch;

/// Application error: the object is not known to this verifier, or not retained
/// ([`stint_api::NOT_FOUND`], the same code the sequencer answers with).
pub const NOT_FOUND: i64 = stint_api::NOT_FOUND;

impl Shared {
    fn head_of(&self, v: Option<VerifiedBatch>) -> Head {
        match v {
            Some(v) => Head {
                number: v.number,
                hash: Hex32(v.hash),
                state_root: Hex32(v.state_root),
            },
            None => Head {
                number: 0,
                hash: Hex32(self.genesis.hash()),
                state_root: Hex32(self.genesis_root),
            },
        }
    }
}

fn entry(
    store: &crate::store::VerifierStore,
    b: &BatchSummary,
) -> Result<Option<BatchEntry>, ViewError> {
    let Some(encoded) = store.body_bytes(&b.record.hash).map_err(|e| {
        ViewError::new(
            format!("reading the body of batch {}", b.record.header.number),
            e,
        )
    })?
    else {
        return Ok(None);
    };
    let batch = Batch::decode(&encoded).map_err(|e| {
        ViewError::new(
            format!("decoding the body of batch {}", b.record.header.number),
            e,
        )
    })?;
    Ok(Some(BatchEntry {
        batch,
        encoded,
        status: state_of(b.status),
        anchor: Some(AnchorRef {
            btc_txid: b.record.anchor.btc_txid,
            height: b.record.anchor.height,
        }),
    }))
}

fn state_of(status: BatchStatus) -> BatchState {
    match status {
        BatchStatus::Anchored => BatchState::Anchored,
        BatchStatus::Final => BatchState::Final,
        BatchStatus::Invalidated => BatchState::Invalidated,
    }
}

/// The canonical batch numbered `number` in `snapshot`: derivation's canonical chain holds
/// batches 1..=n in order, so it is at index `number − 1` (O(1), not a scan per read); the scan
/// stays as a fallback should that ever not hold.
fn canonical_at(snapshot: &Snapshot, number: u64) -> Option<&BatchSummary> {
    let at = |b: &&BatchSummary| b.record.header.number == number;
    let index = usize::try_from(number.checked_sub(1)?).ok()?;
    snapshot
        .canonical
        .get(index)
        .filter(at)
        .or_else(|| snapshot.canonical.iter().find(at))
}

/// The verifier's chain as the shared read methods see it: its verified state and the batches
/// derivation found on Bitcoin.
impl ChainView for Shared {
    type State = Arc<RocksNodeStore>;

    fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    fn genesis_root(&self) -> Hash {
        self.genesis_root
    }

    fn state(&self) -> &Self::State {
        &self.state
    }

    fn read_tip(&self) -> u64 {
        self.snapshot.read().verified.map_or(0, |v| v.number)
    }

    fn state_root(&self, version: u64) -> Result<Option<Hash>, ViewError> {
        self.state
            .root(version)
            .map_err(|e| ViewError::new(format!("reading the root of state version {version}"), e))
    }

    fn timestamp(&self, version: u64) -> Result<Option<u64>, ViewError> {
        if version == 0 {
            return Ok(Some(0));
        }
        Ok(canonical_at(&self.snapshot.read(), version).map(|b| b.record.header.timestamp))
    }

    fn batch(&self, which: BatchRef) -> Result<Option<BatchEntry>, ViewError> {
        let found = {
            let s = self.snapshot.read();
            match which {
                BatchRef::Number(n) => canonical_at(&s, n).cloned(),
                BatchRef::Hash(h) => s
                    .canonical
                    .iter()
                    .chain(s.invalidated.iter().rev())
                    .find(|b| b.record.hash == h)
                    .cloned(),
            }
        };
        match found {
            Some(b) => entry(&self.store, &b),
            None => Ok(None),
        }
    }

    fn batch_state(&self, number: u64, hash: &Hash) -> Result<Option<BatchState>, ViewError> {
        Ok(canonical_at(&self.snapshot.read(), number)
            .filter(|b| b.record.hash == *hash)
            .map(|b| state_of(b.status)))
    }

    fn transaction(&self, txid: &stint_contracts::Txid) -> Result<Option<TxEntry>, ViewError> {
        let Some(record) = self
            .store
            .transaction(txid)
            .map_err(|e| ViewError::new(format!("reading transaction {txid}"), e))?
        else {
            return Ok(None);
        };
        // Only txs of batches on the verified chain this node serves (a record of a batch
        // rolled back since, or verified after the last snapshot, is not shown).
        let on_chain = {
            let s = self.snapshot.read();
            record.batch <= s.verified.map_or(0, |v| v.number)
                && canonical_at(&s, record.batch)
                    .is_some_and(|b| b.record.hash == record.batch_hash)
        };
        Ok(on_chain.then_some(TxEntry::Included {
            batch: record.batch,
            batch_hash: record.batch_hash,
            index: record.index,
            receipt: record.receipt,
        }))
    }

    fn tasks_of(
        &self,
        role: TaskRole,
        account: &stint_contracts::AccountId,
        limit: usize,
    ) -> Result<Vec<stint_contracts::TaskId>, ViewError> {
        self.store
            .tasks_of(role, account, limit)
            .map_err(|e| ViewError::new("reading the task index", e))
    }

    fn sync_status(&self) -> SyncStatus {
        let s = self.snapshot.read();
        let tip = self.head_of(s.verified);
        SyncStatus {
            soft: tip,
            anchored: tip,
            final_: self.head_of(s.final_tip),
            l1: s.l1.map(|(height, hash)| L1Ref { height, hash }),
        }
    }
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
    // One registry for the node: the verifier's metrics and the RPC server's, which `serve`
    // adds.
    shared.metrics.register(module.metrics_registry_mut());

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
                    "verified": shared.head_of(s.verified),
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

    stint_api::register_read_methods(&mut module, Arc::clone(&shared)).map_err(register_err)?;

    Ok(module)
}
