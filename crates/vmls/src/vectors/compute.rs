//! Computes a [`Case`] from its [`Inputs`] with the virtual-clients public API and, where an
//! intermediate value is not reachable through it (`epoch_base_secret`, the sealing key and a
//! seal under a given nonce), with the same engine primitives.

use mls_engine::codec::{encode, KeyPackageRef};
use mls_engine::crypto::SuiteProvider;
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, MlsCrypto as _, RustCrypto, Secret};
use mls_engine::extensions::{ExporterTree, SafeAad};
use mls_engine::tree::{next_path_secret, node_key_pair};
use tls_codec::VLBytes;
use virtual_clients::derivation::KeySecrets;
use virtual_clients::epoch::{EmulationEpochSecrets, VC_COMPONENT_ID};
use virtual_clients::pprf::{leaf_of, pprf_input, Pprf};
use virtual_clients::reuse_guard::{prp_key, small_space_prp_encrypt};
use virtual_clients::wire::{
    DerivationInfoExtension, EpochInfoTbe, ExternalJoin, HashInput, KeyPackageInfo,
    KeyPackageUpload, VirtualClientAction,
};

use super::case::{Case, Inputs, PathEntry};
use super::VectorError;

/// How many path secrets (and node keys) a case lists.
pub const PATH_LEN: usize = 3;

fn suite(id: u16) -> Result<&'static dyn SuiteProvider, VectorError> {
    static CRYPTO: RustCrypto = RustCrypto;
    Ok(CRYPTO.suite(CipherSuite(id))?)
}

/// Every value of the case of `inputs`.
pub fn compute(inputs: &Inputs) -> Result<Case, VectorError> {
    let cs = suite(inputs.cipher_suite)?;
    let higher = suite(inputs.higher_level_cipher_suite)?;
    virtual_clients::derivation::check_kdf(cs, higher)?;

    // Exporter step (safe extensions): SafeExportSecret(VC_COMPONENT_ID).
    let mut exporter = ExporterTree::new(
        cs.cipher_suite(),
        Secret::new(inputs.application_export_secret.clone()),
    );
    let safe_export_secret = exporter.safe_export_secret(cs, VC_COMPONENT_ID)?;
    let emulator_epoch_secret = safe_export_secret.clone();

    // Emulation-epoch secrets (§5.2).
    let epoch =
        EmulationEpochSecrets::from_emulator_epoch_secret(cs, emulator_epoch_secret.clone())?;
    let epoch_base_secret = cs.derive_secret(emulator_epoch_secret.as_bytes(), "Base Secret")?;

    // HashInput -> pprf_input -> PPRF leaf -> operation_secret (§5.2-§5.3).
    let hash_input = HashInput {
        leaf_index: inputs.leaf_index,
        random: VLBytes::new(inputs.random.clone()),
    };
    let pprf_in = pprf_input(cs, &hash_input)?;
    let pprf_leaf = leaf_of(&pprf_in)?;
    let operation_secret = epoch.pprf().evaluate(cs, pprf_leaf)?;
    let recomputed =
        Pprf::new(cs.cipher_suite(), epoch_base_secret.clone()).evaluate(cs, pprf_leaf)?;
    if recomputed != operation_secret {
        return Err(VectorError::Inconsistent("operation_secret"));
    }

    // The four key secrets and the key pairs of the higher-level suite.
    let secrets = KeySecrets::from_operation_secret(cs, &operation_secret)?;
    let keys = secrets.key_pairs(cs, higher)?;
    let path = path_entries(higher, &secrets.path_generation_secret)?;

    // EpochInfoTBE sealed under the given nonce (row 8), and the extension.
    let epoch_info = EpochInfoTbe {
        leaf_index: inputs.leaf_index,
        random: VLBytes::new(inputs.random.clone()),
    };
    let epoch_info_tbe = encode(&epoch_info)?;
    let params = cs.params();
    let key = cs.expand_with_label(
        epoch.epoch_encryption_key().as_bytes(),
        "key",
        &[],
        params.aead_key_len(),
    )?;
    let mut ciphertext = inputs.aead_nonce.clone();
    ciphertext.extend(cs.aead_seal(
        key.as_bytes(),
        &inputs.aead_nonce,
        epoch.epoch_id(),
        &epoch_info_tbe,
    )?);
    let extension = DerivationInfoExtension {
        epoch_id: VLBytes::new(epoch.epoch_id().to_vec()),
        ciphertext: VLBytes::new(ciphertext.clone()),
    };
    if epoch.open_epoch_info(cs, &extension)? != epoch_info {
        return Err(VectorError::Inconsistent("derivation_info_ciphertext"));
    }

    // The FF1 reuse guard (§5.6) with the leaf's encryption_key_secret.
    if inputs.emulation_leaves == 0 || inputs.x % inputs.emulation_leaves != inputs.leaf_index {
        return Err(VectorError::BadInput("x"));
    }
    let nonce = Secret::new(inputs.key_schedule_nonce.clone());
    let prp = prp_key(higher, &nonce, &secrets.encryption_key_secret)?;
    let guard = small_space_prp_encrypt(&prp, inputs.x)?.to_be_bytes();

    // The two actions as SafeAAD (§5.5).
    let upload = VirtualClientAction::KeyPackageUpload(KeyPackageUpload {
        epoch_id: VLBytes::new(epoch.epoch_id().to_vec()),
        key_package_info: vec![KeyPackageInfo {
            key_package_ref: KeyPackageRef(VLBytes::new(inputs.key_package_ref.clone())),
            random: VLBytes::new(inputs.random.clone()),
        }],
    });
    let join = VirtualClientAction::ExternalJoin(ExternalJoin {
        group_id: VLBytes::new(inputs.group_id.clone()),
    });

    Ok(Case {
        cipher_suite: inputs.cipher_suite,
        higher_level_cipher_suite: inputs.higher_level_cipher_suite,
        application_export_secret: hex::encode(&inputs.application_export_secret),
        component_id: VC_COMPONENT_ID,
        safe_export_secret: hex::encode(safe_export_secret.as_bytes()),
        emulator_epoch_secret: hex::encode(emulator_epoch_secret.as_bytes()),
        epoch_id: hex::encode(epoch.epoch_id()),
        epoch_base_secret: hex::encode(epoch_base_secret.as_bytes()),
        epoch_encryption_key: hex::encode(epoch.epoch_encryption_key().as_bytes()),
        leaf_index: inputs.leaf_index,
        random: hex::encode(&inputs.random),
        hash_input: hex::encode(encode(&hash_input)?),
        pprf_input: hex::encode(&pprf_in),
        pprf_leaf,
        operation_secret: hex::encode(operation_secret.as_bytes()),
        signature_key_secret: hex::encode(secrets.signature_key_secret.as_bytes()),
        encryption_key_secret: hex::encode(secrets.encryption_key_secret.as_bytes()),
        init_key_secret: hex::encode(secrets.init_key_secret.as_bytes()),
        path_generation_secret: hex::encode(secrets.path_generation_secret.as_bytes()),
        leaf_encryption_public_key: hex::encode(&keys.encryption_key.public_key),
        init_public_key: hex::encode(&keys.init_key.public_key),
        signature_public_key: hex::encode(&keys.signature_key.public_key),
        path,
        aead_nonce: hex::encode(&inputs.aead_nonce),
        epoch_info_tbe: hex::encode(&epoch_info_tbe),
        derivation_info_key: hex::encode(key.as_bytes()),
        derivation_info_ciphertext: hex::encode(&ciphertext),
        derivation_info_extension: hex::encode(encode(&extension)?),
        key_schedule_nonce: hex::encode(&inputs.key_schedule_nonce),
        emulation_leaves: inputs.emulation_leaves,
        x: inputs.x,
        reuse_guard_prp_key: hex::encode(prp.as_bytes()),
        reuse_guard: hex::encode(guard),
        key_package_ref: hex::encode(&inputs.key_package_ref),
        key_package_upload_safe_aad: hex::encode(safe_aad(&upload)?),
        group_id: hex::encode(&inputs.group_id),
        external_join_safe_aad: hex::encode(safe_aad(&join)?),
    })
}

/// `path_secret[0..PATH_LEN]` from `path_secret[0]` and their node public keys (§7.4).
fn path_entries(
    higher: &dyn SuiteProvider,
    path_secret_0: &Secret,
) -> Result<Vec<PathEntry>, VectorError> {
    let mut out = Vec::with_capacity(PATH_LEN);
    let mut secret = path_secret_0.clone();
    for _ in 0..PATH_LEN {
        out.push(PathEntry {
            path_secret: hex::encode(secret.as_bytes()),
            node_public_key: hex::encode(node_key_pair(higher, &secret)?.public_key),
        });
        secret = next_path_secret(higher, &secret)?;
    }
    Ok(out)
}

/// The `SafeAAD` with the one item carrying `action`.
fn safe_aad(action: &VirtualClientAction) -> Result<Vec<u8>, VectorError> {
    Ok(SafeAad::new(vec![action.to_safe_aad_item()?])?.to_bytes()?)
}
