//! A member's private view of the ratchet tree (RFC 9420 §4.2 "views", §7.4): the HPKE private
//! keys of its own leaf and of the parent nodes above it whose path secrets it learned.
//!
//! ```text
//! path_secret[n] = DeriveSecret(path_secret[n-1], "path")
//! node_secret[n] = DeriveSecret(path_secret[n], "node")
//! node_priv[n], node_pub[n] = KEM.DeriveKeyPair(node_secret[n])
//! ```
//!
//! Every key is stored with its public key; a key is used only while the tree still holds that
//! public key at that node, and [`TreeKemPrivate::prune`] deletes keys whose node changed.

use std::collections::BTreeMap;

use super::math::{LeafIndex, NodeIndex};
use super::treekem::TreeKemError;
use super::RatchetTree;
use crate::crypto::{HpkeKeyPair, HpkePrivateKey, MlsCrypto as _, Secret, SuiteProvider};

/// `DeriveSecret(path_secret, "path")`: the path secret of the next node up (§7.4).
pub fn next_path_secret(
    suite: &dyn SuiteProvider,
    path_secret: &Secret,
) -> Result<Secret, TreeKemError> {
    Ok(suite.derive_secret(path_secret.as_bytes(), "path")?)
}

/// The node key pair of a path secret: `KEM.DeriveKeyPair(DeriveSecret(path_secret, "node"))`
/// (§7.4).
pub fn node_key_pair(
    suite: &dyn SuiteProvider,
    path_secret: &Secret,
) -> Result<HpkeKeyPair, TreeKemError> {
    let node_secret = suite.derive_secret(path_secret.as_bytes(), "node")?;
    Ok(suite.hpke_derive_key_pair(node_secret.as_bytes())?)
}

/// The private keys one member holds in the ratchet tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeKemPrivate {
    /// The member's leaf.
    own_leaf: LeafIndex,
    /// Key pairs by node: the own leaf's and those of parent nodes on its direct path.
    keys: BTreeMap<NodeIndex, HpkeKeyPair>,
}

impl TreeKemPrivate {
    /// The private state of the member at `own_leaf` whose leaf HPKE key pair is `leaf_key`.
    pub fn new(own_leaf: LeafIndex, leaf_key: HpkeKeyPair) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(own_leaf.node(), leaf_key);
        Self { own_leaf, keys }
    }

    /// The member's leaf.
    pub fn own_leaf(&self) -> LeafIndex {
        self.own_leaf
    }

    /// The key pair of the own leaf.
    pub fn leaf_key(&self) -> Option<&HpkeKeyPair> {
        self.keys.get(&self.own_leaf.node())
    }

    /// Replaces the own leaf's key pair (after an Update or a Commit by this member).
    pub fn set_leaf_key(&mut self, leaf_key: HpkeKeyPair) {
        self.keys.insert(self.own_leaf.node(), leaf_key);
    }

    /// Stores the key pair of node `x`.
    pub fn insert(&mut self, x: NodeIndex, key_pair: HpkeKeyPair) {
        self.keys.insert(x, key_pair);
    }

    /// Derives the key pair of node `x` from its path secret and stores it.
    pub fn insert_path_secret(
        &mut self,
        suite: &dyn SuiteProvider,
        x: NodeIndex,
        path_secret: &Secret,
    ) -> Result<(), TreeKemError> {
        let key_pair = node_key_pair(suite, path_secret)?;
        self.keys.insert(x, key_pair);
        Ok(())
    }

    /// The stored key pairs by node, for persistence.
    pub fn key_pairs(&self) -> impl Iterator<Item = (NodeIndex, &HpkeKeyPair)> + '_ {
        self.keys.iter().map(|(x, k)| (*x, k))
    }

    /// The private key of node `x`, if stored and if the tree still holds its public key there.
    pub fn private_key_for(&self, tree: &RatchetTree, x: NodeIndex) -> Option<&HpkePrivateKey> {
        let key_pair = self.keys.get(&x)?;
        let node = tree.node(x)?;
        (node.encryption_key().as_slice() == key_pair.public_key.as_slice())
            .then_some(&key_pair.private_key)
    }

    /// Deletes every key whose node is blank or holds another public key (§7.5: outdated key
    /// pairs are deleted).
    pub fn prune(&mut self, tree: &RatchetTree) {
        self.keys.retain(|x, key_pair| {
            tree.node(*x)
                .is_some_and(|n| n.encryption_key().as_slice() == key_pair.public_key.as_slice())
        });
    }

    /// Checks that every stored key belongs to a non-blank node holding its public key, and
    /// that the own leaf's key is among them.
    pub fn check_consistent(&self, tree: &RatchetTree) -> Result<(), TreeKemError> {
        if self.private_key_for(tree, self.own_leaf.node()).is_none() {
            return Err(TreeKemError::PrivateKeyMismatch(self.own_leaf.node()));
        }
        for (&x, key_pair) in &self.keys {
            let matches = tree
                .node(x)
                .is_some_and(|n| n.encryption_key().as_slice() == key_pair.public_key.as_slice());
            if !matches {
                return Err(TreeKemError::PrivateKeyMismatch(x));
            }
        }
        Ok(())
    }

    /// Installs the keys a new member learns from a Welcome (§12.4.3.1): `path_secret` is the
    /// path secret of `start` (the common ancestor of the new member and the committer); each
    /// non-blank ancestor of `start` gets the next path secret. Every derived public key must
    /// equal the tree's. Returns the secret after the root's (the commit secret of the commit
    /// that produced the tree).
    pub fn implant_path_secret(
        &mut self,
        suite: &dyn SuiteProvider,
        tree: &RatchetTree,
        start: NodeIndex,
        path_secret: Secret,
    ) -> Result<Secret, TreeKemError> {
        if tree.is_blank(start) {
            return Err(TreeKemError::BlankNode(start));
        }
        let n = tree.n_leaves();
        let mut nodes = vec![start];
        nodes.extend(super::math::direct_path(start, n));
        let mut secret = path_secret;
        let mut new_keys = Vec::new();
        for x in nodes.into_iter().filter(|&x| !tree.is_blank(x)) {
            let key_pair = node_key_pair(suite, &secret)?;
            let expected = tree.node(x).map(|node| node.encryption_key().as_slice());
            if expected != Some(key_pair.public_key.as_slice()) {
                return Err(TreeKemError::PublicKeyMismatch(x));
            }
            new_keys.push((x, key_pair));
            secret = next_path_secret(suite, &secret)?;
        }
        self.keys.extend(new_keys);
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ParentNode;
    use crate::crypto::{CipherSuite, CryptoProvider, RustCrypto};
    use crate::tree::ratchet_tree::tests::leaf;

    fn suite() -> &'static dyn SuiteProvider {
        static PROVIDER: RustCrypto = RustCrypto;
        PROVIDER.suite(CipherSuite(1)).unwrap()
    }

    #[test]
    fn keys_follow_the_tree() {
        let s = suite();
        let mut tree = RatchetTree::new(leaf(0));
        tree.add_leaf(leaf(1)).unwrap();
        let leaf_key = HpkeKeyPair {
            private_key: vec![1; 32].into(),
            public_key: vec![0; 32],
        };
        let mut private = TreeKemPrivate::new(LeafIndex(0), leaf_key);
        let path_secret = Secret::new(vec![9; 32]);
        assert_eq!(
            private.implant_path_secret(s, &tree, NodeIndex(1), path_secret.clone()),
            Err(TreeKemError::BlankNode(NodeIndex(1)))
        );
        let root_key = node_key_pair(s, &path_secret).unwrap();
        let parent = ParentNode {
            encryption_key: root_key.public_key.clone().into(),
            parent_hash: vec![].into(),
            unmerged_leaves: vec![],
        };
        tree.set_parent(NodeIndex(1), parent).unwrap();
        let after = private
            .implant_path_secret(s, &tree, NodeIndex(1), path_secret.clone())
            .unwrap();
        assert_eq!(after, next_path_secret(s, &path_secret).unwrap());
        assert_eq!(
            private.private_key_for(&tree, NodeIndex(1)),
            Some(&root_key.private_key)
        );
        private.check_consistent(&tree).unwrap();

        tree.update_leaf(LeafIndex(1), leaf(2)).unwrap(); // blanks the root
        assert_eq!(private.private_key_for(&tree, NodeIndex(1)), None);
        assert_eq!(
            private.check_consistent(&tree),
            Err(TreeKemError::PrivateKeyMismatch(NodeIndex(1)))
        );
        private.prune(&tree);
        assert_eq!(private.key_pairs().count(), 1);
        private.check_consistent(&tree).unwrap();
    }
}
