//! L1 messages in derivation (protocol v2): deposits and forced txs are collected from connected
//! blocks in order, are pending until a canonical batch's `l1_origin` covers them, and leave
//! with their block on a reorg.

use bitcoin::{Block, Transaction};
use stint_protocol::{Derivation, EnvelopeKind, Genesis, L1Message, L1MessageKind};

use crate::common::*;

fn summary(messages: &[&L1Message]) -> Vec<(u64, u32, String)> {
    messages
        .iter()
        .map(|m| {
            let what = match &m.kind {
                L1MessageKind::Deposit(d) => format!("deposit {} to {}", d.amount, d.account),
                L1MessageKind::Forced(f) => format!("forced {}", f.tx.txid()),
            };
            (m.height, m.index, what)
        })
        .collect()
}

struct Chain {
    derivation: Derivation,
    blocks: Vec<Block>,
}

impl Chain {
    fn new() -> (Chain, Genesis) {
        let start = start_block();
        let mut g = genesis_with(&start, 4, 6);
        g.bridge = Some(bridge());
        g.validate().unwrap();
        let (_, root) = genesis_store(&g);
        let mut derivation = Derivation::new(g.clone(), root);
        derivation.connect_block(0, &start).unwrap();
        (
            Chain {
                derivation,
                blocks: vec![start],
            },
            g,
        )
    }

    fn mine(&mut self, txs: Vec<Transaction>, salt: u32) {
        let prev = self.blocks.last().unwrap();
        let b = block(
            prev.block_hash(),
            T0 + 600 * self.blocks.len() as u64,
            salt,
            txs,
        );
        let height = self.blocks.len() as u64;
        self.derivation.connect_block(height, &b).unwrap();
        self.blocks.push(b);
    }

    fn pop(&mut self) {
        let b = self.blocks.pop().unwrap();
        let height = self.blocks.len() as u64;
        self.derivation
            .disconnect_block(height, b.block_hash())
            .unwrap();
    }

    fn pending(&self) -> Vec<(u64, u32, String)> {
        summary(&self.derivation.pending_l1_messages().collect::<Vec<_>>())
    }
}

#[test]
fn messages_are_collected_in_block_order_and_leave_with_their_block() {
    let (mut chain, _) = Chain::new();
    let forced = transfer(ALICE, BOB, 0, 5);
    chain.mine(
        vec![
            deposit_tx(3, 50_000, 1),
            reveal(EnvelopeKind::ForcedTx, 40, forced.encode(), 2),
        ],
        11,
    );
    chain.mine(vec![deposit_tx(4, 2_000, 3)], 12);
    let expected = vec![
        (1, 0, format!("deposit 50000 to {}", account(3))),
        (1, 1, format!("forced {}", forced.txid())),
        (2, 0, format!("deposit 2000 to {}", account(4))),
    ];
    assert_eq!(chain.pending(), expected);
    // A batch whose origin is block 1 would execute block 1's messages only.
    let due: Vec<_> = chain.derivation.l1_messages(0, 1).collect();
    assert_eq!(summary(&due), expected[..2].to_vec());
    assert_eq!(chain.derivation.l1_messages(1, 1).count(), 0);
    assert_eq!(chain.derivation.l1_messages(2, 9).count(), 0);

    // A reorg removes block 2 and its deposit; a different block 2 brings another.
    chain.pop();
    assert_eq!(chain.pending(), expected[..2].to_vec());
    chain.mine(vec![deposit_tx(5, 3_000, 4)], 13);
    assert_eq!(
        chain.pending()[2],
        (2, 0, format!("deposit 3000 to {}", account(5)))
    );
    // Re-mined, the original deposit is collected once.
    chain.pop();
    chain.mine(vec![deposit_tx(4, 2_000, 3)], 12);
    assert_eq!(chain.pending(), expected);
}

#[test]
fn the_start_block_and_strangers_carry_no_messages() {
    let start = {
        let mut b = start_block();
        b.txdata.push(deposit_tx(3, 50_000, 1));
        b
    };
    let mut g = genesis_with(&start, 4, 6);
    g.bridge = Some(bridge());
    let (_, root) = genesis_store(&g);
    let mut derivation = Derivation::new(g, root);
    derivation.connect_block(0, &start).unwrap();
    assert_eq!(derivation.pending_l1_messages().count(), 0);
    // Kind-3 envelopes that do not decode as a signed tx are not messages.
    let next = block(
        start.block_hash(),
        T0 + 600,
        5,
        vec![reveal(EnvelopeKind::ForcedTx, 40, vec![1, 2, 3], 1)],
    );
    derivation.connect_block(1, &next).unwrap();
    assert_eq!(derivation.pending_l1_messages().count(), 0);
}
