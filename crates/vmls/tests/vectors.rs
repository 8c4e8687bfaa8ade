//! The committed draft -04 vectors (`test-vectors/virtual-clients-04.json`): `vmls vectors
//! verify` accepts them, refuses a one-byte change naming the field, and `vmls vectors
//! generate` reproduces them byte for byte.

use std::path::PathBuf;
use std::process::{Command, Output};

fn vector_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/virtual-clients-04.json")
}

fn vmls(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmls"))
        .args(args)
        .output()
        .expect("vmls runs")
}

fn verify(path: &std::path::Path) -> Output {
    vmls(&["vectors".as_ref(), "verify".as_ref(), path.as_os_str()])
}

#[test]
fn committed_vectors_verify() {
    let out = verify(&vector_file());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("9 cases verified"), "{stdout}");
}

/// The committed file with one hex digit of `field` (of case `case`, or of its `path[1]`)
/// changed.
fn tampered(case: usize, field: &str, in_path: bool) -> PathBuf {
    let text = std::fs::read_to_string(vector_file()).unwrap();
    let mut cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut target = &mut cases[case];
    if in_path {
        target = &mut target["path"][1];
    }
    let value = target[field].as_str().unwrap().to_owned();
    let flipped = if value.starts_with('0') { "1" } else { "0" };
    target[field] = serde_json::Value::String(format!("{flipped}{}", &value[1..]));
    let path =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vectors-{case}-{field}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&cases).unwrap()).unwrap();
    path
}

fn assert_fails_naming(path: &std::path::Path, case: usize, name: &str) {
    let out = verify(path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a tampered file verified");
    assert!(stderr.contains(&format!("case {case} ")), "{stderr}");
    assert!(stderr.contains(&format!("field `{name}`")), "{stderr}");
}

#[test]
fn one_changed_byte_fails_naming_the_field() {
    for (case, field) in [
        (4, "reuse_guard"),
        (0, "epoch_id"),
        (8, "derivation_info_extension"),
        (2, "external_join_safe_aad"),
    ] {
        assert_fails_naming(&tampered(case, field, false), case, field);
    }
    assert_fails_naming(
        &tampered(5, "node_public_key", true),
        5,
        "path[1].node_public_key",
    );
}

#[test]
fn generate_reproduces_the_committed_file() {
    let out = vmls(&["vectors".as_ref(), "generate".as_ref()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read(vector_file()).unwrap();
    assert!(
        out.stdout == committed,
        "generate differs from the committed file"
    );
}
