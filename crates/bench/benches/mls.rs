//! Criterion benchmarks of the [`Engine`] operations on every selected shape and engine:
//! `cargo bench -p vmls-bench` (all), or e.g.
//! `VMLS_BENCH_SIZES=16,256 VMLS_BENCH_ENGINES=vmls cargo bench -p vmls-bench`. Then
//! `mls-engine` alone on the post-quantum suite (`VMLS_BENCH_PQ_SIZES`, default `256,c4096`;
//! ids `full-256-pq/<operation>/vmls-pq`).
//! Benchmark ids: `<shape>/<operation>/<engine>`. The message sizes and setup times are
//! printed (a Markdown table row per engine and shape) before each engine's benchmarks.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode};
use vmls_bench::engines::{MlsRs, OpenMls, Vmls, VmlsPq};
use vmls_bench::{Engine, Fixture, Selection, Shared, APPLICATION_MESSAGE, SIZES_HEADER};

fn bench_engine<E: Engine>(c: &mut Criterion, selection: &Selection, shared: &Shared) {
    if !selection.has::<E>() {
        return;
    }
    let shape = shared.shape;
    let f = Fixture::<E>::build(shared);
    println!("{SIZES_HEADER}\n{}", f.sizes_row());

    let mut group = c.benchmark_group(shared.label());
    let n = shape.members();
    if n >= 256 {
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(if n >= 4096 { 4 } else { 3 }));
    } else {
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
    }

    group.bench_function(BenchmarkId::new("commit", E::NAME), |b| {
        b.iter_batched(
            || E::fork(&f.committer),
            |mut m| {
                let commit = E::commit_with_path(&mut m);
                (m, commit)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function(BenchmarkId::new("process", E::NAME), |b| {
        b.iter_batched(
            || E::fork(&f.receiver),
            |mut m| {
                E::process_commit(&mut m, black_box(&f.commit));
                m
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function(BenchmarkId::new("add", E::NAME), |b| {
        b.iter_batched(
            || E::fork(&f.committer),
            |mut m| {
                let out = E::add(&mut m, std::slice::from_ref(&f.key_package));
                (m, out)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function(BenchmarkId::new("join", E::NAME), |b| {
        b.iter_batched(
            || E::fork_joiner(&f.joiner),
            |j| E::join(j, black_box(&f.welcome)),
            BatchSize::PerIteration,
        )
    });
    // Application messages: one sender and one receiver keep their state across iterations
    // (a stream of messages in one epoch, generation after generation).
    let mut sender = E::fork(&f.committer);
    group.bench_function(BenchmarkId::new("encrypt", E::NAME), |b| {
        b.iter(|| E::encrypt(&mut sender, black_box(&APPLICATION_MESSAGE)))
    });
    let mut sender = E::fork(&f.committer);
    let mut receiver = E::fork(&f.receiver);
    group.bench_function(BenchmarkId::new("decrypt", E::NAME), |b| {
        b.iter_batched(
            || E::encrypt(&mut sender, &APPLICATION_MESSAGE),
            |message| E::decrypt(&mut receiver, &message),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn main() {
    let selection = Selection::from_env();
    let mut c = Criterion::default().configure_from_args();
    for &shape in &selection.shapes {
        let shared = Shared::build(shape);
        println!(
            "{}: shared setup (mls-engine) {:.1} s",
            shape.label(),
            shared.setup.as_secs_f64()
        );
        bench_engine::<Vmls>(&mut c, &selection, &shared);
        bench_engine::<OpenMls>(&mut c, &selection, &shared);
        bench_engine::<MlsRs>(&mut c, &selection, &shared);
    }
    for &shape in &selection.pq_shapes {
        if !selection.has::<VmlsPq>() {
            break;
        }
        let shared = Shared::build_on::<0x004F>(shape);
        println!(
            "{}: shared setup (mls-engine) {:.1} s",
            shared.label(),
            shared.setup.as_secs_f64()
        );
        bench_engine::<VmlsPq>(&mut c, &selection, &shared);
    }
    c.final_summary();
}
