//! The GroupContext (RFC 9420 §8.1).

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

use super::{Extension, ProtocolVersion};
use crate::crypto::CipherSuite;

/// `GroupContext` (§8.1): the summary of a group's state that every member agrees on.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupContext {
    /// Protocol version (`mls10`).
    pub version: ProtocolVersion,
    /// The group's cipher suite.
    pub cipher_suite: CipherSuite,
    /// The group ID.
    pub group_id: VLBytes,
    /// The epoch number.
    pub epoch: u64,
    /// The root of the tree hash (§7.8).
    pub tree_hash: VLBytes,
    /// The confirmed transcript hash (§8.2).
    pub confirmed_transcript_hash: VLBytes,
    /// Group-wide extensions.
    pub extensions: Vec<Extension>,
}
