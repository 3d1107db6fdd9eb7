//! Unit tests of the STF: every call's success path and failure paths, and every invalid-tx
//! reason.

use std::collections::BTreeMap;

use k256::schnorr::SigningKey;
use stint_state::Key;

use crate::*;

const CHAIN: u64 = 9;
const T0: u64 = 1_000_000;
const FUNDS: u64 = 1_000_000;
const FEE: u64 = 3;

struct Harness {
    keys: Vec<SigningKey>,
    ids: Vec<AccountId>,
    state: BTreeMap<Key, Vec<u8>>,
    nonces: Vec<u64>,
    now: u64,
    fee_recipient: AccountId,
    total: u128,
}

impl Harness {
    /// Accounts 0..4 funded; account 4 exists with no funds (keys are deterministic).
    fn new() -> Self {
        let keys: Vec<SigningKey> = (1..=5u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]).unwrap())
            .collect();
        let ids: Vec<AccountId> = keys.iter().map(AccountId::from_signing_key).collect();
        let mut state = BTreeMap::new();
        for id in &ids[..4] {
            let (k, v) = account_entry(
                id,
                &Account {
                    balance: FUNDS,
                    nonce: 0,
                },
            );
            state.insert(k, v.unwrap());
        }
        let total = total_value(&state).unwrap();
        Harness {
            keys,
            ids,
            state,
            nonces: vec![0; 5],
            now: T0,
            fee_recipient: AccountId([0xfe; 32]),
            total,
        }
    }

    fn ctx(&self) -> BlockContext {
        BlockContext {
            chain_id: CHAIN,
            timestamp: self.now,
            fee_recipient: self.fee_recipient,
        }
    }

    fn id(&self, who: usize) -> AccountId {
        self.ids[who]
    }

    fn signed(&mut self, who: usize, call: Call) -> SignedTx {
        let tx = Tx {
            chain_id: CHAIN,
            from: self.ids[who],
            nonce: self.nonces[who],
            fee: FEE,
            call,
        };
        self.nonces[who] += 1;
        tx.sign(&self.keys[who]).unwrap()
    }

    /// Execute one tx as its own batch, apply it, and check conservation.
    fn run(&mut self, who: usize, call: Call) -> Receipt {
        let stx = self.signed(who, call);
        let out = execute_batch(&self.state, &self.ctx(), std::slice::from_ref(&stx), 4).unwrap();
        let par = execute_batch_parallel(&self.state, &self.ctx(), &[stx], 4).unwrap();
        assert_eq!(out, par);
        for s in &out.segments {
            apply_changes(&mut self.state, &s.changes);
        }
        assert_eq!(
            total_value(&self.state).unwrap(),
            self.total,
            "value not conserved"
        );
        out.segments[0].receipts[0]
    }

    fn ok(&mut self, who: usize, call: Call) {
        let r = self.run(who, call.clone());
        assert_eq!(r.error, None, "{call:?} failed");
    }

    fn fails(&mut self, who: usize, call: Call, code: FailureCode) {
        let before = self.state.clone();
        let r = self.run(who, call.clone());
        assert_eq!(r.error, Some(code), "{call:?}");
        // Only the sender's account (nonce, fee) and the fee recipient changed.
        let mut expected = before;
        let sender = self.id(who);
        for id in [sender, self.fee_recipient] {
            let (k, v) = account_entry(&id, &read_account(&self.state, &id).unwrap());
            match v {
                Some(v) => expected.insert(k, v),
                None => expected.remove(&k),
            };
        }
        assert_eq!(self.state, expected, "failed call left effects");
    }

    fn balance(&self, who: usize) -> u64 {
        read_account(&self.state, &self.id(who)).unwrap().balance
    }

    fn spent(&self, who: usize) -> u64 {
        FEE * self.nonces[who]
    }

    fn task(&self, id: &TaskId) -> Task {
        read_task(&self.state, id).unwrap().unwrap()
    }

    fn stream(&self, id: &StreamId) -> Stream {
        read_stream(&self.state, id).unwrap().unwrap()
    }

    fn next_task_id(&self, who: usize) -> TaskId {
        task_id(&self.id(who), self.nonces[who])
    }

    fn next_stream_id(&self, who: usize) -> StreamId {
        stream_id(&self.id(who), self.nonces[who])
    }
}

// ---- invalid txs -------------------------------------------------------------------------

fn transfer(to: AccountId, amount: u64) -> Call {
    Call::Transfer { to, amount }
}

fn expect_invalid(h: &Harness, txs: &[SignedTx], index: usize) -> InvalidTxReason {
    let seq = execute_batch(&h.state, &h.ctx(), txs, 2);
    let par = execute_batch_parallel(&h.state, &h.ctx(), txs, 2);
    match (seq, par) {
        (
            Err(ExecError::Invalid { index: i, reason }),
            Err(ExecError::Invalid {
                index: j,
                reason: r2,
            }),
        ) => {
            assert_eq!((i, reason), (j, r2));
            assert_eq!(i, index);
            reason
        }
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn wrong_chain_id_is_invalid() {
    let mut h = Harness::new();
    let ok = h.signed(0, transfer(h.id(1), 1));
    let tx = Tx {
        chain_id: CHAIN + 1,
        from: h.id(1),
        nonce: 0,
        fee: 1,
        call: transfer(h.id(0), 1),
    };
    let bad = tx.sign(&h.keys[1]).unwrap();
    assert_eq!(
        expect_invalid(&h, &[ok, bad], 1),
        InvalidTxReason::WrongChainId {
            found: CHAIN + 1,
            expected: CHAIN
        }
    );
}

#[test]
fn bad_signature_is_invalid() {
    let mut h = Harness::new();
    let ok = h.signed(0, transfer(h.id(1), 1));
    let mut bad = h.signed(1, transfer(h.id(0), 1));
    bad.sig[0] ^= 1;
    assert_eq!(
        verify_signatures(&[ok.clone(), bad.clone()]),
        Err(BadSignature { index: 1 })
    );
    assert_eq!(
        expect_invalid(&h, &[ok, bad.clone()], 1),
        InvalidTxReason::BadSignature
    );
    // Signed by the wrong key.
    let forged = Tx {
        chain_id: CHAIN,
        from: h.id(2),
        nonce: 0,
        fee: 1,
        call: transfer(h.id(0), 1),
    }
    .sign(&h.keys[3])
    .unwrap();
    assert_eq!(
        expect_invalid(&h, &[forged], 0),
        InvalidTxReason::BadSignature
    );
    // Pre-verified input skips the check (trusted path).
    let v = VerifiedTxs::assume_valid(std::slice::from_ref(&bad));
    assert!(execute_verified_batch(&h.state, &h.ctx(), &v, 2).is_ok());
}

#[test]
fn wrong_nonce_is_invalid() {
    let mut h = Harness::new();
    let first = h.signed(0, transfer(h.id(1), 1));
    let _skipped = h.signed(0, transfer(h.id(1), 1));
    let third = h.signed(0, transfer(h.id(1), 1));
    assert_eq!(
        expect_invalid(&h, &[first.clone(), third], 1),
        InvalidTxReason::WrongNonce {
            found: 2,
            expected: 1
        }
    );
    // Replaying a tx is a nonce error too.
    assert_eq!(
        expect_invalid(&h, &[first.clone(), first], 1),
        InvalidTxReason::WrongNonce {
            found: 0,
            expected: 1
        }
    );
}

#[test]
fn unpayable_fee_is_invalid() {
    let h = Harness::new();
    // Account 4 has nothing.
    let tx = Tx {
        chain_id: CHAIN,
        from: h.id(4),
        nonce: 0,
        fee: 1,
        call: transfer(h.id(0), 1),
    };
    let stx = tx.sign(&h.keys[4]).unwrap();
    assert_eq!(
        expect_invalid(&h, &[stx], 0),
        InvalidTxReason::CannotPayFee { balance: 0, fee: 1 }
    );
    // A zero fee from an empty account is fine (the call then fails).
    let tx = Tx {
        chain_id: CHAIN,
        from: h.id(4),
        nonce: 0,
        fee: 0,
        call: transfer(h.id(0), 1),
    };
    let stx = tx.sign(&h.keys[4]).unwrap();
    let out = execute_batch(&h.state, &h.ctx(), &[stx], 2).unwrap();
    assert_eq!(
        out.segments[0].receipts[0].error,
        Some(FailureCode::InsufficientBalance)
    );
}

#[test]
fn exhausted_nonce_is_invalid() {
    let mut h = Harness::new();
    let (k, v) = account_entry(
        &h.id(0),
        &Account {
            balance: 10,
            nonce: u64::MAX,
        },
    );
    h.state.insert(k, v.unwrap());
    let tx = Tx {
        chain_id: CHAIN,
        from: h.id(0),
        nonce: u64::MAX,
        fee: 1,
        call: transfer(h.id(1), 1),
    };
    let stx = tx.sign(&h.keys[0]).unwrap();
    assert_eq!(
        expect_invalid(&h, &[stx], 0),
        InvalidTxReason::NonceExhausted
    );
}

#[test]
fn view_failures_are_internal() {
    struct Failing;
    impl stint_state::StateView for Failing {
        fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, stint_state::StateError> {
            Err(stint_state::InvalidState::KeyNotInWitness(*key).into())
        }
    }
    let mut h = Harness::new();
    let stx = h.signed(0, transfer(h.id(1), 1));
    assert!(matches!(
        execute_segment(Failing, &h.ctx(), &[stx]),
        Err(ExecError::Internal(_))
    ));
    assert!(matches!(
        execute_batch(&h.state, &h.ctx(), &[], 0),
        Err(ExecError::ZeroSegmentLength)
    ));
}

// ---- segments and fees -------------------------------------------------------------------

#[test]
fn fees_are_credited_at_each_segment_end() {
    let mut h = Harness::new();
    let txs: Vec<SignedTx> = (0..5).map(|_| h.signed(0, transfer(h.id(1), 10))).collect();
    let out = execute_batch(&h.state, &h.ctx(), &txs, 2).unwrap();
    assert_eq!(out.segments.len(), 3);
    assert_eq!(
        out.segments.iter().map(|s| s.fees).collect::<Vec<_>>(),
        [6, 6, 3]
    );
    let fee_key = account_key(&h.fee_recipient);
    let mut state = h.state.clone();
    let mut seen = vec![];
    for s in &out.segments {
        apply_changes(&mut state, &s.changes);
        seen.push(read_account(&state, &h.fee_recipient).unwrap().balance);
        assert!(s.changes.contains_key(&fee_key));
    }
    assert_eq!(seen, [6, 12, 15]);
    // A single segment over the same txs gives the same end state.
    let one = execute_segment(&h.state, &h.ctx(), &txs).unwrap();
    let mut merged = h.state.clone();
    apply_changes(&mut merged, &one.changes);
    assert_eq!(merged, state);
    assert_eq!(out.changes(), one.changes);
    assert_eq!(out.fees(), Some(15));
}

#[test]
fn fee_recipient_spends_only_credited_fees() {
    let mut h = Harness::new();
    h.fee_recipient = h.id(4);
    // Account 4 has no balance until the end of the first segment.
    let a = h.signed(0, transfer(h.id(1), 10));
    let b = Tx {
        chain_id: CHAIN,
        from: h.id(4),
        nonce: 0,
        fee: 1,
        call: transfer(h.id(1), 1),
    }
    .sign(&h.keys[4])
    .unwrap();
    assert!(matches!(
        execute_batch(&h.state, &h.ctx(), &[a.clone(), b.clone()], 2),
        Err(ExecError::Invalid {
            index: 1,
            reason: InvalidTxReason::CannotPayFee { .. }
        })
    ));
    let out = execute_batch(&h.state, &h.ctx(), &[a.clone(), b.clone()], 1).unwrap();
    let par = execute_batch_parallel(&h.state, &h.ctx(), &[a, b], 1).unwrap();
    assert_eq!(out, par);
    assert_eq!(out.segments[1].receipts[0].error, None);
}

// ---- transfers and payroll -----------------------------------------------------------------

#[test]
fn transfer_paths() {
    let mut h = Harness::new();
    h.ok(0, transfer(h.id(1), 500));
    assert_eq!(h.balance(0), FUNDS - 500 - h.spent(0));
    assert_eq!(h.balance(1), FUNDS + 500);
    h.ok(0, transfer(h.id(0), 5)); // to self
    h.fails(0, transfer(h.id(1), 0), FailureCode::ZeroAmount);
    h.fails(
        0,
        transfer(h.id(1), FUNDS),
        FailureCode::InsufficientBalance,
    );
    // Credit overflow.
    let (k, v) = account_entry(
        &h.id(2),
        &Account {
            balance: u64::MAX - FUNDS,
            nonce: 0,
        },
    );
    h.state.insert(k, v.unwrap());
    h.total = total_value(&h.state).unwrap();
    h.ok(0, transfer(h.id(2), FUNDS / 2));
    h.fails(1, transfer(h.id(2), FUNDS), FailureCode::Overflow);
}

#[test]
fn payroll_paths() {
    let mut h = Harness::new();
    let pay = |to: AccountId, amount: u64| Payment { to, amount };
    h.ok(
        0,
        Call::Payroll {
            payments: vec![pay(h.id(1), 10), pay(h.id(2), 20), pay(h.id(1), 1)],
        },
    );
    assert_eq!(h.balance(1), FUNDS + 11);
    assert_eq!(h.balance(2), FUNDS + 20);
    h.fails(
        0,
        Call::Payroll { payments: vec![] },
        FailureCode::EmptyPayroll,
    );
    h.fails(
        0,
        Call::Payroll {
            payments: vec![pay(h.id(1), 1), pay(h.id(2), 0)],
        },
        FailureCode::ZeroAmount,
    );
    h.fails(
        0,
        Call::Payroll {
            payments: vec![pay(h.id(1), u64::MAX), pay(h.id(2), 1)],
        },
        FailureCode::Overflow,
    );
    h.fails(
        0,
        Call::Payroll {
            payments: vec![pay(h.id(1), FUNDS), pay(h.id(2), 1)],
        },
        FailureCode::InsufficientBalance,
    );
    h.fails(
        0,
        Call::Payroll {
            payments: vec![pay(h.id(1), 1); MAX_PAYROLL_PAYMENTS + 1],
        },
        FailureCode::TooManyPayments,
    );
    h.ok(
        0,
        Call::Payroll {
            payments: vec![pay(h.id(3), 1); MAX_PAYROLL_PAYMENTS],
        },
    );
    assert_eq!(h.balance(3), FUNDS + MAX_PAYROLL_PAYMENTS as u64);
}

// ---- streams ---------------------------------------------------------------------------------

fn open(worker: AccountId, rate: u64, start: u64, secs: u64, cancelable: bool) -> Call {
    Call::StreamOpen {
        worker,
        rate_per_sec: rate,
        start,
        duration_secs: secs,
        cancelable,
    }
}

#[test]
fn stream_lifecycle() {
    let mut h = Harness::new();
    let id = h.next_stream_id(0);
    h.ok(0, open(h.id(1), 10, T0 + 100, 1_000, true));
    assert_eq!(h.balance(0), FUNDS - 10_000 - h.spent(0));
    let s = h.stream(&id);
    assert_eq!(
        (s.employer, s.worker, s.funded_secs),
        (h.id(0), h.id(1), 1_000)
    );

    // Nothing accrues before start.
    h.now = T0 + 50;
    h.fails(
        1,
        Call::StreamWithdraw { id },
        FailureCode::NothingToWithdraw,
    );
    h.now = T0 + 200;
    h.ok(1, Call::StreamWithdraw { id });
    assert_eq!(h.balance(1), FUNDS + 1_000 - h.spent(1));

    // Pause at +300: 200 s accrued in total; paused time does not accrue, owed stays owed.
    h.now = T0 + 300;
    h.ok(0, Call::StreamPause { id });
    h.fails(0, Call::StreamPause { id }, FailureCode::StreamPaused);
    h.now = T0 + 900;
    assert_eq!(h.stream(&id).withdrawable(h.now), Some(1_000));
    h.ok(1, Call::StreamWithdraw { id });
    assert_eq!(h.balance(1), FUNDS + 2_000 - h.spent(1));
    h.fails(
        1,
        Call::StreamWithdraw { id },
        FailureCode::NothingToWithdraw,
    );
    h.ok(0, Call::StreamResume { id });
    h.fails(0, Call::StreamResume { id }, FailureCode::StreamNotPaused);

    // Run to the end of funding (800 more seconds), then past it.
    h.now = T0 + 900 + 5_000;
    assert_eq!(h.stream(&id).accrued_secs(h.now), 1_000);
    // Top-up by anyone banks the capped accrual, so the gap is not paid.
    h.ok(
        2,
        Call::StreamTopUp {
            id,
            extra_secs: 100,
        },
    );
    assert_eq!(h.balance(2), FUNDS - 1_000 - h.spent(2));
    h.now += 40;
    assert_eq!(h.stream(&id).accrued_secs(h.now), 1_040);
    // Cancel: worker gets accrued-unwithdrawn, employer the rest.
    let worker_before = h.balance(1);
    let employer_before = h.balance(0);
    h.ok(0, Call::StreamCancel { id });
    assert_eq!(h.balance(1), worker_before + 10_400 - 2_000);
    assert_eq!(h.balance(0), employer_before + 600 - FEE);
    assert_eq!(h.stream(&id).escrow(), Some(0));
    assert_eq!(h.stream(&id).status, StreamStatus::Canceled);
    for call in [
        Call::StreamWithdraw { id },
        Call::StreamTopUp { id, extra_secs: 1 },
        Call::StreamPause { id },
        Call::StreamResume { id },
        Call::StreamCancel { id },
    ] {
        let who = if matches!(call, Call::StreamWithdraw { .. }) {
            1
        } else {
            0
        };
        h.fails(who, call, FailureCode::WrongStatus);
    }
}

#[test]
fn stream_failures() {
    let mut h = Harness::new();
    let w = h.id(1);
    h.fails(0, open(w, 0, T0, 10, true), FailureCode::ZeroAmount);
    h.fails(0, open(w, 1, T0, 0, true), FailureCode::ZeroAmount);
    h.fails(
        0,
        open(h.id(0), 1, T0, 10, true),
        FailureCode::InvalidParticipant,
    );
    h.fails(0, open(w, u64::MAX, T0, 2, true), FailureCode::Overflow);
    h.fails(
        0,
        open(w, 1, T0, FUNDS, true),
        FailureCode::InsufficientBalance,
    );

    let unknown = StreamId([1; 32]);
    for call in [
        Call::StreamWithdraw { id: unknown },
        Call::StreamTopUp {
            id: unknown,
            extra_secs: 1,
        },
        Call::StreamPause { id: unknown },
        Call::StreamResume { id: unknown },
        Call::StreamCancel { id: unknown },
    ] {
        h.fails(0, call, FailureCode::UnknownStream);
    }

    let fixed = h.next_stream_id(0);
    h.ok(0, open(w, 1_000, T0, 100, false));
    h.fails(
        0,
        Call::StreamCancel { id: fixed },
        FailureCode::NotCancelable,
    );
    h.fails(
        2,
        Call::StreamWithdraw { id: fixed },
        FailureCode::Unauthorized,
    );
    h.fails(
        0,
        Call::StreamWithdraw { id: fixed },
        FailureCode::Unauthorized,
    );
    h.fails(
        1,
        Call::StreamPause { id: fixed },
        FailureCode::Unauthorized,
    );
    h.fails(
        1,
        Call::StreamResume { id: fixed },
        FailureCode::Unauthorized,
    );
    h.fails(
        2,
        Call::StreamCancel { id: fixed },
        FailureCode::Unauthorized,
    );
    h.fails(
        2,
        Call::StreamTopUp {
            id: fixed,
            extra_secs: 0,
        },
        FailureCode::ZeroAmount,
    );
    h.fails(
        2,
        Call::StreamTopUp {
            id: fixed,
            extra_secs: u64::MAX,
        },
        FailureCode::Overflow,
    );
    h.fails(
        2,
        Call::StreamTopUp {
            id: fixed,
            extra_secs: FUNDS,
        },
        FailureCode::InsufficientBalance,
    );
}

// ---- tasks -----------------------------------------------------------------------------------

fn create(
    worker: Option<AccountId>,
    arbiter: Option<AccountId>,
    ms: &[u64],
    deadline: u64,
) -> Call {
    Call::TaskCreate {
        worker,
        arbiter,
        spec_hash: [7; 32],
        milestones: ms.to_vec(),
        deadline,
        review_secs: 100,
    }
}

fn submit(id: TaskId, milestone: u32) -> Call {
    Call::TaskSubmit {
        id,
        milestone,
        deliverable_hash: [8; 32],
    }
}

#[test]
fn task_happy_path_with_approve_and_claim() {
    let mut h = Harness::new();
    let (emp, wrk) = (0, 1);
    let id = h.next_task_id(emp);
    h.ok(
        emp,
        create(Some(h.id(wrk)), Some(h.id(2)), &[300, 700], T0 + 1_000),
    );
    assert_eq!(h.balance(emp), FUNDS - 1_000 - h.spent(emp));
    assert_eq!(h.task(&id).status, TaskStatus::Open);
    assert_eq!(h.task(&id).escrow, 1_000);

    h.ok(wrk, Call::TaskAccept { id });
    assert_eq!(h.task(&id).status, TaskStatus::Active);
    h.ok(wrk, submit(id, 0));
    h.ok(emp, Call::TaskApprove { id, milestone: 0 });
    assert_eq!(h.balance(wrk), FUNDS + 300 - h.spent(wrk));

    h.now = T0 + 10;
    h.ok(wrk, submit(id, 1));
    h.now = T0 + 109;
    h.fails(
        wrk,
        Call::TaskClaim { id, milestone: 1 },
        FailureCode::ReviewPeriodNotOver,
    );
    h.now = T0 + 110;
    h.ok(wrk, Call::TaskClaim { id, milestone: 1 });
    assert_eq!(h.balance(wrk), FUNDS + 1_000 - h.spent(wrk));
    let t = h.task(&id);
    assert_eq!((t.status, t.escrow), (TaskStatus::Completed, 0));
    h.fails(
        emp,
        Call::TaskApprove { id, milestone: 0 },
        FailureCode::WrongStatus,
    );
}

#[test]
fn open_task_is_accepted_by_anyone_but_the_parties() {
    let mut h = Harness::new();
    let id = h.next_task_id(0);
    h.ok(0, create(None, Some(h.id(2)), &[50], T0 + 1_000));
    h.fails(0, Call::TaskAccept { id }, FailureCode::Unauthorized);
    h.fails(2, Call::TaskAccept { id }, FailureCode::Unauthorized);
    h.ok(3, Call::TaskAccept { id });
    assert_eq!(h.task(&id).worker, Some(h.id(3)));
    h.fails(1, Call::TaskAccept { id }, FailureCode::Unauthorized);
    h.fails(3, Call::TaskAccept { id }, FailureCode::WrongStatus);
    h.fails(1, submit(id, 0), FailureCode::Unauthorized);
    h.ok(3, submit(id, 0));
}

#[test]
fn task_create_failures() {
    let mut h = Harness::new();
    let (w, a) = (Some(h.id(1)), Some(h.id(2)));
    let d = T0 + 10;
    h.fails(0, create(w, a, &[], d), FailureCode::NoMilestones);
    h.fails(
        0,
        create(w, a, &[1; MAX_MILESTONES + 1], d),
        FailureCode::TooManyMilestones,
    );
    h.fails(0, create(w, a, &[1, 0], d), FailureCode::ZeroAmount);
    h.fails(
        0,
        create(Some(h.id(0)), a, &[1], d),
        FailureCode::InvalidParticipant,
    );
    h.fails(
        0,
        create(w, Some(h.id(0)), &[1], d),
        FailureCode::InvalidParticipant,
    );
    h.fails(0, create(w, w, &[1], d), FailureCode::InvalidParticipant);
    h.fails(0, create(w, a, &[1], T0), FailureCode::DeadlinePassed);
    h.fails(0, create(w, a, &[u64::MAX, 1], d), FailureCode::Overflow);
    h.fails(
        0,
        create(w, a, &[FUNDS], d),
        FailureCode::InsufficientBalance,
    );
    h.ok(0, create(w, a, &[1; MAX_MILESTONES], d));
}

#[test]
fn task_call_failures() {
    let mut h = Harness::new();
    let unknown = TaskId([3; 32]);
    for call in [
        Call::TaskAccept { id: unknown },
        submit(unknown, 0),
        Call::TaskApprove {
            id: unknown,
            milestone: 0,
        },
        Call::TaskClaim {
            id: unknown,
            milestone: 0,
        },
        Call::TaskDispute {
            id: unknown,
            reason_hash: [0; 32],
        },
        Call::TaskResolve {
            id: unknown,
            worker_share_bps: 1,
        },
        Call::TaskCancel { id: unknown },
    ] {
        h.fails(0, call, FailureCode::UnknownTask);
    }

    let id = h.next_task_id(0);
    h.ok(
        0,
        create(Some(h.id(1)), Some(h.id(2)), &[100, 200], T0 + 1_000),
    );
    // Named worker has not accepted yet.
    h.fails(3, Call::TaskAccept { id }, FailureCode::Unauthorized);
    h.fails(1, submit(id, 0), FailureCode::WrongStatus);
    h.fails(
        0,
        Call::TaskApprove { id, milestone: 0 },
        FailureCode::WrongStatus,
    );
    h.fails(
        1,
        Call::TaskDispute {
            id,
            reason_hash: [0; 32],
        },
        FailureCode::WrongStatus,
    );
    h.ok(1, Call::TaskAccept { id });

    h.fails(1, submit(id, 2), FailureCode::MilestoneOutOfRange);
    h.fails(1, submit(id, u32::MAX), FailureCode::MilestoneOutOfRange);
    h.fails(0, submit(id, 0), FailureCode::Unauthorized);
    h.fails(
        1,
        Call::TaskApprove { id, milestone: 0 },
        FailureCode::Unauthorized,
    );
    h.fails(
        0,
        Call::TaskApprove { id, milestone: 0 },
        FailureCode::MilestoneNotSubmitted,
    );
    h.fails(
        0,
        Call::TaskApprove { id, milestone: 9 },
        FailureCode::MilestoneOutOfRange,
    );
    h.fails(
        1,
        Call::TaskClaim { id, milestone: 0 },
        FailureCode::MilestoneNotSubmitted,
    );
    h.fails(
        0,
        Call::TaskClaim { id, milestone: 0 },
        FailureCode::Unauthorized,
    );
    h.fails(
        1,
        Call::TaskClaim { id, milestone: 5 },
        FailureCode::MilestoneOutOfRange,
    );
    h.ok(1, submit(id, 0));
    h.fails(1, submit(id, 0), FailureCode::MilestoneNotPending);
    h.fails(1, Call::TaskCancel { id }, FailureCode::Unauthorized);
    h.fails(0, Call::TaskCancel { id }, FailureCode::DeadlineNotPassed);
    h.fails(
        3,
        Call::TaskDispute {
            id,
            reason_hash: [0; 32],
        },
        FailureCode::Unauthorized,
    );
    h.fails(
        2,
        Call::TaskResolve {
            id,
            worker_share_bps: 1,
        },
        FailureCode::WrongStatus,
    );

    // After the deadline: no submission, cancel refunds the pending milestone only.
    h.now = T0 + 1_001;
    h.fails(1, submit(id, 1), FailureCode::DeadlinePassed);
    let before = h.balance(0);
    h.ok(0, Call::TaskCancel { id });
    assert_eq!(h.balance(0), before + 200 - FEE);
    let t = h.task(&id);
    assert_eq!((t.status, t.escrow), (TaskStatus::Active, 100));
    assert_eq!(t.milestones[1].status, MilestoneStatus::Refunded);
    h.fails(0, Call::TaskCancel { id }, FailureCode::NothingToRefund);
    // The submitted milestone stays claimable; then the task is settled as canceled.
    h.ok(1, Call::TaskClaim { id, milestone: 0 });
    assert_eq!(h.task(&id).status, TaskStatus::Canceled);
    h.fails(0, Call::TaskCancel { id }, FailureCode::WrongStatus);
    h.fails(
        1,
        Call::TaskClaim { id, milestone: 0 },
        FailureCode::WrongStatus,
    );

    // Open tasks: accept after the deadline fails; cancel refunds everything.
    let late = h.next_task_id(0);
    h.ok(0, create(None, None, &[10, 20], h.now + 5));
    h.now += 6;
    h.fails(
        3,
        Call::TaskAccept { id: late },
        FailureCode::DeadlinePassed,
    );
    let before = h.balance(0);
    h.ok(0, Call::TaskCancel { id: late });
    assert_eq!(h.balance(0), before + 30 - FEE);
    assert_eq!(h.task(&late).status, TaskStatus::Canceled);
    h.fails(0, Call::TaskCancel { id: late }, FailureCode::WrongStatus);
}

#[test]
fn dispute_and_resolve() {
    let mut h = Harness::new();
    let (emp, wrk, arb) = (0, 1, 2);
    let id = h.next_task_id(emp);
    h.ok(
        emp,
        create(Some(h.id(wrk)), Some(h.id(arb)), &[333, 667], T0 + 1_000),
    );
    h.ok(wrk, Call::TaskAccept { id });
    h.ok(wrk, submit(id, 0));
    h.ok(
        emp,
        Call::TaskDispute {
            id,
            reason_hash: [4; 32],
        },
    );
    let t = h.task(&id);
    assert_eq!(t.status, TaskStatus::Disputed);
    assert_eq!(t.dispute.unwrap().by, h.id(emp));
    // Frozen.
    h.now = T0 + 500;
    h.fails(
        wrk,
        Call::TaskClaim { id, milestone: 0 },
        FailureCode::WrongStatus,
    );
    h.fails(
        emp,
        Call::TaskApprove { id, milestone: 0 },
        FailureCode::WrongStatus,
    );
    h.fails(wrk, submit(id, 1), FailureCode::WrongStatus);
    h.fails(
        wrk,
        Call::TaskDispute {
            id,
            reason_hash: [4; 32],
        },
        FailureCode::WrongStatus,
    );
    h.fails(emp, Call::TaskCancel { id }, FailureCode::WrongStatus);
    h.fails(
        emp,
        Call::TaskResolve {
            id,
            worker_share_bps: 1,
        },
        FailureCode::Unauthorized,
    );
    h.fails(
        arb,
        Call::TaskResolve {
            id,
            worker_share_bps: 10_001,
        },
        FailureCode::InvalidShare,
    );
    let (wb, eb) = (h.balance(wrk), h.balance(emp));
    h.ok(
        arb,
        Call::TaskResolve {
            id,
            worker_share_bps: 3_333,
        },
    );
    // floor(1000 × 3333 / 10000) = 333 to the worker, 667 back.
    assert_eq!(h.balance(wrk), wb + 333);
    assert_eq!(h.balance(emp), eb + 667);
    let t = h.task(&id);
    assert_eq!((t.status, t.escrow), (TaskStatus::Resolved, 0));
    // The record says how: both open milestones (one submitted, one pending) are settled by the
    // split, and the split is kept with the share, both amounts and the time.
    assert!(t
        .milestones
        .iter()
        .all(|m| m.status == MilestoneStatus::Resolved));
    assert_eq!(
        t.resolution,
        Some(crate::Resolution {
            worker_share_bps: 3_333,
            to_worker: 333,
            to_employer: 667,
            at: T0 + 500,
        })
    );
    // Nobody can take the settled escrow a second time: the worker cannot claim, submit or
    // dispute the settled milestones, the employer cannot approve or cancel, and nothing moves.
    let (wb, eb) = (h.balance(wrk), h.balance(emp));
    h.fails(
        wrk,
        Call::TaskClaim { id, milestone: 0 },
        FailureCode::WrongStatus,
    );
    h.fails(wrk, submit(id, 1), FailureCode::WrongStatus);
    h.fails(
        wrk,
        Call::TaskDispute {
            id,
            reason_hash: [5; 32],
        },
        FailureCode::WrongStatus,
    );
    h.fails(
        emp,
        Call::TaskApprove { id, milestone: 0 },
        FailureCode::WrongStatus,
    );
    h.fails(emp, Call::TaskCancel { id }, FailureCode::WrongStatus);
    assert_eq!(
        (h.balance(wrk), h.balance(emp)),
        (wb - 3 * FEE, eb - 2 * FEE)
    );
    assert_eq!(h.task(&id).escrow, 0);
    h.fails(
        arb,
        Call::TaskResolve {
            id,
            worker_share_bps: 1,
        },
        FailureCode::WrongStatus,
    );

    // No arbiter: no dispute.
    let lone = h.next_task_id(emp);
    h.ok(emp, create(Some(h.id(wrk)), None, &[5], T0 + 1_000));
    h.ok(wrk, Call::TaskAccept { id: lone });
    h.fails(
        wrk,
        Call::TaskDispute {
            id: lone,
            reason_hash: [0; 32],
        },
        FailureCode::NoArbiter,
    );
}

#[test]
fn claim_review_overflow_fails_the_call() {
    let mut h = Harness::new();
    let id = h.next_task_id(0);
    h.ok(
        0,
        Call::TaskCreate {
            worker: Some(h.id(1)),
            arbiter: None,
            spec_hash: [0; 32],
            milestones: vec![9],
            deadline: T0 + 10,
            review_secs: u64::MAX,
        },
    );
    h.ok(1, Call::TaskAccept { id });
    h.ok(1, submit(id, 0));
    h.fails(
        1,
        Call::TaskClaim { id, milestone: 0 },
        FailureCode::Overflow,
    );
    h.ok(0, Call::TaskApprove { id, milestone: 0 });
}

#[test]
fn access_sets_name_the_participants() {
    let mut h = Harness::new();
    let id = h.next_task_id(0);
    h.ok(0, create(Some(h.id(1)), Some(h.id(2)), &[5], T0 + 100));
    let stx = h.signed(
        2,
        Call::TaskResolve {
            id,
            worker_share_bps: 0,
        },
    );
    let set = access_set(&stx, &h.state).unwrap();
    let expected: std::collections::BTreeSet<Key> = [
        account_key(&h.id(2)),
        task_key(&id),
        account_key(&h.id(0)),
        account_key(&h.id(1)),
    ]
    .into_iter()
    .collect();
    assert_eq!(set, expected);
    let sid = h.next_stream_id(3);
    let open_tx = h.signed(3, open(h.id(1), 1, T0, 1, true));
    assert_eq!(
        access_set(&open_tx, &h.state).unwrap(),
        [account_key(&h.id(3)), stream_key(&sid)]
            .into_iter()
            .collect()
    );
}

#[test]
fn parallel_matches_sequential_with_conflicts_and_fallbacks() {
    let mut h = Harness::new();
    let id = h.next_task_id(0);
    let mut txs = vec![
        h.signed(0, create(None, None, &[5, 6], T0 + 100)),
        h.signed(1, transfer(h.id(2), 7)),
        h.signed(3, transfer(h.id(3), 1)),
    ];
    txs.push(h.signed(2, Call::TaskAccept { id })); // unknown in pre-state of segment 0
    txs.push(h.signed(2, submit(id, 0)));
    txs.push(h.signed(0, Call::TaskApprove { id, milestone: 0 }));
    txs.push(h.signed(1, transfer(h.fee_recipient, 7))); // forces the fee fallback
    let seq = execute_batch(&h.state, &h.ctx(), &txs, 3).unwrap();
    let par = execute_batch_parallel(&h.state, &h.ctx(), &txs, 3).unwrap();
    assert_eq!(seq, par);
    for k in 1..8 {
        assert_eq!(
            execute_batch(&h.state, &h.ctx(), &txs, k).unwrap(),
            execute_batch_parallel(&h.state, &h.ctx(), &txs, k).unwrap()
        );
    }
}

// ---- withdrawals (protocol v3) -------------------------------------------------------------

fn p2wpkh() -> Vec<u8> {
    let mut script = vec![0x00, 0x14];
    script.extend_from_slice(&[0x11; 20]);
    script
}

fn p2tr() -> Vec<u8> {
    let mut script = vec![0x51, 0x20];
    script.extend_from_slice(&[0x22; 32]);
    script
}

#[test]
fn a_withdrawal_burns_the_amount_and_records_what_is_owed() {
    let mut h = Harness::new();
    let id = withdrawal_id(&h.id(0), h.nonces[0]);
    h.ok(
        0,
        Call::Withdraw {
            btc_script: p2wpkh(),
            amount: 5_000,
        },
    );
    assert_eq!(h.balance(0), FUNDS - 5_000 - h.spent(0));
    let w = read_withdrawal(&h.state, &id).unwrap().unwrap();
    assert_eq!(
        w,
        Withdrawal {
            from: h.id(0),
            btc_script: p2wpkh(),
            amount: 5_000,
        }
    );
    // The state's value still counts it (the harness checks conservation on every run).
    assert_eq!(Record::Withdrawal(w).value(), Some(5_000));
}

#[test]
fn a_withdrawal_to_a_non_standard_script_below_dust_or_beyond_the_balance_fails() {
    let mut h = Harness::new();
    for bad in [
        vec![],
        vec![0x6a, 0x01, 0x00],                         // OP_RETURN
        vec![0x00, 0x14, 0x11],                         // truncated P2WPKH
        [vec![0x52, 0x20], vec![0x22; 32]].concat(),    // witness v2
        [vec![0x76, 0xa9, 0x14], vec![0; 22]].concat(), // P2PKH without its opcodes
    ] {
        h.fails(
            0,
            Call::Withdraw {
                btc_script: bad,
                amount: 5_000,
            },
            FailureCode::NonStandardScript,
        );
    }
    h.fails(
        0,
        Call::Withdraw {
            btc_script: p2wpkh(),
            amount: 293,
        },
        FailureCode::BelowDust,
    );
    h.ok(
        0,
        Call::Withdraw {
            btc_script: p2wpkh(),
            amount: 294,
        },
    );
    h.fails(
        0,
        Call::Withdraw {
            btc_script: p2tr(),
            amount: 329,
        },
        FailureCode::BelowDust,
    );
    h.fails(
        0,
        Call::Withdraw {
            btc_script: p2tr(),
            amount: 0,
        },
        FailureCode::ZeroAmount,
    );
    h.fails(
        1,
        Call::Withdraw {
            btc_script: p2tr(),
            amount: FUNDS,
        },
        FailureCode::InsufficientBalance,
    );
}

#[test]
fn standard_output_dust_knows_the_five_standard_kinds() {
    let p2pkh = [vec![0x76, 0xa9, 0x14], vec![1; 20], vec![0x88, 0xac]].concat();
    let p2sh = [vec![0xa9, 0x14], vec![1; 20], vec![0x87]].concat();
    let p2wsh = [vec![0x00, 0x20], vec![1; 32]].concat();
    assert_eq!(standard_output_dust(&p2pkh), Some(546));
    assert_eq!(standard_output_dust(&p2sh), Some(540));
    assert_eq!(standard_output_dust(&p2wpkh()), Some(294));
    assert_eq!(standard_output_dust(&p2wsh), Some(330));
    assert_eq!(standard_output_dust(&p2tr()), Some(330));
    assert_eq!(standard_output_dust(&p2pkh[..24]), None);
    assert_eq!(standard_output_dust(&[p2tr(), vec![0]].concat()), None);
}

#[test]
fn a_withdrawal_script_longer_than_the_bound_does_not_decode() {
    let mut h = Harness::new();
    let stx = h.signed(
        0,
        Call::Withdraw {
            btc_script: vec![0x51; MAX_BTC_SCRIPT_LEN + 1],
            amount: 1_000,
        },
    );
    assert!(SignedTx::decode(&stx.encode()).is_err());
    let ok = h.signed(
        0,
        Call::Withdraw {
            btc_script: p2tr(),
            amount: 1_000,
        },
    );
    assert_eq!(SignedTx::decode(&ok.encode()).unwrap(), ok);
    // JSON: the script is hex.
    let json = serde_json::to_value(&ok.tx.call).unwrap();
    assert_eq!(json["btcScript"], serde_json::json!(hex::encode(p2tr())));
}
