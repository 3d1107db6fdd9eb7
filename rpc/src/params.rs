//! Method parameters: by-position (array) or by-name (object), parsed into typed values.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::RpcError;

/// The `params` member of a call, plus the param names the method declared in its
/// [`MethodSpec`](crate::MethodSpec).
///
/// The declared names let one handler accept both forms of the same call:
/// [`Params::parse`] turns a by-position array into a by-name object (for structs) and
/// [`Params::parse_positional`] turns a by-name object into an array (for tuples).
/// Every failure is a −32602 `Invalid params` error whose message says what is wrong.
#[derive(Debug, Clone, Default)]
pub struct Params {
    value: Option<Value>,
    names: Arc<[String]>,
}

impl Params {
    /// Params as received (`None` when the member was omitted or `null`), with the declared
    /// param names of the method.
    pub fn new(value: Option<Value>, names: Arc<[String]>) -> Self {
        Self { value, names }
    }

    /// Params without declared names (useful in unit tests of handlers).
    pub fn from_value(value: Value) -> Self {
        Self::new(Some(value), Arc::from(Vec::new()))
    }

    /// The raw params value, if any was sent.
    pub fn raw(&self) -> Option<&Value> {
        self.value.as_ref()
    }

    /// `true` when no params were sent, or an empty array / object.
    pub fn is_empty(&self) -> bool {
        match &self.value {
            None => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            Some(_) => false,
        }
    }

    /// Checks the params against the declared names: no more by-position params than
    /// declared, no by-name param that is not declared. The dispatcher runs this before every
    /// handler, so a method never silently ignores a param it does not take.
    pub fn check_declared(&self) -> Result<(), RpcError> {
        match &self.value {
            Some(Value::Array(items)) if items.len() > self.names.len() => {
                Err(too_many(self.names.len(), items.len()))
            }
            Some(Value::Object(map)) => {
                match map.keys().find(|k| !self.names.iter().any(|n| n == *k)) {
                    Some(unknown) if self.names.is_empty() => Err(RpcError::invalid_params(
                        format_args!("unknown param `{unknown}`: this method takes no params"),
                    )),
                    Some(unknown) => Err(RpcError::invalid_params(format_args!(
                        "unknown param `{unknown}` (expected {})",
                        self.names.join(", ")
                    ))),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Parses the params into `T`, usually a struct with one field per param
    /// (`#[serde(rename_all = "camelCase")]` fits the JSON conventions).
    ///
    /// - by-name object: deserialized as is;
    /// - by-position array: zipped with the declared param names into an object (more
    ///   elements than declared names is an error; missing trailing ones are simply absent,
    ///   so `Option` fields become `None`); without declared names the array is
    ///   deserialized as a sequence;
    /// - omitted: deserialized from `{}`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, RpcError> {
        let value = match &self.value {
            None => Value::Object(Map::new()),
            Some(Value::Array(items)) if !self.names.is_empty() => {
                if items.len() > self.names.len() {
                    return Err(too_many(self.names.len(), items.len()));
                }
                let map: Map<String, Value> = self
                    .names
                    .iter()
                    .cloned()
                    .zip(items.iter().cloned())
                    .collect();
                Value::Object(map)
            }
            Some(other) => other.clone(),
        };
        serde_json::from_value(value).map_err(RpcError::invalid_params)
    }

    /// Parses the params into `T`, usually a tuple in declaration order.
    ///
    /// - by-position array: padded with `null` up to the number of declared params (so
    ///   trailing `Option`s may be omitted), then deserialized as a sequence;
    /// - by-name object: reordered into an array by the declared names (unknown names are
    ///   an error, missing ones become `null`);
    /// - omitted: treated like an empty array.
    pub fn parse_positional<T: DeserializeOwned>(&self) -> Result<T, RpcError> {
        let items = match &self.value {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                if !self.names.is_empty() && items.len() > self.names.len() {
                    return Err(too_many(self.names.len(), items.len()));
                }
                items.clone()
            }
            Some(Value::Object(map)) => {
                if let Some(unknown) = map.keys().find(|k| !self.names.iter().any(|n| n == *k)) {
                    return Err(RpcError::invalid_params(format_args!(
                        "unknown param `{unknown}`"
                    )));
                }
                self.names
                    .iter()
                    .map(|n| map.get(n).cloned().unwrap_or(Value::Null))
                    .collect()
            }
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "params must be an array or an object",
                ))
            }
        };
        let mut items = items;
        while items.len() < self.names.len() {
            items.push(Value::Null);
        }
        serde_json::from_value(Value::Array(items)).map_err(RpcError::invalid_params)
    }
}

fn too_many(expected: usize, got: usize) -> RpcError {
    RpcError::invalid_params(format_args!(
        "expected at most {expected} params, got {got}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sub {
        minuend: i64,
        subtrahend: i64,
        note: Option<String>,
    }

    fn names(n: &[&str]) -> Arc<[String]> {
        n.iter().map(|s| s.to_string()).collect::<Vec<_>>().into()
    }

    #[test]
    fn struct_from_position_and_name() {
        let n = names(&["minuend", "subtrahend", "note"]);
        let by_pos = Params::new(Some(json!([42, 23])), n.clone());
        let by_name = Params::new(Some(json!({"subtrahend": 23, "minuend": 42})), n);
        let want = Sub {
            minuend: 42,
            subtrahend: 23,
            note: None,
        };
        assert_eq!(by_pos.parse::<Sub>().unwrap(), want);
        assert_eq!(by_name.parse::<Sub>().unwrap(), want);
    }

    #[test]
    fn tuple_from_position_and_name() {
        let n = names(&["topic", "params"]);
        let by_pos = Params::new(Some(json!(["txStatus"])), n.clone());
        let by_name = Params::new(Some(json!({"topic": "txStatus", "params": {"a": 1}})), n);
        assert_eq!(
            by_pos
                .parse_positional::<(String, Option<Value>)>()
                .unwrap(),
            ("txStatus".to_string(), None)
        );
        assert_eq!(
            by_name
                .parse_positional::<(String, Option<Value>)>()
                .unwrap(),
            ("txStatus".to_string(), Some(json!({"a": 1})))
        );
    }

    #[test]
    fn readable_errors() {
        let n = names(&["minuend", "subtrahend"]);
        let e = Params::new(Some(json!({"minuend": 1})), n.clone())
            .parse::<Sub>()
            .unwrap_err();
        assert_eq!(e.code, crate::codes::INVALID_PARAMS);
        assert!(
            e.message.contains("missing field `subtrahend`"),
            "{}",
            e.message
        );

        let e = Params::new(Some(json!([1, 2, 3])), n.clone())
            .parse::<Sub>()
            .unwrap_err();
        assert_eq!(
            e.message,
            "Invalid params: expected at most 2 params, got 3"
        );

        let e = Params::new(Some(json!({"bogus": 1})), n)
            .parse_positional::<(i64, i64)>()
            .unwrap_err();
        assert_eq!(e.message, "Invalid params: unknown param `bogus`");
    }

    #[test]
    fn sequence_without_names() {
        let p = Params::from_value(json!([1, 2, 4]));
        assert_eq!(p.parse::<Vec<i64>>().unwrap(), vec![1, 2, 4]);
        assert!(!p.is_empty());
        assert!(Params::default().is_empty());
    }
}
