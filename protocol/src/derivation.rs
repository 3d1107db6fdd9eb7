//! Derivation: the canonical chain of batches, computed from Bitcoin blocks alone.
//!
//! [`Derivation`] is a pure state machine. The caller feeds it Bitcoin blocks in chain order with
//! [`Derivation::connect_block`] and takes them back, newest first, with
//! [`Derivation::disconnect_block`] on a reorg (of any depth). Every call returns the
//! [`DerivationEvent`]s it caused; the same blocks give the same chain and events on every node.
//!
//! # Rules
//! - **Start.** The first block connected is the genesis `l1_start_height` and must have hash
//!   `l1_start_hash`; each next block must be the child of the previous one. Blocks are scanned in
//!   transaction order, then input order ([`find_block_envelopes`]).
//! - **Batches.** A batch envelope counts only if it is the anchor key's (protocol v2). Checked in
//!   this order, all before anything is decompressed: its kind; its leaf key is the genesis
//!   `anchor_key` (a cheap filter only: Bitcoin does not run the leaf of a spend that is not a real
//!   P2TR output, so the leaf proves nothing); its [`AnchorAuth`] is a valid BIP340 signature of
//!   the genesis `anchor_key` over (genesis hash, kind, header hash). Envelopes failing any of
//!   these are ignored silently, like any stranger's data. Only then is the body decompressed
//!   (frame rules of the envelope module, content size ≤ genesis `max_batch_bytes`), decoded
//!   ([`Batch::decode`]), and its header hash must be the signed one. It is *anchored* when it
//!   passes
//!   [`Batch::check`] against the current canonical tip (genesis before batch 1) with the
//!   anchoring block as L1 context: number = tip + 1, parent hash, `prev_state_root`, timestamps,
//!   L1 origin (a block this derivation has seen, strictly below the anchoring block, at or above
//!   the tip's origin), `tx_root`/`tx_count`, checkpoints/`trace_root`, limits. Anything else is
//!   ignored (reported as [`DerivationEvent::BatchRejected`]). State roots are not checked here.
//! - **Challenges.** A challenge envelope (any key) carries a [`FraudProof`] (content size ≤
//!   [`MAX_FRAUD_PROOF_BYTES`]). It is *valid* when it decodes, its target (`batch_number`, `batch_hash`) is a canonical batch, it is anchored at
//!   a height `< target.anchor.height + W`, and the [`Judge`] finds fraud. A valid challenge
//!   *invalidates* the target and all its descendants: they leave the canonical chain, whose tip
//!   goes back to the target's parent, so a re-executed batch with the same number can link next.
//!   Invalid challenges change nothing (reported as [`DerivationEvent::ChallengeRejected`]) and
//!   leave no trace: derivation keeps only accepted challenges ([`Derivation::challenges`]), so
//!   an attacker cannot grow a node's memory by posting rejected ones.
//! - **Finality.** A canonical batch is *final* once the L1 tip height is `>= anchor.height + W`.
//!   No challenge can then be valid against it (its window is closed) and none can be against an
//!   ancestor (ancestors are anchored no later). Canonical batches never have an invalidated
//!   ancestor.
//! - **Derived batches (protocol v3).** After a block's envelopes, if the oldest L1 message no
//!   canonical batch executed is past the sequencing window (no batch anchored from here on could
//!   leave it out), derivation pushes a *derived* batch ([`DerivationEvent::BatchDerived`],
//!   [`BatchHeader::is_derived`]) that executes just the messages its origin (`height − S`)
//!   newly covers; its state is computed by every node. The next posted batch restates the
//!   derived batches above the last posted one ([`Derivation::next_batch`]): it starts from that
//!   batch's root, executes their messages first with a checkpoint at each one's end, so their
//!   roots become its claims. A challenge against a derived batch is rejected.
//! - **The bridge's coins (issue 16).** Every output paying the bridge script is a bridge
//!   coin, credited or not; an input spending one removes it. A transaction that spends bridge
//!   coins and carries a payout tag is a payout ([`DerivationEvent::PayoutConfirmed`],
//!   [`Derivation::payouts`]); one without a tag is reported
//!   ([`DerivationEvent::BridgeSpentWithoutPayout`]). A payout's own outputs to the bridge are its
//!   change, not deposits. [`Derivation::bridge_utxos`] is what the next payout may spend.
//! - **Reorgs.** Each block keeps an undo log of what it did; disconnecting it undoes exactly that,
//!   in reverse: batches it anchored leave the chain ([`DerivationEvent::BatchUnanchored`]; they
//!   can be anchored again later, with a fresh window), accepted challenges it carried are
//!   forgotten ([`DerivationEvent::ChallengeRemoved`]) and the batches they invalidated come back
//!   ([`DerivationEvent::BatchReinstated`]), and batches whose
//!   finality depended on its height are no longer final ([`DerivationEvent::BatchUnfinalized`]).
//!
//! Memory grows by a constant per block (hash, time, undo log) plus the header and checkpoints of
//! each anchored batch; transactions are handed out in events and not kept.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash as _;
use bitcoin::{Block, BlockHash, OutPoint, Txid};
use stint_contracts::AccountId;
use stint_state::Hash;

use crate::{
    block_messages, find_block_envelopes, message_root, payout_commitment_of, tx_root, AnchorAuth,
    Batch, BatchHeader, Bridge, BridgeUtxo, Checked, Checkpoint, DerivedSpan, EnvelopeKind,
    FraudProof, Genesis, Judge, L1BlockInfo, L1Chain, L1Message, L1Origin, LocatedEnvelope,
    ParentFacts, Verdict, BATCH_VERSION, MAX_FRAUD_PROOF_BYTES, MAX_L1_MESSAGES_PER_BLOCK,
};

/// The most L1 messages one derived batch executes (16 full blocks): a backlog (after a valid
/// challenge sent the tip back, say) is worked off one derived batch per block, each covering
/// whole blocks.
pub const MAX_DERIVED_MESSAGES: usize = MAX_L1_MESSAGES_PER_BLOCK * 16;

/// What the next batch on the canonical chain must be (see [`Derivation::next_batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextBatch {
    /// What it links to. Above derived batches, `state_root` is the last posted batch's (or
    /// the genesis) root: the root the next batch restates them from.
    pub parent: ParentFacts,
    /// The L1 origin height its messages are counted from: the last posted batch's (or the
    /// genesis start), so the messages of the derived batches above it come first.
    pub message_origin_height: u64,
    /// The derived batches it restates, oldest first.
    pub spans: Vec<DerivedSpan>,
}

/// Where a batch is anchored on Bitcoin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// Height of the anchoring block.
    pub height: u64,
    /// Hash of the anchoring block.
    pub block_hash: BlockHash,
    /// The reveal transaction that carries the batch.
    pub btc_txid: Txid,
}

/// A batch as derivation keeps it: header, checkpoints and anchor (no txs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    /// The header.
    pub header: BatchHeader,
    /// The header hash.
    pub hash: Hash,
    /// The checkpoints (checkpoint 1 first).
    pub checkpoints: Vec<Checkpoint>,
    /// Where it is anchored.
    pub anchor: Anchor,
}

/// The status of a batch known to derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchStatus {
    /// Canonical, in its dispute window.
    Anchored,
    /// Canonical, window passed without a valid challenge.
    Final,
    /// Removed by a valid challenge (against it or an ancestor).
    Invalidated,
}

/// A batch removed from the canonical chain by a valid challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidatedBatch {
    /// The batch.
    pub record: BatchRecord,
    /// The challenge transaction that removed it (or its ancestor).
    pub by: Txid,
}

/// The outcome of a challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeOutcome {
    /// Valid: the target and its descendants were invalidated.
    Accepted {
        /// The fraud the judge found.
        reason: String,
    },
    /// Not valid; nothing changed.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// An accepted challenge, as derivation keeps it (rejected ones are only reported as events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// The reveal transaction carrying it.
    pub btc_txid: Txid,
    /// Height of its block.
    pub height: u64,
    /// Targeted batch number and hash, if the proof decoded.
    pub target: Option<(u64, Hash)>,
    /// The challenger's L2 account, if the proof decoded.
    pub challenger: Option<AccountId>,
    /// Always [`ChallengeOutcome::Accepted`] for records derivation keeps.
    pub outcome: ChallengeOutcome,
}

/// Something derivation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DerivationEvent {
    /// A batch joined the canonical chain. Carries the full batch (txs included).
    BatchAnchored {
        /// The batch.
        batch: Box<Batch<Checked>>,
        /// Where it is anchored.
        anchor: Anchor,
    },
    /// No batch executed the L1 messages due within the sequencing window: every node derived
    /// this batch, which executes just those messages (see the module docs). Its state root is
    /// the caller's to compute (the header claims none).
    BatchDerived {
        /// The record (no checkpoints; anchored at the block that derived it, with an all-zero
        /// txid).
        record: Box<BatchRecord>,
        /// The messages it executes, in order.
        messages: Vec<L1Message>,
    },
    /// An output of this block pays the bridge but is not a deposit any batch credits (no valid
    /// tag, below `min_deposit`, the block's message limit reached): its bitcoin stays in the
    /// bridge's UTXO set (see docs/decisions.md for what the federation does with it).
    DepositNotCredited {
        /// The block's height.
        height: u64,
        /// The output, its value and why.
        deposit: crate::UncreditedDeposit,
    },
    /// A payout of the bridge confirmed (issue 16): it spends bridge outputs and commits to the
    /// withdrawals it pays.
    PayoutConfirmed {
        /// The payout transaction.
        txid: Txid,
        /// Its block's height.
        height: u64,
        /// [`payout_commitment`](crate::payout_commitment) of the withdrawal ids it pays.
        commitment: Hash,
    },
    /// A reorg removed a confirmed payout.
    PayoutRemoved {
        /// The payout transaction.
        txid: Txid,
    },
    /// A transaction spent bridge outputs without a payout tag (m signers signed something that
    /// is not a payout: the federation is not behaving as the protocol says).
    BridgeSpentWithoutPayout {
        /// The transaction.
        txid: Txid,
        /// Its block's height.
        height: u64,
    },
    /// An envelope under the anchor key was not accepted.
    BatchRejected {
        /// The reveal transaction.
        btc_txid: Txid,
        /// Why.
        reason: String,
    },
    /// A reorg removed the block that anchored this batch; it left the canonical chain.
    BatchUnanchored {
        /// Its number.
        number: u64,
        /// Its hash.
        hash: Hash,
    },
    /// A batch's dispute window passed.
    BatchFinal {
        /// Its number.
        number: u64,
        /// Its hash.
        hash: Hash,
    },
    /// A reorg lowered the L1 tip below a batch's finality height.
    BatchUnfinalized {
        /// Its number.
        number: u64,
        /// Its hash.
        hash: Hash,
    },
    /// A valid challenge removed this batch (the target or a descendant).
    BatchInvalidated {
        /// Its number.
        number: u64,
        /// Its hash.
        hash: Hash,
        /// The challenge transaction.
        by: Txid,
    },
    /// A reorg removed the challenge that invalidated this batch; it is canonical again.
    BatchReinstated {
        /// Its number.
        number: u64,
        /// Its hash.
        hash: Hash,
    },
    /// A challenge was valid.
    ChallengeAccepted {
        /// The challenge transaction.
        btc_txid: Txid,
        /// Target batch number.
        batch: u64,
        /// Target batch hash.
        batch_hash: Hash,
        /// The fraud found.
        reason: String,
    },
    /// A challenge was not valid.
    ChallengeRejected {
        /// The challenge transaction.
        btc_txid: Txid,
        /// Target number and hash, if the proof decoded.
        target: Option<(u64, Hash)>,
        /// Why.
        reason: String,
    },
    /// A reorg removed an accepted challenge (rejected ones are not remembered, so a reorg
    /// removing one reports nothing).
    ChallengeRemoved {
        /// The challenge transaction.
        btc_txid: Txid,
    },
}

/// A call the caller should not have made (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerivationError {
    /// The block is not at the next height.
    #[error("expected a block at height {expected}, got {got}")]
    UnexpectedHeight {
        /// The next height.
        expected: u64,
        /// The height given.
        got: u64,
    },
    /// The first block is not the genesis start block.
    #[error("block {got} at the start height is not the genesis start block {expected}")]
    WrongStartBlock {
        /// The genesis `l1_start_hash`.
        expected: BlockHash,
        /// The block given.
        got: BlockHash,
    },
    /// The block does not build on the current tip.
    #[error("block {block} does not build on the tip {tip}")]
    NotChild {
        /// The block given.
        block: BlockHash,
        /// The current tip.
        tip: BlockHash,
    },
    /// The block to disconnect is not the current tip.
    #[error("cannot disconnect {height}/{hash}: it is not the tip")]
    NotTip {
        /// Height given.
        height: u64,
        /// Hash given.
        hash: BlockHash,
    },
}

/// What one block did, to undo it.
#[derive(Clone, Debug)]
enum Undo {
    /// A batch was pushed onto the canonical chain.
    Anchored,
    /// A challenge was accepted and recorded: `invalidated` batches moved from the canonical
    /// chain to the end of the invalidated list.
    Challenge { invalidated: usize },
}

#[derive(Clone, Debug)]
struct BlockRecord {
    hash: BlockHash,
    time: u64,
    undo: Vec<Undo>,
    /// The block's L1 messages (protocol v2; none at or below the start height).
    messages: Vec<L1Message>,
    /// What the block did to the bridge's coins, in order (undone in reverse).
    bridge: Vec<BridgeOp>,
    /// The payouts it confirmed.
    payouts: Vec<PayoutRecord>,
}

/// One change to the bridge's coins.
#[derive(Clone, Copy, Debug)]
enum BridgeOp {
    /// An output paying the bridge script appeared.
    Created(OutPoint),
    /// A bridge output was spent; its value, to put it back on a reorg.
    Spent(BridgeUtxo),
}

/// A payout of the bridge confirmed on Bitcoin: a transaction that spends bridge outputs and
/// carries a payout tag (see [`payout_tag`](crate::payout_tag)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutRecord {
    /// The payout transaction.
    pub txid: Txid,
    /// Height of its block.
    pub height: u64,
    /// The withdrawals it pays: [`payout_commitment`](crate::payout_commitment) of their ids.
    pub commitment: Hash,
    /// The bridge outputs it spent.
    pub spent: Vec<BridgeUtxo>,
}

/// The derivation state machine (see the module docs).
#[derive(Clone, Debug)]
pub struct Derivation {
    genesis: Genesis,
    genesis_hash: Hash,
    genesis_parent: ParentFacts,
    blocks: Vec<BlockRecord>,
    canonical: Vec<BatchRecord>,
    invalidated: Vec<InvalidatedBatch>,
    challenges: Vec<ChallengeRecord>,
    /// The bridge's unspent outputs (issue 16): every output paying the bridge script, credited
    /// or not, that no connected block spent.
    bridge_utxos: BTreeMap<OutPoint, u64>,
    /// The bridge's output script (`None` without a bridge).
    bridge_script: Option<bitcoin::ScriptBuf>,
}

struct AnchorContext<'a> {
    blocks: &'a [BlockRecord],
    start: u64,
    anchor_height: u64,
}

impl L1Chain for AnchorContext<'_> {
    fn anchor_height(&self) -> u64 {
        self.anchor_height
    }

    fn block_at(&self, height: u64) -> Option<L1BlockInfo> {
        let index = usize::try_from(height.checked_sub(self.start)?).ok()?;
        self.blocks.get(index).map(|b| L1BlockInfo {
            hash: b.hash.to_byte_array(),
            time: b.time,
        })
    }
}

impl Derivation {
    /// A derivation that has seen no block yet. `genesis_state_root` is the root of the genesis
    /// state (see [`Genesis::state_root`]).
    pub fn new(genesis: Genesis, genesis_state_root: Hash) -> Self {
        let genesis_parent = ParentFacts::genesis(&genesis, genesis_state_root);
        let genesis_bridge_script = genesis.bridge.as_ref().and_then(Bridge::script_pubkey);
        Self {
            genesis_hash: genesis_parent.hash,
            genesis,
            genesis_parent,
            blocks: Vec::new(),
            canonical: Vec::new(),
            invalidated: Vec::new(),
            challenges: Vec::new(),
            bridge_utxos: BTreeMap::new(),
            bridge_script: genesis_bridge_script,
        }
    }

    /// The bridge's unspent outputs as the connected blocks leave them, in outpoint order (what
    /// a payout may spend: [`build_payout`](crate::build_payout)).
    pub fn bridge_utxos(&self) -> Vec<BridgeUtxo> {
        self.bridge_utxos
            .iter()
            .map(|(outpoint, value)| BridgeUtxo {
                outpoint: *outpoint,
                value: *value,
            })
            .collect()
    }

    /// The sats the bridge holds on the connected chain.
    pub fn bridge_balance(&self) -> u64 {
        self.bridge_utxos
            .values()
            .fold(0u64, |sum, v| sum.saturating_add(*v))
    }

    /// Every payout confirmed on the connected chain, oldest first.
    pub fn payouts(&self) -> impl Iterator<Item = &PayoutRecord> {
        self.blocks.iter().flat_map(|b| b.payouts.iter())
    }

    /// The confirmed payout that commits to `commitment`, if any (the first one).
    pub fn payout_by_commitment(&self, commitment: &Hash) -> Option<&PayoutRecord> {
        self.payouts().find(|p| &p.commitment == commitment)
    }

    /// Apply `block`'s effect on the bridge's coins: per transaction, its inputs spend bridge
    /// outputs, then its outputs to the bridge script create new ones; a transaction that spends
    /// bridge outputs and carries a payout tag is a payout.
    fn connect_bridge(
        &mut self,
        block: &Block,
        height: u64,
        events: &mut Vec<DerivationEvent>,
    ) -> (Vec<BridgeOp>, Vec<PayoutRecord>) {
        let mut ops = Vec::new();
        let mut payouts = Vec::new();
        let Some(script) = self.bridge_script.clone() else {
            return (ops, payouts);
        };
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            let mut spent = Vec::new();
            for input in &tx.input {
                if let Some(value) = self.bridge_utxos.remove(&input.previous_output) {
                    let utxo = BridgeUtxo {
                        outpoint: input.previous_output,
                        value,
                    };
                    ops.push(BridgeOp::Spent(utxo));
                    spent.push(utxo);
                }
            }
            for (vout, output) in tx.output.iter().enumerate() {
                if output.script_pubkey != script {
                    continue;
                }
                let Ok(vout) = u32::try_from(vout) else {
                    continue;
                };
                let outpoint = OutPoint { txid, vout };
                self.bridge_utxos.insert(outpoint, output.value.to_sat());
                ops.push(BridgeOp::Created(outpoint));
            }
            if spent.is_empty() {
                continue;
            }
            match payout_commitment_of(tx) {
                Some(commitment) => {
                    events.push(DerivationEvent::PayoutConfirmed {
                        txid,
                        height,
                        commitment,
                    });
                    payouts.push(PayoutRecord {
                        txid,
                        height,
                        commitment,
                        spent,
                    });
                }
                None => events.push(DerivationEvent::BridgeSpentWithoutPayout { txid, height }),
            }
        }
        (ops, payouts)
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The last connected block, if any.
    pub fn l1_tip(&self) -> Option<(u64, BlockHash)> {
        let last = self.blocks.last()?;
        let height = self
            .genesis
            .l1_start_height
            .checked_add(self.blocks.len().checked_sub(1)? as u64)?;
        Some((height, last.hash))
    }

    /// The height the next connected block must have.
    pub fn next_height(&self) -> u64 {
        self.genesis
            .l1_start_height
            .saturating_add(self.blocks.len() as u64)
    }

    /// The canonical batches, batch 1 first.
    pub fn canonical(&self) -> &[BatchRecord] {
        &self.canonical
    }

    /// The canonical tip batch, or `None` when the chain is at genesis.
    pub fn tip(&self) -> Option<&BatchRecord> {
        self.canonical.last()
    }

    /// What the next batch must link to ([`next_batch`](Self::next_batch)'s parent).
    pub fn tip_facts(&self) -> ParentFacts {
        self.next_after(self.canonical.len()).parent
    }

    /// What the next batch on the canonical chain must be: its parent, where its L1 messages
    /// start and the derived batches it restates.
    pub fn next_batch(&self) -> NextBatch {
        self.next_after(self.canonical.len())
    }

    /// [`next_batch`](Self::next_batch) on the first `len` canonical batches.
    fn next_after(&self, len: usize) -> NextBatch {
        let prefix = self.canonical.get(..len).unwrap_or(&self.canonical);
        let Some(last) = prefix.last() else {
            return NextBatch {
                parent: self.genesis_parent,
                message_origin_height: self.genesis_parent.l1_origin_height,
                spans: Vec::new(),
            };
        };
        let mut parent = ParentFacts::of(&last.header);
        let derived = prefix
            .iter()
            .rev()
            .take_while(|r| r.header.is_derived())
            .count();
        let first_derived = prefix.len().saturating_sub(derived);
        let base = first_derived
            .checked_sub(1)
            .and_then(|i| prefix.get(i))
            .map_or(self.genesis_parent.l1_origin_height, |r| {
                r.header.l1_origin.height
            });
        let mut spans = Vec::with_capacity(derived);
        let mut msg_end: u32 = 0;
        for record in prefix.get(first_derived..).unwrap_or(&[]) {
            msg_end = msg_end.saturating_add(record.header.msg_count);
            spans.push(DerivedSpan {
                number: record.header.number,
                msg_end,
                timestamp: record.header.timestamp,
            });
        }
        if last.header.is_derived() {
            // A derived batch's `prev_state_root` is the root it is restated from.
            parent.state_root = last.header.prev_state_root;
        }
        NextBatch {
            parent,
            message_origin_height: base,
            spans,
        }
    }

    /// The derived batches canonical batch `number` restates (empty for a derived or unknown
    /// batch, or one whose parent is posted).
    pub fn batch_spans(&self, number: u64) -> Vec<DerivedSpan> {
        match self.batch(number) {
            Some((record, _)) if !record.header.is_derived() => {
                let before = usize::try_from(number.saturating_sub(1)).unwrap_or(usize::MAX);
                self.next_after(before).spans
            }
            _ => Vec::new(),
        }
    }

    /// The newest final canonical batch.
    pub fn final_tip(&self) -> Option<&BatchRecord> {
        self.canonical.iter().rev().find(|r| self.is_final(r))
    }

    /// The canonical batch `number`, with its status.
    pub fn batch(&self, number: u64) -> Option<(&BatchRecord, BatchStatus)> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        let record = self.canonical.get(index)?;
        Some((record, self.status_of(record)))
    }

    /// A batch by hash, canonical or invalidated, with its status.
    pub fn batch_by_hash(&self, hash: &Hash) -> Option<(&BatchRecord, BatchStatus)> {
        if let Some(record) = self.canonical.iter().rev().find(|r| &r.hash == hash) {
            return Some((record, self.status_of(record)));
        }
        self.invalidated
            .iter()
            .rev()
            .find(|i| &i.record.hash == hash)
            .map(|i| (&i.record, BatchStatus::Invalidated))
    }

    /// Batches removed by valid challenges, oldest removal first.
    pub fn invalidated(&self) -> &[InvalidatedBatch] {
        &self.invalidated
    }

    /// The connected block at `height`: its hash and header time.
    pub fn l1_block(&self, height: u64) -> Option<(BlockHash, u64)> {
        let index = usize::try_from(height.checked_sub(self.genesis.l1_start_height)?).ok()?;
        self.blocks.get(index).map(|b| (b.hash, b.time))
    }

    /// The L1 messages of the connected blocks at heights in `(after, up_to]`, in order (a
    /// batch executes those between two [message horizons](Genesis::message_horizon): see
    /// [`messages_due`](Self::messages_due)).
    pub fn l1_messages(&self, after: u64, up_to: u64) -> impl Iterator<Item = &L1Message> {
        let start = self.genesis.l1_start_height;
        let first = after.saturating_add(1).saturating_sub(start);
        let end = up_to.saturating_add(1).saturating_sub(start);
        let first = usize::try_from(first).unwrap_or(usize::MAX);
        let end = usize::try_from(end)
            .unwrap_or(usize::MAX)
            .min(self.blocks.len());
        self.blocks
            .get(first.min(end)..end)
            .unwrap_or(&[])
            .iter()
            .flat_map(|b| b.messages.iter())
    }

    /// The L1 messages no canonical batch has executed yet (those after the canonical tip's
    /// [message horizon](Genesis::message_horizon)), oldest first.
    pub fn pending_l1_messages(&self) -> impl Iterator<Item = &L1Message> {
        let after = self
            .genesis
            .message_horizon(self.tip_facts().l1_origin_height);
        self.l1_messages(after, u64::MAX)
    }

    /// The L1 messages a batch with L1 origin height `origin_height` extending a parent with
    /// origin height `parent_origin_height` must execute (protocol v3): those of the blocks
    /// after the parent's [message horizon](Genesis::message_horizon) up to its own, in order.
    /// Empty when the origin is not above the parent's.
    pub fn messages_due(&self, parent_origin_height: u64, origin_height: u64) -> Vec<L1Message> {
        self.genesis
            .message_blocks(parent_origin_height, origin_height)
            .map_or_else(Vec::new, |(after, up_to)| {
                self.l1_messages(after, up_to).cloned().collect()
            })
    }

    /// The L1 messages canonical batch `number` executes (empty for an unknown batch): a
    /// posted batch's start with those of the derived batches it restates.
    pub fn batch_messages(&self, number: u64) -> Vec<L1Message> {
        let Some((record, _)) = self.batch(number) else {
            return Vec::new();
        };
        let before = usize::try_from(number.saturating_sub(1)).unwrap_or(usize::MAX);
        let next = self.next_after(before);
        let from = if record.header.is_derived() {
            next.parent.l1_origin_height
        } else {
            next.message_origin_height
        };
        self.messages_due(from, record.header.l1_origin.height)
    }

    /// Whether `batch` would join the canonical chain if its envelope were in the next block:
    /// the structural checks of [`Batch::check`] against the current tip, with the next height
    /// as anchoring block. A sequencer asks this before it (re)posts a batch; `Err` carries the
    /// reason derivation would give. Authorship and envelope framing are not part of it.
    pub fn precheck(&self, batch: &Batch) -> Result<(), String> {
        let context = AnchorContext {
            blocks: &self.blocks,
            start: self.genesis.l1_start_height,
            anchor_height: self.next_height(),
        };
        let next = self.next_batch();
        let due = self.messages_due(next.message_origin_height, batch.header().l1_origin.height);
        batch
            .clone()
            .check_restating(&self.genesis, &next.parent, &context, &due, &next.spans)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Every accepted challenge on the current L1 chain, in order (rejected challenges are
    /// reported as [`DerivationEvent::ChallengeRejected`] and not kept).
    pub fn challenges(&self) -> &[ChallengeRecord] {
        &self.challenges
    }

    /// Whether a canonical batch is final at the current L1 tip.
    pub fn is_final(&self, record: &BatchRecord) -> bool {
        let Some((tip, _)) = self.l1_tip() else {
            return false;
        };
        record
            .anchor
            .height
            .checked_add(self.genesis.dispute_window)
            .is_some_and(|final_at| tip >= final_at)
    }

    /// The canonical batches that become final exactly at L1 height `height` (anchored at
    /// `height - W`). Anchor heights never decrease along the canonical chain.
    fn final_at(&self, height: u64) -> &[BatchRecord] {
        let Some(anchored) = height.checked_sub(self.genesis.dispute_window) else {
            return &[];
        };
        let start = self
            .canonical
            .partition_point(|r| r.anchor.height < anchored);
        let end = self
            .canonical
            .partition_point(|r| r.anchor.height <= anchored);
        self.canonical.get(start..end).unwrap_or(&[])
    }

    fn status_of(&self, record: &BatchRecord) -> BatchStatus {
        if self.is_final(record) {
            BatchStatus::Final
        } else {
            BatchStatus::Anchored
        }
    }

    /// Process the next block. On error nothing changes.
    pub fn connect_block(
        &mut self,
        height: u64,
        block: &Block,
    ) -> Result<Vec<DerivationEvent>, DerivationError> {
        let expected = self.next_height();
        if height != expected {
            return Err(DerivationError::UnexpectedHeight {
                expected,
                got: height,
            });
        }
        let hash = block.block_hash();
        match self.blocks.last() {
            None if hash != self.genesis.l1_start_hash => {
                return Err(DerivationError::WrongStartBlock {
                    expected: self.genesis.l1_start_hash,
                    got: hash,
                });
            }
            Some(tip) if block.header.prev_blockhash != tip.hash => {
                return Err(DerivationError::NotChild {
                    block: hash,
                    tip: tip.hash,
                });
            }
            _ => {}
        }
        let (messages, uncredited) = if height > self.genesis.l1_start_height {
            let found = block_messages(block, height, self.genesis.bridge.as_ref());
            (found.messages, found.uncredited)
        } else {
            (Vec::new(), Vec::new())
        };
        self.blocks.push(BlockRecord {
            hash,
            time: u64::from(block.header.time),
            undo: Vec::new(),
            messages,
            bridge: Vec::new(),
            payouts: Vec::new(),
        });

        // Payments to the bridge that no batch will credit are reported, never dropped silently.
        let mut events: Vec<DerivationEvent> = uncredited
            .into_iter()
            .map(|deposit| DerivationEvent::DepositNotCredited { height, deposit })
            .collect();
        let mut undo = Vec::new();
        for located in find_block_envelopes(block) {
            match located.envelope.kind {
                EnvelopeKind::Batch => {
                    // Cheap checks first, nothing decompressed: the leaf key (a filter) and
                    // the anchor signature (the proof of authorship).
                    let Some(auth) = self.authenticated(&located) else {
                        continue;
                    };
                    let anchor = Anchor {
                        height,
                        block_hash: hash,
                        btc_txid: located.txid,
                    };
                    match self.accept_batch(&located, &auth, anchor) {
                        Ok(batch) => {
                            undo.push(Undo::Anchored);
                            events.push(DerivationEvent::BatchAnchored {
                                batch: Box::new(batch),
                                anchor,
                            });
                        }
                        Err(reason) => events.push(DerivationEvent::BatchRejected {
                            btc_txid: located.txid,
                            reason,
                        }),
                    }
                }
                EnvelopeKind::Challenge => {
                    if let Some(invalidated) = self.process_challenge(&located, height, &mut events)
                    {
                        undo.push(Undo::Challenge { invalidated });
                    }
                }
                // Collected with the block's other L1 messages above.
                EnvelopeKind::ForcedTx => {}
            }
        }

        if let Some((record, messages)) = self.derive_if_due(height, hash) {
            undo.push(Undo::Anchored);
            events.push(DerivationEvent::BatchDerived {
                record: Box::new(record),
                messages,
            });
        }

        // Batches whose window closes with this block become final.
        for record in self.final_at(height) {
            events.push(DerivationEvent::BatchFinal {
                number: record.header.number,
                hash: record.hash,
            });
        }
        let (bridge, payouts) = if height > self.genesis.l1_start_height {
            self.connect_bridge(block, height, &mut events)
        } else {
            (Vec::new(), Vec::new())
        };
        if let Some(last) = self.blocks.last_mut() {
            last.undo = undo;
            last.bridge = bridge;
            last.payouts = payouts;
        }
        Ok(events)
    }

    /// Derive a batch at block `height` if the oldest pending L1 message is past the sequencing
    /// window: no batch anchored from here on could leave it out, so none was going to execute
    /// it in time. The derived batch takes the lowest origin a batch anchored at `height` may
    /// have (`height − S`) and executes the messages it covers (whole blocks, at most
    /// [`MAX_DERIVED_MESSAGES`]). Pushes it on the canonical chain.
    fn derive_if_due(
        &mut self,
        height: u64,
        block: BlockHash,
    ) -> Option<(BatchRecord, Vec<L1Message>)> {
        let next = self.next_batch();
        let tip = next.parent;
        let after = self.genesis.message_horizon(tip.l1_origin_height);
        let oldest = self.l1_messages(after, u64::MAX).next()?.height;
        let mut origin = height.checked_sub(self.genesis.sequencing_window)?;
        if origin <= tip.l1_origin_height || self.genesis.message_horizon(origin) < oldest {
            return None;
        }
        let mut due = self.messages_due(tip.l1_origin_height, origin);
        if let Some(first_left_out) = due.get(MAX_DERIVED_MESSAGES).map(|m| m.height) {
            // Cover the blocks before the first one that does not fit: horizon(o) = h − 1.
            origin = first_left_out
                .saturating_add(self.genesis.l1_confirmations.max(1))
                .saturating_sub(2);
            due = self.messages_due(tip.l1_origin_height, origin);
        }
        if due.is_empty() || due.len() > MAX_DERIVED_MESSAGES {
            return None;
        }
        let (origin_hash, origin_time) = self.l1_block(origin)?;
        let header = BatchHeader {
            version: BATCH_VERSION,
            chain_id: self.genesis.chain_id,
            number: tip.number.saturating_add(1),
            parent: tip.hash,
            timestamp: tip.timestamp.max(origin_time),
            l1_origin: L1Origin {
                height: origin,
                hash: origin_hash.to_byte_array(),
            },
            prev_state_root: tip.state_root,
            state_root: [0; 32],
            tx_root: tx_root(&[]),
            trace_root: [0; 32],
            tx_count: 0,
            msg_root: message_root(&due),
            msg_count: u32::try_from(due.len()).ok()?,
        };
        let record = BatchRecord {
            hash: header.hash(),
            header,
            checkpoints: Vec::new(),
            anchor: Anchor {
                height,
                block_hash: block,
                btc_txid: Txid::all_zeros(),
            },
        };
        self.canonical.push(record.clone());
        Some((record, due))
    }

    /// The auth of a batch envelope if it is the anchor key's: leaf key equal to the anchor
    /// key (a cheap filter) and a valid signature for this genesis. `None`: not ours, ignore.
    fn authenticated(&self, located: &LocatedEnvelope) -> Option<AnchorAuth> {
        let envelope = &located.envelope;
        if envelope.key != self.genesis.anchor_key {
            return None;
        }
        let auth = envelope.auth?;
        auth.verify_with(
            &self.genesis.anchor_key,
            &self.genesis_hash,
            EnvelopeKind::Batch,
        )
        .then_some(auth)
    }

    /// Decompress, decode and check an authenticated batch envelope against the tip; push it on
    /// success.
    fn accept_batch(
        &mut self,
        located: &LocatedEnvelope,
        auth: &AnchorAuth,
        anchor: Anchor,
    ) -> Result<Batch<Checked>, String> {
        let max = usize::try_from(self.genesis.max_batch_bytes).unwrap_or(usize::MAX);
        let payload = located
            .envelope
            .decompress(max)
            .map_err(|e| format!("envelope body: {e}"))?;
        let batch = Batch::decode(&payload).map_err(|e| e.to_string())?;
        if batch.hash() != auth.header_hash {
            return Err("the batch header is not the one the anchor key signed".into());
        }
        let next = self.next_batch();
        let context = AnchorContext {
            blocks: &self.blocks,
            start: self.genesis.l1_start_height,
            anchor_height: anchor.height,
        };
        let due = self.messages_due(next.message_origin_height, batch.header().l1_origin.height);
        let checked = batch
            .check_restating(&self.genesis, &next.parent, &context, &due, &next.spans)
            .map_err(|e| e.to_string())?;
        self.canonical.push(BatchRecord {
            header: checked.header().clone(),
            hash: checked.hash(),
            checkpoints: checked.checkpoints().to_vec(),
            anchor,
        });
        Ok(checked)
    }

    /// Decompress and judge a challenge; on fraud record it and invalidate. Returns how many
    /// batches it invalidated if it was accepted, `None` if it was rejected (and forgotten).
    fn process_challenge(
        &mut self,
        located: &LocatedEnvelope,
        height: u64,
        events: &mut Vec<DerivationEvent>,
    ) -> Option<usize> {
        let btc_txid = located.txid;
        let reject =
            |target: Option<(u64, Hash)>, reason: String| DerivationEvent::ChallengeRejected {
                btc_txid,
                target,
                reason,
            };
        let payload = match located.envelope.decompress(MAX_FRAUD_PROOF_BYTES) {
            Ok(payload) => payload,
            Err(e) => {
                events.push(reject(None, format!("envelope body: {e}")));
                return None;
            }
        };
        let proof = match FraudProof::decode(&payload) {
            Ok(proof) => proof,
            Err(e) => {
                events.push(reject(None, format!("fraud proof does not decode: {e}")));
                return None;
            }
        };
        let target = Some((proof.batch_number, proof.batch_hash));
        let found = proof
            .batch_number
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| Some((i, self.canonical.get(i)?)))
            .filter(|(_, r)| r.hash == proof.batch_hash);
        let Some((index, record)) = found else {
            events.push(reject(target, "target is not a canonical batch".into()));
            return None;
        };
        if record.header.is_derived() {
            let reason = "a derived batch claims no state: there is nothing to challenge".into();
            events.push(reject(target, reason));
            return None;
        }
        let window_end = record
            .anchor
            .height
            .saturating_add(self.genesis.dispute_window);
        if height >= window_end {
            let reason = format!("dispute window closed at height {window_end}");
            events.push(reject(target, reason));
            return None;
        }
        let spans = self.batch_spans(proof.batch_number);
        match Judge::judge_restating(&self.genesis, &record.header, &proof, &spans) {
            Ok(Verdict::Fraud(fraud)) => {
                let reason = fraud.to_string();
                let removed = self.canonical.split_off(index);
                let count = removed.len();
                for record in removed {
                    events.push(DerivationEvent::BatchInvalidated {
                        number: record.header.number,
                        hash: record.hash,
                        by: btc_txid,
                    });
                    self.invalidated.push(InvalidatedBatch {
                        record,
                        by: btc_txid,
                    });
                }
                events.push(DerivationEvent::ChallengeAccepted {
                    btc_txid,
                    batch: proof.batch_number,
                    batch_hash: proof.batch_hash,
                    reason: reason.clone(),
                });
                self.challenges.push(ChallengeRecord {
                    btc_txid,
                    height,
                    target,
                    challenger: Some(proof.challenger),
                    outcome: ChallengeOutcome::Accepted { reason },
                });
                Some(count)
            }
            Ok(Verdict::NoFraud) => {
                events.push(reject(target, "the judge found no fraud".into()));
                None
            }
            Err(e) => {
                events.push(reject(target, format!("fraud proof rejected: {e}")));
                None
            }
        }
    }

    /// Undo the tip block `height`/`hash` (reorgs disconnect newest first). On error nothing
    /// changes.
    pub fn disconnect_block(
        &mut self,
        height: u64,
        hash: BlockHash,
    ) -> Result<Vec<DerivationEvent>, DerivationError> {
        match self.l1_tip() {
            Some((tip_height, tip_hash)) if tip_height == height && tip_hash == hash => {}
            _ => return Err(DerivationError::NotTip { height, hash }),
        }
        let mut events = Vec::new();
        // Finality that this height gave is taken back first.
        for record in self.final_at(height) {
            events.push(DerivationEvent::BatchUnfinalized {
                number: record.header.number,
                hash: record.hash,
            });
        }
        let Some(block) = self.blocks.pop() else {
            return Ok(events);
        };
        for op in block.bridge.iter().rev() {
            match op {
                BridgeOp::Created(outpoint) => {
                    self.bridge_utxos.remove(outpoint);
                }
                BridgeOp::Spent(utxo) => {
                    self.bridge_utxos.insert(utxo.outpoint, utxo.value);
                }
            }
        }
        for payout in &block.payouts {
            events.push(DerivationEvent::PayoutRemoved { txid: payout.txid });
        }
        for undo in block.undo.into_iter().rev() {
            match undo {
                Undo::Anchored => {
                    if let Some(record) = self.canonical.pop() {
                        events.push(DerivationEvent::BatchUnanchored {
                            number: record.header.number,
                            hash: record.hash,
                        });
                    }
                }
                Undo::Challenge { invalidated } => {
                    let keep = self.invalidated.len().saturating_sub(invalidated);
                    let restored = self.invalidated.split_off(keep);
                    for item in restored {
                        events.push(DerivationEvent::BatchReinstated {
                            number: item.record.header.number,
                            hash: item.record.hash,
                        });
                        self.canonical.push(item.record);
                    }
                    if let Some(challenge) = self.challenges.pop() {
                        events.push(DerivationEvent::ChallengeRemoved {
                            btc_txid: challenge.btc_txid,
                        });
                    }
                }
            }
        }
        Ok(events)
    }
}
