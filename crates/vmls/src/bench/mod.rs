//! `vmls bench`: the scenario benchmark of the draft's §8-§9 (draft-kohbrok-mls-virtual-
//! clients-04, "Performance considerations" and "Emulation costs").
//!
//! U users with D devices each are members of G higher-level groups. Each group holds the
//! users of a rotating window of `fraction × U` users (all U by default). The same
//! scenario runs twice:
//!
//! * **virtual**: every user is a virtual client: one emulation group of its D emulator clients
//!   ([`EmulatorClient`](virtual_clients::emulator::EmulatorClient)), one leaf per user per
//!   group;
//! * **per-device**: every device is a plain `mls_engine` member: one leaf per device per group.
//!
//! Setup (not measured): every virtual client builds its emulation group and uploads one
//! KeyPackage per group with the `KeyPackageUpload` action; a plain *creator* client creates
//! each group, adds every member (one Add per virtual client, or one per device), and is then
//! removed by the first member's commit with path, so that only the users' devices are left
//! (its leaf 0 stays blank in both runs until an Add fills it).
//!
//! With `--warm-up`, one unmeasured round of [`Op::Update`] follows, so that the measured
//! operations start from trees whose parent nodes are filled (after setup every parent but
//! those on the first member's path is blank: the creator's Commit only adds).
//!
//! Every group, emulation groups included, uses one cipher suite (`--suite`, default 1).
//!
//! Then the operations, measured one by one, in this order (any subset):
//! 1. [`Op::Remove`]: user 0 loses its last device, with a post-compromise update in every
//!    group. Virtual: an emulation-group Commit removing that emulator client
//!    (`remove_emulator`), processed by the remaining devices, then a Commit with path in
//!    every group by a remaining device (`update_all_groups`), processed by everyone. Per-device: in every group a Commit (with path) by another
//!    device of user 0 removing the device's leaf. The removed device receives nothing.
//!    Needs D ≥ 2.
//! 2. [`Op::Add`]: user 0 gets a new device. Virtual: the device's KeyPackage, an emulation
//!    Commit adding it (`add_emulator`), the Welcome it joins the emulation group from, and
//!    the state transfer (`device_state_message`: one emulation-group application message
//!    with the state of every higher-level group, read by every sibling); the higher-level
//!    groups see nothing. Per-device: in every group a KeyPackage of the new device, an Add
//!    Commit (no path) by another device of user 0, processed by every member, and the
//!    Welcome.
//! 3. [`Op::Update`]: in every group, one Commit with path per member user, by one of its
//!    devices (the `g mod n`-th of its n devices in group g); processed by everyone else.
//! 4. [`Op::Pcs`]: post-compromise security for every device of every user, the operation
//!    of the draft's security considerations. Per-device: every device of every user commits
//!    with path in every group it is in. Virtual: per user, one emulation-group Commit with
//!    path (by its first device, processed by its siblings), then from the new emulation
//!    epoch one Commit with path in every group of the user (`update_all_groups`).
//! 5. [`Op::Messages`]: in every group, `messages` application messages of
//!    [`PAYLOAD_LEN`] octets, sent round-robin by the group's devices, read by everyone else.
//!
//! Messages go directly from client to client, in one fixed order. Every message is counted
//! as encoded (`MLSMessage`): its size once as *up* for the sender, and once as *down* for
//! every device that receives it (a virtual client's siblings included). CPU time is the
//! wall time (`Instant`) around each device's own calls (creating and encoding a message,
//! processing one, joining), summed per device. Per-device figures divide the totals by the
//! number of the users' devices after the operation (U × D, or one less after a removal).
//! The two runs are interleaved (both set up, then each operation in one run and right after
//! in the other), so that both meet about the same load of the machine.
//! After every operation the epoch authenticators of all devices of every group are
//! compared (and, for virtual clients, each emulator client's leaf secrets with its leaf);
//! the run stops with [`BenchError::Disagreement`] if they differ.

mod device_world;
mod report;
mod virtual_world;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use mls_engine::codec::{CodecError, Credential, Lifetime, MlsMessage, MlsMessageBody};
use mls_engine::crypto::{CipherSuite, CryptoError, CryptoProvider as _, RustCrypto};
use mls_engine::group::{Group, GroupError, OwnLeaf, ProcessedMessage, Services};
use mls_engine::messages::{CreationError, HpkeKeySource, LeafNodeParams};
use mls_engine::tree::{LeafIndex, NodeIndex, TreeError};
use virtual_clients::emulator::EmulatorError;

static CRYPTO: RustCrypto = RustCrypto;

/// The fixed time of the whole benchmark (seconds since the epoch).
const NOW: u64 = 1_700_000_000;

/// The default cipher suite of every group (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519).
const SUITE: CipherSuite = CipherSuite(1);

/// The size of every application message's plaintext (octets).
pub const PAYLOAD_LEN: usize = 32;

/// The user who loses and gains a device.
const CHURN_USER: u32 = 0;

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An emulator client refused an operation or message.
    #[error("emulator client {who}: {source}")]
    Emulator {
        /// The device.
        who: DeviceId,
        /// The error.
        source: EmulatorError,
    },
    /// A plain client refused an operation or message.
    #[error("client {who}: {source}")]
    Group {
        /// The client.
        who: DeviceId,
        /// The error.
        source: GroupError,
    },
    /// A message could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The cipher suite is not available.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A KeyPackage could not be built.
    #[error(transparent)]
    Creation(#[from] CreationError),
    /// A ratchet tree could not be encoded.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Two devices disagree on the epoch authenticator of a group.
    #[error(
        "{mode}: epoch authenticators differ in group {group} after {after}: {first} and {other}"
    )]
    Disagreement {
        /// The run.
        mode: Mode,
        /// The group.
        group: usize,
        /// The step after which they were compared.
        after: &'static str,
        /// One device.
        first: DeviceId,
        /// A device that differs from it.
        other: DeviceId,
    },
    /// An emulator client's leaf secrets are not those of its leaf in the tree.
    #[error("{who}: its leaf secrets in group {group} are not those of its leaf")]
    LeafInconsistent {
        /// The device.
        who: DeviceId,
        /// The group.
        group: usize,
    },
    /// Something else than expected happened.
    #[error("{0}")]
    Unexpected(String),
    /// The parameters make no scenario.
    #[error("invalid parameters: {0}")]
    Config(String),
    /// The output files could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The plot could not be drawn.
    #[error("plot: {0}")]
    Plot(String),
}

/// One device: the `serial`-th device user `user` ever had (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId {
    /// The user (0-based).
    pub user: u32,
    /// The device's serial number (0-based, never reused).
    pub serial: u32,
}

/// `processed`, what `who` made of a message from `by`, must be the application data `text`.
fn expect_text(
    who: DeviceId,
    by: DeviceId,
    processed: &ProcessedMessage,
    text: &[u8],
) -> Result<(), BenchError> {
    match processed {
        ProcessedMessage::Application { data, .. } if data.as_slice() == text => Ok(()),
        _ => Err(BenchError::Unexpected(format!(
            "{who}: not the message {by} sent"
        ))),
    }
}

/// The device of `user` that removes another (its first, by serial) and the one removed (its
/// last), from the user's device `serials` in ascending order; removing needs two devices.
fn actor_and_removed(user: u32, serials: &[u32]) -> Result<(DeviceId, DeviceId), BenchError> {
    let (Some(&actor), Some(&removed)) = (serials.first(), serials.last()) else {
        return Err(BenchError::Unexpected(format!("user {user} has no device")));
    };
    if actor == removed {
        return Err(BenchError::Config(
            "removing a device needs D >= 2".to_string(),
        ));
    }
    Ok((
        DeviceId {
            user,
            serial: actor,
        },
        DeviceId {
            user,
            serial: removed,
        },
    ))
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user-{}/device-{}", self.user, self.serial)
    }
}

/// The plain client that creates every group (and is removed at the end of setup).
const CREATOR: DeviceId = DeviceId {
    user: u32::MAX,
    serial: 0,
};

/// A measured operation, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Op {
    /// Removing a device, with a post-compromise update in every group.
    Remove,
    /// Adding a device.
    Add,
    /// One Commit with path per user per group.
    Update,
    /// Post-compromise security for every device of every user.
    Pcs,
    /// Application messages in every group.
    Messages,
}

impl Op {
    /// Every operation, in the order they run.
    pub const ALL: [Op; 5] = [Op::Remove, Op::Add, Op::Update, Op::Pcs, Op::Messages];

    /// The name used on the command line and in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Op::Remove => "remove",
            Op::Add => "add",
            Op::Update => "update",
            Op::Pcs => "pcs",
            Op::Messages => "messages",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One of the two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// One virtual client (one leaf) per user.
    Virtual,
    /// One leaf per device.
    PerDevice,
}

impl Mode {
    /// Both runs, in the order they run.
    pub const BOTH: [Mode; 2] = [Mode::Virtual, Mode::PerDevice];

    /// The name used in tables and the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Virtual => "virtual",
            Mode::PerDevice => "per-device",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The parameters of a benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Users (U).
    pub users: u32,
    /// Devices per user (D), one run pair per value.
    pub devices: Vec<u32>,
    /// Higher-level groups (G).
    pub groups: u32,
    /// The share of the users in each group (0 < fraction ≤ 1).
    pub fraction: f64,
    /// Application messages per group in [`Op::Messages`].
    pub messages: u32,
    /// The operations measured (run in the order of [`Op::ALL`]).
    pub ops: Vec<Op>,
    /// Before the measured operations, one unmeasured round of [`Op::Update`] (one Commit
    /// with path per user per group), so that they start from trees whose parents are
    /// filled rather than from the all-blank parents the creator's add-only Commit leaves.
    pub warm_up: bool,
    /// The cipher suite of every group, emulation groups included.
    pub suite: CipherSuite,
}

impl Default for Config {
    /// 50 users × 4 devices in 20 groups, every user in every group, 100 messages per group,
    /// every operation.
    fn default() -> Self {
        Self {
            users: 50,
            devices: vec![4],
            groups: 20,
            fraction: 1.0,
            messages: 100,
            ops: Op::ALL.to_vec(),
            warm_up: false,
            suite: SUITE,
        }
    }
}

impl Config {
    /// The `--quick` preset: 10 users × 4 devices in 5 groups.
    pub fn quick() -> Self {
        Self {
            users: 10,
            groups: 5,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), BenchError> {
        let bad = |s: &str| Err(BenchError::Config(s.to_string()));
        if self.users == 0 || self.groups == 0 {
            return bad("U and G must be at least 1");
        }
        if self.devices.is_empty() || self.devices.contains(&0) {
            return bad("every D must be at least 1");
        }
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return bad("the fraction must be in (0, 1]");
        }
        if self.ops.is_empty() {
            return bad("no operation selected");
        }
        if !CRYPTO.supports(self.suite) {
            return Err(BenchError::Config(format!(
                "cipher suite 0x{:04x} is not implemented (see `vmls suites`)",
                self.suite.0
            )));
        }
        Ok(())
    }

    /// Users per group: `round(fraction × U)`, at least 1.
    pub fn users_per_group(&self) -> u32 {
        let m = (self.fraction * f64::from(self.users)).round() as u32;
        m.clamp(1, self.users)
    }
}

/// Who is in which group: group `g` holds `users_per_group` consecutive users starting at
/// `g × users_per_group mod U` (wrapping), so every user is in about `fraction × G` groups.
#[derive(Debug, Clone)]
struct Layout {
    devices: u32,
    /// The cipher suite of every group.
    suite: CipherSuite,
    /// For each group, its member users in ascending order.
    members: Vec<Vec<u32>>,
}

impl Layout {
    fn new(config: &Config, devices: u32) -> Self {
        let m = config.users_per_group();
        let members = (0..config.groups)
            .map(|g| {
                let start = (u64::from(g) * u64::from(m) % u64::from(config.users)) as u32;
                let mut users: Vec<u32> = (0..m).map(|k| (start + k) % config.users).collect();
                users.sort_unstable();
                users
            })
            .collect();
        Self {
            devices,
            suite: config.suite,
            members,
        }
    }

    fn users(&self) -> u32 {
        self.members
            .iter()
            .flatten()
            .copied()
            .max()
            .map_or(0, |u| u + 1)
    }

    /// The groups `user` is in.
    fn groups_of(&self, user: u32) -> Vec<usize> {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.contains(&user))
            .map(|(g, _)| g)
            .collect()
    }

    fn group_id(g: usize) -> Vec<u8> {
        format!("group-{g}").into_bytes()
    }
}

/// What one device spent in one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Time in its own calls.
    pub cpu: Duration,
    /// Octets it sent to the delivery service.
    pub up: u64,
    /// Octets it received.
    pub down: u64,
}

/// The costs of one operation, by device.
#[derive(Debug, Default)]
struct Meter {
    costs: BTreeMap<DeviceId, Cost>,
    /// Messages sent.
    messages: u64,
}

impl Meter {
    /// Runs `f` as `who`'s own work.
    fn time<T>(&mut self, who: DeviceId, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.costs.entry(who).or_default().cpu += start.elapsed();
        out
    }

    /// `who` sent a message of `len` octets.
    fn up(&mut self, who: DeviceId, len: usize) {
        self.costs.entry(who).or_default().up += len as u64;
        self.messages += 1;
    }

    /// `who` received a message of `len` octets.
    fn down(&mut self, who: DeviceId, len: usize) {
        self.costs.entry(who).or_default().down += len as u64;
    }
}

/// The ratchet trees of the groups after an operation, averaged over the groups.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TreeStats {
    /// Encoded `ratchet_tree` (the extension's content), octets.
    pub tree_bytes: f64,
    /// Leaves (a power of two, blank ones included).
    pub leaves: f64,
    /// Non-blank leaves.
    pub members: f64,
    /// Blank leaves left of the last non-blank one (holes left by removals; the blank
    /// leaves that only pad the tree to a power of two are not counted).
    pub blank_leaves: f64,
    /// Blank parent nodes with a non-blank node below them: the blanks that make
    /// resolutions larger (a blank parent over an empty subtree costs nothing).
    pub blank_parents: f64,
    /// HPKE encryptions a Commit with path needs (§7.6 of RFC 9420: the sizes of the
    /// resolutions of the copath nodes of the filtered direct path), averaged over members:
    /// `log2(leaves)` for a full tree without blanks.
    pub path_encryptions: f64,
}

impl TreeStats {
    fn of(group: &Group) -> Result<Self, BenchError> {
        let tree = group.ratchet_tree();
        let mut stats = TreeStats {
            tree_bytes: tree.encode()?.len() as f64,
            leaves: f64::from(tree.n_leaves()),
            ..TreeStats::default()
        };
        let members: Vec<LeafIndex> = tree.leaves().map(|(i, _)| i).collect();
        let last = members.last().map_or(0, |l| l.0);
        for x in 0..tree.node_width() {
            let node = NodeIndex(x);
            if !tree.is_blank(node) {
                continue;
            }
            if node.is_leaf() {
                if x / 2 < last {
                    stats.blank_leaves += 1.0;
                }
            } else if !tree.resolution_is_empty(node) {
                stats.blank_parents += 1.0;
            }
        }
        stats.members = members.len() as f64;
        let encryptions: usize = members
            .iter()
            .map(|&leaf| {
                tree.filtered_direct_path(leaf)
                    .into_iter()
                    .map(|(_, copath)| tree.resolution(copath).len())
                    .sum::<usize>()
            })
            .sum();
        stats.path_encryptions = encryptions as f64 / members.len().max(1) as f64;
        Ok(stats)
    }

    fn mean(all: &[TreeStats]) -> Self {
        let n = all.len().max(1) as f64;
        let sum = |f: fn(&TreeStats) -> f64| all.iter().map(f).sum::<f64>() / n;
        TreeStats {
            tree_bytes: sum(|t| t.tree_bytes),
            leaves: sum(|t| t.leaves),
            members: sum(|t| t.members),
            blank_leaves: sum(|t| t.blank_leaves),
            blank_parents: sum(|t| t.blank_parents),
            path_encryptions: sum(|t| t.path_encryptions),
        }
    }
}

/// The measurement of one operation in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Devices per user (D) of the run.
    pub d: u32,
    /// The operation.
    pub op: Op,
    /// The run.
    pub mode: Mode,
    /// The users' devices after the operation (what per-device figures divide by).
    pub devices: u32,
    /// Messages sent.
    pub messages: u64,
    /// CPU time per device, milliseconds.
    pub cpu_ms: f64,
    /// The largest CPU time of one device, milliseconds.
    pub cpu_ms_max: f64,
    /// Octets sent per device.
    pub up: f64,
    /// Octets received per device.
    pub down: f64,
    /// The most octets one device sent.
    pub up_max: u64,
    /// The most octets one device received.
    pub down_max: u64,
    /// The trees after the operation.
    pub tree: TreeStats,
    /// Why the operation was not run, or what it leaves out.
    pub note: Option<&'static str>,
}

impl Row {
    fn measured(d: u32, op: Op, mode: Mode, devices: u32, meter: &Meter, tree: TreeStats) -> Self {
        let n = f64::from(devices.max(1));
        let costs = meter.costs.values();
        let ms = |c: &Cost| c.cpu.as_secs_f64() * 1000.0;
        Row {
            d,
            op,
            mode,
            devices,
            messages: meter.messages,
            cpu_ms: meter.costs.values().map(ms).sum::<f64>() / n,
            cpu_ms_max: costs.clone().map(ms).fold(0.0, f64::max),
            up: meter.costs.values().map(|c| c.up as f64).sum::<f64>() / n,
            down: meter.costs.values().map(|c| c.down as f64).sum::<f64>() / n,
            up_max: costs.clone().map(|c| c.up).max().unwrap_or(0),
            down_max: costs.map(|c| c.down).max().unwrap_or(0),
            tree,
            note: None,
        }
    }

    /// Whether the operation ran.
    pub fn ran(&self) -> bool {
        self.note != Some(SKIPPED_NOTE)
    }

    /// Octets sent and received per device.
    pub fn bytes(&self) -> f64 {
        self.up + self.down
    }
}

/// The note of an operation that did not run.
pub const SKIPPED_NOTE: &str = "not run: removing a device needs D >= 2";

/// The outcome of a benchmark.
#[derive(Debug, Clone)]
pub struct Report {
    /// The parameters.
    pub config: Config,
    /// One row per D, operation and run.
    pub rows: Vec<Row>,
    /// The trees right after setup, per D and run.
    pub setup_trees: Vec<(u32, Mode, TreeStats)>,
    /// Wall time of setup and of the whole run pair, per D and run.
    pub wall: Vec<(u32, Mode, Duration, Duration)>,
    /// Comparisons of epoch authenticators made (all agreed).
    pub epoch_checks: usize,
}

/// One way of running the scenario.
trait World {
    /// Emulation groups, KeyPackages and the groups, as described in the module docs.
    fn setup(&mut self, progress: &ProgressBar) -> Result<(), BenchError>;
    /// [`Op::Remove`] for `user`.
    fn remove_device(
        &mut self,
        user: u32,
        meter: &mut Meter,
        progress: &ProgressBar,
    ) -> Result<(), BenchError>;
    /// [`Op::Add`] for `user`.
    fn add_device(
        &mut self,
        user: u32,
        meter: &mut Meter,
        progress: &ProgressBar,
    ) -> Result<(), BenchError>;
    /// [`Op::Update`].
    fn update(&mut self, meter: &mut Meter, progress: &ProgressBar) -> Result<(), BenchError>;
    /// [`Op::Pcs`].
    fn pcs(&mut self, meter: &mut Meter, progress: &ProgressBar) -> Result<(), BenchError>;
    /// [`Op::Messages`]: `count` per group.
    fn messages(
        &mut self,
        count: u32,
        meter: &mut Meter,
        progress: &ProgressBar,
    ) -> Result<(), BenchError>;
    /// The users' devices.
    fn devices(&self) -> u32;
    /// The trees of all groups, as one member sees them.
    fn trees(&self) -> Result<Vec<TreeStats>, BenchError>;
    /// Compares the epoch authenticators in every group; returns the comparisons made.
    fn check(&self, after: &'static str) -> Result<usize, BenchError>;
}

fn svc() -> Services<'static> {
    Services::new(&CRYPTO)
}

fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 3600 * 24 * 90,
    }
}

fn own_leaf(name: String, suite: CipherSuite) -> Result<OwnLeaf, BenchError> {
    Ok(OwnLeaf {
        params: LeafNodeParams::new(suite, Credential::basic(name.into_bytes())),
        encryption_key: HpkeKeySource::Generate,
        signature_key: CRYPTO.suite(suite)?.signature_generate_key_pair()?,
    })
}

fn encoded_len(body: MlsMessageBody) -> Result<usize, BenchError> {
    Ok(MlsMessage::new(body).to_bytes()?.len())
}

fn payload(by: DeviceId, k: u32) -> Vec<u8> {
    let mut text = format!("{by} #{k}").into_bytes();
    text.resize(PAYLOAD_LEN, b'.');
    text
}

/// Whether all `values` (device, epoch authenticator) are equal.
fn agree(
    mode: Mode,
    group: usize,
    after: &'static str,
    values: &[(DeviceId, &[u8])],
) -> Result<(), BenchError> {
    let Some((first, value)) = values.first() else {
        return Ok(());
    };
    match values.iter().find(|(_, v)| v != value) {
        Some((other, _)) => Err(BenchError::Disagreement {
            mode,
            group,
            after,
            first: *first,
            other: *other,
        }),
        None => Ok(()),
    }
}

/// The steps the progress bar counts for one run of D devices per user.
fn steps(config: &Config, layout: &Layout, d: u32) -> u64 {
    let g = u64::from(config.groups);
    let churn = layout.groups_of(CHURN_USER).len() as u64;
    let mut n = g;
    if config.warm_up {
        n += layout.members.iter().map(|m| m.len() as u64).sum::<u64>();
    }
    for op in &config.ops {
        n += match op {
            Op::Remove if d < 2 => 0,
            Op::Remove | Op::Add => churn,
            Op::Update | Op::Pcs => layout.members.iter().map(|m| m.len() as u64).sum(),
            Op::Messages => g * u64::from(config.messages),
        };
    }
    n
}

/// Runs the benchmark: for each D, the virtual-client run and the per-device run side by
/// side (both set up, then each operation in one run and at once in the other). The progress
/// bar (possibly hidden) counts group-level steps.
pub fn run(config: &Config, progress: &ProgressBar) -> Result<Report, BenchError> {
    config.validate()?;
    let mut devices = config.devices.clone();
    devices.sort_unstable();
    devices.dedup();
    let total: u64 = devices
        .iter()
        .map(|&d| 2 * steps(config, &Layout::new(config, d), d))
        .sum();
    progress.set_length(total);
    let mut ops = config.ops.clone();
    ops.sort_unstable();
    ops.dedup();
    let mut report = Report {
        config: config.clone(),
        rows: Vec::new(),
        setup_trees: Vec::new(),
        wall: Vec::new(),
        epoch_checks: 0,
    };
    for &d in &devices {
        let layout = Layout::new(config, d);
        // Both runs side by side, one operation after the other, so that both see the
        // machine in the same state (other load, caches) for the same operation.
        let mut worlds: Vec<(Mode, Box<dyn World>, Duration, Duration)> = vec![
            (
                Mode::Virtual,
                Box::new(virtual_world::VirtualWorld::new(layout.clone())),
                Duration::ZERO,
                Duration::ZERO,
            ),
            (
                Mode::PerDevice,
                Box::new(device_world::DeviceWorld::new(layout.clone())),
                Duration::ZERO,
                Duration::ZERO,
            ),
        ];
        for (mode, world, setup, total) in worlds.iter_mut() {
            let started = Instant::now();
            progress.set_message(format!("D={d} {mode}: setup"));
            world.setup(progress)?;
            if config.warm_up {
                progress.set_message(format!("D={d} {mode}: warm-up"));
                world.update(&mut Meter::default(), progress)?;
            }
            *setup = started.elapsed();
            *total = *setup;
            report.epoch_checks += world.check("setup")?;
            report
                .setup_trees
                .push((d, *mode, TreeStats::mean(&world.trees()?)));
        }
        for &op in &ops {
            for (mode, world, _, total) in worlds.iter_mut() {
                let (mode, world) = (*mode, world.as_mut());
                if op == Op::Remove && d < 2 {
                    report.rows.push(Row {
                        note: Some(SKIPPED_NOTE),
                        ..Row::measured(
                            d,
                            op,
                            mode,
                            world.devices(),
                            &Meter::default(),
                            TreeStats::mean(&world.trees()?),
                        )
                    });
                    continue;
                }
                let started = Instant::now();
                progress.set_message(format!("D={d} {mode}: {op}"));
                let mut meter = Meter::default();
                match op {
                    Op::Remove => world.remove_device(CHURN_USER, &mut meter, progress)?,
                    Op::Add => world.add_device(CHURN_USER, &mut meter, progress)?,
                    Op::Update => world.update(&mut meter, progress)?,
                    Op::Pcs => world.pcs(&mut meter, progress)?,
                    Op::Messages => world.messages(config.messages, &mut meter, progress)?,
                }
                report.epoch_checks += world.check(op.name())?;
                let tree = TreeStats::mean(&world.trees()?);
                report
                    .rows
                    .push(Row::measured(d, op, mode, world.devices(), &meter, tree));
                *total += started.elapsed();
            }
        }
        for (mode, _, setup, total) in worlds {
            report.wall.push((d, mode, setup, total));
        }
    }
    Ok(report)
}

/// A list of D values: `4`, `1,2,4` or `1..=6` (also `1..6`, exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList(pub Vec<u32>);

impl std::str::FromStr for DeviceList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|e| format!("'{t}' is not a device count: {e}"))
        };
        let values: Vec<u32> = if let Some((a, b)) = s.split_once("..=") {
            (num(a)?..=num(b)?).collect()
        } else if let Some((a, b)) = s.split_once("..") {
            (num(a)?..num(b)?).collect()
        } else {
            s.split(',').map(num).collect::<Result<_, _>>()?
        };
        if values.is_empty() || values.contains(&0) {
            return Err(format!("'{s}': D values must be at least 1"));
        }
        Ok(DeviceList(values))
    }
}

/// `vmls bench` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Users (U) [default: 50; 10 with --quick].
    #[arg(long, short = 'u')]
    pub users: Option<u32>,
    /// Devices per user (D): one value, a list `1,2,4` or a range `1..=6` [default: 4].
    #[arg(long, short = 'd')]
    pub devices: Option<DeviceList>,
    /// Higher-level groups (G) [default: 20; 5 with --quick].
    #[arg(long, short = 'g')]
    pub groups: Option<u32>,
    /// The share of the users in each group, a rotating window (0 < F <= 1) [default: 1].
    #[arg(long)]
    pub fraction: Option<f64>,
    /// Application messages per group [default: 100].
    #[arg(long)]
    pub messages: Option<u32>,
    /// The operations to measure, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub ops: Vec<Op>,
    /// Where to write bench.csv and bench.svg.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Before the measured operations, one unmeasured Commit with path per user per group
    /// (trees with filled parents instead of fresh ones).
    #[arg(long)]
    pub warm_up: bool,
    /// The cipher suite of every group, emulation groups included, as a number (`1`,
    /// `0x004F` for the X-Wing suite; `vmls suites` lists them) [default: 1].
    #[arg(long, value_parser = parse_suite)]
    pub suite: Option<CipherSuite>,
    /// Small preset for a run of seconds: 10 users × 4 devices in 5 groups (flags override).
    #[arg(long)]
    pub quick: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl BenchArgs {
    /// The parameters: the preset, then the flags given.
    pub fn config(&self) -> Config {
        let mut c = if self.quick {
            Config::quick()
        } else {
            Config::default()
        };
        if let Some(u) = self.users {
            c.users = u;
        }
        if let Some(d) = &self.devices {
            c.devices = d.0.clone();
        }
        if let Some(g) = self.groups {
            c.groups = g;
        }
        if let Some(f) = self.fraction {
            c.fraction = f;
        }
        if let Some(m) = self.messages {
            c.messages = m;
        }
        if !self.ops.is_empty() {
            c.ops = self.ops.clone();
        }
        c.warm_up = self.warm_up;
        if let Some(suite) = self.suite {
            c.suite = suite;
        }
        c
    }
}

/// A cipher suite number, decimal or `0x` hexadecimal.
fn parse_suite(s: &str) -> Result<CipherSuite, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => s.parse::<u16>(),
    };
    parsed
        .map(CipherSuite)
        .map_err(|e| format!("'{s}' is not a cipher suite number: {e}"))
}

/// `vmls bench`: runs, prints the table and the crossovers, writes the CSV and the plot.
pub fn main(args: &BenchArgs) -> Result<(), BenchError> {
    let config = args.config();
    config.validate()?;
    let progress = if args.no_progress {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} steps, eta {eta} {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    let started = Instant::now();
    let report = run(&config, &progress)?;
    progress.finish_and_clear();
    print!("{}", report::table(&report));
    println!(
        "total wall time {:.1} s; {} epoch-authenticator comparisons, all equal",
        started.elapsed().as_secs_f64(),
        report.epoch_checks
    );
    let files = report::write(&report, &args.out)?;
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
