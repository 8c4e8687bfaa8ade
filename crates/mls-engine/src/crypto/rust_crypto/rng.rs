//! The randomness handed to `hpke`: the operating system's, or given bytes (a derived
//! encapsulation). `hpke` 0.13 takes `rand_core` 0.9 generators, `hpke` 0.14 takes
//! `rand_core` 0.10 ones; both are implemented here.

use core::convert::Infallible;

use hpke_pq::rand_core as rand_core_010;
use rand_core::{OsRng, TryRngCore as _};

/// A "random" generator that yields given bytes once, or, without given bytes, the operating
/// system's. A draw beyond the given bytes, or a failure of the operating system, yields zeros
/// and is recorded, so the caller can refuse the result instead of panicking.
pub(super) struct Draw<'a> {
    given: Option<&'a [u8]>,
    taken: usize,
    failed: bool,
}

impl<'a> Draw<'a> {
    /// Draws from the operating system.
    fn os() -> Self {
        Self {
            given: None,
            taken: 0,
            failed: false,
        }
    }

    /// Draws `bytes`, then fails.
    fn given(bytes: &'a [u8]) -> Self {
        Self {
            given: Some(bytes),
            taken: 0,
            failed: false,
        }
    }

    /// `given` if some, else the operating system.
    pub(super) fn new(given: Option<&'a [u8]>) -> Self {
        given.map_or_else(Self::os, Self::given)
    }

    /// Whether every draw was served, and, with given bytes, all of them were drawn.
    pub(super) fn sound(&self) -> bool {
        !self.failed && self.given.is_none_or(|bytes| self.taken == bytes.len())
    }

    fn fill(&mut self, dest: &mut [u8]) {
        match self.given {
            None => {
                if OsRng.try_fill_bytes(dest).is_err() {
                    self.failed = true;
                    dest.fill(0);
                }
            }
            Some(bytes) => {
                let rest = bytes.get(self.taken..).unwrap_or_default();
                if dest.len() > rest.len() {
                    self.failed = true;
                    dest.fill(0);
                    return;
                }
                let (now, _) = rest.split_at(dest.len());
                dest.copy_from_slice(now);
                self.taken += dest.len();
            }
        }
    }

    fn next_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

impl rand_core::RngCore for Draw<'_> {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.next_bytes())
    }

    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.next_bytes())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.fill(dest);
    }
}

impl rand_core::CryptoRng for Draw<'_> {}

impl rand_core_010::TryRng for Draw<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_le_bytes(self.next_bytes()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from_le_bytes(self.next_bytes()))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dest);
        Ok(())
    }
}

impl rand_core_010::TryCryptoRng for Draw<'_> {}
