//! When is a stockout real, and when is it over: stock levels in, episodes out, no I/O.
use clap::Args;
use shelfguard_events::inventory::StockLevel;
use shelfguard_events::state::DetectorItem;
use shelfguard_events::stockout::{
    Closed, Evidence, Opened, StockoutEvent, stockout_event::Change,
};
use shelfguard_events::topics;
use shelfguard_events::validate::{self, split_key};
use shelfguard_events::warehouse::OutcomeStatus;
use shelfguard_runtime::processor::View;
use shelfguard_runtime::{Output, Processor, Rejected};

pub const SERVICE: &str = "stockout-detector";

#[derive(Debug, Clone, Default, Args)]
pub struct Policy {
    /// The shelf counts as empty at or below this many units.
    #[arg(long, env = "EMPTY_AT_UNITS", default_value_t = 0)]
    pub empty_at_units: i32,
}

pub struct Detector {
    policy: Policy,
}

impl Detector {
    pub fn new(policy: Policy) -> Self {
        Self { policy }
    }
}

/// Replenishment is blocked when the latest finished reorder failed and none is open.
fn blocked(level: &StockLevel) -> bool {
    level.open_reorder_id.is_empty()
        && level
            .last_reorder
            .as_ref()
            .is_some_and(|r| r.status == OutcomeStatus::Failed as i32)
}

/// The decision for one (store, SKU) after a new stock level.
pub fn decide(
    policy: &Policy,
    item: &mut DetectorItem,
    level: StockLevel,
) -> Option<StockoutEvent> {
    let empty = level.on_hand <= policy.empty_at_units;
    let (store, sku, now) = (
        level.store_id.clone(),
        level.sku.clone(),
        level.occurred_at_ms,
    );
    let change = if item.open_stockout_id.is_empty() && empty && blocked(&level) {
        item.episode_seq += 1;
        item.open_stockout_id = format!("{store}/{sku}/S{}", item.episode_seq);
        let last = level.last_reorder.clone().unwrap_or_default();
        Some((
            "opened",
            Change::Opened(Opened {
                evidence: Some(Evidence {
                    on_hand: level.on_hand,
                    failed_reorders_7d: level.failed_reorders_7d,
                    last_failure_reason: last.failure_reason,
                    last_reorder_id: last.reorder_id,
                    expected_restock_at_ms: last.expected_at_ms,
                    ..Default::default()
                }),
                kind: shelfguard_events::stockout::Kind::Confirmed as i32,
                ..Default::default()
            }),
        ))
    } else if !item.open_stockout_id.is_empty() && !empty {
        Some((
            "closed",
            Change::Closed(Closed {
                reason: format!("stock returned (on-hand {})", level.on_hand),
                on_hand: level.on_hand,
            }),
        ))
    } else {
        None
    };
    let stockout_id = item.open_stockout_id.clone();
    if matches!(change, Some(("closed", _))) {
        item.open_stockout_id.clear();
    }
    item.level = Some(level);
    change.map(|(what, change)| StockoutEvent {
        event_id: format!("so:{stockout_id}:{what}"),
        occurred_at_ms: now,
        store_id: store,
        stockout_id,
        sku,
        change: Some(change),
    })
}

impl Processor for Detector {
    type Event = StockLevel;
    type State = DetectorItem;

    fn name(&self) -> &'static str {
        SERVICE
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![topics::INVENTORY_STOCK_LEVELS]
    }
    fn changelog(&self) -> &'static str {
        topics::DETECTOR_STATE
    }
    fn dead_letter(&self) -> &'static str {
        topics::DETECTOR_DLQ
    }
    fn decode(&self, _topic: &str, payload: &[u8]) -> Result<StockLevel, Rejected> {
        Ok(validate::stock_level(payload)?)
    }
    fn event_id<'e>(&self, event: &'e StockLevel) -> &'e str {
        &event.event_id
    }
    fn keys(&self, event: &StockLevel) -> Vec<String> {
        vec![validate::key(&event.store_id, &event.sku)]
    }
    fn apply(
        &mut self,
        key: &str,
        item: &mut DetectorItem,
        event: &StockLevel,
        _others: &dyn View<DetectorItem>,
    ) -> Result<Vec<Output>, Rejected> {
        let (store, _) = split_key(key);
        Ok(decide(&self.policy, item, event.clone())
            .map(|e| Output::new(topics::STOCKOUTS, store, &e))
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests;
