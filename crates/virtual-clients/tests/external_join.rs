//! Externally joining a higher-level group with the virtual client (draft §5.5.2), through the
//! in-memory delivery service:
//!
//! * emulator client A1 announces `ExternalJoin { group_id }` in the SafeAAD of an
//!   emulation-group Commit, then joins by external commit built from derived secrets (the
//!   ExternalInit's ephemeral key from `init_key_secret`, docs/decisions.md E-vc-ext1);
//! * the delivery service hands A2 and A3 the GroupInfo the commit was built from; they follow
//!   the commit into the new epoch; plain members process it as an ordinary external commit;
//!   everyone agrees, and the siblings then act as the virtual client (commit, send);
//! * resync: A2 rejoins the group the virtual client is already in (its old leaf removed);
//! * bad input: no announcement, a tampered commit, another epoch's GroupInfo — typed errors,
//!   each emulator client's state byte-identical.

use delivery_service::{
    ClientId, Delivered, DeliveryService, GroupId, GroupMessage, InMemoryDeliveryService,
    MessageKind, SendRequest, ServiceError, VcSequence,
};
use mls_engine::codec::{Credential, GroupInfo, MlsMessage, MlsMessageBody, Proposal};
use mls_engine::crypto::CipherSuite;
use mls_engine::group::{CommitOptions, Group, GroupConfig, GroupError, OwnLeaf, ProcessedMessage};
use mls_engine::messages::{HpkeKeySource, KeyPackageParams, LeafNodeParams};
use virtual_clients::emulator::{EmulatorClient, EmulatorError};

mod common;
use common::{lifetime, suite, svc, NOW};

const GROUP: &[u8] = b"external-join-group";
const SUITES: [CipherSuite; 3] = [CipherSuite(1), CipherSuite(2), CipherSuite(3)];

/// The world of one test: Alice's three emulator clients, plain Carol and Bob, the service.
struct World {
    ds: InMemoryDeliveryService,
    alice: Vec<EmulatorClient>,
    carol: Group,
    bob: Group,
    /// Per emulator: how many of Alice's messages in GROUP it has seen (the next VcSequence).
    vc_seen: u64,
}

fn id(name: &str) -> ClientId {
    ClientId::new(name)
}

fn gid() -> GroupId {
    GroupId::new(GROUP)
}

const DEVICES: [&str; 3] = ["a1", "a2", "a3"];

fn plain(cipher_suite: CipherSuite, name: &[u8]) -> (OwnLeaf, Credential) {
    let credential = Credential::basic(name.to_vec());
    (
        OwnLeaf {
            params: LeafNodeParams::new(cipher_suite, credential.clone()),
            encryption_key: HpkeKeySource::Generate,
            signature_key: suite(cipher_suite).signature_generate_key_pair().unwrap(),
        },
        credential,
    )
}

/// Alice's emulation group of three devices (messages passed directly: this test is about the
/// higher-level group).
fn alice(cipher_suite: CipherSuite) -> Vec<EmulatorClient> {
    common::emulators(cipher_suite, "alice", DEVICES.len())
}

fn group_info_bytes(info: GroupInfo) -> Vec<u8> {
    MlsMessage::new(MlsMessageBody::GroupInfo(info))
        .to_bytes()
        .unwrap()
}

fn decode_group_info(bytes: &[u8]) -> GroupInfo {
    match MlsMessage::decode(bytes).unwrap().body {
        MlsMessageBody::GroupInfo(info) => info,
        other => panic!("not a GroupInfo: {other:?}"),
    }
}

impl World {
    /// Carol creates GROUP and adds Bob; she publishes GroupInfos with tree and external_pub.
    fn new(cipher_suite: CipherSuite) -> Self {
        let mut ds = InMemoryDeliveryService::new();
        for name in ["carol", "bob"].iter().chain(DEVICES.iter()) {
            ds.register_client(id(name)).unwrap();
        }
        let devices: Vec<ClientId> = DEVICES.iter().map(|d| id(d)).collect();
        ds.register_virtual_client(id("alice"), &devices).unwrap();
        let (own, _) = plain(cipher_suite, b"carol");
        let mut carol = Group::create(
            &svc(),
            GroupConfig::default(),
            GROUP.to_vec(),
            cipher_suite,
            own,
            lifetime(),
            vec![],
        )
        .unwrap();
        ds.create_group(&id("carol"), gid(), None, 0).unwrap();
        let (bob_leaf, bob_credential) = plain(cipher_suite, b"bob");
        let bob_kp = KeyPackageParams::new(cipher_suite, bob_credential, lifetime())
            .with_leaf(bob_leaf.params.clone())
            .build_fresh(suite(cipher_suite), &bob_leaf.signature_key)
            .unwrap();
        let out = carol
            .commit(
                &svc(),
                CommitOptions::new().proposal(Proposal::add(bob_kp.key_package.clone())),
                NOW,
            )
            .unwrap();
        carol.merge_pending_commit().unwrap();
        let info = group_info_bytes(carol.group_info(&svc(), true, true).unwrap());
        ds.send(
            &gid(),
            &id("carol"),
            SendRequest::commit(0, out.commit.to_bytes().unwrap())
                .with_welcome(
                    vec![id("bob")],
                    MlsMessage::new(MlsMessageBody::Welcome(out.welcome.unwrap()))
                        .to_bytes()
                        .unwrap(),
                )
                .with_group_info(info),
        )
        .unwrap();
        ds.drain(&id("carol")).unwrap();
        let welcome = match ds.drain(&id("bob")).unwrap().pop().unwrap() {
            Delivered::Welcome(w) => w,
            other => panic!("expected a Welcome, got {other:?}"),
        };
        let welcome = match MlsMessage::decode(&welcome.message).unwrap().body {
            MlsMessageBody::Welcome(w) => w,
            _ => panic!("not a Welcome"),
        };
        let bob = Group::join_from_welcome(
            &svc(),
            GroupConfig::default(),
            &welcome,
            &bob_kp,
            bob_leaf.signature_key,
            None,
            NOW,
        )
        .unwrap();
        Self {
            ds,
            alice: alice(cipher_suite),
            carol,
            bob,
            vc_seen: 0,
        }
    }

    /// Emulator `i` announces an external join into GROUP; its siblings process the Commit.
    fn announce(&mut self, i: usize) {
        let out = self.alice[i]
            .announce_external_join(&svc(), GROUP, CommitOptions::new(), NOW)
            .unwrap();
        self.alice[i].confirm_emulation_commit(&svc()).unwrap();
        let bytes = out.commit.to_bytes().unwrap();
        for (j, e) in self.alice.iter_mut().enumerate() {
            if j != i {
                e.process_emulation(&svc(), &bytes, NOW).unwrap();
                assert_eq!(e.announced_external_joins().collect::<Vec<_>>(), [GROUP]);
            }
        }
    }

    /// Emulator `i` joins GROUP by external commit from the service's GroupInfo and sends it.
    fn external_join(&mut self, i: usize) -> u64 {
        let (epoch, info) = self.ds.group_info(&gid()).unwrap();
        let commit = self.alice[i]
            .join_by_external_commit(&svc(), &decode_group_info(&info), None, NOW)
            .unwrap();
        let new_info = self.alice[i]
            .group(GROUP)
            .unwrap()
            .group_info(&svc(), true, true)
            .unwrap();
        self.ds
            .send(
                &gid(),
                &id(DEVICES[i]),
                SendRequest::external_commit(epoch, commit.to_bytes().unwrap())
                    .as_virtual_client(id("alice"), VcSequence(self.vc_seen))
                    .with_group_info(group_info_bytes(new_info)),
            )
            .unwrap();
        epoch
    }

    /// Every client drains its mailbox and processes what it got; emulators drop their own
    /// echoes and follow a sibling's external commit with the GroupInfo the service attached.
    fn deliver(&mut self) -> Vec<(String, Vec<u8>)> {
        let mut read = Vec::new();
        for (name, group) in [("carol", &mut self.carol), ("bob", &mut self.bob)] {
            for item in self.ds.drain(&id(name)).unwrap() {
                let Delivered::Message { message, .. } = item else {
                    continue;
                };
                if message.sender == id(name) {
                    continue;
                }
                if let ProcessedMessage::Application { data, .. } =
                    group.process_bytes(&svc(), &message.message, NOW).unwrap()
                {
                    read.push((name.to_string(), data));
                }
            }
        }
        let mut seen = self.vc_seen;
        for (i, e) in self.alice.iter_mut().enumerate() {
            for item in self.ds.drain(&id(DEVICES[i])).unwrap() {
                let Delivered::Message { message, .. } = item else {
                    continue;
                };
                if let Some(view) = &message.emulator_view {
                    seen = seen.max(view.vc_sequence.0 + 1);
                    if view.emulator == id(DEVICES[i]) {
                        continue;
                    }
                }
                if let Some(p) = process(e, &message) {
                    read.push((DEVICES[i].to_string(), p));
                }
            }
        }
        self.vc_seen = seen;
        read
    }

    fn assert_agree(&self) {
        let auth = self.carol.epoch_authenticator().to_vec();
        assert_eq!(self.bob.epoch_authenticator(), auth);
        for e in &self.alice {
            let g = e.group(GROUP).expect("every emulator is in the group");
            assert_eq!(g.epoch(), self.carol.epoch());
            assert_eq!(g.epoch_authenticator(), auth);
            assert!(e.leaf_is_consistent(&svc(), GROUP).unwrap());
        }
        let alice_leaf = self.alice[0].group(GROUP).unwrap().own_leaf_index();
        for e in &self.alice[1..] {
            assert_eq!(e.group(GROUP).unwrap().own_leaf_index(), alice_leaf);
        }
    }
}

/// An emulator client processes one group message: a sibling's external commit is followed,
/// anything else processed; returns application data.
fn process(e: &mut EmulatorClient, message: &GroupMessage) -> Option<Vec<u8>> {
    let attached = message
        .emulator_view
        .as_ref()
        .and_then(|v| v.group_info.clone());
    match (message.kind, attached) {
        (MessageKind::ExternalCommit { .. }, Some(info)) => {
            let commit = MlsMessage::decode(&message.message).unwrap();
            e.follow_external_join(&svc(), &decode_group_info(&info), None, &commit, NOW)
                .unwrap();
            None
        }
        _ => match e.process(&svc(), GROUP, &message.message, NOW).unwrap() {
            ProcessedMessage::Application { data, .. } => Some(data),
            _ => None,
        },
    }
}

#[test]
fn a_sibling_announces_and_joins_externally_and_the_others_follow() {
    for cipher_suite in SUITES {
        let mut w = World::new(cipher_suite);
        w.announce(0);
        let epoch = w.external_join(0);
        assert_eq!(epoch, 1);
        w.deliver();
        w.assert_agree();
        assert_eq!(w.carol.members().len(), 3, "Alice is one member");
        for e in &w.alice {
            assert_eq!(
                e.announced_external_joins().count(),
                0,
                "announcement used up"
            );
        }

        // A sibling that followed commits as the virtual client; everyone processes it.
        let out = w.alice[1].commit(&svc(), GROUP, vec![], NOW).unwrap();
        let epoch = w.alice[1].group(GROUP).unwrap().epoch();
        w.ds.send(
            &gid(),
            &id("a2"),
            SendRequest::commit(epoch, out.commit.to_bytes().unwrap())
                .as_virtual_client(id("alice"), VcSequence(w.vc_seen)),
        )
        .unwrap();
        w.alice[1].confirm_commit(GROUP).unwrap();
        w.deliver();
        w.assert_agree();

        // The third device sends; Carol, Bob and both siblings read it.
        let message = w.alice[2]
            .send_application(&svc(), GROUP, b"from a3")
            .unwrap();
        w.ds.send(
            &gid(),
            &id("a3"),
            SendRequest::application(message.to_bytes().unwrap())
                .as_virtual_client(id("alice"), VcSequence(w.vc_seen)),
        )
        .unwrap();
        w.alice[2].confirm_sent(&svc(), GROUP, &message).unwrap();
        let mut read: Vec<String> = w
            .deliver()
            .into_iter()
            .filter(|(_, data)| data == b"from a3")
            .map(|(who, _)| who)
            .collect();
        read.sort();
        assert_eq!(read, ["a1", "a2", "bob", "carol"]);
    }
}

#[test]
fn resync_replaces_the_virtual_clients_leaf_everywhere() {
    for cipher_suite in SUITES {
        let mut w = World::new(cipher_suite);
        w.announce(0);
        w.external_join(0);
        w.deliver();
        let old_leaf = w.alice[0].group(GROUP).unwrap().own_leaf_index();
        // A2 rejoins the group the virtual client is already in: the old leaf is removed and
        // the new one takes the leftmost blank — the same index.
        w.announce(1);
        w.external_join(1);
        w.deliver();
        w.assert_agree();
        assert_eq!(w.carol.members().len(), 3);
        assert_eq!(w.alice[2].group(GROUP).unwrap().own_leaf_index(), old_leaf);
    }
}

/// `f` fails on `e` and leaves its state byte-identical; returns the error.
fn unchanged(
    e: &mut EmulatorClient,
    f: impl FnOnce(&mut EmulatorClient) -> Result<Vec<u8>, EmulatorError>,
) -> EmulatorError {
    let before = e.to_bytes().unwrap();
    let err = f(e).unwrap_err();
    assert_eq!(before, e.to_bytes().unwrap(), "state changed on {err:?}");
    err
}

#[test]
fn bad_external_joins_are_refused_and_change_nothing() {
    for cipher_suite in SUITES {
        let mut w = World::new(cipher_suite);
        let (_, info) = w.ds.group_info(&gid()).unwrap();
        let info = decode_group_info(&info);
        // No announcement: neither joining nor following.
        let err = unchanged(&mut w.alice[0], |e| {
            e.join_by_external_commit(&svc(), &info, None, NOW)
                .map(|m| m.to_bytes().unwrap())
        });
        assert!(matches!(err, EmulatorError::NoExternalJoin));

        w.announce(0);
        // The announcement survives the state codec.
        let restored =
            EmulatorClient::from_bytes(&common::P, &w.alice[1].to_bytes().unwrap()).unwrap();
        assert_eq!(
            restored.announced_external_joins().collect::<Vec<_>>(),
            [GROUP]
        );
        let commit = w.alice[0]
            .join_by_external_commit(&svc(), &info, None, NOW)
            .unwrap();
        let bytes = commit.to_bytes().unwrap();

        // A flipped byte anywhere in the commit: refused, nothing changes.
        for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 40] {
            let mut tampered = bytes.clone();
            tampered[at] ^= 0x01;
            let Ok(tampered) = MlsMessage::decode(&tampered) else {
                continue;
            };
            unchanged(&mut w.alice[1], |e| {
                e.follow_external_join(&svc(), &info, None, &tampered, NOW)
            });
        }
        // Another epoch's GroupInfo does not describe the commit.
        let newer = {
            let mut carol = w.carol.clone();
            carol.commit(&svc(), CommitOptions::new(), NOW).unwrap();
            carol.merge_pending_commit().unwrap();
            carol.group_info(&svc(), true, true).unwrap()
        };
        let err = unchanged(&mut w.alice[1], |e| {
            e.follow_external_join(&svc(), &newer, None, &commit, NOW)
        });
        assert!(matches!(
            err,
            EmulatorError::Group(GroupError::StaleEpoch { .. })
        ));
        // A plain member's external commit is no sibling's: the resolver finds no derivation.
        let (frank_leaf, _) = plain(cipher_suite, b"frank");
        let (_, frank_commit) = Group::join_by_external_commit(
            &svc(),
            GroupConfig::default(),
            &info,
            None,
            frank_leaf,
            Default::default(),
            NOW,
        )
        .unwrap();
        let err = unchanged(&mut w.alice[1], |e| {
            e.follow_external_join(&svc(), &info, None, &frank_commit, NOW)
        });
        assert!(
            matches!(err, EmulatorError::MissingDerivationInfo),
            "{err:?}"
        );

        // The genuine commit is still followed afterwards.
        let group = w.alice[1]
            .follow_external_join(&svc(), &info, None, &commit, NOW)
            .unwrap();
        assert_eq!(group, GROUP);
        assert_eq!(
            w.alice[1].group(GROUP).unwrap().epoch_authenticator(),
            w.alice[0].group(GROUP).unwrap().epoch_authenticator()
        );
        // A second follow needs a second announcement.
        let err = unchanged(&mut w.alice[1], |e| {
            e.follow_external_join(&svc(), &info, None, &commit, NOW)
        });
        assert!(matches!(err, EmulatorError::NoExternalJoin));
    }
}

#[test]
fn the_service_attaches_the_group_info_only_for_external_commits_of_the_epoch() {
    let mut w = World::new(CipherSuite(1));
    assert!(matches!(
        w.ds.send(
            &gid(),
            &id("carol"),
            SendRequest::application(vec![1]).with_group_info(vec![2])
        ),
        Err(ServiceError::NotACommit {})
    ));
    assert!(matches!(
        w.ds.publish_group_info(&id("a1"), Some(&id("alice")), &gid(), 1, vec![3].into()),
        Err(ServiceError::NotAMember { .. })
    ));
    assert!(matches!(
        w.ds.publish_group_info(&id("carol"), None, &gid(), 0, vec![3].into()),
        Err(ServiceError::StaleEpoch { current: 1, got: 0 })
    ));
    w.announce(0);
    w.external_join(0);
    let items = w.ds.drain(&id("a2")).unwrap();
    let Some(Delivered::Message { message, .. }) = items.first() else {
        panic!("a2 gets the external commit");
    };
    let view = message.emulator_view.as_ref().unwrap();
    assert_eq!(view.emulator, id("a1"));
    let attached = decode_group_info(view.group_info.as_ref().unwrap());
    assert_eq!(attached.group_context.epoch, 1);
    let items = w.ds.drain(&id("carol")).unwrap();
    let Some(Delivered::Message { message, .. }) = items.first() else {
        panic!("carol gets the external commit");
    };
    assert!(message.emulator_view.is_none());
    // The joiner's GroupInfo is now the group's.
    assert_eq!(w.ds.group_info(&gid()).unwrap().0, 2);
}
