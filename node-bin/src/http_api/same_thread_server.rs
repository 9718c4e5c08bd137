//! Serving the client API on the thread that calls [`serve`]: in `raft-node`, the actix
//! System's thread, which also runs the consensus actor, the applier and the peer sockets.
//!
//! actix-web's `HttpServer` always runs its handlers on worker threads of its own. Every
//! request then crosses threads twice (the handler's `Propose` or `Read` to the consensus
//! actor, the answer back), and on a small machine each crossing is a wake-up costing tens of
//! microseconds of latency and a share of the CPU. Here the same `App` is served by
//! `actix-http`'s HTTP/1.1 dispatcher on connections accepted by a task of the current
//! arbiter, so a request reaches the consensus actor's mailbox and its answer reaches the
//! connection without waking another thread. The handlers only pass messages and never block,
//! so sharing the thread costs consensus nothing but the handlers' own work.
//!
//! What `HttpServer` gave and this keeps: keep-alive (5 s), the request head timeout (5 s),
//! the disconnect timeout (1 s), TLS with rustls (the handshake bounded by actix-tls's
//! acceptor, 3 s), at most 25,000 open connections, and a stop that closes the listener while
//! requests in flight finish. An
//! accept error (out of file descriptors, say) is logged and retried after a pause instead of
//! ending the server.

use actix_http::{HttpService, KeepAlive};
use actix_service::{map_config, Service, ServiceFactory};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceRequest, ServiceResponse};
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

/// Keep-alive and the time a client has to send a request's head.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection being closed may take to shut down.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause after a failed accept before trying again.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Client connections open at once, at most (actix-web's default per worker); further ones are
/// closed as soon as they are accepted, so a flood of connections cannot take every file
/// descriptor the node needs for its log, snapshots and peers.
const MAX_CONNECTIONS: usize = 25_000;

/// Counts a connection as open until dropped.
struct OpenConnection(Rc<std::cell::Cell<usize>>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Stops a server started by [`serve`]. Cloning shares the one server.
#[derive(Clone, Debug)]
pub struct ServerHandle {
    stop: watch::Sender<bool>,
}

impl ServerHandle {
    /// Closes the listener: no new connections. Requests in flight, and further requests on
    /// connections already open, are still served until the node's System stops.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

/// Serves `app` on `listener` from a task of the current arbiter; with `tls`, over TLS.
pub fn serve<T, B>(
    listener: std::net::TcpListener,
    tls: Option<rustls::ServerConfig>,
    app: actix_web::App<T>,
) -> std::io::Result<ServerHandle>
where
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    // The stream type the builder serves differs with TLS: build it in each branch.
    macro_rules! h1 {
        () => {
            HttpService::build()
                .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
                .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
                .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                .local_addr(local_addr)
                .h1(map_config(app, |_| AppConfig::default()))
        };
    }
    match tls {
        Some(tls) => {
            let factory = h1!().rustls_0_23(tls);
            actix_rt::spawn(accept_loop(listener, factory, stopped));
        }
        None => {
            let factory = h1!().tcp();
            actix_rt::spawn(accept_loop(listener, factory, stopped));
        }
    }
    Ok(ServerHandle { stop })
}

/// Resolves once `stop` was called; never, if every handle was dropped without it.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    if stopped.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn accept_loop<F>(
    listener: std::net::TcpListener,
    factory: F,
    mut stopped: watch::Receiver<bool>,
) where
    F: ServiceFactory<tokio::net::TcpStream, Config = (), Response = (), InitError = ()>,
    F::Service: 'static,
    F::Error: std::fmt::Debug,
{
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "cannot register the client listener; serving nothing");
            return;
        }
    };
    let service = match factory.new_service(()).await {
        Ok(service) => Rc::new(service),
        Err(()) => {
            tracing::error!("the client API's services did not start; serving nothing");
            return;
        }
    };
    let open = Rc::new(std::cell::Cell::new(0usize));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop_requested(&mut stopped) => break,
        };
        match accepted {
            Ok((stream, remote)) => {
                if open.get() >= MAX_CONNECTIONS {
                    tracing::debug!(%remote, "closed a client connection over the limit of {MAX_CONNECTIONS}");
                    drop(stream);
                    continue;
                }
                open.set(open.get() + 1);
                let counted = OpenConnection(Rc::clone(&open));
                // Answers must not wait for a 40 ms delayed ACK.
                let _ = stream.set_nodelay(true);
                let service = Rc::clone(&service);
                actix_rt::spawn(async move {
                    let _counted = counted;
                    if let Err(error) = service.call(stream).await {
                        tracing::debug!(?error, "client connection ended with an error");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "cannot accept a client connection; retrying");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
            }
        }
    }
    tracing::info!("the client API stopped accepting connections");
}
