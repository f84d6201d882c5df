//! The `keygate` binary: `keygate server` runs the control plane; every other
//! subcommand is a client of its REST API. All logic lives in the library crates.

/// `println!` for what a command prints: a reader that went away (`| head -1`) ends
/// the program quietly instead of a panic (see [`write_stdout`]).
macro_rules! outln {
    () => { $crate::write_stdout(format_args!(""), true) };
    ($($t:tt)*) => { $crate::write_stdout(format_args!($($t)*), true) };
}

/// `print!` likewise.
macro_rules! out {
    ($($t:tt)*) => { $crate::write_stdout(format_args!($($t)*), false) };
}

mod cli;
mod config;
mod export;
mod http;
mod logging;
mod metrics;
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

/// Write to standard output; a closed pipe exits with success at once (as `cat` and
/// `rg` do), any other error exits with failure.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let r = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) });
    match r {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("Error: writing the output: {e}");
            std::process::exit(1);
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Server(args) => {
            if args.print_default_config {
                out!("{}", config::DEFAULT_CONFIG);
                return ExitCode::SUCCESS;
            }
            logging::init("info");
            (|| {
                let cfg = args.resolve()?;
                server::check_data_dir(&cfg.data_dir)?;
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(server::run(cfg, args))
            })()
        }
        Cmd::Export(a) => {
            logging::init("warn");
            export::export(a)
        }
        Cmd::Import(a) => {
            logging::init("warn");
            export::import(a)
        }
        Cmd::Migrate(a) => {
            logging::init("warn");
            export::migrate(a)
        }
        Cmd::Admin(cli::AdminCmd::Recover(a)) => {
            logging::init("warn");
            export::recover(a)
        }
        cmd => {
            logging::init("warn");
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
