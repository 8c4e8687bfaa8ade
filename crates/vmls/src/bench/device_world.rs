//! The per-device run: every device is a plain member with its own leaf.

use std::collections::BTreeMap;

use indicatif::ProgressBar;
use mls_engine::codec::{Credential, MlsMessageBody, Proposal};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, SignatureKeyPair};
use mls_engine::group::{CommitOptions, Group, GroupConfig, GroupError, ProcessedMessage};
use mls_engine::messages::{KeyPackageBundle, KeyPackageParams};

use super::{
    agree, encoded_len, lifetime, own_leaf, payload, svc, BenchError, DeviceId, Layout, Meter,
    Mode, TreeStats, World, CREATOR, CRYPTO, NOW,
};

/// Every device its own member.
pub(super) struct DeviceWorld {
    layout: Layout,
    /// Per group, its members.
    groups: Vec<BTreeMap<DeviceId, Group>>,
    /// Per user, the serials of its devices.
    devices: Vec<Vec<u32>>,
}

fn grp(who: DeviceId) -> impl FnOnce(GroupError) -> BenchError {
    move |source| BenchError::Group { who, source }
}

/// A fresh KeyPackage of `who` in `cipher_suite` and its signature key.
fn key_package(
    who: DeviceId,
    cipher_suite: CipherSuite,
) -> Result<(KeyPackageBundle, SignatureKeyPair), BenchError> {
    let suite = CRYPTO.suite(cipher_suite)?;
    let key = suite.signature_generate_key_pair()?;
    let bundle = KeyPackageParams::new(
        cipher_suite,
        Credential::basic(who.to_string().into_bytes()),
        lifetime(),
    )
    .build_fresh(suite, &key)?;
    Ok((bundle, key))
}

impl DeviceWorld {
    pub(super) fn new(layout: Layout) -> Self {
        let users = layout.users();
        let d = layout.devices;
        Self {
            groups: Vec::new(),
            devices: (0..users).map(|_| (0..d).collect()).collect(),
            layout,
        }
    }

    fn members(&mut self, g: usize) -> Result<&mut BTreeMap<DeviceId, Group>, BenchError> {
        self.groups
            .get_mut(g)
            .ok_or_else(|| BenchError::Unexpected(format!("no group {g}")))
    }

    /// `by` commits `options` in group `g`; every other member processes it. Returns the
    /// Welcome, if any.
    fn commit_in_group(
        &mut self,
        g: usize,
        by: DeviceId,
        options: CommitOptions,
        meter: &mut Meter,
    ) -> Result<Option<mls_engine::codec::Welcome>, BenchError> {
        let members = self.members(g)?;
        let sender = members
            .get_mut(&by)
            .ok_or_else(|| BenchError::Unexpected(format!("{by} not in group {g}")))?;
        let (commit, welcome) = meter.time(by, || {
            let out = sender.commit(&svc(), options, NOW).map_err(grp(by))?;
            sender.merge_pending_commit().map_err(grp(by))?;
            Ok::<_, BenchError>((out.commit.to_bytes()?, out.welcome))
        })?;
        meter.up(by, commit.len());
        for (&who, member) in members.iter_mut() {
            if who == by {
                continue;
            }
            meter.down(who, commit.len());
            let processed = meter
                .time(who, || member.process_bytes(&svc(), &commit, NOW))
                .map_err(grp(who))?;
            if !matches!(processed, ProcessedMessage::Commit { .. }) {
                return Err(BenchError::Unexpected(format!("{who}: not a commit")));
            }
        }
        Ok(welcome)
    }

    fn serials(&self, user: u32) -> Vec<u32> {
        self.devices.get(user as usize).cloned().unwrap_or_default()
    }
}

impl World for DeviceWorld {
    fn setup(&mut self, progress: &ProgressBar) -> Result<(), BenchError> {
        for g in 0..self.layout.members.len() {
            let members = self.layout.members.get(g).cloned().unwrap_or_default();
            let mut creator = Group::create(
                &svc(),
                GroupConfig::default(),
                Layout::group_id(g),
                self.layout.suite,
                own_leaf("creator".into(), self.layout.suite)?,
                lifetime(),
                vec![],
            )
            .map_err(grp(CREATOR))?;
            let mut joiners = Vec::new();
            let mut options = CommitOptions::new();
            for &user in &members {
                for serial in self.serials(user) {
                    let who = DeviceId { user, serial };
                    let (bundle, key) = key_package(who, self.layout.suite)?;
                    options = options.proposal(Proposal::add(bundle.key_package.clone()));
                    joiners.push((who, bundle, key));
                }
            }
            let out = creator.commit(&svc(), options, NOW).map_err(grp(CREATOR))?;
            creator.merge_pending_commit().map_err(grp(CREATOR))?;
            let welcome = out
                .welcome
                .ok_or_else(|| BenchError::Unexpected("no Welcome".into()))?;
            let mut group = BTreeMap::new();
            for (who, bundle, key) in joiners {
                let joined = Group::join_from_welcome(
                    &svc(),
                    GroupConfig::default(),
                    &welcome,
                    &bundle,
                    key,
                    None,
                    NOW,
                )
                .map_err(grp(who))?;
                group.insert(who, joined);
            }
            self.groups.push(group);
            // The creator leaves: the first member removes its leaf 0.
            if let Some(&first) = members.first() {
                let by = DeviceId {
                    user: first,
                    serial: 0,
                };
                self.commit_in_group(
                    g,
                    by,
                    CommitOptions::new()
                        .proposal(Proposal::remove(0))
                        .with_path(),
                    &mut Meter::default(),
                )?;
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
        let serials = self.serials(user);
        let (actor, removed) = super::actor_and_removed(user, &serials)?;
        for g in self.layout.groups_of(user) {
            let leaf = self
                .members(g)?
                .remove(&removed)
                .ok_or_else(|| BenchError::Unexpected(format!("{removed} not in group {g}")))?
                .own_leaf_index()
                .0;
            self.commit_in_group(
                g,
                actor,
                CommitOptions::new()
                    .proposal(Proposal::remove(leaf))
                    .with_path(),
                meter,
            )?;
            progress.inc(1);
        }
        if let Some(d) = self.devices.get_mut(user as usize) {
            d.retain(|s| *s != removed.serial);
        }
        Ok(())
    }

    fn add_device(
        &mut self,
        user: u32,
        meter: &mut Meter,
        progress: &ProgressBar,
    ) -> Result<(), BenchError> {
        let serials = self.serials(user);
        let (Some(&actor), Some(&last)) = (serials.first(), serials.last()) else {
            return Err(BenchError::Unexpected(format!("user {user} has no device")));
        };
        let actor = DeviceId {
            user,
            serial: actor,
        };
        // A removed device's serial is never reused: the next one after every serial ever
        // used (the removed device was the last).
        let serial = (last + 1).max(self.layout.devices);
        let new = DeviceId { user, serial };
        let suite = self.layout.suite;
        for g in self.layout.groups_of(user) {
            let (bundle, key) = meter.time(new, || key_package(new, suite))?;
            let kp_len = encoded_len(MlsMessageBody::KeyPackage(bundle.key_package.clone()))?;
            meter.up(new, kp_len);
            meter.down(actor, kp_len);
            let welcome = self
                .commit_in_group(
                    g,
                    actor,
                    CommitOptions::new().proposal(Proposal::add(bundle.key_package.clone())),
                    meter,
                )?
                .ok_or_else(|| BenchError::Unexpected("no Welcome".into()))?;
            let welcome_len = encoded_len(MlsMessageBody::Welcome(welcome.clone()))?;
            meter.up(actor, welcome_len);
            meter.down(new, welcome_len);
            let joined = meter
                .time(new, || {
                    Group::join_from_welcome(
                        &svc(),
                        GroupConfig::default(),
                        &welcome,
                        &bundle,
                        key,
                        None,
                        NOW,
                    )
                })
                .map_err(grp(new))?;
            self.members(g)?.insert(new, joined);
            progress.inc(1);
        }
        if let Some(d) = self.devices.get_mut(user as usize) {
            d.push(serial);
        }
        Ok(())
    }

    fn update(&mut self, meter: &mut Meter, progress: &ProgressBar) -> Result<(), BenchError> {
        for g in 0..self.layout.members.len() {
            let members = self.layout.members.get(g).cloned().unwrap_or_default();
            for user in members {
                let serials = self.serials(user);
                let Some(&serial) = serials.get(g % serials.len().max(1)) else {
                    continue;
                };
                self.commit_in_group(
                    g,
                    DeviceId { user, serial },
                    CommitOptions::new().with_path(),
                    meter,
                )?;
                progress.inc(1);
            }
        }
        Ok(())
    }

    fn pcs(&mut self, meter: &mut Meter, progress: &ProgressBar) -> Result<(), BenchError> {
        for g in 0..self.layout.members.len() {
            let members = self.layout.members.get(g).cloned().unwrap_or_default();
            for user in members {
                for serial in self.serials(user) {
                    self.commit_in_group(
                        g,
                        DeviceId { user, serial },
                        CommitOptions::new().with_path(),
                        meter,
                    )?;
                }
                progress.inc(1);
            }
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
            let members = self.members(g)?;
            let devices: Vec<DeviceId> = members.keys().copied().collect();
            for k in 0..count {
                let Some(&by) = devices.get(k as usize % devices.len().max(1)) else {
                    continue;
                };
                let text = payload(by, k);
                let sender = members
                    .get_mut(&by)
                    .ok_or_else(|| BenchError::Unexpected(format!("{by} not in group {g}")))?;
                let message = meter.time(by, || {
                    let m = sender
                        .encrypt_application(&svc(), &text, &[])
                        .map_err(grp(by))?;
                    Ok::<_, BenchError>(m.to_bytes()?)
                })?;
                meter.up(by, message.len());
                for (&who, member) in members.iter_mut() {
                    if who == by {
                        continue;
                    }
                    meter.down(who, message.len());
                    let processed = meter
                        .time(who, || member.process_bytes(&svc(), &message, NOW))
                        .map_err(grp(who))?;
                    super::expect_text(who, by, &processed, &text)?;
                }
                progress.inc(1);
            }
        }
        Ok(())
    }

    fn devices(&self) -> u32 {
        self.devices.iter().map(|d| d.len() as u32).sum()
    }

    fn trees(&self) -> Result<Vec<TreeStats>, BenchError> {
        self.groups
            .iter()
            .enumerate()
            .map(|(g, members)| {
                let group = members
                    .values()
                    .next()
                    .ok_or_else(|| BenchError::Unexpected(format!("group {g} is empty")))?;
                TreeStats::of(group)
            })
            .collect()
    }

    fn check(&self, after: &'static str) -> Result<usize, BenchError> {
        for (g, members) in self.groups.iter().enumerate() {
            let values: Vec<(DeviceId, &[u8])> = members
                .iter()
                .map(|(who, group)| (*who, group.epoch_authenticator()))
                .collect();
            agree(Mode::PerDevice, g, after, &values)?;
        }
        Ok(self.groups.len())
    }
}
