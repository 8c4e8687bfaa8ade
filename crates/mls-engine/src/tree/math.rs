//! Tree math for array-based complete binary trees (RFC 9420 §4.2, Appendix C).
//!
//! Nodes are numbered left to right by an in-order traversal: leaf `L` sits at node `2L`,
//! parent nodes at odd indices. A tree with `n` leaves (`n` a power of two) has `2n - 1`
//! nodes and its root at node `n - 1`.
//!
//! Every function here is total: node indices that are not in a tree of the given size, and
//! sizes that are out of range, give `None` or an empty path instead of panicking.

use core::fmt;

/// The largest number of leaves a tree may have: node indices must fit in a `u32`.
pub const MAX_LEAVES: u32 = 1 << 31;

/// The index of a leaf among the leaves of the tree (RFC 9420 §4.1.1, "leaf index").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeafIndex(pub u32);

/// The index of a node in the array representation of the tree (RFC 9420 Appendix C).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIndex(pub u32);

impl fmt::Display for LeafIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "leaf {}", self.0)
    }
}

impl fmt::Display for NodeIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.0)
    }
}

impl LeafIndex {
    /// The node holding this leaf, `2 * leaf`. Leaf indices of `2^31` and above have no node;
    /// they map to `u32::MAX`, which is never a node of any tree.
    pub fn node(self) -> NodeIndex {
        NodeIndex(self.0.saturating_mul(2))
    }

    /// The index as a `usize` (for array access).
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl NodeIndex {
    /// The index as a `usize` (for array access).
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }

    /// The level of the node: 0 for leaves, 1 for their parents, and so on (the number of
    /// trailing one bits of the index).
    pub fn level(self) -> u32 {
        self.0.trailing_ones()
    }

    /// Whether this node is a leaf (an even index).
    pub fn is_leaf(self) -> bool {
        self.0 % 2 == 0
    }

    /// The leaf at this node, if it is a leaf.
    pub fn leaf(self) -> Option<LeafIndex> {
        self.is_leaf().then_some(LeafIndex(self.0 / 2))
    }

    /// The left child of a parent node; `None` for a leaf.
    pub fn left(self) -> Option<NodeIndex> {
        let k = self.level();
        (k > 0 && k < 32).then(|| NodeIndex(self.0 ^ (1 << (k - 1))))
    }

    /// The right child of a parent node; `None` for a leaf.
    pub fn right(self) -> Option<NodeIndex> {
        let k = self.level();
        (k > 0 && k < 32).then(|| NodeIndex(self.0 ^ (3 << (k - 1))))
    }

    /// Both children of a parent node, left first; `None` for a leaf.
    pub fn children(self) -> Option<(NodeIndex, NodeIndex)> {
        Some((self.left()?, self.right()?))
    }

    /// The parent of the node in a tree of `n_leaves` leaves; `None` for the root and for
    /// nodes outside the tree.
    pub fn parent(self, n_leaves: u32) -> Option<NodeIndex> {
        if !self.is_in_tree(n_leaves) || self == root(n_leaves) {
            return None;
        }
        Some(self.parent_unchecked())
    }

    /// The parent in an infinitely large tree. Only for nodes below the root of a tree.
    fn parent_unchecked(self) -> NodeIndex {
        let k = self.level();
        let b = (self.0 >> (k + 1)) & 1;
        NodeIndex((self.0 | (1 << k)) ^ (b << (k + 1)))
    }

    /// The other child of the node's parent; `None` for the root and for nodes outside the tree.
    pub fn sibling(self, n_leaves: u32) -> Option<NodeIndex> {
        let p = self.parent(n_leaves)?;
        if self < p {
            p.right()
        } else {
            p.left()
        }
    }

    /// Whether the node exists in a tree of `n_leaves` leaves.
    pub fn is_in_tree(self, n_leaves: u32) -> bool {
        u64::from(self.0) < u64::from(node_width(n_leaves))
    }

    /// Whether `self` is `other` or one of its descendants.
    pub fn is_in_subtree_of(self, other: NodeIndex) -> bool {
        let k = other.level();
        if self.level() > k {
            return false;
        }
        // Nodes of the subtree under `other` share its bits above bit `k`.
        u64::from(self.0) >> (k + 1) == u64::from(other.0) >> (k + 1)
    }

    /// The leftmost and rightmost leaves below this node (the node itself for a leaf).
    pub fn leaf_range(self) -> (LeafIndex, LeafIndex) {
        let k = self.level();
        let half = (1u64 << k) - 1;
        let first = (u64::from(self.0) - half) / 2;
        let last = (u64::from(self.0) + half) / 2;
        (LeafIndex(first as u32), LeafIndex(last as u32))
    }
}

/// The number of nodes of a tree with `n_leaves` leaves: `2 * n_leaves - 1`, or 0 for an empty
/// tree. Saturates at `u32::MAX` for sizes above [`MAX_LEAVES`].
pub fn node_width(n_leaves: u32) -> u32 {
    if n_leaves == 0 {
        0
    } else {
        (n_leaves - 1).saturating_mul(2).saturating_add(1)
    }
}

/// The root of a tree with `n_leaves` leaves (node 0 for an empty or one-leaf tree).
pub fn root(n_leaves: u32) -> NodeIndex {
    let w = node_width(n_leaves);
    if w == 0 {
        return NodeIndex(0);
    }
    NodeIndex((1u32 << w.ilog2()) - 1)
}

/// The direct path of `x`, from its parent up to the root (RFC 9420 §4.1.2). Empty for the
/// root and for nodes outside the tree.
pub fn direct_path(x: NodeIndex, n_leaves: u32) -> Vec<NodeIndex> {
    let mut path = Vec::new();
    let mut node = x;
    while let Some(p) = node.parent(n_leaves) {
        path.push(p);
        node = p;
    }
    path
}

/// The copath of `x`: its sibling, then the siblings of its direct path below the root
/// (RFC 9420 §4.1.2). Empty for the root and for nodes outside the tree.
pub fn copath(x: NodeIndex, n_leaves: u32) -> Vec<NodeIndex> {
    let mut path = Vec::new();
    let mut node = x;
    while let (Some(s), Some(p)) = (node.sibling(n_leaves), node.parent(n_leaves)) {
        path.push(s);
        node = p;
    }
    path
}

/// The direct path of `x` paired with the copath: for each node of the direct path, the child
/// of it that is *not* on the way to `x`. Pairs run from the leaf up to the root.
pub fn direct_path_with_copath(x: NodeIndex, n_leaves: u32) -> Vec<(NodeIndex, NodeIndex)> {
    let mut path = Vec::new();
    let mut node = x;
    while let (Some(s), Some(p)) = (node.sibling(n_leaves), node.parent(n_leaves)) {
        path.push((p, s));
        node = p;
    }
    path
}

/// The lowest node that is in the direct paths of both `x` and `y` or is one of them (RFC 9420
/// Appendix C, `common_ancestor_direct`).
pub fn common_ancestor(x: NodeIndex, y: NodeIndex) -> NodeIndex {
    if x.is_in_subtree_of(y) {
        return y;
    }
    if y.is_in_subtree_of(x) {
        return x;
    }
    let (mut xn, mut yn) = (u64::from(x.0), u64::from(y.0));
    let mut k = 0u32;
    while xn != yn {
        xn >>= 1;
        yn >>= 1;
        k += 1;
    }
    // k >= 1 here since x != y.
    NodeIndex(((xn << k) + (1 << (k - 1)) - 1) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_tree_relations() {
        // 8 leaves, 15 nodes, root 7.
        assert_eq!(node_width(8), 15);
        assert_eq!(root(8), NodeIndex(7));
        assert_eq!(root(1), NodeIndex(0));
        assert_eq!(NodeIndex(3).left(), Some(NodeIndex(1)));
        assert_eq!(NodeIndex(3).right(), Some(NodeIndex(5)));
        assert_eq!(NodeIndex(4).left(), None);
        assert_eq!(NodeIndex(5).parent(8), Some(NodeIndex(3)));
        assert_eq!(NodeIndex(7).parent(8), None);
        assert_eq!(NodeIndex(16).parent(8), None);
        assert_eq!(NodeIndex(11).sibling(8), Some(NodeIndex(3)));
        assert_eq!(
            direct_path(NodeIndex(4), 8),
            vec![NodeIndex(5), NodeIndex(3), NodeIndex(7)]
        );
        assert_eq!(
            copath(NodeIndex(4), 8),
            vec![NodeIndex(6), NodeIndex(1), NodeIndex(11)]
        );
        assert_eq!(common_ancestor(NodeIndex(0), NodeIndex(6)), NodeIndex(3));
        assert_eq!(common_ancestor(NodeIndex(2), NodeIndex(12)), NodeIndex(7));
        assert_eq!(common_ancestor(NodeIndex(5), NodeIndex(4)), NodeIndex(5));
        assert_eq!(NodeIndex(11).leaf_range(), (LeafIndex(4), LeafIndex(7)));
    }

    #[test]
    fn extreme_indices_do_not_panic() {
        let max = NodeIndex(u32::MAX);
        assert_eq!(max.left(), None);
        assert_eq!(max.parent(MAX_LEAVES), None);
        assert_eq!(LeafIndex(u32::MAX).node(), max);
        assert_eq!(node_width(MAX_LEAVES), u32::MAX);
        assert_eq!(root(MAX_LEAVES), NodeIndex((1 << 31) - 1));
        let last_leaf = LeafIndex(MAX_LEAVES - 1).node();
        assert_eq!(direct_path(last_leaf, MAX_LEAVES).len(), 31);
    }

    fn tree_and_node() -> impl Strategy<Value = (u32, NodeIndex)> {
        (0u32..=20).prop_flat_map(|d| {
            let n = 1u32 << d;
            (Just(n), (0..node_width(n)).prop_map(NodeIndex))
        })
    }

    proptest! {
        #[test]
        fn parent_is_inverse_of_children((n, x) in tree_and_node()) {
            if let Some((l, r)) = x.children() {
                prop_assert_eq!(l.parent(n), Some(x));
                prop_assert_eq!(r.parent(n), Some(x));
                prop_assert_eq!(l.sibling(n), Some(r));
                prop_assert!(l < x && x < r);
                prop_assert_eq!(l.level() + 1, x.level());
            }
        }

        #[test]
        fn direct_path_ends_at_root((n, x) in tree_and_node()) {
            let dp = direct_path(x, n);
            let cp = copath(x, n);
            prop_assert_eq!(dp.len(), cp.len());
            prop_assert_eq!(dp.len() as u32, root(n).level() - x.level());
            if x != root(n) {
                prop_assert_eq!(dp.last().copied(), Some(root(n)));
            }
            for (p, s) in dp.iter().zip(cp.iter()) {
                prop_assert!(x.is_in_subtree_of(*p));
                prop_assert!(!x.is_in_subtree_of(*s));
                prop_assert!(s.is_in_subtree_of(*p));
            }
            prop_assert_eq!(
                direct_path_with_copath(x, n),
                dp.into_iter().zip(cp).collect::<Vec<_>>()
            );
        }

        #[test]
        fn common_ancestor_is_lowest_shared((n, x) in tree_and_node(), y_seed in any::<u32>()) {
            let y = NodeIndex(y_seed % node_width(n));
            let a = common_ancestor(x, y);
            prop_assert!(x.is_in_subtree_of(a) && y.is_in_subtree_of(a));
            if let Some((l, r)) = a.children() {
                prop_assert!(!(x.is_in_subtree_of(l) && y.is_in_subtree_of(l)));
                prop_assert!(!(x.is_in_subtree_of(r) && y.is_in_subtree_of(r)));
            }
        }

        #[test]
        fn leaf_range_matches_subtree((n, x) in tree_and_node()) {
            let (first, last) = x.leaf_range();
            prop_assert!(first.node().is_in_subtree_of(x));
            prop_assert!(last.node().is_in_subtree_of(x));
            prop_assert!(last.0 < n);
            prop_assert_eq!(u64::from(last.0 - first.0) + 1, 1u64 << x.level());
        }
    }
}
