//! Shelf checks end to end on a real broker, with inventory, stockout-detector and
//! offer-generator as processes: a real suspected stockout (sales history in event time, then
//! the product stops selling while the store goes on) becomes a check on `floor.checks.v1` and
//! no offer.
//! - EMPTY: `Answered`, a COUNT of 0 ("shelf check …") on `store.stock-movements.v1`, booked by
//!   inventory (on-hand 0, cause Count), a confirmed stockout, and its offer.
//! - STOCK_IS_THERE: the episode closes as a false alarm and no offer is issued (a later
//!   stockout of another SKU of the store is the fence: its record comes after anything the
//!   suspicion could have caused on `floor.offers.v1`).
use std::time::Duration;

use anyhow::{Result, ensure};
use shelfguard_e2e::{Env, Service, Tail, fixtures::*};
use shelfguard_events::floor::{
    OfferEvent, ShelfCheckEvent, ShelfFinding, StaffResponse, offer_event::Change as Step,
    shelf_check_event::Change as CheckStep,
};
use shelfguard_events::inventory::{Cause, StockLevel};
use shelfguard_events::stockout::{Kind, StockoutEvent, stockout_event::Change as Episode};
use shelfguard_events::store::{MovementKind, Sale, SaleLine, StockMovement};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::ReorderRequest;

const WAIT: Duration = Duration::from_secs(60);
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const GOLD: &str = "GOLD-14";
const BIG: &str = "GOLD-28";
const OTHER: &str = "OTHER-14";

fn movement(store: &str, sku: &str, units: i32, at: i64) -> StockMovement {
    StockMovement {
        event_id: id(),
        occurred_at_ms: at,
        store_id: store.into(),
        sku: sku.into(),
        kind: MovementKind::Count as i32,
        quantity: units,
        note: "opening count".into(),
    }
}

fn basket(store: &str, skus: &[&str], at: i64) -> Sale {
    Sale {
        event_id: id(),
        occurred_at_ms: at,
        store_id: store.into(),
        basket_id: id(),
        lines: skus
            .iter()
            .map(|s| SaleLine {
                sku: (*s).into(),
                quantity: 1,
                unit_price_cents: 799,
            })
            .collect(),
    }
}

/// One store with three products and services running; its history is published in event
/// time: counts three days ago, 30 h of baskets of GOLD-14 and OTHER-14 every 10 minutes (past
/// the detector's 24 h warm-up), then 6 h in which only OTHER-14 sells, every 5 minutes. The
/// detector suspects GOLD-14 during that silence; offer-generator asks the staff. Returns the
/// services, the `Requested` check and the time after the last basket.
struct Scene {
    env: Env,
    _services: Vec<Service>,
    checks: Tail,
    offers: Tail,
    stockouts: Tail,
    levels: Tail,
    requested: ShelfCheckEvent,
    after: i64,
}

async fn scene(test: &str) -> Result<Scene> {
    let env = Env::start(test).await?;
    for (sku, family, oz, price) in [
        (GOLD, "coconut-oil", 14.0, 799),
        (BIG, "coconut-oil", 28.0, 1399),
        (OTHER, "other", 14.0, 299),
    ] {
        let brand = if sku == OTHER { "Other" } else { "Gold" };
        env.publish(
            CATALOG_PRODUCTS,
            sku,
            &product(sku, family, brand, oz, price),
        )
        .await?;
    }
    let services = vec![
        env.spawn("inventory", &[])?,
        env.spawn("stockout-detector", &[])?,
        // Long enough that the silence's later baskets (event time) never expire the check
        // before the test answers it.
        env.spawn("offer-generator", &[("CHECK_EXPIRY_MINUTES", "1440")])?,
    ];
    let (checks, offers, stockouts, levels) = (
        env.tail(FLOOR_CHECKS)?,
        env.tail(FLOOR_OFFERS)?,
        env.tail(STOCKOUTS)?,
        env.tail(INVENTORY_STOCK_LEVELS)?,
    );
    let t0 = (now_ms() - 3 * 24 * HOUR) / HOUR * HOUR;
    for (sku, units) in [(GOLD, 500), (BIG, 20), (OTHER, 5000)] {
        env.publish(STORE_STOCK_MOVEMENTS, "S1", &movement("S1", sku, units, t0))
            .await?;
    }
    // Counts and sales travel on different topics: the counts are booked first.
    let mut counted = std::collections::BTreeSet::new();
    while counted.len() < 3 {
        let (l, _) = levels
            .until::<StockLevel>(WAIT, |l| l.cause == Cause::Count as i32)
            .await?;
        counted.insert(l.sku);
    }
    let mut t = t0;
    for _ in 0..180 {
        t += 10 * MIN;
        env.publish(STORE_SALES, "S1", &basket("S1", &[GOLD, OTHER], t))
            .await?;
    }
    for _ in 0..72 {
        t += 5 * MIN;
        env.publish(STORE_SALES, "S1", &basket("S1", &[OTHER], t))
            .await?;
    }
    let (requested, _) = checks
        .until::<ShelfCheckEvent>(WAIT, |c| {
            c.sku == GOLD && matches!(c.change, Some(CheckStep::Requested(_)))
        })
        .await?;
    Ok(Scene {
        env,
        _services: services,
        checks,
        offers,
        stockouts,
        levels,
        requested,
        after: t + MIN,
    })
}

fn answer(check: &ShelfCheckEvent, finding: ShelfFinding, at: i64) -> StaffResponse {
    StaffResponse {
        event_id: id(),
        occurred_at_ms: at,
        store_id: "S1".into(),
        sku: check.sku.clone(),
        check_id: check.check_id.clone(),
        finding: finding as i32,
        by: "ana".into(),
        channel: "console".into(),
        ..Default::default()
    }
}

fn issued_for(e: &OfferEvent, sku: &str) -> bool {
    e.sku == sku && matches!(e.change, Some(Step::Issued(_)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_answered_empty_books_a_count_confirms_the_stockout_and_gets_an_offer() -> Result<()>
{
    let s = scene("checks-empty").await?;
    let Some(CheckStep::Requested(r)) = &s.requested.change else {
        unreachable!()
    };
    assert_eq!(
        r.question,
        "Is there any 14 oz Gold coconut-oil at Aisle 7, shelf 3?"
    );
    assert!(r.reason.starts_with("no sale for "), "{}", r.reason);
    assert!(r.on_hand > 0, "the books show stock: {r:?}");
    let suspected_id = s.requested.stockout_id.clone();
    let (opened, _) = s
        .stockouts
        .until::<StockoutEvent>(WAIT, |e| e.stockout_id == suspected_id)
        .await?;
    assert!(
        matches!(&opened.change, Some(Episode::Opened(o)) if o.kind == Kind::Suspected as i32),
        "{opened:?}"
    );

    let movements = s.env.tail(STORE_STOCK_MOVEMENTS)?;
    s.env
        .publish(
            FLOOR_RESPONSES,
            "S1",
            &answer(&s.requested, ShelfFinding::Empty, s.after),
        )
        .await?;
    let (answered, _) = s
        .checks
        .until::<ShelfCheckEvent>(WAIT, |c| {
            c.check_id == s.requested.check_id && matches!(c.change, Some(CheckStep::Answered(_)))
        })
        .await?;
    assert_eq!(answered.event_id, format!("{}:answered", answered.check_id));
    let (count, _) = movements
        .until::<StockMovement>(WAIT, |m| m.note.starts_with("shelf check"))
        .await?;
    assert_eq!(
        (
            count.sku.as_str(),
            count.kind,
            count.quantity,
            count.occurred_at_ms
        ),
        (GOLD, MovementKind::Count as i32, 0, s.after)
    );
    assert_eq!(count.note, format!("shelf check {}", s.requested.check_id));
    let (level, _) = s
        .levels
        .until::<StockLevel>(WAIT, |l| {
            l.sku == GOLD && l.event_id.contains(&count.event_id)
        })
        .await?;
    assert_eq!(
        (level.on_hand, level.cause),
        (0, Cause::Count as i32),
        "inventory booked it"
    );
    // The suspicion closes and a confirmed episode opens on that count.
    let (confirmed, seen) = s
        .stockouts
        .until::<StockoutEvent>(WAIT, |e| {
            e.sku == GOLD
                && matches!(&e.change, Some(Episode::Opened(o)) if o.kind == Kind::Confirmed as i32)
        })
        .await?;
    ensure!(
        seen.iter()
            .any(|e| e.stockout_id == suspected_id && matches!(e.change, Some(Episode::Closed(_)))),
        "the suspected episode closed first: {seen:?}"
    );
    let (offer, before) = s
        .offers
        .until::<OfferEvent>(WAIT, |e| issued_for(e, GOLD))
        .await?;
    assert_eq!(offer.stockout_id, confirmed.stockout_id, "{offer:?}");
    assert!(
        before.iter().all(|e| e.sku != GOLD),
        "nothing was offered for the suspicion: {before:?}"
    );
    let Some(Step::Issued(i)) = &offer.change else {
        unreachable!()
    };
    let o = i.offer.clone().unwrap_or_default();
    assert_eq!(o.substitute.map(|p| p.sku).as_deref(), Some(BIG));
    assert!(!o.suspected);
    assert!(o.reason.contains("shelf check"), "{}", o.reason);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_answered_stock_is_there_closes_the_episode_and_nothing_is_offered() -> Result<()> {
    let s = scene("checks-there").await?;
    let suspected_id = s.requested.stockout_id.clone();
    s.env
        .publish(
            FLOOR_RESPONSES,
            "S1",
            &answer(&s.requested, ShelfFinding::StockIsThere, s.after),
        )
        .await?;
    s.checks
        .until::<ShelfCheckEvent>(WAIT, |c| {
            c.check_id == s.requested.check_id && matches!(c.change, Some(CheckStep::Answered(_)))
        })
        .await?;
    let (closed, _) = s
        .stockouts
        .until::<StockoutEvent>(WAIT, |e| {
            e.stockout_id == suspected_id && matches!(e.change, Some(Episode::Closed(_)))
        })
        .await?;
    let Some(Episode::Closed(c)) = &closed.change else {
        unreachable!()
    };
    assert_eq!(c.reason, "shelf check: stock is there");
    assert!(c.on_hand > 0);

    // The fence: GOLD-28 runs out and its reorder fails, a confirmed stockout with no bigger
    // substitute: its NotOffered comes after anything GOLD-14's suspicion led to.
    let requests = s.env.tail(WAREHOUSE_REORDER_REQUESTS)?;
    let mut empty = movement("S1", BIG, 0, s.after + MIN);
    empty.note = "fence".into();
    s.env.publish(STORE_STOCK_MOVEMENTS, "S1", &empty).await?;
    let (req, _) = requests
        .until::<ReorderRequest>(WAIT, |r| r.sku == BIG)
        .await?;
    let mut failed = failed("S1", BIG, 1, "truck full");
    failed.reorder_id = req.reorder_id.clone();
    failed.occurred_at_ms = s.after + 2 * MIN;
    s.env
        .publish(WAREHOUSE_REORDER_OUTCOMES, "S1", &failed)
        .await?;
    let (fence, before) = s.offers.until::<OfferEvent>(WAIT, |e| e.sku == BIG).await?;
    assert!(
        matches!(fence.change, Some(Step::NotOffered(_))),
        "{fence:?}"
    );
    assert!(
        before.iter().all(|e| e.sku != GOLD),
        "no offer for the false alarm: {before:?}"
    );
    Ok(())
}
