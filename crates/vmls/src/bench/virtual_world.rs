//! The virtual-client run: every user is one virtual client, emulated by its devices.

use std::collections::{BTreeMap, VecDeque};

use indicatif::ProgressBar;
use mls_engine::codec::{Credential, KeyPackage, MlsMessageBody, Proposal};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, SignatureKeyPair};
use mls_engine::group::{CommitOptions, Group, GroupConfig, ProcessedMessage};
use mls_engine::messages::{KeyPackageBundle, KeyPackageParams};
use virtual_clients::emulator::{EmulatorClient, EmulatorError};

use super::{
    agree, encoded_len, lifetime, own_leaf, payload, svc, BenchError, DeviceId, Layout, Meter,
    Mode, TreeStats, World, CREATOR, CRYPTO, NOW,
};

/// One emulator client.
struct Device {
    client: EmulatorClient,
    /// Whether it holds the higher-level groups (a device added in [`Op::Add`] once the
    /// state transfer reached it).
    ///
    /// [`Op::Add`]: super::Op::Add
    in_groups: bool,
}

/// Every user a virtual client.
pub(super) struct VirtualWorld {
    layout: Layout,
    /// Per user, its devices by serial.
    users: Vec<BTreeMap<u32, Device>>,
    next_serial: Vec<u32>,
}

fn emu(who: DeviceId) -> impl FnOnce(EmulatorError) -> BenchError {
    move |source| BenchError::Emulator { who, source }
}

fn credential(user: u32) -> Credential {
    Credential::basic(format!("user-{user}").into_bytes())
}

/// A device's ordinary KeyPackage for its emulation group (on `cipher_suite`).
fn emulator_key_package(
    who: DeviceId,
    cipher_suite: CipherSuite,
) -> Result<(KeyPackageBundle, SignatureKeyPair), BenchError> {
    let suite = CRYPTO.suite(cipher_suite)?;
    let key = suite.signature_generate_key_pair()?;
    let credential = Credential::basic(who.to_string().into_bytes());
    let bundle = KeyPackageParams::new(cipher_suite, credential.clone(), lifetime())
        .with_leaf(EmulatorClient::emulation_leaf_params(
            cipher_suite,
            credential,
        ))
        .build_fresh(suite, &key)?;
    Ok((bundle, key))
}

impl VirtualWorld {
    pub(super) fn new(layout: Layout) -> Self {
        let users = layout.users() as usize;
        Self {
            layout,
            users: (0..users).map(|_| BTreeMap::new()).collect(),
            next_serial: vec![0; users],
        }
    }

    fn user(&mut self, user: u32) -> Result<&mut BTreeMap<u32, Device>, BenchError> {
        self.users
            .get_mut(user as usize)
            .ok_or_else(|| BenchError::Unexpected(format!("no user {user}")))
    }

    /// The devices of `user` that hold the groups, by serial.
    fn serials_in_groups(&self, user: u32) -> Vec<u32> {
        self.users
            .get(user as usize)
            .map(|d| {
                d.iter()
                    .filter(|(_, d)| d.in_groups)
                    .map(|(s, _)| *s)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every device holding group `g`.
    fn group_devices(&self, g: usize) -> Vec<DeviceId> {
        let Some(members) = self.layout.members.get(g) else {
            return Vec::new();
        };
        members
            .iter()
            .flat_map(|&user| {
                self.serials_in_groups(user)
                    .into_iter()
                    .map(move |serial| DeviceId { user, serial })
            })
            .collect()
    }

    fn device(&mut self, who: DeviceId) -> Result<&mut EmulatorClient, BenchError> {
        self.user(who.user)?
            .get_mut(&who.serial)
            .map(|d| &mut d.client)
            .ok_or_else(|| BenchError::Unexpected(format!("no device {who}")))
    }

    /// `by` commits with path (and `proposals`) in group `g`; every other device of the
    /// group processes it.
    fn commit_in_group(
        &mut self,
        g: usize,
        by: DeviceId,
        proposals: Vec<Proposal>,
        meter: &mut Meter,
    ) -> Result<(), BenchError> {
        let gid = Layout::group_id(g);
        let sender = self.device(by)?;
        let commit = meter.time(by, || {
            let out = sender
                .commit(&svc(), &gid, proposals, NOW)
                .map_err(emu(by))?;
            sender.confirm_commit(&gid).map_err(emu(by))?;
            Ok::<_, BenchError>(out.commit.to_bytes()?)
        })?;
        meter.up(by, commit.len());
        self.deliver_commit(g, by, &commit, meter)
    }

    /// Every device of group `g` but `by` processes `commit`.
    fn deliver_commit(
        &mut self,
        g: usize,
        by: DeviceId,
        commit: &[u8],
        meter: &mut Meter,
    ) -> Result<(), BenchError> {
        let gid = Layout::group_id(g);
        for who in self.group_devices(g) {
            if who == by {
                continue;
            }
            meter.down(who, commit.len());
            let client = self.device(who)?;
            let processed = meter.time(who, || client.process(&svc(), &gid, commit, NOW));
            if !matches!(
                processed.map_err(emu(who))?,
                ProcessedMessage::Commit { .. }
            ) {
                return Err(BenchError::Unexpected(format!("{who}: not a commit")));
            }
        }
        Ok(())
    }

    /// `actor`, a device of `user`, commits with path from the current emulation epoch in
    /// every group of the virtual client (`update_all_groups`); everyone processes them.
    fn update_all_groups_of(
        &mut self,
        user: u32,
        actor: DeviceId,
        meter: &mut Meter,
        progress: &ProgressBar,
    ) -> Result<(), BenchError> {
        let sender = self.device(actor)?;
        let commits = meter.time(actor, || {
            let commits = sender.update_all_groups(&svc(), NOW).map_err(emu(actor))?;
            let mut encoded = Vec::with_capacity(commits.len());
            for (group_id, out) in commits {
                sender.confirm_commit(&group_id).map_err(emu(actor))?;
                encoded.push((group_id, out.commit.to_bytes()?));
            }
            Ok::<_, BenchError>(encoded)
        })?;
        let groups = self.layout.groups_of(user);
        if commits.len() != groups.len() {
            return Err(BenchError::Unexpected(format!(
                "{actor}: {} commits for {} groups",
                commits.len(),
                groups.len()
            )));
        }
        for g in groups {
            let gid = Layout::group_id(g);
            let commit = commits
                .iter()
                .find(|(id, _)| *id == gid)
                .map(|(_, c)| c)
                .ok_or_else(|| BenchError::Unexpected(format!("no commit in group {g}")))?;
            meter.up(actor, commit.len());
            self.deliver_commit(g, actor, commit, meter)?;
            progress.inc(1);
        }
        Ok(())
    }

    /// Device 0 of `user` makes its emulation group and adds the others in one Commit.
    fn emulation_group(&mut self, user: u32) -> Result<(), BenchError> {
        let first = DeviceId { user, serial: 0 };
        let creator = EmulatorClient::create(
            &svc(),
            format!("user-{user}-emulation").into_bytes(),
            self.layout.suite,
            own_leaf(first.to_string(), self.layout.suite)?,
            lifetime(),
            credential(user),
        )
        .map_err(emu(first))?;
        let mut devices = BTreeMap::new();
        let others = (1..self.layout.devices)
            .map(|serial| {
                let who = DeviceId { user, serial };
                emulator_key_package(who, self.layout.suite).map(|(b, k)| (who, b, k))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut creator = creator;
        if !others.is_empty() {
            let mut options = CommitOptions::new();
            for (_, bundle, _) in &others {
                options = options.proposal(Proposal::add(bundle.key_package.clone()));
            }
            let out = creator
                .commit_emulation(&svc(), options, NOW)
                .map_err(emu(first))?;
            creator
                .confirm_emulation_commit(&svc())
                .map_err(emu(first))?;
            let welcome = out
                .welcome
                .ok_or_else(|| BenchError::Unexpected("no Welcome".into()))?;
            for (who, bundle, key) in others {
                let client =
                    EmulatorClient::join(&svc(), &welcome, &bundle, key, credential(user), NOW)
                        .map_err(emu(who))?;
                devices.insert(
                    who.serial,
                    Device {
                        client,
                        in_groups: true,
                    },
                );
            }
        }
        devices.insert(
            0,
            Device {
                client: creator,
                in_groups: true,
            },
        );
        let n = self.layout.devices;
        *self.user(user)? = devices;
        if let Some(s) = self.next_serial.get_mut(user as usize) {
            *s = n;
        }
        Ok(())
    }

    /// Device 0 of `user` uploads `count` KeyPackages with a `KeyPackageUpload` Commit that
    /// its siblings process.
    fn upload(&mut self, user: u32, count: usize) -> Result<Vec<KeyPackage>, BenchError> {
        let first = DeviceId { user, serial: 0 };
        let suite = self.layout.suite;
        let sender = self.device(first)?;
        let (out, kps) = sender
            .publish_key_packages(&svc(), suite, lifetime(), count, CommitOptions::new(), NOW)
            .map_err(emu(first))?;
        sender
            .confirm_emulation_commit(&svc())
            .map_err(emu(first))?;
        let commit = out.commit.to_bytes()?;
        for (serial, d) in self.user(user)?.iter_mut() {
            if *serial != 0 {
                d.client
                    .process_emulation(&svc(), &commit, NOW)
                    .map_err(emu(DeviceId {
                        user,
                        serial: *serial,
                    }))?;
            }
        }
        Ok(kps)
    }
}

impl World for VirtualWorld {
    fn setup(&mut self, progress: &ProgressBar) -> Result<(), BenchError> {
        let mut uploaded: Vec<VecDeque<KeyPackage>> = Vec::new();
        for user in 0..self.layout.users() {
            self.emulation_group(user)?;
            let count = self.layout.groups_of(user).len();
            uploaded.push(if count > 0 {
                self.upload(user, count)?.into()
            } else {
                VecDeque::new()
            });
        }
        for g in 0..self.layout.members.len() {
            let gid = Layout::group_id(g);
            let members = self.layout.members.get(g).cloned().unwrap_or_default();
            let mut creator = Group::create(
                &svc(),
                GroupConfig::default(),
                gid.clone(),
                self.layout.suite,
                own_leaf("creator".into(), self.layout.suite)?,
                lifetime(),
                vec![],
            )
            .map_err(|source| BenchError::Group {
                who: CREATOR,
                source,
            })?;
            let mut options = CommitOptions::new();
            for &user in &members {
                let kp = uploaded
                    .get_mut(user as usize)
                    .and_then(VecDeque::pop_front)
                    .ok_or_else(|| BenchError::Unexpected(format!("user {user}: no KeyPackage")))?;
                options = options.proposal(Proposal::add(kp));
            }
            let g_err = |source| BenchError::Group {
                who: CREATOR,
                source,
            };
            let out = creator.commit(&svc(), options, NOW).map_err(g_err)?;
            creator.merge_pending_commit().map_err(g_err)?;
            let welcome = out
                .welcome
                .ok_or_else(|| BenchError::Unexpected("no Welcome".into()))?;
            for who in self.group_devices(g) {
                self.device(who)?
                    .join_from_welcome_by_ref(&svc(), &welcome, NOW)
                    .map_err(emu(who))?;
            }
            // The creator leaves: the first member removes its leaf 0.
            if let Some(&first) = members.first() {
                let by = DeviceId {
                    user: first,
                    serial: 0,
                };
                self.commit_in_group(g, by, vec![Proposal::remove(0)], &mut Meter::default())?;
            }
            progress.inc(1);
        }
        Ok(())
    }

    fn remove_device(
        &mut self,
        user: u32,
        meter: &mut Meter,
        progress: &ProgressBar,
    ) -> Result<(), BenchError> {
        let serials = self.serials_in_groups(user);
        let (actor, removed_id) = super::actor_and_removed(user, &serials)?;
        let removed = removed_id.serial;
        let removed_leaf = self
            .device(removed_id)?
            .emulation_group()
            .own_leaf_index()
            .0;
        // The emulation-group Commit removing the device.
        let sender = self.device(actor)?;
        let commit = meter.time(actor, || {
            let out = sender
                .remove_emulator(&svc(), removed_leaf, NOW)
                .map_err(emu(actor))?;
            sender
                .confirm_emulation_commit(&svc())
                .map_err(emu(actor))?;
            Ok::<_, BenchError>(out.commit.to_bytes()?)
        })?;
        meter.up(actor, commit.len());
        self.user(user)?.remove(&removed);
        let siblings: Vec<u32> = self.user(user)?.keys().copied().collect();
        for serial in siblings {
            let who = DeviceId { user, serial };
            if who == actor {
                continue;
            }
            meter.down(who, commit.len());
            let client = self.device(who)?;
            meter
                .time(who, || client.process_emulation(&svc(), &commit, NOW))
                .map_err(emu(who))?;
        }
        // The post-compromise step: a Commit with path, from the new emulation epoch, in
        // every group of the virtual client.
        self.update_all_groups_of(user, actor, meter, progress)
    }

    fn add_device(
        &mut self,
        user: u32,
        meter: &mut Meter,
        progress: &ProgressBar,
    ) -> Result<(), BenchError> {
        let serials = self.serials_in_groups(user);
        let Some(&actor) = serials.first() else {
            return Err(BenchError::Unexpected(format!("user {user} has no device")));
        };
        let actor = DeviceId {
            user,
            serial: actor,
        };
        let serial = self.next_serial.get(user as usize).copied().unwrap_or(0);
        let new = DeviceId { user, serial };
        let suite = self.layout.suite;
        let (bundle, key) = meter.time(new, || emulator_key_package(new, suite))?;
        let kp_len = encoded_len(MlsMessageBody::KeyPackage(bundle.key_package.clone()))?;
        meter.up(new, kp_len);
        meter.down(actor, kp_len);
        let sender = self.device(actor)?;
        let (commit, welcome) = meter.time(actor, || {
            let out = sender
                .add_emulator(&svc(), bundle.key_package.clone(), NOW)
                .map_err(emu(actor))?;
            sender
                .confirm_emulation_commit(&svc())
                .map_err(emu(actor))?;
            let welcome = out
                .welcome
                .ok_or_else(|| BenchError::Unexpected("no Welcome".into()))?;
            Ok::<_, BenchError>((out.commit.to_bytes()?, welcome))
        })?;
        let welcome_len = encoded_len(MlsMessageBody::Welcome(welcome.clone()))?;
        meter.up(actor, commit.len());
        meter.up(actor, welcome_len);
        let siblings: Vec<u32> = self.user(user)?.keys().copied().collect();
        for s in siblings {
            let who = DeviceId { user, serial: s };
            if who == actor {
                continue;
            }
            meter.down(who, commit.len());
            let client = self.device(who)?;
            meter
                .time(who, || client.process_emulation(&svc(), &commit, NOW))
                .map_err(emu(who))?;
        }
        meter.down(new, welcome_len);
        let client = meter
            .time(new, || {
                EmulatorClient::join(&svc(), &welcome, &bundle, key, credential(user), NOW)
            })
            .map_err(emu(new))?;
        self.user(user)?.insert(
            serial,
            Device {
                client,
                in_groups: false,
            },
        );
        // The state transfer (row 12 (a)): an emulation-group application message with the
        // state of every higher-level group, read by every sibling (to no effect but the
        // new device's).
        let sender = self.device(actor)?;
        let transfer = meter.time(actor, || {
            let m = sender.device_state_message(&svc()).map_err(emu(actor))?;
            Ok::<_, BenchError>(m.to_bytes()?)
        })?;
        meter.up(actor, transfer.len());
        let siblings: Vec<u32> = self.user(user)?.keys().copied().collect();
        for s in siblings {
            let who = DeviceId { user, serial: s };
            if who == actor {
                continue;
            }
            meter.down(who, transfer.len());
            let client = self.device(who)?;
            meter
                .time(who, || client.process_emulation(&svc(), &transfer, NOW))
                .map_err(emu(who))?;
        }
        if let Some(d) = self.user(user)?.get_mut(&serial) {
            d.in_groups = true;
        }
        if let Some(s) = self.next_serial.get_mut(user as usize) {
            *s += 1;
        }
        progress.inc(self.layout.groups_of(user).len() as u64);
        Ok(())
    }

    fn update(&mut self, meter: &mut Meter, progress: &ProgressBar) -> Result<(), BenchError> {
        for g in 0..self.layout.members.len() {
            let members = self.layout.members.get(g).cloned().unwrap_or_default();
            for user in members {
                let serials = self.serials_in_groups(user);
                let Some(&serial) = serials.get(g % serials.len().max(1)) else {
                    continue;
                };
                self.commit_in_group(g, DeviceId { user, serial }, vec![], meter)?;
                progress.inc(1);
            }
        }
        Ok(())
    }

    fn pcs(&mut self, meter: &mut Meter, progress: &ProgressBar) -> Result<(), BenchError> {
        for user in 0..self.layout.users() {
            let Some(&first) = self.serials_in_groups(user).first() else {
                continue;
            };
            let actor = DeviceId {
                user,
                serial: first,
            };
            // An emulation-group Commit with path: a new emulation epoch, from which every
            // device derives the virtual client's next leaf secrets.
            let sender = self.device(actor)?;
            let commit = meter.time(actor, || {
                let out = sender
                    .commit_emulation(&svc(), CommitOptions::new().with_path(), NOW)
                    .map_err(emu(actor))?;
                sender
                    .confirm_emulation_commit(&svc())
                    .map_err(emu(actor))?;
                Ok::<_, BenchError>(out.commit.to_bytes()?)
            })?;
            meter.up(actor, commit.len());
            let siblings: Vec<u32> = self.user(user)?.keys().copied().collect();
            for serial in siblings {
                let who = DeviceId { user, serial };
                if who == actor {
                    continue;
                }
                meter.down(who, commit.len());
                let client = self.device(who)?;
                meter
                    .time(who, || client.process_emulation(&svc(), &commit, NOW))
                    .map_err(emu(who))?;
            }
            self.update_all_groups_of(user, actor, meter, progress)?;
        }
        Ok(())
    }

    fn messages(
        &mut self,
        count: u32,
        meter: &mut Meter,
        progress: &ProgressBar,
    ) -> Result<(), BenchError> {
        for g in 0..self.layout.members.len() {
            let gid = Layout::group_id(g);
            let devices = self.group_devices(g);
            for k in 0..count {
                let Some(&by) = devices.get(k as usize % devices.len().max(1)) else {
                    continue;
                };
                let text = payload(by, k);
                let sender = self.device(by)?;
                let message = meter.time(by, || {
                    let m = sender
                        .send_application(&svc(), &gid, &text)
                        .map_err(emu(by))?;
                    sender.confirm_sent(&svc(), &gid, &m).map_err(emu(by))?;
                    Ok::<_, BenchError>(m.to_bytes()?)
                })?;
                meter.up(by, message.len());
                for &who in &devices {
                    if who == by {
                        continue;
                    }
                    meter.down(who, message.len());
                    let client = self.device(who)?;
                    let processed = meter
                        .time(who, || client.process(&svc(), &gid, &message, NOW))
                        .map_err(emu(who))?;
                    super::expect_text(who, by, &processed, &text)?;
                }
                progress.inc(1);
            }
        }
        Ok(())
    }

    fn devices(&self) -> u32 {
        self.users.iter().map(|d| d.len() as u32).sum()
    }

    fn trees(&self) -> Result<Vec<TreeStats>, BenchError> {
        (0..self.layout.members.len())
            .map(|g| {
                let who = self
                    .group_devices(g)
                    .into_iter()
                    .next()
                    .ok_or_else(|| BenchError::Unexpected(format!("group {g} is empty")))?;
                let group = self
                    .users
                    .get(who.user as usize)
                    .and_then(|d| d.get(&who.serial))
                    .and_then(|d| d.client.group(&Layout::group_id(g)))
                    .ok_or_else(|| BenchError::Unexpected(format!("{who} not in group {g}")))?;
                TreeStats::of(group)
            })
            .collect()
    }

    fn check(&self, after: &'static str) -> Result<usize, BenchError> {
        let mut checks = 0;
        for g in 0..self.layout.members.len() {
            let gid = Layout::group_id(g);
            let mut values = Vec::new();
            for who in self.group_devices(g) {
                let client = self
                    .users
                    .get(who.user as usize)
                    .and_then(|d| d.get(&who.serial))
                    .map(|d| &d.client)
                    .ok_or_else(|| BenchError::Unexpected(format!("no device {who}")))?;
                let group = client
                    .group(&gid)
                    .ok_or_else(|| BenchError::Unexpected(format!("{who} not in group {g}")))?;
                if !client.leaf_is_consistent(&svc(), &gid).map_err(emu(who))? {
                    return Err(BenchError::LeafInconsistent { who, group: g });
                }
                values.push((who, group.epoch_authenticator()));
            }
            agree(Mode::Virtual, g, after, &values)?;
            checks += 1;
        }
        Ok(checks)
    }
}
