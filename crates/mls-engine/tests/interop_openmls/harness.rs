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
    ProtocolVersion, StagedWelcome, WireFormatPolicy, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
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
            ProcessedMessageContent::ProposalMessage(_)
            | ProcessedMessageContent::ExternalJoinProposalMessage(_) => Processed::Proposal,
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
