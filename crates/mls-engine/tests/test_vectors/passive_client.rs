//! Passive-client scenarios (`passive-client-welcome.json`, `passive-client-handling-commit.json`,
//! `passive-client-random.json` and any other `passive-client-*.json`): a client joins from a
//! Welcome (RFC 9420 §12.4.3.1) and follows the group through its commits (§12.4.2), checking
//! the epoch authenticator (§8.7) after the join and after every epoch. Beside it, an observer
//! without secrets (`PublicGroup`) follows the same handshakes and must reach the same
//! GroupContexts.

use mls_engine::codec::{
    KeyPackage, KeyPackageRef, LeafNodeSource, MlsMessage, MlsMessageBody, Welcome,
};
use mls_engine::crypto::{
    HpkePrivateKey, MlsCrypto as _, Secret, SignatureKeyPair, SignaturePrivateKey, SuiteProvider,
};
use mls_engine::group::{
    ExternalPskMap, Group, GroupConfig, ProcessedMessage, PublicGroup, Services,
};
use mls_engine::messages::{KeyPackageBundle, KeyPackagePrivate};
use mls_engine::tree::RatchetTree;
use serde::Deserialize;

use crate::common::{check_eq, hex_bytes, parse, suite, CaseResult, Outcome, PROVIDER};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    external_psks: Vec<ExternalPsk>,
    #[serde(with = "hex_bytes")]
    key_package: Vec<u8>,
    #[serde(with = "hex_bytes")]
    signature_priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    encryption_priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    init_priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    welcome: Vec<u8>,
    #[serde(default, with = "hex_opt")]
    ratchet_tree: Option<Vec<u8>>,
    #[serde(with = "hex_bytes")]
    initial_epoch_authenticator: Vec<u8>,
    epochs: Vec<Epoch>,
}

#[derive(Deserialize)]
struct ExternalPsk {
    #[serde(with = "hex_bytes")]
    psk_id: Vec<u8>,
    #[serde(with = "hex_bytes")]
    psk: Vec<u8>,
}

#[derive(Deserialize)]
struct Epoch {
    #[serde(with = "hex_vec")]
    proposals: Vec<Vec<u8>>,
    #[serde(with = "hex_bytes")]
    commit: Vec<u8>,
    #[serde(with = "hex_bytes")]
    epoch_authenticator: Vec<u8>,
}

/// Serde helper: a hex string or `null`.
mod hex_opt {
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = serde::Deserialize::deserialize(d)?;
        s.map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Serde helper: an array of hex strings.
mod hex_vec {
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v: Vec<String> = serde::Deserialize::deserialize(d)?;
        v.into_iter()
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

pub fn run(case: &serde_json::Value) -> Outcome {
    let suite_id = case["cipher_suite"].as_u64().unwrap_or(0) as u16;
    if suite(suite_id).is_none() {
        return Outcome::SkippedSuite(suite_id);
    }
    check(case).into()
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;

    let key_package = decode_key_package(&c.key_package)?;
    check_private_keys(cs, &c, &key_package)?;
    let welcome = decode_welcome(&c.welcome)?;
    let ratchet_tree = c
        .ratchet_tree
        .as_deref()
        .map(RatchetTree::decode)
        .transpose()
        .map_err(|e| format!("decode ratchet_tree: {e}"))?;

    let now = time_inside(&key_package);
    let psks = ExternalPskMap {
        psks: c
            .external_psks
            .iter()
            .map(|p| (p.psk_id.clone(), Secret::new(p.psk.clone())))
            .collect(),
    };
    let services = Services::new(&PROVIDER).with_psks(&psks);
    let config = GroupConfig {
        check_lifetimes: true,
        ..GroupConfig::default()
    };
    let encoded_kp =
        mls_engine::codec::encode(&key_package).map_err(|e| format!("encode kp: {e}"))?;
    let reference = KeyPackageRef::from(
        cs.make_key_package_ref(&encoded_kp)
            .map_err(|e| format!("kp ref: {e}"))?,
    );
    let bundle = KeyPackageBundle {
        private: KeyPackagePrivate {
            init_private_key: HpkePrivateKey::new(c.init_priv.clone()),
            encryption_private_key: HpkePrivateKey::new(c.encryption_priv.clone()),
        },
        reference,
        key_package: key_package.clone(),
    };
    let signature_key = SignatureKeyPair {
        private_key: SignaturePrivateKey::new(c.signature_priv.clone()),
        public_key: key_package.leaf_node.signature_key.as_slice().to_vec(),
    };

    let mut group = Group::join_from_welcome(
        &services,
        config,
        &welcome,
        &bundle,
        signature_key,
        ratchet_tree,
        now,
    )
    .map_err(|e| format!("join_from_welcome: {e} ({e:?})"))?;
    check_eq(
        "initial epoch_authenticator",
        hex::encode(group.epoch_authenticator()),
        hex::encode(&c.initial_epoch_authenticator),
    )?;
    let mut observer = Some(start_observer(&services, &group)?);

    for (i, epoch) in c.epochs.iter().enumerate() {
        for (j, bytes) in epoch.proposals.iter().enumerate() {
            let message = MlsMessage::decode(bytes)
                .map_err(|e| format!("epoch {i}: decode proposal {j}: {e}"))?;
            observe(&mut observer, &services, &message, now)
                .map_err(|e| format!("epoch {i}: observer, proposal {j}: {e}"))?;
            match group.process(&services, &message, now) {
                Ok(ProcessedMessage::Proposal { .. }) => {}
                Ok(other) => return Err(format!("epoch {i}: proposal {j} processed as {other:?}")),
                Err(e) => return Err(format!("epoch {i}: proposal {j}: {e} ({e:?})")),
            }
        }
        let message = MlsMessage::decode(&epoch.commit)
            .map_err(|e| format!("epoch {i}: decode commit: {e}"))?;
        let expected_epoch = group.epoch() + 1;
        observe(&mut observer, &services, &message, now)
            .map_err(|e| format!("epoch {i}: observer, commit: {e}"))?;
        match group.process(&services, &message, now) {
            Ok(ProcessedMessage::Commit { epoch, .. }) => {
                check_eq(&format!("epoch {i}: new epoch"), epoch, expected_epoch)?;
                check_eq(
                    &format!("epoch {i}: group epoch"),
                    group.epoch(),
                    expected_epoch,
                )?;
            }
            Ok(other) => return Err(format!("epoch {i}: commit processed as {other:?}")),
            Err(e) => return Err(format!("epoch {i}: commit: {e} ({e:?})")),
        }
        check_eq(
            &format!("epoch {i} epoch_authenticator"),
            hex::encode(group.epoch_authenticator()),
            hex::encode(&epoch.epoch_authenticator),
        )?;
        if let Some(o) = &observer {
            check_eq(
                &format!("epoch {i}: observer's GroupContext"),
                format!("{:?}", o.group_context()),
                format!("{:?}", group.group_context()),
            )?;
        }
    }
    Ok(())
}

/// An observer (`PublicGroup`, issue 14) follows the group beside the passive client, from
/// the client's GroupInfo of the epoch it joined; it must agree on every GroupContext. It
/// can only follow PublicMessage handshakes: at the first PrivateMessage it stops.
fn start_observer(services: &Services<'_>, group: &Group) -> Result<PublicGroup, String> {
    let info = group
        .group_info(services, true, false)
        .map_err(|e| format!("group_info: {e}"))?;
    let observer = PublicGroup::from_group_info(services, &info, None)
        .map_err(|e| format!("observer from_group_info: {e} ({e:?})"))?;
    check_eq(
        "observer's initial GroupContext",
        format!("{:?}", observer.group_context()),
        format!("{:?}", group.group_context()),
    )?;
    Ok(observer)
}

/// The observer processes and applies `message`, unless it stopped following.
fn observe(
    observer: &mut Option<PublicGroup>,
    services: &Services<'_>,
    message: &MlsMessage,
    now: u64,
) -> CaseResult {
    let Some(o) = observer else {
        return Ok(());
    };
    let observed = o
        .process(services, message, now)
        .map_err(|e| format!("{e} ({e:?})"))?;
    if !observed.is_verified() {
        *observer = None;
        return Ok(());
    }
    o.apply(observed).map_err(|e| format!("apply: {e}"))
}

/// The `now` the client runs at: the middle of the KeyPackage's lifetime (0 if its leaf has
/// none). The vectors were generated at various dates (the OpenMLS-made welcome cases carry
/// one-year lifetimes from March 2023, the others `0..=u64::MAX`), so the wall clock would
/// reject them; the middle of our own lifetime also lies inside the lifetimes of the leaves
/// other members created around the same time. Lifetime checks stay on (`check_lifetimes`):
/// they apply to the leaves of Add proposals the client processes.
fn time_inside(key_package: &KeyPackage) -> u64 {
    match &key_package.leaf_node.leaf_node_source {
        LeafNodeSource::KeyPackage(lifetime) => {
            let span = lifetime.not_after.saturating_sub(lifetime.not_before);
            lifetime.not_before.saturating_add(span / 2)
        }
        _ => 0,
    }
}

/// The `key_package` field: an MLSMessage carrying a KeyPackage.
fn decode_key_package(bytes: &[u8]) -> Result<KeyPackage, String> {
    match MlsMessage::decode(bytes)
        .map_err(|e| format!("decode key_package: {e}"))?
        .body
    {
        MlsMessageBody::KeyPackage(kp) => Ok(kp),
        other => Err(format!("key_package is a {:?}", other.wire_format())),
    }
}

/// The `welcome` field: an MLSMessage carrying a Welcome.
fn decode_welcome(bytes: &[u8]) -> Result<Welcome, String> {
    match MlsMessage::decode(bytes)
        .map_err(|e| format!("decode welcome: {e}"))?
        .body
    {
        MlsMessageBody::Welcome(w) => Ok(w),
        other => Err(format!("welcome is a {:?}", other.wire_format())),
    }
}

/// `signature_priv`, `encryption_priv` and `init_priv` are the private keys of the
/// KeyPackage's `signature_key`, `encryption_key` and `init_key`.
fn check_private_keys(cs: &dyn SuiteProvider, c: &Case, kp: &KeyPackage) -> CaseResult {
    let signature_pub = cs
        .signature_public_key(&SignaturePrivateKey::new(c.signature_priv.clone()))
        .map_err(|e| format!("signature_priv: {e}"))?;
    check_eq(
        "signature_priv -> signature_key",
        hex::encode(signature_pub),
        hex::encode(kp.leaf_node.signature_key.as_slice()),
    )?;
    let encryption_pub = cs
        .hpke_public_key(&HpkePrivateKey::new(c.encryption_priv.clone()))
        .map_err(|e| format!("encryption_priv: {e}"))?;
    check_eq(
        "encryption_priv -> encryption_key",
        hex::encode(encryption_pub),
        hex::encode(kp.leaf_node.encryption_key.as_slice()),
    )?;
    let init_pub = cs
        .hpke_public_key(&HpkePrivateKey::new(c.init_priv.clone()))
        .map_err(|e| format!("init_priv: {e}"))?;
    check_eq(
        "init_priv -> init_key",
        hex::encode(init_pub),
        hex::encode(kp.init_key.as_slice()),
    )
}
