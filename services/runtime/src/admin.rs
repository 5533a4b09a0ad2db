//! Topic creation for local runs and tests (production topics come from deploy/).
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::Producer as _;
use rdkafka::types::RDKafkaErrorCode;
use shelfguard_events::topics::{ALL, Cleanup};

use crate::config::KafkaArgs;

/// Creates every catalogue topic that does not exist yet.
pub async fn ensure_topics(args: &KafkaArgs, partitions: i32, replication: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = args
        .client("shelfguard-admin")
        .create()
        .context("creating admin client")?;
    let names: Vec<String> = ALL.iter().map(|t| args.topic(t.name)).collect();
    // Only the missing ones are asked for: a restart on persistent storage asks for nothing (and
    // a broker logs nothing about topics that already exist).
    let lister: rdkafka::producer::BaseProducer = args
        .client("shelfguard-admin")
        .create()
        .context("creating metadata client")?;
    let existing: std::collections::BTreeSet<String> = tokio::task::spawn_blocking(move || {
        lister
            .client()
            .fetch_metadata(None, Duration::from_secs(30))
            .map(|md| md.topics().iter().map(|t| t.name().to_owned()).collect())
    })
    .await
    .context("listing topics")?
    .context("listing topics")?;
    let retentions: Vec<Option<String>> = ALL
        .iter()
        .map(|t| match t.cleanup {
            Cleanup::Compact => None,
            Cleanup::Delete { retention_days } => {
                Some((u64::from(retention_days) * 86_400_000).to_string())
            }
        })
        .collect();
    let mut topics = Vec::new();
    for ((spec, name), retention) in ALL.iter().zip(&names).zip(&retentions) {
        if existing.contains(name) {
            continue;
        }
        let policy = if retention.is_some() {
            "delete"
        } else {
            "compact"
        };
        let parts =
            if spec.store_partitioned || spec.name == shelfguard_events::topics::CATALOG_PRODUCTS {
                partitions
            } else {
                1
            };
        let mut t = NewTopic::new(name, parts, TopicReplication::Fixed(replication))
            .set("cleanup.policy", policy);
        if let Some(r) = retention {
            t = t.set("retention.ms", r);
        }
        topics.push(t);
    }
    if topics.is_empty() {
        return Ok(());
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin
        .create_topics(topics.iter(), &opts)
        .await
        .context("creating topics")?
    {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}
