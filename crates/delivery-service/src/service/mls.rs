//! The MLS side of the checks: decoding what a request carries and running the public view
//! (`mls_engine::group::PublicGroup`) over it, with its errors as [`ServiceError`]s.

use mls_engine::codec::{ContentType, GroupInfo, KeyPackage, MlsMessage, MlsMessageBody, Welcome};
use mls_engine::crypto::RustCrypto;
use mls_engine::group::public::Observed;
use mls_engine::group::{PublicGroup, PublicGroupError, Services};
use mls_engine::tree::RatchetTree;
use vmls_protocol::{ServiceError, Text};

use crate::store::{GroupRow, StoreError, Tx};

/// The crypto provider of every check (public operations only: hashes, signatures).
pub(crate) static CRYPTO: RustCrypto = RustCrypto;

/// The engine services of the public view: basic credentials, no PSKs.
pub(crate) fn services() -> Services<'static> {
    Services::new(&CRYPTO)
}

/// [`ServiceError::InvalidMessage`].
pub(crate) fn invalid(reason: impl std::fmt::Display) -> ServiceError {
    ServiceError::InvalidMessage {
        reason: Text::new(reason),
    }
}

/// [`ServiceError::ClaimMismatch`].
pub(crate) fn mismatch(claim: &str, reason: impl std::fmt::Display) -> ServiceError {
    ServiceError::ClaimMismatch {
        claim: Text::new(claim),
        reason: Text::new(reason),
    }
}

/// [`ServiceError::BadRequest`].
pub(crate) fn bad_request(reason: impl std::fmt::Display) -> ServiceError {
    ServiceError::BadRequest {
        reason: Text::new(reason),
    }
}

/// An epoch that is not `current`: [`ServiceError::StaleEpoch`] or
/// [`ServiceError::FutureEpoch`].
pub(crate) fn wrong_epoch(current: u64, got: u64) -> ServiceError {
    if got < current {
        ServiceError::StaleEpoch { current, got }
    } else {
        ServiceError::FutureEpoch { current, got }
    }
}

/// A refusal from the public view: another epoch is a stale/future epoch, anything else an
/// invalid message naming the RFC check.
pub(crate) fn view_error(e: PublicGroupError) -> ServiceError {
    match e {
        PublicGroupError::WrongEpoch { current, got }
        | PublicGroupError::GroupInfoWrongEpoch { current, got } => wrong_epoch(current, got),
        other => invalid(other),
    }
}

/// Decodes an MLSMessage (strictly: no trailing bytes).
pub(crate) fn decode_message(bytes: &[u8]) -> Result<MlsMessage, ServiceError> {
    MlsMessage::decode(bytes).map_err(|e| invalid(format!("not an MLSMessage: {e}")))
}

/// Decodes an MLSMessage carrying a GroupInfo.
pub(crate) fn decode_group_info(bytes: &[u8]) -> Result<GroupInfo, ServiceError> {
    match decode_message(bytes)?.body {
        MlsMessageBody::GroupInfo(info) => Ok(info),
        _ => Err(invalid("not an MLSMessage carrying a GroupInfo")),
    }
}

/// Decodes an MLSMessage carrying a Welcome.
pub(crate) fn decode_welcome(bytes: &[u8]) -> Result<Welcome, ServiceError> {
    match decode_message(bytes)?.body {
        MlsMessageBody::Welcome(welcome) => Ok(welcome),
        _ => Err(invalid("not an MLSMessage carrying a Welcome")),
    }
}

/// Decodes an MLSMessage carrying a KeyPackage, with the message's protocol version.
pub(crate) fn decode_key_package(
    bytes: &[u8],
) -> Result<(KeyPackage, mls_engine::codec::ProtocolVersion), ServiceError> {
    let message = decode_message(bytes)?;
    match message.body {
        MlsMessageBody::KeyPackage(kp) => Ok((kp, message.version)),
        _ => Err(invalid("not an MLSMessage carrying a KeyPackage")),
    }
}

/// Decodes a ratchet tree encoded as in the `ratchet_tree` extension.
pub(crate) fn decode_tree(bytes: &[u8]) -> Result<RatchetTree, ServiceError> {
    RatchetTree::decode(bytes).map_err(|e| invalid(format!("malformed ratchet tree: {e}")))
}

/// What the service learned from a group message (short-lived).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Seen {
    /// A PublicMessage handshake, verified by the public view.
    Verified(Observed),
    /// A PrivateMessage: its cleartext header only.
    Header {
        /// The claimed epoch.
        epoch: u64,
        /// The claimed content type.
        content_type: ContentType,
    },
}

/// Runs a group message through the group's view (or, for a PrivateMessage or in a group
/// without a view, reads its header). Changes nothing.
pub(crate) fn observe(
    view: Option<&PublicGroup>,
    group_id: &[u8],
    message: &MlsMessage,
    now: u64,
) -> Result<Seen, ServiceError> {
    match &message.body {
        MlsMessageBody::PrivateMessage(m) => {
            if m.group_id.as_slice() != group_id {
                return Err(invalid("the message is for another group"));
            }
            Ok(Seen::Header {
                epoch: m.epoch,
                content_type: m.content_type,
            })
        }
        MlsMessageBody::PublicMessage(m) => match view {
            Some(view) => view
                .process(&services(), message, now)
                .map(Seen::Verified)
                .map_err(view_error),
            // A header-only group: a PublicMessage is read like a PrivateMessage's header (its
            // signature cannot be checked against a tree the service no longer follows).
            None => {
                if m.content.group_id.as_slice() != group_id {
                    return Err(invalid("the message is for another group"));
                }
                Ok(Seen::Header {
                    epoch: m.content.epoch,
                    content_type: m.content.body.content_type(),
                })
            }
        },
        _ => Err(invalid(
            "a group message must be a PublicMessage or PrivateMessage",
        )),
    }
}

/// Loads the public view of a group from its hot row and the tree of the view's epoch.
pub(crate) async fn load_view<T: Tx>(
    tx: &mut T,
    group_id: &vmls_protocol::GroupId,
    row: &GroupRow,
) -> Result<PublicGroup, StoreError> {
    let tree = tx
        .tree(group_id, row.view_epoch)
        .await?
        .ok_or(StoreError::Corrupt {
            what: "ratchet tree",
        })?;
    PublicGroup::from_parts(&row.public_state, &tree).map_err(|_| StoreError::Corrupt {
        what: "public group state",
    })
}

/// The view's state as stored: (hot part, ratchet tree).
pub(crate) fn view_parts(view: &PublicGroup) -> Result<(Vec<u8>, Vec<u8>), ServiceError> {
    let hot = view.hot_state_to_bytes().map_err(invalid)?;
    let tree = view.export_ratchet_tree().map_err(invalid)?;
    Ok((hot, tree))
}
