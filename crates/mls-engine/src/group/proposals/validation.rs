//! Proposal-list validation (RFC 9420 §12.2), for member Commits and external Commits
//! (§12.4.3.2), and the committer's filtering of candidate proposals.
//!
//! [`validate_proposal_list`] checks a resolved list (senders and proposals, in Commit order)
//! against the group as it is before the Commit, described by a
//! [`ProposalValidationContext`]. Each rule of §12.2 (and the validity rules of the individual
//! proposal types, §12.1) fails with its own [`ProposalListError`] variant; variants that
//! concern one proposal carry its position in the list.
//!
//! As §12.3 demands, a GroupContextExtensions proposal's new extensions are the ones Add and
//! Update leaves are checked against. Key uniqueness (§7.3) is checked against the tree as the
//! Commit leaves it: the leaves of removed and updated members no longer count, and the new
//! leaves of the list must not collide with each other.
//!
//! [`filter_proposals`] is the committer's side (§12.2, §12.4: "The sender of a Commit SHOULD
//! include all proposals that it has received during the current epoch that are valid ...
//! as long as this results in a valid proposal list"): it applies the RFC's preferences (a
//! Remove over Updates of the same leaf, the most recent Update, other proposals over a
//! ReInit) and then drops offending proposals until the list is valid.

use crate::codec::{
    CredentialType, Extension, ExtensionPayload as _, ExtensionPayloadError, ExtensionType,
    ExternalSendersExtension, HpkePublicKey, LeafNode, PSKKind, PreSharedKeyID, Proposal,
    ProposalType, ProtocolVersion, ResumptionPSKUsage, Sender, SignaturePublicKey,
};
use crate::crypto::SuiteProvider;
use crate::messages::capabilities::{supports_proposal, Unsupported};
use crate::messages::{
    validate_key_package, validate_leaf_node, CredentialError, GroupRequirements,
    GroupRequirementsError, IdentityProvider, KeyPackageValidationContext,
    KeyPackageValidationError, KeyUniqueness, LeafNodeOrigin, LeafNodeValidationContext,
    LeafNodeValidationError, LifetimeCheck, MemberCredentialTypes,
};
use crate::tree::{LeafIndex, RatchetTree};

use super::store::CommittedProposal;

/// Which resumption-PSK usages a Commit may inject (§12.1.4: `reinit` only while
/// reinitializing a group, §11.2; `branch` only while branching a subgroup, §11.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PskUsageContext {
    /// An ordinary Commit: neither `reinit` nor `branch` resumption PSKs.
    #[default]
    Normal,
    /// The first Commit of a group created by reinitialization: `reinit` PSKs allowed.
    ReInit,
    /// The first Commit of a subgroup branched from a group: `branch` PSKs allowed.
    Branch,
}

impl PskUsageContext {
    fn allows(self, usage: ResumptionPSKUsage) -> bool {
        match usage {
            ResumptionPSKUsage::Application => true,
            ResumptionPSKUsage::Reinit => self == PskUsageContext::ReInit,
            ResumptionPSKUsage::Branch => self == PskUsageContext::Branch,
        }
    }
}

/// What proposal-list validation needs to know about the group before the Commit.
#[derive(Clone, Copy)]
pub struct ProposalValidationContext<'a> {
    /// The group's cipher suite.
    pub suite: &'a dyn SuiteProvider,
    /// The group's ID (signature context of Update leaves).
    pub group_id: &'a [u8],
    /// The group's protocol version.
    pub version: ProtocolVersion,
    /// The GroupContext extensions of the current epoch.
    pub extensions: &'a [Extension],
    /// The ratchet tree of the current epoch.
    pub tree: &'a RatchetTree,
    /// The Authentication Service.
    pub identity_provider: &'a dyn IdentityProvider,
    /// The lifetime check of KeyPackage leaves in Add proposals.
    pub lifetime: LifetimeCheck,
    /// The application's maximum total lifetime of a KeyPackage leaf, if any (§7.2).
    pub max_lifetime: Option<u64>,
    /// Which resumption-PSK usages are allowed.
    pub psk_usage: PskUsageContext,
    /// The LeafNode of the Commit's UpdatePath, if any. Required for external Commits: with a
    /// Remove, it must be an acceptable successor of the removed leaf (§12.2).
    pub commit_leaf: Option<&'a LeafNode>,
}

impl<'a> ProposalValidationContext<'a> {
    /// A context for an `mls10` group, checking KeyPackage lifetimes at `now` (seconds since
    /// the Unix epoch), ordinary PSK usage, no UpdatePath leaf.
    pub fn new(
        suite: &'a dyn SuiteProvider,
        group_id: &'a [u8],
        extensions: &'a [Extension],
        tree: &'a RatchetTree,
        identity_provider: &'a dyn IdentityProvider,
        now: u64,
    ) -> Self {
        Self {
            suite,
            group_id,
            version: ProtocolVersion::MLS10,
            extensions,
            tree,
            identity_provider,
            lifetime: LifetimeCheck::At(now),
            max_lifetime: None,
            psk_usage: PskUsageContext::Normal,
            commit_leaf: None,
        }
    }

    /// Sets the lifetime check of KeyPackage leaves.
    pub fn with_lifetime_check(mut self, lifetime: LifetimeCheck) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Sets the maximum total lifetime of KeyPackage leaves.
    pub fn with_max_lifetime(mut self, max_lifetime: u64) -> Self {
        self.max_lifetime = Some(max_lifetime);
        self
    }

    /// Sets which resumption-PSK usages are allowed.
    pub fn with_psk_usage(mut self, psk_usage: PskUsageContext) -> Self {
        self.psk_usage = psk_usage;
        self
    }

    /// Sets the LeafNode of the Commit's UpdatePath.
    pub fn with_commit_leaf(mut self, leaf: &'a LeafNode) -> Self {
        self.commit_leaf = Some(leaf);
        self
    }
}

impl core::fmt::Debug for ProposalValidationContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProposalValidationContext")
            .field("cipher_suite", &self.suite.cipher_suite())
            .field("version", &self.version)
            .field("lifetime", &self.lifetime)
            .field("psk_usage", &self.psk_usage)
            .finish_non_exhaustive()
    }
}

/// A capability some member lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingCapability {
    /// An extension type.
    Extension(ExtensionType),
    /// A proposal type.
    Proposal(ProposalType),
    /// A credential type.
    Credential(CredentialType),
}

/// Why a proposal list is invalid. Each variant is one rule; its doc names the RFC text.
/// `index` is the position of the offending proposal in the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalListError {
    /// The committer is neither a member with a non-blank leaf nor a `new_member_commit`
    /// sender (§6, §12.4).
    #[error("invalid committer {committer:?}")]
    InvalidCommitter {
        /// The committer.
        committer: Sender,
    },
    /// §12.1.8 "Messages from `external` senders containing proposal types other than the
    /// above MUST be rejected as malformed".
    #[error("proposal {index}: type {proposal_type:?} may not be sent by an external sender")]
    ProposalNotAllowedForExternalSender {
        /// Position in the list.
        index: usize,
        /// The proposal's type.
        proposal_type: ProposalType,
    },
    /// §12.1.8: a `new_member_proposal` sender may only propose its own Add.
    #[error("proposal {index}: a new_member_proposal sender may only send an Add")]
    NewMemberProposalNotAdd {
        /// Position in the list.
        index: usize,
    },
    /// §6: a proposal of a member Commit claims a `new_member_commit` sender.
    #[error("proposal {index}: new_member_commit sender in a member Commit")]
    NewMemberCommitSender {
        /// Position in the list.
        index: usize,
    },
    /// §12.1.1 "An Add is invalid if the KeyPackage is invalid according to Section 10.1".
    #[error("proposal {index}: invalid KeyPackage: {error}")]
    InvalidKeyPackage {
        /// Position in the list.
        index: usize,
        /// The failed check.
        error: KeyPackageValidationError,
    },
    /// §12.1.2 "An Update proposal is invalid if the LeafNode is invalid for an Update
    /// proposal according to Section 7.3".
    #[error("proposal {index}: invalid Update leaf: {error}")]
    InvalidUpdateLeafNode {
        /// Position in the list.
        index: usize,
        /// The failed check.
        error: LeafNodeValidationError,
    },
    /// §12.1.2: an Update replaces the sender's leaf; its sender must be a member with a
    /// non-blank leaf.
    #[error("proposal {index}: Update not sent by a member")]
    UpdateSenderNotMember {
        /// Position in the list.
        index: usize,
    },
    /// §12.1.3 "A Remove proposal is invalid if the `removed` field does not identify a
    /// non-blank leaf node".
    #[error("proposal {index}: Remove of blank or absent leaf {removed}")]
    RemoveOfBlankLeaf {
        /// Position in the list.
        index: usize,
        /// The leaf named.
        removed: u32,
    },
    /// §12.1.4 "The `psk_nonce` is not of length `KDF.Nh`".
    #[error("proposal {index}: psk_nonce of {found} bytes, expected {expected}")]
    PskNonceLength {
        /// Position in the list.
        index: usize,
        /// `KDF.Nh`.
        expected: usize,
        /// The nonce's length.
        found: usize,
    },
    /// §12.1.4: a resumption PSK with usage `reinit` outside a reinitialization, or `branch`
    /// outside a subgroup branching.
    #[error("proposal {index}: resumption PSK usage {usage:?} not allowed here")]
    PskUsageNotAllowed {
        /// Position in the list.
        index: usize,
        /// The PSK's usage.
        usage: ResumptionPSKUsage,
    },
    /// §12.1.5 "A ReInit proposal is invalid if the `version` field is less than the version
    /// for the current group".
    #[error("proposal {index}: ReInit to version {proposed:?} below the group's {current:?}")]
    ReInitVersionDowngrade {
        /// Position in the list.
        index: usize,
        /// The ReInit's version.
        proposed: ProtocolVersion,
        /// The group's version.
        current: ProtocolVersion,
    },
    /// §11.1, §13.4: a GroupContextExtensions proposal's extensions repeat a type or carry a
    /// malformed `required_capabilities`.
    #[error("proposal {index}: invalid GroupContext extensions: {error}")]
    InvalidGroupContextExtensions {
        /// Position in the list.
        index: usize,
        /// The failure.
        error: GroupRequirementsError,
    },
    /// §12.1.8.1: a GroupContextExtensions proposal carries a malformed `external_senders`.
    #[error("proposal {index}: malformed external_senders: {error}")]
    MalformedExternalSenders {
        /// Position in the list.
        index: usize,
        /// The failure.
        error: ExtensionPayloadError,
    },
    /// The current GroupContext extensions cannot be read as requirements (a corrupt state).
    #[error("current GroupContext extensions invalid: {0}")]
    CurrentExtensionsInvalid(GroupRequirementsError),
    /// §12.1.7 "A GroupContextExtensions proposal is invalid if it includes a
    /// `required_capabilities` extension and some members of the group do not support some of
    /// the required capabilities" (and §13.4: every member must support every GroupContext
    /// extension).
    #[error("proposal {index}: member at leaf {leaf} lacks {missing:?}")]
    GroupContextExtensionsUnsupported {
        /// Position in the list.
        index: usize,
        /// The member's leaf.
        leaf: u32,
        /// What it lacks.
        missing: MissingCapability,
    },
    /// §12.2 "It contains an Update proposal generated by the committer".
    #[error("proposal {index}: Update generated by the committer")]
    UpdateByCommitter {
        /// Position in the list.
        index: usize,
    },
    /// §12.2 "It contains a Remove proposal that removes the committer".
    #[error("proposal {index}: Remove of the committer")]
    RemovesCommitter {
        /// Position in the list.
        index: usize,
    },
    /// §12.2 "It contains multiple Update and/or Remove proposals that apply to the same
    /// leaf".
    #[error("proposal {index}: leaf {leaf} already updated or removed by the list")]
    LeafTouchedTwice {
        /// Position in the list (the later proposal).
        index: usize,
        /// The leaf.
        leaf: u32,
    },
    /// §12.2 "It contains multiple Add proposals that contain KeyPackages that represent the
    /// same client" (same signature key).
    #[error("proposal {index}: adds the same client as proposal {first}")]
    DuplicateAdd {
        /// Position in the list (the later Add).
        index: usize,
        /// The earlier Add.
        first: usize,
    },
    /// §12.2 "It contains an Add proposal with a KeyPackage that represents a client already in
    /// the group ..., unless there is a Remove proposal in the list removing the matching
    /// client" (same signature key as a member that stays).
    #[error("proposal {index}: adds a client already in the group")]
    AddOfExistingMember {
        /// Position in the list.
        index: usize,
    },
    /// §12.2 "After processing the Commit the ratchet tree is invalid" (§7.3 uniqueness): two
    /// new leaves of the list (Adds, Updates) share a `signature_key`.
    #[error("proposal {index}: signature_key also in the new leaf of proposal {other}")]
    NewLeafSignatureKeyCollision {
        /// Position in the list (the later proposal).
        index: usize,
        /// The earlier proposal.
        other: usize,
    },
    /// §12.2 "After processing the Commit the ratchet tree is invalid" (§7.3 uniqueness): two
    /// new leaves of the list share an `encryption_key`.
    #[error("proposal {index}: encryption_key also in the new leaf of proposal {other}")]
    NewLeafEncryptionKeyCollision {
        /// Position in the list (the later proposal).
        index: usize,
        /// The earlier proposal.
        other: usize,
    },
    /// §12.2 "It contains multiple PreSharedKey proposals that reference the same
    /// PreSharedKeyID".
    #[error("proposal {index}: same PreSharedKeyID as proposal {first}")]
    DuplicatePsk {
        /// Position in the list (the later proposal).
        index: usize,
        /// The earlier proposal.
        first: usize,
    },
    /// §12.2 "It contains multiple GroupContextExtensions proposals".
    #[error("proposal {index}: second GroupContextExtensions proposal")]
    MultipleGroupContextExtensions {
        /// Position in the list (the later proposal).
        index: usize,
    },
    /// §12.2 "It contains a ReInit proposal together with any other proposal".
    #[error("proposal {index}: ReInit together with other proposals")]
    ReInitNotAlone {
        /// Position of the ReInit.
        index: usize,
    },
    /// §12.2 "It contains an ExternalInit proposal" (member Commits).
    #[error("proposal {index}: ExternalInit in a member Commit")]
    ExternalInitInMemberCommit {
        /// Position in the list.
        index: usize,
    },
    /// §12.2 "It contains a Proposal with a non-default proposal type that is not supported by
    /// some members of the group that will process the Commit".
    #[error("proposal {index}: type {proposal_type:?} unsupported by the member at leaf {leaf}")]
    UnsupportedProposalType {
        /// Position in the list.
        index: usize,
        /// The proposal's type.
        proposal_type: ProposalType,
        /// A member that does not support it.
        leaf: u32,
    },
    /// §12.4.3.2 "The Commit MUST NOT include any proposals by reference".
    #[error("proposal {index}: external Commit covers a proposal by reference")]
    ExternalCommitProposalByReference {
        /// Position in the list.
        index: usize,
    },
    /// §12.2: an external Commit may only contain ExternalInit, Remove and PreSharedKey.
    #[error("proposal {index}: {proposal_type:?} not allowed in an external Commit")]
    ExternalCommitForbiddenProposal {
        /// Position in the list.
        index: usize,
        /// The proposal's type.
        proposal_type: ProposalType,
    },
    /// §12.2 "Exactly one ExternalInit": none.
    #[error("external Commit without ExternalInit")]
    ExternalCommitWithoutExternalInit,
    /// §12.2 "Exactly one ExternalInit": more than one.
    #[error("proposal {index}: second ExternalInit")]
    ExternalCommitMultipleExternalInit {
        /// Position in the list.
        index: usize,
    },
    /// §12.2 "At most one Remove proposal".
    #[error("proposal {index}: second Remove in an external Commit")]
    ExternalCommitMultipleRemoves {
        /// Position in the list.
        index: usize,
    },
    /// §12.4.3.2 "External Commits MUST contain a `path` field": no UpdatePath leaf given.
    #[error("external Commit without an UpdatePath leaf")]
    ExternalCommitWithoutPathLeaf,
    /// §12.2: the LeafNode of an external resync Commit must present identifiers acceptable
    /// for the removed participant (as an Update of the removed leaf would).
    #[error(
        "proposal {index}: joiner's credential is not a successor of the removed leaf's: {error}"
    )]
    ExternalCommitIdentityMismatch {
        /// Position of the Remove.
        index: usize,
        /// The identity provider's answer.
        error: CredentialError,
    },
}

impl ProposalListError {
    /// The position in the list of the proposal the error is about, if it is about one.
    pub fn index(&self) -> Option<usize> {
        use ProposalListError as E;
        match self {
            E::InvalidCommitter { .. }
            | E::CurrentExtensionsInvalid(_)
            | E::ExternalCommitWithoutExternalInit
            | E::ExternalCommitWithoutPathLeaf => None,
            E::ProposalNotAllowedForExternalSender { index, .. }
            | E::NewMemberProposalNotAdd { index }
            | E::NewMemberCommitSender { index }
            | E::InvalidKeyPackage { index, .. }
            | E::InvalidUpdateLeafNode { index, .. }
            | E::UpdateSenderNotMember { index }
            | E::RemoveOfBlankLeaf { index, .. }
            | E::PskNonceLength { index, .. }
            | E::PskUsageNotAllowed { index, .. }
            | E::ReInitVersionDowngrade { index, .. }
            | E::InvalidGroupContextExtensions { index, .. }
            | E::MalformedExternalSenders { index, .. }
            | E::GroupContextExtensionsUnsupported { index, .. }
            | E::UpdateByCommitter { index }
            | E::RemovesCommitter { index }
            | E::LeafTouchedTwice { index, .. }
            | E::DuplicateAdd { index, .. }
            | E::AddOfExistingMember { index }
            | E::NewLeafSignatureKeyCollision { index, .. }
            | E::NewLeafEncryptionKeyCollision { index, .. }
            | E::DuplicatePsk { index, .. }
            | E::MultipleGroupContextExtensions { index }
            | E::ReInitNotAlone { index }
            | E::ExternalInitInMemberCommit { index }
            | E::UnsupportedProposalType { index, .. }
            | E::ExternalCommitProposalByReference { index }
            | E::ExternalCommitForbiddenProposal { index, .. }
            | E::ExternalCommitMultipleExternalInit { index }
            | E::ExternalCommitMultipleRemoves { index }
            | E::ExternalCommitIdentityMismatch { index, .. } => Some(*index),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Key uniqueness (§7.3) in the tree as the Commit leaves it: keys of `vacated` leaves
/// (removed, or replaced by an Update) no longer count. Parent nodes on the vacated leaves'
/// direct paths, which the Commit blanks, still count (stricter than necessary).
struct ProvisionalKeys<'a> {
    tree: &'a RatchetTree,
    vacated: &'a [u32],
}

impl ProvisionalKeys<'_> {
    /// `in_use(except)` for the tree; the vacated leaf holding the key, if any.
    fn check(
        &self,
        in_use: impl Fn(Option<u32>) -> bool,
        holds: impl Fn(&LeafNode) -> bool,
        except_leaf: Option<u32>,
    ) -> bool {
        if !in_use(except_leaf) {
            return false;
        }
        let vacated_holder =
            self.vacated.iter().copied().find(|&v| {
                Some(v) != except_leaf && self.tree.leaf(LeafIndex(v)).is_some_and(&holds)
            });
        match (vacated_holder, except_leaf) {
            (None, _) => true,
            // Another holder besides the vacated one?
            (Some(v), None) => in_use(Some(v)),
            // The tree's keys are unique (it was validated), so the vacated leaf is the only
            // other holder.
            (Some(_), Some(_)) => false,
        }
    }
}

impl KeyUniqueness for ProvisionalKeys<'_> {
    fn signature_key_in_use(&self, key: &SignaturePublicKey, except_leaf: Option<u32>) -> bool {
        self.check(
            |except| self.tree.signature_key_in_use(key, except),
            |leaf| &leaf.signature_key == key,
            except_leaf,
        )
    }

    fn encryption_key_in_use(&self, key: &HpkePublicKey, except_leaf: Option<u32>) -> bool {
        self.check(
            |except| self.tree.encryption_key_in_use(key, except),
            |leaf| &leaf.encryption_key == key,
            except_leaf,
        )
    }
}

/// The credential types of the members that stay, other than `except`.
fn member_credential_types(
    tree: &RatchetTree,
    gone: &[u32],
    except: Option<u32>,
) -> MemberCredentialTypes {
    let excluded: Vec<LeafIndex> = gone.iter().copied().chain(except).map(LeafIndex).collect();
    tree.member_credential_types(&excluded)
}

/// What a member's capabilities lack of `requirements`, if anything.
fn missing_capability(
    leaf: &LeafNode,
    requirements: &GroupRequirements,
) -> Option<MissingCapability> {
    requirements
        .first_unsupported(&leaf.capabilities)
        .map(|unsupported| match unsupported {
            Unsupported::RequiredExtension(t) | Unsupported::ExtensionInUse(t) => {
                MissingCapability::Extension(t)
            }
            Unsupported::RequiredProposal(t) => MissingCapability::Proposal(t),
            Unsupported::RequiredCredential(t) => MissingCapability::Credential(t),
        })
}

/// A member that stays (not in `excluded`) and does not support `proposal_type` (§12.2; always
/// `None` for the RFC's default types).
pub(crate) fn member_not_supporting(
    tree: &RatchetTree,
    proposal_type: ProposalType,
    excluded: &[u32],
) -> Option<u32> {
    if proposal_type.is_default() {
        return None;
    }
    tree.leaves()
        .find(|(i, leaf)| {
            !excluded.contains(&i.0) && !supports_proposal(&leaf.capabilities, proposal_type)
        })
        .map(|(i, _)| i.0)
}

/// Requirements from GroupContext `extensions`, also checking that an `external_senders`
/// extension decodes.
fn requirements_of(
    extensions: &[Extension],
    index: usize,
) -> Result<GroupRequirements, ProposalListError> {
    let requirements = GroupRequirements::from_group_context_extensions(extensions)
        .map_err(|error| ProposalListError::InvalidGroupContextExtensions { index, error })?;
    ExternalSendersExtension::find_in(extensions)
        .map_err(|error| ProposalListError::MalformedExternalSenders { index, error })?;
    Ok(requirements)
}

/// The requirements Add and Update leaves of `proposals` are checked against (§12.3): those
/// of the (last) GroupContextExtensions proposal of the list, or else of the current
/// GroupContext. The group state machine also checks the Commit's UpdatePath leaf against them.
pub fn provisional_requirements<P: CommittedProposal>(
    ctx: &ProposalValidationContext<'_>,
    proposals: &[P],
) -> Result<GroupRequirements, ProposalListError> {
    let gce = proposals
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, p)| match p.proposal() {
            Proposal::GroupContextExtensions(gce) => Some((i, &gce.extensions)),
            _ => None,
        });
    match gce {
        Some((index, extensions)) => requirements_of(extensions, index),
        None => GroupRequirements::from_group_context_extensions(ctx.extensions)
            .map_err(ProposalListError::CurrentExtensionsInvalid),
    }
}

/// The leaf an external Commit's Remove names (the joiner's old appearance, §12.4.3.2), if it
/// has one and it is non-blank: the `replaced` leaf of
/// [`LeafNodeOrigin::Commit`] when the group validates the Commit's UpdatePath leaf.
pub fn external_commit_removed_leaf<'t, P: CommittedProposal>(
    tree: &'t RatchetTree,
    proposals: &[P],
) -> Option<(LeafIndex, &'t LeafNode)> {
    proposals.iter().find_map(|p| match p.proposal() {
        Proposal::Remove(remove) => {
            let leaf = LeafIndex(remove.removed);
            tree.leaf(leaf).map(|node| (leaf, node))
        }
        _ => None,
    })
}

/// The LeafNode validation context of a new leaf of the list.
fn leaf_context<'c>(
    ctx: &ProposalValidationContext<'c>,
    requirements: &'c GroupRequirements,
    credentials: &'c MemberCredentialTypes,
    keys: &'c dyn KeyUniqueness,
) -> LeafNodeValidationContext<'c> {
    LeafNodeValidationContext {
        version: ctx.version,
        lifetime: ctx.lifetime,
        max_lifetime: ctx.max_lifetime,
        requirements,
        member_credential_types: credentials,
        identity_provider: ctx.identity_provider,
        key_uniqueness: keys,
    }
}

/// The checks of one PreSharedKey proposal (§12.1.4) and of duplicates (§12.2).
fn check_psk(
    ctx: &ProposalValidationContext<'_>,
    index: usize,
    psk: &PreSharedKeyID,
    seen: &mut Vec<(usize, PreSharedKeyID)>,
) -> Result<(), ProposalListError> {
    let expected = ctx.suite.params().hash_len();
    if !psk.has_valid_nonce_length(expected) {
        return Err(ProposalListError::PskNonceLength {
            index,
            expected,
            found: psk.psk_nonce.as_slice().len(),
        });
    }
    if let PSKKind::Resumption(resumption) = &psk.psk {
        if !ctx.psk_usage.allows(resumption.usage) {
            return Err(ProposalListError::PskUsageNotAllowed {
                index,
                usage: resumption.usage,
            });
        }
    }
    if let Some((first, _)) = seen.iter().find(|(_, other)| other == psk) {
        return Err(ProposalListError::DuplicatePsk {
            index,
            first: *first,
        });
    }
    seen.push((index, psk.clone()));
    Ok(())
}

/// The rules on who may send what (§6, §12.1.8), common to both kinds of Commit.
fn check_sender(
    index: usize,
    sender: Sender,
    proposal: &Proposal,
) -> Result<(), ProposalListError> {
    match sender {
        Sender::External(_) if !proposal.is_allowed_for_external_sender() => {
            Err(ProposalListError::ProposalNotAllowedForExternalSender {
                index,
                proposal_type: proposal.proposal_type(),
            })
        }
        Sender::NewMemberProposal if !matches!(proposal, Proposal::Add(_)) => {
            Err(ProposalListError::NewMemberProposalNotAdd { index })
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Validates the proposal list of a Commit from `committer` (§12.2): a `member` committer for
/// a regular Commit, `new_member_commit` for an external Commit. `proposals` are resolved (see
/// [`super::ProposalStore::resolve`]) and in Commit order.
pub fn validate_proposal_list<P: CommittedProposal>(
    ctx: &ProposalValidationContext<'_>,
    committer: Sender,
    proposals: &[P],
) -> Result<(), ProposalListError> {
    for (index, p) in proposals.iter().enumerate() {
        check_sender(index, p.sender(), p.proposal())?;
    }
    match committer {
        Sender::Member(leaf) if ctx.tree.leaf(LeafIndex(leaf)).is_some() => {
            validate_member_commit(ctx, leaf, proposals)
        }
        Sender::NewMemberCommit => validate_external_commit(ctx, proposals),
        _ => Err(ProposalListError::InvalidCommitter { committer }),
    }
}

/// §12.2, second list: the proposals of an external Commit.
fn validate_external_commit<P: CommittedProposal>(
    ctx: &ProposalValidationContext<'_>,
    proposals: &[P],
) -> Result<(), ProposalListError> {
    use ProposalListError as E;
    let mut external_init = false;
    let mut remove: Option<(usize, u32)> = None;
    let mut psks = Vec::new();
    for (index, p) in proposals.iter().enumerate() {
        if p.is_by_reference() || p.sender() != Sender::NewMemberCommit {
            return Err(E::ExternalCommitProposalByReference { index });
        }
        match p.proposal() {
            Proposal::ExternalInit(_) => {
                if external_init {
                    return Err(E::ExternalCommitMultipleExternalInit { index });
                }
                external_init = true;
            }
            Proposal::Remove(r) => {
                if remove.is_some() {
                    return Err(E::ExternalCommitMultipleRemoves { index });
                }
                if ctx.tree.leaf(LeafIndex(r.removed)).is_none() {
                    return Err(E::RemoveOfBlankLeaf {
                        index,
                        removed: r.removed,
                    });
                }
                remove = Some((index, r.removed));
            }
            Proposal::PreSharedKey(psk) => check_psk(ctx, index, &psk.psk, &mut psks)?,
            other => {
                return Err(E::ExternalCommitForbiddenProposal {
                    index,
                    proposal_type: other.proposal_type(),
                })
            }
        }
    }
    if !external_init {
        return Err(E::ExternalCommitWithoutExternalInit);
    }
    let commit_leaf = ctx.commit_leaf.ok_or(E::ExternalCommitWithoutPathLeaf)?;
    if let Some((index, removed)) = remove {
        if let Some(old) = ctx.tree.leaf(LeafIndex(removed)) {
            ctx.identity_provider
                .validate_successor(&old.credential, &commit_leaf.credential)
                .map_err(|error| E::ExternalCommitIdentityMismatch { index, error })?;
        }
    }
    Ok(())
}

/// §12.2, first list: the proposals of a member Commit from leaf `committer`.
fn validate_member_commit<P: CommittedProposal>(
    ctx: &ProposalValidationContext<'_>,
    committer: u32,
    proposals: &[P],
) -> Result<(), ProposalListError> {
    use ProposalListError as E;
    let tree = ctx.tree;

    // Pass 1: rules on single proposals and on pairs that need no leaf validation.
    let mut touched: Vec<u32> = Vec::new();
    let mut removed: Vec<u32> = Vec::new();
    let mut updated: Vec<u32> = Vec::new();
    let mut psks = Vec::new();
    let mut gce: Option<(usize, &[Extension])> = None;
    for (index, p) in proposals.iter().enumerate() {
        let sender = p.sender();
        if sender == Sender::NewMemberCommit {
            return Err(E::NewMemberCommitSender { index });
        }
        match p.proposal() {
            Proposal::Add(_) => {}
            Proposal::Update(_) => {
                let leaf = match sender {
                    Sender::Member(leaf) if leaf == committer => {
                        return Err(E::UpdateByCommitter { index })
                    }
                    Sender::Member(leaf) if tree.leaf(LeafIndex(leaf)).is_some() => leaf,
                    _ => return Err(E::UpdateSenderNotMember { index }),
                };
                if touched.contains(&leaf) {
                    return Err(E::LeafTouchedTwice { index, leaf });
                }
                touched.push(leaf);
                updated.push(leaf);
            }
            Proposal::Remove(r) => {
                let leaf = r.removed;
                if leaf == committer {
                    return Err(E::RemovesCommitter { index });
                }
                if tree.leaf(LeafIndex(leaf)).is_none() {
                    return Err(E::RemoveOfBlankLeaf {
                        index,
                        removed: leaf,
                    });
                }
                if touched.contains(&leaf) {
                    return Err(E::LeafTouchedTwice { index, leaf });
                }
                touched.push(leaf);
                removed.push(leaf);
            }
            Proposal::PreSharedKey(psk) => check_psk(ctx, index, &psk.psk, &mut psks)?,
            Proposal::ReInit(reinit) => {
                if proposals.len() > 1 {
                    return Err(E::ReInitNotAlone { index });
                }
                if reinit.version < ctx.version {
                    return Err(E::ReInitVersionDowngrade {
                        index,
                        proposed: reinit.version,
                        current: ctx.version,
                    });
                }
            }
            Proposal::ExternalInit(_) => return Err(E::ExternalInitInMemberCommit { index }),
            Proposal::GroupContextExtensions(g) => {
                if gce.is_some() {
                    return Err(E::MultipleGroupContextExtensions { index });
                }
                gce = Some((index, &g.extensions));
            }
        }
    }

    // Non-default proposal types must be supported by every member that stays (the ones
    // added or removed by the Commit need not).
    for (index, p) in proposals.iter().enumerate() {
        let proposal_type = p.proposal().proposal_type();
        if let Some(leaf) = member_not_supporting(tree, proposal_type, &removed) {
            return Err(E::UnsupportedProposalType {
                index,
                proposal_type,
                leaf,
            });
        }
    }

    // The GroupContext extensions the other proposals are evaluated against (§12.3), and
    // every member that stays with its current leaf must support them (§12.1.7, §13.4).
    let requirements = match gce {
        Some((index, extensions)) => {
            let requirements = requirements_of(extensions, index)?;
            for (leaf, node) in tree.leaves() {
                if removed.contains(&leaf.0) || updated.contains(&leaf.0) {
                    continue;
                }
                if let Some(missing) = missing_capability(node, &requirements) {
                    return Err(E::GroupContextExtensionsUnsupported {
                        index,
                        leaf: leaf.0,
                        missing,
                    });
                }
            }
            requirements
        }
        None => GroupRequirements::from_group_context_extensions(ctx.extensions)
            .map_err(E::CurrentExtensionsInvalid)?,
    };

    // Pass 2: the new leaves (Updates, Adds), against the tree as the Commit leaves it.
    let vacated: Vec<u32> = touched;
    let keys = ProvisionalKeys {
        tree,
        vacated: &vacated,
    };
    let staying_credentials = member_credential_types(tree, &removed, None);
    // (position, new leaf) of every new leaf seen so far, and (position, signature key) of
    // every Add.
    let mut new_leaves: Vec<(usize, &LeafNode)> = Vec::new();
    let mut added_clients: Vec<(usize, &SignaturePublicKey)> = Vec::new();
    for (index, p) in proposals.iter().enumerate() {
        let leaf_node = match (p.proposal(), p.sender()) {
            (Proposal::Update(update), Sender::Member(leaf)) => {
                let replaced = tree
                    .leaf(LeafIndex(leaf))
                    .ok_or(E::UpdateSenderNotMember { index })?;
                let credentials = member_credential_types(tree, &removed, Some(leaf));
                validate_leaf_node(
                    ctx.suite,
                    &update.leaf_node,
                    LeafNodeOrigin::Update {
                        group_id: ctx.group_id,
                        leaf_index: leaf,
                        replaced,
                    },
                    &leaf_context(ctx, &requirements, &credentials, &keys),
                )
                .map_err(|error| E::InvalidUpdateLeafNode { index, error })?;
                &update.leaf_node
            }
            (Proposal::Add(add), _) => {
                let key_package = &add.key_package;
                let signature_key = &key_package.leaf_node.signature_key;
                if let Some((first, _)) = added_clients.iter().find(|(_, k)| *k == signature_key) {
                    return Err(E::DuplicateAdd {
                        index,
                        first: *first,
                    });
                }
                if keys.signature_key_in_use(signature_key, None) {
                    return Err(E::AddOfExistingMember { index });
                }
                let kp_ctx = KeyPackageValidationContext::new(leaf_context(
                    ctx,
                    &requirements,
                    &staying_credentials,
                    &keys,
                ));
                validate_key_package(ctx.suite, key_package, &kp_ctx)
                    .map_err(|error| E::InvalidKeyPackage { index, error })?;
                added_clients.push((index, signature_key));
                &key_package.leaf_node
            }
            _ => continue,
        };
        if let Some((other, _)) = new_leaves
            .iter()
            .find(|(_, l)| l.signature_key == leaf_node.signature_key)
        {
            return Err(E::NewLeafSignatureKeyCollision {
                index,
                other: *other,
            });
        }
        if let Some((other, _)) = new_leaves
            .iter()
            .find(|(_, l)| l.encryption_key == leaf_node.encryption_key)
        {
            return Err(E::NewLeafEncryptionKeyCollision {
                index,
                other: *other,
            });
        }
        new_leaves.push((index, leaf_node));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Filtering (the committer's side)
// ---------------------------------------------------------------------------------------------

/// A candidate proposal the committer left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedProposal<P> {
    /// The candidate.
    pub proposal: P,
    /// The rule it broke (its `index` is its position among the candidates still considered
    /// when it was dropped; see [`FilteredProposals`]).
    pub reason: ProposalListError,
}

/// The outcome of [`filter_proposals`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilteredProposals<P> {
    /// The proposals to commit, in candidate order; they pass [`validate_proposal_list`].
    pub kept: Vec<P>,
    /// The candidates left out.
    pub dropped: Vec<DroppedProposal<P>>,
}

/// Chooses which `candidates` (stored proposals by reference, then the committer's own by
/// value, in the order they should appear in the Commit) a member Commit from `committer`
/// covers (§12.2, §12.4):
///
/// 1. Of several Updates and Removes of one leaf, the first Remove is kept, or, without a
///    Remove, the most recent (last) Update.
/// 2. Of several GroupContextExtensions proposals, the most recent (last) is kept.
/// 3. A ReInit is kept only if no other proposal is left (the first ReInit then).
/// 4. Then, while [`validate_proposal_list`] names an offending proposal, it is dropped (the
///    later of two conflicting proposals is the one named).
///
/// For an external Commit (`committer` = `new_member_commit`) nothing is dropped: the joiner
/// builds its list itself, so the list is only validated. An error that names no proposal is
/// returned as is.
pub fn filter_proposals<P: CommittedProposal>(
    ctx: &ProposalValidationContext<'_>,
    committer: Sender,
    candidates: Vec<P>,
) -> Result<FilteredProposals<P>, ProposalListError> {
    if committer == Sender::NewMemberCommit {
        validate_proposal_list(ctx, committer, &candidates)?;
        return Ok(FilteredProposals {
            kept: candidates,
            dropped: Vec::new(),
        });
    }

    let n = candidates.len();
    let mut drop_reason: Vec<Option<ProposalListError>> = vec![None; n];

    // 1. Updates and Removes of the same leaf.
    let leaf_of = |p: &P| match (p.proposal(), p.sender()) {
        (Proposal::Remove(r), _) => Some((r.removed, true)),
        (Proposal::Update(_), Sender::Member(leaf)) => Some((leaf, false)),
        _ => None,
    };
    for (i, p) in candidates.iter().enumerate() {
        let Some((leaf, is_remove)) = leaf_of(p) else {
            continue;
        };
        let others = candidates
            .iter()
            .enumerate()
            .filter(|(j, q)| *j != i && leaf_of(q).is_some_and(|(l, _)| l == leaf));
        let mut superseded = false;
        for (j, q) in others {
            let Some((_, other_is_remove)) = leaf_of(q) else {
                continue;
            };
            superseded |= match (is_remove, other_is_remove) {
                (true, true) => j < i,
                (false, true) => true,
                (false, false) => j > i,
                (true, false) => false,
            };
        }
        if superseded {
            drop_reason[i] = Some(ProposalListError::LeafTouchedTwice { index: i, leaf });
        }
    }

    // 2. Only the last GroupContextExtensions.
    let last_gce = candidates
        .iter()
        .rposition(|p| matches!(p.proposal(), Proposal::GroupContextExtensions(_)));
    for (i, p) in candidates.iter().enumerate() {
        if matches!(p.proposal(), Proposal::GroupContextExtensions(_)) && Some(i) != last_gce {
            drop_reason[i] = Some(ProposalListError::MultipleGroupContextExtensions { index: i });
        }
    }

    // 3. ReInit only alone.
    let is_reinit = |p: &P| matches!(p.proposal(), Proposal::ReInit(_));
    let others_left = candidates
        .iter()
        .zip(&drop_reason)
        .any(|(p, d)| d.is_none() && !is_reinit(p));
    let mut reinit_kept = others_left;
    for (i, p) in candidates.iter().enumerate() {
        if is_reinit(p) && drop_reason[i].is_none() {
            if reinit_kept {
                drop_reason[i] = Some(ProposalListError::ReInitNotAlone { index: i });
            }
            reinit_kept = true;
        }
    }

    let mut kept = Vec::with_capacity(n);
    let mut dropped = Vec::new();
    for (p, reason) in candidates.into_iter().zip(drop_reason) {
        match reason {
            Some(reason) => dropped.push(DroppedProposal {
                proposal: p,
                reason,
            }),
            None => kept.push(p),
        }
    }

    // 4. Drop what validation names until the list is valid.
    loop {
        match validate_proposal_list(ctx, committer, &kept) {
            Ok(()) => {
                return Ok(FilteredProposals { kept, dropped });
            }
            Err(reason) => match reason.index() {
                Some(index) if index < kept.len() => {
                    let proposal = kept.remove(index);
                    dropped.push(DroppedProposal { proposal, reason });
                }
                _ => return Err(reason),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Credential, Lifetime};
    use crate::crypto::{CipherSuite, CryptoProvider as _, RustCrypto};
    use crate::messages::{KeyPackageParams, LeafNodeParams};

    const CUSTOM: ProposalType = ProposalType(0xff00);

    fn suite() -> &'static dyn SuiteProvider {
        static CRYPTO: RustCrypto = RustCrypto;
        CRYPTO.suite(CipherSuite(1)).unwrap()
    }

    fn leaf(seed: u8, custom: bool) -> LeafNode {
        let mut params = LeafNodeParams::new(CipherSuite(1), Credential::basic(vec![seed]));
        if custom {
            params = params.supported_proposal_types([CUSTOM]);
        }
        KeyPackageParams::new(
            CipherSuite(1),
            Credential::basic(vec![seed]),
            Lifetime {
                not_before: 0,
                not_after: u64::MAX,
            },
        )
        .with_leaf(params)
        .build_fresh(
            suite(),
            &suite().signature_key_pair_from_seed(&[seed; 32]).unwrap(),
        )
        .unwrap()
        .key_package
        .leaf_node
    }

    fn tree(leaves: Vec<LeafNode>) -> RatchetTree {
        let mut iter = leaves.into_iter();
        let mut tree = RatchetTree::new(iter.next().unwrap());
        for l in iter {
            tree.add_leaf(l).unwrap();
        }
        tree
    }

    #[test]
    fn non_default_proposal_types_need_every_staying_member() {
        let t = tree(vec![leaf(0, true), leaf(1, false), leaf(2, true)]);
        assert_eq!(member_not_supporting(&t, CUSTOM, &[]), Some(1));
        // A member removed by the Commit need not support it.
        assert_eq!(member_not_supporting(&t, CUSTOM, &[1]), None);
        // Default types are supported by everyone.
        assert_eq!(member_not_supporting(&t, ProposalType::ADD, &[]), None);
    }

    #[test]
    fn provisional_keys_forget_vacated_leaves() {
        let leaves = vec![leaf(0, false), leaf(1, false), leaf(2, false)];
        let t = tree(leaves.clone());
        let none = ProvisionalKeys {
            tree: &t,
            vacated: &[],
        };
        let vacated = ProvisionalKeys {
            tree: &t,
            vacated: &[1],
        };
        let sig1 = &leaves[1].signature_key;
        let enc1 = &leaves[1].encryption_key;
        assert!(none.signature_key_in_use(sig1, None));
        assert!(none.encryption_key_in_use(enc1, None));
        assert!(!vacated.signature_key_in_use(sig1, None));
        assert!(!vacated.encryption_key_in_use(enc1, None));
        assert!(!vacated.signature_key_in_use(sig1, Some(2)));
        // Keys of staying leaves still count.
        assert!(vacated.signature_key_in_use(&leaves[2].signature_key, None));
        assert!(!vacated.signature_key_in_use(&leaves[2].signature_key, Some(2)));
    }

    #[test]
    fn psk_usage_context() {
        use ResumptionPSKUsage as U;
        assert!(PskUsageContext::Normal.allows(U::Application));
        assert!(!PskUsageContext::Normal.allows(U::Reinit));
        assert!(!PskUsageContext::Normal.allows(U::Branch));
        assert!(PskUsageContext::ReInit.allows(U::Reinit));
        assert!(!PskUsageContext::ReInit.allows(U::Branch));
        assert!(PskUsageContext::Branch.allows(U::Branch));
    }

    #[test]
    fn error_index() {
        assert_eq!(
            ProposalListError::ReInitNotAlone { index: 3 }.index(),
            Some(3)
        );
        assert_eq!(
            ProposalListError::ExternalCommitWithoutExternalInit.index(),
            None
        );
    }
}
