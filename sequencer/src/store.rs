//! Durable storage: one RocksDB holding the state tree (the `smt_*` column families of
//! [`RocksNodeStore`]) and the sequencer's own records.
//!
//! | cf | key | value |
//! | --- | --- | --- |
//! | `seq_txlog` | admission sequence `u64 BE` | encoded [`SignedTx`] (acknowledged, not yet sealed) |
//! | `seq_batches` | batch number `u64 BE` | [`StoredBatch`] |
//! | `seq_batch_hash` | header hash | batch number `u64 BE` |
//! | `seq_receipts` | txid | [`StoredReceipt`] |
//! | `seq_task_index` | role ‖ account ‖ task id | empty |
//! | `seq_anchors` | batch number `u64 BE` | [`StoredAnchor`] (the last envelope posted for it) |
//! | `seq_parked` | header hash | [`ParkedBatch`] (a rolled-back batch kept until its slot is final) |
//! | `seq_meta` | `genesis_hash` | the genesis hash this database belongs to |
//! | `seq_meta` | `fault_done` | present once the configured fault mode was committed |
//!
//! State version `n` is the state after batch `n` (version 0 is genesis). Sealing batch `n`
//! writes its state version, the batch, its receipts and task index entries, and deletes the
//! admission log entries it consumed, in **one** synced write batch: after a crash either all of
//! it is there or none, so no acknowledged tx is lost and none is executed twice.
//!
//! A rewind (see `converge`: a valid challenge, a batch derivation would refuse, or a canonical
//! chain that differs from ours) is one synced write batch too: it drops the state versions,
//! batches, hash index entries, anchors and receipts above the batch that stays, *parks* every
//! dropped batch (body, honest root and receipts, keyed by header hash), restores the parked
//! batches derivation made canonical in their place (their state versions come back from the
//! nodes a rollback never deletes), and puts the txs to seal again into the admission log while
//! deleting the log entries of txs the restored batches executed. After a crash either all of
//! it is there or none. Parked batches are deleted once derivation's final tip reaches their
//! number: a final slot never changes, so they can never be canonical again.

use borsh::{BorshDeserialize, BorshSerialize};
use rocksdb::{ColumnFamily, Direction, IteratorMode, WriteBatch, WriteOptions};
use stint_api::{MessageKey, MessageRecord, TaskRole};
use stint_contracts::{AccountId, Receipt, TaskId, Txid};
use stint_protocol::{Batch, Genesis};
use stint_state::{Hash, RocksNodeStore, TreeUpdate};

use crate::error::SequencerError;

const CF_TXLOG: &str = "seq_txlog";
const CF_BATCHES: &str = "seq_batches";
const CF_BATCH_HASH: &str = "seq_batch_hash";
const CF_RECEIPTS: &str = "seq_receipts";
const CF_TASKS: &str = "seq_task_index";
const CF_ANCHORS: &str = "seq_anchors";
const CF_PARKED: &str = "seq_parked";
const CF_MESSAGES: &str = "seq_l1_messages";
const CF_META: &str = "seq_meta";
const META_GENESIS: &[u8] = b"genesis_hash";
const META_FAULT_DONE: &[u8] = b"fault_done";

/// A sealed batch as stored.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub(crate) struct StoredBatch {
    /// The encoded batch ([`Batch::encode`]).
    pub(crate) encoded: Vec<u8>,
    /// The state root this sequencer really computed (differs from the header's claim only in a
    /// fault mode that lies about it).
    pub(crate) honest_root: Hash,
    /// `(index, signature)` of txs whose signature a fault mode replaced: the signatures the
    /// users really sent, restored when the batch is rolled back.
    pub(crate) original_sigs: Vec<(u32, [u8; 64])>,
    /// The txids of the forced txs it executed itself (protocol v3; not those it restates),
    /// for status notifications.
    pub(crate) forced: Vec<Txid>,
}

impl StoredBatch {
    pub(crate) fn batch(&self) -> Result<Batch, SequencerError> {
        Batch::decode(&self.encoded)
            .map_err(|e| SequencerError::corrupt_by("stored batch does not decode", e))
    }
}

/// What happened to an acknowledged tx.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) enum StoredReceipt {
    /// Executed in `batch` at `index`.
    Included {
        /// Batch number.
        batch: u64,
        /// Batch header hash.
        batch_hash: Hash,
        /// Index in the batch.
        index: u32,
        /// The receipt.
        receipt: Receipt,
    },
    /// Acknowledged but never executed (invalid by the time it was sealed, or replaced).
    Dropped {
        /// Why.
        reason: String,
        /// The tx itself.
        tx: Vec<u8>,
    },
}

/// The last envelope posted for a batch: enough to track, bump or rebroadcast it after a restart.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct StoredAnchor {
    /// Header hash of the batch it carries.
    pub(crate) batch_hash: Hash,
    /// Consensus-encoded commit transaction.
    pub(crate) commit: Vec<u8>,
    /// Consensus-encoded reveal transaction.
    pub(crate) reveal: Vec<u8>,
    /// Envelope output index in the commit.
    pub(crate) commit_vout: u32,
    /// Commit fee (sat).
    pub(crate) commit_fee: u64,
    /// Reveal fee (sat).
    pub(crate) reveal_fee: u64,
    /// Fee rate (sat/kwu).
    pub(crate) fee_rate_sat_kwu: u64,
    /// Envelope leaf script.
    pub(crate) leaf_script: Vec<u8>,
    /// L1 height when it was posted (for fee bumps).
    pub(crate) posted_at_height: u64,
}

/// Everything sealing one batch writes, atomically.
pub(crate) struct SealWrite<'a> {
    pub(crate) number: u64,
    pub(crate) hash: Hash,
    pub(crate) batch: StoredBatch,
    pub(crate) updates: &'a [TreeUpdate],
    pub(crate) receipts: Vec<(Txid, StoredReceipt)>,
    pub(crate) consumed_log: Vec<u64>,
    pub(crate) task_index: Vec<(TaskRole, AccountId, TaskId)>,
    /// This batch commits the configured fault (recorded so a restart does not commit it again).
    pub(crate) fault_committed: bool,
    /// What the L1 messages it executed itself did (see [`stint_api::MessageRecord`]).
    pub(crate) messages: Vec<(MessageKey, MessageRecord)>,
}

/// A rolled-back batch, kept in case derivation makes it canonical again (a reorg removed the
/// challenge that invalidated it, or an envelope of it was mined after all).
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub(crate) struct ParkedBatch {
    /// Its batch number.
    pub(crate) number: u64,
    /// The batch as it was stored.
    pub(crate) stored: StoredBatch,
    /// The receipts of its txs when it was dropped.
    pub(crate) receipts: Vec<(Txid, StoredReceipt)>,
}

/// Everything a rewind to batch `to` writes, atomically (see the module docs).
pub(crate) struct RewindWrite {
    /// The batch that stays (its state version stays).
    pub(crate) to: u64,
    /// The head before the rewind.
    pub(crate) from: u64,
    /// The dropped batches `to + 1 ..= from`, by header hash, to park.
    pub(crate) parked: Vec<(Hash, ParkedBatch)>,
    /// Parked batches to make batches `to + 1 ..` again, in order, by header hash.
    pub(crate) restored: Vec<(Hash, ParkedBatch)>,
    /// Admission log entries to add: the txs to seal again.
    pub(crate) log: Vec<(u64, Vec<u8>)>,
    /// Admission log entries to delete: pending txs the restored batches executed.
    pub(crate) consumed_log: Vec<u64>,
}

/// The sequencer's database.
pub(crate) struct Store {
    state: RocksNodeStore,
}

fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn read_be(bytes: &[u8]) -> Result<u64, SequencerError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| SequencerError::corrupt("corrupt u64 key"))?;
    Ok(u64::from_be_bytes(arr))
}

fn decode<T: BorshDeserialize>(bytes: &[u8], what: &str) -> Result<T, SequencerError> {
    borsh::from_slice(bytes).map_err(|e| SequencerError::corrupt_by(format!("corrupt {what}"), e))
}

fn encode<T: BorshSerialize>(value: &T) -> Result<Vec<u8>, SequencerError> {
    borsh::to_vec(value).map_err(|e| SequencerError::Internal(format!("encoding: {e}")))
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

impl Store {
    /// Open (or create) the database at `path` for `genesis`: a new database gets the genesis
    /// state as version 0; an existing one must belong to the same genesis.
    pub(crate) fn open(path: &std::path::Path, genesis: &Genesis) -> Result<Self, SequencerError> {
        let state = RocksNodeStore::open_with_column_families(
            path,
            &[
                CF_TXLOG,
                CF_BATCHES,
                CF_BATCH_HASH,
                CF_RECEIPTS,
                CF_TASKS,
                CF_ANCHORS,
                CF_PARKED,
                CF_MESSAGES,
                CF_META,
            ],
        )?;
        let store = Self { state };
        let genesis_hash = genesis.hash();
        match store.db().get_cf(store.cf(CF_META)?, META_GENESIS)? {
            Some(stored) if stored.as_slice() == genesis_hash.as_slice() => {}
            Some(stored) => {
                return Err(SequencerError::corrupt(format!(
                    "data directory belongs to genesis {}, not {}",
                    hex::encode(stored),
                    hex::encode(genesis_hash)
                )))
            }
            None => {
                let update = genesis
                    .state_update()
                    .map_err(|e| SequencerError::Internal(e.to_string()))?;
                let mut batch = WriteBatch::default();
                store
                    .state
                    .stage_commit(&mut batch, 0, std::slice::from_ref(&update))?;
                batch.put_cf(store.cf(CF_META)?, META_GENESIS, genesis_hash);
                store.db().write_opt(batch, &synced())?;
            }
        }
        Ok(store)
    }

    fn db(&self) -> &rocksdb::DB {
        self.state.db()
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, SequencerError> {
        self.db()
            .cf_handle(name)
            .ok_or_else(|| SequencerError::corrupt(format!("missing column family {name}")))
    }

    /// The node store of the state tree.
    pub(crate) fn state(&self) -> &RocksNodeStore {
        &self.state
    }

    /// The state root after batch `number` (0 = genesis), if retained.
    pub(crate) fn state_root(&self, number: u64) -> Result<Option<Hash>, SequencerError> {
        Ok(self.state.root(number)?)
    }

    /// Append acknowledged txs to the admission log and fsync, all in one write.
    pub(crate) fn append_log(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), SequencerError> {
        let cf = self.cf(CF_TXLOG)?;
        let mut batch = WriteBatch::default();
        for (seq, bytes) in entries {
            batch.put_cf(cf, be(*seq), bytes);
        }
        self.db().write_opt(batch, &synced())?;
        Ok(())
    }

    /// Every admission log entry, in sequence order.
    pub(crate) fn load_log(&self) -> Result<Vec<(u64, Vec<u8>)>, SequencerError> {
        let mut out = Vec::new();
        for item in self
            .db()
            .iterator_cf(self.cf(CF_TXLOG)?, IteratorMode::Start)
        {
            let (k, v) = item?;
            out.push((read_be(&k)?, v.to_vec()));
        }
        Ok(out)
    }

    /// Drop admission log entries and record receipts (txs dropped at startup), in one write.
    pub(crate) fn drop_logged(
        &self,
        entries: &[(u64, Txid, StoredReceipt)],
    ) -> Result<(), SequencerError> {
        let mut batch = WriteBatch::default();
        let log = self.cf(CF_TXLOG)?;
        let receipts = self.cf(CF_RECEIPTS)?;
        for (seq, txid, receipt) in entries {
            batch.delete_cf(log, be(*seq));
            if self.db().get_pinned_cf(receipts, txid.0)?.is_none() {
                batch.put_cf(receipts, txid.0, encode(receipt)?);
            }
        }
        self.db().write_opt(batch, &synced())?;
        Ok(())
    }

    /// Persist a sealed batch with its state, receipts and consumed log entries, atomically.
    pub(crate) fn commit_seal(&self, seal: SealWrite<'_>) -> Result<(), SequencerError> {
        let mut batch = WriteBatch::default();
        self.state
            .stage_commit(&mut batch, seal.number, seal.updates)?;
        batch.put_cf(self.cf(CF_BATCHES)?, be(seal.number), encode(&seal.batch)?);
        batch.put_cf(self.cf(CF_BATCH_HASH)?, seal.hash, be(seal.number));
        let receipts = self.cf(CF_RECEIPTS)?;
        // In key order: a sorted run goes into the memtable much faster (txids are hashes).
        let mut sorted: Vec<&(Txid, StoredReceipt)> = seal.receipts.iter().collect();
        sorted.sort_unstable_by_key(|(txid, _)| txid.0);
        for (txid, receipt) in sorted {
            batch.put_cf(receipts, txid.0, encode(receipt)?);
        }
        let log = self.cf(CF_TXLOG)?;
        for seq in &seal.consumed_log {
            batch.delete_cf(log, be(*seq));
        }
        let tasks = self.cf(CF_TASKS)?;
        for (role, account, task) in &seal.task_index {
            batch.put_cf(tasks, task_index_key(*role, account, task), b"");
        }
        if seal.fault_committed {
            batch.put_cf(self.cf(CF_META)?, META_FAULT_DONE, b"");
        }
        let messages = self.cf(CF_MESSAGES)?;
        for (key, record) in &seal.messages {
            batch.put_cf(messages, key.to_bytes(), encode(record)?);
        }
        self.db().write_opt(batch, &synced())?;
        Ok(())
    }

    /// Whether the configured fault was committed already (by this or an earlier process).
    pub(crate) fn fault_done(&self) -> Result<bool, SequencerError> {
        Ok(self
            .db()
            .get_pinned_cf(self.cf(CF_META)?, META_FAULT_DONE)?
            .is_some())
    }

    /// Rewind to batch `rewind.to`, atomically (see the module docs). Task index entries of
    /// the dropped batches stay: the index is a hint, and readers skip tasks the state lacks.
    pub(crate) fn rewind(&self, rewind: &RewindWrite) -> Result<(), SequencerError> {
        let mut batch = WriteBatch::default();
        self.state.stage_truncate_above(&mut batch, rewind.to)?;
        let batches = self.cf(CF_BATCHES)?;
        let anchors = self.cf(CF_ANCHORS)?;
        let hashes = self.cf(CF_BATCH_HASH)?;
        let receipts = self.cf(CF_RECEIPTS)?;
        let parked = self.cf(CF_PARKED)?;
        let mut number = rewind.to.saturating_add(1);
        while number <= rewind.from {
            batch.delete_cf(batches, be(number));
            batch.delete_cf(anchors, be(number));
            number = number.saturating_add(1);
        }
        for (hash, dropped) in &rewind.parked {
            batch.delete_cf(hashes, hash);
            for (txid, _) in &dropped.receipts {
                batch.delete_cf(receipts, txid.0);
            }
            batch.put_cf(parked, hash, encode(dropped)?);
        }
        let mut number = rewind.to;
        for (hash, restored) in &rewind.restored {
            number = number.saturating_add(1);
            if restored.number != number {
                return Err(SequencerError::Internal(format!(
                    "parked batch {} restored as batch {number}",
                    restored.number
                )));
            }
            self.state
                .stage_restore_version(&mut batch, number, &restored.stored.honest_root)?;
            batch.put_cf(batches, be(number), encode(&restored.stored)?);
            batch.put_cf(hashes, hash, be(number));
            for (txid, receipt) in &restored.receipts {
                batch.put_cf(receipts, txid.0, encode(receipt)?);
            }
            batch.delete_cf(parked, hash);
        }
        let log = self.cf(CF_TXLOG)?;
        for (seq, bytes) in &rewind.log {
            batch.put_cf(log, be(*seq), bytes);
        }
        for seq in &rewind.consumed_log {
            batch.delete_cf(log, be(*seq));
        }
        self.db().write_opt(batch, &synced())?;
        Ok(())
    }

    /// The record of L1 message `key`, if a batch this sequencer sealed (or derived) executed
    /// it. Records are overwritten, never deleted: readers check the batch is still held.
    pub(crate) fn message(
        &self,
        key: &MessageKey,
    ) -> Result<Option<MessageRecord>, SequencerError> {
        self.db()
            .get_pinned_cf(self.cf(CF_MESSAGES)?, key.to_bytes())?
            .map(|v| decode(&v, "L1 message record"))
            .transpose()
    }

    /// The parked batch with header hash `hash`.
    pub(crate) fn parked(&self, hash: &Hash) -> Result<Option<ParkedBatch>, SequencerError> {
        self.db()
            .get_pinned_cf(self.cf(CF_PARKED)?, hash)?
            .map(|v| decode(&v, "parked batch"))
            .transpose()
    }

    /// Delete the parked batches numbered `final_number` or below (their slot is final).
    /// Returns how many were deleted.
    pub(crate) fn prune_parked(&self, final_number: u64) -> Result<usize, SequencerError> {
        let cf = self.cf(CF_PARKED)?;
        let mut batch = WriteBatch::default();
        let mut count = 0usize;
        for item in self.db().iterator_cf(cf, IteratorMode::Start) {
            let (hash, value) = item?;
            let parked: ParkedBatch = decode(&value, "parked batch")?;
            if parked.number <= final_number {
                batch.delete_cf(cf, hash);
                count = count.saturating_add(1);
            }
        }
        if count > 0 {
            self.db().write_opt(batch, &synced())?;
        }
        Ok(count)
    }

    /// The latest sealed batch number (0 when none).
    pub(crate) fn head_number(&self) -> Result<u64, SequencerError> {
        match self
            .db()
            .iterator_cf(self.cf(CF_BATCHES)?, IteratorMode::End)
            .next()
        {
            None => Ok(0),
            Some(item) => read_be(&item?.0),
        }
    }

    /// Batch `number`, if sealed.
    pub(crate) fn batch(&self, number: u64) -> Result<Option<StoredBatch>, SequencerError> {
        self.db()
            .get_pinned_cf(self.cf(CF_BATCHES)?, be(number))?
            .map(|v| decode(&v, "batch"))
            .transpose()
    }

    /// The number of the batch with header hash `hash`.
    pub(crate) fn batch_number(&self, hash: &Hash) -> Result<Option<u64>, SequencerError> {
        self.db()
            .get_pinned_cf(self.cf(CF_BATCH_HASH)?, hash)?
            .map(|v| read_be(&v))
            .transpose()
    }

    /// What happened to `txid`, if it was sealed or dropped.
    pub(crate) fn receipt(&self, txid: &Txid) -> Result<Option<StoredReceipt>, SequencerError> {
        self.db()
            .get_pinned_cf(self.cf(CF_RECEIPTS)?, txid.0)?
            .map(|v| decode(&v, "receipt"))
            .transpose()
    }

    /// Task ids where `account` has `role`, in id order, at most `limit`.
    pub(crate) fn tasks_of(
        &self,
        role: TaskRole,
        account: &AccountId,
        limit: usize,
    ) -> Result<Vec<TaskId>, SequencerError> {
        let mut prefix = Vec::with_capacity(33);
        prefix.push(role.tag());
        prefix.extend_from_slice(&account.0);
        let mut out = Vec::new();
        for item in self.db().iterator_cf(
            self.cf(CF_TASKS)?,
            IteratorMode::From(&prefix, Direction::Forward),
        ) {
            let (k, _) = item?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            let id: [u8; 32] = k
                .get(33..)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| SequencerError::corrupt("corrupt task index key"))?;
            out.push(TaskId(id));
        }
        Ok(out)
    }

    /// Record the envelope posted for batch `number` (synced).
    pub(crate) fn put_anchor(
        &self,
        number: u64,
        anchor: &StoredAnchor,
    ) -> Result<(), SequencerError> {
        self.db()
            .put_cf_opt(self.cf(CF_ANCHORS)?, be(number), encode(anchor)?, &synced())?;
        Ok(())
    }

    /// The envelope last posted for batch `number`.
    pub(crate) fn anchor(&self, number: u64) -> Result<Option<StoredAnchor>, SequencerError> {
        self.db()
            .get_pinned_cf(self.cf(CF_ANCHORS)?, be(number))?
            .map(|v| decode(&v, "anchor"))
            .transpose()
    }
}

fn task_index_key(role: TaskRole, account: &AccountId, task: &TaskId) -> Vec<u8> {
    let mut key = Vec::with_capacity(65);
    key.push(role.tag());
    key.extend_from_slice(&account.0);
    key.extend_from_slice(&task.0);
    key
}
