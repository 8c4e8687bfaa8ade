//! Emulation-epoch secrets (draft §5.2, DESIGN §5 rows 1 and 10).
//!
//! In every epoch of the emulation group, each emulator client computes
//!
//! ```text
//! emulator_epoch_secret = SafeExportSecret(VC_COMPONENT_ID)        (VC_COMPONENT_ID = 6)
//! epoch_id              = DeriveSecret(emulator_epoch_secret, "Epoch ID")
//! epoch_base_secret     = DeriveSecret(emulator_epoch_secret, "Base Secret")
//! epoch_encryption_key  = DeriveSecret(emulator_epoch_secret, "Encryption Key")
//! ```
//!
//! with the emulation group's suite, and deletes `emulator_epoch_secret`. The
//! `epoch_base_secret` keys the epoch's PPRF ([`Pprf`]); what remains of it (punctured) is kept
//! with `epoch_id` and `epoch_encryption_key` while key material derived from the epoch is in
//! use (row 10: the caller decides when to drop an [`EmulationEpochSecrets`]).
//!
//! [`EmulationEpochSecrets::to_bytes`] serialises the whole epoch state (versioned):
//!
//! ```text
//! struct {
//!   uint16 version = 1;
//!   CipherSuite cipher_suite;
//!   opaque epoch_id<V>;
//!   opaque epoch_encryption_key<V>;
//!   opaque pprf_state<V>;      /* Pprf::to_bytes */
//! } EmulationEpochState;
//! ```

use mls_engine::codec::{decode_exact, CodecError};
use mls_engine::crypto::{CipherSuite, CryptoError, MlsCrypto as _, Secret, SuiteProvider};
use mls_engine::group::{Group, GroupError, Services};
use tls_codec::{
    SecretVLBytes, Serialize as _, Size as _, TlsDeserialize, TlsDeserializeBytes, TlsSerialize,
    TlsSize, VLBytes,
};

use crate::pprf::{Pprf, PprfError};
use crate::wire::{DerivationInfoExtension, EpochInfoTbe, WireError};

pub use crate::wire::VC_COMPONENT_ID;

/// The version of the [`EmulationEpochSecrets::to_bytes`] format.
pub const EPOCH_STATE_VERSION: u16 = 1;

/// Why emulation-epoch secrets could not be derived, stored or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    /// The emulation group refused the safe export (e.g. already consumed in this epoch).
    #[error("safe export from the emulation group failed: {0}")]
    Group(#[from] GroupError),
    /// The emulation group's suite is not available.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// `emulator_epoch_secret` does not have `KDF.Nh` octets.
    #[error("emulator_epoch_secret of {actual} octets, expected {expected}")]
    SecretLength {
        /// `KDF.Nh` of the suite.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The stored state has a version we do not read.
    #[error("emulation epoch state version {0} is not supported")]
    UnsupportedVersion(u16),
    /// The stored state names a cipher suite the engine does not implement.
    #[error("emulation epoch state of unsupported cipher suite 0x{:04x}", .0 .0)]
    UnsupportedSuite(CipherSuite),
    /// The stored state is inconsistent.
    #[error("malformed emulation epoch state: {0}")]
    Malformed(&'static str),
    /// The stored PPRF is malformed.
    #[error(transparent)]
    Pprf(#[from] PprfError),
    /// The state could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// The secrets of one emulation-group epoch: `epoch_id`, the (punctured) PPRF keyed with
/// `epoch_base_secret`, and `epoch_encryption_key`. Zeroized on drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmulationEpochSecrets {
    suite: CipherSuite,
    epoch_id: Vec<u8>,
    epoch_encryption_key: Secret,
    pprf: Pprf,
}

impl EmulationEpochSecrets {
    /// The epoch's secrets from `emulator_epoch_secret` (which is consumed and zeroized), with
    /// the emulation group's suite `cs`.
    pub fn from_emulator_epoch_secret(
        cs: &dyn SuiteProvider,
        emulator_epoch_secret: Secret,
    ) -> Result<Self, EpochError> {
        let nh = cs.params().hash_len();
        if emulator_epoch_secret.len() != nh {
            return Err(EpochError::SecretLength {
                expected: nh,
                actual: emulator_epoch_secret.len(),
            });
        }
        let secret = emulator_epoch_secret.as_bytes();
        let epoch_id = cs.derive_secret(secret, "Epoch ID")?;
        let epoch_base_secret = cs.derive_secret(secret, "Base Secret")?;
        let epoch_encryption_key = cs.derive_secret(secret, "Encryption Key")?;
        drop(emulator_epoch_secret);
        Ok(Self {
            suite: cs.cipher_suite(),
            epoch_id: epoch_id.as_bytes().to_vec(),
            epoch_encryption_key,
            pprf: Pprf::new(cs.cipher_suite(), epoch_base_secret),
        })
    }

    /// The secrets of the current epoch of the emulation group `group`: consumes its
    /// `SafeExportSecret(VC_COMPONENT_ID)` (a second call in the same epoch fails with
    /// `GroupError::SafeExport(AlreadyConsumed)`).
    pub fn from_group(group: &mut Group, services: &Services<'_>) -> Result<Self, EpochError> {
        let cs = services.crypto.suite(group.cipher_suite())?;
        let emulator_epoch_secret = group.safe_export_secret(services, VC_COMPONENT_ID)?;
        Self::from_emulator_epoch_secret(cs, emulator_epoch_secret)
    }

    /// The emulation group's suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.suite
    }

    /// `epoch_id`: names this epoch in `DerivationInfoExtension` and `KeyPackageUpload`.
    pub fn epoch_id(&self) -> &[u8] {
        &self.epoch_id
    }

    /// `epoch_encryption_key`.
    pub fn epoch_encryption_key(&self) -> &Secret {
        &self.epoch_encryption_key
    }

    /// The PPRF keyed with `epoch_base_secret`, as punctured so far.
    pub fn pprf(&self) -> &Pprf {
        &self.pprf
    }

    /// The PPRF, to derive (and puncture) with.
    pub fn pprf_mut(&mut self) -> &mut Pprf {
        &mut self.pprf
    }

    /// The `DerivationInfoExtension` naming this epoch, with `info` sealed under
    /// `epoch_encryption_key` (DESIGN §5 row 8). `cs` is the emulation group's suite.
    pub fn seal_epoch_info(
        &self,
        cs: &dyn SuiteProvider,
        info: &EpochInfoTbe,
    ) -> Result<DerivationInfoExtension, WireError> {
        DerivationInfoExtension::seal(
            cs,
            &self.epoch_id,
            self.epoch_encryption_key.as_bytes(),
            info,
        )
    }

    /// Opens a `DerivationInfoExtension` the caller found to name this epoch.
    pub fn open_epoch_info(
        &self,
        cs: &dyn SuiteProvider,
        extension: &DerivationInfoExtension,
    ) -> Result<EpochInfoTbe, WireError> {
        extension.open(cs, &self.epoch_id, self.epoch_encryption_key.as_bytes())
    }

    /// The whole epoch state as `EmulationEpochState` bytes (they hold secrets).
    pub fn to_bytes(&self) -> Result<Vec<u8>, EpochError> {
        let state = EmulationEpochState {
            version: EPOCH_STATE_VERSION,
            cipher_suite: self.suite,
            epoch_id: VLBytes::new(self.epoch_id.clone()),
            epoch_encryption_key: SecretVLBytes::new(self.epoch_encryption_key.as_bytes().to_vec()),
            pprf_state: SecretVLBytes::new(self.pprf.to_bytes()?),
        };
        let mut out = Vec::with_capacity(state.tls_serialized_len());
        state
            .tls_serialize(&mut out)
            .map_err(|e| EpochError::Codec(e.into()))?;
        Ok(out)
    }

    /// Restores [`EmulationEpochSecrets::to_bytes`], checking version, suite and lengths.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EpochError> {
        let state: EmulationEpochState = decode_exact(bytes)?;
        if state.version != EPOCH_STATE_VERSION {
            return Err(EpochError::UnsupportedVersion(state.version));
        }
        let params = state
            .cipher_suite
            .params()
            .ok_or(EpochError::UnsupportedSuite(state.cipher_suite))?;
        let nh = params.hash_len();
        if state.epoch_id.as_slice().len() != nh {
            return Err(EpochError::Malformed("epoch_id of the wrong length"));
        }
        if state.epoch_encryption_key.as_slice().len() != nh {
            return Err(EpochError::Malformed(
                "epoch_encryption_key of the wrong length",
            ));
        }
        let pprf = Pprf::from_bytes(state.pprf_state.as_slice())?;
        if pprf.cipher_suite() != state.cipher_suite {
            return Err(EpochError::Malformed("PPRF of another cipher suite"));
        }
        Ok(Self {
            suite: state.cipher_suite,
            epoch_id: state.epoch_id.as_slice().to_vec(),
            epoch_encryption_key: Secret::new(state.epoch_encryption_key.as_slice().to_vec()),
            pprf,
        })
    }
}

/// `EmulationEpochState`: the serialised epoch.
#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct EmulationEpochState {
    version: u16,
    cipher_suite: CipherSuite,
    epoch_id: VLBytes,
    epoch_encryption_key: SecretVLBytes,
    pprf_state: SecretVLBytes,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mls_engine::crypto::{CryptoProvider as _, RustCrypto};

    #[test]
    fn formulas() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let ees = Secret::new(vec![5; 32]);
        let e = EmulationEpochSecrets::from_emulator_epoch_secret(cs, ees.clone()).unwrap();
        let label = |l: &str| {
            cs.expand_with_label(ees.as_bytes(), l, &[], 32)
                .unwrap()
                .as_bytes()
                .to_vec()
        };
        assert_eq!(e.epoch_id(), label("Epoch ID").as_slice());
        assert_eq!(
            e.epoch_encryption_key().as_bytes(),
            label("Encryption Key").as_slice()
        );
        let base = Secret::new(label("Base Secret"));
        assert_eq!(e.pprf(), &Pprf::new(CipherSuite(1), base));
        assert_eq!(e.cipher_suite(), CipherSuite(1));
        assert_eq!(
            EmulationEpochSecrets::from_emulator_epoch_secret(cs, Secret::new(vec![1; 31])),
            Err(EpochError::SecretLength {
                expected: 32,
                actual: 31
            })
        );
    }

    #[test]
    fn state_round_trip() {
        let cs = RustCrypto.suite(CipherSuite(3)).unwrap();
        let mut e = EmulationEpochSecrets::from_emulator_epoch_secret(cs, Secret::new(vec![5; 32]))
            .unwrap();
        e.pprf_mut().puncture(cs, 77).unwrap();
        let bytes = e.to_bytes().unwrap();
        let back = EmulationEpochSecrets::from_bytes(&bytes).unwrap();
        assert_eq!(back, e);
        assert!(back.pprf().is_punctured(77));
        let mut v = bytes.clone();
        v[1] = 9;
        assert_eq!(
            EmulationEpochSecrets::from_bytes(&v),
            Err(EpochError::UnsupportedVersion(9))
        );
        let mut id = bytes.clone();
        id[4] = 31; // epoch_id length prefix
        assert!(EmulationEpochSecrets::from_bytes(&id).is_err());
        assert!(EmulationEpochSecrets::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn seal_and_open_through_the_epoch() {
        let cs = RustCrypto.suite(CipherSuite(2)).unwrap();
        let a = EmulationEpochSecrets::from_emulator_epoch_secret(cs, Secret::new(vec![5; 32]))
            .unwrap();
        let b = EmulationEpochSecrets::from_emulator_epoch_secret(cs, Secret::new(vec![6; 32]))
            .unwrap();
        let info = EpochInfoTbe {
            leaf_index: 1,
            random: VLBytes::new(vec![1; 32]),
        };
        let ext = a.seal_epoch_info(cs, &info).unwrap();
        assert_eq!(ext.epoch_id.as_slice(), a.epoch_id());
        assert_eq!(a.open_epoch_info(cs, &ext).unwrap(), info);
        assert_eq!(b.open_epoch_info(cs, &ext), Err(WireError::EpochIdMismatch));
    }
}
