//! The send journal: what makes wallet commands safe to retry.
//!
//! **The rule.** Before a command signs a transaction it records it here, keyed by its *intent*:
//! the chain, the sender, the fee and the call, with the call's times taken as the flags gave
//! them (`--deadline-secs`, not the absolute deadline; a stream's start left out), so running
//! the same command line again has the same intent. The entry stays *open* until the command
//! that made it finishes successfully. A later command of the same intent while an entry is open
//! is a retry: it does not sign a new transaction with a new nonce, it takes the recorded one
//! (the same txid), sends it again if the node does not know it, and waits for it. An open entry
//! is let go, and a new transaction signed, only when it can no longer execute: its receipt says
//! `failed` or `dropped`, or the node does not know it and its nonce has been used by another
//! transaction. So a payroll script that retries a command which lost its node pays once; the
//! same command run again after it succeeded is a new payment.
//!
//! One JSON file per account, `sends/<address>.json` in the state folder (`STINT_STATE_DIR`,
//! else `$XDG_STATE_HOME/stint`, else `~/.local/state/stint`), mode 0600 (it holds signed
//! transactions, no secrets), replaced atomically, and changed only under an exclusive `flock`
//! of `sends/<address>.lock`, so two commands of one key at once do not both sign.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stint_contracts::{AccountId, Call, Tx};

use crate::error::CliError;

/// One open send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The intent, hex.
    pub(crate) intent: String,
    /// The signed tx's id, hex.
    pub(crate) txid: String,
    /// The signed tx, hex of its canonical encoding.
    pub(crate) raw: String,
    /// Its nonce.
    pub(crate) nonce: u64,
    /// When it was signed (Unix seconds).
    pub(crate) signed_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    open: Vec<Entry>,
}

/// The intent of a tx: its id with nonce 0 and the call's times as the flags gave them
/// (`relative_deadline` replaces a task's absolute deadline; a stream's start is 0).
pub(crate) fn intent(tx: &Tx, relative_deadline: Option<u64>) -> String {
    let mut call = tx.call.clone();
    match &mut call {
        Call::TaskCreate { deadline, .. } => *deadline = relative_deadline.unwrap_or(*deadline),
        Call::StreamOpen { start, .. } => *start = 0,
        _ => {}
    }
    Tx {
        chain_id: tx.chain_id,
        from: tx.from,
        nonce: 0,
        fee: tx.fee,
        call,
    }
    .txid()
    .to_string()
}

/// The folder of the journals.
fn state_dir() -> Result<PathBuf, CliError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("STINT_STATE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return Ok(PathBuf::from(dir).join("stint"));
    }
    var("HOME")
        .map(|home| PathBuf::from(home).join(".local/state/stint"))
        .ok_or_else(|| {
            CliError::Usage("no folder for the send journal: set STINT_STATE_DIR (or HOME)".into())
        })
}

/// An account's journal, locked while it is held.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    _lock: std::fs::File,
}

impl Journal {
    /// Opens and locks the journal of `account` (waits while another command holds it).
    pub(crate) fn open(account: &AccountId) -> Result<Self, CliError> {
        Self::open_in(&state_dir()?.join("sends"), account)
    }

    fn open_in(dir: &Path, account: &AccountId) -> Result<Self, CliError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |e: std::io::Error| {
                CliError::Usage(format!(
                    "send journal {}: {e} (set STINT_STATE_DIR to a folder you can write)",
                    path.display()
                ))
            }
        };
        std::fs::create_dir_all(dir).map_err(err(dir))?;
        let lock_path = dir.join(format!("{account}.lock"));
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(err(&lock_path))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| err(&lock_path)(e.into()))?;
        let path = dir.join(format!("{account}.json"));
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                CliError::Usage(format!(
                    "send journal {}: {e} (move it away to start a new one)",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(err(&path)(e)),
        };
        Ok(Self {
            path,
            file,
            _lock: lock,
        })
    }

    /// The open entry of `intent`.
    pub(crate) fn find(&self, intent: &str) -> Option<&Entry> {
        self.file.open.iter().find(|e| e.intent == intent)
    }

    /// Records `entry` (replacing an entry of the same intent) and saves.
    pub(crate) fn record(&mut self, entry: Entry) -> Result<(), CliError> {
        self.file.open.retain(|e| e.intent != entry.intent);
        self.file.open.push(entry);
        self.save()
    }

    /// Lets the entries of `txids` go and saves.
    pub(crate) fn close(&mut self, txids: &[String]) -> Result<(), CliError> {
        let before = self.file.open.len();
        self.file.open.retain(|e| !txids.contains(&e.txid));
        if self.file.open.len() == before {
            return Ok(());
        }
        self.save()
    }

    fn save(&self) -> Result<(), CliError> {
        let err = |e: std::io::Error| {
            CliError::Usage(format!("send journal {}: {e}", self.path.display()))
        };
        let tmp = self.path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        out.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
        let text = serde_json::to_string_pretty(&self.file).unwrap_or_default();
        out.write_all(text.as_bytes()).map_err(err)?;
        out.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stint_contracts::TaskId;

    fn account(seed: u8) -> AccountId {
        AccountId::from_signing_key(&k256::schnorr::SigningKey::from_bytes(&[seed; 32]).unwrap())
    }

    fn tx(nonce: u64, fee: u64, call: Call) -> Tx {
        Tx {
            chain_id: 1337,
            from: account(1),
            nonce,
            fee,
            call,
        }
    }

    #[test]
    fn intent_ignores_the_nonce_and_the_clock_but_not_the_call_or_fee() {
        let pay = |amount| Call::Transfer {
            to: account(2),
            amount,
        };
        assert_eq!(
            intent(&tx(0, 10, pay(5)), None),
            intent(&tx(7, 10, pay(5)), None)
        );
        assert_ne!(
            intent(&tx(0, 10, pay(5)), None),
            intent(&tx(0, 10, pay(6)), None)
        );
        assert_ne!(
            intent(&tx(0, 10, pay(5)), None),
            intent(&tx(0, 11, pay(5)), None)
        );
        let create = |deadline| Call::TaskCreate {
            worker: None,
            arbiter: None,
            spec_hash: [0; 32],
            milestones: vec![1],
            deadline,
            review_secs: 60,
        };
        // Run a minute apart, `--deadline-secs 3600` is one intent.
        assert_eq!(
            intent(&tx(0, 10, create(1_000 + 3_600)), Some(3_600)),
            intent(&tx(1, 10, create(1_060 + 3_600)), Some(3_600))
        );
        let open = |start| Call::StreamOpen {
            worker: account(2),
            rate_per_sec: 1,
            start,
            duration_secs: 60,
            cancelable: true,
        };
        assert_eq!(
            intent(&tx(0, 10, open(5)), None),
            intent(&tx(0, 10, open(9)), None)
        );
        let approve = Call::TaskApprove {
            id: TaskId([3; 32]),
            milestone: 0,
        };
        assert_ne!(
            intent(&tx(0, 10, approve), None),
            intent(&tx(0, 10, pay(5)), None)
        );
    }

    #[test]
    fn entries_survive_reopening_until_closed_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let me = account(1);
        let entry = Entry {
            intent: "ab".repeat(32),
            txid: "cd".repeat(32),
            raw: "00".into(),
            nonce: 3,
            signed_at: 1,
        };
        {
            let mut journal = Journal::open_in(dir.path(), &me).unwrap();
            assert!(journal.find(&entry.intent).is_none());
            journal.record(entry.clone()).unwrap();
        }
        let path = dir.path().join(format!("{me}.json"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut journal = Journal::open_in(dir.path(), &me).unwrap();
        assert_eq!(journal.find(&entry.intent), Some(&entry));
        journal.close(std::slice::from_ref(&entry.txid)).unwrap();
        drop(journal);
        let journal = Journal::open_in(dir.path(), &me).unwrap();
        assert!(journal.find(&entry.intent).is_none());
        // Another account's journal is another file.
        assert!(Journal::open_in(dir.path(), &account(2))
            .unwrap()
            .find(&entry.intent)
            .is_none());
    }
}
