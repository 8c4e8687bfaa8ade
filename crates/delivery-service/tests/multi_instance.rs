//! Two service instances on one PostgreSQL database (`VMLS_TEST_POSTGRES_URL`, a fresh schema
//! per test), clients spread over both: the conformance scenarios' races (two Commits for one
//! epoch, two virtual-client messages at one sequence, 1,000 trials each) have exactly one
//! winner each, every group has one total order, every device sees the same log through
//! either instance, and wake-ups cross instances (LISTEN/NOTIFY).

mod common;

use std::time::Duration;

use common::scenarios::*;
use common::*;
use delivery_service::Service;
use vmls_protocol::{ClientId, Fetch, GroupMessage, Request, Response, SendRequest, Sequence};

/// Two instances; a device's requests go to the one its name's last octet picks (so alice
/// and bob, e1 and e2 are on different instances).
struct Spread {
    instances: [Service; 2],
}

impl Spread {
    fn of(&self, device: &ClientId) -> &Service {
        let last = device.as_bytes().last().copied().unwrap_or(0);
        &self.instances[usize::from(last % 2)]
    }
}

impl Call for Spread {
    fn call(
        &self,
        device: &ClientId,
        request: Request,
    ) -> impl std::future::Future<Output = Response> + Send {
        self.of(device).call(device, request)
    }
}

async fn spread(test: &str) -> Option<Spread> {
    let url = postgres_url()?;
    let schema = format!("vmls_multi_{test}");
    fresh_schema(&url, &schema).await;
    let (a, b) = tokio::join!(
        postgres_service(&url, &schema),
        postgres_service(&url, &schema)
    );
    Some(Spread { instances: [a, b] })
}

macro_rules! across_instances {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                if let Some(s) = spread(stringify!($scenario)).await {
                    common::scenarios::$scenario(&s).await;
                }
            }
        )*
    };
}

across_instances!(
    commit_race,
    virtual_client_race,
    fan_out_and_welcome,
    virtual_client_fan_out,
    bad_input_changes_nothing,
    idempotent_resend,
);

async fn log_via(s: &Service, device: &ClientId, p: &Plain) -> Vec<GroupMessage> {
    match s
        .call(
            device,
            Request::Fetch(Fetch {
                group_id: p.g.clone(),
                from: Sequence(0),
            }),
        )
        .await
    {
        Response::Messages(m) => m,
        other => panic!("no log: {other:?}"),
    }
}

/// Both members send at once through different instances, many rounds: one total order,
/// the same log through either instance, each mailbox in log order with nothing missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_total_order() {
    let Some(s) = spread("one_total_order").await else {
        return;
    };
    let mut p = plain_group(&s, &["alice", "bob"]).await;
    const ROUNDS: usize = 200;
    for _ in 0..ROUNDS {
        let ta = application(&mut p.members[0].1, b"a");
        let tb = application(&mut p.members[1].1, b"b");
        let (ra, rb) = tokio::join!(
            s.call(p.id(0), SendRequest::application(ta).to_group(p.g.clone())),
            s.call(p.id(1), SendRequest::application(tb).to_group(p.g.clone()))
        );
        let (a, b) = (accepted(ra), accepted(rb));
        assert_ne!(a.sequence, b.sequence);
    }
    let reference = log_via(&s.instances[0], p.id(0), &p).await;
    assert_eq!(reference.len(), 1 + 2 * ROUNDS);
    let seqs: Vec<u64> = reference.iter().map(|m| m.sequence.0).collect();
    assert_eq!(seqs, (0..(1 + 2 * ROUNDS) as u64).collect::<Vec<_>>());
    for instance in &s.instances {
        assert_eq!(log_via(instance, p.id(0), &p).await, reference);
        // Bob reads from his Welcome on: the same messages.
        assert_eq!(log_via(instance, p.id(1), &p).await, reference[1..]);
    }
    for i in 0..2 {
        let items = drain(&s, p.id(i)).await;
        let seqs: Vec<u64> = messages(&items).iter().map(|m| m.sequence.0).collect();
        assert_eq!(seqs, (1..(1 + 2 * ROUNDS) as u64).collect::<Vec<_>>());
    }
}

/// A delivery made through one instance wakes a device subscribed on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_ups_cross_instances() {
    let Some(s) = spread("wake_ups_cross_instances").await else {
        return;
    };
    let mut p = plain_group(&s, &["alice", "bob"]).await;
    let bob_instance = s.of(p.id(1));
    assert!(!std::ptr::eq(bob_instance, s.of(p.id(0))));
    let mut wake = bob_instance.subscribe(p.id(1));
    let text = application(&mut p.members[0].1, b"wake up");
    accepted(
        s.call(
            p.id(0),
            SendRequest::application(text).to_group(p.g.clone()),
        )
        .await,
    );
    // Not a timed assertion: a guard so that a lost wake-up fails instead of hanging.
    tokio::time::timeout(Duration::from_secs(120), wake.changed())
        .await
        .expect("no wake-up from the other instance")
        .unwrap();
    assert_eq!(drain(&s, p.id(1)).await.len(), 1);
}
