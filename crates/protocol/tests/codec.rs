//! Every protocol structure round-trips through its TLS encoding, and truncated or extended
//! encodings are refused with an error (never a panic).

use vmls_protocol::{
    decode, encode, Ack, ClientId, Delivered, EmulatorView, Fetch, GroupId, GroupMessage,
    GroupStatus, KeyPackageEntry, MailboxCursor, MailboxItem, MessageId, MessageKind,
    PublishKeyPackages, RegisterDevice, Request, Response, SendRequest, Sequence, ServiceError,
    Text, VcSequence,
};

fn requests() -> Vec<Request> {
    let g = GroupId::new("g");
    vec![
        Request::RegisterDevice(RegisterDevice {
            device: ClientId::new("alice-phone"),
            signature_scheme: 0x0807,
            signature_key: vec![7; 32].into(),
        }),
        SendRequest::commit(3, vec![1, 2, 3])
            .as_virtual_client(ClientId::new("alice"), VcSequence(4))
            .at_emulation_head(Sequence(9))
            .with_welcome(vec![ClientId::new("bob")], vec![4, 5])
            .removing(vec![ClientId::new("carol")])
            .with_group_info(vec![6])
            .to_group(g.clone()),
        SendRequest::application(vec![0; 300]).to_group(g.clone()),
        Request::PublishKeyPackages(PublishKeyPackages {
            owner: ClientId::new("alice"),
            key_packages: vec![
                KeyPackageEntry::ordinary(vec![1]),
                KeyPackageEntry::last_resort(vec![2]),
            ],
        }),
        Request::Fetch(Fetch {
            group_id: g.clone(),
            from: Sequence(2),
        }),
        Request::Ack(Ack {
            up_to: MailboxCursor(5),
        }),
        Request::GroupStatus(g),
    ]
}

fn responses() -> Vec<Response> {
    let message = GroupMessage {
        group_id: GroupId::new("g"),
        sequence: Sequence(1),
        sender: ClientId::new("alice"),
        kind: MessageKind::Commit { epoch: 1 },
        emulator_view: Some(EmulatorView {
            emulator: ClientId::new("alice-phone"),
            vc_sequence: VcSequence(0),
            group_info: None,
        }),
        message: vec![9; 10].into(),
    };
    vec![
        Response::done(),
        Response::Refused(ServiceError::StaleEpoch { current: 3, got: 2 }),
        Response::Refused(ServiceError::InvalidMessage {
            reason: Text::new("bad signature"),
        }),
        Response::Refused(ServiceError::NotACommit {}),
        Response::Messages(vec![message.clone()]),
        Response::Mailbox(vec![MailboxItem {
            cursor: MailboxCursor(0),
            item: Delivered::Message {
                recipient: ClientId::new("alice"),
                message,
            },
        }]),
        Response::Status(GroupStatus {
            epoch: 2,
            next_sequence: Sequence(7),
            handshakes: Default::default(),
        }),
    ]
}

#[test]
fn requests_and_responses_round_trip() {
    for r in requests() {
        let bytes = encode(&r).unwrap();
        assert_eq!(decode::<Request>(&bytes).unwrap(), r);
    }
    for r in responses() {
        let bytes = encode(&r).unwrap();
        assert_eq!(decode::<Response>(&bytes).unwrap(), r);
    }
}

#[test]
fn truncated_and_extended_encodings_are_refused() {
    for r in requests() {
        let bytes = encode(&r).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode::<Request>(&bytes[..len]).is_err(),
                "{r:?} cut at {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<Request>(&longer).is_err());
    }
}

#[test]
fn message_id_is_the_hash_prefix_of_the_message() {
    let a = SendRequest::application(vec![1, 2, 3]);
    let b = SendRequest::application(vec![1, 2, 3]);
    let c = SendRequest::application(vec![1, 2, 4]);
    assert_eq!(a.message_id, b.message_id);
    assert_ne!(a.message_id, c.message_id);
    let fixed = MessageId([7; 16]);
    assert_eq!(a.with_message_id(fixed).message_id, fixed);
}

#[test]
fn unknown_request_type_is_refused() {
    assert!(decode::<Request>(&[0xff, 0xff]).is_err());
}
