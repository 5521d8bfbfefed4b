//! Serving: the plain HTTP listener and the optional TLS listener, both with connection info
//! (for audit source addresses), and a graceful shutdown that stops accepting, drains in-flight
//! requests for a bounded time, and returns.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::router;
use crate::state::AppState;
use crate::tls;

/// The HTTPS listener and its rustls configuration.
#[derive(Debug)]
pub struct TlsListener {
    pub listener: TcpListener,
    pub config: Arc<rustls::ServerConfig>,
}

/// Serves `state` on `listener` (and `tls`, if given) until `shutdown` completes, then drains
/// for up to the configured grace period.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let grace = Duration::from_secs(state.config.shutdown_grace_seconds);
    let limit = state.connections.clone();
    let app = router::app(state);
    let (stop, stopped) = watch::channel(false);
    let mut tls_task = tls.map(|t| {
        let run = tls::run(
            t.listener,
            t.config,
            app.clone(),
            stopped.clone(),
            limit.clone(),
        );
        tokio::spawn(run)
    });
    let server =
        crate::connections::serve(listener, app, stopped, "HTTP", limit, |tcp, _| async move {
            Some((tcp, None))
        });
    let mut server = tokio::spawn(server);
    tokio::select! {
        result = &mut server => return result.map_err(io::Error::other),
        () = shutdown => {}
    }
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(grace, async {
        let http = server.await;
        if let Some(task) = tls_task.take() {
            let _ = task.await;
        }
        http
    })
    .await;
    match drained {
        Ok(result) => result.map_err(io::Error::other),
        Err(_) => {
            tracing::warn!(
                seconds = grace.as_secs(),
                "in-flight requests did not finish within the grace period"
            );
            Ok(())
        }
    }
}
