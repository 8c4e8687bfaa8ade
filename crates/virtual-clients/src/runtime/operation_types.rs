//! The persisted shape of the intent in progress: which task, how far it got, and the request
//! out for it.

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};
use vmls_protocol::{GroupId, Payload, Request, Sequence, VcSequence};

use super::api::{Intent, IntentId};

/// What the device sets up when it is made.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub(super) enum Setup {
    /// A plain client: registers.
    Plain = 1,
    /// The first emulator client: registers, starts the emulation group's log, registers the
    /// virtual client.
    VirtualClient = 2,
    /// A further emulator client: registers and publishes its emulation KeyPackage.
    JoiningEmulator = 3,
}

/// The work of one operation.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub(super) enum Task {
    /// The device's own setup.
    #[tls_codec(discriminant = 1)]
    Setup(Setup),
    /// An application's intent.
    #[tls_codec(discriminant = 2)]
    Intent(IntentId, Intent),
}

/// What a request of an operation is for: decides what its answer does.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub(super) enum Step {
    /// `register_device`.
    #[tls_codec(discriminant = 1)]
    Register,
    /// `create_group` of the emulation group.
    #[tls_codec(discriminant = 2)]
    CreateEmulation,
    /// `register_virtual_client`.
    #[tls_codec(discriminant = 3)]
    RegisterVirtualClient,
    /// `publish_key_packages` (own emulation KeyPackage, or the intent's).
    #[tls_codec(discriminant = 4)]
    PublishKeyPackages,
    /// `consume_key_package` for the next member to add.
    #[tls_codec(discriminant = 5)]
    ConsumeKeyPackage,
    /// A Commit in a higher-level group.
    #[tls_codec(discriminant = 6)]
    Commit(GroupId),
    /// An application message in a higher-level group.
    #[tls_codec(discriminant = 7)]
    Application(GroupId),
    /// `create_group` of a higher-level group.
    #[tls_codec(discriminant = 8)]
    CreateGroup(GroupId),
    /// A state transfer (an emulation-group application message).
    #[tls_codec(discriminant = 9)]
    Transfer,
    /// A Commit in the emulation group.
    #[tls_codec(discriminant = 10)]
    EmulationCommit,
    /// A Proposal in a higher-level group.
    #[tls_codec(discriminant = 11)]
    Proposal(GroupId),
    /// `fetch_group_info` for an external join.
    #[tls_codec(discriminant = 12)]
    FetchGroupInfo,
    /// An external Commit into a higher-level group.
    #[tls_codec(discriminant = 13)]
    ExternalCommit(GroupId),
}

/// Where an operation is.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub(super) enum Stage {
    /// Nothing sent yet for this attempt: plan it.
    #[tls_codec(discriminant = 1)]
    Start,
    /// `request` is out (or queued); its answer decides.
    #[tls_codec(discriminant = 2)]
    Sent {
        /// The request.
        request: Request,
        /// What it is for.
        step: Step,
    },
    /// Lost a race (or lags): reading what the service holds, then a new attempt.
    #[tls_codec(discriminant = 3)]
    CatchUp,
    /// Accepted, but messages before it in the log are not processed yet: its echo is
    /// processed in log order (a Commit is merged then, as the engine's own pending commit).
    #[tls_codec(discriminant = 5)]
    AwaitEcho {
        /// The request.
        request: Request,
        /// What it is for.
        step: Step,
        /// Its log position.
        sequence: Sequence,
    },
    /// Restarted while `request` was out: reading the mailbox for its echo; if it comes, it
    /// was accepted, else it is sent again (or, if a rival Commit came, a new attempt).
    #[tls_codec(discriminant = 4)]
    Verify {
        /// The request.
        request: Request,
        /// What it is for.
        step: Step,
        /// A rival Commit in its group came: the request cannot have been accepted.
        lost: u8,
    },
}

/// A virtual-client sequence the service told us of (in a refusal), applied after catching up.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub(super) struct LearnedSequence {
    /// The group.
    pub(super) group_id: GroupId,
    /// The virtual client's next sequence there.
    pub(super) next: VcSequence,
}

/// The operation in progress.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub(super) struct Operation {
    /// What it does.
    pub(super) task: Task,
    /// Races lost so far.
    pub(super) attempts: u8,
    /// The step of the task reached (tasks with several requests).
    pub(super) phase: u8,
    /// KeyPackages consumed for it (reused on a new attempt) or made for it.
    pub(super) key_packages: Vec<Payload>,
    /// Higher-level groups still to rotate (device removal).
    pub(super) remaining: Vec<GroupId>,
    /// Where it is.
    pub(super) stage: Stage,
    /// Learned from a refusal.
    pub(super) learned: Option<LearnedSequence>,
    /// The emulation group's head, learned from a refusal.
    pub(super) emulation_head: Option<Sequence>,
    /// Whether this attempt read the mailbox first (every intent acts on what the service
    /// holds: the emulation-first rule and the log order).
    pub(super) caught_up: u8,
}

impl Operation {
    /// A new operation.
    pub(super) fn new(task: Task) -> Self {
        Self {
            task,
            attempts: 0,
            phase: 0,
            key_packages: Vec::new(),
            remaining: Vec::new(),
            stage: Stage::Start,
            learned: None,
            emulation_head: None,
            caught_up: 0,
        }
    }
}
