//! Wallet and contract commands: build a tx from flags, check what can be checked before
//! sending (addresses, balances, roles), sign it, send it, and optionally wait for finality.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use stint_contracts::{
    AccountId, Call, StreamId, TaskId, Tx, BPS_DENOMINATOR, MAX_PAYROLL_PAYMENTS,
};

use crate::client::RpcClient;
use crate::error::CliError;
use crate::forced::ForcedSender;
use crate::journal::{self, Journal};
use crate::keys::Key;
use crate::payroll::parse_payroll_csv;
use crate::precheck::{check_stream, check_task, positive, StreamAction, TaskAction};
use crate::time;

/// Default sequencer JSON-RPC URL (DESIGN §5).
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:7545";
/// Default verifier JSON-RPC URL (DESIGN §5).
pub const DEFAULT_VERIFIER_RPC_URL: &str = "http://127.0.0.1:7546";
/// Default fee of a transaction, in units.
pub const DEFAULT_FEE: u64 = 10;
/// Default limit of `--wait`.
pub const DEFAULT_WAIT_TIMEOUT_SECS: u64 = 600;
/// How often `--wait` polls the receipt.
const WAIT_POLL: Duration = Duration::from_millis(250);
/// How long `--wait` keeps retrying a node that stopped answering (`--reconnect-secs`).
pub const DEFAULT_RECONNECT_SECS: u64 = 300;
/// First pause before retrying a lost node; it doubles up to [`RECONNECT_BACKOFF_MAX`].
const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest pause between retries of a lost node.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The sequencer's answer to a tx it already has (a retry's resend).
const ALREADY_KNOWN: i64 = stint_sequencer::codes::ALREADY_KNOWN;

/// Help heading of the options every wallet command takes, apart from each command's own.
const GLOBAL_HEADING: &str = "Wallet options (any wallet command, before or after its name)";

/// Options of every wallet command (`--rpc`, `--key`, `--json`, `--field`).
#[derive(Debug, Clone, Args)]
pub struct WalletOpts {
    /// Sequencer JSON-RPC URL.
    #[arg(long, env = "STINT_RPC", default_value = DEFAULT_RPC_URL, global = true, help_heading = GLOBAL_HEADING)]
    pub rpc: String,
    /// Key file (`{"address", "secret_key"}`, mode 0600) of the account that signs.
    #[arg(long, env = "STINT_KEY", global = true, help_heading = GLOBAL_HEADING)]
    pub key: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true, help_heading = GLOBAL_HEADING)]
    pub json: bool,
    /// Print only this field of the result, as plain text (for scripts:
    /// `TASK=$(stint task create … --field task_id)`).
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        conflicts_with = "json",
        help_heading = GLOBAL_HEADING
    )]
    pub field: Option<String>,
}

/// Finality levels `--wait` can block for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum WaitLevel {
    /// Executed in a sealed batch (the sequencer's promise).
    Soft,
    /// The batch is in a Bitcoin block.
    Anchored,
    /// The dispute window passed without a valid challenge.
    Final,
}

impl WaitLevel {
    fn as_str(self) -> &'static str {
        match self {
            WaitLevel::Soft => "soft",
            WaitLevel::Anchored => "anchored",
            WaitLevel::Final => "final",
        }
    }
}

/// Options of commands that send a transaction.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sending options")]
pub struct SendOpts {
    /// Fee in units.
    #[arg(long, default_value_t = DEFAULT_FEE)]
    pub fee: u64,
    /// Block until the transaction reaches this level (progress goes to stderr).
    #[arg(long, value_enum)]
    pub wait: Option<WaitLevel>,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = DEFAULT_WAIT_TIMEOUT_SECS, value_name = "SECS")]
    pub wait_timeout: u64,
    /// While waiting, keep retrying a node that stopped answering (a restart) for this many
    /// seconds; run the same command again afterwards to go on waiting (it sends no second tx).
    #[arg(long, default_value_t = DEFAULT_RECONNECT_SECS, value_name = "SECS")]
    pub reconnect_secs: u64,
    /// Write the transaction to Bitcoin as a forced tx (paid from a bitcoind wallet) instead of
    /// sending it to the sequencer: every batch must execute it within the sequencing window,
    /// so a censoring or stopped sequencer cannot keep it out. Only reads go to --rpc then, so
    /// it may name a verifier.
    #[arg(long)]
    pub via_bitcoin: bool,
    /// Fee rate of the forced tx's Bitcoin transactions (--via-bitcoin), sat/vB.
    #[arg(long, default_value_t = crate::forced::DEFAULT_FORCED_FEE_RATE, value_name = "SAT_PER_VB")]
    pub btc_fee_rate: u64,
    /// The bitcoind wallet that pays (--via-bitcoin).
    #[command(flatten)]
    pub bitcoind: crate::forced::BitcoindOpts,
}

/// `stint key …`
#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Generate a key and write it to a file with mode 0600.
    New {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the address of the key given by --key.
    Show,
}

/// `stint task …`
#[derive(Debug, Clone, Subcommand)]
pub enum TaskCommand {
    /// Create and fund a task escrow (prints `task_id`).
    Create {
        /// The worker (omit for an open task anyone may accept).
        #[arg(long)]
        worker: Option<String>,
        /// The arbiter who resolves disputes.
        #[arg(long)]
        arbiter: Option<String>,
        /// Milestone amounts, comma-separated (e.g. `300,700`).
        #[arg(long, value_delimiter = ',', required = true)]
        milestones: Vec<u64>,
        /// Seconds from now until the deadline.
        #[arg(long)]
        deadline_secs: u64,
        /// Review period of a submission before the worker may claim it.
        #[arg(long)]
        review_secs: u64,
        /// The specification (its SHA-256 goes on chain).
        #[arg(long)]
        spec: String,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Accept a task as its worker.
    Accept {
        /// Task id.
        #[arg(long)]
        id: String,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Submit a milestone's deliverable.
    Submit {
        /// Task id.
        #[arg(long)]
        id: String,
        /// Milestone index (0-based).
        #[arg(long)]
        milestone: u32,
        /// The deliverable (its SHA-256 goes on chain).
        #[arg(long)]
        deliverable: String,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Approve a submitted milestone (employer): pays the worker.
    Approve {
        /// Task id.
        #[arg(long)]
        id: String,
        /// Milestone index (0-based).
        #[arg(long)]
        milestone: u32,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Claim a milestone whose review period passed (worker).
    Claim {
        /// Task id.
        #[arg(long)]
        id: String,
        /// Milestone index (0-based).
        #[arg(long)]
        milestone: u32,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Raise a dispute.
    Dispute {
        /// Task id.
        #[arg(long)]
        id: String,
        /// The reason (its SHA-256 goes on chain).
        #[arg(long)]
        reason: String,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Resolve a dispute (arbiter).
    Resolve {
        /// Task id.
        #[arg(long)]
        id: String,
        /// The worker's share of the disputed escrow, in basis points (0..=10000).
        #[arg(long, value_parser = clap::value_parser!(u16).range(0..=10_000))]
        worker_share_bps: u16,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Cancel a task (employer): refunds what is not owed.
    Cancel {
        /// Task id.
        #[arg(long)]
        id: String,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Show a task.
    Show {
        /// Task id.
        #[arg(long)]
        id: String,
    },
}

/// `stint stream …`
#[derive(Debug, Clone, Subcommand)]
pub enum StreamCommand {
    /// Open and fund a wage stream (prints `stream_id`).
    Open {
        /// The worker paid by the stream.
        #[arg(long)]
        worker: String,
        /// Units per second.
        #[arg(long)]
        rate: u64,
        /// Funded seconds.
        #[arg(long)]
        duration_secs: u64,
        /// The employer may not cancel it.
        #[arg(long)]
        not_cancelable: bool,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Withdraw what accrued (worker).
    Withdraw {
        /// Stream id.
        #[arg(long)]
        id: String,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Fund more seconds (employer).
    Topup {
        /// Stream id.
        #[arg(long)]
        id: String,
        /// Seconds to add.
        #[arg(long)]
        extra_secs: u64,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Pause accrual (employer).
    Pause {
        /// Stream id.
        #[arg(long)]
        id: String,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Resume accrual (employer).
    Resume {
        /// Stream id.
        #[arg(long)]
        id: String,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Cancel (employer): pays what accrued, refunds the rest.
    Cancel {
        /// Stream id.
        #[arg(long)]
        id: String,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Show a stream.
    Show {
        /// Stream id.
        #[arg(long)]
        id: String,
    },
}

/// The wallet commands, as they appear under `stint`.
#[derive(Debug, Clone, Subcommand)]
pub enum WalletCommand {
    /// Manage key files.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show an account (default: the --key account).
    Account {
        /// Address to show.
        address: Option<String>,
    },
    /// Transfer units to another account.
    Transfer {
        /// Recipient address.
        #[arg(long)]
        to: String,
        /// Amount in units.
        #[arg(long)]
        amount: u64,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Withdraw units to a Bitcoin address: burns them on Stint; the bridge federation pays the
    /// sats once the batch is final (prints `withdrawal_id`; see `stint_getWithdrawal`).
    Withdraw {
        /// The Bitcoin address to pay (of the network the node follows).
        #[arg(long, value_name = "ADDR")]
        btc_address: String,
        /// Sats (= units) to withdraw: at least the address type's dust limit.
        #[arg(long)]
        amount: u64,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Pay many workers in one transaction from a CSV of `address,amount` rows.
    Payroll {
        /// The CSV file.
        #[arg(long)]
        csv: PathBuf,
        /// Fee and waiting options.
        #[command(flatten)]
        send: SendOpts,
    },
    /// Task escrows with milestones.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Wage streams.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// The network at a glance: heads with ages and lags, the dispute window, challenges, and
    /// whether the verifier agrees.
    ///
    /// Exit codes (for monitoring): 0 healthy; 1 the sequencer cannot be read (or bad
    /// arguments); 2 the verifier disagrees with the sequencer, found fraud, or cannot post a
    /// challenge; 3 the verifier cannot be reached; 4 anchoring stalled (a sealed batch waited
    /// longer than --stall-secs for its Bitcoin block). With several problems, the lowest code
    /// wins; `--json` lists them all under `health.problems`.
    Status {
        /// Verifier JSON-RPC URL to compare with.
        #[arg(long, env = "STINT_VERIFIER_RPC", default_value = DEFAULT_VERIFIER_RPC_URL)]
        verifier_rpc: String,
        /// Anchoring counts as stalled once the oldest sealed, unanchored batch is older than
        /// this (use about 3600 on mainnet, where a block takes ten minutes on average).
        #[arg(long, default_value_t = crate::status::DEFAULT_STALL_SECS, value_name = "SECS")]
        stall_secs: u64,
    },
}

/// Runs a wallet command, printing its result on stdout.
pub async fn run_wallet(command: WalletCommand, opts: &WalletOpts) -> Result<(), CliError> {
    let mut printer = Printer::new(opts);
    let output = match command {
        WalletCommand::Key(KeyCommand::New { out, force }) => {
            let (_, file) = Key::generate_to(&out, force)?;
            Output::new()
                .field("address", file.address)
                .field("key_file", out.display().to_string())
        }
        WalletCommand::Key(KeyCommand::Show) => {
            let key = load_key(opts)?;
            Output::new().field("address", key.account().to_string())
        }
        WalletCommand::Status {
            verifier_rpc,
            stall_secs,
        } => {
            let (output, unhealthy) = status(opts, &verifier_rpc, stall_secs).await?;
            printer.finish(&output)?;
            return unhealthy.map_or(Ok(()), Err);
        }
        WalletCommand::Account { address } => {
            let client = RpcClient::new(&opts.rpc)?;
            let account =
                match (address, &opts.key) {
                    (Some(address), _) => parse_address("address", &address)?,
                    (None, Some(_)) => load_key(opts)?.account(),
                    (None, None) => return Err(CliError::Usage(
                        "which account? give an address (stint account ADDRESS), or --key FILE \
                         (or STINT_KEY) for your own"
                            .into(),
                    )),
                };
            let value: Value = client
                .call("stint_getAccount", json!([account.to_string()]))
                .await?;
            Output::rendered(value, crate::show::account)
        }
        WalletCommand::Task(TaskCommand::Show { id }) => {
            let client = RpcClient::new(&opts.rpc)?;
            let value = get_task(&client, &parse_task_id(&id)?).await?;
            Output::rendered(value, |info| crate::show::task(info, unix_now()))
        }
        WalletCommand::Stream(StreamCommand::Show { id }) => {
            let client = RpcClient::new(&opts.rpc)?;
            let value = get_stream(&client, &parse_stream_id(&id)?).await?;
            Output::rendered(value, |info| crate::show::stream(info, unix_now()))
        }
        other => {
            let key = load_key(opts)?;
            let client = RpcClient::new(&opts.rpc)?;
            let wallet = Wallet { client, key };
            wallet.execute(other, &mut printer).await?
        }
    };
    printer.finish(&output)
}

/// A key and a sequencer to send its transactions to.
struct Wallet {
    client: RpcClient,
    key: Key,
}

impl Wallet {
    async fn execute(
        &self,
        command: WalletCommand,
        printer: &mut Printer,
    ) -> Result<Output, CliError> {
        let now = unix_now();
        let plan = match command {
            WalletCommand::Transfer { to, amount, send } => {
                let to = parse_address("--to", &to)?;
                positive("--amount", amount, "a transfer")?;
                self.require_balance(amount, send.fee, "the transfer")
                    .await?;
                Plan::one(Call::Transfer { to, amount }, send).show("amount", amount)
            }
            WalletCommand::Withdraw {
                btc_address,
                amount,
                send,
            } => {
                let btc_script = self.withdrawal_script(&btc_address).await?;
                let dust = stint_contracts::standard_output_dust(&btc_script).ok_or_else(|| {
                    CliError::Usage(format!(
                        "--btc-address {btc_address}: not a standard output (P2PKH, P2SH, P2WPKH, \
                         P2WSH, P2TR)"
                    ))
                })?;
                if amount < dust {
                    return Err(CliError::Usage(format!(
                        "--amount {amount}: below the dust limit of {dust} sats for this address"
                    )));
                }
                self.require_balance(amount, send.fee, "the withdrawal")
                    .await?;
                let mut plan = Plan::one(Call::Withdraw { btc_script, amount }, send)
                    .show("amount", amount)
                    .show("btc_address", btc_address);
                plan.id_field = Some("withdrawal_id");
                plan
            }
            WalletCommand::Payroll { csv, send } => {
                let text = std::fs::read_to_string(&csv)
                    .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", csv.display())))?;
                let payments = parse_payroll_csv(&text)?;
                let total = payments
                    .iter()
                    .try_fold(0u64, |sum, p| sum.checked_add(p.amount))
                    .ok_or_else(|| CliError::Usage("payroll total overflows".into()))?;
                let count = payments.len();
                let calls: Vec<Call> = payments
                    .chunks(MAX_PAYROLL_PAYMENTS)
                    .map(|chunk| Call::Payroll {
                        payments: chunk.to_vec(),
                    })
                    .collect();
                let fees = send.fee.saturating_mul(calls.len() as u64);
                self.require_balance(total, fees, "the payroll").await?;
                if calls.len() > 1 {
                    eprintln!(
                        "payroll: {count} payments, more than one transaction holds \
                         ({MAX_PAYROLL_PAYMENTS}): sending {} transactions, {fees} in fees",
                        calls.len()
                    );
                }
                let transactions = calls.len();
                Plan::many(calls, send)
                    .show("payments", count)
                    .show("total", total)
                    .show("transactions", transactions)
            }
            WalletCommand::Task(task) => self.task_call(task, now).await?,
            WalletCommand::Stream(stream) => self.stream_call(stream, now).await?,
            WalletCommand::Key(_)
            | WalletCommand::Account { .. }
            | WalletCommand::Status { .. } => {
                return Err(CliError::Usage("not a transaction command".into()))
            }
        };
        let info = self.chain_info().await?;
        let mut sent: Vec<String> = Vec::new();
        let result = self.send_and_wait(&plan, &info, &mut sent, printer).await;
        // The journal's rule (see `journal`): a command that succeeded lets its sends go; one
        // that failed keeps them open for a retry, except those that can never execute.
        let done: Vec<String> = match &result {
            Ok(_) => sent,
            Err(CliError::TxFailed { txid, .. } | CliError::TxDropped { txid }) => {
                vec![txid.clone()]
            }
            Err(_) => Vec::new(),
        };
        if !done.is_empty() {
            Journal::open(&self.key.account())?.close(&done)?;
        }
        result
    }

    /// The output script of `address`, which must be of the Bitcoin network the node follows
    /// (the one its bridge's deposit address is on).
    async fn withdrawal_script(&self, address: &str) -> Result<Vec<u8>, CliError> {
        let bridge: Value = self.client.call("stint_bridgeInfo", json!([])).await?;
        let deposit = bridge["depositAddress"].as_str().ok_or_else(|| {
            CliError::Usage("this network has no bridge: withdrawals are off".into())
        })?;
        let parse = |text: &str| {
            text.parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
                .map_err(|e| CliError::Usage(format!("--btc-address {text}: {e}")))
        };
        let networks = [
            bitcoin::Network::Bitcoin,
            bitcoin::Network::Testnet,
            bitcoin::Network::Signet,
            bitcoin::Network::Regtest,
        ];
        let bridge_address = parse(deposit)?;
        let network = networks
            .into_iter()
            .find(|n| bridge_address.is_valid_for_network(*n))
            .ok_or_else(|| CliError::Usage("the bridge's address has no known network".into()))?;
        let address = parse(address)?;
        let address = address.require_network(network).map_err(|_| {
            CliError::Usage(format!(
                "--btc-address: not an address of the network the node follows ({network})"
            ))
        })?;
        Ok(address.script_pubkey().to_bytes())
    }

    /// Signs (or takes from the journal) and sends each tx of `plan`, printing each txid as soon
    /// as the node has it, then waits for them when `--wait` asks.
    async fn send_and_wait(
        &self,
        plan: &Plan,
        info: &ChainInfo,
        sent: &mut Vec<String>,
        printer: &mut Printer,
    ) -> Result<Output, CliError> {
        let send = &plan.send;
        let forced = if send.via_bitcoin {
            Some(ForcedSender::new(&send.bitcoind, send.btc_fee_rate).await?)
        } else {
            None
        };
        let mut early = Output::new();
        for call in &plan.calls {
            let (txid, nonce) = self
                .sign_or_reuse(
                    info.chain_id,
                    call.clone(),
                    send.fee,
                    plan.relative_deadline,
                    forced.as_ref(),
                )
                .await?;
            sent.push(txid);
            if let Some(name) = plan.id_field {
                let me = self.key.account();
                let id = match name {
                    "task_id" => stint_contracts::task_id(&me, nonce).to_string(),
                    "withdrawal_id" => stint_contracts::withdrawal_id(&me, nonce).to_string(),
                    _ => stint_contracts::stream_id(&me, nonce).to_string(),
                };
                early = early.field(name, id);
            }
        }
        early = match sent.as_slice() {
            [one] => early.field("txid", one.clone()),
            many => early.field("txids", many.to_vec()),
        };
        if send.wait.is_some() {
            printer.early(&early.clone().field("status", "pending"))?;
        }
        let mut output = early;
        for (name, value) in &plan.summary {
            output = output.field(name, value.clone());
        }
        output = output.field("fee", send.fee.saturating_mul(sent.len() as u64));
        let Some(level) = send.wait else {
            return Ok(output.field("status", "pending"));
        };
        let mut last = Value::Null;
        for txid in sent.iter() {
            last = self.wait(txid, level, send, info).await?;
        }
        let finality = last
            .get("finality")
            .and_then(Value::as_str)
            .unwrap_or(level.as_str())
            .to_string();
        let batch = last.get("batch").and_then(Value::as_u64);
        if let (Some(id), Some(batch)) = (plan.settles_stream, batch) {
            if let Some((paid, refunded)) = self.stream_settlement(id, batch).await? {
                // What it paid replaces the estimate made before sending.
                output.map.remove("withdrawable_now");
                output = output.field("paid_to_worker", paid);
                if matches!(plan.calls.first(), Some(Call::StreamCancel { .. })) {
                    output = output.field("refunded_to_employer", refunded);
                }
            }
        }
        Ok(output
            .field("status", finality)
            .field("batch", last.get("batch").cloned().unwrap_or(Value::Null)))
    }

    /// What batch `batch` paid the worker of stream `id` and refunded its employer, from the
    /// stream before and after that batch (`None` if it did not exist before).
    async fn stream_settlement(
        &self,
        id: StreamId,
        batch: u64,
    ) -> Result<Option<(u64, u64)>, CliError> {
        let Some(before_batch) = batch.checked_sub(1) else {
            return Ok(None);
        };
        let read = |at| {
            self.client.api().stream(
                stint_api::Hex32(*id.as_bytes()),
                stint_api::ReadOptions {
                    proof: false,
                    at: Some(at),
                },
            )
        };
        let before = match read(before_batch).await {
            Ok(before) => before,
            Err(e) if e.code() == Some(stint_api::NOT_FOUND) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let after = read(batch).await?;
        let paid = after
            .stream
            .withdrawn
            .saturating_sub(before.stream.withdrawn);
        let escrow = |s: &stint_contracts::Stream| s.escrow().unwrap_or(0);
        let refunded = escrow(&before.stream)
            .saturating_sub(escrow(&after.stream))
            .saturating_sub(paid);
        Ok(Some((paid, refunded)))
    }

    /// The journal's rule: the open send of this intent if it can still execute (sent again if
    /// the node does not know it), else a new tx with the next nonce, recorded before it is
    /// sent. Returns the txid and nonce.
    async fn sign_or_reuse(
        &self,
        chain_id: u64,
        call: Call,
        fee: u64,
        relative_deadline: Option<u64>,
        forced: Option<&ForcedSender>,
    ) -> Result<(String, u64), CliError> {
        let me = self.key.account();
        // Held until the tx is with the node, so two commands of one key do not both sign.
        let mut journal = Journal::open(&me)?;
        let account = self.account().await?;
        let mut tx = Tx {
            chain_id,
            from: me,
            nonce: 0,
            fee,
            call,
        };
        let intent = journal::intent(&tx, relative_deadline);
        if let Some(entry) = journal.find(&intent).cloned() {
            let used = field_u64(&account, "nonce", "stint_getAccount")?;
            match self.reuse(&entry, used).await? {
                Reuse::Known => {
                    eprintln!(
                        "reusing {} (signed {}): the same command was run before and did not \
                         finish, so no second transaction is signed",
                        entry.txid,
                        time::describe(entry.signed_at, unix_now())
                    );
                    return Ok((entry.txid, entry.nonce));
                }
                Reuse::Resend => {
                    eprintln!(
                        "sending {} again: the same command was run before and did not finish",
                        entry.txid
                    );
                    self.submit(&entry.raw, &entry.txid, &mut journal, forced)
                        .await?;
                    return Ok((entry.txid, entry.nonce));
                }
                Reuse::Gone(why) => {
                    eprintln!(
                        "the earlier {} {why}: signing a new transaction",
                        entry.txid
                    );
                }
            }
        }
        let state_nonce = field_u64(&account, "nonce", "stint_getAccount")?;
        let pending_nonce =
            field_u64(&account, "pendingNonce", "stint_getAccount").unwrap_or(state_nonce);
        if forced.is_some() && pending_nonce > state_nonce {
            // Forced txs run before a batch's txs: one signed after pending ones would find
            // the state's nonce and be skipped.
            return Err(CliError::Usage(format!(
                "--via-bitcoin: this account has {} tx(s) pending at the sequencer; a forced tx \
                 runs before them and would be skipped (wrong nonce). Wait until they are in a \
                 batch, or send this one to the sequencer",
                pending_nonce - state_nonce
            )));
        }
        tx.nonce = pending_nonce;
        let nonce = tx.nonce;
        let signed = tx
            .sign(self.key.signing_key())
            .map_err(|e| CliError::Usage(format!("cannot sign: {e}")))?;
        let txid = signed.txid().to_string();
        let raw = hex::encode(signed.encode());
        journal.record(journal::Entry {
            intent,
            txid: txid.clone(),
            raw: raw.clone(),
            nonce,
            signed_at: unix_now(),
        })?;
        self.submit(&raw, &txid, &mut journal, forced).await?;
        Ok((txid, nonce))
    }

    /// Whether an open send can still execute.
    async fn reuse(&self, entry: &journal::Entry, used_nonce: u64) -> Result<Reuse, CliError> {
        match self
            .client
            .call::<Value>("stint_getReceipt", json!([entry.txid]))
            .await
        {
            Ok(receipt) => Ok(match receipt.get("finality").and_then(Value::as_str) {
                Some("dropped") => Reuse::Gone("was dropped".into()),
                _ if receipt.get("status").and_then(Value::as_str) == Some("failed") => {
                    let error = receipt.get("error").and_then(Value::as_str).unwrap_or("");
                    Reuse::Gone(format!("failed ({})", failure_text(error)))
                }
                _ => Reuse::Known,
            }),
            Err(CliError::Rpc { message, .. }) if message.contains("not found") => {
                Ok(if entry.nonce < used_nonce {
                    Reuse::Gone(format!(
                        "never reached the node and its nonce {} is used",
                        entry.nonce
                    ))
                } else {
                    Reuse::Resend
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a signed tx and checks that the node names it by the txid computed here. A
    /// rejection lets the journal entry go (nothing was accepted); a lost connection keeps it
    /// (the tx may have arrived: a retry sends the same one).
    async fn submit(
        &self,
        raw: &str,
        txid: &str,
        journal: &mut Journal,
        forced: Option<&ForcedSender>,
    ) -> Result<(), CliError> {
        if let Some(sender) = forced {
            let tx = hex::decode(raw)
                .ok()
                .and_then(|bytes| stint_contracts::SignedTx::decode(&bytes).ok())
                .ok_or_else(|| CliError::Usage(format!("the journal's {txid} does not decode")))?;
            let posted = sender.post(&tx).await?;
            eprintln!(
                "{txid} written to Bitcoin as a forced tx (in {}); every batch must execute it \
                 once its block has the genesis l1_confirmations, within the sequencing window",
                posted.btc_txid
            );
            return Ok(());
        }
        const METHOD: &str = "stint_sendRawTransaction";
        match self.client.call::<String>(METHOD, json!([raw])).await {
            Ok(answer) if answer == txid => Ok(()),
            Ok(answer) => Err(CliError::Protocol {
                method: METHOD.into(),
                reason: format!(
                    "the node names the transaction {}, but its id is {txid}: not trusting this \
                     node",
                    crate::text::shown(&answer)
                ),
            }),
            Err(CliError::Rpc {
                code: ALREADY_KNOWN,
                ..
            }) => Ok(()),
            Err(e @ CliError::Rpc { .. }) => {
                journal.close(&[txid.to_owned()])?;
                Err(e)
            }
            Err(CliError::Unreachable { url, reason }) => Err(CliError::SendInDoubt {
                txid: txid.to_owned(),
                url,
                reason,
            }),
            Err(e) => Err(e),
        }
    }

    async fn task_call(&self, command: TaskCommand, now: u64) -> Result<Plan, CliError> {
        let me = self.key.account();
        Ok(match command {
            TaskCommand::Create {
                worker,
                arbiter,
                milestones,
                deadline_secs,
                review_secs,
                spec,
                send,
            } => {
                let worker = worker.map(|w| parse_address("--worker", &w)).transpose()?;
                let arbiter = arbiter
                    .map(|a| parse_address("--arbiter", &a))
                    .transpose()?;
                if milestones.is_empty() || milestones.contains(&0) {
                    return Err(CliError::Usage(
                        "--milestones: give one or more positive amounts, e.g. 300,700".into(),
                    ));
                }
                let total = milestones
                    .iter()
                    .try_fold(0u64, |sum, m| sum.checked_add(*m))
                    .ok_or_else(|| CliError::Usage("milestone total overflows".into()))?;
                self.require_balance(total, send.fee, "the task escrow")
                    .await?;
                let deadline = now
                    .checked_add(deadline_secs)
                    .ok_or_else(|| CliError::Usage("--deadline-secs is too large".into()))?;
                let mut plan = Plan::one(
                    Call::TaskCreate {
                        worker,
                        arbiter,
                        spec_hash: sha256(&spec),
                        milestones,
                        deadline,
                        review_secs,
                    },
                    send,
                );
                plan.id_field = Some("task_id");
                plan.relative_deadline = Some(deadline_secs);
                plan.show("escrow", total)
            }
            TaskCommand::Accept { id, send } => {
                let id = parse_task_id(&id)?;
                let task = get_task(&self.client, &id).await?;
                if let Some(worker) = role(&task, "worker") {
                    if worker != me.to_string() {
                        return Err(not_role(&me, "worker", "task", &id.to_string(), &worker));
                    }
                }
                check_task(&id.to_string(), &task, TaskAction::Accept, now)?;
                Plan::one(Call::TaskAccept { id }, send)
            }
            TaskCommand::Submit {
                id,
                milestone,
                deliverable,
                send,
            } => {
                let id = parse_task_id(&id)?;
                self.require_role(&id, "worker", TaskAction::Submit(milestone), now)
                    .await?;
                Plan::one(
                    Call::TaskSubmit {
                        id,
                        milestone,
                        deliverable_hash: sha256(&deliverable),
                    },
                    send,
                )
            }
            TaskCommand::Approve {
                id,
                milestone,
                send,
            } => {
                let id = parse_task_id(&id)?;
                let task = self
                    .require_role(&id, "employer", TaskAction::Approve(milestone), now)
                    .await?;
                let amount = milestone_amount(&task, milestone);
                Plan::one(Call::TaskApprove { id, milestone }, send).show("amount", amount)
            }
            TaskCommand::Claim {
                id,
                milestone,
                send,
            } => {
                let id = parse_task_id(&id)?;
                let task = self
                    .require_role(&id, "worker", TaskAction::Claim(milestone), now)
                    .await?;
                let amount = milestone_amount(&task, milestone);
                Plan::one(Call::TaskClaim { id, milestone }, send).show("amount", amount)
            }
            TaskCommand::Dispute { id, reason, send } => {
                let id = parse_task_id(&id)?;
                let task = get_task(&self.client, &id).await?;
                let parties = [role(&task, "employer"), role(&task, "worker")];
                if !parties.iter().flatten().any(|p| *p == me.to_string()) {
                    return Err(CliError::Usage(format!(
                        "you ({me}) are neither the employer nor the worker of task {id}"
                    )));
                }
                check_task(&id.to_string(), &task, TaskAction::Dispute, now)?;
                Plan::one(
                    Call::TaskDispute {
                        id,
                        reason_hash: sha256(&reason),
                    },
                    send,
                )
            }
            TaskCommand::Resolve {
                id,
                worker_share_bps,
                send,
            } => {
                let id = parse_task_id(&id)?;
                let task = self
                    .require_role(&id, "arbiter", TaskAction::Resolve, now)
                    .await?;
                let escrow = task.get("escrow").and_then(Value::as_u64).unwrap_or(0);
                let (to_worker, to_employer) = split(escrow, worker_share_bps);
                Plan::one(
                    Call::TaskResolve {
                        id,
                        worker_share_bps,
                    },
                    send,
                )
                .show("to_worker", to_worker)
                .show("to_employer", to_employer)
            }
            TaskCommand::Cancel { id, send } => {
                let id = parse_task_id(&id)?;
                self.require_role(&id, "employer", TaskAction::Cancel, now)
                    .await?;
                Plan::one(Call::TaskCancel { id }, send)
            }
            TaskCommand::Show { .. } => {
                return Err(CliError::Usage("not a transaction command".into()))
            }
        })
    }

    async fn stream_call(&self, command: StreamCommand, now: u64) -> Result<Plan, CliError> {
        let employer_only = |id: String, send: SendOpts, make: fn(StreamId) -> Call| async move {
            let id = parse_stream_id(&id)?;
            let stream = self.require_stream_role(&id, "employer").await?;
            let action = match make(id) {
                Call::StreamPause { .. } => StreamAction::Pause,
                Call::StreamResume { .. } => StreamAction::Resume,
                _ => StreamAction::Cancel,
            };
            check_stream(&id.to_string(), &stream, action)?;
            Ok::<_, CliError>(Plan::one(make(id), send))
        };
        match command {
            StreamCommand::Open {
                worker,
                rate,
                duration_secs,
                not_cancelable,
                send,
            } => {
                let worker = parse_address("--worker", &worker)?;
                if rate == 0 || duration_secs == 0 {
                    return Err(CliError::Usage(
                        "--rate and --duration-secs must be positive".into(),
                    ));
                }
                let escrow = rate
                    .checked_mul(duration_secs)
                    .ok_or_else(|| CliError::Usage("--rate × --duration-secs overflows".into()))?;
                self.require_balance(escrow, send.fee, "the stream's escrow")
                    .await?;
                let mut plan = Plan::one(
                    Call::StreamOpen {
                        worker,
                        rate_per_sec: rate,
                        start: now,
                        duration_secs,
                        cancelable: !not_cancelable,
                    },
                    send,
                );
                plan.id_field = Some("stream_id");
                Ok(plan.show("escrow", escrow))
            }
            StreamCommand::Withdraw { id, send } => {
                let id = parse_stream_id(&id)?;
                let stream = self.require_stream_role(&id, "worker").await?;
                check_stream(&id.to_string(), &stream, StreamAction::Withdraw)?;
                // What accrued by the soft head; the batch that runs it pays up to its own time.
                let accrued = stream.get("withdrawable").cloned().unwrap_or(Value::Null);
                let mut plan =
                    Plan::one(Call::StreamWithdraw { id }, send).show("withdrawable_now", accrued);
                plan.settles_stream = Some(id);
                Ok(plan)
            }
            StreamCommand::Topup {
                id,
                extra_secs,
                send,
            } => {
                let id = parse_stream_id(&id)?;
                let stream = self.require_stream_role(&id, "employer").await?;
                check_stream(&id.to_string(), &stream, StreamAction::Topup)?;
                positive("--extra-secs", extra_secs, "a top-up")?;
                let rate = stream
                    .get("ratePerSec")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let cost = rate
                    .checked_mul(extra_secs)
                    .ok_or_else(|| CliError::Usage("--extra-secs × rate overflows".into()))?;
                self.require_balance(cost, send.fee, "the top-up").await?;
                Ok(Plan::one(Call::StreamTopUp { id, extra_secs }, send).show("amount", cost))
            }
            StreamCommand::Pause { id, send } => {
                employer_only(id, send, |id| Call::StreamPause { id }).await
            }
            StreamCommand::Resume { id, send } => {
                employer_only(id, send, |id| Call::StreamResume { id }).await
            }
            StreamCommand::Cancel { id, send } => {
                let mut plan =
                    employer_only(id.clone(), send, |id| Call::StreamCancel { id }).await?;
                plan.settles_stream = Some(parse_stream_id(&id)?);
                Ok(plan)
            }
            StreamCommand::Show { .. } => Err(CliError::Usage("not a transaction command".into())),
        }
    }

    async fn chain_info(&self) -> Result<ChainInfo, CliError> {
        let info: Value = self.client.call("stint_chainInfo", json!([])).await?;
        Ok(ChainInfo {
            chain_id: field_u64(&info, "chainId", "stint_chainInfo")?,
            dispute_window: info.get("disputeWindow").and_then(Value::as_u64),
        })
    }

    /// The account at the sequencer's soft head; `pendingNonce` counts its pending txs too.
    async fn account(&self) -> Result<Value, CliError> {
        self.client
            .call("stint_getAccount", json!([self.key.account().to_string()]))
            .await
    }

    async fn require_balance(&self, amount: u64, fee: u64, what: &str) -> Result<(), CliError> {
        let balance = field_u64(&self.account().await?, "balance", "stint_getAccount")?;
        let needed = amount
            .checked_add(fee)
            .ok_or_else(|| CliError::Usage("amount plus fee overflows".into()))?;
        if balance < needed {
            return Err(CliError::Usage(format!(
                "insufficient balance: {} has {balance}, {what} needs {needed} ({amount} + fees {fee})",
                self.key.account()
            )));
        }
        Ok(())
    }

    /// The task, if this key holds its `which` role and `action` can succeed on it.
    async fn require_role(
        &self,
        id: &TaskId,
        which: &str,
        action: TaskAction,
        now: u64,
    ) -> Result<Value, CliError> {
        let task = get_task(&self.client, id).await?;
        let me = self.key.account();
        match role(&task, which) {
            Some(holder) if holder == me.to_string() => {
                check_task(&id.to_string(), &task, action, now)?;
                Ok(task)
            }
            Some(holder) => Err(not_role(&me, which, "task", &id.to_string(), &holder)),
            None => Err(CliError::Usage(format!("task {id} has no {which} yet"))),
        }
    }

    async fn require_stream_role(&self, id: &StreamId, which: &str) -> Result<Value, CliError> {
        let stream = get_stream(&self.client, id).await?;
        let me = self.key.account();
        match role(&stream, which) {
            Some(holder) if holder == me.to_string() => Ok(stream),
            Some(holder) => Err(not_role(&me, which, "stream", &id.to_string(), &holder)),
            None => Err(CliError::Protocol {
                method: "stint_getStream".into(),
                reason: format!("no {which} in the answer"),
            }),
        }
    }

    /// Polls the receipt until `level`, printing each change of finality (and, waiting for
    /// `final`, the dispute window's blocks left) on stderr. A node that stops answering is
    /// retried with backoff for `--reconnect-secs` before giving up.
    async fn wait(
        &self,
        txid: &str,
        level: WaitLevel,
        send: &SendOpts,
        info: &ChainInfo,
    ) -> Result<Value, CliError> {
        let started = Instant::now();
        let mut seen = String::from("pending");
        let mut lost: Option<Instant> = None;
        let mut backoff = RECONNECT_BACKOFF_MIN;
        let mut blocks_left: Option<u64> = None;
        let mut forced_seen: Option<u64> = None;
        eprintln!("waiting for {txid} to become {} …", level.as_str());
        loop {
            let polled = self.poll(txid, level, info, &mut blocks_left).await;
            let receipt = match polled {
                Ok(receipt) => {
                    if lost.take().is_some() {
                        eprintln!("  reconnected to {}", self.client.url());
                        backoff = RECONNECT_BACKOFF_MIN;
                    }
                    receipt
                }
                // A restarting node refuses connections, or answers oddly while it stops.
                Err(CliError::Unreachable { reason, .. } | CliError::Protocol { reason, .. }) => {
                    let url = self.client.url().to_owned();
                    let since = *lost.get_or_insert_with(|| {
                        eprintln!(
                            "  lost the node at {url} ({reason}); retrying for up to {}s",
                            send.reconnect_secs
                        );
                        Instant::now()
                    });
                    if since.elapsed() >= Duration::from_secs(send.reconnect_secs) {
                        return Err(CliError::WaitLost {
                            txid: txid.to_string(),
                            url,
                            reason,
                            seen,
                            secs: send.reconnect_secs,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(receipt) = receipt.filter(|r| !r.is_null()) {
                let finality = receipt
                    .get("finality")
                    .and_then(Value::as_str)
                    .unwrap_or("pending")
                    .to_string();
                if let Some(height) = receipt.pointer("/forced/height").and_then(Value::as_u64) {
                    if forced_seen.replace(height) != Some(height) && finality == "pending" {
                        eprintln!(
                            "  in Bitcoin block {height}: a batch must execute it once that block \
                             has the genesis l1_confirmations (the sequencing window bounds the wait)"
                        );
                    }
                }
                if finality != seen {
                    let batch = receipt.get("batch").cloned().unwrap_or(Value::Null);
                    eprintln!("  {seen} → {finality} (batch {batch})");
                    seen = finality.clone();
                }
                if receipt.get("status").and_then(Value::as_str) == Some("skipped") {
                    return Err(CliError::TxFailed {
                        txid: txid.to_string(),
                        reason: format!(
                            "the forced tx was skipped: {}",
                            receipt
                                .get("error")
                                .and_then(Value::as_str)
                                .unwrap_or("invalid when its batch ran")
                        ),
                    });
                }
                if receipt.get("status").and_then(Value::as_str) == Some("failed") {
                    return Err(CliError::TxFailed {
                        txid: txid.to_string(),
                        reason: failure_text(
                            receipt
                                .get("error")
                                .and_then(Value::as_str)
                                .unwrap_or("unknown error"),
                        ),
                    });
                }
                let reached = match finality.as_str() {
                    "soft" => Some(WaitLevel::Soft),
                    "anchored" => Some(WaitLevel::Anchored),
                    "final" => Some(WaitLevel::Final),
                    "dropped" => {
                        return Err(CliError::TxDropped {
                            txid: txid.to_string(),
                        })
                    }
                    _ => None,
                };
                if reached.is_some_and(|r| r >= level) {
                    return Ok(receipt);
                }
            }
            if started.elapsed() >= Duration::from_secs(send.wait_timeout) {
                return Err(CliError::WaitTimeout {
                    txid: txid.to_string(),
                    level: level.as_str().into(),
                    seen,
                    secs: send.wait_timeout,
                });
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// One look at the receipt (`None`: the node does not have it in a batch yet). Waiting for
    /// `final` on an anchored tx, prints the window's blocks left when they change.
    async fn poll(
        &self,
        txid: &str,
        level: WaitLevel,
        info: &ChainInfo,
        blocks_left: &mut Option<u64>,
    ) -> Result<Option<Value>, CliError> {
        let receipt = match self
            .client
            .call::<Option<Value>>("stint_getReceipt", json!([txid]))
            .await
        {
            Ok(receipt) => receipt,
            Err(CliError::Rpc { message, .. }) if message.contains("not found") => None,
            Err(e) => return Err(e),
        };
        let anchored_batch = receipt
            .as_ref()
            .filter(|r| r.get("finality").and_then(Value::as_str) == Some("anchored"))
            .and_then(|r| r.get("batch"))
            .and_then(Value::as_u64);
        if let (WaitLevel::Final, Some(batch), Some(window)) =
            (level, anchored_batch, info.dispute_window)
        {
            let left = window_blocks_left(&self.client, batch, window).await?;
            if left.is_some() && left != *blocks_left {
                if let Some(left) = left {
                    eprintln!(
                        "  final in {left} more Bitcoin block{} (dispute window {window})",
                        if left == 1 { "" } else { "s" }
                    );
                }
                *blocks_left = left;
            }
        }
        Ok(receipt)
    }
}

/// How an open send of the journal stands.
enum Reuse {
    /// The node has it: wait for it.
    Known,
    /// The node does not know it, and it can still execute: send it again.
    Resend,
    /// It can no longer execute (why): sign a new tx.
    Gone(String),
}

/// What a command will send: one tx per call, in order.
#[derive(Debug)]
struct Plan {
    calls: Vec<Call>,
    send: SendOpts,
    /// `task_id` or `stream_id`: the new record's id, printed with the txid.
    id_field: Option<&'static str>,
    /// `--deadline-secs` of a task (what the journal's intent keeps instead of the deadline).
    relative_deadline: Option<u64>,
    /// Amounts and counts printed with the result.
    summary: Vec<(&'static str, Value)>,
    /// A stream withdraw or cancel: once executed, print what it paid and refunded.
    settles_stream: Option<StreamId>,
}

impl Plan {
    fn one(call: Call, send: SendOpts) -> Self {
        Self::many(vec![call], send)
    }

    fn many(calls: Vec<Call>, send: SendOpts) -> Self {
        Self {
            calls,
            send,
            id_field: None,
            relative_deadline: None,
            summary: Vec::new(),
            settles_stream: None,
        }
    }

    fn show(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.summary.push((name, value.into()));
        self
    }
}

/// What wallet commands need of `stint_chainInfo`.
#[derive(Debug, Clone, Copy)]
struct ChainInfo {
    chain_id: u64,
    dispute_window: Option<u64>,
}

/// Blocks left in the dispute window of anchored batch `number` (`None` if not anchored).
async fn window_blocks_left(
    client: &RpcClient,
    number: u64,
    window: u64,
) -> Result<Option<u64>, CliError> {
    let batch: Value = client.call("stint_getBatch", json!([number])).await?;
    let Some(height) = batch
        .get("anchor")
        .and_then(|a| a.get("height"))
        .and_then(Value::as_u64)
    else {
        return Ok(None);
    };
    let sync: Value = client.call("stint_syncStatus", json!([])).await?;
    let tip = sync
        .get("l1")
        .and_then(|l1| l1.get("height"))
        .and_then(Value::as_u64)
        .unwrap_or(height);
    // Final once the tip is `window` blocks past the anchoring block.
    Ok(Some((height.saturating_add(window)).saturating_sub(tip)))
}

/// A receipt's failure code in words, with the code: `zeroAmount` → `zero amount (zeroAmount)`.
fn failure_text(code: &str) -> String {
    let mut words = String::new();
    for c in code.chars() {
        if c.is_uppercase() {
            words.push(' ');
            words.extend(c.to_lowercase());
        } else {
            words.push(c);
        }
    }
    if words == code {
        crate::text::shown(code)
    } else {
        format!(
            "{} ({})",
            crate::text::shown(&words),
            crate::text::shown(code)
        )
    }
}

/// `stint status`: the report as a table (or JSON), then an error carrying the exit code when
/// something is wrong.
async fn status(
    opts: &WalletOpts,
    verifier_rpc: &str,
    stall_secs: u64,
) -> Result<(Output, Option<CliError>), CliError> {
    let client = RpcClient::new(&opts.rpc)?;
    let report = crate::status::gather(&client, verifier_rpc).await?;
    let now = unix_now();
    let health = crate::status::assess(&report, stall_secs, now);
    let output = Output {
        map: report.output(&health, now),
        text: Some(crate::status::table(&report, &health, now)),
    };
    let unhealthy = (health.exit_code() != 0).then(|| CliError::Unhealthy {
        code: health.exit_code(),
        problems: health
            .problems
            .iter()
            .map(|p| p.what.clone())
            .collect::<Vec<_>>()
            .join("; "),
    });
    Ok((output, unhealthy))
}

async fn get_task(client: &RpcClient, id: &TaskId) -> Result<Value, CliError> {
    match client
        .call::<Value>("stint_getTask", json!([id.to_string()]))
        .await
    {
        Err(CliError::Rpc { code, .. }) if code == stint_api::NOT_FOUND => {
            Err(CliError::Usage(format!("unknown task {id}")))
        }
        other => other,
    }
}

async fn get_stream(client: &RpcClient, id: &StreamId) -> Result<Value, CliError> {
    match client
        .call::<Value>("stint_getStream", json!([id.to_string()]))
        .await
    {
        Err(CliError::Rpc { code, .. }) if code == stint_api::NOT_FOUND => {
            Err(CliError::Usage(format!("unknown stream {id}")))
        }
        other => other,
    }
}

/// A milestone's amount from the task JSON.
fn milestone_amount(task: &Value, milestone: u32) -> Value {
    task.get("milestones")
        .and_then(|m| m.get(milestone as usize))
        .and_then(|m| m.get("amount"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The arbiter's split of `escrow`: `(to_worker, to_employer)`, as the contracts compute it.
fn split(escrow: u64, worker_share_bps: u16) -> (u64, u64) {
    let to_worker = u64::try_from(
        u128::from(escrow) * u128::from(worker_share_bps) / u128::from(BPS_DENOMINATOR),
    )
    .unwrap_or(escrow);
    (to_worker, escrow.saturating_sub(to_worker))
}

fn role(record: &Value, which: &str) -> Option<String> {
    record
        .get(which)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn not_role(me: &AccountId, which: &str, kind: &str, id: &str, holder: &str) -> CliError {
    CliError::Usage(format!(
        "you ({me}) are not the {which} of {kind} {id} (the {which} is {holder})"
    ))
}

fn field_u64(value: &Value, field: &str, method: &str) -> Result<u64, CliError> {
    value
        .get(field)
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .ok_or_else(|| CliError::Protocol {
            method: method.into(),
            reason: format!("no {field}"),
        })
}

fn load_key(opts: &WalletOpts) -> Result<Key, CliError> {
    let path = opts.key.as_ref().ok_or_else(|| {
        CliError::Usage("this command signs: give --key FILE (or set STINT_KEY)".into())
    })?;
    Key::load(path)
}

/// Parses an address, naming the flag it came from.
pub fn parse_address(flag: &str, text: &str) -> Result<AccountId, CliError> {
    let shown = crate::text::shown(text);
    AccountId::from_address(text).map_err(|e| match e {
        stint_contracts::AddressError::Malformed(_)
        | stint_contracts::AddressError::WrongHrp(_) => CliError::Usage(format!(
            "{flag} {shown}: not a Stint address (an address starts with stint1, as \
                 `stint key show` prints it)"
        )),
        other => CliError::Usage(format!("{flag} {shown}: {other}")),
    })
}

fn parse_task_id(text: &str) -> Result<TaskId, CliError> {
    text.parse()
        .map_err(|_| CliError::Usage(format!("--id {text}: a task id is 64 hex digits")))
}

fn parse_stream_id(text: &str) -> Result<StreamId, CliError> {
    text.parse()
        .map_err(|_| CliError::Usage(format!("--id {text}: a stream id is 64 hex digits")))
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a command prints: one JSON object with `--json`, else its text for people (`key: value`
/// lines unless the command renders its own).
#[derive(Debug, Default, Clone)]
struct Output {
    map: Map<String, Value>,
    /// The text mode's rendering, when not `key: value` lines.
    text: Option<String>,
}

impl Output {
    fn new() -> Self {
        Self::default()
    }

    fn from_value(value: Value) -> Self {
        match value {
            Value::Object(map) => Self { map, text: None },
            other => Self::new().field("result", other),
        }
    }

    /// The node's JSON, shown to people by `render` once it decodes as `T` (else as
    /// `key: value` lines).
    fn rendered<T: serde::de::DeserializeOwned>(
        value: Value,
        render: impl Fn(&T) -> String,
    ) -> Self {
        let text = serde_json::from_value::<T>(value.clone())
            .ok()
            .map(|typed| render(&typed));
        Self {
            text,
            ..Self::from_value(value)
        }
    }

    fn field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.map.insert(name.to_string(), value.into());
        self
    }

    /// The value at a dotted path (`verifier.agrees`, `milestones.0.state`).
    fn lookup(&self, path: &str) -> Result<&Value, CliError> {
        let mut parts = path.split('.');
        let first = parts.next().unwrap_or_default();
        let mut value = self.map.get(first);
        let mut at = first.to_owned();
        let mut names: Vec<String> = self.map.keys().cloned().collect();
        for part in parts {
            let Some(inner) = value else { break };
            names = match inner {
                Value::Object(map) => map.keys().cloned().collect(),
                Value::Array(items) => (0..items.len()).map(|i| i.to_string()).collect(),
                _ => Vec::new(),
            };
            value = match inner {
                Value::Object(map) => map.get(part),
                Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            if value.is_some() {
                at = format!("{at}.{part}");
            }
        }
        value.ok_or_else(|| {
            let path = crate::text::shown(path);
            if names.is_empty() {
                CliError::Usage(format!("--field {path}: {at} has no fields"))
            } else if at == first && !self.map.contains_key(first) {
                CliError::Usage(format!(
                    "--field {path}: the result has no such field (it has: {})",
                    names.join(", ")
                ))
            } else {
                CliError::Usage(format!(
                    "--field {path}: no such field in {at} (it has: {})",
                    names.join(", ")
                ))
            }
        })
    }
}

/// A value as one line of text (strings without quotes).
pub(crate) fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints a command's result on stdout: `name: value` lines, one JSON object (`--json`), or one
/// field as plain text (`--field`, a dotted path). A command that waits prints what it knows at
/// send time first (the txid and any new id): as lines, as a first JSON object with `status`
/// `pending`, or the field if it is one of them; the rest once the wait is over.
#[derive(Debug)]
pub(crate) struct Printer {
    json: bool,
    field: Option<String>,
    /// Names printed early (text mode).
    shown: Vec<String>,
    /// The `--field` was printed early.
    field_done: bool,
}

impl Printer {
    fn new(opts: &WalletOpts) -> Self {
        Self {
            json: opts.json,
            field: opts.field.clone(),
            shown: Vec::new(),
            field_done: false,
        }
    }

    fn early(&mut self, out: &Output) -> Result<(), CliError> {
        match &self.field {
            Some(field) => {
                if let Ok(value) = out.lookup(field) {
                    println!("{}", plain(value));
                    self.field_done = true;
                }
            }
            None if self.json => println!("{}", Value::Object(out.map.clone())),
            None => {
                for (name, value) in out.map.iter().filter(|(name, _)| *name != "status") {
                    println!("{name}: {}", plain(value));
                    self.shown.push(name.clone());
                }
            }
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        Ok(())
    }

    fn finish(&self, out: &Output) -> Result<(), CliError> {
        match &self.field {
            Some(_) if self.field_done => {}
            Some(field) => println!("{}", plain(out.lookup(field)?)),
            None if self.json => println!("{}", Value::Object(out.map.clone())),
            None if out.text.is_some() => println!("{}", out.text.as_deref().unwrap_or_default()),
            None => {
                for (name, value) in out
                    .map
                    .iter()
                    .filter(|(name, _)| !self.shown.contains(name))
                {
                    println!("{name}: {}", plain(value));
                }
            }
        }
        Ok(())
    }
}
