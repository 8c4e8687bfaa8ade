//! `treekem.json`: private TreeKEM state, processing UpdatePaths, and creating new ones
//! (RFC 9420 §7.4-§7.6, §7.9, §12.4.1-§12.4.2).

use mls_engine::codec::{decode_exact, GroupContext, ProtocolVersion, UpdatePath, VLBytes};
use mls_engine::crypto::{
    CipherSuite, HpkeKeyPair, HpkePrivateKey, MlsCrypto as _, SignaturePrivateKey, SuiteProvider,
};
use mls_engine::tree::{
    apply_update_path, create_update_path, LeafIndex, NewLeaf, NodeIndex, RatchetTree,
    TreeKemPrivate,
};
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    #[serde(with = "hex_bytes")]
    group_id: Vec<u8>,
    epoch: u64,
    #[serde(with = "hex_bytes")]
    confirmed_transcript_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    ratchet_tree: Vec<u8>,
    leaves_private: Vec<LeafPrivate>,
    update_paths: Vec<UpdatePathCase>,
}

#[derive(Deserialize)]
struct LeafPrivate {
    index: u32,
    #[serde(with = "hex_bytes")]
    encryption_priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    signature_priv: Vec<u8>,
    path_secrets: Vec<PathSecret>,
}

#[derive(Deserialize)]
struct PathSecret {
    node: u32,
    #[serde(with = "hex_bytes")]
    path_secret: Vec<u8>,
}

#[derive(Deserialize)]
struct UpdatePathCase {
    sender: u32,
    #[serde(with = "hex_bytes")]
    update_path: Vec<u8>,
    path_secrets: Vec<Option<String>>,
    #[serde(with = "hex_bytes")]
    commit_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    tree_hash_after: Vec<u8>,
}

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

/// One member's private state and signature key.
struct Member {
    private: TreeKemPrivate,
    signature_priv: SignaturePrivateKey,
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;
    let tree = RatchetTree::decode(&c.ratchet_tree).map_err(|e| format!("decode: {e}"))?;
    let context = GroupContext {
        version: ProtocolVersion::MLS10,
        cipher_suite: CipherSuite(c.cipher_suite),
        group_id: VLBytes::new(c.group_id.clone()),
        epoch: c.epoch,
        tree_hash: VLBytes::new(tree.tree_hash(cs).map_err(|e| e.to_string())?),
        confirmed_transcript_hash: VLBytes::new(c.confirmed_transcript_hash.clone()),
        extensions: vec![],
    };
    let members = c
        .leaves_private
        .iter()
        .map(|l| member(cs, &tree, l))
        .collect::<Result<Vec<_>, _>>()?;
    for (n, up) in c.update_paths.iter().enumerate() {
        check_update_path(cs, &tree, &context, &members, up)
            .map_err(|e| format!("update_paths[{n}]: {e}"))?;
        check_new_update_path(cs, &tree, &context, &members, LeafIndex(up.sender))
            .map_err(|e| format!("new path from {}: {e}", up.sender))?;
    }
    Ok(())
}

fn member(cs: &dyn SuiteProvider, tree: &RatchetTree, l: &LeafPrivate) -> Result<Member, String> {
    let private_key = HpkePrivateKey::new(l.encryption_priv.clone());
    let public_key = cs
        .hpke_public_key(&private_key)
        .map_err(|e| e.to_string())?;
    let mut private = TreeKemPrivate::new(
        LeafIndex(l.index),
        HpkeKeyPair {
            private_key,
            public_key,
        },
    );
    for ps in &l.path_secrets {
        let secret = ps.path_secret.clone().into();
        private
            .insert_path_secret(cs, NodeIndex(ps.node), &secret)
            .map_err(|e| e.to_string())?;
    }
    private
        .check_consistent(tree)
        .map_err(|e| format!("leaf {} private state: {e}", l.index))?;
    Ok(Member {
        private,
        signature_priv: SignaturePrivateKey::new(l.signature_priv.clone()),
    })
}

fn check_update_path(
    cs: &dyn SuiteProvider,
    tree: &RatchetTree,
    context: &GroupContext,
    members: &[Member],
    up: &UpdatePathCase,
) -> CaseResult {
    let sender = LeafIndex(up.sender);
    let update_path: UpdatePath = decode_exact(&up.update_path).map_err(|e| e.to_string())?;
    update_path
        .leaf_node
        .verify_signature(cs, context.group_id.as_slice(), sender.0)
        .map_err(|e| format!("leaf signature: {e}"))?;
    let mut merged = None;
    for m in members.iter().filter(|m| m.private.own_leaf() != sender) {
        let j = m.private.own_leaf().0 as usize;
        let (mut t, mut p, mut gc) = (tree.clone(), m.private.clone(), context.clone());
        let out = apply_update_path(cs, &mut t, &mut p, sender, &update_path, &[], &mut gc)
            .map_err(|e| format!("leaf {j} processing: {e}"))?;
        let expected = up.path_secrets.get(j).cloned().flatten();
        check_eq(
            &format!("path_secrets[{j}]"),
            Some(hex::encode(out.path_secret.as_bytes())),
            expected,
        )?;
        check_eq(
            "commit_secret",
            out.commit_secret.as_bytes(),
            &up.commit_secret[..],
        )?;
        merged = Some(t);
    }
    let merged = merged.ok_or("no receiver")?;
    let hash = merged.tree_hash(cs).map_err(|e| e.to_string())?;
    check_eq("tree_hash_after", hash, up.tree_hash_after.clone())
}

fn check_new_update_path(
    cs: &dyn SuiteProvider,
    tree: &RatchetTree,
    context: &GroupContext,
    members: &[Member],
    sender: LeafIndex,
) -> CaseResult {
    let e = |e: mls_engine::tree::TreeKemError| e.to_string();
    let committer = members
        .iter()
        .find(|m| m.private.own_leaf() == sender)
        .ok_or("no private state for the sender")?;
    let template = tree.leaf(sender).ok_or("sender leaf blank")?.clone();
    let key_pair = cs.hpke_generate_key_pair().map_err(|e| e.to_string())?;
    let new_leaf = NewLeaf {
        template,
        key_pair,
        signature_key: &committer.signature_priv,
    };
    let path_secret_0 = cs.random_secret().map_err(|e| e.to_string())?;
    let (mut sender_tree, mut sender_gc) = (tree.clone(), context.clone());
    let created = create_update_path(
        cs,
        &mut sender_tree,
        sender,
        new_leaf,
        path_secret_0,
        &[],
        &mut sender_gc,
    )
    .map_err(e)?;
    for m in members.iter().filter(|m| m.private.own_leaf() != sender) {
        let (mut t, mut p, mut gc) = (tree.clone(), m.private.clone(), context.clone());
        let out = apply_update_path(
            cs,
            &mut t,
            &mut p,
            sender,
            &created.update_path,
            &[],
            &mut gc,
        )
        .map_err(e)?;
        check_eq(
            "new commit_secret",
            out.commit_secret.as_bytes(),
            created.commit_secret.as_bytes(),
        )?;
        check_eq("merged tree", &t, &sender_tree)?;
        check_eq("provisional context", &gc, &sender_gc)?;
    }
    Ok(())
}
