//! The public ratchet tree in its array form (RFC 9420 §4, §7.1-§7.2, §7.7, §12.1, §12.4.3.3).
//!
//! A [`RatchetTree`] holds one `Option<Node>` per node (leaves at even, parents at odd indices),
//! always `2n - 1` of them for `n` a power of two. Beside the nodes it keeps
//!
//! * a tree-hash cache per node (see [`super::hashes`]): a change to a node clears the cached
//!   hashes of that node and its ancestors only, so a commit costs `O(log n)` hash computations;
//! * an index of the HPKE and signature public keys in use, so the uniqueness checks of §7.3
//!   and §12.4.2 cost a lookup, not a scan;
//! * per credential type, how many leaves use it and how many list it in their capabilities,
//!   so the credential checks of §7.3 against "all other members" cost `O(types)`, not a scan
//!   of every leaf ([`RatchetTree::member_credential_types`]).
//!
//! Copy on write (DESIGN §7): nodes, cached hashes and indexed keys are shared (`Arc`), so
//! cloning a tree (every commit builds the next epoch on a copy, so that a rejected commit
//! changes nothing) costs one reference count per node, not a deep copy; a node is copied only
//! when it changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use super::math::{self, LeafIndex, NodeIndex, MAX_LEAVES};
use super::TreeError;
use crate::codec::{
    self, CredentialType, HpkePublicKey, LeafNode, Node, ParentNode, SignaturePublicKey,
};
use crate::messages::{KeyUniqueness, MemberCredentialTypes};

/// The public state of a group's ratchet tree.
#[derive(Clone, Debug, Default)]
pub struct RatchetTree {
    /// `node_width(n_leaves)` entries; `None` is a blank node.
    nodes: Vec<Option<Arc<Node>>>,
    /// The cached tree hash of each node. Invariant: a cached parent has cached children.
    pub(super) hashes: Vec<OnceLock<Arc<[u8]>>>,
    /// How many nodes carry each HPKE public key.
    encryption_keys: HashMap<Arc<[u8]>, u32>,
    /// How many leaves carry each signature public key.
    signature_keys: HashMap<Arc<[u8]>, u32>,
    /// Per credential type: (leaves whose credential has it, leaves listing it as supported).
    credential_types: BTreeMap<CredentialType, (u32, u32)>,
    /// The number of non-blank leaves.
    leaf_count: u32,
}

impl PartialEq for RatchetTree {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes
    }
}

impl Eq for RatchetTree {}

impl RatchetTree {
    /// A one-member tree holding `leaf` at leaf 0 (a new group, §11).
    pub fn new(leaf: LeafNode) -> Self {
        let mut tree = Self::default();
        tree.push_blank(1);
        tree.set_node(NodeIndex(0), Some(Node::Leaf(leaf)));
        tree
    }

    /// Builds a tree from the `ratchet_tree` extension form (§12.4.3.3): the last entry must be
    /// non-blank; the vector is extended with blanks to `2^(d+1) - 1` entries. Leaves must sit
    /// at even and parents at odd positions.
    pub fn from_nodes(nodes: Vec<Option<Node>>) -> Result<Self, TreeError> {
        match nodes.last() {
            None => return Err(TreeError::EmptyTree),
            Some(None) => return Err(TreeError::TrailingBlank),
            Some(Some(_)) => {}
        }
        let n_leaves = leaves_for_width(nodes.len())?;
        let mut tree = Self::default();
        tree.push_blank(math::node_width(n_leaves) as usize);
        for (i, node) in nodes.into_iter().enumerate() {
            let x = NodeIndex(i as u32);
            if let Some(node) = &node {
                check_node_kind(x, node)?;
            }
            tree.set_node(x, node);
        }
        Ok(tree)
    }

    /// Decodes an encoded `optional<Node> ratchet_tree<V>` (§12.4.3.3).
    pub fn decode(bytes: &[u8]) -> Result<Self, TreeError> {
        Self::from_nodes(codec::decode_exact::<Vec<Option<Node>>>(bytes)?)
    }

    /// The `ratchet_tree` extension form: the nodes without trailing blanks (§12.4.3.3).
    pub fn to_nodes(&self) -> Vec<Option<Node>> {
        let end = self
            .nodes
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        self.nodes[..end]
            .iter()
            .map(|n| n.as_deref().cloned())
            .collect()
    }

    /// Encodes the tree as `optional<Node> ratchet_tree<V>` (§12.4.3.3).
    pub fn encode(&self) -> Result<Vec<u8>, TreeError> {
        Ok(codec::encode(&self.to_nodes())?)
    }

    /// The number of leaves, blank or not (a power of two).
    pub fn n_leaves(&self) -> u32 {
        (self.nodes.len() as u32).div_ceil(2)
    }

    /// The number of nodes, `2 * n_leaves - 1`.
    pub fn node_width(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// The root node.
    pub fn root(&self) -> NodeIndex {
        math::root(self.n_leaves())
    }

    /// The node at `x`; `None` if blank or outside the tree.
    pub fn node(&self, x: NodeIndex) -> Option<&Node> {
        self.nodes.get(x.as_usize()).and_then(|n| n.as_deref())
    }

    /// Whether `x` is blank (or outside the tree).
    pub fn is_blank(&self, x: NodeIndex) -> bool {
        self.node(x).is_none()
    }

    /// The leaf node at `leaf`; `None` if blank or outside the tree.
    pub fn leaf(&self, leaf: LeafIndex) -> Option<&LeafNode> {
        match self.node(leaf.node()) {
            Some(Node::Leaf(l)) => Some(l),
            _ => None,
        }
    }

    /// The parent node at `x`; `None` if blank, a leaf position or outside the tree.
    pub fn parent_node(&self, x: NodeIndex) -> Option<&ParentNode> {
        match self.node(x) {
            Some(Node::Parent(p)) => Some(p),
            _ => None,
        }
    }

    /// The non-blank leaves, left to right.
    pub fn leaves(&self) -> impl Iterator<Item = (LeafIndex, &LeafNode)> + '_ {
        self.nodes
            .iter()
            .step_by(2)
            .enumerate()
            .filter_map(|(i, n)| match n.as_deref() {
                Some(Node::Leaf(leaf)) => Some((LeafIndex(i as u32), leaf)),
                _ => None,
            })
    }

    /// The non-blank parent nodes, left to right.
    pub fn parents(&self) -> impl Iterator<Item = (NodeIndex, &ParentNode)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n.as_deref() {
                Some(Node::Parent(p)) => Some((NodeIndex(i as u32), p)),
                _ => None,
            })
    }

    /// Whether some node of the tree carries the HPKE public key `key`.
    pub fn has_encryption_key(&self, key: &[u8]) -> bool {
        self.encryption_keys.contains_key(key)
    }

    /// Whether some leaf of the tree carries the signature public key `key`.
    pub fn has_signature_key(&self, key: &[u8]) -> bool {
        self.signature_keys.contains_key(key)
    }

    /// Whether every HPKE public key and every signature public key in the tree is carried by
    /// one node only (§7.3, §12.4.3.1).
    pub fn keys_are_unique(&self) -> bool {
        let unique = |m: &HashMap<Arc<[u8]>, u32>| m.values().all(|&c| c == 1);
        unique(&self.encryption_keys) && unique(&self.signature_keys)
    }

    /// How many nodes other than the leaf `except_leaf` carry the HPKE public key `key`.
    fn encryption_key_uses(&self, key: &[u8], except_leaf: Option<u32>) -> u32 {
        let all = self.encryption_keys.get(key).copied().unwrap_or(0);
        let own = except_leaf
            .and_then(|l| self.leaf(LeafIndex(l)))
            .is_some_and(|leaf| leaf.encryption_key.as_slice() == key);
        all - u32::from(own)
    }

    /// How many leaves other than `except_leaf` carry the signature public key `key`.
    fn signature_key_uses(&self, key: &[u8], except_leaf: Option<u32>) -> u32 {
        let all = self.signature_keys.get(key).copied().unwrap_or(0);
        let own = except_leaf
            .and_then(|l| self.leaf(LeafIndex(l)))
            .is_some_and(|leaf| leaf.signature_key.as_slice() == key);
        all - u32::from(own)
    }

    /// The credential types of the members other than the leaves in `excluded` (§7.3: the
    /// same as [`MemberCredentialTypes::from_leaves`] over those members, types in ascending
    /// order), from the tree's index: `O(types × excluded)`.
    pub fn member_credential_types(&self, excluded: &[LeafIndex]) -> MemberCredentialTypes {
        let mut gone: Vec<&LeafNode> = Vec::with_capacity(excluded.len());
        let mut seen: Vec<u32> = Vec::with_capacity(excluded.len());
        for l in excluded {
            if seen.contains(&l.0) {
                continue;
            }
            seen.push(l.0);
            gone.extend(self.leaf(*l));
        }
        let others = self.leaf_count.saturating_sub(gone.len() as u32);
        if others == 0 {
            return MemberCredentialTypes::none();
        }
        let mut out = MemberCredentialTypes {
            in_use: Vec::new(),
            supported_by_all: Some(Vec::new()),
        };
        for (&t, &(used, supported)) in &self.credential_types {
            let gone_using = gone
                .iter()
                .filter(|l| l.credential.credential_type() == t)
                .count() as u32;
            let gone_supporting = gone
                .iter()
                .filter(|l| l.capabilities.credentials.contains(&t))
                .count() as u32;
            if used.saturating_sub(gone_using) > 0 {
                out.in_use.push(t);
            }
            if supported.saturating_sub(gone_supporting) == others {
                if let Some(all) = &mut out.supported_by_all {
                    all.push(t);
                }
            }
        }
        out
    }

    /// The number of nodes whose tree hash is cached (for tests of the cache).
    #[cfg(test)]
    pub(crate) fn cached_hash_count(&self) -> usize {
        self.hashes.iter().filter(|h| h.get().is_some()).count()
    }

    /// The leaf at `leaf`, or an error if it is outside the tree or blank.
    pub fn require_leaf(&self, leaf: LeafIndex) -> Result<&LeafNode, TreeError> {
        if leaf.0 >= self.n_leaves() {
            return Err(TreeError::LeafOutOfRange(leaf));
        }
        self.leaf(leaf).ok_or(TreeError::BlankLeaf(leaf))
    }

    // ----- resolution and filtered direct path (§4.1.1, §4.1.2) -----

    /// The resolution of `x` (§4.1.1): the non-blank nodes that together cover the subtree
    /// under `x`, each non-blank parent followed by its unmerged leaves. Walks only the
    /// subtree down to its first non-blank nodes.
    pub fn resolution(&self, x: NodeIndex) -> Vec<NodeIndex> {
        let mut out = Vec::new();
        self.resolution_into(x, &mut out);
        out
    }

    /// Appends the resolution of `x` to `out` (nothing for a node outside the tree).
    pub fn resolution_into(&self, x: NodeIndex, out: &mut Vec<NodeIndex>) {
        if x.as_usize() >= self.nodes.len() {
            return;
        }
        match self.node(x) {
            Some(Node::Leaf(_)) => out.push(x),
            Some(Node::Parent(p)) => {
                out.push(x);
                out.extend(p.unmerged_leaves.iter().map(|&l| LeafIndex(l).node()));
            }
            None => {
                if let Some((l, r)) = x.children() {
                    self.resolution_into(l, out);
                    self.resolution_into(r, out);
                }
            }
        }
    }

    /// Whether the resolution of `x` is empty: no node of its subtree is non-blank.
    pub fn resolution_is_empty(&self, x: NodeIndex) -> bool {
        if x.as_usize() >= self.nodes.len() {
            return true;
        }
        if !self.is_blank(x) {
            return false;
        }
        match x.children() {
            Some((l, r)) => self.resolution_is_empty(l) && self.resolution_is_empty(r),
            None => true,
        }
    }

    /// The filtered direct path of `leaf` (§4.1.2) as `(node, copath child)` pairs from the
    /// leaf up: the direct path without the nodes whose copath child has an empty resolution.
    pub fn filtered_direct_path(&self, leaf: LeafIndex) -> Vec<(NodeIndex, NodeIndex)> {
        math::direct_path_with_copath(leaf.node(), self.n_leaves())
            .into_iter()
            .filter(|&(_, s)| !self.resolution_is_empty(s))
            .collect()
    }

    // ----- evolution: add, update, remove, blank, truncate (§7.7, §12.1) -----

    /// Adds `leaf_node` at the leftmost blank leaf, extending the tree if there is none, and
    /// lists the new leaf as unmerged at every non-blank node of its direct path (§12.1.1).
    pub fn add_leaf(&mut self, leaf_node: LeafNode) -> Result<LeafIndex, TreeError> {
        let leaf = self.leftmost_blank_leaf()?;
        let n = self.n_leaves();
        for p in math::direct_path(leaf.node(), n) {
            if let Some(Some(node)) = self.nodes.get_mut(p.as_usize()) {
                let listed = match node.as_ref() {
                    Node::Parent(parent) => parent.unmerged_leaves.binary_search(&leaf.0),
                    Node::Leaf(_) => Ok(0),
                };
                if let (Err(pos), Node::Parent(parent)) = (listed, Arc::make_mut(node)) {
                    parent.unmerged_leaves.insert(pos, leaf.0);
                }
            }
        }
        self.set_node(leaf.node(), Some(Node::Leaf(leaf_node)));
        Ok(leaf)
    }

    /// The leftmost blank leaf; extends the tree when every leaf is taken.
    pub fn leftmost_blank_leaf(&mut self) -> Result<LeafIndex, TreeError> {
        if let Some(i) = self.nodes.iter().step_by(2).position(Option::is_none) {
            return Ok(LeafIndex(i as u32));
        }
        let first_new = self.n_leaves();
        self.extend()?;
        Ok(LeafIndex(first_new))
    }

    /// Doubles the tree: a new blank root with the old tree on its left and a blank subtree on
    /// its right (§7.7).
    pub fn extend(&mut self) -> Result<(), TreeError> {
        let n = self.n_leaves();
        if n >= MAX_LEAVES {
            return Err(TreeError::TooLarge);
        }
        self.push_blank(self.nodes.len() + 1);
        Ok(())
    }

    /// Replaces the leaf at `leaf` and blanks its direct path (Update proposal, §12.1.2).
    pub fn update_leaf(&mut self, leaf: LeafIndex, leaf_node: LeafNode) -> Result<(), TreeError> {
        self.require_leaf(leaf)?;
        self.set_node(leaf.node(), Some(Node::Leaf(leaf_node)));
        self.blank_direct_path(leaf);
        Ok(())
    }

    /// Blanks the leaf at `leaf` and its direct path, then truncates (Remove proposal, §12.1.3).
    pub fn remove_leaf(&mut self, leaf: LeafIndex) -> Result<(), TreeError> {
        self.require_leaf(leaf)?;
        self.set_node(leaf.node(), None);
        self.blank_direct_path(leaf);
        self.truncate();
        Ok(())
    }

    /// Blanks every node on the direct path of `leaf` (§7.4, §12.1.2, §12.1.3).
    pub fn blank_direct_path(&mut self, leaf: LeafIndex) {
        for p in math::direct_path(leaf.node(), self.n_leaves()) {
            self.set_node(p, None);
        }
    }

    /// Halves the tree while its right half has no non-blank leaf (§7.7): the result has the
    /// fewest leaves, a power of two, that still holds the rightmost non-blank leaf.
    pub fn truncate(&mut self) {
        let last_leaf = self.nodes.iter().step_by(2).rposition(Option::is_some);
        let mut n = self.n_leaves();
        while n > 1 && last_leaf.is_none_or(|l| l < (n / 2) as usize) {
            n /= 2;
        }
        let width = math::node_width(n) as usize;
        // The remaining (left) subtree keeps its cached hashes: they do not depend on the
        // size of the tree.
        self.hashes.truncate(width);
        for old in self.nodes.split_off(width).into_iter().flatten() {
            self.index_keys(&old, false);
        }
    }

    /// Sets the parent node at `x`.
    pub fn set_parent(&mut self, x: NodeIndex, parent: ParentNode) -> Result<(), TreeError> {
        if x.is_leaf() || x.as_usize() >= self.nodes.len() {
            return Err(TreeError::NodeOutOfRange(x));
        }
        self.set_node(x, Some(Node::Parent(parent)));
        Ok(())
    }

    /// Sets the leaf node at `leaf` without touching other nodes (merging an UpdatePath).
    pub fn set_leaf(&mut self, leaf: LeafIndex, leaf_node: LeafNode) -> Result<(), TreeError> {
        if leaf.0 >= self.n_leaves() {
            return Err(TreeError::LeafOutOfRange(leaf));
        }
        self.set_node(leaf.node(), Some(Node::Leaf(leaf_node)));
        Ok(())
    }

    /// Replaces the node at `x` (which must be inside the tree), keeping the key index and the
    /// tree-hash cache consistent.
    fn set_node(&mut self, x: NodeIndex, node: Option<Node>) {
        if x.as_usize() >= self.nodes.len() {
            return;
        }
        if let Some(new) = &node {
            self.index_keys(new, true);
        }
        let old = self
            .nodes
            .get_mut(x.as_usize())
            .and_then(|slot| std::mem::replace(slot, node.map(Arc::new)));
        if let Some(old) = &old {
            self.index_keys(old, false);
        }
        self.invalidate_hashes(x);
    }

    /// Counts (`add`) or uncounts a node's public keys in the key index.
    fn index_keys(&mut self, node: &Node, add: bool) {
        let bump = |map: &mut HashMap<Arc<[u8]>, u32>, key: &[u8]| {
            if add {
                match map.get_mut(key) {
                    Some(count) => *count += 1,
                    None => {
                        map.insert(Arc::from(key), 1);
                    }
                }
            } else if let Some(count) = map.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    map.remove(key);
                }
            }
        };
        bump(&mut self.encryption_keys, node.encryption_key().as_slice());
        if let Node::Leaf(leaf) = node {
            bump(&mut self.signature_keys, leaf.signature_key.as_slice());
            self.index_credential_types(leaf, add);
        }
    }

    /// Counts (`add`) or uncounts a leaf in the credential-type index.
    fn index_credential_types(&mut self, leaf: &LeafNode, add: bool) {
        let step = |n: u32| if add { n + 1 } else { n.saturating_sub(1) };
        self.leaf_count = step(self.leaf_count);
        let used = self
            .credential_types
            .entry(leaf.credential.credential_type())
            .or_default();
        used.0 = step(used.0);
        let mut listed: Vec<CredentialType> = leaf.capabilities.credentials.clone();
        listed.sort_unstable();
        listed.dedup();
        for t in listed {
            let entry = self.credential_types.entry(t).or_default();
            entry.1 = step(entry.1);
        }
        self.credential_types
            .retain(|_, &mut (u, s)| u > 0 || s > 0);
    }

    /// Clears the cached tree hash of `x` and of its ancestors.
    fn invalidate_hashes(&mut self, x: NodeIndex) {
        let n = self.n_leaves();
        let mut node = Some(x);
        while let Some(y) = node {
            match self.hashes.get_mut(y.as_usize()) {
                // By the cache invariant nothing above an uncached node is cached.
                Some(cell) if cell.get().is_some() => {
                    cell.take();
                }
                _ => break,
            }
            node = y.parent(n);
        }
    }

    /// Appends `count` blank nodes.
    fn push_blank(&mut self, count: usize) {
        self.nodes.resize_with(self.nodes.len() + count, || None);
        self.hashes
            .resize_with(self.hashes.len() + count, OnceLock::new);
    }
}

/// Uniqueness lookups (§7.3, §12.4.2) through the tree's key index: `O(1)` per key.
impl KeyUniqueness for RatchetTree {
    fn signature_key_in_use(
        &self,
        signature_key: &SignaturePublicKey,
        except_leaf: Option<u32>,
    ) -> bool {
        self.signature_key_uses(signature_key.as_slice(), except_leaf) > 0
    }

    fn encryption_key_in_use(
        &self,
        encryption_key: &HpkePublicKey,
        except_leaf: Option<u32>,
    ) -> bool {
        self.encryption_key_uses(encryption_key.as_slice(), except_leaf) > 0
    }
}

/// The number of leaves of the smallest tree with at least `len` nodes.
fn leaves_for_width(len: usize) -> Result<u32, TreeError> {
    let mut n: u32 = 1;
    while (math::node_width(n) as usize) < len {
        if n >= MAX_LEAVES {
            return Err(TreeError::TooLarge);
        }
        n *= 2;
    }
    Ok(n)
}

/// Leaves belong at even positions, parents at odd ones.
fn check_node_kind(x: NodeIndex, node: &Node) -> Result<(), TreeError> {
    match (node, x.is_leaf()) {
        (Node::Leaf(_), true) | (Node::Parent(_), false) => Ok(()),
        _ => Err(TreeError::WrongNodeType(x)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::codec::{Capabilities, Credential, LeafNodeSource, Lifetime};
    use tls_codec::VLBytes;

    /// A structurally valid (unsigned) leaf whose keys derive from `tag`.
    pub(crate) fn leaf(tag: u8) -> LeafNode {
        LeafNode {
            encryption_key: vec![tag; 32].into(),
            signature_key: vec![tag ^ 0x80; 32].into(),
            credential: Credential::basic(vec![tag]),
            capabilities: Capabilities::default(),
            leaf_node_source: LeafNodeSource::KeyPackage(Lifetime {
                not_before: 0,
                not_after: u64::MAX,
            }),
            extensions: vec![],
            signature: VLBytes::new(vec![]),
        }
    }

    pub(crate) fn parent(tag: u8, unmerged: Vec<u32>) -> ParentNode {
        ParentNode {
            encryption_key: HpkePublicKey::from(vec![tag; 32]),
            parent_hash: VLBytes::new(vec![]),
            unmerged_leaves: unmerged,
        }
    }

    fn tree_of(n: u8) -> RatchetTree {
        let mut tree = RatchetTree::new(leaf(0));
        for i in 1..n {
            tree.add_leaf(leaf(i)).unwrap();
        }
        tree
    }

    #[test]
    fn add_fills_leftmost_blank_then_extends() {
        let mut tree = tree_of(3);
        assert_eq!(tree.n_leaves(), 4);
        assert_eq!(tree.add_leaf(leaf(3)).unwrap(), LeafIndex(3));
        assert_eq!(tree.add_leaf(leaf(4)).unwrap(), LeafIndex(4));
        assert_eq!(tree.n_leaves(), 8);
        tree.remove_leaf(LeafIndex(1)).unwrap();
        assert_eq!(tree.add_leaf(leaf(9)).unwrap(), LeafIndex(1));
    }

    #[test]
    fn add_lists_unmerged_leaves_in_order() {
        let mut tree = tree_of(4);
        tree.set_parent(NodeIndex(3), parent(50, vec![])).unwrap();
        tree.set_parent(NodeIndex(5), parent(51, vec![3])).unwrap();
        tree.remove_leaf(LeafIndex(2)).unwrap(); // blanks 5 and 3
        tree.set_parent(NodeIndex(3), parent(52, vec![3])).unwrap();
        assert_eq!(tree.add_leaf(leaf(7)).unwrap(), LeafIndex(2));
        assert_eq!(
            tree.parent_node(NodeIndex(3)).unwrap().unmerged_leaves,
            vec![2, 3]
        );
        assert_eq!(
            tree.resolution(NodeIndex(3)),
            vec![NodeIndex(3), NodeIndex(4), NodeIndex(6)]
        );
    }

    #[test]
    fn remove_truncates_to_rightmost_member() {
        let mut tree = tree_of(5);
        assert_eq!(tree.n_leaves(), 8);
        tree.remove_leaf(LeafIndex(4)).unwrap();
        assert_eq!(tree.n_leaves(), 4);
        tree.remove_leaf(LeafIndex(2)).unwrap();
        assert_eq!(tree.n_leaves(), 4);
        tree.remove_leaf(LeafIndex(3)).unwrap();
        assert_eq!(tree.n_leaves(), 2);
        assert!(tree.remove_leaf(LeafIndex(3)).is_err());
        assert!(tree.has_encryption_key(&[1; 32]));
        assert!(!tree.has_encryption_key(&[3; 32]));
    }

    #[test]
    fn resolution_and_filtered_direct_path() {
        // The tree of RFC 9420 §4.1.2 (five members A B _ _ E F G _ with T, X set).
        let mut tree = tree_of(7);
        tree.add_leaf(leaf(7)).unwrap();
        for l in [2, 3, 7] {
            tree.remove_leaf(LeafIndex(l)).unwrap();
        }
        tree.set_parent(NodeIndex(1), parent(60, vec![])).unwrap();
        tree.set_parent(NodeIndex(9), parent(61, vec![])).unwrap();
        tree.set_parent(NodeIndex(11), parent(62, vec![])).unwrap();
        tree.set_parent(NodeIndex(7), parent(63, vec![])).unwrap();
        let fdp = |l| -> Vec<u32> {
            tree.filtered_direct_path(LeafIndex(l))
                .iter()
                .map(|(p, _)| p.0)
                .collect()
        };
        assert_eq!(fdp(0), vec![1, 7]);
        assert_eq!(fdp(4), vec![9, 11, 7]);
        assert_eq!(fdp(6), vec![11, 7]);
        assert_eq!(tree.resolution(NodeIndex(3)), vec![NodeIndex(1)]);
        assert_eq!(tree.resolution(NodeIndex(5)), vec![]);
    }

    #[test]
    fn nodes_round_trip_without_trailing_blanks() {
        let mut tree = tree_of(3);
        tree.set_parent(NodeIndex(1), parent(40, vec![])).unwrap();
        let nodes = tree.to_nodes();
        assert_eq!(nodes.len(), 5);
        let bytes = tree.encode().unwrap();
        let back = RatchetTree::decode(&bytes).unwrap();
        assert_eq!(back, tree);
        assert_eq!(back.n_leaves(), 4);
        assert!(RatchetTree::from_nodes(vec![]).is_err());
        assert!(RatchetTree::from_nodes(vec![Some(Node::Leaf(leaf(0))), None]).is_err());
        let wrong = vec![Some(Node::Parent(parent(1, vec![])))];
        assert_eq!(
            RatchetTree::from_nodes(wrong),
            Err(TreeError::WrongNodeType(NodeIndex(0)))
        );
    }

    #[test]
    fn key_index_counts_duplicates() {
        let mut tree = tree_of(2);
        assert!(tree.keys_are_unique());
        tree.add_leaf(leaf(1)).unwrap();
        assert!(!tree.keys_are_unique());
        tree.remove_leaf(LeafIndex(2)).unwrap();
        assert!(tree.keys_are_unique());
        assert!(tree.has_signature_key(&[0x81; 32]));
        let key = |t: u8| HpkePublicKey::from(vec![t; 32]);
        let sig = |t: u8| SignaturePublicKey::from(vec![t ^ 0x80; 32]);
        assert!(tree.encryption_key_in_use(&key(1), None));
        assert!(!tree.encryption_key_in_use(&key(1), Some(1)));
        assert!(tree.encryption_key_in_use(&key(1), Some(0)));
        assert!(!tree.signature_key_in_use(&sig(0), Some(0)));
        assert!(tree.signature_key_in_use(&sig(0), Some(1)));
        assert!(!tree.encryption_key_in_use(&key(9), None));
    }

    /// The index answers like a scan of the other members' leaves, for every set of excluded
    /// leaves, after adds, updates and removes.
    #[test]
    fn member_credential_types_match_a_scan() {
        use crate::codec::{Certificate, CredentialType as T};
        let x509 = || {
            Credential::X509(vec![Certificate {
                cert_data: vec![1].into(),
            }])
        };
        let mut tree = RatchetTree::new(leaf(0));
        for tag in 1..12u8 {
            let mut l = leaf(tag);
            if tag % 3 == 0 {
                l.credential = x509();
            }
            l.capabilities.credentials = match tag % 4 {
                0 => vec![T::BASIC, T(0x0A0A)],
                1 => vec![T::BASIC, T::X509, T::BASIC],
                2 => vec![T::X509],
                _ => vec![],
            };
            tree.add_leaf(l).unwrap();
        }
        tree.remove_leaf(LeafIndex(5)).unwrap();
        let mut updated = leaf(40);
        updated.capabilities.credentials = vec![T::X509, T::BASIC];
        tree.update_leaf(LeafIndex(2), updated).unwrap();
        let sorted = |mut m: MemberCredentialTypes| {
            m.in_use.sort_unstable();
            m
        };
        let excluded_sets: Vec<Vec<u32>> = vec![
            vec![],
            vec![0],
            vec![2, 2],
            vec![5],
            vec![3, 6, 9],
            (0..12).collect(),
            (1..12).collect(),
        ];
        for excluded in excluded_sets {
            let leaves: Vec<LeafIndex> = excluded.iter().map(|&l| LeafIndex(l)).collect();
            let scan = MemberCredentialTypes::from_leaves(
                tree.leaves()
                    .filter(|(i, _)| !excluded.contains(&i.0))
                    .map(|(_, l)| l),
            );
            assert_eq!(
                sorted(tree.member_credential_types(&leaves)),
                sorted(scan),
                "excluding {excluded:?}"
            );
        }
    }
}
