//! The network face of the delivery service (docs/protocol.md): HTTP/1.1 over TCP or TLS
//! (rustls), signed requests, WebSocket push, `/health`, `/metrics`, per-device rate limits,
//! timeouts for slow clients, and graceful shutdown.
//!
//! [`Server::bind`] opens the service and the listening socket; [`Server::run`] serves until
//! its shutdown future completes, then stops accepting, lets every request in flight finish
//! (each accepted message is durable before its answer) and closes push sockets.

mod backend;
mod push;
mod rate;
mod routes;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

pub use routes::{status_of, REQUEST_CONTENT_TYPE, RESPONSE_CONTENT_TYPE};
pub use tls::TlsError;

use crate::auth::ReplayGuard;
use crate::config::{Clock, ConfigError, HttpLimits, ServerConfig};
use crate::metrics::HttpMetrics;
use crate::service::{Service, ServiceConfig};
use rate::RateLimiter;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS files could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The service (its database) could not be opened.
    #[error("opening the service: {0}")]
    Open(String),
    /// The address could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// What every handler shares.
pub(crate) struct AppState<B> {
    backend: B,
    replay: ReplayGuard,
    rate: RateLimiter,
    metrics: HttpMetrics,
    limits: HttpLimits,
    clock: Clock,
    shutdown: watch::Receiver<bool>,
}

/// The service the HTTP layer serves, opened from the configured database.
async fn open_backend(config: &ServerConfig) -> Result<Service, ServeError> {
    let service_config =
        ServiceConfig::new(&config.database).map_err(|e| ServeError::Open(e.to_string()))?;
    Service::open(service_config)
        .await
        .map_err(|e| ServeError::Open(e.to_string()))
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: axum::Router,
    limits: HttpLimits,
    shutdown: watch::Sender<bool>,
}

impl Server {
    /// Checks `config`, opens the service and binds the listening socket.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServeError> {
        config.validate()?;
        let tls = match &config.tls {
            Some(files) => Some(TlsAcceptor::from(tls::server_config(files)?)),
            None => None,
        };
        let backend = open_backend(&config).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let limits = config.limits;
        let state = Arc::new(AppState {
            backend,
            replay: ReplayGuard::new(limits.replay_window_secs),
            rate: RateLimiter::new(limits.requests_per_second, limits.burst),
            metrics: HttpMetrics::default(),
            limits,
            clock: config.clock,
            shutdown: shutdown_rx,
        });
        Ok(Self {
            listener,
            local_addr,
            tls,
            router: routes::router(state),
            limits,
            shutdown,
        })
    }

    /// The address the server listens on (the port chosen when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: no new connections,
    /// requests in flight are answered (within `limits.shutdown_grace`), push sockets closed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            listener,
            tls,
            local_addr: _,
            router,
            limits,
            shutdown: stop,
        } = self;
        // Every connection task holds a clone of `done`; when all are gone, `recv` ends.
        let (done, mut all_done) = mpsc::channel::<()>(1);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let connection = Connection {
                            router: router.clone(),
                            tls: tls.clone(),
                            limits,
                            stop: stop.subscribe(),
                            _done: done.clone(),
                        };
                        tokio::spawn(connection.serve(stream, peer));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                },
            }
        }
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        drop(listener);
        let _ = stop.send(true);
        drop(done);
        if tokio::time::timeout(limits.shutdown_grace, all_done.recv())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over with connections still open");
        }
    }
}

/// One accepted connection.
struct Connection {
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    limits: HttpLimits,
    stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
}

impl Connection {
    async fn serve(self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        match self.tls.clone() {
            None => self.serve_io(TokioIo::new(stream), peer).await,
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(stream));
                match handshake.await {
                    Ok(Ok(tls)) => self.serve_io(TokioIo::new(tls), peer).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn serve_io<I>(mut self, io: TokioIo<I>, peer: SocketAddr)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .keep_alive(true);
        let service = TowerToHyperService::new(self.router.clone());
        let connection = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        let mut stopping = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = stopped(&mut self.stop), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Completes once `stop` says so (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Runs `vmls serve`: logs to stderr, serves `config` until SIGTERM or ctrl-c.
pub fn serve_blocking(config: ServerConfig) -> Result<(), ServeError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Open(format!("tokio runtime: {e}")))?;
    runtime.block_on(async {
        let server = Server::bind(config).await?;
        let addr = server.local_addr();
        tracing::info!(%addr, "listening");
        // One machine-readable line on stdout for supervisors and tests (port 0 picks one).
        {
            use std::io::Write as _;
            let mut stdout = std::io::stdout();
            let _ = writeln!(stdout, "listening on {addr}");
            let _ = stdout.flush();
        }
        server.run(shutdown_signal()).await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
