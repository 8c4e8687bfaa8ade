//! Creating a group (RFC 9420 §11) and joining one: from a Welcome (§12.4.3.1) or by
//! external commit (§12.4.3.2).

use tls_codec::VLBytes;

use super::config::{GroupConfig, OwnLeaf, Services};
use super::error::GroupError;
use super::proposal_list::{
    apply_to_next_epoch, validate_proposal_list, validation_context, ResolvedProposal,
};
use super::state::{leaf_validation, resolve_psk_secret, Group, GroupState, GroupStatus};
use crate::codec::{
    encode, Commit, Extension, ExtensionPayload as _, ExternalInit, ExternalPubExtension,
    FramedContent, FramedContentBody, GroupContext, GroupInfo, HpkePublicKey, KeyPackageRef,
    LeafNode, LeafNodeSource, Lifetime, MlsMessage, MlsMessageBody, PreSharedKeyID, Proposal,
    ProposalOrRef, ProtocolVersion, RatchetTreeExtension, Sender, SignaturePublicKey, Welcome,
};
use crate::crypto::{HpkePrivateKey, MlsCrypto as _, SignatureKeyPair, SuiteProvider};
use crate::framing::{protect_public, sign_public};
use crate::messages::{
    validate_leaf_node, GroupRequirements, KeyPackageBundle, LeafNodeOrigin, LeafNodeTarget,
};
use crate::schedule::{
    confirmed_transcript_hash, confirmed_transcript_hash_input, external_init_secret_sender,
    external_init_secret_sender_derived, interim_transcript_hash, EpochSecrets, KeySchedule,
    ResumptionPskStore, SecretTree,
};
use crate::tree::{create_update_path, math, LeafIndex, NewLeaf, RatchetTree, TreeKemPrivate};
use crate::welcome::process_welcome_by_ref;

/// What a joiner by external commit adds to its Commit (§12.4.3.2).
#[derive(Debug, Clone, Default)]
pub struct ExternalCommitOptions {
    /// Remove this leaf (an old leaf of ours: the resync case, §12.4.3.2).
    pub resync_remove: Option<LeafIndex>,
    /// PreSharedKey proposals to include.
    pub psks: Vec<PreSharedKeyID>,
    /// `authenticated_data` of the Commit.
    pub authenticated_data: Vec<u8>,
    /// `path_secret[0]` of the UpdatePath (design hook H1; default: fresh).
    pub path_secret_0: Option<crate::crypto::Secret>,
    /// SafeAAD items put before `authenticated_data` when the group (per the GroupInfo's
    /// GroupContext) uses SafeAAD (draft-ietf-mls-extensions-08 §4.9, design hook H6).
    pub safe_aad: Option<crate::extensions::SafeAad>,
    /// The ExternalInit's ephemeral key seed (`Nsk` bytes): `skE, pkE = KEM.DeriveKeyPair(
    /// seed)` instead of a fresh key pair (design hook H1 for external commits), so that
    /// whoever holds the seed can follow the commit ([`Group::follow_external_commit`]).
    /// Default: fresh.
    pub external_init_seed: Option<crate::crypto::Secret>,
}

impl Group {
    /// Creates a one-member group (§11): the creator's leaf (source `key_package` with
    /// `lifetime`), epoch 0, a fresh `epoch_secret`, and the interim transcript hash from the
    /// confirmation tag over the empty confirmed transcript hash.
    pub fn create(
        services: &Services<'_>,
        config: GroupConfig,
        group_id: Vec<u8>,
        cipher_suite: crate::crypto::CipherSuite,
        own: OwnLeaf,
        lifetime: Lifetime,
        extensions: Vec<Extension>,
    ) -> Result<Group, GroupError> {
        let cs = services.crypto.suite(cipher_suite)?;
        GroupRequirements::from_group_context_extensions(&extensions)?;
        let (leaf, leaf_private) = own.params.build(
            cs,
            LeafNodeTarget::KeyPackage { lifetime },
            own.encryption_key,
            &own.signature_key,
        )?;
        let leaf_key = crate::crypto::HpkeKeyPair {
            private_key: leaf_private,
            public_key: leaf.encryption_key.as_slice().to_vec(),
        };
        let tree = RatchetTree::new(leaf);
        let context = GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite,
            group_id: group_id.into(),
            epoch: 0,
            tree_hash: VLBytes::new(tree.tree_hash(cs)?),
            confirmed_transcript_hash: VLBytes::new(Vec::new()),
            extensions,
        };
        let epoch_secret = cs.random_secret()?;
        let epoch_secrets = EpochSecrets::from_epoch_secret(cs, &epoch_secret)?;
        drop(epoch_secret);
        let confirmation_tag = epoch_secrets.confirmation_tag(cs, &[]);
        let interim_transcript_hash = interim_transcript_hash(cs, &[], &confirmation_tag)?;
        let state = GroupState::for_epoch(
            cs,
            config,
            context,
            tree,
            TreeKemPrivate::new(LeafIndex(0), leaf_key),
            own.signature_key,
            epoch_secrets,
            interim_transcript_hash,
            confirmation_tag,
            ResumptionPskStore::new(u64::from(config.resumption_psk_epochs)),
        )?;
        Ok(Group {
            state,
            pending_commit: None,
        })
    }

    /// Joins from a Welcome (§12.4.3.1) with the KeyPackage it was built for. The ratchet
    /// tree comes from the GroupInfo's `ratchet_tree` extension or, if absent, `ratchet_tree`.
    /// Checks: the Welcome and GroupInfo (decryption, signature, confirmation tag), the tree
    /// (§7.9.2 and every leaf per §7.3), our leaf in the tree, the `path_secret`.
    pub fn join_from_welcome(
        services: &Services<'_>,
        config: GroupConfig,
        welcome: &Welcome,
        key_package: &KeyPackageBundle,
        signature_key: SignatureKeyPair,
        ratchet_tree: Option<RatchetTree>,
        now: u64,
    ) -> Result<Group, GroupError> {
        let cs = services.crypto.suite(welcome.cipher_suite)?;
        crate::welcome::check_key_package_suite(&key_package.key_package, welcome.cipher_suite)
            .map_err(GroupError::from)?;
        let own_leaf_node = &key_package.key_package.leaf_node;
        Self::join_welcome_inner(
            services,
            config,
            welcome,
            &key_package.reference,
            &key_package.private.init_private_key,
            |leaf| leaf == own_leaf_node,
            crate::crypto::HpkeKeyPair {
                private_key: key_package.private.encryption_private_key.clone(),
                public_key: own_leaf_node.encryption_key.as_slice().to_vec(),
            },
            signature_key,
            ratchet_tree,
            now,
            cs,
        )
    }

    /// Joins from a Welcome (§12.4.3.1) knowing only the `KeyPackageRef` it was sent to and
    /// the key material of that KeyPackage, not the KeyPackage itself (a sibling of a virtual
    /// client after a `KeyPackageUpload`, draft-kohbrok-mls-virtual-clients §5.5.1): the
    /// `EncryptedGroupSecrets` are found by `key_package_ref` and opened with
    /// `init_private_key`; our leaf is the one whose `encryption_key` and `signature_key` are
    /// `encryption_key`'s and `signature_key`'s public keys. Otherwise exactly
    /// [`Group::join_from_welcome`] (same checks).
    #[allow(clippy::too_many_arguments)]
    pub fn join_from_welcome_by_ref(
        services: &Services<'_>,
        config: GroupConfig,
        welcome: &Welcome,
        key_package_ref: &KeyPackageRef,
        init_private_key: &HpkePrivateKey,
        encryption_key: crate::crypto::HpkeKeyPair,
        signature_key: SignatureKeyPair,
        ratchet_tree: Option<RatchetTree>,
        now: u64,
    ) -> Result<Group, GroupError> {
        let cs = services.crypto.suite(welcome.cipher_suite)?;
        let public = encryption_key.public_key.clone();
        let signature_public = signature_key.public_key.clone();
        Self::join_welcome_inner(
            services,
            config,
            welcome,
            key_package_ref,
            init_private_key,
            |leaf| {
                leaf.encryption_key.as_slice() == public.as_slice()
                    && leaf.signature_key.as_slice() == signature_public.as_slice()
            },
            encryption_key,
            signature_key,
            ratchet_tree,
            now,
            cs,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn join_welcome_inner(
        services: &Services<'_>,
        config: GroupConfig,
        welcome: &Welcome,
        key_package_ref: &KeyPackageRef,
        init_private_key: &HpkePrivateKey,
        is_own_leaf: impl Fn(&LeafNode) -> bool,
        encryption_key: crate::crypto::HpkeKeyPair,
        signature_key: SignatureKeyPair,
        ratchet_tree: Option<RatchetTree>,
        now: u64,
        cs: &dyn SuiteProvider,
    ) -> Result<Group, GroupError> {
        let mut tree_slot: Option<Result<RatchetTree, GroupError>> = None;
        let contents = process_welcome_by_ref(
            cs,
            welcome,
            key_package_ref,
            init_private_key,
            |psks| resolve_psk_secret(cs, services, psks, &[], None).ok(),
            |info: &GroupInfo| {
                let tree = tree_from_group_info(&info.extensions, ratchet_tree);
                let key = tree.as_ref().ok().and_then(|t| {
                    t.leaf(LeafIndex(info.signer))
                        .map(|l| l.signature_key.as_slice().to_vec())
                });
                tree_slot = Some(tree);
                key
            },
        );
        let contents = match contents {
            Ok(c) => c,
            Err(e) => {
                if let Some(Err(tree_error)) = tree_slot {
                    return Err(tree_error);
                }
                return Err(e.into());
            }
        };
        let tree = tree_slot.ok_or(GroupError::MissingRatchetTree)??;
        let group_info = contents.group_info;
        let context = group_info.group_context.clone();
        validate_tree(cs, services, &config, &tree, &context, now)?;
        let own_leaf = tree
            .leaves()
            .find(|(_, leaf)| is_own_leaf(leaf))
            .map(|(i, _)| i)
            .ok_or(GroupError::OwnLeafNotInTree)?;
        let mut private = TreeKemPrivate::new(own_leaf, encryption_key);
        let start = math::common_ancestor(own_leaf.node(), LeafIndex(group_info.signer).node());
        match contents.path_secret {
            Some(path_secret) => {
                private.implant_path_secret(cs, &tree, start, path_secret.path_secret)?;
            }
            // Without a path secret, the common ancestor with the committer must be blank or
            // list us as unmerged (an Add without a path); otherwise the committer's path
            // covered us and we would lack the private key we are to hold (§12.4.1).
            None => {
                let unmerged =
                    |p: &crate::codec::ParentNode| p.unmerged_leaves.contains(&own_leaf.0);
                if tree.parent_node(start).is_some_and(|p| !unmerged(p)) {
                    return Err(GroupError::MissingPathSecret);
                }
            }
        }
        let interim = interim_transcript_hash(
            cs,
            context.confirmed_transcript_hash.as_slice(),
            group_info.confirmation_tag.as_slice(),
        )?;
        let state = GroupState::for_epoch(
            cs,
            config,
            context,
            tree,
            private,
            signature_key,
            contents.epoch_secrets,
            interim,
            group_info.confirmation_tag.as_slice().to_vec(),
            ResumptionPskStore::new(u64::from(config.resumption_psk_epochs)),
        )?;
        Ok(Group {
            state,
            pending_commit: None,
        })
    }

    /// Joins by external commit (§12.4.3.2) from a GroupInfo (its signature is verified here
    /// against the signer's leaf) with `external_pub`. The ratchet tree comes from the
    /// GroupInfo's `ratchet_tree` extension or `ratchet_tree`. Returns the group, already in
    /// the new epoch, and the Commit (a PublicMessage) to send.
    pub fn join_by_external_commit(
        services: &Services<'_>,
        config: GroupConfig,
        group_info: &GroupInfo,
        ratchet_tree: Option<RatchetTree>,
        own: OwnLeaf,
        options: ExternalCommitOptions,
        now: u64,
    ) -> Result<(Group, MlsMessage), GroupError> {
        let cs = services
            .crypto
            .suite(group_info.group_context.cipher_suite)?;
        let ExternalStart {
            context,
            tree,
            external_pub,
            interim_transcript_hash: interim_before,
        } = ExternalStart::check(cs, services, &config, group_info, ratchet_tree, now)?;
        let (kem_output, init_secret) = match &options.external_init_seed {
            Some(seed) => external_init_secret_sender_derived(cs, &external_pub, seed.as_bytes())?,
            None => external_init_secret_sender(cs, &external_pub)?,
        };

        let mut proposals = vec![Proposal::ExternalInit(ExternalInit {
            kem_output: kem_output.into(),
        })];
        if let Some(old) = options.resync_remove {
            proposals.push(Proposal::remove(old.0));
        }
        for psk in &options.psks {
            proposals.push(Proposal::pre_shared_key(psk.clone()));
        }
        let infos: Vec<ResolvedProposal> = proposals
            .iter()
            .map(|p| ResolvedProposal::by_value(Sender::NewMemberCommit, p.clone()))
            .collect();
        let key_pair = own.encryption_key.into_key_pair(cs)?;
        let template = LeafNode {
            encryption_key: HpkePublicKey::from(key_pair.public_key.clone()),
            signature_key: SignaturePublicKey::from(own.signature_key.public_key.clone()),
            credential: own.params.credential.clone(),
            capabilities: own.params.completed_capabilities(cs.cipher_suite(), &[]),
            leaf_node_source: LeafNodeSource::Commit(VLBytes::new(Vec::new())),
            extensions: own.params.extensions.clone(),
            signature: VLBytes::new(Vec::new()),
        };
        let validation =
            validation_context(cs, services, &config, &context, &tree, Some(&template), now);
        validate_proposal_list(&validation, Sender::NewMemberCommit, &infos)?;
        let (mut new_tree, applied, mut new_context) =
            apply_to_next_epoch(cs, &tree, &context, &infos)?;
        let own_leaf = new_tree.leftmost_blank_leaf()?;

        let created = create_update_path(
            cs,
            &mut new_tree,
            own_leaf,
            NewLeaf {
                template,
                key_pair,
                signature_key: &own.signature_key.private_key,
            },
            match options.path_secret_0 {
                Some(secret) => secret,
                None => cs.random_secret()?,
            },
            &[],
            &mut new_context,
        )?;
        let commit = Commit {
            proposals: proposals.into_iter().map(ProposalOrRef::Proposal).collect(),
            path: Some(created.update_path.clone()),
        };
        let content = FramedContent {
            group_id: context.group_id.clone(),
            epoch: context.epoch,
            sender: Sender::NewMemberCommit,
            authenticated_data: super::safe_aad::outgoing_authenticated_data(
                &context,
                options.safe_aad.as_ref(),
                &options.authenticated_data,
            )?
            .into(),
            body: FramedContentBody::Commit(commit),
        };
        let mut auth = sign_public(cs, content, &context, &own.signature_key.private_key)?;
        let confirmed = confirmed_transcript_hash(
            cs,
            &interim_before,
            &confirmed_transcript_hash_input(&auth)?,
        );
        new_context.confirmed_transcript_hash = VLBytes::new(confirmed.clone());
        let psk_secret = resolve_psk_secret(
            cs,
            services,
            &applied.psks,
            context.group_id.as_slice(),
            None,
        )?;
        let encoded = encode(&new_context)?;
        let schedule = KeySchedule::start(
            cs,
            init_secret,
            created.commit_secret.clone(),
            psk_secret,
            &encoded,
        )?;
        let epoch_secrets = schedule.finish(cs, &encoded)?;
        let tag = epoch_secrets.confirmation_tag(cs, &confirmed);
        auth.auth.confirmation_tag = Some(VLBytes::new(tag.clone()));
        let interim = interim_transcript_hash(cs, &confirmed, &tag)?;
        let message = protect_public(cs, auth, &context, None)?;
        let mut private = created.private;
        private.prune(&new_tree);
        let state = GroupState::for_epoch(
            cs,
            config,
            new_context,
            new_tree,
            private,
            own.signature_key,
            epoch_secrets,
            interim,
            tag,
            ResumptionPskStore::new(u64::from(config.resumption_psk_epochs)),
        )?;
        Ok((
            Group {
                state,
                pending_commit: None,
            },
            MlsMessage::new(MlsMessageBody::PublicMessage(message)),
        ))
    }
}

impl GroupState {
    /// The state of an epoch from its parts: the secret tree is built from
    /// `encryption_secret` (which is then deleted) and the resumption PSK stored.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn for_epoch(
        cs: &dyn SuiteProvider,
        config: GroupConfig,
        context: GroupContext,
        tree: RatchetTree,
        private: TreeKemPrivate,
        signer: SignatureKeyPair,
        mut epoch_secrets: EpochSecrets,
        interim_transcript_hash: Vec<u8>,
        confirmation_tag: Vec<u8>,
        mut resumption_psks: ResumptionPskStore,
    ) -> Result<GroupState, GroupError> {
        let encryption_secret = std::mem::replace(
            &mut epoch_secrets.encryption_secret,
            crate::crypto::Secret::new(Vec::new()),
        );
        let secret_tree =
            SecretTree::with_config(cs, encryption_secret, tree.n_leaves(), config.ratchet)?;
        resumption_psks.insert(context.epoch, epoch_secrets.resumption_psk.clone());
        let application_export_secret = std::mem::replace(
            &mut epoch_secrets.application_export_secret,
            crate::crypto::Secret::new(Vec::new()),
        );
        let exporter_tree =
            crate::extensions::ExporterTree::new(context.cipher_suite, application_export_secret);
        Ok(GroupState {
            config,
            context,
            tree,
            private,
            signer,
            epoch_secrets,
            secret_tree,
            interim_transcript_hash,
            confirmation_tag,
            proposals: Vec::new(),
            own_updates: Vec::new(),
            resumption_psks,
            past_epochs: Vec::new(),
            status: GroupStatus::Active,
            exporter_tree,
        })
    }
}

/// The checked starting point of an external commit (§12.4.3.2): the GroupInfo's signature
/// verified against its signer's leaf, its tree validated, and what the commit builds on.
pub(super) struct ExternalStart {
    /// The GroupContext of the epoch the external commit is for.
    pub(super) context: GroupContext,
    /// That epoch's ratchet tree.
    pub(super) tree: RatchetTree,
    /// The epoch's `external_pub`.
    pub(super) external_pub: Vec<u8>,
    /// The epoch's interim transcript hash (from the GroupInfo's confirmation tag).
    pub(super) interim_transcript_hash: Vec<u8>,
}

impl ExternalStart {
    /// Checks `group_info` (with `ratchet_tree` unless it carries the tree).
    pub(super) fn check(
        cs: &dyn SuiteProvider,
        services: &Services<'_>,
        config: &GroupConfig,
        group_info: &GroupInfo,
        ratchet_tree: Option<RatchetTree>,
        now: u64,
    ) -> Result<Self, GroupError> {
        let context = group_info.group_context.clone();
        let tree = checked_group_info_tree(cs, services, config, group_info, ratchet_tree, now)?;
        let external_pub = ExternalPubExtension::find_in(&group_info.extensions)?
            .ok_or(GroupError::MissingExternalPub)?
            .external_pub
            .as_slice()
            .to_vec();
        let interim_transcript_hash = interim_transcript_hash(
            cs,
            context.confirmed_transcript_hash.as_slice(),
            group_info.confirmation_tag.as_slice(),
        )?;
        Ok(Self {
            context,
            tree,
            external_pub,
            interim_transcript_hash,
        })
    }
}

/// The ratchet tree of the epoch `group_info` describes, checked as a joiner checks it
/// (§12.4.3.1): from the GroupInfo's `ratchet_tree` extension, else `ratchet_tree`; the
/// GroupInfo's signature verified under its signer's leaf; the tree validated against the
/// GroupContext ([`validate_tree`]). The confirmation tag needs the epoch's secrets and is not
/// checked here.
pub(crate) fn checked_group_info_tree(
    cs: &dyn SuiteProvider,
    services: &Services<'_>,
    config: &GroupConfig,
    group_info: &GroupInfo,
    ratchet_tree: Option<RatchetTree>,
    now: u64,
) -> Result<RatchetTree, GroupError> {
    let tree = tree_from_group_info(&group_info.extensions, ratchet_tree)?;
    let signer_key = tree
        .leaf(LeafIndex(group_info.signer))
        .ok_or(GroupError::UnknownGroupInfoSigner(group_info.signer))?
        .signature_key
        .clone();
    group_info
        .verify_signature(cs, signer_key.as_slice())
        .map_err(|_| GroupError::BadGroupInfoSignature)?;
    validate_tree(cs, services, config, &tree, &group_info.group_context, now)?;
    Ok(tree)
}

/// The ratchet tree from a GroupInfo's `ratchet_tree` extension, else `given`.
fn tree_from_group_info(
    extensions: &[Extension],
    given: Option<RatchetTree>,
) -> Result<RatchetTree, GroupError> {
    match RatchetTreeExtension::find_in(extensions)? {
        Some(ext) => Ok(RatchetTree::from_nodes(ext.ratchet_tree)?),
        None => given.ok_or(GroupError::MissingRatchetTree),
    }
}

/// §12.4.3.1: the tree matches the GroupContext's tree hash, is parent-hash valid, has valid
/// unmerged leaves, unique keys, and every leaf passes §7.3.
fn validate_tree(
    cs: &dyn SuiteProvider,
    services: &Services<'_>,
    config: &GroupConfig,
    tree: &RatchetTree,
    context: &GroupContext,
    now: u64,
) -> Result<(), GroupError> {
    if context.cipher_suite != cs.cipher_suite() {
        return Err(GroupError::CipherSuiteMismatch(context.cipher_suite));
    }
    // Leaf signatures are verified once, with the rest of §7.3, below.
    tree.validate_structure(cs, context.tree_hash.as_slice())?;
    let requirements = GroupRequirements::from_group_context_extensions(&context.extensions)?;
    // One pass over all members (the leaf itself included: it trivially supports its own
    // credential type), so validation stays linear in the group size.
    let members = tree.member_credential_types(&[]);
    // The leaves are checked independently (a signature each): in parallel for large trees
    // (DESIGN §7).
    let leaves: Vec<(LeafIndex, &LeafNode)> = tree.leaves().collect();
    let identity = services.identity;
    crate::parallel::try_map(&leaves, |&(index, leaf)| {
        // A received tree's leaves may have expired since they were added: no lifetime check.
        let ctx = leaf_validation(config, identity, &requirements, &members, tree, now)
            .with_lifetime_check(crate::messages::LifetimeCheck::Skip);
        validate_leaf_node(
            cs,
            leaf,
            LeafNodeOrigin::RatchetTree {
                group_id: context.group_id.as_slice(),
                leaf_index: index.0,
            },
            &ctx,
        )
    })?;
    Ok(())
}
