//! The transcript hashes (RFC 9420 §8.2).
//!
//! ```text
//! confirmed_transcript_hash_[epoch] =
//!     Hash(interim_transcript_hash_[epoch - 1] || ConfirmedTranscriptHashInput_[epoch])
//! interim_transcript_hash_[epoch] =
//!     Hash(confirmed_transcript_hash_[epoch] || InterimTranscriptHashInput_[epoch])
//! ```
//!
//! `ConfirmedTranscriptHashInput` is `wire_format || FramedContent || opaque signature<V>` of
//! the Commit's `AuthenticatedContent`; the hash functions take it already encoded, and
//! [`confirmed_transcript_hash_input`] encodes it from an [`AuthenticatedContent`].
//! `InterimTranscriptHashInput` is `MAC confirmation_tag` (`opaque <V>`), encoded here.
//!
//! The order in which a committer uses them: (1) [`confirmed_transcript_hash`] over the signed
//! Commit; (2) the key schedule of the new epoch with that hash in its GroupContext;
//! (3) `confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash)`;
//! (4) [`interim_transcript_hash`] with that tag.

use tls_codec::{Serialize as _, VLByteSlice};

use crate::codec::{AuthenticatedContent, ContentType};
use crate::crypto::SuiteProvider;

/// Why a transcript hash could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptError {
    /// The confirmation tag is too long to encode as `opaque <V>`.
    #[error("transcript hash input encoding failed: {0}")]
    Encoding(String),
    /// Only a Commit's AuthenticatedContent enters the transcript.
    #[error("the content is not a commit")]
    NotACommit,
    /// The Commit's AuthenticatedContent has no `confirmation_tag` yet.
    #[error("the commit has no confirmation_tag")]
    MissingConfirmationTag,
}

/// The encoded `ConfirmedTranscriptHashInput { wire_format; content; signature; }` of a
/// Commit's AuthenticatedContent. Its `confirmation_tag` is not read (a committer computes
/// this before it has one).
pub fn confirmed_transcript_hash_input(
    content: &AuthenticatedContent,
) -> Result<Vec<u8>, TranscriptError> {
    if content.content.content_type() != ContentType::Commit {
        return Err(TranscriptError::NotACommit);
    }
    let encoding = |e: tls_codec::Error| TranscriptError::Encoding(format!("{e:?}"));
    let mut out = content
        .wire_format
        .tls_serialize_detached()
        .map_err(encoding)?;
    content.content.tls_serialize(&mut out).map_err(encoding)?;
    content
        .auth
        .signature
        .tls_serialize(&mut out)
        .map_err(encoding)?;
    Ok(out)
}

/// `confirmed_transcript_hash_[epoch] = Hash(interim_transcript_hash_[epoch-1] ||
/// ConfirmedTranscriptHashInput)`, where `confirmed_input` is the encoded
/// `ConfirmedTranscriptHashInput` (`wire_format || FramedContent || signature<V>`).
pub fn confirmed_transcript_hash(
    cs: &dyn SuiteProvider,
    interim_transcript_hash_before: &[u8],
    confirmed_input: &[u8],
) -> Vec<u8> {
    let mut input =
        Vec::with_capacity(interim_transcript_hash_before.len() + confirmed_input.len());
    input.extend_from_slice(interim_transcript_hash_before);
    input.extend_from_slice(confirmed_input);
    cs.hash(&input)
}

/// The encoded `InterimTranscriptHashInput { MAC confirmation_tag; }`.
pub fn interim_transcript_hash_input(confirmation_tag: &[u8]) -> Result<Vec<u8>, TranscriptError> {
    VLByteSlice(confirmation_tag)
        .tls_serialize_detached()
        .map_err(|e| TranscriptError::Encoding(format!("{e:?}")))
}

/// `interim_transcript_hash_[epoch] = Hash(confirmed_transcript_hash_[epoch] ||
/// InterimTranscriptHashInput)` for the Commit's (or GroupInfo's) `confirmation_tag`.
pub fn interim_transcript_hash(
    cs: &dyn SuiteProvider,
    confirmed_transcript_hash: &[u8],
    confirmation_tag: &[u8],
) -> Result<Vec<u8>, TranscriptError> {
    let mut input = confirmed_transcript_hash.to_vec();
    input.extend_from_slice(&interim_transcript_hash_input(confirmation_tag)?);
    Ok(cs.hash(&input))
}

/// The pair of transcript hashes a member keeps for its current epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TranscriptHashes {
    /// `confirmed_transcript_hash` (also carried in the GroupContext).
    pub confirmed_transcript_hash: Vec<u8>,
    /// `interim_transcript_hash`, the input of the next epoch's confirmed hash.
    pub interim_transcript_hash: Vec<u8>,
}

impl TranscriptHashes {
    /// The hashes of epoch 0: both the zero-length string.
    pub fn initial() -> Self {
        Self::default()
    }

    /// The hashes of a joiner, from the GroupInfo's `confirmed_transcript_hash` (in its
    /// GroupContext) and `confirmation_tag`.
    pub fn from_confirmed(
        cs: &dyn SuiteProvider,
        confirmed_transcript_hash: Vec<u8>,
        confirmation_tag: &[u8],
    ) -> Result<Self, TranscriptError> {
        let interim_transcript_hash =
            interim_transcript_hash(cs, &confirmed_transcript_hash, confirmation_tag)?;
        Ok(Self {
            confirmed_transcript_hash,
            interim_transcript_hash,
        })
    }

    /// The confirmed transcript hash of the epoch a Commit creates, from this epoch's
    /// interim hash and the Commit's encoded `ConfirmedTranscriptHashInput`.
    pub fn next_confirmed(&self, cs: &dyn SuiteProvider, confirmed_input: &[u8]) -> Vec<u8> {
        confirmed_transcript_hash(cs, &self.interim_transcript_hash, confirmed_input)
    }

    /// Both hashes of the epoch a Commit creates, from its encoded
    /// `ConfirmedTranscriptHashInput` and its `confirmation_tag`.
    pub fn next(
        &self,
        cs: &dyn SuiteProvider,
        confirmed_input: &[u8],
        confirmation_tag: &[u8],
    ) -> Result<Self, TranscriptError> {
        Self::from_confirmed(
            cs,
            self.next_confirmed(cs, confirmed_input),
            confirmation_tag,
        )
    }

    /// Both hashes of the epoch the Commit `commit` creates (it must carry its
    /// `confirmation_tag`).
    pub fn next_for_commit(
        &self,
        cs: &dyn SuiteProvider,
        commit: &AuthenticatedContent,
    ) -> Result<Self, TranscriptError> {
        let tag = commit
            .auth
            .confirmation_tag
            .as_ref()
            .ok_or(TranscriptError::MissingConfirmationTag)?;
        let input = confirmed_transcript_hash_input(commit)?;
        self.next(cs, &input, tag.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{
        Commit, FramedContent, FramedContentAuthData, FramedContentBody, Sender, WireFormat,
    };
    use crate::crypto::{CipherSuite, CryptoProvider as _, RustCrypto};

    fn suite() -> &'static dyn SuiteProvider {
        static P: RustCrypto = RustCrypto;
        P.suite(CipherSuite(1)).unwrap()
    }

    #[test]
    fn chain_matches_the_formulas() {
        let cs = suite();
        let start = TranscriptHashes::initial();
        assert!(start.confirmed_transcript_hash.is_empty());
        assert!(start.interim_transcript_hash.is_empty());
        let input = b"wire_format||content||signature";
        let tag = [7u8; 32];
        let next = start.next(cs, input, &tag).unwrap();
        assert_eq!(next.confirmed_transcript_hash, cs.hash(input));
        let mut interim_input = next.confirmed_transcript_hash.clone();
        interim_input.push(32);
        interim_input.extend_from_slice(&tag);
        assert_eq!(next.interim_transcript_hash, cs.hash(&interim_input));

        // A joiner who learns the confirmed hash and tag from GroupInfo agrees.
        let joiner =
            TranscriptHashes::from_confirmed(cs, next.confirmed_transcript_hash.clone(), &tag)
                .unwrap();
        assert_eq!(joiner, next);

        // The next epoch chains from the interim hash.
        let third = next.next(cs, b"x", &tag).unwrap();
        let mut chained = next.interim_transcript_hash.clone();
        chained.push(b'x');
        assert_eq!(third.confirmed_transcript_hash, cs.hash(&chained));
    }

    fn authenticated(body: FramedContentBody, tag: Option<Vec<u8>>) -> AuthenticatedContent {
        AuthenticatedContent {
            wire_format: WireFormat::MLS_PUBLIC_MESSAGE,
            content: FramedContent {
                group_id: vec![1, 2].into(),
                epoch: 7,
                sender: Sender::Member(3),
                authenticated_data: vec![].into(),
                body,
            },
            auth: FramedContentAuthData {
                signature: vec![9; 4].into(),
                confirmation_tag: tag.map(Into::into),
            },
        }
    }

    #[test]
    fn input_from_authenticated_content() {
        let cs = suite();
        let commit = authenticated(FramedContentBody::Commit(Commit::default()), None);
        let input = confirmed_transcript_hash_input(&commit).unwrap();
        // The input is the AuthenticatedContent's encoding without the confirmation tag.
        let mut tagged = commit.clone();
        tagged.auth.confirmation_tag = Some(vec![5; 32].into());
        let full = crate::codec::encode(&tagged).unwrap();
        assert_eq!(&full[..input.len()], &input[..]);
        assert_eq!(
            &full[input.len()..],
            &interim_transcript_hash_input(&[5; 32]).unwrap()[..]
        );
        assert_eq!(input.last(), Some(&9));

        let start = TranscriptHashes::initial();
        assert_eq!(
            start.next_for_commit(cs, &tagged).unwrap(),
            start.next(cs, &input, &[5; 32]).unwrap()
        );
        assert_eq!(
            start.next_for_commit(cs, &commit),
            Err(TranscriptError::MissingConfirmationTag)
        );
        let app = authenticated(FramedContentBody::Application(vec![1].into()), None);
        assert_eq!(
            confirmed_transcript_hash_input(&app),
            Err(TranscriptError::NotACommit)
        );
    }

    #[test]
    fn the_tag_is_length_prefixed() {
        assert_eq!(
            interim_transcript_hash_input(&[1, 2]).unwrap(),
            vec![2, 1, 2]
        );
        assert_eq!(interim_transcript_hash_input(&[]).unwrap(), vec![0]);
        let long = vec![0u8; 100];
        assert_eq!(
            &interim_transcript_hash_input(&long).unwrap()[..2],
            &[0x40, 100]
        );
    }
}
