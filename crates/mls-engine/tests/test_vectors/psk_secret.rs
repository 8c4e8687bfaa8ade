//! `psk_secret.json`: `psk_secret` from a list of external PSKs (RFC 9420 §8.4).

use mls_engine::codec::PreSharedKeyID;
use mls_engine::crypto::Secret;
use mls_engine::schedule::psk_secret;
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    psks: Vec<Psk>,
    #[serde(with = "hex_bytes")]
    psk_secret: Vec<u8>,
}

#[derive(Deserialize)]
struct Psk {
    #[serde(with = "hex_bytes")]
    psk_id: Vec<u8>,
    #[serde(with = "hex_bytes")]
    psk: Vec<u8>,
    #[serde(with = "hex_bytes")]
    psk_nonce: Vec<u8>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;
    let ids: Vec<PreSharedKeyID> = c
        .psks
        .iter()
        .map(|p| PreSharedKeyID::external(p.psk_id.clone(), p.psk_nonce.clone()))
        .collect();
    let values: Vec<Secret> = c.psks.iter().map(|p| Secret::new(p.psk.clone())).collect();
    let list: Vec<(&PreSharedKeyID, &Secret)> = ids.iter().zip(&values).collect();
    let out = psk_secret(cs, &list).map_err(|e| e.to_string())?;
    check_eq("psk_secret", out.as_bytes(), &c.psk_secret[..])
}
