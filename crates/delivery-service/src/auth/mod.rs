//! Authentication of requests (docs/protocol.md §3, docs/decisions.md "HTTP layer").
//!
//! Every request is a [`SignedRequest`]: the device's name, a timestamp, a nonce and the
//! request, signed with `SignWithLabel(key, "vmls request", ·)` under the signature key the
//! device registered. A `register_device` request is verified against the key it registers
//! (proof of possession); every other one against the registered key. The [`ReplayGuard`]
//! accepts a (device, nonce) once within the replay window around the service's clock.

mod replay;
mod signature;

pub use replay::ReplayGuard;
pub use signature::{verify_labelled, SignatureError};

use vmls_protocol::auth::{REQUEST_LABEL, SUBSCRIBE_LABEL};
use vmls_protocol::{
    encode, Authenticator, ClientId, Request, ServiceError, SignedRequest, SignedSubscribe, Text,
};

/// A device's registered signature key: its MLS `SignatureScheme` and public key.
pub type DeviceKey = (u16, Vec<u8>);

/// Why a request failed authentication. An unknown device is answered with
/// [`ServiceError::UnknownClient`], as the service itself would; every other variant with
/// [`ServiceError::Unauthorized`] (see [`AuthError::to_service_error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No device of that name has registered a key.
    #[error("device {0} is not registered")]
    UnknownDevice(ClientId),
    /// The signature does not verify under the device's key.
    #[error("bad signature: {0}")]
    Signature(#[from] SignatureError),
    /// The timestamp is outside the replay window around the service's clock.
    #[error("timestamp {timestamp} is outside the replay window of {window} s around {now}")]
    Stale {
        /// The request's timestamp.
        timestamp: u64,
        /// The service's clock.
        now: u64,
        /// The window's half-width in seconds.
        window: u64,
    },
    /// The (device, nonce) pair was seen already within the window: a replayed request.
    #[error("replayed request (nonce already used)")]
    Replayed,
    /// A `register_device` names another device than the one that signs it.
    #[error("a device registers only itself")]
    RegistersAnother,
}

impl AuthError {
    /// The typed refusal sent back: [`ServiceError::UnknownClient`] for an unknown device,
    /// else [`ServiceError::Unauthorized`] with this error's text.
    pub fn to_service_error(&self) -> ServiceError {
        match self {
            Self::UnknownDevice(device) => ServiceError::UnknownClient {
                client: device.clone(),
            },
            _ => ServiceError::Unauthorized {
                reason: Text::new(self),
            },
        }
    }
}

/// Checks the signature of a request given the signer's registered key (`None`: the device is
/// unknown). A `register_device` is checked against the key it carries instead, and must name
/// its signer. The replay window is checked separately
/// ([`ReplayGuard::check`]) after the signature, so that unsigned garbage cannot fill it.
pub fn verify_request(
    signed: &SignedRequest,
    registered: Option<&DeviceKey>,
) -> Result<(), AuthError> {
    let device = &signed.content.authenticator.device;
    let content =
        encode(&signed.content).map_err(|_| AuthError::Signature(SignatureError::Encoding))?;
    let (scheme, key): (u16, &[u8]) = match &signed.content.request {
        Request::RegisterDevice(r) => {
            if &r.device != device {
                return Err(AuthError::RegistersAnother);
            }
            (r.signature_scheme, r.signature_key.as_bytes())
        }
        _ => match registered {
            Some((scheme, key)) => (*scheme, key.as_slice()),
            None => return Err(AuthError::UnknownDevice(device.clone())),
        },
    };
    verify_labelled(scheme, key, REQUEST_LABEL, &content, &signed.signature)?;
    Ok(())
}

/// Checks the signature of a push subscription against the device's registered key.
pub fn verify_subscribe(
    signed: &SignedSubscribe,
    registered: Option<&DeviceKey>,
) -> Result<(), AuthError> {
    let Some((scheme, key)) = registered else {
        return Err(AuthError::UnknownDevice(signed.content.device.clone()));
    };
    let content =
        encode(&signed.content).map_err(|_| AuthError::Signature(SignatureError::Encoding))?;
    verify_labelled(*scheme, key, SUBSCRIBE_LABEL, &content, &signed.signature)?;
    Ok(())
}

/// The [`Authenticator`] of a request, for the replay check.
pub fn authenticator(signed: &SignedRequest) -> &Authenticator {
    &signed.content.authenticator
}
