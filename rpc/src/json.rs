//! Strict JSON reading for requests: the envelope is split into calls without building values
//! (so a batch's length is checked first), ids are kept as their exact text, and an object
//! that names a key twice is refused at any depth (a proxy that reads the first of two `method`
//! keys would otherwise see another request than the server runs).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// A request payload split into its calls, each still unparsed text.
#[derive(Debug)]
pub(crate) enum Envelope<'a> {
    /// One call (whatever JSON value it is).
    Single(&'a RawValue),
    /// A batch, at most the limit it was split with.
    Batch(Vec<&'a RawValue>),
}

/// Why a payload could not be split.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvelopeError {
    /// Not JSON (or not UTF-8).
    Parse,
    /// A batch of more calls than allowed: `received` counts up to the first one too many.
    TooLong,
}

/// Splits `payload` into calls; a batch of more than `max_batch` calls fails with
/// [`EnvelopeError::TooLong`] before the rest of it is read.
pub(crate) fn split(payload: &[u8], max_batch: usize) -> Result<Envelope<'_>, EnvelopeError> {
    let text = std::str::from_utf8(payload).map_err(|_| EnvelopeError::Parse)?;
    if text.trim_start().starts_with('[') {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut too_long = false;
        let items = de.deserialize_seq(BoundedSeqVisitor {
            max: max_batch,
            too_long: &mut too_long,
        });
        match items {
            Ok(items) => {
                de.end().map_err(|_| EnvelopeError::Parse)?;
                Ok(Envelope::Batch(items))
            }
            Err(_) if too_long => Err(EnvelopeError::TooLong),
            Err(_) => Err(EnvelopeError::Parse),
        }
    } else {
        serde_json::from_str::<&RawValue>(text)
            .map(Envelope::Single)
            .map_err(|_| EnvelopeError::Parse)
    }
}

/// Collects a batch's calls as raw text, failing (and setting `too_long`) at call `max + 1`.
struct BoundedSeqVisitor<'f> {
    max: usize,
    too_long: &'f mut bool,
}

impl<'de> Visitor<'de> for BoundedSeqVisitor<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC batch")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() >= self.max {
                *self.too_long = true;
                return Err(de::Error::custom("batch too long"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// The members of one call, each still unparsed; a member named twice, or one the
/// specification does not define, makes the call invalid.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCall<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) id: Option<&'a RawValue>,
}

/// A member that is present, `null` included (plain `Option` would read `null` as absent,
/// and `"id": null` is a call, not a notification).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Whether `raw` is a valid id: a string, a number or `null`.
pub(crate) fn is_valid_id(raw: &RawValue) -> bool {
    let text = raw.get();
    text == "null" || text.starts_with(['"', '-']) || text.starts_with(|c: char| c.is_ascii_digit())
}

/// Parses `text` into a value, refusing an object that names a key twice (at any depth).
pub(crate) fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictValue.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A [`Value`] seed that refuses duplicate keys.
#[derive(Clone, Copy)]
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_before_parsing_values() {
        assert!(matches!(split(b"[1, 2]", 2), Ok(Envelope::Batch(v)) if v.len() == 2));
        assert_eq!(split(b"[1, 2, 3]", 2).unwrap_err(), EnvelopeError::TooLong);
        // Too long is reported even when the rest is garbage: it is never read.
        assert_eq!(
            split(b"[1, 2, 3, !!", 2).unwrap_err(),
            EnvelopeError::TooLong
        );
        assert_eq!(split(b"[1, 2", 5).unwrap_err(), EnvelopeError::Parse);
        assert_eq!(split(b"[1] x", 5).unwrap_err(), EnvelopeError::Parse);
        assert_eq!(split(b"\xff", 5).unwrap_err(), EnvelopeError::Parse);
        assert!(matches!(split(b" {\"a\": 1} ", 5), Ok(Envelope::Single(_))));
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(parse_strict(r#"{"a": 1, "b": {"c": [1, {"d": 2}]}}"#).is_ok());
        assert!(parse_strict(r#"{"a": 1, "a": 2}"#).is_err());
        assert!(parse_strict(r#"{"a": [{"b": 1, "b": 1}]}"#).is_err());
        assert!(parse_strict(r#"{"a": 1} 2"#).is_err());
        let call: Result<RawCall<'_>, _> =
            serde_json::from_str(r#"{"jsonrpc": "2.0", "method": "a", "method": "b"}"#);
        assert!(call.is_err());
        let call: Result<RawCall<'_>, _> =
            serde_json::from_str(r#"{"jsonrpc": "2.0", "method": "a", "extra": 1}"#);
        assert!(call.is_err());
    }

    #[test]
    fn ids_keep_their_text() {
        let text = r#"{"jsonrpc": "2.0", "method": "m", "id": 18446744073709551616}"#;
        let call: RawCall<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(call.id.unwrap().get(), "18446744073709551616");
        let text = r#"{"jsonrpc": "2.0", "method": "m", "id": null}"#;
        let call: RawCall<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(call.id.map(RawValue::get), Some("null"));
        for (id, valid) in [
            ("1", true),
            ("-1.5e3", true),
            ("\"x\"", true),
            ("null", true),
        ] {
            let raw: &RawValue = serde_json::from_str(id).unwrap();
            assert_eq!(is_valid_id(raw), valid, "{id}");
        }
        for id in ["[1]", "{}", "true"] {
            let raw: &RawValue = serde_json::from_str(id).unwrap();
            assert!(!is_valid_id(raw), "{id}");
        }
    }
}
