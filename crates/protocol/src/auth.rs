//! How a device authenticates its requests to the delivery service (docs/protocol.md §3).
//!
//! Every request is signed with the device's signature key: the one of its MLS credential,
//! registered with [`crate::RegisterDevice`] (whose own signature proves possession of the key).
//! The signature is `SignWithLabel(key, "vmls request", AuthenticatedRequest)` (RFC 9420 §5.1.2
//! labels, so it can never be mistaken for an MLS signature), over the device's name, a
//! timestamp and a fresh nonce: the service accepts a request only within its replay window
//! around its own clock and only once per nonce. The WebSocket that pushes wake-ups is opened
//! with a [`SignedSubscribe`] under its own label.

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

use crate::ids::ClientId;
use crate::payload::Payload;
use crate::request::Request;

/// The `SignWithLabel` label of a [`SignedRequest`].
pub const REQUEST_LABEL: &str = "vmls request";

/// The `SignWithLabel` label of a [`SignedSubscribe`].
pub const SUBSCRIBE_LABEL: &str = "vmls subscribe";

/// The MLS `SignatureScheme` `ed25519` (RFC 8446 §4.2.3).
pub const ED25519: u16 = 0x0807;

/// The MLS `SignatureScheme` `ecdsa_secp256r1_sha256` (RFC 8446 §4.2.3).
pub const ECDSA_SECP256R1_SHA256: u16 = 0x0403;

/// Who signs, when, and a value used once.
///
/// ```text
/// struct { opaque device<V>; uint64 timestamp; opaque nonce[16]; } Authenticator;
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Authenticator {
    /// The signing device.
    pub device: ClientId,
    /// Seconds since the Unix epoch on the device's clock.
    pub timestamp: u64,
    /// 16 random octets, never reused by the device within the replay window.
    pub nonce: [u8; 16],
}

/// What a device signs for one request.
///
/// ```text
/// struct { Authenticator authenticator; Request request; } AuthenticatedRequest;
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct AuthenticatedRequest {
    /// Who, when, nonce.
    pub authenticator: Authenticator,
    /// The request.
    pub request: Request,
}

/// The body of `POST /v1/request`: a request and its signature.
///
/// ```text
/// struct { AuthenticatedRequest content; opaque signature<V>; } SignedRequest;
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct SignedRequest {
    /// The signed content.
    pub content: AuthenticatedRequest,
    /// `SignWithLabel(key, "vmls request", content)`.
    pub signature: Payload,
}

/// The first frame a device sends on the push WebSocket (`GET /v1/push`).
///
/// ```text
/// struct { Authenticator content; opaque signature<V>; } SignedSubscribe;
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct SignedSubscribe {
    /// The signed content.
    pub content: Authenticator,
    /// `SignWithLabel(key, "vmls subscribe", content)`.
    pub signature: Payload,
}

/// A frame the service sends on the push WebSocket.
///
/// ```text
/// enum { subscribed(1), mailbox(2), refused(3), (255) } PushType;
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub enum Push {
    /// The subscription is authenticated; wake-ups follow. Read the mailbox once now.
    #[tls_codec(discriminant = 1)]
    Subscribed {},
    /// The device's mailbox may have new items: read it.
    #[tls_codec(discriminant = 2)]
    Mailbox {},
    /// The subscription was refused (then the service closes the socket).
    #[tls_codec(discriminant = 3)]
    Refused(crate::ServiceError),
}
