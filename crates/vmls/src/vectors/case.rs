//! One case of `test-vectors/virtual-clients-04.json`: the JSON object, field by field
//! (docs/test-vectors.md). Integers are JSON numbers; byte strings lower-case hex.

use serde::{Deserialize, Serialize};

/// One path entry: `path_secret[n]` and the node public key it yields (RFC 9420 §7.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathEntry {
    /// `path_secret[n]`.
    pub path_secret: String,
    /// `KEM.DeriveKeyPair(DeriveSecret(path_secret[n], "node"))`'s public key.
    pub node_public_key: String,
}

/// One vector case: an (emulation suite, higher-level suite) pair and every value the draft
/// derives from the fixed inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The emulation group's cipher suite.
    pub cipher_suite: u16,
    /// The higher-level group's cipher suite (same KDF hash).
    pub higher_level_cipher_suite: u16,
    /// Input: the emulation group's `application_export_secret` (safe extensions §4.4).
    pub application_export_secret: String,
    /// The exporter component: the virtual-clients component ID.
    pub component_id: u32,
    /// `SafeExportSecret(component_id)` of the emulation group.
    pub safe_export_secret: String,
    /// The emulator epoch secret (the safe export secret above).
    pub emulator_epoch_secret: String,
    /// `DeriveSecret(emulator_epoch_secret, "Epoch ID")`.
    pub epoch_id: String,
    /// `DeriveSecret(emulator_epoch_secret, "Base Secret")`.
    pub epoch_base_secret: String,
    /// `DeriveSecret(emulator_epoch_secret, "Encryption Key")`.
    pub epoch_encryption_key: String,
    /// Input: the deriving emulator client's leaf index in the emulation group.
    pub leaf_index: u32,
    /// Input: `HashInput.random`.
    pub random: String,
    /// `HashInput { leaf_index, random }`, TLS-encoded.
    pub hash_input: String,
    /// `Hash(HashInput)` with the emulation suite's hash.
    pub pprf_input: String,
    /// The PPRF leaf: the first 32 bits of `pprf_input`, big-endian.
    pub pprf_leaf: u32,
    /// The PPRF's value at `pprf_leaf` under `epoch_base_secret`.
    pub operation_secret: String,
    /// `DeriveSecret(operation_secret, "Signature Key")`.
    pub signature_key_secret: String,
    /// `DeriveSecret(operation_secret, "Encryption Key")`.
    pub encryption_key_secret: String,
    /// `DeriveSecret(operation_secret, "Init Key")`.
    pub init_key_secret: String,
    /// `DeriveSecret(operation_secret, "Path Generation")`.
    pub path_generation_secret: String,
    /// `KEM.DeriveKeyPair(encryption_key_secret)`'s public key (higher-level suite).
    pub leaf_encryption_public_key: String,
    /// `KEM.DeriveKeyPair(init_key_secret)`'s public key (higher-level suite).
    pub init_public_key: String,
    /// The signature public key from `signature_key_secret` (higher-level suite).
    pub signature_public_key: String,
    /// `path_secret[0..3]` (`path_secret[0] = path_generation_secret`) and node public keys.
    pub path: Vec<PathEntry>,
    /// Input: the AEAD nonce sealing `EpochInfoTBE`.
    pub aead_nonce: String,
    /// `EpochInfoTBE { leaf_index, random }`, TLS-encoded.
    pub epoch_info_tbe: String,
    /// `ExpandWithLabel(epoch_encryption_key, "key", "", AEAD.Nk)`.
    pub derivation_info_key: String,
    /// `aead_nonce || AEAD.Seal(derivation_info_key, aead_nonce, epoch_id, epoch_info_tbe)`.
    pub derivation_info_ciphertext: String,
    /// `DerivationInfoExtension { epoch_id, ciphertext }`, TLS-encoded (the extension_data).
    pub derivation_info_extension: String,
    /// Input: the higher-level group's `key_schedule_nonce` (`AEAD.Nn` octets).
    pub key_schedule_nonce: String,
    /// Input: the number of leaves of the emulation group (`N`).
    pub emulation_leaves: u32,
    /// Input: `x` with `x mod emulation_leaves = leaf_index`.
    pub x: u32,
    /// `ExpandWithLabel(key_schedule_nonce, "reuse guard", encryption_key_secret, 16)`.
    pub reuse_guard_prp_key: String,
    /// `SmallSpacePRP.Encrypt(reuse_guard_prp_key, x)`, four octets big-endian.
    pub reuse_guard: String,
    /// Input: the `KeyPackageRef` of the uploaded KeyPackage.
    pub key_package_ref: String,
    /// `SafeAAD` carrying `VirtualClientAction::KeyPackageUpload { epoch_id, [{ key_package_ref, random }] }`.
    pub key_package_upload_safe_aad: String,
    /// Input: the `group_id` of the external join.
    pub group_id: String,
    /// `SafeAAD` carrying `VirtualClientAction::ExternalJoin { group_id }`.
    pub external_join_safe_aad: String,
}

/// The inputs of a case, from which every other field is computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// The emulation group's cipher suite.
    pub cipher_suite: u16,
    /// The higher-level group's cipher suite.
    pub higher_level_cipher_suite: u16,
    /// `application_export_secret`.
    pub application_export_secret: Vec<u8>,
    /// The deriving emulator client's leaf index.
    pub leaf_index: u32,
    /// `HashInput.random`.
    pub random: Vec<u8>,
    /// The nonce sealing `EpochInfoTBE`.
    pub aead_nonce: Vec<u8>,
    /// `key_schedule_nonce`.
    pub key_schedule_nonce: Vec<u8>,
    /// The emulation group's number of leaves.
    pub emulation_leaves: u32,
    /// `x`.
    pub x: u32,
    /// `KeyPackageRef`.
    pub key_package_ref: Vec<u8>,
    /// `group_id`.
    pub group_id: Vec<u8>,
}
