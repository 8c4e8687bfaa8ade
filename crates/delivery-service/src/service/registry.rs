//! Who is who: devices, virtual clients and their emulator clients (the device members of the
//! emulation group, as the service's view of that group has them), and whose mailboxes serve
//! a member identity.

use vmls_protocol::{ClientId, GroupId, RegisterDevice, RegisterVirtualClient, ServiceError, Text};

use super::Failure;
use crate::store::{ClientRow, Lock, Tx};

/// The member identity a device acts as: itself, or a virtual client it emulates.
#[derive(Clone, Debug)]
pub(crate) struct Acting {
    /// The member identity.
    pub identity: ClientId,
    /// The virtual client's emulation group (`None` when the device acts as itself).
    pub emulation_group: Option<GroupId>,
}

/// `device` must be a registered device.
pub(crate) async fn require_device<T: Tx>(tx: &mut T, device: &ClientId) -> Result<(), Failure> {
    match tx.client(device).await? {
        Some(ClientRow::Device { .. }) => Ok(()),
        Some(ClientRow::Virtual { .. }) => Err(ServiceError::NotADevice {
            client: device.clone(),
        }
        .into()),
        None => Err(ServiceError::UnknownClient {
            client: device.clone(),
        }
        .into()),
    }
}

/// The emulation group of a registered virtual client.
pub(crate) async fn emulation_group_of<T: Tx>(
    tx: &mut T,
    virtual_client: &ClientId,
) -> Result<GroupId, Failure> {
    match tx.client(virtual_client).await? {
        Some(ClientRow::Virtual { emulation_group }) => Ok(emulation_group),
        Some(ClientRow::Device { .. }) => Err(ServiceError::NotAVirtualClient {
            client: virtual_client.clone(),
        }
        .into()),
        None => Err(ServiceError::UnknownClient {
            client: virtual_client.clone(),
        }
        .into()),
    }
}

/// The emulator clients of a virtual client whose emulation group is `emulation_group`: the
/// group's current members that are registered devices.
pub(crate) async fn emulators<T: Tx>(
    tx: &mut T,
    emulation_group: &GroupId,
) -> Result<Vec<ClientId>, Failure> {
    let mut out = Vec::new();
    for m in tx.members(emulation_group).await? {
        if m.is_current() && matches!(tx.client(&m.member).await?, Some(ClientRow::Device { .. })) {
            out.push(m.member);
        }
    }
    Ok(out)
}

/// The identity `device` acts as (checked: a registered device; for `as_virtual_client`, one
/// of its emulator clients).
pub(crate) async fn acting<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    as_virtual_client: Option<&ClientId>,
) -> Result<Acting, Failure> {
    require_device(tx, device).await?;
    let Some(vc) = as_virtual_client else {
        return Ok(Acting {
            identity: device.clone(),
            emulation_group: None,
        });
    };
    let group = emulation_group_of(tx, vc).await?;
    if !emulators(tx, &group).await?.contains(device) {
        return Err(ServiceError::NotAnEmulator {
            virtual_client: vc.clone(),
            client: device.clone(),
        }
        .into());
    }
    Ok(Acting {
        identity: vc.clone(),
        emulation_group: Some(group),
    })
}

/// The devices whose mailboxes serve member identity `identity`: the device itself, or the
/// emulator clients of a virtual client; none for an unregistered identity.
pub(crate) async fn mailboxes_of<T: Tx>(
    tx: &mut T,
    identity: &ClientId,
) -> Result<Vec<ClientId>, Failure> {
    match tx.client(identity).await? {
        Some(ClientRow::Device { .. }) => Ok(vec![identity.clone()]),
        Some(ClientRow::Virtual { emulation_group }) => emulators(tx, &emulation_group).await,
        None => Ok(Vec::new()),
    }
}

/// `register_device`: the sender registers itself with its signature key.
pub(crate) async fn register_device<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: RegisterDevice,
) -> Result<(), Failure> {
    if &r.device != device {
        return Err(ServiceError::Unauthorized {
            reason: Text::new("a device registers itself only"),
        }
        .into());
    }
    if tx.client(device).await?.is_some() {
        return Err(ServiceError::ClientExists {
            client: device.clone(),
        }
        .into());
    }
    tx.insert_client(
        device,
        &ClientRow::Device {
            signature_scheme: r.signature_scheme,
            signature_key: r.signature_key.to_vec(),
        },
    )
    .await?;
    Ok(())
}

/// `register_virtual_client`: a virtual client whose emulation group the sender is a member of.
pub(crate) async fn register_virtual_client<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: RegisterVirtualClient,
) -> Result<(), Failure> {
    require_device(tx, device).await?;
    if tx.client(&r.virtual_client).await?.is_some() {
        return Err(ServiceError::ClientExists {
            client: r.virtual_client,
        }
        .into());
    }
    if tx.group(&r.emulation_group, Lock::Share).await?.is_none() {
        return Err(ServiceError::UnknownGroup {
            group_id: r.emulation_group,
        }
        .into());
    }
    let member = tx
        .members(&r.emulation_group)
        .await?
        .iter()
        .any(|m| m.is_current() && &m.member == device);
    if !member {
        return Err(ServiceError::NotAMember {
            group_id: r.emulation_group,
            member: device.clone(),
        }
        .into());
    }
    tx.insert_client(
        &r.virtual_client,
        &ClientRow::Virtual {
            emulation_group: r.emulation_group,
        },
    )
    .await?;
    Ok(())
}
