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

/// The gesture and its value to the customer (what the store gives away), or why none fits.
pub fn choose(
    p: GesturePolicy,
    failed_reorders: i32,
    original_cents: i64,
    substitute_cents: i64,
) -> Result<(Gesture, i64), String> {
    let at_original = (substitute_cents - original_cents).max(0);
    if failed_reorders >= p.free_after_failures && substitute_cents <= p.max_gesture_cents {
        Ok((Gesture::Free, substitute_cents))
    } else if at_original <= p.max_gesture_cents {
        Ok((Gesture::AtOriginalPrice, at_original))
    } else {
        Err(format!(
            "gesture of {at_original} cents exceeds the cap of {} cents",
            p.max_gesture_cents
        ))
    }
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
        assert_eq!(choose(p, 3, 799, 1399), Ok((Gesture::Free, 1399)));
        assert_eq!(choose(p, 2, 799, 1399), Ok((Gesture::AtOriginalPrice, 600)));
        assert_eq!(
            choose(p, 5, 799, 1999),
            Ok((Gesture::AtOriginalPrice, 1200)),
            "free would exceed the cap"
        );
        assert!(choose(p, 1, 100, 5000).is_err());
    }
}
