//! Proposal-list validation (RFC 9420 §12.2), filtering on the committer's side, and
//! application in the order of §12.3, on small trees built from real KeyPackages.
//!
//! Each rule has a negative test (the list breaks it: the typed error names the rule) beside a
//! positive one (a close list that keeps it).

use mls_engine::codec::{
    Credential, Extension, ExtensionPayload as _, ExtensionType, ExternalInit,
    GroupContextExtensions, KeyPackage, LeafNode, Lifetime, ParentNode, PreSharedKeyID, Proposal,
    ProtocolVersion, ReInit, RequiredCapabilitiesExtension, ResumptionPSKUsage, Sender,
};
use mls_engine::crypto::{
    CipherSuite, CryptoProvider, HpkeKeyPair, RustCrypto, SignatureKeyPair, SuiteProvider,
};
use mls_engine::group::proposals::{
    apply_proposals, filter_proposals, path_required, validate_proposal_list, ApplyError,
    MissingCapability, ProposalListError as E, ProposalStore, ProposalValidationContext,
    PskUsageContext, ResolvedProposal,
};
use mls_engine::messages::{
    BasicIdentityProvider, HpkeKeySource, KeyPackageBundle, KeyPackageParams,
    KeyPackageValidationError, LeafNodeParams, LeafNodeTarget, LeafNodeValidationError,
};
use mls_engine::tree::{LeafIndex, NodeIndex, RatchetTree};

const NOW: u64 = 1_700_000_000;
const GROUP_ID: &[u8] = b"group";
const EXT: ExtensionType = ExtensionType(0xff00);

fn suite() -> &'static dyn SuiteProvider {
    static CRYPTO: RustCrypto = RustCrypto;
    CRYPTO.suite(CipherSuite(1)).expect("suite 1")
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 100,
        not_after: NOW + 100,
    }
}

fn signer(seed: u8) -> SignatureKeyPair {
    suite().signature_key_pair_from_seed(&[seed; 32]).unwrap()
}

fn name(seed: u8) -> Vec<u8> {
    format!("client-{seed}").into_bytes()
}

fn leaf_params(seed: u8, supports_ext: bool) -> LeafNodeParams {
    let params = LeafNodeParams::new(CipherSuite(1), Credential::basic(name(seed)));
    if supports_ext {
        params.supported_extension_types([EXT])
    } else {
        params
    }
}

/// A KeyPackage of client `seed` (signature key from the seed).
fn key_package_with(seed: u8, supports_ext: bool) -> KeyPackageBundle {
    KeyPackageParams::new(CipherSuite(1), Credential::basic(name(seed)), lifetime())
        .with_leaf(leaf_params(seed, supports_ext))
        .build_fresh(suite(), &signer(seed))
        .unwrap()
}

fn key_package(seed: u8) -> KeyPackageBundle {
    key_package_with(seed, true)
}

/// A group whose members are clients `0..n` at leaves `0..n`; client `i` supports `EXT`
/// unless listed in `without_ext`.
struct Group {
    tree: RatchetTree,
    members: Vec<KeyPackageBundle>,
}

fn group_with(n: u8, without_ext: &[u8]) -> Group {
    let members: Vec<_> = (0..n)
        .map(|i| key_package_with(i, !without_ext.contains(&i)))
        .collect();
    let mut tree = RatchetTree::new(members[0].key_package.leaf_node.clone());
    for m in &members[1..] {
        tree.add_leaf(m.key_package.leaf_node.clone()).unwrap();
    }
    Group { tree, members }
}

fn group(n: u8) -> Group {
    group_with(n, &[])
}

fn identity() -> &'static BasicIdentityProvider {
    static IDENTITY: std::sync::OnceLock<BasicIdentityProvider> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(BasicIdentityProvider::new)
}

fn ctx<'a>(tree: &'a RatchetTree, extensions: &'a [Extension]) -> ProposalValidationContext<'a> {
    ProposalValidationContext::new(suite(), GROUP_ID, extensions, tree, identity(), NOW)
}

fn validate(g: &Group, committer: Sender, list: &[(Sender, Proposal)]) -> Result<(), E> {
    validate_proposal_list(&ctx(&g.tree, &[]), committer, list)
}

/// An Update leaf for member `leaf` (client `seed`), fresh encryption key.
fn update_leaf(seed: u8, leaf: u32) -> LeafNode {
    leaf_params(seed, true)
        .build_fresh(
            suite(),
            LeafNodeTarget::Update {
                group_id: GROUP_ID,
                leaf_index: leaf,
            },
            &signer(seed),
        )
        .unwrap()
        .0
}

fn m(leaf: u32, p: Proposal) -> (Sender, Proposal) {
    (Sender::Member(leaf), p)
}

fn add(seed: u8) -> Proposal {
    Proposal::add(key_package(seed).key_package)
}

fn psk(id: u8) -> Proposal {
    Proposal::pre_shared_key(PreSharedKeyID::external(vec![id], vec![id; 32]))
}

fn gce(extensions: Vec<Extension>) -> Proposal {
    Proposal::GroupContextExtensions(GroupContextExtensions { extensions })
}

fn required(ext: ExtensionType) -> Extension {
    RequiredCapabilitiesExtension {
        extension_types: vec![ext],
        proposal_types: vec![],
        credential_types: vec![],
    }
    .to_extension()
    .unwrap()
}

fn external_init() -> Proposal {
    Proposal::ExternalInit(ExternalInit {
        kem_output: vec![7; 32].into(),
    })
}

fn reinit(version: ProtocolVersion) -> Proposal {
    Proposal::ReInit(ReInit {
        group_id: b"new".to_vec().into(),
        version,
        cipher_suite: CipherSuite(1),
        extensions: vec![],
    })
}

const C: Sender = Sender::Member(0);

// ---------------------------------------------------------------------------------------------
// Member Commits
// ---------------------------------------------------------------------------------------------

#[test]
fn a_full_valid_list_passes() {
    let g = group(4);
    let list = vec![
        m(1, Proposal::update(update_leaf(1, 1))),
        m(0, Proposal::remove(2)),
        m(3, add(10)),
        m(0, psk(1)),
        m(0, psk(2)),
        m(0, gce(vec![Extension::new(EXT, vec![])])),
    ];
    validate(&g, C, &list).unwrap();
    assert!(path_required(&list));
    assert!(!path_required(&[m(0, add(11)), m(0, psk(1))]));
}

#[test]
fn committer_must_be_a_member() {
    let g = group(2);
    let list = [m(0, psk(1))];
    assert_eq!(
        validate(&g, Sender::Member(5), &list),
        Err(E::InvalidCommitter {
            committer: Sender::Member(5)
        })
    );
    assert!(matches!(
        validate(&g, Sender::External(0), &list),
        Err(E::InvalidCommitter { .. })
    ));
    validate(&g, Sender::Member(1), &list).unwrap();
}

#[test]
fn no_update_by_the_committer() {
    let g = group(3);
    assert_eq!(
        validate(&g, C, &[m(0, Proposal::update(update_leaf(0, 0)))]),
        Err(E::UpdateByCommitter { index: 0 })
    );
    validate(
        &g,
        Sender::Member(1),
        &[m(0, Proposal::update(update_leaf(0, 0)))],
    )
    .unwrap();
}

#[test]
fn no_remove_of_the_committer() {
    let g = group(3);
    assert_eq!(
        validate(&g, C, &[m(1, Proposal::remove(0))]),
        Err(E::RemovesCommitter { index: 0 })
    );
    validate(&g, C, &[m(1, Proposal::remove(1))]).unwrap();
}

#[test]
fn no_two_proposals_on_one_leaf() {
    let g = group(4);
    // Update + Remove.
    assert_eq!(
        validate(
            &g,
            C,
            &[
                m(1, Proposal::update(update_leaf(1, 1))),
                m(2, Proposal::remove(1))
            ]
        ),
        Err(E::LeafTouchedTwice { index: 1, leaf: 1 })
    );
    // Remove + Update.
    assert_eq!(
        validate(
            &g,
            C,
            &[
                m(2, Proposal::remove(1)),
                m(1, Proposal::update(update_leaf(1, 1)))
            ]
        ),
        Err(E::LeafTouchedTwice { index: 1, leaf: 1 })
    );
    // Two Updates.
    assert_eq!(
        validate(
            &g,
            C,
            &[
                m(1, Proposal::update(update_leaf(1, 1))),
                m(1, Proposal::update(update_leaf(1, 1)))
            ]
        ),
        Err(E::LeafTouchedTwice { index: 1, leaf: 1 })
    );
    // Two Removes.
    assert_eq!(
        validate(
            &g,
            C,
            &[m(0, Proposal::remove(2)), m(3, Proposal::remove(2))]
        ),
        Err(E::LeafTouchedTwice { index: 1, leaf: 2 })
    );
    // Different leaves are fine.
    validate(
        &g,
        C,
        &[
            m(1, Proposal::update(update_leaf(1, 1))),
            m(0, Proposal::remove(2)),
            m(0, Proposal::remove(3)),
        ],
    )
    .unwrap();
}

#[test]
fn remove_must_name_a_non_blank_leaf() {
    let mut g = group(4);
    assert_eq!(
        validate(&g, C, &[m(0, Proposal::remove(99))]),
        Err(E::RemoveOfBlankLeaf {
            index: 0,
            removed: 99
        })
    );
    g.tree.remove_leaf(LeafIndex(2)).unwrap();
    assert_eq!(
        validate(&g, C, &[m(0, Proposal::remove(2))]),
        Err(E::RemoveOfBlankLeaf {
            index: 0,
            removed: 2
        })
    );
    validate(&g, C, &[m(0, Proposal::remove(3))]).unwrap();
}

#[test]
fn update_sender_must_be_a_member_and_leaf_valid() {
    let mut g = group(4);
    g.tree.remove_leaf(LeafIndex(2)).unwrap();
    assert_eq!(
        validate(&g, C, &[m(2, Proposal::update(update_leaf(2, 2)))]),
        Err(E::UpdateSenderNotMember { index: 0 })
    );
    // An external sender may not send an Update at all (§12.1.8).
    assert!(matches!(
        validate(
            &g,
            C,
            &[(Sender::External(0), Proposal::update(update_leaf(1, 1)))]
        ),
        Err(E::ProposalNotAllowedForExternalSender { index: 0, .. })
    ));
    // A KeyPackage leaf is not an Update leaf.
    let kp_leaf = key_package(1).key_package.leaf_node;
    assert!(matches!(
        validate(&g, C, &[m(1, Proposal::update(kp_leaf))]),
        Err(E::InvalidUpdateLeafNode {
            index: 0,
            error: LeafNodeValidationError::WrongLeafNodeSource { .. }
        })
    ));
    // Same encryption key as the leaf it replaces.
    let (same_key_leaf, _) = leaf_params(1, true)
        .build(
            suite(),
            LeafNodeTarget::Update {
                group_id: GROUP_ID,
                leaf_index: 1,
            },
            HpkeKeySource::KeyPair(HpkeKeyPair {
                private_key: g.members[1].private.encryption_private_key.clone(),
                public_key: g.members[1]
                    .key_package
                    .leaf_node
                    .encryption_key
                    .as_slice()
                    .to_vec(),
            }),
            &signer(1),
        )
        .unwrap();
    assert_eq!(
        validate(&g, C, &[m(1, Proposal::update(same_key_leaf))]),
        Err(E::InvalidUpdateLeafNode {
            index: 0,
            error: LeafNodeValidationError::EncryptionKeyNotChanged
        })
    );
    // Signed for another leaf index.
    assert!(matches!(
        validate(&g, C, &[m(1, Proposal::update(update_leaf(1, 3)))]),
        Err(E::InvalidUpdateLeafNode {
            index: 0,
            error: LeafNodeValidationError::InvalidSignature(_)
        })
    ));
    validate(&g, C, &[m(1, Proposal::update(update_leaf(1, 1)))]).unwrap();
}

#[test]
fn no_two_adds_of_one_client() {
    let g = group(2);
    let kp = key_package(10).key_package;
    assert_eq!(
        validate(
            &g,
            C,
            &[m(0, Proposal::add(kp.clone())), m(1, Proposal::add(kp))]
        ),
        Err(E::DuplicateAdd { index: 1, first: 0 })
    );
    // Two KeyPackages of the same client (same signature key).
    assert_eq!(
        validate(&g, C, &[m(0, add(10)), m(0, add(10))]),
        Err(E::DuplicateAdd { index: 1, first: 0 })
    );
    validate(&g, C, &[m(0, add(10)), m(0, add(11))]).unwrap();
}

#[test]
fn no_add_of_a_member_unless_removed() {
    let g = group(3);
    // Client 2 is at leaf 2.
    assert_eq!(
        validate(&g, C, &[m(0, add(2))]),
        Err(E::AddOfExistingMember { index: 0 })
    );
    validate(&g, C, &[m(0, Proposal::remove(2)), m(0, add(2))]).unwrap();
    validate(&g, C, &[m(0, add(2)), m(0, Proposal::remove(2))]).unwrap();
}

#[test]
fn add_key_package_must_be_valid() {
    let g = group(2);
    let mut tampered = key_package(10).key_package;
    tampered.signature = vec![0; 64].into();
    assert!(matches!(
        validate(&g, C, &[m(0, Proposal::add(tampered))]),
        Err(E::InvalidKeyPackage {
            index: 0,
            error: KeyPackageValidationError::InvalidSignature(_)
        })
    ));
    // Expired.
    let expired = KeyPackageParams::new(
        CipherSuite(1),
        Credential::basic(name(10)),
        Lifetime {
            not_before: 0,
            not_after: NOW - 1,
        },
    )
    .build_fresh(suite(), &signer(10))
    .unwrap()
    .key_package;
    assert!(matches!(
        validate(&g, C, &[m(0, Proposal::add(expired))]),
        Err(E::InvalidKeyPackage {
            index: 0,
            error: KeyPackageValidationError::LeafNode(
                LeafNodeValidationError::LifetimeExpired { .. }
            )
        })
    ));
    // Encryption key of an existing member.
    let stolen = HpkeKeyPair {
        private_key: g.members[1].private.encryption_private_key.clone(),
        public_key: g.members[1]
            .key_package
            .leaf_node
            .encryption_key
            .as_slice()
            .to_vec(),
    };
    let reused = KeyPackageParams::new(CipherSuite(1), Credential::basic(name(10)), lifetime())
        .build(
            suite(),
            HpkeKeySource::Generate,
            HpkeKeySource::KeyPair(stolen.clone()),
            &signer(10),
        )
        .unwrap()
        .key_package;
    assert_eq!(
        validate(&g, C, &[m(0, Proposal::add(reused.clone()))]),
        Err(E::InvalidKeyPackage {
            index: 0,
            error: KeyPackageValidationError::LeafNode(
                LeafNodeValidationError::EncryptionKeyNotUnique
            )
        })
    );
    // ... unless that member is removed by the same Commit.
    validate(
        &g,
        C,
        &[m(0, Proposal::remove(1)), m(0, Proposal::add(reused))],
    )
    .unwrap();
}

#[test]
fn new_leaves_must_not_share_keys() {
    let g = group(3);
    let pair = suite().hpke_generate_key_pair().unwrap();
    let kp = |seed: u8| {
        KeyPackageParams::new(CipherSuite(1), Credential::basic(name(seed)), lifetime())
            .build(
                suite(),
                HpkeKeySource::Generate,
                HpkeKeySource::KeyPair(pair.clone()),
                &signer(seed),
            )
            .unwrap()
            .key_package
    };
    assert_eq!(
        validate(
            &g,
            C,
            &[m(0, Proposal::add(kp(10))), m(0, Proposal::add(kp(11)))]
        ),
        Err(E::NewLeafEncryptionKeyCollision { index: 1, other: 0 })
    );
    // An Update's new signature key equal to an added client's.
    let update_with_key_10 = leaf_params(1, true)
        .build_fresh(
            suite(),
            LeafNodeTarget::Update {
                group_id: GROUP_ID,
                leaf_index: 1,
            },
            &signer(10),
        )
        .unwrap()
        .0;
    // BasicIdentityProvider accepts the same credential with a new key.
    let list = [
        m(1, Proposal::update(update_with_key_10)),
        m(0, Proposal::add(key_package(10).key_package)),
    ];
    assert_eq!(
        validate(&g, C, &list),
        Err(E::NewLeafSignatureKeyCollision { index: 1, other: 0 })
    );
}

#[test]
fn psk_rules() {
    let g = group(2);
    let short = Proposal::pre_shared_key(PreSharedKeyID::external(vec![1], vec![1; 16]));
    assert_eq!(
        validate(&g, C, &[m(0, short)]),
        Err(E::PskNonceLength {
            index: 0,
            expected: 32,
            found: 16
        })
    );
    assert_eq!(
        validate(&g, C, &[m(0, psk(1)), m(1, psk(2)), m(1, psk(1))]),
        Err(E::DuplicatePsk { index: 2, first: 0 })
    );
    // Same psk_id, different nonces: different PreSharedKeyIDs.
    let other_nonce = Proposal::pre_shared_key(PreSharedKeyID::external(vec![1], vec![9; 32]));
    validate(&g, C, &[m(0, psk(1)), m(0, other_nonce)]).unwrap();

    let reinit_psk = Proposal::pre_shared_key(PreSharedKeyID::resumption(
        ResumptionPSKUsage::Reinit,
        b"old".to_vec(),
        3,
        vec![0; 32],
    ));
    let branch_psk = Proposal::pre_shared_key(PreSharedKeyID::resumption(
        ResumptionPSKUsage::Branch,
        b"old".to_vec(),
        3,
        vec![0; 32],
    ));
    assert_eq!(
        validate(&g, C, &[m(0, reinit_psk.clone())]),
        Err(E::PskUsageNotAllowed {
            index: 0,
            usage: ResumptionPSKUsage::Reinit
        })
    );
    assert!(matches!(
        validate(&g, C, &[m(0, branch_psk.clone())]),
        Err(E::PskUsageNotAllowed { .. })
    ));
    let reinit_ctx = ctx(&g.tree, &[]).with_psk_usage(PskUsageContext::ReInit);
    validate_proposal_list(&reinit_ctx, C, &[m(0, reinit_psk)]).unwrap();
    let branch_ctx = ctx(&g.tree, &[]).with_psk_usage(PskUsageContext::Branch);
    validate_proposal_list(&branch_ctx, C, &[m(0, branch_psk)]).unwrap();
}

#[test]
fn reinit_rules() {
    let g = group(2);
    validate(&g, C, &[m(1, reinit(ProtocolVersion::MLS10))]).unwrap();
    assert_eq!(
        validate(&g, C, &[m(1, reinit(ProtocolVersion::MLS10)), m(0, psk(1))]),
        Err(E::ReInitNotAlone { index: 0 })
    );
    assert_eq!(
        validate(&g, C, &[m(0, psk(1)), m(1, reinit(ProtocolVersion::MLS10))]),
        Err(E::ReInitNotAlone { index: 1 })
    );
    assert!(matches!(
        validate(&g, C, &[m(1, reinit(ProtocolVersion(0)))]),
        Err(E::ReInitVersionDowngrade { index: 0, .. })
    ));
}

#[test]
fn no_external_init_in_a_member_commit() {
    let g = group(2);
    assert_eq!(
        validate(&g, C, &[m(0, external_init())]),
        Err(E::ExternalInitInMemberCommit { index: 0 })
    );
}

#[test]
fn sender_type_rules() {
    let g = group(2);
    assert_eq!(
        validate(&g, C, &[(Sender::NewMemberProposal, Proposal::remove(1))]),
        Err(E::NewMemberProposalNotAdd { index: 0 })
    );
    validate(&g, C, &[(Sender::NewMemberProposal, add(10))]).unwrap();
    validate(&g, C, &[(Sender::External(0), Proposal::remove(1))]).unwrap();
    assert_eq!(
        validate(&g, C, &[(Sender::NewMemberCommit, add(10))]),
        Err(E::NewMemberCommitSender { index: 0 })
    );
}

#[test]
fn group_context_extensions_rules() {
    // Client 2 does not support EXT.
    let g = group_with(3, &[2]);
    assert_eq!(
        validate(&g, C, &[m(0, gce(vec![])), m(1, gce(vec![]))]),
        Err(E::MultipleGroupContextExtensions { index: 1 })
    );
    assert_eq!(
        validate(&g, C, &[m(0, gce(vec![required(EXT)]))]),
        Err(E::GroupContextExtensionsUnsupported {
            index: 0,
            leaf: 2,
            missing: MissingCapability::Extension(EXT)
        })
    );
    // An extension in use must be supported too (§13.4).
    assert!(matches!(
        validate(&g, C, &[m(0, gce(vec![Extension::new(EXT, vec![])]))]),
        Err(E::GroupContextExtensionsUnsupported { leaf: 2, .. })
    ));
    // Fine once the member that lacks it is removed by the same Commit.
    validate(
        &g,
        C,
        &[m(0, gce(vec![required(EXT)])), m(0, Proposal::remove(2))],
    )
    .unwrap();
    // Added members are checked against the new extensions.
    let without = Proposal::add(key_package_with(10, false).key_package);
    assert!(matches!(
        validate(
            &g,
            C,
            &[
                m(0, gce(vec![required(EXT)])),
                m(0, Proposal::remove(2)),
                m(0, without.clone())
            ]
        ),
        Err(E::InvalidKeyPackage {
            index: 2,
            error: KeyPackageValidationError::LeafNode(
                LeafNodeValidationError::RequiredExtensionNotSupported(EXT)
            )
        })
    ));
    validate(&g, C, &[m(0, without)]).unwrap();
    // Duplicate extension types.
    assert!(matches!(
        validate(
            &g,
            C,
            &[m(
                0,
                gce(vec![
                    Extension::new(ExtensionType(0xff01), vec![]),
                    Extension::new(ExtensionType(0xff01), vec![])
                ])
            )]
        ),
        Err(E::InvalidGroupContextExtensions { index: 0, .. })
    ));
    // A malformed external_senders.
    assert!(matches!(
        validate(
            &g,
            C,
            &[m(
                0,
                gce(vec![Extension::new(
                    ExtensionType::EXTERNAL_SENDERS,
                    vec![0xff]
                )])
            )]
        ),
        Err(E::MalformedExternalSenders { index: 0, .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// External Commits (§12.2 second list, §12.4.3.2)
// ---------------------------------------------------------------------------------------------

fn x(p: Proposal) -> (Sender, Proposal) {
    (Sender::NewMemberCommit, p)
}

/// The joiner's UpdatePath leaf, client `seed`.
fn joiner_leaf(seed: u8) -> LeafNode {
    leaf_params(seed, true)
        .build_fresh(
            suite(),
            LeafNodeTarget::Commit {
                group_id: GROUP_ID,
                leaf_index: 0,
                parent_hash: vec![],
            },
            &signer(seed),
        )
        .unwrap()
        .0
}

#[test]
fn external_commit_rules() {
    let g = group(3);
    let joiner = joiner_leaf(2);
    let ext_ctx = ctx(&g.tree, &[]).with_commit_leaf(&joiner);
    let check = |list: &[(Sender, Proposal)]| {
        validate_proposal_list(&ext_ctx, Sender::NewMemberCommit, list)
    };
    // Join, resync (client 2 removes its old leaf 2), PSKs.
    check(&[x(external_init())]).unwrap();
    check(&[
        x(psk(1)),
        x(Proposal::remove(2)),
        x(external_init()),
        x(psk(2)),
    ])
    .unwrap();

    assert_eq!(
        check(&[x(psk(1))]),
        Err(E::ExternalCommitWithoutExternalInit)
    );
    assert_eq!(
        check(&[x(external_init()), x(external_init())]),
        Err(E::ExternalCommitMultipleExternalInit { index: 1 })
    );
    assert_eq!(
        check(&[
            x(external_init()),
            x(Proposal::remove(2)),
            x(Proposal::remove(1))
        ]),
        Err(E::ExternalCommitMultipleRemoves { index: 2 })
    );
    assert!(matches!(
        check(&[x(external_init()), x(add(10))]),
        Err(E::ExternalCommitForbiddenProposal { index: 1, .. })
    ));
    assert!(matches!(
        check(&[x(external_init()), x(gce(vec![]))]),
        Err(E::ExternalCommitForbiddenProposal { index: 1, .. })
    ));
    assert!(matches!(
        check(&[x(external_init()), x(reinit(ProtocolVersion::MLS10))]),
        Err(E::ExternalCommitForbiddenProposal { index: 1, .. })
    ));
    // A proposal by reference.
    let by_ref = ResolvedProposal {
        sender: Sender::Member(1),
        proposal: psk(1),
        reference: Some(vec![1; 32].into()),
    };
    let init = ResolvedProposal::by_value(Sender::NewMemberCommit, external_init());
    assert_eq!(
        validate_proposal_list(&ext_ctx, Sender::NewMemberCommit, &[init, by_ref]),
        Err(E::ExternalCommitProposalByReference { index: 1 })
    );
    // Resync of someone else's leaf: client 2 removing client 1.
    assert!(matches!(
        check(&[x(external_init()), x(Proposal::remove(1))]),
        Err(E::ExternalCommitIdentityMismatch { index: 1, .. })
    ));
    assert_eq!(
        check(&[x(external_init()), x(Proposal::remove(7))]),
        Err(E::RemoveOfBlankLeaf {
            index: 1,
            removed: 7
        })
    );
    assert!(matches!(
        check(&[
            x(external_init()),
            x(Proposal::pre_shared_key(PreSharedKeyID::external(
                vec![1],
                vec![0; 3]
            )))
        ]),
        Err(E::PskNonceLength { index: 1, .. })
    ));
    // Without the UpdatePath leaf.
    assert_eq!(
        validate_proposal_list(
            &ctx(&g.tree, &[]),
            Sender::NewMemberCommit,
            &[x(external_init())]
        ),
        Err(E::ExternalCommitWithoutPathLeaf)
    );
}

// ---------------------------------------------------------------------------------------------
// Store + filtering (the committer's side)
// ---------------------------------------------------------------------------------------------

#[test]
fn filter_keeps_a_valid_list() {
    let g = group(5);
    let mut store = ProposalStore::new();
    let mut r = 0u8;
    let mut put = |sender: Sender, p: Proposal| {
        r += 1;
        store.insert(vec![r; 32].into(), sender, p).unwrap();
    };
    let old_update = update_leaf(1, 1);
    let new_update = update_leaf(1, 1);
    put(Sender::Member(1), Proposal::update(old_update)); // 0: superseded by 1
    put(Sender::Member(1), Proposal::update(new_update.clone())); // 1: kept
    put(Sender::Member(2), Proposal::update(update_leaf(2, 2))); // 2: dropped, Remove of 2
    put(Sender::Member(3), Proposal::remove(2)); // 3: kept
    put(Sender::Member(4), Proposal::remove(2)); // 4: second Remove of 2
    put(Sender::Member(3), add(10)); // 5: kept
    put(Sender::Member(4), add(10)); // 6: duplicate Add (same client)
    put(Sender::Member(1), reinit(ProtocolVersion::MLS10)); // 7: ReInit with others
    put(Sender::Member(3), Proposal::update(update_leaf(3, 3))); // 8: kept
    put(Sender::Member(4), Proposal::remove(0)); // 9: removes the committer
    put(Sender::Member(0), Proposal::update(update_leaf(0, 0))); // 10: committer's Update
    put(Sender::Member(4), add(3)); // 11: client 3 already in the group
    put(
        Sender::Member(1),
        gce(vec![required(ExtensionType(0xff09))]),
    ); // 12: unsupported
    let mut candidates = store.candidates();
    candidates.push(ResolvedProposal::by_value(C, psk(1))); // 13: kept
    candidates.push(ResolvedProposal::by_value(C, psk(1))); // 14: duplicate PSK
    candidates.push(ResolvedProposal::by_value(C, external_init())); // 15: not here

    let context = ctx(&g.tree, &[]);
    let filtered = filter_proposals(&context, C, candidates.clone()).unwrap();
    let kept: Vec<_> = filtered.kept.iter().map(|p| p.proposal.clone()).collect();
    assert_eq!(
        kept,
        vec![
            Proposal::update(new_update),
            Proposal::remove(2),
            candidates[5].proposal.clone(),
            candidates[8].proposal.clone(),
            psk(1),
        ]
    );
    assert_eq!(filtered.dropped.len(), candidates.len() - kept.len());
    validate_proposal_list(&context, C, &filtered.kept).unwrap();
    // By reference where they came from the store, by value otherwise.
    assert!(filtered.kept[0].reference.is_some());
    assert!(filtered.kept[4].reference.is_none());

    // A lone ReInit is kept.
    let lone = vec![
        ResolvedProposal::by_value(C, reinit(ProtocolVersion::MLS10)),
        ResolvedProposal::by_value(C, reinit(ProtocolVersion::MLS10)),
    ];
    let filtered = filter_proposals(&context, C, lone).unwrap();
    assert_eq!(filtered.kept.len(), 1);
    assert!(matches!(
        filtered.dropped[0].reason,
        E::ReInitNotAlone { .. }
    ));

    // Unknown references are a typed error when resolving a received Commit.
    assert!(store
        .resolve(
            C,
            &[mls_engine::codec::ProposalOrRef::Reference(
                vec![99; 32].into()
            )]
        )
        .is_err());
}

// ---------------------------------------------------------------------------------------------
// Application (§12.3)
// ---------------------------------------------------------------------------------------------

fn leaf_key(tree: &RatchetTree, i: u32) -> Option<Vec<u8>> {
    tree.leaf(LeafIndex(i))
        .map(|l| l.signature_key.as_slice().to_vec())
}

fn sig(seed: u8) -> Vec<u8> {
    signer(seed).public_key.clone()
}

#[test]
fn apply_in_rfc_order_adds_fill_blanks_left_by_removes() {
    let g = group(4);
    let mut tree = g.tree.clone();
    let mut extensions = vec![];
    let new_leaf_1 = update_leaf(1, 1);
    let kp10 = key_package(10);
    let kp11 = key_package(11);
    let kp12 = key_package(12);
    // Listed adds-first: application order must still be Update, Remove, Add.
    let list = vec![
        m(0, Proposal::add(kp10.key_package.clone())),
        m(0, Proposal::remove(2)),
        m(1, Proposal::update(new_leaf_1.clone())),
        m(0, Proposal::add(kp11.key_package.clone())),
        m(3, Proposal::remove(0)),
        m(0, Proposal::add(kp12.key_package.clone())),
        m(0, psk(2)),
        m(0, psk(1)),
        m(0, gce(vec![Extension::new(EXT, vec![1])])),
    ];
    let applied = apply_proposals(suite(), &mut tree, &mut extensions, &list).unwrap();

    assert!(applied.extensions_changed);
    assert_eq!(extensions, vec![Extension::new(EXT, vec![1])]);
    assert_eq!(applied.updated, vec![LeafIndex(1)]);
    let removed: Vec<_> = applied.removed.iter().map(|r| r.leaf_index).collect();
    assert_eq!(removed, vec![LeafIndex(2), LeafIndex(0)]);
    assert_eq!(
        applied.removed[0].leaf_node,
        g.members[2].key_package.leaf_node
    );
    // Adds: leftmost blank first (0, then 2), then the tree grows (4).
    let added: Vec<_> = applied.added.iter().map(|a| a.leaf_index).collect();
    assert_eq!(added, vec![LeafIndex(0), LeafIndex(2), LeafIndex(4)]);
    assert_eq!(applied.added[0].key_package_ref, kp10.reference);
    assert_eq!(applied.added[2].key_package, kp12.key_package);
    assert_eq!(tree.n_leaves(), 8);
    assert_eq!(leaf_key(&tree, 0), Some(sig(10)));
    assert_eq!(tree.leaf(LeafIndex(1)), Some(&new_leaf_1));
    assert_eq!(leaf_key(&tree, 2), Some(sig(11)));
    assert_eq!(leaf_key(&tree, 3), Some(sig(3)));
    assert_eq!(leaf_key(&tree, 4), Some(sig(12)));
    // PSKs in list order.
    let psk_ids: Vec<_> = applied
        .psks
        .iter()
        .map(|p| p.psk_nonce.as_slice()[0])
        .collect();
    assert_eq!(psk_ids, vec![2, 1]);
    assert!(applied.external_init.is_none() && applied.reinit.is_none());
}

#[test]
fn apply_truncates_after_removes_and_marks_unmerged_leaves() {
    // Five members: 8 leaves; removing leaf 4 shrinks to 4 leaves.
    let g = group(5);
    let mut tree = g.tree.clone();
    let mut extensions = vec![];
    let applied = apply_proposals(
        suite(),
        &mut tree,
        &mut extensions,
        &[m(0, Proposal::remove(4))],
    )
    .unwrap();
    assert_eq!(tree.n_leaves(), 4);
    assert!(!applied.extensions_changed);

    // Three members (leaf 3 blank) and a parent above leaves 2 and 3: the added leaf is
    // unmerged there.
    let mut g = group(3);
    let parent_key = suite().hpke_generate_key_pair().unwrap().public_key;
    g.tree
        .set_parent(
            NodeIndex(5),
            ParentNode {
                encryption_key: parent_key.into(),
                parent_hash: vec![].into(),
                unmerged_leaves: vec![],
            },
        )
        .unwrap();
    let applied = apply_proposals(suite(), &mut g.tree, &mut extensions, &[m(0, add(10))]).unwrap();
    assert_eq!(applied.added[0].leaf_index, LeafIndex(3));
    assert_eq!(
        g.tree.parent_node(NodeIndex(5)).unwrap().unmerged_leaves,
        vec![3]
    );
}

#[test]
fn apply_records_external_init_and_reinit() {
    let g = group(2);
    let mut tree = g.tree.clone();
    let mut extensions = vec![];
    let applied = apply_proposals(
        suite(),
        &mut tree,
        &mut extensions,
        &[x(external_init()), x(Proposal::remove(1))],
    )
    .unwrap();
    assert_eq!(
        applied.external_init.unwrap().kem_output.as_slice(),
        &[7; 32][..]
    );
    assert_eq!(tree.leaf(LeafIndex(1)), None);

    let mut tree = g.tree.clone();
    let applied = apply_proposals(
        suite(),
        &mut tree,
        &mut extensions,
        &[m(1, reinit(ProtocolVersion::MLS10))],
    )
    .unwrap();
    assert_eq!(applied.reinit.unwrap().group_id.as_slice(), b"new");
    assert_eq!(tree, g.tree);
}

#[test]
fn apply_errors_leave_everything_unchanged() {
    let g = group(4);
    let cases: Vec<(Vec<(Sender, Proposal)>, ApplyError)> = vec![
        (
            vec![
                m(1, Proposal::update(update_leaf(1, 1))),
                m(0, Proposal::remove(9)),
            ],
            ApplyError::RemoveOfBlankLeaf { index: 1 },
        ),
        (
            vec![m(0, Proposal::remove(2)), m(0, Proposal::remove(2))],
            ApplyError::LeafTouchedTwice { index: 1, leaf: 2 },
        ),
        (
            vec![
                m(0, Proposal::remove(1)),
                m(7, Proposal::update(update_leaf(1, 1))),
            ],
            ApplyError::UpdateSenderNotMember { index: 1 },
        ),
        (
            vec![m(0, gce(vec![])), m(0, gce(vec![]))],
            ApplyError::MultipleGroupContextExtensions,
        ),
    ];
    for (list, expected) in cases {
        let mut tree = g.tree.clone();
        let mut extensions = vec![Extension::new(EXT, vec![])];
        assert_eq!(
            apply_proposals(suite(), &mut tree, &mut extensions, &list),
            Err(expected)
        );
        assert_eq!(tree, g.tree);
        assert_eq!(extensions, vec![Extension::new(EXT, vec![])]);
    }
}

#[test]
fn valid_lists_apply_to_trees_with_unique_keys() {
    let g = group(4);
    let list = vec![
        m(1, Proposal::update(update_leaf(1, 1))),
        m(0, Proposal::remove(2)),
        m(0, add(2)),
        m(3, add(10)),
    ];
    validate(&g, C, &list).unwrap();
    let mut tree = g.tree.clone();
    apply_proposals(suite(), &mut tree, &mut vec![], &list).unwrap();
    assert!(tree.keys_are_unique());
    let _: &KeyPackage = &g.members[0].key_package;
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A candidate list from random operations on a group of `n` members (client `i` at leaf
    /// `i`; the last member does not support `EXT`).
    fn candidates(n: u8, ops: &[(u8, u8, u8)]) -> Vec<ResolvedProposal> {
        ops.iter()
            .map(|&(kind, a, b)| {
                let member = Sender::Member(u32::from(b % n));
                let (sender, proposal) = match kind % 5 {
                    0 => {
                        let leaf = a % n;
                        (
                            Sender::Member(u32::from(leaf)),
                            Proposal::update(update_leaf(leaf, u32::from(leaf))),
                        )
                    }
                    1 => (member, Proposal::remove(u32::from(a % (n + 2)))),
                    2 => (member, add(a % (n + 4))),
                    3 => (member, psk(a % 3)),
                    _ => {
                        let extensions = if a % 2 == 0 {
                            vec![]
                        } else {
                            vec![required(EXT)]
                        };
                        (member, gce(extensions))
                    }
                };
                ResolvedProposal {
                    sender,
                    proposal,
                    reference: Some(vec![kind, a, b].into()),
                }
            })
            .collect()
    }

    fn check_applies(g: &Group, list: &[ResolvedProposal]) {
        let mut tree = g.tree.clone();
        let mut extensions = vec![];
        let applied = apply_proposals(suite(), &mut tree, &mut extensions, list)
            .expect("a valid list applies");
        assert!(tree.keys_are_unique());
        assert_eq!(
            tree.leaves().count(),
            g.members.len() - applied.removed.len() + applied.added.len()
        );
        for added in &applied.added {
            assert_eq!(
                tree.leaf(added.leaf_index),
                Some(&added.key_package.leaf_node)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// What the committer keeps is valid, and every valid list applies to a tree whose keys
        /// stay unique.
        #[test]
        fn filtered_lists_are_valid_and_apply(
            n in 2u8..7,
            committer in 0u8..7,
            ops in proptest::collection::vec((0u8..5, 0u8..16, 0u8..16), 0..10),
        ) {
            let n = n.max(2);
            let committer = Sender::Member(u32::from(committer % n));
            let g = group_with(n, &[n - 1]);
            let context = ctx(&g.tree, &[]);
            let list = candidates(n, &ops);

            if validate_proposal_list(&context, committer, &list).is_ok() {
                check_applies(&g, &list);
            }
            let filtered = filter_proposals(&context, committer, list.clone()).unwrap();
            prop_assert_eq!(filtered.kept.len() + filtered.dropped.len(), list.len());
            prop_assert!(validate_proposal_list(&context, committer, &filtered.kept).is_ok());
            check_applies(&g, &filtered.kept);
        }
    }
}
