//! The puncturable PRF over `epoch_base_secret` (draft §5.2, DESIGN §5 rows 2-3).
//!
//! ```text
//! tree_node_[root]_secret = epoch_base_secret
//! left(node)  secret      = ExpandWithLabel(tree_node_[node]_secret, "tree", "left",  KDF.Nh)
//! right(node) secret      = ExpandWithLabel(tree_node_[node]_secret, "tree", "right", KDF.Nh)
//! VirtualClientSecret(Input) = tree_node_[LeafNode(Input)]_secret
//! HashInput { u32 leaf_index; opaque random<V>; }
//! pprf_input = Hash(HashInput)
//! ```
//!
//! The tree is the RFC 9420 Secret Tree construction with `2^32` leaves (depth 32). The leaf
//! of an input is its first 32 bits, most significant bit first: bit `d` (from the top)
//! chooses the child at depth `d + 1`, 0 = left, 1 = right (row 2).
//!
//! A node is named by its depth `d` (0 at the root, 32 at the leaves) and its `prefix`: the
//! top `d` bits of every leaf below it. The PPRF is stored as a *frontier*: a set of node
//! secrets, none an ancestor of another, expanded lazily. Deriving a leaf punctures it: the
//! stored ancestor and every node on the way down are deleted, the children off the path are
//! kept. A leaf with no stored ancestor-or-self is punctured ([`PprfError::Punctured`]).
//!
//! A punctured state serialises (versioned, TLS presentation language) as
//!
//! ```text
//! struct { uint8 depth; uint32 prefix; opaque secret<V>; } PprfNode;
//! struct { uint16 version = 1; CipherSuite cipher_suite; PprfNode nodes<V>; } PprfState;
//! ```
//!
//! with the nodes sorted by `(depth, prefix)`. After `k` derivations at most `32 k` nodes
//! are stored.

use std::collections::BTreeMap;

use mls_engine::codec::{decode_exact, encode, CodecError};
use mls_engine::crypto::{CipherSuite, CryptoError, MlsCrypto as _, Secret, SuiteProvider};
use tls_codec::{
    SecretVLBytes, Serialize as _, Size as _, TlsDeserialize, TlsDeserializeBytes, TlsSerialize,
    TlsSize, VLBytes,
};

use crate::wire::{HashInput, RANDOM_LEN};

/// The depth of the PPRF tree: `2^32` leaves.
pub const PPRF_DEPTH: u8 = 32;

/// The version of the [`Pprf::to_bytes`] format.
pub const PPRF_STATE_VERSION: u16 = 1;

/// How many times [`sample_input`] draws a fresh `random` before giving up. With `2^32`
/// leaves, a second draw is already rare.
pub const MAX_SAMPLE_ATTEMPTS: usize = 64;

/// Why a PPRF operation failed. On every error the PPRF is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PprfError {
    /// The leaf was already derived (punctured) in this emulation epoch.
    #[error("PPRF leaf {leaf:#010x} is punctured")]
    Punctured {
        /// The leaf: the first 32 bits of the input.
        leaf: u32,
    },
    /// The input has fewer than 4 octets, so it selects no leaf.
    #[error("PPRF input of {0} octets is shorter than 4")]
    InputTooShort(usize),
    /// The PPRF was keyed for another cipher suite.
    #[error("PPRF of suite 0x{:04x} used with suite 0x{:04x}", .expected.0, .actual.0)]
    SuiteMismatch {
        /// The PPRF's suite.
        expected: CipherSuite,
        /// The suite given.
        actual: CipherSuite,
    },
    /// The serialised state has a version we do not read.
    #[error("PPRF state version {0} is not supported")]
    UnsupportedVersion(u16),
    /// The serialised state names a cipher suite the engine does not implement.
    #[error("PPRF state of unsupported cipher suite 0x{:04x}", .0 .0)]
    UnsupportedSuite(CipherSuite),
    /// The serialised state is inconsistent: a depth above 32, a prefix too large for its
    /// depth, a secret of the wrong length, or a node stored twice or with an ancestor.
    #[error("malformed PPRF state: {0}")]
    Malformed(&'static str),
    /// Every sampled `random` selected a punctured leaf.
    #[error("no unpunctured PPRF leaf found in {MAX_SAMPLE_ATTEMPTS} attempts")]
    Exhausted,
    /// The state could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A node of the tree: `(depth, prefix)`, `prefix < 2^depth`.
type NodeId = (u8, u32);

/// The top `depth` bits of `leaf`.
fn prefix_of(leaf: u32, depth: u8) -> u32 {
    if depth == 0 {
        0
    } else {
        leaf >> (u32::from(PPRF_DEPTH) - u32::from(depth))
    }
}

/// The bit of `leaf` that chooses the child below depth `depth` (0 = left).
fn bit_below(leaf: u32, depth: u8) -> u32 {
    (leaf >> (u32::from(PPRF_DEPTH) - 1 - u32::from(depth))) & 1
}

/// The leaf selected by `pprf_input`: its first 32 bits, most significant first (row 2).
pub fn leaf_of(pprf_input: &[u8]) -> Result<u32, PprfError> {
    match pprf_input.first_chunk::<4>() {
        Some(bytes) => Ok(u32::from_be_bytes(*bytes)),
        None => Err(PprfError::InputTooShort(pprf_input.len())),
    }
}

/// `pprf_input = Hash(HashInput)` with the emulation group's hash (§5.2, row 3).
pub fn pprf_input(cs: &dyn SuiteProvider, hash_input: &HashInput) -> Result<Vec<u8>, PprfError> {
    Ok(cs.hash(&encode(hash_input)?))
}

/// A PPRF keyed with one emulation epoch's `epoch_base_secret`: the frontier of node
/// secrets not yet consumed. Secrets are zeroized when deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pprf {
    suite: CipherSuite,
    /// Stored node secrets; no node is an ancestor of another.
    nodes: BTreeMap<NodeId, Secret>,
}

impl Pprf {
    /// A fresh PPRF keyed with `epoch_base_secret` of the emulation group's `suite`.
    pub fn new(suite: CipherSuite, epoch_base_secret: Secret) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert((0, 0), epoch_base_secret);
        Self { suite, nodes }
    }

    /// The emulation group's suite the PPRF derives with.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.suite
    }

    /// How many node secrets are stored.
    pub fn frontier_len(&self) -> usize {
        self.nodes.len()
    }

    /// The stored ancestor-or-self of `leaf`.
    fn stored_ancestor(&self, leaf: u32) -> Option<NodeId> {
        (0..=PPRF_DEPTH)
            .map(|d| (d, prefix_of(leaf, d)))
            .find(|id| self.nodes.contains_key(id))
    }

    /// Whether `leaf` was already derived (its secret is gone).
    pub fn is_punctured(&self, leaf: u32) -> bool {
        self.stored_ancestor(leaf).is_none()
    }

    fn check_suite(&self, cs: &dyn SuiteProvider) -> Result<(), PprfError> {
        if cs.cipher_suite() != self.suite {
            return Err(PprfError::SuiteMismatch {
                expected: self.suite,
                actual: cs.cipher_suite(),
            });
        }
        Ok(())
    }

    /// Walks from the stored ancestor of `leaf` down to it: the ancestor, the leaf secret
    /// and the children off the path.
    #[allow(clippy::type_complexity)]
    fn walk(
        &self,
        cs: &dyn SuiteProvider,
        leaf: u32,
    ) -> Result<(NodeId, Secret, Vec<(NodeId, Secret)>), PprfError> {
        self.check_suite(cs)?;
        let start = self
            .stored_ancestor(leaf)
            .ok_or(PprfError::Punctured { leaf })?;
        let mut secret = self
            .nodes
            .get(&start)
            .cloned()
            .ok_or(PprfError::Punctured { leaf })?;
        let nh = cs.params().hash_len();
        let (mut depth, mut prefix) = start;
        let mut off_path = Vec::with_capacity(usize::from(PPRF_DEPTH - depth));
        while depth < PPRF_DEPTH {
            let left = cs.expand_with_label(secret.as_bytes(), "tree", b"left", nh)?;
            let right = cs.expand_with_label(secret.as_bytes(), "tree", b"right", nh)?;
            let bit = bit_below(leaf, depth);
            depth += 1;
            prefix = (prefix << 1) | bit;
            let sibling = (depth, prefix ^ 1);
            if bit == 0 {
                off_path.push((sibling, right));
                secret = left;
            } else {
                off_path.push((sibling, left));
                secret = right;
            }
        }
        Ok((start, secret, off_path))
    }

    /// The secret of `leaf`, without puncturing it (for a receiver that must check a message
    /// before it changes any state; it then calls [`Pprf::puncture`]).
    pub fn evaluate(&self, cs: &dyn SuiteProvider, leaf: u32) -> Result<Secret, PprfError> {
        self.walk(cs, leaf).map(|(_, secret, _)| secret)
    }

    /// The secret of `leaf`, which is then punctured: a second derivation is
    /// [`PprfError::Punctured`].
    pub fn derive(&mut self, cs: &dyn SuiteProvider, leaf: u32) -> Result<Secret, PprfError> {
        let (start, secret, off_path) = self.walk(cs, leaf)?;
        self.nodes.remove(&start);
        self.nodes.extend(off_path);
        Ok(secret)
    }

    /// Punctures `leaf` without handing out its secret.
    pub fn puncture(&mut self, cs: &dyn SuiteProvider, leaf: u32) -> Result<(), PprfError> {
        self.derive(cs, leaf).map(drop)
    }

    /// `VirtualClientSecret(pprf_input)`: [`Pprf::derive`] of the leaf `pprf_input` selects.
    pub fn derive_input(
        &mut self,
        cs: &dyn SuiteProvider,
        pprf_input: &[u8],
    ) -> Result<Secret, PprfError> {
        self.derive(cs, leaf_of(pprf_input)?)
    }

    /// The punctured state as `PprfState` bytes (version [`PPRF_STATE_VERSION`]). The bytes
    /// hold the remaining secrets: store them as secretly as the PPRF itself.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PprfError> {
        let state = PprfState {
            version: PPRF_STATE_VERSION,
            cipher_suite: self.suite,
            nodes: self
                .nodes
                .iter()
                .map(|(&(depth, prefix), secret)| PprfNode {
                    depth,
                    prefix,
                    secret: SecretVLBytes::new(secret.as_bytes().to_vec()),
                })
                .collect(),
        };
        let mut out = Vec::with_capacity(state.tls_serialized_len());
        state
            .tls_serialize(&mut out)
            .map_err(|e| PprfError::Codec(e.into()))?;
        Ok(out)
    }

    /// Restores a PPRF from [`Pprf::to_bytes`], checking the version, the suite, every node's
    /// depth, prefix and secret length, and that no node is stored twice or with an ancestor.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PprfError> {
        let state: PprfState = decode_exact(bytes)?;
        if state.version != PPRF_STATE_VERSION {
            return Err(PprfError::UnsupportedVersion(state.version));
        }
        let params = state
            .cipher_suite
            .params()
            .ok_or(PprfError::UnsupportedSuite(state.cipher_suite))?;
        let nh = params.hash_len();
        let mut nodes = BTreeMap::new();
        for node in &state.nodes {
            if node.depth > PPRF_DEPTH {
                return Err(PprfError::Malformed("node depth above 32"));
            }
            if node.depth < PPRF_DEPTH && node.prefix >> node.depth != 0 {
                return Err(PprfError::Malformed("node prefix too large for its depth"));
            }
            if node.secret.as_slice().len() != nh {
                return Err(PprfError::Malformed("node secret of the wrong length"));
            }
            let secret = Secret::new(node.secret.as_slice().to_vec());
            if nodes.insert((node.depth, node.prefix), secret).is_some() {
                return Err(PprfError::Malformed("node stored twice"));
            }
        }
        for &(depth, prefix) in nodes.keys() {
            // Any leaf below the node: its prefix followed by zero bits.
            let leaf = if depth == 0 {
                0
            } else {
                prefix << (u32::from(PPRF_DEPTH) - u32::from(depth))
            };
            if (0..depth).any(|d| nodes.contains_key(&(d, prefix_of(leaf, d)))) {
                return Err(PprfError::Malformed("node stored with an ancestor"));
            }
        }
        Ok(Self {
            suite: state.cipher_suite,
            nodes,
        })
    }
}

/// `PprfNode` of the serialised state.
#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct PprfNode {
    depth: u8,
    prefix: u32,
    secret: SecretVLBytes,
}

/// Redacted: shows the node, never its secret.
impl core::fmt::Debug for PprfNode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PprfNode({}, {:#x}, redacted)", self.depth, self.prefix)
    }
}

/// `PprfState`: the serialised frontier.
#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct PprfState {
    version: u16,
    cipher_suite: CipherSuite,
    nodes: Vec<PprfNode>,
}

/// A sender's fresh PPRF input (row 3): the `random` it sampled, the `pprf_input` and the
/// leaf it selects, which is not punctured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampledInput {
    /// The [`RANDOM_LEN`] random octets of the `HashInput`.
    pub random: Vec<u8>,
    /// `Hash(HashInput)`.
    pub pprf_input: Vec<u8>,
    /// The leaf `pprf_input` selects.
    pub leaf: u32,
}

/// Samples `random` for the emulator client at `leaf_index` of the emulation group, drawing
/// again while the selected leaf is already punctured (row 3). `cs` is the emulation
/// group's suite.
pub fn sample_input(
    pprf: &Pprf,
    cs: &dyn SuiteProvider,
    leaf_index: u32,
) -> Result<SampledInput, PprfError> {
    pprf.check_suite(cs)?;
    for _ in 0..MAX_SAMPLE_ATTEMPTS {
        let random = cs.random_vec(RANDOM_LEN)?;
        let input = pprf_input(
            cs,
            &HashInput {
                leaf_index,
                random: VLBytes::new(random.clone()),
            },
        )?;
        let leaf = leaf_of(&input)?;
        if !pprf.is_punctured(leaf) {
            return Ok(SampledInput {
                random,
                pprf_input: input,
                leaf,
            });
        }
    }
    Err(PprfError::Exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mls_engine::crypto::{CryptoProvider as _, RustCrypto};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn cs() -> &'static dyn SuiteProvider {
        RustCrypto.suite(CipherSuite(1)).unwrap()
    }

    /// The leaf secret computed from the root along the whole path, with no frontier.
    fn reference(root: &[u8], leaf: u32) -> Secret {
        let cs = cs();
        let mut s = Secret::new(root.to_vec());
        for d in 0..PPRF_DEPTH {
            let label: &[u8] = if bit_below(leaf, d) == 0 {
                b"left"
            } else {
                b"right"
            };
            s = cs
                .expand_with_label(s.as_bytes(), "tree", label, 32)
                .unwrap();
        }
        s
    }

    #[test]
    fn leaf_selection_is_msb_first() {
        assert_eq!(leaf_of(&[0x80, 0, 0, 1, 0xff]).unwrap(), 0x8000_0001);
        assert_eq!(leaf_of(&[1, 2, 3]), Err(PprfError::InputTooShort(3)));
        assert_eq!(bit_below(0x8000_0000, 0), 1);
        assert_eq!(bit_below(0x8000_0000, 1), 0);
        assert_eq!(bit_below(1, 31), 1);
        assert_eq!(prefix_of(0xF000_0000, 4), 0xF);
        assert_eq!(prefix_of(0xF000_0000, 0), 0);
        assert_eq!(prefix_of(0xF000_0001, 32), 0xF000_0001);
    }

    #[test]
    fn first_bit_zero_goes_left() {
        // Leaf 0 is the all-left path; leaf 2^32-1 the all-right path.
        let root = [9u8; 32];
        let cs = cs();
        let mut left = Secret::new(root.to_vec());
        let mut right = Secret::new(root.to_vec());
        for _ in 0..32 {
            left = cs
                .expand_with_label(left.as_bytes(), "tree", b"left", 32)
                .unwrap();
            right = cs
                .expand_with_label(right.as_bytes(), "tree", b"right", 32)
                .unwrap();
        }
        let mut p = Pprf::new(CipherSuite(1), Secret::new(root.to_vec()));
        assert_eq!(p.derive(cs, 0).unwrap(), left);
        assert_eq!(p.derive(cs, u32::MAX).unwrap(), right);
    }

    #[test]
    fn derive_punctures_and_keeps_the_rest() {
        let cs = cs();
        let root = [1u8; 32];
        let mut p = Pprf::new(CipherSuite(1), Secret::new(root.to_vec()));
        assert_eq!(p.evaluate(cs, 5).unwrap(), reference(&root, 5));
        assert!(!p.is_punctured(5));
        assert_eq!(p.derive(cs, 5).unwrap(), reference(&root, 5));
        assert_eq!(p.frontier_len(), 32);
        assert!(p.is_punctured(5));
        let before = p.clone();
        assert_eq!(p.derive(cs, 5), Err(PprfError::Punctured { leaf: 5 }));
        assert_eq!(p.evaluate(cs, 5), Err(PprfError::Punctured { leaf: 5 }));
        assert_eq!(p, before);
        assert_eq!(p.derive(cs, 4).unwrap(), reference(&root, 4));
        // 4 was the sibling leaf of 5: it is gone with nothing new.
        assert_eq!(p.frontier_len(), 31);
        assert_eq!(p.derive(cs, 6).unwrap(), reference(&root, 6));
        assert_eq!(
            p.derive_input(cs, &[0, 0, 0, 6, 1, 2]),
            Err(PprfError::Punctured { leaf: 6 })
        );
        let other = RustCrypto.suite(CipherSuite(2)).unwrap();
        assert!(matches!(
            p.derive(other, 7),
            Err(PprfError::SuiteMismatch { .. })
        ));
    }

    #[test]
    fn state_layout_and_bad_states() {
        let p = Pprf::new(CipherSuite(1), Secret::new(vec![0xab; 32]));
        let bytes = p.to_bytes().unwrap();
        let mut expected = vec![0x00, 0x01, 0x00, 0x01, 0x26, 0x00, 0, 0, 0, 0, 0x20];
        expected.extend_from_slice(&[0xab; 32]);
        assert_eq!(bytes, expected);
        assert_eq!(Pprf::from_bytes(&bytes).unwrap(), p);

        let mut v2 = bytes.clone();
        v2[1] = 2;
        assert_eq!(Pprf::from_bytes(&v2), Err(PprfError::UnsupportedVersion(2)));
        let mut suite = bytes.clone();
        suite[3] = 9;
        assert_eq!(
            Pprf::from_bytes(&suite),
            Err(PprfError::UnsupportedSuite(CipherSuite(9)))
        );
        let mut deep = bytes.clone();
        deep[5] = 33;
        assert!(matches!(
            Pprf::from_bytes(&deep),
            Err(PprfError::Malformed(_))
        ));
        let mut prefix = bytes.clone();
        prefix[9] = 1;
        assert!(matches!(
            Pprf::from_bytes(&prefix),
            Err(PprfError::Malformed(_))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Pprf::from_bytes(&trailing),
            Err(PprfError::Codec(_))
        ));
        assert!(matches!(
            Pprf::from_bytes(&bytes[..20]),
            Err(PprfError::Codec(_))
        ));

        // A node stored with its ancestor (the root plus (1, 0)).
        let mut two = vec![0x00, 0x01, 0x00, 0x01, 0x40, 0x4c];
        two.extend_from_slice(&[0, 0, 0, 0, 0, 0x20]);
        two.extend_from_slice(&[0xab; 32]);
        two.extend_from_slice(&[1, 0, 0, 0, 0, 0x20]);
        two.extend_from_slice(&[0xab; 32]);
        assert_eq!(
            Pprf::from_bytes(&two),
            Err(PprfError::Malformed("node stored with an ancestor"))
        );
        // A secret of the wrong length.
        let short = vec![0x00, 0x01, 0x00, 0x01, 0x06, 0, 0, 0, 0, 0, 0x00];
        assert_eq!(
            Pprf::from_bytes(&short),
            Err(PprfError::Malformed("node secret of the wrong length"))
        );
    }

    #[test]
    fn sampled_inputs_avoid_punctured_leaves() {
        let cs = cs();
        let mut p = Pprf::new(CipherSuite(1), Secret::new(vec![3; 32]));
        for _ in 0..20 {
            let s = sample_input(&p, cs, 2).unwrap();
            assert_eq!(s.random.len(), RANDOM_LEN);
            let hash_input = HashInput {
                leaf_index: 2,
                random: VLBytes::new(s.random.clone()),
            };
            assert_eq!(pprf_input(cs, &hash_input).unwrap(), s.pprf_input);
            assert_eq!(leaf_of(&s.pprf_input).unwrap(), s.leaf);
            assert!(!p.is_punctured(s.leaf));
            p.derive_input(cs, &s.pprf_input).unwrap();
            assert!(p.is_punctured(s.leaf));
        }
    }

    /// Suite 1 whose randomness is scripted: each `fill_random` takes the next queued value
    /// (the last one repeats).
    struct Scripted(std::sync::Mutex<Vec<Vec<u8>>>);

    impl SuiteProvider for Scripted {
        fn params(&self) -> mls_engine::crypto::SuiteParams {
            cs().params()
        }
        fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
            let mut queue = self.0.lock().unwrap();
            let next = if queue.len() > 1 {
                queue.remove(0)
            } else {
                queue[0].clone()
            };
            out.copy_from_slice(&next);
            Ok(())
        }
        fn hash(&self, data: &[u8]) -> Vec<u8> {
            cs().hash(data)
        }
        fn kdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Secret {
            cs().kdf_extract(salt, ikm)
        }
        fn kdf_expand(&self, prk: &[u8], info: &[u8], len: usize) -> Result<Secret, CryptoError> {
            cs().kdf_expand(prk, info, len)
        }
        fn mac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
            cs().mac(key, data)
        }
        fn aead_seal(
            &self,
            k: &[u8],
            n: &[u8],
            a: &[u8],
            p: &[u8],
        ) -> Result<Vec<u8>, CryptoError> {
            cs().aead_seal(k, n, a, p)
        }
        fn aead_open(
            &self,
            k: &[u8],
            n: &[u8],
            a: &[u8],
            c: &[u8],
        ) -> Result<Vec<u8>, CryptoError> {
            cs().aead_open(k, n, a, c)
        }
        fn hpke_seal(
            &self,
            pk: &[u8],
            info: &[u8],
            aad: &[u8],
            pt: &[u8],
        ) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
            cs().hpke_seal(pk, info, aad, pt)
        }
        fn hpke_open(
            &self,
            sk: &mls_engine::crypto::HpkePrivateKey,
            kem_output: &[u8],
            info: &[u8],
            aad: &[u8],
            ct: &[u8],
        ) -> Result<Vec<u8>, CryptoError> {
            cs().hpke_open(sk, kem_output, info, aad, ct)
        }
        fn hpke_setup_sender_and_export(
            &self,
            pk: &[u8],
            info: &[u8],
            ctx: &[u8],
            len: usize,
        ) -> Result<(Vec<u8>, Secret), CryptoError> {
            cs().hpke_setup_sender_and_export(pk, info, ctx, len)
        }
        fn hpke_setup_sender_and_export_derived(
            &self,
            pk: &[u8],
            ikm_e: &[u8],
            info: &[u8],
            ctx: &[u8],
            len: usize,
        ) -> Result<(Vec<u8>, Secret), CryptoError> {
            cs().hpke_setup_sender_and_export_derived(pk, ikm_e, info, ctx, len)
        }
        fn hpke_setup_receiver_and_export(
            &self,
            sk: &mls_engine::crypto::HpkePrivateKey,
            kem_output: &[u8],
            info: &[u8],
            ctx: &[u8],
            len: usize,
        ) -> Result<Secret, CryptoError> {
            cs().hpke_setup_receiver_and_export(sk, kem_output, info, ctx, len)
        }
        fn hpke_derive_key_pair(
            &self,
            ikm: &[u8],
        ) -> Result<mls_engine::crypto::HpkeKeyPair, CryptoError> {
            cs().hpke_derive_key_pair(ikm)
        }
        fn hpke_public_key(
            &self,
            sk: &mls_engine::crypto::HpkePrivateKey,
        ) -> Result<Vec<u8>, CryptoError> {
            cs().hpke_public_key(sk)
        }
        fn signature_key_pair_from_seed(
            &self,
            seed: &[u8],
        ) -> Result<mls_engine::crypto::SignatureKeyPair, CryptoError> {
            cs().signature_key_pair_from_seed(seed)
        }
        fn signature_public_key(
            &self,
            sk: &mls_engine::crypto::SignaturePrivateKey,
        ) -> Result<Vec<u8>, CryptoError> {
            cs().signature_public_key(sk)
        }
        fn sign(
            &self,
            sk: &mls_engine::crypto::SignaturePrivateKey,
            m: &[u8],
        ) -> Result<Vec<u8>, CryptoError> {
            cs().sign(sk, m)
        }
        fn verify(&self, pk: &[u8], m: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
            cs().verify(pk, m, sig)
        }
    }

    #[test]
    fn sender_resamples_a_punctured_leaf() {
        let first = vec![1u8; RANDOM_LEN];
        let second = vec![2u8; RANDOM_LEN];
        let leaf_of_random = |r: &[u8]| {
            let input = pprf_input(
                cs(),
                &HashInput {
                    leaf_index: 4,
                    random: VLBytes::new(r.to_vec()),
                },
            )
            .unwrap();
            leaf_of(&input).unwrap()
        };
        let mut p = Pprf::new(CipherSuite(1), Secret::new(vec![3; 32]));
        p.puncture(cs(), leaf_of_random(&first)).unwrap();
        let scripted = Scripted(std::sync::Mutex::new(vec![first.clone(), second.clone()]));
        let s = sample_input(&p, &scripted, 4).unwrap();
        assert_eq!(s.random, second);
        assert_eq!(s.leaf, leaf_of_random(&second));
        // Only punctured leaves on offer: a typed error after MAX_SAMPLE_ATTEMPTS draws.
        let stuck = Scripted(std::sync::Mutex::new(vec![first]));
        assert_eq!(sample_input(&p, &stuck, 4), Err(PprfError::Exhausted));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Derive(u32),
        Evaluate(u32),
        Serialise,
    }

    /// Leaves that share long prefixes (so puncturings interact) and arbitrary ones.
    fn leaf() -> impl Strategy<Value = u32> {
        prop_oneof![
            0u32..16,
            (0u32..16).prop_map(|x| u32::MAX - x),
            (0u32..16).prop_map(|x| 0x8000_0000 ^ x),
            any::<u32>(),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => leaf().prop_map(Op::Derive),
            1 => leaf().prop_map(Op::Evaluate),
            1 => Just(Op::Serialise),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn pprf_matches_model(root in any::<[u8; 32]>(), ops in proptest::collection::vec(op(), 1..40)) {
            let cs = cs();
            let mut p = Pprf::new(CipherSuite(1), Secret::new(root.to_vec()));
            let mut punctured = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Derive(leaf) => {
                        let got = p.derive(cs, leaf);
                        if punctured.insert(leaf) {
                            prop_assert_eq!(got.unwrap(), reference(&root, leaf));
                        } else {
                            prop_assert_eq!(got, Err(PprfError::Punctured { leaf }));
                        }
                    }
                    Op::Evaluate(leaf) => {
                        let got = p.evaluate(cs, leaf);
                        if punctured.contains(&leaf) {
                            prop_assert_eq!(got, Err(PprfError::Punctured { leaf }));
                        } else {
                            prop_assert_eq!(got.unwrap(), reference(&root, leaf));
                        }
                    }
                    Op::Serialise => {
                        let bytes = p.to_bytes().unwrap();
                        let back = Pprf::from_bytes(&bytes).unwrap();
                        prop_assert_eq!(&back, &p);
                        p = back;
                    }
                }
                for &leaf in &punctured {
                    prop_assert!(p.is_punctured(leaf));
                }
                prop_assert!(p.frontier_len() <= 32 * punctured.len().max(1));
            }
        }
    }
}
