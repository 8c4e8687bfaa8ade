//! # mls-engine
//!
//! An implementation of the Messaging Layer Security protocol (RFC 9420), written to carry the
//! hooks that MLS virtual clients need (see `DESIGN.md` §4 of the project). The crate is
//! sans-IO: it never touches sockets, clocks or files. Bytes go in, bytes and events come out;
//! randomness and cryptography come in through the [`crypto::CryptoProvider`] trait.
//!
//! Modules map onto the RFC:
//!
//! | module | RFC 9420 |
//! |---|---|
//! | [`crypto`] | §5 (cipher suites, labelled operations, hash-based identifiers) |
//! | [`codec`] | §6-§12 wire structs, TLS presentation language (§2.1) |
//! | [`tree`] | §4 tree math, §7 ratchet tree, tree hash, parent hash, TreeKEM |
//! | [`schedule`] | §8 key schedule, PSKs, exporter, transcript hashes; §9 secret tree |
//! | [`framing`] | §6 PublicMessage and PrivateMessage protection |
//! | [`welcome`] | §12.4.3.1 building and opening Welcome messages |
//! | [`messages`] | §5.3.1 credential validation, §7.2-§7.3 LeafNode and §10 KeyPackage creation and validation |
//! | [`extensions`] | draft-ietf-mls-extensions-08 §4: component labels, Safe HPKE/signatures, the Exporter Tree, AppDataDictionary, SafeAAD |
//! | [`group`] | §8-§12 the client state machine: create, join, propose, commit, process; state as bytes; the public view of a group for a non-member ([`group::PublicGroup`]) |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod crypto;
pub mod extensions;
pub mod framing;
pub mod group;
pub mod messages;
pub mod parallel;
pub mod schedule;
pub mod tree;
pub mod welcome;
