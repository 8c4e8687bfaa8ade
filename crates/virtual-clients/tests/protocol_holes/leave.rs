//! Hole 6: a group the virtual client was removed from used to be kept for ever, pinning its
//! emulation epoch. Now its secrets are deleted when the removal is processed; the virtual
//! client can leave a group (a Remove proposal of its own leaf) and a device can forget one.

use mls_engine::codec::Proposal;
use mls_engine::crypto::CipherSuite;
use mls_engine::group::{CommitOptions, ProcessedMessage};
use virtual_clients::emulator::{EmulatorError, RETAINED_EPOCHS};

use crate::common::{svc, NOW};
use crate::world::{bytes, World, GROUP};

const CS: CipherSuite = CipherSuite(1);

/// Carol commits `proposals` (by value) and every device processes the commit.
fn carol_commits(w: &mut World, options: CommitOptions) -> Vec<ProcessedMessage> {
    let out = w.carol.commit(&svc(), options, NOW).unwrap();
    w.carol.merge_pending_commit().unwrap();
    let b = bytes(&out.commit);
    w.alice
        .iter_mut()
        .map(|d| d.process(&svc(), GROUP, &b, NOW).unwrap())
        .collect()
}

/// After the removal each device holds nothing of the group, and its leaf's emulation epoch
/// is released once it is older than the retained ones.
fn assert_gone(w: &mut World) {
    for device in &w.alice {
        assert!(device.group(GROUP).is_none());
        assert_eq!(device.group_ids().count(), 0);
    }
    for _ in 0..RETAINED_EPOCHS + 2 {
        w.next_emulation_epoch(0);
    }
    for device in &w.alice {
        assert_eq!(device.epoch_ids().len(), RETAINED_EPOCHS);
    }
}

#[test]
fn a_removed_virtual_client_deletes_the_group() {
    let mut w = World::new(CS, 2);
    let leaf = w.alice[0].group(GROUP).unwrap().own_leaf_index().0;
    let got = carol_commits(
        &mut w,
        CommitOptions::new().proposal(Proposal::remove(leaf)),
    );
    for p in got {
        assert!(matches!(
            p,
            ProcessedMessage::Commit {
                removed_us: true,
                ..
            }
        ));
    }
    assert_gone(&mut w);
}

#[test]
fn the_virtual_client_leaves_a_group() {
    let mut w = World::new(CS, 2);
    let proposal = w.alice[1].leave_group(&svc(), GROUP).unwrap();
    let b = bytes(&proposal);
    // In log order: the proposal (its sender drops its echo), then Carol's commit of it.
    w.carol.process_bytes(&svc(), &b, NOW).unwrap();
    w.alice[0].process(&svc(), GROUP, &b, NOW).unwrap();
    let got = carol_commits(&mut w, CommitOptions::new());
    for p in got {
        assert!(matches!(
            p,
            ProcessedMessage::Commit {
                removed_us: true,
                ..
            }
        ));
    }
    assert_eq!(w.carol.members().len(), 1);
    assert_gone(&mut w);
}

#[test]
fn a_device_forgets_a_group() {
    let mut w = World::new(CS, 2);
    w.alice[0].forget_group(GROUP).unwrap();
    assert!(w.alice[0].group(GROUP).is_none());
    assert_eq!(
        w.alice[0].forget_group(GROUP),
        Err(EmulatorError::UnknownGroup)
    );
    // Its sibling still acts in the group.
    w.alice[1].commit(&svc(), GROUP, vec![], NOW).unwrap();
    w.alice[1].confirm_commit(GROUP).unwrap();
}
