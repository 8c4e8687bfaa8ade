//! Group policy ([`GroupConfig`]), the services a group calls ([`Services`]: crypto, identity,
//! PSKs), and the inputs and outputs of group operations.

use crate::codec::{
    AuthenticatedContent, Credential, GroupInfo, LeafNode, MlsMessage, Proposal, ProposalRef,
    Sender, Welcome,
};
use crate::crypto::{CryptoProvider, Secret};
use crate::framing::Padding;
use crate::hook::HookError;
use crate::messages::{BasicIdentityProvider, HpkeKeySource, IdentityProvider};
use crate::schedule::RatchetConfig;
use crate::tree::LeafIndex;

/// How handshake messages (proposals and commits) this client sends are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandshakeWireFormat {
    /// As PublicMessage (signed, membership tag).
    #[default]
    Public,
    /// As PrivateMessage (encrypted under the handshake ratchet).
    Private,
}

/// The default [`GroupConfig::lifetime_tolerance`]: five minutes, the clock skew TLS stacks
/// and browsers commonly accept.
pub const DEFAULT_LIFETIME_TOLERANCE: u64 = 300;

/// The application's policy for one group. Serialised with the group state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// Framing of our proposals and commits.
    pub handshake_wire_format: HandshakeWireFormat,
    /// Padding of our PrivateMessages: their plaintext is padded to a multiple of this many
    /// octets (0 or 1: no padding).
    pub padding_block: u32,
    /// Receiver-side ratchet bounds (out-of-order window and forward distance, §9.4).
    pub ratchet: RatchetConfig,
    /// How many past epochs' secret trees are kept to decrypt late application messages
    /// (§14 of the RFC leaves this to the application); 0 keeps none.
    pub max_past_epochs: u32,
    /// How many epochs of `resumption_psk` are kept (§8.6).
    pub resumption_psk_epochs: u32,
    /// Whether the GroupInfo in Welcomes we create carries the `ratchet_tree` extension
    /// (§12.4.3.3); commit options may override it.
    pub ratchet_tree_extension: bool,
    /// Whether `key_package` leaves we receive (Adds, trees) are checked against `now`
    /// (§7.3: RECOMMENDED on receipt).
    pub check_lifetimes: bool,
    /// The application's maximum total lifetime of a `key_package` leaf (§7.2); `None`
    /// accepts any.
    pub max_lifetime: Option<u64>,
    /// The clock skew, in seconds, allowed either way when checking a `key_package` leaf's
    /// lifetime against `now` (a KeyPackage made a moment ago on a clock slightly ahead of
    /// ours is not refused); default [`DEFAULT_LIFETIME_TOLERANCE`].
    pub lifetime_tolerance: u64,
    /// The largest encoded message [`super::Group::process_bytes`] accepts (octets).
    pub max_message_size: u32,
    /// Design hook H3: keep the key of every generation we encrypt with until
    /// [`super::Group::confirm_sent`], so that a sibling client sharing our leaf can still be
    /// read at that generation. (Application messages from our own leaf are accepted whenever
    /// they decrypt, which only happens for generations we did not consume.)
    pub retain_sent_keys: bool,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            handshake_wire_format: HandshakeWireFormat::Public,
            padding_block: 0,
            ratchet: RatchetConfig::default(),
            max_past_epochs: 0,
            resumption_psk_epochs: 4,
            ratchet_tree_extension: true,
            check_lifetimes: true,
            max_lifetime: None,
            lifetime_tolerance: DEFAULT_LIFETIME_TOLERANCE,
            max_message_size: 16 << 20,
            retain_sent_keys: false,
        }
    }
}

impl GroupConfig {
    pub(crate) fn padding(&self) -> Padding {
        Padding::ToMultipleOf(self.padding_block as usize)
    }

    /// The lifetime check of `key_package` leaves at `now` under this policy.
    pub(crate) fn lifetime_check(&self, now: u64) -> crate::messages::LifetimeCheck {
        if self.check_lifetimes {
            crate::messages::LifetimeCheck::Within {
                now,
                tolerance: self.lifetime_tolerance,
            }
        } else {
            crate::messages::LifetimeCheck::Skip
        }
    }
}

/// External PSKs and resumption PSKs of *other* groups, supplied by the application (§8.4).
/// Resumption PSKs of the group itself come from its own store.
pub trait PskStore: Send + Sync {
    /// The external PSK with this `psk_id`.
    fn external_psk(&self, psk_id: &[u8]) -> Option<Secret>;
    /// The `resumption_psk` of `epoch` of the group `group_id`.
    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<Secret> {
        let _ = (group_id, epoch);
        None
    }
}

/// A [`PskStore`] with no PSKs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPsks;

impl PskStore for NoPsks {
    fn external_psk(&self, _: &[u8]) -> Option<Secret> {
        None
    }
}

/// A simple in-memory [`PskStore`] of external PSKs.
#[derive(Debug, Clone, Default)]
pub struct ExternalPskMap {
    /// `(psk_id, psk)` pairs.
    pub psks: Vec<(Vec<u8>, Secret)>,
}

impl PskStore for ExternalPskMap {
    fn external_psk(&self, psk_id: &[u8]) -> Option<Secret> {
        self.psks
            .iter()
            .find(|(id, _)| id.as_slice() == psk_id)
            .map(|(_, s)| s.clone())
    }
}

/// The identity provider [`Services::new`] uses: basic credentials accepted (like
/// [`BasicIdentityProvider`] without an x509 validator).
#[derive(Debug, Clone, Copy, Default)]
pub struct BasicCredentialsOnly;

impl IdentityProvider for BasicCredentialsOnly {
    fn validate_credential(
        &self,
        credential: &Credential,
        signature_key: &crate::codec::SignaturePublicKey,
    ) -> Result<(), crate::messages::CredentialError> {
        BasicIdentityProvider::new().validate_credential(credential, signature_key)
    }

    fn validate_successor(
        &self,
        old: &Credential,
        new: &Credential,
    ) -> Result<(), crate::messages::CredentialError> {
        BasicIdentityProvider::new().validate_successor(old, new)
    }
}

static BASIC_IDENTITY: BasicCredentialsOnly = BasicCredentialsOnly;

/// The secrets behind a commit another client sharing our leaf made (design hook H2).
#[derive(Debug, Clone)]
pub struct SiblingCommitSecrets {
    /// The new leaf's HPKE key pair.
    pub leaf_key: crate::crypto::HpkeKeyPair,
    /// `path_secret[0]` of the UpdatePath.
    pub path_secret_0: Secret,
    /// The private key of the new leaf's signature key, if it changed (we sign with it from
    /// then on); `None` if the signature key is unchanged.
    pub signature_key: Option<crate::crypto::SignatureKeyPair>,
}

/// Resolves commits and Updates sent from our own leaf by another client sharing it (design
/// hook H2). Without one, such messages are refused with `GroupError::OwnLeafMessage`.
///
/// Each method answers with the secrets, [`HookError::Unsupported`] (the message is refused
/// as if there were no resolver: `GroupError::OwnLeafMessage`) or [`HookError::Failed`] with
/// the application's error (refused with `GroupError::OwnLeafResolver`). A resolver is asked
/// before the engine has checked the whole message: it must not change anything of the
/// application's state.
pub trait OwnLeafResolver {
    /// The secrets of the commit whose UpdatePath carries `new_leaf`.
    fn commit_secrets(&self, new_leaf: &LeafNode) -> Result<SiblingCommitSecrets, HookError>;
    /// The HPKE key pair of `new_leaf`, the leaf of an Update proposal from our leaf.
    fn update_leaf_key(&self, new_leaf: &LeafNode)
        -> Result<crate::crypto::HpkeKeyPair, HookError>;
    /// The ExternalInit ephemeral seed of the external commit whose UpdatePath carries
    /// `new_leaf` (see [`crate::group::ExternalCommitOptions::external_init_seed`]); asked only
    /// by [`crate::group::Group::follow_external_commit`]. Default: unsupported (such commits
    /// are refused).
    fn external_init_seed(&self, new_leaf: &LeafNode) -> Result<Secret, HookError> {
        let _ = new_leaf;
        Err(HookError::Unsupported)
    }
}

/// The answer of an own-leaf resolver as a group result (see [`OwnLeafResolver`]).
pub(crate) fn resolved<T>(answer: Result<T, HookError>) -> Result<T, super::GroupError> {
    answer.map_err(|e| match e {
        HookError::Unsupported => super::GroupError::OwnLeafMessage,
        failed => super::GroupError::OwnLeafResolver(failed),
    })
}

/// What a group calls out to: cryptography and randomness, the Authentication Service, PSKs,
/// and the resolver of messages from our own leaf.
#[derive(Clone, Copy)]
pub struct Services<'a> {
    /// Cryptography and randomness.
    pub crypto: &'a dyn CryptoProvider,
    /// Credential validation (§5.3.1).
    pub identity: &'a dyn IdentityProvider,
    /// External and cross-group resumption PSKs.
    pub psks: &'a dyn PskStore,
    /// Design hook H2: commits and Updates from our own leaf by a sibling client.
    pub own_leaf: Option<&'a dyn OwnLeafResolver>,
}

impl<'a> Services<'a> {
    /// `crypto` with basic credentials accepted and no PSKs.
    pub fn new(crypto: &'a dyn CryptoProvider) -> Self {
        Self {
            crypto,
            identity: &BASIC_IDENTITY,
            psks: &NoPsks,
            own_leaf: None,
        }
    }

    /// Sets the resolver of messages from our own leaf (design hook H2).
    pub fn with_own_leaf_resolver(mut self, resolver: &'a dyn OwnLeafResolver) -> Self {
        self.own_leaf = Some(resolver);
        self
    }

    /// Replaces the PSK store.
    pub fn with_psks(mut self, psks: &'a dyn PskStore) -> Self {
        self.psks = psks;
        self
    }

    /// Replaces the identity provider.
    pub fn with_identity(mut self, identity: &'a dyn IdentityProvider) -> Self {
        self.identity = identity;
        self
    }
}

impl core::fmt::Debug for Services<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Services { .. }")
    }
}

/// The choices of one Commit. `Default` and [`CommitOptions::new`] agree: pending proposals
/// included, path only if required, the group's ratchet-tree policy, no GroupInfo.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    /// Proposals sent by value in the Commit (in addition to the pending ones by reference).
    pub proposals: Vec<Proposal>,
    /// Whether pending proposals (received or sent in this epoch) are committed by reference
    /// (default `true`).
    pub include_pending: bool,
    /// Include an UpdatePath even when not required.
    pub force_path: bool,
    /// Put the `ratchet_tree` extension in the Welcome's GroupInfo (`None`: the group's
    /// config).
    pub ratchet_tree_in_welcome: Option<bool>,
    /// Put `external_pub` in the returned GroupInfo (and return a GroupInfo).
    pub external_pub: bool,
    /// Return a signed GroupInfo of the new epoch (with `ratchet_tree` if
    /// `ratchet_tree_in_welcome` resolves to true).
    pub group_info: bool,
    /// The key pair of our new leaf, if the commit has a path (default: fresh).
    pub leaf_key: Option<HpkeKeySource>,
    /// `path_secret[0]` of the UpdatePath (design hook H1; default: fresh).
    pub path_secret_0: Option<Secret>,
    /// New credential, capabilities and extensions of our leaf in the UpdatePath (design hook
    /// H1; default: those of our current leaf). Capabilities are completed as for any leaf.
    pub leaf_params: Option<crate::messages::LeafNodeParams>,
    /// A new signature key pair for our leaf in the UpdatePath (design hook H1; default:
    /// unchanged). The Commit itself is signed with the current key; the new leaf with this
    /// one, which we sign with from the new epoch on.
    pub signature_key: Option<crate::crypto::SignatureKeyPair>,
    /// `authenticated_data` of the Commit.
    pub authenticated_data: Vec<u8>,
    /// SafeAAD items put before `authenticated_data` (draft-ietf-mls-extensions-08 §4.9,
    /// design hook H6). Needs a group that uses SafeAAD; when it does and this is `None`, an
    /// empty `SafeAAD` is put there.
    pub safe_aad: Option<crate::extensions::SafeAad>,
    /// Which resumption-PSK usages the Commit may inject (§12.1.4): `ReInit` / `Branch` for
    /// the first Commit of a group created by a ReInit or a branch (§11.2, §11.3).
    pub psk_usage: super::proposals::PskUsageContext,
}

impl Default for CommitOptions {
    fn default() -> Self {
        Self {
            proposals: Vec::new(),
            include_pending: true,
            force_path: false,
            ratchet_tree_in_welcome: None,
            external_pub: false,
            group_info: false,
            leaf_key: None,
            path_secret_0: None,
            leaf_params: None,
            signature_key: None,
            authenticated_data: Vec::new(),
            safe_aad: None,
            psk_usage: super::proposals::PskUsageContext::Normal,
        }
    }
}

impl CommitOptions {
    /// The default options: pending proposals included, path only if required.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a proposal by value.
    pub fn proposal(mut self, proposal: Proposal) -> Self {
        self.proposals.push(proposal);
        self
    }

    /// Forces an UpdatePath.
    pub fn with_path(mut self) -> Self {
        self.force_path = true;
        self
    }
}

/// What creating a Commit produced.
#[derive(Debug, Clone)]
pub struct CommitOutput {
    /// The Commit, framed per the group's policy.
    pub commit: MlsMessage,
    /// The Welcome for the members it adds.
    pub welcome: Option<Welcome>,
    /// The signed GroupInfo of the new epoch, if asked for.
    pub group_info: Option<GroupInfo>,
}

/// A member of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its leaf index.
    pub index: LeafIndex,
    /// Its credential.
    pub credential: Credential,
    /// Its signature key.
    pub signature_key: Vec<u8>,
    /// Its leaf.
    pub leaf_node: LeafNode,
}

/// What processing a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // Short-lived results; boxing would only add allocations.
pub enum ProcessedMessage {
    /// Application data from a member.
    Application {
        /// The sender's leaf.
        sender: LeafIndex,
        /// The data.
        data: Vec<u8>,
        /// The message's `authenticated_data`.
        authenticated_data: Vec<u8>,
    },
    /// A proposal, stored for the next commit under its reference.
    Proposal {
        /// Its sender.
        sender: Sender,
        /// Its reference.
        reference: ProposalRef,
        /// The proposal.
        proposal: Proposal,
    },
    /// A commit was applied: the group is in a new epoch.
    Commit {
        /// Its sender.
        sender: Sender,
        /// The new epoch.
        epoch: u64,
        /// Whether it was our own pending commit coming back (merged).
        own: bool,
        /// Whether the commit removed us: the group is then inactive.
        removed_us: bool,
    },
}

/// A pending commit: the commit as sent and the group it leads to.
#[derive(Debug, Clone)]
pub(crate) struct PendingCommit {
    /// The commit as signed (kept for the state codec and diagnostics).
    pub(crate) content: AuthenticatedContent,
    pub(crate) sent_message: Vec<u8>,
    pub(crate) next: Box<super::state::GroupState>,
}

/// Parameters of a new group's creator leaf, or of a joiner's new leaf in an external commit.
#[derive(Debug, Clone)]
pub struct OwnLeaf {
    /// Credential, capabilities, extensions.
    pub params: crate::messages::LeafNodeParams,
    /// The leaf's HPKE key pair source (design hook H1).
    pub encryption_key: HpkeKeySource,
    /// The signature key pair.
    pub signature_key: crate::crypto::SignatureKeyPair,
}
