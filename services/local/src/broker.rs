//! An embedded Kafka-protocol broker (tansu) for local runs and tests.
use std::net::TcpListener;
use std::time::Duration;

use anyhow::{Context, Result};
use tansu_broker::{NODE_ID, broker::Broker, coordinator::group::administrator::Controller};
use tansu_storage::StorageContainer;
use url::Url;

/// Checks a `BROKER_STORAGE` value: the forms the embedded broker accepts, or a reason that
/// lists them.
pub fn parse_storage(s: &str) -> Result<String, String> {
    const FORMS: &str = "use memory://tansu/ (the default: kept in memory, lost at exit) or \
                         sqlite://FILE.db (a file relative to the working directory, kept across runs)";
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e}): {FORMS}"))?;
    match url.scheme() {
        "memory" => Ok(s.to_owned()),
        "sqlite" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(s.to_owned()),
        "sqlite" => Err(format!(
            "{s:?}: the embedded broker takes SQLite files relative to the working directory \
             only (sqlite://FILE.db), not absolute paths; run from the directory you want, or {FORMS}"
        )),
        other => Err(format!("{s:?}: unknown storage {other:?}: {FORMS}")),
    }
}

/// A tansu broker on its own thread and runtime, listening on a free loopback port.
pub struct EmbeddedBroker {
    /// `host:port` for `bootstrap.servers`.
    pub bootstrap: String,
    /// Ends the broker's runtime (its listener and every connection) when sent or dropped.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EmbeddedBroker {
    /// Starts a broker with `storage` (`memory://tansu/` or `sqlite://FILE`); returns once it listens.
    pub fn start(storage: &str) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Self::start_on(storage, port)
    }

    pub fn start_on(storage: &str, port: u16) -> Result<Self> {
        // tansu binds inside its runtime and would only log the failure: check first.
        if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
            anyhow::bail!(
                "cannot start the embedded broker on port {port}: {e} (another broker, or another \
                 command 1, may be running). Set BROKER_PORT to a free port (0 = any), or stop \
                 what uses it, or set KAFKA_BOOTSTRAP_SERVERS to use a running cluster"
            );
        }
        parse_storage(storage).map_err(|e| anyhow::anyhow!(e))?;
        let listener = Url::parse(&format!("tcp://127.0.0.1:{port}"))?;
        let storage = Url::parse(storage).with_context(|| format!("broker storage {storage:?}"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("tansu".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow::anyhow!("broker runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let broker =
                        Broker::<Controller<StorageContainer>, StorageContainer>::builder()
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
                        Ok(mut b) => {
                            let _ = tx.send(Ok(()));
                            // `serve`, not `main`: no signal handlers of its own, so on Ctrl-C the
                            // services finish and commit before the process (and the broker) ends.
                            tokio::select! {
                                r = b.serve(tokio::time::Instant::now()) => if let Err(e) = r {
                                    tracing::error!(error = ?e, "embedded broker stopped");
                                },
                                _ = stopped => {}
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(anyhow::anyhow!("broker: {e:?}")));
                        }
                    }
                });
                // Dropping the runtime closes the listener and every connection.
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        rx.recv_timeout(Duration::from_secs(60))
            .context("broker did not start in 60 s")??;
        // The listener binds inside `main`; wait until it accepts connections.
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..600 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(Self {
                    bootstrap: addr,
                    stop: Some(stop),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        anyhow::bail!("broker not listening on {addr} after 6 s")
    }

    /// Stops the broker: clients see it go away (tests of what services do without one).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
