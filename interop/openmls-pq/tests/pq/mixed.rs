//! Mixed groups of OpenMLS and mls-engine members on the X-Wing suite.

use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto};
use openmls::prelude::Ciphersuite;
use openmls_traits::{crypto::OpenMlsCrypto as _, OpenMlsProvider as _};

use crate::harness::{ciphersuite, OpenMlsClient};
use crate::scenario::{commits_both_ways, Handshakes};
use crate::PQ_SUITE;

/// Both sides mean the same suite by 0x004F: X-Wing, AES-128-GCM, SHA-256, Ed25519.
#[test]
fn both_sides_implement_the_same_pq_suite() {
    let openmls = ciphersuite(PQ_SUITE);
    assert_eq!(
        openmls,
        Ciphersuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519
    );
    let client = OpenMlsClient::new(b"probe", PQ_SUITE);
    assert!(client.provider.crypto().supports(openmls).is_ok());
    let ours = CipherSuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_ED25519;
    assert_eq!(ours.0, PQ_SUITE);
    assert!(RustCrypto.supports(ours));
    assert_eq!(
        ours.name(),
        Some("MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519")
    );
    // The HPKE KEM OpenMLS uses for it is X-Wing under its final id 0x647A.
    assert_eq!(
        format!("{:?}", openmls.hpke_kem_algorithm()),
        "XWingKemDraft6"
    );
}

/// The whole mixed-group sequence (updates, proposals by reference, Removes, Adds,
/// application messages), the group created by OpenMLS.
#[test]
fn commits_both_ways_openmls_creator() {
    commits_both_ways(PQ_SUITE, true, Handshakes::Public);
}

/// The same, the group created by mls-engine.
#[test]
fn commits_both_ways_vmls_creator() {
    commits_both_ways(PQ_SUITE, false, Handshakes::Public);
}

/// The same with every handshake a PrivateMessage on both sides.
#[test]
fn commits_both_ways_private_handshakes() {
    commits_both_ways(PQ_SUITE, true, Handshakes::Private);
}
