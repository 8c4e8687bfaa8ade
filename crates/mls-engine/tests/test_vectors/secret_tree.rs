//! `secret-tree.json`: the sender data key and nonce (RFC 9420 §6.3.2) and the handshake and
//! application ratchets of every leaf of a secret tree (§9).

use mls_engine::crypto::Secret;
use mls_engine::schedule::{sender_data_key_nonce, RatchetType, SecretTree};
use mls_engine::tree::LeafIndex;
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    sender_data: SenderData,
    #[serde(with = "hex_bytes")]
    encryption_secret: Vec<u8>,
    leaves: Vec<Vec<Generation>>,
}

#[derive(Deserialize)]
struct SenderData {
    #[serde(with = "hex_bytes")]
    sender_data_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    ciphertext: Vec<u8>,
    #[serde(with = "hex_bytes")]
    key: Vec<u8>,
    #[serde(with = "hex_bytes")]
    nonce: Vec<u8>,
}

#[derive(Deserialize)]
struct Generation {
    generation: u32,
    #[serde(with = "hex_bytes")]
    handshake_key: Vec<u8>,
    #[serde(with = "hex_bytes")]
    handshake_nonce: Vec<u8>,
    #[serde(with = "hex_bytes")]
    application_key: Vec<u8>,
    #[serde(with = "hex_bytes")]
    application_nonce: Vec<u8>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;

    let s = &c.sender_data;
    let (key, nonce) = sender_data_key_nonce(
        cs,
        &Secret::new(s.sender_data_secret.clone()),
        &s.ciphertext,
    )
    .map_err(|e| e.to_string())?;
    check_eq("sender_data key", key.as_bytes(), &s.key[..])?;
    check_eq("sender_data nonce", nonce.as_bytes(), &s.nonce[..])?;

    let n_leaves = u32::try_from(c.leaves.len()).map_err(|_| "too many leaves")?;
    let mut tree = SecretTree::new(cs, Secret::new(c.encryption_secret.clone()), n_leaves)
        .map_err(|e| e.to_string())?;
    for (i, generations) in (0u32..).zip(&c.leaves) {
        let leaf = LeafIndex(i);
        for g in generations {
            for (kind, want_key, want_nonce) in [
                (RatchetType::Handshake, &g.handshake_key, &g.handshake_nonce),
                (
                    RatchetType::Application,
                    &g.application_key,
                    &g.application_nonce,
                ),
            ] {
                let got = tree
                    .decryption_key(cs, leaf, kind, g.generation)
                    .map_err(|e| format!("leaf {i} {kind:?} generation {}: {e}", g.generation))?;
                let what = format!("leaf {i} {kind:?} generation {}", g.generation);
                check_eq(&format!("{what} key"), got.key.as_bytes(), &want_key[..])?;
                check_eq(
                    &format!("{what} nonce"),
                    got.nonce.as_bytes(),
                    &want_nonce[..],
                )?;
            }
        }
    }
    Ok(())
}
