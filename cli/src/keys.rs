//! Key files: `{"address", "secret_key"}` (hex), written with mode 0600, the same JSON that
//! `stint key new --out FILE` writes and `stint devnet` hands out (DESIGN §5).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k256::schnorr::SigningKey;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use stint_contracts::AccountId;

use crate::error::CliError;

/// The JSON of a key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The account's bech32m address (`stint1…`).
    pub address: String,
    /// The 32-byte BIP340 secret key as 64 hex digits, exactly as generated.
    pub secret_key: String,
}

/// A loaded key: the signing key and the account it controls.
#[derive(Clone)]
pub struct Key {
    signing: SigningKey,
    account: AccountId,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Key")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        loop {
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            // Fails only for zero or ≥ the group order: astronomically unlikely; draw again.
            if let Ok(key) = Self::from_secret(&secret) {
                return key;
            }
        }
    }

    /// The key for a 32-byte secret.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, CliError> {
        let signing = SigningKey::from_bytes(secret).map_err(|_| {
            CliError::Usage("the secret key is not a valid secp256k1 scalar".into())
        })?;
        let account = AccountId::from_signing_key(&signing);
        Ok(Self { signing, account })
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The account this key controls.
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// The key file JSON. `secret` must be the bytes this key was made from (k256 normalises
    /// the secret it returns, so the original bytes are kept by the caller).
    fn to_file(&self, secret: &[u8; 32]) -> KeyFile {
        KeyFile {
            address: self.account.to_string(),
            secret_key: hex::encode(secret),
        }
    }

    /// Writes a new key file with mode 0600. Refuses to overwrite an existing file unless
    /// `overwrite` is set.
    pub fn generate_to(path: &Path, overwrite: bool) -> Result<(Self, KeyFile), CliError> {
        let mut secret = [0u8; 32];
        let key = loop {
            rand::rngs::OsRng.fill_bytes(&mut secret);
            if let Ok(key) = Self::from_secret(&secret) {
                break key;
            }
        };
        let file = key.to_file(&secret);
        write_key_file(path, &file, overwrite)?;
        Ok((key, file))
    }

    /// Loads a key file: strict JSON, the secret must be 64 hex digits, the address must match
    /// the secret, and the file must not be readable by group or others.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let io = |e: std::io::Error| CliError::KeyFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let invalid = |reason: String| CliError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let metadata = std::fs::metadata(path).map_err(io)?;
        if metadata.is_dir() {
            return Err(invalid(
                "is a directory, not a key file (`stint key new --out FILE` writes one)".into(),
            ));
        }
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(invalid(format!(
                "permissions {:o} are too open: the key must be readable by its owner only \
                 (run `chmod 600 {}`)",
                mode & 0o777,
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|e| invalid(format!("not a key file: {e}")))?;
        let bytes =
            hex::decode(&file.secret_key).map_err(|_| invalid("secret_key is not hex".into()))?;
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| invalid("secret_key must be 32 bytes (64 hex digits)".into()))?;
        let key = Self::from_secret(&secret).map_err(|e| invalid(e.to_string()))?;
        let address: AccountId = file
            .address
            .parse()
            .map_err(|e| invalid(format!("bad address: {e}")))?;
        if address != key.account {
            return Err(invalid(format!(
                "address {} does not belong to this secret key (it controls {})",
                file.address, key.account
            )));
        }
        Ok(key)
    }
}

/// Writes `file` to `path` with mode 0600 (created that way, never widened afterwards).
pub fn write_key_file(path: &Path, file: &KeyFile, overwrite: bool) -> Result<(), CliError> {
    let err = |e: std::io::Error| CliError::KeyFile {
        path: path.to_path_buf(),
        reason: if e.kind() == std::io::ErrorKind::AlreadyExists {
            "already exists (pass --force to overwrite it)".into()
        } else {
            e.to_string()
        },
    };
    let mut options = OpenOptions::new();
    options.write(true).mode(0o600);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut out = options.open(path).map_err(err)?;
    // An existing file keeps its mode on truncate: tighten it.
    out.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(err)?;
    let mut json = serde_json::to_string_pretty(file).map_err(|e| CliError::KeyFile {
        path: PathBuf::from(path),
        reason: e.to_string(),
    })?;
    json.push('\n');
    out.write_all(json.as_bytes()).map_err(err)?;
    out.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_files_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.json");
        let (key, file) = Key::generate_to(&path, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(file.address, key.account().to_string());
        let loaded = Key::load(&path).unwrap();
        assert_eq!(loaded.account(), key.account());
        // The stored secret is the generated one, byte for byte.
        let stored: KeyFile =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(stored, file);
        // No overwrite without asking.
        let err = Key::generate_to(&path, false).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        let (again, _) = Key::generate_to(&path, true).unwrap();
        assert_ne!(again.account(), key.account());
    }

    #[test]
    fn bad_key_files_are_refused_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let (key, file) = Key::generate_to(&path, false).unwrap();

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Key::load(&path).unwrap_err().to_string();
        assert!(err.contains("too open"), "{err}");

        let other = Key::generate();
        let cases = [
            (
                format!(
                    r#"{{"address":"{}","secret_key":"{}"}}"#,
                    other.account(),
                    file.secret_key
                ),
                "does not belong",
            ),
            (
                format!(r#"{{"address":"{}","secret_key":"zz"}}"#, key.account()),
                "not hex",
            ),
            (
                format!(r#"{{"address":"{}","secret_key":"abcd"}}"#, key.account()),
                "32 bytes",
            ),
            (
                format!(
                    r#"{{"address":"{}","secret_key":"{}","extra":1}}"#,
                    key.account(),
                    file.secret_key
                ),
                "not a key file",
            ),
        ];
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        for (json, want) in cases {
            std::fs::write(&path, &json).unwrap();
            let err = Key::load(&path).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        assert!(Key::load(&dir.path().join("missing.json")).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = Key::from_secret(&[7; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode([7u8; 32])));
        assert!(shown.contains("stint1"));
    }
}
