//! Posting envelopes by commit/reveal and finding them again in mined blocks.

use bitcoin::opcodes::all::{OP_CHECKSIG, OP_ENDIF, OP_IF};
use bitcoin::opcodes::OP_FALSE;
use bitcoin::script::{Builder, PushBytesBuf};
use stint_anchor::{Submission, MAX_STANDARD_TX_WEIGHT};
use stint_protocol::{find_block_envelopes, Envelope, EnvelopeKind, IndexHint, MAX_ENVELOPE_BODY};

use crate::common::{incompressible, sat_vb, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_incompressible_envelope_round_trips_through_bitcoin() {
    let h = Harness::start(&[]).await;
    let anchorer = h.anchorer(1);
    let payload = incompressible(380_000, b"batch");
    let envelope = anchorer.batch_envelope(&[0; 32], [0x5a; 32], payload);
    let body_len = envelope.leaf_script().unwrap().len();
    assert!(
        body_len > 380_000 && body_len < MAX_ENVELOPE_BODY + 3_000,
        "leaf {body_len}"
    );
    let hint = IndexHint {
        kind: EnvelopeKind::Batch,
        number: 7,
        header_hash: [0x5a; 32],
    };

    // Standardness of the pair as a package, before anything is sent.
    let prepared = anchorer
        .prepare_leaf(envelope.leaf_script().unwrap(), Some(hint), sat_vb(2))
        .await
        .unwrap();
    let verdicts = h
        .node
        .client()
        .test_mempool_accept(&[&prepared.commit, &prepared.reveal])
        .await
        .unwrap();
    assert!(verdicts[0].allowed, "commit: {:?}", verdicts[0]);
    match anchorer.submission().await.unwrap() {
        Submission::Mempool => assert!(verdicts[1].allowed, "reveal: {:?}", verdicts[1]),
        // Knots runs its script checks after every other policy check (size, weight, outputs,
        // dust, fee), so being refused for exactly the envelope's OP_IF means all else passed.
        Submission::MineDirectly => {
            let reason = verdicts[1].reject_reason.as_deref().unwrap_or_default();
            assert!(
                reason.contains("OP_IF/NOTIF argument must be minimal in tapscript"),
                "reveal refused for another reason: {:?}",
                verdicts[1]
            );
        }
    }

    let posted = anchorer
        .post(&envelope, Some(hint), sat_vb(2))
        .await
        .unwrap();
    let vsize = posted.reveal.weight().to_vbytes_ceil();
    assert!(
        posted.reveal.weight() <= MAX_STANDARD_TX_WEIGHT,
        "reveal vsize {vsize}"
    );
    // The reveal pays the requested rate on its real size.
    assert_eq!(posted.reveal_fee.to_sat(), 2 * vsize);
    if anchorer.submission().await.unwrap() == Submission::Mempool {
        // Went through testmempoolaccept + sendrawtransaction under the node's default policy.
        let entry = h
            .node
            .client()
            .get_mempool_entry(&posted.reveal_txid)
            .await
            .unwrap();
        assert_eq!(entry.fees.base, posted.reveal_fee);
        assert_eq!(entry.vsize, vsize);
        let status = anchorer.status(&posted).await.unwrap();
        assert_eq!(
            (status.commit_confirmations, status.reveal_confirmations),
            (0, 0)
        );
    }

    let block = h.block(&h.confirm(&anchorer, &posted).await).await;
    let found = find_block_envelopes(&block);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].envelope.decode(),
        Ok(envelope),
        "payload must come back bit-identical"
    );
    assert_eq!(found[0].txid, posted.reveal_txid);
    assert_eq!(found[0].hint, Some(hint));
    let status = anchorer.status(&posted).await.unwrap();
    assert_eq!(
        (status.commit_confirmations, status.reveal_confirmations),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_key_envelopes_are_returned_and_malformed_ones_skipped() {
    let h = Harness::start(&[]).await;
    let ours = h.anchorer(1);
    let foreign = h.anchorer(2);
    assert_ne!(ours.key(), foreign.key());

    let good = ours.batch_envelope(&[0; 32], [1; 32], b"our batch".to_vec());
    let challenge = Envelope::new(
        EnvelopeKind::Challenge,
        foreign.key(),
        incompressible(10_000, b"c"),
    );
    // Spendable by our key, but tagged "stinx": not an envelope.
    let body = zstd::bulk::compress(b"bogus", 3).unwrap();
    let malformed = Builder::new()
        .push_x_only_key(&ours.key())
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_FALSE)
        .push_opcode(OP_IF)
        .push_slice(b"stinx")
        .push_slice([1u8])
        .push_slice(PushBytesBuf::try_from(body).unwrap())
        .push_opcode(OP_ENDIF)
        .into_script();

    let posted_good = ours.post(&good, None, sat_vb(3)).await.unwrap();
    let posted_foreign = foreign.post(&challenge, None, sat_vb(3)).await.unwrap();
    let posted_bad = ours.post_leaf(malformed, None, sat_vb(3)).await.unwrap();
    // Posting an envelope under a key the anchorer does not hold is refused.
    assert!(ours.post(&challenge, None, sat_vb(3)).await.is_err());

    let tip = h.node.client().get_best_block_hash().await.unwrap();
    let block = match ours.submission().await.unwrap() {
        Submission::Mempool => h.block(&h.mine(1).await[0]).await,
        // Each post mined its own block: gather the last three.
        Submission::MineDirectly => {
            let mut merged = h.block(&tip).await;
            let mut parent = merged.header.prev_blockhash;
            for _ in 0..2 {
                let block = h.block(&parent).await;
                parent = block.header.prev_blockhash;
                merged.txdata.extend(block.txdata);
            }
            merged
        }
    };
    let txids: Vec<_> = block.txdata.iter().map(|tx| tx.compute_txid()).collect();
    for posted in [&posted_good, &posted_foreign, &posted_bad] {
        assert!(txids.contains(&posted.reveal_txid));
    }
    let found = find_block_envelopes(&block);
    assert_eq!(found.len(), 2, "the malformed envelope must be skipped");
    let by_tx = |txid| found.iter().find(|f| f.txid == txid).map(|f| &f.envelope);
    assert_eq!(
        by_tx(posted_good.reveal_txid).unwrap().decode(),
        Ok(good.clone())
    );
    assert_eq!(
        by_tx(posted_foreign.reveal_txid).unwrap().decode(),
        Ok(challenge)
    );
    assert!(by_tx(posted_bad.reveal_txid).is_none());
    // Derivation filters on the anchor key:
    let anchored: Vec<_> = found
        .iter()
        .filter(|f| f.envelope.key == ours.key())
        .collect();
    assert_eq!(anchored.len(), 1);
    assert_eq!(anchored[0].envelope.decode(), Ok(good));
}
