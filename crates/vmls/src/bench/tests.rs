use indicatif::ProgressBar;

use super::*;

fn tiny() -> Config {
    Config {
        users: 3,
        devices: vec![1, 2],
        groups: 2,
        fraction: 1.0,
        messages: 4,
        ops: Op::ALL.to_vec(),
        warm_up: false,
        suite: SUITE,
    }
}

fn row(report: &Report, d: u32, op: Op, mode: Mode) -> &Row {
    report
        .rows
        .iter()
        .find(|r| r.d == d && r.op == op && r.mode == mode)
        .unwrap()
}

#[test]
fn the_scenario_runs_end_to_end_and_both_runs_agree_on_the_shape() {
    let report = run(&tiny(), &ProgressBar::hidden()).unwrap();
    // 2 values of D × 5 operations × 2 runs.
    assert_eq!(report.rows.len(), 20);
    // Every group's epoch authenticators were compared after setup and after every
    // operation run, in both runs: 2 groups × 2 runs × (5 checks at D = 1, where the removal
    // does not run, + 6 at D = 2).
    assert_eq!(report.epoch_checks, 2 * 2 * (5 + 6));
    for mode in Mode::BOTH {
        assert!(!row(&report, 1, Op::Remove, mode).ran());
        assert!(row(&report, 2, Op::Remove, mode).ran());
    }
    // Setup: the creator's leaf 0 is blank (a hole); 3 users are 3 leaves, 6 devices 6
    // (leaf 7 pads the tree and is no hole).
    let setup = |d, mode| {
        report
            .setup_trees
            .iter()
            .find(|(dd, m, _)| *dd == d && *m == mode)
            .unwrap()
            .2
    };
    let (v, p) = (setup(2, Mode::Virtual), setup(2, Mode::PerDevice));
    assert_eq!((v.leaves, v.members, v.blank_leaves), (4.0, 3.0, 1.0));
    assert_eq!((p.leaves, p.members, p.blank_leaves), (8.0, 6.0, 1.0));
    assert!(p.path_encryptions > v.path_encryptions);
    assert!(p.tree_bytes > v.tree_bytes);
    // D = 1: the same number of leaves either way.
    assert_eq!(
        setup(1, Mode::Virtual).leaves,
        setup(1, Mode::PerDevice).leaves
    );

    // Removing a device blanks a leaf with one leaf per device, and none with virtual
    // clients (the user's leaf stays).
    let (v, p) = (
        row(&report, 2, Op::Remove, Mode::Virtual),
        row(&report, 2, Op::Remove, Mode::PerDevice),
    );
    assert_eq!(v.tree.blank_leaves, 1.0);
    assert_eq!(p.tree.blank_leaves, 2.0);
    assert!(p.tree.path_encryptions > v.tree.path_encryptions);
    assert_eq!((v.devices, p.devices), (5, 5));
    // Virtual: one emulation commit + one commit per group; per-device: one per group.
    assert_eq!((v.messages, p.messages), (3, 2));
    // The new device fills the blank leaf 0 with one leaf per device; the virtual tree
    // does not change.
    let (v, p) = (
        row(&report, 2, Op::Add, Mode::Virtual),
        row(&report, 2, Op::Add, Mode::PerDevice),
    );
    assert_eq!((v.tree.leaves, v.tree.members), (4.0, 3.0));
    assert_eq!(
        (p.tree.leaves, p.tree.members, p.tree.blank_leaves),
        (8.0, 6.0, 1.0)
    );
    assert_eq!(v.note, None);
    // Virtual: KeyPackage, commit, Welcome, state transfer; per-device: KeyPackage, commit,
    // Welcome per group.
    assert_eq!((v.messages, p.messages), (4, 6));
    for op in [Op::Update, Op::Pcs, Op::Messages] {
        let (v, p) = (
            row(&report, 2, op, Mode::Virtual),
            row(&report, 2, op, Mode::PerDevice),
        );
        assert!(p.tree.leaves > v.tree.leaves, "{op}");
        assert!(v.cpu_ms > 0.0 && p.cpu_ms > 0.0, "{op}");
        assert!(
            v.up > 0.0 && v.down > 0.0 && p.up > 0.0 && p.down > 0.0,
            "{op}"
        );
    }
    // One commit per user per group; 4 messages per group.
    assert_eq!(row(&report, 2, Op::Update, Mode::Virtual).messages, 6);
    assert_eq!(row(&report, 2, Op::Update, Mode::PerDevice).messages, 6);
    // PCS for every device: per-device, each of the 6 devices commits in both groups;
    // virtual, each of the 3 users makes one emulation commit and one commit per group.
    assert_eq!(row(&report, 2, Op::Pcs, Mode::PerDevice).messages, 12);
    assert_eq!(row(&report, 2, Op::Pcs, Mode::Virtual).messages, 3 + 6);
    // At D = 1 no device was removed but user 0 gained one: 4 devices.
    assert_eq!(row(&report, 1, Op::Pcs, Mode::PerDevice).messages, 8);
    assert_eq!(row(&report, 1, Op::Pcs, Mode::Virtual).messages, 3 + 6);
    assert_eq!(row(&report, 2, Op::Messages, Mode::Virtual).messages, 8);
    assert_eq!(row(&report, 2, Op::Messages, Mode::PerDevice).messages, 8);
    // Per-device: every message reaches the 5 other devices of its group; total octets
    // down are 5 × octets up.
    let p = row(&report, 2, Op::Messages, Mode::PerDevice);
    assert!((p.down - 5.0 * p.up).abs() < 1e-6, "{p:?}");
    // Virtual: the new device got the groups' state and reads every message too.
    let v = row(&report, 2, Op::Messages, Mode::Virtual);
    assert!((v.down - 5.0 * v.up).abs() < 1e-6, "{v:?}");
    assert_eq!(v.devices, 6);

    // The CSV and the plot.
    let dir = std::env::temp_dir().join(format!("vmls-bench-test-{}", std::process::id()));
    let files = report::write(&report, &dir).unwrap();
    let csv = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 21);
    assert!(lines[0].starts_with("users,devices_per_user,groups,"));
    assert!(lines[1..].iter().all(|l| l.starts_with("3,")));
    assert_eq!(lines.iter().filter(|l| l.contains(",update,")).count(), 4);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(",remove,") && l.contains("not run"))
            .count(),
        2
    );
    let svg = std::fs::read_to_string(&files[1]).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("update: CPU ms per device"));
    std::fs::remove_dir_all(&dir).unwrap();

    // A crossover per operation and metric, over the Ds where it ran.
    let xs = report::crossovers(&report);
    assert_eq!(xs.len(), 10);
    assert_eq!(xs[0].points.len(), 1); // remove: D = 2 only
    assert_eq!(xs[4].points.len(), 2); // update: D = 1 and 2
    let table = report::table(&report);
    assert!(table.contains("crossover"));
    assert!(table.contains("not run: removing a device needs D >= 2"));
}

#[test]
fn a_subset_of_operations_and_a_fraction_of_users() {
    let config = Config {
        users: 4,
        devices: vec![2],
        groups: 2,
        fraction: 0.5,
        messages: 3,
        ops: vec![Op::Messages, Op::Update],
        warm_up: true,
        suite: SUITE,
    };
    assert_eq!(config.users_per_group(), 2);
    let report = run(&config, &ProgressBar::hidden()).unwrap();
    let ops: Vec<(Op, Mode)> = report.rows.iter().map(|r| (r.op, r.mode)).collect();
    assert_eq!(
        ops,
        [
            (Op::Update, Mode::Virtual),
            (Op::Update, Mode::PerDevice),
            (Op::Messages, Mode::Virtual),
            (Op::Messages, Mode::PerDevice)
        ]
    );
    // Groups of 2 users: users 0-1 and 2-3.
    let v = row(&report, 2, Op::Update, Mode::Virtual);
    let p = row(&report, 2, Op::Update, Mode::PerDevice);
    assert_eq!((v.tree.members, p.tree.members), (2.0, 4.0));
    assert_eq!(v.messages, 4);
    assert_eq!(report::crossovers(&report).len(), 4);
}

#[test]
fn the_layout_rotates_a_window_of_users() {
    let config = Config {
        users: 5,
        groups: 3,
        fraction: 0.4,
        ..Config::default()
    };
    let layout = Layout::new(&config, 1);
    assert_eq!(layout.members, vec![vec![0, 1], vec![2, 3], vec![0, 4]]);
    assert_eq!(layout.groups_of(0), vec![0, 2]);
    assert_eq!(layout.users(), 5);
    let all = Layout::new(&Config::default(), 4);
    assert!(all.members.iter().all(|m| m.len() == 50));
}

#[test]
fn device_lists_and_invalid_parameters() {
    let parse = |s: &str| s.parse::<DeviceList>().map(|d| d.0);
    assert_eq!(parse("4"), Ok(vec![4]));
    assert_eq!(parse("1,2,8"), Ok(vec![1, 2, 8]));
    assert_eq!(parse("1..=4"), Ok(vec![1, 2, 3, 4]));
    assert_eq!(parse("2..4"), Ok(vec![2, 3]));
    assert!(parse("0,1").is_err());
    assert!(parse("x").is_err());
    assert!(parse("3..=1").is_err());
    for bad in [
        Config {
            users: 0,
            ..Config::default()
        },
        Config {
            fraction: 1.5,
            ..Config::default()
        },
        Config {
            ops: vec![],
            ..Config::default()
        },
    ] {
        assert!(matches!(
            run(&bad, &ProgressBar::hidden()),
            Err(BenchError::Config(_))
        ));
    }
}

#[test]
fn the_scenario_runs_on_the_pq_suite_with_larger_trees() {
    let config = |suite| Config {
        users: 2,
        devices: vec![2],
        groups: 1,
        fraction: 1.0,
        messages: 2,
        ops: vec![Op::Update, Op::Pcs],
        warm_up: false,
        suite,
    };
    let pq = run(
        &config(CipherSuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_ED25519),
        &ProgressBar::hidden(),
    )
    .unwrap();
    let classic = run(&config(SUITE), &ProgressBar::hidden()).unwrap();
    for mode in Mode::BOTH {
        let (q, c) = (row(&pq, 2, Op::Pcs, mode), row(&classic, 2, Op::Pcs, mode));
        assert_eq!(q.messages, c.messages, "{mode}");
        // X-Wing keys are 1216 octets and its ciphertexts 1120, X25519's 32 and 32.
        assert!(
            q.tree.tree_bytes > 5.0 * c.tree.tree_bytes,
            "{mode}: {q:?} {c:?}"
        );
        assert!(q.up > 5.0 * c.up, "{mode}");
    }
    assert!(report::table(&pq)
        .contains("suite 0x004f (MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519)"));
    let unknown = Config {
        suite: CipherSuite(4),
        ..config(SUITE)
    };
    assert!(matches!(
        run(&unknown, &ProgressBar::hidden()),
        Err(BenchError::Config(_))
    ));
    assert_eq!(parse_suite("0x004F"), Ok(CipherSuite(0x4F)));
    assert_eq!(parse_suite("7"), Ok(CipherSuite(7)));
    assert!(parse_suite("x").is_err());
}
