//! Publish/subscribe topics for WebSocket clients.
//!
//! The embedding node registers topics on the [`SubscriptionHub`] (each backed by a
//! `tokio::sync::broadcast` channel) and publishes JSON values to them; WebSocket clients
//! subscribe with `stint_subscribe(topic, params?)` and receive
//! `{"jsonrpc":"2.0","method":"stint_subscription","params":{"subscription":id,"result":value}}`.
//!
//! **Publishers never block.** Publishing is a non-blocking broadcast send. A subscriber that
//! falls behind — its topic channel overflows (more than the topic's capacity unread) or the
//! connection's outbound queue is full — is disconnected (WebSocket close code 1008, reason
//! `slow consumer`), because silently skipping events would leave it with a wrong picture.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::{PublishError, RegisterError, RpcError};

/// Default capacity (in events) of each topic's broadcast channel.
pub const DEFAULT_TOPIC_CAPACITY: usize = 1024;

/// A per-subscription predicate: `true` means the event is sent to that subscriber.
pub type EventFilter = Box<dyn Fn(&Value) -> bool + Send + Sync>;

type FilterFactory = Arc<dyn Fn(Option<&Value>) -> Result<EventFilter, RpcError> + Send + Sync>;

/// Description of a topic: name, documentation and optional per-subscription filter.
pub struct TopicSpec {
    name: String,
    summary: String,
    params_schema: Option<Value>,
    result_schema: Value,
    capacity: usize,
    filter: Option<FilterFactory>,
}

impl std::fmt::Debug for TopicSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSpec")
            .field("name", &self.name)
            .field("summary", &self.summary)
            .field("capacity", &self.capacity)
            .field("filtered", &self.filter.is_some())
            .finish()
    }
}

impl TopicSpec {
    /// A topic named `name` (e.g. `newBatches`), capacity [`DEFAULT_TOPIC_CAPACITY`], no filter.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            summary: String::new(),
            params_schema: None,
            result_schema: Value::Object(Default::default()),
            capacity: DEFAULT_TOPIC_CAPACITY,
            filter: None,
        }
    }

    /// One-line description (shown in the OpenRPC document).
    #[must_use]
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// JSON Schema of the subscription params (documentation only).
    #[must_use]
    pub fn params_schema(mut self, schema: Value) -> Self {
        self.params_schema = Some(schema);
        self
    }

    /// JSON Schema of each published event (documentation only).
    #[must_use]
    pub fn result_schema(mut self, schema: Value) -> Self {
        self.result_schema = schema;
        self
    }

    /// Capacity of the broadcast channel: how many events a subscriber may lag behind before
    /// it is disconnected. Values below 1 are raised to 1.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Per-subscription filter. `factory` runs once per `stint_subscribe` with the
    /// subscription params (`None` when absent); it validates them (returning an
    /// [`RpcError`], typically [`RpcError::invalid_params`], rejects the subscription) and
    /// returns the predicate applied to every event. Without a filter, params are rejected.
    #[must_use]
    pub fn filter<F>(mut self, factory: F) -> Self
    where
        F: Fn(Option<&Value>) -> Result<EventFilter, RpcError> + Send + Sync + 'static,
    {
        self.filter = Some(Arc::new(factory));
        self
    }
}

pub(crate) struct Topic {
    pub(crate) name: String,
    pub(crate) summary: String,
    pub(crate) params_schema: Option<Value>,
    pub(crate) result_schema: Value,
    sender: broadcast::Sender<Arc<Value>>,
    filter: Option<FilterFactory>,
}

impl Topic {
    /// Validates `params` and opens a receiver; events published from now on are delivered.
    pub(crate) fn subscribe(
        &self,
        params: Option<&Value>,
    ) -> Result<(broadcast::Receiver<Arc<Value>>, Option<EventFilter>), RpcError> {
        let filter = match (&self.filter, params) {
            (Some(factory), p) => Some(factory(p)?),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(RpcError::invalid_params(format_args!(
                    "topic `{}` takes no params",
                    self.name
                )))
            }
        };
        Ok((self.sender.subscribe(), filter))
    }
}

/// A cheap, cloneable handle to publish to one topic.
#[derive(Clone)]
pub struct Publisher {
    topic: Arc<Topic>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.topic.name)
            .finish()
    }
}

impl Publisher {
    /// Publishes `event` to every current subscriber of the topic without blocking; returns
    /// how many subscriptions (before filtering) it was queued for.
    pub fn publish(&self, event: Value) -> usize {
        self.topic.sender.send(Arc::new(event)).unwrap_or(0)
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// Number of open subscriptions to the topic.
    pub fn subscriber_count(&self) -> usize {
        self.topic.sender.receiver_count()
    }
}

/// The registry of subscription topics; clone it freely (all clones share the topics).
#[derive(Clone, Default)]
pub struct SubscriptionHub {
    topics: Arc<RwLock<BTreeMap<String, Arc<Topic>>>>,
}

impl std::fmt::Debug for SubscriptionHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionHub")
            .field("topics", &self.topic_names())
            .finish()
    }
}

impl SubscriptionHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a topic and returns its publisher.
    pub fn register_topic(&self, spec: TopicSpec) -> Result<Publisher, RegisterError> {
        if spec.name.is_empty() {
            return Err(RegisterError::EmptyName);
        }
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        if topics.contains_key(&spec.name) {
            return Err(RegisterError::Duplicate(spec.name));
        }
        let (sender, _) = broadcast::channel(spec.capacity);
        let topic = Arc::new(Topic {
            name: spec.name.clone(),
            summary: spec.summary,
            params_schema: spec.params_schema,
            result_schema: spec.result_schema,
            sender,
            filter: spec.filter,
        });
        topics.insert(spec.name, topic.clone());
        Ok(Publisher { topic })
    }

    /// A publisher for an already registered topic.
    pub fn publisher(&self, topic: &str) -> Option<Publisher> {
        self.topic(topic).map(|topic| Publisher { topic })
    }

    /// Publishes `event` to `topic` (see [`Publisher::publish`]).
    pub fn publish(&self, topic: &str, event: Value) -> Result<usize, PublishError> {
        self.publisher(topic)
            .map(|p| p.publish(event))
            .ok_or_else(|| PublishError::UnknownTopic(topic.to_string()))
    }

    /// Names of the registered topics, sorted.
    pub fn topic_names(&self) -> Vec<String> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    pub(crate) fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn all_topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn publish_reaches_filtered_subscribers() {
        let hub = SubscriptionHub::new();
        let publisher = hub
            .register_topic(TopicSpec::new("txStatus").filter(|p| {
                let txid = p
                    .and_then(|p| p.get("txid"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("txid is required"))?
                    .to_string();
                Ok(Box::new(move |ev: &Value| ev["txid"] == txid.as_str()))
            }))
            .unwrap();
        assert_eq!(
            hub.register_topic(TopicSpec::new("txStatus")).unwrap_err(),
            RegisterError::Duplicate("txStatus".into())
        );
        let topic = hub.topic("txStatus").unwrap();
        assert!(topic.subscribe(None).is_err());
        let (mut rx, filter) = topic.subscribe(Some(&json!({"txid": "aa"}))).unwrap();
        let filter = filter.unwrap();
        assert_eq!(publisher.publish(json!({"txid": "bb"})), 1);
        assert_eq!(hub.publish("txStatus", json!({"txid": "aa"})), Ok(1));
        let first = rx.recv().await.unwrap();
        assert!(!filter(&first));
        let second = rx.recv().await.unwrap();
        assert!(filter(&second));
        assert_eq!(
            hub.publish("nope", json!(1)),
            Err(PublishError::UnknownTopic("nope".into()))
        );
    }

    #[test]
    fn unfiltered_topic_rejects_params() {
        let hub = SubscriptionHub::new();
        let p = hub.register_topic(TopicSpec::new("newBatches")).unwrap();
        assert_eq!(p.publish(json!(1)), 0, "no subscribers yet");
        let topic = hub.topic("newBatches").unwrap();
        let Err(err) = topic.subscribe(Some(&json!({}))) else {
            panic!("params accepted by an unfiltered topic");
        };
        assert_eq!(err.code, crate::codes::INVALID_PARAMS);
        assert!(topic.subscribe(None).is_ok());
        assert_eq!(hub.topic_names(), vec!["newBatches".to_string()]);
    }
}
