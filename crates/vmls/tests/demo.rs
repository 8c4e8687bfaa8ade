//! `vmls demo` end to end: the program runs the scenario through the in-memory delivery
//! service to completion, exits 0 and prints the steps (KeyPackageUpload, Welcome joins by
//! KeyPackageRef, the external join with the ExternalJoin action and its followers), and the
//! side-by-side summary table whose numbers show the virtual clients' smaller trees.

use std::process::Command;

fn vmls(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmls"))
        .args(args)
        .output()
        .expect("run vmls")
}

/// The two numbers of the summary row `name` (virtual clients, one leaf per device).
fn row(text: &str, name: &str) -> (String, String) {
    let line = text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no summary row {name:?} in\n{text}"));
    let rest = line[name.len()..].trim();
    // Values are right-aligned in two 20-character columns.
    let (a, b) = rest.split_at(rest.len() - 20);
    (a.trim().to_string(), b.trim().to_string())
}

fn number(s: &str) -> u64 {
    s.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a number: {s:?}"))
}

#[test]
fn the_demo_runs_to_completion_through_the_delivery_service() {
    let out = vmls(&["demo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "step 1: alice/device-1 creates the emulation group 'alice-emulation' and registers the virtual client 'alice' with the delivery service",
        "alice/device-1 adds alice/device-2 to the emulation group (epoch 0 -> 1): its KeyPackage",
        "alice/device-1 joins 'friends' from the Welcome (by KeyPackageRef, the KeyPackage alice/device-2 uploaded",
        "bob/device-1 uploads 3 KeyPackages of the virtual client 'bob' through an emulation commit (KeyPackageUpload",
        "published to the directory as 'bob'",
        "bob/device-2 commits in group 'friends' (epoch 2 -> 3)",
        "GroupInfo",
        "alice/device-2 announces ExternalJoin for group 'open' in an emulation commit",
        "alice/device-2 joins 'open' by external commit as the virtual client 'alice' (epoch 1 -> 2)",
        "alice/device-1 follows the external join of alice/device-2 into 'open'",
        "alice/device-3 follows the external join of alice/device-2 into 'open'",
        "alice/device-1 sends a message in group 'open'",
        // One leaf per device: each of Alice's devices joins by its own external commit.
        "alice/device-1 joins 'open' by its own external commit",
        "alice/device-2 joins 'open' by its own external commit",
        "alice/device-3 joins 'open' by its own external commit",
        "bytes are counted at the delivery service",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(!text.contains("skipped"), "{text}");
    // Every message of the virtual-clients run after the external join is read by all 5
    // other clients (carol, bob's 2 devices, alice's 2 other devices).
    let open_alice = text
        .lines()
        .find(|l| l.contains("alice/device-1 sends a message in group 'open'"))
        .unwrap();
    assert!(open_alice.ends_with("read by 5 clients"), "{open_alice}");

    for group in ["friends", "work", "open"] {
        let (v, d) = row(&text, &format!("group '{group}': members"));
        assert_eq!((v.as_str(), d.as_str()), ("3", "6"), "{group}");
        let (v, d) = row(&text, &format!("group '{group}': leaves (blank)"));
        assert!(number(&v) < number(&d), "{group}: {v} vs {d}");
    }
    let (v, d) = row(&text, "commits: bytes received");
    assert!(number(&v) < number(&d), "commits received: {v} vs {d}");
    let (v, d) = row(&text, "emulation groups: uploads");
    assert!(number(&v) > 0 && number(&d) == 0, "{v} {d}");
    let (v, d) = row(&text, "total: bytes received");
    assert!(number(&v) > 0 && number(&d) > 0);
    let (v, d) = row(&text, "service: bytes delivered to mailboxes");
    assert!(number(&v) > 0 && number(&d) > 0);
    let (v, d) = row(&text, "epoch authenticator checks");
    assert!(v.ends_with("(all equal)") && d.ends_with("(all equal)"));
    assert!(number(&v) >= 30 && number(&d) >= 30, "{v} {d}");
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
    assert!(text.contains("bytes are counted at the delivery service"));
}
