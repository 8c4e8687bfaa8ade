//! [`RuntimeError`] and the mapping of every error to a [`Recovery`].

use mls_engine::codec::{CodecError, LeafSignatureError};
use mls_engine::crypto::CryptoError;
use mls_engine::group::GroupError;
use mls_engine::messages::CreationError;

use super::api::Recovery;
use crate::emulator::EmulatorError;

/// Why a runtime call failed. A failed call changes nothing of the device.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The emulator client refused.
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    /// The engine refused.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A message could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A suite is not available.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A KeyPackage could not be built.
    #[error(transparent)]
    Creation(#[from] CreationError),
    /// A KeyPackageRef could not be computed.
    #[error(transparent)]
    LeafSignature(#[from] LeafSignatureError),
    /// A protocol structure could not be encoded or decoded.
    #[error("protocol encoding: {0}")]
    Protocol(String),
    /// The bytes were not the MLS message expected.
    #[error("expected {0}")]
    UnexpectedMessage(&'static str),
    /// No higher-level group of that id.
    #[error("unknown group")]
    UnknownGroup,
    /// A group of that id exists already.
    #[error("group exists")]
    GroupExists,
    /// A Welcome for none of our KeyPackages.
    #[error("the Welcome is for none of this device's KeyPackages")]
    UnknownKeyPackage,
    /// An emulator-only operation on a plain client (or the reverse).
    #[error("not an emulator client")]
    NotAnEmulator,
    /// The emulator client has not joined its emulation group yet.
    #[error("not yet in the emulation group")]
    NotJoined,
    /// This kind of device cannot do it.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// An answer to no request that is out.
    #[error("no request {0:?} is out")]
    UnknownRequest(super::api::RequestId),
    /// A saved state is malformed or of another version.
    #[error("malformed device state: {0}")]
    MalformedState(&'static str),
}

impl RuntimeError {
    /// What to do about this error when it comes from processing an accepted message of a
    /// group (or from acting in it).
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::Emulator(e) => emulator_recovery(e),
            Self::Group(e) => group_recovery(e),
            Self::UnknownRequest(_) => Recovery::RetryAfterProcessing,
            Self::MalformedState(_) | Self::NotAnEmulator | Self::NotJoined => Recovery::Fatal,
            Self::Crypto(_) => Recovery::Fatal,
            Self::Codec(_)
            | Self::Creation(_)
            | Self::LeafSignature(_)
            | Self::Protocol(_)
            | Self::UnexpectedMessage(_)
            | Self::UnknownGroup
            | Self::GroupExists
            | Self::UnknownKeyPackage
            | Self::Unsupported(_) => Recovery::Resync,
        }
    }
}

/// The recovery of an engine error: a pending commit or an epoch we have not reached asks
/// for processing first; anything else about an accepted message means we cannot follow.
fn group_recovery(e: &GroupError) -> Recovery {
    match e {
        GroupError::CommitPending => Recovery::RetryAfterProcessing,
        _ => Recovery::Resync,
    }
}

/// The recovery of an emulator error (docs/decisions.md, "Device runtime").
fn emulator_recovery(e: &EmulatorError) -> Recovery {
    match e {
        EmulatorError::Group(g) => group_recovery(g),
        // A sibling derived from an emulation epoch we have not processed yet: process the
        // emulation group first.
        EmulatorError::UnknownEpochId => Recovery::RetryAfterProcessing,
        EmulatorError::NoPendingCommit => Recovery::RetryAfterProcessing,
        EmulatorError::Removed
        | EmulatorError::UnsupportedStateVersion(_)
        | EmulatorError::MalformedState(_)
        | EmulatorError::Crypto(_) => Recovery::Fatal,
        _ => Recovery::Resync,
    }
}
