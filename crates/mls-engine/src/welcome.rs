//! Welcome messages (RFC 9420 §12.4.3.1): building one for new members, and opening one.
//!
//! Sending ([`build_welcome`]): the signed GroupInfo is encrypted under `welcome_key` and
//! `welcome_nonce` (from the new epoch's `welcome_secret`, see
//! [`KeySchedule::welcome_key_nonce`]) with empty AAD; each joiner's GroupSecrets
//! (`joiner_secret`, its `path_secret` if any, the PSKs of the epoch) is encrypted with
//! `EncryptWithLabel(init_key, "Welcome", encrypted_group_info, group_secrets)` and listed
//! under the `KeyPackageRef` of its KeyPackage.
//!
//! Receiving, step by step (or all at once with [`process_welcome`]):
//!
//! 1. [`decrypt_group_secrets`]: find the entry for our KeyPackageRef, check the suites, and
//!    `DecryptWithLabel(init_key_priv, "Welcome", encrypted_group_info, kem_output,
//!    ciphertext)` into GroupSecrets;
//! 2. [`decrypt_group_info`]: `member_secret = KDF.Extract(joiner_secret, psk_secret)`,
//!    `welcome_secret`, then `welcome_key`/`welcome_nonce` open the GroupInfo;
//! 3. [`verify_group_info`]: the GroupInfo signature under the signer's key (which the caller
//!    finds in the ratchet tree at leaf `signer`), then the epoch secrets from the
//!    GroupContext, and `confirmation_tag == MAC(confirmation_key, confirmed_transcript_hash)`.
//!
//! Tree validation, the check that our KeyPackage's LeafNode is in the tree, group ID
//! uniqueness and the `path_secret` use are the group layer's steps, not done here.

use tls_codec::VLBytes;
use zeroize::Zeroize as _;

use crate::codec::{
    decode_exact, encode, CipherSuite, CodecError, EncryptedGroupSecrets, GroupInfo, GroupSecrets,
    HpkeCiphertext, KeyPackage, KeyPackageRef, PathSecret, PreSharedKeyID, SignatureError, Welcome,
};
use crate::crypto::{CryptoError, HpkePrivateKey, MlsCrypto as _, Secret, SuiteProvider};
use crate::schedule::{EpochSecrets, KeySchedule, KeyScheduleError, WelcomeKeyNonce};

/// The label of `EncryptWithLabel` for GroupSecrets (§12.4.3.1).
pub const WELCOME_LABEL: &str = "Welcome";

/// Why a Welcome could not be built or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WelcomeError {
    /// The Welcome's cipher suite is not the one of the suite implementation given.
    #[error("the Welcome is for suite 0x{:04x}, the provider is for 0x{:04x}", .welcome.0, .provider.0)]
    WelcomeCipherSuiteMismatch {
        /// The Welcome's suite.
        welcome: CipherSuite,
        /// The suite of the implementation given.
        provider: CipherSuite,
    },
    /// A KeyPackage is for another cipher suite than the group's.
    #[error("a KeyPackage is for suite 0x{:04x}, the group uses 0x{:04x}", .key_package.0, .group.0)]
    KeyPackageCipherSuiteMismatch {
        /// The KeyPackage's suite.
        key_package: CipherSuite,
        /// The group's suite.
        group: CipherSuite,
    },
    /// The GroupInfo's GroupContext names another cipher suite than the Welcome.
    #[error("the GroupInfo is for suite 0x{:04x}, the Welcome for 0x{:04x}", .group_info.0, .welcome.0)]
    GroupInfoCipherSuiteMismatch {
        /// The GroupContext's suite.
        group_info: CipherSuite,
        /// The Welcome's suite.
        welcome: CipherSuite,
    },
    /// The Welcome has no entry for our KeyPackage.
    #[error("the Welcome has no secrets for this KeyPackage")]
    NoSecretsForKeyPackage,
    /// The GroupSecrets did not decrypt under our init key.
    #[error("GroupSecrets decryption failed")]
    GroupSecretsDecryptionFailed,
    /// The decrypted GroupSecrets do not decode.
    #[error("malformed GroupSecrets: {0}")]
    MalformedGroupSecrets(CodecError),
    /// The GroupSecrets list PSKs and their `psk_secret` was not supplied.
    #[error("the Welcome needs PSKs that are not available")]
    MissingPsk,
    /// `encrypted_group_info` did not decrypt under the welcome key.
    #[error("GroupInfo decryption failed")]
    GroupInfoDecryptionFailed,
    /// The decrypted GroupInfo does not decode.
    #[error("malformed GroupInfo: {0}")]
    MalformedGroupInfo(CodecError),
    /// The GroupInfo's `signer` is a blank leaf or outside the tree.
    #[error("unknown GroupInfo signer {0}")]
    UnknownSigner(u32),
    /// The GroupInfo signature does not verify under the signer's key.
    #[error("invalid GroupInfo signature")]
    InvalidGroupInfoSignature,
    /// The GroupInfo's confirmation tag does not match the epoch's confirmation key and
    /// confirmed transcript hash.
    #[error("GroupInfo confirmation tag mismatch")]
    ConfirmationTagMismatch,
    /// A key schedule step failed (e.g. a secret of the wrong length).
    #[error(transparent)]
    KeySchedule(KeyScheduleError),
    /// Encoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A cryptographic operation of the sender failed (e.g. an invalid init key).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Signing or encoding a signed structure failed.
    #[error(transparent)]
    Signature(SignatureError),
}

impl From<KeyScheduleError> for WelcomeError {
    fn from(e: KeyScheduleError) -> Self {
        match e {
            KeyScheduleError::ConfirmationTagMismatch => WelcomeError::ConfirmationTagMismatch,
            other => WelcomeError::KeySchedule(other),
        }
    }
}

fn check_welcome_suite(cs: &dyn SuiteProvider, welcome: &Welcome) -> Result<(), WelcomeError> {
    let provider = cs.cipher_suite();
    if welcome.cipher_suite != provider {
        return Err(WelcomeError::WelcomeCipherSuiteMismatch {
            welcome: welcome.cipher_suite,
            provider,
        });
    }
    Ok(())
}

pub(crate) fn check_key_package_suite(
    key_package: &KeyPackage,
    group: CipherSuite,
) -> Result<(), WelcomeError> {
    if key_package.cipher_suite != group {
        return Err(WelcomeError::KeyPackageCipherSuiteMismatch {
            key_package: key_package.cipher_suite,
            group,
        });
    }
    Ok(())
}

/// One joiner of a Welcome: its KeyPackage and the `path_secret` of the lowest node shared by
/// the committer's and its direct path (`None` for a Commit without path).
#[derive(Debug, Clone, Copy)]
pub struct NewMemberSecrets<'a> {
    /// The joiner's KeyPackage (its `init_key` receives the GroupSecrets).
    pub key_package: &'a KeyPackage,
    /// The joiner's `path_secret`.
    pub path_secret: Option<&'a Secret>,
}

/// Builds the Welcome of an epoch (§12.4.3.1) for `new_members`. `group_info` is signed and
/// carries the epoch's confirmation tag; `joiner_secret` and `welcome_key_nonce` are the new
/// epoch's; `psks` are the PSKs injected into the epoch, in order.
pub fn build_welcome(
    cs: &dyn SuiteProvider,
    group_info: &GroupInfo,
    joiner_secret: &Secret,
    welcome_key_nonce: &WelcomeKeyNonce,
    psks: &[PreSharedKeyID],
    new_members: &[NewMemberSecrets<'_>],
) -> Result<Welcome, WelcomeError> {
    let cipher_suite = cs.cipher_suite();
    if group_info.group_context.cipher_suite != cipher_suite {
        return Err(WelcomeError::GroupInfoCipherSuiteMismatch {
            group_info: group_info.group_context.cipher_suite,
            welcome: cipher_suite,
        });
    }
    let encrypted_group_info = cs.aead_seal(
        welcome_key_nonce.welcome_key.as_bytes(),
        welcome_key_nonce.welcome_nonce.as_bytes(),
        &[],
        &encode(group_info)?,
    )?;
    let secrets = crate::parallel::try_map(new_members, |member| {
        encrypt_group_secrets(cs, member, joiner_secret, psks, &encrypted_group_info)
    })?;
    Ok(Welcome {
        cipher_suite,
        secrets,
        encrypted_group_info: VLBytes::new(encrypted_group_info),
    })
}

/// One new member's entry of a Welcome: its KeyPackageRef and its GroupSecrets encrypted to
/// its `init_key` (§12.4.3.1). Independent per member, so a large Welcome is built in
/// parallel (DESIGN §7).
fn encrypt_group_secrets(
    cs: &dyn SuiteProvider,
    member: &NewMemberSecrets<'_>,
    joiner_secret: &Secret,
    psks: &[PreSharedKeyID],
    encrypted_group_info: &[u8],
) -> Result<EncryptedGroupSecrets, WelcomeError> {
    let cipher_suite = cs.cipher_suite();
    check_key_package_suite(member.key_package, cipher_suite)?;
    let new_member = KeyPackageRef::from(cs.make_key_package_ref(&encode(member.key_package)?)?);
    let group_secrets = GroupSecrets {
        joiner_secret: joiner_secret.clone(),
        path_secret: member.path_secret.map(|s| PathSecret {
            path_secret: s.clone(),
        }),
        psks: psks.to_vec(),
    };
    let mut plaintext = encode(&group_secrets)?;
    drop(group_secrets);
    let sealed = cs.encrypt_with_label(
        member.key_package.init_key.as_slice(),
        WELCOME_LABEL,
        encrypted_group_info,
        &plaintext,
    );
    plaintext.zeroize();
    let sealed = sealed?;
    Ok(EncryptedGroupSecrets {
        new_member,
        encrypted_group_secrets: HpkeCiphertext {
            kem_output: VLBytes::new(sealed.kem_output),
            ciphertext: VLBytes::new(sealed.ciphertext),
        },
    })
}

/// Step 1 of joining (§12.4.3.1): finds the entry of `key_package` (whose reference is
/// `key_package_ref`) and decrypts its GroupSecrets with `init_private_key`.
pub fn decrypt_group_secrets(
    cs: &dyn SuiteProvider,
    welcome: &Welcome,
    key_package: &KeyPackage,
    key_package_ref: &KeyPackageRef,
    init_private_key: &HpkePrivateKey,
) -> Result<GroupSecrets, WelcomeError> {
    check_key_package_suite(key_package, welcome.cipher_suite)?;
    decrypt_group_secrets_by_ref(cs, welcome, key_package_ref, init_private_key)
}

/// [`decrypt_group_secrets`] for a joiner that knows only the `KeyPackageRef` and the
/// `init_key`'s private key, not the KeyPackage itself (a virtual client's sibling, draft
/// `KeyPackageUpload`): the Welcome's cipher suite is checked, not the KeyPackage's.
pub fn decrypt_group_secrets_by_ref(
    cs: &dyn SuiteProvider,
    welcome: &Welcome,
    key_package_ref: &KeyPackageRef,
    init_private_key: &HpkePrivateKey,
) -> Result<GroupSecrets, WelcomeError> {
    check_welcome_suite(cs, welcome)?;
    let entry = welcome
        .secrets_for(key_package_ref)
        .ok_or(WelcomeError::NoSecretsForKeyPackage)?;
    let mut plaintext = cs
        .decrypt_with_label(
            init_private_key,
            WELCOME_LABEL,
            welcome.encrypted_group_info.as_slice(),
            entry.encrypted_group_secrets.kem_output.as_slice(),
            entry.encrypted_group_secrets.ciphertext.as_slice(),
        )
        .map_err(|_| WelcomeError::GroupSecretsDecryptionFailed)?;
    let decoded = decode_exact::<GroupSecrets>(&plaintext);
    plaintext.zeroize();
    decoded.map_err(WelcomeError::MalformedGroupSecrets)
}

/// Step 2 of joining (§12.4.3.1): starts the key schedule from `joiner_secret` and
/// `psk_secret` (all-zero `KDF.Nh` octets when the GroupSecrets list no PSK), derives the
/// welcome key and nonce and decrypts the GroupInfo. Returns it unverified, with the key
/// schedule to finish in [`verify_group_info`].
pub fn decrypt_group_info(
    cs: &dyn SuiteProvider,
    welcome: &Welcome,
    joiner_secret: &Secret,
    psk_secret: Secret,
) -> Result<(GroupInfo, KeySchedule), WelcomeError> {
    check_welcome_suite(cs, welcome)?;
    let schedule = KeySchedule::from_joiner_secret(cs, joiner_secret.clone(), psk_secret)?;
    let keys = schedule.welcome_key_nonce(cs)?;
    let plaintext = cs
        .aead_open(
            keys.welcome_key.as_bytes(),
            keys.welcome_nonce.as_bytes(),
            &[],
            welcome.encrypted_group_info.as_slice(),
        )
        .map_err(|_| WelcomeError::GroupInfoDecryptionFailed)?;
    let group_info =
        decode_exact::<GroupInfo>(&plaintext).map_err(WelcomeError::MalformedGroupInfo)?;
    if group_info.group_context.cipher_suite != welcome.cipher_suite {
        return Err(WelcomeError::GroupInfoCipherSuiteMismatch {
            group_info: group_info.group_context.cipher_suite,
            welcome: welcome.cipher_suite,
        });
    }
    Ok((group_info, schedule))
}

/// Step 3 of joining (§12.4.3.1): verifies the GroupInfo signature under
/// `signer_public_key` (the key of leaf `group_info.signer`), finishes the key schedule with
/// the GroupInfo's GroupContext and checks the confirmation tag against the epoch's
/// `confirmation_key` and the GroupContext's `confirmed_transcript_hash`. Returns the epoch's
/// secrets.
pub fn verify_group_info(
    cs: &dyn SuiteProvider,
    group_info: &GroupInfo,
    signer_public_key: &[u8],
    key_schedule: KeySchedule,
) -> Result<EpochSecrets, WelcomeError> {
    match group_info.verify_signature(cs, signer_public_key) {
        Ok(()) => {}
        Err(SignatureError::Crypto(_)) => return Err(WelcomeError::InvalidGroupInfoSignature),
        Err(e) => return Err(WelcomeError::Signature(e)),
    }
    let context = encode(&group_info.group_context)?;
    let epoch_secrets = key_schedule.finish(cs, &context)?;
    epoch_secrets.verify_confirmation_tag(
        cs,
        group_info
            .group_context
            .confirmed_transcript_hash
            .as_slice(),
        group_info.confirmation_tag.as_slice(),
    )?;
    Ok(epoch_secrets)
}

/// What a verified Welcome gives its joiner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeContents {
    /// The GroupInfo: signature and confirmation tag verified.
    pub group_info: GroupInfo,
    /// The `path_secret` of the lowest node shared with the committer, if any.
    pub path_secret: Option<PathSecret>,
    /// The PSKs injected into the epoch.
    pub psks: Vec<PreSharedKeyID>,
    /// The epoch's secrets.
    pub epoch_secrets: EpochSecrets,
}

/// Opens a Welcome for `key_package` (§12.4.3.1), steps 1 to 3 above. `psk_secret` is asked
/// for the `psk_secret` of the PSKs the GroupSecrets list (only if they list any; `None` if a
/// PSK is unavailable). `signer_key` is asked for the signature key of the GroupInfo's
/// `signer` leaf (`None` if blank or outside the tree).
pub fn process_welcome<K: AsRef<[u8]>>(
    cs: &dyn SuiteProvider,
    welcome: &Welcome,
    key_package: &KeyPackage,
    key_package_ref: &KeyPackageRef,
    init_private_key: &HpkePrivateKey,
    psk_secret: impl FnOnce(&[PreSharedKeyID]) -> Option<Secret>,
    signer_key: impl FnOnce(&GroupInfo) -> Option<K>,
) -> Result<WelcomeContents, WelcomeError> {
    check_key_package_suite(key_package, welcome.cipher_suite)?;
    process_welcome_by_ref(
        cs,
        welcome,
        key_package_ref,
        init_private_key,
        psk_secret,
        signer_key,
    )
}

/// [`process_welcome`] for a joiner that knows only the `KeyPackageRef` and the `init_key`'s
/// private key (see [`decrypt_group_secrets_by_ref`]).
pub fn process_welcome_by_ref<K: AsRef<[u8]>>(
    cs: &dyn SuiteProvider,
    welcome: &Welcome,
    key_package_ref: &KeyPackageRef,
    init_private_key: &HpkePrivateKey,
    psk_secret: impl FnOnce(&[PreSharedKeyID]) -> Option<Secret>,
    signer_key: impl FnOnce(&GroupInfo) -> Option<K>,
) -> Result<WelcomeContents, WelcomeError> {
    let group_secrets =
        decrypt_group_secrets_by_ref(cs, welcome, key_package_ref, init_private_key)?;
    let psk_secret = if group_secrets.psks.is_empty() {
        Secret::zero(cs.params().hash_len())
    } else {
        psk_secret(&group_secrets.psks).ok_or(WelcomeError::MissingPsk)?
    };
    let (group_info, schedule) =
        decrypt_group_info(cs, welcome, &group_secrets.joiner_secret, psk_secret)?;
    let key = signer_key(&group_info).ok_or(WelcomeError::UnknownSigner(group_info.signer))?;
    let epoch_secrets = verify_group_info(cs, &group_info, key.as_ref(), schedule)?;
    let GroupSecrets {
        joiner_secret,
        path_secret,
        psks,
    } = group_secrets;
    drop(joiner_secret);
    Ok(WelcomeContents {
        group_info,
        path_secret,
        psks,
        epoch_secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Credential, GroupContext, Lifetime, ProtocolVersion};
    use crate::crypto::{CryptoProvider as _, RustCrypto, SignatureKeyPair};
    use crate::messages::{KeyPackageBundle, KeyPackageParams};

    static P: RustCrypto = RustCrypto;

    fn cs() -> &'static dyn SuiteProvider {
        P.suite(CipherSuite(1)).unwrap()
    }

    fn signer() -> SignatureKeyPair {
        cs().signature_key_pair_from_seed(&[1; 32]).unwrap()
    }

    fn bundle(suite: &dyn SuiteProvider, name: &str) -> KeyPackageBundle {
        let keys = suite.signature_generate_key_pair().unwrap();
        KeyPackageParams::new(
            suite.cipher_suite(),
            Credential::basic(name.as_bytes().to_vec()),
            Lifetime {
                not_before: 0,
                not_after: u64::MAX,
            },
        )
        .build_fresh(suite, &keys)
        .unwrap()
    }

    /// The committer's side of an epoch: its secrets, Welcome key and signed GroupInfo.
    struct Epoch {
        joiner_secret: Secret,
        welcome_key_nonce: WelcomeKeyNonce,
        epoch_secrets: EpochSecrets,
        group_info: GroupInfo,
    }

    fn epoch(psk_secret: Secret, tag_override: Option<Vec<u8>>) -> Epoch {
        let cs = cs();
        let joiner_secret = Secret::new(vec![0x11; 32]);
        let schedule =
            KeySchedule::from_joiner_secret(cs, joiner_secret.clone(), psk_secret).unwrap();
        let welcome_key_nonce = schedule.welcome_key_nonce(cs).unwrap();
        let group_context = GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(1),
            group_id: vec![0xab; 4].into(),
            epoch: 5,
            tree_hash: vec![2; 32].into(),
            confirmed_transcript_hash: vec![3; 32].into(),
            extensions: vec![],
        };
        let epoch_secrets = schedule
            .finish(cs, &encode(&group_context).unwrap())
            .unwrap();
        let tag = tag_override.unwrap_or_else(|| {
            epoch_secrets.confirmation_tag(cs, group_context.confirmed_transcript_hash.as_slice())
        });
        let mut group_info = GroupInfo {
            group_context,
            extensions: vec![],
            confirmation_tag: tag.into(),
            signer: 0,
            signature: VLBytes::new(vec![]),
        };
        group_info.sign(cs, &signer().private_key).unwrap();
        Epoch {
            joiner_secret,
            welcome_key_nonce,
            epoch_secrets,
            group_info,
        }
    }

    fn welcome_for(
        e: &Epoch,
        psks: &[PreSharedKeyID],
        members: &[(&KeyPackageBundle, Option<&Secret>)],
    ) -> Welcome {
        let new_members: Vec<_> = members
            .iter()
            .map(|(b, path_secret)| NewMemberSecrets {
                key_package: &b.key_package,
                path_secret: *path_secret,
            })
            .collect();
        let welcome = build_welcome(
            cs(),
            &e.group_info,
            &e.joiner_secret,
            &e.welcome_key_nonce,
            psks,
            &new_members,
        )
        .unwrap();
        decode_exact(&encode(&welcome).unwrap()).unwrap()
    }

    fn open(welcome: &Welcome, b: &KeyPackageBundle) -> Result<WelcomeContents, WelcomeError> {
        process_welcome(
            cs(),
            welcome,
            &b.key_package,
            &b.reference,
            &b.private.init_private_key,
            |_| None,
            |info| (info.signer == 0).then(|| signer().public_key),
        )
    }

    #[test]
    fn round_trip_two_joiners() {
        let e = epoch(Secret::zero(32), None);
        let (a, b) = (bundle(cs(), "a"), bundle(cs(), "b"));
        let path_secret = Secret::new(vec![0x77; 32]);
        let welcome = welcome_for(&e, &[], &[(&a, Some(&path_secret)), (&b, None)]);
        assert_eq!(welcome.secrets.len(), 2);

        let got_a = open(&welcome, &a).unwrap();
        assert_eq!(got_a.group_info, e.group_info);
        assert_eq!(got_a.epoch_secrets, e.epoch_secrets);
        assert_eq!(got_a.path_secret.map(|p| p.path_secret), Some(path_secret));
        assert!(got_a.psks.is_empty());
        let got_b = open(&welcome, &b).unwrap();
        assert_eq!(got_b.path_secret, None);
        assert_eq!(got_b.epoch_secrets, e.epoch_secrets);
    }

    #[test]
    fn not_for_us_or_wrong_init_key() {
        let e = epoch(Secret::zero(32), None);
        let (a, b) = (bundle(cs(), "a"), bundle(cs(), "b"));
        let welcome = welcome_for(&e, &[], &[(&a, None)]);
        assert_eq!(
            open(&welcome, &b).err(),
            Some(WelcomeError::NoSecretsForKeyPackage)
        );
        let wrong_key = decrypt_group_secrets(
            cs(),
            &welcome,
            &a.key_package,
            &a.reference,
            &b.private.init_private_key,
        );
        assert_eq!(
            wrong_key.err(),
            Some(WelcomeError::GroupSecretsDecryptionFailed)
        );
    }

    #[test]
    fn tampered_group_info() {
        let e = epoch(Secret::zero(32), None);
        let a = bundle(cs(), "a");
        let mut welcome = welcome_for(&e, &[], &[(&a, None)]);
        let mut egi = welcome.encrypted_group_info.as_slice().to_vec();
        egi[3] ^= 1;
        welcome.encrypted_group_info = egi.into();
        // The GroupSecrets are bound to the encrypted GroupInfo (the HPKE context).
        assert_eq!(
            open(&welcome, &a).err(),
            Some(WelcomeError::GroupSecretsDecryptionFailed)
        );
        // And the GroupInfo itself does not open.
        assert_eq!(
            decrypt_group_info(cs(), &welcome, &e.joiner_secret, Secret::zero(32)).err(),
            Some(WelcomeError::GroupInfoDecryptionFailed)
        );
    }

    #[test]
    fn wrong_joiner_secret_or_psk() {
        let e = epoch(Secret::zero(32), None);
        let a = bundle(cs(), "a");
        let welcome = welcome_for(&e, &[], &[(&a, None)]);
        assert_eq!(
            decrypt_group_info(
                cs(),
                &welcome,
                &Secret::new(vec![0x12; 32]),
                Secret::zero(32)
            )
            .err(),
            Some(WelcomeError::GroupInfoDecryptionFailed)
        );
        assert_eq!(
            decrypt_group_info(cs(), &welcome, &e.joiner_secret, Secret::new(vec![1; 32])).err(),
            Some(WelcomeError::GroupInfoDecryptionFailed)
        );
    }

    #[test]
    fn signer_checks() {
        let e = epoch(Secret::zero(32), None);
        let a = bundle(cs(), "a");
        let welcome = welcome_for(&e, &[], &[(&a, None)]);
        let process = |key: Option<Vec<u8>>| {
            process_welcome(
                cs(),
                &welcome,
                &a.key_package,
                &a.reference,
                &a.private.init_private_key,
                |_| None,
                |_| key,
            )
        };
        assert_eq!(process(None).err(), Some(WelcomeError::UnknownSigner(0)));
        let other = cs().signature_key_pair_from_seed(&[2; 32]).unwrap();
        assert_eq!(
            process(Some(other.public_key)).err(),
            Some(WelcomeError::InvalidGroupInfoSignature)
        );
    }

    #[test]
    fn bad_confirmation_tag() {
        let e = epoch(Secret::zero(32), Some(vec![0; 32]));
        let a = bundle(cs(), "a");
        let welcome = welcome_for(&e, &[], &[(&a, None)]);
        assert_eq!(
            open(&welcome, &a).err(),
            Some(WelcomeError::ConfirmationTagMismatch)
        );
    }

    #[test]
    fn psks() {
        let psk_secret = Secret::new(vec![0x55; 32]);
        let e = epoch(psk_secret.clone(), None);
        let a = bundle(cs(), "a");
        let psk = PreSharedKeyID::external(b"id".to_vec(), vec![9; 32]);
        let welcome = welcome_for(&e, std::slice::from_ref(&psk), &[(&a, None)]);
        assert_eq!(open(&welcome, &a).err(), Some(WelcomeError::MissingPsk));
        let got = process_welcome(
            cs(),
            &welcome,
            &a.key_package,
            &a.reference,
            &a.private.init_private_key,
            |psks| (psks == std::slice::from_ref(&psk)).then(|| psk_secret.clone()),
            |_| Some(signer().public_key),
        )
        .unwrap();
        assert_eq!(got.psks, vec![psk]);
        assert_eq!(got.epoch_secrets, e.epoch_secrets);
    }

    #[test]
    fn cipher_suite_mismatches() {
        let e = epoch(Secret::zero(32), None);
        let other_suite = P.suite(CipherSuite(2)).unwrap();
        let foreign = bundle(other_suite, "p256");
        let result = build_welcome(
            cs(),
            &e.group_info,
            &e.joiner_secret,
            &e.welcome_key_nonce,
            &[],
            &[NewMemberSecrets {
                key_package: &foreign.key_package,
                path_secret: None,
            }],
        );
        assert_eq!(
            result.err(),
            Some(WelcomeError::KeyPackageCipherSuiteMismatch {
                key_package: CipherSuite(2),
                group: CipherSuite(1)
            })
        );
        let a = bundle(cs(), "a");
        let welcome = welcome_for(&e, &[], &[(&a, None)]);
        assert_eq!(
            decrypt_group_secrets(
                other_suite,
                &welcome,
                &a.key_package,
                &a.reference,
                &a.private.init_private_key
            )
            .err(),
            Some(WelcomeError::WelcomeCipherSuiteMismatch {
                welcome: CipherSuite(1),
                provider: CipherSuite(2)
            })
        );
    }
}
