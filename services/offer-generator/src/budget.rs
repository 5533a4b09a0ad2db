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

/// Per-store daily budgets overriding the default (`STORE_BUDGETS`), parsed once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreBudgets(pub std::collections::BTreeMap<String, i64>);

impl StoreBudgets {
    /// The budget of `store`, or `default_cents` when it has no override.
    pub fn of(&self, store: &str, default_cents: i64) -> i64 {
        self.0.get(store).copied().unwrap_or(default_cents)
    }
}

/// Parses `S-001=8000,S-002=3000` (cents per UTC day); a malformed entry is refused with the
/// reason (the service does not start), never ignored.
pub fn parse_store_budgets(s: &str) -> Result<StoreBudgets, String> {
    let mut out = std::collections::BTreeMap::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (store, cents) = entry
            .split_once('=')
            .ok_or_else(|| format!("`{entry}` is not STORE=CENTS (e.g. S-001=8000)"))?;
        let store = store.trim();
        shelfguard_events::validate::id("store id", store)
            .map_err(|e| format!("`{entry}`: {e}"))?;
        let cents: i64 = cents.trim().parse().map_err(|_| {
            format!(
                "`{entry}`: {:?} is not a whole number of cents",
                cents.trim()
            )
        })?;
        if cents < 0 {
            return Err(format!("`{entry}`: a budget cannot be negative"));
        }
        if out.insert(store.to_owned(), cents).is_some() {
            return Err(format!("store {store} is listed twice"));
        }
    }
    Ok(StoreBudgets(out))
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
        let b = parse_store_budgets("S-001=8000, S-002=100").unwrap();
        assert_eq!(b.of("S-002", 5000), 100);
        assert_eq!(b.of("S-003", 5000), 5000);
        assert_eq!(parse_store_budgets("").unwrap().of("S-003", 5000), 5000);
    }

    #[test]
    fn malformed_budgets_are_refused_with_the_reason() {
        assert!(
            parse_store_budgets("S-001")
                .unwrap_err()
                .contains("STORE=CENTS")
        );
        assert!(
            parse_store_budgets("S-001=lots")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(
            parse_store_budgets("S-001=-5")
                .unwrap_err()
                .contains("negative")
        );
        assert!(
            parse_store_budgets("S-001=1,S-001=2")
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse_store_budgets("a b=1").is_err());
    }
}
