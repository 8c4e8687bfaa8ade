//! Pre-shared key identifiers (RFC 9420 §8.4).

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

/// `PSKType` (§8.4): how a PSK was provisioned. `reserved(0)` is refused when decoding.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum PSKType {
    /// `external(1)`: a PSK provided by the application.
    External = 1,
    /// `resumption(2)`: the `resumption_psk` of an epoch of a group.
    Resumption = 2,
}

/// `ResumptionPSKUsage` (§8.4): why a resumption PSK is injected. `reserved(0)` is refused
/// when decoding.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum ResumptionPSKUsage {
    /// `application(1)`: used by the application.
    Application = 1,
    /// `reinit(2)`: reinitialization (§11.2).
    Reinit = 2,
    /// `branch(3)`: subgroup branching (§11.3).
    Branch = 3,
}

/// The `external` arm of `PreSharedKeyID` (§8.4).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ExternalPSK {
    /// `opaque psk_id<V>`: the application's name for the PSK.
    pub psk_id: VLBytes,
}

/// The `resumption` arm of `PreSharedKeyID` (§8.4).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ResumptionPSK {
    /// Why the PSK is injected.
    pub usage: ResumptionPSKUsage,
    /// `opaque psk_group_id<V>`: the group whose `resumption_psk` this is.
    pub psk_group_id: VLBytes,
    /// `uint64 psk_epoch`: the epoch whose `resumption_psk` this is.
    pub psk_epoch: u64,
}

/// `PreSharedKeyID` without its nonce: `psktype` followed by the arm it selects (§8.4).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub enum PSKKind {
    /// `psktype = external`.
    #[tls_codec(discriminant = 1)]
    External(ExternalPSK),
    /// `psktype = resumption`.
    #[tls_codec(discriminant = 2)]
    Resumption(ResumptionPSK),
}

impl PSKKind {
    /// The `PSKType` of this identifier.
    pub fn psk_type(&self) -> PSKType {
        match self {
            PSKKind::External(_) => PSKType::External,
            PSKKind::Resumption(_) => PSKType::Resumption,
        }
    }
}

/// `PreSharedKeyID` (§8.4): names one PSK injected into the key schedule.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PreSharedKeyID {
    /// `psktype` and the fields it selects.
    pub psk: PSKKind,
    /// `opaque psk_nonce<V>`: fresh random bytes of length `KDF.Nh` for each injection.
    pub psk_nonce: VLBytes,
}

impl PreSharedKeyID {
    /// An external PSK identifier.
    pub fn external(psk_id: Vec<u8>, psk_nonce: Vec<u8>) -> Self {
        Self {
            psk: PSKKind::External(ExternalPSK {
                psk_id: psk_id.into(),
            }),
            psk_nonce: psk_nonce.into(),
        }
    }

    /// A resumption PSK identifier for `psk_epoch` of group `psk_group_id`.
    pub fn resumption(
        usage: ResumptionPSKUsage,
        psk_group_id: Vec<u8>,
        psk_epoch: u64,
        psk_nonce: Vec<u8>,
    ) -> Self {
        Self {
            psk: PSKKind::Resumption(ResumptionPSK {
                usage,
                psk_group_id: psk_group_id.into(),
                psk_epoch,
            }),
            psk_nonce: psk_nonce.into(),
        }
    }

    /// Whether `psk_nonce` has the length `KDF.Nh` (`hash_len`) the RFC requires (§8.4,
    /// checked when validating PreSharedKey proposals, §12.2).
    pub fn has_valid_nonce_length(&self, hash_len: usize) -> bool {
        self.psk_nonce.as_slice().len() == hash_len
    }
}

/// `PSKLabel` (§8.4): the context of `ExpandWithLabel(psk_extracted, "derived psk", ...)`.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PSKLabel {
    /// The PSK's identifier.
    pub id: PreSharedKeyID,
    /// The PSK's position in the list.
    pub index: u16,
    /// The number of PSKs in the list.
    pub count: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, encode, CodecError};

    #[test]
    fn external_id_round_trips() {
        let id = PreSharedKeyID::external(vec![1, 2, 3], vec![9; 32]);
        let bytes = encode(&id).unwrap();
        // psktype, psk_id<V>, psk_nonce<V>.
        assert_eq!(&bytes[..5], &[1, 3, 1, 2, 3]);
        assert_eq!(bytes[5], 32);
        assert_eq!(bytes.len(), 6 + 32);
        assert_eq!(decode_exact::<PreSharedKeyID>(&bytes).unwrap(), id);
        assert_eq!(id.psk.psk_type(), PSKType::External);
        assert!(id.has_valid_nonce_length(32));
        assert!(!id.has_valid_nonce_length(48));
    }

    #[test]
    fn resumption_id_round_trips() {
        let id = PreSharedKeyID::resumption(ResumptionPSKUsage::Branch, vec![7; 4], 513, vec![]);
        let bytes = encode(&id).unwrap();
        assert_eq!(
            bytes,
            [2, 3, 4, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 2, 1, 0].to_vec()
        );
        assert_eq!(decode_exact::<PreSharedKeyID>(&bytes).unwrap(), id);
        assert_eq!(id.psk.psk_type(), PSKType::Resumption);
    }

    #[test]
    fn reserved_and_unknown_values_are_refused() {
        // psktype reserved(0).
        assert!(decode_exact::<PreSharedKeyID>(&[0, 0, 0]).is_err());
        // psktype 3 is not defined.
        assert!(decode_exact::<PreSharedKeyID>(&[3, 0, 0]).is_err());
        // usage reserved(0) and 4.
        assert!(decode_exact::<PreSharedKeyID>(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_exact::<PreSharedKeyID>(&[2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn truncated_and_trailing_input_is_refused() {
        let id = PreSharedKeyID::external(vec![1, 2, 3], vec![9; 4]);
        let bytes = encode(&id).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_exact::<PreSharedKeyID>(&bytes[..cut]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            decode_exact::<PreSharedKeyID>(&long),
            Err(CodecError::TrailingData(1))
        );
    }

    #[test]
    fn psk_label_layout() {
        let label = PSKLabel {
            id: PreSharedKeyID::external(vec![0xaa], vec![0xbb]),
            index: 1,
            count: 2,
        };
        assert_eq!(
            encode(&label).unwrap(),
            vec![1, 1, 0xaa, 1, 0xbb, 0, 1, 0, 2]
        );
    }
}
