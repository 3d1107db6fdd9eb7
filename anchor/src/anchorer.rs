//! Writing envelopes to Bitcoin with a taproot commit/reveal pair.
//!
//! * **Commit**: a wallet-funded, wallet-signed transaction paying to a P2TR output whose script
//!   tree is the single envelope leaf. Its internal key is the anchor key itself, so the anchorer
//!   can always recover the commit output by a key-path spend if a reveal can never be made (a
//!   NUMS internal key would burn it); the leaf's own `<key> OP_CHECKSIG` is what proves
//!   authorship on a script-path spend.
//! * **Reveal**: spends the commit output through the script path (witness: BIP340 signature by
//!   the anchor key, leaf script, control block). Outputs: the `OP_RETURN` index hint (if any) and
//!   [`REVEAL_POSTAGE`] back to a fresh wallet address. The commit output carries exactly the
//!   reveal fee (fee rate × the reveal's real vsize) plus that postage.
//!
//! Both signal BIP125 replaceability. A stuck commit is fee-bumped by replacing it (same wallet
//! inputs, smaller change) and re-signing the reveal over the new commit outpoint.

use std::sync::{Arc, OnceLock};

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{All, Keypair, Message, Secp256k1};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{LeafVersion, TapLeafHash, TaprootBuilder, TaprootSpendInfo};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, BlockHash, FeeRate, Network, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Weight, Witness,
};
use stint_protocol::{AnchorAuth, Envelope, EnvelopeError, EnvelopeKind, IndexHint};

use crate::rpc::{BitcoindClient, RpcError};
use crate::wallet::AnchorWallet;

/// Value the reveal returns to the wallet (above the dust limit of any standard output).
pub const REVEAL_POSTAGE: Amount = Amount::from_sat(1_000);

/// Bitcoin Core's standard transaction weight limit (`MAX_STANDARD_TX_WEIGHT`).
pub const MAX_STANDARD_TX_WEIGHT: Weight = Weight::from_wu(400_000);

/// Bitcoin Core's default incremental relay fee (1 sat/vB), which a replacement must add.
const INCREMENTAL_RELAY_FEE: FeeRate = FeeRate::from_sat_per_kwu(250);

/// Smallest change a replacement commit may leave (stays above every standard dust limit).
const MIN_CHANGE: Amount = Amount::from_sat(1_000);

/// bitcoind's "already in the chain" error code.
const RPC_VERIFY_ALREADY_IN_CHAIN: i64 = -27;
/// bitcoind: no such transaction (or address, or key).
const RPC_INVALID_ADDRESS_OR_KEY: i64 = -5;

/// Errors of the anchorer.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The envelope cannot be encoded (too big, empty, …).
    #[error("invalid envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The reveal would exceed the standard weight limit.
    #[error("reveal would weigh {weight} WU, above the standard limit of 400000")]
    RevealTooHeavy {
        /// The reveal's weight.
        weight: u64,
    },
    /// bitcoind's mempool policy rejected a transaction.
    #[error("{which} transaction {txid} rejected by bitcoind: {reason}")]
    Rejected {
        /// `commit` or `reveal`.
        which: &'static str,
        /// The transaction.
        txid: Txid,
        /// bitcoind's reject reason.
        reason: String,
    },
    /// A fee bump is impossible with the commit's inputs (not enough change).
    #[error("cannot bump: {0}")]
    CannotBump(String),
    /// A fee computation overflowed or a fee rate is unusable.
    #[error("fee computation failed: {0}")]
    Fee(&'static str),
    /// Building the taproot tree or signature hash failed (internal).
    #[error("taproot construction failed: {0}")]
    Taproot(String),
    /// Talking to bitcoind failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

/// An envelope written to Bitcoin (or at least broadcast): everything needed to track it, bump
/// its fee and re-broadcast it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedEnvelope {
    /// The signed commit transaction.
    pub commit: Transaction,
    /// The signed reveal transaction.
    pub reveal: Transaction,
    /// `commit.compute_txid()`.
    pub commit_txid: Txid,
    /// `reveal.compute_txid()`.
    pub reveal_txid: Txid,
    /// Index of the envelope output in the commit.
    pub commit_vout: u32,
    /// Fee paid by the commit.
    pub commit_fee: Amount,
    /// Fee paid by the reveal.
    pub reveal_fee: Amount,
    /// The fee rate both were built for.
    pub fee_rate: FeeRate,
    /// The envelope leaf script.
    pub leaf_script: ScriptBuf,
    /// The index hint carried by the reveal.
    pub hint: Option<IndexHint>,
}

/// Confirmation status of a posted envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorStatus {
    /// Confirmations of the commit (0 = unconfirmed, negative = conflicted).
    pub commit_confirmations: i64,
    /// Confirmations of the reveal.
    pub reveal_confirmations: i64,
}

/// How a commit/reveal pair reaches a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submission {
    /// `testmempoolaccept`, then `sendrawtransaction` of commit and reveal: relayed and mined
    /// like any transaction under Bitcoin Core's standard policy. The production path.
    Mempool,
    /// Regtest only: the commit goes through the mempool as usual, then the commit (with its
    /// unconfirmed ancestors) and the reveal are mined at once with `generateblock`, where only
    /// consensus rules apply. For nodes whose relay policy refuses envelopes: Bitcoin Knots
    /// refuses every `OP_IF` in tapscript (its BIP-110 data-restriction policy), which the
    /// envelope of protocol v1 needs. Each post then mines one block.
    MineDirectly,
}

impl Submission {
    /// The submission a node needs: [`Submission::MineDirectly`] for Bitcoin Knots on regtest,
    /// [`Submission::Mempool`] otherwise.
    pub async fn detect(client: &BitcoindClient) -> Result<Self, RpcError> {
        AnchorWallet::submission(client).await
    }
}

/// Writes envelopes signed by one anchor key, funded by one wallet: bitcoind's (the default),
/// or any [`AnchorWallet`] such as the in-memory [`MemoryWallet`](crate::MemoryWallet).
#[derive(Debug, Clone)]
pub struct Anchorer<W = BitcoindClient> {
    wallet: W,
    keypair: Keypair,
    network: Network,
    secp: Secp256k1<All>,
    /// Fixed by [`Anchorer::with_submission`], else detected on first use.
    submission: Arc<OnceLock<Submission>>,
}

impl<W: AnchorWallet> Anchorer<W> {
    /// An anchorer signing with `keypair` and funding from `wallet` (for bitcoind, a
    /// wallet-scoped client).
    pub fn new(wallet: W, keypair: Keypair, network: Network) -> Self {
        Self {
            wallet,
            keypair,
            network,
            secp: Secp256k1::new(),
            submission: Arc::new(OnceLock::new()),
        }
    }

    /// Fixes how pairs are submitted instead of detecting it from the node.
    pub fn with_submission(self, submission: Submission) -> Self {
        Self {
            submission: Arc::new(OnceLock::from(submission)),
            ..self
        }
    }

    /// How this anchorer submits pairs (detected from the node on first use unless fixed).
    pub async fn submission(&self) -> Result<Submission, AnchorError> {
        if let Some(submission) = self.submission.get() {
            return Ok(*submission);
        }
        let detected = self.wallet.submission().await?;
        if detected == Submission::MineDirectly {
            tracing::info!(
                target: "anchor",
                "bitcoind is Bitcoin Knots on regtest: envelopes are mined directly with generateblock"
            );
        }
        Ok(*self.submission.get_or_init(|| detected))
    }

    /// The x-only anchor key (the key envelopes are written under).
    pub fn key(&self) -> bitcoin::secp256k1::XOnlyPublicKey {
        self.keypair.x_only_public_key().0
    }

    /// The wallet.
    pub fn wallet(&self) -> &W {
        &self.wallet
    }

    /// Signs `header_hash` for the chain of `genesis_hash` with the anchor key: the BIP340
    /// signature over [`AnchorAuth::message`] (kind batch) that derivation verifies. The
    /// signature is deterministic (no auxiliary randomness), so re-signing a batch gives the same
    /// envelope.
    pub fn anchor_auth(&self, genesis_hash: &[u8; 32], header_hash: [u8; 32]) -> AnchorAuth {
        let message = Message::from_digest(AnchorAuth::message(
            genesis_hash,
            EnvelopeKind::Batch,
            &header_hash,
        ));
        let signature = self.secp.sign_schnorr_no_aux_rand(&message, &self.keypair);
        AnchorAuth {
            header_hash,
            signature: signature.serialize(),
        }
    }

    /// The batch envelope for an encoded batch (`payload`) whose header hash is `header_hash`,
    /// on the chain of `genesis_hash`: under this anchorer's key, carrying its [`AnchorAuth`].
    pub fn batch_envelope(
        &self,
        genesis_hash: &[u8; 32],
        header_hash: [u8; 32],
        payload: Vec<u8>,
    ) -> Envelope {
        Envelope::new(EnvelopeKind::Batch, self.key(), payload)
            .with_auth(self.anchor_auth(genesis_hash, header_hash))
    }

    /// Posts `envelope` (whose key must be this anchorer's key) with an optional index hint.
    pub async fn post(
        &self,
        envelope: &Envelope,
        hint: Option<IndexHint>,
        fee_rate: FeeRate,
    ) -> Result<PostedEnvelope, AnchorError> {
        if envelope.key != self.key() {
            return Err(AnchorError::Taproot(
                "envelope key differs from the anchor key".into(),
            ));
        }
        self.post_leaf(envelope.leaf_script()?, hint, fee_rate)
            .await
    }

    /// Posts an arbitrary leaf script spendable by this anchorer's key (the building block of
    /// [`post`](Self::post); also used to write deliberately malformed envelopes in tests).
    pub async fn post_leaf(
        &self,
        leaf_script: ScriptBuf,
        hint: Option<IndexHint>,
        fee_rate: FeeRate,
    ) -> Result<PostedEnvelope, AnchorError> {
        let posted = self.prepare_leaf(leaf_script, hint, fee_rate).await?;
        self.submit(posted).await
    }

    /// Builds and signs the commit/reveal pair for `leaf_script` without sending anything (the
    /// wallet inputs are not locked). [`post_leaf`](Self::post_leaf) is this plus submission.
    pub async fn prepare_leaf(
        &self,
        leaf_script: ScriptBuf,
        hint: Option<IndexHint>,
        fee_rate: FeeRate,
    ) -> Result<PostedEnvelope, AnchorError> {
        let spend_info = self.spend_info(&leaf_script)?;
        let commit_spk = ScriptBuf::new_p2tr_tweaked(spend_info.output_key());
        let postage_spk = self.wallet.new_address(self.network).await?.script_pubkey();

        let reveal_fee = self.reveal_fee(
            &leaf_script,
            &spend_info,
            hint.as_ref(),
            &postage_spk,
            fee_rate,
        )?;
        let commit_value = reveal_fee
            .checked_add(REVEAL_POSTAGE)
            .ok_or(AnchorError::Fee("overflow"))?;

        let unfunded = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: Vec::new(),
            output: vec![TxOut {
                value: commit_value,
                script_pubkey: commit_spk.clone(),
            }],
        };
        let (funded, info) = self.wallet.fund(&unfunded, fee_rate).await?;
        let commit = self.wallet.sign(&funded).await?;
        let commit_vout = find_output(&commit, &commit_spk, commit_value)?;

        let reveal = self.sign_reveal(
            &leaf_script,
            &spend_info,
            OutPoint {
                txid: commit.compute_txid(),
                vout: commit_vout,
            },
            TxOut {
                value: commit_value,
                script_pubkey: commit_spk,
            },
            hint.as_ref(),
            postage_spk,
        )?;
        let posted = PostedEnvelope {
            commit_txid: commit.compute_txid(),
            reveal_txid: reveal.compute_txid(),
            commit,
            reveal,
            commit_vout,
            commit_fee: info.fee,
            reveal_fee,
            fee_rate,
            leaf_script,
            hint,
        };
        Ok(posted)
    }

    async fn submit(&self, posted: PostedEnvelope) -> Result<PostedEnvelope, AnchorError> {
        // Check each against bitcoind's policy before sending it, so a rejection names its
        // reason. (If the reveal is refused, the commit output stays recoverable by key path.)
        self.check_policy("commit", &posted.commit).await?;
        self.wallet
            .broadcast(&posted.commit)
            .await
            .map_err(|e| rejected("commit", posted.commit_txid, e))?;
        match self.submission().await? {
            Submission::Mempool => {
                self.check_policy("reveal", &posted.reveal).await?;
                self.wallet
                    .broadcast(&posted.reveal)
                    .await
                    .map_err(|e| rejected("reveal", posted.reveal_txid, e))?;
            }
            Submission::MineDirectly => {
                self.mine_pair(&posted).await?;
            }
        }
        tracing::info!(target: "anchor", commit = %posted.commit_txid, reveal = %posted.reveal_txid, "envelope posted");
        Ok(posted)
    }

    /// [`Submission::MineDirectly`]: mines the commit's unconfirmed ancestors, the commit and
    /// the reveal in one block. The commit must be in the mempool or already confirmed.
    async fn mine_pair(&self, posted: &PostedEnvelope) -> Result<BlockHash, AnchorError> {
        let mut mempool = Vec::new();
        let mut raw = Vec::with_capacity(2);
        if self.confirmations(&posted.commit_txid).await? <= 0 {
            match self.wallet.mempool_ancestors(&posted.commit_txid).await {
                Ok(ancestors) => {
                    mempool = ancestors;
                    mempool.push(posted.commit_txid);
                }
                // Not in the mempool (e.g. evicted): carry it raw.
                Err(_) => raw.push(&posted.commit),
            }
        }
        raw.push(&posted.reveal);
        let to = self.wallet.new_address(self.network).await?;
        let hash = self
            .wallet
            .mine(&to, &mempool, &raw)
            .await
            .map_err(|e| rejected("reveal", posted.reveal_txid, e))?;
        tracing::debug!(target: "anchor", block = %hash, reveal = %posted.reveal_txid, "mined envelope pair");
        Ok(hash)
    }

    /// Confirmations of a wallet transaction (0 = unconfirmed, negative = conflicted).
    ///
    /// A tx the wallet does not know (`-5`) counts as unconfirmed: the reveal pays the wallet
    /// but is not the wallet's own, so the wallet learns of it only once it has processed the
    /// block or mempool entry that holds it, which bitcoind does asynchronously (seen on Knots:
    /// right after `generateblock` and `invalidateblock`, `gettransaction` of the reveal failed).
    pub async fn confirmations(&self, txid: &Txid) -> Result<i64, AnchorError> {
        match self.wallet.confirmations(txid).await {
            Ok(confirmations) => Ok(confirmations),
            Err(e) if e.rpc_code() == Some(RPC_INVALID_ADDRESS_OR_KEY) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Confirmations of both halves of a posted envelope.
    pub async fn status(&self, posted: &PostedEnvelope) -> Result<AnchorStatus, AnchorError> {
        Ok(AnchorStatus {
            commit_confirmations: self.confirmations(&posted.commit_txid).await?,
            reveal_confirmations: self.confirmations(&posted.reveal_txid).await?,
        })
    }

    /// Re-broadcasts commit and reveal (e.g. after a reorg dropped them). Transactions already
    /// in the mempool or the chain are fine; an error means they conflict with something else
    /// and the envelope must be posted again.
    ///
    /// With [`Submission::MineDirectly`] an unconfirmed pair is mined again at once.
    pub async fn rebroadcast(&self, posted: &PostedEnvelope) -> Result<(), AnchorError> {
        if self.submission().await? == Submission::MineDirectly {
            if self.confirmations(&posted.reveal_txid).await? > 0 {
                return Ok(());
            }
            // A reorg returns the commit to the mempool; re-sending it is harmless either way.
            let _ = self.wallet.broadcast(&posted.commit).await;
            self.mine_pair(posted).await?;
            return Ok(());
        }
        for tx in [&posted.commit, &posted.reveal] {
            match self.wallet.broadcast(tx).await {
                Ok(_) => {}
                Err(e) if e.rpc_code() == Some(RPC_VERIFY_ALREADY_IN_CHAIN) => {}
                Err(RpcError::Rpc { message, .. }) if message.contains("already") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Replaces a stuck commit (and its reveal) by a pair paying `fee_rate`. The replacement
    /// spends the same wallet inputs with less change, pays at least what the replaced pair paid
    /// plus the incremental relay fee (BIP125), and the reveal is re-signed for the new commit
    /// outpoint. Returns the new pair, already broadcast (with [`Submission::MineDirectly`]:
    /// already mined). Refused once the reveal is confirmed.
    pub async fn bump(
        &self,
        posted: &PostedEnvelope,
        fee_rate: FeeRate,
    ) -> Result<PostedEnvelope, AnchorError> {
        if self.confirmations(&posted.reveal_txid).await? > 0 {
            return Err(AnchorError::CannotBump(
                "the reveal is already confirmed".into(),
            ));
        }
        let leaf_script = posted.leaf_script.clone();
        let spend_info = self.spend_info(&leaf_script)?;
        let commit_spk = ScriptBuf::new_p2tr_tweaked(spend_info.output_key());
        let postage_spk = posted
            .reveal
            .output
            .last()
            .map(|out| out.script_pubkey.clone())
            .ok_or(AnchorError::CannotBump("reveal has no outputs".into()))?;
        let reveal_fee = self.reveal_fee(
            &leaf_script,
            &spend_info,
            posted.hint.as_ref(),
            &postage_spk,
            fee_rate,
        )?;
        let commit_value = reveal_fee
            .checked_add(REVEAL_POSTAGE)
            .ok_or(AnchorError::Fee("overflow"))?;

        let old = &posted.commit;
        let total_in = sum_outputs(old)?
            .checked_add(posted.commit_fee)
            .ok_or(AnchorError::Fee("overflow"))?;
        // The signed size is about the old one's (same inputs and output types); +2 vB slack for
        // signature-length variation.
        let vsize = (old.weight().to_vbytes_ceil()).saturating_add(2);
        let wanted = fee_rate.fee_vb(vsize).ok_or(AnchorError::Fee("overflow"))?;
        let floor = posted
            .commit_fee
            .checked_add(posted.reveal_fee)
            .and_then(|f| f.checked_add(INCREMENTAL_RELAY_FEE.fee_vb(vsize)?))
            .and_then(|f| f.checked_add(Amount::from_sat(1)))
            .ok_or(AnchorError::Fee("overflow"))?;
        let commit_fee = wanted.max(floor);

        let change_index = old
            .output
            .iter()
            .position(|out| out.script_pubkey != commit_spk)
            .ok_or(AnchorError::CannotBump(
                "commit has no change output".into(),
            ))?;
        let change_value = total_in
            .checked_sub(commit_value)
            .and_then(|v| v.checked_sub(commit_fee))
            .filter(|v| *v >= MIN_CHANGE)
            .ok_or(AnchorError::CannotBump(format!(
                "change cannot cover a fee of {commit_fee}"
            )))?;

        let mut replacement = old.clone();
        for input in &mut replacement.input {
            input.witness = Witness::new();
            input.script_sig = ScriptBuf::new();
            input.sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;
        }
        for (index, out) in replacement.output.iter_mut().enumerate() {
            if index == change_index {
                out.value = change_value;
            } else if out.script_pubkey == commit_spk {
                out.value = commit_value;
            }
        }
        let commit = self.wallet.sign(&replacement).await?;
        let commit_vout = find_output(&commit, &commit_spk, commit_value)?;
        let reveal = self.sign_reveal(
            &leaf_script,
            &spend_info,
            OutPoint {
                txid: commit.compute_txid(),
                vout: commit_vout,
            },
            TxOut {
                value: commit_value,
                script_pubkey: commit_spk,
            },
            posted.hint.as_ref(),
            postage_spk,
        )?;
        let bumped = PostedEnvelope {
            commit_txid: commit.compute_txid(),
            reveal_txid: reveal.compute_txid(),
            commit,
            reveal,
            commit_vout,
            commit_fee,
            reveal_fee,
            fee_rate,
            leaf_script,
            hint: posted.hint,
        };
        self.wallet
            .broadcast(&bumped.commit)
            .await
            .map_err(|e| rejected("commit", bumped.commit_txid, e))?;
        match self.submission().await? {
            Submission::Mempool => {
                self.wallet
                    .broadcast(&bumped.reveal)
                    .await
                    .map_err(|e| rejected("reveal", bumped.reveal_txid, e))?;
            }
            Submission::MineDirectly => {
                self.mine_pair(&bumped).await?;
            }
        }
        tracing::info!(old = %posted.commit_txid, new = %bumped.commit_txid, "commit fee bumped");
        Ok(bumped)
    }

    fn spend_info(&self, leaf_script: &ScriptBuf) -> Result<TaprootSpendInfo, AnchorError> {
        TaprootBuilder::new()
            .add_leaf(0, leaf_script.clone())
            .map_err(|e| AnchorError::Taproot(e.to_string()))?
            .finalize(&self.secp, self.key())
            .map_err(|_| AnchorError::Taproot("incomplete tree".into()))
    }

    fn reveal_fee(
        &self,
        leaf_script: &ScriptBuf,
        spend_info: &TaprootSpendInfo,
        hint: Option<&IndexHint>,
        postage_spk: &ScriptBuf,
        fee_rate: FeeRate,
    ) -> Result<Amount, AnchorError> {
        // A signature is always 64 bytes (default sighash), so a dummy-signed reveal has the
        // real size.
        let dummy = self.sign_reveal(
            leaf_script,
            spend_info,
            OutPoint {
                txid: Txid::all_zeros(),
                vout: 0,
            },
            TxOut {
                value: Amount::MAX_MONEY,
                script_pubkey: ScriptBuf::new_p2tr_tweaked(spend_info.output_key()),
            },
            hint,
            postage_spk.clone(),
        )?;
        let weight = dummy.weight();
        if weight > MAX_STANDARD_TX_WEIGHT {
            return Err(AnchorError::RevealTooHeavy {
                weight: weight.to_wu(),
            });
        }
        fee_rate
            .fee_vb(weight.to_vbytes_ceil())
            .ok_or(AnchorError::Fee("overflow"))
    }

    fn sign_reveal(
        &self,
        leaf_script: &ScriptBuf,
        spend_info: &TaprootSpendInfo,
        commit_outpoint: OutPoint,
        commit_output: TxOut,
        hint: Option<&IndexHint>,
        postage_spk: ScriptBuf,
    ) -> Result<Transaction, AnchorError> {
        let mut output = Vec::with_capacity(2);
        if let Some(hint) = hint {
            output.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: hint.to_script(),
            });
        }
        output.push(TxOut {
            value: REVEAL_POSTAGE,
            script_pubkey: postage_spk,
        });
        let mut reveal = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: commit_outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output,
        };
        let leaf_hash = TapLeafHash::from_script(leaf_script, LeafVersion::TapScript);
        let sighash = SighashCache::new(&reveal)
            .taproot_script_spend_signature_hash(
                0,
                &Prevouts::All(&[commit_output]),
                leaf_hash,
                TapSighashType::Default,
            )
            .map_err(|e| AnchorError::Taproot(e.to_string()))?;
        let message = Message::from_digest(sighash.to_byte_array());
        let signature = self.secp.sign_schnorr(&message, &self.keypair);
        let control_block = spend_info
            .control_block(&(leaf_script.clone(), LeafVersion::TapScript))
            .ok_or(AnchorError::Taproot("leaf missing from tree".into()))?;
        let mut witness = Witness::new();
        witness.push(signature.serialize());
        witness.push(leaf_script.as_bytes());
        witness.push(control_block.serialize());
        if let Some(input) = reveal.input.first_mut() {
            input.witness = witness;
        }
        Ok(reveal)
    }

    async fn check_policy(&self, which: &'static str, tx: &Transaction) -> Result<(), AnchorError> {
        let results = self.wallet.test_accept(&[tx]).await?;
        match results.first() {
            Some(result) if result.allowed => Ok(()),
            Some(result) => Err(AnchorError::Rejected {
                which,
                txid: result.txid,
                reason: result
                    .reject_reason
                    .clone()
                    .or_else(|| result.package_error.clone())
                    .unwrap_or_else(|| "unknown".into()),
            }),
            None => Err(AnchorError::Rpc(RpcError::Decode {
                method: "testmempoolaccept".into(),
                reason: "empty result".into(),
            })),
        }
    }
}

fn rejected(which: &'static str, txid: Txid, e: RpcError) -> AnchorError {
    match e {
        RpcError::Rpc { message, .. } => AnchorError::Rejected {
            which,
            txid,
            reason: message,
        },
        other => AnchorError::Rpc(other),
    }
}

fn find_output(tx: &Transaction, spk: &ScriptBuf, value: Amount) -> Result<u32, AnchorError> {
    tx.output
        .iter()
        .position(|out| &out.script_pubkey == spk && out.value == value)
        .and_then(|i| u32::try_from(i).ok())
        .ok_or(AnchorError::Taproot(
            "funded commit lost its envelope output".into(),
        ))
}

fn sum_outputs(tx: &Transaction) -> Result<Amount, AnchorError> {
    tx.output
        .iter()
        .try_fold(Amount::ZERO, |acc, out| acc.checked_add(out.value))
        .ok_or(AnchorError::Fee("overflow"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::SecretKey;
    use stint_protocol::{find_envelopes, RawEnvelope, MAX_ENVELOPE_BODY};

    fn anchorer() -> Anchorer {
        let secp = Secp256k1::new();
        let keypair = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[7; 32]).unwrap());
        let client = BitcoindClient::new(
            "http://127.0.0.1:1",
            crate::rpc::Auth::UserPass {
                user: "u".into(),
                password: "p".into(),
            },
        );
        Anchorer::new(client, keypair, Network::Regtest)
    }

    /// Incompressible bytes that compress to exactly the body limit or just under.
    fn noise(len: usize) -> Vec<u8> {
        use bitcoin::hashes::sha256;
        let mut out = Vec::with_capacity(len + 32);
        let mut h = sha256::Hash::hash(b"anchor");
        while out.len() < len {
            out.extend_from_slice(h.as_byte_array());
            h = sha256::Hash::hash(h.as_byte_array());
        }
        out.truncate(len);
        out
    }

    #[test]
    fn largest_envelope_fits_standard_weight_and_is_found() {
        let a = anchorer();
        // zstd adds a few bytes of framing to incompressible data; stay just under the limit.
        let envelope = a.batch_envelope(&[1; 32], [2; 32], noise(MAX_ENVELOPE_BODY - 64));
        let leaf = envelope.leaf_script().unwrap();
        let info = a.spend_info(&leaf).unwrap();
        let hint = IndexHint {
            kind: EnvelopeKind::Batch,
            number: u64::MAX,
            header_hash: [0xab; 32],
        };
        let postage = ScriptBuf::new_p2tr_tweaked(info.output_key());
        let fee = a
            .reveal_fee(
                &leaf,
                &info,
                Some(&hint),
                &postage,
                FeeRate::from_sat_per_vb_u32(1),
            )
            .unwrap();
        let reveal = a
            .sign_reveal(
                &leaf,
                &info,
                OutPoint {
                    txid: Txid::all_zeros(),
                    vout: 0,
                },
                TxOut {
                    value: fee + REVEAL_POSTAGE,
                    script_pubkey: postage.clone(),
                },
                Some(&hint),
                postage,
            )
            .unwrap();
        let weight = reveal.weight().to_wu();
        assert!(weight <= 400_000, "weight {weight}");
        assert!(weight > 390_000, "weight {weight}");
        assert_eq!(fee.to_sat(), reveal.weight().to_vbytes_ceil());
        assert_eq!(find_envelopes(&reveal), vec![envelope]);
        assert_eq!(stint_protocol::find_index_hint(&reveal), Some(hint));
    }

    #[test]
    fn batch_envelopes_carry_a_verifying_auth() {
        let a = anchorer();
        let envelope = a.batch_envelope(&[1; 32], [2; 32], b"batch".to_vec());
        let auth = envelope.auth.unwrap();
        assert_eq!(auth.header_hash, [2; 32]);
        assert!(auth.verify_with(&a.key(), &[1; 32], EnvelopeKind::Batch));
        assert!(!auth.verify_with(&a.key(), &[3; 32], EnvelopeKind::Batch));
        // Deterministic: the same batch gives the same leaf (and commit address).
        let again = a.batch_envelope(&[1; 32], [2; 32], b"batch".to_vec());
        assert_eq!(
            envelope.leaf_script().unwrap(),
            again.leaf_script().unwrap()
        );
        let raw = RawEnvelope::from_leaf_script(&envelope.leaf_script().unwrap()).unwrap();
        assert_eq!(raw.auth, Some(auth));
    }

    #[test]
    fn reveal_signature_verifies() {
        let a = anchorer();
        let envelope = Envelope::new(EnvelopeKind::Challenge, a.key(), b"proof".to_vec());
        let leaf = envelope.leaf_script().unwrap();
        let info = a.spend_info(&leaf).unwrap();
        let prevout = TxOut {
            value: Amount::from_sat(5_000),
            script_pubkey: ScriptBuf::new_p2tr_tweaked(info.output_key()),
        };
        let reveal = a
            .sign_reveal(
                &leaf,
                &info,
                OutPoint {
                    txid: Txid::all_zeros(),
                    vout: 1,
                },
                prevout.clone(),
                None,
                ScriptBuf::new(),
            )
            .unwrap();
        let sighash = SighashCache::new(&reveal)
            .taproot_script_spend_signature_hash(
                0,
                &Prevouts::All(&[prevout]),
                TapLeafHash::from_script(&leaf, LeafVersion::TapScript),
                TapSighashType::Default,
            )
            .unwrap();
        let sig = bitcoin::secp256k1::schnorr::Signature::from_slice(&reveal.input[0].witness[0])
            .unwrap();
        a.secp
            .verify_schnorr(
                &sig,
                &Message::from_digest(sighash.to_byte_array()),
                &a.key(),
            )
            .unwrap();
        // The control block commits to the output key.
        let cb = bitcoin::taproot::ControlBlock::decode(&reveal.input[0].witness[2]).unwrap();
        assert!(cb.verify_taproot_commitment(
            &a.secp,
            info.output_key().to_x_only_public_key(),
            &leaf
        ));
    }
}
