//! The daily gesture budget of a store: what its offers may give away per UTC day.
//!
//! An issued offer commits its gesture value; it stays committed when redeemed and is released
//! when the offer ends otherwise (declined, expired, withdrawn) on the same day. Each (store,
//! SKU) keeps what its own offers committed today; the store's total is their sum.
use shelfguard_events::state::OfferItem;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Days since the epoch (UTC) of `at_ms`.
pub fn day(at_ms: i64) -> i64 {
    at_ms.div_euclid(DAY_MS)
}

/// What `item` has committed on `day`.
pub fn committed_on(item: &OfferItem, day: i64) -> i64 {
    if item.committed_day == day {
        item.committed_cents
    } else {
        0
    }
}

/// Commits `cents` on `day`.
pub fn commit(item: &mut OfferItem, day: i64, cents: i64) {
    if item.committed_day != day {
        item.committed_day = day;
        item.committed_cents = 0;
    }
    item.committed_cents += cents;
}

/// Releases `cents` committed on `day` (nothing when that day is over: its budget is closed).
pub fn release(item: &mut OfferItem, day: i64, cents: i64) {
    if item.committed_day == day {
        item.committed_cents = (item.committed_cents - cents).max(0);
    }
}

/// A store's budget per day, from `STORE_BUDGETS` overrides or the default.
pub fn of_store(default_cents: i64, overrides: &str, store: &str) -> i64 {
    overrides
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(s, _)| s.trim() == store)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(default_cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_and_releases_within_the_day_only() {
        let mut item = OfferItem::default();
        let d = day(1_700_000_000_000);
        commit(&mut item, d, 500);
        commit(&mut item, d, 300);
        assert_eq!(committed_on(&item, d), 800);
        release(&mut item, d, 300);
        assert_eq!(committed_on(&item, d), 500);
        assert_eq!(committed_on(&item, d + 1), 0, "a new day starts empty");
        release(&mut item, d - 1, 500);
        assert_eq!(
            committed_on(&item, d),
            500,
            "yesterday's release changes nothing today"
        );
        commit(&mut item, d + 1, 100);
        assert_eq!(committed_on(&item, d + 1), 100);
    }

    #[test]
    fn per_store_overrides() {
        assert_eq!(of_store(5000, "S-001=8000, S-002=100", "S-002"), 100);
        assert_eq!(of_store(5000, "S-001=8000", "S-003"), 5000);
        assert_eq!(of_store(5000, "", "S-003"), 5000);
    }
}
