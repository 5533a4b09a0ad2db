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
///
/// Keys are kept packed in memory: each call unpacks the states it returns, so a processor
/// reads the keys it needs, once.
pub trait View<S> {
    fn get(&self, key: &str) -> Option<S>;
    /// Every key of this partition that starts with `prefix` (e.g. one store's items).
    fn scan<'a>(&'a self, prefix: &'a str) -> Box<dyn Iterator<Item = (&'a str, S)> + 'a>;
}

/// A service's decision logic, driven by the engine.
///
/// State lives per key (e.g. `store/SKU`) in the partition of the store. Two kinds of visit
/// change a key, and they never mix:
/// - [`Processor::apply`]: an event *about* this key (from [`Processor::keys`]);
/// - [`Processor::on_due`]: this key's own timer fell due (from [`Processor::due_keys`]), at
///   the time of whatever event of the store revealed it; the event itself is not passed, so
///   a timer visit cannot adopt another key's data.
///
/// Each event is applied to each key at most once: the engine remembers, per key, how far
/// every input topic was applied and the latest event ids, and replays after a crash skip what
/// a key already holds. Both calls must be deterministic (time comes from the events), so a
/// replay emits the same records with the same ids.
///
/// Whatever a call does with one record (an `Err`, a panic, outputs or state too big for the
/// broker), the engine dead-letters the record with the reason, keeps the key's previous state
/// and goes on with the next record: a processor cannot stop a service.
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
    /// When the event happened (UTC ms): the time timers are compared with.
    fn occurred_at_ms(&self, event: &Self::Event) -> i64;
    /// The store the event belongs to: it must equal the record key (the partitioner put the
    /// record in that key's partition), or the record is refused.
    fn store_id<'e>(&self, event: &'e Self::Event) -> &'e str;
    /// The state keys this event is about, in the order they are applied. Only keys whose
    /// state the event itself changes: timers are [`Processor::due_keys`].
    fn keys(&self, event: &Self::Event) -> Vec<String>;
    /// Applies the event to one of its keys and returns the records to publish. `Err` refuses
    /// the event for this key (dead letter; the engine restores the key's previous state).
    fn apply(
        &mut self,
        key: &str,
        state: &mut Self::State,
        event: &Self::Event,
        others: &dyn View<Self::State>,
    ) -> Result<Vec<Output>, Rejected>;

    /// Keys of the event's store whose timer has fallen due by this event (e.g. by its time),
    /// asked after the event's own keys were applied. The engine leaves out the event's own
    /// keys, whose `apply` sees the time anyway.
    fn due_keys(&self, _event: &Self::Event) -> Vec<String> {
        Vec::new()
    }
    /// The timer of `key` fell due; `now_ms` is the time of the event that revealed it.
    fn on_due(
        &mut self,
        _key: &str,
        _state: &mut Self::State,
        _now_ms: i64,
        _others: &dyn View<Self::State>,
    ) -> Result<Vec<Output>, Rejected> {
        Ok(Vec::new())
    }

    /// What this key's event must wait for before it can be applied (e.g. "SKU X is not in the
    /// catalogue yet"), or `None` to apply it now. A waiting event is held in the key's state,
    /// in arrival order with any later event of the key, and applied when this says `None`
    /// (checked on the key's next event and whenever [`Processor::tables_version`] changes);
    /// after [`Processor::hold_grace_ms`] of the store's event time it is dead-lettered with
    /// this reason.
    fn waiting(&self, _key: &str, _event: &Self::Event) -> Option<String> {
        None
    }
    /// A number that changes whenever something held events wait for may have arrived (the
    /// catalogue's version): the engine then retries them.
    fn tables_version(&self) -> u64 {
        0
    }
    /// How long (event time of the key's store) an event may be held before it is dead-lettered.
    fn hold_grace_ms(&self) -> i64 {
        crate::hold::HoldArgs::default().grace_ms()
    }

    /// Called for every key of a partition restored from the changelog, and for a key whose
    /// change was refused (with its previous state), so a processor can keep the indexes it
    /// keeps over the state in step.
    fn restored(&mut self, _key: &str, _state: &Self::State) {}
}
