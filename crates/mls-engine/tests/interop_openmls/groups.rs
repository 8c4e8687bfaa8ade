//! Group-level interop (issue 3): mixed groups of OpenMLS and mls-engine members, in suites
//! 1, 2 and 3, with every handshake made by one side processed by the other, and after every
//! step the agreement check of [`Roster::check`] (epoch, exporter output, epoch
//! authenticator, tree hash, confirmed transcript hash, member list).
//!
//! * (a) OpenMLS creates the group and adds mls-engine clients (Welcome with and without the
//!   `ratchet_tree` extension; without, the tree is passed separately).
//! * (b) mls-engine creates the group and adds OpenMLS clients (same two variants).
//! * (c) each side commits Adds, Removes and full-path updates that the other processes, and
//!   commits the other side's Update, Remove and Add proposals by reference.
//! * (d) application messages both ways.
//! * Handshakes as PrivateMessages on both sides (OpenMLS `MIXED_CIPHERTEXT` policy with
//!   padding, engine `HandshakeWireFormat::Private` with padding).
//! * Also: commits mixing proposals by reference and by value, self-removal proposals,
//!   concurrent commits (one wins, the losers drop theirs), OpenMLS signature-key rotation,
//!   GREASE and private-use capabilities in leaves, a 22-member group, late and out-of-order
//!   application messages, and (f) refused messages (tampered, replayed, wrong group) that
//!   leave every member's state unchanged.
//!
//! The engine members' state is serialised and restored at every agreement check.

use mls_engine::group::{CommitOptions, GroupError};
use openmls::prelude::{CredentialWithKey, KeyPackage, LeafNodeParameters, NewSignerBundle};
use openmls_basic_credential::SignatureKeyPair;

use crate::harness::{to_bytes, OpenMlsClient, SUITES};
use crate::roster::{Member, Roster};
pub use crate::scenario::{
    add, commits_both_ways, mixed_group, openmls_creates, propose_and_commit, remove, self_update,
    vmls_creates, Handshakes, Joiner, Proposed,
};
use crate::vmls::VmlsClient;

/// (a) OpenMLS creates the group and adds engine clients (and an OpenMLS one), first with the
/// `ratchet_tree` extension in the Welcome, then without (tree passed separately); later an
/// OpenMLS member adds another engine client, which existing engine members process.
#[test]
fn a_openmls_creates_and_adds_vmls_clients() {
    for suite in SUITES {
        for tree_in_welcome in [true, false] {
            let step = |s: &str| format!("suite {suite}, tree in welcome {tree_in_welcome}: {s}");
            let hs = Handshakes::Public;
            let mut roster = openmls_creates("alice", suite, hs, tree_in_welcome);
            add(
                &mut roster,
                &step("alice adds bob (vmls) and carol (OpenMLS)"),
                "alice",
                vec![
                    ("bob", Joiner::vmls("bob", suite, hs)),
                    ("carol", Joiner::openmls("carol", suite)),
                ],
                tree_in_welcome,
                hs,
                1,
            );
            add(
                &mut roster,
                &step("carol adds dave (vmls)"),
                "carol",
                vec![("dave", Joiner::vmls("dave", suite, hs))],
                tree_in_welcome,
                hs,
                2,
            );
            roster.exchange_application_messages(&step("after the adds"));
        }
    }
}

/// (b) The engine creates the group and adds OpenMLS clients (and an engine one), with and
/// without the `ratchet_tree` extension; later an engine member adds another OpenMLS client.
#[test]
fn b_vmls_creates_and_adds_openmls_clients() {
    for suite in SUITES {
        for tree_in_welcome in [true, false] {
            let step = |s: &str| format!("suite {suite}, tree in welcome {tree_in_welcome}: {s}");
            let hs = Handshakes::Public;
            let mut roster = vmls_creates("bob", suite, hs);
            add(
                &mut roster,
                &step("bob adds alice, carol (OpenMLS) and dave (vmls)"),
                "bob",
                vec![
                    ("alice", Joiner::openmls("alice", suite)),
                    ("carol", Joiner::openmls("carol", suite)),
                    ("dave", Joiner::vmls("dave", suite, hs)),
                ],
                tree_in_welcome,
                hs,
                1,
            );
            add(
                &mut roster,
                &step("dave adds erin (OpenMLS)"),
                "dave",
                vec![("erin", Joiner::openmls("erin", suite))],
                tree_in_welcome,
                hs,
                2,
            );
            // bob adds frank (OpenMLS) in a commit with an UpdatePath: frank's GroupSecrets
            // carry a path_secret.
            let frank = Joiner::openmls("frank", suite);
            let (commit, welcome, tree) = {
                let bob = roster.get("bob").as_vmls_client();
                let mut options = CommitOptions::new()
                    .proposal(mls_engine::codec::Proposal::add(
                        crate::vmls::decode_key_package(&frank.key_package_bytes()),
                    ))
                    .with_path();
                options.ratchet_tree_in_welcome = Some(tree_in_welcome);
                let (commit, welcome) = bob.commit(options);
                (commit, welcome.expect("a Welcome"), bob.ratchet_tree())
            };
            roster.deliver(&step("bob adds frank with a path"), "bob", &commit, &[]);
            let member = frank.join(&welcome, (!tree_in_welcome).then_some(tree.as_slice()), hs);
            roster.push("frank", member);
            roster.check(&step("bob added frank with a path"), 3);
            roster.exchange_application_messages(&step("after the adds"));
        }
    }
}

/// (c), (d), (f) with PublicMessage handshakes, the group created by OpenMLS.
#[test]
fn c_commits_both_ways_openmls_creator() {
    for suite in SUITES {
        commits_both_ways(suite, true, Handshakes::Public);
    }
}

/// (c), (d), (f) with PublicMessage handshakes, the group created by mls-engine.
#[test]
fn c_commits_both_ways_vmls_creator() {
    for suite in SUITES {
        commits_both_ways(suite, false, Handshakes::Public);
    }
}

/// (c), (d), (f) with every handshake message a PrivateMessage, on both sides.
#[test]
fn c_commits_both_ways_private_handshakes() {
    for suite in SUITES {
        commits_both_ways(suite, suite != 2, Handshakes::Private);
    }
}

/// (d) Application messages both ways, several per member, across epochs.
#[test]
fn d_application_messages_both_ways() {
    for suite in SUITES {
        let hs = Handshakes::Public;
        let mut roster = mixed_group(suite, suite % 2 == 1, hs);
        for round in 0..3 {
            roster.exchange_application_messages(&format!("suite {suite}, round {round}"));
        }
        self_update(
            &mut roster,
            &format!("suite {suite}: o2 updates"),
            "o2",
            hs,
            2,
        );
        roster.exchange_application_messages(&format!("suite {suite}, after o2's update"));
        self_update(
            &mut roster,
            &format!("suite {suite}: v2 updates"),
            "v2",
            hs,
            3,
        );
        roster.exchange_application_messages(&format!("suite {suite}, after v2's update"));
    }
}

/// Flips the last octet of an encoded message (a membership tag, signature or AEAD tag).
fn tampered(message: &[u8]) -> Vec<u8> {
    let mut bytes = message.to_vec();
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x01;
    }
    bytes
}

/// Every member refuses `message`; the engine members' serialised state is unchanged.
fn all_refuse(roster: &mut Roster, step: &str, sender: &str, message: &[u8]) {
    for (name, member) in roster.members.iter_mut() {
        if name == sender {
            continue;
        }
        let before = match member {
            Member::Vmls(client) => Some(client.group().to_bytes().expect("state encodes")),
            Member::OpenMls { .. } => None,
        };
        let result = member.receive(message);
        assert!(result.is_err(), "{step}: {name} accepted {result:?}");
        if let (Member::Vmls(client), Some(before)) = (member, before) {
            assert_eq!(
                client.group().to_bytes().expect("state encodes"),
                before,
                "{step}: {name}'s state changed on a refused message"
            );
        }
    }
}

/// (f) Messages the members must refuse, from either side: a commit with a broken
/// membership tag, a replayed commit (stale epoch), a PrivateMessage with a broken AEAD tag, a
/// message of another group. Each is refused by every member, the engine members' state
/// stays byte-identical, and the group then goes on in agreement.
#[test]
fn f_refused_messages_leave_members_in_agreement() {
    for suite in SUITES {
        let hs = Handshakes::Public;
        let step = |s: &str| format!("suite {suite}: {s}");
        let mut roster = mixed_group(suite, true, hs);
        for (epoch, committer) in [(2, "o2"), (3, "v2")] {
            let commit = match roster.get(committer) {
                Member::OpenMls { client, group } => client.self_update(group),
                Member::Vmls(client) => client.self_update(),
            };
            all_refuse(
                &mut roster,
                &step(&format!("{committer}'s commit, tampered")),
                committer,
                &tampered(&commit),
            );
            roster.deliver(
                &step(&format!("{committer}'s commit")),
                committer,
                &commit,
                &[],
            );
            roster.check(&step(&format!("{committer}'s commit")), epoch);
            all_refuse(
                &mut roster,
                &step(&format!("{committer}'s commit, replayed")),
                committer,
                &commit,
            );
            let refusal = roster.get("v1").as_vmls_client().try_process(&commit);
            assert!(
                matches!(refusal, Err(GroupError::StaleEpoch { .. })),
                "{}: {refusal:?}",
                step("replay to v1")
            );
        }
        for sender in ["o1", "v1"] {
            let data = b"tampered application data";
            let message = match roster.get(sender) {
                Member::OpenMls { client, group } => client.send_application(group, data),
                Member::Vmls(client) => client.send_application(data),
            };
            all_refuse(
                &mut roster,
                &step(&format!("{sender}'s application message, tampered")),
                sender,
                &tampered(&message),
            );
            roster.deliver_application(&step("the genuine message"), sender, &message, data);
        }
        // A message of another group.
        let mut other = vmls_creates("stranger", suite, hs);
        let foreign = match other.get("stranger") {
            Member::Vmls(client) => client.send_application(b"wrong group"),
            Member::OpenMls { .. } => unreachable!(),
        };
        all_refuse(
            &mut roster,
            &step("another group's message"),
            "stranger",
            &foreign,
        );
        let refusal = roster.get("v2").as_vmls_client().try_process(&foreign);
        assert_eq!(
            refusal,
            Err(GroupError::WrongGroup),
            "{}",
            step("wrong group")
        );
        roster.check(&step("after the refusals"), 3);
        roster.exchange_application_messages(&step("after the refusals"));
    }
}

/// Member `proposer` sends `proposal`; everyone stores it. Returns nothing: the proposals
/// wait for a commit.
fn send_proposal(
    roster: &mut Roster,
    step: &str,
    proposer: &str,
    proposal: Proposed<'_>,
    hs: Handshakes,
) {
    let target = match proposal {
        Proposed::Remove(r) => Some(roster.leaf(r)),
        Proposed::Update => None,
    };
    let message = match (roster.get(proposer), target) {
        (Member::OpenMls { client, group }, None) => client.propose_self_update(group),
        (Member::OpenMls { client, group }, Some(leaf)) => client.propose_remove(group, leaf),
        (Member::Vmls(client), None) => client.propose_update(),
        (Member::Vmls(client), Some(leaf)) => client.propose_remove(leaf),
    };
    hs.assert_framing(step, &message);
    roster.deliver(step, proposer, &message, &[]);
}

/// `committer` commits every pending proposal by reference plus Adds of `joiners` and
/// Removes of `removed_by_value` by value (with a path if `force_path`); `removed` lists
/// every member the commit removes. Everyone processes it; the joiners join.
#[allow(clippy::too_many_arguments)]
fn commit_mixed(
    roster: &mut Roster,
    step: &str,
    committer: &str,
    joiners: Vec<(&str, Joiner)>,
    removed_by_value: &[&str],
    removed: &[&str],
    force_path: bool,
    hs: Handshakes,
    epoch: u64,
) {
    let leaves: Vec<u32> = removed_by_value.iter().map(|r| roster.leaf(r)).collect();
    let (commit, welcome) = match roster.get(committer) {
        Member::OpenMls { client, group } => {
            let kps: Vec<KeyPackage> = joiners
                .iter()
                .map(|(_, j)| j.openmls_key_package(client))
                .collect();
            client.commit_with(group, &kps, &leaves, true, force_path)
        }
        Member::Vmls(client) => {
            let kps: Vec<Vec<u8>> = joiners.iter().map(|(_, j)| j.key_package_bytes()).collect();
            client.commit_with(&kps, &leaves, force_path)
        }
    };
    hs.assert_framing(step, &commit);
    roster.deliver(step, committer, &commit, removed);
    assert_eq!(welcome.is_some(), !joiners.is_empty(), "{step}: Welcome");
    if let Some(welcome) = welcome {
        for (name, joiner) in joiners {
            let member = joiner.join(&welcome, None, hs);
            roster.push(name, member);
        }
    }
    roster.check(step, epoch);
}

/// (c) Commits mixing proposals by reference from both sides (Update, Remove, a member's
/// Remove of itself) with Adds and Removes by value, committed by each side in turn; and
/// self-removal proposals both ways.
#[test]
fn c_commits_of_mixed_proposals_both_ways() {
    for suite in SUITES {
        for hs in [Handshakes::Public, Handshakes::Private] {
            let step = |s: &str| format!("suite {suite}, {hs:?}: {s}");
            let mut roster = mixed_group(suite, suite != 3, hs);
            // Pending: o2's Update, v2's Remove of o3, v3's Remove of itself.
            send_proposal(
                &mut roster,
                &step("o2 proposes Update"),
                "o2",
                Proposed::Update,
                hs,
            );
            send_proposal(
                &mut roster,
                &step("v2 proposes removing o3"),
                "v2",
                Proposed::Remove("o3"),
                hs,
            );
            send_proposal(
                &mut roster,
                &step("v3 proposes removing itself"),
                "v3",
                Proposed::Remove("v3"),
                hs,
            );
            commit_mixed(
                &mut roster,
                &step("v1 commits them with an Add of o4 and v4, a Remove of o1"),
                "v1",
                vec![
                    ("o4", Joiner::openmls("o4", suite)),
                    ("v4", Joiner::vmls("v4", suite, hs)),
                ],
                &["o1"],
                &["o3", "v3", "o1"],
                false,
                hs,
                2,
            );
            // Pending: v2's Update, o4's Remove of v1, o2's Remove of itself.
            send_proposal(
                &mut roster,
                &step("v2 proposes Update"),
                "v2",
                Proposed::Update,
                hs,
            );
            send_proposal(
                &mut roster,
                &step("o4 proposes removing v1"),
                "o4",
                Proposed::Remove("v1"),
                hs,
            );
            send_proposal(
                &mut roster,
                &step("o2 proposes removing itself"),
                "o2",
                Proposed::Remove("o2"),
                hs,
            );
            commit_mixed(
                &mut roster,
                &step("o4 commits them with an Add of v5 and o5, a Remove of v4"),
                "o4",
                vec![
                    ("v5", Joiner::vmls("v5", suite, hs)),
                    ("o5", Joiner::openmls("o5", suite)),
                ],
                &["v4"],
                &["v1", "o2", "v4"],
                true,
                hs,
                3,
            );
            roster.exchange_application_messages(&step("after the mixed commits"));
            self_update(&mut roster, &step("v5 updates"), "v5", hs, 4);
            self_update(&mut roster, &step("o5 updates"), "o5", hs, 5);
        }
    }
}

/// (d) Application messages out of order: three messages from each side delivered to every
/// other member in reverse order (the receivers keep the skipped generations' keys).
#[test]
fn d_application_messages_out_of_order() {
    for suite in SUITES {
        let hs = Handshakes::Public;
        let mut roster = mixed_group(suite, suite != 1, hs);
        for sender in ["o2", "v2"] {
            let step = format!("suite {suite}: {sender} sends three messages");
            let messages: Vec<(Vec<u8>, Vec<u8>)> = (0..3)
                .map(|i| {
                    let data = format!("{sender} message {i}").into_bytes();
                    let message = match roster.get(sender) {
                        Member::OpenMls { client, group } => client.send_application(group, &data),
                        Member::Vmls(client) => client.send_application(&data),
                    };
                    (message, data)
                })
                .collect();
            for (message, data) in messages.iter().rev() {
                roster.deliver_application(&step, sender, message, data);
            }
        }
        roster.check(&format!("suite {suite}: after out-of-order delivery"), 1);
    }
}

/// (a)-(c) at a larger size: an engine member adds 21 members (alternating OpenMLS and
/// engine clients) in one commit, OpenMLS and engine members update and remove members in
/// the middle and at the right edge of the tree, and new members fill the blanks.
#[test]
fn c_larger_mixed_group() {
    let suite = 1;
    let hs = Handshakes::Public;
    let mut roster = vmls_creates("v0", suite, hs);
    let names: Vec<String> = (1..=21)
        .map(|i| {
            if i % 2 == 1 {
                format!("o{i}")
            } else {
                format!("v{i}")
            }
        })
        .collect();
    let joiners: Vec<(&str, Joiner)> = names
        .iter()
        .map(|n| {
            let joiner = if n.starts_with('o') {
                Joiner::openmls(n, suite)
            } else {
                Joiner::vmls(n, suite, hs)
            };
            (n.as_str(), joiner)
        })
        .collect();
    add(
        &mut roster,
        "v0 adds 21 members",
        "v0",
        joiners,
        true,
        hs,
        1,
    );
    self_update(&mut roster, "o7 updates", "o7", hs, 2);
    self_update(&mut roster, "v12 updates", "v12", hs, 3);
    remove(
        &mut roster,
        "o21 removes v4, v10, o11",
        "o21",
        &["v4", "v10", "o11"],
        hs,
        4,
    );
    remove(
        &mut roster,
        "v16 removes o19, v20, o21",
        "v16",
        &["o19", "v20", "o21"],
        hs,
        5,
    );
    self_update(&mut roster, "o15 updates", "o15", hs, 6);
    self_update(&mut roster, "v2 updates", "v2", hs, 7);
    add(
        &mut roster,
        "o1 adds v30, o31",
        "o1",
        vec![
            ("v30", Joiner::vmls("v30", suite, hs)),
            ("o31", Joiner::openmls("o31", suite)),
        ],
        true,
        hs,
        8,
    );
    self_update(&mut roster, "v30 updates", "v30", hs, 9);
    self_update(&mut roster, "o31 updates", "o31", hs, 10);
    roster.exchange_application_messages("larger group");
}

/// (d) Late application messages: messages sent in one epoch are delivered after a commit
/// moved everyone on (both sides keep two past epochs' secrets).
#[test]
fn d_application_messages_from_the_previous_epoch() {
    for suite in SUITES {
        for hs in [Handshakes::Public, Handshakes::Private] {
            let step = |s: &str| format!("suite {suite}, {hs:?}: {s}");
            let mut roster = mixed_group(suite, suite == 2, hs);
            let mut late = Vec::new();
            for sender in ["o2", "v2"] {
                let data = format!("{sender} in epoch 1").into_bytes();
                let message = match roster.get(sender) {
                    Member::OpenMls { client, group } => client.send_application(group, &data),
                    Member::Vmls(client) => client.send_application(&data),
                };
                late.push((sender, message, data));
            }
            self_update(&mut roster, &step("v1 updates"), "v1", hs, 2);
            self_update(&mut roster, &step("o1 updates"), "o1", hs, 3);
            for (sender, message, data) in &late {
                roster.deliver_application(&step("late delivery"), sender, message, data);
            }
            roster.check(&step("after the late messages"), 3);
        }
    }
}

/// (a), (b) Leaves beyond the defaults: OpenMLS KeyPackages with GREASE values in every
/// capability list and a set lifetime join an engine group; engine KeyPackages with a
/// private-use leaf extension (listed in the capabilities) join an OpenMLS group; then both
/// sides commit and later joiners validate trees holding those leaves.
#[test]
fn a_b_leaves_with_grease_and_private_extensions() {
    use mls_engine::codec::{Extension, ExtensionType};
    use openmls::prelude::{Capabilities, Lifetime as OmlsLifetime};
    for suite in SUITES {
        let hs = Handshakes::Public;
        let step = |s: &str| format!("suite {suite}: {s}");
        let grease_joiner = |name: &str| {
            let client = OpenMlsClient::new(name.as_bytes(), suite);
            let capabilities = Capabilities::builder()
                .with_grease(openmls_traits::OpenMlsProvider::rand(&client.provider))
                .build();
            let now = crate::engine::now();
            let kp = client
                .key_package_with(
                    KeyPackage::builder()
                        .leaf_node_capabilities(capabilities)
                        .key_package_lifetime(OmlsLifetime::init(now - 60, now + 3600)),
                )
                .key_package()
                .clone();
            Joiner::OpenMls(Box::new(client), Box::new(kp))
        };
        let extension_joiner = |name: &str| {
            let mut client = VmlsClient::new(name.as_bytes(), suite);
            let leaf = client
                .leaf_params()
                .supported_extension_types([ExtensionType(0xff01)])
                .extension(Extension::new(
                    ExtensionType(0xff01),
                    b"private use".to_vec(),
                ));
            let kp = client.key_package_with(leaf);
            Joiner::Vmls(Box::new(client), kp)
        };
        let mut roster = vmls_creates("v1", suite, hs);
        add(
            &mut roster,
            &step("v1 adds GREASE-capable o1, o2 and extended v2"),
            "v1",
            vec![
                ("o1", grease_joiner("o1")),
                ("o2", grease_joiner("o2")),
                ("v2", extension_joiner("v2")),
            ],
            true,
            hs,
            1,
        );
        self_update(&mut roster, &step("o1 updates"), "o1", hs, 2);
        self_update(&mut roster, &step("v2 updates"), "v2", hs, 3);
        add(
            &mut roster,
            &step("o2 adds extended v3 and GREASE-capable o3"),
            "o2",
            vec![("v3", extension_joiner("v3")), ("o3", grease_joiner("o3"))],
            true,
            hs,
            4,
        );
        self_update(&mut roster, &step("v3 updates"), "v3", hs, 5);
        roster.exchange_application_messages(&step("at the end"));
    }
}

/// A new signature key and basic credential (same identity) for an OpenMLS client.
fn new_openmls_signer(client: &OpenMlsClient) -> (SignatureKeyPair, CredentialWithKey) {
    let signer = SignatureKeyPair::new(client.ciphersuite.signature_algorithm())
        .expect("OpenMLS generates a signature key");
    signer
        .store(openmls_traits::OpenMlsProvider::storage(&client.provider))
        .expect("OpenMLS stores the signature key");
    let credential = CredentialWithKey {
        credential: client.credential.credential.clone(),
        signature_key: signer.to_public_vec().into(),
    };
    (signer, credential)
}

/// (c) OpenMLS members rotate their signature key, once in a full-path commit and once in
/// an Update proposal that the engine commits; the engine members then verify messages and
/// commits signed with the new keys.
#[test]
fn c_openmls_signature_key_rotation() {
    for suite in SUITES {
        let hs = Handshakes::Public;
        let step = |s: &str| format!("suite {suite}: {s}");
        let mut roster = mixed_group(suite, suite == 3, hs);
        // o2 rotates in a commit.
        let commit = match roster.get("o2") {
            Member::OpenMls { client, group } => {
                let (signer, credential) = new_openmls_signer(client);
                let bundle = group
                    .self_update_with_new_signer(
                        &client.provider,
                        &client.signer,
                        NewSignerBundle {
                            signer: &signer,
                            credential_with_key: credential.clone(),
                        },
                        LeafNodeParameters::default(),
                    )
                    .expect("OpenMLS commits the rotation");
                group
                    .merge_pending_commit(&client.provider)
                    .expect("OpenMLS merges its commit");
                client.signer = signer;
                client.credential = credential;
                to_bytes(bundle.commit())
            }
            Member::Vmls(_) => unreachable!(),
        };
        roster.deliver(&step("o2 rotates its key in a commit"), "o2", &commit, &[]);
        roster.check(&step("o2 rotated"), 2);
        // o3 rotates in an Update proposal; v1 commits it.
        let proposal = match roster.get("o3") {
            Member::OpenMls { client, group } => {
                let (signer, credential) = new_openmls_signer(client);
                let (message, _) = group
                    .propose_self_update_with_new_signer(
                        &client.provider,
                        &client.signer,
                        NewSignerBundle {
                            signer: &signer,
                            credential_with_key: credential.clone(),
                        },
                        LeafNodeParameters::default(),
                    )
                    .expect("OpenMLS proposes the rotation");
                client.signer = signer;
                client.credential = credential;
                to_bytes(&message)
            }
            Member::Vmls(_) => unreachable!(),
        };
        roster.deliver(&step("o3 proposes a rotation"), "o3", &proposal, &[]);
        let (commit, _) = roster.get("v1").as_vmls_client().commit_pending();
        roster.deliver(&step("v1 commits o3's rotation"), "v1", &commit, &[]);
        roster.check(&step("o3 rotated"), 3);
        roster.exchange_application_messages(&step("after the rotations"));
        self_update(
            &mut roster,
            &step("o2 updates with its new key"),
            "o2",
            hs,
            4,
        );
        self_update(
            &mut roster,
            &step("o3 updates with its new key"),
            "o3",
            hs,
            5,
        );
    }
}

/// (c) Concurrent commits: members of both sides create a commit in the same epoch; the
/// delivery service accepts one. The losers (an engine member with a pending commit, an
/// OpenMLS member with a pending commit) drop theirs and process the winner's. The winner is
/// OpenMLS in the first round and the engine in the second.
#[test]
fn c_concurrent_commits_one_wins() {
    for suite in SUITES {
        let hs = Handshakes::Public;
        let step = |s: &str| format!("suite {suite}: {s}");
        let mut roster = mixed_group(suite, suite != 2, hs);
        for (round, winner) in [(2, "o2"), (3, "v2")] {
            // Losers: v1 and o1 each create a commit and keep it pending.
            let services = crate::vmls::services();
            let v1 = roster.get("v1").as_vmls_client();
            let lost = v1
                .group
                .as_mut()
                .expect("in a group")
                .commit(
                    &services,
                    CommitOptions::new().with_path(),
                    crate::engine::now(),
                )
                .expect("the engine creates its commit");
            assert!(v1.group().has_pending_commit());
            match roster.get("o1") {
                Member::OpenMls { client, group } => {
                    let _ = group
                        .self_update(
                            &client.provider,
                            &client.signer,
                            LeafNodeParameters::default(),
                        )
                        .expect("OpenMLS creates its commit");
                    assert!(group.pending_commit().is_some());
                }
                Member::Vmls(_) => unreachable!(),
            }
            // The winner's commit.
            let commit = match roster.get(winner) {
                Member::OpenMls { client, group } => client.self_update(group),
                Member::Vmls(client) => client.self_update(),
            };
            // OpenMLS needs its pending commit cleared before processing another; the engine
            // processes the winner's commit over its pending one.
            if let Member::OpenMls { client, group } = roster.get("o1") {
                group
                    .clear_pending_commit(openmls_traits::OpenMlsProvider::storage(
                        &client.provider,
                    ))
                    .expect("OpenMLS clears its pending commit");
            }
            roster.deliver(
                &step(&format!("{winner}'s commit wins")),
                winner,
                &commit,
                &[],
            );
            let v1 = roster.get("v1").as_vmls_client();
            assert!(
                !v1.group().has_pending_commit(),
                "{}",
                step("v1's lost commit is dropped")
            );
            // The lost commit, delivered late, is refused by everyone.
            let lost = crate::vmls::encode(&lost.commit);
            let refusal = roster.get("o2").receive(&lost);
            assert!(
                refusal.is_err(),
                "{}: {refusal:?}",
                step("late lost commit")
            );
            let refusal = roster.get("v3").receive(&lost);
            assert!(
                refusal.is_err(),
                "{}: {refusal:?}",
                step("late lost commit")
            );
            roster.check(&step(&format!("after {winner}'s commit")), round);
        }
        roster.exchange_application_messages(&step("after the concurrent commits"));
    }
}

/// (d) Application messages with `authenticated_data`, both ways: each receiver sees the
/// sender's data and authenticated data.
#[test]
fn d_application_messages_with_authenticated_data() {
    use openmls::prelude::tls_codec::Deserialize as _;
    use openmls::prelude::{MlsMessageIn, ProcessedMessageContent};
    for suite in SUITES {
        let mut roster = mixed_group(suite, true, Handshakes::Public);
        let aad = b"authenticated, not encrypted".to_vec();
        // OpenMLS sends; the engine reads.
        let message = match roster.get("o1") {
            Member::OpenMls { client, group } => {
                group.set_aad(aad.clone());
                client.send_application(group, b"from o1")
            }
            Member::Vmls(_) => unreachable!(),
        };
        let processed = roster
            .get("v1")
            .as_vmls_client()
            .try_process(&message)
            .expect("the engine reads it");
        assert_eq!(
            processed,
            mls_engine::group::ProcessedMessage::Application {
                sender: mls_engine::tree::LeafIndex(roster.leaf("o1")),
                data: b"from o1".to_vec(),
                authenticated_data: aad.clone(),
            },
            "suite {suite}: the engine reads OpenMLS's authenticated data"
        );
        // The engine sends; OpenMLS reads.
        let services = crate::vmls::services();
        let message = roster
            .get("v2")
            .as_vmls_client()
            .group
            .as_mut()
            .expect("in a group")
            .encrypt_application(&services, b"from v2", &aad)
            .expect("the engine encrypts");
        let bytes = crate::vmls::encode(&message);
        let v2_leaf = roster.leaf("v2");
        if let Member::OpenMls { client, group } = roster.get("o2") {
            let message = MlsMessageIn::tls_deserialize_exact(bytes.as_slice())
                .expect("decodes")
                .try_into_protocol_message()
                .expect("a protocol message");
            let processed = group
                .process_message(&client.provider, message)
                .expect("OpenMLS reads it");
            assert_eq!(
                processed.aad(),
                aad.as_slice(),
                "suite {suite}: OpenMLS reads the aad"
            );
            assert_eq!(
                processed.sender(),
                &openmls::prelude::Sender::Member(openmls::prelude::LeafNodeIndex::new(v2_leaf))
            );
            let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() else {
                panic!("suite {suite}: not an application message");
            };
            assert_eq!(app.into_bytes(), b"from v2");
        }
    }
}
