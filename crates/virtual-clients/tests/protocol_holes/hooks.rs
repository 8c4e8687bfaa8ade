//! Hole 10: the engine hooks report errors. An own-leaf resolver (H2) answers with a
//! `Result` whose error reaches the application typed (no `RefCell` on the side); a
//! `ReuseGuard::FromNonce` closure (H4) that fails makes the engine encrypt nothing (before,
//! it fell back to four zero octets).

use mls_engine::codec::LeafNode;
use mls_engine::crypto::{CipherSuite, HpkeKeyPair, Secret};
use mls_engine::framing::private::PrivateMessageError;
use mls_engine::framing::ReuseGuard;
use mls_engine::group::{CommitOptions, Group, GroupError, OwnLeafResolver, SiblingCommitSecrets};
use mls_engine::hook::HookError;
use virtual_clients::emulator::EmulatorError;

use crate::common::{svc, NOW};
use crate::world::{bytes, World, GROUP};

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the application's own reason")]
struct OwnReason;

/// A resolver that always fails with [`OwnReason`].
struct Failing;

impl OwnLeafResolver for Failing {
    fn commit_secrets(&self, _: &LeafNode) -> Result<SiblingCommitSecrets, HookError> {
        Err(HookError::failed(OwnReason))
    }
    fn update_leaf_key(&self, _: &LeafNode) -> Result<HpkeKeyPair, HookError> {
        Err(HookError::failed(OwnReason))
    }
}

#[test]
fn a_failing_resolver_reaches_the_application_typed_and_changes_nothing() {
    let mut w = World::new(CipherSuite(1), 2);
    let out = w.alice[0].commit(&svc(), GROUP, vec![], NOW).unwrap();
    // alice[1]'s group, processed with a resolver of the application's that fails.
    let mut group: Group = w.alice[1].group(GROUP).unwrap().clone();
    let before = group.to_bytes().unwrap();
    let with = svc().with_own_leaf_resolver(&Failing);
    let err = group
        .process_bytes(&with, &bytes(&out.commit), NOW)
        .unwrap_err();
    match &err {
        GroupError::OwnLeafResolver(hook) => {
            assert_eq!(hook.downcast_ref::<OwnReason>(), Some(&OwnReason))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(group.to_bytes().unwrap(), before);
}

#[test]
fn the_sibling_resolver_error_is_the_emulator_error() {
    let mut w = World::new(CipherSuite(1), 2);
    // alice[0] commits from an emulation epoch alice[1] does not know yet.
    w.alice[0]
        .commit_emulation(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    w.alice[0].confirm_emulation_commit(&svc()).unwrap();
    let out = w.alice[0].commit(&svc(), GROUP, vec![], NOW).unwrap();
    let before = w.alice[1].to_bytes().unwrap();
    let err = w.alice[1]
        .process(&svc(), GROUP, &bytes(&out.commit), NOW)
        .unwrap_err();
    assert_eq!(err, EmulatorError::UnknownEpochId);
    assert_eq!(*w.alice[1].to_bytes().unwrap(), *before);
}

#[test]
fn a_failing_reuse_guard_encrypts_nothing() {
    let w = World::new(CipherSuite(1), 1);
    let mut group = w.carol.clone();
    let guard = |_: &Secret| -> Result<[u8; 4], HookError> { Err(HookError::failed(OwnReason)) };
    let err = group
        .encrypt_application_with(&svc(), b"hello", b"", ReuseGuard::FromNonce(&guard))
        .unwrap_err();
    match err {
        GroupError::PrivateMessage(PrivateMessageError::ReuseGuard(hook)) => {
            assert_eq!(hook.downcast_ref::<OwnReason>(), Some(&OwnReason))
        }
        other => panic!("{other:?}"),
    }
}
