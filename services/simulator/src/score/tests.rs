#![allow(clippy::unwrap_used)]
use shelfguard_events::floor::{Issued, NotOffered, Offer};
use shelfguard_events::floor::{ShelfCheckEvent, ShelfFinding};
use shelfguard_events::stockout::{Closed, Opened};
use std::collections::HashMap;

use super::*;

const H: i64 = 3_600_000;
const T0: i64 = 1_735_689_600_000;

fn params() -> Params {
    Params {
        start_ms: T0,
        end_ms: T0 + 48 * H,
        stores: 2,
        grace_ms: 30 * MINUTE_MS,
        min_truth_ms: H,
        fast_seller_per_hour: 1.0,
        rates: HashMap::new(),
        open_hours: (0, 24),
        store_hours: HashMap::new(),
    }
}

fn truth(store: &str, sku: &str, kind: TruthKind, from_h: i64, to_h: i64, rate: f64) -> Truth {
    Truth {
        store: store.into(),
        sku: sku.into(),
        kind,
        start_ms: T0 + from_h * H,
        end_ms: T0 + to_h * H,
        sales_per_hour: rate,
    }
}

fn opened(store: &str, sku: &str, n: u32, kind: Kind, at_min: i64) -> StockoutEvent {
    let id = format!("{store}/{sku}/S{n}");
    StockoutEvent {
        event_id: format!("so:{id}:opened"),
        occurred_at_ms: T0 + at_min * MINUTE_MS,
        store_id: store.into(),
        stockout_id: id,
        sku: sku.into(),
        change: Some(Change::Opened(Opened {
            kind: kind as i32,
            ..Default::default()
        })),
    }
}

fn closed(store: &str, sku: &str, n: u32, at_min: i64) -> StockoutEvent {
    let id = format!("{store}/{sku}/S{n}");
    StockoutEvent {
        event_id: format!("so:{id}:closed"),
        occurred_at_ms: T0 + at_min * MINUTE_MS,
        store_id: store.into(),
        stockout_id: id,
        sku: sku.into(),
        change: Some(Change::Closed(Closed::default())),
    }
}

fn issued(stockout_id: &str, at_min: i64, suspected: bool, budget: (i64, i64)) -> OfferEvent {
    let store = stockout_id.split('/').next().unwrap();
    OfferEvent {
        event_id: format!("{stockout_id}/offer:issued"),
        occurred_at_ms: T0 + at_min * MINUTE_MS,
        store_id: store.into(),
        offer_id: format!("{stockout_id}/offer"),
        stockout_id: stockout_id.into(),
        sku: stockout_id.split('/').nth(1).unwrap().into(),
        budget_cents: budget.0,
        budget_committed_cents: budget.1,
        change: Some(OfferChange::Issued(Issued {
            offer: Some(Offer {
                suspected,
                ..Default::default()
            }),
        })),
    }
}

fn not_offered_ev(stockout_id: &str, cause: not_offered::Cause) -> OfferEvent {
    OfferEvent {
        event_id: format!("{stockout_id}:no:{}", cause as i32),
        occurred_at_ms: T0,
        store_id: stockout_id.split('/').next().unwrap().into(),
        stockout_id: stockout_id.into(),
        change: Some(OfferChange::NotOffered(NotOffered {
            cause: cause as i32,
            reason: String::new(),
        })),
        ..Default::default()
    }
}

#[test]
fn episodes_pair_opens_and_closes_and_ignore_duplicates() {
    let ev = [
        opened("S1", "A", 1, Kind::Confirmed, 60),
        opened("S1", "A", 1, Kind::Confirmed, 60),
        closed("S1", "A", 1, 120),
        closed("S1", "A", 1, 999),
        opened("S1", "A", 2, Kind::Suspected, 300),
        closed("S2", "B", 1, 5), // a close without its open
    ];
    let eps = episodes(&ev);
    assert_eq!(eps.len(), 2);
    assert_eq!(
        (eps[0].kind, eps[0].opened_ms, eps[0].closed_ms),
        (
            Kind::Confirmed,
            T0 + 60 * MINUTE_MS,
            Some(T0 + 120 * MINUTE_MS)
        )
    );
    assert_eq!((eps[1].kind, eps[1].closed_ms), (Kind::Suspected, None));
}

#[test]
fn precision_recall_and_delays_per_kind() {
    let truth = vec![
        // Real, found by S1/A/S1 (opened 10 min after the start), offer 12 min after.
        truth("S1", "A", TruthKind::Real, 2, 10, 3.0),
        // Real, missed.
        truth("S1", "B", TruthKind::Real, 5, 9, 3.0),
        // Real but too short to count; an episode on it still is a true positive.
        truth("S2", "C", TruthKind::Real, 20, 20, 3.0),
        // Phantom of a fast seller, found; phantom of a slow seller, missed.
        truth("S2", "D", TruthKind::Phantom, 1, 30, 2.0),
        truth("S2", "E", TruthKind::Phantom, 1, 30, 0.1),
    ];
    let ev = vec![
        opened("S1", "A", 1, Kind::Confirmed, 130),
        closed("S1", "A", 1, 700),
        opened("S2", "C", 1, Kind::Confirmed, 20 * 60 + 20), // within the grace after the end
        // A confirmed episode where the truth is a phantom: wrong kind, false positive.
        opened("S2", "D", 1, Kind::Confirmed, 100),
        closed("S2", "D", 1, 110),
        opened("S2", "D", 2, Kind::Suspected, 300),
        // Suspected on a key with no truth at all (a slow seller's natural gap).
        opened("S1", "Z", 1, Kind::Suspected, 400),
        closed("S1", "Z", 1, 500),
        // Confirmed long after the truth of S1/B ended (outside the grace): false positive.
        opened("S1", "B", 1, Kind::Confirmed, 12 * 60),
    ];
    let offers = vec![
        issued("S1/A/S1", 132, false, (0, 0)),
        issued("S1/A/S1", 132, false, (0, 0)), // duplicate
        issued("S2/D/S2", 340, true, (0, 0)),
        issued("S1/Z/S1", 401, true, (0, 0)),
        not_offered_ev("S1/B/S1", not_offered::Cause::NoSubstitute),
        not_offered_ev("S1/B/S1", not_offered::Cause::NoSubstitute),
    ];
    let r = score(params(), &truth, &episodes(&ev), &offers, &[]);
    let c = &r.confirmed;
    assert_eq!((c.tp_episodes, c.fp_episodes), (2, 2));
    assert_eq!((c.found, c.missed, c.too_short), (1, 1, 1));
    assert_eq!(c.precision(), Some(0.5));
    assert_eq!(c.recall(), Some(0.5));
    let te = c.to_episode.unwrap();
    assert_eq!((te.n, te.median), (1, 10.0));
    assert_eq!(c.to_offer.unwrap().median, 12.0);
    let s = &r.suspected;
    assert_eq!((s.tp_episodes, s.fp_episodes), (1, 1));
    assert_eq!((s.found, s.missed), (1, 1));
    assert_eq!((s.fast, s.slow), ((1, 1), (0, 1)));
    assert_eq!(s.to_episode.unwrap().median, 240.0);
    assert_eq!(s.to_offer.unwrap().median, 280.0);
    let o = &r.offers;
    assert_eq!(
        (o.issued, o.issued_suspected, o.issued_for_true_stockouts),
        (3, 2, 2)
    );
    assert_eq!(o.not_offered.get("CAUSE_NO_SUBSTITUTE"), Some(&1));
    assert_eq!(r.offers_per_store_day(), Some(3.0 / 4.0));
    assert_eq!(o.budget_mean, None);
    let text = r.to_string();
    assert!(text.contains("precision 50.0 %"), "{text}");
    assert!(text.contains("budget use: n/a"), "{text}");
}

#[test]
fn no_episodes_of_a_kind_reads_not_available() {
    let truth = vec![truth("S1", "A", TruthKind::Phantom, 1, 5, 2.0)];
    let r = score(params(), &truth, &[], &[], &[]);
    assert_eq!(r.suspected.precision(), None);
    assert_eq!(r.suspected.recall(), Some(0.0));
    assert_eq!(r.confirmed.recall(), None);
    assert_eq!(r.confirmed.to_offer, None);
    let text = r.to_string();
    assert!(text.contains("precision n/a"), "{text}");
    assert!(text.contains("cause -> offer issued:   n/a"), "{text}");
}

#[test]
fn budget_use_is_the_daily_peak_per_store() {
    let offers = vec![
        issued("S1/A/S1", 60, false, (1000, 200)),
        issued("S1/B/S1", 120, false, (1000, 600)),
        issued("S1/C/S1", 25 * 60, false, (1000, 100)), // next day
        issued("S2/A/S1", 60, false, (2000, 2000)),
    ];
    let r = score(params(), &[], &[], &offers, &[]);
    assert_eq!(r.offers.budget_store_days, 3);
    assert!((r.offers.budget_mean.unwrap() - (0.6 + 0.1 + 1.0) / 3.0).abs() < 1e-9);
    assert_eq!(r.offers.budget_max, Some(1.0));
}

#[test]
fn spread_uses_nearest_rank() {
    assert_eq!(Spread::of(vec![]), None);
    let s = Spread::of((1..=10).rev().map(f64::from).collect()).unwrap();
    assert_eq!((s.n, s.median, s.p90, s.max), (10, 5.0, 9.0, 10.0));
    let one = Spread::of(vec![-3.0]).unwrap();
    assert_eq!((one.median, one.p90, one.max), (-3.0, -3.0, -3.0));
}

#[test]
fn delays_count_open_hours_only() {
    let day = 86_400_000;
    let h = 3_600_000;
    assert_eq!(open_hours_between(0, 2 * day, (0, 24)), 48.0);
    // From 20:00 to 09:00 next day, open 07-22: 2 h + 2 h.
    assert_eq!(open_hours_between(20 * h, day + 9 * h, (7, 22)), 4.0);
    assert_eq!(open_hours_between(23 * h, day + 6 * h, (7, 22)), 0.0);
}

#[test]
fn each_store_delays_count_its_own_open_hours() {
    // The same 8 h wait from 20:00 to 04:00 for a phantom in two stores: a store open 07-22
    // was open 2 of those hours, a 24 h store all 8.
    let truth = vec![
        truth("S1", "A", TruthKind::Phantom, 20, 30, 2.0),
        truth("S2", "A", TruthKind::Phantom, 20, 30, 2.0),
    ];
    let ev = vec![
        opened("S1", "A", 1, Kind::Suspected, 28 * 60),
        opened("S2", "A", 1, Kind::Suspected, 28 * 60),
    ];
    let mut p = params();
    p.open_hours = (7, 22);
    p.store_hours.insert("S2".into(), (0, 24));
    assert_eq!(p.hours_of("S1"), (7, 22));
    let r = score(p, &truth, &episodes(&ev), &[], &[]);
    let mut d = r.suspected.bands[0].delays_h.clone();
    d.sort_by(f64::total_cmp);
    assert_eq!(d, [2.0, 8.0]);
}

fn check(store: &str, sku: &str, step: &str, at_min: i64, change: CheckChange) -> ShelfCheckEvent {
    let check_id = format!("{store}/{sku}/S1/check");
    ShelfCheckEvent {
        event_id: format!("{check_id}:{step}"),
        occurred_at_ms: T0 + at_min * MINUTE_MS,
        store_id: store.into(),
        check_id,
        stockout_id: format!("{store}/{sku}/S1"),
        sku: sku.into(),
        change: Some(change),
    }
}

fn answer(finding: ShelfFinding) -> CheckChange {
    CheckChange::Answered(shelfguard_events::floor::CheckAnswered {
        finding: finding as i32,
        by: "staff".into(),
        counted: None,
    })
}

#[test]
fn checks_are_counted_per_store_and_day_and_a_check_confirmed_episode_answers_its_phantom() {
    let truth = vec![
        truth("S-001", "A", TruthKind::Phantom, 1, 3, 2.0),
        truth("S-002", "C", TruthKind::Phantom, 30, 40, 2.0),
        // A real stockout the books hid (a phantom on a troubled SKU): a cycle count confirmed
        // the suspicion.
        truth("S-002", "G", TruthKind::Real, 10, 20, 2.0),
    ];
    let req = || CheckChange::Requested(Default::default());
    let checks = vec![
        // S-001/A: a true phantom, answered EMPTY at 2 h (its count ends the phantom there).
        check("S-001", "A", "requested", 100, req()),
        check("S-001", "A", "requested", 100, req()), // duplicate
        check("S-001", "A", "answered", 120, answer(ShelfFinding::Empty)),
        // S-001/B: stock is there, rightly.
        check("S-001", "B", "requested", 200, req()),
        check(
            "S-001",
            "B",
            "answered",
            210,
            answer(ShelfFinding::StockIsThere),
        ),
        // S-002/C on day 2: wrongly answered STOCK_IS_THERE.
        check("S-002", "C", "requested", 31 * 60, req()),
        check(
            "S-002",
            "C",
            "answered",
            31 * 60 + 10,
            answer(ShelfFinding::StockIsThere),
        ),
        // S-002/D: expired; S-002/E: withdrawn; S-002/F: still open.
        check("S-002", "D", "requested", 300, req()),
        check(
            "S-002",
            "D",
            "expired",
            345,
            CheckChange::Expired(Default::default()),
        ),
        check("S-002", "E", "requested", 400, req()),
        check(
            "S-002",
            "E",
            "withdrawn",
            410,
            CheckChange::Withdrawn(Default::default()),
        ),
        check("S-002", "F", "requested", 500, req()),
    ];
    let ev = vec![
        opened("S-001", "A", 1, Kind::Suspected, 100),
        closed("S-001", "A", 1, 120),
        opened("S-001", "A", 2, Kind::Confirmed, 120),
        opened("S-002", "B", 1, Kind::Confirmed, 120), // a real confirmed, no truth
        opened("S-002", "G", 1, Kind::Suspected, 630),
        closed("S-002", "G", 1, 660),
        opened("S-002", "G", 2, Kind::Confirmed, 660),
    ];
    let eps = episodes(&ev);
    assert_eq!(
        eps.iter().map(|e| e.from_check).collect::<Vec<_>>(),
        [false, true, false, false, true]
    );
    let offers = vec![issued("S-001/A/S2", 121, false, (0, 0))];
    let r = score(params(), &truth, &eps, &offers, &checks);
    let c = &r.checks;
    assert_eq!(c.requested, 6);
    assert_eq!(
        (
            c.empty,
            c.stock_there,
            c.expired,
            c.withdrawn,
            c.open_at_end
        ),
        (1, 2, 1, 1, 1)
    );
    assert_eq!((c.answers_right, c.answered()), (2, 3));
    assert_eq!(c.on_true_stockouts, 2);
    assert_eq!((c.confirmed_by_check, c.confirmed_by_check_true), (2, 2));
    // The phantom began at 1 h; the offer came at 121 min.
    assert_eq!(c.phantom_to_offer.unwrap().median, 61.0);
    assert_eq!(c.per_store_day.get(&("S-001".into(), 0)), Some(&2));
    assert_eq!(c.per_store_day.get(&("S-002".into(), 0)), Some(&3));
    assert_eq!(c.per_store_day.get(&("S-002".into(), 1)), Some(&1));
    assert_eq!(r.checks_per_store_day(), 6.0 / 4.0);
    // The check-confirmed episode is not a false real stockout, and its offer answers a phantom.
    assert_eq!((r.confirmed.tp_episodes, r.confirmed.fp_episodes), (0, 1));
    // ... but it found the real stockout all the same (recall).
    assert_eq!((r.confirmed.found, r.confirmed.missed), (1, 0));
    assert_eq!(r.offers.issued_for_true_stockouts, 1);
    let text = r.to_string();
    assert!(
        text.contains("checks per store per day: store d1 d2"),
        "{text}"
    );
    assert!(text.contains("    S-002       3  1"), "{text}");
    assert!(
        r.summary().contains("checks_per_store_day=1.500"),
        "{}",
        r.summary()
    );
}

#[test]
fn intervals_come_from_resampling_stores_and_hold_the_whole_weeks_figure() {
    // Store 1: its phantom found, one false alarm. Store 2: its phantom missed, no alarm.
    let truth = vec![
        truth("S-001", "A", TruthKind::Phantom, 2, 20, 2.0),
        truth("S-002", "B", TruthKind::Phantom, 2, 20, 2.0),
    ];
    let mut rates = HashMap::new();
    for (s, k) in [("S-001", "A"), ("S-001", "C"), ("S-002", "B")] {
        rates.insert((s.to_owned(), k.to_owned()), 2.0);
    }
    let p = Params { rates, ..params() };
    let events = vec![
        opened("S-001", "A", 1, Kind::Suspected, 5 * 60),
        closed("S-001", "A", 1, 21 * 60),
        opened("S-001", "C", 1, Kind::Suspected, 30 * 60),
        closed("S-001", "C", 1, 31 * 60),
    ];
    let r = score(p, &truth, &episodes(&events), &[], &[]);
    let (_, recall) = r.suspected_fast_medium();
    assert_eq!(recall, Some(0.5));
    let (lo, hi) = r.intervals.fast_medium_recall.unwrap();
    // Resamples hold both stores, only the first, or only the second.
    assert_eq!((lo, hi), (0.0, 1.0));
    let (lo, hi) = r.intervals.false_alarms_per_store_day.unwrap();
    assert!(lo == 0.0 && hi == 0.5, "{lo} {hi}");
    // Precision only exists in resamples that hold store 1: always 1 of 2.
    assert_eq!(r.intervals.fast_medium_precision, Some((0.5, 0.5)));
    assert!(
        r.to_string()
            .contains("95 % intervals (bootstrap over the 2 stores")
    );
}

#[test]
fn an_episode_offered_twice_counts_two_offers_answering_a_real_stockout() {
    let truth = vec![truth("S-001", "A", TruthKind::Real, 1, 30, 2.0)];
    let events = vec![opened("S-001", "A", 1, Kind::Confirmed, 61)];
    let first = issued("S-001/A/S1", 62, false, (0, 0));
    let again = OfferEvent {
        event_id: "S-001/A/S1/offer2:issued".into(),
        offer_id: "S-001/A/S1/offer2".into(),
        occurred_at_ms: first.occurred_at_ms + 3 * H,
        ..first.clone()
    };
    let r = score(params(), &truth, &episodes(&events), &[first, again], &[]);
    assert_eq!(r.offers.issued, 2);
    assert_eq!(r.offers.issued_for_true_stockouts, 2);
    assert_eq!(r.offers_true_share(), Some(1.0));
    assert_eq!(r.intervals.offers_true_share, Some((1.0, 1.0)));
}
