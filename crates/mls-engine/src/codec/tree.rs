//! Ratchet-tree wire structs (RFC 9420 §7): LeafNode, ParentNode, Node, UpdatePath.

use tls_codec::{
    Serialize as _, TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLByteSlice,
    VLBytes,
};

use super::{CipherSuite, CodecError, Credential, CredentialType, Extension, ExtensionType};
use super::{ProposalType, ProtocolVersion};
use crate::crypto::{CryptoError, MlsCrypto as _, SignaturePrivateKey, SuiteProvider};

macro_rules! public_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
        pub struct $name(pub VLBytes);

        impl $name {
            /// The key bytes.
            pub fn as_slice(&self) -> &[u8] {
                self.0.as_slice()
            }
        }

        impl From<Vec<u8>> for $name {
            fn from(bytes: Vec<u8>) -> Self {
                Self(VLBytes::new(bytes))
            }
        }
    };
}

public_key!(
    /// `opaque HPKEPublicKey<V>` (§5.1.1).
    HpkePublicKey
);
public_key!(
    /// `opaque SignaturePublicKey<V>` (§5.1.1).
    SignaturePublicKey
);

/// `Capabilities` (§7.2): what a client supports.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Capabilities {
    /// Supported protocol versions.
    pub versions: Vec<ProtocolVersion>,
    /// Supported cipher suites.
    pub cipher_suites: Vec<CipherSuite>,
    /// Supported non-default extension types.
    pub extensions: Vec<ExtensionType>,
    /// Supported non-default proposal types.
    pub proposals: Vec<ProposalType>,
    /// Supported credential types.
    pub credentials: Vec<CredentialType>,
}

/// `Lifetime` (§7.2): validity of a KeyPackage's leaf, in seconds since the Unix epoch.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Lifetime {
    /// Not valid before this time.
    pub not_before: u64,
    /// Not valid after this time.
    pub not_after: u64,
}

/// `LeafNodeSource` with the `select` that follows it in a LeafNode (§7.2).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub enum LeafNodeSource {
    /// `key_package`: the leaf came in a KeyPackage, with its lifetime.
    #[tls_codec(discriminant = 1)]
    KeyPackage(Lifetime),
    /// `update`: the leaf came in an Update proposal.
    #[tls_codec(discriminant = 2)]
    Update,
    /// `commit`: the leaf came in a Commit's UpdatePath, with its parent hash.
    #[tls_codec(discriminant = 3)]
    Commit(VLBytes),
}

/// `LeafNode` (§7.2).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct LeafNode {
    /// The leaf's HPKE public key.
    pub encryption_key: HpkePublicKey,
    /// The leaf's signature public key.
    pub signature_key: SignaturePublicKey,
    /// The member's credential.
    pub credential: Credential,
    /// What the member supports.
    pub capabilities: Capabilities,
    /// Where the leaf came from, with its source-specific field.
    pub leaf_node_source: LeafNodeSource,
    /// Leaf extensions.
    pub extensions: Vec<Extension>,
    /// `SignWithLabel(., "LeafNodeTBS", LeafNodeTBS)`.
    pub signature: VLBytes,
}

/// The label of a LeafNode signature.
pub const LEAF_NODE_TBS_LABEL: &str = "LeafNodeTBS";

impl LeafNode {
    /// The encoded `LeafNodeTBS` (§7.2). `group_id` and `leaf_index` are required for the
    /// `update` and `commit` sources and ignored for `key_package`.
    pub fn to_be_signed(&self, group_id: &[u8], leaf_index: u32) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.encryption_key.tls_serialize(&mut out)?;
        self.signature_key.tls_serialize(&mut out)?;
        self.credential.tls_serialize(&mut out)?;
        self.capabilities.tls_serialize(&mut out)?;
        self.leaf_node_source.tls_serialize(&mut out)?;
        self.extensions.tls_serialize(&mut out)?;
        if !matches!(self.leaf_node_source, LeafNodeSource::KeyPackage(_)) {
            VLByteSlice(group_id).tls_serialize(&mut out)?;
            leaf_index.tls_serialize(&mut out)?;
        }
        Ok(out)
    }

    /// Signs the leaf in place with `signature_private_key` (`group_id`, `leaf_index` as for
    /// [`Self::to_be_signed`]).
    pub fn sign(
        &mut self,
        suite: &dyn SuiteProvider,
        signature_private_key: &SignaturePrivateKey,
        group_id: &[u8],
        leaf_index: u32,
    ) -> Result<(), LeafSignatureError> {
        let tbs = self.to_be_signed(group_id, leaf_index)?;
        let signature = suite.sign_with_label(signature_private_key, LEAF_NODE_TBS_LABEL, &tbs)?;
        self.signature = VLBytes::new(signature);
        Ok(())
    }

    /// Verifies the leaf's signature under its own `signature_key`.
    pub fn verify_signature(
        &self,
        suite: &dyn SuiteProvider,
        group_id: &[u8],
        leaf_index: u32,
    ) -> Result<(), LeafSignatureError> {
        let tbs = self.to_be_signed(group_id, leaf_index)?;
        suite.verify_with_label(
            self.signature_key.as_slice(),
            LEAF_NODE_TBS_LABEL,
            &tbs,
            self.signature.as_slice(),
        )?;
        Ok(())
    }

    /// The parent hash of a `commit`-sourced leaf.
    pub fn parent_hash(&self) -> Option<&[u8]> {
        match &self.leaf_node_source {
            LeafNodeSource::Commit(parent_hash) => Some(parent_hash.as_slice()),
            _ => None,
        }
    }
}

/// Why a signature over a LeafNode or KeyPackage could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafSignatureError {
    /// The to-be-signed structure could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Signing failed or the signature is invalid.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<tls_codec::Error> for LeafSignatureError {
    fn from(e: tls_codec::Error) -> Self {
        LeafSignatureError::Codec(e.into())
    }
}

/// `ParentNode` (§7.1).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ParentNode {
    /// The node's HPKE public key.
    pub encryption_key: HpkePublicKey,
    /// The parent hash (§7.9).
    pub parent_hash: VLBytes,
    /// Leaves added below this node since it was last set, in ascending order.
    pub unmerged_leaves: Vec<u32>,
}

/// `Node` (§7.8 / §12.4.3.3): a leaf or a parent.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
// Half the nodes of a tree are leaves; boxing them would add an allocation per leaf.
#[allow(clippy::large_enum_variant)]
pub enum Node {
    /// `leaf`.
    #[tls_codec(discriminant = 1)]
    Leaf(LeafNode),
    /// `parent`.
    #[tls_codec(discriminant = 2)]
    Parent(ParentNode),
}

impl Node {
    /// The node's HPKE public key.
    pub fn encryption_key(&self) -> &HpkePublicKey {
        match self {
            Node::Leaf(leaf) => &leaf.encryption_key,
            Node::Parent(parent) => &parent.encryption_key,
        }
    }
}

/// `HPKECiphertext` (§7.6).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct HpkeCiphertext {
    /// The HPKE encapsulation.
    pub kem_output: VLBytes,
    /// The AEAD ciphertext.
    pub ciphertext: VLBytes,
}

/// `UpdatePathNode` (§7.6).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct UpdatePathNode {
    /// The node's new HPKE public key.
    pub encryption_key: HpkePublicKey,
    /// The node's path secret, encrypted to each node of the copath child's resolution.
    pub encrypted_path_secret: Vec<HpkeCiphertext>,
}

/// `UpdatePath` (§7.6).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct UpdatePath {
    /// The committer's new leaf.
    pub leaf_node: LeafNode,
    /// One node per entry of the committer's filtered direct path.
    pub nodes: Vec<UpdatePathNode>,
}
