//! The protocol holes of issue 10, one module each; every test failed before its fix.
//!
//! | module | hole |
//! |---|---|
//! | [`malformed_action`] | 1: a sibling applies an accepted emulation Commit whose action is malformed |
//! | [`rejoin`] | 3: a new device rejoins by external commit replacing the virtual client's leaf |
//! | [`external_pending`] | 4: an external join is pending until confirmed or abandoned |
//! | [`last_resort`] | 5: last-resort KeyPackages of the virtual client |
//! | [`leave`] | 6: removal deletes the group's secrets; leave and forget a group |
//! | [`removal`] | a device removal: removed devices reported, KeyPackages retired, leaf and signature key rotated; 2: the derivation epoch and the retention check |
//! | [`recovery`] | the recovery class of every `EmulatorError` |
//! | [`clock_skew`] | 9: a configurable lifetime clock-skew tolerance, against mls-rs 0.57 KeyPackages |
//! | [`sent_keys`] | 7: sent-message keys (H3) bounded by time, `now` passed in |
//! | [`group_config`] | 8: per-group policy; PrivateMessage commits with the reuse guard |
//! | [`hooks`] | 10: the own-leaf resolver (H2) and the reuse guard (H4) report typed errors |

#[path = "common/mod.rs"]
mod common;
#[path = "protocol_holes/world.rs"]
mod world;

#[path = "protocol_holes/clock_skew.rs"]
mod clock_skew;
#[path = "protocol_holes/external_pending.rs"]
mod external_pending;
#[path = "protocol_holes/group_config.rs"]
mod group_config;
#[path = "protocol_holes/hooks.rs"]
mod hooks;
#[path = "protocol_holes/last_resort.rs"]
mod last_resort;
#[path = "protocol_holes/leave.rs"]
mod leave;
#[path = "protocol_holes/malformed_action.rs"]
mod malformed_action;
#[path = "protocol_holes/recovery.rs"]
mod recovery;
#[path = "protocol_holes/rejoin.rs"]
mod rejoin;
#[path = "protocol_holes/removal.rs"]
mod removal;
#[path = "protocol_holes/sent_keys.rs"]
mod sent_keys;
