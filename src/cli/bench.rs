//! `glimpse bench`: the benchmark harness with a progress bar, the table on
//! stdout, and JSON, CSV, SVG and comparisons on request.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use glimpse::bench::{self, Options, Report, Status, Suite};
use glimpse::gpu::Gpu;
use glimpse::tensorfile::write_atomically;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which workloads run.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SuiteArg {
    /// Single ops at the blocks' shapes, and the Non-local attention pair.
    Ops,
    /// Whole blocks, fused against unfused.
    Blocks,
    /// Whole timm networks (skresnet18, skresnext50_32x4d, resnet50 + CBAM) at 224 x 224.
    Networks,
    /// Every distinct conv of timm.skresnet18 and timm.resnet50 at 224 x 224, each timed interleaved with
    /// the 512^3 GEMM (not in `all`)
    Convs,
    /// All of them (but convs).
    All,
}

/// Arguments of `glimpse bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which suite to run.
    #[arg(long, value_enum, default_value = "all")]
    suite: SuiteArg,
    /// Only workloads whose "name shape variant" contains this text (e.g. matmul, CbamModule, 1x256;
    /// A|B: either).
    #[arg(long)]
    filter: Option<String>,
    /// The batch blocks also run at besides 1 (1 for a quick run).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    batch: u64,
    /// Most timed runs per variant (big workloads get fewer, at least 3 unless this is smaller).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10000))]
    repeat: u64,
    /// Seed of the random inputs and weights (random when omitted; recorded in the command).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the report as JSON (the schema in BENCHMARKS.md).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the rows as CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write an SVG plot: time per workload and the roofline.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Compare with an earlier `--json` report or tools/bench_torch.py's output.
    #[arg(long, value_name = "OTHER.json")]
    compare: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn bench(a: BenchArgs, out: super::Output) -> Result<()> {
    // Everything a user can get wrong fails before the GPU is touched.
    let other = a.compare.as_deref().map(Report::read).transpose().context("--compare")?;
    let outputs: Vec<(&str, &Path)> = [("--json", &a.json), ("--csv", &a.csv), ("--plot", &a.plot)]
        .into_iter()
        .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
        .collect();
    glimpse::output::check_outputs(&outputs, &a.compare.iter().cloned().collect::<Vec<_>>())?;
    let suite = match a.suite {
        SuiteArg::Ops => Suite::Ops,
        SuiteArg::Blocks => Suite::Blocks,
        SuiteArg::Networks => Suite::Networks,
        SuiteArg::Convs => Suite::Convs,
        SuiteArg::All => Suite::All,
    };
    let seed = a.seed.unwrap_or_else(|| fastrand::u64(..));
    let options = Options { suite, filter: a.filter.clone(), batch: a.batch as usize, repeat: a.repeat as usize, seed };
    let workloads = bench::workloads(&options)?;
    let ceilings = bench::ceiling_workloads();

    let gpu = Gpu::new().context("opening the default adapter (WGPU_BACKEND / WGPU_ADAPTER_NAME choose another)")?;
    println!("glimpse bench on {} (wgpu {})", gpu.adapter(), bench::wgpu_version());
    if gpu.adapter().is_cpu() {
        println!("a CPU adapter: these times compare variants with each other; they are not GPU speed");
    }
    if !gpu.has_timestamps() {
        println!("no timestamp queries on this adapter: wall time around submit + wait is reported instead");
    }
    let command = format!("glimpse {} --seed {seed}", std::env::args().skip(1).collect::<Vec<_>>().join(" "));

    let total = ceilings.len() + workloads.len();
    let progress = out.bar(total as u64, "{bar:30} {pos}/{len} [{elapsed_precise}] {msg}");
    let start = Instant::now();
    let mut rows = Vec::new();
    for (done, w) in ceilings.iter().chain(&workloads).enumerate() {
        // The reports so far, rewritten before each workload: an interrupted run keeps them.
        if done > 0 {
            let mut so_far = bench::report(&gpu, rows.clone(), &command);
            so_far.unfinished = Some(format!("{done} of {total} workloads measured"));
            write_reports(&a, &so_far, other.as_ref())?;
        }
        progress.set_message(w.label());
        for row in w.run(&gpu, &options) {
            let line = match row.status {
                Status::Ok => format!("{}: {} ms", row.label(), bench::format_ms(row.median_ms)),
                s => format!("{}: {s:?}: {}", row.label(), row.reason),
            };
            // Each row's time as it comes: above the bar, else as a line (the table has them all).
            if progress.is_hidden() {
                out.note(line);
            } else {
                progress.println(line);
            }
            rows.push(row);
        }
        progress.inc(1);
    }
    progress.finish_and_clear();

    let report = bench::report(&gpu, rows, &command);
    println!("{}", bench::table(&report, other.as_ref()));
    if out.verbose {
        print!("{}", bench::breakdown_table(&report));
    }
    println!("ceilings: {}; {:.0} s in all", report.ceilings.source, start.elapsed().as_secs_f64());
    for p in write_reports(&a, &report, other.as_ref())? {
        println!("wrote {}", p.display());
    }
    let count = |s: Status| report.workloads.iter().filter(|r| r.status == s).count();
    let (wrong, failed) = (count(Status::Wrong), count(Status::Error));
    if wrong + failed > 0 {
        bail!("{wrong} variant(s) differ from the CPU reference and {failed} failed (see the table)");
    }
    Ok(())
}

/// Writes the JSON, CSV and SVG reports asked for; the paths written.
fn write_reports<'a>(a: &'a BenchArgs, report: &Report, other: Option<&Report>) -> Result<Vec<&'a Path>> {
    let mut written = Vec::new();
    if let Some(p) = &a.json {
        write_atomically(p, report.to_json().as_bytes())?;
        written.push(p.as_path());
    }
    if let Some(p) = &a.csv {
        write_atomically(p, report.to_csv().as_bytes())?;
        written.push(p.as_path());
    }
    if let Some(p) = &a.plot {
        write_atomically(p, bench::svg(report, other).as_bytes())?;
        written.push(p.as_path());
    }
    Ok(written)
}
