//! The secret tree (RFC 9420 §9) and the sender data key (§6.3.2).
//!
//! The tree is rooted at the epoch's `encryption_secret` and has the shape of the ratchet
//! tree. Node secrets are derived lazily: only when a leaf's ratchets are first needed are the
//! secrets on the path from the nearest stored ancestor down to that leaf derived, and the
//! deletion schedule of §9.2 is applied as they are:
//!
//! * a parent's secret is deleted as soon as both children have been derived from it (both
//!   are always derived together); the child off the path is stored, the one on the path is
//!   used and deleted in turn;
//! * a leaf's secret is deleted as soon as its `handshake` and `application` ratchets are
//!   initialised.
//!
//! So the tree holds at most one secret per level of the tree plus the ratchets of the leaves
//! actually used: a group of 10,000 members costs nothing at epoch start.
//!
//! Each ratchet yields, for generation `j`, `ratchet_key_[j]`, `ratchet_nonce_[j]` and the next
//! `ratchet_secret_[j+1]` (`DeriveTreeSecret` with labels `"key"`, `"nonce"`, `"secret"`). A
//! receiver may skip ahead up to [`RatchetConfig::maximum_forward_distance`] generations; the
//! keys of skipped generations are kept for out-of-order messages while they are within
//! [`RatchetConfig::out_of_order_tolerance`] generations of the newest one, and deleted when
//! used. A generation, once used, can never be obtained again.
//!
//! Decryption is transactional: [`SecretTree::decrypt_with`] hands the key to a closure and
//! changes the tree (deriving, advancing, deleting) only if the closure succeeds, so a message
//! that fails to open leaves the tree as it was.

use std::collections::BTreeMap;

use crate::crypto::{CipherSuite, CryptoError, MlsCrypto as _, Secret, SuiteProvider};
use crate::tree::math::{root, MAX_LEAVES};
use crate::tree::{LeafIndex, NodeIndex};

/// Why the secret tree could not give a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretTreeError {
    /// A secret tree needs between 1 and 2^31 leaves.
    #[error("invalid number of leaves: {0}")]
    InvalidLeafCount(u32),
    /// The `encryption_secret` does not have `KDF.Nh` bytes.
    #[error("encryption_secret has {actual} bytes, expected {expected}")]
    InvalidSecretLength {
        /// `KDF.Nh`.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The leaf is not in the tree.
    #[error("{leaf} is outside a tree of {leaf_count} leaves")]
    LeafOutOfRange {
        /// The leaf asked for.
        leaf: LeafIndex,
        /// The number of leaves of the tree.
        leaf_count: u32,
    },
    /// The generation's key was used already (or deleted on request).
    #[error("generation {generation} was already used")]
    GenerationConsumed {
        /// The generation asked for.
        generation: u32,
    },
    /// The generation is older than the out-of-order window; its key was deleted.
    #[error("generation {generation} is older than the retained window (oldest {oldest})")]
    GenerationExpired {
        /// The generation asked for.
        generation: u32,
        /// The oldest generation whose key may still be retained.
        oldest: u64,
    },
    /// The generation is further ahead of the ratchet than the configured bound.
    #[error("generation {generation} is more than {maximum_forward_distance} ahead of {next}")]
    GenerationTooFarAhead {
        /// The generation asked for.
        generation: u32,
        /// The ratchet's next unused generation.
        next: u64,
        /// The bound.
        maximum_forward_distance: u32,
    },
    /// The ratchet has used every generation a `uint32` can name.
    #[error("the ratchet is exhausted")]
    GenerationExhausted,
    /// The tree was built for another cipher suite than the one given.
    #[error("secret tree of suite 0x{:04x} used with suite 0x{:04x}", .expected.0, .actual.0)]
    SuiteMismatch {
        /// The suite of the tree.
        expected: CipherSuite,
        /// The suite given.
        actual: CipherSuite,
    },
    /// The leaf's secret is gone without its ratchets being stored. Never happens unless the
    /// state was corrupted.
    #[error("the secret of {0} is unavailable")]
    SecretUnavailable(LeafIndex),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Which of a sender's two ratchets (§9.1): handshake messages (Proposal, Commit) or
/// application messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RatchetType {
    /// `handshake_ratchet_secret`, for Proposal and Commit content.
    Handshake,
    /// `application_ratchet_secret`, for application data.
    Application,
}

impl RatchetType {
    /// The label that initialises the ratchet from the leaf secret.
    pub fn label(self) -> &'static str {
        match self {
            RatchetType::Handshake => "handshake",
            RatchetType::Application => "application",
        }
    }
}

/// The bounds of a sender ratchet on the receiving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatchetConfig {
    /// How many generations below the newest derived one keep their keys for out-of-order
    /// messages (and so the most keys a ratchet retains). 0 retains none.
    pub out_of_order_tolerance: u32,
    /// How far beyond the next unused generation a received generation may be.
    pub maximum_forward_distance: u32,
}

impl Default for RatchetConfig {
    /// 128 retained generations, 1000 generations ahead.
    fn default() -> Self {
        Self {
            out_of_order_tolerance: 128,
            maximum_forward_distance: 1000,
        }
    }
}

/// The AEAD key and nonce of one generation of a ratchet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatchetKey {
    /// The generation `j`.
    pub generation: u32,
    /// `ratchet_key_[j] = DeriveTreeSecret(ratchet_secret_[j], "key", j, AEAD.Nk)`.
    pub key: Secret,
    /// `ratchet_nonce_[j] = DeriveTreeSecret(ratchet_secret_[j], "nonce", j, AEAD.Nn)`.
    pub nonce: Secret,
}

/// `sender_data_key` and `sender_data_nonce` for a PrivateMessage's `ciphertext` (§6.3.2): the
/// key and nonce are `ExpandWithLabel(sender_data_secret, "key"/"nonce", ciphertext_sample,
/// AEAD.Nk/Nn)`, where `ciphertext_sample` is the first `KDF.Nh` bytes of `ciphertext` (all of
/// it if shorter). Returns `(key, nonce)`.
pub fn sender_data_key_nonce(
    cs: &dyn SuiteProvider,
    sender_data_secret: &Secret,
    ciphertext: &[u8],
) -> Result<(Secret, Secret), CryptoError> {
    let params = cs.params();
    let sample = ciphertext.get(..params.hash_len()).unwrap_or(ciphertext);
    let key = cs.expand_with_label(
        sender_data_secret.as_bytes(),
        "key",
        sample,
        params.aead_key_len(),
    )?;
    let nonce = cs.expand_with_label(
        sender_data_secret.as_bytes(),
        "nonce",
        sample,
        params.aead_nonce_len(),
    )?;
    Ok((key, nonce))
}

/// One symmetric hash ratchet of one sender (§9.1).
#[derive(Clone, Debug, PartialEq, Eq)]
struct SenderRatchet {
    /// `ratchet_secret_[next]`; unusable once `next` passes `u32::MAX`.
    secret: Secret,
    /// The next generation not yet derived (a `u64` so that `u32::MAX` can be used).
    next: u64,
    /// Keys of generations below `next` kept for out-of-order messages.
    retained: BTreeMap<u32, RatchetKey>,
}

/// What decrypting at a generation would change in a ratchet.
enum RatchetStep {
    /// The key is among the retained ones.
    Retained(u32),
    /// The ratchet moves forward to `generation + 1`.
    Forward {
        key: RatchetKey,
        skipped: Vec<RatchetKey>,
        secret: Secret,
        next: u64,
    },
}

impl SenderRatchet {
    fn new(
        cs: &dyn SuiteProvider,
        leaf_secret: &Secret,
        kind: RatchetType,
    ) -> Result<Self, CryptoError> {
        let nh = cs.params().hash_len();
        Ok(Self {
            secret: cs.expand_with_label(leaf_secret.as_bytes(), kind.label(), &[], nh)?,
            next: 0,
            retained: BTreeMap::new(),
        })
    }

    /// The key of `generation` from `secret = ratchet_secret_[generation]`.
    fn key_at(
        cs: &dyn SuiteProvider,
        secret: &Secret,
        generation: u32,
    ) -> Result<RatchetKey, CryptoError> {
        let params = cs.params();
        Ok(RatchetKey {
            generation,
            key: cs.derive_tree_secret(
                secret.as_bytes(),
                "key",
                generation,
                params.aead_key_len(),
            )?,
            nonce: cs.derive_tree_secret(
                secret.as_bytes(),
                "nonce",
                generation,
                params.aead_nonce_len(),
            )?,
        })
    }

    /// `ratchet_secret_[generation + 1]`.
    fn step(
        cs: &dyn SuiteProvider,
        secret: &Secret,
        generation: u32,
    ) -> Result<Secret, CryptoError> {
        cs.derive_tree_secret(
            secret.as_bytes(),
            "secret",
            generation,
            cs.params().hash_len(),
        )
    }

    fn oldest_retainable(next: u64, config: &RatchetConfig) -> u64 {
        next.saturating_sub(u64::from(config.out_of_order_tolerance))
    }

    /// Plans obtaining the key of `generation` without changing the ratchet.
    fn plan(
        &self,
        cs: &dyn SuiteProvider,
        generation: u32,
        config: &RatchetConfig,
    ) -> Result<RatchetStep, SecretTreeError> {
        let wanted = u64::from(generation);
        if wanted < self.next {
            if self.retained.contains_key(&generation) {
                return Ok(RatchetStep::Retained(generation));
            }
            let oldest = Self::oldest_retainable(self.next, config);
            return Err(if wanted < oldest {
                SecretTreeError::GenerationExpired { generation, oldest }
            } else {
                SecretTreeError::GenerationConsumed { generation }
            });
        }
        if wanted - self.next > u64::from(config.maximum_forward_distance) {
            return Err(SecretTreeError::GenerationTooFarAhead {
                generation,
                next: self.next,
                maximum_forward_distance: config.maximum_forward_distance,
            });
        }
        let new_next = wanted + 1;
        let keep_from = Self::oldest_retainable(new_next, config);
        let mut skipped = Vec::new();
        let mut secret = self.secret.clone();
        // `self.next <= wanted <= u32::MAX` here, so every `j` fits in a u32.
        let mut j = u32::try_from(self.next).map_err(|_| SecretTreeError::GenerationExhausted)?;
        while j < generation {
            if u64::from(j) >= keep_from {
                skipped.push(Self::key_at(cs, &secret, j)?);
            }
            secret = Self::step(cs, &secret, j)?;
            j += 1;
        }
        let key = Self::key_at(cs, &secret, generation)?;
        let secret = Self::step(cs, &secret, generation)?;
        Ok(RatchetStep::Forward {
            key,
            skipped,
            secret,
            next: new_next,
        })
    }

    /// Applies a planned step after its key was used successfully.
    fn commit(&mut self, step: RatchetStep, config: &RatchetConfig) {
        match step {
            RatchetStep::Retained(generation) => {
                self.retained.remove(&generation);
            }
            RatchetStep::Forward {
                key: _,
                skipped,
                secret,
                next,
            } => {
                self.secret = secret;
                self.next = next;
                for key in skipped {
                    self.retained.insert(key.generation, key);
                }
                self.prune(config);
            }
        }
    }

    /// Deletes retained keys older than the window.
    fn prune(&mut self, config: &RatchetConfig) {
        let oldest = Self::oldest_retainable(self.next, config);
        match u32::try_from(oldest) {
            Ok(oldest) => self.retained = self.retained.split_off(&oldest),
            Err(_) => self.retained.clear(),
        }
    }

    /// The key of the next generation, for sending; advances the ratchet.
    fn next_key(&mut self, cs: &dyn SuiteProvider) -> Result<RatchetKey, SecretTreeError> {
        let generation =
            u32::try_from(self.next).map_err(|_| SecretTreeError::GenerationExhausted)?;
        let key = Self::key_at(cs, &self.secret, generation)?;
        self.secret = Self::step(cs, &self.secret, generation)?;
        self.next += 1;
        Ok(key)
    }

    fn retained_key<'a>(&'a self, step: &'a RatchetStep) -> Option<&'a RatchetKey> {
        match step {
            RatchetStep::Retained(generation) => self.retained.get(generation),
            RatchetStep::Forward { key, .. } => Some(key),
        }
    }
}

/// The two ratchets of one leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LeafRatchets {
    handshake: SenderRatchet,
    application: SenderRatchet,
}

impl LeafRatchets {
    fn new(cs: &dyn SuiteProvider, leaf_secret: &Secret) -> Result<Self, CryptoError> {
        Ok(Self {
            handshake: SenderRatchet::new(cs, leaf_secret, RatchetType::Handshake)?,
            application: SenderRatchet::new(cs, leaf_secret, RatchetType::Application)?,
        })
    }

    fn get(&self, kind: RatchetType) -> &SenderRatchet {
        match kind {
            RatchetType::Handshake => &self.handshake,
            RatchetType::Application => &self.application,
        }
    }

    fn get_mut(&mut self, kind: RatchetType) -> &mut SenderRatchet {
        match kind {
            RatchetType::Handshake => &mut self.handshake,
            RatchetType::Application => &mut self.application,
        }
    }
}

/// The node secrets a leaf's first use derives: the stored ancestor it starts from (deleted),
/// the off-path children (stored), and the leaf's ratchets (its own secret is deleted).
struct PathDerivation {
    consumed: NodeIndex,
    siblings: Vec<(NodeIndex, Secret)>,
    ratchets: LeafRatchets,
}

/// The secret tree of one epoch (§9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretTree {
    suite: CipherSuite,
    /// The number of leaves of the ratchet tree.
    leaf_count: u32,
    /// `leaf_count` rounded up to a power of two: the width the tree math works on.
    full_leaves: u32,
    config: RatchetConfig,
    /// Node secrets not yet consumed. Their subtrees are disjoint.
    nodes: BTreeMap<NodeIndex, Secret>,
    /// Ratchets of the leaves used so far.
    leaves: BTreeMap<LeafIndex, LeafRatchets>,
}

impl SecretTree {
    /// The secret tree of an epoch: `encryption_secret` (consumed) at the root of a tree with
    /// `leaf_count` leaves (the ratchet tree's), default [`RatchetConfig`].
    pub fn new(
        cs: &dyn SuiteProvider,
        encryption_secret: Secret,
        leaf_count: u32,
    ) -> Result<Self, SecretTreeError> {
        Self::with_config(cs, encryption_secret, leaf_count, RatchetConfig::default())
    }

    /// Like [`SecretTree::new`] with explicit ratchet bounds.
    pub fn with_config(
        cs: &dyn SuiteProvider,
        encryption_secret: Secret,
        leaf_count: u32,
        config: RatchetConfig,
    ) -> Result<Self, SecretTreeError> {
        if leaf_count == 0 || leaf_count > MAX_LEAVES {
            return Err(SecretTreeError::InvalidLeafCount(leaf_count));
        }
        let expected = cs.params().hash_len();
        if encryption_secret.len() != expected {
            return Err(SecretTreeError::InvalidSecretLength {
                expected,
                actual: encryption_secret.len(),
            });
        }
        let full_leaves = leaf_count.next_power_of_two();
        let mut nodes = BTreeMap::new();
        nodes.insert(root(full_leaves), encryption_secret);
        Ok(Self {
            suite: cs.cipher_suite(),
            leaf_count,
            full_leaves,
            config,
            nodes,
            leaves: BTreeMap::new(),
        })
    }

    /// The number of leaves.
    pub fn leaf_count(&self) -> u32 {
        self.leaf_count
    }

    /// The ratchet bounds.
    pub fn config(&self) -> RatchetConfig {
        self.config
    }

    /// How many node secrets are currently stored (for tests and metrics).
    pub fn stored_node_secrets(&self) -> usize {
        self.nodes.len()
    }

    /// How many keys of skipped generations `leaf`'s ratchet currently retains.
    pub fn retained_keys(&self, leaf: LeafIndex, kind: RatchetType) -> usize {
        self.leaves
            .get(&leaf)
            .map_or(0, |r| r.get(kind).retained.len())
    }

    fn check(&self, cs: &dyn SuiteProvider, leaf: LeafIndex) -> Result<(), SecretTreeError> {
        let actual = cs.cipher_suite();
        if actual != self.suite {
            return Err(SecretTreeError::SuiteMismatch {
                expected: self.suite,
                actual,
            });
        }
        if leaf.0 >= self.leaf_count {
            return Err(SecretTreeError::LeafOutOfRange {
                leaf,
                leaf_count: self.leaf_count,
            });
        }
        Ok(())
    }

    /// Derives (without storing anything) the secrets on the path from the nearest stored
    /// ancestor of `leaf` down to it, and the leaf's ratchets.
    fn derive_path(
        &self,
        cs: &dyn SuiteProvider,
        leaf: LeafIndex,
    ) -> Result<PathDerivation, SecretTreeError> {
        let target = leaf.node();
        // The stored ancestor (or the leaf itself) whose subtree holds the leaf.
        let mut top = target;
        let mut secret = loop {
            if let Some(secret) = self.nodes.get(&top) {
                break secret.clone();
            }
            top = top
                .parent(self.full_leaves)
                .ok_or(SecretTreeError::SecretUnavailable(leaf))?;
        };
        let nh = cs.params().hash_len();
        let mut node = top;
        let mut siblings = Vec::new();
        while node != target {
            let (left, right) = node
                .children()
                .ok_or(SecretTreeError::SecretUnavailable(leaf))?;
            let left_secret = cs.expand_with_label(secret.as_bytes(), "tree", b"left", nh)?;
            let right_secret = cs.expand_with_label(secret.as_bytes(), "tree", b"right", nh)?;
            if target.is_in_subtree_of(left) {
                siblings.push((right, right_secret));
                node = left;
                secret = left_secret;
            } else {
                siblings.push((left, left_secret));
                node = right;
                secret = right_secret;
            }
        }
        Ok(PathDerivation {
            consumed: top,
            siblings,
            ratchets: LeafRatchets::new(cs, &secret)?,
        })
    }

    /// Stores a derived path: deletes the ancestor it started from, keeps the off-path
    /// children and the leaf's ratchets.
    fn store_path(&mut self, leaf: LeafIndex, path: PathDerivation) -> &mut LeafRatchets {
        self.nodes.remove(&path.consumed);
        self.nodes.extend(path.siblings);
        self.leaves.entry(leaf).or_insert(path.ratchets)
    }

    /// The ratchets of `leaf`, deriving its path if this is its first use.
    fn ratchets_mut(
        &mut self,
        cs: &dyn SuiteProvider,
        leaf: LeafIndex,
    ) -> Result<&mut LeafRatchets, SecretTreeError> {
        if !self.leaves.contains_key(&leaf) {
            let path = self.derive_path(cs, leaf)?;
            return Ok(self.store_path(leaf, path));
        }
        self.leaves
            .get_mut(&leaf)
            .ok_or(SecretTreeError::SecretUnavailable(leaf))
    }

    /// The key and nonce for the next message `leaf` sends with the `kind` ratchet. The
    /// generation is consumed at once.
    pub fn encryption_key(
        &mut self,
        cs: &dyn SuiteProvider,
        leaf: LeafIndex,
        kind: RatchetType,
    ) -> Result<RatchetKey, SecretTreeError> {
        self.check(cs, leaf)?;
        self.ratchets_mut(cs, leaf)?.get_mut(kind).next_key(cs)
    }

    /// Like [`SecretTree::encryption_key`], but the key also stays retained (as if its
    /// generation had been skipped), so that another message from the same leaf at the same
    /// generation can still be decrypted, until [`SecretTree::delete_key`] or a decryption at
    /// that generation deletes it, or it leaves the out-of-order window. For clients that share
    /// a leaf (DESIGN §4 H3).
    pub fn encryption_key_retained(
        &mut self,
        cs: &dyn SuiteProvider,
        leaf: LeafIndex,
        kind: RatchetType,
    ) -> Result<RatchetKey, SecretTreeError> {
        self.check(cs, leaf)?;
        let config = self.config;
        let ratchet = self.ratchets_mut(cs, leaf)?.get_mut(kind);
        let key = ratchet.next_key(cs)?;
        ratchet.retained.insert(key.generation, key.clone());
        ratchet.prune(&config);
        Ok(key)
    }

    /// Deletes the retained key of `generation` of `leaf`'s `kind` ratchet, if there is one.
    /// Returns whether a key was deleted.
    pub fn delete_key(&mut self, leaf: LeafIndex, kind: RatchetType, generation: u32) -> bool {
        self.leaves
            .get_mut(&leaf)
            .and_then(|r| r.get_mut(kind).retained.remove(&generation))
            .is_some()
    }

    /// Decrypts with the key of `generation` of `leaf`'s `kind` ratchet: `open` receives the
    /// key and nonce. If `open` returns `Ok`, the key is consumed: it is deleted, the ratchet
    /// advances past `generation` (retaining the keys of skipped generations within the
    /// window), and node secrets on the leaf's path are derived and deleted per §9.2. If `open`
    /// returns `Err`, the tree is unchanged.
    ///
    /// The outer error says the key is unavailable; the inner result is `open`'s.
    pub fn decrypt_with<T, E>(
        &mut self,
        cs: &dyn SuiteProvider,
        leaf: LeafIndex,
        kind: RatchetType,
        generation: u32,
        open: impl FnOnce(&RatchetKey) -> Result<T, E>,
    ) -> Result<Result<T, E>, SecretTreeError> {
        self.check(cs, leaf)?;
        let config = self.config;
        if let Some(ratchets) = self.leaves.get(&leaf) {
            let ratchet = ratchets.get(kind);
            let step = ratchet.plan(cs, generation, &config)?;
            let key = ratchet
                .retained_key(&step)
                .ok_or(SecretTreeError::GenerationConsumed { generation })?;
            let result = open(key);
            if result.is_ok() {
                if let Some(ratchets) = self.leaves.get_mut(&leaf) {
                    ratchets.get_mut(kind).commit(step, &config);
                }
            }
            return Ok(result);
        }
        let mut path = self.derive_path(cs, leaf)?;
        let ratchet = path.ratchets.get_mut(kind);
        let step = ratchet.plan(cs, generation, &config)?;
        let key = ratchet
            .retained_key(&step)
            .ok_or(SecretTreeError::GenerationConsumed { generation })?;
        let result = open(key);
        if result.is_ok() {
            ratchet.commit(step, &config);
            self.store_path(leaf, path);
        }
        Ok(result)
    }

    /// The key of `generation` of `leaf`'s `kind` ratchet, consumed at once (use
    /// [`SecretTree::decrypt_with`] to consume it only if decryption succeeds).
    pub fn decryption_key(
        &mut self,
        cs: &dyn SuiteProvider,
        leaf: LeafIndex,
        kind: RatchetType,
        generation: u32,
    ) -> Result<RatchetKey, SecretTreeError> {
        self.decrypt_with(cs, leaf, kind, generation, |key| {
            Ok::<_, core::convert::Infallible>(key.clone())
        })?
        .map_err(|never| match never {})
    }
}

/// One sender ratchet in a [`SecretTreeSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderRatchetSnapshot {
    /// `ratchet_secret_[next]`.
    pub secret: Secret,
    /// The next generation not yet derived.
    pub next: u64,
    /// Keys retained for out-of-order messages.
    pub retained: Vec<RatchetKey>,
}

/// The whole state of a [`SecretTree`], for persistence (design hook H8). Added for the group
/// state codec; secrets stay in [`Secret`] (zeroized on drop).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretTreeSnapshot {
    /// The suite.
    pub suite: CipherSuite,
    /// The number of leaves.
    pub leaf_count: u32,
    /// Ratchet bounds.
    pub config: RatchetConfig,
    /// Stored node secrets.
    pub nodes: Vec<(NodeIndex, Secret)>,
    /// Ratchets of used leaves: (leaf, handshake, application).
    pub leaves: Vec<(LeafIndex, SenderRatchetSnapshot, SenderRatchetSnapshot)>,
}

impl SenderRatchet {
    fn snapshot(&self) -> SenderRatchetSnapshot {
        SenderRatchetSnapshot {
            secret: self.secret.clone(),
            next: self.next,
            retained: self.retained.values().cloned().collect(),
        }
    }

    fn from_snapshot(s: SenderRatchetSnapshot) -> Self {
        Self {
            secret: s.secret,
            next: s.next,
            retained: s.retained.into_iter().map(|k| (k.generation, k)).collect(),
        }
    }
}

impl SecretTree {
    /// The tree's whole state (design hook H8).
    pub fn snapshot(&self) -> SecretTreeSnapshot {
        SecretTreeSnapshot {
            suite: self.suite,
            leaf_count: self.leaf_count,
            config: self.config,
            nodes: self.nodes.iter().map(|(x, s)| (*x, s.clone())).collect(),
            leaves: self
                .leaves
                .iter()
                .map(|(l, r)| (*l, r.handshake.snapshot(), r.application.snapshot()))
                .collect(),
        }
    }

    /// Rebuilds a tree from [`SecretTree::snapshot`]. Refuses a leaf count out of range, and
    /// nodes or leaves outside the tree.
    pub fn from_snapshot(snapshot: SecretTreeSnapshot) -> Result<Self, SecretTreeError> {
        let leaf_count = snapshot.leaf_count;
        if leaf_count == 0 || leaf_count > MAX_LEAVES {
            return Err(SecretTreeError::InvalidLeafCount(leaf_count));
        }
        let full_leaves = leaf_count.next_power_of_two();
        let width = 2 * u64::from(full_leaves) - 1;
        let mut nodes = BTreeMap::new();
        for (x, secret) in snapshot.nodes {
            if u64::from(x.0) >= width {
                return Err(SecretTreeError::InvalidLeafCount(leaf_count));
            }
            nodes.insert(x, secret);
        }
        let mut leaves = BTreeMap::new();
        for (leaf, handshake, application) in snapshot.leaves {
            if leaf.0 >= leaf_count {
                return Err(SecretTreeError::LeafOutOfRange { leaf, leaf_count });
            }
            leaves.insert(
                leaf,
                LeafRatchets {
                    handshake: SenderRatchet::from_snapshot(handshake),
                    application: SenderRatchet::from_snapshot(application),
                },
            );
        }
        Ok(Self {
            suite: snapshot.suite,
            leaf_count,
            full_leaves,
            config: snapshot.config,
            nodes,
            leaves,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CryptoProvider as _, RustCrypto};

    static P: RustCrypto = RustCrypto;

    fn cs() -> &'static dyn SuiteProvider {
        P.suite(CipherSuite(1)).unwrap()
    }

    fn tree(leaves: u32) -> SecretTree {
        SecretTree::new(cs(), Secret::new(vec![42; 32]), leaves).unwrap()
    }

    /// The leaf secret computed eagerly from the root, for comparison.
    fn eager_leaf_secret(leaves: u32, leaf: u32) -> Secret {
        let cs = cs();
        let full = leaves.next_power_of_two();
        let mut node = root(full);
        let mut secret = Secret::new(vec![42; 32]);
        let target = LeafIndex(leaf).node();
        while node != target {
            let (l, r) = node.children().unwrap();
            if target.is_in_subtree_of(l) {
                secret = cs
                    .expand_with_label(secret.as_bytes(), "tree", b"left", 32)
                    .unwrap();
                node = l;
            } else {
                secret = cs
                    .expand_with_label(secret.as_bytes(), "tree", b"right", 32)
                    .unwrap();
                node = r;
            }
        }
        secret
    }

    fn eager_key(leaves: u32, leaf: u32, kind: RatchetType, generation: u32) -> RatchetKey {
        let cs = cs();
        let leaf_secret = eager_leaf_secret(leaves, leaf);
        let mut r = SenderRatchet::new(cs, &leaf_secret, kind).unwrap();
        for _ in 0..generation {
            r.next_key(cs).unwrap();
        }
        r.next_key(cs).unwrap()
    }

    #[test]
    fn lazy_matches_eager_in_any_order() {
        let mut t = tree(16);
        for leaf in [5u32, 0, 15, 6, 1] {
            for kind in [RatchetType::Application, RatchetType::Handshake] {
                let k = t.decryption_key(cs(), LeafIndex(leaf), kind, 3).unwrap();
                assert_eq!(k, eager_key(16, leaf, kind, 3));
            }
        }
        // Sending uses the same ratchet: generation 4 is next for leaf 5.
        let k = t
            .encryption_key(cs(), LeafIndex(5), RatchetType::Application)
            .unwrap();
        assert_eq!(k, eager_key(16, 5, RatchetType::Application, 4));
    }

    #[test]
    fn deletion_schedule_keeps_one_secret_per_level() {
        let mut t = tree(1 << 14);
        assert_eq!(t.stored_node_secrets(), 1);
        t.encryption_key(cs(), LeafIndex(0), RatchetType::Application)
            .unwrap();
        // The root is consumed; the 14 right siblings on the path are stored; the leaf's own
        // secret is gone (its ratchets are initialised).
        assert_eq!(t.stored_node_secrets(), 14);
        assert!(!t.nodes.contains_key(&root(1 << 14)));
        assert!(!t.nodes.contains_key(&LeafIndex(0).node()));
        // Using leaf 1 consumes its sibling, the only stored node in its subtree.
        t.encryption_key(cs(), LeafIndex(1), RatchetType::Handshake)
            .unwrap();
        assert_eq!(t.stored_node_secrets(), 13);
        // A leaf far away consumes a high node and stores siblings below it.
        t.encryption_key(cs(), LeafIndex(10_000), RatchetType::Handshake)
            .unwrap();
        for node in t.nodes.keys() {
            for used in [0u32, 1, 10_000] {
                assert!(!LeafIndex(used).node().is_in_subtree_of(*node));
            }
        }
        assert_eq!(t.leaves.len(), 3);
    }

    #[test]
    fn single_leaf_tree() {
        let mut t = tree(1);
        let k = t
            .decryption_key(cs(), LeafIndex(0), RatchetType::Handshake, 0)
            .unwrap();
        assert_eq!(k, eager_key(1, 0, RatchetType::Handshake, 0));
        assert_eq!(t.stored_node_secrets(), 0);
    }

    #[test]
    fn out_of_order_and_consumed() {
        let mut t = tree(4);
        let (leaf, kind) = (LeafIndex(2), RatchetType::Application);
        let k5 = t.decryption_key(cs(), leaf, kind, 5).unwrap();
        assert_eq!(k5, eager_key(4, 2, kind, 5));
        assert_eq!(t.retained_keys(leaf, kind), 5);
        // Skipped generations open once, out of order.
        let k2 = t.decryption_key(cs(), leaf, kind, 2).unwrap();
        assert_eq!(k2, eager_key(4, 2, kind, 2));
        assert_eq!(t.retained_keys(leaf, kind), 4);
        for g in [2, 5] {
            assert_eq!(
                t.decryption_key(cs(), leaf, kind, g),
                Err(SecretTreeError::GenerationConsumed { generation: g })
            );
        }
        // The other ratchet of the leaf is independent.
        let h0 = t
            .decryption_key(cs(), leaf, RatchetType::Handshake, 0)
            .unwrap();
        assert_eq!(h0, eager_key(4, 2, RatchetType::Handshake, 0));
        // Sending continues after the newest generation.
        assert_eq!(t.encryption_key(cs(), leaf, kind).unwrap().generation, 6);
    }

    #[test]
    fn window_bounds() {
        let config = RatchetConfig {
            out_of_order_tolerance: 3,
            maximum_forward_distance: 10,
        };
        let mut t = SecretTree::with_config(cs(), Secret::new(vec![42; 32]), 2, config).unwrap();
        let (leaf, kind) = (LeafIndex(1), RatchetType::Application);
        assert!(matches!(
            t.decryption_key(cs(), leaf, kind, 11),
            Err(SecretTreeError::GenerationTooFarAhead { generation: 11, .. })
        ));
        // The refusal changed nothing: the leaf was not even derived.
        assert_eq!(t.stored_node_secrets(), 1);
        t.decryption_key(cs(), leaf, kind, 10).unwrap();
        // Generations 8 and 9 are retained (within 3 of next = 11); 7 and below are not.
        assert_eq!(t.retained_keys(leaf, kind), 2);
        assert_eq!(
            t.decryption_key(cs(), leaf, kind, 7),
            Err(SecretTreeError::GenerationExpired {
                generation: 7,
                oldest: 8
            })
        );
        assert_eq!(
            t.decryption_key(cs(), leaf, kind, 9).unwrap(),
            eager_key(2, 1, kind, 9)
        );
        // Moving ahead prunes the old keys.
        t.decryption_key(cs(), leaf, kind, 20).unwrap();
        // 18 and 19 (20 itself is used).
        assert_eq!(t.retained_keys(leaf, kind), 2);
        assert!(matches!(
            t.decryption_key(cs(), leaf, kind, 8),
            Err(SecretTreeError::GenerationExpired { .. })
        ));
        // Zero tolerance retains nothing.
        let none = RatchetConfig {
            out_of_order_tolerance: 0,
            maximum_forward_distance: 10,
        };
        let mut t = SecretTree::with_config(cs(), Secret::new(vec![42; 32]), 2, none).unwrap();
        t.decryption_key(cs(), leaf, kind, 5).unwrap();
        assert_eq!(t.retained_keys(leaf, kind), 0);
        assert!(matches!(
            t.decryption_key(cs(), leaf, kind, 4),
            Err(SecretTreeError::GenerationExpired { .. })
        ));
    }

    #[test]
    fn failed_decryption_changes_nothing() {
        let mut t = tree(8);
        let (leaf, kind) = (LeafIndex(3), RatchetType::Handshake);
        let before = t.clone();
        let r = t
            .decrypt_with(cs(), leaf, kind, 4, |_| Err::<(), _>("bad tag"))
            .unwrap();
        assert_eq!(r, Err("bad tag"));
        assert_eq!(t, before);
        // Now succeed, then fail at a retained generation: still nothing changes.
        t.decryption_key(cs(), leaf, kind, 4).unwrap();
        let before = t.clone();
        let r = t
            .decrypt_with(cs(), leaf, kind, 1, |_| Err::<(), _>("bad tag"))
            .unwrap();
        assert!(r.is_err());
        assert_eq!(t, before);
        let r = t
            .decrypt_with(cs(), leaf, kind, 1, |k| Ok::<_, ()>(k.generation))
            .unwrap();
        assert_eq!(r, Ok(1));
        assert_eq!(
            t.decryption_key(cs(), leaf, kind, 1),
            Err(SecretTreeError::GenerationConsumed { generation: 1 })
        );
    }

    #[test]
    fn retained_send_keys_open_a_sibling_message() {
        let mut t = tree(2);
        let (leaf, kind) = (LeafIndex(0), RatchetType::Application);
        let sent = t.encryption_key_retained(cs(), leaf, kind).unwrap();
        assert_eq!(sent.generation, 0);
        assert_eq!(t.decryption_key(cs(), leaf, kind, 0).unwrap(), sent);
        let sent = t.encryption_key_retained(cs(), leaf, kind).unwrap();
        assert!(t.delete_key(leaf, kind, sent.generation));
        assert!(!t.delete_key(leaf, kind, sent.generation));
        assert_eq!(
            t.decryption_key(cs(), leaf, kind, 1),
            Err(SecretTreeError::GenerationConsumed { generation: 1 })
        );
        // A plain send is consumed at once.
        let sent = t.encryption_key(cs(), leaf, kind).unwrap();
        assert!(t.decryption_key(cs(), leaf, kind, sent.generation).is_err());
    }

    #[test]
    fn exhausted_ratchet() {
        let mut t = tree(2);
        let (leaf, kind) = (LeafIndex(0), RatchetType::Application);
        t.decryption_key(cs(), leaf, kind, 0).unwrap();
        // Jump the ratchet to the last generation by hand.
        let r = t.leaves.get_mut(&leaf).unwrap().get_mut(kind);
        r.next = u64::from(u32::MAX);
        let k = t.decryption_key(cs(), leaf, kind, u32::MAX).unwrap();
        assert_eq!(k.generation, u32::MAX);
        assert_eq!(
            t.encryption_key(cs(), leaf, kind),
            Err(SecretTreeError::GenerationExhausted)
        );
        assert!(t.decryption_key(cs(), leaf, kind, u32::MAX).is_err());
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(
            SecretTree::new(cs(), Secret::new(vec![0; 31]), 4),
            Err(SecretTreeError::InvalidSecretLength {
                expected: 32,
                actual: 31
            })
        );
        assert_eq!(
            SecretTree::new(cs(), Secret::new(vec![0; 32]), 0),
            Err(SecretTreeError::InvalidLeafCount(0))
        );
        assert!(SecretTree::new(cs(), Secret::new(vec![0; 32]), u32::MAX).is_err());
        let mut t = tree(3);
        assert_eq!(
            t.decryption_key(cs(), LeafIndex(3), RatchetType::Handshake, 0),
            Err(SecretTreeError::LeafOutOfRange {
                leaf: LeafIndex(3),
                leaf_count: 3
            })
        );
        let other = P.suite(CipherSuite(2)).unwrap();
        assert!(matches!(
            t.encryption_key(other, LeafIndex(0), RatchetType::Handshake),
            Err(SecretTreeError::SuiteMismatch { .. })
        ));
        // Three leaves use the tree shape of four.
        assert_eq!(
            t.decryption_key(cs(), LeafIndex(2), RatchetType::Handshake, 0)
                .unwrap(),
            eager_key(4, 2, RatchetType::Handshake, 0)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// Any order of requests against a model: a generation opens exactly once while it is
        /// within the window, with the key the eager derivation gives.
        #[test]
        fn random_requests_follow_the_model(
            requests in proptest::collection::vec((0u32..6, 0u32..40, proptest::bool::ANY), 1..40)
        ) {
            let config = RatchetConfig { out_of_order_tolerance: 8, maximum_forward_distance: 20 };
            let mut t = SecretTree::with_config(cs(), Secret::new(vec![42; 32]), 6, config)
                .unwrap();
            // Model per (leaf, kind): next generation and the set of used generations.
            let mut next = BTreeMap::<(u32, bool), u64>::new();
            let mut used = std::collections::BTreeSet::<(u32, bool, u32)>::new();
            for (leaf, generation, handshake) in requests {
                let kind = if handshake { RatchetType::Handshake } else { RatchetType::Application };
                let n = next.entry((leaf, handshake)).or_insert(0);
                let got = t.decryption_key(cs(), LeafIndex(leaf), kind, generation);
                let g = u64::from(generation);
                if g >= *n + 1 + u64::from(config.maximum_forward_distance) {
                    let too_far = matches!(got, Err(SecretTreeError::GenerationTooFarAhead { .. }));
                    proptest::prop_assert!(too_far);
                } else if g + u64::from(config.out_of_order_tolerance) < *n {
                    let expired = matches!(got, Err(SecretTreeError::GenerationExpired { .. }));
                    proptest::prop_assert!(expired);
                } else if used.contains(&(leaf, handshake, generation)) {
                    let consumed = matches!(got, Err(SecretTreeError::GenerationConsumed { .. }));
                    proptest::prop_assert!(consumed);
                } else {
                    proptest::prop_assert_eq!(got.unwrap(), eager_key(6, leaf, kind, generation));
                    used.insert((leaf, handshake, generation));
                    *n = (*n).max(g + 1);
                }
                for (&(l, h), &nx) in &next {
                    let kind = if h { RatchetType::Handshake } else { RatchetType::Application };
                    proptest::prop_assert!(
                        t.retained_keys(LeafIndex(l), kind) as u64
                            <= u64::from(config.out_of_order_tolerance).min(nx)
                    );
                }
            }
        }
    }

    #[test]
    fn sender_data_sample() {
        let cs = cs();
        let secret = Secret::new(vec![1; 32]);
        let long = [7u8; 50];
        let (k1, n1) = sender_data_key_nonce(cs, &secret, &long).unwrap();
        let (k2, n2) = sender_data_key_nonce(cs, &secret, &long[..32]).unwrap();
        assert_eq!((k1.len(), n1.len()), (16, 12));
        assert_eq!((&k1, &n1), (&k2, &n2));
        let (k3, _) = sender_data_key_nonce(cs, &secret, &long[..5]).unwrap();
        assert_ne!(k1, k3);
        assert!(sender_data_key_nonce(cs, &secret, &[]).is_ok());
    }
}
