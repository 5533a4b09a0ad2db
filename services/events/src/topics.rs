//! The topic catalogue: every topic of the system, in one place.
//!
//! `docs/topics.md` is the human view of this table; a test keeps the two in step.
//! Store-keyed topics must all have the same partition count and the Kafka default
//! (murmur2) partitioner, so that one service instance owns every event of a store.

/// How the broker keeps a topic's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Deleted after this many days.
    Delete { retention_days: u32 },
    /// Compacted: the latest record per key is kept forever.
    Compact,
}

/// One topic of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct TopicSpec {
    /// Base name; a deployment may add a prefix (`TOPIC_PREFIX`).
    pub name: &'static str,
    /// What the record key holds.
    pub key: &'static str,
    /// Protobuf message of the record value (or a description for raw bytes).
    pub value: &'static str,
    pub producer: &'static str,
    pub consumers: &'static str,
    pub cleanup: Cleanup,
    /// True when the topic is partitioned by store id (and so co-partitioned with the others).
    pub store_partitioned: bool,
}

pub const CATALOG_PRODUCTS: &str = "catalog.products.v1";
pub const STORE_SALES: &str = "store.sales.v1";
pub const STORE_STOCK_MOVEMENTS: &str = "store.stock-movements.v1";
pub const WAREHOUSE_REORDER_OUTCOMES: &str = "warehouse.reorder-outcomes.v1";
pub const WAREHOUSE_REORDER_REQUESTS: &str = "warehouse.reorder-requests.v1";
pub const INVENTORY_STOCK_LEVELS: &str = "inventory.stock-levels.v1";
pub const STOCKOUTS: &str = "stockouts.v1";
pub const FLOOR_OFFERS: &str = "floor.offers.v1";
pub const FLOOR_RESPONSES: &str = "floor.responses.v1";
pub const FLOOR_CHECKS: &str = "floor.checks.v1";
pub const INVENTORY_STATE: &str = "inventory.state.v1";
pub const DETECTOR_STATE: &str = "stockout-detector.state.v1";
pub const OFFERS_STATE: &str = "offer-generator.state.v1";
pub const INVENTORY_DLQ: &str = "inventory.dead-letter.v1";
pub const DETECTOR_DLQ: &str = "stockout-detector.dead-letter.v1";
pub const OFFERS_DLQ: &str = "offer-generator.dead-letter.v1";
pub const FLOOR_CHANNEL_DLQ: &str = "floor-channel.dead-letter.v1";

const DLQ_VALUE: &str = "original record bytes, unchanged (reason and source in `dlq.*` headers)";
const STATE_VALUE: &str = "shelfguard.state.v1.Entry";

/// Every topic, inputs first, then outputs, internal state and dead letters.
pub const ALL: &[TopicSpec] = &[
    TopicSpec {
        name: CATALOG_PRODUCTS,
        key: "SKU",
        value: "shelfguard.catalog.v1.Product",
        producer: "store systems (product master)",
        consumers: "inventory, offer-generator",
        cleanup: Cleanup::Compact,
        store_partitioned: false,
    },
    TopicSpec {
        name: STORE_SALES,
        key: "store id",
        value: "shelfguard.store.v1.Sale",
        producer: "store systems (POS)",
        consumers: "inventory, offer-generator (complements)",
        cleanup: Cleanup::Delete { retention_days: 7 },
        store_partitioned: true,
    },
    TopicSpec {
        name: STORE_STOCK_MOVEMENTS,
        key: "store id",
        value: "shelfguard.store.v1.StockMovement",
        producer: "store systems (receiving, counts, shrink), offer-generator (shelf-check counts)",
        consumers: "inventory",
        cleanup: Cleanup::Delete { retention_days: 7 },
        store_partitioned: true,
    },
    TopicSpec {
        name: WAREHOUSE_REORDER_OUTCOMES,
        key: "store id",
        value: "shelfguard.warehouse.v1.ReorderOutcome",
        producer: "warehouse",
        consumers: "inventory",
        cleanup: Cleanup::Delete { retention_days: 7 },
        store_partitioned: true,
    },
    TopicSpec {
        name: WAREHOUSE_REORDER_REQUESTS,
        key: "store id",
        value: "shelfguard.warehouse.v1.ReorderRequest",
        producer: "inventory",
        consumers: "warehouse",
        cleanup: Cleanup::Delete { retention_days: 7 },
        store_partitioned: true,
    },
    TopicSpec {
        name: INVENTORY_STOCK_LEVELS,
        key: "store id",
        value: "shelfguard.inventory.v1.StockLevel",
        producer: "inventory",
        consumers: "stockout-detector, offer-generator, store systems",
        cleanup: Cleanup::Delete { retention_days: 7 },
        store_partitioned: true,
    },
    TopicSpec {
        name: STOCKOUTS,
        key: "store id",
        value: "shelfguard.stockout.v1.StockoutEvent",
        producer: "stockout-detector",
        consumers: "offer-generator, store systems, dashboards",
        cleanup: Cleanup::Delete { retention_days: 30 },
        store_partitioned: true,
    },
    TopicSpec {
        name: FLOOR_OFFERS,
        key: "store id",
        value: "shelfguard.floor.v1.OfferEvent",
        producer: "offer-generator",
        consumers: "floor-channel, inventory (redemptions), store systems, dashboards",
        cleanup: Cleanup::Delete { retention_days: 30 },
        store_partitioned: true,
    },
    TopicSpec {
        name: FLOOR_CHECKS,
        key: "store id",
        value: "shelfguard.floor.v1.ShelfCheckEvent",
        producer: "offer-generator",
        consumers: "floor-channel, stockout-detector (answers), store systems, dashboards",
        cleanup: Cleanup::Delete { retention_days: 30 },
        store_partitioned: true,
    },
    TopicSpec {
        name: FLOOR_RESPONSES,
        key: "store id",
        value: "shelfguard.floor.v1.StaffResponse",
        producer: "floor-channel (console, API), store systems (tills)",
        consumers: "offer-generator",
        cleanup: Cleanup::Delete { retention_days: 30 },
        store_partitioned: true,
    },
    TopicSpec {
        name: INVENTORY_STATE,
        key: "store id/SKU",
        value: STATE_VALUE,
        producer: "inventory",
        consumers: "inventory (restore)",
        cleanup: Cleanup::Compact,
        store_partitioned: true,
    },
    TopicSpec {
        name: DETECTOR_STATE,
        key: "store id/SKU",
        value: STATE_VALUE,
        producer: "stockout-detector",
        consumers: "stockout-detector (restore)",
        cleanup: Cleanup::Compact,
        store_partitioned: true,
    },
    TopicSpec {
        name: OFFERS_STATE,
        key: "store id/SKU",
        value: STATE_VALUE,
        producer: "offer-generator",
        consumers: "offer-generator (restore)",
        cleanup: Cleanup::Compact,
        store_partitioned: true,
    },
    TopicSpec {
        name: INVENTORY_DLQ,
        key: "source key",
        value: DLQ_VALUE,
        producer: "inventory",
        consumers: "operators",
        cleanup: Cleanup::Delete { retention_days: 30 },
        store_partitioned: false,
    },
    TopicSpec {
        name: DETECTOR_DLQ,
        key: "source key",
        value: DLQ_VALUE,
        producer: "stockout-detector",
        consumers: "operators",
        cleanup: Cleanup::Delete { retention_days: 30 },
        store_partitioned: false,
    },
    TopicSpec {
        name: OFFERS_DLQ,
        key: "source key",
        value: DLQ_VALUE,
        producer: "offer-generator",
        consumers: "operators",
        cleanup: Cleanup::Delete { retention_days: 30 },
        store_partitioned: false,
    },
    TopicSpec {
        name: FLOOR_CHANNEL_DLQ,
        key: "source key",
        value: DLQ_VALUE,
        producer: "floor-channel (bad records, webhooks given up)",
        consumers: "operators",
        cleanup: Cleanup::Delete { retention_days: 30 },
        store_partitioned: false,
    },
];

/// Looks a topic up by base name.
pub fn spec(name: &str) -> Option<&'static TopicSpec> {
    ALL.iter().find(|t| t.name == name)
}

/// The catalogue as the Markdown table of `docs/topics.md` (a test keeps the two equal).
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| topic | key | value | producer | consumers | partitions | cleanup |\n|---|---|---|---|---|---|---|\n",
    );
    for t in ALL {
        let cleanup = match t.cleanup {
            Cleanup::Compact => "compacted".to_owned(),
            Cleanup::Delete { retention_days } => format!("delete after {retention_days} d"),
        };
        let parts = if t.store_partitioned {
            "N (by store id)"
        } else if t.cleanup == Cleanup::Compact {
            "any"
        } else {
            "any (keyed by source key)"
        };
        let value = if t.value.starts_with("shelfguard.") {
            format!("`{}`", t.value)
        } else {
            t.value.to_owned()
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            t.name, t.key, value, t.producer, t.consumers, parts, cleanup
        ));
    }
    s
}

/// Partitions of every topic in the kustomize base (`deploy/base/kafka-topics.yaml`); overlays
/// patch the store-partitioned ones together (label `shelfguard.io/partitioning: store`).
pub const BASE_PARTITIONS: u32 = 3;

/// The catalogue as Strimzi `KafkaTopic` resources, the committed
/// `deploy/base/kafka-topics.yaml` (a test keeps the two equal): one replica and
/// [`BASE_PARTITIONS`] partitions, which overlays patch; cleanup and retention from the catalogue.
pub fn strimzi_topics() -> String {
    let mut s = String::from(
        "# Generated from services/events/src/topics.rs (`strimzi_topics()`): edit the catalogue,\n\
         # then copy the text the failing test `deploy_kafka_topics_match_the_catalogue` prints.\n\
         # Overlays patch partitions (all store-partitioned topics together) and replicas.\n",
    );
    for t in ALL {
        let partitioning = if t.store_partitioned { "store" } else { "any" };
        let config = match t.cleanup {
            Cleanup::Compact => "    cleanup.policy: compact\n".to_owned(),
            Cleanup::Delete { retention_days } => format!(
                "    cleanup.policy: delete\n    retention.ms: \"{}\"\n",
                u64::from(retention_days) * 86_400_000
            ),
        };
        s.push_str(&format!(
            "---\napiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata:\n  name: {name}\n  labels:\n    strimzi.io/cluster: shelfguard\n    shelfguard.io/partitioning: {partitioning}\nspec:\n  topicName: {name}\n  partitions: {BASE_PARTITIONS}\n  replicas: 1\n  config:\n{config}",
            name = t.name,
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_kafka_topics_match_the_catalogue() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/base/kafka-topics.yaml"
        );
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let expected = strimzi_topics();
        assert!(
            committed == expected,
            "deploy/base/kafka-topics.yaml is out of date with the topic catalogue; it must be:\n{expected}"
        );
    }

    #[test]
    fn docs_topics_md_lists_the_catalogue_exactly() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/topics.md"))
                .expect("docs/topics.md");
        let table = markdown_table();
        assert!(
            doc.contains(&table),
            "docs/topics.md is out of date; its table must be:\n{table}"
        );
    }

    #[test]
    fn names_are_unique_and_versioned() {
        let mut names: Vec<_> = ALL.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(ALL.iter().all(|t| t.name.ends_with(".v1")));
    }
}
