use stint_protocol::{Genesis, GenesisError, DEVNET_DISPUTE_WINDOW};

use crate::common::*;

const DEVNET: &str = include_str!("../../testdata/devnet-genesis.json");

#[test]
fn devnet_genesis_loads_and_round_trips() {
    let g = Genesis::from_json(DEVNET).unwrap();
    assert_eq!(g.dispute_window, DEVNET_DISPUTE_WINDOW);
    assert_eq!(g.checkpoint_interval, 32);
    let again = Genesis::from_json(&g.to_json()).unwrap();
    assert_eq!(again, g);
    assert_eq!(again.hash(), g.hash());
    assert_ne!(g.state_root().unwrap(), [0; 32]);
}

#[test]
fn genesis_hash_and_root_depend_on_every_allocation() {
    let g = genesis_with(&start_block(), 32, 6);
    let mut other = g.clone();
    other.alloc[1].balance += 1;
    assert_ne!(g.hash(), other.hash());
    assert_ne!(g.state_root().unwrap(), other.state_root().unwrap());
    let mut param = g.clone();
    param.dispute_window = 7;
    assert_ne!(g.hash(), param.hash());
    assert_eq!(g.state_root().unwrap(), param.state_root().unwrap());
}

#[test]
fn strict_json_rejects_unknown_fields_and_bad_values() {
    let mut value: serde_json::Value = serde_json::from_str(DEVNET).unwrap();
    value["surprise"] = serde_json::json!(1);
    assert!(matches!(
        Genesis::from_json(&value.to_string()),
        Err(GenesisError::Json(_))
    ));

    let mut value: serde_json::Value = serde_json::from_str(DEVNET).unwrap();
    value["checkpoint_interval"] = serde_json::json!(0);
    let err = Genesis::from_json(&value.to_string()).unwrap_err();
    assert!(
        matches!(
            err,
            GenesisError::Invalid {
                field: "checkpoint_interval",
                ..
            }
        ),
        "{err}"
    );

    let mut value: serde_json::Value = serde_json::from_str(DEVNET).unwrap();
    let first = value["alloc"][0].clone();
    value["alloc"].as_array_mut().unwrap().push(first);
    assert!(matches!(
        Genesis::from_json(&value.to_string()),
        Err(GenesisError::DuplicateAlloc { index: 2, .. })
    ));

    let mut value: serde_json::Value = serde_json::from_str(DEVNET).unwrap();
    value["alloc"][0]["balance"] = serde_json::json!(u64::MAX);
    assert!(matches!(
        Genesis::from_json(&value.to_string()),
        Err(GenesisError::SupplyOverflow { index: 1 })
    ));

    let mut value: serde_json::Value = serde_json::from_str(DEVNET).unwrap();
    value["anchor_key"] = serde_json::json!("zz");
    assert!(matches!(
        Genesis::from_json(&value.to_string()),
        Err(GenesisError::Json(_))
    ));
}

#[test]
fn l1_message_parameters_are_checked_and_committed_by_the_hash() {
    let g = genesis_with(&start_block(), 32, 6);
    let bridge = stint_protocol::Bridge {
        signers: vec![btc_key(31), btc_key(32), btc_key(33)],
        threshold: 2,
        min_deposit: 10_000,
    };
    let mut bridged = g.clone();
    bridged.bridge = Some(bridge.clone());
    bridged.validate().unwrap();
    assert_ne!(bridged.hash(), g.hash());
    let again = Genesis::from_json(&bridged.to_json()).unwrap();
    assert_eq!(again, bridged);
    for change in [
        |g: &mut Genesis| g.sequencing_window += 1,
        |g: &mut Genesis| g.l1_confirmations += 1,
        |g: &mut Genesis| g.bridge.as_mut().unwrap().threshold = 3,
        |g: &mut Genesis| g.bridge.as_mut().unwrap().min_deposit += 1,
        |g: &mut Genesis| g.bridge.as_mut().unwrap().signers.swap(0, 2),
    ] {
        let mut other = bridged.clone();
        change(&mut other);
        assert_ne!(other.hash(), bridged.hash());
    }
    let refused = [
        |g: &mut Genesis| g.sequencing_window = 0,
        |g: &mut Genesis| g.sequencing_window = stint_protocol::MAX_SEQUENCING_WINDOW + 1,
        |g: &mut Genesis| g.l1_confirmations = 0,
        |g: &mut Genesis| g.l1_confirmations = g.sequencing_window + 1,
        |g: &mut Genesis| g.bridge.as_mut().unwrap().threshold = 0,
        |g: &mut Genesis| g.bridge.as_mut().unwrap().threshold = 4,
        |g: &mut Genesis| g.bridge.as_mut().unwrap().min_deposit = 1,
        |g: &mut Genesis| {
            let b = g.bridge.as_mut().unwrap();
            b.signers[1] = b.signers[0];
        },
    ];
    for (i, change) in refused.into_iter().enumerate() {
        let mut bad = bridged.clone();
        change(&mut bad);
        let err = bad.validate().unwrap_err();
        assert!(matches!(err, GenesisError::Invalid { .. }), "{i}: {err}");
        assert!(Genesis::from_json(&bad.to_json()).is_err(), "{i}");
    }
    // Unknown fields inside the bridge are refused like any other.
    let json = bridged
        .to_json()
        .replace("\"threshold\"", "\"extra\": 1, \"threshold\"");
    assert!(Genesis::from_json(&json).is_err());
}
