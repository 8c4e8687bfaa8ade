//! The whole group state as bytes (design hook H8): a TLS-encoded `GroupStateV1` preceded by
//! its format version (`uint16`).
//!
//! Format versions: 1 (the first); 2 adds, at the end of `GroupStateV1`, the stored nodes of
//! the epoch's Exporter Tree (draft-ietf-mls-extensions-08 §4.4, design hook H5). A version-1
//! state lacks the Exporter Tree, whose root cannot be re-derived once `epoch_secret` is gone,
//! so version 1 is refused (`UnknownStateVersion(1)`) rather than read with a silently empty
//! exporter. 3 adds, at the end, `GroupConfig::lifetime_tolerance` (`uint64`); a version-2
//! state is read with [`crate::group::DEFAULT_LIFETIME_TOLERANCE`].
//!
//! Everything a member needs to continue is included: policy, GroupContext, public tree,
//! private tree keys, signature key pair, epoch secrets, the secret tree (stored node secrets,
//! ratchets, retained keys), transcript hashes, pending proposals and own Update keys,
//! resumption PSKs, past epochs kept for late messages, status, and the pending commit (its
//! next-epoch state nested). Secrets pass through [`Secret`] (zeroized on drop); the output
//! bytes hold secrets and are the caller's to protect.

use std::io::Write;

use tls_codec::{
    DeserializeBytes, Serialize, Size, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::config::{GroupConfig, HandshakeWireFormat, PendingCommit};
use super::error::GroupError;
use super::state::{Group, GroupState, GroupStatus, PastEpoch, StoredProposal};
use crate::codec::{
    decode_exact, encode, AuthenticatedContent, GroupContext, Node, Proposal, ProposalRef, ReInit,
    Sender,
};
use crate::crypto::{
    CipherSuite, HpkeKeyPair, HpkePrivateKey, Secret, SignatureKeyPair, SignaturePrivateKey,
};
use crate::schedule::{
    EpochSecrets, RatchetConfig, RatchetKey, ResumptionPskStore, SecretTree, SecretTreeSnapshot,
    SenderRatchetSnapshot,
};
use crate::tree::{LeafIndex, NodeIndex, RatchetTree, TreeKemPrivate};

/// The format version written by [`Group::to_bytes`].
pub const STATE_FORMAT_VERSION: u16 = 3;

/// Secret octets in the encoding: `opaque<V>`, held in a zeroizing [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct SecretBytes(Secret);

impl Size for SecretBytes {
    fn tls_serialized_len(&self) -> usize {
        tls_codec::VLByteSlice(self.0.as_bytes()).tls_serialized_len()
    }
}

impl Serialize for SecretBytes {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        tls_codec::VLByteSlice(self.0.as_bytes()).tls_serialize(writer)
    }
}

impl DeserializeBytes for SecretBytes {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (v, rest) = VLBytes::tls_deserialize_bytes(bytes)?;
        Ok((SecretBytes(Secret::new(Vec::from(v))), rest))
    }
}

fn sb(s: &Secret) -> SecretBytes {
    SecretBytes(s.clone())
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct ConfigV1 {
    handshake_private: u8,
    padding_block: u32,
    out_of_order_tolerance: u32,
    maximum_forward_distance: u32,
    max_past_epochs: u32,
    resumption_psk_epochs: u32,
    ratchet_tree_extension: u8,
    check_lifetimes: u8,
    max_lifetime: Option<u64>,
    max_message_size: u32,
    retain_sent_keys: u8,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct KeyPairV1 {
    node: u32,
    private_key: SecretBytes,
    public_key: VLBytes,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct RetainedKeyV1 {
    generation: u32,
    key: SecretBytes,
    nonce: SecretBytes,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct RatchetV1 {
    secret: SecretBytes,
    next: u64,
    retained: Vec<RetainedKeyV1>,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct LeafRatchetsV1 {
    leaf: u32,
    handshake: RatchetV1,
    application: RatchetV1,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct NodeSecretV1 {
    node: u32,
    secret: SecretBytes,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct SecretTreeV1 {
    suite: CipherSuite,
    leaf_count: u32,
    out_of_order_tolerance: u32,
    maximum_forward_distance: u32,
    nodes: Vec<NodeSecretV1>,
    leaves: Vec<LeafRatchetsV1>,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct EpochSecretsV1 {
    sender_data_secret: SecretBytes,
    encryption_secret: SecretBytes,
    exporter_secret: SecretBytes,
    external_secret: SecretBytes,
    confirmation_key: SecretBytes,
    membership_key: SecretBytes,
    resumption_psk: SecretBytes,
    epoch_authenticator: SecretBytes,
    init_secret: SecretBytes,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct StoredProposalV1 {
    reference: VLBytes,
    sender: Sender,
    proposal: Proposal,
    sent_message: Option<VLBytes>,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct OwnUpdateV1 {
    reference: VLBytes,
    private_key: SecretBytes,
    public_key: VLBytes,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct ResumptionPskV1 {
    epoch: u64,
    psk: SecretBytes,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct PastEpochV1 {
    context: GroupContext,
    sender_data_secret: SecretBytes,
    secret_tree: SecretTreeV1,
    signature_keys: Vec<Option<VLBytes>>,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct PendingCommitV1 {
    content: VLBytes,
    sent_message: VLBytes,
    next: VLBytes,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct GroupStateV1 {
    config: ConfigV1,
    context: GroupContext,
    tree: Vec<Option<Node>>,
    own_leaf: u32,
    private_keys: Vec<KeyPairV1>,
    signature_private_key: SecretBytes,
    signature_public_key: VLBytes,
    epoch_secrets: EpochSecretsV1,
    secret_tree: SecretTreeV1,
    interim_transcript_hash: VLBytes,
    confirmation_tag: VLBytes,
    proposals: Vec<StoredProposalV1>,
    own_updates: Vec<OwnUpdateV1>,
    resumption_psk_epochs: u64,
    resumption_psks: Vec<ResumptionPskV1>,
    past_epochs: Vec<PastEpochV1>,
    /// 0 active, 1 removed, 2 reinit (then `reinit` is present).
    status: u8,
    reinit: Option<ReInit>,
    pending_commit: Option<PendingCommitV1>,
    /// The Exporter Tree's stored node secrets (format version 2).
    exporter_tree: Vec<NodeSecretV1>,
    /// `GroupConfig::lifetime_tolerance` (format version 3).
    lifetime_tolerance: u64,
}

#[derive(Debug, TlsSerialize, TlsDeserializeBytes, TlsSize)]
struct VersionedState {
    version: u16,
    state: VLBytes,
}

impl Group {
    /// Serialises the whole state (format version [`STATE_FORMAT_VERSION`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, GroupError> {
        let pending = match &self.pending_commit {
            Some(p) => Some(PendingCommitV1 {
                content: encode(&p.content)?.into(),
                sent_message: p.sent_message.clone().into(),
                next: encode(&state_v1(&p.next, None)?)?.into(),
            }),
            None => None,
        };
        let state = state_v1(&self.state, pending)?;
        Ok(encode(&VersionedState {
            version: STATE_FORMAT_VERSION,
            state: encode(&state)?.into(),
        })?)
    }

    /// Restores a state written by [`Group::to_bytes`]. Refuses unknown versions and
    /// malformed or inconsistent input with typed errors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Group, GroupError> {
        let versioned: VersionedState = decode_exact(bytes)?;
        let v1 = decode_state(versioned.version, versioned.state.as_slice())?;
        let pending = v1
            .pending_commit
            .as_ref()
            .map(|p| -> Result<_, GroupError> {
                let content: AuthenticatedContent = decode_exact(p.content.as_slice())?;
                let next_v1 = decode_state(versioned.version, p.next.as_slice())?;
                Ok(PendingCommit {
                    content,
                    sent_message: p.sent_message.as_slice().to_vec(),
                    next: Box::new(state_from_v1(next_v1)?),
                })
            });
        let pending_commit = pending.transpose()?;
        Ok(Group {
            state: state_from_v1(v1)?,
            pending_commit,
        })
    }
}

/// A `GroupStateV1` of format `version`: a version-2 state lacks the trailing
/// `lifetime_tolerance`, read as the default.
fn decode_state(version: u16, bytes: &[u8]) -> Result<GroupStateV1, GroupError> {
    match version {
        2 => {
            let mut full = bytes.to_vec();
            full.extend_from_slice(&crate::group::DEFAULT_LIFETIME_TOLERANCE.to_be_bytes());
            let state = decode_exact(&full);
            zeroize::Zeroize::zeroize(&mut full);
            Ok(state?)
        }
        STATE_FORMAT_VERSION => Ok(decode_exact(bytes)?),
        other => Err(GroupError::UnknownStateVersion(other)),
    }
}

fn config_v1(c: &GroupConfig) -> ConfigV1 {
    ConfigV1 {
        handshake_private: u8::from(c.handshake_wire_format == HandshakeWireFormat::Private),
        padding_block: c.padding_block,
        out_of_order_tolerance: c.ratchet.out_of_order_tolerance,
        maximum_forward_distance: c.ratchet.maximum_forward_distance,
        max_past_epochs: c.max_past_epochs,
        resumption_psk_epochs: c.resumption_psk_epochs,
        ratchet_tree_extension: u8::from(c.ratchet_tree_extension),
        check_lifetimes: u8::from(c.check_lifetimes),
        max_lifetime: c.max_lifetime,
        max_message_size: c.max_message_size,
        retain_sent_keys: u8::from(c.retain_sent_keys),
    }
}

fn flag(v: u8) -> Result<bool, GroupError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(GroupError::MalformedState("boolean out of range")),
    }
}

fn config_from_v1(c: &ConfigV1) -> Result<GroupConfig, GroupError> {
    Ok(GroupConfig {
        handshake_wire_format: if flag(c.handshake_private)? {
            HandshakeWireFormat::Private
        } else {
            HandshakeWireFormat::Public
        },
        padding_block: c.padding_block,
        ratchet: RatchetConfig {
            out_of_order_tolerance: c.out_of_order_tolerance,
            maximum_forward_distance: c.maximum_forward_distance,
        },
        max_past_epochs: c.max_past_epochs,
        resumption_psk_epochs: c.resumption_psk_epochs,
        ratchet_tree_extension: flag(c.ratchet_tree_extension)?,
        check_lifetimes: flag(c.check_lifetimes)?,
        max_lifetime: c.max_lifetime,
        max_message_size: c.max_message_size,
        retain_sent_keys: flag(c.retain_sent_keys)?,
        // Not in `ConfigV1`: set from `GroupStateV1::lifetime_tolerance` by the caller.
        lifetime_tolerance: crate::group::DEFAULT_LIFETIME_TOLERANCE,
    })
}

fn ratchet_v1(r: &SenderRatchetSnapshot) -> RatchetV1 {
    RatchetV1 {
        secret: sb(&r.secret),
        next: r.next,
        retained: r
            .retained
            .iter()
            .map(|k| RetainedKeyV1 {
                generation: k.generation,
                key: sb(&k.key),
                nonce: sb(&k.nonce),
            })
            .collect(),
    }
}

fn ratchet_from_v1(r: RatchetV1) -> SenderRatchetSnapshot {
    SenderRatchetSnapshot {
        secret: r.secret.0,
        next: r.next,
        retained: r
            .retained
            .into_iter()
            .map(|k| RatchetKey {
                generation: k.generation,
                key: k.key.0,
                nonce: k.nonce.0,
            })
            .collect(),
    }
}

fn secret_tree_v1(t: &SecretTree) -> SecretTreeV1 {
    let s = t.snapshot();
    SecretTreeV1 {
        suite: s.suite,
        leaf_count: s.leaf_count,
        out_of_order_tolerance: s.config.out_of_order_tolerance,
        maximum_forward_distance: s.config.maximum_forward_distance,
        nodes: s
            .nodes
            .iter()
            .map(|(x, secret)| NodeSecretV1 {
                node: x.0,
                secret: sb(secret),
            })
            .collect(),
        leaves: s
            .leaves
            .iter()
            .map(|(leaf, h, a)| LeafRatchetsV1 {
                leaf: leaf.0,
                handshake: ratchet_v1(h),
                application: ratchet_v1(a),
            })
            .collect(),
    }
}

fn secret_tree_from_v1(t: SecretTreeV1) -> Result<SecretTree, GroupError> {
    Ok(SecretTree::from_snapshot(SecretTreeSnapshot {
        suite: t.suite,
        leaf_count: t.leaf_count,
        config: RatchetConfig {
            out_of_order_tolerance: t.out_of_order_tolerance,
            maximum_forward_distance: t.maximum_forward_distance,
        },
        nodes: t
            .nodes
            .into_iter()
            .map(|n| (NodeIndex(n.node), n.secret.0))
            .collect(),
        leaves: t
            .leaves
            .into_iter()
            .map(|l| {
                (
                    LeafIndex(l.leaf),
                    ratchet_from_v1(l.handshake),
                    ratchet_from_v1(l.application),
                )
            })
            .collect(),
    })?)
}

fn state_v1(
    st: &GroupState,
    pending_commit: Option<PendingCommitV1>,
) -> Result<GroupStateV1, GroupError> {
    let e = &st.epoch_secrets;
    let (status, reinit) = match &st.status {
        GroupStatus::Active => (0, None),
        GroupStatus::Removed => (1, None),
        GroupStatus::ReInit(r) => (2, Some(r.clone())),
    };
    Ok(GroupStateV1 {
        config: config_v1(&st.config),
        context: st.context.clone(),
        tree: st.tree.to_nodes(),
        own_leaf: st.private.own_leaf().0,
        private_keys: st
            .private
            .key_pairs()
            .map(|(x, k)| KeyPairV1 {
                node: x.0,
                private_key: SecretBytes(Secret::new(k.private_key.as_bytes().to_vec())),
                public_key: k.public_key.clone().into(),
            })
            .collect(),
        signature_private_key: SecretBytes(Secret::new(st.signer.private_key.as_bytes().to_vec())),
        signature_public_key: st.signer.public_key.clone().into(),
        epoch_secrets: EpochSecretsV1 {
            sender_data_secret: sb(&e.sender_data_secret),
            encryption_secret: sb(&e.encryption_secret),
            exporter_secret: sb(&e.exporter_secret),
            external_secret: sb(&e.external_secret),
            confirmation_key: sb(&e.confirmation_key),
            membership_key: sb(&e.membership_key),
            resumption_psk: sb(&e.resumption_psk),
            epoch_authenticator: sb(&e.epoch_authenticator),
            init_secret: sb(&e.init_secret),
        },
        secret_tree: secret_tree_v1(&st.secret_tree),
        interim_transcript_hash: st.interim_transcript_hash.clone().into(),
        confirmation_tag: st.confirmation_tag.clone().into(),
        proposals: st
            .proposals
            .iter()
            .map(|p| StoredProposalV1 {
                reference: p.reference.0.clone(),
                sender: p.sender,
                proposal: p.proposal.clone(),
                sent_message: p.sent_message.clone().map(VLBytes::new),
            })
            .collect(),
        own_updates: st
            .own_updates
            .iter()
            .map(|(r, k)| OwnUpdateV1 {
                reference: r.0.clone(),
                private_key: SecretBytes(Secret::new(k.private_key.as_bytes().to_vec())),
                public_key: k.public_key.clone().into(),
            })
            .collect(),
        resumption_psk_epochs: st.resumption_psks.max_epochs(),
        resumption_psks: st
            .resumption_psks
            .iter()
            .map(|(epoch, psk)| ResumptionPskV1 {
                epoch,
                psk: sb(psk),
            })
            .collect(),
        past_epochs: st
            .past_epochs
            .iter()
            .map(|p| PastEpochV1 {
                context: p.context.clone(),
                sender_data_secret: sb(&p.sender_data_secret),
                secret_tree: secret_tree_v1(&p.secret_tree),
                signature_keys: p
                    .signature_keys
                    .iter()
                    .map(|k| k.clone().map(VLBytes::new))
                    .collect(),
            })
            .collect(),
        status,
        reinit,
        pending_commit,
        exporter_tree: st
            .exporter_tree
            .nodes()
            .map(|(x, secret)| NodeSecretV1 {
                node: x,
                secret: sb(secret),
            })
            .collect(),
        lifetime_tolerance: st.config.lifetime_tolerance,
    })
}

fn hpke_pair(private_key: SecretBytes, public_key: VLBytes) -> HpkeKeyPair {
    HpkeKeyPair {
        private_key: HpkePrivateKey::new(private_key.0.as_bytes().to_vec()),
        public_key: public_key.into(),
    }
}

fn state_from_v1(v: GroupStateV1) -> Result<GroupState, GroupError> {
    let mut config = config_from_v1(&v.config)?;
    config.lifetime_tolerance = v.lifetime_tolerance;
    let tree = RatchetTree::from_nodes(v.tree)?;
    let own_leaf = LeafIndex(v.own_leaf);
    let mut keys = v.private_keys.into_iter();
    let own_node = own_leaf.node();
    let mut private: Option<TreeKemPrivate> = None;
    let mut others = Vec::new();
    for k in keys.by_ref() {
        let pair = hpke_pair(k.private_key, k.public_key);
        if NodeIndex(k.node) == own_node {
            private = Some(TreeKemPrivate::new(own_leaf, pair));
        } else {
            others.push((NodeIndex(k.node), pair));
        }
    }
    let mut private = private.ok_or(GroupError::MalformedState("no own leaf key"))?;
    for (x, pair) in others {
        private.insert(x, pair);
    }
    if private.check_consistent(&tree).is_err() {
        return Err(GroupError::MalformedState(
            "private keys do not match the tree",
        ));
    }
    if v.secret_tree.suite != v.context.cipher_suite || v.secret_tree.leaf_count != tree.n_leaves()
    {
        return Err(GroupError::MalformedState(
            "secret tree does not match the group",
        ));
    }
    let e = v.epoch_secrets;
    let epoch_secrets = EpochSecrets {
        sender_data_secret: e.sender_data_secret.0,
        encryption_secret: e.encryption_secret.0,
        exporter_secret: e.exporter_secret.0,
        external_secret: e.external_secret.0,
        confirmation_key: e.confirmation_key.0,
        membership_key: e.membership_key.0,
        resumption_psk: e.resumption_psk.0,
        epoch_authenticator: e.epoch_authenticator.0,
        init_secret: e.init_secret.0,
        // Moved into the Exporter Tree when the epoch began (see `GroupState::for_epoch`).
        application_export_secret: Secret::new(Vec::new()),
    };
    let hash_len = v
        .context
        .cipher_suite
        .params()
        .ok_or(GroupError::MalformedState("unknown cipher suite"))?
        .hash_len();
    let exporter_tree = crate::extensions::ExporterTree::from_nodes(
        v.context.cipher_suite,
        hash_len,
        v.exporter_tree
            .into_iter()
            .map(|n| (n.node, n.secret.0))
            .collect(),
    )
    .map_err(|_| GroupError::MalformedState("exporter tree"))?;
    let mut resumption_psks = ResumptionPskStore::new(v.resumption_psk_epochs);
    for r in v.resumption_psks {
        resumption_psks.insert(r.epoch, r.psk.0);
    }
    let status = match (v.status, v.reinit) {
        (0, None) => GroupStatus::Active,
        (1, None) => GroupStatus::Removed,
        (2, Some(r)) => GroupStatus::ReInit(r),
        _ => return Err(GroupError::MalformedState("status")),
    };
    let mut past_epochs = Vec::with_capacity(v.past_epochs.len());
    for p in v.past_epochs {
        past_epochs.push(PastEpoch {
            context: p.context,
            sender_data_secret: p.sender_data_secret.0,
            secret_tree: secret_tree_from_v1(p.secret_tree)?,
            signature_keys: p
                .signature_keys
                .into_iter()
                .map(|k| k.map(Vec::from))
                .collect(),
        });
    }
    Ok(GroupState {
        config,
        context: v.context,
        tree,
        private,
        signer: SignatureKeyPair {
            private_key: SignaturePrivateKey::new(v.signature_private_key.0.as_bytes().to_vec()),
            public_key: v.signature_public_key.into(),
        },
        epoch_secrets,
        secret_tree: secret_tree_from_v1(v.secret_tree)?,
        interim_transcript_hash: v.interim_transcript_hash.into(),
        confirmation_tag: v.confirmation_tag.into(),
        proposals: v
            .proposals
            .into_iter()
            .map(|p| StoredProposal {
                reference: ProposalRef(p.reference),
                proposal: p.proposal,
                sender: p.sender,
                sent_message: p.sent_message.map(Vec::from),
            })
            .collect(),
        own_updates: v
            .own_updates
            .into_iter()
            .map(|u| {
                (
                    ProposalRef(u.reference),
                    hpke_pair(u.private_key, u.public_key),
                )
            })
            .collect(),
        resumption_psks,
        past_epochs,
        status,
        exporter_tree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Credential, Lifetime};
    use crate::crypto::{CryptoProvider as _, RustCrypto};
    use crate::group::{CommitOptions, OwnLeaf, Services};
    use crate::messages::{HpkeKeySource, LeafNodeParams};

    static P: RustCrypto = RustCrypto;

    fn group() -> Group {
        let suite = CipherSuite(3);
        let cs = P.suite(suite).unwrap();
        Group::create(
            &Services::new(&P),
            GroupConfig::default(),
            b"g".to_vec(),
            suite,
            OwnLeaf {
                params: LeafNodeParams::new(suite, Credential::basic(b"a".to_vec())),
                encryption_key: HpkeKeySource::Generate,
                signature_key: cs.signature_generate_key_pair().unwrap(),
            },
            Lifetime {
                not_before: 0,
                not_after: u64::MAX,
            },
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn round_trip_with_pending_commit() {
        let mut g = group();
        g.encrypt_application(&Services::new(&P), b"x", b"")
            .unwrap();
        g.commit(&Services::new(&P), CommitOptions::new().with_path(), 0)
            .unwrap();
        let bytes = g.to_bytes().unwrap();
        let mut back = Group::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes().unwrap(), bytes);
        back.merge_pending_commit().unwrap();
        g.merge_pending_commit().unwrap();
        assert_eq!(back.to_bytes().unwrap(), g.to_bytes().unwrap());
        assert_eq!(back.epoch(), 1);
    }

    #[test]
    fn a_version_2_state_reads_with_the_default_lifetime_tolerance() {
        let mut g = group();
        let mut config = *g.config();
        config.lifetime_tolerance = 7;
        g.set_config(config);
        let versioned: VersionedState = decode_exact(&g.to_bytes().unwrap()).unwrap();
        let inner = versioned.state.as_slice();
        assert_eq!(&inner[inner.len() - 8..], &7u64.to_be_bytes());
        let v2 = encode(&VersionedState {
            version: 2,
            state: inner[..inner.len() - 8].to_vec().into(),
        })
        .unwrap();
        let back = Group::from_bytes(&v2).unwrap();
        assert_eq!(
            back.config().lifetime_tolerance,
            crate::group::DEFAULT_LIFETIME_TOLERANCE
        );
        assert_eq!(
            Group::from_bytes(&g.to_bytes().unwrap())
                .unwrap()
                .config()
                .lifetime_tolerance,
            7
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let bytes = group().to_bytes().unwrap();
        let mut other_version = bytes.clone();
        for version in [1u8, 4] {
            other_version[1] = version;
            assert_eq!(
                Group::from_bytes(&other_version).unwrap_err(),
                GroupError::UnknownStateVersion(version.into())
            );
        }
        for cut in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(Group::from_bytes(&bytes[..cut]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Group::from_bytes(&long).is_err());
    }
}
