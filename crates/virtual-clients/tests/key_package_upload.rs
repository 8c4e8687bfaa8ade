//! The `KeyPackageUpload` action (draft §5.5.1, DESIGN §5 row 13): emulator client 1 uploads
//! two KeyPackages announced in the SafeAAD of an emulation-group Commit; emulator client 2
//! processes that Commit and, without ever being handed a KeyPackage, joins from a Welcome
//! Carol sent to the second one, as does emulator client 1.
//!
//! * the Commit's SafeAAD carries the action as the item of component `VC_COMPONENT_ID`;
//! * both emulator clients and Carol agree on the epoch authenticator, then keep acting as one
//!   member (a commit by the emulator client that joined by ref);
//! * a Welcome for no known `KeyPackageRef` is `UnknownKeyPackageRef`, nothing changes;
//! * the recorded upload survives the state codec (version 2).

use mls_engine::codec::{Credential, KeyPackage, MlsMessage, Proposal, Welcome};
use mls_engine::crypto::CipherSuite;
use mls_engine::group::{CommitOptions, Group, GroupConfig, OwnLeaf, ProcessedMessage};
use mls_engine::messages::{key_package_ref, HpkeKeySource, KeyPackageParams, LeafNodeParams};
use virtual_clients::emulator::{EmulatorClient, EmulatorError, EMULATOR_STATE_VERSION};
use virtual_clients::epoch::VC_COMPONENT_ID;
use virtual_clients::wire::VirtualClientAction;

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
    assert!(e1.emulation_group().uses_safe_aad());
    let key = cs.signature_generate_key_pair().unwrap();
    let device = Credential::basic(b"alice-2".to_vec());
    let kp = KeyPackageParams::new(cipher_suite, device.clone(), lifetime())
        .with_leaf(EmulatorClient::emulation_leaf_params(cipher_suite, device))
        .build_fresh(cs, &key)
        .unwrap();
    let out = e1
        .add_emulator(&svc(), kp.key_package.clone(), NOW)
        .unwrap();
    e1.confirm_emulation_commit(&svc()).unwrap();
    let e2 =
        EmulatorClient::join(&svc(), out.welcome.as_ref().unwrap(), &kp, key, vc, NOW).unwrap();
    (e1, e2)
}

fn carol(cipher_suite: CipherSuite, group_id: &[u8]) -> Group {
    Group::create(
        &svc(),
        GroupConfig::default(),
        group_id.to_vec(),
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

fn add(carol: &mut Group, kp: &KeyPackage) -> Welcome {
    let out = carol
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.clone())),
            NOW,
        )
        .unwrap();
    carol.merge_pending_commit().unwrap();
    out.welcome.unwrap()
}

/// Emulator client 1 uploads two KeyPackages; emulator client 2 processes the Commit.
fn upload(
    e1: &mut EmulatorClient,
    e2: &mut EmulatorClient,
    cipher_suite: CipherSuite,
) -> Vec<KeyPackage> {
    let (out, kps) = e1
        .publish_key_packages(
            &svc(),
            cipher_suite,
            lifetime(),
            2,
            CommitOptions::new(),
            NOW,
        )
        .unwrap();
    assert_eq!(kps.len(), 2);
    e1.confirm_emulation_commit(&svc()).unwrap();
    // The action is the SafeAAD item of component 6, naming both KeyPackageRefs.
    let commit = out.commit.to_bytes().unwrap();
    let mut observer = e2.emulation_group().clone();
    let received = observer
        .process_message(&svc(), &MlsMessage::decode(&commit).unwrap(), NOW)
        .unwrap();
    let item = received
        .safe_aad
        .as_ref()
        .unwrap()
        .aad_items
        .iter()
        .find(|i| i.component_id == VC_COMPONENT_ID)
        .unwrap();
    let VirtualClientAction::KeyPackageUpload(action) =
        VirtualClientAction::from_safe_aad_item(item).unwrap()
    else {
        panic!("not a KeyPackageUpload");
    };
    let refs: Vec<_> = kps
        .iter()
        .map(|kp| key_package_ref(suite(cipher_suite), kp).unwrap())
        .collect();
    let announced: Vec<_> = action
        .key_package_info
        .iter()
        .map(|i| i.key_package_ref.clone())
        .collect();
    assert_eq!(announced, refs);
    let got = e2.process_emulation(&svc(), &commit, NOW).unwrap();
    assert!(matches!(got, ProcessedMessage::Commit { own: false, .. }));
    assert_eq!(
        e1.emulation_group().epoch_authenticator(),
        e2.emulation_group().epoch_authenticator()
    );
    kps
}

#[test]
fn a_sibling_joins_from_a_welcome_to_an_uploaded_key_package() {
    for cipher_suite in CipherSuite::SUPPORTED {
        let (mut e1, mut e2) = alice(cipher_suite);
        let kps = upload(&mut e1, &mut e2, cipher_suite);
        // The recorded upload survives the state codec.
        let stored = e2.to_bytes().unwrap();
        assert_eq!(stored[..2], EMULATOR_STATE_VERSION.to_be_bytes());
        let mut e2 = EmulatorClient::from_bytes(&P, &stored).unwrap();

        let mut carol = carol(cipher_suite, GROUP);
        let welcome = add(&mut carol, &kps[1]);
        assert_eq!(
            e1.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap(),
            GROUP
        );
        assert_eq!(
            e2.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap(),
            GROUP
        );
        let a = carol.epoch_authenticator();
        assert_eq!(e1.group(GROUP).unwrap().epoch_authenticator(), a);
        assert_eq!(e2.group(GROUP).unwrap().epoch_authenticator(), a);
        assert!(e1.leaf_is_consistent(&svc(), GROUP).unwrap());
        assert!(e2.leaf_is_consistent(&svc(), GROUP).unwrap());
        assert_eq!(carol.members().len(), 2);

        // The emulator client that joined by ref commits; its sibling and Carol follow.
        let out = e2.commit(&svc(), GROUP, vec![], NOW).unwrap();
        let b = out.commit.to_bytes().unwrap();
        e2.process(&svc(), GROUP, &b, NOW).unwrap();
        e1.process(&svc(), GROUP, &b, NOW).unwrap();
        carol.process_bytes(&svc(), &b, NOW).unwrap();
        let a = carol.epoch_authenticator();
        assert_eq!(e1.group(GROUP).unwrap().epoch_authenticator(), a);
        assert_eq!(e2.group(GROUP).unwrap().epoch_authenticator(), a);

        // The other uploaded KeyPackage still works, in another group.
        let mut other = carol_named(cipher_suite, b"second");
        let welcome = add(&mut other, &kps[0]);
        assert_eq!(
            e2.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap(),
            b"second"
        );
        assert_eq!(
            e1.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap(),
            b"second"
        );
        assert_eq!(
            e1.group(b"second").unwrap().epoch_authenticator(),
            other.epoch_authenticator()
        );
        assert_eq!(
            e2.group(b"second").unwrap().epoch_authenticator(),
            other.epoch_authenticator()
        );
    }
}

#[test]
fn a_welcome_for_an_unknown_ref_is_a_typed_error() {
    let cipher_suite = CipherSuite(1);
    let (mut e1, mut e2) = alice(cipher_suite);
    upload(&mut e1, &mut e2, cipher_suite);
    // A KeyPackage of the virtual client no emulator client announced.
    let stranger = e1
        .publish_key_package(&svc(), cipher_suite, lifetime())
        .unwrap();
    let mut carol = carol(cipher_suite, GROUP);
    let welcome = add(&mut carol, &stranger);
    let before = e2.to_bytes().unwrap();
    assert!(matches!(
        e2.join_from_welcome_by_ref(&svc(), &welcome, NOW),
        Err(EmulatorError::UnknownKeyPackageRef)
    ));
    assert_eq!(e2.to_bytes().unwrap(), before);
    assert!(e2.group(GROUP).is_none());
}

#[test]
fn an_uploaded_key_package_is_used_once() {
    let cipher_suite = CipherSuite(1);
    let (mut e1, mut e2) = alice(cipher_suite);
    let kps = upload(&mut e1, &mut e2, cipher_suite);
    let mut carol = carol(cipher_suite, GROUP);
    let welcome = add(&mut carol, &kps[1]);
    e2.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap();
    let mut again = carol_named(cipher_suite, b"again");
    let welcome = add(&mut again, &kps[1]);
    assert!(matches!(
        e2.join_from_welcome_by_ref(&svc(), &welcome, NOW),
        Err(EmulatorError::UnknownKeyPackageRef)
    ));
}

fn carol_named(cipher_suite: CipherSuite, group_id: &[u8]) -> Group {
    carol(cipher_suite, group_id)
}

/// A virtual client removed from a group can be added back: after Carol's Remove both
/// emulator clients hold the group as `removed_us`; a Welcome to a newly uploaded KeyPackage
/// replaces that state (an active group of the same ID would be `GroupExists`).
#[test]
fn a_removed_virtual_client_is_added_back() {
    let cipher_suite = CipherSuite(1);
    let (mut e1, mut e2) = alice(cipher_suite);
    let kps = upload(&mut e1, &mut e2, cipher_suite);
    let mut carol = carol(cipher_suite, GROUP);
    let welcome = add(&mut carol, &kps[0]);
    e1.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap();
    e2.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap();
    // Joining again while the group is active is refused.
    let spare = add(&mut carol.clone(), &kps[1]);
    assert!(matches!(
        e1.clone().join_from_welcome_by_ref(&svc(), &spare, NOW),
        Err(EmulatorError::GroupExists)
    ));

    let alice_leaf = e1.group(GROUP).unwrap().own_leaf_index().0;
    let out = carol
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::remove(alice_leaf)),
            NOW,
        )
        .unwrap();
    carol.merge_pending_commit().unwrap();
    let removal = out.commit.to_bytes().unwrap();
    for e in [&mut e1, &mut e2] {
        let processed = e.process(&svc(), GROUP, &removal, NOW).unwrap();
        assert!(matches!(
            processed,
            ProcessedMessage::Commit {
                removed_us: true,
                ..
            }
        ));
    }
    let welcome = add(&mut carol, &kps[1]);
    for e in [&mut e1, &mut e2] {
        assert_eq!(
            e.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap(),
            GROUP
        );
        assert_eq!(
            e.group(GROUP).unwrap().epoch_authenticator(),
            carol.epoch_authenticator()
        );
        assert!(e.leaf_is_consistent(&svc(), GROUP).unwrap());
    }
}
