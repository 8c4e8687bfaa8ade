//! `crypto-basics.json`: RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret,
//! SignWithLabel / VerifyWithLabel, EncryptWithLabel / DecryptWithLabel (RFC 9420 §5, §8, §9).

use mls_engine::crypto::{HpkePrivateKey, MlsCrypto as _, SignaturePrivateKey};
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    ref_hash: RefHash,
    expand_with_label: ExpandWithLabel,
    derive_secret: DeriveSecret,
    derive_tree_secret: DeriveTreeSecret,
    sign_with_label: SignWithLabel,
    encrypt_with_label: EncryptWithLabel,
}

#[derive(Deserialize)]
struct RefHash {
    label: String,
    #[serde(with = "hex_bytes")]
    value: Vec<u8>,
    #[serde(with = "hex_bytes")]
    out: Vec<u8>,
}

#[derive(Deserialize)]
struct ExpandWithLabel {
    #[serde(with = "hex_bytes")]
    secret: Vec<u8>,
    label: String,
    #[serde(with = "hex_bytes")]
    context: Vec<u8>,
    length: usize,
    #[serde(with = "hex_bytes")]
    out: Vec<u8>,
}

#[derive(Deserialize)]
struct DeriveSecret {
    #[serde(with = "hex_bytes")]
    secret: Vec<u8>,
    label: String,
    #[serde(with = "hex_bytes")]
    out: Vec<u8>,
}

#[derive(Deserialize)]
struct DeriveTreeSecret {
    #[serde(with = "hex_bytes")]
    secret: Vec<u8>,
    label: String,
    generation: u32,
    length: usize,
    #[serde(with = "hex_bytes")]
    out: Vec<u8>,
}

#[derive(Deserialize)]
struct SignWithLabel {
    #[serde(with = "hex_bytes")]
    r#priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    r#pub: Vec<u8>,
    #[serde(with = "hex_bytes")]
    content: Vec<u8>,
    label: String,
    #[serde(with = "hex_bytes")]
    signature: Vec<u8>,
}

#[derive(Deserialize)]
struct EncryptWithLabel {
    #[serde(with = "hex_bytes")]
    r#priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    r#pub: Vec<u8>,
    label: String,
    #[serde(with = "hex_bytes")]
    context: Vec<u8>,
    #[serde(with = "hex_bytes")]
    plaintext: Vec<u8>,
    #[serde(with = "hex_bytes")]
    kem_output: Vec<u8>,
    #[serde(with = "hex_bytes")]
    ciphertext: Vec<u8>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;
    let e = |e: mls_engine::crypto::CryptoError| e.to_string();

    let r = &c.ref_hash;
    check_eq(
        "ref_hash",
        cs.ref_hash(&r.label, &r.value).map_err(e)?,
        r.out.clone(),
    )?;

    let x = &c.expand_with_label;
    let out = cs
        .expand_with_label(&x.secret, &x.label, &x.context, x.length)
        .map_err(e)?;
    check_eq("expand_with_label", out.as_bytes(), &x.out[..])?;

    let d = &c.derive_secret;
    let out = cs.derive_secret(&d.secret, &d.label).map_err(e)?;
    check_eq("derive_secret", out.as_bytes(), &d.out[..])?;

    let t = &c.derive_tree_secret;
    let out = cs
        .derive_tree_secret(&t.secret, &t.label, t.generation, t.length)
        .map_err(e)?;
    check_eq("derive_tree_secret", out.as_bytes(), &t.out[..])?;

    let s = &c.sign_with_label;
    cs.verify_with_label(&s.r#pub, &s.label, &s.content, &s.signature)
        .map_err(|err| format!("verify_with_label of the vector's signature: {err}"))?;
    let sk = SignaturePrivateKey::new(s.r#priv.clone());
    check_eq(
        "signature public key",
        cs.signature_public_key(&sk).map_err(e)?,
        s.r#pub.clone(),
    )?;
    let own = cs.sign_with_label(&sk, &s.label, &s.content).map_err(e)?;
    cs.verify_with_label(&s.r#pub, &s.label, &s.content, &own)
        .map_err(|err| format!("verify_with_label of our signature: {err}"))?;
    if cs
        .verify_with_label(&s.r#pub, "other", &s.content, &own)
        .is_ok()
    {
        return Err("signature verified under another label".into());
    }

    let h = &c.encrypt_with_label;
    let sk = HpkePrivateKey::new(h.r#priv.clone());
    check_eq(
        "hpke public key",
        cs.hpke_public_key(&sk).map_err(e)?,
        h.r#pub.clone(),
    )?;
    let pt = cs
        .decrypt_with_label(&sk, &h.label, &h.context, &h.kem_output, &h.ciphertext)
        .map_err(|err| format!("decrypt_with_label of the vector: {err}"))?;
    check_eq("decrypted plaintext", pt, h.plaintext.clone())?;
    let own = cs
        .encrypt_with_label(&h.r#pub, &h.label, &h.context, &h.plaintext)
        .map_err(e)?;
    let pt = cs
        .decrypt_with_label(&sk, &h.label, &h.context, &own.kem_output, &own.ciphertext)
        .map_err(|err| format!("decrypt_with_label of our ciphertext: {err}"))?;
    check_eq("round-trip plaintext", pt, h.plaintext.clone())
}
