//! Mixed groups whose other members are OpenMLS 0.9.2 clients (plain RFC 9420 API, the
//! `openmls_rust_crypto` provider, no draft features): they accept every commit, Update,
//! KeyPackage and message of a virtual client (issue 5).
//!
//! Alice is one virtual client on three devices (emulator clients A1, A2, A3 of one emulation
//! group); Bob and Carol are OpenMLS clients. For cipher suites 1, 2 and 3:
//!
//! * A1 announces a KeyPackage with the `KeyPackageUpload` action; OpenMLS validates it (its
//!   leaf lists and carries the `0xF0C1` DerivationInfoExtension), Bob adds it, and all three
//!   devices join from Bob's Welcome (A2 and A3 by `KeyPackageRef` alone);
//! * commits by different devices (empty with path, Add of Carol's OpenMLS KeyPackage, Remove
//!   of Carol) are processed by the OpenMLS members and by the sibling devices (H2);
//! * an Update proposal by one device, committed by Bob, moves every device to the new leaf;
//! * OpenMLS commits (self updates, Add, Remove) reach every device;
//! * application messages both ways;
//! * after every step all participants agree on the epoch, the epoch authenticator, an
//!   exporter output, the tree hash, the confirmed transcript hash and the member list, every
//!   device's key material matches the leaf in the tree (`leaf_is_consistent`) and every
//!   OpenMLS member sees Alice's leaf with its DerivationInfoExtension;
//! * a validly signed commit from Alice's leaf with a tampered (or replayed)
//!   DerivationInfoExtension: OpenMLS, an outsider, cannot tell; the sibling devices refuse
//!   it and their state stays byte-identical.
//!
//! Time: OpenMLS checks KeyPackage lifetimes against the system clock, so these tests use the
//! current time (read once per test, passed to the engine as `now`).

use std::time::{SystemTime, UNIX_EPOCH};

use mls_engine::codec::{
    decode_exact, Credential, KeyPackage, Lifetime, MlsMessage, MlsMessageBody, Proposal, Welcome,
};
use mls_engine::crypto::{CipherSuite, Secret};
use mls_engine::group::{CommitOptions, LeafSecrets, OwnLeaf, ProcessedMessage};
use mls_engine::messages::{HpkeKeySource, KeyPackageParams, LeafNodeParams};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    ExtensionType, GroupId, LeafNodeIndex, MlsGroup, MlsMessageIn, WireFormatPolicy,
    MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use tls_codec::VLBytes;
use virtual_clients::derivation::{derivation_info_of, DerivationError};
use virtual_clients::emulator::{EmulatorClient, EmulatorError};
use virtual_clients::pprf::PprfError;
use virtual_clients::wire::{DerivationInfoExtension, WireError, DERIVATION_INFO_EXTENSION_TYPE};

mod common;
use common::{suite, svc};

// OpenMLS helpers shared with mls-engine's interop tests (our own test code); this target
// uses only part of them.
#[allow(dead_code)]
#[path = "../../mls-engine/tests/interop_openmls/harness.rs"]
mod harness;
use harness::{OpenMlsClient, Processed, View, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LENGTH};

const GROUP: &[u8] = b"mixed";

/// Seconds since the Unix epoch (the tests' `now`; the engine never reads a clock).
fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A lifetime around `now` OpenMLS accepts: from an hour before to 28 days after (OpenMLS
/// refuses ranges above 12 weeks and an hour).
fn lifetime(now: u64) -> Lifetime {
    Lifetime {
        not_before: now - 3600,
        not_after: now + 28 * 24 * 3600,
    }
}

fn encode(message: &MlsMessage) -> Vec<u8> {
    message.to_bytes().unwrap()
}

fn key_package_message(key_package: &KeyPackage) -> Vec<u8> {
    encode(&MlsMessage::new(MlsMessageBody::KeyPackage(
        key_package.clone(),
    )))
}

fn engine_welcome(bytes: &[u8]) -> Welcome {
    match MlsMessage::decode(bytes).unwrap().body {
        MlsMessageBody::Welcome(w) => w,
        other => panic!("not a Welcome: {other:?}"),
    }
}

/// An OpenMLS member of the mixed group.
struct OpenMlsMember {
    name: &'static str,
    client: OpenMlsClient,
    group: MlsGroup,
}

/// The mixed group: Alice's three devices (all at Alice's one leaf) and the OpenMLS members.
struct Mixed {
    suite: u16,
    now: u64,
    /// The OpenMLS members' wire-format policy.
    policy: WireFormatPolicy,
    alice: Vec<EmulatorClient>,
    openmls: Vec<OpenMlsMember>,
    /// The epoch every member must be in.
    epoch: u64,
}

/// Alice's three emulator clients: A1 creates the emulation group and adds A2 and A3 in one
/// commit.
fn alice(cipher_suite: CipherSuite, now: u64) -> Vec<EmulatorClient> {
    let cs = suite(cipher_suite);
    let vc = Credential::basic(b"alice".to_vec());
    let mut a1 = EmulatorClient::create(
        &svc(),
        b"alice-emulation".to_vec(),
        cipher_suite,
        OwnLeaf {
            params: EmulatorClient::emulation_leaf_params(
                cipher_suite,
                Credential::basic(b"alice-1".to_vec()),
            ),
            encryption_key: HpkeKeySource::Generate,
            signature_key: cs.signature_generate_key_pair().unwrap(),
        },
        lifetime(now),
        vc.clone(),
    )
    .unwrap();
    let mut joiners = Vec::new();
    for device in [&b"alice-2"[..], b"alice-3"] {
        let key = cs.signature_generate_key_pair().unwrap();
        let credential = Credential::basic(device.to_vec());
        let kp = KeyPackageParams::new(cipher_suite, credential.clone(), lifetime(now))
            .with_leaf(EmulatorClient::emulation_leaf_params(
                cipher_suite,
                credential,
            ))
            .build_fresh(cs, &key)
            .unwrap();
        joiners.push((kp, key));
    }
    let mut options = CommitOptions::new();
    for (kp, _) in &joiners {
        options = options.proposal(Proposal::add(kp.key_package.clone()));
    }
    let out = a1.commit_emulation(&svc(), options, now).unwrap();
    a1.confirm_emulation_commit(&svc()).unwrap();
    let welcome = out.welcome.unwrap();
    let mut devices = vec![a1];
    for (kp, key) in joiners {
        devices.push(EmulatorClient::join(&svc(), &welcome, &kp, key, vc.clone(), now).unwrap());
    }
    for d in &devices[1..] {
        assert_eq!(
            d.emulation_group().epoch_authenticator(),
            devices[0].emulation_group().epoch_authenticator()
        );
        assert_eq!(d.epoch_ids().last(), devices[0].epoch_ids().last());
    }
    devices
}

/// A fresh OpenMLS KeyPackage of `client` (stored by OpenMLS) as the engine's struct.
fn openmls_key_package(client: &OpenMlsClient) -> KeyPackage {
    let bytes = client
        .key_package()
        .key_package()
        .tls_serialize_detached()
        .unwrap();
    decode_exact(&bytes).unwrap()
}

impl Mixed {
    /// Bob (OpenMLS) creates the group and adds Alice through a KeyPackage that A1 announced
    /// with the `KeyPackageUpload` action; all three devices join from Bob's Welcome.
    fn new(suite_id: u16) -> Self {
        Self::with_policy(suite_id, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
    }

    /// [`Mixed::new`] with the OpenMLS members sending their handshakes per `policy`.
    fn with_policy(suite_id: u16, policy: WireFormatPolicy) -> Self {
        let now = wall_clock();
        let cipher_suite = CipherSuite(suite_id);
        let mut alice = alice(cipher_suite, now);

        // A1 derives a KeyPackage and announces it in the SafeAAD of an emulation commit.
        let (out, kps) = alice[0]
            .publish_key_packages(
                &svc(),
                cipher_suite,
                lifetime(now),
                1,
                CommitOptions::new(),
                now,
            )
            .unwrap();
        alice[0].confirm_emulation_commit(&svc()).unwrap();
        let upload = encode(&out.commit);
        for d in &mut alice[1..] {
            let got = d.process_emulation(&svc(), &upload, now).unwrap();
            assert!(matches!(got, ProcessedMessage::Commit { own: false, .. }));
        }
        let kp = &kps[0];
        let ext = derivation_info_of(&kp.leaf_node).unwrap().unwrap();

        // OpenMLS validates the KeyPackage as a directory's client would: the leaf lists the
        // 0xF0C1 extension in its capabilities and carries it.
        let bob = OpenMlsClient::new(b"bob", suite_id);
        let validated = bob
            .validate_key_package(&key_package_message(kp))
            .unwrap_or_else(|e| panic!("suite {suite_id}: OpenMLS refuses the KeyPackage: {e:?}"));
        let leaf = validated.leaf_node();
        let f0c1 = ExtensionType::from(DERIVATION_INFO_EXTENSION_TYPE.0);
        assert!(leaf.capabilities().extensions().contains(&f0c1));
        let carried = leaf
            .extensions()
            .unknown(DERIVATION_INFO_EXTENSION_TYPE.0)
            .expect("the leaf carries the DerivationInfoExtension");
        assert_eq!(
            carried.0,
            ext.to_extension().unwrap().extension_data.as_slice()
        );

        let mut group = bob.create_group_with(
            bob.group_builder_with_policy(policy)
                .with_group_id(GroupId::from_slice(GROUP)),
        );
        let added = bob.add_members(&mut group, &[validated]);
        let welcome = engine_welcome(&added.welcome);
        // A1 made the KeyPackage; A2 and A3 know it only by its KeyPackageRef.
        for d in &mut alice {
            assert_eq!(
                d.join_from_welcome_by_ref(&svc(), &welcome, now).unwrap(),
                GROUP
            );
        }
        let mixed = Self {
            suite: suite_id,
            now,
            policy,
            alice,
            openmls: vec![OpenMlsMember {
                name: "bob",
                client: bob,
                group,
            }],
            epoch: 1,
        };
        mixed.check("Bob added Alice");
        mixed
    }

    fn cipher_suite(&self) -> CipherSuite {
        CipherSuite(self.suite)
    }

    /// Alice's leaf index in the group.
    fn alice_leaf(&self) -> u32 {
        self.alice[0].group(GROUP).unwrap().own_leaf_index().0
    }

    fn device_view(&self, i: usize) -> View {
        let group = self.alice[i].group(GROUP).unwrap();
        let context = group.group_context();
        View {
            epoch: group.epoch(),
            exporter: group
                .export_secret(&svc(), EXPORTER_LABEL, EXPORTER_CONTEXT, EXPORTER_LENGTH)
                .unwrap()
                .as_bytes()
                .to_vec(),
            epoch_authenticator: group.epoch_authenticator().to_vec(),
            tree_hash: context.tree_hash.as_slice().to_vec(),
            confirmed_transcript_hash: context.confirmed_transcript_hash.as_slice().to_vec(),
            leaves: group.members().iter().map(|m| m.index.0).collect(),
        }
    }

    /// Everyone agrees; every device's key material matches Alice's leaf; every OpenMLS
    /// member sees that leaf with its DerivationInfoExtension.
    fn check(&self, step: &str) {
        let s = self.suite;
        let reference = self.device_view(0);
        assert_eq!(reference.epoch, self.epoch, "suite {s}, {step}: A1's epoch");
        assert_eq!(
            reference.leaves.len(),
            1 + self.openmls.len(),
            "suite {s}, {step}: members"
        );
        for i in 1..self.alice.len() {
            assert_eq!(
                self.device_view(i),
                reference,
                "suite {s}, {step}: A{} vs A1",
                i + 1
            );
        }
        for m in &self.openmls {
            assert_eq!(
                m.client.view(&m.group),
                reference,
                "suite {s}, {step}: {} vs A1",
                m.name
            );
            let leaf = m
                .group
                .public_group()
                .leaf(LeafNodeIndex::new(self.alice_leaf()))
                .expect("Alice's leaf");
            assert!(
                leaf.extensions()
                    .unknown(DERIVATION_INFO_EXTENSION_TYPE.0)
                    .is_some(),
                "suite {s}, {step}: {} sees Alice's leaf without DerivationInfoExtension",
                m.name
            );
        }
        for (i, d) in self.alice.iter().enumerate() {
            assert!(
                d.leaf_is_consistent(&svc(), GROUP).unwrap(),
                "suite {s}, {step}: A{}'s leaf is inconsistent",
                i + 1
            );
            let own = d.group(GROUP).unwrap().own_leaf_node().unwrap();
            assert!(derivation_info_of(own).unwrap().is_some());
        }
    }

    fn member(&mut self, name: &str) -> &mut OpenMlsMember {
        self.openmls.iter_mut().find(|m| m.name == name).unwrap()
    }

    /// Device `by` commits `proposals` (with path, from derived secrets); it gets its commit
    /// back, the siblings and the OpenMLS members process it. Returns its Welcome, if any, as
    /// an encoded `MLSMessage`.
    fn alice_commits(&mut self, by: usize, proposals: Vec<Proposal>) -> Option<Vec<u8>> {
        let now = self.now;
        let out = self.alice[by]
            .commit(&svc(), GROUP, proposals, now)
            .unwrap();
        let commit = encode(&out.commit);
        for (i, d) in self.alice.iter_mut().enumerate() {
            let got = d.process(&svc(), GROUP, &commit, now).unwrap();
            assert!(
                matches!(got, ProcessedMessage::Commit { own, removed_us: false, .. } if own == (i == by)),
                "A{}: {got:?}",
                i + 1
            );
        }
        for m in &mut self.openmls {
            let got = m
                .client
                .try_process(&mut m.group, &commit)
                .unwrap_or_else(|e| {
                    panic!(
                        "suite {}: OpenMLS {} refuses A{}'s commit: {e}",
                        self.suite,
                        m.name,
                        by + 1
                    )
                });
            assert_eq!(got, Processed::Commit);
        }
        self.epoch += 1;
        out.welcome
            .map(|w| encode(&MlsMessage::new(MlsMessageBody::Welcome(w))))
    }

    /// A handshake message from an OpenMLS member (already applied by it): every other
    /// OpenMLS member and every device processes it.
    fn deliver_from_openmls(&mut self, sender: &str, message: &[u8]) -> Vec<ProcessedMessage> {
        let now = self.now;
        for m in self.openmls.iter_mut().filter(|m| m.name != sender) {
            m.client
                .try_process(&mut m.group, message)
                .unwrap_or_else(|e| panic!("OpenMLS {} refuses {sender}'s message: {e}", m.name));
        }
        self.alice
            .iter_mut()
            .enumerate()
            .map(|(i, d)| {
                d.process(&svc(), GROUP, message, now)
                    .unwrap_or_else(|e| panic!("A{} refuses {sender}'s message: {e:?}", i + 1))
            })
            .collect()
    }

    /// An OpenMLS member's commit (`make` builds and merges it): everyone else processes it.
    fn openmls_commits(
        &mut self,
        by: &str,
        make: impl FnOnce(&OpenMlsClient, &mut MlsGroup) -> Vec<u8>,
    ) {
        let m = self.member(by);
        let commit = make(&m.client, &mut m.group);
        for got in self.deliver_from_openmls(by, &commit) {
            assert!(
                matches!(
                    got,
                    ProcessedMessage::Commit {
                        own: false,
                        removed_us: false,
                        ..
                    }
                ),
                "{got:?}"
            );
        }
        self.epoch += 1;
    }

    /// Carol (OpenMLS) joins from `welcome`.
    fn carol_joins(&mut self, carol: OpenMlsClient, welcome: &[u8]) {
        let group = carol.join_with(welcome, None, self.policy);
        self.openmls.push(OpenMlsMember {
            name: "carol",
            client: carol,
            group,
        });
    }

    /// Carol's leaf index.
    fn carol_leaf(&mut self) -> u32 {
        self.member("carol").group.own_leaf_index().u32()
    }

    /// Carol processes a commit removing her; she leaves the roster.
    fn carol_removed_by(&mut self, commit: &[u8]) {
        let pos = self.openmls.iter().position(|m| m.name == "carol").unwrap();
        let mut carol = self.openmls.remove(pos);
        assert_eq!(
            carol.client.process(&mut carol.group, commit),
            Processed::Commit
        );
        assert!(!carol.group.is_active());
    }

    /// Device `by` sends `text`; the OpenMLS members and the siblings read it.
    fn alice_sends(&mut self, by: usize, text: &[u8]) {
        let now = self.now;
        let message = self.alice[by]
            .send_application(&svc(), GROUP, text)
            .unwrap();
        let bytes = encode(&message);
        for m in &mut self.openmls {
            let got = m
                .client
                .try_process(&mut m.group, &bytes)
                .unwrap_or_else(|e| {
                    panic!(
                        "suite {}: OpenMLS {} refuses A{}'s message: {e}",
                        self.suite,
                        m.name,
                        by + 1
                    )
                });
            assert_eq!(got, Processed::Application(text.to_vec()), "{}", m.name);
        }
        for (i, d) in self.alice.iter_mut().enumerate() {
            if i == by {
                continue;
            }
            match d.process(&svc(), GROUP, &bytes, now).unwrap() {
                ProcessedMessage::Application { data, sender, .. } => {
                    assert_eq!(data, text);
                    assert_eq!(sender, d.group(GROUP).unwrap().own_leaf_index());
                }
                other => panic!("A{}: {other:?}", i + 1),
            }
        }
        assert!(self.alice[by]
            .confirm_sent(&svc(), GROUP, &message)
            .unwrap());
    }

    /// An OpenMLS member sends `text`; everyone else reads it.
    fn openmls_sends(&mut self, by: &str, text: &[u8]) {
        let m = self.member(by);
        let message = m.client.send_application(&mut m.group, text);
        let sender = m.group.own_leaf_index().u32();
        for m in self.openmls.iter_mut().filter(|m| m.name != by) {
            assert_eq!(
                m.client.process(&mut m.group, &message),
                Processed::Application(text.to_vec())
            );
        }
        let now = self.now;
        for d in &mut self.alice {
            match d.process(&svc(), GROUP, &message, now).unwrap() {
                ProcessedMessage::Application {
                    data, sender: s, ..
                } => {
                    assert_eq!(data, text);
                    assert_eq!(s.0, sender);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Device `by` adds Carol (a fresh OpenMLS client) from her OpenMLS KeyPackage; she joins
    /// from the device's Welcome.
    fn alice_adds_carol(&mut self, by: usize) {
        let carol = OpenMlsClient::new(b"carol", self.suite);
        let kp = openmls_key_package(&carol);
        let welcome = self
            .alice_commits(by, vec![Proposal::add(kp)])
            .expect("a Welcome for Carol");
        self.carol_joins(carol, &welcome);
    }

    /// Device `by` removes Carol.
    fn alice_removes_carol(&mut self, by: usize) {
        let carol_leaf = self.carol_leaf();
        let now = self.now;
        let out = self.alice[by]
            .commit(&svc(), GROUP, vec![Proposal::remove(carol_leaf)], now)
            .unwrap();
        let commit = encode(&out.commit);
        self.carol_removed_by(&commit);
        for (i, d) in self.alice.iter_mut().enumerate() {
            let got = d.process(&svc(), GROUP, &commit, now).unwrap();
            assert!(
                matches!(got, ProcessedMessage::Commit { own, .. } if own == (i == by)),
                "{got:?}"
            );
        }
        for m in &mut self.openmls {
            assert_eq!(m.client.process(&mut m.group, &commit), Processed::Commit);
        }
        self.epoch += 1;
    }
}

#[test]
fn openmls_adds_the_virtual_client_from_an_uploaded_key_package() {
    for suite_id in harness::SUITES {
        let mut g = Mixed::new(suite_id);
        // Each device's first commit after the join is accepted by Bob.
        for by in 0..3 {
            g.alice_commits(by, vec![]);
            g.check(&format!("A{} committed", by + 1));
        }
    }
}

#[test]
fn commits_of_every_device_are_accepted_by_openmls_members() {
    for suite_id in harness::SUITES {
        let mut g = Mixed::new(suite_id);
        // A2 adds Carol from her OpenMLS KeyPackage; she joins from A2's Welcome.
        g.alice_adds_carol(1);
        g.check("A2 added Carol");
        // Empty commits with path by each device, in another order.
        for by in [2, 0, 1] {
            g.alice_commits(by, vec![]);
            g.check(&format!("A{} committed", by + 1));
        }
        // A3 removes Carol; A1 adds her again (a new client), A1 removes her.
        g.alice_removes_carol(2);
        g.check("A3 removed Carol");
        g.alice_adds_carol(0);
        g.check("A1 added Carol");
        g.alice_removes_carol(0);
        g.check("A1 removed Carol");
        g.alice_commits(1, vec![]);
        g.check("A2 committed after the removal");
    }
}

#[test]
fn an_update_of_one_device_committed_by_openmls_moves_every_device() {
    for suite_id in harness::SUITES {
        let mut g = Mixed::new(suite_id);
        g.alice_adds_carol(0);
        g.check("A1 added Carol");
        for by in [1, 2, 0] {
            let now = g.now;
            let old_key = g.alice[0]
                .group(GROUP)
                .unwrap()
                .own_leaf_node()
                .unwrap()
                .encryption_key
                .clone();
            let proposal = encode(&g.alice[by].propose_update(&svc(), GROUP).unwrap());
            for (i, d) in g.alice.iter_mut().enumerate() {
                let got = d.process(&svc(), GROUP, &proposal, now).unwrap();
                assert!(
                    matches!(got, ProcessedMessage::Proposal { .. }),
                    "A{}: {got:?}",
                    i + 1
                );
            }
            for m in &mut g.openmls {
                let got = m
                    .client
                    .try_process(&mut m.group, &proposal)
                    .unwrap_or_else(|e| {
                        panic!(
                            "suite {suite_id}: OpenMLS {} refuses A{}'s Update: {e}",
                            m.name,
                            by + 1
                        )
                    });
                assert_eq!(got, Processed::Proposal);
            }
            g.check(&format!("A{}'s Update proposed", by + 1));
            // Bob commits it by reference (with a path: it covers an Update, RFC 9420 §12.4).
            g.openmls_commits("bob", |client, group| client.commit_pending(group).0);
            g.check(&format!("Bob committed A{}'s Update", by + 1));
            let new_key = &g.alice[0]
                .group(GROUP)
                .unwrap()
                .own_leaf_node()
                .unwrap()
                .encryption_key;
            assert_ne!(*new_key, old_key, "the Update replaced Alice's leaf key");
            // The devices still act as one member after the Update.
            g.alice_sends((by + 1) % 3, b"after the update");
            g.alice_commits(by, vec![]);
            g.check(&format!("A{} committed after its Update", by + 1));
        }
    }
}

#[test]
fn openmls_commits_reach_every_device() {
    for suite_id in harness::SUITES {
        let mut g = Mixed::new(suite_id);
        g.openmls_commits("bob", |client, group| client.self_update(group));
        g.check("Bob updated");
        // Bob adds Carol (OpenMLS to OpenMLS); the devices process the Add.
        let carol = OpenMlsClient::new(b"carol", suite_id);
        let kp = carol.key_package().key_package().clone();
        let mut welcome = None;
        g.openmls_commits("bob", |client, group| {
            let out = client.add_members(group, &[kp]);
            welcome = Some(out.welcome);
            out.commit
        });
        g.carol_joins(carol, &welcome.unwrap());
        g.check("Bob added Carol");
        g.openmls_commits("carol", |client, group| client.self_update(group));
        g.check("Carol updated");
        g.openmls_commits("carol", |client, group| {
            client.commit_with(group, &[], &[], false, true).0
        });
        g.check("Carol committed with path");
        g.alice_commits(1, vec![]);
        g.check("A2 committed");
        // Bob removes Carol.
        let carol_leaf = g.carol_leaf();
        let m = g.member("bob");
        let commit = m.client.remove_members(&mut m.group, &[carol_leaf]);
        g.carol_removed_by(&commit);
        for got in g.deliver_from_openmls("bob", &commit) {
            assert!(matches!(got, ProcessedMessage::Commit { own: false, .. }));
        }
        g.epoch += 1;
        g.check("Bob removed Carol");
        g.openmls_commits("bob", |client, group| client.self_update(group));
        g.check("Bob updated again");
    }
}

#[test]
fn application_messages_both_ways() {
    for suite_id in harness::SUITES {
        let mut g = Mixed::new(suite_id);
        g.alice_adds_carol(2);
        g.check("A3 added Carol");
        for round in 0..2 {
            for by in 0..3 {
                g.alice_sends(by, format!("A{} round {round}", by + 1).as_bytes());
                g.check("a device sent");
            }
            g.openmls_sends("bob", b"hi alice, bob here");
            g.openmls_sends("carol", b"hi alice, carol here");
            g.alice_sends(1, b"A2 replies");
            g.check("OpenMLS members sent");
            // A new epoch between rounds, by an OpenMLS member.
            g.openmls_commits("carol", |client, group| client.self_update(group));
            g.check("Carol updated");
        }
        // A run of messages from one device, then its sibling.
        for n in 0..5 {
            g.alice_sends(0, format!("A1 #{n}").as_bytes());
        }
        g.alice_sends(2, b"A3 after A1's run");
        g.check("after a run");
    }
}

/// The OpenMLS members send their proposals and commits as PrivateMessages (padded): every
/// device reads them; Alice's PublicMessage handshakes are still accepted by OpenMLS.
#[test]
fn private_message_handshakes_of_openmls_members_reach_every_device() {
    for suite_id in harness::SUITES {
        let mut g = Mixed::with_policy(suite_id, MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY);
        g.openmls_commits("bob", |client, group| client.self_update(group));
        g.check("Bob updated (PrivateMessage)");
        let carol = OpenMlsClient::new(b"carol", suite_id);
        let kp = carol.key_package().key_package().clone();
        let mut welcome = None;
        g.openmls_commits("bob", |client, group| {
            let out = client.add_members(group, &[kp]);
            welcome = Some(out.welcome);
            out.commit
        });
        g.carol_joins(carol, &welcome.unwrap());
        g.check("Bob added Carol (PrivateMessage)");
        // Carol proposes an update of her leaf as a PrivateMessage; A3 commits it.
        let m = g.member("carol");
        let carol_key = m.group.own_leaf_node().unwrap().encryption_key().clone();
        let proposal = m.client.propose_self_update(&mut m.group);
        for got in g.deliver_from_openmls("carol", &proposal) {
            assert!(matches!(got, ProcessedMessage::Proposal { .. }), "{got:?}");
        }
        g.check("Carol proposed an Update (PrivateMessage)");
        g.alice_commits(2, vec![]);
        g.check("A3 committed Carol's Update");
        let m = g.member("carol");
        assert_ne!(
            *m.group.own_leaf_node().unwrap().encryption_key(),
            carol_key,
            "A3's commit covered Carol's Update"
        );
        g.alice_sends(0, b"to both");
        g.openmls_sends("carol", b"back to alice");
        g.openmls_commits("carol", |client, group| client.self_update(group));
        g.check("Carol updated (PrivateMessage)");
    }
}

/// An insider holding Alice's leaf signature key sends a validly signed commit from Alice's
/// leaf whose DerivationInfoExtension is tampered (or replays the current one). OpenMLS, an
/// outsider, accepts it as an ordinary commit (it does not read the extension); the sibling
/// devices refuse it with a typed error and their state stays byte-identical; the genuine
/// commit then goes through for everyone.
#[test]
fn a_commit_with_a_tampered_derivation_info_is_refused_by_the_siblings() {
    for suite_id in harness::SUITES {
        let mut g = Mixed::new(suite_id);
        g.alice_adds_carol(0);
        g.check("A1 added Carol");
        let cipher_suite = g.cipher_suite();
        let now = g.now;
        let current = derivation_info_of(g.alice[0].group(GROUP).unwrap().own_leaf_node().unwrap())
            .unwrap()
            .unwrap();
        let mut flipped = current.ciphertext.as_slice().to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        let tampered = DerivationInfoExtension {
            epoch_id: current.epoch_id.clone(),
            ciphertext: VLBytes::new(flipped),
        };
        let before: Vec<Vec<u8>> = g
            .alice
            .iter()
            .map(|d| d.to_bytes().unwrap().to_vec())
            .collect();
        for (ext, replayed) in [(tampered, false), (current, true)] {
            let secrets = LeafSecrets {
                leaf_seed: Secret::new(vec![1; 32]),
                init_seed: Secret::new(vec![2; 32]),
                path_secret_0: Secret::new(vec![3; 32]),
                signature_key: suite(cipher_suite).signature_generate_key_pair().unwrap(),
                extensions: vec![ext.to_extension().unwrap()],
            };
            let mut insider = g.alice[0].group(GROUP).unwrap().clone();
            let out = insider
                .commit(
                    &svc(),
                    secrets.commit_options(
                        LeafNodeParams::new(cipher_suite, Credential::basic(b"alice".to_vec())),
                        CommitOptions::new(),
                    ),
                    now,
                )
                .unwrap();
            let bad = encode(&out.commit);
            // OpenMLS stages it as a valid commit (not merged: nothing of Bob changes).
            let bob = g.member("bob");
            let message = MlsMessageIn::tls_deserialize_exact(&bad).unwrap();
            bob.group
                .process_message(
                    &bob.client.provider,
                    message.try_into_protocol_message().unwrap(),
                )
                .unwrap_or_else(|e| panic!("suite {suite_id}: OpenMLS refuses the commit: {e:?}"));
            for (i, (device, before)) in g.alice.iter_mut().zip(&before).enumerate() {
                let err = device.process(&svc(), GROUP, &bad, now).unwrap_err();
                // A1 too: the commit is not its pending one, so it re-derives the leaf.
                if replayed {
                    assert!(
                        matches!(
                            err,
                            EmulatorError::Derivation(DerivationError::Pprf(
                                PprfError::Punctured { .. }
                            ))
                        ),
                        "A{}: {err:?}",
                        i + 1
                    );
                } else {
                    assert!(
                        matches!(
                            err,
                            EmulatorError::Derivation(DerivationError::Wire(
                                WireError::DecryptionFailed
                            ))
                        ),
                        "A{}: {err:?}",
                        i + 1
                    );
                }
                assert_eq!(*device.to_bytes().unwrap(), *before, "A{}", i + 1);
            }
        }
        g.check("after the refused commits");
        // The genuine commit of a device still goes through for everyone.
        g.alice_commits(1, vec![]);
        g.check("A2 committed");
    }
}
