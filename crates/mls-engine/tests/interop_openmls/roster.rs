//! A mixed group of OpenMLS and mls-engine members as the tests see it: a [`Roster`] fans
//! each message out to every other member (as a delivery service would) and checks after
//! every step that all members agree on the epoch, an exporter output, the epoch
//! authenticator, the tree hash, the confirmed transcript hash and the member list.

use openmls::prelude::MlsGroup;

use crate::harness::{OpenMlsClient, Processed, View};
use crate::vmls::{wire_format, VmlsClient};
use mls_engine::codec::WireFormat;
use mls_engine::group::{Group, ProcessedMessage};

/// One member of a mixed group.
pub enum Member {
    /// An OpenMLS client and its group.
    OpenMls {
        /// The client.
        client: Box<OpenMlsClient>,
        /// Its group.
        group: Box<MlsGroup>,
    },
    /// An mls-engine client (its group inside).
    Vmls(Box<VmlsClient>),
}

/// What a member made of a message, OpenMLS's and the engine's answers brought together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A commit, applied; `removed_us` if it removed the receiver.
    Commit {
        /// Whether the commit removed the receiver.
        removed_us: bool,
    },
    /// A proposal, stored for the next commit.
    Proposal,
    /// Application data.
    Application(Vec<u8>),
}

impl Member {
    /// An OpenMLS member.
    pub fn openmls(client: OpenMlsClient, group: MlsGroup) -> Self {
        Member::OpenMls {
            client: Box::new(client),
            group: Box::new(group),
        }
    }

    /// An mls-engine member.
    pub fn vmls(client: VmlsClient) -> Self {
        Member::Vmls(Box::new(client))
    }

    /// The member's leaf index.
    pub fn leaf(&self) -> u32 {
        match self {
            Member::OpenMls { group, .. } => group.own_leaf_index().u32(),
            Member::Vmls(client) => client.leaf(),
        }
    }

    /// The member's view of the group.
    pub fn view(&self) -> View {
        match self {
            Member::OpenMls { client, group } => client.view(group),
            Member::Vmls(client) => client.view(),
        }
    }

    /// The engine client (panics for an OpenMLS member).
    pub fn as_vmls_client(&mut self) -> &mut VmlsClient {
        match self {
            Member::Vmls(client) => client,
            Member::OpenMls { .. } => panic!("not an mls-engine member"),
        }
    }

    /// Processes an encoded `MLSMessage`; a refusal is an `Err` naming the implementation.
    pub fn receive(&mut self, message: &[u8]) -> Result<Received, String> {
        match self {
            Member::OpenMls { client, group } => {
                let processed = client
                    .try_process(group, message)
                    .map_err(|e| format!("OpenMLS refused: {e}"))?;
                Ok(match processed {
                    Processed::Commit => Received::Commit {
                        removed_us: !group.is_active(),
                    },
                    Processed::Proposal => Received::Proposal,
                    Processed::Application(data) => Received::Application(data),
                    Processed::Own => return Err("OpenMLS saw its own message".into()),
                })
            }
            Member::Vmls(client) => {
                let processed = client
                    .try_process(message)
                    .map_err(|e| format!("mls-engine refused: {e} ({e:?})"))?;
                Ok(match processed {
                    ProcessedMessage::Commit {
                        removed_us, own, ..
                    } => {
                        if own {
                            return Err("mls-engine saw its own commit".into());
                        }
                        Received::Commit { removed_us }
                    }
                    ProcessedMessage::Proposal { .. } => Received::Proposal,
                    ProcessedMessage::Application { data, .. } => Received::Application(data),
                })
            }
        }
    }
}

/// A mixed group: named members, each with its own state.
pub struct Roster {
    /// The members, by name.
    pub members: Vec<(String, Member)>,
}

impl Roster {
    /// A roster with its first member.
    pub fn new(name: &str, member: Member) -> Self {
        Self {
            members: vec![(name.to_string(), member)],
        }
    }

    /// Adds a member (one that just joined).
    pub fn push(&mut self, name: &str, member: Member) {
        self.members.push((name.to_string(), member));
    }

    /// The position of `name`.
    fn position(&self, name: &str) -> usize {
        self.members
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// The member `name`.
    pub fn get(&mut self, name: &str) -> &mut Member {
        let i = self.position(name);
        &mut self.members[i].1
    }

    /// The leaf index of `name`.
    pub fn leaf(&mut self, name: &str) -> u32 {
        self.get(name).leaf()
    }

    /// Delivers `message` from `sender` to every other member and asserts each made
    /// `expected` of it (for commits: `removed_us` exactly for the members in `removed`).
    /// Removed members are then dropped from the roster.
    pub fn deliver(&mut self, step: &str, sender: &str, message: &[u8], removed: &[&str]) {
        let mut kind = None;
        for (name, member) in self.members.iter_mut() {
            if name == sender {
                continue;
            }
            let received = member.receive(message).unwrap_or_else(|e| {
                panic!("{step}: {name} could not process {sender}'s message: {e}")
            });
            if let Received::Commit { removed_us } = received {
                assert_eq!(
                    removed_us,
                    removed.contains(&name.as_str()),
                    "{step}: {name} removed_us"
                );
            }
            let this_kind = std::mem::discriminant(&received);
            if let Some(k) = kind {
                assert_eq!(k, this_kind, "{step}: members disagree on the message kind");
            }
            kind = Some(this_kind);
        }
        self.members.retain(|(n, _)| !removed.contains(&n.as_str()));
    }

    /// Delivers an application message from `sender` and asserts every other member reads
    /// `data`.
    pub fn deliver_application(&mut self, step: &str, sender: &str, message: &[u8], data: &[u8]) {
        for (name, member) in self.members.iter_mut() {
            if name == sender {
                continue;
            }
            let received = member.receive(message).unwrap_or_else(|e| {
                panic!("{step}: {name} could not read {sender}'s message: {e}")
            });
            assert_eq!(
                received,
                Received::Application(data.to_vec()),
                "{step}: {name} read {sender}'s application message"
            );
        }
    }

    /// Serialises the group state of every engine member and continues with the state
    /// decoded from those bytes (design hook H8), which must re-encode identically.
    pub fn reload_vmls_members(&mut self, step: &str) {
        for (name, member) in self.members.iter_mut() {
            if let Member::Vmls(client) = member {
                let bytes = client
                    .group()
                    .to_bytes()
                    .unwrap_or_else(|e| panic!("{step}: {name}'s state serialises: {e:?}"));
                let restored = Group::from_bytes(&bytes)
                    .unwrap_or_else(|e| panic!("{step}: {name}'s state deserialises: {e:?}"));
                assert_eq!(
                    restored.to_bytes().expect("re-encodes"),
                    bytes,
                    "{step}: {name}'s state re-encodes identically"
                );
                client.group = Some(restored);
            }
        }
    }

    /// Asserts every member is in `epoch` and all agree on the exporter output, epoch
    /// authenticator, tree hash, confirmed transcript hash, and member list, which has one
    /// leaf per roster member.
    pub fn check(&mut self, step: &str, epoch: u64) {
        self.reload_vmls_members(step);
        let (first_name, first) = &self.members[0];
        let reference = first.view();
        assert_eq!(reference.epoch, epoch, "{step}: {first_name}'s epoch");
        assert_eq!(
            reference.leaves.len(),
            self.members.len(),
            "{step}: {first_name} sees {:?} for {} members",
            reference.leaves,
            self.members.len()
        );
        for (name, member) in &self.members[1..] {
            let view = member.view();
            assert_eq!(
                view.epoch, reference.epoch,
                "{step}: {name} vs {first_name}: epoch"
            );
            assert_eq!(
                view.tree_hash, reference.tree_hash,
                "{step}: {name} vs {first_name}: tree hash"
            );
            assert_eq!(
                view.confirmed_transcript_hash, reference.confirmed_transcript_hash,
                "{step}: {name} vs {first_name}: confirmed transcript hash"
            );
            assert_eq!(
                view.leaves, reference.leaves,
                "{step}: {name} vs {first_name}: members"
            );
            assert_eq!(
                view.epoch_authenticator, reference.epoch_authenticator,
                "{step}: {name} vs {first_name}: epoch authenticator"
            );
            assert_eq!(
                view.exporter, reference.exporter,
                "{step}: {name} vs {first_name}: exporter output"
            );
        }
        let mut leaves: Vec<u32> = self.members.iter().map(|(_, m)| m.leaf()).collect();
        leaves.sort_unstable();
        assert_eq!(leaves, reference.leaves, "{step}: own leaf indices");
    }

    /// Every member sends one application message; all others must read it.
    pub fn exchange_application_messages(&mut self, step: &str) {
        let names: Vec<String> = self.members.iter().map(|(n, _)| n.clone()).collect();
        for name in names {
            let data = format!("{step}: hello from {name}").into_bytes();
            let message = match self.get(&name) {
                Member::OpenMls { client, group } => client.send_application(group, &data),
                Member::Vmls(client) => client.send_application(&data),
            };
            assert_eq!(
                wire_format(&message),
                WireFormat::MLS_PRIVATE_MESSAGE,
                "{step}: {name}'s application message framing"
            );
            self.deliver_application(step, &name, &message, &data);
        }
    }
}
