//! `vmls inspect` and `vmls suites`: strict decoding of MLS structures, for debugging and
//! interop work.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mls_engine::codec::{
    self, decode_exact, CodecError, GroupInfo, KeyPackage, LeafNode, MlsMessage, MlsMessageBody,
    Node, Welcome,
};
use mls_engine::crypto::{CipherSuite, CryptoProvider as _, RustCrypto};

/// Arguments of `vmls inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// File holding the structure, as raw bytes or as hex text; `-` reads standard input.
    #[arg(required_unless_present = "hex")]
    file: Option<PathBuf>,
    /// The structure as a hex string, instead of a file.
    #[arg(long, conflicts_with = "file")]
    hex: Option<String>,
    /// What the bytes are.
    #[arg(long = "as", value_enum, default_value_t = Kind::MlsMessage)]
    kind: Kind,
}

/// The structures `vmls inspect` decodes.
#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    /// `MLSMessage` (RFC 9420 §6).
    MlsMessage,
    /// A bare `KeyPackage` (§10).
    KeyPackage,
    /// A bare `LeafNode` (§7.2).
    LeafNode,
    /// `optional<Node> ratchet_tree<V>` (§12.4.3.3).
    RatchetTree,
}

/// Why `vmls inspect` failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The input could not be read.
    #[error("cannot read input: {0}")]
    Io(#[from] std::io::Error),
    /// The hex text is malformed.
    #[error("input is neither valid hex nor binary: {0}")]
    Hex(#[from] hex::FromHexError),
    /// The bytes are not a valid encoding of the structure.
    #[error("not a valid {kind}: {source}")]
    Decode {
        /// The structure asked for.
        kind: &'static str,
        /// What the decoder said.
        source: CodecError,
    },
}

fn read_input(args: &InspectArgs) -> Result<Vec<u8>, InspectError> {
    if let Some(hex_text) = &args.hex {
        return Ok(hex::decode(hex_text.trim())?);
    }
    let mut raw = Vec::new();
    match args.file.as_deref() {
        Some(path) if path.as_os_str() == "-" => {
            std::io::stdin().read_to_end(&mut raw)?;
        }
        Some(path) => raw = std::fs::read(path)?,
        None => {}
    }
    let text: Option<String> = std::str::from_utf8(&raw)
        .ok()
        .map(|s| s.chars().filter(|c| !c.is_whitespace()).collect());
    match text {
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(hex::decode(t)?),
        _ => Ok(raw),
    }
}

fn decode<T: codec::DeserializeBytes>(kind: &'static str, bytes: &[u8]) -> Result<T, InspectError> {
    decode_exact(bytes).map_err(|source| InspectError::Decode { kind, source })
}

/// Decodes the input named by `args` and renders it.
pub fn run(args: &InspectArgs) -> Result<String, InspectError> {
    let bytes = read_input(args)?;
    let mut out = String::new();
    let _ = writeln!(out, "{} bytes", bytes.len());
    match args.kind {
        Kind::MlsMessage => {
            let message: MlsMessage = decode("MLSMessage", &bytes)?;
            describe_message(&mut out, &message);
            let _ = writeln!(out, "{message:#?}");
        }
        Kind::KeyPackage => {
            let key_package: KeyPackage = decode("KeyPackage", &bytes)?;
            describe_key_package(&mut out, &key_package);
            let _ = writeln!(out, "{key_package:#?}");
        }
        Kind::LeafNode => {
            let leaf: LeafNode = decode("LeafNode", &bytes)?;
            let _ = writeln!(out, "{leaf:#?}");
        }
        Kind::RatchetTree => {
            let tree: Vec<Option<Node>> = decode("ratchet tree", &bytes)?;
            let blanks = tree.iter().filter(|n| n.is_none()).count();
            let _ = writeln!(out, "ratchet tree: {} nodes, {blanks} blank", tree.len());
            let _ = writeln!(out, "{tree:#?}");
        }
    }
    Ok(out)
}

fn describe_message(out: &mut String, message: &MlsMessage) {
    let what = match &message.body {
        MlsMessageBody::PublicMessage(_) => "PublicMessage",
        MlsMessageBody::PrivateMessage(_) => "PrivateMessage",
        MlsMessageBody::Welcome(welcome) => return describe_welcome(out, welcome),
        MlsMessageBody::GroupInfo(group_info) => return describe_group_info(out, group_info),
        MlsMessageBody::KeyPackage(key_package) => return describe_key_package(out, key_package),
    };
    let _ = writeln!(out, "MLSMessage: {what}");
}

fn describe_welcome(out: &mut String, welcome: &Welcome) {
    let _ = writeln!(
        out,
        "MLSMessage: Welcome, cipher suite 0x{:04x}, {} new members",
        welcome.cipher_suite.0,
        welcome.secrets.len()
    );
}

fn describe_group_info(out: &mut String, group_info: &GroupInfo) {
    let context = &group_info.group_context;
    let _ = writeln!(
        out,
        "MLSMessage: GroupInfo, cipher suite 0x{:04x}, epoch {}, signed by leaf {}",
        context.cipher_suite.0, context.epoch, group_info.signer
    );
}

fn describe_key_package(out: &mut String, key_package: &KeyPackage) {
    let _ = write!(
        out,
        "KeyPackage, cipher suite 0x{:04x}",
        key_package.cipher_suite.0
    );
    match RustCrypto.suite(key_package.cipher_suite) {
        Ok(suite) => {
            let signature = match key_package.verify_signature(suite) {
                Ok(()) => "valid".to_string(),
                Err(e) => format!("INVALID ({e})"),
            };
            let _ = write!(out, ", signature {signature}");
            if let Ok(reference) = key_package.reference(suite) {
                let _ = write!(out, ", KeyPackageRef {}", hex::encode(reference));
            }
            let _ = writeln!(out);
        }
        Err(e) => {
            let _ = writeln!(out, " ({e}: signature not checked)");
        }
    }
}

/// The table printed by `vmls suites`.
pub fn suites_table() -> String {
    let mut out =
        String::from("suite   name                                                 implemented\n");
    // RFC 9420's suites 1-7, then the post-quantum suite under OpenMLS's code point.
    for id in (1u16..=7).chain([0x004F]) {
        let name = CipherSuite(id).name().unwrap_or("(unnamed)");
        let implemented = if RustCrypto.supports(CipherSuite(id)) {
            "yes"
        } else {
            "no"
        };
        let _ = writeln!(out, "0x{id:04x}  {name:<52} {implemented}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_PACKAGE_MESSAGE: &str = include_str!("../tests/data/key-package-message.hex");

    fn args(hex: &str, kind: Kind) -> InspectArgs {
        InspectArgs {
            file: None,
            hex: Some(hex.to_string()),
            kind,
        }
    }

    #[test]
    fn key_package_message_is_described_and_verified() {
        let report = run(&args(KEY_PACKAGE_MESSAGE, Kind::MlsMessage)).unwrap();
        assert!(
            report.contains("KeyPackage, cipher suite 0x0001, signature valid"),
            "{report}"
        );
    }

    #[test]
    fn tampered_signature_is_reported_invalid() {
        let mut bytes = hex::decode(KEY_PACKAGE_MESSAGE.trim()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let report = run(&args(&hex::encode(bytes), Kind::MlsMessage)).unwrap();
        assert!(report.contains("signature INVALID"), "{report}");
    }

    #[test]
    fn trailing_bytes_are_a_decode_error() {
        let text = format!("{}00", KEY_PACKAGE_MESSAGE.trim());
        let err = run(&args(&text, Kind::MlsMessage)).unwrap_err();
        assert!(matches!(
            err,
            InspectError::Decode {
                source: CodecError::TrailingData(1),
                ..
            }
        ));
    }

    #[test]
    fn suites_table_marks_implemented_suites() {
        let table = suites_table();
        assert!(table.contains("0x0001  MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"));
        let line = |id: &str| {
            table
                .lines()
                .find(|l| l.starts_with(id))
                .unwrap()
                .to_string()
        };
        assert!(line("0x0002").ends_with("yes"));
        assert!(line("0x0003").ends_with("yes"));
        assert!(line("0x0004").ends_with("no"));
        assert!(line("0x0005").ends_with("yes"));
        assert!(line("0x0006").ends_with("no"));
        assert!(line("0x0007").ends_with("yes"));
        assert!(
            line("0x004f").starts_with("0x004f  MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519")
        );
        assert!(line("0x004f").ends_with("yes"));
    }
}
