//! The recovery class of errors (issue 10's runtime list): every `EmulatorError` says whether
//! to process and retry, resync by external join, report and drop, or wipe the device.

use mls_engine::crypto::CipherSuite;
use mls_engine::group::GroupError;
use virtual_clients::emulator::{EmulatorError, Recovery};

use crate::common::{svc, NOW};
use crate::world::{bytes, World, GROUP};

#[test]
fn errors_met_in_use_have_the_recovery_the_docs_give() {
    let mut w = World::new(CipherSuite(1), 2);
    // A commit from an emulation epoch the sibling has not processed yet: process, retry.
    w.alice[0]
        .commit_emulation(&svc(), mls_engine::group::CommitOptions::new(), NOW)
        .unwrap();
    let emulation = w.alice[0].confirm_emulation_commit(&svc());
    emulation.unwrap();
    let out = w.alice[0].commit(&svc(), GROUP, vec![], NOW).unwrap();
    let err = w.alice[1]
        .process(&svc(), GROUP, &bytes(&out.commit), NOW)
        .unwrap_err();
    assert_eq!(err.recovery(), Recovery::RetryAfterProcessing);
    // Garbage: refused, nothing to recover.
    let err = w.alice[1].process(&svc(), GROUP, b"junk", NOW).unwrap_err();
    assert_eq!(err.recovery(), Recovery::Refused);
    assert_eq!(EmulatorError::UnknownGroup.recovery(), Recovery::Refused);
    // A message of a later epoch than ours: process the log first.
    let future = EmulatorError::from(GroupError::FutureEpoch {
        current: 1,
        message: 2,
    });
    assert_eq!(future.recovery(), Recovery::RetryAfterProcessing);
    assert_eq!(
        EmulatorError::from(GroupError::NotAMember).recovery(),
        Recovery::Resync
    );
    assert_eq!(EmulatorError::Removed.recovery(), Recovery::Fatal);
    assert_eq!(
        EmulatorError::MalformedState("x").recovery(),
        Recovery::Fatal
    );
}
