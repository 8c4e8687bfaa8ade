//! Design hooks H5 (safe exporter) and H6 (SafeAAD) of draft-ietf-mls-extensions-08 at the
//! group level: three members, SafeAAD in application messages, proposals and commits (both
//! handshake framings), malformed SafeAAD refused with the state unchanged, and
//! `safe_export_secret` agreed by all members, consumed once per epoch, renewed by a commit.

use mls_engine::codec::{Credential, Extension, Lifetime, MlsMessage, MlsMessageBody, Proposal};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SignatureKeyPair};
use mls_engine::extensions::{
    AppDataDictionary, ComponentsList, ExporterError, SafeAad, SafeAadError, SafeAadItem,
    APP_DATA_DICTIONARY, SAFE_AAD,
};
use mls_engine::framing::ReuseGuard;
use mls_engine::group::{
    CommitOptions, Group, GroupConfig, GroupError, HandshakeWireFormat, OwnLeaf, ProcessedMessage,
    Services,
};
use mls_engine::messages::{
    GroupRequirementsError, HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams,
};

static P: RustCrypto = RustCrypto;
const NOW: u64 = 1_700_000_000;
const SUITE: CipherSuite = CipherSuite(1);
const COMPONENT: u32 = 0x10;

fn svc() -> Services<'static> {
    Services::new(&P)
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 86_400,
    }
}

/// Leaf parameters that support the `app_data_dictionary` extension.
fn leaf_params(name: &str) -> LeafNodeParams {
    let mut params = LeafNodeParams::new(SUITE, Credential::basic(name.as_bytes().to_vec()));
    params.capabilities.extensions.push(APP_DATA_DICTIONARY);
    params
}

fn signer() -> SignatureKeyPair {
    P.suite(SUITE)
        .unwrap()
        .signature_generate_key_pair()
        .unwrap()
}

fn key_package(name: &str, signer: &SignatureKeyPair) -> KeyPackageBundle {
    let cs = P.suite(SUITE).unwrap();
    KeyPackageParams {
        leaf: leaf_params(name),
        lifetime: lifetime(),
        extensions: vec![],
    }
    .build_fresh(cs, signer)
    .unwrap()
}

/// The GroupContext extension that switches SafeAAD on.
fn safe_aad_dictionary() -> Extension {
    let mut dictionary = AppDataDictionary::default();
    dictionary.insert(
        SAFE_AAD,
        ComponentsList::new(vec![COMPONENT]).to_bytes().unwrap(),
    );
    dictionary.to_extension().unwrap()
}

/// Alice creates a group with `extensions` and adds Bob and Carol in one commit.
fn three_members(wire: HandshakeWireFormat, extensions: Vec<Extension>) -> Vec<Group> {
    three_members_with(
        GroupConfig {
            handshake_wire_format: wire,
            ..GroupConfig::default()
        },
        extensions,
    )
}

fn three_members_with(config: GroupConfig, extensions: Vec<Extension>) -> Vec<Group> {
    let mut alice = Group::create(
        &svc(),
        config,
        b"ext group".to_vec(),
        SUITE,
        OwnLeaf {
            params: leaf_params("alice"),
            encryption_key: HpkeKeySource::Generate,
            signature_key: signer(),
        },
        lifetime(),
        extensions,
    )
    .unwrap();
    let (bob_signer, carol_signer) = (signer(), signer());
    let bob_kp = key_package("bob", &bob_signer);
    let carol_kp = key_package("carol", &carol_signer);
    let out = alice
        .commit(
            &svc(),
            CommitOptions::new()
                .proposal(Proposal::add(bob_kp.key_package.clone()))
                .proposal(Proposal::add(carol_kp.key_package.clone())),
            NOW,
        )
        .unwrap();
    alice.merge_pending_commit().unwrap();
    let welcome = out.welcome.unwrap();
    let join = |kp: &KeyPackageBundle, s: &SignatureKeyPair| {
        Group::join_from_welcome(&svc(), config, &welcome, kp, s.clone(), None, NOW).unwrap()
    };
    let bob = join(&bob_kp, &bob_signer);
    let carol = join(&carol_kp, &carol_signer);
    vec![alice, bob, carol]
}

fn assert_agree(groups: &[Group]) {
    for g in &groups[1..] {
        assert_eq!(g.epoch(), groups[0].epoch());
        assert_eq!(g.epoch_authenticator(), groups[0].epoch_authenticator());
    }
}

#[test]
fn safe_aad_round_trips_in_every_message_kind() {
    for wire in [HandshakeWireFormat::Public, HandshakeWireFormat::Private] {
        let mut groups = three_members(wire, vec![safe_aad_dictionary()]);
        assert!(groups.iter().all(Group::uses_safe_aad));

        // Application message from Bob.
        let aad = SafeAad::from_pairs([(COMPONENT, b"app".to_vec()), (0x20, vec![])]).unwrap();
        let message = groups[1]
            .encrypt_application_with_safe_aad(&svc(), b"hi", &aad, b"rest", ReuseGuard::Random)
            .unwrap();
        for i in [0, 2] {
            let received = groups[i].process_message(&svc(), &message, NOW).unwrap();
            assert_eq!(received.safe_aad.as_ref(), Some(&aad));
            assert_eq!(received.application_aad, b"rest");
            assert_eq!(
                received.authenticated_data,
                aad.prepend_to(b"rest").unwrap()
            );
            assert!(matches!(
                received.processed,
                ProcessedMessage::Application { ref data, .. } if data == b"hi"
            ));
        }

        // Proposal from Carol (an Add of Dave).
        let dave_signer = signer();
        let dave_kp = key_package("dave", &dave_signer);
        let proposal_aad =
            SafeAad::new(vec![SafeAadItem::new(COMPONENT, b"prop".to_vec())]).unwrap();
        let (proposal, _) = groups[2]
            .propose_with_safe_aad(
                &svc(),
                Proposal::add(dave_kp.key_package.clone()),
                &proposal_aad,
                b"",
            )
            .unwrap();
        for i in [0, 1] {
            let received = groups[i].process_message(&svc(), &proposal, NOW).unwrap();
            assert_eq!(received.safe_aad.as_ref(), Some(&proposal_aad));
            assert!(received.application_aad.is_empty());
            assert!(matches!(
                received.processed,
                ProcessedMessage::Proposal { .. }
            ));
        }

        // Commit from Alice.
        let commit_aad =
            SafeAad::from_pairs([(0x20, b"d".to_vec()), (COMPONENT, b"c".to_vec())]).unwrap();
        let out = groups[0]
            .commit(
                &svc(),
                CommitOptions {
                    safe_aad: Some(commit_aad.clone()),
                    authenticated_data: b"tail".to_vec(),
                    ..CommitOptions::new()
                },
                NOW,
            )
            .unwrap();
        groups[0].merge_pending_commit().unwrap();
        for i in [1, 2] {
            let received = groups[i].process_message(&svc(), &out.commit, NOW).unwrap();
            assert_eq!(received.safe_aad.as_ref(), Some(&commit_aad));
            assert_eq!(received.application_aad, b"tail");
            assert!(matches!(
                received.processed,
                ProcessedMessage::Commit { .. }
            ));
        }
        assert_agree(&groups);

        // Plain APIs put an empty SafeAAD in front; receivers see it.
        let plain = groups[2].encrypt_application(&svc(), b"x", b"aad").unwrap();
        let received = groups[0].process_message(&svc(), &plain, NOW).unwrap();
        assert_eq!(received.safe_aad, Some(SafeAad::default()));
        assert_eq!(received.application_aad, b"aad");
        assert_eq!(received.authenticated_data, [&[0u8][..], b"aad"].concat());
    }
}

/// Replaces the `authenticated_data` of a PrivateMessage.
fn with_private_aad(message: &MlsMessage, aad: &[u8]) -> MlsMessage {
    let mut m = message.clone();
    if let MlsMessageBody::PrivateMessage(p) = &mut m.body {
        p.authenticated_data = aad.to_vec().into();
    } else {
        panic!("not a PrivateMessage");
    }
    m
}

/// A predicate on the expected error.
type ErrorCheck = fn(&GroupError) -> bool;

#[test]
fn malformed_safe_aad_is_refused_and_the_state_is_unchanged() {
    let mut groups = three_members(HandshakeWireFormat::Private, vec![safe_aad_dictionary()]);
    let message = groups[1].encrypt_application(&svc(), b"hi", b"").unwrap();
    let before = groups[0].to_bytes().unwrap();
    let cases: [(&[u8], ErrorCheck); 4] = [
        (&[], |e| {
            matches!(e, GroupError::SafeAad(SafeAadError::Codec(_)))
        }),
        (&[7, 0, 0], |e| {
            matches!(e, GroupError::SafeAad(SafeAadError::Codec(_)))
        }),
        (&[10, 0, 0, 0, 7, 0, 0, 0, 0, 6, 0], |e| {
            *e == GroupError::SafeAad(SafeAadError::NotSorted {
                previous: 7,
                next: 6,
            })
        }),
        (&[10, 0, 0, 0, 7, 0, 0, 0, 0, 7, 0], |e| {
            *e == GroupError::SafeAad(SafeAadError::DuplicateComponent(7))
        }),
    ];
    for (aad, check) in cases {
        let bad = with_private_aad(&message, aad);
        let e = groups[0].process(&svc(), &bad, NOW).unwrap_err();
        assert!(check(&e), "{aad:?}: {e:?}");
        let e = groups[0].process_message(&svc(), &bad, NOW).unwrap_err();
        assert!(check(&e), "{aad:?}: {e:?}");
        assert_eq!(groups[0].to_bytes().unwrap(), before);
    }
    // The genuine message still opens afterwards.
    groups[0].process(&svc(), &message, NOW).unwrap();

    // Misordered items are refused when sending, too.
    let unsorted = SafeAad {
        aad_items: vec![SafeAadItem::new(9, vec![]), SafeAadItem::new(8, vec![])],
    };
    let before = groups[1].to_bytes().unwrap();
    assert_eq!(
        groups[1]
            .encrypt_application_with_safe_aad(&svc(), b"x", &unsorted, b"", ReuseGuard::Random)
            .unwrap_err(),
        GroupError::SafeAad(SafeAadError::NotSorted {
            previous: 9,
            next: 8
        })
    );
    assert_eq!(groups[1].to_bytes().unwrap(), before);
}

#[test]
fn without_the_safe_aad_component_authenticated_data_is_untouched() {
    let config = GroupConfig {
        max_past_epochs: 2,
        ..GroupConfig::default()
    };
    let mut groups = three_members_with(config, vec![]);
    assert!(!groups[0].uses_safe_aad());
    let aad = SafeAad::from_pairs([(COMPONENT, vec![1])]).unwrap();
    assert_eq!(
        groups[0]
            .encrypt_application_with_safe_aad(&svc(), b"x", &aad, b"", ReuseGuard::Random)
            .unwrap_err(),
        GroupError::SafeAadNotInUse
    );
    let message = groups[0]
        .encrypt_application(&svc(), b"x", &[0xff])
        .unwrap();
    let received = groups[1].process_message(&svc(), &message, NOW).unwrap();
    assert_eq!(received.safe_aad, None);
    assert_eq!(received.application_aad, [0xff]);

    // A GroupContextExtensions commit switches SafeAAD on for the next epoch.
    // Sent now, delivered after SafeAAD is switched on: read per its own epoch.
    let late = groups[2]
        .encrypt_application(&svc(), b"late", b"old")
        .unwrap();
    let (proposal, _) = groups[1]
        .propose_group_context_extensions(&svc(), vec![safe_aad_dictionary()])
        .unwrap();
    for i in [0, 2] {
        groups[i].process(&svc(), &proposal, NOW).unwrap();
    }
    let out = groups[0].commit(&svc(), CommitOptions::new(), NOW).unwrap();
    groups[0].merge_pending_commit().unwrap();
    for i in [1, 2] {
        let received = groups[i].process_message(&svc(), &out.commit, NOW).unwrap();
        // The commit was sent in the old epoch: no SafeAAD.
        assert_eq!(received.safe_aad, None);
    }
    assert_agree(&groups);
    assert!(groups.iter().all(Group::uses_safe_aad));
    let received = groups[0].process_message(&svc(), &late, NOW).unwrap();
    assert_eq!(received.safe_aad, None);
    assert_eq!(received.application_aad, b"old");
    let message = groups[2]
        .encrypt_application_with_safe_aad(&svc(), b"y", &aad, b"", ReuseGuard::Random)
        .unwrap();
    let received = groups[0].process_message(&svc(), &message, NOW).unwrap();
    assert_eq!(received.safe_aad, Some(aad));
}

#[test]
fn malformed_app_data_dictionary_is_refused() {
    let groups = three_members(HandshakeWireFormat::Public, vec![]);
    let mut g = groups[0].clone();
    // component_data with 3 before 2.
    let unsorted = Extension::new(APP_DATA_DICTIONARY, vec![10, 0, 0, 0, 3, 0, 0, 0, 0, 2, 0]);
    let e = g
        .propose_group_context_extensions(&svc(), vec![unsorted.clone()])
        .unwrap_err();
    assert!(
        matches!(
            e,
            GroupError::Requirements(GroupRequirementsError::MalformedAppDataDictionary(_))
        ),
        "{e:?}"
    );
    let e = Group::create(
        &svc(),
        GroupConfig::default(),
        b"g".to_vec(),
        SUITE,
        OwnLeaf {
            params: leaf_params("x"),
            encryption_key: HpkeKeySource::Generate,
            signature_key: signer(),
        },
        lifetime(),
        vec![unsorted],
    )
    .unwrap_err();
    assert!(matches!(e, GroupError::Requirements(_)), "{e:?}");
}

#[test]
fn safe_export_secret_is_agreed_consumed_once_and_renewed_by_a_commit() {
    let mut groups = three_members(HandshakeWireFormat::Public, vec![]);
    let first: Vec<_> = groups
        .iter_mut()
        .map(|g| g.safe_export_secret(&svc(), 6).unwrap())
        .collect();
    assert_eq!(first[0].len(), 32);
    assert!(first.iter().all(|s| s == &first[0]));
    // Different components get different secrets.
    let other = groups[0].safe_export_secret(&svc(), 7).unwrap();
    assert_ne!(other, first[0]);
    assert_eq!(other, groups[1].safe_export_secret(&svc(), 7).unwrap());
    // The secret is not the RFC 9420 exporter of the same epoch under any obvious label.
    assert_ne!(
        groups[0]
            .export_secret(&svc(), "application_export", &[], 32)
            .unwrap(),
        first[0]
    );

    // Asking twice in one epoch is refused, also after a state round trip.
    let before = groups[0].to_bytes().unwrap();
    assert_eq!(
        groups[0].safe_export_secret(&svc(), 6).unwrap_err(),
        GroupError::SafeExport(ExporterError::AlreadyConsumed(6))
    );
    assert_eq!(groups[0].to_bytes().unwrap(), before);
    let mut restored = Group::from_bytes(&before).unwrap();
    assert!(restored.safe_export_consumed(6));
    assert!(!restored.safe_export_consumed(8));
    assert_eq!(
        restored.safe_export_secret(&svc(), 6).unwrap_err(),
        GroupError::SafeExport(ExporterError::AlreadyConsumed(6))
    );
    assert_eq!(
        restored.safe_export_secret(&svc(), 8).unwrap(),
        groups[2].safe_export_secret(&svc(), 8).unwrap()
    );
    // IDs without a leaf.
    assert_eq!(
        groups[0].safe_export_secret(&svc(), 0x1_0000).unwrap_err(),
        GroupError::SafeExport(ExporterError::ComponentIdOutOfRange(0x1_0000))
    );

    // A commit starts a new Exporter Tree; the old one is gone with its epoch.
    let out = groups[1]
        .commit(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    groups[1].merge_pending_commit().unwrap();
    for i in [0, 2] {
        groups[i].process(&svc(), &out.commit, NOW).unwrap();
    }
    assert_agree(&groups);
    let second: Vec<_> = groups
        .iter_mut()
        .map(|g| {
            assert!(!g.safe_export_consumed(6));
            g.safe_export_secret(&svc(), 6).unwrap()
        })
        .collect();
    assert!(second.iter().all(|s| s == &second[0]));
    assert_ne!(second[0], first[0]);
}

#[test]
fn a_joiner_gets_the_same_safe_export_secret() {
    let mut groups = three_members(HandshakeWireFormat::Public, vec![]);
    let dave_signer = signer();
    let dave_kp = key_package("dave", &dave_signer);
    let out = groups[0]
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(dave_kp.key_package.clone())),
            NOW,
        )
        .unwrap();
    groups[0].merge_pending_commit().unwrap();
    let mut dave = Group::join_from_welcome(
        &svc(),
        GroupConfig::default(),
        out.welcome.as_ref().unwrap(),
        &dave_kp,
        dave_signer,
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        dave.safe_export_secret(&svc(), 0xffff).unwrap(),
        groups[0].safe_export_secret(&svc(), 0xffff).unwrap()
    );
}

#[test]
fn safe_aad_in_external_commits_and_new_member_proposals() {
    let mut groups = three_members(HandshakeWireFormat::Public, vec![safe_aad_dictionary()]);
    let info = groups[0].group_info(&svc(), true, true).unwrap();

    // A new member's Add request gets an empty SafeAAD.
    let erin_signer = signer();
    let erin_kp = key_package("erin", &erin_signer);
    let request = mls_engine::group::new_member_proposal(
        &svc(),
        groups[0].group_context(),
        erin_kp.key_package.clone(),
        &erin_signer,
    )
    .unwrap();
    let received = groups[1].process_message(&svc(), &request, NOW).unwrap();
    assert_eq!(received.safe_aad, Some(SafeAad::default()));
    groups[0].process(&svc(), &request, NOW).unwrap();
    groups[2].process(&svc(), &request, NOW).unwrap();
    for g in &mut groups {
        g.clear_pending_proposals();
    }

    // An external commit carries the joiner's items.
    let aad = SafeAad::from_pairs([(COMPONENT, b"joining".to_vec())]).unwrap();
    let (dave, commit) = Group::join_by_external_commit(
        &svc(),
        GroupConfig::default(),
        &info,
        None,
        OwnLeaf {
            params: leaf_params("dave"),
            encryption_key: HpkeKeySource::Generate,
            signature_key: signer(),
        },
        mls_engine::group::ExternalCommitOptions {
            safe_aad: Some(aad.clone()),
            ..Default::default()
        },
        NOW,
    )
    .unwrap();
    for g in &mut groups {
        let received = g.process_message(&svc(), &commit, NOW).unwrap();
        assert_eq!(received.safe_aad.as_ref(), Some(&aad));
    }
    groups.push(dave);
    assert_agree(&groups);
}
