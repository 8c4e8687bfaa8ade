//! Group state machine: create, add via Welcome, application messages, updates, removes,
//! for suites 1-3 and groups of 2-5 members.

mod group_common;

use group_common::*;
use mls_engine::codec::Proposal;
use mls_engine::group::{CommitOptions, GroupError, HandshakeWireFormat};
use mls_engine::messages::HpkeKeySource;
use mls_engine::tree::LeafIndex;

#[test]
fn create_add_and_talk_every_suite() {
    for suite in SUITES {
        for with_tree in [true, false] {
            let mut g = TestGroup::new(suite, 4, with_tree, HandshakeWireFormat::Public);
            g.check_agree();
            // Application messages both ways.
            g.talk(0, b"hello from 0");
            g.talk(3, b"hello from 3");
            g.talk(1, b"and from 1");
        }
    }
}

#[test]
fn private_handshake_messages() {
    for suite in SUITES {
        let mut g = TestGroup::new(suite, 3, true, HandshakeWireFormat::Private);
        g.check_agree();
        g.talk(2, b"x");
        // Update by reference then commit by another member.
        let (prop, _) = g.members[1]
            .group
            .propose_update(&svc(), HpkeKeySource::Generate, None)
            .unwrap();
        g.deliver(1, &prop);
        let out = g.members[0]
            .group
            .commit(&svc(), CommitOptions::new(), NOW)
            .unwrap();
        g.deliver_commit(0, &out.commit);
        g.check_agree();
        g.talk(1, b"after update");
    }
}

#[test]
fn update_by_reference_and_commit_with_path() {
    for suite in SUITES {
        let mut g = TestGroup::new(suite, 5, true, HandshakeWireFormat::Public);
        let (prop, _) = g.members[2]
            .group
            .propose_update(&svc(), HpkeKeySource::Generate, None)
            .unwrap();
        g.deliver(2, &prop);
        let out = g.members[4]
            .group
            .commit(&svc(), CommitOptions::new(), NOW)
            .unwrap();
        g.deliver_commit(4, &out.commit);
        g.check_agree();
        // A commit with path only (empty commit requires a path).
        let out = g.members[3]
            .group
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        g.deliver_commit(3, &out.commit);
        g.check_agree();
        g.talk(2, b"updated");
    }
}

#[test]
fn remove_members() {
    for suite in SUITES {
        let mut g = TestGroup::new(suite, 5, true, HandshakeWireFormat::Public);
        // Remove by value.
        let out = g.members[0]
            .group
            .commit(
                &svc(),
                CommitOptions::new().proposal(Proposal::remove(3)),
                NOW,
            )
            .unwrap();
        g.deliver_commit(0, &out.commit);
        let removed = g.members.remove(3);
        assert_eq!(
            removed.group.status(),
            &mls_engine::group::GroupStatus::Removed
        );
        g.check_agree();
        // Remove by reference.
        let (prop, _) = g.members[1]
            .group
            .propose_remove(&svc(), LeafIndex(4))
            .unwrap();
        g.deliver(1, &prop);
        let out = g.members[2]
            .group
            .commit(&svc(), CommitOptions::new(), NOW)
            .unwrap();
        g.deliver_commit(2, &out.commit);
        g.members.remove(3);
        g.check_agree();
        g.talk(0, b"smaller group");
    }
}

#[test]
fn rejected_messages_leave_state_unchanged() {
    let mut g = TestGroup::new(SUITES[0], 3, true, HandshakeWireFormat::Public);
    let out = g.members[0]
        .group
        .commit(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    let mut tampered = out.commit.clone();
    if let mls_engine::codec::MlsMessageBody::PublicMessage(m) = &mut tampered.body {
        m.content.authenticated_data = vec![1].into();
    }
    let before = g.members[1].group.to_bytes().unwrap();
    let err = g.members[1]
        .group
        .process(&svc(), &tampered, NOW)
        .unwrap_err();
    assert_eq!(err, GroupError::BadMembershipTag);
    assert_eq!(before, g.members[1].group.to_bytes().unwrap());
    // The real one is accepted, then a replay is stale.
    g.deliver_commit(0, &out.commit);
    let err = g.members[1]
        .group
        .process(&svc(), &out.commit, NOW)
        .unwrap_err();
    assert!(matches!(err, GroupError::StaleEpoch { .. }));
}

#[test]
fn reuse_guard_from_the_sender() {
    use mls_engine::framing::ReuseGuard;
    let mut g = TestGroup::new(SUITES[1], 2, true, HandshakeWireFormat::Public);
    let guard = |nonce: &mls_engine::crypto::Secret| {
        let b = nonce.as_bytes();
        Ok([b[0], b[1], b[2], b[3]])
    };
    let message = g.members[0]
        .group
        .encrypt_application_with(&svc(), b"guarded", b"", ReuseGuard::FromNonce(&guard))
        .unwrap();
    match g.members[1].group.process(&svc(), &message, NOW).unwrap() {
        mls_engine::group::ProcessedMessage::Application { data, .. } => {
            assert_eq!(data, b"guarded")
        }
        other => panic!("{other:?}"),
    }
}

/// Many members added by one commit (one Welcome for all), then a path commit from a new
/// member processed by the others.
#[test]
fn many_adds_in_one_commit() {
    use mls_engine::group::Group;
    let suite = SUITES[0];
    let creator = Client::new(suite, "creator");
    let mut group = creator.create(config(HandshakeWireFormat::Public));
    let clients: Vec<Client> = (0..40)
        .map(|i| Client::new(suite, &format!("c{i}")))
        .collect();
    let kps: Vec<_> = clients.iter().map(|c| c.key_package()).collect();
    let mut options = CommitOptions::new();
    for kp in &kps {
        options = options.proposal(Proposal::add(kp.key_package.clone()));
    }
    let started = std::time::Instant::now();
    let out = group.commit(&svc(), options, NOW).unwrap();
    group.merge_pending_commit().unwrap();
    let welcome = out.welcome.unwrap();
    let mut members: Vec<Group> = clients
        .iter()
        .zip(&kps)
        .map(|(c, kp)| {
            Group::join_from_welcome(
                &svc(),
                *group.config(),
                &welcome,
                kp,
                c.signer.clone(),
                None,
                NOW,
            )
            .unwrap()
        })
        .collect();
    let out = members[17]
        .commit(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    members[17].merge_pending_commit().unwrap();
    group.process(&svc(), &out.commit, NOW).unwrap();
    for (i, m) in members.iter_mut().enumerate() {
        if i != 17 {
            m.process(&svc(), &out.commit, NOW).unwrap();
        }
        assert_eq!(m.epoch_authenticator(), group.epoch_authenticator());
    }
    eprintln!("41 members: {:?}", started.elapsed());
}
