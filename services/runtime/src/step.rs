//! One input record's effect on a partition's state: pure, no I/O, the same code for the
//! engine and for tests.
//!
//! This is where the guarantees about a single record are enforced:
//! - the record is decoded, its key checked against its store, its event applied to each key
//!   it is about ([`Processor::apply`]), then the keys whose timer it revealed are visited
//!   ([`Processor::on_due`]): an event never reaches a key it is not about;
//! - each key skips what it already holds (redelivery by offset, duplicates by event id);
//! - **poison pills are isolated**: whatever the processor does with one record (an `Err`, a
//!   panic, outputs or a state too big for the broker), that key keeps its previous state, the
//!   record gets a dead letter with the reason, and the next record is handled as usual.
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use shelfguard_events::limits::{MAX_HELD_EVENTS, MAX_OUTPUT_BYTES, MAX_STATE_BYTES};
use shelfguard_events::state::Held;

use crate::processor::{Output, Processor, Rejected};
use crate::state::{Admission, PartitionState, Slot};

/// Most records held per key.
pub const MAX_HELD: usize = MAX_HELD_EVENTS;

/// An input record as the engine received it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Catalogue base name of the topic.
    pub topic: &'a str,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

/// What one record did.
#[derive(Debug, Default)]
pub struct Effect {
    /// Records to publish, in order, each with the key whose visit produced it (for the
    /// invariant tests: an output about a (store, SKU) carries that key's ids).
    pub outputs: Vec<(String, Output)>,
    /// Reasons the record (or its effect on one key) was refused: one dead letter each.
    pub refusals: Vec<String>,
    /// Keys whose changelog record changed.
    pub changed: Vec<String>,
    /// Keys that already held this record (a redelivery after a crash or rebalance).
    pub redelivered: u64,
    /// Keys that had applied the same event id from another offset (an upstream duplicate).
    pub duplicates: u64,
    /// The decoded event's id, when it decoded.
    pub event_id: Option<String>,
    /// Records newly held for a key (see [`Processor::waiting`]): `<key>: <what it waits for>`.
    pub held: Vec<String>,
    /// Held records applied (by this record or a catalogue change).
    pub released: u64,
    /// Held records dead-lettered (past the grace period, or refused when released), each
    /// with the reason: they go out with their own bytes, not the current record's.
    pub given_up: Vec<(Held, String)>,
}

impl Effect {
    fn refused(reason: String) -> Self {
        Self {
            refusals: vec![reason],
            ..Self::default()
        }
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Runs `f`, turning a panic into an `Err` with its message.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|p| format!("{what} panicked: {}", panic_message(p.as_ref())))
}

/// How one key is visited.
enum Visit<'e, E> {
    /// The event is about this key.
    Apply(&'e E),
    /// This key's timer fell due at the event's time.
    Due(i64),
}

impl<E> Clone for Visit<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Visit<'_, E> {}

/// Handles one record: decode, check, apply to its keys, visit the keys that fell due.
pub fn handle<P: Processor>(
    processor: &mut P,
    part: &mut PartitionState<P::State>,
    rec: Record<'_>,
) -> Effect {
    let Some(payload) = rec.payload else {
        return Effect::refused("empty record (no value)".into());
    };
    let event = match guarded("decode", || processor.decode(rec.topic, payload)) {
        Ok(Ok(e)) => e,
        Ok(Err(rejected)) => return Effect::refused(rejected.0),
        Err(panic) => return Effect::refused(panic),
    };
    let store = processor.store_id(&event);
    if rec.key != Some(store.as_bytes()) {
        let key = rec.key.map(String::from_utf8_lossy);
        return Effect::refused(format!(
            "record key {key:?} does not match store_id {store:?}: a store's records must be keyed by its id"
        ));
    }
    apply_decoded(processor, part, rec, &event)
}

/// Applies a decoded event (of `topic` at `offset`) to the keys it is about, then visits the
/// keys whose timer it revealed: [`handle`] after decoding, for tests that build events. Such
/// an event has no bytes, so it cannot be held: one that would be is refused.
pub fn apply_event<P: Processor>(
    processor: &mut P,
    part: &mut PartitionState<P::State>,
    topic: &str,
    offset: i64,
    event: &P::Event,
) -> Effect {
    let rec = Record {
        topic,
        offset,
        key: None,
        payload: None,
    };
    apply_decoded(processor, part, rec, event)
}

fn apply_decoded<P: Processor>(
    processor: &mut P,
    part: &mut PartitionState<P::State>,
    rec: Record<'_>,
    event: &P::Event,
) -> Effect {
    let event_id = processor.event_id(event).to_owned();
    let now = processor.occurred_at_ms(event);
    let mut effect = Effect {
        event_id: Some(event_id.clone()),
        ..Effect::default()
    };
    let own = match guarded("keys", || processor.keys(event)) {
        Ok(k) => k,
        Err(panic) => {
            effect.refusals.push(panic);
            return effect;
        }
    };
    let mut seen = BTreeSet::new();
    for key in &own {
        if seen.insert(key.clone()) {
            visit(
                processor,
                part,
                rec,
                &event_id,
                key,
                Visit::Apply(event),
                &mut effect,
            );
        }
    }
    let due = match guarded("due_keys", || processor.due_keys(event)) {
        Ok(k) => k,
        Err(panic) => {
            effect.refusals.push(panic);
            return effect;
        }
    };
    for key in &due {
        if seen.insert(key.clone()) {
            visit::<P>(
                processor,
                part,
                rec,
                &event_id,
                key,
                Visit::Due(now),
                &mut effect,
            );
        }
    }
    let store = processor.store_id(event).to_owned();
    give_up(processor, part, &store, now, &mut effect);
    effect
}

/// Visits one key, keeping its previous state when the visit fails in any way.
fn visit<P: Processor>(
    processor: &mut P,
    part: &mut PartitionState<P::State>,
    rec: Record<'_>,
    event_id: &str,
    key: &str,
    how: Visit<'_, P::Event>,
    effect: &mut Effect,
) {
    let mut slot = part.slots.remove(key).unwrap_or_default();
    let admission = match how {
        Visit::Apply(_) => slot.admit(rec.topic, rec.offset, event_id),
        // A timer visit is not the event's: only a redelivery of the record skips it.
        Visit::Due(_) => slot.admit(rec.topic, rec.offset, ""),
    };
    match admission {
        Admission::Redelivered => effect.redelivered += 1,
        Admission::Duplicate => {
            effect.duplicates += 1;
            slot.mark(rec.topic, rec.offset, event_id);
            effect.changed.push(key.to_owned());
        }
        Admission::Apply => {
            let waiting = match how {
                Visit::Apply(event) => {
                    // What was held for this key goes first, if it can now.
                    release(processor, part, key, &mut slot, effect);
                    waiting_for(processor, key, event, &slot)
                }
                Visit::Due(_) => None,
            };
            slot.mark(
                rec.topic,
                rec.offset,
                if matches!(how, Visit::Apply(_)) {
                    event_id
                } else {
                    ""
                },
            );
            match (waiting, how) {
                (Some(reason), Visit::Apply(event)) => {
                    match hold(processor, &mut slot, rec, event, &reason) {
                        Err(refusal) => effect.refusals.push(format!("{key}: {refusal}")),
                        Ok(()) => effect.held.push(format!("{key}: {reason}")),
                    }
                }
                _ => match attempt(processor, part, key, &mut slot, how) {
                    Ok(outputs) => effect
                        .outputs
                        .extend(outputs.into_iter().map(|o| (key.to_owned(), o))),
                    Err(reason) => effect.refusals.push(format!("{key}: {reason}")),
                },
            }
            effect.changed.push(key.to_owned());
        }
    }
    part.put(key, slot);
}

/// Applies `how` to the key's state; on any failure (an `Err`, a panic, outputs or state too
/// big) the state is put back as it was and the reason returned.
fn attempt<P: Processor>(
    processor: &mut P,
    part: &PartitionState<P::State>,
    key: &str,
    slot: &mut Slot<P::State>,
    how: Visit<'_, P::Event>,
) -> Result<Vec<Output>, String> {
    let before = slot.state.clone();
    let result = guarded(
        match how {
            Visit::Apply(_) => "apply",
            Visit::Due(_) => "on_due",
        },
        || match how {
            Visit::Apply(event) => processor.apply(key, &mut slot.state, event, part),
            Visit::Due(now) => processor.on_due(key, &mut slot.state, now, part),
        },
    );
    let refusal = match result {
        Err(panic) => panic,
        Ok(Err(rejected)) => rejected.0,
        Ok(Ok(outputs)) => match outputs.iter().find(|o| o.payload.len() > MAX_OUTPUT_BYTES) {
            Some(big) => format!(
                "an output to {} would be {} bytes, over the limit of {MAX_OUTPUT_BYTES} (limit: output size)",
                big.topic,
                big.payload.len()
            ),
            None if slot.encoded_len() > MAX_STATE_BYTES => format!(
                "the state of {key} would be {} bytes, over the limit of {MAX_STATE_BYTES} (limit: state size)",
                slot.encoded_len()
            ),
            None => return Ok(outputs),
        },
    };
    slot.state = before;
    // The processor's indexes over this key follow its state back.
    let _ = guarded("restored", || processor.restored(key, &slot.state));
    Err(refusal)
}

/// Why the event must wait: the processor says so, or earlier events of the key are held.
fn waiting_for<P: Processor>(
    processor: &P,
    key: &str,
    event: &P::Event,
    slot: &Slot<P::State>,
) -> Option<String> {
    let own = guarded("waiting", || processor.waiting(key, event))
        .ok()
        .flatten();
    match (own, slot.held.first()) {
        (Some(reason), _) => Some(reason),
        (None, Some(first)) => Some(format!(
            "behind {} held event(s) of {key}, the first waiting for: {}",
            slot.held.len(),
            first.waiting_for
        )),
        (None, None) => None,
    }
}

/// Keeps the record in the key's state until it can be applied.
fn hold<P: Processor>(
    processor: &P,
    slot: &mut Slot<P::State>,
    rec: Record<'_>,
    event: &P::Event,
    reason: &str,
) -> Result<(), String> {
    let Some(payload) = rec.payload else {
        return Err(format!(
            "{reason}; an event without its bytes cannot be held"
        ));
    };
    if slot.held.len() >= MAX_HELD {
        return Err(format!(
            "{reason}; {MAX_HELD} events are held for this key already (limit: held events per key)"
        ));
    }
    slot.held.push(Held {
        topic: rec.topic.to_owned(),
        offset: rec.offset,
        key: rec.key.unwrap_or_default().to_vec(),
        payload: payload.to_vec(),
        occurred_at_ms: processor.occurred_at_ms(event),
        waiting_for: reason.to_owned(),
    });
    if slot.encoded_len() > MAX_STATE_BYTES {
        slot.held.pop();
        return Err(format!(
            "{reason}; holding it would take the state of the key past {MAX_STATE_BYTES} bytes (limit: state size)"
        ));
    }
    Ok(())
}

/// Applies the key's held records, oldest first, for as long as none of them waits any more.
/// A held record that now fails is dead-lettered with its own bytes.
fn release<P: Processor>(
    processor: &mut P,
    part: &PartitionState<P::State>,
    key: &str,
    slot: &mut Slot<P::State>,
    effect: &mut Effect,
) {
    while let Some(first) = slot.held.first() {
        let event = match guarded("decode", || processor.decode(&first.topic, &first.payload)) {
            Ok(Ok(e)) => e,
            Ok(Err(Rejected(reason))) | Err(reason) => {
                let h = slot.held.remove(0);
                effect.given_up.push((h, format!("{key}: {reason}")));
                continue;
            }
        };
        let still = guarded("waiting", || processor.waiting(key, &event))
            .ok()
            .flatten();
        if still.is_some() {
            break;
        }
        let h = slot.held.remove(0);
        effect.released += 1;
        match attempt(processor, part, key, slot, Visit::Apply(&event)) {
            Ok(outputs) => effect
                .outputs
                .extend(outputs.into_iter().map(|o| (key.to_owned(), o))),
            Err(reason) => effect.given_up.push((h, format!("{key}: {reason}"))),
        }
    }
}

/// Releases what can be released in the whole partition (something held records wait for
/// arrived): the engine calls it when [`Processor::tables_version`] changes.
pub fn release_all<P: Processor>(processor: &mut P, part: &mut PartitionState<P::State>) -> Effect {
    let mut effect = Effect::default();
    let keys: Vec<String> = part.held.keys().cloned().collect();
    for key in keys {
        let Some(mut slot) = part.slots.remove(&key) else {
            continue;
        };
        let (held, released) = (slot.held.len(), effect.released);
        release(processor, part, &key, &mut slot, &mut effect);
        if slot.held.len() != held || effect.released != released {
            effect.changed.push(key.clone());
        }
        part.put(&key, slot);
    }
    effect
}

/// Dead-letters the records of `store` held longer than the grace period, by the store's event
/// time `now` (after a last try to apply them).
fn give_up<P: Processor>(
    processor: &mut P,
    part: &mut PartitionState<P::State>,
    store: &str,
    now: i64,
    effect: &mut Effect,
) {
    let grace = processor.hold_grace_ms();
    let prefix = format!("{store}/");
    let late: Vec<String> = part
        .held
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, oldest)| now.saturating_sub(**oldest) > grace)
        .map(|(k, _)| k.clone())
        .collect();
    for key in late {
        let Some(mut slot) = part.slots.remove(&key) else {
            continue;
        };
        release(processor, part, &key, &mut slot, effect);
        let (late, kept): (Vec<Held>, Vec<Held>) = std::mem::take(&mut slot.held)
            .into_iter()
            .partition(|h| now.saturating_sub(h.occurred_at_ms) > grace);
        slot.held = kept;
        for h in late {
            let reason = format!(
                "{key}: held for {} h of event time, still waiting for: {} (limit: UNKNOWN_SKU_GRACE_HOURS, {} h)",
                now.saturating_sub(h.occurred_at_ms) / 3_600_000,
                h.waiting_for,
                grace / 3_600_000
            );
            effect.given_up.push((h, reason));
        }
        effect.changed.push(key.clone());
        part.put(&key, slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::View;
    use shelfguard_events::state::InventoryItem;

    /// A processor that misbehaves on command: the payload is `<store>:<sku>:<what>`.
    struct Toy;

    impl Processor for Toy {
        type Event = (String, String, String);
        type State = InventoryItem;
        fn name(&self) -> &'static str {
            "toy"
        }
        fn inputs(&self) -> Vec<&'static str> {
            vec!["in"]
        }
        fn changelog(&self) -> &'static str {
            "state"
        }
        fn dead_letter(&self) -> &'static str {
            "dlq"
        }
        fn decode(&self, _topic: &str, payload: &[u8]) -> Result<Self::Event, Rejected> {
            let s = std::str::from_utf8(payload).map_err(|e| Rejected(e.to_string()))?;
            let mut it = s.splitn(3, ':').map(str::to_owned);
            let (Some(store), Some(sku), Some(what)) = (it.next(), it.next(), it.next()) else {
                return Err(Rejected("bad toy".into()));
            };
            if what == "panic-decode" {
                panic!("decode exploded");
            }
            Ok((store, sku, what))
        }
        fn event_id<'e>(&self, e: &'e Self::Event) -> &'e str {
            &e.2
        }
        fn occurred_at_ms(&self, _e: &Self::Event) -> i64 {
            0
        }
        fn store_id<'e>(&self, e: &'e Self::Event) -> &'e str {
            &e.0
        }
        fn keys(&self, e: &Self::Event) -> Vec<String> {
            vec![format!("{}/{}", e.0, e.1)]
        }
        fn apply(
            &mut self,
            key: &str,
            state: &mut InventoryItem,
            e: &Self::Event,
            _others: &dyn View<InventoryItem>,
        ) -> Result<Vec<Output>, Rejected> {
            state.on_hand += 1;
            match e.2.as_str() {
                "panic" => panic!("apply exploded"),
                "err" => Err(Rejected("refused".into())),
                "big-output" => Ok(vec![Output {
                    topic: "out",
                    key: key.into(),
                    payload: vec![0; MAX_OUTPUT_BYTES + 1],
                }]),
                "big-state" => {
                    state.open_reorder_id = "x".repeat(MAX_STATE_BYTES);
                    Ok(Vec::new())
                }
                _ => Ok(vec![Output {
                    topic: "out",
                    key: key.into(),
                    payload: vec![1],
                }]),
            }
        }
    }

    fn feed(
        part: &mut PartitionState<InventoryItem>,
        offset: i64,
        key: &str,
        payload: &str,
    ) -> Effect {
        handle(
            &mut Toy,
            part,
            Record {
                topic: "in",
                offset,
                key: Some(key.as_bytes()),
                payload: Some(payload.as_bytes()),
            },
        )
    }

    #[test]
    fn every_kind_of_failure_is_a_refusal_that_keeps_the_previous_state() {
        let mut part = PartitionState::default();
        assert!(feed(&mut part, 1, "S", "S:A:ok").refusals.is_empty());
        for (i, (what, says)) in [
            ("panic", "apply panicked: apply exploded"),
            ("err", "refused"),
            ("big-output", "limit: output size"),
            ("big-state", "limit: state size"),
            ("panic-decode", "decode panicked: decode exploded"),
        ]
        .into_iter()
        .enumerate()
        {
            let e = feed(&mut part, 2 + i as i64, "S", &format!("S:A:{what}"));
            assert_eq!(e.refusals.len(), 1, "{what}: {:?}", e.refusals);
            assert!(e.refusals[0].contains(says), "{what}: {:?}", e.refusals);
            assert!(e.outputs.is_empty(), "{what}");
            assert_eq!(
                part.slots.get("S/A").unwrap().state.on_hand,
                1,
                "{what}: state kept"
            );
            assert!(
                part.slots
                    .get("S/A")
                    .unwrap()
                    .state
                    .open_reorder_id
                    .is_empty()
            );
        }
        // The next record applies as usual.
        let e = feed(&mut part, 10, "S", "S:A:ok2");
        assert!(e.refusals.is_empty());
        assert_eq!(part.slots.get("S/A").unwrap().state.on_hand, 2);
        // A refused record is not refused again on its redelivery.
        assert_eq!(feed(&mut part, 3, "S", "S:A:err").redelivered, 1);
    }

    #[test]
    fn a_record_keyed_by_another_store_is_refused() {
        let mut part = PartitionState::default();
        let e = feed(&mut part, 1, "S-ELSEWHERE", "S:A:ok");
        assert!(
            e.refusals[0].contains("does not match store_id"),
            "{:?}",
            e.refusals
        );
        assert!(part.slots.is_empty());
        let e = handle(
            &mut Toy,
            &mut part,
            Record {
                topic: "in",
                offset: 2,
                key: None,
                payload: Some(b"S:A:ok"),
            },
        );
        assert_eq!(e.refusals.len(), 1);
        assert!(part.slots.is_empty());
    }
}
