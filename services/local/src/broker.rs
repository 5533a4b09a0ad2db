//! An embedded Kafka-protocol broker (tansu) for local runs and tests.
use std::net::TcpListener;
use std::time::Duration;
use anyhow::{Context, Result};
use tansu_broker::{NODE_ID, broker::Broker, coordinator::group::administrator::Controller};
use tansu_storage::StorageContainer;
use url::Url;

pub struct EmbeddedBroker { pub bootstrap: String }

impl EmbeddedBroker {
    pub fn start(storage: &str) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listener = Url::parse(&format!("tcp://127.0.0.1:{port}"))?;
        let storage = Url::parse(storage)?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("rt");
            rt.block_on(async move {
                let broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
                    .node_id(NODE_ID)
                    .cluster_id("shelfguard")
                    .incarnation_id(uuid::Uuid::now_v7())
                    .advertised_listener(listener.clone())
                    .storage(storage)
                    .listener(listener)
                    .silent(true)
                    .build()
                    .await;
                match broker {
                    Ok(b) => { let _ = tx.send(Ok(())); let _ = b.main(tokio::time::Instant::now()).await; }
                    Err(e) => { let _ = tx.send(Err(anyhow::anyhow!("{e:?}"))); }
                }
            });
        });
        rx.recv_timeout(Duration::from_secs(30)).context("broker start")??;
        Ok(Self { bootstrap: format!("127.0.0.1:{port}") })
    }
}
