//! `messages.json`: every field decodes with its structure and re-encodes to the same bytes.
//!
//! Beyond the vector's own checks: the MLSMessage fields must carry the wire format (and, for
//! PublicMessages, the content type) the field name promises, and every extension of an RFC
//! 9420 type found in a GroupInfo, GroupContext, KeyPackage or LeafNode is also decoded with
//! its typed payload and re-encoded.

use mls_engine::codec::{
    decode_exact, encode, Add, ApplicationIdExtension, Commit, ContentType, DeserializeBytes,
    Extension, ExtensionPayload, ExtensionType, ExternalInit, ExternalPubExtension,
    ExternalSendersExtension, GroupContextExtensions, GroupSecrets, KeyPackage, LeafNode,
    MlsMessage, MlsMessageBody, Node, PreSharedKey, RatchetTreeExtension, ReInit, Remove,
    RequiredCapabilitiesExtension, Serialize, Update, WireFormat,
};

use crate::common::{check_eq, hex_bytes, parse, CaseResult, Outcome};

#[derive(serde::Deserialize)]
struct Case {
    #[serde(with = "hex_bytes")]
    mls_welcome: Vec<u8>,
    #[serde(with = "hex_bytes")]
    mls_group_info: Vec<u8>,
    #[serde(with = "hex_bytes")]
    mls_key_package: Vec<u8>,
    #[serde(with = "hex_bytes")]
    ratchet_tree: Vec<u8>,
    #[serde(with = "hex_bytes")]
    group_secrets: Vec<u8>,
    #[serde(with = "hex_bytes")]
    add_proposal: Vec<u8>,
    #[serde(with = "hex_bytes")]
    update_proposal: Vec<u8>,
    #[serde(with = "hex_bytes")]
    remove_proposal: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pre_shared_key_proposal: Vec<u8>,
    #[serde(with = "hex_bytes")]
    re_init_proposal: Vec<u8>,
    #[serde(with = "hex_bytes")]
    external_init_proposal: Vec<u8>,
    #[serde(with = "hex_bytes")]
    group_context_extensions_proposal: Vec<u8>,
    #[serde(with = "hex_bytes")]
    commit: Vec<u8>,
    #[serde(with = "hex_bytes")]
    public_message_application: Vec<u8>,
    #[serde(with = "hex_bytes")]
    public_message_proposal: Vec<u8>,
    #[serde(with = "hex_bytes")]
    public_message_commit: Vec<u8>,
    #[serde(with = "hex_bytes")]
    private_message: Vec<u8>,
}

/// Decodes `bytes` as a `T` spanning all of it and checks that it re-encodes to `bytes`.
fn round_trip<T: DeserializeBytes + Serialize>(field: &str, bytes: &[u8]) -> Result<T, String> {
    let value: T = decode_exact(bytes).map_err(|e| format!("{field}: does not decode: {e}"))?;
    let again = encode(&value).map_err(|e| format!("{field}: does not re-encode: {e}"))?;
    if again != bytes {
        return Err(format!(
            "{field}: re-encodes to other bytes\n got      {}\n expected {}",
            hex::encode(&again),
            hex::encode(bytes)
        ));
    }
    Ok(value)
}

/// Decodes an MLSMessage field and checks its wire format.
fn message(field: &str, bytes: &[u8], wire_format: WireFormat) -> Result<MlsMessage, String> {
    let message: MlsMessage = round_trip(field, bytes)?;
    check_eq(
        &format!("{field}: wire format"),
        message.wire_format(),
        wire_format,
    )?;
    Ok(message)
}

/// Decodes the payload of every RFC 9420 extension in `extensions` and re-encodes it.
fn typed_extensions(field: &str, extensions: &[Extension]) -> CaseResult {
    for extension in extensions {
        let data = extension.extension_data.as_slice();
        let name = format!("{field}: extension {:?}", extension.extension_type);
        match extension.extension_type {
            ExtensionType::APPLICATION_ID => {
                round_trip::<ApplicationIdExtension>(&name, data)?;
            }
            ExtensionType::RATCHET_TREE => {
                let tree = round_trip::<RatchetTreeExtension>(&name, data)?;
                check_eq(
                    &format!("{name}: payload"),
                    RatchetTreeExtension::from_extension(extension).ok(),
                    Some(tree),
                )?;
            }
            ExtensionType::REQUIRED_CAPABILITIES => {
                round_trip::<RequiredCapabilitiesExtension>(&name, data)?;
            }
            ExtensionType::EXTERNAL_PUB => {
                round_trip::<ExternalPubExtension>(&name, data)?;
            }
            ExtensionType::EXTERNAL_SENDERS => {
                round_trip::<ExternalSendersExtension>(&name, data)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn leaf_extensions(field: &str, leaf: &LeafNode) -> CaseResult {
    typed_extensions(&format!("{field}: leaf"), &leaf.extensions)
}

fn key_package_extensions(field: &str, key_package: &KeyPackage) -> CaseResult {
    typed_extensions(&format!("{field}: key package"), &key_package.extensions)?;
    leaf_extensions(field, &key_package.leaf_node)
}

fn public_message(field: &str, bytes: &[u8], content_type: ContentType) -> CaseResult {
    let message = message(field, bytes, WireFormat::MLS_PUBLIC_MESSAGE)?;
    let MlsMessageBody::PublicMessage(public) = &message.body else {
        return Err(format!("{field}: not a PublicMessage"));
    };
    check_eq(
        &format!("{field}: content type"),
        public.content.content_type(),
        content_type,
    )
}

fn run_case(case: &Case) -> CaseResult {
    let welcome = message("mls_welcome", &case.mls_welcome, WireFormat::MLS_WELCOME)?;
    if !matches!(welcome.body, MlsMessageBody::Welcome(_)) {
        return Err("mls_welcome: not a Welcome".into());
    }

    let group_info = message(
        "mls_group_info",
        &case.mls_group_info,
        WireFormat::MLS_GROUP_INFO,
    )?;
    let MlsMessageBody::GroupInfo(group_info) = &group_info.body else {
        return Err("mls_group_info: not a GroupInfo".into());
    };
    typed_extensions("mls_group_info", &group_info.extensions)?;
    typed_extensions(
        "mls_group_info: group context",
        &group_info.group_context.extensions,
    )?;

    let key_package = message(
        "mls_key_package",
        &case.mls_key_package,
        WireFormat::MLS_KEY_PACKAGE,
    )?;
    let MlsMessageBody::KeyPackage(key_package) = &key_package.body else {
        return Err("mls_key_package: not a KeyPackage".into());
    };
    key_package_extensions("mls_key_package", key_package)?;

    // `optional<Node> ratchet_tree<V>`, both as the bare vector and as the extension body.
    let nodes = round_trip::<Vec<Option<Node>>>("ratchet_tree", &case.ratchet_tree)?;
    let tree = round_trip::<RatchetTreeExtension>("ratchet_tree", &case.ratchet_tree)?;
    check_eq("ratchet_tree: nodes", tree.ratchet_tree == nodes, true)?;
    for node in nodes.iter().flatten() {
        if let Node::Leaf(leaf) = node {
            leaf_extensions("ratchet_tree", leaf)?;
        }
    }

    round_trip::<GroupSecrets>("group_secrets", &case.group_secrets)?;

    let add = round_trip::<Add>("add_proposal", &case.add_proposal)?;
    key_package_extensions("add_proposal", &add.key_package)?;
    let update = round_trip::<Update>("update_proposal", &case.update_proposal)?;
    leaf_extensions("update_proposal", &update.leaf_node)?;
    round_trip::<Remove>("remove_proposal", &case.remove_proposal)?;
    round_trip::<PreSharedKey>("pre_shared_key_proposal", &case.pre_shared_key_proposal)?;
    let reinit = round_trip::<ReInit>("re_init_proposal", &case.re_init_proposal)?;
    typed_extensions("re_init_proposal", &reinit.extensions)?;
    round_trip::<ExternalInit>("external_init_proposal", &case.external_init_proposal)?;
    let gce = round_trip::<GroupContextExtensions>(
        "group_context_extensions_proposal",
        &case.group_context_extensions_proposal,
    )?;
    typed_extensions("group_context_extensions_proposal", &gce.extensions)?;

    round_trip::<Commit>("commit", &case.commit)?;

    public_message(
        "public_message_application",
        &case.public_message_application,
        ContentType::Application,
    )?;
    public_message(
        "public_message_proposal",
        &case.public_message_proposal,
        ContentType::Proposal,
    )?;
    public_message(
        "public_message_commit",
        &case.public_message_commit,
        ContentType::Commit,
    )?;

    let private = message(
        "private_message",
        &case.private_message,
        WireFormat::MLS_PRIVATE_MESSAGE,
    )?;
    if !matches!(private.body, MlsMessageBody::PrivateMessage(_)) {
        return Err("private_message: not a PrivateMessage".into());
    }
    Ok(())
}

/// Runs one case of `messages.json`.
pub fn run(case: &serde_json::Value) -> Outcome {
    match parse::<Case>(case) {
        Ok(case) => run_case(&case).into(),
        Err(why) => Outcome::Failed(why),
    }
}
