//! Applying a proposal list (RFC 9420 §12.3) and the path-required rule (§12.4).
//!
//! [`apply_proposals`] follows the order of §12.3 exactly: the GroupContextExtensions
//! proposal, then every Update, then every Remove, then the Adds in list order (each at the
//! leftmost blank leaf, so Adds fill the leaves Removes of the same Commit left blank), then
//! the PreSharedKey, ExternalInit and ReInit proposals are recorded for the key schedule.
//!
//! The list should have passed [`super::validate_proposal_list`] first. `apply_proposals`
//! still checks what it relies on (senders of Updates are members, removed leaves are
//! non-blank, no leaf is touched twice, at most one GroupContextExtensions) *before* it changes
//! anything, so an error leaves the tree and extensions as they were (the one exception is a
//! tree that would grow beyond 2^31 leaves).

use crate::codec::{
    Extension, ExternalInit, KeyPackage, KeyPackageRef, LeafNode, LeafSignatureError,
    PreSharedKeyID, Proposal, ReInit, Sender,
};
use crate::crypto::SuiteProvider;
use crate::messages::key_package_ref;
use crate::tree::{LeafIndex, RatchetTree, TreeError};

use super::store::CommittedProposal;

/// A member added by the Commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedMember {
    /// The leaf the new member was placed at.
    pub leaf_index: LeafIndex,
    /// The KeyPackage of the Add.
    pub key_package: KeyPackage,
    /// Its `KeyPackageRef` (names the member's `EncryptedGroupSecrets` in the Welcome).
    pub key_package_ref: KeyPackageRef,
}

/// A member removed by the Commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedMember {
    /// The leaf the member held.
    pub leaf_index: LeafIndex,
    /// The member's leaf before removal.
    pub leaf_node: LeafNode,
}

/// What applying a proposal list changed and recorded (§12.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppliedProposals {
    /// Whether a GroupContextExtensions proposal replaced the extensions.
    pub extensions_changed: bool,
    /// Leaves replaced by Update proposals, in list order.
    pub updated: Vec<LeafIndex>,
    /// Members removed, in list order.
    pub removed: Vec<RemovedMember>,
    /// Members added, in list order.
    pub added: Vec<AddedMember>,
    /// The PSKs to inject, in list order (§8.4).
    pub psks: Vec<PreSharedKeyID>,
    /// The ExternalInit proposal, if any (its `kem_output` yields the `init_secret`, §8.3).
    pub external_init: Option<ExternalInit>,
    /// The ReInit proposal, if any (§11.2).
    pub reinit: Option<ReInit>,
}

/// Why a proposal list could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// §12.1.2: an Update's sender is not a member with a non-blank leaf.
    #[error("Update proposal {index} is not from a member of the group")]
    UpdateSenderNotMember {
        /// The proposal's position in the list.
        index: usize,
    },
    /// §12.1.3: a Remove names a blank leaf or a leaf outside the tree.
    #[error("Remove proposal {index} names a blank or absent leaf")]
    RemoveOfBlankLeaf {
        /// The proposal's position in the list.
        index: usize,
    },
    /// §12.2: two Update and/or Remove proposals apply to the same leaf.
    #[error("proposal {index} touches leaf {leaf} a second time")]
    LeafTouchedTwice {
        /// The proposal's position in the list.
        index: usize,
        /// The leaf.
        leaf: u32,
    },
    /// §12.2: more than one GroupContextExtensions proposal.
    #[error("more than one GroupContextExtensions proposal")]
    MultipleGroupContextExtensions,
    /// The `KeyPackageRef` of an added KeyPackage could not be computed.
    #[error("KeyPackageRef of Add proposal {index}: {error}")]
    KeyPackageRef {
        /// The proposal's position in the list.
        index: usize,
        /// The failure.
        error: LeafSignatureError,
    },
    /// The tree refused a change (for example it would grow too large).
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// Applies `proposals` (resolved, in Commit order) to `tree` and the GroupContext
/// `extensions` in the order of §12.3. See the module documentation for the guarantees on
/// error.
pub fn apply_proposals<P: CommittedProposal>(
    suite: &dyn SuiteProvider,
    tree: &mut RatchetTree,
    extensions: &mut Vec<Extension>,
    proposals: &[P],
) -> Result<AppliedProposals, ApplyError> {
    // Checks and preparation, without changing anything.
    let mut new_extensions: Option<&Vec<Extension>> = None;
    let mut updates: Vec<(usize, LeafIndex, &LeafNode)> = Vec::new();
    let mut removes: Vec<(usize, LeafIndex)> = Vec::new();
    let mut adds: Vec<(&KeyPackage, KeyPackageRef)> = Vec::new();
    let mut touched: Vec<u32> = Vec::new();
    let mut applied = AppliedProposals::default();

    for (index, entry) in proposals.iter().enumerate() {
        match entry.proposal() {
            Proposal::GroupContextExtensions(gce) => {
                if new_extensions.replace(&gce.extensions).is_some() {
                    return Err(ApplyError::MultipleGroupContextExtensions);
                }
            }
            Proposal::Update(update) => {
                let leaf = match entry.sender() {
                    Sender::Member(leaf) if tree.leaf(LeafIndex(leaf)).is_some() => leaf,
                    _ => return Err(ApplyError::UpdateSenderNotMember { index }),
                };
                if touched.contains(&leaf) {
                    return Err(ApplyError::LeafTouchedTwice { index, leaf });
                }
                touched.push(leaf);
                updates.push((index, LeafIndex(leaf), &update.leaf_node));
            }
            Proposal::Remove(remove) => {
                let leaf = remove.removed;
                if tree.leaf(LeafIndex(leaf)).is_none() {
                    return Err(ApplyError::RemoveOfBlankLeaf { index });
                }
                if touched.contains(&leaf) {
                    return Err(ApplyError::LeafTouchedTwice { index, leaf });
                }
                touched.push(leaf);
                removes.push((index, LeafIndex(leaf)));
            }
            Proposal::Add(add) => {
                let reference = key_package_ref(suite, &add.key_package)
                    .map_err(|error| ApplyError::KeyPackageRef { index, error })?;
                adds.push((&add.key_package, reference));
            }
            Proposal::PreSharedKey(psk) => applied.psks.push(psk.psk.clone()),
            Proposal::ExternalInit(init) => applied.external_init = Some(init.clone()),
            Proposal::ReInit(reinit) => applied.reinit = Some(reinit.clone()),
        }
    }

    // 1. GroupContextExtensions: wholesale replacement (§12.1.7).
    if let Some(new) = new_extensions {
        extensions.clone_from(new);
        applied.extensions_changed = true;
    }
    // 2. Updates: replace the sender's leaf, blank its direct path (§12.1.2).
    for (_, leaf, leaf_node) in updates {
        tree.update_leaf(leaf, leaf_node.clone())?;
        applied.updated.push(leaf);
    }
    // 3. Removes: blank the leaf and its direct path, truncate (§12.1.3).
    for (_, leaf) in removes {
        let leaf_node = tree.require_leaf(leaf)?.clone();
        tree.remove_leaf(leaf)?;
        applied.removed.push(RemovedMember {
            leaf_index: leaf,
            leaf_node,
        });
    }
    // 4. Adds, in list order, each at the leftmost blank leaf; the tree marks the new leaf
    //    unmerged along its direct path (§12.1.1).
    for (key_package, key_package_ref) in adds {
        let leaf_index = tree.add_leaf(key_package.leaf_node.clone())?;
        applied.added.push(AddedMember {
            leaf_index,
            key_package: key_package.clone(),
            key_package_ref,
        });
    }
    // 5.-7. PSKs, ExternalInit and ReInit were recorded above.
    Ok(applied)
}

/// Whether a Commit covering `proposals` must carry a `path` (§12.4): yes if it covers no
/// proposal at all, or any proposal of a "path required" type; of the RFC's types only `add`,
/// `psk` and `reinit` do not require a path.
pub fn path_required<P: CommittedProposal>(proposals: &[P]) -> bool {
    proposals.is_empty()
        || proposals.iter().any(|p| {
            !matches!(
                p.proposal(),
                Proposal::Add(_) | Proposal::PreSharedKey(_) | Proposal::ReInit(_)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{CipherSuite, ExternalInit, ProtocolVersion};

    #[test]
    fn path_required_rule() {
        let psk = Proposal::pre_shared_key(PreSharedKeyID::external(vec![1], vec![0; 32]));
        let reinit = Proposal::ReInit(ReInit {
            group_id: vec![1].into(),
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(1),
            extensions: vec![],
        });
        let m = |p: &Proposal| (Sender::Member(0), p.clone());
        let none: [(Sender, Proposal); 0] = [];
        assert!(path_required(&none));
        assert!(!path_required(&[m(&psk)]));
        assert!(!path_required(&[m(&psk), m(&reinit)]));
        assert!(path_required(&[m(&psk), m(&Proposal::remove(1))]));
        let init = Proposal::ExternalInit(ExternalInit {
            kem_output: vec![1].into(),
        });
        assert!(path_required(&[m(&init)]));
        let gce = Proposal::GroupContextExtensions(crate::codec::GroupContextExtensions {
            extensions: vec![],
        });
        assert!(path_required(&[m(&gce)]));
    }
}
