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
    protect_public, sign_public, unprotect_public, unprotect_public_without_membership_key,
    PublicMessageError, UnverifiedPublicMessage,
};

/// Fixtures shared by the unit tests of [`public`] and [`private`].
#[cfg(test)]
mod test_support {
    use crate::codec::{CipherSuite, GroupContext, ProtocolVersion};
    use crate::crypto::{CryptoProvider as _, RustCrypto, SignatureKeyPair, SuiteProvider};

    static P: RustCrypto = RustCrypto;

    /// Suite 1.
    pub(crate) fn cs() -> &'static dyn SuiteProvider {
        P.suite(CipherSuite(1)).unwrap()
    }

    /// A signature key pair from a one-byte seed.
    pub(crate) fn keys(seed: u8) -> SignatureKeyPair {
        cs().signature_key_pair_from_seed(&[seed; 32]).unwrap()
    }

    /// The GroupContext of a member's epoch 9.
    pub(crate) fn context() -> GroupContext {
        GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(1),
            group_id: vec![1, 2, 3].into(),
            epoch: 9,
            tree_hash: vec![4; 32].into(),
            confirmed_transcript_hash: vec![5; 32].into(),
            extensions: vec![],
        }
    }
}
