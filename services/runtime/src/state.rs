//! Per-partition keyed state with the bookkeeping that makes replays idempotent.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use prost::Message;
use shelfguard_events::state::{Applied, Entry, Held};

use crate::processor::View;

use shelfguard_events::limits::MAX_DERIVED_ID_BYTES;

/// How many event ids each key remembers for de-duplication.
pub const RECENT_IDS: usize = shelfguard_events::limits::RECENT_EVENT_IDS;

/// The 64-bit FNV-1a hash of an event id: what a key remembers of it (8 bytes, not the id).
/// Stable across versions and processes (it is in the changelog). Two different ids of one key
/// within its last [`RECENT_IDS`] events collide with a chance of about 2^-61.
pub fn id_hash(event_id: &str) -> u64 {
    event_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Topic names shared by every key that names them (a handful of input topics), instead of a
/// string per key.
fn intern(topic: &str) -> Arc<str> {
    static NAMES: OnceLock<Mutex<HashMap<String, Arc<str>>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.get(topic) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(topic);
    // Input topics are few; anything past this is not kept for sharing (still correct).
    if names.len() < 1024 {
        names.insert(topic.to_owned(), n.clone());
    }
    n
}

/// One key's state and how far each input has been applied to it.
#[derive(Debug, Clone, Default)]
pub struct Slot<S> {
    pub state: S,
    /// (input topic base name, last applied offset) in this partition.
    pub applied: Vec<(Arc<str>, i64)>,
    /// Hashes ([`id_hash`]) of the latest event ids applied, newest last, at most [`RECENT_IDS`].
    pub recent: Vec<u64>,
    /// Records waiting to be applied to this key, in arrival order (see
    /// [`crate::Processor::waiting`]), at most [`crate::step::MAX_HELD`].
    pub held: Vec<Held>,
}

/// What the engine should do with an event for a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Apply,
    /// Already applied at this offset (a redelivery after a crash or rebalance).
    Redelivered,
    /// Same event id seen at another offset (an upstream duplicate).
    Duplicate,
}

impl<S: Message + Default> Slot<S> {
    pub fn admit(&self, topic: &str, offset: i64, event_id: &str) -> Admission {
        if self
            .applied
            .iter()
            .any(|(t, o)| &**t == topic && offset <= *o)
        {
            Admission::Redelivered
        } else if !event_id.is_empty() && self.recent.contains(&id_hash(event_id)) {
            Admission::Duplicate
        } else {
            Admission::Apply
        }
    }

    /// Records that the event at `offset` of `topic` has been applied (or skipped as a duplicate).
    pub fn mark(&mut self, topic: &str, offset: i64, event_id: &str) {
        match self.applied.iter_mut().find(|(t, _)| &**t == topic) {
            Some((_, o)) => *o = (*o).max(offset),
            None => self.applied.push((intern(topic), offset)),
        }
        // Validation keeps ids short; an id past the limit is still never kept (as before the
        // ids were hashed: the same ids are recognised).
        let h = id_hash(event_id);
        if !event_id.is_empty()
            && event_id.len() <= MAX_DERIVED_ID_BYTES
            && !self.recent.contains(&h)
        {
            if self.recent.len() == RECENT_IDS {
                self.recent.remove(0);
            }
            self.recent.push(h);
        }
    }

    /// The size of [`Slot::encode`]'s result, without encoding.
    pub fn encoded_len(&self) -> usize {
        use prost::encoding::{encoded_len_varint, key_len};
        // A length-delimited field (proto3 leaves out an empty singular one).
        let field = |n: usize| key_len(1) + encoded_len_varint(n as u64) + n;
        let state = self.state.encoded_len();
        let offset = |o: i64| {
            if o == 0 {
                0
            } else {
                key_len(2) + encoded_len_varint(o as u64)
            }
        };
        (if state == 0 { 0 } else { field(state) })
            + self
                .applied
                .iter()
                .map(|(t, o)| {
                    let topic = if t.is_empty() { 0 } else { field(t.len()) };
                    field(topic + offset(*o))
                })
                .sum::<usize>()
            + if self.recent.is_empty() {
                0
            } else {
                let n = self.recent.len() * 8;
                key_len(5) + encoded_len_varint(n as u64) + n
            }
            + self
                .held
                .iter()
                .map(|h| field(h.encoded_len()))
                .sum::<usize>()
    }

    pub fn encode(&self) -> Vec<u8> {
        Entry {
            state: self.state.encode_to_vec(),
            applied: self
                .applied
                .iter()
                .map(|(t, o)| Applied {
                    topic: t.to_string(),
                    offset: *o,
                })
                .collect(),
            recent_event_ids: Vec::new(),
            held: self.held.clone(),
            recent_event_hashes: self.recent.clone(),
        }
        .encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        let e = Entry::decode(bytes)?;
        Ok(Self {
            state: S::decode(e.state.as_slice())?,
            applied: e
                .applied
                .into_iter()
                .map(|a| (intern(&a.topic), a.offset))
                .collect(),
            recent: {
                // Records of earlier versions carry the ids themselves.
                let mut r: Vec<u64> = e.recent_event_ids.iter().map(|i| id_hash(i)).collect();
                r.extend(e.recent_event_hashes);
                let excess = r.len().saturating_sub(RECENT_IDS);
                r.drain(..excess);
                r
            },
            held: e.held,
        })
    }
}

/// The keyed state of one partition. Ordered, so one store's keys can be scanned.
#[derive(Debug)]
pub struct PartitionState<S> {
    pub slots: BTreeMap<String, Slot<S>>,
    /// Keys that hold records, with the event time of their oldest one: the grace period is
    /// checked on the store's events and held records are retried without scanning every key.
    pub held: BTreeMap<String, i64>,
}

impl<S> Default for PartitionState<S> {
    fn default() -> Self {
        Self {
            slots: BTreeMap::new(),
            held: BTreeMap::new(),
        }
    }
}

impl<S> PartitionState<S> {
    /// Puts a key's slot back, keeping the index of held records in step.
    pub fn put(&mut self, key: &str, slot: Slot<S>) {
        match slot.held.iter().map(|h| h.occurred_at_ms).min() {
            Some(oldest) => {
                self.held.insert(key.to_owned(), oldest);
            }
            None => {
                self.held.remove(key);
            }
        }
        self.slots.insert(key.to_owned(), slot);
    }

    /// Rebuilds the index of held records (after a restore).
    pub fn reindex(&mut self) {
        self.held = self
            .slots
            .iter()
            .filter_map(|(k, s)| Some((k.clone(), s.held.iter().map(|h| h.occurred_at_ms).min()?)))
            .collect();
    }

    /// How many records this partition holds.
    pub fn held_records(&self) -> usize {
        self.held
            .keys()
            .filter_map(|k| self.slots.get(k))
            .map(|s| s.held.len())
            .sum()
    }
}

impl<S> View<S> for PartitionState<S> {
    fn get(&self, key: &str) -> Option<&S> {
        self.slots.get(key).map(|s| &s.state)
    }
    fn scan<'a>(&'a self, prefix: &'a str) -> Box<dyn Iterator<Item = (&'a str, &'a S)> + 'a> {
        Box::new(
            self.slots
                .range(prefix.to_owned()..)
                .take_while(move |(k, _)| k.starts_with(prefix))
                .map(|(k, s)| (k.as_str(), &s.state)),
        )
    }
}

/// State of all partitions this instance owns.
pub type Partitions<S> = HashMap<i32, PartitionState<S>>;

#[cfg(test)]
mod tests {
    use super::*;
    use shelfguard_events::state::InventoryItem;

    #[test]
    fn redelivery_and_duplicates_are_recognised() {
        let mut s: Slot<InventoryItem> = Slot::default();
        assert_eq!(s.admit("t", 5, "e1"), Admission::Apply);
        s.mark("t", 5, "e1");
        assert_eq!(s.admit("t", 5, "e1"), Admission::Redelivered);
        assert_eq!(s.admit("t", 4, "e0"), Admission::Redelivered);
        assert_eq!(s.admit("t", 9, "e1"), Admission::Duplicate);
        assert_eq!(s.admit("u", 1, "e2"), Admission::Apply);
        assert_eq!(s.admit("t", 6, "e2"), Admission::Apply);
    }

    #[test]
    fn recent_ids_are_bounded_and_state_round_trips() {
        let mut s: Slot<InventoryItem> = Slot::default();
        for i in 0..20 {
            s.mark("t", i, &format!("e{i}"));
        }
        assert_eq!(s.recent.len(), RECENT_IDS);
        assert_eq!(*s.recent.last().unwrap(), id_hash("e19"));
        s.state.on_hand = 7;
        assert_eq!(s.encoded_len(), s.encode().len());
        s.held.push(Held {
            topic: "t".into(),
            offset: 300,
            key: b"S".to_vec(),
            payload: vec![7; 200],
            occurred_at_ms: 1_700_000_000_000,
            waiting_for: "SKU A is not in the catalogue yet".into(),
        });
        assert_eq!(s.encoded_len(), s.encode().len());
        let back = Slot::<InventoryItem>::decode(&s.encode()).unwrap();
        assert_eq!(back.state.on_hand, 7);
        assert_eq!(back.applied, vec![(Arc::from("t"), 19)]);
        assert_eq!(back.recent, s.recent);
        assert_eq!(back.held, s.held);
    }

    #[test]
    fn records_of_earlier_versions_with_the_ids_themselves_are_read() {
        let old = Entry {
            recent_event_ids: (0..10).map(|i| format!("e{i}")).collect(),
            ..Entry::default()
        }
        .encode_to_vec();
        let s = Slot::<InventoryItem>::decode(&old).unwrap();
        assert_eq!(s.recent.len(), RECENT_IDS);
        assert_eq!(s.admit("t", 1, "e9"), Admission::Duplicate);
        assert_eq!(
            s.admit("t", 1, "e1"),
            Admission::Apply,
            "the oldest two are gone"
        );
        // FNV-1a test vectors.
        assert_eq!(id_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(id_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn scan_returns_only_the_prefix() {
        let mut p: PartitionState<InventoryItem> = PartitionState::default();
        for k in ["s1/a", "s1/b", "s10/a", "s2/a"] {
            p.slots.insert(k.into(), Slot::default());
        }
        let keys: Vec<_> = p.scan("s1/").map(|(k, _)| k.to_owned()).collect();
        assert_eq!(keys, vec!["s1/a", "s1/b"]);
    }
}
