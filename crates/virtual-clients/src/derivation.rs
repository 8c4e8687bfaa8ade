//! Operation secrets, the four key secrets and the key pairs of a virtual client's leaf
//! (draft §5.2-§5.3, DESIGN §5 rows 3-6).
//!
//! ```text
//! pprf_input       = Hash(HashInput { leaf_index, random })           (emulation suite)
//! operation_secret = VirtualClientSecret(pprf_input)                  (the PPRF leaf)
//! signature_key_secret   = DeriveSecret(operation_secret, "Signature Key")
//! encryption_key_secret  = DeriveSecret(operation_secret, "Encryption Key")
//! init_key_secret        = DeriveSecret(operation_secret, "Init Key")
//! path_generation_secret = DeriveSecret(operation_secret, "Path Generation")
//! ```
//!
//! The draft derives the four from `epoch_base_secret`; that is a slip (row 4): every
//! operation would then get the same keys. They come from `operation_secret`, with the
//! emulation group's KDF. The key pairs are of the higher-level group's suite (row 5):
//! `encryption_key` and `init_key` are `KEM.DeriveKeyPair(secret)`; the signature key is
//! `signature_key_pair_from_seed(signature_key_secret)` (Ed25519: the first 32 octets as seed;
//! ECDSA P-256: the scalar of DHKEM(P-256)'s DeriveKeyPair). `path_generation_secret` is
//! `path_secret[0]` of the UpdatePath (row 6), so it must have the higher-level group's
//! `KDF.Nh` octets: both groups must share a KDF ([`DerivationError::KdfMismatch`]).
//!
//! A sender uses [`derive_for_sender`] (samples `random`, punctures the PPRF, seals
//! `EpochInfoTBE`); a sibling uses [`derive_for_receiver`] (opens the extension and evaluates
//! the PPRF without puncturing it, so a message found inconsistent later changes nothing) and
//! then [`ReceivedDerivation::puncture`] once the message is accepted.

use mls_engine::codec::{KeyPackage, LeafNode, LeafSignatureError};
use mls_engine::crypto::{
    CipherSuite, CryptoError, HpkeKeyPair, MlsCrypto as _, Secret, SignatureKeyPair, SuiteProvider,
};
use mls_engine::group::{LeafSecrets, SiblingCommitSecrets};
use mls_engine::messages::{key_package_ref, KeyPackageBundle, KeyPackagePrivate};
use tls_codec::VLBytes;

use crate::epoch::EmulationEpochSecrets;
use crate::pprf::{leaf_of, pprf_input, sample_input, PprfError};
use crate::wire::{DerivationInfoExtension, EpochInfoTbe, HashInput, WireError};

/// Why virtual-client secrets could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerivationError {
    /// The emulation group and the higher-level group use different KDFs (row 5).
    #[error(
        "emulation suite 0x{:04x} and higher-level suite 0x{:04x} do not share a KDF",
        .emulation.0, .higher.0
    )]
    KdfMismatch {
        /// The emulation group's suite.
        emulation: CipherSuite,
        /// The higher-level group's suite.
        higher: CipherSuite,
    },
    /// The suite given is not the emulation epoch's.
    #[error("emulation epoch of suite 0x{:04x} used with suite 0x{:04x}", .expected.0, .actual.0)]
    SuiteMismatch {
        /// The epoch's suite.
        expected: CipherSuite,
        /// The suite given.
        actual: CipherSuite,
    },
    /// The PPRF refused (e.g. the input's leaf is punctured).
    #[error(transparent)]
    Pprf(#[from] PprfError),
    /// The DerivationInfoExtension could not be sealed or opened.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A key derivation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A LeafNode or KeyPackage does not carry the keys its derivation gives.
    #[error("the {0} does not match the keys derived from its DerivationInfoExtension")]
    KeyMismatch(&'static str),
    /// The KeyPackage's reference could not be computed.
    #[error("KeyPackage reference: {0}")]
    KeyPackageRef(#[from] LeafSignatureError),
}

/// Checks that the emulation and higher-level suites share a KDF (row 5).
pub fn check_kdf(
    emulation: &dyn SuiteProvider,
    higher: &dyn SuiteProvider,
) -> Result<(), DerivationError> {
    if emulation.params().kdf != higher.params().kdf {
        return Err(DerivationError::KdfMismatch {
            emulation: emulation.cipher_suite(),
            higher: higher.cipher_suite(),
        });
    }
    Ok(())
}

/// The four key secrets of one virtual-client operation (§5.2, row 4). Zeroized on drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySecrets {
    /// `signature_key_secret`: the seed of the leaf's signature key.
    pub signature_key_secret: Secret,
    /// `encryption_key_secret`: the seed of the leaf's `encryption_key`.
    pub encryption_key_secret: Secret,
    /// `init_key_secret`: the seed of a KeyPackage's `init_key`.
    pub init_key_secret: Secret,
    /// `path_generation_secret`: `path_secret[0]` of an UpdatePath (row 6).
    pub path_generation_secret: Secret,
}

impl KeySecrets {
    /// The four secrets from `operation_secret`, with the emulation group's suite `cs`.
    pub fn from_operation_secret(
        cs: &dyn SuiteProvider,
        operation_secret: &Secret,
    ) -> Result<Self, DerivationError> {
        let s = operation_secret.as_bytes();
        Ok(Self {
            signature_key_secret: cs.derive_secret(s, "Signature Key")?,
            encryption_key_secret: cs.derive_secret(s, "Encryption Key")?,
            init_key_secret: cs.derive_secret(s, "Init Key")?,
            path_generation_secret: cs.derive_secret(s, "Path Generation")?,
        })
    }

    /// The key pairs of the higher-level group's suite `higher` (row 5); `emulation` is the
    /// emulation group's suite (they must share a KDF).
    pub fn key_pairs(
        &self,
        emulation: &dyn SuiteProvider,
        higher: &dyn SuiteProvider,
    ) -> Result<VirtualClientKeys, DerivationError> {
        check_kdf(emulation, higher)?;
        Ok(VirtualClientKeys {
            encryption_key: higher.hpke_derive_key_pair(self.encryption_key_secret.as_bytes())?,
            init_key: higher.hpke_derive_key_pair(self.init_key_secret.as_bytes())?,
            signature_key: higher
                .signature_key_pair_from_seed(self.signature_key_secret.as_bytes())?,
            path_secret_0: self.path_generation_secret.clone(),
            init_key_secret: self.init_key_secret.clone(),
        })
    }

    /// The engine's [`LeafSecrets`] (design hook H1) for a leaf of the higher-level suite
    /// `higher` that carries `derivation_info` (as the `0xF0C1` LeafNode extension).
    pub fn leaf_secrets(
        &self,
        emulation: &dyn SuiteProvider,
        higher: &dyn SuiteProvider,
        derivation_info: &DerivationInfoExtension,
    ) -> Result<LeafSecrets, DerivationError> {
        check_kdf(emulation, higher)?;
        Ok(LeafSecrets {
            leaf_seed: self.encryption_key_secret.clone(),
            init_seed: self.init_key_secret.clone(),
            path_secret_0: self.path_generation_secret.clone(),
            signature_key: higher
                .signature_key_pair_from_seed(self.signature_key_secret.as_bytes())?,
            extensions: vec![derivation_info.to_extension()?],
        })
    }
}

/// The key pairs of a virtual client's leaf, of the higher-level group's suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualClientKeys {
    /// The LeafNode's `encryption_key` pair.
    pub encryption_key: HpkeKeyPair,
    /// A KeyPackage's `init_key` pair.
    pub init_key: HpkeKeyPair,
    /// The LeafNode's signature key pair.
    pub signature_key: SignatureKeyPair,
    /// `path_secret[0]` of an UpdatePath.
    pub path_secret_0: Secret,
    /// `init_key_secret`: for an external commit, the seed of its ExternalInit's ephemeral
    /// key pair (`KEM.DeriveKeyPair(init_key_secret)`, docs/decisions.md E-vc-ext1), so that
    /// siblings can recompute its `init_secret`.
    pub init_key_secret: Secret,
}

impl VirtualClientKeys {
    /// Whether `leaf` carries these keys' `encryption_key` (and, if `with_signature_key`, its
    /// signature key): a sibling's check that a leaf matches its DerivationInfoExtension.
    pub fn matches_leaf(&self, leaf: &LeafNode, with_signature_key: bool) -> bool {
        leaf.encryption_key.as_slice() == self.encryption_key.public_key.as_slice()
            && (!with_signature_key
                || leaf.signature_key.as_slice() == self.signature_key.public_key.as_slice())
    }

    /// A sibling's [`KeyPackageBundle`] for `key_package` (made by another emulator client
    /// from the same derivation), to join from a Welcome sent to it: its `init_key` and leaf
    /// `encryption_key` must be these keys' ([`DerivationError::KeyMismatch`] otherwise).
    /// `higher` is the KeyPackage's suite.
    pub fn key_package_bundle(
        &self,
        higher: &dyn SuiteProvider,
        key_package: KeyPackage,
    ) -> Result<KeyPackageBundle, DerivationError> {
        if key_package.init_key.as_slice() != self.init_key.public_key.as_slice() {
            return Err(DerivationError::KeyMismatch("KeyPackage init_key"));
        }
        if !self.matches_leaf(&key_package.leaf_node, true) {
            return Err(DerivationError::KeyMismatch("KeyPackage leaf"));
        }
        let reference = key_package_ref(higher, &key_package)?;
        Ok(KeyPackageBundle {
            key_package,
            private: KeyPackagePrivate {
                init_private_key: self.init_key.private_key.clone(),
                encryption_private_key: self.encryption_key.private_key.clone(),
            },
            reference,
        })
    }

    /// The engine's secrets for a sibling's commit with this leaf (design hook H2):
    /// `signature_changed` says whether the new leaf's signature key is ours.
    pub fn sibling_commit_secrets(&self, signature_changed: bool) -> SiblingCommitSecrets {
        SiblingCommitSecrets {
            leaf_key: self.encryption_key.clone(),
            path_secret_0: self.path_secret_0.clone(),
            signature_key: signature_changed.then(|| self.signature_key.clone()),
        }
    }
}

/// The `operation_secret` of `HashInput { leaf_index, random }` without puncturing, and the
/// PPRF leaf it came from.
fn evaluate(
    epoch: &EmulationEpochSecrets,
    cs: &dyn SuiteProvider,
    leaf_index: u32,
    random: &[u8],
) -> Result<(u32, Secret), DerivationError> {
    check_epoch_suite(epoch, cs)?;
    let input = pprf_input(
        cs,
        &HashInput {
            leaf_index,
            random: VLBytes::new(random.to_vec()),
        },
    )?;
    let leaf = leaf_of(&input)?;
    Ok((leaf, epoch.pprf().evaluate(cs, leaf)?))
}

fn check_epoch_suite(
    epoch: &EmulationEpochSecrets,
    cs: &dyn SuiteProvider,
) -> Result<(), DerivationError> {
    if epoch.cipher_suite() != cs.cipher_suite() {
        return Err(DerivationError::SuiteMismatch {
            expected: epoch.cipher_suite(),
            actual: cs.cipher_suite(),
        });
    }
    Ok(())
}

/// A sender's derivation: what it encrypted for its siblings and the key secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderDerivation {
    /// The `EpochInfoTBE` (the sender's emulation leaf index and `random`).
    pub epoch_info: EpochInfoTbe,
    /// The LeafNode extension carrying `epoch_id` and the sealed `EpochInfoTBE`.
    pub derivation_info: DerivationInfoExtension,
    /// The PPRF leaf used (now punctured).
    pub pprf_leaf: u32,
    /// The four key secrets.
    pub key_secrets: KeySecrets,
}

impl SenderDerivation {
    /// The engine's [`LeafSecrets`] for a leaf of the higher-level suite `higher`, carrying
    /// the DerivationInfoExtension.
    pub fn leaf_secrets(
        &self,
        emulation: &dyn SuiteProvider,
        higher: &dyn SuiteProvider,
    ) -> Result<LeafSecrets, DerivationError> {
        self.key_secrets
            .leaf_secrets(emulation, higher, &self.derivation_info)
    }
}

/// Derives the secrets of a new operation of the virtual client, by the emulator client at
/// `leaf_index` of the emulation group, from `epoch` (the newest emulation epoch, row 10):
/// samples `random` (avoiding punctured leaves), derives and punctures `operation_secret`,
/// and seals the `EpochInfoTBE`. `cs` is the emulation group's suite. On error `epoch` is
/// unchanged.
pub fn derive_for_sender(
    epoch: &mut EmulationEpochSecrets,
    cs: &dyn SuiteProvider,
    leaf_index: u32,
) -> Result<SenderDerivation, DerivationError> {
    check_epoch_suite(epoch, cs)?;
    let sampled = sample_input(epoch.pprf(), cs, leaf_index)?;
    let epoch_info = EpochInfoTbe {
        leaf_index,
        random: VLBytes::new(sampled.random),
    };
    let operation_secret = epoch.pprf().evaluate(cs, sampled.leaf)?;
    let key_secrets = KeySecrets::from_operation_secret(cs, &operation_secret)?;
    let derivation_info = epoch.seal_epoch_info(cs, &epoch_info)?;
    epoch.pprf_mut().puncture(cs, sampled.leaf)?;
    Ok(SenderDerivation {
        epoch_info,
        derivation_info,
        pprf_leaf: sampled.leaf,
        key_secrets,
    })
}

/// A derivation re-done by a sibling, not yet punctured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedDerivation {
    /// The decrypted `EpochInfoTBE`.
    pub epoch_info: EpochInfoTbe,
    /// The PPRF leaf to puncture once the message is accepted.
    pub pprf_leaf: u32,
    /// The four key secrets.
    pub key_secrets: KeySecrets,
}

impl ReceivedDerivation {
    /// Punctures the derivation's leaf in `epoch`, once the message that carried it has been
    /// accepted. `cs` is the emulation group's suite.
    pub fn puncture(
        &self,
        epoch: &mut EmulationEpochSecrets,
        cs: &dyn SuiteProvider,
    ) -> Result<(), DerivationError> {
        check_epoch_suite(epoch, cs)?;
        Ok(epoch.pprf_mut().puncture(cs, self.pprf_leaf)?)
    }
}

/// Re-derives a sibling's operation from the `DerivationInfoExtension` of its LeafNode.
/// `epoch` is the emulation epoch the caller found by `derivation_info.epoch_id` (an unknown
/// ID is the caller's error); `cs` is the emulation group's suite. Nothing changes: a
/// tampered extension is [`WireError::DecryptionFailed`], a leaf already used
/// [`PprfError::Punctured`].
pub fn derive_for_receiver(
    epoch: &EmulationEpochSecrets,
    cs: &dyn SuiteProvider,
    derivation_info: &DerivationInfoExtension,
) -> Result<ReceivedDerivation, DerivationError> {
    check_epoch_suite(epoch, cs)?;
    let epoch_info = epoch.open_epoch_info(cs, derivation_info)?;
    let (pprf_leaf, operation_secret) = evaluate(
        epoch,
        cs,
        epoch_info.leaf_index,
        epoch_info.random.as_slice(),
    )?;
    Ok(ReceivedDerivation {
        key_secrets: KeySecrets::from_operation_secret(cs, &operation_secret)?,
        epoch_info,
        pprf_leaf,
    })
}

/// Re-derives an operation known in the clear (a `KeyPackageInfo` of a `KeyPackageUpload`,
/// whose sender is `leaf_index` of the emulation group), without puncturing.
pub fn derive_from_parts(
    epoch: &EmulationEpochSecrets,
    cs: &dyn SuiteProvider,
    leaf_index: u32,
    random: &[u8],
) -> Result<ReceivedDerivation, DerivationError> {
    let (pprf_leaf, operation_secret) = evaluate(epoch, cs, leaf_index, random)?;
    Ok(ReceivedDerivation {
        key_secrets: KeySecrets::from_operation_secret(cs, &operation_secret)?,
        epoch_info: EpochInfoTbe {
            leaf_index,
            random: VLBytes::new(random.to_vec()),
        },
        pprf_leaf,
    })
}

/// The `DerivationInfoExtension` of a LeafNode, if it has one.
pub fn derivation_info_of(leaf: &LeafNode) -> Result<Option<DerivationInfoExtension>, WireError> {
    DerivationInfoExtension::find_in(&leaf.extensions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mls_engine::crypto::{CryptoProvider as _, RustCrypto};

    fn epoch(cs: &dyn SuiteProvider) -> EmulationEpochSecrets {
        EmulationEpochSecrets::from_emulator_epoch_secret(cs, Secret::new(vec![8; 32])).unwrap()
    }

    #[test]
    fn sender_and_receiver_agree_once() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let mut alice = epoch(cs);
        let mut bob = epoch(cs);
        let sent = derive_for_sender(&mut alice, cs, 2).unwrap();
        assert!(alice.pprf().is_punctured(sent.pprf_leaf));
        let got = derive_for_receiver(&bob, cs, &sent.derivation_info).unwrap();
        assert_eq!(got.key_secrets, sent.key_secrets);
        assert_eq!(got.epoch_info, sent.epoch_info);
        assert_eq!(got.pprf_leaf, sent.pprf_leaf);
        got.puncture(&mut bob, cs).unwrap();
        assert!(matches!(
            derive_for_receiver(&bob, cs, &sent.derivation_info),
            Err(DerivationError::Pprf(PprfError::Punctured { .. }))
        ));
        let parts = derive_from_parts(&alice, cs, 2, sent.epoch_info.random.as_slice());
        assert!(matches!(
            parts,
            Err(DerivationError::Pprf(PprfError::Punctured { .. }))
        ));
    }

    #[test]
    fn the_four_secrets_differ_and_come_from_operation_secret() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let op = Secret::new(vec![4; 32]);
        let k = KeySecrets::from_operation_secret(cs, &op).unwrap();
        let d = |l| cs.derive_secret(op.as_bytes(), l).unwrap();
        assert_eq!(k.signature_key_secret, d("Signature Key"));
        assert_eq!(k.encryption_key_secret, d("Encryption Key"));
        assert_eq!(k.init_key_secret, d("Init Key"));
        assert_eq!(k.path_generation_secret, d("Path Generation"));
        let all = [
            &k.signature_key_secret,
            &k.encryption_key_secret,
            &k.init_key_secret,
            &k.path_generation_secret,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn key_pairs_for_each_suite() {
        let emu = RustCrypto.suite(CipherSuite(1)).unwrap();
        let op = Secret::new(vec![4; 32]);
        let k = KeySecrets::from_operation_secret(emu, &op).unwrap();
        for suite in CipherSuite::SUPPORTED {
            let higher = RustCrypto.suite(suite).unwrap();
            if higher.params().kdf != emu.params().kdf {
                // Suites 5 and 7 (SHA-512, SHA-384) need an emulation group of their hash.
                assert!(matches!(
                    k.key_pairs(emu, higher),
                    Err(DerivationError::KdfMismatch { .. })
                ));
                continue;
            }
            let keys = k.key_pairs(emu, higher).unwrap();
            assert_eq!(
                keys.encryption_key,
                higher
                    .hpke_derive_key_pair(k.encryption_key_secret.as_bytes())
                    .unwrap()
            );
            assert_eq!(
                keys.signature_key,
                higher
                    .signature_key_pair_from_seed(k.signature_key_secret.as_bytes())
                    .unwrap()
            );
            assert_eq!(keys.path_secret_0, k.path_generation_secret);
            assert_ne!(keys.init_key, keys.encryption_key);
            let s = keys.sibling_commit_secrets(false);
            assert_eq!(s.signature_key, None);
            assert_eq!(s.leaf_key, keys.encryption_key);
        }
    }
}
