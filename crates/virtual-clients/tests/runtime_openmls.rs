//! The device runtime in a mixed group with an OpenMLS 0.9.2 member (issue 10 "Interop"):
//! Alice is one virtual client on three runtime devices, Carol a runtime plain client, Bob an
//! OpenMLS client; everything goes through the in-memory delivery service, Bob's messages too
//! (he reads his mailbox and sends with the protocol's requests).
//!
//! Carol creates the group and adds Alice (a KeyPackage uploaded with `KeyPackageUpload`) and
//! Bob (his OpenMLS KeyPackage from the directory); messages and commits go both ways; then one
//! of Alice's devices is removed from her emulation group: the runtime rotates the virtual
//! client's leaf (new HPKE key, new signature key) in the group, Bob accepts the rotation, and
//! the removed device holds nothing of the group. After every step all participants agree on
//! the epoch and the epoch authenticator.
//!
//! Time: OpenMLS checks lifetimes against the system clock, so `now` is the current time.

use std::time::{SystemTime, UNIX_EPOCH};

use delivery_service::InMemoryDeliveryService;
use mls_engine::codec::{decode_exact, KeyPackage, Lifetime, MlsMessage, MlsMessageBody};
use mls_engine::crypto::CipherSuite;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::MlsGroup;
use virtual_clients::runtime::{Device, DeviceConfig, Event, Intent};
use vmls_protocol::{
    Ack, ClientId, Delivered, GroupId, KeyPackageEntry, PublishKeyPackages, ReadMailbox,
    RegisterDevice, Request, Response, SendRequest,
};

mod common;
use common::P;

#[allow(dead_code)]
#[path = "../../mls-engine/tests/interop_openmls/harness.rs"]
mod harness;
use harness::{OpenMlsClient, Processed};

fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A device configuration OpenMLS accepts (lifetimes of at most 12 weeks).
fn config(now: u64) -> DeviceConfig {
    let mut config = DeviceConfig::new(CipherSuite(1), now);
    config.lifetime = Lifetime {
        not_before: now - 3600,
        not_after: now + 28 * 24 * 3600,
    };
    config
}

/// Bob, an OpenMLS client talking to the delivery service.
struct Bob {
    client: OpenMlsClient,
    group: Option<MlsGroup>,
    after: Option<vmls_protocol::MailboxCursor>,
    read: Vec<Vec<u8>>,
}

struct World {
    now: u64,
    service: InMemoryDeliveryService,
    /// Alice's devices (0 creates the emulation group), then Carol.
    devices: Vec<Device>,
    events: Vec<Vec<Event>>,
    bob: Bob,
    group: GroupId,
}

const CAROL: usize = 3;

impl World {
    fn pump(&mut self, i: usize) {
        let now = self.now;
        let d = &mut self.devices[i];
        while let Some(t) = d.poll_transmit() {
            let response = self.service.handle(&d.id().clone(), t.request, now);
            d.handle_response(t.id, response, now).unwrap();
        }
        while let Some(e) = d.poll_event() {
            if let Event::IntentFailed { .. } | Event::NeedsResync { .. } | Event::Rejected { .. } =
                &e
            {
                panic!("{}: {e:?}", d.id());
            }
            self.events[i].push(e);
        }
    }

    fn intend(&mut self, i: usize, intent: Intent) {
        let now = self.now;
        self.devices[i].intend(intent, now);
        self.pump(i);
    }

    fn bob_id() -> ClientId {
        ClientId::new("bob")
    }

    fn bob_request(&mut self, request: Request) -> Response {
        self.service.handle(&Self::bob_id(), request, self.now)
    }

    /// Bob reads his mailbox and processes it with OpenMLS.
    fn bob_reads(&mut self) {
        let Response::Mailbox(items) = self.bob_request(Request::ReadMailbox(ReadMailbox {
            after: self.bob.after,
            max_items: 0,
        })) else {
            panic!("no mailbox");
        };
        for item in items {
            self.bob.after = Some(item.cursor);
            match item.item {
                Delivered::Welcome(w) => self.bob.group = Some(self.bob.client.join(&w.message)),
                Delivered::Message { message, .. } => {
                    if message.sender == Self::bob_id() {
                        continue;
                    }
                    let group = self.bob.group.as_mut().expect("bob is in the group");
                    match self.bob.client.process(group, &message.message) {
                        Processed::Application(text) => self.bob.read.push(text),
                        Processed::Commit | Processed::Proposal | Processed::Own => {}
                    }
                }
            }
        }
        if let Some(up_to) = self.bob.after {
            assert!(matches!(
                self.bob_request(Request::Ack(Ack { up_to })),
                Response::Done(_)
            ));
        }
    }

    /// Every runtime device reads its mailbox until nothing is left; Bob too.
    fn settle(&mut self) {
        for _ in 0..20 {
            let mut quiet = true;
            for i in 0..self.devices.len() {
                let id = self.devices[i].id().clone();
                if self.service.pending(&id) > 0 {
                    quiet = false;
                    let now = self.now;
                    self.devices[i].sync(now);
                    self.pump(i);
                }
            }
            if self.service.pending(&Self::bob_id()) > 0 {
                quiet = false;
                self.bob_reads();
            }
            if quiet {
                return;
            }
        }
        panic!("does not settle");
    }

    /// Every holder of the group agrees with Bob on the epoch and the epoch authenticator.
    fn check(&self, holders: &[usize]) {
        let bob = self.bob.group.as_ref().unwrap();
        let view = self.bob.client.view(bob);
        for &i in holders {
            let g = self.devices[i].group(&self.group).expect("holds the group");
            assert_eq!(g.epoch(), view.epoch, "{}", self.devices[i].id());
            assert_eq!(
                g.epoch_authenticator(),
                view.epoch_authenticator.as_slice(),
                "{}",
                self.devices[i].id()
            );
        }
    }

    /// The signature key of Alice's leaf, as Bob (OpenMLS) sees it.
    fn alice_signature_key(&self) -> Vec<u8> {
        let bob = self.bob.group.as_ref().unwrap();
        bob.members()
            .find(|m| {
                let bytes = m.credential.serialized_content().to_vec();
                bytes.ends_with(b"alice")
            })
            .map(|m| m.signature_key.clone())
            .expect("alice is a member")
    }

    fn received(&self, i: usize, text: &[u8]) -> bool {
        self.events[i]
            .iter()
            .any(|e| matches!(e, Event::MessageReceived { data, .. } if data == text))
    }
}

fn setup() -> World {
    let now = wall_clock();
    let mut w = World {
        now,
        service: InMemoryDeliveryService::new(),
        devices: Vec::new(),
        events: Vec::new(),
        bob: Bob {
            client: OpenMlsClient::new(b"bob", 1),
            group: None,
            after: None,
            read: Vec::new(),
        },
        group: GroupId::new("mixed"),
    };
    let emulation = GroupId::new("alice-emulation");
    let alice = ClientId::new("alice");
    w.devices.push(
        Device::new_virtual_client(
            &P,
            ClientId::new("alice-1"),
            alice.clone(),
            emulation.clone(),
            config(now),
        )
        .unwrap(),
    );
    w.events.push(Vec::new());
    w.pump(0);
    for n in 2..=3 {
        let id = ClientId::new(format!("alice-{n}"));
        w.devices.push(
            Device::new_joining_emulator(
                &P,
                id.clone(),
                alice.clone(),
                emulation.clone(),
                config(now),
            )
            .unwrap(),
        );
        w.events.push(Vec::new());
        w.pump(n - 1);
        w.intend(0, Intent::AddDevice { device: id });
        w.settle();
    }
    w.intend(1, Intent::PublishKeyPackages { count: 2 });
    w.devices
        .push(Device::new_plain(&P, ClientId::new("carol"), config(now)).unwrap());
    w.events.push(Vec::new());
    w.pump(CAROL);
    // Bob registers and publishes an OpenMLS KeyPackage.
    let key = w.bob.client.credential.signature_key.as_slice().to_vec();
    assert!(matches!(
        w.bob_request(Request::RegisterDevice(RegisterDevice {
            device: World::bob_id(),
            signature_scheme: 0x0807,
            signature_key: key.into(),
        })),
        Response::Done(_)
    ));
    let kp_bytes = w
        .bob
        .client
        .key_package()
        .key_package()
        .tls_serialize_detached()
        .unwrap();
    let kp: KeyPackage = decode_exact(&kp_bytes).unwrap();
    let kp = MlsMessage::new(MlsMessageBody::KeyPackage(kp))
        .to_bytes()
        .unwrap();
    assert!(matches!(
        w.bob_request(Request::PublishKeyPackages(PublishKeyPackages {
            owner: World::bob_id(),
            key_packages: vec![KeyPackageEntry::ordinary(kp)],
        })),
        Response::Done(_)
    ));
    w.settle();
    let g = w.group.clone();
    w.intend(
        CAROL,
        Intent::CreateGroup {
            group_id: g.clone(),
        },
    );
    w.intend(
        CAROL,
        Intent::AddMembers {
            group_id: g,
            members: vec![alice, World::bob_id()],
        },
    );
    w.settle();
    w.check(&[0, 1, 2, CAROL]);
    w
}

#[test]
fn messages_and_commits_go_both_ways_through_the_runtime() {
    let mut w = setup();
    let g = w.group.clone();
    w.intend(
        1,
        Intent::Send {
            group_id: g.clone(),
            data: b"from alice-2".to_vec(),
        },
    );
    w.settle();
    assert!(w.bob.read.contains(&b"from alice-2".to_vec()));
    assert!(w.received(0, b"from alice-2") && w.received(2, b"from alice-2"));
    w.intend(
        2,
        Intent::Update {
            group_id: g.clone(),
        },
    );
    w.settle();
    w.check(&[0, 1, 2, CAROL]);
    // Bob's own commit and message, sent through the service.
    let bob = w.bob.group.as_mut().unwrap();
    let epoch = bob.epoch().as_u64();
    let commit = w.bob.client.self_update(bob);
    // Every Commit travels with the GroupInfo of the epoch it creates (issue 14).
    let group_info = harness::export_group_info(&w.bob.client, bob);
    let r = w.bob_request(
        SendRequest::commit(epoch, commit)
            .with_group_info(group_info)
            .to_group(g.clone()),
    );
    assert!(matches!(r, Response::Accepted(_)), "{r:?}");
    let bob = w.bob.group.as_mut().unwrap();
    let text = w.bob.client.send_application(bob, b"from bob");
    let r = w.bob_request(SendRequest::application(text).to_group(g.clone()));
    assert!(matches!(r, Response::Accepted(_)), "{r:?}");
    w.settle();
    w.check(&[0, 1, 2, CAROL]);
    for i in [0, 1, 2, CAROL] {
        assert!(w.received(i, b"from bob"), "{}", w.devices[i].id());
    }
}

#[test]
fn a_device_removal_rotates_the_virtual_clients_leaf_for_openmls_members() {
    let mut w = setup();
    let g = w.group.clone();
    let signature_before = w.alice_signature_key();
    assert_eq!(
        w.devices[0].emulator().unwrap().known_key_packages().len(),
        1
    );
    let epoch_before = w.bob.group.as_ref().unwrap().epoch().as_u64();
    w.intend(
        0,
        Intent::RemoveDevice {
            device: ClientId::new("alice-3"),
        },
    );
    w.settle();
    // The removed device learns it and holds nothing of the virtual client.
    assert!(w.events[2]
        .iter()
        .any(|e| matches!(e, Event::DeviceRemoved { device } if device.as_bytes() == b"alice-3")));
    assert!(w.devices[2].group(&g).is_none());
    // The KeyPackage of Alice that was not used is retired by the remaining devices (the
    // removed one knew its keys); a Welcome to it would be refused.
    for i in [0, 1] {
        let known = w.devices[i].emulator().unwrap().known_key_packages();
        assert!(known.is_empty(), "{}", w.devices[i].id());
    }
    // Bob processed the rotation: a new epoch, a new signature key at Alice's leaf.
    let bob_epoch = w.bob.group.as_ref().unwrap().epoch().as_u64();
    assert_eq!(bob_epoch, epoch_before + 1);
    assert_ne!(w.alice_signature_key(), signature_before);
    w.check(&[0, 1, CAROL]);
    // The remaining devices and Bob go on.
    w.intend(
        1,
        Intent::Send {
            group_id: g.clone(),
            data: b"after the removal".to_vec(),
        },
    );
    w.settle();
    assert!(w.bob.read.contains(&b"after the removal".to_vec()));
    assert!(w.received(0, b"after the removal"));
    assert!(!w.received(2, b"after the removal"));
}
