//! PublicMessage protection (RFC 9420 §6.1, §6.2).
//!
//! Sending: [`sign_public`] signs a [`FramedContent`] for the `mls_public_message` wire format
//! (`SignWithLabel(., "FramedContentTBS", FramedContentTBS)`); the caller sets the
//! `confirmation_tag` of a commit; [`protect_public`] then adds, for a `member` sender,
//! `membership_tag = MAC(membership_key, AuthenticatedContentTBM)`.
//!
//! Receiving: [`unprotect_public`] checks the group and epoch against the GroupContext, the
//! sender/content rules of §6.1 and the membership tag of a `member` sender (compared in
//! constant time), and returns an [`UnverifiedPublicMessage`]. Its content tells the caller
//! which key signed it (a leaf of the tree, an external sender, the leaf of an external
//! commit's path, the KeyPackage of an external Add); [`UnverifiedPublicMessage::verify`]
//! checks the signature under that key and yields the [`AuthenticatedContent`].
//!
//! Application data is never sent or accepted in a PublicMessage (§6: "Applications MUST use
//! PrivateMessage to encrypt application messages").

use crate::codec::{
    AuthenticatedContent, ContentType, FramedContent, FramedContentBody, FramingError,
    GroupContext, ProposalType, PublicMessage, Sender, SenderType, SignatureError, WireFormat,
};
use crate::crypto::{Secret, SignaturePrivateKey, SuiteProvider};

/// Why a PublicMessage could not be built or was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicMessageError {
    /// The content is application data, which only travels in a PrivateMessage.
    #[error("application data cannot be sent as a PublicMessage")]
    ApplicationData,
    /// The AuthenticatedContent was signed for another wire format.
    #[error("wire format {0:?} is not mls_public_message")]
    WrongWireFormat(WireFormat),
    /// The message is for another group than the GroupContext's.
    #[error("the message is for another group")]
    WrongGroupId,
    /// The message is for another epoch than the GroupContext's.
    #[error("the message is for epoch {actual}, the context is at epoch {expected}")]
    WrongEpoch {
        /// The GroupContext's epoch.
        expected: u64,
        /// The message's epoch.
        actual: u64,
    },
    /// This sender type may not send this content (§6.1: `external` and
    /// `new_member_proposal` send proposals, `new_member_commit` sends commits).
    #[error("a {sender_type:?} sender cannot send {content_type:?} content")]
    SenderNotAllowed {
        /// The sender's type.
        sender_type: SenderType,
        /// The content's type.
        content_type: ContentType,
    },
    /// An `external` sender's proposal type is not one external senders may send, or a
    /// `new_member_proposal` is not an Add.
    #[error("a {sender_type:?} sender cannot propose {proposal_type:?}")]
    ProposalNotAllowed {
        /// The sender's type.
        sender_type: SenderType,
        /// The proposal's type.
        proposal_type: ProposalType,
    },
    /// The `confirmation_tag` is missing from a commit or present on other content.
    #[error("confirmation_tag must be present exactly for commits")]
    ConfirmationTagMismatch,
    /// A `member` sender's message needs the epoch's `membership_key` to be protected.
    #[error("a member's PublicMessage needs the membership key")]
    MissingMembershipKey,
    /// A `member` sender's message carries no membership tag.
    #[error("no membership tag")]
    MissingMembershipTag,
    /// A non-member's message carries a membership tag.
    #[error("membership tag on a non-member's message")]
    UnexpectedMembershipTag,
    /// The membership tag does not match `MAC(membership_key, AuthenticatedContentTBM)`.
    #[error("invalid membership tag")]
    InvalidMembershipTag,
    /// The signature does not verify under the sender's key.
    #[error("invalid signature")]
    InvalidSignature,
    /// Signing, or encoding the signed structures, failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

impl From<FramingError> for PublicMessageError {
    fn from(e: FramingError) -> Self {
        match e {
            FramingError::WrongWireFormat(w) => PublicMessageError::WrongWireFormat(w),
            FramingError::MissingMembershipTag => PublicMessageError::MissingMembershipTag,
            FramingError::InvalidMembershipTag => PublicMessageError::InvalidMembershipTag,
            FramingError::MembershipTagNotAllowed => PublicMessageError::UnexpectedMembershipTag,
            FramingError::Signature(e) => PublicMessageError::Signature(e),
            FramingError::Codec(e) => PublicMessageError::Signature(SignatureError::Codec(e)),
        }
    }
}

/// The rules of §6.1 on which sender may send which content in a PublicMessage, and the
/// refusal of application data.
fn check_sender_and_content(content: &FramedContent) -> Result<(), PublicMessageError> {
    let sender_type = content.sender.sender_type();
    let not_allowed = || PublicMessageError::SenderNotAllowed {
        sender_type,
        content_type: content.content_type(),
    };
    match (&content.sender, &content.body) {
        (_, FramedContentBody::Application(_)) => Err(PublicMessageError::ApplicationData),
        (Sender::Member(_), _) => Ok(()),
        (Sender::External(_), FramedContentBody::Proposal(p)) => {
            if p.is_allowed_for_external_sender() {
                Ok(())
            } else {
                Err(PublicMessageError::ProposalNotAllowed {
                    sender_type,
                    proposal_type: p.proposal_type(),
                })
            }
        }
        (Sender::NewMemberProposal, FramedContentBody::Proposal(p)) => {
            if p.proposal_type() == ProposalType::ADD {
                Ok(())
            } else {
                Err(PublicMessageError::ProposalNotAllowed {
                    sender_type,
                    proposal_type: p.proposal_type(),
                })
            }
        }
        (Sender::NewMemberCommit, FramedContentBody::Commit(_)) => Ok(()),
        _ => Err(not_allowed()),
    }
}

fn check_group_epoch(
    content: &FramedContent,
    context: &GroupContext,
) -> Result<(), PublicMessageError> {
    if content.group_id.as_slice() != context.group_id.as_slice() {
        return Err(PublicMessageError::WrongGroupId);
    }
    if content.epoch != context.epoch {
        return Err(PublicMessageError::WrongEpoch {
            expected: context.epoch,
            actual: content.epoch,
        });
    }
    Ok(())
}

/// Signs `content` for the `mls_public_message` wire format (§6.1). `context` is the
/// GroupContext of the content's epoch (covered by the signature of `member` and
/// `new_member_commit` senders). A commit's `confirmation_tag` is left `None`: set it once the
/// confirmed transcript hash is known, then call [`protect_public`].
pub fn sign_public(
    cs: &dyn SuiteProvider,
    content: FramedContent,
    context: &GroupContext,
    signature_private_key: &SignaturePrivateKey,
) -> Result<AuthenticatedContent, PublicMessageError> {
    check_sender_and_content(&content)?;
    Ok(AuthenticatedContent::new_signed(
        WireFormat::MLS_PUBLIC_MESSAGE,
        content,
        Some(context),
        cs,
        signature_private_key,
    )?)
}

/// Protects a signed content as a PublicMessage (§6.2). A `member` sender's message gets
/// `membership_tag = MAC(membership_key, AuthenticatedContentTBM)`, and so needs
/// `membership_key`; for other senders it is ignored.
pub fn protect_public(
    cs: &dyn SuiteProvider,
    authenticated_content: AuthenticatedContent,
    context: &GroupContext,
    membership_key: Option<&Secret>,
) -> Result<PublicMessage, PublicMessageError> {
    check_sender_and_content(&authenticated_content.content)?;
    if !authenticated_content
        .auth
        .fits(authenticated_content.content.content_type())
    {
        return Err(PublicMessageError::ConfirmationTagMismatch);
    }
    let mut message = PublicMessage::from_authenticated_content(authenticated_content)?;
    if let Sender::Member(_) = message.content.sender {
        let key = membership_key.ok_or(PublicMessageError::MissingMembershipKey)?;
        message.set_membership_tag(cs, key.as_bytes(), context)?;
    }
    Ok(message)
}

/// A PublicMessage whose group, epoch, sender rules and membership tag have been checked, but
/// not yet its signature. Look up the sender's signature key from [`Self::content`] and call
/// [`Self::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedPublicMessage<'a> {
    authenticated_content: AuthenticatedContent,
    context: &'a GroupContext,
}

impl UnverifiedPublicMessage<'_> {
    /// The sender, whose key must verify the signature.
    pub fn sender(&self) -> Sender {
        self.authenticated_content.content.sender
    }

    /// The content (not yet authenticated).
    pub fn content(&self) -> &FramedContent {
        &self.authenticated_content.content
    }

    /// The content with its auth data (not yet authenticated).
    pub fn authenticated_content(&self) -> &AuthenticatedContent {
        &self.authenticated_content
    }

    /// Verifies the signature under `signature_public_key`, the key of the sender (§6.1).
    pub fn verify(
        self,
        cs: &dyn SuiteProvider,
        signature_public_key: &[u8],
    ) -> Result<AuthenticatedContent, PublicMessageError> {
        match self.authenticated_content.verify_signature(
            cs,
            signature_public_key,
            Some(self.context),
        ) {
            Ok(()) => Ok(self.authenticated_content),
            Err(SignatureError::Crypto(_)) => Err(PublicMessageError::InvalidSignature),
            Err(e) => Err(PublicMessageError::Signature(e)),
        }
    }
}

/// Unprotects a PublicMessage received in the epoch of `context` (§6.2): checks that it is for
/// this group and epoch, that its sender may send its content, that it is not application
/// data, and for a `member` sender the membership tag under `membership_key`. The signature is
/// checked by [`UnverifiedPublicMessage::verify`].
pub fn unprotect_public<'a>(
    cs: &dyn SuiteProvider,
    message: PublicMessage,
    context: &'a GroupContext,
    membership_key: &Secret,
) -> Result<UnverifiedPublicMessage<'a>, PublicMessageError> {
    unprotect_public_with(cs, message, context, Some(membership_key))
}

/// [`unprotect_public`] for a party without the epoch's `membership_key` (an observer such as
/// a delivery service, which holds only the public state of the group): every check is made
/// except the membership tag's value. A `member` sender's message must still carry a tag; a
/// non-member's must not. The signature, checked by [`UnverifiedPublicMessage::verify`], is
/// what authenticates the sender then.
pub fn unprotect_public_without_membership_key<'a>(
    cs: &dyn SuiteProvider,
    message: PublicMessage,
    context: &'a GroupContext,
) -> Result<UnverifiedPublicMessage<'a>, PublicMessageError> {
    unprotect_public_with(cs, message, context, None)
}

fn unprotect_public_with<'a>(
    cs: &dyn SuiteProvider,
    message: PublicMessage,
    context: &'a GroupContext,
    membership_key: Option<&Secret>,
) -> Result<UnverifiedPublicMessage<'a>, PublicMessageError> {
    check_sender_and_content(&message.content)?;
    check_group_epoch(&message.content, context)?;
    if !message.auth.fits(message.content.content_type()) {
        return Err(PublicMessageError::ConfirmationTagMismatch);
    }
    match (message.content.sender, membership_key) {
        (Sender::Member(_), Some(key)) => {
            message.verify_membership_tag(cs, key.as_bytes(), context)?;
        }
        (Sender::Member(_), None) => {
            if message.membership_tag.is_none() {
                return Err(PublicMessageError::MissingMembershipTag);
            }
        }
        _ => {
            if message.membership_tag.is_some() {
                return Err(PublicMessageError::UnexpectedMembershipTag);
            }
        }
    }
    Ok(UnverifiedPublicMessage {
        authenticated_content: message.into_authenticated_content(),
        context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, encode, Commit, ExternalInit, Proposal, VLBytes};
    use crate::framing::test_support::{context, cs, keys};

    fn content(sender: Sender, body: FramedContentBody) -> FramedContent {
        FramedContent {
            group_id: vec![1, 2, 3].into(),
            epoch: 9,
            sender,
            authenticated_data: vec![0xaa].into(),
            body,
        }
    }

    fn proposal() -> FramedContentBody {
        FramedContentBody::Proposal(Proposal::remove(0))
    }

    fn membership_key() -> Secret {
        Secret::new(vec![6; 32])
    }

    /// A member's proposal as a PublicMessage, through the wire encoding.
    fn member_message(body: FramedContentBody, tag: Option<VLBytes>) -> PublicMessage {
        let ctx = context();
        let mut signed = sign_public(
            cs(),
            content(Sender::Member(1), body),
            &ctx,
            &keys(1).private_key,
        )
        .unwrap();
        signed.auth.confirmation_tag = tag;
        let message = protect_public(cs(), signed, &ctx, Some(&membership_key())).unwrap();
        decode_exact(&encode(&message).unwrap()).unwrap()
    }

    #[test]
    fn member_round_trip() {
        let ctx = context();
        for (body, tag) in [
            (proposal(), None),
            (
                FramedContentBody::Commit(Commit::default()),
                Some(VLBytes::new(vec![7; 32])),
            ),
        ] {
            let message = member_message(body.clone(), tag);
            let unverified = unprotect_public(cs(), message, &ctx, &membership_key()).unwrap();
            assert_eq!(unverified.sender(), Sender::Member(1));
            let verified = unverified.verify(cs(), &keys(1).public_key).unwrap();
            assert_eq!(verified.content.body, body);
            assert_eq!(verified.wire_format, WireFormat::MLS_PUBLIC_MESSAGE);
        }
    }

    #[test]
    fn wrong_membership_key_or_tampering() {
        let ctx = context();
        let message = member_message(proposal(), None);
        assert_eq!(
            unprotect_public(cs(), message.clone(), &ctx, &Secret::new(vec![8; 32])).err(),
            Some(PublicMessageError::InvalidMembershipTag)
        );
        let mut tampered = message.clone();
        tampered.content.authenticated_data = vec![0xab].into();
        assert_eq!(
            unprotect_public(cs(), tampered, &ctx, &membership_key()).err(),
            Some(PublicMessageError::InvalidMembershipTag)
        );
        let mut untagged = message;
        untagged.membership_tag = None;
        assert_eq!(
            unprotect_public(cs(), untagged, &ctx, &membership_key()).err(),
            Some(PublicMessageError::MissingMembershipTag)
        );
    }

    #[test]
    fn bad_signature() {
        let ctx = context();
        let message = member_message(proposal(), None);
        // Another key.
        let unverified = unprotect_public(cs(), message.clone(), &ctx, &membership_key()).unwrap();
        assert_eq!(
            unverified.verify(cs(), &keys(2).public_key).err(),
            Some(PublicMessageError::InvalidSignature)
        );
        // A tampered signature with a membership tag recomputed over it: the tag passes, the
        // signature does not.
        let mut tampered = message;
        let mut sig = tampered.auth.signature.as_slice().to_vec();
        sig[0] ^= 1;
        tampered.auth.signature = sig.into();
        tampered
            .set_membership_tag(cs(), membership_key().as_bytes(), &ctx)
            .unwrap();
        let unverified = unprotect_public(cs(), tampered, &ctx, &membership_key()).unwrap();
        assert_eq!(
            unverified.verify(cs(), &keys(1).public_key).err(),
            Some(PublicMessageError::InvalidSignature)
        );
    }

    #[test]
    fn application_data_refused() {
        let ctx = context();
        let body = FramedContentBody::Application(vec![1, 2].into());
        assert_eq!(
            sign_public(
                cs(),
                content(Sender::Member(1), body.clone()),
                &ctx,
                &keys(1).private_key
            )
            .err(),
            Some(PublicMessageError::ApplicationData)
        );
        // Built by hand, it is refused both ways.
        let signed = AuthenticatedContent::new_signed(
            WireFormat::MLS_PUBLIC_MESSAGE,
            content(Sender::Member(1), body),
            Some(&ctx),
            cs(),
            &keys(1).private_key,
        )
        .unwrap();
        assert_eq!(
            protect_public(cs(), signed.clone(), &ctx, Some(&membership_key())).err(),
            Some(PublicMessageError::ApplicationData)
        );
        let mut message = PublicMessage::from_authenticated_content(signed).unwrap();
        message
            .set_membership_tag(cs(), membership_key().as_bytes(), &ctx)
            .unwrap();
        let message: PublicMessage = decode_exact(&encode(&message).unwrap()).unwrap();
        assert_eq!(
            unprotect_public(cs(), message, &ctx, &membership_key()).err(),
            Some(PublicMessageError::ApplicationData)
        );
    }

    #[test]
    fn wrong_group_or_epoch() {
        let message = member_message(proposal(), None);
        let mut ctx = context();
        ctx.epoch = 10;
        assert_eq!(
            unprotect_public(cs(), message.clone(), &ctx, &membership_key()).err(),
            Some(PublicMessageError::WrongEpoch {
                expected: 10,
                actual: 9
            })
        );
        let mut ctx = context();
        ctx.group_id = vec![9].into();
        assert_eq!(
            unprotect_public(cs(), message, &ctx, &membership_key()).err(),
            Some(PublicMessageError::WrongGroupId)
        );
    }

    #[test]
    fn confirmation_tag_and_membership_key_required() {
        let ctx = context();
        let commit = FramedContentBody::Commit(Commit::default());
        let signed = sign_public(
            cs(),
            content(Sender::Member(1), commit),
            &ctx,
            &keys(1).private_key,
        )
        .unwrap();
        assert_eq!(
            protect_public(cs(), signed, &ctx, Some(&membership_key())).err(),
            Some(PublicMessageError::ConfirmationTagMismatch)
        );
        let signed = sign_public(
            cs(),
            content(Sender::Member(1), proposal()),
            &ctx,
            &keys(1).private_key,
        )
        .unwrap();
        assert_eq!(
            protect_public(cs(), signed.clone(), &ctx, None).err(),
            Some(PublicMessageError::MissingMembershipKey)
        );
        let mut private = signed;
        private.wire_format = WireFormat::MLS_PRIVATE_MESSAGE;
        assert_eq!(
            protect_public(cs(), private, &ctx, Some(&membership_key())).err(),
            Some(PublicMessageError::WrongWireFormat(
                WireFormat::MLS_PRIVATE_MESSAGE
            ))
        );
    }

    #[test]
    fn non_member_senders() {
        let ctx = context();
        // An external sender's Remove: no membership tag, the signature does not cover the
        // GroupContext.
        let signed = sign_public(
            cs(),
            content(Sender::External(0), proposal()),
            &ctx,
            &keys(3).private_key,
        )
        .unwrap();
        let message = protect_public(cs(), signed, &ctx, None).unwrap();
        assert!(message.membership_tag.is_none());
        let message: PublicMessage = decode_exact(&encode(&message).unwrap()).unwrap();
        let verified = unprotect_public(cs(), message, &ctx, &membership_key())
            .unwrap()
            .verify(cs(), &keys(3).public_key)
            .unwrap();
        assert_eq!(verified.content.sender, Sender::External(0));

        // Rules of §6.1.
        let external_init = FramedContentBody::Proposal(Proposal::ExternalInit(ExternalInit {
            kem_output: vec![1].into(),
        }));
        assert!(matches!(
            sign_public(
                cs(),
                content(Sender::External(0), external_init),
                &ctx,
                &keys(3).private_key
            ),
            Err(PublicMessageError::ProposalNotAllowed { .. })
        ));
        assert!(matches!(
            sign_public(
                cs(),
                content(Sender::NewMemberProposal, proposal()),
                &ctx,
                &keys(3).private_key
            ),
            Err(PublicMessageError::ProposalNotAllowed { .. })
        ));
        assert!(matches!(
            sign_public(
                cs(),
                content(Sender::NewMemberCommit, proposal()),
                &ctx,
                &keys(3).private_key
            ),
            Err(PublicMessageError::SenderNotAllowed { .. })
        ));
        assert!(matches!(
            sign_public(
                cs(),
                content(
                    Sender::External(0),
                    FramedContentBody::Commit(Commit::default())
                ),
                &ctx,
                &keys(3).private_key
            ),
            Err(PublicMessageError::SenderNotAllowed { .. })
        ));

        // A new member's external commit covers the GroupContext.
        let mut signed = sign_public(
            cs(),
            content(
                Sender::NewMemberCommit,
                FramedContentBody::Commit(Commit::default()),
            ),
            &ctx,
            &keys(4).private_key,
        )
        .unwrap();
        signed.auth.confirmation_tag = Some(vec![1; 32].into());
        let message = protect_public(cs(), signed, &ctx, Some(&membership_key())).unwrap();
        assert!(message.membership_tag.is_none());
        let unverified = unprotect_public(cs(), message.clone(), &ctx, &membership_key()).unwrap();
        unverified.verify(cs(), &keys(4).public_key).unwrap();
        let mut other = context();
        other.tree_hash = vec![0; 32].into();
        let unverified = unprotect_public(cs(), message, &other, &membership_key()).unwrap();
        assert_eq!(
            unverified.verify(cs(), &keys(4).public_key).err(),
            Some(PublicMessageError::InvalidSignature)
        );
    }
}
