//! SafeExportSecret (draft-ietf-mls-extensions-08 §4.4) of mls-engine cross-checked against
//! OpenMLS 0.9.2 built with its `extensions-draft` feature.
//!
//! - [`construction`]: the construction computed by hand from a known `epoch_secret`, and
//!   which reading OpenMLS computes (no engine safe-exporter API needed).
//! - [`agreement`]: an OpenMLS group and an mls-engine member in the same epoch export the
//!   same `application_export_secret` and SafeExportSecrets, before and after more commits.

mod agreement;
mod construction;
mod openmls_side;
mod vmls_side;

/// The cipher suites both sides implement.
pub const SUITES: [u16; 3] = [1, 2, 3];

/// Component IDs checked in every epoch: the first leaves, `VC_COMPONENT_ID = 6`, single
/// bits at both ends of the 16-bit index, an asymmetric pattern, and the last leaf.
pub const COMPONENT_IDS: [u16; 9] = [0, 1, 6, 0x00FF, 0x0100, 0x1234, 0x8000, 0xFFFE, 0xFFFF];
