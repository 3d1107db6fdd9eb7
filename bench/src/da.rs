//! Benchmark 5: data-availability bytes per tx written to Bitcoin.
//!
//! Real batches are built with [`BatchBuilder`] on the genesis state (one after the other, each
//! extending the previous, until every candidate is included), each is wrapped in a batch
//! [`Envelope`] under the genesis anchor key, and the size of the envelope's tapscript leaf (the
//! zstd-compressed batch in ≤ 520-byte pushes, the bytes a reveal transaction carries) is divided
//! by the number of txs. The uncompressed encoded batch is the reference, so the ratio is the
//! compression ratio.

use anyhow::Context;
use stint_contracts::SignedTx;
use stint_protocol::{
    BatchBuilder, BuildParams, Envelope, EnvelopeKind, Genesis, L1Origin, ParentFacts,
};
use stint_state::MemoryNodeStore;

use crate::report::{Measure, Row, Target};
use crate::workload::TIMESTAMP;

/// A simple transfer may cost at most this many DA bytes.
pub const TRANSFER_TARGET_BYTES: f64 = 110.0;

/// DA cost of one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct DaFigures {
    /// Workload name.
    pub workload: String,
    /// Txs included.
    pub txs: usize,
    /// Batches built.
    pub batches: usize,
    /// Envelope leaf-script bytes, all batches.
    pub leaf_bytes: usize,
    /// Encoded (uncompressed) batch bytes, all batches.
    pub raw_bytes: usize,
    /// Units the ratio per tx is also given per (e.g. payroll payments), with their count.
    pub per_unit: Option<(&'static str, usize)>,
}

/// Build batches from `candidates` on `genesis`'s state and measure their envelopes.
pub fn measure(
    workload: &str,
    genesis: &Genesis,
    candidates: Vec<SignedTx>,
    per_unit: Option<(&'static str, usize)>,
) -> anyhow::Result<DaFigures> {
    let update = genesis.state_update().context("genesis state")?;
    let mut parent = ParentFacts::genesis(genesis, update.root);
    let mut store = MemoryNodeStore::new();
    store.write_owned(update);
    let builder = BatchBuilder::new(genesis);
    let total = candidates.len();
    let mut pending = candidates;
    let (mut txs, mut batches, mut leaf_bytes, mut raw_bytes) = (0, 0, 0, 0);
    while !pending.is_empty() {
        let params = BuildParams {
            parent,
            timestamp: TIMESTAMP,
            l1_origin: L1Origin {
                height: genesis.l1_start_height,
                hash: [0; 32],
            },
        };
        let sealed = builder.build(&store, &params, pending)?;
        anyhow::ensure!(
            sealed.rejected.is_empty(),
            "{workload}: the builder rejected {} txs (first: {:?})",
            sealed.rejected.len(),
            sealed.rejected.first()
        );
        anyhow::ensure!(
            !sealed.batch.txs().is_empty(),
            "{workload}: a batch took no tx"
        );
        for update in sealed.updates {
            store.write_owned(update);
        }
        let payload = sealed.batch.encode();
        raw_bytes += payload.len();
        let script = Envelope::new(EnvelopeKind::Batch, genesis.anchor_key, payload)
            .leaf_script()
            .context("building the envelope")?;
        leaf_bytes += script.len();
        txs += sealed.batch.txs().len();
        batches += 1;
        parent = ParentFacts::of(sealed.batch.header());
        pending = sealed.leftover;
    }
    anyhow::ensure!(txs == total, "{workload}: {txs} of {total} txs included");
    Ok(DaFigures {
        workload: workload.to_string(),
        txs,
        batches,
        leaf_bytes,
        raw_bytes,
        per_unit,
    })
}

impl DaFigures {
    /// Leaf-script bytes per tx.
    pub fn bytes_per_tx(&self) -> f64 {
        self.leaf_bytes as f64 / self.txs.max(1) as f64
    }

    /// The table rows.
    pub fn rows(&self) -> Vec<Row> {
        let w = &self.workload;
        let raw = self.raw_bytes as f64 / self.txs.max(1) as f64;
        let mut row = Row::new(
            format!("da.{w}"),
            format!(
                "DA bytes per tx, {w} ({} txs, {} batches)",
                self.txs, self.batches
            ),
            Measure::new(self.bytes_per_tx(), "B/tx"),
        )
        .against("uncompressed batch", Measure::new(raw, "B/tx"));
        if w == "transfers" {
            row = row.with_target(Target::ValueAtMost(TRANSFER_TARGET_BYTES));
        }
        let mut rows = vec![row];
        if let Some((unit, count)) = self.per_unit {
            rows.push(Row::new(
                format!("da.{w}.per_{unit}"),
                format!("DA bytes per {unit}, {w}"),
                Measure::new(self.leaf_bytes as f64 / count.max(1) as f64, "B"),
            ));
        }
        rows
    }
}
