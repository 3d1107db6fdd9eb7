//! # stint-api
//!
//! The JSON-RPC API that dApps, the CLI, the tests and the bench speak to Stint's nodes, defined
//! once: the sequencer and the verifier serve the read methods from the same code, so a client
//! gets the same answer from either (DESIGN §4: a dApp can read from a node that does not trust
//! the sequencer).
//!
//! ## Key components
//!
//! - Types ([`ChainInfo`], [`SyncStatus`], [`Head`], [`AccountInfo`], [`TaskInfo`],
//!   [`StreamInfo`], [`BatchInfo`], [`Receipt`], …): the DESIGN §3 shapes, camelCase, hashes
//!   as 64 lowercase hex digits ([`Hex32`]), Bitcoin ids in Bitcoin's byte order.
//! - [`ChainView`]: what a node must provide for the reads (its state store, the state root and
//!   timestamp of each retained batch, its batches with their status, its heads). Each node
//!   implements it over its own storage; nothing else of the node is visible here.
//! - [`register_read_methods`]: registers `stint_chainInfo`, `stint_syncStatus`,
//!   `stint_getAccount`, `stint_getTask`, `stint_getStream`, `stint_getBatch`,
//!   `stint_getTransaction`, `stint_getReceipt` and `stint_getTasks` on a node's
//!   [`stint_rpc::RpcModule`], with their OpenRPC documentation and every error code they
//!   answer with.
//! - [`ApiClient`]: a typed client over HTTP for the same methods (and the sequencer's submit
//!   and receipt methods), with [`ClientError`] telling an unreachable node, a JSON-RPC error
//!   and a malformed answer apart.
//!
//! ## Usage
//!
//! ```no_run
//! # async fn demo() -> Result<(), stint_api::ClientError> {
//! let node = stint_api::ApiClient::new("http://127.0.0.1:7546")?;
//! let status = node.sync_status().await?;
//! let batch = node.batch(stint_api::BatchRef::Number(status.anchored.number)).await?;
//! println!("batch {} is {:?}", batch.number, batch.status);
//! # Ok(()) }
//! ```
//!
//! ## Errors the read methods answer with
//!
//! −32602 for malformed params (and params a method does not take), [`NOT_FOUND`] (12) for a
//! missing account state version, task, stream or batch, −32603 for a node failure (its details
//! go to the node's log only).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod client;
mod messages;
mod reads;
mod types;
mod view;

pub use client::{ApiClient, ClientError, DEFAULT_REQUEST_TIMEOUT};
pub use messages::{forced_txids, message_records, MessageKey, MessageRecord, RecordedOutcome};
pub use reads::{register_read_methods, MAX_TASKS_PER_QUERY, READ_METHODS};
pub use types::{
    AccountInfo, AnchorRef, BatchInfo, BatchRef, BatchState, BridgeInfo, ChainInfo, DepositInfo,
    ForcedRef, Head, Hex32, L1Ref, ProofFields, ReadOptions, Receipt, StreamInfo, SyncStatus,
    TaskInfo, TransactionInfo, WithdrawalInfo,
};
pub use view::{task_index_entries, BatchEntry, ChainView, TaskRole, TxEntry, ViewError};

/// Application error: the object (state version, task, stream, batch, transaction) is not
/// known to this node, or no longer retained.
pub const NOT_FOUND: i64 = 12;
