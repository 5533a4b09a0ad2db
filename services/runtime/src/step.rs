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

use shelfguard_events::limits::{MAX_OUTPUT_BYTES, MAX_STATE_BYTES};

use crate::processor::{Output, Processor};
use crate::state::{Admission, PartitionState};

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
    apply_event(processor, part, rec.topic, rec.offset, &event)
}

/// Applies a decoded event (of `topic` at `offset`) to the keys it is about, then visits the
/// keys whose timer it revealed: [`handle`] after decoding, for tests that build events.
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
            slot.mark(
                rec.topic,
                rec.offset,
                if matches!(how, Visit::Apply(_)) {
                    event_id
                } else {
                    ""
                },
            );
            let refusal = match result {
                Err(panic) => Some(panic),
                Ok(Err(rejected)) => Some(rejected.0),
                Ok(Ok(outputs)) => {
                    match outputs.iter().find(|o| o.payload.len() > MAX_OUTPUT_BYTES) {
                        Some(big) => Some(format!(
                            "an output to {} would be {} bytes, over the limit of {MAX_OUTPUT_BYTES} (limit: output size)",
                            big.topic,
                            big.payload.len()
                        )),
                        None if slot.encoded_len() > MAX_STATE_BYTES => Some(format!(
                            "the state of {key} would be {} bytes, over the limit of {MAX_STATE_BYTES} (limit: state size)",
                            slot.encoded_len()
                        )),
                        None => {
                            effect
                                .outputs
                                .extend(outputs.into_iter().map(|o| (key.to_owned(), o)));
                            None
                        }
                    }
                }
            };
            if let Some(reason) = refusal {
                slot.state = before;
                // The processor's indexes over this key follow its state back.
                let _ = guarded("restored", || processor.restored(key, &slot.state));
                effect.refusals.push(format!("{key}: {reason}"));
            }
            effect.changed.push(key.to_owned());
        }
    }
    part.slots.insert(key.to_owned(), slot);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::{Rejected, View};
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
            assert_eq!(part.slots["S/A"].state.on_hand, 1, "{what}: state kept");
            assert!(part.slots["S/A"].state.open_reorder_id.is_empty());
        }
        // The next record applies as usual.
        let e = feed(&mut part, 10, "S", "S:A:ok2");
        assert!(e.refusals.is_empty());
        assert_eq!(part.slots["S/A"].state.on_hand, 2);
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
