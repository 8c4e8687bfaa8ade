//! The mls-engine side of the interop tests: values built from the engine's codec structs and
//! crypto provider, with the private keys kept so later steps can use them.

use std::time::{SystemTime, UNIX_EPOCH};

use mls_engine::codec::{
    self, Capabilities, Credential, Extension, ExtensionType, HpkePublicKey, KeyPackage, LeafNode,
    LeafNodeSource, Lifetime, MlsMessage, MlsMessageBody, ProtocolVersion, SignaturePublicKey,
    VLBytes,
};
use mls_engine::codec::{ExtensionList as _, GroupInfo, KeyPackageRef, PathSecret, Welcome};
use mls_engine::crypto::{
    CipherSuite, CryptoProvider as _, HpkePrivateKey, RustCrypto, SignaturePrivateKey,
    SuiteProvider,
};
use mls_engine::schedule::EpochSecrets;
use mls_engine::tree::{LeafIndex, RatchetTree};
use mls_engine::welcome::{process_welcome, WelcomeError};

/// The engine's implementation of cipher suite `suite`.
pub fn suite(suite: u16) -> &'static dyn SuiteProvider {
    static PROVIDER: RustCrypto = RustCrypto;
    PROVIDER
        .suite(CipherSuite(suite))
        .expect("mls-engine implements the suite")
}

/// Seconds since the Unix epoch (tests only: the engine itself never reads a clock).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// What goes into an engine-built KeyPackage beyond the defaults.
#[derive(Clone, Debug, Default)]
pub struct KeyPackageOptions {
    /// Extra LeafNode extensions.
    pub leaf_extensions: Vec<Extension>,
    /// KeyPackage extensions.
    pub key_package_extensions: Vec<Extension>,
    /// Non-default extension types to list in the leaf's capabilities.
    pub capability_extensions: Vec<ExtensionType>,
}

/// A KeyPackage built by mls-engine, with its private keys.
#[derive(Debug)]
pub struct EngineKeyPackage {
    /// The signed KeyPackage.
    pub key_package: KeyPackage,
    /// The private key of `init_key` (opens the Welcome).
    pub init_private_key: HpkePrivateKey,
    /// The private key of the leaf's `encryption_key`.
    pub encryption_private_key: HpkePrivateKey,
    /// The private key of the leaf's `signature_key`.
    pub signature_private_key: SignaturePrivateKey,
}

impl EngineKeyPackage {
    /// Builds and signs a KeyPackage for `suite_id` with a basic credential `identity`, fresh
    /// HPKE and signature keys, a lifetime of one hour back to one week ahead, and `options`.
    pub fn build(suite_id: u16, identity: &[u8], options: KeyPackageOptions) -> Self {
        let suite = suite(suite_id);
        let init = suite.hpke_generate_key_pair().expect("HPKE key pair");
        let encryption = suite.hpke_generate_key_pair().expect("HPKE key pair");
        let signature = suite
            .signature_generate_key_pair()
            .expect("signature key pair");
        let now = now();
        let mut leaf_node = LeafNode {
            encryption_key: HpkePublicKey::from(encryption.public_key),
            signature_key: SignaturePublicKey::from(signature.public_key),
            credential: Credential::basic(identity),
            capabilities: Capabilities {
                versions: vec![ProtocolVersion::MLS10],
                cipher_suites: vec![CipherSuite(suite_id)],
                extensions: options.capability_extensions,
                proposals: vec![],
                credentials: vec![codec::CredentialType::BASIC],
            },
            leaf_node_source: LeafNodeSource::KeyPackage(Lifetime {
                not_before: now - 3600,
                not_after: now + 7 * 24 * 3600,
            }),
            extensions: options.leaf_extensions,
            signature: VLBytes::new(vec![]),
        };
        leaf_node
            .sign(suite, &signature.private_key, &[], 0)
            .expect("LeafNode signs");
        let mut key_package = KeyPackage {
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(suite_id),
            init_key: HpkePublicKey::from(init.public_key),
            leaf_node,
            extensions: options.key_package_extensions,
            signature: VLBytes::new(vec![]),
        };
        key_package
            .sign(suite, &signature.private_key)
            .expect("KeyPackage signs");
        Self {
            key_package,
            init_private_key: init.private_key,
            encryption_private_key: encryption.private_key,
            signature_private_key: signature.private_key,
        }
    }

    /// The KeyPackage as an encoded `MLSMessage` (`mls10`, `mls_key_package`).
    pub fn to_mls_message(&self) -> Vec<u8> {
        MlsMessage::new(MlsMessageBody::KeyPackage(self.key_package.clone()))
            .to_bytes()
            .expect("encodes")
    }

    /// `MakeKeyPackageRef` of the KeyPackage.
    pub fn reference(&self) -> Vec<u8> {
        self.key_package
            .reference(suite(self.key_package.cipher_suite.0))
            .expect("KeyPackageRef")
    }
}

/// Decodes an encoded `MLSMessage` strictly with the engine's codec and checks that it
/// re-encodes to the same bytes.
pub fn decode_mls_message(bytes: &[u8]) -> MlsMessage {
    let message = MlsMessage::decode(bytes).expect("the engine decodes the MLSMessage");
    assert_eq!(
        message.to_bytes().expect("encodes"),
        bytes,
        "re-encoding differs"
    );
    message
}

/// What a joiner learns from a Welcome: see [`EngineKeyPackage::open_welcome`].
#[derive(Debug)]
pub struct OpenedWelcome {
    /// The decrypted, signature- and confirmation-tag-checked GroupInfo.
    pub group_info: GroupInfo,
    /// The `path_secret` from the GroupSecrets, if the commit had a path.
    pub path_secret: Option<PathSecret>,
    /// The tree from the GroupInfo's `ratchet_tree` extension.
    pub tree: RatchetTree,
    /// Our leaf in that tree.
    pub own_leaf: LeafIndex,
    /// The secrets of the epoch joined.
    pub epoch_secrets: EpochSecrets,
}

/// The tree in a GroupInfo's `ratchet_tree` extension.
pub fn group_info_tree(group_info: &GroupInfo) -> RatchetTree {
    let extension = group_info
        .extensions
        .find(ExtensionType::RATCHET_TREE)
        .expect("the GroupInfo carries the ratchet tree");
    RatchetTree::decode(extension.extension_data.as_slice()).expect("the tree decodes")
}

impl EngineKeyPackage {
    /// Opens a Welcome addressed to this KeyPackage with `mls_engine::welcome::process_welcome`
    /// (RFC 9420 §12.4.3.1: GroupSecrets under the init key, GroupInfo under the welcome key,
    /// its signature under the signer's leaf in the `ratchet_tree` extension, the epoch
    /// secrets and the confirmation tag), then validates that tree (tree hash against the
    /// GroupContext, parent hashes, leaf signatures...) and finds our leaf. Returns the engine's refusal; panics if a check after it
    /// fails. PSKs are not supported here.
    pub fn open_welcome(&self, welcome: &Welcome) -> Result<OpenedWelcome, WelcomeError> {
        let cs = suite(self.key_package.cipher_suite.0);
        let contents = process_welcome(
            cs,
            welcome,
            &self.key_package,
            &KeyPackageRef::from(self.reference()),
            &self.init_private_key,
            |_psks| None,
            |group_info| {
                group_info_tree(group_info)
                    .leaf(LeafIndex(group_info.signer))
                    .map(|leaf| leaf.signature_key.as_slice().to_vec())
            },
        )?;
        assert!(contents.psks.is_empty(), "PSKs are not used here");
        let tree = group_info_tree(&contents.group_info);
        let context = &contents.group_info.group_context;
        tree.validate(
            cs,
            context.group_id.as_slice(),
            context.tree_hash.as_slice(),
        )
        .expect("the GroupInfo's tree passes the engine's validation");
        let own_leaf = tree
            .leaves()
            .find(|(_, leaf)| **leaf == self.key_package.leaf_node)
            .expect("our leaf is in the tree")
            .0;
        Ok(OpenedWelcome {
            group_info: contents.group_info,
            path_secret: contents.path_secret,
            tree,
            own_leaf,
            epoch_secrets: contents.epoch_secrets,
        })
    }
}
