//! Bad input to an emulator client (issue 5, "Bad input"): every message an emulator client
//! processes — a sibling's commit and application message in a higher-level group, a plain
//! member's commit, an emulation-group commit carrying a `KeyPackageUpload`, a `DeviceState`
//! transfer and a sibling's external commit — is mutated (truncated at many lengths, extended
//! by a byte, single bits flipped) and replayed. Every mutation and every replay is a typed
//! error, and the client's whole state (groups, PPRF punctures, retained keys, announcements)
//! is byte-identical afterwards. The genuine message is then still accepted.

use mls_engine::codec::{Credential, MlsMessage, Proposal};
use mls_engine::crypto::CipherSuite;
use mls_engine::group::{CommitOptions, Group, GroupConfig, OwnLeaf};
use mls_engine::messages::{HpkeKeySource, LeafNodeParams};
use virtual_clients::emulator::{EmulatorClient, EmulatorError};

mod common;
use common::{lifetime, suite, svc, NOW};

const GROUP: &[u8] = b"bad-input";

/// Alice's first and second emulator clients.
fn alice(cipher_suite: CipherSuite) -> (EmulatorClient, EmulatorClient) {
    let mut devices = common::emulators(cipher_suite, "alice", 2);
    let e2 = devices.pop().unwrap();
    (devices.pop().unwrap(), e2)
}

/// Feeds every mutation of `message` to `f` on `e` (each must fail and change nothing), then
/// the genuine message (must succeed), then the genuine message again (a replay: must fail and
/// change nothing). Returns how many mutations were tried.
fn check(
    e: &mut EmulatorClient,
    message: &[u8],
    mut f: impl FnMut(&mut EmulatorClient, &[u8]) -> Result<(), EmulatorError>,
) -> usize {
    let before = e.to_bytes().unwrap();
    let mut tried = 0;
    let mut refuse = |e: &mut EmulatorClient, bytes: &[u8], what: &str| {
        let result = f(e, bytes);
        assert!(result.is_err(), "{what} was accepted");
        assert_eq!(before, e.to_bytes().unwrap(), "{what} changed the state");
        tried += 1;
    };
    let len = message.len();
    let step = (len / 48).max(1);
    for cut in (0..len).step_by(step) {
        refuse(e, &message[..cut], &format!("truncation to {cut}"));
    }
    let mut longer = message.to_vec();
    longer.push(0);
    refuse(e, &longer, "an appended byte");
    let bit_step = (len * 8 / 160).max(1);
    for bit in (0..len * 8).step_by(bit_step) {
        let mut flipped = message.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        refuse(e, &flipped, &format!("bit {bit} flipped"));
    }
    f(e, message).expect("the genuine message is accepted");
    let after = e.to_bytes().unwrap();
    let replay = f(e, message);
    assert!(replay.is_err(), "a replay was accepted");
    assert_eq!(after, e.to_bytes().unwrap(), "a replay changed the state");
    tried
}

#[test]
fn every_mutated_or_replayed_message_is_refused_and_changes_nothing() {
    for cipher_suite in [CipherSuite(1), CipherSuite(3)] {
        let cs = suite(cipher_suite);
        let (mut e1, mut e2) = alice(cipher_suite);
        let mut tried = 0;

        // An emulation commit with a KeyPackageUpload.
        let (out, kps) = e1
            .publish_key_packages(
                &svc(),
                cipher_suite,
                lifetime(),
                1,
                CommitOptions::new(),
                NOW,
            )
            .unwrap();
        e1.confirm_emulation_commit(&svc()).unwrap();
        tried += check(&mut e2, &out.commit.to_bytes().unwrap(), |e, b| {
            e.process_emulation(&svc(), b, NOW).map(|_| ())
        });

        // Carol creates the group and adds Alice; both devices join by ref.
        let mut carol = Group::create(
            &svc(),
            GroupConfig::default(),
            GROUP.to_vec(),
            cipher_suite,
            OwnLeaf {
                params: LeafNodeParams::new(cipher_suite, Credential::basic(b"carol".to_vec())),
                encryption_key: HpkeKeySource::Generate,
                signature_key: cs.signature_generate_key_pair().unwrap(),
            },
            lifetime(),
            vec![],
        )
        .unwrap();
        let out = carol
            .commit(
                &svc(),
                CommitOptions::new().proposal(Proposal::add(kps[0].clone())),
                NOW,
            )
            .unwrap();
        carol.merge_pending_commit().unwrap();
        let welcome = out.welcome.unwrap();
        e1.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap();
        e2.join_from_welcome_by_ref(&svc(), &welcome, NOW).unwrap();

        // A sibling's commit with path (H2) in the higher-level group.
        let out = e1.commit(&svc(), GROUP, vec![], NOW).unwrap();
        e1.confirm_commit(GROUP).unwrap();
        let commit = out.commit.to_bytes().unwrap();
        carol.process_bytes(&svc(), &commit, NOW).unwrap();
        tried += check(&mut e2, &commit, |e, b| {
            e.process(&svc(), GROUP, b, NOW).map(|_| ())
        });

        // A sibling's application message (FF1 reuse guard, H3).
        let message = e1
            .send_application(&svc(), GROUP, b"from e1")
            .unwrap()
            .to_bytes()
            .unwrap();
        tried += check(&mut e2, &message, |e, b| {
            e.process(&svc(), GROUP, b, NOW).map(|_| ())
        });

        // A plain member's commit.
        let out = carol
            .commit(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        carol.merge_pending_commit().unwrap();
        let commit = out.commit.to_bytes().unwrap();
        e1.process(&svc(), GROUP, &commit, NOW).unwrap();
        tried += check(&mut e2, &commit, |e, b| {
            e.process(&svc(), GROUP, b, NOW).map(|_| ())
        });

        // A DeviceState transfer of a group e1 created.
        e1.create_group(&svc(), b"created".to_vec(), cipher_suite, lifetime())
            .unwrap();
        let transfer = e1
            .group_state_message(&svc(), b"created")
            .unwrap()
            .to_bytes()
            .unwrap();
        tried += check(&mut e2, &transfer, |e, b| {
            e.process_emulation(&svc(), b, NOW).map(|_| ())
        });
        assert!(e2.group(b"created").is_some());

        // A sibling's external commit (resync into GROUP), followed from the GroupInfo.
        let info = carol.group_info(&svc(), true, true).unwrap();
        let out = e1
            .announce_external_join(&svc(), GROUP, CommitOptions::new(), NOW)
            .unwrap();
        e1.confirm_emulation_commit(&svc()).unwrap();
        e2.process_emulation(&svc(), &out.commit.to_bytes().unwrap(), NOW)
            .unwrap();
        let external = e1
            .join_by_external_commit(&svc(), &info, None, NOW)
            .unwrap()
            .to_bytes()
            .unwrap();
        tried += check(&mut e2, &external, |e, b| {
            let message = MlsMessage::decode(b).map_err(EmulatorError::Codec)?;
            e.follow_external_join(&svc(), &info, None, &message, NOW)
                .map(|_| ())
        });
        assert_eq!(
            e1.group(GROUP).unwrap().epoch_authenticator(),
            e2.group(GROUP).unwrap().epoch_authenticator()
        );
        assert!(tried > 6 * 150, "only {tried} mutations tried");
    }
}
