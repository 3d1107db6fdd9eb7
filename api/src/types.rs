//! The request and response types of the API (DESIGN §3 shapes, camelCase).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stint_contracts::{Stream, Task};
use stint_protocol::Genesis;
use stint_state::Hash;

/// A 32-byte hash (header hash, state root, task or stream id) as 64 lowercase hex digits.
///
/// Decoding is strict: exactly 64 hex digits, no `0x` prefix.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hex32(pub Hash);

impl Hex32 {
    /// Parses exactly 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| {
            format!(
                "expected 64 hex digits, got {}",
                if text.len() > 80 {
                    format!("{} characters", text.len())
                } else {
                    format!("{text:?}")
                }
            )
        })?;
        Ok(Self(out))
    }
}

impl fmt::Display for Hex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hex32({self})")
    }
}

impl From<Hash> for Hex32 {
    fn from(hash: Hash) -> Self {
        Self(hash)
    }
}

impl Serialize for Hex32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Hex32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Chain parameters from the genesis (`stint_chainInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfo {
    /// The chain id every tx signs over.
    pub chain_id: u64,
    /// The genesis hash.
    pub genesis_hash: Hex32,
    /// The genesis state root.
    pub genesis_state_root: Hex32,
    /// The sequencer's anchoring key (x-only, hex).
    pub anchor_key: String,
    /// Dispute window in Bitcoin blocks.
    pub dispute_window: u64,
    /// Txs per checkpoint segment.
    pub checkpoint_interval: u32,
    /// Most txs in a batch.
    pub max_batch_txs: u32,
    /// Most bytes in an encoded batch.
    pub max_batch_bytes: u32,
    /// Where fees go.
    pub fee_recipient: String,
    /// The Bitcoin height derivation starts at.
    pub l1_start_height: u64,
    /// The Bitcoin block hash at that height.
    pub l1_start_hash: bitcoin::BlockHash,
}

impl ChainInfo {
    /// The chain info of `genesis`, whose state root is `genesis_state_root`.
    pub fn new(genesis: &Genesis, genesis_state_root: Hash) -> Self {
        Self {
            chain_id: genesis.chain_id,
            genesis_hash: Hex32(genesis.hash()),
            genesis_state_root: Hex32(genesis_state_root),
            anchor_key: genesis.anchor_key.to_string(),
            dispute_window: genesis.dispute_window,
            checkpoint_interval: genesis.checkpoint_interval,
            max_batch_txs: genesis.max_batch_txs,
            max_batch_bytes: genesis.max_batch_bytes,
            fee_recipient: genesis.fee_recipient.to_address(),
            l1_start_height: genesis.l1_start_height,
            l1_start_hash: genesis.l1_start_hash,
        }
    }
}

/// `stint_bridgeInfo`: how bitcoin enters the rollup (protocol v3 L1 messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeInfo {
    /// Whether the genesis names a bridge (without one there are no deposits; forced txs work
    /// either way).
    pub enabled: bool,
    /// The bridge's P2TR address on this node's Bitcoin network.
    pub deposit_address: Option<String>,
    /// Its output script, hex.
    pub deposit_script: Option<String>,
    /// How a deposit names its L2 account: an output with this script prefix followed by the
    /// 32 account bytes (`OP_RETURN "STNT" "D" <account>`), in the paying transaction.
    pub deposit_tag_prefix: String,
    /// The federation's x-only keys, in genesis order.
    pub signers: Vec<String>,
    /// Signatures a payout needs.
    pub threshold: u32,
    /// Smallest deposit credited, sats (= units).
    pub min_deposit: u64,
    /// Blocks a batch's L1 origin may lag its anchoring block.
    pub sequencing_window: u64,
    /// Confirmations a message's block needs before a batch executes it.
    pub l1_confirmations: u64,
}

impl BridgeInfo {
    /// The bridge info of `genesis` on `network`.
    pub fn new(genesis: &Genesis, network: bitcoin::Network) -> Self {
        let bridge = genesis.bridge.as_ref();
        let script = bridge.and_then(|b| b.script_pubkey());
        let tag = stint_protocol::DepositTag {
            account: stint_contracts::AccountId([0; 32]),
        }
        .to_script();
        let prefix = tag
            .as_bytes()
            .get(..tag.len().saturating_sub(32))
            .unwrap_or_default();
        Self {
            enabled: bridge.is_some(),
            deposit_address: script.as_ref().and_then(|s| {
                bitcoin::Address::from_script(s, network)
                    .ok()
                    .map(|a| a.to_string())
            }),
            deposit_script: script.as_ref().map(|s| hex::encode(s.as_bytes())),
            deposit_tag_prefix: hex::encode(prefix),
            signers: bridge
                .map(|b| b.signers.iter().map(|k| k.to_string()).collect())
                .unwrap_or_default(),
            threshold: bridge.map_or(0, |b| b.threshold),
            min_deposit: bridge.map_or(0, |b| b.min_deposit),
            sequencing_window: genesis.sequencing_window,
            l1_confirmations: genesis.l1_confirmations,
        }
    }
}

/// A head: a batch number with its header hash and state root (number 0 is the genesis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    /// Batch number.
    pub number: u64,
    /// Header hash (the genesis hash for number 0).
    pub hash: Hex32,
    /// State root after the batch.
    pub state_root: Hex32,
}

/// A Bitcoin block: height and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1Ref {
    /// Height.
    pub height: u64,
    /// Block hash (Bitcoin's display order).
    pub hash: bitcoin::BlockHash,
}

/// `stint_syncStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// The newest batch this node serves reads from: the sequencer's latest sealed batch, the
    /// verifier's newest verified one.
    pub soft: Head,
    /// The newest anchored canonical batch (on a verifier: the newest verified one).
    pub anchored: Head,
    /// The newest final batch.
    #[serde(rename = "final")]
    pub final_: Head,
    /// The last Bitcoin block this node processed, once it processed one.
    pub l1: Option<L1Ref>,
}

/// Options of the state reads (`getAccount`, `getTask`, `getStream`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadOptions {
    /// Include a Merkle proof of the record against `stateRoot`.
    pub proof: bool,
    /// Read the state after this batch (default: the node's soft head).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
}

/// A Merkle proof of one state key, present when [`ReadOptions::proof`] was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofFields {
    /// The encoded `SparseMerkleProof`, hex.
    pub proof: String,
    /// The leaf's value, hex (`null`: the key has no leaf, which the proof shows).
    pub value: Option<String>,
}

/// `stint_getAccount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    /// The account's address.
    pub address: String,
    /// Balance in units (1 unit = 1 sat).
    pub balance: u64,
    /// The nonce its next tx must carry, in the state read.
    pub nonce: u64,
    /// The nonce after this node's pending txs of the account (equal to `nonce` on a node
    /// without a mempool, and for reads at an explicit `at`).
    pub pending_nonce: u64,
    /// The batch the state was read at.
    pub at: u64,
    /// That batch's state root.
    pub state_root: Hex32,
    /// The proof, when asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofFields>,
}

/// `stint_getTask`: the task record with its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    /// The task id.
    pub id: Hex32,
    /// The record.
    #[serde(flatten)]
    pub task: Task,
    /// The batch the state was read at.
    pub at: u64,
    /// That batch's state root.
    pub state_root: Hex32,
    /// The proof, when asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofFields>,
}

/// `stint_getStream`: the stream record with its id and what is withdrawable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfo {
    /// The stream id.
    pub id: Hex32,
    /// The record.
    #[serde(flatten)]
    pub stream: Stream,
    /// Units the worker could withdraw at `asOf`.
    pub withdrawable: u64,
    /// The timestamp of the batch read at (0 for the genesis).
    pub as_of: u64,
    /// The batch the state was read at.
    pub at: u64,
    /// That batch's state root.
    pub state_root: Hex32,
    /// The proof, when asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofFields>,
}

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchState {
    /// Sealed by the sequencer, not anchored yet (the sequencer's view only).
    Soft,
    /// Anchored and canonical, inside its dispute window.
    Anchored,
    /// Anchored and past its dispute window without a valid challenge.
    Final,
    /// Rolled back by a valid challenge.
    Invalidated,
}

impl BatchState {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Soft => "soft",
            Self::Anchored => "anchored",
            Self::Final => "final",
            Self::Invalidated => "invalidated",
        }
    }
}

/// Where a batch is anchored on Bitcoin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorRef {
    /// The reveal transaction.
    pub btc_txid: bitcoin::Txid,
    /// The height of its block.
    pub height: u64,
}

/// Which batch `stint_getBatch` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchRef {
    /// The canonical batch with this number.
    Number(u64),
    /// The batch with this header hash (canonical or invalidated).
    Hash(Hash),
}

impl Serialize for BatchRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => serializer.serialize_u64(*n),
            Self::Hash(h) => serializer.serialize_str(&hex::encode(h)),
        }
    }
}

/// `stint_getBatch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    /// Batch number.
    pub number: u64,
    /// Header hash.
    pub hash: Hex32,
    /// The parent's header hash.
    pub parent: Hex32,
    /// The state root the header claims; for a derived batch, the root this node computed
    /// (all zeros until it has).
    pub state_root: Hex32,
    /// Whether every node derived it itself: no batch executed the L1 messages due within the
    /// sequencing window, so it holds just those (protocol v3).
    #[serde(default)]
    pub derived: bool,
    /// The state root it builds on.
    pub prev_state_root: Hex32,
    /// Merkle root of its txs.
    pub tx_root: Hex32,
    /// Merkle root of its checkpoint trace.
    pub trace_root: Hex32,
    /// Its timestamp (Unix seconds).
    pub timestamp: u64,
    /// The Bitcoin block it builds on.
    pub l1_origin: L1Ref,
    /// Number of txs.
    pub tx_count: u32,
    /// Merkle root of the L1 messages (deposits, forced txs) it executes first (protocol v3).
    pub msg_root: Hex32,
    /// Number of those L1 messages.
    pub msg_count: u32,
    /// Where it stands.
    pub status: BatchState,
    /// Where it is anchored, once it is.
    pub anchor: Option<AnchorRef>,
    /// Its txids, in order.
    pub txids: Vec<Hex32>,
    /// The canonical encoding of the whole batch, hex, when asked for with `{"raw": true}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// Where a forced tx came from: the Bitcoin transaction that carried it (protocol v3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForcedRef {
    /// The Bitcoin transaction carrying its envelope.
    pub btc_txid: bitcoin::Txid,
    /// Its block's height.
    pub height: u64,
}

/// `stint_getDeposit`: a deposit to the bridge, by Bitcoin outpoint (protocol v3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositInfo {
    /// `txid:vout`.
    pub outpoint: String,
    /// `seen` (on the followed chain, waiting for a batch), `credited`, `not_credited` (executed,
    /// but the account could not be credited: see `reason`), or `reverted` (a batch executed it,
    /// then it left the chain: a reorg or a valid challenge removed it, and it is not on the
    /// chain now).
    pub status: String,
    /// The L2 account it names.
    pub account: String,
    /// Sats (= units).
    pub amount: u64,
    /// Height of its Bitcoin block.
    pub l1_height: u64,
    /// The batch that executed it (also for `reverted`: the one that did).
    pub batch: Option<u64>,
    /// That batch's finality (`soft`, `anchored`, `final`), when it is held.
    pub finality: Option<String>,
    /// Why it was not credited.
    pub reason: Option<String>,
}

/// `stint_getWithdrawal`: a withdrawal by id (protocol v3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalInfo {
    /// The withdrawal id (`tagged_hash("stint/withdrawal", sender ‖ nonce_le)`).
    pub id: Hex32,
    /// Who withdrew.
    pub from: String,
    /// The Bitcoin output script it pays, hex.
    pub btc_script: String,
    /// That script's address on this node's Bitcoin network.
    pub btc_address: Option<String>,
    /// Sats owed.
    pub amount: u64,
    /// `pending` (in a batch that is not final yet) or `final` (payable: its batch is final).
    /// `signed` and `paid` come with the bridge federation (issue 16's next step).
    pub status: String,
    /// The batch whose state this answer was read from.
    pub at: u64,
}

/// `stint_getTransaction`: the tx with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionInfo {
    /// The txid.
    pub txid: Hex32,
    /// The signed tx.
    pub tx: stint_contracts::SignedTx,
    /// Its canonical encoding, hex.
    pub raw: String,
    /// `pending`, `soft`, `anchored`, `final` or `dropped`.
    pub finality: String,
    /// The batch that holds it.
    pub batch: Option<u64>,
    /// Its index in that batch (for a forced tx: among the batch's L1 messages).
    pub index: Option<u32>,
    /// For a forced tx (sent through Bitcoin), where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<ForcedRef>,
}

/// `stint_getReceipt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The txid.
    pub txid: Hex32,
    /// `executed` or `failed`; `null` while pending or once dropped; `skipped` for a forced tx
    /// that was invalid when its batch executed it (see `error`).
    pub status: Option<String>,
    /// `pending`, `soft`, `anchored`, `final` or `dropped`.
    pub finality: String,
    /// The batch that holds it.
    pub batch: Option<u64>,
    /// Its index in that batch.
    pub index: Option<u32>,
    /// Why it failed, or why it was dropped.
    pub error: Option<String>,
    /// The fee charged.
    pub fee: Option<u64>,
    /// For a forced tx (sent through Bitcoin), where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<ForcedRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex32_is_strict() {
        let ok = "ab".repeat(32);
        assert_eq!(Hex32::parse(&ok).unwrap().0, [0xab; 32]);
        for bad in [
            format!("0x{}", "ab".repeat(31)),
            "ab".repeat(31),
            "ab".repeat(33),
            "AB".repeat(32).replace('B', "G"),
            String::new(),
        ] {
            assert!(Hex32::parse(&bad).is_err(), "{bad}");
            assert!(serde_json::from_value::<Hex32>(serde_json::json!(bad)).is_err());
        }
        let long = "a".repeat(100_000);
        assert!(Hex32::parse(&long).unwrap_err().len() < 100);
    }

    #[test]
    fn read_options_refuse_unknown_fields() {
        assert!(serde_json::from_str::<ReadOptions>(r#"{"proof":true,"at":3}"#).is_ok());
        assert!(serde_json::from_str::<ReadOptions>(r#"{"proof":true,"raw":true}"#).is_err());
        assert!(serde_json::from_str::<ReadOptions>(r#"{"at":-1}"#).is_err());
    }

    #[test]
    fn account_proof_fields_round_trip() {
        let mut account = AccountInfo {
            address: "stint1x".into(),
            balance: 5,
            nonce: 1,
            pending_nonce: 2,
            at: 3,
            state_root: Hex32([1; 32]),
            proof: None,
        };
        let plain = serde_json::to_value(&account).unwrap();
        assert!(plain.get("proof").is_none() && plain.get("value").is_none());
        assert_eq!(plain["pendingNonce"], 2);
        account.proof = Some(ProofFields {
            proof: "00".into(),
            value: None,
        });
        let proved = serde_json::to_value(&account).unwrap();
        assert_eq!(proved["proof"], "00");
        assert!(proved["value"].is_null());
        let back: AccountInfo = serde_json::from_value(proved).unwrap();
        assert_eq!(back, account);
    }
}
