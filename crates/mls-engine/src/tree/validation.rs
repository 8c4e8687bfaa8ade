//! Validation of a received ratchet tree (RFC 9420 §7.9.2, §12.4.3.1).
//!
//! [`RatchetTree::validate`] checks what can be checked on the tree alone: the tree hash, that
//! every non-blank parent node is parent-hash valid, the `unmerged_leaves` rules, the signature
//! of every leaf, and that no HPKE or signature public key appears twice. The remaining checks
//! of a LeafNode (§7.3: credential, capabilities, lifetime, extensions) need the group's
//! context and the application's policy; the group layer runs them on each leaf.

use super::math::{LeafIndex, NodeIndex};
use super::{RatchetTree, TreeError};
use crate::codec::{LeafSignatureError, Node};
use crate::crypto::SuiteProvider;

/// Why a ratchet tree is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeValidationError {
    /// The root tree hash differs from the one the group agreed on.
    #[error("the tree hash does not match")]
    TreeHashMismatch,
    /// A non-blank parent node is not covered by exactly one parent-hash link (§7.9.2).
    #[error("{0} is not parent-hash valid")]
    ParentHashInvalid(NodeIndex),
    /// A parent node's `unmerged_leaves` are not strictly increasing (§7.1).
    #[error("the unmerged leaves of {0} are not sorted")]
    UnmergedLeavesUnsorted(NodeIndex),
    /// An unmerged leaf is blank or not below the parent node listing it (§12.4.3.1).
    #[error("{parent} lists {leaf} as unmerged, which is blank or not below it")]
    UnmergedLeafNotDescendant {
        /// The parent node.
        parent: NodeIndex,
        /// The listed leaf.
        leaf: LeafIndex,
    },
    /// A non-blank node between an unmerged leaf and the parent listing it does not list the
    /// leaf too (§12.4.3.1).
    #[error("{node} does not list {leaf} as unmerged although an ancestor does")]
    UnmergedLeafMissing {
        /// The intermediate node.
        node: NodeIndex,
        /// The leaf.
        leaf: LeafIndex,
    },
    /// A leaf's signature does not verify (§7.3).
    #[error("the signature of {0} is invalid: {1}")]
    LeafSignature(LeafIndex, LeafSignatureError),
    /// An HPKE or signature public key appears in more than one node (§7.3, §12.4.3.1).
    #[error("a public key appears in more than one node")]
    DuplicateKey,
    /// Hashing failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
}

impl RatchetTree {
    /// Runs every check of this module (see the module documentation): `tree_hash` is the
    /// GroupContext's, `group_id` signs `update` and `commit` leaves.
    pub fn validate(
        &self,
        suite: &dyn SuiteProvider,
        group_id: &[u8],
        tree_hash: &[u8],
    ) -> Result<(), TreeValidationError> {
        self.validate_structure(suite, tree_hash)?;
        self.verify_leaf_signatures(suite, group_id)
    }

    /// [`RatchetTree::validate`] without the leaf signatures: for a caller that checks every
    /// leaf in full (§7.3, its signature included) anyway, as joining does.
    pub fn validate_structure(
        &self,
        suite: &dyn SuiteProvider,
        tree_hash: &[u8],
    ) -> Result<(), TreeValidationError> {
        if self.tree_hash(suite)? != tree_hash {
            return Err(TreeValidationError::TreeHashMismatch);
        }
        self.verify_unmerged_leaves()?;
        self.verify_parent_hashes(suite)?;
        if !self.keys_are_unique() {
            return Err(TreeValidationError::DuplicateKey);
        }
        Ok(())
    }

    /// Checks every leaf's signature, with `group_id` and the leaf index as context.
    pub fn verify_leaf_signatures(
        &self,
        suite: &dyn SuiteProvider,
        group_id: &[u8],
    ) -> Result<(), TreeValidationError> {
        for (index, leaf) in self.leaves() {
            leaf.verify_signature(suite, group_id, index.0)
                .map_err(|e| TreeValidationError::LeafSignature(index, e))?;
        }
        Ok(())
    }

    /// Checks the `unmerged_leaves` rules of §7.1 and §12.4.3.1 at every parent node.
    pub fn verify_unmerged_leaves(&self) -> Result<(), TreeValidationError> {
        let n = self.n_leaves();
        for (x, parent) in self.parents() {
            if parent.unmerged_leaves.windows(2).any(|w| w[0] >= w[1]) {
                return Err(TreeValidationError::UnmergedLeavesUnsorted(x));
            }
            for &l in &parent.unmerged_leaves {
                let leaf = LeafIndex(l);
                if self.leaf(leaf).is_none() || !leaf.node().is_in_subtree_of(x) {
                    return Err(TreeValidationError::UnmergedLeafNotDescendant { parent: x, leaf });
                }
                let mut node = leaf.node().parent(n);
                while let Some(y) = node.filter(|&y| y != x) {
                    let listed = self
                        .parent_node(y)
                        .is_none_or(|p| p.unmerged_leaves.binary_search(&l).is_ok());
                    if !listed {
                        return Err(TreeValidationError::UnmergedLeafMissing { node: y, leaf });
                    }
                    node = y.parent(n);
                }
            }
        }
        Ok(())
    }

    /// Checks that every non-blank parent node is parent-hash valid (§7.9.2), top down: for
    /// each such node P exactly one node D below it must link to it.
    pub fn verify_parent_hashes(
        &self,
        suite: &dyn SuiteProvider,
    ) -> Result<(), TreeValidationError> {
        for (p, _) in self.parents() {
            let Some((l, r)) = p.children() else {
                continue;
            };
            let links = self.count_links(suite, p, l, r)? + self.count_links(suite, p, r, l)?;
            if links != 1 {
                return Err(TreeValidationError::ParentHashInvalid(p));
            }
        }
        Ok(())
    }

    /// The number of nodes D in the resolution of `c` whose parent hash is valid with respect to
    /// the parent `p` with copath child `s` (§7.9.2): D's `parent_hash` is the parent hash of
    /// `p` with copath child `s`, and `p`'s unmerged leaves under `c` are exactly the resolution
    /// of `c` without D.
    fn count_links(
        &self,
        suite: &dyn SuiteProvider,
        p: NodeIndex,
        c: NodeIndex,
        s: NodeIndex,
    ) -> Result<usize, TreeError> {
        let resolution = self.resolution(c);
        if resolution.is_empty() {
            return Ok(0);
        }
        let parent = self.parent_node(p).ok_or(TreeError::BlankParent(p))?;
        let mut unmerged_under_c: Vec<NodeIndex> = parent
            .unmerged_leaves
            .iter()
            .map(|&l| LeafIndex(l).node())
            .filter(|y| y.is_in_subtree_of(c))
            .collect();
        unmerged_under_c.sort_unstable();
        let expected = self.parent_hash(suite, p, s)?;
        let mut count = 0;
        for &d in &resolution {
            if self.stored_parent_hash(d) != Some(expected.as_slice()) {
                continue;
            }
            let mut rest: Vec<NodeIndex> = resolution.iter().copied().filter(|&y| y != d).collect();
            rest.sort_unstable();
            if rest == unmerged_under_c {
                count += 1;
            }
        }
        Ok(count)
    }

    /// The `parent_hash` a node carries: a parent node's field, a `commit` leaf's field.
    fn stored_parent_hash(&self, x: NodeIndex) -> Option<&[u8]> {
        match self.node(x)? {
            Node::Parent(p) => Some(p.parent_hash.as_slice()),
            Node::Leaf(leaf) => leaf.parent_hash(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::ratchet_tree::tests::{leaf, parent};

    #[test]
    fn unmerged_leaf_rules() {
        let mut tree = RatchetTree::new(leaf(0));
        for i in 1..4 {
            tree.add_leaf(leaf(i)).unwrap();
        }
        tree.set_parent(NodeIndex(3), parent(50, vec![2, 3]))
            .unwrap();
        tree.set_parent(NodeIndex(5), parent(51, vec![2, 3]))
            .unwrap();
        assert_eq!(tree.verify_unmerged_leaves(), Ok(()));
        tree.set_parent(NodeIndex(5), parent(51, vec![2])).unwrap();
        assert_eq!(
            tree.verify_unmerged_leaves(),
            Err(TreeValidationError::UnmergedLeafMissing {
                node: NodeIndex(5),
                leaf: LeafIndex(3)
            })
        );
        tree.set_parent(NodeIndex(5), parent(51, vec![2, 3]))
            .unwrap();
        tree.set_parent(NodeIndex(1), parent(52, vec![1, 0]))
            .unwrap();
        assert_eq!(
            tree.verify_unmerged_leaves(),
            Err(TreeValidationError::UnmergedLeavesUnsorted(NodeIndex(1)))
        );
        tree.set_parent(NodeIndex(1), parent(52, vec![2])).unwrap();
        assert!(matches!(
            tree.verify_unmerged_leaves(),
            Err(TreeValidationError::UnmergedLeafNotDescendant { .. })
        ));
    }
}
