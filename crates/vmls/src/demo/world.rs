//! The devices of one run and the scenario's steps, all through the device runtime
//! ([`Runtime`], `virtual_clients::runtime`) and the delivery service ([`Net`]). With
//! virtual clients, Alice's and Bob's devices are emulator clients; with one leaf per device
//! every device is a plain client like Carol. The choreography (echoes, log order, sequences,
//! confirmations, state transfers, ExternalJoin) is the runtime's; this file only states
//! intents, moves bytes, and reports.

use std::collections::{BTreeMap, BTreeSet};

use delivery_service::{ClientId, GroupId};
use mls_engine::crypto::{CipherSuite, RustCrypto};
use mls_engine::group::{Group, Services};
use virtual_clients::runtime::{Device as Runtime, DeviceConfig, Event, Intent};

use super::net::{Net, Record};
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

fn config() -> DeviceConfig {
    DeviceConfig::new(SUITE, NOW)
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

fn join_sizes(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" + ")
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

/// Which world a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Alice and Bob as virtual clients.
    VirtualClients,
    /// Every device its own member.
    PerDevice,
}

/// The first message of `group` of a kind among `records`: its size, Welcome and GroupInfo.
fn sent(
    records: &[Record],
    group: &str,
    commit: bool,
) -> Option<(usize, Option<usize>, Option<usize>)> {
    records.iter().find_map(|r| match r {
        Record::Sent {
            group: g,
            kind,
            size,
            welcome,
            group_info,
        } if g.as_bytes() == group.as_bytes() && kind.commit_epoch().is_some() == commit => {
            Some((*size, *welcome, *group_info))
        }
        _ => None,
    })
}

/// The devices of one run, on one delivery service.
pub(super) struct World {
    mode: Mode,
    net: Net,
    devices: BTreeMap<Device, Runtime>,
    /// Events of each device since the last step.
    events: BTreeMap<Device, Vec<Event>>,
    /// The persons in each higher-level group.
    members: BTreeMap<String, BTreeSet<Person>>,
    /// Per virtual client: the device that made its uploaded KeyPackages.
    uploaded_by: BTreeMap<Person, Device>,
}

impl World {
    /// Carol registered with a new delivery service.
    pub(super) fn new(mode: Mode) -> Result<Self, DemoError> {
        let mut world = Self {
            mode,
            net: Net::new(),
            devices: BTreeMap::new(),
            events: BTreeMap::new(),
            members: BTreeMap::new(),
            uploaded_by: BTreeMap::new(),
        };
        let carol = Runtime::new_plain(&CRYPTO, client_id(CAROL), config())
            .map_err(|source| runtime_err(CAROL, source))?;
        world.install(CAROL, carol)?;
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

    /// A new device: its setup requests go to the service.
    fn install(&mut self, who: Device, device: Runtime) -> Result<Vec<Record>, DemoError> {
        self.devices.insert(who, device);
        self.pump(who)
    }

    fn device(&mut self, who: Device) -> Result<&mut Runtime, DemoError> {
        self.devices
            .get_mut(&who)
            .ok_or_else(|| not_in(who, "the demo"))
    }

    /// Sends `who`'s requests and collects its events; a failure is an error.
    fn pump(&mut self, who: Device) -> Result<Vec<Record>, DemoError> {
        let device = self
            .devices
            .get_mut(&who)
            .ok_or_else(|| not_in(who, "the demo"))?;
        let records = self.net.pump(device, NOW)?;
        let events = self.events.entry(who).or_default();
        while let Some(event) = device.poll_event() {
            match &event {
                Event::IntentFailed { reason, .. } => {
                    return Err(DemoError::IntentFailed {
                        who,
                        reason: reason.clone(),
                    })
                }
                Event::NeedsResync { group_id, .. } | Event::Rejected { group_id, .. } => {
                    return Err(unexpected(
                        who,
                        &group_id.to_string(),
                        "to process every message",
                    ))
                }
                Event::Fatal { .. } => return Err(unexpected(who, "-", "to stay usable")),
                _ => {}
            }
            events.push(event);
        }
        Ok(records)
    }

    /// `who` carries out `intent`.
    fn run(&mut self, who: Device, intent: Intent) -> Result<Vec<Record>, DemoError> {
        self.device(who)?.intend(intent, NOW);
        self.pump(who)
    }

    /// Every device reads its mailbox (in a fixed order) until all are empty.
    fn deliver(&mut self) -> Result<(), DemoError> {
        loop {
            let mut any = false;
            let devices: Vec<Device> = self.devices.keys().copied().collect();
            for who in devices {
                if self.net.pending(&client_id(who)) > 0 {
                    any = true;
                    self.device(who)?.sync(NOW);
                    self.pump(who)?;
                }
            }
            if !any {
                return Ok(());
            }
        }
    }

    /// The events of every device since the last call.
    fn take_events(&mut self) -> BTreeMap<Device, Vec<Event>> {
        std::mem::take(&mut self.events)
    }

    /// The emulation epoch of a device.
    fn emulation_epoch(&self, who: Device) -> Option<u64> {
        self.devices
            .get(&who)?
            .emulator()
            .map(|c| c.emulation_group().epoch())
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
                let device = Runtime::new_plain(&CRYPTO, client_id(who), config())
                    .map_err(|source| runtime_err(who, source))?;
                self.install(who, device)?;
                let records = self.run(
                    who,
                    Intent::PublishKeyPackages {
                        count: count as u32,
                    },
                )?;
                let sizes = published(&records);
                log.step(format_args!(
                    "{who} publishes {} to the delivery service's directory, {} bytes",
                    plural(count, "KeyPackage", "KeyPackages"),
                    join_sizes(&sizes)
                ));
            }
        }
        self.take_events();
        Ok(())
    }

    /// The emulation group of `person`: device 1 creates it (a group on the delivery service
    /// like any other, its members the devices) and registers the virtual client; every other
    /// device publishes a KeyPackage, device 1 takes it from the directory and adds it.
    fn emulation_group(&mut self, log: &mut Log<'_>, person: Person) -> Result<(), DemoError> {
        let first = dev(person, 1);
        let group = emulation_group(person);
        self.net.emulation_groups.insert(GroupId::new(&group));
        let creator = Runtime::new_virtual_client(
            &CRYPTO,
            client_id(first),
            vc_id(person),
            GroupId::new(&group),
            config(),
        )
        .map_err(|source| runtime_err(first, source))?;
        self.install(first, creator)?;
        log.step(format_args!(
            "{first} creates the emulation group '{group}' and registers the virtual client '{}' with the delivery service",
            person.name()
        ));
        for n in 2..=person.devices() {
            let new = dev(person, n);
            self.net.emulation_key_packages.insert(client_id(new));
            let device = Runtime::new_joining_emulator(
                &CRYPTO,
                client_id(new),
                vc_id(person),
                GroupId::new(&group),
                config(),
            )
            .map_err(|source| runtime_err(new, source))?;
            self.install(new, device)?;
            let before = self.emulation_epoch(first).unwrap_or_default();
            let records = self.run(
                first,
                Intent::AddDevice {
                    device: client_id(new),
                },
            )?;
            self.deliver()?;
            let events = self.take_events();
            if !events.get(&new).is_some_and(|e| e.contains(&Event::Ready)) {
                return Err(unexpected(new, &group, "to join from the Welcome"));
            }
            let kp_size = records
                .iter()
                .find_map(|r| match r {
                    Record::Taken(size) => Some(*size),
                    _ => None,
                })
                .unwrap_or_default();
            let (commit, welcome, _) = sent(&records, &group, true)
                .ok_or_else(|| unexpected(first, &group, "a commit"))?;
            log.step(format_args!(
                "{first} adds {new} to the emulation group (epoch {before} -> {}): its KeyPackage {kp_size} bytes through the directory, commit {commit} bytes, Welcome {} bytes; {new} is now an emulator client of '{}'",
                before + 1,
                welcome.unwrap_or_default(),
                person.name()
            ));
            self.emulation_agree(log, person)?;
        }
        Ok(())
    }

    /// Every device of the virtual client `person` is in the same emulation epoch (epoch
    /// authenticator and epoch_id).
    fn emulation_agree(&mut self, log: &mut Log<'_>, person: Person) -> Result<(), DemoError> {
        let mut values = Vec::new();
        for (who, device) in &self.devices {
            if who.person != person {
                continue;
            }
            let c = device
                .emulator()
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
        agree(&emulation_group(person), log.step, &values)?;
        log.epoch_checks += 1;
        Ok(())
    }

    /// The siblings of `by` in the emulation epoch `by` is in.
    fn siblings_following(&self, by: Device) -> usize {
        let epoch = self.emulation_epoch(by);
        (1..=by.person.devices())
            .map(|n| dev(by.person, n))
            .filter(|d| *d != by && self.emulation_epoch(*d) == epoch)
            .count()
    }

    /// `maker` derives one KeyPackage of its virtual client per group it will be welcomed to,
    /// announces them with a `KeyPackageUpload` emulation commit (processed by its siblings),
    /// then publishes them to the directory as the virtual client.
    fn upload(&mut self, log: &mut Log<'_>, maker: Device) -> Result<(), DemoError> {
        let person = maker.person;
        let count = key_packages_needed(person);
        let before = self.emulation_epoch(maker).unwrap_or_default();
        let records = self.run(
            maker,
            Intent::PublishKeyPackages {
                count: count as u32,
            },
        )?;
        self.deliver()?;
        self.take_events();
        let group = emulation_group(person);
        let (commit_size, _, _) =
            sent(&records, &group, true).ok_or_else(|| unexpected(maker, &group, "a commit"))?;
        let recipients = self.siblings_following(maker);
        if recipients != usize::from(person.devices()) - 1 {
            return Err(unexpected(
                maker,
                &group,
                "every sibling to process the commit",
            ));
        }
        let sizes = published(&records);
        log.step(format_args!(
            "{maker} uploads {} of the virtual client '{}' through an emulation commit (KeyPackageUpload, epoch {before} -> {}), {commit_size} bytes, processed by {}; KeyPackages {} bytes published to the directory as '{}'",
            plural(sizes.len(), "KeyPackage", "KeyPackages"),
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
    /// device joins from the Welcome. Every Commit carries the GroupInfo of its new epoch; for
    /// a `public` group the log says so (external joiners fetch it).
    pub(super) fn create_group(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        persons: &[Person],
        public: bool,
    ) -> Result<(), DemoError> {
        let group_id = GroupId::new(group);
        self.run(
            CAROL,
            Intent::CreateGroup {
                group_id: group_id.clone(),
            },
        )?;
        let recipients: Vec<ClientId> = persons.iter().flat_map(|p| self.identities(*p)).collect();
        let records = self.run(
            CAROL,
            Intent::AddMembers {
                group_id,
                members: recipients.clone(),
            },
        )?;
        self.deliver()?;
        let events = self.take_events();
        let kp_bytes: usize = records
            .iter()
            .map(|r| match r {
                Record::Taken(size) => *size,
                _ => 0,
            })
            .sum();
        let (commit, welcome, group_info) =
            sent(&records, group, true).ok_or_else(|| unexpected(CAROL, group, "a commit"))?;
        let joined: Vec<Device> = events
            .iter()
            .filter(|(_, e)| {
                e.iter().any(
                    |e| matches!(e, Event::Joined { group_id, .. } if group_id.as_bytes() == group.as_bytes()),
                )
            })
            .map(|(who, _)| *who)
            .filter(|who| *who != CAROL)
            .collect();
        self.members.insert(
            group.to_string(),
            std::iter::once(Person::Carol)
                .chain(persons.iter().copied())
                .collect(),
        );
        let names: Vec<String> = recipients.iter().map(ClientId::to_string).collect();
        let published = if public {
            format!(
                ", GroupInfo {} bytes published for external joiners",
                group_info.unwrap_or_default()
            )
        } else {
            String::new()
        };
        log.step(format_args!(
            "carol creates group '{group}' and adds {} with {} from the directory ({kp_bytes} bytes) (epoch 0 -> 1): commit {commit} bytes, Welcome {} bytes to {}{published}",
            names.join(", "),
            plural(names.len(), "KeyPackage", "KeyPackages"),
            welcome.unwrap_or_default(),
            plural(joined.len(), "device", "devices"),
        ));
        for who in &joined {
            let how = match self.uploaded_by.get(&who.person) {
                _ if !self.is_virtual(who.person) => String::new(),
                Some(maker) if maker == who => {
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

    /// How many devices hold `group`.
    fn count_devices(&self, group: &str) -> usize {
        let g = GroupId::new(group);
        self.devices
            .values()
            .filter(|d| d.group(&g).is_some())
            .count()
    }

    /// The devices of `group` but one (the recipients of a message of one of them).
    fn others(&self, group: &str) -> usize {
        self.count_devices(group).saturating_sub(1)
    }

    /// How many devices but `by` report an event of `group` that `is` what is expected.
    fn count_events(
        events: &BTreeMap<Device, Vec<Event>>,
        by: Device,
        is: impl Fn(&Event) -> bool,
    ) -> usize {
        events
            .iter()
            .filter(|(who, e)| **who != by && e.iter().any(&is))
            .count()
    }

    fn epoch(&self, who: Device, group: &str) -> Result<u64, DemoError> {
        self.devices
            .get(&who)
            .and_then(|d| d.group(&GroupId::new(group)))
            .map(Group::epoch)
            .ok_or_else(|| not_in(who, group))
    }

    /// `by` commits (with path) in `group`; everyone else processes it.
    pub(super) fn commit(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        by: Device,
    ) -> Result<(), DemoError> {
        let before = self.epoch(by, group)?;
        let records = self.run(
            by,
            Intent::Update {
                group_id: GroupId::new(group),
            },
        )?;
        self.deliver()?;
        let events = self.take_events();
        let (size, _, _) =
            sent(&records, group, true).ok_or_else(|| unexpected(by, group, "a commit"))?;
        let recipients = Self::count_events(
            &events,
            by,
            |e| matches!(e, Event::GroupChanged { group_id, .. } if group_id.as_bytes() == group.as_bytes()),
        );
        if recipients != self.others(group) {
            return Err(unexpected(by, group, "every other client to process it"));
        }
        log.step(format_args!(
            "{by} commits in group '{group}' (epoch {before} -> {}), {size} bytes, processed by {}",
            before + 1,
            plural(recipients, "client", "clients")
        ));
        Ok(())
    }

    /// `by` sends an application message in `group`; everyone else reads it.
    pub(super) fn message(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        by: Device,
    ) -> Result<(), DemoError> {
        let text = application_text(by, group);
        let records = self.run(
            by,
            Intent::Send {
                group_id: GroupId::new(group),
                data: text.clone(),
            },
        )?;
        self.deliver()?;
        let events = self.take_events();
        let (size, _, _) = sent(&records, group, false)
            .ok_or_else(|| unexpected(by, group, "an application message"))?;
        let recipients = Self::count_events(
            &events,
            by,
            |e| matches!(e, Event::MessageReceived { data, .. } if *data == text),
        );
        if recipients != self.others(group) {
            return Err(unexpected(by, group, "the application message sent"));
        }
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
        let before = self.emulation_epoch(joiner).unwrap_or_default();
        let records = self.run(
            joiner,
            Intent::JoinExternally {
                group_id: GroupId::new(group),
            },
        )?;
        self.deliver()?;
        let events = self.take_events();
        // 1. The ExternalJoin action, in the SafeAAD of an emulation-group Commit.
        let emulation = emulation_group(person);
        let (announce, _, _) = sent(&records, &emulation, true)
            .ok_or_else(|| unexpected(joiner, &emulation, "a commit"))?;
        let recipients = self.siblings_following(joiner);
        log.step(format_args!(
            "{joiner} announces ExternalJoin for group '{group}' in an emulation commit (SafeAAD, epoch {before} -> {}), {announce} bytes, processed by {}",
            before + 1,
            plural(recipients, "other device", "other devices")
        ));
        self.emulation_agree(log, person)?;
        // 2. The external commit, from the service's GroupInfo, with derived secrets.
        let (epoch, info_size) =
            fetched(&records).ok_or_else(|| unexpected(joiner, group, "a GroupInfo"))?;
        let (commit_size, _, new_info) =
            sent(&records, group, true).ok_or_else(|| unexpected(joiner, group, "a commit"))?;
        let followers: Vec<Device> = events
            .iter()
            .filter(|(who, e)| {
                **who != joiner
                    && e.iter().any(|e| matches!(e, Event::Joined { group_id, .. } if group_id.as_bytes() == group.as_bytes()))
            })
            .map(|(who, _)| *who)
            .collect();
        let processed = Self::count_events(
            &events,
            joiner,
            |e| matches!(e, Event::GroupChanged { group_id, .. } if group_id.as_bytes() == group.as_bytes()),
        );
        log.step(format_args!(
            "{joiner} joins '{group}' by external commit as the virtual client '{}' (epoch {epoch} -> {}), built from the GroupInfo of epoch {epoch} fetched from the delivery service ({info_size} bytes) with derived secrets: commit {commit_size} bytes, the new GroupInfo {} bytes published with it; processed by {}",
            person.name(),
            epoch + 1,
            new_info.unwrap_or_default(),
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
        let records = self.run(
            joiner,
            Intent::JoinExternally {
                group_id: GroupId::new(group),
            },
        )?;
        self.deliver()?;
        let events = self.take_events();
        let (epoch, info_size) =
            fetched(&records).ok_or_else(|| unexpected(joiner, group, "a GroupInfo"))?;
        let (commit_size, _, new_info) =
            sent(&records, group, true).ok_or_else(|| unexpected(joiner, group, "a commit"))?;
        let recipients = Self::count_events(
            &events,
            joiner,
            |e| matches!(e, Event::GroupChanged { group_id, .. } if group_id.as_bytes() == group.as_bytes()),
        );
        if recipients != self.others(group) {
            return Err(unexpected(joiner, group, "a commit"));
        }
        log.step(format_args!(
            "{joiner} joins '{group}' by its own external commit (epoch {epoch} -> {}), from the GroupInfo of epoch {epoch} ({info_size} bytes): commit {commit_size} bytes, the new GroupInfo {} bytes published with it; processed by {}",
            epoch + 1,
            new_info.unwrap_or_default(),
            plural(recipients, "client", "clients")
        ));
        Ok(())
    }

    /// Compares the epoch authenticators of `group` at every device that holds it (and
    /// checks every device of its members holds it; emulator clients' leaves are consistent).
    pub(super) fn check(&mut self, log: &mut Log<'_>, group: &str) -> Result<(), DemoError> {
        let g = GroupId::new(group);
        let services = Services::new(&CRYPTO);
        let mut values = Vec::new();
        for (who, device) in &self.devices {
            let Some(state) = device.group(&g) else {
                continue;
            };
            if let Some(c) = device.emulator() {
                let consistent = c
                    .leaf_is_consistent(&services, group.as_bytes())
                    .map_err(|source| DemoError::Emulator { who: *who, source })?;
                if !consistent {
                    return Err(DemoError::LeafInconsistent {
                        who: *who,
                        group: group.to_string(),
                    });
                }
            }
            values.push((*who, state.epoch_authenticator().to_vec()));
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
        let g = GroupId::new(group);
        let state = self
            .devices
            .get(&CAROL)
            .and_then(|d| d.group(&g))
            .ok_or_else(|| not_in(CAROL, group))?;
        Ok(tree_of(group, state))
    }

    /// What went through the delivery service (checked against its own counters).
    pub(super) fn traffic(&self) -> Result<(Traffic, DeliveryStats), DemoError> {
        self.net.totals()
    }
}

fn runtime_err(who: Device, source: virtual_clients::runtime::RuntimeError) -> DemoError {
    DemoError::Runtime {
        who: who.to_string(),
        source,
    }
}

/// The sizes of the KeyPackages published.
fn published(records: &[Record]) -> Vec<usize> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Published(sizes) => Some(sizes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The epoch and size of the GroupInfo fetched.
fn fetched(records: &[Record]) -> Option<(u64, usize)> {
    records.iter().find_map(|r| match r {
        Record::Fetched { epoch, size } => Some((*epoch, *size)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet_log(print: &mut dyn FnMut(&str)) -> Log<'_> {
        Log {
            step: 0,
            epoch_checks: 0,
            print,
        }
    }

    #[test]
    fn a_missing_device_is_reported() {
        let mut print = |_: &str| {};
        let mut log = quiet_log(&mut print);
        let mut w = World::new(Mode::PerDevice).unwrap();
        w.setup(&mut log).unwrap();
        w.create_group(&mut log, "friends", &[Person::Alice, Person::Bob], false)
            .unwrap();
        w.check(&mut log, "friends").unwrap();
        w.devices.remove(&dev(Person::Bob, 2));
        let err = w.check(&mut log, "friends").unwrap_err();
        assert!(
            matches!(err, DemoError::NotInGroup { who, .. } if who == dev(Person::Bob, 2)),
            "{err}"
        );
    }

    #[test]
    fn every_device_reads_every_message_of_a_virtual_client() {
        let mut print = |_: &str| {};
        let mut log = quiet_log(&mut print);
        let mut w = World::new(Mode::VirtualClients).unwrap();
        w.setup(&mut log).unwrap();
        w.create_group(&mut log, "friends", &[Person::Alice, Person::Bob], false)
            .unwrap();
        w.message(&mut log, "friends", dev(Person::Alice, 3))
            .unwrap();
        w.commit(&mut log, "friends", dev(Person::Bob, 1)).unwrap();
        w.check(&mut log, "friends").unwrap();
        // Alice's other devices read her own message from device 3, as everyone else does.
        assert_eq!(w.others("friends"), 5);
    }
}
