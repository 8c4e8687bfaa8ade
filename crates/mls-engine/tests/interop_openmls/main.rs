//! Interop with OpenMLS 0.9.2 and `openmls_rust_crypto` 0.6 (the plain RFC 9420 API, none of
//! OpenMLS's draft features): at the wire level, and with mixed groups of OpenMLS and engine
//! members.
//!
//! * [`harness`]: drive OpenMLS clients and groups in a few lines.
//! * [`engine`]: values built with mls-engine (KeyPackages with their private keys).
//! * [`key_package`]: KeyPackages both ways.
//! * [`welcome`]: OpenMLS adds an engine-built KeyPackage; its Welcome and GroupInfo.
//! * [`ratchet_tree`]: an OpenMLS three-member group's tree, GroupContext and tree hash.
//!
//! Group level (issue 3), driving `mls_engine::group::Group`:
//!
//! * [`vmls`]: an engine client and its group, messages in and out as bytes.
//! * [`roster`]: a mixed group; fan-out of messages and the agreement checks.
//! * [`scenario`]: the steps of a mixed-group scenario, for any suite (also used by
//!   `interop/openmls-pq`).
//! * [`groups`]: (a) OpenMLS adds engine clients, (b) the engine adds OpenMLS clients,
//!   (c) commits of every kind both ways, proposals by reference, (d) application messages,
//!   PrivateMessage handshakes, (f) refused messages.
//! * [`external_join`]: (e) external joins both ways, with the resync Remove.
//! * [`external_senders`]: (c) GroupContextExtensions setting `external_senders`, external
//!   Remove proposals and `new_member_proposal` Adds, each side committing the other's.
//! * [`group_context`]: (a), (b) groups created with `required_capabilities` and
//!   `external_senders`; incapable KeyPackages refused by each side.
//! * [`psk`]: (c) external and resumption PreSharedKey proposals both ways, a PSK in a
//!   commit with Adds.
//! * [`soak`]: a longer pseudo-random mixed run (adds with and without path, removes,
//!   updates, proposals by reference, external joins, application messages, 3 to 12
//!   members).

mod engine;
mod external_join;
mod external_senders;
mod group_context;
mod groups;
mod harness;
mod hooks;
mod key_package;
mod psk;
mod ratchet_tree;
mod roster;
mod scenario;
mod soak;
mod vmls;
mod welcome;
