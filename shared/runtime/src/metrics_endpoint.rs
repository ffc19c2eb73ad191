//! A standalone binary's own `GET /metrics` listener (the gateway and the
//! all-in-one serve `/metrics` on their HTTP port instead).

use crate::Shutdown;
use tokio::net::TcpListener;

/// Environment variable with the listen address of a standalone binary's
/// metrics endpoint; unset = no endpoint.
pub const ADDR_ENV: &str = "METRICS_ADDR";

/// Serves `GET /metrics` on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    crate::http::serve(
        listener,
        crate::metrics::routes::<()>(),
        shutdown,
        "metrics",
    )
    .await
}

/// When `METRICS_ADDR` is set, binds it and serves `/metrics` in the
/// background until `shutdown` fires. Fails if the address is malformed or
/// cannot be bound.
pub async fn serve_from_env(
    shutdown: &Shutdown,
) -> anyhow::Result<Option<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    let raw = crate::config::env_string(ADDR_ENV, "");
    if raw.is_empty() {
        return Ok(None);
    }
    let addr: std::net::SocketAddr = raw
        .parse()
        .map_err(|e| anyhow::anyhow!("{ADDR_ENV}={raw:?} is not valid: {e}"))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding {ADDR_ENV} {addr}: {e}"))?;
    Ok(Some(tokio::spawn(serve(listener, shutdown.clone()))))
}

/// Runs `server` (which stops when `shutdown` fires) with `GET /metrics`
/// beside it on `METRICS_ADDR` when set, bound before `server` starts; when
/// `server` ends, for whatever reason, the endpoint stops too.
pub async fn serve_beside(
    shutdown: &Shutdown,
    server: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let metrics = serve_from_env(shutdown).await?;
    let served = server.await;
    shutdown.trigger();
    served?;
    if let Some(task) = metrics {
        task.await??;
    }
    Ok(())
}
