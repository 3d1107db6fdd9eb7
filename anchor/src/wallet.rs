//! [`AnchorWallet`]: what the [`Anchorer`](crate::Anchorer) needs of a Bitcoin wallet and the
//! node behind it — bitcoind's wallet RPC, or the in-memory [`MemoryWallet`] on a
//! [`MemoryChain`] that tests of anchoring logic run on (posting, confirmations, reorgs, fee
//! bumps; no process to start).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use bitcoin::hashes::Hash as _;
use bitcoin::{
    Address, Amount, BlockHash, FeeRate, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxOut, Txid, Witness,
};

use crate::anchorer::Submission;
use crate::rpc::{BitcoindClient, FundedTransaction, MempoolAcceptResult, RpcError};
use crate::source::MemoryChain;

/// bitcoind's code for an unknown transaction.
const RPC_INVALID_ADDRESS_OR_KEY: i64 = -5;

/// A wallet that funds, signs and sends the anchorer's transactions, and the node it talks to.
///
/// Errors are [`RpcError`]s, as from bitcoind: [`RpcError::is_transient`] means "unreachable,
/// retry later"; an unknown transaction is code −5.
pub trait AnchorWallet: Send + Sync {
    /// Makes the wallet usable (bitcoind does not reload a wallet created over RPC when it
    /// restarts: load it, creating it if it does not exist).
    fn load(&self) -> impl Future<Output = Result<(), RpcError>> + Send;

    /// How pairs reach a block on this node ([`Submission`]).
    fn submission(&self) -> impl Future<Output = Result<Submission, RpcError>> + Send;

    /// A fresh wallet address on `network`.
    fn new_address(
        &self,
        network: Network,
    ) -> impl Future<Output = Result<Address, RpcError>> + Send;

    /// `tx` with wallet inputs and a change output added, paying `fee_rate` (unsigned).
    fn fund(
        &self,
        tx: &Transaction,
        fee_rate: FeeRate,
    ) -> impl Future<Output = Result<(Transaction, FundedTransaction), RpcError>> + Send;

    /// `tx` with every wallet input signed.
    fn sign(&self, tx: &Transaction) -> impl Future<Output = Result<Transaction, RpcError>> + Send;

    /// Sends `tx` to the node's mempool.
    fn broadcast(&self, tx: &Transaction) -> impl Future<Output = Result<Txid, RpcError>> + Send;

    /// Whether the node's mempool would accept each of `txs` (policy, not only consensus).
    fn test_accept(
        &self,
        txs: &[&Transaction],
    ) -> impl Future<Output = Result<Vec<MempoolAcceptResult>, RpcError>> + Send;

    /// The unconfirmed ancestors of mempool tx `txid`, parents first.
    fn mempool_ancestors(
        &self,
        txid: &Txid,
    ) -> impl Future<Output = Result<Vec<Txid>, RpcError>> + Send;

    /// Mines one block paying `to`, holding the mempool txs `mempool` then `raw`, in order.
    fn mine(
        &self,
        to: &Address,
        mempool: &[Txid],
        raw: &[&Transaction],
    ) -> impl Future<Output = Result<BlockHash, RpcError>> + Send;

    /// Confirmations of wallet tx `txid` (0 unconfirmed, negative when conflicted; code −5 if
    /// the wallet does not know it).
    fn confirmations(&self, txid: &Txid) -> impl Future<Output = Result<i64, RpcError>> + Send;
}

impl AnchorWallet for BitcoindClient {
    async fn load(&self) -> Result<(), RpcError> {
        if let Some(name) = self.wallet() {
            self.ensure_wallet(name).await?;
        }
        Ok(())
    }

    async fn submission(&self) -> Result<Submission, RpcError> {
        let chain = self.get_blockchain_info().await?.chain;
        let knots = self.get_network_info().await?.is_knots();
        Ok(if knots && chain == "regtest" {
            Submission::MineDirectly
        } else {
            Submission::Mempool
        })
    }

    async fn new_address(&self, network: Network) -> Result<Address, RpcError> {
        self.get_new_address(network).await
    }

    async fn fund(
        &self,
        tx: &Transaction,
        fee_rate: FeeRate,
    ) -> Result<(Transaction, FundedTransaction), RpcError> {
        self.fund_raw_transaction(tx, fee_rate).await
    }

    async fn sign(&self, tx: &Transaction) -> Result<Transaction, RpcError> {
        self.sign_raw_transaction_with_wallet(tx).await
    }

    async fn broadcast(&self, tx: &Transaction) -> Result<Txid, RpcError> {
        self.send_raw_transaction(tx).await
    }

    async fn test_accept(
        &self,
        txs: &[&Transaction],
    ) -> Result<Vec<MempoolAcceptResult>, RpcError> {
        self.test_mempool_accept(txs).await
    }

    async fn mempool_ancestors(&self, txid: &Txid) -> Result<Vec<Txid>, RpcError> {
        self.get_mempool_ancestors(txid).await
    }

    async fn mine(
        &self,
        to: &Address,
        mempool: &[Txid],
        raw: &[&Transaction],
    ) -> Result<BlockHash, RpcError> {
        self.generate_block(to, mempool, raw).await
    }

    async fn confirmations(&self, txid: &Txid) -> Result<i64, RpcError> {
        Ok(self.get_transaction(txid).await?.confirmations)
    }
}

/// A wallet on a [`MemoryChain`] for tests: it funds from an endless supply of confirmed
/// 1 BTC coins (outpoints no block holds, as the chain does not validate spends), "signs" with a
/// witness of a real P2WPKH signature's size, keeps a mempool where a tx spending a coin another
/// mempool tx spends replaces it (and its descendants), and mines the mempool on demand
/// ([`MemoryWallet::mine_mempool`], a miner's view under [`Submission::Mempool`]). A tx of a block
/// a reorg cut off is unknown until it is sent again, as after a rebroadcast. Clones share one
/// wallet.
#[derive(Debug, Clone)]
pub struct MemoryWallet {
    chain: MemoryChain,
    inner: Arc<Mutex<WalletInner>>,
}

#[derive(Debug)]
struct WalletInner {
    submission: Submission,
    /// Unconfirmed txs, in arrival order.
    mempool: Vec<Transaction>,
    /// Counter behind fresh coins and addresses.
    next: u32,
    /// Why the next `test_accept` refuses, if set.
    refuse: Option<String>,
    /// What [`FeeSource::estimate`](crate::FeeSource::estimate) answers.
    fee_estimate: Option<FeeRate>,
}

/// Value of each coin [`MemoryWallet::fund`] spends.
const COIN: Amount = Amount::from_sat(100_000_000);
/// Virtual size a P2WPKH input adds once signed.
const INPUT_VBYTES: u64 = 68;
/// Virtual size of a P2WPKH change output.
const CHANGE_VBYTES: u64 = 31;

impl MemoryWallet {
    /// A wallet on `chain` that submits pairs as `submission` says.
    pub fn new(chain: MemoryChain, submission: Submission) -> Self {
        Self {
            chain,
            inner: Arc::new(Mutex::new(WalletInner {
                submission,
                mempool: Vec::new(),
                next: 0,
                refuse: None,
                fee_estimate: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WalletInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The chain it sees.
    pub fn chain(&self) -> &MemoryChain {
        &self.chain
    }

    /// The txids in the mempool, in arrival order.
    pub fn mempool(&self) -> Vec<Txid> {
        self.lock()
            .mempool
            .iter()
            .map(Transaction::compute_txid)
            .collect()
    }

    /// Mines one block holding the whole mempool (what a miner does with standard txs).
    pub fn mine_mempool(&self) -> BlockHash {
        let txs = std::mem::take(&mut self.lock().mempool);
        self.chain.mine(txs)
    }

    /// Makes the next [`AnchorWallet::test_accept`] refuse with `reason` (a node's policy).
    pub fn refuse_next(&self, reason: impl Into<String>) {
        self.lock().refuse = Some(reason.into());
    }

    /// Sets what the wallet's fee estimator answers (`None`: no estimate, as on regtest).
    pub fn set_fee_estimate(&self, rate: Option<FeeRate>) {
        self.lock().fee_estimate = rate;
    }

    pub(crate) fn fee_estimate(&self) -> Option<FeeRate> {
        self.lock().fee_estimate
    }

    fn fresh(&self) -> u32 {
        let mut inner = self.lock();
        inner.next = inner.next.wrapping_add(1);
        inner.next
    }

    fn script(n: u32) -> ScriptBuf {
        let mut program = [0u8; 20];
        program[..4].copy_from_slice(&n.to_le_bytes());
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(program))
    }

    /// Height of the active block holding `txid`, if any.
    fn confirmed_at(&self, txid: &Txid) -> Option<u64> {
        (0..=self.chain.height()).rev().find(|&height| {
            self.chain
                .hash_at(height)
                .and_then(|hash| self.chain.get(&hash))
                .is_some_and(|block| block.txdata.iter().any(|tx| tx.compute_txid() == *txid))
        })
    }
}

fn unknown(method: &str, txid: &Txid) -> RpcError {
    RpcError::Rpc {
        method: method.into(),
        code: RPC_INVALID_ADDRESS_OR_KEY,
        message: format!("Invalid or non-wallet transaction id {txid}"),
    }
}

impl AnchorWallet for MemoryWallet {
    async fn load(&self) -> Result<(), RpcError> {
        Ok(())
    }

    async fn submission(&self) -> Result<Submission, RpcError> {
        Ok(self.lock().submission)
    }

    async fn new_address(&self, network: Network) -> Result<Address, RpcError> {
        let script = Self::script(self.fresh());
        Address::from_script(&script, network).map_err(|e| RpcError::Decode {
            method: "getnewaddress".into(),
            reason: e.to_string(),
        })
    }

    async fn fund(
        &self,
        tx: &Transaction,
        fee_rate: FeeRate,
    ) -> Result<(Transaction, FundedTransaction), RpcError> {
        let coin = self.fresh();
        let mut funded = tx.clone();
        funded.input.push(TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array(
                    bitcoin::hashes::sha256d::Hash::hash(&coin.to_le_bytes()).to_byte_array(),
                ),
                vout: 0,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        });
        let vsize = tx
            .vsize()
            .saturating_add((INPUT_VBYTES + CHANGE_VBYTES) as usize) as u64;
        let fee = fee_rate.fee_vb(vsize).ok_or_else(|| RpcError::Decode {
            method: "fundrawtransaction".into(),
            reason: "fee overflow".into(),
        })?;
        let spent: Amount = tx.output.iter().map(|o| o.value).sum();
        let change = COIN
            .checked_sub(spent)
            .and_then(|c| c.checked_sub(fee))
            .ok_or_else(|| RpcError::Rpc {
                method: "fundrawtransaction".into(),
                code: -4,
                message: "Insufficient funds".into(),
            })?;
        funded.output.push(TxOut {
            value: change,
            script_pubkey: Self::script(self.fresh()),
        });
        let info = FundedTransaction {
            hex: bitcoin::consensus::encode::serialize_hex(&funded),
            fee,
            change_position: (funded.output.len() - 1) as i64,
        };
        Ok((funded, info))
    }

    async fn sign(&self, tx: &Transaction) -> Result<Transaction, RpcError> {
        let mut signed = tx.clone();
        for input in &mut signed.input {
            if input.witness.is_empty() {
                input.witness = Witness::from_slice(&[vec![0x30; 72], vec![0x02; 33]]);
            }
        }
        Ok(signed)
    }

    async fn broadcast(&self, tx: &Transaction) -> Result<Txid, RpcError> {
        let txid = tx.compute_txid();
        if self.confirmed_at(&txid).is_some() {
            return Err(RpcError::Rpc {
                method: "sendrawtransaction".into(),
                code: -27,
                message: "Transaction already in block chain".into(),
            });
        }
        let mut inner = self.lock();
        if inner.mempool.iter().any(|t| t.compute_txid() == txid) {
            return Ok(txid);
        }
        // Replace-by-fee: drop every mempool tx that spends an outpoint `tx` spends, and their
        // descendants.
        let spends: Vec<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
        let mut gone: Vec<Txid> = Vec::new();
        inner.mempool.retain(|t| {
            let conflicts = t.input.iter().any(|i| {
                spends.contains(&i.previous_output) || gone.contains(&i.previous_output.txid)
            });
            if conflicts {
                gone.push(t.compute_txid());
            }
            !conflicts
        });
        inner.mempool.push(tx.clone());
        Ok(txid)
    }

    async fn test_accept(
        &self,
        txs: &[&Transaction],
    ) -> Result<Vec<MempoolAcceptResult>, RpcError> {
        let refuse = self.lock().refuse.take();
        Ok(txs
            .iter()
            .map(|tx| MempoolAcceptResult {
                txid: tx.compute_txid(),
                allowed: refuse.is_none(),
                reject_reason: refuse.clone(),
                package_error: None,
            })
            .collect())
    }

    async fn mempool_ancestors(&self, txid: &Txid) -> Result<Vec<Txid>, RpcError> {
        let inner = self.lock();
        let by_id: BTreeMap<Txid, &Transaction> = inner
            .mempool
            .iter()
            .map(|t| (t.compute_txid(), t))
            .collect();
        let Some(tx) = by_id.get(txid) else {
            return Err(RpcError::Rpc {
                method: "getmempoolancestors".into(),
                code: RPC_INVALID_ADDRESS_OR_KEY,
                message: "Transaction not in mempool".into(),
            });
        };
        // Funded from confirmed coins: a tx's mempool parents are the ones it spends directly.
        Ok(tx
            .input
            .iter()
            .map(|i| i.previous_output.txid)
            .filter(|parent| by_id.contains_key(parent))
            .collect())
    }

    async fn mine(
        &self,
        _to: &Address,
        mempool: &[Txid],
        raw: &[&Transaction],
    ) -> Result<BlockHash, RpcError> {
        let mut txs = Vec::with_capacity(mempool.len() + raw.len());
        {
            let mut inner = self.lock();
            for txid in mempool {
                let Some(position) = inner.mempool.iter().position(|t| t.compute_txid() == *txid)
                else {
                    return Err(RpcError::Rpc {
                        method: "generateblock".into(),
                        code: RPC_INVALID_ADDRESS_OR_KEY,
                        message: format!("Transaction {txid} not in mempool."),
                    });
                };
                txs.push(inner.mempool.remove(position));
            }
            let included: Vec<Txid> = raw.iter().map(|t| t.compute_txid()).collect();
            inner
                .mempool
                .retain(|t| !included.contains(&t.compute_txid()));
        }
        txs.extend(raw.iter().map(|t| (*t).clone()));
        Ok(self.chain.mine(txs))
    }

    async fn confirmations(&self, txid: &Txid) -> Result<i64, RpcError> {
        if let Some(height) = self.confirmed_at(txid) {
            let depth = self.chain.height().saturating_sub(height).saturating_add(1);
            return Ok(i64::try_from(depth).unwrap_or(i64::MAX));
        }
        if self
            .lock()
            .mempool
            .iter()
            .any(|t| t.compute_txid() == *txid)
        {
            return Ok(0);
        }
        Err(unknown("gettransaction", txid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnchorError, Anchorer};
    use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};

    fn anchorer(submission: Submission) -> (Anchorer<MemoryWallet>, MemoryWallet) {
        let wallet = MemoryWallet::new(MemoryChain::new(), submission);
        let keypair =
            Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[7; 32]).unwrap());
        (
            Anchorer::new(wallet.clone(), keypair, Network::Regtest),
            wallet,
        )
    }

    fn rate(sat_vb: u32) -> FeeRate {
        FeeRate::from_sat_per_vb_u32(sat_vb)
    }

    async fn post(a: &Anchorer<MemoryWallet>, fee: u32) -> crate::PostedEnvelope {
        let envelope = a.batch_envelope(&[1; 32], [2; 32], b"an encoded batch".to_vec());
        a.post(&envelope, None, rate(fee)).await.unwrap()
    }

    async fn confirmations(a: &Anchorer<MemoryWallet>, p: &crate::PostedEnvelope) -> (i64, i64) {
        let s = a.status(p).await.unwrap();
        (s.commit_confirmations, s.reveal_confirmations)
    }

    #[tokio::test]
    async fn a_pair_waits_in_the_mempool_confirms_and_is_rebroadcast_after_a_reorg() {
        let (a, wallet) = anchorer(Submission::Mempool);
        wallet.chain().mine_empty(3);
        let posted = post(&a, 2).await;
        assert_eq!(
            wallet.mempool(),
            vec![posted.commit_txid, posted.reveal_txid]
        );
        assert_eq!(confirmations(&a, &posted).await, (0, 0));
        // The reveal spends the commit's envelope output.
        assert_eq!(
            posted.reveal.input[0].previous_output,
            OutPoint {
                txid: posted.commit_txid,
                vout: posted.commit_vout
            }
        );

        wallet.mine_mempool();
        wallet.chain().mine_empty(1);
        assert_eq!(confirmations(&a, &posted).await, (2, 2));

        // A reorg cuts both blocks: the wallet no longer knows the pair (counted unconfirmed),
        // a rebroadcast puts it back, and it confirms again.
        wallet.chain().reorg_to(3);
        assert_eq!(confirmations(&a, &posted).await, (0, 0));
        a.rebroadcast(&posted).await.unwrap();
        assert_eq!(
            wallet.mempool(),
            vec![posted.commit_txid, posted.reveal_txid]
        );
        wallet.mine_mempool();
        assert_eq!(confirmations(&a, &posted).await, (1, 1));
        // Rebroadcasting a confirmed pair is harmless.
        a.rebroadcast(&posted).await.unwrap();
        assert!(wallet.mempool().is_empty());
    }

    #[tokio::test]
    async fn mine_directly_mines_commit_and_reveal_in_one_block() {
        let (a, wallet) = anchorer(Submission::MineDirectly);
        let posted = post(&a, 2).await;
        assert_eq!(wallet.chain().height(), 1);
        let block = wallet.chain().get(&wallet.chain().tip()).unwrap();
        let txids: Vec<Txid> = block
            .txdata
            .iter()
            .skip(1)
            .map(|t| t.compute_txid())
            .collect();
        assert_eq!(txids, vec![posted.commit_txid, posted.reveal_txid]);
        assert!(wallet.mempool().is_empty());
        assert_eq!(confirmations(&a, &posted).await, (1, 1));
    }

    #[tokio::test]
    async fn a_stuck_commit_is_replaced_by_one_paying_more_and_the_old_pair_is_gone() {
        let (a, wallet) = anchorer(Submission::Mempool);
        let stuck = post(&a, 1).await;
        let bumped = a.bump(&stuck, rate(10)).await.unwrap();
        assert_ne!(bumped.commit_txid, stuck.commit_txid);
        // Same wallet inputs (BIP125 replacement), a fee above the old pair's plus the
        // incremental relay fee, and the reveal re-signed for the new commit.
        let inputs = |tx: &Transaction| {
            tx.input
                .iter()
                .map(|i| i.previous_output)
                .collect::<Vec<_>>()
        };
        assert_eq!(inputs(&bumped.commit), inputs(&stuck.commit));
        let vsize = stuck.commit.vsize() as u64;
        assert!(
            bumped.commit_fee
                >= stuck.commit_fee + stuck.reveal_fee + rate(1).fee_vb(vsize).unwrap(),
            "{} after {} + {}",
            bumped.commit_fee,
            stuck.commit_fee,
            stuck.reveal_fee
        );
        assert_eq!(
            bumped.reveal.input[0].previous_output.txid,
            bumped.commit_txid
        );
        // The mempool holds the replacement pair only.
        assert_eq!(
            wallet.mempool(),
            vec![bumped.commit_txid, bumped.reveal_txid]
        );
        wallet.mine_mempool();
        assert_eq!(confirmations(&a, &bumped).await, (1, 1));
        assert!(a
            .status(&stuck)
            .await
            .is_ok_and(|s| s.reveal_confirmations == 0));
        // A confirmed pair is not bumped again.
        assert!(matches!(
            a.bump(&bumped, rate(20)).await,
            Err(AnchorError::CannotBump(_))
        ));
    }

    #[tokio::test]
    async fn a_policy_refusal_names_the_transaction_and_the_reason_and_sends_nothing() {
        let (a, wallet) = anchorer(Submission::Mempool);
        wallet.refuse_next("scriptpubkey");
        let envelope = a.batch_envelope(&[1; 32], [2; 32], b"batch".to_vec());
        match a.post(&envelope, None, rate(2)).await {
            Err(AnchorError::Rejected { which, reason, .. }) => {
                assert_eq!((which, reason.as_str()), ("commit", "scriptpubkey"));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(wallet.mempool().is_empty());
    }
}
