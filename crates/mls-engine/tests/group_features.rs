//! Group state machine: PSKs, GroupContextExtensions, external senders, new-member proposals,
//! external commits (with resync), ReInit, the path-required rule and forbidden proposals.

mod group_common;

use group_common::*;
use mls_engine::codec::{
    Credential, ExtensionPayload as _, ExternalSender, ExternalSendersExtension, PreSharedKeyID,
    Proposal, ResumptionPSKUsage,
};
use mls_engine::crypto::{CryptoProvider as _, MlsCrypto as _, Secret};
use mls_engine::group::{
    external_proposal, new_member_proposal, CommitOptions, ExternalCommitOptions, ExternalPskMap,
    Group, GroupError, GroupStatus, HandshakeWireFormat, ProcessedMessage, Services,
};
use mls_engine::tree::LeafIndex;

fn nonce(suite: mls_engine::crypto::CipherSuite) -> Vec<u8> {
    let cs = PROVIDER.suite(suite).unwrap();
    cs.random_vec(cs.params().hash_len()).unwrap()
}

#[test]
fn external_and_resumption_psks() {
    for suite in SUITES {
        let mut g = TestGroup::new(suite, 3, true, HandshakeWireFormat::Public);
        let store = ExternalPskMap {
            psks: vec![(b"psk-1".to_vec(), Secret::new(vec![7; 32]))],
        };
        let services = Services::new(&PROVIDER).with_psks(&store);
        let external = PreSharedKeyID::external(b"psk-1".to_vec(), nonce(suite));
        let resumption = PreSharedKeyID::resumption(
            ResumptionPSKUsage::Application,
            g.members[0].group.group_id().to_vec(),
            g.members[0].group.epoch(),
            nonce(suite),
        );
        // PSK by reference from member 1, resumption PSK by value from member 0.
        let (prop, _) = g.members[1]
            .group
            .propose_psk(&services, external.clone())
            .unwrap();
        for i in [0, 2] {
            g.members[i].group.process(&services, &prop, NOW).unwrap();
        }
        let out = g.members[0]
            .group
            .commit(
                &services,
                CommitOptions::new().proposal(Proposal::pre_shared_key(resumption)),
                NOW,
            )
            .unwrap();
        for (i, m) in g.members.iter_mut().enumerate() {
            if i == 0 {
                m.group.merge_pending_commit().unwrap();
            } else {
                m.group.process(&services, &out.commit, NOW).unwrap();
            }
        }
        g.check_agree();
        // Without the external PSK the commit cannot be processed, and the state is intact.
        let (prop, _) = g.members[1]
            .group
            .propose_psk(
                &services,
                PreSharedKeyID::external(b"psk-1".to_vec(), nonce(suite)),
            )
            .unwrap();
        g.members[0].group.process(&services, &prop, NOW).unwrap();
        g.members[2].group.process(&services, &prop, NOW).unwrap();
        let out = g.members[0]
            .group
            .commit(&services, CommitOptions::new(), NOW)
            .unwrap();
        let before = g.members[2].group.to_bytes().unwrap();
        let err = g.members[2]
            .group
            .process(&svc(), &out.commit, NOW)
            .unwrap_err();
        assert!(matches!(err, GroupError::MissingPsk(_)), "{err:?}");
        assert_eq!(before, g.members[2].group.to_bytes().unwrap());
        // A joiner of a PSK commit needs the PSK too.
        let newcomer = Client::new(suite, "newcomer");
        let kp = newcomer.key_package();
        g.members[0].group.clear_pending_commit();
        let out = g.members[0]
            .group
            .commit(
                &services,
                CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
                NOW,
            )
            .unwrap();
        for (i, m) in g.members.iter_mut().enumerate() {
            if i == 0 {
                m.group.merge_pending_commit().unwrap();
            } else {
                m.group.process(&services, &out.commit, NOW).unwrap();
            }
        }
        let joined = Group::join_from_welcome(
            &services,
            g.config,
            out.welcome.as_ref().unwrap(),
            &kp,
            newcomer.signer.clone(),
            None,
            NOW,
        )
        .unwrap();
        g.members.push(TestMember {
            client: newcomer,
            group: joined,
        });
        g.check_agree();
    }
}

#[test]
fn group_context_extensions_and_external_senders() {
    for suite in SUITES {
        let mut g = TestGroup::new(suite, 3, true, HandshakeWireFormat::Public);
        let outsider = Client::new(suite, "delivery service");
        let senders = ExternalSendersExtension {
            external_senders: vec![ExternalSender {
                signature_key: outsider.signer.public_key.clone().into(),
                credential: Credential::basic(b"ds".to_vec()),
            }],
        };
        let (prop, _) = g.members[2]
            .group
            .propose_group_context_extensions(&svc(), vec![senders.to_extension().unwrap()])
            .unwrap();
        g.deliver(2, &prop);
        // A GroupContextExtensions commit requires a path: CommitOptions::new() makes one.
        let out = g.members[1]
            .group
            .commit(&svc(), CommitOptions::new(), NOW)
            .unwrap();
        g.deliver_commit(1, &out.commit);
        g.check_agree();
        assert_eq!(g.members[0].group.group_context().extensions.len(), 1);

        // The external sender proposes to remove member 2; member 0 commits it.
        let context = g.members[0].group.group_context().clone();
        let remove = external_proposal(
            &svc(),
            &context,
            0,
            Proposal::remove(2),
            &outsider.signer,
            b"",
        )
        .unwrap();
        for m in g.members.iter_mut() {
            match m.group.process(&svc(), &remove, NOW).unwrap() {
                ProcessedMessage::Proposal { sender, .. } => {
                    assert_eq!(sender, mls_engine::codec::Sender::External(0))
                }
                other => panic!("{other:?}"),
            }
        }
        let out = g.members[0]
            .group
            .commit(&svc(), CommitOptions::new(), NOW)
            .unwrap();
        g.deliver_commit(0, &out.commit);
        g.members.remove(2);
        g.check_agree();
        // An unknown external sender index is refused.
        let context = g.members[0].group.group_context().clone();
        let bad = external_proposal(
            &svc(),
            &context,
            1,
            Proposal::remove(1),
            &outsider.signer,
            b"",
        )
        .unwrap();
        assert_eq!(
            g.members[0].group.process(&svc(), &bad, NOW).unwrap_err(),
            GroupError::UnknownExternalSender(1)
        );
    }
}

#[test]
fn new_member_proposal_then_welcome() {
    let suite = SUITES[0];
    let mut g = TestGroup::new(suite, 2, true, HandshakeWireFormat::Public);
    let joiner = Client::new(suite, "joiner");
    let kp = joiner.key_package();
    let context = g.members[0].group.group_context().clone();
    let prop =
        new_member_proposal(&svc(), &context, kp.key_package.clone(), &joiner.signer).unwrap();
    g.deliver(usize::MAX, &prop);
    let out = g.members[1]
        .group
        .commit(&svc(), CommitOptions::new(), NOW)
        .unwrap();
    g.deliver_commit(1, &out.commit);
    let group = Group::join_from_welcome(
        &svc(),
        g.config,
        out.welcome.as_ref().unwrap(),
        &kp,
        joiner.signer.clone(),
        None,
        NOW,
    )
    .unwrap();
    g.members.push(TestMember {
        client: joiner,
        group,
    });
    g.check_agree();
}

#[test]
fn external_commit_join_and_resync() {
    for suite in SUITES {
        for wire in [HandshakeWireFormat::Public, HandshakeWireFormat::Private] {
            let mut g = TestGroup::new(suite, 3, true, wire);
            let info = g.members[1].group.group_info(&svc(), true, true).unwrap();
            let joiner = Client::new(suite, "external joiner");
            let (group, commit) = Group::join_by_external_commit(
                &svc(),
                g.config,
                &info,
                None,
                joiner.own_leaf(),
                ExternalCommitOptions::default(),
                NOW,
            )
            .unwrap();
            g.deliver(usize::MAX, &commit);
            g.members.push(TestMember {
                client: joiner,
                group,
            });
            g.check_agree();
            g.talk(3, b"hi from the external joiner");
            g.talk(0, b"welcome");

            // Member 2 lost its state and rejoins, removing its old leaf (resync).
            let info = g.members[0].group.group_info(&svc(), false, true).unwrap();
            let tree = g.members[0].group.ratchet_tree().clone();
            let old = g.members.remove(2);
            let old_leaf = old.group.own_leaf_index();
            let (group, commit) = Group::join_by_external_commit(
                &svc(),
                g.config,
                &info,
                Some(tree),
                old.client.own_leaf(),
                ExternalCommitOptions {
                    resync_remove: Some(old_leaf),
                    ..Default::default()
                },
                NOW,
            )
            .unwrap();
            g.deliver(usize::MAX, &commit);
            g.members.push(TestMember {
                client: old.client,
                group,
            });
            g.check_agree();
            assert_eq!(g.members[0].group.members().len(), 4);
            g.talk(3, b"back again");
        }
    }
}

#[test]
fn reinit_closes_the_group() {
    let suite = SUITES[2];
    let mut g = TestGroup::new(suite, 3, true, HandshakeWireFormat::Public);
    let (prop, _) = g.members[1]
        .group
        .propose_reinit(&svc(), b"new group".to_vec(), suite, vec![])
        .unwrap();
    g.deliver(1, &prop);
    let out = g.members[0]
        .group
        .commit(&svc(), CommitOptions::new(), NOW)
        .unwrap();
    g.deliver_commit(0, &out.commit);
    g.check_agree();
    for m in g.members.iter_mut() {
        assert!(matches!(m.group.status(), GroupStatus::ReInit(_)));
        assert_eq!(
            m.group
                .commit(&svc(), CommitOptions::new(), NOW)
                .unwrap_err(),
            GroupError::ReInitCommitted
        );
        assert_eq!(
            m.group.encrypt_application(&svc(), b"x", b"").unwrap_err(),
            GroupError::ReInitCommitted
        );
    }
}

#[test]
fn forbidden_commits_are_rejected() {
    let suite = SUITES[0];
    let mut g = TestGroup::new(suite, 3, true, HandshakeWireFormat::Public);
    // The committer removing itself is refused at creation.
    let err = g.members[0]
        .group
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::remove(0)),
            NOW,
        )
        .unwrap_err();
    assert!(matches!(err, GroupError::InvalidProposalList(_)), "{err:?}");
    // A commit with a Remove whose path was stripped in transit is refused (the membership
    // tag and signature cover the path; the path rule itself is unit-tested in
    // `group::process`).
    let out = g.members[0]
        .group
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::remove(2)),
            NOW,
        )
        .unwrap();
    let mut stripped = out.commit.clone();
    if let mls_engine::codec::MlsMessageBody::PublicMessage(m) = &mut stripped.body {
        if let mls_engine::codec::FramedContentBody::Commit(c) = &mut m.content.body {
            c.path = None;
        }
    }
    let before = g.members[1].group.to_bytes().unwrap();
    assert!(g.members[1].group.process(&svc(), &stripped, NOW).is_err());
    assert_eq!(before, g.members[1].group.to_bytes().unwrap());
    // Own update by value is refused at the API.
    let leaf = g.members[0].group.own_leaf_node().unwrap().clone();
    assert!(g.members[0]
        .group
        .propose(&svc(), Proposal::update(leaf), b"")
        .is_err());
    let _ = LeafIndex(0);
}

/// Design hook H2: two clients share one leaf (state transfer through `to_bytes`); the
/// sibling's commits and Updates are resolved with the secrets it used.
#[test]
fn sibling_commits_and_updates_from_our_own_leaf() {
    use mls_engine::codec::LeafNode;
    use mls_engine::crypto::HpkeKeyPair;
    use mls_engine::group::{OwnLeafResolver, SiblingCommitSecrets};
    use mls_engine::hook::HookError;
    use mls_engine::messages::HpkeKeySource;

    struct Shared {
        leaf_key: HpkeKeyPair,
        path_secret_0: Secret,
    }
    impl OwnLeafResolver for Shared {
        fn commit_secrets(&self, new_leaf: &LeafNode) -> Result<SiblingCommitSecrets, HookError> {
            (new_leaf.encryption_key.as_slice() == self.leaf_key.public_key.as_slice())
                .then(|| SiblingCommitSecrets {
                    leaf_key: self.leaf_key.clone(),
                    path_secret_0: self.path_secret_0.clone(),
                    signature_key: None,
                })
                .ok_or(HookError::Unsupported)
        }
        fn update_leaf_key(&self, new_leaf: &LeafNode) -> Result<HpkeKeyPair, HookError> {
            (new_leaf.encryption_key.as_slice() == self.leaf_key.public_key.as_slice())
                .then(|| self.leaf_key.clone())
                .ok_or(HookError::Unsupported)
        }
    }

    for suite in SUITES {
        let mut g = TestGroup::new(suite, 3, true, HandshakeWireFormat::Private);
        let cs = PROVIDER.suite(suite).unwrap();
        let mut sibling = Group::from_bytes(&g.members[1].group.to_bytes().unwrap()).unwrap();
        let shared = Shared {
            leaf_key: cs.hpke_generate_key_pair().unwrap(),
            path_secret_0: cs.random_secret().unwrap(),
        };
        let with_resolver = svc().with_own_leaf_resolver(&shared);

        // Without a resolver the sibling's commit is refused, state unchanged.
        let out = sibling
            .commit(
                &svc(),
                CommitOptions {
                    leaf_key: Some(HpkeKeySource::KeyPair(shared.leaf_key.clone())),
                    path_secret_0: Some(shared.path_secret_0.clone()),
                    ..CommitOptions::new().with_path()
                },
                NOW,
            )
            .unwrap();
        let before = g.members[1].group.to_bytes().unwrap();
        assert_eq!(
            g.members[1]
                .group
                .process(&svc(), &out.commit, NOW)
                .unwrap_err(),
            GroupError::OwnLeafMessage
        );
        assert_eq!(before, g.members[1].group.to_bytes().unwrap());
        // With it, the path is re-derived and checked.
        for (i, m) in g.members.iter_mut().enumerate() {
            let services = if i == 1 { with_resolver } else { svc() };
            m.group.process(&services, &out.commit, NOW).unwrap();
        }
        sibling.merge_pending_commit().unwrap();
        g.check_agree();
        assert_eq!(
            sibling.epoch_authenticator(),
            g.members[0].group.epoch_authenticator()
        );

        // The sibling's application message opens for the other client of the leaf.
        let app = sibling
            .encrypt_application(&svc(), b"from the sibling", b"")
            .unwrap();
        assert!(matches!(
            g.members[1]
                .group
                .process(&with_resolver, &app, NOW)
                .unwrap(),
            ProcessedMessage::Application { .. }
        ));

        // An Update from the sibling, committed by member 2.
        let shared2 = Shared {
            leaf_key: cs.hpke_generate_key_pair().unwrap(),
            path_secret_0: cs.random_secret().unwrap(),
        };
        let (prop, _) = sibling
            .propose_update(
                &svc(),
                HpkeKeySource::KeyPair(shared2.leaf_key.clone()),
                None,
            )
            .unwrap();
        let with_resolver2 = svc().with_own_leaf_resolver(&shared2);
        for (i, m) in g.members.iter_mut().enumerate() {
            let services = if i == 1 { with_resolver2 } else { svc() };
            m.group.process(&services, &prop, NOW).unwrap();
        }
        let out = g.members[2]
            .group
            .commit(&svc(), CommitOptions::new(), NOW)
            .unwrap();
        for (i, m) in g.members.iter_mut().enumerate() {
            let services = if i == 1 { with_resolver2 } else { svc() };
            if i == 2 {
                m.group.merge_pending_commit().unwrap();
            } else {
                m.group.process(&services, &out.commit, NOW).unwrap();
            }
        }
        sibling.process(&svc(), &out.commit, NOW).unwrap();
        g.check_agree();
        assert_eq!(
            sibling.epoch_authenticator(),
            g.members[0].group.epoch_authenticator()
        );
        g.talk(1, b"still works");
    }
}

/// Design hook H3: with `retain_sent_keys`, a sibling's message at a generation we also used
/// still opens until we confirm our send.
#[test]
fn retained_send_keys_let_a_sibling_message_open() {
    let suite = SUITES[0];
    let mut g = TestGroup::new(suite, 3, true, HandshakeWireFormat::Public);
    let mut config = *g.members[1].group.config();
    config.retain_sent_keys = true;
    g.members[1].group.set_config(config);
    let mut a = Group::from_bytes(&g.members[1].group.to_bytes().unwrap()).unwrap();
    let mut b = Group::from_bytes(&g.members[1].group.to_bytes().unwrap()).unwrap();
    // Both siblings send at the same generation; the delivery service takes b's.
    let mine = a.encrypt_application(&svc(), b"from a", b"").unwrap();
    let theirs = b.encrypt_application(&svc(), b"from b", b"").unwrap();
    let (first, rest) = g.members.split_at_mut(1);
    for group in [&mut a, &mut first[0].group, &mut rest[1].group] {
        match group.process(&svc(), &theirs, NOW).unwrap() {
            ProcessedMessage::Application { data, .. } => assert_eq!(data, b"from b"),
            other => panic!("{other:?}"),
        }
    }
    // b confirms its send: the retained key is deleted; a's refused send needs nothing.
    assert!(b.confirm_sent(&svc(), &theirs).unwrap());
    assert!(!b.confirm_sent(&svc(), &theirs).unwrap());
    let _ = mine;
    // Without the policy, a's own generation is consumed at once.
    let mut c = Group::from_bytes(&g.members[2].group.to_bytes().unwrap()).unwrap();
    let from_c = c.encrypt_application(&svc(), b"c", b"").unwrap();
    let sibling_c = g.members[2]
        .group
        .encrypt_application(&svc(), b"c2", b"")
        .unwrap();
    assert!(c.process(&svc(), &sibling_c, NOW).is_err());
    let _ = from_c;
}

/// §11.2: after a ReInit, the new group's first Commit injects the old group's
/// `resumption_psk` with usage `reinit`; the joiners get it from the old group.
#[test]
fn reinit_then_new_group_with_resumption_psk() {
    use mls_engine::group::proposals::PskUsageContext;
    let suite = SUITES[0];
    let mut g = TestGroup::new(suite, 2, true, HandshakeWireFormat::Public);
    let (prop, _) = g.members[0]
        .group
        .propose_reinit(&svc(), b"reborn".to_vec(), SUITES[2], vec![])
        .unwrap();
    g.deliver(0, &prop);
    let out = g.members[1]
        .group
        .commit(&svc(), CommitOptions::new(), NOW)
        .unwrap();
    g.deliver_commit(1, &out.commit);
    let old_epoch = g.members[0].group.epoch();
    let old_id = g.members[0].group.group_id().to_vec();

    // Member 0 creates the new group and adds member 1 with the reinit PSK.
    let creator = Client::new(SUITES[2], "member-0 again");
    let mut new_group = Group::create(
        &svc(),
        g.config,
        b"reborn".to_vec(),
        SUITES[2],
        creator.own_leaf(),
        lifetime(),
        vec![],
    )
    .unwrap();
    let joiner = Client::new(SUITES[2], "member-1 again");
    let kp = joiner.key_package();
    let psk = PreSharedKeyID::resumption(
        ResumptionPSKUsage::Reinit,
        old_id.clone(),
        old_epoch,
        nonce(SUITES[2]),
    );
    let old_group = &g.members[0].group;
    let services = Services::new(&PROVIDER).with_psks(old_group);
    let out = new_group
        .commit(
            &services,
            CommitOptions {
                psk_usage: PskUsageContext::ReInit,
                ..CommitOptions::new()
                    .proposal(Proposal::add(kp.key_package.clone()))
                    .proposal(Proposal::pre_shared_key(psk))
            },
            NOW,
        )
        .unwrap();
    new_group.merge_pending_commit().unwrap();
    let joiner_services = Services::new(&PROVIDER).with_psks(&g.members[1].group);
    let joined = Group::join_from_welcome(
        &joiner_services,
        g.config,
        out.welcome.as_ref().unwrap(),
        &kp,
        joiner.signer.clone(),
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        joined.epoch_authenticator(),
        new_group.epoch_authenticator()
    );
    // Without the old group's PSK the Welcome cannot be opened.
    assert!(Group::join_from_welcome(
        &svc(),
        g.config,
        out.welcome.as_ref().unwrap(),
        &kp,
        joiner.signer.clone(),
        None,
        NOW,
    )
    .is_err());
}

#[test]
fn join_from_welcome_by_ref_with_the_key_material_only() {
    for suite in SUITES {
        let mut g = TestGroup::new(suite, 2, true, HandshakeWireFormat::Public);
        let joiner = Client::new(suite, "joiner");
        let other = Client::new(suite, "other");
        let kp = joiner.key_package();
        let other_kp = other.key_package();
        let out = g.members[0]
            .group
            .commit(
                &svc(),
                CommitOptions::new()
                    .proposal(Proposal::add(other_kp.key_package.clone()))
                    .proposal(Proposal::add(kp.key_package.clone())),
                NOW,
            )
            .unwrap();
        g.members[0].group.merge_pending_commit().unwrap();
        let welcome = out.welcome.as_ref().unwrap();
        let key_pair =
            |kp: &mls_engine::messages::KeyPackageBundle| mls_engine::crypto::HpkeKeyPair {
                private_key: kp.private.encryption_private_key.clone(),
                public_key: kp.key_package.leaf_node.encryption_key.as_slice().to_vec(),
            };
        let joined = Group::join_from_welcome_by_ref(
            &svc(),
            g.config,
            welcome,
            &kp.reference,
            &kp.private.init_private_key,
            key_pair(&kp),
            joiner.signer.clone(),
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(
            joined.epoch_authenticator(),
            g.members[0].group.epoch_authenticator()
        );
        assert_eq!(joined.own_leaf_index(), LeafIndex(3));
        // An unknown reference: no secrets for it.
        assert!(matches!(
            Group::join_from_welcome_by_ref(
                &svc(),
                g.config,
                welcome,
                &mls_engine::codec::KeyPackageRef::from(vec![9; kp.reference.as_slice().len()]),
                &kp.private.init_private_key,
                key_pair(&kp),
                joiner.signer.clone(),
                None,
                NOW,
            ),
            Err(GroupError::Welcome(_))
        ));
        // The right reference but another member's leaf keys: our leaf is not in the tree.
        assert!(matches!(
            Group::join_from_welcome_by_ref(
                &svc(),
                g.config,
                welcome,
                &kp.reference,
                &kp.private.init_private_key,
                key_pair(&kp),
                other.signer.clone(),
                None,
                NOW,
            ),
            Err(GroupError::OwnLeafNotInTree)
        ));
    }
}
