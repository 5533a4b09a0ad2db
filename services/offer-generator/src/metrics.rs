//! Domain metrics of the offer generator, read from what it publishes on `floor.offers.v1`:
//! the offer funnel per store and event, and the store's gesture budget for the day (the latest
//! `budget_cents` / `budget_committed_cents` published). Counters count published records: a
//! replay after a crash republishes (and counts) the same record again, rarely.
use std::sync::OnceLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prost::Message as _;
use shelfguard_events::floor::{OfferEvent, offer_event::Change};
use shelfguard_events::state::OfferItem;
use shelfguard_events::topics;
use shelfguard_runtime::metrics::{self, Labels};
use shelfguard_runtime::{Observer, Output};

/// The families, registered once per process.
struct Families {
    /// `shelfguard_offer_events_total{store,event}`.
    events: Family<Labels, Counter>,
    /// `shelfguard_gesture_budget_cents{store}`.
    budget: Family<Labels, Gauge>,
    /// `shelfguard_gesture_budget_committed_cents{store}`.
    committed: Family<Labels, Gauge>,
}

fn families() -> &'static Families {
    static F: OnceLock<Families> = OnceLock::new();
    F.get_or_init(|| {
        let f = Families {
            events: Family::default(),
            budget: Family::default(),
            committed: Family::default(),
        };
        metrics::register(
            "offer_events",
            "Offer lifecycle events published on floor.offers.v1, by store and event (issued, accepted, declined, redeemed, expired, withdrawn, not_offered)",
            f.events.clone(),
        );
        metrics::register(
            "gesture_budget_cents",
            "The store's gesture budget for the current (UTC) day, in cents, as last published",
            f.budget.clone(),
        );
        metrics::register(
            "gesture_budget_committed_cents",
            "Cents of the store's daily gesture budget committed to offers, as last published",
            f.committed.clone(),
        );
        f
    })
}

/// The `event` label of an offer event.
pub fn event_name(change: &Change) -> &'static str {
    match change {
        Change::Issued(_) => "issued",
        Change::Accepted(_) => "accepted",
        Change::Declined(_) => "declined",
        Change::Redeemed(_) => "redeemed",
        Change::Expired(_) => "expired",
        Change::Withdrawn(_) => "withdrawn",
        Change::NotOffered(_) => "not_offered",
    }
}

/// Every event name, for the series created at zero.
const EVENTS: [&str; 7] = [
    "issued",
    "accepted",
    "declined",
    "redeemed",
    "expired",
    "withdrawn",
    "not_offered",
];

/// Watches the offers the generator publishes.
pub struct Funnel {
    /// The registered families.
    f: &'static Families,
    /// Stores whose series exist: each gets every event's series at zero the first time any of
    /// its keys changes, so Prometheus sees its first offer event as an increase (a series that
    /// appears at 1 is lost to `increase()`).
    known: std::collections::HashSet<String>,
}

impl Default for Funnel {
    fn default() -> Self {
        Self {
            f: families(),
            known: std::collections::HashSet::new(),
        }
    }
}

impl Funnel {
    fn ensure(&mut self, store: &str) {
        if store.is_empty() || self.known.contains(store) {
            return;
        }
        for event in EVENTS {
            let _ = self.f.events.get_or_create(&vec![
                ("store", store.to_owned()),
                ("event", event.to_owned()),
            ]);
        }
        self.known.insert(store.to_owned());
    }
}

impl Observer<OfferItem> for Funnel {
    /// A store's first key (a stock level or a basket reaches offer-generator long before its
    /// first offer) creates its series at zero.
    fn state(&mut self, key: &str, _state: &OfferItem) {
        self.ensure(shelfguard_events::validate::split_key(key).0);
    }

    fn output(&mut self, output: &Output) {
        if output.topic != topics::FLOOR_OFFERS {
            return;
        }
        // Our own records: they always decode; anything else is not an offer event to count.
        let Ok(e) = OfferEvent::decode(output.payload.as_slice()) else {
            return;
        };
        let Some(change) = &e.change else { return };
        self.ensure(&e.store_id);
        self.f
            .events
            .get_or_create(&vec![
                ("store", e.store_id.clone()),
                ("event", event_name(change).to_owned()),
            ])
            .inc();
        let store = vec![("store", e.store_id)];
        self.f.budget.get_or_create(&store).set(e.budget_cents);
        self.f
            .committed
            .get_or_create(&store)
            .set(e.budget_committed_cents);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelfguard_events::floor::{Expired, Issued};

    #[test]
    fn a_stores_series_exist_at_zero_from_its_first_key() {
        let mut f = Funnel::default();
        f.state("S-ZERO/OIL-14", &OfferItem::default());
        let text = shelfguard_runtime::metrics::render();
        for event in EVENTS {
            let line =
                format!("shelfguard_offer_events_total{{store=\"S-ZERO\",event=\"{event}\"}} 0");
            assert!(text.contains(&line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn counts_offer_events_and_keeps_the_latest_budget() {
        let mut f = Funnel::default();
        let ev = |change, committed| OfferEvent {
            store_id: "S9".into(),
            budget_cents: 5000,
            budget_committed_cents: committed,
            change: Some(change),
            ..Default::default()
        };
        f.output(&Output::new(
            topics::FLOOR_OFFERS,
            "S9",
            &ev(Change::Issued(Issued::default()), 600),
        ));
        f.output(&Output::new(
            topics::FLOOR_OFFERS,
            "S9",
            &ev(Change::Expired(Expired::default()), 0),
        ));
        f.output(&Output::new(
            topics::STOCKOUTS,
            "S9",
            &ev(Change::Issued(Issued::default()), 9),
        ));
        let text = metrics::render();
        for line in [
            "shelfguard_offer_events_total{store=\"S9\",event=\"issued\"} 1",
            "shelfguard_offer_events_total{store=\"S9\",event=\"expired\"} 1",
            "shelfguard_gesture_budget_cents{store=\"S9\"} 5000",
            "shelfguard_gesture_budget_committed_cents{store=\"S9\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }
}
