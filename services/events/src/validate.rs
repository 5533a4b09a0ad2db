//! Parsing of contract messages: bytes in, a message whose required fields are known to be
//! present out, or the reason it was refused (which becomes the dead-letter reason).
use prost::Message;

use crate::{catalog, floor, inventory, stockout, store, warehouse};

/// Ids are short printable tokens without `/` (which separates the parts of state keys).
pub fn id(field: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("missing {field}"));
    }
    if v.len() > 64 || v.contains('/') || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "invalid {field} {v:?}: at most 64 printable characters, no spaces or '/'"
        ));
    }
    Ok(())
}

/// The state key of one (store, SKU).
pub fn key(store_id: &str, sku: &str) -> String {
    format!("{store_id}/{sku}")
}

/// Splits a state key into (store id, SKU).
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or((key, ""))
}

fn decode<M: Message + Default>(what: &str, bytes: &[u8]) -> Result<M, String> {
    M::decode(bytes).map_err(|e| format!("undecodable {what}: {e}"))
}

fn envelope(event_id: &str, occurred_at_ms: i64) -> Result<(), String> {
    if event_id.is_empty() {
        return Err("missing event_id".into());
    }
    if occurred_at_ms <= 0 {
        return Err("missing occurred_at_ms".into());
    }
    Ok(())
}

pub fn product(bytes: &[u8]) -> Result<catalog::Product, String> {
    let p: catalog::Product = decode("catalog.v1.Product", bytes)?;
    id("sku", &p.sku)?;
    if p.family.is_empty() {
        return Err(format!("product {}: missing family", p.sku));
    }
    if p.price_cents <= 0 {
        return Err(format!("product {}: price_cents must be > 0", p.sku));
    }
    match &p.size {
        Some(s) if s.value > 0.0 && !s.unit.is_empty() => {}
        _ => return Err(format!("product {}: missing size", p.sku)),
    }
    Ok(p)
}

pub fn sale(bytes: &[u8]) -> Result<store::Sale, String> {
    let s: store::Sale = decode("store.v1.Sale", bytes)?;
    envelope(&s.event_id, s.occurred_at_ms)?;
    id("store_id", &s.store_id)?;
    if s.lines.is_empty() {
        return Err("sale without lines".into());
    }
    for (i, l) in s.lines.iter().enumerate() {
        id(&format!("lines[{i}].sku"), &l.sku)?;
        if l.quantity <= 0 {
            return Err(format!(
                "lines[{i}].quantity must be > 0, got {}",
                l.quantity
            ));
        }
    }
    Ok(s)
}

pub fn movement(bytes: &[u8]) -> Result<store::StockMovement, String> {
    let m: store::StockMovement = decode("store.v1.StockMovement", bytes)?;
    envelope(&m.event_id, m.occurred_at_ms)?;
    id("store_id", &m.store_id)?;
    id("sku", &m.sku)?;
    match store::MovementKind::try_from(m.kind) {
        Ok(store::MovementKind::Receipt) if m.quantity <= 0 => {
            Err(format!("receipt quantity must be > 0, got {}", m.quantity))
        }
        Ok(store::MovementKind::Shrink) if m.quantity <= 0 => {
            Err(format!("shrink quantity must be > 0, got {}", m.quantity))
        }
        Ok(store::MovementKind::Count) if m.quantity < 0 => {
            Err(format!("count must be >= 0, got {}", m.quantity))
        }
        Ok(store::MovementKind::Unspecified) | Err(_) => {
            Err(format!("unknown movement kind {}", m.kind))
        }
        Ok(_) => Ok(m),
    }
}

pub fn outcome(bytes: &[u8]) -> Result<warehouse::ReorderOutcome, String> {
    let o: warehouse::ReorderOutcome = decode("warehouse.v1.ReorderOutcome", bytes)?;
    envelope(&o.event_id, o.occurred_at_ms)?;
    id("store_id", &o.store_id)?;
    id("sku", &o.sku)?;
    if o.reorder_id.is_empty() {
        return Err("missing reorder_id".into());
    }
    match warehouse::OutcomeStatus::try_from(o.status) {
        Ok(warehouse::OutcomeStatus::Unspecified) | Err(_) => {
            Err(format!("unknown outcome status {}", o.status))
        }
        Ok(_) => Ok(o),
    }
}

pub fn stock_level(bytes: &[u8]) -> Result<inventory::StockLevel, String> {
    let l: inventory::StockLevel = decode("inventory.v1.StockLevel", bytes)?;
    envelope(&l.event_id, l.occurred_at_ms)?;
    id("store_id", &l.store_id)?;
    id("sku", &l.sku)?;
    Ok(l)
}

pub fn stockout(bytes: &[u8]) -> Result<stockout::StockoutEvent, String> {
    let s: stockout::StockoutEvent = decode("stockout.v1.StockoutEvent", bytes)?;
    envelope(&s.event_id, s.occurred_at_ms)?;
    id("store_id", &s.store_id)?;
    id("sku", &s.sku)?;
    if s.stockout_id.is_empty() {
        return Err("missing stockout_id".into());
    }
    if s.change.is_none() {
        return Err("stockout event without change (opened/closed)".into());
    }
    Ok(s)
}

pub fn offer_event(bytes: &[u8]) -> Result<floor::OfferEvent, String> {
    let o: floor::OfferEvent = decode("floor.v1.OfferEvent", bytes)?;
    envelope(&o.event_id, o.occurred_at_ms)?;
    id("store_id", &o.store_id)?;
    if o.offer_id.is_empty() {
        return Err("missing offer_id".into());
    }
    if o.change.is_none() {
        return Err("offer event without change".into());
    }
    if let Some(floor::offer_event::Change::Redeemed(r)) = &o.change {
        id("redeemed.substitute_sku", &r.substitute_sku)?;
        if r.quantity <= 0 {
            return Err(format!("redeemed.quantity must be > 0, got {}", r.quantity));
        }
    }
    Ok(o)
}

pub fn staff_response(bytes: &[u8]) -> Result<floor::StaffResponse, String> {
    let r: floor::StaffResponse = decode("floor.v1.StaffResponse", bytes)?;
    envelope(&r.event_id, r.occurred_at_ms)?;
    id("store_id", &r.store_id)?;
    id("sku", &r.sku)?;
    if r.offer_id.is_empty() {
        return Err("missing offer_id".into());
    }
    match floor::Answer::try_from(r.answer) {
        Ok(floor::Answer::Decline) if r.reason.trim().is_empty() => {
            Err("a decline needs a reason".into())
        }
        Ok(floor::Answer::Unspecified) | Err(_) => Err(format!("unknown answer {}", r.answer)),
        Ok(_) => Ok(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_separators_and_blanks() {
        assert!(id("store_id", "S-001").is_ok());
        assert!(id("store_id", "").unwrap_err().contains("missing store_id"));
        assert!(id("sku", "a/b").is_err());
        assert!(id("sku", "a b").is_err());
        assert!(id("sku", &"x".repeat(65)).is_err());
    }

    #[test]
    fn garbage_and_missing_fields_are_refused_with_reasons() {
        assert!(
            sale(&[0xff, 0xff, 0xff])
                .unwrap_err()
                .contains("undecodable")
        );
        let s = store::Sale {
            event_id: "e".into(),
            occurred_at_ms: 1,
            store_id: "S1".into(),
            basket_id: "b".into(),
            lines: vec![],
        };
        assert_eq!(sale(&s.encode_to_vec()).unwrap_err(), "sale without lines");
        let s = store::Sale {
            event_id: String::new(),
            ..s
        };
        assert_eq!(sale(&s.encode_to_vec()).unwrap_err(), "missing event_id");
        let m = store::StockMovement {
            event_id: "e".into(),
            occurred_at_ms: 1,
            store_id: "S1".into(),
            sku: "A".into(),
            kind: 0,
            quantity: 1,
            note: String::new(),
        };
        assert!(
            movement(&m.encode_to_vec())
                .unwrap_err()
                .contains("unknown movement kind")
        );
    }

    #[test]
    fn keys_split_back() {
        assert_eq!(split_key(&key("S1", "SKU-9")), ("S1", "SKU-9"));
    }
}
