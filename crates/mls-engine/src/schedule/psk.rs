//! `psk_secret` (RFC 9420 §8.4): chaining the pre-shared keys of a Commit or Welcome into the
//! key schedule.
//!
//! ```text
//! psk_extracted_[i] = KDF.Extract(0, psk_[i])
//! psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, KDF.Nh)
//! psk_secret_[0]    = 0
//! psk_secret_[i]    = KDF.Extract(psk_input_[i-1], psk_secret_[i-1])
//! psk_secret        = psk_secret_[n]
//! ```

use std::collections::BTreeMap;

use tls_codec::Serialize as _;

use crate::codec::{PSKLabel, PreSharedKeyID};
use crate::crypto::{CryptoError, MlsCrypto as _, Secret, SuiteProvider};

/// Why `psk_secret` could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PskError {
    /// More PSKs than `PSKLabel.count` (a `uint16`) can count.
    #[error("{0} PSKs: at most 65535 fit in PSKLabel")]
    TooManyPsks(usize),
    /// A `PSKLabel` could not be encoded.
    #[error("PSKLabel encoding failed: {0}")]
    Encoding(String),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// `psk_secret` for the PSKs `psks`, in the order the Commit's PreSharedKey proposals (or the
/// GroupSecrets' `psks`) list them; each entry is a PSK's identifier and its value (an
/// external PSK, or the `resumption_psk` of the epoch it names). An empty list gives the
/// all-zero secret of `KDF.Nh` bytes.
///
/// Intermediate values (`psk_extracted`, `psk_input`, earlier `psk_secret_[i]`) are zeroized
/// as soon as the next step is computed.
pub fn psk_secret(
    cs: &dyn SuiteProvider,
    psks: &[(&PreSharedKeyID, &Secret)],
) -> Result<Secret, PskError> {
    let nh = cs.params().hash_len();
    let count = u16::try_from(psks.len()).map_err(|_| PskError::TooManyPsks(psks.len()))?;
    let zero = Secret::zero(nh);
    let mut secret = Secret::zero(nh);
    for (index, (id, psk)) in (0u16..).zip(psks) {
        let label = PSKLabel {
            id: (*id).clone(),
            index,
            count,
        };
        let label = label
            .tls_serialize_detached()
            .map_err(|e| PskError::Encoding(e.to_string()))?;
        let psk_extracted = cs.kdf_extract(zero.as_bytes(), psk.as_bytes());
        let psk_input =
            cs.expand_with_label(psk_extracted.as_bytes(), "derived psk", &label, nh)?;
        secret = cs.kdf_extract(psk_input.as_bytes(), secret.as_bytes());
    }
    Ok(secret)
}

/// The `resumption_psk`s of a group's recent epochs (§8.6), kept for at most
/// `max_epochs` epochs: inserting the PSK of a new epoch deletes those more than `max_epochs - 1`
/// epochs older.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumptionPskStore {
    max_epochs: u64,
    psks: BTreeMap<u64, Secret>,
}

impl ResumptionPskStore {
    /// An empty store that keeps the PSKs of at most `max_epochs` epochs (0 keeps none).
    pub fn new(max_epochs: u64) -> Self {
        Self {
            max_epochs,
            psks: BTreeMap::new(),
        }
    }

    /// Stores the `resumption_psk` of `epoch` and deletes those that fall out of the window.
    pub fn insert(&mut self, epoch: u64, resumption_psk: Secret) {
        if self.max_epochs == 0 {
            return;
        }
        self.psks.insert(epoch, resumption_psk);
        let newest = self.psks.keys().next_back().copied().unwrap_or(epoch);
        let oldest_kept = newest.saturating_sub(self.max_epochs - 1);
        self.psks = self.psks.split_off(&oldest_kept);
    }

    /// The `resumption_psk` of `epoch`, if it is kept.
    pub fn get(&self, epoch: u64) -> Option<&Secret> {
        self.psks.get(&epoch)
    }

    /// The window size given to [`ResumptionPskStore::new`].
    pub fn max_epochs(&self) -> u64 {
        self.max_epochs
    }

    /// The kept PSKs by epoch, oldest first (for persistence).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Secret)> + '_ {
        self.psks.iter().map(|(e, s)| (*e, s))
    }

    /// How many PSKs are kept.
    pub fn len(&self) -> usize {
        self.psks.len()
    }

    /// Whether no PSK is kept.
    pub fn is_empty(&self) -> bool {
        self.psks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CipherSuite, CryptoProvider as _, RustCrypto};

    fn suite() -> &'static dyn SuiteProvider {
        static P: RustCrypto = RustCrypto;
        P.suite(CipherSuite(1)).unwrap()
    }

    #[test]
    fn no_psks_give_zero() {
        assert_eq!(psk_secret(suite(), &[]).unwrap(), Secret::zero(32));
    }

    #[test]
    fn order_nonce_and_value_matter() {
        let cs = suite();
        let a = PreSharedKeyID::external(b"a".to_vec(), vec![1; 32]);
        let b = PreSharedKeyID::external(b"b".to_vec(), vec![2; 32]);
        let a2 = PreSharedKeyID::external(b"a".to_vec(), vec![3; 32]);
        let ka = Secret::new(vec![10; 16]);
        let kb = Secret::new(vec![11; 40]);
        let ab = psk_secret(cs, &[(&a, &ka), (&b, &kb)]).unwrap();
        let ba = psk_secret(cs, &[(&b, &kb), (&a, &ka)]).unwrap();
        let one = psk_secret(cs, &[(&a, &ka)]).unwrap();
        let renonced = psk_secret(cs, &[(&a2, &ka)]).unwrap();
        let other_value = psk_secret(cs, &[(&a, &kb)]).unwrap();
        assert_eq!(ab.len(), 32);
        for (x, y) in [
            (&ab, &ba),
            (&ab, &one),
            (&one, &renonced),
            (&one, &other_value),
        ] {
            assert_ne!(x, y);
        }
        assert_eq!(psk_secret(cs, &[(&a, &ka), (&b, &kb)]).unwrap(), ab);
    }

    #[test]
    fn resumption_store_keeps_a_window() {
        let mut store = ResumptionPskStore::new(3);
        assert!(store.is_empty());
        for epoch in 0..5u64 {
            store.insert(epoch, Secret::new(vec![epoch as u8; 32]));
        }
        assert_eq!(store.len(), 3);
        assert!(store.get(1).is_none());
        assert_eq!(store.get(4), Some(&Secret::new(vec![4; 32])));
        assert_eq!(store.get(2), Some(&Secret::new(vec![2; 32])));
        // An old epoch inserted late is dropped at once.
        store.insert(0, Secret::new(vec![0; 32]));
        assert!(store.get(0).is_none());
        let mut none = ResumptionPskStore::new(0);
        none.insert(u64::MAX, Secret::new(vec![1; 32]));
        assert!(none.is_empty());
        let mut top = ResumptionPskStore::new(2);
        for epoch in [u64::MAX - 3, u64::MAX - 1, u64::MAX] {
            top.insert(epoch, Secret::new(vec![1; 32]));
        }
        assert_eq!(top.len(), 2);
    }

    #[test]
    fn too_many_psks_are_refused() {
        let id = PreSharedKeyID::external(vec![], vec![]);
        let psk = Secret::new(vec![]);
        let list = vec![(&id, &psk); 65536];
        assert_eq!(
            psk_secret(suite(), &list),
            Err(PskError::TooManyPsks(65536))
        );
    }
}
