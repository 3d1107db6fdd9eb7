//! The mempool: acknowledged (or being acknowledged) txs waiting for a batch.
//!
//! Per account, txs are kept by nonce. A tx is admitted when, against the account in the latest
//! sealed state: its nonce is not below the account's next nonce and at most `max_nonce_gap`
//! above the account's next *pending* nonce (the end of its run of consecutive pending txs; gaps
//! are queued until filled); its fee is at least the minimum; the account's
//! balance covers the fees of all its pending txs including this one (a conservative check: the
//! batch builder drops a tx that still cannot pay when executed); and the per-account and global
//! bounds hold. A tx with the nonce of a pending one replaces it when its fee is at least
//! [`REPLACEMENT_BUMP_PERCENT`] % higher (and at least 1 unit), unless that one is being sealed.
//!
//! **Queued txs** (a nonce beyond the account's pending run, so not executable yet) are bounded
//! apart: at most `max_queued_per_account` per account and `max_queued` in all, and each expires
//! `queued_ttl_secs` after admission if its gap is still open ([`Mempool::expire`]). A tx
//! admitted again at restart from the admission log starts a fresh lifetime.
//!
//! **When the pool is full**, a tx that pays more than the cheapest evictable entry takes its
//! place: the evictable entries are the durable, not-being-sealed *last* txs of other accounts
//! (evicting a tail never opens a gap), cheapest first, newest first among equal fees. Every
//! eviction gets a drop record at the next seal, so its sender sees `dropped` with the reason.
//!
//! Entries become *durable* once the admission log has fsync'd them; only durable entries are
//! offered to the batch builder, so nothing unacknowledged is ever executed. Candidates are the
//! runs of consecutive nonces starting at each account's next nonce, merged across accounts in
//! arrival order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use stint_contracts::{Account, AccountId, SignedTx, Txid};

use crate::config::MempoolConfig;
use crate::error::Rejection;

/// A replacement must pay at least this many percent more than the tx it replaces.
pub(crate) const REPLACEMENT_BUMP_PERCENT: u64 = 10;

/// How many of the cheapest entries a full pool looks at for one it may evict; past that the
/// new tx is refused (bounds the work a flood can cause per submission).
const EVICTION_SCAN: usize = 256;

/// The lowest fee that may replace a pending tx paying `pending`.
pub(crate) fn min_replacement_fee(pending: u64) -> u64 {
    let bump = pending
        .saturating_mul(REPLACEMENT_BUMP_PERCENT)
        .div_ceil(100)
        .max(1);
    pending.saturating_add(bump)
}

/// One pending tx.
#[derive(Debug, Clone)]
pub(crate) struct PoolTx {
    pub(crate) tx: SignedTx,
    pub(crate) txid: Txid,
    pub(crate) seq: u64,
    pub(crate) durable: bool,
    pub(crate) sealing: bool,
    /// When it was admitted (or re-admitted at restart): the start of a queued tx's lifetime.
    admitted_at: Instant,
    /// Admitted with a nonce gap before it (counted in [`Mempool::queued_len`] while it stays).
    queued: bool,
    /// The tx this one replaced, restored if this one never becomes durable.
    replaced: Option<Box<PoolTx>>,
}

/// A tx removed from the pool without being executed (replaced, or stale).
#[derive(Debug, Clone)]
pub(crate) struct Evicted {
    pub(crate) seq: u64,
    pub(crate) txid: Txid,
    pub(crate) tx: SignedTx,
    pub(crate) reason: String,
}

impl Evicted {
    /// The eviction of `entry`, for `reason`.
    fn new(entry: PoolTx, reason: String) -> Self {
        Self {
            seq: entry.seq,
            txid: entry.txid,
            tx: entry.tx,
            reason,
        }
    }
}

/// The result of a successful [`Mempool::insert`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admitted {
    pub(crate) seq: u64,
}

/// The pending txs of all accounts.
#[derive(Debug)]
pub(crate) struct Mempool {
    config: MempoolConfig,
    min_fee: u64,
    accounts: BTreeMap<AccountId, BTreeMap<u64, PoolTx>>,
    by_txid: HashMap<Txid, (AccountId, u64)>,
    /// Every entry by (fee, newest first): where a full pool looks for one to evict.
    by_fee: BTreeSet<(u64, Reverse<u64>, AccountId, u64)>,
    /// Entries admitted as queued (a nonce gap before them) still in the pool; one whose gap
    /// has filled counts until it leaves, normally within a batch.
    queued: usize,
    evicted: Vec<Evicted>,
    next_seq: u64,
}

impl Mempool {
    /// An empty pool; admission sequence numbers start at `next_seq`.
    pub(crate) fn new(config: MempoolConfig, min_fee: u64, next_seq: u64) -> Self {
        Self {
            config,
            min_fee,
            accounts: BTreeMap::new(),
            by_txid: HashMap::new(),
            by_fee: BTreeSet::new(),
            queued: 0,
            evicted: Vec::new(),
            next_seq,
        }
    }

    /// Number of pending txs.
    pub(crate) fn len(&self) -> usize {
        self.by_txid.len()
    }

    /// The pending tx `txid`.
    pub(crate) fn get(&self, txid: &Txid) -> Option<&PoolTx> {
        let (account, nonce) = self.by_txid.get(txid)?;
        self.accounts.get(account)?.get(nonce)
    }

    /// The nonce after the account's consecutive pending txs (its next nonce to use).
    pub(crate) fn pending_nonce(&self, account: &AccountId, state_nonce: u64) -> u64 {
        let mut next = state_nonce;
        if let Some(queue) = self.accounts.get(account) {
            for nonce in queue.range(state_nonce..).map(|(n, _)| *n) {
                if nonce != next {
                    break;
                }
                next = next.saturating_add(1);
            }
        }
        next
    }

    /// Check `tx` against `account` (its sealed state) and the pool, and insert it (not yet
    /// durable) at time `now`. `assigned_seq` forces the sequence number (replaying the
    /// admission log).
    pub(crate) fn insert(
        &mut self,
        tx: SignedTx,
        txid: Txid,
        account: Account,
        assigned_seq: Option<u64>,
        now: Instant,
    ) -> Result<Admitted, Rejection> {
        if self.by_txid.contains_key(&txid) {
            return Err(Rejection::AlreadyKnown);
        }
        let nonce = tx.tx.nonce;
        let fee = tx.tx.fee;
        if nonce < account.nonce {
            return Err(Rejection::NonceTooLow {
                found: nonce,
                next: account.nonce,
            });
        }
        let pending_next = self.pending_nonce(&tx.tx.from, account.nonce);
        if nonce.saturating_sub(pending_next) > self.config.max_nonce_gap {
            return Err(Rejection::NonceGapTooLarge {
                found: nonce,
                next: pending_next,
                max: self.config.max_nonce_gap,
            });
        }
        if fee < self.min_fee {
            return Err(Rejection::FeeTooLow {
                fee,
                min: self.min_fee,
            });
        }
        let from = tx.tx.from;
        let queue = self.accounts.get(&from);
        let existing = queue.and_then(|q| q.get(&nonce));
        if let Some(existing) = existing {
            if existing.sealing {
                return Err(Rejection::BeingSealed { nonce });
            }
            let min = min_replacement_fee(existing.tx.tx.fee);
            if fee < min {
                return Err(Rejection::ReplacementUnderpriced {
                    fee,
                    pending: existing.tx.tx.fee,
                    min,
                });
            }
        }
        let is_new = existing.is_none();
        let queued = nonce > pending_next;
        if is_new {
            if queue.map_or(0, BTreeMap::len) >= self.config.max_per_account {
                return Err(Rejection::MempoolFull(
                    "too many pending transactions from this account",
                ));
            }
            if queued {
                let of_account = queue.map_or(0, |q| q.range(pending_next..).count());
                if of_account >= self.config.max_queued_per_account {
                    return Err(Rejection::MempoolFull(
                        "too many queued transactions (nonce gaps) from this account",
                    ));
                }
                if self.queued >= self.config.max_queued {
                    return Err(Rejection::MempoolFull(
                        "too many queued transactions (nonce gaps) in the sequencer's mempool",
                    ));
                }
            }
        }
        let others: u128 = queue
            .map(|q| {
                q.iter()
                    .filter(|(n, _)| **n != nonce && **n >= account.nonce)
                    .map(|(_, p)| u128::from(p.tx.tx.fee))
                    .sum()
            })
            .unwrap_or(0);
        let needed = others.saturating_add(u128::from(fee));
        if needed > u128::from(account.balance) {
            return Err(Rejection::FeeUnpayable {
                balance: account.balance,
                needed: u64::try_from(needed).unwrap_or(u64::MAX),
            });
        }
        // Room for a new entry in a full pool: evict the cheapest evictable one, if it pays
        // less (decided last, so a tx refused for another reason evicts nothing).
        let victim = if is_new && self.len() >= self.config.max_txs {
            match self.cheapest_evictable(&from, fee) {
                Some(victim) => Some(victim),
                None => return Err(Rejection::MempoolFull("the sequencer's mempool is full")),
            }
        } else {
            None
        };
        if let Some((account, victim_nonce)) = victim {
            if let Some(old) = self.take_entry(&account, victim_nonce) {
                self.prune_account(&account);
                let reason = format!(
                    "evicted from the full mempool by a transaction paying a higher fee \
                     (fee {} < {fee})",
                    old.tx.tx.fee
                );
                self.evicted.push(Evicted::new(old, reason));
            }
        }
        let seq = match assigned_seq {
            Some(seq) => {
                self.next_seq = self.next_seq.max(seq.saturating_add(1));
                seq
            }
            None => {
                let seq = self.next_seq;
                self.next_seq = seq.saturating_add(1);
                seq
            }
        };
        let replaced = self.take_entry(&from, nonce).map(Box::new);
        self.put(PoolTx {
            tx,
            txid,
            seq,
            durable: false,
            sealing: false,
            admitted_at: now,
            queued,
            replaced,
        });
        Ok(Admitted { seq })
    }

    /// The entry a full pool evicts for a new tx of `from` paying `fee` (see the module docs).
    fn cheapest_evictable(&self, from: &AccountId, fee: u64) -> Option<(AccountId, u64)> {
        self.by_fee
            .iter()
            .take(EVICTION_SCAN)
            .take_while(|(entry_fee, ..)| *entry_fee < fee)
            .find(|(_, _, account, nonce)| {
                account != from
                    && self.accounts.get(account).is_some_and(|queue| {
                        queue.last_key_value().is_some_and(|(last, entry)| {
                            last == nonce && entry.durable && !entry.sealing
                        })
                    })
            })
            .map(|(_, _, account, nonce)| (*account, *nonce))
    }

    /// Drop `account`'s queue if it is empty.
    fn prune_account(&mut self, account: &AccountId) {
        if self.accounts.get(account).is_some_and(BTreeMap::is_empty) {
            self.accounts.remove(account);
        }
    }

    /// Evict queued txs (still beyond their account's pending run) admitted at least the
    /// queued lifetime before `now`. `state_nonce` gives an account's next nonce in the sealed
    /// state; it is asked only for accounts holding such old queued txs. The evictions get drop
    /// records at the next seal.
    pub(crate) fn expire(&mut self, now: Instant, mut state_nonce: impl FnMut(&AccountId) -> u64) {
        if self.queued == 0 {
            return; // the common case: no scan of the pool at each seal
        }
        let ttl = Duration::from_secs(self.config.queued_ttl_secs);
        let is_old = |entry: &PoolTx| {
            entry.queued
                && entry.durable
                && !entry.sealing
                && now.saturating_duration_since(entry.admitted_at) >= ttl
        };
        let suspects: Vec<AccountId> = self
            .accounts
            .iter()
            .filter(|(_, queue)| queue.values().any(is_old))
            .map(|(account, _)| *account)
            .collect();
        let mut expired = Vec::new();
        for account in suspects {
            let Some(queue) = self.accounts.get(&account) else {
                continue;
            };
            let mut run_end = state_nonce(&account);
            for (nonce, entry) in queue.range(run_end..) {
                if *nonce == run_end {
                    run_end = run_end.saturating_add(1);
                } else if is_old(entry) {
                    expired.push((account, *nonce));
                }
            }
        }
        for (account, nonce) in expired {
            if let Some(old) = self.take_entry(&account, nonce) {
                let reason = format!(
                    "expired: queued {} s behind a nonce gap (nonce {nonce})",
                    ttl.as_secs()
                );
                self.evicted.push(Evicted::new(old, reason));
            }
            self.prune_account(&account);
        }
    }

    /// Evictions (expired, or pushed out of a full pool) since the last seal, for their drop
    /// records when no batch is sealed to carry them.
    pub(crate) fn take_evicted(&mut self) -> Vec<Evicted> {
        std::mem::take(&mut self.evicted)
    }

    /// Txs admitted as queued still in the pool.
    pub(crate) fn queued_len(&self) -> usize {
        self.queued
    }

    /// Remove the entry of `from` at `nonce` from both indexes (the account's queue stays, even
    /// if empty, for the [`put`](Self::put) that follows).
    fn take_entry(&mut self, from: &AccountId, nonce: u64) -> Option<PoolTx> {
        let old = self.accounts.get_mut(from)?.remove(&nonce)?;
        self.by_txid.remove(&old.txid);
        self.by_fee
            .remove(&(old.tx.tx.fee, Reverse(old.seq), *from, nonce));
        if old.queued {
            self.queued = self.queued.saturating_sub(1);
        }
        Some(old)
    }

    /// Index `entry` under its account and nonce, by txid and by fee.
    fn put(&mut self, entry: PoolTx) {
        let (from, nonce, txid) = (entry.tx.tx.from, entry.tx.tx.nonce, entry.txid);
        if entry.queued {
            self.queued = self.queued.saturating_add(1);
        }
        self.by_fee
            .insert((entry.tx.tx.fee, Reverse(entry.seq), from, nonce));
        self.accounts.entry(from).or_default().insert(nonce, entry);
        self.by_txid.insert(txid, (from, nonce));
    }

    /// Take back txs of rolled-back batches (already durable in the admission log at `seq`),
    /// without the admission checks: they were admitted before, and their nonces come before the
    /// pending ones of the same account. A pending tx holding the same nonce (which only a
    /// sequencer bug could cause) is evicted in favour of the rolled-back one.
    pub(crate) fn requeue(&mut self, txs: Vec<(SignedTx, Txid, u64)>) {
        for (tx, txid, seq) in txs {
            if self.by_txid.contains_key(&txid) {
                continue;
            }
            self.next_seq = self.next_seq.max(seq.saturating_add(1));
            let (from, nonce) = (tx.tx.from, tx.tx.nonce);
            if let Some(old) = self.take_entry(&from, nonce) {
                let reason = format!("nonce {nonce} belongs to rolled-back transaction {txid}");
                self.evicted.push(Evicted::new(old, reason));
            }
            self.put(PoolTx {
                tx,
                txid,
                seq,
                durable: true,
                sealing: false,
                admitted_at: Instant::now(),
                queued: false,
                replaced: None,
            });
        }
    }

    /// Reserve `n` consecutive admission sequence numbers; returns the first.
    pub(crate) fn reserve_seqs(&mut self, n: u64) -> u64 {
        let first = self.next_seq;
        self.next_seq = first.saturating_add(n);
        first
    }

    fn entry_mut(&mut self, txid: &Txid) -> Option<&mut PoolTx> {
        let (account, nonce) = self.by_txid.get(txid)?;
        self.accounts.get_mut(account)?.get_mut(nonce)
    }

    /// The admission log holds `txid` now: it may be sealed.
    pub(crate) fn mark_durable(&mut self, txid: &Txid) {
        let mut evicted = None;
        if let Some(entry) = self.entry_mut(txid) {
            entry.durable = true;
            if let Some(old) = entry.replaced.take() {
                evicted = Some(Evicted::new(*old, format!("replaced by {txid}")));
            }
        }
        self.evicted.extend(evicted);
    }

    /// Writing `txid` to the admission log failed: forget it (restoring what it replaced).
    pub(crate) fn remove_failed(&mut self, txid: &Txid) {
        let Some(&(account, nonce)) = self.by_txid.get(txid) else {
            return;
        };
        if let Some(entry) = self.take_entry(&account, nonce) {
            if let Some(old) = entry.replaced {
                self.put(*old);
            }
        }
        self.prune_account(&account);
    }

    /// Pick up to `max` durable candidates for the next batch (see the module docs) and mark
    /// them as being sealed. `state_nonce` gives each account's next nonce in the sealed state.
    pub(crate) fn take_candidates(
        &mut self,
        max: usize,
        mut state_nonce: impl FnMut(&AccountId) -> u64,
    ) -> Vec<(SignedTx, u64)> {
        // Each account's ready run, then a merge by arrival order of the runs' heads.
        let mut runs: Vec<Vec<(u64, u64)>> = Vec::new(); // (seq, nonce) per account
        let mut owners: Vec<AccountId> = Vec::new();
        for (account, queue) in &self.accounts {
            let mut next = state_nonce(account);
            let mut run = Vec::new();
            for (nonce, entry) in queue.range(next..) {
                if *nonce != next || !entry.durable {
                    break;
                }
                run.push((entry.seq, *nonce));
                next = next.saturating_add(1);
            }
            if !run.is_empty() {
                run.reverse(); // pop from the back = lowest nonce first
                runs.push(run);
                owners.push(*account);
            }
        }
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = runs
            .iter()
            .enumerate()
            .filter_map(|(i, run)| run.last().map(|(seq, _)| Reverse((*seq, i))))
            .collect();
        let mut picked = Vec::new();
        while picked.len() < max {
            let Some(Reverse((_, i))) = heap.pop() else {
                break;
            };
            let (Some(run), Some(account)) = (runs.get_mut(i), owners.get(i)) else {
                break;
            };
            let Some((_, nonce)) = run.pop() else {
                continue;
            };
            if let Some(entry) = self
                .accounts
                .get_mut(account)
                .and_then(|q| q.get_mut(&nonce))
            {
                entry.sealing = true;
                picked.push((entry.tx.clone(), entry.seq));
            }
            if let Some((seq, _)) = run.last() {
                heap.push(Reverse((*seq, i)));
            }
        }
        picked
    }

    /// A batch was sealed: remove `done` (included or rejected), unmark the rest, and evict txs
    /// whose nonce the sealed state has passed. Returns everything evicted since the last call
    /// (replaced txs included), for the drop records.
    pub(crate) fn finish_seal(
        &mut self,
        done: &[Txid],
        mut state_nonce: impl FnMut(&AccountId) -> u64,
    ) -> Vec<Evicted> {
        let mut touched = Vec::new();
        for txid in done {
            if let Some(&(account, nonce)) = self.by_txid.get(txid) {
                self.take_entry(&account, nonce);
                touched.push(account);
            }
        }
        touched.sort();
        touched.dedup();
        for account in touched {
            let next = state_nonce(&account);
            let Some(queue) = self.accounts.get(&account) else {
                continue;
            };
            let stale: Vec<u64> = queue.range(..next).map(|(n, _)| *n).collect();
            for nonce in stale {
                if let Some(entry) = self.take_entry(&account, nonce) {
                    if entry.durable {
                        let reason = format!("nonce {nonce} was used by another transaction");
                        self.evicted.push(Evicted::new(entry, reason));
                    }
                }
            }
            self.prune_account(&account);
        }
        for queue in self.accounts.values_mut() {
            for entry in queue.values_mut() {
                entry.sealing = false;
            }
        }
        std::mem::take(&mut self.evicted)
    }

    /// Unmark every candidate after a failed seal.
    pub(crate) fn abort_seal(&mut self) {
        for queue in self.accounts.values_mut() {
            for entry in queue.values_mut() {
                entry.sealing = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k256::schnorr::SigningKey;
    use stint_contracts::{Call, Tx};

    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32]).unwrap()
    }

    fn tx(signer: u8, nonce: u64, fee: u64) -> (SignedTx, Txid) {
        let k = key(signer);
        let stx = Tx {
            chain_id: 1,
            from: AccountId::from_signing_key(&k),
            nonce,
            fee,
            call: Call::Transfer {
                to: AccountId([9; 32]),
                amount: 1,
            },
        }
        .sign(&k)
        .unwrap();
        let txid = stx.txid();
        (stx, txid)
    }

    fn pool() -> Mempool {
        Mempool::new(
            MempoolConfig {
                max_txs: 5,
                max_per_account: 3,
                max_nonce_gap: 4,
                max_queued_per_account: 2,
                max_queued: 3,
                queued_ttl_secs: 60,
            },
            1,
            0,
        )
    }

    const RICH: Account = Account {
        balance: 1_000,
        nonce: 2,
    };

    #[test]
    fn admission_rules() {
        let mut p = pool();
        let (a, ida) = tx(1, 1, 5);
        assert_eq!(
            p.insert(a, ida, RICH, None, Instant::now()).unwrap_err(),
            Rejection::NonceTooLow { found: 1, next: 2 }
        );
        let (a, ida) = tx(1, 7, 5);
        assert!(matches!(
            p.insert(a, ida, RICH, None, Instant::now()),
            Err(Rejection::NonceGapTooLarge { .. })
        ));
        let (a, ida) = tx(1, 2, 0);
        assert!(matches!(
            p.insert(a, ida, RICH, None, Instant::now()),
            Err(Rejection::FeeTooLow { .. })
        ));
        let (a, ida) = tx(1, 2, 600);
        p.insert(a.clone(), ida, RICH, None, Instant::now())
            .unwrap();
        assert_eq!(
            p.insert(a, ida, RICH, None, Instant::now()).unwrap_err(),
            Rejection::AlreadyKnown
        );
        let (b, idb) = tx(1, 3, 500);
        assert!(matches!(
            p.insert(b, idb, RICH, None, Instant::now()),
            Err(Rejection::FeeUnpayable { needed: 1100, .. })
        ));
        // Replacement needs a higher fee; a rejected replacement changes nothing.
        let (c, idc) = tx(1, 2, 600);
        let (c, idc) = if idc == ida { tx(1, 2, 599) } else { (c, idc) };
        assert!(matches!(
            p.insert(c, idc, RICH, None, Instant::now()),
            Err(Rejection::ReplacementUnderpriced { .. })
        ));
        assert!(p.get(&ida).is_some());
        let (d, idd) = tx(1, 2, 700);
        p.insert(d, idd, RICH, None, Instant::now()).unwrap();
        assert!(p.get(&ida).is_none());
        assert_eq!(p.len(), 1);
        // The replaced tx becomes an eviction only once the replacement is durable.
        p.mark_durable(&idd);
        let evicted = p.finish_seal(&[], |_| 2);
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].txid, ida);
    }

    #[test]
    fn nonce_gap_is_measured_from_the_pending_run() {
        let mut p = pool();
        // State nonce 2, max gap 4: nonce 7 is too far ahead of 2...
        let (far, id_far) = tx(1, 7, 1);
        assert!(matches!(
            p.insert(far.clone(), id_far, RICH, None, Instant::now()),
            Err(Rejection::NonceGapTooLarge { next: 2, .. })
        ));
        // ...but not once 2 and 3 are pending (next pending nonce 4).
        for n in 2..4 {
            let (a, id) = tx(1, n, 1);
            p.insert(a, id, RICH, None, Instant::now()).unwrap();
        }
        assert_eq!(p.pending_nonce(&far.tx.from, 2), 4);
        p.insert(far, id_far, RICH, None, Instant::now()).unwrap();
    }

    #[test]
    fn failed_log_write_restores_the_replaced_tx() {
        let mut p = pool();
        let (a, ida) = tx(1, 2, 5);
        p.insert(a, ida, RICH, None, Instant::now()).unwrap();
        p.mark_durable(&ida);
        let (b, idb) = tx(1, 2, 6);
        p.insert(b, idb, RICH, None, Instant::now()).unwrap();
        p.remove_failed(&idb);
        assert!(p.get(&ida).is_some());
        assert!(p.get(&idb).is_none());
    }

    #[test]
    fn bounds() {
        let mut p = pool();
        for n in 2..5 {
            let (a, id) = tx(1, n, 1);
            p.insert(a, id, RICH, None, Instant::now()).unwrap();
        }
        let (a, id) = tx(1, 5, 1);
        assert!(matches!(
            p.insert(a, id, RICH, None, Instant::now()),
            Err(Rejection::MempoolFull(_))
        ));
        for n in 2..4 {
            let (a, id) = tx(2, n, 1);
            p.insert(a, id, RICH, None, Instant::now()).unwrap();
        }
        let (a, id) = tx(3, 2, 1);
        assert!(matches!(
            p.insert(a, id, RICH, None, Instant::now()),
            Err(Rejection::MempoolFull(_))
        ));
    }

    #[test]
    fn candidates_are_durable_consecutive_runs_in_arrival_order() {
        let mut p = pool();
        let mut ids = Vec::new();
        // account 1: nonces 3 then 2 (gap filled later); account 2: nonce 2.
        for (signer, nonce) in [(1, 3), (2, 2), (1, 2)] {
            let (a, id) = tx(signer, nonce, 1);
            p.insert(a, id, RICH, None, Instant::now()).unwrap();
            ids.push(id);
        }
        assert!(
            p.take_candidates(10, |_| 2).is_empty(),
            "nothing durable yet"
        );
        for id in &ids {
            p.mark_durable(id);
        }
        let picked: Vec<(u8, u64)> = p
            .take_candidates(10, |_| 2)
            .iter()
            .map(|(t, _)| {
                let signer = if t.tx.from == AccountId::from_signing_key(&key(1)) {
                    1
                } else {
                    2
                };
                (signer, t.tx.nonce)
            })
            .collect();
        assert_eq!(picked, vec![(2, 2), (1, 2), (1, 3)]);
        // Being sealed: no replacement.
        let (r, idr) = tx(2, 2, 50);
        assert!(matches!(
            p.insert(r, idr, RICH, None, Instant::now()),
            Err(Rejection::BeingSealed { nonce: 2 })
        ));
        let evicted = p.finish_seal(&ids[..2], |a| {
            if *a == AccountId::from_signing_key(&key(1)) {
                4
            } else {
                3
            }
        });
        // account 1's nonce 2 was not in `done` but its nonce is passed: evicted as stale.
        assert_eq!(evicted.len(), 1);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn replacement_needs_a_ten_percent_bump() {
        assert_eq!(min_replacement_fee(1), 2);
        assert_eq!(min_replacement_fee(10), 11);
        assert_eq!(min_replacement_fee(100), 110);
        assert_eq!(min_replacement_fee(101), 112);
        assert_eq!(min_replacement_fee(u64::MAX), u64::MAX);
        let mut p = pool();
        let (a, ida) = tx(1, 2, 100);
        p.insert(a, ida, RICH, None, Instant::now()).unwrap();
        let (b, idb) = tx(1, 2, 109);
        assert_eq!(
            p.insert(b, idb, RICH, None, Instant::now()).unwrap_err(),
            Rejection::ReplacementUnderpriced {
                fee: 109,
                pending: 100,
                min: 110
            }
        );
        let (c, idc) = tx(1, 2, 110);
        p.insert(c, idc, RICH, None, Instant::now()).unwrap();
        assert!(p.get(&idc).is_some() && p.get(&ida).is_none());
    }

    #[test]
    fn queued_txs_are_capped_per_account_and_in_all() {
        let mut p = pool();
        let now = Instant::now();
        // Account 1 (state nonce 2): nonces 4 and 5 are queued (3 is missing); a third is not.
        for n in [4, 5] {
            let (a, id) = tx(1, n, 1);
            p.insert(a, id, RICH, None, now).unwrap();
        }
        let (a, id) = tx(1, 6, 1);
        assert!(matches!(
            p.insert(a, id, RICH, None, now),
            Err(Rejection::MempoolFull(reason)) if reason.contains("from this account")
        ));
        // ...but filling the gap is always possible (it is not queued).
        let (fill, id_fill) = tx(1, 2, 1);
        p.insert(fill, id_fill, RICH, None, now).unwrap();
        assert_eq!(p.queued_len(), 2);
        // Account 2 takes the last global queued slot; account 3 finds none.
        let (a, id) = tx(2, 4, 1);
        p.insert(a, id, RICH, None, now).unwrap();
        let (a, id) = tx(3, 4, 1);
        assert!(matches!(
            p.insert(a, id, RICH, None, now),
            Err(Rejection::MempoolFull(reason)) if reason.contains("in the sequencer's mempool")
        ));
        // Account 3's executable tx still gets in.
        let (a, id) = tx(3, 2, 1);
        p.insert(a, id, RICH, None, now).unwrap();
    }

    #[test]
    fn queued_txs_expire_unless_their_gap_filled() {
        let mut p = pool();
        let t0 = Instant::now();
        let (gapped, id_gapped) = tx(1, 4, 1);
        let (filled, id_filled) = tx(2, 3, 1);
        let (ready, id_ready) = tx(3, 2, 1);
        for (t, id) in [(gapped, id_gapped), (filled, id_filled), (ready, id_ready)] {
            p.insert(t, id, RICH, None, t0).unwrap();
            p.mark_durable(&id);
        }
        let (fill, id_fill) = tx(2, 2, 1);
        p.insert(fill, id_fill, RICH, None, t0).unwrap();
        p.mark_durable(&id_fill);
        // Not old enough yet.
        p.expire(t0 + Duration::from_secs(59), |_| 2);
        assert_eq!(p.len(), 4);
        p.expire(t0 + Duration::from_secs(60), |_| 2);
        assert!(
            p.get(&id_gapped).is_none(),
            "its gap (nonces 2, 3) stayed open"
        );
        assert!(p.get(&id_filled).is_some(), "nonce 2 filled its gap");
        assert!(p.get(&id_ready).is_some());
        let evicted = p.take_evicted();
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].txid, id_gapped);
        assert!(
            evicted[0].reason.starts_with("expired"),
            "{}",
            evicted[0].reason
        );
    }

    #[test]
    fn a_full_pool_evicts_the_cheapest_tail_for_a_higher_fee() {
        let mut p = pool(); // max_txs 5
        let now = Instant::now();
        let mut ids = Vec::new();
        // Account 1: nonces 2, 3 at fee 5 and 1; account 2: nonce 2 at fee 2; account 3: two
        // at fee 9.
        for (signer, nonce, fee) in [(1, 2, 5), (1, 3, 1), (2, 2, 2), (3, 2, 9), (3, 3, 9)] {
            let (a, id) = tx(signer, nonce, fee);
            p.insert(a, id, RICH, None, now).unwrap();
            p.mark_durable(&id);
            ids.push(id);
        }
        // Fee 1 does not beat anyone.
        let (a, id) = tx(4, 2, 1);
        assert!(matches!(
            p.insert(a, id, RICH, None, now),
            Err(Rejection::MempoolFull(_))
        ));
        // Fee 3 evicts account 1's tail (fee 1), not its head.
        let (a, id_new) = tx(4, 2, 3);
        p.insert(a, id_new, RICH, None, now).unwrap();
        p.mark_durable(&id_new);
        assert_eq!(p.len(), 5);
        assert!(p.get(&ids[1]).is_none());
        assert!(p.get(&ids[0]).is_some());
        // Next cheapest tail is account 2's (fee 2).
        let (a, id) = tx(5, 2, 3);
        p.insert(a, id, RICH, None, now).unwrap();
        assert!(p.get(&ids[2]).is_none());
        let evicted = p.take_evicted();
        assert_eq!(
            evicted.iter().map(|e| e.txid).collect::<Vec<_>>(),
            vec![ids[1], ids[2]]
        );
        assert!(evicted[0].reason.contains("higher fee"));
    }
}
