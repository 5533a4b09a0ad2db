#![allow(clippy::unwrap_used)]
use std::collections::HashMap;

use shelfguard_events::{Message, validate};

use super::*;

/// One store, one day, no causes: only shoppers (and what a test adds by hand).
fn quiet(days: u32) -> Week {
    Week::new(WeekConfig {
        stores: 1,
        days,
        troubled_per_store_day: 0.0,
        phantoms_per_store_day: 0.0,
        ..WeekConfig::default()
    })
    .unwrap()
}

fn request(w: &Week, i: usize, n: u32, at_ms: i64) -> ReorderRequest {
    let sku = w.catalog[i].sku.clone();
    let reorder_id = format!("S-001/{sku}/R{n}");
    ReorderRequest {
        event_id: format!("rr:{reorder_id}"),
        occurred_at_ms: at_ms,
        store_id: "S-001".into(),
        reorder_id,
        sku,
        quantity: 20,
        on_hand: 0,
    }
}

/// Runs steps from `from` (inclusive) to `to` (exclusive), returning every batch merged.
fn run(w: &mut Week, from: i64, to: i64) -> Batch {
    let mut all = Batch::default();
    let mut t = from;
    while t < to {
        let a = w.step_start(t);
        let b = w.baskets(t, t + w.cfg.step_ms);
        for x in [a, b] {
            all.movements.extend(x.movements);
            all.outcomes.extend(x.outcomes);
            all.sales.extend(x.sales);
            all.expected.extend(x.expected);
            all.responses.extend(x.responses);
        }
        t += w.cfg.step_ms;
    }
    all
}

const START: i64 = 1_735_689_600_000;

#[test]
fn config_is_checked() {
    assert!(WeekConfig::default().check().is_ok());
    for bad in [
        WeekConfig {
            stores: 0,
            ..WeekConfig::default()
        },
        WeekConfig {
            days: 0,
            ..WeekConfig::default()
        },
        WeekConfig {
            step_ms: 7 * MINUTE_MS,
            ..WeekConfig::default()
        },
        WeekConfig {
            baskets_per_hour: 0.0,
            ..WeekConfig::default()
        },
    ] {
        assert!(Week::new(bad).is_err());
    }
    let c = WeekConfig::default();
    assert_eq!(c.end_ms() - c.start_ms, 7 * 24 * HOUR_MS);
    assert_eq!(c.steps(), 7 * 24 * 4);
}

#[test]
fn reorder_levels_follow_the_demand() {
    let w = quiet(1);
    let by_share = |i: usize| w.popularity.share(i);
    let top = (0..w.catalog.len())
        .max_by(|&a, &b| by_share(a).total_cmp(&by_share(b)))
        .unwrap();
    let bottom = (0..w.catalog.len())
        .min_by(|&a, &b| by_share(a).total_cmp(&by_share(b)))
        .unwrap();
    let (t, b) = (&w.catalog[top], &w.catalog[bottom]);
    assert!(
        t.reorder_point > 10 * b.reorder_point.max(1) / 2,
        "{t:?} {b:?}"
    );
    for p in &w.catalog {
        assert!(p.reorder_point >= 2 && p.order_up_to >= p.reorder_point + 6);
        validate::product(&p.encode_to_vec()).unwrap();
    }
    // Opening stock lies above the reorder point: nothing is reordered at the start.
    let opening = w.opening_counts();
    assert_eq!(opening.movements.len(), w.catalog.len());
    for (m, p) in opening.movements.iter().zip(&w.catalog) {
        assert!(m.quantity > p.reorder_point && m.quantity <= p.order_up_to);
        assert_eq!(m.occurred_at_ms, START);
        validate::movement(&m.encode_to_vec()).unwrap();
    }
}

#[test]
fn same_seed_same_week() {
    let (mut a, mut b) = (quiet(1), quiet(1));
    let (x, y) = (
        run(&mut a, START, START + 6 * HOUR_MS),
        run(&mut b, START, START + 6 * HOUR_MS),
    );
    assert_eq!(x, y);
    assert!(x.sales.len() > 100, "{} baskets in 6 h", x.sales.len());
}

/// With no warehouse at all, shelves run dry: nobody buys what is not there, the books
/// follow the shelf, and the dropped lines are counted as lost sales.
#[test]
fn shoppers_never_buy_from_an_empty_shelf() {
    let mut w = quiet(3);
    let opening: Vec<i32> = w.items[0].iter().map(|it| it.shelf).collect();
    let all = run(&mut w, START, START + 3 * 24 * HOUR_MS);
    let mut sold: HashMap<&str, i32> = HashMap::new();
    let mut last = START;
    for s in &all.sales {
        assert!(s.occurred_at_ms > last || s.occurred_at_ms == last && last == START);
        last = s.occurred_at_ms;
        validate::sale(&s.encode_to_vec()).unwrap();
        for l in &s.lines {
            *sold.entry(l.sku.as_str()).or_default() += l.quantity;
        }
    }
    for (i, p) in w.catalog.iter().enumerate() {
        let n = sold.get(p.sku.as_str()).copied().unwrap_or(0);
        assert!(n <= opening[i], "{} sold {n} of {}", p.sku, opening[i]);
        assert_eq!(w.items[0][i].shelf, opening[i] - n);
        assert_eq!(w.items[0][i].books, w.items[0][i].shelf);
    }
    assert!(all.expected.iter().all(|(_, _, n)| *n >= 0));
    assert!(w.stats.lines_lost > 0, "the best sellers ran out");
    // No phantom, no failed reorder: no truth interval at all.
    assert!(w.finish(START + 3 * 24 * HOUR_MS).is_empty());
}

#[test]
fn a_troubled_reorder_fails_then_ships_and_the_real_interval_covers_empty_and_blocked() {
    let mut w = quiet(3);
    let i = 5;
    w.items[0][i].trouble = Some(Trouble {
        armed_at_ms: START,
        lasts_ms: 10 * HOUR_MS,
        started_at_ms: None,
    });
    w.items[0][i].shelf = 2;
    w.items[0][i].books = 2;
    // Request at 01:00 fails 10-90 min later: applied at the next step start after that.
    w.on_request(&request(&w, i, 1, START + HOUR_MS));
    w.on_request(&request(&w, i, 1, START + HOUR_MS)); // redelivered: ignored
    assert_eq!(w.stats.requests, 1);
    let mut failed_at = None;
    let mut t = START + HOUR_MS;
    while failed_at.is_none() {
        t += w.cfg.step_ms;
        let b = w.step_start(t);
        if let Some(o) = b.outcomes.first() {
            assert_eq!(o.status, OutcomeStatus::Failed as i32);
            assert!(FAILURE_REASONS.contains(&o.failure_reason.as_str()));
            assert_eq!(o.occurred_at_ms, t, "stamped with the step start");
            validate::outcome(&o.encode_to_vec()).unwrap();
            failed_at = Some(t);
        }
        assert!(t <= START + HOUR_MS + 90 * MINUTE_MS + w.cfg.step_ms);
    }
    assert!(w.items[0][i].blocked);
    assert_eq!(w.stats.troubled_started, 1);
    // The shelf still holds 2: not a real stockout yet. It empties at 04:00.
    let empty_at = START + 4 * HOUR_MS;
    w.items[0][i].shelf = 0;
    w.items[0][i].books = 0;
    w.observe(0, i, empty_at);
    // A retry inside the trouble window fails again; one after it (failures began at 01:00
    // and last 10 h) is fulfilled, which ends the interval (the goods are on their way).
    w.on_request(&request(&w, i, 2, START + 6 * HOUR_MS));
    let step = w.cfg.step_ms;
    let b = run(&mut w, START + 6 * HOUR_MS, START + 8 * HOUR_MS + step);
    assert!(
        b.outcomes
            .iter()
            .any(|o| o.status == OutcomeStatus::Failed as i32)
    );
    w.on_request(&request(&w, i, 3, START + 12 * HOUR_MS));
    let mut fulfilled_at = None;
    let mut t = START + 12 * HOUR_MS;
    while fulfilled_at.is_none() {
        t += w.cfg.step_ms;
        if let Some(o) = w.step_start(t).outcomes.first() {
            assert_eq!(o.status, OutcomeStatus::Fulfilled as i32);
            assert_eq!(o.quantity_shipped, 20);
            assert!(o.expected_at_ms >= t + 2 * HOUR_MS);
            fulfilled_at = Some(t);
        }
    }
    let truth: Vec<Truth> = w
        .finish(START + 3 * 24 * HOUR_MS)
        .into_iter()
        .filter(|x| x.sku == w.catalog[i].sku)
        .collect();
    assert_eq!(truth.len(), 1, "{truth:?}");
    assert_eq!(truth[0].kind, TruthKind::Real);
    assert_eq!(
        truth[0].start_ms, empty_at,
        "the later of empty and the failure"
    );
    assert_eq!(truth[0].end_ms, fulfilled_at.unwrap());
    assert!(truth[0].sales_per_hour > 0.0);
}

#[test]
fn a_failure_after_the_shelf_emptied_starts_the_real_interval() {
    let mut w = quiet(1);
    let i = 7;
    w.items[0][i].shelf = 0;
    w.items[0][i].books = 0;
    w.observe(0, i, START + HOUR_MS);
    w.items[0][i].trouble = Some(Trouble {
        armed_at_ms: START,
        lasts_ms: 48 * HOUR_MS,
        started_at_ms: None,
    });
    w.on_request(&request(&w, i, 1, START + 2 * HOUR_MS));
    let b = run(&mut w, START + 2 * HOUR_MS, START + 4 * HOUR_MS);
    let failed = b
        .outcomes
        .iter()
        .find(|o| o.sku == w.catalog[i].sku)
        .unwrap();
    let truth = w.finish(START + 24 * HOUR_MS);
    let real: Vec<&Truth> = truth.iter().filter(|t| t.sku == w.catalog[i].sku).collect();
    assert_eq!(real.len(), 1);
    assert_eq!(real[0].start_ms, failed.occurred_at_ms);
    assert_eq!(real[0].end_ms, START + 24 * HOUR_MS, "still on at the end");
}

/// A shipment on its way: a second request waits for it and is answered (nothing to ship)
/// the step after the goods arrived, so inventory never orders the same goods twice.
#[test]
fn requests_during_a_delivery_are_answered_after_it_arrives() {
    let mut w = quiet(2);
    let i = 3;
    w.on_request(&request(&w, i, 1, START));
    w.on_request(&request(&w, i, 2, START + 30 * MINUTE_MS));
    let step = w.cfg.step_ms;
    let all = run(&mut w, START + step, START + 24 * HOUR_MS);
    let sku = &w.catalog[i].sku;
    let outcomes: Vec<&ReorderOutcome> = all.outcomes.iter().filter(|o| &o.sku == sku).collect();
    let receipts: Vec<&StockMovement> = all
        .movements
        .iter()
        .filter(|m| &m.sku == sku && m.kind == MovementKind::Receipt as i32)
        .collect();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].quantity, 20);
    validate::movement(&receipts[0].encode_to_vec()).unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(
        (
            outcomes[0].quantity_shipped,
            outcomes[0].expected_at_ms > outcomes[0].occurred_at_ms
        ),
        (20, true)
    );
    assert_eq!(outcomes[1].reorder_id, format!("S-001/{sku}/R2"));
    assert_eq!(outcomes[1].status, OutcomeStatus::Fulfilled as i32);
    assert_eq!(outcomes[1].quantity_shipped, 0);
    assert_eq!(
        outcomes[1].occurred_at_ms,
        receipts[0].occurred_at_ms + w.cfg.step_ms
    );
    assert_eq!(w.stats.receipts, 1);
}

#[test]
fn a_phantom_empties_the_shelf_but_not_the_books_until_found_or_counted() {
    let mut w = quiet(4);
    let at = START + 8 * HOUR_MS + 15 * MINUTE_MS; // not a gap-scan time
    w.schedule(at, Action::PhantomStart { store: 0 });
    run(&mut w, START, at);
    let before: Vec<(i32, i32)> = w.items[0].iter().map(|x| (x.shelf, x.books)).collect();
    let b = w.step_start(at);
    assert!(b.movements.is_empty(), "a phantom publishes nothing");
    assert_eq!(w.stats.phantoms, 1);
    let i = w.items[0].iter().position(|x| x.phantom).unwrap();
    let sku = w.catalog[i].sku.clone();
    assert_eq!(w.items[0][i].shelf, 0);
    assert_eq!(w.items[0][i].books, before[i].1);
    assert_eq!(w.items[0][i].hidden, before[i].0);
    let step = w.cfg.step_ms;
    let rest = run(&mut w, at + step, START + 4 * 24 * HOUR_MS);
    assert_eq!(w.stats.phantoms_found + w.stats.phantoms_counted, 1);
    let count = rest
        .movements
        .iter()
        .find(|m| m.sku == sku && m.event_id.starts_with("wk-count-"));
    let first_sale_after = rest
        .sales
        .iter()
        .find(|s| s.lines.iter().any(|l| l.sku == sku))
        .map(|s| s.occurred_at_ms);
    let truth = w.finish(START + 4 * 24 * HOUR_MS);
    let ph: Vec<&Truth> = truth
        .iter()
        .filter(|t| t.sku == sku && t.kind == TruthKind::Phantom)
        .collect();
    assert_eq!(ph.len(), 1, "{truth:?}");
    assert_eq!(ph[0].start_ms, at);
    if w.stats.phantoms_counted == 1 {
        // Counted: the books learn the truth (empty), which ends the phantom.
        let c = count.unwrap();
        assert_eq!(c.kind, MovementKind::Count as i32);
        assert_eq!(c.quantity, 0);
        assert_eq!(ph[0].end_ms, c.occurred_at_ms);
        assert!((12 * HOUR_MS..=48 * HOUR_MS + w.cfg.step_ms).contains(&(c.occurred_at_ms - at)));
        assert!(first_sale_after.is_none_or(|s| s > c.occurred_at_ms));
    } else {
        // Found: the shelf refills silently and sales resume after the end.
        assert_eq!(w.stats.phantoms_found, 1);
        assert!(count.is_none());
        assert!((2 * HOUR_MS..=36 * HOUR_MS + w.cfg.step_ms).contains(&(ph[0].end_ms - at)));
        assert!(first_sale_after.is_none_or(|s| s > ph[0].end_ms));
    }
}

#[test]
fn gap_scans_count_what_the_books_show_empty() {
    let mut w = quiet(1);
    let i = 11;
    w.items[0][i].shelf = 0;
    w.items[0][i].books = 0;
    let scan = START + 4 * HOUR_MS;
    let sku = w.catalog[i].sku.clone();
    let b = w.step_start(scan - w.cfg.step_ms);
    assert!(b.movements.iter().all(|m| m.sku != sku));
    let b = w.step_start(scan);
    let m = b.movements.iter().find(|m| m.sku == sku).unwrap();
    assert_eq!(
        (m.kind, m.quantity, m.occurred_at_ms),
        (MovementKind::Count as i32, 0, scan)
    );
    assert!(b.expected.contains(&(m.event_id.clone(), sku.clone(), 0)));
    assert!(w.stats.gap_scans >= 1);
}

#[test]
fn causes_are_scheduled_from_the_rates() {
    let w = Week::new(WeekConfig {
        stores: 4,
        days: 7,
        ..WeekConfig::default()
    })
    .unwrap();
    // 0.5 per store-day over 7 days: 4 (3.5 rounded) per store.
    assert_eq!(w.stats.troubled, 16);
    let phantoms = w
        .agenda
        .values()
        .filter(|a| matches!(a, Action::PhantomStart { .. }))
        .count();
    assert_eq!(phantoms, 16);
    assert_eq!(w.store_ids(), ["S-001", "S-002", "S-003", "S-004"]);
}

#[test]
fn closed_stores_sell_nothing_and_overdispersion_moves_daily_sales() {
    let mut w = Week::new(WeekConfig {
        stores: 1,
        days: 2,
        troubled_per_store_day: 0.0,
        phantoms_per_store_day: 0.0,
        open_hours: (7, 22),
        ..WeekConfig::default()
    })
    .unwrap();
    let (start, end) = (w.cfg.start_ms, w.cfg.end_ms());
    let b = run(&mut w, start, end);
    assert!(b.sales.len() > 500, "{}", b.sales.len());
    for s in &b.sales {
        let h = (s.occurred_at_ms.rem_euclid(24 * HOUR_MS)) / HOUR_MS;
        assert!((7..22).contains(&h), "a basket at {h}:00");
    }
    assert!(
        Week::new(WeekConfig {
            open_hours: (22, 7),
            ..WeekConfig::default()
        })
        .is_err()
    );
    // Day factors: mean about 1, spread about 1/sqrt(k), the same for the same seed.
    let w = Week::new(WeekConfig {
        dispersion: Some(4.0),
        ..WeekConfig::default()
    })
    .unwrap();
    let f: Vec<f64> = (0..2000)
        .map(|i| w.day_factor(i % 20, i / 20, start))
        .collect();
    let mean = f.iter().sum::<f64>() / f.len() as f64;
    let sd = (f.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f.len() as f64).sqrt();
    assert!((mean - 1.0).abs() < 0.05, "{mean}");
    assert!((sd - 0.5).abs() < 0.05, "{sd}");
    assert_eq!(w.day_factor(3, 7, start), w.day_factor(3, 7, start));
}

fn requested(w: &Week, i: usize, at_ms: i64) -> ShelfCheckEvent {
    let sku = w.catalog[i].sku.clone();
    let check_id = format!("S-001/{sku}/S1/check");
    ShelfCheckEvent {
        event_id: format!("{check_id}:requested"),
        occurred_at_ms: at_ms,
        store_id: "S-001".into(),
        check_id,
        stockout_id: format!("S-001/{sku}/S1"),
        sku,
        change: Some(shelf_check_event::Change::Requested(Default::default())),
    }
}

#[test]
fn staff_answer_a_check_from_the_truth_and_an_empty_answer_ends_the_phantom() {
    let mut w = Week::new(WeekConfig {
        stores: 1,
        days: 3,
        troubled_per_store_day: 0.0,
        phantoms_per_store_day: 0.0,
        check_error_rate: 0.0,
        ..WeekConfig::default()
    })
    .unwrap();
    let at = START + 8 * HOUR_MS + 15 * MINUTE_MS;
    w.schedule(at, Action::PhantomStart { store: 0 });
    let step = w.cfg.step_ms;
    run(&mut w, START, at + step);
    let i = w.items[0].iter().position(|x| x.phantom).unwrap();
    let asked = at + 2 * HOUR_MS + MINUTE_MS;
    run(&mut w, at + step, asked - MINUTE_MS);
    let c = requested(&w, i, asked);
    w.on_check_requested(&c);
    w.on_check_requested(&c); // handed over twice: answered once
    let b = run(&mut w, asked - MINUTE_MS, asked + HOUR_MS);
    assert_eq!(b.responses.len(), 1, "{:?}", b.responses);
    let r = &b.responses[0];
    assert_eq!(r.finding, ShelfFinding::Empty as i32);
    assert_eq!(r.check_id, c.check_id);
    assert!(validate::staff_response(&r.encode_to_vec()).is_ok());
    let delay = r.occurred_at_ms - asked;
    assert!((5 * MINUTE_MS..=20 * MINUTE_MS).contains(&delay), "{delay}");
    assert_eq!(w.stats.answers_empty, 1);
    // The count is booked: books 0, the phantom ends there and its scheduled end is void.
    let booked = r.occurred_at_ms;
    assert_eq!(w.on_check_booked("S-001", &c.sku, booked), Some(0));
    assert_eq!(w.shelf_and_books("S-001", &c.sku), Some((0, 0)));
    run(&mut w, asked + HOUR_MS, START + 3 * 24 * HOUR_MS);
    assert_eq!(w.stats.phantoms_found + w.stats.phantoms_counted, 0);
    assert_eq!(w.stats.phantoms_checked, 1);
    let truth = w.finish(START + 3 * 24 * HOUR_MS);
    let ph: Vec<&Truth> = truth
        .iter()
        .filter(|t| t.sku == c.sku && t.kind == TruthKind::Phantom)
        .collect();
    assert_eq!(ph.len(), 1);
    assert_eq!((ph[0].start_ms, ph[0].end_ms), (at, booked));
}

#[test]
fn a_stocked_shelf_is_there_a_wrong_answer_comes_at_the_error_rate_and_late_checks_expire() {
    for (error_rate, want) in [
        (0.0, ShelfFinding::StockIsThere),
        (1.0, ShelfFinding::Empty),
    ] {
        let mut w = Week::new(WeekConfig {
            stores: 1,
            days: 1,
            troubled_per_store_day: 0.0,
            phantoms_per_store_day: 0.0,
            check_error_rate: error_rate,
            ..WeekConfig::default()
        })
        .unwrap();
        let asked = START + 3 * HOUR_MS;
        run(&mut w, START, asked);
        let i = (0..w.catalog.len())
            .find(|&i| w.items[0][i].shelf > 0)
            .unwrap();
        w.on_check_requested(&requested(&w, i, asked));
        let b = run(&mut w, asked, asked + HOUR_MS);
        assert_eq!(b.responses.len(), 1);
        assert_eq!(b.responses[0].finding, want as i32);
        assert_eq!(w.stats.answers_wrong, error_rate as u64);
    }
    // Seen late (the driver lagged): answered dated when staff answered, after the last change
    // of the books; a stocked shelf whose books changed after the expiry: no answer, it expires.
    let mut w = quiet(1);
    let now = START + 5 * HOUR_MS;
    run(&mut w, START, now);
    let asked = now - 40 * MINUTE_MS;
    let quiet_item = (0..w.catalog.len())
        .find(|&i| w.items[0][i].books_at_ms < asked)
        .unwrap();
    w.on_check_requested(&requested(&w, quiet_item, asked));
    let step = w.cfg.step_ms;
    let b = run(&mut w, now, now + step);
    assert_eq!(b.responses.len(), 1);
    assert!(b.responses[0].occurred_at_ms < now, "{:?}", b.responses[0]);
    let busy = (0..w.catalog.len())
        .find(|&i| w.items[0][i].books_at_ms >= now)
        .unwrap();
    let late = now + step;
    w.on_check_requested(&requested(&w, busy, now - 50 * MINUTE_MS));
    let b = run(&mut w, late, late + HOUR_MS);
    assert!(b.responses.is_empty(), "{:?}", b.responses);
    assert_eq!(w.stats.checks_unanswered, 1);
    assert!(
        WeekConfig {
            check_error_rate: 1.5,
            ..WeekConfig::default()
        }
        .check()
        .is_err()
    );
}

/// The realistic preset for `stores` stores and `days` days, without the causes that a test
/// does not look at.
fn realistic(stores: usize, days: u32) -> WeekConfig {
    WeekConfig {
        stores,
        days,
        ..WeekConfig::realistic()
    }
}

#[test]
fn the_default_week_keeps_its_model_and_the_preset_checks() {
    let d = WeekConfig::default();
    assert_eq!(d.all_day_share, 0.0);
    assert!(!d.hour_of_week);
    assert_eq!(d.traffic_shape, None);
    assert_eq!(d.phantom_sku_share_per_week, None);
    assert_eq!(d.phantom_notice_median_open_hours, None);
    assert_eq!(d.new_skus, 0);
    let w = Week::new(d).unwrap();
    assert!(w.store_hours().values().all(|&h| h == (0, 24)));
    assert!(w.new_skus().is_empty());
    assert!(WeekConfig::realistic().check().is_ok());
    for bad in [
        WeekConfig {
            all_day_share: 1.5,
            ..WeekConfig::realistic()
        },
        WeekConfig {
            traffic_shape: Some(0.5),
            ..WeekConfig::realistic()
        },
        WeekConfig {
            phantom_sku_share_per_week: Some(-0.1),
            ..WeekConfig::realistic()
        },
        WeekConfig {
            phantom_notice_median_open_hours: Some(0.0),
            ..WeekConfig::realistic()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
}

#[test]
fn about_15_percent_of_stores_are_open_around_the_clock_the_others_07_to_22() {
    let w = Week::new(realistic(400, 1)).unwrap();
    let hours = w.store_hours();
    let all_day = hours.values().filter(|&&h| h == (0, 24)).count();
    assert_eq!(
        hours.values().filter(|&&h| h == (7, 22)).count() + all_day,
        400
    );
    let share = all_day as f64 / 400.0;
    assert!((0.10..=0.20).contains(&share), "{share}");
    // Seeded per store: the same again.
    assert_eq!(Week::new(realistic(400, 1)).unwrap().store_hours(), hours);
}

#[test]
fn a_store_sells_only_in_its_own_hours_and_a_24_hour_store_sells_at_night() {
    let mut w = Week::new(WeekConfig {
        troubled_per_store_day: 0.0,
        phantom_sku_share_per_week: Some(0.0),
        new_skus: 0,
        ..realistic(12, 2)
    })
    .unwrap();
    let hours = w.store_hours();
    assert!(hours.values().any(|&h| h == (0, 24)), "{hours:?}");
    let (start, end) = (w.cfg.start_ms, w.cfg.end_ms());
    let b = run(&mut w, start, end);
    let mut night = 0;
    for s in &b.sales {
        let h = (s.occurred_at_ms.rem_euclid(24 * HOUR_MS) / HOUR_MS) as u32;
        let (open, close) = hours[&s.store_id];
        assert!((open..close).contains(&h), "{} at {h}:00", s.store_id);
        if !(7..22).contains(&h) {
            night += 1;
        }
    }
    assert!(night > 0, "no 24 h store sold at night");
}

#[test]
fn hour_of_week_profiles_shape_traffic_and_the_category_mix() {
    assert_eq!(hour_of_week(START), 2 * 24); // 2025-01-01 was a Wednesday
    assert_eq!(
        hour_of_week(START + 4 * 24 * HOUR_MS + 5 * HOUR_MS),
        6 * 24 + 5
    );
    assert!(traffic_curve(18) > 1.5 * traffic_curve(8));
    assert!(traffic_curve(5 * 24 + 18) > traffic_curve(18)); // Saturday busier
    let mut w = Week::new(WeekConfig {
        troubled_per_store_day: 0.0,
        phantom_sku_share_per_week: Some(0.0),
        new_skus: 0,
        all_day_share: 0.0,
        traffic_shape: None,
        dispersion: None,
        ..realistic(4, 2)
    })
    .unwrap();
    // Huge shelves: no line is lost to an empty shelf, so sales are the demand.
    for items in &mut w.items {
        for it in items.iter_mut() {
            it.shelf = 1_000_000;
            it.books = 1_000_000;
        }
    }
    let (start, end) = (w.cfg.start_ms, w.cfg.end_ms());
    let b = run(&mut w, start, end);
    let cat: HashMap<&str, Category> = w
        .catalog
        .iter()
        .map(|p| (p.sku.as_str(), category_of(&p.family)))
        .collect();
    let (mut morning, mut evening) = ((0u32, 0u32), (0u32, 0u32)); // (baskets, breakfast lines)
    let (mut m_lines, mut e_lines) = (0u32, 0u32);
    for s in &b.sales {
        let h = s.occurred_at_ms.rem_euclid(24 * HOUR_MS) / HOUR_MS;
        let bk = s
            .lines
            .iter()
            .filter(|l| cat[l.sku.as_str()] == Category::Breakfast)
            .count() as u32;
        let n = s.lines.len() as u32;
        if (7..10).contains(&h) {
            morning.0 += 1;
            morning.1 += bk;
            m_lines += n;
        } else if (17..20).contains(&h) {
            evening.0 += 1;
            evening.1 += bk;
            e_lines += n;
        }
    }
    // Evening traffic well above the morning's; breakfast a bigger share of the morning lines.
    assert!(
        f64::from(evening.0) > 1.5 * f64::from(morning.0),
        "{morning:?} {evening:?}"
    );
    let m_share = f64::from(morning.1) / f64::from(m_lines);
    let e_share = f64::from(evening.1) / f64::from(e_lines);
    assert!(m_share > 1.5 * e_share, "{m_share} {e_share}");
    // Rates per open hour are still the mean: summed over SKUs about lines per basket x baskets.
    let rates = w.rates();
    for st in w.store_ids() {
        let total: f64 = rates
            .iter()
            .filter(|((s, _), _)| *s == st)
            .map(|(_, r)| r)
            .sum();
        let s = w.store_index[&st];
        let want = w.stores[s].baskets_per_hour * (1.0 + traffic::EXTRA_LINES_MEAN);
        assert!((total - want).abs() < 1e-6 * want, "{total} {want}");
    }
}

#[test]
fn daily_traffic_factors_have_mean_one_and_move_daily_baskets() {
    let w = Week::new(realistic(50, 7)).unwrap();
    let f: Vec<f64> = (0..50)
        .flat_map(|s| (0..40).map(move |d| (s, d)))
        .map(|(s, d)| w.traffic_factor(s, START + d * 24 * HOUR_MS + 5 * HOUR_MS))
        .collect();
    let mean = f.iter().sum::<f64>() / f.len() as f64;
    let sd = (f.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f.len() as f64).sqrt();
    assert!((mean - 1.0).abs() < 0.03, "{mean}");
    assert!((sd - 1.0 / 20f64.sqrt()).abs() < 0.04, "{sd}");
    // Constant within a day, the same again for the same seed.
    assert_eq!(
        w.traffic_factor(3, START),
        w.traffic_factor(3, START + 23 * HOUR_MS)
    );
    let w2 = Week::new(realistic(50, 7)).unwrap();
    assert_eq!(w.traffic_factor(7, START), w2.traffic_factor(7, START));
    // Off: 1 everywhere.
    assert_eq!(quiet(1).traffic_factor(0, START), 1.0);
    // The basket rate follows it.
    assert!((w.basket_rate(3, START + 12 * HOUR_MS) / w.traffic_factor(3, START)) > 0.0);
    let st = &w.stores[3];
    let want = st.baskets_per_hour * w.traffic_factor(3, START) * traffic_curve(2 * 24 + 12)
        / st.curve_norm;
    assert!((w.basket_rate(3, START + 12 * HOUR_MS) - want).abs() < 1e-9);
}

#[test]
fn phantom_onsets_hit_1_to_2_percent_of_store_skus_a_week_and_persist_until_noticed() {
    let w = Week::new(realistic(20, 7)).unwrap();
    let onsets = w
        .agenda
        .values()
        .filter(|a| matches!(a, Action::PhantomStart { .. }))
        .count();
    let share = onsets as f64 / (20 * w.catalog.len()) as f64;
    assert!((0.01..=0.02).contains(&share), "{onsets} onsets: {share}");
    // Noticed after open hours only: from 20:00 a 07-22 store is open 2 h, then from 07:00.
    let s = (0..20).find(|&s| w.stores[s].open == (7, 22)).unwrap();
    assert_eq!(
        w.after_open_hours(s, START + 20 * HOUR_MS, 4.0),
        START + 33 * HOUR_MS
    );
    // Run without checks: some phantoms are noticed within the week, some persist to its end.
    let mut w = Week::new(WeekConfig {
        troubled_per_store_day: 0.0,
        new_skus: 0,
        ..realistic(20, 7)
    })
    .unwrap();
    let (start, end) = (w.cfg.start_ms, w.cfg.end_ms());
    run(&mut w, start, end);
    let noticed = w.stats.phantoms_found + w.stats.phantoms_counted;
    assert!(w.stats.phantoms > 20, "{:?}", w.stats);
    assert!(noticed > 0 && noticed < w.stats.phantoms, "{:?}", w.stats);
    let truth = w.finish(end);
    assert!(
        truth
            .iter()
            .any(|t| t.kind == TruthKind::Phantom && t.end_ms == end)
    );
}

#[test]
fn new_skus_have_no_count_and_no_sale_before_their_launch() {
    let mut w = Week::new(WeekConfig {
        troubled_per_store_day: 0.0,
        phantom_sku_share_per_week: Some(0.0),
        ..realistic(3, 7)
    })
    .unwrap();
    let new = w.new_skus();
    assert_eq!(new.len(), 3);
    let (start, end) = (w.cfg.start_ms, w.cfg.end_ms());
    for (_, at) in &new {
        assert!(*at >= start + 24 * HOUR_MS && *at < end - 48 * HOUR_MS);
    }
    let open = w.opening_counts();
    assert!(
        open.movements
            .iter()
            .all(|m| new.iter().all(|(sku, _)| *sku != m.sku))
    );
    assert_eq!(open.movements.len(), 3 * (w.catalog.len() - 3));
    let b = run(&mut w, start, end);
    for (sku, at) in &new {
        let counts: Vec<&StockMovement> = b.movements.iter().filter(|m| m.sku == *sku).collect();
        let first = counts.iter().map(|m| m.occurred_at_ms).min().unwrap();
        assert_eq!(first, *at, "{sku}");
        assert!(
            counts
                .iter()
                .filter(|m| m.occurred_at_ms == *at)
                .all(|m| m.kind == MovementKind::Count as i32 && m.quantity > 0)
        );
        let sold: Vec<i64> = b
            .sales
            .iter()
            .filter(|s| s.lines.iter().any(|l| l.sku == *sku))
            .map(|s| s.occurred_at_ms)
            .collect();
        assert!(sold.iter().all(|t| t > at), "{sku} sold before {at}");
        assert!(!sold.is_empty(), "{sku} never sold");
    }
}
