//! A group's start on the service (its creator's GroupInfo and tree), its GroupInfos for
//! external joiners, its status and its log as one member reads it.

use mls_engine::group::public::credential_identity;
use mls_engine::group::PublicGroup;
use mls_engine::tree::LeafIndex;
use vmls_protocol::{
    ClientId, CreateGroup, Fetch, GroupId, GroupInfoBody, GroupMessage, GroupStatus, HandshakeView,
    Payload, PublishGroupInfo, Sequence, ServiceError,
};

use super::mls::{self, invalid, mismatch, view_error};
use super::registry::{self, acting};
use super::Failure;
use crate::store::{ClientRow, GroupRow, Lock, MemberRow, Tx};

/// The hot row of `group_id`, or [`ServiceError::UnknownGroup`].
pub(crate) async fn require_group<T: Tx>(
    tx: &mut T,
    group_id: &GroupId,
    lock: Lock,
) -> Result<GroupRow, Failure> {
    tx.group(group_id, lock).await?.ok_or_else(|| {
        ServiceError::UnknownGroup {
            group_id: group_id.clone(),
        }
        .into()
    })
}

/// Whether `identity` is a current member by the membership windows.
pub(crate) fn is_current_member(members: &[MemberRow], identity: &ClientId) -> bool {
    members
        .iter()
        .any(|m| m.is_current() && &m.member == identity)
}

/// [`ServiceError::NotAMember`] unless `identity` is a current member.
pub(crate) fn require_member(
    members: &[MemberRow],
    group_id: &GroupId,
    identity: &ClientId,
) -> Result<(), ServiceError> {
    if is_current_member(members, identity) {
        Ok(())
    } else {
        Err(ServiceError::NotAMember {
            group_id: group_id.clone(),
            member: identity.clone(),
        })
    }
}

/// `create_group`: the group starts in the epoch of its creator's GroupInfo, checked as a
/// joiner checks it (signature by the signer's leaf, tree hash, parent hashes, leaves). The
/// signer must be the creator (the sender, or the virtual client it emulates); every identity
/// in the tree is a member from position 0.
pub(crate) async fn create_group<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: CreateGroup,
    max_size: usize,
) -> Result<(), Failure> {
    let who = acting(tx, device, r.as_virtual_client.as_ref()).await?;
    if tx.group(&r.group_id, Lock::Update).await?.is_some() {
        return Err(ServiceError::GroupExists {
            group_id: r.group_id,
        }
        .into());
    }
    super::check_size(&r.group_info, max_size)?;
    let info = mls::decode_group_info(&r.group_info)?;
    let tree = match &r.ratchet_tree {
        Some(bytes) => Some(mls::decode_tree(bytes)?),
        None => None,
    };
    let view = PublicGroup::from_group_info(&mls::services(), &info, tree).map_err(view_error)?;
    if view.group_id() != r.group_id.as_bytes() {
        return Err(mismatch("group_id", "the GroupInfo is of another group").into());
    }
    let signer = view
        .member(LeafIndex(info.signer))
        .ok_or_else(|| invalid("the GroupInfo's signer is not a member"))?;
    if signer.identity != who.identity.as_bytes() {
        return Err(mismatch("creator", "the GroupInfo is signed by another member").into());
    }
    let (hot, tree) = mls::view_parts(&view)?;
    let epoch = view.epoch();
    tx.put_tree(&r.group_id, epoch, &tree).await?;
    tx.put_group(
        &r.group_id,
        &GroupRow {
            epoch,
            next_sequence: Sequence(0),
            handshakes_private: false,
            public_state: hot,
            view_epoch: epoch,
            group_info: Some((epoch, r.group_info.clone())),
        },
        true,
    )
    .await?;
    for identity in roster(&view) {
        tx.put_member(
            &r.group_id,
            &MemberRow {
                member: identity,
                from: Sequence(0),
                until: None,
            },
        )
        .await?;
    }
    Ok(())
}

/// The distinct member identities of a view, in leaf order.
pub(crate) fn roster(view: &PublicGroup) -> Vec<ClientId> {
    let mut out: Vec<ClientId> = Vec::new();
    for m in view.members() {
        let id = ClientId::new(credential_identity(m.credential));
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// `publish_group_info`: a member's GroupInfo of the current epoch, checked against the view
/// (group, epoch, tree hash, transcript hash, extensions, confirmation tag, signature by a
/// member). In a group whose handshakes are PrivateMessages only its epoch can be checked.
pub(crate) async fn publish_group_info<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: PublishGroupInfo,
    max_size: usize,
) -> Result<(), Failure> {
    let who = acting(tx, device, r.as_virtual_client.as_ref()).await?;
    let mut row = require_group(tx, &r.group_id, Lock::Update).await?;
    require_member(&tx.members(&r.group_id).await?, &r.group_id, &who.identity)?;
    super::check_size(&r.group_info, max_size)?;
    let info = mls::decode_group_info(&r.group_info)?;
    let epoch = info.group_context.epoch;
    if epoch != r.epoch {
        return Err(mismatch("epoch", format!("the GroupInfo is of epoch {epoch}")).into());
    }
    if row.handshakes_private {
        if epoch != row.epoch {
            return Err(mls::wrong_epoch(row.epoch, epoch).into());
        }
    } else {
        let view = mls::load_view(tx, &r.group_id, &row).await?;
        view.check_group_info(&mls::services(), &info)
            .map_err(view_error)?;
    }
    row.group_info = Some((epoch, r.group_info));
    tx.put_group(&r.group_id, &row, false).await?;
    Ok(())
}

/// `fetch_group_info`: the GroupInfo of the current epoch and the epoch's ratchet tree.
pub(crate) async fn fetch_group_info<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    group_id: &GroupId,
) -> Result<GroupInfoBody, Failure> {
    registry::require_device(tx, device).await?;
    let row = require_group(tx, group_id, Lock::None).await?;
    let Some((epoch, group_info)) = row.group_info.filter(|(e, _)| *e == row.epoch) else {
        return Err(ServiceError::NoGroupInfo {
            group_id: group_id.clone(),
        }
        .into());
    };
    let ratchet_tree = if row.handshakes_private {
        None
    } else {
        tx.tree(group_id, epoch).await?.map(Payload::from)
    };
    Ok(GroupInfoBody {
        epoch,
        group_info,
        ratchet_tree,
    })
}

/// `group_status`.
pub(crate) async fn group_status<T: Tx>(
    tx: &mut T,
    group_id: &GroupId,
) -> Result<GroupStatus, Failure> {
    let row = require_group(tx, group_id, Lock::None).await?;
    Ok(GroupStatus {
        epoch: row.epoch,
        next_sequence: row.next_sequence,
        handshakes: if row.handshakes_private {
            HandshakeView::HeaderOnly
        } else {
            HandshakeView::Verified
        },
    })
}

/// `fetch`: the log from `from` on, as `device` may read it: what was sent while it, or a
/// virtual client it emulates, was a member.
pub(crate) async fn fetch<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: Fetch,
    limit: u32,
) -> Result<Vec<GroupMessage>, Failure> {
    registry::require_device(tx, device).await?;
    require_group(tx, &r.group_id, Lock::None).await?;
    let mut windows: Vec<MemberRow> = Vec::new();
    for m in tx.members(&r.group_id).await? {
        let reads = &m.member == device
            || match tx.client(&m.member).await? {
                Some(ClientRow::Virtual { emulation_group }) => {
                    registry::emulators(tx, &emulation_group)
                        .await?
                        .contains(device)
                }
                _ => false,
            };
        if reads {
            windows.push(m);
        }
    }
    if windows.is_empty() {
        return Err(ServiceError::NotAMember {
            group_id: r.group_id,
            member: device.clone(),
        }
        .into());
    }
    let mut out = Vec::new();
    let mut from = r.from;
    // Entries outside the windows are skipped; read on until `limit` readable ones are found
    // or the log ends.
    while out.len() < limit as usize {
        let rows = tx.log(&r.group_id, from, limit).await?;
        let Some(last) = rows.last() else { break };
        from = last.sequence.next();
        for row in rows {
            let covering = || windows.iter().filter(|w| w.covers(row.sequence));
            let window = covering()
                .find(|w| w.member == row.sender)
                .or_else(|| covering().next());
            if let Some(w) = window {
                out.push(row.to_group_message(&r.group_id, &w.member));
                if out.len() == limit as usize {
                    break;
                }
            }
        }
    }
    Ok(out)
}
