//! Processing received messages (RFC 9420 §6, §12.1, §12.4.2): application data, proposals
//! (members', external senders', new members'), commits (members' and external), and our own
//! pending commit coming back.
//!
//! Atomicity: nothing is written to the group state until the whole message has checked out.
//! Application messages use the secret tree's transactional decryption; proposals are
//! validated before they are stored; commits compute the complete next epoch state on copies
//! and swap it in at the end.

use tls_codec::VLBytes;

use super::config::{resolved, ProcessedMessage, Services};
use super::error::GroupError;
use super::proposal_list::{
    apply_to_next_epoch, external_commit_removed_leaf, path_required, provisional_requirements,
    validate_proposal_list, validation_context, ResolvedProposal,
};
use super::proposals::ProposalListError;
use super::state::{Group, GroupState, GroupStatus, StoredProposal};
use crate::codec::{
    AuthenticatedContent, ContentType, FramedContentBody, GroupContext, MlsMessage, MlsMessageBody,
    PrivateMessage, Proposal, ProposalOrRef, ProtocolVersion, PublicMessage, Sender,
};
use crate::crypto::{Secret, SuiteProvider};
use crate::framing::{unprotect_private, unprotect_public};
use crate::messages::{
    validate_key_package, validate_leaf_node, KeyPackageValidationContext, LeafNodeOrigin,
};
use crate::schedule::{
    confirmed_transcript_hash, confirmed_transcript_hash_input, external_init_secret_receiver,
    interim_transcript_hash, EpochSecrets, KeySchedule, SecretTree,
};
use crate::tree::{apply_update_path, rederive_update_path, LeafIndex, OwnPathSecrets};

impl Group {
    /// Decodes an encoded MLSMessage (strictly: no trailing bytes; no larger than the
    /// group's `max_message_size`) and processes it like [`Group::process`].
    pub fn process_bytes(
        &mut self,
        services: &Services<'_>,
        bytes: &[u8],
        now: u64,
    ) -> Result<ProcessedMessage, GroupError> {
        let max = self.state.config.max_message_size;
        if bytes.len() > max as usize {
            return Err(GroupError::MessageTooLarge {
                size: bytes.len(),
                max,
            });
        }
        let message = MlsMessage::decode(bytes)?;
        self.process(services, &message, now)
    }

    /// Processes a PublicMessage or PrivateMessage of this group (§6). On any error the group
    /// state is unchanged. When the group uses SafeAAD (draft-ietf-mls-extensions-08 §4.9), a
    /// message without a well-formed `SafeAAD` is refused; [`Group::process_message`] also
    /// returns the parsed `SafeAAD`.
    pub fn process(
        &mut self,
        services: &Services<'_>,
        message: &MlsMessage,
        now: u64,
    ) -> Result<ProcessedMessage, GroupError> {
        self.process_message(services, message, now)
            .map(|received| received.processed)
    }

    /// [`Group::process`] once the SafeAAD has been checked.
    pub(crate) fn process_unchecked_aad(
        &mut self,
        services: &Services<'_>,
        message: &MlsMessage,
        now: u64,
    ) -> Result<ProcessedMessage, GroupError> {
        if message.version != ProtocolVersion::MLS10 {
            return Err(GroupError::UnexpectedWireFormat(message.wire_format()));
        }
        self.state.check_active()?;
        let bytes = message.to_bytes()?;
        if let Some(pending) = &self.pending_commit {
            if pending.sent_message == bytes {
                let epoch = pending.next.context.epoch;
                let removed_us = false;
                self.merge_pending_commit()?;
                return Ok(ProcessedMessage::Commit {
                    sender: Sender::Member(self.state.own_leaf().0),
                    epoch,
                    own: true,
                    removed_us,
                });
            }
        }
        if let Some(own) = self
            .state
            .proposals
            .iter()
            .find(|p| p.sent_message.as_deref() == Some(bytes.as_slice()))
        {
            return Ok(ProcessedMessage::Proposal {
                sender: own.sender,
                reference: own.reference.clone(),
                proposal: own.proposal.clone(),
            });
        }
        let cs = self.state.suite(services)?;
        match &message.body {
            MlsMessageBody::PublicMessage(m) => self.process_public(cs, services, m.clone(), now),
            MlsMessageBody::PrivateMessage(m) => self.process_private(cs, services, m, now),
            _ => Err(GroupError::UnexpectedWireFormat(message.wire_format())),
        }
    }

    fn process_public(
        &mut self,
        cs: &dyn SuiteProvider,
        services: &Services<'_>,
        message: PublicMessage,
        now: u64,
    ) -> Result<ProcessedMessage, GroupError> {
        check_group_epoch(
            &self.state.context,
            message.content.group_id.as_slice(),
            message.content.epoch,
        )?;
        let st = &self.state;
        let unverified =
            unprotect_public(cs, message, &st.context, &st.epoch_secrets.membership_key)?;
        let key = match unverified.sender() {
            Sender::Member(leaf) => st.member_signature_key(leaf)?,
            Sender::External(index) => st.external_sender_key(index)?,
            Sender::NewMemberProposal => match &unverified.content().body {
                FramedContentBody::Proposal(Proposal::Add(add)) => {
                    add.key_package.leaf_node.signature_key.as_slice().to_vec()
                }
                _ => return Err(GroupError::UnexpectedSender(Sender::NewMemberProposal)),
            },
            Sender::NewMemberCommit => match &unverified.content().body {
                FramedContentBody::Commit(commit) => commit
                    .path
                    .as_ref()
                    .ok_or(GroupError::MissingPath)?
                    .leaf_node
                    .signature_key
                    .as_slice()
                    .to_vec(),
                _ => return Err(GroupError::UnexpectedSender(Sender::NewMemberCommit)),
            },
        };
        let auth = unverified.verify(cs, &key)?;
        self.handle_content(cs, services, auth, None, now)
    }

    fn process_private(
        &mut self,
        cs: &dyn SuiteProvider,
        services: &Services<'_>,
        message: &PrivateMessage,
        now: u64,
    ) -> Result<ProcessedMessage, GroupError> {
        if message.group_id.as_slice() != self.state.context.group_id.as_slice() {
            return Err(GroupError::WrongGroup);
        }
        if message.content_type == ContentType::Application {
            if message.epoch < self.state.context.epoch {
                return self.process_past_application(cs, message);
            }
            check_group_epoch(
                &self.state.context,
                message.group_id.as_slice(),
                message.epoch,
            )?;
            // The secret tree consumes the generation only if everything checks out, and
            // nothing else changes: decrypt in place.
            let st = &mut self.state;
            let tree = &st.tree;
            let auth = unprotect_private(
                cs,
                message,
                &st.context,
                &mut st.secret_tree,
                &st.epoch_secrets.sender_data_secret,
                |leaf| {
                    tree.leaf(LeafIndex(leaf))
                        .map(|l| l.signature_key.as_slice().to_vec())
                },
            )?;
            return application(auth);
        }
        check_group_epoch(
            &self.state.context,
            message.group_id.as_slice(),
            message.epoch,
        )?;
        let st = &self.state;
        let mut secret_tree = st.secret_tree.clone();
        let tree = &st.tree;
        let auth = unprotect_private(
            cs,
            message,
            &st.context,
            &mut secret_tree,
            &st.epoch_secrets.sender_data_secret,
            |leaf| {
                tree.leaf(LeafIndex(leaf))
                    .map(|l| l.signature_key.as_slice().to_vec())
            },
        )?;
        self.handle_content(cs, services, auth, Some(secret_tree), now)
    }

    fn process_past_application(
        &mut self,
        cs: &dyn SuiteProvider,
        message: &PrivateMessage,
    ) -> Result<ProcessedMessage, GroupError> {
        let current = self.state.context.epoch;
        let past = self
            .state
            .past_epochs
            .iter_mut()
            .find(|p| p.context.epoch == message.epoch)
            .ok_or(GroupError::StaleEpoch {
                current,
                message: message.epoch,
            })?;
        let keys = &past.signature_keys;
        let auth = unprotect_private(
            cs,
            message,
            &past.context,
            &mut past.secret_tree,
            &past.sender_data_secret,
            |leaf| keys.get(leaf as usize).cloned().flatten(),
        )?;
        application(auth)
    }

    /// Handles authenticated content of the current epoch. `secret_tree` is the secret tree
    /// after decryption (PrivateMessages), installed only on success.
    fn handle_content(
        &mut self,
        cs: &dyn SuiteProvider,
        services: &Services<'_>,
        auth: AuthenticatedContent,
        secret_tree: Option<SecretTree>,
        now: u64,
    ) -> Result<ProcessedMessage, GroupError> {
        let sender = auth.content.sender;
        let own_leaf_allowed = services.own_leaf.is_some()
            || (self.state.config.retain_sent_keys
                && matches!(auth.content.body, FramedContentBody::Application(_)));
        if sender == Sender::Member(self.state.own_leaf().0) && !own_leaf_allowed {
            // Our own messages come back byte-identical (handled in `process`); anything else
            // from our leaf is a sibling's (design hook H2), accepted only with a resolver.
            return Err(GroupError::OwnLeafMessage);
        }
        match &auth.content.body {
            FramedContentBody::Application(_) => {
                if let Some(tree) = secret_tree {
                    self.state.secret_tree = tree;
                }
                application(auth)
            }
            FramedContentBody::Proposal(proposal) => {
                self.state
                    .validate_received_proposal(cs, services, sender, proposal, now)?;
                let reference = auth.proposal_ref(cs)?;
                let proposal = proposal.clone();
                if let Some(tree) = secret_tree {
                    self.state.secret_tree = tree;
                }
                if !self
                    .state
                    .proposals
                    .iter()
                    .any(|p| p.reference == reference)
                {
                    self.state.proposals.push(StoredProposal {
                        reference: reference.clone(),
                        proposal: proposal.clone(),
                        sender,
                        sent_message: None,
                    });
                }
                Ok(ProcessedMessage::Proposal {
                    sender,
                    reference,
                    proposal,
                })
            }
            FramedContentBody::Commit(_) => {
                let (next, removed_us) = self.state.process_commit(cs, services, &auth, now)?;
                if let Some(tree) = secret_tree {
                    self.state.secret_tree = tree;
                }
                let epoch = next.context.epoch;
                self.pending_commit = None;
                if removed_us {
                    self.state.status = GroupStatus::Removed;
                } else {
                    self.state.advance_to(next);
                }
                Ok(ProcessedMessage::Commit {
                    sender,
                    epoch,
                    own: false,
                    removed_us,
                })
            }
        }
    }
}

/// The checks of §6 before anything is decrypted or verified.
/// The next epoch as a received Commit defines it (§8, §12.4.2): the confirmed transcript
/// hash (set in `new_context`), the epoch secrets, the checked confirmation tag and the new
/// interim transcript hash.
pub(super) struct ReceivedEpoch {
    pub(super) epoch_secrets: EpochSecrets,
    pub(super) interim: Vec<u8>,
    pub(super) tag: Vec<u8>,
}

impl ReceivedEpoch {
    /// From the previous epoch's `interim_before`, the Commit `auth`, the next GroupContext
    /// and `[init_secret, commit_secret, psk_secret]`; a wrong confirmation tag is an error.
    pub(super) fn compute(
        cs: &dyn SuiteProvider,
        interim_before: &[u8],
        auth: &AuthenticatedContent,
        new_context: &mut GroupContext,
        [init_secret, commit_secret, psk_secret]: [Secret; 3],
    ) -> Result<Self, GroupError> {
        let confirmed =
            confirmed_transcript_hash(cs, interim_before, &confirmed_transcript_hash_input(auth)?);
        new_context.confirmed_transcript_hash = VLBytes::new(confirmed.clone());
        let encoded = GroupState::encoded_context(new_context)?;
        let schedule = KeySchedule::start(cs, init_secret, commit_secret, psk_secret, &encoded)?;
        let epoch_secrets = schedule.finish(cs, &encoded)?;
        let tag = auth
            .auth
            .confirmation_tag
            .as_ref()
            .ok_or(GroupError::BadConfirmationTag)?;
        epoch_secrets.verify_confirmation_tag(cs, &confirmed, tag.as_slice())?;
        let interim = interim_transcript_hash(cs, &confirmed, tag.as_slice())?;
        Ok(Self {
            epoch_secrets,
            interim,
            tag: tag.as_slice().to_vec(),
        })
    }
}

pub(super) fn check_group_epoch(
    context: &GroupContext,
    group_id: &[u8],
    epoch: u64,
) -> Result<(), GroupError> {
    if group_id != context.group_id.as_slice() {
        return Err(GroupError::WrongGroup);
    }
    if epoch < context.epoch {
        return Err(GroupError::StaleEpoch {
            current: context.epoch,
            message: epoch,
        });
    }
    if epoch > context.epoch {
        return Err(GroupError::FutureEpoch {
            current: context.epoch,
            message: epoch,
        });
    }
    Ok(())
}

fn application(auth: AuthenticatedContent) -> Result<ProcessedMessage, GroupError> {
    let Sender::Member(leaf) = auth.content.sender else {
        return Err(GroupError::UnexpectedSender(auth.content.sender));
    };
    match auth.content.body {
        FramedContentBody::Application(data) => Ok(ProcessedMessage::Application {
            sender: LeafIndex(leaf),
            data: data.into(),
            authenticated_data: auth.content.authenticated_data.into(),
        }),
        _ => Err(GroupError::UnexpectedSender(Sender::Member(leaf))),
    }
}

impl GroupState {
    /// The checks on a proposal received on its own (§12.1): an Update's leaf (§7.3), an
    /// Add's KeyPackage (§10.1), a GroupContextExtensions' requirements, a Remove's target.
    fn validate_received_proposal(
        &self,
        cs: &dyn SuiteProvider,
        services: &Services<'_>,
        sender: Sender,
        proposal: &Proposal,
        now: u64,
    ) -> Result<(), GroupError> {
        let infos = [ResolvedProposal::by_value(sender, proposal.clone())];
        match proposal {
            Proposal::Update(update) => {
                let Sender::Member(leaf) = sender else {
                    return Err(GroupError::UnexpectedSender(sender));
                };
                let replaced = self
                    .tree
                    .leaf(LeafIndex(leaf))
                    .ok_or(GroupError::UnknownSender(leaf))?;
                let requirements = self.requirements_after(&[])?;
                let members = self.tree.member_credential_types(&[LeafIndex(leaf)]);
                let ctx = self.leaf_validation(services, &requirements, &members, &self.tree, now);
                validate_leaf_node(
                    cs,
                    &update.leaf_node,
                    LeafNodeOrigin::Update {
                        group_id: self.context.group_id.as_slice(),
                        leaf_index: leaf,
                        replaced,
                    },
                    &ctx,
                )?;
            }
            Proposal::Add(add) => {
                let requirements = self.requirements_after(&[])?;
                let members = self.tree.member_credential_types(&[]);
                let ctx = self.leaf_validation(services, &requirements, &members, &self.tree, now);
                validate_key_package(cs, &add.key_package, &KeyPackageValidationContext::new(ctx))?;
            }
            Proposal::Remove(remove) => {
                if self.tree.leaf(LeafIndex(remove.removed)).is_none() {
                    return Err(ProposalListError::RemoveOfBlankLeaf {
                        index: 0,
                        removed: remove.removed,
                    }
                    .into());
                }
            }
            Proposal::GroupContextExtensions(_) => {
                self.requirements_after(&infos)?;
            }
            Proposal::ExternalInit(_) => {
                return Err(ProposalListError::ExternalInitInMemberCommit { index: 0 }.into())
            }
            Proposal::PreSharedKey(_) | Proposal::ReInit(_) => {}
        }
        Ok(())
    }

    /// Processes a Commit of the current epoch (§12.4.2) into the next epoch's state, without
    /// changing `self`. Returns the state and whether the commit removes us.
    fn process_commit(
        &self,
        cs: &dyn SuiteProvider,
        services: &Services<'_>,
        auth: &AuthenticatedContent,
        now: u64,
    ) -> Result<(GroupState, bool), GroupError> {
        let FramedContentBody::Commit(commit) = &auth.content.body else {
            return Err(GroupError::MalformedState("not a commit"));
        };
        let sender = auth.content.sender;
        let external = match sender {
            Sender::Member(_) => false,
            Sender::NewMemberCommit => true,
            _ => return Err(GroupError::UnexpectedSender(sender)),
        };
        let own = self.own_leaf();
        let mut infos = Vec::with_capacity(commit.proposals.len());
        let mut own_update_refs = Vec::new();
        for entry in &commit.proposals {
            match entry {
                ProposalOrRef::Proposal(proposal) => {
                    infos.push(ResolvedProposal::by_value(sender, proposal.clone()))
                }
                ProposalOrRef::Reference(reference) => {
                    let stored = self
                        .proposals
                        .iter()
                        .find(|p| &p.reference == reference)
                        .ok_or(GroupError::UnknownProposalRef)?;
                    if stored.sender == Sender::Member(own.0) {
                        if let Proposal::Update(_) = stored.proposal {
                            own_update_refs.push(reference.clone());
                        }
                    }
                    infos.push(ResolvedProposal {
                        sender: stored.sender,
                        proposal: stored.proposal.clone(),
                        reference: Some(reference.clone()),
                    });
                }
            }
        }
        let validation = validation_context(
            cs,
            services,
            &self.config,
            &self.context,
            &self.tree,
            commit.path.as_ref().map(|p| &p.leaf_node),
            now,
        );
        validate_proposal_list(&validation, sender, &infos)?;
        let requirements = provisional_requirements(&validation, &infos)?;

        let (mut tree, applied, mut new_context) =
            apply_to_next_epoch(cs, &self.tree, &self.context, &infos)?;
        if applied.removed.iter().any(|r| r.leaf_index == own) {
            let mut next = self.clone();
            next.context.epoch += 1;
            return Ok((next, true));
        }
        let sender_leaf = match sender {
            Sender::Member(leaf) => LeafIndex(leaf),
            _ => tree.leftmost_blank_leaf()?,
        };
        let mut private = self.private.clone();
        let mut signer = self.signer.clone();
        if !own_update_refs.is_empty() {
            let own_key = self
                .own_updates
                .iter()
                .find(|(r, _)| own_update_refs.contains(r))
                .map(|(_, k)| k.clone());
            let key = match own_key {
                Some(key) => key,
                None => {
                    // An Update a sibling sent from our leaf (design hook H2).
                    let leaf = tree.leaf(own).ok_or(GroupError::OwnLeafMessage)?;
                    let resolver = services.own_leaf.ok_or(GroupError::OwnLeafMessage)?;
                    let key = resolved(resolver.update_leaf_key(leaf))?;
                    if key.public_key.as_slice() != leaf.encryption_key.as_slice() {
                        return Err(GroupError::OwnLeafMessage);
                    }
                    key
                }
            };
            private.set_leaf_key(key);
        }
        let needs_path = external || path_required(&infos);
        let excluded: Vec<LeafIndex> = applied.added.iter().map(|a| a.leaf_index).collect();
        let nh = cs.params().hash_len();
        let commit_secret = match &commit.path {
            None if needs_path => return Err(GroupError::MissingPath),
            None => {
                new_context.tree_hash = VLBytes::new(tree.tree_hash(cs)?);
                Secret::zero(nh)
            }
            Some(path) => {
                let replaced = if external {
                    external_commit_removed_leaf(&self.tree, &infos).map(|(_, leaf)| leaf)
                } else {
                    self.tree.leaf(sender_leaf)
                };
                let members = tree.member_credential_types(&[sender_leaf]);
                let ctx = self.leaf_validation(services, &requirements, &members, &tree, now);
                validate_leaf_node(
                    cs,
                    &path.leaf_node,
                    LeafNodeOrigin::Commit {
                        group_id: self.context.group_id.as_slice(),
                        leaf_index: sender_leaf.0,
                        replaced,
                    },
                    &ctx,
                )?;
                if sender_leaf == own {
                    // A sibling's commit from our own leaf (design hook H2): re-derive the
                    // path from the secrets the resolver gives and check it.
                    let resolver = services.own_leaf.ok_or(GroupError::OwnLeafMessage)?;
                    let secrets = resolved(resolver.commit_secrets(&path.leaf_node))?;
                    if let Some(new_signer) = secrets.signature_key {
                        if new_signer.public_key.as_slice()
                            != path.leaf_node.signature_key.as_slice()
                        {
                            return Err(GroupError::OwnLeafMessage);
                        }
                        signer = new_signer;
                    } else if signer.public_key.as_slice()
                        != path.leaf_node.signature_key.as_slice()
                    {
                        return Err(GroupError::OwnLeafMessage);
                    }
                    let (new_private, commit_secret) = rederive_update_path(
                        cs,
                        &mut tree,
                        sender_leaf,
                        path,
                        &excluded,
                        OwnPathSecrets {
                            leaf_key: secrets.leaf_key,
                            path_secret_0: secrets.path_secret_0,
                        },
                        &mut new_context,
                    )?;
                    private = new_private;
                    commit_secret
                } else {
                    let decrypted = apply_update_path(
                        cs,
                        &mut tree,
                        &mut private,
                        sender_leaf,
                        path,
                        &excluded,
                        &mut new_context,
                    )?;
                    decrypted.commit_secret
                }
            }
        };
        private.prune(&tree);

        let psk_secret = self.psk_secret(cs, services, &applied.psks)?;
        let init_secret = match &applied.external_init {
            Some(init) => {
                let key_pair = self.epoch_secrets.external_key_pair(cs)?;
                external_init_secret_receiver(
                    cs,
                    &key_pair.private_key,
                    init.kem_output.as_slice(),
                )?
            }
            None => self.epoch_secrets.init_secret.clone(),
        };
        let ReceivedEpoch {
            epoch_secrets,
            interim,
            tag,
        } = ReceivedEpoch::compute(
            cs,
            &self.interim_transcript_hash,
            auth,
            &mut new_context,
            [init_secret, commit_secret, psk_secret],
        )?;
        let mut next = GroupState::for_epoch(
            cs,
            self.config,
            new_context,
            tree,
            private,
            signer,
            epoch_secrets,
            interim,
            tag,
            self.resumption_psks.clone(),
        )?;
        if let Some(reinit) = applied.reinit {
            next.status = GroupStatus::ReInit(reinit);
        }
        Ok((next, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Credential, Lifetime, MlsMessageBody};
    use crate::crypto::{CipherSuite, CryptoProvider as _, RustCrypto};
    use crate::group::{CommitOptions, GroupConfig, OwnLeaf};
    use crate::messages::{HpkeKeySource, KeyPackageParams, LeafNodeParams};

    static P: RustCrypto = RustCrypto;
    const NOW: u64 = 1_000_000;

    fn svc() -> Services<'static> {
        Services::new(&P)
    }

    fn lifetime() -> Lifetime {
        Lifetime {
            not_before: 0,
            not_after: u64::MAX,
        }
    }

    /// Alice creates a group and adds Bob; both in epoch 1.
    fn pair() -> (Group, Group) {
        let suite = CipherSuite(1);
        let cs = P.suite(suite).unwrap();
        let alice_key = cs.signature_generate_key_pair().unwrap();
        let mut alice = Group::create(
            &svc(),
            GroupConfig::default(),
            b"g".to_vec(),
            suite,
            OwnLeaf {
                params: LeafNodeParams::new(suite, Credential::basic(b"alice".to_vec())),
                encryption_key: HpkeKeySource::Generate,
                signature_key: alice_key,
            },
            lifetime(),
            vec![],
        )
        .unwrap();
        let bob_key = cs.signature_generate_key_pair().unwrap();
        let kp = KeyPackageParams::new(suite, Credential::basic(b"bob".to_vec()), lifetime())
            .build_fresh(cs, &bob_key)
            .unwrap();
        let out = alice
            .commit(
                &svc(),
                CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
                NOW,
            )
            .unwrap();
        alice.merge_pending_commit().unwrap();
        let bob = Group::join_from_welcome(
            &svc(),
            GroupConfig::default(),
            out.welcome.as_ref().unwrap(),
            &kp,
            bob_key,
            None,
            NOW,
        )
        .unwrap();
        (alice, bob)
    }

    /// Re-MACs a tampered PublicMessage from `sender` so that only the deeper check fails.
    fn remac(sender: &Group, message: &mut MlsMessage) {
        let cs = P.suite(sender.cipher_suite()).unwrap();
        if let MlsMessageBody::PublicMessage(m) = &mut message.body {
            m.set_membership_tag(
                cs,
                sender.state.epoch_secrets.membership_key.as_bytes(),
                &sender.state.context,
            )
            .unwrap();
        }
    }

    fn rejects(group: &mut Group, message: &MlsMessage) -> GroupError {
        let before = group.to_bytes().unwrap();
        let err = group.process(&svc(), message, NOW).unwrap_err();
        assert_eq!(
            before,
            group.to_bytes().unwrap(),
            "state changed on {err:?}"
        );
        err
    }

    #[test]
    fn each_check_has_its_error_and_changes_nothing() {
        let (mut alice, mut bob) = pair();
        let out = alice
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();

        let mut bad_tag = out.commit.clone();
        if let MlsMessageBody::PublicMessage(m) = &mut bad_tag.body {
            m.auth.confirmation_tag = Some(vec![0; 32].into());
        }
        remac(&alice, &mut bad_tag);
        assert_eq!(rejects(&mut bob, &bad_tag), GroupError::BadConfirmationTag);

        let mut bad_sig = out.commit.clone();
        if let MlsMessageBody::PublicMessage(m) = &mut bad_sig.body {
            m.content.authenticated_data = vec![9].into();
        }
        remac(&alice, &mut bad_sig);
        assert_eq!(rejects(&mut bob, &bad_sig), GroupError::BadSignature);

        let mut no_path = out.commit.clone();
        if let MlsMessageBody::PublicMessage(m) = &mut no_path.body {
            if let FramedContentBody::Commit(c) = &mut m.content.body {
                c.path = None;
            }
        }
        remac(&alice, &mut no_path);
        // The signature covers the path: the signature check comes first.
        assert_eq!(rejects(&mut bob, &no_path), GroupError::BadSignature);

        let mut wrong_group = out.commit.clone();
        if let MlsMessageBody::PublicMessage(m) = &mut wrong_group.body {
            m.content.group_id = b"other".to_vec().into();
        }
        assert_eq!(rejects(&mut bob, &wrong_group), GroupError::WrongGroup);

        let mut future = out.commit.clone();
        if let MlsMessageBody::PublicMessage(m) = &mut future.body {
            m.content.epoch += 1;
        }
        assert!(matches!(
            rejects(&mut bob, &future),
            GroupError::FutureEpoch { .. }
        ));

        // The genuine commit goes through; our own comes back and is merged.
        assert!(matches!(
            bob.process(&svc(), &out.commit, NOW).unwrap(),
            ProcessedMessage::Commit { own: false, .. }
        ));
        assert!(matches!(
            alice.process(&svc(), &out.commit, NOW).unwrap(),
            ProcessedMessage::Commit { own: true, .. }
        ));
        assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());

        // Application data: a flipped ciphertext bit is refused and consumes nothing.
        let mut app = alice.encrypt_application(&svc(), b"hi", b"").unwrap();
        let good = app.clone();
        if let MlsMessageBody::PrivateMessage(m) = &mut app.body {
            let mut c = m.ciphertext.as_slice().to_vec();
            c[0] ^= 1;
            m.ciphertext = c.into();
        }
        rejects(&mut bob, &app);
        assert!(matches!(
            bob.process(&svc(), &good, NOW).unwrap(),
            ProcessedMessage::Application { .. }
        ));
        // A replay is refused (generation consumed), state unchanged.
        rejects(&mut bob, &good);
    }

    #[test]
    fn empty_commit_without_path_is_refused() {
        let (alice, mut bob) = pair();
        let cs = P.suite(alice.cipher_suite()).unwrap();
        let content = crate::codec::FramedContent {
            group_id: alice.state.context.group_id.clone(),
            epoch: alice.epoch(),
            sender: Sender::Member(0),
            authenticated_data: Vec::new().into(),
            body: FramedContentBody::Commit(crate::codec::Commit::default()),
        };
        let mut auth = crate::framing::sign_public(
            cs,
            content,
            &alice.state.context,
            &alice.state.signer.private_key,
        )
        .unwrap();
        auth.auth.confirmation_tag = Some(vec![0; 32].into());
        let message = crate::framing::protect_public(
            cs,
            auth,
            &alice.state.context,
            Some(&alice.state.epoch_secrets.membership_key),
        )
        .unwrap();
        let message = MlsMessage::new(MlsMessageBody::PublicMessage(message));
        assert_eq!(rejects(&mut bob, &message), GroupError::MissingPath);
    }

    #[test]
    fn late_application_message_from_a_past_epoch() {
        let (mut alice, mut bob) = pair();
        for g in [&mut alice, &mut bob] {
            g.state.config.max_past_epochs = 1;
        }
        let late = alice.encrypt_application(&svc(), b"late", b"").unwrap();
        let out = alice
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        alice.merge_pending_commit().unwrap();
        bob.process(&svc(), &out.commit, NOW).unwrap();
        match bob.process(&svc(), &late, NOW).unwrap() {
            ProcessedMessage::Application { data, .. } => assert_eq!(data, b"late"),
            other => panic!("{other:?}"),
        }
        let bytes = bob.to_bytes().unwrap();
        assert_eq!(
            Group::from_bytes(&bytes).unwrap().to_bytes().unwrap(),
            bytes
        );
        // Two epochs later it is gone.
        let late = alice.encrypt_application(&svc(), b"later", b"").unwrap();
        for _ in 0..2 {
            let out = alice
                .commit(&svc(), CommitOptions::new().with_path(), NOW)
                .unwrap();
            alice.merge_pending_commit().unwrap();
            bob.process(&svc(), &out.commit, NOW).unwrap();
        }
        assert!(matches!(
            rejects(&mut bob, &late),
            GroupError::StaleEpoch { .. }
        ));
    }
}
