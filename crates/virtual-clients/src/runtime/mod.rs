//! The device runtime (issue 10): one sans-IO [`Device`] per device, in the style of
//! quinn-proto's `Connection`. Bytes and time go in, requests and events come out; no sockets,
//! clocks or files.
//!
//! A device is either a plain client (one leaf per device, [`Device::new_plain`]) or an
//! emulator client of a virtual client ([`Device::new_virtual_client`] for the first,
//! [`Device::new_joining_emulator`] for the others). The application:
//!
//! 1. states what it wants with [`Device::intend`] ([`Intent`]: create a group, add or remove
//!    members, send, update, publish KeyPackages, add or remove a device, leave);
//! 2. sends every [`Transmit`] of [`Device::poll_transmit`] to the delivery service and feeds
//!    each answer back with [`Device::handle_response`] (same [`RequestId`]);
//! 3. calls [`Device::sync`] when the service may hold new mailbox items (a push, a timer):
//!    the device reads its mailbox, processes it in order and acknowledges it;
//! 4. shows every [`Event`] of [`Device::poll_event`];
//! 5. saves [`Device::to_bytes`] after every step (each `handle_*`, `intend` or `sync` call is
//!    one step whose state change is one unit), before sending that step's transmits.
//!
//! What the runtime owns (so the application does not): echoes (its own messages coming back
//! are dropped, their acceptance confirmed from the answer), the per-group log positions and
//! the virtual client's per-group [`VcSequence`] (persisted), confirm/abandon of pending
//! Commits, the emulation-first rule (a message as the virtual client states the emulation
//! head the device processed; refused as behind, the device reads what it lacks and tries
//! again), the state transfers after creating a group and adding a device, the rotation of
//! the virtual client's leaf in every group after a device removal, lost races (the winner is
//! processed, the intent re-issued while it applies, else reported failed), gaps in a log
//! (fetched), and the mapping of every error to retry / resync / fatal ([`Recovery`]).

mod api;
mod deliver;
mod error;
mod member;
mod operation;
mod operation_types;
mod persist;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use mls_engine::codec::Credential;
use mls_engine::crypto::CryptoProvider;
use mls_engine::group::{Group, OwnLeaf, Services};
use mls_engine::messages::{HpkeKeySource, KeyPackageParams, LeafNodeParams};
use vmls_protocol::{
    ClientId, GroupId, GroupMessage, MailboxCursor, MailboxItem, ReadMailbox, Request, Response,
    Sequence, VcSequence,
};

pub use crate::emulator::Recovery;
pub use api::{
    DeviceConfig, Event, Intent, IntentFailure, IntentId, MembershipChange, RequestId, Transmit,
};
pub use error::RuntimeError;
pub use persist::DEVICE_STATE_VERSION;

use crate::emulator::EmulatorClient;
use member::{EmulatorMember, Member, PlainMember};
use operation_types::{Operation, Setup, Task};

/// Most held messages kept per group (messages for a group the device does not hold yet, or
/// while its own message to the group is out); more are rejected.
const MAX_HELD: usize = 4096;

/// Why a request is out.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Purpose {
    /// The operation's request.
    Step,
    /// A mailbox read.
    Read,
    /// An acknowledgement.
    Ack,
    /// A fetch of a group's log, to fill a gap.
    Fetch(GroupId),
    /// The retirement of this many KeyPackages at the directory.
    Retire(usize),
}

/// One device: a plain client or an emulator client of a virtual client. See the module docs.
pub struct Device {
    crypto: &'static dyn CryptoProvider,
    id: ClientId,
    config: DeviceConfig,
    member: Member,
    /// Per group (the emulation group included): the log position to process next.
    next: BTreeMap<GroupId, Sequence>,
    /// Per higher-level group: the virtual client's next [`VcSequence`].
    vc_next: BTreeMap<GroupId, VcSequence>,
    /// The last mailbox item read.
    mailbox_after: Option<MailboxCursor>,
    intents: VecDeque<(IntentId, Intent)>,
    operation: Option<Operation>,
    next_intent: u64,
    next_request: u64,
    awaiting: BTreeMap<RequestId, Purpose>,
    outbox: VecDeque<Transmit>,
    /// Messages not processed yet (their group is unknown, or our message to it is out).
    held: BTreeMap<GroupId, Vec<GroupMessage>>,
    fetching: BTreeSet<GroupId>,
    reading: bool,
    /// A read was asked for while one was out.
    read_again: bool,
    /// Messages being processed come from a fetch of the group's log (authoritative), not
    /// from the mailbox. Only set within one step.
    from_log: bool,
    events: VecDeque<Event>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.id)
            .field("groups", &self.member.group_ids())
            .field("operation", &self.operation.as_ref().map(|o| &o.stage))
            .finish_non_exhaustive()
    }
}

fn own_leaf(
    crypto: &dyn CryptoProvider,
    config: &DeviceConfig,
    identity: &ClientId,
    signature_key: mls_engine::crypto::SignatureKeyPair,
) -> OwnLeaf {
    let _ = crypto;
    OwnLeaf {
        params: LeafNodeParams::new(
            config.cipher_suite,
            Credential::basic(identity.as_bytes().to_vec()),
        ),
        encryption_key: HpkeKeySource::Generate,
        signature_key,
    }
}

impl Device {
    fn with_member(
        crypto: &'static dyn CryptoProvider,
        id: ClientId,
        config: DeviceConfig,
        member: Member,
        setup: Setup,
    ) -> Self {
        let mut device = Self {
            crypto,
            id,
            config,
            member,
            next: BTreeMap::new(),
            vc_next: BTreeMap::new(),
            mailbox_after: None,
            intents: VecDeque::new(),
            operation: Some(Operation::new(Task::Setup(setup))),
            next_intent: 0,
            next_request: 0,
            awaiting: BTreeMap::new(),
            outbox: VecDeque::new(),
            held: BTreeMap::new(),
            fetching: BTreeSet::new(),
            reading: false,
            read_again: false,
            from_log: false,
            events: VecDeque::new(),
        };
        device.drive(0);
        device
    }

    /// A plain client named `id` (the identity of its credential): registers with the service.
    pub fn new_plain(
        crypto: &'static dyn CryptoProvider,
        id: ClientId,
        config: DeviceConfig,
    ) -> Result<Self, RuntimeError> {
        let signature_key = crypto
            .suite(config.cipher_suite)?
            .signature_generate_key_pair()?;
        let member = Member::Plain(PlainMember {
            signature_key,
            groups: BTreeMap::new(),
            key_packages: Vec::new(),
            pending_external: BTreeMap::new(),
        });
        Ok(Self::with_member(crypto, id, config, member, Setup::Plain))
    }

    /// The first emulator client of `virtual_client`: creates the emulation group
    /// `emulation_group`, registers itself, starts the group's log at the service and
    /// registers the virtual client with it.
    pub fn new_virtual_client(
        crypto: &'static dyn CryptoProvider,
        id: ClientId,
        virtual_client: ClientId,
        emulation_group: GroupId,
        config: DeviceConfig,
    ) -> Result<Self, RuntimeError> {
        let signature_key = crypto
            .suite(config.cipher_suite)?
            .signature_generate_key_pair()?;
        let mut own = own_leaf(crypto, &config, &id, signature_key);
        own.params = EmulatorClient::emulation_leaf_params(
            config.cipher_suite,
            Credential::basic(id.as_bytes().to_vec()),
        );
        let client = EmulatorClient::create(
            &Services::new(crypto),
            emulation_group.as_bytes().to_vec(),
            config.cipher_suite,
            own,
            config.lifetime,
            Credential::basic(virtual_client.as_bytes().to_vec()),
        )?;
        let member = Member::Emulator(EmulatorMember {
            virtual_client,
            emulation_group: emulation_group.clone(),
            client: Some(client),
            joining: None,
        });
        let mut device = Self::with_member(crypto, id, config, member, Setup::VirtualClient);
        device.next.insert(emulation_group, Sequence(0));
        Ok(device)
    }

    /// A further emulator client of `virtual_client`: registers itself and publishes its
    /// KeyPackage for the emulation group; an emulator client of the virtual client then adds
    /// it ([`Intent::AddDevice`]) and it joins from the Welcome ([`Event::Ready`]).
    pub fn new_joining_emulator(
        crypto: &'static dyn CryptoProvider,
        id: ClientId,
        virtual_client: ClientId,
        emulation_group: GroupId,
        config: DeviceConfig,
    ) -> Result<Self, RuntimeError> {
        let suite = crypto.suite(config.cipher_suite)?;
        let signature_key = suite.signature_generate_key_pair()?;
        let credential = Credential::basic(id.as_bytes().to_vec());
        let bundle =
            KeyPackageParams::new(config.cipher_suite, credential.clone(), config.lifetime)
                .with_leaf(EmulatorClient::emulation_leaf_params(
                    config.cipher_suite,
                    credential,
                ))
                .build_fresh(suite, &signature_key)?;
        let member = Member::Emulator(EmulatorMember {
            virtual_client,
            emulation_group,
            client: None,
            joining: Some((bundle, signature_key)),
        });
        Ok(Self::with_member(
            crypto,
            id,
            config,
            member,
            Setup::JoiningEmulator,
        ))
    }

    /// The device's name at the service (the identity of its own credential).
    pub fn id(&self) -> &ClientId {
        &self.id
    }

    /// The member identity in higher-level groups: the virtual client, or the device.
    pub fn member_identity(&self) -> &ClientId {
        self.member.virtual_client().unwrap_or(&self.id)
    }

    /// The virtual client this device emulates, if it is an emulator client.
    pub fn virtual_client(&self) -> Option<&ClientId> {
        self.member.virtual_client()
    }

    /// A higher-level group, as this member holds it.
    pub fn group(&self, group_id: &GroupId) -> Option<&Group> {
        self.member.group(group_id)
    }

    /// The higher-level groups held (active or not).
    pub fn group_ids(&self) -> Vec<GroupId> {
        self.member.group_ids()
    }

    /// The emulator client, for an emulator client that joined its emulation group.
    pub fn emulator(&self) -> Option<&EmulatorClient> {
        self.member.emulator()
    }

    /// The virtual client's next [`VcSequence`] in `group_id`, as this device knows it.
    pub fn vc_sequence(&self, group_id: &GroupId) -> VcSequence {
        self.vc_next.get(group_id).copied().unwrap_or_default()
    }

    /// The log position of `group_id` this device processes next.
    pub fn log_position(&self, group_id: &GroupId) -> Option<Sequence> {
        self.next.get(group_id).copied()
    }

    /// Whether nothing is in progress: no intent queued or running, no request out, nothing
    /// to send.
    pub fn is_idle(&self) -> bool {
        self.operation.is_none()
            && self.intents.is_empty()
            && self.awaiting.is_empty()
            && self.outbox.is_empty()
    }

    /// Queues an intent; it is carried out after those queued before it. One step.
    pub fn intend(&mut self, intent: Intent, now: u64) -> IntentId {
        let id = IntentId(self.next_intent);
        self.next_intent += 1;
        self.intents.push_back((id, intent));
        self.drive(now);
        id
    }

    /// Reads the mailbox (the service may hold new items): the device asks for them, processes
    /// them in order and acknowledges them. One step.
    pub fn sync(&mut self, now: u64) {
        self.read_mailbox();
        self.drive(now);
    }

    /// The next request for the delivery service.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The service's answer to request `id`. One step. An answer to no request out is
    /// [`RuntimeError::UnknownRequest`] and changes nothing.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        response: Response,
        now: u64,
    ) -> Result<(), RuntimeError> {
        let purpose = self
            .awaiting
            .remove(&id)
            .ok_or(RuntimeError::UnknownRequest(id))?;
        match purpose {
            Purpose::Step => self.step_answered(response, now),
            Purpose::Read => self.mailbox_answered(response, now),
            Purpose::Ack => {}
            Purpose::Fetch(group_id) => self.fetch_answered(group_id, response, now),
            Purpose::Retire(count) => {
                if let Response::Refused(error) = response {
                    self.emit(Event::KeyPackagesNotRetired { count, error });
                }
            }
        }
        self.drive(now);
        Ok(())
    }

    /// Mailbox items pushed by the transport (instead of read with [`Device::sync`]), in
    /// mailbox order. One step; the device acknowledges them.
    pub fn handle_mailbox(&mut self, items: Vec<MailboxItem>, now: u64) {
        self.process_mailbox(items, now);
        self.drive(now);
    }

    fn services(&self) -> Services<'static> {
        Services::new(self.crypto)
    }

    fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Queues `request`, answered through `purpose`.
    fn transmit(&mut self, request: Request, purpose: Purpose) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.awaiting.insert(id, purpose);
        self.outbox.push_back(Transmit { id, request });
        id
    }

    /// Asks for the mailbox items after the last one read (once at a time).
    fn read_mailbox(&mut self) {
        if self.reading {
            self.read_again = true;
            return;
        }
        self.reading = true;
        self.transmit(
            Request::ReadMailbox(ReadMailbox {
                after: self.mailbox_after,
                max_items: self.config.mailbox_batch,
            }),
            Purpose::Read,
        );
    }

    /// Whether the device is processing what the service holds (reads, fetches out).
    fn catching_up(&self) -> bool {
        self.reading || !self.fetching.is_empty()
    }
}

/// The README's example of driving one device, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../../README.md")]
pub struct ReadmeExample;
