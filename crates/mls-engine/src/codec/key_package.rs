//! KeyPackages (RFC 9420 §10).

use tls_codec::{
    Serialize as _, TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::{CodecError, Extension, HpkePublicKey, LeafNode, LeafSignatureError, ProtocolVersion};
use crate::crypto::{CipherSuite, MlsCrypto as _, SignaturePrivateKey, SuiteProvider};

/// The label of a KeyPackage signature.
pub const KEY_PACKAGE_TBS_LABEL: &str = "KeyPackageTBS";

/// `KeyPackage` (§10).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct KeyPackage {
    /// Protocol version.
    pub version: ProtocolVersion,
    /// The cipher suite of the groups this KeyPackage can join.
    pub cipher_suite: CipherSuite,
    /// The HPKE key Welcome messages are encrypted to.
    pub init_key: HpkePublicKey,
    /// The leaf the client will occupy.
    pub leaf_node: LeafNode,
    /// KeyPackage extensions.
    pub extensions: Vec<Extension>,
    /// `SignWithLabel(., "KeyPackageTBS", KeyPackageTBS)` under the leaf's signature key.
    pub signature: VLBytes,
}

impl KeyPackage {
    /// The encoded `KeyPackageTBS`: every field but the signature.
    pub fn to_be_signed(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.version.tls_serialize(&mut out)?;
        self.cipher_suite.tls_serialize(&mut out)?;
        self.init_key.tls_serialize(&mut out)?;
        self.leaf_node.tls_serialize(&mut out)?;
        self.extensions.tls_serialize(&mut out)?;
        Ok(out)
    }

    /// Signs the KeyPackage in place.
    pub fn sign(
        &mut self,
        suite: &dyn SuiteProvider,
        signature_private_key: &SignaturePrivateKey,
    ) -> Result<(), LeafSignatureError> {
        let tbs = self.to_be_signed()?;
        let signature =
            suite.sign_with_label(signature_private_key, KEY_PACKAGE_TBS_LABEL, &tbs)?;
        self.signature = VLBytes::new(signature);
        Ok(())
    }

    /// Verifies the KeyPackage signature under its leaf's signature key.
    pub fn verify_signature(&self, suite: &dyn SuiteProvider) -> Result<(), LeafSignatureError> {
        let tbs = self.to_be_signed()?;
        suite.verify_with_label(
            self.leaf_node.signature_key.as_slice(),
            KEY_PACKAGE_TBS_LABEL,
            &tbs,
            self.signature.as_slice(),
        )?;
        Ok(())
    }

    /// `MakeKeyPackageRef` of this KeyPackage (§5.2).
    pub fn reference(&self, suite: &dyn SuiteProvider) -> Result<Vec<u8>, LeafSignatureError> {
        let encoded = super::encode(self)?;
        Ok(suite.make_key_package_ref(&encoded)?)
    }
}
