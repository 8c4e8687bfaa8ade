//! `tree-validation.json`: resolutions, per-node tree hashes, parent hashes and leaf signatures
//! of received trees (RFC 9420 §4.1.1, §7.8, §7.9.2, §12.4.3.1).

use mls_engine::tree::{NodeIndex, RatchetTree};
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    #[serde(with = "hex_bytes")]
    tree: Vec<u8>,
    #[serde(with = "hex_bytes")]
    group_id: Vec<u8>,
    resolutions: Vec<Vec<u32>>,
    tree_hashes: Vec<String>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;
    let tree = RatchetTree::decode(&c.tree).map_err(|e| format!("decode: {e}"))?;
    check_eq(
        "node count",
        tree.node_width() as usize,
        c.resolutions.len(),
    )?;
    check_eq("tree hash count", c.tree_hashes.len(), c.resolutions.len())?;
    for (i, expected) in c.resolutions.iter().enumerate() {
        let x = NodeIndex(i as u32);
        let got: Vec<u32> = tree.resolution(x).iter().map(|n| n.0).collect();
        check_eq(&format!("resolution[{i}]"), &got, expected)?;
        let hash = tree.node_tree_hash(cs, x).map_err(|e| e.to_string())?;
        check_eq(
            &format!("tree_hash[{i}]"),
            hex::encode(hash),
            c.tree_hashes[i].clone(),
        )?;
    }
    tree.verify_parent_hashes(cs)
        .map_err(|e| format!("parent hashes: {e}"))?;
    tree.verify_leaf_signatures(cs, &c.group_id)
        .map_err(|e| format!("leaf signatures: {e}"))?;
    let root_hash = tree.tree_hash(cs).map_err(|e| e.to_string())?;
    tree.validate(cs, &c.group_id, &root_hash)
        .map_err(|e| format!("validate: {e}"))
}
