//! The outputs of `vmls bench`: the table, the crossovers, the CSV and the SVG plot.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{BenchError, Mode, Op, Report, Row};

/// A compared quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// CPU time per device.
    Cpu,
    /// Octets sent and received per device.
    Bytes,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::Cpu => "CPU ms per device",
            Metric::Bytes => "bytes up+down per device",
        }
    }

    fn of(self, row: &Row) -> f64 {
        match self {
            Metric::Cpu => row.cpu_ms,
            Metric::Bytes => row.bytes(),
        }
    }
}

/// Where, over the D values run, virtual clients start to cost less than one leaf per device
/// for one operation and metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossover {
    /// The operation.
    pub op: Op,
    /// The metric.
    pub metric: Metric,
    /// The smallest D from which on (for every larger D run too) virtual clients cost less
    /// by more than [`TOLERANCE`]; `None` if they do not at the largest D.
    pub from: Option<u32>,
    /// (D, virtual, per-device) for every D the operation ran at.
    pub points: Vec<(u32, f64, f64)>,
}

impl Crossover {
    /// One line of text.
    pub fn describe(&self) -> String {
        let what = format!("{:<9} {:<25}", self.op.name(), self.metric.name());
        let (Some(first), Some(last)) = (self.points.first(), self.points.last()) else {
            return format!("{what} not run");
        };
        let ratio = |p: &(u32, f64, f64)| {
            if p.2 > 0.0 {
                format!("{:.2}", p.1 / p.2)
            } else {
                "-".to_string()
            }
        };
        let ratios = self
            .points
            .iter()
            .map(|p| format!("D={}: {}", p.0, ratio(p)))
            .collect::<Vec<_>>()
            .join(", ");
        let verdict = match self.from {
            Some(d) if d == first.0 => format!("virtual cheaper at every D run ({d}..={})", last.0),
            Some(d) => format!(
                "virtual cheaper from D={d}; below it the emulation overhead outweighs the gain"
            ),
            None if self.points.iter().all(|p| !costlier(p.1, p.2)) => format!(
                "no difference beyond {:.0}% up to D={}",
                TOLERANCE * 100.0,
                last.0
            ),
            None => format!("virtual never cheaper (up to D={})", last.0),
        };
        format!("{what} {verdict} [virtual/per-device {ratios}]")
    }
}

/// Differences smaller than this share of the per-device figure count as equal.
pub const TOLERANCE: f64 = 0.03;

fn cheaper(virtual_clients: f64, per_device: f64) -> bool {
    virtual_clients < per_device * (1.0 - TOLERANCE)
}

fn costlier(virtual_clients: f64, per_device: f64) -> bool {
    virtual_clients > per_device * (1.0 + TOLERANCE)
}

/// The crossover of every operation and metric.
pub fn crossovers(report: &Report) -> Vec<Crossover> {
    let mut out = Vec::new();
    for op in Op::ALL {
        for metric in [Metric::Cpu, Metric::Bytes] {
            let mut points: Vec<(u32, f64, f64)> = Vec::new();
            for v in report
                .rows
                .iter()
                .filter(|r| r.op == op && r.mode == Mode::Virtual && r.ran())
            {
                if let Some(p) = report
                    .rows
                    .iter()
                    .find(|r| r.op == op && r.mode == Mode::PerDevice && r.d == v.d && r.ran())
                {
                    points.push((v.d, metric.of(v), metric.of(p)));
                }
            }
            if points.is_empty() && !report.config.ops.contains(&op) {
                continue;
            }
            points.sort_by_key(|p| p.0);
            let mut from = None;
            for &(d, v, p) in points.iter().rev() {
                if cheaper(v, p) {
                    from = Some(d);
                } else {
                    break;
                }
            }
            out.push(Crossover {
                op,
                metric,
                from,
                points,
            });
        }
    }
    out
}

fn human_bytes(b: f64) -> String {
    if b >= 10.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else if b >= 10.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// The table: per D and operation, both runs side by side; then the crossovers.
pub fn table(report: &Report) -> String {
    let c = &report.config;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "vmls bench: U={} users, G={} groups, {} users per group (fraction {}), {} messages per group, suite 0x{:04x} ({}){}",
        c.users,
        c.groups,
        c.users_per_group(),
        c.fraction,
        c.messages,
        c.suite.0,
        c.suite.name().unwrap_or("unnamed"),
        if c.warm_up { ", warm-up round" } else { "" }
    );
    let mut ds: Vec<u32> = report.rows.iter().map(|r| r.d).collect();
    ds.dedup();
    for d in ds {
        let _ = writeln!(s);
        let walls: Vec<String> = report
            .wall
            .iter()
            .filter(|w| w.0 == d)
            .map(|(_, m, setup, all)| {
                format!(
                    "{m} {:.1} s (setup {:.1} s)",
                    all.as_secs_f64(),
                    setup.as_secs_f64()
                )
            })
            .collect();
        let _ = writeln!(s, "D={d} devices per user; wall time: {}", walls.join(", "));
        for (dd, mode, t) in &report.setup_trees {
            if *dd == d {
                let _ = writeln!(
                    s,
                    "  after setup{}, {mode:<10}: tree {}, {:.1} leaves, {:.1} members, blanks {:.1}/{:.1}, {:.1} HPKE encryptions per commit",
                    if c.warm_up { " and warm-up" } else { "" },
                    human_bytes(t.tree_bytes), t.leaves, t.members, t.blank_leaves, t.blank_parents, t.path_encryptions
                );
            }
        }
        let _ = writeln!(
            s,
            "  {:<9} {:<10} {:>8} {:>11} {:>11} {:>10} {:>10} {:>7} {:>9} {:>9} {:>7}",
            "operation",
            "run",
            "messages",
            "CPU ms/dev",
            "CPU ms max",
            "up/dev",
            "down/dev",
            "leaves",
            "tree",
            "blanks",
            "enc"
        );
        for r in report.rows.iter().filter(|r| r.d == d) {
            if !r.ran() {
                let _ = writeln!(
                    s,
                    "  {:<9} {:<10} ({})",
                    r.op.name(),
                    r.mode.name(),
                    super::SKIPPED_NOTE
                );
                continue;
            }
            let _ = writeln!(
                s,
                "  {:<9} {:<10} {:>8} {:>11.3} {:>11.3} {:>10} {:>10} {:>7.1} {:>9} {:>9} {:>7.1}",
                r.op.name(),
                r.mode.name(),
                r.messages,
                r.cpu_ms,
                r.cpu_ms_max,
                human_bytes(r.up),
                human_bytes(r.down),
                r.tree.leaves,
                human_bytes(r.tree.tree_bytes),
                format!("{:.1}/{:.1}", r.tree.blank_leaves, r.tree.blank_parents),
                r.tree.path_encryptions,
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "per group, after the operation: tree = encoded ratchet_tree; blanks = blank leaves left of the last member / blank parents over members;"
    );
    let _ = writeln!(
        s,
        "  enc = HPKE encryptions of a commit with path (mean over members). /dev = divided by the users' devices; max = the busiest device"
    );
    let _ = writeln!(
        s,
        "crossover (virtual vs per-device, over the D values run):"
    );
    for x in crossovers(report) {
        let _ = writeln!(s, "  {}", x.describe());
    }
    s
}

/// The CSV: one line per D, operation and run.
pub fn csv(report: &Report) -> String {
    let c = &report.config;
    let mut s = String::from(
        "users,devices_per_user,groups,users_per_group,messages_per_group,op,mode,devices,messages,cpu_ms_per_device,cpu_ms_max,bytes_up_per_device,bytes_down_per_device,bytes_up_max,bytes_down_max,tree_bytes,leaves,members,blank_leaves,blank_parents,path_encryptions,note\n",
    );
    for r in &report.rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{:.4},{:.4},{:.1},{:.1},{},{},{:.1},{:.2},{:.2},{:.2},{:.2},{:.2},\"{}\"",
            c.users,
            r.d,
            c.groups,
            c.users_per_group(),
            c.messages,
            r.op.name(),
            r.mode.name(),
            r.devices,
            r.messages,
            r.cpu_ms,
            r.cpu_ms_max,
            r.up,
            r.down,
            r.up_max,
            r.down_max,
            r.tree.tree_bytes,
            r.tree.leaves,
            r.tree.members,
            r.tree.blank_leaves,
            r.tree.blank_parents,
            r.tree.path_encryptions,
            r.note.unwrap_or("")
        );
    }
    s
}

fn plot_err<E: std::fmt::Display>(e: E) -> BenchError {
    BenchError::Plot(e.to_string())
}

/// The plot: for every operation run, CPU and bytes per device against D, both runs.
pub fn plot(report: &Report, path: &Path) -> Result<(), BenchError> {
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| report.rows.iter().any(|r| r.op == *op && r.ran()))
        .collect();
    let rows = ops.len().max(1);
    let root = SVGBackend::new(path, (1100, 300 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let areas = root.split_evenly((rows, 2));
    for (i, op) in ops.iter().enumerate() {
        for (j, metric) in [Metric::Cpu, Metric::Bytes].into_iter().enumerate() {
            let Some(area) = areas.get(i * 2 + j) else {
                continue;
            };
            let series = |mode: Mode| -> Vec<(f64, f64)> {
                report
                    .rows
                    .iter()
                    .filter(|r| r.op == *op && r.mode == mode && r.ran())
                    .map(|r| (f64::from(r.d), metric.of(r)))
                    .collect()
            };
            let all: Vec<(f64, f64)> = Mode::BOTH.into_iter().flat_map(series).collect();
            let xmin = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let xmax = all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
            let ymax = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.15;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{op}: {}", metric.name()), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(35)
                .y_label_area_size(70)
                .build_cartesian_2d((xmin - 0.5)..(xmax + 0.5), 0f64..ymax)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc("devices per user (D)")
                .x_labels(((xmax - xmin) as usize + 2).min(12))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_desc(match metric {
                    Metric::Cpu => "ms",
                    Metric::Bytes => "KiB",
                })
                .y_label_formatter(&|y| match metric {
                    Metric::Cpu => format!("{y:.1}"),
                    Metric::Bytes => format!("{:.1}", y / 1024.0),
                })
                .draw()
                .map_err(plot_err)?;
            for (mode, color) in [(Mode::Virtual, BLUE), (Mode::PerDevice, RED)] {
                let points = series(mode);
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(plot_err)?
                    .label(mode.name())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 4, color.filled())),
                    )
                    .map_err(plot_err)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Writes `bench.csv` and `bench.svg` into `dir` (created if missing); returns their paths.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BenchError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let csv_path = dir.join("bench.csv");
    std::fs::write(&csv_path, csv(report)).map_err(io(&csv_path))?;
    let svg_path = dir.join("bench.svg");
    plot(report, &svg_path)?;
    Ok(vec![csv_path, svg_path])
}
