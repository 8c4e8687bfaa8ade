//! What the delivery service answers: a result per request, or why it refused.

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

use crate::delivery::{GroupMessage, GroupStatus, MailboxItem};
use crate::ids::{ClientId, GroupId, Sequence, VcSequence};
use crate::payload::{Payload, Text};

/// The answer to one [`crate::Request`].
///
/// ```text
/// enum { done(1), accepted(2), refused(3), group_info(4), key_package(5), messages(6),
///        mailbox(7), status(8), (65535) } ResponseType;
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u16)]
pub enum Response {
    /// The request was carried out and has no result (registrations, publications, acks).
    #[tls_codec(discriminant = 1)]
    Done(Done),
    /// A message was appended to the group's log.
    #[tls_codec(discriminant = 2)]
    Accepted(Accepted),
    /// The request was refused; nothing changed.
    #[tls_codec(discriminant = 3)]
    Refused(ServiceError),
    /// A group's current GroupInfo.
    #[tls_codec(discriminant = 4)]
    GroupInfo(GroupInfoBody),
    /// A KeyPackage (the encoded MLSMessage).
    #[tls_codec(discriminant = 5)]
    KeyPackage(Payload),
    /// Messages of a group's log, in log order.
    #[tls_codec(discriminant = 6)]
    Messages(Vec<GroupMessage>),
    /// Mailbox items, oldest first.
    #[tls_codec(discriminant = 7)]
    Mailbox(Vec<MailboxItem>),
    /// A group's status.
    #[tls_codec(discriminant = 8)]
    Status(GroupStatus),
}

impl Response {
    /// [`Response::Done`].
    pub fn done() -> Self {
        Self::Done(Done {})
    }
}

impl From<Result<Response, ServiceError>> for Response {
    fn from(r: Result<Response, ServiceError>) -> Self {
        r.unwrap_or_else(Response::Refused)
    }
}

/// The empty body of [`Response::Done`].
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct Done {}

/// The body of [`Response::Accepted`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Accepted {
    /// The message's position in the group's log.
    pub sequence: Sequence,
    /// For a message sent as a virtual client: its position among that virtual client's messages
    /// in the group.
    pub vc_sequence: Option<VcSequence>,
}

/// The body of [`Response::GroupInfo`].
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupInfoBody {
    /// The epoch of the GroupInfo: the one to state in an external Commit built from it.
    pub epoch: u64,
    /// The encoded MLSMessage carrying the GroupInfo.
    pub group_info: Payload,
    /// The group's ratchet tree, when the GroupInfo does not carry it.
    pub ratchet_tree: Option<Payload>,
}

/// Why the delivery service refused a request. A refused request changes nothing.
///
/// Each variant has a fixed code on the wire (`uint16`, the `tls_codec` discriminant).
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    thiserror::Error,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u16)]
pub enum ServiceError {
    /// No client (device or virtual) of that id is registered.
    #[error("unknown client {client}")]
    #[tls_codec(discriminant = 1)]
    UnknownClient {
        /// The id.
        client: ClientId,
    },
    /// A client (device or virtual) of that id is already registered.
    #[error("client {client} is already registered")]
    #[tls_codec(discriminant = 2)]
    ClientExists {
        /// The id.
        client: ClientId,
    },
    /// The id names a virtual client where a device is needed (a mailbox, an emulator).
    #[error("{client} is a virtual client, not a device")]
    #[tls_codec(discriminant = 3)]
    NotADevice {
        /// The id.
        client: ClientId,
    },
    /// The id names a device where a virtual client is needed.
    #[error("{client} is not a virtual client")]
    #[tls_codec(discriminant = 4)]
    NotAVirtualClient {
        /// The id.
        client: ClientId,
    },
    /// The sender is not an emulator client of the virtual client it acts as.
    #[error("{client} is not an emulator client of {virtual_client}")]
    #[tls_codec(discriminant = 5)]
    NotAnEmulator {
        /// The virtual client.
        virtual_client: ClientId,
        /// The device that claimed to emulate it.
        client: ClientId,
    },
    /// No group of that id.
    #[error("unknown group {group_id}")]
    #[tls_codec(discriminant = 6)]
    UnknownGroup {
        /// The group.
        group_id: GroupId,
    },
    /// A group of that id exists already.
    #[error("group {group_id} exists already")]
    #[tls_codec(discriminant = 7)]
    GroupExists {
        /// The group.
        group_id: GroupId,
    },
    /// The identity is not (or no longer) a member of the group.
    #[error("{member} is not a member of group {group_id}")]
    #[tls_codec(discriminant = 8)]
    NotAMember {
        /// The group.
        group_id: GroupId,
        /// The identity (device or virtual client).
        member: ClientId,
    },
    /// A Commit (or GroupInfo) for an epoch older than the group's: another Commit won that
    /// epoch. Fetch, process, and try again.
    #[error("stale epoch {got}: the group is in epoch {current}")]
    #[tls_codec(discriminant = 9)]
    StaleEpoch {
        /// The group's current epoch.
        current: u64,
        /// The epoch stated.
        got: u64,
    },
    /// A Commit (or GroupInfo) for an epoch the group has not reached.
    #[error("future epoch {got}: the group is in epoch {current}")]
    #[tls_codec(discriminant = 10)]
    FutureEpoch {
        /// The group's current epoch.
        current: u64,
        /// The epoch stated.
        got: u64,
    },
    /// The sending emulator client has not processed every earlier message of the virtual
    /// client in this group (or claims to have seen more): fetch, process, and send again.
    #[error("virtual client sequence mismatch: the next is {expected}, the sender expected {got}")]
    #[tls_codec(discriminant = 11)]
    VirtualClientSequenceMismatch {
        /// The virtual client's next sequence in the group.
        expected: VcSequence,
        /// The sequence the sender stated.
        got: VcSequence,
    },
    /// The sending emulator client has not processed its emulation group up to the head of its
    /// log: process the emulation group first, then send again.
    #[error(
        "emulation group {emulation_group} is at {head}; the sender has processed up to {got}"
    )]
    #[tls_codec(discriminant = 12)]
    EmulationGroupBehind {
        /// The virtual client's emulation group.
        emulation_group: GroupId,
        /// The next position of the emulation group's log.
        head: Sequence,
        /// The position the sender stated.
        got: Sequence,
    },
    /// A Welcome, removed members or a GroupInfo on a message that is not a Commit.
    #[error("only a Commit can carry a Welcome, remove members or publish a GroupInfo")]
    #[tls_codec(discriminant = 13)]
    NotACommit {},
    /// Nobody published a GroupInfo of the group's current epoch.
    #[error("no GroupInfo of the current epoch of group {group_id}")]
    #[tls_codec(discriminant = 14)]
    NoGroupInfo {
        /// The group.
        group_id: GroupId,
    },
    /// Positions before this one are no longer kept.
    #[error("the log before {first_kept} is no longer available")]
    #[tls_codec(discriminant = 15)]
    Truncated {
        /// The first position still kept.
        first_kept: Sequence,
    },
    /// Nobody published a KeyPackage for that client, or all were consumed.
    #[error("no KeyPackage for {owner}")]
    #[tls_codec(discriminant = 16)]
    NoKeyPackage {
        /// Whose KeyPackage was asked for.
        owner: ClientId,
    },
    /// The message (or GroupInfo, KeyPackage, Welcome) is malformed or fails a check of the
    /// service's public view of the group (RFC 9420 validation, signature, proposals, tree).
    #[error("invalid message: {reason}")]
    #[tls_codec(discriminant = 17)]
    InvalidMessage {
        /// What was wrong.
        reason: Text,
    },
    /// What the request states (kind, epoch, Welcome recipients, removed members, sender)
    /// differs from what the message says.
    #[error("the request's {claim} does not match the message: {reason}")]
    #[tls_codec(discriminant = 18)]
    ClaimMismatch {
        /// Which claim.
        claim: Text,
        /// How it differs.
        reason: Text,
    },
    /// The request is not authenticated, or the sender may not do this.
    #[error("unauthorized: {reason}")]
    #[tls_codec(discriminant = 19)]
    Unauthorized {
        /// Why.
        reason: Text,
    },
    /// A configured limit was reached (message size, mailbox backlog, KeyPackages per owner,
    /// requests per second).
    #[error("quota {quota} exceeded (limit {limit})")]
    #[tls_codec(discriminant = 20)]
    QuotaExceeded {
        /// Which limit.
        quota: Text,
        /// Its configured value.
        limit: u64,
    },
    /// The request itself is malformed.
    #[error("bad request: {reason}")]
    #[tls_codec(discriminant = 21)]
    BadRequest {
        /// What was wrong.
        reason: Text,
    },
    /// The service failed (storage); nothing was changed and the request may be retried.
    #[error("service unavailable: {reason}")]
    #[tls_codec(discriminant = 22)]
    Unavailable {
        /// What failed.
        reason: Text,
    },
}

impl ServiceError {
    /// Whether the sender should process what the service holds (the group's log, its
    /// emulation group) and then try again: another device won a race, or the sender lags.
    pub fn is_retry_after_processing(&self) -> bool {
        matches!(
            self,
            Self::StaleEpoch { .. }
                | Self::VirtualClientSequenceMismatch { .. }
                | Self::EmulationGroupBehind { .. }
        )
    }
}
