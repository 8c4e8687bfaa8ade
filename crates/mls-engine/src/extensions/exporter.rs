//! The forward-secure exporter (draft-ietf-mls-extensions-08 §4.4, design hook H5).
//!
//! ```text
//! application_export_secret = DeriveSecret(epoch_secret, "application_export")
//! tree_node_[root]_secret   = application_export_secret
//! left(node)  secret        = ExpandWithLabel(tree_node_[node]_secret, "tree", "left",  KDF.Nh)
//! right(node) secret        = ExpandWithLabel(tree_node_[node]_secret, "tree", "right", KDF.Nh)
//! SafeExportSecret(ComponentID) = tree_node_[LeafIndex(ComponentID)]_secret
//! ```
//!
//! The Exporter Tree has the shape of the RFC 9420 Secret Tree (§9) with 2^16 leaves: array
//! representation, root node `2^16 - 1`, leaf `i` at node `2i`. `LeafIndex(ComponentID)` is
//! the component ID itself; IDs of 2^16 and above have no leaf and are refused (our reading of
//! "corresponding to the 16 bits of a ComponentID value", DESIGN §5 row 1).
//!
//! Deletion (RFC 9420 §9.2, as the draft asks): nodes are derived on demand; deriving a node's
//! children deletes the node, and handing out a leaf secret deletes the leaf. The tree is
//! therefore a *frontier*: a set of stored node secrets, none an ancestor of another. A
//! component whose leaf has no stored ancestor-or-self was consumed this epoch.

use std::collections::BTreeMap;

use crate::crypto::{CipherSuite, CryptoError, MlsCrypto as _, Secret, SuiteProvider};

use super::component::ComponentId;

/// The number of leaves of an Exporter Tree (one per 16-bit component ID).
pub const EXPORTER_TREE_LEAVES: u32 = 1 << 16;

/// The depth of the tree (levels from the root down to the leaves).
const DEPTH: u32 = 16;

/// The root's node index: `2^16 - 1`.
const ROOT: u32 = EXPORTER_TREE_LEAVES - 1;

/// The number of nodes: `2^17 - 1`.
const NODE_COUNT: u32 = 2 * EXPORTER_TREE_LEAVES - 1;

/// Why a safe export failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExporterError {
    /// The component ID is 2^16 or more: the Exporter Tree has no leaf for it.
    #[error("component id {0:#x} has no leaf in the exporter tree (ids must be < 2^16)")]
    ComponentIdOutOfRange(ComponentId),
    /// The component's exported secret was already consumed in this epoch.
    #[error("the safe export secret of component {0:#x} was already consumed in this epoch")]
    AlreadyConsumed(ComponentId),
    /// The tree was created for another cipher suite.
    #[error("exporter tree of suite 0x{:04x} used with suite 0x{:04x}", .expected.0, .actual.0)]
    SuiteMismatch {
        /// The tree's suite.
        expected: CipherSuite,
        /// The suite given.
        actual: CipherSuite,
    },
    /// A stored tree is inconsistent (a node index out of range, a secret of the wrong length,
    /// or a node stored together with one of its ancestors).
    #[error("malformed exporter tree: {0}")]
    Malformed(&'static str),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The level of node `x` (0 for leaves): its number of trailing one bits.
fn level(x: u32) -> u32 {
    x.trailing_ones()
}

/// The Exporter Tree of one epoch: the remaining (not yet consumed) secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExporterTree {
    suite: CipherSuite,
    /// Stored node secrets, by node index; no node is an ancestor of another.
    nodes: BTreeMap<u32, Secret>,
}

impl ExporterTree {
    /// A fresh tree rooted at `application_export_secret` (consumed).
    pub fn new(suite: CipherSuite, application_export_secret: Secret) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT, application_export_secret);
        Self { suite, nodes }
    }

    /// A tree with nothing left to export (every leaf consumed).
    pub fn empty(suite: CipherSuite) -> Self {
        Self {
            suite,
            nodes: BTreeMap::new(),
        }
    }

    /// The cipher suite the tree derives with.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.suite
    }

    /// `LeafIndex(ComponentID)`: the leaf of `component_id`, refused for IDs >= 2^16.
    pub fn leaf_index(component_id: ComponentId) -> Result<u32, ExporterError> {
        if component_id < EXPORTER_TREE_LEAVES {
            Ok(component_id)
        } else {
            Err(ExporterError::ComponentIdOutOfRange(component_id))
        }
    }

    /// The node on the path from the root to `leaf_node` that holds a stored secret.
    fn stored_ancestor(&self, leaf_node: u32) -> Option<u32> {
        let mut x = ROOT;
        let mut k = DEPTH;
        loop {
            if self.nodes.contains_key(&x) {
                return Some(x);
            }
            if k == 0 {
                return None;
            }
            x = if leaf_node < x {
                x ^ (1 << (k - 1))
            } else {
                x ^ (3 << (k - 1))
            };
            k -= 1;
        }
    }

    /// Whether `component_id`'s secret is no longer available (consumed, or out of range).
    pub fn is_consumed(&self, component_id: ComponentId) -> bool {
        match Self::leaf_index(component_id) {
            Ok(leaf) => self.stored_ancestor(2 * leaf).is_none(),
            Err(_) => true,
        }
    }

    /// `SafeExportSecret(component_id)`: the leaf secret of the component, which is then
    /// consumed. Every node derived on the way is deleted once its children exist; the
    /// siblings off the path are kept. Asking again in the same epoch is
    /// [`ExporterError::AlreadyConsumed`]. On error the tree is unchanged.
    pub fn safe_export_secret(
        &mut self,
        cs: &dyn SuiteProvider,
        component_id: ComponentId,
    ) -> Result<Secret, ExporterError> {
        if cs.cipher_suite() != self.suite {
            return Err(ExporterError::SuiteMismatch {
                expected: self.suite,
                actual: cs.cipher_suite(),
            });
        }
        let leaf = Self::leaf_index(component_id)?;
        let target = 2 * leaf;
        let start = self
            .stored_ancestor(target)
            .ok_or(ExporterError::AlreadyConsumed(component_id))?;
        let nh = cs.params().hash_len();
        // Derive every secret first, then change the tree: an error leaves it unchanged.
        let mut x = start;
        let mut k = level(start);
        let mut secret = self
            .nodes
            .get(&start)
            .cloned()
            .ok_or(ExporterError::AlreadyConsumed(component_id))?;
        let mut siblings = Vec::with_capacity(k as usize);
        while k > 0 {
            let left = x ^ (1 << (k - 1));
            let right = x ^ (3 << (k - 1));
            let left_secret = cs.expand_with_label(secret.as_bytes(), "tree", b"left", nh)?;
            let right_secret = cs.expand_with_label(secret.as_bytes(), "tree", b"right", nh)?;
            if target < x {
                siblings.push((right, right_secret));
                secret = left_secret;
                x = left;
            } else {
                siblings.push((left, left_secret));
                secret = right_secret;
                x = right;
            }
            k -= 1;
        }
        self.nodes.remove(&start);
        self.nodes.extend(siblings);
        Ok(secret)
    }

    /// The stored node secrets, by node index (for persistence).
    pub fn nodes(&self) -> impl Iterator<Item = (u32, &Secret)> + '_ {
        self.nodes.iter().map(|(x, s)| (*x, s))
    }

    /// Restores a tree from [`ExporterTree::nodes`], checking that every index is a node of
    /// the tree, every secret has `hash_len` octets, and no node is stored with an ancestor.
    pub fn from_nodes(
        suite: CipherSuite,
        hash_len: usize,
        nodes: Vec<(u32, Secret)>,
    ) -> Result<Self, ExporterError> {
        let mut map = BTreeMap::new();
        for (x, secret) in nodes {
            if x >= NODE_COUNT {
                return Err(ExporterError::Malformed("node index out of range"));
            }
            if secret.len() != hash_len {
                return Err(ExporterError::Malformed("node secret length"));
            }
            if map.insert(x, secret).is_some() {
                return Err(ExporterError::Malformed("node stored twice"));
            }
        }
        // The subtree of node x at level k spans [x - (2^k - 1), x + (2^k - 1)]; the spans of
        // a frontier are disjoint.
        let mut previous_end: Option<u32> = None;
        for &x in map.keys() {
            let half = (1u32 << level(x)) - 1;
            if previous_end.is_some_and(|end| x - half <= end) {
                return Err(ExporterError::Malformed("node stored with an ancestor"));
            }
            previous_end = Some(x + half);
        }
        Ok(Self { suite, nodes: map })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CryptoProvider as _, RustCrypto};

    /// `ExpandWithLabel(secret, "tree", side, Nh)` written out from RFC 9420 §8 with the raw
    /// `KDF.Expand`: `KDFLabel { uint16 length; opaque label<V>; opaque context<V>; }`.
    fn tree_child(cs: &dyn SuiteProvider, secret: &[u8], side: &[u8]) -> Vec<u8> {
        let nh = cs.params().hash_len();
        let label = b"MLS 1.0 tree";
        let mut info = (nh as u16).to_be_bytes().to_vec();
        info.push(label.len() as u8);
        info.extend_from_slice(label);
        info.push(side.len() as u8);
        info.extend_from_slice(side);
        cs.kdf_expand(secret, &info, nh)
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    /// The leaf secret by walking the 16 bits of the leaf index, most significant first
    /// (0 = left), from the root.
    fn expected_leaf(cs: &dyn SuiteProvider, root: &[u8], leaf: u16) -> Vec<u8> {
        let mut secret = root.to_vec();
        for bit in (0..16).rev() {
            let side: &[u8] = if (leaf >> bit) & 1 == 0 {
                b"left"
            } else {
                b"right"
            };
            secret = tree_child(cs, &secret, side);
        }
        secret
    }

    #[test]
    fn leaves_match_the_formula_and_are_consumed() {
        for suite in [1u16, 2, 3] {
            let cs = RustCrypto.suite(CipherSuite(suite)).unwrap();
            let root: Vec<u8> = (0..32u8).collect();
            let mut tree = ExporterTree::new(CipherSuite(suite), Secret::new(root.clone()));
            for id in [6u32, 7, 0, 0xffff, 0x8000] {
                assert!(!tree.is_consumed(id));
                let got = tree.safe_export_secret(cs, id).unwrap();
                assert_eq!(got.as_bytes(), expected_leaf(cs, &root, id as u16), "{id}");
                assert!(tree.is_consumed(id));
                assert_eq!(
                    tree.safe_export_secret(cs, id).unwrap_err(),
                    ExporterError::AlreadyConsumed(id)
                );
            }
        }
    }

    #[test]
    fn consumed_nodes_are_deleted() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let root = Secret::new(vec![7; 32]);
        let mut tree = ExporterTree::new(CipherSuite(1), root.clone());
        tree.safe_export_secret(cs, 6).unwrap();
        // The root and the path to leaf 6 are gone; one sibling per level remains.
        assert_eq!(tree.nodes().count(), 16);
        assert!(tree.nodes().all(|(_, s)| s != &root));
        assert!(tree.nodes().all(|(x, _)| x != ROOT && x != 12));
        // Leaf 7 (the sibling of 6) is stored as is and taking it empties its slot.
        tree.safe_export_secret(cs, 7).unwrap();
        assert_eq!(tree.nodes().count(), 15);
    }

    #[test]
    fn out_of_range_ids_are_refused() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let mut tree = ExporterTree::new(CipherSuite(1), Secret::new(vec![1; 32]));
        let before = tree.clone();
        assert_eq!(
            tree.safe_export_secret(cs, 0x1_0000).unwrap_err(),
            ExporterError::ComponentIdOutOfRange(0x1_0000)
        );
        assert_eq!(tree, before);
    }

    #[test]
    fn nodes_round_trip_and_bad_frontiers_are_refused() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let mut tree = ExporterTree::new(CipherSuite(1), Secret::new(vec![1; 32]));
        tree.safe_export_secret(cs, 300).unwrap();
        let nodes: Vec<_> = tree.nodes().map(|(x, s)| (x, s.clone())).collect();
        let back = ExporterTree::from_nodes(CipherSuite(1), 32, nodes.clone()).unwrap();
        assert_eq!(back, tree);
        let mut with_root = nodes.clone();
        with_root.push((ROOT, Secret::new(vec![0; 32])));
        assert!(ExporterTree::from_nodes(CipherSuite(1), 32, with_root).is_err());
        assert!(ExporterTree::from_nodes(
            CipherSuite(1),
            32,
            vec![(NODE_COUNT, Secret::new(vec![0; 32]))]
        )
        .is_err());
        assert!(
            ExporterTree::from_nodes(CipherSuite(1), 32, vec![(4, Secret::new(vec![0; 3]))])
                .is_err()
        );
    }
}
