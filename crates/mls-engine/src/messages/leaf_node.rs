//! LeafNode creation (RFC 9420 §7.2) and validation (§7.3).
//!
//! Creation: [`LeafNodeParams`] holds the credential, base capabilities and extensions;
//! [`LeafNodeParams::build`] completes the capabilities (see
//! [`complete_capabilities`]), sets the source for a [`LeafNodeTarget`] (KeyPackage, Update
//! proposal, Commit UpdatePath) and signs with `LeafNode::sign`. The HPKE key pair comes from a
//! [`HpkeKeySource`] (fresh, seed, or given pair) and the signature key pair is given.
//!
//! Validation: [`validate_leaf_node`] runs every check of §7.3 (plus the §7.2 rule on the
//! credential type, §13.4 on extensions, and the Commit-specific §12.4.2 rule on the
//! `encryption_key`), each failure a distinct [`LeafNodeValidationError`] variant. What the
//! check needs to know about the group comes in a [`LeafNodeValidationContext`]; where the leaf
//! appears comes in a [`LeafNodeOrigin`].

use crate::codec::{
    Capabilities, CipherSuite, Credential, CredentialType, Extension, ExtensionType, HpkePublicKey,
    LeafNode, LeafNodeSource, LeafSignatureError, Lifetime, ProposalType, ProtocolVersion,
    SignaturePublicKey, VLBytes,
};
use crate::crypto::{HpkePrivateKey, SignatureKeyPair, SuiteProvider};

use super::capabilities::{
    complete_capabilities, default_capabilities, first_duplicate, supports_extension,
    GroupRequirements, Unsupported,
};
use super::identity::{CredentialError, IdentityProvider};
use super::{check_signature_key_pair, hpke_public_key_well_formed, CreationError, HpkeKeySource};

// ---------------------------------------------------------------------------------------------
// Creation
// ---------------------------------------------------------------------------------------------

/// What a new LeafNode is for, with the source-specific values (§7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafNodeTarget<'a> {
    /// A KeyPackage: `leaf_node_source = key_package` with `lifetime`.
    KeyPackage {
        /// The validity of the leaf (seconds since the Unix epoch).
        lifetime: Lifetime,
    },
    /// An Update proposal: `leaf_node_source = update`, signed in the context of the group.
    Update {
        /// The group's ID.
        group_id: &'a [u8],
        /// The sender's leaf index.
        leaf_index: u32,
    },
    /// The leaf of a Commit's UpdatePath: `leaf_node_source = commit` with its parent hash.
    Commit {
        /// The group's ID.
        group_id: &'a [u8],
        /// The committer's leaf index.
        leaf_index: u32,
        /// The parent hash of the leaf (§7.9).
        parent_hash: Vec<u8>,
    },
}

/// The inputs of a new LeafNode other than its keys and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafNodeParams {
    /// The member's credential.
    pub credential: Credential,
    /// Base capabilities; completed at build time (see [`complete_capabilities`]).
    pub capabilities: Capabilities,
    /// Leaf extensions (types must not repeat, §13.4).
    pub extensions: Vec<Extension>,
}

impl LeafNodeParams {
    /// A leaf with `credential`, the [`default_capabilities`] of `cipher_suite` and no
    /// extensions.
    pub fn new(cipher_suite: CipherSuite, credential: Credential) -> Self {
        Self {
            credential,
            capabilities: default_capabilities(cipher_suite),
            extensions: Vec::new(),
        }
    }

    /// Adds a leaf extension (its type is added to the capabilities if non-default).
    pub fn extension(mut self, extension: Extension) -> Self {
        self.extensions.push(extension);
        self
    }

    /// Lists non-default extension types the client supports.
    pub fn supported_extension_types(
        mut self,
        types: impl IntoIterator<Item = ExtensionType>,
    ) -> Self {
        self.capabilities.extensions.extend(types);
        self
    }

    /// Lists non-default proposal types the client supports.
    pub fn supported_proposal_types(
        mut self,
        types: impl IntoIterator<Item = ProposalType>,
    ) -> Self {
        self.capabilities.proposals.extend(types);
        self
    }

    /// Lists further credential types the client supports.
    pub fn supported_credential_types(
        mut self,
        types: impl IntoIterator<Item = CredentialType>,
    ) -> Self {
        self.capabilities.credentials.extend(types);
        self
    }

    /// Lists further cipher suites the client supports.
    pub fn supported_cipher_suites(
        mut self,
        suites: impl IntoIterator<Item = CipherSuite>,
    ) -> Self {
        self.capabilities.cipher_suites.extend(suites);
        self
    }

    /// The completed capabilities of the leaf for `cipher_suite`, also covering the
    /// non-default types of `more_extensions` (a KeyPackage's own extensions).
    pub(crate) fn completed_capabilities(
        &self,
        cipher_suite: CipherSuite,
        more_extensions: &[Extension],
    ) -> Capabilities {
        complete_capabilities(
            self.capabilities.clone(),
            cipher_suite,
            self.credential.credential_type(),
            self.extensions
                .iter()
                .chain(more_extensions)
                .map(|e| e.extension_type),
        )
    }

    /// Builds and signs the LeafNode for `target` with the encryption key pair from
    /// `encryption_key` and the given `signature_key` pair. Returns the leaf and the private
    /// key of its `encryption_key`.
    pub fn build(
        &self,
        suite: &dyn SuiteProvider,
        target: LeafNodeTarget<'_>,
        encryption_key: HpkeKeySource,
        signature_key: &SignatureKeyPair,
    ) -> Result<(LeafNode, HpkePrivateKey), CreationError> {
        self.build_with_capabilities(
            suite,
            target,
            encryption_key,
            signature_key,
            self.completed_capabilities(suite.cipher_suite(), &[]),
        )
    }

    /// [`Self::build`] with a freshly generated encryption key pair.
    pub fn build_fresh(
        &self,
        suite: &dyn SuiteProvider,
        target: LeafNodeTarget<'_>,
        signature_key: &SignatureKeyPair,
    ) -> Result<(LeafNode, HpkePrivateKey), CreationError> {
        self.build(suite, target, HpkeKeySource::Generate, signature_key)
    }

    pub(crate) fn build_with_capabilities(
        &self,
        suite: &dyn SuiteProvider,
        target: LeafNodeTarget<'_>,
        encryption_key: HpkeKeySource,
        signature_key: &SignatureKeyPair,
        capabilities: Capabilities,
    ) -> Result<(LeafNode, HpkePrivateKey), CreationError> {
        if let Some(duplicate) = first_duplicate(&self.extensions) {
            return Err(CreationError::DuplicateExtension(duplicate));
        }
        check_signature_key_pair(suite, signature_key)?;
        let encryption = encryption_key.into_key_pair(suite)?;
        let (leaf_node_source, group_id, leaf_index) = match target {
            LeafNodeTarget::KeyPackage { lifetime } => {
                (LeafNodeSource::KeyPackage(lifetime), &[][..], 0)
            }
            LeafNodeTarget::Update {
                group_id,
                leaf_index,
            } => (LeafNodeSource::Update, group_id, leaf_index),
            LeafNodeTarget::Commit {
                group_id,
                leaf_index,
                parent_hash,
            } => (
                LeafNodeSource::Commit(VLBytes::new(parent_hash)),
                group_id,
                leaf_index,
            ),
        };
        let mut leaf = LeafNode {
            encryption_key: HpkePublicKey::from(encryption.public_key.clone()),
            signature_key: SignaturePublicKey::from(signature_key.public_key.clone()),
            credential: self.credential.clone(),
            capabilities,
            leaf_node_source,
            extensions: self.extensions.clone(),
            signature: VLBytes::new(Vec::new()),
        };
        leaf.sign(suite, &signature_key.private_key, group_id, leaf_index)?;
        Ok((leaf, encryption.private_key.clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// Validation inputs
// ---------------------------------------------------------------------------------------------

/// The three `LeafNodeSource` values (§7.2), without their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeafNodeSourceKind {
    /// `key_package`.
    KeyPackage,
    /// `update`.
    Update,
    /// `commit`.
    Commit,
}

impl LeafNodeSourceKind {
    /// The kind of `source`.
    pub fn of(source: &LeafNodeSource) -> Self {
        match source {
            LeafNodeSource::KeyPackage(_) => Self::KeyPackage,
            LeafNodeSource::Update => Self::Update,
            LeafNodeSource::Commit(_) => Self::Commit,
        }
    }
}

/// Where a LeafNode being validated appears (§7.3 "Verify the `leaf_node_source` field").
#[derive(Debug, Clone, Copy)]
pub enum LeafNodeOrigin<'a> {
    /// In a KeyPackage (downloaded, or in an Add proposal): source must be `key_package`.
    KeyPackage,
    /// In an Update proposal from `leaf_index`, replacing `replaced`: source must be
    /// `update`, and the `encryption_key` must differ from `replaced`'s.
    Update {
        /// The group's ID (signature context).
        group_id: &'a [u8],
        /// The sender's leaf index (signature context).
        leaf_index: u32,
        /// The sender's current leaf.
        replaced: &'a LeafNode,
    },
    /// In the UpdatePath of a Commit from `leaf_index`: source must be `commit`. `replaced`
    /// is the committer's current leaf (none for an external Commit without a Remove; for an
    /// external Commit that removes an old version of the joiner, that removed leaf, §12.2):
    /// the `encryption_key` must differ from it (§12.4.2) and the credential must be an
    /// acceptable successor of its credential.
    Commit {
        /// The group's ID (signature context).
        group_id: &'a [u8],
        /// The committer's leaf index (signature context).
        leaf_index: u32,
        /// The leaf being replaced, if any.
        replaced: Option<&'a LeafNode>,
    },
    /// A leaf at `leaf_index` of a ratchet tree being validated (joining, or after a
    /// Commit): any source is accepted; the leaf itself is excluded from the uniqueness checks.
    RatchetTree {
        /// The group's ID (signature context for `update`/`commit` leaves).
        group_id: &'a [u8],
        /// The leaf's index.
        leaf_index: u32,
    },
}

impl LeafNodeOrigin<'_> {
    fn expected_source(&self) -> Option<LeafNodeSourceKind> {
        match self {
            LeafNodeOrigin::KeyPackage => Some(LeafNodeSourceKind::KeyPackage),
            LeafNodeOrigin::Update { .. } => Some(LeafNodeSourceKind::Update),
            LeafNodeOrigin::Commit { .. } => Some(LeafNodeSourceKind::Commit),
            LeafNodeOrigin::RatchetTree { .. } => None,
        }
    }

    fn signature_context(&self) -> (&[u8], u32) {
        match *self {
            LeafNodeOrigin::KeyPackage => (&[], 0),
            LeafNodeOrigin::Update {
                group_id,
                leaf_index,
                ..
            }
            | LeafNodeOrigin::Commit {
                group_id,
                leaf_index,
                ..
            }
            | LeafNodeOrigin::RatchetTree {
                group_id,
                leaf_index,
            } => (group_id, leaf_index),
        }
    }

    fn replaced(&self) -> Option<&LeafNode> {
        match *self {
            LeafNodeOrigin::Update { replaced, .. } => Some(replaced),
            LeafNodeOrigin::Commit { replaced, .. } => replaced,
            _ => None,
        }
    }

    /// (leaf excluded from the signature-key check, from the encryption-key check).
    fn uniqueness_exceptions(&self) -> (Option<u32>, Option<u32>) {
        match *self {
            LeafNodeOrigin::KeyPackage => (None, None),
            // The member may keep its signature key; its new encryption key must be new
            // everywhere, its own current leaf included.
            LeafNodeOrigin::Update { leaf_index, .. }
            | LeafNodeOrigin::Commit { leaf_index, .. } => (Some(leaf_index), None),
            LeafNodeOrigin::RatchetTree { leaf_index, .. } => (Some(leaf_index), Some(leaf_index)),
        }
    }
}

/// Lookups into the group's ratchet tree for §7.3 "Verify that the following fields are
/// unique among the members of the group: `signature_key`, `encryption_key`" (and §12.4.2:
/// UpdatePath keys appear in no node of the new tree). The ratchet tree implements this; the
/// caller passes the tree the leaf will join (for a Commit's UpdatePath: the tree after the
/// proposals are applied, before the path is merged).
pub trait KeyUniqueness {
    /// Whether a leaf other than `except_leaf` has `signature_key`.
    fn signature_key_in_use(
        &self,
        signature_key: &SignaturePublicKey,
        except_leaf: Option<u32>,
    ) -> bool;

    /// Whether a node (leaf or parent) other than the leaf `except_leaf` has `encryption_key`.
    fn encryption_key_in_use(
        &self,
        encryption_key: &HpkePublicKey,
        except_leaf: Option<u32>,
    ) -> bool;
}

/// A [`KeyUniqueness`] for a group with no other members: no key is in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoOtherMembers;

impl KeyUniqueness for NoOtherMembers {
    fn signature_key_in_use(&self, _: &SignaturePublicKey, _: Option<u32>) -> bool {
        false
    }

    fn encryption_key_in_use(&self, _: &HpkePublicKey, _: Option<u32>) -> bool {
        false
    }
}

/// Leaves by leaf index (`None` = blank leaf), scanned linearly; parent nodes are not
/// covered. For tests and small groups; the ratchet tree provides an indexed implementation.
impl KeyUniqueness for Vec<Option<LeafNode>> {
    fn signature_key_in_use(&self, key: &SignaturePublicKey, except_leaf: Option<u32>) -> bool {
        self.iter().enumerate().any(|(i, leaf)| {
            Some(i as u64) != except_leaf.map(u64::from)
                && leaf.as_ref().is_some_and(|l| &l.signature_key == key)
        })
    }

    fn encryption_key_in_use(&self, key: &HpkePublicKey, except_leaf: Option<u32>) -> bool {
        self.iter().enumerate().any(|(i, leaf)| {
            Some(i as u64) != except_leaf.map(u64::from)
                && leaf.as_ref().is_some_and(|l| &l.encryption_key == key)
        })
    }
}

/// The credential types of the group's other members (§7.3: the leaf's credential type must
/// be supported by all members, and the leaf must support all credential types in use). "Other
/// members" excludes the leaf being validated and the leaf it replaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberCredentialTypes {
    /// The distinct credential types the other members' credentials have.
    pub in_use: Vec<CredentialType>,
    /// The credential types every other member lists in its capabilities; `None` when there
    /// is no other member.
    pub supported_by_all: Option<Vec<CredentialType>>,
}

impl MemberCredentialTypes {
    /// No other members: nothing to check.
    pub const fn none() -> Self {
        Self {
            in_use: Vec::new(),
            supported_by_all: None,
        }
    }

    /// Computed from the other members' leaves.
    pub fn from_leaves<'l>(leaves: impl IntoIterator<Item = &'l LeafNode>) -> Self {
        let mut out = Self::none();
        for leaf in leaves {
            let used = leaf.credential.credential_type();
            if !out.in_use.contains(&used) {
                out.in_use.push(used);
            }
            let supported = &leaf.capabilities.credentials;
            match &mut out.supported_by_all {
                None => {
                    let mut all = supported.clone();
                    all.sort_unstable();
                    all.dedup();
                    out.supported_by_all = Some(all);
                }
                Some(all) => all.retain(|t| supported.contains(t)),
            }
        }
        out
    }
}

/// Whether and when to check a `key_package` leaf's `lifetime` (§7.3: MUST for leaves in
/// messages the client sends, RECOMMENDED for leaves it receives: the caller chooses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifetimeCheck {
    /// Check that `not_before <= now <= not_after`, `now` in seconds since the Unix epoch.
    At(u64),
    /// Check that `not_before - tolerance <= now <= not_after + tolerance`: the same with a
    /// clock-skew allowance of `tolerance` seconds either way (`GroupConfig::
    /// lifetime_tolerance`; docs/decisions.md E-vc21).
    Within {
        /// Seconds since the Unix epoch.
        now: u64,
        /// The allowed clock skew, in seconds.
        tolerance: u64,
    },
    /// Do not check the lifetime against a time (for example for the leaves of a received
    /// ratchet tree, which may have expired since they were added).
    Skip,
}

static NO_REQUIREMENTS: GroupRequirements = GroupRequirements::none();
static NO_MEMBER_CREDENTIALS: MemberCredentialTypes = MemberCredentialTypes::none();

/// What LeafNode validation needs to know about the group (§7.3). The group's cipher suite is
/// that of the [`SuiteProvider`] passed to [`validate_leaf_node`].
#[derive(Clone, Copy)]
pub struct LeafNodeValidationContext<'a> {
    /// The group's protocol version (must be in the leaf's capabilities).
    pub version: ProtocolVersion,
    /// The lifetime check of `key_package` leaves.
    pub lifetime: LifetimeCheck,
    /// The application's maximum total lifetime (`not_after - not_before`, seconds) of a
    /// `key_package` leaf (§7.2: "Applications MUST define a maximum total lifetime"); `None`
    /// accepts any.
    pub max_lifetime: Option<u64>,
    /// The group's required capabilities and extensions in use.
    pub requirements: &'a GroupRequirements,
    /// The other members' credential types.
    pub member_credential_types: &'a MemberCredentialTypes,
    /// The Authentication Service.
    pub identity_provider: &'a dyn IdentityProvider,
    /// Key lookups into the ratchet tree.
    pub key_uniqueness: &'a dyn KeyUniqueness,
}

impl<'a> LeafNodeValidationContext<'a> {
    /// A context for an `mls10` group with no requirements and no other members, checking
    /// lifetimes at `now` with no maximum total lifetime.
    pub fn new(identity_provider: &'a dyn IdentityProvider, now: u64) -> Self {
        Self {
            version: ProtocolVersion::MLS10,
            lifetime: LifetimeCheck::At(now),
            max_lifetime: None,
            requirements: &NO_REQUIREMENTS,
            member_credential_types: &NO_MEMBER_CREDENTIALS,
            identity_provider,
            key_uniqueness: &NoOtherMembers,
        }
    }

    /// Sets the group's requirements.
    pub fn with_requirements(mut self, requirements: &'a GroupRequirements) -> Self {
        self.requirements = requirements;
        self
    }

    /// Sets the other members' credential types.
    pub fn with_member_credential_types(mut self, types: &'a MemberCredentialTypes) -> Self {
        self.member_credential_types = types;
        self
    }

    /// Sets the key lookups.
    pub fn with_key_uniqueness(mut self, key_uniqueness: &'a dyn KeyUniqueness) -> Self {
        self.key_uniqueness = key_uniqueness;
        self
    }

    /// Sets the lifetime check.
    pub fn with_lifetime_check(mut self, lifetime: LifetimeCheck) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Sets the maximum total lifetime.
    pub fn with_max_lifetime(mut self, max_lifetime: u64) -> Self {
        self.max_lifetime = Some(max_lifetime);
        self
    }
}

impl core::fmt::Debug for LeafNodeValidationContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LeafNodeValidationContext")
            .field("version", &self.version)
            .field("lifetime", &self.lifetime)
            .field("max_lifetime", &self.max_lifetime)
            .field("requirements", self.requirements)
            .field("member_credential_types", self.member_credential_types)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Why a LeafNode is invalid. Each variant is one check; its doc names the RFC text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafNodeValidationError {
    /// §7.3 "Verify the `leaf_node_source` field": the source does not match where the leaf
    /// appears (`key_package` in a KeyPackage, `update` in an Update, `commit` in an
    /// UpdatePath).
    #[error("leaf_node_source is {found:?}, expected {expected:?}")]
    WrongLeafNodeSource {
        /// The source the leaf's origin requires.
        expected: LeafNodeSourceKind,
        /// The leaf's source.
        found: LeafNodeSourceKind,
    },
    /// §7.3 "compatible with the group's parameters" / §11.1: the group's protocol version is
    /// not in `capabilities.versions`.
    #[error("protocol version 0x{:04x} not in capabilities", .0 .0)]
    VersionNotSupported(ProtocolVersion),
    /// §7.3 "compatible with the group's parameters" / §11.1: the group's cipher suite is not
    /// in `capabilities.cipher_suites`.
    #[error("cipher suite 0x{:04x} not in capabilities", .0 .0)]
    CipherSuiteNotSupported(CipherSuite),
    /// §10 "`leaf_node` ... MUST be valid for the cipher suite": the `encryption_key` is not a
    /// public key of the suite's KEM.
    #[error("encryption_key is not a public key of the cipher suite's KEM")]
    MalformedEncryptionKey,
    /// §13.4 "MUST NOT have more than one extension of any given type" (leaf extensions).
    #[error("duplicate leaf extension type 0x{:04x}", .0 .0)]
    DuplicateExtension(ExtensionType),
    /// §7.2 / §7.3 "Verify that the extensions in the LeafNode are supported": a non-default
    /// leaf extension type is not in `capabilities.extensions`.
    #[error("leaf extension type 0x{:04x} not in capabilities", .0 .0)]
    ExtensionNotInCapabilities(ExtensionType),
    /// §7.2 "the credential type used in the LeafNode MUST be included in the `credentials`
    /// field of the `capabilities` field".
    #[error("own credential type 0x{:04x} not in capabilities", .0 .0)]
    CredentialTypeNotInCapabilities(CredentialType),
    /// §7.3 / §11.1: an extension type of the group's `required_capabilities` is not in
    /// `capabilities.extensions`.
    #[error("required extension type 0x{:04x} not supported", .0 .0)]
    RequiredExtensionNotSupported(ExtensionType),
    /// §7.3 / §11.1: a proposal type of the group's `required_capabilities` is not in
    /// `capabilities.proposals`.
    #[error("required proposal type 0x{:04x} not supported", .0 .0)]
    RequiredProposalNotSupported(ProposalType),
    /// §7.3 / §11.1: a credential type of the group's `required_capabilities` is not in
    /// `capabilities.credentials`.
    #[error("required credential type 0x{:04x} not supported", .0 .0)]
    RequiredCredentialNotSupported(CredentialType),
    /// §13.4 "The `capabilities` field MUST indicate support for each extension in the
    /// GroupContext": a (non-default) extension type in use by the group is not supported.
    #[error("group extension type 0x{:04x} not supported", .0 .0)]
    GroupExtensionNotSupported(ExtensionType),
    /// §7.3 "Verify that the credential type is supported by all members of the group".
    #[error("credential type 0x{:04x} not supported by every member", .0 .0)]
    CredentialTypeNotSupportedByMembers(CredentialType),
    /// §7.3 "... the `capabilities` field of this LeafNode indicates support for all the
    /// credential types currently in use by other members".
    #[error("member credential type 0x{:04x} not supported by the leaf", .0 .0)]
    MemberCredentialTypeNotSupported(CredentialType),
    /// §7.2 "reject any LeafNode where the total lifetime is longer than" the application's
    /// maximum.
    #[error("lifetime of {total} s exceeds the maximum of {max} s")]
    LifetimeTooLong {
        /// `not_after - not_before` (saturating at 0).
        total: u64,
        /// The application's maximum.
        max: u64,
    },
    /// §7.3 "Verify the `lifetime` field": the current time is before `not_before`.
    #[error("lifetime starts at {not_before}, now is {now}")]
    LifetimeNotYetValid {
        /// The leaf's `not_before`.
        not_before: u64,
        /// The time given.
        now: u64,
    },
    /// §7.3 "Verify the `lifetime` field": the current time is after `not_after`.
    #[error("lifetime ended at {not_after}, now is {now}")]
    LifetimeExpired {
        /// The leaf's `not_after`.
        not_after: u64,
        /// The time given.
        now: u64,
    },
    /// §7.3 (Update: "`encryption_key` represents a different public key than the
    /// `encryption_key` in the leaf node being replaced") and §12.4.2 (Commit: "different from
    /// the committer's current leaf node").
    #[error("encryption_key equals that of the leaf being replaced")]
    EncryptionKeyNotChanged,
    /// §7.3 "Verify that the following fields are unique among the members of the group:
    /// `signature_key`".
    #[error("signature_key is already used by another member")]
    SignatureKeyNotUnique,
    /// §7.3 "... unique among the members of the group: `encryption_key`" (and §12.4.2, no
    /// UpdatePath key in any node of the new tree).
    #[error("encryption_key is already used in the tree")]
    EncryptionKeyNotUnique,
    /// §7.3 "Verify that the signature on the LeafNode is valid using `signature_key`".
    #[error("invalid LeafNode signature: {0}")]
    InvalidSignature(LeafSignatureError),
    /// §7.3 "Verify that the credential in the LeafNode is valid" (§5.3.1).
    #[error("invalid credential: {0}")]
    InvalidCredential(CredentialError),
    /// §5.3.1: the new credential is not a valid successor of the replaced leaf's credential
    /// (Update and Commit leaves).
    #[error("credential is not an acceptable successor: {0}")]
    CredentialSuccessorRefused(CredentialError),
}

/// Validates `leaf` for the group whose cipher suite `suite` implements (RFC 9420 §7.3).
///
/// Checks, in this order: the source matches `origin`; the group's version and cipher suite
/// are in the capabilities; the `encryption_key` has the suite's form; no duplicate leaf
/// extension; every non-default leaf extension and the credential's type are in the
/// capabilities; the group's required capabilities and extensions in use are supported;
/// credential types against the other members; the lifetime (`key_package` leaves; total
/// against `max_lifetime`, and against the time unless [`LifetimeCheck::Skip`]); for Update and
/// Commit the `encryption_key` differs from the replaced leaf's; key uniqueness; the signature;
/// the credential with the identity provider; for a replaced leaf, the credential succession.
pub fn validate_leaf_node(
    suite: &dyn SuiteProvider,
    leaf: &LeafNode,
    origin: LeafNodeOrigin<'_>,
    ctx: &LeafNodeValidationContext<'_>,
) -> Result<(), LeafNodeValidationError> {
    use LeafNodeValidationError as E;

    let found = LeafNodeSourceKind::of(&leaf.leaf_node_source);
    if let Some(expected) = origin.expected_source() {
        if expected != found {
            return Err(E::WrongLeafNodeSource { expected, found });
        }
    }

    let caps = &leaf.capabilities;
    if !caps.versions.contains(&ctx.version) {
        return Err(E::VersionNotSupported(ctx.version));
    }
    let cipher_suite = suite.cipher_suite();
    if !caps.cipher_suites.contains(&cipher_suite) {
        return Err(E::CipherSuiteNotSupported(cipher_suite));
    }
    if !hpke_public_key_well_formed(suite, leaf.encryption_key.as_slice()) {
        return Err(E::MalformedEncryptionKey);
    }

    if let Some(duplicate) = first_duplicate(&leaf.extensions) {
        return Err(E::DuplicateExtension(duplicate));
    }
    if let Some(missing) = leaf
        .extensions
        .iter()
        .map(|e| e.extension_type)
        .find(|t| !supports_extension(caps, *t))
    {
        return Err(E::ExtensionNotInCapabilities(missing));
    }
    let credential_type = leaf.credential.credential_type();
    if !caps.credentials.contains(&credential_type) {
        return Err(E::CredentialTypeNotInCapabilities(credential_type));
    }

    check_requirements(caps, ctx.requirements)?;
    check_member_credentials(caps, credential_type, ctx.member_credential_types)?;

    if let LeafNodeSource::KeyPackage(lifetime) = &leaf.leaf_node_source {
        check_lifetime(lifetime, ctx)?;
    }

    if let Some(replaced) = origin.replaced() {
        if replaced.encryption_key == leaf.encryption_key {
            return Err(E::EncryptionKeyNotChanged);
        }
    }
    let (except_signature, except_encryption) = origin.uniqueness_exceptions();
    if ctx
        .key_uniqueness
        .signature_key_in_use(&leaf.signature_key, except_signature)
    {
        return Err(E::SignatureKeyNotUnique);
    }
    if ctx
        .key_uniqueness
        .encryption_key_in_use(&leaf.encryption_key, except_encryption)
    {
        return Err(E::EncryptionKeyNotUnique);
    }

    let (group_id, leaf_index) = origin.signature_context();
    leaf.verify_signature(suite, group_id, leaf_index)
        .map_err(E::InvalidSignature)?;

    ctx.identity_provider
        .validate_credential(&leaf.credential, &leaf.signature_key)
        .map_err(E::InvalidCredential)?;
    if let Some(replaced) = origin.replaced() {
        ctx.identity_provider
            .validate_successor(&replaced.credential, &leaf.credential)
            .map_err(E::CredentialSuccessorRefused)?;
    }
    Ok(())
}

fn check_requirements(
    caps: &Capabilities,
    requirements: &GroupRequirements,
) -> Result<(), LeafNodeValidationError> {
    use LeafNodeValidationError as E;
    match requirements.first_unsupported(caps) {
        None => Ok(()),
        Some(Unsupported::RequiredExtension(t)) => Err(E::RequiredExtensionNotSupported(t)),
        Some(Unsupported::RequiredProposal(t)) => Err(E::RequiredProposalNotSupported(t)),
        Some(Unsupported::RequiredCredential(t)) => Err(E::RequiredCredentialNotSupported(t)),
        Some(Unsupported::ExtensionInUse(t)) => Err(E::GroupExtensionNotSupported(t)),
    }
}

fn check_member_credentials(
    caps: &Capabilities,
    credential_type: CredentialType,
    members: &MemberCredentialTypes,
) -> Result<(), LeafNodeValidationError> {
    use LeafNodeValidationError as E;
    if let Some(all) = &members.supported_by_all {
        if !all.contains(&credential_type) {
            return Err(E::CredentialTypeNotSupportedByMembers(credential_type));
        }
    }
    if let Some(t) = members
        .in_use
        .iter()
        .find(|t| !caps.credentials.contains(t))
    {
        return Err(E::MemberCredentialTypeNotSupported(*t));
    }
    Ok(())
}

fn check_lifetime(
    lifetime: &Lifetime,
    ctx: &LeafNodeValidationContext<'_>,
) -> Result<(), LeafNodeValidationError> {
    use LeafNodeValidationError as E;
    if let Some(max) = ctx.max_lifetime {
        let total = lifetime.not_after.saturating_sub(lifetime.not_before);
        if total > max {
            return Err(E::LifetimeTooLong { total, max });
        }
    }
    let (now, tolerance) = match ctx.lifetime {
        LifetimeCheck::At(now) => (Some(now), 0),
        LifetimeCheck::Within { now, tolerance } => (Some(now), tolerance),
        LifetimeCheck::Skip => (None, 0),
    };
    if let Some(now) = now {
        if now.saturating_add(tolerance) < lifetime.not_before {
            return Err(E::LifetimeNotYetValid {
                not_before: lifetime.not_before,
                now,
            });
        }
        if now.saturating_sub(tolerance) > lifetime.not_after {
            return Err(E::LifetimeExpired {
                not_after: lifetime.not_after,
                now,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{ExtensionPayload as _, RequiredCapabilitiesExtension};
    use crate::crypto::{CryptoProvider as _, HpkeKeyPair, RustCrypto, Secret};
    use crate::messages::identity::BasicIdentityProvider;
    use LeafNodeValidationError as E;

    const GROUP: &[u8] = b"group";
    const NOW: u64 = 500;

    fn suite(id: u16) -> &'static dyn SuiteProvider {
        static CRYPTO: RustCrypto = RustCrypto;
        CRYPTO.suite(CipherSuite(id)).unwrap()
    }

    fn signer(suite: &dyn SuiteProvider, n: u8) -> SignatureKeyPair {
        suite.signature_key_pair_from_seed(&[n; 32]).unwrap()
    }

    fn params(suite: &dyn SuiteProvider, who: &str) -> LeafNodeParams {
        LeafNodeParams::new(
            suite.cipher_suite(),
            Credential::basic(who.as_bytes().to_vec()),
        )
    }

    fn kp_leaf(suite: &dyn SuiteProvider) -> (LeafNode, SignatureKeyPair) {
        let sig = signer(suite, 1);
        let target = LeafNodeTarget::KeyPackage {
            lifetime: Lifetime {
                not_before: 100,
                not_after: 1000,
            },
        };
        let (leaf, _) = params(suite, "alice")
            .build_fresh(suite, target, &sig)
            .unwrap();
        (leaf, sig)
    }

    fn update_leaf(suite: &dyn SuiteProvider, leaf_index: u32) -> (LeafNode, SignatureKeyPair) {
        let sig = signer(suite, 1);
        let target = LeafNodeTarget::Update {
            group_id: GROUP,
            leaf_index,
        };
        let (leaf, _) = params(suite, "alice")
            .build_fresh(suite, target, &sig)
            .unwrap();
        (leaf, sig)
    }

    fn resign(suite: &dyn SuiteProvider, leaf: &mut LeafNode, sig: &SignatureKeyPair) {
        leaf.sign(suite, &sig.private_key, GROUP, 0).unwrap();
    }

    fn basic() -> BasicIdentityProvider {
        BasicIdentityProvider::new()
    }

    fn check_kp(leaf: &LeafNode, ctx: &LeafNodeValidationContext<'_>) -> Result<(), E> {
        validate_leaf_node(suite(1), leaf, LeafNodeOrigin::KeyPackage, ctx)
    }

    /// A key_package leaf mutated by `mutate`, re-signed, validated in the default context.
    fn mutated(mutate: impl FnOnce(&mut LeafNode)) -> Result<(), E> {
        let (mut leaf, sig) = kp_leaf(suite(1));
        mutate(&mut leaf);
        resign(suite(1), &mut leaf, &sig);
        let provider = basic();
        check_kp(&leaf, &LeafNodeValidationContext::new(&provider, NOW))
    }

    #[test]
    fn created_leaves_validate_for_every_suite() {
        let provider = basic();
        for id in [1, 2, 3] {
            let s = suite(id);
            let ctx = LeafNodeValidationContext::new(&provider, NOW);
            let (leaf, _) = kp_leaf(s);
            assert_eq!(leaf.capabilities.cipher_suites, vec![CipherSuite(id)]);
            validate_leaf_node(s, &leaf, LeafNodeOrigin::KeyPackage, &ctx).unwrap();

            let (old, _) = update_leaf(s, 3);
            let (new, _) = update_leaf(s, 3);
            let origin = LeafNodeOrigin::Update {
                group_id: GROUP,
                leaf_index: 3,
                replaced: &old,
            };
            validate_leaf_node(s, &new, origin, &ctx).unwrap();

            let sig = signer(s, 1);
            let target = LeafNodeTarget::Commit {
                group_id: GROUP,
                leaf_index: 3,
                parent_hash: vec![9; 32],
            };
            let (commit, _) = params(s, "alice").build_fresh(s, target, &sig).unwrap();
            assert_eq!(commit.parent_hash(), Some(&[9u8; 32][..]));
            let origin = LeafNodeOrigin::Commit {
                group_id: GROUP,
                leaf_index: 3,
                replaced: Some(&old),
            };
            validate_leaf_node(s, &commit, origin, &ctx).unwrap();
            // An external joiner's leaf replaces nothing.
            let origin = LeafNodeOrigin::Commit {
                group_id: GROUP,
                leaf_index: 3,
                replaced: None,
            };
            validate_leaf_node(s, &commit, origin, &ctx).unwrap();
        }
    }

    #[test]
    fn given_keys_make_the_same_leaf() {
        let s = suite(1);
        let sig = signer(s, 4);
        let seed = Secret::new(vec![5; 32]);
        let target = || LeafNodeTarget::Update {
            group_id: GROUP,
            leaf_index: 1,
        };
        let p = params(s, "bob");
        let (a, ka) = p
            .build(s, target(), HpkeKeySource::Seed(seed.clone()), &sig)
            .unwrap();
        let (b, kb) = p
            .build(s, target(), HpkeKeySource::Seed(seed.clone()), &sig)
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(ka, kb);
        let pair = s.hpke_derive_key_pair(seed.as_bytes()).unwrap();
        let (c, kc) = p
            .build(s, target(), HpkeKeySource::KeyPair(pair.clone()), &sig)
            .unwrap();
        assert_eq!(c, a);
        assert_eq!(kc, pair.private_key);
        assert_eq!(a.signature_key.as_slice(), sig.public_key.as_slice());
    }

    #[test]
    fn creation_refuses_inconsistent_inputs() {
        let s = suite(1);
        let sig = signer(s, 1);
        let target = || LeafNodeTarget::Update {
            group_id: GROUP,
            leaf_index: 0,
        };
        let wrong_pair = HpkeKeyPair {
            private_key: s.hpke_derive_key_pair(&[1; 32]).unwrap().private_key,
            public_key: s.hpke_derive_key_pair(&[2; 32]).unwrap().public_key,
        };
        assert_eq!(
            params(s, "a").build(s, target(), HpkeKeySource::KeyPair(wrong_pair), &sig),
            Err(CreationError::HpkeKeyPairMismatch)
        );
        let wrong_sig = SignatureKeyPair {
            private_key: sig.private_key.clone(),
            public_key: signer(s, 2).public_key,
        };
        assert_eq!(
            params(s, "a").build_fresh(s, target(), &wrong_sig),
            Err(CreationError::SignatureKeyPairMismatch)
        );
        let dup = params(s, "a")
            .extension(Extension::new(ExtensionType(0xff00), vec![]))
            .extension(Extension::new(ExtensionType(0xff00), vec![1]));
        assert_eq!(
            dup.build_fresh(s, target(), &sig),
            Err(CreationError::DuplicateExtension(ExtensionType(0xff00)))
        );
    }

    #[test]
    fn creation_lists_carried_extensions_and_credential_type() {
        let s = suite(1);
        let sig = signer(s, 1);
        let (leaf, _) = LeafNodeParams::new(CipherSuite(1), Credential::X509(vec![]))
            .extension(Extension::new(ExtensionType(0xff00), vec![1]))
            .extension(Extension::new(ExtensionType::APPLICATION_ID, vec![2]))
            .supported_proposal_types([ProposalType(0xff10), ProposalType::ADD])
            .supported_extension_types([ExtensionType(0xff01)])
            .supported_credential_types([CredentialType(0xff20)])
            .supported_cipher_suites([CipherSuite(3)])
            .build_fresh(
                s,
                LeafNodeTarget::Update {
                    group_id: GROUP,
                    leaf_index: 0,
                },
                &sig,
            )
            .unwrap();
        let caps = &leaf.capabilities;
        assert_eq!(caps.versions, vec![ProtocolVersion::MLS10]);
        assert_eq!(caps.cipher_suites, vec![CipherSuite(1), CipherSuite(3)]);
        assert_eq!(
            caps.extensions,
            vec![ExtensionType(0xff01), ExtensionType(0xff00)]
        );
        assert_eq!(caps.proposals, vec![ProposalType(0xff10)]);
        assert_eq!(
            caps.credentials,
            vec![
                CredentialType::BASIC,
                CredentialType(0xff20),
                CredentialType::X509
            ]
        );
    }

    #[test]
    fn wrong_leaf_node_source() {
        let provider = basic();
        let ctx = LeafNodeValidationContext::new(&provider, NOW);
        let (kp, _) = kp_leaf(suite(1));
        let (update, _) = update_leaf(suite(1), 0);
        assert_eq!(
            check_kp(&update, &ctx),
            Err(E::WrongLeafNodeSource {
                expected: LeafNodeSourceKind::KeyPackage,
                found: LeafNodeSourceKind::Update
            })
        );
        let origin = LeafNodeOrigin::Update {
            group_id: GROUP,
            leaf_index: 0,
            replaced: &update,
        };
        assert_eq!(
            validate_leaf_node(suite(1), &kp, origin, &ctx),
            Err(E::WrongLeafNodeSource {
                expected: LeafNodeSourceKind::Update,
                found: LeafNodeSourceKind::KeyPackage
            })
        );
        let origin = LeafNodeOrigin::Commit {
            group_id: GROUP,
            leaf_index: 0,
            replaced: None,
        };
        assert_eq!(
            validate_leaf_node(suite(1), &update, origin, &ctx),
            Err(E::WrongLeafNodeSource {
                expected: LeafNodeSourceKind::Commit,
                found: LeafNodeSourceKind::Update
            })
        );
    }

    #[test]
    fn version_not_in_capabilities() {
        assert_eq!(
            mutated(|l| l.capabilities.versions = vec![ProtocolVersion(2)]),
            Err(E::VersionNotSupported(ProtocolVersion::MLS10))
        );
    }

    #[test]
    fn cipher_suite_not_in_capabilities() {
        assert_eq!(
            mutated(|l| l.capabilities.cipher_suites = vec![CipherSuite(2)]),
            Err(E::CipherSuiteNotSupported(CipherSuite(1)))
        );
    }

    #[test]
    fn malformed_encryption_key() {
        assert_eq!(
            mutated(|l| l.encryption_key = HpkePublicKey::from(vec![1; 31])),
            Err(E::MalformedEncryptionKey)
        );
    }

    #[test]
    fn duplicate_leaf_extension() {
        assert_eq!(
            mutated(|l| {
                l.capabilities.extensions = vec![ExtensionType(0xff00)];
                l.extensions = vec![
                    Extension::new(ExtensionType(0xff00), vec![]),
                    Extension::new(ExtensionType(0xff00), vec![]),
                ];
            }),
            Err(E::DuplicateExtension(ExtensionType(0xff00)))
        );
    }

    #[test]
    fn leaf_extension_not_in_capabilities() {
        assert_eq!(
            mutated(|l| l.extensions = vec![Extension::new(ExtensionType(0xff00), vec![])]),
            Err(E::ExtensionNotInCapabilities(ExtensionType(0xff00)))
        );
        // A default extension type needs no listing.
        assert_eq!(
            mutated(|l| {
                l.extensions = vec![Extension::new(ExtensionType::APPLICATION_ID, vec![7])]
            }),
            Ok(())
        );
    }

    #[test]
    fn own_credential_type_not_in_capabilities() {
        assert_eq!(
            mutated(|l| l.capabilities.credentials = vec![CredentialType::X509]),
            Err(E::CredentialTypeNotInCapabilities(CredentialType::BASIC))
        );
    }

    fn with_required(
        (extension_types, proposal_types, credential_types): (
            Vec<ExtensionType>,
            Vec<ProposalType>,
            Vec<CredentialType>,
        ),
    ) -> GroupRequirements {
        let required = RequiredCapabilitiesExtension {
            extension_types,
            proposal_types,
            credential_types,
        };
        GroupRequirements::from_group_context_extensions(&[required.to_extension().unwrap()])
            .unwrap()
    }

    fn check_requirements_of(req: &GroupRequirements) -> Result<(), E> {
        let provider = basic();
        let ctx = LeafNodeValidationContext::new(&provider, NOW).with_requirements(req);
        check_kp(&kp_leaf(suite(1)).0, &ctx)
    }

    #[test]
    fn required_capabilities_are_checked() {
        let ok = with_required((
            vec![ExtensionType::EXTERNAL_SENDERS],
            vec![ProposalType::REMOVE],
            vec![CredentialType::BASIC],
        ));
        assert_eq!(check_requirements_of(&ok), Ok(()));
        assert_eq!(
            check_requirements_of(&with_required((
                vec![ExtensionType(0xff00)],
                vec![],
                vec![]
            ))),
            Err(E::RequiredExtensionNotSupported(ExtensionType(0xff00)))
        );
        assert_eq!(
            check_requirements_of(&with_required((vec![], vec![ProposalType(0xff01)], vec![]))),
            Err(E::RequiredProposalNotSupported(ProposalType(0xff01)))
        );
        assert_eq!(
            check_requirements_of(&with_required((vec![], vec![], vec![CredentialType::X509]))),
            Err(E::RequiredCredentialNotSupported(CredentialType::X509))
        );
    }

    #[test]
    fn group_extension_not_supported() {
        let req = GroupRequirements::from_group_context_extensions(&[Extension::new(
            ExtensionType(0xff05),
            vec![],
        )])
        .unwrap();
        assert_eq!(
            check_requirements_of(&req),
            Err(E::GroupExtensionNotSupported(ExtensionType(0xff05)))
        );
        let req = GroupRequirements::none().with_extension_types_in_use([ExtensionType(0xff06)]);
        assert_eq!(
            check_requirements_of(&req),
            Err(E::GroupExtensionNotSupported(ExtensionType(0xff06)))
        );
    }

    #[test]
    fn member_credential_types() {
        let provider = basic();
        let check = |members: &MemberCredentialTypes| {
            let ctx = LeafNodeValidationContext::new(&provider, NOW)
                .with_member_credential_types(members);
            check_kp(&kp_leaf(suite(1)).0, &ctx)
        };
        let x509_only = MemberCredentialTypes {
            in_use: vec![CredentialType::X509],
            supported_by_all: Some(vec![CredentialType::X509]),
        };
        assert_eq!(
            check(&x509_only),
            Err(E::CredentialTypeNotSupportedByMembers(
                CredentialType::BASIC
            ))
        );
        let mixed = MemberCredentialTypes {
            in_use: vec![CredentialType::BASIC, CredentialType::X509],
            supported_by_all: Some(vec![CredentialType::BASIC, CredentialType::X509]),
        };
        assert_eq!(
            check(&mixed),
            Err(E::MemberCredentialTypeNotSupported(CredentialType::X509))
        );
        let (other, _) = update_leaf(suite(1), 1);
        let from_leaves = MemberCredentialTypes::from_leaves([&other]);
        assert_eq!(from_leaves.in_use, vec![CredentialType::BASIC]);
        assert_eq!(
            from_leaves.supported_by_all,
            Some(vec![CredentialType::BASIC])
        );
        assert_eq!(check(&from_leaves), Ok(()));
        assert_eq!(
            MemberCredentialTypes::from_leaves([]),
            MemberCredentialTypes::none()
        );
    }

    #[test]
    fn lifetime_checks() {
        let provider = basic();
        let (leaf, _) = kp_leaf(suite(1));
        let ctx = |now| LeafNodeValidationContext::new(&provider, now);
        assert_eq!(check_kp(&leaf, &ctx(100)), Ok(()));
        assert_eq!(check_kp(&leaf, &ctx(1000)), Ok(()));
        assert_eq!(
            check_kp(&leaf, &ctx(99)),
            Err(E::LifetimeNotYetValid {
                not_before: 100,
                now: 99
            })
        );
        assert_eq!(
            check_kp(&leaf, &ctx(1001)),
            Err(E::LifetimeExpired {
                not_after: 1000,
                now: 1001
            })
        );
        assert_eq!(
            check_kp(&leaf, &ctx(5000).with_lifetime_check(LifetimeCheck::Skip)),
            Ok(())
        );
        assert_eq!(check_kp(&leaf, &ctx(NOW).with_max_lifetime(900)), Ok(()));
        assert_eq!(
            check_kp(&leaf, &ctx(NOW).with_max_lifetime(899)),
            Err(E::LifetimeTooLong {
                total: 900,
                max: 899
            })
        );
    }

    #[test]
    fn update_and_commit_must_change_the_encryption_key() {
        let s = suite(1);
        let provider = basic();
        let ctx = LeafNodeValidationContext::new(&provider, NOW);
        let sig = signer(s, 1);
        let pair = s.hpke_derive_key_pair(&[3; 32]).unwrap();
        let update = |leaf_index| LeafNodeTarget::Update {
            group_id: GROUP,
            leaf_index,
        };
        let (old, _) = params(s, "alice")
            .build(s, update(2), HpkeKeySource::KeyPair(pair.clone()), &sig)
            .unwrap();
        let (new, _) = params(s, "alice")
            .build(s, update(2), HpkeKeySource::KeyPair(pair.clone()), &sig)
            .unwrap();
        let origin = LeafNodeOrigin::Update {
            group_id: GROUP,
            leaf_index: 2,
            replaced: &old,
        };
        assert_eq!(
            validate_leaf_node(s, &new, origin, &ctx),
            Err(E::EncryptionKeyNotChanged)
        );
        let target = LeafNodeTarget::Commit {
            group_id: GROUP,
            leaf_index: 2,
            parent_hash: vec![],
        };
        let (commit, _) = params(s, "alice")
            .build(s, target, HpkeKeySource::KeyPair(pair), &sig)
            .unwrap();
        let origin = LeafNodeOrigin::Commit {
            group_id: GROUP,
            leaf_index: 2,
            replaced: Some(&old),
        };
        assert_eq!(
            validate_leaf_node(s, &commit, origin, &ctx),
            Err(E::EncryptionKeyNotChanged)
        );
    }

    #[test]
    fn keys_must_be_unique() {
        let s = suite(1);
        let provider = basic();
        let (kp, sig) = kp_leaf(s);
        // Another member with the same signature key.
        let (same_sig, _) = update_leaf(s, 0);
        let tree = vec![Some(same_sig.clone()), None];
        let ctx = LeafNodeValidationContext::new(&provider, NOW).with_key_uniqueness(&tree);
        assert_eq!(check_kp(&kp, &ctx), Err(E::SignatureKeyNotUnique));

        // Another member with the same encryption key.
        let mut other = kp.clone();
        other.signature_key = signer(s, 9).public_key.into();
        let tree = vec![None, Some(other)];
        let ctx = LeafNodeValidationContext::new(&provider, NOW).with_key_uniqueness(&tree);
        assert_eq!(check_kp(&kp, &ctx), Err(E::EncryptionKeyNotUnique));

        // An Update may keep the sender's own signature key.
        let (old, _) = update_leaf(s, 0);
        let (new, _) = update_leaf(s, 0);
        let tree = vec![Some(old.clone())];
        let ctx = LeafNodeValidationContext::new(&provider, NOW).with_key_uniqueness(&tree);
        let origin = |leaf_index| LeafNodeOrigin::Update {
            group_id: GROUP,
            leaf_index,
            replaced: &old,
        };
        assert_eq!(validate_leaf_node(s, &new, origin(0), &ctx), Ok(()));
        // ... but not another member's.
        let mut resigned = new.clone();
        resigned.sign(s, &sig.private_key, GROUP, 1).unwrap();
        assert_eq!(
            validate_leaf_node(s, &resigned, origin(1), &ctx),
            Err(E::SignatureKeyNotUnique)
        );

        // A leaf of a ratchet tree is not compared with itself.
        let tree = vec![None, Some(resigned.clone())];
        let ctx = LeafNodeValidationContext::new(&provider, NOW).with_key_uniqueness(&tree);
        let origin = LeafNodeOrigin::RatchetTree {
            group_id: GROUP,
            leaf_index: 1,
        };
        assert_eq!(validate_leaf_node(s, &resigned, origin, &ctx), Ok(()));
        let origin = LeafNodeOrigin::RatchetTree {
            group_id: GROUP,
            leaf_index: 0,
        };
        assert_eq!(
            validate_leaf_node(s, &resigned, origin, &ctx),
            Err(E::SignatureKeyNotUnique)
        );
    }

    #[test]
    fn invalid_signature() {
        let provider = basic();
        let ctx = LeafNodeValidationContext::new(&provider, NOW);
        let (mut leaf, _) = kp_leaf(suite(1));
        leaf.credential = Credential::basic(b"mallory".to_vec());
        assert!(matches!(check_kp(&leaf, &ctx), Err(E::InvalidSignature(_))));
        // An update leaf signed for another group or leaf index.
        let (update, _) = update_leaf(suite(1), 4);
        for (group_id, leaf_index) in [(&b"other"[..], 4), (GROUP, 5)] {
            let origin = LeafNodeOrigin::RatchetTree {
                group_id,
                leaf_index,
            };
            assert!(matches!(
                validate_leaf_node(suite(1), &update, origin, &ctx),
                Err(E::InvalidSignature(_))
            ));
        }
    }

    #[test]
    fn invalid_credential() {
        assert_eq!(
            mutated(|l| {
                l.credential = Credential::X509(vec![]);
                l.capabilities.credentials.push(CredentialType::X509);
            }),
            Err(E::InvalidCredential(CredentialError::X509NotConfigured))
        );
    }

    #[test]
    fn credential_successor_refused() {
        let s = suite(1);
        let provider = basic();
        let ctx = LeafNodeValidationContext::new(&provider, NOW);
        let (old, _) = update_leaf(s, 0);
        let (new, _) = params(s, "eve")
            .build_fresh(
                s,
                LeafNodeTarget::Update {
                    group_id: GROUP,
                    leaf_index: 0,
                },
                &signer(s, 2),
            )
            .unwrap();
        let origin = LeafNodeOrigin::Update {
            group_id: GROUP,
            leaf_index: 0,
            replaced: &old,
        };
        assert_eq!(
            validate_leaf_node(s, &new, origin, &ctx),
            Err(E::CredentialSuccessorRefused(
                CredentialError::IdentityChangeRefused
            ))
        );
    }
}
