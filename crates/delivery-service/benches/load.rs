//! The delivery service's load benchmark (issue 14; not a test, no timing assertions):
//! accepted messages per second and p50/p99 latency over HTTP on loopback, for 1 KiB
//! application messages and for commits, with fan-out 10 and 100, on SQLite and on PostgreSQL
//! with one and two server instances, beside the raw insert rate of the same database measured
//! in the same run (one row per transaction: the physical limit of a durable append).
//!
//! `cargo bench -p delivery-service --bench load` (add `-- --quick` for a short run). The
//! PostgreSQL rows need `VMLS_TEST_POSTGRES_URL`. Results: docs/performance.md.

#[path = "../tests/net/mls.rs"]
mod mls;

use std::time::{Duration, Instant};

use delivery_service::config::{HttpLimits, ServerConfig};
use delivery_service::http::Server;
use mls::{add_commit, application, svc, Member};
use mls_engine::codec::MlsMessageBody;
use mls_engine::group::CommitOptions;
use tokio::sync::oneshot;
use vmls_client::vmls_protocol::{GroupId, Request, Response, SendRequest};
use vmls_client::{Client, ClientConfig};

/// Concurrent senders of application messages.
const SENDERS: usize = 8;

struct Sizes {
    messages: usize,
    commits: usize,
    raw_rows: usize,
}

#[derive(Clone)]
enum Database {
    Sqlite(std::path::PathBuf),
    Postgres { base: String, schema: String },
}

impl Database {
    fn url(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres { base, schema } => {
                let separator = if base.contains('?') { '&' } else { '?' };
                format!("{base}{separator}options=-csearch_path%3D{schema}")
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "SQLite",
            Self::Postgres { .. } => "PostgreSQL",
        }
    }
}

struct Row {
    database: &'static str,
    instances: usize,
    what: String,
    fan_out: usize,
    count: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Servers {
    urls: Vec<String>,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Servers {
    async fn start(database: &Database, instances: usize) -> Self {
        let mut servers = Self {
            urls: vec![],
            stops: vec![],
            tasks: vec![],
        };
        for _ in 0..instances {
            let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), database.url());
            config.limits = HttpLimits {
                requests_per_second: 1_000_000,
                burst: 1_000_000,
                ..HttpLimits::default()
            };
            let server = Server::bind(config).await.expect("server starts");
            servers.urls.push(format!("http://{}", server.local_addr()));
            let (stop, stopped) = oneshot::channel();
            servers.stops.push(stop);
            servers.tasks.push(tokio::spawn(server.run(async {
                let _ = stopped.await;
            })));
        }
        servers
    }

    async fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn client(url: &str, member: &Member) -> Client {
    Client::new(ClientConfig::new(url), member.signer()).unwrap()
}

async fn accepted(client: &Client, request: Request) -> Duration {
    let started = Instant::now();
    let answer = client.call(request).await.expect("answer");
    let elapsed = started.elapsed();
    assert!(matches!(answer, Response::Accepted(_)), "{answer:?}");
    elapsed
}

/// One scenario: a group of 1 + `fan_out` members; `SENDERS` tasks send 1 KiB application
/// messages, then the creator sends commits one after another.
async fn scenario(
    database: &Database,
    instances: usize,
    fan_out: usize,
    sizes: &Sizes,
    run: usize,
) -> Vec<Row> {
    let servers = Servers::start(database, instances).await;
    let alice = Member::new("alice");
    let others: Vec<Member> = (0..fan_out)
        .map(|i| Member::new(&format!("m{i}")))
        .collect();
    let a = client(&servers.urls[0], &alice);
    assert!(matches!(a.register().await.unwrap(), Response::Done(_)));
    for (i, m) in others.iter().enumerate() {
        let c = client(&servers.urls[i % instances], m);
        assert!(matches!(c.register().await.unwrap(), Response::Done(_)));
    }
    let group_id = format!("bench {run} {fan_out} {instances}").into_bytes();
    let gid = GroupId::new(&group_id);
    let (mut group, create) = alice.create_group(&group_id);
    assert!(matches!(a.call(create).await.unwrap(), Response::Done(_)));
    let refs: Vec<&Member> = others.iter().collect();
    accepted(&a, add_commit(&mut group, &refs).to_group(gid.clone())).await;
    group.merge_pending_commit().unwrap();

    // Application messages, made before the clock starts.
    let messages: Vec<SendRequest> = (0..sizes.messages)
        .map(|_| application(&mut group, 1024))
        .collect();
    let mut batches: Vec<Vec<Request>> = vec![Vec::new(); SENDERS];
    for (i, m) in messages.into_iter().enumerate() {
        batches[i % SENDERS].push(m.to_group(gid.clone()));
    }
    let clients: Vec<Client> = (0..SENDERS)
        .map(|i| client(&servers.urls[i % instances], &alice))
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (batch, c) in batches.into_iter().zip(clients) {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(batch.len());
            for request in batch {
                latencies.push(accepted(&c, request).await);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let wall = started.elapsed();
    latencies.sort();
    let mut rows = vec![Row {
        database: database.name(),
        instances,
        what: "1 KiB application".into(),
        fan_out,
        count: latencies.len(),
        per_second: latencies.len() as f64 / wall.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }];

    // Commits (one epoch after another: each waits for the previous).
    let mut commit_latencies = Vec::new();
    let mut busy = Duration::ZERO;
    for i in 0..sizes.commits {
        let epoch = group.epoch();
        let options = CommitOptions {
            force_path: true,
            group_info: true,
            ..CommitOptions::default()
        };
        let out = group.commit(&svc(), options, mls::now()).unwrap();
        let info = mls::message_bytes(MlsMessageBody::GroupInfo(out.group_info.unwrap()));
        let send = SendRequest::commit(epoch, out.commit.to_bytes().unwrap()).with_group_info(info);
        let c = if instances > 1 && i % 2 == 1 {
            client(&servers.urls[1], &alice)
        } else {
            a.clone()
        };
        let latency = accepted(&c, send.to_group(gid.clone())).await;
        group.merge_pending_commit().unwrap();
        busy += latency;
        commit_latencies.push(latency);
    }
    commit_latencies.sort();
    rows.push(Row {
        database: database.name(),
        instances,
        what: "commit (path, GroupInfo)".into(),
        fan_out,
        count: commit_latencies.len(),
        per_second: commit_latencies.len() as f64 / busy.as_secs_f64(),
        p50: percentile(&commit_latencies, 0.5),
        p99: percentile(&commit_latencies, 0.99),
    });
    servers.stop().await;
    rows
}

/// Rows per second of single-row durable transactions (1 KiB each) in SQLite (WAL,
/// synchronous=FULL), one writer.
fn sqlite_raw(dir: &std::path::Path, rows: usize) -> f64 {
    let db = rusqlite::Connection::open(dir.join("raw.sqlite3")).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE raw(id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
    )
    .unwrap();
    let body = vec![0x61u8; 1024];
    let started = Instant::now();
    for _ in 0..rows {
        db.execute("INSERT INTO raw(body) VALUES (?1)", [&body])
            .unwrap();
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

/// Rows per second of single-row transactions (1 KiB each) in PostgreSQL, `SENDERS`
/// connections at once.
async fn postgres_raw(base: &str, schema: &str, rows: usize) -> f64 {
    let mut clients = Vec::new();
    for _ in 0..SENDERS {
        let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        clients.push(client);
    }
    clients[0]
        .batch_execute(&format!(
            "CREATE TABLE {schema}.raw(id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)"
        ))
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in clients {
        let statement = format!("INSERT INTO {schema}.raw(body) VALUES ($1)");
        tasks.push(tokio::spawn(async move {
            let body = vec![0x61u8; 1024];
            for _ in 0..rows / SENDERS {
                client.execute(&statement, &[&body]).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (rows / SENDERS * SENDERS) as f64 / started.elapsed().as_secs_f64()
}

async fn fresh_schema(base: &str, schema: &str) {
    let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL at VMLS_TEST_POSTGRES_URL");
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
        ))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            messages: 400,
            commits: 20,
            raw_rows: 400,
        }
    } else {
        Sizes {
            messages: 4_000,
            commits: 100,
            raw_rows: 4_000,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    let mut raw = Vec::new();
    runtime.block_on(async {
        let mut run = 0;
        raw.push(("SQLite", sqlite_raw(dir.path(), sizes.raw_rows)));
        for fan_out in [10, 100] {
            run += 1;
            let db = Database::Sqlite(dir.path().join(format!("service-{run}.sqlite3")));
            rows.extend(scenario(&db, 1, fan_out, &sizes, run).await);
        }
        match std::env::var("VMLS_TEST_POSTGRES_URL") {
            Err(_) => eprintln!("*** VMLS_TEST_POSTGRES_URL unset: no PostgreSQL rows ***"),
            Ok(base) => {
                let schema = format!("bench_raw_{}", std::process::id());
                fresh_schema(&base, &schema).await;
                raw.push((
                    "PostgreSQL",
                    postgres_raw(&base, &schema, sizes.raw_rows).await,
                ));
                for instances in [1, 2] {
                    for fan_out in [10, 100] {
                        run += 1;
                        let schema = format!("bench_{run}_{}", std::process::id());
                        fresh_schema(&base, &schema).await;
                        let db = Database::Postgres {
                            base: base.clone(),
                            schema,
                        };
                        rows.extend(scenario(&db, instances, fan_out, &sizes, run).await);
                    }
                }
            }
        }
    });
    println!("| database | raw inserts/s (1 KiB, one per transaction) |");
    println!("|---|---|");
    for (db, rate) in &raw {
        println!("| {db} | {rate:.0} |");
    }
    println!();
    println!(
        "| database | instances | message | fan-out | count | accepted/s | % of raw | p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let raw_rate = raw
            .iter()
            .find(|(db, _)| *db == r.database)
            .map_or(f64::NAN, |(_, rate)| *rate);
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} % | {:.2} ms | {:.2} ms |",
            r.database,
            r.instances,
            r.what,
            r.fan_out,
            r.count,
            r.per_second,
            100.0 * r.per_second / raw_rate,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3
        );
    }
}
