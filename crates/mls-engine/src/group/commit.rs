//! Sending proposals (RFC 9420 §12.1) and creating Commits (§12.4.1), with the Welcome for
//! new members (§12.4.3.1) and a signed GroupInfo (§12.4.3).

use tls_codec::VLBytes;

use super::config::{CommitOptions, CommitOutput, PendingCommit, Services};
use super::error::GroupError;
use super::proposal_list::{
    apply_to_next_epoch, filter_proposals, path_required, validation_context, ResolvedProposal,
};
use super::safe_aad::outgoing_authenticated_data;
use super::state::{Group, GroupState, GroupStatus, StoredProposal};
use crate::codec::{
    Commit, Extension, FramedContent, FramedContentBody, GroupContext, GroupContextExtensions,
    KeyPackage, MlsMessage, PreSharedKeyID, Proposal, ProposalOrRef, ProposalRef, ProtocolVersion,
    ReInit, Sender,
};
use crate::crypto::{CipherSuite, MlsCrypto as _, Secret};
use crate::extensions::SafeAad;
use crate::framing::ReuseGuard;
use crate::messages::{GroupRequirements, HpkeKeySource, LeafNodeParams, LeafNodeTarget};
use crate::schedule::{
    confirmed_transcript_hash, confirmed_transcript_hash_input, interim_transcript_hash,
    KeySchedule,
};
use crate::tree::{create_update_path, NewLeaf};
use crate::welcome::{build_welcome, NewMemberSecrets};

impl Group {
    /// Sends `proposal` (§12.1) from our leaf, framed per the group's policy, and keeps it
    /// for the next commit. Returns the message and its reference.
    pub fn propose(
        &mut self,
        services: &Services<'_>,
        proposal: Proposal,
        authenticated_data: &[u8],
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        self.propose_inner(services, proposal, None, authenticated_data)
    }

    pub(crate) fn propose_inner(
        &mut self,
        services: &Services<'_>,
        proposal: Proposal,
        safe_aad: Option<&SafeAad>,
        authenticated_data: &[u8],
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        if let Proposal::Update(_) | Proposal::ExternalInit(_) = proposal {
            // An Update carries a new leaf key (use `propose_update`); ExternalInit is only
            // for external commits.
            return Err(GroupError::InvalidSender(self.state.own_leaf()));
        }
        self.send_proposal(services, proposal, safe_aad, authenticated_data)
    }

    fn send_proposal(
        &mut self,
        services: &Services<'_>,
        proposal: Proposal,
        safe_aad: Option<&SafeAad>,
        authenticated_data: &[u8],
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        self.state.check_active()?;
        let cs = self.state.suite(services)?;
        let authenticated_data =
            outgoing_authenticated_data(&self.state.context, safe_aad, authenticated_data)?;
        let content = FramedContent {
            group_id: self.state.context.group_id.clone(),
            epoch: self.state.context.epoch,
            sender: Sender::Member(self.state.own_leaf().0),
            authenticated_data: VLBytes::new(authenticated_data),
            body: FramedContentBody::Proposal(proposal.clone()),
        };
        let (message, auth) = self.state.frame_own(cs, content, |_| Ok(()))?;
        let reference = auth.proposal_ref(cs)?;
        self.state.proposals.push(StoredProposal {
            reference: reference.clone(),
            proposal,
            sender: Sender::Member(self.state.own_leaf().0),
            sent_message: Some(message.to_bytes()?),
        });
        Ok((message, reference))
    }

    /// Proposes adding the owner of `key_package` (§12.1.1).
    pub fn propose_add(
        &mut self,
        services: &Services<'_>,
        key_package: KeyPackage,
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        self.propose(services, Proposal::add(key_package), &[])
    }

    /// Proposes removing `leaf` (§12.1.3).
    pub fn propose_remove(
        &mut self,
        services: &Services<'_>,
        leaf: crate::tree::LeafIndex,
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        self.propose(services, Proposal::remove(leaf.0), &[])
    }

    /// Proposes injecting a PSK (§12.1.4).
    pub fn propose_psk(
        &mut self,
        services: &Services<'_>,
        psk: PreSharedKeyID,
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        self.propose(services, Proposal::pre_shared_key(psk), &[])
    }

    /// Proposes reinitialising the group (§12.1.5).
    pub fn propose_reinit(
        &mut self,
        services: &Services<'_>,
        group_id: Vec<u8>,
        cipher_suite: CipherSuite,
        extensions: Vec<Extension>,
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        let reinit = ReInit {
            group_id: group_id.into(),
            version: ProtocolVersion::MLS10,
            cipher_suite,
            extensions,
        };
        self.propose(services, Proposal::ReInit(reinit), &[])
    }

    /// Proposes new GroupContext extensions (§12.1.7).
    pub fn propose_group_context_extensions(
        &mut self,
        services: &Services<'_>,
        extensions: Vec<Extension>,
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        GroupRequirements::from_group_context_extensions(&extensions)?;
        self.propose(
            services,
            Proposal::GroupContextExtensions(GroupContextExtensions { extensions }),
            &[],
        )
    }

    /// Proposes replacing our leaf (§12.1.2) with a new one with the key pair from
    /// `encryption_key` (design hook H1), same credential, capabilities and extensions unless
    /// `params` is given. The new leaf's private key is kept until a commit includes it.
    pub fn propose_update(
        &mut self,
        services: &Services<'_>,
        encryption_key: HpkeKeySource,
        params: Option<LeafNodeParams>,
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        self.state.check_active()?;
        let cs = self.state.suite(services)?;
        let own = self.state.own_leaf();
        let current = self
            .state
            .tree
            .leaf(own)
            .ok_or(GroupError::NotAMember)?
            .clone();
        let params = params.unwrap_or(LeafNodeParams {
            credential: current.credential.clone(),
            capabilities: current.capabilities.clone(),
            extensions: current.extensions.clone(),
        });
        let (leaf, private_key) = params.build(
            cs,
            LeafNodeTarget::Update {
                group_id: self.state.context.group_id.as_slice(),
                leaf_index: own.0,
            },
            encryption_key,
            &self.state.signer,
        )?;
        let key_pair = crate::crypto::HpkeKeyPair {
            private_key,
            public_key: leaf.encryption_key.as_slice().to_vec(),
        };
        let (message, reference) =
            self.send_proposal(services, Proposal::update(leaf), None, &[])?;
        self.state.own_updates.push((reference.clone(), key_pair));
        Ok((message, reference))
    }

    /// Encrypts application data (§6.3) under our next application-ratchet generation.
    pub fn encrypt_application(
        &mut self,
        services: &Services<'_>,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<MlsMessage, GroupError> {
        self.encrypt_application_with(services, data, authenticated_data, ReuseGuard::Random)
    }

    /// [`Group::encrypt_application`] with the sender's choice of `reuse_guard` (design hook
    /// H4: for example a function of the generation's key-schedule nonce).
    pub fn encrypt_application_with(
        &mut self,
        services: &Services<'_>,
        data: &[u8],
        authenticated_data: &[u8],
        reuse_guard: ReuseGuard<'_>,
    ) -> Result<MlsMessage, GroupError> {
        self.encrypt_application_inner(services, data, None, authenticated_data, reuse_guard)
    }

    pub(crate) fn encrypt_application_inner(
        &mut self,
        services: &Services<'_>,
        data: &[u8],
        safe_aad: Option<&SafeAad>,
        authenticated_data: &[u8],
        reuse_guard: ReuseGuard<'_>,
    ) -> Result<MlsMessage, GroupError> {
        self.state.check_active()?;
        let cs = self.state.suite(services)?;
        let authenticated_data =
            outgoing_authenticated_data(&self.state.context, safe_aad, authenticated_data)?;
        let content = FramedContent {
            group_id: self.state.context.group_id.clone(),
            epoch: self.state.context.epoch,
            sender: Sender::Member(self.state.own_leaf().0),
            authenticated_data: VLBytes::new(authenticated_data),
            body: FramedContentBody::Application(VLBytes::new(data.to_vec())),
        };
        let auth = crate::framing::sign_private(
            cs,
            content,
            &self.state.context,
            &self.state.signer.private_key,
        )?;
        self.state.protect_private_own_with(cs, &auth, reuse_guard)
    }

    /// Creates a Commit (§12.4.1) of the pending proposals (by reference) and
    /// `options.proposals` (by value), with an UpdatePath when required (§12.4) or asked for.
    /// The group stays in the current epoch with a pending commit: call
    /// [`Group::merge_pending_commit`] once the delivery service accepted it (or process it
    /// when it comes back).
    pub fn commit(
        &mut self,
        services: &Services<'_>,
        options: CommitOptions,
        now: u64,
    ) -> Result<CommitOutput, GroupError> {
        self.commit_with_reuse_guard(services, options, now, ReuseGuard::Random)
    }

    /// [`Group::commit`] with `reuse_guard` for the Commit when the group frames handshakes
    /// as PrivateMessage (design hook H4, as for application messages: clients sharing a
    /// leaf keep their nonces apart); ignored for PublicMessage.
    pub fn commit_with_reuse_guard(
        &mut self,
        services: &Services<'_>,
        options: CommitOptions,
        now: u64,
        reuse_guard: ReuseGuard<'_>,
    ) -> Result<CommitOutput, GroupError> {
        self.state.check_active()?;
        if self.pending_commit.is_some() {
            return Err(GroupError::CommitPending);
        }
        let cs = self.state.suite(services)?;
        let st = &self.state;
        let own = st.own_leaf();
        let mut candidates = Vec::new();
        if options.include_pending {
            for stored in &st.proposals {
                if stored.sender == Sender::Member(own.0) {
                    if let Proposal::Update(_) = stored.proposal {
                        // §12.2: the committer's own Update is replaced by the path.
                        continue;
                    }
                }
                candidates.push(ResolvedProposal {
                    sender: stored.sender,
                    proposal: stored.proposal.clone(),
                    reference: Some(stored.reference.clone()),
                });
            }
        }
        for proposal in &options.proposals {
            candidates.push(ResolvedProposal::by_value(
                Sender::Member(own.0),
                proposal.clone(),
            ));
        }
        let validation =
            validation_context(cs, services, &st.config, &st.context, &st.tree, None, now)
                .with_psk_usage(options.psk_usage);
        // §12.2, §12.4: pending proposals that would make the list invalid are left out;
        // a proposal the caller gives by value must be valid.
        let filtered = filter_proposals(&validation, Sender::Member(own.0), candidates)?;
        if let Some(dropped) = filtered
            .dropped
            .iter()
            .find(|d| d.proposal.reference.is_none())
        {
            return Err(dropped.reason.clone().into());
        }
        let infos = filtered.kept;
        let list: Vec<ProposalOrRef> = infos.iter().map(|p| p.to_proposal_or_ref()).collect();

        let (mut tree, applied, mut new_context) =
            apply_to_next_epoch(cs, &st.tree, &st.context, &infos)?;
        let excluded: Vec<_> = applied.added.iter().map(|a| a.leaf_index).collect();
        let with_path = options.force_path
            || path_required(&infos)
            || options.leaf_params.is_some()
            || options.signature_key.is_some();
        // Design hook H1: a new signature key for our leaf, checked against its private key.
        let signer = match &options.signature_key {
            Some(new) => {
                if cs.signature_public_key(&new.private_key)? != new.public_key {
                    return Err(crate::messages::CreationError::SignatureKeyPairMismatch.into());
                }
                new.clone()
            }
            None => st.signer.clone(),
        };
        let nh = cs.params().hash_len();
        let (path, commit_secret, private, created) = if with_path {
            let key_pair = options
                .leaf_key
                .clone()
                .unwrap_or(HpkeKeySource::Generate)
                .into_key_pair(cs)?;
            let mut template = st.tree.leaf(own).ok_or(GroupError::NotAMember)?.clone();
            if let Some(params) = &options.leaf_params {
                template.credential = params.credential.clone();
                template.capabilities = params.completed_capabilities(cs.cipher_suite(), &[]);
                template.extensions = params.extensions.clone();
            }
            template.signature_key = signer.public_key.clone().into();
            let path_secret_0 = match &options.path_secret_0 {
                Some(s) => s.clone(),
                None => cs.random_secret()?,
            };
            let created = create_update_path(
                cs,
                &mut tree,
                own,
                NewLeaf {
                    template,
                    key_pair,
                    signature_key: &signer.private_key,
                },
                path_secret_0,
                &excluded,
                &mut new_context,
            )?;
            let mut private = created.private.clone();
            private.prune(&tree);
            (
                Some(created.update_path.clone()),
                created.commit_secret.clone(),
                private,
                Some(created),
            )
        } else {
            new_context.tree_hash = VLBytes::new(tree.tree_hash(cs)?);
            let mut private = st.private.clone();
            private.prune(&tree);
            (None, Secret::zero(nh), private, None)
        };
        let psk_secret = st.psk_secret(cs, services, &applied.psks)?;

        let content = FramedContent {
            group_id: st.context.group_id.clone(),
            epoch: st.context.epoch,
            sender: Sender::Member(own.0),
            authenticated_data: VLBytes::new(outgoing_authenticated_data(
                &st.context,
                options.safe_aad.as_ref(),
                &options.authenticated_data,
            )?),
            body: FramedContentBody::Commit(Commit {
                proposals: list,
                path,
            }),
        };
        let interim_before = st.interim_transcript_hash.clone();
        let init_secret = st.epoch_secrets.init_secret.clone();
        let mut next_parts = None;
        let (message, auth) = self.state.frame_own_with(
            cs,
            content,
            |auth| {
                let confirmed = confirmed_transcript_hash(
                    cs,
                    &interim_before,
                    &confirmed_transcript_hash_input(auth)?,
                );
                new_context.confirmed_transcript_hash = VLBytes::new(confirmed.clone());
                let encoded = GroupState::encoded_context(&new_context)?;
                let schedule =
                    KeySchedule::start(cs, init_secret, commit_secret, psk_secret, &encoded)?;
                let joiner_secret = schedule
                    .joiner_secret()
                    .cloned()
                    .ok_or(GroupError::MalformedState("no joiner secret"))?;
                let welcome_key_nonce = schedule.welcome_key_nonce(cs)?;
                let epoch_secrets = schedule.finish(cs, &encoded)?;
                let tag = epoch_secrets.confirmation_tag(cs, &confirmed);
                auth.auth.confirmation_tag = Some(VLBytes::new(tag.clone()));
                let interim = interim_transcript_hash(cs, &confirmed, &tag)?;
                next_parts = Some((
                    epoch_secrets,
                    joiner_secret,
                    welcome_key_nonce,
                    tag,
                    interim,
                ));
                Ok(())
            },
            reuse_guard,
        )?;
        let (epoch_secrets, joiner_secret, welcome_key_nonce, tag, interim) =
            next_parts.ok_or(GroupError::MalformedState("commit not finished"))?;

        let st = &self.state;
        let mut next = GroupState::for_epoch(
            cs,
            st.config,
            new_context,
            tree,
            private,
            signer,
            epoch_secrets,
            interim,
            tag,
            st.resumption_psks.clone(),
        )?;
        if let Some(reinit) = applied.reinit.clone() {
            next.status = GroupStatus::ReInit(reinit);
        }
        let with_tree = options
            .ratchet_tree_in_welcome
            .unwrap_or(st.config.ratchet_tree_extension);
        let group_info = if !applied.added.is_empty() || options.group_info {
            Some(next.group_info(cs, with_tree, options.external_pub)?)
        } else {
            None
        };
        let welcome = match (&group_info, applied.added.is_empty()) {
            (Some(info), false) => {
                let new_members: Vec<NewMemberSecrets<'_>> = applied
                    .added
                    .iter()
                    .map(|added| NewMemberSecrets {
                        key_package: &added.key_package,
                        path_secret: created
                            .as_ref()
                            .and_then(|c| c.path_secret_for(own, added.leaf_index)),
                    })
                    .collect();
                Some(build_welcome(
                    cs,
                    info,
                    &joiner_secret,
                    &welcome_key_nonce,
                    &applied.psks,
                    &new_members,
                )?)
            }
            _ => None,
        };
        drop(joiner_secret);
        let group_info = if options.group_info { group_info } else { None };
        self.pending_commit = Some(PendingCommit {
            content: auth,
            sent_message: message.to_bytes()?,
            next: Box::new(next),
        });
        Ok(CommitOutput {
            commit: message,
            welcome,
            group_info,
        })
    }
}

impl GroupState {
    /// The requirements of the GroupContext after a GroupContextExtensions in `infos`, if any.
    pub(crate) fn requirements_after(
        &self,
        infos: &[ResolvedProposal],
    ) -> Result<GroupRequirements, GroupError> {
        let extensions = infos
            .iter()
            .find_map(|i| match &i.proposal {
                Proposal::GroupContextExtensions(g) => Some(&g.extensions),
                _ => None,
            })
            .unwrap_or(&self.context.extensions);
        Ok(GroupRequirements::from_group_context_extensions(
            extensions,
        )?)
    }
}

/// A proposal from an external sender (§12.1.8): `proposal` signed by the party at
/// `sender_index` of the group's `external_senders` extension, for the epoch of
/// `group_context`, as a PublicMessage (no membership tag).
pub fn external_proposal(
    services: &Services<'_>,
    group_context: &GroupContext,
    sender_index: u32,
    proposal: Proposal,
    signer: &crate::crypto::SignatureKeyPair,
    authenticated_data: &[u8],
) -> Result<MlsMessage, GroupError> {
    outsider_proposal(
        services,
        group_context,
        Sender::External(sender_index),
        proposal,
        signer,
        authenticated_data,
    )
}

/// A new member's request to be added (§12.1.8, `new_member_proposal`): an Add of
/// `key_package` signed with the KeyPackage's signature key, as a PublicMessage.
pub fn new_member_proposal(
    services: &Services<'_>,
    group_context: &GroupContext,
    key_package: KeyPackage,
    signer: &crate::crypto::SignatureKeyPair,
) -> Result<MlsMessage, GroupError> {
    outsider_proposal(
        services,
        group_context,
        Sender::NewMemberProposal,
        Proposal::add(key_package),
        signer,
        &[],
    )
}

fn outsider_proposal(
    services: &Services<'_>,
    group_context: &GroupContext,
    sender: Sender,
    proposal: Proposal,
    signer: &crate::crypto::SignatureKeyPair,
    authenticated_data: &[u8],
) -> Result<MlsMessage, GroupError> {
    let cs = services.crypto.suite(group_context.cipher_suite)?;
    let authenticated_data = outgoing_authenticated_data(group_context, None, authenticated_data)?;
    let content = FramedContent {
        group_id: group_context.group_id.clone(),
        epoch: group_context.epoch,
        sender,
        authenticated_data: VLBytes::new(authenticated_data),
        body: FramedContentBody::Proposal(proposal),
    };
    let auth = crate::framing::sign_public(cs, content, group_context, &signer.private_key)?;
    let message = crate::framing::protect_public(cs, auth, group_context, None)?;
    Ok(MlsMessage::new(
        crate::codec::MlsMessageBody::PublicMessage(message),
    ))
}
