//! # virtual-clients
//!
//! MLS Virtual Clients (draft-kohbrok-mls-virtual-clients-04, "the draft"): several emulator
//! clients, coordinated through their own MLS group (the emulation group), derive the key
//! material of one shared leaf (the virtual client) in every higher-level group. Built on the
//! general hooks of `mls-engine`; sans-IO like the engine.
//!
//! | module | draft |
//! |---|---|
//! | [`epoch`] | §5.2 emulation-epoch secrets |
//! | [`pprf`] | §5.2-§5.3 the puncturable PRF over `epoch_base_secret` (DESIGN §5 rows 2-3) |
//! | [`derivation`] | §5.3 operation secrets, key secrets and the DerivationInfoExtension |
//! | [`wire`] | §5.2-§5.5 wire structs (`DerivationInfoExtension`, `EpochInfoTBE`, `HashInput`, `VirtualClientAction`...) and the sealing of `EpochInfoTBE` (rows 7-9) |
//! | [`reuse_guard`] | §5.6 the FF1 reuse guard (subgroups-00 §4, DESIGN §5 row 11) |
//! | [`emulator`] | §5.3, §5.6 the emulator client: emulation epochs, higher-level groups as the virtual client |
//! | [`storage`] | DESIGN §6: the store trait, an in-memory store, one atomic save per processed message |
//! | [`runtime`] | the device runtime (issue 10): one sans-IO [`runtime::Device`] that owns the choreography |
//! | [`transfer`] | §5.4 adding emulator clients: the `DeviceState` state transfer (subgroups-00 §5 `NewDeviceState`, DESIGN §5 row 12 (a)) |
#![forbid(unsafe_code)]
#![warn(missing_docs)]
pub mod derivation;
pub mod emulator;
pub mod epoch;
pub mod pprf;
pub mod reuse_guard;
pub mod runtime;
pub mod storage;
pub mod transfer;
pub mod wire;
