//! `vmls demo`: one process runs a scenario of virtual clients (draft-kohbrok-mls-virtual-
//! clients-04) and prints, step by step, what happens; then the same scenario with one leaf
//! per device, and a summary table of the two side by side.
//!
//! The scenario (sans-IO, deterministic order, one fixed `now`): Alice with 3 devices as one
//! virtual client, Bob with 2, Carol a plain client, in 2 higher-level groups created by
//! Carol. Each virtual client publishes its KeyPackages (one per higher-level group) with the
//! draft's `KeyPackageUpload` action: one of its devices makes them and announces their
//! `KeyPackageRef`s in the SafeAAD of one emulation-group Commit, which its other devices
//! process. Every device then joins from the one Welcome by `KeyPackageRef`
//! (`join_from_welcome_by_ref`), also those that did not make the KeyPackage: they never see
//! it. Then commits by different devices; an application message from every device, read by
//! everyone. After every step the epoch authenticators of all clients are compared; the demo
//! stops with [`DemoError::Disagreement`] if they ever differ.
//!
//! Delivery is an in-process fan-out in a fixed order: every message goes to every other
//! client of the group (all devices of a virtual client included). Bytes are counted as
//! "sent" (message size, once) and "received" (message size × recipients). A KeyPackage is
//! received only by the adder (Carol), in both runs; with virtual clients, the devices that
//! did not make it learn of it through the upload Commit, counted in the emulation-group row.
//!
//! Not in this first cut: the external join with the `ExternalJoin` action (not built yet;
//! one output line says so), and the §5.1 delivery service (`InMemoryDeliveryService`).

use std::collections::BTreeMap;
use std::fmt;

use mls_engine::codec::{
    CodecError, Credential, KeyPackage, Lifetime, MlsMessage, MlsMessageBody, Proposal,
};
use mls_engine::crypto::{CipherSuite, CryptoError, CryptoProvider as _, RustCrypto};
use mls_engine::group::{
    CommitOptions, Group, GroupConfig, GroupError, OwnLeaf, ProcessedMessage, Services,
};
use mls_engine::messages::{
    CreationError, HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams,
};
use virtual_clients::emulator::{EmulatorClient, EmulatorError};

static CRYPTO: RustCrypto = RustCrypto;

/// The fixed time of the whole scenario (seconds since the epoch).
const NOW: u64 = 1_700_000_000;

/// The cipher suite of every group.
const SUITE: CipherSuite = CipherSuite(1);

/// The higher-level groups; the i-th uses the i-th KeyPackage each virtual client uploaded.
const GROUPS: [&str; 2] = ["friends", "work"];

/// The device of each virtual client that makes and uploads its KeyPackages.
const UPLOADERS: [(Person, u8); 2] = [(Person::Alice, 2), (Person::Bob, 1)];

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// An emulator client refused an operation or message.
    #[error("emulator client {who}: {source}")]
    Emulator {
        /// The device.
        who: Device,
        /// The error.
        source: EmulatorError,
    },
    /// A plain client refused an operation or message.
    #[error("client {who}: {source}")]
    Group {
        /// The client.
        who: Device,
        /// The error.
        source: GroupError,
    },
    /// A message could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The cipher suite is not available.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A KeyPackage could not be built.
    #[error(transparent)]
    Creation(#[from] CreationError),
    /// Two clients disagree on the epoch authenticator of a group.
    #[error("epoch authenticators differ in group '{group}' after step {step}: {first} has {first_value}, {other} has {other_value}")]
    Disagreement {
        /// The group (`emulation:<name>` for an emulation group).
        group: String,
        /// The step after which they were compared.
        step: usize,
        /// The client compared with.
        first: Device,
        /// Its epoch authenticator, hex.
        first_value: String,
        /// The client that differs.
        other: Device,
        /// Its epoch authenticator, hex.
        other_value: String,
    },
    /// An emulator client's leaf secrets are not those of its leaf in the tree.
    #[error("{who}: its leaf secrets in group '{group}' are not those of its leaf in the tree")]
    LeafInconsistent {
        /// The device.
        who: Device,
        /// The group.
        group: String,
    },
    /// A client got something else than what was sent.
    #[error("{who} expected {expected} in group '{group}'")]
    Unexpected {
        /// The client.
        who: Device,
        /// The group.
        group: String,
        /// What it expected.
        expected: &'static str,
    },
    /// A client is not in a group it should be in.
    #[error("{who} is not in group '{group}'")]
    NotInGroup {
        /// The client.
        who: Device,
        /// The group.
        group: String,
    },
}

/// A person of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Person {
    /// Alice, 3 devices.
    Alice,
    /// Bob, 2 devices.
    Bob,
    /// Carol, a plain client.
    Carol,
}

impl Person {
    fn name(self) -> &'static str {
        match self {
            Person::Alice => "alice",
            Person::Bob => "bob",
            Person::Carol => "carol",
        }
    }

    fn devices(self) -> u8 {
        match self {
            Person::Alice => 3,
            Person::Bob => 2,
            Person::Carol => 1,
        }
    }
}

/// One device (Carol's only client is `carol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Device {
    /// Whose.
    pub person: Person,
    /// 1-based.
    pub n: u8,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.person {
            Person::Carol => f.write_str("carol"),
            p => write!(f, "{}/device-{}", p.name(), self.n),
        }
    }
}

fn dev(person: Person, n: u8) -> Device {
    Device { person, n }
}

const CAROL: Device = Device {
    person: Person::Carol,
    n: 1,
};

/// Every device of the scenario, in delivery order.
fn all_devices() -> Vec<Device> {
    [Person::Alice, Person::Bob, Person::Carol]
        .into_iter()
        .flat_map(|p| (1..=p.devices()).map(move |n| dev(p, n)))
        .collect()
}

/// Messages of one kind: how many, bytes sent, bytes received (size × recipients).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Messages sent.
    pub messages: u64,
    /// Bytes sent (each message once).
    pub sent: u64,
    /// Bytes received (each message × its recipients).
    pub received: u64,
}

impl Counter {
    fn add(&mut self, size: usize, recipients: usize) {
        self.messages += 1;
        self.sent += size as u64;
        self.received += (size * recipients) as u64;
    }
}

/// The traffic of one run, by kind of message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// KeyPackages (each received by the adder only; a virtual client's other devices learn
    /// of it through the upload Commit, counted under `emulation`).
    pub key_packages: Counter,
    /// Welcomes.
    pub welcomes: Counter,
    /// Commits in higher-level groups.
    pub commits: Counter,
    /// Application messages.
    pub application: Counter,
    /// Emulation groups (KeyPackages, commits and Welcomes of devices joining them, and the
    /// `KeyPackageUpload` commits).
    pub emulation: Counter,
}

impl Traffic {
    fn kinds(&self) -> [(&'static str, Counter); 5] {
        [
            ("KeyPackages", self.key_packages),
            ("Welcomes", self.welcomes),
            ("commits", self.commits),
            ("application messages", self.application),
            ("emulation groups", self.emulation),
        ]
    }

    /// The sum over all kinds.
    pub fn total(&self) -> Counter {
        self.kinds()
            .iter()
            .fold(Counter::default(), |acc, (_, c)| Counter {
                messages: acc.messages + c.messages,
                sent: acc.sent + c.sent,
                received: acc.received + c.received,
            })
    }
}

/// The tree of one higher-level group at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSize {
    /// The group.
    pub group: String,
    /// Non-blank leaves (members).
    pub members: u32,
    /// All leaves.
    pub leaves: u32,
    /// Blank leaves.
    pub blank_leaves: u32,
}

/// The outcome of one run of the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Steps taken.
    pub steps: usize,
    /// Comparisons of epoch authenticators across all clients of a group (all equal, or the
    /// run would have stopped).
    pub epoch_checks: usize,
    /// The trees of the higher-level groups.
    pub trees: Vec<TreeSize>,
    /// The traffic.
    pub traffic: Traffic,
}

/// The outcome of the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// With virtual clients.
    pub virtual_clients: RunSummary,
    /// With one leaf per device.
    pub per_device: RunSummary,
    /// Whether every comparison of epoch authenticators agreed (always true when the demo
    /// returns a summary).
    pub all_epoch_authenticators_agreed: bool,
}

/// Step counter, printer and traffic of one run.
struct Log<'p> {
    step: usize,
    epoch_checks: usize,
    traffic: Traffic,
    print: &'p mut dyn FnMut(&str),
}

impl Log<'_> {
    fn step(&mut self, text: fmt::Arguments<'_>) {
        self.step += 1;
        let line = format!("step {}: {text}", self.step);
        (self.print)(&line);
    }
}

fn svc() -> Services<'static> {
    Services::new(&CRYPTO)
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 3600 * 24 * 90,
    }
}

fn encode(body: MlsMessageBody) -> Result<Vec<u8>, CodecError> {
    MlsMessage::new(body).to_bytes()
}

fn own_leaf(name: String) -> Result<OwnLeaf, DemoError> {
    Ok(OwnLeaf {
        params: LeafNodeParams::new(SUITE, Credential::basic(name.into_bytes())),
        encryption_key: HpkeKeySource::Generate,
        signature_key: CRYPTO.suite(SUITE)?.signature_generate_key_pair()?,
    })
}

/// A fresh ordinary KeyPackage for `who` and its signature key.
/// A device's KeyPackage for its emulation group (its leaf supports the emulation group's
/// `app_data_dictionary`, i.e. SafeAAD).
fn emulator_key_package(
    who: Device,
) -> Result<(KeyPackageBundle, mls_engine::crypto::SignatureKeyPair), DemoError> {
    let suite = CRYPTO.suite(SUITE)?;
    let key = suite.signature_generate_key_pair()?;
    let credential = Credential::basic(who.to_string().into_bytes());
    let bundle = KeyPackageParams::new(SUITE, credential.clone(), lifetime())
        .with_leaf(EmulatorClient::emulation_leaf_params(SUITE, credential))
        .build_fresh(suite, &key)?;
    Ok((bundle, key))
}

fn plain_key_package(
    who: Device,
) -> Result<(KeyPackageBundle, mls_engine::crypto::SignatureKeyPair), DemoError> {
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

fn carol_creates(group: &str) -> Result<Group, DemoError> {
    Group::create(
        &svc(),
        GroupConfig::default(),
        group.as_bytes().to_vec(),
        SUITE,
        own_leaf(CAROL.to_string())?,
        lifetime(),
        vec![],
    )
    .map_err(|source| DemoError::Group { who: CAROL, source })
}

fn application_text(by: Device, group: &str) -> Vec<u8> {
    format!("hello from {by} in '{group}'").into_bytes()
}

fn expect_application(
    who: Device,
    group: &str,
    processed: ProcessedMessage,
    text: &[u8],
) -> Result<(), DemoError> {
    match processed {
        ProcessedMessage::Application { data, .. } if data == text => Ok(()),
        _ => Err(DemoError::Unexpected {
            who,
            group: group.to_string(),
            expected: "the application message sent",
        }),
    }
}

fn expect_commit(who: Device, group: &str, processed: &ProcessedMessage) -> Result<(), DemoError> {
    match processed {
        ProcessedMessage::Commit { .. } => Ok(()),
        _ => Err(DemoError::Unexpected {
            who,
            group: group.to_string(),
            expected: "a commit",
        }),
    }
}

/// Compares the epoch authenticators `values` (client, value) of `group`.
fn agree(group: &str, step: usize, values: &[(Device, Vec<u8>)]) -> Result<(), DemoError> {
    let Some((first, first_value)) = values.first() else {
        return Ok(());
    };
    for (other, other_value) in values.iter().skip(1) {
        if other_value != first_value {
            return Err(DemoError::Disagreement {
                group: group.to_string(),
                step,
                first: *first,
                first_value: hex::encode(first_value),
                other: *other,
                other_value: hex::encode(other_value),
            });
        }
    }
    Ok(())
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

/// One way of running the scenario.
trait World {
    /// Before any group: emulation groups and the `KeyPackageUpload` commits (virtual
    /// clients) or nothing.
    fn setup(&mut self, log: &mut Log<'_>) -> Result<(), DemoError>;
    /// Carol creates `group` (the `index`-th) and adds Alice and Bob with their KeyPackages
    /// (for virtual clients, the `index`-th uploaded); every device joins from the Welcome.
    fn create_group(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        index: usize,
    ) -> Result<(), DemoError>;
    /// `by` commits (with path) in `group`; everyone else processes it.
    fn commit(&mut self, log: &mut Log<'_>, group: &str, by: Device) -> Result<(), DemoError>;
    /// `by` sends an application message in `group`; everyone else reads it.
    fn message(&mut self, log: &mut Log<'_>, group: &str, by: Device) -> Result<(), DemoError>;
    /// The epoch authenticators of `group` at every client.
    fn authenticators(&self, group: &str) -> Result<Vec<(Device, Vec<u8>)>, DemoError>;
    /// Carol's view of the tree of `group`.
    fn tree(&self, group: &str) -> Result<TreeSize, DemoError>;
}

fn check(world: &dyn World, log: &mut Log<'_>, group: &str) -> Result<(), DemoError> {
    agree(group, log.step, &world.authenticators(group)?)?;
    log.epoch_checks += 1;
    Ok(())
}

/// The scenario, the same for both worlds.
fn scenario(world: &mut dyn World, log: &mut Log<'_>) -> Result<(), DemoError> {
    world.setup(log)?;
    for (index, group) in GROUPS.into_iter().enumerate() {
        world.create_group(log, group, index)?;
        check(world, log, group)?;
    }
    let alice = |n| dev(Person::Alice, n);
    let bob = |n| dev(Person::Bob, n);
    let commits = [
        ("friends", alice(3)),
        ("friends", bob(2)),
        ("work", alice(1)),
        ("friends", CAROL),
        ("work", bob(1)),
        ("friends", alice(1)),
    ];
    for (group, by) in commits {
        world.commit(log, group, by)?;
        check(world, log, group)?;
    }
    for group in GROUPS {
        for by in all_devices() {
            world.message(log, group, by)?;
            check(world, log, group)?;
        }
    }
    for (group, by) in [("work", alice(2)), ("friends", bob(1)), ("work", CAROL)] {
        world.commit(log, group, by)?;
        check(world, log, group)?;
    }
    Ok(())
}

/// Alice and Bob as virtual clients (one `EmulatorClient` per device), Carol plain.
struct VirtualWorld {
    alice: Vec<EmulatorClient>,
    bob: Vec<EmulatorClient>,
    carol: BTreeMap<String, Group>,
    /// The KeyPackages each virtual client uploaded, with the device that made them.
    uploaded: BTreeMap<Person, (Device, Vec<KeyPackage>)>,
}

impl VirtualWorld {
    fn devices(&mut self, person: Person) -> &mut Vec<EmulatorClient> {
        match person {
            Person::Bob => &mut self.bob,
            _ => &mut self.alice,
        }
    }

    fn emulators(&self) -> impl Iterator<Item = (Device, &EmulatorClient)> + '_ {
        let a = self
            .alice
            .iter()
            .enumerate()
            .map(|(i, e)| (dev(Person::Alice, i as u8 + 1), e));
        let b = self
            .bob
            .iter()
            .enumerate()
            .map(|(i, e)| (dev(Person::Bob, i as u8 + 1), e));
        a.chain(b)
    }

    fn emulators_mut(&mut self) -> impl Iterator<Item = (Device, &mut EmulatorClient)> + '_ {
        let a = self
            .alice
            .iter_mut()
            .enumerate()
            .map(|(i, e)| (dev(Person::Alice, i as u8 + 1), e));
        let b = self
            .bob
            .iter_mut()
            .enumerate()
            .map(|(i, e)| (dev(Person::Bob, i as u8 + 1), e));
        a.chain(b)
    }

    fn carol(&mut self, group: &str) -> Result<&mut Group, DemoError> {
        self.carol
            .get_mut(group)
            .ok_or_else(|| DemoError::NotInGroup {
                who: CAROL,
                group: group.to_string(),
            })
    }

    fn emulator(&mut self, who: Device) -> Result<&mut EmulatorClient, DemoError> {
        let i = usize::from(who.n).saturating_sub(1);
        self.devices(who.person)
            .get_mut(i)
            .ok_or(DemoError::NotInGroup {
                who,
                group: "emulation".to_string(),
            })
    }

    /// The emulation group of `person`: device 1 creates it and adds the others one by one.
    fn emulation_group(&mut self, log: &mut Log<'_>, person: Person) -> Result<(), DemoError> {
        let first = dev(person, 1);
        let e = |who: Device| move |source| DemoError::Emulator { who, source };
        let credential = Credential::basic(person.name().as_bytes().to_vec());
        let creator = EmulatorClient::create(
            &svc(),
            format!("{}-emulation", person.name()).into_bytes(),
            SUITE,
            own_leaf(first.to_string())?,
            lifetime(),
            credential.clone(),
        )
        .map_err(e(first))?;
        log.step(format_args!(
            "{first} creates the emulation group of the virtual client '{}'",
            person.name()
        ));
        self.devices(person).push(creator);
        for n in 2..=person.devices() {
            let new = dev(person, n);
            let (bundle, key) = emulator_key_package(new)?;
            let kp_size = encode(MlsMessageBody::KeyPackage(bundle.key_package.clone()))?.len();
            log.traffic.emulation.add(kp_size, 1);
            let devices = self.devices(person);
            let Some(adder) = devices.first_mut() else {
                return Err(DemoError::NotInGroup {
                    who: first,
                    group: "emulation".to_string(),
                });
            };
            let before = adder.emulation_group().epoch();
            let out = adder
                .add_emulator(&svc(), bundle.key_package.clone(), NOW)
                .map_err(e(first))?;
            adder.confirm_emulation_commit(&svc()).map_err(e(first))?;
            let commit = out.commit.to_bytes()?;
            let Some(welcome) = out.welcome else {
                return Err(DemoError::Unexpected {
                    who: first,
                    group: "emulation".to_string(),
                    expected: "a Welcome",
                });
            };
            let welcome_size = encode(MlsMessageBody::Welcome(welcome.clone()))?.len();
            for (i, other) in devices.iter_mut().enumerate().skip(1) {
                other
                    .process_emulation(&svc(), &commit, NOW)
                    .map_err(e(dev(person, i as u8 + 1)))?;
            }
            log.traffic.emulation.add(commit.len(), devices.len() - 1);
            log.traffic.emulation.add(welcome_size, 1);
            let joined =
                EmulatorClient::join(&svc(), &welcome, &bundle, key, credential.clone(), NOW)
                    .map_err(e(new))?;
            devices.push(joined);
            log.step(format_args!(
                "{first} adds {new} to the emulation group (epoch {before} -> {}): KeyPackage {kp_size} bytes, commit {} bytes, Welcome {welcome_size} bytes",
                before + 1,
                commit.len()
            ));
            self.emulation_agree(log, person)?;
        }
        Ok(())
    }

    /// Every device of the virtual client `person` is in the same emulation epoch.
    fn emulation_agree(&mut self, log: &mut Log<'_>, person: Person) -> Result<(), DemoError> {
        let values: Vec<(Device, Vec<u8>)> = self
            .devices(person)
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut v = c.emulation_group().epoch_authenticator().to_vec();
                v.extend(
                    c.epoch_ids()
                        .last()
                        .map(|id| id.to_vec())
                        .unwrap_or_default(),
                );
                (dev(person, i as u8 + 1), v)
            })
            .collect();
        agree(&format!("emulation:{}", person.name()), log.step, &values)?;
        log.epoch_checks += 1;
        Ok(())
    }

    /// `maker` makes one KeyPackage of its virtual client per higher-level group and uploads
    /// them with a `KeyPackageUpload` emulation commit, which its other devices process.
    fn upload(&mut self, log: &mut Log<'_>, maker: Device) -> Result<(), DemoError> {
        let person = maker.person;
        let e = |who: Device| move |source| DemoError::Emulator { who, source };
        let sender = self.emulator(maker)?;
        let before = sender.emulation_group().epoch();
        let (out, kps) = sender
            .publish_key_packages(
                &svc(),
                SUITE,
                lifetime(),
                GROUPS.len(),
                CommitOptions::new(),
                NOW,
            )
            .map_err(e(maker))?;
        sender.confirm_emulation_commit(&svc()).map_err(e(maker))?;
        let commit = out.commit.to_bytes()?;
        let mut recipients = 0;
        for (i, other) in self.devices(person).iter_mut().enumerate() {
            let who = dev(person, i as u8 + 1);
            if who != maker {
                let processed = other
                    .process_emulation(&svc(), &commit, NOW)
                    .map_err(e(who))?;
                expect_commit(who, &format!("emulation:{}", person.name()), &processed)?;
                recipients += 1;
            }
        }
        log.traffic.emulation.add(commit.len(), recipients);
        let mut sizes = Vec::new();
        for kp in &kps {
            let size = encode(MlsMessageBody::KeyPackage(kp.clone()))?.len();
            // Received by the adder only: the other devices join by KeyPackageRef.
            log.traffic.key_packages.add(size, 1);
            sizes.push(size.to_string());
        }
        log.step(format_args!(
            "{maker} uploads {} KeyPackages of the virtual client '{}' through an emulation commit (KeyPackageUpload, epoch {before} -> {}), {} bytes, processed by {recipients} other device{}; KeyPackages {} bytes",
            kps.len(),
            person.name(),
            before + 1,
            commit.len(),
            if recipients == 1 { "" } else { "s" },
            sizes.join(" + ")
        ));
        self.emulation_agree(log, person)?;
        self.uploaded.insert(person, (maker, kps));
        Ok(())
    }
}

impl World for VirtualWorld {
    fn setup(&mut self, log: &mut Log<'_>) -> Result<(), DemoError> {
        self.emulation_group(log, Person::Alice)?;
        self.emulation_group(log, Person::Bob)?;
        for (person, n) in UPLOADERS {
            self.upload(log, dev(person, n))?;
        }
        Ok(())
    }

    fn create_group(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        index: usize,
    ) -> Result<(), DemoError> {
        let mut kps = Vec::new();
        for (person, _) in UPLOADERS {
            let (maker, kp) = self
                .uploaded
                .get(&person)
                .and_then(|(maker, kps)| Some((*maker, kps.get(index)?.clone())))
                .ok_or(DemoError::Unexpected {
                    who: dev(person, 1),
                    group: group.to_string(),
                    expected: "an uploaded KeyPackage",
                })?;
            kps.push((maker, kp));
        }
        let mut carol = carol_creates(group)?;
        let mut options = CommitOptions::new();
        for (_, kp) in &kps {
            options = options.proposal(Proposal::add(kp.clone()));
        }
        let g = |source| DemoError::Group { who: CAROL, source };
        let out = carol.commit(&svc(), options, NOW).map_err(g)?;
        carol.merge_pending_commit().map_err(g)?;
        let commit = out.commit.to_bytes()?;
        let Some(welcome) = out.welcome else {
            return Err(DemoError::Unexpected {
                who: CAROL,
                group: group.to_string(),
                expected: "a Welcome",
            });
        };
        let welcome_size = encode(MlsMessageBody::Welcome(welcome.clone()))?.len();
        let joiners = self.alice.len() + self.bob.len();
        log.traffic.commits.add(commit.len(), 0);
        log.traffic.welcomes.add(welcome_size, joiners);
        log.step(format_args!(
            "carol creates group '{group}' and adds alice and bob (epoch 0 -> 1): commit {} bytes, Welcome {welcome_size} bytes to {joiners} devices",
            commit.len()
        ));
        self.carol.insert(group.to_string(), carol);
        for (maker, _) in &kps {
            for n in 1..=maker.person.devices() {
                let who = dev(maker.person, n);
                self.emulator(who)?
                    .join_from_welcome_by_ref(&svc(), &welcome, NOW)
                    .map_err(|source| DemoError::Emulator { who, source })?;
                let how = if who == *maker {
                    "by KeyPackageRef, its own KeyPackage".to_string()
                } else {
                    format!("by KeyPackageRef, the KeyPackage {maker} uploaded, keys re-derived")
                };
                log.step(format_args!(
                    "{who} joins '{group}' from the Welcome ({how})"
                ));
                // The new member agrees with Carol at once.
                let values = [
                    (CAROL, self.carol(group)?.epoch_authenticator().to_vec()),
                    (who, authenticator_of(self.emulator(who)?, who, group)?),
                ];
                agree(group, log.step, &values)?;
                log.epoch_checks += 1;
            }
        }
        Ok(())
    }

    fn commit(&mut self, log: &mut Log<'_>, group: &str, by: Device) -> Result<(), DemoError> {
        let before = self.carol(group)?.epoch();
        let commit = if by == CAROL {
            let carol = self.carol(group)?;
            let g = |source| DemoError::Group { who: CAROL, source };
            let out = carol
                .commit(&svc(), CommitOptions::new().with_path(), NOW)
                .map_err(g)?;
            carol.merge_pending_commit().map_err(g)?;
            out.commit.to_bytes()?
        } else {
            let e = |source| DemoError::Emulator { who: by, source };
            let sender = self.emulator(by)?;
            let out = sender
                .commit(&svc(), group.as_bytes(), vec![], NOW)
                .map_err(e)?;
            sender.confirm_commit(group.as_bytes()).map_err(e)?;
            let commit = out.commit.to_bytes()?;
            let processed = self
                .carol(group)?
                .process_bytes(&svc(), &commit, NOW)
                .map_err(|source| DemoError::Group { who: CAROL, source })?;
            expect_commit(CAROL, group, &processed)?;
            commit
        };
        let mut recipients = 1;
        for (who, e) in self.emulators_mut() {
            if who != by {
                let processed = e
                    .process(&svc(), group.as_bytes(), &commit, NOW)
                    .map_err(|source| DemoError::Emulator { who, source })?;
                expect_commit(who, group, &processed)?;
                recipients += 1;
            }
        }
        if by == CAROL {
            recipients -= 1;
        }
        log.traffic.commits.add(commit.len(), recipients);
        log.step(format_args!(
            "{by} commits in group '{group}' (epoch {before} -> {}), {} bytes",
            before + 1,
            commit.len()
        ));
        Ok(())
    }

    fn message(&mut self, log: &mut Log<'_>, group: &str, by: Device) -> Result<(), DemoError> {
        let text = application_text(by, group);
        let message = if by == CAROL {
            self.carol(group)?
                .encrypt_application(&svc(), &text, &[])
                .map_err(|source| DemoError::Group { who: CAROL, source })?
                .to_bytes()?
        } else {
            let e = |source| DemoError::Emulator { who: by, source };
            let sender = self.emulator(by)?;
            let m = sender
                .send_application(&svc(), group.as_bytes(), &text)
                .map_err(e)?;
            sender
                .confirm_sent(&svc(), group.as_bytes(), &m)
                .map_err(e)?;
            let bytes = m.to_bytes()?;
            let processed = self
                .carol(group)?
                .process_bytes(&svc(), &bytes, NOW)
                .map_err(|source| DemoError::Group { who: CAROL, source })?;
            expect_application(CAROL, group, processed, &text)?;
            bytes
        };
        let mut recipients = usize::from(by != CAROL);
        for (who, e) in self.emulators_mut() {
            if who != by {
                let processed = e
                    .process(&svc(), group.as_bytes(), &message, NOW)
                    .map_err(|source| DemoError::Emulator { who, source })?;
                expect_application(who, group, processed, &text)?;
                recipients += 1;
            }
        }
        log.traffic.application.add(message.len(), recipients);
        log.step(format_args!(
            "{by} sends a message in group '{group}', {} bytes, read by {recipients} clients",
            message.len()
        ));
        Ok(())
    }

    fn authenticators(&self, group: &str) -> Result<Vec<(Device, Vec<u8>)>, DemoError> {
        let not_in = |who: Device| DemoError::NotInGroup {
            who,
            group: group.to_string(),
        };
        let carol = self.carol.get(group).ok_or_else(|| not_in(CAROL))?;
        let mut values = vec![(CAROL, carol.epoch_authenticator().to_vec())];
        for (who, e) in self.emulators() {
            let g = e.group(group.as_bytes()).ok_or_else(|| not_in(who))?;
            let consistent = e
                .leaf_is_consistent(&svc(), group.as_bytes())
                .map_err(|source| DemoError::Emulator { who, source })?;
            if !consistent {
                return Err(DemoError::LeafInconsistent {
                    who,
                    group: group.to_string(),
                });
            }
            values.push((who, g.epoch_authenticator().to_vec()));
        }
        Ok(values)
    }

    fn tree(&self, group: &str) -> Result<TreeSize, DemoError> {
        let carol = self.carol.get(group).ok_or_else(|| DemoError::NotInGroup {
            who: CAROL,
            group: group.to_string(),
        })?;
        Ok(tree_of(group, carol))
    }
}

fn authenticator_of(e: &EmulatorClient, who: Device, group: &str) -> Result<Vec<u8>, DemoError> {
    e.group(group.as_bytes())
        .map(|g| g.epoch_authenticator().to_vec())
        .ok_or_else(|| DemoError::NotInGroup {
            who,
            group: group.to_string(),
        })
}

/// Every device its own member (plain groups): Alice's 3 devices and Bob's 2 are 5 members.
#[derive(Default)]
struct DeviceWorld {
    groups: BTreeMap<String, BTreeMap<Device, Group>>,
}

impl DeviceWorld {
    fn group(&mut self, group: &str) -> Result<&mut BTreeMap<Device, Group>, DemoError> {
        self.groups
            .get_mut(group)
            .ok_or_else(|| DemoError::NotInGroup {
                who: CAROL,
                group: group.to_string(),
            })
    }
}

impl World for DeviceWorld {
    fn setup(&mut self, _log: &mut Log<'_>) -> Result<(), DemoError> {
        Ok(())
    }

    fn create_group(
        &mut self,
        log: &mut Log<'_>,
        group: &str,
        _index: usize,
    ) -> Result<(), DemoError> {
        let mut kps = Vec::new();
        for who in all_devices().into_iter().filter(|d| *d != CAROL) {
            let (bundle, key) = plain_key_package(who)?;
            let size = encode(MlsMessageBody::KeyPackage(bundle.key_package.clone()))?.len();
            log.traffic.key_packages.add(size, 1);
            log.step(format_args!(
                "{who} uploads its own KeyPackage, {size} bytes"
            ));
            kps.push((who, bundle, key));
        }
        let mut carol = carol_creates(group)?;
        let mut options = CommitOptions::new();
        for (_, bundle, _) in &kps {
            options = options.proposal(Proposal::add(bundle.key_package.clone()));
        }
        let g = |source| DemoError::Group { who: CAROL, source };
        let out = carol.commit(&svc(), options, NOW).map_err(g)?;
        carol.merge_pending_commit().map_err(g)?;
        let commit = out.commit.to_bytes()?;
        let Some(welcome) = out.welcome else {
            return Err(DemoError::Unexpected {
                who: CAROL,
                group: group.to_string(),
                expected: "a Welcome",
            });
        };
        let welcome_size = encode(MlsMessageBody::Welcome(welcome.clone()))?.len();
        log.traffic.commits.add(commit.len(), 0);
        log.traffic.welcomes.add(welcome_size, kps.len());
        log.step(format_args!(
            "carol creates group '{group}' and adds {} devices (epoch 0 -> 1): commit {} bytes, Welcome {welcome_size} bytes to {} devices",
            kps.len(),
            commit.len(),
            kps.len()
        ));
        let welcome_epoch_authenticator = carol.epoch_authenticator().to_vec();
        let mut members = BTreeMap::new();
        members.insert(CAROL, carol);
        for (who, bundle, key) in kps {
            let joined = Group::join_from_welcome(
                &svc(),
                GroupConfig::default(),
                &welcome,
                &bundle,
                key,
                None,
                NOW,
            )
            .map_err(|source| DemoError::Group { who, source })?;
            log.step(format_args!("{who} joins '{group}' from the Welcome"));
            // The new member agrees with Carol at once.
            let values = [
                (CAROL, welcome_epoch_authenticator.clone()),
                (who, joined.epoch_authenticator().to_vec()),
            ];
            agree(group, log.step, &values)?;
            log.epoch_checks += 1;
            members.insert(who, joined);
        }
        self.groups.insert(group.to_string(), members);
        Ok(())
    }

    fn commit(&mut self, log: &mut Log<'_>, group: &str, by: Device) -> Result<(), DemoError> {
        let members = self.group(group)?;
        let g = |who| move |source| DemoError::Group { who, source };
        let sender = members.get_mut(&by).ok_or_else(|| DemoError::NotInGroup {
            who: by,
            group: group.to_string(),
        })?;
        let before = sender.epoch();
        let out = sender
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .map_err(g(by))?;
        sender.merge_pending_commit().map_err(g(by))?;
        let commit = out.commit.to_bytes()?;
        let mut recipients = 0;
        for (who, member) in members.iter_mut() {
            if *who != by {
                let processed = member
                    .process_bytes(&svc(), &commit, NOW)
                    .map_err(g(*who))?;
                expect_commit(*who, group, &processed)?;
                recipients += 1;
            }
        }
        log.traffic.commits.add(commit.len(), recipients);
        log.step(format_args!(
            "{by} commits in group '{group}' (epoch {before} -> {}), {} bytes",
            before + 1,
            commit.len()
        ));
        Ok(())
    }

    fn message(&mut self, log: &mut Log<'_>, group: &str, by: Device) -> Result<(), DemoError> {
        let text = application_text(by, group);
        let members = self.group(group)?;
        let g = |who| move |source| DemoError::Group { who, source };
        let sender = members.get_mut(&by).ok_or_else(|| DemoError::NotInGroup {
            who: by,
            group: group.to_string(),
        })?;
        let message = sender
            .encrypt_application(&svc(), &text, &[])
            .map_err(g(by))?
            .to_bytes()?;
        let mut recipients = 0;
        for (who, member) in members.iter_mut() {
            if *who != by {
                let processed = member
                    .process_bytes(&svc(), &message, NOW)
                    .map_err(g(*who))?;
                expect_application(*who, group, processed, &text)?;
                recipients += 1;
            }
        }
        log.traffic.application.add(message.len(), recipients);
        log.step(format_args!(
            "{by} sends a message in group '{group}', {} bytes, read by {recipients} clients",
            message.len()
        ));
        Ok(())
    }

    fn authenticators(&self, group: &str) -> Result<Vec<(Device, Vec<u8>)>, DemoError> {
        let members = self
            .groups
            .get(group)
            .ok_or_else(|| DemoError::NotInGroup {
                who: CAROL,
                group: group.to_string(),
            })?;
        Ok(members
            .iter()
            .map(|(who, g)| (*who, g.epoch_authenticator().to_vec()))
            .collect())
    }

    fn tree(&self, group: &str) -> Result<TreeSize, DemoError> {
        let carol = self
            .groups
            .get(group)
            .and_then(|m| m.get(&CAROL))
            .ok_or_else(|| DemoError::NotInGroup {
                who: CAROL,
                group: group.to_string(),
            })?;
        Ok(tree_of(group, carol))
    }
}

fn run_world(world: &mut dyn World, print: &mut dyn FnMut(&str)) -> Result<RunSummary, DemoError> {
    let mut log = Log {
        step: 0,
        epoch_checks: 0,
        traffic: Traffic::default(),
        print,
    };
    scenario(world, &mut log)?;
    let trees = GROUPS
        .iter()
        .map(|group| world.tree(group))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RunSummary {
        steps: log.step,
        epoch_checks: log.epoch_checks,
        trees,
        traffic: log.traffic,
    })
}

/// Runs the scenario twice (virtual clients, then one leaf per device), handing every output
/// line to `print`, and returns the summary. Fails on the first refused operation or
/// disagreement of epoch authenticators.
pub fn run(print: &mut dyn FnMut(&str)) -> Result<Summary, DemoError> {
    print("== virtual clients: alice (3 devices) and bob (2 devices) as one leaf each, carol plain ==");
    let mut world = VirtualWorld {
        alice: Vec::new(),
        bob: Vec::new(),
        carol: BTreeMap::new(),
        uploaded: BTreeMap::new(),
    };
    let virtual_clients = run_world(&mut world, print)?;
    print("external join with the ExternalJoin action: skipped (not built yet)");
    print("");
    print("== the same scenario with one leaf per device: 5 devices + carol as 6 plain members ==");
    let per_device = run_world(&mut DeviceWorld::default(), print)?;
    print("");
    Ok(Summary {
        virtual_clients,
        per_device,
        all_epoch_authenticators_agreed: true,
    })
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (v, d) = (&self.virtual_clients, &self.per_device);
        let row = |f: &mut fmt::Formatter<'_>, name: &str, a: String, b: String| {
            writeln!(f, "{name:<40} {a:>20} {b:>20}")
        };
        row(
            f,
            "summary",
            "virtual clients".into(),
            "one leaf per device".into(),
        )?;
        row(f, "steps", v.steps.to_string(), d.steps.to_string())?;
        for (a, b) in v.trees.iter().zip(&d.trees) {
            row(
                f,
                &format!("group '{}': members", a.group),
                a.members.to_string(),
                b.members.to_string(),
            )?;
            row(
                f,
                &format!("group '{}': leaves (blank)", a.group),
                format!("{} ({})", a.leaves, a.blank_leaves),
                format!("{} ({})", b.leaves, b.blank_leaves),
            )?;
        }
        let kinds = v
            .traffic
            .kinds()
            .into_iter()
            .zip(d.traffic.kinds())
            .chain([(("total", v.traffic.total()), ("total", d.traffic.total()))]);
        for ((name, a), (_, b)) in kinds {
            row(
                f,
                &format!("{name}: messages"),
                a.messages.to_string(),
                b.messages.to_string(),
            )?;
            row(
                f,
                &format!("{name}: bytes sent"),
                a.sent.to_string(),
                b.sent.to_string(),
            )?;
            row(
                f,
                &format!("{name}: bytes received"),
                a.received.to_string(),
                b.received.to_string(),
            )?;
        }
        let agreed = if self.all_epoch_authenticators_agreed {
            "all equal"
        } else {
            "DIFFERED"
        };
        row(
            f,
            "epoch authenticator checks",
            format!("{} ({agreed})", v.epoch_checks),
            format!("{} ({agreed})", d.epoch_checks),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_runs_and_every_epoch_authenticator_agrees() {
        let mut lines = Vec::new();
        let summary = run(&mut |l: &str| lines.push(l.to_string())).unwrap();
        assert!(summary.all_epoch_authenticators_agreed);
        let (v, d) = (&summary.virtual_clients, &summary.per_device);
        assert!(v.epoch_checks > 0 && d.epoch_checks > 0);
        assert_eq!(v.trees.len(), 2);
        for (a, b) in v.trees.iter().zip(&d.trees) {
            // Alice, Bob, Carol: 3 leaves; one per device: 6.
            assert_eq!((a.members, a.leaves, a.blank_leaves), (3, 4, 1), "{a:?}");
            assert_eq!((b.members, b.leaves, b.blank_leaves), (6, 8, 2), "{b:?}");
        }
        // Every device sent one message in each group.
        assert_eq!(v.traffic.application.messages, 12);
        assert_eq!(d.traffic.application.messages, 12);
        assert_eq!(v.traffic.welcomes.messages, 2);
        assert!(v.traffic.emulation.messages > 0);
        assert_eq!(d.traffic.emulation, Counter::default());
        assert!(lines
            .iter()
            .any(|l| l.contains("external join") && l.contains("skipped")));
        assert!(lines.iter().any(|l| l.contains(
            "alice/device-1 joins 'friends' from the Welcome (by KeyPackageRef, the KeyPackage alice/device-2 uploaded"
        )));
        assert!(lines.iter().any(|l| l.contains(
            "alice/device-2 uploads 2 KeyPackages of the virtual client 'alice' through an emulation commit (KeyPackageUpload"
        )));
        // One KeyPackage per virtual client and group, each received by the adder only.
        assert_eq!(v.traffic.key_packages.messages, 4);
        assert_eq!(v.traffic.key_packages.sent, v.traffic.key_packages.received);
        assert_eq!(d.traffic.key_packages.sent, d.traffic.key_packages.received);
        // Emulation groups: 3 (alice) + 3 (bob) messages to add devices, 2 upload commits.
        assert_eq!(v.traffic.emulation.messages, 3 * 2 + 3 + 2);
        assert!(lines.iter().any(
            |l| l.starts_with("step ") && l.contains("bob/device-2 commits in group 'friends'")
        ));
        let table = summary.to_string();
        assert!(table.contains("all equal"));
    }

    #[test]
    fn a_disagreement_is_a_clear_error() {
        let alice = dev(Person::Alice, 2);
        let values = [
            (CAROL, vec![1, 2]),
            (alice, vec![1, 2]),
            (dev(Person::Bob, 1), vec![1, 3]),
        ];
        let err = agree("friends", 7, &values).unwrap_err();
        assert_eq!(
            err.to_string(),
            "epoch authenticators differ in group 'friends' after step 7: carol has 0102, bob/device-1 has 0103"
        );
        assert!(agree("friends", 7, &values[..2]).is_ok());
    }
}
