//! Hole 9: a device whose clock is a second or two behind used to refuse a KeyPackage that
//! mls-rs 0.57 made a moment ago (mls-rs sets `not_before` to the second of creation and vmls
//! allowed no skew). Groups now allow `GroupConfig::lifetime_tolerance` seconds either way
//! (default five minutes), and an application can set it per group.

use mls_engine::codec::{KeyPackage, LeafNodeSource, MlsMessage, MlsMessageBody, Proposal};
use mls_engine::crypto::CipherSuite;
use mls_engine::group::{CommitOptions, GroupError, DEFAULT_LIFETIME_TOLERANCE};
use mls_engine::messages::LeafNodeValidationError;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::{CipherSuiteProvider, Client, CryptoProvider};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;
use virtual_clients::emulator::EmulatorError;

use crate::common::svc;
use crate::world::{World, GROUP};

const CS: CipherSuite = CipherSuite(1);

/// A KeyPackage mls-rs makes now (its lifetime starts at the current second).
fn mls_rs_key_package() -> KeyPackage {
    let suite = mls_rs::CipherSuite::CURVE25519_AES128;
    let crypto = RustCryptoProvider::default();
    let provider = crypto.cipher_suite_provider(suite).unwrap();
    let (secret, public) = provider.signature_key_generate().unwrap();
    let identity = SigningIdentity::new(
        BasicCredential::new(b"erin".to_vec()).into_credential(),
        public,
    );
    let client = Client::builder()
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(crypto)
        .signing_identity(identity, secret, suite)
        .build();
    let bytes = client
        .generate_key_package_message(Default::default(), Default::default(), None)
        .unwrap()
        .to_bytes()
        .unwrap();
    match MlsMessage::decode(&bytes).unwrap().body {
        MlsMessageBody::KeyPackage(kp) => kp,
        other => panic!("{other:?}"),
    }
}

fn not_before(kp: &KeyPackage) -> u64 {
    match &kp.leaf_node.leaf_node_source {
        LeafNodeSource::KeyPackage(lifetime) => lifetime.not_before,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_fresh_mls_rs_key_package_is_accepted_by_a_clock_two_seconds_behind() {
    let kp = mls_rs_key_package();
    let behind = not_before(&kp) - 2;
    // A plain vmls member.
    let mut w = World::new(CS, 2);
    let mut carol = w.carol.clone();
    carol
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.clone())),
            behind,
        )
        .unwrap();
    // The virtual client.
    w.alice[0]
        .commit(&svc(), GROUP, vec![Proposal::add(kp.clone())], behind)
        .unwrap();
    assert_eq!(
        w.alice[0].group(GROUP).unwrap().config().lifetime_tolerance,
        DEFAULT_LIFETIME_TOLERANCE
    );
}

#[test]
fn the_tolerance_is_configurable_per_group() {
    let kp = mls_rs_key_package();
    let behind = not_before(&kp) - 2;
    let mut w = World::new(CS, 2);
    let mut config = *w.alice[0].group(GROUP).unwrap().config();
    config.lifetime_tolerance = 0;
    w.alice[0].set_group_config(GROUP, config).unwrap();
    let before = w.alice[0].to_bytes().unwrap();
    let err = w.alice[0]
        .commit(&svc(), GROUP, vec![Proposal::add(kp.clone())], behind)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            EmulatorError::Group(GroupError::InvalidKeyPackage(_))
                | EmulatorError::Group(GroupError::InvalidLeafNode(
                    LeafNodeValidationError::LifetimeNotYetValid { .. }
                ))
                | EmulatorError::Group(GroupError::InvalidProposalList(_))
        ),
        "{err:?}"
    );
    assert_eq!(*w.alice[0].to_bytes().unwrap(), *before);
    // Far outside any tolerance: refused with the default too.
    let mut carol = w.carol.clone();
    assert!(carol
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp)),
            behind - DEFAULT_LIFETIME_TOLERANCE,
        )
        .is_err());
}
