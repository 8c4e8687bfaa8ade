//! The ratchet tree (RFC 9420 §4, §7): tree math, nodes, hashes, validation and TreeKEM.
//!
//! * [`math`]: array-based tree math (§4.2, Appendix C): [`LeafIndex`], [`NodeIndex`], direct
//!   paths, copaths, common ancestors.
//! * [`RatchetTree`]: the public tree in array form; resolution, filtered direct path, add,
//!   update, remove, truncation, the `ratchet_tree` extension encoding.
//! * [`hashes`]: tree hashes (§7.8) with a per-node cache, parent hashes (§7.9).
//! * [`RatchetTree::validate`]: the checks on a received tree (§7.9.2, §12.4.3.1),
//!   [`TreeValidationError`].
//! * [`treekem`]: UpdatePath creation ([`create_update_path`], taking `path_secret[0]` as an
//!   input), merging and decryption ([`apply_update_path`]), re-derivation of an UpdatePath
//!   from the member's own leaf ([`rederive_update_path`]); [`TreeKemPrivate`], the member's
//!   private keys in the tree.

mod error;
pub mod hashes;
pub mod math;
mod private;
mod ratchet_tree;
pub mod treekem;
mod validation;

pub use error::TreeError;
pub use math::{LeafIndex, NodeIndex};
pub use private::{next_path_secret, node_key_pair, TreeKemPrivate};
pub use ratchet_tree::RatchetTree;
pub use treekem::{
    apply_update_path, create_update_path, decrypt_update_path, merge_update_path,
    rederive_merged_update_path, rederive_update_path, CreatedUpdatePath, DecryptedUpdatePath,
    NewLeaf, OwnPathSecrets, TreeKemError,
};
pub use validation::TreeValidationError;
