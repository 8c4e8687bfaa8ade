//! The fixed inputs of the committed cases and the generated file.

use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SuiteProvider};
use virtual_clients::reuse_guard::{choose_x, X_RANDOMNESS_LEN};

use super::case::{Case, Inputs};
use super::compute::compute;
use super::VectorError;

/// The suites the vectors cover, for both the emulation and the higher-level group.
pub const SUITES: [u16; 3] = [1, 2, 3];

/// `len` fixed octets named by `label` and the case number: `Hash("vmls vectors <label>
/// <case>")` of the emulation suite, repeated as needed.
fn fixed(cs: &dyn SuiteProvider, label: &str, case: usize, len: usize) -> Vec<u8> {
    let seed = cs.hash(format!("vmls vectors {label} {case}").as_bytes());
    seed.iter().copied().cycle().take(len).collect()
}

/// The inputs of case number `case`, for the suite pair (`emulation`, `higher`).
fn inputs(
    case: usize,
    emulation: &dyn SuiteProvider,
    higher: &dyn SuiteProvider,
) -> Result<Inputs, VectorError> {
    let leaf_index = (case % 5) as u32;
    let emulation_leaves = leaf_index + 1 + (case % 3) as u32;
    let mut randomness = [0u8; X_RANDOMNESS_LEN];
    randomness.copy_from_slice(&fixed(emulation, "x", case, X_RANDOMNESS_LEN));
    let nh = emulation.params().hash_len();
    Ok(Inputs {
        cipher_suite: emulation.cipher_suite().0,
        higher_level_cipher_suite: higher.cipher_suite().0,
        application_export_secret: fixed(emulation, "application_export_secret", case, nh),
        leaf_index,
        random: fixed(emulation, "random", case, 32),
        aead_nonce: fixed(
            emulation,
            "aead_nonce",
            case,
            emulation.params().aead_nonce_len(),
        ),
        key_schedule_nonce: fixed(
            higher,
            "key_schedule_nonce",
            case,
            higher.params().aead_nonce_len(),
        ),
        emulation_leaves,
        x: choose_x(leaf_index, emulation_leaves, randomness)?,
        key_package_ref: fixed(higher, "key_package_ref", case, higher.params().hash_len()),
        group_id: fixed(higher, "group_id", case, 16),
    })
}

/// Every case: each (emulation, higher-level) pair of [`SUITES`] with the same KDF.
pub fn cases() -> Result<Vec<Case>, VectorError> {
    static CRYPTO: RustCrypto = RustCrypto;
    let mut out = Vec::new();
    for e in SUITES {
        for h in SUITES {
            let emulation = CRYPTO.suite(CipherSuite(e))?;
            let higher = CRYPTO.suite(CipherSuite(h))?;
            if emulation.params().kdf != higher.params().kdf {
                continue;
            }
            out.push(compute(&inputs(out.len(), emulation, higher)?)?);
        }
    }
    Ok(out)
}

/// The vector file: the cases as pretty-printed JSON, with a final newline.
pub fn file() -> Result<String, VectorError> {
    let mut text = serde_json::to_string_pretty(&cases()?)?;
    text.push('\n');
    Ok(text)
}
