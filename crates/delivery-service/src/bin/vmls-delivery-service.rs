//! `vmls-delivery-service`: the delivery service's server alone (the same code as `vmls serve`),
//! for deployments and for the tests that run it as a child process.

use std::process::ExitCode;

use clap::Parser;
use delivery_service::config::{ServeArgs, ServerConfig};

/// The vmls delivery service (docs/protocol.md).
#[derive(Parser)]
#[command(name = "vmls-delivery-service", version)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match delivery_service::http::serve_blocking(ServerConfig::from(cli.serve)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmls-delivery-service: {e}");
            ExitCode::FAILURE
        }
    }
}
