//! §5.1 delivery (DESIGN §5 row 14): total order per group, the first Commit of an epoch wins,
//! compare-and-append on a virtual client's own sequence, fan-out to every emulator client,
//! Welcomes, the KeyPackage directory.

use delivery_service::{
    ClientId, Delivered, DeliveryService, GroupId, GroupMessage, GroupStatus,
    InMemoryDeliveryService, KeyPackageEntry, MessageKind, SendRequest, Sequence, ServiceError,
    VcSequence,
};
use proptest::prelude::*;

fn id(s: &str) -> ClientId {
    ClientId::new(s)
}

/// Alice is a virtual client emulated by a1, a2, a3; Bob (b) and Carol (c) are plain clients.
/// Group "g" (epoch 0) is created by Alice through a1, and Bob and Carol are welcomed into it.
fn setup() -> (InMemoryDeliveryService, GroupId) {
    let mut ds = InMemoryDeliveryService::new();
    for c in ["a1", "a2", "a3", "b", "c"] {
        ds.register_client(id(c)).unwrap();
    }
    ds.register_virtual_client(id("alice"), &[id("a1"), id("a2"), id("a3")])
        .unwrap();
    let g = GroupId::new("g");
    ds.create_group(&id("a1"), g.clone(), Some(&id("alice")), 0)
        .unwrap();
    let seq = ds
        .send(
            &g,
            &id("a1"),
            SendRequest::commit(0, b"commit-add-b-c".to_vec())
                .as_virtual_client(id("alice"), VcSequence(0))
                .with_welcome(vec![id("b"), id("c")], b"welcome".to_vec()),
        )
        .unwrap();
    assert_eq!(seq, Sequence(0));
    for c in ["a1", "a2", "a3", "b", "c"] {
        ds.drain(&id(c)).unwrap();
    }
    (ds, g)
}

fn messages(ds: &mut InMemoryDeliveryService, client: &str) -> Vec<GroupMessage> {
    ds.drain(&id(client))
        .unwrap()
        .into_iter()
        .filter_map(|d| match d {
            Delivered::Message { message, .. } => Some(message),
            Delivered::Welcome(_) => None,
        })
        .collect()
}

fn order(msgs: &[GroupMessage]) -> Vec<(Sequence, Vec<u8>)> {
    msgs.iter()
        .map(|m| (m.sequence, m.message.to_vec()))
        .collect()
}

#[test]
fn ordering_is_total_and_identical_for_every_member() {
    let (mut ds, g) = setup();
    let mut vc_next = VcSequence(1);
    for round in 0..5u8 {
        let epoch = u64::from(round) + 1;
        ds.send(&g, &id("b"), SendRequest::application(vec![b'b', round]))
            .unwrap();
        let sender = ["a1", "a2", "a3"][usize::from(round) % 3];
        ds.send(
            &g,
            &id(sender),
            SendRequest::application(vec![b'a', round]).as_virtual_client(id("alice"), vc_next),
        )
        .unwrap();
        vc_next = vc_next.next();
        ds.send(&g, &id("c"), SendRequest::commit(epoch, vec![b'c', round]))
            .unwrap();
    }
    let reference = order(&messages(&mut ds, "b"));
    assert_eq!(reference.len(), 15);
    for (i, (seq, _)) in reference.iter().enumerate() {
        assert_eq!(*seq, Sequence(i as u64 + 1));
    }
    for c in ["a1", "a2", "a3", "c"] {
        assert_eq!(order(&messages(&mut ds, c)), reference, "{c}");
        let fetched = ds.fetch(&id(c), &g, Sequence(1)).unwrap();
        assert_eq!(order(&fetched), reference, "fetch {c}");
    }
    assert_eq!(
        ds.group_status(&g).unwrap(),
        GroupStatus {
            epoch: 6,
            next_sequence: Sequence(16),
            handshakes: Default::default(),
        }
    );
}

#[test]
fn racing_commits_for_one_epoch_exactly_one_wins() {
    let (mut ds, g) = setup();
    let first = ds.send(
        &g,
        &id("a2"),
        SendRequest::commit(1, b"commit-a2".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
    );
    let second = ds.send(
        &g,
        &id("a3"),
        SendRequest::commit(1, b"commit-a3".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
    );
    assert_eq!(first, Ok(Sequence(1)));
    assert_eq!(second, Err(ServiceError::StaleEpoch { current: 2, got: 1 }));
    // A plain member racing the same epoch loses the same way.
    assert_eq!(
        ds.send(&g, &id("b"), SendRequest::commit(1, b"commit-b".to_vec())),
        Err(ServiceError::StaleEpoch { current: 2, got: 1 })
    );
    assert_eq!(
        ds.send(&g, &id("b"), SendRequest::commit(5, b"commit-b".to_vec())),
        Err(ServiceError::FutureEpoch { current: 2, got: 5 })
    );
    // Only the winner reached anyone.
    for c in ["a1", "a2", "a3", "b", "c"] {
        let got = messages(&mut ds, c);
        assert_eq!(
            order(&got),
            vec![(Sequence(1), b"commit-a2".to_vec())],
            "{c}"
        );
    }
    assert_eq!(ds.stats().rejected, 3);
}

#[test]
fn racing_application_messages_on_the_virtual_client_sequence() {
    let (mut ds, g) = setup();
    // a1 and a2 both saw Alice's message 0 and both want to send her message 1.
    let won = ds.send(
        &g,
        &id("a1"),
        SendRequest::application(b"from-a1".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
    );
    assert_eq!(won, Ok(Sequence(1)));
    let lost = ds.send(
        &g,
        &id("a2"),
        SendRequest::application(b"from-a2".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
    );
    assert_eq!(
        lost,
        Err(ServiceError::VirtualClientSequenceMismatch {
            expected: VcSequence(2),
            got: VcSequence(1)
        })
    );
    // Claiming to have seen more than was sent is refused too.
    assert_eq!(
        ds.send(
            &g,
            &id("a2"),
            SendRequest::application(b"x".to_vec()).as_virtual_client(id("alice"), VcSequence(7)),
        ),
        Err(ServiceError::VirtualClientSequenceMismatch {
            expected: VcSequence(2),
            got: VcSequence(7)
        })
    );
    // The loser fetches the winner's message, learns its vc sequence, and sends again.
    let seen = messages(&mut ds, "a2");
    assert_eq!(seen.len(), 1);
    let view = seen[0].emulator_view.clone().unwrap();
    assert_eq!(view.emulator, id("a1"));
    assert_eq!(view.vc_sequence, VcSequence(1));
    let retried = ds.send(
        &g,
        &id("a2"),
        SendRequest::application(b"from-a2".to_vec())
            .as_virtual_client(id("alice"), view.vc_sequence.next()),
    );
    assert_eq!(retried, Ok(Sequence(2)));
    let bob = messages(&mut ds, "b");
    assert_eq!(
        order(&bob),
        vec![
            (Sequence(1), b"from-a1".to_vec()),
            (Sequence(2), b"from-a2".to_vec())
        ]
    );
}

#[test]
fn fan_out_reaches_every_emulator_including_the_sender() {
    let (mut ds, g) = setup();
    ds.send(
        &g,
        &id("a3"),
        SendRequest::proposal(b"update".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
    )
    .unwrap();
    for c in ["a1", "a2", "a3"] {
        let d = ds.drain(&id(c)).unwrap();
        assert_eq!(d.len(), 1, "{c}");
        let Delivered::Message { recipient, message } = &d[0] else {
            panic!("not a message")
        };
        assert_eq!(recipient, &id("alice"));
        assert_eq!(message.sender, id("alice"));
        assert_eq!(message.kind, MessageKind::Proposal);
        let view = message.emulator_view.as_ref().unwrap();
        assert_eq!(
            (view.emulator.clone(), view.vc_sequence),
            (id("a3"), VcSequence(1))
        );
    }
    // Other members see an ordinary member: neither the device nor the vc sequence.
    for c in ["b", "c"] {
        let m = messages(&mut ds, c);
        assert_eq!(m[0].sender, id("alice"));
        assert_eq!(m[0].emulator_view, None);
        let f = ds.fetch(&id(c), &g, Sequence(1)).unwrap();
        assert_eq!(f[0].emulator_view, None);
    }
    // Fetching as an emulator shows the view.
    let f = ds.fetch(&id("a1"), &g, Sequence(1)).unwrap();
    assert_eq!(f[0].emulator_view.as_ref().unwrap().emulator, id("a3"));
}

#[test]
fn plain_members_never_wait_on_a_virtual_client() {
    let (mut ds, g) = setup();
    ds.send(
        &g,
        &id("a1"),
        SendRequest::application(b"a".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
    )
    .unwrap();
    // a2 has not seen Alice's message 1, so it is blocked ...
    assert!(matches!(
        ds.send(
            &g,
            &id("a2"),
            SendRequest::application(b"a2".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
        ),
        Err(ServiceError::VirtualClientSequenceMismatch { .. })
    ));
    // ... but Bob and Carol, who have not fetched anything, send and commit freely.
    ds.send(&g, &id("b"), SendRequest::application(b"b".to_vec()))
        .unwrap();
    ds.send(&g, &id("c"), SendRequest::proposal(b"c".to_vec()))
        .unwrap();
    ds.send(&g, &id("b"), SendRequest::commit(1, b"b-commit".to_vec()))
        .unwrap();
    // And other members' messages never advance Alice's sequence.
    ds.send(
        &g,
        &id("a2"),
        SendRequest::application(b"a2".to_vec()).as_virtual_client(id("alice"), VcSequence(2)),
    )
    .unwrap();
}

#[test]
fn membership_is_checked() {
    let (mut ds, g) = setup();
    ds.register_client(id("eve")).unwrap();
    assert_eq!(
        ds.send(&g, &id("eve"), SendRequest::application(b"x".to_vec())),
        Err(ServiceError::NotAMember {
            group_id: g.clone(),
            member: id("eve")
        })
    );
    // An emulator is not a member by itself, only as its virtual client.
    assert_eq!(
        ds.send(&g, &id("a1"), SendRequest::application(b"x".to_vec())),
        Err(ServiceError::NotAMember {
            group_id: g.clone(),
            member: id("a1")
        })
    );
    assert_eq!(
        ds.send(
            &g,
            &id("b"),
            SendRequest::application(b"x".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
        ),
        Err(ServiceError::NotAnEmulator {
            virtual_client: id("alice"),
            client: id("b")
        })
    );
    assert_eq!(
        ds.send(
            &GroupId::new("nope"),
            &id("b"),
            SendRequest::application(b"x".to_vec())
        ),
        Err(ServiceError::UnknownGroup {
            group_id: GroupId::new("nope")
        })
    );
    assert_eq!(
        ds.send(
            &g,
            &id("b"),
            SendRequest::application(b"x".to_vec()).removing(vec![id("c")])
        ),
        Err(ServiceError::NotACommit {})
    );
    assert_eq!(
        ds.fetch(&id("eve"), &g, Sequence(0)),
        Err(ServiceError::NotAMember {
            group_id: g.clone(),
            member: id("eve")
        })
    );
    assert_eq!(
        ds.drain(&id("alice")),
        Err(ServiceError::NotADevice {
            client: id("alice")
        })
    );
}

#[test]
fn a_refused_request_changes_nothing() {
    let (mut ds, g) = setup();
    let before = ds.group_status(&g).unwrap();
    // Fails late: the Welcome names an unknown client.
    let r = ds.send(
        &g,
        &id("b"),
        SendRequest::commit(1, b"c".to_vec()).with_welcome(vec![id("ghost")], b"w".to_vec()),
    );
    assert_eq!(
        r,
        Err(ServiceError::UnknownClient {
            client: id("ghost")
        })
    );
    // Removing a non-member.
    let r = ds.send(
        &g,
        &id("b"),
        SendRequest::commit(1, b"c".to_vec()).removing(vec![id("a1")]),
    );
    assert!(matches!(r, Err(ServiceError::NotAMember { .. })));
    assert_eq!(ds.group_status(&g).unwrap(), before);
    for c in ["a1", "a2", "a3", "b", "c"] {
        assert_eq!(ds.pending(&id(c)), 0);
    }
    // A refused virtual-client message does not consume its sequence.
    ds.send(
        &g,
        &id("a1"),
        SendRequest::commit(1, b"ok".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
    )
    .unwrap();
}

#[test]
fn welcome_reaches_every_emulator_and_only_with_the_winning_commit() {
    let mut ds = InMemoryDeliveryService::new();
    for c in ["b", "c", "d1", "d2"] {
        ds.register_client(id(c)).unwrap();
    }
    ds.register_virtual_client(id("dave"), &[id("d1"), id("d2")])
        .unwrap();
    let g = GroupId::new("g");
    ds.create_group(&id("b"), g.clone(), None, 0).unwrap();
    ds.send(
        &g,
        &id("b"),
        SendRequest::commit(0, b"add-c".to_vec()).with_welcome(vec![id("c")], b"w-c".to_vec()),
    )
    .unwrap();
    // c races b to add Dave; c's Commit loses, so its Welcome goes nowhere.
    ds.send(&g, &id("b"), SendRequest::commit(1, b"b-update".to_vec()))
        .unwrap();
    assert_eq!(
        ds.send(
            &g,
            &id("c"),
            SendRequest::commit(1, b"add-dave".to_vec())
                .with_welcome(vec![id("dave")], b"w-lost".to_vec()),
        ),
        Err(ServiceError::StaleEpoch { current: 2, got: 1 })
    );
    assert_eq!(ds.pending(&id("d1")), 0);
    assert!(ds.fetch(&id("d1"), &g, Sequence(0)).is_err());
    let seq = ds
        .send(
            &g,
            &id("c"),
            SendRequest::commit(2, b"add-dave".to_vec())
                .with_welcome(vec![id("dave")], b"w-dave".to_vec()),
        )
        .unwrap();
    for d in ["d1", "d2"] {
        let got = ds.drain(&id(d)).unwrap();
        assert_eq!(got.len(), 1);
        let Delivered::Welcome(w) = &got[0] else {
            panic!("not a Welcome")
        };
        assert_eq!(
            (&w.group_id, w.sequence, &w.recipient),
            (&g, seq, &id("dave"))
        );
        assert_eq!(&*w.message, b"w-dave");
        // The joiner reads from after the Commit that added it, nothing earlier.
        assert!(ds.fetch(&id(d), &g, Sequence(0)).unwrap().is_empty());
    }
    // c, welcomed at sequence 0, reads from 1 on.
    let c_view = ds.fetch(&id("c"), &g, Sequence(0)).unwrap();
    assert_eq!(c_view.first().map(|m| m.sequence), Some(Sequence(1)));
    // Dave, now a member, sends through d2, and both emulators see it.
    ds.send(
        &g,
        &id("d2"),
        SendRequest::application(b"hi".to_vec()).as_virtual_client(id("dave"), VcSequence(0)),
    )
    .unwrap();
    assert_eq!(messages(&mut ds, "d1").len(), 1);
    assert_eq!(messages(&mut ds, "d2").len(), 1);
}

#[test]
fn removed_member_gets_its_removal_then_nothing() {
    let (mut ds, g) = setup();
    let seq = ds
        .send(
            &g,
            &id("b"),
            SendRequest::commit(1, b"remove-alice".to_vec()).removing(vec![id("alice")]),
        )
        .unwrap();
    ds.send(&g, &id("b"), SendRequest::application(b"after".to_vec()))
        .unwrap();
    for a in ["a1", "a2", "a3"] {
        let m = messages(&mut ds, a);
        assert_eq!(order(&m), vec![(seq, b"remove-alice".to_vec())]);
        assert_eq!(ds.fetch(&id(a), &g, Sequence(0)).unwrap().len(), 2);
    }
    assert_eq!(
        ds.send(
            &g,
            &id("a1"),
            SendRequest::application(b"x".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
        ),
        Err(ServiceError::NotAMember {
            group_id: g.clone(),
            member: id("alice")
        })
    );
}

#[test]
fn external_commit_by_a_virtual_client() {
    let mut ds = InMemoryDeliveryService::new();
    for c in ["b", "e1", "e2"] {
        ds.register_client(id(c)).unwrap();
    }
    ds.register_virtual_client(id("erin"), &[id("e1"), id("e2")])
        .unwrap();
    let g = GroupId::new("g");
    ds.create_group(&id("b"), g.clone(), None, 3).unwrap();
    // Both emulators try to join Erin from the GroupInfo of epoch 3; one wins.
    let won = ds.send(
        &g,
        &id("e1"),
        SendRequest::external_commit(3, b"ext-e1".to_vec())
            .as_virtual_client(id("erin"), VcSequence(0)),
    );
    let lost = ds.send(
        &g,
        &id("e2"),
        SendRequest::external_commit(3, b"ext-e2".to_vec())
            .as_virtual_client(id("erin"), VcSequence(0)),
    );
    assert_eq!(won, Ok(Sequence(0)));
    assert_eq!(lost, Err(ServiceError::StaleEpoch { current: 4, got: 3 }));
    // The joiner's emulators see the external Commit come back; Bob sees it from Erin.
    for e in ["e1", "e2"] {
        let m = messages(&mut ds, e);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].emulator_view.as_ref().unwrap().emulator, id("e1"));
    }
    let b = messages(&mut ds, "b");
    assert_eq!(
        (b[0].sender.clone(), b[0].kind),
        (id("erin"), MessageKind::ExternalCommit { epoch: 3 })
    );
    // Erin is a member now; a plain Commit from a non-member is still refused.
    ds.register_client(id("f")).unwrap();
    assert!(matches!(
        ds.send(&g, &id("f"), SendRequest::commit(4, b"x".to_vec())),
        Err(ServiceError::NotAMember { .. })
    ));
    ds.send(
        &g,
        &id("e2"),
        SendRequest::commit(4, b"erin-commit".to_vec())
            .as_virtual_client(id("erin"), VcSequence(1)),
    )
    .unwrap();
}

#[test]
fn emulators_come_and_go() {
    let (mut ds, g) = setup();
    ds.register_client(id("a4")).unwrap();
    ds.add_emulator(&id("alice"), &id("a4")).unwrap();
    assert!(matches!(
        ds.add_emulator(&id("alice"), &id("a4")),
        Err(ServiceError::BadRequest { .. })
    ));
    ds.remove_emulator(&id("alice"), &id("a1")).unwrap();
    ds.send(&g, &id("b"), SendRequest::application(b"m".to_vec()))
        .unwrap();
    assert_eq!(ds.pending(&id("a4")), 1);
    assert_eq!(ds.pending(&id("a1")), 0);
    assert!(matches!(
        ds.send(
            &g,
            &id("a1"),
            SendRequest::application(b"x".to_vec()).as_virtual_client(id("alice"), VcSequence(1)),
        ),
        Err(ServiceError::NotAnEmulator { .. })
    ));
    ds.remove_emulator(&id("alice"), &id("a2")).unwrap();
    ds.remove_emulator(&id("alice"), &id("a3")).unwrap();
    assert!(matches!(
        ds.remove_emulator(&id("alice"), &id("a4")),
        Err(ServiceError::BadRequest { .. })
    ));
}

#[test]
fn key_package_directory_consume_once() {
    let (mut ds, _) = setup();
    // An emulator publishes for its virtual client (draft §5.5.1); others may not.
    ds.publish_key_packages(
        &id("a2"),
        &id("alice"),
        vec![
            KeyPackageEntry::ordinary(b"kp1".to_vec()),
            KeyPackageEntry::ordinary(b"kp2".to_vec()),
        ],
    )
    .unwrap();
    assert!(matches!(
        ds.publish_key_packages(
            &id("b"),
            &id("alice"),
            vec![KeyPackageEntry::ordinary(b"x".to_vec())]
        ),
        Err(ServiceError::NotAnEmulator { .. })
    ));
    assert!(matches!(
        ds.publish_key_packages(
            &id("b"),
            &id("c"),
            vec![KeyPackageEntry::ordinary(b"x".to_vec())]
        ),
        Err(ServiceError::NotAnEmulator { .. })
    ));
    ds.publish_key_packages(
        &id("b"),
        &id("b"),
        vec![KeyPackageEntry::last_resort(b"b-lr".to_vec())],
    )
    .unwrap();
    assert_eq!(&*ds.consume_key_package(&id("alice")).unwrap(), b"kp1");
    assert_eq!(&*ds.consume_key_package(&id("alice")).unwrap(), b"kp2");
    assert_eq!(
        ds.consume_key_package(&id("alice")),
        Err(ServiceError::NoKeyPackage { owner: id("alice") })
    );
    assert_eq!(&*ds.consume_key_package(&id("b")).unwrap(), b"b-lr");
    assert_eq!(&*ds.consume_key_package(&id("b")).unwrap(), b"b-lr");
    assert_eq!(
        ds.consume_key_package(&id("ghost")),
        Err(ServiceError::UnknownClient {
            client: id("ghost")
        })
    );
}

/// One emulator's or member's local view: how far it has read the log, what it knows.
#[derive(Clone, Default)]
struct View {
    cursor: Sequence,
    epoch: u64,
    vc_next: VcSequence,
}

proptest! {
    /// Random interleavings of sends by 3 emulators of one virtual client and 2 plain members,
    /// each acting on its possibly stale view: every epoch is won by exactly one Commit, the
    /// virtual client's messages get consecutive vc sequences, every client reads the same log,
    /// and plain members are never refused.
    #[test]
    fn random_races_stay_consistent(ops in proptest::collection::vec((0usize..5, 0u8..4), 1..60)) {
        let (mut ds, g) = setup();
        let names = ["a1", "a2", "a3", "b", "c"];
        let mut views = vec![View { cursor: Sequence(1), epoch: 1, vc_next: VcSequence(1) }; 5];
        let mut accepted_commits = Vec::new();
        for (n, (who, action)) in ops.into_iter().enumerate() {
            let client = id(names[who]);
            let emulator = who < 3;
            if action == 3 {
                // Catch up: read the log, learn the epoch and Alice's sequence.
                let msgs = ds.fetch(&client, &g, views[who].cursor).unwrap();
                for m in msgs {
                    views[who].cursor = m.sequence.next();
                    if let Some(e) = m.kind.commit_epoch() {
                        views[who].epoch = e + 1;
                    }
                    if let Some(v) = &m.emulator_view {
                        views[who].vc_next = v.vc_sequence.next();
                    }
                }
                continue;
            }
            let body = vec![n as u8];
            let mut req = if action == 0 {
                SendRequest::commit(views[who].epoch, body)
            } else if action == 1 {
                SendRequest::application(body)
            } else {
                SendRequest::proposal(body)
            };
            if emulator {
                req = req.as_virtual_client(id("alice"), views[who].vc_next);
            }
            let is_commit = action == 0;
            match ds.send(&g, &client, req) {
                Ok(_) => {
                    if is_commit {
                        accepted_commits.push(views[who].epoch);
                    }
                }
                Err(ServiceError::StaleEpoch { .. }) => prop_assert!(is_commit),
                Err(ServiceError::VirtualClientSequenceMismatch { .. }) => prop_assert!(emulator),
                Err(e) => prop_assert!(false, "unexpected refusal {e:?}"),
            }
        }
        // One Commit per epoch, in order.
        let expected: Vec<u64> = (1..=accepted_commits.len() as u64).collect();
        prop_assert_eq!(accepted_commits, expected);
        // Alice's messages carry 0, 1, 2, ... and everyone read the same log.
        let reference = order(&ds.fetch(&id("b"), &g, Sequence(1)).unwrap());
        for name in names {
            let mine = ds.fetch(&id(name), &g, Sequence(1)).unwrap();
            prop_assert_eq!(&order(&mine), &reference);
            prop_assert_eq!(&order(&messages(&mut ds, name)), &reference);
        }
        let alice_seqs: Vec<u64> = ds
            .fetch(&id("a1"), &g, Sequence(0))
            .unwrap()
            .iter()
            .filter_map(|m| m.emulator_view.as_ref().map(|v| v.vc_sequence.0))
            .collect();
        let expected: Vec<u64> = (0..alice_seqs.len() as u64).collect();
        prop_assert_eq!(alice_seqs, expected);
    }
}
