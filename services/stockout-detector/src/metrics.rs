//! Domain metrics of the detector: open stockout episodes per store, from the state of each
//! (store, SKU) key (`Item.open_stockout_id` non-empty), so the gauge stays right after
//! a restore and after a rebalance (a revoked partition's keys stop counting here and count at
//! their new owner: sum the gauge by store across instances).
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use crate::episodes::Item as DetectorItem;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use shelfguard_runtime::Observer;
use shelfguard_runtime::metrics::{self, Labels};

fn open_gauge() -> &'static Family<Labels, Gauge> {
    static OPEN: OnceLock<Family<Labels, Gauge>> = OnceLock::new();
    OPEN.get_or_init(|| {
        let f = Family::default();
        metrics::register(
            "stockouts_open",
            "Stockout episodes open now, by store (keys owned by this instance)",
            f.clone(),
        );
        f
    })
}

/// Tracks which keys have an open episode, per store.
pub struct Stockouts {
    /// Store id -> its (store/SKU) keys with an open episode, owned by this instance.
    open: HashMap<String, HashSet<String>>,
    /// `shelfguard_stockouts_open{store}`.
    gauge: &'static Family<Labels, Gauge>,
}

impl Default for Stockouts {
    fn default() -> Self {
        Self {
            open: HashMap::new(),
            gauge: open_gauge(),
        }
    }
}

fn store_of(key: &str) -> &str {
    key.split('/').next().unwrap_or(key)
}

impl Stockouts {
    fn update(&mut self, key: &str, is_open: bool) {
        let store = store_of(key);
        let keys = self.open.entry(store.to_owned()).or_default();
        let changed = if is_open {
            keys.insert(key.to_owned())
        } else {
            keys.remove(key)
        };
        let labels = vec![("store", store.to_owned())];
        if changed || is_open {
            self.gauge.get_or_create(&labels).set(keys.len() as i64);
        }
    }

    /// Open episodes of `store` counted here (for tests).
    pub fn open(&self, store: &str) -> usize {
        self.open.get(store).map_or(0, HashSet::len)
    }
}

impl Observer<DetectorItem> for Stockouts {
    fn state(&mut self, key: &str, state: &DetectorItem) {
        self.update(key, !state.open_stockout_id.is_empty());
    }

    fn forgotten(&mut self, key: &str) {
        let store = store_of(key).to_owned();
        if let Some(keys) = self.open.get_mut(&store) {
            keys.remove(key);
            if keys.is_empty() {
                // No longer ours: let the new owner report the store.
                self.open.remove(&store);
                self.gauge.remove(&vec![("store", store)]);
            } else {
                self.gauge
                    .get_or_create(&vec![("store", store)])
                    .set(keys.len() as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(open: &str) -> DetectorItem {
        DetectorItem {
            open_stockout_id: open.into(),
            ..Default::default()
        }
    }

    #[test]
    fn counts_open_keys_per_store_through_restore_close_and_revoke() {
        let mut s = Stockouts::default();
        s.state("S7/A", &item("S7/A/S1"));
        s.state("S7/A", &item("S7/A/S1")); // restored or replayed: still one
        s.state("S7/B", &item("S7/B/S1"));
        s.state("S8/A", &item(""));
        assert_eq!((s.open("S7"), s.open("S8")), (2, 0));
        let text = metrics::render();
        assert!(
            text.contains("shelfguard_stockouts_open{store=\"S7\"} 2"),
            "{text}"
        );
        s.state("S7/A", &item(""));
        assert_eq!(s.open("S7"), 1);
        s.forgotten("S7/B");
        assert_eq!(s.open("S7"), 0);
        let text = metrics::render();
        assert!(!text.contains("store=\"S7\""), "{text}");
    }
}
