//! LeafNode and KeyPackage creation and validation (RFC 9420 §7.2, §7.3, §10, §10.1) through
//! the public API: round trips for suites 1-3, a small group's view of Add/Update/Commit
//! leaves, and the KeyPackages of the official `messages.json` test vectors.

#[path = "support/official_vectors.rs"]
mod official_vectors;

use mls_engine::codec::{
    decode_exact, encode, Credential, KeyPackage, LeafNode, LeafNodeSource, Lifetime,
    ProtocolVersion,
};
use mls_engine::crypto::{CipherSuite, CryptoProvider, RustCrypto, SuiteProvider};
use mls_engine::messages::{
    key_package_ref, validate_key_package, validate_leaf_node, BasicIdentityProvider,
    GroupRequirements, HpkeKeySource, KeyPackageParams, KeyPackageValidationContext,
    KeyPackageValidationError, LeafNodeOrigin, LeafNodeParams, LeafNodeTarget,
    LeafNodeValidationContext, LeafNodeValidationError, MemberCredentialTypes,
};

const NOW: u64 = 1_700_000_000;
const DAY: u64 = 86_400;

fn suite(id: u16) -> &'static dyn SuiteProvider {
    static CRYPTO: RustCrypto = RustCrypto;
    CRYPTO.suite(CipherSuite(id)).expect("supported suite")
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - DAY,
        not_after: NOW + 90 * DAY,
    }
}

#[test]
fn key_packages_round_trip_and_validate_for_suites_1_to_3() {
    let provider = BasicIdentityProvider::new();
    for id in [1u16, 2, 3] {
        let s = suite(id);
        let signature_key = s.signature_generate_key_pair().unwrap();
        let bundle = KeyPackageParams::new(
            CipherSuite(id),
            Credential::basic(format!("client-{id}").into_bytes()),
            lifetime(),
        )
        .build_fresh(s, &signature_key)
        .unwrap();

        let bytes = encode(&bundle.key_package).unwrap();
        let decoded: KeyPackage = decode_exact(&bytes).unwrap();
        assert_eq!(decoded, bundle.key_package);
        assert_eq!(key_package_ref(s, &decoded).unwrap(), bundle.reference);

        let leaf_ctx = LeafNodeValidationContext::new(&provider, NOW).with_max_lifetime(365 * DAY);
        let ctx =
            KeyPackageValidationContext::new(leaf_ctx).with_message_version(ProtocolVersion::MLS10);
        validate_key_package(s, &decoded, &ctx).unwrap();

        // One byte flipped anywhere in the signed part breaks a signature (or the structure).
        let mut tampered = bytes.clone();
        let at = bytes.len() / 2;
        tampered[at] ^= 1;
        if let Ok(kp) = decode_exact::<KeyPackage>(&tampered) {
            assert!(validate_key_package(s, &kp, &ctx).is_err());
        }
    }
}

/// A two-member group: Alice (leaf 0) and Bob (leaf 1); Carol's KeyPackage is added, Bob
/// sends an Update, Alice commits with a path.
#[test]
fn a_small_group_validates_add_update_and_commit_leaves() {
    let provider = BasicIdentityProvider::new();
    for id in [1u16, 2, 3] {
        let s = suite(id);
        let group_id = b"group-42".as_slice();
        let alice_sig = s.signature_generate_key_pair().unwrap();
        let bob_sig = s.signature_generate_key_pair().unwrap();
        let carol_sig = s.signature_generate_key_pair().unwrap();
        let leaf = |who: &str, sig, index| {
            LeafNodeParams::new(CipherSuite(id), Credential::basic(who.as_bytes().to_vec()))
                .build_fresh(
                    s,
                    LeafNodeTarget::Update {
                        group_id,
                        leaf_index: index,
                    },
                    sig,
                )
                .unwrap()
                .0
        };
        let alice = leaf("alice", &alice_sig, 0);
        let bob = leaf("bob", &bob_sig, 1);
        let tree: Vec<Option<LeafNode>> = vec![Some(alice.clone()), Some(bob.clone())];
        let requirements = GroupRequirements::none();
        let members = MemberCredentialTypes::from_leaves([&alice, &bob]);
        let ctx = LeafNodeValidationContext::new(&provider, NOW)
            .with_requirements(&requirements)
            .with_member_credential_types(&members)
            .with_key_uniqueness(&tree);

        // Add: Carol's KeyPackage.
        let carol = KeyPackageParams::new(
            CipherSuite(id),
            Credential::basic(b"carol".to_vec()),
            lifetime(),
        )
        .build_fresh(s, &carol_sig)
        .unwrap();
        validate_key_package(
            s,
            &carol.key_package,
            &KeyPackageValidationContext::new(ctx),
        )
        .unwrap();

        // Re-adding Bob's signature key is refused (§7.3 uniqueness).
        let bob_again = KeyPackageParams::new(
            CipherSuite(id),
            Credential::basic(b"bob".to_vec()),
            lifetime(),
        )
        .build_fresh(s, &bob_sig)
        .unwrap();
        assert_eq!(
            validate_key_package(
                s,
                &bob_again.key_package,
                &KeyPackageValidationContext::new(ctx)
            ),
            Err(KeyPackageValidationError::LeafNode(
                LeafNodeValidationError::SignatureKeyNotUnique
            ))
        );

        // Update from Bob, keeping his signature key.
        let bob_update = leaf("bob", &bob_sig, 1);
        let origin = LeafNodeOrigin::Update {
            group_id,
            leaf_index: 1,
            replaced: &bob,
        };
        validate_leaf_node(s, &bob_update, origin, &ctx).unwrap();

        // Commit from Alice with a path (the parent hash is the tree module's business).
        let (alice_commit, _) =
            LeafNodeParams::new(CipherSuite(id), Credential::basic(b"alice".to_vec()))
                .build(
                    s,
                    LeafNodeTarget::Commit {
                        group_id,
                        leaf_index: 0,
                        parent_hash: vec![1; 32],
                    },
                    HpkeKeySource::Generate,
                    &alice_sig,
                )
                .unwrap();
        let origin = LeafNodeOrigin::Commit {
            group_id,
            leaf_index: 0,
            replaced: Some(&alice),
        };
        validate_leaf_node(s, &alice_commit, origin, &ctx).unwrap();

        // Every leaf of the resulting tree validates in place (lifetime not re-checked).
        let after: Vec<Option<LeafNode>> = vec![Some(alice_commit), Some(bob_update)];
        let tree_ctx = ctx
            .with_key_uniqueness(&after)
            .with_lifetime_check(mls_engine::messages::LifetimeCheck::Skip);
        for (index, leaf) in after.iter().enumerate() {
            let leaf = leaf.as_ref().unwrap();
            let origin = LeafNodeOrigin::RatchetTree {
                group_id,
                leaf_index: index as u32,
            };
            validate_leaf_node(s, leaf, origin, &tree_ctx).unwrap();
        }
    }
}

/// `mls_key_package` of every `messages.json` case: an MLSMessage (`version`, `wire_format =
/// mls_key_package (5)`, KeyPackage). The KeyPackage and its leaf signatures verify, and the
/// §10.1 checks pass at a time inside the leaf's lifetime.
#[test]
fn messages_json_key_packages_pass_validation() {
    let cases = official_vectors::cases("messages.json");
    let provider = BasicIdentityProvider::new();
    let mut checked = 0;
    for (index, case) in cases.iter().enumerate() {
        let message = hex::decode(case["mls_key_package"].as_str().unwrap()).unwrap();
        let (header, body) = message.split_at(4);
        let version = ProtocolVersion(u16::from_be_bytes([header[0], header[1]]));
        let wire_format = u16::from_be_bytes([header[2], header[3]]);
        assert_eq!(wire_format, 5, "case {index}: not an mls_key_package");
        let key_package: KeyPackage = decode_exact(body).unwrap();
        let Ok(s) = RustCrypto.suite(key_package.cipher_suite) else {
            continue;
        };
        key_package
            .verify_signature(s)
            .unwrap_or_else(|e| panic!("case {index}: KeyPackage signature: {e}"));
        key_package
            .leaf_node
            .verify_signature(s, &[], 0)
            .unwrap_or_else(|e| panic!("case {index}: LeafNode signature: {e}"));
        let LeafNodeSource::KeyPackage(lifetime) = key_package.leaf_node.leaf_node_source else {
            panic!("case {index}: leaf source is not key_package");
        };
        let ctx = KeyPackageValidationContext::new(LeafNodeValidationContext::new(
            &provider,
            lifetime.not_before,
        ))
        .with_message_version(version);
        validate_key_package(s, &key_package, &ctx).unwrap_or_else(|e| panic!("case {index}: {e}"));
        checked += 1;
    }
    assert_eq!(checked, 300);
}
