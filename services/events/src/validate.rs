//! Parsing of contract messages: bytes in, a message whose required fields are known to be
//! present out, or the reason it was refused (which becomes the dead-letter reason).
use prost::Message;

use crate::limits::*;
use crate::{catalog, floor, inventory, stockout, store, warehouse};

/// At most `max` bytes of `v`, for quoting a refused value in a reason without copying it whole.
fn excerpt(v: &str, max: usize) -> String {
    if v.len() <= max {
        return format!("{v:?}");
    }
    let mut end = max;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &v[..end], v.len())
}

/// A `store_id` or `sku`: a short printable token without `/` (which separates the parts of
/// state keys), at most [`MAX_ID_BYTES`].
pub fn id(field: &str, v: &str) -> Result<(), String> {
    id_within(field, v, MAX_ID_BYTES)
}

/// An event id (or another id) from store systems or the warehouse: at most
/// [`MAX_EVENT_ID_BYTES`], printable, no spaces, `/` allowed.
pub fn event_id(field: &str, v: &str) -> Result<(), String> {
    token(field, v, MAX_EVENT_ID_BYTES, "ids")
}

/// An id our own services built from input ids: at most [`MAX_DERIVED_ID_BYTES`], `/` allowed
/// (e.g. `S-001/SKU/S1/offer`).
pub fn derived_id(field: &str, v: &str) -> Result<(), String> {
    token(field, v, MAX_DERIVED_ID_BYTES, "derived ids")
}

fn token(field: &str, v: &str, max: usize, limit: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("missing {field}"));
    }
    if v.len() > max || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "invalid {field} {}: at most {max} printable bytes, no spaces (limit: {limit})",
            excerpt(v, 80)
        ));
    }
    Ok(())
}

fn id_within(field: &str, v: &str, max: usize) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("missing {field}"));
    }
    if v.len() > max || v.contains('/') || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "invalid {field} {}: at most {max} printable bytes, no spaces or '/' (limit: ids)",
            excerpt(v, 80)
        ));
    }
    Ok(())
}

/// Free text: at most [`MAX_TEXT_BYTES`].
pub fn text(field: &str, v: &str) -> Result<(), String> {
    if v.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "{field} is {} bytes, over the limit of {MAX_TEXT_BYTES} (limit: free text)",
            v.len()
        ));
    }
    Ok(())
}

/// A quantity of units: `min..=MAX_QUANTITY` in absolute value.
fn quantity(field: &str, q: i32, min: i32) -> Result<(), String> {
    if q.unsigned_abs() > MAX_QUANTITY.unsigned_abs() {
        return Err(format!(
            "{field} {q} is beyond the limit of {MAX_QUANTITY} units either way (limit: quantities)"
        ));
    }
    if q < min {
        return Err(format!("{field} must be >= {min}, got {q}"));
    }
    Ok(())
}

fn cents(field: &str, v: i64) -> Result<(), String> {
    if !(0..=MAX_PRICE_CENTS).contains(&v) {
        return Err(format!(
            "{field} {v} is outside 0..={MAX_PRICE_CENTS} cents (limit: prices)"
        ));
    }
    Ok(())
}

/// The state key of one (store, SKU).
pub fn key(store_id: &str, sku: &str) -> String {
    format!("{store_id}/{sku}")
}

/// The episode number `n` of a stockout id `<store>/<sku>/S<n>` of that store and SKU.
pub fn stockout_seq(stockout_id: &str, store_id: &str, sku: &str) -> Option<u32> {
    stockout_id
        .strip_prefix(store_id)?
        .strip_prefix('/')?
        .strip_prefix(sku)?
        .strip_prefix("/S")?
        .parse()
        .ok()
}

/// Splits a state key into (store id, SKU).
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or((key, ""))
}

fn decode<M: Message + Default>(what: &str, bytes: &[u8]) -> Result<M, String> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(format!(
            "{what} record is {} bytes, over the limit of {MAX_RECORD_BYTES} (limit: record size)",
            bytes.len()
        ));
    }
    M::decode(bytes).map_err(|e| format!("undecodable {what}: {e}"))
}

/// Event id and time of a record from store systems or the warehouse.
fn envelope(id: &str, occurred_at_ms: i64) -> Result<(), String> {
    event_id("event_id", id)?;
    time(occurred_at_ms)
}

/// Event id and time of a record our own services published.
fn derived_envelope(event_id: &str, occurred_at_ms: i64) -> Result<(), String> {
    derived_id("event_id", event_id)?;
    time(occurred_at_ms)
}

fn time(occurred_at_ms: i64) -> Result<(), String> {
    if occurred_at_ms <= 0 {
        return Err("missing occurred_at_ms".into());
    }
    if !(MIN_OCCURRED_AT_MS..=MAX_OCCURRED_AT_MS).contains(&occurred_at_ms) {
        return Err(format!(
            "occurred_at_ms {occurred_at_ms} is not UTC milliseconds between 2000 and 2200 (limit: event time)"
        ));
    }
    Ok(())
}

pub fn product(bytes: &[u8]) -> Result<catalog::Product, String> {
    let p: catalog::Product = decode("catalog.v1.Product", bytes)?;
    id("sku", &p.sku)?;
    if !p.event_id.is_empty() {
        event_id("event_id", &p.event_id)?;
    }
    if p.family.is_empty() {
        return Err(format!("product {}: missing family", p.sku));
    }
    if p.price_cents <= 0 {
        return Err(format!("product {}: price_cents must be > 0", p.sku));
    }
    cents("price_cents", p.price_cents)?;
    for (field, v) in [
        ("name", &p.name),
        ("brand", &p.brand),
        ("family", &p.family),
        ("location", &p.location),
    ] {
        text(field, v)?;
    }
    for (field, n) in [
        ("complements", p.complements.len()),
        ("allergen_free", p.allergen_free.len()),
        ("hard_attributes", p.hard_attributes.len()),
    ] {
        if n > MAX_LIST_ITEMS {
            return Err(format!(
                "product {}: {field} has {n} entries, over the limit of {MAX_LIST_ITEMS} (limit: lists)",
                p.sku
            ));
        }
    }
    for (i, c) in p.complements.iter().enumerate() {
        id(&format!("complements[{i}]"), c)?;
    }
    for (i, a) in p.allergen_free.iter().enumerate() {
        text(&format!("allergen_free[{i}]"), a)?;
    }
    quantity("reorder_point", p.reorder_point, 0)?;
    quantity("order_up_to", p.order_up_to, 0)?;
    match &p.size {
        Some(s) if s.value > 0.0 && s.value.is_finite() && !s.unit.is_empty() => {
            text("size.unit", &s.unit)?;
        }
        _ => return Err(format!("product {}: missing size", p.sku)),
    }
    Ok(p)
}

pub fn sale(bytes: &[u8]) -> Result<store::Sale, String> {
    let s: store::Sale = decode("store.v1.Sale", bytes)?;
    envelope(&s.event_id, s.occurred_at_ms)?;
    id("store_id", &s.store_id)?;
    if !s.basket_id.is_empty() {
        event_id("basket_id", &s.basket_id)?;
    }
    if s.lines.is_empty() {
        return Err("sale without lines".into());
    }
    if s.lines.len() > MAX_SALE_LINES {
        return Err(format!(
            "sale has {} lines, over the limit of {MAX_SALE_LINES} (limit: basket lines)",
            s.lines.len()
        ));
    }
    for (i, l) in s.lines.iter().enumerate() {
        id(&format!("lines[{i}].sku"), &l.sku)?;
        quantity(&format!("lines[{i}].quantity"), l.quantity, 1)?;
        cents(&format!("lines[{i}].unit_price_cents"), l.unit_price_cents)?;
    }
    Ok(s)
}

pub fn movement(bytes: &[u8]) -> Result<store::StockMovement, String> {
    let m: store::StockMovement = decode("store.v1.StockMovement", bytes)?;
    envelope(&m.event_id, m.occurred_at_ms)?;
    id("store_id", &m.store_id)?;
    id("sku", &m.sku)?;
    text("note", &m.note)?;
    match store::MovementKind::try_from(m.kind) {
        Ok(store::MovementKind::Receipt) => quantity("receipt quantity", m.quantity, 1)?,
        Ok(store::MovementKind::Shrink) => quantity("shrink quantity", m.quantity, 1)?,
        Ok(store::MovementKind::Count) => quantity("count", m.quantity, 0)?,
        Ok(store::MovementKind::Adjustment) => {
            quantity("adjustment quantity", m.quantity, -MAX_QUANTITY)?
        }
        Ok(store::MovementKind::Unspecified) | Err(_) => {
            return Err(format!("unknown movement kind {}", m.kind));
        }
    }
    Ok(m)
}

pub fn outcome(bytes: &[u8]) -> Result<warehouse::ReorderOutcome, String> {
    let o: warehouse::ReorderOutcome = decode("warehouse.v1.ReorderOutcome", bytes)?;
    envelope(&o.event_id, o.occurred_at_ms)?;
    id("store_id", &o.store_id)?;
    id("sku", &o.sku)?;
    if o.reorder_id.is_empty() {
        return Err("missing reorder_id".into());
    }
    event_id("reorder_id", &o.reorder_id)?;
    text("failure_reason", &o.failure_reason)?;
    quantity("quantity_shipped", o.quantity_shipped, 0)?;
    if o.expected_at_ms != 0 {
        time(o.expected_at_ms).map_err(|e| format!("expected_at_ms: {e}"))?;
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
    derived_envelope(&l.event_id, l.occurred_at_ms)?;
    id("store_id", &l.store_id)?;
    id("sku", &l.sku)?;
    Ok(l)
}

pub fn stockout(bytes: &[u8]) -> Result<stockout::StockoutEvent, String> {
    let s: stockout::StockoutEvent = decode("stockout.v1.StockoutEvent", bytes)?;
    derived_envelope(&s.event_id, s.occurred_at_ms)?;
    id("store_id", &s.store_id)?;
    id("sku", &s.sku)?;
    derived_id("stockout_id", &s.stockout_id)?;
    if stockout_seq(&s.stockout_id, &s.store_id, &s.sku).is_none() {
        return Err(format!(
            "stockout_id {:?} is not <store_id>/<sku>/S<n> of its own store and SKU",
            s.stockout_id
        ));
    }
    if s.change.is_none() {
        return Err("stockout event without change (opened/closed)".into());
    }
    Ok(s)
}

pub fn offer_event(bytes: &[u8]) -> Result<floor::OfferEvent, String> {
    let o: floor::OfferEvent = decode("floor.v1.OfferEvent", bytes)?;
    derived_envelope(&o.event_id, o.occurred_at_ms)?;
    id("store_id", &o.store_id)?;
    derived_id("offer_id", &o.offer_id)?;
    if o.change.is_none() {
        return Err("offer event without change".into());
    }
    if let Some(floor::offer_event::Change::Redeemed(r)) = &o.change {
        id("redeemed.substitute_sku", &r.substitute_sku)?;
        quantity("redeemed.quantity", r.quantity, 1)?;
    }
    Ok(o)
}

/// A staff answer: to an offer (`offer_id` and `answer`) or to a shelf check (`check_id` and
/// `finding`, with an optional count), never both.
pub fn staff_response(bytes: &[u8]) -> Result<floor::StaffResponse, String> {
    let r: floor::StaffResponse = decode("floor.v1.StaffResponse", bytes)?;
    envelope(&r.event_id, r.occurred_at_ms)?;
    id("store_id", &r.store_id)?;
    id("sku", &r.sku)?;
    text("reason", &r.reason)?;
    text("by", &r.by)?;
    match (r.offer_id.is_empty(), r.check_id.is_empty()) {
        (false, true) => {
            event_id("offer_id", &r.offer_id)?;
            match floor::Answer::try_from(r.answer) {
                Ok(floor::Answer::Decline) if r.reason.trim().is_empty() => {
                    Err("a decline needs a reason".into())
                }
                Ok(floor::Answer::Unspecified) | Err(_) => {
                    Err(format!("unknown answer {}", r.answer))
                }
                Ok(_) => Ok(r),
            }
        }
        (true, false) => {
            derived_id("check_id", &r.check_id)?;
            finding(r.finding, r.counted)?;
            Ok(r)
        }
        (true, true) => Err("a staff response names an offer_id or a check_id".into()),
        (false, false) => Err("a staff response names an offer_id or a check_id, not both".into()),
    }
}

/// A shelf-check finding with its optional count: EMPTY counts 0 (or nothing), STOCK_IS_THERE
/// any count from 0 up.
fn finding(f: i32, counted: Option<i32>) -> Result<(), String> {
    match floor::ShelfFinding::try_from(f) {
        Ok(floor::ShelfFinding::Empty) if counted.is_some_and(|n| n != 0) => {
            Err("an empty shelf counts 0: EMPTY with a count above 0".into())
        }
        Ok(floor::ShelfFinding::Empty | floor::ShelfFinding::StockIsThere) => {
            counted.map_or(Ok(()), |n| quantity("counted", n, 0))
        }
        Ok(floor::ShelfFinding::Unspecified) | Err(_) => Err(format!("unknown finding {f}")),
    }
}

pub fn check_event(bytes: &[u8]) -> Result<floor::ShelfCheckEvent, String> {
    let c: floor::ShelfCheckEvent = decode("floor.v1.ShelfCheckEvent", bytes)?;
    derived_envelope(&c.event_id, c.occurred_at_ms)?;
    id("store_id", &c.store_id)?;
    id("sku", &c.sku)?;
    derived_id("check_id", &c.check_id)?;
    match &c.change {
        None => Err("check event without change".into()),
        Some(floor::shelf_check_event::Change::Answered(a)) => {
            finding(a.finding, a.counted)?;
            text("answered.by", &a.by)?;
            Ok(c)
        }
        Some(_) => Ok(c),
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
            occurred_at_ms: 1_700_000_000_000,
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
            occurred_at_ms: 1_700_000_000_000,
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

    fn movement_of(kind: store::MovementKind, quantity: i32) -> Vec<u8> {
        store::StockMovement {
            event_id: "e".into(),
            occurred_at_ms: 1_700_000_000_000,
            store_id: "S1".into(),
            sku: "A".into(),
            kind: kind as i32,
            quantity,
            note: String::new(),
        }
        .encode_to_vec()
    }

    #[test]
    fn every_limit_is_named_in_its_refusal() {
        use store::MovementKind::*;
        assert!(
            movement(&movement_of(Receipt, i32::MAX))
                .unwrap_err()
                .contains("limit: quantities")
        );
        assert!(
            movement(&movement_of(Adjustment, i32::MIN))
                .unwrap_err()
                .contains("limit: quantities")
        );
        assert!(movement(&movement_of(Adjustment, -MAX_QUANTITY)).is_ok());
        assert!(movement(&movement_of(Shrink, MAX_QUANTITY + 1)).is_err());
        assert!(movement(&movement_of(Count, MAX_QUANTITY)).is_ok());
        let long = store::Sale {
            event_id: "x".repeat(129),
            occurred_at_ms: 1_700_000_000_000,
            store_id: "S1".into(),
            basket_id: String::new(),
            lines: vec![store::SaleLine {
                sku: "A".into(),
                quantity: 1,
                unit_price_cents: 100,
            }],
        };
        let reason = sale(&long.encode_to_vec()).unwrap_err();
        assert!(
            reason.contains("event_id") && reason.contains("limit: ids"),
            "{reason}"
        );
        let spaced = store::Sale {
            event_id: "a b/c".into(),
            ..long.clone()
        };
        assert!(sale(&spaced.encode_to_vec()).is_err());
        let huge = store::Sale {
            event_id: "x".repeat(700_000),
            ..long.clone()
        };
        let reason = sale(&huge.encode_to_vec()).unwrap_err();
        assert!(reason.contains("limit: record size"), "{reason}");
        let many = store::Sale {
            event_id: "e".into(),
            lines: vec![long.lines[0].clone(); MAX_SALE_LINES + 1],
            ..long.clone()
        };
        assert!(
            sale(&many.encode_to_vec())
                .unwrap_err()
                .contains("limit: basket lines")
        );
        let seconds = store::Sale {
            event_id: "e".into(),
            occurred_at_ms: 1_700_000_000,
            ..long
        };
        assert!(
            sale(&seconds.encode_to_vec())
                .unwrap_err()
                .contains("limit: event time")
        );
    }

    #[test]
    fn a_staff_response_answers_an_offer_or_a_check() {
        let base = floor::StaffResponse {
            event_id: "e".into(),
            occurred_at_ms: 1_700_000_000_000,
            store_id: "S1".into(),
            sku: "A".into(),
            ..Default::default()
        };
        let offer = floor::StaffResponse {
            offer_id: "S1/A/S1/offer".into(),
            answer: floor::Answer::Accept as i32,
            ..base.clone()
        };
        assert!(staff_response(&offer.encode_to_vec()).is_ok());
        let check = floor::StaffResponse {
            check_id: "S1/A/S1/check".into(),
            finding: floor::ShelfFinding::StockIsThere as i32,
            counted: Some(4),
            ..base.clone()
        };
        assert!(staff_response(&check.encode_to_vec()).is_ok());
        let both = floor::StaffResponse {
            check_id: "S1/A/S1/check".into(),
            finding: floor::ShelfFinding::Empty as i32,
            ..offer.clone()
        };
        assert!(
            staff_response(&both.encode_to_vec())
                .unwrap_err()
                .contains("not both")
        );
        assert!(
            staff_response(&base.encode_to_vec())
                .unwrap_err()
                .contains("offer_id or a check_id")
        );
        let empty_with_stock = floor::StaffResponse {
            finding: floor::ShelfFinding::Empty as i32,
            counted: Some(3),
            ..check.clone()
        };
        assert!(
            staff_response(&empty_with_stock.encode_to_vec())
                .unwrap_err()
                .contains("counts 0")
        );
        let no_finding = floor::StaffResponse {
            finding: 0,
            ..check.clone()
        };
        assert!(
            staff_response(&no_finding.encode_to_vec())
                .unwrap_err()
                .contains("unknown finding")
        );
        let negative = floor::StaffResponse {
            counted: Some(-1),
            ..check
        };
        assert!(staff_response(&negative.encode_to_vec()).is_err());
    }

    #[test]
    fn keys_split_back() {
        assert_eq!(split_key(&key("S1", "SKU-9")), ("S1", "SKU-9"));
    }
}
