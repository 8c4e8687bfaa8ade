//! Membership of the emulation group (draft §5.4 "Adding emulator clients", DESIGN §5 row
//! 12 (a)): the `DeviceState` state transfer, a group created by one emulator client reaching
//! its siblings, and the removal of an emulator client with the post-compromise update.
//!
//! * a new emulator client merges the adder's `DeviceState` and then follows, commits and
//!   sends in every higher-level group (two groups, suites 1 and 3), joins from a Welcome to
//!   a transferred unused KeyPackage, and its state survives the codec;
//! * a group created by one emulator client is installed by its siblings from a
//!   `group_state_message`; a sibling that did not create it commits and sends, and Carol (a
//!   plain member) and Bob (another virtual client) agree;
//! * after `remove_emulator` and `update_all_groups` the removed client is `Removed` and a
//!   copy of its state from before the removal can neither follow a group nor read it;
//! * malformed or inconsistent transfers are typed errors and change nothing; a stale transfer
//!   of a group already held changes nothing;
//! * the wire layout of `EmulationMessage` / `DeviceState`.

use mls_engine::codec::{decode_exact, encode, Credential, KeyPackage, KeyPackageRef, Proposal};
use mls_engine::crypto::{CipherSuite, Secret};
use mls_engine::group::{CommitOptions, Group, GroupConfig, OwnLeaf, ProcessedMessage};
use mls_engine::messages::{HpkeKeySource, KeyPackageParams, LeafNodeParams};
use tls_codec::{SecretVLBytes, VLBytes};
use virtual_clients::emulator::EmulatorClient;
use virtual_clients::emulator::EmulatorError;
use virtual_clients::epoch::EmulationEpochSecrets;
use virtual_clients::transfer::{
    DeviceState, EmulationMessage, KeyPackageKeys, TransferError, TransferredGroup, UpdateLeaf,
    UploadedKeyPackageRef, VirtualClientLeaf, DEVICE_STATE,
};

mod common;
use common::{lifetime, suite, svc, NOW, P};

const CS1: CipherSuite = CipherSuite(1);
const CS3: CipherSuite = CipherSuite(3);

/// The first emulator client of virtual client `name`.
fn first_device(cipher_suite: CipherSuite, name: &str) -> EmulatorClient {
    EmulatorClient::create(
        &svc(),
        format!("{name}-emulation").into_bytes(),
        cipher_suite,
        OwnLeaf {
            params: EmulatorClient::emulation_leaf_params(
                cipher_suite,
                Credential::basic(format!("{name}-0").into_bytes()),
            ),
            encryption_key: HpkeKeySource::Generate,
            signature_key: suite(cipher_suite).signature_generate_key_pair().unwrap(),
        },
        lifetime(),
        Credential::basic(name.as_bytes().to_vec()),
    )
    .unwrap()
}

/// Adds a new emulator client to `devices` through `devices[adder]`: the add Commit (the
/// others process it), the join, then the adder's state transfer, which every other device
/// processes (the new one merges it; the old ones keep their groups byte for byte).
fn add_device(devices: &mut Vec<EmulatorClient>, adder: usize, vc: &str) {
    let cipher_suite = devices[adder].emulation_group().cipher_suite();
    let cs = suite(cipher_suite);
    let name = format!("device-{}", devices.len());
    let key = cs.signature_generate_key_pair().unwrap();
    let device = Credential::basic(name.into_bytes());
    let kp = KeyPackageParams::new(cipher_suite, device.clone(), lifetime())
        .with_leaf(EmulatorClient::emulation_leaf_params(cipher_suite, device))
        .build_fresh(cs, &key)
        .unwrap();
    let out = devices[adder]
        .add_emulator(&svc(), kp.key_package.clone(), NOW)
        .unwrap();
    devices[adder].confirm_emulation_commit(&svc()).unwrap();
    let commit = out.commit.to_bytes().unwrap();
    for (i, d) in devices.iter_mut().enumerate() {
        if i != adder {
            d.process_emulation(&svc(), &commit, NOW).unwrap();
        }
    }
    let vc = Credential::basic(vc.as_bytes().to_vec());
    let mut new =
        EmulatorClient::join(&svc(), out.welcome.as_ref().unwrap(), &kp, key, vc, NOW).unwrap();
    assert!(new.group_ids().next().is_none());

    let transfer = devices[adder]
        .device_state_message(&svc())
        .unwrap()
        .to_bytes()
        .unwrap();
    // The sender cannot open its own echo (its key was used up): it drops it; processing it
    // anyway is an error and changes nothing.
    let before = devices[adder].to_bytes().unwrap();
    assert!(matches!(
        devices[adder].process_emulation(&svc(), &transfer, NOW),
        Err(EmulatorError::Group(_))
    ));
    assert_eq!(devices[adder].to_bytes().unwrap(), before);
    let got = new.process_emulation(&svc(), &transfer, NOW).unwrap();
    // Returned as application data without the secrets.
    assert!(matches!(got, ProcessedMessage::Application { ref data, .. } if data.is_empty()));
    for (i, d) in devices.iter_mut().enumerate() {
        if i != adder {
            let before = groups_bytes(d);
            d.process_emulation(&svc(), &transfer, NOW).unwrap();
            assert_eq!(groups_bytes(d), before, "a sibling's groups are left alone");
        }
    }
    let adder_groups: Vec<Vec<u8>> = devices[adder].group_ids().map(<[u8]>::to_vec).collect();
    let new_groups: Vec<Vec<u8>> = new.group_ids().map(<[u8]>::to_vec).collect();
    assert_eq!(new_groups, adder_groups);
    assert_eq!(new.epoch_ids(), devices[adder].epoch_ids());
    for g in &adder_groups {
        assert_eq!(
            new.group(g).unwrap().epoch_authenticator(),
            devices[adder].group(g).unwrap().epoch_authenticator()
        );
        assert!(new.leaf_is_consistent(&svc(), g).unwrap());
    }
    devices.push(new);
}

fn groups_bytes(d: &EmulatorClient) -> Vec<Vec<u8>> {
    d.group_ids()
        .map(|g| d.group(g).unwrap().to_bytes().unwrap())
        .collect()
}

fn plain(cipher_suite: CipherSuite, name: &str, group_id: &[u8]) -> Group {
    Group::create(
        &svc(),
        GroupConfig::default(),
        group_id.to_vec(),
        cipher_suite,
        OwnLeaf {
            params: LeafNodeParams::new(cipher_suite, Credential::basic(name.as_bytes().to_vec())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: suite(cipher_suite).signature_generate_key_pair().unwrap(),
        },
        lifetime(),
        vec![],
    )
    .unwrap()
}

/// `carol` adds `kp` to her group and merges; the Welcome.
fn carol_adds(carol: &mut Group, kp: &KeyPackage) -> mls_engine::codec::Welcome {
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

/// A Commit of `devices[from]` in `group_id`: it confirms, its siblings and `others` process.
fn vc_commit(
    devices: &mut [EmulatorClient],
    from: usize,
    others: &mut [&mut Group],
    group_id: &[u8],
    proposals: Vec<Proposal>,
) -> mls_engine::group::CommitOutput {
    let out = devices[from]
        .commit(&svc(), group_id, proposals, NOW)
        .unwrap();
    devices[from].confirm_commit(group_id).unwrap();
    let bytes = out.commit.to_bytes().unwrap();
    for (i, d) in devices.iter_mut().enumerate() {
        if i != from {
            let got = d.process(&svc(), group_id, &bytes, NOW).unwrap();
            assert!(matches!(got, ProcessedMessage::Commit { own: false, .. }));
        }
    }
    for g in others.iter_mut() {
        g.process_bytes(&svc(), &bytes, NOW).unwrap();
    }
    out
}

/// A Commit with path of plain member `carol`; every device processes it.
fn carol_commit(carol: &mut Group, devices: &mut [EmulatorClient], group_id: &[u8]) {
    let out = carol
        .commit(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    carol.merge_pending_commit().unwrap();
    let bytes = out.commit.to_bytes().unwrap();
    for d in devices.iter_mut() {
        d.process(&svc(), group_id, &bytes, NOW).unwrap();
    }
}

/// `devices[from]` sends `data` in `group_id`; its siblings and `others` read it.
fn vc_send(
    devices: &mut [EmulatorClient],
    from: usize,
    others: &mut [&mut Group],
    group_id: &[u8],
    data: &[u8],
) {
    let message = devices[from]
        .send_application(&svc(), group_id, data)
        .unwrap();
    devices[from]
        .confirm_sent(&svc(), group_id, &message)
        .unwrap();
    let bytes = message.to_bytes().unwrap();
    for (i, d) in devices.iter_mut().enumerate() {
        if i != from {
            let got = d.process(&svc(), group_id, &bytes, NOW).unwrap();
            assert!(matches!(got, ProcessedMessage::Application { data: ref x, .. } if x == data));
        }
    }
    for g in others.iter_mut() {
        let got = g.process_bytes(&svc(), &bytes, NOW).unwrap();
        assert!(matches!(got, ProcessedMessage::Application { data: ref x, .. } if x == data));
    }
}

fn assert_agree(devices: &[EmulatorClient], others: &[&Group], group_id: &[u8]) {
    let a = others[0].epoch_authenticator();
    for g in others {
        assert_eq!(g.epoch_authenticator(), a);
    }
    for d in devices {
        assert_eq!(d.group(group_id).unwrap().epoch_authenticator(), a);
        assert!(d.leaf_is_consistent(&svc(), group_id).unwrap());
    }
}

/// A new emulation epoch by an empty commit of `devices[from]`.
fn next_emulation_epoch(devices: &mut [EmulatorClient], from: usize) {
    let out = devices[from]
        .commit_emulation(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    devices[from].confirm_emulation_commit(&svc()).unwrap();
    let bytes = out.commit.to_bytes().unwrap();
    for (i, d) in devices.iter_mut().enumerate() {
        if i != from {
            d.process_emulation(&svc(), &bytes, NOW).unwrap();
        }
    }
}

const G1: &[u8] = b"group-1";
const G2: &[u8] = b"group-2";
const G3: &[u8] = b"group-3";

/// Alice (one device so far) in Carol's groups G1 and G2, her leaves derived from different
/// emulation epochs, with an unused KeyPackage; then `extra` more devices added with the
/// state transfer. Returns Alice's devices, Carol's groups and the unused KeyPackage.
fn alice_in_two_groups(
    cipher_suite: CipherSuite,
    extra: usize,
) -> (Vec<EmulatorClient>, Group, Group, KeyPackage) {
    let mut devices = vec![first_device(cipher_suite, "alice")];
    let mut c1 = plain(cipher_suite, "carol", G1);
    let mut c2 = plain(cipher_suite, "carol", G2);
    for carol in [&mut c1, &mut c2] {
        let kp = devices[0]
            .publish_key_package(&svc(), cipher_suite, lifetime())
            .unwrap();
        let welcome = carol_adds(carol, &kp);
        devices[0]
            .join_from_welcome(&svc(), &welcome, &kp, NOW)
            .unwrap();
        next_emulation_epoch(&mut devices, 0);
    }
    // Traffic before the transfer: a commit and a message in G1 (its leaf moves to a newer
    // emulation epoch than G2's), and an unused KeyPackage.
    vc_commit(&mut devices, 0, &mut [&mut c1], G1, vec![]);
    vc_send(&mut devices, 0, &mut [&mut c1], G1, b"before");
    next_emulation_epoch(&mut devices, 0);
    let unused = devices[0]
        .publish_key_package(&svc(), cipher_suite, lifetime())
        .unwrap();
    // An Update proposal of the virtual client in G2, not yet committed (it travels too).
    let proposal = devices[0]
        .propose_update(&svc(), G2)
        .unwrap()
        .to_bytes()
        .unwrap();
    devices[0].process(&svc(), G2, &proposal, NOW).unwrap();
    c2.process_bytes(&svc(), &proposal, NOW).unwrap();
    for _ in 0..extra {
        add_device(&mut devices, 0, "alice");
    }
    (devices, c1, c2, unused)
}

#[test]
fn a_new_emulator_client_acts_as_the_virtual_client_after_the_state_transfer() {
    for cipher_suite in [CS1, CS3] {
        let (mut devices, mut c1, mut c2, unused) = alice_in_two_groups(cipher_suite, 1);
        // Several emulation epochs travelled (the groups' leaves pin old ones).
        assert!(devices[1].epoch_ids().len() > 1);
        assert_agree(&devices, &[&c1], G1);
        assert_agree(&devices, &[&c2], G2);

        // Carol commits the Update proposal made before the transfer: both devices take the
        // proposed leaf (the new one from the transferred UpdateLeaf).
        let before = devices[1]
            .group(G2)
            .unwrap()
            .own_leaf_node()
            .unwrap()
            .encryption_key
            .clone();
        carol_commit(&mut c2, &mut devices, G2);
        let after = &devices[1].group(G2).unwrap().own_leaf_node().unwrap();
        assert_ne!(after.encryption_key, before);
        assert_agree(&devices, &[&c2], G2);
        // Carol commits in G1: both devices follow.
        carol_commit(&mut c1, &mut devices, G1);
        assert_agree(&devices, &[&c1], G1);
        // The new device proposes an Update in G1; Carol commits it.
        let proposal = devices[1]
            .propose_update(&svc(), G1)
            .unwrap()
            .to_bytes()
            .unwrap();
        for d in devices.iter_mut() {
            d.process(&svc(), G1, &proposal, NOW).unwrap();
        }
        c1.process_bytes(&svc(), &proposal, NOW).unwrap();
        let out = c1.commit(&svc(), CommitOptions::new(), NOW).unwrap();
        c1.merge_pending_commit().unwrap();
        let bytes = out.commit.to_bytes().unwrap();
        for d in devices.iter_mut() {
            d.process(&svc(), G1, &bytes, NOW).unwrap();
        }
        assert_agree(&devices, &[&c1], G1);
        // The new device commits in G2 (a leaf from the newest emulation epoch): its sibling
        // re-derives it (H2), Carol follows.
        vc_commit(&mut devices, 1, &mut [&mut c2], G2, vec![]);
        assert_agree(&devices, &[&c2], G2);
        // And in G1, then the old device commits there again.
        vc_commit(&mut devices, 1, &mut [&mut c1], G1, vec![]);
        vc_commit(&mut devices, 0, &mut [&mut c1], G1, vec![]);
        assert_agree(&devices, &[&c1], G1);
        // Application messages both ways.
        vc_send(&mut devices, 1, &mut [&mut c1], G1, b"from the new device");
        vc_send(&mut devices, 0, &mut [&mut c2], G2, b"from the old device");
        vc_send(&mut devices, 1, &mut [&mut c2], G2, b"again");
        // A Welcome to the KeyPackage the old device published before the transfer: both
        // devices join (the new one with the transferred private keys).
        let mut c3 = plain(cipher_suite, "carol", G3);
        let welcome = carol_adds(&mut c3, &unused);
        assert_eq!(
            devices[1]
                .join_from_welcome_by_ref(&svc(), &welcome, NOW)
                .unwrap(),
            G3
        );
        assert_eq!(
            devices[0]
                .join_from_welcome_by_ref(&svc(), &welcome, NOW)
                .unwrap(),
            G3
        );
        assert_agree(&devices, &[&c3], G3);
        vc_commit(&mut devices, 1, &mut [&mut c3], G3, vec![]);
        assert_agree(&devices, &[&c3], G3);

        // The new device's state survives the codec.
        let stored = devices[1].to_bytes().unwrap();
        let restored = EmulatorClient::from_bytes(&P, &stored).unwrap();
        assert_eq!(restored.to_bytes().unwrap(), stored);
    }
}

#[test]
fn a_group_created_by_one_emulator_client_reaches_its_siblings() {
    for cipher_suite in [CS1, CS3] {
        let mut alice = vec![first_device(cipher_suite, "alice")];
        add_device(&mut alice, 0, "alice");
        add_device(&mut alice, 1, "alice");
        let mut bob = vec![first_device(cipher_suite, "bob")];
        const G: &[u8] = b"alice's group";

        alice[0]
            .create_group(&svc(), G.to_vec(), cipher_suite, lifetime())
            .unwrap();
        let transfer = alice[0]
            .group_state_message(&svc(), G)
            .unwrap()
            .to_bytes()
            .unwrap();
        // A second copy of the same transfer, delivered late (below).
        let stale = alice[0]
            .group_state_message(&svc(), G)
            .unwrap()
            .to_bytes()
            .unwrap();
        for d in alice.iter_mut().skip(1) {
            assert!(d.group(G).is_none());
            d.process_emulation(&svc(), &transfer, NOW).unwrap();
            assert!(d.leaf_is_consistent(&svc(), G).unwrap());
        }

        // The creator adds Carol and Bob's virtual client.
        let carol_key = suite(cipher_suite).signature_generate_key_pair().unwrap();
        let carol_kp = KeyPackageParams::new(
            cipher_suite,
            Credential::basic(b"carol".to_vec()),
            lifetime(),
        )
        .build_fresh(suite(cipher_suite), &carol_key)
        .unwrap();
        let bob_kp = bob[0]
            .publish_key_package(&svc(), cipher_suite, lifetime())
            .unwrap();
        let out = vc_commit(
            &mut alice,
            0,
            &mut [],
            G,
            vec![
                Proposal::add(carol_kp.key_package.clone()),
                Proposal::add(bob_kp.clone()),
            ],
        );
        let welcome = out.welcome.unwrap();
        let mut carol = Group::join_from_welcome(
            &svc(),
            GroupConfig::default(),
            &welcome,
            &carol_kp,
            carol_key,
            None,
            NOW,
        )
        .unwrap();
        bob[0]
            .join_from_welcome(&svc(), &welcome, &bob_kp, NOW)
            .unwrap();
        assert_agree(&alice, &[&carol], G);
        assert_agree(&bob, &[&carol], G);
        assert_eq!(carol.members().len(), 3);

        // A sibling that did not create the group commits; everyone follows.
        let out = alice[1].commit(&svc(), G, vec![], NOW).unwrap();
        alice[1].confirm_commit(G).unwrap();
        let bytes = out.commit.to_bytes().unwrap();
        for (i, d) in alice.iter_mut().chain(bob.iter_mut()).enumerate() {
            if i != 1 {
                d.process(&svc(), G, &bytes, NOW).unwrap();
            }
        }
        carol.process_bytes(&svc(), &bytes, NOW).unwrap();
        assert_agree(&alice, &[&carol], G);
        assert_agree(&bob, &[&carol], G);

        // Another sibling sends; everyone reads it.
        let message = alice[2].send_application(&svc(), G, b"hello").unwrap();
        alice[2].confirm_sent(&svc(), G, &message).unwrap();
        let bytes = message.to_bytes().unwrap();
        for d in alice.iter_mut().take(2).chain(bob.iter_mut()) {
            let got = d.process(&svc(), G, &bytes, NOW).unwrap();
            assert!(
                matches!(got, ProcessedMessage::Application { ref data, .. } if data == b"hello")
            );
        }
        let got = carol.process_bytes(&svc(), &bytes, NOW).unwrap();
        assert!(matches!(got, ProcessedMessage::Application { ref data, .. } if data == b"hello"));

        // The stale transfer (the group at epoch 0) changes nothing of the group held.
        let before = alice[1].group(G).unwrap().to_bytes().unwrap();
        assert!(alice[1].group(G).unwrap().epoch() > 0);
        alice[1].process_emulation(&svc(), &stale, NOW).unwrap();
        assert_eq!(alice[1].group(G).unwrap().to_bytes().unwrap(), before);
        assert_agree(&alice, &[&carol], G);
    }
}

#[test]
fn a_removed_emulator_client_can_follow_no_group() {
    for cipher_suite in [CS1, CS3] {
        let (mut devices, mut c1, mut c2, _) = alice_in_two_groups(cipher_suite, 2);
        let removed_index = devices[2].emulation_group().own_leaf_index().0;
        // A copy of the removed device's state taken before the removal (a compromise).
        let snapshot = devices[2].to_bytes().unwrap();

        // A device cannot remove itself (RFC 9420 §12.2); nothing changes.
        let before = devices[0].to_bytes().unwrap();
        let own_index = devices[0].emulation_group().own_leaf_index().0;
        assert!(matches!(
            devices[0].remove_emulator(&svc(), own_index, NOW),
            Err(EmulatorError::Group(_))
        ));
        assert_eq!(devices[0].to_bytes().unwrap(), before);
        let out = devices[0]
            .remove_emulator(&svc(), removed_index, NOW)
            .unwrap();
        devices[0].confirm_emulation_commit(&svc()).unwrap();
        let bytes = out.commit.to_bytes().unwrap();
        devices[1].process_emulation(&svc(), &bytes, NOW).unwrap();
        let mut gone = devices.pop().unwrap();
        let got = gone.process_emulation(&svc(), &bytes, NOW).unwrap();
        assert!(matches!(
            got,
            ProcessedMessage::Commit {
                removed_us: true,
                ..
            }
        ));
        assert!(gone.is_removed());
        assert!(gone.epoch_ids().is_empty());
        assert!(gone.group_ids().next().is_none());
        assert!(matches!(
            gone.send_application(&svc(), G1, b"x"),
            Err(EmulatorError::Removed)
        ));
        assert!(matches!(
            gone.process_emulation(&svc(), &bytes, NOW),
            Err(EmulatorError::Removed)
        ));
        assert!(matches!(
            gone.device_state_message(&svc()),
            Err(EmulatorError::Removed)
        ));
        assert!(matches!(
            gone.create_group(&svc(), b"new".to_vec(), cipher_suite, lifetime()),
            Err(EmulatorError::Removed)
        ));
        // The removed state survives the codec.
        let stored = gone.to_bytes().unwrap();
        let gone = EmulatorClient::from_bytes(&P, &stored).unwrap();
        assert!(gone.is_removed());
        let mut gone = gone;

        // The post-compromise step: a commit with path in every group.
        let updates = devices[0].update_all_groups(&svc(), NOW).unwrap();
        assert_eq!(updates.len(), 2);
        let mut compromised = EmulatorClient::from_bytes(&P, &snapshot).unwrap();
        for (group_id, out) in &updates {
            devices[0].confirm_commit(group_id).unwrap();
            let bytes = out.commit.to_bytes().unwrap();
            devices[1].process(&svc(), group_id, &bytes, NOW).unwrap();
            let carol = if group_id.as_slice() == G1 {
                &mut c1
            } else {
                &mut c2
            };
            carol.process_bytes(&svc(), &bytes, NOW).unwrap();
            // The old state cannot re-derive the new leaf (new emulation epoch).
            assert!(matches!(
                compromised.process(&svc(), group_id, &bytes, NOW),
                Err(EmulatorError::UnknownEpochId)
            ));
            assert!(matches!(
                gone.process(&svc(), group_id, &bytes, NOW),
                Err(EmulatorError::Removed)
            ));
        }
        assert_agree(&devices, &[&c1], G1);
        assert_agree(&devices, &[&c2], G2);

        // New messages: the remaining devices read them, the old state cannot.
        for (group_id, carol) in [(G1, &mut c1), (G2, &mut c2)] {
            let message = carol
                .encrypt_application(&svc(), b"after the removal", &[])
                .unwrap()
                .to_bytes()
                .unwrap();
            for d in devices.iter_mut() {
                let got = d.process(&svc(), group_id, &message, NOW).unwrap();
                assert!(
                    matches!(got, ProcessedMessage::Application { ref data, .. } if data == b"after the removal")
                );
            }
            assert!(matches!(
                compromised.process(&svc(), group_id, &message, NOW),
                Err(EmulatorError::Group(_))
            ));
            assert!(matches!(
                gone.process(&svc(), group_id, &message, NOW),
                Err(EmulatorError::Removed)
            ));
        }
        // The remaining devices go on as the virtual client.
        vc_commit(&mut devices, 1, &mut [&mut c1], G1, vec![]);
        vc_send(&mut devices, 0, &mut [&mut c2], G2, b"still here");
        assert_agree(&devices, &[&c1], G1);
        assert_agree(&devices, &[&c2], G2);
    }
}

/// Emulation-group application messages with `payload` as content, from a copy of
/// `sender`'s emulation group (they never reach the sender's own state).
fn emulation_app(sender: &EmulatorClient, payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut group = sender.emulation_group().clone();
    payloads
        .iter()
        .map(|p| {
            group
                .encrypt_application(&svc(), p, &[])
                .unwrap()
                .to_bytes()
                .unwrap()
        })
        .collect()
}

fn leaf(secret: &[u8], epoch_id: &[u8]) -> VirtualClientLeaf {
    VirtualClientLeaf {
        encryption_key_secret: SecretVLBytes::new(secret.to_vec()),
        epoch_id: VLBytes::new(epoch_id.to_vec()),
    }
}

fn device_state(state: DeviceState) -> Vec<u8> {
    EmulationMessage::DeviceState(state)
        .to_bytes()
        .unwrap()
        .to_vec()
}

#[test]
fn a_malformed_or_inconsistent_transfer_changes_nothing() {
    let (devices, c1, _, _) = alice_in_two_groups(CS1, 1);
    let (d0, mut d1) = {
        let mut it = devices.into_iter();
        (it.next().unwrap(), it.next().unwrap())
    };
    let epoch_of = |cs: CipherSuite| {
        let secret = Secret::new(vec![7; suite(cs).params().hash_len()]);
        EmulationEpochSecrets::from_emulator_epoch_secret(suite(cs), secret)
            .unwrap()
            .to_bytes()
            .unwrap()
    };
    let held = d1.epoch_ids()[0].to_vec();
    let mut pending = plain(CS1, "alice", b"pending");
    pending
        .commit(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    let valid = device_state(DeviceState::default());
    let mut trailing = valid.clone();
    trailing.push(0);
    let mut unknown_type = valid.clone();
    unknown_type[1] = 2;
    let mut reserved_type = valid.clone();
    reserved_type[1] = 0;
    type Expected = fn(&EmulatorError) -> bool;
    let cases: Vec<(Vec<u8>, Expected)> = vec![
        (valid[..valid.len() - 1].to_vec(), |e| {
            matches!(e, EmulatorError::Transfer(TransferError::Codec(_)))
        }),
        (trailing, |e| {
            matches!(e, EmulatorError::Transfer(TransferError::Codec(_)))
        }),
        (vec![0], |e| {
            matches!(e, EmulatorError::Transfer(TransferError::Codec(_)))
        }),
        (unknown_type, |e| {
            matches!(
                e,
                EmulatorError::Transfer(TransferError::UnknownMessageType(2))
            )
        }),
        (reserved_type, |e| {
            matches!(
                e,
                EmulatorError::Transfer(TransferError::UnknownMessageType(0))
            )
        }),
        // An emulation epoch that does not decode.
        (
            device_state(DeviceState {
                emulation_epochs: vec![SecretVLBytes::new(vec![0, 1, 2])],
                ..DeviceState::default()
            }),
            |e| matches!(e, EmulatorError::Epoch(_)),
        ),
        // An emulation epoch of another suite.
        (
            device_state(DeviceState {
                emulation_epochs: vec![SecretVLBytes::new(epoch_of(CipherSuite(2)))],
                ..DeviceState::default()
            }),
            |e| matches!(e, EmulatorError::Transfer(TransferError::Inconsistent(_))),
        ),
        // An emulation epoch we do not hold as the newest.
        (
            device_state(DeviceState {
                emulation_epochs: vec![SecretVLBytes::new(epoch_of(CS1))],
                ..DeviceState::default()
            }),
            |e| matches!(e, EmulatorError::Transfer(TransferError::Inconsistent(_))),
        ),
        // An uploaded KeyPackage of an emulation epoch nobody has.
        (
            device_state(DeviceState {
                uploaded_key_packages: vec![UploadedKeyPackageRef {
                    key_package_ref: KeyPackageRef(VLBytes::new(vec![1; 32])),
                    epoch_id: VLBytes::new(vec![9; 32]),
                    leaf_index: 0,
                    random: VLBytes::new(vec![3; 32]),
                }],
                ..DeviceState::default()
            }),
            |e| matches!(e, EmulatorError::Transfer(TransferError::Inconsistent(_))),
        ),
        // A group state that does not decode.
        (
            device_state(DeviceState {
                group_states: vec![TransferredGroup {
                    group: SecretVLBytes::new(vec![0, 2, 0]),
                    leaf: leaf(&[1; 32], &held),
                    updates: vec![],
                }],
                ..DeviceState::default()
            }),
            |e| matches!(e, EmulatorError::Group(_)),
        ),
        // A group whose leaf secret is not that of its own leaf.
        (
            device_state(DeviceState {
                group_states: vec![TransferredGroup {
                    group: SecretVLBytes::new(plain(CS1, "alice", b"new").to_bytes().unwrap()),
                    leaf: leaf(&[1; 32], &held),
                    updates: vec![],
                }],
                ..DeviceState::default()
            }),
            |e| matches!(e, EmulatorError::Transfer(TransferError::Inconsistent(_))),
        ),
        // A group whose leaf is of another credential than the virtual client's.
        (
            device_state(DeviceState {
                group_states: vec![TransferredGroup {
                    group: SecretVLBytes::new(plain(CS1, "x", b"new").to_bytes().unwrap()),
                    leaf: leaf(&[1; 32], &held),
                    updates: vec![],
                }],
                ..DeviceState::default()
            }),
            |e| matches!(e, EmulatorError::Transfer(TransferError::Inconsistent(_))),
        ),
        // A group with a pending commit.
        (
            device_state(DeviceState {
                group_states: vec![TransferredGroup {
                    group: SecretVLBytes::new(pending.to_bytes().unwrap()),
                    leaf: leaf(&[1; 32], &held),
                    updates: vec![],
                }],
                ..DeviceState::default()
            }),
            |e| matches!(e, EmulatorError::Transfer(TransferError::Inconsistent(_))),
        ),
        // The same group twice.
        (
            device_state(DeviceState {
                group_states: vec![
                    TransferredGroup {
                        group: SecretVLBytes::new(c1.to_bytes().unwrap()),
                        leaf: leaf(&[1; 32], &held),
                        updates: vec![],
                    },
                    TransferredGroup {
                        group: SecretVLBytes::new(c1.to_bytes().unwrap()),
                        leaf: leaf(&[1; 32], &held),
                        updates: vec![],
                    },
                ],
                ..DeviceState::default()
            }),
            |e| matches!(e, EmulatorError::Transfer(TransferError::Inconsistent(_))),
        ),
    ];
    let payloads: Vec<Vec<u8>> = cases.iter().map(|(p, _)| p.clone()).collect();
    let messages = emulation_app(&d0, &payloads);
    let before = d1.to_bytes().unwrap();
    for ((_, expected), message) in cases.iter().zip(&messages) {
        let err = d1.process_emulation(&svc(), message, NOW).unwrap_err();
        assert!(expected(&err), "unexpected error {err:?}");
        assert_eq!(d1.to_bytes().unwrap(), before, "state changed by {err:?}");
    }
    // An empty DeviceState is accepted and installs nothing.
    let groups = groups_bytes(&d1);
    let ok = emulation_app(&d0, &[valid.clone(), valid]);
    d1.process_emulation(&svc(), &ok[1], NOW).unwrap();
    assert_eq!(groups_bytes(&d1), groups);
}

#[test]
fn emulation_message_layout() {
    // struct { uint16 message_type = 1; DeviceState device_state; } with
    // DeviceState { opaque emulation_epochs<V><V>; KeyPackageKeys key_package_keys<V>;
    //               UploadedKeyPackageRef uploaded_key_packages<V>; TransferredGroup group_states<V>; }
    let message = EmulationMessage::DeviceState(DeviceState {
        emulation_epochs: vec![SecretVLBytes::new(vec![0xe1, 0xe2])],
        key_package_keys: vec![],
        uploaded_key_packages: vec![UploadedKeyPackageRef {
            key_package_ref: KeyPackageRef(VLBytes::new(vec![0x72, 0x72])),
            epoch_id: VLBytes::new(vec![0x0e]),
            leaf_index: 2,
            random: VLBytes::new(vec![0xaa, 0xbb]),
        }],
        group_states: vec![TransferredGroup {
            group: SecretVLBytes::new(vec![0x67]),
            leaf: leaf(&[0x5e], &[0x0e]),
            updates: vec![UpdateLeaf {
                encryption_key: VLBytes::new(vec![0x4b]),
                leaf: leaf(&[0x5f], &[0x0e]),
            }],
        }],
    });
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0x00, 0x01,                         // message_type = device_state
        0x03, 0x02, 0xe1, 0xe2,             // emulation_epochs<V><V>
        0x00,                               // key_package_keys<V>
        0x0c,                               // uploaded_key_packages<V>: 12 octets
        0x02, 0x72, 0x72,                   //   key_package_ref
        0x01, 0x0e,                         //   epoch_id
        0x00, 0x00, 0x00, 0x02,             //   leaf_index
        0x02, 0xaa, 0xbb,                   //   random
        0x0d,                               // group_states<V>: 13 octets
        0x01, 0x67,                         //   group
        0x01, 0x5e, 0x01, 0x0e,             //   leaf { encryption_key_secret, epoch_id }
        0x06,                               //   updates<V>: 6 octets
        0x01, 0x4b,                         //     encryption_key
        0x01, 0x5f, 0x01, 0x0e,             //     leaf
    ];
    assert_eq!(message.message_type(), DEVICE_STATE);
    assert_eq!(message.to_bytes().unwrap().as_slice(), expected.as_slice());
    assert!(EmulationMessage::from_bytes(&expected).unwrap() == message);
    // Every truncation and a trailing octet are refused.
    for n in 0..expected.len() {
        assert!(EmulationMessage::from_bytes(&expected[..n]).is_err());
    }
    let mut trailing = expected.clone();
    trailing.push(0);
    assert!(EmulationMessage::from_bytes(&trailing).is_err());
    // A non-minimal length (0x4003 for 3) is refused.
    let mut long = expected[..2].to_vec();
    long.extend_from_slice(&[0x40, 0x03]);
    long.extend_from_slice(&expected[3..]);
    assert!(EmulationMessage::from_bytes(&long).is_err());
}

#[test]
fn key_package_keys_round_trip() {
    // struct { KeyPackage key_package; opaque init_private_key<V>;
    //          opaque encryption_private_key<V>; opaque signature_private_key<V>;
    //          opaque signature_public_key<V>; VirtualClientLeaf leaf; }
    let key = suite(CS1).signature_generate_key_pair().unwrap();
    let kp = KeyPackageParams::new(CS1, Credential::basic(b"k".to_vec()), lifetime())
        .build_fresh(suite(CS1), &key)
        .unwrap()
        .key_package;
    let keys = KeyPackageKeys {
        key_package: kp.clone(),
        init_private_key: SecretVLBytes::new(vec![1]),
        encryption_private_key: SecretVLBytes::new(vec![2]),
        signature_private_key: SecretVLBytes::new(vec![3]),
        signature_public_key: VLBytes::new(vec![4]),
        leaf: leaf(&[5], &[6]),
    };
    let mut expected = encode(&kp).unwrap();
    expected.extend_from_slice(&[0x01, 1, 0x01, 2, 0x01, 3, 0x01, 4, 0x01, 5, 0x01, 6]);
    assert_eq!(encode(&keys).unwrap(), expected);
    assert!(decode_exact::<KeyPackageKeys>(&expected).unwrap() == keys);
    let message = EmulationMessage::DeviceState(DeviceState {
        key_package_keys: vec![keys],
        ..DeviceState::default()
    });
    let bytes = message.to_bytes().unwrap();
    assert!(EmulationMessage::from_bytes(&bytes).unwrap() == message);
}
