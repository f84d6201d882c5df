//! The `keygate` binary: `keygate server` runs the control plane; every other
//! subcommand is a client of its REST API. All logic lives in the library crates.

mod cli;
mod config;
mod export;
mod server;

use clap::Parser;
use cli::{Cli, Cmd};
use std::process::ExitCode;

/// mimalloc, chosen for one property above all: when the kernel overcommits (Linux's
/// default) it maps memory with `MAP_NORESERVE`, so an allocation is only address space
/// until it is touched. kafka-protocol (0.18) sizes a vector from an element count read
/// off the wire before it reads one element; under the system allocator a few bytes
/// claiming 2^31 elements make that a failed allocation, which aborts the whole process.
/// Under mimalloc the reservation succeeds untouched, the decode fails on the missing
/// elements, and only that connection is closed (tests/it/gateway.rs
/// `array_counts_beyond_the_frame_close_only_that_connection`). jemalloc has the same
/// property but doubled the gateway's CPU per GB in scripts/bench-gateway; mimalloc
/// measured as the system allocator does (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Server(args) => {
            if args.print_default_config {
                print!("{}", config::DEFAULT_CONFIG);
                return ExitCode::SUCCESS;
            }
            init_tracing("info");
            (|| {
                let cfg = args.resolve()?;
                server::check_data_dir(&cfg.data_dir)?;
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(server::run(cfg))
            })()
        }
        Cmd::Export(a) => {
            init_tracing("warn");
            export::export(a)
        }
        Cmd::Import(a) => {
            init_tracing("warn");
            export::import(a)
        }
        Cmd::Migrate(a) => {
            init_tracing("warn");
            export::migrate(a)
        }
        cmd => {
            init_tracing("warn");
            cli::run(cmd, cli.output)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
