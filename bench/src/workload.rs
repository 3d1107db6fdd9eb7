//! Deterministic load: funded accounts, a genesis that funds them, and signed tx streams.
//!
//! Everything is derived from counters (no randomness), so two runs measure the same txs and the
//! state roots of a run can be compared across runs. Two workloads exist:
//!
//! - [`transfers`]: simple transfers; sender `i mod A` sends its `⌊i / A⌋`-th tx to a
//!   pseudo-random other account.
//! - [`mix`]: the contracts a wage rollup carries: transfers, payrolls of
//!   [`MIX_PAYROLL_PAYMENTS`] payments, task flows (create → accept → submit → approve) and
//!   stream flows (open → withdraw → top up → cancel). The steps of one flow are
//!   [`FLOW_STEP_DISTANCE`] txs apart, so they land in different segments the way real
//!   interactions do (each step is a separate user action).
//!
//! Every generated tx is valid and every call succeeds (the smoke test checks it), so the
//! benchmarks measure the success path of the state transition function.

use std::collections::VecDeque;
use std::str::FromStr;

use anyhow::Context;
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::BlockHash;
use k256::schnorr::SigningKey;
use rayon::prelude::*;
use stint_contracts::{stream_id, task_id, AccountId, BlockContext, Call, Payment, SignedTx, Tx};
use stint_protocol::{Genesis, GenesisAlloc};
use stint_state::sha256;

/// Chain id of the benchmark chain.
pub const CHAIN_ID: u64 = 7_007;
/// Timestamp every benchmark batch executes at (Unix seconds).
pub const TIMESTAMP: u64 = 1_750_000_000;
/// Balance of every funded account at genesis.
pub const INITIAL_BALANCE: u64 = 1_000_000_000_000;
/// Fee of every generated tx.
pub const FEE: u64 = 10;
/// Txs per segment (checkpoint interval `K`), the protocol default.
pub const SEGMENT_LEN: usize = stint_protocol::DEFAULT_CHECKPOINT_INTERVAL as usize;
/// Payments in one payroll of the [`mix`] workload.
pub const MIX_PAYROLL_PAYMENTS: usize = 16;
/// Distance, in txs, between two steps of one task or stream flow in the [`mix`] workload.
pub const FLOW_STEP_DISTANCE: usize = 4 * SEGMENT_LEN;
/// The devnet anchor key (the secp256k1 generator's x coordinate); only its bytes matter here.
const ANCHOR_KEY: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

/// Funded accounts and their signing keys.
#[derive(Clone)]
pub struct Accounts {
    keys: Vec<SigningKey>,
    ids: Vec<AccountId>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are never printed.
        f.debug_struct("Accounts")
            .field("count", &self.ids.len())
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// `count` accounts with keys derived from their index (in parallel on the rayon pool).
    pub fn generate(count: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(count >= 2, "need at least two accounts, got {count}");
        let keys = (0..count)
            .into_par_iter()
            .map(|i| {
                let seed =
                    sha256(&[b"stint-bench/key/".as_slice(), &(i as u64).to_le_bytes()].concat());
                SigningKey::from_bytes(&seed).with_context(|| format!("account key {i}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ids = keys.par_iter().map(AccountId::from_signing_key).collect();
        Ok(Self { keys, ids })
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no accounts (never true for generated ones).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The account ids.
    pub fn ids(&self) -> &[AccountId] {
        &self.ids
    }

    fn id(&self, index: usize) -> AccountId {
        self.ids[index % self.ids.len()]
    }

    /// A genesis funding every account with [`INITIAL_BALANCE`], with protocol defaults otherwise.
    pub fn genesis(&self) -> anyhow::Result<Genesis> {
        let anchor_key = XOnlyPublicKey::from_str(ANCHOR_KEY).context("anchor key")?;
        let alloc = self
            .ids
            .iter()
            .map(|account| GenesisAlloc {
                account: *account,
                balance: INITIAL_BALANCE,
            })
            .collect();
        let genesis = Genesis::new(
            CHAIN_ID,
            anchor_key,
            fee_recipient(),
            alloc,
            0,
            BlockHash::all_zeros(),
        );
        genesis.validate().context("benchmark genesis")?;
        Ok(genesis)
    }

    /// Sign `txs` (each with its sender's key) in parallel on the rayon pool.
    fn sign(&self, txs: Vec<(usize, Tx)>) -> anyhow::Result<Vec<SignedTx>> {
        txs.into_par_iter()
            .map(|(signer, tx)| {
                tx.sign(&self.keys[signer])
                    .map_err(|_| anyhow::anyhow!("signing failed for account {signer}"))
            })
            .collect()
    }
}

/// The account that collects fees (not one of the generated accounts).
pub fn fee_recipient() -> AccountId {
    AccountId([0xfe; 32])
}

/// The block context of every benchmark batch.
pub fn block_context() -> BlockContext {
    BlockContext {
        chain_id: CHAIN_ID,
        timestamp: TIMESTAMP,
        fee_recipient: fee_recipient(),
    }
}

/// SplitMix64: a cheap, well-mixed function of a counter.
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A pseudo-random account other than `not`, picked by `seed`.
fn other_than(accounts: usize, not: usize, seed: u64) -> usize {
    let span = (accounts - 1) as u64;
    (not + 1 + (mix64(seed) % span) as usize) % accounts
}

/// `count` signed transfers among `accounts` (see the module docs).
pub fn transfers(accounts: &Accounts, count: usize) -> anyhow::Result<Vec<SignedTx>> {
    let n = accounts.len();
    let txs = (0..count)
        .map(|i| {
            let from = i % n;
            let to = other_than(n, from, i as u64);
            let tx = Tx {
                chain_id: CHAIN_ID,
                from: accounts.id(from),
                nonce: (i / n) as u64,
                fee: FEE,
                call: Call::Transfer {
                    to: accounts.id(to),
                    amount: 1 + mix64(!(i as u64)) % 10_000,
                },
            };
            (from, tx)
        })
        .collect();
    accounts.sign(txs)
}

/// A step of a flow, emitted once its slot comes.
struct FollowUp {
    due: usize,
    signer: usize,
    call: Call,
}

/// Builds the [`mix`] workload: hands out senders round robin and tracks nonces.
struct MixBuilder<'a> {
    accounts: &'a Accounts,
    nonces: Vec<u64>,
    next_sender: usize,
    txs: Vec<(usize, Tx)>,
    pending: VecDeque<FollowUp>,
}

impl MixBuilder<'_> {
    fn sender(&mut self) -> usize {
        let s = self.next_sender;
        self.next_sender = (s + 1) % self.accounts.len();
        s
    }

    /// Append a tx from `signer` and return its nonce.
    fn push(&mut self, signer: usize, call: Call) -> u64 {
        let nonce = self.nonces[signer];
        self.nonces[signer] += 1;
        self.txs.push((
            signer,
            Tx {
                chain_id: CHAIN_ID,
                from: self.accounts.id(signer),
                nonce,
                fee: FEE,
                call,
            },
        ));
        nonce
    }

    fn schedule(&mut self, after: usize, signer: usize, call: Call) {
        let due = self.txs.len() + after;
        self.pending.push_back(FollowUp { due, signer, call });
    }
}

/// Relative frequency of each new operation in a generated contract workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixWeights {
    /// Transfers.
    pub transfer: u32,
    /// Payrolls of [`MIX_PAYROLL_PAYMENTS`] payments.
    pub payroll: u32,
    /// Task flows (create, then accept, submit and approve later).
    pub task: u32,
    /// Stream flows (open, then withdraw, top up and cancel later).
    pub stream: u32,
}

impl MixWeights {
    /// The default mix: per 10 new operations, 5 transfers, 1 payroll, 2 task flows, 2 streams.
    pub const DEFAULT: Self = Self {
        transfer: 5,
        payroll: 1,
        task: 2,
        stream: 2,
    };
    /// Payrolls only.
    pub const PAYROLL: Self = Self {
        transfer: 0,
        payroll: 1,
        task: 0,
        stream: 0,
    };
    /// Task flows only.
    pub const TASK_FLOW: Self = Self {
        transfer: 0,
        payroll: 0,
        task: 1,
        stream: 0,
    };

    fn total(&self) -> u64 {
        u64::from(self.transfer + self.payroll + self.task + self.stream)
    }
}

/// Which operation the `op`-th new operation is under `w` (0 transfer, 1 payroll, 2 task,
/// 3 stream).
fn pick(w: &MixWeights, op: u64) -> u8 {
    let mut r = op % w.total().max(1);
    for (kind, weight) in [w.transfer, w.payroll, w.task, w.stream]
        .into_iter()
        .enumerate()
    {
        if r < u64::from(weight) {
            return kind as u8;
        }
        r -= u64::from(weight);
    }
    0
}

/// `count` signed txs of the default contract mix ([`MixWeights::DEFAULT`], see the module
/// docs), including the later steps of the flows.
pub fn mix(accounts: &Accounts, count: usize) -> anyhow::Result<Vec<SignedTx>> {
    mix_with(accounts, count, &MixWeights::DEFAULT)
}

/// `count` signed txs with new operations drawn by `weights`, plus the later flow steps.
pub fn mix_with(
    accounts: &Accounts,
    count: usize,
    weights: &MixWeights,
) -> anyhow::Result<Vec<SignedTx>> {
    anyhow::ensure!(weights.total() > 0, "all mix weights are zero");
    anyhow::ensure!(
        accounts.len() > MIX_PAYROLL_PAYMENTS + 1,
        "the mix needs more than {} accounts",
        MIX_PAYROLL_PAYMENTS + 1
    );
    let n = accounts.len();
    let mut b = MixBuilder {
        accounts,
        nonces: vec![0; n],
        next_sender: 0,
        txs: Vec::with_capacity(count),
        pending: VecDeque::new(),
    };
    let d = FLOW_STEP_DISTANCE;
    let mut op = 0u64;
    while b.txs.len() < count {
        let slot = b.txs.len();
        if b.pending.front().is_some_and(|f| f.due <= slot) {
            if let Some(f) = b.pending.pop_front() {
                b.push(f.signer, f.call);
            }
            continue;
        }
        let seed = op.wrapping_mul(0x1000).wrapping_add(1);
        let kind = pick(weights, op);
        op += 1;
        let from = b.sender();
        match kind {
            0 => {
                let to = accounts.id(other_than(n, from, seed));
                b.push(
                    from,
                    Call::Transfer {
                        to,
                        amount: 1 + mix64(seed ^ 1) % 10_000,
                    },
                );
            }
            1 => {
                // Consecutive accounts after the sender, from a pseudo-random offset (no
                // wrap-around onto the sender since `n > MIX_PAYROLL_PAYMENTS + 1`).
                let offset = (mix64(seed) % (n - MIX_PAYROLL_PAYMENTS) as u64) as usize;
                let payments = (0..MIX_PAYROLL_PAYMENTS)
                    .map(|j| Payment {
                        to: accounts.id(from + 1 + offset + j),
                        amount: 100 + j as u64,
                    })
                    .collect();
                b.push(from, Call::Payroll { payments });
            }
            2 => {
                let worker = other_than(n, from, seed);
                let nonce = b.push(
                    from,
                    Call::TaskCreate {
                        worker: Some(accounts.id(worker)),
                        arbiter: None,
                        spec_hash: sha256(&seed.to_le_bytes()),
                        milestones: vec![500, 700],
                        deadline: TIMESTAMP + 86_400,
                        review_secs: 3_600,
                    },
                );
                let id = task_id(&accounts.id(from), nonce);
                b.schedule(d, worker, Call::TaskAccept { id });
                b.schedule(
                    2 * d,
                    worker,
                    Call::TaskSubmit {
                        id,
                        milestone: 0,
                        deliverable_hash: sha256(&id.0),
                    },
                );
                b.schedule(3 * d, from, Call::TaskApprove { id, milestone: 0 });
            }
            _ => {
                let worker = other_than(n, from, seed);
                let nonce = b.push(
                    from,
                    Call::StreamOpen {
                        worker: accounts.id(worker),
                        rate_per_sec: 2,
                        start: TIMESTAMP - 3_600,
                        duration_secs: 7_200,
                        cancelable: true,
                    },
                );
                let id = stream_id(&accounts.id(from), nonce);
                b.schedule(d, worker, Call::StreamWithdraw { id });
                b.schedule(
                    2 * d,
                    from,
                    Call::StreamTopUp {
                        id,
                        extra_secs: 600,
                    },
                );
                b.schedule(3 * d, from, Call::StreamCancel { id });
            }
        }
    }
    // Flows cut off by `count` simply stay open.
    accounts.sign(b.txs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_than_never_picks_the_excluded_account() {
        for seed in 0..1_000 {
            for not in 0..5 {
                let pick = other_than(5, not, seed);
                assert!(pick < 5 && pick != not);
            }
        }
    }

    #[test]
    fn workloads_are_deterministic() {
        let accounts = Accounts::generate(40).unwrap();
        assert_eq!(
            transfers(&accounts, 50).unwrap(),
            transfers(&accounts, 50).unwrap()
        );
        assert_eq!(mix(&accounts, 200).unwrap(), mix(&accounts, 200).unwrap());
    }
}

/// Batches recorded from a tx stream, and a node store holding every state they pass through.
#[derive(Debug)]
pub struct RecordedBatches {
    /// The batches, each extending the previous (the first extends the genesis).
    pub batches: Vec<stint_protocol::Batch>,
    /// Nodes of the genesis state and of every checkpoint state of the batches.
    pub store: stint_state::MemoryNodeStore,
}

/// Seal `candidates` into full batches with the honest builder, one after the other, as a
/// sequencer would; fails if the builder rejects a tx (the generated streams are all valid).
pub fn record_batches(
    workload: &str,
    genesis: &Genesis,
    candidates: Vec<SignedTx>,
) -> anyhow::Result<RecordedBatches> {
    use stint_protocol::{BatchBuilder, BuildParams, L1Origin, ParentFacts};
    let update = genesis.state_update().context("genesis state")?;
    let mut parent = ParentFacts::genesis(genesis, update.root);
    let mut store = stint_state::MemoryNodeStore::new();
    store.write_owned(update);
    let builder = BatchBuilder::new(genesis);
    let total = candidates.len();
    let mut pending = candidates;
    let mut batches = Vec::new();
    let mut included = 0;
    while !pending.is_empty() {
        let params = BuildParams {
            parent,
            timestamp: TIMESTAMP,
            l1_origin: L1Origin {
                height: genesis.l1_start_height,
                hash: [0; 32],
            },
        };
        let sealed = builder.build(&store, &params, pending)?;
        anyhow::ensure!(
            sealed.rejected.is_empty(),
            "{workload}: the builder rejected {} txs (first: {:?})",
            sealed.rejected.len(),
            sealed.rejected.first()
        );
        anyhow::ensure!(
            !sealed.batch.txs().is_empty(),
            "{workload}: a batch took no tx"
        );
        for update in sealed.updates {
            store.write_owned(update);
        }
        included += sealed.batch.txs().len();
        parent = ParentFacts::of(sealed.batch.header());
        pending = sealed.leftover;
        batches.push(sealed.batch);
    }
    anyhow::ensure!(
        included == total,
        "{workload}: {included} of {total} txs included"
    );
    Ok(RecordedBatches { batches, store })
}
