//! Design hooks H1, H2 and H4 (issue 4) against a plain OpenMLS 0.9.2 member: an OpenMLS
//! member processes Commits, Update proposals and application messages the engine produced
//! from given key material (H1), through a sibling instance of the same leaf (H2) and with a
//! reuse guard computed from the key-schedule nonce (H4); and LeafNodes carrying an unknown
//! extension (type 0xF0C1) listed in their capabilities, in a KeyPackage OpenMLS adds and in
//! the path leaf of a Commit. After each step OpenMLS and the engine agree on the epoch and the
//! exporter output.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use mls_engine::codec::{
    Credential, Extension, ExtensionType, FramedContentBody, LeafNode, Lifetime, MlsMessage,
    MlsMessageBody,
};
use mls_engine::crypto::{
    CipherSuite, CryptoProvider as _, HpkeKeyPair, RustCrypto, Secret, SignatureKeyPair,
    SuiteProvider,
};
use mls_engine::framing::ReuseGuard;
use mls_engine::group::{
    CommitOptions, ExternalCommitOptions, Group, GroupConfig, LeafSecrets, OwnLeaf,
    OwnLeafResolver, ProcessedMessage, Services, SiblingCommitSecrets,
};
use mls_engine::hook::HookError;
use mls_engine::messages::{HpkeKeySource, KeyPackageParams, LeafNodeParams};
use openmls::prelude::MlsGroup;

use crate::harness::{
    export_group_info, OpenMlsClient, Processed, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LENGTH,
    SUITES,
};

static CRYPTO: RustCrypto = RustCrypto;
/// The unknown extension type of the issue.
const UNKNOWN: ExtensionType = ExtensionType(0xF0C1);

fn svc() -> Services<'static> {
    Services::new(&CRYPTO)
}

fn cs(suite: u16) -> &'static dyn SuiteProvider {
    CRYPTO.suite(CipherSuite(suite)).expect("a suite")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn lifetime() -> Lifetime {
    let t = now();
    Lifetime {
        not_before: t - 3600,
        not_after: t + 3600 * 24 * 30,
    }
}

/// Given key material (H1), all from a one-octet tag.
struct Given {
    suite: u16,
    tag: u8,
}

impl Given {
    fn seed(&self, salt: u8) -> Vec<u8> {
        vec![self.tag ^ salt; cs(self.suite).params().kem_seed_len()]
    }
    /// The engine's `LeafSecrets` value of this material.
    fn engine(&self) -> LeafSecrets {
        LeafSecrets {
            leaf_seed: Secret::new(self.seed(0x11)),
            init_seed: Secret::new(self.seed(0x22)),
            path_secret_0: self.path_secret_0(),
            signature_key: self.signer(),
            extensions: vec![Extension::new(UNKNOWN, vec![self.tag, 0xF0, 0xC1])],
        }
    }
    fn leaf_source(&self) -> HpkeKeySource {
        HpkeKeySource::Seed(Secret::new(self.seed(0x11)))
    }
    fn leaf_key(&self) -> HpkeKeyPair {
        cs(self.suite)
            .hpke_derive_key_pair(&self.seed(0x11))
            .expect("derive")
    }
    fn path_secret_0(&self) -> Secret {
        Secret::new(vec![self.tag ^ 0x33; cs(self.suite).params().hash_len()])
    }
    fn signer(&self) -> SignatureKeyPair {
        cs(self.suite)
            .signature_key_pair_from_seed(&[self.tag ^ 0x44; 32])
            .expect("signature key")
    }
    /// A leaf with the unknown extension (its type is listed in the capabilities).
    fn leaf_params(&self, name: &[u8]) -> LeafNodeParams {
        LeafNodeParams::new(CipherSuite(self.suite), Credential::basic(name.to_vec()))
            .extension(Extension::new(UNKNOWN, vec![self.tag, 0xF0, 0xC1]))
    }
    fn commit_options(&self, name: &[u8]) -> CommitOptions {
        CommitOptions {
            leaf_key: Some(self.leaf_source()),
            path_secret_0: Some(self.path_secret_0()),
            leaf_params: Some(self.leaf_params(name)),
            ..CommitOptions::new().with_path()
        }
    }
}

/// Resolves a sibling's commit with fixed secrets, and its Update with a fixed leaf key (H2).
struct Sibling(SiblingCommitSecrets, Option<HpkeKeyPair>);

impl OwnLeafResolver for Sibling {
    fn commit_secrets(&self, new_leaf: &LeafNode) -> Result<SiblingCommitSecrets, HookError> {
        (new_leaf.encryption_key.as_slice() == self.0.leaf_key.public_key.as_slice())
            .then(|| self.0.clone())
            .ok_or(HookError::Unsupported)
    }
    fn update_leaf_key(&self, new_leaf: &LeafNode) -> Result<HpkeKeyPair, HookError> {
        self.1
            .clone()
            .filter(|k| k.public_key.as_slice() == new_leaf.encryption_key.as_slice())
            .ok_or(HookError::Unsupported)
    }
}

fn bytes(message: &MlsMessage) -> Vec<u8> {
    message.to_bytes().expect("the engine encodes its message")
}

/// The OpenMLS member and every engine group agree on the epoch and the exporter output.
fn agree(client: &OpenMlsClient, group: &MlsGroup, engine: &[&Group]) {
    let view = client.view(group);
    for g in engine {
        assert_eq!(g.epoch(), view.epoch, "epoch");
        assert_eq!(g.epoch_authenticator(), view.epoch_authenticator.as_slice());
        assert_eq!(
            g.group_context().tree_hash.as_slice(),
            view.tree_hash.as_slice()
        );
        let exporter = g
            .export_secret(&svc(), EXPORTER_LABEL, EXPORTER_CONTEXT, EXPORTER_LENGTH)
            .expect("the engine exports");
        assert_eq!(exporter.as_bytes(), view.exporter.as_slice(), "exporter");
    }
}

fn path_leaf(commit: &MlsMessage) -> &LeafNode {
    match &commit.body {
        MlsMessageBody::PublicMessage(m) => match &m.content.body {
            FramedContentBody::Commit(c) => &c.path.as_ref().expect("a path").leaf_node,
            _ => panic!("not a commit"),
        },
        _ => panic!("not a PublicMessage"),
    }
}

fn has_unknown(leaf: &LeafNode) -> bool {
    leaf.extensions.iter().any(|e| e.extension_type == UNKNOWN)
        && leaf.capabilities.extensions.contains(&UNKNOWN)
}

/// OpenMLS (Alice) adds Bob's engine KeyPackage built from given seeds with the unknown
/// extension; Bob commits through H1 (new leaf key, `path_secret[0]`, signature key and leaf
/// extension), sends an Update proposal from a given seed, and application messages with the
/// H4 reuse guard; a sibling instance of Bob commits and the other instance follows through
/// H2; Carol joins by an H1 external commit. OpenMLS processes everything; both sides agree
/// after each step.
#[test]
fn openmls_processes_hook_built_messages() {
    for suite in SUITES {
        let t = now();
        let alice = OpenMlsClient::new(b"alice", suite);
        let mut group = alice.create_group();

        // A KeyPackage from given secrets, its leaf carrying the unknown extension.
        let kp_secrets = Given { suite, tag: 1 };
        let bundle = kp_secrets
            .engine()
            .key_package(
                cs(suite),
                KeyPackageParams::new(
                    CipherSuite(suite),
                    Credential::basic(b"bob".to_vec()),
                    lifetime(),
                ),
            )
            .expect("the engine builds the KeyPackage");
        assert_eq!(
            bundle.key_package.leaf_node.encryption_key.as_slice(),
            kp_secrets.leaf_key().public_key
        );
        assert!(has_unknown(&bundle.key_package.leaf_node));
        let kp_message = MlsMessage::new(MlsMessageBody::KeyPackage(bundle.key_package.clone()));
        let kp = alice
            .validate_key_package(&bytes(&kp_message))
            .expect("OpenMLS accepts the KeyPackage with the unknown extension");
        let added = alice.add_members(&mut group, &[kp]);
        let welcome = MlsMessage::decode(&added.welcome).expect("a Welcome");
        let MlsMessageBody::Welcome(welcome) = &welcome.body else {
            panic!("not a Welcome");
        };
        let mut bob = Group::join_from_welcome(
            &svc(),
            GroupConfig::default(),
            welcome,
            &bundle,
            kp_secrets.signer(),
            None,
            t,
        )
        .expect("the engine joins");
        agree(&alice, &group, &[&bob]);

        // H1 commit: new leaf key, path_secret[0], signature key, unknown leaf extension.
        let c1 = Given { suite, tag: 2 };
        let out = bob
            .commit(
                &svc(),
                c1.engine().commit_options(
                    LeafNodeParams::new(CipherSuite(suite), Credential::basic(b"bob".to_vec())),
                    CommitOptions::new(),
                ),
                t,
            )
            .expect("the engine commits");
        let leaf = path_leaf(&out.commit);
        assert!(has_unknown(leaf));
        assert_eq!(leaf.encryption_key.as_slice(), c1.leaf_key().public_key);
        assert_eq!(leaf.signature_key.as_slice(), c1.signer().public_key);
        assert_eq!(
            alice.process(&mut group, &bytes(&out.commit)),
            Processed::Commit
        );
        bob.merge_pending_commit().expect("merge");
        agree(&alice, &group, &[&bob]);

        // H4: application messages with the reuse guard from the nonce (signed with the new
        // signature key).
        let calls = Cell::new(0u32);
        let guard = |nonce: &Secret| {
            calls.set(calls.get() + 1);
            let n = nonce.as_bytes();
            Ok([n[3] ^ 0x01, n[2] ^ 0x02, n[1] ^ 0x04, n[0] ^ 0x08])
        };
        for i in 0..3u8 {
            let app = bob
                .encrypt_application_with(&svc(), &[i; 9], b"", ReuseGuard::FromNonce(&guard))
                .expect("the engine encrypts");
            assert_eq!(
                alice.process(&mut group, &bytes(&app)),
                Processed::Application(vec![i; 9])
            );
        }
        assert_eq!(calls.get(), 3);
        let reply = alice.send_application(&mut group, b"from openmls");
        assert!(matches!(
            bob.process_bytes(&svc(), &reply, t).expect("the engine decrypts"),
            ProcessedMessage::Application { data, .. } if data == b"from openmls"
        ));

        // H1 Update proposal from a given seed with the unknown extension; OpenMLS commits it.
        let u = Given { suite, tag: 3 };
        let (update, _) = bob
            .propose_update(&svc(), u.leaf_source(), Some(u.leaf_params(b"bob")))
            .expect("the engine proposes");
        assert_eq!(
            alice.process(&mut group, &bytes(&update)),
            Processed::Proposal
        );
        let (commit, _) = alice.commit_pending(&mut group);
        bob.process_bytes(&svc(), &commit, t)
            .expect("the engine processes OpenMLS's commit of its Update");
        assert_eq!(
            bob.own_leaf_node()
                .expect("a leaf")
                .encryption_key
                .as_slice(),
            u.leaf_key().public_key
        );
        agree(&alice, &group, &[&bob]);
        // OpenMLS's next path reaches Bob's new leaf key.
        let commit = alice.self_update(&mut group);
        bob.process_bytes(&svc(), &commit, t).expect("processes");
        agree(&alice, &group, &[&bob]);

        // H2: a sibling instance of Bob commits through H1; OpenMLS and the other instance
        // (through the resolver) follow.
        let mut sibling = Group::from_bytes(&bob.to_bytes().expect("state")).expect("state");
        let c2 = Given { suite, tag: 4 };
        let out = sibling
            .commit(&svc(), c2.commit_options(b"bob"), t)
            .expect("the sibling commits");
        assert_eq!(
            alice.process(&mut group, &bytes(&out.commit)),
            Processed::Commit
        );
        sibling.merge_pending_commit().expect("merge");
        let resolver = Sibling(
            SiblingCommitSecrets {
                leaf_key: c2.leaf_key(),
                path_secret_0: c2.path_secret_0(),
                signature_key: None,
            },
            None,
        );
        bob.process(&svc().with_own_leaf_resolver(&resolver), &out.commit, t)
            .expect("the other instance follows its sibling's commit");
        agree(&alice, &group, &[&bob, &sibling]);
        let app = bob
            .encrypt_application_with(&svc(), b"after h2", b"", ReuseGuard::FromNonce(&guard))
            .expect("encrypts");
        assert_eq!(
            alice.process(&mut group, &bytes(&app)),
            Processed::Application(b"after h2".to_vec())
        );

        // H2 with an Update: the sibling proposes a new leaf key from a given seed; OpenMLS
        // commits it; the other instance follows through the resolver.
        let u2 = Given { suite, tag: 6 };
        let (update, _) = sibling
            .propose_update(&svc(), u2.leaf_source(), None)
            .expect("the sibling proposes");
        let resolver = Sibling(resolver.0.clone(), Some(u2.leaf_key()));
        let with_resolver = svc().with_own_leaf_resolver(&resolver);
        assert_eq!(
            alice.process(&mut group, &bytes(&update)),
            Processed::Proposal
        );
        bob.process(&with_resolver, &update, t)
            .expect("the other instance stores its sibling's Update");
        let (commit, _) = alice.commit_pending(&mut group);
        bob.process_bytes(&with_resolver, &commit, t)
            .expect("the other instance takes the new leaf key");
        sibling
            .process_bytes(&svc(), &commit, t)
            .expect("processes");
        agree(&alice, &group, &[&bob, &sibling]);
        let commit = alice.self_update(&mut group);
        for g in [&mut bob, &mut sibling] {
            g.process_bytes(&svc(), &commit, t)
                .expect("both instances decrypt with the new leaf key");
        }
        agree(&alice, &group, &[&bob, &sibling]);

        // H1 external commit: Carol's leaf from given seeds, signature key, path_secret[0]
        // and the unknown extension.
        let info = MlsMessage::decode(&export_group_info(&alice, &group)).expect("GroupInfo");
        let MlsMessageBody::GroupInfo(info) = &info.body else {
            panic!("not a GroupInfo");
        };
        let e = Given { suite, tag: 5 };
        let (carol, commit) = Group::join_by_external_commit(
            &svc(),
            GroupConfig::default(),
            info,
            None,
            OwnLeaf {
                params: e.leaf_params(b"carol"),
                encryption_key: e.leaf_source(),
                signature_key: e.signer(),
            },
            ExternalCommitOptions {
                path_secret_0: Some(e.path_secret_0()),
                ..ExternalCommitOptions::default()
            },
            t,
        )
        .expect("the engine joins by external commit");
        assert!(has_unknown(path_leaf(&commit)));
        assert_eq!(
            alice.process(&mut group, &bytes(&commit)),
            Processed::Commit
        );
        for g in [&mut bob, &mut sibling] {
            g.process(&svc(), &commit, t).expect("members process");
        }
        agree(&alice, &group, &[&bob, &sibling, &carol]);
    }
}
