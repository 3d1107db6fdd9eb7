//! Challenging frauds on Bitcoin: the [`ChallengeKey`] and the [`Challenger`], which owns the
//! anchoring of fraud proofs — posting the pending fraud's proof through its wallet, tracking
//! its challenges' statuses, re-broadcasting an unconfirmed one every block (a reorg may have
//! dropped it), bumping its fee after `bump_after_blocks` up to the [`FeePolicy`] ceiling, and
//! the alerts while a fraud has no challenge on its way or its window closes. Generic over the
//! wallet ([`AnchorWallet`] + [`FeeSource`]): bitcoind's, or a `MemoryWallet` in tests.
//!
//! The loop hands it [`ChainFacts`] read from the engine after each sync; it writes only the
//! challenge records of the store and its metrics.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey, XOnlyPublicKey};
use bitcoin::{FeeRate, Network, ScriptBuf};
use serde::Deserialize;
use stint_anchor::{AnchorWallet, Anchorer, FeePolicy, FeeSource};
use stint_contracts::AccountId;
use stint_protocol::{ChallengeOutcome, Envelope, EnvelopeKind, IndexHint};
use stint_state::Hash;

use crate::engine::{Engine, PendingFraud};
use crate::error::{ConfigError, VerifierError};
use crate::metrics::VerifierMetrics;
use crate::replay::ChallengeStage;
use crate::status::ChallengeAlert;
use crate::store::{ChallengeEntry, ChallengeStatus, StoredPosted, VerifierStore};

/// The JSON key file (`{"address", "secret_key"}`, as `stint key new --out FILE` writes it).
#[derive(Deserialize)]
struct KeyFile {
    address: Option<String>,
    secret_key: String,
}

/// The challenge key: signs envelopes on Bitcoin, names the L2 challenger account.
#[derive(Clone)]
pub struct ChallengeKey {
    keypair: Keypair,
    account: AccountId,
}

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("ChallengeKey")
            .field("account", &self.account.to_address())
            .finish()
    }
}

impl ChallengeKey {
    /// From 32 secret bytes.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, String> {
        let sk = SecretKey::from_slice(secret).map_err(|e| e.to_string())?;
        let keypair = Keypair::from_secret_key(&Secp256k1::new(), &sk);
        let account = AccountId(keypair.x_only_public_key().0.serialize());
        Ok(Self { keypair, account })
    }

    /// Read a key file (`{"address", "secret_key"}`); like the CLI wallet, refuses a file that
    /// group or others can read.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let mode = std::fs::metadata(path)
            .map_err(|e| bad(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "permissions {:o} are too open: the key must be readable by its owner only \
                 (run `chmod 600 {}`)",
                mode & 0o777,
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let bytes: [u8; 32] = hex::decode(file.secret_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("secret_key must be 64 hex digits".into()))?;
        let key = Self::from_secret(&bytes).map_err(bad)?;
        if let Some(address) = file.address {
            if address != key.account.to_address() {
                return Err(bad("address does not match secret_key".into()));
            }
        }
        Ok(key)
    }

    /// The L2 account of this key.
    pub fn account(&self) -> AccountId {
        self.account
    }
}

/// What the challenger needs to know of the chain after a sync, read from the engine at once.
#[derive(Debug, Clone)]
pub(crate) struct ChainFacts {
    /// The pending fraud, if any.
    pub(crate) fraud: Option<PendingFraud>,
    /// The last processed L1 height (0 before any).
    pub(crate) tip: u64,
    /// The genesis dispute window, in blocks.
    pub(crate) dispute_window: u64,
    /// Our challenges, each with derivation's outcome for it if it has one.
    pub(crate) challenges: Vec<(ChallengeEntry, Option<ChallengeOutcome>)>,
}

impl ChainFacts {
    /// The facts `engine` holds now.
    pub(crate) fn of(engine: &Engine) -> Result<Self, VerifierError> {
        let challenges = engine
            .store()
            .challenges()?
            .into_iter()
            .map(|entry| {
                let outcome = engine.challenge_outcome(&entry.btc_txid).cloned();
                (entry, outcome)
            })
            .collect();
        Ok(Self {
            fraud: engine.pending_fraud().cloned(),
            tip: engine.derivation().l1_tip().map_or(0, |(h, _)| h),
            dispute_window: engine.genesis().dispute_window,
            challenges,
        })
    }
}

/// How the [`Challenger`] posts and nurses challenges.
#[derive(Debug, Clone)]
pub(crate) struct ChallengePolicy {
    /// The network of the wallet's addresses.
    pub(crate) network: Network,
    /// The wallet's name, for messages.
    pub(crate) wallet_name: String,
    /// Starting rate of a challenge, and the ceiling of its bumps.
    pub(crate) fees: FeePolicy,
    /// Blocks an unconfirmed challenge waits before its fee is bumped.
    pub(crate) bump_after_blocks: u64,
    /// Blocks before a window's end at which an unanswered fraud is alerted on.
    pub(crate) alert_blocks: u64,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Challenger<W> {
    /// Our key, if one is configured (else this verifier only watches).
    key: Option<ChallengeKey>,
    /// Signs with `key` and funds from the wallet, when both are there.
    anchorer: Option<Anchorer<W>>,
    /// Whether the wallet answered [`AnchorWallet::load`].
    wallet_ready: bool,
    /// Why the wallet could not be loaded, when it could not.
    wallet_error: Option<String>,
    policy: ChallengePolicy,
    store: Arc<VerifierStore>,
    metrics: Arc<VerifierMetrics>,
    /// L1 height of the last alert (alerts are logged once per block).
    last_alert: Option<u64>,
    /// L1 height at which an unconfirmed challenge was last re-broadcast or bumped.
    last_nursed: Option<u64>,
    /// Why the pending fraud has no challenge on its way, if it has none.
    failure: Option<ChallengeAlert>,
    /// L1 height of the last `error!` about `failure` (logged once per block).
    last_failure_log: Option<u64>,
    /// The envelope leaf of the pending fraud's proof under our key, built once per fraud (or
    /// why it does not fit one reveal).
    leaf: Option<(Hash, Result<ScriptBuf, String>)>,
}

impl<W: AnchorWallet + FeeSource> Challenger<W> {
    /// A challenger signing with `key` and funding from `wallet` (loaded on first use).
    pub(crate) fn new(
        key: Option<ChallengeKey>,
        wallet: Option<W>,
        policy: ChallengePolicy,
        store: Arc<VerifierStore>,
        metrics: Arc<VerifierMetrics>,
    ) -> Self {
        let anchorer = match (&key, wallet) {
            (Some(key), Some(wallet)) => Some(Anchorer::new(wallet, key.keypair, policy.network)),
            (None, _) => {
                tracing::warn!(target: "verifier::challenge", "no challenge key configured: frauds will be reported, not challenged");
                None
            }
            (Some(_), None) => {
                tracing::warn!(target: "verifier::challenge", "no fee wallet: frauds will be reported, not challenged");
                None
            }
        };
        Self {
            key,
            anchorer,
            wallet_ready: false,
            wallet_error: None,
            policy,
            store,
            metrics,
            last_alert: None,
            last_nursed: None,
            failure: None,
            last_failure_log: None,
            leaf: None,
        }
    }

    /// The alerts to publish: why the pending fraud has no challenge on its way, if it has none.
    pub(crate) fn alerts(&self) -> Vec<ChallengeAlert> {
        self.failure.iter().cloned().collect()
    }

    /// Loads the wallet if it is not loaded yet (bitcoind may not have it loaded after a
    /// restart); a failure is kept for the alert and retried on the next call.
    pub(crate) async fn open_wallet(&mut self) {
        let Some(anchorer) = &self.anchorer else {
            return;
        };
        if self.wallet_ready {
            return;
        }
        match anchorer.wallet().load().await {
            Ok(()) => {
                self.wallet_ready = true;
                self.wallet_error = None;
            }
            Err(e) => {
                if self.wallet_error.is_none() {
                    tracing::warn!(target: "verifier::challenge", error = %e, "fee wallet unavailable; retrying later");
                }
                self.wallet_error = Some(e.to_string());
            }
        }
    }

    /// The anchorer, once the wallet is loaded.
    fn ready(&self) -> Option<&Anchorer<W>> {
        self.anchorer.as_ref().filter(|_| self.wallet_ready)
    }

    /// Update our challenges' statuses; post, re-broadcast or bump for the pending fraud; alert.
    pub(crate) async fn manage(&mut self, facts: ChainFacts) -> Result<(), VerifierError> {
        self.open_wallet().await;
        let ChainFacts {
            fraud,
            tip,
            dispute_window,
            challenges,
        } = facts;

        // Statuses.
        let mut entries = Vec::with_capacity(challenges.len());
        for (mut entry, outcome) in challenges {
            let (status, reason) = match outcome {
                Some(ChallengeOutcome::Accepted { .. }) => (ChallengeStatus::Accepted, None),
                Some(ChallengeOutcome::Rejected { reason }) => {
                    (ChallengeStatus::Rejected, Some(reason))
                }
                None => match self.ready() {
                    Some(anchorer) => match anchorer.confirmations(&entry.btc_txid).await {
                        Ok(c) if c > 0 => (ChallengeStatus::Confirmed, None),
                        Ok(_) => (ChallengeStatus::Posted, None),
                        Err(e) => {
                            tracing::debug!(target: "verifier::challenge", error = %e, "confirmations");
                            (entry.status, entry.reason.clone())
                        }
                    },
                    None => (entry.status, entry.reason.clone()),
                },
            };
            if status != entry.status || reason != entry.reason {
                tracing::info!(target: "verifier::challenge", batch = entry.batch, btc_txid = %entry.btc_txid, ?status, "challenge status");
                entry.status = status;
                entry.reason = reason;
                self.store.put_challenge(&entry)?;
            }
            entries.push(entry);
        }

        let Some(fraud) = fraud else {
            self.failure = None;
            self.leaf = None;
            return Ok(());
        };
        let window_end = fraud.anchor.height.saturating_add(dispute_window);
        let remaining = window_end.saturating_sub(tip);
        let batch_hash = hex::encode(fraud.hash);
        let active = entries
            .iter()
            .find(|e| {
                e.batch_hash == batch_hash
                    && matches!(
                        e.status,
                        ChallengeStatus::Posted | ChallengeStatus::Confirmed
                    )
            })
            .cloned();
        let accepted = entries
            .iter()
            .any(|e| e.batch_hash == batch_hash && e.status == ChallengeStatus::Accepted);
        // The next block is `tip + 1`; a challenge in it counts if `tip + 1 < window_end`.
        let can_land = tip.saturating_add(1) < window_end;
        // Every step from the proof to a posted challenge; the first that fails becomes the
        // alert. A failure never skips the window-closing alert below.
        let mut result = Ok(());
        let failure = if accepted || active.is_some() {
            if let Some(entry) = active {
                if entry.status == ChallengeStatus::Posted && self.last_nursed != Some(tip) {
                    result = self.nurse(entry, tip, can_land).await;
                    self.last_nursed = Some(tip);
                }
            }
            None
        } else {
            match &fraud.detected {
                Err(unprovable) => Some((unprovable.stage, unprovable.reason.clone())),
                Ok(_) if !can_land => self.failure.as_ref().map(|f| (f.stage, f.reason.clone())),
                Ok(_) => match (&self.key, self.ready().map(Anchorer::key)) {
                    (None, _) => Some((
                        ChallengeStage::Post,
                        "no challenge key configured: this verifier only watches".to_owned(),
                    )),
                    (Some(_), None) => Some((ChallengeStage::Post, self.no_wallet_reason())),
                    (Some(_), Some(key)) => match self.leaf_for(key, &fraud) {
                        Err(reason) => Some((ChallengeStage::Fit, reason)),
                        Ok(leaf) => {
                            let seq = entries.last().map_or(0, |e| e.seq.saturating_add(1));
                            match self.post(&fraud, leaf, seq, tip).await {
                                Ok(()) => None,
                                Err(e) => Some((ChallengeStage::Post, e.to_string())),
                            }
                        }
                    },
                },
            }
        };
        self.note_failure(&fraud, failure, tip, window_end);

        if remaining <= self.policy.alert_blocks && self.last_alert != Some(tip) {
            self.last_alert = Some(tip);
            if !accepted {
                if can_land {
                    tracing::error!(
                        target: "verifier::challenge",
                        batch = fraud.number,
                        remaining_blocks = remaining,
                        window_end,
                        "ALERT: dispute window of a fraudulent batch is closing without a confirmed challenge"
                    );
                } else {
                    tracing::error!(
                        target: "verifier::challenge",
                        batch = fraud.number,
                        window_end,
                        "ALERT: dispute window of a fraudulent batch closed without a confirmed challenge"
                    );
                }
            }
        }
        result
    }

    /// Why there is a key but no usable wallet.
    fn no_wallet_reason(&self) -> String {
        if self.anchorer.is_none() {
            return "no fee wallet configured: this verifier only watches".to_owned();
        }
        format!(
            "fee wallet {:?} unavailable: {}",
            self.policy.wallet_name,
            self.wallet_error.as_deref().unwrap_or("not opened yet")
        )
    }

    /// Record why the pending fraud has no challenge on its way (`None`: it has one, or needs
    /// none): count it, log it at error level once per L1 block while the window is open, and
    /// keep it for `stint_verifierStatus` until the window closes.
    fn note_failure(
        &mut self,
        fraud: &PendingFraud,
        failure: Option<(ChallengeStage, String)>,
        tip: u64,
        window_end: u64,
    ) {
        let Some((stage, reason)) = failure else {
            if let Some(old) = self.failure.take() {
                tracing::info!(target: "verifier::challenge", batch = old.batch, stage = %old.stage, "challenge on its way; alert cleared");
            }
            return;
        };
        let Some(alert) = ChallengeAlert::new(fraud, stage, reason, tip, window_end) else {
            // The window closed: the window-closing alert takes over.
            self.failure = None;
            return;
        };
        let same = self
            .failure
            .as_ref()
            .is_some_and(|f| f.batch_hash == fraud.hash && f.stage == stage);
        // Deterministic steps count once per fraud; every failed post counts.
        if !same || stage == ChallengeStage::Post {
            self.metrics.challenge_failures.inc();
        }
        if !same || self.last_failure_log != Some(tip) {
            self.last_failure_log = Some(tip);
            tracing::error!(
                target: "verifier::challenge",
                batch = fraud.number,
                batch_hash = %hex::encode(fraud.hash),
                segment = fraud.segment(),
                stage = %alert.stage,
                reason = %alert.reason,
                blocks_left = alert.blocks_left,
                window_end,
                "ALERT: a fraudulent batch cannot be challenged"
            );
        }
        self.failure = Some(alert);
    }

    /// The leaf script carrying the pending fraud's judged bytes under `key`, or why it does
    /// not fit one reveal (built once per fraud: compressing a large proof is slow).
    fn leaf_for(&mut self, key: XOnlyPublicKey, fraud: &PendingFraud) -> Result<ScriptBuf, String> {
        if let Some((hash, leaf)) = &self.leaf {
            if *hash == fraud.hash {
                return leaf.clone();
            }
        }
        let leaf = match &fraud.detected {
            Ok(detected) => Envelope::new(EnvelopeKind::Challenge, key, detected.bytes.clone())
                .leaf_script()
                .map_err(|e| format!("the challenge envelope cannot be built: {e}")),
            Err(unprovable) => Err(unprovable.reason.clone()),
        };
        self.leaf = Some((fraud.hash, leaf.clone()));
        leaf
    }

    async fn post(
        &self,
        fraud: &PendingFraud,
        leaf: ScriptBuf,
        seq: u64,
        tip: u64,
    ) -> Result<(), VerifierError> {
        let anchorer = self
            .ready()
            .ok_or_else(|| VerifierError::Internal("posting without a fee wallet".into()))?;
        let hint = IndexHint {
            kind: EnvelopeKind::Challenge,
            number: fraud.number,
            header_hash: fraud.hash,
        };
        let fee_rate = self.policy.fees.rate(anchorer.wallet()).await;
        let posted = anchorer.post_leaf(leaf, Some(hint), fee_rate).await?;
        tracing::warn!(
            target: "verifier::challenge",
            batch = fraud.number,
            segment = fraud.segment(),
            btc_txid = %posted.reveal_txid,
            %fee_rate,
            "challenge posted"
        );
        self.metrics.challenges_posted.inc();
        let entry = ChallengeEntry {
            seq,
            batch: fraud.number,
            batch_hash: hex::encode(fraud.hash),
            btc_txid: posted.reveal_txid,
            status: ChallengeStatus::Posted,
            posted_at: tip,
            reason: None,
            posted: StoredPosted::from_posted(&posted),
        };
        self.store.put_challenge(&entry)?;
        Ok(())
    }

    /// An unconfirmed challenge: re-broadcast it (a reorg may have dropped it) and bump its fee
    /// when it waited `bump_after_blocks`, never above the fee policy's ceiling.
    async fn nurse(
        &self,
        mut entry: ChallengeEntry,
        tip: u64,
        can_land: bool,
    ) -> Result<(), VerifierError> {
        let Some(anchorer) = self.ready() else {
            return Ok(());
        };
        if !can_land {
            return Ok(());
        }
        let posted = entry.posted.to_posted()?;
        if let Err(e) = anchorer.rebroadcast(&posted).await {
            tracing::warn!(target: "verifier::challenge", error = %e, btc_txid = %entry.btc_txid, "re-broadcast failed");
        }
        if tip.saturating_sub(entry.posted_at) < self.policy.bump_after_blocks {
            return Ok(());
        }
        let current = posted.fee_rate.to_sat_per_kwu();
        let next =
            FeeRate::from_sat_per_kwu(current.saturating_mul(3) / 2).min(self.policy.fees.ceiling);
        if next.to_sat_per_kwu() <= current {
            tracing::error!(target: "verifier::challenge", btc_txid = %entry.btc_txid, "challenge unconfirmed at the maximum fee rate");
            return Ok(());
        }
        match anchorer.bump(&posted, next).await {
            Ok(bumped) => {
                tracing::warn!(target: "verifier::challenge", old = %entry.btc_txid, new = %bumped.reveal_txid, fee_rate = %next, "challenge fee bumped");
                entry.btc_txid = bumped.reveal_txid;
                entry.posted = StoredPosted::from_posted(&bumped);
                entry.posted_at = tip;
                self.store.put_challenge(&entry)?;
            }
            Err(e) => {
                tracing::warn!(target: "verifier::challenge", error = %e, "fee bump failed");
            }
        }
        Ok(())
    }
}
