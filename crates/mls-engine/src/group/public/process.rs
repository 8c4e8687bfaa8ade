//! Processing a message in the public view (§6, §12.1, §12.4.2 as a non-member): every check
//! of the engine's shared public checks, nothing changed.

use super::observed::{
    credential_identity, AddedLeaf, ExternalJoin, Observed, ObservedAad, ObservedProposal,
    ObservedSender, RemovedLeaf, StagedPublicCommit, UnverifiedHeader, UpdatedLeaf,
};
use super::{PublicGroup, PublicGroupError};
use crate::codec::{
    AuthenticatedContent, ExtensionPayload as _, ExternalSendersExtension, FramedContentBody,
    MlsMessage, MlsMessageBody, PrivateMessage, ProtocolVersion, PublicMessage, Sender,
};
use crate::crypto::SuiteProvider;
use crate::framing::unprotect_public_without_membership_key;
use crate::group::proposal_list::ResolvedProposal;
use crate::group::received::{
    check_commit, check_received_proposal, sender_signature_key, CheckedCommit,
};
use crate::group::safe_aad::incoming_safe_aad;
use crate::group::{GroupError, Services};
use crate::schedule::interim_transcript_hash;
use crate::tree::LeafIndex;

impl PublicGroup {
    /// Decodes an encoded `MLSMessage` (strictly: no trailing bytes) of at most `max_size`
    /// octets and processes it like [`Self::process`].
    pub fn process_bytes(
        &self,
        services: &Services<'_>,
        bytes: &[u8],
        max_size: usize,
        now: u64,
    ) -> Result<Observed, PublicGroupError> {
        if bytes.len() > max_size {
            return Err(PublicGroupError::MessageTooLarge {
                size: bytes.len(),
                max: max_size,
            });
        }
        let message = MlsMessage::decode(bytes)?;
        self.process(services, &message, now)
    }

    /// Checks `message` against the current epoch without changing the view (apply the result
    /// with [`Self::apply`]). A PublicMessage is checked as a member checks it, except for
    /// what needs the epoch's secrets: group and epoch (a Commit or proposal of another epoch
    /// is [`PublicGroupError::WrongEpoch`]); the framing rules (a member's message must carry
    /// a membership tag, whose value is not checked); the sender's signature under its key
    /// (member leaf, external sender, the new member's KeyPackage or UpdatePath leaf); a
    /// proposal's validity (§12.1); a Commit's proposal list, new tree and transcript
    /// ([`StagedPublicCommit`]). A PrivateMessage of this group yields its cleartext header,
    /// [`Observed::Unverified`]. `now` is the time (seconds since the Unix epoch) KeyPackage
    /// lifetimes are checked at. After a committed ReInit every message is refused.
    pub fn process(
        &self,
        services: &Services<'_>,
        message: &MlsMessage,
        now: u64,
    ) -> Result<Observed, PublicGroupError> {
        if message.version != ProtocolVersion::MLS10 {
            return Err(PublicGroupError::UnexpectedWireFormat(
                message.wire_format(),
            ));
        }
        if self.reinit.is_some() {
            return Err(PublicGroupError::ReInitCommitted);
        }
        match &message.body {
            MlsMessageBody::PublicMessage(m) => self.process_public(services, m, now),
            MlsMessageBody::PrivateMessage(m) => self.private_header(m),
            _ => Err(PublicGroupError::UnexpectedWireFormat(
                message.wire_format(),
            )),
        }
    }

    fn private_header(&self, message: &PrivateMessage) -> Result<Observed, PublicGroupError> {
        if message.group_id.as_slice() != self.group_id() {
            return Err(PublicGroupError::WrongGroup);
        }
        let authenticated_data = message.authenticated_data.as_slice();
        let aad = if message.epoch == self.epoch() {
            self.observed_aad(authenticated_data)?
        } else {
            ObservedAad {
                authenticated_data: authenticated_data.to_vec(),
                safe_aad: None,
            }
        };
        Ok(Observed::Unverified(UnverifiedHeader {
            group_id: message.group_id.as_slice().to_vec(),
            epoch: message.epoch,
            content_type: message.content_type,
            aad,
        }))
    }

    /// `authenticated_data` of a message of the current epoch, its `SafeAAD` checked and
    /// parsed when the epoch uses SafeAAD (as a member checks it, `group::safe_aad`).
    fn observed_aad(&self, authenticated_data: &[u8]) -> Result<ObservedAad, PublicGroupError> {
        let (safe_aad, _) = incoming_safe_aad(&self.context, authenticated_data)?;
        Ok(ObservedAad {
            authenticated_data: authenticated_data.to_vec(),
            safe_aad,
        })
    }

    fn process_public(
        &self,
        services: &Services<'_>,
        message: &PublicMessage,
        now: u64,
    ) -> Result<Observed, PublicGroupError> {
        let content = &message.content;
        if content.group_id.as_slice() != self.group_id() {
            return Err(PublicGroupError::WrongGroup);
        }
        if content.epoch != self.epoch() {
            return Err(PublicGroupError::WrongEpoch {
                current: self.epoch(),
                got: content.epoch,
            });
        }
        let aad = self.observed_aad(content.authenticated_data.as_slice())?;
        let cs = services
            .crypto
            .suite(self.cipher_suite())
            .map_err(GroupError::from)?;
        let unverified =
            unprotect_public_without_membership_key(cs, message.clone(), &self.context)?;
        let key = sender_signature_key(&self.context, &self.tree, &unverified)?;
        let auth = unverified.verify(cs, &key)?;
        let sender = self.observed_sender(&auth)?;
        match &auth.content.body {
            FramedContentBody::Proposal(proposal) => {
                let raw_sender = auth.content.sender;
                check_received_proposal(
                    cs,
                    services,
                    &self.epoch_view(),
                    raw_sender,
                    proposal,
                    now,
                )?;
                Ok(Observed::Proposal(ObservedProposal {
                    group_id: self.group_id().to_vec(),
                    epoch: self.epoch(),
                    raw_sender,
                    sender,
                    reference: auth.proposal_ref(cs).map_err(GroupError::from)?,
                    proposal: proposal.clone(),
                    aad,
                }))
            }
            FramedContentBody::Commit(_) => {
                let checked = check_commit(
                    cs,
                    services,
                    &self.epoch_view(),
                    &auth,
                    |reference| {
                        self.proposals
                            .iter()
                            .find(|p| &p.reference == reference)
                            .map(ResolvedProposal::from)
                    },
                    now,
                )?;
                let staged = self.stage(cs, &auth, sender, aad, checked)?;
                Ok(Observed::Commit(Box::new(staged)))
            }
            FramedContentBody::Application(_) => {
                Err(PublicGroupError::UnexpectedSender(auth.content.sender))
            }
        }
    }

    /// The authenticated sender of `auth`, with its identity.
    fn observed_sender(
        &self,
        auth: &AuthenticatedContent,
    ) -> Result<ObservedSender, PublicGroupError> {
        let identity = |c| credential_identity(c).to_vec();
        Ok(match auth.content.sender {
            Sender::Member(leaf) => ObservedSender::Member {
                leaf_index: LeafIndex(leaf),
                identity: self
                    .tree
                    .leaf(LeafIndex(leaf))
                    .map(|l| identity(&l.credential))
                    .ok_or(PublicGroupError::UnknownSender(leaf))?,
            },
            Sender::External(index) => {
                let senders = ExternalSendersExtension::find_in(&self.context.extensions)
                    .map_err(GroupError::from)?
                    .ok_or(PublicGroupError::UnknownExternalSender(index))?;
                let sender = senders
                    .external_senders
                    .get(index as usize)
                    .ok_or(PublicGroupError::UnknownExternalSender(index))?;
                ObservedSender::External {
                    index,
                    identity: identity(&sender.credential),
                }
            }
            Sender::NewMemberProposal => match &auth.content.body {
                FramedContentBody::Proposal(crate::codec::Proposal::Add(add)) => {
                    ObservedSender::NewMemberProposal {
                        identity: identity(&add.key_package.leaf_node.credential),
                    }
                }
                _ => {
                    return Err(PublicGroupError::UnexpectedSender(
                        Sender::NewMemberProposal,
                    ))
                }
            },
            Sender::NewMemberCommit => match &auth.content.body {
                FramedContentBody::Commit(commit) => ObservedSender::NewMemberCommit {
                    identity: commit
                        .path
                        .as_ref()
                        .map(|p| identity(&p.leaf_node.credential))
                        .ok_or(PublicGroupError::MissingPath)?,
                },
                _ => return Err(PublicGroupError::UnexpectedSender(Sender::NewMemberCommit)),
            },
        })
    }

    /// The staged Commit: what `checked` changes, and the next epoch's transcript.
    fn stage(
        &self,
        cs: &dyn SuiteProvider,
        auth: &AuthenticatedContent,
        sender: ObservedSender,
        aad: ObservedAad,
        checked: CheckedCommit,
    ) -> Result<StagedPublicCommit, PublicGroupError> {
        let tag = auth
            .auth
            .confirmation_tag
            .as_ref()
            .map(|t| t.as_slice().to_vec())
            .ok_or(PublicGroupError::UnexpectedSender(auth.content.sender))?;
        let interim = interim_transcript_hash(
            cs,
            checked.context.confirmed_transcript_hash.as_slice(),
            &tag,
        )
        .map_err(GroupError::from)?;
        let identity_at = |leaf: LeafIndex| {
            checked
                .tree
                .leaf(leaf)
                .map(|l| credential_identity(&l.credential).to_vec())
                .unwrap_or_default()
        };
        let applied = &checked.applied;
        let added = applied
            .added
            .iter()
            .map(|a| AddedLeaf {
                leaf_index: a.leaf_index,
                identity: credential_identity(&a.key_package.leaf_node.credential).to_vec(),
                key_package_ref: a.key_package_ref.clone(),
            })
            .collect();
        let removed: Vec<RemovedLeaf> = applied
            .removed
            .iter()
            .map(|r| RemovedLeaf {
                leaf_index: r.leaf_index,
                identity: credential_identity(&r.leaf_node.credential).to_vec(),
            })
            .collect();
        let updated = applied
            .updated
            .iter()
            .map(|&leaf_index| UpdatedLeaf {
                leaf_index,
                identity: identity_at(leaf_index),
            })
            .collect();
        let has_path =
            matches!(&auth.content.body, FramedContentBody::Commit(c) if c.path.is_some());
        let external = checked.external.then(|| ExternalJoin {
            leaf_index: checked.committer,
            identity: identity_at(checked.committer),
            resync_removed: removed.first().cloned(),
        });
        Ok(StagedPublicCommit {
            base_epoch: self.epoch(),
            base_interim_transcript_hash: self.interim_transcript_hash.clone(),
            aad,
            sender,
            added,
            removed,
            updated,
            path_leaf: has_path.then_some(checked.committer),
            external,
            psks: applied.psks.clone(),
            reinit: applied.reinit.clone(),
            extensions_changed: applied.extensions_changed,
            context: checked.context,
            tree: checked.tree,
            interim_transcript_hash: interim,
            confirmation_tag: tag,
        })
    }
}
