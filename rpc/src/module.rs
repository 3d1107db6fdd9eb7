//! The method table: registration of methods with their documentation and handlers.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use serde_json::{json, Value};

use crate::error::{RegisterError, RpcError};
use crate::params::Params;
use crate::subscription::SubscriptionHub;

/// Name of the built-in OpenRPC discovery method.
pub const DISCOVER_METHOD: &str = "rpc.discover";
/// Name of the built-in subscribe method (WebSocket only).
pub const SUBSCRIBE_METHOD: &str = "stint_subscribe";
/// Name of the built-in unsubscribe method (WebSocket only).
pub const UNSUBSCRIBE_METHOD: &str = "stint_unsubscribe";
/// Method name of the notifications that carry subscription events.
pub const SUBSCRIPTION_NOTIFICATION: &str = "stint_subscription";

/// A boxed, sendable future, as stored in the method table.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The result every method handler produces.
pub type MethodResult = Result<Value, RpcError>;

pub(crate) type ErasedHandler = Arc<dyn Fn(Params) -> BoxFuture<MethodResult> + Send + Sync>;

/// What `GET /health` reports: HTTP 200 with `body` when `healthy`, else 503 with `body`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthStatus {
    /// Whether the node considers itself healthy.
    pub healthy: bool,
    /// JSON body of the response.
    pub body: Value,
}

impl HealthStatus {
    /// A healthy status with the given body.
    pub fn healthy(body: Value) -> Self {
        Self {
            healthy: true,
            body,
        }
    }

    /// An unhealthy status (HTTP 503) with the given body.
    pub fn unhealthy(body: Value) -> Self {
        Self {
            healthy: false,
            body,
        }
    }
}

pub(crate) type HealthFn = Arc<dyn Fn() -> HealthStatus + Send + Sync>;

/// Documentation of one param (an OpenRPC Content Descriptor).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Param name; by-position arrays are mapped to these names in declaration order.
    pub name: String,
    /// JSON Schema of the value.
    pub schema: Value,
    /// Whether the param must be present.
    pub required: bool,
    /// Optional longer description.
    pub description: Option<String>,
}

/// Documentation of an application error a method may return.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorSpec {
    /// The error code.
    pub code: i64,
    /// What it means.
    pub message: String,
}

/// A method's name, flags and documentation; build it with the chained setters.
///
/// ```
/// use serde_json::json;
/// use stint_rpc::MethodSpec;
///
/// let spec = MethodSpec::new("stint_getAccount")
///     .summary("Balance and nonce of an account")
///     .param("address", json!({"type": "string"}))
///     .optional_param("options", json!({"type": "object"}))
///     .result("account", json!({"type": "object"}))
///     .error(1001, "unknown account");
/// assert_eq!(spec.name(), "stint_getAccount");
/// assert!(!spec.is_admin());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSpec {
    name: String,
    summary: String,
    description: Option<String>,
    params: Vec<ParamSpec>,
    result_name: String,
    result_schema: Value,
    errors: Vec<ErrorSpec>,
    admin: bool,
    variadic: bool,
}

impl MethodSpec {
    /// A public method named `name` with no params and an unconstrained result.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            summary: String::new(),
            description: None,
            params: Vec::new(),
            result_name: "result".to_string(),
            result_schema: json!({}),
            errors: Vec::new(),
            admin: false,
            variadic: false,
        }
    }

    /// One-line summary.
    #[must_use]
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// Longer description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Appends a required param.
    #[must_use]
    pub fn param(self, name: impl Into<String>, schema: Value) -> Self {
        self.push_param(name.into(), schema, true, None)
    }

    /// Appends an optional param (must come after all required ones).
    #[must_use]
    pub fn optional_param(self, name: impl Into<String>, schema: Value) -> Self {
        self.push_param(name.into(), schema, false, None)
    }

    /// Appends a fully described param.
    #[must_use]
    pub fn param_spec(mut self, spec: ParamSpec) -> Self {
        self.params.push(spec);
        self
    }

    fn push_param(
        mut self,
        name: String,
        schema: Value,
        required: bool,
        description: Option<String>,
    ) -> Self {
        self.params.push(ParamSpec {
            name,
            schema,
            required,
            description,
        });
        self
    }

    /// Names and describes the result.
    #[must_use]
    pub fn result(mut self, name: impl Into<String>, schema: Value) -> Self {
        self.result_name = name.into();
        self.result_schema = schema;
        self
    }

    /// Documents an application error the method may return.
    #[must_use]
    pub fn error(mut self, code: i64, message: impl Into<String>) -> Self {
        self.errors.push(ErrorSpec {
            code,
            message: message.into(),
        });
        self
    }

    /// Marks the method admin-only: callers must send `Authorization: Bearer <token>`
    /// matching [`RpcServerConfig::admin_token`](crate::RpcServerConfig::admin_token).
    #[must_use]
    pub fn admin(mut self) -> Self {
        self.admin = true;
        self
    }

    /// Takes any number of by-position params, beyond the declared ones. Without this a call
    /// with a param the method does not declare (one too many by position, or an unknown name)
    /// is refused with −32602 before the handler runs.
    pub fn variadic(mut self) -> Self {
        self.variadic = true;
        self
    }

    /// Whether the method takes params beyond the declared ones ([`MethodSpec::variadic`]).
    pub fn is_variadic(&self) -> bool {
        self.variadic
    }

    /// The method name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the method is admin-only.
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// The declared params, in order.
    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    /// The OpenRPC Method Object for this method.
    pub fn to_openrpc(&self) -> Value {
        let params: Vec<Value> = self
            .params
            .iter()
            .map(|p| {
                let mut o = json!({"name": p.name, "schema": p.schema, "required": p.required});
                if let Some(d) = &p.description {
                    o["description"] = json!(d);
                }
                o
            })
            .collect();
        let mut m = json!({
            "name": self.name,
            "params": params,
            "result": {"name": self.result_name, "schema": self.result_schema},
            "paramStructure": "either",
        });
        if !self.summary.is_empty() {
            m["summary"] = json!(self.summary);
        }
        if let Some(d) = &self.description {
            m["description"] = json!(d);
        }
        let mut errors: Vec<Value> = self
            .errors
            .iter()
            .map(|e| json!({"code": e.code, "message": e.message}))
            .collect();
        if self.admin {
            errors.push(json!({
                "code": crate::codes::UNAUTHORIZED,
                "message": "missing or wrong admin bearer token",
            }));
            m["x-admin"] = json!(true);
        }
        if !errors.is_empty() {
            m["errors"] = Value::Array(errors);
        }
        m
    }

    fn validate(&self) -> Result<(), RegisterError> {
        if self.name.is_empty() {
            return Err(RegisterError::EmptyName);
        }
        let mut seen_optional = false;
        for (i, p) in self.params.iter().enumerate() {
            if self.params[..i].iter().any(|q| q.name == p.name) {
                return Err(RegisterError::DuplicateParam {
                    method: self.name.clone(),
                    param: p.name.clone(),
                });
            }
            if p.required && seen_optional {
                return Err(RegisterError::RequiredAfterOptional {
                    method: self.name.clone(),
                    param: p.name.clone(),
                });
            }
            seen_optional |= !p.required;
        }
        Ok(())
    }
}

/// What executes a method.
#[derive(Clone)]
pub(crate) enum MethodKind {
    Handler(ErasedHandler),
    Discover,
    Subscribe,
    Unsubscribe,
}

#[derive(Clone)]
pub(crate) struct MethodEntry {
    pub(crate) spec: MethodSpec,
    pub(crate) names: Arc<[String]>,
    pub(crate) kind: MethodKind,
}

impl MethodEntry {
    /// `stint_subscribe` or `stint_unsubscribe`.
    pub(crate) fn is_subscription(&self) -> bool {
        matches!(self.kind, MethodKind::Subscribe | MethodKind::Unsubscribe)
    }
}

/// API title and version shown in the OpenRPC `info` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiInfo {
    /// API title.
    pub title: String,
    /// API version.
    pub version: String,
}

impl Default for ApiInfo {
    fn default() -> Self {
        Self {
            title: "Stint JSON-RPC".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The method table of a server: every method the server dispatches, with the
/// documentation that `rpc.discover` publishes, plus the subscription hub, the `/health`
/// hook and the node's metrics registry that `/metrics` serves. `Ctx` is the node's shared
/// state handed to handlers.
///
/// The built-in methods `rpc.discover`, `stint_subscribe` and `stint_unsubscribe` are in
/// the table from the start.
pub struct RpcModule<Ctx> {
    ctx: Arc<Ctx>,
    pub(crate) methods: BTreeMap<String, MethodEntry>,
    pub(crate) hub: SubscriptionHub,
    pub(crate) health: Option<HealthFn>,
    pub(crate) registry: Registry,
    pub(crate) info: ApiInfo,
}

impl<Ctx> std::fmt::Debug for RpcModule<Ctx> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcModule")
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .field("hub", &self.hub)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<Ctx: Send + Sync + 'static> RpcModule<Ctx> {
    /// A table holding only the built-in methods, with `ctx` for the handlers.
    pub fn new(ctx: Ctx) -> Self {
        Self::from_arc(Arc::new(ctx))
    }

    /// Like [`RpcModule::new`] with an already shared context.
    pub fn from_arc(ctx: Arc<Ctx>) -> Self {
        let mut methods = BTreeMap::new();
        for (spec, kind) in builtin_methods() {
            let names = param_names(&spec);
            methods.insert(spec.name.clone(), MethodEntry { spec, names, kind });
        }
        Self {
            ctx,
            methods,
            hub: SubscriptionHub::new(),
            health: None,
            registry: Registry::default(),
            info: ApiInfo::default(),
        }
    }

    /// Registers a method. The handler receives the context and the call's [`Params`] and
    /// returns the result value or an [`RpcError`].
    pub fn register<F, Fut>(&mut self, spec: MethodSpec, handler: F) -> Result<(), RegisterError>
    where
        F: Fn(Arc<Ctx>, Params) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = MethodResult> + Send + 'static,
    {
        spec.validate()?;
        if spec.name.starts_with("rpc.") {
            return Err(RegisterError::Reserved(spec.name));
        }
        if self.methods.contains_key(&spec.name) {
            return Err(RegisterError::Duplicate(spec.name));
        }
        let ctx = self.ctx.clone();
        let erased: ErasedHandler = Arc::new(move |params: Params| {
            Box::pin(handler(ctx.clone(), params)) as BoxFuture<MethodResult>
        });
        let names = param_names(&spec);
        self.methods.insert(
            spec.name.clone(),
            MethodEntry {
                spec,
                names,
                kind: MethodKind::Handler(erased),
            },
        );
        Ok(())
    }

    /// The shared context.
    pub fn context(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// The subscription hub; register topics on it and keep clones to publish.
    pub fn subscriptions(&self) -> &SubscriptionHub {
        &self.hub
    }

    /// Sets what `GET /health` reports (default: 200 `{"status":"ok"}`).
    pub fn set_health<F>(&mut self, f: F)
    where
        F: Fn() -> HealthStatus + Send + Sync + 'static,
    {
        self.health = Some(Arc::new(f));
    }

    /// The node's metrics registry (empty at first), which `GET /metrics` serves: register the
    /// node's metrics and collectors here. [`serve`](crate::serve) adds the server's own
    /// [`RpcMetrics`](crate::RpcMetrics) to it, so a node has one registry with both; each
    /// scrape encodes it in the Prometheus text format (version 0.0.4), which runs the
    /// registered [`Collector`](prometheus_client::collector::Collector)s (values read from
    /// live state at scrape time).
    ///
    /// ```
    /// use prometheus_client::metrics::counter::Counter;
    /// use stint_rpc::RpcModule;
    ///
    /// let mut module = RpcModule::new(());
    /// let blocks: Counter = Counter::default();
    /// module
    ///     .metrics_registry_mut()
    ///     .register("node_blocks", "Blocks processed", blocks.clone());
    /// blocks.inc(); // served as `node_blocks_total 1`
    /// ```
    pub fn metrics_registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Sets the OpenRPC `info` title and version.
    pub fn set_info(&mut self, title: impl Into<String>, version: impl Into<String>) {
        self.info = ApiInfo {
            title: title.into(),
            version: version.into(),
        };
    }

    /// Names of every method the server will dispatch, built-ins included, sorted.
    pub fn method_names(&self) -> Vec<&str> {
        self.methods.keys().map(String::as_str).collect()
    }

    /// The spec of a registered method.
    pub fn method(&self, name: &str) -> Option<&MethodSpec> {
        self.methods.get(name).map(|e| &e.spec)
    }

    /// The OpenRPC document `rpc.discover` returns, generated from this table.
    pub fn openrpc(&self) -> Value {
        crate::openrpc::document(&self.info, &self.methods, &self.hub)
    }
}

fn param_names(spec: &MethodSpec) -> Arc<[String]> {
    spec.params
        .iter()
        .map(|p| p.name.clone())
        .collect::<Vec<_>>()
        .into()
}

fn builtin_methods() -> Vec<(MethodSpec, MethodKind)> {
    vec![
        (
            MethodSpec::new(DISCOVER_METHOD)
                .summary("Returns the OpenRPC document describing every method of this server")
                .result(
                    "openrpcDocument",
                    json!({"$ref": "https://meta.open-rpc.org/"}),
                ),
            MethodKind::Discover,
        ),
        (
            MethodSpec::new(SUBSCRIBE_METHOD)
                .summary("Subscribes to a topic (WebSocket only); events arrive as stint_subscription notifications")
                .param("topic", json!({"type": "string"}))
                .optional_param("params", json!({}))
                .result("subscription", json!({"type": "string"}))
                .error(crate::codes::WEBSOCKET_REQUIRED, "subscriptions need the WebSocket endpoint /ws")
                .error(crate::codes::TOO_MANY_SUBSCRIPTIONS, "too many subscriptions on this connection"),
            MethodKind::Subscribe,
        ),
        (
            MethodSpec::new(UNSUBSCRIBE_METHOD)
                .summary("Cancels a subscription of this connection; false if it did not exist")
                .param("subscription", json!({"type": "string"}))
                .result("removed", json!({"type": "boolean"}))
                .error(crate::codes::WEBSOCKET_REQUIRED, "subscriptions need the WebSocket endpoint /ws"),
            MethodKind::Unsubscribe,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        let mut m = RpcModule::new(());
        let h = |_: Arc<()>, _: Params| async { Ok(Value::Null) };
        m.register(MethodSpec::new("a"), h).unwrap();
        assert_eq!(
            m.register(MethodSpec::new("a"), h),
            Err(RegisterError::Duplicate("a".into()))
        );
        assert_eq!(
            m.register(MethodSpec::new(SUBSCRIBE_METHOD), h),
            Err(RegisterError::Duplicate(SUBSCRIBE_METHOD.into()))
        );
        assert_eq!(
            m.register(MethodSpec::new("rpc.x"), h),
            Err(RegisterError::Reserved("rpc.x".into()))
        );
        assert_eq!(
            m.register(MethodSpec::new(""), h),
            Err(RegisterError::EmptyName)
        );
        assert!(matches!(
            m.register(
                MethodSpec::new("b")
                    .optional_param("x", json!({}))
                    .param("y", json!({})),
                h
            ),
            Err(RegisterError::RequiredAfterOptional { .. })
        ));
        assert!(matches!(
            m.register(
                MethodSpec::new("c")
                    .param("x", json!({}))
                    .param("x", json!({})),
                h
            ),
            Err(RegisterError::DuplicateParam { .. })
        ));
        assert_eq!(
            m.method_names(),
            vec!["a", DISCOVER_METHOD, SUBSCRIBE_METHOD, UNSUBSCRIBE_METHOD]
        );
    }
}
