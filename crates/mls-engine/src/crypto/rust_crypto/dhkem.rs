//! HPKE with a DHKEM (RFC 9180 §4.1) on the `hpke` 0.13 crate: suites 1, 2, 3, 5 and 7.

use core::marker::PhantomData;

use hpke::{Deserializable as _, Kem as KemTrait, Serializable as _};

use super::super::{CryptoError, HpkeKeyPair, HpkePrivateKey, Secret};
use super::rng::Draw;
use super::Hpke;

/// The marker of [`Dhkem`]'s algorithms (a function type: `Send` and `Sync` whatever they are).
type Algorithms<K, A, F> = fn() -> (K, A, F);

/// HPKE with the KEM `K`, AEAD `A` and KDF `F` of `hpke` 0.13.
pub(super) struct Dhkem<K, A, F>(PhantomData<Algorithms<K, A, F>>);

fn public_key<K: KemTrait>(bytes: &[u8]) -> Result<K::PublicKey, CryptoError> {
    K::PublicKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidPublicKey)
}

/// The KEM ids of DHKEM(P-256), DHKEM(P-384) and DHKEM(P-521), whose private keys are
/// big-endian scalars.
const NIST_KEM_IDS: core::ops::RangeInclusive<u16> = 0x0010..=0x0012;

/// Parses a private key. A NIST-curve scalar shorter than `Nsk` is taken with its leading
/// zero bytes restored: the official passive-client vectors carry P-521 keys of 65 bytes.
fn private_key<K: KemTrait>(key: &HpkePrivateKey) -> Result<K::PrivateKey, CryptoError> {
    let nsk = <K::PrivateKey as hpke::Serializable>::size();
    let bytes = key.as_bytes();
    if NIST_KEM_IDS.contains(&K::KEM_ID) && !bytes.is_empty() && bytes.len() < nsk {
        let mut full = vec![0u8; nsk];
        full[nsk - bytes.len()..].copy_from_slice(bytes);
        // Zeroized on drop.
        let padded = HpkePrivateKey::new(full);
        return K::PrivateKey::from_bytes(padded.as_bytes())
            .map_err(|_| CryptoError::InvalidPrivateKey);
    }
    K::PrivateKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidPrivateKey)
}

fn encapped_key<K: KemTrait>(bytes: &[u8]) -> Result<K::EncappedKey, CryptoError> {
    K::EncappedKey::from_bytes(bytes).map_err(|_| CryptoError::DecryptionFailed)
}

/// The error of a draw that was not served: given bytes of the wrong length, or no
/// randomness from the operating system.
fn unsound(given: Option<&[u8]>) -> CryptoError {
    if given.is_some() {
        CryptoError::InvalidPrivateKey
    } else {
        CryptoError::RandomnessUnavailable
    }
}

impl<K, A, F> Hpke for Dhkem<K, A, F>
where
    K: KemTrait + 'static,
    A: hpke::aead::Aead + 'static,
    F: hpke::kdf::Kdf + 'static,
{
    fn encap_randomness_len() -> usize {
        // `Encap` draws `Nsk` bytes and runs `DeriveKeyPair` on them.
        <K::PrivateKey as hpke::Serializable>::size()
    }

    fn seal(
        public_key_bytes: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let pk = public_key::<K>(public_key_bytes)?;
        let mut rng = Draw::new(None);
        let (enc, ct) = hpke::single_shot_seal::<A, F, K, _>(
            &hpke::OpModeS::Base,
            &pk,
            info,
            plaintext,
            aad,
            &mut rng,
        )
        .map_err(|_| CryptoError::EncryptionFailed)?;
        if !rng.sound() {
            return Err(CryptoError::RandomnessUnavailable);
        }
        Ok((enc.to_bytes().to_vec(), ct))
    }

    fn open(
        private_key_bytes: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let sk = private_key::<K>(private_key_bytes)?;
        let enc = encapped_key::<K>(kem_output)?;
        hpke::single_shot_open::<A, F, K>(&hpke::OpModeR::Base, &sk, &enc, info, ciphertext, aad)
            .map_err(|_| CryptoError::DecryptionFailed)
    }

    fn sender_export(
        public_key_bytes: &[u8],
        randomness: Option<&[u8]>,
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError> {
        let pk = public_key::<K>(public_key_bytes)?;
        let mut rng = Draw::new(randomness);
        let (enc, ctx) =
            hpke::setup_sender::<A, F, K, _>(&hpke::OpModeS::Base, &pk, info, &mut rng)
                .map_err(|_| CryptoError::EncryptionFailed)?;
        if !rng.sound() {
            return Err(unsound(randomness));
        }
        let mut out = vec![0u8; len];
        ctx.export(exporter_context, &mut out)
            .map_err(|_| CryptoError::KdfOutputTooLong)?;
        Ok((enc.to_bytes().to_vec(), Secret::new(out)))
    }

    fn receiver_export(
        private_key_bytes: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<Secret, CryptoError> {
        let sk = private_key::<K>(private_key_bytes)?;
        let enc = encapped_key::<K>(kem_output)?;
        let ctx = hpke::setup_receiver::<A, F, K>(&hpke::OpModeR::Base, &sk, &enc, info)
            .map_err(|_| CryptoError::DecryptionFailed)?;
        let mut out = vec![0u8; len];
        ctx.export(exporter_context, &mut out)
            .map_err(|_| CryptoError::KdfOutputTooLong)?;
        Ok(Secret::new(out))
    }

    fn derive_key_pair(ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
        let (sk, pk) = K::derive_keypair(ikm);
        Ok(HpkeKeyPair {
            private_key: HpkePrivateKey::new(sk.to_bytes().to_vec()),
            public_key: pk.to_bytes().to_vec(),
        })
    }

    fn public_key(private_key_bytes: &HpkePrivateKey) -> Result<Vec<u8>, CryptoError> {
        let sk = private_key::<K>(private_key_bytes)?;
        Ok(K::sk_to_pk(&sk).to_bytes().to_vec())
    }
}
