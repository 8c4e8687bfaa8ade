//! (c) GroupContextExtensions and external proposals (RFC 9420 §12.1.7, §12.1.8) across
//! implementations: each side commits a GroupContextExtensions proposal setting
//! `external_senders`; external senders signing with OpenMLS and with the engine send Remove
//! proposals that the other side commits by reference; `new_member_proposal` Adds made by
//! each side are committed by the other, and the joiner joins from the Welcome.

use mls_engine::codec::{
    Credential, ExtensionPayload as _, ExternalSender, ExternalSendersExtension,
    GroupContextExtensions, Proposal, SignaturePublicKey,
};
use mls_engine::crypto::SignatureKeyPair;
use mls_engine::group::{external_proposal, new_member_proposal, CommitOptions};
use openmls::prelude::{
    BasicCredential, Extension as OmlsExtension, Extensions, ExternalProposal,
    ExternalSender as OmlsExternalSender, JoinProposal, LeafNodeIndex, SenderExtensionIndex,
};
use openmls_basic_credential::SignatureKeyPair as OmlsSignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

use crate::engine::suite;
use crate::groups::{mixed_group, Handshakes, Joiner};
use crate::harness::{to_bytes, SUITES};
use crate::roster::{Member, Roster};
use crate::vmls::{decode_key_package, encode, services, VmlsClient};

/// `committer` commits every pending proposal by reference; everyone processes it (the
/// members in `removed` see themselves removed); a `joiner` joins from the Welcome.
fn commit_pending(
    roster: &mut Roster,
    step: &str,
    committer: &str,
    removed: &[&str],
    joiner: Option<(&str, Joiner)>,
    epoch: u64,
) {
    let (commit, welcome) = match roster.get(committer) {
        Member::OpenMls { client, group } => client.commit_pending(group),
        Member::Vmls(client) => client.commit_pending(),
    };
    roster.deliver(step, committer, &commit, removed);
    assert_eq!(welcome.is_some(), joiner.is_some(), "{step}: Welcome");
    if let (Some((name, joiner)), Some(welcome)) = (joiner, welcome) {
        let member = joiner.join(&welcome, None, Handshakes::Public);
        roster.push(name, member);
    }
    roster.check(step, epoch);
}

#[test]
fn c_external_senders_and_external_proposals_both_ways() {
    for suite_id in SUITES {
        let step = |s: &str| format!("suite {suite_id}: {s}");
        let mut roster = mixed_group(suite_id, suite_id != 2, Handshakes::Public);

        // Two external senders: one signing with OpenMLS, one with the engine.
        let ciphersuite = crate::harness::ciphersuite(suite_id);
        let ds_openmls = OmlsSignatureKeyPair::new(ciphersuite.signature_algorithm())
            .expect("OpenMLS generates a signature key");
        let ds_engine: SignatureKeyPair = suite(suite_id)
            .signature_generate_key_pair()
            .expect("the engine generates a signature key");
        let senders = ExternalSendersExtension {
            external_senders: vec![
                ExternalSender {
                    signature_key: SignaturePublicKey::from(ds_openmls.to_public_vec()),
                    credential: Credential::basic(b"ds-openmls".to_vec()),
                },
                ExternalSender {
                    signature_key: SignaturePublicKey::from(ds_engine.public_key.clone()),
                    credential: Credential::basic(b"ds-engine".to_vec()),
                },
            ],
        };
        let gce = Proposal::GroupContextExtensions(GroupContextExtensions {
            extensions: vec![senders.to_extension().expect("encodes")],
        });
        let commit = roster
            .get("v1")
            .as_vmls_client()
            .commit(CommitOptions::new().proposal(gce))
            .0;
        roster.deliver(&step("v1 sets external_senders"), "v1", &commit, &[]);
        roster.check(&step("v1 set external_senders"), 2);

        // OpenMLS-signed external Remove of o3, committed by the engine.
        let (group_id, epoch) = match roster.get("o1") {
            Member::OpenMls { group, .. } => (group.group_id().clone(), group.epoch()),
            Member::Vmls(_) => unreachable!(),
        };
        let o3 = roster.leaf("o3");
        let proposal = ExternalProposal::new_remove::<OpenMlsRustCrypto>(
            LeafNodeIndex::new(o3),
            group_id,
            epoch,
            &ds_openmls,
            SenderExtensionIndex::new(0),
        )
        .expect("OpenMLS signs the external proposal");
        roster.deliver(
            &step("ds-openmls proposes removing o3"),
            "ds",
            &to_bytes(&proposal),
            &[],
        );
        commit_pending(
            &mut roster,
            &step("v2 commits the external Remove"),
            "v2",
            &["o3"],
            None,
            3,
        );

        // Engine-signed external Remove of v3, committed by OpenMLS.
        let context = roster
            .get("v1")
            .as_vmls_client()
            .group()
            .group_context()
            .clone();
        let v3 = roster.leaf("v3");
        let proposal = external_proposal(
            &services(),
            &context,
            1,
            Proposal::remove(v3),
            &ds_engine,
            &[],
        )
        .expect("the engine signs the external proposal");
        roster.deliver(
            &step("ds-engine proposes removing v3"),
            "ds",
            &encode(&proposal),
            &[],
        );
        commit_pending(
            &mut roster,
            &step("o2 commits the external Remove"),
            "o2",
            &["v3"],
            None,
            4,
        );

        // new_member_proposal by the engine, committed by OpenMLS.
        let mut v9 = VmlsClient::new(b"v9", suite_id);
        let kp = v9.key_package();
        let context = roster
            .get("v2")
            .as_vmls_client()
            .group()
            .group_context()
            .clone();
        let proposal = new_member_proposal(
            &services(),
            &context,
            decode_key_package(&kp),
            &v9.signature_key,
        )
        .expect("the engine signs the join proposal");
        roster.deliver(&step("v9 asks to join"), "v9", &encode(&proposal), &[]);
        commit_pending(
            &mut roster,
            &step("o1 commits v9's Add"),
            "o1",
            &[],
            Some(("v9", Joiner::Vmls(Box::new(v9), kp))),
            5,
        );

        // new_member_proposal by OpenMLS, committed by the engine.
        let Joiner::OpenMls(o9, o9_kp) = Joiner::openmls("o9", suite_id) else {
            unreachable!()
        };
        let (group_id, epoch) = match roster.get("o1") {
            Member::OpenMls { group, .. } => (group.group_id().clone(), group.epoch()),
            Member::Vmls(_) => unreachable!(),
        };
        let proposal = JoinProposal::new::<
            <OpenMlsRustCrypto as openmls_traits::OpenMlsProvider>::StorageProvider,
        >((*o9_kp).clone(), group_id, epoch, &o9.signer)
        .expect("OpenMLS signs the join proposal");
        roster.deliver(&step("o9 asks to join"), "o9", &to_bytes(&proposal), &[]);
        commit_pending(
            &mut roster,
            &step("v9 commits o9's Add"),
            "v9",
            &[],
            Some(("o9", Joiner::OpenMls(o9, o9_kp))),
            6,
        );

        // OpenMLS replaces external_senders (only the engine-signing sender, now index 0).
        let commit = match roster.get("o2") {
            Member::OpenMls { client, group } => {
                let extensions = Extensions::single(OmlsExtension::ExternalSenders(vec![
                    OmlsExternalSender::new(
                        ds_engine.public_key.clone().into(),
                        BasicCredential::new(b"ds-engine".to_vec()).into(),
                    ),
                ]))
                .expect("one extension");
                let (commit, welcome, _) = group
                    .update_group_context_extensions(&client.provider, extensions, &client.signer)
                    .expect("OpenMLS commits the GroupContextExtensions");
                assert!(welcome.is_none());
                group
                    .merge_pending_commit(&client.provider)
                    .expect("OpenMLS merges its commit");
                to_bytes(&commit)
            }
            Member::Vmls(_) => unreachable!(),
        };
        roster.deliver(&step("o2 replaces external_senders"), "o2", &commit, &[]);
        roster.check(&step("o2 replaced external_senders"), 7);
        let context = roster
            .get("v9")
            .as_vmls_client()
            .group()
            .group_context()
            .clone();
        // The OpenMLS-signing sender is gone: its proposals must now be refused.
        let (group_id, epoch) = match roster.get("o1") {
            Member::OpenMls { group, .. } => (group.group_id().clone(), group.epoch()),
            Member::Vmls(_) => unreachable!(),
        };
        let o1 = roster.leaf("o1");
        let stale_sender = ExternalProposal::new_remove::<OpenMlsRustCrypto>(
            LeafNodeIndex::new(o1),
            group_id,
            epoch,
            &ds_openmls,
            SenderExtensionIndex::new(0),
        )
        .expect("OpenMLS signs the external proposal");
        let refusal = roster
            .get("v9")
            .as_vmls_client()
            .try_process(&to_bytes(&stale_sender));
        assert!(
            refusal.is_err(),
            "{}: {refusal:?}",
            step("removed external sender")
        );
        let o2 = roster.leaf("o2");
        let proposal = external_proposal(
            &services(),
            &context,
            0,
            Proposal::remove(o2),
            &ds_engine,
            &[],
        )
        .expect("the engine signs the external proposal");
        roster.deliver(
            &step("ds-engine proposes removing o2"),
            "ds",
            &encode(&proposal),
            &[],
        );
        commit_pending(
            &mut roster,
            &step("o9 commits the external Remove"),
            "o9",
            &["o2"],
            None,
            8,
        );
        roster.exchange_application_messages(&step("at the end"));
    }
}

/// (c) GroupContextExtensions proposals by reference: the engine proposes new
/// `external_senders` and OpenMLS commits the proposal; OpenMLS proposes others and the
/// engine commits. Each time every member ends up with the proposer's extension list.
#[test]
fn c_group_context_extensions_by_reference_both_ways() {
    for suite_id in SUITES {
        let step = |s: &str| format!("suite {suite_id}: {s}");
        let mut roster = mixed_group(suite_id, suite_id == 1, Handshakes::Public);
        let key = suite(suite_id)
            .signature_generate_key_pair()
            .expect("a signature key");
        let senders = ExternalSendersExtension {
            external_senders: vec![ExternalSender {
                signature_key: SignaturePublicKey::from(key.public_key.clone()),
                credential: Credential::basic(b"engine-proposed".to_vec()),
            }],
        };
        let services = services();
        let (message, _) = roster
            .get("v2")
            .as_vmls_client()
            .group
            .as_mut()
            .expect("in a group")
            .propose_group_context_extensions(
                &services,
                vec![senders.to_extension().expect("encodes")],
            )
            .expect("the engine proposes the extensions");
        roster.deliver(
            &step("v2 proposes external_senders"),
            "v2",
            &encode(&message),
            &[],
        );
        commit_pending(
            &mut roster,
            &step("o2 commits v2's GroupContextExtensions"),
            "o2",
            &[],
            None,
            2,
        );
        if let Member::OpenMls { group, .. } = roster.get("o3") {
            let ours = group
                .extensions()
                .external_senders()
                .expect("OpenMLS has external_senders");
            assert_eq!(ours.len(), 1);
            assert_eq!(
                ours[0],
                OmlsExternalSender::new(
                    key.public_key.clone().into(),
                    BasicCredential::new(b"engine-proposed".to_vec()).into(),
                ),
                "{}",
                step("OpenMLS has the engine's sender")
            );
        }

        // OpenMLS proposes two senders; the engine commits.
        let key2 = suite(suite_id)
            .signature_generate_key_pair()
            .expect("a signature key");
        let message = match roster.get("o1") {
            Member::OpenMls { client, group } => {
                let extensions = Extensions::single(OmlsExtension::ExternalSenders(vec![
                    OmlsExternalSender::new(
                        key.public_key.clone().into(),
                        BasicCredential::new(b"first".to_vec()).into(),
                    ),
                    OmlsExternalSender::new(
                        key2.public_key.clone().into(),
                        BasicCredential::new(b"second".to_vec()).into(),
                    ),
                ]))
                .expect("one extension");
                let (message, _) = group
                    .propose_group_context_extensions(&client.provider, extensions, &client.signer)
                    .expect("OpenMLS proposes the extensions");
                to_bytes(&message)
            }
            Member::Vmls(_) => unreachable!(),
        };
        roster.deliver(
            &step("o1 proposes two external senders"),
            "o1",
            &message,
            &[],
        );
        commit_pending(
            &mut roster,
            &step("v3 commits o1's GroupContextExtensions"),
            "v3",
            &[],
            None,
            3,
        );
        let context = roster
            .get("v1")
            .as_vmls_client()
            .group()
            .group_context()
            .clone();
        let found = ExternalSendersExtension::find_in(&context.extensions)
            .expect("decodes")
            .expect("the engine has external_senders");
        assert_eq!(found.external_senders.len(), 2, "{}", step("two senders"));
        assert_eq!(
            found.external_senders[1].signature_key.as_slice(),
            key2.public_key.as_slice()
        );
        roster.exchange_application_messages(&step("at the end"));
    }
}
