//! RFC 9420 wire structs in the TLS presentation language (§2.1), encoded with `tls_codec`.
//!
//! Decoding is strict: [`decode_exact`] refuses trailing bytes, `tls_codec`'s `mls` feature
//! refuses non-minimal varint lengths and lengths of 2^30 or more, and enumerations refuse
//! values the RFC does not define where the RFC gives no way to skip them.
//!
//! One file per RFC section: [`types`] (IANA registries, §17), [`credential`] (§5.3),
//! [`extensions`] (§7.2, §13), [`tree`] (§7: leaves, parents, UpdatePath), [`group_context`]
//! (§8.1), [`key_package`] (§10).

pub mod credential;
pub mod extensions;
pub mod group_context;
pub mod key_package;
pub mod tree;
pub mod types;

pub use credential::*;
pub use extensions::*;
pub use group_context::*;
pub use key_package::*;
pub use tree::*;
pub use types::*;

mod psk;
pub use psk::*;

mod commit;
mod extension_payloads;
mod framing;
mod proposals;
mod welcome;
pub use commit::*;
pub use extension_payloads::*;
pub use framing::*;
pub use proposals::*;
pub use welcome::*;

pub use crate::crypto::CipherSuite;

pub use tls_codec::{
    Deserialize, DeserializeBytes, Serialize, SerializeBytes, Size, VLByteSlice, VLBytes,
};

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended inside a value.
    #[error("input ended early")]
    EndOfStream,
    /// Bytes were left after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingData(usize),
    /// A variable-length vector's length was not minimally encoded, too large, or did not
    /// match its elements.
    #[error("invalid vector length")]
    InvalidVectorLength,
    /// An enumeration value the RFC does not define here.
    #[error("unknown value: {0}")]
    UnknownValue(String),
    /// Any other decoding failure.
    #[error("decoding failed: {0}")]
    Decoding(String),
    /// Encoding failed (a value too long for its length field).
    #[error("encoding failed: {0}")]
    Encoding(String),
}

impl From<tls_codec::Error> for CodecError {
    fn from(e: tls_codec::Error) -> Self {
        use tls_codec::Error as E;
        match e {
            E::EndOfStream => CodecError::EndOfStream,
            E::TrailingData => CodecError::TrailingData(0),
            E::InvalidVectorLength => CodecError::InvalidVectorLength,
            E::UnknownValue(v) => CodecError::UnknownValue(v.to_string()),
            E::EncodingError(s) => CodecError::Encoding(s),
            other => CodecError::Decoding(format!("{other:?}")),
        }
    }
}

/// Decodes one `T` that must span all of `bytes`, through the slice-based decoder (which
/// never allocates by a length field before checking it against the input).
pub fn decode_exact<T: DeserializeBytes>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = T::tls_deserialize_bytes(bytes)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(CodecError::TrailingData(rest.len()))
    }
}

/// Encodes `value` to a fresh byte vector.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    value.tls_serialize_detached().map_err(CodecError::from)
}
