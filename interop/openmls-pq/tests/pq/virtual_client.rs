//! Virtual clients across suites (DESIGN row 5): Alice's emulation group is on suite 1
//! (X25519, SHA-256), and her virtual client is a member of a higher-level group on the X-Wing
//! suite (same KDF hash, SHA-256) whose other members are OpenMLS clients. Her leaf's HPKE
//! keys are X-Wing keys derived with the PQ suite's `DeriveKeyPair`; OpenMLS checks them
//! whenever it processes one of her commits (the UpdatePath's keys must match the path
//! secrets it decrypts).

use std::time::{SystemTime, UNIX_EPOCH};

use mls_engine::codec::{
    decode_exact, Credential, KeyPackage, Lifetime, MlsMessage, MlsMessageBody, Proposal, Welcome,
};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SuiteProvider};
use mls_engine::group::{CommitOptions, OwnLeaf, ProcessedMessage, Services};
use mls_engine::messages::{HpkeKeySource, KeyPackageParams};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{GroupId, MlsGroup, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY};
use virtual_clients::emulator::EmulatorClient;

use crate::harness::{OpenMlsClient, Processed, View, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LENGTH};
use crate::PQ_SUITE;

static P: RustCrypto = RustCrypto;
const GROUP: &[u8] = b"pq group";
const EMULATION_SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;

fn svc() -> Services<'static> {
    Services::new(&P)
}

fn suite(cipher_suite: CipherSuite) -> &'static dyn SuiteProvider {
    P.suite(cipher_suite).unwrap()
}

/// OpenMLS checks KeyPackage lifetimes against the system clock: the test's `now`.
fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// From an hour before `now` to 28 days after (OpenMLS accepts at most 12 weeks).
fn lifetime(now: u64) -> Lifetime {
    Lifetime {
        not_before: now - 3600,
        not_after: now + 28 * 24 * 3600,
    }
}

fn encode(message: &MlsMessage) -> Vec<u8> {
    message.to_bytes().unwrap()
}

fn welcome_of(bytes: &[u8]) -> Welcome {
    match MlsMessage::decode(bytes).unwrap().body {
        MlsMessageBody::Welcome(w) => w,
        other => panic!("not a Welcome: {other:?}"),
    }
}

/// Alice's two devices on `EMULATION_SUITE`: A1 creates the emulation group, adds A2.
fn alice(now: u64) -> Vec<EmulatorClient> {
    let cs = suite(EMULATION_SUITE);
    let vc = Credential::basic(b"alice".to_vec());
    let mut a1 = EmulatorClient::create(
        &svc(),
        b"alice emulation".to_vec(),
        EMULATION_SUITE,
        OwnLeaf {
            params: EmulatorClient::emulation_leaf_params(
                EMULATION_SUITE,
                Credential::basic(b"alice-1".to_vec()),
            ),
            encryption_key: HpkeKeySource::Generate,
            signature_key: cs.signature_generate_key_pair().unwrap(),
        },
        lifetime(now),
        vc.clone(),
    )
    .unwrap();
    let key = cs.signature_generate_key_pair().unwrap();
    let credential = Credential::basic(b"alice-2".to_vec());
    let kp = KeyPackageParams::new(EMULATION_SUITE, credential.clone(), lifetime(now))
        .with_leaf(EmulatorClient::emulation_leaf_params(
            EMULATION_SUITE,
            credential,
        ))
        .build_fresh(cs, &key)
        .unwrap();
    let options = CommitOptions::new().proposal(Proposal::add(kp.key_package.clone()));
    let out = a1.commit_emulation(&svc(), options, now).unwrap();
    a1.confirm_emulation_commit(&svc()).unwrap();
    let a2 = EmulatorClient::join(&svc(), &out.welcome.unwrap(), &kp, key, vc, now).unwrap();
    vec![a1, a2]
}

/// One OpenMLS member.
struct Peer {
    client: OpenMlsClient,
    group: MlsGroup,
}

/// The higher-level group on the PQ suite: Alice's devices (one leaf) and OpenMLS peers.
struct PqGroup {
    now: u64,
    alice: Vec<EmulatorClient>,
    peers: Vec<Peer>,
    epoch: u64,
}

impl PqGroup {
    /// A1 announces a PQ-suite KeyPackage (KeyPackageUpload); Bob (OpenMLS) validates it,
    /// creates the group and adds it; both devices join from Bob's Welcome.
    fn new() -> Self {
        let now = wall_clock();
        let mut alice = alice(now);
        let (out, kps) = alice[0]
            .publish_key_packages(
                &svc(),
                CipherSuite(PQ_SUITE),
                lifetime(now),
                1,
                CommitOptions::new(),
                now,
            )
            .unwrap();
        alice[0].confirm_emulation_commit(&svc()).unwrap();
        let upload = encode(&out.commit);
        let got = alice[1].process_emulation(&svc(), &upload, now).unwrap();
        assert!(matches!(got, ProcessedMessage::Commit { own: false, .. }));
        let kp = &kps[0];
        assert_eq!(kp.cipher_suite.0, PQ_SUITE);
        assert_eq!(kp.init_key.as_slice().len(), 1216, "an X-Wing init key");
        assert_eq!(
            kp.leaf_node.encryption_key.as_slice().len(),
            1216,
            "an X-Wing encryption key"
        );

        let bob = OpenMlsClient::new(b"bob", PQ_SUITE);
        let kp_message = encode(&MlsMessage::new(MlsMessageBody::KeyPackage(kp.clone())));
        let validated = bob
            .validate_key_package(&kp_message)
            .unwrap_or_else(|e| panic!("OpenMLS refuses the PQ KeyPackage: {e:?}"));
        let mut group = bob.create_group_with(
            bob.group_builder_with_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
                .with_group_id(GroupId::from_slice(GROUP)),
        );
        let added = bob.add_members(&mut group, &[validated]);
        let welcome = welcome_of(&added.welcome);
        for d in &mut alice {
            assert_eq!(
                d.join_from_welcome_by_ref(&svc(), &welcome, now).unwrap(),
                GROUP
            );
        }
        let g = Self {
            now,
            alice,
            peers: vec![Peer { client: bob, group }],
            epoch: 1,
        };
        g.check("Bob added Alice");
        g
    }

    fn device_view(&self, i: usize) -> View {
        let group = self.alice[i].group(GROUP).unwrap();
        let context = group.group_context();
        View {
            epoch: group.epoch(),
            exporter: group
                .export_secret(&svc(), EXPORTER_LABEL, EXPORTER_CONTEXT, EXPORTER_LENGTH)
                .unwrap()
                .as_bytes()
                .to_vec(),
            epoch_authenticator: group.epoch_authenticator().to_vec(),
            tree_hash: context.tree_hash.as_slice().to_vec(),
            confirmed_transcript_hash: context.confirmed_transcript_hash.as_slice().to_vec(),
            leaves: group.members().iter().map(|m| m.index.0).collect(),
        }
    }

    /// Everyone agrees on the epoch, epoch authenticator, exporter, tree and transcript hash
    /// and members; both devices' key material matches Alice's leaf; the emulation group stays
    /// on suite 1 and the higher-level group on the PQ suite.
    fn check(&self, step: &str) {
        let reference = self.device_view(0);
        assert_eq!(reference.epoch, self.epoch, "{step}: A1's epoch");
        assert_eq!(reference.leaves.len(), 1 + self.peers.len(), "{step}: members");
        assert_eq!(self.device_view(1), reference, "{step}: A2 vs A1");
        for (i, p) in self.peers.iter().enumerate() {
            assert_eq!(p.client.view(&p.group), reference, "{step}: peer {i} vs A1");
        }
        for (i, d) in self.alice.iter().enumerate() {
            assert!(
                d.leaf_is_consistent(&svc(), GROUP).unwrap(),
                "{step}: A{}'s leaf is inconsistent",
                i + 1
            );
            assert_eq!(d.emulation_group().cipher_suite(), EMULATION_SUITE);
            assert_eq!(d.group(GROUP).unwrap().cipher_suite().0, PQ_SUITE);
        }
    }

    /// Device `by` commits `proposals` with a path; the sibling and the peers process it.
    fn alice_commits(&mut self, by: usize, proposals: Vec<Proposal>) -> Option<Vec<u8>> {
        let now = self.now;
        let out = self.alice[by]
            .commit(&svc(), GROUP, proposals, now)
            .unwrap();
        let commit = encode(&out.commit);
        for (i, d) in self.alice.iter_mut().enumerate() {
            let got = d.process(&svc(), GROUP, &commit, now).unwrap();
            assert!(
                matches!(got, ProcessedMessage::Commit { own, removed_us: false, .. } if own == (i == by)),
                "A{}: {got:?}",
                i + 1
            );
        }
        for p in &mut self.peers {
            let got = p
                .client
                .try_process(&mut p.group, &commit)
                .unwrap_or_else(|e| panic!("OpenMLS refuses A{}'s commit: {e}", by + 1));
            assert_eq!(got, Processed::Commit);
        }
        self.epoch += 1;
        out.welcome
            .map(|w| encode(&MlsMessage::new(MlsMessageBody::Welcome(w))))
    }

    /// Peer `by` commits a full-path self update; everyone else processes it.
    fn peer_updates(&mut self, by: usize) {
        let commit = {
            let p = &mut self.peers[by];
            p.client.self_update(&mut p.group)
        };
        self.deliver_from_peer(by, &commit, |got| {
            matches!(got, ProcessedMessage::Commit { own: false, removed_us: false, .. })
        });
        self.epoch += 1;
    }

    fn deliver_from_peer(
        &mut self,
        by: usize,
        message: &[u8],
        expected: impl Fn(&ProcessedMessage) -> bool,
    ) {
        for (i, p) in self.peers.iter_mut().enumerate() {
            if i != by {
                p.client
                    .try_process(&mut p.group, message)
                    .unwrap_or_else(|e| panic!("peer {i} refuses peer {by}'s message: {e}"));
            }
        }
        let now = self.now;
        for (i, d) in self.alice.iter_mut().enumerate() {
            let got = d
                .process(&svc(), GROUP, message, now)
                .unwrap_or_else(|e| panic!("A{} refuses peer {by}'s message: {e:?}", i + 1));
            assert!(expected(&got), "A{}: {got:?}", i + 1);
        }
    }

    /// Device `by` sends `text`; the peers and the sibling read it.
    fn alice_sends(&mut self, by: usize, text: &[u8]) {
        let now = self.now;
        let message = self.alice[by]
            .send_application(&svc(), GROUP, text)
            .unwrap();
        let bytes = encode(&message);
        for p in &mut self.peers {
            let got = p.client.try_process(&mut p.group, &bytes).unwrap();
            assert_eq!(got, Processed::Application(text.to_vec()));
        }
        let sibling = 1 - by;
        match self.alice[sibling]
            .process(&svc(), GROUP, &bytes, now)
            .unwrap()
        {
            ProcessedMessage::Application { data, .. } => assert_eq!(data, text),
            other => panic!("A{}: {other:?}", sibling + 1),
        }
        assert!(self.alice[by]
            .confirm_sent(&svc(), GROUP, &message)
            .unwrap());
    }

    /// Peer `by` sends `text`; everyone else reads it.
    fn peer_sends(&mut self, by: usize, text: &[u8]) {
        let message = {
            let p = &mut self.peers[by];
            p.client.send_application(&mut p.group, text)
        };
        self.deliver_from_peer(by, &message, |got| {
            matches!(got, ProcessedMessage::Application { data, .. } if data == text)
        });
    }
}

/// An OpenMLS KeyPackage of `client` as the engine's struct.
fn openmls_key_package(client: &OpenMlsClient) -> KeyPackage {
    let bytes = client
        .key_package()
        .key_package()
        .tls_serialize_detached()
        .unwrap();
    decode_exact(&bytes).unwrap()
}

#[test]
fn virtual_client_on_suite_1_acts_in_a_pq_group_with_openmls_members() {
    let mut g = PqGroup::new();
    // Each device commits with a path: OpenMLS decrypts the path secrets and checks the X-Wing
    // public keys derived from them against the UpdatePath.
    g.alice_commits(0, vec![]);
    g.check("A1 committed");
    g.alice_commits(1, vec![]);
    g.check("A2 committed");
    // A2 adds Carol (OpenMLS, PQ suite); she joins from A2's Welcome.
    let carol = OpenMlsClient::new(b"carol", PQ_SUITE);
    let kp = openmls_key_package(&carol);
    let welcome = g
        .alice_commits(1, vec![Proposal::add(kp)])
        .expect("a Welcome for Carol");
    let group = carol.join_with(&welcome, None, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY);
    g.peers.push(Peer {
        client: carol,
        group,
    });
    g.check("A2 added Carol");
    // OpenMLS commits reach both devices, which decrypt X-Wing path secrets to Alice's leaf.
    g.peer_updates(0);
    g.check("Bob updated");
    g.peer_updates(1);
    g.check("Carol updated");
    g.alice_commits(0, vec![]);
    g.check("A1 committed again");
    // Application messages both ways.
    g.alice_sends(0, b"from A1");
    g.alice_sends(1, b"from A2");
    g.peer_sends(0, b"from Bob");
    g.peer_sends(1, b"from Carol");
    g.check("after the messages");
}
