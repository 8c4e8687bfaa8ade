//! Prints the message sizes (and setup times) of every selected engine and shape as a
//! Markdown table: `cargo run -p vmls-bench --release --bin sizes`. `VMLS_BENCH_SIZES` and
//! `VMLS_BENCH_ENGINES` restrict the run (see `vmls_bench::Selection`).

use vmls_bench::engines::{MlsRs, OpenMls, Vmls, VmlsPq};
use vmls_bench::{Engine, Fixture, Selection, Shared, SIZES_HEADER};

fn row<E: Engine>(selection: &Selection, shared: &Shared) {
    if selection.has::<E>() {
        println!("{}", Fixture::<E>::build(shared).sizes_row());
    }
}

fn main() {
    let selection = Selection::from_env();
    println!("{SIZES_HEADER}");
    for &shape in &selection.shapes {
        let shared = Shared::build(shape);
        eprintln!(
            "{}: shared setup {:.1} s",
            shape.label(),
            shared.setup.as_secs_f64()
        );
        row::<Vmls>(&selection, &shared);
        row::<OpenMls>(&selection, &shared);
        row::<MlsRs>(&selection, &shared);
    }
    for &shape in &selection.pq_shapes {
        if !selection.has::<VmlsPq>() {
            break;
        }
        let shared = Shared::build_on::<0x004F>(shape);
        eprintln!(
            "{}: shared setup {:.1} s",
            shared.label(),
            shared.setup.as_secs_f64()
        );
        row::<VmlsPq>(&selection, &shared);
    }
}
