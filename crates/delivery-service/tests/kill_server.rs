//! `kill -9` of the server under load (issue 14 "Proof"): the server runs as a child process
//! (`vmls-delivery-service`, the code of `vmls serve`) on SQLite and on PostgreSQL and is
//! killed at least 50 times while a device sends and another reads and acknowledges its
//! mailbox. Every message whose send was acknowledged is delivered after the restarts, and
//! none twice to the application (which drops redeliveries of unacknowledged items by log
//! position); the group's log holds each message once (idempotent resend). The same load
//! across graceful shutdowns (SIGTERM): the server exits cleanly and loses nothing either.

mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::mls::{add_commit, application, Member};
use vmls_client::vmls_protocol::{
    Ack, Delivered, Fetch, GroupId, ReadMailbox, Request, Response, Sequence,
};
use vmls_client::{Client, ClientConfig};

const KILLS: usize = 50;
/// Graceful restarts (SIGTERM) under load.
const TERMINATIONS: usize = 5;

/// How the server is stopped under load.
#[derive(Clone, Copy)]
enum Stop {
    /// `kill -9`, [`KILLS`] times.
    Kill,
    /// SIGTERM (graceful shutdown), [`TERMINATIONS`] times.
    Terminate,
}
const SENDERS: usize = 2;

/// The server as a child process.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `vmls-delivery-service` on `database`, listening on `listen`.
    fn start(database: &str, listen: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vmls-delivery-service"))
            .args(["--listen", listen, "--database", database])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Self { child, addr }
    }

    /// `kill -9`.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// `kill -TERM`: the server shuts down gracefully and exits with success.
    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "graceful shutdown exited with {exit}");
    }

    /// Stops the server the way `stop` says.
    fn stop(self, stop: Stop) {
        match stop {
            Stop::Kill => self.kill(),
            Stop::Terminate => self.terminate(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(addr: SocketAddr, member: &Member) -> Client {
    let mut config = ClientConfig::new(format!("http://{addr}"));
    config.retries = 12;
    config.request_timeout = Duration::from_secs(10);
    Client::new(config, member.signer()).unwrap()
}

/// Sends until it is accepted (an application that got no answer sends again, same message).
async fn send_until_accepted(client: &Client, request: Request) -> Sequence {
    loop {
        match client.call(request.clone()).await {
            Ok(Response::Accepted(a)) => return a.sequence,
            Ok(Response::Refused(e)) if e.is_retry_after_processing() => {
                panic!("refused: {e:?}")
            }
            Ok(Response::Refused(vmls_client::vmls_protocol::ServiceError::Unavailable {
                ..
            }))
            | Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(other) => panic!("unexpected answer {other:?}"),
        }
    }
}

/// What the receiving application got: group messages by log position.
#[derive(Default)]
struct Received {
    by_sequence: BTreeMap<Sequence, Vec<u8>>,
    redeliveries: usize,
}

/// Reads and acknowledges the mailbox until it is empty once; the application keeps each log
/// position once.
async fn drain(client: &Client, received: &Mutex<Received>) -> Result<usize, ()> {
    let read = Request::ReadMailbox(ReadMailbox {
        after: None,
        max_items: 0,
    });
    let Ok(Response::Mailbox(items)) = client.call(read).await else {
        return Err(());
    };
    let Some(last) = items.last().map(|i| i.cursor) else {
        return Ok(0);
    };
    {
        let mut received = received.lock().unwrap();
        for item in &items {
            if let Delivered::Message { message, .. } = &item.item {
                match received.by_sequence.get(&message.sequence) {
                    Some(seen) => {
                        assert_eq!(
                            seen,
                            &message.message.to_vec(),
                            "one position, two messages"
                        );
                        received.redeliveries += 1;
                    }
                    None => {
                        received
                            .by_sequence
                            .insert(message.sequence, message.message.to_vec());
                    }
                }
            }
        }
    }
    match client.call(Request::Ack(Ack { up_to: last })).await {
        Ok(Response::Done(_)) => Ok(items.len()),
        _ => Err(()),
    }
}

fn run(database: &str, stop: Stop) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(scenario(database, stop));
}

async fn scenario(database: &str, how: Stop) {
    let stops = match how {
        Stop::Kill => KILLS,
        Stop::Terminate => TERMINATIONS,
    };
    let server = Server::start(database, "127.0.0.1:0");
    let addr = server.addr;
    let listen = addr.to_string();
    let alice = Member::new("alice");
    let bob = Member::new("bob");
    let (a, b) = (client(addr, &alice), client(addr, &bob));
    assert!(matches!(a.register().await.unwrap(), Response::Done(_)));
    assert!(matches!(b.register().await.unwrap(), Response::Done(_)));
    let group_id = b"killed group".to_vec();
    let (mut group, create) = alice.create_group(&group_id);
    assert!(matches!(a.call(create).await.unwrap(), Response::Done(_)));
    let commit = add_commit(&mut group, &[&bob]);
    send_until_accepted(&a, commit.to_group(GroupId::new(&group_id))).await;
    group.merge_pending_commit().unwrap();

    let group = Arc::new(Mutex::new(group));
    let acknowledged = Arc::new(Mutex::new(BTreeMap::<Vec<u8>, Sequence>::new()));
    let received = Arc::new(Mutex::new(Received::default()));
    let stop = Arc::new(AtomicBool::new(false));

    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let (a, group, acknowledged, stop) =
            (a.clone(), group.clone(), acknowledged.clone(), stop.clone());
        let group_id = GroupId::new(&group_id);
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let send = application(&mut group.lock().unwrap(), 256);
                let bytes = send.message.to_vec();
                let sequence = send_until_accepted(&a, send.to_group(group_id.clone())).await;
                acknowledged.lock().unwrap().insert(bytes, sequence);
            }
        }));
    }
    let reader = {
        let (b, received, stop) = (b.clone(), received.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if drain(&b, &received).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };

    let mut server = Some(server);
    for kill in 0..stops {
        tokio::time::sleep(Duration::from_millis(60 + (kill as u64 * 37) % 120)).await;
        server.take().unwrap().stop(how);
        server = Some(Server::start(database, &listen));
    }
    // Some load after the last restart, then stop and read everything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    reader.await.unwrap();
    while drain(&b, &received).await != Ok(0) {}

    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    let received = std::mem::take(&mut *received.lock().unwrap());
    assert!(
        acknowledged.len() >= stops,
        "too little load: {} messages acknowledged over {stops} stops",
        acknowledged.len()
    );
    // The commit adding bob is at #0; everything else is an application message of alice.
    let delivered: BTreeMap<&Vec<u8>, Sequence> = received
        .by_sequence
        .iter()
        .filter(|(s, _)| s.0 > 0)
        .map(|(s, m)| (m, *s))
        .collect();
    for (message, sequence) in acknowledged.iter() {
        assert_eq!(
            delivered.get(message),
            Some(sequence),
            "an acknowledged message was lost or moved"
        );
    }
    // The log holds each message once: a retried send was not appended again.
    let mut log = Vec::new();
    loop {
        let from = log.last().map_or(
            Sequence(0),
            |m: &vmls_client::vmls_protocol::GroupMessage| m.sequence.next(),
        );
        let page = match b
            .call(Request::Fetch(Fetch {
                group_id: GroupId::new(&group_id),
                from,
            }))
            .await
            .unwrap()
        {
            Response::Messages(messages) => messages,
            other => panic!("fetch: {other:?}"),
        };
        if page.is_empty() {
            break;
        }
        log.extend(page);
    }
    let distinct: BTreeSet<Vec<u8>> = log.iter().map(|m| m.message.to_vec()).collect();
    assert_eq!(distinct.len(), log.len(), "a message is twice in the log");
    eprintln!(
        "kill_server: {stops} stops, {} acknowledged, {} delivered, {} redeliveries dropped, log {}",
        acknowledged.len(),
        received.by_sequence.len(),
        received.redeliveries,
        log.len()
    );
    if let Some(server) = server {
        server.kill();
    }
}

#[test]
fn sqlite_kill_9_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.sqlite3");
    run(path.to_str().unwrap(), Stop::Kill);
}

#[test]
fn sqlite_graceful_shutdown_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("term.sqlite3");
    run(path.to_str().unwrap(), Stop::Terminate);
}

#[test]
fn postgres_kill_9_under_load_loses_nothing_acknowledged() {
    let Some(url) = net::postgres_url("kill_server") else {
        return;
    };
    run(&url, Stop::Kill);
}
