//! Real MLS messages for the HTTP tests, made with mls-engine `Group`s: a device's MLS
//! signature key is also the key it signs its requests with.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use mls_engine::codec::{Credential, Lifetime, MlsMessage, MlsMessageBody, Proposal};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SignatureKeyPair};
use mls_engine::group::{CommitOptions, Group, GroupConfig, OwnLeaf, Services};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};
use vmls_client::vmls_protocol::auth::ED25519;
use vmls_client::vmls_protocol::{ClientId, CreateGroup, GroupId, Request, SendRequest};
use vmls_client::Signer;

static PROVIDER: RustCrypto = RustCrypto;
const SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;

pub fn svc() -> Services<'static> {
    Services::new(&PROVIDER)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn lifetime() -> Lifetime {
    let now = now();
    Lifetime {
        not_before: now - 3600,
        not_after: now + 3600 * 24 * 30,
    }
}

/// A device: its name (the identity of its basic credential) and MLS signature key.
pub struct Member {
    pub name: String,
    pub keys: SignatureKeyPair,
}

impl Member {
    pub fn new(name: &str) -> Self {
        let keys = PROVIDER
            .suite(SUITE)
            .unwrap()
            .signature_generate_key_pair()
            .unwrap();
        Self {
            name: name.to_string(),
            keys,
        }
    }

    pub fn id(&self) -> ClientId {
        ClientId::new(&self.name)
    }

    /// The request signer with the same key.
    pub fn signer(&self) -> Signer {
        Signer::new(self.id(), ED25519, self.keys.private_key.clone()).unwrap()
    }

    fn credential(&self) -> Credential {
        Credential::basic(self.name.as_bytes().to_vec())
    }

    pub fn key_package(&self) -> KeyPackageBundle {
        KeyPackageParams::new(SUITE, self.credential(), lifetime())
            .build_fresh(PROVIDER.suite(SUITE).unwrap(), &self.keys)
            .unwrap()
    }

    /// A new group of this member alone, and the `create_group` request for it.
    pub fn create_group(&self, group_id: &[u8]) -> (Group, Request) {
        let own = OwnLeaf {
            params: LeafNodeParams::new(SUITE, self.credential()),
            encryption_key: HpkeKeySource::Generate,
            signature_key: self.keys.clone(),
        };
        let group = Group::create(
            &svc(),
            GroupConfig::default(),
            group_id.to_vec(),
            SUITE,
            own,
            lifetime(),
            vec![],
        )
        .unwrap();
        let info = group.group_info(&svc(), true, true).unwrap();
        let request = Request::CreateGroup(CreateGroup {
            group_id: GroupId::new(group_id),
            as_virtual_client: None,
            group_info: message_bytes(MlsMessageBody::GroupInfo(info)).into(),
            ratchet_tree: None,
        });
        (group, request)
    }
}

pub fn message_bytes(body: MlsMessageBody) -> Vec<u8> {
    MlsMessage::new(body).to_bytes().unwrap()
}

/// A Commit of `group` adding `new` (with the Welcome and the new epoch's GroupInfo); the
/// committer's pending commit is left to merge (or drop) by the caller.
pub fn add_commit(group: &mut Group, new: &[&Member]) -> SendRequest {
    let epoch = group.epoch();
    let options = CommitOptions {
        proposals: new
            .iter()
            .map(|m| {
                Proposal::Add(mls_engine::codec::Add {
                    key_package: m.key_package().key_package,
                })
            })
            .collect(),
        group_info: true,
        ..CommitOptions::default()
    };
    let out = group.commit(&svc(), options, now()).unwrap();
    let commit = out.commit.to_bytes().unwrap();
    let welcome = message_bytes(MlsMessageBody::Welcome(out.welcome.unwrap()));
    let info = message_bytes(MlsMessageBody::GroupInfo(out.group_info.unwrap()));
    SendRequest::commit(epoch, commit)
        .with_welcome(new.iter().map(|m| m.id()).collect(), welcome)
        .with_group_info(info)
}

/// An application message of `len` bytes from `group`'s member.
pub fn application(group: &mut Group, len: usize) -> SendRequest {
    let data = vec![0x61; len];
    let message = group.encrypt_application(&svc(), &data, b"").unwrap();
    SendRequest::application(message.to_bytes().unwrap())
}

/// A Commit of `group` with an UpdatePath and no proposals, with the new epoch's GroupInfo.
pub fn update_commit(group: &mut Group) -> SendRequest {
    let epoch = group.epoch();
    let options = CommitOptions {
        force_path: true,
        group_info: true,
        ..CommitOptions::default()
    };
    let out = group.commit(&svc(), options, now()).unwrap();
    let info = message_bytes(MlsMessageBody::GroupInfo(out.group_info.unwrap()));
    SendRequest::commit(epoch, out.commit.to_bytes().unwrap()).with_group_info(info)
}
