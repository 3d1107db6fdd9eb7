//! The durable node store on RocksDB (feature `rocksdb`).
//!
//! # Layout
//!
//! Four column families:
//!
//! | cf | key | value |
//! | --- | --- | --- |
//! | `smt_nodes` | node hash | `written_at: u64 BE ‖ node` where node is `0x00 ‖ left ‖ right` (internal) or `0x01 ‖ key ‖ value_hash ‖ value` (leaf) |
//! | `smt_roots` | version `u64 BE` | root hash |
//! | `smt_stale` | `stale_since: u64 BE` | the hashes (32 bytes each) of the nodes stale since that version |
//! | `smt_meta` | `b"pruned_below"` | `u64 BE` |
//!
//! # Versions and pruning
//!
//! [`RocksNodeStore::commit`] writes a version's new nodes, its root and its stale-node index in
//! one `WriteBatch`, so a crash leaves either the whole version or none of it. Versions form a
//! chain: each commit must start from the latest committed root (after a rollback, call
//! [`RocksNodeStore::truncate_above`] first).
//!
//! Pruning uses a stale-node index: a tree update reports exactly which nodes of its base tree the
//! new tree no longer uses, and the commit of version `v` records them (one list) as *stale since
//! `v`*. Each node record also carries `written_at`, the version that last wrote it. Because nodes are
//! content-addressed, a node that went stale can come back later (same key and value again); that
//! later commit rewrites it and bumps `written_at`. [`RocksNodeStore::prune_below`]`(p)` keeps
//! versions `>= p`: for each node `h` listed stale since `s <= p` it deletes `h` unless
//! `written_at(h) >= s` (the node was written again after it went stale, so a newer version may
//! use it), then drops the entry and the roots below `p`. Rollbacks (`truncate_above`) drop the
//! later roots and their stale entries; the nodes only the dropped versions wrote are not
//! reclaimed (rollbacks are rare and those nodes are bounded by the dropped batches' size).
//!
//! # Node cache
//!
//! Reads go through a bounded in-memory cache of node records ([`DEFAULT_NODE_CACHE_ITEMS`]
//! entries, S3-FIFO eviction by `quick_cache`), filled on reads and by every commit. Nodes are
//! content-addressed, so a cached record can never disagree with the database; pruning removes
//! the records it deletes. Without it every tree read is a RocksDB point lookup, and memtable
//! searches were the sequencer's largest cost under load (see `docs/decisions.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, DB,
};

use crate::hash::{Hash, Key, EMPTY_HASH};
use crate::node::{InternalNode, LeafNode, Node};
use crate::store::NodeStore;
use crate::tree::TreeUpdate;
use crate::StateError;

const CF_NODES: &str = "smt_nodes";
const CF_ROOTS: &str = "smt_roots";
const CF_STALE: &str = "smt_stale";
const CF_META: &str = "smt_meta";
const META_PRUNED_BELOW: &[u8] = b"pruned_below";

const TAG_INTERNAL: u8 = 0x00;
const TAG_LEAF: u8 = 0x01;

fn internal(msg: impl std::fmt::Display) -> StateError {
    StateError::Internal(msg.to_string())
}

fn db_error(e: rocksdb::Error) -> StateError {
    StateError::Internal(format!("rocksdb: {e}"))
}

fn read_hash(bytes: &[u8]) -> Option<Hash> {
    bytes.get(..32)?.try_into().ok()
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Decode a node record: `(written_at, node, leaf value)`.
fn decode_record(bytes: &[u8]) -> Option<(u64, Node, &[u8])> {
    let written_at = read_u64(bytes)?;
    let body = bytes.get(8..)?;
    let (tag, rest) = body.split_first()?;
    match *tag {
        TAG_INTERNAL if rest.len() == 64 => {
            let left = read_hash(rest)?;
            let right = read_hash(rest.get(32..)?)?;
            Some((
                written_at,
                Node::Internal(InternalNode { left, right }),
                &[],
            ))
        }
        TAG_LEAF => {
            let key: Key = read_hash(rest)?;
            let value_hash = read_hash(rest.get(32..)?)?;
            let value = rest.get(64..)?;
            Some((written_at, Node::Leaf(LeafNode { key, value_hash }), value))
        }
        _ => None,
    }
}

fn encode_record(written_at: u64, node: &Node, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8usize.saturating_add(65).saturating_add(value.len()));
    out.extend_from_slice(&written_at.to_be_bytes());
    match node {
        Node::Internal(n) => {
            out.push(TAG_INTERNAL);
            out.extend_from_slice(&n.left);
            out.extend_from_slice(&n.right);
        }
        Node::Leaf(leaf) => {
            out.push(TAG_LEAF);
            out.extend_from_slice(&leaf.key);
            out.extend_from_slice(&leaf.value_hash);
            out.extend_from_slice(value);
        }
    }
    out
}

/// Entries of the node cache of a [`RocksNodeStore`] (each one node, with its value for a leaf).
pub const DEFAULT_NODE_CACHE_ITEMS: usize = 1 << 18;

/// A node record in the cache.
#[derive(Clone)]
enum CachedNode {
    Internal(InternalNode),
    Leaf(LeafNode, Arc<[u8]>),
}

impl CachedNode {
    fn new(node: &Node, value: &[u8]) -> Self {
        match node {
            Node::Internal(n) => Self::Internal(*n),
            Node::Leaf(leaf) => Self::Leaf(*leaf, Arc::from(value)),
        }
    }

    fn node(&self) -> Node {
        match self {
            Self::Internal(n) => Node::Internal(*n),
            Self::Leaf(leaf, _) => Node::Leaf(*leaf),
        }
    }
}

/// Tree nodes with versioned roots in RocksDB. See the module docs for layout, pruning and the
/// node cache.
pub struct RocksNodeStore {
    db: DB,
    cache: quick_cache::sync::Cache<Hash, CachedNode>,
}

impl std::fmt::Debug for RocksNodeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksNodeStore")
            .field("path", &self.db.path())
            .field("cached_nodes", &self.cache.len())
            .finish()
    }
}

impl RocksNodeStore {
    /// Open (or create) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        Self::open_with_column_families(path, &[])
    }

    /// Open (or create) the store at `path` with `extra` column families of the caller's next to
    /// the tree's own (whose names all start with `smt_`; `extra` must not reuse them).
    ///
    /// Together with [`db`](Self::db) and [`stage_commit`](Self::stage_commit) this lets a caller
    /// keep its own records in the same database and commit them atomically with a tree version.
    pub fn open_with_column_families(
        path: impl AsRef<Path>,
        extra: &[&str],
    ) -> Result<Self, StateError> {
        if let Some(clash) = extra.iter().find(|name| name.starts_with("smt_")) {
            return Err(internal(format!(
                "column family {clash} is reserved for the tree"
            )));
        }
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = [CF_NODES, CF_ROOTS, CF_STALE, CF_META]
            .into_iter()
            .chain(extra.iter().copied())
            .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(db_error)?;
        Ok(Self {
            db,
            cache: quick_cache::sync::Cache::new(DEFAULT_NODE_CACHE_ITEMS),
        })
    }

    /// The cached record of `hash`, read from the database (and cached) on a miss.
    fn cached(&self, hash: &Hash) -> Result<Option<CachedNode>, StateError> {
        if let Some(hit) = self.cache.get(hash) {
            return Ok(Some(hit));
        }
        let Some((_, node, value)) = self.record(hash)? else {
            return Ok(None);
        };
        let cached = CachedNode::new(&node, &value);
        self.cache.insert(*hash, cached.clone());
        Ok(Some(cached))
    }

    /// The underlying database (for the caller's own column families; the `smt_*` ones belong
    /// to the store).
    pub fn db(&self) -> &DB {
        &self.db
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StateError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| internal(format!("missing column family {name}")))
    }

    fn record(&self, hash: &Hash) -> Result<Option<(u64, Node, Vec<u8>)>, StateError> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(CF_NODES)?, hash)
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let (written_at, node, value) = decode_record(&bytes)
            .ok_or_else(|| internal(format!("corrupt node record {}", hex::encode(hash))))?;
        Ok(Some((written_at, node, value.to_vec())))
    }

    /// The root committed as `version`, if still retained.
    pub fn root(&self, version: u64) -> Result<Option<Hash>, StateError> {
        match self
            .db
            .get_pinned_cf(self.cf(CF_ROOTS)?, version.to_be_bytes())
            .map_err(db_error)?
        {
            None => Ok(None),
            Some(bytes) => read_hash(&bytes)
                .map(Some)
                .ok_or_else(|| internal("corrupt root")),
        }
    }

    /// The latest committed version and its root.
    pub fn latest(&self) -> Result<Option<(u64, Hash)>, StateError> {
        let mut iter = self.db.iterator_cf(self.cf(CF_ROOTS)?, IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item.map_err(db_error)?;
                let version = read_u64(&k).ok_or_else(|| internal("corrupt version"))?;
                let root = read_hash(&v).ok_or_else(|| internal("corrupt root"))?;
                Ok(Some((version, root)))
            }
        }
    }

    /// Versions below this were pruned (0 if never pruned).
    pub fn pruned_below(&self) -> Result<u64, StateError> {
        match self
            .db
            .get_pinned_cf(self.cf(CF_META)?, META_PRUNED_BELOW)
            .map_err(db_error)?
        {
            None => Ok(0),
            Some(bytes) => read_u64(&bytes).ok_or_else(|| internal("corrupt meta")),
        }
    }

    /// Commit `update` as `version`, atomically (one write batch).
    ///
    /// `version` must be greater than the latest version and `update.base_root` must be the latest
    /// root (the empty root for the first commit).
    pub fn commit(&self, version: u64, update: &TreeUpdate) -> Result<(), StateError> {
        let mut batch = WriteBatch::default();
        self.stage_commit(&mut batch, version, std::slice::from_ref(update))?;
        self.db.write(batch).map_err(db_error)
    }

    /// Add the commit of `updates`, applied one after the other, as the single version `version`
    /// to `batch` without writing it: the caller writes `batch` (with its own records) itself.
    ///
    /// Same rules as [`commit`](Self::commit): `version` above the latest version, the first
    /// update starting from the latest root (the empty root for the first commit), and each next
    /// update starting from the previous one's root. The version's root is the last update's root;
    /// an empty `updates` is refused. Until `batch` is written the store is unchanged, so do not
    /// stage two versions before writing the first.
    pub fn stage_commit(
        &self,
        batch: &mut WriteBatch,
        version: u64,
        updates: &[TreeUpdate],
    ) -> Result<(), StateError> {
        let Some(last) = updates.last() else {
            return Err(internal("nothing to commit"));
        };
        let mut expected_base = match self.latest()? {
            Some((latest, root)) => {
                if version <= latest {
                    return Err(internal(format!("version {version} is not above {latest}")));
                }
                root
            }
            None => EMPTY_HASH,
        };
        let nodes = self.cf(CF_NODES)?;
        let stale = self.cf(CF_STALE)?;
        // The version's net effect: a node one update creates and a later one retires is neither
        // written nor listed as stale (intermediate states of a version are not kept). Puts go in
        // key order: RocksDB's skip-list memtable takes a sorted run of keys far faster than the
        // same keys in hash order.
        let mut created: BTreeMap<&Hash, (&Node, &[u8])> = BTreeMap::new();
        let mut retired: BTreeSet<&Hash> = BTreeSet::new();
        for update in updates {
            if update.base_root != expected_base {
                return Err(internal(if expected_base == EMPTY_HASH {
                    "the first update must start from the empty root"
                } else {
                    "update does not start from the latest root"
                }));
            }
            expected_base = update.root;
            for hash in &update.stale_nodes {
                if created.remove(hash).is_none() {
                    retired.insert(hash);
                }
            }
            let values: BTreeMap<&Hash, &Vec<u8>> =
                update.new_values.iter().map(|(h, v)| (h, v)).collect();
            for (hash, node) in &update.new_nodes {
                let value: &[u8] = match node {
                    Node::Leaf(_) => values.get(hash).ok_or_else(|| {
                        internal(format!("no value for new leaf {}", hex::encode(hash)))
                    })?,
                    Node::Internal(_) => &[],
                };
                created.insert(hash, (node, value));
            }
        }
        for (hash, (node, value)) in created {
            batch.put_cf(nodes, hash, encode_record(version, node, value));
            // Content-addressed: caching before the write lands is harmless (only someone holding
            // this version's root can ask for the node).
            self.cache.insert(*hash, CachedNode::new(node, value));
        }
        // One stale entry per version, not one per node. A retired node this version writes again
        // (same content) is kept by pruning: its `written_at` is this version.
        if !retired.is_empty() {
            let mut list = Vec::with_capacity(retired.len().saturating_mul(32));
            for hash in retired {
                list.extend_from_slice(hash);
            }
            batch.put_cf(stale, version.to_be_bytes(), list);
        }
        batch.put_cf(self.cf(CF_ROOTS)?, version.to_be_bytes(), last.root);
        Ok(())
    }

    /// Drop every version above `version` (a rollback), so the next commit starts from it.
    pub fn truncate_above(&self, version: u64) -> Result<(), StateError> {
        let mut batch = WriteBatch::default();
        self.stage_truncate_above(&mut batch, version)?;
        self.db.write(batch).map_err(db_error)
    }

    /// Add [`truncate_above`](Self::truncate_above)`(version)` to `batch` without writing it, so a
    /// caller can roll back the state together with its own records in one write.
    pub fn stage_truncate_above(
        &self,
        batch: &mut WriteBatch,
        version: u64,
    ) -> Result<(), StateError> {
        let Some(from) = version.checked_add(1) else {
            return Ok(());
        };
        let roots = self.cf(CF_ROOTS)?;
        for item in self.db.iterator_cf(
            roots,
            IteratorMode::From(&from.to_be_bytes(), Direction::Forward),
        ) {
            let (k, _) = item.map_err(db_error)?;
            batch.delete_cf(roots, k);
        }
        let stale = self.cf(CF_STALE)?;
        for item in self.db.iterator_cf(
            stale,
            IteratorMode::From(&from.to_be_bytes(), Direction::Forward),
        ) {
            let (k, _) = item.map_err(db_error)?;
            batch.delete_cf(stale, k);
        }
        Ok(())
    }

    /// Add to `batch` the root index entry that makes `root` version `version` again, for a
    /// version a rollback truncated whose nodes are still stored (rollback never deletes nodes;
    /// only [`prune_below`](Self::prune_below) does). The caller stages the truncation of the
    /// versions it replaces in the same `batch`, so the usual "above latest" rule is not checked
    /// here. The restored version has no stale list: nodes it retired are not pruned later (a
    /// bounded leak per restored version, documented in the sequencer's rollback rules).
    pub fn stage_restore_version(
        &self,
        batch: &mut WriteBatch,
        version: u64,
        root: &Hash,
    ) -> Result<(), StateError> {
        if *root != EMPTY_HASH && self.record(root)?.is_none() {
            return Err(internal(format!(
                "cannot restore version {version}: root node {} is not stored",
                hex::encode(root)
            )));
        }
        batch.put_cf(self.cf(CF_ROOTS)?, version.to_be_bytes(), root);
        Ok(())
    }

    /// Remove every version below `version` and every node only those versions used. Returns the
    /// number of nodes deleted. `version` may not exceed the latest version.
    pub fn prune_below(&self, version: u64) -> Result<usize, StateError> {
        let Some((latest, _)) = self.latest()? else {
            return Ok(0);
        };
        if version > latest {
            return Err(internal(format!(
                "cannot prune below {version}: latest is {latest}"
            )));
        }
        let nodes = self.cf(CF_NODES)?;
        let stale = self.cf(CF_STALE)?;
        let roots = self.cf(CF_ROOTS)?;
        let mut batch = WriteBatch::default();
        let mut deleted = 0usize;
        for item in self.db.iterator_cf(stale, IteratorMode::Start) {
            let (k, list) = item.map_err(db_error)?;
            let since = read_u64(&k).ok_or_else(|| internal("corrupt stale entry"))?;
            if since > version {
                break;
            }
            if list.len() % 32 != 0 {
                return Err(internal(format!("corrupt stale list of version {since}")));
            }
            for chunk in list.chunks_exact(32) {
                let hash = read_hash(chunk).ok_or_else(|| internal("corrupt stale entry"))?;
                if let Some((written_at, _, _)) = self.record(&hash)? {
                    if written_at < since {
                        batch.delete_cf(nodes, hash);
                        self.cache.remove(&hash);
                        deleted = deleted.saturating_add(1);
                    }
                }
            }
            batch.delete_cf(stale, k);
        }
        for item in self.db.iterator_cf(roots, IteratorMode::Start) {
            let (k, _) = item.map_err(db_error)?;
            if read_u64(&k).ok_or_else(|| internal("corrupt version"))? >= version {
                break;
            }
            batch.delete_cf(roots, k);
        }
        if version > self.pruned_below()? {
            batch.put_cf(self.cf(CF_META)?, META_PRUNED_BELOW, version.to_be_bytes());
        }
        self.db.write(batch).map_err(db_error)?;
        Ok(deleted)
    }

    /// Number of stored nodes (a full scan; for tests and metrics).
    pub fn node_count(&self) -> Result<usize, StateError> {
        let mut count = 0usize;
        for item in self.db.iterator_cf(self.cf(CF_NODES)?, IteratorMode::Start) {
            item.map_err(db_error)?;
            count = count.saturating_add(1);
        }
        Ok(count)
    }
}

impl NodeStore for RocksNodeStore {
    fn get_node(&self, hash: &Hash) -> Result<Option<Node>, StateError> {
        Ok(self.cached(hash)?.map(|record| record.node()))
    }

    fn get_value(&self, leaf_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        match self.cached(leaf_hash)? {
            Some(CachedNode::Leaf(_, value)) => Ok(Some(value.to_vec())),
            Some(CachedNode::Internal(_)) => Err(internal("value requested for an internal node")),
            None => Ok(None),
        }
    }
}
