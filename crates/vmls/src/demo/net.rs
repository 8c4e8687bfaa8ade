//! The demo's use of the §5.1 delivery service: every message, Welcome, KeyPackage and GroupInfo
//! of a run goes through one [`InMemoryDeliveryService`], and this wrapper counts, by kind, the
//! bytes clients upload to it ("sent") and download from it ("received"):
//!
//! * a group message: sent once by its sender; received once per mailbox it is put into (the
//!   sender's own echo included: the service delivers it, and an emulator client learns its
//!   virtual client's sequence from it);
//! * a Welcome: sent once with its Commit; received once per mailbox (every emulator client
//!   of a welcomed virtual client);
//! * a KeyPackage: sent when published to the directory; received when taken from it;
//! * a GroupInfo: sent when published (with a Commit or after one); received when an external
//!   joiner fetches it, and when the service attaches it to an external Commit of a virtual
//!   client for its emulator clients.
//!
//! Everything in an emulation group (and the KeyPackages of devices joining one) counts as
//! [`Kind::Emulation`]. At the end the group-message and mailbox totals are checked against the
//! service's own [`DeliveryStats`].

use std::collections::BTreeSet;

use delivery_service::{
    ClientId, Delivered, DeliveryService, DeliveryStats, GroupId, InMemoryDeliveryService,
    KeyPackageEntry, MessageKind, SendRequest, Sequence, ServiceError,
};
use mls_engine::codec::{GroupInfo, KeyPackage, MlsMessage, MlsMessageBody, Welcome};

use super::{Counter, DemoError, Traffic};

/// What a counted item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// KeyPackages for higher-level groups.
    KeyPackages,
    /// Welcomes into higher-level groups.
    Welcomes,
    /// Commits in higher-level groups.
    Commits,
    /// Application messages (and proposals, which the demo does not send).
    Application,
    /// GroupInfos.
    GroupInfos,
    /// Anything of an emulation group.
    Emulation,
}

impl Traffic {
    fn counter(&mut self, kind: Kind) -> &mut Counter {
        match kind {
            Kind::KeyPackages => &mut self.key_packages,
            Kind::Welcomes => &mut self.welcomes,
            Kind::Commits => &mut self.commits,
            Kind::Application => &mut self.application,
            Kind::GroupInfos => &mut self.group_infos,
            Kind::Emulation => &mut self.emulation,
        }
    }

    fn sent(&mut self, kind: Kind, size: usize) {
        let c = self.counter(kind);
        c.messages += 1;
        c.sent += size as u64;
    }

    fn received(&mut self, kind: Kind, size: usize) {
        self.counter(kind).received += size as u64;
    }
}

/// A refusal of the service, for a request of `who`.
pub(super) fn refused(who: &ClientId) -> impl FnOnce(ServiceError) -> DemoError + '_ {
    move |source| DemoError::Delivery {
        who: who.to_string(),
        source,
    }
}

/// `body` as an encoded MLSMessage.
pub(super) fn encode(body: MlsMessageBody) -> Result<Vec<u8>, DemoError> {
    Ok(MlsMessage::new(body).to_bytes()?)
}

/// The Welcome in an encoded MLSMessage, if it is one.
pub(super) fn decode_welcome(bytes: &[u8]) -> Result<Option<Welcome>, DemoError> {
    Ok(match MlsMessage::decode(bytes)?.body {
        MlsMessageBody::Welcome(w) => Some(w),
        _ => None,
    })
}

/// The GroupInfo in an encoded MLSMessage, if it is one.
pub(super) fn decode_group_info(bytes: &[u8]) -> Result<Option<GroupInfo>, DemoError> {
    Ok(match MlsMessage::decode(bytes)?.body {
        MlsMessageBody::GroupInfo(g) => Some(g),
        _ => None,
    })
}

/// The delivery service of one run and what went through it.
pub(super) struct Net {
    ds: InMemoryDeliveryService,
    traffic: Traffic,
    emulation_groups: BTreeSet<GroupId>,
    /// Bytes of accepted group messages (the service's `bytes_accepted`).
    accepted: u64,
    /// Bytes of group messages and Welcomes drained from mailboxes (the service's
    /// `bytes_delivered`, once every mailbox is empty).
    delivered: u64,
}

impl Net {
    pub(super) fn new() -> Self {
        Self {
            ds: InMemoryDeliveryService::new(),
            traffic: Traffic::default(),
            emulation_groups: BTreeSet::new(),
            accepted: 0,
            delivered: 0,
        }
    }

    fn kind_of(&self, group: &GroupId, kind: Kind) -> Kind {
        if self.emulation_groups.contains(group) {
            Kind::Emulation
        } else {
            kind
        }
    }

    /// Registers a plain client (a device, or Carol).
    pub(super) fn register(&mut self, client: &ClientId) -> Result<(), DemoError> {
        self.ds
            .register_client(client.clone())
            .map_err(refused(client))
    }

    /// Registers a virtual client with its first emulator client.
    pub(super) fn register_virtual_client(
        &mut self,
        virtual_client: &ClientId,
        first: &ClientId,
    ) -> Result<(), DemoError> {
        self.ds
            .register_virtual_client(virtual_client.clone(), std::slice::from_ref(first))
            .map_err(refused(first))
    }

    /// Adds an emulator client to a virtual client (draft §5.4).
    pub(super) fn add_emulator(
        &mut self,
        virtual_client: &ClientId,
        emulator: &ClientId,
    ) -> Result<(), DemoError> {
        self.ds
            .add_emulator(virtual_client, emulator)
            .map_err(refused(emulator))
    }

    /// Creates the log of a group just created (epoch 0) by `creator` (or the virtual client
    /// it emulates); `emulation` marks an emulation group.
    pub(super) fn create_group(
        &mut self,
        creator: &ClientId,
        group: &str,
        as_virtual_client: Option<&ClientId>,
        emulation: bool,
    ) -> Result<(), DemoError> {
        let id = GroupId::new(group);
        self.ds
            .create_group(creator, id.clone(), as_virtual_client, 0)
            .map_err(refused(creator))?;
        if emulation {
            self.emulation_groups.insert(id);
        }
        Ok(())
    }

    /// Appends a message to `group`'s log; counts the message, its Welcome and its GroupInfo.
    pub(super) fn send(
        &mut self,
        group: &str,
        sender: &ClientId,
        request: SendRequest,
    ) -> Result<Sequence, DemoError> {
        let id = GroupId::new(group);
        let kind = match request.kind {
            MessageKind::Commit { .. } | MessageKind::ExternalCommit { .. } => Kind::Commits,
            MessageKind::Proposal | MessageKind::Application => Kind::Application,
        };
        let sizes = (
            request.message.len(),
            request.welcome.as_ref().map(|w| w.message.len()),
            request.group_info.as_ref().map(|p| p.len()),
        );
        let sequence = self
            .ds
            .send(&id, sender, request)
            .map_err(refused(sender))?;
        let (message, welcome, group_info) = sizes;
        self.traffic.sent(self.kind_of(&id, kind), message);
        self.accepted += message as u64;
        if let Some(size) = welcome {
            self.traffic.sent(self.kind_of(&id, Kind::Welcomes), size);
        }
        if let Some(size) = group_info {
            self.traffic.sent(Kind::GroupInfos, size);
        }
        Ok(sequence)
    }

    /// Takes everything waiting in `client`'s mailbox; counts it as received.
    pub(super) fn drain(&mut self, client: &ClientId) -> Result<Vec<Delivered>, DemoError> {
        let items = self.ds.drain(client).map_err(refused(client))?;
        for item in &items {
            match item {
                Delivered::Welcome(w) => {
                    let kind = self.kind_of(&w.group_id, Kind::Welcomes);
                    self.traffic.received(kind, w.message.len());
                    self.delivered += w.message.len() as u64;
                }
                Delivered::Message { message, .. } => {
                    let kind = match message.kind {
                        MessageKind::Commit { .. } | MessageKind::ExternalCommit { .. } => {
                            Kind::Commits
                        }
                        MessageKind::Proposal | MessageKind::Application => Kind::Application,
                    };
                    let kind = self.kind_of(&message.group_id, kind);
                    self.traffic.received(kind, message.message.len());
                    self.delivered += message.message.len() as u64;
                    if let Some(info) = message
                        .emulator_view
                        .as_ref()
                        .and_then(|v| v.group_info.as_ref())
                    {
                        self.traffic.received(Kind::GroupInfos, info.len());
                    }
                }
            }
        }
        Ok(items)
    }

    /// Publishes `key_packages` of `owner` (a device, or a virtual client `publisher`
    /// emulates) to the directory. Returns their encoded sizes.
    pub(super) fn publish_key_packages(
        &mut self,
        publisher: &ClientId,
        owner: &ClientId,
        key_packages: &[KeyPackage],
        kind: Kind,
    ) -> Result<Vec<usize>, DemoError> {
        let encoded = key_packages
            .iter()
            .map(|kp| encode(MlsMessageBody::KeyPackage(kp.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let sizes: Vec<usize> = encoded.iter().map(Vec::len).collect();
        self.ds
            .publish_key_packages(
                publisher,
                owner,
                encoded.into_iter().map(KeyPackageEntry::ordinary).collect(),
            )
            .map_err(refused(publisher))?;
        for size in &sizes {
            self.traffic.sent(kind, *size);
        }
        Ok(sizes)
    }

    /// Takes one KeyPackage of `owner` from the directory. Returns it and its encoded size.
    pub(super) fn consume_key_package(
        &mut self,
        owner: &ClientId,
        kind: Kind,
    ) -> Result<(KeyPackage, usize), DemoError> {
        let bytes = self.ds.consume_key_package(owner).map_err(refused(owner))?;
        self.traffic.received(kind, bytes.len());
        match MlsMessage::decode(&bytes)?.body {
            MlsMessageBody::KeyPackage(kp) => Ok((kp, bytes.len())),
            _ => Err(DemoError::Delivery {
                who: owner.to_string(),
                source: ServiceError::NoKeyPackage {
                    owner: owner.clone(),
                },
            }),
        }
    }

    /// Publishes the GroupInfo of `group`'s current `epoch`.
    pub(super) fn publish_group_info(
        &mut self,
        publisher: &ClientId,
        as_virtual_client: Option<&ClientId>,
        group: &str,
        epoch: u64,
        group_info: GroupInfo,
    ) -> Result<usize, DemoError> {
        let bytes = encode(MlsMessageBody::GroupInfo(group_info))?;
        let size = bytes.len();
        self.ds
            .publish_group_info(
                publisher,
                as_virtual_client,
                &GroupId::new(group),
                epoch,
                bytes.into(),
            )
            .map_err(refused(publisher))?;
        self.traffic.sent(Kind::GroupInfos, size);
        Ok(size)
    }

    /// The GroupInfo of `group`'s current epoch, fetched by `who` for an external join: its
    /// epoch, the GroupInfo and its encoded size.
    pub(super) fn group_info(
        &mut self,
        who: &ClientId,
        group: &str,
    ) -> Result<(u64, GroupInfo, usize), DemoError> {
        let (epoch, bytes) = self
            .ds
            .group_info(&GroupId::new(group))
            .map_err(refused(who))?;
        self.traffic.received(Kind::GroupInfos, bytes.len());
        let info = decode_group_info(&bytes)?.ok_or_else(|| DemoError::Delivery {
            who: who.to_string(),
            source: ServiceError::NoGroupInfo {
                group_id: GroupId::new(group),
            },
        })?;
        Ok((epoch, info, bytes.len()))
    }

    /// The traffic counted and the service's own counters, checked against each other.
    pub(super) fn totals(&self) -> Result<(Traffic, DeliveryStats), DemoError> {
        let stats = self.ds.stats();
        for (what, counted, service) in [
            (
                "group-message bytes accepted",
                self.accepted,
                stats.bytes_accepted,
            ),
            (
                "bytes delivered to mailboxes",
                self.delivered,
                stats.bytes_delivered,
            ),
            ("requests refused", 0, stats.rejected),
        ] {
            if counted != service {
                return Err(DemoError::Accounting {
                    what,
                    counted,
                    service,
                });
            }
        }
        Ok((self.traffic, stats))
    }
}
