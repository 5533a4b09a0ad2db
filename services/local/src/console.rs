//! Prints the floor staff channel (`floor.offers.v1`) as readable lines.
use std::time::Duration;

use anyhow::Result;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use shelfguard_events::floor::{Gesture, OfferEvent, offer_event::Change};
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

/// Follows the offers topic from the beginning and prints each event once (by event id).
pub async fn follow(kafka: &KafkaArgs, shutdown: CancellationToken) -> Result<()> {
    // A throw-away group that commits nothing: every run shows the channel from the start.
    let consumer: StreamConsumer = kafka
        .group_consumer(
            "shelfguard-local-console",
            &format!("shelfguard-local-console-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&kafka.topic(topics::FLOOR_OFFERS)])?;
    let mut seen = std::collections::HashSet::new();
    let started = std::time::Instant::now();
    // Events from before this run (persistent storage) are shown as restored, not as new.
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    loop {
        let m = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = consumer.recv() => m,
        };
        match m {
            Ok(m) => match OfferEvent::decode(m.payload().unwrap_or_default()) {
                Ok(e) if seen.insert(e.event_id.clone()) => {
                    if e.occurred_at_ms < started_ms {
                        println!("[restored] {}", render(&e));
                    } else {
                        println!(
                            "[+{:>5.1}s] {}",
                            started.elapsed().as_secs_f64(),
                            render(&e)
                        );
                    }
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "undecodable offer event"),
            },
            Err(e) => {
                tracing::warn!(error = %e, "console consumer");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
