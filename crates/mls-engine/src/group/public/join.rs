//! Starting a public view from a GroupInfo (§12.4.3.1, the checks a joiner makes that need no
//! secret).

use super::{PublicGroup, PublicGroupError, PublicGroupPolicy};
use crate::codec::{GroupInfo, MlsMessage, MlsMessageBody, ProtocolVersion};
use crate::group::create::checked_group_info_tree;
use crate::group::Services;
use crate::schedule::interim_transcript_hash;
use crate::tree::RatchetTree;

impl PublicGroup {
    /// The public view of the epoch `group_info` describes. The ratchet tree comes from the
    /// GroupInfo's `ratchet_tree` extension, else `ratchet_tree`. Checked as a joiner checks
    /// them: the GroupInfo's signature under its signer's leaf; the tree's hash equals the
    /// GroupContext's; parent hashes, unmerged leaves, unique keys; every leaf per §7.3 (as a
    /// leaf of a received tree: signature, credential, capabilities; not its lifetime). The
    /// confirmation tag cannot be checked without the epoch's secrets: it is taken as given
    /// and becomes part of the interim transcript hash. Policy: [`PublicGroupPolicy`]'s
    /// default.
    pub fn from_group_info(
        services: &Services<'_>,
        group_info: &GroupInfo,
        ratchet_tree: Option<RatchetTree>,
    ) -> Result<PublicGroup, PublicGroupError> {
        Self::from_group_info_with_policy(
            services,
            group_info,
            ratchet_tree,
            PublicGroupPolicy::default(),
        )
    }

    /// [`Self::from_group_info`] from an `MLSMessage` carrying the GroupInfo.
    pub fn from_group_info_message(
        services: &Services<'_>,
        message: &MlsMessage,
        ratchet_tree: Option<RatchetTree>,
    ) -> Result<PublicGroup, PublicGroupError> {
        match &message.body {
            MlsMessageBody::GroupInfo(info) if message.version == ProtocolVersion::MLS10 => {
                Self::from_group_info(services, info, ratchet_tree)
            }
            _ => Err(PublicGroupError::UnexpectedWireFormat(
                message.wire_format(),
            )),
        }
    }

    /// [`Self::from_group_info`] with the application's `policy`.
    pub fn from_group_info_with_policy(
        services: &Services<'_>,
        group_info: &GroupInfo,
        ratchet_tree: Option<RatchetTree>,
        policy: PublicGroupPolicy,
    ) -> Result<PublicGroup, PublicGroupError> {
        let context = &group_info.group_context;
        let cs = services
            .crypto
            .suite(context.cipher_suite)
            .map_err(crate::group::GroupError::from)?;
        // A received tree's leaves are not checked against the clock (§7.3 on receipt of a
        // tree: they may have expired since they were added), so no `now` is needed.
        let tree = checked_group_info_tree(
            cs,
            services,
            &policy.group_config(),
            group_info,
            ratchet_tree,
            0,
        )?;
        let interim = interim_transcript_hash(
            cs,
            context.confirmed_transcript_hash.as_slice(),
            group_info.confirmation_tag.as_slice(),
        )
        .map_err(crate::group::GroupError::from)?;
        Ok(PublicGroup {
            policy,
            context: context.clone(),
            tree,
            interim_transcript_hash: interim,
            confirmation_tag: group_info.confirmation_tag.as_slice().to_vec(),
            proposals: Vec::new(),
            reinit: None,
        })
    }
}
