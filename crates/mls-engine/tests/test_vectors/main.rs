//! Runs the official RFC 9420 test vectors (mlswg/mls-implementations).
//!
//! Reads every `*.json` file in the folder named by `VMLS_TEST_VECTORS` (default:
//! `../shared/test-vectors` beside the repository; the working group's files are not copied
//! into it; a missing folder fails the run with one line saying where they come from). Each file whose name is recognised is run
//! case by case and reported as `<file>: N passed, N failed, N skipped`. The run fails if any
//! case fails, or if a recognised file yields no passed case. Cases for cipher suites the engine
//! does not implement are skipped and counted, by suite.

mod common;
mod crypto_basics;
mod deserialization;
mod key_schedule;
mod message_protection;
mod messages;
#[path = "../support/official_vectors.rs"]
mod official_vectors;
mod passive_client;
mod psk_secret;
mod secret_tree;
mod transcript_hashes;
mod tree_math;
mod tree_operations;
mod tree_validation;
mod treekem;
mod welcome;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::{Outcome, Runner};

/// The recognised files: file stem -> per-case runner.
fn runners() -> BTreeMap<&'static str, Runner> {
    let mut map: BTreeMap<&'static str, Runner> = BTreeMap::new();
    map.insert("crypto-basics", crypto_basics::run);
    map.insert("messages", messages::run);
    map.insert("deserialization", deserialization::run);
    map.insert("message-protection", message_protection::run);
    map.insert("welcome", welcome::run);
    map.insert("tree-math", tree_math::run);
    map.insert("tree-operations", tree_operations::run);
    map.insert("tree-validation", tree_validation::run);
    map.insert("treekem", treekem::run);
    map.insert("key-schedule", key_schedule::run);
    map.insert("psk_secret", psk_secret::run);
    map.insert("secret-tree", secret_tree::run);
    map.insert("transcript-hashes", transcript_hashes::run);
    map.insert("passive-client-welcome", passive_client::run);
    map.insert("passive-client-handling-commit", passive_client::run);
    map.insert("passive-client-random", passive_client::run);
    map
}

#[derive(Default)]
struct FileReport {
    passed: usize,
    failed: usize,
    skipped: usize,
    skipped_suites: BTreeMap<u16, usize>,
    failures: Vec<String>,
}

fn run_file(path: &Path, runner: Runner) -> Result<FileReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let cases = json.as_array().ok_or("top level is not an array")?;
    let mut report = FileReport::default();
    for (index, case) in cases.iter().enumerate() {
        let outcome = std::panic::catch_unwind(|| runner(case))
            .unwrap_or_else(|_| Outcome::Failed("panicked".into()));
        match outcome {
            Outcome::Passed => report.passed += 1,
            Outcome::SkippedSuite(suite) => {
                report.skipped += 1;
                *report.skipped_suites.entry(suite).or_default() += 1;
            }
            Outcome::Failed(why) => {
                report.failed += 1;
                report.failures.push(format!("case {index}: {why}"));
            }
        }
    }
    Ok(report)
}

fn main() -> ExitCode {
    let dir = match official_vectors::dir() {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::FAILURE;
        }
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => {
            eprintln!("cannot read test-vector folder {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    files.sort();
    println!("test vectors from {}", dir.display());
    std::panic::set_hook(Box::new(|_| {}));

    let runners = runners();
    let (mut total_passed, mut total_failed, mut total_skipped) = (0, 0, 0);
    let mut ok = true;
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        // Any further passive-client scenario file has the same format (§ "Passive Client
        // Scenarios" of the test-vector spec).
        let runner = runners.get(stem.as_ref()).copied().or_else(|| {
            stem.starts_with("passive-client-")
                .then_some(passive_client::run as Runner)
        });
        let Some(runner) = runner else {
            println!("{name}: not recognised, not run");
            continue;
        };
        match run_file(path, runner) {
            Ok(report) => {
                let suites: Vec<String> = report
                    .skipped_suites
                    .iter()
                    .map(|(suite, n)| format!("suite {suite}: {n}"))
                    .collect();
                let detail = if suites.is_empty() {
                    String::new()
                } else {
                    format!(" (skipped by suite: {})", suites.join(", "))
                };
                println!(
                    "{name}: {} passed, {} failed, {} skipped{detail}",
                    report.passed, report.failed, report.skipped
                );
                for failure in report.failures.iter().take(5) {
                    println!("    {failure}");
                }
                if report.failed > 0 || report.passed == 0 {
                    ok = false;
                }
                total_passed += report.passed;
                total_failed += report.failed;
                total_skipped += report.skipped;
            }
            Err(why) => {
                println!("{name}: {why}");
                ok = false;
            }
        }
    }
    println!("test vectors: {total_passed} passed, {total_failed} failed, {total_skipped} skipped");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
