//! Hole 7: the keys of generations an emulator client sent with (kept, H3, so a sibling's
//! message at the same generation still opens) were bounded by count only. They are now
//! deleted at the latest `SENT_KEY_MAX_AGE` seconds after sending, with `now` passed in.

use mls_engine::crypto::CipherSuite;
use mls_engine::group::ProcessedMessage;
use virtual_clients::emulator::{EmulatorClient, SENT_KEY_MAX_AGE};

use crate::common::{svc, NOW, P};
use crate::world::{bytes, World, GROUP};

/// `alice[0]` and `alice[1]` each send at generation 0 without seeing the other's message;
/// `alice[0]`'s is never confirmed. Returns `alice[1]`'s message.
fn race(w: &mut World) -> Vec<u8> {
    w.alice[0]
        .send_application_at(&svc(), GROUP, b"mine", NOW)
        .unwrap();
    let theirs = w.alice[1]
        .send_application_at(&svc(), GROUP, b"theirs", NOW)
        .unwrap();
    bytes(&theirs)
}

#[test]
fn a_sent_key_is_kept_for_a_while_for_siblings() {
    let mut w = World::new(CipherSuite(1), 2);
    let theirs = race(&mut w);
    let later = NOW + SENT_KEY_MAX_AGE - 1;
    assert_eq!(w.alice[0].expire_sent_keys(later), 0);
    match w.alice[0].process(&svc(), GROUP, &theirs, later).unwrap() {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, b"theirs"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_sent_key_is_deleted_after_the_time_bound_also_after_a_restart() {
    let mut w = World::new(CipherSuite(1), 2);
    let theirs = race(&mut w);
    let saved = w.alice[0].to_bytes().unwrap();
    w.alice[0] = EmulatorClient::from_bytes(&P, &saved).unwrap();
    assert_eq!(w.alice[0].expire_sent_keys(NOW + SENT_KEY_MAX_AGE), 1);
    assert!(w.alice[0]
        .process(&svc(), GROUP, &theirs, NOW + SENT_KEY_MAX_AGE)
        .is_err());
}

#[test]
fn a_confirmed_send_leaves_nothing_to_expire() {
    let mut w = World::new(CipherSuite(1), 2);
    let m = w.alice[0]
        .send_application_at(&svc(), GROUP, b"x", NOW)
        .unwrap();
    assert!(w.alice[0].confirm_sent(&svc(), GROUP, &m).unwrap());
    assert_eq!(w.alice[0].expire_sent_keys(NOW + SENT_KEY_MAX_AGE), 0);
}
