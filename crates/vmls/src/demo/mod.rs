//! `vmls demo`: one process runs a scenario of virtual clients (draft-kohbrok-mls-virtual-
//! clients-04) and prints, step by step, what happens; then the same scenario with one leaf
//! per device, and a summary table of the two side by side.
//!
//! The scenario (sans-IO, deterministic order, one fixed `now`): Alice with 3 devices as one
//! virtual client, Bob with 2, Carol a plain client, in 3 higher-level groups created by
//! Carol.
//!
//! * Each virtual client's devices form its emulation group: device 1 creates it, every other
//!   device publishes a KeyPackage to the delivery service's directory, device 1 takes it and
//!   adds the device with a Commit and a Welcome through the service.
//! * Each virtual client publishes its KeyPackages with the draft's `KeyPackageUpload` action
//!   (§5.5.1): one of its devices derives them and announces their `KeyPackageRef`s in the
//!   SafeAAD of one emulation-group Commit, which its other devices process; it then publishes
//!   them to the directory as the virtual client. Carol takes them from the directory; every
//!   device joins from the one Welcome by `KeyPackageRef` (`join_from_welcome_by_ref`), also
//!   those that did not make the KeyPackage.
//! * Commits by different devices; an application message from every device, read by everyone.
//! * External join with the `ExternalJoin` action (§5.5.2): Carol's third group 'open'
//!   publishes its GroupInfo with the delivery service after every epoch; alice/device-2
//!   announces `ExternalJoin` in an emulation-group Commit, joins by external commit from the
//!   service's GroupInfo, and her other devices follow it with the GroupInfo the service hands
//!   to the emulator clients; then other devices of Alice send and commit there.
//!
//! Every device is a [`virtual_clients::runtime::Device`]: the demo states intents (create a
//! group, add members, update, send, publish KeyPackages, add a device, join externally) and
//! moves the runtime's requests and answers; the choreography is the runtime's. Everything
//! goes through one §5.1 delivery service per run
//! ([`delivery_service::InMemoryDeliveryService`]): groups (emulation groups too) are
//! logs on it; a virtual client is registered with its emulation group, whose members send as
//! it with compare-and-append on its sequence at the emulation group's head, and drop their
//! own echoes. After every step every device reads its mailbox, and the epoch authenticators
//! of all clients of the group are
//! compared (with the emulation epoch for emulation groups); the demo stops with
//! [`DemoError::Disagreement`] if they ever differ.
//!
//! The one-leaf-per-device run is the same scenario with every device a plain client: its own
//! KeyPackages in the directory, its own leaf, and in 'open' its own external commit.
//!
//! Bytes (see [`net`]): "sent" is what clients uploaded to the service (messages, Welcomes,
//! KeyPackages, GroupInfos); "received" is what they downloaded from it (every mailbox item,
//! each sender's own echo included, KeyPackages taken from the directory, GroupInfos fetched by
//! external joiners or attached for emulator clients).

mod net;
mod world;

use std::fmt;

use delivery_service::DeliveryStats;
use mls_engine::codec::CodecError;
use mls_engine::crypto::CryptoError;
use mls_engine::messages::CreationError;
use virtual_clients::emulator::EmulatorError;

use world::{Mode, World};

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
    /// A device runtime refused a call, or an intent failed.
    #[error("device {who}: {source}")]
    Runtime {
        /// The device.
        who: String,
        /// The error.
        source: virtual_clients::runtime::RuntimeError,
    },
    /// An intent of a device failed.
    #[error("device {who}: {reason}")]
    IntentFailed {
        /// The device.
        who: Device,
        /// Why.
        reason: virtual_clients::runtime::IntentFailure,
    },
    /// A message could not be encoded or decoded.
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
        /// The group (`<name>-emulation` for an emulation group).
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
    /// Our byte counts differ from the delivery service's own counters.
    #[error("byte counts differ from the delivery service's: {what} counted {counted}, the service {service}")]
    Accounting {
        /// Which count.
        what: &'static str,
        /// Ours.
        counted: u64,
        /// The service's.
        service: u64,
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

/// The traffic of one kind: uploads to the delivery service and downloads from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Items uploaded (messages sent, Welcomes, KeyPackages or GroupInfos published).
    pub messages: u64,
    /// Bytes uploaded.
    pub sent: u64,
    /// Bytes downloaded (each item once per receiving client).
    pub received: u64,
}

/// The traffic of one run, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// KeyPackages for higher-level groups, through the directory.
    pub key_packages: Counter,
    /// Welcomes into higher-level groups.
    pub welcomes: Counter,
    /// Commits (external ones included) in higher-level groups.
    pub commits: Counter,
    /// Application messages.
    pub application: Counter,
    /// GroupInfos: published for external joiners, fetched by them, attached for emulators.
    pub group_infos: Counter,
    /// Emulation groups: the devices' KeyPackages, the Commits and Welcomes adding them, and
    /// the `KeyPackageUpload` and `ExternalJoin` commits.
    pub emulation: Counter,
}

impl Traffic {
    fn kinds(&self) -> [(&'static str, Counter); 6] {
        [
            ("KeyPackages", self.key_packages),
            ("Welcomes", self.welcomes),
            ("commits", self.commits),
            ("application messages", self.application),
            ("GroupInfos", self.group_infos),
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
    /// The traffic, as the clients counted it.
    pub traffic: Traffic,
    /// The delivery service's own counters.
    pub service: DeliveryStats,
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

/// Step counter and printer of one run.
struct Log<'p> {
    step: usize,
    epoch_checks: usize,
    print: &'p mut dyn FnMut(&str),
}

impl Log<'_> {
    fn step(&mut self, text: fmt::Arguments<'_>) {
        self.step += 1;
        let line = format!("step {}: {text}", self.step);
        (self.print)(&line);
    }

    /// A heading before a part of the scenario.
    fn section(&mut self, text: &str) {
        let line = format!("-- {text}");
        (self.print)(&line);
    }

    /// A line under the current step.
    fn detail(&mut self, text: fmt::Arguments<'_>) {
        let line = format!("        {text}");
        (self.print)(&line);
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

/// The higher-level groups Carol creates, in order, and whom she adds with a Welcome (each
/// consumes one KeyPackage of each of them). 'open' publishes its GroupInfo for external
/// joins; Alice joins it that way.
const GROUPS: [(&str, &[Person], bool); 3] = [
    ("friends", &[Person::Alice, Person::Bob], false),
    ("work", &[Person::Alice, Person::Bob], false),
    ("open", &[Person::Bob], true),
];

/// The device of each virtual client that makes and uploads its KeyPackages.
const UPLOADERS: [Device; 2] = [
    Device {
        person: Person::Alice,
        n: 2,
    },
    Device {
        person: Person::Bob,
        n: 1,
    },
];

/// The device of Alice that joins 'open' by external commit as the virtual client.
const EXTERNAL_JOINER: Device = Device {
    person: Person::Alice,
    n: 2,
};

/// How many KeyPackages `person` needs: one per group Carol adds it to with a Welcome.
fn key_packages_needed(person: Person) -> usize {
    GROUPS
        .iter()
        .filter(|(_, welcomed, _)| welcomed.contains(&person))
        .count()
}

/// The scenario, the same for both worlds.
fn scenario(world: &mut World, log: &mut Log<'_>) -> Result<(), DemoError> {
    let virtual_clients = world.mode() == Mode::VirtualClients;
    log.section(if virtual_clients {
        "setup: the emulation groups, then each virtual client's KeyPackageUpload"
    } else {
        "setup: every device publishes its own KeyPackages"
    });
    world.setup(log)?;
    let (friends_and_work, open) = GROUPS.split_at(2);
    log.section("carol creates 'friends' and 'work' with KeyPackages from the directory");
    for (group, persons, public) in friends_and_work {
        world.create_group(log, group, persons, *public)?;
        world.check(log, group)?;
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
    log.section("commits by different devices, then a message from every device");
    for (group, by) in commits {
        world.commit(log, group, by)?;
        world.check(log, group)?;
    }
    for (group, _, _) in friends_and_work {
        for by in all_devices() {
            world.message(log, group, by)?;
            world.check(log, group)?;
        }
    }
    for (group, by) in [("work", alice(2)), ("friends", bob(1)), ("work", CAROL)] {
        world.commit(log, group, by)?;
        world.check(log, group)?;
    }
    for (group, persons, public) in open {
        log.section(if virtual_clients {
            "external join (draft §5.5.2): carol's group 'open' publishes its GroupInfo; alice joins with the ExternalJoin action"
        } else {
            "external join: carol's group 'open' publishes its GroupInfo; each of alice's devices joins by its own external commit"
        });
        world.create_group(log, group, persons, *public)?;
        world.check(log, group)?;
        world.external_join(log, group, Person::Alice)?;
        world.check(log, group)?;
        world.message(log, group, alice(1))?;
        world.check(log, group)?;
        world.commit(log, group, alice(3))?;
        world.check(log, group)?;
        for by in [bob(2), CAROL, alice(2)] {
            world.message(log, group, by)?;
            world.check(log, group)?;
        }
    }
    Ok(())
}

fn run_world(mode: Mode, print: &mut dyn FnMut(&str)) -> Result<RunSummary, DemoError> {
    let mut log = Log {
        step: 0,
        epoch_checks: 0,
        print,
    };
    let mut world = World::new(mode)?;
    scenario(&mut world, &mut log)?;
    let trees = GROUPS
        .iter()
        .map(|(group, _, _)| world.tree(group))
        .collect::<Result<Vec<_>, _>>()?;
    let (traffic, service) = world.traffic()?;
    Ok(RunSummary {
        steps: log.step,
        epoch_checks: log.epoch_checks,
        trees,
        traffic,
        service,
    })
}

/// Runs the scenario twice (virtual clients, then one leaf per device), handing every output
/// line to `print`, and returns the summary. Fails on the first refused operation or
/// disagreement of epoch authenticators.
pub fn run(print: &mut dyn FnMut(&str)) -> Result<Summary, DemoError> {
    print("== virtual clients: alice (3 devices) and bob (2 devices) as one leaf each, carol plain; all through the in-memory delivery service (draft §5.1) ==");
    let virtual_clients = run_world(Mode::VirtualClients, print)?;
    print("");
    print("== the same scenario with one leaf per device: 5 devices + carol as 6 plain members, same delivery service ==");
    let per_device = run_world(Mode::PerDevice, print)?;
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
                &format!("{name}: uploads"),
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
        let (vs, ds) = (&v.service, &d.service);
        row(
            f,
            "service: group messages accepted",
            vs.messages_accepted.to_string(),
            ds.messages_accepted.to_string(),
        )?;
        row(
            f,
            "service: mailbox deliveries",
            (vs.deliveries + vs.welcomes_delivered).to_string(),
            (ds.deliveries + ds.welcomes_delivered).to_string(),
        )?;
        row(
            f,
            "service: bytes delivered to mailboxes",
            vs.bytes_delivered.to_string(),
            ds.bytes_delivered.to_string(),
        )?;
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
        )?;
        writeln!(
            f,
            "bytes are counted at the delivery service: 'sent' = uploaded to it (messages, Welcomes,"
        )?;
        writeln!(
            f,
            "KeyPackages, GroupInfos); 'received' = downloaded from it (every mailbox item, the sender's"
        )?;
        writeln!(
            f,
            "own echo included, KeyPackages taken from the directory, GroupInfos fetched or attached)."
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
        assert_eq!(v.trees.len(), 3);
        for (a, b) in v.trees.iter().zip(&d.trees) {
            // Alice, Bob, Carol: 3 leaves; one per device: 6.
            assert_eq!((a.members, a.leaves, a.blank_leaves), (3, 4, 1), "{a:?}");
            assert_eq!((b.members, b.leaves, b.blank_leaves), (6, 8, 2), "{b:?}");
        }
        // Every device sent one message in 'friends' and 'work', 4 in 'open'.
        assert_eq!(v.traffic.application.messages, 16);
        assert_eq!(d.traffic.application.messages, 16);
        // Virtual clients: one Welcome per group Carol adds to (received by every device).
        assert_eq!(v.traffic.welcomes.messages, 3);
        assert!(v.traffic.emulation.messages > 0);
        assert_eq!(d.traffic.emulation, Counter::default());
        // KeyPackages: alice 2 + bob 3, through the directory, each taken once.
        assert_eq!(v.traffic.key_packages.messages, 5);
        assert_eq!(v.traffic.key_packages.sent, v.traffic.key_packages.received);
        // One leaf per device: alice's 3 devices × 2 + bob's 2 devices × 3.
        assert_eq!(d.traffic.key_packages.messages, 12);
        // Emulation groups: each group's first GroupInfo (2); per added device (2 of alice's,
        // 1 of bob's) its KeyPackage, the Commit, its Welcome, its GroupInfo and the state
        // transfer; 2 KeyPackageUpload commits and 1 ExternalJoin commit, each with its
        // GroupInfo (every Commit carries the GroupInfo of its new epoch).
        assert_eq!(v.traffic.emulation.messages, 2 + 3 * 5 + 2 * 2 + 2);
        // Fewer leaves, fewer bytes downloaded per commit.
        assert!(v.traffic.commits.received < d.traffic.commits.received);
        assert!(v.service.bytes_delivered > 0 && d.service.bytes_delivered > 0);
        for needle in [
            "alice/device-1 joins 'friends' from the Welcome (by KeyPackageRef, the KeyPackage alice/device-2 uploaded",
            "alice/device-2 uploads 2 KeyPackages of the virtual client 'alice' through an emulation commit (KeyPackageUpload",
            "bob/device-1 uploads 3 KeyPackages of the virtual client 'bob'",
            "alice/device-2 announces ExternalJoin for group 'open'",
            "alice/device-2 joins 'open' by external commit as the virtual client 'alice'",
            "alice/device-3 follows the external join of alice/device-2 into 'open'",
            "alice/device-1 sends a message in group 'open'",
        ] {
            assert!(lines.iter().any(|l| l.contains(needle)), "{needle}");
        }
        assert!(!lines.iter().any(|l| l.contains("skipped")));
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
