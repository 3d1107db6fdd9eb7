//! Replacing a commit whose pair did not confirm, and re-mining a pair dropped by a reorg.

use stint_anchor::{AnchorError, Submission};
use stint_protocol::{find_block_envelopes, EnvelopeKind, IndexHint};

use crate::common::{incompressible, sat_vb, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_commit_confirms_after_fee_bump() {
    // Blocks only take transactions paying at least 5 sat/vB; relay still takes 1 sat/vB.
    let h = Harness::start(&["-blockmintxfee=0.00005"]).await;
    let client = h.node.client().clone();
    let anchorer = h.anchorer(3);
    let envelope = anchorer.batch_envelope(&[0; 32], [1; 32], incompressible(20_000, b"bump"));
    let hint = IndexHint {
        kind: EnvelopeKind::Batch,
        number: 1,
        header_hash: [1; 32],
    };
    let stuck = anchorer
        .post(&envelope, Some(hint), sat_vb(2))
        .await
        .unwrap();

    match anchorer.submission().await.unwrap() {
        // The pair waits in the mempool below the miner's floor.
        Submission::Mempool => {
            h.mine(2).await;
        }
        // The pair was mined at once; a reorg returns the commit alone to the mempool.
        Submission::MineDirectly => {
            let tip = client.get_best_block_hash().await.unwrap();
            client.invalidate_block(&tip).await.unwrap();
            client.get_mempool_entry(&stuck.commit_txid).await.unwrap();
        }
    }
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
    assert!(client.get_mempool_entry(&stuck.commit_txid).await.is_err());
    assert!(client.get_mempool_entry(&stuck.reveal_txid).await.is_err());

    let block = h.block(&h.confirm(&anchorer, &bumped).await).await;
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
    assert_eq!(found[0].envelope.decode(), Ok(envelope));
    assert_eq!(found[0].txid, bumped.reveal_txid);

    // A confirmed pair cannot be bumped.
    assert!(matches!(
        anchorer.bump(&bumped, sat_vb(20)).await,
        Err(AnchorError::CannotBump(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebroadcast_restores_a_pair_dropped_by_a_reorg() {
    let h = Harness::start(&[]).await;
    let client = h.node.client().clone();
    let anchorer = h.anchorer(4);
    let envelope = anchorer.batch_envelope(&[0; 32], [2; 32], b"again".to_vec());
    let posted = anchorer.post(&envelope, None, sat_vb(2)).await.unwrap();
    let first = h.confirm(&anchorer, &posted).await;
    client.invalidate_block(&first).await.unwrap();
    assert_eq!(
        anchorer.status(&posted).await.unwrap().reveal_confirmations,
        0
    );

    anchorer.rebroadcast(&posted).await.unwrap();
    if anchorer.submission().await.unwrap() == Submission::Mempool {
        h.mine(1).await;
    }
    let status = anchorer.status(&posted).await.unwrap();
    assert_eq!(
        (status.commit_confirmations, status.reveal_confirmations),
        (1, 1)
    );
    // Already confirmed: re-broadcasting again is a no-op.
    anchorer.rebroadcast(&posted).await.unwrap();
    assert_eq!(
        anchorer.status(&posted).await.unwrap().reveal_confirmations,
        1
    );
}
