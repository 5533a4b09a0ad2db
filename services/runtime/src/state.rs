//! Per-partition keyed state with the bookkeeping that makes replays idempotent.
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use prost::Message;
use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};
use shelfguard_events::limits::MAX_HELD_EVENTS;
use shelfguard_events::state::{Applied, Entry, Held};

use crate::processor::View;

use shelfguard_events::limits::MAX_DERIVED_ID_BYTES;

/// How many event ids each key remembers for de-duplication.
pub const RECENT_IDS: usize = shelfguard_events::limits::RECENT_EVENT_IDS;

/// Bytes of an event id's hash a key keeps ([`kept_hash`]): 6, so two different ids of one key
/// within its last [`RECENT_IDS`] events collide (the later one taken for a duplicate) with a
/// chance of about 2^-45 per event (8 × 2^-48): one in 35 trillion events.
pub const HASH_BYTES: usize = 6;

/// The 64-bit FNV-1a hash of an event id. Stable across versions and processes (what a key
/// keeps of it, [`kept_hash`], is in the changelog).
pub fn id_hash(event_id: &str) -> u64 {
    event_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What a key remembers of an event id (not the id): the high [`HASH_BYTES`] bytes of its
/// [`id_hash`] (FNV mixes each byte into the high bits most).
pub fn kept_hash(event_id: &str) -> u64 {
    kept(id_hash(event_id))
}

/// The kept part of a full 64-bit hash (changelog records of earlier versions carry those).
fn kept(h: u64) -> u64 {
    h >> (64 - 8 * HASH_BYTES)
}

/// Kept hashes, [`HASH_BYTES`] little-endian bytes each.
fn hash_bytes(recent: &[u64]) -> Vec<u8> {
    recent
        .iter()
        .flat_map(|h| h.to_le_bytes().into_iter().take(HASH_BYTES))
        .collect()
}

/// The kept hashes in `bytes` ([`hash_bytes`]).
fn hashes_of(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(HASH_BYTES).map(|c| {
        let mut b = [0u8; 8];
        b[..HASH_BYTES].copy_from_slice(c);
        u64::from_le_bytes(b)
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
    /// What is kept ([`kept_hash`]) of the latest event ids applied, newest last, at most [`RECENT_IDS`].
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
        } else if !event_id.is_empty() && self.recent.contains(&kept_hash(event_id)) {
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
        let h = kept_hash(event_id);
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
                let n = self.recent.len() * HASH_BYTES;
                key_len(6) + encoded_len_varint(n as u64) + n
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
            recent_event_hashes: Vec::new(),
            recent_kept_hashes: hash_bytes(&self.recent),
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
                let mut r: Vec<u64> = e.recent_event_ids.iter().map(|i| kept_hash(i)).collect();
                r.extend(e.recent_event_hashes.into_iter().map(kept));
                r.extend(hashes_of(&e.recent_kept_hashes));
                let excess = r.len().saturating_sub(RECENT_IDS);
                r.drain(..excess);
                r
            },
            held: e.held,
        })
    }
}

/// Where a topic name is kept once for the whole process: packed slots name an input topic
/// by its index here (a handful of input topics), not by a string per key.
struct Topics {
    names: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
}

fn topics() -> &'static RwLock<Topics> {
    static TOPICS: OnceLock<RwLock<Topics>> = OnceLock::new();
    TOPICS.get_or_init(|| {
        RwLock::new(Topics {
            names: Vec::new(),
            index: HashMap::new(),
        })
    })
}

/// The index of `topic` in the process's topic table, adding it when new.
fn topic_index(topic: &Arc<str>) -> u32 {
    if let Some(i) = topics()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .index
        .get(topic)
    {
        return *i;
    }
    let mut t = topics().write().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = t.index.get(topic) {
        return *i;
    }
    let i = t.names.len() as u32;
    t.names.push(topic.clone());
    t.index.insert(topic.clone(), i);
    i
}

fn topic_name(i: u64) -> Option<Arc<str>> {
    topics()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .names
        .get(i as usize)
        .cloned()
}

/// The state's bytes with each run of 0x00 or 0xFF bytes (up to 256) written as the byte and
/// the run's length less one: a negative `int32`/`int64` is ten bytes in protobuf, nine of
/// them 0xFF (three bytes here), and doubles are mostly zero bytes.
fn squeeze(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        out.push(b);
        i += 1;
        if b == 0x00 || b == 0xFF {
            let run = bytes[i..].iter().take(255).take_while(|&&c| c == b).count();
            out.push(run as u8);
            i += run;
        }
    }
    out
}

/// The bytes [`squeeze`] was given.
fn stretch(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() + 32);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        out.push(b);
        i += 1;
        if b == 0x00 || b == 0xFF {
            let run = *bytes.get(i)? as usize;
            out.resize(out.len() + run, b);
            i += 1;
        }
    }
    Some(out)
}

/// Reads one length-delimited part of a packed slot.
fn take<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = decode_varint(buf).ok()? as usize;
    if n > buf.len() {
        return None;
    }
    let (part, rest) = buf.split_at(n);
    *buf = rest;
    Some(part)
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    decode_varint(buf).ok()
}

impl<S: Message + Default> Slot<S> {
    /// The slot in the compact form it is kept in memory (not the changelog's [`Entry`]):
    /// the state's bytes, each applied input as (topic index, offset), the recent id hashes
    /// at [`HASH_BYTES`] each, the held records' bytes. Every part is length-prefixed.
    fn pack_into(&self, state: &[u8], out: &mut Vec<u8>) {
        encode_varint(state.len() as u64, out);
        out.extend_from_slice(state);
        encode_varint(self.applied.len() as u64, out);
        for (t, o) in &self.applied {
            encode_varint(u64::from(topic_index(t)), out);
            encode_varint(*o as u64, out);
        }
        encode_varint(self.recent.len() as u64, out);
        out.extend_from_slice(&hash_bytes(&self.recent));
        encode_varint(self.held.len() as u64, out);
        for h in &self.held {
            encode_varint(h.encoded_len() as u64, out);
            h.encode(out).expect("a Vec grows to hold any message");
        }
    }

    /// The length of [`Slot::pack_into`]'s output, so a packed slot is allocated once.
    fn packed_len(&self, state: usize) -> usize {
        encoded_len_varint(state as u64)
            + state
            + encoded_len_varint(self.applied.len() as u64)
            + self
                .applied
                .iter()
                .map(|(t, o)| {
                    encoded_len_varint(u64::from(topic_index(t))) + encoded_len_varint(*o as u64)
                })
                .sum::<usize>()
            + encoded_len_varint(self.recent.len() as u64)
            + self.recent.len() * HASH_BYTES
            + encoded_len_varint(self.held.len() as u64)
            + self
                .held
                .iter()
                .map(|h| {
                    let n = h.encoded_len();
                    encoded_len_varint(n as u64) + n
                })
                .sum::<usize>()
    }

    /// The state alone from a packed slot.
    fn unpack_state(mut buf: &[u8]) -> Option<S> {
        S::decode(stretch(take(&mut buf)?)?.as_slice()).ok()
    }

    fn unpack(mut buf: &[u8]) -> Option<Self> {
        let state = S::decode(stretch(take(&mut buf)?)?.as_slice()).ok()?;
        let n = varint(&mut buf)? as usize;
        let mut applied = Vec::with_capacity(n.min(16));
        for _ in 0..n {
            let t = topic_name(varint(&mut buf)?)?;
            applied.push((t, varint(&mut buf)? as i64));
        }
        let n = varint(&mut buf)? as usize;
        let hashes = buf.get(..n.checked_mul(HASH_BYTES)?)?;
        let recent = hashes_of(hashes).collect();
        buf = &buf[hashes.len()..];
        let n = varint(&mut buf)? as usize;
        let mut held = Vec::with_capacity(n.min(MAX_HELD_EVENTS));
        for _ in 0..n {
            held.push(Held::decode(take(&mut buf)?).ok()?);
        }
        Some(Self {
            state,
            applied,
            recent,
            held,
        })
    }
}

/// One key and its slot in one allocation: the key's length (varint), the key, then the
/// packed slot ([`Slot::pack_into`]). Ordered by the key alone.
struct Packed(Box<[u8]>);

impl Packed {
    fn new<S: Message + Default>(key: &str, slot: &Slot<S>) -> Self {
        let state = squeeze(&slot.state.encode_to_vec());
        let len = encoded_len_varint(key.len() as u64) + key.len() + slot.packed_len(state.len());
        let mut out = Vec::with_capacity(len);
        encode_varint(key.len() as u64, &mut out);
        out.extend_from_slice(key.as_bytes());
        slot.pack_into(&state, &mut out);
        debug_assert_eq!(out.len(), len);
        Self(out.into_boxed_slice())
    }

    /// (key, packed slot).
    fn parts(&self) -> (&[u8], &[u8]) {
        let mut buf: &[u8] = &self.0;
        let n = decode_varint(&mut buf).unwrap_or(0) as usize;
        buf.split_at(n.min(buf.len()))
    }

    fn key(&self) -> &str {
        // Only ever made from a `&str`.
        std::str::from_utf8(self.parts().0).unwrap_or_default()
    }

    fn slot<S: Message + Default>(&self) -> Slot<S> {
        // Only ever made by `pack_into`, in this process.
        Slot::unpack(self.parts().1).expect("a packed slot unpacks")
    }

    fn state<S: Message + Default>(&self) -> S {
        Slot::<S>::unpack_state(self.parts().1).expect("a packed slot unpacks")
    }

    /// Whether the slot holds records, without unpacking it.
    fn holds(&self) -> bool {
        let mut buf = self.parts().1;
        let held = (|| {
            take(&mut buf)?;
            for _ in 0..varint(&mut buf)? * 2 {
                varint(&mut buf)?;
            }
            let n = varint(&mut buf)? as usize;
            buf = buf.get(n.checked_mul(HASH_BYTES)?..)?;
            varint(&mut buf)
        })();
        held != Some(0)
    }
}

impl Borrow<[u8]> for Packed {
    fn borrow(&self) -> &[u8] {
        self.parts().0
    }
}
impl PartialEq for Packed {
    fn eq(&self, other: &Self) -> bool {
        self.parts().0 == other.parts().0
    }
}
impl Eq for Packed {}
impl PartialOrd for Packed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Packed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().0.cmp(other.parts().0)
    }
}

/// The slots of one partition, each kept packed (about the size of its changelog record, less
/// the topic names) and unpacked only when a record visits it. Ordered by key, so one store's
/// keys can be scanned.
pub struct Slots<S> {
    set: BTreeSet<Packed>,
    _state: PhantomData<fn() -> S>,
}

impl<S> Default for Slots<S> {
    fn default() -> Self {
        Self {
            set: BTreeSet::new(),
            _state: PhantomData,
        }
    }
}

/// Built in bulk (sorted input is not searched per key); a later duplicate key replaces an
/// earlier one.
impl<S: Message + Default> FromIterator<(String, Slot<S>)> for Slots<S> {
    fn from_iter<I: IntoIterator<Item = (String, Slot<S>)>>(iter: I) -> Self {
        let mut slots = Self::default();
        let mut sorted: Vec<Packed> = Vec::new();
        for (key, slot) in iter {
            let p = Packed::new(&key, &slot);
            if sorted.last().is_some_and(|last| last.key() >= p.key()) {
                // Not sorted and unique: insert one by one, in order, the later winning.
                slots.set.extend(sorted.drain(..));
                slots.set.replace(p);
            } else if slots.set.is_empty() {
                sorted.push(p);
            } else {
                slots.set.replace(p);
            }
        }
        if !sorted.is_empty() {
            slots.set = sorted.into_iter().collect();
        }
        slots
    }
}

impl<S> std::fmt::Debug for Slots<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots")
            .field("keys", &self.set.len())
            .finish()
    }
}

impl<S: Message + Default> Slots<S> {
    pub fn len(&self) -> usize {
        self.set.len()
    }
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.set.contains(key.as_bytes())
    }
    /// The key's slot, unpacked.
    pub fn get(&self, key: &str) -> Option<Slot<S>> {
        self.set.get(key.as_bytes()).map(Packed::slot)
    }
    /// The key's state alone, unpacked.
    pub fn state(&self, key: &str) -> Option<S> {
        self.set.get(key.as_bytes()).map(Packed::state)
    }
    pub fn insert(&mut self, key: String, slot: Slot<S>) {
        self.put(&key, &slot);
    }
    fn put(&mut self, key: &str, slot: &Slot<S>) {
        self.set.replace(Packed::new(key, slot));
    }
    pub fn remove(&mut self, key: &str) -> Option<Slot<S>> {
        self.set.take(key.as_bytes()).map(|p| p.slot())
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.set.iter().map(Packed::key)
    }
    /// Every key with its slot (unpacked one at a time), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Slot<S>)> + '_ {
        self.set.iter().map(|p| (p.key(), p.slot()))
    }
    pub fn values(&self) -> impl Iterator<Item = Slot<S>> + '_ {
        self.set.iter().map(Packed::slot)
    }
    /// Keys from `prefix` on, in key order, with their states.
    fn scan_states<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, S)> + 'a {
        self.set
            .range::<[u8], _>((Bound::Included(prefix.as_bytes()), Bound::Unbounded))
            .map(|p| (p.key(), p))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, p)| (k, p.state()))
    }
    /// Every key with its state alone (unpacked one at a time), in key order.
    pub fn states(&self) -> impl Iterator<Item = (&str, S)> + '_ {
        self.set.iter().map(|p| (p.key(), p.state()))
    }
    /// Bytes the packed slots take (keys included), not counting the map or the allocator.
    pub fn packed_bytes(&self) -> usize {
        self.set.iter().map(|p| p.0.len()).sum()
    }
}

impl<'a, S: Message + Default> IntoIterator for &'a Slots<S> {
    type Item = (&'a str, Slot<S>);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, Slot<S>)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// The keyed state of one partition.
#[derive(Debug)]
pub struct PartitionState<S> {
    pub slots: Slots<S>,
    /// Keys that hold records, with the event time of their oldest one: the grace period is
    /// checked on the store's events and held records are retried without scanning every key.
    pub held: BTreeMap<String, i64>,
}

impl<S> Default for PartitionState<S> {
    fn default() -> Self {
        Self {
            slots: Slots::default(),
            held: BTreeMap::new(),
        }
    }
}

impl<S: Message + Default> PartitionState<S> {
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
        self.slots.put(key, &slot);
    }

    /// Rebuilds the index of held records (after a restore).
    pub fn reindex(&mut self) {
        self.held = self
            .slots
            .set
            .iter()
            .filter(|p| p.holds())
            .filter_map(|p| {
                let s: Slot<S> = p.slot();
                Some((
                    p.key().to_owned(),
                    s.held.iter().map(|h| h.occurred_at_ms).min()?,
                ))
            })
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

impl<S: Message + Default> View<S> for PartitionState<S> {
    fn get(&self, key: &str) -> Option<S> {
        self.slots.state(key)
    }
    fn scan<'a>(&'a self, prefix: &'a str) -> Box<dyn Iterator<Item = (&'a str, S)> + 'a> {
        Box::new(self.slots.scan_states(prefix))
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
        assert_eq!(*s.recent.last().unwrap(), kept_hash("e19"));
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
        // Records of the version before keep the full 64-bit hashes.
        let old = Entry {
            recent_event_hashes: (0..3).map(|i| id_hash(&format!("e{i}"))).collect(),
            ..Entry::default()
        }
        .encode_to_vec();
        let s = Slot::<InventoryItem>::decode(&old).unwrap();
        assert_eq!(s.admit("t", 1, "e2"), Admission::Duplicate);
        assert_eq!(s.admit("t", 1, "e3"), Admission::Apply);
        let again = Slot::<InventoryItem>::decode(&s.encode()).unwrap();
        assert_eq!(again.recent, s.recent);
        assert_eq!(again.admit("t", 1, "e0"), Admission::Duplicate);
        // FNV-1a test vectors.
        assert_eq!(id_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(id_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn slots_are_kept_packed_and_come_back_whole() {
        let mut s: Slot<InventoryItem> = Slot::default();
        for i in 0..12 {
            s.mark(
                ["t", "u", "v"][i % 3],
                1_000_000_000 + i as i64,
                &format!("e{i}"),
            );
        }
        s.mark("w", -1, "");
        s.state.on_hand = -3;
        s.state.open_reorder_id = "r".repeat(300);
        s.held.push(Held {
            topic: "t".into(),
            offset: 300,
            key: b"S".to_vec(),
            payload: vec![7; 200],
            occurred_at_ms: 1_700_000_000_000,
            waiting_for: "SKU A is not in the catalogue yet".into(),
        });
        let mut p: PartitionState<InventoryItem> = PartitionState::default();
        p.put("S1/A", s.clone());
        p.put("S1/", Slot::default());
        let back = p.slots.get("S1/A").unwrap();
        assert_eq!(back.state, s.state);
        assert_eq!(back.applied, s.applied);
        assert_eq!(back.recent, s.recent);
        assert_eq!(back.held, s.held);
        assert_eq!(
            back.encode(),
            s.encode(),
            "the changelog record is the same"
        );
        assert_eq!(p.get("S1/A").unwrap(), s.state);
        assert_eq!(p.get("S1/").unwrap(), InventoryItem::default());
        assert!(p.get("S1").is_none());
        assert_eq!(p.held.get("S1/A"), Some(&1_700_000_000_000));
        assert_eq!(p.held_records(), 1);
        assert_eq!(back.admit("t", 2_000_000_000, "e11"), Admission::Duplicate);
        assert_eq!(back.admit("u", 1_000_000_010, "x"), Admission::Redelivered);
        // Replaced, not added; removed for good.
        p.put("S1/A", Slot::default());
        assert_eq!(p.slots.len(), 2);
        assert!(p.held.is_empty());
        assert!(p.slots.remove("S1/A").is_some());
        assert!(!p.slots.contains_key("S1/A"));
        assert_eq!(p.slots.keys().collect::<Vec<_>>(), vec!["S1/"]);
    }

    #[test]
    fn runs_of_zero_and_all_ones_bytes_are_squeezed() {
        for bytes in [
            vec![],
            vec![0],
            vec![0xFF],
            vec![1, 2, 3],
            vec![0xFF; 9],
            vec![0; 700],
            [vec![8, 0xFF], vec![0xFF; 300], vec![1, 0, 0, 2]].concat(),
        ] {
            assert_eq!(stretch(&squeeze(&bytes)).unwrap(), bytes);
        }
        // A movement of -1 unit: 10 bytes of varint, 3 here.
        assert_eq!(
            squeeze(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1]),
            vec![0xFF, 8, 1]
        );
        assert_eq!(
            stretch(&[0xFF]),
            None,
            "a run without its length is refused"
        );
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

    #[test]
    fn slots_collect_sorted_input_in_bulk_and_any_input_with_the_later_duplicate_winning() {
        let slot = |n: i32| Slot {
            state: InventoryItem {
                on_hand: n,
                ..Default::default()
            },
            ..Default::default()
        };
        let of = |s: &Slots<InventoryItem>| -> Vec<(String, i32)> {
            s.states()
                .map(|(k, st)| (k.to_owned(), st.on_hand))
                .collect()
        };
        let sorted: Slots<InventoryItem> = [("a", 1), ("b", 2), ("c", 3)]
            .into_iter()
            .map(|(k, n)| (k.to_owned(), slot(n)))
            .collect();
        assert_eq!(
            of(&sorted),
            [("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]
        );
        let mixed: Slots<InventoryItem> = [("b", 1), ("c", 2), ("a", 3), ("c", 4), ("a", 5)]
            .into_iter()
            .map(|(k, n)| (k.to_owned(), slot(n)))
            .collect();
        assert_eq!(
            of(&mixed),
            [("a".into(), 5), ("b".into(), 1), ("c".into(), 4)]
        );
    }
}
