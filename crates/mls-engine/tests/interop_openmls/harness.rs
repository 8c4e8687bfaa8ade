//! Small helpers that drive OpenMLS 0.9.2 (plain RFC 9420 API, `openmls_rust_crypto` provider)
//! so an interop test reads in a few lines: make a client, KeyPackages, a group; add, commit,
//! join, process; get every message out as the bytes of an `MLSMessage`.
//!
//! Everything here panics on failure: these are test helpers, and a failure is a failed test.

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    BasicCredential, Ciphersuite, CredentialWithKey, KeyPackage, KeyPackageBuilder,
    KeyPackageBundle, LeafNodeIndex, LeafNodeParameters, MlsGroup, MlsGroupBuilder,
    MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, MlsMessageOut, ProcessedMessageContent,
    ProtocolVersion, RatchetTreeIn, StagedWelcome, WireFormatPolicy,
    MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;

/// The cipher suites both OpenMLS's rust-crypto provider and mls-engine implement.
pub const SUITES: [u16; 3] = [1, 2, 3];

/// The OpenMLS cipher suite with IANA value `suite`.
pub fn ciphersuite(suite: u16) -> Ciphersuite {
    Ciphersuite::try_from(suite).expect("OpenMLS knows the cipher suite")
}

/// Encodes an OpenMLS `MlsMessageOut`.
pub fn to_bytes(message: &MlsMessageOut) -> Vec<u8> {
    message.to_bytes().expect("OpenMLS encodes its message")
}

/// What an OpenMLS member's Add commit produced, as encoded `MLSMessage`s.
#[derive(Debug)]
pub struct AddOutput {
    /// The Commit (PublicMessage or PrivateMessage, by the group's wire-format policy).
    pub commit: Vec<u8>,
    /// The Welcome for the added members.
    pub welcome: Vec<u8>,
    /// The new epoch's GroupInfo, when OpenMLS returned one.
    pub group_info: Option<Vec<u8>>,
}

/// One OpenMLS client: its provider (crypto + in-memory storage), signature key and credential.
pub struct OpenMlsClient {
    /// The client's OpenMLS provider; holds its key material and groups.
    pub provider: OpenMlsRustCrypto,
    /// The client's signature key pair.
    pub signer: SignatureKeyPair,
    /// Its basic credential with the signature public key.
    pub credential: CredentialWithKey,
    /// The cipher suite the client's signature key belongs to.
    pub ciphersuite: Ciphersuite,
}

impl OpenMlsClient {
    /// A client with a basic credential `identity` and a fresh signature key for `suite`.
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

    /// A KeyPackage with OpenMLS's defaults (stored, so a Welcome to it can be joined).
    pub fn key_package(&self) -> KeyPackageBundle {
        self.key_package_with(KeyPackage::builder())
    }

    /// A KeyPackage from a configured `builder` (extensions, capabilities, lifetime).
    pub fn key_package_with(&self, builder: KeyPackageBuilder) -> KeyPackageBundle {
        builder
            .build(
                self.ciphersuite,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .expect("OpenMLS builds the KeyPackage")
    }

    /// A group builder set up for interop: the client's suite, the `ratchet_tree` extension
    /// in Welcomes, handshake messages sent as PublicMessages and any wire format accepted.
    pub fn group_builder(&self) -> MlsGroupBuilder {
        MlsGroup::builder()
            .ciphersuite(self.ciphersuite)
            .use_ratchet_tree_extension(true)
            .with_wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
    }

    /// A new one-member group made with [`Self::group_builder`].
    pub fn create_group(&self) -> MlsGroup {
        self.create_group_with(self.group_builder())
    }

    /// A new one-member group made with `builder`.
    pub fn create_group_with(&self, builder: MlsGroupBuilder) -> MlsGroup {
        builder
            .build(&self.provider, &self.signer, self.credential.clone())
            .expect("OpenMLS creates the group")
    }

    /// Decodes and validates a KeyPackage given as an encoded `MLSMessage` (as a member
    /// receiving it from a directory would), returning OpenMLS's error on rejection.
    pub fn validate_key_package(
        &self,
        mls_message: &[u8],
    ) -> Result<KeyPackage, openmls::prelude::KeyPackageVerifyError> {
        let message =
            MlsMessageIn::tls_deserialize_exact(mls_message).expect("OpenMLS decodes the message");
        let MlsMessageBodyIn::KeyPackage(key_package_in) = message.extract() else {
            panic!("the message is not a KeyPackage");
        };
        key_package_in.validate(self.provider.crypto(), ProtocolVersion::Mls10)
    }

    /// Commits Adds of `key_packages` in `group`, merges the commit, and returns the messages.
    pub fn add_members(&self, group: &mut MlsGroup, key_packages: &[KeyPackage]) -> AddOutput {
        let (commit, welcome, group_info) = group
            .add_members(&self.provider, &self.signer, key_packages)
            .expect("OpenMLS commits the Adds");
        group
            .merge_pending_commit(&self.provider)
            .expect("OpenMLS merges its own commit");
        AddOutput {
            commit: to_bytes(&commit),
            welcome: to_bytes(&welcome),
            group_info: group_info.map(|gi| to_bytes(&MlsMessageOut::from(gi))),
        }
    }

    /// Commits Adds of `key_packages` without an UpdatePath (an add-only commit, so the new
    /// leaves become unmerged leaves of the non-blank parents above them), merges it, and
    /// returns the messages.
    pub fn add_members_without_path(
        &self,
        group: &mut MlsGroup,
        key_packages: &[KeyPackage],
    ) -> AddOutput {
        let (commit, welcome, group_info) = group
            .add_members_without_update(&self.provider, &self.signer, key_packages)
            .expect("OpenMLS commits the Adds");
        group
            .merge_pending_commit(&self.provider)
            .expect("OpenMLS merges its own commit");
        AddOutput {
            commit: to_bytes(&commit),
            welcome: to_bytes(&welcome),
            group_info: group_info.map(|gi| to_bytes(&MlsMessageOut::from(gi))),
        }
    }

    /// Commits the removal of the members at `leaves` in `group`, merges it, and returns the
    /// Commit.
    pub fn remove_members(&self, group: &mut MlsGroup, leaves: &[u32]) -> Vec<u8> {
        let leaves: Vec<LeafNodeIndex> = leaves.iter().map(|&l| LeafNodeIndex::new(l)).collect();
        let (commit, welcome, _group_info) = group
            .remove_members(&self.provider, &self.signer, &leaves)
            .expect("OpenMLS commits the Removes");
        assert!(welcome.is_none(), "a remove-only commit has no Welcome");
        group
            .merge_pending_commit(&self.provider)
            .expect("OpenMLS merges its own commit");
        to_bytes(&commit)
    }

    /// Commits a full-path self update in `group`, merges it, and returns the Commit.
    pub fn self_update(&self, group: &mut MlsGroup) -> Vec<u8> {
        let bundle = group
            .self_update(&self.provider, &self.signer, LeafNodeParameters::default())
            .expect("OpenMLS commits the update");
        let (commit, welcome, _group_info) = bundle.into_contents();
        assert!(welcome.is_none(), "a self update has no Welcome");
        group
            .merge_pending_commit(&self.provider)
            .expect("OpenMLS merges its own commit");
        to_bytes(&commit)
    }

    /// The join config matching [`Self::group_builder`].
    pub fn join_config(policy: WireFormatPolicy) -> MlsGroupJoinConfig {
        MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .wire_format_policy(policy)
            .build()
    }

    /// Joins a group from an encoded Welcome `MLSMessage` (the tree comes in its GroupInfo).
    pub fn join(&self, welcome: &[u8]) -> MlsGroup {
        let message =
            MlsMessageIn::tls_deserialize_exact(welcome).expect("OpenMLS decodes the Welcome");
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            panic!("the message is not a Welcome");
        };
        let config = Self::join_config(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY);
        StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
            .expect("OpenMLS accepts the Welcome")
            .into_group(&self.provider)
            .expect("OpenMLS joins the group")
    }

    /// Processes an encoded handshake or application `MLSMessage` in `group`; a Commit is
    /// merged at once. Returns what OpenMLS made of it.
    pub fn process(&self, group: &mut MlsGroup, message: &[u8]) -> Processed {
        let message =
            MlsMessageIn::tls_deserialize_exact(message).expect("OpenMLS decodes the message");
        let protocol_message = message
            .try_into_protocol_message()
            .expect("the message is a PublicMessage or PrivateMessage");
        let processed = group
            .process_message(&self.provider, protocol_message)
            .expect("OpenMLS accepts the message");
        match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                group
                    .merge_staged_commit(&self.provider, *staged)
                    .expect("OpenMLS merges the commit");
                Processed::Commit
            }
            ProcessedMessageContent::ApplicationMessage(app) => {
                Processed::Application(app.into_bytes())
            }
            ProcessedMessageContent::ProposalMessage(proposal) => {
                group
                    .store_pending_proposal(self.provider.storage(), *proposal)
                    .expect("OpenMLS stores the proposal");
                Processed::Proposal
            }
            ProcessedMessageContent::ExternalJoinProposalMessage(proposal) => {
                group
                    .store_pending_proposal(self.provider.storage(), *proposal)
                    .expect("OpenMLS stores the proposal");
                Processed::Proposal
            }
            ProcessedMessageContent::OwnPendingCommit
            | ProcessedMessageContent::OwnPrivateMessage => Processed::Own,
        }
    }
}

/// What [`OpenMlsClient::process`] made of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Processed {
    /// A Commit, now merged.
    Commit,
    /// An application message with this plaintext.
    Application(Vec<u8>),
    /// A proposal (not yet committed).
    Proposal,
    /// The client's own message, fanned back to it.
    Own,
}

/// The encoded ratchet tree (`optional<Node> ratchet_tree<V>`) of an OpenMLS group.
pub fn export_ratchet_tree(group: &MlsGroup) -> Vec<u8> {
    group
        .export_ratchet_tree()
        .tls_serialize_detached()
        .expect("OpenMLS encodes its tree")
}

/// The `tree_hash` of an OpenMLS group's current GroupContext.
pub fn tree_hash(group: &MlsGroup) -> Vec<u8> {
    group.public_group().group_context().tree_hash().to_vec()
}

/// The encoded GroupContext of an OpenMLS group's current epoch.
pub fn export_group_context(group: &MlsGroup) -> Vec<u8> {
    group
        .public_group()
        .group_context()
        .tls_serialize_detached()
        .expect("OpenMLS encodes its GroupContext")
}

/// A signed GroupInfo `MLSMessage` of an OpenMLS group, with the `ratchet_tree` extension.
pub fn export_group_info(client: &OpenMlsClient, group: &MlsGroup) -> Vec<u8> {
    let message = group
        .export_group_info(client.provider.crypto(), &client.signer, true)
        .expect("OpenMLS exports its GroupInfo");
    to_bytes(&message)
}

/// The exporter label and context every agreement check uses.
pub const EXPORTER_LABEL: &str = "vmls interop";
/// See [`EXPORTER_LABEL`].
pub const EXPORTER_CONTEXT: &[u8] = b"agreement";
/// See [`EXPORTER_LABEL`].
pub const EXPORTER_LENGTH: usize = 32;

/// What one member's view of the group is, for the agreement checks of the group tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The epoch.
    pub epoch: u64,
    /// `MLS-Exporter(EXPORTER_LABEL, EXPORTER_CONTEXT, EXPORTER_LENGTH)`.
    pub exporter: Vec<u8>,
    /// The epoch authenticator (§8.7).
    pub epoch_authenticator: Vec<u8>,
    /// The GroupContext's `tree_hash`.
    pub tree_hash: Vec<u8>,
    /// The GroupContext's `confirmed_transcript_hash`.
    pub confirmed_transcript_hash: Vec<u8>,
    /// The members' leaf indices, in order.
    pub leaves: Vec<u32>,
}

impl OpenMlsClient {
    /// A group builder like [`Self::group_builder`] with the wire-format policy `policy`.
    /// The group keeps two past epochs' secrets for late application messages and eight
    /// resumption PSKs; with PrivateMessage handshakes, messages are padded to 64 octets.
    pub fn group_builder_with_policy(&self, policy: WireFormatPolicy) -> MlsGroupBuilder {
        self.group_builder()
            .with_wire_format_policy(policy)
            .max_past_epochs(2)
            .number_of_resumption_psks(8)
            .padding_size(Self::padding_for(policy))
    }

    /// The padding used with `policy`: 64 octets when handshakes are PrivateMessages.
    fn padding_for(policy: WireFormatPolicy) -> usize {
        if policy == MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY {
            64
        } else {
            0
        }
    }

    /// Joins from an encoded Welcome with the ratchet tree given separately as an encoded
    /// `optional<Node> ratchet_tree<V>` (when the Welcome's GroupInfo has no `ratchet_tree`
    /// extension), sending handshakes per `policy` (settings as in
    /// [`Self::group_builder_with_policy`]). The group's own Welcomes carry the
    /// `ratchet_tree` extension exactly when `ratchet_tree` is `None`.
    pub fn join_with(
        &self,
        welcome: &[u8],
        ratchet_tree: Option<&[u8]>,
        policy: WireFormatPolicy,
    ) -> MlsGroup {
        self.try_join_with(welcome, ratchet_tree, policy)
            .expect("OpenMLS joins the group")
    }

    /// [`Self::join_with`], returning OpenMLS's error as text on refusal.
    pub fn try_join_with(
        &self,
        welcome: &[u8],
        ratchet_tree: Option<&[u8]>,
        policy: WireFormatPolicy,
    ) -> Result<MlsGroup, String> {
        let message =
            MlsMessageIn::tls_deserialize_exact(welcome).expect("OpenMLS decodes the Welcome");
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            panic!("the message is not a Welcome");
        };
        let tree = ratchet_tree.map(|bytes| {
            RatchetTreeIn::tls_deserialize_exact(bytes).expect("OpenMLS decodes the tree")
        });
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(ratchet_tree.is_none())
            .wire_format_policy(policy)
            .number_of_resumption_psks(8)
            .max_past_epochs(2)
            .padding_size(Self::padding_for(policy))
            .build();
        StagedWelcome::new_from_welcome(&self.provider, &config, welcome, tree)
            .map_err(|e| format!("{e:?}"))?
            .into_group(&self.provider)
            .map_err(|e| format!("{e:?}"))
    }

    /// Sends an Update proposal for our own leaf (fresh encryption key).
    pub fn propose_self_update(&self, group: &mut MlsGroup) -> Vec<u8> {
        let (message, _reference) = group
            .propose_self_update(&self.provider, &self.signer, LeafNodeParameters::default())
            .expect("OpenMLS proposes the update");
        to_bytes(&message)
    }

    /// Sends a Remove proposal for the member at `leaf`.
    pub fn propose_remove(&self, group: &mut MlsGroup, leaf: u32) -> Vec<u8> {
        let (message, _reference) = group
            .propose_remove_member(&self.provider, &self.signer, LeafNodeIndex::new(leaf))
            .expect("OpenMLS proposes the removal");
        to_bytes(&message)
    }

    /// Sends an Add proposal for `key_package`.
    pub fn propose_add(&self, group: &mut MlsGroup, key_package: &KeyPackage) -> Vec<u8> {
        let (message, _reference) = group
            .propose_add_member(&self.provider, &self.signer, key_package)
            .expect("OpenMLS proposes the add");
        to_bytes(&message)
    }

    /// Commits every pending proposal (by reference), merges the commit, and returns the
    /// Commit and the Welcome if it adds members.
    pub fn commit_pending(&self, group: &mut MlsGroup) -> (Vec<u8>, Option<Vec<u8>>) {
        let (commit, welcome, _group_info) = group
            .commit_to_pending_proposals(&self.provider, &self.signer)
            .expect("OpenMLS commits the pending proposals");
        group
            .merge_pending_commit(&self.provider)
            .expect("OpenMLS merges its own commit");
        (to_bytes(&commit), welcome.map(|w| to_bytes(&w)))
    }

    /// Encrypts application data as a PrivateMessage.
    pub fn send_application(&self, group: &mut MlsGroup, data: &[u8]) -> Vec<u8> {
        let message = group
            .create_message(&self.provider, &self.signer, data)
            .expect("OpenMLS encrypts the application message");
        to_bytes(&message)
    }

    /// Processes an encoded message, returning OpenMLS's refusal as text instead of panicking.
    pub fn try_process(&self, group: &mut MlsGroup, message: &[u8]) -> Result<Processed, String> {
        let message = MlsMessageIn::tls_deserialize_exact(message).map_err(|e| format!("{e:?}"))?;
        let protocol_message = message
            .try_into_protocol_message()
            .map_err(|e| format!("{e:?}"))?;
        let processed = group
            .process_message(&self.provider, protocol_message)
            .map_err(|e| format!("{e:?}"))?;
        match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                group
                    .merge_staged_commit(&self.provider, *staged)
                    .map_err(|e| format!("{e:?}"))?;
                Ok(Processed::Commit)
            }
            ProcessedMessageContent::ApplicationMessage(app) => {
                Ok(Processed::Application(app.into_bytes()))
            }
            ProcessedMessageContent::ProposalMessage(proposal) => {
                group
                    .store_pending_proposal(self.provider.storage(), *proposal)
                    .map_err(|e| format!("{e:?}"))?;
                Ok(Processed::Proposal)
            }
            ProcessedMessageContent::ExternalJoinProposalMessage(proposal) => {
                group
                    .store_pending_proposal(self.provider.storage(), *proposal)
                    .map_err(|e| format!("{e:?}"))?;
                Ok(Processed::Proposal)
            }
            ProcessedMessageContent::OwnPendingCommit
            | ProcessedMessageContent::OwnPrivateMessage => Ok(Processed::Own),
        }
    }

    /// Joins the group of an encoded GroupInfo `MLSMessage` (with `external_pub`) by
    /// external commit; the tree comes from its `ratchet_tree` extension or `ratchet_tree`.
    /// OpenMLS adds a Remove of any member with our signature key (the resync case).
    /// Returns the group (already in the new epoch) and the Commit.
    pub fn join_by_external_commit(
        &self,
        group_info: &[u8],
        ratchet_tree: Option<&[u8]>,
        policy: WireFormatPolicy,
    ) -> (MlsGroup, Vec<u8>) {
        let message =
            MlsMessageIn::tls_deserialize_exact(group_info).expect("OpenMLS decodes the GroupInfo");
        let MlsMessageBodyIn::GroupInfo(group_info) = message.extract() else {
            panic!("the message is not a GroupInfo");
        };
        let mut builder =
            MlsGroup::external_commit_builder().with_config(Self::join_config(policy));
        if let Some(bytes) = ratchet_tree {
            builder = builder.with_ratchet_tree(
                RatchetTreeIn::tls_deserialize_exact(bytes).expect("OpenMLS decodes the tree"),
            );
        }
        let (group, bundle) = builder
            .build_group(&self.provider, group_info, self.credential.clone())
            .expect("OpenMLS accepts the GroupInfo")
            .load_psks(self.provider.storage())
            .expect("OpenMLS loads no PSKs")
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .expect("OpenMLS builds the external commit")
            .finalize(&self.provider)
            .expect("OpenMLS finalises the external commit");
        let (commit, _welcome, _group_info) = bundle.into_contents();
        (group, to_bytes(&commit))
    }

    /// This member's view of `group` for the agreement checks.
    pub fn view(&self, group: &MlsGroup) -> View {
        View {
            epoch: group.epoch().as_u64(),
            exporter: group
                .export_secret(
                    self.provider.crypto(),
                    EXPORTER_LABEL,
                    EXPORTER_CONTEXT,
                    EXPORTER_LENGTH,
                )
                .expect("OpenMLS exports a secret"),
            epoch_authenticator: group.epoch_authenticator().as_slice().to_vec(),
            tree_hash: tree_hash(group),
            confirmed_transcript_hash: group
                .public_group()
                .group_context()
                .confirmed_transcript_hash()
                .to_vec(),
            leaves: group.members().map(|m| m.index.u32()).collect(),
        }
    }
}

impl OpenMlsClient {
    /// Commits, in one Commit: the pending proposals by reference (if `consume_pending`),
    /// Adds of `key_packages` and Removes of `removed` by value, with an UpdatePath if
    /// `force_path` or required. Merges the commit; returns it and the Welcome, if any.
    pub fn commit_with(
        &self,
        group: &mut MlsGroup,
        key_packages: &[KeyPackage],
        removed: &[u32],
        consume_pending: bool,
        force_path: bool,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let bundle = group
            .commit_builder()
            .consume_proposal_store(consume_pending)
            .force_self_update(force_path)
            .propose_adds(key_packages.iter().cloned())
            .propose_removals(removed.iter().map(|&l| LeafNodeIndex::new(l)))
            .load_psks(self.provider.storage())
            .expect("OpenMLS loads no PSKs")
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .expect("OpenMLS builds the commit")
            .stage_commit(&self.provider)
            .expect("OpenMLS stages the commit");
        let (commit, welcome, _group_info) = bundle.into_messages();
        group
            .merge_pending_commit(&self.provider)
            .expect("OpenMLS merges its own commit");
        (to_bytes(&commit), welcome.map(|w| to_bytes(&w)))
    }
}
