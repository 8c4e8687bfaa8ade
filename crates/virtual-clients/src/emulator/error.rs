//! [`EmulatorError`]: why an emulator client operation failed.

use mls_engine::codec::{CodecError, LeafSignatureError};
use mls_engine::crypto::CryptoError;
use mls_engine::extensions::{AppDataError, SafeAadError};
use mls_engine::framing::private::PrivateMessageError;
use mls_engine::group::GroupError;
use mls_engine::messages::CreationError;

use crate::derivation::DerivationError;
use crate::epoch::EpochError;
use crate::reuse_guard::ReuseGuardError;
use crate::wire::WireError;

/// Why an emulator client operation failed. Nothing of the client changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmulatorError {
    /// The engine refused the operation or message.
    #[error(transparent)]
    Group(GroupError),
    /// Emulation-epoch secrets could not be derived.
    #[error(transparent)]
    Epoch(#[from] EpochError),
    /// Virtual-client secrets could not be derived (tampered extension, punctured input...).
    #[error(transparent)]
    Derivation(#[from] DerivationError),
    /// A wire struct was malformed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The reuse guard could not be computed (the message was discarded).
    #[error(transparent)]
    ReuseGuard(#[from] ReuseGuardError),
    /// A suite is not available.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A KeyPackage could not be built.
    #[error(transparent)]
    Creation(#[from] CreationError),
    /// A KeyPackageRef could not be computed.
    #[error(transparent)]
    LeafSignature(#[from] LeafSignatureError),
    /// A message could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A `DerivationInfoExtension` names an emulation epoch this client does not have.
    #[error("unknown emulation epoch_id")]
    UnknownEpochId,
    /// A leaf of the virtual client carries no `DerivationInfoExtension`.
    #[error("leaf without DerivationInfoExtension")]
    MissingDerivationInfo,
    /// No higher-level group with this ID.
    #[error("unknown higher-level group")]
    UnknownGroup,
    /// A higher-level group with this ID already exists.
    #[error("higher-level group already exists")]
    GroupExists,
    /// No pending commit to confirm.
    #[error("no pending commit")]
    NoPendingCommit,
    /// A stored state has a version we do not read.
    #[error("emulator client state version {0} is not supported")]
    UnsupportedStateVersion(u16),
    /// No KeyPackage of the Welcome is one this client published or learned from a
    /// sibling's `KeyPackageUpload`.
    #[error("the Welcome is for no KeyPackageRef this emulator client knows")]
    UnknownKeyPackageRef,
    /// A `KeyPackageUpload` lists no KeyPackage or the same `KeyPackageRef` twice.
    #[error("malformed KeyPackageUpload: {0}")]
    MalformedUpload(&'static str),
    /// The emulation group's SafeAAD could not be built or read.
    #[error(transparent)]
    SafeAad(#[from] SafeAadError),
    /// The emulation group's `app_data_dictionary` could not be built.
    #[error(transparent)]
    AppData(#[from] AppDataError),
    /// A stored state is inconsistent.
    #[error("malformed emulator client state: {0}")]
    MalformedState(&'static str),
    /// An external join (or following one) into a group no accepted `ExternalJoin` action
    /// announced (§5.5.2).
    #[error("no ExternalJoin action announced this group")]
    NoExternalJoin,
    /// An emulation-group application message (state transfer) was malformed or
    /// inconsistent; nothing was installed.
    #[error(transparent)]
    Transfer(#[from] crate::transfer::TransferError),
    /// An external commit of ours into this group is pending already: confirm or abandon it
    /// first.
    #[error("an external join into this group is pending")]
    ExternalJoinPending,
    /// No external commit of ours into this group is pending.
    #[error("no external join into this group is pending")]
    NoPendingExternalJoin,
    /// A commit of the emulation group removed this emulator client: it holds nothing of the
    /// virtual client any more and does nothing further.
    #[error("this emulator client was removed from the emulation group")]
    Removed,
}

/// The engine's error, or the emulator's own error a hook of ours (the sibling re-derivation
/// resolver, the reuse guard) gave the engine, unpacked.
impl From<GroupError> for EmulatorError {
    fn from(e: GroupError) -> Self {
        match &e {
            GroupError::OwnLeafResolver(hook) => {
                if let Some(ours) = hook.downcast_ref::<EmulatorError>() {
                    return ours.clone();
                }
            }
            GroupError::PrivateMessage(PrivateMessageError::ReuseGuard(hook)) => {
                if let Some(guard) = ReuseGuardError::from_hook(hook) {
                    return EmulatorError::ReuseGuard(guard);
                }
            }
            _ => {}
        }
        EmulatorError::Group(e)
    }
}

/// What an application (or the device runtime) does after an [`EmulatorError`]
/// ([`EmulatorError::recovery`]). In every case the client's state is unchanged by the failed
/// call (docs/decisions.md E-vc16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The client is behind: process what the delivery service holds for it (the emulation
    /// group first, then the group concerned) and retry the operation or message.
    RetryAfterProcessing,
    /// The client cannot follow this higher-level group any more (it refused a message the
    /// service accepted, or its leaf there is gone): rejoin it by external commit (resync,
    /// [`crate::emulator::EmulatorClient::announce_external_join`]).
    Resync,
    /// The operation or input is invalid as such (unknown group, a forged or malformed
    /// message, a request the group's state does not allow): report it, do not retry it.
    /// A message refused this way that the delivery service nevertheless accepted into a
    /// group's log means the client lags that group: treat it as [`Recovery::Resync`].
    Refused,
    /// The client's state is unusable (removed from the emulation group, a stored state that
    /// does not load, a cipher suite that is not available): wipe it; the device must be added
    /// anew.
    Fatal,
}

impl EmulatorError {
    /// What to do after this error (see [`Recovery`]).
    pub fn recovery(&self) -> Recovery {
        use EmulatorError as E;
        match self {
            E::Group(e) => group_recovery(e),
            // The newest emulation epoch could not be exported: the emulation state is broken.
            E::Epoch(_) => Recovery::Fatal,
            // A sibling's leaf that does not re-derive; an emulation epoch we do not hold may
            // be one we have not processed yet.
            E::UnknownEpochId => Recovery::RetryAfterProcessing,
            E::Derivation(_) | E::MissingDerivationInfo => Recovery::Resync,
            E::Wire(_) | E::Codec(_) | E::LeafSignature(_) | E::SafeAad(_) => Recovery::Refused,
            // The message was not sent; a new attempt draws a new generation.
            E::ReuseGuard(_) => Recovery::RetryAfterProcessing,
            E::Crypto(_) | E::AppData(_) => Recovery::Fatal,
            E::Creation(_) => Recovery::Refused,
            E::UnknownGroup
            | E::GroupExists
            | E::NoPendingCommit
            | E::UnknownKeyPackageRef
            | E::MalformedUpload(_)
            | E::NoExternalJoin
            | E::ExternalJoinPending
            | E::NoPendingExternalJoin
            | E::Transfer(_) => Recovery::Refused,
            E::UnsupportedStateVersion(_) | E::MalformedState(_) | E::Removed => Recovery::Fatal,
        }
    }
}

/// The recovery of an engine error.
fn group_recovery(e: &GroupError) -> Recovery {
    use GroupError as G;
    match e {
        // Behind (or ahead of) the group: process the log, then retry.
        G::FutureEpoch { .. } | G::CommitPending => Recovery::RetryAfterProcessing,
        // Our leaf is gone or the group is closed.
        G::NotAMember | G::ReInitCommitted => Recovery::Resync,
        G::UnknownStateVersion(_) | G::MalformedState(_) => Recovery::Fatal,
        // Everything else refuses one message or request (stale, forged, malformed, not
        // allowed in this state); the group itself is fine.
        _ => Recovery::Refused,
    }
}
