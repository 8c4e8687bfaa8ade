//! The server's configuration: where it listens, which database it opens, TLS, and the limits
//! the HTTP layer enforces (body size, requests per second per device, slow clients, replay
//! window). `vmls serve` and the `vmls-delivery-service` binary parse it from the same
//! [`ServeArgs`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The command line of `vmls serve` (and of `vmls-delivery-service`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8480")]
    pub listen: SocketAddr,
    /// The database: a SQLite file path, `sqlite::memory:` / `memory`, or `postgres://...`.
    #[arg(long, default_value = "vmls-delivery.sqlite3")]
    pub database: String,
    /// The server's certificate chain (PEM); with `--tls-key`, the server speaks HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (without it, plain HTTP is loopback only).
    #[arg(long)]
    pub insecure_allow_plain_http: bool,
    /// The largest request body accepted, in bytes.
    #[arg(long, default_value_t = HttpLimits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Requests per second per device (token bucket; the burst is twice this).
    #[arg(long, default_value_t = HttpLimits::default().requests_per_second)]
    pub requests_per_second: u32,
}

/// TLS material of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// The limits of the HTTP layer, each refused with a typed
/// [`vmls_protocol::ServiceError::QuotaExceeded`] (or, for a stalled connection before a
/// request is complete, by closing it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// The largest request body, in bytes (quota `body_size`).
    pub max_body_bytes: usize,
    /// Sustained requests per second per device (quota `requests_per_second`).
    pub requests_per_second: u32,
    /// Requests a device may make at once above the sustained rate.
    pub burst: u32,
    /// Time allowed to receive a request's headers; a slower connection is closed.
    pub header_timeout: Duration,
    /// Time allowed to receive a request's body (quota `body_timeout_ms`).
    pub body_timeout: Duration,
    /// Time allowed for a TLS handshake; a slower connection is closed.
    pub handshake_timeout: Duration,
    /// Time a push socket may take to send its subscription.
    pub subscribe_timeout: Duration,
    /// Half-width of the replay window of signed requests, in seconds.
    pub replay_window_secs: u64,
    /// Time graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            requests_per_second: 200,
            burst: 400,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            subscribe_timeout: Duration::from_secs(10),
            replay_window_secs: 300,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Where the server's `now` comes from (KeyPackage lifetimes, the replay window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A fixed time (seconds since the Unix epoch): for tests whose MLS material was made for
    /// a given time. Never in production.
    Fixed(u64),
}

impl Clock {
    /// Seconds since the Unix epoch.
    pub fn now(self) -> u64 {
        match self {
            Self::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            Self::Fixed(now) => now,
        }
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (port 0: any free port, see `Server::local_addr`).
    pub listen: SocketAddr,
    /// The database URL handed to the service.
    pub database: String,
    /// `Some`: HTTPS with these files.
    pub tls: Option<TlsFiles>,
    /// Allow plain HTTP on a non-loopback address.
    pub insecure_allow_plain_http: bool,
    /// The HTTP layer's limits.
    pub limits: HttpLimits,
    /// The clock.
    pub clock: Clock,
}

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Plain HTTP on an address other than loopback, without `--insecure-allow-plain-http`.
    #[error("plain HTTP on the non-loopback address {0}: give --tls-cert and --tls-key, or --insecure-allow-plain-http")]
    PlainHttpNotLoopback(SocketAddr),
    /// A limit is zero.
    #[error("the limit {0} must be positive")]
    ZeroLimit(&'static str),
}

impl ServerConfig {
    /// A configuration for `listen` and `database` with the default limits, plain HTTP.
    pub fn new(listen: SocketAddr, database: impl Into<String>) -> Self {
        Self {
            listen,
            database: database.into(),
            tls: None,
            insecure_allow_plain_http: false,
            limits: HttpLimits::default(),
            clock: Clock::System,
        }
    }

    /// Checks the rules the configuration must obey before anything is opened.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls.is_none() && !self.insecure_allow_plain_http && !self.listen.ip().is_loopback()
        {
            return Err(ConfigError::PlainHttpNotLoopback(self.listen));
        }
        if self.limits.max_body_bytes == 0 {
            return Err(ConfigError::ZeroLimit("max_body_bytes"));
        }
        if self.limits.requests_per_second == 0 {
            return Err(ConfigError::ZeroLimit("requests_per_second"));
        }
        Ok(())
    }
}

impl From<ServeArgs> for ServerConfig {
    fn from(args: ServeArgs) -> Self {
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        };
        let limits = HttpLimits {
            max_body_bytes: args.max_body_bytes,
            requests_per_second: args.requests_per_second,
            burst: args.requests_per_second.saturating_mul(2),
            ..HttpLimits::default()
        };
        Self {
            listen: args.listen,
            database: args.database,
            tls,
            insecure_allow_plain_http: args.insecure_allow_plain_http,
            limits,
            clock: Clock::System,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_off_loopback_unless_forced() {
        let mut config = ServerConfig::new("0.0.0.0:1".parse().unwrap(), "memory");
        assert!(matches!(
            config.validate(),
            Err(ConfigError::PlainHttpNotLoopback(_))
        ));
        config.insecure_allow_plain_http = true;
        assert!(config.validate().is_ok());
        let loopback = ServerConfig::new("[::1]:1".parse().unwrap(), "memory");
        assert!(loopback.validate().is_ok());
    }
}
