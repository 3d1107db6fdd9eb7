//! Identifiers: account ids and their bech32m addresses, task/stream ids, txids, and the hex
//! helpers the JSON forms use.

use std::fmt;
use std::str::FromStr;

use bech32::primitives::decode::UncheckedHrpstring;
use bech32::{Bech32, Bech32m, Hrp};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::AddressError;

/// Human-readable part of every Stint address.
pub const ADDRESS_HRP: &str = "stint";

/// An account: the 32-byte x-only (BIP340) public key of its owner.
///
/// Its text form ([`fmt::Display`], [`FromStr`], serde) is the bech32m [`Address`] with
/// human-readable part [`ADDRESS_HRP`].
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct AccountId(pub [u8; 32]);

/// The text form of an [`AccountId`]: a bech32m string with human-readable part `stint`.
///
/// An alias, so that every API taking an account takes the same type; parse one with
/// [`AccountId::from_address`] or [`str::parse`].
pub type Address = AccountId;

impl AccountId {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The bech32m address (lowercase).
    pub fn to_address(&self) -> String {
        let mut out = String::with_capacity(66);
        // Encoding 32 bytes under a valid, short hrp cannot fail; fall back to writing nothing
        // rather than panicking (unreachable in practice).
        let hrp = Hrp::parse_unchecked(ADDRESS_HRP);
        if bech32::encode_lower_to_fmt::<Bech32m, String>(&mut out, hrp, &self.0).is_err() {
            out.clear();
        }
        out
    }

    /// Whether the 32 bytes are a valid BIP340 x-only public key (an x coordinate on the
    /// curve). Only then can anyone ever sign for the account: units sent to any other 32 bytes
    /// would be burned for good, so addresses and wallet-facing entry points refuse them.
    pub fn is_key(&self) -> bool {
        k256::schnorr::VerifyingKey::from_bytes(&self.0).is_ok()
    }

    /// Parse a bech32m address, telling apart the ways it can be wrong.
    ///
    /// Accepts the all-lowercase or all-uppercase form (as BIP173 allows); rejects mixed case,
    /// a bech32 (not bech32m) checksum, another hrp, a payload that is not 32 bytes,
    /// non-canonical padding, and 32 bytes that are not an x-only public key
    /// ([`AccountId::is_key`]).
    pub fn from_address(s: &str) -> Result<Self, AddressError> {
        let unchecked =
            UncheckedHrpstring::new(s).map_err(|e| AddressError::Malformed(e.to_string()))?;
        let hrp = unchecked.hrp();
        if hrp.to_lowercase() != ADDRESS_HRP {
            return Err(AddressError::WrongHrp(hrp.to_lowercase()));
        }
        if !unchecked.has_valid_checksum::<Bech32m>() {
            if unchecked.has_valid_checksum::<Bech32>() {
                return Err(AddressError::WrongVariant);
            }
            return Err(AddressError::BadChecksum);
        }
        let checked = unchecked.remove_checksum::<Bech32m>();
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let id: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| AddressError::WrongLength(bytes.len()))?;
        let account = AccountId(id);
        // Padding bits and length in 5-bit groups must be exactly what the encoder writes.
        if account.to_address() != s.to_ascii_lowercase() {
            return Err(AddressError::NonCanonical);
        }
        if !account.is_key() {
            return Err(AddressError::NotAKey);
        }
        Ok(account)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_address())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.to_address())
    }
}

impl FromStr for AccountId {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_address(s)
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_address())
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(deserializer)?;
        Self::from_address(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! hash_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Text form (Display, FromStr, serde): 64 lowercase hex digits.
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize,
            BorshDeserialize,
        )]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), hex::encode(self.0))
            }
        }

        impl FromStr for $name {
            type Err = hex::FromHexError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)?;
                Ok(Self(out))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&hex::encode(self.0))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <String as Deserialize>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hash_id!(
    /// Id of a task escrow: `tagged_hash("stint/task", creator ‖ nonce_le)`.
    TaskId
);
hash_id!(
    /// Id of a wage stream: `tagged_hash("stint/stream", creator ‖ nonce_le)`.
    StreamId
);
hash_id!(
    /// Id of a transaction: `tagged_hash("stint/tx", borsh(tx))`.
    Txid
);
hash_id!(
    /// Id of a withdrawal (protocol v3): `tagged_hash("stint/withdrawal", sender ‖ nonce_le)`.
    WithdrawalId
);

/// Serde helpers: fixed-size byte arrays as lowercase hex strings.
/// Serde helper: a byte vector as a lowercase hex string.
pub(crate) mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let s = <String as Deserialize>::deserialize(deserializer)?;
        hex::decode(&s).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        let s = <String as Deserialize>::deserialize(deserializer)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AccountId {
        // The x-only key of secret key 1 (the generator's x coordinate).
        let key = k256::schnorr::SigningKey::from_bytes(&[1; 32]).unwrap();
        AccountId(key.verifying_key().to_bytes().into())
    }

    #[test]
    fn addresses_must_be_keys() {
        // 0xff..ff is above the field size; 0x03..03 is below it but no point has that x.
        for bytes in [[0xff; 32], [3; 32], [0; 32]] {
            let a = AccountId(bytes);
            assert!(!a.is_key());
            let text = a.to_address();
            assert_eq!(
                text.parse::<AccountId>(),
                Err(AddressError::NotAKey),
                "{text}"
            );
            assert!(serde_json::from_str::<AccountId>(&format!("\"{text}\"")).is_err());
        }
        assert!(AccountId([0xff; 32]).to_address().starts_with("stint1llll"));
        assert!(sample().is_key());
    }

    #[test]
    fn address_round_trips() {
        let a = sample();
        let s = a.to_address();
        assert!(s.starts_with("stint1"));
        assert_eq!(s.parse::<AccountId>().unwrap(), a);
        assert_eq!(s.to_uppercase().parse::<AccountId>().unwrap(), a);
        assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{s}\""));
        assert_eq!(
            serde_json::from_str::<AccountId>(&format!("\"{s}\"")).unwrap(),
            a
        );
    }

    #[test]
    fn address_errors_are_distinguished() {
        let a = sample();
        let s = a.to_address();
        // Flip one data character: bad checksum.
        let mut chars: Vec<char> = s.chars().collect();
        let i = 10;
        chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
        let bad: String = chars.into_iter().collect();
        assert_eq!(bad.parse::<AccountId>(), Err(AddressError::BadChecksum));

        let other_hrp = bech32::encode::<Bech32m>(Hrp::parse("bc").unwrap(), &a.0).unwrap();
        assert_eq!(
            other_hrp.parse::<AccountId>(),
            Err(AddressError::WrongHrp("bc".into()))
        );

        let short =
            bech32::encode::<Bech32m>(Hrp::parse(ADDRESS_HRP).unwrap(), &a.0[..31]).unwrap();
        assert_eq!(
            short.parse::<AccountId>(),
            Err(AddressError::WrongLength(31))
        );

        let bech32_variant =
            bech32::encode::<Bech32>(Hrp::parse(ADDRESS_HRP).unwrap(), &a.0).unwrap();
        assert_eq!(
            bech32_variant.parse::<AccountId>(),
            Err(AddressError::WrongVariant)
        );

        assert!(matches!(
            "nonsense".parse::<AccountId>(),
            Err(AddressError::Malformed(_))
        ));
        let mixed = format!("S{}", &s[1..]);
        assert!(matches!(
            mixed.parse::<AccountId>(),
            Err(AddressError::Malformed(_))
        ));
    }

    #[test]
    fn ids_hex_round_trip() {
        let id = TaskId([0xab; 32]);
        let s = id.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<TaskId>().unwrap(), id);
        assert!("zz".parse::<TaskId>().is_err());
        assert_eq!(
            serde_json::from_str::<TaskId>(&serde_json::to_string(&id).unwrap()).unwrap(),
            id
        );
    }
}
