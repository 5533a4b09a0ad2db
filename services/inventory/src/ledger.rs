//! The stock ledger and the reorder policy: events in, records out, no I/O.
use std::collections::BTreeMap;

use clap::Args;
use shelfguard_events::catalog::Product;
use shelfguard_events::floor::{OfferEvent, offer_event};
use shelfguard_events::inventory::{Cause, ReorderState, StockLevel};
use shelfguard_events::state::{BookEntry, InventoryItem};
use shelfguard_events::store::{MovementKind, Sale, StockMovement};
use shelfguard_events::topics;
use shelfguard_events::validate::{self, split_key};
use shelfguard_events::warehouse::{OutcomeStatus, ReorderOutcome, ReorderRequest};
use shelfguard_runtime::due::DueIndex;
use shelfguard_runtime::hold::HoldArgs;
use shelfguard_runtime::processor::View;
use shelfguard_runtime::table::Table;
use shelfguard_runtime::{Output, Processor, Rejected};

pub const SERVICE: &str = "inventory";
const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
/// Failed reorders kept as evidence per (store, SKU).
const MAX_RECENT_FAILURES: usize = 8;
/// Most failure times kept per (store, SKU) (the 7-day count saturates there), so a key's
/// state stays bounded whatever the retry back-off.
const MAX_FAILURE_TIMES: usize = 64;
/// The window of recent movements a count re-applies (see [`count`]): at most this many, within
/// [`RECENT_MOVES_WINDOW_MS`] of event time of the newest.
pub const MAX_RECENT_MOVES: usize = 32;
pub const RECENT_MOVES_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Stock arithmetic, checked in every build: an event that would overflow is refused (dead
/// letter) and the key keeps its state. Validation bounds each quantity far below this, so
/// only a long run of extreme events can get here.
fn checked(a: i32, b: i32, what: &str) -> Result<i32, Rejected> {
    a.checked_add(b).ok_or_else(|| {
        Rejected(format!(
            "{what}: {a} + {b} overflows the stock arithmetic (limit: 2^31-1 units)"
        ))
    })
}

/// Default of `DEFAULT_REORDER_POINT`.
pub const DEFAULT_REORDER_POINT: i32 = 4;
/// Default of `DEFAULT_ORDER_UP_TO`.
pub const DEFAULT_ORDER_UP_TO: i32 = 24;
/// Default of `REORDER_RETRY_AFTER_SECS`.
pub const DEFAULT_REORDER_RETRY_AFTER_SECS: i64 = 900;
/// Longest `REORDER_RETRY_AFTER_SECS`: 30 days.
pub const MAX_REORDER_RETRY_AFTER_SECS: i64 = 30 * 24 * 3600;

/// Reorder policy defaults, used when the catalogue has none for a SKU.
#[derive(Debug, Clone, Args)]
#[group(id = "inventory-policy")]
pub struct Policy {
    /// Reorder when on-hand falls to or below this (catalogue `reorder_point` overrides);
    /// 0 to 1000000, as in the catalogue.
    #[arg(long, env = "DEFAULT_REORDER_POINT", default_value_t = DEFAULT_REORDER_POINT, value_parser = quantity)]
    pub default_reorder_point: i32,
    /// Order enough to reach this level (catalogue `order_up_to` overrides); 0 to 1000000.
    #[arg(long, env = "DEFAULT_ORDER_UP_TO", default_value_t = DEFAULT_ORDER_UP_TO, value_parser = quantity)]
    pub default_order_up_to: i32,
    /// After a failed reorder, wait this many seconds before asking again; 0 to 2592000 (30 days).
    #[arg(long, env = "REORDER_RETRY_AFTER_SECS", default_value_t = DEFAULT_REORDER_RETRY_AFTER_SECS, value_parser = clap::value_parser!(i64).range(0..=MAX_REORDER_RETRY_AFTER_SECS))]
    pub reorder_retry_after_secs: i64,
    /// How long events for a SKU not in the catalogue yet are held.
    #[command(flatten)]
    pub hold: HoldArgs,
}

/// A level in units, in the range the catalogue accepts for `reorder_point` and `order_up_to`.
fn quantity(s: &str) -> Result<i32, String> {
    let v: i32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of units"))?;
    if (0..=shelfguard_events::limits::MAX_QUANTITY).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{v} is outside 0 to {}",
            shelfguard_events::limits::MAX_QUANTITY
        ))
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            default_reorder_point: DEFAULT_REORDER_POINT,
            default_order_up_to: DEFAULT_ORDER_UP_TO,
            reorder_retry_after_secs: DEFAULT_REORDER_RETRY_AFTER_SECS,
            hold: HoldArgs::default(),
        }
    }
}

/// A validated input.
#[derive(Debug)]
pub enum Event {
    /// A basket, with the units per SKU summed over its lines.
    Sale {
        sale: Sale,
        units: BTreeMap<String, i32>,
    },
    Movement(StockMovement),
    Outcome(ReorderOutcome),
    /// An offer redeemed at the till: the substitute left the store as a gesture.
    GiveAway(OfferEvent),
    /// Another step of an offer's lifecycle: nothing for the ledger.
    OtherOfferStep(OfferEvent),
}

impl Event {
    fn occurred_at_ms(&self) -> i64 {
        match self {
            Event::Sale { sale, .. } => sale.occurred_at_ms,
            Event::Movement(m) => m.occurred_at_ms,
            Event::Outcome(o) => o.occurred_at_ms,
            Event::GiveAway(e) | Event::OtherOfferStep(e) => e.occurred_at_ms,
        }
    }

    fn store_id(&self) -> &str {
        match self {
            Event::Sale { sale, .. } => &sale.store_id,
            Event::Movement(m) => &m.store_id,
            Event::Outcome(o) => &o.store_id,
            Event::GiveAway(e) | Event::OtherOfferStep(e) => &e.store_id,
        }
    }

    /// The SKUs this event moves.
    fn own_skus(&self) -> Vec<&str> {
        match self {
            Event::Sale { units, .. } => units.keys().map(String::as_str).collect(),
            Event::Movement(m) => vec![&m.sku],
            Event::Outcome(o) => vec![&o.sku],
            Event::GiveAway(e) => match &e.change {
                Some(offer_event::Change::Redeemed(r)) => vec![&r.substitute_sku],
                _ => vec![],
            },
            Event::OtherOfferStep(_) => vec![],
        }
    }
}

pub struct Ledger {
    policy: Policy,
    catalog: Table<Product>,
    /// Reorders waiting out their back-off. Any later event of the store also visits the keys
    /// that are due, so a retry goes out without waiting for that SKU's next sale.
    retries: DueIndex,
}

impl Ledger {
    pub fn new(policy: Policy, catalog: Table<Product>) -> Self {
        Self {
            policy,
            catalog,
            retries: DueIndex::default(),
        }
    }

    /// When a retry of `item` is due: none open, stock at or below the reorder point, and a
    /// failure whose back-off runs out at the returned time.
    fn retry_due(&self, sku: &str, item: &InventoryItem) -> Option<i64> {
        let (reorder_point, _) = self.levels(sku);
        if !item.open_reorder_id.is_empty() || position(item) > i64::from(reorder_point) {
            return None;
        }
        item.failures_ms
            .last()
            .map(|t| t.saturating_add(self.retry_after_ms()))
    }

    fn retry_after_ms(&self) -> i64 {
        self.policy.reorder_retry_after_secs.saturating_mul(1000)
    }

    /// Keeps `retries` in step with one key's state.
    fn index(&mut self, key: &str, item: &InventoryItem) {
        let due = self.retry_due(split_key(key).1, item);
        self.retries.set(key, due);
    }

    fn levels(&self, sku: &str) -> (i32, i32) {
        // Read in place: a clone of the product per event cost ~4 % of inventory's CPU.
        let (rp, up) = self
            .catalog
            .read()
            .get(sku)
            .map_or((0, 0), |p| (p.reorder_point, p.order_up_to));
        let rp = if rp > 0 {
            rp
        } else {
            self.policy.default_reorder_point
        };
        let up = if up > 0 {
            up
        } else {
            self.policy.default_order_up_to
        };
        (rp, up.max(rp.saturating_add(1)))
    }

    /// A reorder is due when stock is at or below the reorder point, none is open, and the
    /// latest failure (if any) is older than the retry back-off.
    fn maybe_reorder(
        &self,
        store: &str,
        sku: &str,
        item: &mut InventoryItem,
        now: i64,
    ) -> Option<ReorderRequest> {
        let (reorder_point, order_up_to) = self.levels(sku);
        let position = position(item);
        if position > i64::from(reorder_point) || !item.open_reorder_id.is_empty() {
            return None;
        }
        if let Some(last_failure) = item.failures_ms.last()
            && now.saturating_sub(*last_failure) < self.retry_after_ms()
        {
            return None;
        }
        item.reorder_seq = item.reorder_seq.wrapping_add(1);
        let reorder_id = format!("{store}/{sku}/R{}", item.reorder_seq);
        item.open_reorder_id = reorder_id.clone();
        item.open_reorder_at_ms = now;
        let request = ReorderRequest {
            event_id: format!("rr:{reorder_id}"),
            occurred_at_ms: now,
            store_id: store.to_owned(),
            reorder_id,
            sku: sku.to_owned(),
            // position <= reorder point < order_up_to, so this is in 1..=i32::MAX.
            quantity: i32::try_from(i64::from(order_up_to) - position).unwrap_or(i32::MAX),
            on_hand: item.on_hand,
        };
        // Its answer came first (see `InventoryItem.early_outcome`): book it now.
        // Only an answer given after this request's time (less an hour of clock skew): an
        // older one answered something else.
        if let Some(early) = item.early_outcome.take()
            && early.reorder_id == request.reorder_id
            && early.occurred_at_ms.saturating_add(EARLY_OUTCOME_SKEW_MS) >= now
        {
            // The outcome was validated when it was read; it matches the open reorder.
            let _ = record_outcome(item, &early);
        }
        Some(request)
    }
}

/// How much earlier than its request an outcome read before the request may be dated (the
/// warehouse's clock against the store's).
const EARLY_OUTCOME_SKEW_MS: i64 = 3_600_000;

/// The id of the reorder `item` requests next, in the outcome's store and SKU.
fn next_reorder_id(o: &ReorderOutcome, item: &InventoryItem) -> String {
    format!(
        "{}/{}/R{}",
        o.store_id,
        o.sku,
        item.reorder_seq.wrapping_add(1)
    )
}

/// Stock on hand plus goods on their way, without overflow.
fn position(item: &InventoryItem) -> i64 {
    i64::from(item.on_hand) + i64::from(item.on_order)
}

/// Takes `units` out of stock; what the books did not have becomes unaccounted.
///
/// Invariant (property-tested): `on_hand - unaccounted` is the last count plus every signed
/// movement since, and neither ever goes below zero.
fn sell(item: &mut InventoryItem, units: i32) -> Result<(), Rejected> {
    // on_hand >= 0 and units >= 0: no overflow here.
    let left = item.on_hand - units;
    if left < 0 {
        item.unaccounted = checked(item.unaccounted, -left, "unaccounted units")?;
        item.on_hand = 0;
    } else {
        item.on_hand = left;
    }
    Ok(())
}

/// Moves the books by `delta` units at event time `at` (a shortfall becomes unaccounted).
///
/// A movement whose event time is before the latest count is already in that count: the books
/// do not move (returns false). Otherwise it is kept in the window a later-arriving, earlier
/// count re-applies (see [`count`]).
fn book(item: &mut InventoryItem, at: i64, delta: i32, what: &str) -> Result<bool, Rejected> {
    if at < item.counted_at_ms {
        return Ok(false);
    }
    if delta >= 0 {
        item.on_hand = checked(item.on_hand, delta, what)?;
    } else {
        // Validation bounds quantities far inside i32: the negation exists.
        sell(item, delta.checked_neg().unwrap_or(i32::MAX))?;
    }
    item.recent_moves.push(BookEntry { at_ms: at, delta });
    let newest = item
        .recent_moves
        .iter()
        .map(|m| m.at_ms)
        .max()
        .unwrap_or(at);
    item.recent_moves
        .retain(|m| m.at_ms >= newest.saturating_sub(RECENT_MOVES_WINDOW_MS));
    let excess = item.recent_moves.len().saturating_sub(MAX_RECENT_MOVES);
    item.recent_moves.drain(..excess);
    Ok(true)
}

/// Sets the books to `counted` units as of event time `at`: the movements in the window with an
/// event time at or after `at` (applied before the count arrived) are applied again on top.
/// Returns the discrepancy (counted minus the books as of `at`, saturating), or `None` when a
/// count with a later event time is already applied (this one is superseded).
fn count(item: &mut InventoryItem, at: i64, counted: i32) -> Result<Option<i32>, Rejected> {
    if at < item.counted_at_ms {
        return Ok(None);
    }
    let later: i64 = item
        .recent_moves
        .iter()
        .filter(|m| m.at_ms >= at)
        .map(|m| i64::from(m.delta))
        .sum();
    let books_then = i64::from(item.on_hand) - i64::from(item.unaccounted) - later;
    let discrepancy =
        (i64::from(counted) - books_then).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    let books = i64::from(counted) + later;
    let overflow = |_| {
        Rejected(format!(
            "count {counted} plus later movements {later} overflows the stock arithmetic"
        ))
    };
    if books >= 0 {
        item.on_hand = i32::try_from(books).map_err(overflow)?;
        item.unaccounted = 0;
    } else {
        item.on_hand = 0;
        item.unaccounted = i32::try_from(-books).map_err(overflow)?;
    }
    item.counted_at_ms = at;
    item.recent_moves.retain(|m| m.at_ms >= at);
    Ok(Some(discrepancy))
}

/// Applies a movement at event time `at`; returns its cause and, for a count, counted minus the
/// books.
fn move_stock(
    item: &mut InventoryItem,
    m: &StockMovement,
    at: i64,
) -> Result<(Cause, i32), Rejected> {
    Ok(match MovementKind::try_from(m.kind) {
        Ok(MovementKind::Receipt) => {
            book(item, at, m.quantity, "receipt")?;
            // What was shipped arrived, whatever the order of the events.
            item.on_order = item.on_order.saturating_sub(m.quantity).max(0);
            (Cause::Receipt, 0)
        }
        Ok(MovementKind::Adjustment) => {
            book(item, at, m.quantity, "adjustment")?;
            (Cause::Adjustment, 0)
        }
        Ok(MovementKind::Shrink) => {
            book(item, at, -m.quantity.max(0), "shrink")?;
            (Cause::Shrink, 0)
        }
        Ok(MovementKind::Count) => (Cause::Count, count(item, at, m.quantity)?.unwrap_or(0)),
        // Refused by validation before it gets here.
        Ok(MovementKind::Unspecified) | Err(_) => (Cause::Unspecified, 0),
    })
}

/// Records the outcome of the open reorder. An outcome for any other reorder (unknown, or
/// already decided) is refused: counting it would invent or double a failure.
fn record_outcome(item: &mut InventoryItem, o: &ReorderOutcome) -> Result<(), Rejected> {
    if item.open_reorder_id.is_empty() && o.reorder_id == next_reorder_id(o, item) {
        // The answer to the reorder this key requests next: its request was published before a
        // crash lost this state, and the replay that requests it again has not come yet.
        item.early_outcome = Some(o.clone());
        return Ok(());
    }
    if item.open_reorder_id != o.reorder_id {
        let open = if item.open_reorder_id.is_empty() {
            "none"
        } else {
            item.open_reorder_id.as_str()
        };
        return Err(Rejected(format!(
            "outcome for reorder {} which is not open (open: {open})",
            o.reorder_id
        )));
    }
    item.open_reorder_id.clear();
    item.open_reorder_at_ms = 0;
    item.last_reorder = Some(ReorderState {
        reorder_id: o.reorder_id.clone(),
        status: o.status,
        failure_reason: o.failure_reason.clone(),
        expected_at_ms: o.expected_at_ms,
        decided_at_ms: o.occurred_at_ms,
    });
    if o.status != OutcomeStatus::Failed as i32 {
        item.on_order = checked(item.on_order, o.quantity_shipped.max(0), "units on order")?;
    }
    if o.status == OutcomeStatus::Failed as i32 {
        item.failures_ms.push(o.occurred_at_ms);
        let excess = item.failures_ms.len().saturating_sub(MAX_FAILURE_TIMES);
        item.failures_ms.drain(..excess);
        item.recent_failures.extend(item.last_reorder.clone());
        let excess = item
            .recent_failures
            .len()
            .saturating_sub(MAX_RECENT_FAILURES);
        item.recent_failures.drain(..excess);
    }
    Ok(())
}

impl Ledger {
    /// The stock level of (store, SKU) after `cause`, at `now`.
    fn level(
        &self,
        event_id: &str,
        key: &str,
        item: &InventoryItem,
        now: i64,
        (cause, sold, discrepancy): (Cause, i32, i32),
    ) -> Output {
        let (store, sku) = split_key(key);
        let (reorder_point, _) = self.levels(sku);
        let level = StockLevel {
            event_id: format!("sl:{event_id}:{sku}"),
            occurred_at_ms: now,
            store_id: store.to_owned(),
            sku: sku.to_owned(),
            on_hand: item.on_hand,
            unaccounted: item.unaccounted,
            open_reorder_id: item.open_reorder_id.clone(),
            last_reorder: item.last_reorder.clone(),
            failed_reorders_7d: item.failures_ms.len() as i32,
            cause: cause as i32,
            sold,
            count_discrepancy: discrepancy,
            recent_failures: item.recent_failures.clone(),
            reorder_point,
            on_order: item.on_order,
        };
        Output::new(topics::INVENTORY_STOCK_LEVELS, store, &level)
    }

    /// Forgets failures older than 7 days, asks for a reorder if one is due, re-indexes.
    fn settle(&mut self, key: &str, item: &mut InventoryItem, now: i64) -> Option<Output> {
        let (store, sku) = split_key(key);
        item.failures_ms.retain(|t| now - t < WEEK_MS);
        if item
            .early_outcome
            .as_ref()
            .is_some_and(|o| now.saturating_sub(o.occurred_at_ms) >= WEEK_MS)
        {
            item.early_outcome = None;
        }
        item.recent_failures
            .retain(|f| now - f.decided_at_ms < WEEK_MS);
        let reorder = self.maybe_reorder(store, sku, item, now);
        self.index(key, item);
        reorder.map(|req| Output::new(topics::WAREHOUSE_REORDER_REQUESTS, store, &req))
    }
}

impl Processor for Ledger {
    type Event = Event;
    type State = InventoryItem;

    fn name(&self) -> &'static str {
        SERVICE
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![
            topics::STORE_SALES,
            topics::STORE_STOCK_MOVEMENTS,
            topics::WAREHOUSE_REORDER_OUTCOMES,
            topics::FLOOR_OFFERS,
        ]
    }
    fn changelog(&self) -> &'static str {
        topics::INVENTORY_STATE
    }
    fn dead_letter(&self) -> &'static str {
        topics::INVENTORY_DLQ
    }

    fn decode(&self, topic: &str, payload: &[u8]) -> Result<Event, Rejected> {
        match topic {
            topics::STORE_SALES => {
                let sale = validate::sale(payload)?;
                let mut units: BTreeMap<String, i32> = BTreeMap::new();
                for l in &sale.lines {
                    let n = units.entry(l.sku.clone()).or_insert(0);
                    *n = checked(*n, l.quantity, &format!("units of {} in the basket", l.sku))?;
                }
                Ok(Event::Sale { sale, units })
            }
            topics::STORE_STOCK_MOVEMENTS => {
                let m = validate::movement(payload)?;
                Ok(Event::Movement(m))
            }
            topics::WAREHOUSE_REORDER_OUTCOMES => {
                let o = validate::outcome(payload)?;
                Ok(Event::Outcome(o))
            }
            topics::FLOOR_OFFERS => {
                let e = validate::offer_event(payload)?;
                match &e.change {
                    Some(offer_event::Change::Redeemed(_)) => Ok(Event::GiveAway(e)),
                    _ => Ok(Event::OtherOfferStep(e)),
                }
            }
            other => Err(Rejected(format!("not an input of inventory: {other}"))),
        }
    }

    fn event_id<'e>(&self, event: &'e Event) -> &'e str {
        match event {
            Event::Sale { sale, .. } => &sale.event_id,
            Event::Movement(m) => &m.event_id,
            Event::Outcome(o) => &o.event_id,
            Event::GiveAway(e) | Event::OtherOfferStep(e) => &e.event_id,
        }
    }
    fn store_id<'e>(&self, event: &'e Event) -> &'e str {
        event.store_id()
    }
    fn occurred_at_ms(&self, event: &Event) -> i64 {
        event.occurred_at_ms()
    }

    /// The SKUs the event moves.
    fn keys(&self, event: &Event) -> Vec<String> {
        let store = event.store_id();
        event
            .own_skus()
            .iter()
            .map(|sku| validate::key(store, sku))
            .collect()
    }

    /// The store's SKUs whose reorder retry is due by the event's time.
    fn due_keys(&self, event: &Event) -> Vec<String> {
        self.retries
            .due(event.store_id(), event.occurred_at_ms())
            .map(str::to_owned)
            .collect()
    }

    fn restored(&mut self, key: &str, item: &InventoryItem) {
        self.index(key, item);
    }

    /// An event for a SKU the catalogue does not have yet waits for its product (the catalogue
    /// travels on its own topic, so a new product's first count or sale may come first).
    fn waiting(&self, key: &str, _event: &Event) -> Option<String> {
        let (_, sku) = split_key(key);
        (!self.catalog.read().contains_key(sku))
            .then(|| format!("SKU {sku} is not in the catalogue yet"))
    }
    fn tables_version(&self) -> u64 {
        self.catalog.version()
    }
    fn hold_grace_ms(&self) -> i64 {
        self.policy.hold.grace_ms()
    }

    fn apply(
        &mut self,
        key: &str,
        item: &mut InventoryItem,
        event: &Event,
        _others: &dyn View<InventoryItem>,
    ) -> Result<Vec<Output>, Rejected> {
        let (_, sku) = split_key(key);
        let now = event.occurred_at_ms();
        let change = match event {
            Event::Sale { units, .. } => {
                let n = units.get(sku).copied().unwrap_or(0);
                book(item, now, -n, "sale")?;
                (Cause::Sale, n, 0)
            }
            Event::Movement(m) => {
                let (c, d) = move_stock(item, m, now)?;
                (c, 0, d)
            }
            Event::Outcome(o) => {
                record_outcome(item, o)?;
                (Cause::ReorderOutcome, 0, 0)
            }
            Event::GiveAway(e) => {
                if let Some(offer_event::Change::Redeemed(r)) = &e.change {
                    book(item, now, -r.quantity, "give-away")?;
                }
                (Cause::Giveaway, 0, 0)
            }
            // Never a key of its own (see `keys`).
            Event::OtherOfferStep(_) => return Ok(Vec::new()),
        };
        let mut out: Vec<Output> = self.settle(key, item, now).into_iter().collect();
        out.push(self.level(self.event_id(event), key, item, now, change));
        Ok(out)
    }

    /// A reorder retry fell due: ask again if it still should (stock may have come back).
    fn on_due(
        &mut self,
        key: &str,
        item: &mut InventoryItem,
        now: i64,
        _others: &dyn View<InventoryItem>,
    ) -> Result<Vec<Output>, Rejected> {
        let Some(request) = self.settle(key, item, now) else {
            return Ok(Vec::new());
        };
        // Named after the reorder it asked for: one per retry, the same on a replay.
        let id = item.open_reorder_id.clone();
        let level = self.level(&id, key, item, now, (Cause::ReorderRequested, 0, 0));
        Ok(vec![request, level])
    }
}

#[cfg(test)]
mod tests;
