//! `vmls vectors`: test vectors for draft-kohbrok-mls-virtual-clients-04
//! (`test-vectors/virtual-clients-04.json`, format in docs/test-vectors.md).
//!
//! | file | job |
//! |---|---|
//! | `case.rs` | the JSON case, field by field |
//! | `compute.rs` | every value of a case from its inputs |
//! | `generate.rs` | the fixed inputs and the generated file |
//! | `verify.rs` | recomputation and the field-by-field comparison |

mod case;
mod compute;
mod generate;
mod verify;

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Why generating or verifying vectors failed.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// A cryptographic primitive failed.
    #[error("crypto: {0}")]
    Crypto(#[from] mls_engine::crypto::CryptoError),
    /// A virtual-client derivation failed.
    #[error("derivation: {0}")]
    Derivation(#[from] virtual_clients::derivation::DerivationError),
    /// The emulation-epoch secrets could not be derived.
    #[error("epoch: {0}")]
    Epoch(#[from] virtual_clients::epoch::EpochError),
    /// The PPRF failed.
    #[error("pprf: {0}")]
    Pprf(#[from] virtual_clients::pprf::PprfError),
    /// A wire struct could not be encoded or opened.
    #[error("wire: {0}")]
    Wire(#[from] virtual_clients::wire::WireError),
    /// The reuse guard failed.
    #[error("reuse guard: {0}")]
    ReuseGuard(#[from] virtual_clients::reuse_guard::ReuseGuardError),
    /// The exporter tree failed.
    #[error("exporter: {0}")]
    Exporter(#[from] mls_engine::extensions::ExporterError),
    /// The SafeAAD could not be built.
    #[error("safe aad: {0}")]
    SafeAad(#[from] mls_engine::extensions::SafeAadError),
    /// A TLS encoding failed.
    #[error("codec: {0}")]
    Codec(#[from] mls_engine::codec::CodecError),
    /// A path secret or node key could not be derived.
    #[error("treekem: {0}")]
    TreeKem(#[from] mls_engine::tree::TreeKemError),
    /// The file is not a JSON array of cases with exactly the documented fields.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An input field is not hex.
    #[error("case {case}: field `{field}` is not hex")]
    BadHex {
        /// The case number (from 0).
        case: usize,
        /// The field.
        field: &'static str,
    },
    /// An input is out of its range.
    #[error("input `{0}` is out of range")]
    BadInput(&'static str),
    /// Two ways of computing a value disagree (a bug, not a bad file).
    #[error("`{0}` computed two ways disagrees")]
    Inconsistent(&'static str),
    /// A case's inputs could not be computed with.
    #[error("case {case}: {source}")]
    Case {
        /// The case number (from 0).
        case: usize,
        /// The cause.
        source: Box<VectorError>,
    },
    /// A recorded value differs from its recomputation.
    #[error(
        "case {case} (suites {cipher_suite}/{higher_level_cipher_suite}): field `{field}` does not match its recomputation"
    )]
    Mismatch {
        /// The case number (from 0).
        case: usize,
        /// The case's emulation suite.
        cipher_suite: u16,
        /// The case's higher-level suite.
        higher_level_cipher_suite: u16,
        /// The first field that differs.
        field: String,
    },
    /// The file has no case.
    #[error("the file has no case")]
    NoCases,
}

/// `vmls vectors`.
#[derive(Args)]
pub struct VectorsArgs {
    #[command(subcommand)]
    command: VectorsCommand,
}

#[derive(Subcommand)]
enum VectorsCommand {
    /// Generate the draft -04 vectors (to stdout, or to --out FILE).
    Generate {
        /// Write the vectors to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Recompute every value of FILE from its inputs; fail naming the first mismatch.
    Verify {
        /// The vector file.
        file: PathBuf,
    },
}

/// Runs `vmls vectors`.
pub fn run(args: &VectorsArgs) -> Result<(), VectorError> {
    match &args.command {
        VectorsCommand::Generate { out } => {
            let text = generate::file()?;
            match out {
                Some(path) => std::fs::write(path, text).map_err(|source| VectorError::Io {
                    path: path.clone(),
                    source,
                })?,
                None => print!("{text}"),
            }
        }
        VectorsCommand::Verify { file } => {
            let text = std::fs::read_to_string(file).map_err(|source| VectorError::Io {
                path: file.clone(),
                source,
            })?;
            let count = verify::verify(&text)?;
            println!("{}: {count} cases verified", file.display());
        }
    }
    Ok(())
}
