//! KeyPackage creation (RFC 9420 §10) and validation (§10.1).
//!
//! [`KeyPackageParams::build`] makes the leaf (source `key_package`, with its lifetime), the
//! `init_key`, and signs with `KeyPackage::sign`; it returns a [`KeyPackageBundle`]: the
//! KeyPackage, its private keys ([`KeyPackagePrivate`], zeroized on drop) and its
//! [`KeyPackageRef`] (§5.2). [`validate_key_package`] runs the checks of §10.1.

use crate::codec::{
    Credential, Extension, ExtensionType, HpkePublicKey, KeyPackage, KeyPackageRef,
    LeafSignatureError, Lifetime, ProtocolVersion, VLBytes,
};
use crate::crypto::{CipherSuite, HpkePrivateKey, SignatureKeyPair, SuiteProvider};

use super::capabilities::{first_duplicate, supports_extension};
use super::leaf_node::{
    validate_leaf_node, LeafNodeOrigin, LeafNodeParams, LeafNodeTarget, LeafNodeValidationContext,
    LeafNodeValidationError,
};
use super::{hpke_public_key_well_formed, CreationError, HpkeKeySource};

/// The `KeyPackageRef` of `key_package` under `suite`: `MakeKeyPackageRef` (§5.2).
pub fn key_package_ref(
    suite: &dyn SuiteProvider,
    key_package: &KeyPackage,
) -> Result<KeyPackageRef, LeafSignatureError> {
    Ok(KeyPackageRef(VLBytes::new(key_package.reference(suite)?)))
}

/// The private keys of a KeyPackage. Each key is zeroized when dropped. The `init_key`'s
/// private key is needed only to open the Welcome (§12.4.3.1); the `encryption_key`'s private
/// key becomes the member's leaf key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPackagePrivate {
    /// The private key of `init_key`.
    pub init_private_key: HpkePrivateKey,
    /// The private key of `leaf_node.encryption_key`.
    pub encryption_private_key: HpkePrivateKey,
}

/// A new KeyPackage with its private keys and reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPackageBundle {
    /// The signed KeyPackage, ready to publish.
    pub key_package: KeyPackage,
    /// Its private keys.
    pub private: KeyPackagePrivate,
    /// Its `KeyPackageRef`.
    pub reference: KeyPackageRef,
}

/// The inputs of a new KeyPackage other than its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPackageParams {
    /// The leaf's credential, base capabilities and extensions.
    pub leaf: LeafNodeParams,
    /// The leaf's lifetime (seconds since the Unix epoch; the caller reads the clock).
    pub lifetime: Lifetime,
    /// KeyPackage extensions (their non-default types are added to the leaf's capabilities,
    /// §10).
    pub extensions: Vec<Extension>,
}

impl KeyPackageParams {
    /// A KeyPackage for `cipher_suite` with `credential`, default capabilities, `lifetime`,
    /// and no extensions.
    pub fn new(cipher_suite: CipherSuite, credential: Credential, lifetime: Lifetime) -> Self {
        Self {
            leaf: LeafNodeParams::new(cipher_suite, credential),
            lifetime,
            extensions: Vec::new(),
        }
    }

    /// Adds a KeyPackage extension.
    pub fn extension(mut self, extension: Extension) -> Self {
        self.extensions.push(extension);
        self
    }

    /// Replaces the leaf parameters.
    pub fn with_leaf(mut self, leaf: LeafNodeParams) -> Self {
        self.leaf = leaf;
        self
    }

    /// Builds and signs the KeyPackage for `suite`, with the `init_key` pair from `init_key`,
    /// the leaf `encryption_key` pair from `encryption_key`, signed with `signature_key`.
    pub fn build(
        &self,
        suite: &dyn SuiteProvider,
        init_key: HpkeKeySource,
        encryption_key: HpkeKeySource,
        signature_key: &SignatureKeyPair,
    ) -> Result<KeyPackageBundle, CreationError> {
        if let Some(duplicate) = first_duplicate(&self.extensions) {
            return Err(CreationError::DuplicateExtension(duplicate));
        }
        let cipher_suite = suite.cipher_suite();
        let capabilities = self
            .leaf
            .completed_capabilities(cipher_suite, &self.extensions);
        let (leaf_node, encryption_private_key) = self.leaf.build_with_capabilities(
            suite,
            LeafNodeTarget::KeyPackage {
                lifetime: self.lifetime,
            },
            encryption_key,
            signature_key,
            capabilities,
        )?;
        let init = init_key.into_key_pair(suite)?;
        if init.public_key.as_slice() == leaf_node.encryption_key.as_slice() {
            return Err(CreationError::InitKeyEqualsEncryptionKey);
        }
        let mut key_package = KeyPackage {
            version: ProtocolVersion::MLS10,
            cipher_suite,
            init_key: HpkePublicKey::from(init.public_key.clone()),
            leaf_node,
            extensions: self.extensions.clone(),
            signature: VLBytes::new(Vec::new()),
        };
        key_package.sign(suite, &signature_key.private_key)?;
        let reference = key_package_ref(suite, &key_package)?;
        Ok(KeyPackageBundle {
            key_package,
            private: KeyPackagePrivate {
                init_private_key: init.private_key.clone(),
                encryption_private_key,
            },
            reference,
        })
    }

    /// [`Self::build`] with fresh `init_key` and `encryption_key` pairs.
    pub fn build_fresh(
        &self,
        suite: &dyn SuiteProvider,
        signature_key: &SignatureKeyPair,
    ) -> Result<KeyPackageBundle, CreationError> {
        self.build(
            suite,
            HpkeKeySource::Generate,
            HpkeKeySource::Generate,
            signature_key,
        )
    }
}

/// What KeyPackage validation needs: the LeafNode context of the group, plus KeyPackage-only
/// settings.
#[derive(Debug, Clone, Copy)]
pub struct KeyPackageValidationContext<'a> {
    /// The group's LeafNode validation context (its `version` is the group's version).
    pub leaf: LeafNodeValidationContext<'a>,
    /// The `version` of the MLSMessage that carried the KeyPackage, if it came in one (§10:
    /// the two "MUST" be equal).
    pub message_version: Option<ProtocolVersion>,
    /// Whether non-default `KeyPackage.extensions` types must be listed in the leaf's
    /// capabilities (§10: "Extensions included in the `extensions` or
    /// `leaf_node.extensions` fields MUST be included in the `leaf_node.capabilities`
    /// field"). Default `true`; an application may relax it for peers that omit the types of
    /// KeyPackage-only extensions.
    pub require_extensions_in_capabilities: bool,
}

impl<'a> KeyPackageValidationContext<'a> {
    /// The KeyPackage context for `leaf`, with the strict §10 extension rule and no MLSMessage.
    pub fn new(leaf: LeafNodeValidationContext<'a>) -> Self {
        Self {
            leaf,
            message_version: None,
            require_extensions_in_capabilities: true,
        }
    }

    /// Records the version of the MLSMessage that carried the KeyPackage.
    pub fn with_message_version(mut self, version: ProtocolVersion) -> Self {
        self.message_version = Some(version);
        self
    }
}

/// Why a KeyPackage is invalid. Each variant is one check; its doc names the RFC text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyPackageValidationError {
    /// §10 "verify that the `version` field of the KeyPackage has the same value as the
    /// `version` field of the MLSMessage".
    #[error("KeyPackage version 0x{:04x} differs from its MLSMessage's 0x{:04x}", .key_package.0, .message.0)]
    MessageVersionMismatch {
        /// The KeyPackage's version.
        key_package: ProtocolVersion,
        /// The MLSMessage's version.
        message: ProtocolVersion,
    },
    /// §10.1 "Verify that the cipher suite and protocol version of the KeyPackage match those
    /// in the GroupContext" (version).
    #[error("KeyPackage version 0x{:04x}, group version 0x{:04x}", .key_package.0, .group.0)]
    VersionMismatch {
        /// The KeyPackage's version.
        key_package: ProtocolVersion,
        /// The group's version.
        group: ProtocolVersion,
    },
    /// §10.1 "Verify that the cipher suite and protocol version of the KeyPackage match those
    /// in the GroupContext" (cipher suite).
    #[error("KeyPackage cipher suite 0x{:04x}, group cipher suite 0x{:04x}", .key_package.0, .group.0)]
    CipherSuiteMismatch {
        /// The KeyPackage's cipher suite.
        key_package: CipherSuite,
        /// The group's cipher suite.
        group: CipherSuite,
    },
    /// §10 "The value for `init_key` MUST be a public key for the asymmetric encryption scheme
    /// defined by `cipher_suite`".
    #[error("init_key is not a public key of the cipher suite's KEM")]
    MalformedInitKey,
    /// §13.4 "MUST NOT have more than one extension of any given type" (KeyPackage
    /// extensions).
    #[error("duplicate KeyPackage extension type 0x{:04x}", .0 .0)]
    DuplicateExtension(ExtensionType),
    /// §10 "Extensions included in the `extensions` ... field MUST be included in the
    /// `leaf_node.capabilities` field" (non-default types).
    #[error("KeyPackage extension type 0x{:04x} not in the leaf's capabilities", .0 .0)]
    ExtensionNotInCapabilities(ExtensionType),
    /// §10.1 "Verify that the value of `leaf_node.encryption_key` is different from the value
    /// of the `init_key` field".
    #[error("init_key equals leaf_node.encryption_key")]
    InitKeyEqualsEncryptionKey,
    /// §10.1 "Verify that the signature on the KeyPackage is valid" (§10: "A KeyPackage
    /// object with an invalid signature field MUST be considered malformed").
    #[error("invalid KeyPackage signature: {0}")]
    InvalidSignature(LeafSignatureError),
    /// §10.1 "Verify that the `leaf_node` of the KeyPackage is valid for a KeyPackage
    /// according to Section 7.3".
    #[error("invalid leaf_node: {0}")]
    LeafNode(#[from] LeafNodeValidationError),
}

/// Validates `key_package` for the group whose cipher suite `suite` implements (RFC 9420
/// §10.1).
///
/// Checks, in this order: the MLSMessage version (if given); version and cipher suite against
/// the group; the `init_key` has the suite's form; no duplicate KeyPackage extension; non-default
/// KeyPackage extension types in the leaf's capabilities (unless relaxed); `init_key` differs
/// from the leaf's `encryption_key`; the KeyPackage signature; the leaf, by
/// [`validate_leaf_node`] with [`LeafNodeOrigin::KeyPackage`].
pub fn validate_key_package(
    suite: &dyn SuiteProvider,
    key_package: &KeyPackage,
    ctx: &KeyPackageValidationContext<'_>,
) -> Result<(), KeyPackageValidationError> {
    use KeyPackageValidationError as E;

    if let Some(message) = ctx.message_version {
        if message != key_package.version {
            return Err(E::MessageVersionMismatch {
                key_package: key_package.version,
                message,
            });
        }
    }
    if key_package.version != ctx.leaf.version {
        return Err(E::VersionMismatch {
            key_package: key_package.version,
            group: ctx.leaf.version,
        });
    }
    let group_suite = suite.cipher_suite();
    if key_package.cipher_suite != group_suite {
        return Err(E::CipherSuiteMismatch {
            key_package: key_package.cipher_suite,
            group: group_suite,
        });
    }
    if !hpke_public_key_well_formed(suite, key_package.init_key.as_slice()) {
        return Err(E::MalformedInitKey);
    }
    if let Some(duplicate) = first_duplicate(&key_package.extensions) {
        return Err(E::DuplicateExtension(duplicate));
    }
    if ctx.require_extensions_in_capabilities {
        let caps = &key_package.leaf_node.capabilities;
        if let Some(missing) = key_package
            .extensions
            .iter()
            .map(|e| e.extension_type)
            .find(|t| !supports_extension(caps, *t))
        {
            return Err(E::ExtensionNotInCapabilities(missing));
        }
    }
    if key_package.init_key.as_slice() == key_package.leaf_node.encryption_key.as_slice() {
        return Err(E::InitKeyEqualsEncryptionKey);
    }
    key_package
        .verify_signature(suite)
        .map_err(E::InvalidSignature)?;
    validate_leaf_node(
        suite,
        &key_package.leaf_node,
        LeafNodeOrigin::KeyPackage,
        &ctx.leaf,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, encode, CredentialType};
    use crate::crypto::{CryptoProvider as _, RustCrypto, Secret};
    use crate::messages::identity::BasicIdentityProvider;
    use crate::messages::leaf_node::LifetimeCheck;
    use KeyPackageValidationError as E;

    const NOW: u64 = 1_000;

    fn suite(id: u16) -> &'static dyn SuiteProvider {
        static CRYPTO: RustCrypto = RustCrypto;
        CRYPTO.suite(CipherSuite(id)).unwrap()
    }

    fn signer(suite: &dyn SuiteProvider) -> SignatureKeyPair {
        suite.signature_key_pair_from_seed(&[1; 32]).unwrap()
    }

    fn params(suite: &dyn SuiteProvider) -> KeyPackageParams {
        KeyPackageParams::new(
            suite.cipher_suite(),
            Credential::basic(b"alice".to_vec()),
            Lifetime {
                not_before: NOW - 10,
                not_after: NOW + 10,
            },
        )
    }

    fn bundle(suite: &dyn SuiteProvider) -> (KeyPackageBundle, SignatureKeyPair) {
        let sig = signer(suite);
        (params(suite).build_fresh(suite, &sig).unwrap(), sig)
    }

    fn validate(kp: &KeyPackage, ctx: &KeyPackageValidationContext<'_>) -> Result<(), E> {
        validate_key_package(suite(1), kp, ctx)
    }

    /// A suite-1 KeyPackage mutated by `mutate`, re-signed, validated in the default context.
    fn mutated(mutate: impl FnOnce(&mut KeyPackage)) -> Result<(), E> {
        let (bundle, sig) = bundle(suite(1));
        let mut kp = bundle.key_package;
        mutate(&mut kp);
        kp.sign(suite(1), &sig.private_key).unwrap();
        let provider = BasicIdentityProvider::new();
        let ctx = KeyPackageValidationContext::new(LeafNodeValidationContext::new(&provider, NOW));
        validate(&kp, &ctx)
    }

    #[test]
    fn created_key_packages_validate_and_round_trip() {
        let provider = BasicIdentityProvider::new();
        for id in [1, 2, 3] {
            let s = suite(id);
            let (bundle, _) = bundle(s);
            let kp = &bundle.key_package;
            let ctx =
                KeyPackageValidationContext::new(LeafNodeValidationContext::new(&provider, NOW))
                    .with_message_version(ProtocolVersion::MLS10);
            validate_key_package(s, kp, &ctx).unwrap();
            let bytes = encode(kp).unwrap();
            let decoded: KeyPackage = decode_exact(&bytes).unwrap();
            assert_eq!(&decoded, kp);
            assert_eq!(bundle.reference, key_package_ref(s, &decoded).unwrap());
            assert_eq!(bundle.reference.as_slice().len(), 32);
            assert_eq!(
                s.hpke_public_key(&bundle.private.init_private_key).unwrap(),
                kp.init_key.as_slice()
            );
            assert_eq!(
                s.hpke_public_key(&bundle.private.encryption_private_key)
                    .unwrap(),
                kp.leaf_node.encryption_key.as_slice()
            );
            let ref_bytes = encode(&bundle.reference).unwrap();
            assert_eq!(
                decode_exact::<KeyPackageRef>(&ref_bytes).unwrap(),
                bundle.reference
            );
        }
    }

    #[test]
    fn given_keys_make_the_same_key_package() {
        let s = suite(1);
        let sig = signer(s);
        let make = || {
            params(s)
                .build(
                    s,
                    HpkeKeySource::Seed(Secret::new(vec![7; 32])),
                    HpkeKeySource::Seed(Secret::new(vec![8; 32])),
                    &sig,
                )
                .unwrap()
        };
        assert_eq!(make(), make());
        assert!(format!("{:?}", make().private).contains("redacted"));
    }

    #[test]
    fn creation_errors() {
        let s = suite(1);
        let sig = signer(s);
        assert_eq!(
            params(s).build(
                s,
                HpkeKeySource::Seed(Secret::new(vec![7; 32])),
                HpkeKeySource::Seed(Secret::new(vec![7; 32])),
                &sig,
            ),
            Err(CreationError::InitKeyEqualsEncryptionKey)
        );
        let dup = params(s)
            .extension(Extension::new(ExtensionType(0xff00), vec![]))
            .extension(Extension::new(ExtensionType(0xff00), vec![]));
        assert_eq!(
            dup.build_fresh(s, &sig),
            Err(CreationError::DuplicateExtension(ExtensionType(0xff00)))
        );
    }

    #[test]
    fn key_package_extensions_are_listed_in_capabilities() {
        let s = suite(1);
        let sig = signer(s);
        let leaf = LeafNodeParams::new(CipherSuite(1), Credential::basic(b"a".to_vec()))
            .extension(Extension::new(ExtensionType(0xff01), vec![]));
        let bundle = params(s)
            .with_leaf(leaf)
            .extension(Extension::new(ExtensionType(0xff00), vec![]))
            .build_fresh(s, &sig)
            .unwrap();
        let caps = &bundle.key_package.leaf_node.capabilities;
        assert_eq!(
            caps.extensions,
            vec![ExtensionType(0xff01), ExtensionType(0xff00)]
        );
        assert_eq!(caps.credentials, vec![CredentialType::BASIC]);
        let provider = BasicIdentityProvider::new();
        let ctx = KeyPackageValidationContext::new(LeafNodeValidationContext::new(&provider, NOW));
        assert_eq!(validate(&bundle.key_package, &ctx), Ok(()));
    }

    #[test]
    fn message_version_mismatch() {
        let (bundle, _) = bundle(suite(1));
        let provider = BasicIdentityProvider::new();
        let ctx = KeyPackageValidationContext::new(LeafNodeValidationContext::new(&provider, NOW))
            .with_message_version(ProtocolVersion(2));
        assert_eq!(
            validate(&bundle.key_package, &ctx),
            Err(E::MessageVersionMismatch {
                key_package: ProtocolVersion::MLS10,
                message: ProtocolVersion(2)
            })
        );
    }

    #[test]
    fn version_mismatch() {
        assert_eq!(
            mutated(|kp| kp.version = ProtocolVersion(2)),
            Err(E::VersionMismatch {
                key_package: ProtocolVersion(2),
                group: ProtocolVersion::MLS10
            })
        );
    }

    #[test]
    fn cipher_suite_mismatch() {
        let (bundle, _) = bundle(suite(3));
        let provider = BasicIdentityProvider::new();
        let ctx = KeyPackageValidationContext::new(LeafNodeValidationContext::new(&provider, NOW));
        assert_eq!(
            validate(&bundle.key_package, &ctx),
            Err(E::CipherSuiteMismatch {
                key_package: CipherSuite(3),
                group: CipherSuite(1)
            })
        );
    }

    #[test]
    fn malformed_init_key() {
        assert_eq!(
            mutated(|kp| kp.init_key = HpkePublicKey::from(vec![4; 65])),
            Err(E::MalformedInitKey)
        );
    }

    #[test]
    fn duplicate_key_package_extension() {
        assert_eq!(
            mutated(|kp| {
                kp.extensions = vec![
                    Extension::new(ExtensionType::APPLICATION_ID, vec![]),
                    Extension::new(ExtensionType::APPLICATION_ID, vec![]),
                ]
            }),
            Err(E::DuplicateExtension(ExtensionType::APPLICATION_ID))
        );
    }

    #[test]
    fn key_package_extension_not_in_capabilities() {
        let (bundle, sig) = bundle(suite(1));
        let mut kp = bundle.key_package;
        kp.extensions = vec![Extension::new(ExtensionType(0xff00), vec![])];
        kp.sign(suite(1), &sig.private_key).unwrap();
        let provider = BasicIdentityProvider::new();
        let mut ctx =
            KeyPackageValidationContext::new(LeafNodeValidationContext::new(&provider, NOW));
        assert_eq!(
            validate(&kp, &ctx),
            Err(E::ExtensionNotInCapabilities(ExtensionType(0xff00)))
        );
        ctx.require_extensions_in_capabilities = false;
        assert_eq!(validate(&kp, &ctx), Ok(()));
    }

    #[test]
    fn init_key_equals_encryption_key() {
        assert_eq!(
            mutated(|kp| kp.init_key = kp.leaf_node.encryption_key.clone()),
            Err(E::InitKeyEqualsEncryptionKey)
        );
    }

    #[test]
    fn invalid_key_package_signature() {
        let (bundle, _) = bundle(suite(1));
        let mut kp = bundle.key_package;
        kp.init_key =
            HpkePublicKey::from(suite(1).hpke_derive_key_pair(&[3; 32]).unwrap().public_key);
        let provider = BasicIdentityProvider::new();
        let ctx = KeyPackageValidationContext::new(LeafNodeValidationContext::new(&provider, NOW));
        assert!(matches!(validate(&kp, &ctx), Err(E::InvalidSignature(_))));
    }

    #[test]
    fn invalid_leaf_node() {
        let (bundle, _) = bundle(suite(1));
        let provider = BasicIdentityProvider::new();
        let leaf_ctx = LeafNodeValidationContext::new(&provider, NOW + 11);
        let ctx = KeyPackageValidationContext::new(leaf_ctx);
        assert_eq!(
            validate(&bundle.key_package, &ctx),
            Err(E::LeafNode(LeafNodeValidationError::LifetimeExpired {
                not_after: NOW + 10,
                now: NOW + 11
            }))
        );
        let ctx =
            KeyPackageValidationContext::new(leaf_ctx.with_lifetime_check(LifetimeCheck::Skip));
        assert_eq!(validate(&bundle.key_package, &ctx), Ok(()));
        // The leaf of a KeyPackage must have source key_package.
        let (bundle, sig) = self::bundle(suite(1));
        let mut kp = bundle.key_package;
        kp.leaf_node.leaf_node_source = crate::codec::LeafNodeSource::Update;
        kp.leaf_node
            .sign(suite(1), &sig.private_key, b"g", 0)
            .unwrap();
        kp.sign(suite(1), &sig.private_key).unwrap();
        let ctx = KeyPackageValidationContext::new(LeafNodeValidationContext::new(&provider, NOW));
        assert!(matches!(
            validate(&kp, &ctx),
            Err(E::LeafNode(
                LeafNodeValidationError::WrongLeafNodeSource { .. }
            ))
        ));
    }
}
