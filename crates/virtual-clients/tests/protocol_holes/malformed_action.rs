//! Hole 1: a malformed `VirtualClientAction` in an emulation Commit the delivery service
//! accepted (an upload naming an emulation epoch nobody keeps, one ref listed twice, an
//! undecodable action) used to make every sibling refuse the Commit forever, bricking the
//! virtual client. Siblings now apply the Commit, ignore the action and report it.

use mls_engine::codec::KeyPackageRef;
use mls_engine::crypto::CipherSuite;
use mls_engine::extensions::{SafeAad, SafeAadItem};
use mls_engine::group::{CommitOptions, ProcessedMessage};
use mls_engine::messages::key_package_ref;
use tls_codec::VLBytes;
use virtual_clients::emulator::EmulatorError;
use virtual_clients::wire::{
    KeyPackageInfo, KeyPackageUpload, VirtualClientAction, WireError, VC_COMPONENT_ID,
};

use crate::common::{lifetime, suite, svc, NOW};
use crate::world::{bytes, World};

const CS: CipherSuite = CipherSuite(1);

/// An upload of `refs` from emulation epoch `epoch_id`, as a SafeAAD item.
fn upload(epoch_id: Vec<u8>, refs: &[KeyPackageRef]) -> SafeAadItem {
    VirtualClientAction::KeyPackageUpload(KeyPackageUpload {
        epoch_id: VLBytes::new(epoch_id),
        key_package_info: refs
            .iter()
            .map(|r| KeyPackageInfo {
                key_package_ref: r.clone(),
                random: VLBytes::new(vec![1; 32]),
            })
            .collect(),
    })
    .to_safe_aad_item()
    .unwrap()
}

/// `alice[0]` sends an emulation Commit carrying `item`; the service accepts it. `alice[1]`
/// applies it and reports `want`; both then go on as one virtual client in [`GROUP`].
fn accepted_with(mut w: World, item: SafeAadItem, want: EmulatorError) {
    let mut options = CommitOptions::new();
    options.safe_aad = Some(SafeAad::new(vec![item]).unwrap());
    let out = w.alice[0].commit_emulation(&svc(), options, NOW).unwrap();
    w.alice[0].confirm_emulation_commit(&svc()).unwrap();
    let got = w.alice[1]
        .process_emulation_outcome(&svc(), &bytes(&out.commit), NOW)
        .unwrap();
    assert!(matches!(got.processed, ProcessedMessage::Commit { .. }));
    assert_eq!(got.ignored_action, Some(want));
    assert_eq!(
        w.alice[0].emulation_group().epoch_authenticator(),
        w.alice[1].emulation_group().epoch_authenticator()
    );
    assert_eq!(w.alice[0].epoch_ids().last(), w.alice[1].epoch_ids().last());
    // The virtual client is not bricked: a commit from the new emulation epoch is followed.
    w.alice_commits(0, vec![]);
    w.alice_commits(1, vec![]);
    w.assert_agree();
}

#[test]
fn an_upload_from_an_unknown_epoch_is_ignored_and_reported() {
    let mut w = World::new(CS, 2);
    let kp = w.alice[0]
        .publish_key_package(&svc(), CS, lifetime())
        .unwrap();
    let r = key_package_ref(suite(CS), &kp).unwrap();
    accepted_with(
        w,
        upload(vec![0xee; 32], &[r]),
        EmulatorError::UnknownEpochId,
    );
}

#[test]
fn an_upload_listing_one_ref_twice_is_ignored_and_reported() {
    let mut w = World::new(CS, 2);
    let kp = w.alice[0]
        .publish_key_package(&svc(), CS, lifetime())
        .unwrap();
    let r = key_package_ref(suite(CS), &kp).unwrap();
    let epoch = w.alice[0].epoch_ids().last().unwrap().to_vec();
    accepted_with(
        w,
        upload(epoch, &[r.clone(), r]),
        EmulatorError::MalformedUpload("KeyPackageRef listed twice"),
    );
}

#[test]
fn an_undecodable_action_is_ignored_and_reported() {
    let w = World::new(CS, 2);
    let item = SafeAadItem::new(VC_COMPONENT_ID, vec![0xff, 0xff, 0xff]);
    let got = VirtualClientAction::from_safe_aad_item(&item).unwrap_err();
    assert!(matches!(got, WireError::Codec(_)), "{got:?}");
    accepted_with(w, item, EmulatorError::Wire(got));
}
