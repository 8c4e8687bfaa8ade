//! Shared helpers of the group_* tests: clients, KeyPackages, a group of N members driven in
//! lock-step.
#![allow(dead_code)]

use mls_engine::codec::{Credential, Lifetime, MlsMessage};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SignatureKeyPair};
use mls_engine::group::{
    CommitOptions, Group, GroupConfig, HandshakeWireFormat, OwnLeaf, ProcessedMessage, Services,
};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};

pub static PROVIDER: RustCrypto = RustCrypto;
pub const NOW: u64 = 1_700_000_000;
pub const SUITES: [CipherSuite; 3] = [CipherSuite(1), CipherSuite(2), CipherSuite(3)];

pub fn svc() -> Services<'static> {
    Services::new(&PROVIDER)
}

pub fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 3600 * 24 * 90,
    }
}

pub struct Client {
    pub name: Vec<u8>,
    pub suite: CipherSuite,
    pub signer: SignatureKeyPair,
}

impl Client {
    pub fn new(suite: CipherSuite, name: &str) -> Self {
        let cs = PROVIDER.suite(suite).unwrap();
        Self {
            name: name.as_bytes().to_vec(),
            suite,
            signer: cs.signature_generate_key_pair().unwrap(),
        }
    }

    pub fn leaf_params(&self) -> LeafNodeParams {
        LeafNodeParams::new(self.suite, Credential::basic(self.name.clone()))
    }

    pub fn own_leaf(&self) -> OwnLeaf {
        OwnLeaf {
            params: self.leaf_params(),
            encryption_key: HpkeKeySource::Generate,
            signature_key: self.signer.clone(),
        }
    }

    pub fn key_package(&self) -> KeyPackageBundle {
        let cs = PROVIDER.suite(self.suite).unwrap();
        KeyPackageParams::new(self.suite, Credential::basic(self.name.clone()), lifetime())
            .build_fresh(cs, &self.signer)
            .unwrap()
    }

    pub fn create(&self, config: GroupConfig) -> Group {
        Group::create(
            &svc(),
            config,
            b"test group".to_vec(),
            self.suite,
            self.own_leaf(),
            lifetime(),
            vec![],
        )
        .unwrap()
    }
}

pub struct TestMember {
    pub client: Client,
    pub group: Group,
}

pub struct TestGroup {
    pub suite: CipherSuite,
    pub config: GroupConfig,
    pub members: Vec<TestMember>,
    pub with_tree: bool,
}

pub fn config(wire: HandshakeWireFormat) -> GroupConfig {
    GroupConfig {
        handshake_wire_format: wire,
        ..GroupConfig::default()
    }
}

impl TestGroup {
    /// A group of `n` members: member 0 creates it and adds the others one by one.
    pub fn new(suite: CipherSuite, n: usize, with_tree: bool, wire: HandshakeWireFormat) -> Self {
        let config = config(wire);
        let creator = Client::new(suite, "member-0");
        let group = creator.create(config);
        let mut g = TestGroup {
            suite,
            config,
            members: vec![TestMember {
                client: creator,
                group,
            }],
            with_tree,
        };
        for i in 1..n {
            g.add(0, &format!("member-{i}"));
        }
        g
    }

    /// `adder` adds a new client by value and everyone processes; the new member joins.
    pub fn add(&mut self, adder: usize, name: &str) {
        let client = Client::new(self.suite, name);
        let kp = client.key_package();
        let options = CommitOptions {
            ratchet_tree_in_welcome: Some(self.with_tree),
            ..CommitOptions::new()
                .proposal(mls_engine::codec::Proposal::add(kp.key_package.clone()))
        };
        let out = self.members[adder]
            .group
            .commit(&svc(), options, NOW)
            .unwrap();
        let tree = self.members[adder].group.ratchet_tree().clone();
        self.deliver_commit(adder, &out.commit);
        let _ = tree;
        let given_tree = if self.with_tree {
            None
        } else {
            Some(self.members[adder].group.ratchet_tree().clone())
        };
        let group = Group::join_from_welcome(
            &svc(),
            self.config,
            out.welcome.as_ref().unwrap(),
            &kp,
            client.signer.clone(),
            given_tree,
            NOW,
        )
        .unwrap();
        self.members.push(TestMember { client, group });
        self.check_agree();
    }

    /// Every member but `sender` processes `message`; the sender merges its pending commit.
    pub fn deliver_commit(&mut self, sender: usize, message: &MlsMessage) {
        for (i, m) in self.members.iter_mut().enumerate() {
            if i == sender {
                m.group.merge_pending_commit().unwrap();
            } else {
                let processed = m.group.process(&svc(), message, NOW).unwrap();
                assert!(matches!(processed, ProcessedMessage::Commit { .. }));
            }
        }
    }

    /// Every member but `sender` processes `message` (a proposal).
    pub fn deliver(&mut self, sender: usize, message: &MlsMessage) {
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != sender {
                m.group.process(&svc(), message, NOW).unwrap();
            }
        }
    }

    /// `sender` sends `data`; everyone else decrypts it.
    pub fn talk(&mut self, sender: usize, data: &[u8]) {
        let message = self.members[sender]
            .group
            .encrypt_application(&svc(), data, b"aad")
            .unwrap();
        let leaf = self.members[sender].group.own_leaf_index();
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != sender {
                match m.group.process(&svc(), &message, NOW).unwrap() {
                    ProcessedMessage::Application {
                        sender,
                        data: got,
                        authenticated_data,
                    } => {
                        assert_eq!(sender, leaf);
                        assert_eq!(got, data);
                        assert_eq!(authenticated_data, b"aad");
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }

    /// All members agree on the epoch, the epoch authenticator, an exporter output and the
    /// tree; and the state round-trips through bytes.
    pub fn check_agree(&self) {
        let first = &self.members[0].group;
        let export = first.export_secret(&svc(), "test", b"ctx", 32).unwrap();
        for m in &self.members {
            assert_eq!(m.group.epoch(), first.epoch());
            assert_eq!(m.group.epoch_authenticator(), first.epoch_authenticator());
            assert_eq!(
                m.group.export_secret(&svc(), "test", b"ctx", 32).unwrap(),
                export
            );
            assert_eq!(m.group.group_context(), first.group_context());
            if let Ok(bytes) = m.group.to_bytes() {
                let back = Group::from_bytes(&bytes).unwrap();
                assert_eq!(back.to_bytes().unwrap(), bytes);
            }
        }
        assert_eq!(first.members().len(), self.members.len());
    }
}
