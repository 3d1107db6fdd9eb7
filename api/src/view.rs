//! [`ChainView`]: the read-only view of a node's chain that the read methods are written against.

use stint_contracts::{AccountId, Receipt, SignedTx, TaskId, Txid};
use stint_protocol::{Batch, Genesis, L1Message};
use stint_state::{Hash, NodeStore};

use crate::messages::{MessageKey, MessageRecord};
use crate::types::{AnchorRef, BatchRef, BatchState, SyncStatus};

/// A failure of the node behind a view: storage or an internal fault, never the caller's
/// input. The reads answer −32603 with `kind` only; the details go to the node's log.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct ViewError {
    /// What the node was doing ("reading the state", "reading batch 7").
    pub what: String,
    /// The cause.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl ViewError {
    /// A failure while doing `what`.
    pub fn new(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// One batch as a node keeps it.
#[derive(Debug, Clone)]
pub struct BatchEntry {
    /// The batch, decoded from `encoded`.
    pub batch: Batch,
    /// Its canonical encoding (`Batch::encode`).
    pub encoded: Vec<u8>,
    /// Where it stands in this node's view.
    pub status: BatchState,
    /// Where it is anchored, if it is (and canonical).
    pub anchor: Option<AnchorRef>,
    /// For a derived batch (its header claims no state), the state root this node computed,
    /// once it has.
    pub derived_root: Option<Hash>,
}

/// Where a transaction stands in a node's view ([`ChainView::transaction`]).
#[derive(Debug, Clone)]
pub enum TxEntry {
    /// Admitted, not in a batch yet (a sequencer's mempool).
    Pending(SignedTx),
    /// Acknowledged but never executed (a sequencer's drop record).
    Dropped {
        /// The tx.
        tx: SignedTx,
        /// Why.
        reason: String,
    },
    /// Executed in batch `batch` (header hash `batch_hash`) at `index`.
    Included {
        /// Batch number.
        batch: u64,
        /// The batch's header hash.
        batch_hash: Hash,
        /// Position in the batch.
        index: u32,
        /// What its execution did.
        receipt: Receipt,
    },
}

/// Which participant of a task a `stint_getTasks` query names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskRole {
    /// The employer (who created and funded it).
    Employer,
    /// The worker (named at creation or who accepted it).
    Worker,
    /// The arbiter.
    Arbiter,
}

impl TaskRole {
    /// The role's byte in the nodes' task index keys (role ‖ account ‖ task id).
    pub fn tag(self) -> u8 {
        match self {
            TaskRole::Employer => 0,
            TaskRole::Worker => 1,
            TaskRole::Arbiter => 2,
        }
    }
}

/// The task index entries a batch adds: the participants of every task that its successful
/// `TaskCreate` and `TaskAccept` txs touched, with their roles as `state` (the state after the
/// batch) has them. Both nodes index with this, so `stint_getTasks` lists the same tasks on both.
pub fn task_index_entries(
    state: &impl stint_state::StateView,
    txs: &[SignedTx],
    receipts: &[Receipt],
) -> Result<Vec<(TaskRole, AccountId, TaskId)>, stint_contracts::ExecError> {
    use stint_contracts::Call;
    let mut out = Vec::new();
    for (tx, receipt) in txs.iter().zip(receipts) {
        if receipt.error.is_some() {
            continue;
        }
        let id = match &tx.tx.call {
            Call::TaskCreate { .. } => tx.tx.task_id(),
            Call::TaskAccept { id } => *id,
            _ => continue,
        };
        let Some(task) = stint_contracts::read_task(state, &id)? else {
            continue;
        };
        out.push((TaskRole::Employer, task.employer, id));
        if let Some(worker) = task.worker {
            out.push((TaskRole::Worker, worker, id));
        }
        if let Some(arbiter) = task.arbiter {
            out.push((TaskRole::Arbiter, arbiter, id));
        }
    }
    Ok(out)
}

/// What a node provides so the shared read methods can answer from it.
///
/// Versions are batch numbers: version `n` is the state after batch `n`, version 0 the
/// genesis state. A view must be internally consistent per call, not across calls: a read
/// takes [`ChainView::read_tip`] once and then reads that version.
pub trait ChainView: Send + Sync + 'static {
    /// The state node store.
    type State: NodeStore;

    /// The genesis.
    fn genesis(&self) -> &Genesis;

    /// The genesis state root.
    fn genesis_root(&self) -> Hash;

    /// The Bitcoin network the node follows (for addresses in answers).
    fn network(&self) -> bitcoin::Network;

    /// The state node store reads go to.
    fn state(&self) -> &Self::State;

    /// The newest version reads default to and may name: the sequencer's soft head, the
    /// verifier's verified tip.
    fn read_tip(&self) -> u64;

    /// The state root of version `version` (at most [`ChainView::read_tip`]), or `None` when it
    /// is not retained.
    fn state_root(&self, version: u64) -> Result<Option<Hash>, ViewError>;

    /// The timestamp of batch `version` (0 for the genesis), or `None` when it is not known.
    fn timestamp(&self, version: u64) -> Result<Option<u64>, ViewError>;

    /// The batch `which` names, if this node knows it.
    fn batch(&self, which: BatchRef) -> Result<Option<BatchEntry>, ViewError>;

    /// Where the batch with header hash `hash` at number `number` stands, without reading its
    /// body (receipt polls ask this often); `None` when this node does not hold that batch at
    /// that number (e.g. it was rolled back and replaced).
    fn batch_state(&self, number: u64, hash: &Hash) -> Result<Option<BatchState>, ViewError>;

    /// The node's heads and Bitcoin tip.
    fn sync_status(&self) -> SyncStatus;

    /// Where tx `txid` stands, if this node knows it: a sequencer knows what it admitted; a
    /// verifier knows the txs of the batches it verified.
    fn transaction(&self, txid: &Txid) -> Result<Option<TxEntry>, ViewError>;

    /// Up to `limit` ids, in id order, of tasks where `account` had `role` in some batch this
    /// node holds. May include tasks where it no longer has it (an index entry of a batch
    /// rolled back since): the read checks each against the state it answers from.
    fn tasks_of(
        &self,
        role: TaskRole,
        account: &AccountId,
        limit: usize,
    ) -> Result<Vec<TaskId>, ViewError>;

    /// The record this node wrote when a batch it holds (or held) executed the L1 message
    /// `key` ([`MessageRecord`]; the caller checks the batch is still held).
    fn message(&self, key: &MessageKey) -> Result<Option<MessageRecord>, ViewError>;

    /// The L1 message `key` if it is on the Bitcoin chain this node follows and no batch this
    /// node holds has executed it yet (it waits for one).
    fn waiting_message(&self, key: &MessageKey) -> Option<L1Message>;

    /// The nonce after this node's pending txs of `account`, whose nonce in the soft state is
    /// `nonce`. Nodes without a mempool keep the default.
    fn pending_nonce(&self, account: &AccountId, nonce: u64) -> u64 {
        let _ = account;
        nonce
    }
}
