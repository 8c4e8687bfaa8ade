//! Drives OpenMLS 0.9.2, built with `extensions-draft`, for the safe-exporter checks: one
//! client with its provider, a group it creates, Adds with Welcomes, self updates, Commits
//! from others, `MlsGroup::safe_export_secret`, and the root of its stored Exporter Tree.
//!
//! Everything panics on failure: a failure is a failed test.

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{
    BasicCredential, Ciphersuite, CredentialWithKey, KeyPackage, LeafNodeParameters, MlsGroup,
    MlsMessageBodyIn, MlsMessageIn, MlsMessageOut, ProcessedMessageContent, ProtocolVersion,
    MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::storage::{traits, Entity, StorageProvider as _, CURRENT_VERSION};
use openmls_traits::OpenMlsProvider as _;
use serde::{Deserialize, Serialize};

/// The OpenMLS cipher suite with IANA value `suite`.
pub fn ciphersuite(suite: u16) -> Ciphersuite {
    Ciphersuite::try_from(suite).expect("OpenMLS knows the cipher suite")
}

fn to_bytes(message: &MlsMessageOut) -> Vec<u8> {
    message.to_bytes().expect("OpenMLS encodes its message")
}

/// One OpenMLS client: provider (crypto + in-memory storage), signature key, credential.
pub struct OpenMlsClient {
    /// Crypto and storage; holds the client's groups and its Exporter Trees.
    pub provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    ciphersuite: Ciphersuite,
}

/// The Commit and Welcome of an OpenMLS Add.
pub struct AddOutput {
    /// The Commit `MLSMessage`.
    pub commit: Vec<u8>,
    /// The Welcome `MLSMessage`.
    pub welcome: Vec<u8>,
}

impl OpenMlsClient {
    /// A client with basic credential `identity` and a fresh signature key for `suite`.
    pub fn new(identity: &[u8], suite: u16) -> Self {
        let provider = OpenMlsRustCrypto::default();
        let ciphersuite = ciphersuite(suite);
        let signer = SignatureKeyPair::new(ciphersuite.signature_algorithm())
            .expect("OpenMLS generates a signature key");
        signer
            .store(provider.storage())
            .expect("OpenMLS stores the signature key");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Self {
            provider,
            signer,
            credential,
            ciphersuite,
        }
    }

    /// A one-member group: ratchet tree in Welcomes, handshakes as PublicMessages.
    pub fn create_group(&self) -> MlsGroup {
        MlsGroup::builder()
            .ciphersuite(self.ciphersuite)
            .use_ratchet_tree_extension(true)
            .with_wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .build(&self.provider, &self.signer, self.credential.clone())
            .expect("OpenMLS creates the group")
    }

    /// Validates a KeyPackage given as an encoded `MLSMessage`.
    pub fn validate_key_package(&self, mls_message: &[u8]) -> KeyPackage {
        let message =
            MlsMessageIn::tls_deserialize_exact(mls_message).expect("OpenMLS decodes the message");
        let MlsMessageBodyIn::KeyPackage(key_package_in) = message.extract() else {
            panic!("the message is not a KeyPackage");
        };
        key_package_in
            .validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .expect("OpenMLS accepts the KeyPackage")
    }

    /// Commits Adds of the encoded KeyPackage `MLSMessage`s and merges the commit.
    pub fn add(&self, group: &mut MlsGroup, key_packages: &[Vec<u8>]) -> AddOutput {
        let key_packages: Vec<KeyPackage> = key_packages
            .iter()
            .map(|bytes| self.validate_key_package(bytes))
            .collect();
        let (commit, welcome, _group_info) = group
            .add_members(&self.provider, &self.signer, &key_packages)
            .expect("OpenMLS commits the Adds");
        group
            .merge_pending_commit(&self.provider)
            .expect("OpenMLS merges its own commit");
        AddOutput {
            commit: to_bytes(&commit),
            welcome: to_bytes(&welcome),
        }
    }

    /// Commits a full-path self update, merges it, and returns the Commit.
    pub fn self_update(&self, group: &mut MlsGroup) -> Vec<u8> {
        let bundle = group
            .self_update(&self.provider, &self.signer, LeafNodeParameters::default())
            .expect("OpenMLS commits the update");
        let (commit, _welcome, _group_info) = bundle.into_contents();
        group
            .merge_pending_commit(&self.provider)
            .expect("OpenMLS merges its own commit");
        to_bytes(&commit)
    }

    /// Processes an encoded Commit `MLSMessage` from another member and merges it.
    pub fn process_commit(&self, group: &mut MlsGroup, message: &[u8]) {
        let message =
            MlsMessageIn::tls_deserialize_exact(message).expect("OpenMLS decodes the message");
        let protocol_message = message
            .try_into_protocol_message()
            .expect("the message is a PublicMessage or PrivateMessage");
        let processed = group
            .process_message(&self.provider, protocol_message)
            .expect("OpenMLS accepts the message");
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            panic!("the message is not a Commit");
        };
        group
            .merge_staged_commit(&self.provider, *staged)
            .expect("OpenMLS merges the commit");
    }

    /// `MlsGroup::safe_export_secret(component_id)`: OpenMLS's SafeExportSecret, or its
    /// refusal as text.
    pub fn safe_export_secret(
        &self,
        group: &mut MlsGroup,
        component_id: u16,
    ) -> Result<Vec<u8>, String> {
        group
            .safe_export_secret(
                self.provider.crypto(),
                self.provider.storage(),
                component_id,
            )
            .map_err(|e| format!("{e:?}"))
    }

    /// The epoch authenticator of the group's current epoch.
    pub fn epoch_authenticator(group: &MlsGroup) -> Vec<u8> {
        group.epoch_authenticator().as_slice().to_vec()
    }

    /// The root of OpenMLS's Exporter Tree for `group` as it is stored, i.e. OpenMLS's
    /// `application_export_secret`, while no SafeExportSecret has been taken in the epoch
    /// (the first evaluation removes the root node and keeps only copath nodes).
    ///
    /// OpenMLS has no accessor for this secret on a group, so it is read through the
    /// public `StorageProvider::application_export_tree` with our own serde view of the
    /// stored tree: `{ "nodes": [[[prefix_bits, prefix_len], secret_bytes], ...], ... }`
    /// (OpenMLS 0.9.2 `src/schedule/pprf/mod.rs`, `Pprf` and `PprfNode`). The root is the
    /// node with the empty prefix (`prefix_len == 0`). `None` when the root is gone.
    pub fn stored_exporter_tree_root(&self, group: &MlsGroup) -> Option<Vec<u8>> {
        let tree: Option<StoredExporterTree> = self
            .provider
            .storage()
            .application_export_tree(group.group_id())
            .expect("OpenMLS storage answers");
        let tree = tree.expect("OpenMLS stored an Exporter Tree for the group");
        let nodes = tree.0["nodes"]
            .as_array()
            .expect("the stored tree has a node list");
        nodes.iter().find_map(|entry| {
            let prefix = &entry[0];
            (prefix[1].as_u64() == Some(0)).then(|| {
                entry[1]
                    .as_array()
                    .expect("a node secret is a byte array")
                    .iter()
                    .map(|b| u8::try_from(b.as_u64().expect("a byte")).expect("a byte"))
                    .collect()
            })
        })
    }

    /// How many nodes OpenMLS's stored Exporter Tree holds (1 before any evaluation; 16
    /// copath nodes after the first evaluation of a 16-level tree).
    pub fn stored_exporter_tree_node_count(&self, group: &MlsGroup) -> usize {
        let tree: Option<StoredExporterTree> = self
            .provider
            .storage()
            .application_export_tree(group.group_id())
            .expect("OpenMLS storage answers");
        tree.expect("OpenMLS stored an Exporter Tree for the group")
            .0["nodes"]
            .as_array()
            .expect("the stored tree has a node list")
            .len()
    }
}

/// Our read-only view of the Exporter Tree OpenMLS stores (any JSON value).
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct StoredExporterTree(serde_json::Value);

impl Entity<CURRENT_VERSION> for StoredExporterTree {}
impl traits::ApplicationExportTree<CURRENT_VERSION> for StoredExporterTree {}
