//! What a service supplies to the engine: pure decisions, no I/O.

/// Why an input record was refused; it goes to the dead-letter topic with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl<T: std::fmt::Display> From<T> for Rejected {
    fn from(v: T) -> Self {
        Rejected(v.to_string())
    }
}

/// A record to publish. `topic` is a catalogue base name (the engine adds the prefix).
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub topic: &'static str,
    /// Record key (store id for store-keyed topics).
    pub key: String,
    pub payload: Vec<u8>,
}

impl Output {
    pub fn new(topic: &'static str, key: impl Into<String>, msg: &impl prost::Message) -> Self {
        Self {
            topic,
            key: key.into(),
            payload: msg.encode_to_vec(),
        }
    }
}

/// Read access to other keys of the same partition while one key is being changed.
pub trait View<S> {
    fn get(&self, key: &str) -> Option<&S>;
    /// Every key of this partition that starts with `prefix` (e.g. one store's items).
    fn scan<'a>(&'a self, prefix: &'a str) -> Box<dyn Iterator<Item = (&'a str, &'a S)> + 'a>;
}

/// A service's decision logic, driven by the engine.
///
/// State lives per key (e.g. `store/SKU`) in the partition of the store. Each event is
/// applied to each key it touches at most once: the engine remembers, per key, how far
/// every input topic was applied and the latest event ids, and replays after a crash
/// skip what a key already holds. `apply` must be deterministic (time comes from the
/// event), so a replay that reaches a key again emits the same records with the same ids.
pub trait Processor: Send + 'static {
    /// A decoded, validated input event.
    type Event: Send;
    /// The state of one key, stored in the changelog.
    type State: prost::Message + Default + Clone + Send;

    /// Service name: consumer group, dead-letter header, client id.
    fn name(&self) -> &'static str;
    /// Catalogue base names of the group-consumed input topics.
    fn inputs(&self) -> Vec<&'static str>;
    /// Catalogue base names of the changelog and the dead-letter topic.
    fn changelog(&self) -> &'static str;
    fn dead_letter(&self) -> &'static str;

    /// Parses one record of an input topic. An `Err` sends it to the dead-letter topic.
    fn decode(&self, topic: &str, payload: &[u8]) -> Result<Self::Event, Rejected>;
    /// The event's id, for dropping duplicates.
    fn event_id<'e>(&self, event: &'e Self::Event) -> &'e str;
    /// The state keys this event changes, in the order they are applied.
    fn keys(&self, event: &Self::Event) -> Vec<String>;
    /// Applies the event to one key and returns the records to publish. `Err` refuses the
    /// event for this key (it goes to the dead-letter topic); the state must then be unchanged.
    fn apply(
        &mut self,
        key: &str,
        state: &mut Self::State,
        event: &Self::Event,
        others: &dyn View<Self::State>,
    ) -> Result<Vec<Output>, Rejected>;

    /// Called for every key of a partition restored from the changelog, so a processor can
    /// rebuild indexes it keeps over the state.
    fn restored(&mut self, _key: &str, _state: &Self::State) {}
}
