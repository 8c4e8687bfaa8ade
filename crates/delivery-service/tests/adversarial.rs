//! Adversarial clients over HTTP (issue 14 "Proof"): each bad request is refused with its typed
//! error, and the group's log and every mailbox are unchanged.
//!
//! The HTTP layer's refusals (authentication, replay, encodings, sizes, slow clients, rate)
//! run against the in-memory service; the MLS checks (garbage commit, other epoch, Welcome
//! recipients, removal without Remove, non-member) run against the service's public view.

mod net;

use std::time::Duration;

use delivery_service::config::{HttpLimits, ServerConfig, TlsFiles};
use mls_engine::group::Group;
use net::mls::{add_commit, application, update_commit, Member};
use net::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vmls_client::vmls_protocol::{
    decode, encode, Ack, ClientId, Fetch, GroupId, MailboxCursor, MessageKind, ReadMailbox,
    Request, Response, SendRequest, Sequence, ServiceError,
};
use vmls_client::{Client, ClientConfig, ClientError};

const REQUEST_TYPE: &str = "application/vnd.vmls.request+tls";

fn limits() -> HttpLimits {
    HttpLimits {
        max_body_bytes: 64 * 1024,
        body_timeout: Duration::from_millis(500),
        header_timeout: Duration::from_millis(500),
        subscribe_timeout: Duration::from_millis(500),
        ..HttpLimits::default()
    }
}

fn read_mailbox() -> Request {
    Request::ReadMailbox(ReadMailbox {
        after: None,
        max_items: 0,
    })
}

fn refused(answer: Response) -> ServiceError {
    match answer {
        Response::Refused(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn is_unauthorized(e: &ServiceError) -> bool {
    matches!(e, ServiceError::Unauthorized { .. })
}

fn is_quota(e: &ServiceError, name: &str) -> bool {
    matches!(e, ServiceError::QuotaExceeded { quota, .. } if quota.0 == name)
}

async fn mailbox(client: &Client) -> Response {
    client.call(read_mailbox()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_encodings_are_bad_requests() {
    let server = TestServer::start("memory", limits()).await;
    let alice = server.device("alice").await;
    let before = mailbox(&alice).await;
    let signed = alice.signer().sign_request(read_mailbox()).unwrap();
    let good = encode(&signed).unwrap();
    let mut trailing = good.clone();
    trailing.push(0);
    let mut unknown_type = good.clone();
    // The request type follows the authenticator: device<V> (1 + 5 octets), timestamp (8),
    // nonce (16).
    unknown_type[1 + 5 + 8 + 16] = 0xff;
    for body in [
        vec![],
        b"garbage".to_vec(),
        good[..good.len() / 2].to_vec(),
        trailing,
        unknown_type,
    ] {
        let e = refused(alice.send_raw(body, REQUEST_TYPE).await.unwrap());
        assert!(matches!(e, ServiceError::BadRequest { .. }), "{e:?}");
    }
    let e = refused(alice.send_raw(good, "application/json").await.unwrap());
    assert!(matches!(e, ServiceError::BadRequest { .. }), "{e:?}");
    assert_eq!(mailbox(&alice).await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unknown_stale_and_replayed_requests_are_unauthorized() {
    let server = TestServer::start("memory", limits()).await;
    let alice = server.device("alice").await;
    let mallory = server.device("mallory").await;

    // An unregistered device.
    let stranger = server.client("stranger");
    let e = refused(stranger.call(read_mailbox()).await.unwrap());
    assert!(matches!(e, ServiceError::UnknownClient { .. }), "{e:?}");

    // A request changed after signing.
    let mut tampered = alice.signer().sign_request(read_mailbox()).unwrap();
    tampered.content.request = Request::Ack(Ack {
        up_to: MailboxCursor(0),
    });
    assert!(is_unauthorized(&refused(
        alice.send_signed(&tampered).await.unwrap()
    )));

    // Mallory signs a request in Alice's name with her own key: Alice's mailbox stays hers.
    let mut forged = mallory.signer().sign_request(read_mailbox()).unwrap();
    forged.content.authenticator.device = ClientId::new("alice");
    assert!(is_unauthorized(&refused(
        mallory.send_signed(&forged).await.unwrap()
    )));

    // Registering a name with a key one does not hold (no proof of possession), or another
    // device's name.
    let mut register = mallory
        .signer()
        .sign_request(alice.signer().register_request())
        .unwrap();
    register.content.authenticator.device = ClientId::new("alice");
    assert!(is_unauthorized(&refused(
        mallory.send_signed(&register).await.unwrap()
    )));
    let other = mallory
        .signer()
        .sign_request(server.client("victim").signer().register_request())
        .unwrap();
    assert!(is_unauthorized(&refused(
        mallory.send_signed(&other).await.unwrap()
    )));

    // A timestamp outside the replay window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale = alice
        .signer()
        .sign_request_at(read_mailbox(), now - 3600)
        .unwrap();
    assert!(is_unauthorized(&refused(
        alice.send_signed(&stale).await.unwrap()
    )));

    // The same signed request twice: the second is a replay.
    let once = alice.signer().sign_request(read_mailbox()).unwrap();
    assert!(matches!(
        alice.send_signed(&once).await.unwrap(),
        Response::Mailbox(_)
    ));
    let e = refused(alice.send_signed(&once).await.unwrap());
    assert!(is_unauthorized(&e), "{e:?}");
    assert!(matches!(&e, ServiceError::Unauthorized { reason } if reason.0.contains("replay")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_unread() {
    let server = TestServer::start("memory", limits()).await;
    let alice = server.device("alice").await;
    let before = mailbox(&alice).await;
    let e = refused(
        alice
            .send_raw(vec![0u8; 64 * 1024 + 1], REQUEST_TYPE)
            .await
            .unwrap(),
    );
    assert!(is_quota(&e, "body_size"), "{e:?}");

    // Declared small, sent large (chunked, no Content-Length): refused once it passes the limit.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/request HTTP/1.1\r\nhost: x\r\ncontent-type: {REQUEST_TYPE}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..5 {
        let _ = stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        let _ = stream.write_all(&chunk).await;
        let _ = stream.write_all(b"\r\n").await;
    }
    let e = read_refusal(&mut stream).await;
    assert!(is_quota(&e, "body_size"), "{e:?}");
    assert_eq!(mailbox(&alice).await, before);
    server.stop().await;
}

/// Reads one HTTP/1.1 answer with a Content-Length and decodes its `Response::Refused`.
async fn read_refusal(stream: &mut TcpStream) -> ServiceError {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed without an answer");
        buffer.extend_from_slice(&chunk[..n]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .expect("a content-length");
        if buffer.len() >= end + 4 + length {
            let body = &buffer[end + 4..end + 4 + length];
            return refused(decode::<Response>(body).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let server = TestServer::start("memory", limits()).await;
    let alice = server.device("alice").await;
    let before = mailbox(&alice).await;

    // A body that stops arriving: refused with the body timeout.
    let signed = encode(&alice.signer().sign_request(read_mailbox()).unwrap()).unwrap();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/request HTTP/1.1\r\nhost: x\r\ncontent-type: {REQUEST_TYPE}\r\ncontent-length: {}\r\n\r\n",
        signed.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&signed[..10]).await.unwrap();
    let e = read_refusal(&mut stream).await;
    assert!(is_quota(&e, "body_timeout_ms"), "{e:?}");

    // Headers that never end: the connection is closed without an answer.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /v1/request HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server keeps a stalled connection open");
    assert!(
        !rest.starts_with(b"HTTP/1.1 200"),
        "a stalled request was answered as a success"
    );

    assert_eq!(mailbox(&alice).await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_rate_are_refused() {
    let limits = HttpLimits {
        requests_per_second: 1,
        burst: 3,
        ..limits()
    };
    let server = TestServer::start("memory", limits).await;
    let alice = server.client("alice");
    let mut refusals = 0;
    let mut answered = 0;
    for _ in 0..12 {
        match alice.register().await.unwrap() {
            Response::Refused(e) if is_quota(&e, "requests_per_second") => refusals += 1,
            _ => answered += 1,
        }
    }
    // 3 at once, then 1 per second: 12 requests made in under 8 s exceed it.
    assert!(refusals > 0, "{answered} answered, none refused");
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("vmls_http_refusals_total{reason=\"quota_exceeded:requests_per_second\"}"),
        "{metrics}"
    );
    for family in [
        "vmls_http_requests_total{type=\"register_device\"}",
        "vmls_http_request_duration_us_bucket",
        "vmls_service_requests_total",
        "vmls_fan_out_bucket",
        "vmls_storage_latency_us_bucket",
        "vmls_mailbox_items",
    ] {
        assert!(metrics.contains(family), "{family} missing from {metrics}");
    }
    let health = get(&server, "/health").await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    server.stop().await;
}

/// GET /metrics as text.
async fn metrics_text(server: &TestServer) -> String {
    get(server, "/metrics").await
}

/// GET `path`, the whole answer (head and body) as text.
async fn get(server: &TestServer, path: &str) -> String {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything a bad request must leave as it was: the group's status and log, every mailbox.
async fn snapshot(group_id: &GroupId, clients: &[&Client]) -> Vec<Response> {
    let mut out = vec![
        clients[0]
            .call(Request::GroupStatus(group_id.clone()))
            .await
            .unwrap(),
        clients[0]
            .call(Request::Fetch(Fetch {
                group_id: group_id.clone(),
                from: Sequence(0),
            }))
            .await
            .unwrap(),
    ];
    for client in clients {
        out.push(mailbox(client).await);
    }
    out
}

/// Alice's group with Bob in it (epoch 1), on the server; Carol registered, not a member.
struct Scene {
    server: TestServer,
    alice: Member,
    carol: Member,
    clients: [Client; 3],
    group: Group,
    group_id: GroupId,
}

impl Scene {
    async fn new() -> Self {
        let server = TestServer::start("memory", limits()).await;
        let (alice, bob, carol) = (
            Member::new("alice"),
            Member::new("bob"),
            Member::new("carol"),
        );
        let clients = [
            server.member(&alice).await,
            server.member(&bob).await,
            server.member(&carol).await,
        ];
        let group_id = GroupId::new("adversarial group");
        let (mut group, create) = alice.create_group(group_id.as_bytes());
        assert!(matches!(
            clients[0].call(create).await.unwrap(),
            Response::Done(_)
        ));
        let add = add_commit(&mut group, &[&bob]).to_group(group_id.clone());
        assert!(matches!(
            clients[0].call(add).await.unwrap(),
            Response::Accepted(_)
        ));
        group.merge_pending_commit().unwrap();
        Self {
            server,
            alice,
            carol,
            clients,
            group,
            group_id,
        }
    }

    fn all(&self) -> Vec<&Client> {
        self.clients.iter().collect()
    }

    /// Sends `send` as `who` (0 alice, 1 bob, 2 carol), expects a refusal matching `expected`,
    /// and checks that nothing changed.
    async fn refused_unchanged(
        &self,
        who: usize,
        send: SendRequest,
        expected: fn(&ServiceError) -> bool,
    ) {
        let before = snapshot(&self.group_id, &self.all()).await;
        let answer = self.clients[who]
            .call(send.to_group(self.group_id.clone()))
            .await
            .unwrap();
        let e = refused(answer);
        assert!(expected(&e), "unexpected refusal {e:?}");
        assert_eq!(snapshot(&self.group_id, &self.all()).await, before);
    }
}

impl TestServer {
    /// A registered client signing with `member`'s MLS key.
    async fn member(&self, member: &Member) -> Client {
        let client = Client::new(ClientConfig::new(self.url()), member.signer()).unwrap();
        assert!(matches!(
            client.register().await.unwrap(),
            Response::Done(_)
        ));
        client
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_commit_is_refused_and_changes_nothing() {
    let scene = Scene::new().await;
    let epoch = scene.group.epoch();
    scene
        .refused_unchanged(0, SendRequest::commit(epoch, b"garbage".to_vec()), |e| {
            matches!(e, ServiceError::InvalidMessage { .. })
        })
        .await;
    scene.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_for_another_epoch_is_refused_and_changes_nothing() {
    let mut scene = Scene::new().await;
    // A commit made in epoch 1, then another of epoch 1 wins: the first is for a past epoch.
    let stale = update_commit(&mut scene.group);
    scene.group.clear_pending_commit();
    let winner = update_commit(&mut scene.group);
    let accepted = scene.clients[0]
        .call(winner.to_group(scene.group_id.clone()))
        .await
        .unwrap();
    assert!(matches!(accepted, Response::Accepted(_)), "{accepted:?}");
    scene.group.merge_pending_commit().unwrap();
    scene
        .refused_unchanged(0, stale, |e| matches!(e, ServiceError::StaleEpoch { .. }))
        .await;
    // The same commit claiming the current epoch: the service reads the epoch from the message.
    let mut lying = update_commit(&mut scene.group);
    scene.group.clear_pending_commit();
    lying.kind = MessageKind::Commit { epoch: 7 };
    scene
        .refused_unchanged(0, lying, |e| {
            matches!(
                e,
                ServiceError::ClaimMismatch { .. } | ServiceError::FutureEpoch { .. }
            )
        })
        .await;
    scene.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_recipients_that_do_not_match_the_adds_are_refused() {
    let mut scene = Scene::new().await;
    let dave = Member::new("dave");
    let mut send = add_commit(&mut scene.group, &[&dave]);
    scene.group.clear_pending_commit();
    if let Some(welcome) = &mut send.welcome {
        welcome.recipients = vec![scene.carol.id()];
    }
    scene
        .refused_unchanged(0, send, |e| matches!(e, ServiceError::ClaimMismatch { .. }))
        .await;
    scene.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_claimed_without_a_remove_is_refused() {
    let mut scene = Scene::new().await;
    let send =
        add_commit(&mut scene.group, &[&Member::new("dave")]).removing(vec![ClientId::new("bob")]);
    scene.group.clear_pending_commit();
    scene
        .refused_unchanged(0, send, |e| matches!(e, ServiceError::ClaimMismatch { .. }))
        .await;
    scene.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_cannot_post() {
    let mut scene = Scene::new().await;
    // Carol posts a message of the group (made by Alice) as herself.
    let message = application(&mut scene.group, 100);
    scene
        .refused_unchanged(2, message, |e| {
            matches!(
                e,
                ServiceError::NotAMember { .. } | ServiceError::ClaimMismatch { .. }
            )
        })
        .await;
    let _ = &scene.alice;
    scene.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_wakes_a_subscribed_device_and_refuses_strangers() {
    let mut scene = Scene::new().await;
    let bob = &scene.clients[1];
    let mut push = bob.subscribe();
    // The first wake-up is the subscription itself: read once.
    push.next().await.unwrap();
    let Response::Mailbox(items) = mailbox(bob).await else {
        panic!()
    };
    let before = items.len();
    let message = application(&mut scene.group, 1024).to_group(scene.group_id.clone());
    assert!(matches!(
        scene.clients[0].call(message).await.unwrap(),
        Response::Accepted(_)
    ));
    push.next().await.unwrap();
    let Response::Mailbox(items) = mailbox(bob).await else {
        panic!()
    };
    assert_eq!(items.len(), before + 1);

    let stranger = scene.server.client("stranger");
    let mut refused = stranger.subscribe();
    let e = refused.next().await.unwrap_err();
    assert!(matches!(e, ServiceError::UnknownClient { .. }), "{e:?}");
    drop(push);
    scene.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_trusted_ca_and_only_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let (ca_file, cert_file, key_file) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, leaf.pem()).unwrap();
    std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();

    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "memory");
    config.tls = Some(TlsFiles {
        cert: cert_file,
        key: key_file,
    });
    let server = TestServer::start_with(config).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let alice = Member::new("alice");

    let mut trusted = ClientConfig::new(url.clone());
    trusted.ca_file = Some(ca_file);
    let client = Client::new(trusted, alice.signer()).unwrap();
    assert!(matches!(
        client.register().await.unwrap(),
        Response::Done(_)
    ));
    let mut push = client.subscribe();
    push.next().await.unwrap();

    // Without the CA (web PKI roots only) the certificate does not verify.
    let mut untrusted = ClientConfig::new(url);
    untrusted.retries = 0;
    let client = Client::new(untrusted, alice.signer()).unwrap();
    let e = client.call(read_mailbox()).await.unwrap_err();
    assert!(matches!(e, ClientError::Tls(_)), "{e:?}");

    // Plain HTTP to the TLS port gets no answer it could take for the service's.
    let mut plain = ClientConfig::new(format!("http://127.0.0.1:{}", server.addr.port()));
    plain.retries = 0;
    let client = Client::new(plain, alice.signer()).unwrap();
    assert!(client.call(read_mailbox()).await.is_err());
    drop(push);
    server.stop().await;
}
