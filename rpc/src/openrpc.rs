//! OpenRPC 1.2.6 document generation from the method table.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::module::{ApiInfo, MethodEntry, SUBSCRIBE_METHOD, SUBSCRIPTION_NOTIFICATION};
use crate::subscription::SubscriptionHub;

/// The OpenRPC specification version of the generated documents.
pub const OPENRPC_VERSION: &str = "1.2.6";

/// Builds the document from exactly the entries the dispatcher resolves methods from, so
/// the documentation cannot drift from what is served.
pub(crate) fn document(
    info: &ApiInfo,
    methods: &BTreeMap<String, MethodEntry>,
    hub: &SubscriptionHub,
) -> Value {
    let topics = hub.all_topics();
    let methods: Vec<Value> = methods
        .values()
        // Without topics there is nothing to subscribe to: the methods are not served (and an
        // empty topic `enum` would make the document invalid).
        .filter(|entry| !topics.is_empty() || !entry.is_subscription())
        .map(|entry| {
            let mut m = entry.spec.to_openrpc();
            if entry.spec.name() == SUBSCRIBE_METHOD {
                let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
                if let Some(p) = m["params"].get_mut(0) {
                    p["schema"] = json!({"type": "string", "enum": names});
                }
                let described: Vec<Value> = topics
                    .iter()
                    .map(|t| {
                        let mut o = json!({
                            "name": t.name,
                            "summary": t.summary,
                            "result": t.result_schema,
                        });
                        if let Some(p) = &t.params_schema {
                            o["params"] = p.clone();
                        }
                        o
                    })
                    .collect();
                m["x-topics"] = Value::Array(described);
                m["x-notification"] = json!({
                    "method": SUBSCRIPTION_NOTIFICATION,
                    "params": {"subscription": "<id>", "result": "<event>"},
                });
            }
            m
        })
        .collect();
    json!({
        "openrpc": OPENRPC_VERSION,
        "info": {"title": info.title, "version": info.version},
        "methods": methods,
    })
}
