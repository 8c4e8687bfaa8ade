//! # delivery-service
//!
//! The §5.1 Delivery Service of MLS Virtual Clients: "any message sent by an emulator client on
//! behalf of a virtual client \[must\] be delivered not just to the rest of the supergroup to
//! which the message is sent, but also to all other clients in the emulator group".
//!
//! Our reading (DESIGN §5 row 14): the delivery service keeps one totally ordered log per group.
//! It accepts a Commit only for the group's current epoch (the first one wins) and a message of a
//! virtual client only if the sending emulator client has seen every earlier message of that
//! virtual client in that group (compare-and-append on the virtual client's own sequence). So two
//! emulator clients never both win one epoch or one generation, and plain members never wait on
//! each other.
//!
//! The protocol (requests, answers, deliveries) is `vmls-protocol`; this crate serves it.
//! [`InMemoryDeliveryService`] is the in-process service (sans-IO: no threads, sockets or
//! clocks), reached through the [`DeliveryService`] trait or one [`Request`] at a time with
//! [`InMemoryDeliveryService::handle`]. It trusts what senders state about their messages
//! (epoch, Welcome recipients, removed members); the networked server checks them against its
//! public view of each group.
//!
//! Identities: one namespace of [`ClientId`]s. A device has a mailbox; a virtual client has no
//! mailbox of its own but a set of emulator clients (devices), and everything delivered to it is
//! delivered to each of them. Both can be members of groups.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod key_packages;
mod memory;
pub mod service;
pub mod store;

pub use key_packages::KeyPackageDirectory;
pub use memory::{DeliveryStats, InMemoryDeliveryService};
pub use service::{Limits, QueueDepths, Service, ServiceConfig, Subscription};
pub use store::{DatabaseUrl, StoreError};
pub use vmls_protocol::{
    ClientId, Delivered, EmulatorView, GroupId, GroupMessage, GroupStatus, HandshakeView,
    KeyPackageEntry, MessageKind, Payload, Request, Response, SendRequest, Sequence, ServiceError,
    VcSequence, VirtualClientSend, WelcomeDelivery, WelcomeRequest,
};

/// The operations of a §5.1 delivery service. Senders are named explicitly: the in-memory
/// service trusts them, a networked one checks them against the authenticated connection.
///
/// Every method either succeeds completely or changes nothing.
pub trait DeliveryService {
    /// Registers a device (a plain client or an emulator client) with an empty mailbox.
    fn register_client(&mut self, client: ClientId) -> Result<(), ServiceError>;

    /// Registers a virtual client emulated by `emulators` (registered devices, at least one).
    fn register_virtual_client(
        &mut self,
        virtual_client: ClientId,
        emulators: &[ClientId],
    ) -> Result<(), ServiceError>;

    /// Adds an emulator client (draft §5.4). It receives the virtual client's messages from now on.
    fn add_emulator(
        &mut self,
        virtual_client: &ClientId,
        emulator: &ClientId,
    ) -> Result<(), ServiceError>;

    /// Removes an emulator client; the virtual client must keep at least one.
    fn remove_emulator(
        &mut self,
        virtual_client: &ClientId,
        emulator: &ClientId,
    ) -> Result<(), ServiceError>;

    /// Creates the log of a new group in `epoch` (0 for a group just created) with one member:
    /// `as_virtual_client` if given (then `creator` must emulate it), else `creator`.
    fn create_group(
        &mut self,
        creator: &ClientId,
        group_id: GroupId,
        as_virtual_client: Option<&ClientId>,
        epoch: u64,
    ) -> Result<(), ServiceError>;

    /// Appends a message to the group's log and fans it out to every member's mailbox (a virtual
    /// client's mailbox being those of all its emulator clients, the sender's included). Returns
    /// the message's position. See [`ServiceError`] for the refusals.
    fn send(
        &mut self,
        group_id: &GroupId,
        sender: &ClientId,
        request: SendRequest,
    ) -> Result<Sequence, ServiceError>;

    /// The group's log from `from` on, as `client` sees it: only messages sent while `client`
    /// (or a virtual client it emulates) was a member.
    fn fetch(
        &mut self,
        client: &ClientId,
        group_id: &GroupId,
        from: Sequence,
    ) -> Result<Vec<GroupMessage>, ServiceError>;

    /// Takes everything waiting in a device's mailbox, in arrival order (per group: log order).
    fn drain(&mut self, client: &ClientId) -> Result<Vec<Delivered>, ServiceError>;

    /// The group's current epoch and next sequence.
    fn group_status(&mut self, group_id: &GroupId) -> Result<GroupStatus, ServiceError>;

    /// Publishes KeyPackages of `owner` (a device, or a virtual client; then `publisher` must
    /// emulate it; else `publisher` must be `owner`).
    fn publish_key_packages(
        &mut self,
        publisher: &ClientId,
        owner: &ClientId,
        key_packages: Vec<KeyPackageEntry>,
    ) -> Result<(), ServiceError>;

    /// Takes one KeyPackage of `owner`: the oldest ordinary one (removed from the directory),
    /// else its last-resort one (kept).
    fn consume_key_package(&mut self, owner: &ClientId) -> Result<Payload, ServiceError>;

    /// Publishes the encoded GroupInfo of the group's current `epoch` (e.g. by its creator, or
    /// by any member); `publisher` (or `as_virtual_client`, which it must emulate) must be a
    /// member, and `epoch` the group's current one ([`ServiceError::StaleEpoch`] /
    /// [`ServiceError::FutureEpoch`] otherwise). Commits publish theirs with
    /// [`SendRequest::with_group_info`].
    fn publish_group_info(
        &mut self,
        publisher: &ClientId,
        as_virtual_client: Option<&ClientId>,
        group_id: &GroupId,
        epoch: u64,
        group_info: Payload,
    ) -> Result<(), ServiceError>;

    /// The GroupInfo of the group's current epoch, for an external joiner; its epoch is the
    /// one to state in [`SendRequest::external_commit`].
    fn group_info(&mut self, group_id: &GroupId) -> Result<(u64, Payload), ServiceError>;
}

pub mod auth;
pub mod config;
pub mod http;
pub mod metrics;
