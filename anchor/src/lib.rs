//! # stint-anchor
//!
//! Bitcoin I/O for Stint: everything that talks to bitcoind. Protocol rules (what an envelope
//! looks like, what counts as a batch) live in `stint-protocol`; this crate moves bytes.
//!
//! ## Key components
//!
//! * [`BitcoindClient`] — async JSON-RPC client (cookie or user/password auth, wallet-scoped
//!   URLs, typed methods). [`RpcError`] separates *transport* failures (bitcoind down: retry,
//!   [`RpcError::is_transient`]) from RPC errors (code + message) and decode errors.
//! * [`Anchorer`] — writes a `stint_protocol::Envelope` with a taproot commit/reveal pair: the
//!   commit is funded and signed by bitcoind's wallet, the reveal is signed with the anchor key
//!   (BIP340, script path) and carries the `OP_RETURN` index hint. Tracks confirmations, bumps the
//!   fee of a stuck commit by replacement (re-signing the reveal), re-broadcasts after reorgs.
//!   [`Submission`] says how pairs reach a block: through the mempool (Bitcoin Core), or mined
//!   directly with `generateblock` on a regtest Bitcoin Knots, whose relay policy refuses the
//!   envelope's `OP_IF`.
//! * [`ChainFollower`] — polls bitcoind and emits [`ChainEvent::Connected`] /
//!   [`ChainEvent::Disconnected`] in order, through reorgs of any depth, resumable from a
//!   (height, hash) and unharmed by bitcoind outages.
//! * [`BitcoindConfig`] — how a node reaches bitcoind: the `[bitcoind]` table both nodes' configs
//!   share.
//! * [`BlockSource`] — what the follower reads the chain from: [`BitcoindClient`], or
//!   [`MemoryChain`], an in-memory block tree for tests (reorgs to any depth, outages on demand).
//! * [`AnchorWallet`] — what the anchorer funds, signs, sends and mines through:
//!   [`BitcoindClient`]'s wallet, or [`MemoryWallet`] on a [`MemoryChain`] for tests of
//!   anchoring logic (a mempool with replacement, mining on demand).
//! * [`FeeSource`] / [`FeePolicy`] — where a node's envelope fees come from: bitcoind's
//!   `estimatesmartfee` (or a rate set on a [`MemoryWallet`]), clamped to a configured floor and
//!   ceiling; the floor when there is no estimate.
//! * [`RegtestNode`] — a bitcoind in regtest owned by this process (tests, `stint devnet`):
//!   free loopback ports, cookie auth, stop on drop, restart on the same data directory, reuse of
//!   a data directory left by a killed run.
//!
//! ## Usage
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bitcoin::{FeeRate, Network};
//! use bitcoin::secp256k1::{Keypair, Secp256k1};
//! use stint_anchor::{Anchorer, ChainEvent, ChainFollower, RegtestNode};
//! use stint_protocol::find_envelopes;
//!
//! let node = RegtestNode::start("/tmp/stint-regtest").await?;
//! let wallet = node.client().ensure_wallet("stint").await?;
//! let address = wallet.get_new_address(Network::Regtest).await?;
//! wallet.generate_to_address(101, &address).await?;
//!
//! let keypair = Keypair::new(&Secp256k1::new(), &mut bitcoin::secp256k1::rand::thread_rng());
//! let anchorer = Anchorer::new(wallet.clone(), keypair, Network::Regtest);
//! // A batch envelope carries the anchor key's signature over (genesis hash, kind, header hash).
//! let (genesis_hash, header_hash) = ([1u8; 32], [2u8; 32]);
//! let envelope = anchorer.batch_envelope(&genesis_hash, header_hash, b"encoded batch".to_vec());
//! let posted = anchorer.post(&envelope, None, FeeRate::from_sat_per_vb_u32(2)).await?;
//! wallet.generate_to_address(1, &address).await?;
//!
//! let mut follower = ChainFollower::from_height(node.client().clone(), 1);
//! for event in follower.poll().await? {
//!     if let ChainEvent::Connected { block, .. } = event {
//!         for tx in &block.txdata {
//!             for found in find_envelopes(tx) {
//!                 // The leaf key proves nothing on its own; derivation checks `found.auth`.
//!                 assert!(found.key == anchorer.key() || tx.compute_txid() != posted.reveal_txid);
//!             }
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

mod anchorer;
mod config;
mod fee;
mod follower;
mod node;
mod rpc;
mod secret;
mod source;
mod wallet;

pub use anchorer::{
    AnchorError, AnchorStatus, Anchorer, PostedEnvelope, Submission, MAX_STANDARD_TX_WEIGHT,
    REVEAL_POSTAGE,
};
pub use config::{BitcoindConfig, DEFAULT_BITCOIND_RPC_URL, DEFAULT_POLL_INTERVAL_MS};
pub use fee::{FeePolicy, FeeSource, DEFAULT_CONF_TARGET};
pub use follower::{ChainEvent, ChainFollower};
pub use node::{find_bitcoind, NodeError, RegtestConfig, RegtestNode};
pub use rpc::{
    Auth, BitcoindClient, BlockHeaderInfo, BlockchainInfo, FundedTransaction, MempoolAcceptResult,
    MempoolEntry, MempoolFees, NetworkInfo, RpcError, WalletTransaction, RPC_IN_WARMUP,
};
pub use secret::Secret;
pub use source::{BlockSource, MemoryChain};
pub use wallet::{AnchorWallet, MemoryWallet};
