//! Helpers shared by the integration tests of this crate.
// Each test binary compiles this module on its own and uses a different part of it.
#![allow(dead_code)]

use mls_engine::codec::Lifetime;
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto, SuiteProvider};
use mls_engine::group::Services;

/// The crypto provider of every test.
pub static P: RustCrypto = RustCrypto;
/// The fixed time the tests run at.
pub const NOW: u64 = 1_700_000_000;

/// Services with the default identity provider and no PSKs.
pub fn svc() -> Services<'static> {
    Services::new(&P)
}

/// The provider's implementation of `cipher_suite`.
pub fn suite(cipher_suite: CipherSuite) -> &'static dyn SuiteProvider {
    P.suite(cipher_suite).unwrap()
}

/// A lifetime around `NOW`: valid from an hour before to 90 days after.
pub fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 3600 * 24 * 90,
    }
}
