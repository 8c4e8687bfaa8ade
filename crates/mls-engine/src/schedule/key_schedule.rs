//! The key schedule of one epoch (RFC 9420 §8), external initialization (§8.3), the exporter
//! (§8.5), the confirmation tag (§6.1) and the Welcome key (§12.4.3.1).
//!
//! ```text
//! joiner_secret  = ExpandWithLabel(KDF.Extract(init_secret_[n-1], commit_secret),
//!                                  "joiner", GroupContext_[n], KDF.Nh)
//! member_secret  = KDF.Extract(joiner_secret, psk_secret)
//! welcome_secret = DeriveSecret(member_secret, "welcome")
//! epoch_secret   = ExpandWithLabel(member_secret, "epoch", GroupContext_[n], KDF.Nh)
//! <secret>       = DeriveSecret(epoch_secret, <label>)
//! ```
//!
//! (`member_secret` is our name for the unnamed output of the second `KDF.Extract`.)
//!
//! Use: a member processing or creating a Commit calls [`KeySchedule::start`] with the previous
//! epoch's `init_secret`; a joiner calls [`KeySchedule::from_joiner_secret`] with the
//! `joiner_secret` of its GroupSecrets. Either derives the `welcome_secret` and finally
//! [`KeySchedule::finish`]es into the [`EpochSecrets`]. Every input secret is taken by value
//! and dropped (zeroized) as soon as it has been used, and `finish` consumes the schedule, so
//! `joiner_secret`, `member_secret` and `epoch_secret` do not outlive the epoch change.
//! Move `EpochSecrets::encryption_secret` into a [`super::SecretTree`] and
//! `EpochSecrets::init_secret` into the next epoch's `start`.

use subtle::ConstantTimeEq as _;

use crate::crypto::{
    CipherSuite, CryptoError, HpkeKeyPair, HpkePrivateKey, MlsCrypto as _, Secret, SuiteProvider,
};

/// The HPKE exporter context of external initialization (§8.3).
pub const EXTERNAL_INIT_EXPORTER_CONTEXT: &[u8] = b"MLS 1.0 external init secret";

/// Why a key schedule step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyScheduleError {
    /// An input secret does not have the length `KDF.Nh` of the suite.
    #[error("{secret} has {actual} bytes, expected {expected}")]
    InvalidSecretLength {
        /// Which secret (`"init_secret"`, `"commit_secret"`, `"psk_secret"`, `"joiner_secret"`).
        secret: &'static str,
        /// `KDF.Nh`.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The schedule was started with another cipher suite than the one now given.
    #[error("key schedule of suite 0x{:04x} used with suite 0x{:04x}", .expected.0, .actual.0)]
    SuiteMismatch {
        /// The suite the schedule was started with.
        expected: CipherSuite,
        /// The suite given now.
        actual: CipherSuite,
    },
    /// A confirmation tag did not match `MAC(confirmation_key, confirmed_transcript_hash)`.
    #[error("confirmation tag mismatch")]
    ConfirmationTagMismatch,
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn check_len(
    cs: &dyn SuiteProvider,
    secret: &'static str,
    value: &Secret,
) -> Result<(), KeyScheduleError> {
    let expected = cs.params().hash_len();
    if value.len() == expected {
        Ok(())
    } else {
        Err(KeyScheduleError::InvalidSecretLength {
            secret,
            expected,
            actual: value.len(),
        })
    }
}

/// The AEAD key and nonce that protect a Welcome's `encrypted_group_info` (§12.4.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WelcomeKeyNonce {
    /// `welcome_key = ExpandWithLabel(welcome_secret, "key", "", AEAD.Nk)`.
    pub welcome_key: Secret,
    /// `welcome_nonce = ExpandWithLabel(welcome_secret, "nonce", "", AEAD.Nn)`.
    pub welcome_nonce: Secret,
}

/// The key schedule between `joiner_secret` and `epoch_secret` (§8).
#[derive(Debug)]
pub struct KeySchedule {
    suite: CipherSuite,
    /// Kept only by members who start from `init_secret` (a committer puts it in the Welcome).
    joiner_secret: Option<Secret>,
    /// `KDF.Extract(joiner_secret, psk_secret)`.
    member_secret: Secret,
}

impl KeySchedule {
    /// Starts the schedule of epoch `n` from the previous epoch's `init_secret`, the
    /// `commit_secret` (all-zero `KDF.Nh` bytes for a Commit without path), the `psk_secret`
    /// (see [`super::psk_secret`]) and the encoded `GroupContext_[n]` of the new epoch. The
    /// three secrets are consumed.
    pub fn start(
        cs: &dyn SuiteProvider,
        init_secret: Secret,
        commit_secret: Secret,
        psk_secret: Secret,
        group_context: &[u8],
    ) -> Result<Self, KeyScheduleError> {
        check_len(cs, "init_secret", &init_secret)?;
        check_len(cs, "commit_secret", &commit_secret)?;
        let nh = cs.params().hash_len();
        let extracted = cs.kdf_extract(init_secret.as_bytes(), commit_secret.as_bytes());
        drop(init_secret);
        drop(commit_secret);
        let joiner_secret =
            cs.expand_with_label(extracted.as_bytes(), "joiner", group_context, nh)?;
        drop(extracted);
        let mut schedule = Self::from_joiner_secret(cs, joiner_secret.clone(), psk_secret)?;
        schedule.joiner_secret = Some(joiner_secret);
        Ok(schedule)
    }

    /// Starts the schedule of a joiner from the `joiner_secret` of its GroupSecrets and the
    /// `psk_secret` of the PSKs the GroupSecrets list. Both are consumed.
    pub fn from_joiner_secret(
        cs: &dyn SuiteProvider,
        joiner_secret: Secret,
        psk_secret: Secret,
    ) -> Result<Self, KeyScheduleError> {
        check_len(cs, "joiner_secret", &joiner_secret)?;
        check_len(cs, "psk_secret", &psk_secret)?;
        let member_secret = cs.kdf_extract(joiner_secret.as_bytes(), psk_secret.as_bytes());
        Ok(Self {
            suite: cs.cipher_suite(),
            joiner_secret: None,
            member_secret,
        })
    }

    fn check_suite(&self, cs: &dyn SuiteProvider) -> Result<(), KeyScheduleError> {
        let actual = cs.cipher_suite();
        if actual == self.suite {
            Ok(())
        } else {
            Err(KeyScheduleError::SuiteMismatch {
                expected: self.suite,
                actual,
            })
        }
    }

    /// The `joiner_secret`, for the GroupSecrets of a Welcome; `None` for a schedule started
    /// with [`KeySchedule::from_joiner_secret`].
    pub fn joiner_secret(&self) -> Option<&Secret> {
        self.joiner_secret.as_ref()
    }

    /// `welcome_secret = DeriveSecret(member_secret, "welcome")`.
    pub fn welcome_secret(&self, cs: &dyn SuiteProvider) -> Result<Secret, KeyScheduleError> {
        self.check_suite(cs)?;
        Ok(cs.derive_secret(self.member_secret.as_bytes(), "welcome")?)
    }

    /// The Welcome's AEAD key and nonce, derived from `welcome_secret` (which is deleted).
    pub fn welcome_key_nonce(
        &self,
        cs: &dyn SuiteProvider,
    ) -> Result<WelcomeKeyNonce, KeyScheduleError> {
        let welcome_secret = self.welcome_secret(cs)?;
        welcome_key_nonce(cs, &welcome_secret)
    }

    /// Derives `epoch_secret` with the encoded `GroupContext_[n]` and from it the epoch
    /// secrets; consumes the schedule (`joiner_secret`, `member_secret` and `epoch_secret` are
    /// zeroized).
    pub fn finish(
        self,
        cs: &dyn SuiteProvider,
        group_context: &[u8],
    ) -> Result<EpochSecrets, KeyScheduleError> {
        self.check_suite(cs)?;
        let nh = cs.params().hash_len();
        let epoch_secret =
            cs.expand_with_label(self.member_secret.as_bytes(), "epoch", group_context, nh)?;
        drop(self);
        EpochSecrets::from_epoch_secret(cs, &epoch_secret)
    }
}

/// `welcome_key` and `welcome_nonce` from a `welcome_secret` (§12.4.3.1).
pub fn welcome_key_nonce(
    cs: &dyn SuiteProvider,
    welcome_secret: &Secret,
) -> Result<WelcomeKeyNonce, KeyScheduleError> {
    let params = cs.params();
    Ok(WelcomeKeyNonce {
        welcome_key: cs.expand_with_label(
            welcome_secret.as_bytes(),
            "key",
            &[],
            params.aead_key_len(),
        )?,
        welcome_nonce: cs.expand_with_label(
            welcome_secret.as_bytes(),
            "nonce",
            &[],
            params.aead_nonce_len(),
        )?,
    })
}

/// The secrets derived from `epoch_secret` (§8, table "Epoch-Derived Secrets"), plus the next
/// epoch's `init_secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochSecrets {
    /// `DeriveSecret(epoch_secret, "sender data")`: keys for sender data (§6.3.2).
    pub sender_data_secret: Secret,
    /// `DeriveSecret(epoch_secret, "encryption")`: the root of the secret tree (§9).
    pub encryption_secret: Secret,
    /// `DeriveSecret(epoch_secret, "exporter")`: the root of `MLS-Exporter` (§8.5).
    pub exporter_secret: Secret,
    /// `DeriveSecret(epoch_secret, "external")`: seeds the external key pair (§8).
    pub external_secret: Secret,
    /// `DeriveSecret(epoch_secret, "confirm")`: the key of the confirmation tag.
    pub confirmation_key: Secret,
    /// `DeriveSecret(epoch_secret, "membership")`: the key of PublicMessage membership tags.
    pub membership_key: Secret,
    /// `DeriveSecret(epoch_secret, "resumption")`: the resumption PSK of this epoch (§8.6).
    pub resumption_psk: Secret,
    /// `DeriveSecret(epoch_secret, "authentication")`: the epoch authenticator (§8.7).
    pub epoch_authenticator: Secret,
    /// `DeriveSecret(epoch_secret, "init")`: the `init_secret` of the next epoch.
    pub init_secret: Secret,
    /// `DeriveSecret(epoch_secret, "application_export")`: the root of the Exporter Tree
    /// (draft-ietf-mls-extensions-08 §4.4, design hook H5). The group moves it into its
    /// [`crate::extensions::ExporterTree`] (leaving an empty secret here), so it is deleted as
    /// the tree is consumed.
    pub application_export_secret: Secret,
}

impl EpochSecrets {
    /// Every epoch-derived secret from `epoch_secret`.
    pub fn from_epoch_secret(
        cs: &dyn SuiteProvider,
        epoch_secret: &Secret,
    ) -> Result<Self, KeyScheduleError> {
        let derive = |label: &str| cs.derive_secret(epoch_secret.as_bytes(), label);
        Ok(Self {
            sender_data_secret: derive("sender data")?,
            encryption_secret: derive("encryption")?,
            exporter_secret: derive("exporter")?,
            external_secret: derive("external")?,
            confirmation_key: derive("confirm")?,
            membership_key: derive("membership")?,
            resumption_psk: derive("resumption")?,
            epoch_authenticator: derive("authentication")?,
            init_secret: derive("init")?,
            application_export_secret: derive("application_export")?,
        })
    }

    /// `external_priv, external_pub = KEM.DeriveKeyPair(external_secret)` (§8).
    pub fn external_key_pair(
        &self,
        cs: &dyn SuiteProvider,
    ) -> Result<HpkeKeyPair, KeyScheduleError> {
        Ok(cs.hpke_derive_key_pair(self.external_secret.as_bytes())?)
    }

    /// `external_pub`, published in the GroupInfo's `external_pub` extension.
    pub fn external_pub(&self, cs: &dyn SuiteProvider) -> Result<Vec<u8>, KeyScheduleError> {
        Ok(self.external_key_pair(cs)?.public_key)
    }

    /// `MLS-Exporter(label, context, length)` of this epoch (§8.5).
    pub fn export(
        &self,
        cs: &dyn SuiteProvider,
        label: &str,
        context: &[u8],
        length: usize,
    ) -> Result<Secret, KeyScheduleError> {
        mls_exporter(cs, &self.exporter_secret, label, context, length)
    }

    /// The `confirmation_tag` of the Commit that created this epoch.
    pub fn confirmation_tag(
        &self,
        cs: &dyn SuiteProvider,
        confirmed_transcript_hash: &[u8],
    ) -> Vec<u8> {
        confirmation_tag(cs, &self.confirmation_key, confirmed_transcript_hash)
    }

    /// Checks a received `confirmation_tag` in constant time.
    pub fn verify_confirmation_tag(
        &self,
        cs: &dyn SuiteProvider,
        confirmed_transcript_hash: &[u8],
        tag: &[u8],
    ) -> Result<(), KeyScheduleError> {
        verify_confirmation_tag(cs, &self.confirmation_key, confirmed_transcript_hash, tag)
    }
}

/// `MLS-Exporter(label, context, length) = ExpandWithLabel(DeriveSecret(exporter_secret,
/// label), "exported", Hash(context), length)` (§8.5).
pub fn mls_exporter(
    cs: &dyn SuiteProvider,
    exporter_secret: &Secret,
    label: &str,
    context: &[u8],
    length: usize,
) -> Result<Secret, KeyScheduleError> {
    let derived = cs.derive_secret(exporter_secret.as_bytes(), label)?;
    Ok(cs.expand_with_label(derived.as_bytes(), "exported", &cs.hash(context), length)?)
}

/// `confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash)` (§6.1).
pub fn confirmation_tag(
    cs: &dyn SuiteProvider,
    confirmation_key: &Secret,
    confirmed_transcript_hash: &[u8],
) -> Vec<u8> {
    cs.mac(confirmation_key.as_bytes(), confirmed_transcript_hash)
}

/// Checks `tag == MAC(confirmation_key, confirmed_transcript_hash)` in constant time.
pub fn verify_confirmation_tag(
    cs: &dyn SuiteProvider,
    confirmation_key: &Secret,
    confirmed_transcript_hash: &[u8],
    tag: &[u8],
) -> Result<(), KeyScheduleError> {
    let expected = confirmation_tag(cs, confirmation_key, confirmed_transcript_hash);
    if bool::from(expected.as_slice().ct_eq(tag)) {
        Ok(())
    } else {
        Err(KeyScheduleError::ConfirmationTagMismatch)
    }
}

/// External initialization, joiner side (§8.3): `kem_output, context = SetupBaseS(external_pub,
/// "")`, `init_secret = context.export("MLS 1.0 external init secret", KDF.Nh)`. Returns
/// `(kem_output, init_secret)`; `kem_output` goes into the ExternalInit proposal.
pub fn external_init_secret_sender(
    cs: &dyn SuiteProvider,
    external_pub: &[u8],
) -> Result<(Vec<u8>, Secret), KeyScheduleError> {
    let nh = cs.params().hash_len();
    Ok(cs.hpke_setup_sender_and_export(external_pub, &[], EXTERNAL_INIT_EXPORTER_CONTEXT, nh)?)
}

/// [`external_init_secret_sender`] with the encapsulation's ephemeral key pair derived from
/// `ikm_e` (`KEM.DeriveKeyPair(ikm_e)`, `Nsk` bytes) instead of drawn: whoever holds `ikm_e`
/// can recompute `kem_output` and `init_secret` (the siblings of a virtual client, design
/// hook H1 for external commits).
pub fn external_init_secret_sender_derived(
    cs: &dyn SuiteProvider,
    external_pub: &[u8],
    ikm_e: &[u8],
) -> Result<(Vec<u8>, Secret), KeyScheduleError> {
    let nh = cs.params().hash_len();
    Ok(cs.hpke_setup_sender_and_export_derived(
        external_pub,
        ikm_e,
        &[],
        EXTERNAL_INIT_EXPORTER_CONTEXT,
        nh,
    )?)
}

/// External initialization, member side (§8.3): `context = SetupBaseR(kem_output,
/// external_priv, "")`, `init_secret = context.export("MLS 1.0 external init secret", KDF.Nh)`.
pub fn external_init_secret_receiver(
    cs: &dyn SuiteProvider,
    external_priv: &HpkePrivateKey,
    kem_output: &[u8],
) -> Result<Secret, KeyScheduleError> {
    let nh = cs.params().hash_len();
    Ok(cs.hpke_setup_receiver_and_export(
        external_priv,
        kem_output,
        &[],
        EXTERNAL_INIT_EXPORTER_CONTEXT,
        nh,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CryptoProvider as _, RustCrypto};

    static P: RustCrypto = RustCrypto;

    fn suite(id: u16) -> &'static dyn SuiteProvider {
        P.suite(CipherSuite(id)).unwrap()
    }

    fn secret(byte: u8) -> Secret {
        Secret::new(vec![byte; 32])
    }

    #[test]
    fn start_and_join_agree() {
        let cs = suite(1);
        let gc = b"group context";
        let member = KeySchedule::start(cs, secret(1), secret(2), secret(3), gc).unwrap();
        let joiner_secret = member.joiner_secret().unwrap().clone();
        let joiner = KeySchedule::from_joiner_secret(cs, joiner_secret, secret(3)).unwrap();
        assert!(joiner.joiner_secret().is_none());
        assert_eq!(
            member.welcome_secret(cs).unwrap(),
            joiner.welcome_secret(cs).unwrap()
        );
        let wk = member.welcome_key_nonce(cs).unwrap();
        assert_eq!(wk.welcome_key.len(), 16);
        assert_eq!(wk.welcome_nonce.len(), 12);
        assert_eq!(wk, joiner.welcome_key_nonce(cs).unwrap());
        let a = member.finish(cs, gc).unwrap();
        let b = joiner.finish(cs, gc).unwrap();
        assert_eq!(a, b);
        // Every derived secret differs from the others.
        let all = [
            &a.sender_data_secret,
            &a.encryption_secret,
            &a.exporter_secret,
            &a.external_secret,
            &a.confirmation_key,
            &a.membership_key,
            &a.resumption_psk,
            &a.epoch_authenticator,
            &a.init_secret,
            &a.application_export_secret,
        ];
        for (i, x) in all.iter().enumerate() {
            assert_eq!(x.len(), 32);
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    /// draft-ietf-mls-extensions-08 §4.4: `application_export_secret =
    /// DeriveSecret(epoch_secret, "application_export")`, written out with the raw
    /// `KDF.Expand` and `KDFLabel { uint16 length = Nh; opaque label<V> = "MLS 1.0
    /// application_export"; opaque context<V> = ""; }`.
    #[test]
    fn application_export_secret_matches_the_formula() {
        for id in [1u16, 2, 3] {
            let cs = suite(id);
            let epoch_secret = secret(9);
            let label = b"MLS 1.0 application_export";
            let mut info = vec![0, 32, label.len() as u8];
            info.extend_from_slice(label);
            info.push(0);
            let expected = cs.kdf_expand(epoch_secret.as_bytes(), &info, 32).unwrap();
            let secrets = EpochSecrets::from_epoch_secret(cs, &epoch_secret).unwrap();
            assert_eq!(secrets.application_export_secret, expected);
        }
    }

    #[test]
    fn group_context_and_psk_change_the_epoch() {
        let cs = suite(1);
        let base = KeySchedule::start(cs, secret(1), secret(2), secret(0), b"a")
            .unwrap()
            .finish(cs, b"a")
            .unwrap();
        let other_gc = KeySchedule::start(cs, secret(1), secret(2), secret(0), b"b")
            .unwrap()
            .finish(cs, b"b")
            .unwrap();
        let other_psk = KeySchedule::start(cs, secret(1), secret(2), secret(9), b"a")
            .unwrap()
            .finish(cs, b"a")
            .unwrap();
        assert_ne!(base.epoch_authenticator, other_gc.epoch_authenticator);
        assert_ne!(base.epoch_authenticator, other_psk.epoch_authenticator);
    }

    #[test]
    fn wrong_lengths_are_refused() {
        let cs = suite(1);
        let short = Secret::new(vec![0; 31]);
        let err = KeySchedule::start(cs, short.clone(), secret(2), secret(3), b"").unwrap_err();
        assert_eq!(
            err,
            KeyScheduleError::InvalidSecretLength {
                secret: "init_secret",
                expected: 32,
                actual: 31
            }
        );
        assert!(matches!(
            KeySchedule::start(cs, secret(1), short.clone(), secret(3), b""),
            Err(KeyScheduleError::InvalidSecretLength {
                secret: "commit_secret",
                ..
            })
        ));
        assert!(matches!(
            KeySchedule::start(cs, secret(1), secret(2), Secret::new(vec![]), b""),
            Err(KeyScheduleError::InvalidSecretLength {
                secret: "psk_secret",
                ..
            })
        ));
        assert!(matches!(
            KeySchedule::from_joiner_secret(cs, Secret::new(vec![0; 33]), secret(3)),
            Err(KeyScheduleError::InvalidSecretLength {
                secret: "joiner_secret",
                ..
            })
        ));
    }

    #[test]
    fn suite_mismatch_is_refused() {
        let ks = KeySchedule::start(suite(1), secret(1), secret(2), secret(3), b"").unwrap();
        assert!(matches!(
            ks.welcome_secret(suite(2)),
            Err(KeyScheduleError::SuiteMismatch { .. })
        ));
        assert!(matches!(
            ks.finish(suite(3), b""),
            Err(KeyScheduleError::SuiteMismatch { .. })
        ));
    }

    #[test]
    fn confirmation_tag_verifies() {
        let cs = suite(1);
        let epoch = KeySchedule::start(cs, secret(1), secret(2), secret(3), b"")
            .unwrap()
            .finish(cs, b"")
            .unwrap();
        let tag = epoch.confirmation_tag(cs, b"confirmed");
        assert_eq!(tag.len(), 32);
        epoch
            .verify_confirmation_tag(cs, b"confirmed", &tag)
            .unwrap();
        assert_eq!(
            epoch.verify_confirmation_tag(cs, b"other", &tag),
            Err(KeyScheduleError::ConfirmationTagMismatch)
        );
        assert_eq!(
            epoch.verify_confirmation_tag(cs, b"confirmed", &tag[..31]),
            Err(KeyScheduleError::ConfirmationTagMismatch)
        );
    }

    #[test]
    fn exporter_depends_on_label_context_and_length() {
        let cs = suite(1);
        let epoch = KeySchedule::start(cs, secret(1), secret(2), secret(3), b"")
            .unwrap()
            .finish(cs, b"")
            .unwrap();
        let a = epoch.export(cs, "a", b"ctx", 32).unwrap();
        assert_ne!(a, epoch.export(cs, "b", b"ctx", 32).unwrap());
        assert_ne!(a, epoch.export(cs, "a", b"other", 32).unwrap());
        assert_eq!(epoch.export(cs, "a", b"ctx", 16).unwrap().len(), 16);
    }

    #[test]
    fn external_init_round_trips() {
        for id in [1, 2, 3] {
            let cs = suite(id);
            let epoch = KeySchedule::start(cs, secret(1), secret(2), secret(3), b"")
                .unwrap()
                .finish(cs, b"")
                .unwrap();
            let pair = epoch.external_key_pair(cs).unwrap();
            assert_eq!(epoch.external_pub(cs).unwrap(), pair.public_key);
            let (kem_output, sent) = external_init_secret_sender(cs, &pair.public_key).unwrap();
            let received =
                external_init_secret_receiver(cs, &pair.private_key, &kem_output).unwrap();
            assert_eq!(sent, received);
            assert_eq!(sent.len(), 32);
            // A different key pair yields a different secret (or an error).
            let other = cs.hpke_derive_key_pair(&[5; 32]).unwrap();
            let wrong = external_init_secret_receiver(cs, &other.private_key, &kem_output);
            assert!(wrong.map_or(true, |w| w != sent));
            // Garbage kem_output is an error, not a panic.
            assert!(external_init_secret_receiver(cs, &pair.private_key, &[1, 2, 3]).is_err());
        }
    }
}
