//! `send`: one message for a group's log. What the message is, its epoch, its sender, whom a
//! Commit adds and removes come from the group's public view, never from the request; the
//! request's statements are only checked against them (issue 14 "What the service checks
//! itself"). Then the ordering rules (DESIGN §5 row 14): the first Commit of an epoch wins; a
//! virtual client's message needs the sender at the head of its emulation group and at the
//! virtual client's next sequence. An accepted message goes to every current member's
//! mailboxes (a virtual client's: all its emulator clients, the sender's echo included).

use std::collections::BTreeSet;

use mls_engine::codec::ContentType;
use mls_engine::group::public::{Observed, ObservedSender};
use mls_engine::group::{PublicGroup, PublicGroupError};
use vmls_protocol::{
    Accepted, ClientId, EmulatorView, GroupId, GroupSend, MessageKind, Payload, Response,
    SendRequest, Sequence, ServiceError, VcSequence,
};

use super::groups::{is_current_member, require_group, require_member, roster};
use super::mls::{self, bad_request, mismatch, view_error, Seen};
use super::registry::{self, Acting};
use super::{Failure, Limits};
use crate::store::{GroupRow, Lock, LogRow, MailboxRef, MemberRow, Tx};

/// An accepted send: the answer, the devices whose mailboxes got items, the fan-out size.
pub(crate) struct Sent {
    pub response: Response,
    pub woken: Vec<ClientId>,
    pub fan_out: usize,
}

/// What accepting the message changes besides appending it.
enum Effect {
    /// An application message, or a proposal the view does not keep (PrivateMessage).
    Plain,
    /// A PublicMessage proposal, kept for Commits by reference.
    Proposal(PublicGroup),
    /// A Commit.
    Commit(CommitEffect),
}

/// What a Commit changes.
struct CommitEffect {
    /// The view of the new epoch (`None` when the group's handshakes are PrivateMessages).
    view: Option<PublicGroup>,
    /// Identities that are no longer members (they still receive this Commit).
    removed: Vec<ClientId>,
    /// Identities welcomed (members from the next position).
    welcomed: Vec<ClientId>,
    /// The joiner of an external Commit (a member from this position).
    joiner: Option<ClientId>,
}

/// `send` (see the module documentation).
pub(crate) async fn send<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: GroupSend,
    limits: &Limits,
    now: u64,
) -> Result<Sent, Failure> {
    let GroupSend { group_id, send } = r;
    check_sizes(&send, limits.max_message_size)?;
    let mut row = require_group(tx, &group_id, Lock::Update).await?;
    registry::require_device(tx, device).await?;
    if let Some(first) = tx.sent(device, &send.message_id).await? {
        // Idempotent resend: the first answer, nothing changed.
        let response =
            vmls_protocol::decode(&first).map_err(|_| crate::store::StoreError::Corrupt {
                what: "stored answer",
            })?;
        return Ok(Sent {
            response,
            woken: Vec::new(),
            fan_out: 0,
        });
    }
    let vc = send.virtual_client.as_ref();
    let who = registry::acting(tx, device, vc.map(|v| &v.virtual_client)).await?;
    let members = tx.members(&group_id).await?;
    let message = mls::decode_message(&send.message)?;
    let is_public = matches!(
        message.body,
        mls_engine::codec::MlsMessageBody::PublicMessage(_)
    );
    let view = match (is_public, row.handshakes_private) {
        (true, false) => Some(mls::load_view(tx, &group_id, &row).await?),
        _ => None,
    };
    let seen = mls::observe(view.as_ref(), group_id.as_bytes(), &message, now)?;
    check_kind(&seen, &send, &row)?;
    check_sender(&seen, &send, &who, &members, &group_id)?;
    let vc_sequence = match vc {
        Some(v) => Some(check_virtual_client(tx, &group_id, &who, v).await?),
        None => None,
    };
    let effect = match seen {
        Seen::Verified(Observed::Commit(staged)) => {
            let view = view.ok_or_else(|| mls::invalid("no view"))?;
            Effect::Commit(verified_commit(view, *staged, &send, &members)?)
        }
        Seen::Verified(Observed::Proposal(p)) => {
            let mut view = view.ok_or_else(|| mls::invalid("no view"))?;
            view.store_proposal(p).map_err(view_error)?;
            Effect::Proposal(view)
        }
        Seen::Verified(Observed::Unverified(_)) => Effect::Plain,
        Seen::Header {
            content_type: ContentType::Commit,
            ..
        } => Effect::Commit(private_commit(&send, &members, &group_id)?),
        Seen::Header { .. } => Effect::Plain,
    };
    if let Effect::Commit(c) = &effect {
        check_welcome_recipients(tx, c, &send).await?;
    }
    accept(
        tx,
        AcceptInput {
            device,
            group_id: &group_id,
            row: &mut row,
            members: &members,
            who: &who,
            send,
            vc_sequence,
            effect,
            limits,
        },
    )
    .await
}

/// Every carried MLS message within the size limit.
fn check_sizes(send: &SendRequest, max: usize) -> Result<(), ServiceError> {
    super::check_size(&send.message, max)?;
    if let Some(w) = &send.welcome {
        super::check_size(&w.message, max)?;
    }
    if let Some(g) = &send.group_info {
        super::check_size(g, max)?;
    }
    Ok(())
}

/// The stated kind and epoch against what the message is; a Commit must be for the group's
/// current epoch (the first one wins); a PrivateMessage may not be from a future epoch.
fn check_kind(seen: &Seen, send: &SendRequest, row: &GroupRow) -> Result<(), ServiceError> {
    let actual = match seen {
        Seen::Verified(Observed::Commit(c)) if c.is_external() => MessageKind::ExternalCommit {
            epoch: c.base_epoch(),
        },
        Seen::Verified(Observed::Commit(c)) => MessageKind::Commit {
            epoch: c.base_epoch(),
        },
        Seen::Verified(Observed::Proposal(_)) => MessageKind::Proposal,
        Seen::Verified(Observed::Unverified(_)) => {
            return Err(mls::invalid("an unverified PublicMessage"))
        }
        Seen::Header {
            epoch,
            content_type,
        } => {
            let epoch = *epoch;
            match content_type {
                ContentType::Commit if epoch != row.epoch => {
                    return Err(mls::wrong_epoch(row.epoch, epoch))
                }
                _ if epoch > row.epoch => return Err(mls::wrong_epoch(row.epoch, epoch)),
                ContentType::Commit => MessageKind::Commit { epoch },
                ContentType::Proposal => MessageKind::Proposal,
                ContentType::Application => MessageKind::Application,
            }
        }
    };
    if actual == send.kind {
        return Ok(());
    }
    match (actual.commit_epoch(), send.kind.commit_epoch()) {
        (Some(a), Some(s)) if a != s && same_variant(actual, send.kind) => Err(mismatch(
            "epoch",
            format!("the Commit is for epoch {a}, the request states {s}"),
        )),
        _ => Err(mismatch(
            "kind",
            format!(
                "the message is {actual:?}, the request states {:?}",
                send.kind
            ),
        )),
    }
}

fn same_variant(a: MessageKind, b: MessageKind) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

/// The authenticated MLS sender must be the identity the device acts as, and (but for a new
/// member) a current member; for a PrivateMessage, whose sender is encrypted, the acting
/// identity must be a current member. Only a Commit carries a Welcome, removals or a GroupInfo.
fn check_sender(
    seen: &Seen,
    send: &SendRequest,
    who: &Acting,
    members: &[MemberRow],
    group_id: &GroupId,
) -> Result<(), ServiceError> {
    if send.kind.commit_epoch().is_none()
        && (send.welcome.is_some() || !send.removed.is_empty() || send.group_info.is_some())
    {
        return Err(ServiceError::NotACommit {});
    }
    let sender = match seen {
        Seen::Verified(o) => o.sender(),
        Seen::Header { .. } => None,
    };
    let new_member = match sender {
        Some(s) => {
            if s.identity() != who.identity.as_bytes() {
                return Err(mismatch(
                    "sender",
                    format!(
                        "the message is signed by {}, the request acts as {}",
                        ClientId::new(s.identity()),
                        who.identity
                    ),
                ));
            }
            !matches!(s, ObservedSender::Member { .. })
        }
        None => false,
    };
    if new_member {
        Ok(())
    } else {
        require_member(members, group_id, &who.identity)
    }
}

/// A virtual client's message: the sender at the head of the emulation group's log, and at
/// the virtual client's next sequence in this group. Returns the sequence it gets.
async fn check_virtual_client<T: Tx>(
    tx: &mut T,
    group_id: &GroupId,
    who: &Acting,
    v: &vmls_protocol::VirtualClientSend,
) -> Result<VcSequence, Failure> {
    let emulation_group = who
        .emulation_group
        .as_ref()
        .ok_or_else(|| bad_request("not sent as a virtual client"))?;
    let head = require_group(tx, emulation_group, Lock::Share)
        .await?
        .next_sequence;
    match v.emulation_head {
        Some(got) if got == head => {}
        Some(got) => {
            return Err(ServiceError::EmulationGroupBehind {
                emulation_group: emulation_group.clone(),
                head,
                got,
            }
            .into())
        }
        None => {
            return Err(bad_request(
                "a virtual client's message must state the emulation group's head",
            )
            .into())
        }
    }
    let next = tx.vc_next(group_id, &v.virtual_client).await?;
    if v.expected != next {
        return Err(ServiceError::VirtualClientSequenceMismatch {
            expected: next,
            got: v.expected,
        }
        .into());
    }
    Ok(next)
}

/// A verified Commit: the new epoch's view, its GroupInfo checked against it, the members it
/// removes and adds (from the trees, not the request), the request's Welcome and removals
/// checked against them.
fn verified_commit(
    mut view: PublicGroup,
    staged: mls_engine::group::StagedPublicCommit,
    send: &SendRequest,
    members: &[MemberRow],
) -> Result<CommitEffect, ServiceError> {
    let added_identities: BTreeSet<ClientId> = staged
        .added()
        .iter()
        .map(|a| ClientId::new(&a.identity))
        .collect();
    let joiner = staged.external_join().map(|j| ClientId::new(&j.identity));
    match (&send.welcome, staged.added().is_empty()) {
        (None, false) => {
            return Err(bad_request(
                "a Commit that adds members must carry their Welcome",
            ))
        }
        (Some(_), true) => {
            return Err(mismatch("welcome", "the Commit adds nobody"));
        }
        (Some(w), false) => {
            let welcome = mls::decode_welcome(&w.message)?;
            staged.check_welcome(&welcome).map_err(|e| match e {
                PublicGroupError::WelcomeMismatch => mismatch(
                    "welcome",
                    "the Welcome's new members are not the KeyPackages the Commit adds",
                ),
                other => view_error(other),
            })?;
            let claimed: BTreeSet<ClientId> = w.recipients.iter().cloned().collect();
            if claimed != added_identities || claimed.len() != w.recipients.len() {
                return Err(mismatch(
                    "welcome recipients",
                    "the recipients are not the identities the Commit adds",
                ));
            }
        }
        (None, true) => {}
    }
    let group_info = send
        .group_info
        .as_ref()
        .ok_or_else(|| bad_request("a Commit must carry the GroupInfo of the epoch it creates"))?;
    let info = mls::decode_group_info(group_info)?;
    view.merge(staged).map_err(view_error)?;
    view.check_group_info(&mls::services(), &info)
        .map_err(|e| mls::invalid(format!("the Commit's GroupInfo: {e}")))?;
    let new_roster: BTreeSet<ClientId> = roster(&view).into_iter().collect();
    let removed: Vec<ClientId> = members
        .iter()
        .filter(|m| m.is_current() && !new_roster.contains(&m.member))
        .map(|m| m.member.clone())
        .collect();
    if let Some(extra) = send.removed.iter().find(|c| !removed.contains(c)) {
        return Err(mismatch(
            "removed",
            format!("the Commit does not remove {extra}"),
        ));
    }
    let welcomed = added_identities
        .into_iter()
        .filter(|id| !is_current_member(members, id) && Some(id) != joiner.as_ref())
        .collect();
    let joiner = joiner.filter(|id| !is_current_member(members, id));
    Ok(CommitEffect {
        view: Some(view),
        removed,
        welcomed,
        joiner,
    })
}

/// A Commit sent as a PrivateMessage: only its header is known, so its removals and Welcome
/// recipients are taken as stated (removed ones must be members).
fn private_commit(
    send: &SendRequest,
    members: &[MemberRow],
    group_id: &GroupId,
) -> Result<CommitEffect, ServiceError> {
    for removed in &send.removed {
        require_member(members, group_id, removed)?;
    }
    let welcomed = send
        .welcome
        .iter()
        .flat_map(|w| w.recipients.iter())
        .filter(|id| !is_current_member(members, id))
        .cloned()
        .collect();
    Ok(CommitEffect {
        view: None,
        removed: send.removed.clone(),
        welcomed,
        joiner: None,
    })
}

/// Welcome recipients must be registered.
async fn check_welcome_recipients<T: Tx>(
    tx: &mut T,
    effect: &CommitEffect,
    send: &SendRequest,
) -> Result<(), Failure> {
    let recipients = send.welcome.iter().flat_map(|w| w.recipients.iter());
    for id in recipients.chain(&effect.welcomed) {
        if tx.client(id).await?.is_none() {
            return Err(ServiceError::UnknownClient { client: id.clone() }.into());
        }
    }
    Ok(())
}

/// Everything [`accept`] needs.
struct AcceptInput<'a> {
    device: &'a ClientId,
    group_id: &'a GroupId,
    row: &'a mut GroupRow,
    members: &'a [MemberRow],
    who: &'a Acting,
    send: SendRequest,
    vc_sequence: Option<VcSequence>,
    effect: Effect,
    limits: &'a Limits,
}

/// Appends the checked message, updates the group, fans out. The backlog quota is checked
/// before anything is written.
async fn accept<T: Tx>(tx: &mut T, a: AcceptInput<'_>) -> Result<Sent, Failure> {
    let sequence = a.row.next_sequence;
    let SendRequest {
        message_id,
        message,
        kind,
        welcome,
        group_info,
        ..
    } = a.send;
    // Recipients: every current member (removed ones get this Commit), and a joiner.
    let mut recipients: Vec<ClientId> = a
        .members
        .iter()
        .filter(|m| m.is_current())
        .map(|m| m.member.clone())
        .collect();
    let commit = match &a.effect {
        Effect::Commit(c) => Some(c),
        _ => None,
    };
    if let Some(joiner) = commit.and_then(|c| c.joiner.clone()) {
        recipients.push(joiner);
    }
    let mut deliveries: Vec<(ClientId, MailboxRef)> = Vec::new();
    for identity in &recipients {
        for device in registry::mailboxes_of(tx, identity).await? {
            deliveries.push((
                device,
                MailboxRef {
                    group_id: a.group_id.clone(),
                    sequence,
                    recipient: identity.clone(),
                    welcome: false,
                },
            ));
        }
    }
    let welcome = welcome.filter(|_| commit.is_some_and(|c| !c.welcomed.is_empty()));
    if let (Some(c), Some(_)) = (commit, &welcome) {
        for identity in &c.welcomed {
            for device in registry::mailboxes_of(tx, identity).await? {
                deliveries.push((
                    device,
                    MailboxRef {
                        group_id: a.group_id.clone(),
                        sequence,
                        recipient: identity.clone(),
                        welcome: true,
                    },
                ));
            }
        }
    }
    check_backlog(tx, &deliveries, a.limits.max_mailbox_backlog).await?;

    // Everything is checked: write.
    let built_from = match kind {
        MessageKind::ExternalCommit { epoch } => a
            .row
            .group_info
            .as_ref()
            .filter(|(e, _)| *e == epoch)
            .map(|(_, g)| g.clone()),
        _ => None,
    };
    let emulator_view = a.vc_sequence.map(|vc_sequence| EmulatorView {
        emulator: a.device.clone(),
        vc_sequence,
        group_info: built_from,
    });
    tx.append_log(
        a.group_id,
        &LogRow {
            sequence,
            sender: a.who.identity.clone(),
            kind,
            emulator_view,
            message,
        },
    )
    .await?;
    if let Some(next) = a.vc_sequence {
        tx.set_vc_next(a.group_id, &a.who.identity, next.next())
            .await?;
    }
    a.row.next_sequence = sequence.next();
    match a.effect {
        Effect::Plain => {}
        Effect::Proposal(view) => {
            a.row.public_state = mls::view_parts(&view)?.0;
        }
        Effect::Commit(c) => {
            write_commit(tx, a.group_id, a.row, c, group_info, sequence).await?;
        }
    }
    tx.put_group(a.group_id, a.row, false).await?;
    if let Some(w) = &welcome {
        tx.put_welcome(a.group_id, sequence, &w.message).await?;
    }
    let mut woken: Vec<ClientId> = Vec::new();
    // Devices in one order in every transaction (no lock-order deadlocks in PostgreSQL).
    deliveries.sort_by(|x, y| x.0.cmp(&y.0));
    for (device, item) in &deliveries {
        tx.push_mailbox(device, item).await?;
        if woken.last() != Some(device) {
            woken.push(device.clone());
        }
    }
    let response = Response::Accepted(Accepted {
        sequence,
        vc_sequence: a.vc_sequence,
    });
    let encoded = vmls_protocol::encode(&response).map_err(mls::invalid)?;
    tx.record_sent(a.device, &message_id, &encoded).await?;
    Ok(Sent {
        response,
        woken,
        fan_out: deliveries.len(),
    })
}

/// A Commit's changes to the group row, tree and membership.
async fn write_commit<T: Tx>(
    tx: &mut T,
    group_id: &GroupId,
    row: &mut GroupRow,
    c: CommitEffect,
    group_info: Option<Payload>,
    sequence: Sequence,
) -> Result<(), Failure> {
    row.epoch = row.epoch.saturating_add(1);
    match &c.view {
        Some(view) => {
            let (hot, tree) = mls::view_parts(view)?;
            tx.put_tree(group_id, view.epoch(), &tree).await?;
            row.public_state = hot;
            row.view_epoch = view.epoch();
        }
        None => row.handshakes_private = true,
    }
    if let Some(info) = group_info {
        row.group_info = Some((row.epoch, info));
    }
    let existing = tx.members(group_id).await?;
    for member in &c.removed {
        let from = existing
            .iter()
            .find(|m| &m.member == member)
            .map_or(Sequence(0), |m| m.from);
        tx.put_member(
            group_id,
            &MemberRow {
                member: member.clone(),
                from,
                until: Some(sequence),
            },
        )
        .await?;
    }
    for (member, from) in c
        .welcomed
        .iter()
        .map(|m| (m, sequence.next()))
        .chain(c.joiner.iter().map(|j| (j, sequence)))
    {
        tx.put_member(
            group_id,
            &MemberRow {
                member: member.clone(),
                from,
                until: None,
            },
        )
        .await?;
    }
    Ok(())
}

/// [`ServiceError::QuotaExceeded`] if a mailbox would hold more than `max` items.
async fn check_backlog<T: Tx>(
    tx: &mut T,
    deliveries: &[(ClientId, MailboxRef)],
    max: u64,
) -> Result<(), Failure> {
    let mut counts: std::collections::BTreeMap<&ClientId, u64> = Default::default();
    for (device, _) in deliveries {
        *counts.entry(device).or_default() += 1;
    }
    for (device, n) in counts {
        if tx.mailbox_len(device).await?.saturating_add(n) > max {
            return Err(ServiceError::QuotaExceeded {
                quota: vmls_protocol::Text::new("mailbox_backlog"),
                limit: max,
            }
            .into());
        }
    }
    Ok(())
}
