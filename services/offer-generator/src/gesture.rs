//! What the customer pays for the substitute.
use shelfguard_events::floor::Gesture;

/// Gesture policy of a store.
#[derive(Debug, Clone, Copy)]
pub struct GesturePolicy {
    /// From this many failed reorders in 7 days the substitute is free.
    pub free_after_failures: i32,
    /// The most one offer may give away, in cents.
    pub max_gesture_cents: i64,
}

/// The gestures the policy allows for this stockout, most generous first, with their value
/// (what the store gives away): free after repeated failures, else the substitute at the
/// original's price. Gestures over the per-offer cap are left out. (Suspected stockouts get
/// no offer at all, only a shelf check: see `checks`.)
pub fn options(
    p: GesturePolicy,
    failed_reorders: i32,
    original_cents: i64,
    substitute_cents: i64,
) -> Vec<(Gesture, i64)> {
    let at_original = (substitute_cents - original_cents).max(0);
    let mut v = Vec::new();
    if failed_reorders >= p.free_after_failures {
        v.push((Gesture::Free, substitute_cents));
    }
    v.push((Gesture::AtOriginalPrice, at_original));
    v.retain(|(_, value)| *value <= p.max_gesture_cents);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gesture_table() {
        let p = GesturePolicy {
            free_after_failures: 3,
            max_gesture_cents: 1500,
        };
        assert_eq!(
            options(p, 3, 799, 1399),
            [(Gesture::Free, 1399), (Gesture::AtOriginalPrice, 600)]
        );
        assert_eq!(options(p, 2, 799, 1399), [(Gesture::AtOriginalPrice, 600)]);
        assert_eq!(
            options(p, 5, 799, 1999),
            [(Gesture::AtOriginalPrice, 1200)],
            "free would exceed the cap"
        );
        assert!(options(p, 1, 100, 5000).is_empty());
    }
}
