//! mls-engine and OpenMLS 0.9.2 (`extensions-draft`) agree on the safe exporter of
//! draft-ietf-mls-extensions-08 §4.4: the `application_export_secret` of the engine's key
//! schedule, and `Group::safe_export_secret` against `MlsGroup::safe_export_secret` for one
//! group shared by an OpenMLS and an engine member, in the Welcome's epoch and after a
//! Commit from each side.

use mls_engine::crypto::Secret;
use mls_engine::extensions::{ExporterError, ExporterTree};
use mls_engine::group::GroupError;
use mls_engine::schedule::EpochSecrets;

use crate::construction::{open_welcome, openmls_group_adding_engine_member, safe_export_secret};
use crate::openmls_side::OpenMlsClient;
use crate::vmls_side::{services, VmlsMember};
use crate::{COMPONENT_IDS, SUITES};

/// The engine's key schedule puts `application_export_secret` where OpenMLS does: from the
/// hand-computed `epoch_secret` of a Welcome's epoch, `EpochSecrets::from_epoch_secret`
/// gives OpenMLS's Exporter Tree root; and the engine's standalone `ExporterTree` from that
/// root gives OpenMLS's SafeExportSecrets.
#[test]
fn engine_key_schedule_and_exporter_tree_match_openmls() {
    for suite in SUITES {
        let mut setup = openmls_group_adding_engine_member(suite);
        let cs = setup.bob.suite();
        let opened = open_welcome(&setup.bob, &setup.welcome);
        let engine_secrets =
            EpochSecrets::from_epoch_secret(cs, &Secret::new(opened.epoch_secret.clone()))
                .expect("the engine derives the epoch secrets");
        let openmls_root = setup
            .alice
            .stored_exporter_tree_root(&setup.group)
            .expect("no SafeExportSecret taken yet");
        assert_eq!(
            engine_secrets.application_export_secret.as_bytes(),
            openmls_root.as_slice(),
            "suite {suite}: application_export_secret"
        );
        assert_eq!(
            engine_secrets.epoch_authenticator.as_bytes(),
            OpenMlsClient::epoch_authenticator(&setup.group).as_slice(),
            "suite {suite}: same epoch"
        );

        let mut tree = ExporterTree::new(
            mls_engine::crypto::CipherSuite(suite),
            engine_secrets.application_export_secret.clone(),
        );
        for component_id in COMPONENT_IDS {
            let engine = tree
                .safe_export_secret(cs, u32::from(component_id))
                .expect("the engine exports the secret");
            let openmls = setup
                .alice
                .safe_export_secret(&mut setup.group, component_id)
                .expect("OpenMLS exports the secret");
            assert_eq!(
                engine.as_bytes(),
                openmls.as_slice(),
                "suite {suite}, component {component_id:#06x}"
            );
            assert_eq!(
                openmls,
                safe_export_secret(cs, &openmls_root, component_id),
                "suite {suite}, component {component_id:#06x}: the hand construction"
            );
        }
    }
}

/// Both members export every component ID of [`COMPONENT_IDS`] (in opposite orders, so
/// the trees are consumed differently) and must agree; each then refuses a second export.
fn check_epoch(
    suite: u16,
    label: &str,
    alice: &OpenMlsClient,
    group: &mut openmls::prelude::MlsGroup,
    bob: &mut VmlsMember,
) {
    assert_eq!(
        bob.group().epoch_authenticator(),
        OpenMlsClient::epoch_authenticator(group).as_slice(),
        "suite {suite}, {label}: both members are in the same epoch"
    );
    let openmls: Vec<Vec<u8>> = COMPONENT_IDS
        .iter()
        .rev()
        .map(|&id| {
            alice
                .safe_export_secret(group, id)
                .expect("OpenMLS exports the secret")
        })
        .rev()
        .collect();
    for (component_id, openmls) in COMPONENT_IDS.iter().zip(&openmls) {
        let engine = bob
            .group_mut()
            .safe_export_secret(&services(), u32::from(*component_id))
            .expect("the engine exports the secret");
        assert_eq!(
            engine.as_bytes(),
            openmls.as_slice(),
            "suite {suite}, {label}, component {component_id:#06x}: SafeExportSecret"
        );
    }
    for component_id in COMPONENT_IDS {
        assert!(
            alice.safe_export_secret(group, component_id).is_err(),
            "suite {suite}, {label}: OpenMLS refuses a second export of {component_id:#06x}"
        );
        assert!(
            matches!(
                bob.group_mut()
                    .safe_export_secret(&services(), u32::from(component_id)),
                Err(GroupError::SafeExport(ExporterError::AlreadyConsumed(id))) if id == u32::from(component_id)
            ),
            "suite {suite}, {label}: the engine refuses a second export of {component_id:#06x}"
        );
    }
    // OpenMLS's ComponentId is a u16, so it cannot even ask for 2^16; the engine refuses it.
    assert!(matches!(
        bob.group_mut().safe_export_secret(&services(), 0x1_0000),
        Err(GroupError::SafeExport(
            ExporterError::ComponentIdOutOfRange(0x1_0000)
        ))
    ));
}

/// An OpenMLS group adds an engine member by Welcome; in that epoch, after a Commit from
/// OpenMLS, and after a Commit from the engine, both export the same SafeExportSecrets.
#[test]
fn engine_and_openmls_members_export_the_same_safe_export_secrets() {
    for suite in SUITES {
        let setup = openmls_group_adding_engine_member(suite);
        let (alice, mut group, mut bob, welcome) =
            (setup.alice, setup.group, setup.bob, setup.welcome);
        bob.join(&welcome);
        check_epoch(suite, "epoch 1 (Welcome)", &alice, &mut group, &mut bob);

        let commit = alice.self_update(&mut group);
        bob.process_commit(&commit);
        check_epoch(
            suite,
            "epoch 2 (OpenMLS commit)",
            &alice,
            &mut group,
            &mut bob,
        );

        let commit = bob.self_update();
        alice.process_commit(&mut group, &commit);
        check_epoch(
            suite,
            "epoch 3 (engine commit)",
            &alice,
            &mut group,
            &mut bob,
        );
    }
}

/// A SafeExportSecret taken in one epoch does not block the same component in the next,
/// and the secrets of consecutive epochs differ (on both sides alike).
#[test]
fn each_epoch_has_its_own_exporter_tree() {
    for suite in SUITES {
        let setup = openmls_group_adding_engine_member(suite);
        let (alice, mut group, mut bob, welcome) =
            (setup.alice, setup.group, setup.bob, setup.welcome);
        bob.join(&welcome);
        let first = bob
            .group_mut()
            .safe_export_secret(&services(), 6)
            .expect("the engine exports the secret");
        let commit = bob.self_update();
        alice.process_commit(&mut group, &commit);
        let engine = bob
            .group_mut()
            .safe_export_secret(&services(), 6)
            .expect("a fresh tree in the new epoch");
        let openmls = alice
            .safe_export_secret(&mut group, 6)
            .expect("OpenMLS exports the secret");
        assert_eq!(engine.as_bytes(), openmls.as_slice(), "suite {suite}");
        assert_ne!(first.as_bytes(), engine.as_bytes(), "suite {suite}");
    }
}
