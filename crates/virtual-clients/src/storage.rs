//! Storage of emulator clients (DESIGN §6): group states, emulation-epoch state (punctured
//! PPRFs) and retained keys change together or not at all, one storage transaction per
//! processed message.
//!
//! The whole state of an [`EmulatorClient`] is one value ([`EmulatorClient::to_bytes`]), so
//! a store only has to write one value per client atomically: [`EmulatorStore`]. The
//! [`PersistentEmulator`] runs every operation on the in-memory client and saves the new
//! state before returning the operation's output, so:
//!
//! * nothing derived from a deleted secret (a commit, an application message) leaves the
//!   process before the deletion is durable: the output is only returned after the save;
//! * an operation that fails changes nothing (the client's own guarantee) and writes nothing;
//! * a save that fails rolls the in-memory client back to the last saved state, so memory and
//!   store always agree.
//!
//! sans-IO: the store is a trait; [`InMemoryStore`] is the one for tests. (A durable store,
//! e.g. SQLite, implements the same trait outside this crate.)

use std::collections::BTreeMap;
use std::convert::Infallible;

use mls_engine::crypto::CryptoProvider;
use mls_engine::group::{ProcessedMessage, Services};
use zeroize::Zeroizing;

use crate::emulator::{EmulatorClient, EmulatorError};

/// A store of emulator client states, keyed by client ID. Each `save` replaces the whole
/// state of one client atomically: after it returns `Ok` the new state is durable; after an
/// error the old state is still the stored one.
pub trait EmulatorStore {
    /// Why the store failed.
    type Error: std::error::Error + 'static;

    /// The stored state of `client_id` ([`EmulatorClient::to_bytes`]), if any.
    fn load(&self, client_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Self::Error>;

    /// Replaces the stored state of `client_id` with `state`, atomically.
    fn save(&mut self, client_id: &[u8], state: &[u8]) -> Result<(), Self::Error>;
}

/// An in-memory [`EmulatorStore`] (tests): one map from client ID to state bytes, zeroized
/// when replaced or dropped.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    states: BTreeMap<Vec<u8>, Zeroizing<Vec<u8>>>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl EmulatorStore for InMemoryStore {
    type Error = Infallible;

    fn load(&self, client_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Infallible> {
        Ok(self.states.get(client_id).cloned())
    }

    fn save(&mut self, client_id: &[u8], state: &[u8]) -> Result<(), Infallible> {
        self.states
            .insert(client_id.to_vec(), Zeroizing::new(state.to_vec()));
        Ok(())
    }
}

/// Why a [`PersistentEmulator`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError<E: std::error::Error + 'static> {
    /// The operation itself failed: the client is unchanged and nothing was written.
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    /// The store failed to save: the in-memory client was rolled back to the stored state.
    #[error("store failed: {0}")]
    Store(#[source] E),
    /// No state is stored under this client ID.
    #[error("no stored state for this client")]
    NotFound,
    /// A save failed and the rollback to the stored state failed too: the in-memory client
    /// is no longer trusted; reopen it from the store.
    #[error("rollback after a failed save failed; reopen the client from the store")]
    Poisoned,
}

/// An [`EmulatorClient`] whose every state change is saved to an [`EmulatorStore`] before
/// its output is returned (DESIGN §6).
#[derive(Debug)]
pub struct PersistentEmulator<S: EmulatorStore> {
    client: EmulatorClient,
    client_id: Vec<u8>,
    store: S,
    /// The bytes last saved, to roll back to if a save fails.
    saved: Zeroizing<Vec<u8>>,
    poisoned: bool,
}

impl<S: EmulatorStore> PersistentEmulator<S> {
    /// Stores a new client (e.g. fresh from [`EmulatorClient::create`] or
    /// [`EmulatorClient::join`]) under `client_id`, replacing any stored state.
    pub fn create(
        mut store: S,
        client_id: Vec<u8>,
        client: EmulatorClient,
    ) -> Result<Self, StorageError<S::Error>> {
        let saved = client.to_bytes()?;
        store
            .save(&client_id, &saved)
            .map_err(StorageError::Store)?;
        Ok(Self {
            client,
            client_id,
            store,
            saved,
            poisoned: false,
        })
    }

    /// Reopens the client stored under `client_id` (after a restart).
    pub fn open(
        crypto: &dyn CryptoProvider,
        store: S,
        client_id: Vec<u8>,
    ) -> Result<Self, StorageError<S::Error>> {
        let saved = store
            .load(&client_id)
            .map_err(StorageError::Store)?
            .ok_or(StorageError::NotFound)?;
        let client = EmulatorClient::from_bytes(crypto, &saved)?;
        Ok(Self {
            client,
            client_id,
            store,
            saved,
            poisoned: false,
        })
    }

    /// The client, read-only (every change goes through [`PersistentEmulator::apply`]).
    pub fn client(&self) -> &EmulatorClient {
        &self.client
    }

    /// The client ID the state is stored under.
    pub fn client_id(&self) -> &[u8] {
        &self.client_id
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, mutably (e.g. to inject faults in tests). Do not save this client's ID
    /// through it.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Gives back the client and the store.
    pub fn into_parts(self) -> (EmulatorClient, S) {
        (self.client, self.store)
    }

    /// Runs `operation` on the client and saves the new state as one transaction. If the
    /// operation fails nothing is written (the client is unchanged by its own contract). If
    /// serialising or saving fails, the client is rolled back to the stored state and the
    /// operation's output is dropped, so nothing derived from an undurable deletion leaves.
    pub fn apply<T>(
        &mut self,
        crypto: &dyn CryptoProvider,
        operation: impl FnOnce(&mut EmulatorClient) -> Result<T, EmulatorError>,
    ) -> Result<T, StorageError<S::Error>> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        let output = operation(&mut self.client)?;
        let saved = match self.client.to_bytes() {
            Ok(bytes) => bytes,
            Err(e) => {
                self.roll_back(crypto)?;
                return Err(e.into());
            }
        };
        if let Err(e) = self.store.save(&self.client_id, &saved) {
            self.roll_back(crypto)?;
            return Err(StorageError::Store(e));
        }
        self.saved = saved;
        Ok(output)
    }

    fn roll_back(&mut self, crypto: &dyn CryptoProvider) -> Result<(), StorageError<S::Error>> {
        match EmulatorClient::from_bytes(crypto, &self.saved) {
            Ok(client) => {
                self.client = client;
                Ok(())
            }
            Err(_) => {
                self.poisoned = true;
                Err(StorageError::Poisoned)
            }
        }
    }

    /// [`EmulatorClient::process`] of a higher-level group message, persisted.
    pub fn process(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        bytes: &[u8],
        now: u64,
    ) -> Result<ProcessedMessage, StorageError<S::Error>> {
        self.apply(services.crypto, |c| {
            c.process(services, group_id, bytes, now)
        })
    }

    /// [`EmulatorClient::process_emulation`] of an emulation-group message, persisted.
    pub fn process_emulation(
        &mut self,
        services: &Services<'_>,
        bytes: &[u8],
        now: u64,
    ) -> Result<ProcessedMessage, StorageError<S::Error>> {
        self.apply(services.crypto, |c| {
            c.process_emulation(services, bytes, now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_store_replaces_whole_values() {
        let mut s = InMemoryStore::new();
        assert!(s.load(b"a").unwrap().is_none());
        s.save(b"a", b"one").unwrap();
        s.save(b"b", b"other").unwrap();
        s.save(b"a", b"two").unwrap();
        assert_eq!(s.load(b"a").unwrap().unwrap().as_slice(), b"two");
        assert_eq!(s.load(b"b").unwrap().unwrap().as_slice(), b"other");
    }
}
