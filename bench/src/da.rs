//! Benchmark 5: data-availability bytes per tx written to Bitcoin.
//!
//! Real batches are built with [`record_batches`] (the honest `BatchBuilder`) on the genesis state (one after the other, each
//! extending the previous, until every candidate is included), each is wrapped in a batch
//! [`Envelope`] under the genesis anchor key, and the size of the envelope's tapscript leaf (the
//! zstd-compressed batch in ≤ 520-byte pushes, the bytes a reveal transaction carries) is divided
//! by the number of txs. The uncompressed encoded batch is the reference, so the ratio is the
//! compression ratio.

use anyhow::Context;
use stint_contracts::SignedTx;
use stint_protocol::{AnchorAuth, Envelope, EnvelopeKind, Genesis};

use crate::report::{Measure, Row, Target};
use crate::workload::record_batches;

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
    let recorded = record_batches(workload, genesis, candidates)?;
    let (mut txs, mut leaf_bytes, mut raw_bytes) = (0, 0, 0);
    for batch in &recorded.batches {
        let payload = batch.encode()?;
        raw_bytes += payload.len();
        // The auth push has a fixed size: a placeholder signature measures the same bytes.
        let auth = AnchorAuth {
            header_hash: batch.hash(),
            signature: [0; 64],
        };
        let script = Envelope::new(EnvelopeKind::Batch, genesis.anchor_key, payload)
            .with_auth(auth)
            .leaf_script()
            .context("building the envelope")?;
        leaf_bytes += script.len();
        txs += batch.txs().len();
    }
    Ok(DaFigures {
        workload: workload.to_string(),
        txs,
        batches: recorded.batches.len(),
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
