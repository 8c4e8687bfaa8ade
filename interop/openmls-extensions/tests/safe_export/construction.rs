//! The safe exporter of draft-ietf-mls-extensions-08 §4.4 computed by hand with mls-engine's
//! crypto (`ExpandWithLabel`, `DeriveSecret`) and RFC 9420 tree math, next to the plausible
//! other readings, and which one OpenMLS 0.9.2 (`extensions-draft`) computes.
//!
//! The reading of §4.4 (see the project's DESIGN.md, row 1 of the virtual-clients table):
//! - `application_export_secret = DeriveSecret(epoch_secret, "application_export")`, beside
//!   the other epoch-derived secrets of RFC 9420 §8 Table 4;
//! - the Exporter Tree has 2^16 leaves; its nodes are derived as in the Secret Tree
//!   (RFC 9420 §9): `tree_node_[left(x)]_secret = ExpandWithLabel(tree_node_[x]_secret,
//!   "tree", "left", KDF.Nh)`, and `"right"` for the right child;
//! - `SafeExportSecret(id) = tree_node_[LeafIndex(id)]_secret`, the leaf's node secret
//!   itself (no handshake/application ratchet below it), with `LeafIndex(id) = id`, i.e.
//!   leaf `id` at node `2 * id` of the 2^16-leaf tree.
//!
//! The other readings kept here only to show that each is distinguishable and that OpenMLS
//! does not compute it: the leaf path taken from the least significant bit first, a tree of
//! 2^32 leaves for the `uint32 ComponentID` of §4 (the draft says 2^16 leaves "corresponding
//! to the 16 bits of a ComponentID value"), the root taken from `exporter_secret` instead of
//! `epoch_secret`, and a further `DeriveSecret` below the leaf.

use mls_engine::codec::MlsMessage;
use mls_engine::crypto::{MlsCrypto as _, Secret, SuiteProvider};
use mls_engine::tree::math::root;
use mls_engine::tree::LeafIndex;
use mls_engine::welcome::{decrypt_group_info, decrypt_group_secrets};
use tls_codec::Serialize as _;

use crate::openmls_side::OpenMlsClient;
use crate::vmls_side::{decode_welcome, VmlsMember};
use crate::{COMPONENT_IDS, SUITES};

/// The number of leaves of the Exporter Tree (§4.4).
pub const EXPORTER_TREE_LEAVES: u32 = 1 << 16;

fn nh(cs: &dyn SuiteProvider) -> usize {
    cs.params().hash_len()
}

fn tree_child(cs: &dyn SuiteProvider, secret: &[u8], right: bool) -> Secret {
    let context: &[u8] = if right { b"right" } else { b"left" };
    cs.expand_with_label(secret, "tree", context, nh(cs))
        .expect("ExpandWithLabel")
}

/// `application_export_secret = DeriveSecret(epoch_secret, "application_export")`.
pub fn application_export_secret(cs: &dyn SuiteProvider, epoch_secret: &[u8]) -> Vec<u8> {
    cs.derive_secret(epoch_secret, "application_export")
        .expect("DeriveSecret")
        .as_bytes()
        .to_vec()
}

/// `tree_node_[2 * leaf]_secret` of a Secret-Tree-shaped tree of `n_leaves` leaves (a power
/// of two) whose root secret is `root_secret`, walked with RFC 9420 Appendix C tree math.
pub fn tree_leaf_secret(
    cs: &dyn SuiteProvider,
    root_secret: &[u8],
    n_leaves: u32,
    leaf: u32,
) -> Vec<u8> {
    let target = LeafIndex(leaf).node();
    let mut node = root(n_leaves);
    let mut secret = Secret::new(root_secret.to_vec());
    while let Some((left, right)) = node.children() {
        let go_right = target > node;
        secret = tree_child(cs, secret.as_bytes(), go_right);
        node = if go_right { right } else { left };
    }
    assert_eq!(node, target, "the walk ends at the leaf");
    secret.as_bytes().to_vec()
}

/// The reading of §4.4: `SafeExportSecret(id)` from `application_export_secret`.
pub fn safe_export_secret(
    cs: &dyn SuiteProvider,
    application_export_secret: &[u8],
    component_id: u16,
) -> Vec<u8> {
    tree_leaf_secret(
        cs,
        application_export_secret,
        EXPORTER_TREE_LEAVES,
        u32::from(component_id),
    )
}

/// A leaf of a `depth`-level tree reached by the bits of `index`, most significant first
/// (`msb_first`) or least significant first.
pub fn bit_walk(
    cs: &dyn SuiteProvider,
    root_secret: &[u8],
    index: u64,
    depth: u32,
    msb_first: bool,
) -> Vec<u8> {
    let mut secret = Secret::new(root_secret.to_vec());
    for step in 0..depth {
        let bit = if msb_first { depth - 1 - step } else { step };
        secret = tree_child(cs, secret.as_bytes(), (index >> bit) & 1 == 1);
    }
    secret.as_bytes().to_vec()
}

/// What a hand-opened Welcome gives: the new epoch's `epoch_secret` and `exporter_secret`.
pub struct OpenedWelcome {
    /// `epoch_secret = ExpandWithLabel(KDF.Extract(joiner_secret, psk_secret), "epoch",
    /// GroupContext, KDF.Nh)`.
    pub epoch_secret: Vec<u8>,
    /// `DeriveSecret(epoch_secret, "exporter")`.
    pub exporter_secret: Vec<u8>,
    /// `DeriveSecret(epoch_secret, "authentication")`.
    pub epoch_authenticator: Vec<u8>,
}

/// Opens an encoded Welcome (without PSKs) for `member`'s KeyPackage with mls-engine's Welcome
/// functions and runs the RFC 9420 §8 key schedule by hand up to `epoch_secret`.
pub fn open_welcome(member: &VmlsMember, welcome: &[u8]) -> OpenedWelcome {
    let cs = member.suite();
    let welcome = decode_welcome(welcome);
    let bundle = &member.key_package;
    let group_secrets = decrypt_group_secrets(
        cs,
        &welcome,
        &bundle.key_package,
        &bundle.reference,
        &bundle.private.init_private_key,
    )
    .expect("the Welcome opens for the KeyPackage");
    assert!(group_secrets.psks.is_empty(), "no PSKs in these Welcomes");
    let psk_secret = vec![0u8; nh(cs)];
    let (group_info, _schedule) = decrypt_group_info(
        cs,
        &welcome,
        &group_secrets.joiner_secret,
        Secret::new(psk_secret.clone()),
    )
    .expect("the GroupInfo decrypts");
    let group_context = group_info
        .group_context
        .tls_serialize_detached()
        .expect("the GroupContext encodes");
    let member_secret = cs.kdf_extract(group_secrets.joiner_secret.as_bytes(), &psk_secret);
    let epoch_secret = cs
        .expand_with_label(member_secret.as_bytes(), "epoch", &group_context, nh(cs))
        .expect("ExpandWithLabel");
    let derive = |label: &str| {
        cs.derive_secret(epoch_secret.as_bytes(), label)
            .expect("DeriveSecret")
            .as_bytes()
            .to_vec()
    };
    OpenedWelcome {
        exporter_secret: derive("exporter"),
        epoch_authenticator: derive("authentication"),
        epoch_secret: epoch_secret.as_bytes().to_vec(),
    }
}

/// An OpenMLS group (creator `alice`) that has just added the engine member `bob` by Welcome.
pub struct OpenMlsGroupWithWelcome {
    /// The OpenMLS creator.
    pub alice: OpenMlsClient,
    /// Its group, in epoch 1.
    pub group: openmls::prelude::MlsGroup,
    /// The engine member the Welcome is for (not yet joined).
    pub bob: VmlsMember,
    /// The Welcome `MLSMessage`.
    pub welcome: Vec<u8>,
}

/// OpenMLS creates a group in `suite` and adds an engine-built KeyPackage.
pub fn openmls_group_adding_engine_member(suite: u16) -> OpenMlsGroupWithWelcome {
    let alice = OpenMlsClient::new(b"alice", suite);
    let bob = VmlsMember::new(b"bob", suite);
    let mut group = alice.create_group();
    let output = alice.add(&mut group, &[bob.key_package_message()]);
    // The Commit only matters to members already in the group (none besides alice).
    let _ = MlsMessage::decode(&output.commit).expect("the engine decodes OpenMLS's Commit");
    OpenMlsGroupWithWelcome {
        alice,
        group,
        bob,
        welcome: output.welcome,
    }
}

/// Pins OpenMLS's `application_export_secret` to its key-schedule position: in the epoch a
/// Welcome opens, OpenMLS's Exporter Tree root equals `DeriveSecret(epoch_secret,
/// "application_export")` for the `epoch_secret` computed by hand from the Welcome (itself
/// checked against OpenMLS's epoch authenticator), and none of the other candidates.
#[test]
fn openmls_application_export_secret_is_derive_secret_of_epoch_secret() {
    for suite in SUITES {
        let setup = openmls_group_adding_engine_member(suite);
        let cs = setup.bob.suite();
        let opened = open_welcome(&setup.bob, &setup.welcome);
        assert_eq!(
            opened.epoch_authenticator,
            OpenMlsClient::epoch_authenticator(&setup.group),
            "suite {suite}: the hand-computed epoch_secret is OpenMLS's"
        );

        let openmls_root = setup
            .alice
            .stored_exporter_tree_root(&setup.group)
            .expect("no SafeExportSecret taken yet");
        let expected = application_export_secret(cs, &opened.epoch_secret);
        assert_eq!(
            openmls_root, expected,
            "suite {suite}: OpenMLS's Exporter Tree root is DeriveSecret(epoch_secret, \"application_export\")"
        );
        assert_ne!(openmls_root, opened.exporter_secret, "suite {suite}");
        assert_ne!(
            openmls_root,
            application_export_secret(cs, &opened.exporter_secret),
            "suite {suite}: the root is not derived from exporter_secret"
        );
        assert_eq!(openmls_root.len(), cs.params().hash_len(), "suite {suite}");
    }
}

/// Pins OpenMLS's `safe_export_secret(id)` to the Exporter Tree of the §4.4 reading: the
/// RFC 9420 §9 node derivation over 2^16 leaves, leaf `id` at node `2 * id`, the leaf's node
/// secret returned as it is; and shows it is none of the other readings.
#[test]
fn openmls_safe_export_secret_is_the_leaf_node_secret_of_a_2_16_leaf_tree() {
    for suite in SUITES {
        let mut setup = openmls_group_adding_engine_member(suite);
        let cs = setup.bob.suite();
        let opened = open_welcome(&setup.bob, &setup.welcome);
        let root_secret = application_export_secret(cs, &opened.epoch_secret);

        for component_id in COMPONENT_IDS {
            let openmls = setup
                .alice
                .safe_export_secret(&mut setup.group, component_id)
                .expect("OpenMLS exports the secret");
            let expected = safe_export_secret(cs, &root_secret, component_id);
            assert_eq!(
                openmls, expected,
                "suite {suite}, component {component_id:#06x}: OpenMLS's SafeExportSecret"
            );
            let id = u64::from(component_id);
            // Tree math and the plain bit walk (most significant bit first) agree.
            assert_eq!(expected, bit_walk(cs, &root_secret, id, 16, true));
            // Least significant bit first: a different leaf unless the 16 bits read the
            // same both ways.
            if component_id.reverse_bits() != component_id {
                assert_ne!(
                    openmls,
                    bit_walk(cs, &root_secret, id, 16, false),
                    "suite {suite}, component {component_id:#06x}: not LSB first"
                );
            }
            // A 2^32-leaf tree for a uint32 ComponentID.
            assert_ne!(
                openmls,
                bit_walk(cs, &root_secret, id, 32, true),
                "suite {suite}, component {component_id:#06x}: not a 32-level tree"
            );
            // A further derivation below the leaf.
            assert_ne!(
                openmls,
                cs.derive_secret(&expected, "application")
                    .expect("DeriveSecret")
                    .as_bytes()
                    .to_vec(),
                "suite {suite}, component {component_id:#06x}: the leaf secret itself"
            );
            // The tree rooted at exporter_secret.
            assert_ne!(
                openmls,
                safe_export_secret(cs, &opened.exporter_secret, component_id),
                "suite {suite}, component {component_id:#06x}: not rooted at exporter_secret"
            );
        }
    }
}

/// OpenMLS consumes the leaf: the same component ID twice in one epoch is refused, the root
/// is deleted by the first evaluation (its 16 copath nodes stay), and the next epoch has a
/// fresh tree whose leaves follow the same construction from the new root.
#[test]
fn openmls_consumes_leaves_and_starts_a_fresh_tree_each_epoch() {
    for suite in SUITES {
        let mut setup = openmls_group_adding_engine_member(suite);
        let cs = setup.bob.suite();
        let alice = &setup.alice;
        assert_eq!(alice.stored_exporter_tree_node_count(&setup.group), 1);

        let first = alice
            .safe_export_secret(&mut setup.group, 6)
            .expect("OpenMLS exports the secret");
        assert_eq!(alice.stored_exporter_tree_root(&setup.group), None);
        assert_eq!(alice.stored_exporter_tree_node_count(&setup.group), 16);
        let again = alice.safe_export_secret(&mut setup.group, 6);
        assert!(
            again.as_ref().is_err_and(|e| e.contains("PuncturedInput")),
            "suite {suite}: a second export of one ID in one epoch is refused: {again:?}"
        );
        // Another ID in the same epoch still works, from the kept copath nodes.
        let seven = alice
            .safe_export_secret(&mut setup.group, 7)
            .expect("OpenMLS exports the sibling leaf");
        assert_ne!(first, seven);

        alice.self_update(&mut setup.group);
        let root_secret = alice
            .stored_exporter_tree_root(&setup.group)
            .expect("a fresh tree in the new epoch");
        for component_id in COMPONENT_IDS {
            let openmls = alice
                .safe_export_secret(&mut setup.group, component_id)
                .expect("OpenMLS exports the secret");
            assert_eq!(
                openmls,
                safe_export_secret(cs, &root_secret, component_id),
                "suite {suite}, epoch 2, component {component_id:#06x}"
            );
        }
    }
}
