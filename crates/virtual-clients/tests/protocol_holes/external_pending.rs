//! Hole 4: an external join used to be installed at once, so when the delivery service
//! refused the external commit the state the device had of the group was gone. It is now
//! pending like a commit: confirmed (or its echo processed), or abandoned, and it survives a
//! restart from saved state.

use mls_engine::codec::MlsMessage;
use mls_engine::crypto::CipherSuite;
use mls_engine::group::{CommitOptions, ProcessedMessage};
use virtual_clients::emulator::{EmulatorClient, EmulatorError};

use crate::common::{svc, NOW, P};
use crate::world::{bytes, World, GROUP};

const CS: CipherSuite = CipherSuite(1);

/// `alice[0]` announces an external join into [`GROUP`]; the service accepts the
/// announcement and `alice[1]` processes it.
fn announce(w: &mut World) {
    let out = w.alice[0]
        .announce_external_join(&svc(), GROUP, CommitOptions::new(), NOW)
        .unwrap();
    w.alice[0].confirm_emulation_commit(&svc()).unwrap();
    w.alice[1]
        .process_emulation(&svc(), &bytes(&out.commit), NOW)
        .unwrap();
}

/// `alice[0]`'s external commit (resync) from Carol's current GroupInfo.
fn begin(w: &mut World) -> (MlsMessage, mls_engine::codec::GroupInfo) {
    let info = w.carol.group_info(&svc(), true, true).unwrap();
    let commit = w.alice[0]
        .begin_external_join(&svc(), &info, None, NOW)
        .unwrap();
    (commit, info)
}

/// The service accepted `commit`: Carol and `alice[1]` process it.
fn accepted(w: &mut World, commit: &MlsMessage, info: &mls_engine::codec::GroupInfo) {
    w.carol.process_bytes(&svc(), &bytes(commit), NOW).unwrap();
    w.alice[1]
        .follow_external_join(&svc(), info, None, commit, NOW)
        .unwrap();
}

#[test]
fn a_refused_external_join_keeps_the_old_state_and_can_be_retried() {
    let mut w = World::new(CS, 2);
    announce(&mut w);
    let before = w.alice[0].group(GROUP).unwrap().to_bytes().unwrap();
    begin(&mut w);
    assert!(w.alice[0].pending_external_join(GROUP).is_some());
    // The service refused it: Carol had committed first.
    w.alice[0].abandon_external_join(GROUP).unwrap();
    assert_eq!(w.alice[0].group(GROUP).unwrap().to_bytes().unwrap(), before);
    w.alice_commits(1, vec![]);
    w.assert_agree();
    // A retry from the fresh GroupInfo, with the same announcement.
    let (commit, info) = begin(&mut w);
    w.alice[0].confirm_external_join(GROUP).unwrap();
    accepted(&mut w, &commit, &info);
    w.assert_agree();
    assert_eq!(
        w.carol.members().len(),
        2,
        "the resync replaced the old leaf"
    );
}

#[test]
fn a_second_external_join_while_one_is_pending_is_refused() {
    let mut w = World::new(CS, 2);
    announce(&mut w);
    begin(&mut w);
    let info = w.carol.group_info(&svc(), true, true).unwrap();
    assert_eq!(
        w.alice[0].begin_external_join(&svc(), &info, None, NOW),
        Err(EmulatorError::ExternalJoinPending)
    );
    assert_eq!(
        w.alice[1].abandon_external_join(GROUP),
        Err(EmulatorError::NoPendingExternalJoin)
    );
}

#[test]
fn the_echo_confirms_a_pending_external_join_also_after_a_restart() {
    let mut w = World::new(CS, 2);
    announce(&mut w);
    let (commit, info) = begin(&mut w);
    // Restart from saved state between sending and the echo.
    let saved = w.alice[0].to_bytes().unwrap();
    w.alice[0] = EmulatorClient::from_bytes(&P, &saved).unwrap();
    assert!(w.alice[0].pending_external_join(GROUP).is_some());
    let got = w.alice[0]
        .process(&svc(), GROUP, &bytes(&commit), NOW)
        .unwrap();
    assert!(matches!(got, ProcessedMessage::Commit { own: true, .. }));
    assert!(w.alice[0].pending_external_join(GROUP).is_none());
    accepted(&mut w, &commit, &info);
    w.assert_agree();
    // The announcement was used up.
    assert_eq!(w.alice[0].announced_external_joins().count(), 0);
}
