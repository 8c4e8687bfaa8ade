//! Hash, KDF, MAC, AEAD and signatures of the implemented suites (RFC 9420 §5.1), each
//! chosen by the suite's algorithm identifiers.

use hpke::{Kem as _, Serializable as _};

use super::super::{
    AeadAlgorithm, CryptoError, KdfAlgorithm, Secret, SignatureAlgorithm, SignaturePrivateKey,
    SuiteParams,
};

/// Runs `$body` with `$hash` naming the `sha2` type of the KDF `$kdf`.
macro_rules! with_hash {
    ($kdf:expr, $hash:ident => $body:expr) => {
        match $kdf {
            KdfAlgorithm::HkdfSha256 => {
                type $hash = sha2::Sha256;
                $body
            }
            KdfAlgorithm::HkdfSha384 => {
                type $hash = sha2::Sha384;
                $body
            }
            KdfAlgorithm::HkdfSha512 => {
                type $hash = sha2::Sha512;
                $body
            }
        }
    };
}

/// `Hash(data)`.
pub(super) fn hash(kdf: KdfAlgorithm, data: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    with_hash!(kdf, H => H::digest(data).to_vec())
}

/// `KDF.Extract(salt, ikm)`.
pub(super) fn kdf_extract(kdf: KdfAlgorithm, salt: &[u8], ikm: &[u8]) -> Secret {
    with_hash!(kdf, H => {
        let (prk, _) = hkdf::Hkdf::<H>::extract(Some(salt), ikm);
        Secret::new(prk.to_vec())
    })
}

/// `KDF.Expand(prk, info, len)`.
pub(super) fn kdf_expand(
    kdf: KdfAlgorithm,
    prk: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Secret, CryptoError> {
    with_hash!(kdf, H => {
        let hk = hkdf::Hkdf::<H>::from_prk(prk).map_err(|_| CryptoError::InvalidLength {
            expected: <H as sha2::Digest>::output_size(),
            actual: prk.len(),
        })?;
        let mut okm = vec![0u8; len];
        hk.expand(info, &mut okm)
            .map_err(|_| CryptoError::KdfOutputTooLong)?;
        Ok(Secret::new(okm))
    })
}

/// `MAC(key, data)`: HMAC with the suite's hash.
pub(super) fn mac(kdf: KdfAlgorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::Mac as _;
    with_hash!(kdf, H => {
        let mut mac =
            hmac::Hmac::<H>::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    })
}

fn check_len(expected: usize, actual: usize) -> Result<(), CryptoError> {
    if expected == actual {
        Ok(())
    } else {
        Err(CryptoError::InvalidLength { expected, actual })
    }
}

/// `AEAD.Seal(key, nonce, aad, plaintext)`.
pub(super) fn aead_seal(
    params: &SuiteParams,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    check_len(params.aead_key_len(), key.len())?;
    check_len(params.aead_nonce_len(), nonce.len())?;
    aead_op(params.aead, key, nonce, aad, plaintext, true)
        .map_err(|_| CryptoError::EncryptionFailed)
}

/// `AEAD.Open(key, nonce, aad, ciphertext)`.
pub(super) fn aead_open(
    params: &SuiteParams,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    check_len(params.aead_key_len(), key.len())?;
    check_len(params.aead_nonce_len(), nonce.len())?;
    aead_op(params.aead, key, nonce, aad, ciphertext, false)
        .map_err(|_| CryptoError::DecryptionFailed)
}

/// One AEAD operation with a cipher `C`; `seal` selects encryption, otherwise decryption.
fn aead_with<C>(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    data: &[u8],
    seal: bool,
) -> Result<Vec<u8>, ()>
where
    C: aes_gcm::aead::Aead + aes_gcm::aead::KeyInit,
{
    use aes_gcm::aead::{generic_array::GenericArray, Payload};
    let cipher = C::new_from_slice(key).map_err(|_| ())?;
    let nonce = GenericArray::from_slice(nonce);
    let payload = Payload { msg: data, aad };
    if seal {
        cipher.encrypt(nonce, payload)
    } else {
        cipher.decrypt(nonce, payload)
    }
    .map_err(|_| ())
}

fn aead_op(
    alg: AeadAlgorithm,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    data: &[u8],
    seal: bool,
) -> Result<Vec<u8>, ()> {
    match alg {
        AeadAlgorithm::Aes128Gcm => aead_with::<aes_gcm::Aes128Gcm>(key, nonce, aad, data, seal),
        AeadAlgorithm::Aes256Gcm => aead_with::<aes_gcm::Aes256Gcm>(key, nonce, aad, data, seal),
        AeadAlgorithm::ChaCha20Poly1305 => {
            aead_with::<chacha20poly1305::ChaCha20Poly1305>(key, nonce, aad, data, seal)
        }
    }
}

/// The signature private key derived from `seed` (DESIGN row 5): Ed25519 takes the first 32
/// bytes as its secret seed; ECDSA on P-256, P-384 or P-521 takes the scalar that the DHKEM
/// of the same curve derives from `seed` with `DeriveKeyPair`.
pub(super) fn signature_private_key_from_seed(
    alg: SignatureAlgorithm,
    seed: &[u8],
) -> Result<SignaturePrivateKey, CryptoError> {
    let bytes = match alg {
        SignatureAlgorithm::Ed25519 => seed
            .get(..32)
            .ok_or(CryptoError::InvalidLength {
                expected: 32,
                actual: seed.len(),
            })?
            .to_vec(),
        SignatureAlgorithm::EcdsaP256Sha256 => hpke::kem::DhP256HkdfSha256::derive_keypair(seed)
            .0
            .to_bytes()
            .to_vec(),
        SignatureAlgorithm::EcdsaP384Sha384 => hpke::kem::DhP384HkdfSha384::derive_keypair(seed)
            .0
            .to_bytes()
            .to_vec(),
        SignatureAlgorithm::EcdsaP521Sha512 => hpke::kem::DhP521HkdfSha512::derive_keypair(seed)
            .0
            .to_bytes()
            .to_vec(),
    };
    Ok(SignaturePrivateKey::new(bytes))
}

/// Runs `$body` with `$curve` naming the ECDSA crate of the signature scheme `$alg`, or
/// evaluates `$ed25519` for Ed25519.
macro_rules! with_ecdsa {
    ($alg:expr, ed25519 => $ed25519:expr, $curve:ident => $body:expr) => {
        match $alg {
            SignatureAlgorithm::Ed25519 => $ed25519,
            SignatureAlgorithm::EcdsaP256Sha256 => {
                use p256 as $curve;
                $body
            }
            SignatureAlgorithm::EcdsaP384Sha384 => {
                use p384 as $curve;
                $body
            }
            SignatureAlgorithm::EcdsaP521Sha512 => {
                use p521 as $curve;
                $body
            }
        }
    };
}

/// The public key of a signature private key: the raw 32 bytes for Ed25519, the
/// uncompressed SEC1 point for ECDSA.
pub(super) fn signature_public_key(
    alg: SignatureAlgorithm,
    private_key: &SignaturePrivateKey,
) -> Result<Vec<u8>, CryptoError> {
    with_ecdsa!(alg,
        ed25519 => Ok(ed25519_signing_key(private_key)?.verifying_key().to_bytes().to_vec()),
        curve => {
            let sk = curve::ecdsa::SigningKey::from_slice(private_key.as_bytes())
                .map_err(|_| CryptoError::InvalidPrivateKey)?;
            let vk = curve::ecdsa::VerifyingKey::from(&sk);
            Ok(vk.to_encoded_point(false).as_bytes().to_vec())
        }
    )
}

/// `Signature.Sign(sk, message)`; ECDSA signatures are DER-encoded.
pub(super) fn sign(
    alg: SignatureAlgorithm,
    private_key: &SignaturePrivateKey,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    with_ecdsa!(alg,
        ed25519 => {
            use ed25519_dalek::Signer as _;
            Ok(ed25519_signing_key(private_key)?.sign(message).to_bytes().to_vec())
        },
        curve => {
            use curve::ecdsa::signature::Signer as _;
            let sk = curve::ecdsa::SigningKey::from_slice(private_key.as_bytes())
                .map_err(|_| CryptoError::InvalidPrivateKey)?;
            let sig: curve::ecdsa::Signature = sk.sign(message);
            Ok(sig.to_der().as_bytes().to_vec())
        }
    )
}

/// `Signature.Verify(pk, message, signature)`.
pub(super) fn verify(
    alg: SignatureAlgorithm,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    with_ecdsa!(alg,
        ed25519 => {
            let pk: [u8; 32] = public_key
                .try_into()
                .map_err(|_| CryptoError::InvalidPublicKey)?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk)
                .map_err(|_| CryptoError::InvalidPublicKey)?;
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| CryptoError::InvalidSignature)?;
            vk.verify_strict(message, &sig)
                .map_err(|_| CryptoError::InvalidSignature)
        },
        curve => {
            use curve::ecdsa::signature::Verifier as _;
            let vk = curve::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                .map_err(|_| CryptoError::InvalidPublicKey)?;
            let sig = curve::ecdsa::Signature::from_der(signature)
                .map_err(|_| CryptoError::InvalidSignature)?;
            vk.verify(message, &sig)
                .map_err(|_| CryptoError::InvalidSignature)
        }
    )
}

fn ed25519_signing_key(
    key: &SignaturePrivateKey,
) -> Result<ed25519_dalek::SigningKey, CryptoError> {
    let seed: &[u8; 32] = key
        .as_bytes()
        .try_into()
        .map_err(|_| CryptoError::InvalidPrivateKey)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed))
}
