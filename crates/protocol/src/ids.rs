//! Names and positions: who ([`ClientId`]), which group ([`GroupId`]), where in a group's log
//! ([`Sequence`]), where among one virtual client's messages in a group ([`VcSequence`]), which
//! send ([`MessageId`]) and where in a device's mailbox ([`MailboxCursor`]).

use std::fmt;

use tls_codec::{
    Deserialize, DeserializeBytes, Serialize, Size, TlsDeserialize, TlsDeserializeBytes,
    TlsSerialize, TlsSize, VLByteSlice, VLBytes,
};

/// Writes `bytes` as text when they are printable ASCII, else as hex.
fn fmt_id(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        f.write_str(&String::from_utf8_lossy(bytes))
    } else {
        f.write_str("0x")?;
        bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// An identifier made of opaque bytes, encoded as `opaque id<V>`.
macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub Vec<u8>);

        impl $name {
            /// An identifier from anything byte-like (`"alice-phone"`, a credential identity).
            pub fn new(id: impl AsRef<[u8]>) -> Self {
                Self(id.as_ref().to_vec())
            }

            /// The identifier's bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "("))?;
                fmt_id(&self.0, f)?;
                f.write_str(")")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_id(&self.0, f)
            }
        }

        impl Size for $name {
            fn tls_serialized_len(&self) -> usize {
                VLByteSlice(&self.0).tls_serialized_len()
            }
        }

        impl Serialize for $name {
            fn tls_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
                VLByteSlice(&self.0).tls_serialize(writer)
            }
        }

        impl Deserialize for $name {
            fn tls_deserialize<R: std::io::Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
                Ok(Self(VLBytes::tls_deserialize(bytes)?.into()))
            }
        }

        impl DeserializeBytes for $name {
            fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
                let (v, rest) = VLBytes::tls_deserialize_bytes(bytes)?;
                Ok((Self(v.into()), rest))
            }
        }
    };
}

opaque_id!(
    /// The delivery service's name for a client: a device (plain client or emulator client) or a
    /// virtual client. It is the identity of the client's MLS credential, so the service can
    /// match it against the leaves of a group's ratchet tree.
    ClientId
);

opaque_id!(
    /// An MLS `group_id`.
    GroupId
);

/// A position counter encoded as `uint64`.
macro_rules! position {
    ($(#[$doc:meta])* $name:ident, $fmt:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
            TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
        )]
        pub struct $name(pub u64);

        impl $name {
            /// The position after this one.
            pub fn next(self) -> Self {
                Self(self.0.saturating_add(1))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, $fmt, self.0)
            }
        }
    };
}

position!(
    /// Position of a message in its group's log: 0 for the first message, then +1 per accepted
    /// message. The log is totally ordered and every member sees the same order.
    Sequence,
    "#{}"
);

position!(
    /// Position of a message among the messages one virtual client sent in one group: 0 for its
    /// first, then +1 per accepted message of that virtual client in that group (of any kind).
    VcSequence,
    "vc#{}"
);

position!(
    /// Position of an item in one device's mailbox: strictly increasing, never reused. A device
    /// acknowledges up to a cursor ([`crate::Ack`]) and reads after one.
    MailboxCursor,
    "mb#{}"
);

/// A sender-chosen identifier of one send (16 random octets): the service accepts a message id
/// once per sending device, and answers a retried send with the first answer, so a send whose
/// answer was lost can be retried safely (idempotent resend).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// The id of a send of `message`: the first 16 octets of SHA-256(message). An MLS message is
    /// unique (it is signed or encrypted with fresh nonces), so a retry of the same bytes has
    /// the same id and a different message a different one.
    pub fn of_message(message: &[u8]) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(message);
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageId(")?;
        fmt_id(&self.0, f)?;
        f.write_str(")")
    }
}
