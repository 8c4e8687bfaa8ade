//! Property test of the device runtime (issue 10): random interleavings of intents by the
//! emulator clients of one virtual client and by plain members, all through
//! [`virtual_clients::runtime::Device`] and the in-memory delivery service.
//!
//! * Setup: the virtual client `vc` with 2-4 emulator clients (the first creates the emulation
//!   group, the others are added with [`Intent::AddDevice`]), 2-3 plain members, one group
//!   created by a plain member who adds the virtual client (its KeyPackages published through
//!   a `KeyPackageUpload`) and the other plain members.
//! * Operations ([`Op`]): application messages and Updates by any device; races (two devices
//!   act in the same group before either hears of the other: the loser processes the winner
//!   and re-issues its intent); emulation-group epochs (KeyPackage uploads) while a device
//!   lags beyond [`RETAINED_EPOCHS`]; a device crashing and restarting from its saved state
//!   at a random step (its request out possibly carried out by the service, its answer lost);
//!   adding and removing plain members.
//! * After every operation, once every device read its mailbox: every device holding the group
//!   agrees on its epoch authenticator, every emulator client is in the same emulation epoch,
//!   and every intent issued ended in exactly one `IntentDone` or `IntentFailed` (a failure
//!   only for a reason the case allows).

use std::collections::{BTreeMap, BTreeSet};

use delivery_service::InMemoryDeliveryService;
use mls_engine::crypto::CipherSuite;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use virtual_clients::emulator::RETAINED_EPOCHS;
use virtual_clients::runtime::{Device, DeviceConfig, Event, Intent, IntentFailure, IntentId};
use vmls_protocol::{ClientId, GroupId};
use zeroize::Zeroizing;

mod common;
use common::{NOW, P};

const VC: &str = "vc";
const GROUP: &str = "g";

/// One device and what the harness knows of it.
struct Slot {
    device: Device,
    /// Its state after its last step.
    saved: Zeroizing<Vec<u8>>,
    /// Intents issued and not yet ended.
    open: BTreeSet<IntentId>,
    /// Events of the current operation.
    events: Vec<Event>,
    /// Removed from the emulation group: its `Fatal` is expected, it does nothing more.
    removed: bool,
}

/// The world of one case.
struct World {
    service: InMemoryDeliveryService,
    slots: Vec<Slot>,
    /// Indices of the emulator clients.
    emulators: Vec<usize>,
    /// Indices of the plain members in the group.
    plains: Vec<usize>,
    /// Plain devices not in the group (can be added).
    outside: Vec<usize>,
    /// Failures seen (allowed ones).
    failures: Vec<IntentFailure>,
    /// Application messages sent in the current operation: (sender device, text).
    sent: Vec<(usize, Vec<u8>)>,
    /// A counter making every text unique.
    texts: u64,
    /// Devices added during the case.
    devices_made: u64,
}

type R<T> = Result<T, String>;

fn config() -> DeviceConfig {
    DeviceConfig::new(CipherSuite(1), NOW)
}

impl World {
    fn add(&mut self, device: Device) -> usize {
        let saved = device.to_bytes().unwrap();
        self.slots.push(Slot {
            device,
            saved,
            open: BTreeSet::new(),
            events: Vec::new(),
            removed: false,
        });
        self.slots.len() - 1
    }

    /// One exchange: the device's next request goes to the service, its answer comes back.
    /// With `lose_answer`, the device crashes after sending and restarts from its saved state.
    fn exchange(&mut self, i: usize, lose_answer: bool) -> R<bool> {
        let slot = &mut self.slots[i];
        let Some(t) = slot.device.poll_transmit() else {
            return Ok(false);
        };
        let id = slot.device.id().clone();
        if std::env::var("RT_DEBUG").is_ok() {
            eprintln!(
                "{id} -> {}",
                format!("{:?}", t.request)
                    .chars()
                    .take(150)
                    .collect::<String>()
            );
        }
        let response = self.service.handle(&id, t.request, NOW);
        if std::env::var("RT_DEBUG").is_ok() {
            eprintln!(
                "{id} <- {}",
                format!("{response:?}")
                    .chars()
                    .take(150)
                    .collect::<String>()
            );
        }
        if lose_answer {
            self.crash(i)?;
            return Ok(true);
        }
        let slot = &mut self.slots[i];
        slot.device
            .handle_response(t.id, response, NOW)
            .map_err(|e| format!("{id}: {e}"))?;
        self.after_step(i)
    }

    /// The device restarts from its state after its last step.
    fn crash(&mut self, i: usize) -> R<()> {
        let slot = &mut self.slots[i];
        slot.device = Device::from_bytes(&P, &slot.saved).map_err(|e| format!("restore: {e}"))?;
        Ok(())
    }

    fn after_step(&mut self, i: usize) -> R<bool> {
        let slot = &mut self.slots[i];
        while let Some(e) = slot.device.poll_event() {
            if std::env::var("RT_DEBUG").is_ok() {
                eprintln!("{}: {e:?}", slot.device.id());
            }
            match &e {
                Event::IntentDone { intent } if !slot.open.remove(intent) => {
                    return Err(format!("{intent:?} ended twice"));
                }
                Event::IntentFailed { intent, reason } => {
                    if !slot.open.remove(intent) {
                        return Err(format!("{:?} ended twice", intent));
                    }
                    self.failures.push(reason.clone());
                }
                Event::NeedsResync { group_id, reason } => {
                    return Err(format!(
                        "{}: needs resync of {group_id}: {reason}",
                        slot.device.id()
                    ))
                }
                Event::Fatal { reason } if !slot.removed => {
                    return Err(format!("{}: fatal: {reason}", slot.device.id()));
                }
                Event::Rejected {
                    reason, group_id, ..
                } => {
                    return Err(format!(
                        "{}: rejected in {group_id}: {reason}",
                        slot.device.id()
                    ))
                }
                _ => {}
            }
            slot.events.push(e);
        }
        slot.saved = slot.device.to_bytes().map_err(|e| e.to_string())?;
        Ok(true)
    }

    fn intend(&mut self, i: usize, intent: Intent) -> R<()> {
        let slot = &mut self.slots[i];
        let id = slot.device.intend(intent, NOW);
        slot.open.insert(id);
        self.after_step(i).map(|_| ())
    }

    fn sync(&mut self, i: usize) -> R<()> {
        self.slots[i].device.sync(NOW);
        self.after_step(i).map(|_| ())
    }

    /// Runs device `i` until it has nothing to send.
    fn pump(&mut self, i: usize) -> R<()> {
        for _ in 0..10_000 {
            if !self.exchange(i, false)? {
                return Ok(());
            }
        }
        Err(format!("device {i} does not settle"))
    }

    /// Every device (but `skip`) reads its mailbox and finishes what it does, until all are
    /// idle with empty mailboxes.
    fn settle(&mut self, skip: &BTreeSet<usize>) -> R<()> {
        for _ in 0..200 {
            let mut quiet = true;
            for i in 0..self.slots.len() {
                if skip.contains(&i) || self.slots[i].removed {
                    continue;
                }
                let id = self.slots[i].device.id().clone();
                if self.service.pending(&id) > 0 || !self.slots[i].device.is_idle() {
                    quiet = false;
                    self.sync(i)?;
                    self.pump(i)?;
                }
            }
            if quiet {
                return Ok(());
            }
        }
        Err("the world does not settle".into())
    }

    fn new(emulators: usize, plains: usize) -> R<Self> {
        let mut w = World {
            service: InMemoryDeliveryService::new(),
            slots: Vec::new(),
            emulators: Vec::new(),
            plains: Vec::new(),
            outside: Vec::new(),
            failures: Vec::new(),
            sent: Vec::new(),
            texts: 0,
            devices_made: 0,
        };
        let first = Device::new_virtual_client(
            &P,
            ClientId::new("vc-0"),
            ClientId::new(VC),
            GroupId::new("vc-emulation"),
            config(),
        )
        .map_err(|e| e.to_string())?;
        let first = w.add(first);
        w.emulators.push(first);
        w.pump(first)?;
        for n in 1..emulators {
            let d = Device::new_joining_emulator(
                &P,
                ClientId::new(format!("vc-{n}")),
                ClientId::new(VC),
                GroupId::new("vc-emulation"),
                config(),
            )
            .map_err(|e| e.to_string())?;
            let i = w.add(d);
            w.pump(i)?;
            w.intend(
                first,
                Intent::AddDevice {
                    device: ClientId::new(format!("vc-{n}")),
                },
            )?;
            w.pump(first)?;
            w.settle(&BTreeSet::new())?;
            w.emulators.push(i);
        }
        for n in 0..plains + 1 {
            let d = Device::new_plain(&P, ClientId::new(format!("p-{n}")), config())
                .map_err(|e| e.to_string())?;
            let i = w.add(d);
            w.pump(i)?;
            w.intend(i, Intent::PublishKeyPackages { count: 4 })?;
            w.pump(i)?;
            if n < plains {
                w.plains.push(i);
            } else {
                w.outside.push(i);
            }
        }
        w.intend(first, Intent::PublishKeyPackages { count: 4 })?;
        w.settle(&BTreeSet::new())?;
        let creator = w.plains[0];
        w.intend(
            creator,
            Intent::CreateGroup {
                group_id: GroupId::new(GROUP),
            },
        )?;
        let mut members = vec![ClientId::new(VC)];
        for &p in &w.plains[1..] {
            members.push(w.slots[p].device.id().clone());
        }
        w.intend(
            creator,
            Intent::AddMembers {
                group_id: GroupId::new(GROUP),
                members,
            },
        )?;
        w.settle(&BTreeSet::new())?;
        w.check()?;
        Ok(w)
    }

    /// Every device holding the group agrees; every emulator is in one emulation epoch; every
    /// intent ended.
    fn check(&mut self) -> R<()> {
        let g = GroupId::new(GROUP);
        let mut values = BTreeMap::new();
        for &i in self.emulators.iter().chain(&self.plains) {
            let d = &self.slots[i].device;
            let group = d
                .group(&g)
                .ok_or_else(|| format!("{} does not hold the group", d.id()))?;
            values.insert(
                d.id().clone(),
                (group.epoch(), group.epoch_authenticator().to_vec()),
            );
        }
        let first = values.values().next().cloned();
        for (id, v) in &values {
            if Some(v) != first.as_ref() {
                return Err(format!(
                    "{id} disagrees: {:?}",
                    values
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.0))
                        .collect::<Vec<_>>()
                ));
            }
        }
        let mut emulation = BTreeSet::new();
        for &i in &self.emulators {
            let e = self.slots[i]
                .device
                .emulator()
                .ok_or("emulator not joined")?;
            emulation.insert(e.emulation_group().epoch_authenticator().to_vec());
        }
        if emulation.len() != 1 {
            return Err("emulator clients disagree on the emulation epoch".into());
        }
        for slot in &self.slots {
            if !slot.open.is_empty() {
                return Err(format!(
                    "{}: intents not ended: {:?}",
                    slot.device.id(),
                    slot.open
                ));
            }
        }
        // Every message sent was read by every other member device, once.
        for (from, text) in std::mem::take(&mut self.sent) {
            for &i in self.emulators.iter().chain(&self.plains) {
                if i == from {
                    continue;
                }
                let got = self.slots[i]
                    .events
                    .iter()
                    .filter(|e| matches!(e, Event::MessageReceived { data, .. } if *data == text))
                    .count();
                if got != 1 {
                    return Err(format!(
                        "{} read {:?} {got} times",
                        self.slots[i].device.id(),
                        String::from_utf8_lossy(&text)
                    ));
                }
            }
        }
        for slot in &mut self.slots {
            slot.events.clear();
        }
        for f in &self.failures {
            if !matches!(f, IntentFailure::NoLongerApplies(_)) {
                return Err(format!("an intent failed: {f}"));
            }
        }
        Ok(())
    }

    fn text(&mut self) -> Vec<u8> {
        self.texts += 1;
        format!("text {}", self.texts).into_bytes()
    }

    fn member(&self, who: u8) -> usize {
        let all: Vec<usize> = self.emulators.iter().chain(&self.plains).copied().collect();
        all[usize::from(who) % all.len()]
    }

    fn apply(&mut self, op: &Op) -> R<()> {
        let g = GroupId::new(GROUP);
        let none = BTreeSet::new();
        match op {
            Op::Send { who } => {
                let i = self.member(*who);
                let data = self.text();
                self.sent.push((i, data.clone()));
                self.intend(i, Intent::Send { group_id: g, data })?;
            }
            Op::Update { who } => {
                let i = self.member(*who);
                self.intend(i, Intent::Update { group_id: g })?;
            }
            Op::Race { a, b, send, crash } => {
                let (a, b) = (self.member(*a), self.member(*b));
                if a == b {
                    return Ok(());
                }
                let intent = |w: &mut World, who: usize| {
                    if *send {
                        let data = w.text();
                        w.sent.push((who, data.clone()));
                        Intent::Send {
                            group_id: g.clone(),
                            data,
                        }
                    } else {
                        Intent::Update {
                            group_id: g.clone(),
                        }
                    }
                };
                let ia = intent(self, a);
                let ib = intent(self, b);
                self.intend(a, ia)?;
                self.intend(b, ib)?;
                // Interleave: each reads its mailbox, then both send before either hears back.
                self.exchange(a, false)?;
                self.exchange(b, false)?;
                for _ in 0..3 {
                    self.exchange(a, false)?;
                    self.exchange(b, *crash)?;
                }
            }
            Op::Lag { who, epochs } => {
                let e = self.emulators[usize::from(*who) % self.emulators.len()];
                let others: Vec<usize> =
                    self.emulators.iter().copied().filter(|x| *x != e).collect();
                if others.is_empty() {
                    return Ok(());
                }
                let skip: BTreeSet<usize> = [e].into();
                for n in 0..*epochs {
                    let by = others[usize::from(n) % others.len()];
                    self.intend(by, Intent::PublishKeyPackages { count: 1 })?;
                    self.settle(&skip)?;
                }
                // The lagging device acts: it must process the emulation group first.
                self.intend(e, Intent::Update { group_id: g })?;
            }
            Op::Crash { who, after } => {
                let i = self.member(*who);
                self.intend(i, Intent::Update { group_id: g })?;
                for _ in 0..*after {
                    self.exchange(i, false)?;
                }
                self.exchange(i, true)?;
            }
            Op::AddDevice { by } => {
                if self.emulators.len() >= 5 {
                    return Ok(());
                }
                let by = self.emulators[usize::from(*by) % self.emulators.len()];
                self.devices_made += 1;
                let name = ClientId::new(format!("vc-new-{}", self.devices_made));
                let d = Device::new_joining_emulator(
                    &P,
                    name.clone(),
                    ClientId::new(VC),
                    GroupId::new("vc-emulation"),
                    config(),
                )
                .map_err(|e| e.to_string())?;
                let i = self.add(d);
                self.pump(i)?;
                self.intend(by, Intent::AddDevice { device: name })?;
                self.settle(&none)?;
                self.emulators.push(i);
            }
            Op::RemoveDevice { who, by } => {
                if self.emulators.len() <= 2 {
                    return Ok(());
                }
                let e = self.emulators[usize::from(*who) % self.emulators.len()];
                let rest: Vec<usize> = self.emulators.iter().copied().filter(|x| *x != e).collect();
                let by = rest[usize::from(*by) % rest.len()];
                let epoch = self.slots[by]
                    .device
                    .group(&g)
                    .map(|x| x.epoch())
                    .unwrap_or_default();
                let id = self.slots[e].device.id().clone();
                self.slots[e].removed = true;
                self.emulators.retain(|x| *x != e);
                self.intend(by, Intent::RemoveDevice { device: id })?;
                self.settle(&none)?;
                // The removed device learns it, and holds nothing of the virtual client.
                self.sync(e)?;
                self.pump(e)?;
                let after = self.slots[by]
                    .device
                    .group(&g)
                    .map(|x| x.epoch())
                    .unwrap_or_default();
                if after <= epoch {
                    return Err(
                        "the virtual client's leaf was not rotated after the removal".into(),
                    );
                }
                if self.slots[e]
                    .device
                    .emulator()
                    .is_some_and(|c| c.group_ids().next().is_some())
                {
                    return Err("the removed device still holds groups".into());
                }
            }
            Op::Rejoin { who } => {
                // A member rejoins by external commit (a resync: its old leaf is removed).
                let i = self.member(*who);
                let members = self.slots[i].device.group(&g).map(|x| x.members().len());
                self.intend(
                    i,
                    Intent::JoinExternally {
                        group_id: g.clone(),
                    },
                )?;
                self.settle(&none)?;
                let after = self.slots[i].device.group(&g).map(|x| x.members().len());
                if members != after {
                    return Err(format!(
                        "a rejoin changed the member count: {members:?} -> {after:?}"
                    ));
                }
            }
            Op::AddPlain => {
                let Some(p) = self.outside.pop() else {
                    return Ok(());
                };
                let by = self.member(0);
                let id = self.slots[p].device.id().clone();
                self.intend(
                    by,
                    Intent::AddMembers {
                        group_id: g,
                        members: vec![id],
                    },
                )?;
                self.plains.push(p);
            }
            Op::RemovePlain { by } => {
                if self.plains.len() < 2 {
                    return Ok(());
                }
                let p = self.plains.pop().ok_or("no plain")?;
                let by = self.member(*by);
                if by == p {
                    self.plains.push(p);
                    return Ok(());
                }
                let id = self.slots[p].device.id().clone();
                self.intend(
                    by,
                    Intent::RemoveMembers {
                        group_id: g,
                        members: vec![id],
                    },
                )?;
                self.settle(&none)?;
                self.outside.push(p);
                // It may come back later with a new KeyPackage.
                self.intend(p, Intent::PublishKeyPackages { count: 1 })?;
            }
        }
        self.settle(&none)?;
        self.check()
    }
}

/// One operation of a case.
#[derive(Debug, Clone)]
enum Op {
    /// A member's device sends an application message.
    Send { who: u8 },
    /// A member's device commits an Update.
    Update { who: u8 },
    /// Two devices act at once; with `crash`, the second crashes right after one send.
    Race {
        a: u8,
        b: u8,
        send: bool,
        crash: bool,
    },
    /// An emulator client lags while its siblings make `epochs` emulation epochs, then acts.
    Lag { who: u8, epochs: u8 },
    /// A device commits and crashes after `after` exchanges (its answer lost).
    Crash { who: u8, after: u8 },
    /// An emulator client adds a new device (state transfer of the group).
    AddDevice { by: u8 },
    /// An emulator client removes a sibling (then rotates the leaf in every group).
    RemoveDevice { who: u8, by: u8 },
    /// A member rejoins the group by external commit.
    Rejoin { who: u8 },
    /// A plain device outside the group is added.
    AddPlain,
    /// A plain member is removed.
    RemovePlain { by: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let lag = u8::try_from(RETAINED_EPOCHS + 2).unwrap_or(6);
    prop_oneof![
        3 => any::<u8>().prop_map(|who| Op::Send { who }),
        2 => any::<u8>().prop_map(|who| Op::Update { who }),
        3 => (any::<u8>(), any::<u8>(), any::<bool>(), any::<bool>())
            .prop_map(|(a, b, send, crash)| Op::Race { a, b, send, crash }),
        1 => (any::<u8>(), 1..=lag).prop_map(|(who, epochs)| Op::Lag { who, epochs }),
        2 => (any::<u8>(), 0u8..4).prop_map(|(who, after)| Op::Crash { who, after }),
        1 => any::<u8>().prop_map(|by| Op::AddDevice { by }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(who, by)| Op::RemoveDevice { who, by }),
        1 => any::<u8>().prop_map(|who| Op::Rejoin { who }),
        1 => Just(Op::AddPlain),
        1 => any::<u8>().prop_map(|by| Op::RemovePlain { by }),
    ]
}

fn run(emulators: usize, plains: usize, ops: &[Op]) -> R<delivery_service::DeliveryStats> {
    let mut w = World::new(emulators, plains)?;
    for (n, op) in ops.iter().enumerate() {
        w.apply(op).map_err(|e| format!("op {n} {op:?}: {e}"))?;
    }
    Ok(w.service.stats())
}

#[test]
fn a_fixed_case_with_every_operation() {
    let ops = [
        Op::Send { who: 0 },
        Op::Send { who: 3 },
        Op::Update { who: 1 },
        Op::Race {
            a: 0,
            b: 1,
            send: false,
            crash: false,
        },
        Op::Race {
            a: 1,
            b: 2,
            send: true,
            crash: false,
        },
        Op::Race {
            a: 0,
            b: 3,
            send: false,
            crash: true,
        },
        Op::Lag {
            who: 1,
            epochs: (RETAINED_EPOCHS + 2) as u8,
        },
        Op::Crash { who: 2, after: 1 },
        Op::AddPlain,
        Op::RemovePlain { by: 0 },
        Op::Send { who: 4 },
        Op::AddDevice { by: 0 },
        Op::Send { who: 3 },
        Op::Race {
            a: 3,
            b: 0,
            send: true,
            crash: false,
        },
        Op::RemoveDevice { who: 1, by: 0 },
        Op::Send { who: 1 },
        Op::Update { who: 2 },
        Op::Rejoin { who: 0 },
        Op::Rejoin { who: 4 },
        Op::Send { who: 0 },
    ];
    let stats = run(3, 2, &ops).unwrap();
    // The races were real: the service refused the losers.
    assert!(stats.rejected >= 3, "{stats:?}");
}

#[test]
fn a_new_device_reads_a_message_that_raced_its_first_send() {
    let ops = [
        Op::AddDevice { by: 69 },
        Op::Race {
            a: 227,
            b: 129,
            send: true,
            crash: false,
        },
    ];
    run(3, 2, &ops).unwrap();
}

fn proptest_config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        max_shrink_iters: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config(200))]
    #[test]
    fn devices_agree_through_the_runtime(
        emulators in 2usize..=4,
        plains in 2usize..=3,
        ops in proptest::collection::vec(op(), 3..10),
    ) {
        if let Err(e) = run(emulators, plains, &ops).map(|_| ()) {
            panic!("{e}\nemulators {emulators}, plains {plains}, ops {ops:?}");
        }
    }
}
