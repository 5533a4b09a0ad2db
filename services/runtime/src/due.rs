//! Timers over a partition's state keys, for processors whose time is the events' own.
//!
//! A processor records, per state key `<store>/<sku>`, when that key next falls due (a retry,
//! a check, an expiry). Any later event of the same store then also visits the keys that are
//! due by its time (see [`crate::Processor::keys`]), so no wall-clock timer is needed and a
//! replay decides the same way. An index over the state: rebuilt from the `restored` hook;
//! a stale entry costs one visit, nothing more.
use std::collections::{BTreeSet, HashMap};

/// When each key falls due, grouped by store.
#[derive(Debug, Default)]
pub struct DueIndex {
    /// Per store: (due time, key), earliest first.
    by_store: HashMap<String, BTreeSet<(i64, String)>>,
    /// Per key: its entry in `by_store`, to replace it without a scan.
    of_key: HashMap<String, i64>,
}

fn store_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(store, _)| store)
}

impl DueIndex {
    /// Sets (or with `None` clears) when `key` (`<store>/<sku>`) falls due.
    pub fn set(&mut self, key: &str, due: Option<i64>) {
        let store = store_of(key);
        if let Some(old) = self.of_key.remove(key)
            && let Some(set) = self.by_store.get_mut(store)
        {
            set.remove(&(old, key.to_owned()));
            if set.is_empty() {
                self.by_store.remove(store);
            }
        }
        if let Some(t) = due {
            self.by_store
                .entry(store.to_owned())
                .or_default()
                .insert((t, key.to_owned()));
            self.of_key.insert(key.to_owned(), t);
        }
    }

    /// The keys of `store` due at or before `now`, earliest first.
    pub fn due<'a>(&'a self, store: &str, now: i64) -> impl Iterator<Item = &'a str> + 'a {
        self.by_store
            .get(store)
            .into_iter()
            .flat_map(move |set| set.iter().take_while(move |(t, _)| *t <= now))
            .map(|(_, k)| k.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fall_due_by_store_and_time_and_can_be_moved_or_cleared() {
        let mut d = DueIndex::default();
        d.set("S1/A", Some(10));
        d.set("S1/B", Some(5));
        d.set("S2/C", Some(1));
        assert_eq!(d.due("S1", 4).count(), 0);
        assert_eq!(d.due("S1", 10).collect::<Vec<_>>(), ["S1/B", "S1/A"]);
        d.set("S1/B", Some(20));
        assert_eq!(d.due("S1", 10).collect::<Vec<_>>(), ["S1/A"]);
        d.set("S1/A", None);
        assert_eq!(d.due("S1", 100).collect::<Vec<_>>(), ["S1/B"]);
        d.set("S1/B", None);
        assert!(!d.by_store.contains_key("S1") && d.of_key.len() == 1);
        assert_eq!(d.due("S2", 1).collect::<Vec<_>>(), ["S2/C"]);
    }
}
