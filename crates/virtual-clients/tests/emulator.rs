//! The emulator client end to end: Alice is one virtual client on two devices (emulator
//! clients of one emulation group), Carol a plain member of a higher-level group.
//!
//! * Carol adds Alice through a KeyPackage one emulator client published; both join from
//!   that Welcome;
//! * each emulator client commits in turn; its sibling and Carol process the commit;
//! * application messages from each emulator client are read by Carol and by the sibling;
//! * epoch authenticators agree after every step;
//! * bad input: a tampered DerivationInfoExtension and an unknown emulation epoch are typed
//!   errors that change nothing.

use mls_engine::codec::{
    Credential, FramedContentBody, KeyPackage, LeafNode, MlsMessage, MlsMessageBody, Proposal,
};
use mls_engine::crypto::CipherSuite;
use mls_engine::crypto::Secret;
use mls_engine::group::LeafSecrets;
use mls_engine::group::{CommitOptions, Group, GroupConfig, OwnLeaf, ProcessedMessage};
use mls_engine::messages::{HpkeKeySource, KeyPackageParams, LeafNodeParams};
use tls_codec::VLBytes;
use virtual_clients::derivation::{derivation_info_of, DerivationError};
use virtual_clients::emulator::{EmulatorClient, EmulatorError};
use virtual_clients::pprf::PprfError;
use virtual_clients::wire::{DerivationInfoExtension, WireError};

mod common;
use common::{lifetime, suite, svc, NOW, P};

const GROUP: &[u8] = b"higher";

/// Alice's two emulator clients (emulation leaves 0 and 1).
fn alice(cipher_suite: CipherSuite) -> (EmulatorClient, EmulatorClient) {
    let cs = suite(cipher_suite);
    let vc = Credential::basic(b"alice".to_vec());
    let mut e1 = EmulatorClient::create(
        &svc(),
        b"alice-emulation".to_vec(),
        cipher_suite,
        OwnLeaf {
            params: LeafNodeParams::new(cipher_suite, Credential::basic(b"alice-1".to_vec())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: cs.signature_generate_key_pair().unwrap(),
        },
        lifetime(),
        vc.clone(),
    )
    .unwrap();
    let key = cs.signature_generate_key_pair().unwrap();
    let kp = KeyPackageParams::new(
        cipher_suite,
        Credential::basic(b"alice-2".to_vec()),
        lifetime(),
    )
    .with_leaf(EmulatorClient::emulation_leaf_params(
        cipher_suite,
        Credential::basic(b"alice-2".to_vec()),
    ))
    .build_fresh(cs, &key)
    .unwrap();
    let out = e1
        .add_emulator(&svc(), kp.key_package.clone(), NOW)
        .unwrap();
    e1.confirm_emulation_commit(&svc()).unwrap();
    let e2 =
        EmulatorClient::join(&svc(), out.welcome.as_ref().unwrap(), &kp, key, vc, NOW).unwrap();
    assert_eq!(
        e1.emulation_group().epoch_authenticator(),
        e2.emulation_group().epoch_authenticator()
    );
    assert_eq!(e1.epoch_ids().last(), e2.epoch_ids().last());
    (e1, e2)
}

fn carol(cipher_suite: CipherSuite) -> Group {
    Group::create(
        &svc(),
        GroupConfig::default(),
        GROUP.to_vec(),
        cipher_suite,
        OwnLeaf {
            params: LeafNodeParams::new(cipher_suite, Credential::basic(b"carol".to_vec())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: suite(cipher_suite).signature_generate_key_pair().unwrap(),
        },
        lifetime(),
        vec![],
    )
    .unwrap()
}

fn bytes(message: &MlsMessage) -> Vec<u8> {
    message.to_bytes().unwrap()
}

fn commit_leaf(message: &MlsMessage) -> &LeafNode {
    match &message.body {
        MlsMessageBody::PublicMessage(m) => match &m.content.body {
            FramedContentBody::Commit(c) => &c.path.as_ref().unwrap().leaf_node,
            _ => panic!("not a commit"),
        },
        _ => panic!("not a PublicMessage"),
    }
}

fn assert_agree(e1: &EmulatorClient, e2: &EmulatorClient, carol: &Group) {
    let a = carol.epoch_authenticator();
    assert_eq!(e1.group(GROUP).unwrap().epoch_authenticator(), a);
    assert_eq!(e2.group(GROUP).unwrap().epoch_authenticator(), a);
    assert!(e1.leaf_is_consistent(&svc(), GROUP).unwrap());
    assert!(e2.leaf_is_consistent(&svc(), GROUP).unwrap());
}

/// Alice (both devices) and Carol in one group, from a KeyPackage emulator client 1 published.
fn setup(cipher_suite: CipherSuite) -> (EmulatorClient, EmulatorClient, Group, KeyPackage) {
    let (mut e1, mut e2) = alice(cipher_suite);
    let mut carol = carol(cipher_suite);
    let kp = e1
        .publish_key_package(&svc(), cipher_suite, lifetime())
        .unwrap();
    assert!(derivation_info_of(&kp.leaf_node).unwrap().is_some());
    let out = carol
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.clone())),
            NOW,
        )
        .unwrap();
    carol.merge_pending_commit().unwrap();
    let welcome = out.welcome.unwrap();
    assert_eq!(
        e1.join_from_welcome(&svc(), &welcome, &kp, NOW).unwrap(),
        GROUP
    );
    assert_eq!(
        e2.join_from_welcome(&svc(), &welcome, &kp, NOW).unwrap(),
        GROUP
    );
    assert_agree(&e1, &e2, &carol);
    (e1, e2, carol, kp)
}

/// `by` commits (with path, from derived secrets); it gets its own commit back, `sibling`
/// and Carol process it.
fn commit_round(by: &mut EmulatorClient, sibling: &mut EmulatorClient, carol: &mut Group) {
    let out = by.commit(&svc(), GROUP, vec![], NOW).unwrap();
    assert!(derivation_info_of(commit_leaf(&out.commit))
        .unwrap()
        .is_some());
    let b = bytes(&out.commit);
    let got = by.process(&svc(), GROUP, &b, NOW).unwrap();
    assert!(matches!(got, ProcessedMessage::Commit { own: true, .. }));
    let got = sibling.process(&svc(), GROUP, &b, NOW).unwrap();
    assert!(matches!(got, ProcessedMessage::Commit { own: false, .. }));
    carol.process_bytes(&svc(), &b, NOW).unwrap();
}

fn application_round(
    by: &mut EmulatorClient,
    sibling: &mut EmulatorClient,
    carol: &mut Group,
    text: &[u8],
) {
    let m = by.send_application(&svc(), GROUP, text).unwrap();
    let b = bytes(&m);
    match carol.process_bytes(&svc(), &b, NOW).unwrap() {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, text),
        other => panic!("{other:?}"),
    }
    match sibling.process(&svc(), GROUP, &b, NOW).unwrap() {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, text),
        other => panic!("{other:?}"),
    }
    assert!(by.confirm_sent(&svc(), GROUP, &m).unwrap());
}

#[test]
fn two_emulators_act_as_one_member() {
    for cipher_suite in CipherSuite::SUPPORTED {
        let (mut e1, mut e2, mut carol, _) = setup(cipher_suite);
        assert_eq!(carol.members().len(), 2);

        commit_round(&mut e1, &mut e2, &mut carol);
        assert_agree(&e1, &e2, &carol);
        commit_round(&mut e2, &mut e1, &mut carol);
        assert_agree(&e1, &e2, &carol);

        application_round(&mut e1, &mut e2, &mut carol, b"from device 1");
        application_round(&mut e2, &mut e1, &mut carol, b"from device 2");
        application_round(&mut e1, &mut e2, &mut carol, b"device 1 again");

        // Carol's messages reach both devices.
        let m = carol.encrypt_application(&svc(), b"hi alice", &[]).unwrap();
        for e in [&mut e1, &mut e2] {
            match e.process(&svc(), GROUP, &bytes(&m), NOW).unwrap() {
                ProcessedMessage::Application { data, .. } => assert_eq!(data, b"hi alice"),
                other => panic!("{other:?}"),
            }
        }
        // A commit by Carol, then one more by each device.
        let out = carol
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        carol.merge_pending_commit().unwrap();
        e1.process(&svc(), GROUP, &bytes(&out.commit), NOW).unwrap();
        e2.process(&svc(), GROUP, &bytes(&out.commit), NOW).unwrap();
        assert_agree(&e1, &e2, &carol);
        commit_round(&mut e1, &mut e2, &mut carol);
        commit_round(&mut e2, &mut e1, &mut carol);
        assert_agree(&e1, &e2, &carol);
        assert_eq!(carol.members().len(), 2);
    }
}

#[test]
fn a_confirmed_commit_needs_no_echo() {
    let (mut e1, mut e2, mut carol, _) = setup(CipherSuite(1));
    let out = e1.commit(&svc(), GROUP, vec![], NOW).unwrap();
    e1.confirm_commit(GROUP).unwrap();
    // The echo is then of the previous epoch: refused, nothing changes.
    let before = e1.to_bytes().unwrap();
    let echo = e1.process(&svc(), GROUP, &bytes(&out.commit), NOW);
    assert!(matches!(echo, Err(EmulatorError::Group(_))), "{echo:?}");
    assert_eq!(e1.to_bytes().unwrap(), before);
    e2.process(&svc(), GROUP, &bytes(&out.commit), NOW).unwrap();
    carol
        .process_bytes(&svc(), &bytes(&out.commit), NOW)
        .unwrap();
    assert_agree(&e1, &e2, &carol);
    application_round(&mut e2, &mut e1, &mut carol, b"after");
    assert!(matches!(
        e1.confirm_commit(GROUP),
        Err(EmulatorError::NoPendingCommit)
    ));
}

#[test]
fn tampered_derivation_info_changes_nothing() {
    let (mut e1, mut e2, mut carol, _) = setup(CipherSuite(1));
    let out = e1.commit(&svc(), GROUP, vec![], NOW).unwrap();
    let good = bytes(&out.commit);
    let ext = derivation_info_of(commit_leaf(&out.commit))
        .unwrap()
        .unwrap();
    let ct = ext.ciphertext.as_slice();
    let at = good
        .windows(ct.len())
        .position(|w| w == ct)
        .expect("ciphertext in the commit");
    let before = e2.to_bytes().unwrap();
    let epochs_before: Vec<Vec<u8>> = e2.epoch_ids().iter().map(|e| e.to_vec()).collect();
    for i in [at, at + ct.len() / 2, at + ct.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let err = e2.process(&svc(), GROUP, &bad, NOW).unwrap_err();
        // The membership tag (or the signatures) catch the change first.
        assert!(
            matches!(err, EmulatorError::Group(_) | EmulatorError::Derivation(_)),
            "{err:?}"
        );
        assert_eq!(e2.to_bytes().unwrap(), before);
        assert_eq!(
            e2.epoch_ids()
                .iter()
                .map(|e| e.to_vec())
                .collect::<Vec<_>>(),
            epochs_before
        );
    }
    // The genuine commit still goes through (nothing was punctured).
    e2.process(&svc(), GROUP, &good, NOW).unwrap();
    e1.process(&svc(), GROUP, &good, NOW).unwrap();
    carol.process_bytes(&svc(), &good, NOW).unwrap();
    assert_agree(&e1, &e2, &carol);
    // Replayed: the epoch moved on.
    assert!(e2.process(&svc(), GROUP, &good, NOW).is_err());
}

#[test]
fn an_unknown_emulation_epoch_is_a_clear_error() {
    let (mut e1, mut e2, mut carol, _) = setup(CipherSuite(1));
    // Emulator client 1 moves the emulation group on; its sibling has not seen that yet.
    let emu = e1
        .commit_emulation(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    e1.process_emulation(&svc(), &bytes(&emu.commit), NOW)
        .unwrap();
    assert_ne!(e1.epoch_ids().last(), e2.epoch_ids().last());
    let out = e1.commit(&svc(), GROUP, vec![], NOW).unwrap();
    let b = bytes(&out.commit);
    let before = e2.to_bytes().unwrap();
    assert!(matches!(
        e2.process(&svc(), GROUP, &b, NOW),
        Err(EmulatorError::UnknownEpochId)
    ));
    assert_eq!(e2.to_bytes().unwrap(), before);
    // Once it has the emulation epoch, the commit goes through.
    e2.process_emulation(&svc(), &bytes(&emu.commit), NOW)
        .unwrap();
    assert_eq!(e1.epoch_ids().last(), e2.epoch_ids().last());
    e2.process(&svc(), GROUP, &b, NOW).unwrap();
    e1.process(&svc(), GROUP, &b, NOW).unwrap();
    carol.process_bytes(&svc(), &b, NOW).unwrap();
    assert_agree(&e1, &e2, &carol);
    application_round(&mut e2, &mut e1, &mut carol, b"new epoch");
}

/// Two devices send at the same generation; the delivery service takes the first. The loser
/// reads the winner's message (its key for that generation was kept, H3), then sends again.
#[test]
fn a_race_for_one_generation_is_recovered() {
    let (mut e1, mut e2, mut carol, _) = setup(CipherSuite(1));
    let winner = e1.send_application(&svc(), GROUP, b"winner").unwrap();
    let loser = e2.send_application(&svc(), GROUP, b"loser").unwrap();
    assert_ne!(bytes(&winner), bytes(&loser));
    // Only the winner is delivered.
    match carol.process_bytes(&svc(), &bytes(&winner), NOW).unwrap() {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, b"winner"),
        other => panic!("{other:?}"),
    }
    assert!(e1.confirm_sent(&svc(), GROUP, &winner).unwrap());
    match e2.process(&svc(), GROUP, &bytes(&winner), NOW).unwrap() {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, b"winner"),
        other => panic!("{other:?}"),
    }
    // The loser sends again; everyone reads it.
    application_round(&mut e2, &mut e1, &mut carol, b"loser, again");
    application_round(&mut e1, &mut e2, &mut carol, b"and on");
    assert_agree(&e1, &e2, &carol);
}

#[test]
fn unknown_groups_and_foreign_key_packages_are_errors() {
    let (mut e1, _e2, _carol, _) = setup(CipherSuite(1));
    assert!(matches!(
        e1.commit(&svc(), b"nope", vec![], NOW),
        Err(EmulatorError::UnknownGroup)
    ));
    assert!(matches!(
        e1.send_application(&svc(), b"nope", b"x"),
        Err(EmulatorError::UnknownGroup)
    ));
    assert!(matches!(
        e1.process(&svc(), b"nope", b"x", NOW),
        Err(EmulatorError::UnknownGroup)
    ));
    // A Welcome to a KeyPackage without a DerivationInfoExtension (not the virtual client's).
    let cs = suite(CipherSuite(1));
    let key = cs.signature_generate_key_pair().unwrap();
    let kp = KeyPackageParams::new(CipherSuite(1), Credential::basic(b"x".to_vec()), lifetime())
        .build_fresh(cs, &key)
        .unwrap();
    let mut other = carol(CipherSuite(1));
    let out = other
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
            NOW,
        )
        .unwrap();
    assert!(matches!(
        e1.join_from_welcome(&svc(), out.welcome.as_ref().unwrap(), &kp.key_package, NOW),
        Err(EmulatorError::MissingDerivationInfo)
    ));
}

/// An insider (someone holding the leaf's signature key) sends a validly signed commit from
/// our leaf whose DerivationInfoExtension is tampered, or replays an old one: the sibling's
/// re-derivation refuses it with a typed error and nothing changes.
#[test]
fn a_signed_commit_with_a_bad_derivation_info_is_refused() {
    let (e1, mut e2, _carol, _) = setup(CipherSuite(1));
    let cs = suite(CipherSuite(1));
    let current = derivation_info_of(e1.group(GROUP).unwrap().own_leaf_node().unwrap())
        .unwrap()
        .unwrap();
    let mut flipped = current.ciphertext.as_slice().to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    let tampered = DerivationInfoExtension {
        epoch_id: current.epoch_id.clone(),
        ciphertext: VLBytes::new(flipped),
    };
    let before = e2.to_bytes().unwrap();
    for (ext, expected) in [(tampered, "decryption"), (current, "punctured")] {
        let secrets = LeafSecrets {
            leaf_seed: Secret::new(vec![1; 32]),
            init_seed: Secret::new(vec![2; 32]),
            path_secret_0: Secret::new(vec![3; 32]),
            signature_key: cs.signature_generate_key_pair().unwrap(),
            extensions: vec![ext.to_extension().unwrap()],
        };
        let mut insider = e1.group(GROUP).unwrap().clone();
        let out = insider
            .commit(
                &svc(),
                secrets.commit_options(
                    LeafNodeParams::new(CipherSuite(1), Credential::basic(b"alice".to_vec())),
                    CommitOptions::new(),
                ),
                NOW,
            )
            .unwrap();
        let err = e2
            .process(&svc(), GROUP, &bytes(&out.commit), NOW)
            .unwrap_err();
        match expected {
            "decryption" => assert!(
                matches!(
                    err,
                    EmulatorError::Derivation(DerivationError::Wire(WireError::DecryptionFailed))
                ),
                "{err:?}"
            ),
            _ => assert!(
                matches!(
                    err,
                    EmulatorError::Derivation(DerivationError::Pprf(PprfError::Punctured { .. }))
                ),
                "{err:?}"
            ),
        }
        assert_eq!(e2.to_bytes().unwrap(), before);
    }
}

/// The virtual client adds and removes a plain member (commits by value, with path).
#[test]
fn the_virtual_client_adds_and_removes_members() {
    let cipher_suite = CipherSuite(1);
    let (mut e1, mut e2, mut carol, _) = setup(cipher_suite);
    let cs = suite(cipher_suite);
    let key = cs.signature_generate_key_pair().unwrap();
    let dave_kp = KeyPackageParams::new(
        cipher_suite,
        Credential::basic(b"dave".to_vec()),
        lifetime(),
    )
    .build_fresh(cs, &key)
    .unwrap();
    let out = e2
        .commit(
            &svc(),
            GROUP,
            vec![Proposal::add(dave_kp.key_package.clone())],
            NOW,
        )
        .unwrap();
    let b = bytes(&out.commit);
    e2.process(&svc(), GROUP, &b, NOW).unwrap();
    e1.process(&svc(), GROUP, &b, NOW).unwrap();
    carol.process_bytes(&svc(), &b, NOW).unwrap();
    let mut dave = Group::join_from_welcome(
        &svc(),
        GroupConfig::default(),
        out.welcome.as_ref().unwrap(),
        &dave_kp,
        key,
        None,
        NOW,
    )
    .unwrap();
    assert_agree(&e1, &e2, &carol);
    assert_eq!(dave.epoch_authenticator(), carol.epoch_authenticator());
    let m = e1.send_application(&svc(), GROUP, b"welcome dave").unwrap();
    match dave.process_bytes(&svc(), &bytes(&m), NOW).unwrap() {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, b"welcome dave"),
        other => panic!("{other:?}"),
    }
    e2.process(&svc(), GROUP, &bytes(&m), NOW).unwrap();
    carol.process_bytes(&svc(), &bytes(&m), NOW).unwrap();

    // Emulator client 1 removes Carol.
    let carol_index = carol.own_leaf_index();
    let out = e1
        .commit(&svc(), GROUP, vec![Proposal::remove(carol_index.0)], NOW)
        .unwrap();
    let b = bytes(&out.commit);
    e1.process(&svc(), GROUP, &b, NOW).unwrap();
    e2.process(&svc(), GROUP, &b, NOW).unwrap();
    dave.process_bytes(&svc(), &b, NOW).unwrap();
    assert!(matches!(
        carol.process_bytes(&svc(), &b, NOW).unwrap(),
        ProcessedMessage::Commit {
            removed_us: true,
            ..
        }
    ));
    assert_eq!(
        e1.group(GROUP).unwrap().epoch_authenticator(),
        dave.epoch_authenticator()
    );
    assert_eq!(
        e2.group(GROUP).unwrap().epoch_authenticator(),
        dave.epoch_authenticator()
    );
    assert_eq!(dave.members().len(), 2);
}

/// An Update proposal from one device, committed by Carol: both devices move to the new leaf
/// (the sibling re-derives its key through H2).
#[test]
fn an_update_from_one_device_is_committed_by_a_member() {
    for (by_first, cipher_suite) in [(true, CipherSuite(1)), (false, CipherSuite(3))] {
        let (mut e1, mut e2, mut carol, _) = setup(cipher_suite);
        let (by, sibling) = if by_first {
            (&mut e1, &mut e2)
        } else {
            (&mut e2, &mut e1)
        };
        let proposal = by.propose_update(&svc(), GROUP).unwrap();
        let b = bytes(&proposal);
        assert!(matches!(
            by.process(&svc(), GROUP, &b, NOW).unwrap(),
            ProcessedMessage::Proposal { .. }
        ));
        sibling.process(&svc(), GROUP, &b, NOW).unwrap();
        carol.process_bytes(&svc(), &b, NOW).unwrap();
        let old_key = by
            .group(GROUP)
            .unwrap()
            .own_leaf_node()
            .unwrap()
            .encryption_key
            .clone();
        let out = carol.commit(&svc(), CommitOptions::new(), NOW).unwrap();
        carol.merge_pending_commit().unwrap();
        let c = bytes(&out.commit);
        by.process(&svc(), GROUP, &c, NOW).unwrap();
        sibling.process(&svc(), GROUP, &c, NOW).unwrap();
        assert_agree(&e1, &e2, &carol);
        let leaf = e1.group(GROUP).unwrap().own_leaf_node().unwrap();
        assert_ne!(leaf.encryption_key, old_key);
        assert!(derivation_info_of(leaf).unwrap().is_some());
        application_round(&mut e1, &mut e2, &mut carol, b"after update 1");
        application_round(&mut e2, &mut e1, &mut carol, b"after update 2");
        commit_round(&mut e2, &mut e1, &mut carol);
        assert_agree(&e1, &e2, &carol);
    }
}

mod through_the_delivery_service {
    use super::*;
    use delivery_service::{
        ClientId, Delivered, DeliveryService, GroupId, InMemoryDeliveryService, KeyPackageEntry,
        SendRequest, ServiceError, VcSequence,
    };

    fn id(s: &str) -> ClientId {
        ClientId::new(s)
    }

    /// Drains `who`'s mailbox into `process`; returns the Welcome bytes seen and the last
    /// virtual-client sequence seen.
    fn pump(
        ds: &mut InMemoryDeliveryService,
        who: &str,
        mut process: impl FnMut(&[u8]),
    ) -> (Option<Vec<u8>>, Option<VcSequence>) {
        let mut welcome = None;
        let mut seq = None;
        for d in ds.drain(&id(who)).unwrap() {
            match d {
                Delivered::Welcome(w) => welcome = Some(w.message.to_vec()),
                Delivered::Message { message, .. } => {
                    if let Some(v) = &message.emulator_view {
                        seq = Some(v.vc_sequence);
                    }
                    process(&message.message);
                }
            }
        }
        (welcome, seq)
    }

    fn welcome_of(bytes: &[u8]) -> mls_engine::codec::Welcome {
        match MlsMessage::decode(bytes).unwrap().body {
            MlsMessageBody::Welcome(w) => w,
            _ => panic!("not a Welcome"),
        }
    }

    /// Ordering by the §5.1 delivery service: a KeyPackage published for the virtual client,
    /// the Welcome fanned out to both devices, a race for one epoch lost by one device (it
    /// drops its commit and processes the winner's), and application messages in log order.
    #[test]
    fn two_devices_and_carol_through_the_service() {
        let cipher_suite = CipherSuite(1);
        let (mut e1, mut e2) = alice(cipher_suite);
        let mut carol = carol(cipher_suite);
        let group = GroupId::new(GROUP);
        let mut ds = InMemoryDeliveryService::new();
        for c in ["carol", "alice-1", "alice-2"] {
            ds.register_client(id(c)).unwrap();
        }
        ds.register_virtual_client(id("alice"), &[id("alice-1"), id("alice-2")])
            .unwrap();
        ds.create_group(&id("carol"), group.clone(), None, 0)
            .unwrap();

        let kp = e1
            .publish_key_package(&svc(), cipher_suite, lifetime())
            .unwrap();
        let kp_message = MlsMessage::new(MlsMessageBody::KeyPackage(kp.clone()));
        ds.publish_key_packages(
            &id("alice-1"),
            &id("alice"),
            vec![KeyPackageEntry::ordinary(bytes(&kp_message))],
        )
        .unwrap();
        let taken = ds.consume_key_package(&id("alice")).unwrap();
        let MlsMessageBody::KeyPackage(taken) = MlsMessage::decode(&taken).unwrap().body else {
            panic!("not a KeyPackage")
        };
        let out = carol
            .commit(
                &svc(),
                CommitOptions::new().proposal(Proposal::add(taken)),
                NOW,
            )
            .unwrap();
        let welcome = MlsMessage::new(MlsMessageBody::Welcome(out.welcome.clone().unwrap()));
        ds.send(
            &group,
            &id("carol"),
            SendRequest::commit(0, bytes(&out.commit))
                .with_welcome(vec![id("alice")], bytes(&welcome)),
        )
        .unwrap();
        carol.merge_pending_commit().unwrap();
        pump(&mut ds, "carol", |_| {});
        // Both devices get the Welcome (the sibling is given the KeyPackage itself).
        for (e, who) in [(&mut e1, "alice-1"), (&mut e2, "alice-2")] {
            let (w, _) = pump(&mut ds, who, |_| {});
            e.join_from_welcome(&svc(), &welcome_of(&w.unwrap()), &kp, NOW)
                .unwrap();
        }
        assert_agree(&e1, &e2, &carol);

        // Both devices commit in epoch 1; the service takes device 2's.
        let epoch = carol.epoch();
        let c1 = e1.commit(&svc(), GROUP, vec![], NOW).unwrap();
        let c2 = e2.commit(&svc(), GROUP, vec![], NOW).unwrap();
        ds.send(
            &group,
            &id("alice-2"),
            SendRequest::commit(epoch, bytes(&c2.commit))
                .as_virtual_client(id("alice"), VcSequence(0)),
        )
        .unwrap();
        let refused = ds.send(
            &group,
            &id("alice-1"),
            SendRequest::commit(epoch, bytes(&c1.commit))
                .as_virtual_client(id("alice"), VcSequence(0)),
        );
        assert!(
            matches!(
                refused,
                Err(ServiceError::StaleEpoch { .. })
                    | Err(ServiceError::VirtualClientSequenceMismatch { .. })
            ),
            "{refused:?}"
        );
        e1.abandon_commit(GROUP).unwrap();
        let mut seq = None;
        for (e, who) in [(&mut e1, "alice-1"), (&mut e2, "alice-2")] {
            let (_, s) = pump(&mut ds, who, |m| {
                e.process(&svc(), GROUP, m, NOW).unwrap();
            });
            seq = s;
        }
        pump(&mut ds, "carol", |m| {
            carol.process_bytes(&svc(), m, NOW).unwrap();
        });
        assert_agree(&e1, &e2, &carol);

        // Application messages from each device, in log order.
        let mut next = seq.unwrap().next();
        for (who, text) in [
            ("alice-1", b"one".as_slice()),
            ("alice-2", b"two".as_slice()),
        ] {
            let e = if who == "alice-1" { &mut e1 } else { &mut e2 };
            let m = e.send_application(&svc(), GROUP, text).unwrap();
            ds.send(
                &group,
                &id(who),
                SendRequest::application(bytes(&m)).as_virtual_client(id("alice"), next),
            )
            .unwrap();
            e.confirm_sent(&svc(), GROUP, &m).unwrap();
            next = next.next();
            for (e, who2) in [(&mut e1, "alice-1"), (&mut e2, "alice-2")] {
                pump(&mut ds, who2, |m| {
                    if who2 != who {
                        match e.process(&svc(), GROUP, m, NOW).unwrap() {
                            ProcessedMessage::Application { data, .. } => assert_eq!(data, text),
                            other => panic!("{other:?}"),
                        }
                    }
                });
            }
            pump(&mut ds, "carol", |m| {
                match carol.process_bytes(&svc(), m, NOW).unwrap() {
                    ProcessedMessage::Application { data, .. } => assert_eq!(data, text),
                    other => panic!("{other:?}"),
                }
            });
        }
        assert_agree(&e1, &e2, &carol);
    }
}

/// The whole client state round-trips through bytes mid-conversation: the restored device
/// goes on (a pending KeyPackage, a sibling's commit, messages) exactly like the original.
#[test]
fn the_client_state_round_trips() {
    let cipher_suite = CipherSuite(1);
    let (mut e1, mut e2, mut carol, _) = setup(cipher_suite);
    commit_round(&mut e1, &mut e2, &mut carol);
    let spare = e2
        .publish_key_package(&svc(), cipher_suite, lifetime())
        .unwrap();
    let saved = e2.to_bytes().unwrap();
    let mut restored = EmulatorClient::from_bytes(&P, &saved).unwrap();
    assert_eq!(restored.to_bytes().unwrap(), saved);
    drop(e2);
    commit_round(&mut e1, &mut restored, &mut carol);
    application_round(&mut restored, &mut e1, &mut carol, b"restored");
    commit_round(&mut restored, &mut e1, &mut carol);
    assert_agree(&e1, &restored, &carol);
    // The KeyPackage published before the save still works for the restored device.
    let mut other = Group::create(
        &svc(),
        GroupConfig::default(),
        b"other".to_vec(),
        cipher_suite,
        OwnLeaf {
            params: LeafNodeParams::new(cipher_suite, Credential::basic(b"dave".to_vec())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: suite(cipher_suite).signature_generate_key_pair().unwrap(),
        },
        lifetime(),
        vec![],
    )
    .unwrap();
    let out = other
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(spare.clone())),
            NOW,
        )
        .unwrap();
    other.merge_pending_commit().unwrap();
    let w = out.welcome.unwrap();
    restored.join_from_welcome(&svc(), &w, &spare, NOW).unwrap();
    e1.join_from_welcome(&svc(), &w, &spare, NOW).unwrap();
    for e in [&restored, &e1] {
        assert_eq!(
            e.group(b"other").unwrap().epoch_authenticator(),
            other.epoch_authenticator()
        );
    }
    // Bad state bytes are typed errors.
    assert!(matches!(
        EmulatorClient::from_bytes(&P, &saved[..saved.len() - 1]),
        Err(EmulatorError::Codec(_))
    ));
    let mut bad = saved.clone();
    bad[1] = 9;
    assert!(matches!(
        EmulatorClient::from_bytes(&P, &bad),
        Err(EmulatorError::UnsupportedStateVersion(9))
    ));
}

mod interleavings {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, Copy)]
    enum Op {
        /// A commit with path by device 0 or 1.
        DeviceCommit(usize),
        /// A commit with path by Carol.
        CarolCommit,
        /// An Update proposal by device 0 or 1, committed by Carol.
        DeviceUpdate(usize),
        /// An application message by device 0 or 1.
        DeviceMessage(usize),
        /// An application message by Carol.
        CarolMessage,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..2usize).prop_map(Op::DeviceCommit),
            Just(Op::CarolCommit),
            (0..2usize).prop_map(Op::DeviceUpdate),
            (0..2usize).prop_map(Op::DeviceMessage),
            Just(Op::CarolMessage),
        ]
    }

    fn read_by_all(devices: &mut [EmulatorClient; 2], skip: Option<usize>, b: &[u8]) {
        for (i, e) in devices.iter_mut().enumerate() {
            if Some(i) != skip {
                e.process(&svc(), GROUP, b, NOW).unwrap();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Random sequences of operations by both devices and Carol, delivered in one order
        /// to everyone, converge after every step.
        #[test]
        fn random_operations_converge(ops in proptest::collection::vec(op(), 1..12)) {
            let (e1, e2, mut carol, _) = setup(CipherSuite(1));
            let mut devices = [e1, e2];
            for op in ops {
                match op {
                    Op::DeviceCommit(i) => {
                        let out = devices[i].commit(&svc(), GROUP, vec![], NOW).unwrap();
                        let b = bytes(&out.commit);
                        read_by_all(&mut devices, None, &b);
                        carol.process_bytes(&svc(), &b, NOW).unwrap();
                    }
                    Op::CarolCommit => {
                        let out = carol
                            .commit(&svc(), CommitOptions::new().with_path(), NOW)
                            .unwrap();
                        carol.merge_pending_commit().unwrap();
                        read_by_all(&mut devices, None, &bytes(&out.commit));
                    }
                    Op::DeviceUpdate(i) => {
                        let p = devices[i].propose_update(&svc(), GROUP).unwrap();
                        let b = bytes(&p);
                        read_by_all(&mut devices, None, &b);
                        carol.process_bytes(&svc(), &b, NOW).unwrap();
                        let out = carol.commit(&svc(), CommitOptions::new(), NOW).unwrap();
                        carol.merge_pending_commit().unwrap();
                        read_by_all(&mut devices, None, &bytes(&out.commit));
                    }
                    Op::DeviceMessage(i) => {
                        let m = devices[i].send_application(&svc(), GROUP, b"m").unwrap();
                        let b = bytes(&m);
                        read_by_all(&mut devices, Some(i), &b);
                        carol.process_bytes(&svc(), &b, NOW).unwrap();
                        devices[i].confirm_sent(&svc(), GROUP, &m).unwrap();
                    }
                    Op::CarolMessage => {
                        let m = carol.encrypt_application(&svc(), b"c", &[]).unwrap();
                        read_by_all(&mut devices, None, &bytes(&m));
                    }
                }
                let [e1, e2] = &devices;
                assert_agree(e1, e2, &carol);
            }
        }
    }
}
