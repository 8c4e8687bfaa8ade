//! Safe HPKE encryption (draft-ietf-mls-extensions-08 §4.2) and safe signatures (§4.3):
//! the RFC 9420 labelled operations (§5.1.2, §5.1.3) with a [`ComponentOperationLabel`] as
//! their `Label`.
//!
//! ```text
//! SafeEncryptWithLabel(PublicKey, ComponentID, Label, Context, Plaintext) =
//!   EncryptWithLabel(PublicKey, ComponentOperationLabel, Context, Plaintext)
//! SafeSignWithLabel(SignatureKey, ComponentID, Label, Content) =
//!   SignWithLabel(SignatureKey, ComponentOperationLabel, Content)
//! ```
//!
//! Reading: where RFC 9420 writes `"MLS 1.0 " + Label` for a string label, the Safe
//! operations use the octets `"MLS 1.0 " || TLS(ComponentOperationLabel)`, i.e. the encoded
//! struct takes the place of the label string. So `SignContent` is
//! `{ opaque label<V> = "MLS 1.0 " || ComponentOperationLabel; opaque content<V>; }` and the
//! HPKE `info` is `EncryptContext { opaque label<V> = "MLS 1.0 " || ComponentOperationLabel;
//! opaque context<V>; }`.

use tls_codec::{Serialize as _, VLByteSlice};

use super::component::{ComponentId, ComponentOperationLabel};
use crate::codec::CodecError;
use crate::crypto::{
    CryptoError, HpkeCiphertextParts, HpkePrivateKey, SignaturePrivateKey, SuiteProvider,
};

/// Why a Safe operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafeCryptoError {
    /// Encoding the label or content failed (a value too long for its length field).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The cryptographic operation failed (a bad key, a signature that does not verify, a
    /// ciphertext that does not open).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// `"MLS 1.0 " || TLS(ComponentOperationLabel)` as `opaque label<V>`, then `second` as
/// `opaque<V>`: the encoded `SignContent` / `EncryptContext`.
fn labelled(
    component_id: ComponentId,
    label: &[u8],
    second: &[u8],
) -> Result<Vec<u8>, SafeCryptoError> {
    let mut full_label = b"MLS 1.0 ".to_vec();
    full_label.extend_from_slice(&ComponentOperationLabel::new(component_id, label).to_bytes()?);
    let mut out = Vec::with_capacity(full_label.len() + second.len() + 8);
    VLByteSlice(&full_label)
        .tls_serialize(&mut out)
        .map_err(CodecError::from)?;
    VLByteSlice(second)
        .tls_serialize(&mut out)
        .map_err(CodecError::from)?;
    Ok(out)
}

/// `SafeEncryptWithLabel(PublicKey, ComponentID, Label, Context, Plaintext)` (§4.2):
/// `SealBase(PublicKey, EncryptContext, "", Plaintext)`.
pub fn safe_encrypt_with_label(
    cs: &dyn SuiteProvider,
    public_key: &[u8],
    component_id: ComponentId,
    label: &[u8],
    context: &[u8],
    plaintext: &[u8],
) -> Result<HpkeCiphertextParts, SafeCryptoError> {
    let info = labelled(component_id, label, context)?;
    let (kem_output, ciphertext) = cs.hpke_seal(public_key, &info, &[], plaintext)?;
    Ok(HpkeCiphertextParts {
        kem_output,
        ciphertext,
    })
}

/// `SafeDecryptWithLabel(PrivateKey, ComponentID, Label, Context, KEMOutput, Ciphertext)`
/// (§4.2). `component_id` must be the decrypting component's own ID.
pub fn safe_decrypt_with_label(
    cs: &dyn SuiteProvider,
    private_key: &HpkePrivateKey,
    component_id: ComponentId,
    label: &[u8],
    context: &[u8],
    kem_output: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, SafeCryptoError> {
    let info = labelled(component_id, label, context)?;
    Ok(cs.hpke_open(private_key, kem_output, &info, &[], ciphertext)?)
}

/// `SafeSignWithLabel(SignatureKey, ComponentID, Label, Content)` (§4.3). `component_id`
/// must be the signing component's own ID.
pub fn safe_sign_with_label(
    cs: &dyn SuiteProvider,
    private_key: &SignaturePrivateKey,
    component_id: ComponentId,
    label: &[u8],
    content: &[u8],
) -> Result<Vec<u8>, SafeCryptoError> {
    Ok(cs.sign(private_key, &labelled(component_id, label, content)?)?)
}

/// `SafeVerifyWithLabel(VerificationKey, ComponentID, Label, Content, SignatureValue)` (§4.3).
pub fn safe_verify_with_label(
    cs: &dyn SuiteProvider,
    public_key: &[u8],
    component_id: ComponentId,
    label: &[u8],
    content: &[u8],
    signature: &[u8],
) -> Result<(), SafeCryptoError> {
    Ok(cs.verify(
        public_key,
        &labelled(component_id, label, content)?,
        signature,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CipherSuite, CryptoProvider as _, RustCrypto};

    /// The `SignContent` / `EncryptContext` bytes written out by hand.
    fn expected_input(component_id: u32, label: &[u8], second: &[u8]) -> Vec<u8> {
        let mut l = b"MLS 1.0 ".to_vec();
        l.push(11);
        l.extend_from_slice(b"Application");
        l.extend_from_slice(&component_id.to_be_bytes());
        l.push(label.len() as u8);
        l.extend_from_slice(label);
        let mut out = vec![l.len() as u8];
        out.extend_from_slice(&l);
        out.push(second.len() as u8);
        out.extend_from_slice(second);
        out
    }

    #[test]
    fn sign_and_verify_are_domain_separated() {
        for suite in [1u16, 2, 3] {
            let cs = RustCrypto.suite(CipherSuite(suite)).unwrap();
            let kp = cs.signature_generate_key_pair().unwrap();
            let sig = safe_sign_with_label(cs, &kp.private_key, 6, b"op", b"content").unwrap();
            safe_verify_with_label(cs, &kp.public_key, 6, b"op", b"content", &sig).unwrap();
            // The signature is a plain signature over the hand-built SignContent.
            cs.verify(&kp.public_key, &expected_input(6, b"op", b"content"), &sig)
                .unwrap();
            assert!(
                safe_verify_with_label(cs, &kp.public_key, 7, b"op", b"content", &sig).is_err()
            );
            assert!(
                safe_verify_with_label(cs, &kp.public_key, 6, b"oq", b"content", &sig).is_err()
            );
            assert!(safe_verify_with_label(cs, &kp.public_key, 6, b"op", b"other", &sig).is_err());
        }
    }

    #[test]
    fn encrypt_and_decrypt_are_domain_separated() {
        for suite in [1u16, 2, 3] {
            let cs = RustCrypto.suite(CipherSuite(suite)).unwrap();
            let kp = cs.hpke_generate_key_pair().unwrap();
            let ct =
                safe_encrypt_with_label(cs, &kp.public_key, 6, b"op", b"ctx", b"hello").unwrap();
            let pt = safe_decrypt_with_label(
                cs,
                &kp.private_key,
                6,
                b"op",
                b"ctx",
                &ct.kem_output,
                &ct.ciphertext,
            )
            .unwrap();
            assert_eq!(pt, b"hello");
            // It opens with the hand-built EncryptContext as HPKE info.
            let raw = cs
                .hpke_open(
                    &kp.private_key,
                    &ct.kem_output,
                    &expected_input(6, b"op", b"ctx"),
                    &[],
                    &ct.ciphertext,
                )
                .unwrap();
            assert_eq!(raw, b"hello");
            for (id, label, ctx) in [
                (7u32, &b"op"[..], &b"ctx"[..]),
                (6, b"oq", b"ctx"),
                (6, b"op", b"cty"),
            ] {
                assert!(safe_decrypt_with_label(
                    cs,
                    &kp.private_key,
                    id,
                    label,
                    ctx,
                    &ct.kem_output,
                    &ct.ciphertext
                )
                .is_err());
            }
        }
    }
}
