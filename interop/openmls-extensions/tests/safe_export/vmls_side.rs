//! The mls-engine side: a [`VmlsMember`] that publishes a KeyPackage, joins from an OpenMLS
//! Welcome, processes Commits and commits self updates, every message as `MLSMessage` bytes.
//! The KeyPackage's private keys stay available so [`crate::construction`] can open the
//! Welcome by hand.

use std::time::{SystemTime, UNIX_EPOCH};

use mls_engine::codec::{Credential, Lifetime, MlsMessage, MlsMessageBody, Welcome};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SuiteProvider};
use mls_engine::group::{CommitOptions, Group, GroupConfig, ProcessedMessage, Services};
use mls_engine::messages::{KeyPackageBundle, KeyPackageParams};

static CRYPTO: RustCrypto = RustCrypto;

/// The engine's implementation of cipher suite `suite`.
pub fn suite(suite: u16) -> &'static dyn SuiteProvider {
    CRYPTO
        .suite(CipherSuite(suite))
        .expect("mls-engine implements the suite")
}

/// The engine's services: RustCrypto, basic credentials, no PSKs.
pub fn services() -> Services<'static> {
    Services::new(&CRYPTO)
}

/// Seconds since the Unix epoch (tests only: the engine never reads a clock).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The Welcome inside an encoded `MLSMessage`.
pub fn decode_welcome(bytes: &[u8]) -> Welcome {
    let message = MlsMessage::decode(bytes).expect("the engine decodes the Welcome");
    let MlsMessageBody::Welcome(welcome) = message.body else {
        panic!("the message is not a Welcome");
    };
    welcome
}

/// One mls-engine member.
pub struct VmlsMember {
    suite: u16,
    signature_key: mls_engine::crypto::SignatureKeyPair,
    /// The KeyPackage it published (with private keys), until it joins.
    pub key_package: KeyPackageBundle,
    /// The group, once joined.
    pub group: Option<Group>,
}

impl VmlsMember {
    /// A member with basic credential `identity` and a fresh KeyPackage for `suite_id`.
    pub fn new(identity: &[u8], suite_id: u16) -> Self {
        let signature_key = suite(suite_id)
            .signature_generate_key_pair()
            .expect("the engine generates a signature key");
        let now = now();
        let key_package = KeyPackageParams::new(
            CipherSuite(suite_id),
            Credential::basic(identity.to_vec()),
            Lifetime {
                not_before: now - 3600,
                not_after: now + 30 * 24 * 3600,
            },
        )
        .build_fresh(suite(suite_id), &signature_key)
        .expect("the engine builds a KeyPackage");
        Self {
            suite: suite_id,
            signature_key,
            key_package,
            group: None,
        }
    }

    /// The KeyPackage as an encoded `MLSMessage`.
    pub fn key_package_message(&self) -> Vec<u8> {
        MlsMessage::new(MlsMessageBody::KeyPackage(
            self.key_package.key_package.clone(),
        ))
        .to_bytes()
        .expect("the engine encodes its KeyPackage")
    }

    /// The engine's cipher suite implementation for this member.
    pub fn suite(&self) -> &'static dyn SuiteProvider {
        suite(self.suite)
    }

    /// The group (panics before the join).
    pub fn group(&self) -> &Group {
        self.group.as_ref().expect("the vmls member is in a group")
    }

    /// The group, mutably.
    pub fn group_mut(&mut self) -> &mut Group {
        self.group.as_mut().expect("the vmls member is in a group")
    }

    /// Joins from an encoded Welcome whose GroupInfo carries the ratchet tree.
    pub fn join(&mut self, welcome: &[u8]) {
        let group = Group::join_from_welcome(
            &services(),
            GroupConfig::default(),
            &decode_welcome(welcome),
            &self.key_package,
            self.signature_key.clone(),
            None,
            now(),
        )
        .expect("the engine joins from the Welcome");
        self.group = Some(group);
    }

    /// Processes an encoded Commit `MLSMessage` (applied at once).
    pub fn process_commit(&mut self, message: &[u8]) {
        let message = MlsMessage::decode(message).expect("the engine decodes the message");
        let processed = self
            .group_mut()
            .process(&services(), &message, now())
            .expect("the engine accepts the Commit");
        assert!(
            matches!(processed, ProcessedMessage::Commit { .. }),
            "the message is a Commit"
        );
    }

    /// Commits a full-path self update, merges it, and returns the Commit.
    pub fn self_update(&mut self) -> Vec<u8> {
        let mut options = CommitOptions::new().with_path();
        options.include_pending = false;
        let group = self.group_mut();
        let output = group
            .commit(&services(), options, now())
            .expect("the engine commits");
        group
            .merge_pending_commit()
            .expect("the engine merges its own commit");
        output
            .commit
            .to_bytes()
            .expect("the engine encodes its Commit")
    }
}
