use super::*;
use shelfguard_events::inventory::ReorderState;

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn level(on_hand: i32, open: &str, last: Option<OutcomeStatus>) -> StockLevel {
    StockLevel {
        event_id: format!("l{on_hand}{open}"),
        occurred_at_ms: T0,
        store_id: "S1".into(),
        sku: "OIL-14".into(),
        on_hand,
        open_reorder_id: open.into(),
        last_reorder: last.map(|s| ReorderState {
            reorder_id: "S1/OIL-14/R3".into(),
            status: s as i32,
            failure_reason: "supplier out of stock".into(),
            decided_at_ms: T0 - HOUR,
            ..Default::default()
        }),
        failed_reorders_7d: 3,
        recent_failures: vec![ReorderState {
            reorder_id: "S1/OIL-14/R3".into(),
            status: OutcomeStatus::Failed as i32,
            failure_reason: "supplier out of stock".into(),
            decided_at_ms: T0 - HOUR,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A sale level of `sku` at `at` leaving `on_hand`.
fn sold(sku: &str, at: i64, on_hand: i32) -> StockLevel {
    StockLevel {
        event_id: format!("sale-{sku}-{at}"),
        occurred_at_ms: at,
        store_id: "S1".into(),
        sku: sku.into(),
        on_hand,
        cause: Cause::Sale as i32,
        sold: 1,
        ..Default::default()
    }
}

fn kinds(events: &[StockoutEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match (&e.change, e.change.as_ref()) {
            (Some(Change::Opened(o)), _) if o.kind == Kind::Suspected as i32 => "suspected",
            (Some(Change::Opened(_)), _) => "opened",
            (Some(Change::Closed(_)), _) => "closed",
            (None, _) => "-",
        })
        .collect()
}

fn decide(p: &Policy, item: &mut DetectorItem, l: StockLevel) -> Vec<&'static str> {
    kinds(&on_level(p, item, l))
}

#[test]
fn confirmed_opens_only_when_empty_and_blocked() {
    let p = Policy::default();
    let far = |mut l: StockLevel, hours: i64| {
        if let Some(r) = l.last_reorder.as_mut() {
            r.expected_at_ms = T0 + hours * HOUR;
        }
        l
    };
    let table: Vec<(StockLevel, Vec<&str>)> = vec![
        (level(0, "", Some(OutcomeStatus::Failed)), vec!["opened"]),
        (level(2, "", Some(OutcomeStatus::Failed)), vec![]),
        // A retry in flight does not unblock: the warehouse already failed.
        (
            level(0, "S1/OIL-14/R4", Some(OutcomeStatus::Failed)),
            vec!["opened"],
        ),
        (level(0, "", Some(OutcomeStatus::Fulfilled)), vec![]),
        (level(0, "", None), vec![]),
        // Fulfilled, but the goods come beyond the 24 h horizon: blocked.
        (
            far(level(0, "", Some(OutcomeStatus::Fulfilled)), 30),
            vec!["opened"],
        ),
        (far(level(0, "", Some(OutcomeStatus::Partial)), 12), vec![]),
    ];
    for (l, want) in table {
        let mut item = DetectorItem::default();
        assert_eq!(decide(&p, &mut item, l.clone()), want, "{l:?}");
    }
}

#[test]
fn one_episode_until_stock_returns_then_a_new_one() {
    let p = Policy::default();
    let mut item = DetectorItem::default();
    let opened = on_level(&p, &mut item, level(0, "", Some(OutcomeStatus::Failed)));
    assert_eq!(opened.len(), 1);
    let opened = &opened[0];
    assert_eq!(opened.stockout_id, "S1/OIL-14/S1");
    assert_eq!(opened.event_id, "so:S1/OIL-14/S1:opened");
    let Some(Change::Opened(o)) = &opened.change else {
        panic!()
    };
    let ev = o.evidence.as_ref().unwrap();
    assert_eq!(
        (ev.failed_reorders_7d, ev.last_failure_reason.as_str()),
        (3, "supplier out of stock")
    );
    assert_eq!(ev.attempts.len(), 1, "every failed attempt is evidence");
    assert_eq!(ev.attempts[0].reorder_id, "S1/OIL-14/R3");
    assert_eq!((o.kind, o.severity), (Kind::Confirmed as i32, 5));
    assert!(o.confidence > 0.9);
    assert!(
        decide(&p, &mut item, level(0, "", Some(OutcomeStatus::Failed))).is_empty(),
        "no second episode"
    );
    let closed = on_level(&p, &mut item, level(5, "", Some(OutcomeStatus::Failed)));
    assert_eq!(kinds(&closed), ["closed"]);
    assert_eq!(closed[0].stockout_id, "S1/OIL-14/S1");
    assert!(decide(&p, &mut item, level(4, "", None)).is_empty());
    let again = on_level(&p, &mut item, level(0, "", Some(OutcomeStatus::Failed)));
    assert_eq!(again[0].stockout_id, "S1/OIL-14/S2");
}

#[test]
fn a_fulfilled_reorder_due_soon_closes_the_episode() {
    let p = Policy::default();
    let mut item = DetectorItem::default();
    decide(&p, &mut item, level(0, "", Some(OutcomeStatus::Failed)));
    let mut l = level(0, "", Some(OutcomeStatus::Fulfilled));
    l.occurred_at_ms = T0 + HOUR;
    if let Some(r) = l.last_reorder.as_mut() {
        r.decided_at_ms = T0 + HOUR;
        r.expected_at_ms = T0 + 5 * HOUR;
    }
    let out = on_level(&p, &mut item, l);
    assert_eq!(kinds(&out), ["closed"]);
    let Some(Change::Closed(c)) = &out[0].change else {
        panic!()
    };
    assert!(c.reason.contains("reorder fulfilled"), "{}", c.reason);
}

#[test]
fn severity_grows_with_failures_and_delay() {
    let p = Policy::default();
    let mut l = level(0, "", Some(OutcomeStatus::Failed));
    l.failed_reorders_7d = 1;
    if let Some(r) = l.last_reorder.as_mut() {
        r.expected_at_ms = T0 + 2 * HOUR;
    }
    assert_eq!(severity(&p, &l), 2);
    l.failed_reorders_7d = 2;
    assert_eq!(severity(&p, &l), 3);
    if let Some(r) = l.last_reorder.as_mut() {
        r.expected_at_ms = 0;
    }
    assert_eq!(severity(&p, &l), 4, "nobody knows when it comes back");
    l.failed_reorders_7d = 9;
    assert_eq!(severity(&p, &l), 5);
}

#[test]
fn a_visible_threshold_counts_a_nearly_empty_shelf_as_empty() {
    let p = Policy {
        empty_at_units: 1,
        ..Policy::default()
    };
    let mut item = DetectorItem::default();
    assert_eq!(
        decide(&p, &mut item, level(1, "", Some(OutcomeStatus::Failed))),
        ["opened"]
    );
}

/// Feeds `n` sales of OIL-14 every `every` ms from T0, with plenty on hand.
fn history(p: &Policy, item: &mut DetectorItem, n: i64, every: i64) -> i64 {
    for i in 0..n {
        on_level(p, item, sold("OIL-14", T0 + i * every, 100));
    }
    T0 + (n - 1) * every
}

#[test]
fn a_fast_seller_that_stops_selling_is_suspected_once_lambda_t_reaches_ln_1_over_alpha() {
    let p = Policy::default();
    let mut item = DetectorItem::default();
    // One sale every 6 minutes: 10 an hour.
    let last = history(&p, &mut item, 60, 6 * MIN);
    let lambda_h = rate(&p, &item).unwrap() * HOUR_MS;
    assert!((lambda_h - 10.0).abs() < 0.5, "learned {lambda_h}/h");
    // ln(100)/10 per hour = 27.6 min, but at least the 60 min minimum gap.
    let due = phantom_due(&p, &item).unwrap();
    assert_eq!(due, last + 60 * MIN);
    assert!(on_time(&p, &mut item, due - 1).is_empty(), "not yet");
    let out = on_time(&p, &mut item, due);
    assert_eq!(kinds(&out), ["suspected"]);
    let Some(Change::Opened(o)) = &out[0].change else {
        panic!()
    };
    let ev = o.evidence.as_ref().unwrap();
    assert_eq!(ev.gap_ms, 60 * MIN);
    assert!(
        ev.expected_sales_in_gap >= 4.6,
        "{}",
        ev.expected_sales_in_gap
    );
    assert!(
        o.confidence < 0.95 && o.confidence > 0.5,
        "{}",
        o.confidence
    );
    assert_eq!(phantom_due(&p, &item), None, "one open episode at most");
    // Sales resume: it closes.
    let out = on_level(&p, &mut item, sold("OIL-14", due + MIN, 99));
    assert_eq!(kinds(&out), ["closed"]);
}

#[test]
fn without_the_minimum_gap_the_rule_is_exactly_lambda_t() {
    let p = Policy {
        phantom_min_gap_minutes: 0,
        ..Policy::default()
    };
    let mut item = DetectorItem::default();
    let last = history(&p, &mut item, 60, 6 * MIN);
    let due = phantom_due(&p, &item).unwrap();
    let lambda = rate(&p, &item).unwrap();
    assert!(((due - last) as f64 * lambda - 100f64.ln()).abs() < 0.01);
    // With α per day, a 10/h seller needs ln(240/0.01) expected sales instead.
    let p = Policy {
        phantom_alpha_scope: "day".into(),
        ..p
    };
    let due = phantom_due(&p, &item).unwrap();
    assert!(((due - last) as f64 * lambda - 24_000f64.ln()).abs() < 0.05);
}

#[test]
fn slow_sellers_never_trigger_it() {
    let p = Policy::default();
    let mut item = DetectorItem::default();
    // One sale a day for a week: not enough history to trust a rate.
    history(&p, &mut item, 7, 24 * HOUR);
    assert_eq!(phantom_due(&p, &item), None);
    assert!(on_time(&p, &mut item, T0 + 30 * 24 * HOUR).is_empty());
    // A steady seller at one sale every two hours has history, but is below 1/h.
    let mut item = DetectorItem::default();
    history(&p, &mut item, 40, 2 * HOUR);
    assert_eq!(phantom_due(&p, &item), None);
}

#[test]
fn a_count_closes_a_suspected_episode_and_may_confirm_an_empty_shelf() {
    let p = Policy::default();
    let mut item = DetectorItem::default();
    let last = history(&p, &mut item, 60, 6 * MIN);
    assert_eq!(
        kinds(&on_time(&p, &mut item, last + 2 * HOUR)),
        ["suspected"]
    );
    let mut count = level(0, "", Some(OutcomeStatus::Failed));
    count.occurred_at_ms = last + 3 * HOUR;
    count.cause = Cause::Count as i32;
    count.count_discrepancy = -100;
    let out = on_level(&p, &mut item, count);
    assert_eq!(kinds(&out), ["closed", "opened"]);
    assert_eq!(out[0].stockout_id, "S1/OIL-14/S1");
    assert_eq!(out[1].stockout_id, "S1/OIL-14/S2");
}

#[test]
fn a_due_check_visits_the_quiet_key_on_another_skus_level() {
    let p = Policy::default();
    let mut d = Detector::new(p.clone());
    let mut item = DetectorItem::default();
    let last = history(&p, &mut item, 60, 6 * MIN);
    d.restored("S1/OIL-14", &item);
    let other = sold("SOCKS", last + 30 * MIN, 9);
    assert_eq!(d.keys(&other), ["S1/SOCKS"]);
    assert!(d.due_keys(&other).is_empty());
    let other = sold("SOCKS", last + 61 * MIN, 8);
    assert_eq!(
        d.keys(&other),
        ["S1/SOCKS"],
        "the level is about socks only"
    );
    assert_eq!(d.due_keys(&other), ["S1/OIL-14"]);
    let view = shelfguard_runtime::state::PartitionState::<DetectorItem>::default();
    let out = d
        .on_due("S1/OIL-14", &mut item, other.occurred_at_ms, &view)
        .unwrap();
    assert_eq!(out.len(), 1);
    let opened =
        <shelfguard_events::stockout::StockoutEvent as shelfguard_events::Message>::decode(
            out[0].payload.as_slice(),
        )
        .unwrap();
    assert_eq!(
        opened.sku, "OIL-14",
        "the quiet SKU's episode, not the socks'"
    );
    assert!(d.due_keys(&other).is_empty(), "checked: no longer due");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn arb_level() -> impl Strategy<Value = (i64, StockLevel)> {
        (
            0..3i64,
            0..4i32,
            prop::option::of(prop_oneof![
                Just(OutcomeStatus::Failed),
                Just(OutcomeStatus::Fulfilled)
            ]),
            any::<bool>(),
            0..3u8,
            0..48i64,
        )
            .prop_map(|(dt, on_hand, last, sale, cause, exp_h)| {
                let mut l = level(on_hand, "", last);
                if let Some(r) = l.last_reorder.as_mut() {
                    r.expected_at_ms = if exp_h == 0 { 0 } else { T0 + exp_h * HOUR };
                }
                if sale {
                    l.cause = Cause::Sale as i32;
                    l.sold = 1;
                } else if cause == 1 {
                    l.cause = Cause::Count as i32;
                }
                (dt * 20 * MIN, l)
            })
    }

    proptest! {
        /// Whatever the order or repetition of levels and checks: opens and closes alternate,
        /// so at most one episode is open, and the state says which.
        #[test]
        fn at_most_one_open_episode(steps in proptest::collection::vec((arb_level(), any::<bool>()), 1..80)) {
            let p = Policy { phantom_min_sales: 3.0, phantom_min_sales_per_hour: 0.0, ..Policy::default() };
            let mut item = DetectorItem::default();
            let mut now = T0;
            let mut open: Option<String> = None;
            for ((dt, mut l), tick) in steps {
                now += dt;
                l.occurred_at_ms = now;
                if let Some(r) = l.last_reorder.as_mut() { r.decided_at_ms = now; }
                let out = if tick { on_time(&p, &mut item, now) } else { on_level(&p, &mut item, l) };
                for e in out {
                    match e.change {
                        Some(Change::Opened(_)) => {
                            prop_assert!(open.is_none(), "opened {} while {:?} open", e.stockout_id, open);
                            open = Some(e.stockout_id);
                        }
                        Some(Change::Closed(_)) => {
                            prop_assert_eq!(open.take(), Some(e.stockout_id));
                        }
                        None => prop_assert!(false),
                    }
                }
                prop_assert_eq!(open.clone().unwrap_or_default(), item.open_stockout_id.clone());
            }
        }
    }
}

#[test]
fn an_alpha_out_of_range_is_refused_at_start() {
    use clap::Parser as _;
    let err = crate::Config::try_parse_from(["stockout-detector", "--phantom-alpha", "2"])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("outside (0, 0.5]"), "{err}");
    assert!(crate::Config::try_parse_from(["stockout-detector", "--phantom-alpha", "0"]).is_err());
    let ok =
        crate::Config::try_parse_from(["stockout-detector", "--phantom-alpha", "0.2"]).unwrap();
    assert_eq!(ok.policy.phantom_alpha, 0.2);
}

#[test]
fn other_policy_settings_out_of_range_are_refused_at_start() {
    use clap::Parser as _;
    for (arg, why) in [
        ("--empty-at-units=-1", "not in 0..=1000000"),
        ("--restock-horizon-hours=-1", "not in 0..=8760"),
        ("--phantom-min-sales=-0.5", "at least 0"),
        ("--phantom-min-sales-per-hour=NaN", "at least 0"),
        ("--phantom-min-gap-minutes=-5", "not in 0..=43200"),
        ("--sales-rate-half-life-days=0", "at least 0.01"),
        ("--sales-rate-half-life-days=-7", "at least 0.01"),
    ] {
        let err = crate::Config::try_parse_from(["stockout-detector", arg])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(why), "{arg}: {err:?}");
    }
    let parsed = crate::Config::try_parse_from(["stockout-detector"])
        .unwrap()
        .policy;
    assert_eq!(format!("{parsed:?}"), format!("{:?}", Policy::default()));
    let edge =
        crate::Config::try_parse_from(["stockout-detector", "--sales-rate-half-life-days=0.01"])
            .unwrap();
    assert_eq!(edge.policy.sales_rate_half_life_days, 0.01);
}
