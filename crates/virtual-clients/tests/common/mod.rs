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

/// The `n` emulator clients of virtual client `name` (credential `name`; devices `name-0`..):
/// device 0 creates the emulation group (suite `cipher_suite`) and adds the others in one
/// Commit; they join from its Welcome. Messages are passed directly.
pub fn emulators(
    cipher_suite: mls_engine::crypto::CipherSuite,
    name: &str,
    n: usize,
) -> Vec<virtual_clients::emulator::EmulatorClient> {
    use mls_engine::codec::{Credential, Proposal};
    use mls_engine::group::{CommitOptions, OwnLeaf};
    use mls_engine::messages::{HpkeKeySource, KeyPackageParams};
    use virtual_clients::emulator::EmulatorClient;

    let cs = suite(cipher_suite);
    let vc = Credential::basic(name.as_bytes().to_vec());
    let device = |i: usize| Credential::basic(format!("{name}-{i}").into_bytes());
    let mut first = EmulatorClient::create(
        &svc(),
        format!("{name}-emulation").into_bytes(),
        cipher_suite,
        OwnLeaf {
            params: EmulatorClient::emulation_leaf_params(cipher_suite, device(0)),
            encryption_key: HpkeKeySource::Generate,
            signature_key: cs.signature_generate_key_pair().unwrap(),
        },
        lifetime(),
        vc.clone(),
    )
    .unwrap();
    let mut joiners = Vec::new();
    let mut options = CommitOptions::new();
    for i in 1..n {
        let key = cs.signature_generate_key_pair().unwrap();
        let kp = KeyPackageParams::new(cipher_suite, device(i), lifetime())
            .with_leaf(EmulatorClient::emulation_leaf_params(
                cipher_suite,
                device(i),
            ))
            .build_fresh(cs, &key)
            .unwrap();
        options = options.proposal(Proposal::add(kp.key_package.clone()));
        joiners.push((kp, key));
    }
    let mut all = Vec::with_capacity(n);
    if joiners.is_empty() {
        all.push(first);
        return all;
    }
    let out = first.commit_emulation(&svc(), options, NOW).unwrap();
    first.confirm_emulation_commit(&svc()).unwrap();
    let welcome = out.welcome.unwrap();
    all.push(first);
    for (kp, key) in joiners {
        all.push(EmulatorClient::join(&svc(), &welcome, &kp, key, vc.clone(), NOW).unwrap());
    }
    all
}
