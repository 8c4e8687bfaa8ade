//! KeyPackages across the two implementations.
//!
//! * OpenMLS -> mls-engine: OpenMLS KeyPackages (suites 1-3; default, with extensions and
//!   capabilities, with GREASE, with a set lifetime) decode strictly with the engine's codec,
//!   re-encode byte for byte, verify under the engine's crypto, and hash to OpenMLS's
//!   KeyPackageRef.
//! * mls-engine -> OpenMLS: KeyPackages the engine builds pass OpenMLS's `validate`; a
//!   tampered one does not.

use mls_engine::codec::{
    self, decode_exact, CodecError, Credential, Extension, ExtensionList as _, ExtensionType,
    KeyPackage, LeafNodeSource, MlsMessageBody, ProposalType,
};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::ExtensionType as OmlsExtensionType;
use openmls::prelude::{
    ApplicationIdExtension, Capabilities, CredentialType, Extension as OmlsExtension, Extensions,
    KeyPackageBundle, KeyPackageVerifyError, LastResortExtension, Lifetime as OmlsLifetime,
    MlsMessageOut, ProposalType as OmlsProposalType, UnknownExtension,
};
use openmls_traits::OpenMlsProvider as _;

use crate::engine::{self, EngineKeyPackage, KeyPackageOptions};
use crate::harness::{to_bytes, OpenMlsClient, SUITES};

/// A private-use LeafNode extension type for the tests.
const LEAF_EXTENSION: u16 = 0xff00;
/// A private-use KeyPackage extension type for the tests.
const KEY_PACKAGE_EXTENSION: u16 = 0xff01;
/// A private-use proposal type for the tests.
const CUSTOM_PROPOSAL: u16 = 0xff02;
/// `last_resort` (draft-ietf-mls-extensions), as OpenMLS numbers it.
const LAST_RESORT: u16 = 0x000a;

/// Whether `value` is one of the RFC 9420 §13.5 GREASE values (`0x0A0A`, `0x1A1A`, ...).
fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && (value >> 12) == ((value >> 4) & 0x0f)
}

/// Checks everything the engine can check of an OpenMLS KeyPackage and returns it decoded:
/// strict decoding of the `MLSMessage` body, byte-identical re-encoding, both signatures under
/// the engine's crypto, the KeyPackageRef, and the fields OpenMLS reports.
fn check_openmls_key_package(client: &OpenMlsClient, bundle: &KeyPackageBundle) -> KeyPackage {
    let openmls_kp = bundle.key_package();
    let message = to_bytes(&MlsMessageOut::from(openmls_kp.clone()));
    let MlsMessageBody::KeyPackage(kp) = engine::decode_mls_message(&message).body else {
        panic!("not a KeyPackage");
    };
    // The body alone, through `decode_exact`, and back.
    let body = &message[4..];
    assert_eq!(decode_exact::<KeyPackage>(body).as_ref(), Ok(&kp));
    assert_eq!(codec::encode(&kp).unwrap(), body, "re-encoding differs");

    let suite_id = u16::from(client.ciphersuite);
    assert_eq!(kp.cipher_suite.0, suite_id);
    let suite = engine::suite(suite_id);
    kp.verify_signature(suite)
        .expect("KeyPackage signature verifies");
    kp.leaf_node
        .verify_signature(suite, &[], 0)
        .expect("LeafNode signature verifies");

    let openmls_ref = openmls_kp
        .hash_ref(client.provider.crypto())
        .expect("OpenMLS computes the KeyPackageRef");
    assert_eq!(kp.reference(suite).unwrap(), openmls_ref.as_slice());

    assert_eq!(
        kp.init_key.as_slice(),
        openmls_kp.hpke_init_key().as_slice()
    );
    assert_eq!(
        codec::encode(&kp.leaf_node).unwrap(),
        openmls_kp.leaf_node().tls_serialize_detached().unwrap()
    );
    assert_eq!(
        kp.leaf_node.signature_key.as_slice(),
        client.signer.public(),
        "the leaf carries the client's signature key"
    );
    kp
}

/// Strictness: one byte more or one byte less than a KeyPackage does not decode, and a
/// changed signature or a changed signed field does not verify.
fn check_rejections(kp: &KeyPackage) {
    let body = codec::encode(kp).unwrap();
    let suite = engine::suite(kp.cipher_suite.0);

    let mut longer = body.clone();
    longer.push(0);
    assert_eq!(
        decode_exact::<KeyPackage>(&longer),
        Err(CodecError::TrailingData(1))
    );
    assert!(decode_exact::<KeyPackage>(&body[..body.len() - 1]).is_err());

    let mut bad_signature = kp.clone();
    let mut signature = bad_signature.signature.as_slice().to_vec();
    let last = signature.len() - 1;
    signature[last] ^= 1;
    bad_signature.signature = signature.into();
    assert!(bad_signature.verify_signature(suite).is_err());

    let mut changed_leaf = kp.clone();
    changed_leaf
        .leaf_node
        .capabilities
        .proposals
        .push(ProposalType(0x0b0b));
    assert!(changed_leaf
        .leaf_node
        .verify_signature(suite, &[], 0)
        .is_err());
    assert!(changed_leaf.verify_signature(suite).is_err());
}

#[test]
fn openmls_default_key_packages_decode_and_verify() {
    for suite in SUITES {
        let client = OpenMlsClient::new(b"alice", suite);
        let bundle = client.key_package();
        let kp = check_openmls_key_package(&client, &bundle);
        assert_eq!(
            kp.leaf_node.credential,
            Credential::basic(b"alice".to_vec())
        );
        assert!(matches!(
            kp.leaf_node.leaf_node_source,
            LeafNodeSource::KeyPackage(_)
        ));
        check_rejections(&kp);
    }
}

#[test]
fn openmls_key_packages_with_extensions_and_capabilities() {
    for suite in SUITES {
        let client = OpenMlsClient::new(b"bob", suite);
        let capabilities = Capabilities::builder()
            .extensions(vec![
                OmlsExtensionType::Unknown(LEAF_EXTENSION),
                OmlsExtensionType::Unknown(KEY_PACKAGE_EXTENSION),
                OmlsExtensionType::LastResort,
            ])
            .proposals(vec![OmlsProposalType::Custom(CUSTOM_PROPOSAL)])
            .credentials(vec![CredentialType::Basic])
            .build();
        let leaf_extensions = Extensions::from_vec(vec![
            OmlsExtension::ApplicationId(ApplicationIdExtension::new(b"device-7")),
            OmlsExtension::Unknown(LEAF_EXTENSION, UnknownExtension(vec![1, 2, 3])),
        ])
        .unwrap();
        let key_package_extensions = Extensions::from_vec(vec![
            OmlsExtension::Unknown(KEY_PACKAGE_EXTENSION, UnknownExtension(vec![9; 40])),
            OmlsExtension::LastResort(LastResortExtension::new()),
        ])
        .unwrap();
        let bundle = client.key_package_with(
            openmls::prelude::KeyPackage::builder()
                .leaf_node_capabilities(capabilities)
                .leaf_node_extensions(leaf_extensions)
                .key_package_extensions(key_package_extensions),
        );
        let kp = check_openmls_key_package(&client, &bundle);

        let caps = &kp.leaf_node.capabilities;
        for t in [LEAF_EXTENSION, KEY_PACKAGE_EXTENSION, LAST_RESORT] {
            assert!(caps.extensions.contains(&ExtensionType(t)), "{t:#06x}");
        }
        assert!(caps.proposals.contains(&ProposalType(CUSTOM_PROPOSAL)));
        assert!(caps.cipher_suites.iter().any(|s| s.0 == suite));

        let leaf_ext = &kp.leaf_node.extensions;
        assert!(!leaf_ext.has_duplicate_types());
        // application_id is `opaque application_id<V>`: a one-byte varint length, then the id.
        let app_id = leaf_ext.find(ExtensionType::APPLICATION_ID).unwrap();
        assert_eq!(app_id.extension_data.as_slice(), b"\x08device-7");
        assert_eq!(
            leaf_ext.find(ExtensionType(LEAF_EXTENSION)),
            Some(&Extension::new(
                ExtensionType(LEAF_EXTENSION),
                vec![1, 2, 3]
            ))
        );

        let kp_ext = &kp.extensions;
        assert_eq!(
            kp_ext.find(ExtensionType(KEY_PACKAGE_EXTENSION)),
            Some(&Extension::new(
                ExtensionType(KEY_PACKAGE_EXTENSION),
                vec![9; 40]
            ))
        );
        assert_eq!(
            kp_ext.find(ExtensionType(LAST_RESORT)),
            Some(&Extension::new(ExtensionType(LAST_RESORT), vec![]))
        );
        check_rejections(&kp);
    }
}

#[test]
fn openmls_key_packages_with_grease_and_lifetime() {
    for suite in SUITES {
        let client = OpenMlsClient::new(b"carol", suite);
        let capabilities = Capabilities::builder()
            .with_grease(client.provider.rand())
            .build();
        let now = engine::now();
        let (not_before, not_after) = (now - 10, now + 1000);
        let bundle = client.key_package_with(
            openmls::prelude::KeyPackage::builder()
                .leaf_node_capabilities(capabilities)
                .key_package_lifetime(OmlsLifetime::init(not_before, not_after)),
        );
        let kp = check_openmls_key_package(&client, &bundle);
        let caps = &kp.leaf_node.capabilities;
        assert!(caps.cipher_suites.iter().any(|s| is_grease(s.0)));
        assert!(caps.extensions.iter().any(|t| is_grease(t.0)));
        assert!(caps.proposals.iter().any(|t| is_grease(t.0)));
        assert!(caps.credentials.iter().any(|t| is_grease(t.0)));
        match &kp.leaf_node.leaf_node_source {
            LeafNodeSource::KeyPackage(lifetime) => {
                assert_eq!(
                    (lifetime.not_before, lifetime.not_after),
                    (not_before, not_after)
                );
            }
            other => panic!("unexpected leaf node source {other:?}"),
        }
    }
}

#[test]
fn engine_key_packages_pass_openmls_validation() {
    for suite in SUITES {
        let ours = EngineKeyPackage::build(suite, b"engine", KeyPackageOptions::default());
        let openmls = OpenMlsClient::new(b"alice", suite);
        let validated = openmls
            .validate_key_package(&ours.to_mls_message())
            .expect("OpenMLS accepts the engine's KeyPackage");
        assert_eq!(
            validated
                .hash_ref(openmls.provider.crypto())
                .unwrap()
                .as_slice(),
            ours.reference()
        );
        assert_eq!(
            validated.hpke_init_key().as_slice(),
            ours.key_package.init_key.as_slice()
        );
        let cs = engine::suite(suite);
        assert_eq!(
            cs.signature_public_key(&ours.signature_private_key)
                .unwrap(),
            ours.key_package.leaf_node.signature_key.as_slice()
        );
    }
}

#[test]
fn engine_key_packages_with_extensions_pass_openmls_validation() {
    for suite in SUITES {
        let options = KeyPackageOptions {
            leaf_extensions: vec![
                Extension::new(ExtensionType::APPLICATION_ID, b"\x03dev".to_vec()),
                Extension::new(ExtensionType(LEAF_EXTENSION), vec![0xaa; 5]),
            ],
            key_package_extensions: vec![Extension::new(
                ExtensionType(KEY_PACKAGE_EXTENSION),
                vec![],
            )],
            capability_extensions: vec![
                ExtensionType(LEAF_EXTENSION),
                ExtensionType(KEY_PACKAGE_EXTENSION),
            ],
        };
        let ours = EngineKeyPackage::build(suite, b"engine", options);
        let openmls = OpenMlsClient::new(b"alice", suite);
        let validated = openmls
            .validate_key_package(&ours.to_mls_message())
            .expect("OpenMLS accepts the engine's KeyPackage");
        assert_eq!(
            validated
                .hash_ref(openmls.provider.crypto())
                .unwrap()
                .as_slice(),
            ours.reference()
        );
    }
}

#[test]
fn openmls_rejects_tampered_engine_key_packages() {
    let openmls = OpenMlsClient::new(b"alice", 1);
    let ours = EngineKeyPackage::build(1, b"engine", KeyPackageOptions::default());

    // A changed KeyPackage signature.
    let mut tampered = EngineKeyPackage::build(1, b"engine", KeyPackageOptions::default());
    let mut signature = tampered.key_package.signature.as_slice().to_vec();
    signature[0] ^= 0x80;
    tampered.key_package.signature = signature.into();
    assert!(matches!(
        openmls.validate_key_package(&tampered.to_mls_message()),
        Err(KeyPackageVerifyError::InvalidSignature)
    ));

    // A signed leaf field changed after signing: the LeafNode signature breaks first.
    let mut tampered = ours;
    tampered.key_package.leaf_node.credential = Credential::basic(b"mallory".to_vec());
    assert!(matches!(
        openmls.validate_key_package(&tampered.to_mls_message()),
        Err(KeyPackageVerifyError::InvalidLeafNodeSignature)
    ));

    // A KeyPackage extension not listed in the leaf's capabilities (§10.1), correctly signed.
    let options = KeyPackageOptions {
        key_package_extensions: vec![Extension::new(ExtensionType(KEY_PACKAGE_EXTENSION), vec![])],
        ..KeyPackageOptions::default()
    };
    let unlisted = EngineKeyPackage::build(1, b"engine", options);
    assert!(unlisted
        .key_package
        .verify_signature(engine::suite(1))
        .is_ok());
    assert!(matches!(
        openmls.validate_key_package(&unlisted.to_mls_message()),
        Err(KeyPackageVerifyError::UnsupportedExtension)
    ));
}

/// OpenMLS 0.9.2's `openmls_rust_crypto` implements suites 1-3 only (and, with its
/// `draft-ietf-mls-pq-ciphersuites` feature, the PQ suites: `interop/openmls-pq`): suites 5
/// and 7, which mls-engine implements, have no OpenMLS peer here (issue 16). If this fails,
/// OpenMLS gained them: add them to `harness::SUITES`.
#[test]
fn openmls_rust_crypto_has_no_suites_4_to_7() {
    use openmls_traits::{crypto::OpenMlsCrypto as _, OpenMlsProvider as _};
    let provider = openmls_rust_crypto::OpenMlsRustCrypto::default();
    for suite in 4u16..=7 {
        let ciphersuite = crate::harness::ciphersuite(suite);
        assert!(
            provider.crypto().supports(ciphersuite).is_err(),
            "OpenMLS now implements suite {suite}"
        );
        assert!(!provider
            .crypto()
            .supported_ciphersuites()
            .contains(&ciphersuite));
    }
}
