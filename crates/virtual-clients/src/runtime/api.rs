//! The runtime's public vocabulary: what an application asks for ([`Intent`]), what the device
//! sends ([`Transmit`]) and what it reports ([`Event`]).

use mls_engine::codec::Lifetime;
use mls_engine::crypto::CipherSuite;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};
use vmls_protocol::{ClientId, GroupId, Request, Sequence, ServiceError};

/// The application's handle on one intent, returned by [`super::Device::intend`] and named by
/// [`Event::IntentDone`] / [`Event::IntentFailed`].
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct IntentId(pub u64);

/// Names one request of [`Transmit`], so that its answer can be fed back with
/// [`super::Device::handle_response`].
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct RequestId(pub u64);

/// A request for the delivery service, made by this device (the transport authenticates it as
/// [`super::Device::id`]). Answer it with [`super::Device::handle_response`] and the same `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Which request this is.
    pub id: RequestId,
    /// The request, with everything the service checks (kind, epoch, Welcome recipients,
    /// removed members, GroupInfo, virtual-client sequence, emulation head).
    pub request: Request,
}

/// What the application wants done. The runtime carries intents out one at a time, in order;
/// each ends in exactly one [`Event::IntentDone`] or [`Event::IntentFailed`]. An intent that
/// loses a race (another device committed first, or sent as the virtual client first) is
/// re-issued automatically after the winner was processed, while it still applies.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub enum Intent {
    /// Creates a group with this device's member (the device, or its virtual client) alone.
    #[tls_codec(discriminant = 1)]
    CreateGroup {
        /// The new group's id.
        group_id: GroupId,
    },
    /// Adds members (devices or virtual clients) with KeyPackages from the service's directory,
    /// in one Commit.
    #[tls_codec(discriminant = 2)]
    AddMembers {
        /// The group.
        group_id: GroupId,
        /// Who to add.
        members: Vec<ClientId>,
    },
    /// Removes members (every leaf of each identity), in one Commit.
    #[tls_codec(discriminant = 3)]
    RemoveMembers {
        /// The group.
        group_id: GroupId,
        /// Who to remove.
        members: Vec<ClientId>,
    },
    /// Sends an application message.
    #[tls_codec(discriminant = 4)]
    Send {
        /// The group.
        group_id: GroupId,
        /// The plaintext.
        data: Vec<u8>,
    },
    /// Replaces this member's leaf (a Commit with path).
    #[tls_codec(discriminant = 5)]
    Update {
        /// The group.
        group_id: GroupId,
    },
    /// Publishes KeyPackages of this member (for a virtual client: announced to the siblings
    /// in a `KeyPackageUpload` emulation commit first, draft §5.5.1).
    #[tls_codec(discriminant = 6)]
    PublishKeyPackages {
        /// How many.
        count: u32,
    },
    /// Emulator clients: adds a device (which published its emulation KeyPackage, see
    /// [`super::Device::new_joining_emulator`]) to the emulation group and transfers the
    /// virtual client's state to it (draft §5.4).
    #[tls_codec(discriminant = 7)]
    AddDevice {
        /// The device.
        device: ClientId,
    },
    /// Emulator clients: removes a device from the emulation group, then rotates the virtual
    /// client's leaf in every group (post-compromise) and retires the KeyPackages it knew.
    #[tls_codec(discriminant = 8)]
    RemoveDevice {
        /// The device.
        device: ClientId,
    },
    /// Leaves a group: proposes this member's removal; the group is forgotten once a Commit of
    /// another member removes it ([`Event::Removed`]).
    #[tls_codec(discriminant = 9)]
    Leave {
        /// The group.
        group_id: GroupId,
    },
    /// Joins a group by external commit from the GroupInfo the service holds (RFC 9420
    /// §12.4.3.2), or rejoins one this member can no longer follow ([`Event::NeedsResync`]):
    /// the commit then removes the member's old leaf. An emulator client first announces the
    /// join to its siblings (`ExternalJoin`, draft §5.5.2), who follow the commit.
    #[tls_codec(discriminant = 10)]
    JoinExternally {
        /// The group.
        group_id: GroupId,
    },
}

impl Intent {
    /// The higher-level group the intent acts in, if any.
    pub fn group_id(&self) -> Option<&GroupId> {
        match self {
            Self::CreateGroup { group_id }
            | Self::AddMembers { group_id, .. }
            | Self::RemoveMembers { group_id, .. }
            | Self::Send { group_id, .. }
            | Self::Update { group_id }
            | Self::Leave { group_id }
            | Self::JoinExternally { group_id } => Some(group_id),
            Self::PublishKeyPackages { .. }
            | Self::AddDevice { .. }
            | Self::RemoveDevice { .. } => None,
        }
    }
}

/// Why an intent failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntentFailure {
    /// The service refused it for a reason another attempt does not change.
    #[error("refused by the delivery service: {0}")]
    Refused(ServiceError),
    /// It lost races too often in a row.
    #[error("lost {0} races in a row")]
    TooManyRaces(u8),
    /// After the race it lost, it no longer applies (e.g. the members were added or removed by
    /// someone else, the group is gone).
    #[error("no longer applies: {0}")]
    NoLongerApplies(&'static str),
    /// The MLS operation itself failed (a bad KeyPackage, not a member, ...).
    #[error("the MLS operation failed: {0}")]
    Operation(String),
    /// This kind of device cannot do it.
    #[error("not supported by this device: {0}")]
    Unsupported(&'static str),
}

/// What changed in a group's membership with one Commit. Identities are credential identities
/// (for a virtual client: its name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// New members.
    pub added: Vec<ClientId>,
    /// Members no longer in the group.
    pub removed: Vec<ClientId>,
    /// Members whose leaf changed (the committer's path, Updates).
    pub updated: Vec<ClientId>,
}

/// What happened, for the application to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A registration or setup step of this device completed: it can act now.
    Ready,
    /// An application message.
    MessageReceived {
        /// The group.
        group_id: GroupId,
        /// Its sender (the virtual client, for a message of one: our own from another device).
        sender: ClientId,
        /// The plaintext.
        data: Vec<u8>,
    },
    /// A Commit moved `group_id` to `epoch` (ours or another member's).
    GroupChanged {
        /// The group.
        group_id: GroupId,
        /// The new epoch.
        epoch: u64,
        /// Who committed.
        committer: ClientId,
        /// Who was added, removed, updated.
        change: MembershipChange,
    },
    /// This member joined a group (Welcome, state transfer from a sibling, or its own creation).
    Joined {
        /// The group.
        group_id: GroupId,
        /// Its members now.
        members: Vec<ClientId>,
    },
    /// This member was removed from a group; its state of the group is deleted.
    Removed {
        /// The group.
        group_id: GroupId,
    },
    /// A device joined the emulation group (draft §5.4).
    DeviceAdded {
        /// The device.
        device: ClientId,
    },
    /// A device left the emulation group; `device` may be this one (then it holds nothing).
    DeviceRemoved {
        /// The device.
        device: ClientId,
    },
    /// After a device removal, this device deleted the virtual client's unused KeyPackages
    /// (the removed device knew their keys: Welcomes to them are refused from now on), but the
    /// service refused to delete them from its directory; publish new KeyPackages, and expect
    /// Welcomes to the old ones to fail.
    KeyPackagesNotRetired {
        /// How many.
        count: usize,
        /// The service's refusal.
        error: ServiceError,
    },
    /// An intent was carried out.
    IntentDone {
        /// Which.
        intent: IntentId,
    },
    /// An intent was given up.
    IntentFailed {
        /// Which.
        intent: IntentId,
        /// Why.
        reason: IntentFailure,
    },
    /// A delivered item was not usable (forged, duplicated out of order, undecodable), or a
    /// sibling's emulation Commit was applied without its malformed `VirtualClientAction`
    /// (issue 10 hole 1); nothing else changed.
    Rejected {
        /// The group it claimed to be of.
        group_id: GroupId,
        /// Its log position, if it had one.
        sequence: Option<Sequence>,
        /// Why (the error's text).
        reason: String,
    },
    /// This member can no longer follow `group_id` (it missed or could not process an accepted
    /// Commit): rejoin it by external commit.
    NeedsResync {
        /// The group.
        group_id: GroupId,
        /// Why.
        reason: String,
    },
    /// The device's state is unusable (removed from its emulation group, corrupt): wipe it.
    Fatal {
        /// Why.
        reason: String,
    },
}

/// The fixed parameters of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// The cipher suite of the groups it creates, its KeyPackages and its emulation group.
    pub cipher_suite: CipherSuite,
    /// The lifetime of its leaves and KeyPackages.
    pub lifetime: Lifetime,
    /// Most mailbox items one read asks for.
    pub mailbox_batch: u32,
    /// Most races one intent may lose before it fails.
    pub max_attempts: u8,
}

impl DeviceConfig {
    /// Defaults for `cipher_suite`: leaves valid from `now` minus an hour for 90 days, 256
    /// mailbox items per read, 8 attempts per intent.
    pub fn new(cipher_suite: CipherSuite, now: u64) -> Self {
        Self {
            cipher_suite,
            lifetime: Lifetime {
                not_before: now.saturating_sub(3600),
                not_after: now.saturating_add(90 * 24 * 3600),
            },
            mailbox_batch: 256,
            max_attempts: 8,
        }
    }
}
