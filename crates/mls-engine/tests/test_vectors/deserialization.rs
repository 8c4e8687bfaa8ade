//! `deserialization.json`: variable-length vector headers (RFC 9420 §2.1.2).
//!
//! For each case: the header decodes to the given length and is the minimal encoding of it
//! (the length re-encodes to the same header). Then the engine's decoder is run on the header
//! followed by a body: for lengths up to 1 MiB, `opaque x<V>` with exactly `length` bytes
//! decodes (to `length` bytes) and re-encodes to the input; for every length, a body one byte
//! short is refused.

use mls_engine::codec::{decode_exact, encode, CodecError, VLBytes};
use tls_codec::{Serialize as _, TlsVarInt};

use crate::common::{check_eq, parse, unhex, CaseResult, Outcome};

/// Largest body the runner builds in memory.
const MAX_BODY: usize = 1 << 20;

#[derive(serde::Deserialize)]
struct Case {
    vlbytes_header: String,
    length: u64,
}

fn run_case(case: &Case) -> CaseResult {
    let header = unhex(&case.vlbytes_header)?;
    let (length, header_len) = tls_codec::vlen::read_length(&mut header.as_slice())
        .map_err(|e| format!("header does not decode: {e:?}"))?;
    check_eq("decoded length", length as u64, case.length)?;
    check_eq("header bytes read", header_len, header.len())?;

    let encoded = TlsVarInt::try_from(case.length)
        .and_then(|v| v.tls_serialize_detached())
        .map_err(|e| format!("length does not encode: {e:?}"))?;
    check_eq(
        "re-encoded header",
        hex::encode(encoded),
        case.vlbytes_header.clone(),
    )?;

    let length = usize::try_from(case.length).map_err(|e| e.to_string())?;
    if length <= MAX_BODY {
        let mut input = header.clone();
        input.resize(header.len() + length, 0xa5);
        let value: VLBytes =
            decode_exact(&input).map_err(|e| format!("vector does not decode: {e}"))?;
        check_eq("vector length", value.as_slice().len(), length)?;
        check_eq(
            "re-encoded vector",
            encode(&value).map_err(|e| e.to_string())? == input,
            true,
        )?;
    }
    if length > 0 {
        // One byte short (capped, so a huge length is refused without building it).
        let mut short = header.clone();
        short.resize(header.len() + length.min(MAX_BODY) - 1, 0xa5);
        match decode_exact::<VLBytes>(&short) {
            Err(CodecError::EndOfStream | CodecError::Decoding(_)) => {}
            other => return Err(format!("short vector: expected an error, got {other:?}")),
        }
    }
    Ok(())
}

/// Runs one case of `deserialization.json`.
pub fn run(case: &serde_json::Value) -> Outcome {
    match parse::<Case>(case) {
        Ok(case) => run_case(&case).into(),
        Err(why) => Outcome::Failed(why),
    }
}
