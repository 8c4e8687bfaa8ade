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

/// The configured limits, each refused with its typed error and nothing changed.
#[tokio::test]
async fn quotas() {
    use delivery_service::{DatabaseUrl, Limits, Service, ServiceConfig};
    use vmls_protocol::{
        KeyPackageEntry, PublishKeyPackages, ReadMailbox, Request, Response, ServiceError,
    };
    let limits = Limits {
        max_message_size: 4096,
        max_mailbox_backlog: 3,
        max_key_packages_per_owner: 1,
        max_read_items: 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = ServiceConfig {
        database: DatabaseUrl::Sqlite(dir.path().join("q.db")),
        limits: limits.clone(),
    };
    let services = [
        Service::in_memory(limits.clone()),
        Service::open(sqlite).await.unwrap(),
    ];
    for service in services {
        let c = Backend { service, dir: None };
        let mut p = plain_group(&c, &["alice", "bob"]).await;
        let quota = |e: ServiceError| match e {
            ServiceError::QuotaExceeded { quota, .. } => quota.0,
            other => panic!("not a quota: {other:?}"),
        };
        let big = SendRequest::application(vec![0u8; 5000]).to_group(p.g.clone());
        assert_eq!(quota(refused(c.call(p.id(0), big).await)), "message_size");
        for _ in 0..3 {
            let text = application(&mut p.members[0].1, b"fill");
            accepted(
                c.call(
                    p.id(0),
                    SendRequest::application(text).to_group(p.g.clone()),
                )
                .await,
            );
        }
        let before = snapshot(&c, &[p.id(0), p.id(1)], &p.g).await;
        let text = application(&mut p.members[0].1, b"one too many");
        let e = refused(
            c.call(
                p.id(0),
                SendRequest::application(text).to_group(p.g.clone()),
            )
            .await,
        );
        assert_eq!(quota(e), "mailbox_backlog");
        assert_eq!(snapshot(&c, &[p.id(0), p.id(1)], &p.g).await, before);
        // A read returns at most `max_read_items`.
        let read = c
            .call(
                p.id(1),
                Request::ReadMailbox(ReadMailbox {
                    after: None,
                    max_items: 0,
                }),
            )
            .await;
        assert!(matches!(read, Response::Mailbox(items) if items.len() == 2));
        let bob = &p.members[1].0;
        let publish = |n: usize| {
            Request::PublishKeyPackages(PublishKeyPackages {
                owner: bob.id.clone(),
                key_packages: (0..n)
                    .map(|_| KeyPackageEntry::ordinary(key_package_bytes(&bob.key_package())))
                    .collect(),
            })
        };
        assert_eq!(
            quota(refused(c.call(&bob.id, publish(2)).await)),
            "key_packages_per_owner"
        );
        done(c.call(&bob.id, publish(1)).await);
        assert_eq!(
            quota(refused(c.call(&bob.id, publish(1)).await)),
            "key_packages_per_owner"
        );
    }
}
