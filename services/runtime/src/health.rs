//! `/healthz` (alive), `/readyz` (consuming, state restored) and `/metrics` (Prometheus text)
//! over plain HTTP/1.1.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Shared readiness flag.
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
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
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req.split_whitespace().nth(1).unwrap_or("/");
                let (status, ctype, body) = match path {
                    "/healthz" => ("200 OK", "text/plain", "ok".to_owned()),
                    "/readyz" if ready => ("200 OK", "text/plain", "ready".to_owned()),
                    "/readyz" => (
                        "503 Service Unavailable",
                        "text/plain",
                        "not ready".to_owned(),
                    ),
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
