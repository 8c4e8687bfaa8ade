//! # vmls-protocol
//!
//! The protocol between a device and the §5.1 delivery service of MLS Virtual Clients
//! (draft-kohbrok-mls-virtual-clients-04 §5.1, DESIGN §5 row 14 and §9): what a device asks for
//! ([`Request`]), what the service answers ([`Response`], [`ServiceError`]) and what it delivers
//! ([`Delivered`]). Every structure has a TLS encoding (RFC 8446 §3 presentation language, the
//! variable-length vectors of RFC 9420 §2.1.2) through `tls_codec`, like the MLS structures it
//! carries; MLS messages inside are opaque bytes ([`Payload`]).
//!
//! This crate holds types only, no I/O: the device runtime (`virtual-clients`) emits
//! [`Request`]s and consumes [`Response`]s and [`Delivered`] items; the server
//! (`delivery-service`) does the opposite. Neither imports the other.
//!
//! | module | what |
//! |---|---|
//! | [`auth`] | [`SignedRequest`], [`SignedSubscribe`], [`Push`]: request signatures, push frames |
//! | [`ids`] | [`ClientId`], [`GroupId`], [`Sequence`], [`VcSequence`], [`MessageId`], [`MailboxCursor`] |
//! | [`payload`] | [`Payload`], shared opaque bytes |
//! | [`request`] | [`Request`] and its bodies |
//! | [`response`] | [`Response`], [`ServiceError`] |
//! | [`delivery`] | [`GroupMessage`], [`Delivered`], [`MailboxItem`], [`GroupStatus`], [`HandshakeView`] |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod delivery;
pub mod ids;
pub mod payload;
pub mod request;
pub mod response;

pub use auth::{AuthenticatedRequest, Authenticator, Push, SignedRequest, SignedSubscribe};
pub use delivery::{
    Delivered, EmulatorView, GroupMessage, GroupStatus, HandshakeView, MailboxItem, WelcomeDelivery,
};
pub use ids::{ClientId, GroupId, MailboxCursor, MessageId, Sequence, VcSequence};
pub use payload::Payload;
pub use payload::Text;
pub use request::{
    Ack, ConsumeKeyPackage, CreateGroup, Fetch, GroupSend, KeyPackageEntry, KeyPackageUse,
    MessageKind, PublishGroupInfo, PublishKeyPackages, ReadMailbox, RegisterDevice,
    RegisterVirtualClient, Request, RetireKeyPackages, SendRequest, VirtualClientSend,
    WelcomeRequest,
};
pub use response::{Accepted, Done, GroupInfoBody, Response, ServiceError};

use tls_codec::{DeserializeBytes, Serialize};

/// Why bytes could not be decoded as a protocol structure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a well-formed TLS encoding of the structure.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A well-formed structure was followed by more bytes.
    #[error("{0} trailing bytes after the structure")]
    TrailingData(usize),
}

/// Why a structure could not be encoded: a vector longer than its length field allows
/// (2^30 - 1 octets for the variable-length vectors of RFC 9420 §2.1.2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("encoding failed: {0}")]
pub struct EncodeError(pub String);

/// Encodes a protocol structure.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    value
        .tls_serialize_detached()
        .map_err(|e| EncodeError(format!("{e:?}")))
}

/// Decodes one structure that must span all of `bytes`, through the slice decoder (which checks
/// every length field against the input before allocating).
pub fn decode<T: DeserializeBytes>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) =
        T::tls_deserialize_bytes(bytes).map_err(|e| DecodeError::Malformed(format!("{e:?}")))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::TrailingData(rest.len()))
    }
}
