//! `vmls demo` end to end: the program runs the scenario to completion, exits 0 and prints
//! the steps, the skipped external join and the side-by-side summary table.

use std::process::Command;

fn vmls(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmls"))
        .args(args)
        .output()
        .expect("run vmls")
}

#[test]
fn the_demo_runs_to_completion() {
    let out = vmls(&["demo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("step 1: alice/device-1 creates the emulation group"));
    assert!(text.contains(
        "alice/device-1 joins 'friends' from the Welcome (by KeyPackageRef, the KeyPackage alice/device-2 uploaded"
    ));
    assert!(text.contains(
        "bob/device-1 uploads 2 KeyPackages of the virtual client 'bob' through an emulation commit (KeyPackageUpload"
    ));
    assert!(text.contains("bob/device-2 commits in group 'friends' (epoch 2 -> 3)"));
    assert!(text.contains("external join with the ExternalJoin action: skipped (not built yet)"));
    assert!(text.contains("group 'friends': members"));
    let members = text
        .lines()
        .find(|l| l.starts_with("group 'work': members"))
        .unwrap();
    assert_eq!(
        members.split_whitespace().collect::<Vec<_>>()[3..],
        ["3", "6"]
    );
    assert!(text.contains("(all equal)"));
}

#[test]
fn quiet_prints_only_the_summary() {
    let out = vmls(&["demo", "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("step "));
    assert!(text.starts_with("summary"));
    assert!(text.contains("total: bytes received"));
}
