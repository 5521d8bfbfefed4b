//! Serving: the plain HTTP listener with connection info (for audit source addresses), and a
//! graceful shutdown that stops accepting, drains in-flight requests for a bounded time, and
//! returns.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::router;
use crate::state::AppState;

/// Serves `state` on `listener` until `shutdown` completes, then drains for up to the
/// configured grace period.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let grace = Duration::from_secs(state.config.shutdown_grace_seconds);
    let app = router::app(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = stopped.await;
    })
    .into_future();
    let mut server = tokio::spawn(server);
    tokio::select! {
        result = &mut server => return result.map_err(io::Error::other)?,
        () = shutdown => {}
    }
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    let _ = stop.send(());
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.map_err(io::Error::other)?,
        Err(_) => {
            tracing::warn!(
                seconds = grace.as_secs(),
                "in-flight requests did not finish within the grace period"
            );
            Ok(())
        }
    }
}
