//! Test-only forging of the four fault kinds a misbehaving sequencer produces. Each forged
//! batch is structurally valid (derivation anchors it): only replay can tell.

use stint_contracts::{account_entry, read_account, AccountId, Call};
use stint_protocol::{trace_root, tx_root, Batch, BatchHeader, Checkpoint, SealedBatch};
use stint_state::{ChangeSet, MemoryNodeStore, SparseMerkleTree};

/// Rebuild `sealed`'s batch with `checkpoints` (trace root and state root follow).
fn with_checkpoints(sealed: &SealedBatch, checkpoints: Vec<Checkpoint>) -> Batch {
    let (header, _, txs) = sealed.batch.clone().into_parts();
    let header = BatchHeader {
        state_root: checkpoints.last().unwrap().state_root,
        trace_root: trace_root(&checkpoints),
        ..header
    };
    Batch::new(header, checkpoints, txs)
}

/// bad-state-root: the batch lies about the result of its execution (the last checkpoint, which
/// is the state root).
pub(crate) fn bad_state_root(sealed: &SealedBatch) -> Batch {
    let mut checkpoints = sealed.batch.checkpoints().to_vec();
    checkpoints.last_mut().unwrap().state_root[7] ^= 0x01;
    with_checkpoints(sealed, checkpoints)
}

/// bad-checkpoint: one intermediate checkpoint is wrong; the state root is honest.
pub(crate) fn bad_checkpoint(sealed: &SealedBatch, segment: usize) -> Batch {
    let mut checkpoints = sealed.batch.checkpoints().to_vec();
    assert!(segment < checkpoints.len(), "needs a later segment");
    checkpoints[segment - 1].state_root[0] ^= 0x80;
    with_checkpoints(sealed, checkpoints)
}

/// invalid-signature: tx `index` carries a signature that does not verify; the batch executes it
/// as if it did (the checkpoints are those of honest execution) and commits to it (`tx_root` is
/// over wtxids).
pub(crate) fn invalid_signature(sealed: &SealedBatch, index: usize) -> Batch {
    let (mut header, checkpoints, mut txs) = sealed.batch.clone().into_parts();
    txs[index].sig[10] ^= 0x01;
    header.tx_root = tx_root(&txs);
    Batch::new(header, checkpoints, txs)
}

/// overdraft: the batch's last tx is a transfer beyond the sender's balance; honestly it fails
/// (fee and nonce only), but the forged last checkpoint executes it as if it succeeded: the
/// receiver is credited the amount and the sender's balance drops to zero.
pub(crate) fn overdraft(sealed: &SealedBatch, store: &MemoryNodeStore) -> Batch {
    let last = sealed.batch.txs().last().unwrap();
    let Call::Transfer { to, amount } = last.tx.call else {
        panic!("the last tx must be the overdraft transfer");
    };
    assert!(
        sealed.receipts.last().unwrap().error.is_some(),
        "the overdraft must fail honestly"
    );
    let mut tree = SparseMerkleTree::new(store.clone());
    for update in &sealed.updates {
        tree.store_mut().write(update);
    }
    let honest_root = sealed.batch.header().state_root;
    let view = tree.view(honest_root);
    let from: AccountId = last.tx.from;
    let mut sender = read_account(&view, &from).unwrap();
    let mut receiver = read_account(&view, &to).unwrap();
    sender.balance = 0;
    receiver.balance += amount;
    let mut changes = ChangeSet::new();
    for (id, account) in [(from, sender), (to, receiver)] {
        let (key, value) = account_entry(&id, &account);
        changes.insert(key, value);
    }
    let forged_root = tree.apply(&honest_root, &changes).unwrap().root;
    let mut checkpoints = sealed.batch.checkpoints().to_vec();
    checkpoints.last_mut().unwrap().state_root = forged_root;
    with_checkpoints(sealed, checkpoints)
}
