//! `stint deposit`: bitcoin in (protocol v3). Pays `--amount` sats from a bitcoind wallet to the
//! genesis bridge address, with the deposit tag (`OP_RETURN "STNT" "D" <account>`) naming the L2
//! account to credit, and with `--wait credited` waits until the sequencer's state shows it.
//!
//! The bridge address and `min_deposit` come from the sequencer (`stint_bridgeInfo`), so a
//! deposit that would not be credited (no bridge, below `min_deposit`) is refused before any
//! bitcoin moves.

use std::time::{Duration, Instant};

use bitcoin::{Amount, FeeRate, ScriptBuf, Transaction, TxOut};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use stint_contracts::AccountId;
use stint_protocol::DepositTag;

use crate::forced::BitcoindOpts;
use crate::wallet::{parse_address, WalletOpts};
use crate::{CliError, Key, RpcClient};

/// Default `--fee-rate`, sat/vB.
pub const DEFAULT_DEPOSIT_FEE_RATE: u64 = 2;
/// Default `--timeout-secs` of `--wait credited`.
pub const DEFAULT_DEPOSIT_TIMEOUT_SECS: u64 = 600;

/// `stint deposit`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct DepositArgs {
    /// Sats to deposit (1 sat = 1 unit; at least the bridge's `min_deposit`).
    #[arg(long)]
    pub amount: u64,
    /// Account to credit (default: the --key account).
    #[arg(long, value_name = "ADDR")]
    pub to: Option<String>,
    /// The bitcoind wallet that pays.
    #[command(flatten)]
    pub bitcoind: BitcoindOpts,
    /// Fee rate of the Bitcoin transaction, sat/vB.
    #[arg(long, default_value_t = DEFAULT_DEPOSIT_FEE_RATE, value_name = "SAT_PER_VB")]
    pub fee_rate: u64,
    /// Wait until a batch credits the deposit.
    #[arg(long, value_enum)]
    pub wait: Option<DepositWait>,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = DEFAULT_DEPOSIT_TIMEOUT_SECS, value_name = "SECS")]
    pub timeout_secs: u64,
}

/// What `stint deposit --wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DepositWait {
    /// A sealed batch executed it (the account's balance on the sequencer grew by the amount).
    Credited,
}

/// Runs `stint deposit`, printing the Bitcoin txid and outpoint (and the new balance with
/// `--wait credited`).
pub async fn run_deposit(args: &DepositArgs, opts: &WalletOpts) -> Result<(), CliError> {
    let account = match (&args.to, &opts.key) {
        (Some(to), _) => parse_address("--to", to)?,
        (None, Some(path)) => Key::load(path)?.account(),
        (None, None) => {
            return Err(CliError::Usage(
                "which account? give --to ADDR, or --key FILE (or STINT_KEY) for your own".into(),
            ))
        }
    };
    let client = RpcClient::new(&opts.rpc)?;
    let bridge: Value = client.call("stint_bridgeInfo", json!([])).await?;
    let script = bridge["depositScript"]
        .as_str()
        .and_then(|hex| hex::decode(hex).ok())
        .map(ScriptBuf::from_bytes)
        .ok_or_else(|| CliError::Usage("this network has no bridge: deposits are off".into()))?;
    let min_deposit = bridge["minDeposit"].as_u64().unwrap_or(u64::MAX);
    if args.amount < min_deposit {
        return Err(CliError::Usage(format!(
            "--amount {}: below the bridge's min_deposit of {min_deposit} sats (it would not be \
             credited)",
            args.amount
        )));
    }
    let fee_rate = FeeRate::from_sat_per_vb(args.fee_rate)
        .filter(|_| args.fee_rate > 0)
        .ok_or_else(|| CliError::Usage(format!("--fee-rate {}: not a fee rate", args.fee_rate)))?;
    let before = balance(&client, &account).await?;

    let wallet = args.bitcoind.wallet()?;
    let (txid, vout) = pay_bridge(&wallet, &script, account, args.amount, fee_rate).await?;
    let mut result = json!({
        "btc_txid": txid.to_string(),
        "outpoint": format!("{txid}:{vout}"),
        "account": account.to_address(),
        "amount": args.amount,
    });
    if args.wait == Some(DepositWait::Credited) {
        eprintln!(
            "deposit {txid}:{vout} sent; waiting for {} confirmations and a batch …",
            bridge["l1Confirmations"]
        );
        let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
        let target = before.saturating_add(args.amount);
        loop {
            let now = balance(&client, &account).await?;
            if now >= target {
                result["balance"] = json!(now);
                break;
            }
            if Instant::now() > deadline {
                return Err(CliError::Usage(format!(
                    "deposit {txid}:{vout} not credited after {} s (is Bitcoin mining blocks?)",
                    args.timeout_secs
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    if let Some(field) = &opts.field {
        match result.get(field) {
            Some(Value::String(text)) => println!("{text}"),
            Some(value) => println!("{value}"),
            None => {
                return Err(CliError::Usage(format!(
                    "--field {field}: the deposit has btc_txid, outpoint, account, amount{}",
                    if result.get("balance").is_some() {
                        ", balance"
                    } else {
                        ""
                    }
                )))
            }
        }
    } else if opts.json {
        println!("{result}");
    } else {
        println!(
            "deposited {} sats to {} in {txid}:{vout}{}",
            args.amount,
            account.to_address(),
            result["balance"]
                .as_u64()
                .map(|b| format!("; credited, balance {b}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Pay `amount` sats from `wallet` to the bridge `script` with the deposit tag naming
/// `account`, and send it; returns the outpoint paying the bridge.
pub(crate) async fn pay_bridge(
    wallet: &stint_anchor::BitcoindClient,
    script: &ScriptBuf,
    account: AccountId,
    amount: u64,
    fee_rate: FeeRate,
) -> Result<(bitcoin::Txid, u32), CliError> {
    let bitcoind =
        |what: &str, e: stint_anchor::RpcError| CliError::Usage(format!("bitcoind ({what}): {e}"));
    let unfunded = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![],
        output: vec![
            TxOut {
                value: Amount::from_sat(amount),
                script_pubkey: script.clone(),
            },
            TxOut {
                value: Amount::ZERO,
                script_pubkey: DepositTag { account }.to_script(),
            },
        ],
    };
    let (funded, _) = wallet
        .fund_raw_transaction(&unfunded, fee_rate)
        .await
        .map_err(|e| bitcoind("funding the deposit", e))?;
    let signed = wallet
        .sign_raw_transaction_with_wallet(&funded)
        .await
        .map_err(|e| bitcoind("signing the deposit", e))?;
    let txid = wallet
        .send_raw_transaction(&signed)
        .await
        .map_err(|e| bitcoind("sending the deposit", e))?;
    let vout = signed
        .output
        .iter()
        .position(|o| &o.script_pubkey == script)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or_default();
    Ok((txid, vout))
}

async fn balance(client: &RpcClient, account: &AccountId) -> Result<u64, CliError> {
    let info: Value = client
        .call("stint_getAccount", json!([account.to_address()]))
        .await?;
    Ok(info["balance"].as_u64().unwrap_or(0))
}
