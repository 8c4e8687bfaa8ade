//! [`RuntimeError`] and the mapping of every error to a [`Recovery`].

use mls_engine::codec::{CodecError, LeafSignatureError};
use mls_engine::crypto::CryptoError;
use mls_engine::group::GroupError;
use mls_engine::messages::CreationError;

use super::Recovery;
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
    /// What to do about this error ([`Recovery`], docs/decisions.md E-vc16 and R-rt rows):
    /// the emulator's and engine's errors by [`EmulatorError::recovery`]; a state that does
    /// not load, or a device of the wrong kind, is fatal; a malformed input is refused.
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::Emulator(e) => e.recovery(),
            Self::Group(e) => EmulatorError::Group(e.clone()).recovery(),
            Self::Crypto(e) => EmulatorError::Crypto(e.clone()).recovery(),
            Self::UnknownRequest(_) => Recovery::Refused,
            Self::MalformedState(_) | Self::NotAnEmulator | Self::NotJoined => Recovery::Fatal,
            Self::Codec(_)
            | Self::Creation(_)
            | Self::LeafSignature(_)
            | Self::Protocol(_)
            | Self::UnexpectedMessage(_)
            | Self::UnknownGroup
            | Self::GroupExists
            | Self::UnknownKeyPackage
            | Self::Unsupported(_) => Recovery::Refused,
        }
    }
}
