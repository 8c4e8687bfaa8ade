//! Bad input to the device runtime (issue 10 "Bad input"): what the service delivers can be
//! forged, reordered, duplicated or withheld, answers can be for no request, saved state can
//! be corrupt. Each case is a typed event or error, never a panic, and the device's MLS state
//! and log positions are unchanged by a rejected input; genuine messages still get through.

use delivery_service::InMemoryDeliveryService;
use mls_engine::crypto::CipherSuite;
use virtual_clients::runtime::{Device, DeviceConfig, Event, Intent, RequestId, RuntimeError};
use vmls_protocol::{
    ClientId, Delivered, GroupId, GroupMessage, MailboxCursor, MailboxItem, MessageKind, Payload,
    Request, Response, Sequence, WelcomeDelivery,
};

mod common;
use common::{NOW, P};

struct World {
    service: InMemoryDeliveryService,
    devices: Vec<Device>,
    events: Vec<Vec<Event>>,
    group: GroupId,
}

const ALICE: usize = 0;
const BOB: usize = 1;
const VC1: usize = 2;

impl World {
    fn pump(&mut self, i: usize) {
        let d = &mut self.devices[i];
        while let Some(t) = d.poll_transmit() {
            let response = self.service.handle(&d.id().clone(), t.request, NOW);
            d.handle_response(t.id, response, NOW).unwrap();
        }
        self.events[i].extend(std::iter::from_fn(|| d.poll_event()));
    }

    fn settle(&mut self) {
        for _ in 0..10 {
            for i in 0..self.devices.len() {
                self.devices[i].sync(NOW);
                self.pump(i);
            }
        }
    }

    fn intend(&mut self, i: usize, intent: Intent) {
        self.devices[i].intend(intent, NOW);
        self.pump(i);
    }

    /// The MLS state of the group at device `i` and its log position.
    fn state(&self, i: usize) -> (Vec<u8>, Option<Sequence>) {
        let d = &self.devices[i];
        (
            d.group(&self.group).unwrap().to_bytes().unwrap(),
            d.log_position(&self.group),
        )
    }

    fn take(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[i])
    }

    /// A mailbox item for device `i` carrying `message`, with a cursor it has not seen.
    fn item(&self, n: u64, message: GroupMessage) -> MailboxItem {
        MailboxItem {
            cursor: MailboxCursor(1_000_000 + n),
            item: Delivered::Message {
                recipient: ClientId::new("bob"),
                message,
            },
        }
    }
}

fn setup() -> World {
    let config = DeviceConfig::new(CipherSuite(1), NOW);
    let mut w = World {
        service: InMemoryDeliveryService::new(),
        devices: vec![
            Device::new_plain(&P, ClientId::new("alice"), config).unwrap(),
            Device::new_plain(&P, ClientId::new("bob"), config).unwrap(),
            Device::new_virtual_client(
                &P,
                ClientId::new("vc-1"),
                ClientId::new("vc"),
                GroupId::new("vc-emulation"),
                config,
            )
            .unwrap(),
        ],
        events: vec![Vec::new(), Vec::new(), Vec::new()],
        group: GroupId::new("g"),
    };
    for i in 0..3 {
        w.pump(i);
    }
    w.intend(BOB, Intent::PublishKeyPackages { count: 2 });
    w.intend(VC1, Intent::PublishKeyPackages { count: 2 });
    let g = w.group.clone();
    w.intend(
        ALICE,
        Intent::CreateGroup {
            group_id: g.clone(),
        },
    );
    w.intend(
        ALICE,
        Intent::AddMembers {
            group_id: g,
            members: vec![ClientId::new("bob"), ClientId::new("vc")],
        },
    );
    w.settle();
    for i in 0..3 {
        w.take(i);
    }
    w
}

/// Bob's view of the group's log from `from` on, as the service holds it.
fn fetch(w: &mut World, group: &GroupId, from: Sequence) -> Vec<GroupMessage> {
    let Response::Messages(log) = w.service.handle(
        &ClientId::new("bob"),
        Request::Fetch(vmls_protocol::Fetch {
            group_id: group.clone(),
            from,
        }),
        NOW,
    ) else {
        panic!("no log");
    };
    log
}

fn forged(group: &GroupId, sequence: Sequence, kind: MessageKind, bytes: &[u8]) -> GroupMessage {
    GroupMessage {
        group_id: group.clone(),
        sequence,
        sender: ClientId::new("alice"),
        kind,
        emulator_view: None,
        message: Payload::from(bytes.to_vec()),
    }
}

#[test]
fn forged_messages_at_the_next_position_are_rejected_and_change_nothing() {
    let mut w = setup();
    let before = w.state(BOB);
    let next = before.1.unwrap();
    let g = w.group.clone();
    for (n, (kind, bytes)) in [
        (MessageKind::Application, &b"garbage"[..]),
        (MessageKind::Commit { epoch: 1 }, &[0, 1, 0, 1, 0xff][..]),
        (MessageKind::Proposal, &[][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let item = w.item(n as u64, forged(&g, next, kind, bytes));
        w.devices[BOB].handle_mailbox(vec![item], NOW);
        let events: Vec<Event> = std::iter::from_fn(|| w.devices[BOB].poll_event()).collect();
        assert!(
            matches!(events.as_slice(), [Event::Rejected { sequence: Some(s), .. }] if *s == next),
            "{events:?}"
        );
        assert_eq!(w.state(BOB), before, "{kind:?}");
        // Drop the acknowledgement of the forged cursor.
        while w.devices[BOB].poll_transmit().is_some() {}
    }
    // The genuine message at that position is not taken for a duplicate.
    w.intend(
        ALICE,
        Intent::Send {
            group_id: g.clone(),
            data: b"real".to_vec(),
        },
    );
    let log = fetch(&mut w, &g, next);
    let item = w.item(10, log[0].clone());
    w.devices[BOB].handle_mailbox(vec![item], NOW);
    let events: Vec<Event> = std::iter::from_fn(|| w.devices[BOB].poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::MessageReceived { data, .. } if data == b"real")),
        "{events:?}"
    );
}

#[test]
fn duplicated_and_reordered_items_are_dropped_or_fetched() {
    let mut w = setup();
    let g = w.group.clone();
    // Alice sends two messages; Bob gets only the second first (the first withheld).
    w.intend(
        ALICE,
        Intent::Send {
            group_id: g.clone(),
            data: b"one".to_vec(),
        },
    );
    w.intend(
        ALICE,
        Intent::Send {
            group_id: g.clone(),
            data: b"two".to_vec(),
        },
    );
    let from = w.devices[BOB].log_position(&g).unwrap();
    let log = fetch(&mut w, &g, from);
    assert_eq!(log.len(), 2);
    let second = w.item(0, log[1].clone());
    w.devices[BOB].handle_mailbox(vec![second.clone()], NOW);
    // The gap makes the device fetch the log.
    let mut fetched = false;
    while let Some(t) = w.devices[BOB].poll_transmit() {
        fetched |= matches!(t.request, Request::Fetch(_));
        let response = w.service.handle(&ClientId::new("bob"), t.request, NOW);
        w.devices[BOB].handle_response(t.id, response, NOW).unwrap();
    }
    assert!(fetched);
    let events: Vec<Event> = std::iter::from_fn(|| w.devices[BOB].poll_event()).collect();
    let texts: Vec<Vec<u8>> = events
        .into_iter()
        .filter_map(|e| match e {
            Event::MessageReceived { data, .. } => Some(data),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec![b"one".to_vec(), b"two".to_vec()]);
    // The same item again (a duplicate under a new cursor): dropped, nothing changes.
    let state = w.state(BOB);
    let mut again = second;
    again.cursor = MailboxCursor(2_000_000);
    w.devices[BOB].handle_mailbox(vec![again], NOW);
    assert!(w.devices[BOB].poll_event().is_none());
    assert_eq!(w.state(BOB), state);
}

#[test]
fn a_forged_welcome_and_a_forged_emulation_message_are_rejected() {
    let mut w = setup();
    let emulation = GroupId::new("vc-emulation");
    let client_before = w.devices[VC1].emulator().unwrap().to_bytes().unwrap();
    let position = w.devices[VC1].log_position(&emulation);
    let welcome = MailboxItem {
        cursor: MailboxCursor(3_000_000),
        item: Delivered::Welcome(WelcomeDelivery {
            group_id: GroupId::new("other"),
            sequence: Sequence(0),
            recipient: ClientId::new("vc"),
            message: Payload::from(vec![0, 1, 0, 3, 9, 9]),
        }),
    };
    let emulation_message = MailboxItem {
        cursor: MailboxCursor(3_000_001),
        item: Delivered::Message {
            recipient: ClientId::new("vc-1"),
            message: forged(
                &emulation,
                position.unwrap(),
                MessageKind::Commit { epoch: 1 },
                b"not a commit",
            ),
        },
    };
    w.devices[VC1].handle_mailbox(vec![welcome, emulation_message], NOW);
    let events: Vec<Event> = std::iter::from_fn(|| w.devices[VC1].poll_event()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events.iter().all(|e| matches!(e, Event::Rejected { .. })),
        "{events:?}"
    );
    assert_eq!(
        w.devices[VC1].emulator().unwrap().to_bytes().unwrap(),
        client_before
    );
    assert_eq!(w.devices[VC1].log_position(&emulation), position);
    assert!(w.devices[VC1].group(&GroupId::new("other")).is_none());
}

#[test]
fn an_answer_to_no_request_and_corrupt_state_are_typed_errors() {
    let mut w = setup();
    let saved = w.devices[BOB].to_bytes().unwrap();
    let err = w.devices[BOB]
        .handle_response(RequestId(999_999), Response::done(), NOW)
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnknownRequest(RequestId(999_999))),
        "{err}"
    );
    assert_eq!(w.devices[BOB].to_bytes().unwrap(), saved);
    for bad in [&saved[..saved.len() / 2], &[][..], &[0xff; 40][..]] {
        assert!(matches!(
            Device::from_bytes(&P, bad),
            Err(RuntimeError::MalformedState(_))
        ));
    }
    let mut longer = saved.to_vec();
    longer.push(0);
    assert!(matches!(
        Device::from_bytes(&P, &longer),
        Err(RuntimeError::MalformedState(_))
    ));
    // The saved state itself restores to the same device.
    let restored = Device::from_bytes(&P, &saved).unwrap();
    assert_eq!(restored.to_bytes().unwrap(), saved);
}
