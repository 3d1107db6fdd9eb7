//! [`FeeSource`]: where a node learns what a Bitcoin transaction should pay — bitcoind's
//! `estimatesmartfee`, or a rate set by hand on the in-memory [`MemoryWallet`] — and
//! [`FeePolicy`], the pure rule that turns an estimate (or its absence) into the rate an
//! envelope starts at: the estimate clamped to `[floor, ceiling]`, the floor when there is no
//! estimate (regtest, a young node) or bitcoind cannot be asked.

use std::future::Future;

use bitcoin::FeeRate;

use crate::rpc::{BitcoindClient, RpcError};
use crate::wallet::MemoryWallet;

/// A fee estimator: the rate that confirms within `conf_target` blocks, if it knows one.
pub trait FeeSource: Send + Sync {
    /// The estimated rate for confirmation within `conf_target` blocks; `None` when there is
    /// no estimate yet. Errors are [`RpcError`]s, as from bitcoind.
    fn estimate(
        &self,
        conf_target: u16,
    ) -> impl Future<Output = Result<Option<FeeRate>, RpcError>> + Send;
}

impl FeeSource for BitcoindClient {
    async fn estimate(&self, conf_target: u16) -> Result<Option<FeeRate>, RpcError> {
        self.estimate_smart_fee(conf_target).await
    }
}

impl FeeSource for MemoryWallet {
    async fn estimate(&self, _conf_target: u16) -> Result<Option<FeeRate>, RpcError> {
        Ok(self.fee_estimate())
    }
}

/// Default confirmation target of a node's envelopes, in blocks.
pub const DEFAULT_CONF_TARGET: u16 = 6;

/// How a node chooses the starting fee rate of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    /// The lowest rate it starts at (also the rate when there is no estimate).
    pub floor: FeeRate,
    /// The highest rate it starts at (fee bumps have their own ceiling).
    pub ceiling: FeeRate,
    /// The confirmation target asked of the estimator, in blocks.
    pub conf_target: u16,
}

impl FeePolicy {
    /// A policy that always answers `rate` (floor = ceiling).
    pub fn fixed(rate: FeeRate) -> Self {
        Self {
            floor: rate,
            ceiling: rate,
            conf_target: DEFAULT_CONF_TARGET,
        }
    }

    /// The starting rate given what the estimator said: the estimate clamped to
    /// `[floor, ceiling]`, the floor when there is none. A ceiling below the floor reads as
    /// the floor.
    pub fn choose(&self, estimate: Option<FeeRate>) -> FeeRate {
        let ceiling = self.ceiling.max(self.floor);
        estimate.map_or(self.floor, |rate| rate.clamp(self.floor, ceiling))
    }

    /// Asks `source` and [`FeePolicy::choose`]s. An unreachable or failing estimator yields
    /// the floor (anchoring must not stop because fee estimation did), logged at `debug`.
    pub async fn rate(&self, source: &impl FeeSource) -> FeeRate {
        match source.estimate(self.conf_target).await {
            Ok(estimate) => self.choose(estimate),
            Err(e) => {
                tracing::debug!(target: "anchor::fee", error = %e, "no fee estimate; using the floor");
                self.floor
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryChain, Submission};

    fn vb(sat: u32) -> FeeRate {
        FeeRate::from_sat_per_vb_u32(sat)
    }

    #[test]
    fn the_estimate_is_clamped_and_its_absence_is_the_floor() {
        let policy = FeePolicy {
            floor: vb(2),
            ceiling: vb(50),
            conf_target: 6,
        };
        assert_eq!(policy.choose(None), vb(2));
        assert_eq!(policy.choose(Some(vb(1))), vb(2));
        assert_eq!(policy.choose(Some(vb(17))), vb(17));
        assert_eq!(policy.choose(Some(vb(900))), vb(50));
        let inverted = FeePolicy {
            ceiling: vb(1),
            ..policy
        };
        assert_eq!(inverted.choose(Some(vb(900))), vb(2));
        assert_eq!(FeePolicy::fixed(vb(3)).choose(Some(vb(40))), vb(3));
    }

    #[tokio::test]
    async fn a_memory_wallet_answers_the_rate_set_on_it() {
        let wallet = MemoryWallet::new(MemoryChain::new(), Submission::Mempool);
        let policy = FeePolicy {
            floor: vb(2),
            ceiling: vb(50),
            conf_target: 6,
        };
        assert_eq!(policy.rate(&wallet).await, vb(2));
        wallet.set_fee_estimate(Some(vb(12)));
        assert_eq!(policy.rate(&wallet).await, vb(12));
    }

    #[tokio::test]
    async fn an_unreachable_bitcoind_yields_the_floor() {
        let client = BitcoindClient::new(
            "http://127.0.0.1:1",
            crate::rpc::Auth::UserPass {
                user: "u".to_owned(),
                password: "p".to_owned(),
            },
        );
        let policy = FeePolicy {
            floor: vb(4),
            ceiling: vb(50),
            conf_target: 6,
        };
        assert_eq!(policy.rate(&client).await, vb(4));
    }
}
