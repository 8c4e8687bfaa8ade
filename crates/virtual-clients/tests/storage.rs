//! Storage (DESIGN §6): one atomic save per processed message.
//!
//! * a store that fails to save leaves both the store and the in-memory client at the old
//!   state, and the same message can be processed again once the store works;
//! * a message the client rejects writes nothing;
//! * an operation's output (a commit, an application message) is not returned unless its
//!   state was saved;
//! * a client reopened from the store (a restart) continues the conversation.

use mls_engine::codec::{Credential, MlsMessage, Proposal};
use mls_engine::crypto::CipherSuite;
use mls_engine::group::{CommitOptions, Group, GroupConfig, OwnLeaf, ProcessedMessage};
use mls_engine::messages::{HpkeKeySource, KeyPackageParams, LeafNodeParams};
use virtual_clients::emulator::{EmulatorClient, EmulatorError};
use virtual_clients::storage::{EmulatorStore, InMemoryStore, PersistentEmulator, StorageError};
use zeroize::Zeroizing;

mod common;
use common::{lifetime, suite, svc, NOW, P};

const GROUP: &[u8] = b"higher";
const ID: &[u8] = b"alice-2";

fn bytes(message: &MlsMessage) -> Vec<u8> {
    message.to_bytes().unwrap()
}

/// The store's fault.
#[derive(Debug, thiserror::Error)]
#[error("disk full")]
struct DiskFull;

/// A test double: an in-memory store that can be told to fail, and counts its saves.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: InMemoryStore,
    fail: bool,
    saves: usize,
}

impl EmulatorStore for FlakyStore {
    type Error = DiskFull;

    fn load(&self, client_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, DiskFull> {
        Ok(self.inner.load(client_id).unwrap_or_else(|e| match e {}))
    }

    fn save(&mut self, client_id: &[u8], state: &[u8]) -> Result<(), DiskFull> {
        if self.fail {
            return Err(DiskFull);
        }
        self.saves += 1;
        self.inner
            .save(client_id, state)
            .unwrap_or_else(|e| match e {});
        Ok(())
    }
}

/// Alice on two devices (device 2 persistent), Carol a plain member, all in GROUP from a
/// KeyPackage device 1 published.
fn setup() -> (EmulatorClient, PersistentEmulator<FlakyStore>, Group) {
    let cipher_suite = CipherSuite(1);
    let cs = suite(cipher_suite);
    let vc = Credential::basic(b"alice".to_vec());
    let mut e1 = EmulatorClient::create(
        &svc(),
        b"alice-emulation".to_vec(),
        cipher_suite,
        OwnLeaf {
            params: LeafNodeParams::new(cipher_suite, Credential::basic(b"alice-1".to_vec())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: cs.signature_generate_key_pair().unwrap(),
        },
        lifetime(),
        vc.clone(),
    )
    .unwrap();
    let key = cs.signature_generate_key_pair().unwrap();
    let kp2 = KeyPackageParams::new(cipher_suite, Credential::basic(ID.to_vec()), lifetime())
        .with_leaf(EmulatorClient::emulation_leaf_params(
            cipher_suite,
            Credential::basic(ID.to_vec()),
        ))
        .build_fresh(cs, &key)
        .unwrap();
    let out = e1
        .add_emulator(&svc(), kp2.key_package.clone(), NOW)
        .unwrap();
    e1.confirm_emulation_commit(&svc()).unwrap();
    let e2 =
        EmulatorClient::join(&svc(), out.welcome.as_ref().unwrap(), &kp2, key, vc, NOW).unwrap();
    let mut e2 = PersistentEmulator::create(FlakyStore::default(), ID.to_vec(), e2).unwrap();

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
    let kp = e1
        .publish_key_package(&svc(), cipher_suite, lifetime())
        .unwrap();
    let out = carol
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.clone())),
            NOW,
        )
        .unwrap();
    carol.merge_pending_commit().unwrap();
    let welcome = out.welcome.unwrap();
    e1.join_from_welcome(&svc(), &welcome, &kp, NOW).unwrap();
    e2.apply(&P, |c| c.join_from_welcome(&svc(), &welcome, &kp, NOW))
        .unwrap();
    assert_agree(&e1, e2.client(), &carol);
    assert_stored(&e2);
    (e1, e2, carol)
}

fn assert_agree(e1: &EmulatorClient, e2: &EmulatorClient, carol: &Group) {
    let a = carol.epoch_authenticator();
    assert_eq!(e1.group(GROUP).unwrap().epoch_authenticator(), a);
    assert_eq!(e2.group(GROUP).unwrap().epoch_authenticator(), a);
    assert!(e1.leaf_is_consistent(&svc(), GROUP).unwrap());
    assert!(e2.leaf_is_consistent(&svc(), GROUP).unwrap());
}

/// Memory and store agree.
fn assert_stored(e: &PersistentEmulator<FlakyStore>) {
    let stored = e.store().load(ID).unwrap().unwrap();
    assert_eq!(e.client().to_bytes().unwrap().as_slice(), stored.as_slice());
}

/// Device 1 commits; Carol and device 2 process the commit.
fn sibling_commit(e1: &mut EmulatorClient, carol: &mut Group) -> Vec<u8> {
    let out = e1.commit(&svc(), GROUP, vec![], NOW).unwrap();
    e1.confirm_commit(GROUP).unwrap();
    let b = bytes(&out.commit);
    carol.process_bytes(&svc(), &b, NOW).unwrap();
    b
}

#[test]
fn a_failed_save_leaves_store_and_client_at_the_old_state() {
    let (mut e1, mut e2, mut carol) = setup();
    // A sibling's commit: processing it punctures device 2's PPRF leaf and moves its group.
    let b = sibling_commit(&mut e1, &mut carol);
    let before = e2.client().to_bytes().unwrap();
    let saves = e2.store().saves;
    e2.store_mut().fail = true;
    let got = e2.process(&svc(), GROUP, &b, NOW);
    assert!(matches!(got, Err(StorageError::Store(DiskFull))), "{got:?}");
    assert_eq!(e2.client().to_bytes().unwrap(), before);
    assert_eq!(
        e2.store().load(ID).unwrap().unwrap().as_slice(),
        before.as_slice()
    );
    assert_eq!(e2.store().saves, saves);
    // The puncture was rolled back too: once the store works, the same commit is processed.
    e2.store_mut().fail = false;
    let got = e2.process(&svc(), GROUP, &b, NOW).unwrap();
    assert!(matches!(got, ProcessedMessage::Commit { own: false, .. }));
    assert_eq!(e2.store().saves, saves + 1);
    assert_stored(&e2);
    assert_agree(&e1, e2.client(), &carol);
}

#[test]
fn no_output_leaves_before_its_state_is_saved() {
    let (mut e1, mut e2, mut carol) = setup();
    let before = e2.client().to_bytes().unwrap();
    e2.store_mut().fail = true;
    // A commit and an application message are not handed out when the save fails.
    let got = e2.apply(&P, |c| c.commit(&svc(), GROUP, vec![], NOW));
    assert!(matches!(got, Err(StorageError::Store(DiskFull))));
    let got = e2.apply(&P, |c| c.send_application(&svc(), GROUP, b"lost"));
    assert!(matches!(got, Err(StorageError::Store(DiskFull))));
    assert_eq!(e2.client().to_bytes().unwrap(), before);
    assert!(!e2.client().group(GROUP).unwrap().has_pending_commit());
    assert_stored(&e2);
    // Once the store works, device 2 commits and sends; everyone follows.
    e2.store_mut().fail = false;
    let out = e2
        .apply(&P, |c| c.commit(&svc(), GROUP, vec![], NOW))
        .unwrap();
    let b = bytes(&out.commit);
    e2.process(&svc(), GROUP, &b, NOW).unwrap();
    e1.process(&svc(), GROUP, &b, NOW).unwrap();
    carol.process_bytes(&svc(), &b, NOW).unwrap();
    assert_agree(&e1, e2.client(), &carol);
    let m = e2
        .apply(&P, |c| c.send_application(&svc(), GROUP, b"kept"))
        .unwrap();
    match carol.process_bytes(&svc(), &bytes(&m), NOW).unwrap() {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, b"kept"),
        other => panic!("{other:?}"),
    }
    assert!(e2.apply(&P, |c| c.confirm_sent(&svc(), GROUP, &m)).unwrap());
    assert_stored(&e2);
}

#[test]
fn a_rejected_message_writes_nothing() {
    let (mut e1, mut e2, mut carol) = setup();
    let before = e2.client().to_bytes().unwrap();
    let saves = e2.store().saves;
    for bad in [&b"garbage"[..], &[]] {
        let got = e2.process(&svc(), GROUP, bad, NOW);
        assert!(matches!(got, Err(StorageError::Emulator(_))), "{got:?}");
    }
    let got = e2.process(&svc(), b"no such group", &[], NOW);
    assert!(matches!(
        got,
        Err(StorageError::Emulator(EmulatorError::UnknownGroup))
    ));
    let got = e2.process_emulation(&svc(), b"garbage", NOW);
    assert!(matches!(got, Err(StorageError::Emulator(_))), "{got:?}");
    assert_eq!(e2.store().saves, saves);
    assert_eq!(e2.client().to_bytes().unwrap(), before);
    assert_stored(&e2);
    // Still in step afterwards.
    let b = sibling_commit(&mut e1, &mut carol);
    e2.process(&svc(), GROUP, &b, NOW).unwrap();
    assert_agree(&e1, e2.client(), &carol);
}

#[test]
fn a_restarted_client_continues_the_conversation() {
    let (mut e1, e2, mut carol) = setup();
    let (client, store) = e2.into_parts();
    drop(client);
    let mut e2 = PersistentEmulator::open(&P, store, ID.to_vec()).unwrap();
    assert_eq!(e2.client_id(), ID);
    assert_stored(&e2);
    // A sibling commit, a commit of its own, messages both ways.
    let b = sibling_commit(&mut e1, &mut carol);
    e2.process(&svc(), GROUP, &b, NOW).unwrap();
    assert_agree(&e1, e2.client(), &carol);
    // A new emulation epoch, then a restart: device 1's next commit is derived from the new
    // epoch, which the reopened device 2 must have kept.
    let out = e1
        .commit_emulation(&svc(), CommitOptions::new().with_path(), NOW)
        .unwrap();
    e1.confirm_emulation_commit(&svc()).unwrap();
    let got = e2
        .process_emulation(&svc(), &bytes(&out.commit), NOW)
        .unwrap();
    assert!(matches!(got, ProcessedMessage::Commit { .. }));
    assert_eq!(e1.epoch_ids().last(), e2.client().epoch_ids().last());
    let (_, store) = e2.into_parts();
    let mut e2 = PersistentEmulator::open(&P, store, ID.to_vec()).unwrap();
    let b = sibling_commit(&mut e1, &mut carol);
    e2.process(&svc(), GROUP, &b, NOW).unwrap();
    assert_agree(&e1, e2.client(), &carol);
    // Restart again, mid-conversation.
    let (_, store) = e2.into_parts();
    let mut e2 = PersistentEmulator::open(&P, store, ID.to_vec()).unwrap();
    let out = e2
        .apply(&P, |c| c.commit(&svc(), GROUP, vec![], NOW))
        .unwrap();
    let b = bytes(&out.commit);
    e2.process(&svc(), GROUP, &b, NOW).unwrap();
    e1.process(&svc(), GROUP, &b, NOW).unwrap();
    carol.process_bytes(&svc(), &b, NOW).unwrap();
    assert_agree(&e1, e2.client(), &carol);
    let m = carol.encrypt_application(&svc(), b"hi alice", &[]).unwrap();
    match e2.process(&svc(), GROUP, &bytes(&m), NOW).unwrap() {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, b"hi alice"),
        other => panic!("{other:?}"),
    }
    let m = e1
        .send_application(&svc(), GROUP, b"from device 1")
        .unwrap();
    match e2.process(&svc(), GROUP, &bytes(&m), NOW).unwrap() {
        ProcessedMessage::Application { data, .. } => assert_eq!(data, b"from device 1"),
        other => panic!("{other:?}"),
    }
    assert_stored(&e2);
    // An unknown client ID is a clear error.
    let (_, store) = e2.into_parts();
    assert!(matches!(
        PersistentEmulator::open(&P, store, b"nobody".to_vec()),
        Err(StorageError::NotFound)
    ));
}
