//! Property test of virtual clients through the §5.1 delivery service (issue 5): random
//! interleavings of operations by 2-4 emulator clients of one virtual client and 2-4 plain
//! members over 2-3 higher-level groups converge.
//!
//! * Setup (generated): the virtual client `vc` with 2-4 emulator clients (the emulation group,
//!   cipher suite 1, 2 or 3); 2-4 plain members (`mls_engine::group::Group`); 2-3 higher-level
//!   groups, each of suite 1, 2 or 3, created by a plain member who adds some other plain
//!   members and the virtual client. The virtual client enters each group through the draft's
//!   `KeyPackageUpload` action (§5.5.1): one emulator client makes the KeyPackage and announces
//!   it in an emulation-group Commit; the creator takes it from the delivery service's
//!   KeyPackage directory; every emulator client joins from the one Welcome by `KeyPackageRef`
//!   (`join_from_welcome_by_ref`), also those that never saw the KeyPackage.
//! * Then 10-30 operations ([`Op`]): emulator commits (empty, or adding / removing a plain
//!   member; removing a leaf without a member is refused and changes nothing), an emulator's
//!   Update proposal committed by a plain member (or by a sibling when no plain member is
//!   left), plain members' commits (empty, add / remove, Updates), application
//!   messages from emulator clients and plain members, races (two emulator clients commit in
//!   one epoch; an emulator client and a plain member commit in one epoch; two emulator clients
//!   send an application message at one generation; two emulator clients commit in the
//!   emulation group; a sibling commits from the previous emulation epoch before anyone
//!   processed the new one), emulation-group epoch changes (sometimes with a `KeyPackageUpload`), and
//!   an emulator client continuing from its serialised state (`to_bytes` / `from_bytes`).
//! * Every message goes through [`InMemoryDeliveryService`]: Commits are compare-and-append on
//!   the group's epoch, a virtual client's messages on its own sequence; the loser of a race
//!   abandons its pending commit (or its message), processes the winner's, and may send again.
//!   A case either confirms accepted commits at once and drops their echo, or merges them when
//!   the echo comes back (generated). In some cases, an emulator client that made a message
//!   continues from its serialised state before the delivery service answers.
//! * After every operation, once every client drained and processed its mailbox: in every
//!   group every participant (all emulator clients, the plain members in it) agrees on epoch
//!   and `epoch_authenticator`, the delivery service on the epoch, the tree on the membership;
//!   every emulator client's leaf secrets are those of the leaf in the tree
//!   (`leaf_is_consistent`); every emulator client is in the same emulation epoch; every
//!   application message was read, with its plaintext, by every other participant of its
//!   group, and nothing else was read.
//!
//! Seeds as in `mls-engine`'s `group_properties`: the operation sequences come from
//! proptest's RNG (`PROPTEST_RNG_SEED` fixes it, `PROPTEST_CASES` changes the number of
//! cases), the cryptographic randomness is not seeded; shrinking is bounded; a failing case
//! prints its minimal [`Setup`] and operation list, which [`run`] replays in a plain test.

use std::collections::BTreeMap;
use std::fmt::Debug;

use delivery_service::{
    ClientId, Delivered, DeliveryService, GroupId, GroupMessage, InMemoryDeliveryService,
    KeyPackageEntry, MessageKind, SendRequest, ServiceError, VcSequence,
};
use mls_engine::codec::{Credential, KeyPackage, MlsMessage, MlsMessageBody, Proposal, Welcome};
use mls_engine::crypto::{CipherSuite, SignatureKeyPair};
use mls_engine::group::{
    CommitOptions, CommitOutput, Group, GroupConfig, OwnLeaf, ProcessedMessage,
};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use virtual_clients::emulator::{EmulatorClient, RETAINED_EPOCHS};

mod common;
use common::{lifetime, suite, svc, NOW, P};

/// The emulation group's ID (also its name at the delivery service).
const EMULATION: &[u8] = b"vc-emulation";

/// The virtual client's name at the delivery service and its credential in higher-level
/// groups.
const VC: &str = "vc";

// ---------------------------------------------------------------------------------------------
// What a case is made of
// ---------------------------------------------------------------------------------------------

/// One higher-level group of a case.
#[derive(Debug, Clone)]
pub struct GroupSetup {
    /// Its cipher suite.
    pub suite: CipherSuite,
    /// The plain member who creates it (modulo the number of plain members).
    pub creator: u8,
    /// The emulator client that uploads the virtual client's KeyPackage for it (modulo).
    pub uploader: u8,
    /// Bit `j`: plain member `j` is added with the virtual client (the creator always is).
    pub members: u8,
}

/// The population of a case.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Emulator clients of the virtual client (2-4).
    pub emulators: usize,
    /// Plain members (2-4).
    pub plains: usize,
    /// The emulation group's cipher suite.
    pub emulation_suite: CipherSuite,
    /// The higher-level groups (2-3).
    pub groups: Vec<GroupSetup>,
    /// Accepted commits are merged at once and their echo dropped (else the echo merges them).
    pub confirm_on_accept: bool,
    /// The emulator client that made a message continues from its serialised state before
    /// the delivery service answers.
    pub restore_midway: bool,
}

/// What a commit changes besides the committer's leaf.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// Nothing: a commit with path.
    Empty,
    /// Plain member `j` (modulo) is removed if it is in the group, else added.
    Toggle(u8),
    /// The removal of a leaf that holds no member (blank or beyond the tree, chosen modulo):
    /// refused, and the emulator client's state is byte-identical.
    RemoveAbsent(u8),
}

/// What a plain member's commit does.
#[derive(Debug, Clone, Copy)]
pub enum PlainChange {
    /// A commit with path.
    Empty,
    /// Another plain member `j` (modulo) is removed if it is in the group, else added (an empty
    /// commit if `j` is the committer).
    Toggle(u8),
    /// Plain member `j` (modulo the group's plain members) proposes an Update, which the
    /// committer commits (its own Update is replaced by the path, §12.2).
    Update(u8),
}

/// One operation. Indices are taken modulo what exists when the operation runs, so every
/// sub-sequence of operations is a valid case (shrinking). An operation that needs a plain
/// member in a group without any does nothing or falls back as documented.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// Emulator client `e` commits in group `g`.
    EmuCommit { e: u8, g: u8, change: Change },
    /// Emulator client `e` proposes an Update; `rekeys` (0-3) emulation-group epoch changes
    /// by its siblings follow; then plain member `by` of the group commits it (a sibling
    /// emulator client if no plain member is in the group).
    EmuUpdate { e: u8, g: u8, by: u8, rekeys: u8 },
    /// Plain member `by` of the group commits.
    PlainCommit { by: u8, g: u8, change: PlainChange },
    /// Plain member `p` of the group proposes an Update; emulator client `e` commits it.
    PlainUpdateByEmu { p: u8, e: u8, g: u8 },
    /// Emulator client `e` sends an application message.
    EmuMessage { e: u8, g: u8 },
    /// Plain member `by` of the group sends an application message.
    PlainMessage { by: u8, g: u8 },
    /// Emulator clients `a` and `b` (another one) both commit in the same epoch; `a` sends
    /// first and wins; `b` abandons its commit, processes `a`'s and, if `retry`, commits again.
    CommitRace { a: u8, b: u8, g: u8, retry: bool },
    /// Emulator client `e` and plain member `by` both commit in the same epoch; the first to
    /// send wins, the loser abandons and, if `retry`, commits again.
    PlainRace {
        e: u8,
        by: u8,
        g: u8,
        plain_first: bool,
        retry: bool,
    },
    /// Emulator clients `a` and `b` (another one) both encrypt an application message at the
    /// same generation; `a`'s is accepted, `b`'s refused (compare-and-append); `b` reads `a`'s
    /// and, if `retry`, sends again.
    MessageRace { a: u8, b: u8, g: u8, retry: bool },
    /// Emulator client `e` commits in the emulation group (a new emulation epoch), with a
    /// `KeyPackageUpload` if `upload`; `rival` (another emulator client) commits in the same
    /// emulation epoch too and loses.
    EmulationEpoch {
        e: u8,
        upload: bool,
        rival: Option<u8>,
    },
    /// Emulator client `e` continues from its serialised state.
    SaveRestore { e: u8 },
    /// Emulator client `a` moves the emulation group on by `lag` epochs (at least 1; the
    /// property takes fewer than `RETAINED_EPOCHS`); before anyone else has processed that,
    /// emulator client `b` (another one) commits in group `g` from the emulation epoch it is
    /// in. Everyone then processes all, in log order (the epoch `b` derived from is among the
    /// newest `RETAINED_EPOCHS` the siblings keep; see
    /// `a_commit_from_an_emulation_epoch_already_deleted_is_a_typed_error` for the boundary).
    LaggingSibling { a: u8, b: u8, g: u8, lag: u8 },
}

// ---------------------------------------------------------------------------------------------
// Errors as strings with context
// ---------------------------------------------------------------------------------------------

type R<T> = Result<T, String>;

trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> R<T>;
}

impl<T, E: Debug> Ctx<T> for Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> R<T> {
        self.map_err(|e| format!("{}: {e:?}", what()))
    }
}

impl<T> Ctx<T> for Option<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> R<T> {
        self.ok_or_else(what)
    }
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> R<()> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

fn encode(message: &MlsMessage) -> R<Vec<u8>> {
    message.to_bytes().ctx(|| "encode".into())
}

fn encode_body(body: MlsMessageBody) -> R<Vec<u8>> {
    encode(&MlsMessage::new(body))
}

fn welcome_of(bytes: &[u8]) -> R<Welcome> {
    match MlsMessage::decode(bytes)
        .ctx(|| "decode Welcome".into())?
        .body
    {
        MlsMessageBody::Welcome(w) => Ok(w),
        _ => Err("not a Welcome".into()),
    }
}

fn key_package_of(bytes: &[u8]) -> R<KeyPackage> {
    match MlsMessage::decode(bytes)
        .ctx(|| "decode KeyPackage".into())?
        .body
    {
        MlsMessageBody::KeyPackage(k) => Ok(k),
        _ => Err("not a KeyPackage".into()),
    }
}

fn pick(selector: u8, len: usize) -> usize {
    usize::from(selector) % len.max(1)
}

// ---------------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------------

/// One emulator client and what the test tracks of it.
struct Emu {
    name: ClientId,
    client: EmulatorClient,
    /// Per group: the virtual client's next sequence as this emulator client has seen it.
    vc_next: BTreeMap<Vec<u8>, VcSequence>,
    /// Application messages read: (group, plaintext).
    received: Vec<(Vec<u8>, Vec<u8>)>,
    /// Application messages it should have read.
    expected: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One plain member.
struct Plain {
    name: ClientId,
    /// Its groups (only those it is in).
    groups: BTreeMap<Vec<u8>, Group>,
    /// KeyPackages it published and not yet used.
    key_packages: Vec<(KeyPackageBundle, SignatureKeyPair)>,
    received: Vec<(Vec<u8>, Vec<u8>)>,
    expected: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Who sent an application message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Emu(usize),
    Plain(usize),
}

/// Everything of a case.
pub struct World {
    ds: InMemoryDeliveryService,
    emus: Vec<Emu>,
    plains: Vec<Plain>,
    /// The higher-level groups: ID and cipher suite.
    groups: Vec<(Vec<u8>, CipherSuite)>,
    confirm_on_accept: bool,
    restore_midway: bool,
    /// Counter for distinct application texts.
    texts: u64,
}

fn vc() -> ClientId {
    ClientId::new(VC)
}

impl World {
    /// Builds the population of `setup` through the delivery service and checks it.
    pub fn new(setup: &Setup) -> R<Self> {
        let mut ds = InMemoryDeliveryService::new();
        let emu_names: Vec<ClientId> = (0..setup.emulators)
            .map(|i| ClientId::new(format!("vc-device-{i}")))
            .collect();
        let plain_names: Vec<ClientId> = (0..setup.plains)
            .map(|j| ClientId::new(format!("member-{j}")))
            .collect();
        for name in emu_names.iter().chain(&plain_names) {
            ds.register_client(name.clone()).ctx(|| "register".into())?;
        }
        ds.register_virtual_client(vc(), &emu_names)
            .ctx(|| "register vc".into())?;
        let es = setup.emulation_suite;
        let credential = Credential::basic(VC.as_bytes().to_vec());
        let first = EmulatorClient::create(
            &svc(),
            EMULATION.to_vec(),
            es,
            OwnLeaf {
                params: EmulatorClient::emulation_leaf_params(
                    es,
                    Credential::basic(emu_names[0].0.clone()),
                ),
                encryption_key: HpkeKeySource::Generate,
                signature_key: suite(es).signature_generate_key_pair().unwrap(),
            },
            lifetime(),
            credential.clone(),
        )
        .ctx(|| "create emulation group".into())?;
        ds.create_group(&emu_names[0], GroupId::new(EMULATION), None, 0)
            .ctx(|| "ds create emulation group".into())?;
        let mut world = World {
            ds,
            emus: vec![Emu {
                name: emu_names[0].clone(),
                client: first,
                vc_next: BTreeMap::new(),
                received: Vec::new(),
                expected: Vec::new(),
            }],
            plains: plain_names
                .iter()
                .map(|name| Plain {
                    name: name.clone(),
                    groups: BTreeMap::new(),
                    key_packages: Vec::new(),
                    received: Vec::new(),
                    expected: Vec::new(),
                })
                .collect(),
            groups: Vec::new(),
            confirm_on_accept: setup.confirm_on_accept,
            restore_midway: setup.restore_midway,
            texts: 0,
        };
        // Device 0 adds the others one by one.
        for name in emu_names.iter().skip(1) {
            let key = suite(es).signature_generate_key_pair().unwrap();
            let device = Credential::basic(name.0.clone());
            let bundle = KeyPackageParams::new(es, device.clone(), lifetime())
                .with_leaf(EmulatorClient::emulation_leaf_params(es, device))
                .build_fresh(suite(es), &key)
                .ctx(|| "device KeyPackage".into())?;
            let epoch = world.emus[0].client.emulation_group().epoch();
            let out = world.emus[0]
                .client
                .add_emulator(&svc(), bundle.key_package.clone(), NOW)
                .ctx(|| "add_emulator".into())?;
            let welcome = out.welcome.clone().ctx(|| "no Welcome".into())?;
            world
                .send_emulation_commit(
                    0,
                    epoch,
                    &out,
                    Some((name.clone(), encode_body(MlsMessageBody::Welcome(welcome))?)),
                )?
                .ctx(|| "emulation add refused".into())?;
            world.drain_all()?;
            let mut joined = None;
            for item in world.ds.drain(name).ctx(|| "drain".into())? {
                if let Delivered::Welcome(w) = item {
                    joined = Some(
                        EmulatorClient::join(
                            &svc(),
                            &welcome_of(&w.message)?,
                            &bundle,
                            key.clone(),
                            credential.clone(),
                            NOW,
                        )
                        .ctx(|| format!("{name} joins the emulation group"))?,
                    );
                }
            }
            world.emus.push(Emu {
                name: name.clone(),
                client: joined.ctx(|| format!("{name} got no Welcome"))?,
                vc_next: BTreeMap::new(),
                received: Vec::new(),
                expected: Vec::new(),
            });
        }
        world.check_emulation()?;
        for (k, g) in setup.groups.iter().enumerate() {
            world.create_group(k, g)?;
        }
        world.check()?;
        Ok(world)
    }

    /// Group `k`: an emulator client uploads a KeyPackage of the virtual client (§5.5.1), a
    /// plain member creates the group and adds the virtual client and some plain members.
    fn create_group(&mut self, k: usize, g: &GroupSetup) -> R<()> {
        let gid = format!("group-{k}").into_bytes();
        let u = pick(g.uploader, self.emus.len());
        let epoch = self.emus[u].client.emulation_group().epoch();
        let (out, kps) = self.emus[u]
            .client
            .publish_key_packages(&svc(), g.suite, lifetime(), 1, CommitOptions::new(), NOW)
            .ctx(|| "publish_key_packages".into())?;
        self.midway(u)?;
        self.send_emulation_commit(u, epoch, &out, None)?
            .ctx(|| "upload commit refused".into())?;
        self.publish_vc_key_packages(u, &kps)?;
        self.drain_all()?;

        let c = pick(g.creator, self.plains.len());
        let group = Group::create(
            &svc(),
            GroupConfig::default(),
            gid.clone(),
            g.suite,
            OwnLeaf {
                params: LeafNodeParams::new(
                    g.suite,
                    Credential::basic(self.plains[c].name.0.clone()),
                ),
                encryption_key: HpkeKeySource::Generate,
                signature_key: suite(g.suite).signature_generate_key_pair().unwrap(),
            },
            lifetime(),
            vec![],
        )
        .ctx(|| "create group".into())?;
        self.plains[c].groups.insert(gid.clone(), group);
        self.ds
            .create_group(&self.plains[c].name, GroupId::new(&gid), None, 0)
            .ctx(|| "ds create group".into())?;
        self.groups.push((gid.clone(), g.suite));
        let mut options =
            CommitOptions::new().proposal(Proposal::add(self.take_key_package(&vc())?));
        let mut recipients = vec![vc()];
        for j in 0..self.plains.len() {
            if j != c && g.members & (1 << j) != 0 {
                self.publish_plain_key_package(j, g.suite)?;
                let name = self.plains[j].name.clone();
                options = options.proposal(Proposal::add(self.take_key_package(&name)?));
                recipients.push(name);
            }
        }
        let out = self.plains[c]
            .groups
            .get_mut(&gid)
            .ctx(|| "creator's group".into())?
            .commit(&svc(), options, NOW)
            .ctx(|| "creator's commit".into())?;
        self.send_plain_commit(c, &gid, 0, &out, recipients, vec![])?
            .ctx(|| "creator's commit refused".into())?;
        self.drain_all()
    }

    fn gid(&self, g: u8) -> Vec<u8> {
        self.groups[pick(g, self.groups.len())].0.clone()
    }

    fn group_suite(&self, gid: &[u8]) -> CipherSuite {
        self.groups
            .iter()
            .find(|(id, _)| id == gid)
            .map(|(_, s)| *s)
            .unwrap_or(CipherSuite(1))
    }

    /// The plain members in group `gid`, in index order.
    fn plains_in(&self, gid: &[u8]) -> Vec<usize> {
        (0..self.plains.len())
            .filter(|j| self.plains[*j].groups.contains_key(gid))
            .collect()
    }

    /// Another emulator client than `a`, chosen by `b`.
    fn other_emu(&self, a: usize, b: u8) -> usize {
        let n = self.emus.len();
        (a + 1 + pick(b, n - 1)) % n
    }

    // ----- KeyPackages -----

    fn publish_vc_key_packages(&mut self, by: usize, kps: &[KeyPackage]) -> R<()> {
        let mut uploads = Vec::new();
        for kp in kps {
            uploads.push(KeyPackageEntry::ordinary(encode_body(
                MlsMessageBody::KeyPackage(kp.clone()),
            )?));
        }
        self.ds
            .publish_key_packages(&self.emus[by].name, &vc(), uploads)
            .ctx(|| "publish vc KeyPackages".into())
    }

    fn publish_plain_key_package(&mut self, j: usize, cipher_suite: CipherSuite) -> R<()> {
        let cs = suite(cipher_suite);
        let key = cs.signature_generate_key_pair().unwrap();
        let plain = &mut self.plains[j];
        let bundle = KeyPackageParams::new(
            cipher_suite,
            Credential::basic(plain.name.0.clone()),
            lifetime(),
        )
        .build_fresh(cs, &key)
        .ctx(|| "plain KeyPackage".into())?;
        let bytes = encode_body(MlsMessageBody::KeyPackage(bundle.key_package.clone()))?;
        plain.key_packages.push((bundle, key));
        self.ds
            .publish_key_packages(
                &plain.name.clone(),
                &plain.name.clone(),
                vec![KeyPackageEntry::ordinary(bytes)],
            )
            .ctx(|| "publish plain KeyPackage".into())
    }

    fn take_key_package(&mut self, owner: &ClientId) -> R<KeyPackage> {
        let bytes = self
            .ds
            .consume_key_package(owner)
            .ctx(|| format!("KeyPackage of {owner}"))?;
        key_package_of(&bytes)
    }

    // ----- Sending -----

    /// Sends emulator client `e`'s pending emulation-group commit; on acceptance merges it
    /// (confirm mode) or leaves it to the echo; on refusal abandons it.
    fn send_emulation_commit(
        &mut self,
        e: usize,
        epoch: u64,
        out: &CommitOutput,
        welcome: Option<(ClientId, Vec<u8>)>,
    ) -> R<Result<(), ServiceError>> {
        let mut request = SendRequest::commit(epoch, encode(&out.commit)?);
        if let Some((to, bytes)) = welcome {
            request = request.with_welcome(vec![to], bytes);
        }
        let emu = &mut self.emus[e];
        match self.ds.send(&GroupId::new(EMULATION), &emu.name, request) {
            Ok(_) => {
                if self.confirm_on_accept {
                    emu.client
                        .confirm_emulation_commit(&svc())
                        .ctx(|| format!("{} confirm_emulation_commit", emu.name))?;
                }
                Ok(Ok(()))
            }
            Err(refused) => {
                emu.client.abandon_emulation_commit();
                Ok(Err(refused))
            }
        }
    }

    /// Sends emulator client `e`'s pending commit `out` in `gid` (made in `epoch`) as the
    /// virtual client; merges it at once in confirm mode; abandons it if refused.
    fn send_emu_commit(
        &mut self,
        e: usize,
        gid: &[u8],
        epoch: u64,
        out: &CommitOutput,
        added: Vec<ClientId>,
        removed: Vec<ClientId>,
    ) -> R<Result<(), ServiceError>> {
        let emu = &mut self.emus[e];
        let expected = emu.vc_next.get(gid).copied().unwrap_or_default();
        let mut request = SendRequest::commit(epoch, encode(&out.commit)?)
            .as_virtual_client(vc(), expected)
            .removing(removed);
        if !added.is_empty() {
            let welcome = out.welcome.clone().ctx(|| "no Welcome".into())?;
            request = request.with_welcome(added, encode_body(MlsMessageBody::Welcome(welcome))?);
        }
        match self.ds.send(&GroupId::new(gid), &emu.name, request) {
            Ok(_) => {
                if self.confirm_on_accept {
                    emu.client
                        .confirm_commit(gid)
                        .ctx(|| format!("{} confirm_commit", emu.name))?;
                }
                Ok(Ok(()))
            }
            Err(refused) => {
                emu.client
                    .abandon_commit(gid)
                    .ctx(|| format!("{} abandon_commit", emu.name))?;
                Ok(Err(refused))
            }
        }
    }

    /// Sends plain member `j`'s pending commit; like [`World::send_emu_commit`].
    fn send_plain_commit(
        &mut self,
        j: usize,
        gid: &[u8],
        epoch: u64,
        out: &CommitOutput,
        added: Vec<ClientId>,
        removed: Vec<ClientId>,
    ) -> R<Result<(), ServiceError>> {
        let mut request = SendRequest::commit(epoch, encode(&out.commit)?).removing(removed);
        if !added.is_empty() {
            let welcome = out.welcome.clone().ctx(|| "no Welcome".into())?;
            request = request.with_welcome(added, encode_body(MlsMessageBody::Welcome(welcome))?);
        }
        let plain = &mut self.plains[j];
        let result = self.ds.send(&GroupId::new(gid), &plain.name, request);
        let group = plain
            .groups
            .get_mut(gid)
            .ctx(|| format!("{} not in group", plain.name))?;
        match result {
            Ok(_) => {
                if self.confirm_on_accept {
                    group
                        .merge_pending_commit()
                        .ctx(|| format!("{} merge_pending_commit", plain.name))?;
                }
                Ok(Ok(()))
            }
            Err(refused) => {
                group.clear_pending_commit();
                Ok(Err(refused))
            }
        }
    }

    /// Records that `text` sent by `from` in `gid` was accepted: every other participant of
    /// the group must read it.
    fn expect_read(&mut self, from: Who, gid: &[u8], text: &[u8]) {
        for (i, emu) in self.emus.iter_mut().enumerate() {
            if from != Who::Emu(i) {
                emu.expected.push((gid.to_vec(), text.to_vec()));
            }
        }
        for (j, plain) in self.plains.iter_mut().enumerate() {
            if from != Who::Plain(j) && plain.groups.contains_key(gid) {
                plain.expected.push((gid.to_vec(), text.to_vec()));
            }
        }
    }

    fn next_text(&mut self, from: Who, gid: &[u8]) -> Vec<u8> {
        self.texts += 1;
        format!(
            "message {} from {from:?} in {}",
            self.texts,
            String::from_utf8_lossy(gid)
        )
        .into_bytes()
    }

    // ----- Receiving -----

    /// Every client drains its mailbox and processes what it got, in order.
    fn drain_all(&mut self) -> R<()> {
        for e in 0..self.emus.len() {
            self.drain_emu(e)?;
        }
        for j in 0..self.plains.len() {
            self.drain_plain(j)?;
        }
        Ok(())
    }

    fn drain_emu(&mut self, e: usize) -> R<()> {
        let confirm = self.confirm_on_accept;
        let emu = &mut self.emus[e];
        let items = self.ds.drain(&emu.name).ctx(|| "drain".into())?;
        for item in items {
            match item {
                Delivered::Welcome(w) => {
                    let welcome = welcome_of(&w.message)?;
                    let gid = emu
                        .client
                        .join_from_welcome_by_ref(&svc(), &welcome, NOW)
                        .ctx(|| format!("{} join_from_welcome_by_ref", emu.name))?;
                    ensure(gid == w.group_id.0, || "joined another group".into())?;
                    emu.vc_next.insert(gid, VcSequence(0));
                }
                Delivered::Message { message, .. } => emu_message(emu, &message, confirm)?,
            }
        }
        Ok(())
    }

    fn drain_plain(&mut self, j: usize) -> R<()> {
        let confirm = self.confirm_on_accept;
        let plain = &mut self.plains[j];
        let items = self.ds.drain(&plain.name).ctx(|| "drain".into())?;
        for item in items {
            match item {
                Delivered::Welcome(w) => {
                    let welcome = welcome_of(&w.message)?;
                    let pos = plain
                        .key_packages
                        .iter()
                        .position(|(b, _)| welcome.secrets_for(&b.reference).is_some())
                        .ctx(|| format!("{}: Welcome for no KeyPackage of its", plain.name))?;
                    let (bundle, key) = plain.key_packages.remove(pos);
                    let group = Group::join_from_welcome(
                        &svc(),
                        GroupConfig::default(),
                        &welcome,
                        &bundle,
                        key,
                        None,
                        NOW,
                    )
                    .ctx(|| format!("{} joins", plain.name))?;
                    ensure(group.group_id() == w.group_id.0.as_slice(), || {
                        "joined another group".into()
                    })?;
                    plain.groups.insert(w.group_id.0.clone(), group);
                }
                Delivered::Message { message, .. } => plain_message(plain, &message, confirm)?,
            }
        }
        Ok(())
    }

    // ----- Checks -----

    fn check_emulation(&mut self) -> R<()> {
        let reference = &self.emus[0].client;
        let epoch = reference.emulation_group().epoch();
        let auth = reference.emulation_group().epoch_authenticator().to_vec();
        let newest = reference.epoch_ids().last().map(|i| i.to_vec());
        for emu in &self.emus {
            let g = emu.client.emulation_group();
            ensure(
                g.epoch() == epoch && g.epoch_authenticator() == auth.as_slice(),
                || format!("{} disagrees on the emulation epoch", emu.name),
            )?;
            ensure(
                emu.client.epoch_ids().last().map(|i| i.to_vec()) == newest,
                || format!("{} has another newest emulation epoch_id", emu.name),
            )?;
        }
        let status = self
            .ds
            .group_status(&GroupId::new(EMULATION))
            .ctx(|| "status".into())?;
        ensure(status.epoch == epoch, || {
            format!(
                "delivery service at emulation epoch {}, clients at {epoch}",
                status.epoch
            )
        })
    }

    /// The invariants after every step (see the module docs).
    pub fn check(&mut self) -> R<()> {
        for name in self
            .emus
            .iter()
            .map(|e| &e.name)
            .chain(self.plains.iter().map(|p| &p.name))
        {
            ensure(self.ds.pending(name) == 0, || {
                format!("{name}: mailbox not empty")
            })?;
        }
        self.check_emulation()?;
        for (gid, _) in &self.groups {
            let gname = String::from_utf8_lossy(gid).into_owned();
            let reference = self.emus[0]
                .client
                .group(gid)
                .ctx(|| format!("{} not in {gname}", self.emus[0].name))?;
            let epoch = reference.epoch();
            let auth = reference.epoch_authenticator().to_vec();
            // The tree holds the virtual client once and exactly the plain members we track.
            let mut in_tree: Vec<Vec<u8>> = reference
                .members()
                .iter()
                .map(|m| m.credential.basic_identity().unwrap_or_default().to_vec())
                .collect();
            in_tree.sort();
            let mut model: Vec<Vec<u8>> = self
                .plains
                .iter()
                .filter(|p| p.groups.contains_key(gid))
                .map(|p| p.name.0.clone())
                .chain([VC.as_bytes().to_vec()])
                .collect();
            model.sort();
            ensure(in_tree == model, || {
                format!("{gname}: tree members {in_tree:?}, expected {model:?}")
            })?;
            for emu in &self.emus {
                let g = emu
                    .client
                    .group(gid)
                    .ctx(|| format!("{} not in {gname}", emu.name))?;
                ensure(
                    g.epoch() == epoch && g.epoch_authenticator() == auth.as_slice(),
                    || {
                        format!(
                            "{}: {gname} epoch {} disagrees (reference {epoch})",
                            emu.name,
                            g.epoch()
                        )
                    },
                )?;
                ensure(
                    emu.client
                        .leaf_is_consistent(&svc(), gid)
                        .ctx(|| "leaf_is_consistent".into())?,
                    || format!("{}: leaf secrets inconsistent in {gname}", emu.name),
                )?;
            }
            for plain in &self.plains {
                if let Some(g) = plain.groups.get(gid) {
                    ensure(
                        g.epoch() == epoch && g.epoch_authenticator() == auth.as_slice(),
                        || {
                            format!(
                                "{}: {gname} epoch {} disagrees (reference {epoch})",
                                plain.name,
                                g.epoch()
                            )
                        },
                    )?;
                }
            }
            let status = self
                .ds
                .group_status(&GroupId::new(gid))
                .ctx(|| "status".into())?;
            ensure(status.epoch == epoch, || {
                format!(
                    "{gname}: delivery service at epoch {}, clients at {epoch}",
                    status.epoch
                )
            })?;
        }
        for emu in &mut self.emus {
            ensure(emu.received == emu.expected, || {
                format!(
                    "{} read {:?}, expected {:?}",
                    emu.name,
                    texts(&emu.received),
                    texts(&emu.expected)
                )
            })?;
            emu.received.clear();
            emu.expected.clear();
        }
        for plain in &mut self.plains {
            ensure(plain.received == plain.expected, || {
                format!(
                    "{} read {:?}, expected {:?}",
                    plain.name,
                    texts(&plain.received),
                    texts(&plain.expected)
                )
            })?;
            plain.received.clear();
            plain.expected.clear();
        }
        Ok(())
    }

    // ----- Operations -----

    /// Runs one operation, everyone drains, then the invariants are checked.
    pub fn apply(&mut self, op: &Op) -> R<()> {
        match *op {
            Op::EmuCommit { e, g, change } => {
                let e = pick(e, self.emus.len());
                let gid = self.gid(g);
                self.emu_commit(e, &gid, change)?;
            }
            Op::EmuUpdate { e, g, by, rekeys } => {
                let e = pick(e, self.emus.len());
                let gid = self.gid(g);
                self.emu_update(e, &gid, by, rekeys)?;
            }
            Op::PlainCommit { by, g, change } => {
                let gid = self.gid(g);
                self.plain_commit(by, &gid, change)?;
            }
            Op::PlainUpdateByEmu { p, e, g } => {
                let gid = self.gid(g);
                let members = self.plains_in(&gid);
                let e = pick(e, self.emus.len());
                if !members.is_empty() {
                    let j = members[pick(p, members.len())];
                    self.plain_propose_update(j, &gid)?;
                }
                self.emu_commit(e, &gid, Change::Empty)?;
            }
            Op::EmuMessage { e, g } => {
                let e = pick(e, self.emus.len());
                let gid = self.gid(g);
                self.emu_message(e, &gid)?
                    .ctx(|| "application message refused".into())?;
            }
            Op::PlainMessage { by, g } => {
                let gid = self.gid(g);
                let members = self.plains_in(&gid);
                if !members.is_empty() {
                    self.plain_message(members[pick(by, members.len())], &gid)?;
                }
            }
            Op::CommitRace { a, b, g, retry } => {
                let a = pick(a, self.emus.len());
                let b = self.other_emu(a, b);
                let gid = self.gid(g);
                let (ea, oa) = self.emu_build_commit(a, &gid, vec![])?;
                let (eb, ob) = self.emu_build_commit(b, &gid, vec![])?;
                ensure(ea == eb, || "not the same epoch".into())?;
                self.send_emu_commit(a, &gid, ea, &oa, vec![], vec![])?
                    .ctx(|| "first commit refused".into())?;
                let lost = self.send_emu_commit(b, &gid, eb, &ob, vec![], vec![])?;
                ensure(
                    matches!(
                        lost,
                        Err(ServiceError::StaleEpoch { .. }
                            | ServiceError::VirtualClientSequenceMismatch { .. })
                    ),
                    || format!("second commit of the epoch: {lost:?}"),
                )?;
                self.drain_all()?;
                if retry {
                    self.emu_commit(b, &gid, Change::Empty)?;
                }
            }
            Op::PlainRace {
                e,
                by,
                g,
                plain_first,
                retry,
            } => {
                let e = pick(e, self.emus.len());
                let gid = self.gid(g);
                let members = self.plains_in(&gid);
                if members.is_empty() {
                    self.emu_commit(e, &gid, Change::Empty)?;
                } else {
                    let j = members[pick(by, members.len())];
                    let (epoch, emu_out) = self.emu_build_commit(e, &gid, vec![])?;
                    let plain_out = self.plains[j]
                        .groups
                        .get_mut(&gid)
                        .ctx(|| "plain group".into())?
                        .commit(&svc(), CommitOptions::new().with_path(), NOW)
                        .ctx(|| "plain commit".into())?;
                    let (first, second) = if plain_first {
                        let first =
                            self.send_plain_commit(j, &gid, epoch, &plain_out, vec![], vec![])?;
                        let second =
                            self.send_emu_commit(e, &gid, epoch, &emu_out, vec![], vec![])?;
                        (first, second)
                    } else {
                        let first =
                            self.send_emu_commit(e, &gid, epoch, &emu_out, vec![], vec![])?;
                        let second =
                            self.send_plain_commit(j, &gid, epoch, &plain_out, vec![], vec![])?;
                        (first, second)
                    };
                    first.ctx(|| "first commit refused".into())?;
                    ensure(
                        matches!(second, Err(ServiceError::StaleEpoch { .. })),
                        || format!("second commit of the epoch: {second:?}"),
                    )?;
                    self.drain_all()?;
                    if retry {
                        if plain_first {
                            self.emu_commit(e, &gid, Change::Empty)?;
                        } else {
                            self.plain_commit_by(j, &gid, PlainChange::Empty)?;
                        }
                    }
                }
            }
            Op::MessageRace { a, b, g, retry } => {
                let a = pick(a, self.emus.len());
                let b = self.other_emu(a, b);
                let gid = self.gid(g);
                let expected = self.emus[a].vc_next.get(&gid).copied().unwrap_or_default();
                let ta = self.next_text(Who::Emu(a), &gid);
                let tb = self.next_text(Who::Emu(b), &gid);
                let ma = self.emus[a]
                    .client
                    .send_application(&svc(), &gid, &ta)
                    .ctx(|| "send_application".into())?;
                let mb = self.emus[b]
                    .client
                    .send_application(&svc(), &gid, &tb)
                    .ctx(|| "send_application".into())?;
                self.midway(a)?;
                self.midway(b)?;
                let group = GroupId::new(&gid);
                self.ds
                    .send(
                        &group,
                        &self.emus[a].name.clone(),
                        SendRequest::application(encode(&ma)?).as_virtual_client(vc(), expected),
                    )
                    .ctx(|| "first message refused".into())?;
                ensure(
                    self.emus[a]
                        .client
                        .confirm_sent(&svc(), &gid, &ma)
                        .ctx(|| "confirm_sent".into())?,
                    || "confirm_sent found no key".into(),
                )?;
                self.expect_read(Who::Emu(a), &gid, &ta);
                let lost = self.ds.send(
                    &group,
                    &self.emus[b].name.clone(),
                    SendRequest::application(encode(&mb)?).as_virtual_client(vc(), expected),
                );
                ensure(
                    matches!(
                        lost,
                        Err(ServiceError::VirtualClientSequenceMismatch { .. })
                    ),
                    || format!("second message at one sequence: {lost:?}"),
                )?;
                self.drain_all()?;
                if retry {
                    self.emu_message(b, &gid)?
                        .ctx(|| "message sent again refused".into())?;
                }
            }
            Op::EmulationEpoch { e, upload, rival } => {
                let e = pick(e, self.emus.len());
                let epoch = self.emus[e].client.emulation_group().epoch();
                let (out, kps) = if upload {
                    let cs = self.groups.first().map_or(CipherSuite(1), |g| g.1);
                    self.emus[e]
                        .client
                        .publish_key_packages(&svc(), cs, lifetime(), 2, CommitOptions::new(), NOW)
                        .ctx(|| "publish_key_packages".into())?
                } else {
                    let out = self.emus[e]
                        .client
                        .commit_emulation(&svc(), CommitOptions::new().with_path(), NOW)
                        .ctx(|| "commit_emulation".into())?;
                    (out, vec![])
                };
                let rival = match rival {
                    Some(r) => {
                        let r = self.other_emu(e, r);
                        let out = self.emus[r]
                            .client
                            .commit_emulation(&svc(), CommitOptions::new().with_path(), NOW)
                            .ctx(|| "rival commit_emulation".into())?;
                        Some((r, out))
                    }
                    None => None,
                };
                self.midway(e)?;
                if let Some((r, _)) = &rival {
                    self.midway(*r)?;
                }
                self.send_emulation_commit(e, epoch, &out, None)?
                    .ctx(|| "emulation commit refused".into())?;
                if !kps.is_empty() {
                    self.publish_vc_key_packages(e, &kps)?;
                }
                if let Some((r, out)) = rival {
                    let lost = self.send_emulation_commit(r, epoch, &out, None)?;
                    ensure(matches!(lost, Err(ServiceError::StaleEpoch { .. })), || {
                        format!("second emulation commit of the epoch: {lost:?}")
                    })?;
                }
            }
            Op::LaggingSibling { a, b, g, lag } => {
                let a = pick(a, self.emus.len());
                let b = self.other_emu(a, b);
                let gid = self.gid(g);
                for _ in 0..lag.max(1) {
                    self.emulation_commit(a)?;
                    // Only `a` takes its echo (it merges its commit in echo mode).
                    self.drain_emu(a)?;
                }
                let (epoch, out) = self.emu_build_commit(b, &gid, vec![])?;
                self.send_emu_commit(b, &gid, epoch, &out, vec![], vec![])?
                    .ctx(|| "lagging sibling's commit refused".into())?;
            }
            Op::SaveRestore { e } => {
                let e = pick(e, self.emus.len());
                self.save_restore(e)?;
            }
        }
        self.drain_all()?;
        self.check()
    }

    /// Emulator client `e` builds a commit of `proposals` in `gid`; returns its epoch.
    fn emu_build_commit(
        &mut self,
        e: usize,
        gid: &[u8],
        proposals: Vec<Proposal>,
    ) -> R<(u64, CommitOutput)> {
        let emu = &mut self.emus[e];
        let epoch = emu
            .client
            .group(gid)
            .ctx(|| "emulator's group".into())?
            .epoch();
        let out = emu
            .client
            .commit(&svc(), gid, proposals, NOW)
            .ctx(|| format!("{} commit", emu.name))?;
        self.midway(e)?;
        Ok((epoch, out))
    }

    /// Emulator client `e` continues from its serialised state, which must round-trip.
    fn save_restore(&mut self, e: usize) -> R<()> {
        let emu = &mut self.emus[e];
        let saved = emu.client.to_bytes().ctx(|| "to_bytes".into())?;
        let restored = EmulatorClient::from_bytes(&P, &saved).ctx(|| "from_bytes".into())?;
        ensure(
            restored.to_bytes().ctx(|| "to_bytes".into())? == saved,
            || format!("{}: state does not round-trip", emu.name),
        )?;
        emu.client = restored;
        Ok(())
    }

    /// In cases with `restore_midway`: emulator client `e` continues from its serialised
    /// state right after it made a message and before the delivery service answered
    /// (pending commit, own Update, retained sent key or unused KeyPackage in the state).
    fn midway(&mut self, e: usize) -> R<()> {
        if self.restore_midway {
            self.save_restore(e)?;
        }
        Ok(())
    }

    /// The proposal removing plain member `j` from `gid` if it is in it (its leaf index from
    /// the committer's `committer_group`), else adding it (with a KeyPackage it publishes and
    /// the committer takes from the directory); and the clients added and removed.
    fn toggle(
        &mut self,
        committer_group: &Group,
        gid: &[u8],
        j: usize,
    ) -> R<(Proposal, Vec<ClientId>, Vec<ClientId>)> {
        let name = self.plains[j].name.clone();
        if self.plains[j].groups.contains_key(gid) {
            let leaf = committer_group
                .members()
                .iter()
                .find(|m| m.credential.basic_identity() == Some(name.0.as_slice()))
                .map(|m| m.index)
                .ctx(|| format!("{name} not in the committer's tree"))?;
            Ok((Proposal::remove(leaf.0), vec![], vec![name]))
        } else {
            self.publish_plain_key_package(j, self.group_suite(gid))?;
            let kp = self.take_key_package(&name)?;
            Ok((Proposal::add(kp), vec![name], vec![]))
        }
    }

    fn emu_commit(&mut self, e: usize, gid: &[u8], change: Change) -> R<()> {
        let (proposals, added, removed) = match change {
            Change::Empty => (vec![], vec![], vec![]),
            Change::Toggle(p) => {
                let j = pick(p, self.plains.len());
                let group = self.emus[e]
                    .client
                    .group(gid)
                    .ctx(|| "emulator's group".into())?
                    .clone();
                let (proposal, added, removed) = self.toggle(&group, gid, j)?;
                (vec![proposal], added, removed)
            }
            Change::RemoveAbsent(k) => {
                let emu = &mut self.emus[e];
                let group = emu.client.group(gid).ctx(|| "emulator's group".into())?;
                let occupied: Vec<u32> = group.members().iter().map(|m| m.index.0).collect();
                let absent: Vec<u32> = (0..=group.ratchet_tree().n_leaves())
                    .filter(|i| !occupied.contains(i))
                    .collect();
                let leaf = absent[pick(k, absent.len())];
                let before = emu.client.to_bytes().ctx(|| "to_bytes".into())?;
                let refused = emu
                    .client
                    .commit(&svc(), gid, vec![Proposal::remove(leaf)], NOW);
                ensure(refused.is_err(), || {
                    format!("the removal of absent leaf {leaf} was not refused")
                })?;
                return ensure(
                    emu.client.to_bytes().ctx(|| "to_bytes".into())? == before,
                    || "a refused commit changed the emulator client's state".into(),
                );
            }
        };
        let (epoch, out) = self.emu_build_commit(e, gid, proposals)?;
        self.send_emu_commit(e, gid, epoch, &out, added, removed)?
            .ctx(|| "emulator commit refused".into())?;
        self.drain_all()
    }

    /// Emulator client `e` moves the emulation group to a new epoch (accepted; nobody has
    /// processed it yet).
    fn emulation_commit(&mut self, e: usize) -> R<()> {
        let epoch = self.emus[e].client.emulation_group().epoch();
        let out = self.emus[e]
            .client
            .commit_emulation(&svc(), CommitOptions::new().with_path(), NOW)
            .ctx(|| "commit_emulation".into())?;
        self.midway(e)?;
        self.send_emulation_commit(e, epoch, &out, None)?
            .ctx(|| "emulation commit refused".into())
    }

    fn emu_update(&mut self, e: usize, gid: &[u8], by: u8, rekeys: u8) -> R<()> {
        let before = self.emus[e]
            .client
            .group(gid)
            .and_then(|g| g.own_leaf_node())
            .map(|l| l.encryption_key.clone())
            .ctx(|| "own leaf".into())?;
        let emu = &mut self.emus[e];
        let proposal = emu
            .client
            .propose_update(&svc(), gid)
            .ctx(|| format!("{} propose_update", emu.name))?;
        self.midway(e)?;
        let emu = &mut self.emus[e];
        let expected = emu.vc_next.get(gid).copied().unwrap_or_default();
        self.ds
            .send(
                &GroupId::new(gid),
                &emu.name.clone(),
                SendRequest::proposal(encode(&proposal)?).as_virtual_client(vc(), expected),
            )
            .ctx(|| "Update proposal refused".into())?;
        self.drain_all()?;
        for k in 0..rekeys.min(3) {
            let sibling = self.other_emu(e, k);
            self.emulation_commit(sibling)?;
            self.drain_all()?;
        }
        let members = self.plains_in(gid);
        if members.is_empty() {
            let sibling = self.other_emu(e, by);
            self.emu_commit(sibling, gid, Change::Empty)?;
        } else {
            self.plain_commit_by(members[pick(by, members.len())], gid, PlainChange::Empty)?;
        }
        let after = self.emus[e]
            .client
            .group(gid)
            .and_then(|g| g.own_leaf_node())
            .map(|l| l.encryption_key.clone())
            .ctx(|| "own leaf".into())?;
        ensure(before != after, || {
            "the virtual client's leaf did not change".into()
        })
    }

    fn plain_propose_update(&mut self, j: usize, gid: &[u8]) -> R<()> {
        let plain = &mut self.plains[j];
        let (proposal, _) = plain
            .groups
            .get_mut(gid)
            .ctx(|| "plain group".into())?
            .propose_update(&svc(), HpkeKeySource::Generate, None)
            .ctx(|| format!("{} propose_update", plain.name))?;
        self.ds
            .send(
                &GroupId::new(gid),
                &plain.name.clone(),
                SendRequest::proposal(encode(&proposal)?),
            )
            .ctx(|| "Update proposal refused".into())?;
        self.drain_all()
    }

    fn plain_commit(&mut self, by: u8, gid: &[u8], change: PlainChange) -> R<()> {
        let members = self.plains_in(gid);
        if members.is_empty() {
            return Ok(());
        }
        let c = members[pick(by, members.len())];
        if let PlainChange::Update(p) = change {
            let j = members[pick(p, members.len())];
            self.plain_propose_update(j, gid)?;
        }
        self.plain_commit_by(c, gid, change)
    }

    /// Plain member `c` commits the pending proposals plus `change` (an Update was already
    /// proposed and processed).
    fn plain_commit_by(&mut self, c: usize, gid: &[u8], change: PlainChange) -> R<()> {
        let group = self.plains[c]
            .groups
            .get(gid)
            .ctx(|| "committer's group".into())?
            .clone();
        let epoch = group.epoch();
        let (options, added, removed) = match change {
            PlainChange::Toggle(p) if pick(p, self.plains.len()) != c => {
                let (proposal, added, removed) =
                    self.toggle(&group, gid, pick(p, self.plains.len()))?;
                (CommitOptions::new().proposal(proposal), added, removed)
            }
            PlainChange::Update(_) => (CommitOptions::new(), vec![], vec![]),
            _ => (CommitOptions::new().with_path(), vec![], vec![]),
        };
        let plain = &mut self.plains[c];
        let out = plain
            .groups
            .get_mut(gid)
            .ctx(|| "committer's group".into())?
            .commit(&svc(), options, NOW)
            .ctx(|| format!("{} commit", plain.name))?;
        self.send_plain_commit(c, gid, epoch, &out, added, removed)?
            .ctx(|| "plain commit refused".into())?;
        self.drain_all()
    }

    /// Emulator client `e` sends an application message; returns the delivery service's
    /// answer.
    fn emu_message(&mut self, e: usize, gid: &[u8]) -> R<Result<(), ServiceError>> {
        let text = self.next_text(Who::Emu(e), gid);
        let m = self.emus[e]
            .client
            .send_application(&svc(), gid, &text)
            .ctx(|| "send_application".into())?;
        self.midway(e)?;
        let emu = &mut self.emus[e];
        let expected = emu.vc_next.get(gid).copied().unwrap_or_default();
        let result = self.ds.send(
            &GroupId::new(gid),
            &emu.name.clone(),
            SendRequest::application(encode(&m)?).as_virtual_client(vc(), expected),
        );
        if result.is_ok() {
            ensure(
                emu.client
                    .confirm_sent(&svc(), gid, &m)
                    .ctx(|| "confirm_sent".into())?,
                || "confirm_sent found no key".into(),
            )?;
            self.expect_read(Who::Emu(e), gid, &text);
        }
        self.drain_all()?;
        Ok(result.map(|_| ()))
    }

    fn plain_message(&mut self, j: usize, gid: &[u8]) -> R<()> {
        let text = self.next_text(Who::Plain(j), gid);
        let plain = &mut self.plains[j];
        let m = plain
            .groups
            .get_mut(gid)
            .ctx(|| "plain group".into())?
            .encrypt_application(&svc(), &text, &[])
            .ctx(|| format!("{} encrypt_application", plain.name))?;
        self.ds
            .send(
                &GroupId::new(gid),
                &plain.name.clone(),
                SendRequest::application(encode(&m)?),
            )
            .ctx(|| "application message refused".into())?;
        self.expect_read(Who::Plain(j), gid, &text);
        self.drain_all()
    }
}

fn texts(list: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    list.iter()
        .map(|(_, t)| String::from_utf8_lossy(t).into_owned())
        .collect()
}

/// Emulator client `emu` processes one group message (its own echoes as described in the
/// module docs).
fn emu_message(emu: &mut Emu, m: &GroupMessage, confirm: bool) -> R<()> {
    let gid = m.group_id.0.clone();
    let is_commit = matches!(m.kind, MessageKind::Commit { .. });
    if gid == EMULATION {
        let mine = m.sender == emu.name;
        if mine && is_commit && confirm {
            return Ok(());
        }
        let processed = emu
            .client
            .process_emulation(&svc(), &m.message, NOW)
            .ctx(|| format!("{} process_emulation {}", emu.name, m.sequence))?;
        if is_commit {
            ensure(
                matches!(processed, ProcessedMessage::Commit { own, .. } if own == mine),
                || format!("{}: emulation commit processed as {processed:?}", emu.name),
            )?;
        }
        return Ok(());
    }
    let mine = m
        .emulator_view
        .as_ref()
        .is_some_and(|v| v.emulator == emu.name);
    if let Some(view) = &m.emulator_view {
        emu.vc_next.insert(gid.clone(), view.vc_sequence.next());
    }
    if mine && (m.kind == MessageKind::Application || (is_commit && confirm)) {
        return Ok(());
    }
    let processed = emu.client.process(&svc(), &gid, &m.message, NOW).ctx(|| {
        format!(
            "{} processes {:?} {} from {} in {}",
            emu.name, m.kind, m.sequence, m.sender, m.group_id
        )
    })?;
    match processed {
        ProcessedMessage::Application { data, .. } => emu.received.push((gid, data)),
        ProcessedMessage::Commit {
            own, removed_us, ..
        } => ensure(own == mine && !removed_us, || {
            format!(
                "{}: commit processed with own={own} removed_us={removed_us}",
                emu.name
            )
        })?,
        ProcessedMessage::Proposal { .. } => {}
    }
    Ok(())
}

/// Plain member `plain` processes one group message.
fn plain_message(plain: &mut Plain, m: &GroupMessage, confirm: bool) -> R<()> {
    let gid = m.group_id.0.clone();
    let mine = m.sender == plain.name;
    let is_commit = matches!(m.kind, MessageKind::Commit { .. });
    if mine && (m.kind == MessageKind::Application || (is_commit && confirm)) {
        return Ok(());
    }
    let group = plain
        .groups
        .get_mut(&gid)
        .ctx(|| format!("{}: a message of {} it is not in", plain.name, m.group_id))?;
    let processed = group.process_bytes(&svc(), &m.message, NOW).ctx(|| {
        format!(
            "{} processes {:?} {} from {} in {}",
            plain.name, m.kind, m.sequence, m.sender, m.group_id
        )
    })?;
    match processed {
        ProcessedMessage::Application { data, .. } => plain.received.push((gid, data)),
        ProcessedMessage::Commit {
            own, removed_us, ..
        } => {
            ensure(own == mine, || {
                format!("{}: own={own} for a commit", plain.name)
            })?;
            if removed_us {
                plain.groups.remove(&gid);
            }
        }
        ProcessedMessage::Proposal { .. } => {}
    }
    Ok(())
}

/// Runs a whole case: setup, then every operation with the checks.
pub fn run(setup: &Setup, ops: &[Op]) -> R<()> {
    let mut world = World::new(setup).map_err(|e| format!("setup: {e}"))?;
    for (i, op) in ops.iter().enumerate() {
        world
            .apply(op)
            .map_err(|e| format!("operation {i} {op:?}: {e}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn cipher_suite() -> impl Strategy<Value = CipherSuite> {
    prop_oneof![
        2 => Just(CipherSuite(1)),
        1 => Just(CipherSuite(2)),
        1 => Just(CipherSuite(3)),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        2usize..=4,
        2usize..=4,
        cipher_suite(),
        prop::collection::vec(
            (cipher_suite(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(
                |(suite, creator, uploader, members)| GroupSetup {
                    suite,
                    creator,
                    uploader,
                    members,
                },
            ),
            2..=3,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(emulators, plains, emulation_suite, groups, confirm_on_accept, restore_midway)| {
                Setup {
                    emulators,
                    plains,
                    emulation_suite,
                    groups,
                    confirm_on_accept,
                    restore_midway,
                }
            },
        )
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        2 => Just(Change::Empty),
        2 => any::<u8>().prop_map(Change::Toggle),
        1 => any::<u8>().prop_map(Change::RemoveAbsent),
    ]
}

fn plain_change() -> impl Strategy<Value = PlainChange> {
    prop_oneof![
        Just(PlainChange::Empty),
        any::<u8>().prop_map(PlainChange::Toggle),
        any::<u8>().prop_map(PlainChange::Update),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let i = || any::<u8>();
    prop_oneof![
        3 => (i(), i(), change()).prop_map(|(e, g, change)| Op::EmuCommit { e, g, change }),
        2 => (i(), i(), i(), prop_oneof![3 => Just(0u8), 1 => 1u8..=3])
            .prop_map(|(e, g, by, rekeys)| Op::EmuUpdate { e, g, by, rekeys }),
        3 => (i(), i(), plain_change()).prop_map(|(by, g, change)| Op::PlainCommit { by, g, change }),
        1 => (i(), i(), i()).prop_map(|(p, e, g)| Op::PlainUpdateByEmu { p, e, g }),
        3 => (i(), i()).prop_map(|(e, g)| Op::EmuMessage { e, g }),
        2 => (i(), i()).prop_map(|(by, g)| Op::PlainMessage { by, g }),
        2 => (i(), i(), i(), any::<bool>()).prop_map(|(a, b, g, retry)| Op::CommitRace { a, b, g, retry }),
        1 => (i(), i(), i(), any::<bool>(), any::<bool>()).prop_map(|(e, by, g, plain_first, retry)| {
            Op::PlainRace { e, by, g, plain_first, retry }
        }),
        1 => (i(), i(), i(), any::<bool>()).prop_map(|(a, b, g, retry)| Op::MessageRace { a, b, g, retry }),
        2 => (i(), prop::bool::weighted(0.25), prop::option::weighted(0.3, i()))
            .prop_map(|(e, upload, rival)| Op::EmulationEpoch { e, upload, rival }),
        1 => i().prop_map(|e| Op::SaveRestore { e }),
        1 => (i(), i(), i(), 1..RETAINED_EPOCHS as u8).prop_map(|(a, b, g, lag)| Op::LaggingSibling { a, b, g, lag }),
    ]
}

/// `cases` cases, or `PROPTEST_CASES` of the environment (for longer runs); the policy of
/// `mls-engine`'s `group_properties`.
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

    /// 200 random interleavings by 2-4 emulator clients and 2-4 plain members over 2-3
    /// higher-level groups, all through the delivery service, converge after every step.
    #[test]
    fn random_interleavings_converge(
        setup in setup(),
        ops in prop::collection::vec(op(), 10..=30),
    ) {
        if let Err(e) = run(&setup, &ops) {
            prop_assert!(false, "{e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed sequences
// ---------------------------------------------------------------------------------------------

/// Every kind of operation once or more, in both echo modes and with every suite.
#[test]
fn every_operation_in_a_fixed_sequence() {
    use Op::*;
    let ops = [
        EmuMessage { e: 1, g: 0 },
        PlainMessage { by: 0, g: 1 },
        EmuCommit {
            e: 2,
            g: 0,
            change: Change::Empty,
        },
        EmuCommit {
            e: 0,
            g: 1,
            change: Change::Toggle(2),
        },
        EmuCommit {
            e: 1,
            g: 1,
            change: Change::Toggle(2),
        },
        EmuUpdate {
            e: 1,
            g: 0,
            by: 1,
            rekeys: 0,
        },
        EmuUpdate {
            e: 2,
            g: 1,
            by: 0,
            rekeys: 3,
        },
        PlainCommit {
            by: 0,
            g: 0,
            change: PlainChange::Update(1),
        },
        PlainCommit {
            by: 1,
            g: 1,
            change: PlainChange::Toggle(0),
        },
        PlainUpdateByEmu { p: 0, e: 2, g: 0 },
        CommitRace {
            a: 0,
            b: 0,
            g: 0,
            retry: true,
        },
        PlainRace {
            e: 1,
            by: 0,
            g: 0,
            plain_first: true,
            retry: true,
        },
        PlainRace {
            e: 2,
            by: 1,
            g: 1,
            plain_first: false,
            retry: false,
        },
        MessageRace {
            a: 2,
            b: 1,
            g: 1,
            retry: true,
        },
        EmulationEpoch {
            e: 1,
            upload: true,
            rival: Some(0),
        },
        EmuCommit {
            e: 2,
            g: 1,
            change: Change::RemoveAbsent(1),
        },
        SaveRestore { e: 1 },
        LaggingSibling {
            a: 0,
            b: 1,
            g: 1,
            lag: 3,
        },
        EmuMessage { e: 1, g: 1 },
        EmuCommit {
            e: 1,
            g: 0,
            change: Change::Empty,
        },
    ];
    for (confirm_on_accept, suites) in [
        (true, [CipherSuite(1), CipherSuite(2), CipherSuite(3)]),
        (false, [CipherSuite(3), CipherSuite(1), CipherSuite(2)]),
    ] {
        let setup = Setup {
            emulators: 3,
            plains: 3,
            emulation_suite: suites[0],
            groups: vec![
                GroupSetup {
                    suite: suites[1],
                    creator: 0,
                    uploader: 1,
                    members: 0b110,
                },
                GroupSetup {
                    suite: suites[2],
                    creator: 1,
                    uploader: 2,
                    members: 0b001,
                },
            ],
            confirm_on_accept,
            restore_midway: !confirm_on_accept,
        };
        run(&setup, &ops).unwrap();
    }
}

/// The retention boundary (DESIGN §5 row 10), which [`Op::LaggingSibling`] stays inside: a
/// sibling that has not processed `RETAINED_EPOCHS` emulation-group commits commits in a
/// higher-level group from the emulation epoch it is in. The delivery service accepts the
/// commit (it is for the group's current epoch), but a sibling that processed those emulation
/// commits no longer keeps that epoch (no leaf, pending commit or KeyPackage of its pins it):
/// it refuses the commit with `UnknownEpochId` and its state is unchanged. Emulator clients
/// must therefore process the emulation group before they send.
#[test]
fn a_commit_from_an_emulation_epoch_already_deleted_is_a_typed_error() {
    let setup = Setup {
        emulators: 2,
        plains: 2,
        emulation_suite: CipherSuite(1),
        groups: vec![
            GroupSetup {
                suite: CipherSuite(1),
                creator: 0,
                uploader: 0,
                members: 0b10,
            },
            GroupSetup {
                suite: CipherSuite(1),
                creator: 1,
                uploader: 1,
                members: 0,
            },
        ],
        confirm_on_accept: true,
        restore_midway: false,
    };
    let mut world = World::new(&setup).unwrap();
    // Both leaves (and nothing else) pin an emulation epoch, which then moves on once.
    for op in [
        Op::EmuCommit {
            e: 0,
            g: 0,
            change: Change::Empty,
        },
        Op::EmuCommit {
            e: 0,
            g: 1,
            change: Change::Empty,
        },
        Op::EmulationEpoch {
            e: 0,
            upload: false,
            rival: None,
        },
    ] {
        world.apply(&op).unwrap();
    }
    // One epoch less behind is fine (the property's LaggingSibling goes up to this).
    world
        .apply(&Op::LaggingSibling {
            a: 0,
            b: 0,
            g: 0,
            lag: (RETAINED_EPOCHS - 1) as u8,
        })
        .unwrap();
    world
        .apply(&Op::EmulationEpoch {
            e: 0,
            upload: false,
            rival: None,
        })
        .unwrap();
    for _ in 0..RETAINED_EPOCHS {
        world.emulation_commit(0).unwrap();
        world.drain_emu(0).unwrap();
    }
    let gid = world.gid(0);
    let (epoch, out) = world.emu_build_commit(1, &gid, vec![]).unwrap();
    world
        .send_emu_commit(1, &gid, epoch, &out, vec![], vec![])
        .unwrap()
        .unwrap();
    let before = world.emus[0].client.to_bytes().unwrap();
    let err = world.drain_emu(0).unwrap_err();
    assert!(err.contains("UnknownEpochId"), "{err}");
    assert_eq!(world.emus[0].client.to_bytes().unwrap(), before);
}
