use super::*;
use shelfguard_events::inventory::ReorderState;

fn level(on_hand: i32, open: &str, last: Option<OutcomeStatus>) -> StockLevel {
    StockLevel {
        event_id: format!("l{on_hand}{open}"),
        occurred_at_ms: 1_700_000_000_000,
        store_id: "S1".into(),
        sku: "OIL-14".into(),
        on_hand,
        open_reorder_id: open.into(),
        last_reorder: last.map(|s| ReorderState {
            reorder_id: "S1/OIL-14/R3".into(),
            status: s as i32,
            failure_reason: "supplier out of stock".into(),
            ..Default::default()
        }),
        failed_reorders_7d: 3,
        ..Default::default()
    }
}

fn kind(e: &Option<StockoutEvent>) -> &'static str {
    match e.as_ref().and_then(|e| e.change.as_ref()) {
        Some(Change::Opened(_)) => "opened",
        Some(Change::Closed(_)) => "closed",
        None => "-",
    }
}

#[test]
fn opens_only_when_empty_and_blocked() {
    let p = Policy::default();
    let table = [
        (level(0, "", Some(OutcomeStatus::Failed)), "opened"),
        (level(2, "", Some(OutcomeStatus::Failed)), "-"),
        (level(0, "S1/OIL-14/R4", Some(OutcomeStatus::Failed)), "-"),
        (level(0, "", Some(OutcomeStatus::Fulfilled)), "-"),
        (level(0, "", None), "-"),
    ];
    for (l, want) in table {
        let mut item = DetectorItem::default();
        assert_eq!(kind(&decide(&p, &mut item, l.clone())), want, "{l:?}");
    }
}

#[test]
fn one_episode_until_stock_returns_then_a_new_one() {
    let p = Policy::default();
    let mut item = DetectorItem::default();
    let opened = decide(&p, &mut item, level(0, "", Some(OutcomeStatus::Failed))).unwrap();
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
    assert_eq!(
        kind(&decide(
            &p,
            &mut item,
            level(0, "", Some(OutcomeStatus::Failed))
        )),
        "-",
        "no second episode"
    );
    let closed = decide(&p, &mut item, level(5, "", Some(OutcomeStatus::Failed))).unwrap();
    assert_eq!(
        (kind(&Some(closed.clone())), closed.stockout_id.as_str()),
        ("closed", "S1/OIL-14/S1")
    );
    assert_eq!(kind(&decide(&p, &mut item, level(4, "", None))), "-");
    let again = decide(&p, &mut item, level(0, "", Some(OutcomeStatus::Failed))).unwrap();
    assert_eq!(again.stockout_id, "S1/OIL-14/S2");
}

#[test]
fn a_visible_threshold_counts_a_nearly_empty_shelf_as_empty() {
    let p = Policy { empty_at_units: 1 };
    let mut item = DetectorItem::default();
    assert_eq!(
        kind(&decide(
            &p,
            &mut item,
            level(1, "", Some(OutcomeStatus::Failed))
        )),
        "opened"
    );
}
