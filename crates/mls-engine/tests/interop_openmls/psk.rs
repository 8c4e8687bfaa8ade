//! (c) PreSharedKey proposals across implementations (RFC 9420 §8.4, §12.1.4): external PSKs
//! proposed by one side and committed by the other (by reference and by value), a PSK in a
//! commit that adds members (the joiners need the PSK for the Welcome), and a resumption PSK
//! of the group's own earlier epoch.

use mls_engine::codec::{PreSharedKeyID, Proposal, ResumptionPSKUsage};
use mls_engine::group::CommitOptions;
use openmls::schedule::psk::ResumptionPskUsage;
use openmls::schedule::PreSharedKeyId;

use crate::groups::{mixed_group, Handshakes, Joiner};
use crate::harness::{OpenMlsClient, SUITES};
use crate::roster::{Member, Roster};

const PSK_ID: &[u8] = b"interop external psk";
const PSK: &[u8] = b"a secret both sides were given out of band";

/// Every member (and later joiner) stores the external PSK.
fn store_psk(member: &mut Member) {
    match member {
        Member::OpenMls { client, .. } => store_openmls_psk(client),
        Member::Vmls(client) => client.store_external_psk(PSK_ID, PSK),
    }
}

fn store_openmls_psk(client: &OpenMlsClient) {
    PreSharedKeyId::external(PSK_ID.to_vec(), vec![0; 32])
        .store(&client.provider, PSK)
        .expect("OpenMLS stores the PSK");
}

/// A fresh nonce of `KDF.Nh` octets (32 in suites 1-3).
fn nonce(tag: u8) -> Vec<u8> {
    vec![tag; 32]
}

/// `proposer` proposes the external PSK; `committer` commits it by reference.
fn psk_round(
    roster: &mut Roster,
    step: &str,
    proposer: &str,
    committer: &str,
    tag: u8,
    epoch: u64,
) {
    let message = match roster.get(proposer) {
        Member::OpenMls { client, group } => {
            let (message, _) = group
                .propose_pre_shared_key(
                    &client.provider,
                    &client.signer,
                    PreSharedKeyId::external(PSK_ID.to_vec(), nonce(tag)),
                )
                .expect("OpenMLS proposes the PSK");
            crate::harness::to_bytes(&message)
        }
        Member::Vmls(client) => {
            client.propose_psk(PreSharedKeyID::external(PSK_ID.to_vec(), nonce(tag)))
        }
    };
    roster.deliver(step, proposer, &message, &[]);
    let (commit, welcome) = match roster.get(committer) {
        Member::OpenMls { client, group } => client.commit_pending(group),
        Member::Vmls(client) => client.commit_pending(),
    };
    assert!(welcome.is_none());
    roster.deliver(step, committer, &commit, &[]);
    roster.check(step, epoch);
}

#[test]
fn c_pre_shared_keys_both_ways() {
    for suite in SUITES {
        let step = |s: &str| format!("suite {suite}: {s}");
        let mut roster = mixed_group(suite, suite != 3, Handshakes::Public);
        for (_, member) in roster.members.iter_mut() {
            store_psk(member);
        }
        let before = roster.get("o1").view().exporter;
        psk_round(
            &mut roster,
            &step("o2 proposes the PSK, v1 commits"),
            "o2",
            "v1",
            1,
            2,
        );
        psk_round(
            &mut roster,
            &step("v2 proposes the PSK, o1 commits"),
            "v2",
            "o1",
            2,
            3,
        );
        assert_ne!(roster.get("o1").view().exporter, before);

        // v1 commits the PSK by value together with Adds; the joiners hold the PSK.
        let mut v9 = Joiner::vmls("v9", suite, Handshakes::Public);
        let o9 = Joiner::openmls("o9", suite);
        if let Joiner::Vmls(client, _) = &mut v9 {
            client.store_external_psk(PSK_ID, PSK);
        }
        if let Joiner::OpenMls(client, _) = &o9 {
            store_openmls_psk(client);
        }
        let kps = vec![v9.key_package_bytes(), o9.key_package_bytes()];
        let (commit, welcome) = {
            let client = roster.get("v1").as_vmls_client();
            let mut options = CommitOptions::new().proposal(Proposal::pre_shared_key(
                PreSharedKeyID::external(PSK_ID.to_vec(), nonce(3)),
            ));
            for kp in &kps {
                options = options.proposal(Proposal::add(crate::vmls::decode_key_package(kp)));
            }
            client.commit(options)
        };
        roster.deliver(&step("v1 commits PSK + Adds by value"), "v1", &commit, &[]);
        let welcome = welcome.expect("a Welcome");
        roster.push("v9", v9.join(&welcome, None, Handshakes::Public));
        roster.push("o9", o9.join(&welcome, None, Handshakes::Public));
        roster.check(&step("v1 committed PSK + Adds"), 4);

        // OpenMLS proposes a resumption PSK of epoch 4 (usage application, this group);
        // the engine commits it.
        let message = match roster.get("o2") {
            Member::OpenMls { client, group } => {
                let psk = PreSharedKeyId::resumption(
                    ResumptionPskUsage::Application,
                    group.group_id().clone(),
                    4.into(),
                    nonce(4),
                );
                let (message, _) = group
                    .propose_pre_shared_key(&client.provider, &client.signer, psk)
                    .expect("OpenMLS proposes the resumption PSK");
                crate::harness::to_bytes(&message)
            }
            Member::Vmls(_) => unreachable!(),
        };
        let step_r = step("o2 proposes a resumption PSK of epoch 4, v2 commits");
        roster.deliver(&step_r, "o2", &message, &[]);
        let (commit, _) = roster.get("v2").as_vmls_client().commit_pending();
        roster.deliver(&step_r, "v2", &commit, &[]);
        roster.check(&step_r, 5);

        // The engine proposes a resumption PSK of epoch 5; OpenMLS commits it.
        let group_id = roster
            .get("v9")
            .as_vmls_client()
            .group()
            .group_id()
            .to_vec();
        let message = roster
            .get("v9")
            .as_vmls_client()
            .propose_psk(PreSharedKeyID::resumption(
                ResumptionPSKUsage::Application,
                group_id,
                5,
                nonce(5),
            ));
        let step_r = step("v9 proposes a resumption PSK of epoch 5, o9 commits");
        roster.deliver(&step_r, "v9", &message, &[]);
        let (commit, _) = match roster.get("o9") {
            Member::OpenMls { client, group } => client.commit_pending(group),
            Member::Vmls(_) => unreachable!(),
        };
        roster.deliver(&step_r, "o9", &commit, &[]);
        roster.check(&step_r, 6);
        roster.exchange_application_messages(&step("after the PSKs"));
    }
}
