//! L1 messages in the state transition (protocol v2): a deposit credits an account; a forced tx
//! runs like any tx, except that an invalid one (wrong chain, bad signature, wrong nonce, a fee
//! its sender cannot pay) is *skipped* with a receipt instead of making its batch invalid — the
//! sequencer did not choose it, Bitcoin did.
//!
//! [`execute_messages`] runs one message segment over a [`StateView`]: signatures of the forced
//! txs checked in parallel, then every message in order, then the segment's fees credited to
//! the fee recipient, exactly as [`execute_segment`](crate::execute_segment) does for txs.

use rayon::prelude::*;
use stint_state::{Overlay, StateView};

use crate::calls::write_account;
use crate::error::{ExecError, InvalidTxReason};
use crate::receipt::Receipt;
use crate::records::read_account;
use crate::stf::{apply_tx, credit_fees, BlockContext, TxError};
use crate::tx::{verify_sig, SignedTx};
use crate::types::{AccountId, Txid};

/// What one L1 message asks of the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L1Effect<'a> {
    /// Credit `amount` units to `account` (a deposit).
    Credit {
        /// The account credited.
        account: AccountId,
        /// Units (sats) credited.
        amount: u64,
    },
    /// Run a signed tx forced in through Bitcoin.
    Forced(&'a SignedTx),
}

/// Why a deposit was not credited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreditRefusal {
    /// The balance would overflow `u64`.
    #[error("the balance would overflow")]
    Overflow,
    /// The account is not a valid x-only key (nobody could ever spend it).
    #[error("the account is not a valid key")]
    NotAKey,
}

/// What one L1 message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageReceipt {
    /// The deposit was credited.
    Credited {
        /// The account.
        account: AccountId,
        /// Units credited.
        amount: u64,
    },
    /// The deposit was not credited (the state is unchanged by it).
    NotCredited {
        /// The account.
        account: AccountId,
        /// Units not credited.
        amount: u64,
        /// Why.
        reason: CreditRefusal,
    },
    /// The forced tx ran (nonce and fee taken; its call may still have failed, see
    /// [`Receipt::error`]).
    Executed(Receipt),
    /// The forced tx was invalid and skipped (the state is unchanged by it).
    Skipped {
        /// The tx.
        txid: Txid,
        /// Why it is invalid.
        reason: InvalidTxReason,
    },
}

/// The result of executing one message segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOutcome {
    /// Writes relative to the segment's pre-state (fee credit included).
    pub changes: stint_state::ChangeSet,
    /// One receipt per message, in order.
    pub receipts: Vec<MessageReceipt>,
    /// Fees of the executed forced txs (credited to the fee recipient).
    pub fees: u64,
    /// Units credited by deposits.
    pub credited: u64,
}

/// Executes one segment of L1 messages over `view` (see the module docs). Only internal
/// failures (a corrupt record, the state store) are errors: no message makes it fail.
pub fn execute_messages<V: StateView>(
    view: V,
    ctx: &BlockContext,
    effects: &[L1Effect<'_>],
) -> Result<MessageOutcome, ExecError> {
    let checked: Vec<Option<(Txid, bool)>> = effects
        .par_iter()
        .map(|effect| match effect {
            L1Effect::Forced(stx) => {
                let txid = stx.txid();
                Some((txid, verify_sig(&stx.tx.from, &txid, &stx.sig)))
            }
            L1Effect::Credit { .. } => None,
        })
        .collect();
    let mut st = Overlay::new(view);
    let mut receipts = Vec::with_capacity(effects.len());
    let mut fees = 0u64;
    let mut credited = 0u64;
    let mut last = 0usize;
    for (index, (effect, check)) in effects.iter().zip(&checked).enumerate() {
        last = index;
        let receipt = match (effect, check) {
            (L1Effect::Credit { account, amount }, _) => {
                credit(&mut st, account, *amount, &mut credited)?
            }
            (L1Effect::Forced(stx), Some((txid, sig_ok))) => {
                match apply_tx(&mut st, ctx, stx, txid, *sig_ok) {
                    Ok(receipt) => match fees.checked_add(receipt.fee) {
                        Some(total) => {
                            fees = total;
                            MessageReceipt::Executed(receipt)
                        }
                        // Unreachable in practice (fees are bounded by the supply), but never
                        // a panic: the fee was taken from the sender, so the segment's credit
                        // would not conserve value. Treat it as an invalid segment input.
                        None => {
                            return Err(ExecError::Invalid {
                                index,
                                reason: InvalidTxReason::FeeOverflow,
                            })
                        }
                    },
                    // Invalid forced txs change nothing: every validity check in `apply_tx`
                    // comes before its first write.
                    Err(TxError::Invalid(reason)) => MessageReceipt::Skipped {
                        txid: *txid,
                        reason,
                    },
                    Err(TxError::Exec(e)) => return Err(e),
                }
            }
            (L1Effect::Forced(stx), None) => MessageReceipt::Skipped {
                txid: stx.txid(),
                reason: InvalidTxReason::BadSignature,
            },
        };
        receipts.push(receipt);
    }
    credit_fees(&mut st, ctx, fees, last)?;
    Ok(MessageOutcome {
        changes: st.into_changes(),
        receipts,
        fees,
        credited,
    })
}

fn credit<V: StateView>(
    st: &mut Overlay<V>,
    account: &AccountId,
    amount: u64,
    credited: &mut u64,
) -> Result<MessageReceipt, ExecError> {
    let refused = |reason| MessageReceipt::NotCredited {
        account: *account,
        amount,
        reason,
    };
    if !account.is_key() {
        return Ok(refused(CreditRefusal::NotAKey));
    }
    let mut record = read_account(st, account)?;
    let (Some(balance), Some(total)) = (
        record.balance.checked_add(amount),
        credited.checked_add(amount),
    ) else {
        return Ok(refused(CreditRefusal::Overflow));
    };
    record.balance = balance;
    *credited = total;
    write_account(st, account, &record);
    Ok(MessageReceipt::Credited {
        account: *account,
        amount,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k256::schnorr::SigningKey;
    use proptest::prelude::*;
    use stint_state::Key;

    use super::*;
    use crate::{account_entry, apply_changes, total_value, Account, Call, Tx};

    const CHAIN: u64 = 9;
    const FEES: AccountId = AccountId([0xfe; 32]);

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32]).unwrap()
    }

    fn id(seed: u8) -> AccountId {
        AccountId::from_signing_key(&key(seed))
    }

    fn ctx() -> BlockContext {
        BlockContext {
            chain_id: CHAIN,
            timestamp: 1_000,
            fee_recipient: FEES,
        }
    }

    fn state(funded: &[(u8, u64)]) -> BTreeMap<Key, Vec<u8>> {
        funded
            .iter()
            .map(|(seed, balance)| {
                let (k, v) = account_entry(
                    &id(*seed),
                    &Account {
                        balance: *balance,
                        nonce: 0,
                    },
                );
                (k, v.unwrap())
            })
            .collect()
    }

    fn forced(seed: u8, chain_id: u64, nonce: u64, fee: u64, amount: u64) -> SignedTx {
        Tx {
            chain_id,
            from: id(seed),
            nonce,
            fee,
            call: Call::Transfer { to: id(2), amount },
        }
        .sign(&key(seed))
        .unwrap()
    }

    fn balance(state: &BTreeMap<Key, Vec<u8>>, who: AccountId) -> u64 {
        read_account(state, &who).unwrap().balance
    }

    #[test]
    fn deposits_credit_and_invalid_forced_txs_are_skipped_without_effect() {
        let mut st = state(&[(1, 100)]);
        let good = forced(1, CHAIN, 0, 3, 10);
        let wrong_chain = forced(1, CHAIN + 1, 1, 3, 10);
        let wrong_nonce = forced(1, CHAIN, 7, 3, 10);
        let unpayable = forced(3, CHAIN, 0, 1, 1); // account 3 has nothing
        let mut bad_sig = forced(1, CHAIN, 1, 3, 10);
        bad_sig.sig[5] ^= 1;
        let failing_call = forced(1, CHAIN, 1, 3, 1_000_000); // valid tx, the call fails
        let effects = [
            L1Effect::Credit {
                account: id(3),
                amount: 500,
            },
            L1Effect::Forced(&good),
            L1Effect::Forced(&wrong_chain),
            L1Effect::Forced(&wrong_nonce),
            L1Effect::Forced(&unpayable),
            L1Effect::Forced(&bad_sig),
            L1Effect::Credit {
                account: AccountId([0xff; 32]),
                amount: 9,
            },
            L1Effect::Forced(&failing_call),
        ];
        let out = execute_messages(&st, &ctx(), &effects).unwrap();
        let kinds: Vec<String> = out
            .receipts
            .iter()
            .map(|r| match r {
                MessageReceipt::Credited { amount, .. } => format!("credited {amount}"),
                MessageReceipt::NotCredited { reason, .. } => format!("not credited: {reason}"),
                MessageReceipt::Executed(r) => format!("executed {:?}", r.error),
                MessageReceipt::Skipped { reason, .. } => format!("skipped: {reason}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "credited 500".to_owned(),
                "executed None".into(),
                format!(
                    "skipped: {}",
                    InvalidTxReason::WrongChainId {
                        found: CHAIN + 1,
                        expected: CHAIN
                    }
                ),
                format!(
                    "skipped: {}",
                    InvalidTxReason::WrongNonce {
                        found: 7,
                        expected: 1
                    }
                ),
                // Account 3 got the deposit first, so it can pay: the forced tx runs.
                "executed None".into(),
                format!("skipped: {}", InvalidTxReason::BadSignature),
                "not credited: the account is not a valid key".into(),
                "executed Some(InsufficientBalance)".into(),
            ]
        );
        let before = total_value(&st).unwrap();
        apply_changes(&mut st, &out.changes);
        assert_eq!(out.credited, 500);
        assert_eq!(out.fees, 3 + 1 + 3);
        // Value: the supply grew by exactly the credited deposits.
        assert_eq!(total_value(&st).unwrap(), before + 500);
        assert_eq!(balance(&st, id(1)), 100 - 3 - 10 - 3);
        assert_eq!(balance(&st, id(3)), 500 - 1 - 1);
        assert_eq!(balance(&st, id(2)), 10 + 1);
        assert_eq!(balance(&st, FEES), 7);
    }

    #[test]
    fn a_credit_that_would_overflow_is_refused() {
        let st = state(&[(1, u64::MAX - 5)]);
        let out = execute_messages(
            &st,
            &ctx(),
            &[L1Effect::Credit {
                account: id(1),
                amount: 6,
            }],
        )
        .unwrap();
        assert!(out.changes.is_empty());
        assert!(matches!(
            out.receipts[0],
            MessageReceipt::NotCredited {
                reason: CreditRefusal::Overflow,
                ..
            }
        ));
    }

    proptest! {
        /// Whatever the mix, value is conserved up to the credited deposits, and skipped forced
        /// txs leave their sender's account as it was.
        #[test]
        fn value_is_conserved_up_to_credited_deposits(
            plan in proptest::collection::vec((0u8..4, 0u64..3, 0u64..50, 0u64..200, any::<bool>()), 1..24)
        ) {
            let mut st = state(&[(1, 1_000), (2, 10)]);
            let txs: Vec<SignedTx> = plan
                .iter()
                .map(|(who, nonce, fee, amount, _)| forced(who + 1, CHAIN, *nonce, *fee, *amount))
                .collect();
            let effects: Vec<L1Effect<'_>> = plan
                .iter()
                .zip(&txs)
                .map(|((who, _, _, amount, deposit), tx)| {
                    if *deposit {
                        L1Effect::Credit { account: id(who + 1), amount: *amount }
                    } else {
                        L1Effect::Forced(tx)
                    }
                })
                .collect();
            let before = total_value(&st).unwrap();
            let out = execute_messages(&st, &ctx(), &effects).unwrap();
            prop_assert_eq!(out.receipts.len(), effects.len());
            apply_changes(&mut st, &out.changes);
            prop_assert_eq!(total_value(&st).unwrap(), before + u128::from(out.credited));
            let expected_credit: u64 = out.receipts.iter().map(|r| match r {
                MessageReceipt::Credited { amount, .. } => *amount,
                _ => 0,
            }).sum();
            prop_assert_eq!(out.credited, expected_credit);
            // Same inputs, same outcome (deterministic).
            let again = execute_messages(state(&[(1, 1_000), (2, 10)]), &ctx(), &effects).unwrap();
            prop_assert_eq!(again, out);
        }
    }
}
