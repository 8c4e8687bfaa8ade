//! Hole 5: the virtual client had no last-resort KeyPackage (RFC 9420 §16.8). One is now
//! derived like the others, marked with the `last_resort_key_package` component
//! (draft-ietf-mls-extensions-08 §5), and reusable by every device until retired.

use mls_engine::codec::{KeyPackage, Proposal, Welcome};
use mls_engine::crypto::CipherSuite;
use mls_engine::extensions::{AppDataDictionary, LAST_RESORT_KEY_PACKAGE};
use mls_engine::group::{CommitOptions, Group};

use crate::common::{lifetime, svc, NOW};
use crate::world::{plain_member, World};

const CS: CipherSuite = CipherSuite(1);

/// `owner` adds `kp` to its group; the Welcome.
fn add(owner: &mut Group, kp: &KeyPackage) -> Welcome {
    let out = owner
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.clone())),
            NOW,
        )
        .unwrap();
    owner.merge_pending_commit().unwrap();
    out.welcome.unwrap()
}

#[test]
fn a_last_resort_key_package_is_joined_again_and_again_until_retired() {
    let mut w = World::new(CS, 2);
    let kp = w.alice[0]
        .publish_last_resort_key_package(&svc(), CS, lifetime())
        .unwrap();
    let marker = AppDataDictionary::find_in(&kp.extensions).unwrap().unwrap();
    assert_eq!(marker.get(LAST_RESORT_KEY_PACKAGE), Some(&[][..]));
    let mut owners: Vec<Group> = ["dave", "erin", "frank"]
        .iter()
        .map(|n| plain_member(CS, n, n.as_bytes()))
        .collect();
    for owner in owners.iter_mut().take(2) {
        let welcome = add(owner, &kp);
        for device in &mut w.alice {
            let id = device
                .join_from_welcome(&svc(), &welcome, &kp, NOW)
                .unwrap();
            assert_eq!(
                device.group(&id).unwrap().epoch_authenticator(),
                owner.epoch_authenticator()
            );
        }
    }
    // Until retired.
    for device in &mut w.alice {
        assert!(!device.retire_key_packages().is_empty());
    }
    let welcome = add(&mut owners[2], &kp);
    for device in &mut w.alice {
        assert!(device
            .join_from_welcome(&svc(), &welcome, &kp, NOW)
            .is_err());
        assert!(device.group(b"frank").is_none());
    }
}

#[test]
fn an_ordinary_key_package_is_used_once() {
    let mut w = World::new(CS, 1);
    let kp = w.alice[0]
        .publish_key_package(&svc(), CS, lifetime())
        .unwrap();
    assert!(AppDataDictionary::find_in(&kp.extensions)
        .unwrap()
        .is_none());
    let mut dave = plain_member(CS, "dave", b"dave");
    let mut erin = plain_member(CS, "erin", b"erin");
    let welcome = add(&mut dave, &kp);
    w.alice[0]
        .join_from_welcome(&svc(), &welcome, &kp, NOW)
        .unwrap();
    let welcome = add(&mut erin, &kp);
    assert!(w.alice[0]
        .join_from_welcome(&svc(), &welcome, &kp, NOW)
        .is_err());
}
