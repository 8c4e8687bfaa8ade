//! mls-rs 0.57 with its pure-Rust RustCrypto provider (`mls-rs-crypto-rustcrypto`), the
//! basic identity provider and in-memory storage, built without the `rayon` feature (single
//! threaded, like the other two engines).
//!
//! `mls_rs::Group` is `Clone`: a member is forked by cloning it. Joining from a Welcome does
//! not consume the KeyPackage's secrets until the group is written to storage (never here), so
//! a joiner is forked by cloning its `Client`.

use mls_rs::client_builder::{
    BaseConfig, PaddingMode, WithCryptoProvider, WithIdentityProvider, WithMlsRules,
};
use mls_rs::group::ReceivedMessage;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::mls_rules::{CommitOptions, DefaultMlsRules, EncryptionOptions};
use mls_rs::{CipherSuite, CipherSuiteProvider, Client, CryptoProvider, Group, MlsMessage};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

use crate::Engine;

const SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

/// The client configuration: RustCrypto, basic credentials, explicit rules.
pub type Config = WithMlsRules<
    DefaultMlsRules,
    WithCryptoProvider<RustCryptoProvider, WithIdentityProvider<BasicIdentityProvider, BaseConfig>>,
>;

/// An mls-rs client of [`Config`].
pub type MlsRsClient = Client<mls_rs::client_builder::IntoConfigOutput<Config>>;

/// An mls-rs member of [`Config`].
pub type MlsRsGroup = Group<mls_rs::client_builder::IntoConfigOutput<Config>>;

fn rules() -> DefaultMlsRules {
    DefaultMlsRules::new()
        .with_commit_options(
            CommitOptions::new()
                .with_path_required(false)
                .with_ratchet_tree_extension(true)
                .with_single_welcome_message(true),
        )
        .with_encryption_options(EncryptionOptions::new(false, PaddingMode::None))
}

fn new_client(name: &str) -> MlsRsClient {
    let crypto = RustCryptoProvider::default();
    let suite = crypto.cipher_suite_provider(SUITE).expect("suite 1");
    let (secret, public) = suite.signature_key_generate().expect("signature key");
    let identity = SigningIdentity::new(
        BasicCredential::new(name.as_bytes().to_vec()).into_credential(),
        public,
    );
    Client::builder()
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(crypto)
        .mls_rules(rules())
        .signing_identity(identity, secret, SUITE)
        .build()
}

fn decode(bytes: &[u8]) -> MlsMessage {
    MlsMessage::from_bytes(bytes).expect("decodes the MLSMessage")
}

/// mls-rs with PublicMessage handshakes, no padding, `ratchet_tree` in Welcomes.
#[derive(Debug)]
pub struct MlsRs;

impl Engine for MlsRs {
    const NAME: &'static str = "mls-rs";
    type Member = MlsRsGroup;
    type Joiner = MlsRsClient;

    fn create(name: &str) -> MlsRsGroup {
        new_client(name)
            .create_group_with_id(
                crate::GROUP_ID.to_vec(),
                Default::default(),
                Default::default(),
                None,
            )
            .expect("creates the group")
    }

    fn new_joiner(name: &str) -> (MlsRsClient, Vec<u8>) {
        let client = new_client(name);
        let key_package = client
            .generate_key_package_message(Default::default(), Default::default(), None)
            .expect("KeyPackage");
        let bytes = key_package.to_bytes().expect("encodes");
        (client, bytes)
    }

    fn fork(member: &MlsRsGroup) -> MlsRsGroup {
        member.clone()
    }

    fn fork_joiner(joiner: &MlsRsClient) -> MlsRsClient {
        joiner.clone()
    }

    fn commit_with_path(member: &mut MlsRsGroup) -> Vec<u8> {
        let out = member.commit(vec![]).expect("commits");
        member.apply_pending_commit().expect("merges");
        out.commit_message.to_bytes().expect("encodes")
    }

    fn add(member: &mut MlsRsGroup, key_packages: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        let mut builder = member.commit_builder();
        for bytes in key_packages {
            builder = builder.add_member(decode(bytes)).expect("adds");
        }
        let out = builder.build().expect("commits the Adds");
        member.apply_pending_commit().expect("merges");
        let welcome = out.welcome_messages.first().expect("a Welcome");
        (
            out.commit_message.to_bytes().expect("encodes"),
            welcome.to_bytes().expect("encodes"),
        )
    }

    fn process_commit(member: &mut MlsRsGroup, commit: &[u8]) {
        match member
            .process_incoming_message(decode(commit))
            .expect("processes the Commit")
        {
            ReceivedMessage::Commit(_) => {}
            _ => panic!("not a Commit"),
        }
    }

    fn join(joiner: MlsRsClient, welcome: &[u8]) -> MlsRsGroup {
        joiner
            .join_group(None, &decode(welcome), None)
            .expect("joins")
            .0
    }

    fn encrypt(member: &mut MlsRsGroup, data: &[u8]) -> Vec<u8> {
        member
            .encrypt_application_message(data, vec![])
            .expect("encrypts")
            .to_bytes()
            .expect("encodes")
    }

    fn decrypt(member: &mut MlsRsGroup, message: &[u8]) -> Vec<u8> {
        match member
            .process_incoming_message(decode(message))
            .expect("decrypts")
        {
            ReceivedMessage::ApplicationMessage(app) => app.data().to_vec(),
            _ => panic!("not an application message"),
        }
    }

    fn ratchet_tree(member: &MlsRsGroup) -> Vec<u8> {
        member.export_tree().to_bytes().expect("encodes the tree")
    }

    fn epoch_authenticator(member: &MlsRsGroup) -> Vec<u8> {
        member
            .epoch_authenticator()
            .expect("epoch authenticator")
            .as_bytes()
            .to_vec()
    }
}
