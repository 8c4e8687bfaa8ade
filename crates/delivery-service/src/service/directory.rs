//! The KeyPackage directory (issue 14 "Directory and join material"): KeyPackages are parsed
//! and validated (RFC 9420 §10.1, public checks), single use and atomically consumed (the
//! take is one transaction), last-resort ones kept, expired ones (by their leaf's lifetime at
//! `now`) never handed out, and retired by KeyPackageRef on request. Only the owner, or an
//! emulator client of a virtual client owner, publishes and retires.

use mls_engine::codec::LeafNodeSource;
use mls_engine::group::public::credential_identity;
use mls_engine::messages::{
    key_package_ref, validate_key_package, KeyPackageValidationContext, LeafNodeValidationContext,
};
use vmls_protocol::{
    ClientId, ConsumeKeyPackage, KeyPackageEntry, Payload, PublishKeyPackages, RetireKeyPackages,
    ServiceError, Text,
};

use super::mls::{self, invalid, mismatch};
use super::registry;
use super::{Failure, Limits};
use crate::store::{ClientRow, KeyPackageRow, Tx};

/// `device` may publish and retire KeyPackages of `owner`: its own, or its virtual client's.
async fn authorize<T: Tx>(tx: &mut T, device: &ClientId, owner: &ClientId) -> Result<(), Failure> {
    if device == owner {
        return registry::require_device(tx, device).await;
    }
    registry::acting(tx, device, Some(owner)).await.map(|_| ())
}

/// Parses and validates one KeyPackage of `owner` at `now`.
fn check_key_package(
    entry: &KeyPackageEntry,
    owner: &ClientId,
    now: u64,
    max_size: usize,
) -> Result<KeyPackageRow, ServiceError> {
    super::check_size(&entry.key_package, max_size)?;
    let (kp, version) = mls::decode_key_package(&entry.key_package)?;
    let services = mls::services();
    let suite = services
        .crypto
        .suite(kp.cipher_suite)
        .map_err(|e| invalid(format!("KeyPackage cipher suite: {e}")))?;
    let leaf = LeafNodeValidationContext::new(services.identity, now);
    let ctx = KeyPackageValidationContext::new(leaf).with_message_version(version);
    validate_key_package(suite, &kp, &ctx).map_err(|e| invalid(format!("KeyPackage: {e}")))?;
    if credential_identity(&kp.leaf_node.credential) != owner.as_bytes() {
        return Err(mismatch(
            "owner",
            "the KeyPackage's credential names another identity",
        ));
    }
    let LeafNodeSource::KeyPackage(lifetime) = &kp.leaf_node.leaf_node_source else {
        return Err(invalid("a KeyPackage's leaf must have a lifetime"));
    };
    let reference = key_package_ref(suite, &kp).map_err(invalid)?;
    Ok(KeyPackageRow {
        reference: reference.as_slice().to_vec(),
        key_package: entry.key_package.clone(),
        last_resort: entry.is_last_resort(),
        not_after: lifetime.not_after,
    })
}

/// `publish_key_packages`.
pub(crate) async fn publish<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: PublishKeyPackages,
    limits: &Limits,
    now: u64,
) -> Result<(), Failure> {
    authorize(tx, device, &r.owner).await?;
    let rows = r
        .key_packages
        .iter()
        .map(|e| check_key_package(e, &r.owner, now, limits.max_message_size))
        .collect::<Result<Vec<_>, _>>()?;
    let ordinary = rows.iter().filter(|k| !k.last_resort).count() as u64;
    let held = tx.key_package_count(&r.owner).await?;
    if held.saturating_add(ordinary) > limits.max_key_packages_per_owner {
        return Err(ServiceError::QuotaExceeded {
            quota: Text::new("key_packages_per_owner"),
            limit: limits.max_key_packages_per_owner,
        }
        .into());
    }
    for row in &rows {
        tx.insert_key_package(&r.owner, row).await?;
    }
    Ok(())
}

/// `consume_key_package`: any registered device takes one KeyPackage of a registered owner.
pub(crate) async fn consume<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: ConsumeKeyPackage,
    now: u64,
) -> Result<Payload, Failure> {
    registry::require_device(tx, device).await?;
    match tx.client(&r.owner).await? {
        Some(ClientRow::Device { .. } | ClientRow::Virtual { .. }) => {}
        None => return Err(ServiceError::UnknownClient { client: r.owner }.into()),
    }
    tx.take_key_package(&r.owner, now)
        .await?
        .ok_or_else(|| ServiceError::NoKeyPackage { owner: r.owner }.into())
}

/// `retire_key_packages`.
pub(crate) async fn retire<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: RetireKeyPackages,
) -> Result<(), Failure> {
    authorize(tx, device, &r.owner).await?;
    let refs: Vec<Vec<u8>> = r.key_package_refs.iter().map(|p| p.to_vec()).collect();
    tx.retire_key_packages(&r.owner, &refs).await?;
    Ok(())
}
