//! State transfer between emulator clients (draft §5.4 "Adding emulator clients", a TODO in the
//! draft; DESIGN §5 row 12 (a)): what a sibling needs to act as the virtual client, modelled on
//! subgroups-00 §5 `NewDeviceState`, sent as the application data of an emulation-group
//! PrivateMessage (so only emulation-group members read it).
//!
//! Every application message of the emulation group is an [`EmulationMessage`]: a `uint16`
//! type, then the arm it selects. Only `device_state(1)` is defined; `reserved(0)` and every
//! other value are refused ([`TransferError::UnknownMessageType`]), so a later message type is
//! added here rather than slipping through as opaque data.
//!
//! ```text
//! enum { reserved(0), device_state(1), (65535) } EmulationMessageType;
//!
//! struct {
//!   EmulationMessageType message_type;
//!   select (EmulationMessage.message_type) {
//!     case device_state: DeviceState device_state;
//!   };
//! } EmulationMessage;
//!
//! struct {
//!   opaque encryption_key_secret<V>;
//!   opaque epoch_id<V>;                /* emulation epoch the leaf was derived from */
//! } VirtualClientLeaf;                 /* = LeafState of the emulator state */
//!
//! struct {
//!   opaque encryption_key<V>;
//!   VirtualClientLeaf leaf;
//! } UpdateLeaf;                        /* an Update proposal of ours not yet committed */
//!
//! struct {
//!   opaque group<V>;                   /* Group::to_bytes, without a pending commit */
//!   VirtualClientLeaf leaf;
//!   UpdateLeaf updates<V>;
//! } TransferredGroup;                        /* NewDeviceState.group_states */
//!
//! struct {
//!   KeyPackage key_package;
//!   opaque init_private_key<V>;
//!   opaque encryption_private_key<V>;
//!   opaque signature_private_key<V>;
//!   opaque signature_public_key<V>;
//!   VirtualClientLeaf leaf;
//! } KeyPackageKeys;                    /* NewDeviceState.key_package_keys, own KeyPackages */
//!
//! struct {
//!   KeyPackageRef key_package_ref;
//!   opaque epoch_id<V>;
//!   uint32 leaf_index;
//!   opaque random<V>;
//! } UploadedKeyPackageRef;             /* a sibling's KeyPackageUpload entry (§5.5.1) */
//!
//! struct {
//!   opaque emulation_epochs<V><V>;     /* EmulationEpochSecrets::to_bytes, oldest first:
//!                                         epoch_id, epoch_encryption_key, punctured PPRF */
//!   KeyPackageKeys key_package_keys<V>;
//!   UploadedKeyPackageRef uploaded_key_packages<V>;
//!   TransferredGroup group_states<V>;
//! } DeviceState;
//! ```
//!
//! `DeviceState` against `NewDeviceState`: `secret_trees` are our emulation epochs (the PPRF
//! plays the Secret Tree's part); `key_package_keys` carry the whole private part of each
//! unused KeyPackage (they are not re-derivable once their PPRF leaf is punctured) plus the
//! KeyPackageUpload entries of siblings (re-derivable from a carried epoch); `group_states`
//! are the higher-level groups with the leaf state the emulator keeps. `signature_private_key`
//! is omitted: a virtual client has no one signature key, each leaf's is derived and travels
//! inside its group state or KeyPackage. `subgroup_extension_key` is omitted: the
//! virtual-clients draft has no subgroup extension; what it encrypts (`EpochInfoTBE`) is keyed
//! by each emulation epoch's `epoch_encryption_key`, carried with the epoch.
//!
//! The values hold secrets: secret fields are [`SecretVLBytes`] (zeroized on drop), the
//! encoding is a [`Zeroizing`] buffer, and `Debug` prints no content.

use mls_engine::codec::{CodecError, KeyPackage, KeyPackageRef};
use tls_codec::{
    SecretVLBytes, Serialize as _, Size as _, TlsDeserialize, TlsDeserializeBytes, TlsSerialize,
    TlsSize, VLBytes,
};
use zeroize::Zeroizing;

/// `EmulationMessageType` value of a [`DeviceState`].
pub const DEVICE_STATE: u16 = 1;

/// Why a state-transfer message could not be encoded or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The bytes are not a well-formed encoding.
    #[error("malformed state transfer: {0}")]
    Codec(#[from] CodecError),
    /// The emulation-group application message has a type we do not define.
    #[error("emulation-group message type {0} is not defined")]
    UnknownMessageType(u16),
    /// The content decodes but is inconsistent (an emulation epoch of another suite, epochs
    /// out of order, a group with a pending commit, a leaf secret that is not the group's...).
    #[error("inconsistent state transfer: {0}")]
    Inconsistent(&'static str),
}

/// `VirtualClientLeaf`: the key material the emulator keeps for the virtual client's leaf.
#[derive(Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
pub struct VirtualClientLeaf {
    /// `encryption_key_secret` of the leaf (the reuse guard's `leaf_secret`).
    pub encryption_key_secret: SecretVLBytes,
    /// The emulation epoch the leaf was derived from.
    pub epoch_id: VLBytes,
}

/// `UpdateLeaf`: an Update proposal from the virtual client's leaf not yet committed, by the
/// proposed leaf's `encryption_key`.
#[derive(Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
pub struct UpdateLeaf {
    /// The proposed leaf's `encryption_key`.
    pub encryption_key: VLBytes,
    /// Its key material.
    pub leaf: VirtualClientLeaf,
}

/// `TransferredGroup` (`NewDeviceState.group_states`): one higher-level group of the
/// virtual client.
#[derive(Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
pub struct TransferredGroup {
    /// `Group::to_bytes` of the group, without a pending commit.
    pub group: SecretVLBytes,
    /// The virtual client's leaf in it.
    pub leaf: VirtualClientLeaf,
    /// Update proposals of the virtual client in the current epoch.
    pub updates: Vec<UpdateLeaf>,
}

/// `KeyPackageKeys` (`NewDeviceState.key_package_keys`): an unused KeyPackage of the virtual
/// client with its private keys.
#[derive(Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
pub struct KeyPackageKeys {
    /// The KeyPackage.
    pub key_package: KeyPackage,
    /// Its `init_key`'s private key.
    pub init_private_key: SecretVLBytes,
    /// Its leaf's `encryption_key`'s private key.
    pub encryption_private_key: SecretVLBytes,
    /// Its leaf's signature private key.
    pub signature_private_key: SecretVLBytes,
    /// Its leaf's signature public key.
    pub signature_public_key: VLBytes,
    /// The leaf's key material.
    pub leaf: VirtualClientLeaf,
}

/// `UploadedKeyPackageRef`: a KeyPackage a sibling announced in a `KeyPackageUpload`
/// (§5.5.1), re-derivable from emulation epoch `epoch_id`.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct UploadedKeyPackageRef {
    /// Its `KeyPackageRef`.
    pub key_package_ref: KeyPackageRef,
    /// The emulation epoch it was derived from.
    pub epoch_id: VLBytes,
    /// The emulation-group leaf index of the deriving emulator client.
    pub leaf_index: u32,
    /// The `random` of its derivation.
    pub random: VLBytes,
}

/// `DeviceState`: what a sibling needs to act as the virtual client (subgroups-00 §5
/// `NewDeviceState`, see the module docs for the differences).
#[derive(
    Clone, Default, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct DeviceState {
    /// `EmulationEpochSecrets::to_bytes` of each emulation epoch kept, oldest first.
    pub emulation_epochs: Vec<SecretVLBytes>,
    /// Unused KeyPackages of the virtual client this emulator derived (with private keys).
    pub key_package_keys: Vec<KeyPackageKeys>,
    /// Unused KeyPackages siblings announced in a `KeyPackageUpload`.
    pub uploaded_key_packages: Vec<UploadedKeyPackageRef>,
    /// The higher-level groups.
    pub group_states: Vec<TransferredGroup>,
}

/// `EmulationMessage`: the application data of every emulation-group PrivateMessage.
#[derive(Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
#[repr(u16)]
pub enum EmulationMessage {
    /// `message_type = device_state(1)`.
    #[tls_codec(discriminant = 1)]
    DeviceState(DeviceState),
}

impl EmulationMessage {
    /// The `EmulationMessageType` value.
    pub fn message_type(&self) -> u16 {
        match self {
            EmulationMessage::DeviceState(_) => DEVICE_STATE,
        }
    }

    /// The TLS encoding, in a buffer zeroized on drop (written in place: no reallocated copy
    /// of the secrets is left behind).
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, TransferError> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.tls_serialized_len()));
        self.tls_serialize(&mut *out)
            .map_err(|e| TransferError::Codec(e.into()))?;
        Ok(out)
    }

    /// Decodes a message that spans all of `bytes` (strict: trailing data, truncation and
    /// non-minimal lengths are refused). A type other than `device_state(1)` is
    /// [`TransferError::UnknownMessageType`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TransferError> {
        let message_type = match bytes {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => return Err(CodecError::from(tls_codec::Error::EndOfStream).into()),
        };
        if message_type != DEVICE_STATE {
            return Err(TransferError::UnknownMessageType(message_type));
        }
        Ok(mls_engine::codec::decode_exact(bytes)?)
    }
}

/// `tls_codec` wants `Debug` on vector elements; records holding secrets print no content
/// (also used by the emulator's state codec).
macro_rules! redacted_debug {
    ($($t:ty),*) => {$(
        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($t), "(..)"))
            }
        }
    )*};
}
pub(crate) use redacted_debug;
redacted_debug!(
    VirtualClientLeaf,
    UpdateLeaf,
    TransferredGroup,
    KeyPackageKeys,
    DeviceState,
    EmulationMessage
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let leaf = VirtualClientLeaf {
            encryption_key_secret: SecretVLBytes::new(vec![0xab; 4]),
            epoch_id: VLBytes::new(vec![1]),
        };
        let message = EmulationMessage::DeviceState(DeviceState {
            emulation_epochs: vec![SecretVLBytes::new(vec![0xab; 4])],
            group_states: vec![TransferredGroup {
                group: SecretVLBytes::new(vec![0xab; 4]),
                leaf,
                updates: vec![],
            }],
            ..DeviceState::default()
        });
        let printed = format!("{message:?} {:?}", message.to_bytes().unwrap().len());
        assert!(!printed.contains("ab") && !printed.contains("171"));
    }
}
