//! `vmls`: the command-line program of the vmls project.
#![forbid(unsafe_code)]

mod bench;
mod demo;
mod inspect;
mod vectors;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MLS virtual clients (draft-kohbrok-mls-virtual-clients-04) on an RFC 9420 engine.
#[derive(Parser)]
#[command(name = "vmls", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the RFC 9420 cipher suites and whether this build implements them.
    Suites,
    /// Decode an MLS structure strictly and print it.
    Inspect(inspect::InspectArgs),
    /// Run the virtual-clients scenario step by step, beside the same with one leaf per device.
    Demo {
        /// Print only the summary table.
        #[arg(long)]
        quiet: bool,
    },
    /// Benchmark the draft's §8-§9 scenario: U users × D devices in G groups, as virtual
    /// clients and with one leaf per device (table, CSV and SVG plot).
    Bench(bench::BenchArgs),
    /// Run the delivery service (docs/protocol.md) until SIGTERM or ctrl-c.
    Serve(delivery_service::config::ServeArgs),
    /// Generate or verify the draft -04 test vectors.
    Vectors(vectors::VectorsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Suites => {
            print!("{}", inspect::suites_table());
            Ok(())
        }
        Command::Inspect(args) => inspect::run(&args).map(|report| print!("{report}")),
        Command::Demo { quiet } => {
            let mut print = |line: &str| {
                if !quiet {
                    println!("{line}");
                }
            };
            match demo::run(&mut print) {
                Ok(summary) => {
                    print!("{summary}");
                    Ok(())
                }
                Err(e) => {
                    eprintln!("vmls demo: FAILED: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        Command::Serve(args) => {
            if let Err(e) = delivery_service::http::serve_blocking(args.into()) {
                eprintln!("vmls serve: {e}");
                return ExitCode::FAILURE;
            }
            Ok(())
        }
        Command::Bench(args) => {
            if let Err(e) = bench::main(&args) {
                eprintln!("vmls bench: FAILED: {e}");
                return ExitCode::FAILURE;
            }
            Ok(())
        }
        Command::Vectors(args) => {
            if let Err(e) = vectors::run(&args) {
                eprintln!("vmls vectors: FAILED: {e}");
                return ExitCode::FAILURE;
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmls: {e}");
            ExitCode::FAILURE
        }
    }
}
