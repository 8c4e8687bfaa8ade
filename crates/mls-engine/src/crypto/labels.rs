//! The labelled operations of RFC 9420 §5.1-§5.2 and §8, built on a [`SuiteProvider`].

use tls_codec::{Serialize as _, VLByteSlice};

use super::{CryptoError, HpkePrivateKey, Secret, SignaturePrivateKey, SuiteProvider};

/// The prefix every MLS label carries (RFC 9420 §5.1.3, §5.1.2, §8).
const LABEL_PREFIX: &[u8] = b"MLS 1.0 ";

/// An HPKE ciphertext as two byte strings (`kem_output`, `ciphertext`) (RFC 9420 §7.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpkeCiphertextParts {
    /// The KEM encapsulation.
    pub kem_output: Vec<u8>,
    /// The AEAD ciphertext.
    pub ciphertext: Vec<u8>,
}

/// Appends `bytes` as `opaque <V>` (MLS variable-length vector) to `out`.
fn push_vl(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), CryptoError> {
    VLByteSlice(bytes)
        .tls_serialize(out)
        .map(|_| ())
        .map_err(|e| CryptoError::Encoding(e.to_string()))
}

/// `"MLS 1.0 " + label` as `opaque label<V>` followed by `opaque second<V>`: the layout
/// shared by `SignContent`, `EncryptContext` and `KDFLabel`'s tail.
fn labelled_pair(label: &str, second: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut full_label = Vec::with_capacity(LABEL_PREFIX.len() + label.len());
    full_label.extend_from_slice(LABEL_PREFIX);
    full_label.extend_from_slice(label.as_bytes());
    let mut out = Vec::with_capacity(full_label.len() + second.len() + 8);
    push_vl(&mut out, &full_label)?;
    push_vl(&mut out, second)?;
    Ok(out)
}

/// MLS-level cryptographic operations, provided for every [`SuiteProvider`].
pub trait MlsCrypto: SuiteProvider {
    /// `ExpandWithLabel(secret, label, context, length)` (§8):
    /// `KDF.Expand(secret, KDFLabel, length)` with
    /// `KDFLabel { uint16 length; opaque label<V> = "MLS 1.0 " + label; opaque context<V>; }`.
    fn expand_with_label(
        &self,
        secret: &[u8],
        label: &str,
        context: &[u8],
        length: usize,
    ) -> Result<Secret, CryptoError> {
        let length16 = u16::try_from(length).map_err(|_| CryptoError::KdfOutputTooLong)?;
        let mut info = length16.to_be_bytes().to_vec();
        info.extend_from_slice(&labelled_pair(label, context)?);
        self.kdf_expand(secret, &info, length)
    }

    /// `DeriveSecret(secret, label) = ExpandWithLabel(secret, label, "", KDF.Nh)` (§8).
    fn derive_secret(&self, secret: &[u8], label: &str) -> Result<Secret, CryptoError> {
        self.expand_with_label(secret, label, &[], self.params().hash_len())
    }

    /// `DeriveTreeSecret(secret, label, generation, length)` (§9.1):
    /// `ExpandWithLabel(secret, label, uint32 generation, length)`.
    fn derive_tree_secret(
        &self,
        secret: &[u8],
        label: &str,
        generation: u32,
        length: usize,
    ) -> Result<Secret, CryptoError> {
        self.expand_with_label(secret, label, &generation.to_be_bytes(), length)
    }

    /// `SignWithLabel(sk, label, content)` (§5.1.2).
    fn sign_with_label(
        &self,
        private_key: &SignaturePrivateKey,
        label: &str,
        content: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.sign(private_key, &labelled_pair(label, content)?)
    }

    /// `VerifyWithLabel(pk, label, content, signature)` (§5.1.2).
    fn verify_with_label(
        &self,
        public_key: &[u8],
        label: &str,
        content: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.verify(public_key, &labelled_pair(label, content)?, signature)
    }

    /// `EncryptWithLabel(pk, label, context, plaintext)` (§5.1.3):
    /// `SealBase(pk, EncryptContext, "", plaintext)`.
    fn encrypt_with_label(
        &self,
        public_key: &[u8],
        label: &str,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<HpkeCiphertextParts, CryptoError> {
        let info = labelled_pair(label, context)?;
        let (kem_output, ciphertext) = self.hpke_seal(public_key, &info, &[], plaintext)?;
        Ok(HpkeCiphertextParts {
            kem_output,
            ciphertext,
        })
    }

    /// `DecryptWithLabel(sk, label, context, kem_output, ciphertext)` (§5.1.3).
    fn decrypt_with_label(
        &self,
        private_key: &HpkePrivateKey,
        label: &str,
        context: &[u8],
        kem_output: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let info = labelled_pair(label, context)?;
        self.hpke_open(private_key, kem_output, &info, &[], ciphertext)
    }

    /// `RefHash(label, value) = Hash(RefHashInput)` with
    /// `RefHashInput { opaque label<V>; opaque value<V>; }` (§5.2). The label is used as
    /// given (it already carries "MLS 1.0 ").
    fn ref_hash(&self, label: &str, value: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut input = Vec::with_capacity(label.len() + value.len() + 8);
        push_vl(&mut input, label.as_bytes())?;
        push_vl(&mut input, value)?;
        Ok(self.hash(&input))
    }

    /// `MakeKeyPackageRef(value) = RefHash("MLS 1.0 KeyPackage Reference", value)` (§5.2),
    /// where `value` is the encoded KeyPackage.
    fn make_key_package_ref(&self, key_package: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ref_hash("MLS 1.0 KeyPackage Reference", key_package)
    }

    /// `MakeProposalRef(value) = RefHash("MLS 1.0 Proposal Reference", value)` (§5.2), where
    /// `value` is the encoded `AuthenticatedContent` carrying the proposal.
    fn make_proposal_ref(&self, authenticated_content: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ref_hash("MLS 1.0 Proposal Reference", authenticated_content)
    }

    /// `n` fresh random bytes.
    fn random_vec(&self, n: usize) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0u8; n];
        self.fill_random(&mut out)?;
        Ok(out)
    }

    /// A fresh random secret of `KDF.Nh` bytes (a leaf's first `path_secret`, an
    /// `init_secret` for a new group...).
    fn random_secret(&self) -> Result<Secret, CryptoError> {
        self.random_vec(self.params().hash_len()).map(Secret::new)
    }
}

impl<T: SuiteProvider + ?Sized> MlsCrypto for T {}
