//! The limits every input is checked against, in one place.
//!
//! A record outside them is refused with a dead letter that names the limit (see `validate`);
//! `docs/topics.md` lists them, rendered from [`markdown`] (a test keeps the two equal). They
//! exist so that one record can neither overflow stock arithmetic nor grow a key's state past
//! what the broker accepts.

/// Longest `store_id` or `sku`, in bytes: printable, no spaces, no `/` (they make up the state
/// keys `<store>/<sku>`).
pub const MAX_ID_BYTES: usize = 64;
/// Longest other id a store system or the warehouse may send (`event_id`, `basket_id`, an echoed
/// `reorder_id` or `offer_id`), in bytes: printable, no spaces; `/` is allowed, so an event id may
/// be built from a reorder id (`<store>/<sku>/R<n>`).
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// Longest id on the topics our own services publish (their ids are built from input ids,
/// e.g. `sl:<event_id>:<sku>`).
pub const MAX_DERIVED_ID_BYTES: usize = 256;
/// Largest quantity of one sale line or stock movement (a count, receipt, adjustment in
/// either direction, shrink), in units. On-hand stays far from `i32::MAX` with it, and stock
/// arithmetic is checked besides.
pub const MAX_QUANTITY: i32 = 1_000_000;
/// Most lines in one basket.
pub const MAX_SALE_LINES: usize = 500;
/// Largest price or gesture, in cents (10 million currency units).
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;
/// Longest free text (a movement note, a decline reason, a product name or location), in bytes.
pub const MAX_TEXT_BYTES: usize = 500;
/// Most entries of a list in a catalogue record (complements, allergen claims, attributes).
pub const MAX_LIST_ITEMS: usize = 32;
/// Largest input record value, in bytes; anything bigger is refused before it is decoded.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;
/// Largest record a service publishes (an output), in bytes. An event whose outputs would be
/// bigger is refused (dead letter) and the key keeps its previous state.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// Largest changelog record of one (store, SKU) key, in bytes. An event that would grow a key
/// past it is refused (dead letter) and the key keeps its previous state.
pub const MAX_STATE_BYTES: usize = 64 * 1024;
/// Most events held per (store, SKU) while they wait for their product's catalogue record;
/// a further one is dead-lettered at once.
pub const MAX_HELD_EVENTS: usize = 32;
/// How many event ids each key remembers to drop upstream duplicates (besides the offsets).
pub const RECENT_EVENT_IDS: usize = 8;
/// Earliest and latest accepted `occurred_at_ms` (2000-01-01 and 2200-01-01 UTC): anything
/// outside is a unit mistake (seconds, microseconds) rather than a time.
pub const MIN_OCCURRED_AT_MS: i64 = 946_684_800_000;
pub const MAX_OCCURRED_AT_MS: i64 = 7_258_118_400_000;

/// The limits as the Markdown list of `docs/topics.md`.
pub fn markdown() -> String {
    format!(
        "\
- `store_id` and `sku`: 1 to {MAX_ID_BYTES} bytes, printable, no spaces, no `/`.
- other ids from store systems and the warehouse (`event_id`, `basket_id`, an echoed \
`reorder_id` or `offer_id`): 1 to {MAX_EVENT_ID_BYTES} bytes, printable, no spaces (`/` allowed); \
ids our services publish: at most {MAX_DERIVED_ID_BYTES} bytes.
- `occurred_at_ms`: UTC milliseconds between {MIN_OCCURRED_AT_MS} (2000-01-01) and \
{MAX_OCCURRED_AT_MS} (2200-01-01).
- quantities (sale lines, receipts, counts, adjustments either way, shrink): at most \
{MAX_QUANTITY} units each; stock arithmetic is checked, and a movement that would take on-hand \
past 2^31-1 is refused.
- a basket: 1 to {MAX_SALE_LINES} lines.
- prices and gestures: 0 to {MAX_PRICE_CENTS} cents.
- free text (notes, reasons, names, locations): at most {MAX_TEXT_BYTES} bytes.
- lists in a product (complements, allergen claims, hard attributes): at most {MAX_LIST_ITEMS} \
entries.
- a record value: at most {MAX_RECORD_BYTES} bytes (refused before decoding).
- the record key of a store-keyed topic must equal the message's `store_id`; of \
`catalog.products.v1`, its `sku`.
- what a service keeps and publishes per event: each output at most {MAX_OUTPUT_BYTES} bytes, \
each key's state at most {MAX_STATE_BYTES} bytes, the last {RECENT_EVENT_IDS} event ids per key. \
An event that would break one of these, or that makes a service fail in any other way (an error, \
a panic), is dead-lettered with the reason; the key keeps its previous state and the service \
goes on with the next record.
- events for a SKU not in the catalogue yet: at most {MAX_HELD_EVENTS} per (store, SKU) are held (within the state limit above) and applied in their order once the product arrives; more are dead-lettered at once, and held ones after the grace period (`UNKNOWN_SKU_GRACE_HOURS`).
"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_topics_md_lists_the_limits_exactly() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/topics.md"))
                .expect("docs/topics.md");
        let limits = super::markdown();
        assert!(
            doc.contains(&limits),
            "docs/topics.md is out of date; its Limits section must be:\n{limits}"
        );
    }
}
