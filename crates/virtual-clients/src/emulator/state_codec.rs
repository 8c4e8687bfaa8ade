//! The whole state of an [`EmulatorClient`] as bytes (DESIGN §6: one value a store writes in
//! one transaction per processed message). Versioned; it holds secrets.
//!
//! ```text
//! struct {
//!   opaque encryption_key_secret<V>;
//!   opaque epoch_id<V>;
//! } LeafState;
//!
//! struct {
//!   opaque group<V>;                 /* Group::to_bytes */
//!   LeafState leaf;
//!   optional<LeafState> pending;
//!   UpdateLeaf updates<V>;           /* { opaque encryption_key<V>; LeafState leaf; } */
//! } HigherGroupState;
//!
//! struct {
//!   KeyPackage key_package;
//!   opaque init_private_key<V>;
//!   opaque encryption_private_key<V>;
//!   opaque signature_private_key<V>;
//!   opaque signature_public_key<V>;
//!   LeafState leaf;
//! } OwnKeyPackageState;
//!
//! struct {
//!   KeyPackageRef key_package_ref;
//!   opaque epoch_id<V>;
//!   uint32 leaf_index;               /* emulation-group leaf of the deriving sibling */
//!   opaque random<V>;
//! } UploadedKeyPackageState;       /* from a sibling's KeyPackageUpload (draft §5.5.1) */
//!
//! struct {
//!   opaque group<V>;                 /* Group::to_bytes, in the epoch the commit creates */
//!   LeafState leaf;
//!   opaque commit<V>;                /* the external commit as sent */
//! } PendingExternalJoinState;
//!
//! struct {
//!   uint16 version = 4;              /* 1: without `uploaded` and the joins; 2: without
//!                                       the joins; 3: without the pending external joins;
//!                                       all still read */
//!   opaque emulation_group<V>;       /* Group::to_bytes */
//!   opaque epochs<V><V>;             /* EmulationEpochSecrets::to_bytes, oldest first */
//!   HigherGroupState groups<V>;
//!   OwnKeyPackageState key_packages<V>;
//!   Credential credential;
//!   UploadedKeyPackageState uploaded<V>;   /* version >= 2 */
//!   opaque external_joins<V><V>;     /* version 3: announced ExternalJoin group IDs */
//!   optional<opaque> pending_external_join<V>;   /* version 3: ours, not yet accepted */
//!   PendingExternalJoinState pending_external_joins<V>;   /* version 4 */
//!   SentKeyState sent_keys<V>;       /* version 4: { opaque group_id<V>; uint64 epoch;
//!                                       uint8 handshake; uint32 generation;
//!                                       optional<uint64> sent_at; } */
//! } EmulatorClientState;
//! ```

use std::collections::BTreeMap;

use mls_engine::codec::{decode_exact, Credential};
use mls_engine::crypto::{
    CryptoProvider, HpkePrivateKey, Secret, SignatureKeyPair, SignaturePrivateKey,
};
use mls_engine::group::{Group, SentKey};
use mls_engine::messages::{key_package_ref, KeyPackageBundle, KeyPackagePrivate};
use tls_codec::{
    SecretVLBytes, Serialize as _, Size as _, TlsDeserialize, TlsDeserializeBytes, TlsSerialize,
    TlsSize, VLBytes,
};

use super::{
    EmulatorClient, EmulatorError, HigherGroup, LeafState, OwnKeyPackage, PendingExternalJoin,
    SentKeyRecord, UploadedKeyPackage,
};
use crate::epoch::EmulationEpochSecrets;
use crate::transfer::{KeyPackageKeys, UpdateLeaf, UploadedKeyPackageRef, VirtualClientLeaf};

/// The version of the [`EmulatorClient::to_bytes`] format.
pub const EMULATOR_STATE_VERSION: u16 = 4;

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct HigherGroupV1 {
    group: SecretVLBytes,
    leaf: VirtualClientLeaf,
    pending: Option<VirtualClientLeaf>,
    updates: Vec<UpdateLeaf>,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct EmulatorClientV1 {
    version: u16,
    emulation_group: SecretVLBytes,
    epochs: Vec<SecretVLBytes>,
    groups: Vec<HigherGroupV1>,
    key_packages: Vec<KeyPackageKeys>,
    credential: Credential,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct EmulatorClientV2 {
    version: u16,
    emulation_group: SecretVLBytes,
    epochs: Vec<SecretVLBytes>,
    groups: Vec<HigherGroupV1>,
    key_packages: Vec<KeyPackageKeys>,
    credential: Credential,
    uploaded: Vec<UploadedKeyPackageRef>,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct EmulatorClientV3 {
    version: u16,
    emulation_group: SecretVLBytes,
    epochs: Vec<SecretVLBytes>,
    groups: Vec<HigherGroupV1>,
    key_packages: Vec<KeyPackageKeys>,
    credential: Credential,
    uploaded: Vec<UploadedKeyPackageRef>,
    external_joins: Vec<VLBytes>,
    pending_external_join: Option<VLBytes>,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct PendingExternalJoinV1 {
    group: SecretVLBytes,
    leaf: VirtualClientLeaf,
    commit: VLBytes,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct EmulatorClientV4 {
    version: u16,
    emulation_group: SecretVLBytes,
    epochs: Vec<SecretVLBytes>,
    groups: Vec<HigherGroupV1>,
    key_packages: Vec<KeyPackageKeys>,
    credential: Credential,
    uploaded: Vec<UploadedKeyPackageRef>,
    external_joins: Vec<VLBytes>,
    pending_external_join: Option<VLBytes>,
    pending_external_joins: Vec<PendingExternalJoinV1>,
    sent_keys: Vec<SentKeyV1>,
}

#[derive(Debug, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct SentKeyV1 {
    group_id: VLBytes,
    epoch: u64,
    handshake: u8,
    generation: u32,
    sent_at: Option<u64>,
}

impl From<EmulatorClientV3> for EmulatorClientV4 {
    fn from(v3: EmulatorClientV3) -> Self {
        Self {
            version: v3.version,
            emulation_group: v3.emulation_group,
            epochs: v3.epochs,
            groups: v3.groups,
            key_packages: v3.key_packages,
            credential: v3.credential,
            uploaded: v3.uploaded,
            external_joins: v3.external_joins,
            pending_external_join: v3.pending_external_join,
            pending_external_joins: Vec::new(),
            sent_keys: Vec::new(),
        }
    }
}

impl From<EmulatorClientV2> for EmulatorClientV3 {
    fn from(v2: EmulatorClientV2) -> Self {
        Self {
            version: v2.version,
            emulation_group: v2.emulation_group,
            epochs: v2.epochs,
            groups: v2.groups,
            key_packages: v2.key_packages,
            credential: v2.credential,
            uploaded: v2.uploaded,
            external_joins: Vec::new(),
            pending_external_join: None,
        }
    }
}

crate::transfer::redacted_debug!(HigherGroupV1);
crate::transfer::redacted_debug!(PendingExternalJoinV1);

/// The record of a leaf's key material (state and transfer share it).
pub(super) fn leaf_to(leaf: &LeafState) -> VirtualClientLeaf {
    VirtualClientLeaf {
        encryption_key_secret: SecretVLBytes::new(leaf.encryption_key_secret.as_bytes().to_vec()),
        epoch_id: VLBytes::new(leaf.epoch_id.clone()),
    }
}

/// A leaf's key material from its record.
pub(super) fn leaf_from(leaf: &VirtualClientLeaf) -> LeafState {
    LeafState {
        encryption_key_secret: Secret::new(leaf.encryption_key_secret.as_slice().to_vec()),
        epoch_id: leaf.epoch_id.as_slice().to_vec(),
    }
}

/// The record of an unused KeyPackage of ours, with its private keys.
pub(super) fn key_package_keys(k: &OwnKeyPackage) -> KeyPackageKeys {
    KeyPackageKeys {
        key_package: k.bundle.key_package.clone(),
        init_private_key: SecretVLBytes::new(k.bundle.private.init_private_key.as_bytes().to_vec()),
        encryption_private_key: SecretVLBytes::new(
            k.bundle.private.encryption_private_key.as_bytes().to_vec(),
        ),
        signature_private_key: SecretVLBytes::new(k.signature_key.private_key.as_bytes().to_vec()),
        signature_public_key: VLBytes::new(k.signature_key.public_key.clone()),
        leaf: leaf_to(&k.leaf),
    }
}

/// An unused KeyPackage of ours from its record; `crypto` recomputes its KeyPackageRef.
pub(super) fn own_key_package(
    crypto: &dyn CryptoProvider,
    k: KeyPackageKeys,
) -> Result<OwnKeyPackage, EmulatorError> {
    let suite = crypto.suite(k.key_package.cipher_suite)?;
    let reference = key_package_ref(suite, &k.key_package)?;
    Ok(OwnKeyPackage {
        leaf: leaf_from(&k.leaf),
        signature_key: SignatureKeyPair {
            private_key: SignaturePrivateKey::new(k.signature_private_key.as_slice().to_vec()),
            public_key: k.signature_public_key.as_slice().to_vec(),
        },
        bundle: KeyPackageBundle {
            key_package: k.key_package,
            private: KeyPackagePrivate {
                init_private_key: HpkePrivateKey::new(k.init_private_key.as_slice().to_vec()),
                encryption_private_key: HpkePrivateKey::new(
                    k.encryption_private_key.as_slice().to_vec(),
                ),
            },
            reference,
        },
    })
}

/// The record of a sibling's announced KeyPackage.
pub(super) fn uploaded_to(u: &UploadedKeyPackage) -> UploadedKeyPackageRef {
    UploadedKeyPackageRef {
        key_package_ref: u.reference.clone(),
        epoch_id: VLBytes::new(u.epoch_id.clone()),
        leaf_index: u.leaf_index,
        random: VLBytes::new(u.random.clone()),
    }
}

/// A sibling's announced KeyPackage from its record.
pub(super) fn uploaded_from(u: UploadedKeyPackageRef) -> UploadedKeyPackage {
    UploadedKeyPackage {
        reference: u.key_package_ref,
        epoch_id: u.epoch_id.as_slice().to_vec(),
        leaf_index: u.leaf_index,
        random: u.random.as_slice().to_vec(),
    }
}

/// The record of an Update proposal of ours not yet committed.
pub(super) fn update_to((public, leaf): &(Vec<u8>, LeafState)) -> UpdateLeaf {
    UpdateLeaf {
        encryption_key: VLBytes::new(public.clone()),
        leaf: leaf_to(leaf),
    }
}

impl EmulatorClient {
    /// The client's whole state (emulation group, emulation epochs, higher-level groups,
    /// unused KeyPackages) as `EmulatorClientState` bytes. They hold secrets.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EmulatorError> {
        let mut epochs = Vec::with_capacity(self.epochs.len());
        for e in &self.epochs {
            epochs.push(SecretVLBytes::new(e.to_bytes()?));
        }
        let mut groups = Vec::with_capacity(self.groups.len());
        for g in self.groups.values() {
            groups.push(HigherGroupV1 {
                group: SecretVLBytes::new(g.group.to_bytes()?),
                leaf: leaf_to(&g.leaf),
                pending: g.pending.as_ref().map(leaf_to),
                updates: g.updates.iter().map(update_to).collect(),
            });
        }
        let key_packages = self.key_packages.iter().map(key_package_keys).collect();
        let uploaded = self.uploaded.iter().map(uploaded_to).collect();
        let mut pending_external_joins = Vec::with_capacity(self.pending_external.len());
        for p in self.pending_external.values() {
            pending_external_joins.push(PendingExternalJoinV1 {
                group: SecretVLBytes::new(p.group.to_bytes()?),
                leaf: leaf_to(&p.leaf),
                commit: VLBytes::new(p.commit.clone()),
            });
        }
        let state = EmulatorClientV4 {
            version: EMULATOR_STATE_VERSION,
            emulation_group: SecretVLBytes::new(self.emulation.to_bytes()?),
            epochs,
            groups,
            key_packages,
            credential: self.credential.clone(),
            uploaded,
            external_joins: self
                .external_joins
                .iter()
                .map(|g| VLBytes::new(g.clone()))
                .collect(),
            pending_external_join: self
                .pending_external_join
                .as_ref()
                .map(|g| VLBytes::new(g.clone())),
            pending_external_joins,
            sent_keys: self
                .sent_keys
                .iter()
                .map(|r| SentKeyV1 {
                    group_id: VLBytes::new(r.group_id.clone()),
                    epoch: r.key.epoch,
                    handshake: u8::from(r.key.handshake),
                    generation: r.key.generation,
                    sent_at: r.sent_at,
                })
                .collect(),
        };
        let mut out = Vec::with_capacity(state.tls_serialized_len());
        state
            .tls_serialize(&mut out)
            .map_err(|e| EmulatorError::Codec(e.into()))?;
        Ok(out)
    }

    /// Restores [`EmulatorClient::to_bytes`]. `crypto` recomputes the KeyPackageRefs.
    pub fn from_bytes(crypto: &dyn CryptoProvider, bytes: &[u8]) -> Result<Self, EmulatorError> {
        let version = match bytes {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => return Err(EmulatorError::MalformedState("no version")),
        };
        let state: EmulatorClientV4 = match version {
            1 => {
                let v1: EmulatorClientV1 = decode_exact(bytes)?;
                let v2 = EmulatorClientV2 {
                    version: v1.version,
                    emulation_group: v1.emulation_group,
                    epochs: v1.epochs,
                    groups: v1.groups,
                    key_packages: v1.key_packages,
                    credential: v1.credential,
                    uploaded: Vec::new(),
                };
                EmulatorClientV3::from(v2).into()
            }
            2 => EmulatorClientV3::from(decode_exact::<EmulatorClientV2>(bytes)?).into(),
            3 => decode_exact::<EmulatorClientV3>(bytes)?.into(),
            EMULATOR_STATE_VERSION => decode_exact(bytes)?,
            other => return Err(EmulatorError::UnsupportedStateVersion(other)),
        };
        let emulation = Group::from_bytes(state.emulation_group.as_slice())?;
        // A removed client keeps no emulation epoch (nor anything else of the virtual client).
        let removed = matches!(emulation.status(), mls_engine::group::GroupStatus::Removed);
        if state.epochs.is_empty() && !removed {
            return Err(EmulatorError::MalformedState("no emulation epoch"));
        }
        let mut epochs = Vec::with_capacity(state.epochs.len());
        for e in &state.epochs {
            epochs.push(EmulationEpochSecrets::from_bytes(e.as_slice())?);
        }
        let mut groups = BTreeMap::new();
        for g in state.groups {
            let group = Group::from_bytes(g.group.as_slice())?;
            let group_id = group.group_id().to_vec();
            let entry = HigherGroup {
                group,
                leaf: leaf_from(&g.leaf),
                pending: g.pending.as_ref().map(leaf_from),
                updates: g
                    .updates
                    .iter()
                    .map(|u| (u.encryption_key.as_slice().to_vec(), leaf_from(&u.leaf)))
                    .collect(),
            };
            if groups.insert(group_id, entry).is_some() {
                return Err(EmulatorError::MalformedState("two groups with one ID"));
            }
        }
        let mut key_packages = Vec::with_capacity(state.key_packages.len());
        for k in state.key_packages {
            key_packages.push(own_key_package(crypto, k)?);
        }
        let mut client = Self::with_emulation_epochs(emulation, epochs, state.credential);
        client.groups = groups;
        client.key_packages = key_packages;
        client.uploaded = state.uploaded.into_iter().map(uploaded_from).collect();
        client.external_joins = state
            .external_joins
            .iter()
            .map(|g| g.as_slice().to_vec())
            .collect();
        client.pending_external_join = state.pending_external_join.map(|g| g.as_slice().to_vec());
        for r in state.sent_keys {
            let handshake = match r.handshake {
                0 => false,
                1 => true,
                _ => {
                    return Err(EmulatorError::MalformedState(
                        "sent key ratchet out of range",
                    ))
                }
            };
            client.sent_keys.push(SentKeyRecord {
                group_id: r.group_id.as_slice().to_vec(),
                key: SentKey {
                    epoch: r.epoch,
                    handshake,
                    generation: r.generation,
                },
                sent_at: r.sent_at,
            });
        }
        for p in state.pending_external_joins {
            let group = Group::from_bytes(p.group.as_slice())?;
            let pending = PendingExternalJoin {
                leaf: leaf_from(&p.leaf),
                commit: p.commit.as_slice().to_vec(),
                group,
            };
            let group_id = pending.group.group_id().to_vec();
            if client.pending_external.insert(group_id, pending).is_some() {
                return Err(EmulatorError::MalformedState(
                    "two pending external joins into one group",
                ));
            }
        }
        Ok(client)
    }
}
