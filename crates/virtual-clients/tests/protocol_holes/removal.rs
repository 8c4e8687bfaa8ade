//! A device removal, as the runtime needs it (issue 10): the remaining devices learn which
//! device was removed, retire every KeyPackage it knew (a Welcome to one is refused), and one
//! of them rotates the virtual client's leaf and signature key in every group. Also hole 2's
//! emulator side: the emulation epoch an operation derives from, and the retention check.

use mls_engine::codec::Proposal;
use mls_engine::crypto::CipherSuite;
use mls_engine::group::CommitOptions;
use virtual_clients::emulator::{derivable_by_siblings, EmulatorError, RETAINED_EPOCHS};

use crate::common::{lifetime, svc, NOW};
use crate::world::{bytes, World, GROUP};

const CS: CipherSuite = CipherSuite(1);

#[test]
fn a_removed_device_loses_the_key_packages_and_keys_it_knew() {
    let mut w = World::new(CS, 3);
    // alice[0] announces two KeyPackages; every device records them.
    let (out, kps) = w.alice[0]
        .publish_key_packages(&svc(), CS, lifetime(), 2, CommitOptions::new(), NOW)
        .unwrap();
    w.alice[0].confirm_emulation_commit(&svc()).unwrap();
    for d in 1..3 {
        w.alice[d]
            .process_emulation(&svc(), &bytes(&out.commit), NOW)
            .unwrap();
    }
    let stale = w.alice[2].clone();
    // alice[1] removes alice[2].
    let leaf = w.alice[2].emulation_group().own_leaf_index().0;
    let out = w.alice[1].remove_emulator(&svc(), leaf, NOW).unwrap();
    w.alice[1].confirm_emulation_commit(&svc()).unwrap();
    let got = w.alice[0]
        .process_emulation_outcome(&svc(), &bytes(&out.commit), NOW)
        .unwrap();
    assert_eq!(got.removed_devices, vec![leaf]);
    w.alice[2]
        .process_emulation(&svc(), &bytes(&out.commit), NOW)
        .unwrap();
    assert!(w.alice[2].is_removed());
    w.alice.truncate(2);

    // Every remaining device retires what the removed one knew.
    for device in &mut w.alice {
        let mut retired = device.retire_key_packages();
        retired.sort();
        let mut want: Vec<_> = kps
            .iter()
            .map(|k| mls_engine::messages::key_package_ref(crate::common::suite(CS), k).unwrap())
            .collect();
        want.sort();
        assert_eq!(retired, want);
        assert!(device.known_key_packages().is_empty());
    }
    let mut other = crate::world::plain_member(CS, "dave", b"other");
    let welcome = other
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kps[0].clone())),
            NOW,
        )
        .unwrap()
        .welcome
        .unwrap();
    for device in &mut w.alice {
        assert_eq!(
            device.join_from_welcome_by_ref(&svc(), &welcome, NOW),
            Err(EmulatorError::UnknownKeyPackageRef)
        );
    }

    // alice[1] rotates the leaf and signature key of every group.
    let old_key = w.alice[0]
        .group(GROUP)
        .unwrap()
        .own_leaf_node()
        .unwrap()
        .signature_key
        .clone();
    let commits = w.alice[1].update_all_groups(&svc(), NOW).unwrap();
    assert_eq!(commits.len(), 1);
    let b = bytes(&commits[0].1.commit);
    w.alice[1].confirm_commit(GROUP).unwrap();
    w.alice[0].process(&svc(), GROUP, &b, NOW).unwrap();
    w.carol.process_bytes(&svc(), &b, NOW).unwrap();
    w.assert_agree();
    let new_key = &w.alice[0]
        .group(GROUP)
        .unwrap()
        .own_leaf_node()
        .unwrap()
        .signature_key;
    assert_ne!(*new_key, old_key);
    // The removed device's copy from before cannot follow.
    let mut stale = stale;
    assert!(stale.process(&svc(), GROUP, &b, NOW).is_err());
}

#[test]
fn the_derivation_epoch_and_the_retention_check() {
    let mut w = World::new(CS, 2);
    let start = w.alice[0].derivation_emulation_epoch();
    assert_eq!(start, w.alice[0].emulation_group().epoch());
    for _ in 0..RETAINED_EPOCHS {
        w.next_emulation_epoch(1);
    }
    let now = w.alice[0].derivation_emulation_epoch();
    assert_eq!(now, start + RETAINED_EPOCHS as u64);
    assert!(derivable_by_siblings(now, now));
    assert!(derivable_by_siblings(
        now - (RETAINED_EPOCHS as u64 - 1),
        now
    ));
    assert!(!derivable_by_siblings(start, now));
    assert!(!derivable_by_siblings(now + 1, now));
}
