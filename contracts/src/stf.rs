//! The state transition function: segments and batches of signed txs over a [`StateView`].

use std::ops::Range;

use rayon::prelude::*;
use stint_state::{ChangeSet, Overlay, StateView};

use crate::calls::{run_call, write_account, CallEnv, CallError};
use crate::error::{BadSignature, ExecError, InvalidTxReason};
use crate::receipt::Receipt;
use crate::records::read_account;
use crate::tx::{verify_sig, SignedTx};
use crate::types::{AccountId, Txid};

/// What the batch being executed fixes for all its txs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockContext {
    /// The chain's id; txs for another chain are invalid.
    pub chain_id: u64,
    /// The batch timestamp (Unix seconds): the only clock the contracts see.
    pub timestamp: u64,
    /// Account credited with each segment's fees at the segment's end.
    pub fee_recipient: AccountId,
}

/// Txs with their txids and signature check results, computed once (in parallel).
///
/// Built by [`VerifiedTxs::verify`], or by [`VerifiedTxs::assume_valid`] for txs whose
/// signatures the caller has already checked (for example at mempool admission).
#[derive(Debug, Clone)]
pub struct VerifiedTxs<'a> {
    txs: &'a [SignedTx],
    txids: Vec<Txid>,
    sig_ok: Vec<bool>,
}

impl<'a> VerifiedTxs<'a> {
    /// Compute txids and check every signature, in parallel on the rayon pool.
    pub fn verify(txs: &'a [SignedTx]) -> Self {
        let (txids, sig_ok) = txs
            .par_iter()
            .map(|stx| {
                let txid = stx.txid();
                let ok = verify_sig(&stx.tx.from, &txid, &stx.sig);
                (txid, ok)
            })
            .unzip();
        VerifiedTxs { txs, txids, sig_ok }
    }

    /// Compute txids only and treat every signature as valid.
    ///
    /// Only for txs whose signatures were verified before; consensus code (replay, the judge)
    /// must use [`VerifiedTxs::verify`].
    pub fn assume_valid(txs: &'a [SignedTx]) -> Self {
        let txids = txs.iter().map(SignedTx::txid).collect();
        VerifiedTxs {
            txs,
            txids,
            sig_ok: vec![true; txs.len()],
        }
    }

    /// The txs.
    pub fn txs(&self) -> &'a [SignedTx] {
        self.txs
    }

    /// Their txids, in order.
    pub fn txids(&self) -> &[Txid] {
        &self.txids
    }

    /// Number of txs.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether there are no txs.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Index of the first tx whose signature does not verify.
    pub fn first_bad_signature(&self) -> Option<usize> {
        self.sig_ok.iter().position(|ok| !ok)
    }

    pub(crate) fn get(&self, index: usize) -> Option<(&'a SignedTx, &Txid, bool)> {
        Some((
            self.txs.get(index)?,
            self.txids.get(index)?,
            *self.sig_ok.get(index)?,
        ))
    }
}

/// Check every signature of `txs` in parallel; report the first that does not verify.
pub fn verify_signatures(txs: &[SignedTx]) -> Result<(), BadSignature> {
    match VerifiedTxs::verify(txs).first_bad_signature() {
        None => Ok(()),
        Some(index) => Err(BadSignature { index }),
    }
}

/// The result of executing one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentOutcome {
    /// Writes relative to the segment's pre-state (fee credit included).
    pub changes: ChangeSet,
    /// One receipt per tx, in order.
    pub receipts: Vec<Receipt>,
    /// Fees collected in the segment (credited to the fee recipient).
    pub fees: u64,
}

/// The result of executing a batch: one outcome per segment of `k` txs.
///
/// Segment `i`'s changes are relative to the state after segment `i − 1`: apply them one after
/// the other to get each checkpoint state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// The segments, in order.
    pub segments: Vec<SegmentOutcome>,
}

impl BatchOutcome {
    /// All receipts, in tx order.
    pub fn receipts(&self) -> impl Iterator<Item = &Receipt> {
        self.segments.iter().flat_map(|s| s.receipts.iter())
    }

    /// The net changes of the whole batch (segments merged in order).
    pub fn changes(&self) -> ChangeSet {
        let mut all = ChangeSet::new();
        for s in &self.segments {
            all.extend(s.changes.iter().map(|(k, v)| (*k, v.clone())));
        }
        all
    }

    /// Total fees of the batch.
    pub fn fees(&self) -> Option<u64> {
        self.segments
            .iter()
            .try_fold(0u64, |acc, s| acc.checked_add(s.fees))
    }
}

/// Why one tx could not be executed.
pub(crate) enum TxError {
    Invalid(InvalidTxReason),
    Exec(ExecError),
}

impl From<ExecError> for TxError {
    fn from(e: ExecError) -> Self {
        TxError::Exec(e)
    }
}

impl TxError {
    pub(crate) fn at(self, index: usize) -> ExecError {
        match self {
            TxError::Invalid(reason) => ExecError::Invalid { index, reason },
            TxError::Exec(e) => e,
        }
    }
}

/// Validity checks, nonce and fee, then the call on a nested overlay.
pub(crate) fn apply_tx<V: StateView>(
    st: &mut Overlay<V>,
    ctx: &BlockContext,
    stx: &SignedTx,
    txid: &Txid,
    sig_ok: bool,
) -> Result<Receipt, TxError> {
    let tx = &stx.tx;
    if tx.chain_id != ctx.chain_id {
        return Err(TxError::Invalid(InvalidTxReason::WrongChainId {
            found: tx.chain_id,
            expected: ctx.chain_id,
        }));
    }
    if !sig_ok {
        return Err(TxError::Invalid(InvalidTxReason::BadSignature));
    }
    let mut sender = read_account(st, &tx.from)?;
    if tx.nonce != sender.nonce {
        return Err(TxError::Invalid(InvalidTxReason::WrongNonce {
            found: tx.nonce,
            expected: sender.nonce,
        }));
    }
    let next_nonce = sender
        .nonce
        .checked_add(1)
        .ok_or(TxError::Invalid(InvalidTxReason::NonceExhausted))?;
    let balance = sender.balance.checked_sub(tx.fee).ok_or(TxError::Invalid(
        InvalidTxReason::CannotPayFee {
            balance: sender.balance,
            fee: tx.fee,
        },
    ))?;
    sender.nonce = next_nonce;
    sender.balance = balance;
    write_account(st, &tx.from, &sender);

    let env = CallEnv {
        from: tx.from,
        nonce: tx.nonce,
        now: ctx.timestamp,
    };
    let (staged, error) = {
        let mut call_state = Overlay::new(&*st);
        match run_call(&mut call_state, &env, &tx.call) {
            Ok(()) => (Some(call_state.into_changes()), None),
            Err(CallError::Fail(code)) => (None, Some(code)),
            Err(CallError::Exec(e)) => return Err(TxError::Exec(e)),
        }
    };
    if let Some(changes) = staged {
        st.extend(changes);
    }
    Ok(Receipt {
        txid: *txid,
        fee: tx.fee,
        error,
    })
}

/// Credit `fees` to the fee recipient (the segment's last step).
pub(crate) fn credit_fees<V: StateView>(
    st: &mut Overlay<V>,
    ctx: &BlockContext,
    fees: u64,
    last_index: usize,
) -> Result<(), ExecError> {
    if fees == 0 {
        return Ok(());
    }
    let mut account = read_account(st, &ctx.fee_recipient)?;
    account.balance = account
        .balance
        .checked_add(fees)
        .ok_or(ExecError::Invalid {
            index: last_index,
            reason: InvalidTxReason::FeeOverflow,
        })?;
    write_account(st, &ctx.fee_recipient, &account);
    Ok(())
}

/// Execute txs `range` of `v` sequentially over `view`. Error indices are `range` positions.
pub(crate) fn exec_segment<V: StateView>(
    view: V,
    ctx: &BlockContext,
    v: &VerifiedTxs<'_>,
    range: Range<usize>,
) -> Result<SegmentOutcome, ExecError> {
    let mut st = Overlay::new(view);
    let mut receipts = Vec::with_capacity(range.len());
    let mut fees = 0u64;
    let mut last = range.start;
    for index in range {
        let Some((stx, txid, sig_ok)) = v.get(index) else {
            break;
        };
        let receipt = apply_tx(&mut st, ctx, stx, txid, sig_ok).map_err(|e| e.at(index))?;
        fees = fees.checked_add(receipt.fee).ok_or(ExecError::Invalid {
            index,
            reason: InvalidTxReason::FeeOverflow,
        })?;
        receipts.push(receipt);
        last = index;
    }
    credit_fees(&mut st, ctx, fees, last)?;
    Ok(SegmentOutcome {
        changes: st.into_changes(),
        receipts,
        fees,
    })
}

/// Execute one segment: check signatures (in parallel), then run every tx in order.
///
/// Returns [`ExecError::Invalid`] for the first invalid tx (index within `txs`).
pub fn execute_segment<V: StateView>(
    view: V,
    ctx: &BlockContext,
    txs: &[SignedTx],
) -> Result<SegmentOutcome, ExecError> {
    let v = VerifiedTxs::verify(txs);
    exec_segment(view, ctx, &v, 0..v.len())
}

/// [`execute_segment`] on pre-verified txs.
pub fn execute_verified_segment<V: StateView>(
    view: V,
    ctx: &BlockContext,
    txs: &VerifiedTxs<'_>,
) -> Result<SegmentOutcome, ExecError> {
    exec_segment(view, ctx, txs, 0..txs.len())
}

/// Execute a batch in segments of `k` txs (the last may be shorter), checking signatures first
/// (in parallel). Error indices are batch-wide.
pub fn execute_batch<V: StateView>(
    view: V,
    ctx: &BlockContext,
    txs: &[SignedTx],
    k: usize,
) -> Result<BatchOutcome, ExecError> {
    execute_verified_batch(view, ctx, &VerifiedTxs::verify(txs), k)
}

/// [`execute_batch`] on pre-verified txs.
pub fn execute_verified_batch<V: StateView>(
    view: V,
    ctx: &BlockContext,
    txs: &VerifiedTxs<'_>,
    k: usize,
) -> Result<BatchOutcome, ExecError> {
    let ranges = fixed_segments(txs.len(), k)?;
    run_segments(view, txs, &ranges, |pre, range| {
        exec_segment(pre, ctx, txs, range)
    })
}

/// [`execute_verified_batch`] with the segments given as tx index ranges, in order (a
/// protocol-v2 batch says where its segments end). Ranges outside `txs` are an error.
pub fn execute_verified_segments<V: StateView>(
    view: V,
    ctx: &BlockContext,
    txs: &VerifiedTxs<'_>,
    ranges: &[Range<usize>],
) -> Result<BatchOutcome, ExecError> {
    run_segments(view, txs, ranges, |pre, range| {
        exec_segment(pre, ctx, txs, range)
    })
}

/// The ranges of `len` txs cut into segments of `k` (the last may be shorter).
pub(crate) fn fixed_segments(len: usize, k: usize) -> Result<Vec<Range<usize>>, ExecError> {
    if k == 0 {
        return Err(ExecError::ZeroSegmentLength);
    }
    Ok((0..len.div_ceil(k))
        .map(|i| {
            let start = i.saturating_mul(k);
            start..start.saturating_add(k).min(len)
        })
        .collect())
}

/// Drive the segments `ranges` of `txs` (in order), each executed by `exec` over the state
/// after the previous ones. A range outside `txs` is [`ExecError::SegmentOutOfRange`].
pub(crate) fn run_segments<V, F>(
    view: V,
    txs: &VerifiedTxs<'_>,
    ranges: &[Range<usize>],
    mut exec: F,
) -> Result<BatchOutcome, ExecError>
where
    V: StateView,
    F: FnMut(&Overlay<V>, Range<usize>) -> Result<SegmentOutcome, ExecError>,
{
    if ranges.iter().any(|r| r.start > r.end || r.end > txs.len()) {
        return Err(ExecError::SegmentOutOfRange);
    }
    let mut st = Overlay::new(view);
    let mut segments = Vec::with_capacity(ranges.len());
    for range in ranges {
        let outcome = exec(&st, range.clone())?;
        st.extend(outcome.changes.clone());
        segments.push(outcome);
    }
    Ok(BatchOutcome { segments })
}
