//! PrivateMessage protection (RFC 9420 §6.3).
//!
//! Sending ([`sign_private`], then [`protect_private`]):
//!
//! 1. the content is signed for the `mls_private_message` wire format;
//! 2. `PrivateMessageContent` (body without its content type, auth data, zero padding as
//!    [`Padding`] says) is encrypted with the key and nonce of the next generation of the
//!    sender's ratchet: the handshake ratchet for proposals and commits, the application
//!    ratchet for application data. The first four octets of the nonce are XORed with the
//!    `reuse_guard` ([`ReuseGuard`]: fresh random by default, or a given value, or a function
//!    of the key-schedule nonce). The AAD is `PrivateContentAAD`;
//! 3. `SenderData { leaf_index, generation, reuse_guard }` is encrypted under
//!    `ExpandWithLabel(sender_data_secret, "key"/"nonce", ciphertext_sample, AEAD.Nk/Nn)`
//!    with `SenderDataAAD`, where `ciphertext_sample` is the first `KDF.Nh` octets of the
//!    content ciphertext (all of it if shorter).
//!
//! Receiving ([`unprotect_private`]) reverses the steps: sender data, the sender's leaf (which
//! must be a member: the caller's lookup gives its signature key), the content key of the
//! sender's generation, content decryption, decoding with all-zero padding, the signature.
//! The ratchet generation is consumed only if every step succeeds
//! ([`SecretTree::decrypt_with`]): a rejected message leaves the secret tree as it was.

use tls_codec::{DeserializeBytes as _, VLBytes};
use zeroize::Zeroize as _;

use crate::codec::{
    encode, AuthenticatedContent, CodecError, ContentType, FramedContent, GroupContext,
    PrivateMessage, PrivateMessageContent, PrivateMessageContentError, Sender, SenderData,
    SenderType, SignatureError, WireFormat,
};
use crate::crypto::{CryptoError, Secret, SignaturePrivateKey, SuiteProvider};
use crate::hook::HookError;
use crate::schedule::{
    sender_data_key_nonce, RatchetKey, RatchetType, SecretTree, SecretTreeError,
};
use crate::tree::LeafIndex;

/// The length of `SenderData.reuse_guard`.
pub const REUSE_GUARD_LEN: usize = 4;

/// Why a PrivateMessage could not be built or was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivateMessageError {
    /// The AuthenticatedContent was signed for another wire format.
    #[error("wire format {0:?} is not mls_private_message")]
    WrongWireFormat(WireFormat),
    /// Only `member` senders can send a PrivateMessage (§6.3.2).
    #[error("a {0:?} sender cannot send a PrivateMessage")]
    NotAMember(SenderType),
    /// The `confirmation_tag` is missing from a commit or present on other content.
    #[error("confirmation_tag must be present exactly for commits")]
    ConfirmationTagMismatch,
    /// The message is for another group than the GroupContext's.
    #[error("the message is for another group")]
    WrongGroupId,
    /// The message is for another epoch than the GroupContext's.
    #[error("the message is for epoch {actual}, the context is at epoch {expected}")]
    WrongEpoch {
        /// The GroupContext's epoch.
        expected: u64,
        /// The message's epoch.
        actual: u64,
    },
    /// `encrypted_sender_data` did not decrypt under the sender data key.
    #[error("sender data decryption failed")]
    SenderDataDecryptionFailed,
    /// The decrypted sender data is not a `SenderData`.
    #[error("malformed sender data: {0}")]
    MalformedSenderData(CodecError),
    /// The sender data names a leaf that is blank or outside the tree.
    #[error("unknown sender leaf {0}")]
    UnknownSender(u32),
    /// The generation's key was used already.
    #[error("generation {generation} was already used")]
    GenerationConsumed {
        /// The generation of the message.
        generation: u32,
    },
    /// The generation is older than the retained window; its key is deleted.
    #[error("generation {generation} is too old; its key is deleted")]
    GenerationExpired {
        /// The generation of the message.
        generation: u32,
    },
    /// The generation is further ahead of the sender's ratchet than allowed.
    #[error("generation {generation} is too far ahead")]
    GenerationTooFarAhead {
        /// The generation of the message.
        generation: u32,
    },
    /// The sender's ratchet has used every generation.
    #[error("the sender's ratchet is exhausted")]
    GenerationExhausted,
    /// `ciphertext` did not decrypt under the sender's ratchet key.
    #[error("content decryption failed")]
    ContentDecryptionFailed,
    /// The decrypted content does not decode as a PrivateMessageContent.
    #[error("malformed content: {0}")]
    MalformedContent(CodecError),
    /// The padding has a non-zero octet (§6.3.1: the message is malformed).
    #[error("non-zero padding")]
    NonZeroPadding,
    /// The signature does not verify under the sender's key.
    #[error("invalid signature")]
    InvalidSignature,
    /// The secret tree refused for another reason (suite mismatch, corrupted state).
    #[error(transparent)]
    SecretTree(SecretTreeError),
    /// Signing, or encoding the signed structures, failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Encoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A cryptographic operation of the sender failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The sender's reuse-guard hook (`ReuseGuard::FromNonce`, H4) failed; nothing was sent.
    #[error("reuse guard: {0}")]
    ReuseGuard(HookError),
}

impl From<SecretTreeError> for PrivateMessageError {
    fn from(e: SecretTreeError) -> Self {
        match e {
            SecretTreeError::GenerationConsumed { generation } => {
                PrivateMessageError::GenerationConsumed { generation }
            }
            SecretTreeError::GenerationExpired { generation, .. } => {
                PrivateMessageError::GenerationExpired { generation }
            }
            SecretTreeError::GenerationTooFarAhead { generation, .. } => {
                PrivateMessageError::GenerationTooFarAhead { generation }
            }
            SecretTreeError::GenerationExhausted => PrivateMessageError::GenerationExhausted,
            SecretTreeError::LeafOutOfRange { leaf, .. } => {
                PrivateMessageError::UnknownSender(leaf.0)
            }
            other => PrivateMessageError::SecretTree(other),
        }
    }
}

/// How many zero octets to append to a PrivateMessageContent (§6.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    #[default]
    None,
    /// Exactly this many zero octets.
    Zeros(usize),
    /// As few zero octets as make the plaintext's length a multiple of this many octets (0
    /// and 1 mean no padding).
    ToMultipleOf(usize),
}

impl Padding {
    /// The padding length for a plaintext of `unpadded_len` octets.
    pub fn length_for(self, unpadded_len: usize) -> usize {
        match self {
            Padding::None => 0,
            Padding::Zeros(n) => n,
            Padding::ToMultipleOf(0) | Padding::ToMultipleOf(1) => 0,
            Padding::ToMultipleOf(block) => (block - unpadded_len % block) % block,
        }
    }
}

/// Where the sender's four-octet `reuse_guard` comes from (§6.3.1).
#[derive(Clone, Copy, Default)]
pub enum ReuseGuard<'a> {
    /// Fresh random octets from the suite's random source (the RFC's behaviour).
    #[default]
    Random,
    /// This value.
    Fixed([u8; REUSE_GUARD_LEN]),
    /// A function of the key-schedule nonce of the generation used (design hook H4).
    FromNonce(&'a dyn Fn(&Secret) -> Result<[u8; REUSE_GUARD_LEN], HookError>),
}

impl core::fmt::Debug for ReuseGuard<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReuseGuard::Random => f.write_str("Random"),
            ReuseGuard::Fixed(g) => f.debug_tuple("Fixed").field(g).finish(),
            ReuseGuard::FromNonce(_) => f.write_str("FromNonce(..)"),
        }
    }
}

impl ReuseGuard<'_> {
    fn value(
        &self,
        cs: &dyn SuiteProvider,
        nonce: &Secret,
    ) -> Result<[u8; REUSE_GUARD_LEN], PrivateMessageError> {
        match self {
            ReuseGuard::Random => {
                let mut guard = [0u8; REUSE_GUARD_LEN];
                cs.fill_random(&mut guard)?;
                Ok(guard)
            }
            ReuseGuard::Fixed(guard) => Ok(*guard),
            ReuseGuard::FromNonce(f) => f(nonce).map_err(PrivateMessageError::ReuseGuard),
        }
    }
}

/// The sender's choices for one PrivateMessage.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrivateMessageOptions<'a> {
    /// Padding of the content plaintext.
    pub padding: Padding,
    /// The reuse guard.
    pub reuse_guard: ReuseGuard<'a>,
}

/// The ratchet a content type is encrypted with (§6.3.1).
pub fn ratchet_type(content_type: ContentType) -> RatchetType {
    match content_type {
        ContentType::Application => RatchetType::Application,
        ContentType::Proposal | ContentType::Commit => RatchetType::Handshake,
    }
}

/// `nonce` with its first four octets XORed with `reuse_guard` (§6.3.1).
fn guarded_nonce(
    nonce: &Secret,
    reuse_guard: &[u8; REUSE_GUARD_LEN],
) -> Result<Secret, CryptoError> {
    let mut bytes = nonce.as_bytes().to_vec();
    if bytes.len() < REUSE_GUARD_LEN {
        let actual = bytes.len();
        bytes.zeroize();
        return Err(CryptoError::InvalidLength {
            expected: REUSE_GUARD_LEN,
            actual,
        });
    }
    for (b, g) in bytes.iter_mut().zip(reuse_guard) {
        *b ^= g;
    }
    Ok(Secret::new(bytes))
}

/// The sender's leaf of a content to be sent in a PrivateMessage, after checking the wire
/// format and the auth data.
fn check_private_content(
    authenticated_content: &AuthenticatedContent,
) -> Result<u32, PrivateMessageError> {
    if authenticated_content.wire_format != WireFormat::MLS_PRIVATE_MESSAGE {
        return Err(PrivateMessageError::WrongWireFormat(
            authenticated_content.wire_format,
        ));
    }
    let content = &authenticated_content.content;
    let Sender::Member(leaf_index) = content.sender else {
        return Err(PrivateMessageError::NotAMember(
            content.sender.sender_type(),
        ));
    };
    if !authenticated_content.auth.fits(content.content_type()) {
        return Err(PrivateMessageError::ConfirmationTagMismatch);
    }
    Ok(leaf_index)
}

/// Signs `content` for the `mls_private_message` wire format (§6.1) under the GroupContext
/// of its epoch. The sender must be a `member`. A commit's `confirmation_tag` is left `None`:
/// set it before [`protect_private`].
pub fn sign_private(
    cs: &dyn SuiteProvider,
    content: FramedContent,
    context: &GroupContext,
    signature_private_key: &SignaturePrivateKey,
) -> Result<AuthenticatedContent, PrivateMessageError> {
    if !matches!(content.sender, Sender::Member(_)) {
        return Err(PrivateMessageError::NotAMember(
            content.sender.sender_type(),
        ));
    }
    Ok(AuthenticatedContent::new_signed(
        WireFormat::MLS_PRIVATE_MESSAGE,
        content,
        Some(context),
        cs,
        signature_private_key,
    )?)
}

/// Protects a signed content as a PrivateMessage (§6.3) with the next generation of the
/// sender's ratchet in `secret_tree` (consumed at once, even if a later step fails: a
/// generation is never used twice).
pub fn protect_private(
    cs: &dyn SuiteProvider,
    authenticated_content: &AuthenticatedContent,
    secret_tree: &mut SecretTree,
    sender_data_secret: &Secret,
    options: &PrivateMessageOptions<'_>,
) -> Result<PrivateMessage, PrivateMessageError> {
    let leaf_index = check_private_content(authenticated_content)?;
    let kind = ratchet_type(authenticated_content.content.content_type());
    let key = secret_tree.encryption_key(cs, LeafIndex(leaf_index), kind)?;
    protect_private_with_key(cs, authenticated_content, &key, sender_data_secret, options)
}

/// Like [`protect_private`] with a ratchet key the caller took from the secret tree (for
/// example with [`SecretTree::encryption_key_retained`], design hook H3). The key must be of
/// the sender's ratchet for the content type ([`ratchet_type`]).
pub fn protect_private_with_key(
    cs: &dyn SuiteProvider,
    authenticated_content: &AuthenticatedContent,
    key: &RatchetKey,
    sender_data_secret: &Secret,
    options: &PrivateMessageOptions<'_>,
) -> Result<PrivateMessage, PrivateMessageError> {
    let leaf_index = check_private_content(authenticated_content)?;
    let content = &authenticated_content.content;

    let mut plaintext = PrivateMessageContent {
        body: content.body.clone(),
        auth: authenticated_content.auth.clone(),
        padding_len: 0,
    };
    plaintext.padding_len = options
        .padding
        .length_for(tls_codec::Size::tls_serialized_len(&plaintext));
    let mut plaintext = plaintext.to_bytes()?;
    let reuse_guard = options.reuse_guard.value(cs, &key.nonce);
    let sealed = reuse_guard.and_then(|reuse_guard| {
        seal(
            cs,
            content,
            leaf_index,
            &plaintext,
            key,
            reuse_guard,
            sender_data_secret,
        )
    });
    plaintext.zeroize();
    sealed
}

/// Encrypts an encoded PrivateMessageContent `plaintext` of `content` (whose body it
/// carries) from `leaf_index` with `key` and `reuse_guard`, and the sender data with
/// `sender_data_secret` (§6.3.1, §6.3.2).
fn seal(
    cs: &dyn SuiteProvider,
    content: &FramedContent,
    leaf_index: u32,
    plaintext: &[u8],
    key: &RatchetKey,
    reuse_guard: [u8; REUSE_GUARD_LEN],
    sender_data_secret: &Secret,
) -> Result<PrivateMessage, PrivateMessageError> {
    let nonce = guarded_nonce(&key.nonce, &reuse_guard)?;
    let mut message = PrivateMessage {
        group_id: content.group_id.clone(),
        epoch: content.epoch,
        content_type: content.content_type(),
        authenticated_data: content.authenticated_data.clone(),
        encrypted_sender_data: VLBytes::new(Vec::new()),
        ciphertext: VLBytes::new(Vec::new()),
    };
    let content_aad = encode(&message.private_content_aad())?;
    message.ciphertext = VLBytes::new(cs.aead_seal(
        key.key.as_bytes(),
        nonce.as_bytes(),
        &content_aad,
        plaintext,
    )?);

    let sender_data = SenderData {
        leaf_index,
        generation: key.generation,
        reuse_guard,
    };
    let (sd_key, sd_nonce) =
        sender_data_key_nonce(cs, sender_data_secret, message.ciphertext.as_slice())?;
    let sender_data_aad = encode(&message.sender_data_aad())?;
    message.encrypted_sender_data = VLBytes::new(cs.aead_seal(
        sd_key.as_bytes(),
        sd_nonce.as_bytes(),
        &sender_data_aad,
        &encode(&sender_data)?,
    )?);
    Ok(message)
}

/// Decrypts and decodes a PrivateMessage's `SenderData` (§6.3.2). Changes no state.
pub fn decrypt_sender_data(
    cs: &dyn SuiteProvider,
    message: &PrivateMessage,
    sender_data_secret: &Secret,
) -> Result<SenderData, PrivateMessageError> {
    let (sd_key, sd_nonce) =
        sender_data_key_nonce(cs, sender_data_secret, message.ciphertext.as_slice())?;
    let aad = encode(&message.sender_data_aad())?;
    let plaintext = cs
        .aead_open(
            sd_key.as_bytes(),
            sd_nonce.as_bytes(),
            &aad,
            message.encrypted_sender_data.as_slice(),
        )
        .map_err(|_| PrivateMessageError::SenderDataDecryptionFailed)?;
    let (sender_data, rest) = SenderData::tls_deserialize_bytes(&plaintext)
        .map_err(|e| PrivateMessageError::MalformedSenderData(e.into()))?;
    if !rest.is_empty() {
        return Err(PrivateMessageError::MalformedSenderData(
            CodecError::TrailingData(rest.len()),
        ));
    }
    Ok(sender_data)
}

/// Unprotects a PrivateMessage received in the epoch of `context` (§6.3): checks group and
/// epoch, decrypts the sender data with `sender_data_secret`, asks `signature_key` for the
/// signature key of the sender's leaf (`None` if the leaf is blank or outside the tree),
/// decrypts the content with the key of the sender's generation from `secret_tree`, checks
/// the padding and the signature. The generation is consumed only if all of this succeeds;
/// on any error `secret_tree` is unchanged.
///
/// A commit's `confirmation_tag` is not checked here.
pub fn unprotect_private<K: AsRef<[u8]>>(
    cs: &dyn SuiteProvider,
    message: &PrivateMessage,
    context: &GroupContext,
    secret_tree: &mut SecretTree,
    sender_data_secret: &Secret,
    signature_key: impl FnOnce(u32) -> Option<K>,
) -> Result<AuthenticatedContent, PrivateMessageError> {
    if message.group_id.as_slice() != context.group_id.as_slice() {
        return Err(PrivateMessageError::WrongGroupId);
    }
    if message.epoch != context.epoch {
        return Err(PrivateMessageError::WrongEpoch {
            expected: context.epoch,
            actual: message.epoch,
        });
    }
    let sender_data = decrypt_sender_data(cs, message, sender_data_secret)?;
    let leaf_index = sender_data.leaf_index;
    let signature_public_key =
        signature_key(leaf_index).ok_or(PrivateMessageError::UnknownSender(leaf_index))?;
    let content_aad = encode(&message.private_content_aad())?;

    let open = |key: &RatchetKey| -> Result<AuthenticatedContent, PrivateMessageError> {
        let nonce = guarded_nonce(&key.nonce, &sender_data.reuse_guard)?;
        let mut plaintext = cs
            .aead_open(
                key.key.as_bytes(),
                nonce.as_bytes(),
                &content_aad,
                message.ciphertext.as_slice(),
            )
            .map_err(|_| PrivateMessageError::ContentDecryptionFailed)?;
        let decoded = PrivateMessageContent::decode(message.content_type, &plaintext);
        plaintext.zeroize();
        let decoded = decoded.map_err(|e| match e {
            PrivateMessageContentError::NonZeroPadding => PrivateMessageError::NonZeroPadding,
            PrivateMessageContentError::Codec(e) => PrivateMessageError::MalformedContent(e),
        })?;
        let authenticated_content = AuthenticatedContent {
            wire_format: WireFormat::MLS_PRIVATE_MESSAGE,
            content: FramedContent {
                group_id: message.group_id.clone(),
                epoch: message.epoch,
                sender: Sender::Member(leaf_index),
                authenticated_data: message.authenticated_data.clone(),
                body: decoded.body,
            },
            auth: decoded.auth,
        };
        match authenticated_content.verify_signature(
            cs,
            signature_public_key.as_ref(),
            Some(context),
        ) {
            Ok(()) => Ok(authenticated_content),
            Err(SignatureError::Crypto(_)) => Err(PrivateMessageError::InvalidSignature),
            Err(e) => Err(PrivateMessageError::Signature(e)),
        }
    };
    secret_tree.decrypt_with(
        cs,
        LeafIndex(leaf_index),
        ratchet_type(message.content_type),
        sender_data.generation,
        open,
    )?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, Commit, FramedContentBody, Proposal};
    use crate::framing::test_support::{context, cs, keys};

    fn tree() -> SecretTree {
        SecretTree::new(cs(), Secret::new(vec![7; 32]), 4).unwrap()
    }

    fn sender_data_secret() -> Secret {
        Secret::new(vec![8; 32])
    }

    fn content(body: FramedContentBody) -> FramedContent {
        FramedContent {
            group_id: vec![1, 2, 3].into(),
            epoch: 9,
            sender: Sender::Member(2),
            authenticated_data: vec![0xaa, 0xbb].into(),
            body,
        }
    }

    fn application(data: &[u8]) -> FramedContentBody {
        FramedContentBody::Application(data.to_vec().into())
    }

    fn signed(body: FramedContentBody) -> AuthenticatedContent {
        let mut signed =
            sign_private(cs(), content(body), &context(), &keys(2).private_key).unwrap();
        if signed.content.content_type() == ContentType::Commit {
            signed.auth.confirmation_tag = Some(vec![3; 32].into());
        }
        signed
    }

    fn protect(
        tree: &mut SecretTree,
        body: FramedContentBody,
        options: &PrivateMessageOptions<'_>,
    ) -> PrivateMessage {
        let message =
            protect_private(cs(), &signed(body), tree, &sender_data_secret(), options).unwrap();
        decode_exact(&encode(&message).unwrap()).unwrap()
    }

    fn open(
        tree: &mut SecretTree,
        message: &PrivateMessage,
    ) -> Result<AuthenticatedContent, PrivateMessageError> {
        let key = keys(2).public_key;
        unprotect_private(
            cs(),
            message,
            &context(),
            tree,
            &sender_data_secret(),
            |leaf| (leaf == 2).then_some(key),
        )
    }

    #[test]
    fn round_trip_every_content_type() {
        let mut sender = tree();
        let mut receiver = tree();
        for body in [
            FramedContentBody::Proposal(Proposal::remove(1)),
            FramedContentBody::Commit(Commit::default()),
            application(b"hello"),
        ] {
            let message = protect(&mut sender, body.clone(), &PrivateMessageOptions::default());
            assert_eq!(message.authenticated_data.as_slice(), &[0xaa, 0xbb]);
            let opened = open(&mut receiver, &message).unwrap();
            assert_eq!(opened, signed(body));
        }
        // Proposal and commit used the handshake ratchet (generations 0, 1), the application
        // data the application ratchet (generation 0).
        let message = protect(&mut sender, application(b"again"), &Default::default());
        let sd = decrypt_sender_data(cs(), &message, &sender_data_secret()).unwrap();
        assert_eq!((sd.leaf_index, sd.generation), (2, 1));
    }

    #[test]
    fn padding() {
        let mut sender = tree();
        let mut receiver = tree();
        let plain = protect(&mut sender, application(b"x"), &Default::default());
        let padded = protect(
            &mut sender,
            application(b"x"),
            &PrivateMessageOptions {
                padding: Padding::Zeros(100),
                ..Default::default()
            },
        );
        assert_eq!(
            padded.ciphertext.as_slice().len(),
            plain.ciphertext.as_slice().len() + 100
        );
        let blocked = protect(
            &mut sender,
            application(b"x"),
            &PrivateMessageOptions {
                padding: Padding::ToMultipleOf(64),
                ..Default::default()
            },
        );
        // 2 octets of data and 65 of signature, padded to 128; plus the 16-octet AEAD tag.
        assert_eq!(blocked.ciphertext.as_slice().len(), 128 + 16);
        for m in [&plain, &padded, &blocked] {
            assert_eq!(
                open(&mut receiver, m).unwrap().content.body,
                application(b"x")
            );
        }
        assert_eq!(Padding::ToMultipleOf(8).length_for(16), 0);
        assert_eq!(Padding::ToMultipleOf(8).length_for(17), 7);
        assert_eq!(Padding::ToMultipleOf(0).length_for(17), 0);
    }

    #[test]
    fn reuse_guard_sources() {
        let mut sender = tree();
        let mut receiver = tree();
        let fixed = protect(
            &mut sender,
            application(b"a"),
            &PrivateMessageOptions {
                reuse_guard: ReuseGuard::Fixed([1, 2, 3, 4]),
                ..Default::default()
            },
        );
        let sd = decrypt_sender_data(cs(), &fixed, &sender_data_secret()).unwrap();
        assert_eq!(sd.reuse_guard, [1, 2, 3, 4]);

        let seen = std::cell::RefCell::new(Vec::new());
        let hook = |nonce: &Secret| {
            seen.borrow_mut().push(nonce.clone());
            Ok([nonce.as_bytes()[0], 0, 0, 9])
        };
        let derived = protect(
            &mut sender,
            application(b"b"),
            &PrivateMessageOptions {
                reuse_guard: ReuseGuard::FromNonce(&hook),
                ..Default::default()
            },
        );
        // The hook saw the key-schedule nonce of generation 1.
        let expected = tree()
            .decryption_key(cs(), LeafIndex(2), RatchetType::Application, 1)
            .unwrap();
        assert_eq!(
            seen.borrow().as_slice(),
            std::slice::from_ref(&expected.nonce)
        );
        let sd = decrypt_sender_data(cs(), &derived, &sender_data_secret()).unwrap();
        assert_eq!(sd.reuse_guard, [expected.nonce.as_bytes()[0], 0, 0, 9]);
        for m in [&fixed, &derived] {
            open(&mut receiver, m).unwrap();
        }
    }

    #[test]
    fn tampered_ciphertext() {
        let mut sender = tree();
        let message = protect(&mut sender, application(&[5; 80]), &Default::default());
        // Past the sample (the first KDF.Nh octets) only the content key fails.
        let mut late = message.clone();
        let mut ct = late.ciphertext.as_slice().to_vec();
        ct[40] ^= 1;
        late.ciphertext = ct.into();
        let mut receiver = tree();
        let before = receiver.clone();
        assert_eq!(
            open(&mut receiver, &late).err(),
            Some(PrivateMessageError::ContentDecryptionFailed)
        );
        assert_eq!(receiver, before);
        // Inside the sample the sender data key changes too.
        let mut early = message.clone();
        let mut ct = early.ciphertext.as_slice().to_vec();
        ct[0] ^= 1;
        early.ciphertext = ct.into();
        assert_eq!(
            open(&mut receiver, &early).err(),
            Some(PrivateMessageError::SenderDataDecryptionFailed)
        );
        // Authenticated data is covered by the content AAD.
        let mut aad = message.clone();
        aad.authenticated_data = vec![0xaa].into();
        assert_eq!(
            open(&mut receiver, &aad).err(),
            Some(PrivateMessageError::ContentDecryptionFailed)
        );
        // Content type is covered by the sender data AAD.
        let mut kind = message.clone();
        kind.content_type = ContentType::Proposal;
        assert_eq!(
            open(&mut receiver, &kind).err(),
            Some(PrivateMessageError::SenderDataDecryptionFailed)
        );
        assert_eq!(receiver, before);
        // The genuine message still opens.
        open(&mut receiver, &message).unwrap();
    }

    #[test]
    fn tampered_sender_data() {
        let mut sender = tree();
        let message = protect(&mut sender, application(b"x"), &Default::default());
        let mut receiver = tree();
        let mut tampered = message.clone();
        let mut sd = tampered.encrypted_sender_data.as_slice().to_vec();
        sd[2] ^= 0x80;
        tampered.encrypted_sender_data = sd.into();
        assert_eq!(
            open(&mut receiver, &tampered).err(),
            Some(PrivateMessageError::SenderDataDecryptionFailed)
        );
        let wrong_secret = unprotect_private(
            cs(),
            &message,
            &context(),
            &mut receiver,
            &Secret::new(vec![9; 32]),
            |_| Some(keys(2).public_key),
        );
        assert_eq!(
            wrong_secret.err(),
            Some(PrivateMessageError::SenderDataDecryptionFailed)
        );
        assert_eq!(receiver, tree());
    }

    #[test]
    fn non_zero_padding() {
        let signed = signed(application(b"x"));
        let mut plaintext = PrivateMessageContent {
            body: signed.content.body.clone(),
            auth: signed.auth.clone(),
            padding_len: 3,
        }
        .to_bytes()
        .unwrap();
        let last = plaintext.len() - 1;
        plaintext[last] = 1;
        let key = tree()
            .encryption_key(cs(), LeafIndex(2), RatchetType::Application)
            .unwrap();
        let message = seal(
            cs(),
            &signed.content,
            2,
            &plaintext,
            &key,
            [0; 4],
            &sender_data_secret(),
        )
        .unwrap();
        let mut receiver = tree();
        assert_eq!(
            open(&mut receiver, &message).err(),
            Some(PrivateMessageError::NonZeroPadding)
        );
        assert_eq!(receiver, tree());
    }

    #[test]
    fn replayed_and_out_of_order_generations() {
        let mut sender = tree();
        let first = protect(&mut sender, application(b"0"), &Default::default());
        let second = protect(&mut sender, application(b"1"), &Default::default());
        let mut receiver = tree();
        open(&mut receiver, &second).unwrap();
        open(&mut receiver, &first).unwrap();
        for m in [&first, &second] {
            let before = receiver.clone();
            let sd = decrypt_sender_data(cs(), m, &sender_data_secret()).unwrap();
            assert_eq!(
                open(&mut receiver, m).err(),
                Some(PrivateMessageError::GenerationConsumed {
                    generation: sd.generation
                })
            );
            assert_eq!(receiver, before);
        }
    }

    #[test]
    fn unknown_sender_and_bad_signature() {
        let mut sender = tree();
        let message = protect(&mut sender, application(b"x"), &Default::default());
        let mut receiver = tree();
        let blank = unprotect_private(
            cs(),
            &message,
            &context(),
            &mut receiver,
            &sender_data_secret(),
            |_| None::<Vec<u8>>,
        );
        assert_eq!(blank.err(), Some(PrivateMessageError::UnknownSender(2)));
        let wrong_key = unprotect_private(
            cs(),
            &message,
            &context(),
            &mut receiver,
            &sender_data_secret(),
            |_| Some(keys(3).public_key),
        );
        assert_eq!(wrong_key.err(), Some(PrivateMessageError::InvalidSignature));
        // The signature covers the GroupContext.
        let mut other = context();
        other.confirmed_transcript_hash = vec![0; 32].into();
        let wrong_context = unprotect_private(
            cs(),
            &message,
            &other,
            &mut receiver,
            &sender_data_secret(),
            |_| Some(keys(2).public_key),
        );
        assert_eq!(
            wrong_context.err(),
            Some(PrivateMessageError::InvalidSignature)
        );
        // None of these consumed the generation.
        assert_eq!(receiver, tree());
        open(&mut receiver, &message).unwrap();
    }

    #[test]
    fn wrong_group_epoch_and_sender_rules() {
        let mut sender = tree();
        let message = protect(&mut sender, application(b"x"), &Default::default());
        let mut receiver = tree();
        let mut ctx = context();
        ctx.epoch = 8;
        let r = unprotect_private(
            cs(),
            &message,
            &ctx,
            &mut receiver,
            &sender_data_secret(),
            |_| Some(keys(2).public_key),
        );
        assert_eq!(
            r.err(),
            Some(PrivateMessageError::WrongEpoch {
                expected: 8,
                actual: 9
            })
        );
        let mut ctx = context();
        ctx.group_id = vec![0].into();
        let r = unprotect_private(
            cs(),
            &message,
            &ctx,
            &mut receiver,
            &sender_data_secret(),
            |_| Some(keys(2).public_key),
        );
        assert_eq!(r.err(), Some(PrivateMessageError::WrongGroupId));

        // Only members send PrivateMessages.
        let mut external = content(application(b"x"));
        external.sender = Sender::External(0);
        assert_eq!(
            sign_private(cs(), external, &context(), &keys(2).private_key).err(),
            Some(PrivateMessageError::NotAMember(SenderType::External))
        );
        // A commit needs its confirmation tag; a PublicMessage signature is refused.
        let mut commit = signed(FramedContentBody::Commit(Commit::default()));
        commit.auth.confirmation_tag = None;
        assert_eq!(
            protect_private(
                cs(),
                &commit,
                &mut sender,
                &sender_data_secret(),
                &Default::default()
            )
            .err(),
            Some(PrivateMessageError::ConfirmationTagMismatch)
        );
        let mut public = signed(application(b"x"));
        public.wire_format = WireFormat::MLS_PUBLIC_MESSAGE;
        assert_eq!(
            protect_private(
                cs(),
                &public,
                &mut sender,
                &sender_data_secret(),
                &Default::default()
            )
            .err(),
            Some(PrivateMessageError::WrongWireFormat(
                WireFormat::MLS_PUBLIC_MESSAGE
            ))
        );
    }

    #[test]
    fn retained_send_key_opens_for_a_sibling() {
        // Design hook H3: a key sent with while retained still opens a message at the same
        // generation from the same leaf.
        let mut shared = tree();
        let key = shared
            .encryption_key_retained(cs(), LeafIndex(2), RatchetType::Application)
            .unwrap();
        let sibling = protect_private_with_key(
            cs(),
            &signed(application(b"sibling")),
            &key,
            &sender_data_secret(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            open(&mut shared, &sibling).unwrap().content.body,
            application(b"sibling")
        );
    }
}
