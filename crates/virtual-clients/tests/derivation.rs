//! Emulation-epoch secrets, the PPRF and the derivation of a virtual client's keys, end to end
//! through real groups of `mls-engine`:
//!
//! * two emulator clients of one emulation group derive the same epoch secrets from
//!   `SafeExportSecret(6)`, once per epoch;
//! * a KeyPackage made from derived secrets by one emulator client is re-derived by its sibling
//!   (from the DerivationInfoExtension, and from a KeyPackageUpload's `random`), who joins a
//!   higher-level group from the Welcome sent to that KeyPackage;
//! * a Commit with path made by one emulator client as the virtual client is processed by its
//!   sibling through the H2 resolver fed with re-derived secrets; all agree;
//! * bad input: a tampered extension, a punctured input, another epoch's extension and keys
//!   that do not match are typed errors that change nothing.

use std::cell::RefCell;

use mls_engine::codec::{
    Credential, FramedContentBody, LeafNode, MlsMessage, MlsMessageBody, Proposal,
};
use mls_engine::crypto::{CipherSuite, HpkeKeyPair, SuiteProvider};
use mls_engine::extensions::ExporterError;
use mls_engine::group::{
    CommitOptions, Group, GroupConfig, GroupError, OwnLeaf, OwnLeafResolver, Services,
    SiblingCommitSecrets,
};
use mls_engine::hook::HookError;
use mls_engine::messages::{HpkeKeySource, KeyPackageParams, LeafNodeParams};
use tls_codec::VLBytes;
use virtual_clients::derivation::{
    derivation_info_of, derive_for_receiver, derive_for_sender, derive_from_parts, DerivationError,
    SenderDerivation,
};
use virtual_clients::epoch::{EmulationEpochSecrets, EpochError, VC_COMPONENT_ID};
use virtual_clients::pprf::PprfError;
use virtual_clients::wire::{DerivationInfoExtension, WireError, DERIVATION_INFO_EXTENSION_TYPE};

mod common;
use common::{lifetime, suite, svc, NOW};

/// An emulation group of two emulator clients (leaves 0 and 1), both at epoch 1.
fn emulation_group(cipher_suite: CipherSuite) -> (Group, Group) {
    let cs = suite(cipher_suite);
    let mut a = Group::create(
        &svc(),
        GroupConfig::default(),
        b"emulation".to_vec(),
        cipher_suite,
        OwnLeaf {
            params: LeafNodeParams::new(cipher_suite, Credential::basic(b"alice-1".to_vec())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: cs.signature_generate_key_pair().unwrap(),
        },
        lifetime(),
        vec![],
    )
    .unwrap();
    let key = cs.signature_generate_key_pair().unwrap();
    let kp = KeyPackageParams::new(
        cipher_suite,
        Credential::basic(b"alice-2".to_vec()),
        lifetime(),
    )
    .build_fresh(cs, &key)
    .unwrap();
    let out = a
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
            NOW,
        )
        .unwrap();
    a.merge_pending_commit().unwrap();
    let b = Group::join_from_welcome(
        &svc(),
        GroupConfig::default(),
        out.welcome.as_ref().unwrap(),
        &kp,
        key,
        None,
        NOW,
    )
    .unwrap();
    (a, b)
}

/// Both emulator clients' secrets of the current emulation epoch.
fn epochs(a: &mut Group, b: &mut Group) -> (EmulationEpochSecrets, EmulationEpochSecrets) {
    (
        EmulationEpochSecrets::from_group(a, &svc()).unwrap(),
        EmulationEpochSecrets::from_group(b, &svc()).unwrap(),
    )
}

/// The virtual client's leaf parameters in a higher-level group of `cipher_suite`.
fn vc_params(cipher_suite: CipherSuite) -> LeafNodeParams {
    LeafNodeParams::new(cipher_suite, Credential::basic(b"alice".to_vec()))
}

#[test]
fn emulation_epoch_secrets_agree_and_are_consumed() {
    for cipher_suite in CipherSuite::SUPPORTED {
        let (mut a, mut b) = emulation_group(cipher_suite);
        // The same as the pure constructor on SafeExportSecret(6) of a copy of the state.
        let mut copy = Group::from_bytes(&a.to_bytes().unwrap()).unwrap();
        let exported = copy.safe_export_secret(&svc(), 6).unwrap();
        let pure = EmulationEpochSecrets::from_emulator_epoch_secret(suite(cipher_suite), exported)
            .unwrap();
        let (ea, eb) = epochs(&mut a, &mut b);
        assert_eq!(ea, pure);
        assert_eq!(ea, eb);
        assert_eq!(ea.epoch_id().len(), suite(cipher_suite).params().hash_len());
        assert_eq!(ea.cipher_suite(), cipher_suite);
        // The safe export of VC_COMPONENT_ID was consumed: a second derivation fails.
        assert!(a.safe_export_consumed(VC_COMPONENT_ID));
        assert_eq!(
            EmulationEpochSecrets::from_group(&mut a, &svc()),
            Err(EpochError::Group(GroupError::SafeExport(
                ExporterError::AlreadyConsumed(6)
            )))
        );
        // The next epoch has other secrets.
        let out = a.commit(&svc(), CommitOptions::new(), NOW).unwrap();
        a.merge_pending_commit().unwrap();
        b.process(&svc(), &out.commit, NOW).unwrap();
        let (na, nb) = epochs(&mut a, &mut b);
        assert_eq!(na, nb);
        assert_ne!(na.epoch_id(), ea.epoch_id());
        assert_ne!(na.epoch_encryption_key(), ea.epoch_encryption_key());
    }
}

/// A KeyPackage of the virtual client by emulator client 0; its sibling re-derives it and
/// joins a higher-level group from the Welcome to it.
#[test]
fn sibling_rederives_a_key_package_and_joins_from_its_welcome() {
    for (emu_suite, higher_suite) in [
        (CipherSuite(1), CipherSuite(1)),
        (CipherSuite(1), CipherSuite(2)),
        (CipherSuite(2), CipherSuite(3)),
    ] {
        let emu = suite(emu_suite);
        let higher = suite(higher_suite);
        let (mut a, mut b) = emulation_group(emu_suite);
        let (mut ea, mut eb) = epochs(&mut a, &mut b);

        let sent = derive_for_sender(&mut ea, emu, 0).unwrap();
        assert!(ea.pprf().is_punctured(sent.pprf_leaf));
        let secrets = sent.leaf_secrets(emu, higher).unwrap();
        let kp = secrets
            .key_package(
                higher,
                KeyPackageParams::new(
                    higher_suite,
                    Credential::basic(b"alice".to_vec()),
                    lifetime(),
                )
                .with_leaf(vc_params(higher_suite)),
            )
            .unwrap();
        let leaf = &kp.key_package.leaf_node;
        assert!(leaf
            .capabilities
            .extensions
            .contains(&DERIVATION_INFO_EXTENSION_TYPE));
        let ext = derivation_info_of(leaf).unwrap().unwrap();
        assert_eq!(ext, sent.derivation_info);
        assert_eq!(ext.epoch_id.as_slice(), eb.epoch_id());

        // The sibling: from the extension, and from a KeyPackageUpload's (leaf_index, random).
        let got = derive_for_receiver(&eb, emu, &ext).unwrap();
        assert_eq!(got.epoch_info.leaf_index, 0);
        let parts = derive_from_parts(&eb, emu, 0, sent.epoch_info.random.as_slice()).unwrap();
        assert_eq!(parts, got);
        let keys = got.key_secrets.key_pairs(emu, higher).unwrap();
        assert!(keys.matches_leaf(leaf, true));
        let bundle = keys
            .key_package_bundle(higher, kp.key_package.clone())
            .unwrap();
        assert_eq!(bundle, kp);
        got.puncture(&mut eb, emu).unwrap();
        assert!(matches!(
            derive_for_receiver(&eb, emu, &ext),
            Err(DerivationError::Pprf(PprfError::Punctured { .. }))
        ));

        // Carol adds the KeyPackage; emulator client 1 joins from the Welcome.
        let cs = higher;
        let mut carol = Group::create(
            &svc(),
            GroupConfig::default(),
            b"higher".to_vec(),
            higher_suite,
            OwnLeaf {
                params: LeafNodeParams::new(higher_suite, Credential::basic(b"carol".to_vec())),
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
                CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
                NOW,
            )
            .unwrap();
        carol.merge_pending_commit().unwrap();
        let joined = Group::join_from_welcome(
            &svc(),
            GroupConfig::default(),
            out.welcome.as_ref().unwrap(),
            &bundle,
            keys.signature_key.clone(),
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(joined.epoch_authenticator(), carol.epoch_authenticator());
    }
}

/// Answers the engine's H2 questions by re-deriving from the new leaf's extension.
struct Sibling<'a> {
    epoch: &'a EmulationEpochSecrets,
    emu: &'a dyn SuiteProvider,
    higher: &'a dyn SuiteProvider,
    seen: RefCell<Vec<u32>>,
}

impl Sibling<'_> {
    fn keys(&self, new_leaf: &LeafNode) -> Option<virtual_clients::derivation::VirtualClientKeys> {
        let ext = derivation_info_of(new_leaf).ok()??;
        let got = derive_for_receiver(self.epoch, self.emu, &ext).ok()?;
        self.seen.borrow_mut().push(got.pprf_leaf);
        got.key_secrets.key_pairs(self.emu, self.higher).ok()
    }
}

impl OwnLeafResolver for Sibling<'_> {
    fn commit_secrets(&self, new_leaf: &LeafNode) -> Result<SiblingCommitSecrets, HookError> {
        let keys = self.keys(new_leaf).ok_or(HookError::Unsupported)?;
        let changed = keys.matches_leaf(new_leaf, true);
        Ok(keys.sibling_commit_secrets(changed))
    }

    fn update_leaf_key(&self, new_leaf: &LeafNode) -> Result<HpkeKeyPair, HookError> {
        self.keys(new_leaf)
            .map(|k| k.encryption_key)
            .ok_or(HookError::Unsupported)
    }
}

fn commit_leaf(message: &MlsMessage) -> &LeafNode {
    match &message.body {
        MlsMessageBody::PublicMessage(m) => match &m.content.body {
            FramedContentBody::Commit(c) => &c.path.as_ref().unwrap().leaf_node,
            _ => panic!("not a commit"),
        },
        _ => panic!("not a PublicMessage"),
    }
}

/// The virtual client's first state in a higher-level group with Carol: created by emulator
/// client 0 from derived secrets, then copied to emulator client 1 (state transfer).
fn higher_group(
    emu: &dyn SuiteProvider,
    higher_suite: CipherSuite,
    ea: &mut EmulationEpochSecrets,
) -> (Group, Group, Group, SenderDerivation) {
    let higher = suite(higher_suite);
    let first = derive_for_sender(ea, emu, 0).unwrap();
    let secrets = first.leaf_secrets(emu, higher).unwrap();
    let mut vc = Group::create(
        &svc(),
        GroupConfig::default(),
        b"higher".to_vec(),
        higher_suite,
        secrets.own_leaf(vc_params(higher_suite)),
        lifetime(),
        vec![],
    )
    .unwrap();
    let key = higher.signature_generate_key_pair().unwrap();
    let kp = KeyPackageParams::new(
        higher_suite,
        Credential::basic(b"carol".to_vec()),
        lifetime(),
    )
    .build_fresh(higher, &key)
    .unwrap();
    let out = vc
        .commit(
            &svc(),
            CommitOptions::new().proposal(Proposal::add(kp.key_package.clone())),
            NOW,
        )
        .unwrap();
    vc.merge_pending_commit().unwrap();
    let carol = Group::join_from_welcome(
        &svc(),
        GroupConfig::default(),
        out.welcome.as_ref().unwrap(),
        &kp,
        key,
        None,
        NOW,
    )
    .unwrap();
    let sibling = Group::from_bytes(&vc.to_bytes().unwrap()).unwrap();
    (vc, sibling, carol, first)
}

#[test]
fn sibling_processes_a_commit_made_from_derived_secrets() {
    for cipher_suite in CipherSuite::SUPPORTED {
        let emu = suite(cipher_suite);
        let higher = suite(cipher_suite);
        let (mut a, mut b) = emulation_group(cipher_suite);
        let (mut ea, mut eb) = epochs(&mut a, &mut b);
        let (mut vc0, mut vc1, mut carol, first) = higher_group(emu, cipher_suite, &mut ea);
        // The creation's derivation is known to the sibling too (punctured there as well).
        derive_for_receiver(&eb, emu, &first.derivation_info)
            .unwrap()
            .puncture(&mut eb, emu)
            .unwrap();

        // Emulator client 0 commits with a path as the virtual client.
        let sent = derive_for_sender(&mut ea, emu, 0).unwrap();
        let secrets = sent.leaf_secrets(emu, higher).unwrap();
        let out = vc0
            .commit(
                &svc(),
                secrets.commit_options(vc_params(cipher_suite), CommitOptions::new()),
                NOW,
            )
            .unwrap();
        vc0.merge_pending_commit().unwrap();
        assert_eq!(
            derivation_info_of(commit_leaf(&out.commit)).unwrap(),
            Some(sent.derivation_info.clone())
        );
        carol.process(&svc(), &out.commit, NOW).unwrap();

        // Emulator client 1 processes it as its own, through re-derived secrets.
        let resolver = Sibling {
            epoch: &eb,
            emu,
            higher,
            seen: RefCell::new(vec![]),
        };
        let services = Services {
            own_leaf: Some(&resolver),
            ..svc()
        };
        vc1.process(&services, &out.commit, NOW).unwrap();
        assert_eq!(resolver.seen.borrow().as_slice(), &[sent.pprf_leaf]);
        assert_eq!(vc1.epoch_authenticator(), vc0.epoch_authenticator());
        assert_eq!(carol.epoch_authenticator(), vc0.epoch_authenticator());
        assert_eq!(vc1.to_bytes().unwrap().len(), vc0.to_bytes().unwrap().len());
        // The sibling now punctures the leaf it used.
        let got = derive_for_receiver(&eb, emu, &sent.derivation_info).unwrap();
        got.puncture(&mut eb, emu).unwrap();
        assert_eq!(ea.pprf(), eb.pprf());
    }
}

#[test]
fn bad_derivation_info_changes_nothing() {
    let cipher_suite = CipherSuite(1);
    let emu = suite(cipher_suite);
    let (mut a, mut b) = emulation_group(cipher_suite);
    let (mut ea, eb) = epochs(&mut a, &mut b);
    let sent = derive_for_sender(&mut ea, emu, 0).unwrap();
    let before = eb.to_bytes().unwrap();

    // Every flipped bit of the ciphertext is refused.
    let ct = sent.derivation_info.ciphertext.as_slice().to_vec();
    for i in 0..ct.len() {
        let mut bad = ct.clone();
        bad[i] ^= 0x80;
        let ext = DerivationInfoExtension {
            epoch_id: sent.derivation_info.epoch_id.clone(),
            ciphertext: VLBytes::new(bad),
        };
        assert_eq!(
            derive_for_receiver(&eb, emu, &ext),
            Err(DerivationError::Wire(WireError::DecryptionFailed))
        );
    }
    // A truncated ciphertext.
    let ext = DerivationInfoExtension {
        epoch_id: sent.derivation_info.epoch_id.clone(),
        ciphertext: VLBytes::new(ct[..10].to_vec()),
    };
    assert!(matches!(
        derive_for_receiver(&eb, emu, &ext),
        Err(DerivationError::Wire(WireError::CiphertextTooShort { .. }))
    ));
    // Another epoch's extension given to this epoch.
    a.commit(&svc(), CommitOptions::new(), NOW).unwrap();
    a.merge_pending_commit().unwrap();
    let mut next = EmulationEpochSecrets::from_group(&mut a, &svc()).unwrap();
    let other = derive_for_sender(&mut next, emu, 0).unwrap();
    assert_eq!(
        derive_for_receiver(&eb, emu, &other.derivation_info),
        Err(DerivationError::Wire(WireError::EpochIdMismatch))
    );
    // A suite that is not the emulation group's.
    assert!(matches!(
        derive_for_receiver(&eb, suite(CipherSuite(2)), &sent.derivation_info),
        Err(DerivationError::SuiteMismatch { .. })
    ));
    // Keys that do not match a KeyPackage.
    let got = derive_for_receiver(&eb, emu, &sent.derivation_info).unwrap();
    let keys = got.key_secrets.key_pairs(emu, emu).unwrap();
    let stranger =
        KeyPackageParams::new(cipher_suite, Credential::basic(b"x".to_vec()), lifetime())
            .build_fresh(emu, &emu.signature_generate_key_pair().unwrap())
            .unwrap();
    assert!(matches!(
        keys.key_package_bundle(emu, stranger.key_package),
        Err(DerivationError::KeyMismatch(_))
    ));
    assert_eq!(eb.to_bytes().unwrap(), before);
}

#[test]
fn every_derivation_is_fresh() {
    let cipher_suite = CipherSuite(1);
    let emu = suite(cipher_suite);
    let (mut a, mut b) = emulation_group(cipher_suite);
    let (mut ea, mut eb) = epochs(&mut a, &mut b);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..50 {
        // Both emulator clients derive, interleaved; no two operations share keys.
        let (epoch, leaf_index) = if i % 2 == 0 {
            (&mut ea, 0)
        } else {
            (&mut eb, 1)
        };
        let d = derive_for_sender(epoch, emu, leaf_index).unwrap();
        assert!(seen.insert(d.key_secrets.encryption_key_secret.as_bytes().to_vec()));
        assert!(seen.insert(d.key_secrets.signature_key_secret.as_bytes().to_vec()));
    }
    // The frontier stays small: at most 32 nodes per derivation.
    assert!(ea.pprf().frontier_len() <= 25 * 32);
    let restored = EmulationEpochSecrets::from_bytes(&ea.to_bytes().unwrap()).unwrap();
    assert_eq!(restored, ea);
}
