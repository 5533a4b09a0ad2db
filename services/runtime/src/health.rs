//! `/healthz` (alive), `/readyz` (consuming, state restored) and `/metrics` (Prometheus text)
//! over plain HTTP/1.1.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Next offset per catalogue partition (see [`crate::table::Table::positions_handle`]).
pub type Positions = Arc<RwLock<BTreeMap<i32, i64>>>;

/// Shared readiness flag, and what the readiness answer reports besides.
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
    /// The catalogue applied so far, for services that read it.
    catalogue: Arc<RwLock<Option<Positions>>>,
}

impl Health {
    /// Serves the endpoints on `addr` in the background until shutdown (a failure to bind is
    /// logged: the service itself goes on).
    pub fn spawn(addr: &str, shutdown: &CancellationToken) -> Self {
        let health = Self::default();
        let (h, addr, s) = (health.clone(), addr.to_owned(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = h.serve(&addr, s).await {
                tracing::error!(error = %e, "health endpoint failed");
            }
        });
        health
    }

    pub fn set_ready(&self, v: bool) {
        self.ready.store(v, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
    /// Reports the catalogue position in the readiness answer.
    pub fn set_catalogue(&self, positions: Positions) {
        *self.catalogue.write().unwrap_or_else(|p| p.into_inner()) = Some(positions);
    }

    /// The readiness answer: `{"ready":bool}`, and for a service that reads the catalogue
    /// `"catalogue":{"topic":"catalog.products.v1","next_offsets":{"<partition>":<offset>}}`:
    /// a catalogue record published at offset `o` of partition `p` is applied once
    /// `next_offsets[p] > o`.
    pub fn readiness(&self) -> String {
        let mut body = serde_json::json!({ "ready": self.is_ready() });
        if let Some(positions) = &*self.catalogue.read().unwrap_or_else(|p| p.into_inner()) {
            let offsets: serde_json::Map<String, serde_json::Value> = positions
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(p, o)| (p.to_string(), serde_json::Value::from(*o)))
                .collect();
            body["catalogue"] = serde_json::json!({
                "topic": shelfguard_events::topics::CATALOG_PRODUCTS,
                "next_offsets": offsets,
            });
        }
        body.to_string()
    }

    /// Serves the endpoints on `addr` until shutdown; an empty address serves nothing.
    pub async fn serve(self, addr: &str, shutdown: CancellationToken) -> Result<()> {
        if addr.is_empty() {
            return Ok(());
        }
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding health endpoint {addr}"))?;
        info!(addr, "health endpoints up");
        loop {
            let (mut sock, _) = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = listener.accept() => r?,
            };
            let ready = self.is_ready();
            let readiness = self.readiness();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req.split_whitespace().nth(1).unwrap_or("/");
                let (status, ctype, body) = match path {
                    "/healthz" => ("200 OK", "text/plain", "ok".to_owned()),
                    "/readyz" if ready => ("200 OK", "application/json", readiness),
                    "/readyz" => ("503 Service Unavailable", "application/json", readiness),
                    "/metrics" => (
                        "200 OK",
                        "text/plain; version=0.0.4; charset=utf-8",
                        crate::metrics::render(),
                    ),
                    _ => ("404 Not Found", "text/plain", "not found".to_owned()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    }
}
