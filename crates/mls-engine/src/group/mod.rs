//! The RFC 9420 client state machine (§8-§12): creating a group, joining one from a Welcome
//! or by external commit, sending proposals and commits, processing messages, and the whole
//! group state as bytes (design hook H8).
//!
//! * [`Group`]: the state of one member in one group, and every operation on it. Sans-IO:
//!   cryptography, randomness, the Authentication Service and PSKs come in through
//!   [`Services`]; the time as `now` (seconds since the Unix epoch).
//! * [`GroupConfig`]: the application's policy (handshake framing, padding, ratchet window,
//!   past epochs kept, ratchet tree in Welcomes, lifetime checks).
//! * [`CommitOptions`] / [`CommitOutput`], [`ProcessedMessage`], [`ExternalCommitOptions`].
//! * [`GroupError`]: every rejection names the RFC check; a rejected message leaves the
//!   state byte-identical (`to_bytes`).
//! * [`proposals`]: proposal-list validation (§12.2) and application (§12.3).
//! * `state_codec`: `Group::to_bytes` / `Group::from_bytes` (format version 1).
//!
//! Operations and their RFC sections: [`Group::create`] §11; [`Group::join_from_welcome`]
//! §12.4.3.1; [`Group::join_by_external_commit`] §12.4.3.2; `propose_*` §12.1;
//! [`Group::commit`] §12.4.1; [`Group::process`] §6, §12.1.8, §12.4.2.
//!
//! Design hooks (DESIGN §4): H1 given key material ([`LeafSecrets`],
//! [`CommitOptions::leaf_key`], [`CommitOptions::leaf_params`], [`CommitOptions::signature_key`],
//! [`CommitOptions::path_secret_0`], [`OwnLeaf::encryption_key`],
//! [`ExternalCommitOptions::path_secret_0`], [`Group::propose_update`]); H2 commits and
//! Updates from our own leaf by a sibling ([`Services::with_own_leaf_resolver`]); H3 retained
//! send keys ([`GroupConfig::retain_sent_keys`], [`Group::confirm_sent`]); H4 the sender's
//! reuse guard ([`Group::encrypt_application_with`]); H5 the safe exporter
//! ([`Group::safe_export_secret`]); H6 SafeAAD ([`CommitOptions::safe_aad`],
//! [`Group::propose_with_safe_aad`], [`Group::encrypt_application_with_safe_aad`],
//! [`Group::process_message`]); H8 [`Group::to_bytes`] / [`Group::from_bytes`].

mod commit;
mod config;
mod create;
mod error;
mod follow_external;
mod leaf_secrets;
mod process;
mod proposal_list;
pub mod proposals;
mod safe_aad;
mod state;
mod state_codec;

pub use commit::{external_proposal, new_member_proposal};
pub use config::{
    BasicCredentialsOnly, CommitOptions, CommitOutput, ExternalPskMap, GroupConfig,
    HandshakeWireFormat, Member, NoPsks, OwnLeaf, OwnLeafResolver, ProcessedMessage, PskStore,
    Services, SiblingCommitSecrets, DEFAULT_LIFETIME_TOLERANCE,
};
pub use create::ExternalCommitOptions;
pub use error::GroupError;
pub use leaf_secrets::LeafSecrets;
pub use safe_aad::{safe_aad_in_use, ReceivedMessage};
pub use state::{Group, GroupStatus, SentKey, StoredProposal};
pub use state_codec::STATE_FORMAT_VERSION;
