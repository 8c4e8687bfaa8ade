//! Carrying out the operation in progress: planning each attempt, the requests it makes, and
//! what their answers do (confirm, next phase, catch up and retry, or fail).

use mls_engine::codec::{MlsMessageBody, Proposal};
use mls_engine::group::CommitOptions;
use vmls_protocol::{
    Accepted, ClientId, ConsumeKeyPackage, CreateGroup, GroupId, KeyPackageEntry, MessageId,
    PublishKeyPackages, RegisterDevice, RegisterVirtualClient, Request, Response,
    RetireKeyPackages, SendRequest, Sequence, ServiceError, VcSequence,
};

use super::api::{Event, Intent, IntentFailure, MembershipChange};
use super::member::{
    decode_group_info, decode_key_package, encode_body, identity_of, roster, signature_scheme,
};
use super::operation_types::{LearnedSequence, Operation, Setup, Stage, Step, Task};
use super::{Device, Purpose, RuntimeError};

/// What an attempt does next.
#[allow(clippy::large_enum_variant)] // Short-lived, one at a time.
enum Next {
    /// Send this request for this step.
    Send(Request, Step),
    /// Read what the service holds first.
    CatchUp,
    /// Nothing more to do: done.
    Finish,
}

fn op_failed(e: RuntimeError) -> IntentFailure {
    IntentFailure::Operation(e.to_string())
}

/// The differences between two rosters.
pub(super) fn change_of(
    before: &[(u32, ClientId, Vec<u8>)],
    after: &[(u32, ClientId, Vec<u8>)],
) -> MembershipChange {
    let mut change = MembershipChange::default();
    for (index, id, key) in after {
        match before.iter().find(|(i, _, _)| i == index) {
            Some((_, old, _)) if old != id => {
                change.added.push(id.clone());
                change.removed.push(old.clone());
            }
            Some((_, _, old_key)) if old_key != key => change.updated.push(id.clone()),
            Some(_) => {}
            None => change.added.push(id.clone()),
        }
    }
    for (index, id, _) in before {
        if !after.iter().any(|(i, _, _)| i == index) {
            change.removed.push(id.clone());
        }
    }
    change
}

/// The group a step's request is sent to, if it is a send.
pub(super) fn step_group<'a>(
    step: &'a Step,
    emulation: Option<&'a GroupId>,
) -> Option<&'a GroupId> {
    match step {
        Step::Commit(g) | Step::Application(g) | Step::Proposal(g) | Step::ExternalCommit(g) => {
            Some(g)
        }
        Step::Transfer | Step::EmulationCommit => emulation,
        _ => None,
    }
}

/// The message id of a send request.
pub(super) fn message_id_of(request: &Request) -> Option<MessageId> {
    match request {
        Request::Send(s) => Some(s.send.message_id),
        _ => None,
    }
}

impl Device {
    /// Advances the operation in progress as far as it can go without an answer.
    pub(super) fn drive(&mut self, now: u64) {
        loop {
            if self.operation.is_none() {
                let Some((id, intent)) = self.intents.pop_front() else {
                    return;
                };
                self.operation = Some(Operation::new(Task::Intent(id, intent)));
            }
            let Some(stage) = self.operation.as_ref().map(|o| o.stage.clone()) else {
                return;
            };
            match stage {
                Stage::Start => self.start(now),
                Stage::CatchUp => {
                    if self.catching_up() {
                        return;
                    }
                    self.caught_up();
                }
                Stage::Verify {
                    request,
                    step,
                    lost,
                } => {
                    if self.catching_up() {
                        return;
                    }
                    self.verified(request, step, lost);
                }
                Stage::Sent { .. } | Stage::AwaitEcho { .. } => return,
            }
        }
    }

    fn set_stage(&mut self, stage: Stage) {
        if let Some(op) = self.operation.as_mut() {
            op.stage = stage;
        }
    }

    /// Starts reading what the service holds; a new attempt follows.
    fn enter_catch_up(&mut self) {
        self.set_stage(Stage::CatchUp);
        if let Some(op) = self.operation.as_mut() {
            op.caught_up = 1;
        }
        self.read_mailbox();
    }

    /// The mailbox was read after a refusal (or before a first attempt).
    fn caught_up(&mut self) {
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        if let Some(learned) = op.learned.take() {
            let next = self.vc_next.entry(learned.group_id).or_default();
            *next = (*next).max(learned.next);
        }
        // Behind the emulation group's head with nothing more in the mailbox: fetch it.
        if let (Some(head), Some(emulation)) = (
            op.emulation_head.take(),
            self.member.emulation_group().cloned(),
        ) {
            let from = self.next.get(&emulation).copied().unwrap_or_default();
            if from < head {
                self.fetch(emulation, from);
                return;
            }
        }
        self.set_stage(Stage::Start);
    }

    /// A restarted request: its echo came (then it was handled already) or not.
    fn verified(&mut self, request: Request, step: Step, lost: u8) {
        if lost != 0 {
            self.set_stage(Stage::Start);
        } else {
            self.send_step(request, step);
        }
    }

    fn send_step(&mut self, request: Request, step: Step) {
        self.set_stage(Stage::Sent {
            request: request.clone(),
            step,
        });
        self.transmit(request, Purpose::Step);
    }

    /// Ends the operation.
    fn finish(&mut self, failure: Option<IntentFailure>) {
        let Some(op) = self.operation.take() else {
            return;
        };
        match (&op.task, failure) {
            (Task::Intent(id, _), None) => self.emit(Event::IntentDone { intent: *id }),
            (Task::Intent(id, _), Some(reason)) => self.emit(Event::IntentFailed {
                intent: *id,
                reason,
            }),
            (Task::Setup(Setup::JoiningEmulator), None) => {}
            (Task::Setup(_), None) => self.emit(Event::Ready),
            (Task::Setup(_), Some(reason)) => self.emit(Event::Fatal {
                reason: format!("setup failed: {reason}"),
            }),
        }
    }

    /// Plans the next request of the operation.
    fn start(&mut self, now: u64) {
        let Some(op) = self.operation.clone() else {
            return;
        };
        let next = match &op.task {
            Task::Setup(setup) => self.plan_setup(*setup, op.phase),
            Task::Intent(_, intent) => {
                // Every attempt acts on what the service holds, and never while emulation-group
                // messages are known unprocessed (the emulation-first rule).
                let behind = intent.group_id().is_some() && self.knows_unprocessed_emulation();
                if op.caught_up == 0 || behind {
                    Ok(Next::CatchUp)
                } else {
                    self.plan_intent(intent, &op, now)
                }
            }
        };
        match next {
            Ok(Next::Send(request, step)) => self.send_step(request, step),
            Ok(Next::CatchUp) => self.enter_catch_up(),
            Ok(Next::Finish) => self.finish(None),
            Err(failure) => self.finish(Some(failure)),
        }
    }

    /// The emulation-first rule: known emulation-group messages not processed yet.
    fn knows_unprocessed_emulation(&self) -> bool {
        let Some(emulation) = self.member.emulation_group() else {
            return false;
        };
        self.held.get(emulation).is_some_and(|h| !h.is_empty()) || self.fetching.contains(emulation)
    }

    fn plan_setup(&mut self, setup: Setup, phase: u8) -> Result<Next, IntentFailure> {
        match (setup, phase) {
            (_, 0) => {
                let (scheme, key) = self.signature_public().map_err(op_failed)?;
                Ok(Next::Send(
                    Request::RegisterDevice(RegisterDevice {
                        device: self.id.clone(),
                        signature_scheme: scheme,
                        signature_key: key.into(),
                    }),
                    Step::Register,
                ))
            }
            (Setup::VirtualClient, 1) => {
                let services = self.services();
                let client = self.member.emulator_mut().map_err(op_failed)?;
                let info = client
                    .emulation_group()
                    .group_info(&services, true, true)
                    .map_err(|e| op_failed(e.into()))?;
                let group_id = self
                    .member
                    .emulation_group()
                    .cloned()
                    .ok_or(IntentFailure::Unsupported("no emulation group"))?;
                Ok(Next::Send(
                    Request::CreateGroup(CreateGroup {
                        group_id,
                        as_virtual_client: None,
                        group_info: encode_body(MlsMessageBody::GroupInfo(info))
                            .map_err(op_failed)?,
                        ratchet_tree: None,
                    }),
                    Step::CreateEmulation,
                ))
            }
            (Setup::VirtualClient, 2) => Ok(Next::Send(
                Request::RegisterVirtualClient(RegisterVirtualClient {
                    virtual_client: self.member_identity().clone(),
                    emulation_group: self
                        .member
                        .emulation_group()
                        .cloned()
                        .ok_or(IntentFailure::Unsupported("no emulation group"))?,
                }),
                Step::RegisterVirtualClient,
            )),
            (Setup::JoiningEmulator, 1) => {
                let kp = match &self.member {
                    super::member::Member::Emulator(e) => e.joining.as_ref().map(|(b, _)| {
                        encode_body(MlsMessageBody::KeyPackage(b.key_package.clone()))
                    }),
                    super::member::Member::Plain(_) => None,
                }
                .ok_or(IntentFailure::Unsupported("no emulation KeyPackage"))?
                .map_err(op_failed)?;
                Ok(Next::Send(
                    Request::PublishKeyPackages(PublishKeyPackages {
                        owner: self.id.clone(),
                        key_packages: vec![KeyPackageEntry::ordinary(kp)],
                    }),
                    Step::PublishKeyPackages,
                ))
            }
            _ => Ok(Next::Finish),
        }
    }

    /// The signature scheme and public key the device authenticates with.
    fn signature_public(&self) -> Result<(u16, Vec<u8>), RuntimeError> {
        let suite = self.crypto.suite(self.config.cipher_suite)?;
        let scheme = signature_scheme(suite.params().signature);
        let key = match &self.member {
            super::member::Member::Plain(p) => p.signature_key.public_key.clone(),
            super::member::Member::Emulator(e) => match (&e.client, &e.joining) {
                (Some(c), _) => c
                    .emulation_group()
                    .own_leaf_node()
                    .map(|l| l.signature_key.as_slice().to_vec())
                    .unwrap_or_default(),
                (None, Some((_, key))) => key.public_key.clone(),
                (None, None) => Vec::new(),
            },
        };
        Ok((scheme, key))
    }

    /// `send` as this member: for an emulator client, as the virtual client with its sequence
    /// in `group_id` and the emulation head this device processed.
    fn as_member(&self, send: SendRequest, group_id: &GroupId) -> SendRequest {
        match (self.member.virtual_client(), self.member.emulation_group()) {
            (Some(vc), Some(emulation)) => send
                .as_virtual_client(vc.clone(), self.vc_sequence(group_id))
                .at_emulation_head(self.next.get(emulation).copied().unwrap_or_default()),
            _ => send,
        }
    }

    /// A Commit of `proposals` in `group_id`, as a request with everything the service checks.
    fn commit_request(
        &mut self,
        group_id: &GroupId,
        proposals: Vec<Proposal>,
        recipients: Vec<ClientId>,
        removed: Vec<ClientId>,
        now: u64,
    ) -> Result<Next, IntentFailure> {
        let services = self.services();
        let out = self
            .member
            .commit(&services, group_id, proposals, now)
            .map_err(op_failed)?;
        let mut send = SendRequest::commit(out.epoch, out.commit);
        if let Some(welcome) = out.welcome {
            send = send.with_welcome(recipients, welcome);
        }
        if let Some(info) = out.group_info {
            send = send.with_group_info(info);
        }
        send.removed = removed;
        let send = self.as_member(send, group_id);
        Ok(Next::Send(
            send.to_group(group_id.clone()),
            Step::Commit(group_id.clone()),
        ))
    }

    fn in_group(&self, group_id: &GroupId) -> Result<Vec<(u32, ClientId, Vec<u8>)>, IntentFailure> {
        self.member
            .group(group_id)
            .filter(|g| matches!(g.status(), mls_engine::group::GroupStatus::Active))
            .map(roster)
            .ok_or(IntentFailure::NoLongerApplies("not a member of the group"))
    }

    fn plan_intent(
        &mut self,
        intent: &Intent,
        op: &Operation,
        now: u64,
    ) -> Result<Next, IntentFailure> {
        let services = self.services();
        match intent {
            Intent::CreateGroup { group_id } => self.plan_create(group_id, op.phase),
            Intent::AddMembers { group_id, members } => {
                let roster = self.in_group(group_id)?;
                if let Some(owner) = members.get(op.key_packages.len()) {
                    return Ok(Next::Send(
                        Request::ConsumeKeyPackage(ConsumeKeyPackage {
                            owner: owner.clone(),
                        }),
                        Step::ConsumeKeyPackage,
                    ));
                }
                let mut proposals = Vec::new();
                let mut recipients = Vec::new();
                for (member, kp) in members.iter().zip(&op.key_packages) {
                    if roster.iter().any(|(_, id, _)| id == member) || recipients.contains(member) {
                        continue;
                    }
                    let kp = decode_key_package(kp).map_err(op_failed)?;
                    if identity_of(&kp.leaf_node.credential) != *member {
                        return Err(IntentFailure::Operation(format!(
                            "the directory's KeyPackage for {member} is of another identity"
                        )));
                    }
                    proposals.push(Proposal::add(kp));
                    recipients.push(member.clone());
                }
                if proposals.is_empty() {
                    return Err(IntentFailure::NoLongerApplies(
                        "every member is in the group",
                    ));
                }
                self.commit_request(group_id, proposals, recipients, Vec::new(), now)
            }
            Intent::RemoveMembers { group_id, members } => {
                let me = self.member_identity().clone();
                let mut proposals = Vec::new();
                let mut removed: Vec<ClientId> = Vec::new();
                for (index, id, _) in self.in_group(group_id)? {
                    if members.contains(&id) && id != me {
                        proposals.push(Proposal::remove(index));
                        if !removed.contains(&id) {
                            removed.push(id);
                        }
                    }
                }
                if proposals.is_empty() {
                    return Err(IntentFailure::NoLongerApplies(
                        "no such member in the group",
                    ));
                }
                self.commit_request(group_id, proposals, Vec::new(), removed, now)
            }
            Intent::Update { group_id } => {
                self.in_group(group_id)?;
                self.commit_request(group_id, Vec::new(), Vec::new(), Vec::new(), now)
            }
            Intent::Send { group_id, data } => {
                self.in_group(group_id)?;
                let message = self
                    .member
                    .encrypt(&services, group_id, data)
                    .map_err(op_failed)?;
                let send = self.as_member(SendRequest::application(message), group_id);
                Ok(Next::Send(
                    send.to_group(group_id.clone()),
                    Step::Application(group_id.clone()),
                ))
            }
            Intent::Leave { group_id } => {
                self.in_group(group_id)?;
                let message =
                    self.member
                        .propose_leave(&services, group_id)
                        .map_err(|e| match e {
                            RuntimeError::Unsupported(what) => IntentFailure::Unsupported(what),
                            e => op_failed(e),
                        })?;
                let send = self.as_member(SendRequest::proposal(message), group_id);
                Ok(Next::Send(
                    send.to_group(group_id.clone()),
                    Step::Proposal(group_id.clone()),
                ))
            }
            Intent::PublishKeyPackages { count } => self.plan_publish(*count, op, now),
            Intent::AddDevice { device } => self.plan_add_device(device, op, now),
            Intent::RemoveDevice { device } => self.plan_remove_device(device, op, now),
            Intent::JoinExternally { group_id } => self.plan_external_join(group_id, op, now),
        }
    }

    /// Phases: 0 announce (emulator clients; plain clients skip it), 1 fetch the GroupInfo,
    /// 2 the external commit. A lost race starts again at phase 1 (the announcement stays).
    fn plan_external_join(
        &mut self,
        group_id: &GroupId,
        op: &Operation,
        now: u64,
    ) -> Result<Next, IntentFailure> {
        let services = self.services();
        let emulator = self.member.emulation_group().is_some();
        match op.phase {
            0 if emulator => {
                let client = self.member.emulator_mut().map_err(op_failed)?;
                let epoch = client.emulation_group().epoch();
                let out = client
                    .announce_external_join(
                        &services,
                        group_id.as_bytes(),
                        CommitOptions::new(),
                        now,
                    )
                    .map_err(|e| op_failed(e.into()))?;
                let commit = out.commit.to_bytes().map_err(|e| op_failed(e.into()))?;
                self.emulation_send(SendRequest::commit(epoch, commit), Step::EmulationCommit)
            }
            0 | 1 => Ok(Next::Send(
                Request::FetchGroupInfo(group_id.clone()),
                Step::FetchGroupInfo,
            )),
            _ => {
                let info = op
                    .key_packages
                    .first()
                    .ok_or(IntentFailure::Operation("no GroupInfo fetched".into()))?;
                let info = decode_group_info(info).map_err(op_failed)?;
                if GroupId::new(info.group_context.group_id.as_slice()) != *group_id {
                    return Err(IntentFailure::Operation(
                        "the service's GroupInfo is of another group".into(),
                    ));
                }
                let epoch = info.group_context.epoch;
                let signature_key = match &self.member {
                    super::member::Member::Plain(p) => Some(p.signature_key.clone()),
                    super::member::Member::Emulator(_) => None,
                };
                let (config, id, crypto) = (self.config, self.id.clone(), self.crypto);
                let (commit, new_info) = self
                    .member
                    .begin_external_join(
                        &services,
                        &info,
                        || {
                            let key = signature_key.ok_or(RuntimeError::NotAnEmulator)?;
                            Ok(super::own_leaf(crypto, &config, &id, key))
                        },
                        now,
                    )
                    .map_err(op_failed)?;
                let send = SendRequest::external_commit(epoch, commit).with_group_info(new_info);
                let send = self.as_member(send, group_id);
                Ok(Next::Send(
                    send.to_group(group_id.clone()),
                    Step::ExternalCommit(group_id.clone()),
                ))
            }
        }
    }

    fn emulation_id(&self) -> Result<GroupId, IntentFailure> {
        self.member
            .emulation_group()
            .cloned()
            .ok_or(IntentFailure::Unsupported(
                "only emulator clients have devices",
            ))
    }

    /// An emulation-group send of this device (as itself). A Commit carries the GroupInfo of
    /// the epoch it creates, like every Commit (made from a copy of the group with the pending
    /// commit merged).
    fn emulation_send(&self, send: SendRequest, step: Step) -> Result<Next, IntentFailure> {
        let mut send = send;
        if matches!(step, Step::EmulationCommit) {
            let services = self.services();
            let client = self
                .member
                .emulator()
                .ok_or(IntentFailure::Unsupported("not an emulator client"))?;
            let mut next = client.emulation_group().clone();
            next.merge_pending_commit()
                .map_err(|e| op_failed(e.into()))?;
            let info = next
                .group_info(&services, true, true)
                .map_err(|e| op_failed(e.into()))?;
            send = send
                .with_group_info(encode_body(MlsMessageBody::GroupInfo(info)).map_err(op_failed)?);
        }
        Ok(Next::Send(send.to_group(self.emulation_id()?), step))
    }

    fn plan_create(&mut self, group_id: &GroupId, phase: u8) -> Result<Next, IntentFailure> {
        let services = self.services();
        if phase == 1 {
            let message = self
                .member
                .emulator_mut()
                .and_then(|c| Ok(c.group_state_message(&services, group_id.as_bytes())?))
                .map_err(op_failed)?;
            let message = message.to_bytes().map_err(|e| op_failed(e.into()))?;
            return self.emulation_send(SendRequest::application(message), Step::Transfer);
        }
        if self.member.group(group_id).is_some() {
            return Err(IntentFailure::NoLongerApplies("the group exists"));
        }
        let signature_key = match &self.member {
            super::member::Member::Plain(p) => Some(p.signature_key.clone()),
            super::member::Member::Emulator(_) => None,
        };
        let config = self.config;
        let id = self.id.clone();
        let crypto = self.crypto;
        let group_info = self
            .member
            .create_group(
                &services,
                group_id,
                || {
                    let key = signature_key.ok_or(RuntimeError::NotAnEmulator)?;
                    Ok(super::own_leaf(crypto, &config, &id, key))
                },
                &config,
            )
            .map_err(op_failed)?;
        Ok(Next::Send(
            Request::CreateGroup(CreateGroup {
                group_id: group_id.clone(),
                as_virtual_client: self.member.virtual_client().cloned(),
                group_info,
                ratchet_tree: None,
            }),
            Step::CreateGroup(group_id.clone()),
        ))
    }

    fn plan_publish(
        &mut self,
        count: u32,
        op: &Operation,
        now: u64,
    ) -> Result<Next, IntentFailure> {
        let services = self.services();
        if self.member.emulation_group().is_none() {
            let id = self.id.clone();
            let config = self.config;
            let kps = self
                .member
                .plain_key_packages(self.crypto, &id, &config, count)
                .map_err(op_failed)?;
            return Ok(Next::Send(publish(id, kps), Step::PublishKeyPackages));
        }
        if op.phase == 1 {
            let owner = self.member_identity().clone();
            return Ok(Next::Send(
                publish(owner, op.key_packages.clone()),
                Step::PublishKeyPackages,
            ));
        }
        let config = self.config;
        let client = self.member.emulator_mut().map_err(op_failed)?;
        let epoch = client.emulation_group().epoch();
        let (out, kps) = client
            .publish_key_packages(
                &services,
                config.cipher_suite,
                config.lifetime,
                usize::try_from(count).unwrap_or(usize::MAX),
                CommitOptions::new(),
                now,
            )
            .map_err(|e| op_failed(e.into()))?;
        let mut encoded = Vec::new();
        for kp in kps {
            encoded.push(encode_body(MlsMessageBody::KeyPackage(kp)).map_err(op_failed)?);
        }
        if let Some(op) = self.operation.as_mut() {
            op.key_packages = encoded;
        }
        let commit = out.commit.to_bytes().map_err(|e| op_failed(e.into()))?;
        self.emulation_send(SendRequest::commit(epoch, commit), Step::EmulationCommit)
    }

    fn emulation_roster(&self) -> Vec<(u32, ClientId, Vec<u8>)> {
        self.member
            .emulator()
            .map(|c| roster(c.emulation_group()))
            .unwrap_or_default()
    }

    fn plan_add_device(
        &mut self,
        device: &ClientId,
        op: &Operation,
        now: u64,
    ) -> Result<Next, IntentFailure> {
        let services = self.services();
        if op.phase == 1 {
            let message = self
                .member
                .emulator_mut()
                .and_then(|c| Ok(c.device_state_message(&services)?))
                .map_err(op_failed)?;
            let message = message.to_bytes().map_err(|e| op_failed(e.into()))?;
            return self.emulation_send(SendRequest::application(message), Step::Transfer);
        }
        self.emulation_id()?;
        if self
            .emulation_roster()
            .iter()
            .any(|(_, id, _)| id == device)
        {
            return Err(IntentFailure::NoLongerApplies(
                "the device is an emulator client already",
            ));
        }
        let Some(kp) = op.key_packages.first() else {
            return Ok(Next::Send(
                Request::ConsumeKeyPackage(ConsumeKeyPackage {
                    owner: device.clone(),
                }),
                Step::ConsumeKeyPackage,
            ));
        };
        let kp = decode_key_package(kp).map_err(op_failed)?;
        if identity_of(&kp.leaf_node.credential) != *device {
            return Err(IntentFailure::Operation(format!(
                "the directory's KeyPackage for {device} is of another identity"
            )));
        }
        let client = self.member.emulator_mut().map_err(op_failed)?;
        let epoch = client.emulation_group().epoch();
        let out = client
            .add_emulator(&services, kp, now)
            .map_err(|e| op_failed(e.into()))?;
        let commit = out.commit.to_bytes().map_err(|e| op_failed(e.into()))?;
        let mut send = SendRequest::commit(epoch, commit);
        if let Some(welcome) = out.welcome {
            let welcome = encode_body(MlsMessageBody::Welcome(welcome)).map_err(op_failed)?;
            send = send.with_welcome(vec![device.clone()], welcome);
        }
        self.emulation_send(send, Step::EmulationCommit)
    }

    fn plan_remove_device(
        &mut self,
        device: &ClientId,
        op: &Operation,
        now: u64,
    ) -> Result<Next, IntentFailure> {
        let services = self.services();
        if op.phase == 1 {
            let Some(group_id) = op.remaining.first().cloned() else {
                return Ok(Next::Finish);
            };
            if self.in_group(&group_id).is_err() {
                if let Some(op) = self.operation.as_mut() {
                    op.remaining.remove(0);
                }
                return self.plan_remove_device(
                    device,
                    &self
                        .operation
                        .clone()
                        .unwrap_or_else(|| Operation::new(Task::Setup(Setup::Plain))),
                    now,
                );
            }
            return self.commit_request(&group_id, Vec::new(), Vec::new(), Vec::new(), now);
        }
        let Some((index, _, _)) = self
            .emulation_roster()
            .into_iter()
            .find(|(_, id, _)| id == device)
        else {
            return Err(IntentFailure::NoLongerApplies(
                "the device is not an emulator client",
            ));
        };
        if *device == self.id {
            return Err(IntentFailure::Unsupported(
                "a device does not remove itself",
            ));
        }
        let client = self.member.emulator_mut().map_err(op_failed)?;
        let epoch = client.emulation_group().epoch();
        let out = client
            .remove_emulator(&services, index, now)
            .map_err(|e| op_failed(e.into()))?;
        let commit = out.commit.to_bytes().map_err(|e| op_failed(e.into()))?;
        let mut send = SendRequest::commit(epoch, commit);
        send.removed = vec![device.clone()];
        self.emulation_send(send, Step::EmulationCommit)
    }

    /// The answer to the operation's request.
    pub(super) fn step_answered(&mut self, response: Response, now: u64) {
        let Some(Stage::Sent { request, step }) = self.operation.as_ref().map(|o| o.stage.clone())
        else {
            return;
        };
        match response {
            Response::Refused(e) => self.refused(request, step, e, now),
            Response::Accepted(accepted) => self.accepted(request, step, accepted, now),
            Response::KeyPackage(kp) => {
                if let Some(op) = self.operation.as_mut() {
                    op.key_packages.push(kp);
                    op.stage = Stage::Start;
                }
            }
            Response::Done(_) => self.done(step),
            Response::GroupInfo(body) => {
                if let Some(op) = self.operation.as_mut() {
                    op.key_packages = vec![body.group_info];
                    op.phase = 2;
                    op.stage = Stage::Start;
                }
            }
            other => {
                let _ = other;
                self.abandon(&step, now);
                self.finish(Some(IntentFailure::Operation(
                    "the service answered with something else".into(),
                )));
            }
        }
    }

    /// Drops what an unsent (refused) step left pending.
    fn abandon(&mut self, step: &Step, now: u64) {
        match step {
            Step::Commit(g) => self.member.abandon_commit(g),
            Step::EmulationCommit => {
                if let Ok(c) = self.member.emulator_mut() {
                    c.abandon_emulation_commit();
                }
            }
            Step::CreateGroup(g) => self.member.forget(g),
            Step::ExternalCommit(g) => self.member.abandon_external_join(g),
            _ => {}
        }
        if let Some(g) = step_group(step, self.member.emulation_group()).cloned() {
            self.release_held(&g, now);
        }
    }

    fn refused(&mut self, request: Request, step: Step, e: ServiceError, now: u64) {
        let _ = request;
        let idempotent = matches!(
            (&step, &e),
            (Step::Register, ServiceError::ClientExists { .. })
                | (
                    Step::RegisterVirtualClient,
                    ServiceError::ClientExists { .. }
                )
                | (Step::CreateEmulation, ServiceError::GroupExists { .. })
        );
        if idempotent {
            return self.done(step);
        }
        self.abandon(&step, now);
        if !e.is_retry_after_processing() {
            return self.finish(Some(IntentFailure::Refused(e)));
        }
        let max = self.config.max_attempts;
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        match (&e, step_group(&step, None)) {
            (ServiceError::VirtualClientSequenceMismatch { expected, .. }, Some(g)) => {
                op.learned = Some(LearnedSequence {
                    group_id: g.clone(),
                    next: *expected,
                });
            }
            (ServiceError::EmulationGroupBehind { head, .. }, _) => op.emulation_head = Some(*head),
            _ => {}
        }
        op.attempts = op.attempts.saturating_add(1);
        if matches!(step, Step::EmulationCommit) {
            op.key_packages.retain(|_| false);
        }
        if matches!(step, Step::ExternalCommit(_)) {
            op.key_packages.clear();
            op.phase = 1;
        }
        if op.attempts >= max {
            let attempts = op.attempts;
            return self.finish(Some(IntentFailure::TooManyRaces(attempts)));
        }
        self.enter_catch_up();
    }

    /// A non-send step succeeded.
    fn done(&mut self, step: Step) {
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        op.stage = Stage::Start;
        match (&op.task, &step) {
            (Task::Setup(_), _) => op.phase += 1,
            (Task::Intent(..), Step::PublishKeyPackages) => self.finish(None),
            (Task::Intent(..), Step::CreateGroup(g)) => {
                let g = g.clone();
                let emulator = self.member.emulation_group().is_some();
                self.next.insert(g.clone(), Sequence(0));
                self.vc_next.insert(g.clone(), VcSequence(0));
                let members = vec![self.member_identity().clone()];
                self.emit(Event::Joined {
                    group_id: g,
                    members,
                });
                if !emulator {
                    return self.finish(None);
                }
                if let Some(op) = self.operation.as_mut() {
                    op.phase = 1;
                }
            }
            _ => {}
        }
    }

    /// A send was accepted at `accepted.sequence`.
    fn accepted(&mut self, request: Request, step: Step, accepted: Accepted, now: u64) {
        let emulation = self.member.emulation_group().cloned();
        let Some(group_id) = step_group(&step, emulation.as_ref()).cloned() else {
            return self.finish(Some(IntentFailure::Operation(
                "an unexpected answer".into(),
            )));
        };
        // What came before ours in the log is processed first; before our external join it
        // is of a state we leave (or never had).
        let external = matches!(step, Step::ExternalCommit(_));
        if external {
            if let Some(held) = self.held.get_mut(&group_id) {
                held.retain(|m| m.sequence > accepted.sequence);
            }
        } else {
            self.release_held_before(&group_id, accepted.sequence, now);
        }
        let cursor = self.next.get(&group_id).copied();
        // Behind ours, or a group we hold from a state transfer whose position we do not
        // know yet: process ours in log order.
        if !external && cursor.is_none_or(|c| c < accepted.sequence) {
            // Messages before ours are still to come: process ours in log order, as its echo.
            self.set_stage(Stage::AwaitEcho {
                request,
                step,
                sequence: accepted.sequence,
            });
            self.read_mailbox();
            return;
        }
        self.next.insert(group_id.clone(), accepted.sequence.next());
        if let Some(vc) = accepted.vc_sequence {
            self.vc_next.insert(group_id.clone(), vc.next());
        }
        let result = self.confirm(&group_id, &request, &step);
        self.release_held(&group_id, now);
        match result {
            Ok(()) => self.step_completed(step),
            Err(e) => self.emit_error(&group_id, None, e),
        }
    }

    /// Merges an accepted step's pending state (not processed through its echo).
    fn confirm(
        &mut self,
        group_id: &GroupId,
        request: &Request,
        step: &Step,
    ) -> Result<(), RuntimeError> {
        let services = self.services();
        match step {
            Step::Commit(g) => {
                let before = self.member.group(g).map(roster).unwrap_or_default();
                self.member.confirm_commit(g)?;
                self.commit_event(g, before, self.member_identity().clone());
            }
            Step::Application(g) => {
                if let Request::Send(s) = request {
                    self.member.confirm_sent(&services, g, &s.send.message)?;
                }
            }
            Step::ExternalCommit(g) => {
                self.member.confirm_external_join(g)?;
                let members = self
                    .member
                    .group(g)
                    .map(|x| roster(x).into_iter().map(|(_, id, _)| id).collect())
                    .unwrap_or_default();
                self.emit(Event::Joined {
                    group_id: g.clone(),
                    members,
                });
            }
            Step::EmulationCommit => {
                let before = self.emulation_roster();
                self.member
                    .emulator_mut()?
                    .confirm_emulation_commit(&services)?;
                let after = self.emulation_roster();
                self.device_events(&before, &after);
            }
            _ => {}
        }
        let _ = group_id;
        Ok(())
    }

    /// The events of a Commit in a higher-level group.
    pub(super) fn commit_event(
        &mut self,
        group_id: &GroupId,
        before: Vec<(u32, ClientId, Vec<u8>)>,
        committer: ClientId,
    ) {
        let Some(group) = self.member.group(group_id) else {
            return;
        };
        let after = roster(group);
        let epoch = group.epoch();
        self.emit(Event::GroupChanged {
            group_id: group_id.clone(),
            epoch,
            committer,
            change: change_of(&before, &after),
        });
    }

    /// DeviceAdded / DeviceRemoved for an emulation-group Commit.
    pub(super) fn device_events(
        &mut self,
        before: &[(u32, ClientId, Vec<u8>)],
        after: &[(u32, ClientId, Vec<u8>)],
    ) {
        let change = change_of(before, after);
        for device in change.added {
            self.emit(Event::DeviceAdded { device });
        }
        let removed = !change.removed.is_empty();
        for device in change.removed {
            self.emit(Event::DeviceRemoved { device });
        }
        if removed {
            self.retire_key_packages();
        }
    }

    /// A device left the emulation group: every unused KeyPackage of the virtual client this
    /// device knows is deleted (the removed device knew their keys) and retired at the
    /// service's directory.
    fn retire_key_packages(&mut self) {
        let (Some(owner), Ok(client)) = (
            self.member.virtual_client().cloned(),
            self.member.emulator_mut(),
        ) else {
            return;
        };
        if client.is_removed() {
            return;
        }
        let refs = client.retire_key_packages();
        if refs.is_empty() {
            return;
        }
        let count = refs.len();
        self.transmit(
            Request::RetireKeyPackages(RetireKeyPackages {
                owner,
                key_package_refs: refs
                    .into_iter()
                    .map(|r| r.0.as_slice().to_vec().into())
                    .collect(),
            }),
            Purpose::Retire(count),
        );
    }

    /// The step's send is in the log and merged: the operation goes on.
    pub(super) fn step_completed(&mut self, step: Step) {
        let emulation_groups: Vec<GroupId> = self
            .member
            .group_ids()
            .into_iter()
            .filter(|g| self.in_group(g).is_ok())
            .collect();
        let Some(op) = self.operation.as_mut() else {
            return;
        };
        op.stage = Stage::Start;
        let finish = match (&op.task, &step) {
            (Task::Intent(_, Intent::PublishKeyPackages { .. }), Step::EmulationCommit) => {
                op.phase = 1;
                false
            }
            (Task::Intent(_, Intent::JoinExternally { .. }), Step::EmulationCommit) => {
                op.phase = 1;
                false
            }
            (Task::Intent(_, Intent::AddDevice { .. }), Step::EmulationCommit) => {
                op.phase = 1;
                false
            }
            (Task::Intent(_, Intent::RemoveDevice { .. }), Step::EmulationCommit) => {
                op.phase = 1;
                op.remaining = emulation_groups;
                op.remaining.is_empty()
            }
            (Task::Intent(_, Intent::RemoveDevice { .. }), Step::Commit(g)) => {
                op.remaining.retain(|r| r != g);
                op.remaining.is_empty()
            }
            _ => true,
        };
        if finish {
            self.finish(None);
        }
    }

    /// Our own message came back in log order while its step awaited it (or while verifying
    /// after a restart): returns whether `message_id` is the operation's.
    pub(super) fn is_own_pending(&self, group_id: &GroupId, message_id: &MessageId) -> bool {
        let emulation = self.member.emulation_group();
        match self.operation.as_ref().map(|o| &o.stage) {
            Some(Stage::AwaitEcho { request, step, .. })
            | Some(Stage::Verify { request, step, .. }) => {
                step_group(step, emulation) == Some(group_id)
                    && message_id_of(request).as_ref() == Some(message_id)
            }
            _ => false,
        }
    }

    /// The operation's request and step, when it awaits its echo or verifies.
    pub(super) fn pending_step(&self) -> Option<(Request, Step)> {
        match self.operation.as_ref().map(|o| &o.stage) {
            Some(Stage::AwaitEcho { request, step, .. })
            | Some(Stage::Verify { request, step, .. }) => Some((request.clone(), step.clone())),
            _ => None,
        }
    }

    /// A rival Commit came while verifying a restarted Commit of ours: ours lost.
    pub(super) fn rival_commit(&mut self, group_id: &GroupId) {
        let emulation = self.member.emulation_group().cloned();
        let Some(Stage::Verify { step, .. }) = self.operation.as_ref().map(|o| o.stage.clone())
        else {
            return;
        };
        if step_group(&step, emulation.as_ref()) != Some(group_id) {
            return;
        }
        let is_commit = matches!(step, Step::Commit(_) | Step::EmulationCommit);
        if is_commit {
            match &step {
                Step::Commit(g) => self.member.abandon_commit(g),
                _ => {
                    if let Ok(c) = self.member.emulator_mut() {
                        c.abandon_emulation_commit();
                    }
                }
            }
            if let Some(Stage::Verify { lost, .. }) = self.operation.as_mut().map(|o| &mut o.stage)
            {
                *lost = 1;
            }
        }
    }

    /// Whether messages of `group_id` wait for our request's answer.
    pub(super) fn holds(&self, group_id: &GroupId) -> bool {
        let emulation = self.member.emulation_group();
        match self.operation.as_ref().map(|o| &o.stage) {
            Some(Stage::Sent { step, .. }) => step_group(step, emulation) == Some(group_id),
            _ => false,
        }
    }
}

/// `publish_key_packages` of ordinary KeyPackages.
fn publish(owner: ClientId, key_packages: Vec<vmls_protocol::Payload>) -> Request {
    Request::PublishKeyPackages(PublishKeyPackages {
        owner,
        key_packages: key_packages
            .into_iter()
            .map(KeyPackageEntry::ordinary)
            .collect(),
    })
}
