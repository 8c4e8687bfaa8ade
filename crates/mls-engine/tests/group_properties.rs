//! Property tests of the group state machine (RFC 9420 §12), issue 3 "Proof it works".
//!
//! * `random_sequences_converge` (200 cases, suite 1 in ~80 %, suites 2 and 3 in the rest):
//!   random sequences of Add / Remove / Update proposal / Commit (with and without path) among
//!   2-12 members, plus new-member and external-sender proposals, external joins (new clients
//!   and resyncs), external and resumption PSKs, GroupContextExtensions and late application
//!   messages. Every member processes the same ordered stream (the committer merges its
//!   pending commit, or processes it when it comes back); after every commit all members agree
//!   on epoch, `epoch_authenticator`, GroupContext and an exporter output. In "chaos" cases
//!   the pending proposals conflict (§12.2) and the committer must leave the offending ones
//!   out. One member per step continues from its serialised state (`to_bytes`/`from_bytes`).
//! * `rejected_messages_leave_state_unchanged` (200 cases): valid commits, proposals,
//!   application messages, external commits and external proposals, mutated (bit flips,
//!   truncation, trailing bytes), replayed, of a past epoch or of another group: each is
//!   either accepted (only the legitimately valid ones) or rejected with the serialised group
//!   state (`Group::to_bytes`) byte-identical; the original is accepted afterwards.
//! * `spoilt_welcomes_and_group_infos_are_refused` (100 cases), and two targeted tests: a
//!   commit from a removed member, a commit naming an unknown proposal reference.
//!
//! Failing cases print their minimal operation sequence (shrinking is bounded); the crypto
//! randomness is not seeded, the operation sequences are (`PROPTEST_RNG_SEED`).

use std::sync::OnceLock;

use mls_engine::codec::{
    Credential, Extension, ExtensionPayload as _, ExtensionType, ExternalSender,
    ExternalSendersExtension, GroupContextExtensions, Lifetime, MlsMessage, MlsMessageBody,
    PreSharedKeyID, Proposal, RequiredCapabilitiesExtension, ResumptionPSKUsage, Sender, Welcome,
};
use mls_engine::crypto::{
    CipherSuite, CryptoProvider, MlsCrypto as _, RustCrypto, Secret, SignatureKeyPair,
};
use mls_engine::group::{
    external_proposal, new_member_proposal, CommitOptions, ExternalCommitOptions, ExternalPskMap,
    Group, GroupConfig, GroupError, GroupStatus, HandshakeWireFormat, OwnLeaf, ProcessedMessage,
    Services,
};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};
use mls_engine::tree::{LeafIndex, RatchetTree};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

const NOW: u64 = 1_700_000_000;
const DAY: u64 = 86_400;
/// The most members a random sequence reaches.
const MAX_MEMBERS: usize = 12;
/// The fewest members a random sequence keeps.
const MIN_MEMBERS: usize = 2;

static CRYPTO: RustCrypto = RustCrypto;

/// The external PSK every client of these tests knows (§8.4).
const SHARED_PSK_ID: &[u8] = b"shared psk";

fn psk_store() -> &'static ExternalPskMap {
    static STORE: OnceLock<ExternalPskMap> = OnceLock::new();
    STORE.get_or_init(|| ExternalPskMap {
        psks: vec![(SHARED_PSK_ID.to_vec(), Secret::new(vec![0x42; 32]))],
    })
}

fn services() -> Services<'static> {
    Services::new(&CRYPTO).with_psks(psk_store())
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - DAY,
        not_after: NOW + 90 * DAY,
    }
}

/// One member: its name (basic credential), signature key pair and group state.
#[derive(Debug)]
struct Client {
    name: String,
    group: Group,
    /// The epoch the client joined at (it holds resumption PSKs from there on).
    joined_epoch: u64,
}

/// A private-use extension type every client of these tests supports, so that groups may
/// require it (`required_capabilities`, §11.1).
const APP_EXTENSION: ExtensionType = ExtensionType(0xff0a);

/// The leaf of client `name`: basic credential, default capabilities plus [`APP_EXTENSION`].
fn leaf_params(suite: CipherSuite, name: &str) -> LeafNodeParams {
    LeafNodeParams::new(suite, Credential::basic(name.as_bytes().to_vec()))
        .supported_extension_types([APP_EXTENSION])
}

/// A fresh signature key pair and KeyPackage of `name` for `suite`.
fn key_package(suite: CipherSuite, name: &str) -> (KeyPackageBundle, SignatureKeyPair) {
    let cs = CRYPTO.suite(suite).expect("supported suite");
    let signature_key = cs.signature_generate_key_pair().expect("signature key");
    let bundle = KeyPackageParams::new(
        suite,
        Credential::basic(name.as_bytes().to_vec()),
        lifetime(),
    )
    .with_leaf(leaf_params(suite, name))
    .build_fresh(cs, &signature_key)
    .expect("key package");
    (bundle, signature_key)
}

/// A new group of one member, `name`.
fn create_group(
    suite: CipherSuite,
    config: GroupConfig,
    group_id: &[u8],
    name: &str,
    extensions: Vec<Extension>,
) -> Client {
    let cs = CRYPTO.suite(suite).expect("supported suite");
    let signature_key = cs.signature_generate_key_pair().expect("signature key");
    let own = OwnLeaf {
        params: leaf_params(suite, name),
        encryption_key: HpkeKeySource::Generate,
        signature_key,
    };
    let group = Group::create(
        &services(),
        config,
        group_id.to_vec(),
        suite,
        own,
        lifetime(),
        extensions,
    )
    .expect("create group");
    Client {
        name: name.to_string(),
        group,
        joined_epoch: 0,
    }
}

fn join(
    config: GroupConfig,
    welcome: &Welcome,
    name: &str,
    bundle: &KeyPackageBundle,
    signature_key: SignatureKeyPair,
    ratchet_tree: Option<RatchetTree>,
) -> Result<Client, GroupError> {
    let group = Group::join_from_welcome(
        &services(),
        config,
        welcome,
        bundle,
        signature_key,
        ratchet_tree,
        NOW,
    )?;
    let joined_epoch = group.epoch();
    Ok(Client {
        name: name.to_string(),
        group,
        joined_epoch,
    })
}

/// `MLS-Exporter("vmls proptest", "ctx", 32)` of the member's current epoch.
fn exporter(client: &Client) -> Vec<u8> {
    client
        .group
        .export_secret(&services(), "vmls proptest", b"ctx", 32)
        .expect("exporter")
        .as_bytes()
        .to_vec()
}

fn state_bytes(group: &Group) -> Vec<u8> {
    group.to_bytes().expect("group state serialises")
}

/// An `external_senders` extension listing `server` and `n - 1` further senders.
fn external_senders(server: &SignatureKeyPair, n: usize) -> Extension {
    let mut external_senders = vec![ExternalSender {
        signature_key: server.public_key.clone().into(),
        credential: Credential::basic(b"server".to_vec()),
    }];
    for i in 1..n {
        external_senders.push(ExternalSender {
            signature_key: vec![i as u8; 32].into(),
            credential: Credential::basic(format!("server-{i}").into_bytes()),
        });
    }
    ExternalSendersExtension { external_senders }
        .to_extension()
        .expect("extension")
}

// ---------------------------------------------------------------------------------------------
// The model: a group of clients all processing the same ordered stream
// ---------------------------------------------------------------------------------------------

/// Every member of one group, in join order, plus the proposals sent in the current epoch
/// (abstractly, to keep generated sequences valid per §12.2).
struct World {
    suite: CipherSuite,
    config: GroupConfig,
    members: Vec<Client>,
    /// Leaves an Update or Remove proposal of this epoch already touches.
    touched: Vec<LeafIndex>,
    /// Adds proposed in this epoch (not yet committed).
    pending_adds: Vec<(String, KeyPackageBundle, SignatureKeyPair)>,
    /// Leaves a Remove proposal of this epoch names.
    pending_removes: Vec<LeafIndex>,
    /// The external sender at index 0 of the group's `external_senders` (§12.1.8.1).
    server: SignatureKeyPair,
    /// How many external senders the GroupContext lists (toggled by GroupContextExtensions).
    external_senders: usize,
    /// Whether proposals may conflict (§12.2): the committer's engine must then leave the
    /// offending pending proposals out, and every receiver must agree.
    chaos: bool,
    next_name: usize,
    commits: usize,
}

impl World {
    /// A group of `size` members: the creator commits the Adds of the others in one Commit.
    fn new(suite: CipherSuite, config: GroupConfig, group_id: &[u8], size: usize) -> World {
        let server = CRYPTO
            .suite(suite)
            .expect("suite")
            .signature_generate_key_pair()
            .expect("key");
        let extensions = vec![external_senders(&server, 1)];
        let creator = create_group(suite, config, group_id, "member-0", extensions);
        let mut world = World {
            server,
            external_senders: 1,
            suite,
            config,
            members: vec![creator],
            touched: Vec::new(),
            pending_adds: Vec::new(),
            pending_removes: Vec::new(),
            chaos: false,
            next_name: 1,
            commits: 0,
        };
        if size > 1 {
            let mut joiners = Vec::new();
            let mut options = CommitOptions::new();
            for _ in 1..size {
                let name = world.fresh_name();
                let (bundle, sig) = key_package(suite, &name);
                options =
                    options.proposal(mls_engine::codec::Proposal::add(bundle.key_package.clone()));
                joiners.push((name, bundle, sig));
            }
            world.commit_and_deliver(0, options, joiners);
        }
        world
    }

    fn fresh_name(&mut self) -> String {
        let name = format!("member-{}", self.next_name);
        self.next_name += 1;
        name
    }

    fn leaf(&self, member: usize) -> LeafIndex {
        self.members[member].group.own_leaf_index()
    }

    /// Members after this epoch's pending proposals, if none of the Removes is left out.
    fn projected_size(&self) -> usize {
        let mut removed = self.pending_removes.clone();
        removed.sort();
        removed.dedup();
        self.members.len() + self.pending_adds.len() - removed.len()
    }

    /// Current members no pending Remove names (some of them must stay to commit).
    fn staying_members(&self) -> usize {
        (0..self.members.len())
            .filter(|&i| !self.pending_removes.contains(&self.leaf(i)))
            .count()
    }

    /// Members after this epoch's pending proposals if every Remove is left out (a committer
    /// drops conflicting ones in chaos mode).
    fn largest_size(&self) -> usize {
        self.members.len() + self.pending_adds.len()
    }

    /// Delivers a handshake or application message of member `from` to every other member.
    fn deliver(&mut self, from: usize, message: &MlsMessage) -> Vec<ProcessedMessage> {
        let mut out = Vec::new();
        for (i, client) in self.members.iter_mut().enumerate() {
            if i == from {
                if is_commit_message(message) {
                    continue;
                }
                // The delivery service echoes the message to its sender: its own proposal is
                // recognised, its own application message refused, the state unchanged.
                let before = state_bytes(&client.group);
                match client.group.process(&services(), message, NOW) {
                    Ok(ProcessedMessage::Proposal { .. }) | Err(_) => {}
                    Ok(other) => panic!("{}: its own message came back as {other:?}", client.name),
                }
                assert_eq!(
                    state_bytes(&client.group),
                    before,
                    "{}: its own message came back and changed the state",
                    client.name
                );
                continue;
            }
            let processed = client
                .group
                .process(&services(), message, NOW)
                .unwrap_or_else(|e| {
                    panic!(
                        "{} rejected a valid message of member {from}: {e:?}",
                        client.name
                    )
                });
            out.push(processed);
        }
        out
    }

    /// Member `committer` commits with `options`; the Commit is delivered to everyone else,
    /// the committer merges, joiners (pending adds and `joiners`) join from the Welcome, the
    /// removed leave; then every member must agree.
    fn commit_and_deliver(
        &mut self,
        committer: usize,
        options: CommitOptions,
        mut joiners: Vec<(String, KeyPackageBundle, SignatureKeyPair)>,
    ) {
        let committer_name = self.members[committer].name.clone();
        let output = self.members[committer]
            .group
            .commit(&services(), options, NOW)
            .unwrap_or_else(|e| panic!("{committer_name} could not commit: {e:?}"));
        let mut removed = Vec::new();
        for (i, client) in self.members.iter_mut().enumerate() {
            if i == committer {
                continue;
            }
            let processed = client
                .group
                .process(&services(), &output.commit, NOW)
                .unwrap_or_else(|e| {
                    panic!(
                        "{} rejected the commit of {committer_name}: {e:?}",
                        client.name
                    )
                });
            match processed {
                ProcessedMessage::Commit { removed_us, .. } => {
                    assert_eq!(
                        removed_us,
                        *client.group.status() == GroupStatus::Removed,
                        "{}: removed_us disagrees with the status",
                        client.name
                    );
                    if removed_us {
                        removed.push(i);
                    }
                }
                other => panic!("{}: a commit processed as {other:?}", client.name),
            }
        }
        // The committer's state with its pending commit survives serialisation; it merges,
        // or processes its own commit coming back.
        if self.commits % 3 == 1 {
            self.round_trip(committer);
        }
        if self.commits % 2 == 0 {
            self.members[committer]
                .group
                .merge_pending_commit()
                .expect("merge pending commit");
        } else {
            match self.members[committer]
                .group
                .process(&services(), &output.commit, NOW)
            {
                Ok(ProcessedMessage::Commit { own: true, .. }) => {}
                other => panic!("{committer_name}: its own commit came back as {other:?}"),
            }
        }
        // Without the ratchet_tree extension the tree comes out of band.
        let tree = (!self.config.ratchet_tree_extension)
            .then(|| self.members[committer].group.ratchet_tree().clone());
        for i in removed.into_iter().rev() {
            self.members.remove(i);
        }
        joiners.append(&mut self.pending_adds);
        if !joiners.is_empty() {
            let welcome = output.welcome.expect("a commit with Adds has a Welcome");
            for (name, bundle, sig) in joiners {
                let client = join(self.config, &welcome, &name, &bundle, sig, tree.clone())
                    .unwrap_or_else(|e| panic!("{name} could not join: {e:?}"));
                self.members.push(client);
            }
        } else {
            assert!(output.welcome.is_none(), "a Welcome without Adds");
        }
        self.touched.clear();
        self.pending_removes.clear();
        self.after_commit();
    }

    fn after_commit(&mut self) {
        self.commits += 1;
        // One member continues from its serialised state.
        self.round_trip(self.commits % self.members.len());
        self.check_agreement();
    }

    /// Replaces member `i`'s group by the one restored from its serialised state (design hook
    /// H8); the restored state serialises to the same bytes.
    fn round_trip(&mut self, i: usize) {
        let bytes = state_bytes(&self.members[i].group);
        let restored = Group::from_bytes(&bytes).expect("state restores");
        assert_eq!(state_bytes(&restored), bytes, "state round trip");
        self.members[i].group = restored;
    }

    /// Every member has the same epoch, epoch authenticator, exporter output and members.
    fn check_agreement(&self) {
        let first = &self.members[0];
        let epoch = first.group.epoch();
        let authenticator = first.group.epoch_authenticator().to_vec();
        let export = exporter(first);
        let n_members = first.group.members().len();
        assert_eq!(n_members, self.members.len(), "member count");
        for client in &self.members[1..] {
            assert_eq!(client.group.epoch(), epoch, "{}: epoch", client.name);
            assert_eq!(
                client.group.epoch_authenticator(),
                authenticator.as_slice(),
                "{}: epoch_authenticator at epoch {epoch}",
                client.name
            );
            assert_eq!(exporter(client), export, "{}: exporter output", client.name);
            assert_eq!(
                client.group.group_context(),
                first.group.group_context(),
                "{}: GroupContext",
                client.name
            );
            assert!(client.group.pending_proposals().is_empty());
        }
    }

    /// Applies one generated operation; operations that would make the epoch's proposal list
    /// invalid (§12.2) become a plain commit by a member no pending Remove names.
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Add { actor, by_proposal } => {
                if self.largest_size() >= MAX_MEMBERS {
                    return self.apply(&Op::Commit { actor, path: false });
                }
                let actor = actor % self.members.len();
                let name = self.fresh_name();
                let (bundle, sig) = key_package(self.suite, &name);
                if by_proposal {
                    let (message, _) = self.members[actor]
                        .group
                        .propose_add(&services(), bundle.key_package.clone())
                        .expect("propose add");
                    self.deliver(actor, &message);
                    self.pending_adds.push((name, bundle, sig));
                } else {
                    let committer = self.committer(actor);
                    let options = CommitOptions::new()
                        .proposal(mls_engine::codec::Proposal::add(bundle.key_package.clone()));
                    self.commit_and_deliver(committer, options, vec![(name, bundle, sig)]);
                }
            }
            Op::Remove {
                actor,
                target,
                by_proposal,
            } => {
                if self.projected_size() <= MIN_MEMBERS || self.staying_members() <= MIN_MEMBERS {
                    return self.apply(&Op::Commit { actor, path: true });
                }
                let actor = actor % self.members.len();
                let candidates: Vec<usize> = (0..self.members.len())
                    .filter(|&i| {
                        i != actor
                            && (!self.touched.contains(&self.leaf(i))
                                || (self.chaos && by_proposal))
                    })
                    .collect();
                if candidates.is_empty() {
                    return self.apply(&Op::Commit { actor, path: false });
                }
                let touched: Vec<usize> = candidates
                    .iter()
                    .copied()
                    .filter(|&i| self.touched.contains(&self.leaf(i)))
                    .collect();
                let target_leaf =
                    if self.chaos && by_proposal && target % 2 == 0 && !touched.is_empty() {
                        // Aim at a leaf a pending proposal already changes.
                        self.leaf(touched[target % touched.len()])
                    } else {
                        self.leaf(candidates[target % candidates.len()])
                    };
                if by_proposal {
                    let (message, _) = self.members[actor]
                        .group
                        .propose_remove(&services(), target_leaf)
                        .expect("propose remove");
                    self.deliver(actor, &message);
                    self.touched.push(target_leaf);
                    self.pending_removes.push(target_leaf);
                } else {
                    if self.pending_removes.contains(&self.leaf(actor)) && !self.chaos {
                        // A pending proposal removes the actor: let another member commit
                        // the pending proposals first.
                        return self.apply(&Op::Commit { actor, path: false });
                    }
                    let options = CommitOptions::new()
                        .proposal(mls_engine::codec::Proposal::remove(target_leaf.0));
                    self.commit_and_deliver(actor, options, Vec::new());
                }
            }
            Op::UpdateProposal { actor } => {
                let actor = actor % self.members.len();
                let leaf = self.leaf(actor);
                if self.touched.contains(&leaf) && !self.chaos {
                    return self.apply(&Op::Commit { actor, path: false });
                }
                let (message, _) = self.members[actor]
                    .group
                    .propose_update(&services(), HpkeKeySource::Generate, None)
                    .expect("propose update");
                self.deliver(actor, &message);
                self.touched.push(leaf);
            }
            Op::Commit { actor, path } => {
                let committer = self.committer(actor);
                let mut options = CommitOptions::new();
                if path {
                    options = options.with_path();
                }
                self.commit_and_deliver(committer, options, Vec::new());
            }
            Op::NewMemberProposal => {
                if self.largest_size() >= MAX_MEMBERS {
                    return self.apply(&Op::Commit {
                        actor: 0,
                        path: false,
                    });
                }
                let name = self.fresh_name();
                let (bundle, sig) = key_package(self.suite, &name);
                let message = new_member_proposal(
                    &services(),
                    self.members[0].group.group_context(),
                    bundle.key_package.clone(),
                    &sig,
                )
                .expect("new member proposal");
                self.deliver(usize::MAX, &message);
                self.pending_adds.push((name, bundle, sig));
            }
            Op::ExternalRemove { target } => {
                if self.projected_size() <= MIN_MEMBERS || self.staying_members() <= MIN_MEMBERS {
                    return self.apply(&Op::Commit {
                        actor: target,
                        path: true,
                    });
                }
                let candidates: Vec<usize> = (0..self.members.len())
                    .filter(|&i| !self.touched.contains(&self.leaf(i)))
                    .collect();
                if candidates.len() < 2 {
                    // Keep someone who may commit.
                    return self.apply(&Op::Commit {
                        actor: target,
                        path: false,
                    });
                }
                let leaf = self.leaf(candidates[target % candidates.len()]);
                let message = external_proposal(
                    &services(),
                    self.members[0].group.group_context(),
                    0,
                    Proposal::remove(leaf.0),
                    &self.server,
                    b"",
                )
                .expect("external proposal");
                self.deliver(usize::MAX, &message);
                self.touched.push(leaf);
                self.pending_removes.push(leaf);
            }
            Op::ExternalJoin { actor, resync } => {
                let pending = !self.touched.is_empty() || !self.pending_adds.is_empty();
                if pending && actor % 2 == 1 {
                    // An external commit cannot carry pending proposals: commit them first.
                    self.apply(&Op::Commit { actor, path: false });
                }
                let resync = resync || self.members.len() >= MAX_MEMBERS;
                self.external_join(actor % self.members.len(), resync);
                // Otherwise the pending proposals die with the epoch (§12.1): every member
                // dropped them (checked by `check_agreement`), and their Adds never join.
                self.pending_adds.clear();
                self.touched.clear();
                self.pending_removes.clear();
            }
            Op::Psk {
                actor,
                external,
                back,
                by_proposal,
            } => {
                let cs = CRYPTO.suite(self.suite).expect("suite");
                let nonce = cs.random_vec(cs.params().hash_len()).expect("random");
                // A joiner cannot know a resumption PSK of the group (§12.4.3.1 needs every
                // PSK of the Welcome): resumption PSKs go by value into commits without Adds.
                let external = external || by_proposal || !self.pending_adds.is_empty();
                let psk = if external {
                    PreSharedKeyID::external(SHARED_PSK_ID.to_vec(), nonce)
                } else {
                    let current = self.members[0].group.epoch();
                    let oldest_held = self
                        .members
                        .iter()
                        .map(|c| c.joined_epoch)
                        .max()
                        .unwrap_or(current)
                        .max(current.saturating_sub(3));
                    let epoch = current.saturating_sub(back).max(oldest_held);
                    PreSharedKeyID::resumption(
                        ResumptionPSKUsage::Application,
                        self.members[0].group.group_id().to_vec(),
                        epoch,
                        nonce,
                    )
                };
                let actor = actor % self.members.len();
                if by_proposal {
                    let (message, _) = self.members[actor]
                        .group
                        .propose_psk(&services(), psk)
                        .expect("propose psk");
                    self.deliver(actor, &message);
                } else {
                    let committer = self.committer(actor);
                    let options = CommitOptions::new().proposal(Proposal::pre_shared_key(psk));
                    self.commit_and_deliver(committer, options, Vec::new());
                }
            }
            Op::GroupContextExtensions { actor } => {
                // Toggle between one external sender, and two plus a required capability every
                // member has.
                let n = if self.external_senders == 1 { 2 } else { 1 };
                let mut extensions = vec![external_senders(&self.server, n)];
                if n == 2 {
                    extensions.push(
                        RequiredCapabilitiesExtension {
                            extension_types: vec![APP_EXTENSION],
                            proposal_types: Vec::new(),
                            credential_types: Vec::new(),
                        }
                        .to_extension()
                        .expect("extension"),
                    );
                }
                let proposal =
                    Proposal::GroupContextExtensions(GroupContextExtensions { extensions });
                let committer = self.committer(actor);
                self.commit_and_deliver(
                    committer,
                    CommitOptions::new().proposal(proposal),
                    Vec::new(),
                );
                self.external_senders = n;
            }
            Op::LateApplication {
                actor,
                committer,
                epochs,
                resync_sender,
            } => {
                if !self.touched.is_empty() || !self.pending_adds.is_empty() {
                    self.apply(&Op::Commit {
                        actor: committer,
                        path: false,
                    });
                }
                let actor = actor % self.members.len();
                let message = self.members[actor]
                    .group
                    .encrypt_application(&services(), b"late", b"")
                    .expect("encrypt application");
                let committer = committer % self.members.len();
                for epoch in 0..epochs {
                    if epoch == 0 && resync_sender {
                        // The sender rejoins with a new leaf and signature key: the late
                        // message still verifies under the key of its epoch.
                        self.external_join(actor, true);
                    } else {
                        self.commit_and_deliver(
                            committer,
                            CommitOptions::new().with_path(),
                            Vec::new(),
                        );
                    }
                }
                let keep = epochs <= self.config.max_past_epochs;
                for (i, client) in self.members.iter_mut().enumerate() {
                    if i == actor {
                        continue;
                    }
                    let before = state_bytes(&client.group);
                    match client.group.process(&services(), &message, NOW) {
                        Ok(ProcessedMessage::Application { data, .. }) if keep => {
                            assert_eq!(data, b"late");
                        }
                        Err(GroupError::StaleEpoch { .. }) if !keep => {
                            assert_eq!(state_bytes(&client.group), before);
                        }
                        other => panic!(
                            "{}: a late application message (past epochs kept: {}): {other:?}",
                            client.name, self.config.max_past_epochs
                        ),
                    }
                }
            }
            Op::ApplicationBurst { actor, count } => {
                // `count` messages, delivered newest first (within the out-of-order window).
                let actor = actor % self.members.len();
                let messages: Vec<(Vec<u8>, MlsMessage)> = (0..count)
                    .map(|k| {
                        let data = format!("burst {k}").into_bytes();
                        let m = self.members[actor]
                            .group
                            .encrypt_application(&services(), &data, b"")
                            .expect("encrypt application");
                        (data, m)
                    })
                    .collect();
                for (i, client) in self.members.iter_mut().enumerate() {
                    if i == actor {
                        continue;
                    }
                    for (data, message) in messages.iter().rev() {
                        match client.group.process(&services(), message, NOW) {
                            Ok(ProcessedMessage::Application { data: got, .. }) => {
                                assert_eq!(&got, data)
                            }
                            other => panic!("{}: out-of-order message: {other:?}", client.name),
                        }
                    }
                    let (_, first) = &messages[0];
                    let before = state_bytes(&client.group);
                    assert!(client.group.process(&services(), first, NOW).is_err());
                    assert_eq!(
                        state_bytes(&client.group),
                        before,
                        "{}: replay",
                        client.name
                    );
                }
            }
            Op::Application { actor } => {
                let actor = actor % self.members.len();
                let data = format!("hello from {}", self.members[actor].name);
                let message = self.members[actor]
                    .group
                    .encrypt_application(&services(), data.as_bytes(), b"aad")
                    .expect("encrypt application");
                let sender = self.leaf(actor);
                for processed in self.deliver(actor, &message) {
                    assert_eq!(
                        processed,
                        ProcessedMessage::Application {
                            sender,
                            data: data.as_bytes().to_vec(),
                            authenticated_data: b"aad".to_vec(),
                        }
                    );
                }
            }
        }
    }

    /// A member that may commit the pending proposals: one no pending Remove names (its own
    /// pending Update is replaced by its path, §12.2), starting from `actor`.
    fn committer(&self, actor: usize) -> usize {
        let n = self.members.len();
        if self.chaos {
            // Whoever: pending proposals that remove the committer are left out by it.
            return actor % n;
        }
        (0..n)
            .map(|k| (actor + k) % n)
            .find(|&i| !self.pending_removes.contains(&self.leaf(i)))
            .expect("some member is not removed by a pending proposal")
    }

    /// A new client (or, if `resync`, member `actor` with a new leaf) joins by external commit
    /// (§12.4.3.2) from the GroupInfo of a member; everyone else processes the commit.
    fn external_join(&mut self, actor: usize, resync: bool) {
        let with_tree = self.config.ratchet_tree_extension;
        let publisher = if resync {
            (actor + 1) % self.members.len()
        } else {
            actor
        };
        let group_info = self.members[publisher]
            .group
            .group_info(&services(), with_tree, true)
            .expect("group info");
        let tree = (!with_tree).then(|| self.members[publisher].group.ratchet_tree().clone());
        let (name, resync_remove) = if resync {
            (self.members[actor].name.clone(), Some(self.leaf(actor)))
        } else {
            (self.fresh_name(), None)
        };
        let signature_key = CRYPTO
            .suite(self.suite)
            .expect("suite")
            .signature_generate_key_pair()
            .expect("key");
        let own = OwnLeaf {
            params: leaf_params(self.suite, &name),
            encryption_key: HpkeKeySource::Generate,
            signature_key,
        };
        let options = ExternalCommitOptions {
            resync_remove,
            ..ExternalCommitOptions::default()
        };
        let (group, commit) = Group::join_by_external_commit(
            &services(),
            self.config,
            &group_info,
            tree,
            own,
            options,
            NOW,
        )
        .unwrap_or_else(|e| panic!("{name} could not join by external commit: {e:?}"));
        let skip = if resync { actor } else { usize::MAX };
        for (i, client) in self.members.iter_mut().enumerate() {
            if i == skip {
                continue;
            }
            match client.group.process(&services(), &commit, NOW) {
                Ok(ProcessedMessage::Commit {
                    sender: Sender::NewMemberCommit,
                    removed_us: false,
                    ..
                }) => {}
                other => panic!("{}: the external commit of {name}: {other:?}", client.name),
            }
        }
        let joined_epoch = group.epoch();
        let client = Client {
            name,
            group,
            joined_epoch,
        };
        if resync {
            self.members[actor] = client;
        } else {
            self.members.push(client);
        }
        self.after_commit();
    }

    /// Member 0 commits a ReInit (§12.1.5): everyone agrees on the last epoch, the group is
    /// closed for new messages, and the closed state survives serialisation.
    fn reinit(&mut self) {
        let reinit = mls_engine::codec::ReInit {
            group_id: b"the next group".to_vec().into(),
            version: mls_engine::codec::ProtocolVersion::MLS10,
            cipher_suite: self.suite,
            extensions: Vec::new(),
        };
        self.commit_and_deliver(
            0,
            CommitOptions::new().proposal(Proposal::ReInit(reinit.clone())),
            Vec::new(),
        );
        for i in 0..self.members.len() {
            let client = &mut self.members[i];
            assert_eq!(
                client.group.status(),
                &GroupStatus::ReInit(reinit.clone()),
                "{}: status after ReInit",
                client.name
            );
            assert!(matches!(
                client.group.encrypt_application(&services(), b"x", b""),
                Err(GroupError::ReInitCommitted)
            ));
            assert!(matches!(
                client.group.commit(&services(), CommitOptions::new(), NOW),
                Err(GroupError::ReInitCommitted)
            ));
            self.round_trip(i);
        }
    }

    /// Commits whatever is pending, so that the sequence ends in an agreed epoch.
    fn finish(&mut self) {
        let pending = self
            .members
            .iter()
            .any(|c| !c.group.pending_proposals().is_empty());
        if pending || !self.touched.is_empty() || !self.pending_adds.is_empty() {
            let committer = self.committer(0);
            self.commit_and_deliver(committer, CommitOptions::new(), Vec::new());
        }
    }
}

/// One step of a random sequence. Indices are taken modulo the current member count.
#[derive(Debug, Clone)]
enum Op {
    /// Add a new member: by value in a commit of `actor`, or proposed by `actor`.
    Add { actor: usize, by_proposal: bool },
    /// Remove another member: by value in a commit of `actor`, or proposed by `actor`.
    Remove {
        actor: usize,
        target: usize,
        by_proposal: bool,
    },
    /// `actor` proposes an Update of its leaf.
    UpdateProposal { actor: usize },
    /// `actor` (or the next member allowed to) commits the pending proposals, with an
    /// UpdatePath if `path` (else only if required).
    Commit { actor: usize, path: bool },
    /// `actor` sends application data.
    Application { actor: usize },
    /// `actor` sends `count` application messages, received newest first, then a replay.
    ApplicationBurst { actor: usize, count: usize },
    /// A new client asks to be added (`new_member_proposal`, §12.1.8).
    NewMemberProposal,
    /// The external sender proposes removing a member (§12.1.8.1).
    ExternalRemove { target: usize },
    /// A new client joins by external commit; or, if `resync`, member `actor` rejoins
    /// (§12.4.3.2, with the Remove of its old leaf).
    ExternalJoin { actor: usize, resync: bool },
    /// A PreSharedKey proposal (§12.1.4): the shared external PSK or a resumption PSK of the
    /// epoch `back` epochs ago (as far as every member holds it), proposed by `actor` or
    /// committed by value.
    Psk {
        actor: usize,
        external: bool,
        back: u64,
        by_proposal: bool,
    },
    /// A commit of a GroupContextExtensions proposal that toggles a second external sender.
    GroupContextExtensions { actor: usize },
    /// `actor` sends application data that arrives `epochs` commits later (by `committer`;
    /// the first one the sender's resync by external commit if `resync_sender`).
    LateApplication {
        actor: usize,
        committer: usize,
        epochs: u32,
        resync_sender: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let index = 0usize..64;
    prop_oneof![
        3 => (index.clone(), any::<bool>()).prop_map(|(actor, by_proposal)| Op::Add { actor, by_proposal }),
        2 => (index.clone(), index.clone(), any::<bool>()).prop_map(|(actor, target, by_proposal)| Op::Remove { actor, target, by_proposal }),
        2 => index.clone().prop_map(|actor| Op::UpdateProposal { actor }),
        3 => (index.clone(), any::<bool>()).prop_map(|(actor, path)| Op::Commit { actor, path }),
        1 => index.clone().prop_map(|actor| Op::Application { actor }),
        1 => (index.clone(), 2usize..6).prop_map(|(actor, count)| Op::ApplicationBurst { actor, count }),
        1 => Just(Op::NewMemberProposal),
        1 => index.clone().prop_map(|target| Op::ExternalRemove { target }),
        1 => (index.clone(), any::<bool>()).prop_map(|(actor, resync)| Op::ExternalJoin { actor, resync }),
        1 => (index.clone(), any::<bool>(), 0u64..4, any::<bool>()).prop_map(|(actor, external, back, by_proposal)| Op::Psk { actor, external, back, by_proposal }),
        1 => index.clone().prop_map(|actor| Op::GroupContextExtensions { actor }),
        1 => (index.clone(), index, 1u32..=3, any::<bool>()).prop_map(
            |(actor, committer, epochs, resync_sender)| Op::LateApplication {
                actor,
                committer,
                epochs,
                resync_sender,
            }
        ),
    ]
}

/// Operations that keep the member count (and so every member's position).
fn stable_op() -> impl Strategy<Value = Op> {
    let index = 0usize..64;
    prop_oneof![
        (index.clone(), any::<bool>()).prop_map(|(actor, path)| Op::Commit { actor, path }),
        index.clone().prop_map(|actor| Op::UpdateProposal { actor }),
        index.clone().prop_map(|actor| Op::Application { actor }),
        index.clone().prop_map(|actor| Op::ExternalJoin {
            actor,
            resync: true
        }),
        (index.clone(), any::<bool>(), 0u64..4, any::<bool>()).prop_map(
            |(actor, external, back, by_proposal)| Op::Psk {
                actor,
                external,
                back,
                by_proposal
            }
        ),
        index.prop_map(|actor| Op::GroupContextExtensions { actor }),
    ]
}

/// Suite 1 in most cases, suites 2 and 3 in fewer.
fn suite() -> impl Strategy<Value = CipherSuite> {
    prop_oneof![
        8 => Just(CipherSuite(1)),
        1 => Just(CipherSuite(2)),
        1 => Just(CipherSuite(3)),
    ]
}

fn config() -> impl Strategy<Value = GroupConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        0u32..=2,
        prop_oneof![Just(0u32), Just(16), Just(64)],
    )
        .prop_map(
            |(private, tree_in_welcome, max_past_epochs, padding_block)| GroupConfig {
                max_past_epochs,
                padding_block,
                handshake_wire_format: if private {
                    HandshakeWireFormat::Private
                } else {
                    HandshakeWireFormat::Public
                },
                ratchet_tree_extension: tree_in_welcome,
                ..GroupConfig::default()
            },
        )
}

/// `cases` cases, or `PROPTEST_CASES` of the environment (for longer runs).
fn proptest_config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Each case runs real cryptography: keep shrinking bounded.
        max_shrink_iters: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config(200))]

    /// 200 random sequences among 2-12 members converge after every commit.
    #[test]
    fn random_sequences_converge(
        suite in suite(),
        config in config(),
        initial in MIN_MEMBERS..=6usize,
        ops in prop::collection::vec(op(), 4..=24),
        chaos in any::<bool>(),
        reinit_at_end in prop::bool::weighted(0.2),
    ) {
        let mut world = World::new(suite, config, b"proptest group", initial);
        world.chaos = chaos;
        for (i, op) in ops.iter().enumerate() {
            world.apply(op);
            // Some member continues from its serialised state (pending proposals, own
            // Updates' keys and all).
            let member = i % world.members.len();
            world.round_trip(member);
        }
        world.finish();
        prop_assert!(world.members.len() >= MIN_MEMBERS && world.members.len() <= MAX_MEMBERS);
        prop_assert!(world.commits >= 1);
        if reinit_at_end {
            world.reinit();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rejected messages leave the state byte-identical
// ---------------------------------------------------------------------------------------------

/// How a valid message is spoiled.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip bit `bit` of the byte at `position` (modulo the length).
    BitFlip { position: usize, bit: u8 },
    /// Keep only the first `keep` bytes (modulo the length).
    Truncate { keep: usize },
    /// Append bytes.
    Append { bytes: Vec<u8> },
}

impl Mutation {
    fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        match self {
            Mutation::BitFlip { position, bit } => {
                let at = position % out.len();
                out[at] ^= 1 << (bit % 8);
            }
            Mutation::Truncate { keep } => out.truncate(keep % out.len()),
            Mutation::Append { bytes } => out.extend_from_slice(bytes),
        }
        out
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (any::<usize>(), any::<u8>()).prop_map(|(position, bit)| Mutation::BitFlip { position, bit }),
        2 => any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        1 => prop::collection::vec(any::<u8>(), 1..4).prop_map(|bytes| Mutation::Append { bytes }),
    ]
}

/// The valid message that gets spoiled.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A commit with path (no proposals).
    CommitWithPath,
    /// A commit adding a member by value.
    CommitAdd,
    /// A commit removing a member by value.
    CommitRemove,
    /// An Update proposal.
    UpdateProposal,
    /// A Remove proposal.
    RemoveProposal,
    /// An application message.
    Application,
    /// An outsider's external commit (§12.4.3.2).
    ExternalCommit,
    /// An outsider's `new_member_proposal` (§12.1.8).
    NewMemberProposal,
    /// The external sender's Remove proposal (§12.1.8.1).
    ExternalProposal,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::CommitWithPath),
        Just(Kind::CommitAdd),
        Just(Kind::CommitRemove),
        Just(Kind::UpdateProposal),
        Just(Kind::RemoveProposal),
        Just(Kind::Application),
        Just(Kind::ExternalCommit),
        Just(Kind::NewMemberProposal),
        Just(Kind::ExternalProposal),
    ]
}

impl Kind {
    /// Whether the message comes from outside the group (not from member 0).
    fn outsider(self) -> bool {
        matches!(
            self,
            Kind::ExternalCommit | Kind::NewMemberProposal | Kind::ExternalProposal
        )
    }

    fn is_commit(self) -> bool {
        matches!(
            self,
            Kind::CommitWithPath | Kind::CommitAdd | Kind::CommitRemove | Kind::ExternalCommit
        )
    }
}

/// A member added by a commit of the test: waiting for its Welcome, or joined by external
/// commit.
#[allow(clippy::large_enum_variant)] // one per test case
enum Joiner {
    Welcome(String, KeyPackageBundle, SignatureKeyPair, Option<Welcome>),
    External(Client),
}

/// A message of `kind` from member 0 of `world` (a commit stays pending at member 0), and for
/// `CommitAdd` the joiner.
fn make_message(world: &mut World, kind: Kind) -> (MlsMessage, Option<Joiner>) {
    let s = services();
    let target = world.members[2].group.own_leaf_index();
    let sender = &mut world.members[0].group;
    match kind {
        Kind::CommitWithPath => {
            let out = sender
                .commit(&s, CommitOptions::new().with_path(), NOW)
                .expect("commit");
            (out.commit, None)
        }
        Kind::CommitAdd => {
            let (bundle, sig) = key_package(world.suite, "joiner");
            let out = sender
                .commit(
                    &s,
                    CommitOptions::new()
                        .proposal(mls_engine::codec::Proposal::add(bundle.key_package.clone())),
                    NOW,
                )
                .expect("commit");
            (
                out.commit,
                Some(Joiner::Welcome(
                    "joiner".to_string(),
                    bundle,
                    sig,
                    out.welcome,
                )),
            )
        }
        Kind::CommitRemove => {
            let out = sender
                .commit(
                    &s,
                    CommitOptions::new().proposal(mls_engine::codec::Proposal::remove(target.0)),
                    NOW,
                )
                .expect("commit");
            (out.commit, None)
        }
        Kind::UpdateProposal => (
            sender
                .propose_update(&s, HpkeKeySource::Generate, None)
                .expect("update")
                .0,
            None,
        ),
        Kind::RemoveProposal => (sender.propose_remove(&s, target).expect("remove").0, None),
        Kind::Application => (
            sender
                .encrypt_application(&s, b"application data", b"")
                .expect("application"),
            None,
        ),
        Kind::ExternalCommit => {
            let with_tree = world.config.ratchet_tree_extension;
            let group_info = sender.group_info(&s, with_tree, true).expect("group info");
            let tree = (!with_tree).then(|| sender.ratchet_tree().clone());
            let cs = CRYPTO.suite(world.suite).expect("suite");
            let own = OwnLeaf {
                params: leaf_params(world.suite, "outsider"),
                encryption_key: HpkeKeySource::Generate,
                signature_key: cs.signature_generate_key_pair().expect("key"),
            };
            let (group, commit) = Group::join_by_external_commit(
                &s,
                world.config,
                &group_info,
                tree,
                own,
                ExternalCommitOptions::default(),
                NOW,
            )
            .expect("external commit");
            let joined_epoch = group.epoch();
            (
                commit,
                Some(Joiner::External(Client {
                    name: "outsider".to_string(),
                    group,
                    joined_epoch,
                })),
            )
        }
        Kind::NewMemberProposal => {
            let (bundle, sig) = key_package(world.suite, "asking");
            let message = new_member_proposal(&s, sender.group_context(), bundle.key_package, &sig)
                .expect("new member proposal");
            (message, None)
        }
        Kind::ExternalProposal => {
            let message = external_proposal(
                &s,
                sender.group_context(),
                0,
                Proposal::remove(target.0),
                &world.server,
                b"",
            )
            .expect("external proposal");
            (message, None)
        }
    }
}

/// Processes the encoded message `bytes` at `client` (`process_bytes`: size limit, strict
/// decoding, then `process`): it must be rejected with the state byte-identical.
fn process_expecting_rejection(client: &mut Client, bytes: &[u8], what: &str) {
    let before = state_bytes(&client.group);
    match client.group.process_bytes(&services(), bytes, NOW) {
        Ok(processed) => {
            panic!("{}: {what} was accepted: {processed:?}", client.name);
        }
        Err(_) => {
            assert_eq!(
                state_bytes(&client.group),
                before,
                "{}: {what} was rejected but changed the state",
                client.name
            );
        }
    }
}

/// A rejection must name the RFC check; a few cases are pinned down.
fn process_expecting(
    client: &mut Client,
    message: &MlsMessage,
    what: &str,
    check: impl Fn(&GroupError) -> bool,
) {
    let before = state_bytes(&client.group);
    match client.group.process(&services(), message, NOW) {
        Ok(processed) => panic!("{}: {what} was accepted: {processed:?}", client.name),
        Err(e) => {
            assert!(
                check(&e),
                "{}: {what} rejected with an unexpected error {e:?}",
                client.name
            );
            assert_eq!(
                state_bytes(&client.group),
                before,
                "{}: {what} was rejected ({e:?}) but changed the state",
                client.name
            );
        }
    }
}

/// Whether `message` carries a Commit (commits of the test are merged, not echoed).
fn is_commit_message(message: &MlsMessage) -> bool {
    match &message.body {
        MlsMessageBody::PublicMessage(m) => {
            matches!(
                m.content.body,
                mls_engine::codec::FramedContentBody::Commit(_)
            )
        }
        MlsMessageBody::PrivateMessage(m) => {
            m.content_type == mls_engine::codec::ContentType::Commit
        }
        _ => false,
    }
}

fn is_public(message: &MlsMessage) -> bool {
    matches!(message.body, MlsMessageBody::PublicMessage(_))
}

proptest! {
    #![proptest_config(proptest_config(200))]

    /// Spoilt, replayed and misdirected messages are rejected with the state unchanged; the
    /// original message is still accepted afterwards and the group still agrees.
    #[test]
    fn rejected_messages_leave_state_unchanged(
        suite in suite(),
        config in config(),
        kind in kind(),
        mutations in prop::collection::vec(mutation(), 1..12),
        receiver in 0usize..4,
        prefix in prop::collection::vec(stable_op(), 0..4),
    ) {
        let mut world = World::new(suite, config, b"group one", 4);
        // Some history first: blank and unmerged nodes, PSKs, new leaves.
        for op in &prefix {
            world.apply(op);
        }
        world.finish();
        // A second group with the same suite, for wrong-group messages.
        let mut other = World::new(suite, config, b"group two", 3);
        // Member 3 of `world` sends a message in epoch 1 that arrives after the next commit.
        let stale = world.members[3]
            .group
            .encrypt_application(&services(), b"stale", b"")
            .expect("application");
        let (stale_proposal, _) = world.members[3]
            .group
            .propose_update(&services(), HpkeKeySource::Generate, None)
            .expect("update");
        world.members[3].group.clear_pending_proposals();
        world.apply(&Op::Commit { actor: 1, path: true });

        let (message, joiner) = make_message(&mut world, kind);
        let bytes = message.to_bytes().expect("encode");
        for m in &mutations {
            let spoilt = m.apply(&bytes);
            if spoilt == bytes {
                continue;
            }
            process_expecting_rejection(&mut world.members[receiver], &spoilt, &format!("{kind:?} with {m:?}"));
        }
        // Messages of a past epoch and of another group.
        if config.max_past_epochs > 0 {
            // The previous epoch's secret tree is kept: the late message opens once.
            let opened = world.members[receiver].group.process(&services(), &stale, NOW);
            let own = world.members[receiver].group.own_leaf_index() == LeafIndex(3);
            prop_assert!(
                own || matches!(opened, Ok(ProcessedMessage::Application { .. })),
                "a late application message: {:?}", opened
            );
            process_expecting(&mut world.members[receiver], &stale, "replayed late application", |_| true);
        } else {
            process_expecting(&mut world.members[receiver], &stale, "stale application", |e| {
                matches!(e, GroupError::StaleEpoch { .. })
            });
        }
        process_expecting(&mut world.members[receiver], &stale_proposal, "stale proposal", |e| {
            matches!(e, GroupError::StaleEpoch { .. })
        });
        let foreign = other.members[1]
            .group
            .encrypt_application(&services(), b"foreign", b"")
            .expect("application");
        process_expecting(&mut world.members[receiver], &foreign, "another group's message", |e| {
            matches!(e, GroupError::WrongGroup)
        });
        let (foreign_proposal, _) = other.members[1]
            .group
            .propose_update(&services(), HpkeKeySource::Generate, None)
            .expect("update");
        process_expecting(&mut world.members[receiver], &foreign_proposal, "another group's proposal", |e| {
            matches!(e, GroupError::WrongGroup)
        });

        // The original is still accepted by everyone; then replays are rejected.
        let from = if kind.outsider() { usize::MAX } else { 0 };
        let accepted = world.deliver(from, &message);
        prop_assert_eq!(accepted.len(), world.members.len() - usize::from(from == 0));
        if kind.is_commit() {
            if from == 0 {
                world.members[0].group.merge_pending_commit().expect("merge");
            }
            if let Kind::CommitRemove = kind {
                world.members.remove(2);
            }
            match joiner {
                Some(Joiner::Welcome(name, bundle, sig, welcome)) => {
                    let tree = (!config.ratchet_tree_extension)
                        .then(|| world.members[0].group.ratchet_tree().clone());
                    let welcome = welcome.expect("a Welcome");
                    let client = join(config, &welcome, &name, &bundle, sig, tree).expect("join");
                    world.members.push(client);
                }
                Some(Joiner::External(client)) => world.members.push(client),
                None => {}
            }
            world.check_agreement();
        }
        let receiver = 1;
        let before = state_bytes(&world.members[receiver].group);
        match world.members[receiver].group.process(&services(), &message, NOW) {
            Err(_) => {
                prop_assert_eq!(state_bytes(&world.members[receiver].group), before, "replay changed the state");
            }
            Ok(processed) => {
                // Only a PublicMessage proposal in its own epoch may be seen again; it must not
                // be stored twice.
                prop_assert!(
                    is_public(&message) && matches!(processed, ProcessedMessage::Proposal { .. }),
                    "replay of {:?} accepted: {:?}", kind, processed
                );
                prop_assert_eq!(state_bytes(&world.members[receiver].group), before, "replay changed the state");
            }
        }
        other.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// Targeted rejections from the list that need a particular history
// ---------------------------------------------------------------------------------------------

/// A commit from a member that another commit has removed: rejected (it is of the removed
/// member's last epoch), state unchanged.
#[test]
fn commit_from_removed_member_is_rejected() {
    for suite in [1u16, 2, 3] {
        let mut world = World::new(CipherSuite(suite), GroupConfig::default(), b"g", 4);
        // Member 3 prepares a commit, then member 0 removes it.
        let removed_leaf = world.members[3].group.own_leaf_index();
        let mut removed = world.members.remove(3);
        let late_commit = removed
            .group
            .commit(&services(), CommitOptions::new().with_path(), NOW)
            .expect("commit")
            .commit;
        let output = world.members[0]
            .group
            .commit(
                &services(),
                CommitOptions::new().proposal(mls_engine::codec::Proposal::remove(removed_leaf.0)),
                NOW,
            )
            .expect("commit");
        world.deliver(0, &output.commit);
        world.members[0]
            .group
            .merge_pending_commit()
            .expect("merge");
        // The removed member learns it was removed.
        removed.group.clear_pending_commit();
        match removed.group.process(&services(), &output.commit, NOW) {
            Ok(ProcessedMessage::Commit {
                removed_us: true, ..
            }) => {}
            other => panic!("the removed member processed its removal as {other:?}"),
        }
        world.check_agreement();
        for i in 0..world.members.len() {
            process_expecting(
                &mut world.members[i],
                &late_commit,
                "a removed member's commit",
                |e| {
                    matches!(
                        e,
                        GroupError::StaleEpoch { .. } | GroupError::UnknownSender(_)
                    )
                },
            );
        }
        // It can send nothing any more.
        assert!(matches!(
            removed.group.encrypt_application(&services(), b"x", b""),
            Err(GroupError::NotAMember)
        ));
    }
}

/// A commit that references a proposal the receiver never got: `UnknownProposalRef`, state
/// unchanged; once the proposal arrives, the same commit is accepted.
#[test]
fn commit_with_unknown_proposal_ref_is_rejected() {
    for suite in [1u16, 2, 3] {
        let mut world = World::new(CipherSuite(suite), GroupConfig::default(), b"g", 3);
        let target = world.members[2].group.own_leaf_index();
        let (proposal, _) = world.members[0]
            .group
            .propose_remove(&services(), target)
            .expect("propose");
        // Only member 2 receives the proposal.
        world.members[2]
            .group
            .process(&services(), &proposal, NOW)
            .expect("proposal");
        let output = world.members[0]
            .group
            .commit(&services(), CommitOptions::new(), NOW)
            .expect("commit");
        process_expecting(
            &mut world.members[1],
            &output.commit,
            "a commit with an unknown reference",
            |e| matches!(e, GroupError::UnknownProposalRef),
        );
        world.members[1]
            .group
            .process(&services(), &proposal, NOW)
            .expect("proposal");
        world.members[1]
            .group
            .process(&services(), &output.commit, NOW)
            .expect("commit after the proposal");
        world.members[0]
            .group
            .merge_pending_commit()
            .expect("merge");
        world.members[2]
            .group
            .process(&services(), &output.commit, NOW)
            .expect("removed member processes its removal");
        world.members.remove(2);
        world.check_agreement();
    }
}

// ---------------------------------------------------------------------------------------------
// Spoilt Welcomes and GroupInfos
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(proptest_config(100))]

    /// A Welcome for a single joiner with a bit flipped, truncated or extended is refused
    /// (§12.4.3.1: every part is encrypted, signed or referenced); so is a GroupInfo spoilt
    /// the same way for an external join (§12.4.3.2: it is signed). No panic, typed errors.
    #[test]
    fn spoilt_welcomes_and_group_infos_are_refused(
        suite in suite(),
        tree_in_welcome in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let config = GroupConfig { ratchet_tree_extension: tree_in_welcome, ..GroupConfig::default() };
        let mut world = World::new(suite, config, b"welcomes", 3);
        let (bundle, sig) = key_package(suite, "joiner");
        let output = world.members[0]
            .group
            .commit(&services(), CommitOptions::new().proposal(Proposal::add(bundle.key_package.clone())), NOW)
            .expect("commit");
        world.members[0].group.merge_pending_commit().expect("merge");
        let tree = (!tree_in_welcome).then(|| world.members[0].group.ratchet_tree().clone());
        let welcome = output.welcome.expect("welcome");
        let welcome_bytes = mls_engine::codec::encode(&welcome).expect("encode");
        let group_info = world.members[0]
            .group
            .group_info(&services(), tree_in_welcome, true)
            .expect("group info");
        let group_info_bytes = mls_engine::codec::encode(&group_info).expect("encode");
        for m in &mutations {
            let spoilt = m.apply(&welcome_bytes);
            if spoilt != welcome_bytes {
                if let Ok(w) = mls_engine::codec::decode_exact::<Welcome>(&spoilt) {
                    let joined = join(config, &w, "joiner", &bundle, sig.clone(), tree.clone());
                    prop_assert!(joined.is_err(), "a spoilt Welcome ({:?}) was accepted", m);
                }
            }
            let spoilt = m.apply(&group_info_bytes);
            if spoilt != group_info_bytes {
                if let Ok(info) = mls_engine::codec::decode_exact::<mls_engine::codec::GroupInfo>(&spoilt) {
                    let cs = CRYPTO.suite(suite).expect("suite");
                    let own = OwnLeaf {
                        params: leaf_params(suite, "outsider"),
                        encryption_key: HpkeKeySource::Generate,
                        signature_key: cs.signature_generate_key_pair().expect("key"),
                    };
                    let joined = Group::join_by_external_commit(
                        &services(), config, &info, tree.clone(), own, ExternalCommitOptions::default(), NOW,
                    );
                    prop_assert!(joined.is_err(), "a spoilt GroupInfo ({:?}) was accepted", m);
                }
            }
        }
        // The originals still work.
        let joiner = join(config, &welcome, "joiner", &bundle, sig, tree).expect("join");
        prop_assert_eq!(joiner.group.epoch_authenticator(), world.members[0].group.epoch_authenticator());
    }
}
