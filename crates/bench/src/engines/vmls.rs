//! This project's engine, `mls-engine`, through its `Group` API.

use mls_engine::codec::{Credential, Lifetime, MlsMessage, MlsMessageBody, Proposal};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SignatureKeyPair};
use mls_engine::group::{CommitOptions, Group, GroupConfig, OwnLeaf, ProcessedMessage, Services};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};

use crate::{now, Engine};

static PROVIDER: RustCrypto = RustCrypto;

fn services() -> Services<'static> {
    Services::new(&PROVIDER)
}

fn lifetime() -> Lifetime {
    let now = now();
    Lifetime {
        not_before: now - 3600,
        not_after: now + 90 * 24 * 3600,
    }
}

fn signature_key(suite: CipherSuite) -> SignatureKeyPair {
    PROVIDER
        .suite(suite)
        .expect("an implemented suite")
        .signature_generate_key_pair()
        .expect("signature key")
}

fn encode(message: MlsMessageBody) -> Vec<u8> {
    MlsMessage::new(message).to_bytes().expect("encodes")
}

/// `mls-engine` on cipher suite `S` with the default [`GroupConfig`] (PublicMessage
/// handshakes, no padding, `ratchet_tree` in Welcomes).
#[derive(Debug)]
pub struct VmlsOn<const S: u16>;

/// `mls-engine` on suite 1, the suite all three engines are compared on.
pub type Vmls = VmlsOn<0x0001>;

/// `mls-engine` on the post-quantum suite `MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519`
/// (X-Wing, 0x004F); neither OpenMLS without its draft feature nor mls-rs has it.
pub type VmlsPq = VmlsOn<0x004F>;

/// A client with a KeyPackage, not yet in a group.
#[derive(Clone, Debug)]
pub struct VmlsJoiner {
    key_package: KeyPackageBundle,
    signature_key: SignatureKeyPair,
}

impl<const S: u16> Engine for VmlsOn<S> {
    const NAME: &'static str = match S {
        0x0001 => "vmls",
        0x004F => "vmls-pq",
        _ => "vmls-other-suite",
    };
    type Member = Group;
    type Joiner = VmlsJoiner;

    fn create(name: &str) -> Group {
        Group::create(
            &services(),
            GroupConfig::default(),
            crate::GROUP_ID.to_vec(),
            CipherSuite(S),
            OwnLeaf {
                params: LeafNodeParams::new(CipherSuite(S), Credential::basic(name.as_bytes())),
                encryption_key: HpkeKeySource::Generate,
                signature_key: signature_key(CipherSuite(S)),
            },
            lifetime(),
            vec![],
        )
        .expect("creates the group")
    }

    fn new_joiner(name: &str) -> (VmlsJoiner, Vec<u8>) {
        let suite = CipherSuite(S);
        let signature_key = signature_key(suite);
        let key_package =
            KeyPackageParams::new(suite, Credential::basic(name.as_bytes()), lifetime())
                .build_fresh(
                    PROVIDER.suite(suite).expect("an implemented suite"),
                    &signature_key,
                )
                .expect("KeyPackage");
        let bytes = encode(MlsMessageBody::KeyPackage(key_package.key_package.clone()));
        (
            VmlsJoiner {
                key_package,
                signature_key,
            },
            bytes,
        )
    }

    fn fork(member: &Group) -> Group {
        member.clone()
    }

    fn fork_joiner(joiner: &VmlsJoiner) -> VmlsJoiner {
        joiner.clone()
    }

    fn commit_with_path(member: &mut Group) -> Vec<u8> {
        let out = member
            .commit(&services(), CommitOptions::new().with_path(), now())
            .expect("commits");
        member.merge_pending_commit().expect("merges");
        out.commit.to_bytes().expect("encodes")
    }

    fn add(member: &mut Group, key_packages: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        let mut options = CommitOptions::new();
        for bytes in key_packages {
            let message = MlsMessage::decode(bytes).expect("decodes the KeyPackage");
            let MlsMessageBody::KeyPackage(key_package) = message.body else {
                panic!("not a KeyPackage");
            };
            options = options.proposal(Proposal::add(key_package));
        }
        let out = member
            .commit(&services(), options, now())
            .expect("commits the Adds");
        member.merge_pending_commit().expect("merges");
        let welcome = out.welcome.expect("a Welcome");
        (
            out.commit.to_bytes().expect("encodes"),
            encode(MlsMessageBody::Welcome(welcome)),
        )
    }

    fn process_commit(member: &mut Group, commit: &[u8]) {
        match member
            .process_bytes(&services(), commit, now())
            .expect("processes the Commit")
        {
            ProcessedMessage::Commit { .. } => {}
            other => panic!("not a Commit: {other:?}"),
        }
    }

    fn join(joiner: VmlsJoiner, welcome: &[u8]) -> Group {
        let message = MlsMessage::decode(welcome).expect("decodes the Welcome");
        let MlsMessageBody::Welcome(welcome) = message.body else {
            panic!("not a Welcome");
        };
        Group::join_from_welcome(
            &services(),
            GroupConfig::default(),
            &welcome,
            &joiner.key_package,
            joiner.signature_key,
            None,
            now(),
        )
        .expect("joins")
    }

    fn encrypt(member: &mut Group, data: &[u8]) -> Vec<u8> {
        member
            .encrypt_application(&services(), data, &[])
            .expect("encrypts")
            .to_bytes()
            .expect("encodes")
    }

    fn decrypt(member: &mut Group, message: &[u8]) -> Vec<u8> {
        match member
            .process_bytes(&services(), message, now())
            .expect("decrypts")
        {
            ProcessedMessage::Application { data, .. } => data,
            other => panic!("not an application message: {other:?}"),
        }
    }

    fn ratchet_tree(member: &Group) -> Vec<u8> {
        member.ratchet_tree().encode().expect("encodes the tree")
    }

    fn epoch_authenticator(member: &Group) -> Vec<u8> {
        member.epoch_authenticator().to_vec()
    }
}
