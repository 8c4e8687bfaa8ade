//! `tree-operations.json`: applying an Add, Update or Remove proposal to a ratchet tree
//! (RFC 9420 §12.1.1-§12.1.3) and the tree hashes before and after (§7.8).

use mls_engine::codec::{decode_exact, Proposal};
use mls_engine::tree::{LeafIndex, RatchetTree};
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    #[serde(with = "hex_bytes")]
    tree_before: Vec<u8>,
    #[serde(with = "hex_bytes")]
    proposal: Vec<u8>,
    proposal_sender: u32,
    #[serde(with = "hex_bytes")]
    tree_hash_before: Vec<u8>,
    #[serde(with = "hex_bytes")]
    tree_after: Vec<u8>,
    #[serde(with = "hex_bytes")]
    tree_hash_after: Vec<u8>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;
    let mut tree = RatchetTree::decode(&c.tree_before).map_err(|e| format!("decode: {e}"))?;
    let hash = |t: &RatchetTree| t.tree_hash(cs).map_err(|e| e.to_string());
    check_eq("tree_hash_before", hash(&tree)?, c.tree_hash_before)?;
    let proposal: Proposal = decode_exact(&c.proposal).map_err(|e| format!("proposal: {e}"))?;
    let applied = match proposal {
        Proposal::Add(add) => tree.add_leaf(add.key_package.leaf_node).map(|_| ()),
        Proposal::Update(update) => {
            tree.update_leaf(LeafIndex(c.proposal_sender), update.leaf_node)
        }
        Proposal::Remove(remove) => tree.remove_leaf(LeafIndex(remove.removed)),
        other => return Err(format!("unexpected proposal {other:?}")),
    };
    applied.map_err(|e| format!("apply: {e}"))?;
    let encoded = tree.encode().map_err(|e| e.to_string())?;
    check_eq(
        "tree_after",
        hex::encode(encoded),
        hex::encode(&c.tree_after),
    )?;
    check_eq("tree_hash_after", hash(&tree)?, c.tree_hash_after)
}
