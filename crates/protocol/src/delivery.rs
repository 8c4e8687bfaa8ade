//! What the delivery service delivers: accepted group messages, Welcomes, mailbox items.

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

use crate::ids::{ClientId, GroupId, MailboxCursor, Sequence, VcSequence};
use crate::payload::Payload;
use crate::request::MessageKind;

/// What the emulator clients of the sending virtual client learn about one of its messages
/// (other members do not see it: to them the virtual client is an ordinary member).
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct EmulatorView {
    /// The emulator client that sent the message.
    pub emulator: ClientId,
    /// The message's position among the virtual client's messages in this group; the next send
    /// as the virtual client expects `vc_sequence.next()`.
    pub vc_sequence: VcSequence,
    /// For an external Commit: the GroupInfo the service held for the epoch the Commit was built
    /// from (what the joiner fetched), so that the other emulator clients can follow it.
    pub group_info: Option<Payload>,
}

/// One accepted message of a group's log, as one recipient sees it.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupMessage {
    /// The group.
    pub group_id: GroupId,
    /// Its position in the group's log.
    pub sequence: Sequence,
    /// The member that sent it: the virtual client for a message sent on its behalf, else the
    /// sending device.
    pub sender: ClientId,
    /// What it is.
    pub kind: MessageKind,
    /// `Some` only for the emulator clients of the sending virtual client.
    pub emulator_view: Option<EmulatorView>,
    /// The encoded MLSMessage.
    pub message: Payload,
}

/// A Welcome delivered to one device.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct WelcomeDelivery {
    /// The group the Welcome is for.
    pub group_id: GroupId,
    /// The log position of the Commit that added the recipient; read the group from
    /// `sequence.next()` on.
    pub sequence: Sequence,
    /// The identity welcomed: the receiving device itself or a virtual client it emulates.
    pub recipient: ClientId,
    /// The encoded MLSMessage carrying the Welcome.
    pub message: Payload,
}

/// An item of a device's mailbox.
///
/// ```text
/// enum { message(1), welcome(2), (255) } DeliveredType;
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub enum Delivered {
    /// A group message, delivered to the receiving device as `recipient`: the device itself or a
    /// virtual client it emulates.
    #[tls_codec(discriminant = 1)]
    Message {
        /// The member identity the message is delivered to.
        recipient: ClientId,
        /// The message.
        message: GroupMessage,
    },
    /// A Welcome.
    #[tls_codec(discriminant = 2)]
    Welcome(WelcomeDelivery),
}

impl Delivered {
    /// The group the item belongs to.
    pub fn group_id(&self) -> &GroupId {
        match self {
            Self::Message { message, .. } => &message.group_id,
            Self::Welcome(w) => &w.group_id,
        }
    }
}

/// One mailbox item with its cursor.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct MailboxItem {
    /// Its position in the mailbox (acknowledge up to it with [`crate::Ack`]).
    pub cursor: MailboxCursor,
    /// The item.
    pub item: Delivered,
}

/// The service's view of a group.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupStatus {
    /// The epoch the next Commit must be made in.
    pub epoch: u64,
    /// The position the next accepted message gets.
    pub next_sequence: Sequence,
    /// How the service follows the group's handshakes (issue 14: "the service says so per
    /// group"). Added with the checking service (issue 14).
    pub handshakes: HandshakeView,
}

/// How the service follows a group's handshake messages.
///
/// ```text
/// enum { verified(1), header_only(2), (255) } HandshakeView;
/// ```
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum HandshakeView {
    /// Handshakes are PublicMessages, processed by the service's public view of the group:
    /// epochs, senders, Adds and Removes are checked.
    #[default]
    Verified = 1,
    /// A Commit came as a PrivateMessage: the service follows the group on the cleartext
    /// header alone (epoch, content type) and takes Welcome recipients and removals as stated.
    HeaderOnly = 2,
}
