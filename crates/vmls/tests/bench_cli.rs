//! `vmls bench` end to end at tiny sizes: the program runs both scenarios, prints the table
//! and the crossovers, and writes the CSV and the SVG plot.

use std::process::Command;

fn vmls(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmls"))
        .args(args)
        .output()
        .expect("run vmls")
}

#[test]
fn a_tiny_sweep_writes_the_table_the_csv_and_the_plot() {
    let dir = std::env::temp_dir().join(format!("vmls-bench-cli-{}", std::process::id()));
    let out = vmls(&[
        "bench",
        "-u",
        "3",
        "-d",
        "1..=2",
        "-g",
        "2",
        "--messages",
        "3",
        "--no-progress",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("vmls bench: U=3 users, G=2 groups"));
    assert!(text.contains("D=1 devices per user"));
    assert!(text.contains("D=2 devices per user"));
    assert!(text.contains("all equal"));
    let update_rows: Vec<&str> = text
        .lines()
        .filter(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() > 2 && words[0] == "update" && ["virtual", "per-device"].contains(&words[1])
        })
        .collect();
    assert_eq!(update_rows.len(), 4, "{text}");
    assert!(text.contains("crossover"));
    let csv = std::fs::read_to_string(dir.join("bench.csv")).unwrap();
    // 2 values of D × 5 operations × 2 runs.
    assert_eq!(csv.lines().count(), 1 + 2 * 5 * 2);
    let svg = std::fs::read_to_string(dir.join("bench.svg")).unwrap();
    assert!(svg.contains("messages: bytes up+down per device"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_parameters_fail_with_a_message() {
    let out = vmls(&["bench", "-u", "0", "--no-progress", "--out", "/nonexistent"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("invalid parameters"), "{err}");
    let out = vmls(&["bench", "-d", "0,2"]);
    assert!(!out.status.success());
}
