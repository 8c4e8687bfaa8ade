//! # vmls-client
//!
//! The client side of the delivery service's network protocol (docs/protocol.md): a device's
//! [`Signer`] signs every request with the key of its MLS credential; a [`Client`] sends them
//! over HTTP/1.1 (plain on loopback, or TLS with rustls, verifying the server's certificate
//! against the web PKI roots or a given CA file), keeps connections alive, reconnects and
//! retries what may be retried; [`Client::subscribe`] keeps a WebSocket open on which the
//! service says "your mailbox may have new items", reconnecting when it drops.
//!
//! This is a transport: it does not interpret requests or responses beyond their encoding.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod push;
mod signer;
mod transport;

pub use client::{Client, ClientConfig, ClientError};
pub use push::PushSubscription;
pub use signer::{Signer, SignerError};
pub use vmls_protocol;
