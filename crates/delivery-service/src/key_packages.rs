//! The KeyPackage directory: clients (and emulator clients, for their virtual client, draft §5.5.1)
//! publish KeyPackages; a client that wants to add someone takes one.
//!
//! Consume-once (RFC 9420 §16.8): an ordinary KeyPackage is handed out once and removed. A
//! last-resort KeyPackage (RFC 9420 §17.2, the `last_resort` extension; stated by the publisher,
//! since the service does not parse MLS) is handed out only when no ordinary one is left, and kept.
//! Only one last-resort KeyPackage per owner is kept: publishing another replaces it.

use std::collections::{BTreeMap, VecDeque};

use vmls_protocol::{ClientId, KeyPackageEntry, Payload, ServiceError};

#[derive(Default, Debug)]
struct OwnerKeyPackages {
    ordinary: VecDeque<Payload>,
    last_resort: Option<Payload>,
}

/// The KeyPackages of every owner. Authorisation is the caller's job (see
/// [`super::DeliveryService::publish_key_packages`]).
#[derive(Default, Debug)]
pub struct KeyPackageDirectory {
    owners: BTreeMap<ClientId, OwnerKeyPackages>,
}

impl KeyPackageDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key_packages` for `owner`, in order.
    pub fn publish(&mut self, owner: &ClientId, key_packages: Vec<KeyPackageEntry>) {
        if key_packages.is_empty() {
            return;
        }
        let entry = self.owners.entry(owner.clone()).or_default();
        for upload in key_packages {
            let last_resort = upload.is_last_resort();
            let bytes = upload.key_package;
            if last_resort {
                entry.last_resort = Some(bytes);
            } else {
                entry.ordinary.push_back(bytes);
            }
        }
    }

    /// Takes the oldest ordinary KeyPackage of `owner`, else returns its last-resort one.
    pub fn consume(&mut self, owner: &ClientId) -> Result<Payload, ServiceError> {
        let entry = self
            .owners
            .get_mut(owner)
            .ok_or_else(|| ServiceError::NoKeyPackage {
                owner: owner.clone(),
            })?;
        if let Some(kp) = entry.ordinary.pop_front() {
            return Ok(kp);
        }
        entry
            .last_resort
            .clone()
            .ok_or_else(|| ServiceError::NoKeyPackage {
                owner: owner.clone(),
            })
    }

    /// How many ordinary KeyPackages `owner` has left, and whether it has a last-resort one.
    pub fn available(&self, owner: &ClientId) -> (usize, bool) {
        self.owners
            .get(owner)
            .map_or((0, false), |e| (e.ordinary.len(), e.last_resort.is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_once_then_last_resort() {
        let mut dir = KeyPackageDirectory::new();
        let bob = ClientId::new("bob");
        assert_eq!(
            dir.consume(&bob),
            Err(ServiceError::NoKeyPackage { owner: bob.clone() })
        );
        dir.publish(
            &bob,
            vec![
                KeyPackageEntry::ordinary(b"kp1".to_vec()),
                KeyPackageEntry::last_resort(b"lr".to_vec()),
                KeyPackageEntry::ordinary(b"kp2".to_vec()),
            ],
        );
        assert_eq!(dir.available(&bob), (2, true));
        assert_eq!(&*dir.consume(&bob).unwrap(), b"kp1");
        assert_eq!(&*dir.consume(&bob).unwrap(), b"kp2");
        assert_eq!(&*dir.consume(&bob).unwrap(), b"lr");
        assert_eq!(&*dir.consume(&bob).unwrap(), b"lr");
        assert_eq!(dir.available(&bob), (0, true));
    }

    #[test]
    fn only_ordinary_runs_out() {
        let mut dir = KeyPackageDirectory::new();
        let bob = ClientId::new("bob");
        dir.publish(&bob, vec![KeyPackageEntry::ordinary(b"kp".to_vec())]);
        assert!(dir.consume(&bob).is_ok());
        assert_eq!(
            dir.consume(&bob),
            Err(ServiceError::NoKeyPackage { owner: bob })
        );
    }

    #[test]
    fn new_last_resort_replaces_old() {
        let mut dir = KeyPackageDirectory::new();
        let bob = ClientId::new("bob");
        dir.publish(&bob, vec![KeyPackageEntry::last_resort(b"lr1".to_vec())]);
        dir.publish(&bob, vec![KeyPackageEntry::last_resort(b"lr2".to_vec())]);
        assert_eq!(&*dir.consume(&bob).unwrap(), b"lr2");
    }
}
