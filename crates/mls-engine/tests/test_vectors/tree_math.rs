//! `tree-math.json`: node counts, roots, children, parents and siblings (RFC 9420 Appendix C).

use mls_engine::tree::math::{node_width, root, NodeIndex};
use serde::Deserialize;

use crate::common::{check_eq, parse, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    n_leaves: u32,
    n_nodes: u32,
    root: u32,
    left: Vec<Option<u32>>,
    right: Vec<Option<u32>>,
    parent: Vec<Option<u32>>,
    sibling: Vec<Option<u32>>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    check(case).into()
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let n = c.n_leaves;
    check_eq("n_nodes", node_width(n), c.n_nodes)?;
    check_eq("root", root(n).0, c.root)?;
    let lists = [&c.left, &c.right, &c.parent, &c.sibling];
    if lists.iter().any(|l| l.len() != c.n_nodes as usize) {
        return Err("list lengths differ from n_nodes".into());
    }
    for i in 0..c.n_nodes {
        let x = NodeIndex(i);
        let ix = i as usize;
        let get = |v: Option<NodeIndex>| v.map(|n| n.0);
        check_eq(&format!("left[{i}]"), get(x.left()), c.left[ix])?;
        check_eq(&format!("right[{i}]"), get(x.right()), c.right[ix])?;
        check_eq(&format!("parent[{i}]"), get(x.parent(n)), c.parent[ix])?;
        check_eq(&format!("sibling[{i}]"), get(x.sibling(n)), c.sibling[ix])?;
    }
    Ok(())
}
