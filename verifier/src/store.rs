//! Durable progress: the verified state per batch version and the verifier's own records.
//!
//! Two RocksDB databases under the data directory:
//! - `state/`: a [`RocksNodeStore`]; version `n` is the state after batch `n` (version 0 is the
//!   genesis state). Only verified batches are committed.
//! - `verifier/`: one column family of prefixed keys:
//!
//! | key | value |
//! | --- | --- |
//! | `g` | genesis hash (the directory belongs to one chain) |
//! | `v` ‖ number `u64 BE` | [`VerifiedBatch`] (borsh) |
//! | `b` ‖ batch hash | the batch's canonical encoding (kept so that a batch reinstated by a reorg can be replayed again) |
//! | `l` | last processed L1 block: height `u64 BE` ‖ hash |
//! | `c` ‖ seq `u64 BE` | a challenge this verifier posted ([`ChallengeEntry`], JSON) |
//!
//! Crash safety: a batch's state version is committed before its `v` record, and on open every
//! state version above the last `v` record is dropped, so the two never disagree for long.

use std::path::Path;
use std::sync::Arc;

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{Amount, FeeRate, ScriptBuf, Txid};
use borsh::{BorshDeserialize, BorshSerialize};
use rocksdb::{Direction, IteratorMode, Options, WriteBatch, DB};
use serde::{Deserialize, Serialize};
use stint_anchor::PostedEnvelope;
use stint_protocol::{Batch, EnvelopeKind, IndexHint, Unchecked};
use stint_state::{Hash, RocksNodeStore, TreeUpdate};

use crate::error::VerifierError;

const KEY_GENESIS: &[u8] = b"g";
const KEY_L1: &[u8] = b"l";
const PREFIX_VERIFIED: u8 = b'v';
const PREFIX_BODY: u8 = b'b';
const PREFIX_CHALLENGE: u8 = b'c';
const PREFIX_TX: u8 = b't';
const PREFIX_TASK: u8 = b'k';
const PREFIX_MESSAGE: u8 = b'm';

/// A batch the verifier replayed and found honest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct VerifiedBatch {
    /// Its number.
    pub number: u64,
    /// Its header hash.
    pub hash: Hash,
    /// Its (verified) state root.
    pub state_root: Hash,
}

/// Where a verified batch executed one tx, and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxRecord {
    /// The batch number.
    pub batch: u64,
    /// Its header hash.
    pub batch_hash: Hash,
    /// The tx's position in it.
    pub index: u32,
    /// Its receipt.
    pub receipt: stint_contracts::Receipt,
}

/// Where a challenge stands, as `stint_verifierStatus` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeStatus {
    /// Broadcast, not in a block of the active chain.
    Posted,
    /// In a block that derivation has not judged yet.
    Confirmed,
    /// Judged valid: the target was invalidated.
    Accepted,
    /// Judged invalid (e.g. another challenge invalidated the target first).
    Rejected,
}

/// A challenge this verifier posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeEntry {
    /// Its sequence number in the store.
    pub seq: u64,
    /// The target batch number.
    pub batch: u64,
    /// The target batch hash (hex).
    pub batch_hash: String,
    /// The current reveal transaction (changes when the fee is bumped).
    pub btc_txid: Txid,
    /// Status.
    pub status: ChallengeStatus,
    /// L1 tip height when it was (last) broadcast.
    pub posted_at: u64,
    /// Why derivation rejected it, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The posted pair, to bump or re-broadcast it.
    pub posted: StoredPosted,
}

/// [`PostedEnvelope`] in a storable form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPosted {
    commit_hex: String,
    reveal_hex: String,
    commit_vout: u32,
    commit_fee_sat: u64,
    reveal_fee_sat: u64,
    fee_rate_sat_kwu: u64,
    leaf_script_hex: String,
    hint: Option<(u64, String)>,
}

impl StoredPosted {
    /// Store a posted pair.
    pub fn from_posted(posted: &PostedEnvelope) -> Self {
        Self {
            commit_hex: serialize_hex(&posted.commit),
            reveal_hex: serialize_hex(&posted.reveal),
            commit_vout: posted.commit_vout,
            commit_fee_sat: posted.commit_fee.to_sat(),
            reveal_fee_sat: posted.reveal_fee.to_sat(),
            fee_rate_sat_kwu: posted.fee_rate.to_sat_per_kwu(),
            leaf_script_hex: hex::encode(posted.leaf_script.as_bytes()),
            hint: posted
                .hint
                .as_ref()
                .map(|h| (h.number, hex::encode(h.header_hash))),
        }
    }

    /// The posted pair back.
    pub fn to_posted(&self) -> Result<PostedEnvelope, VerifierError> {
        let corrupt = |what: &str| VerifierError::corrupt(format!("challenge record: {what}"));
        let commit: bitcoin::Transaction =
            deserialize_hex(&self.commit_hex).map_err(|_| corrupt("commit"))?;
        let reveal: bitcoin::Transaction =
            deserialize_hex(&self.reveal_hex).map_err(|_| corrupt("reveal"))?;
        let leaf_script =
            ScriptBuf::from_bytes(hex::decode(&self.leaf_script_hex).map_err(|_| corrupt("leaf"))?);
        let hint = match &self.hint {
            None => None,
            Some((number, hash)) => Some(IndexHint {
                kind: EnvelopeKind::Challenge,
                number: *number,
                header_hash: hex::decode(hash)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("hint"))?,
            }),
        };
        Ok(PostedEnvelope {
            commit_txid: commit.compute_txid(),
            reveal_txid: reveal.compute_txid(),
            commit,
            reveal,
            commit_vout: self.commit_vout,
            commit_fee: Amount::from_sat(self.commit_fee_sat),
            reveal_fee: Amount::from_sat(self.reveal_fee_sat),
            fee_rate: FeeRate::from_sat_per_kwu(self.fee_rate_sat_kwu),
            leaf_script,
            hint,
        })
    }
}

/// The verifier's databases (see the module docs).
pub struct VerifierStore {
    state: Arc<RocksNodeStore>,
    meta: DB,
}

impl std::fmt::Debug for VerifierStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierStore")
            .field("meta", &self.meta.path())
            .finish_non_exhaustive()
    }
}

fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len().saturating_add(1));
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

/// `k` ‖ role ‖ account: the prefix of an account's task index entries for one role.
fn task_prefix(role: stint_api::TaskRole, account: &stint_contracts::AccountId) -> Vec<u8> {
    let mut k = Vec::with_capacity(66);
    k.push(PREFIX_TASK);
    k.push(role.tag());
    k.extend_from_slice(&account.0);
    k
}

fn task_key(
    role: stint_api::TaskRole,
    account: &stint_contracts::AccountId,
    task: &stint_contracts::TaskId,
) -> Vec<u8> {
    let mut k = task_prefix(role, account);
    k.extend_from_slice(&task.0);
    k
}

fn corrupt(what: &str) -> VerifierError {
    VerifierError::corrupt(format!("record: {what}"))
}

impl VerifierStore {
    /// Open (or create) the databases under `dir` for the chain with genesis hash
    /// `genesis_hash`, whose genesis state update is `genesis_update` (committed as version 0 on
    /// first open). Drops state versions that have no verified record (an interrupted commit).
    pub fn open(
        dir: &Path,
        genesis_hash: Hash,
        genesis_update: &TreeUpdate,
    ) -> Result<Self, VerifierError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| VerifierError::storage(format!("creating {}", dir.display()), e))?;
        let state = Arc::new(RocksNodeStore::open(dir.join("state"))?);
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let meta = DB::open(&opts, dir.join("verifier"))?;
        let store = Self { state, meta };
        match store.meta.get(KEY_GENESIS)? {
            Some(found) if found.as_slice() != genesis_hash.as_slice() => {
                return Err(VerifierError::WrongChain {
                    found: hex::encode(found),
                    expected: hex::encode(genesis_hash),
                });
            }
            Some(_) => {}
            None => store.meta.put(KEY_GENESIS, genesis_hash)?,
        }
        match store.state.root(0)? {
            Some(root) if root == genesis_update.root => {}
            Some(_) => {
                return Err(VerifierError::corrupt(
                    "state version 0 is not this genesis's state",
                ))
            }
            None => store.state.commit(0, genesis_update)?,
        }
        let last = store.verified()?.last().map_or(0, |v| v.number);
        if store.state.latest()?.is_some_and(|(v, _)| v > last) {
            store.state.truncate_above(last)?;
        }
        Ok(store)
    }

    /// The state node store (shared with the RPC readers).
    pub fn state(&self) -> &Arc<RocksNodeStore> {
        &self.state
    }

    /// Every verified batch, batch 1 first.
    pub fn verified(&self) -> Result<Vec<VerifiedBatch>, VerifierError> {
        let mut out = Vec::new();
        let start = [PREFIX_VERIFIED];
        for item in self
            .meta
            .iterator(IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if k.first() != Some(&PREFIX_VERIFIED) {
                break;
            }
            out.push(VerifiedBatch::try_from_slice(&v).map_err(|_| corrupt("verified"))?);
        }
        Ok(out)
    }

    /// Commit a verified batch: its state as version `number`, then its record with the
    /// location and receipt of each of its txs (`receipts`, in batch order), in one write.
    ///
    /// The task index (role ‖ account ‖ task id) gains the participants of every task a
    /// successful `TaskCreate` or `TaskAccept` of the batch touched, read from its new state.
    /// Entries are never deleted: one a rolled-back batch left is filtered out by the read,
    /// which checks each task's roles in the state it answers from.
    pub fn commit_verified(
        &self,
        batch: VerifiedBatch,
        updates: &[TreeUpdate],
        txs: &[stint_contracts::SignedTx],
        receipts: &[stint_contracts::Receipt],
        messages: &[(stint_api::MessageKey, stint_api::MessageRecord)],
    ) -> Result<(), VerifierError> {
        let mut write = WriteBatch::default();
        self.state.stage_commit(&mut write, batch.number, updates)?;
        self.state.db().write(write).map_err(|e| {
            VerifierError::storage(format!("writing the state of batch {}", batch.number), e)
        })?;
        let task_entries = self.task_entries(batch.state_root, txs, receipts)?;
        let encode = |value: &dyn Fn() -> std::io::Result<Vec<u8>>, what: &str| {
            value().map_err(|e| VerifierError::storage(format!("encoding {what}"), e))
        };
        let mut meta = WriteBatch::default();
        for (index, receipt) in receipts.iter().enumerate() {
            let entry = TxRecord {
                batch: batch.number,
                batch_hash: batch.hash,
                index: u32::try_from(index)
                    .map_err(|_| VerifierError::Internal("a batch of over 2^32 txs".into()))?,
                receipt: *receipt,
            };
            meta.put(
                key(PREFIX_TX, &receipt.txid.0),
                encode(&|| borsh::to_vec(&entry), "a transaction record")?,
            );
        }
        for entry in &task_entries {
            meta.put(entry, b"");
        }
        for (message, record) in messages {
            meta.put(
                key(PREFIX_MESSAGE, &message.to_bytes()),
                encode(&|| borsh::to_vec(record), "an L1 message record")?,
            );
        }
        meta.put(
            key(PREFIX_VERIFIED, &batch.number.to_be_bytes()),
            encode(&|| borsh::to_vec(&batch), "a verified batch record")?,
        );
        self.meta.write(meta)?;
        Ok(())
    }

    /// The task index keys a verified batch adds ([`stint_api::task_index_entries`] over the
    /// state under `root`).
    fn task_entries(
        &self,
        root: Hash,
        txs: &[stint_contracts::SignedTx],
        receipts: &[stint_contracts::Receipt],
    ) -> Result<Vec<Vec<u8>>, VerifierError> {
        let tree = stint_state::SparseMerkleTree::new(&*self.state);
        let entries = stint_api::task_index_entries(&tree.view(root), txs, receipts)
            .map_err(|e| VerifierError::storage("reading a task for the task index", e))?;
        Ok(entries
            .iter()
            .map(|(role, account, id)| task_key(*role, account, id))
            .collect())
    }

    /// Up to `limit` task ids where `account` had `role` in a verified batch, in id order.
    pub fn tasks_of(
        &self,
        role: stint_api::TaskRole,
        account: &stint_contracts::AccountId,
        limit: usize,
    ) -> Result<Vec<stint_contracts::TaskId>, VerifierError> {
        let prefix = task_prefix(role, account);
        let mut out = Vec::new();
        for item in self
            .meta
            .iterator(IteratorMode::From(&prefix, Direction::Forward))
        {
            let (k, _) = item?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            let id: [u8; 32] = k
                .get(prefix.len()..)
                .and_then(|rest| rest.try_into().ok())
                .ok_or_else(|| corrupt("task index key"))?;
            out.push(stint_contracts::TaskId(id));
        }
        Ok(out)
    }

    /// Where tx `txid` was executed, if in a batch this store verified. A record whose batch
    /// was rolled back since may remain (its body was gone); callers check it against the
    /// verified chain.
    pub fn transaction(
        &self,
        txid: &stint_contracts::Txid,
    ) -> Result<Option<TxRecord>, VerifierError> {
        self.meta
            .get_pinned(key(PREFIX_TX, &txid.0))?
            .map(|v| TxRecord::try_from_slice(&v).map_err(|_| corrupt("transaction")))
            .transpose()
    }

    /// The record of L1 message `message` (see [`stint_api::MessageRecord`]), if a batch this
    /// verifier verified executed it.
    pub fn message(
        &self,
        message: &stint_api::MessageKey,
    ) -> Result<Option<stint_api::MessageRecord>, VerifierError> {
        self.meta
            .get_pinned(key(PREFIX_MESSAGE, &message.to_bytes()))?
            .map(|v| {
                stint_api::MessageRecord::try_from_slice(&v).map_err(|_| corrupt("L1 message"))
            })
            .transpose()
    }

    /// Forget every verified batch above `number` and roll the state back to version `number`.
    pub fn rollback_to(&self, number: u64, above: &[VerifiedBatch]) -> Result<(), VerifierError> {
        let mut batch = WriteBatch::default();
        for v in above.iter().filter(|v| v.number > number) {
            batch.delete(key(PREFIX_VERIFIED, &v.number.to_be_bytes()));
            // Its txs are no longer in a verified batch (a re-mined batch indexes them anew).
            if let Some(body) = self.body(&v.hash)? {
                for tx in body.txs() {
                    batch.delete(key(PREFIX_TX, &tx.txid().0));
                }
            }
        }
        self.meta.write(batch)?;
        self.state.truncate_above(number)?;
        Ok(())
    }

    /// Keep a batch body.
    pub fn put_body<B>(&self, batch: &Batch<B>) -> Result<(), VerifierError> {
        self.meta.put(
            key(PREFIX_BODY, &batch.hash()),
            batch
                .encode()
                .map_err(|e| VerifierError::Internal(e.to_string()))?,
        )?;
        Ok(())
    }

    /// A kept batch body, as encoded.
    pub fn body_bytes(&self, hash: &Hash) -> Result<Option<Vec<u8>>, VerifierError> {
        Ok(self.meta.get(key(PREFIX_BODY, hash))?)
    }

    /// A kept batch body.
    pub fn body(&self, hash: &Hash) -> Result<Option<Batch<Unchecked>>, VerifierError> {
        match self.meta.get(key(PREFIX_BODY, hash))? {
            None => Ok(None),
            Some(bytes) => Batch::decode(&bytes)
                .map(Some)
                .map_err(|_| corrupt("batch body")),
        }
    }

    /// Record the last processed L1 block.
    pub fn set_l1_progress(&self, height: u64, hash: &[u8; 32]) -> Result<(), VerifierError> {
        let mut value = height.to_be_bytes().to_vec();
        value.extend_from_slice(hash);
        self.meta.put(KEY_L1, value)?;
        Ok(())
    }

    /// The last processed L1 block, if any.
    pub fn l1_progress(&self) -> Result<Option<(u64, [u8; 32])>, VerifierError> {
        let Some(value) = self.meta.get(KEY_L1)? else {
            return Ok(None);
        };
        let height = value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt("l1 progress"))?;
        let hash = value
            .get(8..)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt("l1 progress"))?;
        Ok(Some((height, hash)))
    }

    /// Every challenge this verifier posted, oldest first.
    pub fn challenges(&self) -> Result<Vec<ChallengeEntry>, VerifierError> {
        let mut out = Vec::new();
        let start = [PREFIX_CHALLENGE];
        for item in self
            .meta
            .iterator(IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if k.first() != Some(&PREFIX_CHALLENGE) {
                break;
            }
            out.push(serde_json::from_slice(&v).map_err(|_| corrupt("challenge"))?);
        }
        Ok(out)
    }

    /// Insert or update a challenge (by its `seq`).
    pub fn put_challenge(&self, entry: &ChallengeEntry) -> Result<(), VerifierError> {
        let value = serde_json::to_vec(entry)
            .map_err(|e| VerifierError::storage("encoding a challenge record", e))?;
        self.meta
            .put(key(PREFIX_CHALLENGE, &entry.seq.to_be_bytes()), value)?;
        Ok(())
    }
}
