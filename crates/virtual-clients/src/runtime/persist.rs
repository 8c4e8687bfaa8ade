//! The persisted state of a device ([`Device::to_bytes`], [`Device::from_bytes`]): the
//! emulator client's or plain client's MLS state, the runtime's cursors (log positions,
//! virtual-client sequences, mailbox cursor), the queued intents and the operation in
//! progress, and the held messages. TLS-encoded, versioned; secrets in zeroized buffers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use mls_engine::codec::{CipherSuite, Lifetime, MlsMessageBody};
use mls_engine::crypto::{CryptoProvider, HpkePrivateKey, SignatureKeyPair, SignaturePrivateKey};
use mls_engine::group::Group;
use mls_engine::messages::{key_package_ref, KeyPackageBundle, KeyPackagePrivate};
use tls_codec::{
    DeserializeBytes, SecretVLBytes, Serialize, TlsDeserialize, TlsDeserializeBytes, TlsSerialize,
    TlsSize, VLBytes,
};
use vmls_protocol::{ClientId, GroupId, GroupMessage, MailboxCursor, Sequence, VcSequence};
use zeroize::Zeroizing;

use super::api::{DeviceConfig, Intent, IntentId};
use super::member::{decode_key_package, encode_body, EmulatorMember, Member, PlainMember};
use super::operation_types::{Operation, Stage};
use super::{Device, RuntimeError};
use crate::emulator::EmulatorClient;

/// The version of [`Device::to_bytes`]'s format.
pub const DEVICE_STATE_VERSION: u16 = 1;

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct KeyPackageRecord {
    key_package: VLBytes,
    init_private_key: SecretVLBytes,
    encryption_private_key: SecretVLBytes,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct PlainState {
    signature_private_key: SecretVLBytes,
    signature_public_key: VLBytes,
    groups: Vec<SecretVLBytes>,
    key_packages: Vec<KeyPackageRecord>,
    pending_external: Vec<SecretVLBytes>,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct JoiningState {
    key_package: KeyPackageRecord,
    signature_private_key: SecretVLBytes,
    signature_public_key: VLBytes,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct EmulatorState {
    virtual_client: ClientId,
    emulation_group: GroupId,
    client: Option<SecretVLBytes>,
    joining: Option<JoiningState>,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
#[repr(u8)]
enum MemberState {
    #[tls_codec(discriminant = 1)]
    Plain(PlainState),
    #[tls_codec(discriminant = 2)]
    Emulator(EmulatorState),
}

#[derive(Debug, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct Position {
    group_id: GroupId,
    next: Sequence,
}

#[derive(Debug, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct VcPosition {
    group_id: GroupId,
    next: VcSequence,
}

#[derive(Debug, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct QueuedIntent {
    id: IntentId,
    intent: Intent,
}

#[derive(TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
struct DeviceState {
    version: u16,
    id: ClientId,
    cipher_suite: u16,
    not_before: u64,
    not_after: u64,
    mailbox_batch: u32,
    max_attempts: u8,
    member: MemberState,
    next: Vec<Position>,
    vc_next: Vec<VcPosition>,
    mailbox_after: Option<MailboxCursor>,
    intents: Vec<QueuedIntent>,
    operation: Option<Operation>,
    next_intent: u64,
    next_request: u64,
    held: Vec<GroupMessage>,
}

fn key_package_record(bundle: &KeyPackageBundle) -> Result<KeyPackageRecord, RuntimeError> {
    Ok(KeyPackageRecord {
        key_package: VLBytes::new(
            encode_body(MlsMessageBody::KeyPackage(bundle.key_package.clone()))?.to_vec(),
        ),
        init_private_key: SecretVLBytes::new(bundle.private.init_private_key.as_bytes().to_vec()),
        encryption_private_key: SecretVLBytes::new(
            bundle.private.encryption_private_key.as_bytes().to_vec(),
        ),
    })
}

fn key_package_bundle(
    crypto: &dyn CryptoProvider,
    record: &KeyPackageRecord,
) -> Result<KeyPackageBundle, RuntimeError> {
    let key_package = decode_key_package(record.key_package.as_slice())?;
    let suite = crypto.suite(key_package.cipher_suite)?;
    let reference = key_package_ref(suite, &key_package)?;
    Ok(KeyPackageBundle {
        key_package,
        private: KeyPackagePrivate {
            init_private_key: HpkePrivateKey::new(record.init_private_key.as_slice().to_vec()),
            encryption_private_key: HpkePrivateKey::new(
                record.encryption_private_key.as_slice().to_vec(),
            ),
        },
        reference,
    })
}

fn signature_key(private: &SecretVLBytes, public: &VLBytes) -> SignatureKeyPair {
    SignatureKeyPair {
        private_key: SignaturePrivateKey::new(private.as_slice().to_vec()),
        public_key: public.as_slice().to_vec(),
    }
}

fn malformed(_: tls_codec::Error) -> RuntimeError {
    RuntimeError::MalformedState("not a device state")
}

impl Device {
    fn member_state(&self) -> Result<MemberState, RuntimeError> {
        Ok(match &self.member {
            Member::Plain(p) => MemberState::Plain(PlainState {
                signature_private_key: SecretVLBytes::new(
                    p.signature_key.private_key.as_bytes().to_vec(),
                ),
                signature_public_key: VLBytes::new(p.signature_key.public_key.clone()),
                groups: p
                    .groups
                    .values()
                    .map(|g| Ok(SecretVLBytes::new(g.to_bytes()?)))
                    .collect::<Result<_, RuntimeError>>()?,
                key_packages: p
                    .key_packages
                    .iter()
                    .map(key_package_record)
                    .collect::<Result<_, _>>()?,
                pending_external: p
                    .pending_external
                    .values()
                    .map(|g| Ok(SecretVLBytes::new(g.to_bytes()?)))
                    .collect::<Result<_, RuntimeError>>()?,
            }),
            Member::Emulator(e) => MemberState::Emulator(EmulatorState {
                virtual_client: e.virtual_client.clone(),
                emulation_group: e.emulation_group.clone(),
                client: e
                    .client
                    .as_ref()
                    .map(|c| {
                        Ok::<_, RuntimeError>(SecretVLBytes::new(std::mem::take(
                            &mut *c.to_bytes()?,
                        )))
                    })
                    .transpose()?,
                joining: e
                    .joining
                    .as_ref()
                    .map(|(bundle, key)| {
                        Ok::<_, RuntimeError>(JoiningState {
                            key_package: key_package_record(bundle)?,
                            signature_private_key: SecretVLBytes::new(
                                key.private_key.as_bytes().to_vec(),
                            ),
                            signature_public_key: VLBytes::new(key.public_key.clone()),
                        })
                    })
                    .transpose()?,
            }),
        })
    }

    /// The device's whole state, to save after every step (before sending that step's
    /// transmits). Requests out and events not yet polled are not part of it: after
    /// [`Device::from_bytes`], a request that was out is resolved again (its echo looked for
    /// in the mailbox, else sent again), and events are those of later steps.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, RuntimeError> {
        let state = DeviceState {
            version: DEVICE_STATE_VERSION,
            id: self.id.clone(),
            cipher_suite: self.config.cipher_suite.0,
            not_before: self.config.lifetime.not_before,
            not_after: self.config.lifetime.not_after,
            mailbox_batch: self.config.mailbox_batch,
            max_attempts: self.config.max_attempts,
            member: self.member_state()?,
            next: self
                .next
                .iter()
                .map(|(g, s)| Position {
                    group_id: g.clone(),
                    next: *s,
                })
                .collect(),
            vc_next: self
                .vc_next
                .iter()
                .map(|(g, s)| VcPosition {
                    group_id: g.clone(),
                    next: *s,
                })
                .collect(),
            mailbox_after: self.mailbox_after,
            intents: self
                .intents
                .iter()
                .map(|(id, intent)| QueuedIntent {
                    id: *id,
                    intent: intent.clone(),
                })
                .collect(),
            operation: self.operation.clone(),
            next_intent: self.next_intent,
            next_request: self.next_request,
            held: self.held.values().flatten().cloned().collect(),
        };
        Ok(Zeroizing::new(
            state
                .tls_serialize_detached()
                .map_err(|e| RuntimeError::Protocol(format!("{e:?}")))?,
        ))
    }

    /// A device from [`Device::to_bytes`]. A request that was out when the state was saved is
    /// resolved first: the device reads its mailbox for its echo (accepted: it goes on), else
    /// sends it again (or, if a rival Commit won meanwhile, makes a new attempt). Call
    /// [`Device::poll_transmit`] next.
    pub fn from_bytes(
        crypto: &'static dyn CryptoProvider,
        bytes: &[u8],
    ) -> Result<Self, RuntimeError> {
        let (state, rest) = DeviceState::tls_deserialize_bytes(bytes).map_err(malformed)?;
        if !rest.is_empty() {
            return Err(RuntimeError::MalformedState("trailing bytes"));
        }
        if state.version != DEVICE_STATE_VERSION {
            return Err(RuntimeError::MalformedState("unknown version"));
        }
        let member = match state.member {
            MemberState::Plain(p) => Member::Plain(PlainMember {
                signature_key: signature_key(&p.signature_private_key, &p.signature_public_key),
                groups: p
                    .groups
                    .iter()
                    .map(|g| {
                        let group = Group::from_bytes(g.as_slice())?;
                        Ok((GroupId::new(group.group_id()), group))
                    })
                    .collect::<Result<BTreeMap<_, _>, RuntimeError>>()?,
                key_packages: p
                    .key_packages
                    .iter()
                    .map(|k| key_package_bundle(crypto, k))
                    .collect::<Result<_, _>>()?,
                pending_external: p
                    .pending_external
                    .iter()
                    .map(|g| {
                        let group = Group::from_bytes(g.as_slice())?;
                        Ok((GroupId::new(group.group_id()), group))
                    })
                    .collect::<Result<BTreeMap<_, _>, RuntimeError>>()?,
            }),
            MemberState::Emulator(e) => Member::Emulator(EmulatorMember {
                virtual_client: e.virtual_client,
                emulation_group: e.emulation_group,
                client: e
                    .client
                    .map(|c| EmulatorClient::from_bytes(crypto, c.as_slice()))
                    .transpose()?,
                joining: e
                    .joining
                    .map(|j| {
                        Ok::<_, RuntimeError>((
                            key_package_bundle(crypto, &j.key_package)?,
                            signature_key(&j.signature_private_key, &j.signature_public_key),
                        ))
                    })
                    .transpose()?,
            }),
        };
        let mut held: BTreeMap<GroupId, Vec<GroupMessage>> = BTreeMap::new();
        for m in state.held {
            held.entry(m.group_id.clone()).or_default().push(m);
        }
        let mut operation = state.operation;
        let mut read = false;
        if let Some(op) = operation.as_mut() {
            if let Stage::Sent { request, step } = &op.stage {
                op.stage = Stage::Verify {
                    request: request.clone(),
                    step: step.clone(),
                    lost: 0,
                };
            }
            read = matches!(
                op.stage,
                Stage::Verify { .. } | Stage::CatchUp | Stage::AwaitEcho { .. }
            );
        }
        let mut device = Self {
            crypto,
            id: state.id,
            config: DeviceConfig {
                cipher_suite: CipherSuite(state.cipher_suite),
                lifetime: Lifetime {
                    not_before: state.not_before,
                    not_after: state.not_after,
                },
                mailbox_batch: state.mailbox_batch,
                max_attempts: state.max_attempts,
            },
            member,
            next: state
                .next
                .into_iter()
                .map(|p| (p.group_id, p.next))
                .collect(),
            vc_next: state
                .vc_next
                .into_iter()
                .map(|p| (p.group_id, p.next))
                .collect(),
            mailbox_after: state.mailbox_after,
            intents: state
                .intents
                .into_iter()
                .map(|q| (q.id, q.intent))
                .collect::<VecDeque<_>>(),
            operation,
            next_intent: state.next_intent,
            next_request: state.next_request,
            awaiting: BTreeMap::new(),
            outbox: VecDeque::new(),
            held,
            fetching: BTreeSet::new(),
            reading: false,
            read_again: false,
            from_log: false,
            events: VecDeque::new(),
        };
        if read {
            device.read_mailbox();
        }
        Ok(device)
    }
}

impl std::fmt::Debug for KeyPackageRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPackageRecord(redacted)")
    }
}

impl std::fmt::Debug for PlainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainState(redacted)")
    }
}

impl std::fmt::Debug for JoiningState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JoiningState(redacted)")
    }
}

impl std::fmt::Debug for EmulatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmulatorState(redacted)")
    }
}

impl std::fmt::Debug for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemberState(redacted)")
    }
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceState(redacted)")
    }
}
