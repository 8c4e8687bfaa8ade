//! Design hooks H1-H4 of issue 4 (DESIGN §4), end to end through the public API:
//!
//! * H1 given key material: LeafNodes, KeyPackages, Update proposals, Commits with a path and
//!   external Commits built from given secrets are functions of those secrets (the public keys
//!   are recomputed here independently) and are processed by other members.
//! * H2 sibling commits: two `Group` instances at one leaf index from the same state; one
//!   commits (or sends an Update), the other processes it through an `OwnLeafResolver`. Wrong
//!   or missing secrets are typed errors and leave the state byte-identical.
//! * H3 own-leaf PrivateMessages: unused generations decrypt, consumed ones do not; with
//!   `retain_sent_keys` a generation we sent stays open until `confirm_sent`, within the
//!   configurable out-of-order window.
//! * H4 the reuse guard as a function of the key-schedule nonce, checked by decrypting and by
//!   recomputing the nonce XOR.

use std::cell::RefCell;

use mls_engine::codec::{
    encode, Commit, Credential, Extension, ExtensionType, FramedContent, FramedContentBody,
    GroupContext, LeafNode, Lifetime, MlsMessage, MlsMessageBody, Proposal, ProtocolVersion,
    Sender, UpdatePath,
};
use mls_engine::crypto::{
    CipherSuite, CryptoProvider as _, HpkeKeyPair, MlsCrypto as _, RustCrypto, Secret,
    SignatureKeyPair, SuiteProvider,
};
use mls_engine::framing::{
    decrypt_sender_data, protect_private, sign_private, unprotect_private, Padding,
    PrivateMessageError, PrivateMessageOptions, ReuseGuard,
};
use mls_engine::group::{
    CommitOptions, ExternalCommitOptions, Group, GroupConfig, GroupError, HandshakeWireFormat,
    LeafSecrets, OwnLeaf, OwnLeafResolver, ProcessedMessage, Services, SiblingCommitSecrets,
};
use mls_engine::hook::HookError;
use mls_engine::messages::{CreationError, HpkeKeySource, KeyPackageParams, LeafNodeParams};
use mls_engine::schedule::{RatchetType, SecretTree};
use mls_engine::tree::{LeafIndex, TreeKemError};

static P: RustCrypto = RustCrypto;
const NOW: u64 = 1_700_000_000;
const SUITES: [CipherSuite; 3] = [CipherSuite(1), CipherSuite(2), CipherSuite(3)];
/// The unknown (non-default) extension type the issue names.
const UNKNOWN: ExtensionType = ExtensionType(0xF0C1);

fn svc() -> Services<'static> {
    Services::new(&P)
}

fn suite(cipher_suite: CipherSuite) -> &'static dyn SuiteProvider {
    P.suite(cipher_suite).unwrap()
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 3600 * 24 * 90,
    }
}

/// The given key material of one leaf (DESIGN §4 H1), all from a one-octet tag.
struct Given {
    cipher_suite: CipherSuite,
    leaf_seed: Vec<u8>,
    init_seed: Vec<u8>,
    path_secret_0: Vec<u8>,
    signature_seed: Vec<u8>,
    extensions: Vec<Extension>,
}

impl Given {
    fn new(cipher_suite: CipherSuite, tag: u8) -> Self {
        let cs = suite(cipher_suite);
        let nh = cs.params().hash_len();
        let seed = cs.params().kem_seed_len();
        Self {
            cipher_suite,
            leaf_seed: vec![tag; seed],
            init_seed: vec![tag ^ 0x40; seed],
            path_secret_0: vec![tag ^ 0x80; nh],
            signature_seed: vec![tag ^ 0xC0; 32],
            extensions: vec![Extension::new(UNKNOWN, vec![tag, 0xF0, 0xC1])],
        }
    }

    /// The engine's `LeafSecrets` value of the same material.
    fn engine(&self) -> LeafSecrets {
        LeafSecrets {
            leaf_seed: Secret::new(self.leaf_seed.clone()),
            init_seed: Secret::new(self.init_seed.clone()),
            path_secret_0: self.path_secret_0(),
            signature_key: self.signer(),
            extensions: self.extensions.clone(),
        }
    }

    fn leaf_source(&self) -> HpkeKeySource {
        HpkeKeySource::Seed(Secret::new(self.leaf_seed.clone()))
    }

    fn init_source(&self) -> HpkeKeySource {
        HpkeKeySource::Seed(Secret::new(self.init_seed.clone()))
    }

    fn path_secret_0(&self) -> Secret {
        Secret::new(self.path_secret_0.clone())
    }

    /// `KEM.DeriveKeyPair(leaf_seed)`, computed here.
    fn leaf_key(&self) -> HpkeKeyPair {
        suite(self.cipher_suite)
            .hpke_derive_key_pair(&self.leaf_seed)
            .unwrap()
    }

    fn signer(&self) -> SignatureKeyPair {
        suite(self.cipher_suite)
            .signature_key_pair_from_seed(&self.signature_seed)
            .unwrap()
    }

    fn leaf_params(&self, name: &[u8]) -> LeafNodeParams {
        let mut params = LeafNodeParams::new(self.cipher_suite, Credential::basic(name.to_vec()));
        for e in &self.extensions {
            params = params.extension(e.clone());
        }
        params
    }

    /// The public key of the `n`-th node of the filtered direct path (RFC 9420 §7.4):
    /// `path_secret[n] = DeriveSecret(path_secret[n-1], "path")`,
    /// `node_secret[n] = DeriveSecret(path_secret[n], "node")`, `DeriveKeyPair(node_secret)`.
    fn path_node_public_key(&self, n: usize) -> Vec<u8> {
        let cs = suite(self.cipher_suite);
        let mut path_secret = self.path_secret_0();
        for _ in 0..n {
            path_secret = cs.derive_secret(path_secret.as_bytes(), "path").unwrap();
        }
        let node_secret = cs.derive_secret(path_secret.as_bytes(), "node").unwrap();
        cs.hpke_derive_key_pair(node_secret.as_bytes())
            .unwrap()
            .public_key
    }

    fn commit_options(&self) -> CommitOptions {
        CommitOptions {
            leaf_key: Some(self.leaf_source()),
            path_secret_0: Some(self.path_secret_0()),
            ..CommitOptions::new().with_path()
        }
    }

    fn sibling_secrets(&self, signature_key: Option<SignatureKeyPair>) -> SiblingCommitSecrets {
        SiblingCommitSecrets {
            leaf_key: self.leaf_key(),
            path_secret_0: self.path_secret_0(),
            signature_key,
        }
    }
}

/// An `OwnLeafResolver` answering with fixed values and recording the leaves it was shown.
#[derive(Default)]
struct Resolver {
    commit: Option<SiblingCommitSecrets>,
    update: Option<HpkeKeyPair>,
    external_init_seed: Option<Secret>,
    seen: RefCell<Vec<LeafNode>>,
}

impl Resolver {
    fn commit(secrets: SiblingCommitSecrets) -> Self {
        Self {
            commit: Some(secrets),
            ..Self::default()
        }
    }

    fn update(key: HpkeKeyPair) -> Self {
        Self {
            update: Some(key),
            ..Self::default()
        }
    }
}

impl OwnLeafResolver for Resolver {
    fn commit_secrets(&self, new_leaf: &LeafNode) -> Result<SiblingCommitSecrets, HookError> {
        self.seen.borrow_mut().push(new_leaf.clone());
        self.commit.clone().ok_or(HookError::Unsupported)
    }

    fn update_leaf_key(&self, new_leaf: &LeafNode) -> Result<HpkeKeyPair, HookError> {
        self.seen.borrow_mut().push(new_leaf.clone());
        self.update.clone().ok_or(HookError::Unsupported)
    }

    fn external_init_seed(&self, new_leaf: &LeafNode) -> Result<Secret, HookError> {
        self.seen.borrow_mut().push(new_leaf.clone());
        self.external_init_seed
            .clone()
            .ok_or(HookError::Unsupported)
    }
}

fn config(wire: HandshakeWireFormat) -> GroupConfig {
    GroupConfig {
        handshake_wire_format: wire,
        ..GroupConfig::default()
    }
}

/// Alice (leaf 0) creates a group and adds Bob (1) and Carol (2) in one commit.
fn three(cipher_suite: CipherSuite, config: GroupConfig) -> Vec<Group> {
    let cs = suite(cipher_suite);
    let alice_key = cs.signature_generate_key_pair().unwrap();
    let mut alice = Group::create(
        &svc(),
        config,
        b"hooks".to_vec(),
        cipher_suite,
        OwnLeaf {
            params: LeafNodeParams::new(cipher_suite, Credential::basic(b"alice".to_vec())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: alice_key,
        },
        lifetime(),
        vec![],
    )
    .unwrap();
    let mut joiners = Vec::new();
    let mut options = CommitOptions::new();
    for name in [&b"bob"[..], b"carol"] {
        let key = cs.signature_generate_key_pair().unwrap();
        let kp = KeyPackageParams::new(cipher_suite, Credential::basic(name.to_vec()), lifetime())
            .build_fresh(cs, &key)
            .unwrap();
        options = options.proposal(Proposal::add(kp.key_package.clone()));
        joiners.push((kp, key));
    }
    let out = alice.commit(&svc(), options, NOW).unwrap();
    alice.merge_pending_commit().unwrap();
    let welcome = out.welcome.unwrap();
    let mut groups = vec![alice];
    for (kp, key) in joiners {
        groups
            .push(Group::join_from_welcome(&svc(), config, &welcome, &kp, key, None, NOW).unwrap());
    }
    groups
}

/// A second instance of the same member: the state transferred through `to_bytes` (H8).
fn sibling_of(group: &Group) -> Group {
    Group::from_bytes(&group.to_bytes().unwrap()).unwrap()
}

/// All groups agree on the epoch, the epoch authenticator and an exporter output.
fn assert_agree(groups: &[&Group]) {
    let first = groups[0];
    let export = first.export_secret(&svc(), "hooks", b"ctx", 32).unwrap();
    for g in &groups[1..] {
        assert_eq!(g.epoch(), first.epoch());
        assert_eq!(g.epoch_authenticator(), first.epoch_authenticator());
        assert_eq!(
            g.export_secret(&svc(), "hooks", b"ctx", 32)
                .unwrap()
                .as_bytes(),
            export.as_bytes()
        );
    }
}

/// Processing `message` fails and leaves `group` byte-identical; returns the error.
fn rejected(group: &mut Group, services: &Services<'_>, message: &MlsMessage) -> GroupError {
    let before = group.to_bytes().unwrap();
    let err = group.process(services, message, NOW).unwrap_err();
    assert_eq!(
        before,
        group.to_bytes().unwrap(),
        "state changed on {err:?}"
    );
    err
}

fn expect_application(result: ProcessedMessage, sender: u32, data: &[u8]) {
    match result {
        ProcessedMessage::Application {
            sender: s, data: d, ..
        } => {
            assert_eq!(s, LeafIndex(sender));
            assert_eq!(d, data);
        }
        other => panic!("expected application data, got {other:?}"),
    }
}

fn public_commit(message: &MlsMessage) -> &Commit {
    match &message.body {
        MlsMessageBody::PublicMessage(m) => match &m.content.body {
            FramedContentBody::Commit(c) => c,
            other => panic!("not a commit: {other:?}"),
        },
        _ => panic!("not a PublicMessage"),
    }
}

fn public_path(message: &MlsMessage) -> &UpdatePath {
    public_commit(message).path.as_ref().expect("a path")
}

fn public_update_leaf(message: &MlsMessage) -> &LeafNode {
    match &message.body {
        MlsMessageBody::PublicMessage(m) => match &m.content.body {
            FramedContentBody::Proposal(Proposal::Update(u)) => &u.leaf_node,
            other => panic!("not an Update: {other:?}"),
        },
        _ => panic!("not a PublicMessage"),
    }
}

/// Alice and Carol (everyone but Bob at leaf 1).
fn others_of_bob(g: &mut [Group]) -> impl Iterator<Item = &mut Group> {
    g.iter_mut()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, m)| m)
}

fn has_unknown_extension(leaf: &LeafNode) -> bool {
    leaf.extensions.iter().any(|e| e.extension_type == UNKNOWN)
        && leaf.capabilities.extensions.contains(&UNKNOWN)
}

// ---------------------------------------------------------------------------------------------
// H1: given key material
// ---------------------------------------------------------------------------------------------

/// H1: a KeyPackage and a creator's LeafNode from given seeds carry exactly the keys those
/// seeds derive; the same secrets give the same public keys, other secrets other keys; the
/// KeyPackage is added by a member and its owner joins.
#[test]
fn h1_key_package_and_leaf_node_are_functions_of_the_secrets() {
    for cipher_suite in SUITES {
        let cs = suite(cipher_suite);
        let s = Given::new(cipher_suite, 1);
        let build = |s: &Given| {
            KeyPackageParams::new(
                cipher_suite,
                Credential::basic(b"dave".to_vec()),
                lifetime(),
            )
            .with_leaf(s.leaf_params(b"dave"))
            .build(cs, s.init_source(), s.leaf_source(), &s.signer())
            .unwrap()
        };
        let kp1 = build(&s);
        let kp2 = build(&s);
        let k = &kp1.key_package;
        assert_eq!(k.init_key, kp2.key_package.init_key);
        assert_eq!(
            k.leaf_node.encryption_key,
            kp2.key_package.leaf_node.encryption_key
        );
        assert_eq!(
            k.leaf_node.signature_key,
            kp2.key_package.leaf_node.signature_key
        );
        // Recomputed here from the secrets.
        assert_eq!(
            k.leaf_node.encryption_key.as_slice(),
            s.leaf_key().public_key
        );
        assert_eq!(
            k.init_key.as_slice(),
            cs.hpke_derive_key_pair(&s.init_seed).unwrap().public_key
        );
        assert_eq!(k.leaf_node.signature_key.as_slice(), s.signer().public_key);
        assert!(has_unknown_extension(&k.leaf_node));
        // Other secrets, other keys.
        let other = build(&Given::new(cipher_suite, 2));
        assert_ne!(other.key_package.init_key, k.init_key);
        assert_ne!(
            other.key_package.leaf_node.encryption_key,
            k.leaf_node.encryption_key
        );
        assert_ne!(
            other.key_package.leaf_node.signature_key,
            k.leaf_node.signature_key
        );

        // Processed by others: added, and its owner joins with the given private keys.
        let mut groups = three(cipher_suite, GroupConfig::default());
        let out = groups[0]
            .commit(
                &svc(),
                CommitOptions::new().proposal(Proposal::add(kp1.key_package.clone())),
                NOW,
            )
            .unwrap();
        groups[0].merge_pending_commit().unwrap();
        for g in &mut groups[1..] {
            g.process(&svc(), &out.commit, NOW).unwrap();
        }
        let dave = Group::join_from_welcome(
            &svc(),
            GroupConfig::default(),
            out.welcome.as_ref().unwrap(),
            &kp1,
            s.signer(),
            None,
            NOW,
        )
        .unwrap();
        assert!(has_unknown_extension(dave.own_leaf_node().unwrap()));
        assert_agree(&[&groups[0], &groups[1], &groups[2], &dave]);

        // A creator's LeafNode from the same secrets.
        let create = || {
            Group::create(
                &svc(),
                GroupConfig::default(),
                b"g".to_vec(),
                cipher_suite,
                OwnLeaf {
                    params: s.leaf_params(b"erin"),
                    encryption_key: s.leaf_source(),
                    signature_key: s.signer(),
                },
                lifetime(),
                vec![],
            )
            .unwrap()
        };
        let (g1, g2) = (create(), create());
        let (l1, l2) = (g1.own_leaf_node().unwrap(), g2.own_leaf_node().unwrap());
        assert_eq!(l1.encryption_key.as_slice(), s.leaf_key().public_key);
        assert_eq!(l1.encryption_key, l2.encryption_key);
        assert_eq!(l1.signature_key.as_slice(), s.signer().public_key);
        assert!(has_unknown_extension(l1));
        // A given key pair whose halves do not match is refused.
        let mut bad = s.leaf_key();
        bad.public_key = Given::new(cipher_suite, 3).leaf_key().public_key;
        assert!(matches!(
            HpkeKeySource::KeyPair(bad).into_key_pair(cs),
            Err(CreationError::HpkeKeyPairMismatch)
        ));
    }
}

/// H1: an Update proposal from a given leaf seed and extra extensions; two instances of the
/// member propose the same leaf; the others process and commit it, and the member then
/// decrypts a path sent to its new leaf key.
#[test]
fn h1_update_proposal_from_given_secrets() {
    for cipher_suite in SUITES {
        let mut g = three(cipher_suite, GroupConfig::default());
        let mut twin = sibling_of(&g[1]);
        let s = Given::new(cipher_suite, 7);
        let params = s.leaf_params(b"bob");
        let (prop, _) = g[1]
            .propose_update(&svc(), s.leaf_source(), Some(params.clone()))
            .unwrap();
        let (prop2, _) = twin
            .propose_update(&svc(), s.leaf_source(), Some(params))
            .unwrap();
        let leaf = public_update_leaf(&prop);
        assert_eq!(leaf.encryption_key.as_slice(), s.leaf_key().public_key);
        assert_eq!(
            leaf.encryption_key,
            public_update_leaf(&prop2).encryption_key
        );
        assert!(has_unknown_extension(leaf));

        for i in [0, 2] {
            g[i].process(&svc(), &prop, NOW).unwrap();
        }
        let out = g[2].commit(&svc(), CommitOptions::new(), NOW).unwrap();
        g[2].merge_pending_commit().unwrap();
        for i in [0, 1] {
            g[i].process(&svc(), &out.commit, NOW).unwrap();
        }
        assert_agree(&[&g[0], &g[1], &g[2]]);
        assert_eq!(
            g[0].ratchet_tree().leaf(LeafIndex(1)).unwrap(),
            g[1].own_leaf_node().unwrap()
        );
        assert!(has_unknown_extension(
            g[0].ratchet_tree().leaf(LeafIndex(1)).unwrap()
        ));
        // Alice's path is encrypted to Bob's new leaf key (his direct path was blanked).
        let out = g[0]
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        g[0].merge_pending_commit().unwrap();
        for i in [1, 2] {
            g[i].process(&svc(), &out.commit, NOW).unwrap();
        }
        assert_agree(&[&g[0], &g[1], &g[2]]);
    }
}

/// H1: a Commit with a path from a given leaf seed, `path_secret[0]`, signature key and extra
/// extensions: every public key of the UpdatePath is the one the secrets derive (recomputed
/// here per RFC 9420 §7.4), two instances produce the same keys, and the others process it.
/// Bob then signs with the new key.
#[test]
fn h1_commit_with_path_from_given_secrets() {
    for cipher_suite in SUITES {
        let mut g = three(cipher_suite, GroupConfig::default());
        let mut twin = sibling_of(&g[1]);
        let s = Given::new(cipher_suite, 9);
        let options = || CommitOptions {
            leaf_params: Some(s.leaf_params(b"bob")),
            signature_key: Some(s.signer()),
            ..s.commit_options()
        };
        let out = g[1].commit(&svc(), options(), NOW).unwrap();
        let out2 = twin.commit(&svc(), options(), NOW).unwrap();
        let (path, path2) = (public_path(&out.commit), public_path(&out2.commit));
        assert_eq!(
            path.leaf_node.encryption_key.as_slice(),
            s.leaf_key().public_key
        );
        assert_eq!(
            path.leaf_node.signature_key.as_slice(),
            s.signer().public_key
        );
        assert!(has_unknown_extension(&path.leaf_node));
        // Bob at leaf 1 of four: his filtered direct path is nodes 1 and 3.
        assert_eq!(path.nodes.len(), 2);
        for (n, (node, node2)) in path.nodes.iter().zip(&path2.nodes).enumerate() {
            assert_eq!(node.encryption_key.as_slice(), s.path_node_public_key(n));
            assert_eq!(node.encryption_key, node2.encryption_key);
        }
        assert_eq!(
            path.leaf_node.encryption_key,
            path2.leaf_node.encryption_key
        );
        // Another path_secret[0], other node keys.
        twin.clear_pending_commit();
        let other = Given::new(cipher_suite, 10);
        let out3 = twin.commit(&svc(), other.commit_options(), NOW).unwrap();
        assert_ne!(
            public_path(&out3.commit).nodes[0].encryption_key,
            path.nodes[0].encryption_key
        );

        for i in [0, 2] {
            g[i].process(&svc(), &out.commit, NOW).unwrap();
        }
        // The pending commit, with its new signature key, survives the state codec (H8).
        g[1] = sibling_of(&g[1]);
        g[1].merge_pending_commit().unwrap();
        assert_agree(&[&g[0], &g[1], &g[2]]);
        assert_eq!(
            g[0].ratchet_tree()
                .leaf(LeafIndex(1))
                .unwrap()
                .signature_key
                .as_slice(),
            s.signer().public_key
        );
        // Bob signs with the new key: his message verifies for the others.
        let app = g[1].encrypt_application(&svc(), b"new key", b"").unwrap();
        for i in [0, 2] {
            expect_application(g[i].process(&svc(), &app, NOW).unwrap(), 1, b"new key");
        }
        let out = g[1]
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        g[1].merge_pending_commit().unwrap();
        for i in [0, 2] {
            g[i].process(&svc(), &out.commit, NOW).unwrap();
        }
        assert_agree(&[&g[0], &g[1], &g[2]]);

        // A given signature key pair whose halves do not match is refused.
        let mut bad = s.signer();
        bad.public_key = Given::new(cipher_suite, 11).signer().public_key;
        let err = g[1]
            .commit(
                &svc(),
                CommitOptions {
                    signature_key: Some(bad),
                    ..CommitOptions::new()
                },
                NOW,
            )
            .unwrap_err();
        assert_eq!(
            err,
            GroupError::Creation(CreationError::SignatureKeyPairMismatch)
        );
        assert!(!g[1].has_pending_commit());
    }
}

/// H1: an external Commit from a given leaf seed, signature key, extensions and
/// `path_secret[0]`: the same secrets give the same path keys, recomputed here; the members
/// process it.
#[test]
fn h1_external_commit_from_given_secrets() {
    for cipher_suite in SUITES {
        let mut g = three(cipher_suite, GroupConfig::default());
        let info = g[0].group_info(&svc(), true, true).unwrap();
        let s = Given::new(cipher_suite, 21);
        let join = || {
            Group::join_by_external_commit(
                &svc(),
                GroupConfig::default(),
                &info,
                None,
                OwnLeaf {
                    params: s.leaf_params(b"frank"),
                    encryption_key: s.leaf_source(),
                    signature_key: s.signer(),
                },
                ExternalCommitOptions {
                    path_secret_0: Some(s.path_secret_0()),
                    ..ExternalCommitOptions::default()
                },
                NOW,
            )
            .unwrap()
        };
        let (frank, commit) = join();
        let (_, commit2) = join();
        let (path, path2) = (public_path(&commit), public_path(&commit2));
        assert_eq!(
            path.leaf_node.encryption_key.as_slice(),
            s.leaf_key().public_key
        );
        assert_eq!(
            path.leaf_node.signature_key.as_slice(),
            s.signer().public_key
        );
        assert!(has_unknown_extension(&path.leaf_node));
        assert!(!path.nodes.is_empty());
        for (n, (node, node2)) in path.nodes.iter().zip(&path2.nodes).enumerate() {
            assert_eq!(node.encryption_key.as_slice(), s.path_node_public_key(n));
            assert_eq!(node.encryption_key, node2.encryption_key);
        }
        for m in &mut g {
            m.process(&svc(), &commit, NOW).unwrap();
        }
        assert_agree(&[&g[0], &g[1], &g[2], &frank]);
    }
}

/// H1 through the engine's `LeafSecrets` value: a KeyPackage, a creator's leaf, a Commit with a
/// path and an external Commit made from one value carry the keys its secrets derive, and are
/// processed by the other members.
#[test]
fn h1_leaf_secrets_value_drives_every_operation() {
    for cipher_suite in SUITES {
        let cs = suite(cipher_suite);
        let given = Given::new(cipher_suite, 61);
        let secrets = given.engine();
        let kp = secrets
            .key_package(
                cs,
                KeyPackageParams::new(cipher_suite, Credential::basic(b"gus".to_vec()), lifetime()),
            )
            .unwrap();
        assert_eq!(
            kp.key_package.leaf_node.encryption_key.as_slice(),
            given.leaf_key().public_key
        );
        assert_eq!(
            kp.key_package.init_key.as_slice(),
            cs.hpke_derive_key_pair(&given.init_seed)
                .unwrap()
                .public_key
        );
        assert!(has_unknown_extension(&kp.key_package.leaf_node));
        let creator = Group::create(
            &svc(),
            GroupConfig::default(),
            b"ls".to_vec(),
            cipher_suite,
            secrets.own_leaf(LeafNodeParams::new(
                cipher_suite,
                Credential::basic(b"gus".to_vec()),
            )),
            lifetime(),
            vec![],
        )
        .unwrap();
        assert_eq!(
            creator.own_leaf_node().unwrap().encryption_key.as_slice(),
            given.leaf_key().public_key
        );

        let mut g = three(cipher_suite, GroupConfig::default());
        let out = g[1]
            .commit(
                &svc(),
                secrets.commit_options(
                    LeafNodeParams::new(cipher_suite, Credential::basic(b"bob".to_vec())),
                    CommitOptions::new(),
                ),
                NOW,
            )
            .unwrap();
        let path = public_path(&out.commit);
        assert_eq!(
            path.leaf_node.encryption_key.as_slice(),
            given.leaf_key().public_key
        );
        assert_eq!(
            path.leaf_node.signature_key.as_slice(),
            given.signer().public_key
        );
        assert!(has_unknown_extension(&path.leaf_node));
        for (n, node) in path.nodes.iter().enumerate() {
            assert_eq!(
                node.encryption_key.as_slice(),
                given.path_node_public_key(n)
            );
        }
        g[1].merge_pending_commit().unwrap();
        for i in [0, 2] {
            g[i].process(&svc(), &out.commit, NOW).unwrap();
        }
        assert_agree(&[&g[0], &g[1], &g[2]]);

        let joiner = Given::new(cipher_suite, 62);
        let info = g[0].group_info(&svc(), true, true).unwrap();
        let (hal, commit) = Group::join_by_external_commit(
            &svc(),
            GroupConfig::default(),
            &info,
            None,
            joiner.engine().own_leaf(LeafNodeParams::new(
                cipher_suite,
                Credential::basic(b"hal".to_vec()),
            )),
            joiner
                .engine()
                .external_commit_options(ExternalCommitOptions::default()),
            NOW,
        )
        .unwrap();
        let path = public_path(&commit);
        assert_eq!(
            path.leaf_node.encryption_key.as_slice(),
            joiner.leaf_key().public_key
        );
        assert_eq!(
            path.nodes[0].encryption_key.as_slice(),
            joiner.path_node_public_key(0)
        );
        for m in &mut g {
            m.process(&svc(), &commit, NOW).unwrap();
        }
        assert_agree(&[&g[0], &g[1], &g[2], &hal]);
    }
}

/// H2 when this instance has a pending commit of its own: the sibling's commit (not ours) is
/// resolved, our pending commit is dropped, and all agree.
#[test]
fn h2_sibling_commit_while_our_own_commit_is_pending() {
    let cipher_suite = CipherSuite(1);
    let mut g = three(cipher_suite, GroupConfig::default());
    let mut a = sibling_of(&g[1]);
    let s = Given::new(cipher_suite, 71);
    let ours = g[1]
        .commit(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    let theirs = a.commit(&svc(), s.commit_options(), NOW).unwrap();
    assert_ne!(ours.commit, theirs.commit);
    assert_eq!(
        rejected(&mut g[1], &svc(), &theirs.commit),
        GroupError::OwnLeafMessage
    );
    assert!(g[1].has_pending_commit());
    let right = Resolver::commit(s.sibling_secrets(None));
    let result = g[1]
        .process(&svc().with_own_leaf_resolver(&right), &theirs.commit, NOW)
        .unwrap();
    assert!(matches!(
        result,
        ProcessedMessage::Commit { own: false, .. }
    ));
    assert!(!g[1].has_pending_commit());
    a.merge_pending_commit().unwrap();
    for i in [0, 2] {
        g[i].process(&svc(), &theirs.commit, NOW).unwrap();
    }
    assert_agree(&[&a, &g[0], &g[1], &g[2]]);
}

// ---------------------------------------------------------------------------------------------
// H2: sibling commits and Updates from our own leaf
// ---------------------------------------------------------------------------------------------

/// H2, the main test: instance A of Bob commits through H1; instance B (same leaf,
/// same state) processes it through the resolver. A wrong `path_secret[0]`, a wrong leaf key,
/// a resolver answering nothing and no resolver are typed errors that change nothing; with the
/// right answer all four clients agree, and both instances go on working.
#[test]
fn h2_sibling_commit_resolved_and_checked() {
    for cipher_suite in SUITES {
        for wire in [HandshakeWireFormat::Public, HandshakeWireFormat::Private] {
            let mut g = three(cipher_suite, config(wire));
            let mut a = sibling_of(&g[1]);
            let s = Given::new(cipher_suite, 33);
            let out = a.commit(&svc(), s.commit_options(), NOW).unwrap();

            // No resolver; a resolver with no answer.
            let b = &mut g[1];
            assert_eq!(rejected(b, &svc(), &out.commit), GroupError::OwnLeafMessage);
            let none = Resolver::default();
            assert_eq!(
                rejected(b, &svc().with_own_leaf_resolver(&none), &out.commit),
                GroupError::OwnLeafMessage
            );
            // A wrong path_secret[0]: the first re-derived node key differs.
            let wrong = SiblingCommitSecrets {
                path_secret_0: Given::new(cipher_suite, 34).path_secret_0(),
                ..s.sibling_secrets(None)
            };
            let wrong = Resolver::commit(wrong);
            assert!(matches!(
                rejected(b, &svc().with_own_leaf_resolver(&wrong), &out.commit),
                GroupError::TreeKem(TreeKemError::PublicKeyMismatch(_))
            ));
            // A wrong leaf key.
            let wrong_leaf = SiblingCommitSecrets {
                leaf_key: Given::new(cipher_suite, 35).leaf_key(),
                ..s.sibling_secrets(None)
            };
            let wrong_leaf = Resolver::commit(wrong_leaf);
            assert!(matches!(
                rejected(b, &svc().with_own_leaf_resolver(&wrong_leaf), &out.commit),
                GroupError::TreeKem(TreeKemError::PublicKeyMismatch(_))
            ));

            // The right secrets.
            let right = Resolver::commit(s.sibling_secrets(None));
            let result = b
                .process(&svc().with_own_leaf_resolver(&right), &out.commit, NOW)
                .unwrap();
            assert!(matches!(
                result,
                ProcessedMessage::Commit {
                    sender: Sender::Member(1),
                    own: false,
                    removed_us: false,
                    ..
                }
            ));
            for i in [0, 2] {
                g[i].process(&svc(), &out.commit, NOW).unwrap();
            }
            a.merge_pending_commit().unwrap();
            // The resolver was shown the committer's new leaf.
            assert_eq!(
                right.seen.borrow().as_slice(),
                [a.own_leaf_node().unwrap().clone()]
            );
            assert_agree(&[&a, &g[0], &g[1], &g[2]]);

            // Both instances hold the new path: Alice's next path reaches them through the
            // node keys derived from path_secret[0].
            let out = g[0]
                .commit(&svc(), CommitOptions::new().with_path(), NOW)
                .unwrap();
            g[0].merge_pending_commit().unwrap();
            for m in g.iter_mut().skip(1).chain([&mut a]) {
                m.process(&svc(), &out.commit, NOW).unwrap();
            }
            assert_agree(&[&a, &g[0], &g[1], &g[2]]);
            // And B's messages still verify for the others.
            let app = g[1].encrypt_application(&svc(), b"from b", b"").unwrap();
            for m in others_of_bob(&mut g) {
                expect_application(m.process(&svc(), &app, NOW).unwrap(), 1, b"from b");
            }
        }
    }
}

/// H2: an Update proposal from our own leaf by instance A; instance B needs the resolver for
/// the proposal and for the commit that includes it (leaf key only). A wrong key or no answer
/// is a typed error that changes nothing.
#[test]
fn h2_sibling_update_resolved_and_checked() {
    for cipher_suite in SUITES {
        for wire in [HandshakeWireFormat::Public, HandshakeWireFormat::Private] {
            let mut g = three(cipher_suite, config(wire));
            let mut a = sibling_of(&g[1]);
            let s = Given::new(cipher_suite, 41);
            let (prop, _) = a.propose_update(&svc(), s.leaf_source(), None).unwrap();

            assert_eq!(
                rejected(&mut g[1], &svc(), &prop),
                GroupError::OwnLeafMessage
            );
            let right = Resolver::update(s.leaf_key());
            let with_right = svc().with_own_leaf_resolver(&right);
            for (i, m) in g.iter_mut().enumerate() {
                let services = if i == 1 { with_right } else { svc() };
                assert!(matches!(
                    m.process(&services, &prop, NOW).unwrap(),
                    ProcessedMessage::Proposal { .. }
                ));
            }
            let out = g[2].commit(&svc(), CommitOptions::new(), NOW).unwrap();
            g[2].merge_pending_commit().unwrap();

            let none = Resolver::default();
            assert_eq!(
                rejected(&mut g[1], &svc().with_own_leaf_resolver(&none), &out.commit),
                GroupError::OwnLeafMessage
            );
            let wrong = Resolver::update(Given::new(cipher_suite, 42).leaf_key());
            assert_eq!(
                rejected(
                    &mut g[1],
                    &svc().with_own_leaf_resolver(&wrong),
                    &out.commit
                ),
                GroupError::OwnLeafMessage
            );
            g[1].process(&with_right, &out.commit, NOW).unwrap();
            assert_eq!(
                right
                    .seen
                    .borrow()
                    .last()
                    .unwrap()
                    .encryption_key
                    .as_slice(),
                s.leaf_key().public_key
            );
            g[0].process(&svc(), &out.commit, NOW).unwrap();
            a.process(&svc(), &out.commit, NOW).unwrap();
            assert_agree(&[&a, &g[0], &g[1], &g[2]]);

            // Alice's path is encrypted to the new leaf key: both instances decrypt it.
            let out = g[0]
                .commit(&svc(), CommitOptions::new().with_path(), NOW)
                .unwrap();
            g[0].merge_pending_commit().unwrap();
            for m in g.iter_mut().skip(1).chain([&mut a]) {
                m.process(&svc(), &out.commit, NOW).unwrap();
            }
            assert_agree(&[&a, &g[0], &g[1], &g[2]]);
        }
    }
}

/// H2: instance A's commit changes the leaf's signature key; instance B takes the new private
/// key from the resolver (a missing or wrong one is refused, state unchanged) and signs with it
/// afterwards: its application message and its commit verify for the others.
#[test]
fn h2_sibling_commit_changing_the_signature_key() {
    for cipher_suite in SUITES {
        let mut g = three(cipher_suite, config(HandshakeWireFormat::Public));
        let mut a = sibling_of(&g[1]);
        let s = Given::new(cipher_suite, 51);
        let new_signer = s.signer();
        let old_key = g[1].own_leaf_node().unwrap().signature_key.clone();
        let out = a
            .commit(
                &svc(),
                CommitOptions {
                    signature_key: Some(new_signer.clone()),
                    ..s.commit_options()
                },
                NOW,
            )
            .unwrap();
        assert_ne!(public_path(&out.commit).leaf_node.signature_key, old_key);

        let missing = Resolver::commit(s.sibling_secrets(None));
        assert_eq!(
            rejected(
                &mut g[1],
                &svc().with_own_leaf_resolver(&missing),
                &out.commit
            ),
            GroupError::OwnLeafMessage
        );
        let other = Given::new(cipher_suite, 52).signer();
        let wrong = Resolver::commit(s.sibling_secrets(Some(other)));
        assert_eq!(
            rejected(
                &mut g[1],
                &svc().with_own_leaf_resolver(&wrong),
                &out.commit
            ),
            GroupError::OwnLeafMessage
        );
        let right = Resolver::commit(s.sibling_secrets(Some(new_signer.clone())));
        g[1].process(&svc().with_own_leaf_resolver(&right), &out.commit, NOW)
            .unwrap();
        for i in [0, 2] {
            g[i].process(&svc(), &out.commit, NOW).unwrap();
        }
        a.merge_pending_commit().unwrap();
        assert_agree(&[&a, &g[0], &g[1], &g[2]]);

        // B signs with the new key: an application message ...
        let app = g[1]
            .encrypt_application(&svc(), b"signed anew", b"")
            .unwrap();
        for m in others_of_bob(&mut g).chain([&mut a]) {
            expect_application(m.process(&svc(), &app, NOW).unwrap(), 1, b"signed anew");
        }
        // ... and a commit (PublicMessage signature checked against the tree's key).
        let out = g[1]
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        g[1].merge_pending_commit().unwrap();
        for i in [0, 2] {
            g[i].process(&svc(), &out.commit, NOW).unwrap();
        }
        assert_agree(&[&g[0], &g[1], &g[2]]);
    }
}

// ---------------------------------------------------------------------------------------------
// H3: own-leaf PrivateMessages
// ---------------------------------------------------------------------------------------------

/// H3: application and handshake PrivateMessages from our own leaf open at generations this
/// instance has not used; a generation it consumed (by receiving or by sending) does not,
/// with a typed error and no state change.
#[test]
fn h3_own_leaf_messages_at_unused_and_consumed_generations() {
    for cipher_suite in SUITES {
        let mut g = three(cipher_suite, config(HandshakeWireFormat::Private));
        let mut a = sibling_of(&g[1]);
        // Generation 0 from A: unused by B, it opens.
        let m0 = a.encrypt_application(&svc(), b"a0", b"").unwrap();
        expect_application(g[1].process(&svc(), &m0, NOW).unwrap(), 1, b"a0");
        // Received once: consumed.
        assert_eq!(
            rejected(&mut g[1], &svc(), &m0),
            GroupError::PrivateMessage(PrivateMessageError::GenerationConsumed { generation: 0 })
        );
        // B sends at generation 1 (consuming it); A's generation 1 no longer opens at B ...
        let b1 = g[1].encrypt_application(&svc(), b"b1", b"").unwrap();
        let a1 = a.encrypt_application(&svc(), b"a1", b"").unwrap();
        assert_eq!(
            rejected(&mut g[1], &svc(), &a1),
            GroupError::PrivateMessage(PrivateMessageError::GenerationConsumed { generation: 1 })
        );
        // ... and A, which also sent at generation 1, refuses B's message there.
        assert_eq!(
            rejected(&mut a, &svc(), &b1),
            GroupError::PrivateMessage(PrivateMessageError::GenerationConsumed { generation: 1 })
        );
        // A generation ahead (2 at B, unused) opens.
        let a2 = a.encrypt_application(&svc(), b"a2", b"").unwrap();
        expect_application(g[1].process(&svc(), &a2, NOW).unwrap(), 1, b"a2");

        // Handshake: A's proposal (PrivateMessage, handshake generation 0) opens at B through
        // the resolver; a second one at a generation B used does not.
        let any = Resolver::default();
        let with = svc().with_own_leaf_resolver(&any);
        let (p0, _) = a.propose_remove(&svc(), LeafIndex(2)).unwrap();
        assert!(matches!(
            g[1].process(&with, &p0, NOW).unwrap(),
            ProcessedMessage::Proposal {
                sender: Sender::Member(1),
                ..
            }
        ));
        let _ = g[1].propose_remove(&svc(), LeafIndex(0)).unwrap();
        let (p1, _) = a.propose_remove(&svc(), LeafIndex(0)).unwrap();
        assert_eq!(
            rejected(&mut g[1], &with, &p1),
            GroupError::PrivateMessage(PrivateMessageError::GenerationConsumed { generation: 1 })
        );
    }
}

/// H3: with `retain_sent_keys`, a generation we sent at stays open for a sibling's message
/// until `confirm_sent`; an abandoned (unconfirmed) send keeps it open; the retention is
/// bounded by the configurable out-of-order window.
#[test]
fn h3_retained_send_keys_until_confirmed_bounded_and_configurable() {
    for tolerance in [4u32, 16] {
        let mut cfg = GroupConfig {
            retain_sent_keys: true,
            ..GroupConfig::default()
        };
        cfg.ratchet.out_of_order_tolerance = tolerance;
        let mut g = three(CipherSuite(1), cfg);
        let mut a = sibling_of(&g[1]);

        // Both send at generation 0; B's key stays retained, so A's message opens at B.
        let b0 = g[1].encrypt_application(&svc(), b"b0", b"").unwrap();
        let a0 = a.encrypt_application(&svc(), b"a0", b"").unwrap();
        expect_application(g[1].process(&svc(), &a0, NOW).unwrap(), 1, b"a0");
        expect_application(a.process(&svc(), &b0, NOW).unwrap(), 1, b"b0");
        // Opening consumed it.
        assert_eq!(
            rejected(&mut g[1], &svc(), &a0),
            GroupError::PrivateMessage(PrivateMessageError::GenerationConsumed { generation: 0 })
        );

        // Generation 1: B confirms its send; the key is deleted (once).
        let b1 = g[1].encrypt_application(&svc(), b"b1", b"").unwrap();
        assert!(g[1].confirm_sent(&svc(), &b1).unwrap());
        assert!(!g[1].confirm_sent(&svc(), &b1).unwrap());
        let a1 = a.encrypt_application(&svc(), b"a1", b"").unwrap();
        assert_eq!(
            rejected(&mut g[1], &svc(), &a1),
            GroupError::PrivateMessage(PrivateMessageError::GenerationConsumed { generation: 1 })
        );
        // Someone else's message is not ours to confirm.
        let c = g[2].encrypt_application(&svc(), b"c", b"").unwrap();
        assert!(!g[1].confirm_sent(&svc(), &c).unwrap());

        // Generation 2: B abandons its send (never confirms): A's message opens.
        let _abandoned = g[1].encrypt_application(&svc(), b"b2", b"").unwrap();
        let a2 = a.encrypt_application(&svc(), b"a2", b"").unwrap();
        expect_application(g[1].process(&svc(), &a2, NOW).unwrap(), 1, b"a2");

        // Generations 3..=8 sent by B, none confirmed: the ratchet's next generation is 9, so
        // only the last `tolerance` generations stay retained.
        for _ in 3..=8 {
            g[1].encrypt_application(&svc(), b"b", b"").unwrap();
        }
        let oldest = 9u32.saturating_sub(tolerance);
        for generation in 3..=8u32 {
            let m = a.encrypt_application(&svc(), b"a", b"").unwrap();
            if generation < oldest {
                assert_eq!(
                    rejected(&mut g[1], &svc(), &m),
                    GroupError::PrivateMessage(PrivateMessageError::GenerationExpired {
                        generation
                    })
                );
            } else {
                expect_application(g[1].process(&svc(), &m, NOW).unwrap(), 1, b"a");
            }
        }
        // The others read every message of both instances at their first arrival.
        expect_application(g[0].process(&svc(), &b0, NOW).unwrap(), 1, b"b0");
        expect_application(g[0].process(&svc(), &a1, NOW).unwrap(), 1, b"a1");
    }
}

// ---------------------------------------------------------------------------------------------
// H4: the reuse guard as a function of the key-schedule nonce
// ---------------------------------------------------------------------------------------------

/// The guard function of these tests: the nonce's first four octets XOR a constant.
fn guard_of(nonce: &[u8]) -> [u8; 4] {
    [
        nonce[0] ^ 0x5A,
        nonce[1] ^ 0xA5,
        nonce[2] ^ 0x0F,
        nonce[3] ^ 0xF0,
    ]
}

/// H4 in a group: the function is called with the generation's key-schedule nonce (a fresh one
/// per generation), its value is the `reuse_guard` actually used (a twin instance with that
/// value fixed produces the very same PrivateMessage), and the receivers decrypt.
#[test]
fn h4_reuse_guard_from_the_nonce_in_a_group() {
    for cipher_suite in SUITES {
        let cs = suite(cipher_suite);
        let mut g = three(cipher_suite, GroupConfig::default());
        let mut twin = sibling_of(&g[1]);
        let mut other = sibling_of(&g[1]);
        let seen: RefCell<Vec<Vec<u8>>> = RefCell::new(Vec::new());
        let f = |nonce: &Secret| {
            seen.borrow_mut().push(nonce.as_bytes().to_vec());
            Ok(guard_of(nonce.as_bytes()))
        };
        for round in 0..2u8 {
            let data = [round; 5];
            let m = g[1]
                .encrypt_application_with(&svc(), &data, b"ad", ReuseGuard::FromNonce(&f))
                .unwrap();
            let nonce = seen.borrow().last().unwrap().clone();
            assert_eq!(nonce.len(), cs.params().aead_nonce_len());
            let same = twin
                .encrypt_application_with(&svc(), &data, b"ad", ReuseGuard::Fixed(guard_of(&nonce)))
                .unwrap();
            let mut flipped = guard_of(&nonce);
            flipped[0] ^= 1;
            let different = other
                .encrypt_application_with(&svc(), &data, b"ad", ReuseGuard::Fixed(flipped))
                .unwrap();
            if cipher_suite != CipherSuite(2) {
                // Ed25519 signatures are deterministic: the whole message is reproduced.
                assert_eq!(m.to_bytes().unwrap(), same.to_bytes().unwrap());
            }
            assert_ne!(m.to_bytes().unwrap(), different.to_bytes().unwrap());
            for i in [0, 2] {
                expect_application(g[i].process(&svc(), &m, NOW).unwrap(), 1, &data);
            }
        }
        let seen = seen.borrow();
        assert_eq!(seen.len(), 2);
        assert_ne!(seen[0], seen[1]);
    }
}

/// H4 at the framing level, recomputed: the nonce the function receives is the secret tree's
/// `ratchet_nonce` of the generation; the sender data carries the function's value; the
/// content opens with `nonce XOR reuse_guard` (first four octets) and not with the bare nonce.
#[test]
fn h4_reuse_guard_recomputed_from_the_secret_tree() {
    for cipher_suite in SUITES {
        let cs = suite(cipher_suite);
        let encryption_secret = cs.random_secret().unwrap();
        let sender_data_secret = cs.random_secret().unwrap();
        let mut sender_tree = SecretTree::new(cs, encryption_secret.clone(), 2).unwrap();
        let receiver_tree = SecretTree::new(cs, encryption_secret, 2).unwrap();
        let signer = cs.signature_generate_key_pair().unwrap();
        let context = GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite,
            group_id: b"h4".to_vec().into(),
            epoch: 3,
            tree_hash: vec![1; 32].into(),
            confirmed_transcript_hash: vec![2; 32].into(),
            extensions: vec![],
        };
        let content = FramedContent {
            group_id: context.group_id.clone(),
            epoch: context.epoch,
            sender: Sender::Member(1),
            authenticated_data: b"aad".to_vec().into(),
            body: FramedContentBody::Application(b"payload".to_vec().into()),
        };
        let auth = sign_private(cs, content, &context, &signer.private_key).unwrap();
        let seen = RefCell::new(None);
        let f = |nonce: &Secret| {
            *seen.borrow_mut() = Some(nonce.as_bytes().to_vec());
            Ok(guard_of(nonce.as_bytes()))
        };
        let message = protect_private(
            cs,
            &auth,
            &mut sender_tree,
            &sender_data_secret,
            &PrivateMessageOptions {
                padding: Padding::ToMultipleOf(0),
                reuse_guard: ReuseGuard::FromNonce(&f),
            },
        )
        .unwrap();

        // The generation's key and nonce, from an independent copy of the tree.
        let mut copy = receiver_tree.clone();
        let key = copy
            .decrypt_with(cs, LeafIndex(1), RatchetType::Application, 0, |k| {
                Ok::<_, ()>(k.clone())
            })
            .unwrap()
            .unwrap();
        let nonce = key.nonce.as_bytes().to_vec();
        assert_eq!(seen.borrow().as_deref(), Some(nonce.as_slice()));
        let sender_data = decrypt_sender_data(cs, &message, &sender_data_secret).unwrap();
        assert_eq!(sender_data.leaf_index, 1);
        assert_eq!(sender_data.generation, 0);
        assert_eq!(sender_data.reuse_guard, guard_of(&nonce));

        let aad = encode(&message.private_content_aad()).unwrap();
        let mut guarded = nonce.clone();
        for (n, g) in guarded.iter_mut().zip(sender_data.reuse_guard) {
            *n ^= g;
        }
        let ciphertext = message.ciphertext.as_slice();
        assert!(cs
            .aead_open(key.key.as_bytes(), &guarded, &aad, ciphertext)
            .is_ok());
        assert!(cs
            .aead_open(key.key.as_bytes(), &nonce, &aad, ciphertext)
            .is_err());

        // And the receiver's ordinary path opens it.
        let mut receiver = receiver_tree.clone();
        let opened = unprotect_private(
            cs,
            &message,
            &context,
            &mut receiver,
            &sender_data_secret,
            |_| Some(signer.public_key.clone()),
        )
        .unwrap();
        assert_eq!(opened, auth);
    }
}

/// An external commit made with a given ExternalInit seed and given leaf secrets, from
/// `info`, by "frank" (or, with `resync`, by "carol" replacing her old leaf).
fn external_join_with_seed(
    info: &mls_engine::codec::GroupInfo,
    s: &Given,
    seed: Option<Secret>,
    resync: Option<LeafIndex>,
) -> (Group, MlsMessage) {
    Group::join_by_external_commit(
        &svc(),
        GroupConfig::default(),
        info,
        None,
        OwnLeaf {
            params: s.leaf_params(if resync.is_some() { b"carol" } else { b"frank" }),
            encryption_key: s.leaf_source(),
            signature_key: s.signer(),
        },
        ExternalCommitOptions {
            path_secret_0: Some(s.path_secret_0()),
            external_init_seed: seed,
            resync_remove: resync,
            ..ExternalCommitOptions::default()
        },
        NOW,
    )
    .unwrap()
}

/// H1 and H2 for external commits: a joiner's ExternalInit made from a given seed is the same
/// for the same seed; a second instance of the joiner that holds the seed and the leaf
/// secrets (through its resolver) follows the commit from the GroupInfo into the new epoch and
/// agrees with every member; a wrong seed, wrong path secret, missing resolver or another
/// epoch's GroupInfo is a typed error. With a resync Remove the follower replaces the old leaf.
#[test]
fn h2_external_commit_followed_by_a_sibling() {
    for cipher_suite in SUITES {
        let cs = suite(cipher_suite);
        let seed = Secret::new(vec![0x5E; cs.params().kem_seed_len()]);
        for resync in [None, Some(LeafIndex(2))] {
            let mut g = three(cipher_suite, GroupConfig::default());
            let info = g[0].group_info(&svc(), true, true).unwrap();
            let s = Given::new(cipher_suite, 33);
            let (frank, commit) = external_join_with_seed(&info, &s, Some(seed.clone()), resync);
            let (_, again) = external_join_with_seed(&info, &s, Some(seed.clone()), resync);
            let init_of = |m: &MlsMessage| match &public_commit(m).proposals[0] {
                mls_engine::codec::ProposalOrRef::Proposal(Proposal::ExternalInit(i)) => {
                    i.kem_output.clone()
                }
                other => panic!("not an ExternalInit first: {other:?}"),
            };
            assert_eq!(
                init_of(&commit),
                init_of(&again),
                "same seed, same kem_output"
            );

            let follow = |resolver: &Resolver, info: &mls_engine::codec::GroupInfo| {
                let services = svc().with_own_leaf_resolver(resolver);
                Group::follow_external_commit(
                    &services,
                    GroupConfig::default(),
                    info,
                    None,
                    &commit,
                    NOW,
                )
            };
            let good = Resolver {
                commit: Some(s.sibling_secrets(Some(s.signer()))),
                external_init_seed: Some(seed.clone()),
                ..Resolver::default()
            };
            let sibling = follow(&good, &info).unwrap();
            assert_eq!(sibling.own_leaf_index(), frank.own_leaf_index());
            if let Some(old) = resync {
                assert_eq!(frank.own_leaf_index(), old, "the resync leaf is reused");
            }

            let wrong_seed = Resolver {
                commit: Some(s.sibling_secrets(Some(s.signer()))),
                external_init_seed: Some(Secret::new(vec![0x5F; cs.params().kem_seed_len()])),
                ..Resolver::default()
            };
            assert!(matches!(
                follow(&wrong_seed, &info),
                Err(GroupError::ExternalInitMismatch)
            ));
            let no_seed = Resolver {
                commit: Some(s.sibling_secrets(Some(s.signer()))),
                ..Resolver::default()
            };
            assert!(matches!(
                follow(&no_seed, &info),
                Err(GroupError::OwnLeafMessage)
            ));
            let other = Given::new(cipher_suite, 34);
            let wrong_path = Resolver {
                commit: Some(SiblingCommitSecrets {
                    path_secret_0: other.path_secret_0(),
                    ..s.sibling_secrets(Some(s.signer()))
                }),
                external_init_seed: Some(seed.clone()),
                ..Resolver::default()
            };
            assert!(matches!(
                follow(&wrong_path, &info),
                Err(GroupError::TreeKem(_))
            ));
            assert!(matches!(
                Group::follow_external_commit(
                    &svc(),
                    GroupConfig::default(),
                    &info,
                    None,
                    &commit,
                    NOW
                ),
                Err(GroupError::OwnLeafMessage)
            ));

            for m in &mut g {
                m.process(&svc(), &commit, NOW).unwrap();
            }
            let remaining: Vec<&Group> = match resync {
                None => g.iter().collect(),
                Some(_) => g.iter().take(2).collect(),
            };
            let mut all = remaining;
            all.push(&frank);
            all.push(&sibling);
            assert_agree(&all);

            // The GroupInfo of the next epoch does not describe the commit's epoch.
            let newer = g[0].group_info(&svc(), true, true).unwrap();
            assert!(matches!(
                follow(&good, &newer),
                Err(GroupError::StaleEpoch { .. })
            ));
        }
    }
}
