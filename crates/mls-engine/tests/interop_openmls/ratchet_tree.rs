//! An OpenMLS group of three, seen through the engine: after each OpenMLS commit, every
//! member's exported ratchet tree is the same, decodes strictly with the engine's codec,
//! re-encodes byte for byte, carries validly signed leaves, hashes (with the engine's
//! `RatchetTree::tree_hash`) to the `tree_hash` of OpenMLS's GroupContext, and passes the
//! engine's tree validation (parent hashes, unmerged leaves, key uniqueness). The Commits (sent
//! as PublicMessages) and the exported GroupInfo decode, and their signatures verify.

use mls_engine::codec::{
    self, decode_exact, Commit, ExtensionList as _, ExtensionType, FramedContentBody, GroupContext,
    MlsMessageBody, Node, Sender,
};
use mls_engine::tree::RatchetTree;
use openmls::prelude::MlsGroup;

use crate::engine;
use crate::harness::{
    export_group_context, export_group_info, export_ratchet_tree, tree_hash, OpenMlsClient,
    Processed, SUITES,
};

/// The tree and GroupContext of `group`'s current epoch, checked against the other members'
/// views and against the engine's decoding and tree hash. `identities` lists the basic
/// credential identity of each non-blank leaf, left to right.
fn check_tree(
    suite_id: u16,
    group: &MlsGroup,
    others: &[&MlsGroup],
    identities: &[&[u8]],
) -> (RatchetTree, GroupContext) {
    let suite = engine::suite(suite_id);
    let tree_bytes = export_ratchet_tree(group);
    for other in others {
        assert_eq!(
            export_ratchet_tree(other),
            tree_bytes,
            "members disagree on the tree"
        );
    }

    let nodes: Vec<Option<Node>> = decode_exact(&tree_bytes).expect("the engine decodes the tree");
    assert_eq!(
        codec::encode(&nodes).unwrap(),
        tree_bytes,
        "re-encoding differs"
    );
    let tree = RatchetTree::decode(&tree_bytes).expect("a well-formed ratchet tree");
    assert_eq!(tree.encode().unwrap(), tree_bytes);

    let context_bytes = export_group_context(group);
    let context: GroupContext =
        decode_exact(&context_bytes).expect("the engine decodes the GroupContext");
    assert_eq!(codec::encode(&context).unwrap(), context_bytes);
    assert_eq!(context.tree_hash.as_slice(), tree_hash(group));
    assert_eq!(context.epoch, group.epoch().as_u64());
    assert_eq!(context.cipher_suite.0, suite_id);

    let found: Vec<&[u8]> = tree
        .leaves()
        .map(|(_, leaf)| leaf.credential.basic_identity().expect("basic credential"))
        .collect();
    assert_eq!(found, identities);
    for (index, leaf) in tree.leaves() {
        leaf.verify_signature(suite, context.group_id.as_slice(), index.0)
            .unwrap_or_else(|e| panic!("leaf {} signature: {e}", index.0));
    }

    assert_eq!(
        tree.tree_hash(suite).expect("the engine hashes the tree"),
        context.tree_hash.as_slice(),
        "tree hash differs from OpenMLS's"
    );
    tree.validate(
        suite,
        context.group_id.as_slice(),
        context.tree_hash.as_slice(),
    )
    .expect("OpenMLS's tree passes the engine's validation");

    // A changed parent_hash breaks the chain.
    if let Some((x, _)) = tree.parents().next() {
        let mut nodes = tree.to_nodes();
        let Some(Some(Node::Parent(parent))) = nodes.get_mut(x.as_usize()) else {
            unreachable!("parents() yields parent nodes");
        };
        let mut parent_hash = parent.parent_hash.as_slice().to_vec();
        parent_hash.push(0);
        parent.parent_hash = parent_hash.into();
        let tampered = RatchetTree::from_nodes(nodes).unwrap();
        assert!(tampered.verify_parent_hashes(suite).is_err());
    }
    (tree, context)
}

/// Decodes an OpenMLS Commit sent as a PublicMessage in the epoch of `context` by the member
/// at `committer` with signature key `signature_key`, and verifies its signature.
fn check_commit(
    suite_id: u16,
    message: &[u8],
    context: &GroupContext,
    committer: u32,
    signature_key: &[u8],
) -> Commit {
    let MlsMessageBody::PublicMessage(public) = engine::decode_mls_message(message).body else {
        panic!("the Commit is not a PublicMessage");
    };
    assert_eq!(public.content.group_id, context.group_id);
    assert_eq!(public.content.epoch, context.epoch);
    assert_eq!(public.content.sender, Sender::Member(committer));
    assert!(public.membership_tag.is_some());
    let FramedContentBody::Commit(commit) = public.content.body.clone() else {
        panic!("the content is not a Commit");
    };
    public
        .into_authenticated_content()
        .verify_signature(engine::suite(suite_id), signature_key, Some(context))
        .expect("the Commit's signature verifies");
    commit
}

/// Decodes a GroupInfo `MLSMessage` and checks it against the group's tree and context.
fn check_group_info(suite_id: u16, message: &[u8], tree: &RatchetTree, context: &GroupContext) {
    let MlsMessageBody::GroupInfo(group_info) = engine::decode_mls_message(message).body else {
        panic!("not a GroupInfo");
    };
    assert_eq!(&group_info.group_context, context);
    let ratchet_tree = group_info
        .extensions
        .find(ExtensionType::RATCHET_TREE)
        .expect("the GroupInfo carries the ratchet tree");
    assert_eq!(
        ratchet_tree.extension_data.as_slice(),
        tree.encode().unwrap(),
        "the GroupInfo's tree differs"
    );
    let signer = tree
        .leaves()
        .find(|(index, _)| index.0 == group_info.signer)
        .expect("the signer is a member")
        .1;
    group_info
        .verify_signature(engine::suite(suite_id), signer.signature_key.as_slice())
        .expect("the GroupInfo's signature verifies");
    let mut tampered = group_info.clone();
    tampered.group_context.epoch += 1;
    assert!(tampered
        .verify_signature(engine::suite(suite_id), signer.signature_key.as_slice())
        .is_err());
}

#[test]
fn openmls_three_member_group_tree_context_and_commits() {
    for suite in SUITES {
        let alice = OpenMlsClient::new(b"alice", suite);
        let bob = OpenMlsClient::new(b"bob", suite);
        let carol = OpenMlsClient::new(b"carol", suite);
        let dave = OpenMlsClient::new(b"dave", suite);

        // Epoch 0: Alice alone.
        let mut a = alice.create_group();
        let (_, context) = check_tree(suite, &a, &[], &[b"alice"]);

        // Epoch 1: Alice adds Bob and Carol with a full path.
        let bob_kp = bob.key_package().key_package().clone();
        let carol_kp = carol.key_package().key_package().clone();
        let added = alice.add_members(&mut a, &[bob_kp, carol_kp]);
        let commit = check_commit(suite, &added.commit, &context, 0, alice.signer.public());
        assert_eq!(commit.proposals.len(), 2);
        assert!(commit.path.is_some());
        let mut b = bob.join(&added.welcome);
        let mut c = carol.join(&added.welcome);
        let (tree, context) = check_tree(suite, &a, &[&b, &c], &[b"alice", b"bob", b"carol"]);
        assert_eq!(context.epoch, 1);
        let group_info = added.group_info.expect("OpenMLS returns the new GroupInfo");
        check_group_info(suite, &group_info, &tree, &context);

        // Epoch 2: Bob commits a self update; Alice and Carol process it.
        let update = bob.self_update(&mut b);
        let commit = check_commit(suite, &update, &context, 1, bob.signer.public());
        assert!(commit.proposals.is_empty());
        assert!(commit.path.is_some());
        assert_eq!(alice.process(&mut a, &update), Processed::Commit);
        assert_eq!(carol.process(&mut c, &update), Processed::Commit);
        let (tree, context) = check_tree(suite, &a, &[&b, &c], &[b"alice", b"bob", b"carol"]);
        check_group_info(suite, &export_group_info(&bob, &b), &tree, &context);

        // Epoch 3: Alice removes Bob.
        let remove = alice.remove_members(&mut a, &[1]);
        check_commit(suite, &remove, &context, 0, alice.signer.public());
        assert_eq!(carol.process(&mut c, &remove), Processed::Commit);
        let (_, context) = check_tree(suite, &a, &[&c], &[b"alice", b"carol"]);

        // Epoch 4: Alice adds Dave without a path: Dave takes Bob's leaf and becomes an
        // unmerged leaf of the non-blank parents above it.
        let dave_kp = dave.key_package().key_package().clone();
        let added = alice.add_members_without_path(&mut a, &[dave_kp]);
        let commit = check_commit(suite, &added.commit, &context, 0, alice.signer.public());
        assert!(commit.path.is_none());
        assert_eq!(carol.process(&mut c, &added.commit), Processed::Commit);
        let d = dave.join(&added.welcome);
        let (tree, context) = check_tree(suite, &a, &[&c, &d], &[b"alice", b"dave", b"carol"]);
        assert!(
            tree.parents()
                .any(|(_, parent)| parent.unmerged_leaves == [1]),
            "expected leaf 1 unmerged below a parent"
        );
        check_group_info(suite, &export_group_info(&alice, &a), &tree, &context);
    }
}
