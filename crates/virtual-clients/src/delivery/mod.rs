//! §5.1 Delivery Service: "any message sent by an emulator client on behalf of a virtual client
//! \[must\] be delivered not just to the rest of the supergroup to which the message is sent, but
//! also to all other clients in the emulator group".
//!
//! Our reading (DESIGN §5 row 14): the delivery service keeps one totally ordered log per group.
//! It accepts a Commit only for the group's current epoch (the first one wins) and a message of a
//! virtual client only if the sending emulator client has seen every earlier message of that
//! virtual client in that group (compare-and-append on the virtual client's own sequence). So two
//! emulator clients never both win one epoch or one generation, and plain members never wait on
//! each other.
//!
//! The service is generic over opaque bytes: it never parses MLS. It learns a group's epoch from
//! the `epoch` the sender states for an accepted Commit, and group membership from what the
//! committer states with the Commit (Welcome recipients, removed members, the joiner of an external
//! Commit).
//!
//! [`DeliveryService`] is the small trait the emulator clients, tests and `vmls demo` talk to;
//! [`InMemoryDeliveryService`] implements it in process (sans-IO: no threads, sockets or clocks).
//! A networked server can take its place behind the same trait.
//!
//! Identities: one namespace of [`ClientId`]s. A plain client has a mailbox; a virtual client has
//! no mailbox of its own but a set of emulator clients (plain clients), and everything delivered
//! to it is delivered to each of them. Both can be members of groups.

mod key_packages;
mod memory;

pub use key_packages::{KeyPackageDirectory, KeyPackageUpload};
pub use memory::{DeliveryStats, InMemoryDeliveryService};

use std::fmt;
use std::sync::Arc;

/// Writes `bytes` as UTF-8 when it is printable ASCII, else as hex.
fn fmt_id(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        // Checked above: every byte is ASCII, so this is valid UTF-8.
        f.write_str(&String::from_utf8_lossy(bytes))
    } else {
        f.write_str("0x")?;
        for b in bytes {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The delivery service's name for a client: a plain client (one device) or a virtual client.
/// Opaque bytes chosen by the application (e.g. the credential identity).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub Vec<u8>);

impl ClientId {
    /// A client id from anything byte-like (`"alice-phone"`, a credential identity, ...).
    pub fn new(id: impl AsRef<[u8]>) -> Self {
        Self(id.as_ref().to_vec())
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientId(")?;
        fmt_id(&self.0, f)?;
        f.write_str(")")
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_id(&self.0, f)
    }
}

/// An MLS `group_id`, as opaque bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub Vec<u8>);

impl GroupId {
    /// A group id from anything byte-like.
    pub fn new(id: impl AsRef<[u8]>) -> Self {
        Self(id.as_ref().to_vec())
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupId(")?;
        fmt_id(&self.0, f)?;
        f.write_str(")")
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_id(&self.0, f)
    }
}

/// Position of a message in its group's log: 0 for the first message, then +1 per accepted
/// message. The log is totally ordered and every member sees the same order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sequence(pub u64);

impl Sequence {
    /// The position after this one.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Position of a message among the messages one virtual client sent in one group: 0 for its
/// first, then +1 per accepted message of that virtual client in that group (of any kind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VcSequence(pub u64);

impl VcSequence {
    /// The position after this one.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for VcSequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vc#{}", self.0)
    }
}

/// What kind of MLS message a [`SendRequest`] carries; stated by the sender, since the service
/// does not parse MLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A Commit sent by a member in `epoch` (the epoch it commits from). Accepted only if `epoch`
    /// is the group's current epoch; then the group's epoch becomes `epoch + 1`.
    Commit {
        /// The epoch the Commit was created in.
        epoch: u64,
    },
    /// An external Commit (RFC 9420 §12.4.3.2) made in `epoch`; same epoch rule as a Commit, and
    /// the sending identity (the virtual client if one is named, else the sending client) need
    /// not be a member: it becomes one.
    ExternalCommit {
        /// The epoch of the GroupInfo the external Commit was built from.
        epoch: u64,
    },
    /// A Proposal (any epoch; receivers judge it).
    Proposal,
    /// An application message (any epoch; receivers judge it).
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

/// A message sent on behalf of a virtual client, with the compare-and-append condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualClientSend {
    /// The virtual client the sender emulates; it must be one of its emulator clients.
    pub virtual_client: ClientId,
    /// The [`VcSequence`] this message is to get: the number of this virtual client's messages
    /// in this group the sender has seen. Anything else is rejected with
    /// [`DeliveryError::VirtualClientSequenceMismatch`].
    pub expected: VcSequence,
}

/// A Welcome sent together with the Commit that adds its recipients. It is delivered only if
/// that Commit is accepted, and its recipients become members at that Commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WelcomeRequest {
    /// The new members: plain clients or virtual clients (delivered to all their emulators).
    pub recipients: Vec<ClientId>,
    /// The encoded MLSMessage carrying the Welcome.
    pub message: Vec<u8>,
}

/// One message to append to a group's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRequest {
    /// The encoded MLSMessage (opaque to the service).
    pub message: Vec<u8>,
    /// What it is.
    pub kind: MessageKind,
    /// `Some` when an emulator client sends as a virtual client.
    pub virtual_client: Option<VirtualClientSend>,
    /// Commits only: the Welcome for the members the Commit adds.
    pub welcome: Option<WelcomeRequest>,
    /// Commits only: members the Commit removes. They still receive this Commit, nothing after.
    pub removed: Vec<ClientId>,
    /// Commits only: the encoded GroupInfo of the epoch the Commit creates, kept as the
    /// group's current GroupInfo for external joiners ([`DeliveryService::group_info`]).
    pub group_info: Option<Vec<u8>>,
}

impl SendRequest {
    fn plain(kind: MessageKind, message: impl Into<Vec<u8>>) -> Self {
        Self {
            message: message.into(),
            kind,
            virtual_client: None,
            welcome: None,
            removed: Vec::new(),
            group_info: None,
        }
    }

    /// An application message.
    pub fn application(message: impl Into<Vec<u8>>) -> Self {
        Self::plain(MessageKind::Application, message)
    }

    /// A Proposal.
    pub fn proposal(message: impl Into<Vec<u8>>) -> Self {
        Self::plain(MessageKind::Proposal, message)
    }

    /// A Commit made in `epoch`.
    pub fn commit(epoch: u64, message: impl Into<Vec<u8>>) -> Self {
        Self::plain(MessageKind::Commit { epoch }, message)
    }

    /// An external Commit built from the GroupInfo of `epoch`.
    pub fn external_commit(epoch: u64, message: impl Into<Vec<u8>>) -> Self {
        Self::plain(MessageKind::ExternalCommit { epoch }, message)
    }

    /// Sends as `virtual_client`, expecting to be its message number `expected` in the group.
    pub fn as_virtual_client(mut self, virtual_client: ClientId, expected: VcSequence) -> Self {
        self.virtual_client = Some(VirtualClientSend {
            virtual_client,
            expected,
        });
        self
    }

    /// Attaches the Welcome for the members this Commit adds.
    pub fn with_welcome(mut self, recipients: Vec<ClientId>, message: impl Into<Vec<u8>>) -> Self {
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
    pub fn with_group_info(mut self, group_info: impl Into<Vec<u8>>) -> Self {
        self.group_info = Some(group_info.into());
        self
    }
}

/// What the emulator clients of the sending virtual client learn about one of its messages
/// (other members do not see it: to them the virtual client is an ordinary member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmulatorView {
    /// The emulator client that sent the message.
    pub emulator: ClientId,
    /// The message's position among the virtual client's messages in this group; the next send
    /// as the virtual client expects `vc_sequence.next()`.
    pub vc_sequence: VcSequence,
    /// For an external Commit: the GroupInfo the service held for the epoch the Commit was
    /// built from (what the joiner fetched), so that the other emulator clients can follow it.
    pub group_info: Option<Arc<[u8]>>,
}

/// One accepted message of a group's log, as one recipient sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMessage {
    /// The group.
    pub group_id: GroupId,
    /// Its position in the group's log.
    pub sequence: Sequence,
    /// The member that sent it: the virtual client for a message sent on its behalf, else the
    /// sending client.
    pub sender: ClientId,
    /// What it is.
    pub kind: MessageKind,
    /// `Some` only for the emulator clients of the sending virtual client.
    pub emulator_view: Option<EmulatorView>,
    /// The encoded MLSMessage.
    pub message: Arc<[u8]>,
}

/// A Welcome delivered to one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WelcomeDelivery {
    /// The group the Welcome is for.
    pub group_id: GroupId,
    /// The log position of the Commit that added the recipient; read the group from
    /// `sequence.next()` on.
    pub sequence: Sequence,
    /// The identity welcomed: the receiving client itself or a virtual client it emulates.
    pub recipient: ClientId,
    /// The encoded MLSMessage carrying the Welcome.
    pub message: Arc<[u8]>,
}

/// An item of a plain client's mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// A group message, delivered to the receiving client as `recipient`: the client itself or a
    /// virtual client it emulates.
    Message {
        /// The member identity the message is delivered to.
        recipient: ClientId,
        /// The message.
        message: GroupMessage,
    },
    /// A Welcome.
    Welcome(WelcomeDelivery),
}

/// The service's view of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The epoch the next Commit must be made in.
    pub epoch: u64,
    /// The position the next accepted message gets.
    pub next_sequence: Sequence,
}

/// Why the delivery service refused a request. A refused request changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// No client (plain or virtual) of that id is registered.
    #[error("unknown client {0}")]
    UnknownClient(ClientId),
    /// A client (plain or virtual) of that id is already registered.
    #[error("client {0} is already registered")]
    ClientExists(ClientId),
    /// The id names a virtual client where a plain client is needed (a mailbox, an emulator).
    #[error("{0} is a virtual client, not a plain client")]
    NotAPlainClient(ClientId),
    /// The id names a plain client where a virtual client is needed.
    #[error("{0} is not a virtual client")]
    NotAVirtualClient(ClientId),
    /// A virtual client must keep at least one emulator client.
    #[error("virtual client {0} needs at least one emulator client")]
    NoEmulators(ClientId),
    /// The client is not an emulator client of the virtual client it acts as.
    #[error("{client} is not an emulator client of {virtual_client}")]
    NotAnEmulator {
        /// The virtual client.
        virtual_client: ClientId,
        /// The client that claimed to emulate it.
        client: ClientId,
    },
    /// The client is already an emulator client of that virtual client.
    #[error("{client} already emulates {virtual_client}")]
    AlreadyAnEmulator {
        /// The virtual client.
        virtual_client: ClientId,
        /// The client.
        client: ClientId,
    },
    /// No group of that id.
    #[error("unknown group {0}")]
    UnknownGroup(GroupId),
    /// A group of that id exists already.
    #[error("group {0} exists already")]
    GroupExists(GroupId),
    /// The identity is not (or no longer) a member of the group.
    #[error("{member} is not a member of group {group_id}")]
    NotAMember {
        /// The group.
        group_id: GroupId,
        /// The identity (plain client or virtual client).
        member: ClientId,
    },
    /// A Commit for an epoch older than the group's: another Commit won that epoch.
    #[error("stale epoch {got}: the group is in epoch {current}")]
    StaleEpoch {
        /// The group's current epoch.
        current: u64,
        /// The epoch the Commit was made in.
        got: u64,
    },
    /// A Commit for an epoch the group has not reached.
    #[error("future epoch {got}: the group is in epoch {current}")]
    FutureEpoch {
        /// The group's current epoch.
        current: u64,
        /// The epoch the Commit was made in.
        got: u64,
    },
    /// The sending emulator client has not seen every earlier message of the virtual client in
    /// this group (or claims to have seen more): fetch, process, and send again.
    #[error("virtual client sequence mismatch: the next is {expected}, the sender expected {got}")]
    VirtualClientSequenceMismatch {
        /// The virtual client's next sequence in the group.
        expected: VcSequence,
        /// The sequence the sender stated.
        got: VcSequence,
    },
    /// A Welcome, removed members or a GroupInfo on a message that is not a Commit.
    #[error("only a Commit can carry a Welcome, remove members or publish a GroupInfo")]
    NotACommit,
    /// Nobody published a GroupInfo of the group's current epoch.
    #[error("no GroupInfo of the current epoch of group {0}")]
    NoGroupInfo(GroupId),
    /// A message before the start of the log window was asked for: never the case in memory, kept
    /// for servers that truncate logs.
    #[error("sequence {0} is no longer available")]
    Truncated(Sequence),
    /// Nobody published a KeyPackage for that client, or all were consumed.
    #[error("no KeyPackage for {0}")]
    NoKeyPackage(ClientId),
}

/// The operations of a §5.1 delivery service. Senders are named explicitly: the in-memory
/// service trusts them, a networked one checks them against the authenticated connection.
///
/// Every method either succeeds completely or changes nothing.
pub trait DeliveryService {
    /// Registers a plain client (one device) with an empty mailbox.
    fn register_client(&mut self, client: ClientId) -> Result<(), DeliveryError>;

    /// Registers a virtual client emulated by `emulators` (registered plain clients, at least
    /// one).
    fn register_virtual_client(
        &mut self,
        virtual_client: ClientId,
        emulators: &[ClientId],
    ) -> Result<(), DeliveryError>;

    /// Adds an emulator client (draft §5.4). It receives the virtual client's messages from now on.
    fn add_emulator(
        &mut self,
        virtual_client: &ClientId,
        emulator: &ClientId,
    ) -> Result<(), DeliveryError>;

    /// Removes an emulator client; the virtual client must keep at least one.
    fn remove_emulator(
        &mut self,
        virtual_client: &ClientId,
        emulator: &ClientId,
    ) -> Result<(), DeliveryError>;

    /// Creates the log of a new group in `epoch` (0 for a group just created) with one member:
    /// `as_virtual_client` if given (then `creator` must emulate it), else `creator`.
    fn create_group(
        &mut self,
        creator: &ClientId,
        group_id: GroupId,
        as_virtual_client: Option<&ClientId>,
        epoch: u64,
    ) -> Result<(), DeliveryError>;

    /// Appends a message to the group's log and fans it out to every member's mailbox (a virtual
    /// client's mailbox being those of all its emulator clients, the sender's included). Returns
    /// the message's position. See [`DeliveryError`] for the refusals.
    fn send(
        &mut self,
        group_id: &GroupId,
        sender: &ClientId,
        request: SendRequest,
    ) -> Result<Sequence, DeliveryError>;

    /// The group's log from `from` on, as `client` sees it: only messages sent while `client`
    /// (or a virtual client it emulates) was a member.
    fn fetch(
        &mut self,
        client: &ClientId,
        group_id: &GroupId,
        from: Sequence,
    ) -> Result<Vec<GroupMessage>, DeliveryError>;

    /// Takes everything waiting in a plain client's mailbox, in arrival order (per group: log
    /// order).
    fn drain(&mut self, client: &ClientId) -> Result<Vec<Delivered>, DeliveryError>;

    /// The group's current epoch and next sequence.
    fn group_status(&mut self, group_id: &GroupId) -> Result<GroupStatus, DeliveryError>;

    /// Publishes KeyPackages of `owner` (a plain client, or a virtual client; then `publisher`
    /// must emulate it; else `publisher` must be `owner`).
    fn publish_key_packages(
        &mut self,
        publisher: &ClientId,
        owner: &ClientId,
        key_packages: Vec<KeyPackageUpload>,
    ) -> Result<(), DeliveryError>;

    /// Takes one KeyPackage of `owner`: the oldest ordinary one (removed from the directory),
    /// else its last-resort one (kept).
    fn consume_key_package(&mut self, owner: &ClientId) -> Result<Arc<[u8]>, DeliveryError>;

    /// Publishes the encoded GroupInfo of the group's current `epoch` (e.g. by its creator, or
    /// by any member); `publisher` (or `as_virtual_client`, which it must emulate) must be a
    /// member, and `epoch` the group's current one ([`DeliveryError::StaleEpoch`] /
    /// [`DeliveryError::FutureEpoch`] otherwise). Commits publish theirs with
    /// [`SendRequest::with_group_info`].
    fn publish_group_info(
        &mut self,
        publisher: &ClientId,
        as_virtual_client: Option<&ClientId>,
        group_id: &GroupId,
        epoch: u64,
        group_info: Vec<u8>,
    ) -> Result<(), DeliveryError>;

    /// The GroupInfo of the group's current epoch, for an external joiner; its epoch is the
    /// one to state in [`SendRequest::external_commit`].
    fn group_info(&mut self, group_id: &GroupId) -> Result<(u64, Arc<[u8]>), DeliveryError>;
}
