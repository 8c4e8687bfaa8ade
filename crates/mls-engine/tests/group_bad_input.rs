//! Bad input to the group state machine (issue 3, "Bad input"): a malicious member or server
//! must not be able to crash a client or split its state. Each test feeds one kind of bad
//! message and checks for a typed error naming the RFC check and a byte-identical group
//! state (`Group::to_bytes`) afterwards:
//!
//! * duplicate leaves: two Adds with one signature key, an Add of a member's key, a Welcome
//!   tree holding one leaf twice;
//! * parent hashes: a Welcome tree whose leaf's `parent_hash` does not match its parent, a
//!   tree that is not the GroupContext's; UpdatePaths with a swapped node key, a wrong leaf
//!   parent hash (re-signed), a broken leaf signature, a missing node, a spoilt ciphertext, a
//!   reused key;
//! * required capabilities: an Add (committed or proposed) and a Welcome for a client lacking
//!   an extension type the group requires;
//! * proposals the RFC forbids in a commit (§12.2): the committer's own Update (by reference
//!   and by value), two Removes of one leaf, a Remove of a blank leaf or of the committer,
//!   ReInit with other proposals, ExternalInit in a member commit — as received, and refused
//!   by the committer's own engine;
//! * oversize messages (`GroupConfig::max_message_size`, `process_bytes`);
//! * bad membership tag, bad signature (PublicMessage and PrivateMessage), bad confirmation
//!   tag, stale and future epochs, wrong group id, unknown senders, spoilt Welcomes;
//! * `forged_random_messages` (proptest): correctly signed and tagged messages with random,
//!   mostly invalid contents and sender indices: never a panic.
//!
//! Messages the engine refuses to create come from a *forged group*: the test plays a
//! malicious creator with the crate's public building blocks (key schedule, framing, TreeKEM,
//! Welcome), so it knows every epoch secret and can sign, tag and encrypt anything. The
//! victim is a real [`Group`] that joined the forged group from its Welcome. Positive
//! controls check that the forger's well-formed messages are accepted, so each rejection is
//! for the stated reason.

use mls_engine::codec::{
    encode, Commit, Credential, ExtensionPayload as _, ExtensionType, ExternalInit, FramedContent,
    FramedContentBody, GroupContext, GroupInfo, KeyPackage, LeafNode, LeafNodeSource, Lifetime,
    MlsMessage, MlsMessageBody, ParentNode, Proposal, ProposalOrRef, ProposalRef, ProtocolVersion,
    RatchetTreeExtension, ReInit, RequiredCapabilitiesExtension, UpdatePath, VLBytes, Welcome,
};
use mls_engine::crypto::{
    CipherSuite, CryptoProvider, MlsCrypto as _, RustCrypto, Secret, SignatureKeyPair,
    SuiteProvider,
};
use mls_engine::framing::{
    protect_private, protect_public, sign_private, sign_public, PrivateMessageOptions,
};
use mls_engine::group::proposals::ProposalListError;
use mls_engine::group::{
    external_proposal, CommitOptions, Group, GroupConfig, GroupError, OwnLeaf, ProcessedMessage,
    Services,
};
use mls_engine::messages::{
    HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams, LeafNodeTarget,
    LeafNodeValidationError,
};
use mls_engine::schedule::{
    confirmed_transcript_hash, confirmed_transcript_hash_input, interim_transcript_hash,
    EpochSecrets, KeySchedule, SecretTree,
};
use mls_engine::tree::{
    create_update_path, LeafIndex, NewLeaf, NodeIndex, RatchetTree, TreeKemError,
    TreeValidationError,
};
use mls_engine::welcome::{build_welcome, NewMemberSecrets};

const NOW: u64 = 1_700_000_000;
const DAY: u64 = 86_400;
/// A private-use extension type no default client supports.
const UNKNOWN_EXTENSION: ExtensionType = ExtensionType(0xff0a);
const SUITES: [u16; 3] = [1, 2, 3];

static CRYPTO: RustCrypto = RustCrypto;

fn services() -> Services<'static> {
    Services::new(&CRYPTO)
}

fn cs(suite: CipherSuite) -> &'static dyn SuiteProvider {
    CRYPTO.suite(suite).expect("supported suite")
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - DAY,
        not_after: NOW + 90 * DAY,
    }
}

fn signature_key(suite: CipherSuite) -> SignatureKeyPair {
    cs(suite)
        .signature_generate_key_pair()
        .expect("signature key")
}

/// A KeyPackage of `name` signed with `signature_key`; `supports` lists non-default extension
/// types its leaf supports.
fn key_package_with(
    suite: CipherSuite,
    name: &str,
    signature_key: &SignatureKeyPair,
    supports: &[ExtensionType],
) -> KeyPackageBundle {
    let leaf = LeafNodeParams::new(suite, Credential::basic(name.as_bytes().to_vec()))
        .supported_extension_types(supports.iter().copied());
    KeyPackageParams::new(
        suite,
        Credential::basic(name.as_bytes().to_vec()),
        lifetime(),
    )
    .with_leaf(leaf)
    .build_fresh(cs(suite), signature_key)
    .expect("key package")
}

fn key_package(suite: CipherSuite, name: &str) -> (KeyPackageBundle, SignatureKeyPair) {
    let sig = signature_key(suite);
    (key_package_with(suite, name, &sig, &[]), sig)
}

fn state_bytes(group: &Group) -> Vec<u8> {
    group.to_bytes().expect("group state serialises")
}

/// Processes `message` at `group`, expects a rejection `check` accepts, and a byte-identical
/// state. Returns the error.
fn expect_rejected(
    group: &mut Group,
    message: &MlsMessage,
    what: &str,
    check: impl Fn(&GroupError) -> bool,
) -> GroupError {
    let before = state_bytes(group);
    let epoch = group.epoch();
    match group.process(&services(), message, NOW) {
        Ok(processed) => panic!("{what}: accepted as {processed:?}"),
        Err(e) => {
            assert!(check(&e), "{what}: unexpected error {e:?}");
            assert_eq!(group.epoch(), epoch, "{what}: epoch changed");
            assert_eq!(state_bytes(group), before, "{what}: state changed ({e:?})");
            e
        }
    }
}

fn is_list_error(e: &GroupError, check: impl Fn(&ProposalListError) -> bool) -> bool {
    matches!(e, GroupError::InvalidProposalList(inner) if check(inner))
}

// ---------------------------------------------------------------------------------------------
// Real groups
// ---------------------------------------------------------------------------------------------

/// Members of a real group, all at the same epoch.
struct RealGroup {
    members: Vec<Group>,
}

/// Creates a group of `names.len()` members (the first creates, and adds the others in one
/// commit); `extensions` are the GroupContext extensions and `supports` the non-default
/// extension types every member's leaf supports.
fn real_group(
    suite: CipherSuite,
    group_id: &[u8],
    n: usize,
    extensions: Vec<mls_engine::codec::Extension>,
    supports: &[ExtensionType],
) -> RealGroup {
    let own = OwnLeaf {
        params: LeafNodeParams::new(suite, Credential::basic(b"member-0".to_vec()))
            .supported_extension_types(supports.iter().copied()),
        encryption_key: HpkeKeySource::Generate,
        signature_key: signature_key(suite),
    };
    let mut creator = Group::create(
        &services(),
        GroupConfig::default(),
        group_id.to_vec(),
        suite,
        own,
        lifetime(),
        extensions,
    )
    .expect("create");
    let mut members = Vec::new();
    if n > 1 {
        let mut options = CommitOptions::new();
        let mut joiners = Vec::new();
        for i in 1..n {
            let sig = signature_key(suite);
            let bundle = key_package_with(suite, &format!("member-{i}"), &sig, supports);
            options = options.proposal(Proposal::add(bundle.key_package.clone()));
            joiners.push((bundle, sig));
        }
        let output = creator.commit(&services(), options, NOW).expect("commit");
        creator.merge_pending_commit().expect("merge");
        let welcome = output.welcome.expect("welcome");
        members.push(creator);
        for (bundle, sig) in joiners {
            members.push(
                Group::join_from_welcome(
                    &services(),
                    GroupConfig::default(),
                    &welcome,
                    &bundle,
                    sig,
                    None,
                    NOW,
                )
                .expect("join"),
            );
        }
    } else {
        members.push(creator);
    }
    RealGroup { members }
}

impl RealGroup {
    /// Member `from` sends `message` to all others, who must accept it.
    fn deliver(&mut self, from: usize, message: &MlsMessage) {
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != from {
                m.process(&services(), message, NOW).expect("valid message");
            }
        }
    }

    /// Member `from` commits with path; everyone moves to the next epoch.
    fn empty_commit(&mut self, from: usize) {
        let output = self.members[from]
            .commit(&services(), CommitOptions::new().with_path(), NOW)
            .expect("commit");
        self.deliver(from, &output.commit);
        self.members[from].merge_pending_commit().expect("merge");
    }
}

fn public_bytes(message: &MlsMessage) -> Vec<u8> {
    assert!(matches!(message.body, MlsMessageBody::PublicMessage(_)));
    message.to_bytes().expect("encode")
}

// ---------------------------------------------------------------------------------------------
// The forged group
// ---------------------------------------------------------------------------------------------

/// A group made up by a malicious creator at leaf 0, who knows every secret. The victim is at
/// leaf 1, a third member "carol" (whose keys the forger also holds) at leaf 2.
struct Forged {
    suite: CipherSuite,
    context: GroupContext,
    tree: RatchetTree,
    secrets: EpochSecrets,
    interim_transcript_hash: Vec<u8>,
    attacker: SignatureKeyPair,
}

/// How to spoil a forged group or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoil {
    None,
    /// Sign with a key that is not the sender's.
    Signature,
    /// Flip a bit of the membership tag.
    MembershipTag,
    /// Flip a bit of the confirmation tag (commits).
    ConfirmationTag,
}

impl Forged {
    fn cs(&self) -> &'static dyn SuiteProvider {
        cs(self.suite)
    }

    fn nh(&self) -> usize {
        self.cs().params().hash_len()
    }

    /// A forged group at epoch 1 with the attacker (leaf 0), the victim (leaf 1) and, if
    /// `carol`, a third member (leaf 2); `extensions` in the GroupContext; `attacker_supports`
    /// the non-default extension types of the attacker's leaf; `tamper` edits the tree after
    /// the GroupContext's tree hash is taken if `tamper_after_hash`, before otherwise.
    /// Returns the forger and the victim's Welcome.
    #[allow(clippy::too_many_arguments)]
    fn new(
        suite: CipherSuite,
        victim: &KeyPackage,
        carol: bool,
        extensions: Vec<mls_engine::codec::Extension>,
        attacker_supports: &[ExtensionType],
        attacker_leaf: Option<(LeafNode, SignatureKeyPair)>,
        tamper: impl FnOnce(&mut RatchetTree),
        tamper_after_hash: bool,
    ) -> (Forged, Welcome, SignatureKeyPair) {
        let cs = cs(suite);
        let group_id = b"forged group".to_vec();
        let (leaf0, attacker) = match attacker_leaf {
            Some(given) => given,
            None => {
                let attacker = signature_key(suite);
                let leaf = LeafNodeParams::new(suite, Credential::basic(b"attacker".to_vec()))
                    .supported_extension_types(attacker_supports.iter().copied())
                    .build_fresh(
                        cs,
                        LeafNodeTarget::KeyPackage {
                            lifetime: lifetime(),
                        },
                        &attacker,
                    )
                    .expect("leaf")
                    .0;
                (leaf, attacker)
            }
        };
        let mut tree = RatchetTree::new(leaf0);
        tree.add_leaf(victim.leaf_node.clone()).expect("add victim");
        let carol_sig = signature_key(suite);
        if carol {
            let kp = key_package_with(suite, "carol", &carol_sig, attacker_supports);
            tree.add_leaf(kp.key_package.leaf_node).expect("add carol");
        }
        let mut tamper = Some(tamper);
        if !tamper_after_hash {
            (tamper.take().expect("tamper"))(&mut tree);
        }
        let nh = cs.params().hash_len();
        let confirmed = cs.random_vec(nh).expect("random");
        let context = GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: suite,
            group_id: group_id.into(),
            epoch: 1,
            tree_hash: VLBytes::new(tree.tree_hash(cs).expect("tree hash")),
            confirmed_transcript_hash: VLBytes::new(confirmed.clone()),
            extensions,
        };
        if let Some(tamper) = tamper {
            tamper(&mut tree);
        }
        let joiner_secret = cs.random_secret().expect("random");
        let schedule = KeySchedule::from_joiner_secret(cs, joiner_secret.clone(), Secret::zero(nh))
            .expect("schedule");
        let welcome_key_nonce = schedule.welcome_key_nonce(cs).expect("welcome key");
        let secrets = schedule
            .finish(cs, &encode(&context).expect("encode"))
            .expect("epoch secrets");
        let tag = secrets.confirmation_tag(cs, &confirmed);
        let interim = interim_transcript_hash(cs, &confirmed, &tag).expect("interim");
        let mut info = GroupInfo {
            group_context: context.clone(),
            extensions: vec![RatchetTreeExtension {
                ratchet_tree: tree.to_nodes(),
            }
            .to_extension()
            .expect("extension")],
            confirmation_tag: VLBytes::new(tag),
            signer: 0,
            signature: VLBytes::new(Vec::new()),
        };
        info.sign(cs, &attacker.private_key).expect("sign");
        let welcome = build_welcome(
            cs,
            &info,
            &joiner_secret,
            &welcome_key_nonce,
            &[],
            &[NewMemberSecrets {
                key_package: victim,
                path_secret: None,
            }],
        )
        .expect("welcome");
        (
            Forged {
                suite,
                context,
                tree,
                secrets,
                interim_transcript_hash: interim,
                attacker,
            },
            welcome,
            carol_sig,
        )
    }

    /// Frames `body` from leaf 0 as a PublicMessage of the current epoch. For commits,
    /// `next_tree` gives the tree after the commit (for a correct confirmation tag; `None`
    /// leaves it as it is, which is right only for rejected commits).
    fn frame(
        &self,
        body: FramedContentBody,
        next_tree: Option<&RatchetTree>,
        spoil: Spoil,
    ) -> (MlsMessage, ProposalRef) {
        self.frame_with_commit_secret(body, next_tree, None, spoil)
    }

    /// [`Forged::frame`] with the `commit_secret` of a commit with path.
    fn frame_with_commit_secret(
        &self,
        body: FramedContentBody,
        next_tree: Option<&RatchetTree>,
        commit_secret: Option<Secret>,
        spoil: Spoil,
    ) -> (MlsMessage, ProposalRef) {
        let cs = self.cs();
        let content = FramedContent {
            group_id: self.context.group_id.clone(),
            epoch: self.context.epoch,
            sender: mls_engine::codec::Sender::Member(0),
            authenticated_data: VLBytes::new(Vec::new()),
            body,
        };
        let is_commit = matches!(content.body, FramedContentBody::Commit(_));
        let signer = if spoil == Spoil::Signature {
            signature_key(self.suite)
        } else {
            self.attacker.clone()
        };
        let mut auth = sign_public(cs, content, &self.context, &signer.private_key).expect("sign");
        if is_commit {
            let tree = next_tree.unwrap_or(&self.tree);
            let confirmed = confirmed_transcript_hash(
                cs,
                &self.interim_transcript_hash,
                &confirmed_transcript_hash_input(&auth).expect("input"),
            );
            let next_context = GroupContext {
                epoch: self.context.epoch + 1,
                tree_hash: VLBytes::new(tree.tree_hash(cs).expect("tree hash")),
                confirmed_transcript_hash: VLBytes::new(confirmed.clone()),
                ..self.context.clone()
            };
            let schedule = KeySchedule::start(
                cs,
                self.secrets.init_secret.clone(),
                commit_secret.unwrap_or_else(|| Secret::zero(self.nh())),
                Secret::zero(self.nh()),
                &encode(&next_context).expect("encode"),
            )
            .expect("schedule");
            let next = schedule
                .finish(cs, &encode(&next_context).expect("encode"))
                .expect("finish");
            let mut tag = next.confirmation_tag(cs, &confirmed);
            if spoil == Spoil::ConfirmationTag {
                tag[0] ^= 1;
            }
            auth.auth.confirmation_tag = Some(VLBytes::new(tag));
        }
        let reference = auth.proposal_ref(cs).expect("reference");
        let mut message =
            protect_public(cs, auth, &self.context, Some(&self.secrets.membership_key))
                .expect("protect");
        if spoil == Spoil::MembershipTag {
            let tag = message.membership_tag.as_mut().expect("membership tag");
            let mut bytes = tag.as_slice().to_vec();
            bytes[0] ^= 0x80;
            *tag = VLBytes::new(bytes);
        }
        (
            MlsMessage::new(MlsMessageBody::PublicMessage(message)),
            reference,
        )
    }

    /// A commit without path of `proposals` from leaf 0.
    fn commit(
        &self,
        proposals: Vec<ProposalOrRef>,
        next_tree: Option<&RatchetTree>,
        spoil: Spoil,
    ) -> MlsMessage {
        self.frame(
            FramedContentBody::Commit(Commit {
                proposals,
                path: None,
            }),
            next_tree,
            spoil,
        )
        .0
    }

    /// An empty commit with path from leaf 0; `tamper` edits the UpdatePath before it is
    /// framed (the confirmation tag is that of the untampered path).
    fn commit_with_path(&self, tamper: impl FnOnce(&mut UpdatePath, &Forged)) -> MlsMessage {
        let cs = self.cs();
        let mut next_tree = self.tree.clone();
        let mut next_context = GroupContext {
            epoch: self.context.epoch + 1,
            ..self.context.clone()
        };
        let created = create_update_path(
            cs,
            &mut next_tree,
            LeafIndex(0),
            NewLeaf {
                template: self.tree.leaf(LeafIndex(0)).expect("leaf 0").clone(),
                key_pair: cs.hpke_generate_key_pair().expect("key"),
                signature_key: &self.attacker.private_key,
            },
            cs.random_secret().expect("random"),
            &[],
            &mut next_context,
        )
        .expect("update path");
        let mut path = created.update_path;
        tamper(&mut path, self);
        self.frame_with_commit_secret(
            FramedContentBody::Commit(Commit {
                proposals: Vec::new(),
                path: Some(path),
            }),
            Some(&next_tree),
            Some(created.commit_secret),
            Spoil::None,
        )
        .0
    }

    /// An Update proposal of the attacker's leaf.
    fn update_leaf(&self) -> LeafNode {
        LeafNodeParams::new(self.suite, Credential::basic(b"attacker".to_vec()))
            .build_fresh(
                self.cs(),
                LeafNodeTarget::Update {
                    group_id: self.context.group_id.as_slice(),
                    leaf_index: 0,
                },
                &self.attacker,
            )
            .expect("leaf")
            .0
    }
}

/// The victim's KeyPackage and a forged group it joined.
fn forged_group(suite: CipherSuite, carol: bool) -> (Forged, Group) {
    let (forged, victim, _) = forged_group_and_carol(suite, carol);
    (forged, victim)
}

/// [`forged_group`], also returning carol's signature key pair.
fn forged_group_and_carol(suite: CipherSuite, carol: bool) -> (Forged, Group, SignatureKeyPair) {
    let (bundle, sig) = key_package(suite, "victim");
    let (forged, welcome, carol_sig) = Forged::new(
        suite,
        &bundle.key_package,
        carol,
        Vec::new(),
        &[],
        None,
        |_| {},
        false,
    );
    let victim = Group::join_from_welcome(
        &services(),
        GroupConfig::default(),
        &welcome,
        &bundle,
        sig,
        None,
        NOW,
    )
    .expect("the victim joins the forged group");
    assert_eq!(victim.epoch(), 1);
    assert_eq!(victim.own_leaf_index(), LeafIndex(1));
    (forged, victim, carol_sig)
}

fn by_value(proposals: Vec<Proposal>) -> Vec<ProposalOrRef> {
    proposals.into_iter().map(ProposalOrRef::Proposal).collect()
}

// ---------------------------------------------------------------------------------------------
// Positive controls
// ---------------------------------------------------------------------------------------------

/// The forger's well-formed Add commit is accepted (so the forged rejections below fail for
/// the reason they name), and with a spoilt confirmation tag, signature or membership tag it
/// is rejected with the matching typed error and the state unchanged.
#[test]
fn forged_commit_is_accepted_and_each_spoilt_tag_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim) = forged_group(suite, true);
        let (joiner, _) = key_package(suite, "joiner");
        let mut next_tree = forged.tree.clone();
        next_tree
            .add_leaf(joiner.key_package.leaf_node.clone())
            .expect("add");
        let proposals = by_value(vec![Proposal::add(joiner.key_package.clone())]);

        let bad = forged.commit(proposals.clone(), Some(&next_tree), Spoil::ConfirmationTag);
        expect_rejected(&mut victim, &bad, "bad confirmation tag", |e| {
            matches!(e, GroupError::BadConfirmationTag)
        });
        let bad = forged.commit(proposals.clone(), Some(&next_tree), Spoil::Signature);
        expect_rejected(&mut victim, &bad, "bad signature", |e| {
            matches!(e, GroupError::BadSignature)
        });
        let bad = forged.commit(proposals.clone(), Some(&next_tree), Spoil::MembershipTag);
        expect_rejected(&mut victim, &bad, "bad membership tag", |e| {
            matches!(e, GroupError::BadMembershipTag)
        });

        let good = forged.commit(proposals, Some(&next_tree), Spoil::None);
        match victim.process(&services(), &good, NOW) {
            Ok(ProcessedMessage::Commit { epoch: 2, .. }) => {}
            other => panic!("suite {suite:?}: the forged Add commit: {other:?}"),
        }
        assert_eq!(victim.members().len(), 4);
    }
}

/// Proposals with a spoilt signature or membership tag are rejected, state unchanged.
#[test]
fn bad_signature_and_membership_tag_on_proposals() {
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim) = forged_group(suite, true);
        let body = FramedContentBody::Proposal(Proposal::remove(2));
        let (bad, _) = forged.frame(body.clone(), None, Spoil::Signature);
        expect_rejected(&mut victim, &bad, "proposal with a bad signature", |e| {
            matches!(e, GroupError::BadSignature)
        });
        let (bad, _) = forged.frame(body.clone(), None, Spoil::MembershipTag);
        expect_rejected(
            &mut victim,
            &bad,
            "proposal with a bad membership tag",
            |e| matches!(e, GroupError::BadMembershipTag),
        );
        let (good, _) = forged.frame(body, None, Spoil::None);
        assert!(matches!(
            victim.process(&services(), &good, NOW),
            Ok(ProcessedMessage::Proposal { .. })
        ));
    }
}

/// A real group's PublicMessage with one bit of its membership tag (the last bytes) flipped:
/// `BadMembershipTag`, state unchanged.
#[test]
fn bad_membership_tag_in_a_real_group() {
    for suite in SUITES.map(CipherSuite) {
        let mut group = real_group(suite, b"real", 3, Vec::new(), &[]);
        let (proposal, _) = group.members[0]
            .propose_remove(&services(), LeafIndex(2))
            .expect("propose");
        let mut bytes = public_bytes(&proposal);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let spoilt = MlsMessage::decode(&bytes).expect("still decodes");
        expect_rejected(&mut group.members[1], &spoilt, "bad membership tag", |e| {
            matches!(e, GroupError::BadMembershipTag)
        });
        group.deliver(0, &proposal);
    }
}

// ---------------------------------------------------------------------------------------------
// Proposals the RFC forbids in a commit (§12.2), as a receiver sees them
// ---------------------------------------------------------------------------------------------

/// Two Adds of KeyPackages with the same signature key, and an Add of a key already in the
/// group: `DuplicateAdd` / `AddOfExistingMember`, state unchanged.
#[test]
fn duplicate_leaves_in_a_received_commit() {
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim, carol_sig) = forged_group_and_carol(suite, true);
        let sig = signature_key(suite);
        let a = key_package_with(suite, "twin-a", &sig, &[]);
        let b = key_package_with(suite, "twin-b", &sig, &[]);
        let commit = forged.commit(
            by_value(vec![
                Proposal::add(a.key_package.clone()),
                Proposal::add(b.key_package.clone()),
            ]),
            None,
            Spoil::None,
        );
        let e = expect_rejected(
            &mut victim,
            &commit,
            "two Adds with one signature key",
            |e| is_list_error(e, |l| matches!(l, ProposalListError::DuplicateAdd { .. })),
        );
        println!("suite {suite:?}: two Adds with one key: {e}");

        // A valid KeyPackage of a client already in the group (carol, leaf 2, signs it).
        let existing = key_package_with(suite, "carol again", &carol_sig, &[]);
        let commit = forged.commit(
            by_value(vec![Proposal::add(existing.key_package)]),
            None,
            Spoil::None,
        );
        expect_rejected(
            &mut victim,
            &commit,
            "an Add of an existing member's key",
            |e| {
                is_list_error(e, |l| {
                    matches!(
                        l,
                        ProposalListError::AddOfExistingMember { .. }
                            | ProposalListError::NewLeafSignatureKeyCollision { .. }
                    )
                })
            },
        );
    }
}

/// The committer commits an Update of its own leaf: by reference (`UpdateByCommitter`) and
/// by value, state unchanged.
#[test]
fn update_from_the_committer_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim) = forged_group(suite, true);
        let update = Proposal::update(forged.update_leaf());
        let (proposal, reference) = forged.frame(
            FramedContentBody::Proposal(update.clone()),
            None,
            Spoil::None,
        );
        match victim.process(&services(), &proposal, NOW) {
            Ok(ProcessedMessage::Proposal { .. }) => {}
            other => panic!("the attacker's Update proposal: {other:?}"),
        }
        let commit = forged.commit(vec![ProposalOrRef::Reference(reference)], None, Spoil::None);
        expect_rejected(
            &mut victim,
            &commit,
            "the committer's own Update by reference",
            |e| {
                is_list_error(e, |l| {
                    matches!(l, ProposalListError::UpdateByCommitter { .. })
                })
            },
        );
        let commit = forged.commit(by_value(vec![update]), None, Spoil::None);
        let e = expect_rejected(&mut victim, &commit, "an Update by value", |e| {
            matches!(e, GroupError::InvalidProposalList(_))
        });
        println!("suite {suite:?}: Update by value: {e}");
    }
}

/// Two Removes of the same leaf: `LeafTouchedTwice`, state unchanged.
#[test]
fn two_removes_of_one_leaf_are_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim) = forged_group(suite, true);
        let commit = forged.commit(
            by_value(vec![Proposal::remove(2), Proposal::remove(2)]),
            None,
            Spoil::None,
        );
        expect_rejected(&mut victim, &commit, "two Removes of leaf 2", |e| {
            is_list_error(e, |l| {
                matches!(l, ProposalListError::LeafTouchedTwice { .. })
            })
        });
        // A Remove of a blank leaf, and the committer removing itself.
        let commit = forged.commit(by_value(vec![Proposal::remove(7)]), None, Spoil::None);
        expect_rejected(
            &mut victim,
            &commit,
            "a Remove of a leaf outside the tree",
            |e| {
                is_list_error(e, |l| {
                    matches!(l, ProposalListError::RemoveOfBlankLeaf { .. })
                })
            },
        );
        let commit = forged.commit(by_value(vec![Proposal::remove(0)]), None, Spoil::None);
        expect_rejected(&mut victim, &commit, "the committer removing itself", |e| {
            is_list_error(e, |l| {
                matches!(l, ProposalListError::RemovesCommitter { .. })
            })
        });
    }
}

/// A ReInit together with another proposal: `ReInitNotAlone`, state unchanged.
#[test]
fn reinit_with_other_proposals_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim) = forged_group(suite, true);
        let reinit = Proposal::ReInit(ReInit {
            group_id: VLBytes::new(b"next group".to_vec()),
            version: ProtocolVersion::MLS10,
            cipher_suite: suite,
            extensions: Vec::new(),
        });
        let commit = forged.commit(
            by_value(vec![reinit, Proposal::remove(2)]),
            None,
            Spoil::None,
        );
        expect_rejected(&mut victim, &commit, "ReInit with a Remove", |e| {
            is_list_error(e, |l| matches!(l, ProposalListError::ReInitNotAlone { .. }))
        });
    }
}

/// An ExternalInit in a member's commit: `ExternalInitInMemberCommit`, state unchanged.
#[test]
fn external_init_in_a_member_commit_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim) = forged_group(suite, true);
        let kem_output = forged
            .cs()
            .random_vec(if suite == CipherSuite(2) { 65 } else { 32 })
            .expect("random");
        let commit = forged.commit(
            by_value(vec![Proposal::ExternalInit(ExternalInit {
                kem_output: VLBytes::new(kem_output),
            })]),
            None,
            Spoil::None,
        );
        expect_rejected(
            &mut victim,
            &commit,
            "ExternalInit in a member commit",
            |e| {
                is_list_error(e, |l| {
                    matches!(l, ProposalListError::ExternalInitInMemberCommit { .. })
                })
            },
        );
    }
}

/// The committer's own engine refuses to build the forbidden lists too: two Adds with one
/// signature key, two Removes of one leaf, ReInit with another proposal, an ExternalInit.
/// The group state is unchanged and no commit is pending.
#[test]
fn committer_refuses_forbidden_lists() {
    for suite in SUITES.map(CipherSuite) {
        let mut group = real_group(suite, b"real", 3, Vec::new(), &[]);
        let sig = signature_key(suite);
        let a = key_package_with(suite, "twin-a", &sig, &[]);
        let b = key_package_with(suite, "twin-b", &sig, &[]);
        let reinit = Proposal::ReInit(ReInit {
            group_id: VLBytes::new(b"next".to_vec()),
            version: ProtocolVersion::MLS10,
            cipher_suite: suite,
            extensions: Vec::new(),
        });
        let cases: Vec<(&str, Vec<Proposal>)> = vec![
            (
                "two Adds with one key",
                vec![Proposal::add(a.key_package), Proposal::add(b.key_package)],
            ),
            (
                "two Removes of one leaf",
                vec![Proposal::remove(2), Proposal::remove(2)],
            ),
            ("ReInit with a Remove", vec![reinit, Proposal::remove(2)]),
            (
                "ExternalInit",
                vec![Proposal::ExternalInit(ExternalInit {
                    kem_output: VLBytes::new(vec![7; 32]),
                })],
            ),
            ("the committer removing itself", vec![Proposal::remove(0)]),
        ];
        for (what, proposals) in cases {
            let committer = &mut group.members[0];
            let before = state_bytes(committer);
            let mut options = CommitOptions::new();
            for p in proposals {
                options = options.proposal(p);
            }
            match committer.commit(&services(), options, NOW) {
                Err(e) => {
                    assert!(
                        matches!(e, GroupError::InvalidProposalList(_)),
                        "{what}: unexpected error {e:?}"
                    );
                }
                Ok(_) => panic!("suite {suite:?}: the committer built a commit with {what}"),
            }
            assert!(
                !committer.has_pending_commit(),
                "{what}: a commit is pending"
            );
            assert_eq!(state_bytes(committer), before, "{what}: state changed");
        }
        // The group still works.
        group.empty_commit(0);
    }
}

// ---------------------------------------------------------------------------------------------
// Welcome and tree
// ---------------------------------------------------------------------------------------------

/// A Welcome whose ratchet tree has a parent-hash mismatch: the attacker's leaf claims a
/// `parent_hash` that is not its parent's. `InvalidTree(ParentHashInvalid)`; no group.
#[test]
fn parent_hash_mismatch_in_welcome_tree_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let c = cs(suite);
        let (bundle, sig) = key_package(suite, "victim");
        let attacker = signature_key(suite);
        let bogus_parent_hash = c.random_vec(c.params().hash_len()).expect("random");
        let leaf0 = LeafNodeParams::new(suite, Credential::basic(b"attacker".to_vec()))
            .build_fresh(
                c,
                LeafNodeTarget::Commit {
                    group_id: b"forged group",
                    leaf_index: 0,
                    parent_hash: bogus_parent_hash,
                },
                &attacker,
            )
            .expect("leaf")
            .0;
        assert!(matches!(leaf0.leaf_node_source, LeafNodeSource::Commit(_)));
        let root_key = c.hpke_generate_key_pair().expect("key").public_key;
        let (forged, welcome, _) = Forged::new(
            suite,
            &bundle.key_package,
            false,
            Vec::new(),
            &[],
            Some((leaf0, attacker)),
            |tree| {
                tree.set_parent(
                    NodeIndex(1),
                    ParentNode {
                        encryption_key: root_key.into(),
                        parent_hash: VLBytes::new(Vec::new()),
                        unmerged_leaves: vec![1],
                    },
                )
                .expect("set parent")
            },
            false,
        );
        let _ = forged;
        let e = Group::join_from_welcome(
            &services(),
            GroupConfig::default(),
            &welcome,
            &bundle,
            sig,
            None,
            NOW,
        )
        .expect_err("a tree with a parent-hash mismatch");
        assert!(
            matches!(
                e,
                GroupError::InvalidTree(TreeValidationError::ParentHashInvalid(NodeIndex(1)))
            ),
            "suite {suite:?}: {e:?}"
        );
    }
}

/// A Welcome whose ratchet tree does not match the GroupContext's tree hash:
/// `InvalidTree(TreeHashMismatch)`.
#[test]
fn tree_hash_mismatch_in_welcome_tree_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let (bundle, sig) = key_package(suite, "victim");
        let (carol, _) = key_package(suite, "carol");
        let (_, welcome, _) = Forged::new(
            suite,
            &bundle.key_package,
            false,
            Vec::new(),
            &[],
            None,
            |tree| {
                tree.add_leaf(carol.key_package.leaf_node.clone())
                    .expect("add");
            },
            true,
        );
        let e = Group::join_from_welcome(
            &services(),
            GroupConfig::default(),
            &welcome,
            &bundle,
            sig,
            None,
            NOW,
        )
        .expect_err("a tree that is not the group's");
        assert!(
            matches!(
                e,
                GroupError::InvalidTree(TreeValidationError::TreeHashMismatch)
            ),
            "suite {suite:?}: {e:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Required capabilities
// ---------------------------------------------------------------------------------------------

fn required_unknown_extension() -> mls_engine::codec::Extension {
    RequiredCapabilitiesExtension {
        extension_types: vec![UNKNOWN_EXTENSION],
        proposal_types: Vec::new(),
        credential_types: Vec::new(),
    }
    .to_extension()
    .expect("extension")
}

fn missing_capability(e: &GroupError) -> bool {
    let leaf = |l: &LeafNodeValidationError| matches!(l, LeafNodeValidationError::RequiredExtensionNotSupported(t) if *t == UNKNOWN_EXTENSION);
    match e {
        GroupError::InvalidLeafNode(l) => leaf(l),
        GroupError::InvalidKeyPackage(_) | GroupError::InvalidProposalList(_) => {
            // The leaf error is wrapped; its text names the requirement.
            format!("{e:?}").contains("RequiredExtensionNotSupported")
        }
        _ => false,
    }
}

/// The group requires an extension type (`required_capabilities`) the joiner's KeyPackage
/// does not support: the committer refuses the Add; a received Add proposal of it is
/// rejected; a Welcome into such a group is refused by the joiner. All typed, state unchanged.
#[test]
fn key_package_missing_a_required_capability_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let mut group = real_group(
            suite,
            b"requires",
            3,
            vec![required_unknown_extension()],
            &[UNKNOWN_EXTENSION],
        );
        let (lacking, _) = key_package(suite, "lacking");

        // The committer refuses to add it.
        let before = state_bytes(&group.members[0]);
        let e = group.members[0]
            .commit(
                &services(),
                CommitOptions::new().proposal(Proposal::add(lacking.key_package.clone())),
                NOW,
            )
            .expect_err("an Add of a KeyPackage lacking a required capability");
        assert!(missing_capability(&e), "suite {suite:?}: committer: {e:?}");
        assert_eq!(state_bytes(&group.members[0]), before);
        assert!(!group.members[0].has_pending_commit());

        // A member proposing it (the engine may refuse to send it, typed, state unchanged):
        // the receivers reject the proposal.
        let before = state_bytes(&group.members[2]);
        match group.members[2].propose_add(&services(), lacking.key_package.clone()) {
            Ok((proposal, _)) => {
                for receiver in 0..2 {
                    expect_rejected(
                        &mut group.members[receiver],
                        &proposal,
                        "an Add proposal lacking a required capability",
                        missing_capability,
                    );
                }
                group.members[2].clear_pending_proposals();
            }
            Err(e) => {
                assert!(missing_capability(&e), "suite {suite:?}: proposer: {e:?}");
                assert_eq!(state_bytes(&group.members[2]), before);
            }
        }

        // A Welcome into a group that requires it.
        let (bundle, sig) = key_package(suite, "victim");
        let (_, welcome, _) = Forged::new(
            suite,
            &bundle.key_package,
            false,
            vec![required_unknown_extension()],
            &[UNKNOWN_EXTENSION],
            None,
            |_| {},
            false,
        );
        let e = Group::join_from_welcome(
            &services(),
            GroupConfig::default(),
            &welcome,
            &bundle,
            sig,
            None,
            NOW,
        )
        .expect_err("a Welcome into a group whose requirements the joiner lacks");
        assert!(missing_capability(&e), "suite {suite:?}: joiner: {e:?}");

        group.empty_commit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Epoch, group, size
// ---------------------------------------------------------------------------------------------

/// Messages of a past epoch (commit, proposal, application): `StaleEpoch`, state unchanged;
/// a message of a future epoch: `FutureEpoch`.
#[test]
fn stale_and_future_epochs_are_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let mut group = real_group(suite, b"epochs", 3, Vec::new(), &[]);
        let old_app = group.members[2]
            .encrypt_application(&services(), b"old", b"")
            .expect("application");
        let (old_proposal, _) = group.members[2]
            .propose_remove(&services(), LeafIndex(1))
            .expect("proposal");
        group.members[2].clear_pending_proposals();
        let old_commit = group.members[2]
            .commit(&services(), CommitOptions::new().with_path(), NOW)
            .expect("commit")
            .commit;
        group.members[2].clear_pending_commit();
        group.empty_commit(0);
        for (what, message) in [
            ("stale application", &old_app),
            ("stale proposal", &old_proposal),
            ("stale commit", &old_commit),
        ] {
            expect_rejected(&mut group.members[1], message, what, |e| {
                matches!(e, GroupError::StaleEpoch { .. })
            });
        }
        // Member 0 runs ahead; member 1 has not seen its commit.
        let output = group.members[0]
            .commit(&services(), CommitOptions::new().with_path(), NOW)
            .expect("commit");
        group.members[0].merge_pending_commit().expect("merge");
        let ahead = group.members[0]
            .encrypt_application(&services(), b"ahead", b"")
            .expect("application");
        expect_rejected(&mut group.members[1], &ahead, "future epoch", |e| {
            matches!(e, GroupError::FutureEpoch { .. })
        });
        group.members[1]
            .process(&services(), &output.commit, NOW)
            .expect("the commit");
        assert!(matches!(
            group.members[1].process(&services(), &ahead, NOW),
            Ok(ProcessedMessage::Application { .. })
        ));
    }
}

/// Messages of another group (same members' suite and epoch): `WrongGroup`, state unchanged.
#[test]
fn wrong_group_id_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let mut one = real_group(suite, b"group one", 3, Vec::new(), &[]);
        let mut two = real_group(suite, b"group two", 3, Vec::new(), &[]);
        assert_eq!(one.members[0].epoch(), two.members[0].epoch());
        let app = two.members[0]
            .encrypt_application(&services(), b"x", b"")
            .expect("application");
        let (proposal, _) = two.members[0]
            .propose_remove(&services(), LeafIndex(2))
            .expect("proposal");
        let commit = two.members[1]
            .commit(&services(), CommitOptions::new().with_path(), NOW)
            .expect("commit")
            .commit;
        for (what, message) in [
            ("application", &app),
            ("proposal", &proposal),
            ("commit", &commit),
        ] {
            expect_rejected(&mut one.members[1], message, what, |e| {
                matches!(e, GroupError::WrongGroup)
            });
        }
        // A forged group's message with its group_id rewritten: rejected before anything else.
        let (forged, mut victim) = forged_group(suite, true);
        let (message, _) = forged.frame(
            FramedContentBody::Proposal(Proposal::remove(2)),
            None,
            Spoil::None,
        );
        let MlsMessageBody::PublicMessage(mut public) = message.body else {
            unreachable!()
        };
        public.content.group_id = VLBytes::new(b"another group".to_vec());
        let message = MlsMessage::new(MlsMessageBody::PublicMessage(public));
        expect_rejected(&mut victim, &message, "rewritten group_id", |e| {
            matches!(e, GroupError::WrongGroup)
        });
        one.empty_commit(2);
        two.members[1].clear_pending_commit();
    }
}

/// Oversize messages (issue 3): with `GroupConfig::max_message_size` set, an encoded message
/// above the limit is refused by `process_bytes` before decoding with `MessageTooLarge`, the
/// state unchanged; one at the limit is processed; the default limit (16 MiB) takes a 1 MiB
/// message.
#[test]
fn oversize_message_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let mut group = real_group(suite, b"size", 2, Vec::new(), &[]);
        let big = vec![0x5a; 1 << 20];
        let message = group.members[0]
            .encrypt_application(&services(), &big, b"")
            .expect("application");
        let bytes = message.to_bytes().expect("encode");
        assert!(bytes.len() > 1 << 20);

        let receiver = &mut group.members[1];
        let default_config = *receiver.config();
        receiver.set_config(GroupConfig {
            max_message_size: 64 * 1024,
            ..default_config
        });
        let before = state_bytes(receiver);
        match receiver.process_bytes(&services(), &bytes, NOW) {
            Err(GroupError::MessageTooLarge { size, max }) => {
                assert_eq!(size, bytes.len());
                assert_eq!(max, 64 * 1024);
            }
            other => panic!("suite {suite:?}: an oversize message: {other:?}"),
        }
        assert_eq!(
            state_bytes(receiver),
            before,
            "oversize message changed the state"
        );

        // A message exactly at the limit is processed.
        receiver.set_config(GroupConfig {
            max_message_size: bytes.len() as u32,
            ..default_config
        });
        match receiver.process_bytes(&services(), &bytes, NOW) {
            Ok(ProcessedMessage::Application { data, .. }) => assert_eq!(data, big),
            other => panic!("suite {suite:?}: a message at the limit: {other:?}"),
        }
        receiver.set_config(default_config);
        let again = group.members[0]
            .encrypt_application(&services(), &big, b"")
            .expect("application");
        let again = again.to_bytes().expect("encode");
        assert!(matches!(
            group.members[1].process_bytes(&services(), &again, NOW),
            Ok(ProcessedMessage::Application { .. })
        ));
        group.empty_commit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// UpdatePaths (§7.5, §7.9, §12.4.2)
// ---------------------------------------------------------------------------------------------

type Tamper = fn(&mut UpdatePath, &Forged);
type Check = fn(&GroupError) -> bool;

/// Re-signs the attacker's UpdatePath leaf after an edit.
fn resign(path: &mut UpdatePath, f: &Forged) {
    path.leaf_node
        .sign(
            f.cs(),
            &f.attacker.private_key,
            f.context.group_id.as_slice(),
            0,
        )
        .expect("sign");
}

/// A forged commit with a valid UpdatePath is accepted; with the path tampered (a node key
/// swapped, the leaf's parent hash wrong but re-signed, the leaf signature broken, a node
/// missing, the victim's ciphertext spoilt, the leaf reusing the victim's key) it is
/// rejected with a typed error and the state unchanged.
#[test]
fn tampered_update_paths_are_rejected() {
    let cases: Vec<(&str, Tamper, Check)> = vec![
        (
            "root key swapped (parent-hash chain broken)",
            |path, f| {
                let last = path.nodes.len() - 1;
                path.nodes[last].encryption_key = f
                    .cs()
                    .hpke_generate_key_pair()
                    .expect("key")
                    .public_key
                    .into();
            },
            |e| {
                matches!(
                    e,
                    GroupError::TreeKem(
                        TreeKemError::ParentHashMismatch | TreeKemError::PublicKeyMismatch(_)
                    )
                )
            },
        ),
        (
            "leaf parent_hash wrong, leaf re-signed",
            |path, f| {
                let nh = f.nh();
                path.leaf_node.leaf_node_source =
                    LeafNodeSource::Commit(VLBytes::new(f.cs().random_vec(nh).expect("random")));
                resign(path, f);
            },
            |e| matches!(e, GroupError::TreeKem(TreeKemError::ParentHashMismatch)),
        ),
        (
            "leaf signature broken",
            |path, _| {
                let mut sig = path.leaf_node.signature.as_slice().to_vec();
                sig[3] ^= 1;
                path.leaf_node.signature = VLBytes::new(sig);
            },
            |e| {
                matches!(
                    e,
                    GroupError::InvalidLeafNode(LeafNodeValidationError::InvalidSignature(_))
                        | GroupError::TreeKem(TreeKemError::LeafSignature(_))
                )
            },
        ),
        (
            "a path node missing",
            |path, _| {
                path.nodes.pop();
            },
            |e| {
                matches!(
                    e,
                    GroupError::TreeKem(TreeKemError::PathLengthMismatch { .. })
                )
            },
        ),
        (
            "the victim's ciphertext spoilt",
            |path, _| {
                // Node 1 (parent of leaves 0 and 1) is encrypted to the victim's leaf only.
                let ct = &mut path.nodes[0].encrypted_path_secret[0];
                let mut bytes = ct.ciphertext.as_slice().to_vec();
                bytes[0] ^= 1;
                ct.ciphertext = VLBytes::new(bytes);
            },
            |e| matches!(e, GroupError::TreeKem(TreeKemError::Crypto(_))),
        ),
        (
            "the new leaf reuses the victim's encryption key",
            |path, f| {
                path.leaf_node.encryption_key = f
                    .tree
                    .leaf(LeafIndex(1))
                    .expect("victim")
                    .encryption_key
                    .clone();
                resign(path, f);
            },
            |e| {
                matches!(
                    e,
                    GroupError::TreeKem(
                        TreeKemError::PublicKeyInUse | TreeKemError::ParentHashMismatch
                    ) | GroupError::InvalidLeafNode(
                        LeafNodeValidationError::EncryptionKeyNotUnique
                    )
                )
            },
        ),
    ];
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim) = forged_group(suite, true);
        for (what, tamper, check) in &cases {
            let commit = forged.commit_with_path(*tamper);
            let e = expect_rejected(&mut victim, &commit, what, check);
            println!("suite {suite:?}: {what}: {e}");
        }
        let good = forged.commit_with_path(|_, _| {});
        match victim.process(&services(), &good, NOW) {
            Ok(ProcessedMessage::Commit { epoch: 2, .. }) => {}
            other => panic!("suite {suite:?}: the forged commit with path: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Welcomes with a path secret (§12.4.3.1)
// ---------------------------------------------------------------------------------------------

/// How a forged Welcome into a two-member group whose tree has a committer path is spoilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WelcomeSpoil {
    None,
    /// The joiner's `path_secret` is not the one of the common ancestor.
    WrongPathSecret,
    /// No `path_secret`, although the joiner's parent is set.
    MissingPathSecret,
    /// The GroupInfo names a signer outside the tree.
    SignerOutOfRange,
    /// The GroupInfo's confirmation tag is wrong (re-signed).
    ConfirmationTag,
    /// The GroupInfo signature is wrong.
    GroupInfoSignature,
}

/// A Welcome into a forged group: the attacker (leaf 0) added the victim (leaf 1) with a
/// commit with path, so the root is set and the victim gets its path secret.
fn forged_welcome_with_path(
    suite: CipherSuite,
    victim: &KeyPackage,
    spoil: WelcomeSpoil,
) -> Welcome {
    let cs = cs(suite);
    let nh = cs.params().hash_len();
    let attacker = signature_key(suite);
    let (leaf0, _) = LeafNodeParams::new(suite, Credential::basic(b"attacker".to_vec()))
        .build_fresh(
            cs,
            LeafNodeTarget::KeyPackage {
                lifetime: lifetime(),
            },
            &attacker,
        )
        .expect("leaf");
    let mut tree = RatchetTree::new(leaf0.clone());
    tree.add_leaf(victim.leaf_node.clone()).expect("add victim");
    let confirmed = cs.random_vec(nh).expect("random");
    let mut context = GroupContext {
        version: ProtocolVersion::MLS10,
        cipher_suite: suite,
        group_id: VLBytes::new(b"forged group".to_vec()),
        epoch: 1,
        tree_hash: VLBytes::new(Vec::new()),
        confirmed_transcript_hash: VLBytes::new(confirmed.clone()),
        extensions: Vec::new(),
    };
    let created = create_update_path(
        cs,
        &mut tree,
        LeafIndex(0),
        NewLeaf {
            template: leaf0,
            key_pair: cs.hpke_generate_key_pair().expect("key"),
            signature_key: &attacker.private_key,
        },
        cs.random_secret().expect("random"),
        &[LeafIndex(1)],
        &mut context,
    )
    .expect("path");
    assert_eq!(
        context.tree_hash.as_slice(),
        tree.tree_hash(cs).expect("hash")
    );
    let joiner_secret = cs.random_secret().expect("random");
    let schedule = KeySchedule::from_joiner_secret(cs, joiner_secret.clone(), Secret::zero(nh))
        .expect("schedule");
    let welcome_key_nonce = schedule.welcome_key_nonce(cs).expect("welcome key");
    let secrets = schedule
        .finish(cs, &encode(&context).expect("encode"))
        .expect("epoch secrets");
    let mut tag = secrets.confirmation_tag(cs, &confirmed);
    if spoil == WelcomeSpoil::ConfirmationTag {
        tag[1] ^= 1;
    }
    let mut info = GroupInfo {
        group_context: context,
        extensions: vec![RatchetTreeExtension {
            ratchet_tree: tree.to_nodes(),
        }
        .to_extension()
        .expect("extension")],
        confirmation_tag: VLBytes::new(tag),
        signer: if spoil == WelcomeSpoil::SignerOutOfRange {
            7
        } else {
            0
        },
        signature: VLBytes::new(Vec::new()),
    };
    info.sign(cs, &attacker.private_key).expect("sign");
    if spoil == WelcomeSpoil::GroupInfoSignature {
        let mut sig = info.signature.as_slice().to_vec();
        sig[5] ^= 1;
        info.signature = VLBytes::new(sig);
    }
    let correct = created
        .path_secret_for(LeafIndex(0), LeafIndex(1))
        .expect("path secret")
        .clone();
    let wrong = cs.random_secret().expect("random");
    let path_secret = match spoil {
        WelcomeSpoil::WrongPathSecret => Some(&wrong),
        WelcomeSpoil::MissingPathSecret => None,
        _ => Some(&correct),
    };
    build_welcome(
        cs,
        &info,
        &joiner_secret,
        &welcome_key_nonce,
        &[],
        &[NewMemberSecrets {
            key_package: victim,
            path_secret,
        }],
    )
    .expect("welcome")
}

/// Forged Welcomes with a wrong or missing path secret, a GroupInfo signer outside the tree,
/// a wrong confirmation tag or GroupInfo signature, or for another KeyPackage: each refused
/// with a typed error; the well-formed one is accepted.
#[test]
fn spoilt_welcomes_are_refused() {
    for suite in SUITES.map(CipherSuite) {
        let (bundle, sig) = key_package(suite, "victim");
        let join = |welcome: &Welcome| {
            Group::join_from_welcome(
                &services(),
                GroupConfig::default(),
                welcome,
                &bundle,
                sig.clone(),
                None,
                NOW,
            )
        };
        let cases: [(WelcomeSpoil, Check); 5] = [
            (WelcomeSpoil::WrongPathSecret, |e| {
                matches!(
                    e,
                    GroupError::TreeKem(
                        TreeKemError::PrivateKeyMismatch(_) | TreeKemError::PublicKeyMismatch(_)
                    )
                )
            }),
            (WelcomeSpoil::MissingPathSecret, |e| {
                // §12.4.3.1 does not say a path secret must come; without it the joiner
                // lacks the root key. Either refused at once, or refused by this test below.
                !matches!(e, GroupError::Crypto(_))
            }),
            (WelcomeSpoil::SignerOutOfRange, |e| {
                matches!(
                    e,
                    GroupError::UnknownGroupInfoSigner(7) | GroupError::Welcome(_)
                )
            }),
            (WelcomeSpoil::ConfirmationTag, |e| {
                matches!(e, GroupError::BadConfirmationTag | GroupError::Welcome(_))
            }),
            (WelcomeSpoil::GroupInfoSignature, |e| {
                matches!(
                    e,
                    GroupError::BadGroupInfoSignature | GroupError::Welcome(_)
                )
            }),
        ];
        for (spoil, check) in cases {
            let welcome = forged_welcome_with_path(suite, &bundle.key_package, spoil);
            match join(&welcome) {
                Err(e) => {
                    assert!(check(&e), "suite {suite:?}: {spoil:?}: {e:?}");
                    println!("suite {suite:?}: {spoil:?}: {e}");
                }
                Ok(group) if spoil == WelcomeSpoil::MissingPathSecret => {
                    println!("suite {suite:?}: {spoil:?}: accepted (no check at join)");
                    drop(group);
                }
                Ok(_) => panic!("suite {suite:?}: a Welcome with {spoil:?} was accepted"),
            }
        }
        let good = forged_welcome_with_path(suite, &bundle.key_package, WelcomeSpoil::None);
        let group = join(&good).expect("the well-formed Welcome");
        assert_eq!(group.epoch(), 1);
        // A Welcome that has no entry for this KeyPackage.
        let (other, other_sig) = key_package(suite, "other");
        let e = Group::join_from_welcome(
            &services(),
            GroupConfig::default(),
            &good,
            &other,
            other_sig,
            None,
            NOW,
        )
        .expect_err("a Welcome for another KeyPackage");
        assert!(
            matches!(e, GroupError::Welcome(_)),
            "suite {suite:?}: {e:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Senders (§6.1, §6.3, §12.1.8)
// ---------------------------------------------------------------------------------------------

/// A forged PrivateMessage from leaf 0 (the forger holds the epoch's secret tree).
fn forged_private(
    forged: &Forged,
    secret_tree: &mut SecretTree,
    body: FramedContentBody,
    signer: &SignatureKeyPair,
) -> MlsMessage {
    let cs = forged.cs();
    let content = FramedContent {
        group_id: forged.context.group_id.clone(),
        epoch: forged.context.epoch,
        sender: mls_engine::codec::Sender::Member(0),
        authenticated_data: VLBytes::new(Vec::new()),
        body,
    };
    let auth = sign_private(cs, content, &forged.context, &signer.private_key).expect("sign");
    let message = protect_private(
        cs,
        &auth,
        secret_tree,
        &forged.secrets.sender_data_secret,
        &PrivateMessageOptions::default(),
    )
    .expect("protect");
    MlsMessage::new(MlsMessageBody::PrivateMessage(message))
}

/// A PrivateMessage that decrypts but whose signature is not the sender's: `BadSignature`,
/// and the ratchet generation is not used up (the same generation, well signed, opens
/// afterwards): the state is unchanged. Also for a handshake (proposal) PrivateMessage.
#[test]
fn private_message_with_bad_signature_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim) = forged_group(suite, true);
        let tree = SecretTree::new(
            forged.cs(),
            forged.secrets.encryption_secret.clone(),
            forged.tree.n_leaves(),
        )
        .expect("secret tree");
        let stranger = signature_key(suite);
        for body in [
            FramedContentBody::Application(VLBytes::new(b"hello".to_vec())),
            FramedContentBody::Proposal(Proposal::remove(2)),
        ] {
            let bad = forged_private(&forged, &mut tree.clone(), body.clone(), &stranger);
            expect_rejected(
                &mut victim,
                &bad,
                "PrivateMessage with a bad signature",
                |e| matches!(e, GroupError::BadSignature),
            );
            let good = forged_private(&forged, &mut tree.clone(), body, &forged.attacker);
            let processed = victim
                .process(&services(), &good, NOW)
                .expect("the same generation, well signed");
            assert!(matches!(
                processed,
                ProcessedMessage::Application { .. } | ProcessedMessage::Proposal { .. }
            ));
            // Its replay: the generation is used now.
            expect_rejected(&mut victim, &good, "replayed PrivateMessage", |_| true);
        }
    }
}

/// A message from a sender leaf that is blank or outside the tree: `UnknownSender`; from
/// an external sender the group does not list: `UnknownExternalSender`; a member message
/// naming the victim's own leaf but signed by someone else: rejected. State unchanged.
#[test]
fn unknown_senders_are_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let (forged, mut victim) = forged_group(suite, true);
        let cs = forged.cs();
        // Leaf 3 is a blank leaf of the tree (three members, four leaves), 5 is outside it.
        for leaf in [3u32, 5, 1] {
            let content = FramedContent {
                group_id: forged.context.group_id.clone(),
                epoch: forged.context.epoch,
                sender: mls_engine::codec::Sender::Member(leaf),
                authenticated_data: VLBytes::new(Vec::new()),
                body: FramedContentBody::Proposal(Proposal::remove(2)),
            };
            let auth = sign_public(cs, content, &forged.context, &forged.attacker.private_key)
                .expect("sign");
            let message = protect_public(
                cs,
                auth,
                &forged.context,
                Some(&forged.secrets.membership_key),
            )
            .expect("protect");
            let message = MlsMessage::new(MlsMessageBody::PublicMessage(message));
            if leaf != 1 {
                expect_rejected(
                    &mut victim,
                    &message,
                    "a blank or absent sender leaf",
                    |e| matches!(e, GroupError::UnknownSender(l) if *l == leaf),
                );
            } else {
                expect_rejected(
                    &mut victim,
                    &message,
                    "a forged message from our leaf",
                    |e| matches!(e, GroupError::BadSignature | GroupError::OwnLeafMessage),
                );
            }
        }
        let server = signature_key(suite);
        let message = external_proposal(
            &services(),
            &forged.context,
            0,
            Proposal::remove(2),
            &server,
            b"",
        )
        .expect("external proposal");
        expect_rejected(&mut victim, &message, "an unlisted external sender", |e| {
            matches!(e, GroupError::UnknownExternalSender(0))
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Forged messages with random contents: no panic, typed errors, state unchanged
// ---------------------------------------------------------------------------------------------

mod random_forgeries {
    use super::*;
    use mls_engine::codec::{Extension, PreSharedKeyID, Sender};
    use proptest::prelude::*;
    use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

    /// Leaf indices worth trying: the members, blanks, the edge of the tree, overflow.
    fn leaf_index() -> impl Strategy<Value = u32> {
        prop_oneof![
            4 => 0u32..4,
            1 => Just(u32::MAX),
            1 => Just(u32::MAX / 2),
            1 => Just(1u32 << 31),
            1 => any::<u32>(),
        ]
    }

    /// A proposal as the forger may put it into a commit (by value).
    #[derive(Debug, Clone)]
    enum P {
        Add {
            duplicate_of_victim: bool,
        },
        Update,
        Remove(u32),
        Psk {
            external: bool,
            epoch: u64,
            nonce_len: usize,
        },
        ReInit {
            suite: u16,
        },
        ExternalInit {
            len: usize,
        },
        Gce {
            extension_type: u16,
            data: Vec<u8>,
        },
    }

    fn proposal() -> impl Strategy<Value = P> {
        prop_oneof![
            2 => any::<bool>().prop_map(|d| P::Add { duplicate_of_victim: d }),
            1 => Just(P::Update),
            3 => leaf_index().prop_map(P::Remove),
            1 => (any::<bool>(), prop_oneof![Just(0u64), Just(1), Just(u64::MAX)], 0usize..40)
                .prop_map(|(external, epoch, nonce_len)| P::Psk { external, epoch, nonce_len }),
            1 => prop_oneof![Just(1u16), Just(2), Just(3), any::<u16>()].prop_map(|suite| P::ReInit { suite }),
            1 => (0usize..70).prop_map(|len| P::ExternalInit { len }),
            1 => (prop_oneof![Just(1u16), Just(2), Just(3), Just(4), Just(5), Just(10), any::<u16>()],
                  prop::collection::vec(any::<u8>(), 0..12))
                .prop_map(|(extension_type, data)| P::Gce { extension_type, data }),
        ]
    }

    fn build(p: &P, forged: &Forged, victim: &Group) -> Proposal {
        let suite = forged.suite;
        match p {
            P::Add {
                duplicate_of_victim,
            } => {
                let (bundle, _) = key_package(suite, "joiner");
                let mut kp = bundle.key_package;
                if *duplicate_of_victim {
                    kp.leaf_node.signature_key =
                        victim.own_leaf_node().expect("leaf").signature_key.clone();
                }
                Proposal::add(kp)
            }
            P::Update => Proposal::update(forged.update_leaf()),
            P::Remove(leaf) => Proposal::remove(*leaf),
            P::Psk {
                external,
                epoch,
                nonce_len,
            } => {
                let nonce = vec![9u8; *nonce_len];
                Proposal::pre_shared_key(if *external {
                    PreSharedKeyID::external(b"unknown psk".to_vec(), nonce)
                } else {
                    PreSharedKeyID::resumption(
                        mls_engine::codec::ResumptionPSKUsage::Application,
                        forged.context.group_id.as_slice().to_vec(),
                        *epoch,
                        nonce,
                    )
                })
            }
            P::ReInit { suite } => Proposal::ReInit(ReInit {
                group_id: VLBytes::new(b"new".to_vec()),
                version: ProtocolVersion::MLS10,
                cipher_suite: CipherSuite(*suite),
                extensions: Vec::new(),
            }),
            P::ExternalInit { len } => Proposal::ExternalInit(ExternalInit {
                kem_output: VLBytes::new(vec![3u8; *len]),
            }),
            P::Gce {
                extension_type,
                data,
            } => Proposal::GroupContextExtensions(mls_engine::codec::GroupContextExtensions {
                extensions: vec![Extension {
                    extension_type: ExtensionType(*extension_type),
                    extension_data: VLBytes::new(data.clone()),
                }],
            }),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
            max_shrink_iters: 64,
            failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
            ..ProptestConfig::default()
        })]

        /// Commits and proposals with random (mostly invalid) contents, correctly signed and
        /// tagged by the forger, from random sender leaves: the victim never panics; it
        /// either accepts (then its state is consistent: next epoch, round-trips) or rejects
        /// with its state unchanged.
        #[test]
        fn forged_random_messages(
            suite in prop_oneof![4 => Just(1u16), 1 => Just(2u16), 1 => Just(3u16)],
            proposals in prop::collection::vec(proposal(), 0..5),
            references in prop_oneof![
                4 => Just(Vec::new()),
                1 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..2),
            ],
            with_path in any::<bool>(),
            as_proposal in any::<bool>(),
            sender in prop_oneof![3 => Just(0u32), 1 => leaf_index()],
        ) {
            let (forged, mut victim) = forged_group(CipherSuite(suite), true);
            let built: Vec<Proposal> = proposals.iter().map(|p| build(p, &forged, &victim)).collect();
            let cs = forged.cs();
            let message = if as_proposal {
                let body = FramedContentBody::Proposal(
                    built.first().cloned().unwrap_or_else(|| Proposal::remove(2)),
                );
                let content = FramedContent {
                    group_id: forged.context.group_id.clone(),
                    epoch: forged.context.epoch,
                    sender: Sender::Member(sender),
                    authenticated_data: VLBytes::new(Vec::new()),
                    body,
                };
                let auth = sign_public(cs, content, &forged.context, &forged.attacker.private_key)
                    .expect("sign");
                let m = protect_public(cs, auth, &forged.context, Some(&forged.secrets.membership_key))
                    .expect("protect");
                MlsMessage::new(MlsMessageBody::PublicMessage(m))
            } else {
                let mut list = by_value(built);
                for r in references {
                    list.push(ProposalOrRef::Reference(ProposalRef::from(r)));
                }
                if with_path {
                    let mut m = forged.commit_with_path(|_, _| {});
                    if let MlsMessageBody::PublicMessage(pm) = &mut m.body {
                        if let FramedContentBody::Commit(c) = &mut pm.content.body {
                            c.proposals = list;
                        }
                    }
                    // Re-sign and re-tag the edited commit (its confirmation tag is stale).
                    let MlsMessageBody::PublicMessage(pm) = m.body else { unreachable!() };
                    let auth = sign_public(cs, pm.content, &forged.context, &forged.attacker.private_key)
                        .expect("sign");
                    let mut auth = auth;
                    auth.auth.confirmation_tag = pm.auth.confirmation_tag;
                    let m = protect_public(cs, auth, &forged.context, Some(&forged.secrets.membership_key))
                        .expect("protect");
                    MlsMessage::new(MlsMessageBody::PublicMessage(m))
                } else {
                    forged.commit(list, None, Spoil::None)
                }
            };
            let before = state_bytes(&victim);
            let epoch = victim.epoch();
            match victim.process(&services(), &message, NOW) {
                Ok(ProcessedMessage::Proposal { .. }) => {
                    prop_assert_eq!(victim.epoch(), epoch);
                }
                Ok(ProcessedMessage::Commit { epoch: e, .. }) => {
                    prop_assert_eq!(e, epoch + 1);
                    let bytes = state_bytes(&victim);
                    let restored = Group::from_bytes(&bytes).expect("restores");
                    prop_assert_eq!(state_bytes(&restored), bytes);
                }
                Ok(other) => prop_assert!(false, "accepted as {:?}", other),
                Err(_) => prop_assert_eq!(state_bytes(&victim), before, "rejected but changed"),
            }
        }
    }
}

/// A Welcome whose ratchet tree holds the same leaf twice (duplicate signature and
/// encryption keys, §7.3 / §12.4.3.1): refused with a typed error.
#[test]
fn duplicate_leaves_in_welcome_tree_are_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let (bundle, sig) = key_package(suite, "victim");
        let (_, welcome, _) = Forged::new(
            suite,
            &bundle.key_package,
            false,
            Vec::new(),
            &[],
            None,
            |tree| {
                let twin = tree.leaf(LeafIndex(0)).expect("leaf 0").clone();
                tree.add_leaf(twin).expect("add");
            },
            false,
        );
        let e = Group::join_from_welcome(
            &services(),
            GroupConfig::default(),
            &welcome,
            &bundle,
            sig,
            None,
            NOW,
        )
        .expect_err("a tree with a duplicate leaf");
        assert!(
            matches!(
                e,
                GroupError::InvalidTree(TreeValidationError::DuplicateKey)
                    | GroupError::InvalidLeafNode(
                        LeafNodeValidationError::SignatureKeyNotUnique
                            | LeafNodeValidationError::EncryptionKeyNotUnique
                    )
            ),
            "suite {suite:?}: {e:?}"
        );
    }
}

/// §12.4.1, §12.4.3.1: a Welcome from a commit with a path whose GroupSecrets lack the
/// `path_secret` (re-encrypted by a malicious committer) is refused: the joiner would lack the
/// private key of its common ancestor with the committer. The genuine Welcome is accepted.
#[test]
fn welcome_without_the_path_secret_is_rejected() {
    for suite in SUITES.map(CipherSuite) {
        let cs = cs(suite);
        let mut g = real_group(suite, b"missing-path-secret", 3, vec![], &[]);
        let (bundle, sig) = key_package(suite, "joiner");
        let output = g.members[0]
            .commit(
                &services(),
                CommitOptions::new()
                    .proposal(Proposal::add(bundle.key_package.clone()))
                    .with_path(),
                NOW,
            )
            .expect("commit");
        let mut welcome = output.welcome.expect("welcome");
        let mut secrets = mls_engine::welcome::decrypt_group_secrets(
            cs,
            &welcome,
            &bundle.key_package,
            &bundle.reference,
            &bundle.private.init_private_key,
        )
        .expect("decrypt");
        assert!(secrets.path_secret.is_some(), "the genuine Welcome has it");
        let join = |w: &Welcome| {
            Group::join_from_welcome(
                &services(),
                GroupConfig::default(),
                w,
                &bundle,
                sig.clone(),
                None,
                NOW,
            )
        };
        assert!(join(&welcome).is_ok());
        secrets.path_secret = None;
        let sealed = cs
            .encrypt_with_label(
                bundle.key_package.init_key.as_slice(),
                "Welcome",
                welcome.encrypted_group_info.as_slice(),
                &encode(&secrets).expect("encode"),
            )
            .expect("seal");
        let entry = welcome
            .secrets
            .iter_mut()
            .find(|s| s.new_member == bundle.reference)
            .expect("entry");
        entry.encrypted_group_secrets.kem_output = VLBytes::new(sealed.kem_output);
        entry.encrypted_group_secrets.ciphertext = VLBytes::new(sealed.ciphertext);
        assert!(matches!(join(&welcome), Err(GroupError::MissingPathSecret)));
    }
}
