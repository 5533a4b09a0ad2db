//! The warehouse: answers each reorder request with an outcome and, when it ships, a receipt
//! in the store once the truck arrives. Troubled (store, SKU)s fail the first few times.
//!
//! Pure: requests and the current time in, records with the time they are due out.
use std::collections::{HashMap, HashSet, VecDeque};

use rand::Rng;
use rand::seq::IndexedRandom;
use shelfguard_events::store::{MovementKind, StockMovement};
use shelfguard_events::topics;
use shelfguard_events::warehouse::{OutcomeStatus, ReorderOutcome, ReorderRequest};

/// Why a troubled reorder fails, in words.
pub const FAILURE_REASONS: [&str; 3] = [
    "supplier out of stock",
    "truck capacity exceeded",
    "item on allocation",
];
/// A failure is reported this long after the request, in ms (inclusive range).
pub const FAIL_AFTER_MS: (i64, i64) = (1_000, 2_000);
/// Reorder ids remembered to ignore redelivered requests.
const REMEMBERED: usize = 100_000;

/// How the warehouse behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarehousePolicy {
    /// Requests of a troubled (store, SKU) that fail before one is fulfilled.
    pub fail_times: u32,
    /// From a fulfilled request to the goods received in store, in ms.
    pub delivery_delay_ms: i64,
}

/// A record the warehouse publishes.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Outcome(ReorderOutcome),
    Receipt(StockMovement),
}

impl Record {
    /// Base name of the topic it goes to.
    pub fn topic(&self) -> &'static str {
        match self {
            Record::Outcome(_) => topics::WAREHOUSE_REORDER_OUTCOMES,
            Record::Receipt(_) => topics::STORE_STOCK_MOVEMENTS,
        }
    }

    /// The record key: the store id.
    pub fn store_id(&self) -> &str {
        match self {
            Record::Outcome(o) => &o.store_id,
            Record::Receipt(m) => &m.store_id,
        }
    }
}

/// A record and when it is due (UTC ms); its `occurred_at_ms` is that time.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    pub at_ms: i64,
    pub record: Record,
}

/// The warehouse's memory: failures per troubled (store, SKU), reorder ids already answered.
#[derive(Debug, Clone)]
pub struct Warehouse {
    policy: WarehousePolicy,
    troubled: HashSet<(String, String)>,
    failures: HashMap<(String, String), u32>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

impl Warehouse {
    /// A warehouse that fails the first `policy.fail_times` reorders of each `(store, sku)` in `troubled`.
    pub fn new(
        policy: WarehousePolicy,
        troubled: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Self {
            policy,
            troubled: troubled.into_iter().collect(),
            failures: HashMap::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
        }
    }

    /// From now on, the first `fail_times` reorders of (store, sku) fail (new trouble).
    pub fn add_troubled(&mut self, store_id: String, sku: String) {
        self.failures.remove(&(store_id.clone(), sku.clone()));
        self.troubled.insert((store_id, sku));
    }

    pub fn is_troubled(&self, store_id: &str, sku: &str) -> bool {
        self.troubled
            .contains(&(store_id.to_owned(), sku.to_owned()))
    }

    /// False when `reorder_id` was answered already (a redelivered request).
    fn first_time(&mut self, reorder_id: &str) -> bool {
        if !self.seen.insert(reorder_id.to_owned()) {
            return false;
        }
        self.seen_order.push_back(reorder_id.to_owned());
        let excess = self.seen_order.len().saturating_sub(REMEMBERED);
        for old in self.seen_order.drain(..excess) {
            self.seen.remove(&old);
        }
        true
    }

    /// The answer to one request received at `now_ms`: a FAILED outcome 1-2 s later for the
    /// first failures of a troubled (store, SKU); otherwise a FULFILLED outcome now and a
    /// RECEIPT of the shipped units after the delivery delay. Nothing for a request already answered.
    pub fn handle(
        &mut self,
        req: &ReorderRequest,
        now_ms: i64,
        rng: &mut impl Rng,
    ) -> Vec<Scheduled> {
        if !self.first_time(&req.reorder_id) {
            return Vec::new();
        }
        let outcome = |status: OutcomeStatus, at_ms: i64| ReorderOutcome {
            event_id: format!("ro:{}", req.reorder_id),
            occurred_at_ms: at_ms,
            store_id: req.store_id.clone(),
            reorder_id: req.reorder_id.clone(),
            sku: req.sku.clone(),
            status: status as i32,
            quantity_shipped: 0,
            failure_reason: String::new(),
            expected_at_ms: 0,
        };
        let key = (req.store_id.clone(), req.sku.clone());
        if self.troubled.contains(&key) {
            let failed = self.failures.entry(key).or_insert(0);
            if *failed < self.policy.fail_times {
                *failed += 1;
                let at_ms = now_ms + rng.random_range(FAIL_AFTER_MS.0..=FAIL_AFTER_MS.1);
                let reason = FAILURE_REASONS
                    .choose(rng)
                    .copied()
                    .unwrap_or(FAILURE_REASONS[0]);
                let o = ReorderOutcome {
                    failure_reason: reason.to_owned(),
                    ..outcome(OutcomeStatus::Failed, at_ms)
                };
                return vec![Scheduled {
                    at_ms,
                    record: Record::Outcome(o),
                }];
            }
        }
        let shipped = req.quantity.max(0);
        let arrives_ms = now_ms + self.policy.delivery_delay_ms;
        let o = ReorderOutcome {
            quantity_shipped: shipped,
            expected_at_ms: arrives_ms,
            ..outcome(OutcomeStatus::Fulfilled, now_ms)
        };
        let mut out = vec![Scheduled {
            at_ms: now_ms,
            record: Record::Outcome(o),
        }];
        if shipped > 0 {
            let receipt = StockMovement {
                event_id: format!("rcpt:{}", req.reorder_id),
                occurred_at_ms: arrives_ms,
                store_id: req.store_id.clone(),
                sku: req.sku.clone(),
                kind: MovementKind::Receipt as i32,
                quantity: shipped,
                note: format!("warehouse delivery for reorder {}", req.reorder_id),
            };
            out.push(Scheduled {
                at_ms: arrives_ms,
                record: Record::Receipt(receipt),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use shelfguard_events::{Message, validate};

    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn req(store: &str, sku: &str, n: u32) -> ReorderRequest {
        let reorder_id = format!("{store}/{sku}/R{n}");
        ReorderRequest {
            event_id: format!("rr:{reorder_id}"),
            occurred_at_ms: NOW,
            store_id: store.into(),
            reorder_id,
            sku: sku.into(),
            quantity: 20,
            on_hand: 4,
        }
    }

    fn warehouse() -> Warehouse {
        Warehouse::new(
            WarehousePolicy {
                fail_times: 3,
                delivery_delay_ms: 15_000,
            },
            [("S-001".to_owned(), "PASTA-BASICS-500G".to_owned())],
        )
    }

    fn outcome(s: &Scheduled) -> &ReorderOutcome {
        match &s.record {
            Record::Outcome(o) => o,
            Record::Receipt(_) => panic!("not an outcome"),
        }
    }

    #[test]
    fn troubled_fails_the_first_times_then_ships() {
        let mut w = warehouse();
        let mut rng = StdRng::seed_from_u64(1);
        for n in 1..=3 {
            let out = w.handle(&req("S-001", "PASTA-BASICS-500G", n), NOW, &mut rng);
            assert_eq!(out.len(), 1);
            let o = outcome(&out[0]);
            assert_eq!(o.status, OutcomeStatus::Failed as i32);
            assert!(FAILURE_REASONS.contains(&o.failure_reason.as_str()));
            assert!((NOW + 1_000..=NOW + 2_000).contains(&out[0].at_ms));
            assert_eq!(o.occurred_at_ms, out[0].at_ms);
            assert_eq!(
                (o.reorder_id.as_str(), o.sku.as_str(), o.store_id.as_str()),
                (
                    format!("S-001/PASTA-BASICS-500G/R{n}").as_str(),
                    "PASTA-BASICS-500G",
                    "S-001"
                )
            );
            assert_eq!(out[0].record.topic(), topics::WAREHOUSE_REORDER_OUTCOMES);
            validate::outcome(&o.encode_to_vec()).unwrap();
        }
        let out = w.handle(&req("S-001", "PASTA-BASICS-500G", 4), NOW, &mut rng);
        assert_eq!(outcome(&out[0]).status, OutcomeStatus::Fulfilled as i32);
        assert_eq!(out.len(), 2);
        // The same SKU in another store is not troubled.
        let out = w.handle(&req("S-002", "PASTA-BASICS-500G", 1), NOW, &mut rng);
        assert_eq!(outcome(&out[0]).status, OutcomeStatus::Fulfilled as i32);
    }

    #[test]
    fn new_trouble_fails_the_next_reorders_of_a_sku_that_shipped_before() {
        let mut w = warehouse();
        let mut rng = StdRng::seed_from_u64(1);
        let status = |out: Vec<Scheduled>| outcome(&out[0]).status;
        assert_eq!(
            status(w.handle(&req("S-002", "RICE-GOLD-1000G", 1), NOW, &mut rng)),
            OutcomeStatus::Fulfilled as i32
        );
        w.add_troubled("S-002".into(), "RICE-GOLD-1000G".into());
        for n in 2..=4 {
            assert_eq!(
                status(w.handle(&req("S-002", "RICE-GOLD-1000G", n), NOW, &mut rng)),
                OutcomeStatus::Failed as i32
            );
        }
        assert_eq!(
            status(w.handle(&req("S-002", "RICE-GOLD-1000G", 5), NOW, &mut rng)),
            OutcomeStatus::Fulfilled as i32
        );
    }

    #[test]
    fn normal_reorders_ship_now_and_arrive_after_the_delay() {
        let mut w = warehouse();
        let mut rng = StdRng::seed_from_u64(2);
        let out = w.handle(&req("S-003", "RICE-GOLD-1000G", 1), NOW, &mut rng);
        assert_eq!(out.len(), 2);
        let o = outcome(&out[0]);
        assert_eq!(out[0].at_ms, NOW);
        assert_eq!(o.status, OutcomeStatus::Fulfilled as i32);
        assert_eq!(o.quantity_shipped, 20);
        assert_eq!(o.expected_at_ms, NOW + 15_000);
        assert_eq!(
            (o.reorder_id.as_str(), o.sku.as_str(), o.store_id.as_str()),
            ("S-003/RICE-GOLD-1000G/R1", "RICE-GOLD-1000G", "S-003")
        );
        assert_eq!(out[1].at_ms, NOW + 15_000);
        assert_eq!(out[1].record.topic(), topics::STORE_STOCK_MOVEMENTS);
        assert_eq!(out[1].record.store_id(), "S-003");
        let Record::Receipt(m) = &out[1].record else {
            panic!("not a receipt")
        };
        assert_eq!(
            (m.kind, m.quantity, m.sku.as_str()),
            (MovementKind::Receipt as i32, 20, "RICE-GOLD-1000G")
        );
        validate::movement(&m.encode_to_vec()).unwrap();
    }

    #[test]
    fn redelivered_requests_are_answered_once() {
        let mut w = warehouse();
        let mut rng = StdRng::seed_from_u64(3);
        let r = req("S-001", "PASTA-BASICS-500G", 1);
        assert_eq!(w.handle(&r, NOW, &mut rng).len(), 1);
        assert!(w.handle(&r, NOW, &mut rng).is_empty());
        // The duplicate did not count as a failure: two more fail, the fourth ships.
        for n in 2..=3 {
            assert_eq!(
                outcome(&w.handle(&req("S-001", "PASTA-BASICS-500G", n), NOW, &mut rng)[0]).status,
                OutcomeStatus::Failed as i32
            );
        }
        assert_eq!(
            outcome(&w.handle(&req("S-001", "PASTA-BASICS-500G", 4), NOW, &mut rng)[0]).status,
            OutcomeStatus::Fulfilled as i32
        );
    }

    #[test]
    fn nothing_to_ship_means_no_receipt() {
        let mut w = warehouse();
        let mut rng = StdRng::seed_from_u64(4);
        let out = w.handle(
            &ReorderRequest {
                quantity: 0,
                ..req("S-002", "X", 1)
            },
            NOW,
            &mut rng,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(outcome(&out[0]).quantity_shipped, 0);
    }
}
