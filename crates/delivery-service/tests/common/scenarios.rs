//! The scenarios of the conformance suite (issue 14's semantics), each a function over
//! [`super::Call`]: `conformance` runs them on every backend, `multi_instance` across two
//! instances on one PostgreSQL database (and the HTTP layer over its client).

use super::*;
use mls_engine::codec::{MlsMessage, MlsMessageBody, Proposal};
use mls_engine::group::{
    CommitOptions, ExternalCommitOptions, Group, GroupConfig, HandshakeWireFormat,
};
use vmls_protocol::HandshakeView;
use vmls_protocol::{
    Ack, ClientId, ConsumeKeyPackage, Delivered, Fetch, GroupId, KeyPackageEntry, MailboxItem,
    MessageId, MessageKind, PublishGroupInfo, PublishKeyPackages, ReadMailbox,
    RegisterVirtualClient, Request, Response, RetireKeyPackages, SendRequest, Sequence,
    ServiceError, VcSequence,
};

/// Trials of each race.
pub const TRIALS: usize = 1_000;

pub async fn mailbox<C: Call>(c: &C, device: &ClientId) -> Vec<MailboxItem> {
    match c
        .call(
            device,
            Request::ReadMailbox(ReadMailbox {
                after: None,
                max_items: 0,
            }),
        )
        .await
    {
        Response::Mailbox(items) => items,
        other => panic!("not a mailbox: {other:?}"),
    }
}

/// Reads and acknowledges everything in a device's mailbox.
pub async fn drain<C: Call>(c: &C, device: &ClientId) -> Vec<Delivered> {
    let items = mailbox(c, device).await;
    if let Some(last) = items.last() {
        done(
            c.call(device, Request::Ack(Ack { up_to: last.cursor }))
                .await,
        );
    }
    items.into_iter().map(|i| i.item).collect()
}

pub async fn status<C: Call>(
    c: &C,
    device: &ClientId,
    group: &GroupId,
) -> vmls_protocol::GroupStatus {
    match c.call(device, Request::GroupStatus(group.clone())).await {
        Response::Status(s) => s,
        other => panic!("not a status: {other:?}"),
    }
}

pub async fn fetch<C: Call>(c: &C, device: &ClientId, group: &GroupId) -> Response {
    c.call(
        device,
        Request::Fetch(Fetch {
            group_id: group.clone(),
            from: Sequence(0),
        }),
    )
    .await
}

/// Everything a device sees of the service: its mailbox, the group's status and log.
pub async fn snapshot<C: Call>(c: &C, devices: &[&ClientId], group: &GroupId) -> Vec<Response> {
    let mut out = Vec::new();
    for d in devices {
        out.push(Response::Mailbox(mailbox(c, d).await));
        out.push(fetch(c, d, group).await);
        out.push(Response::Status(status(c, d, group).await));
    }
    out
}

pub fn welcome_of(items: &[Delivered]) -> mls_engine::codec::Welcome {
    for d in items {
        if let Delivered::Welcome(w) = d {
            match MlsMessage::decode(&w.message).unwrap().body {
                MlsMessageBody::Welcome(w) => return w,
                _ => panic!("not a Welcome"),
            }
        }
    }
    panic!("no Welcome in {items:?}")
}

pub fn messages(items: &[Delivered]) -> Vec<&vmls_protocol::GroupMessage> {
    items
        .iter()
        .filter_map(|d| match d {
            Delivered::Message { message, .. } => Some(message),
            Delivered::Welcome(_) => None,
        })
        .collect()
}

/// A group "g" of the devices alice, bob (and carol, when `carol`), created by alice.
pub struct Plain {
    pub g: GroupId,
    pub members: Vec<(Identity, Group)>,
}

impl Plain {
    pub fn id(&self, i: usize) -> &ClientId {
        &self.members[i].0.id
    }
}

pub async fn plain_group<C: Call>(c: &C, names: &[&str]) -> Plain {
    let ids: Vec<Identity> = names.iter().map(|n| Identity::new(n)).collect();
    for i in &ids {
        done(c.call(&i.id, i.register()).await);
    }
    let (mut group, create) = ids[0].create_group("g", false);
    done(c.call(&ids[0].id, create).await);
    let g = GroupId::new("g");
    let mut members = vec![(ids[0].clone(), group.clone())];
    if ids.len() > 1 {
        let kps: Vec<_> = ids[1..].iter().map(|i| i.key_package()).collect();
        let mut options = CommitOptions::new();
        for kp in &kps {
            options = options.proposal(Proposal::add(kp.key_package.clone()));
        }
        let welcomed: Vec<ClientId> = ids[1..].iter().map(|i| i.id.clone()).collect();
        let (_, send) = commit(&mut group, options, &welcomed);
        accepted(c.call(&ids[0].id, send.to_group(g.clone())).await);
        group.merge_pending_commit().unwrap();
        members[0].1 = group;
        drain(c, &ids[0].id).await;
        for (i, kp) in ids[1..].iter().zip(&kps) {
            let items = drain(c, &i.id).await;
            members.push((i.clone(), join(i, &welcome_of(&items), kp)));
        }
    }
    Plain { g, members }
}

/// Fan-out of a Commit to the members, Welcomes to the added, the joiners' groups from them;
/// an application message to every member, the sender's echo included; acks.
pub async fn fan_out_and_welcome<C: Call>(c: &C) {
    let mut p = plain_group(c, &["alice", "bob", "carol"]).await;
    assert_eq!(p.members.len(), 3);
    let g = p.g.clone();
    let s = status(c, p.id(0), &g).await;
    assert_eq!((s.epoch, s.next_sequence), (1, Sequence(1)));
    let message = application(&mut p.members[1].1, b"hello");
    let a = accepted(
        c.call(
            p.id(1),
            SendRequest::application(message.clone()).to_group(g.clone()),
        )
        .await,
    );
    assert_eq!(a.sequence, Sequence(1));
    for i in 0..3 {
        let items = mailbox(c, p.id(i)).await;
        assert_eq!(items.len(), 1, "{}", p.id(i));
        let Delivered::Message {
            recipient,
            message: m,
        } = &items[0].item
        else {
            panic!("not a message")
        };
        assert_eq!(recipient, p.id(i));
        assert_eq!((&m.sender, m.sequence), (p.id(1), Sequence(1)));
        assert_eq!(m.message.as_bytes(), &message[..]);
        assert!(m.emulator_view.is_none());
    }
    // Each member decrypts it.
    let received = MlsMessage::decode(&message).unwrap();
    for i in [0, 2] {
        p.members[i].1.process(&svc(), &received, NOW).unwrap();
    }
    // Acks: a read after the ack is empty; acknowledging beyond what was handed out is refused.
    let items = mailbox(c, p.id(0)).await;
    let last = items.last().unwrap().cursor;
    done(c.call(p.id(0), Request::Ack(Ack { up_to: last })).await);
    assert!(mailbox(c, p.id(0)).await.is_empty());
    assert!(matches!(
        refused(
            c.call(p.id(0), Request::Ack(Ack { up_to: last.next() }))
                .await
        ),
        ServiceError::BadRequest { .. }
    ));
    // Reading after a cursor skips what came before.
    let items = mailbox(c, p.id(2)).await;
    let after = c
        .call(
            p.id(2),
            Request::ReadMailbox(ReadMailbox {
                after: Some(items[0].cursor),
                max_items: 0,
            }),
        )
        .await;
    assert_eq!(after, Response::Mailbox(vec![]));
    // The log as a member reads it: both messages.
    let Response::Messages(log) = fetch(c, p.id(2), &g).await else {
        panic!("no log")
    };
    assert_eq!(log.len(), 1, "carol reads from her Welcome on");
    let Response::Messages(log) = fetch(c, p.id(0), &g).await else {
        panic!("no log")
    };
    assert_eq!(log.len(), 2);
}

/// Two Commits for one epoch: exactly one wins, the other is refused as stale; the log's
/// order is the members' order.
pub async fn commit_race<C: Call>(c: &C) {
    let mut p = plain_group(c, &["alice", "bob"]).await;
    let g = p.g.clone();
    for trial in 0..TRIALS {
        let epoch = p.members[0].1.epoch();
        let (out_a, send_a) = commit(&mut p.members[0].1, CommitOptions::new().with_path(), &[]);
        let (out_b, send_b) = commit(&mut p.members[1].1, CommitOptions::new().with_path(), &[]);
        let (ra, rb) = if trial % 2 == 0 {
            tokio::join!(
                c.call(&p.members[0].0.id, send_a.to_group(g.clone())),
                c.call(&p.members[1].0.id, send_b.to_group(g.clone()))
            )
        } else {
            let (rb, ra) = tokio::join!(
                c.call(&p.members[1].0.id, send_b.to_group(g.clone())),
                c.call(&p.members[0].0.id, send_a.to_group(g.clone()))
            );
            (ra, rb)
        };
        let (winner, loser, commit, lost) = match (&ra, &rb) {
            (Response::Accepted(_), Response::Refused(e)) => (0, 1, &out_a.commit, e.clone()),
            (Response::Refused(e), Response::Accepted(_)) => (1, 0, &out_b.commit, e.clone()),
            other => panic!("trial {trial}: not exactly one winner: {other:?}"),
        };
        assert_eq!(
            lost,
            ServiceError::StaleEpoch {
                current: epoch + 1,
                got: epoch
            },
            "trial {trial}"
        );
        p.members[winner].1.merge_pending_commit().unwrap();
        p.members[loser].1.clear_pending_commit();
        p.members[loser].1.process(&svc(), commit, NOW).unwrap();
        assert_eq!(p.members[0].1.epoch(), p.members[1].1.epoch());
    }
    let s = status(c, p.id(0), &g).await;
    assert_eq!(s.epoch, p.members[0].1.epoch());
    // Every member's mailbox holds the winners in log order.
    for i in 0..2 {
        let items = drain(c, p.id(i)).await;
        let seqs: Vec<u64> = messages(&items).iter().map(|m| m.sequence.0).collect();
        assert_eq!(seqs, (1..=TRIALS as u64).collect::<Vec<_>>());
    }
}

/// A virtual client "vc" emulated by devices e1 and e2 (its emulation group "emu", created by
/// e1, e2 added), registered; the group "g" created by e1 as the virtual client, the device
/// bob added.
pub struct Virtual {
    pub e: [Identity; 2],
    pub emu: Group,
    pub vc: Identity,
    pub vc_group: Group,
    pub bob: (Identity, Group),
    pub g: GroupId,
    pub emu_id: GroupId,
}

pub async fn virtual_setup<C: Call>(c: &C) -> Virtual {
    let e = [Identity::new("e1"), Identity::new("e2")];
    let bob = Identity::new("bob");
    for i in e.iter().chain([&bob]) {
        done(c.call(&i.id, i.register()).await);
    }
    let (mut emu, create) = e[0].create_group("emu", false);
    done(c.call(&e[0].id, create).await);
    let emu_id = GroupId::new("emu");
    let kp = e[1].key_package();
    let (_, send) = commit(
        &mut emu,
        CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
        &[e[1].id.clone()],
    );
    accepted(c.call(&e[0].id, send.to_group(emu_id.clone())).await);
    emu.merge_pending_commit().unwrap();
    let items = drain(c, &e[1].id).await;
    join(&e[1], &welcome_of(&items), &kp);
    drain(c, &e[0].id).await;
    let vc = Identity::new("vc");
    done(
        c.call(
            &e[0].id,
            Request::RegisterVirtualClient(RegisterVirtualClient {
                virtual_client: vc.id.clone(),
                emulation_group: emu_id.clone(),
            }),
        )
        .await,
    );
    let (mut vc_group, create) = vc.create_group("g", true);
    done(c.call(&e[0].id, create).await);
    let g = GroupId::new("g");
    let kp = bob.key_package();
    let (_, send) = commit(
        &mut vc_group,
        CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
        std::slice::from_ref(&bob.id),
    );
    let head = status(c, &e[0].id, &emu_id).await.next_sequence;
    let a = accepted(
        c.call(
            &e[0].id,
            send.as_virtual_client(vc.id.clone(), VcSequence(0))
                .at_emulation_head(head)
                .to_group(g.clone()),
        )
        .await,
    );
    assert_eq!(a.vc_sequence, Some(VcSequence(0)));
    vc_group.merge_pending_commit().unwrap();
    let items = drain(c, &bob.id).await;
    let bob_group = join(&bob, &welcome_of(&items), &kp);
    Virtual {
        e,
        emu,
        vc,
        vc_group,
        bob: (bob, bob_group),
        g,
        emu_id,
    }
}

/// A virtual client's message reaches every emulator (the echo with the emulator view) and
/// the other members (without it); a lagging emulator and a non-emulator are refused.
pub async fn virtual_client_fan_out<C: Call>(c: &C) {
    let mut v = virtual_setup(c).await;
    for e in &v.e {
        let items = drain(c, &e.id).await;
        let ms = messages(&items);
        assert_eq!(ms.len(), 1, "the Commit adding bob reaches both emulators");
        let view = ms[0].emulator_view.as_ref().unwrap();
        assert_eq!(
            (&view.emulator, view.vc_sequence),
            (&v.e[0].id, VcSequence(0))
        );
    }
    let head = status(c, &v.e[1].id, &v.emu_id).await.next_sequence;
    let text = application(&mut v.vc_group, b"from the virtual client");
    let a = accepted(
        c.call(
            &v.e[1].id,
            SendRequest::application(text.clone())
                .as_virtual_client(v.vc.id.clone(), VcSequence(1))
                .at_emulation_head(head)
                .to_group(v.g.clone()),
        )
        .await,
    );
    assert_eq!(a.vc_sequence, Some(VcSequence(1)));
    for e in &v.e {
        let items = drain(c, &e.id).await;
        let Delivered::Message { recipient, message } = &items[0] else {
            panic!()
        };
        assert_eq!(recipient, &v.vc.id);
        assert_eq!(message.sender, v.vc.id);
        let view = message.emulator_view.as_ref().unwrap();
        assert_eq!(
            (&view.emulator, view.vc_sequence),
            (&v.e[1].id, VcSequence(1))
        );
    }
    let items = drain(c, &v.bob.0.id).await;
    let ms = messages(&items);
    assert_eq!(ms.len(), 1);
    assert!(ms[0].emulator_view.is_none());
    v.bob
        .1
        .process(&svc(), &MlsMessage::decode(&text).unwrap(), NOW)
        .unwrap();
    // e1 moves the emulation group on; e2, not having processed it, is refused.
    let (_, send) = commit(&mut v.emu, CommitOptions::new().with_path(), &[]);
    accepted(c.call(&v.e[0].id, send.to_group(v.emu_id.clone())).await);
    v.emu.merge_pending_commit().unwrap();
    let text = application(&mut v.vc_group, b"lagging");
    let before = snapshot(c, &[&v.e[0].id, &v.bob.0.id], &v.g).await;
    let e = refused(
        c.call(
            &v.e[1].id,
            SendRequest::application(text.clone())
                .as_virtual_client(v.vc.id.clone(), VcSequence(2))
                .at_emulation_head(head)
                .to_group(v.g.clone()),
        )
        .await,
    );
    assert_eq!(
        e,
        ServiceError::EmulationGroupBehind {
            emulation_group: v.emu_id.clone(),
            head: head.next(),
            got: head
        }
    );
    // Bob is not an emulator of the virtual client.
    let e = refused(
        c.call(
            &v.bob.0.id,
            SendRequest::application(text.clone())
                .as_virtual_client(v.vc.id.clone(), VcSequence(2))
                .at_emulation_head(head.next())
                .to_group(v.g.clone()),
        )
        .await,
    );
    assert!(matches!(e, ServiceError::NotAnEmulator { .. }), "{e:?}");
    assert_eq!(before, snapshot(c, &[&v.e[0].id, &v.bob.0.id], &v.g).await);
}

/// Two emulators send as the virtual client at one sequence: exactly one wins.
pub async fn virtual_client_race<C: Call>(c: &C) {
    let mut v = virtual_setup(c).await;
    let head = status(c, &v.e[0].id, &v.emu_id).await.next_sequence;
    for trial in 0..TRIALS {
        let k = VcSequence(trial as u64 + 1);
        let sends: Vec<Request> = (0..2)
            .map(|_| {
                SendRequest::application(application(&mut v.vc_group, b"race"))
                    .as_virtual_client(v.vc.id.clone(), k)
                    .at_emulation_head(head)
                    .to_group(v.g.clone())
            })
            .collect();
        let (r0, r1) = tokio::join!(
            c.call(&v.e[trial % 2].id, sends[0].clone()),
            c.call(&v.e[(trial + 1) % 2].id, sends[1].clone())
        );
        let lost = match (&r0, &r1) {
            (Response::Accepted(a), Response::Refused(e))
            | (Response::Refused(e), Response::Accepted(a)) => {
                assert_eq!(a.vc_sequence, Some(k));
                e.clone()
            }
            other => panic!("trial {trial}: not exactly one winner: {other:?}"),
        };
        assert_eq!(
            lost,
            ServiceError::VirtualClientSequenceMismatch {
                expected: k.next(),
                got: k
            }
        );
    }
    // Every emulator and bob saw the same log.
    let logs: Vec<Vec<u64>> = {
        let mut logs = Vec::new();
        for d in [&v.e[0].id, &v.e[1].id, &v.bob.0.id] {
            let items = drain(c, d).await;
            logs.push(messages(&items).iter().map(|m| m.sequence.0).collect());
        }
        logs
    };
    assert_eq!(logs[0], logs[1]);
    assert_eq!(
        logs[1][1..],
        logs[2][..],
        "bob joined after the first message"
    );
    assert_eq!(logs[2].len(), TRIALS);
}

/// Bad input at the core: each refused with its typed error, nothing changed.
pub async fn bad_input_changes_nothing<C: Call>(c: &C) {
    let mut p = plain_group(c, &["alice", "bob"]).await;
    let g = p.g.clone();
    let eve = Identity::new("eve");
    done(c.call(&eve.id, eve.register()).await);
    let carol = Identity::new("carol");
    done(c.call(&carol.id, carol.register()).await);
    let alice = p.id(0).clone();
    let bob = p.id(1).clone();
    let devices = [&alice, &bob];
    let before = snapshot(c, &devices, &g).await;
    macro_rules! check {
        ($r:expr) => {{
            let e = refused($r);
            (e, snapshot(c, &devices, &g).await)
        }};
    }

    // Garbage as a Commit.
    let (e, after) = check!(
        c.call(
            &alice,
            SendRequest::commit(1, vec![1, 2, 3]).to_group(g.clone())
        )
        .await
    );
    assert!(matches!(e, ServiceError::InvalidMessage { .. }), "{e:?}");
    assert_eq!(after, before);

    // A Commit whose Welcome names someone the Commit does not add.
    let kp = carol.key_package();
    let add = CommitOptions::new().proposal(Proposal::add(kp.key_package.clone()));
    let (_, send) = commit(&mut p.members[0].1, add, std::slice::from_ref(&eve.id));
    let (e, after) = check!(c.call(&alice, send.to_group(g.clone())).await);
    assert!(
        matches!(&e, ServiceError::ClaimMismatch { claim, .. } if claim.0 == "welcome recipients"),
        "{e:?}"
    );
    assert_eq!(after, before);
    p.members[0].1.clear_pending_commit();

    // A Commit adding without its Welcome.
    let add = CommitOptions::new().proposal(Proposal::add(carol.key_package().key_package));
    let (out, mut send) = commit(&mut p.members[0].1, add, std::slice::from_ref(&carol.id));
    send.welcome = None;
    let (e, after) = check!(c.call(&alice, send.clone().to_group(g.clone())).await);
    assert!(matches!(e, ServiceError::BadRequest { .. }), "{e:?}");
    assert_eq!(after, before);
    // With its Welcome but without the GroupInfo of the new epoch.
    send = send.with_welcome(
        vec![carol.id.clone()],
        welcome_bytes(out.welcome.as_ref().unwrap()),
    );
    let mut tampered = send.clone();
    tampered.group_info = None;
    let (e, after) = check!(c.call(&alice, tampered.to_group(g.clone())).await);
    assert!(
        matches!(e, ServiceError::BadRequest { .. }),
        "no GroupInfo: {e:?}"
    );
    assert_eq!(after, before);
    p.members[0].1.clear_pending_commit();

    // A removal claimed without a Remove.
    let (_, send) = commit(&mut p.members[0].1, CommitOptions::new().with_path(), &[]);
    let (e, after) = check!(
        c.call(
            &alice,
            send.clone().removing(vec![bob.clone()]).to_group(g.clone())
        )
        .await
    );
    assert!(
        matches!(&e, ServiceError::ClaimMismatch { claim, .. } if claim.0 == "removed"),
        "{e:?}"
    );
    assert_eq!(after, before);
    // The same Commit stated as an application message, and by a non-member.
    let mut as_app = send.clone();
    as_app.kind = MessageKind::Application;
    as_app.group_info = None;
    let (e, after) = check!(c.call(&alice, as_app.to_group(g.clone())).await);
    assert!(
        matches!(&e, ServiceError::ClaimMismatch { claim, .. } if claim.0 == "kind"),
        "{e:?}"
    );
    assert_eq!(after, before);
    let (e, after) = check!(c.call(&eve.id, send.clone().to_group(g.clone())).await);
    assert!(
        matches!(&e, ServiceError::ClaimMismatch { claim, .. } if claim.0 == "sender"),
        "{e:?}"
    );
    assert_eq!(after, before);
    // The Commit's GroupInfo must be of the epoch it creates: the current one is not.
    let mut stale_info = send.clone();
    stale_info.group_info =
        Some(group_info_bytes(&p.members[1].1.group_info(&svc(), true, true).unwrap()).into());
    let (e, after) = check!(c.call(&alice, stale_info.to_group(g.clone())).await);
    assert!(matches!(e, ServiceError::InvalidMessage { .. }), "{e:?}");
    assert_eq!(after, before);

    // A non-member posting an application message of the group.
    let text = application(&mut p.members[1].1, b"not yours");
    let (e, after) = check!(
        c.call(&eve.id, SendRequest::application(text).to_group(g.clone()))
            .await
    );
    assert!(matches!(e, ServiceError::NotAMember { .. }), "{e:?}");
    assert_eq!(after, before);

    // A Commit for an epoch that is gone: alice's wins, then bob's old one is stale.
    let (_, bob_send) = commit(&mut p.members[1].1, CommitOptions::new().with_path(), &[]);
    accepted(c.call(&alice, send.to_group(g.clone())).await);
    p.members[0].1.merge_pending_commit().unwrap();
    let before = snapshot(c, &devices, &g).await;
    let (e, after) = check!(c.call(&bob, bob_send.to_group(g.clone())).await);
    assert_eq!(e, ServiceError::StaleEpoch { current: 2, got: 1 });
    assert_eq!(after, before);

    // Reading a mailbox as something that is not a registered device.
    let read = Request::ReadMailbox(ReadMailbox {
        after: None,
        max_items: 0,
    });
    assert!(matches!(
        refused(c.call(&id("nobody"), read.clone()).await),
        ServiceError::UnknownClient { .. }
    ));
    assert_eq!(snapshot(c, &devices, &g).await, before);
}

/// A retried send gets the first answer and is appended once.
pub async fn idempotent_resend<C: Call>(c: &C) {
    let mut p = plain_group(c, &["alice", "bob"]).await;
    let g = p.g.clone();
    let text = application(&mut p.members[0].1, b"once");
    let send = SendRequest::application(text).to_group(g.clone());
    let first = c.call(p.id(0), send.clone()).await;
    accepted(first.clone());
    assert_eq!(c.call(p.id(0), send.clone()).await, first);
    assert_eq!(status(c, p.id(0), &g).await.next_sequence, Sequence(2));
    assert_eq!(mailbox(c, p.id(1)).await.len(), 1);
    // Another device may use the same message id.
    let text = application(&mut p.members[1].1, b"mine");
    let other = SendRequest::application(text)
        .with_message_id(MessageId::of_message(b"x"))
        .to_group(g.clone());
    let a = accepted(c.call(p.id(1), other).await);
    assert_eq!(a.sequence, Sequence(2));
}

/// KeyPackages: parsed and checked, consumed once, last resort kept, retired by reference.
pub async fn directory<C: Call>(c: &C) {
    let alice = Identity::new("alice");
    let bob = Identity::new("bob");
    for i in [&alice, &bob] {
        done(c.call(&i.id, i.register()).await);
    }
    let kps: Vec<_> = (0..3).map(|_| bob.key_package()).collect();
    let publish = |entries: Vec<KeyPackageEntry>| {
        Request::PublishKeyPackages(PublishKeyPackages {
            owner: bob.id.clone(),
            key_packages: entries,
        })
    };
    done(
        c.call(
            &bob.id,
            publish(vec![
                KeyPackageEntry::ordinary(key_package_bytes(&kps[0])),
                KeyPackageEntry::last_resort(key_package_bytes(&kps[1])),
                KeyPackageEntry::ordinary(key_package_bytes(&kps[2])),
            ]),
        )
        .await,
    );
    let consume = || {
        Request::ConsumeKeyPackage(ConsumeKeyPackage {
            owner: bob.id.clone(),
        })
    };
    let got = |r: Response| match r {
        Response::KeyPackage(kp) => kp,
        other => panic!("no KeyPackage: {other:?}"),
    };
    assert_eq!(
        got(c.call(&alice.id, consume()).await),
        key_package_bytes(&kps[0])
    );
    // Retire the other ordinary one: then only the last-resort one is left, and kept.
    done(
        c.call(
            &bob.id,
            Request::RetireKeyPackages(RetireKeyPackages {
                owner: bob.id.clone(),
                key_package_refs: vec![kps[2].reference.as_slice().to_vec().into()],
            }),
        )
        .await,
    );
    for _ in 0..2 {
        assert_eq!(
            got(c.call(&alice.id, consume()).await),
            key_package_bytes(&kps[1])
        );
    }
    // Only bob publishes bob's; a KeyPackage must name its owner and be valid.
    let e = refused(c.call(&alice.id, publish(vec![])).await);
    assert!(matches!(e, ServiceError::NotAVirtualClient { .. }), "{e:?}");
    let e = refused(
        c.call(
            &alice.id,
            Request::PublishKeyPackages(PublishKeyPackages {
                owner: alice.id.clone(),
                key_packages: vec![KeyPackageEntry::ordinary(key_package_bytes(&kps[0]))],
            }),
        )
        .await,
    );
    assert!(matches!(e, ServiceError::ClaimMismatch { .. }), "{e:?}");
    let e = refused(
        c.call(
            &bob.id,
            publish(vec![KeyPackageEntry::ordinary(vec![0u8; 40])]),
        )
        .await,
    );
    assert!(matches!(e, ServiceError::InvalidMessage { .. }), "{e:?}");
    let e = refused(
        c.call(
            &alice.id,
            Request::ConsumeKeyPackage(ConsumeKeyPackage {
                owner: alice.id.clone(),
            }),
        )
        .await,
    );
    assert!(matches!(e, ServiceError::NoKeyPackage { .. }), "{e:?}");
}

/// GroupInfos: the current one for external joiners, checked on publication; an external
/// Commit from it; the joiner's echo; a removed member gets its removal, nothing after.
pub async fn group_info_and_external_join<C: Call>(c: &C) {
    let mut p = plain_group(c, &["alice", "bob"]).await;
    let g = p.g.clone();
    let dave = Identity::new("dave");
    done(c.call(&dave.id, dave.register()).await);
    let info = match c.call(&dave.id, Request::FetchGroupInfo(g.clone())).await {
        Response::GroupInfo(body) => body,
        other => panic!("no GroupInfo: {other:?}"),
    };
    assert_eq!(info.epoch, 1);
    let MlsMessageBody::GroupInfo(group_info) = MlsMessage::decode(&info.group_info).unwrap().body
    else {
        panic!("not a GroupInfo")
    };
    let (mut dave_group, external) = Group::join_by_external_commit(
        &svc(),
        GroupConfig::default(),
        &group_info,
        None,
        dave.own_leaf(),
        ExternalCommitOptions::default(),
        NOW,
    )
    .unwrap();
    let new_info = dave_group.group_info(&svc(), true, true).unwrap();
    // Stated as an ordinary Commit it is refused; as an external one accepted.
    let wrong =
        SendRequest::commit(1, bytes(&external)).with_group_info(group_info_bytes(&new_info));
    assert!(matches!(
        refused(c.call(&dave.id, wrong.to_group(g.clone())).await),
        ServiceError::ClaimMismatch { .. }
    ));
    let send = SendRequest::external_commit(1, bytes(&external))
        .with_group_info(group_info_bytes(&new_info));
    let a = accepted(c.call(&dave.id, send.to_group(g.clone())).await);
    for i in 0..2 {
        p.members[i].1.process(&svc(), &external, NOW).unwrap();
        drain(c, p.id(i)).await;
    }
    let items = drain(c, &dave.id).await;
    assert_eq!(
        messages(&items)[0].sequence,
        a.sequence,
        "the joiner's echo"
    );
    // Publishing the current GroupInfo again is accepted; a stale one is refused.
    let current = p.members[0].1.group_info(&svc(), true, true).unwrap();
    done(
        c.call(
            p.id(0),
            Request::PublishGroupInfo(PublishGroupInfo {
                group_id: g.clone(),
                epoch: 2,
                as_virtual_client: None,
                group_info: group_info_bytes(&current).into(),
            }),
        )
        .await,
    );
    let e = refused(
        c.call(
            p.id(0),
            Request::PublishGroupInfo(PublishGroupInfo {
                group_id: g.clone(),
                epoch: 1,
                as_virtual_client: None,
                group_info: info.group_info.clone(),
            }),
        )
        .await,
    );
    assert_eq!(e, ServiceError::StaleEpoch { current: 2, got: 1 });
    // Alice removes bob: bob gets the Commit, not what follows, and may no longer post.
    let bob_leaf = p.members[1].1.own_leaf_index().0;
    let (out, send) = commit(
        &mut p.members[0].1,
        CommitOptions::new().proposal(Proposal::remove(bob_leaf)),
        &[],
    );
    accepted(
        c.call(
            p.id(0),
            send.removing(vec![p.id(1).clone()]).to_group(g.clone()),
        )
        .await,
    );
    p.members[0].1.merge_pending_commit().unwrap();
    dave_group.process(&svc(), &out.commit, NOW).unwrap();
    let text = application(&mut p.members[0].1, b"after bob");
    accepted(
        c.call(p.id(0), SendRequest::application(text).to_group(g.clone()))
            .await,
    );
    let items = drain(c, p.id(1)).await;
    assert_eq!(messages(&items).len(), 1, "bob gets his removal only");
    assert_eq!(messages(&items)[0].kind, MessageKind::Commit { epoch: 2 });
    assert_eq!(messages(&drain(c, &dave.id).await).len(), 2);
    let text = application(&mut p.members[1].1, b"still here?");
    assert!(matches!(
        refused(
            c.call(p.id(1), SendRequest::application(text).to_group(g.clone()))
                .await
        ),
        ServiceError::NotAMember { .. }
    ));
}

/// A group whose handshakes are PrivateMessages: served on the cleartext header (its status
/// says so), the first Commit of an epoch still wins, Welcomes go to the stated recipients.
pub async fn private_handshakes<C: Call>(c: &C) {
    let alice = Identity::new("alice");
    let bob = Identity::new("bob");
    for i in [&alice, &bob] {
        done(c.call(&i.id, i.register()).await);
    }
    let config = GroupConfig {
        handshake_wire_format: HandshakeWireFormat::Private,
        ..GroupConfig::default()
    };
    let (mut ga, create) = alice.create_group_with("p", false, config);
    done(c.call(&alice.id, create).await);
    let g = GroupId::new("p");
    assert_eq!(
        status(c, &alice.id, &g).await.handshakes,
        HandshakeView::Verified
    );
    let kp = bob.key_package();
    let (out, send) = commit(
        &mut ga,
        CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
        std::slice::from_ref(&bob.id),
    );
    assert!(matches!(out.commit.body, MlsMessageBody::PrivateMessage(_)));
    accepted(c.call(&alice.id, send.to_group(g.clone())).await);
    ga.merge_pending_commit().unwrap();
    let s = status(c, &alice.id, &g).await;
    assert_eq!((s.epoch, s.handshakes), (1, HandshakeView::HeaderOnly));
    let items = drain(c, &bob.id).await;
    let mut gb = join(&bob, &welcome_of(&items), &kp);
    let text = application(&mut gb, b"private group");
    accepted(
        c.call(&bob.id, SendRequest::application(text).to_group(g.clone()))
            .await,
    );
    // Two Commits for epoch 1: the first wins, the other is stale.
    let (_, sa) = commit(&mut ga, CommitOptions::new().with_path(), &[]);
    let (_, sb) = commit(&mut gb, CommitOptions::new().with_path(), &[]);
    accepted(c.call(&alice.id, sa.to_group(g.clone())).await);
    assert_eq!(
        refused(c.call(&bob.id, sb.to_group(g.clone())).await),
        ServiceError::StaleEpoch { current: 2, got: 1 }
    );
}
