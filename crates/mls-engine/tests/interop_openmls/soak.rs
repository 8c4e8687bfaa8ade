//! A longer mixed run: a deterministic pseudo-random sequence of adds (with and without an
//! UpdatePath), removes, full-path updates, proposals committed by reference and
//! external joins and application messages among 3 to 12 OpenMLS and mls-engine members, with the agreement
//! check of [`Roster::check`] after every commit. It reaches tree shapes the scripted tests
//! do not: blank leaves in the middle, unmerged leaves under several parents, truncation.

use crate::external_join::{openmls_joins, vmls_joins};
use crate::groups::{
    add, mixed_group, propose_and_commit, remove, self_update, Handshakes, Joiner, Proposed,
};
use crate::harness::SUITES;
use crate::roster::{Member, Roster};

/// A small deterministic generator (xorshift64*), so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn names(roster: &Roster) -> Vec<String> {
    roster.members.iter().map(|(n, _)| n.clone()).collect()
}

/// OpenMLS member `adder` commits Adds without an UpdatePath (the new leaves become
/// unmerged leaves); everyone processes it and the joiners join.
pub fn add_without_path(
    roster: &mut Roster,
    step: &str,
    adder: &str,
    joiners: Vec<(String, Joiner)>,
    epoch: u64,
) {
    let (commit, welcome) = match roster.get(adder) {
        Member::OpenMls { client, group } => {
            let kps: Vec<_> = joiners
                .iter()
                .map(|(_, j)| j.openmls_key_package(client))
                .collect();
            let out = client.add_members_without_path(group, &kps);
            (out.commit, out.welcome)
        }
        Member::Vmls(_) => unreachable!("only OpenMLS members are asked"),
    };
    roster.deliver(step, adder, &commit, &[]);
    for (name, joiner) in joiners {
        let member = joiner.join(&welcome, None, Handshakes::Public);
        roster.push(&name, member);
    }
    roster.check(step, epoch);
}

/// Runs `operations` steps; returns how many of each kind ran: adds with path, adds without
/// path, removes by value, proposals committed by reference, updates, external joins.
fn run(suite: u16, seed: u64, operations: usize) -> [usize; 6] {
    let mut counts = [0; 6];
    let hs = Handshakes::Public;
    let mut rng = Rng(seed);
    let mut roster = mixed_group(suite, seed % 2 == 0, hs);
    let mut epoch = 1;
    let mut fresh = 0;
    for op in 0..operations {
        let all = names(&roster);
        let actor = all[rng.below(all.len())].clone();
        let step = format!("suite {suite}, seed {seed}, op {op}");
        match rng.below(7) {
            0 | 1 if all.len() < 12 => {
                let count = 1 + rng.below(3.min(12 - all.len()));
                let joiners: Vec<(String, Joiner)> = (0..count)
                    .map(|_| {
                        fresh += 1;
                        if rng.below(2) == 0 {
                            let name = format!("o{}", 100 + fresh);
                            let j = Joiner::openmls(&name, suite);
                            (name, j)
                        } else {
                            let name = format!("v{}", 100 + fresh);
                            let j = Joiner::vmls(&name, suite, hs);
                            (name, j)
                        }
                    })
                    .collect();
                epoch += 1;
                let is_openmls = matches!(roster.get(&actor), Member::OpenMls { .. });
                if is_openmls && rng.below(2) == 0 {
                    counts[1] += 1;
                    add_without_path(
                        &mut roster,
                        &format!("{step}: {actor} adds without path"),
                        &actor,
                        joiners,
                        epoch,
                    );
                } else {
                    counts[0] += 1;
                    let (names_owned, js): (Vec<String>, Vec<Joiner>) = joiners.into_iter().unzip();
                    let list: Vec<(&str, Joiner)> =
                        names_owned.iter().map(String::as_str).zip(js).collect();
                    add(
                        &mut roster,
                        &format!("{step}: {actor} adds"),
                        &actor,
                        list,
                        true,
                        hs,
                        epoch,
                    );
                }
            }
            2 if all.len() > 3 => {
                let others: Vec<&String> = all.iter().filter(|n| **n != actor).collect();
                let victim = others[rng.below(others.len())].clone();
                epoch += 1;
                counts[2] += 1;
                remove(
                    &mut roster,
                    &format!("{step}: {actor} removes {victim}"),
                    &actor,
                    &[victim.as_str()],
                    hs,
                    epoch,
                );
            }
            3 if all.len() > 3 => {
                let others: Vec<&String> = all.iter().filter(|n| **n != actor).collect();
                let committer = others[rng.below(others.len())].clone();
                let victims: Vec<&String> = all
                    .iter()
                    .filter(|n| **n != actor && **n != committer)
                    .collect();
                let victim = victims[rng.below(victims.len())].clone();
                epoch += 1;
                counts[3] += 1;
                propose_and_commit(
                    &mut roster,
                    &format!("{step}: {actor} proposes removing {victim}, {committer} commits"),
                    &actor,
                    Proposed::Remove(&victim),
                    &committer,
                    hs,
                    epoch,
                );
            }
            4 => {
                let others: Vec<&String> = all.iter().filter(|n| **n != actor).collect();
                let committer = others[rng.below(others.len())].clone();
                epoch += 1;
                counts[3] += 1;
                propose_and_commit(
                    &mut roster,
                    &format!("{step}: {actor} proposes Update, {committer} commits"),
                    &actor,
                    Proposed::Update,
                    &committer,
                    hs,
                    epoch,
                );
            }
            5 if all.len() < 12 => {
                fresh += 1;
                epoch += 1;
                counts[5] += 1;
                let with_tree = rng.below(2) == 0;
                if rng.below(2) == 0 {
                    let name = format!("o{}", 100 + fresh);
                    openmls_joins(
                        &mut roster,
                        &format!("{step}: {name} joins externally via {actor}"),
                        &actor,
                        &name,
                        suite,
                        with_tree,
                        epoch,
                        hs,
                    );
                } else {
                    let name = format!("v{}", 100 + fresh);
                    vmls_joins(
                        &mut roster,
                        &format!("{step}: {name} joins externally via {actor}"),
                        &actor,
                        &name,
                        suite,
                        with_tree,
                        epoch,
                        hs,
                    );
                }
            }
            _ => {
                epoch += 1;
                counts[4] += 1;
                self_update(
                    &mut roster,
                    &format!("{step}: {actor} updates"),
                    &actor,
                    hs,
                    epoch,
                );
            }
        }
        if rng.below(4) == 0 {
            roster.exchange_application_messages(&step);
        }
    }
    roster.exchange_application_messages(&format!("suite {suite}, seed {seed}: end"));
    counts
}

/// A 40-operation run in suite 1 and 15-operation runs in suites 2 and 3, two seeds each.
/// `VMLS_INTEROP_SOAK=<n>` adds `n` further seeds of 60 operations per suite (for longer
/// local runs).
#[test]
fn c_soak_random_operations_both_ways() {
    let extra: u64 = std::env::var("VMLS_INTEROP_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for suite in SUITES {
        let operations = if suite == 1 { 40 } else { 15 };
        for seed in [
            0x5eed_0001_u64 + u64::from(suite),
            0x5eed_0002_u64 + u64::from(suite),
        ] {
            let counts = run(suite, seed, operations);
            if suite == 1 {
                assert!(
                    counts.iter().all(|&c| c > 0),
                    "seed {seed}: every kind of operation ran: {counts:?}"
                );
            }
        }
        for i in 0..extra {
            run(suite, 0x1000 + 16 * i + u64::from(suite), 60);
        }
    }
}
