//! The sequencer's chain as `stint-api`'s shared read methods see it ([`ChainView`] on
//! [`SequencerView`]): its soft state, its sealed batches with what derivation says of them, its
//! mempool's pending txs and nonces. It reads the store, the chain state and admission's
//! mempool, never the node.

use std::sync::Arc;

use stint_api::{
    AnchorRef, BatchEntry, BatchRef, BatchState, ChainView, Head, Hex32, L1Ref, MessageKey,
    MessageRecord, SyncStatus, TaskRole, TxEntry, ViewError,
};
use stint_contracts::{AccountId, SignedTx, TaskId, Txid};
use stint_protocol::{Genesis, L1Message};
use stint_state::{Hash, RocksNodeStore};

use crate::admission::Admission;
use crate::chain::{BatchFinality, ChainState};
use crate::store::{Store, StoredReceipt};

/// The read side of the node.
pub(crate) struct SequencerView {
    genesis: Genesis,
    genesis_root: Hash,
    store: Arc<Store>,
    chain: Arc<ChainState>,
    /// Pending txs and nonces.
    admission: Arc<Admission>,
    network: bitcoin::Network,
}

impl SequencerView {
    pub(crate) fn new(
        genesis: Genesis,
        genesis_root: Hash,
        store: Arc<Store>,
        chain: Arc<ChainState>,
        admission: Arc<Admission>,
        network: bitcoin::Network,
    ) -> Self {
        Self {
            genesis,
            genesis_root,
            store,
            chain,
            admission,
            network,
        }
    }

    /// The store (for the crate's unit tests).
    #[cfg(test)]
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }
}

fn state_of(finality: BatchFinality) -> BatchState {
    match finality {
        BatchFinality::Soft => BatchState::Soft,
        BatchFinality::Anchored => BatchState::Anchored,
        BatchFinality::Final => BatchState::Final,
        BatchFinality::Invalidated => BatchState::Invalidated,
    }
}

fn view_error(what: impl Into<String>, e: crate::SequencerError) -> ViewError {
    ViewError::new(what, e)
}

impl ChainView for SequencerView {
    type State = RocksNodeStore;

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
        self.store.state()
    }

    fn read_tip(&self) -> u64 {
        self.chain.head().number
    }

    fn state_root(&self, version: u64) -> Result<Option<Hash>, ViewError> {
        self.store
            .state_root(version)
            .map_err(|e| view_error(format!("reading the root of state version {version}"), e))
    }

    fn timestamp(&self, version: u64) -> Result<Option<u64>, ViewError> {
        if version == 0 {
            return Ok(Some(0));
        }
        let head = self.chain.head();
        if head.number == version {
            return Ok(Some(head.timestamp));
        }
        let what = || format!("reading batch {version}");
        match self
            .store
            .batch(version)
            .map_err(|e| view_error(what(), e))?
        {
            None => Ok(None),
            Some(stored) => {
                let batch = stored.batch().map_err(|e| view_error(what(), e))?;
                Ok(Some(batch.header().timestamp))
            }
        }
    }

    fn batch(&self, which: BatchRef) -> Result<Option<BatchEntry>, ViewError> {
        let number = match which {
            BatchRef::Number(n) => n,
            BatchRef::Hash(h) => {
                match self
                    .store
                    .batch_number(&h)
                    .map_err(|e| view_error("reading the batch hash index", e))?
                {
                    Some(n) => n,
                    None => return Ok(None),
                }
            }
        };
        let what = || format!("reading batch {number}");
        let Some(stored) = self
            .store
            .batch(number)
            .map_err(|e| view_error(what(), e))?
        else {
            return Ok(None);
        };
        let batch = stored.batch().map_err(|e| view_error(what(), e))?;
        let hash = batch.hash();
        if matches!(which, BatchRef::Hash(h) if h != hash) {
            // The hash named a batch that was rolled back; another one holds its number now.
            return Ok(None);
        }
        let chain = self.chain.status();
        let status = state_of(chain.finality(number, &hash));
        let anchor = chain
            .anchored
            .get(&number)
            .filter(|a| a.hash == hash)
            .map(|a| AnchorRef {
                btc_txid: a.btc_txid,
                height: a.height,
            });
        Ok(Some(BatchEntry {
            derived_root: batch.header().is_derived().then_some(stored.honest_root),
            batch,
            encoded: stored.encoded,
            status,
            anchor,
        }))
    }

    fn batch_state(&self, number: u64, hash: &Hash) -> Result<Option<BatchState>, ViewError> {
        // The chain status tells anchored, final and invalidated batches apart by hash; a soft
        // one is ours only while we hold it at that number (a rolled-back batch is parked).
        let finality = self.chain.status().finality(number, hash);
        if finality == BatchFinality::Soft {
            let held = self
                .store
                .batch_number(hash)
                .map_err(|e| view_error(format!("reading batch {number}"), e))?;
            if held != Some(number) {
                return Ok(None);
            }
        }
        Ok(Some(state_of(finality)))
    }

    fn message(&self, key: &MessageKey) -> Result<Option<MessageRecord>, ViewError> {
        self.store
            .message(key)
            .map_err(|e| view_error("reading an L1 message record", e))
    }

    fn waiting_message(&self, key: &MessageKey) -> Option<L1Message> {
        // Above the head's message horizon no batch of ours has executed it yet.
        let after = self
            .genesis
            .message_horizon(self.chain.head().l1_origin.height);
        let chain = self.chain.status();
        chain
            .l1_messages
            .range(after.saturating_add(1)..)
            .flat_map(|(_, messages)| messages.iter())
            .find(|m| MessageKey::of(m) == *key)
            .cloned()
    }

    fn transaction(&self, txid: &Txid) -> Result<Option<TxEntry>, ViewError> {
        if let Some(tx) = self.admission.pending_tx(txid) {
            return Ok(Some(TxEntry::Pending(tx)));
        }
        let what = || format!("reading the receipt of {txid}");
        Ok(
            match self
                .store
                .receipt(txid)
                .map_err(|e| view_error(what(), e))?
            {
                None => None,
                Some(StoredReceipt::Dropped { reason, tx }) => Some(TxEntry::Dropped {
                    tx: SignedTx::decode(&tx).map_err(|e| ViewError::new(what(), e))?,
                    reason,
                }),
                Some(StoredReceipt::Included {
                    batch,
                    batch_hash,
                    index,
                    receipt,
                }) => Some(TxEntry::Included {
                    batch,
                    batch_hash,
                    index,
                    receipt,
                }),
            },
        )
    }

    fn tasks_of(
        &self,
        role: TaskRole,
        account: &AccountId,
        limit: usize,
    ) -> Result<Vec<TaskId>, ViewError> {
        self.store
            .tasks_of(role, account, limit)
            .map_err(|e| view_error("reading the task index", e))
    }

    fn sync_status(&self) -> SyncStatus {
        let head = self.chain.head();
        let chain = self.chain.status();
        let genesis = Head {
            number: 0,
            hash: Hex32(self.genesis.hash()),
            state_root: Hex32(self.genesis_root),
        };
        let at = |n: u64| match chain.anchored.get(&n) {
            Some(a) if n > 0 => Head {
                number: n,
                hash: Hex32(a.hash),
                state_root: Hex32(a.state_root),
            },
            _ => genesis,
        };
        SyncStatus {
            soft: Head {
                number: head.number,
                hash: Hex32(head.hash),
                state_root: Hex32(head.claimed_root),
            },
            anchored: at(chain.anchored_number()),
            final_: at(chain.final_number),
            l1: chain.l1_tip.map(|(height, hash)| L1Ref { height, hash }),
        }
    }

    fn pending_nonce(&self, account: &AccountId, nonce: u64) -> u64 {
        self.admission.pending_nonce(account, nonce)
    }
}
