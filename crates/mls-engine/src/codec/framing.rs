//! Message framing wire structs (RFC 9420 §6): senders, FramedContent and its authentication,
//! PublicMessage, PrivateMessage and its plaintext, sender data, MLSMessage.
//!
//! Several RFC structs have fields that exist only for some values of another field (the
//! `confirmation_tag` of a commit, the `membership_tag` of a member's PublicMessage, the
//! GroupContext in a member's FramedContentTBS). Their encoders refuse a value whose optional
//! field disagrees with the field that selects it, so every value that encodes decodes back to
//! itself.

use std::io::Write;

use subtle::ConstantTimeEq as _;
use tls_codec::{
    DeserializeBytes, Serialize, Size, TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize,
    VLBytes,
};

use super::{
    CodecError, Commit, GroupContext, GroupInfo, KeyPackage, Proposal, ProposalRef,
    ProtocolVersion, Welcome,
};
use crate::crypto::{CryptoError, MlsCrypto as _, SignaturePrivateKey, SuiteProvider};

/// The label of a FramedContent signature (§6.1).
pub const FRAMED_CONTENT_TBS_LABEL: &str = "FramedContentTBS";

/// `uint16 WireFormat` (§6, §17.2). Any value decodes; [`MlsMessage`] refuses the ones it
/// cannot carry.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct WireFormat(pub u16);

impl WireFormat {
    /// `mls_public_message`.
    pub const MLS_PUBLIC_MESSAGE: Self = Self(1);
    /// `mls_private_message`.
    pub const MLS_PRIVATE_MESSAGE: Self = Self(2);
    /// `mls_welcome`.
    pub const MLS_WELCOME: Self = Self(3);
    /// `mls_group_info`.
    pub const MLS_GROUP_INFO: Self = Self(4);
    /// `mls_key_package`.
    pub const MLS_KEY_PACKAGE: Self = Self(5);
}

/// `ContentType` (§6). `reserved(0)` and undefined values are refused when decoding.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum ContentType {
    /// `application(1)`.
    Application = 1,
    /// `proposal(2)`.
    Proposal = 2,
    /// `commit(3)`.
    Commit = 3,
}

/// `SenderType` (§6). `reserved(0)` and undefined values are refused when decoding.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum SenderType {
    /// `member(1)`.
    Member = 1,
    /// `external(2)`.
    External = 2,
    /// `new_member_proposal(3)`.
    NewMemberProposal = 3,
    /// `new_member_commit(4)`.
    NewMemberCommit = 4,
}

/// `Sender` (§6): `sender_type` followed by the field it selects.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum Sender {
    /// `member`: `uint32 leaf_index`.
    #[tls_codec(discriminant = 1)]
    Member(u32),
    /// `external`: `uint32 sender_index` into the `external_senders` extension.
    #[tls_codec(discriminant = 2)]
    External(u32),
    /// `new_member_proposal`: a joiner proposing its own Add.
    #[tls_codec(discriminant = 3)]
    NewMemberProposal,
    /// `new_member_commit`: a joiner sending an external Commit.
    #[tls_codec(discriminant = 4)]
    NewMemberCommit,
}

impl Sender {
    /// The sender's `SenderType`.
    pub fn sender_type(&self) -> SenderType {
        match self {
            Sender::Member(_) => SenderType::Member,
            Sender::External(_) => SenderType::External,
            Sender::NewMemberProposal => SenderType::NewMemberProposal,
            Sender::NewMemberCommit => SenderType::NewMemberCommit,
        }
    }

    /// Whether FramedContentTBS covers the GroupContext for this sender (`member` and
    /// `new_member_commit`, §6.1).
    pub fn signs_group_context(&self) -> bool {
        matches!(self, Sender::Member(_) | Sender::NewMemberCommit)
    }

    /// The leaf index of a `member` sender.
    pub fn leaf_index(&self) -> Option<u32> {
        match self {
            Sender::Member(leaf_index) => Some(*leaf_index),
            _ => None,
        }
    }
}

/// The `content_type` of a FramedContent with the body it selects (§6).
///
/// Encoded with its `ContentType` octet inside FramedContent; without it inside
/// PrivateMessageContent, whose content type is `PrivateMessage.content_type`.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
#[allow(clippy::large_enum_variant)] // Message bodies are short-lived; boxing would only add allocations.
pub enum FramedContentBody {
    /// `application`: `opaque application_data<V>`.
    #[tls_codec(discriminant = 1)]
    Application(VLBytes),
    /// `proposal`: one Proposal.
    #[tls_codec(discriminant = 2)]
    Proposal(Proposal),
    /// `commit`: one Commit.
    #[tls_codec(discriminant = 3)]
    Commit(Commit),
}

impl FramedContentBody {
    /// The body's `ContentType`.
    pub fn content_type(&self) -> ContentType {
        match self {
            FramedContentBody::Application(_) => ContentType::Application,
            FramedContentBody::Proposal(_) => ContentType::Proposal,
            FramedContentBody::Commit(_) => ContentType::Commit,
        }
    }

    /// The encoded length of the body without its `ContentType` octet.
    pub fn payload_len(&self) -> usize {
        match self {
            FramedContentBody::Application(data) => data.tls_serialized_len(),
            FramedContentBody::Proposal(proposal) => proposal.tls_serialized_len(),
            FramedContentBody::Commit(commit) => commit.tls_serialized_len(),
        }
    }

    /// Writes the body without its `ContentType` octet.
    pub fn serialize_payload<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        match self {
            FramedContentBody::Application(data) => data.tls_serialize(writer),
            FramedContentBody::Proposal(proposal) => proposal.tls_serialize(writer),
            FramedContentBody::Commit(commit) => commit.tls_serialize(writer),
        }
    }

    /// Reads a body of `content_type` that has no `ContentType` octet of its own.
    pub fn deserialize_payload(
        content_type: ContentType,
        bytes: &[u8],
    ) -> Result<(Self, &[u8]), tls_codec::Error> {
        Ok(match content_type {
            ContentType::Application => {
                let (data, rest) = VLBytes::tls_deserialize_bytes(bytes)?;
                (FramedContentBody::Application(data), rest)
            }
            ContentType::Proposal => {
                let (proposal, rest) = Proposal::tls_deserialize_bytes(bytes)?;
                (FramedContentBody::Proposal(proposal), rest)
            }
            ContentType::Commit => {
                let (commit, rest) = Commit::tls_deserialize_bytes(bytes)?;
                (FramedContentBody::Commit(commit), rest)
            }
        })
    }
}

/// `FramedContent` (§6).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct FramedContent {
    /// The group ID.
    pub group_id: VLBytes,
    /// The epoch the content belongs to.
    pub epoch: u64,
    /// Who sent it.
    pub sender: Sender,
    /// Application-chosen data, authenticated but not encrypted.
    pub authenticated_data: VLBytes,
    /// `content_type` and the body it selects.
    pub body: FramedContentBody,
}

impl FramedContent {
    /// The content's `ContentType`.
    pub fn content_type(&self) -> ContentType {
        self.body.content_type()
    }

    /// The `FramedContentTBS` of this content sent as `wire_format` (§6.1). `context` is the
    /// GroupContext of the content's epoch; it is required when the sender is `member` or
    /// `new_member_commit` and ignored otherwise.
    pub fn to_be_signed<'a>(
        &'a self,
        wire_format: WireFormat,
        context: Option<&'a GroupContext>,
    ) -> Result<FramedContentTBS<'a>, SignatureError> {
        FramedContentTBS::new(wire_format, self, context)
    }
}

/// `FramedContentAuthData` (§6.1): the signature, and the `confirmation_tag` exactly when the
/// content is a commit. Decoded with the content type in hand:
/// [`FramedContentAuthData::deserialize_bytes_for`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramedContentAuthData {
    /// `SignWithLabel(., "FramedContentTBS", FramedContentTBS)`.
    pub signature: VLBytes,
    /// `MAC(confirmation_key, confirmed_transcript_hash)`, present iff the content is a commit.
    pub confirmation_tag: Option<VLBytes>,
}

impl FramedContentAuthData {
    /// Reads the auth data of a content of `content_type`.
    pub fn deserialize_bytes_for(
        content_type: ContentType,
        bytes: &[u8],
    ) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (signature, rest) = VLBytes::tls_deserialize_bytes(bytes)?;
        let (confirmation_tag, rest) = if content_type == ContentType::Commit {
            let (tag, rest) = VLBytes::tls_deserialize_bytes(rest)?;
            (Some(tag), rest)
        } else {
            (None, rest)
        };
        Ok((
            Self {
                signature,
                confirmation_tag,
            },
            rest,
        ))
    }

    /// Whether the presence of `confirmation_tag` fits `content_type`.
    pub fn fits(&self, content_type: ContentType) -> bool {
        self.confirmation_tag.is_some() == (content_type == ContentType::Commit)
    }

    fn check_fits(&self, content_type: ContentType) -> Result<(), tls_codec::Error> {
        if self.fits(content_type) {
            Ok(())
        } else {
            Err(tls_codec::Error::EncodingError(
                "confirmation_tag must be present exactly for commits".into(),
            ))
        }
    }
}

impl Size for FramedContentAuthData {
    fn tls_serialized_len(&self) -> usize {
        self.signature.tls_serialized_len()
            + self
                .confirmation_tag
                .as_ref()
                .map_or(0, |tag| tag.tls_serialized_len())
    }
}

impl Serialize for FramedContentAuthData {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        let mut written = self.signature.tls_serialize(writer)?;
        if let Some(tag) = &self.confirmation_tag {
            written += tag.tls_serialize(writer)?;
        }
        Ok(written)
    }
}

/// `AuthenticatedContent` (§6): a FramedContent with its wire format and authentication.
/// Its encoding is the input of `MakeProposalRef` (§5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedContent {
    /// The wire format the content is (or will be) sent in.
    pub wire_format: WireFormat,
    /// The content.
    pub content: FramedContent,
    /// Its signature (and confirmation tag for commits).
    pub auth: FramedContentAuthData,
}

impl AuthenticatedContent {
    /// Signs `content` for `wire_format` with `signature_private_key`. `context` is as for
    /// [`FramedContent::to_be_signed`]. The `confirmation_tag` of a commit is left `None`: set
    /// it once the confirmed transcript hash is known (the value does not encode before).
    pub fn new_signed(
        wire_format: WireFormat,
        content: FramedContent,
        context: Option<&GroupContext>,
        suite: &dyn SuiteProvider,
        signature_private_key: &SignaturePrivateKey,
    ) -> Result<Self, SignatureError> {
        let signature = content
            .to_be_signed(wire_format, context)?
            .sign(suite, signature_private_key)?;
        Ok(Self {
            wire_format,
            content,
            auth: FramedContentAuthData {
                signature: VLBytes::new(signature),
                confirmation_tag: None,
            },
        })
    }

    /// Verifies `auth.signature` under `signature_public_key`.
    pub fn verify_signature(
        &self,
        suite: &dyn SuiteProvider,
        signature_public_key: &[u8],
        context: Option<&GroupContext>,
    ) -> Result<(), SignatureError> {
        self.content
            .to_be_signed(self.wire_format, context)?
            .verify(suite, signature_public_key, self.auth.signature.as_slice())
    }

    /// `MakeProposalRef` of this AuthenticatedContent (§5.2).
    pub fn proposal_ref(&self, suite: &dyn SuiteProvider) -> Result<ProposalRef, SignatureError> {
        let encoded = super::encode(self)?;
        Ok(ProposalRef::from(suite.make_proposal_ref(&encoded)?))
    }
}

impl Size for AuthenticatedContent {
    fn tls_serialized_len(&self) -> usize {
        self.wire_format.tls_serialized_len()
            + self.content.tls_serialized_len()
            + self.auth.tls_serialized_len()
    }
}

impl Serialize for AuthenticatedContent {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        self.auth.check_fits(self.content.content_type())?;
        Ok(self.wire_format.tls_serialize(writer)?
            + self.content.tls_serialize(writer)?
            + self.auth.tls_serialize(writer)?)
    }
}

impl DeserializeBytes for AuthenticatedContent {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (wire_format, rest) = WireFormat::tls_deserialize_bytes(bytes)?;
        let (content, rest) = FramedContent::tls_deserialize_bytes(rest)?;
        let (auth, rest) =
            FramedContentAuthData::deserialize_bytes_for(content.content_type(), rest)?;
        Ok((
            Self {
                wire_format,
                content,
                auth,
            },
            rest,
        ))
    }
}

/// `FramedContentTBS` (§6.1), borrowed from the content it covers. Built by
/// [`FramedContent::to_be_signed`]; only encoded, never decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramedContentTBS<'a> {
    /// `version = mls10`.
    pub version: ProtocolVersion,
    /// The wire format the content is sent in.
    pub wire_format: WireFormat,
    /// The content.
    pub content: &'a FramedContent,
    /// The GroupContext, present iff the sender is `member` or `new_member_commit`.
    pub context: Option<&'a GroupContext>,
}

impl<'a> FramedContentTBS<'a> {
    /// The TBS of `content`; `context` is kept only for senders that sign it, and is then
    /// required ([`SignatureError::MissingGroupContext`]).
    pub fn new(
        wire_format: WireFormat,
        content: &'a FramedContent,
        context: Option<&'a GroupContext>,
    ) -> Result<Self, SignatureError> {
        let context = if content.sender.signs_group_context() {
            Some(context.ok_or(SignatureError::MissingGroupContext)?)
        } else {
            None
        };
        Ok(Self {
            version: ProtocolVersion::MLS10,
            wire_format,
            content,
            context,
        })
    }

    /// The encoded FramedContentTBS.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        super::encode(self)
    }

    /// `SignWithLabel(signature_private_key, "FramedContentTBS", self)`.
    pub fn sign(
        &self,
        suite: &dyn SuiteProvider,
        signature_private_key: &SignaturePrivateKey,
    ) -> Result<Vec<u8>, SignatureError> {
        let tbs = self.to_bytes()?;
        Ok(suite.sign_with_label(signature_private_key, FRAMED_CONTENT_TBS_LABEL, &tbs)?)
    }

    /// `VerifyWithLabel(signature_public_key, "FramedContentTBS", self, signature)`.
    pub fn verify(
        &self,
        suite: &dyn SuiteProvider,
        signature_public_key: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let tbs = self.to_bytes()?;
        Ok(suite.verify_with_label(
            signature_public_key,
            FRAMED_CONTENT_TBS_LABEL,
            &tbs,
            signature,
        )?)
    }
}

impl Size for FramedContentTBS<'_> {
    fn tls_serialized_len(&self) -> usize {
        self.version.tls_serialized_len()
            + self.wire_format.tls_serialized_len()
            + self.content.tls_serialized_len()
            + self.context.map_or(0, |c| c.tls_serialized_len())
    }
}

impl Serialize for FramedContentTBS<'_> {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        if self.context.is_some() != self.content.sender.signs_group_context() {
            return Err(tls_codec::Error::EncodingError(
                "FramedContentTBS carries the GroupContext exactly for member and \
                 new_member_commit senders"
                    .into(),
            ));
        }
        let mut written = self.version.tls_serialize(writer)?
            + self.wire_format.tls_serialize(writer)?
            + self.content.tls_serialize(writer)?;
        if let Some(context) = self.context {
            written += context.tls_serialize(writer)?;
        }
        Ok(written)
    }
}

/// `AuthenticatedContentTBM` (§6.2): the input of a PublicMessage's `membership_tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthenticatedContentTBM<'a> {
    /// The FramedContentTBS of the content.
    pub content_tbs: FramedContentTBS<'a>,
    /// The content's auth data.
    pub auth: &'a FramedContentAuthData,
}

impl Size for AuthenticatedContentTBM<'_> {
    fn tls_serialized_len(&self) -> usize {
        self.content_tbs.tls_serialized_len() + self.auth.tls_serialized_len()
    }
}

impl Serialize for AuthenticatedContentTBM<'_> {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        self.auth
            .check_fits(self.content_tbs.content.content_type())?;
        Ok(self.content_tbs.tls_serialize(writer)? + self.auth.tls_serialize(writer)?)
    }
}

/// `PublicMessage` (§6.2): a signed, unencrypted content; members add a `membership_tag`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicMessage {
    /// The content.
    pub content: FramedContent,
    /// Its signature (and confirmation tag for commits).
    pub auth: FramedContentAuthData,
    /// `MAC(membership_key, AuthenticatedContentTBM)`, present iff the sender is a `member`.
    pub membership_tag: Option<VLBytes>,
}

impl PublicMessage {
    /// Wraps a public AuthenticatedContent. A member's message needs its membership tag
    /// ([`Self::set_membership_tag`]) before it encodes.
    pub fn from_authenticated_content(
        authenticated_content: AuthenticatedContent,
    ) -> Result<Self, FramingError> {
        if authenticated_content.wire_format != WireFormat::MLS_PUBLIC_MESSAGE {
            return Err(FramingError::WrongWireFormat(
                authenticated_content.wire_format,
            ));
        }
        Ok(Self {
            content: authenticated_content.content,
            auth: authenticated_content.auth,
            membership_tag: None,
        })
    }

    /// The AuthenticatedContent of this message (wire format `mls_public_message`).
    pub fn into_authenticated_content(self) -> AuthenticatedContent {
        AuthenticatedContent {
            wire_format: WireFormat::MLS_PUBLIC_MESSAGE,
            content: self.content,
            auth: self.auth,
        }
    }

    /// The encoded `AuthenticatedContentTBM` under `context` (the GroupContext of the epoch).
    pub fn membership_tag_input(&self, context: &GroupContext) -> Result<Vec<u8>, FramingError> {
        let tbm = AuthenticatedContentTBM {
            content_tbs: FramedContentTBS::new(
                WireFormat::MLS_PUBLIC_MESSAGE,
                &self.content,
                Some(context),
            )?,
            auth: &self.auth,
        };
        Ok(super::encode(&tbm)?)
    }

    /// `MAC(membership_key, AuthenticatedContentTBM)`.
    pub fn compute_membership_tag(
        &self,
        suite: &dyn SuiteProvider,
        membership_key: &[u8],
        context: &GroupContext,
    ) -> Result<Vec<u8>, FramingError> {
        Ok(suite.mac(membership_key, &self.membership_tag_input(context)?))
    }

    /// Computes and stores the membership tag of a `member` sender's message.
    pub fn set_membership_tag(
        &mut self,
        suite: &dyn SuiteProvider,
        membership_key: &[u8],
        context: &GroupContext,
    ) -> Result<(), FramingError> {
        if !matches!(self.content.sender, Sender::Member(_)) {
            return Err(FramingError::MembershipTagNotAllowed);
        }
        let tag = self.compute_membership_tag(suite, membership_key, context)?;
        self.membership_tag = Some(VLBytes::new(tag));
        Ok(())
    }

    /// Checks the membership tag of a `member` sender's message (in constant time).
    pub fn verify_membership_tag(
        &self,
        suite: &dyn SuiteProvider,
        membership_key: &[u8],
        context: &GroupContext,
    ) -> Result<(), FramingError> {
        let Some(tag) = &self.membership_tag else {
            return Err(FramingError::MissingMembershipTag);
        };
        let expected = self.compute_membership_tag(suite, membership_key, context)?;
        if bool::from(expected.as_slice().ct_eq(tag.as_slice())) {
            Ok(())
        } else {
            Err(FramingError::InvalidMembershipTag)
        }
    }
}

impl Size for PublicMessage {
    fn tls_serialized_len(&self) -> usize {
        self.content.tls_serialized_len()
            + self.auth.tls_serialized_len()
            + self
                .membership_tag
                .as_ref()
                .map_or(0, |tag| tag.tls_serialized_len())
    }
}

impl Serialize for PublicMessage {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        self.auth.check_fits(self.content.content_type())?;
        let member = matches!(self.content.sender, Sender::Member(_));
        if self.membership_tag.is_some() != member {
            return Err(tls_codec::Error::EncodingError(
                "membership_tag must be present exactly for member senders".into(),
            ));
        }
        let mut written = self.content.tls_serialize(writer)? + self.auth.tls_serialize(writer)?;
        if let Some(tag) = &self.membership_tag {
            written += tag.tls_serialize(writer)?;
        }
        Ok(written)
    }
}

impl DeserializeBytes for PublicMessage {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (content, rest) = FramedContent::tls_deserialize_bytes(bytes)?;
        let (auth, rest) =
            FramedContentAuthData::deserialize_bytes_for(content.content_type(), rest)?;
        let (membership_tag, rest) = if matches!(content.sender, Sender::Member(_)) {
            let (tag, rest) = VLBytes::tls_deserialize_bytes(rest)?;
            (Some(tag), rest)
        } else {
            (None, rest)
        };
        Ok((
            Self {
                content,
                auth,
                membership_tag,
            },
            rest,
        ))
    }
}

/// `PrivateMessage` (§6.3): an encrypted content with encrypted sender data.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PrivateMessage {
    /// The group ID.
    pub group_id: VLBytes,
    /// The epoch the content belongs to.
    pub epoch: u64,
    /// The type of the encrypted content.
    pub content_type: ContentType,
    /// Application-chosen data, authenticated but not encrypted.
    pub authenticated_data: VLBytes,
    /// The encrypted `SenderData`.
    pub encrypted_sender_data: VLBytes,
    /// The encrypted `PrivateMessageContent`.
    pub ciphertext: VLBytes,
}

impl PrivateMessage {
    /// The `SenderDataAAD` of this message.
    pub fn sender_data_aad(&self) -> SenderDataAAD {
        SenderDataAAD {
            group_id: self.group_id.clone(),
            epoch: self.epoch,
            content_type: self.content_type,
        }
    }

    /// The `PrivateContentAAD` of this message.
    pub fn private_content_aad(&self) -> PrivateContentAAD {
        PrivateContentAAD {
            group_id: self.group_id.clone(),
            epoch: self.epoch,
            content_type: self.content_type,
            authenticated_data: self.authenticated_data.clone(),
        }
    }
}

/// `PrivateMessageContent` (§6.3.1): the plaintext of `PrivateMessage.ciphertext`: the body
/// (without its content type, which is `PrivateMessage.content_type`), the auth data, and
/// `padding_len` zero octets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateMessageContent {
    /// The body; its content type must be the PrivateMessage's.
    pub body: FramedContentBody,
    /// The signature (and confirmation tag for commits).
    pub auth: FramedContentAuthData,
    /// `length_of_padding`: how many zero octets follow.
    pub padding_len: usize,
}

impl PrivateMessageContent {
    /// Decodes a plaintext of a PrivateMessage whose `content_type` is given: the body, the
    /// auth data, then padding that must be all zero (§6.3.1).
    pub fn decode(
        content_type: ContentType,
        plaintext: &[u8],
    ) -> Result<Self, PrivateMessageContentError> {
        let (body, rest) = FramedContentBody::deserialize_payload(content_type, plaintext)
            .map_err(CodecError::from)?;
        let (auth, padding) = FramedContentAuthData::deserialize_bytes_for(content_type, rest)
            .map_err(CodecError::from)?;
        if padding.iter().any(|&b| b != 0) {
            return Err(PrivateMessageContentError::NonZeroPadding);
        }
        Ok(Self {
            body,
            auth,
            padding_len: padding.len(),
        })
    }

    /// The plaintext to encrypt.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        super::encode(self)
    }
}

impl Size for PrivateMessageContent {
    fn tls_serialized_len(&self) -> usize {
        self.body.payload_len() + self.auth.tls_serialized_len() + self.padding_len
    }
}

impl Serialize for PrivateMessageContent {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        self.auth.check_fits(self.body.content_type())?;
        let written = self.body.serialize_payload(writer)? + self.auth.tls_serialize(writer)?;
        let zeros = [0u8; 256];
        let mut left = self.padding_len;
        while left > 0 {
            let n = left.min(zeros.len());
            writer.write_all(&zeros[..n])?;
            left -= n;
        }
        Ok(written + self.padding_len)
    }
}

/// Why a PrivateMessage plaintext was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivateMessageContentError {
    /// The body or auth data did not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A padding octet was not zero (§6.3.1: the message is malformed).
    #[error("non-zero padding")]
    NonZeroPadding,
}

/// `SenderData` (§6.3.2): the plaintext of `PrivateMessage.encrypted_sender_data`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct SenderData {
    /// The sender's leaf index.
    pub leaf_index: u32,
    /// The generation of the sender's ratchet the content key came from.
    pub generation: u32,
    /// XORed into the first four octets of the content nonce.
    pub reuse_guard: [u8; 4],
}

/// `SenderDataAAD` (§6.3.2): the AAD of the sender data encryption.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct SenderDataAAD {
    /// The group ID.
    pub group_id: VLBytes,
    /// The epoch.
    pub epoch: u64,
    /// The content type.
    pub content_type: ContentType,
}

/// `PrivateContentAAD` (§6.3.1): the AAD of the content encryption.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PrivateContentAAD {
    /// The group ID.
    pub group_id: VLBytes,
    /// The epoch.
    pub epoch: u64,
    /// The content type.
    pub content_type: ContentType,
    /// The message's authenticated data.
    pub authenticated_data: VLBytes,
}

/// `wire_format` and the message it selects, inside an [`MlsMessage`] (§6).
#[derive(Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
#[repr(u16)]
#[allow(clippy::large_enum_variant)] // Same trade-off as `FramedContentBody`.
pub enum MlsMessageBody {
    /// `mls_public_message`.
    #[tls_codec(discriminant = 1)]
    PublicMessage(PublicMessage),
    /// `mls_private_message`.
    #[tls_codec(discriminant = 2)]
    PrivateMessage(PrivateMessage),
    /// `mls_welcome`.
    #[tls_codec(discriminant = 3)]
    Welcome(Welcome),
    /// `mls_group_info`.
    #[tls_codec(discriminant = 4)]
    GroupInfo(GroupInfo),
    /// `mls_key_package`.
    #[tls_codec(discriminant = 5)]
    KeyPackage(KeyPackage),
}

impl MlsMessageBody {
    /// The body's `WireFormat`.
    pub fn wire_format(&self) -> WireFormat {
        match self {
            MlsMessageBody::PublicMessage(_) => WireFormat::MLS_PUBLIC_MESSAGE,
            MlsMessageBody::PrivateMessage(_) => WireFormat::MLS_PRIVATE_MESSAGE,
            MlsMessageBody::Welcome(_) => WireFormat::MLS_WELCOME,
            MlsMessageBody::GroupInfo(_) => WireFormat::MLS_GROUP_INFO,
            MlsMessageBody::KeyPackage(_) => WireFormat::MLS_KEY_PACKAGE,
        }
    }
}

/// `MLSMessage` (§6): what travels between clients. Decoding refuses any `version` but
/// `mls10` (the rest of the message is defined only for it) and wire formats other than the
/// five of RFC 9420.
#[derive(Clone, Debug, PartialEq, Eq, TlsSerialize, TlsSize)]
pub struct MlsMessage {
    /// `version = mls10`.
    pub version: ProtocolVersion,
    /// `wire_format` and the message it selects.
    pub body: MlsMessageBody,
}

impl MlsMessage {
    /// An `mls10` message carrying `body`.
    pub fn new(body: MlsMessageBody) -> Self {
        Self {
            version: ProtocolVersion::MLS10,
            body,
        }
    }

    /// The message's `WireFormat`.
    pub fn wire_format(&self) -> WireFormat {
        self.body.wire_format()
    }

    /// Decodes one MLSMessage spanning all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        super::decode_exact(bytes)
    }

    /// Encodes the message.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        super::encode(self)
    }
}

impl DeserializeBytes for MlsMessage {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (version, rest) = ProtocolVersion::tls_deserialize_bytes(bytes)?;
        if version != ProtocolVersion::MLS10 {
            return Err(tls_codec::Error::UnknownValue(version.0.into()));
        }
        let (body, rest) = MlsMessageBody::tls_deserialize_bytes(rest)?;
        Ok((Self { version, body }, rest))
    }
}

/// Why a signature over a framing or GroupInfo structure could not be made or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The to-be-signed structure could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Signing failed or the signature is invalid.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The sender is `member` or `new_member_commit`, whose signature covers the GroupContext,
    /// and none was given.
    #[error("the GroupContext is required for this sender")]
    MissingGroupContext,
}

impl From<tls_codec::Error> for SignatureError {
    fn from(e: tls_codec::Error) -> Self {
        SignatureError::Codec(e.into())
    }
}

/// Why a PublicMessage could not be built or its membership tag did not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Encoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Building the FramedContentTBS failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The AuthenticatedContent is for another wire format.
    #[error("wire format {0:?} is not mls_public_message")]
    WrongWireFormat(WireFormat),
    /// Only `member` senders carry a membership tag (and they must).
    #[error("membership tag is only for member senders")]
    MembershipTagNotAllowed,
    /// The message carries no membership tag.
    #[error("no membership tag")]
    MissingMembershipTag,
    /// The membership tag does not match.
    #[error("invalid membership tag")]
    InvalidMembershipTag,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, encode, CipherSuite};
    use crate::crypto::{CryptoProvider as _, RustCrypto};

    fn context() -> GroupContext {
        GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(1),
            group_id: vec![0xaa].into(),
            epoch: 1,
            tree_hash: vec![1; 32].into(),
            confirmed_transcript_hash: vec![2; 32].into(),
            extensions: vec![],
        }
    }

    fn content(sender: Sender, body: FramedContentBody) -> FramedContent {
        FramedContent {
            group_id: vec![0xaa].into(),
            epoch: 1,
            sender,
            authenticated_data: vec![0xbb].into(),
            body,
        }
    }

    fn application() -> FramedContentBody {
        FramedContentBody::Application(vec![1, 2, 3].into())
    }

    #[test]
    fn sender_layout() {
        assert_eq!(encode(&Sender::Member(5)).unwrap(), vec![1, 0, 0, 0, 5]);
        assert_eq!(encode(&Sender::External(1)).unwrap(), vec![2, 0, 0, 0, 1]);
        assert_eq!(encode(&Sender::NewMemberProposal).unwrap(), vec![3]);
        assert_eq!(encode(&Sender::NewMemberCommit).unwrap(), vec![4]);
        assert_eq!(
            decode_exact::<Sender>(&[4]).unwrap(),
            Sender::NewMemberCommit
        );
        assert!(decode_exact::<Sender>(&[0]).is_err());
        assert!(decode_exact::<Sender>(&[5]).is_err());
        assert_eq!(Sender::Member(5).leaf_index(), Some(5));
        assert_eq!(Sender::External(5).sender_type(), SenderType::External);
    }

    #[test]
    fn framed_content_layout() {
        let framed = content(Sender::Member(2), application());
        let bytes = encode(&framed).unwrap();
        assert_eq!(
            bytes,
            vec![1, 0xaa, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 2, 1, 0xbb, 1, 3, 1, 2, 3]
        );
        assert_eq!(decode_exact::<FramedContent>(&bytes).unwrap(), framed);
        // content_type reserved(0) and 4 are refused.
        let mut bad = bytes.clone();
        bad[17] = 0;
        assert!(decode_exact::<FramedContent>(&bad).is_err());
        bad[17] = 4;
        assert!(decode_exact::<FramedContent>(&bad).is_err());
    }

    #[test]
    fn public_message_conditional_fields() {
        let member = PublicMessage {
            content: content(Sender::Member(0), application()),
            auth: FramedContentAuthData {
                signature: vec![9].into(),
                confirmation_tag: None,
            },
            membership_tag: Some(vec![7].into()),
        };
        let bytes = encode(&member).unwrap();
        assert_eq!(&bytes[bytes.len() - 4..], &[1, 9, 1, 7]);
        assert_eq!(decode_exact::<PublicMessage>(&bytes).unwrap(), member);

        // Without its membership tag a member's message neither encodes nor decodes.
        let mut untagged = member.clone();
        untagged.membership_tag = None;
        assert!(encode(&untagged).is_err());
        assert!(decode_exact::<PublicMessage>(&bytes[..bytes.len() - 2]).is_err());

        // An external sender's message has no membership tag.
        let external = PublicMessage {
            content: content(
                Sender::External(0),
                FramedContentBody::Proposal(Proposal::remove(1)),
            ),
            auth: member.auth.clone(),
            membership_tag: None,
        };
        let bytes = encode(&external).unwrap();
        assert_eq!(decode_exact::<PublicMessage>(&bytes).unwrap(), external);
        let mut tagged = external;
        tagged.membership_tag = Some(vec![7].into());
        assert!(encode(&tagged).is_err());

        // A commit needs its confirmation tag.
        let mut commit = PublicMessage {
            content: content(
                Sender::NewMemberCommit,
                FramedContentBody::Commit(Commit::default()),
            ),
            auth: member.auth.clone(),
            membership_tag: None,
        };
        assert!(encode(&commit).is_err());
        commit.auth.confirmation_tag = Some(vec![8; 32].into());
        let bytes = encode(&commit).unwrap();
        assert_eq!(decode_exact::<PublicMessage>(&bytes).unwrap(), commit);
    }

    #[test]
    fn private_message_content_padding() {
        let plaintext = PrivateMessageContent {
            body: application(),
            auth: FramedContentAuthData {
                signature: vec![9, 9].into(),
                confirmation_tag: None,
            },
            padding_len: 300,
        };
        let bytes = plaintext.to_bytes().unwrap();
        assert_eq!(&bytes[..7], &[3, 1, 2, 3, 2, 9, 9]);
        assert_eq!(bytes.len(), 7 + 300);
        assert!(bytes[7..].iter().all(|&b| b == 0));
        assert_eq!(
            PrivateMessageContent::decode(ContentType::Application, &bytes).unwrap(),
            plaintext
        );

        let mut dirty = bytes.clone();
        dirty[200] = 1;
        assert_eq!(
            PrivateMessageContent::decode(ContentType::Application, &dirty),
            Err(PrivateMessageContentError::NonZeroPadding)
        );
        // Read as a commit, the same bytes do not decode.
        assert!(PrivateMessageContent::decode(ContentType::Commit, &bytes).is_err());
        // A commit's plaintext carries the confirmation tag.
        let commit = PrivateMessageContent {
            body: FramedContentBody::Commit(Commit::default()),
            auth: FramedContentAuthData {
                signature: vec![1].into(),
                confirmation_tag: Some(vec![2].into()),
            },
            padding_len: 0,
        };
        let bytes = commit.to_bytes().unwrap();
        assert_eq!(bytes, vec![0, 0, 1, 1, 1, 2]);
        assert_eq!(
            PrivateMessageContent::decode(ContentType::Commit, &bytes).unwrap(),
            commit
        );
    }

    #[test]
    fn signing_and_membership_tag() {
        let suite = RustCrypto.suite(CipherSuite(1)).unwrap();
        let keys = suite.signature_key_pair_from_seed(&[3; 32]).unwrap();
        let ctx = context();
        let framed = content(Sender::Member(0), application());

        // The TBS is version || wire_format || content || context.
        let tbs = framed
            .to_be_signed(WireFormat::MLS_PUBLIC_MESSAGE, Some(&ctx))
            .unwrap()
            .to_bytes()
            .unwrap();
        let mut expected = vec![0, 1, 0, 1];
        expected.extend(encode(&framed).unwrap());
        expected.extend(encode(&ctx).unwrap());
        assert_eq!(tbs, expected);
        assert_eq!(
            framed.to_be_signed(WireFormat::MLS_PUBLIC_MESSAGE, None),
            Err(SignatureError::MissingGroupContext)
        );

        let authenticated = AuthenticatedContent::new_signed(
            WireFormat::MLS_PUBLIC_MESSAGE,
            framed,
            Some(&ctx),
            suite,
            &keys.private_key,
        )
        .unwrap();
        authenticated
            .verify_signature(suite, &keys.public_key, Some(&ctx))
            .unwrap();
        let mut other_ctx = ctx.clone();
        other_ctx.epoch = 2;
        assert!(authenticated
            .verify_signature(suite, &keys.public_key, Some(&other_ctx))
            .is_err());
        let encoded = encode(&authenticated).unwrap();
        assert_eq!(
            decode_exact::<AuthenticatedContent>(&encoded).unwrap(),
            authenticated
        );
        assert_eq!(
            authenticated.proposal_ref(suite).unwrap().as_slice().len(),
            32
        );

        let mut public = PublicMessage::from_authenticated_content(authenticated.clone()).unwrap();
        assert!(encode(&public).is_err());
        let membership_key = [4u8; 32];
        public
            .set_membership_tag(suite, &membership_key, &ctx)
            .unwrap();
        public
            .verify_membership_tag(suite, &membership_key, &ctx)
            .unwrap();
        assert_eq!(
            public.verify_membership_tag(suite, &[5u8; 32], &ctx),
            Err(FramingError::InvalidMembershipTag)
        );
        let message = MlsMessage::new(MlsMessageBody::PublicMessage(public.clone()));
        let bytes = message.to_bytes().unwrap();
        assert_eq!(MlsMessage::decode(&bytes).unwrap(), message);
        assert_eq!(public.into_authenticated_content(), authenticated);

        let mut private = authenticated;
        private.wire_format = WireFormat::MLS_PRIVATE_MESSAGE;
        assert_eq!(
            PublicMessage::from_authenticated_content(private),
            Err(FramingError::WrongWireFormat(
                WireFormat::MLS_PRIVATE_MESSAGE
            ))
        );
    }

    #[test]
    fn mls_message_refuses_other_versions_and_wire_formats() {
        let private = PrivateMessage {
            group_id: vec![1].into(),
            epoch: 2,
            content_type: ContentType::Application,
            authenticated_data: vec![].into(),
            encrypted_sender_data: vec![3].into(),
            ciphertext: vec![4].into(),
        };
        let message = MlsMessage::new(MlsMessageBody::PrivateMessage(private.clone()));
        let bytes = message.to_bytes().unwrap();
        assert_eq!(&bytes[..4], &[0, 1, 0, 2]);
        assert_eq!(MlsMessage::decode(&bytes).unwrap(), message);
        assert_eq!(message.wire_format(), WireFormat::MLS_PRIVATE_MESSAGE);

        for (index, value) in [(1, 0u8), (1, 2), (3, 0), (3, 6)] {
            let mut bad = bytes.clone();
            bad[index] = value;
            assert!(matches!(
                MlsMessage::decode(&bad),
                Err(CodecError::UnknownValue(_))
            ));
        }

        let aad = private.sender_data_aad();
        assert_eq!(encode(&aad).unwrap(), vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1]);
        let aad = private.private_content_aad();
        assert_eq!(
            encode(&aad).unwrap(),
            vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0]
        );
        let sender_data = SenderData {
            leaf_index: 1,
            generation: 2,
            reuse_guard: [3, 4, 5, 6],
        };
        assert_eq!(
            encode(&sender_data).unwrap(),
            vec![0, 0, 0, 1, 0, 0, 0, 2, 3, 4, 5, 6]
        );
    }
}
