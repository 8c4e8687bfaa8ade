//! OpenMLS adds a KeyPackage built by mls-engine. The engine decodes the Welcome strictly,
//! opens it with the init private key (`mls_engine::welcome`), and arrives at the same epoch as OpenMLS: same
//! GroupContext, tree hash, `epoch_authenticator` and exporter output; the `path_secret` it
//! receives derives the public key OpenMLS put on the common ancestor.

use mls_engine::codec::{self, KeyPackageRef, MlsMessageBody, Node};
use mls_engine::crypto::MlsCrypto as _;
use mls_engine::tree::{math, LeafIndex, RatchetTree};
use mls_engine::welcome::{decrypt_group_secrets, WelcomeError};
use openmls::prelude::MlsGroup;
use openmls_traits::OpenMlsProvider as _;

use crate::engine::{self, EngineKeyPackage, KeyPackageOptions, OpenedWelcome};
use crate::harness::{export_group_context, export_ratchet_tree, OpenMlsClient, SUITES};

/// Decodes the Welcome `MLSMessage` with the engine, opens it with `ours`, and checks the
/// epoch it yields against the OpenMLS member `group`.
fn join_and_compare(
    suite_id: u16,
    welcome: &[u8],
    ours: &EngineKeyPackage,
    openmls: &OpenMlsClient,
    group: &MlsGroup,
) -> OpenedWelcome {
    let cs = engine::suite(suite_id);
    let MlsMessageBody::Welcome(welcome) = engine::decode_mls_message(welcome).body else {
        panic!("not a Welcome");
    };
    let opened = ours
        .open_welcome(&welcome)
        .expect("the engine opens OpenMLS's Welcome");

    // The same epoch as OpenMLS.
    let context = codec::encode(&opened.group_info.group_context).unwrap();
    assert_eq!(context, export_group_context(group), "GroupContext differs");
    assert_eq!(
        opened.tree.encode().unwrap(),
        export_ratchet_tree(group),
        "ratchet tree differs"
    );
    assert_eq!(
        opened.epoch_secrets.epoch_authenticator.as_bytes(),
        group.epoch_authenticator().as_slice(),
        "epoch_authenticator differs"
    );
    let theirs = group
        .export_secret(openmls.provider.crypto(), "interop test", b"context", 32)
        .expect("OpenMLS exports");
    let ours_export = opened
        .epoch_secrets
        .export(cs, "interop test", b"context", 32)
        .expect("the engine exports");
    assert_eq!(
        ours_export.as_bytes(),
        theirs.as_slice(),
        "exporter differs"
    );

    opened
}

/// Checks that the `path_secret` of the GroupSecrets derives the HPKE public key of the
/// lowest common ancestor of `own_leaf` and the committer's leaf (§12.4.3.1, §7.4).
fn check_path_secret(suite_id: u16, opened: &OpenedWelcome, committer: LeafIndex) {
    let cs = engine::suite(suite_id);
    let path_secret = &opened
        .path_secret
        .as_ref()
        .expect("a commit with a path sends a path_secret")
        .path_secret;
    let ancestor = math::common_ancestor(opened.own_leaf.node(), committer.node());
    let node_secret = cs
        .derive_secret(path_secret.as_bytes(), "node")
        .expect("node_secret");
    let key_pair = cs
        .hpke_derive_key_pair(node_secret.as_bytes())
        .expect("node key pair");
    let Some(Node::Parent(parent)) = opened.tree.node(ancestor) else {
        panic!("the common ancestor is not a parent node");
    };
    assert_eq!(
        key_pair.public_key,
        parent.encryption_key.as_slice(),
        "path_secret does not derive the ancestor's key"
    );
}

#[test]
fn openmls_adds_engine_key_package_and_engine_opens_welcome() {
    for suite in SUITES {
        let alice = OpenMlsClient::new(b"alice", suite);
        let ours = EngineKeyPackage::build(suite, b"engine", KeyPackageOptions::default());
        let key_package = alice
            .validate_key_package(&ours.to_mls_message())
            .expect("OpenMLS accepts the engine's KeyPackage");

        let mut group = alice.create_group();
        let added = alice.add_members(&mut group, &[key_package]);

        // OpenMLS's tree holds our leaf, byte for byte, at leaf 1.
        let tree = RatchetTree::decode(&export_ratchet_tree(&group)).expect("tree decodes");
        assert_eq!(tree.leaf(LeafIndex(1)), Some(&ours.key_package.leaf_node));

        let opened = join_and_compare(suite, &added.welcome, &ours, &alice, &group);
        assert_eq!(opened.own_leaf, LeafIndex(1));
        assert_eq!(opened.group_info.group_context.epoch, 1);
        check_path_secret(suite, &opened, LeafIndex(0));
    }
}

#[test]
fn engine_opens_welcome_into_larger_group_without_path() {
    for suite in SUITES {
        let alice = OpenMlsClient::new(b"alice", suite);
        let bob = OpenMlsClient::new(b"bob", suite);
        let carol = OpenMlsClient::new(b"carol", suite);
        let mut group = alice.create_group();
        let bob_kp = bob.key_package().key_package().clone();
        let carol_kp = carol.key_package().key_package().clone();
        let added = alice.add_members(&mut group, &[bob_kp, carol_kp]);
        let mut bob_group = bob.join(&added.welcome);
        // Bob commits a path so the parents above leaves 0-2 are set, then Alice adds two
        // engine KeyPackages in one add-only commit (no path, no path_secret).
        let update = bob.self_update(&mut bob_group);
        alice.process(&mut group, &update);

        let options = KeyPackageOptions {
            leaf_extensions: vec![codec::Extension::new(
                codec::ExtensionType(0xff00),
                vec![7; 3],
            )],
            capability_extensions: vec![codec::ExtensionType(0xff00)],
            ..KeyPackageOptions::default()
        };
        let first = EngineKeyPackage::build(suite, b"engine-1", options.clone());
        let second = EngineKeyPackage::build(suite, b"engine-2", options);
        let kps = [&first, &second].map(|kp| {
            alice
                .validate_key_package(&kp.to_mls_message())
                .expect("OpenMLS accepts the engine's KeyPackage")
        });
        let added = alice.add_members_without_path(&mut group, &kps);

        for ours in [&first, &second] {
            let opened = join_and_compare(suite, &added.welcome, ours, &alice, &group);
            assert!(opened.path_secret.is_none());
            assert_eq!(opened.group_info.group_context.epoch, 3);
            assert_eq!(opened.tree.leaves().count(), 5);
        }
    }
}

#[test]
fn engine_refuses_welcome_with_wrong_keys() {
    let alice = OpenMlsClient::new(b"alice", 1);
    let ours = EngineKeyPackage::build(1, b"engine", KeyPackageOptions::default());
    let key_package = alice.validate_key_package(&ours.to_mls_message()).unwrap();
    let mut group = alice.create_group();
    let added = alice.add_members(&mut group, &[key_package]);
    let MlsMessageBody::Welcome(welcome) = engine::decode_mls_message(&added.welcome).body else {
        panic!("not a Welcome");
    };
    let cs = engine::suite(1);
    assert_eq!(welcome.secrets.len(), 1);
    assert_eq!(welcome.secrets[0].new_member.as_slice(), ours.reference());
    let our_ref = KeyPackageRef::from(ours.reference());
    let decrypt = |key_package_ref: &KeyPackageRef, key| {
        decrypt_group_secrets(cs, &welcome, &ours.key_package, key_package_ref, key)
    };
    assert!(decrypt(&our_ref, &ours.init_private_key).is_ok());
    // The leaf's encryption key is not the init key.
    assert_eq!(
        decrypt(&our_ref, &ours.encryption_private_key),
        Err(WelcomeError::GroupSecretsDecryptionFailed)
    );
    // Another KeyPackage has no entry.
    assert_eq!(
        decrypt(&KeyPackageRef::from(vec![0; 32]), &ours.init_private_key),
        Err(WelcomeError::NoSecretsForKeyPackage)
    );
    // A KeyPackage that was not added finds no entry.
    let other = EngineKeyPackage::build(1, b"other", KeyPackageOptions::default());
    assert!(matches!(
        other.open_welcome(&welcome),
        Err(WelcomeError::NoSecretsForKeyPackage)
    ));
}
