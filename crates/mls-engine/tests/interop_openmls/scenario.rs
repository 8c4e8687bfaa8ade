//! The steps of a mixed-group interop scenario, for any cipher suite both sides implement:
//! create a group on either side, add OpenMLS and engine joiners, full-path updates, Removes,
//! proposals committed by reference, and [`commits_both_ways`], the whole sequence. Each step
//! ends with the agreement check of [`Roster::check`]. Shared by [`crate::groups`] and the
//! post-quantum interop workspace `interop/openmls-pq`.

use mls_engine::codec::WireFormat;
use mls_engine::group::{GroupError, HandshakeWireFormat};
use openmls::prelude::{
    KeyPackage, MlsMessageOut, WireFormatPolicy, MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY,
    MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};

use crate::harness::{export_ratchet_tree, to_bytes, OpenMlsClient};
use crate::roster::{Member, Roster};
use crate::vmls::{wire_format, VmlsClient};

/// How the members of a test frame their handshake messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshakes {
    /// PublicMessage (OpenMLS `MIXED_PLAINTEXT`, engine `Public`).
    Public,
    /// PrivateMessage (OpenMLS `MIXED_CIPHERTEXT`, engine `Private`).
    Private,
}

impl Handshakes {
    /// The OpenMLS wire-format policy.
    pub fn policy(self) -> WireFormatPolicy {
        match self {
            Handshakes::Public => MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
            Handshakes::Private => MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY,
        }
    }

    /// The engine's handshake wire format.
    pub fn engine(self) -> HandshakeWireFormat {
        match self {
            Handshakes::Public => HandshakeWireFormat::Public,
            Handshakes::Private => HandshakeWireFormat::Private,
        }
    }

    /// The wire format every handshake message must have.
    pub fn wire_format(self) -> WireFormat {
        match self {
            Handshakes::Public => WireFormat::MLS_PUBLIC_MESSAGE,
            Handshakes::Private => WireFormat::MLS_PRIVATE_MESSAGE,
        }
    }

    /// Asserts a handshake message has the expected wire format.
    pub fn assert_framing(self, step: &str, message: &[u8]) {
        assert_eq!(
            wire_format(message),
            self.wire_format(),
            "{step}: handshake wire format"
        );
    }
}

/// A client about to join.
pub enum Joiner {
    /// An OpenMLS client, with the KeyPackage it published.
    OpenMls(Box<OpenMlsClient>, Box<KeyPackage>),
    /// An engine client, with the KeyPackage it published (an encoded `MLSMessage`).
    Vmls(Box<VmlsClient>, Vec<u8>),
}

impl Joiner {
    /// A new OpenMLS client `name` with a fresh KeyPackage.
    pub fn openmls(name: &str, suite: u16) -> Self {
        let client = OpenMlsClient::new(name.as_bytes(), suite);
        let key_package = client.key_package().key_package().clone();
        Joiner::OpenMls(Box::new(client), Box::new(key_package))
    }

    /// A new engine client `name` with a fresh KeyPackage, sending handshakes as `handshakes`.
    pub fn vmls(name: &str, suite: u16, handshakes: Handshakes) -> Self {
        let mut client =
            VmlsClient::new(name.as_bytes(), suite).with_handshakes(handshakes.engine());
        let key_package = client.key_package();
        Joiner::Vmls(Box::new(client), key_package)
    }

    /// The KeyPackage as an encoded `MLSMessage`.
    pub fn key_package_bytes(&self) -> Vec<u8> {
        match self {
            Joiner::OpenMls(_, kp) => to_bytes(&MlsMessageOut::from((**kp).clone())),
            Joiner::Vmls(_, bytes) => bytes.clone(),
        }
    }

    /// The KeyPackage as OpenMLS sees it (validated by `validator`).
    pub fn openmls_key_package(&self, validator: &OpenMlsClient) -> KeyPackage {
        match self {
            Joiner::OpenMls(_, kp) => (**kp).clone(),
            Joiner::Vmls(_, bytes) => validator
                .validate_key_package(bytes)
                .expect("OpenMLS accepts the engine's KeyPackage"),
        }
    }

    /// Joins from `welcome` (tree given separately if `tree`).
    pub fn join(self, welcome: &[u8], tree: Option<&[u8]>, handshakes: Handshakes) -> Member {
        match self {
            Joiner::OpenMls(client, _) => {
                let group = client.join_with(welcome, tree, handshakes.policy());
                Member::openmls(*client, group)
            }
            Joiner::Vmls(mut client, _) => {
                client.config.ratchet_tree_extension = tree.is_none();
                client.join(welcome, tree);
                Member::vmls(*client)
            }
        }
    }
}

/// A new group of one created by an OpenMLS client `name` (with the `ratchet_tree` extension
/// in its Welcomes if `tree_in_welcome`).
pub fn openmls_creates(
    name: &str,
    suite: u16,
    handshakes: Handshakes,
    tree_in_welcome: bool,
) -> Roster {
    let client = OpenMlsClient::new(name.as_bytes(), suite);
    let group = client.create_group_with(
        client
            .group_builder_with_policy(handshakes.policy())
            .use_ratchet_tree_extension(tree_in_welcome),
    );
    let mut roster = Roster::new(name, Member::openmls(client, group));
    roster.check("created", 0);
    roster
}

/// A new group of one created by an engine client `name`.
pub fn vmls_creates(name: &str, suite: u16, handshakes: Handshakes) -> Roster {
    let mut client = VmlsClient::new(name.as_bytes(), suite).with_handshakes(handshakes.engine());
    client.create_group(format!("vmls interop group of {name}").as_bytes());
    let mut roster = Roster::new(name, Member::vmls(client));
    roster.check("created", 0);
    roster
}

/// `adder` commits Adds of `joiners` (the `ratchet_tree` extension in the Welcome's
/// GroupInfo if `tree_in_welcome`; otherwise the joiners get the tree separately); every
/// member processes the commit, the joiners join, and all must agree on `epoch`.
pub fn add(
    roster: &mut Roster,
    step: &str,
    adder: &str,
    joiners: Vec<(&str, Joiner)>,
    tree_in_welcome: bool,
    handshakes: Handshakes,
    epoch: u64,
) {
    let (commit, welcome, tree) = match roster.get(adder) {
        Member::OpenMls { client, group } => {
            let key_packages: Vec<KeyPackage> = joiners
                .iter()
                .map(|(_, j)| j.openmls_key_package(client))
                .collect();
            let out = client.add_members(group, &key_packages);
            let tree = export_ratchet_tree(group);
            (out.commit, out.welcome, tree)
        }
        Member::Vmls(client) => {
            let key_packages: Vec<Vec<u8>> =
                joiners.iter().map(|(_, j)| j.key_package_bytes()).collect();
            let (commit, welcome) = client.add(&key_packages, tree_in_welcome);
            (commit, welcome, client.ratchet_tree())
        }
    };
    handshakes.assert_framing(step, &commit);
    roster.deliver(step, adder, &commit, &[]);
    let separate_tree = (!tree_in_welcome).then_some(tree.as_slice());
    for (name, joiner) in joiners {
        if let (Joiner::Vmls(client, _), false) = (&joiner, tree_in_welcome) {
            // Without the extension and without the tree, the engine must refuse (§12.4.3.1).
            let mut probe = VmlsClient {
                identity: client.identity.clone(),
                suite: client.suite,
                signature_key: client.signature_key.clone(),
                config: client.config,
                key_packages: client.key_packages.clone(),
                group: None,
                psks: client.psks.clone(),
                capability_extensions: client.capability_extensions.clone(),
            };
            assert_eq!(
                probe.try_join(&welcome, None).map(|_| ()),
                Err(GroupError::MissingRatchetTree),
                "{step}: {name} joins without any tree"
            );
        }
        let member = joiner.join(&welcome, separate_tree, handshakes);
        roster.push(name, member);
    }
    roster.check(step, epoch);
}

/// A six-member group alternating OpenMLS and engine members, created by an OpenMLS client
/// (`openmls_first`) or an engine client, all added in one commit: epoch 1.
/// Names: `o1`, `o2`, `o3` (OpenMLS) and `v1`, `v2`, `v3` (engine).
pub fn mixed_group(suite: u16, openmls_first: bool, handshakes: Handshakes) -> Roster {
    let (mut roster, creator) = if openmls_first {
        (openmls_creates("o1", suite, handshakes, true), "o1")
    } else {
        (vmls_creates("v1", suite, handshakes), "v1")
    };
    let names = ["o1", "v1", "o2", "v2", "o3", "v3"];
    let joiners = names
        .iter()
        .filter(|n| **n != creator)
        .map(|n| {
            let joiner = if n.starts_with('o') {
                Joiner::openmls(n, suite)
            } else {
                Joiner::vmls(n, suite, handshakes)
            };
            (*n, joiner)
        })
        .collect();
    add(
        &mut roster,
        "mixed group",
        creator,
        joiners,
        true,
        handshakes,
        1,
    );
    roster
}

/// Member `name` commits a full-path self update; everyone processes it.
pub fn self_update(roster: &mut Roster, step: &str, name: &str, hs: Handshakes, epoch: u64) {
    let commit = match roster.get(name) {
        Member::OpenMls { client, group } => client.self_update(group),
        Member::Vmls(client) => client.self_update(),
    };
    hs.assert_framing(step, &commit);
    roster.deliver(step, name, &commit, &[]);
    roster.check(step, epoch);
}

/// Member `name` commits Removes (by value) of `removed`; everyone processes it.
pub fn remove(
    roster: &mut Roster,
    step: &str,
    name: &str,
    removed: &[&str],
    hs: Handshakes,
    epoch: u64,
) {
    let leaves: Vec<u32> = removed.iter().map(|r| roster.leaf(r)).collect();
    let commit = match roster.get(name) {
        Member::OpenMls { client, group } => client.remove_members(group, &leaves),
        Member::Vmls(client) => client.remove(&leaves),
    };
    hs.assert_framing(step, &commit);
    roster.deliver(step, name, &commit, removed);
    roster.check(step, epoch);
}

/// A proposal `proposer` sends, for [`propose_and_commit`].
pub enum Proposed<'a> {
    /// An Update of the proposer's own leaf.
    Update,
    /// A Remove of this member.
    Remove(&'a str),
}

/// `proposer` sends `proposal`; everyone stores it; `committer` commits it by reference;
/// everyone processes the commit.
pub fn propose_and_commit(
    roster: &mut Roster,
    step: &str,
    proposer: &str,
    proposal: Proposed<'_>,
    committer: &str,
    hs: Handshakes,
    epoch: u64,
) {
    let removed: Vec<&str> = match proposal {
        Proposed::Remove(r) => vec![r],
        Proposed::Update => vec![],
    };
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
    let before = roster.get(committer).view();
    roster.deliver(step, proposer, &message, &[]);
    let (commit, welcome) = match roster.get(committer) {
        Member::OpenMls { client, group } => client.commit_pending(group),
        Member::Vmls(client) => client.commit_pending(),
    };
    assert!(welcome.is_none(), "{step}: no Welcome");
    assert_eq!(before.epoch + 1, epoch, "{step}: test bookkeeping");
    hs.assert_framing(step, &commit);
    roster.deliver(step, committer, &commit, &removed);
    roster.check(step, epoch);
}

/// `proposer` proposes adding a new client `joiner` (OpenMLS if `openmls_joiner`), and
/// `committer` commits it by reference; the joiner joins from the Welcome.
#[allow(clippy::too_many_arguments)]
pub fn propose_add_and_commit(
    roster: &mut Roster,
    step: &str,
    proposer: &str,
    committer: &str,
    joiner_name: &str,
    joiner: Joiner,
    hs: Handshakes,
    epoch: u64,
) {
    let message = match roster.get(proposer) {
        Member::OpenMls { client, group } => {
            let kp = joiner.openmls_key_package(client);
            client.propose_add(group, &kp)
        }
        Member::Vmls(client) => client.propose_add(&joiner.key_package_bytes()),
    };
    hs.assert_framing(step, &message);
    roster.deliver(step, proposer, &message, &[]);
    let (commit, welcome) = match roster.get(committer) {
        Member::OpenMls { client, group } => client.commit_pending(group),
        Member::Vmls(client) => client.commit_pending(),
    };
    hs.assert_framing(step, &commit);
    roster.deliver(step, committer, &commit, &[]);
    let welcome = welcome.expect("an Add commit has a Welcome");
    let member = joiner.join(&welcome, None, hs);
    roster.push(joiner_name, member);
    roster.check(step, epoch);
}

/// (c) Each side commits full-path updates, Removes and Adds that the other processes, and
/// commits the other side's Update, Remove and Add proposals by reference. `openmls_first`
/// chooses who creates the group.
pub fn commits_both_ways(suite: u16, openmls_first: bool, hs: Handshakes) {
    let step =
        |s: &str| format!("suite {suite}, {hs:?} handshakes, openmls creates {openmls_first}: {s}");
    let mut roster = mixed_group(suite, openmls_first, hs);
    let mut epoch = 1;
    let mut next = || {
        epoch += 1;
        epoch
    };
    self_update(&mut roster, &step("v2 updates with path"), "v2", hs, next());
    self_update(&mut roster, &step("o2 updates with path"), "o2", hs, next());
    propose_and_commit(
        &mut roster,
        &step("o3 proposes Update, v1 commits"),
        "o3",
        Proposed::Update,
        "v1",
        hs,
        next(),
    );
    propose_and_commit(
        &mut roster,
        &step("v3 proposes Update, o1 commits"),
        "v3",
        Proposed::Update,
        "o1",
        hs,
        next(),
    );
    roster.exchange_application_messages(&step("after the updates"));
    propose_and_commit(
        &mut roster,
        &step("o2 proposes Remove v3, v2 commits"),
        "o2",
        Proposed::Remove("v3"),
        "v2",
        hs,
        next(),
    );
    propose_and_commit(
        &mut roster,
        &step("v1 proposes Remove o3, o2 commits"),
        "v1",
        Proposed::Remove("o3"),
        "o2",
        hs,
        next(),
    );
    remove(
        &mut roster,
        &step("v2 removes o2"),
        "v2",
        &["o2"],
        hs,
        next(),
    );
    remove(
        &mut roster,
        &step("o1 removes v2"),
        "o1",
        &["v2"],
        hs,
        next(),
    );
    roster.exchange_application_messages(&step("after the removes"));
    // Two members left (o1, v1); new members fill the blank leaves.
    add(
        &mut roster,
        &step("v1 adds o4 and v4"),
        "v1",
        vec![
            ("o4", Joiner::openmls("o4", suite)),
            ("v4", Joiner::vmls("v4", suite, hs)),
        ],
        true,
        hs,
        next(),
    );
    add(
        &mut roster,
        &step("o4 adds v5 and o5"),
        "o4",
        vec![
            ("v5", Joiner::vmls("v5", suite, hs)),
            ("o5", Joiner::openmls("o5", suite)),
        ],
        true,
        hs,
        next(),
    );
    propose_add_and_commit(
        &mut roster,
        &step("o1 proposes Add v6, v4 commits"),
        "o1",
        "v4",
        "v6",
        Joiner::vmls("v6", suite, hs),
        hs,
        next(),
    );
    propose_add_and_commit(
        &mut roster,
        &step("v5 proposes Add o6, o5 commits"),
        "v5",
        "o5",
        "o6",
        Joiner::openmls("o6", suite),
        hs,
        next(),
    );
    self_update(&mut roster, &step("v6 updates with path"), "v6", hs, next());
    self_update(&mut roster, &step("o6 updates with path"), "o6", hs, next());
    roster.exchange_application_messages(&step("at the end"));
}
