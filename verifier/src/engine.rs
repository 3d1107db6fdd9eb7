//! The verifier's core: derivation plus replay plus persistence, driven block by block.
//!
//! [`Engine`] owns a [`Derivation`] and the [`VerifierStore`]. The I/O loop hands it each
//! connected or disconnected Bitcoin block; after derivation has processed the block the engine
//! *reconciles* its verified chain with derivation's canonical chain:
//! 1. verified batches that are no longer canonical (a reorg removed their anchor, or a valid
//!    challenge invalidated them or an ancestor) are dropped and the state rolls back to the last
//!    common batch;
//! 2. canonical batches beyond the verified tip are replayed in order ([`replay_batch`]) and
//!    committed while honest; the first fraudulent one becomes the *pending fraud* (with its
//!    judged proof bytes, or the reason no proof could be made) and replay stops there, since its
//!    descendants build on a wrong state.
//!
//! Derivation keeps no snapshot, so on restart the engine re-derives from the genesis L1 start
//! (reading blocks is cheap); batches it verified before are recognized by number and hash and
//! not replayed again. Until the re-derivation reaches the last L1 block processed before the
//! restart, verified batches that derivation has not re-derived yet are kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bitcoin::hashes::Hash as _;
use bitcoin::{Block, BlockHash};
use stint_api::message_records;
use stint_contracts::AccountId;
use stint_protocol::{
    own_updates, restated_segments, Anchor, BatchBuilder, BatchRecord, BatchStatus,
    ChallengeOutcome, Derivation, DerivationEvent, Genesis,
};
use stint_state::{Hash, RocksNodeStore};

use crate::error::VerifierError;
use crate::replay::{replay_batch_restating, DetectedFraud, ReplayVerdict, UnprovableFraud};
use crate::store::{VerifiedBatch, VerifierStore};

/// A fraud found in a canonical batch, waiting for a valid challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFraud {
    /// The batch number.
    pub number: u64,
    /// The batch hash.
    pub hash: Hash,
    /// Where the batch is anchored (its window ends at `anchor.height + W`).
    pub anchor: Anchor,
    /// The fraud and its judged proof, or why no proof the judge accepts could be made.
    pub detected: Result<DetectedFraud, UnprovableFraud>,
}

impl PendingFraud {
    /// The first fraudulent segment.
    pub fn segment(&self) -> u64 {
        match &self.detected {
            Ok(d) => d.segment,
            Err(u) => u.segment,
        }
    }
}

/// What one block did to the verifier.
#[derive(Debug, Clone, Default)]
pub struct BlockReport {
    /// Derivation's events for the block.
    pub events: Vec<DerivationEvent>,
    /// Batches newly verified (honest).
    pub verified: Vec<VerifiedBatch>,
    /// Verified batches dropped (reorg or invalidation), newest first.
    pub rolled_back: Vec<VerifiedBatch>,
    /// Newly detected fraud.
    pub fraud: Option<u64>,
    /// Txs replayed.
    pub txs_replayed: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Engine {
    genesis: Genesis,
    genesis_root: Hash,
    derivation: Derivation,
    store: Arc<VerifierStore>,
    verified: Vec<VerifiedBatch>,
    fraud: Option<PendingFraud>,
    challenger: AccountId,
    pool: Arc<rayon::ThreadPool>,
    /// Height of the last block processed before this process started.
    resume_height: Option<u64>,
    /// Derivation's rejections of *our* challenges (height, txid, outcome): derivation keeps
    /// only accepted challenges, so the engine remembers the rejections it needs itself.
    rejected: Vec<(u64, bitcoin::Txid, ChallengeOutcome)>,
}

impl Engine {
    /// Open the engine over `data_dir` for `genesis`. `challenger` is the L2 account named in
    /// the proofs it builds; replay runs on `pool`.
    pub fn open(
        genesis: Genesis,
        data_dir: &Path,
        challenger: AccountId,
        pool: Arc<rayon::ThreadPool>,
    ) -> Result<Self, VerifierError> {
        let update = genesis
            .state_update()
            .map_err(|e| VerifierError::Config(e.into()))?;
        let store = Arc::new(VerifierStore::open(data_dir, genesis.hash(), &update)?);
        let verified = store.verified()?;
        let resume_height = store.l1_progress()?.map(|(height, _)| height);
        Ok(Self {
            derivation: Derivation::new(genesis.clone(), update.root),
            genesis_root: update.root,
            genesis,
            store,
            verified,
            fraud: None,
            challenger,
            pool,
            resume_height,
            rejected: Vec::new(),
        })
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The genesis state root.
    pub fn genesis_root(&self) -> Hash {
        self.genesis_root
    }

    /// Derivation's view of the chain.
    pub fn derivation(&self) -> &Derivation {
        &self.derivation
    }

    /// The state store (for readers).
    pub fn state(&self) -> &Arc<RocksNodeStore> {
        self.store.state()
    }

    /// The storage (challenge records).
    pub fn store(&self) -> &VerifierStore {
        &self.store
    }

    /// A handle on the store, for readers (the RPC) that outlive a borrow of the engine.
    pub fn store_handle(&self) -> Arc<VerifierStore> {
        Arc::clone(&self.store)
    }

    /// Verified batches, batch 1 first.
    pub fn verified(&self) -> &[VerifiedBatch] {
        &self.verified
    }

    /// The verified tip (`None` at genesis).
    pub fn verified_tip(&self) -> Option<&VerifiedBatch> {
        self.verified.last()
    }

    /// The fraud waiting for a valid challenge, if any.
    pub fn pending_fraud(&self) -> Option<&PendingFraud> {
        self.fraud.as_ref()
    }

    /// The height of the next block derivation expects.
    pub fn next_height(&self) -> u64 {
        self.derivation.next_height()
    }

    /// Whether derivation has re-derived everything processed before the restart.
    fn caught_up(&self) -> bool {
        match (self.resume_height, self.derivation.l1_tip()) {
            (None, _) => true,
            (Some(resume), Some((tip, _))) => tip >= resume,
            (Some(_), None) => false,
        }
    }

    /// Process a block that extends the chain.
    pub fn connect_block(
        &mut self,
        height: u64,
        block: &Block,
    ) -> Result<BlockReport, VerifierError> {
        let events = self.derivation.connect_block(height, block)?;
        for event in &events {
            match event {
                DerivationEvent::BatchAnchored { batch, .. } => {
                    self.store.put_body(batch.as_ref())?;
                }
                DerivationEvent::BridgeSpentWithoutPayout { txid, height } => {
                    tracing::error!(target: "verifier::bridge", %txid, height, "bridge outputs spent by a transaction that is not a payout");
                }
                DerivationEvent::DepositNotCredited { height, deposit } => {
                    tracing::warn!(target: "verifier::bridge", height, outpoint = %deposit.outpoint, sats = deposit.amount, reason = %deposit.reason, "a payment to the bridge is not a deposit: not credited (its bitcoin stays with the bridge)");
                }
                DerivationEvent::BatchDerived { record, .. } => {
                    // Its "body" is its header: it holds no txs and claims no checkpoint.
                    let body =
                        stint_protocol::Batch::new(record.header.clone(), Vec::new(), Vec::new());
                    self.store.put_body(&body)?;
                }
                DerivationEvent::ChallengeRejected {
                    btc_txid, reason, ..
                } => {
                    let ours = self.store.challenges()?;
                    if ours.iter().any(|c| &c.btc_txid == btc_txid) {
                        let outcome = ChallengeOutcome::Rejected {
                            reason: reason.clone(),
                        };
                        self.rejected.push((height, *btc_txid, outcome));
                    }
                }
                _ => {}
            }
        }
        let mut report = self.reconcile()?;
        report.events = events;
        self.store
            .set_l1_progress(height, &block.block_hash().to_byte_array())?;
        Ok(report)
    }

    /// Undo the tip block (reorg).
    pub fn disconnect_block(
        &mut self,
        height: u64,
        hash: BlockHash,
    ) -> Result<BlockReport, VerifierError> {
        let events = self.derivation.disconnect_block(height, hash)?;
        self.rejected.retain(|(at, _, _)| *at < height);
        let mut report = self.reconcile()?;
        report.events = events;
        if let Some((tip, tip_hash)) = self.derivation.l1_tip() {
            self.store.set_l1_progress(tip, &tip_hash.to_byte_array())?;
        }
        Ok(report)
    }

    /// Bring the verified chain in line with derivation's canonical chain (see module docs).
    fn reconcile(&mut self) -> Result<BlockReport, VerifierError> {
        let mut report = BlockReport::default();
        let trim = self.caught_up();
        let canonical = self.derivation.canonical();

        // 1. The longest prefix of the verified chain that is still canonical.
        let mut keep = self.verified.len();
        for (i, v) in self.verified.iter().enumerate() {
            match canonical.get(i) {
                Some(record) if record.hash == v.hash => {}
                Some(_) => {
                    keep = i;
                    break;
                }
                None => {
                    if trim {
                        keep = i;
                    }
                    break;
                }
            }
        }
        if keep < self.verified.len() {
            let dropped = self.verified.split_off(keep);
            self.store.rollback_to(keep as u64, &dropped)?;
            tracing::warn!(
                target: "verifier::replay",
                from = dropped.first().map(|v| v.number),
                to = dropped.last().map(|v| v.number),
                back_to = keep,
                "verified batches left the canonical chain; state rolled back"
            );
            report.rolled_back = dropped.into_iter().rev().collect();
        }
        let fraud_is_canonical = self.fraud.as_ref().is_some_and(|f| {
            canonical
                .get(
                    usize::try_from(f.number)
                        .unwrap_or(usize::MAX)
                        .saturating_sub(1),
                )
                .is_some_and(|r| r.hash == f.hash)
        });
        if !fraud_is_canonical {
            if let Some(f) = self.fraud.take() {
                tracing::info!(target: "verifier::challenge", batch = f.number, "fraudulent batch left the canonical chain");
            }
        }

        // 2. Replay forward until the end or the first fraud.
        while self.fraud.is_none() && self.verified.len() < self.derivation.canonical().len() {
            let Some(record) = self
                .derivation
                .canonical()
                .get(self.verified.len())
                .cloned()
            else {
                break;
            };
            match self.replay(&record)? {
                Some((verified, txs)) => {
                    report.txs_replayed = report.txs_replayed.saturating_add(txs);
                    report.verified.push(verified);
                    self.verified.push(verified);
                }
                None => {
                    report.fraud = Some(record.header.number);
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Replay one canonical batch on top of the verified tip. `Some` when honest (committed),
    /// `None` when fraudulent (recorded as the pending fraud).
    fn replay(
        &mut self,
        record: &BatchRecord,
    ) -> Result<Option<(VerifiedBatch, u64)>, VerifierError> {
        let number = record.header.number;
        if record.header.is_derived() {
            return self.execute_derived(record).map(Some);
        }
        let body = self.store.body(&record.hash)?.ok_or_else(|| {
            VerifierError::Internal(format!("no body kept for canonical batch {number}"))
        })?;
        let state = Arc::clone(self.store.state());
        let genesis = &self.genesis;
        let challenger = self.challenger;
        let messages = self.derivation.batch_messages(number);
        let spans = self.derivation.batch_spans(number);
        let started = std::time::Instant::now();
        let verdict = self.pool.install(|| {
            replay_batch_restating(genesis, &state, &body, &messages, &spans, challenger)
        })?;
        let txs = body.txs().len() as u64;
        match verdict {
            ReplayVerdict::Honest(honest) => {
                let verified = VerifiedBatch {
                    number,
                    hash: record.hash,
                    // No update at all would mean no change.
                    state_root: honest.state_root().unwrap_or(body.header().prev_state_root),
                };
                // Segments restating derived batches end at the root we computed for the last
                // of them (replay checked each restated root): persist only the rest.
                let restated = restated_segments(body.checkpoints(), &spans);
                let tip_root = self.verified_root();
                let updates = own_updates(honest.updates, restated, tip_root);
                if updates.first().map(|u| u.base_root) != Some(tip_root) {
                    return Err(VerifierError::Internal(format!(
                        "batch {number} restates the derived batches below it to another root \
                         than this verifier computed for them"
                    )));
                }
                let from = spans.last().map_or(0, |span| span.msg_end as usize);
                let records = message_records(
                    number,
                    record.hash,
                    &messages,
                    &honest.message_receipts,
                    from,
                );
                self.store.commit_verified(
                    verified,
                    &updates,
                    body.txs(),
                    &honest.receipts,
                    &records,
                )?;
                tracing::info!(
                    target: "verifier::replay",
                    batch = number,
                    txs,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    state_root = %hex::encode(verified.state_root),
                    "batch verified"
                );
                Ok(Some((verified, txs)))
            }
            ReplayVerdict::Fraud(detected) => {
                tracing::error!(
                    target: "verifier::replay",
                    batch = number,
                    segment = detected.segment,
                    fraud = %detected.fraud,
                    anchor_height = record.anchor.height,
                    "FRAUD: batch does not replay to what it claims"
                );
                self.fraud = Some(PendingFraud {
                    number,
                    hash: record.hash,
                    anchor: record.anchor,
                    detected: Ok(*detected),
                });
                Ok(None)
            }
            ReplayVerdict::Unprovable(unprovable) => {
                tracing::error!(
                    target: "verifier::challenge",
                    batch = number,
                    segment = unprovable.segment,
                    stage = %unprovable.stage,
                    reason = %unprovable.reason,
                    anchor_height = record.anchor.height,
                    window_end = record.anchor.height.saturating_add(self.genesis.dispute_window),
                    "FRAUD WITHOUT A PROOF: batch does not replay to what it claims, but no \
                     proof the judge accepts could be made"
                );
                self.fraud = Some(PendingFraud {
                    number,
                    hash: record.hash,
                    anchor: record.anchor,
                    detected: Err(*unprovable),
                });
                Ok(None)
            }
        }
    }

    /// The state root of the verified tip (the genesis root at genesis).
    fn verified_root(&self) -> Hash {
        self.verified
            .last()
            .map_or(self.genesis_root, |v| v.state_root)
    }

    /// Execute a derived batch (it claims nothing, so it cannot be fraudulent) on top of the
    /// verified tip and commit it.
    fn execute_derived(
        &mut self,
        record: &BatchRecord,
    ) -> Result<(VerifiedBatch, u64), VerifierError> {
        let number = record.header.number;
        let messages = self.derivation.batch_messages(number);
        let pre = self.verified_root();
        let state = Arc::clone(self.store.state());
        let executed = BatchBuilder::new(&self.genesis)
            .execute_derived(state.as_ref(), &record.header, pre, &messages)
            .map_err(|e| {
                VerifierError::Internal(format!("executing derived batch {number}: {e}"))
            })?;
        let verified = VerifiedBatch {
            number,
            hash: record.hash,
            state_root: executed.updates.last().map_or(pre, |u| u.root),
        };
        let records = message_records(
            number,
            record.hash,
            &messages,
            &executed.message_receipts,
            0,
        );
        self.store
            .commit_verified(verified, &executed.updates, &[], &[], &records)?;
        tracing::warn!(
            target: "verifier::replay",
            batch = number,
            messages = messages.len(),
            state_root = %hex::encode(verified.state_root),
            "derived batch executed: no batch executed these L1 messages within the sequencing window"
        );
        Ok((verified, 0))
    }

    /// The status derivation gives a batch, by number (canonical) or hash (any).
    pub fn batch_status(&self, hash: &Hash) -> Option<(&BatchRecord, BatchStatus)> {
        self.derivation.batch_by_hash(hash)
    }

    /// Derivation's outcome for the challenge carried by `btc_txid`, if it has seen it.
    pub fn challenge_outcome(&self, btc_txid: &bitcoin::Txid) -> Option<&ChallengeOutcome> {
        self.derivation
            .challenges()
            .iter()
            .rev()
            .find(|c| &c.btc_txid == btc_txid)
            .map(|c| &c.outcome)
            .or_else(|| {
                self.rejected
                    .iter()
                    .rev()
                    .find(|(_, txid, _)| txid == btc_txid)
                    .map(|(_, _, outcome)| outcome)
            })
    }

    /// Summaries of every batch derivation knows (canonical then invalidated).
    pub fn batch_summaries(&self) -> BTreeMap<Hash, (BatchRecord, BatchStatus)> {
        let mut out = BTreeMap::new();
        for record in self.derivation.canonical() {
            let status = if self.derivation.is_final(record) {
                BatchStatus::Final
            } else {
                BatchStatus::Anchored
            };
            out.insert(record.hash, (record.clone(), status));
        }
        for item in self.derivation.invalidated() {
            out.insert(
                item.record.hash,
                (item.record.clone(), BatchStatus::Invalidated),
            );
        }
        out
    }
}
