//! The `glimpse` command line.

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "glimpse", version, about = "Attention modules for vision on any GPU, one WGSL shader per operator")]
struct Cli {
    /// No progress bars or informational lines on stderr: only results (stdout) and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail where a command has it (e.g. where `map`'s time went).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter wgpu finds, the one glimpse chooses, and its limits.
    Info,
    /// Run every operator on this GPU against its CPU reference and print a table.
    Check {
        /// Only ops whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Seed for the random inputs (random when omitted; printed either way).
        #[arg(long)]
        seed: Option<u64>,
        /// Also write every case (launches, inputs, reference outputs, tolerance) into this
        /// folder for the browser runner (web/, `npm test`), recorded under WebGPU's default limits.
        #[arg(long, value_name = "DIR")]
        export: Option<std::path::PathBuf>,
    },
    /// Run one attention block on an input tensor with PyTorch weights.
    #[command(after_help = cli::run::arch_help())]
    Run(cli::run::RunArgs),
    /// Classify photos with a timm network: timm's eval preprocessing, top-k classes, JSON / CSV.
    Classify(cli::classify::ClassifyArgs),
    /// Draw a model's attention maps over photos: overlays, charts, contact sheets, index.html.
    #[command(after_help = cli::map::MAP_EXIT_HELP)]
    Map(cli::map::MapArgs),
    /// The bundled demo: an attention CNN's maps over the bundled pictures, with index.html.
    Demo(cli::map::DemoArgs),
    /// Benchmark ops and blocks (checked against the CPU reference first) and report rates and rooflines.
    Bench(cli::bench::BenchArgs),
}

/// Keeps a third-party warning off the terminal. With XDG_RUNTIME_DIR unset, libwayland
/// (loaded by the Vulkan loader's Mesa device-select layer, which looks for a Wayland
/// compositor to pick the default GPU) prints "error: XDG_RUNTIME_DIR is invalid or not set
/// in the environment." on every GPU command, an `error:` that is not ours. Pointing it at
/// an existing folder only makes that look-up fail quietly (no compositor socket is there),
/// and the adapter choice is the same. Done first, while the process has one thread.
fn quiet_wayland_probe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
}

fn main() -> ExitCode {
    quiet_wayland_probe();
    let parsed = Cli::parse();
    if let Err(e) = glimpse::interrupt::exit_cleanly_on_interrupt() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // info and check print only results (stdout), so they take no Output.
    let out = cli::Output { quiet: parsed.quiet, verbose: parsed.verbose };
    let result: Result<()> = match parsed.command {
        Command::Info => cli::info::info(),
        Command::Check { filter, seed, export: None } => cli::check::check(filter.as_deref(), seed),
        Command::Check { filter, seed, export: Some(dir) } => cli::check::export(filter.as_deref(), seed, &dir),
        Command::Run(args) => cli::run::run(args, out),
        Command::Classify(args) => cli::classify::classify(args, out),
        Command::Map(args) => cli::map::map(args, out),
        Command::Demo(args) => cli::map::demo(args, out),
        Command::Bench(args) => cli::bench::bench(args, out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message chain names what is wrong; a backtrace would only bury it.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
