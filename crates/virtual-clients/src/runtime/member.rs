//! The MLS side of a device, for both kinds: a plain client (its own `Group`s, one leaf per
//! device) and an emulator client of a virtual client ([`EmulatorClient`]). The runtime calls
//! these operations; each one either succeeds or leaves the member unchanged.

use std::collections::BTreeMap;

use mls_engine::codec::{
    Credential, GroupInfo, KeyPackage, MlsMessage, MlsMessageBody, Proposal, Welcome,
};
use mls_engine::crypto::{CryptoProvider, SignatureAlgorithm, SignatureKeyPair};
use mls_engine::group::{
    CommitOptions, ExternalCommitOptions, Group, GroupConfig, ProcessedMessage, Services,
};
use mls_engine::messages::{KeyPackageBundle, KeyPackageParams};
use vmls_protocol::{ClientId, GroupId, Payload};

use super::error::RuntimeError;
use crate::emulator::EmulatorClient;

/// A plain client: one leaf per device.
#[derive(Clone, Debug)]
pub(super) struct PlainMember {
    /// The device's signature key (its leaves and KeyPackages).
    pub(super) signature_key: SignatureKeyPair,
    /// Its groups.
    pub(super) groups: BTreeMap<GroupId, Group>,
    /// Its unused KeyPackages.
    pub(super) key_packages: Vec<KeyPackageBundle>,
    /// Groups joined by an external commit the service has not accepted yet.
    pub(super) pending_external: BTreeMap<GroupId, Group>,
}

/// An emulator client of a virtual client.
#[derive(Clone, Debug)]
pub(super) struct EmulatorMember {
    /// The virtual client.
    pub(super) virtual_client: ClientId,
    /// Its emulation group.
    pub(super) emulation_group: GroupId,
    /// `None` until this device joined the emulation group.
    pub(super) client: Option<EmulatorClient>,
    /// The device's KeyPackage for the emulation group and its signature key, until the
    /// Welcome comes.
    pub(super) joining: Option<(KeyPackageBundle, SignatureKeyPair)>,
}

/// The MLS state of a device.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // One per device.
pub(super) enum Member {
    /// A plain client.
    Plain(PlainMember),
    /// An emulator client.
    Emulator(EmulatorMember),
}

/// An encoded Commit and what goes with it to the service.
pub(super) struct CommitBytes {
    /// The epoch it was made in.
    pub(super) epoch: u64,
    /// The MLSMessage.
    pub(super) commit: Payload,
    /// The Welcome MLSMessage, if it adds anyone.
    pub(super) welcome: Option<Payload>,
    /// The GroupInfo MLSMessage of the new epoch.
    pub(super) group_info: Option<Payload>,
}

/// The RFC 8446 `SignatureScheme` code of a suite's signature algorithm.
pub(super) fn signature_scheme(algorithm: SignatureAlgorithm) -> u16 {
    algorithm.signature_scheme()
}

/// Encodes an MLSMessage body.
pub(super) fn encode_body(body: MlsMessageBody) -> Result<Payload, RuntimeError> {
    Ok(MlsMessage::new(body).to_bytes()?.into())
}

/// Decodes a Welcome MLSMessage.
pub(super) fn decode_welcome(bytes: &[u8]) -> Result<Welcome, RuntimeError> {
    match MlsMessage::decode(bytes)?.body {
        MlsMessageBody::Welcome(w) => Ok(w),
        _ => Err(RuntimeError::UnexpectedMessage("a Welcome")),
    }
}

/// The epoch in the header of a PublicMessage or PrivateMessage.
pub(super) fn message_epoch(bytes: &[u8]) -> Option<u64> {
    match MlsMessage::decode(bytes).ok()?.body {
        MlsMessageBody::PublicMessage(m) => Some(m.content.epoch),
        MlsMessageBody::PrivateMessage(m) => Some(m.epoch),
        _ => None,
    }
}

/// Decodes a GroupInfo MLSMessage.
pub(super) fn decode_group_info(bytes: &[u8]) -> Result<GroupInfo, RuntimeError> {
    match MlsMessage::decode(bytes)?.body {
        MlsMessageBody::GroupInfo(g) => Ok(g),
        _ => Err(RuntimeError::UnexpectedMessage("a GroupInfo")),
    }
}

/// Decodes a KeyPackage MLSMessage.
pub(super) fn decode_key_package(bytes: &[u8]) -> Result<KeyPackage, RuntimeError> {
    match MlsMessage::decode(bytes)?.body {
        MlsMessageBody::KeyPackage(k) => Ok(k),
        _ => Err(RuntimeError::UnexpectedMessage("a KeyPackage")),
    }
}

/// The member identity of a credential.
pub(super) fn identity_of(credential: &Credential) -> ClientId {
    ClientId::new(credential.basic_identity().unwrap_or_default())
}

/// A group's roster: (leaf index, identity, leaf encryption key).
pub(super) fn roster(group: &Group) -> Vec<(u32, ClientId, Vec<u8>)> {
    group
        .members()
        .into_iter()
        .map(|m| {
            (
                m.index.0,
                identity_of(&m.credential),
                m.leaf_node.encryption_key.as_slice().to_vec(),
            )
        })
        .collect()
}

/// The options of every Commit the runtime makes: with path, returning the new epoch's
/// GroupInfo with `external_pub` (the service keeps it for its public view and for joiners).
fn commit_options(proposals: Vec<Proposal>) -> CommitOptions {
    let mut options = CommitOptions::new();
    options.proposals = proposals;
    options.force_path = true;
    options.group_info = true;
    options.external_pub = true;
    options
}

impl Member {
    /// The emulator client, once joined.
    pub(super) fn emulator(&self) -> Option<&EmulatorClient> {
        match self {
            Self::Emulator(e) => e.client.as_ref(),
            Self::Plain(_) => None,
        }
    }

    /// The emulator client, once joined.
    pub(super) fn emulator_mut(&mut self) -> Result<&mut EmulatorClient, RuntimeError> {
        match self {
            Self::Emulator(e) => e.client.as_mut().ok_or(RuntimeError::NotJoined),
            Self::Plain(_) => Err(RuntimeError::NotAnEmulator),
        }
    }

    /// The emulation group's id, for an emulator client.
    pub(super) fn emulation_group(&self) -> Option<&GroupId> {
        match self {
            Self::Emulator(e) => Some(&e.emulation_group),
            Self::Plain(_) => None,
        }
    }

    /// The virtual client, for an emulator client.
    pub(super) fn virtual_client(&self) -> Option<&ClientId> {
        match self {
            Self::Emulator(e) => Some(&e.virtual_client),
            Self::Plain(_) => None,
        }
    }

    /// A higher-level group.
    pub(super) fn group(&self, group_id: &GroupId) -> Option<&Group> {
        match self {
            Self::Plain(p) => p.groups.get(group_id),
            Self::Emulator(e) => e.client.as_ref()?.group(group_id.as_bytes()),
        }
    }

    /// The ids of the higher-level groups held.
    pub(super) fn group_ids(&self) -> Vec<GroupId> {
        match self {
            Self::Plain(p) => p.groups.keys().cloned().collect(),
            Self::Emulator(e) => e
                .client
                .as_ref()
                .map(|c| c.group_ids().map(GroupId::new).collect())
                .unwrap_or_default(),
        }
    }

    /// Creates a higher-level group; returns its GroupInfo (with the ratchet tree and
    /// `external_pub`).
    pub(super) fn create_group(
        &mut self,
        services: &Services<'_>,
        group_id: &GroupId,
        own: impl FnOnce() -> Result<mls_engine::group::OwnLeaf, RuntimeError>,
        config: &super::DeviceConfig,
    ) -> Result<Payload, RuntimeError> {
        if self.group(group_id).is_some() {
            return Err(RuntimeError::GroupExists);
        }
        match self {
            Self::Plain(p) => {
                let group = Group::create(
                    services,
                    GroupConfig::default(),
                    group_id.as_bytes().to_vec(),
                    config.cipher_suite,
                    own()?,
                    config.lifetime,
                    vec![],
                )?;
                let info = group.group_info(services, true, true)?;
                p.groups.insert(group_id.clone(), group);
                encode_body(MlsMessageBody::GroupInfo(info))
            }
            Self::Emulator(_) => {
                let client = self.emulator_mut()?;
                client.create_group(
                    services,
                    group_id.as_bytes().to_vec(),
                    config.cipher_suite,
                    config.lifetime,
                )?;
                let group = client
                    .group(group_id.as_bytes())
                    .ok_or(RuntimeError::UnknownGroup)?;
                let info = group.group_info(services, true, true)?;
                encode_body(MlsMessageBody::GroupInfo(info))
            }
        }
    }

    /// A pending Commit of `proposals` (with path) in a higher-level group.
    pub(super) fn commit(
        &mut self,
        services: &Services<'_>,
        group_id: &GroupId,
        proposals: Vec<Proposal>,
        now: u64,
    ) -> Result<CommitBytes, RuntimeError> {
        let epoch = self
            .group(group_id)
            .ok_or(RuntimeError::UnknownGroup)?
            .epoch();
        let out = match self {
            Self::Plain(p) => p
                .groups
                .get_mut(group_id)
                .ok_or(RuntimeError::UnknownGroup)?
                .commit(services, commit_options(proposals), now)?,
            Self::Emulator(_) => {
                self.emulator_mut()?
                    .commit(services, group_id.as_bytes(), proposals, now)?
            }
        };
        Ok(CommitBytes {
            epoch,
            commit: out.commit.to_bytes()?.into(),
            welcome: out
                .welcome
                .map(|w| encode_body(MlsMessageBody::Welcome(w)))
                .transpose()?,
            group_info: out
                .group_info
                .map(|g| encode_body(MlsMessageBody::GroupInfo(g)))
                .transpose()?,
        })
    }

    /// Merges the pending Commit in a higher-level group.
    pub(super) fn confirm_commit(&mut self, group_id: &GroupId) -> Result<(), RuntimeError> {
        match self {
            Self::Plain(p) => p
                .groups
                .get_mut(group_id)
                .ok_or(RuntimeError::UnknownGroup)?
                .merge_pending_commit()?,
            Self::Emulator(_) => self.emulator_mut()?.confirm_commit(group_id.as_bytes())?,
        }
        Ok(())
    }

    /// Drops the pending Commit in a higher-level group (if any).
    pub(super) fn abandon_commit(&mut self, group_id: &GroupId) {
        match self {
            Self::Plain(p) => {
                if let Some(g) = p.groups.get_mut(group_id) {
                    g.clear_pending_commit();
                }
            }
            Self::Emulator(e) => {
                if let Some(c) = e.client.as_mut() {
                    // Only `UnknownGroup` can fail, and then there is nothing to drop.
                    let _ = c.abandon_commit(group_id.as_bytes());
                }
            }
        }
    }

    /// An application message in a higher-level group.
    pub(super) fn encrypt(
        &mut self,
        services: &Services<'_>,
        group_id: &GroupId,
        data: &[u8],
    ) -> Result<Payload, RuntimeError> {
        let message = match self {
            Self::Plain(p) => p
                .groups
                .get_mut(group_id)
                .ok_or(RuntimeError::UnknownGroup)?
                .encrypt_application(services, data, &[])?,
            Self::Emulator(_) => {
                self.emulator_mut()?
                    .send_application(services, group_id.as_bytes(), data)?
            }
        };
        Ok(message.to_bytes()?.into())
    }

    /// The service accepted our application message: an emulator client deletes its
    /// generation's key (H3).
    pub(super) fn confirm_sent(
        &mut self,
        services: &Services<'_>,
        group_id: &GroupId,
        message: &[u8],
    ) -> Result<(), RuntimeError> {
        if let Self::Emulator(_) = self {
            let message = MlsMessage::decode(message)?;
            self.emulator_mut()?
                .confirm_sent(services, group_id.as_bytes(), &message)?;
        }
        Ok(())
    }

    /// A Proposal removing our own leaf (to leave), plain clients.
    pub(super) fn propose_leave(
        &mut self,
        services: &Services<'_>,
        group_id: &GroupId,
    ) -> Result<Payload, RuntimeError> {
        match self {
            Self::Plain(p) => {
                let group = p
                    .groups
                    .get_mut(group_id)
                    .ok_or(RuntimeError::UnknownGroup)?;
                let own = group.own_leaf_index();
                let (message, _) = group.propose_remove(services, own)?;
                Ok(message.to_bytes()?.into())
            }
            Self::Emulator(_) => Ok(self
                .emulator_mut()?
                .leave_group(services, group_id.as_bytes())?
                .to_bytes()?
                .into()),
        }
    }

    /// Processes a message of a higher-level group.
    pub(super) fn process(
        &mut self,
        services: &Services<'_>,
        group_id: &GroupId,
        bytes: &[u8],
        now: u64,
    ) -> Result<ProcessedMessage, RuntimeError> {
        match self {
            Self::Plain(p) => Ok(p
                .groups
                .get_mut(group_id)
                .ok_or(RuntimeError::UnknownGroup)?
                .process_bytes(services, bytes, now)?),
            Self::Emulator(_) => {
                Ok(self
                    .emulator_mut()?
                    .process(services, group_id.as_bytes(), bytes, now)?)
            }
        }
    }

    /// Joins a higher-level group from a Welcome to one of our KeyPackages.
    pub(super) fn join(
        &mut self,
        services: &Services<'_>,
        welcome: &Welcome,
        now: u64,
    ) -> Result<GroupId, RuntimeError> {
        match self {
            Self::Plain(p) => {
                let pos = p
                    .key_packages
                    .iter()
                    .position(|b| welcome.secrets_for(&b.reference).is_some())
                    .ok_or(RuntimeError::UnknownKeyPackage)?;
                let bundle = p
                    .key_packages
                    .get(pos)
                    .ok_or(RuntimeError::UnknownKeyPackage)?;
                let group = Group::join_from_welcome(
                    services,
                    GroupConfig::default(),
                    welcome,
                    bundle,
                    p.signature_key.clone(),
                    None,
                    now,
                )?;
                let group_id = GroupId::new(group.group_id());
                if p.groups
                    .get(&group_id)
                    .is_some_and(|g| matches!(g.status(), mls_engine::group::GroupStatus::Active))
                {
                    return Err(RuntimeError::GroupExists);
                }
                p.key_packages.remove(pos);
                p.groups.insert(group_id.clone(), group);
                Ok(group_id)
            }
            Self::Emulator(_) => Ok(GroupId::new(
                self.emulator_mut()?
                    .join_from_welcome_by_ref(services, welcome, now)?,
            )),
        }
    }

    /// Builds an external commit into the group of `group_info` (replacing our old leaf if we
    /// hold the group); the joined group stays pending until
    /// [`Member::confirm_external_join`]. Returns the commit and the new epoch's GroupInfo.
    pub(super) fn begin_external_join(
        &mut self,
        services: &Services<'_>,
        group_info: &GroupInfo,
        own: impl FnOnce() -> Result<mls_engine::group::OwnLeaf, RuntimeError>,
        now: u64,
    ) -> Result<(Payload, Payload), RuntimeError> {
        let group_id = GroupId::new(group_info.group_context.group_id.as_slice());
        match self {
            Self::Plain(p) => {
                let options = ExternalCommitOptions {
                    resync_remove: p.groups.get(&group_id).map(Group::own_leaf_index),
                    ..ExternalCommitOptions::default()
                };
                let (group, commit) = Group::join_by_external_commit(
                    services,
                    GroupConfig::default(),
                    group_info,
                    None,
                    own()?,
                    options,
                    now,
                )?;
                let info = group.group_info(services, true, true)?;
                p.pending_external.insert(group_id, group);
                Ok((
                    commit.to_bytes()?.into(),
                    encode_body(MlsMessageBody::GroupInfo(info))?,
                ))
            }
            Self::Emulator(_) => {
                let client = self.emulator_mut()?;
                let commit = client.begin_external_join(services, group_info, None, now)?;
                let info = client
                    .pending_external_join(group_id.as_bytes())
                    .ok_or(RuntimeError::UnknownGroup)?
                    .group_info(services, true, true)?;
                Ok((
                    commit.to_bytes()?.into(),
                    encode_body(MlsMessageBody::GroupInfo(info))?,
                ))
            }
        }
    }

    /// Installs our accepted external join.
    pub(super) fn confirm_external_join(&mut self, group_id: &GroupId) -> Result<(), RuntimeError> {
        match self {
            Self::Plain(p) => {
                let group = p
                    .pending_external
                    .remove(group_id)
                    .ok_or(RuntimeError::UnknownGroup)?;
                p.groups.insert(group_id.clone(), group);
            }
            Self::Emulator(_) => self
                .emulator_mut()?
                .confirm_external_join(group_id.as_bytes())?,
        }
        Ok(())
    }

    /// Drops our refused external join (the old state of the group stays).
    pub(super) fn abandon_external_join(&mut self, group_id: &GroupId) {
        match self {
            Self::Plain(p) => {
                p.pending_external.remove(group_id);
            }
            Self::Emulator(e) => {
                if let Some(c) = e.client.as_mut() {
                    // Only "nothing pending" can fail: then there is nothing to drop.
                    let _ = c.abandon_external_join(group_id.as_bytes());
                }
            }
        }
    }

    /// Forgets a group this member was removed from (plain clients; an emulator client keeps
    /// the inactive group until the emulator can forget groups).
    pub(super) fn forget(&mut self, group_id: &GroupId) {
        if let Self::Plain(p) = self {
            p.groups.remove(group_id);
        }
    }

    /// New KeyPackages of a plain client (kept with their private keys).
    pub(super) fn plain_key_packages(
        &mut self,
        crypto: &dyn CryptoProvider,
        identity: &ClientId,
        config: &super::DeviceConfig,
        count: u32,
    ) -> Result<Vec<Payload>, RuntimeError> {
        let Self::Plain(p) = self else {
            return Err(RuntimeError::NotAnEmulator);
        };
        let suite = crypto.suite(config.cipher_suite)?;
        let mut made = Vec::new();
        let mut bytes = Vec::new();
        for _ in 0..count {
            let bundle = KeyPackageParams::new(
                config.cipher_suite,
                Credential::basic(identity.as_bytes().to_vec()),
                config.lifetime,
            )
            .build_fresh(suite, &p.signature_key)?;
            bytes.push(encode_body(MlsMessageBody::KeyPackage(
                bundle.key_package.clone(),
            ))?);
            made.push(bundle);
        }
        p.key_packages.extend(made);
        Ok(bytes)
    }
}
