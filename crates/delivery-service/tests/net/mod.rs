//! Shared by the HTTP tests: a server in this process on a free loopback port, and clients.
#![allow(dead_code)]

use std::net::SocketAddr;

use delivery_service::config::{HttpLimits, ServerConfig};
use delivery_service::http::Server;
use tokio::sync::oneshot;
use vmls_client::vmls_protocol::auth::ED25519;
use vmls_client::vmls_protocol::{ClientId, Response};
use vmls_client::{Client, ClientConfig, Signer};

/// A running in-process server; dropping it shuts the server down.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on `database` with `limits`, plain HTTP on 127.0.0.1.
    pub async fn start(database: &str, limits: HttpLimits) -> Self {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), database);
        config.limits = limits;
        Self::start_with(config).await
    }

    /// Starts a server with `config`.
    pub async fn start_with(config: ServerConfig) -> Self {
        let server = Server::bind(config).await.expect("server starts");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client of this server for a new device `name` (not registered).
    pub fn client(&self, name: &str) -> Client {
        let signer = Signer::generate(ClientId::new(name), ED25519).unwrap();
        Client::new(ClientConfig::new(self.url()), signer).unwrap()
    }

    /// A registered client.
    pub async fn device(&self, name: &str) -> Client {
        let client = self.client(name);
        let answer = client.register().await.unwrap();
        assert!(
            matches!(answer, Response::Done(_)),
            "register {name}: {answer:?}"
        );
        client
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub mod mls;

/// The PostgreSQL URL of the tests, with its own fresh schema `name` (created, emptied):
/// `VMLS_TEST_POSTGRES_URL` plus `options=-csearch_path=name`. Unset: says loudly that the
/// test did not run and returns `None`; unset or unreachable with `CI=true`: panics.
pub fn postgres_url(name: &str) -> Option<String> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Ok(base) = std::env::var("VMLS_TEST_POSTGRES_URL") else {
        assert!(!in_ci, "CI=true but VMLS_TEST_POSTGRES_URL is unset");
        eprintln!(
            "\n*** VMLS_TEST_POSTGRES_URL is unset: the PostgreSQL part of this test DID NOT RUN ***\n"
        );
        return None;
    };
    let schema = format!("{name}_{}", std::process::id());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at VMLS_TEST_POSTGRES_URL unreachable: {e}"));
        let task = tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
            ))
            .await
            .unwrap();
        drop(client);
        let _ = task.await;
    });
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}options=-csearch_path%3D{schema}"))
}
