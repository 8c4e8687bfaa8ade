//! Joining a group (RFC 9420 §12.4.3): GroupInfo, GroupSecrets and the Welcome message.

use std::io::Write;

use tls_codec::{
    DeserializeBytes, Serialize, Size, TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize,
    VLByteSlice, VLBytes,
};

use super::{CodecError, Extension, GroupContext, HpkeCiphertext, PreSharedKeyID, SignatureError};
use crate::crypto::{CipherSuite, MlsCrypto as _, Secret, SignaturePrivateKey, SuiteProvider};

/// The label of a GroupInfo signature (§12.4.3).
pub const GROUP_INFO_TBS_LABEL: &str = "GroupInfoTBS";

/// `KeyPackageRef` (§5.2): `MakeKeyPackageRef` of a KeyPackage (`opaque HashReference<V>`).
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct KeyPackageRef(pub VLBytes);

impl KeyPackageRef {
    /// The reference bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl From<Vec<u8>> for KeyPackageRef {
    fn from(bytes: Vec<u8>) -> Self {
        Self(VLBytes::new(bytes))
    }
}

/// `GroupInfo` (§12.4.3): the group's state for joiners, signed by a member.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupInfo {
    /// The GroupContext of the epoch.
    pub group_context: GroupContext,
    /// GroupInfo extensions (`ratchet_tree`, `external_pub`, ...).
    pub extensions: Vec<Extension>,
    /// The confirmation tag of the epoch.
    pub confirmation_tag: VLBytes,
    /// The leaf index of the signing member.
    pub signer: u32,
    /// `SignWithLabel(., "GroupInfoTBS", GroupInfoTBS)`.
    pub signature: VLBytes,
}

impl GroupInfo {
    /// The `GroupInfoTBS` of this GroupInfo: every field but the signature.
    pub fn tbs(&self) -> GroupInfoTBS<'_> {
        GroupInfoTBS {
            group_context: &self.group_context,
            extensions: &self.extensions,
            confirmation_tag: self.confirmation_tag.as_slice(),
            signer: self.signer,
        }
    }

    /// The encoded `GroupInfoTBS`.
    pub fn to_be_signed(&self) -> Result<Vec<u8>, CodecError> {
        super::encode(&self.tbs())
    }

    /// Signs the GroupInfo in place (the key is the one of leaf `signer`).
    pub fn sign(
        &mut self,
        suite: &dyn SuiteProvider,
        signature_private_key: &SignaturePrivateKey,
    ) -> Result<(), SignatureError> {
        let tbs = self.to_be_signed()?;
        let signature = suite.sign_with_label(signature_private_key, GROUP_INFO_TBS_LABEL, &tbs)?;
        self.signature = VLBytes::new(signature);
        Ok(())
    }

    /// Verifies the signature under `signature_public_key`, the key of leaf `signer`.
    pub fn verify_signature(
        &self,
        suite: &dyn SuiteProvider,
        signature_public_key: &[u8],
    ) -> Result<(), SignatureError> {
        let tbs = self.to_be_signed()?;
        suite.verify_with_label(
            signature_public_key,
            GROUP_INFO_TBS_LABEL,
            &tbs,
            self.signature.as_slice(),
        )?;
        Ok(())
    }
}

/// `GroupInfoTBS` (§12.4.3), borrowed from a [`GroupInfo`]; only encoded, never decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupInfoTBS<'a> {
    /// The GroupContext of the epoch.
    pub group_context: &'a GroupContext,
    /// GroupInfo extensions.
    pub extensions: &'a [Extension],
    /// The confirmation tag of the epoch.
    pub confirmation_tag: &'a [u8],
    /// The leaf index of the signing member.
    pub signer: u32,
}

impl Size for GroupInfoTBS<'_> {
    fn tls_serialized_len(&self) -> usize {
        self.group_context.tls_serialized_len()
            + self.extensions.tls_serialized_len()
            + VLByteSlice(self.confirmation_tag).tls_serialized_len()
            + self.signer.tls_serialized_len()
    }
}

impl Serialize for GroupInfoTBS<'_> {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        Ok(self.group_context.tls_serialize(writer)?
            + self.extensions.tls_serialize(writer)?
            + VLByteSlice(self.confirmation_tag).tls_serialize(writer)?
            + self.signer.tls_serialize(writer)?)
    }
}

/// `PathSecret` (§12.4.3.1): the path secret of the lowest node shared by the committer's
/// and the joiner's direct paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSecret {
    /// `opaque path_secret<V>`.
    pub path_secret: Secret,
}

impl Size for PathSecret {
    fn tls_serialized_len(&self) -> usize {
        VLByteSlice(self.path_secret.as_bytes()).tls_serialized_len()
    }
}

impl Serialize for PathSecret {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        VLByteSlice(self.path_secret.as_bytes()).tls_serialize(writer)
    }
}

impl DeserializeBytes for PathSecret {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (secret, rest) = read_secret(bytes)?;
        Ok((
            Self {
                path_secret: secret,
            },
            rest,
        ))
    }
}

/// `GroupSecrets` (§12.4.3.1): what a Welcome encrypts to each joiner's init key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSecrets {
    /// The epoch's `joiner_secret`.
    pub joiner_secret: Secret,
    /// `optional<PathSecret> path_secret`.
    pub path_secret: Option<PathSecret>,
    /// The PSKs injected into the epoch.
    pub psks: Vec<PreSharedKeyID>,
}

impl Size for GroupSecrets {
    fn tls_serialized_len(&self) -> usize {
        VLByteSlice(self.joiner_secret.as_bytes()).tls_serialized_len()
            + self.path_secret.tls_serialized_len()
            + self.psks.tls_serialized_len()
    }
}

impl Serialize for GroupSecrets {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        Ok(
            VLByteSlice(self.joiner_secret.as_bytes()).tls_serialize(writer)?
                + self.path_secret.tls_serialize(writer)?
                + self.psks.tls_serialize(writer)?,
        )
    }
}

impl DeserializeBytes for GroupSecrets {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (joiner_secret, rest) = read_secret(bytes)?;
        let (path_secret, rest) = Option::<PathSecret>::tls_deserialize_bytes(rest)?;
        let (psks, rest) = Vec::<PreSharedKeyID>::tls_deserialize_bytes(rest)?;
        Ok((
            Self {
                joiner_secret,
                path_secret,
                psks,
            },
            rest,
        ))
    }
}

/// Reads `opaque secret<V>` straight into a [`Secret`] (no copy left behind).
fn read_secret(bytes: &[u8]) -> Result<(Secret, &[u8]), tls_codec::Error> {
    let (secret, rest) = VLBytes::tls_deserialize_bytes(bytes)?;
    Ok((Secret::new(Vec::from(secret)), rest))
}

/// `EncryptedGroupSecrets` (§12.4.3.1): one joiner's GroupSecrets, HPKE-encrypted to the init
/// key of its KeyPackage.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct EncryptedGroupSecrets {
    /// The joiner's KeyPackage.
    pub new_member: KeyPackageRef,
    /// `EncryptWithLabel(init_key, "Welcome", encrypted_group_info, group_secrets)`.
    pub encrypted_group_secrets: HpkeCiphertext,
}

/// `Welcome` (§12.4.3.1).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Welcome {
    /// The group's cipher suite.
    pub cipher_suite: CipherSuite,
    /// One entry per joiner.
    pub secrets: Vec<EncryptedGroupSecrets>,
    /// The GroupInfo, encrypted under the `welcome_key` and `welcome_nonce`.
    pub encrypted_group_info: VLBytes,
}

impl Welcome {
    /// The entry for the KeyPackage `new_member`.
    pub fn secrets_for(&self, new_member: &KeyPackageRef) -> Option<&EncryptedGroupSecrets> {
        self.secrets.iter().find(|s| &s.new_member == new_member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, encode, ProtocolVersion};
    use crate::crypto::{CryptoProvider as _, RustCrypto};

    fn group_context() -> GroupContext {
        GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(1),
            group_id: vec![1, 2].into(),
            epoch: 7,
            tree_hash: vec![3; 32].into(),
            confirmed_transcript_hash: vec![4; 32].into(),
            extensions: vec![],
        }
    }

    #[test]
    fn group_secrets_layout() {
        let secrets = GroupSecrets {
            joiner_secret: Secret::new(vec![0xaa; 2]),
            path_secret: Some(PathSecret {
                path_secret: Secret::new(vec![0xbb]),
            }),
            psks: vec![],
        };
        let bytes = encode(&secrets).unwrap();
        assert_eq!(bytes, vec![2, 0xaa, 0xaa, 1, 1, 0xbb, 0]);
        assert_eq!(decode_exact::<GroupSecrets>(&bytes).unwrap(), secrets);
        // Presence octet 2 is malformed.
        assert!(decode_exact::<GroupSecrets>(&[0, 2, 0]).is_err());
        // No path secret.
        assert_eq!(
            decode_exact::<GroupSecrets>(&[0, 0, 0])
                .unwrap()
                .path_secret,
            None
        );
    }

    #[test]
    fn group_info_signature() {
        let suite = RustCrypto.suite(CipherSuite(1)).unwrap();
        let keys = suite.signature_key_pair_from_seed(&[5; 32]).unwrap();
        let mut info = GroupInfo {
            group_context: group_context(),
            extensions: vec![],
            confirmation_tag: vec![6; 32].into(),
            signer: 3,
            signature: VLBytes::new(vec![]),
        };
        info.sign(suite, &keys.private_key).unwrap();
        info.verify_signature(suite, &keys.public_key).unwrap();

        // The TBS is the GroupInfo encoding without its signature.
        let full = encode(&info).unwrap();
        let tbs = info.to_be_signed().unwrap();
        assert_eq!(&full[..tbs.len()], tbs.as_slice());
        assert_eq!(decode_exact::<GroupInfo>(&full).unwrap(), info);

        let mut tampered = info.clone();
        tampered.signer = 4;
        assert!(tampered.verify_signature(suite, &keys.public_key).is_err());
    }

    #[test]
    fn welcome_lookup() {
        let entry = EncryptedGroupSecrets {
            new_member: vec![9; 32].into(),
            encrypted_group_secrets: HpkeCiphertext {
                kem_output: vec![1].into(),
                ciphertext: vec![2].into(),
            },
        };
        let welcome = Welcome {
            cipher_suite: CipherSuite(1),
            secrets: vec![entry.clone()],
            encrypted_group_info: vec![3].into(),
        };
        assert_eq!(welcome.secrets_for(&vec![9; 32].into()), Some(&entry));
        assert_eq!(welcome.secrets_for(&vec![8; 32].into()), None);
        let bytes = encode(&welcome).unwrap();
        assert_eq!(decode_exact::<Welcome>(&bytes).unwrap(), welcome);
    }
}
