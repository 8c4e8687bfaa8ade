//! Side-by-side benchmarks of three RFC 9420 engines on the same inputs and cipher suite 1
//! (`MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`): this project's `mls-engine` ("vmls"),
//! OpenMLS 0.9.2 and mls-rs 0.57.
//!
//! * [`Engine`]: the operations measured, implemented once per engine in [`engines`]. Every
//!   operation takes and returns encoded `MLSMessage`s, so decoding and encoding are part of
//!   what is measured, and all engines see inputs of the same shape.
//! * [`Shape`] / [`Fixture`]: the group states measured on (a full tree of 16, 256 or 4096
//!   members, or a blank-heavy tree of 256), built once per engine and shape.
//! * [`Selection`]: which shapes and engines to run (`VMLS_BENCH_SIZES`, `VMLS_BENCH_ENGINES`,
//!   `VMLS_BENCH_PQ_SIZES`).
//! * The post-quantum suite (X-Wing, 0x004F): `mls-engine` alone ([`engines::VmlsPq`], no
//!   other engine here has it) on its own shapes, `full-256-pq` and `copath-4096-pq` by default.
//! * [`Sizes`]: the message sizes printed by the `sizes` binary and by the benchmark setup.
//!
//! Not a library for anyone else: it exists for `cargo bench -p vmls-bench` and
//! `cargo run -p vmls-bench --release --bin sizes`.
#![forbid(unsafe_code)]

pub mod engines;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The group ID of every group created (the same in all engines, so sizes compare).
pub const GROUP_ID: &[u8] = b"vmls-bench";

/// The application message measured: 1 KiB.
pub const APPLICATION_MESSAGE: [u8; 1024] = [0x5a; 1024];

/// Seconds since the Unix epoch, for the engines that take the time as an argument.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The operations measured, on one engine. Members and joiners are the engine's own state
/// types; every message in and out is an encoded `MLSMessage`. Commits are framed as
/// PublicMessage, application messages as PrivateMessage without padding, and Welcomes carry
/// the `ratchet_tree` extension, in every engine.
pub trait Engine {
    /// The engine's name in reports.
    const NAME: &'static str;
    /// One member's state in one group.
    type Member;
    /// A client that has published a KeyPackage and can join from a Welcome to it.
    type Joiner;

    /// A new one-member group of cipher suite 1, created by a client called `name`.
    fn create(name: &str) -> Self::Member;
    /// A new client called `name` and its KeyPackage (an encoded `MLSMessage`).
    fn new_joiner(name: &str) -> (Self::Joiner, Vec<u8>);
    /// An independent copy of a member's state (for one benchmark iteration).
    fn fork(member: &Self::Member) -> Self::Member;
    /// An independent copy of a joiner (for one benchmark iteration).
    fn fork_joiner(joiner: &Self::Joiner) -> Self::Joiner;

    /// Creates a Commit with an UpdatePath and no proposals (a full-path self update) and
    /// merges it; returns the Commit.
    fn commit_with_path(member: &mut Self::Member) -> Vec<u8>;
    /// Creates a Commit adding `key_packages` (no UpdatePath unless the engine requires one)
    /// and merges it; returns the Commit and the Welcome.
    fn add(member: &mut Self::Member, key_packages: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>);
    /// Processes a Commit from another member and merges it.
    fn process_commit(member: &mut Self::Member, commit: &[u8]);
    /// Joins from a Welcome (the tree comes in its `ratchet_tree` extension).
    fn join(joiner: Self::Joiner, welcome: &[u8]) -> Self::Member;
    /// Encrypts application data.
    fn encrypt(member: &mut Self::Member, data: &[u8]) -> Vec<u8>;
    /// Decrypts an application message and returns its data.
    fn decrypt(member: &mut Self::Member, message: &[u8]) -> Vec<u8>;

    /// The encoded ratchet tree (`optional<Node> ratchet_tree<V>`).
    fn ratchet_tree(member: &Self::Member) -> Vec<u8>;
    /// The current epoch's epoch authenticator (to check that two members agree).
    fn epoch_authenticator(member: &Self::Member) -> Vec<u8>;
}

/// A group state the operations are measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `n` members (a power of two) and no blank parent node and no unmerged leaf: every
    /// parent node was last set by an UpdatePath after all leaves below it were added.
    Full(usize),
    /// `n` members added by the creator in one Commit without a path; no one has committed
    /// since, so every parent node is blank.
    Blank(usize),
    /// `n` members (a power of two) where every node the measured committer encrypts to is
    /// non-blank without unmerged leaves: the committer's whole direct path and copath
    /// (the roots of the subtrees of 2, 4, ..., n/2 leaves beside it) are set, the nodes
    /// inside those subtrees are blank. For the committer and its sibling receiver the work
    /// of a commit is that of a full tree; it is reachable with log n joins instead of n/2
    /// (see [`Shared::build`]), so it stands in for the full tree at 4096 members.
    CopathFull(usize),
}

impl Shape {
    /// The number of members.
    pub fn members(self) -> usize {
        match self {
            Shape::Full(n) | Shape::Blank(n) | Shape::CopathFull(n) => n,
        }
    }

    /// A short label: `full-256`, `blank-256`, `copath-4096`.
    pub fn label(self) -> String {
        match self {
            Shape::Full(n) => format!("full-{n}"),
            Shape::Blank(n) => format!("blank-{n}"),
            Shape::CopathFull(n) => format!("copath-{n}"),
        }
    }
}

/// Which shapes and engines to run, from the environment:
/// `VMLS_BENCH_SIZES` (comma-separated; `16`, `256`, `4096` for full trees, `b256` for the
/// blank-heavy tree, `c4096` for [`Shape::CopathFull`]; default `16,256,b256,c256,c4096`:
/// a true full tree of 4096 costs O(n²) joins to build, about an hour here) and `VMLS_BENCH_ENGINES` (comma-separated
/// engine names; default all three). `VMLS_BENCH_PQ_SIZES` (same syntax, default `256,c4096`,
/// empty for none) are the shapes [`engines::VmlsPq`] runs on, when `vmls` (or `vmls-pq`) is
/// selected.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The shapes, in the order given.
    pub shapes: Vec<Shape>,
    /// The shapes of the post-quantum suite.
    pub pq_shapes: Vec<Shape>,
    /// The engine names selected.
    pub engines: Vec<String>,
}

/// Parses a comma-separated list of shapes (see [`Selection`]).
fn parse_shapes(sizes: &str) -> Vec<Shape> {
    sizes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let number = |t: &str| -> usize {
                t.parse()
                    .expect("VMLS_BENCH_SIZES: N, bN or cN with a number N")
            };
            if let Some(n) = s.strip_prefix('b') {
                Shape::Blank(number(n))
            } else if let Some(n) = s.strip_prefix('c') {
                Shape::CopathFull(number(n))
            } else {
                Shape::Full(number(s))
            }
        })
        .collect()
}

impl Selection {
    /// Reads the selection from the environment (see [`Selection`]).
    pub fn from_env() -> Self {
        let sizes =
            std::env::var("VMLS_BENCH_SIZES").unwrap_or_else(|_| "16,256,b256,c256,c4096".into());
        let shapes = parse_shapes(&sizes);
        let pq_shapes = parse_shapes(
            &std::env::var("VMLS_BENCH_PQ_SIZES").unwrap_or_else(|_| "256,c4096".into()),
        );
        let engines = std::env::var("VMLS_BENCH_ENGINES")
            .unwrap_or_else(|_| "vmls,openmls,mls-rs".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Self {
            shapes,
            pq_shapes,
            engines,
        }
    }

    /// Whether engine `E` is selected (`vmls-pq` goes with `vmls`).
    pub fn has<E: Engine>(&self) -> bool {
        self.engines
            .iter()
            .any(|e| e == E::NAME || (E::NAME == "vmls-pq" && e == "vmls"))
    }
}

/// Message sizes in octets, measured on a [`Fixture`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Sizes {
    /// The Commit with path (no proposals).
    pub commit: usize,
    /// The Commit adding one member.
    pub add_commit: usize,
    /// The Welcome of that Commit (with the `ratchet_tree` extension).
    pub welcome: usize,
    /// The encoded ratchet tree before the add.
    pub ratchet_tree: usize,
    /// The PrivateMessage carrying 1 KiB of application data.
    pub application: usize,
}

/// What every engine's fixture of one [`Shape`] shares, built once with `mls-engine`
/// (see [`Shared::build`]): the same members, leaves and KeyPackages for all three engines.
pub struct Shared {
    /// The shape.
    pub shape: Shape,
    /// The cipher suite of the group.
    pub suite: u16,
    /// Full trees: the member holding the group of the first `n - 2` leaves (leaf `n - 4`),
    /// every parent node above them set after all leaves below it were added.
    pub holder: Option<mls_engine::group::Group>,
    /// Blank-heavy trees: the KeyPackages of leaves `2..n` (encoded `MLSMessage`s).
    pub key_packages: Vec<Vec<u8>>,
    /// How long building this took (or loading it from the cache).
    pub setup: Duration,
}

impl Shared {
    /// Builds the shared part of `shape` (full trees: cached across runs in the system's
    /// temporary directory as `vmls-bench-base-<n>-v<state format>.bin`, a serialised
    /// `mls-engine` group state; `VMLS_BENCH_NO_CACHE=1` rebuilds it).
    ///
    /// Full tree of `n` members (a power of two, at least 4), built with as few joins as a
    /// full tree allows: one member at a time holds the group; it adds the next two leaves
    /// (an even leaf `h` and the odd leaf `h + 1`) in one Commit without path; the even leaf
    /// joins from the Welcome and commits with path, which sets every parent node above `h`
    /// and `h + 1` after both exist and clears the unmerged leaves there; then it holds the
    /// group. The odd leaves never need a state. This stops at `n - 2` leaves: each engine's
    /// fixture adds its own last two members (see [`Fixture::build`]). The result has the
    /// tree shape of "every member committed once, in leaf order": no blank parent node, no
    /// unmerged leaf. Each of the `n / 2` joins validates the whole tree (every leaf
    /// signature), so this costs O(n²): about an hour at 4096 on 2 shared cores (hence the
    /// cache; its leaves' lifetimes end 90 days after it was built).
    pub fn build(shape: Shape) -> Self {
        Self::build_on::<0x0001>(shape)
    }

    /// [`Shared::build`] on cipher suite `S` (its members are [`engines::VmlsOn<S>`]
    /// clients; only that engine can be measured on it unless `S` is 1).
    pub fn build_on<const S: u16>(shape: Shape) -> Self {
        let start = Instant::now();
        match shape {
            Shape::Full(n) => {
                assert!(
                    n >= 4 && n.is_power_of_two(),
                    "full trees here have 2^k >= 4 members"
                );
                let holder = Some(cached_base::<S>(n));
                Self {
                    shape,
                    suite: S,
                    holder,
                    key_packages: vec![],
                    setup: start.elapsed(),
                }
            }
            Shape::CopathFull(n) => {
                assert!(
                    n >= 8 && n.is_power_of_two(),
                    "copath trees here have 2^k >= 8 members"
                );
                Self {
                    shape,
                    suite: S,
                    holder: Some(build_copath_base::<S>(n)),
                    key_packages: vec![],
                    setup: start.elapsed(),
                }
            }
            Shape::Blank(n) => {
                let key_packages = (2..n)
                    .map(|i| engines::VmlsOn::<S>::new_joiner(&format!("member-{i}")).1)
                    .collect();
                Self {
                    shape,
                    suite: S,
                    holder: None,
                    key_packages,
                    setup: start.elapsed(),
                }
            }
        }
    }

    /// The benchmark group name: the shape's label, with `-pq` on the post-quantum suite.
    pub fn label(&self) -> String {
        if self.suite == 0x0001 {
            self.shape.label()
        } else {
            format!("{}-pq", self.shape.label())
        }
    }
}

fn cached_base<const S: u16>(n: usize) -> mls_engine::group::Group {
    use mls_engine::group::{Group, STATE_FORMAT_VERSION};
    // Suite 1 keeps its old file name.
    let suite = if S == 0x0001 {
        String::new()
    } else {
        format!("-suite{S:04x}")
    };
    let path = std::env::temp_dir().join(format!(
        "vmls-bench-base-{n}{suite}-v{STATE_FORMAT_VERSION}.bin"
    ));
    let use_cache = std::env::var("VMLS_BENCH_NO_CACHE").map_or(true, |v| v.is_empty() || v == "0");
    if use_cache {
        if let Some(group) = std::fs::read(&path)
            .ok()
            .and_then(|b| Group::from_bytes(&b).ok())
        {
            return group;
        }
    }
    let group = build_base::<S>(n);
    if let Ok(bytes) = group.to_bytes() {
        let _ = std::fs::write(&path, bytes);
    }
    group
}

/// The shared part of [`Shape::CopathFull`]: leaf 0 creates the group and adds leaves
/// `1..n-2` in one Commit without path (every parent blank, no unmerged leaf). For each
/// subtree beside the committer-to-be (leaf `n - 2`): leaves `[0, n/2)`, `[n/2, 3n/4)`, ...,
/// `[n-4, n-2)`, its leftmost leaf joins from that Welcome (leaf 0 is already in), and then
/// they commit with path in that order, each processed by the later ones. Each subtree's
/// root is then set after all its leaves were added. Returns the last of them (leaf `n - 4`).
fn build_copath_base<const S: u16>(n: usize) -> mls_engine::group::Group {
    let mut creator = engines::VmlsOn::<S>::create("member-0");
    let mut joiners = std::collections::BTreeMap::new();
    let mut key_packages = Vec::with_capacity(n - 3);
    // Leftmost leaves of the subtrees [0, n/2), [n/2, 3n/4), ..., [n-4, n-2).
    let mut starts = vec![];
    let mut start = 0;
    let mut size = n / 2;
    while size >= 2 {
        starts.push(start);
        start += size;
        size /= 2;
    }
    for i in 1..n - 2 {
        let (j, kp) = engines::VmlsOn::<S>::new_joiner(&format!("member-{i}"));
        if starts.contains(&i) {
            joiners.insert(i, j);
        }
        key_packages.push(kp);
    }
    let (_, welcome) = engines::VmlsOn::<S>::add(&mut creator, &key_packages);
    let mut live = vec![creator];
    for (_, j) in joiners {
        live.push(engines::VmlsOn::<S>::join(j, &welcome));
    }
    for k in 0..live.len() {
        let commit = engines::VmlsOn::<S>::commit_with_path(&mut live[k]);
        for other in live.iter_mut().skip(k + 1) {
            engines::VmlsOn::<S>::process_commit(other, &commit);
        }
    }
    live.pop().expect("at least one live member")
}

fn build_base<const S: u16>(n: usize) -> mls_engine::group::Group {
    let mut holder = engines::VmlsOn::<S>::create("member-0");
    let (_, kp1) = engines::VmlsOn::<S>::new_joiner("member-1");
    engines::VmlsOn::<S>::add(&mut holder, &[kp1]);
    engines::VmlsOn::<S>::commit_with_path(&mut holder);
    let mut h = 2;
    while h < n - 2 {
        let (even, kp_even) = engines::VmlsOn::<S>::new_joiner(&format!("member-{h}"));
        let (_, kp_odd) = engines::VmlsOn::<S>::new_joiner(&format!("member-{}", h + 1));
        let (_, welcome) = engines::VmlsOn::<S>::add(&mut holder, &[kp_even, kp_odd]);
        let mut next = engines::VmlsOn::<S>::join(even, &welcome);
        engines::VmlsOn::<S>::commit_with_path(&mut next);
        holder = next;
        h += 2;
    }
    holder
}

/// One engine's group state for one [`Shape`], with every input the operations need, all
/// built once: the benchmarks fork the states for each iteration.
pub struct Fixture<E: Engine> {
    /// The shape.
    pub shape: Shape,
    /// The member that commits, adds and encrypts.
    pub committer: E::Member,
    /// A member that processes and decrypts.
    pub receiver: E::Member,
    /// A Commit with path by `committer` in the current epoch (input of processing).
    pub commit: Vec<u8>,
    /// A client not yet in the group (input of the join).
    pub joiner: E::Joiner,
    /// `joiner`'s KeyPackage (input of the add).
    pub key_package: Vec<u8>,
    /// `committer`'s Welcome adding `joiner` in the current epoch (input of the join).
    pub welcome: Vec<u8>,
    /// The sizes measured.
    pub sizes: Sizes,
    /// How long the engine's own part of the setup took.
    pub setup: Duration,
}

impl<E: Engine> Fixture<E> {
    /// Builds engine `E`'s group state of `shared.shape` and the inputs of every operation,
    /// checking that committer and receiver agree and that each message is processed as
    /// expected.
    ///
    /// * Full tree of `n`: the shared holder (an `mls-engine` member) adds two clients of
    ///   engine `E` as leaves `n - 2` and `n - 1`; both join from the Welcome; leaf `n - 2`
    ///   commits with path (now the tree is full) and is the committer; leaf `n - 1`
    ///   processes that commit and is the receiver.
    /// * Blank-heavy tree of `n`: a client of `E` creates the group and adds, in one Commit
    ///   without path, the receiver (an `E` client, leaf 1) and the `n - 2` shared
    ///   KeyPackages; the receiver joins. The committer is the creator.
    pub fn build(shared: &Shared) -> Self {
        let start = Instant::now();
        let (committer, receiver) = match (shared.shape, &shared.holder) {
            (Shape::Full(n) | Shape::CopathFull(n), Some(holder)) => {
                let mut holder = holder.clone();
                let (even, kp_even) = E::new_joiner(&format!("member-{}", n - 2));
                let (odd, kp_odd) = E::new_joiner(&format!("member-{}", n - 1));
                let (_, welcome) = engines::Vmls::add(&mut holder, &[kp_even, kp_odd]);
                let mut committer = E::join(even, &welcome);
                let commit = E::commit_with_path(&mut committer);
                let mut receiver = E::join(odd, &welcome);
                E::process_commit(&mut receiver, &commit);
                (committer, receiver)
            }
            _ => {
                let mut creator = E::create("member-0");
                let (receiver, kp) = E::new_joiner("member-1");
                let mut key_packages = vec![kp];
                key_packages.extend(shared.key_packages.iter().cloned());
                let (_, welcome) = E::add(&mut creator, &key_packages);
                (creator, E::join(receiver, &welcome))
            }
        };
        let setup = start.elapsed();
        let shape = shared.shape;
        assert_eq!(
            E::epoch_authenticator(&committer),
            E::epoch_authenticator(&receiver),
            "{}: committer and receiver agree",
            E::NAME
        );
        let ratchet_tree = E::ratchet_tree(&committer).len();

        // A commit with path, processed by the receiver.
        let commit = E::commit_with_path(&mut E::fork(&committer));
        let mut check = E::fork(&receiver);
        E::process_commit(&mut check, &commit);

        // An add and a join.
        let (joiner, key_package) = E::new_joiner("joiner");
        let mut adder = E::fork(&committer);
        let (add_commit, welcome) = E::add(&mut adder, std::slice::from_ref(&key_package));
        let joined = E::join(E::fork_joiner(&joiner), &welcome);
        assert_eq!(
            E::epoch_authenticator(&joined),
            E::epoch_authenticator(&adder),
            "{}: the joiner agrees with the adder",
            E::NAME
        );

        // An application message.
        let application = E::encrypt(&mut E::fork(&committer), &APPLICATION_MESSAGE);
        assert_eq!(
            E::decrypt(&mut E::fork(&receiver), &application),
            APPLICATION_MESSAGE
        );

        let sizes = Sizes {
            commit: commit.len(),
            add_commit: add_commit.len(),
            welcome: welcome.len(),
            ratchet_tree,
            application: application.len(),
        };
        Self {
            shape,
            committer,
            receiver,
            commit,
            joiner,
            key_package,
            welcome,
            sizes,
            setup,
        }
    }

    /// One line of the sizes table (Markdown).
    pub fn sizes_row(&self) -> String {
        let s = self.sizes;
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            self.shape.label(),
            E::NAME,
            s.commit,
            s.add_commit,
            s.welcome,
            s.ratchet_tree,
            s.application,
            self.setup.as_secs_f64()
        )
    }
}

/// The header of the table of [`Fixture::sizes_row`].
pub const SIZES_HEADER: &str = "| shape | engine | commit with path (B) | add commit (B) | Welcome (B) | ratchet tree (B) | 1 KiB application message (B) | engine setup (s) |\n|---|---|---:|---:|---:|---:|---:|---:|";
