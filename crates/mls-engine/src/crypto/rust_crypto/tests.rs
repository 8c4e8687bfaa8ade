use super::*;
use crate::crypto::MlsCrypto as _;

fn suites() -> Vec<&'static dyn SuiteProvider> {
    CipherSuite::SUPPORTED
        .iter()
        .map(|s| RustCrypto.suite(*s).unwrap())
        .collect()
}

#[test]
fn unsupported_suite_is_typed_error() {
    for id in [0u16, 4, 6, 8, 0x004D, 0x004E, 0x0A0A, 0xFFFF] {
        let err = RustCrypto.suite(CipherSuite(id)).err();
        assert_eq!(
            err,
            Some(CryptoError::UnsupportedCipherSuite(CipherSuite(id)))
        );
        assert!(!RustCrypto.supports(CipherSuite(id)));
    }
    for suite in CipherSuite::SUPPORTED {
        assert_eq!(RustCrypto.suite(suite).unwrap().cipher_suite(), suite);
    }
}

#[test]
fn signature_key_from_seed_is_deterministic_and_signs() {
    for cs in suites() {
        let seed = [7u8; 32];
        let a = cs.signature_key_pair_from_seed(&seed).unwrap();
        let b = cs.signature_key_pair_from_seed(&seed).unwrap();
        assert_eq!(a, b);
        let c = cs.signature_key_pair_from_seed(&[8u8; 32]).unwrap();
        assert_ne!(a.public_key, c.public_key);
        let sig = cs.sign_with_label(&a.private_key, "L", b"content").unwrap();
        cs.verify_with_label(&a.public_key, "L", b"content", &sig)
            .unwrap();
        assert_eq!(
            cs.verify_with_label(&c.public_key, "L", b"content", &sig),
            Err(CryptoError::InvalidSignature)
        );
    }
}

#[test]
fn signature_key_from_seed_follows_design_row_5() {
    // Ed25519: the seed is the first 32 bytes of the secret.
    let ed = RustCrypto.suite(CipherSuite(1)).unwrap();
    let secret: Vec<u8> = (0u8..48).collect();
    let kp = ed.signature_key_pair_from_seed(&secret).unwrap();
    assert_eq!(kp.private_key.as_bytes(), &secret[..32]);
    assert_eq!(
        ed.signature_key_pair_from_seed(&secret[..31]).err(),
        Some(CryptoError::InvalidLength {
            expected: 32,
            actual: 31
        })
    );
    // ECDSA P-256, P-384, P-521: the scalar of the same curve's DHKEM DeriveKeyPair(secret).
    for (id, scalar_len) in [(2u16, 32usize), (7, 48), (5, 66)] {
        let cs = RustCrypto.suite(CipherSuite(id)).unwrap();
        let kp = cs.signature_key_pair_from_seed(&secret).unwrap();
        let hpke_kp = cs.hpke_derive_key_pair(&secret).unwrap();
        assert_eq!(kp.private_key.as_bytes(), hpke_kp.private_key.as_bytes());
        assert_eq!(kp.private_key.len(), scalar_len);
        assert_eq!(kp.public_key, hpke_kp.public_key);
    }
    // The X-Wing suite signs with Ed25519: the same rule as suite 1.
    let pq = RustCrypto.suite(CipherSuite(0x004F)).unwrap();
    assert_eq!(
        pq.signature_key_pair_from_seed(&secret).unwrap(),
        ed.signature_key_pair_from_seed(&secret).unwrap()
    );
}

#[test]
fn aead_rejects_tampering_and_bad_lengths() {
    for cs in suites() {
        let p = cs.params();
        let key = vec![1u8; p.aead_key_len()];
        let nonce = vec![2u8; p.aead_nonce_len()];
        let ct = cs.aead_seal(&key, &nonce, b"aad", b"hello").unwrap();
        assert_eq!(cs.aead_open(&key, &nonce, b"aad", &ct).unwrap(), b"hello");
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            cs.aead_open(&key, &nonce, b"aad", &bad),
            Err(CryptoError::DecryptionFailed)
        );
        assert_eq!(
            cs.aead_open(&key, &nonce, b"other", &ct),
            Err(CryptoError::DecryptionFailed)
        );
        assert!(matches!(
            cs.aead_seal(&key[1..], &nonce, b"", b""),
            Err(CryptoError::InvalidLength { .. })
        ));
    }
}

#[test]
fn hpke_round_trips_and_exports_agree() {
    for cs in suites() {
        let kp = cs.hpke_generate_key_pair().unwrap();
        assert_eq!(cs.hpke_public_key(&kp.private_key).unwrap(), kp.public_key);
        let (enc, ct) = cs
            .hpke_seal(&kp.public_key, b"info", b"aad", b"pt")
            .unwrap();
        let pt = cs
            .hpke_open(&kp.private_key, &enc, b"info", b"aad", &ct)
            .unwrap();
        assert_eq!(pt, b"pt");
        assert_eq!(
            cs.hpke_open(&kp.private_key, &enc, b"other", b"aad", &ct),
            Err(CryptoError::DecryptionFailed)
        );
        let (enc, s) = cs
            .hpke_setup_sender_and_export(&kp.public_key, b"", b"ctx", 32)
            .unwrap();
        let r = cs
            .hpke_setup_receiver_and_export(&kp.private_key, &enc, b"", b"ctx", 32)
            .unwrap();
        assert_eq!(s, r);
        assert_eq!(
            cs.hpke_seal(b"not a key", b"", b"", b"").err(),
            Some(CryptoError::InvalidPublicKey)
        );
    }
}

#[test]
fn kdf_refuses_overlong_output() {
    let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
    let prk = cs.kdf_extract(b"salt", b"ikm");
    assert!(cs.kdf_expand(prk.as_bytes(), b"", 255 * 32).is_ok());
    assert_eq!(
        cs.kdf_expand(prk.as_bytes(), b"", 255 * 32 + 1).err(),
        Some(CryptoError::KdfOutputTooLong)
    );
    assert_eq!(
        cs.expand_with_label(prk.as_bytes(), "x", b"", 70_000).err(),
        Some(CryptoError::KdfOutputTooLong)
    );
}

#[test]
fn secrets_do_not_print() {
    let s = Secret::new(vec![0xAB; 4]);
    assert_eq!(format!("{s:?}"), "Secret(4 bytes, redacted)");
}

#[test]
fn params_match_the_suite_names() {
    for suite in CipherSuite::SUPPORTED {
        let p = suite.params().unwrap();
        let name = suite.name().unwrap();
        let hash = format!("SHA{}", p.hash_len() * 8);
        assert!(name.contains(&hash), "{name}");
        let aead = match p.aead_key_len() {
            16 => "AES128GCM",
            _ if name.contains("CHACHA") => "CHACHA20POLY1305",
            _ => "AES256GCM",
        };
        assert!(name.contains(aead), "{name}");
        let cs = RustCrypto.suite(suite).unwrap();
        let kp = cs.hpke_generate_key_pair().unwrap();
        assert_eq!(kp.public_key.len(), p.kem_public_key_len(), "{name}");
        assert_eq!(cs.hash(b"").len(), p.hash_len(), "{name}");
        assert_eq!(cs.mac(b"k", b"").len(), p.hash_len(), "{name}");
    }
    for (suite, _) in CipherSuite::NOT_IMPLEMENTED {
        assert!(suite.name().unwrap().contains("X448"));
        assert!(suite.params().is_none());
    }
}

#[test]
fn xwing_sizes_and_derive_key_pair() {
    let cs = RustCrypto.suite(CipherSuite(0x004F)).unwrap();
    let ikm = [0x42u8; 32];
    let kp = cs.hpke_derive_key_pair(&ikm).unwrap();
    // X-Wing draft 06: the private key is the seed SHAKE256(ikm, 32).
    let mut seed = [0u8; 32];
    {
        use shake::{ExtendableOutput as _, Update as _, XofReader as _};
        let mut xof = shake::Shake256::default();
        xof.update(&ikm);
        xof.finalize_xof().read(&mut seed);
    }
    assert_eq!(kp.private_key.as_bytes(), &seed);
    assert_eq!(kp.public_key.len(), 1216);
    assert_eq!(cs.hpke_derive_key_pair(&ikm).unwrap(), kp);
    assert_ne!(cs.hpke_derive_key_pair(&[0x43; 32]).unwrap(), kp);
    let (enc, ct) = cs.hpke_seal(&kp.public_key, b"i", b"a", b"pt").unwrap();
    assert_eq!(enc.len(), 1120);
    assert_eq!(ct.len(), 2 + 16);
    assert_eq!(
        cs.hpke_open(&kp.private_key, &enc[1..], b"i", b"a", &ct),
        Err(CryptoError::DecryptionFailed)
    );
    assert_eq!(
        cs.hpke_public_key(&HpkePrivateKey::new(vec![1; 31])),
        Err(CryptoError::InvalidPrivateKey)
    );
}

#[test]
fn derived_encapsulation_is_deterministic_for_every_suite() {
    for cs in suites() {
        let nh = cs.params().hash_len();
        let kp = cs.hpke_derive_key_pair(&vec![9u8; nh]).unwrap();
        // The seed is `KDF.Nh` bytes, as the virtual-client layer hands it over; for P-521
        // (Nsk 66) and X-Wing (64 bytes of encapsulation randomness) it is stretched.
        let seed = vec![5u8; nh];
        let a = cs
            .hpke_setup_sender_and_export_derived(&kp.public_key, &seed, b"", b"ctx", nh)
            .unwrap();
        let b = cs
            .hpke_setup_sender_and_export_derived(&kp.public_key, &seed, b"", b"ctx", nh)
            .unwrap();
        assert_eq!(a, b);
        let r = cs
            .hpke_setup_receiver_and_export(&kp.private_key, &a.0, b"", b"ctx", nh)
            .unwrap();
        assert_eq!(r, a.1);
        let other = cs
            .hpke_setup_sender_and_export_derived(&kp.public_key, &[6u8; 16], b"", b"ctx", nh)
            .unwrap();
        assert_ne!(other.0, a.0);
        assert!(matches!(
            cs.hpke_setup_sender_and_export_derived(&kp.public_key, &[], b"", b"ctx", nh),
            Err(CryptoError::InvalidLength { .. })
        ));
    }
}
