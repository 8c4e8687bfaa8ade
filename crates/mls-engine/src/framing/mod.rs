//! Message framing and protection (RFC 9420 §6): PublicMessage and PrivateMessage.
//!
//! The wire structs live in [`crate::codec`]; this module turns a [`FramedContent`] into a
//! protected message and back:
//!
//! * [`public`] (§6.1, §6.2): sign the content, add the `membership_tag` of `member` senders;
//!   on receipt check the membership tag, then the signature under the key the caller finds
//!   for the sender ([`public::UnverifiedPublicMessage`]).
//! * [`private`] (§6.3): sign the content, encrypt it under the sender's ratchet key from the
//!   [`crate::schedule::SecretTree`] with a reuse guard and padding, then encrypt the sender
//!   data under a key derived from `sender_data_secret` and a sample of the ciphertext. On
//!   receipt the order is reversed; the ratchet generation is consumed only once the whole
//!   message (decryption, padding, signature) has checked out.
//!
//! Neither module checks a commit's `confirmation_tag`: it is keyed by the *next* epoch's
//! `confirmation_key`, which only the commit processing can derive.
//!
//! [`FramedContent`]: crate::codec::FramedContent

pub mod private;
pub mod public;

pub use private::{
    decrypt_sender_data, protect_private, protect_private_with_key, ratchet_type, sign_private,
    unprotect_private, Padding, PrivateMessageError, PrivateMessageOptions, ReuseGuard,
};
pub use public::{
    protect_public, sign_public, unprotect_public, PublicMessageError, UnverifiedPublicMessage,
};
