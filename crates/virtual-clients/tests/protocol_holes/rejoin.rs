//! Hole 3: DESIGN row 12 (b), "a new device rejoins every group by external commit", added a
//! second leaf for the virtual client. A device without state of the group now finds the
//! virtual client's leaf in the GroupInfo's tree by credential and its external commit
//! removes it (the resync Remove), so the virtual client keeps one leaf; all siblings
//! follow. (Against plain vmls members here; the OpenMLS-member variant is not done.)

use mls_engine::codec::Credential;
use mls_engine::crypto::CipherSuite;
use mls_engine::group::CommitOptions;
use mls_engine::messages::KeyPackageParams;
use virtual_clients::emulator::EmulatorClient;

use crate::common::{lifetime, suite, svc, NOW};
use crate::world::{bytes, World, GROUP};

const CS: CipherSuite = CipherSuite(1);

#[test]
fn a_new_device_rejoins_by_external_commit_and_the_virtual_client_keeps_one_leaf() {
    let mut w = World::new(CS, 2);
    // A third device joins the emulation group; no state transfer.
    let key = suite(CS).signature_generate_key_pair().unwrap();
    let device = Credential::basic(b"alice-2".to_vec());
    let kp = KeyPackageParams::new(CS, device.clone(), lifetime())
        .with_leaf(EmulatorClient::emulation_leaf_params(CS, device))
        .build_fresh(suite(CS), &key)
        .unwrap();
    let out = w.alice[0]
        .add_emulator(&svc(), kp.key_package.clone(), NOW)
        .unwrap();
    w.alice[0].confirm_emulation_commit(&svc()).unwrap();
    w.alice[1]
        .process_emulation(&svc(), &bytes(&out.commit), NOW)
        .unwrap();
    let vc = Credential::basic(b"alice".to_vec());
    let new =
        EmulatorClient::join(&svc(), out.welcome.as_ref().unwrap(), &kp, key, vc, NOW).unwrap();
    assert!(new.group(GROUP).is_none());
    w.alice.push(new);

    // It announces the rejoin, then joins by external commit from Carol's GroupInfo.
    let out = w.alice[2]
        .announce_external_join(&svc(), GROUP, CommitOptions::new(), NOW)
        .unwrap();
    w.alice[2].confirm_emulation_commit(&svc()).unwrap();
    for d in 0..2 {
        w.alice[d]
            .process_emulation(&svc(), &bytes(&out.commit), NOW)
            .unwrap();
    }
    let info = w.carol.group_info(&svc(), true, true).unwrap();
    let commit = w.alice[2]
        .begin_external_join(&svc(), &info, None, NOW)
        .unwrap();
    w.alice[2].confirm_external_join(GROUP).unwrap();
    w.carol.process_bytes(&svc(), &bytes(&commit), NOW).unwrap();
    for d in 0..2 {
        w.alice[d]
            .follow_external_join(&svc(), &info, None, &commit, NOW)
            .unwrap();
    }
    assert_eq!(
        w.carol.members().len(),
        2,
        "one leaf for the virtual client"
    );
    w.assert_agree();
    // And the three devices go on as one.
    w.alice_commits(2, vec![]);
    w.alice_commits(0, vec![]);
    w.assert_agree();
}
