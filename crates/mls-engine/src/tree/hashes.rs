//! Tree hashes (RFC 9420 §7.8) and parent hashes (§7.9), with a per-node tree-hash cache.
//!
//! ```text
//! struct { NodeType node_type; select { leaf: LeafNodeHashInput; parent: ParentNodeHashInput } } TreeHashInput;
//! struct { uint32 leaf_index; optional<LeafNode> leaf_node; } LeafNodeHashInput;
//! struct { optional<ParentNode> parent_node; opaque left_hash<V>; opaque right_hash<V>; } ParentNodeHashInput;
//! struct { HPKEPublicKey encryption_key; opaque parent_hash<V>; opaque original_sibling_tree_hash<V>; } ParentHashInput;
//! ```
//!
//! The tree hash of a node depends only on its subtree, not on the size of the tree, so the
//! cache survives extension and truncation; [`RatchetTree`] clears it along the path of every
//! changed node. The cache assumes one cipher suite per tree: always pass the group's suite.

use std::sync::Arc;
use tls_codec::{Serialize as _, VLByteSlice};

use super::math::{LeafIndex, NodeIndex};
use super::{RatchetTree, TreeError};
use crate::codec::{LeafNode, ParentNode};
use crate::crypto::SuiteProvider;

/// `NodeType.leaf`.
const NODE_TYPE_LEAF: u8 = 1;
/// `NodeType.parent`.
const NODE_TYPE_PARENT: u8 = 2;

/// `Hash(TreeHashInput)` of a leaf (§7.8).
pub fn leaf_tree_hash(
    suite: &dyn SuiteProvider,
    leaf_index: LeafIndex,
    leaf: Option<&LeafNode>,
) -> Result<Vec<u8>, TreeError> {
    let mut input = vec![NODE_TYPE_LEAF];
    leaf_index.0.tls_serialize(&mut input)?;
    leaf.tls_serialize(&mut input)?;
    Ok(suite.hash(&input))
}

/// `Hash(TreeHashInput)` of a parent node from its content and its children's tree hashes
/// (§7.8).
pub fn parent_tree_hash(
    suite: &dyn SuiteProvider,
    parent: Option<&ParentNode>,
    left_hash: &[u8],
    right_hash: &[u8],
) -> Result<Vec<u8>, TreeError> {
    let mut input = vec![NODE_TYPE_PARENT];
    parent.tls_serialize(&mut input)?;
    VLByteSlice(left_hash).tls_serialize(&mut input)?;
    VLByteSlice(right_hash).tls_serialize(&mut input)?;
    Ok(suite.hash(&input))
}

/// `Hash(ParentHashInput)` (§7.9).
pub fn parent_hash_of(
    suite: &dyn SuiteProvider,
    encryption_key: &[u8],
    parent_hash: &[u8],
    original_sibling_tree_hash: &[u8],
) -> Result<Vec<u8>, TreeError> {
    let mut input = Vec::new();
    VLByteSlice(encryption_key).tls_serialize(&mut input)?;
    VLByteSlice(parent_hash).tls_serialize(&mut input)?;
    VLByteSlice(original_sibling_tree_hash).tls_serialize(&mut input)?;
    Ok(suite.hash(&input))
}

impl RatchetTree {
    /// The tree hash of the root (the GroupContext's `tree_hash`, §7.8).
    pub fn tree_hash(&self, suite: &dyn SuiteProvider) -> Result<Vec<u8>, TreeError> {
        self.node_tree_hash(suite, self.root()).map(<[u8]>::to_vec)
    }

    /// The tree hash of the node `x`, computed for the uncached part of its subtree only.
    pub fn node_tree_hash(
        &self,
        suite: &dyn SuiteProvider,
        x: NodeIndex,
    ) -> Result<&[u8], TreeError> {
        let cell = self
            .hashes
            .get(x.as_usize())
            .ok_or(TreeError::NodeOutOfRange(x))?;
        if let Some(hash) = cell.get() {
            return Ok(hash.as_ref());
        }
        let hash = match (x.leaf(), x.children()) {
            (Some(leaf), _) => leaf_tree_hash(suite, leaf, self.leaf(leaf))?,
            (None, Some((l, r))) => {
                let left = self.node_tree_hash(suite, l)?;
                let right = self.node_tree_hash(suite, r)?;
                parent_tree_hash(suite, self.parent_node(x), left, right)?
            }
            (None, None) => return Err(TreeError::NodeOutOfRange(x)),
        };
        Ok(cell.get_or_init(|| Arc::from(hash)).as_ref())
    }

    /// The tree hash of `x` in the tree where the leaves `excluded` are blanked and removed from
    /// every `unmerged_leaves` list: the `original_sibling_tree_hash` of §7.9 when `excluded`
    /// is the parent's `unmerged_leaves`. Subtrees holding no excluded leaf use the cache.
    pub fn tree_hash_excluding(
        &self,
        suite: &dyn SuiteProvider,
        x: NodeIndex,
        excluded: &[u32],
    ) -> Result<Vec<u8>, TreeError> {
        if x.as_usize() >= self.hashes.len() {
            return Err(TreeError::NodeOutOfRange(x));
        }
        let (first, last) = x.leaf_range();
        if !excluded.iter().any(|&l| first.0 <= l && l <= last.0) {
            return self.node_tree_hash(suite, x).map(<[u8]>::to_vec);
        }
        match (x.leaf(), x.children()) {
            (Some(leaf), _) => leaf_tree_hash(suite, leaf, None),
            (None, Some((l, r))) => {
                let left = self.tree_hash_excluding(suite, l, excluded)?;
                let right = self.tree_hash_excluding(suite, r, excluded)?;
                let parent = self.parent_node(x).map(|p| ParentNode {
                    unmerged_leaves: p
                        .unmerged_leaves
                        .iter()
                        .copied()
                        .filter(|l| !excluded.contains(l))
                        .collect(),
                    ..p.clone()
                });
                parent_tree_hash(suite, parent.as_ref(), &left, &right)
            }
            (None, None) => Err(TreeError::NodeOutOfRange(x)),
        }
    }

    /// The parent hash of the parent node `p` with copath child `s` (§7.9): the hash of `p`'s
    /// key, `p`'s own `parent_hash` and the original tree hash of `s`.
    pub fn parent_hash(
        &self,
        suite: &dyn SuiteProvider,
        p: NodeIndex,
        s: NodeIndex,
    ) -> Result<Vec<u8>, TreeError> {
        let parent = self.parent_node(p).ok_or(TreeError::BlankParent(p))?;
        let sibling_hash = self.tree_hash_excluding(suite, s, &parent.unmerged_leaves)?;
        parent_hash_of(
            suite,
            parent.encryption_key.as_slice(),
            parent.parent_hash.as_slice(),
            &sibling_hash,
        )
    }

    /// Sets the `parent_hash` fields along `path` (a filtered direct path as `(node, copath
    /// child)` pairs, leaf to root, every node non-blank): the root gets the empty hash, each
    /// lower node the parent hash of the next node up. Returns the parent hash of the first
    /// node, the value for the leaf below (§7.9, §7.9.1).
    pub fn set_parent_hashes(
        &mut self,
        suite: &dyn SuiteProvider,
        path: &[(NodeIndex, NodeIndex)],
    ) -> Result<Vec<u8>, TreeError> {
        let mut above = Vec::new();
        for &(p, s) in path.iter().rev() {
            let mut parent = self
                .parent_node(p)
                .cloned()
                .ok_or(TreeError::BlankParent(p))?;
            parent.parent_hash = above.into();
            self.set_parent(p, parent)?;
            above = self.parent_hash(suite, p, s)?;
        }
        Ok(above)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CipherSuite, CryptoProvider, RustCrypto};
    use crate::tree::ratchet_tree::tests::{leaf, parent};

    fn suite() -> &'static dyn SuiteProvider {
        static PROVIDER: RustCrypto = RustCrypto;
        PROVIDER.suite(CipherSuite(1)).unwrap()
    }

    /// The tree hash of `x` computed from scratch, without the cache.
    fn uncached(tree: &RatchetTree, x: NodeIndex) -> Vec<u8> {
        match x.children() {
            None => leaf_tree_hash(suite(), x.leaf().unwrap(), tree.leaf(x.leaf().unwrap())),
            Some((l, r)) => parent_tree_hash(
                suite(),
                tree.parent_node(x),
                &uncached(tree, l),
                &uncached(tree, r),
            ),
        }
        .unwrap()
    }

    #[test]
    fn cache_follows_every_change() {
        let s = suite();
        let mut tree = RatchetTree::new(leaf(0));
        let check = |tree: &RatchetTree| {
            assert_eq!(tree.tree_hash(s).unwrap(), uncached(tree, tree.root()));
        };
        check(&tree);
        for i in 1..6 {
            tree.add_leaf(leaf(i)).unwrap();
            check(&tree);
        }
        tree.set_parent(NodeIndex(3), parent(70, vec![2])).unwrap();
        check(&tree);
        tree.add_leaf(leaf(9)).unwrap();
        check(&tree);
        tree.update_leaf(LeafIndex(1), leaf(20)).unwrap();
        check(&tree);
        for l in [5, 6, 4] {
            tree.remove_leaf(LeafIndex(l)).unwrap();
        }
        check(&tree);
        assert_eq!(tree.n_leaves(), 4);
    }

    #[test]
    fn a_change_clears_only_its_path() {
        let s = suite();
        let mut tree = RatchetTree::new(leaf(0));
        for i in 1..1024u32 {
            tree.add_leaf(leaf(i as u8)).unwrap();
        }
        tree.tree_hash(s).unwrap();
        let all = tree.node_width() as usize;
        assert_eq!(tree.cached_hash_count(), all);
        tree.update_leaf(LeafIndex(517), leaf(3)).unwrap();
        assert_eq!(tree.cached_hash_count(), all - 11);
        tree.add_leaf(leaf(4)).unwrap(); // extends to 2048 leaves
        assert_eq!(tree.cached_hash_count(), all - 11);
        assert_eq!(tree.tree_hash(s).unwrap(), uncached(&tree, tree.root()));
        tree.remove_leaf(LeafIndex(1024)).unwrap(); // truncates back
        assert_eq!(tree.cached_hash_count(), all);
    }

    #[test]
    fn excluding_nothing_is_the_tree_hash() {
        let s = suite();
        let mut tree = RatchetTree::new(leaf(0));
        for i in 1..4 {
            tree.add_leaf(leaf(i)).unwrap();
        }
        tree.set_parent(NodeIndex(5), parent(71, vec![3])).unwrap();
        let plain = tree.node_tree_hash(s, NodeIndex(5)).unwrap().to_vec();
        assert_eq!(
            tree.tree_hash_excluding(s, NodeIndex(5), &[0]).unwrap(),
            plain
        );
        let without_3 = tree.tree_hash_excluding(s, NodeIndex(5), &[3]).unwrap();
        let mut manual = tree.clone();
        manual.remove_leaf(LeafIndex(3)).unwrap(); // also blanks node 5: set it again
        manual.set_parent(NodeIndex(5), parent(71, vec![])).unwrap();
        assert_eq!(uncached(&manual, NodeIndex(5)), without_3);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8),
        Remove(u32),
        Update(u32, u8),
        SetParent(u32, u8),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => any::<u8>().prop_map(Op::Add),
            1 => any::<u32>().prop_map(Op::Remove),
            1 => (any::<u32>(), any::<u8>()).prop_map(|(l, t)| Op::Update(l, t)),
            2 => (any::<u32>(), any::<u8>()).prop_map(|(x, t)| Op::SetParent(x, t)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn cache_and_encoding_survive_any_operations(ops in proptest::collection::vec(op(), 1..40)) {
            let s = suite();
            let mut tree = RatchetTree::new(leaf(0));
            for op in ops {
                let n = tree.n_leaves();
                // Operations the tree refuses must leave it unchanged.
                let before = tree.clone();
                let result = match op {
                    Op::Add(t) => tree.add_leaf(leaf(t)).map(|_| ()),
                    Op::Remove(l) if tree.leaves().count() > 1 => tree.remove_leaf(LeafIndex(l % n)),
                    Op::Remove(_) => Ok(()),
                    Op::Update(l, t) => tree.update_leaf(LeafIndex(l % n), leaf(t)),
                    Op::SetParent(x, t) => {
                        let x = NodeIndex((x % tree.node_width()) | 1);
                        tree.set_parent(x, parent(t, vec![]))
                    }
                };
                if result.is_err() {
                    proptest::prop_assert_eq!(&tree, &before);
                }
                let hash = tree.tree_hash(s).unwrap();
                proptest::prop_assert_eq!(&hash, &uncached(&tree, tree.root()));
                if tree.n_leaves() > 1 {
                    let last = tree.node(NodeIndex(tree.node_width() - 1)).is_some()
                        || tree.leaves().any(|(l, _)| l.0 >= tree.n_leaves() / 2);
                    proptest::prop_assert!(last);
                }
                let back = RatchetTree::decode(&tree.encode().unwrap()).unwrap();
                proptest::prop_assert_eq!(back.tree_hash(s).unwrap(), hash);
                proptest::prop_assert_eq!(back, tree.clone());
            }
        }
    }
}
