//! [`VerifierView`]: the verifier's chain as the shared read methods see it — its verified
//! state (the state store, read by version = batch number), the batch bodies and tx records of
//! its store, and the published [`Status`] — implementing `stint_api`'s read-only
//! [`ChainView`]. The RPC serves reads from this view, never from the node's loop.

use std::sync::Arc;

use stint_api::{
    AnchorRef, BatchEntry, BatchRef, BatchState, ChainView, Head, Hex32, L1Ref, MessageKey,
    MessageRecord, SyncStatus, TaskRole, TxEntry, ViewError,
};
use stint_protocol::{Batch, BatchStatus, Genesis, L1Message};
use stint_state::{Hash, RocksNodeStore};

use crate::status::{BatchSummary, Status};
use crate::store::{VerifiedBatch, VerifierStore};

/// Read-only access to what the verifier derived and verified (see the module docs). Reads
/// default to the verified tip and may name at most it; soft and anchored are the verified tip.
#[derive(Debug)]
pub struct VerifierView {
    genesis: Genesis,
    genesis_root: Hash,
    state: Arc<RocksNodeStore>,
    store: Arc<VerifierStore>,
    status: Arc<Status>,
    network: bitcoin::Network,
}

impl VerifierView {
    /// A view over `state` and `store` (opened for `genesis`, whose state root is
    /// `genesis_root`) that follows what is published to `status`.
    pub fn new(
        genesis: Genesis,
        genesis_root: Hash,
        state: Arc<RocksNodeStore>,
        store: Arc<VerifierStore>,
        status: Arc<Status>,
        network: bitcoin::Network,
    ) -> Self {
        Self {
            genesis,
            genesis_root,
            state,
            store,
            status,
            network,
        }
    }

    /// The published status this view reads heads and batches from.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// The verifier's store (batch bodies, tx records, the task index, challenges).
    pub fn store(&self) -> &Arc<VerifierStore> {
        &self.store
    }

    /// The head of `v`, or the genesis when there is none.
    pub fn head_of(&self, v: Option<VerifiedBatch>) -> Head {
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

    fn entry(&self, b: &BatchSummary) -> Result<Option<BatchEntry>, ViewError> {
        let number = b.record.header.number;
        let Some(encoded) = self
            .store
            .body_bytes(&b.record.hash)
            .map_err(|e| ViewError::new(format!("reading the body of batch {number}"), e))?
        else {
            return Ok(None);
        };
        let batch = Batch::decode(&encoded)
            .map_err(|e| ViewError::new(format!("decoding the body of batch {number}"), e))?;
        Ok(Some(BatchEntry {
            derived_root: b.computed_root.filter(|_| b.record.header.is_derived()),
            batch,
            encoded,
            status: state_of(b.status),
            anchor: Some(AnchorRef {
                btc_txid: b.record.anchor.btc_txid,
                height: b.record.anchor.height,
            }),
        }))
    }
}

fn state_of(status: BatchStatus) -> BatchState {
    match status {
        BatchStatus::Anchored => BatchState::Anchored,
        BatchStatus::Final => BatchState::Final,
        BatchStatus::Invalidated => BatchState::Invalidated,
    }
}

impl ChainView for VerifierView {
    type State = Arc<RocksNodeStore>;

    fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    fn genesis_root(&self) -> Hash {
        self.genesis_root
    }

    fn network(&self) -> bitcoin::Network {
        self.network
    }

    fn state(&self) -> &Self::State {
        &self.state
    }

    fn read_tip(&self) -> u64 {
        let published = self.status.read().verified.map_or(0, |v| v.number);
        // A rollback truncates the state before the loop publishes the new status: never name a
        // version the store no longer holds (reads would answer "not retained" meanwhile).
        match self.state.latest() {
            Ok(Some((stored, _))) => published.min(stored),
            Ok(None) => 0,
            Err(_) => published,
        }
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
        Ok(self
            .status
            .read()
            .canonical_at(version)
            .map(|b| b.record.header.timestamp))
    }

    fn batch(&self, which: BatchRef) -> Result<Option<BatchEntry>, ViewError> {
        let found = {
            let s = self.status.read();
            match which {
                BatchRef::Number(n) => s.canonical_at(n).cloned(),
                BatchRef::Hash(h) => s
                    .canonical
                    .iter()
                    .chain(s.invalidated.iter().rev())
                    .find(|b| b.record.hash == h)
                    .cloned(),
            }
        };
        match found {
            Some(b) => self.entry(&b),
            None => Ok(None),
        }
    }

    fn batch_state(&self, number: u64, hash: &Hash) -> Result<Option<BatchState>, ViewError> {
        Ok(self
            .status
            .read()
            .canonical_at(number)
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
            let s = self.status.read();
            record.batch <= s.verified.map_or(0, |v| v.number)
                && s.canonical_at(record.batch)
                    .is_some_and(|b| b.record.hash == record.batch_hash)
        };
        Ok(on_chain.then_some(TxEntry::Included {
            batch: record.batch,
            batch_hash: record.batch_hash,
            index: record.index,
            receipt: record.receipt,
        }))
    }

    fn message(&self, key: &MessageKey) -> Result<Option<MessageRecord>, ViewError> {
        self.store
            .message(key)
            .map_err(|e| ViewError::new("reading an L1 message record", e))
    }

    fn waiting_message(&self, key: &MessageKey) -> Option<L1Message> {
        self.status.read().waiting.get(key).cloned()
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
        let s = self.status.read();
        let tip = self.head_of(s.verified);
        SyncStatus {
            soft: tip,
            anchored: tip,
            final_: self.head_of(s.final_tip),
            l1: s.l1.map(|(height, hash)| L1Ref { height, hash }),
        }
    }
}
