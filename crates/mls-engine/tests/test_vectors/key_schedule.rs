//! `key-schedule.json`: the key schedule over several epochs (RFC 9420 §8): GroupContext,
//! joiner / welcome / init secrets, the epoch-derived secrets, `external_pub` and
//! `MLS-Exporter`.

use mls_engine::codec::{encode, GroupContext, ProtocolVersion};
use mls_engine::crypto::{CipherSuite, Secret};
use mls_engine::schedule::KeySchedule;
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    #[serde(with = "hex_bytes")]
    group_id: Vec<u8>,
    #[serde(with = "hex_bytes")]
    initial_init_secret: Vec<u8>,
    epochs: Vec<Epoch>,
}

#[derive(Deserialize)]
struct Epoch {
    #[serde(with = "hex_bytes")]
    tree_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    commit_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    psk_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    confirmed_transcript_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    group_context: Vec<u8>,
    #[serde(with = "hex_bytes")]
    joiner_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    welcome_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    init_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    sender_data_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    encryption_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    exporter_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    epoch_authenticator: Vec<u8>,
    #[serde(with = "hex_bytes")]
    external_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    confirmation_key: Vec<u8>,
    #[serde(with = "hex_bytes")]
    membership_key: Vec<u8>,
    #[serde(with = "hex_bytes")]
    resumption_psk: Vec<u8>,
    #[serde(with = "hex_bytes")]
    external_pub: Vec<u8>,
    exporter: Exporter,
}

#[derive(Deserialize)]
struct Exporter {
    label: String,
    #[serde(with = "hex_bytes")]
    context: Vec<u8>,
    length: usize,
    #[serde(with = "hex_bytes")]
    secret: Vec<u8>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;
    let e = |e: mls_engine::schedule::KeyScheduleError| e.to_string();
    let mut init_secret = Secret::new(c.initial_init_secret.clone());
    for (n, ep) in (0u64..).zip(&c.epochs) {
        let at = |what: &str| format!("epoch {n} {what}");
        let group_context = GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(c.cipher_suite),
            group_id: c.group_id.clone().into(),
            epoch: n,
            tree_hash: ep.tree_hash.clone().into(),
            confirmed_transcript_hash: ep.confirmed_transcript_hash.clone().into(),
            extensions: Vec::new(),
        };
        let gc = encode(&group_context).map_err(|e| e.to_string())?;
        check_eq(&at("group_context"), &gc, &ep.group_context)?;

        let schedule = KeySchedule::start(
            cs,
            init_secret,
            Secret::new(ep.commit_secret.clone()),
            Secret::new(ep.psk_secret.clone()),
            &gc,
        )
        .map_err(e)?;
        let joiner_secret = schedule.joiner_secret().ok_or("no joiner_secret")?;
        check_eq(
            &at("joiner_secret"),
            joiner_secret.as_bytes(),
            &ep.joiner_secret[..],
        )?;
        let welcome_secret = schedule.welcome_secret(cs).map_err(e)?;
        check_eq(
            &at("welcome_secret"),
            welcome_secret.as_bytes(),
            &ep.welcome_secret[..],
        )?;

        // A joiner from joiner_secret and psk_secret reaches the same epoch.
        let joiner = KeySchedule::from_joiner_secret(
            cs,
            Secret::new(ep.joiner_secret.clone()),
            Secret::new(ep.psk_secret.clone()),
        )
        .map_err(e)?
        .finish(cs, &gc)
        .map_err(e)?;

        let s = schedule.finish(cs, &gc).map_err(e)?;
        if s != joiner {
            return Err(at("joiner's secrets differ from the member's"));
        }
        for (what, got, want) in [
            ("init_secret", &s.init_secret, &ep.init_secret),
            (
                "sender_data_secret",
                &s.sender_data_secret,
                &ep.sender_data_secret,
            ),
            (
                "encryption_secret",
                &s.encryption_secret,
                &ep.encryption_secret,
            ),
            ("exporter_secret", &s.exporter_secret, &ep.exporter_secret),
            (
                "epoch_authenticator",
                &s.epoch_authenticator,
                &ep.epoch_authenticator,
            ),
            ("external_secret", &s.external_secret, &ep.external_secret),
            (
                "confirmation_key",
                &s.confirmation_key,
                &ep.confirmation_key,
            ),
            ("membership_key", &s.membership_key, &ep.membership_key),
            ("resumption_psk", &s.resumption_psk, &ep.resumption_psk),
        ] {
            check_eq(&at(what), got.as_bytes(), &want[..])?;
        }
        check_eq(
            &at("external_pub"),
            s.external_pub(cs).map_err(e)?,
            ep.external_pub.clone(),
        )?;
        let x = &ep.exporter;
        let exported = s.export(cs, &x.label, &x.context, x.length).map_err(e)?;
        check_eq(&at("exporter secret"), exported.as_bytes(), &x.secret[..])?;

        init_secret = s.init_secret;
    }
    Ok(())
}
