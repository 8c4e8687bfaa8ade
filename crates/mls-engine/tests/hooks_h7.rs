//! Design hook H7: unknown LeafNode and GroupContext extensions (type 0xF0C1, DESIGN §5 row 7)
//! round-trip through every path and are checked against capabilities as RFC 9420 requires
//! (§7.2, §7.3, §12.1.7, §13.4).

use mls_engine::codec::{
    Credential, Extension, ExtensionPayload as _, ExtensionType, Lifetime, Proposal,
    RequiredCapabilitiesExtension,
};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SignatureKeyPair};
use mls_engine::group::proposals::{MissingCapability, ProposalListError};
use mls_engine::group::{
    CommitOptions, Group, GroupConfig, GroupError, OwnLeaf, ProcessedMessage, Services,
};
use mls_engine::messages::{
    HpkeKeySource, KeyPackageBundle, KeyPackageParams, KeyPackageValidationError, LeafNodeParams,
    LeafNodeValidationError,
};
use mls_engine::tree::LeafIndex;

static P: RustCrypto = RustCrypto;
const NOW: u64 = 1_700_000_000;
const SUITE: CipherSuite = CipherSuite(1);
const UNKNOWN: ExtensionType = ExtensionType(0xF0C1);

fn svc() -> Services<'static> {
    Services::new(&P)
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 86_400,
    }
}

fn signer() -> SignatureKeyPair {
    P.suite(SUITE)
        .unwrap()
        .signature_generate_key_pair()
        .unwrap()
}

/// Leaf parameters; `supports` lists 0xF0C1 in the capabilities, `carries` puts a 0xF0C1
/// extension with `data` in the leaf (which also lists it).
fn params(name: &str, supports: bool, carries: Option<&[u8]>) -> LeafNodeParams {
    let mut p = LeafNodeParams::new(SUITE, Credential::basic(name.as_bytes().to_vec()));
    if supports {
        p.capabilities.extensions.push(UNKNOWN);
    }
    if let Some(data) = carries {
        p = p.extension(Extension::new(UNKNOWN, data.to_vec()));
    }
    p
}

fn key_package(p: LeafNodeParams, signer: &SignatureKeyPair) -> KeyPackageBundle {
    let cs = P.suite(SUITE).unwrap();
    KeyPackageParams {
        leaf: p,
        lifetime: lifetime(),
        extensions: vec![],
    }
    .build_fresh(cs, signer)
    .unwrap()
}

fn create(p: LeafNodeParams, extensions: Vec<Extension>) -> Group {
    Group::create(
        &svc(),
        GroupConfig::default(),
        b"h7".to_vec(),
        SUITE,
        OwnLeaf {
            params: p,
            encryption_key: HpkeKeySource::Generate,
            signature_key: signer(),
        },
        lifetime(),
        extensions,
    )
    .unwrap()
}

/// `adder` commits an Add of `kp` (by value); the others process it; the joiner joins from
/// the Welcome (with the `ratchet_tree` extension, or given the tree out of band).
fn add(
    groups: &mut Vec<Group>,
    adder: usize,
    kp: &KeyPackageBundle,
    s: &SignatureKeyPair,
    tree_in_welcome: bool,
) {
    let out = groups[adder]
        .commit(
            &svc(),
            CommitOptions {
                ratchet_tree_in_welcome: Some(tree_in_welcome),
                ..CommitOptions::new().proposal(Proposal::add(kp.key_package.clone()))
            },
            NOW,
        )
        .unwrap();
    groups[adder].merge_pending_commit().unwrap();
    for (i, g) in groups.iter_mut().enumerate() {
        if i != adder {
            g.process(&svc(), &out.commit, NOW).unwrap();
        }
    }
    let tree = (!tree_in_welcome).then(|| groups[adder].ratchet_tree().clone());
    let joiner = Group::join_from_welcome(
        &svc(),
        GroupConfig::default(),
        out.welcome.as_ref().unwrap(),
        kp,
        s.clone(),
        tree,
        NOW,
    )
    .unwrap();
    groups.push(joiner);
    agree(groups);
}

fn agree(groups: &[Group]) {
    for g in &groups[1..] {
        assert_eq!(g.epoch_authenticator(), groups[0].epoch_authenticator());
        assert_eq!(g.group_context(), groups[0].group_context());
        assert_eq!(
            g.ratchet_tree().to_nodes(),
            groups[0].ratchet_tree().to_nodes()
        );
    }
}

fn leaf_extension(g: &Group, leaf: u32) -> Option<Vec<u8>> {
    g.ratchet_tree()
        .leaf(LeafIndex(leaf))
        .unwrap()
        .extensions
        .iter()
        .find(|e| e.extension_type == UNKNOWN)
        .map(|e| e.extension_data.as_slice().to_vec())
}

#[test]
fn unknown_leaf_extension_round_trips_through_every_path() {
    for tree_in_welcome in [true, false] {
        let mut groups = vec![create(params("alice", true, Some(b"alice-info")), vec![])];
        let (bob_signer, carol_signer) = (signer(), signer());
        let bob_kp = key_package(params("bob", true, Some(b"bob-info")), &bob_signer);
        // KeyPackage -> Add -> tree -> Welcome -> joiner's tree.
        add(&mut groups, 0, &bob_kp, &bob_signer, tree_in_welcome);
        let carol_kp = key_package(params("carol", true, None), &carol_signer);
        add(&mut groups, 1, &carol_kp, &carol_signer, tree_in_welcome);
        for g in &groups {
            assert_eq!(leaf_extension(g, 0).as_deref(), Some(&b"alice-info"[..]));
            assert_eq!(leaf_extension(g, 1).as_deref(), Some(&b"bob-info"[..]));
            assert_eq!(leaf_extension(g, 2), None);
            assert_eq!(
                g.ratchet_tree().leaf(LeafIndex(1)).unwrap(),
                &bob_kp.key_package.leaf_node
            );
        }

        // Commit with path from Bob: the leaf keeps its extensions.
        let out = groups[1]
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        groups[1].merge_pending_commit().unwrap();
        for i in [0, 2] {
            groups[i].process(&svc(), &out.commit, NOW).unwrap();
        }
        agree(&groups);
        assert!(groups
            .iter()
            .all(|g| leaf_extension(g, 1).as_deref() == Some(&b"bob-info"[..])));

        // Update proposal from Carol with new extension data, committed by Alice.
        let (update, _) = groups[2]
            .propose_update(
                &svc(),
                HpkeKeySource::Generate,
                Some(params("carol", true, Some(b"carol-info"))),
            )
            .unwrap();
        for i in [0, 1] {
            groups[i].process(&svc(), &update, NOW).unwrap();
        }
        let out = groups[0].commit(&svc(), CommitOptions::new(), NOW).unwrap();
        groups[0].merge_pending_commit().unwrap();
        for i in [1, 2] {
            groups[i].process(&svc(), &out.commit, NOW).unwrap();
        }
        agree(&groups);
        assert!(groups
            .iter()
            .all(|g| leaf_extension(g, 2).as_deref() == Some(&b"carol-info"[..])));

        // State round trip keeps them.
        let back = Group::from_bytes(&groups[0].to_bytes().unwrap()).unwrap();
        assert_eq!(
            back.ratchet_tree().to_nodes(),
            groups[0].ratchet_tree().to_nodes()
        );
    }
}

#[test]
fn unknown_group_context_extension_round_trips() {
    let mut groups = vec![create(params("alice", true, None), vec![])];
    let bob_signer = signer();
    let bob_kp = key_package(params("bob", true, None), &bob_signer);
    add(&mut groups, 0, &bob_kp, &bob_signer, true);

    // GroupContextExtensions proposal -> commit -> GroupContext.
    let gce = vec![Extension::new(UNKNOWN, b"group-info".to_vec())];
    let (proposal, _) = groups[1]
        .propose_group_context_extensions(&svc(), gce.clone())
        .unwrap();
    match groups[0].process(&svc(), &proposal, NOW).unwrap() {
        ProcessedMessage::Proposal {
            proposal: Proposal::GroupContextExtensions(p),
            ..
        } => assert_eq!(p.extensions, gce),
        other => panic!("{other:?}"),
    }
    let out = groups[0].commit(&svc(), CommitOptions::new(), NOW).unwrap();
    groups[0].merge_pending_commit().unwrap();
    groups[1].process(&svc(), &out.commit, NOW).unwrap();
    agree(&groups);
    assert_eq!(groups[0].group_context().extensions, gce);

    // A joiner gets it through the Welcome's GroupInfo, with and without the tree in it.
    for tree_in_welcome in [true, false] {
        let s = signer();
        let kp = key_package(params("carol", true, None), &s);
        add(&mut groups, 0, &kp, &s, tree_in_welcome);
        assert_eq!(groups.last().unwrap().group_context().extensions, gce);
    }
    // And it survives the state codec.
    let back = Group::from_bytes(&groups[2].to_bytes().unwrap()).unwrap();
    assert_eq!(back.group_context().extensions, gce);

    // A group created with it from the start.
    let mut created = vec![create(params("dave", true, None), gce.clone())];
    let s = signer();
    let kp = key_package(params("erin", true, None), &s);
    add(&mut created, 0, &kp, &s, true);
    assert_eq!(created[1].group_context().extensions, gce);
}

/// A KeyPackage whose leaf carries 0xF0C1 without listing it in its capabilities, validly
/// signed (the builder would add the type to the capabilities, so the leaf is re-signed).
fn key_package_with_unlisted_extension(s: &SignatureKeyPair) -> KeyPackageBundle {
    let cs = P.suite(SUITE).unwrap();
    let mut kp = key_package(params("mallory", true, Some(b"x")), s);
    let k = &mut kp.key_package;
    k.leaf_node
        .capabilities
        .extensions
        .retain(|t| *t != UNKNOWN);
    k.leaf_node.sign(cs, &s.private_key, &[], 0).unwrap();
    k.sign(cs, &s.private_key).unwrap();
    k.verify_signature(cs).unwrap();
    kp
}

#[test]
fn a_leaf_extension_not_in_capabilities_is_refused() {
    let mut groups = vec![create(params("alice", true, None), vec![])];
    let bob_signer = signer();
    let bob_kp = key_package(params("bob", true, None), &bob_signer);
    add(&mut groups, 0, &bob_kp, &bob_signer, true);
    let bad = key_package_with_unlisted_extension(&signer());

    // In a commit by value.
    let before = groups[0].to_bytes().unwrap();
    let e = groups[0]
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(bad.key_package.clone())),
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            GroupError::InvalidProposalList(ProposalListError::InvalidKeyPackage {
                index: 0,
                error: KeyPackageValidationError::LeafNode(
                    LeafNodeValidationError::ExtensionNotInCapabilities(UNKNOWN)
                ),
            })
        ),
        "{e:?}"
    );
    assert_eq!(groups[0].to_bytes().unwrap(), before);

    // In a proposal from another member (the sender does not check it; the receiver does).
    let (proposal, _) = groups[1]
        .propose(&svc(), Proposal::add(bad.key_package.clone()), &[])
        .unwrap();
    let e = groups[0].process(&svc(), &proposal, NOW).unwrap_err();
    assert!(
        matches!(
            e,
            GroupError::InvalidKeyPackage(KeyPackageValidationError::LeafNode(
                LeafNodeValidationError::ExtensionNotInCapabilities(UNKNOWN)
            ))
        ),
        "{e:?}"
    );
    assert_eq!(groups[0].to_bytes().unwrap(), before);
}

#[test]
fn a_group_context_extension_not_supported_by_every_member_is_refused() {
    let mut groups = vec![create(params("alice", true, None), vec![])];
    let (bob_signer, carol_signer) = (signer(), signer());
    let bob_kp = key_package(params("bob", true, None), &bob_signer);
    add(&mut groups, 0, &bob_kp, &bob_signer, true);
    // Carol does not list 0xF0C1.
    let carol_kp = key_package(params("carol", false, None), &carol_signer);
    add(&mut groups, 0, &carol_kp, &carol_signer, true);

    let gce = vec![Extension::new(UNKNOWN, b"g".to_vec())];
    let (proposal, _) = groups[1]
        .propose_group_context_extensions(&svc(), gce.clone())
        .unwrap();
    let before = groups[0].to_bytes().unwrap();
    match groups[0].process(&svc(), &proposal, NOW) {
        // Refused on receipt ...
        Err(e) => {
            assert!(
                matches!(
                    e,
                    GroupError::InvalidProposalList(
                        ProposalListError::GroupContextExtensionsUnsupported { .. }
                    )
                ),
                "{e:?}"
            );
            assert_eq!(groups[0].to_bytes().unwrap(), before);
        }
        // ... or, if stored, left out of (or refused in) the commit (§12.2: the committer
        // does not commit invalid proposals).
        Ok(_) => {
            let mut g = Group::from_bytes(&groups[0].to_bytes().unwrap()).unwrap();
            match g.commit(&svc(), CommitOptions::new(), NOW) {
                Err(e) => assert!(
                    matches!(
                        e,
                        GroupError::InvalidProposalList(
                            ProposalListError::GroupContextExtensionsUnsupported { .. }
                        )
                    ),
                    "{e:?}"
                ),
                Ok(_) => {
                    g.merge_pending_commit().unwrap();
                    assert!(g.group_context().extensions.is_empty());
                }
            }
        }
    }
    // By value in a commit.
    let mut g = Group::from_bytes(&before).unwrap();
    g.clear_pending_proposals();
    let e = g
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::GroupContextExtensions(
                mls_engine::codec::GroupContextExtensions { extensions: gce },
            )),
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            GroupError::InvalidProposalList(ProposalListError::GroupContextExtensionsUnsupported {
                leaf: 2,
                missing: MissingCapability::Extension(UNKNOWN),
                ..
            })
        ),
        "{e:?}"
    );

    // A member who does not support a GroupContext extension in use cannot be added.
    let mut with_ext = vec![create(
        params("dave", true, None),
        vec![Extension::new(UNKNOWN, b"g".to_vec())],
    )];
    let kp = key_package(params("erin", false, None), &signer());
    let e = with_ext[0]
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            GroupError::InvalidProposalList(ProposalListError::InvalidKeyPackage {
                index: 0,
                error: KeyPackageValidationError::LeafNode(
                    LeafNodeValidationError::GroupExtensionNotSupported(UNKNOWN)
                ),
            })
        ),
        "{e:?}"
    );
    let _ = with_ext.pop();

    // required_capabilities naming 0xF0C1: a KeyPackage without it is refused.
    let required = RequiredCapabilitiesExtension {
        extension_types: vec![UNKNOWN],
        proposal_types: vec![],
        credential_types: vec![],
    }
    .to_extension()
    .unwrap();
    let mut required_group = create(params("frank", true, None), vec![required]);
    let e = required_group
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            GroupError::InvalidProposalList(ProposalListError::InvalidKeyPackage {
                index: 0,
                error: KeyPackageValidationError::LeafNode(
                    LeafNodeValidationError::RequiredExtensionNotSupported(UNKNOWN)
                ),
            })
        ),
        "{e:?}"
    );
}
