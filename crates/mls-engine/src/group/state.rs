//! The group state ([`GroupState`]) and the [`Group`] handle: accessors and the helpers the
//! operations share (key lookup, PSK resolution, framing of our own messages, GroupInfo).

use tls_codec::VLBytes;

use super::config::{GroupConfig, HandshakeWireFormat, Member, PendingCommit, Services};
use super::error::GroupError;
use crate::codec::{
    encode, AuthenticatedContent, Extension, ExtensionPayload as _, ExternalPubExtension,
    ExternalSendersExtension, FramedContent, GroupContext, GroupInfo, LeafNode, MlsMessage,
    MlsMessageBody, PSKKind, PreSharedKeyID, Proposal, ProposalRef, RatchetTreeExtension, Sender,
};
use crate::crypto::{CipherSuite, HpkeKeyPair, Secret, SignatureKeyPair, SuiteProvider};
use crate::framing::{
    decrypt_sender_data, protect_private, protect_private_with_key, protect_public, ratchet_type,
    sign_private, sign_public, PrivateMessageOptions, ReuseGuard,
};
use crate::messages::{
    GroupRequirements, IdentityProvider, LeafNodeValidationContext, MemberCredentialTypes,
};
use crate::schedule::{psk_secret, EpochSecrets, RatchetType, ResumptionPskStore, SecretTree};
use crate::tree::{LeafIndex, RatchetTree, TreeKemPrivate};

/// A proposal received or sent in the current epoch, kept for the next Commit (§12.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProposal {
    /// Its `ProposalRef`.
    pub reference: ProposalRef,
    /// The proposal.
    pub proposal: Proposal,
    /// Its sender.
    pub sender: Sender,
    /// The encoded MLSMessage, for proposals we sent (to recognise them if they come back).
    pub sent_message: Option<Vec<u8>>,
}

/// Whether the group can still be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupStatus {
    /// A member in good standing.
    Active,
    /// A commit removed us (§12.3).
    Removed,
    /// A ReInit was committed (§12.1.5): only exports and the resumption PSK remain.
    ReInit(crate::codec::ReInit),
}

/// The secrets of a past epoch kept for late application messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastEpoch {
    /// The epoch's GroupContext.
    pub context: GroupContext,
    /// Its `sender_data_secret`.
    pub sender_data_secret: Secret,
    /// Its secret tree.
    pub secret_tree: SecretTree,
    /// The signature key of each leaf of that epoch (`None` for blank leaves).
    pub signature_keys: Vec<Option<Vec<u8>>>,
}

/// Everything a member knows about one epoch of a group (design hook H8: all of it
/// serialises, see `state_codec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub(crate) config: GroupConfig,
    pub(crate) context: GroupContext,
    pub(crate) tree: RatchetTree,
    pub(crate) private: TreeKemPrivate,
    pub(crate) signer: SignatureKeyPair,
    pub(crate) epoch_secrets: EpochSecrets,
    pub(crate) secret_tree: SecretTree,
    pub(crate) interim_transcript_hash: Vec<u8>,
    pub(crate) confirmation_tag: Vec<u8>,
    pub(crate) proposals: Vec<StoredProposal>,
    /// Leaf key pairs of our own Update proposals, by reference.
    pub(crate) own_updates: Vec<(ProposalRef, HpkeKeyPair)>,
    pub(crate) resumption_psks: ResumptionPskStore,
    pub(crate) past_epochs: Vec<PastEpoch>,
    pub(crate) status: GroupStatus,
    /// The epoch's Exporter Tree (draft-ietf-mls-extensions-08 §4.4, design hook H5), rooted
    /// at `application_export_secret`.
    pub(crate) exporter_tree: crate::extensions::ExporterTree,
}

/// An MLS group as one member sees it (RFC 9420 §8-§12): create, join, propose, commit,
/// process. Sans-IO: randomness and cryptography come in through [`Services`], time as `now`
/// (seconds since the Unix epoch).
#[derive(Debug, Clone)]
pub struct Group {
    pub(crate) state: GroupState,
    pub(crate) pending_commit: Option<PendingCommit>,
}

impl Group {
    /// The cipher suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.state.context.cipher_suite
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.state.context.epoch
    }

    /// The group ID.
    pub fn group_id(&self) -> &[u8] {
        self.state.context.group_id.as_slice()
    }

    /// The GroupContext of the current epoch.
    pub fn group_context(&self) -> &GroupContext {
        &self.state.context
    }

    /// Our leaf index.
    pub fn own_leaf_index(&self) -> LeafIndex {
        self.state.private.own_leaf()
    }

    /// Our current LeafNode.
    pub fn own_leaf_node(&self) -> Option<&LeafNode> {
        self.state.tree.leaf(self.own_leaf_index())
    }

    /// The group's policy.
    pub fn config(&self) -> &GroupConfig {
        &self.state.config
    }

    /// Replaces the group's policy (it travels with the state). The ratchet bounds of the
    /// current epoch's secret tree stay as they were; new bounds apply from the next epoch.
    pub fn set_config(&mut self, config: GroupConfig) {
        self.state.config = config;
    }

    /// Whether the group is active, removed us, or was reinitialised.
    pub fn status(&self) -> &GroupStatus {
        &self.state.status
    }

    /// The epoch authenticator (§8.7).
    pub fn epoch_authenticator(&self) -> &[u8] {
        self.state.epoch_secrets.epoch_authenticator.as_bytes()
    }

    /// The `resumption_psk` of the current epoch (§8.6).
    pub fn resumption_psk(&self) -> &Secret {
        &self.state.epoch_secrets.resumption_psk
    }

    /// `MLS-Exporter(label, context, length)` of the current epoch (§8.5).
    pub fn export_secret(
        &self,
        services: &Services<'_>,
        label: &str,
        context: &[u8],
        length: usize,
    ) -> Result<Secret, GroupError> {
        let cs = self.state.suite(services)?;
        Ok(self
            .state
            .epoch_secrets
            .export(cs, label, context, length)?)
    }

    /// `SafeExportSecret(component_id)` of the current epoch (draft-ietf-mls-extensions-08
    /// §4.4, design hook H5): the leaf `component_id` of the Exporter Tree rooted at
    /// `application_export_secret = DeriveSecret(epoch_secret, "application_export")`. The
    /// secret is consumed: asking again for the same component in this epoch is
    /// `GroupError::SafeExport(ExporterError::AlreadyConsumed)`, and component IDs >= 2^16
    /// (which have no leaf) are `ExporterError::ComponentIdOutOfRange`. Every node of the
    /// tree on the way is deleted (RFC 9420 §9.2); the whole tree is dropped with the epoch.
    /// On error the state is unchanged.
    pub fn safe_export_secret(
        &mut self,
        services: &Services<'_>,
        component_id: crate::extensions::ComponentId,
    ) -> Result<Secret, GroupError> {
        let cs = self.state.suite(services)?;
        Ok(self
            .state
            .exporter_tree
            .safe_export_secret(cs, component_id)?)
    }

    /// Whether `component_id`'s safe export secret is no longer available in this epoch
    /// (consumed, or an ID >= 2^16).
    pub fn safe_export_consumed(&self, component_id: crate::extensions::ComponentId) -> bool {
        self.state.exporter_tree.is_consumed(component_id)
    }

    /// The ratchet tree of the current epoch.
    pub fn ratchet_tree(&self) -> &RatchetTree {
        &self.state.tree
    }

    /// The confirmation tag of the commit that started the epoch.
    pub fn confirmation_tag(&self) -> &[u8] {
        &self.state.confirmation_tag
    }

    /// The members (non-blank leaves).
    pub fn members(&self) -> Vec<Member> {
        self.state
            .tree
            .leaves()
            .map(|(index, leaf)| Member {
                index,
                credential: leaf.credential.clone(),
                signature_key: leaf.signature_key.as_slice().to_vec(),
                leaf_node: leaf.clone(),
            })
            .collect()
    }

    /// The proposals received or sent in this epoch and not yet committed.
    pub fn pending_proposals(&self) -> &[StoredProposal] {
        &self.state.proposals
    }

    /// Whether a commit we created waits for [`Group::merge_pending_commit`].
    pub fn has_pending_commit(&self) -> bool {
        self.pending_commit.is_some()
    }

    /// Drops our pending commit (for example after the delivery service refused it).
    pub fn clear_pending_commit(&mut self) {
        self.pending_commit = None;
    }

    /// Moves to the epoch of our pending commit (once the delivery service accepted it).
    pub fn merge_pending_commit(&mut self) -> Result<(), GroupError> {
        let pending = self
            .pending_commit
            .take()
            .ok_or(GroupError::NoPendingCommit)?;
        self.state.advance_to(*pending.next);
        Ok(())
    }

    /// Design hook H3: the delivery service accepted `message`, a PrivateMessage we sent in
    /// the current epoch with `retain_sent_keys`; its generation's key is deleted. Returns
    /// whether a key was deleted. (A send that was refused needs nothing: the key stays until
    /// a sibling's message at that generation consumes it or it leaves the window.)
    pub fn confirm_sent(
        &mut self,
        services: &Services<'_>,
        message: &MlsMessage,
    ) -> Result<bool, GroupError> {
        let MlsMessageBody::PrivateMessage(m) = &message.body else {
            return Ok(false);
        };
        if m.epoch != self.state.context.epoch
            || m.group_id.as_slice() != self.state.context.group_id.as_slice()
        {
            return Ok(false);
        }
        let cs = self.state.suite(services)?;
        let sender_data = decrypt_sender_data(cs, m, &self.state.epoch_secrets.sender_data_secret)?;
        let own = self.state.own_leaf();
        if sender_data.leaf_index != own.0 {
            return Ok(false);
        }
        Ok(self.state.secret_tree.delete_key(
            own,
            ratchet_type(m.content_type),
            sender_data.generation,
        ))
    }

    /// Design hook H3: which generation's key `message`, a PrivateMessage we sent in the
    /// current epoch with `retain_sent_keys`, keeps retained (`None` for any other message),
    /// so that the application can delete it later ([`Group::delete_sent_key`]), e.g. once
    /// it is older than the application's time bound.
    pub fn sent_key(
        &self,
        services: &Services<'_>,
        message: &MlsMessage,
    ) -> Result<Option<SentKey>, GroupError> {
        let MlsMessageBody::PrivateMessage(m) = &message.body else {
            return Ok(None);
        };
        if m.epoch != self.state.context.epoch
            || m.group_id.as_slice() != self.state.context.group_id.as_slice()
        {
            return Ok(None);
        }
        let cs = self.state.suite(services)?;
        let sender_data = decrypt_sender_data(cs, m, &self.state.epoch_secrets.sender_data_secret)?;
        if sender_data.leaf_index != self.state.own_leaf().0 {
            return Ok(None);
        }
        Ok(Some(SentKey {
            epoch: m.epoch,
            handshake: ratchet_type(m.content_type) == RatchetType::Handshake,
            generation: sender_data.generation,
        }))
    }

    /// Deletes the retained key `key` of our own leaf if it is of the current epoch and still
    /// retained (H3). Returns whether a key was deleted.
    pub fn delete_sent_key(&mut self, key: &SentKey) -> bool {
        if key.epoch != self.state.context.epoch {
            return false;
        }
        let kind = if key.handshake {
            RatchetType::Handshake
        } else {
            RatchetType::Application
        };
        let own = self.state.own_leaf();
        self.state.secret_tree.delete_key(own, kind, key.generation)
    }

    /// Discards every pending proposal (§12.1: proposals are valid only in their epoch; an
    /// application may also drop them).
    pub fn clear_pending_proposals(&mut self) {
        self.state.proposals.clear();
        self.state.own_updates.clear();
    }

    /// A signed GroupInfo of the current epoch (§12.4.3), with the `ratchet_tree` extension
    /// if `with_ratchet_tree` and `external_pub` if `with_external_pub`.
    pub fn group_info(
        &self,
        services: &Services<'_>,
        with_ratchet_tree: bool,
        with_external_pub: bool,
    ) -> Result<GroupInfo, GroupError> {
        let cs = self.state.suite(services)?;
        self.state
            .group_info(cs, with_ratchet_tree, with_external_pub)
    }
}

/// A retained key of a message we sent (H3): its epoch, ratchet and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentKey {
    /// The epoch the message was sent in.
    pub epoch: u64,
    /// Whether it is of the handshake ratchet (else the application ratchet).
    pub handshake: bool,
    /// The generation.
    pub generation: u32,
}

impl GroupState {
    pub(crate) fn suite<'a>(
        &self,
        services: &Services<'a>,
    ) -> Result<&'a dyn SuiteProvider, GroupError> {
        Ok(services.crypto.suite(self.context.cipher_suite)?)
    }

    pub(crate) fn own_leaf(&self) -> LeafIndex {
        self.private.own_leaf()
    }

    pub(crate) fn check_active(&self) -> Result<(), GroupError> {
        match self.status {
            GroupStatus::Active => Ok(()),
            GroupStatus::Removed => Err(GroupError::NotAMember),
            GroupStatus::ReInit(_) => Err(GroupError::ReInitCommitted),
        }
    }

    /// Replaces this state by the next epoch's, keeping the current epoch's secret tree for
    /// late application messages if the policy says so.
    pub(crate) fn advance_to(&mut self, next: GroupState) {
        let keep = self.config.max_past_epochs as usize;
        let mut past = std::mem::take(&mut self.past_epochs);
        if keep > 0 {
            past.push(PastEpoch {
                context: self.context.clone(),
                sender_data_secret: self.epoch_secrets.sender_data_secret.clone(),
                secret_tree: self.secret_tree.clone(),
                signature_keys: (0..self.tree.n_leaves())
                    .map(|i| {
                        self.tree
                            .leaf(LeafIndex(i))
                            .map(|l| l.signature_key.as_slice().to_vec())
                    })
                    .collect(),
            });
            while past.len() > keep {
                past.remove(0);
            }
        }
        *self = next;
        self.past_epochs = past;
    }

    /// The signature key of a member sender.
    pub(crate) fn member_signature_key(&self, leaf: u32) -> Result<Vec<u8>, GroupError> {
        self.tree
            .leaf(LeafIndex(leaf))
            .map(|l| l.signature_key.as_slice().to_vec())
            .ok_or(GroupError::UnknownSender(leaf))
    }

    /// The signature key of an `external` sender (§12.1.8.1).
    pub(crate) fn external_sender_key(&self, index: u32) -> Result<Vec<u8>, GroupError> {
        let senders = ExternalSendersExtension::find_in(&self.context.extensions)?
            .ok_or(GroupError::UnknownExternalSender(index))?;
        senders
            .external_senders
            .get(index as usize)
            .map(|s| s.signature_key.as_slice().to_vec())
            .ok_or(GroupError::UnknownExternalSender(index))
    }

    /// The `psk_secret` of `psks` (§8.4): external PSKs and other groups' resumption PSKs
    /// from `services`, this group's resumption PSKs from its own store.
    pub(crate) fn psk_secret(
        &self,
        cs: &dyn SuiteProvider,
        services: &Services<'_>,
        psks: &[PreSharedKeyID],
    ) -> Result<Secret, GroupError> {
        resolve_psk_secret(
            cs,
            services,
            psks,
            self.context.group_id.as_slice(),
            Some(&self.resumption_psks),
        )
    }

    /// A LeafNode validation context for this group (§7.3), against `tree`.
    pub(crate) fn leaf_validation<'a>(
        &self,
        services: &Services<'a>,
        requirements: &'a GroupRequirements,
        member_types: &'a MemberCredentialTypes,
        tree: &'a RatchetTree,
        now: u64,
    ) -> LeafNodeValidationContext<'a> {
        leaf_validation(
            &self.config,
            services.identity,
            requirements,
            member_types,
            tree,
            now,
        )
    }

    /// Signs `content` (of the current epoch, from our leaf) and frames it per the policy.
    /// Returns the MLSMessage and the AuthenticatedContent (for references and transcripts).
    pub(crate) fn frame_own(
        &mut self,
        cs: &dyn SuiteProvider,
        content: FramedContent,
        finish: impl FnOnce(&mut AuthenticatedContent) -> Result<(), GroupError>,
    ) -> Result<(MlsMessage, AuthenticatedContent), GroupError> {
        self.frame_own_with(cs, content, finish, ReuseGuard::Random)
    }

    /// [`GroupState::frame_own`] with `reuse_guard` for a PrivateMessage (H4).
    pub(crate) fn frame_own_with(
        &mut self,
        cs: &dyn SuiteProvider,
        content: FramedContent,
        finish: impl FnOnce(&mut AuthenticatedContent) -> Result<(), GroupError>,
        reuse_guard: ReuseGuard<'_>,
    ) -> Result<(MlsMessage, AuthenticatedContent), GroupError> {
        match self.config.handshake_wire_format {
            HandshakeWireFormat::Public => {
                let mut auth = sign_public(cs, content, &self.context, &self.signer.private_key)?;
                finish(&mut auth)?;
                let message = protect_public(
                    cs,
                    auth.clone(),
                    &self.context,
                    Some(&self.epoch_secrets.membership_key),
                )?;
                Ok((
                    MlsMessage::new(MlsMessageBody::PublicMessage(message)),
                    auth,
                ))
            }
            HandshakeWireFormat::Private => {
                let mut auth = sign_private(cs, content, &self.context, &self.signer.private_key)?;
                finish(&mut auth)?;
                let message = self.protect_private_own_with(cs, &auth, reuse_guard)?;
                Ok((message, auth))
            }
        }
    }

    pub(crate) fn protect_private_own_with(
        &mut self,
        cs: &dyn SuiteProvider,
        auth: &AuthenticatedContent,
        reuse_guard: ReuseGuard<'_>,
    ) -> Result<MlsMessage, GroupError> {
        let options = PrivateMessageOptions {
            padding: self.config.padding(),
            reuse_guard,
        };
        let message = if self.config.retain_sent_keys {
            let key = self.secret_tree.encryption_key_retained(
                cs,
                self.own_leaf(),
                ratchet_type(auth.content.content_type()),
            )?;
            protect_private_with_key(
                cs,
                auth,
                &key,
                &self.epoch_secrets.sender_data_secret,
                &options,
            )?
        } else {
            protect_private(
                cs,
                auth,
                &mut self.secret_tree,
                &self.epoch_secrets.sender_data_secret,
                &options,
            )?
        };
        Ok(MlsMessage::new(MlsMessageBody::PrivateMessage(message)))
    }

    /// A signed GroupInfo of this epoch.
    pub(crate) fn group_info(
        &self,
        cs: &dyn SuiteProvider,
        with_ratchet_tree: bool,
        with_external_pub: bool,
    ) -> Result<GroupInfo, GroupError> {
        let mut extensions: Vec<Extension> = Vec::new();
        if with_ratchet_tree {
            extensions.push(
                RatchetTreeExtension {
                    ratchet_tree: self.tree.to_nodes(),
                }
                .to_extension()?,
            );
        }
        if with_external_pub {
            extensions.push(
                ExternalPubExtension {
                    external_pub: self.epoch_secrets.external_pub(cs)?.into(),
                }
                .to_extension()?,
            );
        }
        let mut info = GroupInfo {
            group_context: self.context.clone(),
            extensions,
            confirmation_tag: VLBytes::new(self.confirmation_tag.clone()),
            signer: self.own_leaf().0,
            signature: VLBytes::new(Vec::new()),
        };
        info.sign(cs, &self.signer.private_key)?;
        Ok(info)
    }

    /// The encoded GroupContext.
    pub(crate) fn encoded_context(context: &GroupContext) -> Result<Vec<u8>, GroupError> {
        Ok(encode(context)?)
    }
}

/// The `psk_secret` of `psks` (§8.4) with PSKs from `services` and, for resumption PSKs of
/// `group_id`, from `own_store`.
pub(crate) fn resolve_psk_secret(
    cs: &dyn SuiteProvider,
    services: &Services<'_>,
    psks: &[PreSharedKeyID],
    group_id: &[u8],
    own_store: Option<&ResumptionPskStore>,
) -> Result<Secret, GroupError> {
    let mut values = Vec::with_capacity(psks.len());
    for id in psks {
        let value = match &id.psk {
            PSKKind::External(e) => services.psks.external_psk(e.psk_id.as_slice()),
            PSKKind::Resumption(r) => {
                let own = if r.psk_group_id.as_slice() == group_id {
                    own_store.and_then(|s| s.get(r.psk_epoch)).cloned()
                } else {
                    None
                };
                own.or_else(|| {
                    services
                        .psks
                        .resumption_psk(r.psk_group_id.as_slice(), r.psk_epoch)
                })
            }
        };
        values.push(value.ok_or_else(|| GroupError::MissingPsk(Box::new(id.clone())))?);
    }
    let pairs: Vec<(&PreSharedKeyID, &Secret)> = psks.iter().zip(values.iter()).collect();
    Ok(psk_secret(cs, &pairs)?)
}

/// A group serves its own kept `resumption_psk`s (§8.6) to other groups, for example to the
/// group that a ReInit or a branch starts: `Services::new(..).with_psks(&old_group)`.
impl super::config::PskStore for Group {
    fn external_psk(&self, _psk_id: &[u8]) -> Option<Secret> {
        None
    }

    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<Secret> {
        (group_id == self.group_id())
            .then(|| self.state.resumption_psks.get(epoch).cloned())
            .flatten()
    }
}

/// The §7.3 validation context for a new leaf in `tree` under `config`'s lifetime policy.
pub(crate) fn leaf_validation<'a>(
    config: &GroupConfig,
    identity: &'a dyn IdentityProvider,
    requirements: &'a GroupRequirements,
    member_types: &'a MemberCredentialTypes,
    tree: &'a RatchetTree,
    now: u64,
) -> LeafNodeValidationContext<'a> {
    let mut ctx = LeafNodeValidationContext::new(identity, now)
        .with_requirements(requirements)
        .with_member_credential_types(member_types)
        .with_key_uniqueness(tree);
    ctx = ctx.with_lifetime_check(config.lifetime_check(now));
    if let Some(max) = config.max_lifetime {
        ctx = ctx.with_max_lifetime(max);
    }
    ctx
}
