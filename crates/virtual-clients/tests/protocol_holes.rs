//! The protocol holes of issue 10, one module each; every test failed before its fix.
//!
//! | module | hole |
//! |---|---|
//! | [`malformed_action`] | 1: a sibling applies an accepted emulation Commit whose action is malformed |
//! | [`hooks`] | 10: the own-leaf resolver (H2) and the reuse guard (H4) report typed errors |

#[path = "common/mod.rs"]
mod common;
#[path = "protocol_holes/world.rs"]
mod world;

#[path = "protocol_holes/hooks.rs"]
mod hooks;
#[path = "protocol_holes/malformed_action.rs"]
mod malformed_action;
