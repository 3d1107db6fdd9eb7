//! Benchmark 1, the ceiling: BIP340 signature verifications per second with `k256`.
//!
//! Each verification is what checking a tx signature costs: parse the x-only public key (lift
//! it onto the curve), parse the signature, verify it over the 32-byte txid. Txids are computed
//! beforehand, so this is pure signature work, measured on 1 thread and on `n` threads of a rayon
//! pool. Replay throughput is judged against the `n`-thread figure.

use k256::schnorr::{Signature, VerifyingKey};
use rayon::prelude::*;
use stint_contracts::SignedTx;

use crate::report::{Measure, Row};
use crate::timing::{best_of, per_sec, pool};

/// One prepared signature check.
#[derive(Debug, Clone)]
pub struct SigInput {
    key: [u8; 32],
    msg: [u8; 32],
    sig: [u8; 64],
}

/// The signature checks of `txs` (txids computed here, outside any measurement).
pub fn prepare(txs: &[SignedTx]) -> Vec<SigInput> {
    txs.par_iter()
        .map(|stx| SigInput {
            key: stx.tx.from.0,
            msg: stx.tx.txid().0,
            sig: stx.sig,
        })
        .collect()
}

fn verify_one(input: &SigInput) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&input.key) else {
        return false;
    };
    let Ok(sig) = Signature::try_from(&input.sig[..]) else {
        return false;
    };
    key.verify_raw(&input.msg, &sig).is_ok()
}

/// Verify all `inputs` on `threads` threads; the best of `reps` runs in verifications/s.
pub fn verifications_per_sec(
    inputs: &[SigInput],
    threads: usize,
    reps: usize,
) -> anyhow::Result<f64> {
    let pool = pool(threads)?;
    let (elapsed, valid) = best_of(reps, || {
        Ok(pool.install(|| inputs.par_iter().filter(|i| verify_one(i)).count()))
    })?;
    anyhow::ensure!(
        valid == inputs.len(),
        "{} of {} signatures did not verify",
        inputs.len() - valid,
        inputs.len()
    );
    Ok(per_sec(inputs.len(), elapsed))
}

/// The ceiling on 1 and on `threads` threads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigCeiling {
    /// Verifications per second on one thread.
    pub one: f64,
    /// Verifications per second on `threads` threads.
    pub all: f64,
    /// The thread count of `all`.
    pub threads: usize,
}

impl SigCeiling {
    /// Measure both figures on `inputs`.
    pub fn measure(inputs: &[SigInput], threads: usize, reps: usize) -> anyhow::Result<Self> {
        Ok(Self {
            one: verifications_per_sec(inputs, 1, reps)?,
            all: verifications_per_sec(inputs, threads, reps)?,
            threads,
        })
    }

    /// The table rows.
    pub fn rows(&self) -> Vec<Row> {
        vec![
            Row::new(
                "sig.1",
                "BIP340 verify (k256), 1 thread",
                Measure::new(self.one, "sig/s"),
            ),
            Row::new(
                "sig.all",
                format!("BIP340 verify (k256), {} threads", self.threads),
                Measure::new(self.all, "sig/s"),
            )
            .against("1 thread", Measure::new(self.one, "sig/s")),
        ]
    }
}
