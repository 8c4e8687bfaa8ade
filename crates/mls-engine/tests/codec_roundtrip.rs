//! Property tests: every codec struct encodes, decodes back to itself, and its encoded length
//! is what `tls_serialized_len` promised. Plus the varint rules of RFC 9420 §2.1.2.

use mls_engine::codec::*;
use mls_engine::crypto::Secret;
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Strategies.

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn vl(max: usize) -> impl Strategy<Value = VLBytes> {
    bytes(max).prop_map(VLBytes::new)
}

fn extension() -> impl Strategy<Value = Extension> {
    (any::<u16>(), bytes(12)).prop_map(|(t, data)| Extension::new(ExtensionType(t), data))
}

fn extensions() -> impl Strategy<Value = Vec<Extension>> {
    vec(extension(), 0..3)
}

fn credential() -> impl Strategy<Value = Credential> {
    prop_oneof![
        bytes(12).prop_map(Credential::basic),
        vec(vl(12), 0..3).prop_map(|certs| Credential::X509(
            certs
                .into_iter()
                .map(|cert_data| Certificate { cert_data })
                .collect()
        )),
    ]
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    (
        vec(any::<u16>(), 0..3),
        vec(any::<u16>(), 0..3),
        vec(any::<u16>(), 0..3),
        vec(any::<u16>(), 0..3),
        vec(any::<u16>(), 0..3),
    )
        .prop_map(|(v, c, e, p, cr)| Capabilities {
            versions: v.into_iter().map(ProtocolVersion).collect(),
            cipher_suites: c.into_iter().map(CipherSuite).collect(),
            extensions: e.into_iter().map(ExtensionType).collect(),
            proposals: p.into_iter().map(ProposalType).collect(),
            credentials: cr.into_iter().map(CredentialType).collect(),
        })
}

fn leaf_node_source() -> impl Strategy<Value = LeafNodeSource> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(not_before, not_after)| {
            LeafNodeSource::KeyPackage(Lifetime {
                not_before,
                not_after,
            })
        }),
        Just(LeafNodeSource::Update),
        vl(32).prop_map(LeafNodeSource::Commit),
    ]
}

prop_compose! {
    fn leaf_node()(
        encryption_key in bytes(32),
        signature_key in bytes(32),
        credential in credential(),
        capabilities in capabilities(),
        leaf_node_source in leaf_node_source(),
        extensions in extensions(),
        signature in vl(64),
    ) -> LeafNode {
        LeafNode {
            encryption_key: encryption_key.into(),
            signature_key: signature_key.into(),
            credential,
            capabilities,
            leaf_node_source,
            extensions,
            signature,
        }
    }
}

prop_compose! {
    fn key_package()(
        version in any::<u16>(),
        cipher_suite in any::<u16>(),
        init_key in bytes(32),
        leaf_node in leaf_node(),
        extensions in extensions(),
        signature in vl(64),
    ) -> KeyPackage {
        KeyPackage {
            version: ProtocolVersion(version),
            cipher_suite: CipherSuite(cipher_suite),
            init_key: init_key.into(),
            leaf_node,
            extensions,
            signature,
        }
    }
}

fn psk_id() -> impl Strategy<Value = PreSharedKeyID> {
    let usage = prop_oneof![
        Just(ResumptionPSKUsage::Application),
        Just(ResumptionPSKUsage::Reinit),
        Just(ResumptionPSKUsage::Branch),
    ];
    prop_oneof![
        (bytes(16), bytes(32)).prop_map(|(id, nonce)| PreSharedKeyID::external(id, nonce)),
        (usage, bytes(16), any::<u64>(), bytes(32)).prop_map(|(usage, group, epoch, nonce)| {
            PreSharedKeyID::resumption(usage, group, epoch, nonce)
        }),
    ]
}

fn proposal() -> impl Strategy<Value = Proposal> {
    prop_oneof![
        key_package().prop_map(Proposal::add),
        leaf_node().prop_map(Proposal::update),
        any::<u32>().prop_map(Proposal::remove),
        psk_id().prop_map(Proposal::pre_shared_key),
        (vl(16), any::<u16>(), any::<u16>(), extensions()).prop_map(
            |(group_id, version, suite, extensions)| Proposal::ReInit(ReInit {
                group_id,
                version: ProtocolVersion(version),
                cipher_suite: CipherSuite(suite),
                extensions,
            })
        ),
        vl(32).prop_map(|kem_output| Proposal::ExternalInit(ExternalInit { kem_output })),
        extensions().prop_map(|extensions| {
            Proposal::GroupContextExtensions(GroupContextExtensions { extensions })
        }),
    ]
}

fn proposal_or_ref() -> impl Strategy<Value = ProposalOrRef> {
    prop_oneof![
        proposal().prop_map(ProposalOrRef::Proposal),
        bytes(32).prop_map(|r| ProposalOrRef::Reference(r.into())),
    ]
}

fn hpke_ciphertext() -> impl Strategy<Value = HpkeCiphertext> {
    (vl(32), vl(48)).prop_map(|(kem_output, ciphertext)| HpkeCiphertext {
        kem_output,
        ciphertext,
    })
}

fn update_path() -> impl Strategy<Value = UpdatePath> {
    let node =
        (bytes(32), vec(hpke_ciphertext(), 0..3)).prop_map(|(key, encrypted)| UpdatePathNode {
            encryption_key: key.into(),
            encrypted_path_secret: encrypted,
        });
    (leaf_node(), vec(node, 0..3)).prop_map(|(leaf_node, nodes)| UpdatePath { leaf_node, nodes })
}

fn commit() -> impl Strategy<Value = Commit> {
    (
        vec(proposal_or_ref(), 0..3),
        proptest::option::of(update_path()),
    )
        .prop_map(|(proposals, path)| Commit { proposals, path })
}

fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![
        any::<u32>().prop_map(Sender::Member),
        any::<u32>().prop_map(Sender::External),
        Just(Sender::NewMemberProposal),
        Just(Sender::NewMemberCommit),
    ]
}

fn body() -> impl Strategy<Value = FramedContentBody> {
    prop_oneof![
        vl(64).prop_map(FramedContentBody::Application),
        proposal().prop_map(FramedContentBody::Proposal),
        commit().prop_map(FramedContentBody::Commit),
    ]
}

prop_compose! {
    fn framed_content()(
        group_id in vl(16),
        epoch in any::<u64>(),
        sender in sender(),
        authenticated_data in vl(16),
        body in body(),
    ) -> FramedContent {
        FramedContent { group_id, epoch, sender, authenticated_data, body }
    }
}

/// Auth data that fits `content_type`.
fn auth(content_type: ContentType) -> impl Strategy<Value = FramedContentAuthData> {
    (vl(72), vl(32)).prop_map(move |(signature, tag)| FramedContentAuthData {
        signature,
        confirmation_tag: (content_type == ContentType::Commit).then_some(tag),
    })
}

fn authenticated_content() -> impl Strategy<Value = AuthenticatedContent> {
    (any::<u16>(), framed_content()).prop_flat_map(|(wire_format, content)| {
        auth(content.content_type()).prop_map(move |auth| AuthenticatedContent {
            wire_format: WireFormat(wire_format),
            content: content.clone(),
            auth,
        })
    })
}

fn public_message() -> impl Strategy<Value = PublicMessage> {
    (framed_content(), vl(32)).prop_flat_map(|(content, tag)| {
        auth(content.content_type()).prop_map(move |auth| PublicMessage {
            membership_tag: matches!(content.sender, Sender::Member(_)).then(|| tag.clone()),
            content: content.clone(),
            auth,
        })
    })
}

fn content_type() -> impl Strategy<Value = ContentType> {
    prop_oneof![
        Just(ContentType::Application),
        Just(ContentType::Proposal),
        Just(ContentType::Commit),
    ]
}

prop_compose! {
    fn private_message()(
        group_id in vl(16),
        epoch in any::<u64>(),
        content_type in content_type(),
        authenticated_data in vl(16),
        encrypted_sender_data in vl(32),
        ciphertext in vl(128),
    ) -> PrivateMessage {
        PrivateMessage {
            group_id,
            epoch,
            content_type,
            authenticated_data,
            encrypted_sender_data,
            ciphertext,
        }
    }
}

fn private_message_content() -> impl Strategy<Value = PrivateMessageContent> {
    (body(), 0usize..600).prop_flat_map(|(body, padding_len)| {
        auth(body.content_type()).prop_map(move |auth| PrivateMessageContent {
            body: body.clone(),
            auth,
            padding_len,
        })
    })
}

prop_compose! {
    fn group_context()(
        version in any::<u16>(),
        cipher_suite in any::<u16>(),
        group_id in vl(16),
        epoch in any::<u64>(),
        tree_hash in vl(32),
        confirmed_transcript_hash in vl(32),
        extensions in extensions(),
    ) -> GroupContext {
        GroupContext {
            version: ProtocolVersion(version),
            cipher_suite: CipherSuite(cipher_suite),
            group_id,
            epoch,
            tree_hash,
            confirmed_transcript_hash,
            extensions,
        }
    }
}

prop_compose! {
    fn group_info()(
        group_context in group_context(),
        extensions in extensions(),
        confirmation_tag in vl(32),
        signer in any::<u32>(),
        signature in vl(72),
    ) -> GroupInfo {
        GroupInfo { group_context, extensions, confirmation_tag, signer, signature }
    }
}

fn welcome() -> impl Strategy<Value = Welcome> {
    let entry = (bytes(32), hpke_ciphertext()).prop_map(|(r, encrypted_group_secrets)| {
        EncryptedGroupSecrets {
            new_member: r.into(),
            encrypted_group_secrets,
        }
    });
    (any::<u16>(), vec(entry, 0..3), vl(128)).prop_map(|(suite, secrets, info)| Welcome {
        cipher_suite: CipherSuite(suite),
        secrets,
        encrypted_group_info: info,
    })
}

fn group_secrets() -> impl Strategy<Value = GroupSecrets> {
    (
        bytes(32),
        proptest::option::of(bytes(32)),
        vec(psk_id(), 0..3),
    )
        .prop_map(|(joiner, path, psks)| GroupSecrets {
            joiner_secret: Secret::new(joiner),
            path_secret: path.map(|p| PathSecret {
                path_secret: Secret::new(p),
            }),
            psks,
        })
}

fn mls_message() -> impl Strategy<Value = MlsMessage> {
    prop_oneof![
        public_message().prop_map(MlsMessageBody::PublicMessage),
        private_message().prop_map(MlsMessageBody::PrivateMessage),
        welcome().prop_map(MlsMessageBody::Welcome),
        group_info().prop_map(MlsMessageBody::GroupInfo),
        key_package().prop_map(MlsMessageBody::KeyPackage),
    ]
    .prop_map(MlsMessage::new)
}

/// A ratchet tree of the shape the RFC requires: leaves at even positions, parents at odd
/// ones, the last entry non-blank.
fn ratchet_tree() -> impl Strategy<Value = RatchetTreeExtension> {
    let parent = (bytes(32), vl(32), vec(any::<u32>(), 0..3)).prop_map(|(key, hash, unmerged)| {
        Node::Parent(ParentNode {
            encryption_key: key.into(),
            parent_hash: hash,
            unmerged_leaves: unmerged,
        })
    });
    let leaf = leaf_node().prop_map(Node::Leaf);
    (
        vec(proptest::option::of(leaf), 1..5),
        vec(proptest::option::of(parent), 4),
    )
        .prop_map(|(leaves, parents)| {
            let mut nodes = Vec::new();
            for (i, leaf) in leaves.into_iter().enumerate() {
                if i > 0 {
                    nodes.push(parents[i - 1].clone());
                }
                nodes.push(leaf);
            }
            while matches!(nodes.last(), Some(None)) {
                nodes.pop();
            }
            if nodes.is_empty() {
                nodes.push(Some(Node::Leaf(LeafNode {
                    encryption_key: vec![1].into(),
                    signature_key: vec![2].into(),
                    credential: Credential::basic(vec![3]),
                    capabilities: Capabilities::default(),
                    leaf_node_source: LeafNodeSource::Update,
                    extensions: vec![],
                    signature: vec![4].into(),
                })));
            }
            RatchetTreeExtension {
                ratchet_tree: nodes,
            }
        })
}

fn external_senders() -> impl Strategy<Value = ExternalSendersExtension> {
    vec((bytes(32), credential()), 0..3).prop_map(|senders| ExternalSendersExtension {
        external_senders: senders
            .into_iter()
            .map(|(key, credential)| ExternalSender {
                signature_key: key.into(),
                credential,
            })
            .collect(),
    })
}

fn required_capabilities() -> impl Strategy<Value = RequiredCapabilitiesExtension> {
    (
        vec(any::<u16>(), 0..4),
        vec(any::<u16>(), 0..4),
        vec(any::<u16>(), 0..4),
    )
        .prop_map(|(e, p, c)| RequiredCapabilitiesExtension {
            extension_types: e.into_iter().map(ExtensionType).collect(),
            proposal_types: p.into_iter().map(ProposalType).collect(),
            credential_types: c.into_iter().map(CredentialType).collect(),
        })
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn round_trips<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeBytes + PartialEq + std::fmt::Debug,
{
    let bytes = encode(value).map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    prop_assert_eq!(bytes.len(), value.tls_serialized_len());
    let back: T = decode_exact(&bytes).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

fn payload_round_trips<T>(value: &T) -> Result<(), TestCaseError>
where
    T: ExtensionPayload + PartialEq + std::fmt::Debug,
{
    round_trips(value)?;
    let extension = value
        .to_extension()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(extension.extension_type, T::EXTENSION_TYPE);
    let back = T::from_extension(&extension).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn proposals_round_trip(value in proposal()) {
        round_trips(&value)?;
        match &value {
            Proposal::Add(add) => round_trips(add)?,
            Proposal::Update(update) => round_trips(update)?,
            Proposal::Remove(remove) => round_trips(remove)?,
            Proposal::PreSharedKey(psk) => round_trips(psk)?,
            Proposal::ReInit(reinit) => round_trips(reinit)?,
            Proposal::ExternalInit(init) => round_trips(init)?,
            Proposal::GroupContextExtensions(gce) => round_trips(gce)?,
        }
    }

    #[test]
    fn proposal_or_ref_round_trips(value in proposal_or_ref()) {
        round_trips(&value)?;
    }

    #[test]
    fn commits_round_trip(value in commit()) {
        round_trips(&value)?;
    }

    #[test]
    fn framed_content_round_trips(value in framed_content()) {
        round_trips(&value)?;
        round_trips(&value.body)?;
        round_trips(&value.sender)?;
    }

    #[test]
    fn authenticated_content_round_trips(value in authenticated_content()) {
        round_trips(&value)?;
    }

    #[test]
    fn public_messages_round_trip(value in public_message()) {
        round_trips(&value)?;
    }

    #[test]
    fn private_messages_round_trip(value in private_message()) {
        round_trips(&value)?;
        round_trips(&value.sender_data_aad())?;
        round_trips(&value.private_content_aad())?;
    }

    #[test]
    fn private_message_contents_round_trip(value in private_message_content()) {
        let bytes = value.to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(bytes.len(), value.tls_serialized_len());
        let back = PrivateMessageContent::decode(value.body.content_type(), &bytes)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, value);
    }

    #[test]
    fn sender_data_round_trips(leaf_index: u32, generation: u32, reuse_guard: [u8; 4]) {
        round_trips(&SenderData { leaf_index, generation, reuse_guard })?;
    }

    #[test]
    fn group_info_round_trips(value in group_info()) {
        round_trips(&value)?;
        // The TBS is the encoding without the trailing signature.
        let tbs = value.to_be_signed().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let full = encode(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&full[..tbs.len()], tbs.as_slice());
        prop_assert_eq!(full.len() - tbs.len(), value.signature.tls_serialized_len());
    }

    #[test]
    fn welcome_round_trips(value in welcome()) {
        round_trips(&value)?;
    }

    #[test]
    fn group_secrets_round_trip(value in group_secrets()) {
        round_trips(&value)?;
    }

    #[test]
    fn mls_messages_round_trip(value in mls_message()) {
        round_trips(&value)?;
    }

    #[test]
    fn extension_payloads_round_trip(
        tree in ratchet_tree(),
        caps in required_capabilities(),
        senders in external_senders(),
        application_id in vl(32),
        external_pub in bytes(65),
    ) {
        payload_round_trips(&tree)?;
        payload_round_trips(&caps)?;
        payload_round_trips(&senders)?;
        payload_round_trips(&ApplicationIdExtension { application_id })?;
        payload_round_trips(&ExternalPubExtension { external_pub: external_pub.into() })?;
    }

    #[test]
    fn opaque_vectors_round_trip_at_every_header_size(len in prop_oneof![
        0usize..=63, 64usize..=16383, 16384usize..=70000,
    ]) {
        let value = VLBytes::new(vec![0x5a; len]);
        let bytes = encode(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let header = bytes.len() - len;
        prop_assert_eq!(header, if len < 64 { 1 } else if len < 16384 { 2 } else { 4 });
        round_trips(&value)?;
    }

    /// A length written with more bytes than needed is refused (§2.1.2).
    #[test]
    fn non_minimal_lengths_are_refused(len in 0usize..16384, four_bytes: bool) {
        let header: Vec<u8> = if four_bytes || len < 64 {
            if !four_bytes {
                // A two-byte header for a length that fits in one byte.
                vec![0x40, len as u8]
            } else {
                (0x8000_0000u32 | len as u32).to_be_bytes().to_vec()
            }
        } else {
            return Ok(()); // two bytes is minimal for 64..16384
        };
        let mut input = header;
        input.extend(std::iter::repeat_n(0u8, len));
        prop_assert_eq!(
            decode_exact::<VLBytes>(&input),
            Err(CodecError::InvalidVectorLength)
        );
        prop_assert!(decode_exact::<Vec<u8>>(&input).is_err());
    }
}

#[test]
fn eight_byte_lengths_are_refused() {
    // Prefix `11` is invalid in MLS; small values are also non-minimal, large ones exceed
    // 2^30 - 1. Either way, a decoder refuses them.
    for header in [
        [0xc0, 0, 0, 0, 0, 0, 0, 1],
        [0xc0, 0, 0, 0, 0x40, 0, 0, 0],
        [0xff; 8],
    ] {
        let mut input = header.to_vec();
        input.extend_from_slice(&[0; 16]);
        assert!(decode_exact::<VLBytes>(&input).is_err());
        assert!(decode_exact::<Vec<u8>>(&input).is_err());
        assert!(tls_codec::vlen::read_length(&mut header.as_slice()).is_err());
    }
}
