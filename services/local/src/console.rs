//! Prints the floor staff channel (`floor.offers.v1`) as readable lines.
use std::time::Duration;

use anyhow::Result;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use shelfguard_events::floor::{Gesture, OfferEvent, offer_event::Change};
use shelfguard_events::stockout::{Kind, StockoutEvent, stockout_event};
use shelfguard_events::topics;
use shelfguard_runtime::KafkaArgs;
use tokio_util::sync::CancellationToken;

/// One line per offer event, as staff would read it.
pub fn render(e: &OfferEvent) -> String {
    match &e.change {
        Some(Change::Issued(i)) => {
            let o = i.offer.clone().unwrap_or_default();
            let sub = o.substitute.unwrap_or_default();
            let gesture = match Gesture::try_from(o.gesture) {
                Ok(Gesture::Free) => "FREE".to_owned(),
                _ => format!(
                    "at original price (gift {:.2})",
                    o.gesture_value_cents as f64 / 100.0
                ),
            };
            format!(
                "OFFER  {} | {} | give {} [{}] {} | {}",
                e.store_id, o.reason, sub.sku, sub.location, gesture, o.redemption_code
            )
        }
        Some(Change::Withdrawn(w)) => format!(
            "WITHDRAWN {} | offer {} | {}",
            e.store_id, e.offer_id, w.reason
        ),
        Some(Change::Accepted(a)) => {
            format!(
                "ACCEPTED {} | offer {} | by {}",
                e.store_id, e.offer_id, a.by
            )
        }
        Some(Change::Declined(d)) => format!(
            "DECLINED {} | offer {} | {} (by {})",
            e.store_id, e.offer_id, d.reason, d.by
        ),
        Some(Change::Redeemed(r)) => format!(
            "REDEEMED {} | offer {} | {} x{} given (gift {:.2})",
            e.store_id,
            e.offer_id,
            r.substitute_sku,
            r.quantity,
            r.gesture_value_cents as f64 / 100.0
        ),
        Some(Change::Expired(_)) => format!("EXPIRED {} | offer {}", e.store_id, e.offer_id),
        Some(Change::NotOffered(n)) => {
            format!("NO OFFER {} | {} | {}", e.store_id, e.stockout_id, n.reason)
        }
        None => format!("? {}", e.event_id),
    }
}

/// What the terminal summary counts: offers by step, live offers, open stockouts by kind.
#[derive(Debug, Default)]
pub struct Summary {
    /// Offer events by step (issued, accepted, ...).
    pub steps: std::collections::BTreeMap<&'static str, u64>,
    /// Offers issued and not ended yet.
    pub live: std::collections::BTreeSet<String>,
    /// Open stockout episodes and whether each is confirmed (else suspected: a shelf check).
    pub open: std::collections::BTreeMap<String, bool>,
}

impl Summary {
    pub fn offer(&mut self, e: &OfferEvent) {
        let step = match &e.change {
            Some(Change::Issued(_)) => {
                self.live.insert(e.offer_id.clone());
                "issued"
            }
            Some(Change::Accepted(_)) => "accepted",
            Some(Change::Declined(_)) => "declined",
            Some(Change::Redeemed(_)) => "redeemed",
            Some(Change::Expired(_)) => "expired",
            Some(Change::Withdrawn(_)) => "withdrawn",
            Some(Change::NotOffered(_)) => "no offer",
            None => return,
        };
        if matches!(step, "declined" | "redeemed" | "expired" | "withdrawn") {
            self.live.remove(&e.offer_id);
        }
        *self.steps.entry(step).or_default() += 1;
    }

    pub fn stockout(&mut self, e: &StockoutEvent) {
        match &e.change {
            Some(stockout_event::Change::Opened(o)) => {
                self.open
                    .insert(e.stockout_id.clone(), o.kind != Kind::Suspected as i32);
            }
            Some(stockout_event::Change::Closed(_)) => {
                self.open.remove(&e.stockout_id);
            }
            None => {}
        }
    }

    /// One line: stockouts open by kind, then offers by step.
    pub fn line(&self) -> String {
        let confirmed = self.open.values().filter(|c| **c).count();
        let suspected = self.open.len() - confirmed;
        let n = |k: &str| self.steps.get(k).copied().unwrap_or(0);
        format!(
            "SUMMARY stockouts open {} ({confirmed} confirmed, {suspected} suspected: shelf checks) | offers {} issued, {} live, {} accepted, {} redeemed, {} declined, {} withdrawn, {} expired | {} without an offer",
            self.open.len(),
            n("issued"),
            self.live.len(),
            n("accepted"),
            n("redeemed"),
            n("declined"),
            n("withdrawn"),
            n("expired"),
            n("no offer"),
        )
    }
}

/// The local wall-clock time of `ms` (UTC milliseconds), `13:04:05`.
pub fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "--:--:--".to_owned())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How often the summary line is printed.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Follows the offers and stockouts topics from the beginning and prints each offer event once
/// (by event id), stamped with the local time it happened (or `restored` for one from before
/// this run, with persistent storage), and a summary line every [`SUMMARY_EVERY`].
pub async fn follow(kafka: &KafkaArgs, shutdown: CancellationToken) -> Result<()> {
    // A throw-away group that commits nothing: every run shows the channel from the start.
    let consumer: StreamConsumer = kafka
        .group_consumer(
            "shelfguard-local-console",
            &format!("shelfguard-local-console-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let offers = kafka.topic(topics::FLOOR_OFFERS);
    consumer.subscribe(&[&offers, &kafka.topic(topics::STOCKOUTS)])?;
    let mut seen = std::collections::HashSet::new();
    let started_ms = now_ms();
    let mut summary = Summary::default();
    let mut every =
        tokio::time::interval_at(tokio::time::Instant::now() + SUMMARY_EVERY, SUMMARY_EVERY);
    loop {
        let m = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = every.tick() => {
                println!("[{}] {}", clock(now_ms()), summary.line());
                continue;
            }
            m = consumer.recv() => m,
        };
        match m {
            Ok(m) if m.topic() == offers => {
                match OfferEvent::decode(m.payload().unwrap_or_default()) {
                    Ok(e) if seen.insert(e.event_id.clone()) => {
                        summary.offer(&e);
                        if e.occurred_at_ms < started_ms {
                            println!("[restored] {}", render(&e));
                        } else {
                            println!("[{}] {}", clock(e.occurred_at_ms), render(&e));
                        }
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "undecodable offer event"),
                }
            }
            Ok(m) => match StockoutEvent::decode(m.payload().unwrap_or_default()) {
                Ok(e) => summary.stockout(&e),
                Err(err) => tracing::warn!(error = %err, "undecodable stockout event"),
            },
            Err(e) => {
                tracing::warn!(error = %e, "console consumer");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelfguard_events::stockout::{Closed, Opened};

    #[test]
    fn the_summary_counts_offers_by_step_and_open_stockouts_by_kind() {
        let mut s = Summary::default();
        let offer = |id: &str, change: Change| OfferEvent {
            offer_id: id.into(),
            change: Some(change),
            ..Default::default()
        };
        s.offer(&offer("o1", Change::Issued(Default::default())));
        s.offer(&offer("o2", Change::Issued(Default::default())));
        s.offer(&offer("o1", Change::Accepted(Default::default())));
        s.offer(&offer("o2", Change::Withdrawn(Default::default())));
        let opened = |id: &str, kind: Kind| StockoutEvent {
            stockout_id: id.into(),
            change: Some(stockout_event::Change::Opened(Opened {
                kind: kind as i32,
                ..Default::default()
            })),
            ..Default::default()
        };
        s.stockout(&opened("a", Kind::Confirmed));
        s.stockout(&opened("b", Kind::Suspected));
        s.stockout(&opened("c", Kind::Confirmed));
        s.stockout(&StockoutEvent {
            stockout_id: "c".into(),
            change: Some(stockout_event::Change::Closed(Closed::default())),
            ..Default::default()
        });
        assert_eq!(
            s.line(),
            "SUMMARY stockouts open 2 (1 confirmed, 1 suspected: shelf checks) | offers 2 issued, 1 live, 1 accepted, 0 redeemed, 0 declined, 1 withdrawn, 0 expired | 0 without an offer"
        );
        assert_eq!(clock(0).len(), 8);
    }
}
