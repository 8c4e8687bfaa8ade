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
//!
//! Every request is one a device runtime ([`Runtime`]) made: [`Net::pump`] hands each to the
//! service, counts it and its answer, and feeds the answer back.

use std::collections::BTreeSet;

use delivery_service::{
    ClientId, Delivered, DeliveryStats, GroupId, InMemoryDeliveryService, MessageKind, Request,
    Response,
};
use virtual_clients::runtime::Device as Runtime;

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

/// What one accepted request carried, for the step log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Record {
    /// A group message (with its Welcome and GroupInfo), accepted.
    Sent {
        /// The group.
        group: GroupId,
        /// What it is.
        kind: MessageKind,
        /// Its size.
        size: usize,
        /// The Welcome's size.
        welcome: Option<usize>,
        /// The GroupInfo's size.
        group_info: Option<usize>,
    },
    /// KeyPackages published, their sizes.
    Published(Vec<usize>),
    /// A KeyPackage taken from the directory, its size.
    Taken(usize),
    /// A GroupInfo fetched for an external join: its epoch and size.
    Fetched {
        /// Its epoch.
        epoch: u64,
        /// Its size.
        size: usize,
    },
}

fn message_kind(kind: MessageKind) -> Kind {
    match kind {
        MessageKind::Commit { .. } | MessageKind::ExternalCommit { .. } => Kind::Commits,
        MessageKind::Proposal | MessageKind::Application => Kind::Application,
    }
}

/// The delivery service of one run and what went through it.
pub(super) struct Net {
    ds: InMemoryDeliveryService,
    traffic: Traffic,
    /// The emulation groups (their traffic is [`Kind::Emulation`]).
    pub(super) emulation_groups: BTreeSet<GroupId>,
    /// Devices whose own KeyPackages are for an emulation group.
    pub(super) emulation_key_packages: BTreeSet<ClientId>,
    /// Bytes of accepted group messages (the service's `bytes_accepted`).
    accepted: u64,
    /// Bytes of group messages and Welcomes read from mailboxes (the service's
    /// `bytes_delivered`, once every mailbox is empty).
    delivered: u64,
}

impl Net {
    pub(super) fn new() -> Self {
        Self {
            ds: InMemoryDeliveryService::new(),
            traffic: Traffic::default(),
            emulation_groups: BTreeSet::new(),
            emulation_key_packages: BTreeSet::new(),
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

    fn key_package_kind(&self, owner: &ClientId) -> Kind {
        if self.emulation_key_packages.contains(owner) {
            Kind::Emulation
        } else {
            Kind::KeyPackages
        }
    }

    /// Items waiting in `client`'s mailbox.
    pub(super) fn pending(&self, client: &ClientId) -> usize {
        self.ds.pending(client)
    }

    /// Hands every request of `device` to the service and its answer back, counting both.
    pub(super) fn pump(
        &mut self,
        device: &mut Runtime,
        now: u64,
    ) -> Result<Vec<Record>, DemoError> {
        let mut records = Vec::new();
        while let Some(transmit) = device.poll_transmit() {
            let id = device.id().clone();
            let request = transmit.request.clone();
            let response = self.ds.handle(&id, transmit.request, now);
            self.count(&request, &response, &mut records);
            device
                .handle_response(transmit.id, response, now)
                .map_err(|source| DemoError::Runtime {
                    who: id.to_string(),
                    source,
                })?;
        }
        Ok(records)
    }

    /// Counts an accepted request and what its answer downloaded.
    fn count(&mut self, request: &Request, response: &Response, records: &mut Vec<Record>) {
        if matches!(response, Response::Refused(_)) {
            return;
        }
        match (request, response) {
            (Request::Send(s), _) => {
                let send = &s.send;
                let size = send.message.len();
                self.traffic
                    .sent(self.kind_of(&s.group_id, message_kind(send.kind)), size);
                self.accepted += size as u64;
                let welcome = send.welcome.as_ref().map(|w| w.message.len());
                if let Some(w) = welcome {
                    self.traffic
                        .sent(self.kind_of(&s.group_id, Kind::Welcomes), w);
                }
                let group_info = send.group_info.as_ref().map(|g| g.len());
                if let Some(g) = group_info {
                    self.traffic
                        .sent(self.kind_of(&s.group_id, Kind::GroupInfos), g);
                }
                records.push(Record::Sent {
                    group: s.group_id.clone(),
                    kind: send.kind,
                    size,
                    welcome,
                    group_info,
                });
            }
            (Request::CreateGroup(c), _) => {
                self.traffic.sent(
                    self.kind_of(&c.group_id, Kind::GroupInfos),
                    c.group_info.len(),
                );
            }
            (Request::PublishKeyPackages(p), _) => {
                let kind = self.key_package_kind(&p.owner);
                let sizes: Vec<usize> =
                    p.key_packages.iter().map(|k| k.key_package.len()).collect();
                for size in &sizes {
                    self.traffic.sent(kind, *size);
                }
                records.push(Record::Published(sizes));
            }
            (Request::ConsumeKeyPackage(c), Response::KeyPackage(kp)) => {
                self.traffic
                    .received(self.key_package_kind(&c.owner), kp.len());
                records.push(Record::Taken(kp.len()));
            }
            (Request::FetchGroupInfo(_), Response::GroupInfo(body)) => {
                self.traffic
                    .received(Kind::GroupInfos, body.group_info.len());
                records.push(Record::Fetched {
                    epoch: body.epoch,
                    size: body.group_info.len(),
                });
            }
            (Request::ReadMailbox(_), Response::Mailbox(items)) => {
                for item in items {
                    self.count_delivered(&item.item);
                }
            }
            _ => {}
        }
    }

    fn count_delivered(&mut self, item: &Delivered) {
        match item {
            Delivered::Welcome(w) => {
                let kind = self.kind_of(&w.group_id, Kind::Welcomes);
                self.traffic.received(kind, w.message.len());
                self.delivered += w.message.len() as u64;
            }
            Delivered::Message { message, .. } => {
                let kind = self.kind_of(&message.group_id, message_kind(message.kind));
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
