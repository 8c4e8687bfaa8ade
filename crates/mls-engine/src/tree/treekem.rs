//! TreeKEM (RFC 9420 §7.4-§7.6, §7.9, §12.4.1-§12.4.2): creating an UpdatePath, merging one
//! into the tree, and decrypting its path secrets.
//!
//! The sender's leaf may be blank before the UpdatePath is applied: an external joiner takes
//! the leftmost blank leaf ([`RatchetTree::leftmost_blank_leaf`]) and commits from it.
//!
//! All functions work on the *provisional* tree (the tree with the Commit's proposals applied)
//! and change it in place; on error the tree may be partly changed, so callers work on a copy
//! and keep it only on success.
//!
//! Committer: [`create_update_path`] takes the first path secret `path_secret[0]` and the new
//! leaf's HPKE key pair as inputs (fresh randomness or key material given by the caller, design
//! hook H1), a LeafNode template (credential, capabilities, extensions, signature key) and the
//! signature private key the new leaf is signed with.
//!
//! Receiver: [`apply_update_path`] = [`merge_update_path`] (checks and merge, §7.5) then
//! [`decrypt_update_path`] (§7.5 second half). A member processing a commit from its own leaf
//! that it did not create (hook H2) uses [`rederive_update_path`] instead of decrypting.

use tls_codec::VLBytes;

use super::math::{self, LeafIndex, NodeIndex};
use super::private::{next_path_secret, node_key_pair, TreeKemPrivate};
use super::{RatchetTree, TreeError};
use crate::codec::{
    self, CodecError, GroupContext, HpkeCiphertext, HpkePublicKey, LeafNode, LeafNodeSource,
    LeafSignatureError, ParentNode, UpdatePath, UpdatePathNode,
};
use crate::crypto::{
    CryptoError, HpkeKeyPair, MlsCrypto as _, Secret, SignaturePrivateKey, SuiteProvider,
};

/// The label of path-secret encryption (§7.6).
pub const UPDATE_PATH_NODE_LABEL: &str = "UpdatePathNode";

/// Why a TreeKEM operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeKemError {
    /// The UpdatePath has a different number of nodes than the sender's filtered direct path.
    #[error("the UpdatePath has {actual} nodes, the filtered direct path {expected}")]
    PathLengthMismatch {
        /// Length of the filtered direct path.
        expected: usize,
        /// Number of UpdatePathNodes.
        actual: usize,
    },
    /// An UpdatePathNode has a different number of ciphertexts than its copath resolution.
    #[error("{node} has {actual} encrypted path secrets, its copath resolution {expected} nodes")]
    CiphertextCountMismatch {
        /// The filtered-direct-path node.
        node: NodeIndex,
        /// Size of the copath child's resolution without new members.
        expected: usize,
        /// Number of ciphertexts.
        actual: usize,
    },
    /// A public key of the UpdatePath already appears in the tree, or twice in the path.
    #[error("a public key of the UpdatePath is already in use")]
    PublicKeyInUse,
    /// The UpdatePath's leaf does not have `leaf_node_source = commit`.
    #[error("the UpdatePath's leaf is not a commit leaf")]
    NotCommitLeaf,
    /// The leaf's `parent_hash` differs from the parent hash of its first filtered node.
    #[error("the leaf's parent hash does not match the UpdatePath")]
    ParentHashMismatch,
    /// The receiver is the sender, is not in the tree, or holds no key of the copath
    /// resolution.
    #[error("no node of the UpdatePath can be decrypted with this member's keys")]
    NoDecryptionKey,
    /// A public key derived from a path secret differs from the one in the UpdatePath or tree.
    #[error("the public key derived for {0} does not match")]
    PublicKeyMismatch(NodeIndex),
    /// The private state holds a key that does not match the tree.
    #[error("the private key for {0} does not match the tree")]
    PrivateKeyMismatch(NodeIndex),
    /// A path secret was given for a blank node.
    #[error("{0} is blank")]
    BlankNode(NodeIndex),
    /// A tree operation failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Encoding the GroupContext failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Signing the new leaf failed.
    #[error(transparent)]
    LeafSignature(#[from] LeafSignatureError),
}

/// The new leaf of a committer's UpdatePath, before its parent hash and signature are known.
#[derive(Debug)]
pub struct NewLeaf<'a> {
    /// The template: its credential, capabilities, extensions and `signature_key` are kept;
    /// `encryption_key`, `leaf_node_source` and `signature` are replaced.
    pub template: LeafNode,
    /// The new leaf HPKE key pair.
    pub key_pair: HpkeKeyPair,
    /// The private key of the template's `signature_key`, to sign the new leaf with.
    pub signature_key: &'a SignaturePrivateKey,
}

/// What creating an UpdatePath produced.
#[derive(Debug)]
pub struct CreatedUpdatePath {
    /// The UpdatePath for the Commit.
    pub update_path: UpdatePath,
    /// `commit_secret`: the path secret after the last node's (§12.4.1).
    pub commit_secret: Secret,
    /// The path secret of each node of the filtered direct path, leaf to root (for Welcome
    /// messages, §12.4.3.1).
    pub path_secrets: Vec<(NodeIndex, Secret)>,
    /// The committer's new private state: the new leaf key and every path node's key.
    pub private: TreeKemPrivate,
}

impl CreatedUpdatePath {
    /// The path secret a new member at `joiner` receives in its Welcome: that of the lowest
    /// common ancestor of the joiner and the committer (§12.4.3.1).
    pub fn path_secret_for(&self, sender: LeafIndex, joiner: LeafIndex) -> Option<&Secret> {
        let ancestor = math::common_ancestor(sender.node(), joiner.node());
        self.path_secrets
            .iter()
            .find(|(x, _)| *x == ancestor)
            .map(|(_, s)| s)
    }
}

/// What a receiver learned from an UpdatePath.
#[derive(Debug)]
pub struct DecryptedUpdatePath {
    /// The node whose path secret the receiver decrypted.
    pub node: NodeIndex,
    /// That path secret.
    pub path_secret: Secret,
    /// `commit_secret` (§12.4.2).
    pub commit_secret: Secret,
}

/// The path secrets of a filtered direct path of `len` nodes starting from `path_secret_0`,
/// and the commit secret that follows the last (with an empty path the commit secret is
/// `path_secret_0` itself).
pub fn derive_path_secrets(
    suite: &dyn SuiteProvider,
    path_secret_0: Secret,
    len: usize,
) -> Result<(Vec<Secret>, Secret), TreeKemError> {
    let mut secrets = Vec::with_capacity(len);
    let mut next = path_secret_0;
    for _ in 0..len {
        let after = next_path_secret(suite, &next)?;
        secrets.push(std::mem::replace(&mut next, after));
    }
    Ok((secrets, next))
}

/// Creates the committer's UpdatePath (§7.4-§7.6, §12.4.1) on the provisional `tree`: blanks
/// the sender's direct path, sets the filtered-direct-path nodes to the keys derived from
/// `path_secret_0`, computes the parent hashes, signs and sets the new leaf, sets
/// `group_context.tree_hash` to the new tree hash, and encrypts each path secret to the copath
/// resolution without the leaves in `excluded` (the members this Commit adds).
pub fn create_update_path(
    suite: &dyn SuiteProvider,
    tree: &mut RatchetTree,
    sender: LeafIndex,
    new_leaf: NewLeaf<'_>,
    path_secret_0: Secret,
    excluded: &[LeafIndex],
    group_context: &mut GroupContext,
) -> Result<CreatedUpdatePath, TreeKemError> {
    check_sender(tree, sender)?;
    let path = tree.filtered_direct_path(sender);
    let (secrets, commit_secret) = derive_path_secrets(suite, path_secret_0, path.len())?;
    let mut private = TreeKemPrivate::new(sender, new_leaf.key_pair.clone());
    tree.blank_direct_path(sender);
    let mut public_keys = Vec::with_capacity(path.len());
    for (&(x, _), secret) in path.iter().zip(&secrets) {
        let key_pair = node_key_pair(suite, secret)?;
        tree.set_parent(x, blank_parent(key_pair.public_key.clone()))?;
        public_keys.push(HpkePublicKey::from(key_pair.public_key.clone()));
        private.insert(x, key_pair);
    }
    let leaf_parent_hash = tree.set_parent_hashes(suite, &path)?;
    let leaf_node = sign_new_leaf(suite, new_leaf, leaf_parent_hash, group_context, sender)?;
    tree.set_leaf(sender, leaf_node.clone())?;
    group_context.tree_hash = VLBytes::new(tree.tree_hash(suite)?);
    let context = codec::encode(&*group_context)?;
    let ciphertexts = encrypt_path_secrets(suite, tree, &path, &secrets, excluded, &context)?;
    let nodes = public_keys
        .into_iter()
        .zip(ciphertexts)
        .map(|(encryption_key, encrypted_path_secret)| UpdatePathNode {
            encryption_key,
            encrypted_path_secret,
        })
        .collect();
    let path_secrets = path.iter().map(|&(x, _)| x).zip(secrets).collect();
    Ok(CreatedUpdatePath {
        update_path: UpdatePath { leaf_node, nodes },
        commit_secret,
        path_secrets,
        private,
    })
}

/// The sender's leaf must be in the tree; it may be blank (an external commit's sender takes
/// a blank leaf, §12.4.3.2).
fn check_sender(tree: &RatchetTree, sender: LeafIndex) -> Result<(), TreeKemError> {
    if sender.0 >= tree.n_leaves() {
        return Err(TreeError::LeafOutOfRange(sender).into());
    }
    Ok(())
}

/// A parent node with `encryption_key`, no parent hash yet and no unmerged leaves.
fn blank_parent(encryption_key: Vec<u8>) -> ParentNode {
    ParentNode {
        encryption_key: HpkePublicKey::from(encryption_key),
        parent_hash: VLBytes::new(Vec::new()),
        unmerged_leaves: Vec::new(),
    }
}

/// Completes and signs the committer's new leaf.
fn sign_new_leaf(
    suite: &dyn SuiteProvider,
    new_leaf: NewLeaf<'_>,
    parent_hash: Vec<u8>,
    group_context: &GroupContext,
    sender: LeafIndex,
) -> Result<LeafNode, TreeKemError> {
    let mut leaf = new_leaf.template;
    leaf.encryption_key = HpkePublicKey::from(new_leaf.key_pair.public_key);
    leaf.leaf_node_source = LeafNodeSource::Commit(VLBytes::new(parent_hash));
    leaf.sign(
        suite,
        new_leaf.signature_key,
        group_context.group_id.as_slice(),
        sender.0,
    )?;
    Ok(leaf)
}

/// The resolution of `x` without the leaves in `excluded` (§7.6, §12.4.1).
fn resolution_without(tree: &RatchetTree, x: NodeIndex, excluded: &[LeafIndex]) -> Vec<NodeIndex> {
    let mut resolution = tree.resolution(x);
    resolution.retain(|y| !y.leaf().is_some_and(|l| excluded.contains(&l)));
    resolution
}

/// `EncryptWithLabel(pk, "UpdatePathNode", group_context, path_secret[i])` to every node of
/// the resolution of the copath child of each filtered-direct-path node `i`, without the
/// leaves in `excluded` (§7.6): one list of ciphertexts per path node. The encryptions are
/// independent and run in parallel when there are many (DESIGN §7, [`crate::parallel`]).
fn encrypt_path_secrets(
    suite: &dyn SuiteProvider,
    tree: &RatchetTree,
    path: &[(NodeIndex, NodeIndex)],
    secrets: &[Secret],
    excluded: &[LeafIndex],
    context: &[u8],
) -> Result<Vec<Vec<HpkeCiphertext>>, TreeKemError> {
    let mut jobs: Vec<(usize, &[u8], &Secret)> = Vec::new();
    for (level, (&(_, s), secret)) in path.iter().zip(secrets).enumerate() {
        for y in resolution_without(tree, s, excluded) {
            let node = tree.node(y).ok_or(TreeError::NodeOutOfRange(y))?;
            jobs.push((level, node.encryption_key().as_slice(), secret));
        }
    }
    let sealed = crate::parallel::try_map(&jobs, |&(_, public_key, secret)| {
        suite
            .encrypt_with_label(
                public_key,
                UPDATE_PATH_NODE_LABEL,
                context,
                secret.as_bytes(),
            )
            .map(|ct| HpkeCiphertext {
                kem_output: VLBytes::new(ct.kem_output),
                ciphertext: VLBytes::new(ct.ciphertext),
            })
    })?;
    let mut out: Vec<Vec<HpkeCiphertext>> = path.iter().map(|_| Vec::new()).collect();
    for (&(level, _, _), ct) in jobs.iter().zip(sealed) {
        if let Some(list) = out.get_mut(level) {
            list.push(ct);
        }
    }
    Ok(out)
}

/// Checks an UpdatePath against the provisional `tree` and merges it (§7.5, §12.4.2): the path
/// length and ciphertext counts match the sender's filtered direct path and copath resolutions
/// (without `excluded`), no new public key is already in the tree, the direct path is blanked,
/// the new parent nodes set, their parent hashes computed, and the new leaf's `parent_hash`
/// checked and the leaf set. Returns the filtered direct path. The leaf's other checks (§7.3,
/// signature included) are the caller's.
pub fn merge_update_path(
    suite: &dyn SuiteProvider,
    tree: &mut RatchetTree,
    sender: LeafIndex,
    update_path: &UpdatePath,
    excluded: &[LeafIndex],
) -> Result<Vec<(NodeIndex, NodeIndex)>, TreeKemError> {
    check_sender(tree, sender)?;
    let path = tree.filtered_direct_path(sender);
    check_shape(tree, &path, update_path, excluded)?;
    check_keys_unused(tree, update_path)?;
    let claimed = update_path
        .leaf_node
        .parent_hash()
        .ok_or(TreeKemError::NotCommitLeaf)?;
    tree.blank_direct_path(sender);
    for (&(x, _), node) in path.iter().zip(&update_path.nodes) {
        tree.set_parent(x, blank_parent(node.encryption_key.as_slice().to_vec()))?;
    }
    if tree.set_parent_hashes(suite, &path)? != claimed {
        return Err(TreeKemError::ParentHashMismatch);
    }
    tree.set_leaf(sender, update_path.leaf_node.clone())?;
    Ok(path)
}

/// The UpdatePath has one node per filtered-direct-path node and one ciphertext per node of
/// each copath resolution (without `excluded`).
fn check_shape(
    tree: &RatchetTree,
    path: &[(NodeIndex, NodeIndex)],
    update_path: &UpdatePath,
    excluded: &[LeafIndex],
) -> Result<(), TreeKemError> {
    if path.len() != update_path.nodes.len() {
        return Err(TreeKemError::PathLengthMismatch {
            expected: path.len(),
            actual: update_path.nodes.len(),
        });
    }
    for (&(x, s), node) in path.iter().zip(&update_path.nodes) {
        let expected = resolution_without(tree, s, excluded).len();
        let actual = node.encrypted_path_secret.len();
        if expected != actual {
            return Err(TreeKemError::CiphertextCountMismatch {
                node: x,
                expected,
                actual,
            });
        }
    }
    Ok(())
}

/// No public key of the UpdatePath (leaf included) is in the tree or repeated in the path
/// (§12.4.2).
fn check_keys_unused(tree: &RatchetTree, update_path: &UpdatePath) -> Result<(), TreeKemError> {
    let mut keys: Vec<&[u8]> = update_path
        .nodes
        .iter()
        .map(|n| n.encryption_key.as_slice())
        .collect();
    keys.push(update_path.leaf_node.encryption_key.as_slice());
    if keys.iter().any(|k| tree.has_encryption_key(k)) {
        return Err(TreeKemError::PublicKeyInUse);
    }
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(TreeKemError::PublicKeyInUse);
    }
    Ok(())
}

/// Decrypts the path secret meant for `private`'s member from an UpdatePath already merged into
/// `tree` (§7.5): finds the filtered-direct-path node whose copath child covers the member, the
/// resolution node it holds a key for, decrypts with `group_context` (the provisional
/// GroupContext, whose `tree_hash` is that of the merged tree), derives the path secrets up to
/// the root, checks every derived public key against the UpdatePath, stores the new keys and
/// prunes outdated ones.
pub fn decrypt_update_path(
    suite: &dyn SuiteProvider,
    tree: &RatchetTree,
    private: &mut TreeKemPrivate,
    sender: LeafIndex,
    update_path: &UpdatePath,
    excluded: &[LeafIndex],
    group_context: &GroupContext,
) -> Result<DecryptedUpdatePath, TreeKemError> {
    let own = private.own_leaf().node();
    let path = tree.filtered_direct_path(sender);
    let k = path
        .iter()
        .position(|&(_, s)| own.is_in_subtree_of(s))
        .ok_or(TreeKemError::NoDecryptionKey)?;
    let Some(&(x, s)) = path.get(k) else {
        return Err(TreeKemError::NoDecryptionKey);
    };
    let upn = update_path
        .nodes
        .get(k)
        .ok_or(TreeKemError::NoDecryptionKey)?;
    let resolution = resolution_without(tree, s, excluded);
    let (ciphertext, key) = resolution
        .iter()
        .zip(&upn.encrypted_path_secret)
        .find_map(|(&y, ct)| private.private_key_for(tree, y).map(|key| (ct, key)))
        .ok_or(TreeKemError::NoDecryptionKey)?;
    let context = codec::encode(group_context)?;
    let path_secret = Secret::new(suite.decrypt_with_label(
        key,
        UPDATE_PATH_NODE_LABEL,
        &context,
        ciphertext.kem_output.as_slice(),
        ciphertext.ciphertext.as_slice(),
    )?);
    let (path_rest, nodes_rest) = (path.get(k..), update_path.nodes.get(k..));
    let (Some(path_rest), Some(nodes_rest)) = (path_rest, nodes_rest) else {
        return Err(TreeKemError::NoDecryptionKey);
    };
    let commit_secret = install_path(suite, private, path_rest, nodes_rest, &path_secret)?;
    private.prune(tree);
    Ok(DecryptedUpdatePath {
        node: x,
        path_secret,
        commit_secret,
    })
}

/// Derives the key pairs of `path` from `path_secret` (the first node's), checks them against
/// the UpdatePath's public keys and stores them; returns the commit secret.
fn install_path(
    suite: &dyn SuiteProvider,
    private: &mut TreeKemPrivate,
    path: &[(NodeIndex, NodeIndex)],
    nodes: &[UpdatePathNode],
    path_secret: &Secret,
) -> Result<Secret, TreeKemError> {
    let mut secret = path_secret.clone();
    let mut new_keys = Vec::with_capacity(path.len());
    for (&(x, _), node) in path.iter().zip(nodes) {
        let key_pair = node_key_pair(suite, &secret)?;
        if key_pair.public_key.as_slice() != node.encryption_key.as_slice() {
            return Err(TreeKemError::PublicKeyMismatch(x));
        }
        new_keys.push((x, key_pair));
        secret = next_path_secret(suite, &secret)?;
    }
    for (x, key_pair) in new_keys {
        private.insert(x, key_pair);
    }
    Ok(secret)
}

/// Processes an UpdatePath as a receiver (§12.4.2): [`merge_update_path`], then sets
/// `group_context.tree_hash` to the merged tree's hash, then [`decrypt_update_path`].
pub fn apply_update_path(
    suite: &dyn SuiteProvider,
    tree: &mut RatchetTree,
    private: &mut TreeKemPrivate,
    sender: LeafIndex,
    update_path: &UpdatePath,
    excluded: &[LeafIndex],
    group_context: &mut GroupContext,
) -> Result<DecryptedUpdatePath, TreeKemError> {
    merge_update_path(suite, tree, sender, update_path, excluded)?;
    group_context.tree_hash = VLBytes::new(tree.tree_hash(suite)?);
    decrypt_update_path(
        suite,
        tree,
        private,
        sender,
        update_path,
        excluded,
        group_context,
    )
}

/// The secrets behind an UpdatePath that its creator shares with another client of the same
/// leaf (design hook H2).
#[derive(Debug)]
pub struct OwnPathSecrets {
    /// The new leaf's HPKE key pair.
    pub leaf_key: HpkeKeyPair,
    /// `path_secret[0]`, the path secret of the first filtered-direct-path node.
    pub path_secret_0: Secret,
}

/// Processes an UpdatePath sent from the member's own leaf by another client sharing it (design
/// hook H2): merges it like [`merge_update_path`], re-derives every node key from
/// `secrets.path_secret_0` and checks it against the UpdatePath, and checks that
/// `secrets.leaf_key` is the new leaf's key pair. Returns the new private state and the commit
/// secret; `group_context.tree_hash` is set to the merged tree's.
pub fn rederive_update_path(
    suite: &dyn SuiteProvider,
    tree: &mut RatchetTree,
    sender: LeafIndex,
    update_path: &UpdatePath,
    excluded: &[LeafIndex],
    secrets: OwnPathSecrets,
    group_context: &mut GroupContext,
) -> Result<(TreeKemPrivate, Secret), TreeKemError> {
    let leaf_public = secrets.leaf_key.public_key.as_slice();
    if leaf_public != update_path.leaf_node.encryption_key.as_slice() {
        return Err(TreeKemError::PublicKeyMismatch(sender.node()));
    }
    merge_update_path(suite, tree, sender, update_path, excluded)?;
    group_context.tree_hash = VLBytes::new(tree.tree_hash(suite)?);
    rederive_merged_update_path(suite, tree, sender, update_path, secrets)
}

/// [`rederive_update_path`] for an UpdatePath already merged into `tree` (by
/// [`merge_update_path`]): checks that `secrets.leaf_key` is the new leaf's key pair,
/// re-derives every node key from `secrets.path_secret_0` and checks it against the
/// UpdatePath. Returns the new private state and the commit secret.
pub fn rederive_merged_update_path(
    suite: &dyn SuiteProvider,
    tree: &RatchetTree,
    sender: LeafIndex,
    update_path: &UpdatePath,
    secrets: OwnPathSecrets,
) -> Result<(TreeKemPrivate, Secret), TreeKemError> {
    let leaf_public = secrets.leaf_key.public_key.as_slice();
    if leaf_public != update_path.leaf_node.encryption_key.as_slice() {
        return Err(TreeKemError::PublicKeyMismatch(sender.node()));
    }
    let path = tree.filtered_direct_path(sender);
    let mut private = TreeKemPrivate::new(sender, secrets.leaf_key);
    let commit_secret = install_path(
        suite,
        &mut private,
        &path,
        &update_path.nodes,
        &secrets.path_secret_0,
    )?;
    Ok((private, commit_secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Capabilities, Credential, Lifetime, ProtocolVersion};
    use crate::crypto::{CipherSuite, CryptoProvider, RustCrypto, SignatureKeyPair};

    fn suite() -> &'static dyn SuiteProvider {
        static PROVIDER: RustCrypto = RustCrypto;
        PROVIDER.suite(CipherSuite(1)).unwrap()
    }

    /// One member: its private tree state and signature key pair.
    struct Member {
        private: TreeKemPrivate,
        signature: SignatureKeyPair,
    }

    /// A group as every member sees it (all members share one tree in these tests).
    struct Group {
        tree: RatchetTree,
        context: GroupContext,
        members: Vec<Member>,
    }

    /// A KeyPackage-style leaf with fresh keys.
    fn fresh_leaf(tag: u8) -> (LeafNode, HpkeKeyPair, SignatureKeyPair) {
        let s = suite();
        let key_pair = s.hpke_generate_key_pair().unwrap();
        let signature = s.signature_generate_key_pair().unwrap();
        let mut leaf = LeafNode {
            encryption_key: HpkePublicKey::from(key_pair.public_key.clone()),
            signature_key: signature.public_key.clone().into(),
            credential: Credential::basic(vec![tag]),
            capabilities: Capabilities::default(),
            leaf_node_source: LeafNodeSource::KeyPackage(Lifetime {
                not_before: 0,
                not_after: u64::MAX,
            }),
            extensions: vec![],
            signature: VLBytes::new(vec![]),
        };
        leaf.sign(s, &signature.private_key, &[], 0).unwrap();
        (leaf, key_pair, signature)
    }

    fn new_group() -> Group {
        let (leaf, key_pair, signature) = fresh_leaf(0);
        let tree = RatchetTree::new(leaf);
        let context = GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(1),
            group_id: VLBytes::new(b"group".to_vec()),
            epoch: 0,
            tree_hash: VLBytes::new(tree.tree_hash(suite()).unwrap()),
            confirmed_transcript_hash: VLBytes::new(vec![]),
            extensions: vec![],
        };
        let private = TreeKemPrivate::new(LeafIndex(0), key_pair);
        Group {
            tree,
            context,
            members: vec![Member { private, signature }],
        }
    }

    impl Group {
        fn member(&self, leaf: LeafIndex) -> &Member {
            self.members
                .iter()
                .find(|m| m.private.own_leaf() == leaf)
                .unwrap()
        }

        /// `committer` commits removing `removed` and adding `added` new members, with a path.
        fn commit(&mut self, committer: LeafIndex, removed: &[u32], added: u8) -> Secret {
            let s = suite();
            for &r in removed {
                self.tree.remove_leaf(LeafIndex(r)).unwrap();
                self.members
                    .retain(|m| m.private.own_leaf() != LeafIndex(r));
            }
            let mut joiners = Vec::new();
            for i in 0..added {
                let (leaf, key_pair, signature) = fresh_leaf(100 + i);
                let index = self.tree.add_leaf(leaf).unwrap();
                joiners.push((TreeKemPrivate::new(index, key_pair), signature));
            }
            let excluded: Vec<LeafIndex> = joiners.iter().map(|(p, _)| p.own_leaf()).collect();
            let before = self.tree.clone();
            let mut context = self.context.clone();
            context.epoch += 1;
            let committer_member = self.member(committer);
            let new_leaf = NewLeaf {
                template: self.tree.leaf(committer).unwrap().clone(),
                key_pair: s.hpke_generate_key_pair().unwrap(),
                signature_key: &committer_member.signature.private_key,
            };
            let path_secret_0 = s.random_secret().unwrap();
            let mut tree = before.clone();
            let created = create_update_path(
                s,
                &mut tree,
                committer,
                new_leaf,
                path_secret_0,
                &excluded,
                &mut context,
            )
            .unwrap();
            for m in self.members.iter_mut() {
                if m.private.own_leaf() == committer {
                    m.private = created.private.clone();
                    continue;
                }
                let (mut t, mut gc) = (before.clone(), self.context.clone());
                gc.epoch += 1;
                let out = apply_update_path(
                    s,
                    &mut t,
                    &mut m.private,
                    committer,
                    &created.update_path,
                    &excluded,
                    &mut gc,
                )
                .unwrap();
                assert_eq!(out.commit_secret, created.commit_secret);
                assert_eq!(t, tree);
                assert_eq!(gc, context);
            }
            for (mut private, signature) in joiners {
                let joiner = private.own_leaf();
                let secret = created.path_secret_for(committer, joiner).unwrap().clone();
                let start = math::common_ancestor(committer.node(), joiner.node());
                private
                    .implant_path_secret(s, &tree, start, secret)
                    .unwrap();
                self.members.push(Member { private, signature });
            }
            self.tree = tree;
            self.context = context;
            for m in &self.members {
                m.private.check_consistent(&self.tree).unwrap();
            }
            let th = self.tree.tree_hash(s).unwrap();
            self.tree
                .validate(s, self.context.group_id.as_slice(), &th)
                .unwrap();
            created.commit_secret
        }
    }

    #[test]
    fn a_group_lives_through_commits() {
        let mut group = new_group();
        group.commit(LeafIndex(0), &[], 5);
        group.commit(LeafIndex(2), &[], 0);
        group.commit(LeafIndex(4), &[1], 2);
        group.commit(LeafIndex(3), &[5, 0], 1);
        group.commit(LeafIndex(1), &[], 3);
        assert_eq!(group.members.len(), 9);
        // Every member holds the root key.
        let root = group.tree.root();
        for m in &group.members {
            assert!(m.private.private_key_for(&group.tree, root).is_some());
        }
    }

    #[test]
    fn an_external_joiner_commits_from_a_blank_leaf() {
        let s = suite();
        let mut group = new_group();
        group.commit(LeafIndex(0), &[], 4);
        group.commit(LeafIndex(3), &[1], 0);
        let before = group.tree.clone();
        let mut tree = before.clone();
        let sender = tree.leftmost_blank_leaf().unwrap();
        assert_eq!(sender, LeafIndex(1));
        let (template, key_pair, signature) = fresh_leaf(50);
        let mut context = group.context.clone();
        let created = create_update_path(
            s,
            &mut tree,
            sender,
            NewLeaf {
                template,
                key_pair,
                signature_key: &signature.private_key,
            },
            s.random_secret().unwrap(),
            &[],
            &mut context,
        )
        .unwrap();
        for m in group.members.iter_mut() {
            let (mut t, mut gc) = (before.clone(), group.context.clone());
            let out = apply_update_path(
                s,
                &mut t,
                &mut m.private,
                sender,
                &created.update_path,
                &[],
                &mut gc,
            )
            .unwrap();
            assert_eq!(out.commit_secret, created.commit_secret);
            assert_eq!(t, tree);
        }
        let th = tree.tree_hash(s).unwrap();
        tree.validate(s, b"group", &th).unwrap();
    }

    #[test]
    fn a_commit_in_a_large_tree_rehashes_one_path() {
        use crate::tree::ratchet_tree::tests::leaf;
        let s = suite();
        let (first, _, signature) = fresh_leaf(0);
        let mut tree = RatchetTree::new(first);
        for i in 1..4096u32 {
            tree.add_leaf(leaf(i as u8)).unwrap();
        }
        for x in (1..tree.node_width()).step_by(2) {
            let key = s.hpke_derive_key_pair(&x.to_be_bytes()).unwrap().public_key;
            tree.set_parent(NodeIndex(x), blank_parent(key)).unwrap();
        }
        let mut context = new_group().context;
        tree.tree_hash(s).unwrap();
        let all = tree.node_width() as usize;
        let mut committed = tree.clone();
        let created = create_update_path(
            s,
            &mut committed,
            LeafIndex(0),
            NewLeaf {
                template: tree.leaf(LeafIndex(0)).unwrap().clone(),
                key_pair: s.hpke_generate_key_pair().unwrap(),
                signature_key: &signature.private_key,
            },
            s.random_secret().unwrap(),
            &[],
            &mut context,
        )
        .unwrap();
        assert_eq!(created.update_path.nodes.len(), 12);
        let mut merged = tree.clone();
        merge_update_path(s, &mut merged, LeafIndex(0), &created.update_path, &[]).unwrap();
        // Only the leaf and its 12 ancestors lost their cached hashes.
        assert_eq!(merged.cached_hash_count(), all - 13);
        assert_eq!(
            merged.tree_hash(s).unwrap(),
            committed.tree_hash(s).unwrap()
        );
    }

    #[test]
    fn a_lone_member_commits() {
        let mut group = new_group();
        let commit_secret = group.commit(LeafIndex(0), &[], 0);
        assert_eq!(commit_secret.len(), 32);
    }

    /// A group of four where leaf 1 committed last, and the state before that commit.
    fn commit_fixture() -> (Group, RatchetTree, CreatedUpdatePath, Secret, HpkeKeyPair) {
        let s = suite();
        let mut group = new_group();
        group.commit(LeafIndex(0), &[], 3);
        let before = group.tree.clone();
        let leaf_key = s.hpke_generate_key_pair().unwrap();
        let path_secret_0 = s.random_secret().unwrap();
        let mut tree = before.clone();
        let mut context = group.context.clone();
        let template = tree.leaf(LeafIndex(1)).unwrap().clone();
        let created = create_update_path(
            s,
            &mut tree,
            LeafIndex(1),
            NewLeaf {
                template,
                key_pair: leaf_key.clone(),
                signature_key: &group.member(LeafIndex(1)).signature.private_key,
            },
            path_secret_0.clone(),
            &[],
            &mut context,
        )
        .unwrap();
        (group, before, created, path_secret_0, leaf_key)
    }

    #[test]
    fn own_leaf_commit_is_rederived() {
        let s = suite();
        let (group, before, created, path_secret_0, leaf_key) = commit_fixture();
        let mut tree = before.clone();
        let mut gc = group.context.clone();
        let secrets = OwnPathSecrets {
            leaf_key: leaf_key.clone(),
            path_secret_0,
        };
        let (private, commit_secret) = rederive_update_path(
            s,
            &mut tree,
            LeafIndex(1),
            &created.update_path,
            &[],
            secrets,
            &mut gc,
        )
        .unwrap();
        assert_eq!(commit_secret, created.commit_secret);
        assert_eq!(private, created.private);

        let wrong = OwnPathSecrets {
            leaf_key,
            path_secret_0: s.random_secret().unwrap(),
        };
        let mut tree = before.clone();
        let result = rederive_update_path(
            s,
            &mut tree,
            LeafIndex(1),
            &created.update_path,
            &[],
            wrong,
            &mut group.context.clone(),
        );
        assert!(matches!(result, Err(TreeKemError::PublicKeyMismatch(_))));
    }

    #[test]
    fn tampered_paths_are_refused() {
        let s = suite();
        let (group, before, created, _, _) = commit_fixture();
        let receiver = &group.member(LeafIndex(2)).private;
        let apply = |path: &UpdatePath| {
            let (mut t, mut p, mut gc) = (before.clone(), receiver.clone(), group.context.clone());
            apply_update_path(s, &mut t, &mut p, LeafIndex(1), path, &[], &mut gc)
        };
        assert!(apply(&created.update_path).is_ok());

        let mut path = created.update_path.clone();
        path.nodes[0].encryption_key = HpkePublicKey::from(vec![7; 32]);
        assert_eq!(apply(&path).unwrap_err(), TreeKemError::ParentHashMismatch);

        let mut path = created.update_path.clone();
        path.nodes[1].encrypted_path_secret.clear();
        assert!(matches!(
            apply(&path).unwrap_err(),
            TreeKemError::CiphertextCountMismatch { .. }
        ));

        let mut path = created.update_path.clone();
        path.nodes.pop();
        assert!(matches!(
            apply(&path).unwrap_err(),
            TreeKemError::PathLengthMismatch { .. }
        ));

        let mut path = created.update_path.clone();
        path.leaf_node.encryption_key = before.leaf(LeafIndex(3)).unwrap().encryption_key.clone();
        assert_eq!(apply(&path).unwrap_err(), TreeKemError::PublicKeyInUse);

        let mut path = created.update_path.clone();
        path.leaf_node.leaf_node_source = LeafNodeSource::Update;
        assert_eq!(apply(&path).unwrap_err(), TreeKemError::NotCommitLeaf);

        let mut path = created.update_path.clone();
        let ct = &mut path.nodes[1].encrypted_path_secret[0].ciphertext;
        *ct = VLBytes::new(vec![0; ct.as_slice().len()]);
        assert!(matches!(apply(&path).unwrap_err(), TreeKemError::Crypto(_)));
    }

    #[test]
    fn the_sender_cannot_decrypt_its_own_path() {
        let s = suite();
        let (group, before, created, _, _) = commit_fixture();
        let mut p = group.member(LeafIndex(1)).private.clone();
        let (mut t, mut gc) = (before.clone(), group.context.clone());
        let result = apply_update_path(
            s,
            &mut t,
            &mut p,
            LeafIndex(1),
            &created.update_path,
            &[],
            &mut gc,
        );
        assert_eq!(result.unwrap_err(), TreeKemError::NoDecryptionKey);
    }
}
