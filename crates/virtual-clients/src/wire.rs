//! The wire structs of the draft (§5.2-§5.5), exactly as its TLS presentation language says,
//! and the encryption of `EpochInfoTBE` into a `DerivationInfoExtension` (DESIGN §5 row 8).
//!
//! ```text
//! struct { u32 leaf_index; opaque random<V>; } HashInput;                       (§5.2)
//! struct { opaque epoch_id<V>; opaque ciphertext<V>; } DerivationInfoExtension; (§5.3)
//! struct { uint32 leaf_index; opaque random<V>; } EpochInfoTBE;                 (§5.3)
//! enum { reserved(0), key_package_upload(1), external_join(2), (255) } ActionType;
//! struct {
//!   ActionType action_type;
//!   select (VirtualClientAction.action_type) {
//!     case key_package_upload: KeyPackageUpload key_package_upload;
//!     case external_join:      ExternalJoin external_join;
//!   };
//! } VirtualClientAction;                                                        (§5.5)
//! struct { KeyPackageRef key_package_ref; opaque random<V>; } KeyPackageInfo;   (§5.5.1, row 9)
//! struct { opaque epoch_id<V>; KeyPackageInfo key_package_info<V>; } KeyPackageUpload;
//! struct { opaque group_id<V>; } ExternalJoin;                                  (§5.5.2)
//! ```
//!
//! `DerivationInfoExtension` travels as a LeafNode extension of the private-use type
//! [`DERIVATION_INFO_EXTENSION_TYPE`] `0xF0C1` (DESIGN §5 row 7). Its `ciphertext` is
//! (row 8), with the emulation group's AEAD:
//!
//! ```text
//! key        = ExpandWithLabel(epoch_encryption_key, "key", "", AEAD.Nk)
//! nonce      = AEAD.Nn fresh random octets
//! ciphertext = nonce || AEAD.Seal(key, nonce, aad = epoch_id, EpochInfoTBE)
//! ```
//!
//! The AAD is the raw `epoch_id` octets (not their `opaque<V>` encoding). A
//! `VirtualClientAction` is the SafeAAD item of [`VC_COMPONENT_ID`] (row 13).

use mls_engine::codec::{
    decode_exact, encode, CodecError, Extension, ExtensionType, KeyPackageRef,
};
use mls_engine::crypto::{CryptoError, MlsCrypto as _, SuiteProvider};
use mls_engine::extensions::{ComponentId, SafeAadItem};
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

/// The component ID of virtual clients (DESIGN §5 row 1): the draft's `XXX` in
/// `SafeExportSecret(XXX)`, and the SafeAAD component of `VirtualClientAction` (row 13).
pub const VC_COMPONENT_ID: ComponentId = 0x0000_0006;

/// The LeafNode extension type of [`DerivationInfoExtension`]: `0xF0C1`, in the private-use
/// range of the MLS Extension Types registry (DESIGN §5 row 7). Leaves that carry it list it
/// in their capabilities.
pub const DERIVATION_INFO_EXTENSION_TYPE: ExtensionType = ExtensionType(0xF0C1);

/// The number of fresh random octets in `HashInput.random` / `EpochInfoTBE.random` a sender
/// samples (DESIGN §5 row 3).
pub const RANDOM_LEN: usize = 32;

/// Why a wire struct could not be read, or an `EpochInfoTBE` not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes are not a well-formed encoding of the struct.
    #[error("malformed encoding: {0}")]
    Codec(#[from] CodecError),
    /// An extension of another type was given as a `DerivationInfoExtension`.
    #[error("extension type 0x{:04x} is not the DerivationInfoExtension (0xf0c1)", .0 .0)]
    WrongExtensionType(ExtensionType),
    /// A SafeAAD item of another component was given as a `VirtualClientAction`.
    #[error("SafeAAD item of component {0:#x} is not a virtual client action")]
    WrongComponent(u32),
    /// The extension names another emulation epoch than the secrets it was opened with.
    #[error("the DerivationInfoExtension names another emulation epoch")]
    EpochIdMismatch,
    /// The `ciphertext` is shorter than the AEAD nonce and tag.
    #[error("ciphertext of {len} octets is shorter than nonce and tag ({min} octets)")]
    CiphertextTooShort {
        /// The ciphertext's length.
        len: usize,
        /// The least length a ciphertext can have.
        min: usize,
    },
    /// The AEAD refused the ciphertext: it was tampered with, or sealed under another key.
    #[error("EpochInfoTBE does not decrypt (tampered, or another epoch's key)")]
    DecryptionFailed,
    /// Another cryptographic operation failed.
    #[error(transparent)]
    Crypto(CryptoError),
}

impl From<CryptoError> for WireError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::DecryptionFailed => WireError::DecryptionFailed,
            other => WireError::Crypto(other),
        }
    }
}

/// The AEAD tag length of every AEAD the engine implements (AES-128-GCM, ChaCha20-Poly1305).
const AEAD_TAG_LEN: usize = 16;

/// `HashInput` (§5.2): the PPRF input is `Hash(HashInput)` with the emulation group's hash.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct HashInput {
    /// The leaf index of the deriving emulator client in the emulation group.
    pub leaf_index: u32,
    /// `opaque random<V>`: fresh random octets ([`RANDOM_LEN`] of them when we send).
    pub random: VLBytes,
}

/// `EpochInfoTBE` (§5.3): what a sibling needs, beside the epoch, to re-derive an operation's
/// secrets. Encrypted into [`DerivationInfoExtension::ciphertext`].
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct EpochInfoTbe {
    /// The leaf index of the deriving emulator client in the emulation group.
    pub leaf_index: u32,
    /// `opaque random<V>`: the `random` of the operation's [`HashInput`].
    pub random: VLBytes,
}

impl EpochInfoTbe {
    /// The [`HashInput`] with the same `leaf_index` and `random`.
    pub fn hash_input(&self) -> HashInput {
        HashInput {
            leaf_index: self.leaf_index,
            random: self.random.clone(),
        }
    }
}

/// `DerivationInfoExtension` (§5.3): carried by every LeafNode a virtual client makes, so its
/// siblings find the emulation epoch (`epoch_id`) and the encrypted [`EpochInfoTbe`].
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct DerivationInfoExtension {
    /// `opaque epoch_id<V>`: the emulation epoch the secrets come from.
    pub epoch_id: VLBytes,
    /// `opaque ciphertext<V>`: `nonce || Seal(key, nonce, epoch_id, EpochInfoTBE)` (row 8).
    pub ciphertext: VLBytes,
}

impl DerivationInfoExtension {
    /// Seals `info` under `epoch_encryption_key` of the emulation epoch `epoch_id`, with the
    /// emulation group's suite `cs` and a fresh random nonce (DESIGN §5 row 8).
    pub fn seal(
        cs: &dyn SuiteProvider,
        epoch_id: &[u8],
        epoch_encryption_key: &[u8],
        info: &EpochInfoTbe,
    ) -> Result<Self, WireError> {
        let params = cs.params();
        let key = cs.expand_with_label(epoch_encryption_key, "key", &[], params.aead_key_len())?;
        let nonce = cs.random_vec(params.aead_nonce_len())?;
        let plaintext = zeroize::Zeroizing::new(encode(info)?);
        let sealed = cs.aead_seal(key.as_bytes(), &nonce, epoch_id, &plaintext)?;
        let mut ciphertext = nonce;
        ciphertext.extend_from_slice(&sealed);
        Ok(Self {
            epoch_id: VLBytes::new(epoch_id.to_vec()),
            ciphertext: VLBytes::new(ciphertext),
        })
    }

    /// Opens the `ciphertext` with the secrets of the emulation epoch `epoch_id` (which the
    /// caller found by this extension's `epoch_id`; another epoch's ID is
    /// [`WireError::EpochIdMismatch`]). A tampered ciphertext or `epoch_id` is
    /// [`WireError::DecryptionFailed`].
    pub fn open(
        &self,
        cs: &dyn SuiteProvider,
        epoch_id: &[u8],
        epoch_encryption_key: &[u8],
    ) -> Result<EpochInfoTbe, WireError> {
        if self.epoch_id.as_slice() != epoch_id {
            return Err(WireError::EpochIdMismatch);
        }
        let params = cs.params();
        let nonce_len = params.aead_nonce_len();
        let min = nonce_len + AEAD_TAG_LEN;
        let bytes = self.ciphertext.as_slice();
        if bytes.len() < min {
            return Err(WireError::CiphertextTooShort {
                len: bytes.len(),
                min,
            });
        }
        let (nonce, sealed) = bytes.split_at(nonce_len);
        let key = cs.expand_with_label(epoch_encryption_key, "key", &[], params.aead_key_len())?;
        let plaintext =
            zeroize::Zeroizing::new(cs.aead_open(key.as_bytes(), nonce, epoch_id, sealed)?);
        Ok(decode_exact(&plaintext)?)
    }

    /// This extension as a LeafNode [`Extension`] of type [`DERIVATION_INFO_EXTENSION_TYPE`].
    pub fn to_extension(&self) -> Result<Extension, WireError> {
        Ok(Extension::new(
            DERIVATION_INFO_EXTENSION_TYPE,
            encode(self)?,
        ))
    }

    /// Reads a LeafNode extension of type [`DERIVATION_INFO_EXTENSION_TYPE`].
    pub fn from_extension(extension: &Extension) -> Result<Self, WireError> {
        if extension.extension_type != DERIVATION_INFO_EXTENSION_TYPE {
            return Err(WireError::WrongExtensionType(extension.extension_type));
        }
        Ok(decode_exact(extension.extension_data.as_slice())?)
    }

    /// The `DerivationInfoExtension` among a LeafNode's `extensions`: `Ok(None)` if there is
    /// none, an error if it is malformed.
    pub fn find_in(extensions: &[Extension]) -> Result<Option<Self>, WireError> {
        extensions
            .iter()
            .find(|e| e.extension_type == DERIVATION_INFO_EXTENSION_TYPE)
            .map(Self::from_extension)
            .transpose()
    }
}

/// `ActionType` (§5.5): `reserved(0)` and values above 2 are refused when decoding.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum ActionType {
    /// `key_package_upload(1)`.
    KeyPackageUpload = 1,
    /// `external_join(2)`.
    ExternalJoin = 2,
}

/// `KeyPackageInfo` (§5.5.1): one uploaded KeyPackage and the `random` of its derivation.
/// `key_package_ref` is one `KeyPackageRef` (DESIGN §5 row 9: the draft's `<V>` is the
/// reference's own length prefix).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct KeyPackageInfo {
    /// `MakeKeyPackageRef` of the uploaded KeyPackage.
    pub key_package_ref: KeyPackageRef,
    /// `opaque random<V>`: the `random` of the KeyPackage's [`HashInput`].
    pub random: VLBytes,
}

/// `KeyPackageUpload` (§5.5.1): KeyPackages about to be uploaded for the virtual client, all
/// derived from the emulation epoch `epoch_id` by the sender of the carrying Commit.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct KeyPackageUpload {
    /// `opaque epoch_id<V>`.
    pub epoch_id: VLBytes,
    /// `KeyPackageInfo key_package_info<V>`.
    pub key_package_info: Vec<KeyPackageInfo>,
}

/// `ExternalJoin` (§5.5.2): the virtual client is about to join `group_id` by external commit.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ExternalJoin {
    /// `opaque group_id<V>`.
    pub group_id: VLBytes,
}

/// `VirtualClientAction` (§5.5): `action_type` followed by the arm it selects.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub enum VirtualClientAction {
    /// `action_type = key_package_upload`.
    #[tls_codec(discriminant = 1)]
    KeyPackageUpload(KeyPackageUpload),
    /// `action_type = external_join`.
    #[tls_codec(discriminant = 2)]
    ExternalJoin(ExternalJoin),
}

impl VirtualClientAction {
    /// The `ActionType` of this action.
    pub fn action_type(&self) -> ActionType {
        match self {
            VirtualClientAction::KeyPackageUpload(_) => ActionType::KeyPackageUpload,
            VirtualClientAction::ExternalJoin(_) => ActionType::ExternalJoin,
        }
    }

    /// The TLS encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        Ok(encode(self)?)
    }

    /// Decodes an action that spans all of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        Ok(decode_exact(bytes)?)
    }

    /// The SafeAAD item carrying this action: component [`VC_COMPONENT_ID`] (DESIGN §5 row 13).
    pub fn to_safe_aad_item(&self) -> Result<SafeAadItem, WireError> {
        Ok(SafeAadItem::new(VC_COMPONENT_ID, self.to_bytes()?))
    }

    /// Reads the action from a SafeAAD item of component [`VC_COMPONENT_ID`].
    pub fn from_safe_aad_item(item: &SafeAadItem) -> Result<Self, WireError> {
        if item.component_id != VC_COMPONENT_ID {
            return Err(WireError::WrongComponent(item.component_id));
        }
        Self::from_bytes(item.aad_item_data.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto};

    fn info() -> EpochInfoTbe {
        EpochInfoTbe {
            leaf_index: 3,
            random: VLBytes::new(vec![7; RANDOM_LEN]),
        }
    }

    #[test]
    fn seal_open_every_suite() {
        for suite in CipherSuite::SUPPORTED {
            let cs = RustCrypto.suite(suite).unwrap();
            // The epoch encryption key is `KDF.Nh` bytes.
            let key = vec![1; cs.params().hash_len()];
            let ext = DerivationInfoExtension::seal(cs, b"epoch", &key, &info()).unwrap();
            assert_eq!(
                ext.ciphertext.as_slice().len(),
                12 + 4 + 1 + RANDOM_LEN + AEAD_TAG_LEN
            );
            assert_eq!(ext.open(cs, b"epoch", &key).unwrap(), info());
        }
    }

    #[test]
    fn fresh_nonce_each_time() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let a = DerivationInfoExtension::seal(cs, b"e", &[1; 32], &info()).unwrap();
        let b = DerivationInfoExtension::seal(cs, b"e", &[1; 32], &info()).unwrap();
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn tampering_is_refused() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let ext = DerivationInfoExtension::seal(cs, b"epoch", &[1; 32], &info()).unwrap();
        let n = ext.ciphertext.as_slice().len();
        for i in 0..n {
            let mut bad = ext.clone();
            let mut bytes = bad.ciphertext.as_slice().to_vec();
            bytes[i] ^= 1;
            bad.ciphertext = VLBytes::new(bytes);
            assert_eq!(
                bad.open(cs, b"epoch", &[1; 32]),
                Err(WireError::DecryptionFailed)
            );
        }
        // Another key, a truncated ciphertext, another epoch.
        assert_eq!(
            ext.open(cs, b"epoch", &[2; 32]),
            Err(WireError::DecryptionFailed)
        );
        let mut short = ext.clone();
        short.ciphertext = VLBytes::new(ext.ciphertext.as_slice()[..27].to_vec());
        assert_eq!(
            short.open(cs, b"epoch", &[1; 32]),
            Err(WireError::CiphertextTooShort { len: 27, min: 28 })
        );
        assert_eq!(
            ext.open(cs, b"other", &[1; 32]),
            Err(WireError::EpochIdMismatch)
        );
        // The epoch_id is the AAD: a forged one (with a matching caller lookup) fails.
        let mut forged = ext.clone();
        forged.epoch_id = VLBytes::new(b"epocH".to_vec());
        assert_eq!(
            forged.open(cs, b"epocH", &[1; 32]),
            Err(WireError::DecryptionFailed)
        );
    }

    #[test]
    fn extension_and_safe_aad_item() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let ext = DerivationInfoExtension::seal(cs, b"epoch", &[1; 32], &info()).unwrap();
        let e = ext.to_extension().unwrap();
        assert_eq!(e.extension_type, ExtensionType(0xF0C1));
        assert_eq!(DerivationInfoExtension::from_extension(&e).unwrap(), ext);
        assert_eq!(
            DerivationInfoExtension::find_in(std::slice::from_ref(&e)).unwrap(),
            Some(ext)
        );
        assert_eq!(DerivationInfoExtension::find_in(&[]).unwrap(), None);
        let other = Extension::new(ExtensionType(0xF0C2), e.extension_data.as_slice().to_vec());
        assert_eq!(
            DerivationInfoExtension::from_extension(&other),
            Err(WireError::WrongExtensionType(ExtensionType(0xF0C2)))
        );
        let mut bad = e.clone();
        bad.extension_data = VLBytes::new(vec![0xff]);
        assert!(matches!(
            DerivationInfoExtension::find_in(&[bad]),
            Err(WireError::Codec(_))
        ));

        let action = VirtualClientAction::ExternalJoin(ExternalJoin {
            group_id: VLBytes::new(b"g".to_vec()),
        });
        let item = action.to_safe_aad_item().unwrap();
        assert_eq!(item.component_id, 6);
        assert_eq!(
            VirtualClientAction::from_safe_aad_item(&item).unwrap(),
            action
        );
        let wrong = SafeAadItem::new(7, item.aad_item_data.as_slice().to_vec());
        assert_eq!(
            VirtualClientAction::from_safe_aad_item(&wrong),
            Err(WireError::WrongComponent(7))
        );
    }
}
