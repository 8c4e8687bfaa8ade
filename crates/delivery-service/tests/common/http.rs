//! The conformance suite over HTTP: [`Http`] implements [`super::Call`] with the `vmls-client`
//! transport (signed requests) against an in-process server on loopback, on the backend's
//! database. Each device signs with a transport key the client registers for it: the
//! scenario's `register_device` is sent with that key instead of the scenario's (the
//! scenarios do not hand their private keys to the call trait).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use delivery_service::config::{Clock, HttpLimits, ServerConfig};
use delivery_service::http::Server;
use tokio::sync::oneshot;
use vmls_client::{Client, ClientConfig, Signer};
use vmls_protocol::{ClientId, RegisterDevice, Request, Response};

use super::{Call, ED25519, NOW};

/// A server on `database` and a client per device.
pub struct Http {
    url: String,
    clients: Mutex<HashMap<ClientId, Client>>,
    stop: Option<oneshot::Sender<()>>,
    /// What keeps the database alive (a SQLite file's directory).
    pub dir: Option<tempfile::TempDir>,
}

impl Drop for Http {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Http {
    /// Starts a server on `database` at the suite's fixed time [`NOW`].
    pub async fn start(database: &str, dir: Option<tempfile::TempDir>) -> Self {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), database);
        config.clock = Clock::Fixed(NOW);
        config.limits = HttpLimits {
            requests_per_second: 1_000_000,
            burst: 1_000_000,
            ..HttpLimits::default()
        };
        let server = Server::bind(config).await.unwrap();
        let url = format!("http://{}", server.local_addr());
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self {
            url,
            clients: Mutex::new(HashMap::new()),
            stop: Some(stop),
            dir,
        }
    }

    fn client(&self, device: &ClientId) -> Client {
        let mut clients = self.clients.lock().unwrap();
        clients
            .entry(device.clone())
            .or_insert_with(|| {
                let signer = Signer::generate(device.clone(), ED25519).unwrap();
                Client::new(ClientConfig::new(self.url.clone()), signer).unwrap()
            })
            .clone()
    }
}

impl Call for Http {
    fn call(&self, device: &ClientId, request: Request) -> impl Future<Output = Response> + Send {
        let client = self.client(device);
        let request = match request {
            Request::RegisterDevice(r) if &r.device == device => {
                Request::RegisterDevice(RegisterDevice {
                    device: r.device,
                    signature_scheme: client.signer().scheme(),
                    signature_key: client.signer().public_key().to_vec().into(),
                })
            }
            other => other,
        };
        async move {
            let signed = client.signer().sign_request_at(request, NOW).unwrap();
            client.send_signed(&signed).await.unwrap()
        }
    }
}

/// The HTTP layer on a SQLite file in a fresh temporary directory (the default deployment).
pub async fn http_sqlite() -> Http {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vmls.db").display());
    Http::start(&url, Some(dir)).await
}
