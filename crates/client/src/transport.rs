//! Byte streams to the server: TCP, or TLS over TCP verified with rustls.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::client::ClientError;

/// A connected byte stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub(crate) type BoxIo = Pin<Box<dyn Io>>;

/// Where and how to connect.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Endpoint {
    /// Parses `http://host[:port]` or `https://host[:port]`; TLS trusts `ca_file` alone when
    /// given, else the web PKI roots.
    pub(crate) fn parse(server: &str, ca_file: Option<&Path>) -> Result<Self, ClientError> {
        let uri: hyper::Uri = server
            .parse()
            .map_err(|_| ClientError::Config(format!("not a URL: {server}")))?;
        let host = uri
            .host()
            .ok_or_else(|| ClientError::Config(format!("no host in {server}")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let (secure, default_port) = match uri.scheme_str() {
            Some("http") => (false, 80),
            Some("https") => (true, 443),
            _ => {
                return Err(ClientError::Config(format!(
                    "scheme must be http or https: {server}"
                )))
            }
        };
        let port = uri.port_u16().unwrap_or(default_port);
        let tls = if secure {
            let name = ServerName::try_from(host.clone())
                .map_err(|_| ClientError::Config(format!("bad server name {host}")))?;
            Some((TlsConnector::from(tls_config(ca_file)?), name))
        } else {
            None
        };
        Ok(Self { host, port, tls })
    }

    /// Opens a stream.
    pub(crate) async fn connect(&self) -> Result<BoxIo, ClientError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::pin(tcp)),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| ClientError::Tls(e.to_string()))?;
                Ok(Box::pin(tls))
            }
        }
    }

    /// `host:port` for the Host header.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
