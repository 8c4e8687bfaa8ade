//! The world of the protocol-hole tests: Alice, a virtual client on two devices (emulator
//! clients `alice[0]`, `alice[1]`), and Carol, a plain member, in the higher-level group
//! [`GROUP`]. Messages are handed over directly, in the order the delivery service would.

use mls_engine::codec::{Credential, MlsMessage, Proposal};
use mls_engine::crypto::CipherSuite;
use mls_engine::group::{CommitOptions, CommitOutput, Group, GroupConfig, OwnLeaf};
use mls_engine::messages::{HpkeKeySource, LeafNodeParams};
use virtual_clients::emulator::EmulatorClient;

use crate::common::{emulators, lifetime, suite, svc, NOW};

/// The higher-level group.
pub const GROUP: &[u8] = b"higher";

/// Alice's devices and Carol.
pub struct World {
    /// Alice's emulator clients.
    pub alice: Vec<EmulatorClient>,
    /// Carol, a plain member.
    pub carol: Group,
}

/// The encoding of `message`.
pub fn bytes(message: &MlsMessage) -> Vec<u8> {
    message.to_bytes().unwrap()
}

/// A plain member `name` alone in a new group `group_id`.
pub fn plain_member(cipher_suite: CipherSuite, name: &str, group_id: &[u8]) -> Group {
    Group::create(
        &svc(),
        GroupConfig::default(),
        group_id.to_vec(),
        cipher_suite,
        OwnLeaf {
            params: LeafNodeParams::new(cipher_suite, Credential::basic(name.as_bytes().to_vec())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: suite(cipher_suite).signature_generate_key_pair().unwrap(),
        },
        lifetime(),
        vec![],
    )
    .unwrap()
}

impl World {
    /// Alice on `devices` devices; Carol adds her through a KeyPackage `alice[0]` published;
    /// every device joins from the Welcome.
    pub fn new(cipher_suite: CipherSuite, devices: usize) -> Self {
        let mut alice = emulators(cipher_suite, "alice", devices);
        let mut carol = plain_member(cipher_suite, "carol", GROUP);
        let kp = alice[0]
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
        for device in &mut alice {
            device
                .join_from_welcome(&svc(), &welcome, &kp, NOW)
                .unwrap();
        }
        let world = Self { alice, carol };
        world.assert_agree();
        world
    }

    /// Every device and Carol are in the same epoch of [`GROUP`], each device's leaf secret is
    /// that of the leaf in the tree.
    pub fn assert_agree(&self) {
        let a = self.carol.epoch_authenticator();
        for device in &self.alice {
            assert_eq!(device.group(GROUP).unwrap().epoch_authenticator(), a);
            assert!(device.leaf_is_consistent(&svc(), GROUP).unwrap());
        }
    }

    /// `alice[by]` commits `proposals` in [`GROUP`]; the service accepts it: the committer
    /// confirms, its siblings and Carol process it.
    pub fn alice_commits(&mut self, by: usize, proposals: Vec<Proposal>) -> CommitOutput {
        let out = self.alice[by]
            .commit(&svc(), GROUP, proposals, NOW)
            .unwrap();
        self.alice[by].confirm_commit(GROUP).unwrap();
        let b = bytes(&out.commit);
        for (i, device) in self.alice.iter_mut().enumerate() {
            if i != by {
                device.process(&svc(), GROUP, &b, NOW).unwrap();
            }
        }
        self.carol.process_bytes(&svc(), &b, NOW).unwrap();
        out
    }

    /// A new emulation epoch: `alice[by]` commits (with path) in the emulation group, the
    /// service accepts it, every sibling processes it.
    pub fn next_emulation_epoch(&mut self, by: usize) {
        let out = self.alice[by]
            .commit_emulation(&svc(), CommitOptions::new().with_path(), NOW)
            .unwrap();
        self.alice[by].confirm_emulation_commit(&svc()).unwrap();
        let b = bytes(&out.commit);
        for (i, device) in self.alice.iter_mut().enumerate() {
            if i != by {
                device.process_emulation(&svc(), &b, NOW).unwrap();
            }
        }
    }
}
