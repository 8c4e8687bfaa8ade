//! The public view of a group (`PublicGroup`, issue 14): an observer without private keys
//! follows groups of vmls members and of OpenMLS 0.9.2 members through adds, removes,
//! updates, external commits and proposals by reference, in suites 1-3; after every step its
//! epoch, tree hash, GroupContext and roster equal a member's. Bad input is refused with a
//! typed error and leaves the observer's bytes as they were.

#[path = "interop_openmls/harness.rs"]
#[allow(dead_code)]
mod harness;

use mls_engine::codec::{
    Credential, Lifetime, MlsMessage, MlsMessageBody, Proposal, ProposalOrRef,
};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SignatureKeyPair};
use mls_engine::group::public::{ExternalJoin, GroupInfoField, ObservedSender};
use mls_engine::group::{
    CommitOptions, ExternalCommitOptions, Group, GroupConfig, Observed, OwnLeaf, ProcessedMessage,
    PublicGroup, PublicGroupError, Services, StagedPublicCommit,
};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};
use mls_engine::tree::LeafIndex;

static PROVIDER: RustCrypto = RustCrypto;
const NOW: u64 = 1_700_000_000;
const SUITES: [u16; 3] = [1, 2, 3];

fn svc() -> Services<'static> {
    Services::new(&PROVIDER)
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 3600 * 24 * 90,
    }
}

/// A vmls client: name, suite, signature key.
struct Client {
    name: Vec<u8>,
    suite: CipherSuite,
    signer: SignatureKeyPair,
}

impl Client {
    fn new(suite: u16, name: &str) -> Self {
        let suite = CipherSuite(suite);
        let cs = PROVIDER.suite(suite).unwrap();
        Self {
            name: name.as_bytes().to_vec(),
            suite,
            signer: cs.signature_generate_key_pair().unwrap(),
        }
    }

    fn own_leaf(&self) -> OwnLeaf {
        OwnLeaf {
            params: LeafNodeParams::new(self.suite, Credential::basic(self.name.clone())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: self.signer.clone(),
        }
    }

    fn key_package(&self) -> KeyPackageBundle {
        let cs = PROVIDER.suite(self.suite).unwrap();
        KeyPackageParams::new(self.suite, Credential::basic(self.name.clone()), lifetime())
            .build_fresh(cs, &self.signer)
            .unwrap()
    }
}

/// A group of vmls members and an observer of it.
struct Scene {
    suite: u16,
    members: Vec<(Client, Group)>,
    observer: PublicGroup,
}

impl Scene {
    /// `alice` creates the group; the observer starts from her GroupInfo (with the tree
    /// given apart when `tree_apart`).
    fn new(suite: u16, tree_apart: bool) -> Self {
        let alice = Client::new(suite, "alice");
        let group = Group::create(
            &svc(),
            GroupConfig::default(),
            b"observed group".to_vec(),
            alice.suite,
            alice.own_leaf(),
            lifetime(),
            vec![],
        )
        .unwrap();
        let info = group.group_info(&svc(), !tree_apart, true).unwrap();
        let tree = tree_apart.then(|| group.ratchet_tree().clone());
        let observer = PublicGroup::from_group_info(&svc(), &info, tree).unwrap();
        let scene = Self {
            suite,
            members: vec![(alice, group)],
            observer,
        };
        scene.check();
        scene
    }

    fn index_of(&self, name: &str) -> usize {
        self.members
            .iter()
            .position(|(c, _)| c.name == name.as_bytes())
            .unwrap()
    }

    /// The observer processes `message`, must accept it, applies it; returns what it saw.
    fn observe(&mut self, message: &MlsMessage) -> Observed {
        let before = self.observer.to_bytes().unwrap();
        let observed = self.observer.process(&svc(), message, NOW).unwrap();
        assert_eq!(self.observer.to_bytes().unwrap(), before, "process mutated");
        self.observer.apply(observed.clone()).unwrap();
        observed
    }

    /// Member `who` commits with `options`; the observer stages and merges it first, then
    /// every member processes it. Returns the staged commit and the commit's output.
    fn commit(
        &mut self,
        who: &str,
        options: CommitOptions,
    ) -> (StagedPublicCommit, mls_engine::group::CommitOutput) {
        let i = self.index_of(who);
        let out = self.members[i].1.commit(&svc(), options, NOW).unwrap();
        let staged = match self.observe(&out.commit) {
            Observed::Commit(staged) => *staged,
            other => panic!("not a commit: {other:?}"),
        };
        if let Some(welcome) = &out.welcome {
            staged.check_welcome(welcome).unwrap();
        }
        for (j, (_, group)) in self.members.iter_mut().enumerate() {
            if j == i {
                group.merge_pending_commit().unwrap();
            } else if staged
                .removed()
                .iter()
                .any(|r| r.leaf_index == group.own_leaf_index())
            {
                let processed = group.process(&svc(), &out.commit, NOW).unwrap();
                assert!(matches!(
                    processed,
                    ProcessedMessage::Commit {
                        removed_us: true,
                        ..
                    }
                ));
            } else {
                group.process(&svc(), &out.commit, NOW).unwrap();
            }
        }
        let removed: Vec<LeafIndex> = staged.removed().iter().map(|r| r.leaf_index).collect();
        self.members.retain(|(_, g)| {
            !removed.contains(&g.own_leaf_index()) || g.epoch() == staged.new_epoch()
        });
        (staged, out)
    }

    /// `who` adds `names` by value; the joiners join from the Welcome.
    fn add(&mut self, who: &str, names: &[&str]) -> StagedPublicCommit {
        let joiners: Vec<(Client, KeyPackageBundle)> = names
            .iter()
            .map(|n| {
                let c = Client::new(self.suite, n);
                let kp = c.key_package();
                (c, kp)
            })
            .collect();
        let mut options = CommitOptions::new();
        for (_, kp) in &joiners {
            options = options.proposal(Proposal::add(kp.key_package.clone()));
        }
        let (staged, out) = self.commit(who, options);
        let refs: Vec<_> = joiners.iter().map(|(_, kp)| kp.reference.clone()).collect();
        assert_eq!(staged.welcome_recipients(), refs);
        for (client, kp) in joiners {
            let group = Group::join_from_welcome(
                &svc(),
                GroupConfig::default(),
                out.welcome.as_ref().unwrap(),
                &kp,
                client.signer.clone(),
                None,
                NOW,
            )
            .unwrap();
            self.members.push((client, group));
        }
        self.check();
        staged
    }

    /// The observer agrees with every member: epoch, GroupContext (tree hash, transcript),
    /// roster; its state round-trips; a member's GroupInfo of the epoch checks out.
    fn check(&self) {
        let o = &self.observer;
        for (_, g) in &self.members {
            assert_eq!(o.epoch(), g.epoch());
            assert_eq!(o.group_context(), g.group_context());
            assert_eq!(o.tree_hash(), g.group_context().tree_hash.as_slice());
            assert_eq!(o.confirmation_tag(), g.confirmation_tag());
            let roster: Vec<(LeafIndex, Vec<u8>, Vec<u8>)> = g
                .members()
                .into_iter()
                .map(|m| {
                    (
                        m.index,
                        m.credential.basic_identity().unwrap().to_vec(),
                        m.signature_key.clone(),
                    )
                })
                .collect();
            let seen: Vec<(LeafIndex, Vec<u8>, Vec<u8>)> = o
                .members()
                .map(|m| (m.leaf_index, m.identity.to_vec(), m.signature_key.to_vec()))
                .collect();
            assert_eq!(seen, roster);
            let info = g.group_info(&svc(), true, true).unwrap();
            o.check_group_info(&svc(), &info).unwrap();
        }
        let bytes = o.to_bytes().unwrap();
        let back = PublicGroup::from_bytes(&bytes).unwrap();
        assert_eq!(&back, o);
        assert_eq!(back.to_bytes().unwrap(), bytes);
        let split = PublicGroup::from_parts(
            &o.hot_state_to_bytes().unwrap(),
            &o.export_ratchet_tree().unwrap(),
        )
        .unwrap();
        assert_eq!(&split, o);
    }

    fn member(&mut self, name: &str) -> &mut Group {
        let i = self.index_of(name);
        &mut self.members[i].1
    }
}

#[test]
fn observer_follows_adds_updates_and_removes() {
    for suite in SUITES {
        let mut s = Scene::new(suite, suite == 2);
        let staged = s.add("alice", &["bob", "carol"]);
        assert_eq!(staged.added().len(), 2);
        assert_eq!(staged.added()[0].identity, b"bob");
        assert_eq!(staged.added()[1].leaf_index, LeafIndex(2));
        assert!(matches!(
            staged.sender(),
            ObservedSender::Member { leaf_index: LeafIndex(0), identity } if identity == b"alice"
        ));
        s.add("bob", &["dave"]);
        // An empty commit with a path (a full update).
        let (staged, _) = s.commit("carol", CommitOptions::new().with_path());
        assert_eq!(staged.path_leaf(), Some(LeafIndex(2)));
        s.check();
        // Remove by value.
        let (staged, _) = s.commit("dave", CommitOptions::new().proposal(Proposal::remove(1)));
        assert_eq!(staged.removed().len(), 1);
        assert_eq!(staged.removed()[0].identity, b"bob");
        s.check();
        assert_eq!(s.observer.members().count(), 3);
    }
}
