//! Wallet and contract commands: build a tx from flags, check what can be checked before
//! sending (addresses, balances, roles), sign it, send it, and optionally wait for finality.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use stint_contracts::{AccountId, Call, StreamId, TaskId, Tx};

use crate::client::RpcClient;
use crate::error::CliError;
use crate::keys::Key;
use crate::payroll::parse_payroll_csv;

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

/// Options of every wallet command.
#[derive(Debug, Clone, Args)]
pub struct WalletOpts {
    /// Sequencer JSON-RPC URL.
    #[arg(long, env = "STINT_RPC", default_value = DEFAULT_RPC_URL, global = true)]
    pub rpc: String,
    /// Key file (`{"address", "secret_key"}`, mode 0600) of the account that signs.
    #[arg(long, env = "STINT_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only this field of the result, as plain text (for scripts:
    /// `TASK=$(stint task create … --field task_id)`).
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "json")]
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
pub struct SendOpts {
    /// Fee in units.
    #[arg(long, default_value_t = DEFAULT_FEE)]
    pub fee: u64,
    /// Block until the transaction reaches this level (progress goes to stderr).
    #[arg(long, value_enum)]
    pub wait: Option<WaitLevel>,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = DEFAULT_WAIT_TIMEOUT_SECS)]
    pub wait_timeout: u64,
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
    /// Heads, L1 tip, dispute window and verifier agreement.
    Status {
        /// Verifier JSON-RPC URL to compare with.
        #[arg(long, env = "STINT_VERIFIER_RPC", default_value = DEFAULT_VERIFIER_RPC_URL)]
        verifier_rpc: String,
    },
}

/// Runs a wallet command, printing its result on stdout.
pub async fn run_wallet(command: WalletCommand, opts: &WalletOpts) -> Result<(), CliError> {
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
        WalletCommand::Status { verifier_rpc } => status(opts, &verifier_rpc).await?,
        WalletCommand::Account { address } => {
            let client = RpcClient::new(&opts.rpc)?;
            let account = match address {
                Some(address) => parse_address("address", &address)?,
                None => load_key(opts)?.account(),
            };
            let value: Value = client
                .call("stint_getAccount", json!([account.to_string()]))
                .await?;
            Output::from_value(value)
        }
        WalletCommand::Task(TaskCommand::Show { id }) => {
            let client = RpcClient::new(&opts.rpc)?;
            Output::from_value(get_task(&client, &parse_task_id(&id)?).await?)
        }
        WalletCommand::Stream(StreamCommand::Show { id }) => {
            let client = RpcClient::new(&opts.rpc)?;
            Output::from_value(get_stream(&client, &parse_stream_id(&id)?).await?)
        }
        other => {
            let key = load_key(opts)?;
            let client = RpcClient::new(&opts.rpc)?;
            let wallet = Wallet { client, key };
            wallet.execute(other).await?
        }
    };
    output.print(opts.json, opts.field.as_deref())
}

/// A key and a sequencer to send its transactions to.
struct Wallet {
    client: RpcClient,
    key: Key,
}

impl Wallet {
    async fn execute(&self, command: WalletCommand) -> Result<Output, CliError> {
        let me = self.key.account();
        let now = unix_now();
        let (call, send, extra): (Call, SendOpts, Option<(&str, String)>) = match command {
            WalletCommand::Transfer { to, amount, send } => {
                let to = parse_address("--to", &to)?;
                self.require_balance(amount, send.fee, "the transfer")
                    .await?;
                (Call::Transfer { to, amount }, send, None)
            }
            WalletCommand::Payroll { csv, send } => {
                let text = std::fs::read_to_string(&csv)
                    .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", csv.display())))?;
                let payments = parse_payroll_csv(&text)?;
                let total = payments
                    .iter()
                    .try_fold(0u64, |sum, p| sum.checked_add(p.amount))
                    .ok_or_else(|| CliError::Usage("payroll total overflows".into()))?;
                self.require_balance(total, send.fee, "the payroll").await?;
                (Call::Payroll { payments }, send, None)
            }
            WalletCommand::Task(task) => self.task_call(task, now).await?,
            WalletCommand::Stream(stream) => self.stream_call(stream, now).await?,
            WalletCommand::Key(_)
            | WalletCommand::Account { .. }
            | WalletCommand::Status { .. } => {
                return Err(CliError::Usage("not a transaction command".into()))
            }
        };
        let chain_id = self.chain_id().await?;
        let nonce = self.next_nonce().await?;
        let tx = Tx {
            chain_id,
            from: me,
            nonce,
            fee: send.fee,
            call,
        };
        let extra = extra.map(|(name, _)| match name {
            "task_id" => (name, tx.task_id().to_string()),
            _ => (name, tx.stream_id().to_string()),
        });
        let signed = tx
            .sign(self.key.signing_key())
            .map_err(|e| CliError::Usage(format!("cannot sign: {e}")))?;
        let raw = hex::encode(signed.encode());
        let txid: String = self
            .client
            .call("stint_sendRawTransaction", json!([raw]))
            .await?;
        let mut output = Output::new().field("txid", txid.clone());
        if let Some((name, value)) = extra {
            output = output.field(name, value);
        }
        match send.wait {
            None => Ok(output.field("status", "pending")),
            Some(level) => {
                let receipt = self.wait(&txid, level, send.wait_timeout).await?;
                let finality = receipt
                    .get("finality")
                    .and_then(Value::as_str)
                    .unwrap_or(level.as_str())
                    .to_string();
                Ok(output.field("status", finality).field(
                    "batch",
                    receipt.get("batch").cloned().unwrap_or(Value::Null),
                ))
            }
        }
    }

    async fn task_call(
        &self,
        command: TaskCommand,
        now: u64,
    ) -> Result<(Call, SendOpts, Option<(&'static str, String)>), CliError> {
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
                (
                    Call::TaskCreate {
                        worker,
                        arbiter,
                        spec_hash: sha256(&spec),
                        milestones,
                        deadline,
                        review_secs,
                    },
                    send,
                    Some(("task_id", String::new())),
                )
            }
            TaskCommand::Accept { id, send } => {
                let id = parse_task_id(&id)?;
                let task = get_task(&self.client, &id).await?;
                if let Some(worker) = role(&task, "worker") {
                    if worker != me.to_string() {
                        return Err(not_role(&me, "worker", "task", &id.to_string(), &worker));
                    }
                }
                (Call::TaskAccept { id }, send, None)
            }
            TaskCommand::Submit {
                id,
                milestone,
                deliverable,
                send,
            } => {
                let id = parse_task_id(&id)?;
                self.require_role(&id, "worker").await?;
                (
                    Call::TaskSubmit {
                        id,
                        milestone,
                        deliverable_hash: sha256(&deliverable),
                    },
                    send,
                    None,
                )
            }
            TaskCommand::Approve {
                id,
                milestone,
                send,
            } => {
                let id = parse_task_id(&id)?;
                self.require_role(&id, "employer").await?;
                (Call::TaskApprove { id, milestone }, send, None)
            }
            TaskCommand::Claim {
                id,
                milestone,
                send,
            } => {
                let id = parse_task_id(&id)?;
                self.require_role(&id, "worker").await?;
                (Call::TaskClaim { id, milestone }, send, None)
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
                (
                    Call::TaskDispute {
                        id,
                        reason_hash: sha256(&reason),
                    },
                    send,
                    None,
                )
            }
            TaskCommand::Resolve {
                id,
                worker_share_bps,
                send,
            } => {
                let id = parse_task_id(&id)?;
                self.require_role(&id, "arbiter").await?;
                (
                    Call::TaskResolve {
                        id,
                        worker_share_bps,
                    },
                    send,
                    None,
                )
            }
            TaskCommand::Cancel { id, send } => {
                let id = parse_task_id(&id)?;
                self.require_role(&id, "employer").await?;
                (Call::TaskCancel { id }, send, None)
            }
            TaskCommand::Show { .. } => {
                return Err(CliError::Usage("not a transaction command".into()))
            }
        })
    }

    async fn stream_call(
        &self,
        command: StreamCommand,
        now: u64,
    ) -> Result<(Call, SendOpts, Option<(&'static str, String)>), CliError> {
        let employer_only = |id: String, send: SendOpts, make: fn(StreamId) -> Call| async move {
            let id = parse_stream_id(&id)?;
            self.require_stream_role(&id, "employer").await?;
            Ok::<_, CliError>((make(id), send, None))
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
                Ok((
                    Call::StreamOpen {
                        worker,
                        rate_per_sec: rate,
                        start: now,
                        duration_secs,
                        cancelable: !not_cancelable,
                    },
                    send,
                    Some(("stream_id", String::new())),
                ))
            }
            StreamCommand::Withdraw { id, send } => {
                let id = parse_stream_id(&id)?;
                self.require_stream_role(&id, "worker").await?;
                Ok((Call::StreamWithdraw { id }, send, None))
            }
            StreamCommand::Topup {
                id,
                extra_secs,
                send,
            } => {
                let id = parse_stream_id(&id)?;
                let stream = self.require_stream_role(&id, "employer").await?;
                let rate = stream
                    .get("ratePerSec")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let cost = rate
                    .checked_mul(extra_secs)
                    .ok_or_else(|| CliError::Usage("--extra-secs × rate overflows".into()))?;
                self.require_balance(cost, send.fee, "the top-up").await?;
                Ok((Call::StreamTopUp { id, extra_secs }, send, None))
            }
            StreamCommand::Pause { id, send } => {
                employer_only(id, send, |id| Call::StreamPause { id }).await
            }
            StreamCommand::Resume { id, send } => {
                employer_only(id, send, |id| Call::StreamResume { id }).await
            }
            StreamCommand::Cancel { id, send } => {
                employer_only(id, send, |id| Call::StreamCancel { id }).await
            }
            StreamCommand::Show { .. } => Err(CliError::Usage("not a transaction command".into())),
        }
    }

    async fn chain_id(&self) -> Result<u64, CliError> {
        let info: Value = self.client.call("stint_chainInfo", json!([])).await?;
        info.get("chainId")
            .and_then(Value::as_u64)
            .ok_or_else(|| CliError::Protocol {
                method: "stint_chainInfo".into(),
                reason: "no chainId".into(),
            })
    }

    /// The account at the sequencer's soft head; `pendingNonce` counts its pending txs too.
    async fn account(&self) -> Result<Value, CliError> {
        self.client
            .call("stint_getAccount", json!([self.key.account().to_string()]))
            .await
    }

    /// The nonce after the account's pending txs, so commands can follow each other without
    /// waiting.
    async fn next_nonce(&self) -> Result<u64, CliError> {
        let account = self.account().await?;
        field_u64(&account, "pendingNonce", "stint_getAccount")
            .or_else(|_| field_u64(&account, "nonce", "stint_getAccount"))
    }

    async fn require_balance(&self, amount: u64, fee: u64, what: &str) -> Result<(), CliError> {
        let balance = field_u64(&self.account().await?, "balance", "stint_getAccount")?;
        let needed = amount
            .checked_add(fee)
            .ok_or_else(|| CliError::Usage("amount plus fee overflows".into()))?;
        if balance < needed {
            return Err(CliError::Usage(format!(
                "insufficient balance: {} has {balance}, {what} needs {needed} ({amount} + fee {fee})",
                self.key.account()
            )));
        }
        Ok(())
    }

    async fn require_role(&self, id: &TaskId, which: &str) -> Result<Value, CliError> {
        let task = get_task(&self.client, id).await?;
        let me = self.key.account();
        match role(&task, which) {
            Some(holder) if holder == me.to_string() => Ok(task),
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

    /// Polls the receipt until `level`, printing each change of finality on stderr.
    async fn wait(
        &self,
        txid: &str,
        level: WaitLevel,
        timeout_secs: u64,
    ) -> Result<Value, CliError> {
        let started = Instant::now();
        let mut seen = String::from("pending");
        eprintln!("waiting for {txid} to become {} …", level.as_str());
        loop {
            let receipt: Option<Value> = match self
                .client
                .call::<Option<Value>>("stint_getReceipt", json!([txid]))
                .await
            {
                Ok(receipt) => receipt,
                // Not in a batch yet.
                Err(CliError::Rpc { message, .. }) if message.contains("not found") => None,
                Err(e) => return Err(e),
            };
            if let Some(receipt) = receipt.filter(|r| !r.is_null()) {
                let finality = receipt
                    .get("finality")
                    .and_then(Value::as_str)
                    .unwrap_or("pending")
                    .to_string();
                if finality != seen {
                    let batch = receipt.get("batch").cloned().unwrap_or(Value::Null);
                    eprintln!("  {seen} → {finality} (batch {batch})");
                    seen = finality.clone();
                }
                if receipt.get("status").and_then(Value::as_str) == Some("failed") {
                    return Err(CliError::TxFailed {
                        txid: txid.to_string(),
                        reason: receipt
                            .get("error")
                            .and_then(Value::as_str)
                            .unwrap_or("unknown error")
                            .to_string(),
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
            if started.elapsed() >= Duration::from_secs(timeout_secs) {
                return Err(CliError::WaitTimeout {
                    txid: txid.to_string(),
                    level: level.as_str().into(),
                    seen,
                    secs: timeout_secs,
                });
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }
}

/// `stint status`: heads, L1 tip, the newest anchored batch's remaining window, and whether the
/// verifier agrees.
async fn status(opts: &WalletOpts, verifier_rpc: &str) -> Result<Output, CliError> {
    let client = RpcClient::new(&opts.rpc)?;
    let info: Value = client.call("stint_chainInfo", json!([])).await?;
    let sync: Value = client.call("stint_syncStatus", json!([])).await?;
    let mut output = Output::new()
        .field(
            "chain_id",
            info.get("chainId").cloned().unwrap_or(Value::Null),
        )
        .field("soft", sync.get("soft").cloned().unwrap_or(Value::Null))
        .field(
            "anchored",
            sync.get("anchored").cloned().unwrap_or(Value::Null),
        )
        .field("final", sync.get("final").cloned().unwrap_or(Value::Null))
        .field("l1", sync.get("l1").cloned().unwrap_or(Value::Null));

    let window = info.get("disputeWindow").and_then(Value::as_u64);
    let l1_height = sync
        .get("l1")
        .and_then(|l1| l1.get("height"))
        .and_then(Value::as_u64);
    let anchored_number = sync
        .get("anchored")
        .and_then(|a| a.get("number"))
        .and_then(Value::as_u64);
    if let (Some(window), Some(l1_height), Some(number)) = (window, l1_height, anchored_number) {
        if number > 0 {
            let batch: Value = client.call("stint_getBatch", json!([number])).await?;
            if let Some(height) = batch
                .get("anchor")
                .and_then(|a| a.get("height"))
                .and_then(Value::as_u64)
            {
                // Final once the tip is `window` blocks past the anchoring block.
                let left = (height + window).saturating_sub(l1_height);
                output = output.field(
                    "window_blocks_left",
                    json!({"batch": number, "blocks": left}),
                );
            }
        }
    }

    let verifier = match RpcClient::new(verifier_rpc) {
        Ok(v) => v.call::<Value>("stint_verifierStatus", json!([])).await,
        Err(e) => Err(e),
    };
    output = match verifier {
        Ok(status) => {
            let verified = status.get("verified").cloned().unwrap_or(Value::Null);
            let agrees = match verified.get("number").and_then(Value::as_u64) {
                Some(number) if number > 0 => {
                    let ours: Value = client.call("stint_getBatch", json!([number])).await?;
                    Some(
                        ours.get("hash") == verified.get("hash")
                            && ours.get("stateRoot") == verified.get("stateRoot"),
                    )
                }
                _ => None,
            };
            output.field("verifier", json!({"verified": verified, "agrees": agrees}))
        }
        Err(e) => output.field("verifier", json!({"error": e.to_string()})),
    };
    Ok(output)
}

async fn get_task(client: &RpcClient, id: &TaskId) -> Result<Value, CliError> {
    match client
        .call::<Value>("stint_getTask", json!([id.to_string()]))
        .await
    {
        Ok(Value::Null) => Err(CliError::Usage(format!("unknown task {id}"))),
        Err(CliError::Rpc { message, .. }) if message.contains("not found") => {
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
        Ok(Value::Null) => Err(CliError::Usage(format!("unknown stream {id}"))),
        Err(CliError::Rpc { message, .. }) if message.contains("not found") => {
            Err(CliError::Usage(format!("unknown stream {id}")))
        }
        other => other,
    }
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
    text.parse()
        .map_err(|e| CliError::Usage(format!("{flag} {text}: {e}")))
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

/// What a command prints: one JSON object with `--json`, else `key: value` lines.
#[derive(Debug, Default)]
struct Output(Map<String, Value>);

impl Output {
    fn new() -> Self {
        Self::default()
    }

    fn from_value(value: Value) -> Self {
        match value {
            Value::Object(map) => Self(map),
            other => Self::new().field("result", other),
        }
    }

    fn field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.insert(name.to_string(), value.into());
        self
    }

    fn print(&self, json: bool, field: Option<&str>) -> Result<(), CliError> {
        let text = |value: &Value| match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some(field) = field {
            let value = self.0.get(field).ok_or_else(|| {
                let names: Vec<&str> = self.0.keys().map(String::as_str).collect();
                CliError::Usage(format!(
                    "--field {field}: the result has no such field (it has: {})",
                    names.join(", ")
                ))
            })?;
            println!("{}", text(value));
        } else if json {
            println!("{}", Value::Object(self.0.clone()));
        } else {
            for (name, value) in &self.0 {
                println!("{name}: {}", text(value));
            }
        }
        Ok(())
    }
}
