//! Transactions: the [`Call`]s of protocol v1, their canonical encoding, txids, and BIP340
//! signing and verification.

use borsh::{BorshDeserialize, BorshSerialize};
use k256::schnorr::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use stint_state::{tagged_hash, Hash};

use crate::error::{DecodeError, SignError};
use crate::types::{hex_bytes, AccountId, StreamId, TaskId, Txid, WithdrawalId};

/// Tag of txids.
pub const TX_TAG: &str = "stint/tx";
/// Tag of the witness txid ([`SignedTx::wtxid`]): the hash of the whole signed tx.
pub const WTX_TAG: &str = "stint/wtx";
/// Tag of task ids.
pub const TASK_TAG: &str = "stint/task";
/// Tag of stream ids.
pub const STREAM_TAG: &str = "stint/stream";
/// Tag of withdrawal ids.
pub const WITHDRAWAL_TAG: &str = "stint/withdrawal";

/// Most payments one [`Call::Payroll`] may carry. Protocol v2 lowered it from 1,024: a fraud
/// proof must carry the pre-state of every account a tx pays, and the proof against a segment
/// holding one maximal payroll must still fit one challenge (see `stint-protocol`'s segment
/// budget). Larger payrolls are several txs (`stint payroll` refuses a longer CSV and says so).
pub const MAX_PAYROLL_PAYMENTS: usize = 32;
/// Most milestones one [`Call::TaskCreate`] may carry.
pub const MAX_MILESTONES: usize = 64;
/// Largest encoding of a [`Tx`]: header (56) + call tag (1) + the largest call, a full payroll
/// (4-byte length + [`MAX_PAYROLL_PAYMENTS`] × 40 bytes).
pub const MAX_TX_SIZE: usize = 56 + 1 + 4 + MAX_PAYROLL_PAYMENTS * 40;
/// Largest encoding of a [`SignedTx`]: [`MAX_TX_SIZE`] plus the 64-byte signature.
pub const MAX_SIGNED_TX_SIZE: usize = MAX_TX_SIZE + 64;
/// Denominator of basis points: a `worker_share_bps` of this gives the worker everything.
pub const BPS_DENOMINATOR: u16 = 10_000;

/// One payment of a [`Call::Payroll`]. Encodes exactly as the pair `(to, amount)`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Payment {
    /// Recipient.
    pub to: AccountId,
    /// Amount in units.
    pub amount: u64,
}

/// What a transaction does. The variant order is the borsh tag and is consensus.
///
/// JSON form: an object with `"type"` (camelCase variant name) and camelCase fields.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Call {
    /// Move `amount` from the sender to `to`.
    Transfer {
        /// Recipient.
        to: AccountId,
        /// Amount (must be non-zero).
        amount: u64,
    },
    /// Pay up to [`MAX_PAYROLL_PAYMENTS`] recipients at once (all or nothing).
    Payroll {
        /// The payments, each non-zero.
        payments: Vec<Payment>,
    },
    /// Open a wage stream from the sender to `worker`, escrowing `rate_per_sec × duration_secs`.
    StreamOpen {
        /// Who is paid.
        worker: AccountId,
        /// Units per second of active time.
        rate_per_sec: u64,
        /// Unix time (seconds) from which wages accrue.
        start: u64,
        /// Seconds of wages funded.
        duration_secs: u64,
        /// Whether the employer may cancel.
        cancelable: bool,
    },
    /// Worker takes what has accrued and not yet been withdrawn.
    StreamWithdraw {
        /// The stream.
        id: StreamId,
    },
    /// Anyone funds `extra_secs` more seconds (pays `rate × extra_secs`).
    StreamTopUp {
        /// The stream.
        id: StreamId,
        /// Seconds added.
        extra_secs: u64,
    },
    /// Employer stops accrual; accrued wages stay owed.
    StreamPause {
        /// The stream.
        id: StreamId,
    },
    /// Employer restarts accrual.
    StreamResume {
        /// The stream.
        id: StreamId,
    },
    /// Employer ends a cancelable stream: accrued goes to the worker, the rest back.
    StreamCancel {
        /// The stream.
        id: StreamId,
    },
    /// Create a task escrow of the milestone sum.
    TaskCreate {
        /// The worker, or `None` for an open task anyone may accept.
        worker: Option<AccountId>,
        /// Who resolves disputes; without one, the task cannot be disputed.
        arbiter: Option<AccountId>,
        /// Hash of the task's specification.
        #[serde(with = "hex_bytes")]
        spec_hash: Hash,
        /// Milestone amounts, 1..=[`MAX_MILESTONES`], each non-zero.
        milestones: Vec<u64>,
        /// Unix time after which no acceptance or submission is possible.
        deadline: u64,
        /// Seconds the employer has to review a submission before the worker may claim it.
        review_secs: u64,
    },
    /// Worker takes on the task.
    TaskAccept {
        /// The task.
        id: TaskId,
    },
    /// Worker submits a milestone.
    TaskSubmit {
        /// The task.
        id: TaskId,
        /// Milestone index.
        milestone: u32,
        /// Hash of the deliverable.
        #[serde(with = "hex_bytes")]
        deliverable_hash: Hash,
    },
    /// Employer approves a submitted milestone, paying it.
    TaskApprove {
        /// The task.
        id: TaskId,
        /// Milestone index.
        milestone: u32,
    },
    /// Worker takes a submitted milestone once its review period passed without dispute.
    TaskClaim {
        /// The task.
        id: TaskId,
        /// Milestone index.
        milestone: u32,
    },
    /// Employer or worker freezes the task for the arbiter.
    TaskDispute {
        /// The task.
        id: TaskId,
        /// Hash of the stated reason.
        #[serde(with = "hex_bytes")]
        reason_hash: Hash,
    },
    /// Arbiter splits the escrow left: `worker_share_bps / 10,000` to the worker.
    TaskResolve {
        /// The task.
        id: TaskId,
        /// Worker's share in basis points (≤ 10,000).
        worker_share_bps: u16,
    },
    /// Employer takes back what no worker has started (open task) or submitted by the deadline.
    TaskCancel {
        /// The task.
        id: TaskId,
    },
    /// Burn `amount` from the sender, owed as bitcoin to `btc_script` once the batch is final
    /// (protocol v3). The script must be a standard one and the amount at least its dust limit
    /// ([`standard_output_dust`](crate::standard_output_dust)).
    Withdraw {
        /// The Bitcoin output script to pay, hex in JSON (at most
        /// [`MAX_BTC_SCRIPT_LEN`](crate::MAX_BTC_SCRIPT_LEN) bytes).
        #[serde(with = "crate::types::hex_vec")]
        btc_script: Vec<u8>,
        /// Units (sats).
        amount: u64,
    },
}

/// Most state keys of each kind one tx may read or write, whatever the state: a function of
/// the call alone (see [`Call::key_bound`]). It bounds the witness a fraud proof needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyBound {
    /// Account records (the sender's included).
    pub accounts: u64,
    /// Task records.
    pub tasks: u64,
    /// Stream records.
    pub streams: u64,
    /// Withdrawal records.
    pub withdrawals: u64,
}

impl KeyBound {
    /// The sum of two bounds (saturating: a bound can only grow).
    pub fn saturating_add(self, other: Self) -> Self {
        Self {
            accounts: self.accounts.saturating_add(other.accounts),
            tasks: self.tasks.saturating_add(other.tasks),
            streams: self.streams.saturating_add(other.streams),
            withdrawals: self.withdrawals.saturating_add(other.withdrawals),
        }
    }
}

impl Call {
    /// The most keys of each kind a tx with this call reads or writes, on any path (a failing
    /// call still reads what it checked): the sender's account, the accounts the call may pay
    /// or charge, and the task or stream it names or creates. Fees are credited at the end of a
    /// segment, so the fee recipient is counted once per segment, not here.
    ///
    /// Counted conservatively from the call's variant (a task call may touch the sender, the
    /// employer, the worker and the arbiter; a stream call the sender, the employer and the
    /// worker), so it holds for every pre-state.
    pub fn key_bound(&self) -> KeyBound {
        let (accounts, tasks, streams) = match self {
            Call::Transfer { .. } => (2, 0, 0),
            Call::Payroll { payments } => ((payments.len() as u64).saturating_add(1), 0, 0),
            Call::StreamOpen { .. } => (2, 0, 1),
            Call::StreamWithdraw { .. }
            | Call::StreamTopUp { .. }
            | Call::StreamPause { .. }
            | Call::StreamResume { .. }
            | Call::StreamCancel { .. } => (3, 0, 1),
            Call::TaskCreate { .. } => (3, 1, 0),
            Call::TaskAccept { .. }
            | Call::TaskSubmit { .. }
            | Call::TaskApprove { .. }
            | Call::TaskClaim { .. }
            | Call::TaskDispute { .. }
            | Call::TaskResolve { .. }
            | Call::TaskCancel { .. } => (4, 1, 0),
            Call::Withdraw { .. } => {
                return KeyBound {
                    accounts: 1,
                    withdrawals: 1,
                    ..KeyBound::default()
                }
            }
        };
        KeyBound {
            accounts,
            tasks,
            streams,
            withdrawals: 0,
        }
    }
}

impl Call {
    /// Check the list bounds the decoder enforces.
    pub fn check_bounds(&self) -> Result<(), DecodeError> {
        match self {
            Call::Payroll { payments } if payments.len() > MAX_PAYROLL_PAYMENTS => {
                Err(DecodeError::TooMany {
                    what: "payroll payments",
                    len: payments.len(),
                    max: MAX_PAYROLL_PAYMENTS,
                })
            }
            Call::Withdraw { btc_script, .. } if btc_script.len() > crate::MAX_BTC_SCRIPT_LEN => {
                Err(DecodeError::TooMany {
                    what: "btc_script bytes",
                    len: btc_script.len(),
                    max: crate::MAX_BTC_SCRIPT_LEN,
                })
            }
            Call::TaskCreate { milestones, .. } if milestones.len() > MAX_MILESTONES => {
                Err(DecodeError::TooMany {
                    what: "milestones",
                    len: milestones.len(),
                    max: MAX_MILESTONES,
                })
            }
            _ => Ok(()),
        }
    }

    /// Every account the call names besides its sender (recipients, workers, arbiters), in
    /// the call's order.
    pub fn named_accounts(&self) -> Vec<AccountId> {
        match self {
            Call::Transfer { to, .. } => vec![*to],
            Call::Payroll { payments } => payments.iter().map(|p| p.to).collect(),
            Call::StreamOpen { worker, .. } => vec![*worker],
            Call::TaskCreate {
                worker, arbiter, ..
            } => worker.iter().chain(arbiter.iter()).copied().collect(),
            _ => Vec::new(),
        }
    }

    /// The first account the call names that is not a public key ([`AccountId::is_key`]),
    /// with its position among [`Call::named_accounts`]. Not a consensus rule (a signed tx
    /// paying such an account executes, and burns what it pays); the sequencer and the CLI
    /// refuse such txs before they are signed or admitted.
    pub fn first_non_key(&self) -> Option<(usize, AccountId)> {
        self.named_accounts()
            .into_iter()
            .enumerate()
            .find(|(_, a)| !a.is_key())
    }

    /// Short camelCase name of the call (as in JSON `"type"`).
    pub fn name(&self) -> &'static str {
        match self {
            Call::Transfer { .. } => "transfer",
            Call::Payroll { .. } => "payroll",
            Call::StreamOpen { .. } => "streamOpen",
            Call::StreamWithdraw { .. } => "streamWithdraw",
            Call::StreamTopUp { .. } => "streamTopUp",
            Call::StreamPause { .. } => "streamPause",
            Call::StreamResume { .. } => "streamResume",
            Call::StreamCancel { .. } => "streamCancel",
            Call::TaskCreate { .. } => "taskCreate",
            Call::TaskAccept { .. } => "taskAccept",
            Call::TaskSubmit { .. } => "taskSubmit",
            Call::TaskApprove { .. } => "taskApprove",
            Call::TaskClaim { .. } => "taskClaim",
            Call::TaskDispute { .. } => "taskDispute",
            Call::TaskResolve { .. } => "taskResolve",
            Call::TaskCancel { .. } => "taskCancel",
            Call::Withdraw { .. } => "withdraw",
        }
    }
}

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tx {
    /// The chain this tx is for (replay protection across chains).
    pub chain_id: u64,
    /// The sender, who signs and pays the fee.
    pub from: AccountId,
    /// The sender's next nonce.
    pub nonce: u64,
    /// Fee in units, charged even if the call fails.
    pub fee: u64,
    /// What the tx does.
    pub call: Call,
}

/// A transaction with its BIP340 signature over the txid.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedTx {
    /// The transaction.
    pub tx: Tx,
    /// BIP340 Schnorr signature of the txid by `tx.from`.
    #[serde(with = "hex_bytes")]
    pub sig: [u8; 64],
}

/// Borsh-encode into a fresh vector. Writing to a `Vec` fails only for collections longer than
/// `u32::MAX`, which no bounded type here can hold; such input would yield an empty vector.
pub(crate) fn to_borsh<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    if value.serialize(&mut out).is_err() {
        out.clear();
    }
    out
}

/// Strictly decode a borsh value: bounded size, no trailing bytes, and canonical (re-encoding
/// gives back the same bytes).
pub(crate) fn strict_decode<T: BorshSerialize + BorshDeserialize>(
    bytes: &[u8],
    max: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            max,
        });
    }
    let value: T = borsh::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if to_borsh(&value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

impl Tx {
    /// Canonical (borsh) encoding.
    pub fn encode(&self) -> Vec<u8> {
        to_borsh(self)
    }

    /// Strictly decode a tx (see [`SignedTx::decode`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let tx: Tx = strict_decode(bytes, MAX_TX_SIZE)?;
        tx.call.check_bounds()?;
        Ok(tx)
    }

    /// `tagged_hash("stint/tx", encode(tx))`.
    pub fn txid(&self) -> Txid {
        Txid(tagged_hash(TX_TAG, &[&self.encode()]))
    }

    /// Sign with deterministic BIP340 nonces (all-zero auxiliary randomness).
    ///
    /// Does not check that `key` belongs to `self.from`; a wrong key yields a tx that is invalid.
    pub fn sign(self, key: &SigningKey) -> Result<SignedTx, SignError> {
        self.sign_with_aux_rand(key, &[0u8; 32])
    }

    /// Sign with caller-supplied BIP340 auxiliary randomness.
    pub fn sign_with_aux_rand(
        self,
        key: &SigningKey,
        aux_rand: &[u8; 32],
    ) -> Result<SignedTx, SignError> {
        let txid = self.txid();
        let sig = key.sign_raw(&txid.0, aux_rand).map_err(|_| SignError)?;
        Ok(SignedTx {
            tx: self,
            sig: sig.to_bytes(),
        })
    }

    /// The id of the task a [`Call::TaskCreate`] in this tx creates.
    pub fn task_id(&self) -> TaskId {
        task_id(&self.from, self.nonce)
    }

    /// The id of the stream a [`Call::StreamOpen`] in this tx opens.
    pub fn stream_id(&self) -> StreamId {
        stream_id(&self.from, self.nonce)
    }

    /// The id of the withdrawal a [`Call::Withdraw`] in this tx makes.
    pub fn withdrawal_id(&self) -> WithdrawalId {
        withdrawal_id(&self.from, self.nonce)
    }
}

impl SignedTx {
    /// Canonical (borsh) encoding.
    pub fn encode(&self) -> Vec<u8> {
        to_borsh(self)
    }

    /// Strictly decode a signed tx: at most [`MAX_SIGNED_TX_SIZE`] bytes, no trailing bytes,
    /// only canonical tags (enum, `Option` and `bool` tags out of range are rejected by borsh;
    /// a re-encoding check backs this up), and list bounds ([`MAX_PAYROLL_PAYMENTS`],
    /// [`MAX_MILESTONES`]).
    ///
    /// Decoding does not check the signature; see [`SignedTx::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let stx: SignedTx = strict_decode(bytes, MAX_SIGNED_TX_SIZE)?;
        stx.tx.call.check_bounds()?;
        Ok(stx)
    }

    /// The txid of the inner tx.
    pub fn txid(&self) -> Txid {
        self.tx.txid()
    }

    /// `tagged_hash("stint/wtx", encode(signed tx))`: commits to the signature as well as the tx.
    ///
    /// Batches commit to their txs by wtxid (protocol v2): a txid does not cover the signature,
    /// so a copy of an honest batch with one signature swapped would match a txid commitment.
    pub fn wtxid(&self) -> Hash {
        tagged_hash(WTX_TAG, &[&self.encode()])
    }

    /// Whether `sig` is a valid BIP340 signature of the txid by `tx.from`.
    pub fn verify(&self) -> bool {
        verify_sig(&self.tx.from, &self.txid(), &self.sig)
    }
}

/// Verify a BIP340 signature over `txid` by `from`.
pub(crate) fn verify_sig(from: &AccountId, txid: &Txid, sig: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&from.0) else {
        return false;
    };
    let Ok(sig) = Signature::try_from(&sig[..]) else {
        return false;
    };
    key.verify_raw(&txid.0, &sig).is_ok()
}

impl AccountId {
    /// The account of a signing key (its x-only public key).
    pub fn from_signing_key(key: &SigningKey) -> Self {
        AccountId(key.verifying_key().to_bytes().into())
    }
}

/// Id of the task created by `creator`'s tx with `nonce`.
pub fn task_id(creator: &AccountId, nonce: u64) -> TaskId {
    TaskId(tagged_hash(TASK_TAG, &[&creator.0, &nonce.to_le_bytes()]))
}

/// Id of the withdrawal made by `sender`'s tx with `nonce`.
pub fn withdrawal_id(sender: &AccountId, nonce: u64) -> WithdrawalId {
    WithdrawalId(tagged_hash(
        WITHDRAWAL_TAG,
        &[&sender.0, &nonce.to_le_bytes()],
    ))
}

/// Id of the stream opened by `creator`'s tx with `nonce`.
pub fn stream_id(creator: &AccountId, nonce: u64) -> StreamId {
    StreamId(tagged_hash(STREAM_TAG, &[&creator.0, &nonce.to_le_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32]).unwrap()
    }

    fn sample_tx(call: Call) -> Tx {
        Tx {
            chain_id: 7,
            from: AccountId::from_signing_key(&key(1)),
            nonce: 3,
            fee: 10,
            call,
        }
    }

    fn all_calls() -> Vec<Call> {
        let a = AccountId([9; 32]);
        let t = TaskId([5; 32]);
        let s = StreamId([6; 32]);
        vec![
            Call::Transfer { to: a, amount: 1 },
            Call::Payroll {
                payments: vec![Payment { to: a, amount: 2 }],
            },
            Call::StreamOpen {
                worker: a,
                rate_per_sec: 1,
                start: 2,
                duration_secs: 3,
                cancelable: true,
            },
            Call::StreamWithdraw { id: s },
            Call::StreamTopUp {
                id: s,
                extra_secs: 4,
            },
            Call::StreamPause { id: s },
            Call::StreamResume { id: s },
            Call::StreamCancel { id: s },
            Call::TaskCreate {
                worker: Some(a),
                arbiter: None,
                spec_hash: [1; 32],
                milestones: vec![1, 2],
                deadline: 100,
                review_secs: 10,
            },
            Call::TaskAccept { id: t },
            Call::TaskSubmit {
                id: t,
                milestone: 0,
                deliverable_hash: [2; 32],
            },
            Call::TaskApprove {
                id: t,
                milestone: 1,
            },
            Call::TaskClaim {
                id: t,
                milestone: 1,
            },
            Call::TaskDispute {
                id: t,
                reason_hash: [3; 32],
            },
            Call::TaskResolve {
                id: t,
                worker_share_bps: 5000,
            },
            Call::TaskCancel { id: t },
        ]
    }

    #[test]
    fn every_call_round_trips_binary_and_json() {
        for call in all_calls() {
            let stx = sample_tx(call).sign(&key(1)).unwrap();
            assert!(stx.verify());
            let bytes = stx.encode();
            assert_eq!(SignedTx::decode(&bytes).unwrap(), stx);
            let json = serde_json::to_string(&stx).unwrap();
            assert_eq!(serde_json::from_str::<SignedTx>(&json).unwrap(), stx);
            assert!(
                json.contains(&format!("\"type\":\"{}\"", stx.tx.call.name())),
                "{json}"
            );
        }
    }

    #[test]
    fn json_is_camel_case() {
        let tx = sample_tx(Call::StreamOpen {
            worker: AccountId([9; 32]),
            rate_per_sec: 1,
            start: 2,
            duration_secs: 3,
            cancelable: false,
        });
        let json = serde_json::to_value(&tx).unwrap();
        assert_eq!(json["chainId"], 7);
        assert_eq!(json["call"]["ratePerSec"], 1);
        assert_eq!(json["call"]["durationSecs"], 3);
        assert!(json["from"].as_str().unwrap().starts_with("stint1"));
    }

    #[test]
    fn decoder_rejects_trailing_bytes() {
        let stx = sample_tx(Call::Transfer {
            to: AccountId([9; 32]),
            amount: 5,
        })
        .sign(&key(1))
        .unwrap();
        let mut bytes = stx.encode();
        bytes.push(0);
        assert!(matches!(
            SignedTx::decode(&bytes),
            Err(DecodeError::Malformed(_))
        ));
        bytes.truncate(bytes.len() - 2);
        assert!(matches!(
            SignedTx::decode(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn decoder_rejects_bad_option_bool_and_enum_tags() {
        let tx = sample_tx(Call::TaskCreate {
            worker: None,
            arbiter: None,
            spec_hash: [1; 32],
            milestones: vec![1],
            deadline: 1,
            review_secs: 1,
        });
        let bytes = tx.encode();
        // Header is 56 bytes, call tag at 56, worker option tag at 57.
        assert_eq!(bytes[56], 8);
        assert_eq!(bytes[57], 0);
        let mut bad = bytes.clone();
        bad[57] = 2;
        assert!(matches!(Tx::decode(&bad), Err(DecodeError::Malformed(_))));
        let mut bad = bytes.clone();
        bad[56] = 16; // one past the last call variant
        assert!(matches!(Tx::decode(&bad), Err(DecodeError::Malformed(_))));

        let open = sample_tx(Call::StreamOpen {
            worker: AccountId([9; 32]),
            rate_per_sec: 1,
            start: 2,
            duration_secs: 3,
            cancelable: true,
        });
        let mut bytes = open.encode();
        let last = bytes.len() - 1;
        assert_eq!(bytes[last], 1);
        bytes[last] = 2;
        assert!(matches!(Tx::decode(&bytes), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn decoder_rejects_oversize_and_over_long_lists() {
        let to = AccountId([9; 32]);
        let full = Call::Payroll {
            payments: vec![Payment { to, amount: 1 }; MAX_PAYROLL_PAYMENTS],
        };
        let stx = sample_tx(full).sign(&key(1)).unwrap();
        let bytes = stx.encode();
        assert_eq!(bytes.len(), MAX_SIGNED_TX_SIZE);
        assert!(SignedTx::decode(&bytes).is_ok());

        let over = Call::Payroll {
            payments: vec![Payment { to, amount: 1 }; MAX_PAYROLL_PAYMENTS + 1],
        };
        let bytes = sample_tx(over).sign(&key(1)).unwrap().encode();
        assert!(matches!(
            SignedTx::decode(&bytes),
            Err(DecodeError::TooLarge { .. })
        ));

        let many = sample_tx(Call::TaskCreate {
            worker: None,
            arbiter: None,
            spec_hash: [1; 32],
            milestones: vec![1; MAX_MILESTONES + 1],
            deadline: 1,
            review_secs: 1,
        });
        assert!(matches!(
            Tx::decode(&many.encode()),
            Err(DecodeError::TooMany {
                what: "milestones",
                ..
            })
        ));

        // A length prefix claiming far more entries than the bytes hold.
        let mut lying = sample_tx(Call::Payroll { payments: vec![] }).encode();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Tx::decode(&lying), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn signature_binds_every_field() {
        let stx = sample_tx(Call::Transfer {
            to: AccountId([9; 32]),
            amount: 5,
        })
        .sign(&key(1))
        .unwrap();
        let mut changed = stx.clone();
        changed.tx.fee += 1;
        assert!(!changed.verify());
        let mut other_signer = stx.clone();
        other_signer.tx.from = AccountId::from_signing_key(&key(2));
        assert!(!other_signer.verify());
        let mut not_a_key = stx.clone();
        not_a_key.tx.from = AccountId([0xff; 32]);
        assert!(!not_a_key.verify());
        let mut bad_sig = stx;
        bad_sig.sig[63] ^= 1;
        assert!(!bad_sig.verify());
    }

    #[test]
    fn ids_are_domain_separated() {
        let a = AccountId([1; 32]);
        assert_ne!(task_id(&a, 1).0, stream_id(&a, 1).0);
        assert_ne!(task_id(&a, 1), task_id(&a, 2));
        let mut pre = a.0.to_vec();
        pre.extend_from_slice(&1u64.to_le_bytes());
        assert_eq!(task_id(&a, 1).0, tagged_hash(TASK_TAG, &[&pre]));
    }

    #[test]
    fn unknown_fields_in_a_json_call_are_refused() {
        let to = AccountId::from_signing_key(&key(2)).to_address();
        let ok = format!(r#"{{"type": "transfer", "to": "{to}", "amount": 5}}"#);
        assert!(serde_json::from_str::<Call>(&ok).is_ok());
        let extra = format!(r#"{{"type": "transfer", "to": "{to}", "amount": 5, "memo": "x"}}"#);
        let err = serde_json::from_str::<Call>(&extra).unwrap_err();
        assert!(err.to_string().contains("memo"), "{err}");
    }

    #[test]
    fn calls_name_their_accounts_and_the_first_non_key_is_found() {
        let good = AccountId::from_signing_key(&key(2));
        let burn = AccountId([0xff; 32]);
        let payroll = Call::Payroll {
            payments: vec![
                Payment {
                    to: good,
                    amount: 1,
                },
                Payment {
                    to: burn,
                    amount: 2,
                },
            ],
        };
        assert_eq!(payroll.named_accounts(), vec![good, burn]);
        assert_eq!(payroll.first_non_key(), Some((1, burn)));
        let task = Call::TaskCreate {
            worker: None,
            arbiter: Some(good),
            spec_hash: [0; 32],
            milestones: vec![1],
            deadline: 0,
            review_secs: 0,
        };
        assert_eq!(task.named_accounts(), vec![good]);
        assert_eq!(task.first_non_key(), None);
        let transfer = Call::Transfer {
            to: burn,
            amount: 1,
        };
        assert_eq!(transfer.first_non_key(), Some((0, burn)));
    }
}
