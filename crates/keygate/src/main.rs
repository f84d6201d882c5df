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

/// mimalloc, a performance choice: it measured as the system allocator does in
/// scripts/bench-gateway, and jemalloc doubled the gateway's CPU per GB (BENCHMARKS.md).
/// Safety does not depend on it: the Kafka codec checks every length read off the wire
/// against the bytes left in the frame before allocating (vendor/kafka-protocol/
/// KEYGATE-PATCH.md), so a request claiming billions of elements costs nothing, even
/// under `vm.overcommit_memory=2` (tests/it/gateway.rs runs that attack under an
/// address-space limit).
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
