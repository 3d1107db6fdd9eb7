//! L1 messages (protocol v2): what Bitcoin itself feeds the rollup — deposits to the bridge and
//! forced transactions — found in a block by pure functions, identically on every node.
//!
//! # The bridge and its address
//! The genesis may name a bridge federation ([`Bridge`]: `n` x-only signer keys and a threshold
//! `m`). Its address is a P2TR output whose internal key is BIP341's unspendable "NUMS" point
//! (nobody can spend by key path) and whose only leaf is the tapscript m-of-n
//! `<k1> OP_CHECKSIG <k2> OP_CHECKSIGADD … <kn> OP_CHECKSIGADD <m> OP_NUMEQUAL`
//! ([`Bridge::script_pubkey`]). The same keys always give the same address.
//!
//! # Deposits
//! A deposit is a Bitcoin transaction with one or more outputs paying the bridge script and
//! exactly one *deposit tag*: an `OP_RETURN "STNT" "D" <account: 32 bytes>` output naming the L2
//! account to credit ([`DepositTag`]). Every output paying the bridge is a deposit of its value
//! to that account, identified by its outpoint; 1 unit = 1 sat. An output paying the bridge is
//! *not credited* ([`UncreditedReason`]) when the transaction has no tag or more than one, the
//! tag's account is not a valid x-only key (units sent there could never be spent), or the value
//! is below the genesis `min_deposit`. Its bitcoin stays in the bridge: the federation sweeps
//! such outputs (withdrawals, issue 16), and `docs/decisions.md` says how they are refunded.
//!
//! # Forced transactions
//! A forced transaction is a signed L2 transaction in an envelope of kind
//! [`EnvelopeKind::ForcedTx`] under any Bitcoin key (no anchor auth): its payload is the
//! canonical encoding of a [`SignedTx`], at most [`MAX_SIGNED_TX_SIZE`] bytes, decoded strictly.
//! A payload that does not decode is not a message (ignored like any stranger's data); one that
//! decodes is a message even if it is invalid (wrong chain, bad signature, wrong nonce, fee it
//! cannot pay): execution skips those with a receipt, and the batch stays valid.
//!
//! # Order and bounds
//! Messages of a block are taken in transaction order; within a transaction, its forced-tx
//! envelopes (input order) come before its deposits (output order). At most
//! [`MAX_L1_MESSAGES_PER_BLOCK`] count per block; later ones are ignored and reported, so a flood
//! costs its author Bitcoin fees and delays nobody by more than a block. Blocks at or below the
//! genesis `l1_start_height` carry no messages (the genesis covers them).
//!
//! # Which batch executes them (protocol v3)
//! A message is *due* once its block has `l1_confirmations` confirmations as seen from a batch's
//! `l1_origin`: a batch with origin height `o` covers the messages of the blocks up to its
//! [horizon](Genesis::message_horizon) `o + 1 − l1_confirmations`, and executes, first and in
//! order, those of the blocks its horizon newly covers (after its parent's horizon). The header
//! commits to them ([`message_root`](crate::message_root)).

use bitcoin::hashes::Hash as _;
use bitcoin::opcodes::all::{OP_CHECKSIG, OP_CHECKSIGADD, OP_NUMEQUAL, OP_RETURN};
use bitcoin::script::{Builder, Instruction};
use bitcoin::secp256k1::{Secp256k1, XOnlyPublicKey};
use bitcoin::taproot::TaprootBuilder;
use bitcoin::{Block, OutPoint, Script, ScriptBuf, Transaction, Txid};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use stint_contracts::{AccountId, L1Effect, SignedTx, MAX_SIGNED_TX_SIZE};
use stint_state::{tagged_hash, Hash};

use crate::{locate_envelopes, EnvelopeKind};

/// Most L1 messages counted in one Bitcoin block.
pub const MAX_L1_MESSAGES_PER_BLOCK: usize = 256;
/// Most signers of a bridge federation.
pub const MAX_BRIDGE_SIGNERS: usize = 15;
/// Smallest allowed `min_deposit`: Bitcoin's dust limit of a P2TR output, in sats.
pub const MIN_MIN_DEPOSIT: u64 = 330;
/// Tag of an L1 message's leaf in a batch's message root.
pub const L1_MESSAGE_TAG: &str = "stint/l1msg";
/// The `OP_RETURN` marker of a deposit tag (shared with the envelope index hint).
pub const DEPOSIT_TAG_MARKER: &[u8; 4] = b"STNT";
/// The kind byte of a deposit tag, `'D'` (envelope kinds are 1–3; a byte of 1–16 would not be
/// a minimal push).
pub const DEPOSIT_TAG_KIND: u8 = b'D';

/// BIP341's provably unspendable internal key ("NUMS": `lift_x(SHA256(G))`).
const NUMS_KEY: [u8; 32] = [
    0x50, 0x92, 0x9b, 0x74, 0xc1, 0xa0, 0x49, 0x54, 0xb7, 0x8b, 0x4b, 0x60, 0x35, 0xe9, 0x7a, 0x5e,
    0x07, 0x8a, 0x5a, 0x0f, 0x28, 0xec, 0x96, 0xd5, 0x47, 0xbf, 0xee, 0x9a, 0xce, 0x80, 0x3a, 0xc0,
];

/// The bridge federation (genesis `bridge`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bridge {
    /// The signers' x-only keys, in the order the bridge script lists them.
    pub signers: Vec<XOnlyPublicKey>,
    /// Signatures a payout needs (`m` of `n`).
    pub threshold: u32,
    /// Smallest credited deposit output, in sats.
    pub min_deposit: u64,
}

/// Why a bridge is not acceptable (see [`Bridge::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// No signers, too many, or the same key twice.
    #[error("bridge signers: {0}")]
    Signers(String),
    /// The threshold is 0 or above the number of signers.
    #[error("bridge threshold {threshold} of {signers} signers")]
    Threshold {
        /// The threshold.
        threshold: u32,
        /// The number of signers.
        signers: usize,
    },
    /// `min_deposit` is below the dust limit.
    #[error("bridge min_deposit {0} is below the dust limit of {MIN_MIN_DEPOSIT} sats")]
    MinDeposit(u64),
}

impl Bridge {
    /// Checks the signer set, the threshold and `min_deposit`.
    pub fn validate(&self) -> Result<(), BridgeError> {
        let n = self.signers.len();
        if n == 0 || n > MAX_BRIDGE_SIGNERS {
            return Err(BridgeError::Signers(format!(
                "{n} signers; between 1 and {MAX_BRIDGE_SIGNERS} are allowed"
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = self
            .signers
            .iter()
            .find(|k| !seen.insert(XOnlyPublicKey::serialize(k)))
        {
            return Err(BridgeError::Signers(format!("{dup} is listed twice")));
        }
        if self.threshold == 0 || self.threshold as usize > n {
            return Err(BridgeError::Threshold {
                threshold: self.threshold,
                signers: n,
            });
        }
        if self.min_deposit < MIN_MIN_DEPOSIT {
            return Err(BridgeError::MinDeposit(self.min_deposit));
        }
        Ok(())
    }

    /// The m-of-n tapscript leaf: `<k1> CHECKSIG <k2> CHECKSIGADD … <m> NUMEQUAL`.
    pub fn leaf_script(&self) -> ScriptBuf {
        let mut builder = Builder::new();
        for (i, key) in self.signers.iter().enumerate() {
            builder = builder.push_x_only_key(key);
            builder = builder.push_opcode(if i == 0 { OP_CHECKSIG } else { OP_CHECKSIGADD });
        }
        builder
            .push_int(i64::from(self.threshold))
            .push_opcode(OP_NUMEQUAL)
            .into_script()
    }

    /// The bridge's output script (P2TR: NUMS internal key, the m-of-n leaf), or `None` for a
    /// bridge that [`Bridge::validate`] refuses.
    pub fn script_pubkey(&self) -> Option<ScriptBuf> {
        let info = self.spend_info()?;
        Some(ScriptBuf::new_p2tr_tweaked(info.output_key()))
    }

    /// The bridge output's taproot tree (NUMS internal key, one leaf), or `None` for a bridge
    /// that [`Bridge::validate`] refuses: what a payout's control block comes from.
    pub fn spend_info(&self) -> Option<bitcoin::taproot::TaprootSpendInfo> {
        self.validate().ok()?;
        let secp = Secp256k1::verification_only();
        let internal = XOnlyPublicKey::from_slice(&NUMS_KEY).ok()?;
        TaprootBuilder::new()
            .add_leaf(0, self.leaf_script())
            .ok()?
            .finalize(&secp, internal)
            .ok()
    }
}

/// The `OP_RETURN "STNT" "D" <account>` output that names a deposit's L2 account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepositTag {
    /// The account to credit.
    pub account: AccountId,
}

impl DepositTag {
    /// The tag's output script (39 bytes).
    pub fn to_script(&self) -> ScriptBuf {
        tag_script(DEPOSIT_TAG_KIND, self.account.0)
    }

    /// Parses a tag strictly: exactly `OP_RETURN`, the marker, the kind and 32 bytes, each a
    /// minimal direct push; anything else is not a tag.
    pub fn from_script(script: &Script) -> Option<Self> {
        tag_payload(script, DEPOSIT_TAG_KIND).map(|account| Self {
            account: AccountId(account),
        })
    }
}

/// The `OP_RETURN "STNT" <kind> <32 bytes>` script of Stint's Bitcoin tags (a deposit's
/// account, a payout's commitment).
pub(crate) fn tag_script(kind: u8, payload: [u8; 32]) -> ScriptBuf {
    Builder::new()
        .push_opcode(OP_RETURN)
        .push_slice(DEPOSIT_TAG_MARKER)
        .push_slice([kind])
        .push_slice(payload)
        .into_script()
}

/// The 32 bytes of a tag of `kind`, parsed strictly: exactly `OP_RETURN`, the marker, the kind
/// and 32 bytes, each a minimal direct push; anything else is not such a tag.
fn tag_payload(script: &Script, kind: u8) -> Option<[u8; 32]> {
    let mut instructions = script.instructions_minimal();
    match instructions.next()? {
        Ok(Instruction::Op(op)) if op == OP_RETURN => {}
        _ => return None,
    }
    let mut push = || match instructions.next() {
        Some(Ok(Instruction::PushBytes(bytes))) => Some(bytes.as_bytes().to_vec()),
        _ => None,
    };
    if push()?.as_slice() != DEPOSIT_TAG_MARKER || push()? != [kind] {
        return None;
    }
    let payload: [u8; 32] = push()?.try_into().ok()?;
    instructions.next().is_none().then_some(payload)
}

/// A credited deposit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Deposit {
    /// The Bitcoin transaction.
    pub txid: [u8; 32],
    /// The output paying the bridge.
    pub vout: u32,
    /// The L2 account credited.
    pub account: AccountId,
    /// The output's value, in sats (= units).
    pub amount: u64,
}

impl Deposit {
    /// The deposit's outpoint.
    pub fn outpoint(&self) -> OutPoint {
        OutPoint {
            txid: Txid::from_byte_array(self.txid),
            vout: self.vout,
        }
    }
}

/// A forced transaction: a signed L2 tx from a kind-3 envelope.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ForcedTx {
    /// The Bitcoin transaction carrying the envelope.
    pub btc_txid: [u8; 32],
    /// The L2 transaction (maybe invalid: execution skips it then).
    pub tx: SignedTx,
}

/// What an L1 message does.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum L1MessageKind {
    /// Credit `amount` to `account`.
    Deposit(Deposit),
    /// Execute a signed L2 tx (skipped with a receipt if invalid).
    Forced(Box<ForcedTx>),
}

/// An L1 message: where it was found and what it does.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct L1Message {
    /// Height of its Bitcoin block.
    pub height: u64,
    /// Its position among the block's messages.
    pub index: u32,
    /// What it does.
    pub kind: L1MessageKind,
}

impl L1Message {
    /// The canonical encoding (borsh).
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    /// Decodes strictly: the whole input, nothing after it.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let message: Self = borsh::from_slice(bytes).map_err(|e| e.to_string())?;
        if let L1MessageKind::Forced(forced) = &message.kind {
            forced
                .tx
                .tx
                .call
                .check_bounds()
                .map_err(|e| e.to_string())?;
        }
        Ok(message)
    }

    /// Its leaf in a batch's message root: `tagged_hash("stint/l1msg", encode())`.
    pub fn leaf(&self) -> Hash {
        tagged_hash(L1_MESSAGE_TAG, &[&self.encode()])
    }

    /// What it asks of the state transition.
    pub fn effect(&self) -> L1Effect<'_> {
        match &self.kind {
            L1MessageKind::Deposit(d) => L1Effect::Credit {
                account: d.account,
                amount: d.amount,
            },
            L1MessageKind::Forced(f) => L1Effect::Forced(&f.tx),
        }
    }
}

/// The state-transition effects of `messages`, in order.
pub fn message_effects(messages: &[L1Message]) -> Vec<L1Effect<'_>> {
    messages.iter().map(L1Message::effect).collect()
}

/// Why an output paying the bridge is not credited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UncreditedReason {
    /// The transaction has no deposit tag.
    NoTag,
    /// The transaction has more than one deposit tag.
    SeveralTags,
    /// The tag's account is not a valid x-only key.
    NotAKey,
    /// The output's value is below `min_deposit`.
    Dust,
    /// The block already holds [`MAX_L1_MESSAGES_PER_BLOCK`] messages.
    BlockFull,
}

impl std::fmt::Display for UncreditedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NoTag => "the transaction names no L2 account (no deposit tag)",
            Self::SeveralTags => "the transaction has more than one deposit tag",
            Self::NotAKey => "the named account is not a valid x-only key",
            Self::Dust => "below min_deposit",
            Self::BlockFull => "the block already holds the most L1 messages one block may carry",
        })
    }
}

/// An output paying the bridge that is not credited, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UncreditedDeposit {
    /// The output.
    pub outpoint: OutPoint,
    /// Its value in sats.
    pub amount: u64,
    /// Why it is not credited.
    pub reason: UncreditedReason,
}

/// What a block carries for the rollup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockMessages {
    /// The messages, in order (at most [`MAX_L1_MESSAGES_PER_BLOCK`]).
    pub messages: Vec<L1Message>,
    /// Outputs paying the bridge that are not credited.
    pub uncredited: Vec<UncreditedDeposit>,
    /// Forced-tx envelopes ignored because the block was full.
    pub ignored_forced: Vec<Txid>,
}

/// The forced txs of `tx`, in input order: kind-3 envelopes whose body decompresses within
/// [`MAX_SIGNED_TX_SIZE`] and decodes strictly as a [`SignedTx`].
pub fn forced_txs_in(tx: &Transaction) -> Vec<SignedTx> {
    locate_envelopes(0, tx)
        .into_iter()
        .filter(|located| located.envelope.kind == EnvelopeKind::ForcedTx)
        .filter_map(|located| {
            let payload = located.envelope.decompress(MAX_SIGNED_TX_SIZE).ok()?;
            SignedTx::decode(&payload).ok()
        })
        .collect()
}

/// The L1 messages of the block at `height` (see the module docs for the rules). `bridge` is
/// the genesis bridge, if any (without one there are no deposits).
pub fn block_messages(block: &Block, height: u64, bridge: Option<&Bridge>) -> BlockMessages {
    let bridge_script = bridge.and_then(|b| Some((b.script_pubkey()?, b.min_deposit)));
    let mut out = BlockMessages::default();
    for tx in &block.txdata {
        let txid = tx.compute_txid();
        for forced in forced_txs_in(tx) {
            if out.messages.len() >= MAX_L1_MESSAGES_PER_BLOCK {
                out.ignored_forced.push(txid);
                continue;
            }
            push(
                &mut out.messages,
                height,
                L1MessageKind::Forced(Box::new(ForcedTx {
                    btc_txid: txid.to_byte_array(),
                    tx: forced,
                })),
            );
        }
        let Some((script, min_deposit)) = &bridge_script else {
            continue;
        };
        // A payout's outputs to the bridge are its change, not payments (issue 16).
        if payout_commitment_of(tx).is_some() {
            continue;
        }
        let paying: Vec<(u32, u64)> = tx
            .output
            .iter()
            .enumerate()
            .filter(|(_, o)| &o.script_pubkey == script)
            .filter_map(|(vout, o)| Some((u32::try_from(vout).ok()?, o.value.to_sat())))
            .collect();
        if paying.is_empty() {
            continue;
        }
        let tags: Vec<DepositTag> = tx
            .output
            .iter()
            .filter_map(|o| DepositTag::from_script(&o.script_pubkey))
            .collect();
        let named = match tags.as_slice() {
            [] => Err(UncreditedReason::NoTag),
            [tag] if tag.account.is_key() => Ok(tag.account),
            [_] => Err(UncreditedReason::NotAKey),
            _ => Err(UncreditedReason::SeveralTags),
        };
        for (vout, amount) in paying {
            let outpoint = OutPoint { txid, vout };
            let credited = named.and_then(|account| {
                if amount < *min_deposit {
                    Err(UncreditedReason::Dust)
                } else if out.messages.len() >= MAX_L1_MESSAGES_PER_BLOCK {
                    Err(UncreditedReason::BlockFull)
                } else {
                    Ok(account)
                }
            });
            match credited {
                Ok(account) => push(
                    &mut out.messages,
                    height,
                    L1MessageKind::Deposit(Deposit {
                        txid: txid.to_byte_array(),
                        vout,
                        account,
                        amount,
                    }),
                ),
                Err(reason) => out.uncredited.push(UncreditedDeposit {
                    outpoint,
                    amount,
                    reason,
                }),
            }
        }
    }
    out
}

/// The commitment of `tx`'s payout tag (`OP_RETURN "STNT" "W" <32 bytes>`, see
/// [`payout_tag`](crate::payout_tag)), if it has exactly one.
pub fn payout_commitment_of(tx: &Transaction) -> Option<Hash> {
    let mut found = tx
        .output
        .iter()
        .filter_map(|o| tag_payload(&o.script_pubkey, crate::PAYOUT_TAG_KIND));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

fn push(messages: &mut Vec<L1Message>, height: u64, kind: L1MessageKind) {
    let index = u32::try_from(messages.len()).unwrap_or(u32::MAX);
    messages.push(L1Message {
        height,
        index,
        kind,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Keypair, SecretKey};
    use bitcoin::{absolute, transaction, Amount, Sequence, TxIn, TxOut, Witness};
    use k256::schnorr::SigningKey;
    use proptest::prelude::*;
    use stint_contracts::{Call, Tx};

    fn xonly(seed: u8) -> XOnlyPublicKey {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(&[seed; 32]).unwrap();
        Keypair::from_secret_key(&secp, &sk).x_only_public_key().0
    }

    fn bridge() -> Bridge {
        Bridge {
            signers: vec![xonly(1), xonly(2), xonly(3)],
            threshold: 2,
            min_deposit: 1_000,
        }
    }

    fn account(seed: u8) -> AccountId {
        AccountId::from_signing_key(&SigningKey::from_bytes(&[seed; 32]).unwrap())
    }

    fn tx(outputs: Vec<TxOut>, witness: Witness) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness,
            }],
            output: outputs,
        }
    }

    fn pay(script: &ScriptBuf, sats: u64) -> TxOut {
        TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: script.clone(),
        }
    }

    fn tag(account: AccountId) -> TxOut {
        pay(&DepositTag { account }.to_script(), 0)
    }

    fn block(txs: Vec<Transaction>) -> Block {
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        Block {
            header: genesis.header,
            txdata: txs,
        }
    }

    /// A witness spending a (pretend) P2TR output through a forced-tx envelope leaf.
    fn forced_witness(payload: &[u8]) -> Witness {
        let envelope = crate::Envelope::new(EnvelopeKind::ForcedTx, xonly(9), payload.to_vec());
        let leaf = envelope.leaf_script().unwrap();
        let secp = Secp256k1::new();
        let info = TaprootBuilder::new()
            .add_leaf(0, leaf.clone())
            .unwrap()
            .finalize(&secp, xonly(8))
            .unwrap();
        let control = info
            .control_block(&(leaf.clone(), bitcoin::taproot::LeafVersion::TapScript))
            .unwrap();
        let mut witness = Witness::new();
        witness.push([0u8; 64]);
        witness.push(leaf.as_bytes());
        witness.push(control.serialize());
        witness
    }

    fn signed(seed: u8, nonce: u64) -> SignedTx {
        let key = SigningKey::from_bytes(&[seed; 32]).unwrap();
        Tx {
            chain_id: 7,
            from: AccountId::from_signing_key(&key),
            nonce,
            fee: 1,
            call: Call::Transfer {
                to: account(2),
                amount: 5,
            },
        }
        .sign(&key)
        .unwrap()
    }

    #[test]
    fn the_bridge_address_is_a_fixed_function_of_its_keys_and_threshold() {
        let b = bridge();
        let script = b.script_pubkey().unwrap();
        assert!(script.is_p2tr());
        assert_eq!(b.script_pubkey().unwrap(), script);
        let mut other = bridge();
        other.threshold = 3;
        assert_ne!(other.script_pubkey().unwrap(), script);
        let mut reordered = bridge();
        reordered.signers.swap(0, 1);
        assert_ne!(reordered.script_pubkey().unwrap(), script);
        // The leaf is the m-of-n tapscript.
        let asm = b.leaf_script().to_asm_string();
        assert!(
            asm.ends_with("OP_CHECKSIGADD OP_PUSHNUM_2 OP_NUMEQUAL"),
            "{asm}"
        );
    }

    #[test]
    fn a_bridge_that_breaks_a_rule_is_refused_and_has_no_address() {
        let cases = [
            Bridge {
                signers: vec![],
                ..bridge()
            },
            Bridge {
                signers: vec![xonly(1), xonly(1)],
                ..bridge()
            },
            Bridge {
                threshold: 0,
                ..bridge()
            },
            Bridge {
                threshold: 4,
                ..bridge()
            },
            Bridge {
                min_deposit: 100,
                ..bridge()
            },
            Bridge {
                signers: (1..=16).map(xonly).collect(),
                threshold: 1,
                min_deposit: 1_000,
            },
        ];
        for case in cases {
            assert!(case.validate().is_err(), "{case:?}");
            assert!(case.script_pubkey().is_none());
        }
    }

    #[test]
    fn a_tagged_payment_to_the_bridge_is_a_deposit_per_output() {
        let b = bridge();
        let script = b.script_pubkey().unwrap();
        let other = ScriptBuf::new_op_return([1u8; 4]);
        let t = tx(
            vec![
                pay(&other, 5_000),
                pay(&script, 2_000),
                tag(account(4)),
                pay(&script, 7_000),
            ],
            Witness::new(),
        );
        let found = block_messages(&block(vec![t.clone()]), 10, Some(&b));
        assert!(found.uncredited.is_empty());
        let deposits: Vec<_> = found
            .messages
            .iter()
            .map(|m| match &m.kind {
                L1MessageKind::Deposit(d) => (m.height, m.index, d.vout, d.account, d.amount),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            deposits,
            vec![(10, 0, 1, account(4), 2_000), (10, 1, 3, account(4), 7_000)]
        );
        // Without a bridge in the genesis there are no deposits.
        assert!(block_messages(&block(vec![t]), 10, None)
            .messages
            .is_empty());
    }

    #[test]
    fn untagged_doubly_tagged_keyless_and_dust_deposits_are_not_credited() {
        let b = bridge();
        let script = b.script_pubkey().unwrap();
        let keyless = AccountId([0xff; 32]);
        assert!(!keyless.is_key());
        let cases = [
            (vec![pay(&script, 5_000)], UncreditedReason::NoTag),
            (
                vec![pay(&script, 5_000), tag(account(1)), tag(account(2))],
                UncreditedReason::SeveralTags,
            ),
            (
                vec![pay(&script, 5_000), tag(keyless)],
                UncreditedReason::NotAKey,
            ),
            (
                vec![pay(&script, 999), tag(account(1))],
                UncreditedReason::Dust,
            ),
        ];
        for (outputs, reason) in cases {
            let found = block_messages(&block(vec![tx(outputs, Witness::new())]), 3, Some(&b));
            assert!(found.messages.is_empty(), "{reason:?}");
            assert_eq!(found.uncredited.len(), 1);
            assert_eq!(found.uncredited[0].reason, reason);
        }
    }

    #[test]
    fn deposit_tags_parse_strictly() {
        let good = DepositTag {
            account: account(3),
        };
        assert_eq!(DepositTag::from_script(&good.to_script()), Some(good));
        let short = Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice(DEPOSIT_TAG_MARKER)
            .push_slice([DEPOSIT_TAG_KIND])
            .push_slice([1u8; 31])
            .into_script();
        let trailing = Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice(DEPOSIT_TAG_MARKER)
            .push_slice([DEPOSIT_TAG_KIND])
            .push_slice([1u8; 32])
            .push_slice([0u8; 1])
            .into_script();
        let wrong_kind = Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice(DEPOSIT_TAG_MARKER)
            .push_slice([b'E'])
            .push_slice([1u8; 32])
            .into_script();
        // A non-minimal push (OP_PUSHDATA1 for 4 bytes) is not a tag either.
        let mut non_minimal = vec![OP_RETURN.to_u8(), 0x4c, 4];
        non_minimal.extend_from_slice(DEPOSIT_TAG_MARKER);
        non_minimal.extend_from_slice(&[1, DEPOSIT_TAG_KIND, 32]);
        non_minimal.extend_from_slice(&[1u8; 32]);
        for bad in [
            short,
            trailing,
            wrong_kind,
            ScriptBuf::from_bytes(non_minimal),
        ] {
            assert_eq!(DepositTag::from_script(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_forced_tx_envelope_is_a_message_and_garbage_is_not() {
        let forced = signed(5, 0);
        let good = tx(vec![], forced_witness(&forced.encode()));
        let garbage = tx(vec![], forced_witness(&[1, 2, 3]));
        let mut trailing_bytes = forced.encode();
        trailing_bytes.push(0);
        let trailing = tx(vec![], forced_witness(&trailing_bytes));
        let found = block_messages(&block(vec![garbage, good.clone(), trailing]), 4, None);
        assert_eq!(found.messages.len(), 1);
        match &found.messages[0].kind {
            L1MessageKind::Forced(f) => {
                assert_eq!(f.tx, forced);
                assert_eq!(f.btc_txid, good.compute_txid().to_byte_array());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_block_counts_at_most_the_message_limit_in_order() {
        let b = bridge();
        let script = b.script_pubkey().unwrap();
        let mut txs: Vec<Transaction> = (0..MAX_L1_MESSAGES_PER_BLOCK as u64)
            .map(|i| {
                tx(
                    vec![pay(&script, 1_000 + i), tag(account(1))],
                    Witness::new(),
                )
            })
            .collect();
        let late_forced = tx(vec![], forced_witness(&signed(5, 0).encode()));
        let late_deposit = tx(vec![pay(&script, 50_000), tag(account(2))], Witness::new());
        txs.push(late_forced.clone());
        txs.push(late_deposit);
        let found = block_messages(&block(txs), 8, Some(&b));
        assert_eq!(found.messages.len(), MAX_L1_MESSAGES_PER_BLOCK);
        for (i, m) in found.messages.iter().enumerate() {
            assert_eq!(m.index as usize, i);
        }
        assert_eq!(found.ignored_forced, vec![late_forced.compute_txid()]);
        assert_eq!(found.uncredited.len(), 1);
        assert_eq!(found.uncredited[0].reason, UncreditedReason::BlockFull);
    }

    proptest! {
        #[test]
        fn messages_round_trip_and_decode_strictly(
            height in any::<u64>(), index in any::<u32>(), vout in any::<u32>(),
            amount in any::<u64>(), txid in any::<[u8; 32]>(), extra in 1usize..4,
        ) {
            let message = L1Message {
                height,
                index,
                kind: L1MessageKind::Deposit(Deposit { txid, vout, account: account(1), amount }),
            };
            let bytes = message.encode();
            prop_assert_eq!(L1Message::decode(&bytes).unwrap(), message.clone());
            let mut longer = bytes.clone();
            longer.extend(std::iter::repeat_n(0u8, extra));
            prop_assert!(L1Message::decode(&longer).is_err());
            prop_assert!(L1Message::decode(&bytes[..bytes.len() - 1]).is_err());
            let forced = L1Message { height, index, kind: L1MessageKind::Forced(Box::new(ForcedTx { btc_txid: txid, tx: signed(3, u64::from(index)) })) };
            prop_assert_eq!(L1Message::decode(&forced.encode()).unwrap(), forced.clone());
            prop_assert_ne!(forced.leaf(), message.leaf());
        }
    }
}
