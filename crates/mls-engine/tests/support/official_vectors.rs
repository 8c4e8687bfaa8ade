//! Where the official RFC 9420 test vectors are read from: the folder named by
//! `VMLS_TEST_VECTORS`, by default `../shared/test-vectors` beside the repository (the working
//! group's files are read from there, never copied into the repository).

use std::path::{Path, PathBuf};

/// The folder of the official test vectors, or one line saying where they come from and how to
/// point the runner at them.
pub fn dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("VMLS_TEST_VECTORS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/test-vectors"),
    };
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "the official RFC 9420 test vectors are not at {}: they are the test-vectors/ folder \
             of the MLS working group's mlswg/mls-implementations repository; put that folder at \
             ../shared/test-vectors beside this repository or set VMLS_TEST_VECTORS to it",
            dir.display()
        ))
    }
}

/// The JSON array of one official vector file (e.g. `messages.json`); panics with the line of
/// [`dir`] if the folder is missing.
#[allow(dead_code)] // Not every test target that includes this module reads a file.
pub fn cases(file: &str) -> Vec<serde_json::Value> {
    let dir = dir().unwrap_or_else(|why| panic!("{why}"));
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
