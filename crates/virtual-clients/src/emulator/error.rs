//! [`EmulatorError`]: why an emulator client operation failed.

use mls_engine::codec::{CodecError, LeafSignatureError};
use mls_engine::crypto::CryptoError;
use mls_engine::extensions::{AppDataError, SafeAadError};
use mls_engine::group::GroupError;
use mls_engine::messages::CreationError;

use crate::derivation::DerivationError;
use crate::epoch::EpochError;
use crate::reuse_guard::ReuseGuardError;
use crate::wire::WireError;

/// Why an emulator client operation failed. Nothing of the client changed.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The engine refused the operation or message.
    #[error(transparent)]
    Group(#[from] GroupError),
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
    /// A commit of the emulation group removed this emulator client: it holds nothing of the
    /// virtual client any more and does nothing further.
    #[error("this emulator client was removed from the emulation group")]
    Removed,
}
