//! Property tests over random sequences of every call, from a few funded accounts, including
//! calls that fail and txs that are invalid: value is conserved, execution is deterministic,
//! and parallel execution is bit-identical to sequential execution.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k256::schnorr::SigningKey;
use proptest::prelude::*;
use stint_contracts::{
    account_entry, apply_changes, execute_batch, execute_batch_parallel, read_account, stream_id,
    task_id, total_value, Account, AccountId, BlockContext, Call, ExecError, Payment, SignedTx,
    StreamId, TaskId, Tx,
};
use stint_state::Key;

const CHAIN: u64 = 5;
const ACCOUNTS: usize = 4;
const FUNDS: u64 = 100_000;

/// Keys 0..4 are funded; key 4 never is (its txs cannot pay fees).
fn keys() -> &'static [(SigningKey, AccountId)] {
    static KEYS: OnceLock<Vec<(SigningKey, AccountId)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (1..=ACCOUNTS as u8 + 1)
            .map(|i| {
                let k = SigningKey::from_bytes(&[i; 32]).unwrap();
                let id = AccountId::from_signing_key(&k);
                (k, id)
            })
            .collect()
    })
}

fn genesis() -> BTreeMap<Key, Vec<u8>> {
    let mut state = BTreeMap::new();
    for (_, id) in &keys()[..ACCOUNTS] {
        let (k, v) = account_entry(
            id,
            &Account {
                balance: FUNDS,
                nonce: 0,
            },
        );
        state.insert(k, v.unwrap());
    }
    state
}

/// A call in terms of account indices and indices of objects created earlier.
#[derive(Debug, Clone)]
enum OpCall {
    Transfer {
        to: usize,
        amount: u64,
    },
    Payroll {
        payments: Vec<(usize, u64)>,
    },
    StreamOpen {
        worker: usize,
        rate: u64,
        start_offset: u64,
        duration: u64,
        cancelable: bool,
    },
    StreamWithdraw(usize),
    StreamTopUp(usize, u64),
    StreamPause(usize),
    StreamResume(usize),
    StreamCancel(usize),
    TaskCreate {
        worker: Option<usize>,
        arbiter: Option<usize>,
        ms: Vec<u64>,
        ttl: u64,
        review: u64,
    },
    TaskAccept(usize),
    TaskSubmit(usize, u32),
    TaskApprove(usize, u32),
    TaskClaim(usize, u32),
    TaskDispute(usize),
    TaskResolve(usize, u16),
    TaskCancel(usize),
    /// A withdrawal to one of a few scripts (standard or not) of `amount`.
    Withdraw(usize, u64),
}

#[derive(Debug, Clone, Copy)]
enum Corruption {
    None,
    ChainId,
    Signature,
    Nonce,
}

/// Who sends a call on an existing task or stream: its employer, worker or arbiter (as the
/// generator recorded them at creation), or the op's random sender.
#[derive(Debug, Clone, Copy)]
enum Role {
    Employer,
    Worker,
    Arbiter,
    Any,
}

#[derive(Debug, Clone)]
struct Op {
    sender: usize,
    role: Role,
    fee: u64,
    call: OpCall,
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 0..2_000u64, 1 => Just(u64::MAX), 1 => 0..200_000u64]
}

fn account() -> impl Strategy<Value = usize> {
    0..=ACCOUNTS
}

fn op_call() -> impl Strategy<Value = OpCall> {
    let obj = 0..4usize;
    prop_oneof![
        3 => (account(), amount()).prop_map(|(to, amount)| OpCall::Transfer { to, amount }),
        1 => prop::collection::vec((account(), amount()), 0..4)
            .prop_map(|payments| OpCall::Payroll { payments }),
        2 => (account(), 0..40u64, 0..100u64, 0..300u64, any::<bool>()).prop_map(
            |(worker, rate, start_offset, duration, cancelable)| OpCall::StreamOpen {
                worker, rate, start_offset, duration, cancelable
            }
        ),
        2 => obj.clone().prop_map(OpCall::StreamWithdraw),
        1 => (obj.clone(), prop_oneof![0..100u64, Just(u64::MAX)])
            .prop_map(|(s, x)| OpCall::StreamTopUp(s, x)),
        1 => obj.clone().prop_map(OpCall::StreamPause),
        1 => obj.clone().prop_map(OpCall::StreamResume),
        1 => obj.clone().prop_map(OpCall::StreamCancel),
        2 => (
            // Offsets from the employer, so that worker and arbiter differ from it.
            prop::option::of(0..ACCOUNTS),
            prop::option::of(0..ACCOUNTS),
            prop::collection::vec(prop_oneof![10 => 1..500u64, 1 => Just(0), 1 => Just(u64::MAX)], 1..3),
            0..400u64,
            0..60u64,
        ).prop_map(|(worker, arbiter, ms, ttl, review)| OpCall::TaskCreate {
            worker, arbiter, ms, ttl, review
        }),
        4 => obj.clone().prop_map(OpCall::TaskAccept),
        5 => (obj.clone(), 0..3u32).prop_map(|(t, m)| OpCall::TaskSubmit(t, m)),
        4 => (obj.clone(), 0..3u32).prop_map(|(t, m)| OpCall::TaskApprove(t, m)),
        4 => (obj.clone(), 0..3u32).prop_map(|(t, m)| OpCall::TaskClaim(t, m)),
        3 => obj.clone().prop_map(OpCall::TaskDispute),
        3 => (obj.clone(), prop_oneof![0..=10_000u16, Just(10_001u16)])
            .prop_map(|(t, b)| OpCall::TaskResolve(t, b)),
        1 => obj.clone().prop_map(OpCall::TaskCancel),
        2 => (obj, prop_oneof![0..2_000u64, Just(u64::MAX)])
            .prop_map(|(script, amount)| OpCall::Withdraw(script, amount)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Sender 4 (unfunded) mostly produces fee-invalid txs; keep it rare.
    let sender = prop_oneof![60 => 0..ACCOUNTS, 1 => Just(ACCOUNTS)];
    let role = prop_oneof![
        3 => Just(Role::Employer),
        3 => Just(Role::Worker),
        1 => Just(Role::Arbiter),
        1 => Just(Role::Any),
    ];
    (sender, role, 0..4u64, op_call()).prop_map(|(sender, role, fee, call)| Op {
        sender,
        role,
        fee,
        call,
    })
}

/// At most one corrupted tx per batch (an invalid batch changes nothing, so more would only
/// waste the case).
fn corruption() -> impl Strategy<Value = (usize, Corruption)> {
    let kind = prop_oneof![
        12 => Just(Corruption::None),
        1 => Just(Corruption::ChainId),
        1 => Just(Corruption::Signature),
        1 => Just(Corruption::Nonce),
    ];
    (0..16usize, kind)
}

/// The account `offset + 1` places after `sender` (never `sender` itself).
fn other(sender: usize, offset: usize) -> usize {
    (sender + 1 + offset) % (ACCOUNTS + 1)
}

/// A created object as the generator recorded it: id, employer, worker, arbiter.
#[derive(Debug, Clone, Copy)]
struct Created<Id> {
    id: Id,
    employer: usize,
    worker: Option<usize>,
    arbiter: Option<usize>,
}

/// Turns ops into signed txs, tracking nonces and the ids of created objects.
struct Materializer {
    nonces: Vec<u64>,
    tasks: Vec<Created<TaskId>>,
    streams: Vec<Created<StreamId>>,
}

impl Materializer {
    /// The `i`-th most recent object, or an unknown id (`i` wraps at `len + 1`).
    fn pick<T: Copy>(list: &[T], i: usize, unknown: T) -> T {
        let j = i % (list.len() + 1);
        list.len()
            .checked_sub(j + 1)
            .and_then(|k| list.get(k))
            .copied()
            .unwrap_or(unknown)
    }

    fn tx(&mut self, op: &Op, now: u64, corruption: Corruption) -> SignedTx {
        let ks = keys();
        let id = |i: usize| ks[i].1;
        let unknown_task = Created {
            id: TaskId([0xee; 32]),
            employer: op.sender,
            worker: None,
            arbiter: None,
        };
        let unknown_stream = Created {
            id: StreamId([0xee; 32]),
            employer: op.sender,
            worker: None,
            arbiter: None,
        };
        let target = match &op.call {
            OpCall::StreamWithdraw(i)
            | OpCall::StreamTopUp(i, _)
            | OpCall::StreamPause(i)
            | OpCall::StreamResume(i)
            | OpCall::StreamCancel(i) => {
                let c = Self::pick(&self.streams, *i, unknown_stream);
                Created {
                    id: (),
                    employer: c.employer,
                    worker: c.worker,
                    arbiter: c.arbiter,
                }
            }
            OpCall::TaskAccept(i)
            | OpCall::TaskSubmit(i, _)
            | OpCall::TaskApprove(i, _)
            | OpCall::TaskClaim(i, _)
            | OpCall::TaskDispute(i)
            | OpCall::TaskResolve(i, _)
            | OpCall::TaskCancel(i) => {
                let c = Self::pick(&self.tasks, *i, unknown_task);
                Created {
                    id: (),
                    employer: c.employer,
                    worker: c.worker,
                    arbiter: c.arbiter,
                }
            }
            _ => Created {
                id: (),
                employer: op.sender,
                worker: None,
                arbiter: None,
            },
        };
        let sender = match op.role {
            Role::Employer => target.employer,
            Role::Worker => target.worker.unwrap_or(op.sender),
            Role::Arbiter => target.arbiter.unwrap_or(op.sender),
            Role::Any => op.sender,
        };
        let from = id(sender);
        let nonce = self.nonces[sender];
        let t = |i| Self::pick(&self.tasks, i, unknown_task).id;
        let s = |i| Self::pick(&self.streams, i, unknown_stream).id;
        let call = match &op.call {
            OpCall::Transfer { to, amount } => Call::Transfer {
                to: id(*to),
                amount: *amount,
            },
            OpCall::Withdraw(script, amount) => Call::Withdraw {
                // P2WPKH, P2TR, a truncated P2WPKH, an OP_RETURN.
                btc_script: match script {
                    0 => [vec![0x00, 0x14], vec![7; 20]].concat(),
                    1 => [vec![0x51, 0x20], vec![8; 32]].concat(),
                    2 => vec![0x00, 0x14, 7],
                    _ => vec![0x6a, 0x00],
                },
                amount: *amount,
            },
            OpCall::Payroll { payments } => Call::Payroll {
                payments: payments
                    .iter()
                    .map(|(to, a)| Payment {
                        to: id(*to),
                        amount: *a,
                    })
                    .collect(),
            },
            OpCall::StreamOpen {
                worker,
                rate,
                start_offset,
                duration,
                cancelable,
            } => Call::StreamOpen {
                worker: id(*worker),
                rate_per_sec: *rate,
                start: (now + start_offset).saturating_sub(50),
                duration_secs: *duration,
                cancelable: *cancelable,
            },
            OpCall::StreamWithdraw(i) => Call::StreamWithdraw { id: s(*i) },
            OpCall::StreamTopUp(i, x) => Call::StreamTopUp {
                id: s(*i),
                extra_secs: *x,
            },
            OpCall::StreamPause(i) => Call::StreamPause { id: s(*i) },
            OpCall::StreamResume(i) => Call::StreamResume { id: s(*i) },
            OpCall::StreamCancel(i) => Call::StreamCancel { id: s(*i) },
            OpCall::TaskCreate {
                worker,
                arbiter,
                ms,
                ttl,
                review,
            } => Call::TaskCreate {
                worker: worker.map(|o| id(other(sender, o))),
                arbiter: arbiter.map(|o| id(other(sender, o))),
                spec_hash: [1; 32],
                milestones: ms.clone(),
                deadline: now + ttl,
                review_secs: *review,
            },
            OpCall::TaskAccept(i) => Call::TaskAccept { id: t(*i) },
            OpCall::TaskSubmit(i, m) => Call::TaskSubmit {
                id: t(*i),
                milestone: *m,
                deliverable_hash: [2; 32],
            },
            OpCall::TaskApprove(i, m) => Call::TaskApprove {
                id: t(*i),
                milestone: *m,
            },
            OpCall::TaskClaim(i, m) => Call::TaskClaim {
                id: t(*i),
                milestone: *m,
            },
            OpCall::TaskDispute(i) => Call::TaskDispute {
                id: t(*i),
                reason_hash: [3; 32],
            },
            OpCall::TaskResolve(i, b) => Call::TaskResolve {
                id: t(*i),
                worker_share_bps: *b,
            },
            OpCall::TaskCancel(i) => Call::TaskCancel { id: t(*i) },
        };
        match &op.call {
            OpCall::StreamOpen { worker, .. } => self.streams.push(Created {
                id: stream_id(&from, nonce),
                employer: sender,
                worker: Some(*worker),
                arbiter: None,
            }),
            OpCall::TaskCreate {
                worker, arbiter, ..
            } => self.tasks.push(Created {
                id: task_id(&from, nonce),
                employer: sender,
                worker: worker.map(|o| other(sender, o)),
                arbiter: arbiter.map(|o| other(sender, o)),
            }),
            _ => {}
        }
        let mut tx = Tx {
            chain_id: CHAIN,
            from,
            nonce,
            fee: op.fee,
            call,
        };
        match corruption {
            Corruption::ChainId => tx.chain_id += 1,
            Corruption::Nonce => tx.nonce += 1,
            _ => {}
        }
        let mut stx = tx.sign(&ks[sender].0).unwrap();
        if let Corruption::Signature = corruption {
            stx.sig[5] ^= 0x40;
        }
        self.nonces[sender] += 1;
        stx
    }
}

fn outcome_eq(
    a: &Result<stint_contracts::BatchOutcome, ExecError>,
    b: &Result<stint_contracts::BatchOutcome, ExecError>,
) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(x), Err(y)) => format!("{x:?}") == format!("{y:?}"),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn value_is_conserved_and_execution_is_deterministic(
        batches in prop::collection::vec(
            (prop::collection::vec(op(), 1..16), 0..120u64, 1..6usize, 0..=ACCOUNTS, corruption()),
            1..8,
        )
    ) {
        let mut state = genesis();
        let initial = total_value(&state).unwrap();
        let mut now = 1_000_000u64;
        let mut m = Materializer { nonces: vec![0; ACCOUNTS + 1], tasks: vec![], streams: vec![] };
        for (ops, advance, k, fee_recipient, (bad_index, bad_kind)) in batches {
            now += advance;
            // Nonces restart from state: a rejected batch leaves them unchanged.
            for (i, (_, id)) in keys().iter().enumerate() {
                m.nonces[i] = read_account(&state, id).unwrap().nonce;
            }
            let txs: Vec<SignedTx> = ops
                .iter()
                .enumerate()
                .map(|(i, op)| m.tx(op, now, if i == bad_index { bad_kind } else { Corruption::None }))
                .collect();
            let ctx = BlockContext { chain_id: CHAIN, timestamp: now, fee_recipient: keys()[fee_recipient].1 };

            let first = execute_batch(&state, &ctx, &txs, k);
            let again = execute_batch(&state, &ctx, &txs, k);
            let parallel = execute_batch_parallel(&state, &ctx, &txs, k);
            prop_assert!(outcome_eq(&first, &again), "re-execution differs");
            prop_assert!(outcome_eq(&first, &parallel), "parallel differs: {:?} vs {:?}", first, parallel);

            match first {
                Ok(outcome) => {
                    prop_assert_eq!(outcome.receipts().count(), txs.len());
                    let mut fees = 0u64;
                    for s in &outcome.segments {
                        apply_changes(&mut state, &s.changes);
                        prop_assert_eq!(total_value(&state).unwrap(), initial);
                        fees += s.fees;
                    }
                    prop_assert_eq!(fees, txs.iter().map(|t| t.tx.fee).sum::<u64>());
                }
                Err(ExecError::Invalid { index, .. }) => {
                    prop_assert!(index < txs.len());
                    let corrupt = index == bad_index && !matches!(bad_kind, Corruption::None);
                    // Otherwise the sender cannot pay the fee: never the case for a zero fee.
                    prop_assert!(corrupt || txs[index].tx.fee > 0);
                }
                Err(e) => prop_assert!(false, "unexpected error {e:?}"),
            }
        }
    }
}
