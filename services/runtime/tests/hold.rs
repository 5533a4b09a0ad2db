//! Events that come before their product: held per key in order, applied when it arrives,
//! dead-lettered after the grace period (`step`, pure, without a broker).
use std::collections::BTreeSet;

use shelfguard_events::state::InventoryItem;
use shelfguard_runtime::processor::View;
use shelfguard_runtime::state::PartitionState;
use shelfguard_runtime::step::{self, Effect, MAX_HELD, Record};
use shelfguard_runtime::{Output, Processor, Rejected};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_800_000_000_000;

/// Events `<store>:<sku>:<id>:<time>`; a SKU is known once added to `known`.
#[derive(Default)]
struct Shop {
    known: BTreeSet<String>,
    version: u64,
}

impl Shop {
    fn learn(&mut self, sku: &str) {
        self.known.insert(sku.to_owned());
        self.version += 1;
    }
}

type Ev = (String, String, String, i64);

impl Processor for Shop {
    type Event = Ev;
    type State = InventoryItem;
    fn name(&self) -> &'static str {
        "shop"
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
    fn decode(&self, _topic: &str, payload: &[u8]) -> Result<Ev, Rejected> {
        let s = std::str::from_utf8(payload)?;
        let v: Vec<&str> = s.split(':').collect();
        let [store, sku, id, at] = v[..] else {
            return Err(Rejected("bad".into()));
        };
        Ok((store.into(), sku.into(), id.into(), at.parse()?))
    }
    fn event_id<'e>(&self, e: &'e Ev) -> &'e str {
        &e.2
    }
    fn occurred_at_ms(&self, e: &Ev) -> i64 {
        e.3
    }
    fn store_id<'e>(&self, e: &'e Ev) -> &'e str {
        &e.0
    }
    fn keys(&self, e: &Ev) -> Vec<String> {
        vec![format!("{}/{}", e.0, e.1)]
    }
    fn apply(
        &mut self,
        key: &str,
        state: &mut InventoryItem,
        e: &Ev,
        _others: &dyn View<InventoryItem>,
    ) -> Result<Vec<Output>, Rejected> {
        state.on_hand += 1;
        Ok(vec![Output {
            topic: "out",
            key: key.into(),
            payload: e.2.clone().into_bytes(),
        }])
    }
    fn waiting(&self, _key: &str, e: &Ev) -> Option<String> {
        (!self.known.contains(&e.1)).then(|| format!("SKU {} is not in the catalogue yet", e.1))
    }
    fn tables_version(&self) -> u64 {
        self.version
    }
    fn hold_grace_ms(&self) -> i64 {
        24 * HOUR
    }
}

fn feed(
    shop: &mut Shop,
    part: &mut PartitionState<InventoryItem>,
    offset: i64,
    ev: &str,
) -> Effect {
    let store = ev.split(':').next().unwrap_or_default().to_owned();
    step::handle(
        shop,
        part,
        Record {
            topic: "in",
            offset,
            key: Some(store.as_bytes()),
            payload: Some(ev.as_bytes()),
        },
    )
}

fn published(e: &Effect) -> Vec<String> {
    e.outputs
        .iter()
        .map(|(_, o)| String::from_utf8_lossy(&o.payload).into_owned())
        .collect()
}

#[test]
fn events_before_their_product_are_held_and_applied_in_order_once_it_arrives() {
    let (mut shop, mut part) = (Shop::default(), PartitionState::default());
    shop.learn("KNOWN");
    for (i, id) in ["count", "sale"].iter().enumerate() {
        let e = feed(&mut shop, &mut part, i as i64, &format!("S1:NEW:{id}:{T0}"));
        assert_eq!(
            (e.held.len(), e.outputs.len(), e.refusals.len()),
            (1, 0, 0),
            "{id}"
        );
        assert_eq!(
            e.changed,
            vec!["S1/NEW"],
            "the held record is in the changelog"
        );
    }
    // Another SKU of the store goes on as usual.
    assert_eq!(
        published(&feed(&mut shop, &mut part, 2, &format!("S1:KNOWN:k:{T0}"))),
        ["k"]
    );
    assert_eq!(part.held_records(), 2);
    assert_eq!(part.slots.get("S1/NEW").unwrap().state.on_hand, 0);
    // A redelivery of a held record is not held twice.
    assert_eq!(
        feed(&mut shop, &mut part, 1, &format!("S1:NEW:sale:{T0}")).redelivered,
        1
    );

    // Nothing released while the product is still unknown.
    assert_eq!(step::release_all(&mut shop, &mut part).released, 0);
    shop.learn("NEW");
    let e = step::release_all(&mut shop, &mut part);
    assert_eq!(published(&e), ["count", "sale"], "in their order");
    assert_eq!(
        (e.released, e.changed.clone()),
        (2, vec!["S1/NEW".to_owned()])
    );
    assert_eq!(part.slots.get("S1/NEW").unwrap().state.on_hand, 2);
    assert_eq!(part.held_records(), 0);
    assert!(part.held.is_empty());
}

#[test]
fn a_later_event_never_overtakes_the_held_ones() {
    let (mut shop, mut part) = (Shop::default(), PartitionState::default());
    feed(&mut shop, &mut part, 0, &format!("S1:NEW:first:{T0}"));
    // The product arrives, and the key's next event comes before any retry: the held one
    // goes first.
    shop.learn("NEW");
    let e = feed(
        &mut shop,
        &mut part,
        1,
        &format!("S1:NEW:second:{}", T0 + 1),
    );
    assert_eq!(published(&e), ["first", "second"]);
    assert_eq!(e.released, 1);
}

#[test]
fn held_events_are_dead_lettered_after_the_grace_period_with_their_own_bytes() {
    let (mut shop, mut part) = (Shop::default(), PartitionState::default());
    shop.learn("KNOWN");
    feed(&mut shop, &mut part, 0, &format!("S1:NEVER:old:{T0}"));
    feed(
        &mut shop,
        &mut part,
        1,
        &format!("S1:NEVER:young:{}", T0 + 20 * HOUR),
    );
    // Another store's clock does not count for S1.
    let e = feed(
        &mut shop,
        &mut part,
        2,
        &format!("S2:KNOWN:x:{}", T0 + 48 * HOUR),
    );
    assert!(e.given_up.is_empty());
    // 24 h of S1's event time later: the old one goes, the young one stays.
    let e = feed(
        &mut shop,
        &mut part,
        3,
        &format!("S1:KNOWN:y:{}", T0 + 24 * HOUR + 1),
    );
    assert_eq!(e.given_up.len(), 1, "{:?}", e.given_up);
    let (h, reason) = &e.given_up[0];
    assert_eq!(h.payload, format!("S1:NEVER:old:{T0}").into_bytes());
    assert_eq!(
        (h.topic.as_str(), h.offset, h.key.as_slice()),
        ("in", 0, &b"S1"[..])
    );
    assert!(reason.contains("UNKNOWN_SKU_GRACE_HOURS"), "{reason}");
    assert!(
        reason.contains("SKU NEVER is not in the catalogue yet"),
        "{reason}"
    );
    assert!(e.changed.contains(&"S1/NEVER".to_owned()));
    assert_eq!(part.held_records(), 1);
    assert_eq!(part.held["S1/NEVER"], T0 + 20 * HOUR);
}

#[test]
fn the_held_queue_of_a_key_is_bounded() {
    let (mut shop, mut part) = (Shop::default(), PartitionState::default());
    for i in 0..MAX_HELD as i64 {
        assert_eq!(
            feed(&mut shop, &mut part, i, &format!("S1:NEW:e{i}:{T0}"))
                .held
                .len(),
            1
        );
    }
    let e = feed(&mut shop, &mut part, 99, &format!("S1:NEW:more:{T0}"));
    assert!(e.held.is_empty());
    assert!(
        e.refusals[0].contains("limit: held events per key"),
        "{:?}",
        e.refusals
    );
    assert_eq!(part.held_records(), MAX_HELD);
}

#[test]
fn held_records_survive_the_changelog() {
    let (mut shop, mut part) = (Shop::default(), PartitionState::default());
    feed(&mut shop, &mut part, 0, &format!("S1:NEW:a:{T0}"));
    let bytes = part.slots.get("S1/NEW").unwrap().encode();
    let mut restored = PartitionState::<InventoryItem>::default();
    restored.slots.insert(
        "S1/NEW".into(),
        shelfguard_runtime::state::Slot::decode(&bytes).expect("decodes"),
    );
    restored.reindex();
    assert_eq!(restored.held["S1/NEW"], T0);
    shop.learn("NEW");
    assert_eq!(
        published(&step::release_all(&mut shop, &mut restored)),
        ["a"]
    );
}
