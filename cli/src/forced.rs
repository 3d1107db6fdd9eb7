//! `--via-bitcoin`: a wallet command's tx written to Bitcoin as a forced tx (protocol v3), in a
//! kind-3 envelope paid from a bitcoind wallet, instead of sent to the sequencer. Every batch
//! must execute it, first, once its block has `l1_confirmations`, and within the sequencing
//! window; with no sequencer at all every node derives the batch that does. So a sequencer
//! that censors the account, or is gone, cannot keep it out.
//!
//! The envelope is written under a key derived from the signed tx itself (any key will do:
//! a forced tx's authorship is its L2 signature), so posting the same tx again after a failed
//! attempt writes the same envelope script.

use std::path::PathBuf;

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{FeeRate, Network};
use clap::Args;
use sha2::{Digest, Sha256};
use stint_anchor::{Anchorer, Auth, BitcoindClient};
use stint_contracts::SignedTx;
use stint_protocol::{Envelope, EnvelopeKind};

use crate::CliError;

/// Default `--btc-wallet`: the devnet's funded wallet.
pub const DEFAULT_BTC_WALLET: &str = "stint";
/// Default `--btc-fee-rate` of a forced tx's commit and reveal, sat/vB.
pub const DEFAULT_FORCED_FEE_RATE: u64 = 2;

/// Help heading of the bitcoind options.
const HEADING: &str = "Bitcoin options (stint deposit, --via-bitcoin)";

/// The bitcoind wallet that pays for what a command writes to Bitcoin.
#[derive(Debug, Clone, Args)]
pub struct BitcoindOpts {
    /// bitcoind wallet that pays.
    #[arg(long, env = "STINT_BTC_WALLET", default_value = DEFAULT_BTC_WALLET, value_name = "NAME", help_heading = HEADING)]
    pub btc_wallet: String,
    /// bitcoind JSON-RPC URL.
    #[arg(long, env = "STINT_BITCOIND_RPC", default_value = stint_anchor::DEFAULT_BITCOIND_RPC_URL, help_heading = HEADING)]
    pub bitcoind_rpc: String,
    /// bitcoind cookie file (the devnet's is `devnet/bitcoind/regtest/.cookie`; its `env.sh`
    /// exports it).
    #[arg(long, env = "STINT_BITCOIND_COOKIE", value_name = "FILE", help_heading = HEADING)]
    pub bitcoind_cookie: Option<PathBuf>,
}

impl BitcoindOpts {
    /// A client of the paying wallet.
    pub(crate) fn wallet(&self) -> Result<BitcoindClient, CliError> {
        let cookie = self.bitcoind_cookie.clone().ok_or_else(|| {
            CliError::Usage(
                "writing to Bitcoin needs bitcoind's cookie file: give --bitcoind-cookie FILE \
                 (or STINT_BITCOIND_COOKIE)"
                    .into(),
            )
        })?;
        Ok(
            BitcoindClient::new(self.bitcoind_rpc.clone(), Auth::Cookie(cookie))
                .with_wallet(self.btc_wallet.clone()),
        )
    }
}

/// Writes forced txs to Bitcoin.
pub(crate) struct ForcedSender {
    wallet: BitcoindClient,
    network: Network,
    fee_rate: FeeRate,
}

/// What posting a forced tx wrote.
pub(crate) struct Posted {
    /// The reveal transaction (the one carrying the envelope).
    pub(crate) btc_txid: bitcoin::Txid,
}

impl ForcedSender {
    /// A sender paying from `opts`' wallet at `fee_rate_sat_vb`.
    pub(crate) async fn new(opts: &BitcoindOpts, fee_rate_sat_vb: u64) -> Result<Self, CliError> {
        let fee_rate = FeeRate::from_sat_per_vb(fee_rate_sat_vb)
            .filter(|_| fee_rate_sat_vb > 0)
            .ok_or_else(|| {
                CliError::Usage(format!("--btc-fee-rate {fee_rate_sat_vb}: not a fee rate"))
            })?;
        let wallet = opts.wallet()?;
        let chain = wallet
            .get_blockchain_info()
            .await
            .map_err(|e| bitcoind("reading the chain", e))?
            .chain;
        let network = match chain.as_str() {
            "main" => Network::Bitcoin,
            "test" | "testnet3" => Network::Testnet,
            "testnet4" => Network::Testnet4,
            "signet" => Network::Signet,
            "regtest" => Network::Regtest,
            other => {
                return Err(CliError::Usage(format!(
                    "bitcoind follows an unknown chain {other:?}"
                )))
            }
        };
        Ok(Self {
            wallet,
            network,
            fee_rate,
        })
    }

    /// Write `tx` to Bitcoin in a forced-tx envelope.
    pub(crate) async fn post(&self, tx: &SignedTx) -> Result<Posted, CliError> {
        let payload = tx.encode();
        let secret = SecretKey::from_slice(&Sha256::digest(
            [b"stint/forced-key".as_slice(), &payload].concat(),
        ))
        .map_err(|e| CliError::Usage(format!("deriving the envelope key: {e}")))?;
        let keypair = Keypair::from_secret_key(&Secp256k1::new(), &secret);
        let anchorer = Anchorer::new(self.wallet.clone(), keypair, self.network);
        let envelope = Envelope::new(EnvelopeKind::ForcedTx, anchorer.key(), payload);
        let posted = anchorer
            .post(&envelope, None, self.fee_rate)
            .await
            .map_err(|e| CliError::Usage(format!("writing the forced tx to Bitcoin: {e}")))?;
        Ok(Posted {
            btc_txid: posted.reveal_txid,
        })
    }
}

fn bitcoind(what: &str, e: stint_anchor::RpcError) -> CliError {
    CliError::Usage(format!("bitcoind ({what}): {e}"))
}
