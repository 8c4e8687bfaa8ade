//! The public view of a group (`PublicGroup`, issue 14): an observer without private keys
//! follows groups of vmls members and of OpenMLS 0.9.2 members through adds, removes,
//! updates, external commits and proposals by reference, in suites 1-3; after every step its
//! epoch, tree hash, GroupContext and roster equal a member's. Bad input is refused with a
//! typed error and leaves the observer's bytes as they were.

#[path = "interop_openmls/harness.rs"]
#[allow(dead_code)]
mod harness;

use mls_engine::codec::{
    Commit, Credential, FramedContent, FramedContentBody, GroupInfo, Lifetime, MlsMessage,
    MlsMessageBody, Proposal, ProposalOrRef, ProposalRef, PublicMessage, Sender,
};
use mls_engine::crypto::Secret;
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SignatureKeyPair};
use mls_engine::framing::{protect_public, sign_public};
use mls_engine::group::public::{ExternalJoin, GroupInfoField, ObservedSender};
use mls_engine::group::{
    CommitOptions, ExternalCommitOptions, Group, GroupConfig, Observed, OwnLeaf, ProcessedMessage,
    PublicGroup, PublicGroupError, Services, StagedPublicCommit,
};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};
use mls_engine::tree::LeafIndex;
use mls_engine::tree::TreeKemError;

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

    /// Member `who` sends `proposal`; the observer and every other member take it in.
    fn propose(&mut self, who: &str, proposal: Proposal) -> Observed {
        let i = self.index_of(who);
        let (message, reference) = self.members[i].1.propose(&svc(), proposal, b"").unwrap();
        self.deliver_proposal(i, &message, &reference)
    }

    fn deliver_proposal(
        &mut self,
        from: usize,
        message: &MlsMessage,
        reference: &mls_engine::codec::ProposalRef,
    ) -> Observed {
        let observed = self.observe(message);
        match &observed {
            Observed::Proposal(p) => assert_eq!(p.reference(), reference),
            other => panic!("not a proposal: {other:?}"),
        }
        for (j, (_, g)) in self.members.iter_mut().enumerate() {
            if j != from {
                g.process(&svc(), message, NOW).unwrap();
            }
        }
        observed
    }

    /// `name` joins by external commit from `from`'s GroupInfo (the tree in it), removing
    /// `resync` (its old leaf) if given.
    fn join_externally(
        &mut self,
        name: &str,
        from: &str,
        resync: Option<LeafIndex>,
    ) -> StagedPublicCommit {
        let info = self.member(from).group_info(&svc(), true, true).unwrap();
        self.observer.check_group_info(&svc(), &info).unwrap();
        let client = Client::new(self.suite, name);
        let (group, commit) = Group::join_by_external_commit(
            &svc(),
            GroupConfig::default(),
            &info,
            None,
            client.own_leaf(),
            ExternalCommitOptions {
                resync_remove: resync,
                ..ExternalCommitOptions::default()
            },
            NOW,
        )
        .unwrap();
        let staged = match self.observe(&commit) {
            Observed::Commit(staged) => *staged,
            other => panic!("not a commit: {other:?}"),
        };
        for (_, g) in self.members.iter_mut() {
            g.process(&svc(), &commit, NOW).unwrap();
        }
        self.members
            .retain(|(_, g)| *g.status() == mls_engine::group::GroupStatus::Active);
        self.members.push((client, group));
        self.check();
        staged
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

#[test]
fn observer_follows_proposals_by_reference() {
    for suite in SUITES {
        let mut s = Scene::new(suite, false);
        s.add("alice", &["bob", "carol", "dave"]);
        // An Update from bob, a Remove of dave from carol, an Add of erin from alice.
        let i = s.index_of("bob");
        let (update, reference) = s.members[i]
            .1
            .propose_update(&svc(), HpkeKeySource::Generate, None)
            .unwrap();
        let observed = s.deliver_proposal(i, &update, &reference);
        assert!(matches!(
            observed.sender(),
            Some(ObservedSender::Member {
                leaf_index: LeafIndex(1),
                ..
            })
        ));
        s.propose("carol", Proposal::remove(3));
        let erin = Client::new(suite, "erin");
        let erin_kp = erin.key_package();
        s.propose("alice", Proposal::add(erin_kp.key_package.clone()));
        assert_eq!(s.observer.pending_proposals().len(), 3);
        s.check();
        // A proposal seen twice is stored once.
        let first = s.observer.pending_proposals()[0].clone();
        let again = s.observer.process(&svc(), &update, NOW).unwrap();
        s.observer.apply(again).unwrap();
        assert_eq!(s.observer.pending_proposals().len(), 3);
        assert_eq!(s.observer.pending_proposals()[0], first);

        // Alice commits the three by reference.
        let (staged, out) = s.commit("alice", CommitOptions::new());
        let MlsMessageBody::PublicMessage(m) = &out.commit.body else {
            panic!("public handshakes")
        };
        let mls_engine::codec::FramedContentBody::Commit(c) = &m.content.body else {
            panic!("a commit")
        };
        assert!(c
            .proposals
            .iter()
            .all(|p| matches!(p, ProposalOrRef::Reference(_))));
        assert_eq!(staged.updated().len(), 1);
        assert_eq!(staged.updated()[0].leaf_index, LeafIndex(1));
        assert_eq!(staged.removed()[0].identity, b"dave");
        assert_eq!(staged.added()[0].identity, b"erin");
        assert_eq!(staged.added()[0].leaf_index, LeafIndex(3));
        assert_eq!(staged.welcome_recipients(), vec![erin_kp.reference.clone()]);
        assert!(s.observer.pending_proposals().is_empty());
        let group = Group::join_from_welcome(
            &svc(),
            GroupConfig::default(),
            out.welcome.as_ref().unwrap(),
            &erin_kp,
            erin.signer.clone(),
            None,
            NOW,
        )
        .unwrap();
        s.members.push((erin, group));
        s.check();
    }
}

#[test]
fn observer_follows_external_commits_and_resync() {
    for suite in SUITES {
        let mut s = Scene::new(suite, false);
        s.add("alice", &["bob"]);
        let staged = s.join_externally("frank", "bob", None);
        assert!(staged.is_external());
        assert_eq!(
            staged.external_join(),
            Some(&ExternalJoin {
                leaf_index: LeafIndex(2),
                identity: b"frank".to_vec(),
                resync_removed: None,
            })
        );
        assert!(matches!(
            staged.sender(),
            ObservedSender::NewMemberCommit { identity } if identity == b"frank"
        ));
        // Frank rejoins (a new device state) and removes his old leaf.
        s.members.retain(|(c, _)| c.name != b"frank");
        let staged = s.join_externally("frank", "alice", Some(LeafIndex(2)));
        let join = staged.external_join().unwrap();
        assert_eq!(join.leaf_index, LeafIndex(2));
        assert_eq!(
            join.resync_removed.as_ref().unwrap().leaf_index,
            LeafIndex(2)
        );
        assert_eq!(s.observer.members().count(), 3);
        // The group goes on.
        s.add("frank", &["gina"]);
        s.commit("gina", CommitOptions::new().with_path());
        s.check();
    }
}

/// `message` (a PublicMessage of `group`'s epoch) with its content changed by `change` and
/// signed again with `signer`: the signature is valid, so only the deeper checks can fail.
/// The membership tag is computed with a key the observer does not know (nor check).
fn resigned(
    group: &Group,
    signer: &SignatureKeyPair,
    message: &MlsMessage,
    change: impl FnOnce(&mut FramedContent),
) -> MlsMessage {
    let cs = PROVIDER.suite(group.cipher_suite()).unwrap();
    let MlsMessageBody::PublicMessage(m) = &message.body else {
        panic!("a PublicMessage")
    };
    let mut content = m.content.clone();
    change(&mut content);
    let mut auth = sign_public(cs, content, group.group_context(), &signer.private_key).unwrap();
    auth.auth.confirmation_tag = m.auth.confirmation_tag.clone();
    let key = Secret::new(vec![7; cs.params().hash_len()]);
    let out = protect_public(cs, auth, group.group_context(), Some(&key)).unwrap();
    MlsMessage::new(MlsMessageBody::PublicMessage(out))
}

fn public_mut(message: &mut MlsMessage) -> &mut PublicMessage {
    match &mut message.body {
        MlsMessageBody::PublicMessage(m) => m,
        _ => panic!("a PublicMessage"),
    }
}

fn commit_mut(content: &mut FramedContent) -> &mut Commit {
    match &mut content.body {
        FramedContentBody::Commit(c) => c,
        _ => panic!("a commit"),
    }
}

/// The observer refuses `message` with an error, and its state is byte-identical after.
fn refuses(observer: &PublicGroup, message: &MlsMessage) -> PublicGroupError {
    let before = observer.to_bytes().unwrap();
    let err = observer.process(&svc(), message, NOW).unwrap_err();
    assert_eq!(
        observer.to_bytes().unwrap(),
        before,
        "state changed on {err:?}"
    );
    err
}

#[test]
fn bad_input_is_refused_with_a_typed_error_and_changes_nothing() {
    for suite in SUITES {
        let mut s = Scene::new(suite, false);
        s.add("alice", &["bob", "carol"]);
        let bob = s.index_of("bob");
        let signer = s.members[bob].0.signer.clone();
        let out = s.members[bob]
            .1
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        s.members[bob].1.clear_pending_commit();
        let group = s.members[bob].1.clone();
        let o = s.observer.clone();

        // Garbage: undecodable bytes, and a truncated commit.
        let bytes = out.commit.to_bytes().unwrap();
        let before = o.to_bytes().unwrap();
        assert!(matches!(
            o.process_bytes(&svc(), &[0, 1, 0, 1, 0xff, 3], 1 << 20, NOW),
            Err(PublicGroupError::Codec(_))
        ));
        assert!(matches!(
            o.process_bytes(&svc(), &bytes[..bytes.len() - 1], 1 << 20, NOW),
            Err(PublicGroupError::Codec(_))
        ));
        assert!(matches!(
            o.process_bytes(&svc(), &bytes, 16, NOW),
            Err(PublicGroupError::MessageTooLarge { .. })
        ));
        assert_eq!(o.to_bytes().unwrap(), before);

        // A commit for another epoch (re-signed, so only the epoch is wrong).
        let future = resigned(&group, &signer, &out.commit, |c| c.epoch += 1);
        assert_eq!(
            refuses(&o, &future),
            PublicGroupError::WrongEpoch {
                current: o.epoch(),
                got: o.epoch() + 1
            }
        );
        // Another group.
        let other = resigned(&group, &signer, &out.commit, |c| {
            c.group_id = b"other".to_vec().into()
        });
        assert_eq!(refuses(&o, &other), PublicGroupError::WrongGroup);

        // A bad signature.
        let mut bad_sig = out.commit.clone();
        let sig = &mut public_mut(&mut bad_sig).auth.signature;
        let mut bytes = sig.as_slice().to_vec();
        bytes[0] ^= 1;
        *sig = bytes.into();
        assert_eq!(refuses(&o, &bad_sig), PublicGroupError::BadSignature);
        // Signed by someone else in bob's name.
        let mallory = Client::new(suite, "mallory");
        let forged = resigned(&group, &mallory.signer, &out.commit, |_| {});
        assert_eq!(refuses(&o, &forged), PublicGroupError::BadSignature);

        // No membership tag on a member's message.
        let mut untagged = out.commit.clone();
        public_mut(&mut untagged).membership_tag = None;
        assert!(matches!(
            refuses(&o, &untagged),
            PublicGroupError::Framing(_)
        ));

        // An invalid proposal list: carol removed twice; bob removing himself.
        let twice = resigned(&group, &signer, &out.commit, |c| {
            commit_mut(c).proposals = vec![
                ProposalOrRef::Proposal(Proposal::remove(2)),
                ProposalOrRef::Proposal(Proposal::remove(2)),
            ]
        });
        assert!(matches!(
            refuses(&o, &twice),
            PublicGroupError::InvalidProposalList(_)
        ));
        let self_remove = resigned(&group, &signer, &out.commit, |c| {
            commit_mut(c).proposals = vec![ProposalOrRef::Proposal(Proposal::remove(1))]
        });
        assert!(matches!(
            refuses(&o, &self_remove),
            PublicGroupError::InvalidProposalList(_)
        ));
        // A reference to a proposal the observer never saw.
        let unknown = resigned(&group, &signer, &out.commit, |c| {
            commit_mut(c).proposals =
                vec![ProposalOrRef::Reference(ProposalRef(vec![5; 32].into()))]
        });
        assert_eq!(refuses(&o, &unknown), PublicGroupError::UnknownProposalRef);
        // A commit that needs a path and has none.
        let no_path = resigned(&group, &signer, &out.commit, |c| commit_mut(c).path = None);
        assert_eq!(refuses(&o, &no_path), PublicGroupError::MissingPath);

        // A bad path: another key at the first path node, so the new leaf's parent hash is
        // wrong.
        let bad_path = resigned(&group, &signer, &out.commit, |c| {
            let path = commit_mut(c).path.as_mut().unwrap();
            let other = s.members[0].1.ratchet_tree().leaf(LeafIndex(0)).unwrap();
            path.nodes[0].encryption_key = other.encryption_key.clone();
        });
        assert!(matches!(
            refuses(&o, &bad_path),
            PublicGroupError::InvalidPath(TreeKemError::PublicKeyInUse)
        ));
        let cs = PROVIDER.suite(group.cipher_suite()).unwrap();
        let fresh = cs.hpke_generate_key_pair().unwrap();
        let bad_path = resigned(&group, &signer, &out.commit, |c| {
            let path = commit_mut(c).path.as_mut().unwrap();
            path.nodes[0].encryption_key = fresh.public_key.clone().into();
        });
        assert_eq!(
            refuses(&o, &bad_path),
            PublicGroupError::InvalidPath(TreeKemError::ParentHashMismatch)
        );
        // A path with one node too few.
        let short = resigned(&group, &signer, &out.commit, |c| {
            commit_mut(c).path.as_mut().unwrap().nodes.pop();
        });
        assert!(matches!(
            refuses(&o, &short),
            PublicGroupError::InvalidPath(TreeKemError::PathLengthMismatch { .. })
        ));

        // A non-member: a leaf that does not exist; an external sender the group has none of.
        let ghost = resigned(&group, &mallory.signer, &out.commit, |c| {
            c.sender = Sender::Member(9)
        });
        assert_eq!(refuses(&o, &ghost), PublicGroupError::UnknownSender(9));
        let proposal = mls_engine::group::external_proposal(
            &svc(),
            group.group_context(),
            0,
            Proposal::remove(1),
            &mallory.signer,
            b"",
        )
        .unwrap();
        assert_eq!(
            refuses(&o, &proposal),
            PublicGroupError::UnknownExternalSender(0)
        );
        // A new member's proposal with someone else's KeyPackage signature (mallory signs
        // an Add of dave's KeyPackage).
        let dave = Client::new(suite, "dave");
        let mut add = mls_engine::group::new_member_proposal(
            &svc(),
            group.group_context(),
            dave.key_package().key_package,
            &dave.signer,
        )
        .unwrap();
        let resigned_add = {
            let content = public_mut(&mut add).content.clone();
            let auth = sign_public(
                cs,
                content,
                group.group_context(),
                &mallory.signer.private_key,
            )
            .unwrap();
            let m = protect_public(cs, auth, group.group_context(), None).unwrap();
            MlsMessage::new(MlsMessageBody::PublicMessage(m))
        };
        assert_eq!(refuses(&o, &resigned_add), PublicGroupError::BadSignature);
        // An application message in a PublicMessage cannot even be built; a PrivateMessage
        // of another group is refused, of this group yields its header unverified.
        let app = s.members[0]
            .1
            .encrypt_application(&svc(), b"hello", b"")
            .unwrap();
        match o.process(&svc(), &app, NOW).unwrap() {
            Observed::Unverified(h) => {
                assert_eq!(h.epoch, o.epoch());
                assert_eq!(h.content_type, mls_engine::codec::ContentType::Application);
            }
            other => panic!("{other:?}"),
        }

        // The genuine commit still goes through, once; replayed after the merge it is for
        // an old epoch.
        let staged = match s.observer.process(&svc(), &out.commit, NOW).unwrap() {
            Observed::Commit(c) => c,
            other => panic!("{other:?}"),
        };
        let stale_staged = staged.clone();
        s.observer.merge(*staged).unwrap();
        assert_eq!(
            refuses(&s.observer, &out.commit),
            PublicGroupError::WrongEpoch {
                current: o.epoch() + 1,
                got: o.epoch()
            }
        );
        // A staged commit of the old epoch cannot be merged again.
        let before = s.observer.to_bytes().unwrap();
        assert!(matches!(
            s.observer.merge(*stale_staged),
            Err(PublicGroupError::StaleObservation { .. })
        ));
        assert_eq!(s.observer.to_bytes().unwrap(), before);
    }
}

#[test]
fn the_confirmation_tag_is_not_checked_by_the_observer() {
    // Documented limitation: the observer has no confirmation key. A commit with a wrong tag
    // passes its checks (members refuse it); the tag becomes part of its transcript, so the
    // GroupInfo of the real epoch no longer matches its view.
    let mut s = Scene::new(1, false);
    s.add("alice", &["bob"]);
    let out = s.members[1]
        .1
        .commit(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    let mut bad_tag = out.commit.clone();
    public_mut(&mut bad_tag).auth.confirmation_tag = Some(vec![0; 32].into());
    let observed = s.observer.process(&svc(), &bad_tag, NOW).unwrap();
    assert!(observed.commit().is_some());
    assert!(s.members[0].1.process(&svc(), &bad_tag, NOW).is_err());
}

#[test]
fn group_info_checks() {
    for suite in SUITES {
        let mut s = Scene::new(suite, false);
        s.add("alice", &["bob"]);
        let stale = s.members[0].1.group_info(&svc(), true, true).unwrap();
        s.commit("bob", CommitOptions::new().with_path());
        let o = &s.observer;
        let bob = &s.members[1];
        let good = bob.1.group_info(&svc(), false, true).unwrap();
        o.check_group_info(&svc(), &good).unwrap();
        // Stale: the previous epoch's.
        assert_eq!(
            o.check_group_info(&svc(), &stale),
            Err(PublicGroupError::GroupInfoWrongEpoch {
                current: o.epoch(),
                got: o.epoch() - 1
            })
        );
        let cs = PROVIDER.suite(bob.1.cipher_suite()).unwrap();
        let resign = |change: &dyn Fn(&mut GroupInfo)| {
            let mut info = good.clone();
            change(&mut info);
            info.sign(cs, &bob.0.signer.private_key).unwrap();
            info
        };
        // A wrong tree hash, transcript, extensions, confirmation tag: each its field.
        let wrong_hash = resign(&|i| i.group_context.tree_hash = vec![0; 32].into());
        assert_eq!(
            o.check_group_info(&svc(), &wrong_hash),
            Err(PublicGroupError::GroupInfoMismatch(
                GroupInfoField::TreeHash
            ))
        );
        let wrong_transcript =
            resign(&|i| i.group_context.confirmed_transcript_hash = vec![1; 32].into());
        assert_eq!(
            o.check_group_info(&svc(), &wrong_transcript),
            Err(PublicGroupError::GroupInfoMismatch(
                GroupInfoField::ConfirmedTranscriptHash
            ))
        );
        let wrong_tag = resign(&|i| i.confirmation_tag = vec![2; 32].into());
        assert_eq!(
            o.check_group_info(&svc(), &wrong_tag),
            Err(PublicGroupError::GroupInfoMismatch(
                GroupInfoField::ConfirmationTag
            ))
        );
        // A ratchet_tree extension with another tree (the previous epoch's).
        let old_tree = stale.extensions.clone();
        let wrong_tree = resign(&|i| {
            i.extensions
                .retain(|e| e.extension_type != mls_engine::codec::ExtensionType::RATCHET_TREE);
            i.extensions.extend(
                old_tree
                    .iter()
                    .filter(|e| e.extension_type == mls_engine::codec::ExtensionType::RATCHET_TREE)
                    .cloned(),
            );
        });
        assert_eq!(
            o.check_group_info(&svc(), &wrong_tree),
            Err(PublicGroupError::GroupInfoMismatch(
                GroupInfoField::RatchetTree
            ))
        );
        // A bad signature; a signer that is no member; another member's key.
        let mut bad_sig = good.clone();
        let mut sig = bad_sig.signature.as_slice().to_vec();
        sig[0] ^= 1;
        bad_sig.signature = sig.into();
        assert_eq!(
            o.check_group_info(&svc(), &bad_sig),
            Err(PublicGroupError::BadGroupInfoSignature)
        );
        let no_member = resign(&|i| i.signer = 7);
        assert_eq!(
            o.check_group_info(&svc(), &no_member),
            Err(PublicGroupError::UnknownGroupInfoSigner(7))
        );
        let wrong_signer = resign(&|i| i.signer = 0);
        assert_eq!(
            o.check_group_info(&svc(), &wrong_signer),
            Err(PublicGroupError::BadGroupInfoSignature)
        );

        // Starting a view: a bad signature, no tree, a tree that is not the group's.
        assert_eq!(
            PublicGroup::from_group_info(&svc(), &bad_sig, Some(o.ratchet_tree().clone())),
            Err(PublicGroupError::BadGroupInfoSignature)
        );
        assert_eq!(
            PublicGroup::from_group_info(&svc(), &good, None),
            Err(PublicGroupError::MissingRatchetTree)
        );
        let old = PublicGroup::from_group_info(&svc(), &stale, None).unwrap();
        assert!(matches!(
            PublicGroup::from_group_info(&svc(), &good, Some(old.ratchet_tree().clone())),
            Err(PublicGroupError::InvalidTree(_))
        ));
        let fresh =
            PublicGroup::from_group_info(&svc(), &good, Some(o.ratchet_tree().clone())).unwrap();
        assert_eq!(&fresh, o);
        // A suite the provider does not implement.
        let mut unknown_suite = good.clone();
        unknown_suite.group_context.cipher_suite = CipherSuite(0x7777);
        assert_eq!(
            PublicGroup::from_group_info(&svc(), &unknown_suite, Some(o.ratchet_tree().clone())),
            Err(PublicGroupError::CipherSuite(CipherSuite(0x7777)))
        );
    }
}

/// A group of OpenMLS 0.9.2 members and an observer of it.
struct OpenMlsScene {
    members: Vec<(harness::OpenMlsClient, openmls::prelude::MlsGroup)>,
    observer: PublicGroup,
    /// The time KeyPackage lifetimes are checked at: OpenMLS dates its leaves by the clock
    /// (an hour back to three months ahead), so an hour after the creator's `not_before`.
    now: u64,
}

fn decode(bytes: &[u8]) -> MlsMessage {
    MlsMessage::decode(bytes).unwrap()
}

impl OpenMlsScene {
    fn new(suite: u16) -> Self {
        let alice = harness::OpenMlsClient::new(b"alice", suite);
        let group = alice.create_group();
        let info = decode(&harness::export_group_info(&alice, &group));
        let observer = PublicGroup::from_group_info_message(&svc(), &info, None).unwrap();
        let now = match &observer
            .members()
            .next()
            .unwrap()
            .leaf_node
            .leaf_node_source
        {
            mls_engine::codec::LeafNodeSource::KeyPackage(lifetime) => lifetime.not_before + 3600,
            other => panic!("{other:?}"),
        };
        let scene = Self {
            members: vec![(alice, group)],
            observer,
            now,
        };
        scene.check();
        scene
    }

    fn index_of(&self, name: &str) -> usize {
        self.members
            .iter()
            .position(|(_, g)| {
                let own = g.own_leaf_node().unwrap();
                own.credential().serialized_content() == name.as_bytes()
            })
            .unwrap()
    }

    /// The observer processes and applies `bytes`; every member but `from` processes them.
    fn deliver(&mut self, from: usize, bytes: &[u8]) -> Observed {
        let message = decode(bytes);
        let before = self.observer.to_bytes().unwrap();
        let observed = self.observer.process(&svc(), &message, self.now).unwrap();
        assert_eq!(self.observer.to_bytes().unwrap(), before);
        self.observer.apply(observed.clone()).unwrap();
        for (i, (client, group)) in self.members.iter_mut().enumerate() {
            if i != from {
                client.process(group, bytes);
            }
        }
        self.members.retain(|(_, g)| g.is_active());
        observed
    }

    /// The observer agrees with every OpenMLS member: epoch, tree hash, GroupContext, roster;
    /// each member's GroupInfo checks out against it.
    fn check(&self) {
        let o = &self.observer;
        for (client, group) in &self.members {
            assert_eq!(o.epoch(), group.epoch().as_u64());
            assert_eq!(o.tree_hash(), harness::tree_hash(group).as_slice());
            assert_eq!(
                mls_engine::codec::encode(o.group_context()).unwrap(),
                harness::export_group_context(group)
            );
            let roster: Vec<(LeafIndex, Vec<u8>, Vec<u8>)> = group
                .members()
                .map(|m| {
                    (
                        LeafIndex(m.index.u32()),
                        m.credential.serialized_content().to_vec(),
                        m.signature_key.clone(),
                    )
                })
                .collect();
            let seen: Vec<(LeafIndex, Vec<u8>, Vec<u8>)> = o
                .members()
                .map(|m| (m.leaf_index, m.identity.to_vec(), m.signature_key.to_vec()))
                .collect();
            assert_eq!(seen, roster);
            let info = decode(&harness::export_group_info(client, group));
            let MlsMessageBody::GroupInfo(info) = &info.body else {
                panic!("a GroupInfo")
            };
            o.check_group_info(&svc(), info).unwrap();
        }
        let back = PublicGroup::from_bytes(&o.to_bytes().unwrap()).unwrap();
        assert_eq!(&back, o);
    }

    fn join(&mut self, client: harness::OpenMlsClient, welcome: &[u8]) {
        let group = client.join(welcome);
        self.members.push((client, group));
    }
}

#[test]
fn observer_follows_a_group_of_openmls_members() {
    for suite in harness::SUITES {
        let mut s = OpenMlsScene::new(suite);
        // Alice adds bob and carol (with a path).
        let bob = harness::OpenMlsClient::new(b"bob", suite);
        let carol = harness::OpenMlsClient::new(b"carol", suite);
        let kps = [
            bob.key_package().key_package().clone(),
            carol.key_package().key_package().clone(),
        ];
        let out = {
            let (alice, group) = &mut s.members[0];
            alice.add_members(group, &kps)
        };
        let observed = s.deliver(0, &out.commit);
        let staged = observed.commit().unwrap();
        assert_eq!(staged.added().len(), 2);
        assert_eq!(staged.added()[1].identity, b"carol");
        let MlsMessageBody::Welcome(welcome) = &decode(&out.welcome).body else {
            panic!("a Welcome")
        };
        staged.check_welcome(welcome).unwrap();
        assert_eq!(
            mls_engine::group::public::welcome_new_members_from_bytes(&out.welcome).unwrap(),
            staged.welcome_recipients()
        );
        s.join(bob, &out.welcome);
        s.join(carol, &out.welcome);
        s.check();

        // Bob updates with a full path.
        let i = s.index_of("bob");
        let commit = {
            let (c, g) = &mut s.members[i];
            c.self_update(g)
        };
        let staged = s.deliver(i, &commit);
        assert_eq!(staged.commit().unwrap().path_leaf(), Some(LeafIndex(1)));
        s.check();

        // Carol proposes an Update, alice an Add of dave; bob commits both by reference.
        let i = s.index_of("carol");
        let proposal = {
            let (c, g) = &mut s.members[i];
            c.propose_self_update(g)
        };
        assert!(matches!(s.deliver(i, &proposal), Observed::Proposal(_)));
        let dave = harness::OpenMlsClient::new(b"dave", suite);
        let dave_kp = dave.key_package().key_package().clone();
        let proposal = {
            let (c, g) = &mut s.members[0];
            c.propose_add(g, &dave_kp)
        };
        assert!(matches!(s.deliver(0, &proposal), Observed::Proposal(_)));
        assert_eq!(s.observer.pending_proposals().len(), 2);
        let i = s.index_of("bob");
        let (commit, welcome) = {
            let (c, g) = &mut s.members[i];
            c.commit_pending(g)
        };
        let observed = s.deliver(i, &commit);
        let staged = observed.commit().unwrap();
        assert_eq!(staged.updated()[0].identity, b"carol");
        assert_eq!(staged.added()[0].identity, b"dave");
        s.join(dave, &welcome.unwrap());
        s.check();

        // Dave removes bob.
        let i = s.index_of("dave");
        let commit = {
            let (c, g) = &mut s.members[i];
            c.remove_members(g, &[1])
        };
        let observed = s.deliver(i, &commit);
        assert_eq!(observed.commit().unwrap().removed()[0].identity, b"bob");
        s.check();

        // Erin joins by external commit from alice's GroupInfo.
        let erin = harness::OpenMlsClient::new(b"erin", suite);
        let info = harness::export_group_info(&s.members[0].0, &s.members[0].1);
        let (group, commit) = erin.join_by_external_commit(
            &info,
            None,
            openmls::prelude::MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
        );
        let observed = s.deliver(usize::MAX, &commit);
        let join = observed.commit().unwrap().external_join().unwrap();
        assert_eq!(join.identity, b"erin");
        assert_eq!(join.leaf_index, LeafIndex(1));
        s.members.push((erin, group));
        s.check();

        // Erin commits with a path; carol adds and removes in one commit.
        let i = s.index_of("erin");
        let commit = {
            let (c, g) = &mut s.members[i];
            c.self_update(g)
        };
        s.deliver(i, &commit);
        s.check();
        let fred = harness::OpenMlsClient::new(b"fred", suite);
        let fred_kp = fred.key_package().key_package().clone();
        let i = s.index_of("carol");
        let (commit, welcome) = {
            let (c, g) = &mut s.members[i];
            c.commit_with(g, &[fred_kp], &[0], false, false)
        };
        let observed = s.deliver(i, &commit);
        let staged = observed.commit().unwrap();
        assert_eq!(staged.removed()[0].identity, b"alice");
        assert_eq!(staged.added()[0].identity, b"fred");
        s.join(fred, &welcome.unwrap());
        s.check();

        // An add-only commit without a path: the new leaf is unmerged at the parents above.
        let gina = harness::OpenMlsClient::new(b"gina", suite);
        let gina_kp = gina.key_package().key_package().clone();
        let i = s.index_of("erin");
        let out = {
            let (c, g) = &mut s.members[i];
            c.add_members_without_path(g, &[gina_kp])
        };
        let observed = s.deliver(i, &out.commit);
        assert_eq!(observed.commit().unwrap().path_leaf(), None);
        s.join(gina, &out.welcome);
        s.check();
        // A view started now from a member's GroupInfo is the one that followed the group.
        let (c, g) = &s.members[0];
        let info = decode(&harness::export_group_info(c, g));
        let fresh = PublicGroup::from_group_info_message(&svc(), &info, None).unwrap();
        assert_eq!(fresh, s.observer);
    }
}

#[test]
fn new_member_proposals_by_reference_and_reinit() {
    for suite in SUITES {
        let mut s = Scene::new(suite, false);
        s.add("alice", &["bob"]);
        // Dave asks to join (a new_member_proposal); bob commits it by reference.
        let dave = Client::new(suite, "dave");
        let dave_kp = dave.key_package();
        let ask = mls_engine::group::new_member_proposal(
            &svc(),
            s.observer.group_context(),
            dave_kp.key_package.clone(),
            &dave.signer,
        )
        .unwrap();
        let observed = s.observe(&ask);
        assert!(matches!(
            observed.sender(),
            Some(ObservedSender::NewMemberProposal { identity }) if identity == b"dave"
        ));
        for (_, g) in s.members.iter_mut() {
            g.process(&svc(), &ask, NOW).unwrap();
        }
        let (staged, out) = s.commit("bob", CommitOptions::new());
        assert_eq!(staged.added()[0].identity, b"dave");
        assert_eq!(
            PublicGroup::welcome_recipients(&staged),
            vec![dave_kp.reference.clone()]
        );
        let group = Group::join_from_welcome(
            &svc(),
            GroupConfig::default(),
            out.welcome.as_ref().unwrap(),
            &dave_kp,
            dave.signer.clone(),
            None,
            NOW,
        )
        .unwrap();
        s.members.push((dave, group));
        s.check();

        // A Welcome for other recipients does not match the commit.
        let erin = Client::new(suite, "erin");
        let other = s
            .member("alice")
            .commit(
                &svc(),
                CommitOptions::new().proposal(Proposal::add(erin.key_package().key_package)),
                NOW,
            )
            .unwrap();
        s.member("alice").clear_pending_commit();
        assert_eq!(
            staged.check_welcome(other.welcome.as_ref().unwrap()),
            Err(PublicGroupError::WelcomeMismatch)
        );

        // Alice proposes a ReInit, dave commits it: the view is closed.
        let i = s.index_of("alice");
        let (reinit, reference) = s.members[i]
            .1
            .propose_reinit(&svc(), b"new group".to_vec(), CipherSuite(suite), vec![])
            .unwrap();
        s.deliver_proposal(i, &reinit, &reference);
        let (staged, _) = s.commit("dave", CommitOptions::new());
        assert!(staged.reinit().is_some());
        assert_eq!(s.observer.reinit(), staged.reinit());
        let back = PublicGroup::from_bytes(&s.observer.to_bytes().unwrap()).unwrap();
        assert_eq!(back, s.observer);
        let late = s.observer.clone();
        assert_eq!(refuses(&late, &reinit), PublicGroupError::ReInitCommitted);
    }
}

#[test]
fn encrypted_handshakes_yield_their_header_only() {
    let alice = Client::new(1, "alice");
    let config = GroupConfig {
        handshake_wire_format: mls_engine::group::HandshakeWireFormat::Private,
        ..GroupConfig::default()
    };
    let mut group = Group::create(
        &svc(),
        config,
        b"private handshakes".to_vec(),
        alice.suite,
        alice.own_leaf(),
        lifetime(),
        vec![],
    )
    .unwrap();
    let info = group.group_info(&svc(), true, false).unwrap();
    let mut observer = PublicGroup::from_group_info(&svc(), &info, None).unwrap();
    let bob = Client::new(1, "bob");
    let out = group
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(bob.key_package().key_package)),
            NOW,
        )
        .unwrap();
    let observed = observer.process(&svc(), &out.commit, NOW).unwrap();
    assert!(!observed.is_verified());
    assert_eq!(observed.sender(), None);
    assert_eq!(
        observed.content_type(),
        mls_engine::codec::ContentType::Commit
    );
    assert_eq!(observed.epoch(), 0);
    let before = observer.to_bytes().unwrap();
    observer.apply(observed).unwrap();
    assert_eq!(observer.to_bytes().unwrap(), before);
    assert_eq!(observer.epoch(), 0);
}

#[test]
fn every_flipped_byte_of_a_commit_is_refused_unless_it_is_in_a_tag() {
    // The observer is what a server shares between tasks.
    fn shareable<T: Send + Sync>() {}
    shareable::<PublicGroup>();
    shareable::<Observed>();

    let mut s = Scene::new(1, false);
    s.add("alice", &["bob", "carol"]);
    let dave = Client::new(1, "dave");
    let out = s
        .member("bob")
        .commit(
            &svc(),
            CommitOptions::new()
                .proposal(Proposal::add(dave.key_package().key_package))
                .proposal(Proposal::remove(0))
                .with_path(),
            NOW,
        )
        .unwrap();
    let bytes = out.commit.to_bytes().unwrap();
    let MlsMessageBody::PublicMessage(genuine) = &out.commit.body else {
        panic!("a PublicMessage")
    };
    let before = s.observer.to_bytes().unwrap();
    let mut accepted = 0;
    for i in 0..bytes.len() {
        let mut mutated = bytes.clone();
        mutated[i] ^= 0x01;
        let Ok(observed) = s.observer.process_bytes(&svc(), &mutated, 1 << 20, NOW) else {
            continue;
        };
        // Only the parts the signature does not cover and the observer cannot check may
        // change: the membership tag and the confirmation tag.
        assert!(observed.is_verified());
        let message = MlsMessage::decode(&mutated).unwrap();
        let MlsMessageBody::PublicMessage(m) = &message.body else {
            panic!("accepted a non-PublicMessage at byte {i}")
        };
        assert_eq!(m.content, genuine.content, "byte {i}");
        assert_eq!(m.auth.signature, genuine.auth.signature, "byte {i}");
        accepted += 1;
    }
    assert_eq!(s.observer.to_bytes().unwrap(), before);
    // 32-octet membership and confirmation tags (suite 1).
    assert_eq!(accepted, 64);
}

#[test]
fn external_senders_proposals_are_observed_and_committed_by_reference() {
    use mls_engine::codec::{ExtensionPayload as _, ExternalSender, ExternalSendersExtension};
    for suite in SUITES {
        let server = Client::new(suite, "server");
        let alice = Client::new(suite, "alice");
        let extension = ExternalSendersExtension {
            external_senders: vec![ExternalSender {
                signature_key: server.signer.public_key.clone().into(),
                credential: Credential::basic(b"server".to_vec()),
            }],
        }
        .to_extension()
        .unwrap();
        let group = Group::create(
            &svc(),
            GroupConfig::default(),
            b"with an external sender".to_vec(),
            alice.suite,
            alice.own_leaf(),
            lifetime(),
            vec![extension],
        )
        .unwrap();
        let info = group.group_info(&svc(), true, true).unwrap();
        let observer = PublicGroup::from_group_info(&svc(), &info, None).unwrap();
        let mut s = Scene {
            suite,
            members: vec![(alice, group)],
            observer,
        };
        s.add("alice", &["bob", "carol"]);
        // The external sender proposes removing carol; bob commits it by reference.
        let proposal = mls_engine::group::external_proposal(
            &svc(),
            s.observer.group_context(),
            0,
            Proposal::remove(2),
            &server.signer,
            b"",
        )
        .unwrap();
        let observed = s.observe(&proposal);
        assert_eq!(
            observed.sender(),
            Some(&ObservedSender::External {
                index: 0,
                identity: b"server".to_vec()
            })
        );
        for (_, g) in s.members.iter_mut() {
            g.process(&svc(), &proposal, NOW).unwrap();
        }
        let (staged, _) = s.commit("bob", CommitOptions::new());
        assert_eq!(staged.removed()[0].identity, b"carol");
        s.check();
        // Signed by another key under the external sender's index: refused.
        let mallory = Client::new(suite, "mallory");
        let forged = mls_engine::group::external_proposal(
            &svc(),
            s.observer.group_context(),
            0,
            Proposal::remove(1),
            &mallory.signer,
            b"",
        )
        .unwrap();
        assert_eq!(
            refuses(&s.observer, &forged),
            PublicGroupError::BadSignature
        );
    }
}

#[test]
fn malformed_state_bytes_are_typed_errors() {
    let mut s = Scene::new(1, false);
    s.add("alice", &["bob"]);
    let bytes = s.observer.to_bytes().unwrap();
    for cut in [0, 1, 2, 3, bytes.len() / 2, bytes.len() - 1] {
        assert!(matches!(
            PublicGroup::from_bytes(&bytes[..cut]),
            Err(PublicGroupError::Codec(_))
        ));
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        PublicGroup::from_bytes(&longer),
        Err(PublicGroupError::Codec(_))
    ));
    let mut version = bytes.clone();
    version[1] = 9;
    assert_eq!(
        PublicGroup::from_bytes(&version),
        Err(PublicGroupError::UnknownStateVersion(9))
    );
    // Every single-byte flip either fails to decode with a typed error or decodes (no panic).
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x80;
        let _ = PublicGroup::from_bytes(&flipped);
    }
    // The tree must be a tree.
    assert!(PublicGroup::from_parts(&s.observer.hot_state_to_bytes().unwrap(), &[1, 2]).is_err());
}

#[test]
fn safe_aad_is_checked_and_returned() {
    use mls_engine::extensions::{
        AppDataDictionary, ComponentsList, SafeAad, SafeAadError, SafeAadItem, APP_DATA_DICTIONARY,
        SAFE_AAD,
    };
    const COMPONENT: u32 = 0x10;
    let mut dictionary = AppDataDictionary::default();
    dictionary.insert(
        SAFE_AAD,
        ComponentsList::new(vec![COMPONENT]).to_bytes().unwrap(),
    );
    let leaf_params = |c: &Client| {
        let mut params = LeafNodeParams::new(c.suite, Credential::basic(c.name.clone()));
        params.capabilities.extensions.push(APP_DATA_DICTIONARY);
        params
    };
    let alice = Client::new(1, "alice");
    let mut group = Group::create(
        &svc(),
        GroupConfig::default(),
        b"safe aad".to_vec(),
        alice.suite,
        OwnLeaf {
            params: leaf_params(&alice),
            encryption_key: HpkeKeySource::Generate,
            signature_key: alice.signer.clone(),
        },
        lifetime(),
        vec![dictionary.to_extension().unwrap()],
    )
    .unwrap();
    let info = group.group_info(&svc(), true, false).unwrap();
    let mut observer = PublicGroup::from_group_info(&svc(), &info, None).unwrap();
    let bob = Client::new(1, "bob");
    let cs = PROVIDER.suite(bob.suite).unwrap();
    let bob_kp = KeyPackageParams {
        leaf: leaf_params(&bob),
        lifetime: lifetime(),
        extensions: vec![],
    }
    .build_fresh(cs, &bob.signer)
    .unwrap();
    let items = SafeAad {
        aad_items: vec![SafeAadItem::new(COMPONENT, b"upload".to_vec())],
    };
    let out = group
        .commit(
            &svc(),
            CommitOptions {
                safe_aad: Some(items.clone()),
                ..CommitOptions::new().proposal(Proposal::add(bob_kp.key_package.clone()))
            },
            NOW,
        )
        .unwrap();
    let observed = observer.process(&svc(), &out.commit, NOW).unwrap();
    assert_eq!(observed.aad().safe_aad.as_ref(), Some(&items));
    // The same commit with a malformed SafeAAD (re-signed): refused, nothing changed.
    let bad = resigned(&group, &alice.signer, &out.commit, |c| {
        c.authenticated_data = vec![7, 0, 0].into()
    });
    assert!(matches!(
        refuses(&observer, &bad),
        PublicGroupError::SafeAad(SafeAadError::Codec(_))
    ));
    observer.apply(observed).unwrap();
    group.merge_pending_commit().unwrap();
    assert_eq!(observer.group_context(), group.group_context());
    // A PrivateMessage's SafeAAD is read from its header.
    let app = group
        .encrypt_application_with_safe_aad(
            &svc(),
            b"hi",
            &items,
            b"rest",
            mls_engine::framing::ReuseGuard::Random,
        )
        .unwrap();
    let observed = observer.process(&svc(), &app, NOW).unwrap();
    assert!(!observed.is_verified());
    assert_eq!(observed.aad().safe_aad.as_ref(), Some(&items));
}
