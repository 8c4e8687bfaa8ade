//! (a), (b) Groups created with GroupContext extensions (RFC 9420 §11.1, §7.2): a
//! `required_capabilities` extension requiring a private-use extension type and an
//! `external_senders` extension, set at creation by OpenMLS and by the engine. Joiners of
//! the other side that list the type join from the Welcome; a KeyPackage that does not list
//! it is refused by the adding member (OpenMLS refusing an engine KeyPackage, the engine
//! refusing an OpenMLS one), and the group stays in agreement.

use mls_engine::codec::{
    Credential, ExtensionPayload as _, ExtensionType, ExternalSender, ExternalSendersExtension,
    RequiredCapabilitiesExtension, SignaturePublicKey,
};
use openmls::prelude::{
    BasicCredential, Capabilities, Extension as OmlsExtension, ExtensionType as OmlsExtensionType,
    Extensions, ExternalSender as OmlsExternalSender, KeyPackage,
    RequiredCapabilitiesExtension as OmlsRequired,
};

use crate::engine::suite;
use crate::groups::{add, Handshakes, Joiner};
use crate::harness::{to_bytes, OpenMlsClient, SUITES};
use crate::roster::{Member, Roster};
use crate::vmls::VmlsClient;

/// The private-use extension type every member must support.
const REQUIRED: u16 = 0xff07;

/// An OpenMLS joiner whose leaf lists [`REQUIRED`] if `capable`.
fn openmls_joiner(name: &str, suite: u16, capable: bool) -> Joiner {
    let client = OpenMlsClient::new(name.as_bytes(), suite);
    let mut builder = KeyPackage::builder();
    if capable {
        builder = builder.leaf_node_capabilities(
            Capabilities::builder()
                .extensions(vec![OmlsExtensionType::Unknown(REQUIRED)])
                .build(),
        );
    }
    let kp = client.key_package_with(builder).key_package().clone();
    Joiner::OpenMls(Box::new(client), Box::new(kp))
}

/// An engine joiner whose leaf lists [`REQUIRED`] if `capable`.
fn vmls_joiner(name: &str, suite: u16, capable: bool) -> Joiner {
    let mut client = VmlsClient::new(name.as_bytes(), suite);
    if capable {
        client.capability_extensions.push(ExtensionType(REQUIRED));
    }
    let kp = client.key_package();
    Joiner::Vmls(Box::new(client), kp)
}

#[test]
fn a_b_groups_created_with_group_context_extensions() {
    let hs = Handshakes::Public;
    for suite_id in SUITES {
        let step = |s: &str| format!("suite {suite_id}: {s}");
        let ds = suite(suite_id)
            .signature_generate_key_pair()
            .expect("a signature key");

        // OpenMLS creates the group.
        let alice = OpenMlsClient::new(b"alice", suite_id);
        let extensions = Extensions::from_vec(vec![
            OmlsExtension::RequiredCapabilities(OmlsRequired::new(
                &[OmlsExtensionType::Unknown(REQUIRED)],
                &[],
                &[],
            )),
            OmlsExtension::ExternalSenders(vec![OmlsExternalSender::new(
                ds.public_key.clone().into(),
                BasicCredential::new(b"ds".to_vec()).into(),
            )]),
        ])
        .expect("valid extensions");
        let group = alice.create_group_with(
            alice
                .group_builder_with_policy(hs.policy())
                .with_capabilities(
                    Capabilities::builder()
                        .extensions(vec![OmlsExtensionType::Unknown(REQUIRED)])
                        .build(),
                )
                .with_group_context_extensions(extensions),
        );
        let mut roster = Roster::new("alice", Member::openmls(alice, group));
        // An engine KeyPackage without the required type is refused by OpenMLS.
        if let (Member::OpenMls { client, group }, Joiner::Vmls(_, kp)) = (
            roster.get("alice"),
            vmls_joiner("incapable", suite_id, false),
        ) {
            let kp = client
                .validate_key_package(&kp)
                .expect("the KeyPackage itself is valid");
            let refused = group.add_members(&client.provider, &client.signer, &[kp]);
            assert!(
                refused.is_err(),
                "{}",
                step("OpenMLS refuses an incapable leaf")
            );
        }
        add(
            &mut roster,
            &step("alice adds bob (vmls) and carol (OpenMLS)"),
            "alice",
            vec![
                ("bob", vmls_joiner("bob", suite_id, true)),
                ("carol", openmls_joiner("carol", suite_id, true)),
            ],
            true,
            hs,
            1,
        );
        let context = roster
            .get("bob")
            .as_vmls_client()
            .group()
            .group_context()
            .clone();
        let required = RequiredCapabilitiesExtension::find_in(&context.extensions)
            .expect("decodes")
            .expect("the engine sees required_capabilities");
        assert_eq!(required.extension_types, vec![ExtensionType(REQUIRED)]);
        // An OpenMLS KeyPackage without the required type is refused by the engine.
        let Joiner::OpenMls(_, incapable) = openmls_joiner("incapable", suite_id, false) else {
            unreachable!()
        };
        let before = roster
            .get("bob")
            .as_vmls_client()
            .group()
            .to_bytes()
            .expect("encodes");
        let refused = roster
            .get("bob")
            .as_vmls_client()
            .try_add(&[to_bytes(&openmls::prelude::MlsMessageOut::from(*incapable))]);
        assert!(
            refused.is_err(),
            "{}: {refused:?}",
            step("the engine refuses an incapable leaf")
        );
        assert_eq!(
            roster
                .get("bob")
                .as_vmls_client()
                .group()
                .to_bytes()
                .expect("encodes"),
            before,
            "{}",
            step("the refused commit left no trace")
        );
        add(
            &mut roster,
            &step("bob adds dave (OpenMLS)"),
            "bob",
            vec![("dave", openmls_joiner("dave", suite_id, true))],
            true,
            hs,
            2,
        );
        roster.exchange_application_messages(&step("OpenMLS-created group"));

        // The engine creates the group.
        let mut vera = VmlsClient::new(b"vera", suite_id);
        vera.capability_extensions.push(ExtensionType(REQUIRED));
        vera.create_group_with(
            b"engine group with extensions",
            vec![
                RequiredCapabilitiesExtension {
                    extension_types: vec![ExtensionType(REQUIRED)],
                    proposal_types: vec![],
                    credential_types: vec![],
                }
                .to_extension()
                .expect("encodes"),
                ExternalSendersExtension {
                    external_senders: vec![ExternalSender {
                        signature_key: SignaturePublicKey::from(ds.public_key.clone()),
                        credential: Credential::basic(b"ds".to_vec()),
                    }],
                }
                .to_extension()
                .expect("encodes"),
            ],
        );
        let mut roster = Roster::new("vera", Member::vmls(vera));
        add(
            &mut roster,
            &step("vera adds olga (OpenMLS) and vic (vmls)"),
            "vera",
            vec![
                ("olga", openmls_joiner("olga", suite_id, true)),
                ("vic", vmls_joiner("vic", suite_id, true)),
            ],
            true,
            hs,
            1,
        );
        if let Member::OpenMls { group, .. } = roster.get("olga") {
            let required = group
                .extensions()
                .required_capabilities()
                .expect("OpenMLS sees required_capabilities");
            assert_eq!(
                required.extension_types(),
                &[OmlsExtensionType::Unknown(REQUIRED)]
            );
            assert!(group.extensions().external_senders().is_some());
        }
        add(
            &mut roster,
            &step("olga adds vince (vmls)"),
            "olga",
            vec![("vince", vmls_joiner("vince", suite_id, true))],
            true,
            hs,
            2,
        );
        roster.exchange_application_messages(&step("engine-created group"));
    }
}

/// (b) The engine adds OpenMLS clients whose KeyPackages carry the `last_resort` KeyPackage
/// extension (a non-default type, listed in the leaf's capabilities) and a private-use
/// extension type in the capabilities; they join and commit. A KeyPackage whose capabilities
/// omit `last_resort` is refused (§10).
#[test]
fn b_vmls_adds_openmls_last_resort_key_packages() {
    let hs = Handshakes::Public;
    for suite_id in SUITES {
        let step = |s: &str| format!("suite {suite_id}: {s}");
        // `listed`: whether the leaf's capabilities list `last_resort` (RFC 9420 §10: the
        // KeyPackage's extension types MUST be listed; OpenMLS leaves that to its caller when
        // the capabilities are given).
        let last_resort_with = |name: &str, listed: bool| {
            let client = OpenMlsClient::new(name.as_bytes(), suite_id);
            let mut types = vec![OmlsExtensionType::Unknown(REQUIRED)];
            if listed {
                types.push(OmlsExtensionType::LastResort);
            }
            let kp = client
                .key_package_with(
                    KeyPackage::builder()
                        .mark_as_last_resort()
                        .leaf_node_capabilities(Capabilities::builder().extensions(types).build()),
                )
                .key_package()
                .clone();
            assert!(kp.last_resort(), "{name}'s KeyPackage is last-resort");
            Joiner::OpenMls(Box::new(client), Box::new(kp))
        };
        let last_resort = |name: &str| last_resort_with(name, true);
        let mut roster = Roster::new("vera", {
            let mut vera = VmlsClient::new(b"vera", suite_id);
            vera.create_group(b"last resort");
            Member::vmls(vera)
        });
        let Joiner::OpenMls(_, unlisted) = last_resort_with("unlisted", false) else {
            unreachable!()
        };
        let refused = roster
            .get("vera")
            .as_vmls_client()
            .try_add(&[to_bytes(&openmls::prelude::MlsMessageOut::from(*unlisted))]);
        assert!(
            matches!(
                refused,
                Err(mls_engine::group::GroupError::InvalidProposalList(_))
            ),
            "{}: {refused:?}",
            step("last_resort not in the capabilities is refused (§10)")
        );
        add(
            &mut roster,
            &step("vera adds last-resort olga and oscar"),
            "vera",
            vec![
                ("olga", last_resort("olga")),
                ("oscar", last_resort("oscar")),
            ],
            true,
            hs,
            1,
        );
        crate::groups::self_update(&mut roster, &step("olga updates"), "olga", hs, 2);
        crate::groups::self_update(&mut roster, &step("vera updates"), "vera", hs, 3);
        roster.exchange_application_messages(&step("at the end"));
    }
}
