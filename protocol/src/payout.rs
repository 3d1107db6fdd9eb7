//! Bitcoin out (issue 16): the payout transaction of a set of withdrawals, as a pure function of
//! what the derived chain says, so every honest bridge signer signs the same transaction.
//!
//! # Rules
//! - **Inputs.** The bridge outputs given, in outpoint order (txid bytes, then vout), taken from
//!   the first until they cover the withdrawals; the caller passes the bridge's unspent outputs
//!   as derivation knows them.
//! - **Outputs.** One per withdrawal, in withdrawal order, paying its script its amount minus its
//!   share of the fee; then the change back to the bridge script (dropped into the fee when below
//!   the bridge output's dust limit, 330 sats); then an `OP_RETURN "STNT" "W" <commitment>` whose
//!   32 bytes are [`payout_commitment`] of the withdrawal ids, so a payout is recognized on
//!   Bitcoin without any signature.
//! - **Fee.** `fee_rate` (sat/vB, the caller's rule) × the transaction's virtual size once it
//!   carries `m` signatures, paid by the withdrawals: split equally, the remainder taken from the
//!   first ones. A withdrawal whose output would fall below its script's dust limit fails the
//!   whole payout ([`PayoutError::BelowDust`]); the caller pays fewer at once.
//! - **Version 2, lock time 0, sequence `0xfffffffd`** (replaceable: a stuck payout is bumped by
//!   building and signing the same withdrawals again at a higher rate).
//!
//! Signing is non-interactive (the bridge is a tapscript `CHECKSIGADD` m-of-n leaf, see
//! [`Bridge::leaf_script`]): each signer produces one BIP340 signature per input over the
//! script-path sighash ([`sign_payout`]), deterministic (no auxiliary randomness), and anyone
//! holding `m` of them assembles the witnesses ([`assemble_payout`]).

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{schnorr, Keypair, Message, Secp256k1, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{LeafVersion, TapLeafHash};
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use stint_contracts::{standard_output_dust, WithdrawalId};
use stint_state::{tagged_hash, Hash};

use crate::Bridge;

/// The kind byte of a payout's `OP_RETURN` (after the `"STNT"` marker).
pub const PAYOUT_TAG_KIND: u8 = b'W';
/// Tag of [`payout_commitment`].
pub const PAYOUT_TAG: &str = "stint/payout";
/// Dust limit of the bridge's own (P2TR) change output.
pub const BRIDGE_CHANGE_DUST: u64 = 330;
/// Sequence of every payout input (opts in to replacement).
pub const PAYOUT_SEQUENCE: Sequence = Sequence(0xffff_fffd);

/// An unspent output of the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeUtxo {
    /// The output.
    pub outpoint: OutPoint,
    /// Its value, sats.
    pub value: u64,
}

/// A withdrawal to pay: its id, the script and the amount burned on Stint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayableWithdrawal {
    /// The withdrawal id.
    pub id: WithdrawalId,
    /// The script to pay.
    pub script: ScriptBuf,
    /// Sats burned on Stint (the output gets this minus its share of the fee).
    pub amount: u64,
}

/// Why no payout can be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutError {
    /// Nothing to pay.
    #[error("no withdrawals to pay")]
    Empty,
    /// The genesis bridge is not valid.
    #[error("the bridge is not valid")]
    Bridge,
    /// A withdrawal's script is not a standard output.
    #[error("withdrawal {index} pays a non-standard script")]
    NonStandard {
        /// Its position.
        index: usize,
    },
    /// The bridge outputs do not cover the withdrawals and the fee.
    #[error("the bridge holds {available} sats, the payout needs {needed}")]
    Insufficient {
        /// Sats in the bridge outputs given.
        available: u64,
        /// Sats the withdrawals and the fee need.
        needed: u64,
    },
    /// A withdrawal's output would be dust once its fee share is taken.
    #[error("withdrawal {index} would pay {value} sats after its fee share, below its dust limit {dust}")]
    BelowDust {
        /// Its position.
        index: usize,
        /// What it would pay.
        value: u64,
        /// Its script's dust limit.
        dust: u64,
    },
    /// An amount overflows.
    #[error("amounts overflow")]
    Overflow,
    /// A signature set is not usable (wrong count, fewer than `m`, or an unknown signer).
    #[error("signatures: {0}")]
    Signatures(String),
}

/// A payout ready to be signed: the unsigned transaction and what each input spends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payout {
    /// The transaction, witnesses empty.
    pub tx: Transaction,
    /// The outputs its inputs spend, in input order (for the sighashes).
    pub prevouts: Vec<TxOut>,
    /// The fee, sats.
    pub fee: u64,
}

/// The 32 bytes a payout commits to: `tagged_hash("stint/payout", id_1 ‖ … ‖ id_k)`.
pub fn payout_commitment(ids: &[WithdrawalId]) -> Hash {
    let parts: Vec<&[u8]> = ids.iter().map(|id| id.0.as_slice()).collect();
    tagged_hash(PAYOUT_TAG, &parts)
}

/// The `OP_RETURN` output script of a payout committing to `commitment`.
pub fn payout_tag(commitment: &Hash) -> ScriptBuf {
    crate::l1::tag_script(PAYOUT_TAG_KIND, *commitment)
}

/// Build the payout of `withdrawals` from the bridge outputs `utxos` at `fee_rate` sat/vB (see
/// the module docs).
pub fn build_payout(
    bridge: &Bridge,
    utxos: &[BridgeUtxo],
    withdrawals: &[PayableWithdrawal],
    fee_rate: u64,
) -> Result<Payout, PayoutError> {
    if withdrawals.is_empty() {
        return Err(PayoutError::Empty);
    }
    let bridge_script = bridge.script_pubkey().ok_or(PayoutError::Bridge)?;
    for (index, w) in withdrawals.iter().enumerate() {
        standard_output_dust(w.script.as_bytes()).ok_or(PayoutError::NonStandard { index })?;
    }
    let total = withdrawals
        .iter()
        .try_fold(0u64, |sum, w| sum.checked_add(w.amount))
        .ok_or(PayoutError::Overflow)?;
    let mut sorted = utxos.to_vec();
    sorted.sort_by_key(|u| (u.outpoint.txid.to_byte_array(), u.outpoint.vout));
    let ids: Vec<WithdrawalId> = withdrawals.iter().map(|w| w.id).collect();
    let tag = payout_tag(&payout_commitment(&ids));
    let available = sorted
        .iter()
        .try_fold(0u64, |sum, u| sum.checked_add(u.value))
        .ok_or(PayoutError::Overflow)?;

    let mut taken = 0usize;
    let mut inputs_value = 0u64;
    loop {
        // Inputs so far cover the withdrawals? (The fee comes out of them.)
        if inputs_value >= total && taken > 0 {
            let payout = assemble_unsigned(
                bridge,
                &bridge_script,
                sorted.get(..taken).unwrap_or(&[]),
                withdrawals,
                inputs_value,
                total,
                &tag,
                fee_rate,
            )?;
            return Ok(payout);
        }
        let Some(next) = sorted.get(taken) else {
            return Err(PayoutError::Insufficient {
                available,
                needed: total,
            });
        };
        inputs_value = inputs_value
            .checked_add(next.value)
            .ok_or(PayoutError::Overflow)?;
        taken = taken.saturating_add(1);
    }
}

/// The payout spending `inputs` (worth `inputs_value`) for `withdrawals` (worth `total`).
#[allow(clippy::too_many_arguments)]
fn assemble_unsigned(
    bridge: &Bridge,
    bridge_script: &ScriptBuf,
    inputs: &[BridgeUtxo],
    withdrawals: &[PayableWithdrawal],
    inputs_value: u64,
    total: u64,
    tag: &ScriptBuf,
    fee_rate: u64,
) -> Result<Payout, PayoutError> {
    let change = inputs_value
        .checked_sub(total)
        .ok_or(PayoutError::Overflow)?;
    let with_change = change >= BRIDGE_CHANGE_DUST;
    let shaped = |values: &[u64]| {
        let mut output: Vec<TxOut> = withdrawals
            .iter()
            .zip(values)
            .map(|(w, v)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: w.script.clone(),
            })
            .collect();
        if with_change {
            output.push(TxOut {
                value: Amount::from_sat(change),
                script_pubkey: bridge_script.clone(),
            });
        }
        output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: tag.clone(),
        });
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|u| TxIn {
                    previous_output: u.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: PAYOUT_SEQUENCE,
                    witness: Witness::new(),
                })
                .collect(),
            output,
        }
    };
    // The fee of the signed size: measure the transaction with witnesses of the final shape.
    let amounts: Vec<u64> = withdrawals.iter().map(|w| w.amount).collect();
    let mut sized = shaped(&amounts);
    let placeholder = placeholder_witness(bridge)?;
    for input in &mut sized.input {
        input.witness = placeholder.clone();
    }
    let vsize = sized.weight().to_vbytes_ceil();
    let fee = vsize.checked_mul(fee_rate).ok_or(PayoutError::Overflow)?;
    // Change below dust goes to the fee as well.
    let fee_from_withdrawals = fee;
    let count = withdrawals.len() as u64;
    let share = fee_from_withdrawals
        .checked_div(count)
        .ok_or(PayoutError::Empty)?;
    let mut remainder = fee_from_withdrawals
        .checked_rem(count)
        .ok_or(PayoutError::Empty)?;
    let mut values = Vec::with_capacity(withdrawals.len());
    for (index, w) in withdrawals.iter().enumerate() {
        let extra = u64::from(remainder > 0);
        remainder = remainder.saturating_sub(extra);
        let cut = share.checked_add(extra).ok_or(PayoutError::Overflow)?;
        let dust =
            standard_output_dust(w.script.as_bytes()).ok_or(PayoutError::NonStandard { index })?;
        let value =
            w.amount
                .checked_sub(cut)
                .filter(|v| *v >= dust)
                .ok_or(PayoutError::BelowDust {
                    index,
                    value: w.amount.saturating_sub(cut),
                    dust,
                })?;
        values.push(value);
    }
    let paid_fee = if with_change {
        fee
    } else {
        fee.checked_add(change).ok_or(PayoutError::Overflow)?
    };
    let tx = shaped(&values);
    let prevouts = inputs
        .iter()
        .map(|u| TxOut {
            value: Amount::from_sat(u.value),
            script_pubkey: bridge_script.clone(),
        })
        .collect();
    Ok(Payout {
        tx,
        prevouts,
        fee: paid_fee,
    })
}

/// A witness of the final shape (m signatures, n − m empty items, the leaf, the control block).
fn placeholder_witness(bridge: &Bridge) -> Result<Witness, PayoutError> {
    let m = bridge.threshold as usize;
    let sigs = (0..bridge.signers.len()).map(|i| if i < m { vec![0u8; 64] } else { Vec::new() });
    witness_of(bridge, sigs)
}

/// The witness spending the bridge leaf with `sigs`, given in signer order (empty for a signer
/// who did not sign); the stack holds them last signer first.
fn witness_of(
    bridge: &Bridge,
    sigs: impl DoubleEndedIterator<Item = Vec<u8>>,
) -> Result<Witness, PayoutError> {
    let info = bridge.spend_info().ok_or(PayoutError::Bridge)?;
    let leaf = bridge.leaf_script();
    let control = info
        .control_block(&(leaf.clone(), LeafVersion::TapScript))
        .ok_or(PayoutError::Bridge)?;
    let mut witness = Witness::new();
    for sig in sigs.rev() {
        witness.push(sig);
    }
    witness.push(leaf.as_bytes());
    witness.push(control.serialize());
    Ok(witness)
}

/// The script-path sighash of each input of `payout` (SIGHASH_DEFAULT over all prevouts).
pub fn payout_sighashes(bridge: &Bridge, payout: &Payout) -> Result<Vec<[u8; 32]>, PayoutError> {
    let leaf_hash = TapLeafHash::from_script(&bridge.leaf_script(), LeafVersion::TapScript);
    let prevouts = Prevouts::All(&payout.prevouts);
    let mut cache = SighashCache::new(&payout.tx);
    (0..payout.tx.input.len())
        .map(|index| {
            cache
                .taproot_script_spend_signature_hash(
                    index,
                    &prevouts,
                    leaf_hash,
                    TapSighashType::Default,
                )
                .map(|h| h.to_byte_array())
                .map_err(|e| PayoutError::Signatures(e.to_string()))
        })
        .collect()
}

/// One signer's signatures of `payout`, one per input (deterministic BIP340, no auxiliary
/// randomness). The signer checks what it signs before calling this: see the trust
/// model in the README.
pub fn sign_payout(
    bridge: &Bridge,
    payout: &Payout,
    keypair: &Keypair,
) -> Result<Vec<[u8; 64]>, PayoutError> {
    let secp = Secp256k1::signing_only();
    payout_sighashes(bridge, payout)?
        .into_iter()
        .map(|sighash| {
            let message = Message::from_digest(sighash);
            Ok(secp.sign_schnorr_no_aux_rand(&message, keypair).serialize())
        })
        .collect()
}

/// The signed payout from the signatures of at least `m` signers: `signatures[i]` is signer
/// `i`'s per-input list (`None` if it did not sign). Each signature is checked against its key
/// and sighash, so a wrong one is refused here and never broadcast.
pub fn assemble_payout(
    bridge: &Bridge,
    payout: &Payout,
    signatures: &[Option<Vec<[u8; 64]>>],
) -> Result<Transaction, PayoutError> {
    let n = bridge.signers.len();
    if signatures.len() != n {
        return Err(PayoutError::Signatures(format!(
            "{} signature sets for {n} signers",
            signatures.len()
        )));
    }
    let sighashes = payout_sighashes(bridge, payout)?;
    let secp = Secp256k1::verification_only();
    // Use the first m signers that signed (more would fail the NUMEQUAL).
    let m = bridge.threshold as usize;
    let mut used = 0usize;
    let mut chosen: Vec<Option<&Vec<[u8; 64]>>> = Vec::with_capacity(n);
    for (i, set) in signatures.iter().enumerate() {
        match set {
            Some(sigs) if used < m => {
                if sigs.len() != sighashes.len() {
                    return Err(PayoutError::Signatures(format!(
                        "signer {i} gave {} signatures for {} inputs",
                        sigs.len(),
                        sighashes.len()
                    )));
                }
                let key: &XOnlyPublicKey = bridge
                    .signers
                    .get(i)
                    .ok_or_else(|| PayoutError::Signatures(format!("no signer {i}")))?;
                for (input, (sig, sighash)) in sigs.iter().zip(&sighashes).enumerate() {
                    let sig = schnorr::Signature::from_slice(sig)
                        .map_err(|e| PayoutError::Signatures(format!("signer {i}: {e}")))?;
                    secp.verify_schnorr(&sig, &Message::from_digest(*sighash), key)
                        .map_err(|_| {
                            PayoutError::Signatures(format!(
                                "signer {i}'s signature of input {input} does not verify"
                            ))
                        })?;
                }
                used = used.saturating_add(1);
                chosen.push(Some(sigs));
            }
            _ => chosen.push(None),
        }
    }
    if used < m {
        return Err(PayoutError::Signatures(format!(
            "{used} of the {m} signatures needed"
        )));
    }
    let mut tx = payout.tx.clone();
    for (index, input) in tx.input.iter_mut().enumerate() {
        let sigs = chosen.iter().map(|set| {
            set.and_then(|sigs| sigs.get(index))
                .map_or_else(Vec::new, |s| s.to_vec())
        });
        input.witness = witness_of(bridge, sigs.collect::<Vec<_>>().into_iter())?;
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::SecretKey;

    fn keypair(i: u8) -> Keypair {
        Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[i; 32]).unwrap())
    }

    fn bridge() -> Bridge {
        Bridge {
            signers: (1..=3).map(|i| keypair(i).x_only_public_key().0).collect(),
            threshold: 2,
            min_deposit: 1_000,
        }
    }

    fn p2wpkh(byte: u8) -> ScriptBuf {
        ScriptBuf::from_bytes([vec![0x00, 0x14], vec![byte; 20]].concat())
    }

    fn utxo(txid: u8, vout: u32, value: u64) -> BridgeUtxo {
        BridgeUtxo {
            outpoint: OutPoint {
                txid: bitcoin::Txid::from_byte_array([txid; 32]),
                vout,
            },
            value,
        }
    }

    fn withdrawal(i: u8, amount: u64) -> PayableWithdrawal {
        PayableWithdrawal {
            id: WithdrawalId([i; 32]),
            script: p2wpkh(i),
            amount,
        }
    }

    #[test]
    fn the_payout_is_a_pure_function_and_conserves_value() {
        let utxos = [utxo(9, 0, 30_000), utxo(1, 1, 20_000), utxo(1, 0, 5_000)];
        let ws = [withdrawal(1, 12_000), withdrawal(2, 7_000)];
        let a = build_payout(&bridge(), &utxos, &ws, 2).unwrap();
        let mut shuffled = utxos;
        shuffled.reverse();
        let b = build_payout(&bridge(), &shuffled, &ws, 2).unwrap();
        assert_eq!(a, b, "input order does not matter");
        // Outpoint order: (1,0) then (1,1) cover 19,000 + fee? 25,000 ≥ 19,000.
        let spent: Vec<_> = a.tx.input.iter().map(|i| i.previous_output).collect();
        assert_eq!(spent, vec![utxos[2].outpoint, utxos[1].outpoint]);
        let inputs: u64 = a.prevouts.iter().map(|o| o.value.to_sat()).sum();
        let outputs: u64 = a.tx.output.iter().map(|o| o.value.to_sat()).sum();
        assert_eq!(inputs, outputs + a.fee, "nothing created or lost");
        // Withdrawals first, in order, then change to the bridge, then the tag.
        assert_eq!(a.tx.output[0].script_pubkey, p2wpkh(1));
        assert_eq!(a.tx.output[1].script_pubkey, p2wpkh(2));
        assert_eq!(
            a.tx.output[2].script_pubkey,
            bridge().script_pubkey().unwrap()
        );
        assert_eq!(a.tx.output[2].value.to_sat(), 25_000 - 19_000);
        let ids = [ws[0].id, ws[1].id];
        assert_eq!(
            a.tx.output[3].script_pubkey,
            payout_tag(&payout_commitment(&ids))
        );
        // The withdrawals paid the fee between them.
        let paid = a.tx.output[0].value.to_sat() + a.tx.output[1].value.to_sat();
        assert_eq!(paid + a.fee, 19_000);
        assert!(a.fee > 0);
    }

    #[test]
    fn two_of_three_signatures_assemble_and_one_does_not() {
        let b = bridge();
        let payout = build_payout(&b, &[utxo(3, 0, 50_000)], &[withdrawal(1, 10_000)], 2).unwrap();
        let s1 = sign_payout(&b, &payout, &keypair(1)).unwrap();
        let s3 = sign_payout(&b, &payout, &keypair(3)).unwrap();
        assert_eq!(
            s1,
            sign_payout(&b, &payout, &keypair(1)).unwrap(),
            "deterministic"
        );
        let tx = assemble_payout(&b, &payout, &[Some(s1.clone()), None, Some(s3.clone())]).unwrap();
        assert_eq!(tx.input[0].witness.len(), 3 + 2);
        // The measured fee matches the signed size.
        assert_eq!(payout.fee, tx.weight().to_vbytes_ceil() * 2);
        assert!(matches!(
            assemble_payout(&b, &payout, &[Some(s1.clone()), None, None]),
            Err(PayoutError::Signatures(_))
        ));
        // Signer 3's signatures under signer 2's slot do not verify.
        assert!(matches!(
            assemble_payout(&b, &payout, &[Some(s1), Some(s3), None]),
            Err(PayoutError::Signatures(_))
        ));
    }

    #[test]
    fn a_payout_that_cannot_be_made_says_why() {
        let b = bridge();
        assert_eq!(
            build_payout(&b, &[utxo(1, 0, 5_000)], &[], 2),
            Err(PayoutError::Empty)
        );
        assert!(matches!(
            build_payout(&b, &[utxo(1, 0, 5_000)], &[withdrawal(1, 6_000)], 2),
            Err(PayoutError::Insufficient { .. })
        ));
        assert!(matches!(
            build_payout(&b, &[utxo(1, 0, 5_000)], &[withdrawal(1, 400)], 2),
            Err(PayoutError::BelowDust { index: 0, .. })
        ));
        let mut bad = withdrawal(1, 1_000);
        bad.script = ScriptBuf::from_bytes(vec![0x6a]);
        assert_eq!(
            build_payout(&b, &[utxo(1, 0, 5_000)], &[bad], 2),
            Err(PayoutError::NonStandard { index: 0 })
        );
    }
}
