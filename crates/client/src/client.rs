//! [`Client`]: signed requests over kept-alive HTTP/1.1 connections, with reconnect and retry.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header;
use hyper_util::rt::TokioIo;
use vmls_protocol::{decode, encode, Request, Response, SignedRequest};

use crate::push::PushSubscription;
use crate::signer::{Signer, SignerError};
use crate::transport::Endpoint;

/// The content type of a request body.
pub const REQUEST_CONTENT_TYPE: &str = "application/vnd.vmls.request+tls";
/// The content type of an answer.
pub const RESPONSE_CONTENT_TYPE: &str = "application/vnd.vmls.response+tls";

/// The largest answer read (a mailbox page of big messages).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Why a call failed in the transport (the service's own refusals are
/// [`Response::Refused`], not errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The configuration is unusable (URL, CA file).
    #[error("configuration: {0}")]
    Config(String),
    /// The server could not be reached.
    #[error("connect: {0}")]
    Connect(String),
    /// The TLS handshake failed (e.g. the certificate does not verify).
    #[error("TLS: {0}")]
    Tls(String),
    /// The HTTP exchange failed (connection lost mid-request, timeout).
    #[error("HTTP: {0}")]
    Http(String),
    /// The server answered something that is not a TLS-encoded `Response`.
    #[error("bad answer (HTTP {status}): {reason}")]
    BadAnswer {
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        reason: String,
    },
    /// The request could not be signed.
    #[error(transparent)]
    Signer(#[from] SignerError),
}

impl ClientError {
    /// Whether the request may not have reached the service (so a retry can help).
    fn is_transport(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::Http(_))
    }
}

/// Where the service is and how to reach it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:port` (loopback) or `https://host:port`.
    pub server: String,
    /// Trust only this CA (PEM) for the server's certificate, instead of the web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// The time one exchange may take.
    pub request_timeout: Duration,
    /// How often a request that may not have reached the service is retried (re-signed, on a
    /// new connection). `consume_key_package` is never retried: its repetition is not harmless.
    pub retries: u32,
}

impl ClientConfig {
    /// A configuration for `server` with a 30 s timeout and 5 retries.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            ca_file: None,
            request_timeout: Duration::from_secs(30),
            retries: 5,
        }
    }
}

/// A device's connection to the service. Cheap to clone (shared connections).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) endpoint: Endpoint,
    pub(crate) signer: Signer,
    pub(crate) config: ClientConfig,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.config.server)
            .field("device", self.inner.signer.device())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `config.server` signing as `signer`. Connects lazily.
    pub fn new(config: ClientConfig, signer: Signer) -> Result<Self, ClientError> {
        let endpoint = Endpoint::parse(&config.server, config.ca_file.as_deref())?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                signer,
                config,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The signing device.
    pub fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    /// Registers the device's signature key (`register_device`, signed with that key).
    pub async fn register(&self) -> Result<Response, ClientError> {
        self.call(self.inner.signer.register_request()).await
    }

    /// Signs and sends `request`; retries (re-signed) when it may not have reached the service.
    pub async fn call(&self, request: Request) -> Result<Response, ClientError> {
        let retries = match request {
            Request::ConsumeKeyPackage(_) => 0,
            _ => self.inner.config.retries,
        };
        let mut attempt = 0;
        loop {
            let signed = self.inner.signer.sign_request(request.clone())?;
            match self.send_signed(&signed).await {
                Err(e) if e.is_transport() && attempt < retries => {
                    attempt += 1;
                    let backoff = Duration::from_millis(50u64 << attempt.min(6));
                    tracing::debug!(error = %e, attempt, "retrying");
                    tokio::time::sleep(backoff).await;
                }
                other => return other,
            }
        }
    }

    /// Sends an already signed request once (for tests of replays and tampering).
    pub async fn send_signed(&self, signed: &SignedRequest) -> Result<Response, ClientError> {
        let body = encode(signed).map_err(|e| ClientError::Http(e.to_string()))?;
        self.send_raw(body, REQUEST_CONTENT_TYPE).await
    }

    /// Sends `body` with `content_type` to `POST /v1/request` once and decodes the answer.
    pub async fn send_raw(
        &self,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Response, ClientError> {
        let timeout = self.inner.config.request_timeout;
        match tokio::time::timeout(timeout, self.exchange(body, content_type)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Http(format!("no answer within {timeout:?}"))),
        }
    }

    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        loop {
            let idle = self
                .inner
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            match idle {
                Some(mut sender) if !sender.is_closed() => {
                    if sender.ready().await.is_ok() {
                        return Ok(sender);
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
        let io = self.inner.endpoint.connect().await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed");
            }
        });
        Ok(sender)
    }

    async fn exchange(&self, body: Vec<u8>, content_type: &str) -> Result<Response, ClientError> {
        let mut sender = self.connection().await?;
        let request = hyper::Request::post("/v1/request")
            .header(header::HOST, self.inner.endpoint.authority())
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let answer = sender
            .send_request(request)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let status = answer.status().as_u16();
        let typed = answer
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            == Some(RESPONSE_CONTENT_TYPE);
        let bytes = Limited::new(answer.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sender);
        if !typed {
            return Err(ClientError::BadAnswer {
                status,
                reason: format!("not {RESPONSE_CONTENT_TYPE}"),
            });
        }
        decode(&bytes).map_err(|e| ClientError::BadAnswer {
            status,
            reason: e.to_string(),
        })
    }

    /// Opens the push WebSocket (and keeps it open, reconnecting, until the subscription is
    /// dropped).
    pub fn subscribe(&self) -> PushSubscription {
        PushSubscription::start(self.clone())
    }
}
