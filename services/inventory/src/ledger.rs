//! The stock ledger and the reorder policy: events in, records out, no I/O.
use std::collections::BTreeMap;

use clap::Args;
use shelfguard_events::catalog::Product;
use shelfguard_events::inventory::{ReorderState, StockLevel};
use shelfguard_events::state::InventoryItem;
use shelfguard_events::store::{MovementKind, Sale, StockMovement};
use shelfguard_events::topics;
use shelfguard_events::validate::{self, split_key};
use shelfguard_events::warehouse::{OutcomeStatus, ReorderOutcome, ReorderRequest};
use shelfguard_runtime::processor::View;
use shelfguard_runtime::table::Table;
use shelfguard_runtime::{Output, Processor, Rejected};

pub const SERVICE: &str = "inventory";
const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

/// Reorder policy defaults, used when the catalogue has none for a SKU.
#[derive(Debug, Clone, Args)]
pub struct Policy {
    /// Reorder when on-hand falls to or below this (catalogue `reorder_point` overrides).
    #[arg(long, env = "DEFAULT_REORDER_POINT", default_value_t = 4)]
    pub default_reorder_point: i32,
    /// Order enough to reach this level (catalogue `order_up_to` overrides).
    #[arg(long, env = "DEFAULT_ORDER_UP_TO", default_value_t = 24)]
    pub default_order_up_to: i32,
    /// After a failed reorder, wait this many seconds before asking again.
    #[arg(long, env = "REORDER_RETRY_AFTER_SECS", default_value_t = 900)]
    pub reorder_retry_after_secs: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            default_reorder_point: 4,
            default_order_up_to: 24,
            reorder_retry_after_secs: 900,
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
}

impl Event {
    fn occurred_at_ms(&self) -> i64 {
        match self {
            Event::Sale { sale, .. } => sale.occurred_at_ms,
            Event::Movement(m) => m.occurred_at_ms,
            Event::Outcome(o) => o.occurred_at_ms,
        }
    }
}

pub struct Ledger {
    policy: Policy,
    catalog: Table<Product>,
}

impl Ledger {
    pub fn new(policy: Policy, catalog: Table<Product>) -> Self {
        Self { policy, catalog }
    }

    fn known(&self, sku: &str) -> Result<(), Rejected> {
        if self.catalog.read().contains_key(sku) {
            Ok(())
        } else {
            Err(Rejected(format!("unknown SKU {sku}")))
        }
    }

    fn levels(&self, sku: &str) -> (i32, i32) {
        let p = self.catalog.get(sku);
        let rp = p.as_ref().map_or(0, |p| p.reorder_point);
        let up = p.as_ref().map_or(0, |p| p.order_up_to);
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
        (rp, up.max(rp + 1))
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
        if item.on_hand > reorder_point || !item.open_reorder_id.is_empty() {
            return None;
        }
        if let Some(last_failure) = item.failures_ms.last()
            && now - last_failure < self.policy.reorder_retry_after_secs * 1000
        {
            return None;
        }
        item.reorder_seq += 1;
        let reorder_id = format!("{store}/{sku}/R{}", item.reorder_seq);
        item.open_reorder_id = reorder_id.clone();
        item.open_reorder_at_ms = now;
        Some(ReorderRequest {
            event_id: format!("rr:{reorder_id}"),
            occurred_at_ms: now,
            store_id: store.to_owned(),
            reorder_id,
            sku: sku.to_owned(),
            quantity: order_up_to - item.on_hand,
            on_hand: item.on_hand,
        })
    }
}

/// Takes `units` out of stock; what the books did not have becomes unaccounted.
fn sell(item: &mut InventoryItem, units: i32) {
    let left = item.on_hand - units;
    if left < 0 {
        item.unaccounted += -left;
        item.on_hand = 0;
    } else {
        item.on_hand = left;
    }
}

fn move_stock(item: &mut InventoryItem, m: &StockMovement) {
    match MovementKind::try_from(m.kind) {
        Ok(MovementKind::Receipt) => item.on_hand += m.quantity,
        Ok(MovementKind::Adjustment) if m.quantity < 0 => sell(item, -m.quantity),
        Ok(MovementKind::Adjustment) => item.on_hand += m.quantity,
        Ok(MovementKind::Count) => {
            item.on_hand = m.quantity;
            item.unaccounted = 0;
        }
        _ => {}
    }
}

/// Records the outcome of the open reorder. An outcome for any other reorder (unknown, or
/// already decided) is refused: counting it would invent or double a failure.
fn record_outcome(item: &mut InventoryItem, o: &ReorderOutcome) -> Result<(), Rejected> {
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
    if o.status == OutcomeStatus::Failed as i32 {
        item.failures_ms.push(o.occurred_at_ms);
    }
    Ok(())
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
                let mut units = BTreeMap::new();
                for l in &sale.lines {
                    self.known(&l.sku)?;
                    *units.entry(l.sku.clone()).or_insert(0) += l.quantity;
                }
                Ok(Event::Sale { sale, units })
            }
            topics::STORE_STOCK_MOVEMENTS => {
                let m = validate::movement(payload)?;
                self.known(&m.sku)?;
                Ok(Event::Movement(m))
            }
            topics::WAREHOUSE_REORDER_OUTCOMES => {
                let o = validate::outcome(payload)?;
                self.known(&o.sku)?;
                Ok(Event::Outcome(o))
            }
            other => Err(Rejected(format!("not an input of inventory: {other}"))),
        }
    }

    fn event_id<'e>(&self, event: &'e Event) -> &'e str {
        match event {
            Event::Sale { sale, .. } => &sale.event_id,
            Event::Movement(m) => &m.event_id,
            Event::Outcome(o) => &o.event_id,
        }
    }

    fn keys(&self, event: &Event) -> Vec<String> {
        match event {
            Event::Sale { sale, units } => units
                .keys()
                .map(|sku| validate::key(&sale.store_id, sku))
                .collect(),
            Event::Movement(m) => vec![validate::key(&m.store_id, &m.sku)],
            Event::Outcome(o) => vec![validate::key(&o.store_id, &o.sku)],
        }
    }

    fn apply(
        &mut self,
        key: &str,
        item: &mut InventoryItem,
        event: &Event,
        _others: &dyn View<InventoryItem>,
    ) -> Result<Vec<Output>, Rejected> {
        let (store, sku) = split_key(key);
        let now = event.occurred_at_ms();
        match event {
            Event::Sale { units, .. } => sell(item, units.get(sku).copied().unwrap_or(0)),
            Event::Movement(m) => move_stock(item, m),
            Event::Outcome(o) => record_outcome(item, o)?,
        }
        item.failures_ms.retain(|t| now - t < WEEK_MS);
        let mut out = Vec::new();
        if let Some(req) = self.maybe_reorder(store, sku, item, now) {
            out.push(Output::new(topics::WAREHOUSE_REORDER_REQUESTS, store, &req));
        }
        let level = StockLevel {
            event_id: format!("sl:{}:{sku}", self.event_id(event)),
            occurred_at_ms: now,
            store_id: store.to_owned(),
            sku: sku.to_owned(),
            on_hand: item.on_hand,
            unaccounted: item.unaccounted,
            open_reorder_id: item.open_reorder_id.clone(),
            last_reorder: item.last_reorder.clone(),
            failed_reorders_7d: item.failures_ms.len() as i32,
            ..Default::default()
        };
        out.push(Output::new(topics::INVENTORY_STOCK_LEVELS, store, &level));
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
