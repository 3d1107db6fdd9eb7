//! The subscription publishers handle ([`Publishers`]): the `newBatches`, `txStatus` and
//! `finality` topics, registered once by the RPC module and published to by admission, the
//! sealer, convergence and the anchoring loop. Before the topics are installed (and in a node
//! without RPC) publishing does nothing.

use std::sync::OnceLock;

use bitcoin::hashes::Hash as _;
use bitcoin::BlockHash;
use serde_json::{json, Value};
use stint_contracts::Txid;
use stint_protocol::BatchHeader;
use stint_rpc::Publisher;
use stint_state::Hash;

use crate::chain::{AnchorInfo, BatchFinality};
use crate::error::SequencerError;

/// The three topics.
struct Topics {
    new_batches: Publisher,
    tx_status: Publisher,
    finality: Publisher,
}

/// Where the node's events go.
#[derive(Default)]
pub(crate) struct Publishers {
    topics: OnceLock<Topics>,
}

impl std::fmt::Debug for Publishers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publishers")
            .field("installed", &self.topics.get().is_some())
            .finish()
    }
}

impl Publishers {
    /// Install the topics (once).
    pub(crate) fn install(
        &self,
        new_batches: Publisher,
        tx_status: Publisher,
        finality: Publisher,
    ) -> Result<(), SequencerError> {
        self.topics
            .set(Topics {
                new_batches,
                tx_status,
                finality,
            })
            .map_err(|_| SequencerError::Internal("publishers set twice".into()))
    }

    /// `newBatches`: a batch was sealed (status soft).
    pub(crate) fn new_batch(&self, header: &BatchHeader, hash: &Hash) {
        if let Some(t) = self.topics.get() {
            t.new_batches
                .publish(batch_json(header, hash, BatchFinality::Soft, None));
        }
    }

    /// `txStatus`: the finality of tx `txid` changed.
    pub(crate) fn tx_status(&self, txid: &Txid, finality: &str, batch: Option<u64>) {
        if let Some(t) = self.topics.get() {
            t.tx_status.publish(json!({
                "txid": txid.to_string(),
                "finality": finality,
                "batch": batch,
            }));
        }
    }

    /// `finality`: the status of batch `number` (header hash `hash`) changed.
    pub(crate) fn finality(&self, number: u64, hash: &Hash, finality: BatchFinality) {
        if let Some(t) = self.topics.get() {
            t.finality.publish(json!({
                "batch": number,
                "hash": hex::encode(hash),
                "status": finality.as_str(),
            }));
        }
    }
}

/// The JSON of a batch header with its status and anchor (the `newBatches` event).
fn batch_json(
    header: &BatchHeader,
    hash: &Hash,
    status: BatchFinality,
    anchor: Option<&AnchorInfo>,
) -> Value {
    json!({
        "number": header.number,
        "hash": hex::encode(hash),
        "parent": hex::encode(header.parent),
        "stateRoot": hex::encode(header.state_root),
        "prevStateRoot": hex::encode(header.prev_state_root),
        "txRoot": hex::encode(header.tx_root),
        "traceRoot": hex::encode(header.trace_root),
        "timestamp": header.timestamp,
        "l1Origin": {"height": header.l1_origin.height, "hash": BlockHash::from_byte_array(header.l1_origin.hash).to_string()},
        "txCount": header.tx_count,
        "derived": header.is_derived(),
        "status": status.as_str(),
        "anchor": anchor.map(|a| json!({"btcTxid": a.btc_txid.to_string(), "height": a.height})),
    })
}
