//! Verifies a vector file: every case's values are recomputed from its inputs and compared
//! field by field.

use serde_json::Value;

use super::case::{Case, Inputs};
use super::compute::compute;
use super::VectorError;

/// The octets of the hex input `field`.
fn bytes(case: usize, field: &'static str, hex_text: &str) -> Result<Vec<u8>, VectorError> {
    hex::decode(hex_text).map_err(|_| VectorError::BadHex { case, field })
}

/// The inputs recorded in `case` (number `index` in the file).
fn inputs_of(index: usize, case: &Case) -> Result<Inputs, VectorError> {
    Ok(Inputs {
        cipher_suite: case.cipher_suite,
        higher_level_cipher_suite: case.higher_level_cipher_suite,
        application_export_secret: bytes(
            index,
            "application_export_secret",
            &case.application_export_secret,
        )?,
        leaf_index: case.leaf_index,
        random: bytes(index, "random", &case.random)?,
        aead_nonce: bytes(index, "aead_nonce", &case.aead_nonce)?,
        key_schedule_nonce: bytes(index, "key_schedule_nonce", &case.key_schedule_nonce)?,
        emulation_leaves: case.emulation_leaves,
        x: case.x,
        key_package_ref: bytes(index, "key_package_ref", &case.key_package_ref)?,
        group_id: bytes(index, "group_id", &case.group_id)?,
    })
}

/// The first field (in file order) where `expected` and `actual` differ, as a path such as
/// `path[1].node_public_key`.
fn first_difference(expected: &Value, actual: &Value, at: String) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().find_map(|(key, ev)| {
            let name = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            match a.get(key) {
                Some(av) => first_difference(ev, av, name),
                None => Some(name),
            }
        }),
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (ev, av))| first_difference(ev, av, format!("{at}[{i}]"))),
        _ => (expected != actual).then_some(at),
    }
}

/// Checks one case against its recomputation.
fn verify_case(index: usize, case: &Case) -> Result<(), VectorError> {
    let recomputed = compute(&inputs_of(index, case)?).map_err(|source| VectorError::Case {
        case: index,
        source: Box::new(source),
    })?;
    let expected = serde_json::to_value(&recomputed)?;
    let actual = serde_json::to_value(case)?;
    match first_difference(&expected, &actual, String::new()) {
        Some(field) => Err(VectorError::Mismatch {
            case: index,
            cipher_suite: case.cipher_suite,
            higher_level_cipher_suite: case.higher_level_cipher_suite,
            field,
        }),
        None => Ok(()),
    }
}

/// Verifies the vector file `text`; returns the number of cases checked.
pub fn verify(text: &str) -> Result<usize, VectorError> {
    let cases: Vec<Case> = serde_json::from_str(text)?;
    if cases.is_empty() {
        return Err(VectorError::NoCases);
    }
    for (index, case) in cases.iter().enumerate() {
        verify_case(index, case)?;
    }
    Ok(cases.len())
}
