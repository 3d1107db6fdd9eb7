//! Replacing a commit stuck below the miner's minimum fee rate.

use stint_protocol::{find_block_envelopes, Envelope, EnvelopeKind, IndexHint};

use crate::common::{incompressible, sat_vb, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_commit_confirms_after_fee_bump() {
    // Blocks only take transactions paying at least 5 sat/vB; relay still takes 1 sat/vB.
    let h = Harness::start(&["-blockmintxfee=0.00005"]).await;
    let anchorer = h.anchorer(3);
    let envelope = Envelope::new(
        EnvelopeKind::Batch,
        anchorer.key(),
        incompressible(20_000, b"bump"),
    );
    let hint = IndexHint {
        kind: EnvelopeKind::Batch,
        number: 1,
        header_hash: [1; 32],
    };
    let stuck = anchorer
        .post(&envelope, Some(hint), sat_vb(2))
        .await
        .unwrap();

    h.mine(2).await;
    let status = anchorer.status(&stuck).await.unwrap();
    assert_eq!(
        (status.commit_confirmations, status.reveal_confirmations),
        (0, 0),
        "should be stuck"
    );

    let bumped = anchorer.bump(&stuck, sat_vb(10)).await.unwrap();
    assert_ne!(bumped.commit_txid, stuck.commit_txid);
    assert_ne!(bumped.reveal_txid, stuck.reveal_txid);
    assert!(bumped.commit_fee > stuck.commit_fee + stuck.reveal_fee);
    // The replaced pair left the mempool.
    assert!(h
        .node
        .client()
        .get_mempool_entry(&stuck.commit_txid)
        .await
        .is_err());
    assert!(h
        .node
        .client()
        .get_mempool_entry(&stuck.reveal_txid)
        .await
        .is_err());

    let block = h.block(&h.mine(1).await[0]).await;
    let status = anchorer.status(&bumped).await.unwrap();
    assert_eq!(
        (status.commit_confirmations, status.reveal_confirmations),
        (1, 1)
    );
    assert!(
        anchorer.confirmations(&stuck.commit_txid).await.unwrap() < 0,
        "old commit conflicted"
    );
    let found = find_block_envelopes(&block);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].envelope, envelope);
    assert_eq!(found[0].txid, bumped.reveal_txid);
}
