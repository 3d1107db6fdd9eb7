//! Genesis: the chain's parameters, its initial state and its hash.
//!
//! A [`Genesis`] is loaded from a JSON file (strict: unknown fields are rejected, every value is
//! validated) and is identical on every node. Its [`hash`](Genesis::hash) is the tagged hash
//! `stint/genesis` of its canonical borsh encoding and is the `parent` of batch 1; its state is
//! one account record per `alloc` entry and its state root is computed with the state tree.
//!
//! ```json
//! {
//!   "chain_id": 1337,
//!   "anchor_key": "<64 hex digits: x-only key the sequencer anchors with>",
//!   "dispute_window": 6,
//!   "checkpoint_interval": 32,
//!   "max_batch_txs": 4096,
//!   "max_batch_bytes": 380000,
//!   "max_timestamp_drift_secs": 7200,
//!   "fee_recipient": "stint1...",
//!   "alloc": [{ "account": "stint1...", "balance": 1000000 }],
//!   "l1_start_height": 0,
//!   "l1_start_hash": "<block hash, the usual reversed hex>",
//!   "sequencing_window": 144,
//!   "l1_confirmations": 3,
//!   "bridge": { "signers": ["<x-only key>", "..."], "threshold": 2, "min_deposit": 10000 }
//! }
//! ```
//! `sequencing_window` (`S`), `l1_confirmations` and `bridge` are the protocol v2 L1-message
//! parameters (see the `l1` module): a batch executes the L1 messages of blocks with at least
//! `l1_confirmations` confirmations as seen from its `l1_origin`
//! ([`Genesis::message_horizon`]), and its `l1_origin` may lag its anchoring block by at most
//! `S` blocks; without a `bridge` there are no deposits (forced txs still work).
//! `dispute_window`, `checkpoint_interval`, `max_batch_txs`, `max_batch_bytes` and
//! `max_timestamp_drift_secs` may be left out and then take their defaults ([`DEFAULT_DISPUTE_WINDOW`],
//! ...). Derivation starts at the block `l1_start_height`, which must have hash `l1_start_hash`.

use std::collections::BTreeSet;

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::BlockHash;
use serde::{Deserialize, Serialize};
use stint_contracts::{account_entry, Account, AccountId};
use stint_state::{
    tagged_hash, ChangeSet, Hash, MemoryNodeStore, SparseMerkleTree, TreeUpdate, EMPTY_HASH,
};

use crate::{Bridge, MAX_BATCH_BYTES, MAX_BATCH_TXS};

/// Tag of the genesis hash.
pub const GENESIS_TAG: &str = "stint/genesis";

/// Production dispute window: about a week of Bitcoin blocks.
pub const DEFAULT_DISPUTE_WINDOW: u64 = 1008;
/// A small dispute window for development chains.
pub const DEVNET_DISPUTE_WINDOW: u64 = 6;
/// Default number of txs per segment (`K`).
pub const DEFAULT_CHECKPOINT_INTERVAL: u32 = 32;
/// Largest allowed `checkpoint_interval` (bounds the work of one fraud proof).
pub const MAX_CHECKPOINT_INTERVAL: u32 = 1024;
/// Default `max_batch_txs`.
pub const DEFAULT_MAX_BATCH_TXS: u32 = 4096;
/// Default `max_batch_bytes`: fits one standard reveal transaction with room to spare.
pub const DEFAULT_MAX_BATCH_BYTES: u32 = 380_000;
/// Smallest allowed `max_batch_bytes`: a header, a checkpoint and the largest possible tx fit.
pub const MIN_MAX_BATCH_BYTES: u32 = 64 * 1024;
/// Default `max_timestamp_drift_secs`: a batch's time is at most 30 minutes after its L1 origin
/// block's time (and never before it).
pub const DEFAULT_MAX_TIMESTAMP_DRIFT_SECS: u64 = 1800;
/// Largest allowed `max_timestamp_drift_secs`: two hours, Bitcoin's own future-time limit.
pub const MAX_TIMESTAMP_DRIFT_SECS: u64 = 7200;
/// Production sequencing window `S`: about a day of Bitcoin blocks.
pub const DEFAULT_SEQUENCING_WINDOW: u64 = 144;
/// A small sequencing window for development chains: a forced tx waits at most `S + c − 1` = 26
/// blocks (under a minute at a devnet's 2-second blocks), while a burst of batches, anchored one
/// per block, still fits in it.
pub const DEVNET_SEQUENCING_WINDOW: u64 = 24;
/// Largest allowed sequencing window: about a month of blocks.
pub const MAX_SEQUENCING_WINDOW: u64 = 4_320;
/// Default `l1_confirmations`: an L1 message is executed once its block has this many
/// confirmations at the anchoring block.
pub const DEFAULT_L1_CONFIRMATIONS: u64 = 3;
/// Largest number of genesis allocations.
pub const MAX_ALLOC: usize = 100_000;

/// One genesis allocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAlloc {
    /// The funded account.
    pub account: AccountId,
    /// Its starting balance.
    pub balance: u64,
}

/// The chain's parameters and initial allocations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain id every tx and batch header carries.
    pub chain_id: u64,
    /// The x-only key whose envelopes count as batches.
    pub anchor_key: XOnlyPublicKey,
    /// `W`: blocks after a batch's anchor during which it can be challenged.
    #[serde(default = "default_dispute_window")]
    pub dispute_window: u64,
    /// `K`: txs per segment (one checkpoint every `K` txs and after the last).
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: u32,
    /// Most txs in one batch.
    #[serde(default = "default_max_batch_txs")]
    pub max_batch_txs: u32,
    /// Most bytes in one encoded (uncompressed) batch.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: u32,
    /// How far a batch timestamp may be from its L1 origin block's time, in seconds.
    #[serde(default = "default_max_timestamp_drift_secs")]
    pub max_timestamp_drift_secs: u64,
    /// The account that receives the fees.
    pub fee_recipient: AccountId,
    /// Initial balances.
    #[serde(default)]
    pub alloc: Vec<GenesisAlloc>,
    /// Height of the first Bitcoin block derivation looks at.
    pub l1_start_height: u64,
    /// Hash of that block.
    pub l1_start_hash: BlockHash,
    /// `S`: most blocks a batch's `l1_origin` may lag its anchoring block (protocol v2), so no
    /// L1 message waits longer than `S` blocks.
    #[serde(default = "default_sequencing_window")]
    pub sequencing_window: u64,
    /// Fewest confirmations (at the anchoring block) of a batch's `l1_origin`, and so of every
    /// L1 message it executes.
    #[serde(default = "default_l1_confirmations")]
    pub l1_confirmations: u64,
    /// The bridge federation deposits pay (none: no deposits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
}

fn default_dispute_window() -> u64 {
    DEFAULT_DISPUTE_WINDOW
}
fn default_checkpoint_interval() -> u32 {
    DEFAULT_CHECKPOINT_INTERVAL
}
fn default_max_batch_txs() -> u32 {
    DEFAULT_MAX_BATCH_TXS
}
fn default_max_batch_bytes() -> u32 {
    DEFAULT_MAX_BATCH_BYTES
}
fn default_max_timestamp_drift_secs() -> u64 {
    DEFAULT_MAX_TIMESTAMP_DRIFT_SECS
}
fn default_sequencing_window() -> u64 {
    DEFAULT_SEQUENCING_WINDOW
}
fn default_l1_confirmations() -> u64 {
    DEFAULT_L1_CONFIRMATIONS
}

/// Why a genesis is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The JSON does not parse into a genesis (syntax, unknown field, bad key or address).
    #[error("genesis JSON: {0}")]
    Json(String),
    /// A parameter is out of its allowed range.
    #[error("genesis field `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An account is allocated twice.
    #[error("genesis alloc entry {index}: account {account} is allocated twice")]
    DuplicateAlloc {
        /// Index of the second entry.
        index: usize,
        /// The account.
        account: AccountId,
    },
    /// The allocations sum to more than `u64::MAX`.
    #[error("genesis alloc entry {index}: total supply overflows u64")]
    SupplyOverflow {
        /// Index of the entry that overflows.
        index: usize,
    },
    /// Building the genesis state failed.
    #[error("genesis state: {0}")]
    State(String),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> GenesisError {
    GenesisError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Genesis {
    /// The message horizon of a batch with L1 origin height `origin_height`: the highest block
    /// whose L1 messages it covers (the block with `l1_confirmations` confirmations when the
    /// origin is the tip; see the `l1` module).
    pub fn message_horizon(&self, origin_height: u64) -> u64 {
        origin_height
            .saturating_add(1)
            .saturating_sub(self.l1_confirmations.max(1))
    }

    /// The blocks whose L1 messages a batch with origin height `origin_height` on a parent with
    /// origin height `parent_origin_height` executes: heights in `(after, up_to]`, as
    /// `Some((after, up_to))`, or `None` when its horizon is not above its parent's.
    pub fn message_blocks(
        &self,
        parent_origin_height: u64,
        origin_height: u64,
    ) -> Option<(u64, u64)> {
        let after = self.message_horizon(parent_origin_height);
        let up_to = self.message_horizon(origin_height);
        (up_to > after).then_some((after, up_to))
    }

    /// A genesis with the given essentials and default parameters (dispute window
    /// [`DEFAULT_DISPUTE_WINDOW`]; set `dispute_window` to [`DEVNET_DISPUTE_WINDOW`] for a devnet).
    pub fn new(
        chain_id: u64,
        anchor_key: XOnlyPublicKey,
        fee_recipient: AccountId,
        alloc: Vec<GenesisAlloc>,
        l1_start_height: u64,
        l1_start_hash: BlockHash,
    ) -> Self {
        Self {
            chain_id,
            anchor_key,
            dispute_window: DEFAULT_DISPUTE_WINDOW,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            max_batch_txs: DEFAULT_MAX_BATCH_TXS,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_timestamp_drift_secs: DEFAULT_MAX_TIMESTAMP_DRIFT_SECS,
            fee_recipient,
            alloc,
            l1_start_height,
            l1_start_hash,
            sequencing_window: DEFAULT_SEQUENCING_WINDOW,
            l1_confirmations: DEFAULT_L1_CONFIRMATIONS,
            bridge: None,
        }
    }

    /// Parse and [validate](Genesis::validate) a genesis from JSON.
    pub fn from_json(json: &str) -> Result<Self, GenesisError> {
        let genesis: Self =
            serde_json::from_str(json).map_err(|e| GenesisError::Json(e.to_string()))?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// The genesis as pretty JSON (the format [`Genesis::from_json`] reads).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Check every parameter's range and the allocations.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.dispute_window == 0 {
            return Err(invalid("dispute_window", "must be at least 1 block"));
        }
        if self.checkpoint_interval == 0 || self.checkpoint_interval > MAX_CHECKPOINT_INTERVAL {
            return Err(invalid(
                "checkpoint_interval",
                format!("must be between 1 and {MAX_CHECKPOINT_INTERVAL}"),
            ));
        }
        if self.max_batch_txs == 0 || self.max_batch_txs as usize > MAX_BATCH_TXS {
            return Err(invalid(
                "max_batch_txs",
                format!("must be between 1 and {MAX_BATCH_TXS}"),
            ));
        }
        if self.max_batch_bytes < MIN_MAX_BATCH_BYTES
            || self.max_batch_bytes as usize > MAX_BATCH_BYTES
        {
            return Err(invalid(
                "max_batch_bytes",
                format!("must be between {MIN_MAX_BATCH_BYTES} and {MAX_BATCH_BYTES}"),
            ));
        }
        if self.max_timestamp_drift_secs > MAX_TIMESTAMP_DRIFT_SECS {
            return Err(invalid(
                "max_timestamp_drift_secs",
                format!("at most {MAX_TIMESTAMP_DRIFT_SECS}"),
            ));
        }
        if self.sequencing_window == 0 || self.sequencing_window > MAX_SEQUENCING_WINDOW {
            return Err(invalid(
                "sequencing_window",
                format!("must be between 1 and {MAX_SEQUENCING_WINDOW} blocks"),
            ));
        }
        if self.l1_confirmations == 0 || self.l1_confirmations > self.sequencing_window {
            return Err(invalid(
                "l1_confirmations",
                "must be at least 1 and at most sequencing_window",
            ));
        }
        if let Some(bridge) = &self.bridge {
            bridge
                .validate()
                .map_err(|e| invalid("bridge", e.to_string()))?;
        }
        if self.alloc.len() > MAX_ALLOC {
            return Err(invalid("alloc", format!("at most {MAX_ALLOC} entries")));
        }
        let mut seen = BTreeSet::new();
        let mut supply: u64 = 0;
        for (index, entry) in self.alloc.iter().enumerate() {
            if !seen.insert(entry.account) {
                return Err(GenesisError::DuplicateAlloc {
                    index,
                    account: entry.account,
                });
            }
            supply = supply
                .checked_add(entry.balance)
                .ok_or(GenesisError::SupplyOverflow { index })?;
        }
        Ok(())
    }

    /// The canonical encoding that the genesis hash commits to: every field in declaration
    /// order, integers little-endian, keys and hashes as 32 raw bytes, and the allocations as a
    /// `u64` count followed by `(account, balance)` pairs, the bridge as a 0 byte (none) or a 1
    /// byte, the `u64` signer count, the keys, the threshold and `min_deposit`. Written by hand,
    /// so it cannot fail.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(128_usize.saturating_add(self.alloc.len().saturating_mul(40)));
        out.extend_from_slice(&self.chain_id.to_le_bytes());
        out.extend_from_slice(&self.anchor_key.serialize());
        out.extend_from_slice(&self.dispute_window.to_le_bytes());
        out.extend_from_slice(&self.checkpoint_interval.to_le_bytes());
        out.extend_from_slice(&self.max_batch_txs.to_le_bytes());
        out.extend_from_slice(&self.max_batch_bytes.to_le_bytes());
        out.extend_from_slice(&self.max_timestamp_drift_secs.to_le_bytes());
        out.extend_from_slice(&self.fee_recipient.0);
        out.extend_from_slice(&(self.alloc.len() as u64).to_le_bytes());
        for entry in &self.alloc {
            out.extend_from_slice(&entry.account.0);
            out.extend_from_slice(&entry.balance.to_le_bytes());
        }
        out.extend_from_slice(&self.l1_start_height.to_le_bytes());
        out.extend_from_slice(&self.l1_start_hash.to_byte_array());
        out.extend_from_slice(&self.sequencing_window.to_le_bytes());
        out.extend_from_slice(&self.l1_confirmations.to_le_bytes());
        match &self.bridge {
            None => out.push(0),
            Some(bridge) => {
                out.push(1);
                out.extend_from_slice(&(bridge.signers.len() as u64).to_le_bytes());
                for key in &bridge.signers {
                    out.extend_from_slice(&key.serialize());
                }
                out.extend_from_slice(&bridge.threshold.to_le_bytes());
                out.extend_from_slice(&bridge.min_deposit.to_le_bytes());
            }
        }
        out
    }

    /// `tagged_hash("stint/genesis", encode())`: the parent hash of batch 1.
    pub fn hash(&self) -> Hash {
        tagged_hash(GENESIS_TAG, &[&self.encode()])
    }

    /// The chain parameters as `stint_chainInfo` answers them on every node (camelCase JSON);
    /// `genesis_state_root` is [`Genesis::state_root`], passed in because callers hold it.
    pub fn chain_info(&self, genesis_state_root: &Hash) -> serde_json::Value {
        serde_json::json!({
            "chainId": self.chain_id,
            "genesisHash": hex::encode(self.hash()),
            "genesisStateRoot": hex::encode(genesis_state_root),
            "anchorKey": self.anchor_key.to_string(),
            "disputeWindow": self.dispute_window,
            "checkpointInterval": self.checkpoint_interval,
            "maxBatchTxs": self.max_batch_txs,
            "maxBatchBytes": self.max_batch_bytes,
            "feeRecipient": self.fee_recipient.to_address(),
            "l1StartHeight": self.l1_start_height,
            "l1StartHash": self.l1_start_hash.to_string(),
        })
    }

    /// The genesis state: one account record per allocation with a non-zero balance.
    pub fn state(&self) -> ChangeSet {
        self.alloc
            .iter()
            .map(|a| {
                account_entry(
                    &a.account,
                    &Account {
                        balance: a.balance,
                        nonce: 0,
                    },
                )
            })
            .collect()
    }

    /// The genesis state as a tree update from the empty tree: its `root` is the genesis state
    /// root, and its nodes are what a node store must hold to read the genesis state.
    pub fn state_update(&self) -> Result<TreeUpdate, GenesisError> {
        SparseMerkleTree::new(MemoryNodeStore::new())
            .apply(&EMPTY_HASH, &self.state())
            .map_err(|e| GenesisError::State(e.to_string()))
    }

    /// The genesis state root (`prev_state_root` of batch 1).
    pub fn state_root(&self) -> Result<Hash, GenesisError> {
        Ok(self.state_update()?.root)
    }
}
