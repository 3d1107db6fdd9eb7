//! Ad-hoc measurement of the replay rate: one large batch of signed transfers replayed with one
//! rayon thread and with all of them.
//!
//! `cargo run -p stint-verifier --profile test --example replay_rate -- [TXS] [ACCOUNTS]`
//! (defaults: 10,000 transfers between 4,000 accounts).

use std::time::Instant;

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use k256::schnorr::SigningKey;
use rayon::prelude::*;
use stint_contracts::{AccountId, Call, SignedTx, Tx};
use stint_protocol::{BatchBuilder, BuildParams, Genesis, GenesisAlloc, L1Origin, ParentFacts};
use stint_state::MemoryNodeStore;
use stint_verifier::{replay_batch, replay_batch_sequential, ReplayVerdict};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let txs: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let accounts: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4_000);

    let keys: Vec<(SigningKey, AccountId)> = (0..accounts)
        .into_par_iter()
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let key = SigningKey::from_bytes(&seed).map_err(|e| e.to_string())?;
            let id = AccountId::from_signing_key(&key);
            Ok((key, id))
        })
        .collect::<Result<_, String>>()?;
    let anchor = Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[9; 32])?)
        .x_only_public_key()
        .0;
    let alloc = keys
        .iter()
        .map(|(_, id)| GenesisAlloc {
            account: *id,
            balance: 1_000_000,
        })
        .collect();
    let mut genesis = Genesis::new(
        1,
        anchor,
        AccountId([0xfe; 32]),
        alloc,
        0,
        bitcoin::BlockHash::all_zeros(),
    );
    genesis.max_batch_txs = u32::MAX;
    genesis.max_batch_bytes = u32::MAX;
    let update = genesis.state_update()?;
    let mut store = MemoryNodeStore::new();
    store.write(&update);

    // Transfers: account i sends to i + accounts/2 (so a segment's txs do not conflict), nonces
    // in order.
    let signed: Vec<SignedTx> = (0..txs)
        .into_par_iter()
        .map(|n| {
            let from = n % accounts;
            let to = (from + accounts / 2 + n / accounts) % accounts;
            let (key, id) = &keys[from];
            Tx {
                chain_id: 1,
                from: *id,
                nonce: (n / accounts) as u64,
                fee: 1,
                call: Call::Transfer {
                    to: keys[to].1,
                    amount: 10,
                },
            }
            .sign(key)
            .map_err(|e| e.to_string())
        })
        .collect::<Result<_, String>>()?;
    let params = BuildParams {
        parent: ParentFacts::genesis(&genesis, update.root),
        timestamp: 1_700_000_000,
        l1_origin: L1Origin {
            height: 0,
            hash: [0; 32],
        },
    };
    let sealed = BatchBuilder::new(&genesis).build(&store, &params, signed)?;
    let batch = sealed.batch;
    let n = batch.txs().len();
    println!(
        "batch: {n} transfers, {} accounts, K = {}, {} bytes",
        accounts,
        genesis.checkpoint_interval,
        batch.encoded_len()
    );

    let challenger = AccountId([1; 32]);
    let measure = |label: &str,
                   threads: Option<usize>,
                   sequential: bool|
     -> Result<(), Box<dyn std::error::Error>> {
        let mut builder = rayon::ThreadPoolBuilder::new();
        if let Some(t) = threads {
            builder = builder.num_threads(t);
        }
        let pool = builder.build()?;
        let mut best = f64::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let verdict = pool.install(|| {
                if sequential {
                    replay_batch_sequential(&genesis, &store, &batch, &[], challenger)
                } else {
                    replay_batch(&genesis, &store, &batch, &[], challenger)
                }
            })?;
            let elapsed = started.elapsed().as_secs_f64();
            match verdict {
                ReplayVerdict::Honest(h) if h.state_root() == Some(batch.header().state_root) => {}
                _ => return Err("replay disagrees with the honest batch".into()),
            }
            best = best.min(elapsed);
        }
        println!(
            "{label:<40} threads={:<2} best of 3: {:>8.1} ms  {:>9.0} tx/s",
            pool.current_num_threads(),
            best * 1e3,
            n as f64 / best
        );
        Ok(())
    };
    measure("replay_batch (parallel), 1 thread", Some(1), false)?;
    measure("replay_batch (parallel), all threads", None, false)?;
    measure("replay_batch_sequential (reference)", None, true)?;
    Ok(())
}
