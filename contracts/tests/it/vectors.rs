//! Fixed test vectors (`testdata/vectors.json`): encodings, txids and BIP340 signatures of txs
//! signed with fixed keys (deterministic nonces, all-zero auxiliary randomness).
//!
//! Regenerate with `STINT_WRITE_VECTORS=1 cargo test -p stint-contracts --test it vectors`
//! (only when the format deliberately changes).

use std::path::PathBuf;

use k256::schnorr::SigningKey;
use serde::{Deserialize, Serialize};
use stint_contracts::{AccountId, Call, Payment, SignedTx, StreamId, TaskId, Tx, ADDRESS_HRP};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Vector {
    name: String,
    secret_key: String,
    address: String,
    tx: Tx,
    tx_encoding: String,
    txid: String,
    sig: String,
    signed_encoding: String,
}

fn path() -> PathBuf {
    // Cargo sets the variable at run time as well: use that, so a test binary built in another
    // checkout sharing the target folder reads this checkout's vectors.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("testdata/vectors.json")
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32]).unwrap()
}

fn build() -> Vec<Vector> {
    let alice = AccountId::from_signing_key(&key(1));
    let bob = AccountId::from_signing_key(&key(2));
    let carol = AccountId::from_signing_key(&key(3));
    let cases: Vec<(&str, u8, Tx)> = vec![
        (
            "transfer",
            1,
            Tx {
                chain_id: 1,
                from: alice,
                nonce: 0,
                fee: 10,
                call: Call::Transfer {
                    to: bob,
                    amount: 1_000,
                },
            },
        ),
        (
            "payroll",
            1,
            Tx {
                chain_id: 1,
                from: alice,
                nonce: 1,
                fee: 25,
                call: Call::Payroll {
                    payments: vec![
                        Payment {
                            to: bob,
                            amount: 300,
                        },
                        Payment {
                            to: carol,
                            amount: 700,
                        },
                    ],
                },
            },
        ),
        (
            "stream_open",
            2,
            Tx {
                chain_id: 1,
                from: bob,
                nonce: 7,
                fee: 1,
                call: Call::StreamOpen {
                    worker: carol,
                    rate_per_sec: 5,
                    start: 1_700_000_000,
                    duration_secs: 86_400,
                    cancelable: true,
                },
            },
        ),
        (
            "stream_top_up",
            3,
            Tx {
                chain_id: 1,
                from: carol,
                nonce: 0,
                fee: 0,
                call: Call::StreamTopUp {
                    id: StreamId([0x11; 32]),
                    extra_secs: 3_600,
                },
            },
        ),
        (
            "task_create",
            1,
            Tx {
                chain_id: 42,
                from: alice,
                nonce: 2,
                fee: 40,
                call: Call::TaskCreate {
                    worker: Some(bob),
                    arbiter: Some(carol),
                    spec_hash: [0xaa; 32],
                    milestones: vec![300, 700],
                    deadline: 1_700_086_400,
                    review_secs: 3_600,
                },
            },
        ),
        (
            "task_resolve",
            3,
            Tx {
                chain_id: 42,
                from: carol,
                nonce: 9,
                fee: 2,
                call: Call::TaskResolve {
                    id: TaskId([0x22; 32]),
                    worker_share_bps: 2_500,
                },
            },
        ),
    ];
    cases
        .into_iter()
        .map(|(name, signer, tx)| {
            let sk = key(signer);
            let stx = tx.clone().sign(&sk).unwrap();
            Vector {
                name: name.into(),
                secret_key: hex::encode(sk.to_bytes()),
                address: tx.from.to_string(),
                tx_encoding: hex::encode(tx.encode()),
                txid: tx.txid().to_string(),
                sig: hex::encode(stx.sig),
                signed_encoding: hex::encode(stx.encode()),
                tx,
            }
        })
        .collect()
}

#[test]
fn vectors_match() {
    if std::env::var_os("STINT_WRITE_VECTORS").is_some() {
        let json = serde_json::to_string_pretty(&build()).unwrap();
        std::fs::write(path(), json + "\n").unwrap();
    }
    let text = std::fs::read_to_string(path()).unwrap();
    let vectors: Vec<Vector> = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.len(), 6);
    for v in &vectors {
        let sk = SigningKey::from_bytes(&hex::decode(&v.secret_key).unwrap()).unwrap();
        let from = AccountId::from_signing_key(&sk);
        assert_eq!(from, v.tx.from, "{}", v.name);
        assert!(v.address.starts_with(ADDRESS_HRP));
        assert_eq!(v.address.parse::<AccountId>().unwrap(), from, "{}", v.name);
        assert_eq!(hex::encode(v.tx.encode()), v.tx_encoding, "{}", v.name);
        assert_eq!(
            Tx::decode(&hex::decode(&v.tx_encoding).unwrap()).unwrap(),
            v.tx
        );
        assert_eq!(v.tx.txid().to_string(), v.txid, "{}", v.name);
        let stx = v.tx.clone().sign(&sk).unwrap();
        assert_eq!(hex::encode(stx.sig), v.sig, "{}", v.name);
        assert!(stx.verify());
        let decoded = SignedTx::decode(&hex::decode(&v.signed_encoding).unwrap()).unwrap();
        assert_eq!(decoded, stx);
    }
    // The transfer's layout, spelled out: chain_id ‖ from ‖ nonce ‖ fee ‖ call tag 0 ‖ to ‖
    // amount, integers little-endian.
    let t = &vectors[0];
    let Call::Transfer { to, amount } = &t.tx.call else {
        panic!("first vector is a transfer")
    };
    let mut manual = Vec::new();
    manual.extend_from_slice(&t.tx.chain_id.to_le_bytes());
    manual.extend_from_slice(&t.tx.from.0);
    manual.extend_from_slice(&t.tx.nonce.to_le_bytes());
    manual.extend_from_slice(&t.tx.fee.to_le_bytes());
    manual.push(0);
    manual.extend_from_slice(&to.0);
    manual.extend_from_slice(&amount.to_le_bytes());
    assert_eq!(hex::encode(manual), t.tx_encoding);
    // The file is what the code produces today.
    assert_eq!(vectors, build());
}
