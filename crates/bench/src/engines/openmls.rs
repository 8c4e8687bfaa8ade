//! OpenMLS 0.9.2 through its plain RFC 9420 API, with the RustCrypto provider and its
//! in-memory storage (the versions mls-engine's interop tests use).
//!
//! OpenMLS keeps a group's state in its storage provider; a member is forked by copying the
//! storage and loading the group from the copy.

use std::collections::HashMap;
use std::sync::RwLock;

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    BasicCredential, Ciphersuite, CredentialWithKey, GroupId, KeyPackage, LeafNodeParameters,
    MlsGroup, MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, MlsMessageOut,
    ProcessedMessageContent, ProtocolVersion, StagedWelcome, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::{MemoryStorage, RustCrypto};
use openmls_traits::OpenMlsProvider;

use crate::Engine;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// An OpenMLS provider like `OpenMlsRustCrypto` (RustCrypto + `MemoryStorage`) whose storage
/// can be copied.
#[derive(Debug, Default)]
pub struct Provider {
    crypto: RustCrypto,
    storage: MemoryStorage,
}

impl Provider {
    /// A provider with a copy of this one's storage (and a fresh random generator).
    pub fn fork(&self) -> Self {
        let values: HashMap<Vec<u8>, Vec<u8>> =
            self.storage.values.read().expect("storage lock").clone();
        Self {
            crypto: RustCrypto::default(),
            storage: MemoryStorage {
                values: RwLock::new(values),
            },
        }
    }
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MemoryStorage;

    fn storage(&self) -> &MemoryStorage {
        &self.storage
    }

    fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }

    fn rand(&self) -> &RustCrypto {
        &self.crypto
    }
}

/// The signer's copy in `provider`'s storage (every client stores its signature key).
fn copy_signer(provider: &Provider, signer: &SignatureKeyPair) -> SignatureKeyPair {
    SignatureKeyPair::read(
        provider.storage(),
        signer.public(),
        signer.signature_scheme(),
    )
    .expect("the signature key is stored")
}

fn new_client(name: &str) -> (Provider, SignatureKeyPair, CredentialWithKey) {
    let provider = Provider::default();
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("signature key");
    signer.store(provider.storage()).expect("stores the key");
    let credential = CredentialWithKey {
        credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
        signature_key: signer.to_public_vec().into(),
    };
    (provider, signer, credential)
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .build()
}

fn to_bytes(message: &MlsMessageOut) -> Vec<u8> {
    message.tls_serialize_detached().expect("encodes")
}

fn decode(bytes: &[u8]) -> MlsMessageIn {
    MlsMessageIn::tls_deserialize_exact(bytes).expect("decodes the MLSMessage")
}

/// OpenMLS with PublicMessage handshakes (`MIXED_PLAINTEXT`), no padding, `ratchet_tree`
/// in Welcomes.
#[derive(Debug)]
pub struct OpenMls;

/// One OpenMLS member: its provider (with the group in storage), group and signer.
#[derive(Debug)]
pub struct OpenMlsMember {
    provider: Provider,
    group: MlsGroup,
    signer: SignatureKeyPair,
}

/// An OpenMLS client whose KeyPackage is in its storage.
#[derive(Debug)]
pub struct OpenMlsJoiner {
    provider: Provider,
    signer: SignatureKeyPair,
}

impl Engine for OpenMls {
    const NAME: &'static str = "openmls";
    type Member = OpenMlsMember;
    type Joiner = OpenMlsJoiner;

    fn create(name: &str) -> OpenMlsMember {
        let (provider, signer, credential) = new_client(name);
        let group = MlsGroup::builder()
            .ciphersuite(SUITE)
            .with_group_id(GroupId::from_slice(crate::GROUP_ID))
            .use_ratchet_tree_extension(true)
            .with_wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .build(&provider, &signer, credential)
            .expect("creates the group");
        OpenMlsMember {
            provider,
            group,
            signer,
        }
    }

    fn new_joiner(name: &str) -> (OpenMlsJoiner, Vec<u8>) {
        let (provider, signer, credential) = new_client(name);
        let bundle = KeyPackage::builder()
            .build(SUITE, &provider, &signer, credential)
            .expect("KeyPackage");
        let bytes = to_bytes(&MlsMessageOut::from(bundle.key_package().clone()));
        (OpenMlsJoiner { provider, signer }, bytes)
    }

    fn fork(member: &OpenMlsMember) -> OpenMlsMember {
        let provider = member.provider.fork();
        let group = MlsGroup::load(provider.storage(), member.group.group_id())
            .expect("loads")
            .expect("the group is stored");
        let signer = copy_signer(&provider, &member.signer);
        OpenMlsMember {
            provider,
            group,
            signer,
        }
    }

    fn fork_joiner(joiner: &OpenMlsJoiner) -> OpenMlsJoiner {
        let provider = joiner.provider.fork();
        let signer = copy_signer(&provider, &joiner.signer);
        OpenMlsJoiner { provider, signer }
    }

    fn commit_with_path(member: &mut OpenMlsMember) -> Vec<u8> {
        let bundle = member
            .group
            .self_update(
                &member.provider,
                &member.signer,
                LeafNodeParameters::default(),
            )
            .expect("commits");
        let (commit, _, _) = bundle.into_contents();
        member
            .group
            .merge_pending_commit(&member.provider)
            .expect("merges");
        to_bytes(&commit)
    }

    fn add(member: &mut OpenMlsMember, key_packages: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        let key_packages: Vec<KeyPackage> = key_packages
            .iter()
            .map(|bytes| {
                let MlsMessageBodyIn::KeyPackage(kp) = decode(bytes).extract() else {
                    panic!("not a KeyPackage");
                };
                kp.validate(member.provider.crypto(), ProtocolVersion::Mls10)
                    .expect("a valid KeyPackage")
            })
            .collect();
        let (commit, welcome, _) = member
            .group
            .add_members_without_update(&member.provider, &member.signer, &key_packages)
            .expect("commits the Adds");
        member
            .group
            .merge_pending_commit(&member.provider)
            .expect("merges");
        (to_bytes(&commit), to_bytes(&welcome))
    }

    fn process_commit(member: &mut OpenMlsMember, commit: &[u8]) {
        let message = decode(commit)
            .try_into_protocol_message()
            .expect("a handshake message");
        let processed = member
            .group
            .process_message(&member.provider, message)
            .expect("processes the Commit");
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            panic!("not a Commit");
        };
        member
            .group
            .merge_staged_commit(&member.provider, *staged)
            .expect("merges");
    }

    fn join(joiner: OpenMlsJoiner, welcome: &[u8]) -> OpenMlsMember {
        let MlsMessageBodyIn::Welcome(welcome) = decode(welcome).extract() else {
            panic!("not a Welcome");
        };
        let group =
            StagedWelcome::new_from_welcome(&joiner.provider, &join_config(), welcome, None)
                .expect("accepts the Welcome")
                .into_group(&joiner.provider)
                .expect("joins");
        OpenMlsMember {
            provider: joiner.provider,
            group,
            signer: joiner.signer,
        }
    }

    fn encrypt(member: &mut OpenMlsMember, data: &[u8]) -> Vec<u8> {
        let message = member
            .group
            .create_message(&member.provider, &member.signer, data)
            .expect("encrypts");
        to_bytes(&message)
    }

    fn decrypt(member: &mut OpenMlsMember, message: &[u8]) -> Vec<u8> {
        let message = decode(message)
            .try_into_protocol_message()
            .expect("a PrivateMessage");
        let processed = member
            .group
            .process_message(&member.provider, message)
            .expect("decrypts");
        let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() else {
            panic!("not an application message");
        };
        app.into_bytes()
    }

    fn ratchet_tree(member: &OpenMlsMember) -> Vec<u8> {
        member
            .group
            .export_ratchet_tree()
            .tls_serialize_detached()
            .expect("encodes the tree")
    }

    fn epoch_authenticator(member: &OpenMlsMember) -> Vec<u8> {
        member.group.epoch_authenticator().as_slice().to_vec()
    }
}
