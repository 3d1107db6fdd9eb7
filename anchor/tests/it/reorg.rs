//! The chain follower through shallow and deep reorgs.

use bitcoin::BlockHash;
use stint_anchor::{ChainEvent, ChainFollower, Submission};
use stint_protocol::find_block_envelopes;

use crate::common::{sat_vb, Harness};

fn summary(events: &[ChainEvent]) -> Vec<(char, u64, BlockHash)> {
    events
        .iter()
        .map(|e| match e {
            ChainEvent::Connected { height, block } => ('+', *height, block.block_hash()),
            ChainEvent::Disconnected { height, hash } => ('-', *height, *hash),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_handles_shallow_and_deep_reorgs() {
    let h = Harness::start(&[]).await;
    let client = h.node.client().clone();
    let anchorer = h.anchorer(1);
    let envelope = anchorer.batch_envelope(&[0; 32], [1; 32], b"anchored batch".to_vec());
    let posted = anchorer.post(&envelope, None, sat_vb(2)).await.unwrap();
    let anchor_hash = h.confirm(&anchorer, &posted).await;
    let anchor_height = client.get_block_count().await.unwrap();

    // Initial sync from height 100: connects 100..=anchor_height in order.
    let mut follower = ChainFollower::from_height(client.clone(), 100);
    let events = follower.poll().await.unwrap();
    let heights: Vec<u64> = summary(&events).iter().map(|(_, h, _)| *h).collect();
    assert_eq!(heights, (100..=anchor_height).collect::<Vec<_>>());
    assert!(summary(&events).iter().all(|(k, _, _)| *k == '+'));
    assert_eq!(follower.tip(), Some((anchor_height, anchor_hash)));
    assert!(follower.poll().await.unwrap().is_empty());

    // Shallow reorg: the anchoring block is invalidated.
    client.invalidate_block(&anchor_hash).await.unwrap();
    let events = follower.poll().await.unwrap();
    assert_eq!(summary(&events), vec![('-', anchor_height, anchor_hash)]);
    assert_eq!(
        anchorer.confirmations(&posted.reveal_txid).await.unwrap(),
        0
    );
    // The commit is back in the mempool.
    client.get_mempool_entry(&posted.commit_txid).await.unwrap();
    if anchorer.submission().await.unwrap() == Submission::Mempool {
        // So is the reveal; re-broadcasting is harmless.
        anchorer.rebroadcast(&posted).await.unwrap();
        client.get_mempool_entry(&posted.reveal_txid).await.unwrap();
    } else {
        // Knots' policy dropped the reveal (re-mining it is the fee-bump test's business).
        assert!(client.get_mempool_entry(&posted.reveal_txid).await.is_err());
    }

    client.reconsider_block(&anchor_hash).await.unwrap();
    let events = follower.poll().await.unwrap();
    assert_eq!(summary(&events), vec![('+', anchor_height, anchor_hash)]);
    match &events[0] {
        ChainEvent::Connected { block, .. } => {
            assert_eq!(
                find_block_envelopes(block)[0].envelope.decode(),
                Ok(envelope.clone())
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        anchorer.confirmations(&posted.reveal_txid).await.unwrap(),
        1
    );

    // Deep reorg: three blocks on top, the first of them invalidated, a longer branch mined.
    let old = h.mine(3).await;
    assert_eq!(follower.poll().await.unwrap().len(), 3);
    client.invalidate_block(&old[0]).await.unwrap();
    let new = h.mine(4).await;
    let events = summary(&follower.poll().await.unwrap());
    let base = anchor_height;
    let mut expected = vec![
        ('-', base + 3, old[2]),
        ('-', base + 2, old[1]),
        ('-', base + 1, old[0]),
    ];
    expected.extend(
        new.iter()
            .enumerate()
            .map(|(i, hash)| ('+', base + 1 + i as u64, *hash)),
    );
    assert_eq!(events, expected);
    assert_eq!(
        follower.tip(),
        Some((base + 4, client.get_best_block_hash().await.unwrap()))
    );

    // A follower resumed at a block that was reorged away walks back to the fork point.
    let mut resumed = ChainFollower::resume(client.clone(), base + 3, old[2]);
    let events = summary(&resumed.poll().await.unwrap());
    assert_eq!(events, expected);
}
