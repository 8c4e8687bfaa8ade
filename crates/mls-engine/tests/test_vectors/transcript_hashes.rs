//! `transcript-hashes.json`: the confirmed and interim transcript hashes (RFC 9420 §8.2) and
//! the confirmation tag of a Commit's `AuthenticatedContent`.
//!
//! `authenticated_content` is decoded as an `AuthenticatedContent`, re-encoded to check the
//! decoder, and its `ConfirmedTranscriptHashInput` and `confirmation_tag` taken from it.

use mls_engine::codec::{decode_exact, encode, AuthenticatedContent, ContentType};
use mls_engine::crypto::Secret;
use mls_engine::schedule::transcript::confirmed_transcript_hash_input;
use mls_engine::schedule::{key_schedule, TranscriptHashes};
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    #[serde(with = "hex_bytes")]
    confirmation_key: Vec<u8>,
    #[serde(with = "hex_bytes")]
    authenticated_content: Vec<u8>,
    #[serde(with = "hex_bytes")]
    interim_transcript_hash_before: Vec<u8>,
    #[serde(with = "hex_bytes")]
    confirmed_transcript_hash_after: Vec<u8>,
    #[serde(with = "hex_bytes")]
    interim_transcript_hash_after: Vec<u8>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;
    let ac: AuthenticatedContent =
        decode_exact(&c.authenticated_content).map_err(|e| format!("decoding: {e}"))?;
    check_eq(
        "re-encoding",
        encode(&ac).map_err(|e| e.to_string())?,
        c.authenticated_content.clone(),
    )?;
    check_eq(
        "content_type",
        ac.content.content_type(),
        ContentType::Commit,
    )?;
    let confirmation_tag = ac
        .auth
        .confirmation_tag
        .as_ref()
        .ok_or("no confirmation_tag")?
        .as_slice();
    let confirmed_input = confirmed_transcript_hash_input(&ac).map_err(|e| e.to_string())?;

    let before = TranscriptHashes {
        confirmed_transcript_hash: Vec::new(),
        interim_transcript_hash: c.interim_transcript_hash_before.clone(),
    };
    let after = before
        .next(cs, &confirmed_input, confirmation_tag)
        .map_err(|e| e.to_string())?;
    check_eq(
        "next_for_commit",
        before.next_for_commit(cs, &ac).map_err(|e| e.to_string())?,
        after.clone(),
    )?;
    check_eq(
        "confirmed_transcript_hash_after",
        &after.confirmed_transcript_hash,
        &c.confirmed_transcript_hash_after,
    )?;
    check_eq(
        "interim_transcript_hash_after",
        &after.interim_transcript_hash,
        &c.interim_transcript_hash_after,
    )?;
    key_schedule::verify_confirmation_tag(
        cs,
        &Secret::new(c.confirmation_key.clone()),
        &c.confirmed_transcript_hash_after,
        confirmation_tag,
    )
    .map_err(|e| format!("confirmation_tag: {e}"))
}
