//! (e) External joins (RFC 9420 §12.4.3.2) across implementations: an mls-engine client joins
//! a group run by OpenMLS members from OpenMLS's GroupInfo (with `external_pub`), and an
//! OpenMLS client joins a group run by engine members from the engine's GroupInfo; each with
//! the tree in the GroupInfo and given separately; and the resync case (a member rejoins
//! with its own signature key, its old leaf removed in the same commit) both ways. After
//! every step the members agree (see [`crate::roster::Roster::check`]).

use crate::groups::{add, openmls_creates, self_update, vmls_creates, Handshakes, Joiner};
use crate::harness::{export_group_info, export_ratchet_tree, OpenMlsClient, SUITES};
use crate::roster::{Member, Roster};
use crate::vmls::{wire_format, VmlsClient};
use mls_engine::codec::WireFormat;

/// The GroupInfo `MLSMessage` (with `external_pub`) and the encoded tree of member `name`.
fn group_info_of(roster: &mut Roster, name: &str, with_tree: bool) -> (Vec<u8>, Vec<u8>) {
    match roster.get(name) {
        Member::OpenMls { client, group } => {
            let info = if with_tree {
                export_group_info(client, group)
            } else {
                let message = group
                    .export_group_info(
                        openmls_traits::OpenMlsProvider::crypto(&client.provider),
                        &client.signer,
                        false,
                    )
                    .expect("OpenMLS exports its GroupInfo");
                crate::harness::to_bytes(&message)
            };
            (info, export_ratchet_tree(group))
        }
        Member::Vmls(client) => (client.group_info(with_tree), client.ratchet_tree()),
    }
}

/// An engine client joins by external commit with the GroupInfo of `from`; the commit is
/// a PublicMessage that every member processes.
#[allow(clippy::too_many_arguments)]
pub fn vmls_joins(
    roster: &mut Roster,
    step: &str,
    from: &str,
    name: &str,
    suite: u16,
    with_tree: bool,
    epoch: u64,
    hs: Handshakes,
) {
    let (info, tree) = group_info_of(roster, from, with_tree);
    let mut client = VmlsClient::new(name.as_bytes(), suite).with_handshakes(hs.engine());
    let commit =
        client.join_by_external_commit(&info, (!with_tree).then_some(tree.as_slice()), None);
    assert_eq!(
        wire_format(&commit),
        WireFormat::MLS_PUBLIC_MESSAGE,
        "{step}: framing"
    );
    roster.deliver(step, name, &commit, &[]);
    roster.push(name, Member::vmls(client));
    roster.check(step, epoch);
}

/// An OpenMLS client joins by external commit with the GroupInfo of `from`.
#[allow(clippy::too_many_arguments)]
pub fn openmls_joins(
    roster: &mut Roster,
    step: &str,
    from: &str,
    name: &str,
    suite: u16,
    with_tree: bool,
    epoch: u64,
    hs: Handshakes,
) {
    let (info, tree) = group_info_of(roster, from, with_tree);
    let client = OpenMlsClient::new(name.as_bytes(), suite);
    let (group, commit) =
        client.join_by_external_commit(&info, (!with_tree).then_some(tree.as_slice()), hs.policy());
    assert_eq!(
        wire_format(&commit),
        WireFormat::MLS_PUBLIC_MESSAGE,
        "{step}: framing"
    );
    roster.deliver(step, name, &commit, &[]);
    roster.push(name, Member::openmls(client, group));
    roster.check(step, epoch);
}

/// (e) An engine client joins by external commit a group of OpenMLS members (GroupInfo
/// from OpenMLS, with and without the tree inside), then the group goes on: an OpenMLS
/// update, the new member's own update, application messages.
#[test]
fn e_vmls_joins_openmls_group_by_external_commit() {
    let hs = Handshakes::Public;
    for suite in SUITES {
        for with_tree in [true, false] {
            let step = |s: &str| format!("suite {suite}, tree in GroupInfo {with_tree}: {s}");
            let mut roster = openmls_creates("alice", suite, hs, true);
            add(
                &mut roster,
                &step("alice adds bob and carol (OpenMLS)"),
                "alice",
                vec![
                    ("bob", Joiner::openmls("bob", suite)),
                    ("carol", Joiner::openmls("carol", suite)),
                ],
                true,
                hs,
                1,
            );
            vmls_joins(
                &mut roster,
                &step("vera joins externally"),
                "bob",
                "vera",
                suite,
                with_tree,
                2,
                hs,
            );
            self_update(&mut roster, &step("carol updates"), "carol", hs, 3);
            self_update(&mut roster, &step("vera updates"), "vera", hs, 4);
            vmls_joins(
                &mut roster,
                &step("vic joins externally (GroupInfo from vera)"),
                "vera",
                "vic",
                suite,
                with_tree,
                5,
                hs,
            );
            roster.exchange_application_messages(&step("after the external joins"));
        }
    }
}

/// (e) An OpenMLS client joins by external commit a group of engine members (GroupInfo
/// from the engine, with and without the tree inside).
#[test]
fn e_openmls_joins_vmls_group_by_external_commit() {
    let hs = Handshakes::Public;
    for suite in SUITES {
        for with_tree in [true, false] {
            let step = |s: &str| format!("suite {suite}, tree in GroupInfo {with_tree}: {s}");
            let mut roster = vmls_creates("vera", suite, hs);
            add(
                &mut roster,
                &step("vera adds vic and val (vmls)"),
                "vera",
                vec![
                    ("vic", Joiner::vmls("vic", suite, hs)),
                    ("val", Joiner::vmls("val", suite, hs)),
                ],
                true,
                hs,
                1,
            );
            openmls_joins(
                &mut roster,
                &step("alice joins externally"),
                "vic",
                "alice",
                suite,
                with_tree,
                2,
                hs,
            );
            self_update(&mut roster, &step("val updates"), "val", hs, 3);
            self_update(&mut roster, &step("alice updates"), "alice", hs, 4);
            openmls_joins(
                &mut roster,
                &step("bob joins externally (GroupInfo from alice)"),
                "alice",
                "bob",
                suite,
                with_tree,
                5,
                hs,
            );
            roster.exchange_application_messages(&step("after the external joins"));
        }
    }
}

/// (e) Resync: an engine member that lost its state rejoins by external commit with the same
/// signature key, removing its old leaf in the same commit; the OpenMLS members process it.
#[test]
fn e_vmls_resync_into_mixed_group() {
    let hs = Handshakes::Public;
    for suite in SUITES {
        let step = |s: &str| format!("suite {suite}: {s}");
        let mut roster = openmls_creates("alice", suite, hs, true);
        add(
            &mut roster,
            &step("alice adds bob (OpenMLS) and vera (vmls)"),
            "alice",
            vec![
                ("bob", Joiner::openmls("bob", suite)),
                ("vera", Joiner::vmls("vera", suite, hs)),
            ],
            true,
            hs,
            1,
        );
        let old_leaf = roster.leaf("vera");
        let (info, _) = group_info_of(&mut roster, "alice", true);
        // Vera's state is lost; she keeps her identity and signature key.
        let Member::Vmls(old) = roster.get("vera") else {
            unreachable!()
        };
        let mut client = VmlsClient::new(b"vera", suite);
        client.signature_key = old.signature_key.clone();
        roster.members.retain(|(n, _)| n != "vera");
        let commit = client.join_by_external_commit(&info, None, Some(old_leaf));
        roster.deliver(&step("vera resyncs"), "vera", &commit, &[]);
        roster.push("vera", Member::vmls(client));
        roster.check(&step("vera resynced"), 2);
        roster.exchange_application_messages(&step("after the resync"));
    }
}

/// (e) Resync: an OpenMLS member rejoins by external commit with the same signature key
/// (OpenMLS then removes its old leaf in the commit); the engine members process it.
#[test]
fn e_openmls_resync_into_mixed_group() {
    let hs = Handshakes::Public;
    for suite in SUITES {
        let step = |s: &str| format!("suite {suite}: {s}");
        let mut roster = vmls_creates("vera", suite, hs);
        add(
            &mut roster,
            &step("vera adds vic (vmls) and alice (OpenMLS)"),
            "vera",
            vec![
                ("vic", Joiner::vmls("vic", suite, hs)),
                ("alice", Joiner::openmls("alice", suite)),
            ],
            true,
            hs,
            1,
        );
        let (info, _) = group_info_of(&mut roster, "vic", true);
        let index = roster
            .members
            .iter()
            .position(|(n, _)| n == "alice")
            .expect("alice is a member");
        let (_, old) = roster.members.remove(index);
        let Member::OpenMls { client, .. } = old else {
            unreachable!()
        };
        let (group, commit) = client.join_by_external_commit(&info, None, hs.policy());
        roster.deliver(&step("alice resyncs"), "alice", &commit, &[]);
        roster.push("alice", Member::openmls(*client, group));
        roster.check(&step("alice resynced"), 2);
        roster.exchange_application_messages(&step("after the resync"));
    }
}

/// (e) External joins into a group whose members send handshakes as PrivateMessages: the
/// external commit itself is a PublicMessage; the joiners then commit as PrivateMessages.
#[test]
fn e_external_joins_with_private_handshakes() {
    let hs = Handshakes::Private;
    for suite in SUITES {
        let step = |s: &str| format!("suite {suite}: {s}");
        let mut roster = crate::groups::mixed_group(suite, suite != 1, hs);
        vmls_joins(
            &mut roster,
            &step("vx joins from o1's GroupInfo"),
            "o1",
            "vx",
            suite,
            true,
            2,
            hs,
        );
        openmls_joins(
            &mut roster,
            &step("ox joins from v1's GroupInfo"),
            "v1",
            "ox",
            suite,
            false,
            3,
            hs,
        );
        self_update(&mut roster, &step("vx updates"), "vx", hs, 4);
        self_update(&mut roster, &step("ox updates"), "ox", hs, 5);
        roster.exchange_application_messages(&step("after the external joins"));
    }
}

/// (e) External commits while proposals are pending: an OpenMLS member's and an engine
/// member's Update proposals are pending when an external joiner's commit arrives; the
/// external commit cannot commit them, every member moves on without them, and new
/// proposals then work as usual.
#[test]
fn e_external_join_over_pending_proposals() {
    use crate::groups::{propose_and_commit, Proposed};
    let hs = Handshakes::Public;
    for suite in SUITES {
        let step = |s: &str| format!("suite {suite}: {s}");
        let mut roster = crate::groups::mixed_group(suite, suite != 2, hs);
        for proposer in ["o2", "v2"] {
            let message = match roster.get(proposer) {
                Member::OpenMls { client, group } => client.propose_self_update(group),
                Member::Vmls(client) => client.propose_update(),
            };
            roster.deliver(
                &step(&format!("{proposer} proposes Update")),
                proposer,
                &message,
                &[],
            );
        }
        vmls_joins(
            &mut roster,
            &step("vx joins from o3's GroupInfo"),
            "o3",
            "vx",
            suite,
            true,
            2,
            hs,
        );
        for (name, member) in roster.members.iter_mut() {
            if let Member::Vmls(client) = member {
                assert!(
                    client.group().pending_proposals().is_empty(),
                    "{}",
                    step(&format!("{name} dropped the old epoch's proposals"))
                );
            }
        }
        propose_and_commit(
            &mut roster,
            &step("o2 proposes Update again, vx commits"),
            "o2",
            Proposed::Update,
            "vx",
            hs,
            3,
        );
        propose_and_commit(
            &mut roster,
            &step("v2 proposes Update again, o1 commits"),
            "v2",
            Proposed::Update,
            "o1",
            hs,
            4,
        );
        roster.exchange_application_messages(&step("at the end"));
    }
}
