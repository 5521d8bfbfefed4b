//! The accept loop both listeners share: one hyper-util connection (HTTP/1.1 and HTTP/2) per
//! accepted socket, a header-read timeout against clients that send their headers slowly, the
//! peer address (and, over TLS, the client's certificate chain) in every request, and a
//! graceful drain once `stop` turns true.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use crate::request::TlsConnection;

/// A client must send a request's headers within this time, or the connection is closed.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `stop` turns true, then drains them and returns. `handshake`
/// turns an accepted socket into the stream to serve (and, over TLS, what the handshake
/// learned), or drops it. Each connection holds a permit of `limit` while it is open: at the
/// limit, the loop holds the one socket it has accepted until a connection closes, and further
/// clients wait in the listen backlog instead of exhausting file descriptors and memory. The
/// permit is taken after `accept`, not before: a loop waiting for clients holds no place, so
/// with both listeners on either can use every place of `limit`.
pub(crate) async fn serve<H, F, Io>(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
    limit: Arc<Semaphore>,
    handshake: H,
) where
    H: Fn(TcpStream, SocketAddr) -> F + Clone + Send + 'static,
    F: Future<Output = Option<(Io, Option<TlsConnection>)>> + Send,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let stopping = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stopping => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, listener = what, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit,
            () = &mut stopping => break,
        };
        let Ok(permit) = permit else { break };
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let handshake = handshake.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            let Some((stream, connection)) = handshake(tcp, peer).await else {
                return;
            };
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    if let Some(connection) = &connection {
                        request.extensions_mut().insert(connection.clone());
                    }
                    app.clone().oneshot(request)
                },
            );
            let served = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(served).await {
                tracing::debug!(%peer, error = %e, listener = what, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
