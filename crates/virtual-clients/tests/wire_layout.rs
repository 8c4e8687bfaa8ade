//! Every struct of the draft (§5.2-§5.5) encodes exactly as its TLS presentation language
//! says: a hand-written expected byte layout per struct, a round trip, and refusals of
//! malformed encodings (MLS varint lengths, RFC 9420 §2.1.2).

use mls_engine::codec::{decode_exact, encode, Extension, ExtensionType, KeyPackageRef};
use mls_engine::extensions::SafeAadItem;
use proptest::prelude::*;
use tls_codec::VLBytes;
use virtual_clients::wire::{
    ActionType, DerivationInfoExtension, EpochInfoTbe, ExternalJoin, HashInput, KeyPackageInfo,
    KeyPackageUpload, VirtualClientAction, WireError, DERIVATION_INFO_EXTENSION_TYPE,
};

fn vl(bytes: &[u8]) -> VLBytes {
    VLBytes::new(bytes.to_vec())
}

/// Encodes `value`, compares with `expected`, and decodes `expected` back to `value`.
fn layout<T>(value: &T, expected: &[u8])
where
    T: tls_codec::Serialize + tls_codec::DeserializeBytes + PartialEq + std::fmt::Debug,
{
    assert_eq!(encode(value).unwrap(), expected, "layout of {value:?}");
    assert_eq!(&decode_exact::<T>(expected).unwrap(), value);
    // Trailing bytes and truncation are refused.
    let mut trailing = expected.to_vec();
    trailing.push(0);
    assert!(decode_exact::<T>(&trailing).is_err());
    assert!(decode_exact::<T>(&expected[..expected.len() - 1]).is_err());
}

#[test]
fn hash_input() {
    // struct { u32 leaf_index; opaque random<V>; }
    let v = HashInput {
        leaf_index: 0x0102_0304,
        random: vl(&[0xaa, 0xbb, 0xcc]),
    };
    layout(&v, &[0x01, 0x02, 0x03, 0x04, 0x03, 0xaa, 0xbb, 0xcc]);
    // 32 random octets: a one-octet varint length (32 < 64).
    let v = HashInput {
        leaf_index: 7,
        random: vl(&[0x5a; 32]),
    };
    let mut expected = vec![0, 0, 0, 7, 0x20];
    expected.extend_from_slice(&[0x5a; 32]);
    layout(&v, &expected);
    // 64 octets: a two-octet varint length 0x4040.
    let v = HashInput {
        leaf_index: 0xffff_ffff,
        random: vl(&[1; 64]),
    };
    let mut expected = vec![0xff, 0xff, 0xff, 0xff, 0x40, 0x40];
    expected.extend_from_slice(&[1; 64]);
    layout(&v, &expected);
    // Empty random.
    layout(
        &HashInput {
            leaf_index: 0,
            random: vl(&[]),
        },
        &[0, 0, 0, 0, 0],
    );
}

#[test]
fn epoch_info_tbe() {
    // struct { uint32 leaf_index; opaque random<V>; }
    let v = EpochInfoTbe {
        leaf_index: 0x0000_0102,
        random: vl(&[0x10, 0x20]),
    };
    layout(&v, &[0x00, 0x00, 0x01, 0x02, 0x02, 0x10, 0x20]);
    // The same layout as HashInput with the same fields.
    assert_eq!(encode(&v).unwrap(), encode(&v.hash_input()).unwrap());
}

#[test]
fn derivation_info_extension() {
    // struct { opaque epoch_id<V>; opaque ciphertext<V>; }
    let v = DerivationInfoExtension {
        epoch_id: vl(&[0x11, 0x22]),
        ciphertext: vl(&[0x33]),
    };
    layout(&v, &[0x02, 0x11, 0x22, 0x01, 0x33]);
    // As a LeafNode extension: struct { ExtensionType extension_type; opaque extension_data<V>; }
    let e = v.to_extension().unwrap();
    assert_eq!(DERIVATION_INFO_EXTENSION_TYPE, ExtensionType(0xF0C1));
    assert_eq!(
        encode(&e).unwrap(),
        [0xF0, 0xC1, 0x05, 0x02, 0x11, 0x22, 0x01, 0x33]
    );
    assert_eq!(DerivationInfoExtension::from_extension(&e).unwrap(), v);
    // A realistic one: a 32-octet epoch_id and a 65-octet ciphertext (two-octet length).
    let v = DerivationInfoExtension {
        epoch_id: vl(&[0xe0; 32]),
        ciphertext: vl(&[0xc0; 65]),
    };
    let mut expected = vec![0x20];
    expected.extend_from_slice(&[0xe0; 32]);
    expected.extend_from_slice(&[0x40, 0x41]);
    expected.extend_from_slice(&[0xc0; 65]);
    layout(&v, &expected);
    // Trailing bytes inside extension_data are refused.
    let bad = Extension::new(
        DERIVATION_INFO_EXTENSION_TYPE,
        vec![0x02, 0x11, 0x22, 0x01, 0x33, 0x00],
    );
    assert!(matches!(
        DerivationInfoExtension::from_extension(&bad),
        Err(WireError::Codec(_))
    ));
}

#[test]
fn action_type() {
    // enum { reserved(0), key_package_upload(1), external_join(2), (255) }: one octet.
    layout(&ActionType::KeyPackageUpload, &[0x01]);
    layout(&ActionType::ExternalJoin, &[0x02]);
    assert!(decode_exact::<ActionType>(&[0x00]).is_err());
    assert!(decode_exact::<ActionType>(&[0x03]).is_err());
    assert!(decode_exact::<ActionType>(&[0xff]).is_err());
}

fn info(reference: &[u8], random: &[u8]) -> KeyPackageInfo {
    KeyPackageInfo {
        key_package_ref: KeyPackageRef(vl(reference)),
        random: vl(random),
    }
}

#[test]
fn key_package_info() {
    // struct { KeyPackageRef key_package_ref; opaque random<V>; } (row 9: KeyPackageRef is
    // opaque HashReference<V>, one length prefix)
    layout(
        &info(&[0x44, 0x45], &[0x55]),
        &[0x02, 0x44, 0x45, 0x01, 0x55],
    );
}

fn upload() -> KeyPackageUpload {
    KeyPackageUpload {
        epoch_id: vl(&[0x66]),
        key_package_info: vec![info(&[0x44, 0x45], &[0x55]), info(&[0x46], &[])],
    }
}

const UPLOAD: &[u8] = &[
    0x01, 0x66, // epoch_id<V>
    0x08, // key_package_info<V>: 8 octets
    0x02, 0x44, 0x45, 0x01, 0x55, // KeyPackageInfo 1
    0x01, 0x46, 0x00, // KeyPackageInfo 2
];

#[test]
fn key_package_upload() {
    // struct { opaque epoch_id<V>; KeyPackageInfo key_package_info<V>; }
    layout(&upload(), UPLOAD);
    layout(
        &KeyPackageUpload {
            epoch_id: vl(&[]),
            key_package_info: vec![],
        },
        &[0x00, 0x00],
    );
    // A vector length that splits an element is refused.
    assert!(decode_exact::<KeyPackageUpload>(&[0x01, 0x66, 0x04, 0x02, 0x44, 0x45, 0x01]).is_err());
}

#[test]
fn external_join() {
    // struct { opaque group_id<V>; }
    layout(
        &ExternalJoin {
            group_id: vl(b"grp"),
        },
        &[0x03, b'g', b'r', b'p'],
    );
}

#[test]
fn virtual_client_action() {
    // struct { ActionType action_type; select (action_type) { ... } }
    let join = VirtualClientAction::ExternalJoin(ExternalJoin {
        group_id: vl(b"grp"),
    });
    layout(&join, &[0x02, 0x03, b'g', b'r', b'p']);
    assert_eq!(join.action_type(), ActionType::ExternalJoin);

    let kp = VirtualClientAction::KeyPackageUpload(upload());
    let mut expected = vec![0x01];
    expected.extend_from_slice(UPLOAD);
    layout(&kp, &expected);
    assert_eq!(kp.action_type(), ActionType::KeyPackageUpload);
    assert_eq!(VirtualClientAction::from_bytes(&expected).unwrap(), kp);

    // reserved(0), unknown types, and a body of the other arm are refused.
    assert!(VirtualClientAction::from_bytes(&[0x00, 0x03, b'g', b'r', b'p']).is_err());
    assert!(VirtualClientAction::from_bytes(&[0x03, 0x03, b'g', b'r', b'p']).is_err());
    assert!(VirtualClientAction::from_bytes(&[0x01, 0x03, b'g', b'r', b'p']).is_err());
    assert!(VirtualClientAction::from_bytes(&[]).is_err());

    // As the SafeAAD item of VC_COMPONENT_ID (row 13):
    // struct { ComponentID component_id; opaque aad_item_data<V>; }
    let item = join.to_safe_aad_item().unwrap();
    assert_eq!(
        encode(&item).unwrap(),
        [0x00, 0x00, 0x00, 0x06, 0x05, 0x02, 0x03, b'g', b'r', b'p']
    );
    assert_eq!(
        VirtualClientAction::from_safe_aad_item(
            &decode_exact::<SafeAadItem>(&encode(&item).unwrap()).unwrap()
        )
        .unwrap(),
        join
    );
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn action() -> impl Strategy<Value = VirtualClientAction> {
    prop_oneof![
        bytes(80)
            .prop_map(|g| VirtualClientAction::ExternalJoin(ExternalJoin { group_id: vl(&g) })),
        (
            bytes(40),
            proptest::collection::vec((bytes(40), bytes(40)), 0..5)
        )
            .prop_map(|(e, infos)| {
                VirtualClientAction::KeyPackageUpload(KeyPackageUpload {
                    epoch_id: vl(&e),
                    key_package_info: infos.iter().map(|(r, x)| info(r, x)).collect(),
                })
            }),
    ]
}

proptest! {
    #[test]
    fn round_trips(leaf_index in any::<u32>(), a in bytes(100), b in bytes(100), act in action()) {
        let h = HashInput { leaf_index, random: vl(&a) };
        prop_assert_eq!(decode_exact::<HashInput>(&encode(&h).unwrap()).unwrap(), h);
        let t = EpochInfoTbe { leaf_index, random: vl(&a) };
        prop_assert_eq!(decode_exact::<EpochInfoTbe>(&encode(&t).unwrap()).unwrap(), t);
        let d = DerivationInfoExtension { epoch_id: vl(&a), ciphertext: vl(&b) };
        prop_assert_eq!(DerivationInfoExtension::from_extension(&d.to_extension().unwrap()).unwrap(), d);
        prop_assert_eq!(VirtualClientAction::from_bytes(&act.to_bytes().unwrap()).unwrap(), act);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in bytes(64)) {
        let _ = VirtualClientAction::from_bytes(&input);
        let _ = decode_exact::<DerivationInfoExtension>(&input);
        let _ = decode_exact::<EpochInfoTbe>(&input);
        let _ = decode_exact::<KeyPackageUpload>(&input);
    }
}
