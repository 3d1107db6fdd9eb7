//! The anchor key file.

use std::path::Path;

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use serde::Deserialize;
use stint_contracts::AccountId;

use crate::error::ConfigError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    address: Option<String>,
    secret_key: String,
}

fn bad(path: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError::Read {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Checks that the secret file at `path` (`what` names it in the reason) is readable by its
/// owner only (mode 0600 on Unix).
pub(crate) fn check_private(path: &Path, what: &str) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{what} mode is {:o}; it must be 0600 (chmod 600)",
                mode & 0o777
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
    Ok(())
}

/// Load the anchor key: a JSON file `{"address", "secret_key"}` (as `stint key new` writes it)
/// or a file holding just the 64 hex digits of the secret key. On Unix the file must not be
/// readable by group or others (mode 0600). When the JSON names an address it must be the key's.
pub fn load_anchor_key(path: &Path) -> Result<Keypair, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| bad(path, e.to_string()))?;
    check_private(path, "key file").map_err(|reason| bad(path, reason))?;
    let trimmed = text.trim();
    let (secret_hex, address) = if trimmed.starts_with('{') {
        let file: KeyFile =
            serde_json::from_str(trimmed).map_err(|e| bad(path, format!("not a key file: {e}")))?;
        (file.secret_key, file.address)
    } else {
        (trimmed.to_owned(), None)
    };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(secret_hex.trim(), &mut bytes)
        .map_err(|_| bad(path, "secret_key must be 64 hex digits"))?;
    let secret =
        SecretKey::from_slice(&bytes).map_err(|_| bad(path, "secret_key is not a valid key"))?;
    let keypair = Keypair::from_secret_key(&Secp256k1::new(), &secret);
    if let Some(address) = address {
        let expected = AccountId(keypair.x_only_public_key().0.serialize());
        let named =
            AccountId::from_address(&address).map_err(|e| bad(path, format!("address: {e}")))?;
        if named != expected {
            return Err(bad(path, "address does not belong to secret_key"));
        }
    }
    Ok(keypair)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        path
    }

    #[test]
    fn json_hex_mode_and_address_checks() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "01".repeat(32);
        let kp = load_anchor_key(&write(dir.path(), "hex", &secret, 0o600)).unwrap();
        let address = AccountId(kp.x_only_public_key().0.serialize()).to_address();
        let json = format!("{{\"address\":\"{address}\",\"secret_key\":\"{secret}\"}}");
        assert_eq!(
            load_anchor_key(&write(dir.path(), "json", &json, 0o600)).unwrap(),
            kp
        );
        #[cfg(unix)]
        assert!(load_anchor_key(&write(dir.path(), "open", &secret, 0o644))
            .unwrap_err()
            .to_string()
            .contains("0600"));
        let other = AccountId([7; 32]).to_address();
        let json = format!("{{\"address\":\"{other}\",\"secret_key\":\"{secret}\"}}");
        assert!(load_anchor_key(&write(dir.path(), "wrong", &json, 0o600)).is_err());
        assert!(load_anchor_key(&write(dir.path(), "short", "abcd", 0o600)).is_err());
    }
}
