//! Access sets and conflict-group parallel execution, bit-identical to sequential execution.
//!
//! Within a segment, txs whose declared access sets share no key are independent: they are
//! executed in groups (union-find over keys) on the rayon pool, each group sequentially over the
//! segment's pre-state. The group results are merged in tx order; since the groups' key sets are
//! disjoint, the merged writes equal those of sequential execution. Guards: a segment falls back
//! to sequential execution if any tx declares the fee recipient's account (fees are credited at
//! the segment's end), if an access set cannot be computed, or if a group touched (read or
//! wrote) a key outside its declared set.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use rayon::prelude::*;
use stint_state::{ChangeSet, Key, Overlay, StateError, StateView};

use crate::error::{ExecError, InvalidTxReason};
use crate::receipt::Receipt;
use crate::records::{account_key, read_stream, read_task, stream_key, task_key, withdrawal_key};
use crate::stf::{
    apply_tx, credit_fees, exec_segment, fixed_segments, run_segments, BatchOutcome, BlockContext,
    SegmentOutcome, VerifiedTxs,
};
use crate::tx::{stream_id, task_id, withdrawal_id, Call, SignedTx};

/// The state keys `stx` may read or write, judged on `pre_state`: the sender's account, the
/// object the call names (or creates), and the accounts of the participants the call may pay.
///
/// The set is a declaration, not a proof: the parallel executor checks it and falls back to
/// sequential execution when a group strays outside its sets. The fee recipient is not part of
/// any set (fees are credited at the segment's end).
pub fn access_set(stx: &SignedTx, pre_state: &impl StateView) -> Result<BTreeSet<Key>, ExecError> {
    let tx = &stx.tx;
    let mut keys = BTreeSet::new();
    keys.insert(account_key(&tx.from));
    match &tx.call {
        Call::Transfer { to, .. } => {
            keys.insert(account_key(to));
        }
        Call::Withdraw { .. } => {
            keys.insert(withdrawal_key(&withdrawal_id(&tx.from, tx.nonce)));
        }
        Call::Payroll { payments } => {
            keys.extend(payments.iter().map(|p| account_key(&p.to)));
        }
        Call::StreamOpen { .. } => {
            keys.insert(stream_key(&stream_id(&tx.from, tx.nonce)));
        }
        Call::StreamWithdraw { id }
        | Call::StreamTopUp { id, .. }
        | Call::StreamPause { id }
        | Call::StreamResume { id }
        | Call::StreamCancel { id } => {
            keys.insert(stream_key(id));
            if let Some(s) = read_stream(pre_state, id)? {
                keys.insert(account_key(&s.employer));
                keys.insert(account_key(&s.worker));
            }
        }
        Call::TaskCreate { .. } => {
            keys.insert(task_key(&task_id(&tx.from, tx.nonce)));
        }
        Call::TaskAccept { id }
        | Call::TaskSubmit { id, .. }
        | Call::TaskApprove { id, .. }
        | Call::TaskClaim { id, .. }
        | Call::TaskDispute { id, .. }
        | Call::TaskResolve { id, .. }
        | Call::TaskCancel { id } => {
            keys.insert(task_key(id));
            if let Some(t) = read_task(pre_state, id)? {
                keys.insert(account_key(&t.employer));
                if let Some(worker) = t.worker {
                    keys.insert(account_key(&worker));
                }
            }
        }
    }
    Ok(keys)
}

/// [`crate::execute_batch`], with non-conflicting txs of each segment executed in parallel.
/// Receipts and change sets are bit-identical to sequential execution.
pub fn execute_batch_parallel<V: StateView + Sync>(
    view: V,
    ctx: &BlockContext,
    txs: &[SignedTx],
    k: usize,
) -> Result<BatchOutcome, ExecError> {
    execute_verified_batch_parallel(view, ctx, &VerifiedTxs::verify(txs), k)
}

/// [`execute_batch_parallel`] on pre-verified txs.
pub fn execute_verified_batch_parallel<V: StateView + Sync>(
    view: V,
    ctx: &BlockContext,
    txs: &VerifiedTxs<'_>,
    k: usize,
) -> Result<BatchOutcome, ExecError> {
    let ranges = fixed_segments(txs.len(), k)?;
    execute_verified_segments_parallel(view, ctx, txs, &ranges)
}

/// [`execute_verified_batch_parallel`] with the segments given as tx index ranges, in order
/// (a protocol-v2 batch says where its segments end). Ranges outside `txs` are an error.
pub fn execute_verified_segments_parallel<V: StateView + Sync>(
    view: V,
    ctx: &BlockContext,
    txs: &VerifiedTxs<'_>,
    ranges: &[Range<usize>],
) -> Result<BatchOutcome, ExecError> {
    run_segments(view, txs, ranges, |pre, range| {
        exec_segment_parallel(pre, ctx, txs, range)
    })
}

/// A view that records every key read through it.
struct TrackingView<'a, V> {
    inner: &'a V,
    touched: RefCell<BTreeSet<Key>>,
}

impl<V: StateView> StateView for TrackingView<'_, V> {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StateError> {
        self.touched.borrow_mut().insert(*key);
        self.inner.get(key)
    }
}

/// What one conflict group produced.
struct GroupRun {
    /// Receipts of the txs executed, with their batch indices.
    receipts: Vec<(usize, Receipt)>,
    /// The group's writes.
    changes: ChangeSet,
    /// Keys read or written.
    touched: BTreeSet<Key>,
    /// The first error, with the index of the tx that caused it.
    error: Option<(usize, ExecError)>,
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    // Path halving; indices always come from `0..parent.len()`.
    while let Some(&p) = parent.get(i) {
        if p == i {
            break;
        }
        let grand = parent.get(p).copied().unwrap_or(p);
        if let Some(slot) = parent.get_mut(i) {
            *slot = grand;
        }
        i = p;
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    // Keep the smaller root so group order follows the first tx.
    let (lo, hi) = if ra <= rb { (ra, rb) } else { (rb, ra) };
    if let Some(slot) = parent.get_mut(hi) {
        *slot = lo;
    }
}

fn exec_segment_parallel<V: StateView + Sync>(
    pre: &V,
    ctx: &BlockContext,
    v: &VerifiedTxs<'_>,
    range: Range<usize>,
) -> Result<SegmentOutcome, ExecError> {
    let sequential = || exec_segment(pre, ctx, v, range.clone());
    let fee_key = account_key(&ctx.fee_recipient);

    // Declared access sets, judged on the segment's pre-state.
    let mut sets = Vec::with_capacity(range.len());
    for index in range.clone() {
        let Some(stx) = v.txs().get(index) else {
            return sequential();
        };
        let Ok(set) = access_set(stx, pre) else {
            return sequential();
        };
        if set.contains(&fee_key) {
            return sequential();
        }
        sets.push(set);
    }

    // Union-find over positions: txs sharing a key share a group.
    let mut parent: Vec<usize> = (0..sets.len()).collect();
    let mut owner: BTreeMap<Key, usize> = BTreeMap::new();
    for (pos, set) in sets.iter().enumerate() {
        for key in set {
            match owner.get(key) {
                Some(&first) => union(&mut parent, first, pos),
                None => {
                    owner.insert(*key, pos);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, (Vec<usize>, BTreeSet<Key>)> = BTreeMap::new();
    for (pos, set) in sets.into_iter().enumerate() {
        let root = find(&mut parent, pos);
        let entry = groups.entry(root).or_default();
        entry.0.push(pos);
        entry.1.extend(set);
    }
    if groups.len() <= 1 {
        return sequential();
    }
    let groups: Vec<(Vec<usize>, BTreeSet<Key>)> = groups.into_values().collect();

    let runs: Vec<GroupRun> = groups
        .par_iter()
        .map(|(positions, _)| run_group(pre, ctx, v, range.start, positions))
        .collect();

    // Guard: every group stayed inside its declared keys (so groups were truly independent).
    let strayed = runs
        .iter()
        .zip(&groups)
        .any(|(run, (_, declared))| !run.touched.is_subset(declared));
    if strayed {
        return sequential();
    }

    // The earliest error is the one sequential execution would hit first.
    let first_error = runs
        .iter()
        .enumerate()
        .filter_map(|(g, run)| run.error.as_ref().map(|(index, _)| (*index, g)))
        .min();

    let mut receipts: Vec<(usize, Receipt)> = runs
        .iter()
        .flat_map(|run| run.receipts.iter().copied())
        .collect();
    receipts.sort_by_key(|(index, _)| *index);

    // Fee totals, in tx order, up to the first error.
    let mut fees = 0u64;
    for (index, receipt) in &receipts {
        if first_error.is_some_and(|(e, _)| *index >= e) {
            break;
        }
        fees = fees.checked_add(receipt.fee).ok_or(ExecError::Invalid {
            index: *index,
            reason: InvalidTxReason::FeeOverflow,
        })?;
    }
    if let Some((_, g)) = first_error {
        let mut runs = runs;
        if let Some(run) = runs.get_mut(g) {
            if let Some((_, error)) = run.error.take() {
                return Err(error);
            }
        }
        return sequential();
    }

    // Merge group writes in tx order of their first tx (disjoint keys: order cannot matter).
    let mut st = Overlay::new(pre);
    let last = receipts.last().map(|(i, _)| *i).unwrap_or(range.start);
    for run in runs {
        st.extend(run.changes);
    }
    credit_fees(&mut st, ctx, fees, last)?;
    Ok(SegmentOutcome {
        changes: st.into_changes(),
        receipts: receipts.into_iter().map(|(_, r)| r).collect(),
        fees,
    })
}

fn run_group<V: StateView>(
    pre: &V,
    ctx: &BlockContext,
    v: &VerifiedTxs<'_>,
    base: usize,
    positions: &[usize],
) -> GroupRun {
    let tracking = TrackingView {
        inner: pre,
        touched: RefCell::new(BTreeSet::new()),
    };
    let mut st = Overlay::new(&tracking);
    let mut receipts = Vec::with_capacity(positions.len());
    let mut error = None;
    for &pos in positions {
        let index = base.saturating_add(pos);
        let Some((stx, txid, sig_ok)) = v.get(index) else {
            break;
        };
        match apply_tx(&mut st, ctx, stx, txid, sig_ok) {
            Ok(receipt) => receipts.push((index, receipt)),
            Err(e) => {
                error = Some((index, e.at(index)));
                break;
            }
        }
    }
    let changes = st.into_changes();
    let mut touched = tracking.touched.into_inner();
    touched.extend(changes.keys().copied());
    GroupRun {
        receipts,
        changes,
        touched,
        error,
    }
}
