//! `welcome.json`: opening a Welcome (RFC 9420 §12.4.3.1): GroupSecrets under the init key,
//! GroupInfo under the welcome key, the GroupInfo signature and its confirmation tag.

use mls_engine::codec::{KeyPackage, KeyPackageRef, MlsMessage, MlsMessageBody, Welcome};
use mls_engine::crypto::{HpkePrivateKey, MlsCrypto as _};
use mls_engine::welcome::process_welcome;
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    #[serde(with = "hex_bytes")]
    init_priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    signer_pub: Vec<u8>,
    #[serde(with = "hex_bytes")]
    key_package: Vec<u8>,
    #[serde(with = "hex_bytes")]
    welcome: Vec<u8>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;

    let key_package: KeyPackage = match MlsMessage::decode(&c.key_package)
        .map_err(|e| format!("decode key_package: {e}"))?
        .body
    {
        MlsMessageBody::KeyPackage(kp) => kp,
        other => return Err(format!("key_package is a {:?}", other.wire_format())),
    };
    let welcome: Welcome = match MlsMessage::decode(&c.welcome)
        .map_err(|e| format!("decode welcome: {e}"))?
        .body
    {
        MlsMessageBody::Welcome(w) => w,
        other => return Err(format!("welcome is a {:?}", other.wire_format())),
    };
    let encoded_kp =
        mls_engine::codec::encode(&key_package).map_err(|e| format!("encode kp: {e}"))?;
    let key_package_ref = KeyPackageRef::from(
        cs.make_key_package_ref(&encoded_kp)
            .map_err(|e| format!("kp ref: {e}"))?,
    );

    let contents = process_welcome(
        cs,
        &welcome,
        &key_package,
        &key_package_ref,
        &HpkePrivateKey::new(c.init_priv.clone()),
        |_| None,
        |_| Some(c.signer_pub.clone()),
    )
    .map_err(|e| format!("process welcome: {e}"))?;
    check_eq(
        "group info suite",
        contents.group_info.group_context.cipher_suite.0,
        c.cipher_suite,
    )
}
