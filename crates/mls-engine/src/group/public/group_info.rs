//! Checking that a GroupInfo describes the current epoch of the public view (§12.4.3): a
//! delivery service keeps the GroupInfo of each epoch for external joiners and must not keep
//! one that lies about the group.

use super::error::GroupInfoField;
use super::{PublicGroup, PublicGroupError};
use crate::codec::{ExtensionPayload as _, GroupInfo, RatchetTreeExtension};
use crate::group::{GroupError, Services};
use crate::tree::{LeafIndex, RatchetTree};

impl PublicGroup {
    /// Checks that `group_info` describes the current epoch: its GroupContext is the view's
    /// (group ID, epoch, tree hash, confirmed transcript hash, extensions, version, cipher
    /// suite), its confirmation tag is the one of the Commit that started the epoch, a
    /// `ratchet_tree` extension (if any) carries a tree with the view's tree hash, and its
    /// signature verifies under the signer's leaf, which must be a member. The confirmation
    /// tag's value itself needs the epoch's secrets: it is compared, not verified.
    pub fn check_group_info(
        &self,
        services: &Services<'_>,
        group_info: &GroupInfo,
    ) -> Result<(), PublicGroupError> {
        let theirs = &group_info.group_context;
        let ours = &self.context;
        if theirs.group_id != ours.group_id {
            return Err(PublicGroupError::GroupInfoMismatch(GroupInfoField::GroupId));
        }
        if theirs.epoch != ours.epoch {
            return Err(PublicGroupError::GroupInfoWrongEpoch {
                current: ours.epoch,
                got: theirs.epoch,
            });
        }
        let fields = [
            (theirs.version == ours.version, GroupInfoField::Version),
            (
                theirs.cipher_suite == ours.cipher_suite,
                GroupInfoField::CipherSuite,
            ),
            (theirs.tree_hash == ours.tree_hash, GroupInfoField::TreeHash),
            (
                theirs.confirmed_transcript_hash == ours.confirmed_transcript_hash,
                GroupInfoField::ConfirmedTranscriptHash,
            ),
            (
                theirs.extensions == ours.extensions,
                GroupInfoField::Extensions,
            ),
            (
                group_info.confirmation_tag.as_slice() == self.confirmation_tag.as_slice(),
                GroupInfoField::ConfirmationTag,
            ),
        ];
        if let Some((_, field)) = fields.iter().find(|(equal, _)| !equal) {
            return Err(PublicGroupError::GroupInfoMismatch(*field));
        }
        let cs = services
            .crypto
            .suite(ours.cipher_suite)
            .map_err(GroupError::from)?;
        if let Some(ext) =
            RatchetTreeExtension::find_in(&group_info.extensions).map_err(GroupError::from)?
        {
            let tree = RatchetTree::from_nodes(ext.ratchet_tree)?;
            if tree.tree_hash(cs)? != ours.tree_hash.as_slice() {
                return Err(PublicGroupError::GroupInfoMismatch(
                    GroupInfoField::RatchetTree,
                ));
            }
        }
        let signer = self
            .tree
            .leaf(LeafIndex(group_info.signer))
            .ok_or(PublicGroupError::UnknownGroupInfoSigner(group_info.signer))?;
        group_info
            .verify_signature(cs, signer.signature_key.as_slice())
            .map_err(|_| PublicGroupError::BadGroupInfoSignature)
    }
}
