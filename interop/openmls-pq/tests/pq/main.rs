//! The post-quantum suite `MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519` (X-Wing, code
//! point 0x004F as in OpenMLS 0.9) of mls-engine against OpenMLS 0.9.2 built with its
//! `draft-ietf-mls-pq-ciphersuites` feature (issue 16).
//!
//! * [`mixed`]: mixed groups of OpenMLS and engine members on the PQ suite, created by either
//!   side; commits of every kind and application messages both ways; agreement on the epoch,
//!   epoch authenticator, exporter, tree hash and transcript hash after every step.
//! * [`virtual_client`]: a virtual client whose emulation group is on suite 1 acting in a
//!   higher-level group on the PQ suite with OpenMLS members (DESIGN row 5: the leaf's key
//!   pairs come from the PQ suite's `DeriveKeyPair`).
//!
//! The OpenMLS helpers and the mixed-group steps are mls-engine's own interop test code,
//! compiled here from their files (not copies).

// Helpers shared with mls-engine's interop tests; this target uses only part of them.
#[allow(dead_code)]
#[path = "../../../../crates/mls-engine/tests/interop_openmls/engine.rs"]
mod engine;
#[allow(dead_code)]
#[path = "../../../../crates/mls-engine/tests/interop_openmls/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../../../../crates/mls-engine/tests/interop_openmls/roster.rs"]
mod roster;
#[allow(dead_code)]
#[path = "../../../../crates/mls-engine/tests/interop_openmls/scenario.rs"]
mod scenario;
#[allow(dead_code)]
#[path = "../../../../crates/mls-engine/tests/interop_openmls/vmls.rs"]
mod vmls;

mod mixed;
mod virtual_client;

/// The X-Wing suite's code point (OpenMLS 0.9's provisional value for the draft's TBD1).
pub const PQ_SUITE: u16 = 0x004F;
