//! The conformance suite of the delivery service's semantics (issue 14), one set of scenarios
//! run against every backend: in-memory (also through the synchronous
//! `InMemoryDeliveryService::handle`), SQLite (a file in a temporary directory), PostgreSQL
//! (its own schema per test; `VMLS_TEST_POSTGRES_URL`). The scenarios are functions over
//! [`common::Call`], so the HTTP layer runs them too by implementing it for its client.
//!
//! Real MLS messages throughout, made by mls-engine `Group`s; a virtual client is a plain
//! `Group` whose credential identity is the virtual client's id, driven by its emulators.

mod common;

use common::scenarios::*;
use common::*;
use vmls_protocol::SendRequest;

/// One test per scenario and backend.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::memory().await).await;
                }
            )*
        }
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::in_process().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(backend) = super::postgres(stringify!($scenario)).await {
                        super::$scenario(&backend).await;
                    }
                }
            )*
        }
        // Over HTTP (signed requests, vmls-client) on SQLite.
        mod http {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::common::http::http_sqlite().await).await;
                }
            )*
        }
    };
}

conformance!(
    fan_out_and_welcome,
    commit_race,
    virtual_client_fan_out,
    virtual_client_race,
    bad_input_changes_nothing,
    idempotent_resend,
    directory,
    group_info_and_external_join,
    private_handshakes,
);

/// SQLite: what was accepted is there after the service is reopened on its file.
#[tokio::test]
async fn sqlite_survives_reopen() {
    let backend = sqlite().await;
    let mut p = plain_group(&backend, &["alice", "bob"]).await;
    let text = application(&mut p.members[0].1, b"durable");
    accepted(
        backend
            .call(
                p.id(0),
                SendRequest::application(text).to_group(p.g.clone()),
            )
            .await,
    );
    let before = snapshot(&backend, &[p.id(0), p.id(1)], &p.g).await;
    let dir = backend.dir.unwrap();
    drop(backend.service);
    let url = format!("sqlite://{}", dir.path().join("vmls.db").display());
    let reopened =
        delivery_service::Service::open(delivery_service::ServiceConfig::new(&url).unwrap())
            .await
            .unwrap();
    assert_eq!(snapshot(&reopened, &[p.id(0), p.id(1)], &p.g).await, before);
}

/// A delivery wakes the recipients' subscriptions (in-memory and SQLite: local wake-ups).
#[tokio::test]
async fn deliveries_wake_subscribers() {
    for backend in [memory().await, sqlite().await] {
        let mut p = plain_group(&backend, &["alice", "bob"]).await;
        let wake = backend.service.subscribe(p.id(1));
        let quiet = backend.service.subscribe(&id("nobody"));
        assert!(!wake.has_changed());
        let text = application(&mut p.members[0].1, b"ring");
        accepted(
            backend
                .call(
                    p.id(0),
                    SendRequest::application(text).to_group(p.g.clone()),
                )
                .await,
        );
        assert!(wake.has_changed());
        assert!(!quiet.has_changed());
    }
}
