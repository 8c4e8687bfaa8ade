//! The clients of one run and the scenario's steps, all through the delivery service
//! ([`Net`]). With virtual clients, Alice's and Bob's devices are [`EmulatorClient`]s; with one
//! leaf per device every device is a plain client like Carol.

use std::collections::{BTreeMap, BTreeSet};

use delivery_service::{ClientId, Delivered, GroupMessage, MessageKind, SendRequest, VcSequence};
use mls_engine::codec::{Credential, Lifetime, MlsMessage, MlsMessageBody, Proposal};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SignatureKeyPair};
use mls_engine::group::{
    CommitOptions, ExternalCommitOptions, Group, GroupConfig, OwnLeaf, ProcessedMessage, Services,
};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};
use virtual_clients::emulator::EmulatorClient;

use super::net::{decode_group_info, decode_welcome, encode, Kind, Net};
use super::{
    agree, dev, key_packages_needed, DemoError, Device, Log, Person, TreeSize, CAROL,
    EXTERNAL_JOINER, UPLOADERS,
};
use super::{DeliveryStats, Traffic};

static CRYPTO: RustCrypto = RustCrypto;

/// The fixed time of the whole scenario (seconds since the epoch).
const NOW: u64 = 1_700_000_000;

/// The cipher suite of every group.
const SUITE: CipherSuite = CipherSuite(1);

fn svc() -> Services<'static> {
    Services::new(&CRYPTO)
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 3600 * 24 * 90,
    }
}

/// The delivery service's name of a device (or Carol).
fn client_id(who: Device) -> ClientId {
    ClientId::new(who.to_string())
}

/// The delivery service's name of a virtual client.
fn vc_id(person: Person) -> ClientId {
    ClientId::new(person.name())
}

/// The ID of `person`'s emulation group.
fn emulation_group(person: Person) -> String {
    format!("{}-emulation", person.name())
}

fn own_leaf(name: String) -> Result<OwnLeaf, DemoError> {
    Ok(OwnLeaf {
        params: LeafNodeParams::new(SUITE, Credential::basic(name.into_bytes())),
        encryption_key: HpkeKeySource::Generate,
        signature_key: CRYPTO.suite(SUITE)?.signature_generate_key_pair()?,
    })
}

/// A device's KeyPackage for its emulation group (its leaf supports the emulation group's
/// `app_data_dictionary`, i.e. SafeAAD).
fn emulator_key_package(who: Device) -> Result<(KeyPackageBundle, SignatureKeyPair), DemoError> {
    let suite = CRYPTO.suite(SUITE)?;
    let key = suite.signature_generate_key_pair()?;
    let credential = Credential::basic(who.to_string().into_bytes());
    let bundle = KeyPackageParams::new(SUITE, credential.clone(), lifetime())
        .with_leaf(EmulatorClient::emulation_leaf_params(SUITE, credential))
        .build_fresh(suite, &key)?;
    Ok((bundle, key))
}

/// A fresh ordinary KeyPackage for `who` and its signature key.
fn plain_key_package(who: Device) -> Result<(KeyPackageBundle, SignatureKeyPair), DemoError> {
    let suite = CRYPTO.suite(SUITE)?;
    let key = suite.signature_generate_key_pair()?;
    let bundle = KeyPackageParams::new(
        SUITE,
        Credential::basic(who.to_string().into_bytes()),
        lifetime(),
    )
    .build_fresh(suite, &key)?;
    Ok((bundle, key))
}

fn application_text(by: Device, group: &str) -> Vec<u8> {
    format!("hello from {by} in '{group}'").into_bytes()
}

fn tree_of(group: &str, g: &Group) -> TreeSize {
    let members = g.members().len() as u32;
    let leaves = g.ratchet_tree().n_leaves();
    TreeSize {
        group: group.to_string(),
        members,
        leaves,
        blank_leaves: leaves.saturating_sub(members),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Which world a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Alice and Bob as virtual clients.
    VirtualClients,
    /// Every device its own member.
    PerDevice,
}

/// A plain client: its groups and its unused KeyPackages.
#[derive(Default)]
struct PlainClient {
    groups: BTreeMap<String, Group>,
    key_packages: Vec<(KeyPackageBundle, SignatureKeyPair)>,
}

/// An emulator client of a virtual client.
struct Emulator {
    /// `None` until it joined the emulation group.
    client: Option<EmulatorClient>,
    /// Its KeyPackage for the emulation group, until the Welcome comes.
    joining: Option<(KeyPackageBundle, SignatureKeyPair)>,
    /// Per higher-level group: how many of the virtual client's messages it has seen there
    /// (the next [`VcSequence`]).
    vc_seen: BTreeMap<String, u64>,
}

enum Client {
    Plain(PlainClient),
    Emulator(Box<Emulator>),
}

/// What a client did with one item of its mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// Its own message coming back: dropped.
    Echo,
    /// Joined a higher-level group from a Welcome.
    Joined,
    /// Joined the emulation group from a Welcome.
    JoinedEmulation,
    /// Processed a Commit of a higher-level group.
    Commit,
    /// Processed a Commit of its emulation group.
    EmulationCommit,
    /// Followed a sibling's external join.
    FollowedExternalJoin,
    /// Read an application message.
    Application(Vec<u8>),
    /// Anything else (a proposal).
    Other,
}

/// One processed mailbox item.
struct Seen {
    who: Device,
    group: String,
    event: Event,
}

fn group_err(who: Device) -> impl FnOnce(mls_engine::group::GroupError) -> DemoError {
    move |source| DemoError::Group { who, source }
}

fn emu_err(who: Device) -> impl FnOnce(virtual_clients::emulator::EmulatorError) -> DemoError {
    move |source| DemoError::Emulator { who, source }
}

fn not_in(who: Device, group: &str) -> DemoError {
    DemoError::NotInGroup {
        who,
        group: group.to_string(),
    }
}

fn unexpected(who: Device, group: &str, expected: &'static str) -> DemoError {
    DemoError::Unexpected {
        who,
        group: group.to_string(),
        expected,
    }
}

fn plain_group<'a>(
    clients: &'a mut BTreeMap<Device, Client>,
    who: Device,
    group: &str,
) -> Result<&'a mut Group, DemoError> {
    match clients.get_mut(&who) {
        Some(Client::Plain(p)) => p.groups.get_mut(group).ok_or_else(|| not_in(who, group)),
        _ => Err(not_in(who, group)),
    }
}

fn emulator(
    clients: &mut BTreeMap<Device, Client>,
    who: Device,
) -> Result<&mut Emulator, DemoError> {
    match clients.get_mut(&who) {
        Some(Client::Emulator(e)) => Ok(e),
        _ => Err(not_in(who, &emulation_group(who.person))),
    }
}

impl Emulator {
    fn client(&mut self, who: Device) -> Result<&mut EmulatorClient, DemoError> {
        self.client
            .as_mut()
            .ok_or_else(|| not_in(who, &emulation_group(who.person)))
    }

    fn seen(&self, group: &str) -> VcSequence {
        VcSequence(self.vc_seen.get(group).copied().unwrap_or(0))
    }
}

/// The clients of one run, on one delivery service.
pub(super) struct World {
    mode: Mode,
    net: Net,
    clients: BTreeMap<Device, Client>,
    /// The persons in each higher-level group.
    members: BTreeMap<String, BTreeSet<Person>>,
    /// Groups whose GroupInfo is published after every epoch (for external joiners).
    public: BTreeSet<String>,
    /// Per virtual client: the device that made its uploaded KeyPackages.
    uploaded_by: BTreeMap<Person, Device>,
}

impl World {
    /// Carol registered with a new delivery service.
    pub(super) fn new(mode: Mode) -> Result<Self, DemoError> {
        let mut world = Self {
            mode,
            net: Net::new(),
            clients: BTreeMap::new(),
            members: BTreeMap::new(),
            public: BTreeSet::new(),
            uploaded_by: BTreeMap::new(),
        };
        world.net.register(&client_id(CAROL))?;
        world
            .clients
            .insert(CAROL, Client::Plain(PlainClient::default()));
        Ok(world)
    }

    /// Which world this is.
    pub(super) fn mode(&self) -> Mode {
        self.mode
    }

    fn is_virtual(&self, person: Person) -> bool {
        self.mode == Mode::VirtualClients && person != Person::Carol
    }

    /// The member identities of `person` on the delivery service: its virtual client, or
    /// each of its devices.
    fn identities(&self, person: Person) -> Vec<ClientId> {
        if self.is_virtual(person) {
            vec![vc_id(person)]
        } else {
            (1..=person.devices())
                .map(|n| client_id(dev(person, n)))
                .collect()
        }
    }

    /// Every client drains its mailbox and processes what it got, in a fixed order.
    fn deliver(&mut self) -> Result<Vec<Seen>, DemoError> {
        let devices: Vec<Device> = self.clients.keys().copied().collect();
        let mut seen = Vec::new();
        for who in devices {
            for item in self.net.drain(&client_id(who))? {
                seen.push(self.handle(who, item)?);
            }
        }
        Ok(seen)
    }

    /// One mailbox item at `who`.
    fn handle(&mut self, who: Device, item: Delivered) -> Result<Seen, DemoError> {
        let me = client_id(who);
        let (group, event) = match item {
            Delivered::Welcome(w) => {
                let group = String::from_utf8_lossy(&w.group_id.0).into_owned();
                let welcome = decode_welcome(&w.message)?
                    .ok_or_else(|| unexpected(who, &group, "a Welcome"))?;
                let event = match self.clients.get_mut(&who) {
                    Some(Client::Plain(p)) => {
                        let pos = p
                            .key_packages
                            .iter()
                            .position(|(b, _)| welcome.secrets_for(&b.reference).is_some())
                            .ok_or_else(|| {
                                unexpected(who, &group, "a Welcome to one of its KeyPackages")
                            })?;
                        let (bundle, key) = p.key_packages.remove(pos);
                        let joined = Group::join_from_welcome(
                            &svc(),
                            GroupConfig::default(),
                            &welcome,
                            &bundle,
                            key,
                            None,
                            NOW,
                        )
                        .map_err(group_err(who))?;
                        p.groups.insert(group.clone(), joined);
                        Event::Joined
                    }
                    Some(Client::Emulator(e)) if w.recipient == me => {
                        // Welcomed as itself: into the emulation group.
                        let (bundle, key) = e
                            .joining
                            .take()
                            .ok_or_else(|| unexpected(who, &group, "no Welcome"))?;
                        let credential = Credential::basic(who.person.name().as_bytes().to_vec());
                        e.client = Some(
                            EmulatorClient::join(&svc(), &welcome, &bundle, key, credential, NOW)
                                .map_err(emu_err(who))?,
                        );
                        Event::JoinedEmulation
                    }
                    Some(Client::Emulator(e)) => {
                        e.client(who)?
                            .join_from_welcome_by_ref(&svc(), &welcome, NOW)
                            .map_err(emu_err(who))?;
                        Event::Joined
                    }
                    None => return Err(not_in(who, &group)),
                };
                (group, event)
            }
            Delivered::Message { message, .. } => {
                let group = String::from_utf8_lossy(&message.group_id.0).into_owned();
                let event = match self.clients.get_mut(&who) {
                    Some(Client::Plain(p)) => {
                        if message.sender == me {
                            Event::Echo
                        } else {
                            let g = p
                                .groups
                                .get_mut(&group)
                                .ok_or_else(|| not_in(who, &group))?;
                            let processed = g
                                .process_bytes(&svc(), &message.message, NOW)
                                .map_err(group_err(who))?;
                            event_of(processed)
                        }
                    }
                    Some(Client::Emulator(e)) => emulator_handles(e, who, &group, &message)?,
                    None => return Err(not_in(who, &group)),
                };
                (group, event)
            }
        };
        Ok(Seen { who, group, event })
    }

    /// Before any higher-level group. Virtual clients: the emulation groups, then each
    /// virtual client's `KeyPackageUpload`. One leaf per device: every device publishes its own
    /// KeyPackages.
    pub(super) fn setup(&mut self, log: &mut Log<'_>) -> Result<(), DemoError> {
        if self.mode == Mode::VirtualClients {
            self.emulation_group(log, Person::Alice)?;
            self.emulation_group(log, Person::Bob)?;
            for maker in UPLOADERS {
                self.upload(log, maker)?;
            }
            return Ok(());
        }
        for person in [Person::Alice, Person::Bob] {
            let count = key_packages_needed(person);
            for n in 1..=person.devices() {
                let who = dev(person, n);
                let id = client_id(who);
                self.net.register(&id)?;
                let mut made = Vec::new();
                for _ in 0..count {
                    made.push(plain_key_package(who)?);
                }
                let kps: Vec<_> = made.iter().map(|(b, _)| b.key_package.clone()).collect();
                let sizes = self
                    .net
                    .publish_key_packages(&id, &id, &kps, Kind::KeyPackages)?;
                self.clients.insert(
                    who,
                    Client::Plain(PlainClient {
                        groups: BTreeMap::new(),
                        key_packages: made,
                    }),
                );
                log.step(format_args!(
                    "{who} publishes {} to the delivery service's directory, {} bytes",
                    plural(count, "KeyPackage", "KeyPackages"),
                    join_sizes(&sizes)
                ));
            }
        }
        Ok(())
    }

    /// The emulation group of `person`: device 1 creates it (a group on the delivery service
    /// like any other, its members the devices) and registers the virtual client; every other
    /// device publishes a KeyPackage, device 1 takes it from the directory and adds it.
    fn emulation_group(&mut self, log: &mut Log<'_>, person: Person) -> Result<(), DemoError> {
        let first = dev(person, 1);
        let first_id = client_id(first);
        let group = emulation_group(person);
        let credential = Credential::basic(person.name().as_bytes().to_vec());
        let creator = EmulatorClient::create(
            &svc(),
            group.clone().into_bytes(),
            SUITE,
            own_leaf(first.to_string())?,
            lifetime(),
            credential,
        )
        .map_err(emu_err(first))?;
        self.net.register(&first_id)?;
        self.net.create_group(&first_id, &group, None, true)?;
        self.net
            .register_virtual_client(&vc_id(person), &first_id)?;
        self.clients.insert(
            first,
            Client::Emulator(Box::new(Emulator {
                client: Some(creator),
                joining: None,
                vc_seen: BTreeMap::new(),
            })),
        );
        log.step(format_args!(
            "{first} creates the emulation group '{group}' and registers the virtual client '{}' with the delivery service",
            person.name()
        ));
        for n in 2..=person.devices() {
            let new = dev(person, n);
            let new_id = client_id(new);
            self.net.register(&new_id)?;
            let (bundle, key) = emulator_key_package(new)?;
            self.net.publish_key_packages(
                &new_id,
                &new_id,
                std::slice::from_ref(&bundle.key_package),
                Kind::Emulation,
            )?;
            self.clients.insert(
                new,
                Client::Emulator(Box::new(Emulator {
                    client: None,
                    joining: Some((bundle, key)),
                    vc_seen: BTreeMap::new(),
                })),
            );
            let (kp, kp_size) = self.net.consume_key_package(&new_id, Kind::Emulation)?;
            let adder = emulator(&mut self.clients, first)?.client(first)?;
            let before = adder.emulation_group().epoch();
            let out = adder
                .add_emulator(&svc(), kp, NOW)
                .map_err(emu_err(first))?;
            let welcome = out
                .welcome
                .ok_or_else(|| unexpected(first, &group, "a Welcome"))?;
            let welcome = encode(MlsMessageBody::Welcome(welcome))?;
            let welcome_size = welcome.len();
            let commit = out.commit.to_bytes()?;
            self.net.send(
                &group,
                &first_id,
                SendRequest::commit(before, commit.clone())
                    .with_welcome(vec![new_id.clone()], welcome),
            )?;
            emulator(&mut self.clients, first)?
                .client(first)?
                .confirm_emulation_commit(&svc())
                .map_err(emu_err(first))?;
            let seen = self.deliver()?;
            if !seen
                .iter()
                .any(|s| s.who == new && s.event == Event::JoinedEmulation)
            {
                return Err(unexpected(new, &group, "to join from the Welcome"));
            }
            self.net.add_emulator(&vc_id(person), &new_id)?;
            log.step(format_args!(
                "{first} adds {new} to the emulation group (epoch {before} -> {}): its KeyPackage {kp_size} bytes through the directory, commit {} bytes, Welcome {welcome_size} bytes; {new} is now an emulator client of '{}'",
                before + 1,
                commit.len(),
                person.name()
            ));
            self.emulation_agree(log, person)?;
        }
        Ok(())
    }

    /// Every device of the virtual client `person` that is in the emulation group is in the
    /// same emulation epoch (epoch authenticator and epoch_id).
    fn emulation_agree(&mut self, log: &mut Log<'_>, person: Person) -> Result<(), DemoError> {
        let mut values = Vec::new();
        for (who, client) in &self.clients {
            if who.person != person {
                continue;
            }
            if let Client::Emulator(e) = client {
                let c = e
                    .client
                    .as_ref()
                    .ok_or_else(|| not_in(*who, &emulation_group(person)))?;
                let mut v = c.emulation_group().epoch_authenticator().to_vec();
                v.extend(
                    c.epoch_ids()
                        .last()
                        .map(|id| id.to_vec())
                        .unwrap_or_default(),
                );
                values.push((*who, v));
            }
        }
        agree(&emulation_group(person), log.step, &values)?;
        log.epoch_checks += 1;
        Ok(())
    }

    /// Sends an emulation-group Commit `commit` of `by` made in `before`; confirms it; every
    /// sibling processes it. Returns how many did.
    fn send_emulation_commit(
        &mut self,
        by: Device,
        before: u64,
        commit: Vec<u8>,
    ) -> Result<usize, DemoError> {
        let group = emulation_group(by.person);
        self.net
            .send(&group, &client_id(by), SendRequest::commit(before, commit))?;
        emulator(&mut self.clients, by)?
            .client(by)?
            .confirm_emulation_commit(&svc())
            .map_err(emu_err(by))?;
        let seen = self.deliver()?;
        let processed = seen
            .iter()
            .filter(|s| s.group == group && s.event == Event::EmulationCommit)
            .count();
        let siblings = usize::from(by.person.devices()) - 1;
        if processed != siblings {
            return Err(unexpected(
                by,
                &group,
                "every sibling to process the commit",
            ));
        }
        Ok(processed)
    }

    /// `maker` derives one KeyPackage of its virtual client per group it will be welcomed to,
    /// announces them with a `KeyPackageUpload` emulation commit (processed by its siblings),
    /// then publishes them to the directory as the virtual client.
    fn upload(&mut self, log: &mut Log<'_>, maker: Device) -> Result<(), DemoError> {
        let person = maker.person;
        let count = key_packages_needed(person);
        let sender = emulator(&mut self.clients, maker)?.client(maker)?;
        let before = sender.emulation_group().epoch();
        let (out, kps) = sender
            .publish_key_packages(&svc(), SUITE, lifetime(), count, CommitOptions::new(), NOW)
            .map_err(emu_err(maker))?;
        let commit = out.commit.to_bytes()?;
        let commit_size = commit.len();
        let recipients = self.send_emulation_commit(maker, before, commit)?;
        let sizes = self.net.publish_key_packages(
            &client_id(maker),
            &vc_id(person),
            &kps,
            Kind::KeyPackages,
        )?;
        log.step(format_args!(
            "{maker} uploads {} of the virtual client '{}' through an emulation commit (KeyPackageUpload, epoch {before} -> {}), {commit_size} bytes, processed by {}; KeyPackages {} bytes published to the directory as '{}'",
            plural(kps.len(), "KeyPackage", "KeyPackages"),
            person.name(),
            before + 1,
            plural(recipients, "other device", "other devices"),
            join_sizes(&sizes),
            person.name()
        ));
        self.emulation_agree(log, person)?;
        self.uploaded_by.insert(person, maker);
        Ok(())
    }

    /// Carol creates `group` and adds `persons` with KeyPackages from the directory; every
    /// device joins from the Welcome. A `public` group's GroupInfo is published after every
    /// epoch.
    pub(super) fn create_group(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        persons: &[Person],
        public: bool,
    ) -> Result<(), DemoError> {
        let carol_id = client_id(CAROL);
        let created = Group::create(
            &svc(),
            GroupConfig::default(),
            group.as_bytes().to_vec(),
            SUITE,
            own_leaf(CAROL.to_string())?,
            lifetime(),
            vec![],
        )
        .map_err(group_err(CAROL))?;
        self.net.create_group(&carol_id, group, None, false)?;
        if let Some(Client::Plain(p)) = self.clients.get_mut(&CAROL) {
            p.groups.insert(group.to_string(), created);
        }
        if public {
            self.public.insert(group.to_string());
        }
        let mut options = CommitOptions::new();
        let mut recipients = Vec::new();
        let mut kp_bytes = 0;
        for person in persons {
            for owner in self.identities(*person) {
                let (kp, size) = self.net.consume_key_package(&owner, Kind::KeyPackages)?;
                kp_bytes += size;
                options = options.proposal(Proposal::add(kp));
                recipients.push(owner);
            }
        }
        let names: Vec<String> = recipients.iter().map(ClientId::to_string).collect();
        let (sizes, _) = self.plain_commit(CAROL, group, options, recipients)?;
        let seen = self.deliver()?;
        let names_text = names.join(", ");
        let joined: Vec<Device> = seen
            .iter()
            .filter(|s| s.group == group && s.event == Event::Joined)
            .map(|s| s.who)
            .collect();
        self.members.insert(
            group.to_string(),
            std::iter::once(Person::Carol)
                .chain(persons.iter().copied())
                .collect(),
        );
        let published = if public {
            format!(
                ", GroupInfo {} bytes published for external joiners",
                sizes.group_info
            )
        } else {
            String::new()
        };
        log.step(format_args!(
            "carol creates group '{group}' and adds {names_text} with {} from the directory ({kp_bytes} bytes) (epoch 0 -> 1): commit {} bytes, Welcome {} bytes to {}{published}",
            plural(names.len(), "KeyPackage", "KeyPackages"),
            sizes.commit,
            sizes.welcome,
            plural(joined.len(), "device", "devices"),
        ));
        for who in joined {
            let how = match self.uploaded_by.get(&who.person) {
                _ if !self.is_virtual(who.person) => String::new(),
                Some(maker) if *maker == who => {
                    " (by KeyPackageRef, its own KeyPackage)".to_string()
                }
                Some(maker) => {
                    format!(" (by KeyPackageRef, the KeyPackage {maker} uploaded, keys re-derived)")
                }
                None => String::new(),
            };
            log.detail(format_args!("{who} joins '{group}' from the Welcome{how}"));
        }
        let expected: usize = persons.iter().map(|p| usize::from(p.devices())).sum();
        if names.is_empty() || self.count_devices(group) != expected + 1 {
            return Err(unexpected(CAROL, group, "every device to join"));
        }
        Ok(())
    }

    /// How many clients hold `group`.
    fn count_devices(&self, group: &str) -> usize {
        self.clients
            .values()
            .filter(|c| match c {
                Client::Plain(p) => p.groups.contains_key(group),
                Client::Emulator(e) => e
                    .client
                    .as_ref()
                    .is_some_and(|c| c.group(group.as_bytes()).is_some()),
            })
            .count()
    }

    /// A plain client commits `options` in `group` (with a Welcome to `recipients` if it adds
    /// anyone) through the service, merges it once accepted, and publishes the new epoch's
    /// GroupInfo if the group is public.
    fn plain_commit(
        &mut self,
        who: Device,
        group: &str,
        options: CommitOptions,
        recipients: Vec<ClientId>,
    ) -> Result<(Sizes, u64), DemoError> {
        let id = client_id(who);
        let g = plain_group(&mut self.clients, who, group)?;
        let before = g.epoch();
        let out = g.commit(&svc(), options, NOW).map_err(group_err(who))?;
        let commit = out.commit.to_bytes()?;
        let mut sizes = Sizes {
            commit: commit.len(),
            ..Sizes::default()
        };
        let mut request = SendRequest::commit(before, commit);
        if let Some(welcome) = out.welcome {
            let welcome = encode(MlsMessageBody::Welcome(welcome))?;
            sizes.welcome = welcome.len();
            request = request.with_welcome(recipients, welcome);
        }
        self.net.send(group, &id, request)?;
        plain_group(&mut self.clients, who, group)?
            .merge_pending_commit()
            .map_err(group_err(who))?;
        sizes.group_info = self.publish_group_info(who, group)?;
        Ok((sizes, before))
    }

    /// If `group` is public: `who` publishes the GroupInfo of its current epoch (as its
    /// virtual client if it is an emulator client). Returns its size (0 if not public).
    fn publish_group_info(&mut self, who: Device, group: &str) -> Result<usize, DemoError> {
        if !self.public.contains(group) {
            return Ok(0);
        }
        let (g, as_vc) = match self.clients.get_mut(&who) {
            Some(Client::Plain(p)) => {
                (p.groups.get(group).ok_or_else(|| not_in(who, group))?, None)
            }
            Some(Client::Emulator(e)) => (
                e.client(who)?
                    .group(group.as_bytes())
                    .ok_or_else(|| not_in(who, group))?,
                Some(vc_id(who.person)),
            ),
            None => return Err(not_in(who, group)),
        };
        let epoch = g.epoch();
        let info = g.group_info(&svc(), true, true).map_err(group_err(who))?;
        self.net
            .publish_group_info(&client_id(who), as_vc.as_ref(), group, epoch, info)
    }

    /// The clients of `group` but one (the recipients of a message of one of them).
    fn others(&self, group: &str) -> usize {
        self.count_devices(group).saturating_sub(1)
    }

    /// `by` commits (with path) in `group`; everyone else processes it.
    pub(super) fn commit(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        by: Device,
    ) -> Result<(), DemoError> {
        let (size, before) = if self.is_virtual(by.person) {
            let e = emulator(&mut self.clients, by)?;
            let sequence = e.seen(group);
            let client = e.client(by)?;
            let before = client
                .group(group.as_bytes())
                .ok_or_else(|| not_in(by, group))?
                .epoch();
            let out = client
                .commit(&svc(), group.as_bytes(), vec![], NOW)
                .map_err(emu_err(by))?;
            let commit = out.commit.to_bytes()?;
            let size = commit.len();
            self.net.send(
                group,
                &client_id(by),
                SendRequest::commit(before, commit).as_virtual_client(vc_id(by.person), sequence),
            )?;
            emulator(&mut self.clients, by)?
                .client(by)?
                .confirm_commit(group.as_bytes())
                .map_err(emu_err(by))?;
            self.publish_group_info(by, group)?;
            (size, before)
        } else {
            let (sizes, before) =
                self.plain_commit(by, group, CommitOptions::new().with_path(), vec![])?;
            (sizes.commit, before)
        };
        let seen = self.deliver()?;
        let recipients = self.expect_all(&seen, group, by, |e| *e == Event::Commit, "a commit")?;
        log.step(format_args!(
            "{by} commits in group '{group}' (epoch {before} -> {}), {size} bytes, processed by {}",
            before + 1,
            plural(recipients, "client", "clients")
        ));
        Ok(())
    }

    /// Every client of `group` but `by` saw exactly one event of this group, and it `is` what
    /// was expected. Returns how many clients.
    fn expect_all(
        &self,
        seen: &[Seen],
        group: &str,
        by: Device,
        is: impl Fn(&Event) -> bool,
        expected: &'static str,
    ) -> Result<usize, DemoError> {
        let mut count = 0;
        for s in seen {
            if s.event == Event::Echo {
                continue;
            }
            if s.group != group || s.who == by || !is(&s.event) {
                return Err(unexpected(s.who, &s.group, expected));
            }
            count += 1;
        }
        if count != self.others(group) {
            return Err(unexpected(by, group, "every other client to process it"));
        }
        Ok(count)
    }

    /// `by` sends an application message in `group`; everyone else reads it.
    pub(super) fn message(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        by: Device,
    ) -> Result<(), DemoError> {
        let text = application_text(by, group);
        let size = if self.is_virtual(by.person) {
            let e = emulator(&mut self.clients, by)?;
            let sequence = e.seen(group);
            let client = e.client(by)?;
            let message = client
                .send_application(&svc(), group.as_bytes(), &text)
                .map_err(emu_err(by))?;
            let bytes = message.to_bytes()?;
            let size = bytes.len();
            self.net.send(
                group,
                &client_id(by),
                SendRequest::application(bytes).as_virtual_client(vc_id(by.person), sequence),
            )?;
            emulator(&mut self.clients, by)?
                .client(by)?
                .confirm_sent(&svc(), group.as_bytes(), &message)
                .map_err(emu_err(by))?;
            size
        } else {
            let bytes = plain_group(&mut self.clients, by, group)?
                .encrypt_application(&svc(), &text, &[])
                .map_err(group_err(by))?
                .to_bytes()?;
            let size = bytes.len();
            self.net
                .send(group, &client_id(by), SendRequest::application(bytes))?;
            size
        };
        let seen = self.deliver()?;
        let recipients = self.expect_all(
            &seen,
            group,
            by,
            |e| *e == Event::Application(text.clone()),
            "the application message sent",
        )?;
        log.step(format_args!(
            "{by} sends a message in group '{group}', {size} bytes, read by {}",
            plural(recipients, "client", "clients")
        ));
        Ok(())
    }

    /// `person` joins `group` by external commit from the GroupInfo the delivery service
    /// holds. Virtual client: [`EXTERNAL_JOINER`] announces `ExternalJoin` in an emulation
    /// commit, joins, and its siblings follow with the GroupInfo the service attaches. One
    /// leaf per device: each device joins by its own external commit.
    pub(super) fn external_join(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        person: Person,
    ) -> Result<(), DemoError> {
        if self.is_virtual(person) {
            self.virtual_external_join(log, group, dev(person, EXTERNAL_JOINER.n))?;
        } else {
            for n in 1..=person.devices() {
                self.plain_external_join(log, group, dev(person, n))?;
            }
        }
        if let Some(members) = self.members.get_mut(group) {
            members.insert(person);
        }
        Ok(())
    }

    fn virtual_external_join(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        joiner: Device,
    ) -> Result<(), DemoError> {
        let person = joiner.person;
        let joiner_id = client_id(joiner);
        // 1. The ExternalJoin action, in the SafeAAD of an emulation-group Commit.
        let client = emulator(&mut self.clients, joiner)?.client(joiner)?;
        let before = client.emulation_group().epoch();
        let out = client
            .announce_external_join(&svc(), group.as_bytes(), CommitOptions::new(), NOW)
            .map_err(emu_err(joiner))?;
        let commit = out.commit.to_bytes()?;
        let commit_size = commit.len();
        let recipients = self.send_emulation_commit(joiner, before, commit)?;
        log.step(format_args!(
            "{joiner} announces ExternalJoin for group '{group}' in an emulation commit (SafeAAD, epoch {before} -> {}), {commit_size} bytes, processed by {}",
            before + 1,
            plural(recipients, "other device", "other devices")
        ));
        self.emulation_agree(log, person)?;
        // 2. The external commit, from the service's GroupInfo, with derived secrets.
        let (epoch, info, info_size) = self.net.group_info(&joiner_id, group)?;
        let e = emulator(&mut self.clients, joiner)?;
        let sequence = e.seen(group);
        let client = e.client(joiner)?;
        let commit = client
            .join_by_external_commit(&svc(), &info, None, NOW)
            .map_err(emu_err(joiner))?;
        let new_info = client
            .group(group.as_bytes())
            .ok_or_else(|| not_in(joiner, group))?
            .group_info(&svc(), true, true)
            .map_err(group_err(joiner))?;
        let new_info = encode(MlsMessageBody::GroupInfo(new_info))?;
        let new_info_size = new_info.len();
        let commit = commit.to_bytes()?;
        let commit_size = commit.len();
        self.net.send(
            group,
            &joiner_id,
            SendRequest::external_commit(epoch, commit)
                .as_virtual_client(vc_id(person), sequence)
                .with_group_info(new_info),
        )?;
        let seen = self.deliver()?;
        let followers: Vec<Device> = seen
            .iter()
            .filter(|s| s.event == Event::FollowedExternalJoin)
            .map(|s| s.who)
            .collect();
        let processed = seen.iter().filter(|s| s.event == Event::Commit).count();
        log.step(format_args!(
            "{joiner} joins '{group}' by external commit as the virtual client '{}' (epoch {epoch} -> {}), built from the GroupInfo of epoch {epoch} fetched from the delivery service ({info_size} bytes) with derived secrets: commit {commit_size} bytes, the new GroupInfo {new_info_size} bytes published with it; processed by {}",
            person.name(),
            epoch + 1,
            plural(processed, "other member's client", "other members' clients"),
        ));
        for who in &followers {
            log.detail(format_args!(
                "{who} follows the external join of {joiner} into '{group}' with the GroupInfo the delivery service attached (leaf, UpdatePath and ExternalInit re-derived)"
            ));
        }
        let siblings = usize::from(person.devices()) - 1;
        let others = self.count_devices(group) - usize::from(person.devices());
        if followers.len() != siblings || processed != others {
            return Err(unexpected(
                joiner,
                group,
                "everyone to process the external commit",
            ));
        }
        Ok(())
    }

    fn plain_external_join(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        joiner: Device,
    ) -> Result<(), DemoError> {
        let id = client_id(joiner);
        let (epoch, info, info_size) = self.net.group_info(&id, group)?;
        let (joined, commit) = Group::join_by_external_commit(
            &svc(),
            GroupConfig::default(),
            &info,
            None,
            own_leaf(joiner.to_string())?,
            ExternalCommitOptions::default(),
            NOW,
        )
        .map_err(group_err(joiner))?;
        let new_info = encode(MlsMessageBody::GroupInfo(
            joined
                .group_info(&svc(), true, true)
                .map_err(group_err(joiner))?,
        ))?;
        let new_info_size = new_info.len();
        let commit = commit.to_bytes()?;
        let commit_size = commit.len();
        self.net.send(
            group,
            &id,
            SendRequest::external_commit(epoch, commit).with_group_info(new_info),
        )?;
        match self.clients.get_mut(&joiner) {
            Some(Client::Plain(p)) => {
                p.groups.insert(group.to_string(), joined);
            }
            _ => return Err(not_in(joiner, group)),
        }
        let seen = self.deliver()?;
        let recipients =
            self.expect_all(&seen, group, joiner, |e| *e == Event::Commit, "a commit")?;
        log.step(format_args!(
            "{joiner} joins '{group}' by its own external commit (epoch {epoch} -> {}), from the GroupInfo of epoch {epoch} ({info_size} bytes): commit {commit_size} bytes, the new GroupInfo {new_info_size} bytes published with it; processed by {}",
            epoch + 1,
            plural(recipients, "client", "clients")
        ));
        Ok(())
    }

    /// Compares the epoch authenticators of `group` at every client that holds it (and
    /// checks every device of its members holds it; emulator clients' leaves are consistent).
    pub(super) fn check(&mut self, log: &mut Log<'_>, group: &str) -> Result<(), DemoError> {
        let mut values = Vec::new();
        for (who, client) in &self.clients {
            match client {
                Client::Plain(p) => {
                    if let Some(g) = p.groups.get(group) {
                        values.push((*who, g.epoch_authenticator().to_vec()));
                    }
                }
                Client::Emulator(e) => {
                    let Some(c) = e.client.as_ref() else { continue };
                    let Some(g) = c.group(group.as_bytes()) else {
                        continue;
                    };
                    let consistent = c
                        .leaf_is_consistent(&svc(), group.as_bytes())
                        .map_err(emu_err(*who))?;
                    if !consistent {
                        return Err(DemoError::LeafInconsistent {
                            who: *who,
                            group: group.to_string(),
                        });
                    }
                    values.push((*who, g.epoch_authenticator().to_vec()));
                }
            }
        }
        for person in self.members.get(group).into_iter().flatten() {
            for n in 1..=person.devices() {
                let who = dev(*person, n);
                if !values.iter().any(|(w, _)| *w == who) {
                    return Err(not_in(who, group));
                }
            }
        }
        agree(group, log.step, &values)?;
        log.epoch_checks += 1;
        Ok(())
    }

    /// Carol's view of the tree of `group`.
    pub(super) fn tree(&mut self, group: &str) -> Result<TreeSize, DemoError> {
        Ok(tree_of(
            group,
            plain_group(&mut self.clients, CAROL, group)?,
        ))
    }

    /// What went through the delivery service (checked against its own counters).
    pub(super) fn traffic(&self) -> Result<(Traffic, DeliveryStats), DemoError> {
        self.net.totals()
    }
}

/// Sizes of what one commit sent.
#[derive(Debug, Default)]
struct Sizes {
    commit: usize,
    welcome: usize,
    group_info: usize,
}

fn join_sizes(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" + ")
}

fn event_of(processed: ProcessedMessage) -> Event {
    match processed {
        ProcessedMessage::Commit { .. } => Event::Commit,
        ProcessedMessage::Application { data, .. } => Event::Application(data),
        ProcessedMessage::Proposal { .. } => Event::Other,
    }
}

/// An emulator client handles one group message: drops its own echo (learning its virtual
/// client's sequence from it), processes emulation-group messages, follows a sibling's
/// external join with the GroupInfo the service attached, and processes anything else.
fn emulator_handles(
    e: &mut Emulator,
    who: Device,
    group: &str,
    message: &GroupMessage,
) -> Result<Event, DemoError> {
    let me = client_id(who);
    let mut attached = None;
    if let Some(view) = &message.emulator_view {
        let seen = e.vc_seen.entry(group.to_string()).or_default();
        *seen = (*seen).max(view.vc_sequence.0 + 1);
        if view.emulator == me {
            return Ok(Event::Echo);
        }
        attached = view.group_info.clone();
    }
    let client = e.client(who)?;
    if group == emulation_group(who.person) {
        if message.sender == me {
            return Ok(Event::Echo);
        }
        let processed = client
            .process_emulation(&svc(), &message.message, NOW)
            .map_err(emu_err(who))?;
        return Ok(match processed {
            ProcessedMessage::Commit { .. } => Event::EmulationCommit,
            other => event_of(other),
        });
    }
    if let (MessageKind::ExternalCommit { .. }, Some(info)) = (message.kind, attached) {
        let info =
            decode_group_info(&info)?.ok_or_else(|| unexpected(who, group, "a GroupInfo"))?;
        let commit = MlsMessage::decode(&message.message)?;
        client
            .follow_external_join(&svc(), &info, None, &commit, NOW)
            .map_err(emu_err(who))?;
        return Ok(Event::FollowedExternalJoin);
    }
    let processed = client
        .process(&svc(), group.as_bytes(), &message.message, NOW)
        .map_err(emu_err(who))?;
    Ok(event_of(processed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use delivery_service::ServiceError;

    /// A world with 'friends' created, after one check.
    fn friends(mode: Mode, log: &mut Log<'_>) -> World {
        let mut w = World::new(mode).unwrap();
        w.setup(log).unwrap();
        w.create_group(log, "friends", &[Person::Alice, Person::Bob], false)
            .unwrap();
        w.check(log, "friends").unwrap();
        w
    }

    #[test]
    fn a_client_left_behind_is_a_disagreement() {
        for mode in [Mode::VirtualClients, Mode::PerDevice] {
            let mut print = |_: &str| {};
            let mut log = Log {
                step: 0,
                epoch_checks: 0,
                print: &mut print,
            };
            let mut w = friends(mode, &mut log);
            // Carol merges a commit the service never carried: the others stay behind.
            let g = plain_group(&mut w.clients, CAROL, "friends").unwrap();
            g.commit(&svc(), CommitOptions::new().with_path(), NOW)
                .unwrap();
            g.merge_pending_commit().unwrap();
            let err = w.check(&mut log, "friends").unwrap_err();
            assert!(
                matches!(err, DemoError::Disagreement { ref group, .. } if group == "friends"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_missing_device_is_reported() {
        let mut print = |_: &str| {};
        let mut log = Log {
            step: 0,
            epoch_checks: 0,
            print: &mut print,
        };
        let mut w = friends(Mode::PerDevice, &mut log);
        if let Some(Client::Plain(p)) = w.clients.get_mut(&dev(Person::Bob, 2)) {
            p.groups.remove("friends");
        }
        let err = w.check(&mut log, "friends").unwrap_err();
        assert!(
            matches!(err, DemoError::NotInGroup { who, .. } if who == dev(Person::Bob, 2)),
            "{err}"
        );
    }

    #[test]
    fn the_service_refuses_an_emulator_that_has_not_seen_its_virtual_clients_messages() {
        let mut print = |_: &str| {};
        let mut log = Log {
            step: 0,
            epoch_checks: 0,
            print: &mut print,
        };
        let mut w = friends(Mode::VirtualClients, &mut log);
        w.message(&mut log, "friends", dev(Person::Alice, 1))
            .unwrap();
        // alice/device-3 forgets that it saw alice's first message: compare-and-append fails.
        emulator(&mut w.clients, dev(Person::Alice, 3))
            .unwrap()
            .vc_seen
            .insert("friends".into(), 0);
        let err = w
            .commit(&mut log, "friends", dev(Person::Alice, 3))
            .unwrap_err();
        assert!(
            matches!(
                err,
                DemoError::Delivery {
                    source: ServiceError::VirtualClientSequenceMismatch { .. },
                    ..
                }
            ),
            "{err}"
        );
        // The refusal is counted by the service, so the totals no longer match ours.
        assert!(matches!(
            w.traffic(),
            Err(DemoError::Accounting {
                what: "requests refused",
                ..
            })
        ));
    }
}
