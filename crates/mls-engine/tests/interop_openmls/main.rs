//! Interop with OpenMLS 0.9.2 and `openmls_rust_crypto` 0.6 (the plain RFC 9420 API, none of
//! OpenMLS's draft features), at the wire level.
//!
//! * [`harness`]: drive OpenMLS clients and groups in a few lines.
//! * [`engine`]: values built with mls-engine (KeyPackages with their private keys).
//! * [`key_package`]: KeyPackages both ways.
//! * [`welcome`]: OpenMLS adds an engine-built KeyPackage; its Welcome and GroupInfo.
//! * [`ratchet_tree`]: an OpenMLS three-member group's tree, GroupContext and tree hash.

mod engine;
mod harness;
mod key_package;
mod ratchet_tree;
mod welcome;
