//! Test-only crate: see `tests/` and README.md. It has no library code.
#![forbid(unsafe_code)]
