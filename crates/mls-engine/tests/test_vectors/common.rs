//! Shared helpers of the test-vector runners.

use mls_engine::crypto::{CipherSuite, CryptoProvider, RustCrypto, SuiteProvider};

/// What one test case came to.
pub enum Outcome {
    /// Every check of the case held.
    Passed,
    /// The case is for a cipher suite the engine does not implement.
    SkippedSuite(u16),
    /// A check failed; the text says which.
    Failed(String),
}

/// Runs one case (a JSON object of the file's array).
pub type Runner = fn(&serde_json::Value) -> Outcome;

/// The outcome of a case body written with `?`.
pub type CaseResult = Result<(), String>;

impl From<CaseResult> for Outcome {
    fn from(result: CaseResult) -> Self {
        match result {
            Ok(()) => Outcome::Passed,
            Err(why) => Outcome::Failed(why),
        }
    }
}

/// The default provider.
pub static PROVIDER: RustCrypto = RustCrypto;

/// The suite implementation for `id`, or `None` if the engine does not implement it.
pub fn suite(id: u16) -> Option<&'static dyn SuiteProvider> {
    PROVIDER.suite(CipherSuite(id)).ok()
}

/// Decodes a hex string of the vectors.
#[allow(dead_code)]
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|e| format!("bad hex in vector: {e}"))
}

/// Deserialises a case into its typed form.
pub fn parse<T: serde::de::DeserializeOwned>(case: &serde_json::Value) -> Result<T, String> {
    serde_json::from_value(case.clone()).map_err(|e| format!("unexpected case shape: {e}"))
}

/// Fails with `what` unless `actual == expected`.
pub fn check_eq<T: PartialEq + std::fmt::Debug>(what: &str, actual: T, expected: T) -> CaseResult {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: got {actual:?}, expected {expected:?}"))
    }
}

/// Serde helper: a hex string field as bytes.
pub mod hex_bytes {
    /// Deserialises a hex string.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// Runs `check` on a case whose `cipher_suite` the engine implements; a case of any other
/// suite is skipped and counted by suite.
pub fn for_supported_suite(
    case: &serde_json::Value,
    check: fn(&serde_json::Value) -> CaseResult,
) -> Outcome {
    let suite_id = case["cipher_suite"]
        .as_u64()
        .and_then(|id| u16::try_from(id).ok())
        .unwrap_or(0);
    if suite(suite_id).is_none() {
        return Outcome::SkippedSuite(suite_id);
    }
    check(case).into()
}
