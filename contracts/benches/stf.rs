//! STF throughput: signed transfers per second on one thread, with and without signature
//! verification.
#![allow(missing_docs)] // `criterion_group!` generates an undocumented function.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use k256::schnorr::SigningKey;
use stint_contracts::{
    account_entry, execute_batch, execute_verified_batch, Account, AccountId, BlockContext, Call,
    SignedTx, Tx, VerifiedTxs,
};
use stint_state::Key;

const SENDERS: usize = 256;
const TXS_PER_SENDER: u64 = 4;

fn setup() -> (BTreeMap<Key, Vec<u8>>, Vec<SignedTx>, BlockContext) {
    let keys: Vec<SigningKey> = (0..SENDERS)
        .map(|i| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            SigningKey::from_bytes(&b).unwrap()
        })
        .collect();
    let ids: Vec<AccountId> = keys.iter().map(AccountId::from_signing_key).collect();
    let mut state = BTreeMap::new();
    for id in &ids {
        let (k, v) = account_entry(
            id,
            &Account {
                balance: 1_000_000,
                nonce: 0,
            },
        );
        state.insert(k, v.unwrap());
    }
    let mut txs = Vec::new();
    for nonce in 0..TXS_PER_SENDER {
        for (i, key) in keys.iter().enumerate() {
            let to = ids[(i + 1 + nonce as usize) % SENDERS];
            let tx = Tx {
                chain_id: 1,
                from: ids[i],
                nonce,
                fee: 1,
                call: Call::Transfer { to, amount: 10 },
            };
            txs.push(tx.sign(key).unwrap());
        }
    }
    let ctx = BlockContext {
        chain_id: 1,
        timestamp: 1_700_000_000,
        fee_recipient: AccountId([0xfe; 32]),
    };
    (state, txs, ctx)
}

fn bench(c: &mut Criterion) {
    let (state, txs, ctx) = setup();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("stf_transfers_1thread");
    group.throughput(Throughput::Elements(txs.len() as u64));
    group.sample_size(10);
    group.bench_function("with_signature_verification", |b| {
        b.iter(|| pool.install(|| execute_batch(&state, &ctx, &txs, 32).unwrap()))
    });
    group.bench_function("pre_verified", |b| {
        b.iter_batched(
            || VerifiedTxs::assume_valid(&txs),
            |v| execute_verified_batch(&state, &ctx, &v, 32).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
