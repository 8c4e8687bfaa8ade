//! HPKE with the X-Wing KEM (draft-connolly-cfrg-xwing-kem-06, HPKE KEM id 0x647A) on the
//! `hpke` 0.14 crate: the post-quantum suite `MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519`
//! of draft-ietf-mls-pq-ciphersuites-06.
//!
//! `DeriveKeyPair(ikm)` is X-Wing draft 06's: the private key is the 32-byte seed
//! `SHAKE256(ikm, 32)`, as OpenMLS 0.9 computes it. (`hpke` 0.14's own `derive_keypair`
//! follows draft-ietf-hpke-pq-03's labelled derivation instead, which gives other keys; it is
//! not used.)

use hpke_pq::{Deserializable as _, Kem as _, Serializable as _};
use shake::{ExtendableOutput as _, Update as _, XofReader as _};

use super::super::{CryptoError, HpkeKeyPair, HpkePrivateKey, Secret};
use super::rng::Draw;
use super::Hpke;

type Kem = hpke_pq::kem::XWing;
type Aead = hpke_pq::aead::AesGcm128;
type Kdf = hpke_pq::kdf::HkdfSha256;
type PublicKey = <Kem as hpke_pq::Kem>::PublicKey;
type PrivateKey = <Kem as hpke_pq::Kem>::PrivateKey;
type EncappedKey = <Kem as hpke_pq::Kem>::EncappedKey;

/// The bytes X-Wing's `EncapsulateDerand` takes (32 for ML-KEM, 32 for X25519).
const ENCAP_RANDOMNESS_LEN: usize = 64;
/// `Nsk`: an X-Wing private key is its 32-byte seed.
const SEED_LEN: usize = 32;

/// HPKE with X-Wing, HKDF-SHA256 and AES-128-GCM.
pub(super) struct XWingHpke;

fn public_key(bytes: &[u8]) -> Result<PublicKey, CryptoError> {
    PublicKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidPublicKey)
}

fn private_key(key: &HpkePrivateKey) -> Result<PrivateKey, CryptoError> {
    PrivateKey::from_bytes(key.as_bytes()).map_err(|_| CryptoError::InvalidPrivateKey)
}

fn encapped_key(bytes: &[u8]) -> Result<EncappedKey, CryptoError> {
    EncappedKey::from_bytes(bytes).map_err(|_| CryptoError::DecryptionFailed)
}

impl Hpke for XWingHpke {
    fn encap_randomness_len() -> usize {
        ENCAP_RANDOMNESS_LEN
    }

    fn seal(
        public_key_bytes: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let pk = public_key(public_key_bytes)?;
        let mut rng = Draw::new(None);
        let (enc, ct) = hpke_pq::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
            &hpke_pq::OpModeS::Base,
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
        let sk = private_key(private_key_bytes)?;
        let enc = encapped_key(kem_output)?;
        hpke_pq::single_shot_open::<Aead, Kdf, Kem>(
            &hpke_pq::OpModeR::Base,
            &sk,
            &enc,
            info,
            ciphertext,
            aad,
        )
        .map_err(|_| CryptoError::DecryptionFailed)
    }

    fn sender_export(
        public_key_bytes: &[u8],
        randomness: Option<&[u8]>,
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError> {
        let pk = public_key(public_key_bytes)?;
        let mut rng = Draw::new(randomness);
        let (enc, ctx) = hpke_pq::setup_sender_with_rng::<Aead, Kdf, Kem>(
            &hpke_pq::OpModeS::Base,
            &pk,
            info,
            &mut rng,
        )
        .map_err(|_| CryptoError::EncryptionFailed)?;
        if !rng.sound() {
            return Err(match randomness {
                Some(_) => CryptoError::InvalidPrivateKey,
                None => CryptoError::RandomnessUnavailable,
            });
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
        let sk = private_key(private_key_bytes)?;
        let enc = encapped_key(kem_output)?;
        let ctx =
            hpke_pq::setup_receiver::<Aead, Kdf, Kem>(&hpke_pq::OpModeR::Base, &sk, &enc, info)
                .map_err(|_| CryptoError::DecryptionFailed)?;
        let mut out = vec![0u8; len];
        ctx.export(exporter_context, &mut out)
            .map_err(|_| CryptoError::KdfOutputTooLong)?;
        Ok(Secret::new(out))
    }

    fn derive_key_pair(ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
        let mut xof = shake::Shake256::default();
        xof.update(ikm);
        let mut seed = vec![0u8; SEED_LEN];
        xof.finalize_xof().read(&mut seed);
        // The seed moves into the key, which zeroizes it on drop.
        let private_key = HpkePrivateKey::new(seed);
        let public_key = Self::public_key(&private_key)?;
        Ok(HpkeKeyPair {
            private_key,
            public_key,
        })
    }

    fn public_key(private_key_bytes: &HpkePrivateKey) -> Result<Vec<u8>, CryptoError> {
        let sk = private_key(private_key_bytes)?;
        Ok(Kem::sk_to_pk(&sk).to_bytes().to_vec())
    }
}
