//! [`LeafSecrets`]: the given key material of design hook H1 (DESIGN §4) in one value, and
//! the inputs it makes for each operation that creates a leaf: a KeyPackage, a new group's
//! leaf or an external joiner's ([`OwnLeaf`]), an Update proposal, a Commit with a path
//! ([`CommitOptions`]) and an external Commit ([`ExternalCommitOptions`]). Each of them is then a
//! deterministic function of these secrets: the same secrets give the same public keys.

use super::config::{CommitOptions, OwnLeaf};
use super::create::ExternalCommitOptions;
use crate::codec::Extension;
use crate::crypto::{Secret, SignatureKeyPair, SuiteProvider};
use crate::messages::{
    CreationError, HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams,
};

/// Given key material for one new leaf (design hook H1), instead of fresh randomness.
#[derive(Debug, Clone)]
pub struct LeafSecrets {
    /// The seed of the leaf HPKE key pair: `KEM.DeriveKeyPair(leaf_seed)`.
    pub leaf_seed: Secret,
    /// The seed of the KeyPackage `init_key` pair (used by KeyPackages only).
    pub init_seed: Secret,
    /// `path_secret[0]` of the UpdatePath (used by commits only, RFC 9420 §7.4).
    pub path_secret_0: Secret,
    /// The signature key pair the new leaf carries and is signed with.
    pub signature_key: SignatureKeyPair,
    /// Extra LeafNode extensions (their non-default types are listed in the capabilities).
    pub extensions: Vec<Extension>,
}

impl LeafSecrets {
    /// The leaf key source: `KEM.DeriveKeyPair(leaf_seed)`. For an Update proposal:
    /// `group.propose_update(services, secrets.leaf_key(), Some(secrets.leaf_params(p)))`
    /// (an Update keeps the leaf's signature key).
    pub fn leaf_key(&self) -> HpkeKeySource {
        HpkeKeySource::Seed(self.leaf_seed.clone())
    }

    /// `params` with the extra extensions appended.
    pub fn leaf_params(&self, mut params: LeafNodeParams) -> LeafNodeParams {
        params.extensions.extend(self.extensions.iter().cloned());
        params
    }

    /// A KeyPackage from `params` (its leaf gets the extra extensions), with the init key
    /// from `init_seed`, the leaf key from `leaf_seed`, signed with `signature_key`.
    pub fn key_package(
        &self,
        suite: &dyn SuiteProvider,
        params: KeyPackageParams,
    ) -> Result<KeyPackageBundle, CreationError> {
        let leaf = self.leaf_params(params.leaf.clone());
        params.with_leaf(leaf).build(
            suite,
            HpkeKeySource::Seed(self.init_seed.clone()),
            self.leaf_key(),
            &self.signature_key,
        )
    }

    /// The leaf of a new group's creator, or of a joiner by external commit.
    pub fn own_leaf(&self, params: LeafNodeParams) -> OwnLeaf {
        OwnLeaf {
            params: self.leaf_params(params),
            encryption_key: self.leaf_key(),
            signature_key: self.signature_key.clone(),
        }
    }

    /// `base` set to commit with a path whose new leaf has these secrets' keys, `params`
    /// (credential, capabilities) plus the extra extensions, and `path_secret[0]`.
    pub fn commit_options(&self, params: LeafNodeParams, base: CommitOptions) -> CommitOptions {
        CommitOptions {
            force_path: true,
            leaf_key: Some(self.leaf_key()),
            path_secret_0: Some(self.path_secret_0.clone()),
            leaf_params: Some(self.leaf_params(params)),
            signature_key: Some(self.signature_key.clone()),
            ..base
        }
    }

    /// `base` with this `path_secret[0]`; the joiner's leaf is [`LeafSecrets::own_leaf`].
    pub fn external_commit_options(&self, base: ExternalCommitOptions) -> ExternalCommitOptions {
        ExternalCommitOptions {
            path_secret_0: Some(self.path_secret_0.clone()),
            ..base
        }
    }
}
