//! [`Payload`]: opaque bytes (an encoded MLSMessage) shared by reference, so that fanning one
//! message out to many mailboxes copies a pointer, not the message.

use std::ops::Deref;
use std::sync::Arc;

use tls_codec::{Deserialize, DeserializeBytes, Serialize, Size, VLByteSlice, VLBytes};

/// Opaque bytes encoded as `opaque payload<V>`; cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Payload(pub Arc<[u8]>);

impl Payload {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Default for Payload {
    fn default() -> Self {
        Self(Arc::from(&[][..]))
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Self(v.into())
    }
}

impl From<&[u8]> for Payload {
    fn from(v: &[u8]) -> Self {
        Self(v.into())
    }
}

impl From<Arc<[u8]>> for Payload {
    fn from(v: Arc<[u8]>) -> Self {
        Self(v)
    }
}

impl Size for Payload {
    fn tls_serialized_len(&self) -> usize {
        VLByteSlice(&self.0).tls_serialized_len()
    }
}

impl Serialize for Payload {
    fn tls_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        VLByteSlice(&self.0).tls_serialize(writer)
    }
}

impl Deserialize for Payload {
    fn tls_deserialize<R: std::io::Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
        Ok(Self(VLBytes::tls_deserialize(bytes)?.as_slice().into()))
    }
}

impl DeserializeBytes for Payload {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (v, rest) = VLBytes::tls_deserialize_bytes(bytes)?;
        Ok((Self(v.as_slice().into()), rest))
    }
}

/// UTF-8 text encoded as `opaque text<V>` (reasons in errors). Decoding replaces invalid UTF-8
/// rather than failing, since the text is only ever shown.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Text(pub String);

impl Text {
    /// Text from anything displayable.
    pub fn new(text: impl std::fmt::Display) -> Self {
        Self(text.to_string())
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Size for Text {
    fn tls_serialized_len(&self) -> usize {
        VLByteSlice(self.0.as_bytes()).tls_serialized_len()
    }
}

impl Serialize for Text {
    fn tls_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        VLByteSlice(self.0.as_bytes()).tls_serialize(writer)
    }
}

impl Deserialize for Text {
    fn tls_deserialize<R: std::io::Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
        let v = VLBytes::tls_deserialize(bytes)?;
        Ok(Self(String::from_utf8_lossy(v.as_slice()).into_owned()))
    }
}

impl DeserializeBytes for Text {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (v, rest) = VLBytes::tls_deserialize_bytes(bytes)?;
        Ok((
            Self(String::from_utf8_lossy(v.as_slice()).into_owned()),
            rest,
        ))
    }
}
