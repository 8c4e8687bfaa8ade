//! What a device asks of the delivery service.
//!
//! Every request is made by one authenticated device (how it authenticates is the transport's
//! business, docs/protocol.md); "the sender" below is that device. The service checks every
//! claim a request makes that it can check itself (DESIGN §9): the kind and epoch of a message,
//! the Welcome recipients and removed members of a Commit, against its public view of the group.

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

use crate::ids::{ClientId, GroupId, MailboxCursor, MessageId, Sequence, VcSequence};
use crate::payload::Payload;

/// A request to the delivery service.
///
/// ```text
/// enum { register_device(1), register_virtual_client(2), create_group(3), send(4),
///        publish_group_info(5), fetch_group_info(6), publish_key_packages(7),
///        consume_key_package(8), retire_key_packages(9), fetch(10), read_mailbox(11),
///        ack(12), group_status(13), (65535) } RequestType;
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u16)]
pub enum Request {
    /// Registers the sender as a device with a mailbox and a signature key.
    #[tls_codec(discriminant = 1)]
    RegisterDevice(RegisterDevice),
    /// Registers a virtual client whose emulator clients are the members of an emulation group.
    #[tls_codec(discriminant = 2)]
    RegisterVirtualClient(RegisterVirtualClient),
    /// Starts the log of a new group.
    #[tls_codec(discriminant = 3)]
    CreateGroup(CreateGroup),
    /// Appends a message to a group's log. Answered with [`crate::Response::Accepted`].
    #[tls_codec(discriminant = 4)]
    Send(GroupSend),
    /// Publishes the GroupInfo of a group's current epoch for external joiners.
    #[tls_codec(discriminant = 5)]
    PublishGroupInfo(PublishGroupInfo),
    /// Asks for the GroupInfo of a group's current epoch. Answered with
    /// [`crate::Response::GroupInfo`].
    #[tls_codec(discriminant = 6)]
    FetchGroupInfo(GroupId),
    /// Publishes KeyPackages of the sender, or of a virtual client the sender emulates.
    #[tls_codec(discriminant = 7)]
    PublishKeyPackages(PublishKeyPackages),
    /// Takes one KeyPackage of a client (to add it to a group). Answered with
    /// [`crate::Response::KeyPackage`].
    #[tls_codec(discriminant = 8)]
    ConsumeKeyPackage(ConsumeKeyPackage),
    /// Deletes KeyPackages of the sender (or of a virtual client it emulates) from the directory.
    #[tls_codec(discriminant = 9)]
    RetireKeyPackages(RetireKeyPackages),
    /// Reads a group's log from a position on. Answered with [`crate::Response::Messages`].
    #[tls_codec(discriminant = 10)]
    Fetch(Fetch),
    /// Reads the sender's mailbox. Answered with [`crate::Response::Mailbox`].
    #[tls_codec(discriminant = 11)]
    ReadMailbox(ReadMailbox),
    /// Acknowledges (deletes) the sender's mailbox items up to a cursor.
    #[tls_codec(discriminant = 12)]
    Ack(Ack),
    /// Asks for a group's current epoch and next log position. Answered with
    /// [`crate::Response::Status`].
    #[tls_codec(discriminant = 13)]
    GroupStatus(GroupId),
}

/// `register_device`: the sender's name and the signature key it authenticates with.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct RegisterDevice {
    /// The device's name: the identity of its MLS credential.
    pub device: ClientId,
    /// The MLS `SignatureScheme` (RFC 9420 §17.3 / RFC 8446) of `signature_key`.
    pub signature_scheme: u16,
    /// The device's signature public key, as in its LeafNodes.
    pub signature_key: Payload,
}

/// `register_virtual_client`: a virtual client and its emulation group. Its emulator clients are,
/// at any time, the members of that group as the service sees them; the sender must be one.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct RegisterVirtualClient {
    /// The virtual client's name: the identity of its credential in higher-level groups.
    pub virtual_client: ClientId,
    /// The group whose members are its emulator clients.
    pub emulation_group: GroupId,
}

/// `create_group`: the log of a new group, in the epoch of `group_info`, whose one member is the
/// sender, or `as_virtual_client` (which the sender must emulate).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct CreateGroup {
    /// The MLS group id.
    pub group_id: GroupId,
    /// `Some` when an emulator client creates the group as its virtual client.
    pub as_virtual_client: Option<ClientId>,
    /// The encoded MLSMessage carrying the creator's GroupInfo of the group's first epoch.
    pub group_info: Payload,
    /// The encoded ratchet tree (RFC 9420 §12.4.3.3), if the GroupInfo does not carry it.
    pub ratchet_tree: Option<Payload>,
}

/// What kind of MLS message a [`SendRequest`] carries, as the sender states it (the service
/// checks it against the message).
///
/// ```text
/// enum { commit(1), external_commit(2), proposal(3), application(4), (255) } MessageKindType;
/// ```
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
pub enum MessageKind {
    /// A Commit sent by a member in `epoch` (the epoch it commits from). Accepted only if `epoch`
    /// is the group's current epoch; then the group's epoch becomes `epoch + 1`.
    #[tls_codec(discriminant = 1)]
    Commit {
        /// The epoch the Commit was created in.
        epoch: u64,
    },
    /// An external Commit (RFC 9420 §12.4.3.2) built from the GroupInfo of `epoch`; same epoch
    /// rule as a Commit. The joiner (the sender, or the virtual client it names) becomes a member.
    #[tls_codec(discriminant = 2)]
    ExternalCommit {
        /// The epoch of the GroupInfo the external Commit was built from.
        epoch: u64,
    },
    /// A Proposal (any epoch; receivers judge it).
    #[tls_codec(discriminant = 3)]
    Proposal,
    /// An application message (any epoch; receivers judge it).
    #[tls_codec(discriminant = 4)]
    Application,
}

impl MessageKind {
    /// The epoch of a Commit or external Commit.
    pub fn commit_epoch(&self) -> Option<u64> {
        match self {
            Self::Commit { epoch } | Self::ExternalCommit { epoch } => Some(*epoch),
            Self::Proposal | Self::Application => None,
        }
    }
}

/// The conditions of a message sent on behalf of a virtual client (DESIGN §5 row 14).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct VirtualClientSend {
    /// The virtual client the sender emulates.
    pub virtual_client: ClientId,
    /// The [`VcSequence`] this message is to get: the number of this virtual client's messages in
    /// this group the sender has processed (compare-and-append).
    pub expected: VcSequence,
    /// The position up to which the sender has processed its emulation group's log (the
    /// `sequence.next()` of the last message it processed there): it must be the head of that
    /// log, so that an emulator lagging its siblings cannot derive from an emulation epoch they
    /// deleted (issue 10 hole 2). Required when the virtual client was registered with an
    /// emulation group.
    pub emulation_head: Option<Sequence>,
}

/// A Welcome sent together with the Commit that adds its recipients. It is delivered only if
/// that Commit is accepted; its recipients become members at that Commit.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct WelcomeRequest {
    /// The new members: devices or virtual clients (delivered to all their emulators). The
    /// service checks them against the Commit's Adds.
    pub recipients: Vec<ClientId>,
    /// The encoded MLSMessage carrying the Welcome.
    pub message: Payload,
}

/// `send`: one message for one group's log.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupSend {
    /// The group.
    pub group_id: GroupId,
    /// The message and its conditions.
    pub send: SendRequest,
}

/// One message to append to a group's log, with what the sender states about it.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct SendRequest {
    /// The sender's id for this send; a retried send with the same id is accepted once. The
    /// builders below set it to [`MessageId::of_message`].
    pub message_id: MessageId,
    /// The encoded MLSMessage.
    pub message: Payload,
    /// What it is (checked).
    pub kind: MessageKind,
    /// `Some` when an emulator client sends as a virtual client.
    pub virtual_client: Option<VirtualClientSend>,
    /// Commits only: the Welcome for the members the Commit adds.
    pub welcome: Option<WelcomeRequest>,
    /// Commits only: the members the Commit removes (checked against its Removes). They still
    /// receive this Commit, nothing after it.
    pub removed: Vec<ClientId>,
    /// Commits only: the encoded MLSMessage carrying the GroupInfo of the epoch the Commit
    /// creates, kept for external joiners.
    pub group_info: Option<Payload>,
}

impl SendRequest {
    fn new(kind: MessageKind, message: Payload) -> Self {
        Self {
            message_id: MessageId::of_message(&message),
            message,
            kind,
            virtual_client: None,
            welcome: None,
            removed: Vec::new(),
            group_info: None,
        }
    }

    /// An application message.
    pub fn application(message: impl Into<Payload>) -> Self {
        Self::new(MessageKind::Application, message.into())
    }

    /// A Proposal.
    pub fn proposal(message: impl Into<Payload>) -> Self {
        Self::new(MessageKind::Proposal, message.into())
    }

    /// A Commit made in `epoch`.
    pub fn commit(epoch: u64, message: impl Into<Payload>) -> Self {
        Self::new(MessageKind::Commit { epoch }, message.into())
    }

    /// An external Commit built from the GroupInfo of `epoch`.
    pub fn external_commit(epoch: u64, message: impl Into<Payload>) -> Self {
        Self::new(MessageKind::ExternalCommit { epoch }, message.into())
    }

    /// Sets the message id (instead of [`MessageId::of_message`]).
    pub fn with_message_id(mut self, message_id: MessageId) -> Self {
        self.message_id = message_id;
        self
    }

    /// This send as a [`Request`] for `group_id`.
    pub fn to_group(self, group_id: GroupId) -> Request {
        Request::Send(GroupSend {
            group_id,
            send: self,
        })
    }

    /// Sends as `virtual_client`, expecting to be its message number `expected` in the group.
    pub fn as_virtual_client(mut self, virtual_client: ClientId, expected: VcSequence) -> Self {
        self.virtual_client = Some(VirtualClientSend {
            virtual_client,
            expected,
            emulation_head: None,
        });
        self
    }

    /// States that the sender has processed its emulation group's log up to `emulation_head`
    /// (for a message sent as a virtual client; see [`VirtualClientSend::emulation_head`]).
    pub fn at_emulation_head(mut self, emulation_head: Sequence) -> Self {
        if let Some(vc) = &mut self.virtual_client {
            vc.emulation_head = Some(emulation_head);
        }
        self
    }

    /// Attaches the Welcome for the members this Commit adds.
    pub fn with_welcome(mut self, recipients: Vec<ClientId>, message: impl Into<Payload>) -> Self {
        self.welcome = Some(WelcomeRequest {
            recipients,
            message: message.into(),
        });
        self
    }

    /// Names the members this Commit removes.
    pub fn removing(mut self, removed: Vec<ClientId>) -> Self {
        self.removed = removed;
        self
    }

    /// Publishes, with this Commit, the GroupInfo of the epoch it creates.
    pub fn with_group_info(mut self, group_info: impl Into<Payload>) -> Self {
        self.group_info = Some(group_info.into());
        self
    }
}

/// `publish_group_info`: the GroupInfo of the group's current `epoch`, by a member (the sender,
/// or the virtual client it emulates).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PublishGroupInfo {
    /// The group.
    pub group_id: GroupId,
    /// The epoch of the GroupInfo (must be the group's current one).
    pub epoch: u64,
    /// `Some` when an emulator client publishes as its virtual client.
    pub as_virtual_client: Option<ClientId>,
    /// The encoded MLSMessage carrying the GroupInfo.
    pub group_info: Payload,
}

/// One KeyPackage to publish.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct KeyPackageEntry {
    /// The encoded MLSMessage carrying the KeyPackage.
    pub key_package: Payload,
    /// Ordinary or last resort.
    pub usage: KeyPackageUse,
}

/// How the directory hands a KeyPackage out.
///
/// ```text
/// enum { ordinary(1), last_resort(2), (255) } KeyPackageUse;
/// ```
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
pub enum KeyPackageUse {
    /// Handed out once, then deleted (RFC 9420 §16.8).
    Ordinary = 1,
    /// A last-resort KeyPackage (RFC 9420 §17.2 `last_resort` extension): handed out only when
    /// no ordinary one is left, and kept; one per owner (a newer one replaces it).
    LastResort = 2,
}

impl KeyPackageEntry {
    /// Whether it is a last-resort KeyPackage.
    pub fn is_last_resort(&self) -> bool {
        self.usage == KeyPackageUse::LastResort
    }

    /// An ordinary KeyPackage (consumed once).
    pub fn ordinary(key_package: impl Into<Payload>) -> Self {
        Self {
            key_package: key_package.into(),
            usage: KeyPackageUse::Ordinary,
        }
    }

    /// A last-resort KeyPackage (kept after use).
    pub fn last_resort(key_package: impl Into<Payload>) -> Self {
        Self {
            key_package: key_package.into(),
            usage: KeyPackageUse::LastResort,
        }
    }
}

/// `publish_key_packages`: KeyPackages of `owner` (the sender, or a virtual client it emulates).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PublishKeyPackages {
    /// Whose KeyPackages they are.
    pub owner: ClientId,
    /// The KeyPackages, in order.
    pub key_packages: Vec<KeyPackageEntry>,
}

/// `consume_key_package`: one KeyPackage of `owner`: the oldest ordinary one (removed from the
/// directory), else its last-resort one (kept).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ConsumeKeyPackage {
    /// Whose KeyPackage to take.
    pub owner: ClientId,
}

/// `retire_key_packages`: deletes KeyPackages of `owner` (the sender, or a virtual client it
/// emulates) by their KeyPackageRef (RFC 9420 §5.2); refs not in the directory are ignored.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct RetireKeyPackages {
    /// Whose KeyPackages to delete.
    pub owner: ClientId,
    /// The KeyPackageRefs.
    pub key_package_refs: Vec<Payload>,
}

/// `fetch`: a group's log from `from` on, as the sender sees it (only what was sent while the
/// sender, or a virtual client it emulates, was a member).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Fetch {
    /// The group.
    pub group_id: GroupId,
    /// The first position wanted.
    pub from: Sequence,
}

/// `read_mailbox`: the sender's unacknowledged mailbox items after `after` (from the first when
/// `None`), oldest first, at most `max_items` (0: the service's limit).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ReadMailbox {
    /// Read items after this cursor.
    pub after: Option<MailboxCursor>,
    /// The most items to return.
    pub max_items: u32,
}

/// `ack`: the sender has processed (and durably stored the result of) every mailbox item up to
/// and including `up_to`; the service deletes them.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Ack {
    /// The last processed item.
    pub up_to: MailboxCursor,
}
