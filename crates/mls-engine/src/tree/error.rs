//! Errors of the public ratchet tree: structure, encoding and hashing.

use super::{LeafIndex, NodeIndex};
use crate::codec::CodecError;
use crate::crypto::CryptoError;

/// Why an operation on a [`super::RatchetTree`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A `ratchet_tree` vector was empty.
    #[error("the ratchet tree is empty")]
    EmptyTree,
    /// A `ratchet_tree` vector ended with a blank node (§12.4.3.3).
    #[error("the ratchet tree ends with a blank node")]
    TrailingBlank,
    /// A tree would exceed the largest size this implementation supports (2^31 leaves).
    #[error("the ratchet tree is too large")]
    TooLarge,
    /// A leaf node sat at a parent position or a parent node at a leaf position.
    #[error("{0} holds the wrong kind of node")]
    WrongNodeType(NodeIndex),
    /// A leaf index outside the tree.
    #[error("{0} is outside the tree")]
    LeafOutOfRange(LeafIndex),
    /// A node index outside the tree.
    #[error("{0} is outside the tree")]
    NodeOutOfRange(NodeIndex),
    /// An operation needed a non-blank leaf and found a blank one.
    #[error("{0} is blank")]
    BlankLeaf(LeafIndex),
    /// An operation needed a non-blank parent node and found a blank one (or a leaf).
    #[error("{0} is blank or not a parent node")]
    BlankParent(NodeIndex),
    /// A tree-hash or parent-hash input could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<tls_codec::Error> for TreeError {
    fn from(e: tls_codec::Error) -> Self {
        TreeError::Codec(e.into())
    }
}
