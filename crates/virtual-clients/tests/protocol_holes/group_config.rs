//! Hole 8: a higher-level group's policy was fixed (PublicMessage handshakes, no padding,
//! late application messages dropped after every commit). It is now set per group
//! (`set_group_config`), and a PrivateMessage Commit from an emulator client carries its FF1
//! reuse guard (§5.6) as application messages do.

use mls_engine::codec::MlsMessageBody;
use mls_engine::crypto::CipherSuite;
use mls_engine::group::{GroupConfig, HandshakeWireFormat, ProcessedMessage};

use crate::common::{svc, NOW};
use crate::world::{bytes, World, GROUP};

#[test]
fn private_handshakes_padding_and_past_epochs_per_group() {
    let mut w = World::new(CipherSuite(1), 2);
    let config = GroupConfig {
        handshake_wire_format: HandshakeWireFormat::Private,
        padding_block: 64,
        max_past_epochs: 2,
        ..GroupConfig::default()
    };
    for device in &mut w.alice {
        device.set_group_config(GROUP, config).unwrap();
        assert!(device.group(GROUP).unwrap().config().retain_sent_keys);
    }
    w.carol.set_config(config);
    // A late message: Carol sends in this epoch, the devices read it after the commits.
    let late = w.carol.encrypt_application(&svc(), b"late", b"").unwrap();
    for by in [0, 1, 0] {
        let out = w.alice_commits(by, vec![]);
        assert!(matches!(out.commit.body, MlsMessageBody::PrivateMessage(_)));
    }
    w.assert_agree();
    // Two epochs later the message of three epochs ago is gone, that of two ago still opens.
    let late_bytes = bytes(&late);
    assert!(w.alice[1]
        .clone()
        .process(&svc(), GROUP, &late_bytes, NOW)
        .is_err());
    let mut w = World::new(CipherSuite(1), 2);
    for device in &mut w.alice {
        device.set_group_config(GROUP, config).unwrap();
    }
    w.carol.set_config(config);
    let late = w.carol.encrypt_application(&svc(), b"late", b"").unwrap();
    w.alice_commits(1, vec![]);
    match w.alice[0]
        .process(&svc(), GROUP, &bytes(&late), NOW)
        .unwrap()
    {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, b"late"),
        other => panic!("{other:?}"),
    }
    // Padding: a short message is padded to the block.
    let m = w.alice[0].send_application(&svc(), GROUP, b"hi").unwrap();
    match &m.body {
        MlsMessageBody::PrivateMessage(p) => assert!(p.ciphertext.as_slice().len() >= 64),
        other => panic!("{other:?}"),
    }
}
