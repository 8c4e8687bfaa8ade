//! The mls-engine side of the group-level interop tests: a [`VmlsClient`] drives one
//! `mls_engine::group::Group` the way [`crate::harness::OpenMlsClient`] drives an OpenMLS
//! group, with every message in and out as the bytes of an `MLSMessage`.
//!
//! Operations that the tests expect to succeed panic on failure (a failed test);
//! [`VmlsClient::try_process`] and [`VmlsClient::try_join`] return the engine's error.

use mls_engine::codec::{
    Credential, Extension, ExtensionType, KeyPackage, Lifetime, MlsMessage, MlsMessageBody,
    PreSharedKeyID, Proposal, WireFormat,
};
use mls_engine::crypto::{CipherSuite, RustCrypto, Secret, SignatureKeyPair};
use mls_engine::group::{
    CommitOptions, ExternalCommitOptions, ExternalPskMap, Group, GroupConfig, GroupError,
    HandshakeWireFormat, OwnLeaf, ProcessedMessage, Services,
};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};
use mls_engine::tree::{LeafIndex, RatchetTree};

use crate::engine::{now, suite};
use crate::harness::{View, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LENGTH};

static CRYPTO: RustCrypto = RustCrypto;

/// The engine's services for the tests: its RustCrypto provider, basic credentials, no PSKs.
pub fn services() -> Services<'static> {
    Services::new(&CRYPTO)
}

/// The engine's encoding of `message`.
pub fn encode(message: &MlsMessage) -> Vec<u8> {
    message.to_bytes().expect("the engine encodes its message")
}

/// The wire format of an encoded `MLSMessage` (decoded with the engine's codec).
pub fn wire_format(message: &[u8]) -> WireFormat {
    MlsMessage::decode(message)
        .expect("the engine decodes the MLSMessage")
        .wire_format()
}

/// One mls-engine client: its signature key, credential, group policy, KeyPackages waiting
/// for a Welcome, and (once created or joined) its group.
pub struct VmlsClient {
    /// The basic credential's identity.
    pub identity: Vec<u8>,
    /// The cipher suite (IANA value).
    pub suite: u16,
    /// The signature key pair of the client's leaf.
    pub signature_key: SignatureKeyPair,
    /// The policy of the groups it creates or joins.
    pub config: GroupConfig,
    /// KeyPackages published and not yet used.
    pub key_packages: Vec<KeyPackageBundle>,
    /// The group, once created or joined.
    pub group: Option<Group>,
    /// External PSKs the client holds.
    pub psks: ExternalPskMap,
    /// Non-default extension types its leaves list in their capabilities.
    pub capability_extensions: Vec<ExtensionType>,
}

impl VmlsClient {
    /// A client with a basic credential `identity` and a fresh signature key for `suite`,
    /// sending handshake messages as PublicMessages, keeping two past epochs' secrets for late
    /// application messages.
    pub fn new(identity: &[u8], suite_id: u16) -> Self {
        let signature_key = suite(suite_id)
            .signature_generate_key_pair()
            .expect("the engine generates a signature key");
        Self {
            identity: identity.to_vec(),
            suite: suite_id,
            signature_key,
            config: GroupConfig {
                max_past_epochs: 2,
                ..GroupConfig::default()
            },
            key_packages: Vec::new(),
            group: None,
            psks: ExternalPskMap::default(),
            capability_extensions: Vec::new(),
        }
    }

    /// The same client sending its handshake messages as `wire_format`.
    /// With PrivateMessage handshakes, messages are padded to a multiple of 32 octets.
    pub fn with_handshakes(mut self, wire_format: HandshakeWireFormat) -> Self {
        self.config.handshake_wire_format = wire_format;
        if wire_format == HandshakeWireFormat::Private {
            self.config.padding_block = 32;
        }
        self
    }

    /// Stores the external PSK `psk_id` with value `secret`.
    pub fn store_external_psk(&mut self, psk_id: &[u8], secret: &[u8]) {
        self.psks
            .psks
            .push((psk_id.to_vec(), Secret::new(secret.to_vec())));
    }

    /// The group (panics if the client has none).
    pub fn group(&self) -> &Group {
        self.group.as_ref().expect("the vmls client is in a group")
    }

    fn group_mut(&mut self) -> &mut Group {
        self.group.as_mut().expect("the vmls client is in a group")
    }

    /// The default leaf parameters: basic credential, default capabilities.
    pub fn leaf_params(&self) -> LeafNodeParams {
        LeafNodeParams::new(
            CipherSuite(self.suite),
            Credential::basic(self.identity.clone()),
        )
        .supported_extension_types(self.capability_extensions.iter().copied())
    }

    fn lifetime() -> Lifetime {
        let now = now();
        Lifetime {
            not_before: now - 3600,
            not_after: now + 30 * 24 * 3600,
        }
    }

    fn own_leaf(&self) -> OwnLeaf {
        OwnLeaf {
            params: self.leaf_params(),
            encryption_key: HpkeKeySource::Generate,
            signature_key: self.signature_key.clone(),
        }
    }

    /// A fresh KeyPackage as an encoded `MLSMessage`; its private keys are kept for the
    /// Welcome.
    pub fn key_package(&mut self) -> Vec<u8> {
        let leaf = self.leaf_params();
        self.key_package_with(leaf)
    }

    /// A fresh KeyPackage with the leaf parameters `leaf` (capabilities, extensions).
    pub fn key_package_with(&mut self, leaf: LeafNodeParams) -> Vec<u8> {
        let bundle = KeyPackageParams::new(
            CipherSuite(self.suite),
            Credential::basic(self.identity.clone()),
            Self::lifetime(),
        )
        .with_leaf(leaf)
        .build_fresh(suite(self.suite), &self.signature_key)
        .expect("the engine builds a KeyPackage");
        let message = MlsMessage::new(MlsMessageBody::KeyPackage(bundle.key_package.clone()));
        self.key_packages.push(bundle);
        encode(&message)
    }

    /// Creates a one-member group with `group_id`.
    pub fn create_group(&mut self, group_id: &[u8]) {
        self.create_group_with(group_id, Vec::new());
    }

    /// Creates a one-member group with `group_id` and GroupContext `extensions`.
    pub fn create_group_with(&mut self, group_id: &[u8], extensions: Vec<Extension>) {
        let group = Group::create(
            &services(),
            self.config,
            group_id.to_vec(),
            CipherSuite(self.suite),
            self.own_leaf(),
            Self::lifetime(),
            extensions,
        )
        .expect("the engine creates the group");
        self.group = Some(group);
    }

    /// Tries to commit Adds of the encoded KeyPackages; on success merges and returns the
    /// Commit and Welcome, otherwise the engine's refusal (the group unchanged).
    pub fn try_add(&mut self, key_packages: &[Vec<u8>]) -> Result<(Vec<u8>, Vec<u8>), GroupError> {
        let mut options = CommitOptions::new();
        for bytes in key_packages {
            options = options.proposal(Proposal::add(decode_key_package(bytes)));
        }
        let psks = self.psks.clone();
        let services = services().with_psks(&psks);
        let group = self.group_mut();
        let output = group.commit(&services, options, now())?;
        group.merge_pending_commit()?;
        let welcome = output.welcome.expect("an Add commit has a Welcome");
        Ok((
            encode(&output.commit),
            encode(&MlsMessage::new(MlsMessageBody::Welcome(welcome))),
        ))
    }

    /// Joins from an encoded Welcome (tree from its GroupInfo, else `ratchet_tree`, an
    /// encoded `optional<Node> ratchet_tree<V>`) with whichever of our KeyPackages it is for.
    pub fn try_join(
        &mut self,
        welcome: &[u8],
        ratchet_tree: Option<&[u8]>,
    ) -> Result<(), GroupError> {
        let message = MlsMessage::decode(welcome).expect("the engine decodes the Welcome");
        let MlsMessageBody::Welcome(welcome) = message.body else {
            panic!("the message is not a Welcome");
        };
        let tree = ratchet_tree
            .map(|bytes| RatchetTree::decode(bytes).expect("the engine decodes the tree"));
        let position = self
            .key_packages
            .iter()
            .position(|kp| welcome.secrets.iter().any(|s| s.new_member == kp.reference))
            .expect("the Welcome is for one of our KeyPackages");
        let psks = self.psks.clone();
        let group = Group::join_from_welcome(
            &services().with_psks(&psks),
            self.config,
            &welcome,
            &self.key_packages[position],
            self.signature_key.clone(),
            tree,
            now(),
        )?;
        self.key_packages.remove(position);
        self.group = Some(group);
        Ok(())
    }

    /// [`Self::try_join`], panicking on refusal.
    pub fn join(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>) {
        self.try_join(welcome, ratchet_tree)
            .expect("the engine joins from the Welcome");
    }

    /// Commits with `options`, merges the commit at once, and returns the Commit and the
    /// Welcome (if it adds members).
    pub fn commit(&mut self, options: CommitOptions) -> (Vec<u8>, Option<Vec<u8>>) {
        let psks = self.psks.clone();
        let services = services().with_psks(&psks);
        let group = self.group_mut();
        let output = group
            .commit(&services, options, now())
            .expect("the engine creates the commit");
        group
            .merge_pending_commit()
            .expect("the engine merges its own commit");
        let welcome = output
            .welcome
            .map(|w| encode(&MlsMessage::new(MlsMessageBody::Welcome(w))));
        (encode(&output.commit), welcome)
    }

    /// Commits Adds (by value) of the encoded KeyPackage `MLSMessage`s, with the
    /// `ratchet_tree` extension in the Welcome's GroupInfo if `tree_in_welcome`.
    pub fn add(&mut self, key_packages: &[Vec<u8>], tree_in_welcome: bool) -> (Vec<u8>, Vec<u8>) {
        let mut options = CommitOptions::new();
        for bytes in key_packages {
            options = options.proposal(Proposal::add(decode_key_package(bytes)));
        }
        options.ratchet_tree_in_welcome = Some(tree_in_welcome);
        let (commit, welcome) = self.commit(options);
        (commit, welcome.expect("an Add commit has a Welcome"))
    }

    /// Commits, in one Commit: the pending proposals by reference, Adds of the encoded
    /// KeyPackages and Removes of `removed` by value, with an UpdatePath if `force_path` or
    /// required.
    pub fn commit_with(
        &mut self,
        key_packages: &[Vec<u8>],
        removed: &[u32],
        force_path: bool,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut options = CommitOptions::new();
        for bytes in key_packages {
            options = options.proposal(Proposal::add(decode_key_package(bytes)));
        }
        for &leaf in removed {
            options = options.proposal(Proposal::remove(leaf));
        }
        options.force_path = force_path;
        self.commit(options)
    }

    /// Commits Removes (by value) of the members at `leaves`.
    pub fn remove(&mut self, leaves: &[u32]) -> Vec<u8> {
        let mut options = CommitOptions::new();
        for &leaf in leaves {
            options = options.proposal(Proposal::remove(leaf));
        }
        let (commit, welcome) = self.commit(options);
        assert!(welcome.is_none(), "a remove-only commit has no Welcome");
        commit
    }

    /// Commits a full-path self update (no proposals).
    pub fn self_update(&mut self) -> Vec<u8> {
        let mut options = CommitOptions::new().with_path();
        options.include_pending = false;
        self.commit(options).0
    }

    /// Commits every pending proposal by reference (with a path if required).
    pub fn commit_pending(&mut self) -> (Vec<u8>, Option<Vec<u8>>) {
        self.commit(CommitOptions::new())
    }

    /// Sends an Update proposal for our leaf (fresh encryption key).
    pub fn propose_update(&mut self) -> Vec<u8> {
        let psks = self.psks.clone();
        let services = services().with_psks(&psks);
        let (message, _reference) = self
            .group_mut()
            .propose_update(&services, HpkeKeySource::Generate, None)
            .expect("the engine proposes the update");
        encode(&message)
    }

    /// Sends a Remove proposal for `leaf`.
    pub fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        let psks = self.psks.clone();
        let services = services().with_psks(&psks);
        let (message, _reference) = self
            .group_mut()
            .propose_remove(&services, LeafIndex(leaf))
            .expect("the engine proposes the removal");
        encode(&message)
    }

    /// Sends a PreSharedKey proposal for `psk`.
    pub fn propose_psk(&mut self, psk: PreSharedKeyID) -> Vec<u8> {
        let psks = self.psks.clone();
        let services = services().with_psks(&psks);
        let (message, _reference) = self
            .group_mut()
            .propose_psk(&services, psk)
            .expect("the engine proposes the PSK");
        encode(&message)
    }

    /// Sends an Add proposal for the encoded KeyPackage `MLSMessage`.
    pub fn propose_add(&mut self, key_package: &[u8]) -> Vec<u8> {
        let psks = self.psks.clone();
        let services = services().with_psks(&psks);
        let (message, _reference) = self
            .group_mut()
            .propose_add(&services, decode_key_package(key_package))
            .expect("the engine proposes the add");
        encode(&message)
    }

    /// Encrypts application data (a PrivateMessage).
    pub fn send_application(&mut self, data: &[u8]) -> Vec<u8> {
        let psks = self.psks.clone();
        let services = services().with_psks(&psks);
        let message = self
            .group_mut()
            .encrypt_application(&services, data, &[])
            .expect("the engine encrypts the application message");
        encode(&message)
    }

    /// Processes an encoded `MLSMessage` (a commit is applied at once).
    pub fn try_process(&mut self, message: &[u8]) -> Result<ProcessedMessage, GroupError> {
        let message = MlsMessage::decode(message).expect("the engine decodes the message");
        let psks = self.psks.clone();
        let services = services().with_psks(&psks);
        self.group_mut().process(&services, &message, now())
    }

    /// A signed GroupInfo of the current epoch with `external_pub` (and the `ratchet_tree`
    /// extension if `with_ratchet_tree`), as an encoded `MLSMessage`.
    pub fn group_info(&self, with_ratchet_tree: bool) -> Vec<u8> {
        let info = self
            .group()
            .group_info(&services(), with_ratchet_tree, true)
            .expect("the engine signs a GroupInfo");
        encode(&MlsMessage::new(MlsMessageBody::GroupInfo(info)))
    }

    /// The encoded ratchet tree of the current epoch.
    pub fn ratchet_tree(&self) -> Vec<u8> {
        self.group()
            .ratchet_tree()
            .encode()
            .expect("the engine encodes its tree")
    }

    /// Joins by external commit from an encoded GroupInfo `MLSMessage`, the tree from its
    /// extension or `ratchet_tree`; with `resync_remove`, also removes that (old) leaf of
    /// ours. Returns the Commit.
    pub fn join_by_external_commit(
        &mut self,
        group_info: &[u8],
        ratchet_tree: Option<&[u8]>,
        resync_remove: Option<u32>,
    ) -> Vec<u8> {
        let message = MlsMessage::decode(group_info).expect("the engine decodes the GroupInfo");
        let MlsMessageBody::GroupInfo(info) = message.body else {
            panic!("the message is not a GroupInfo");
        };
        let tree = ratchet_tree
            .map(|bytes| RatchetTree::decode(bytes).expect("the engine decodes the tree"));
        let options = ExternalCommitOptions {
            resync_remove: resync_remove.map(LeafIndex),
            ..ExternalCommitOptions::default()
        };
        let psks = self.psks.clone();
        let (group, commit) = Group::join_by_external_commit(
            &services().with_psks(&psks),
            self.config,
            &info,
            tree,
            self.own_leaf(),
            options,
            now(),
        )
        .expect("the engine joins by external commit");
        self.group = Some(group);
        encode(&commit)
    }

    /// Our leaf index.
    pub fn leaf(&self) -> u32 {
        self.group().own_leaf_index().0
    }

    /// This member's view of the group for the agreement checks.
    pub fn view(&self) -> View {
        let group = self.group();
        let context = group.group_context();
        View {
            epoch: group.epoch(),
            exporter: group
                .export_secret(
                    &services(),
                    EXPORTER_LABEL,
                    EXPORTER_CONTEXT,
                    EXPORTER_LENGTH,
                )
                .expect("the engine exports a secret")
                .as_bytes()
                .to_vec(),
            epoch_authenticator: group.epoch_authenticator().to_vec(),
            tree_hash: context.tree_hash.as_slice().to_vec(),
            confirmed_transcript_hash: context.confirmed_transcript_hash.as_slice().to_vec(),
            leaves: group.members().iter().map(|m| m.index.0).collect(),
        }
    }
}

/// The engine's KeyPackage in an encoded KeyPackage `MLSMessage`.
pub fn decode_key_package(bytes: &[u8]) -> KeyPackage {
    let message = MlsMessage::decode(bytes).expect("the engine decodes the KeyPackage");
    let MlsMessageBody::KeyPackage(key_package) = message.body else {
        panic!("the message is not a KeyPackage");
    };
    key_package
}
