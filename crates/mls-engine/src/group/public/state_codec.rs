//! The public view as bytes (no secrets in it). Two parts, so that a server can store them
//! apart: the hot part (policy, GroupContext, interim transcript hash, confirmation tag,
//! pending proposals, a committed ReInit), small and rewritten with every message, and the ratchet tree
//! (`optional<Node> ratchet_tree<V>`, §12.4.3.3), rewritten once per epoch.
//! [`PublicGroup::to_bytes`] is both in one versioned envelope.
//!
//! Restoring trusts the bytes to be the view's own (written by this module): the tree is
//! decoded, not validated again; use [`PublicGroup::from_group_info`] for input from others.

use tls_codec::{TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

use super::{PublicGroup, PublicGroupError, PublicGroupPolicy};
use crate::codec::{decode_exact, encode, GroupContext, ReInit};
use crate::group::proposals::StoredProposal;
use crate::tree::RatchetTree;

/// The format version of [`PublicGroup::to_bytes`] and [`PublicGroup::hot_state_to_bytes`].
pub const PUBLIC_STATE_FORMAT_VERSION: u16 = 1;

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct HotStateV1 {
    version: u16,
    check_lifetimes: u8,
    max_lifetime: Option<u64>,
    context: GroupContext,
    interim_transcript_hash: VLBytes,
    confirmation_tag: VLBytes,
    proposals: Vec<StoredProposal>,
    reinit: Option<ReInit>,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct PublicStateV1 {
    version: u16,
    hot: VLBytes,
    tree: VLBytes,
}

impl PublicGroup {
    /// The whole view: [`Self::hot_state_to_bytes`] and [`Self::export_ratchet_tree`] in one
    /// versioned envelope.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PublicGroupError> {
        Ok(encode(&PublicStateV1 {
            version: PUBLIC_STATE_FORMAT_VERSION,
            hot: self.hot_state_to_bytes()?.into(),
            tree: self.export_ratchet_tree()?.into(),
        })?)
    }

    /// Restores a view written by [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicGroup, PublicGroupError> {
        let state: PublicStateV1 = decode_exact(bytes)?;
        if state.version != PUBLIC_STATE_FORMAT_VERSION {
            return Err(PublicGroupError::UnknownStateVersion(state.version));
        }
        Self::from_parts(state.hot.as_slice(), state.tree.as_slice())
    }

    /// Everything but the ratchet tree: policy, GroupContext, interim transcript hash,
    /// confirmation tag, pending proposals (versioned).
    pub fn hot_state_to_bytes(&self) -> Result<Vec<u8>, PublicGroupError> {
        Ok(encode(&HotStateV1 {
            version: PUBLIC_STATE_FORMAT_VERSION,
            check_lifetimes: u8::from(self.policy.check_lifetimes),
            max_lifetime: self.policy.max_lifetime,
            context: self.context.clone(),
            interim_transcript_hash: self.interim_transcript_hash.clone().into(),
            confirmation_tag: self.confirmation_tag.clone().into(),
            proposals: self.proposals.clone(),
            reinit: self.reinit.clone(),
        })?)
    }

    /// The ratchet tree of the current epoch, encoded as in the `ratchet_tree` extension
    /// (§12.4.3.3): what an external joiner needs beside the GroupInfo.
    pub fn export_ratchet_tree(&self) -> Result<Vec<u8>, PublicGroupError> {
        Ok(self.tree.encode()?)
    }

    /// Restores a view from [`Self::hot_state_to_bytes`] and [`Self::export_ratchet_tree`].
    /// The tree must be the one stored for the hot part's epoch (the caller keys it by group
    /// and epoch); it is not hashed again here.
    pub fn from_parts(hot: &[u8], ratchet_tree: &[u8]) -> Result<PublicGroup, PublicGroupError> {
        let hot: HotStateV1 = decode_exact(hot)?;
        if hot.version != PUBLIC_STATE_FORMAT_VERSION {
            return Err(PublicGroupError::UnknownStateVersion(hot.version));
        }
        let check_lifetimes = match hot.check_lifetimes {
            0 => false,
            1 => true,
            _ => return Err(PublicGroupError::MalformedState("boolean out of range")),
        };
        let tree = RatchetTree::decode(ratchet_tree)?;
        Ok(PublicGroup {
            policy: PublicGroupPolicy {
                check_lifetimes,
                max_lifetime: hot.max_lifetime,
            },
            context: hot.context,
            tree,
            interim_transcript_hash: hot.interim_transcript_hash.into(),
            confirmation_tag: hot.confirmation_tag.into(),
            proposals: hot.proposals,
            reinit: hot.reinit,
        })
    }
}
