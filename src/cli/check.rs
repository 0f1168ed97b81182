//! `glimpse check`: every operator against its CPU reference on this adapter.

use anyhow::{bail, Context, Result};
use glimpse::check::export::{export_cases, ExportGpus};
use glimpse::check::run_case;
use glimpse::gpu::Gpu;
use glimpse::ops::{all_cases, Case};
use std::path::Path;
use std::time::Instant;

/// Runs every op's cases (or those matching `filter`) and prints a table.
pub fn check(filter: Option<&str>, seed: Option<u64>) -> Result<()> {
    let gpu = Gpu::new().context("opening the default adapter")?;
    let seed = seed.unwrap_or_else(|| fastrand::u64(..));
    println!("checking every operator against its CPU reference on {}", gpu.adapter());
    println!("random inputs from seed {seed} (replay with --seed {seed})");
    let cases = chosen_cases(filter, seed)?;
    println!("{:<14} {:<28} {:<40} {:>10} {:>10}  result", "op", "case", "inputs", "max |err|", "err/tol");
    let (mut passed, mut failed) = (0, 0);
    let start = Instant::now();
    for case in &cases {
        let (ok, line) = match run_case(&gpu, case) {
            Ok(r) => {
                let c = &r.comparison;
                let line =
                    format!("{:<14} {:<28} {:<40} {:>10.2e} {:>10.3}", r.op, r.label, r.shapes, c.max_abs, c.worst);
                (c.passed, line)
            }
            Err(e) => (false, format!("{:<14} {:<28} error: {e}", case.op.name(), case.label)),
        };
        println!("{line}  {}", if ok { "ok" } else { "FAILED" });
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed ({:.1} s)", start.elapsed().as_secs_f64());
    if failed > 0 {
        bail!("{failed} of {} cases differ from the CPU reference", cases.len());
    }
    Ok(())
}

/// Checks and writes every case (or those matching `filter`) into `dir` for the browser
/// runner, printing each variant's kernels and its time here.
pub fn export(filter: Option<&str>, seed: Option<u64>, dir: &Path) -> Result<()> {
    // The browser's limits, so grids fold and bindings fit as they must there.
    let gpus = ExportGpus::open().context("opening the default adapter")?;
    let seed = seed.unwrap_or_else(|| fastrand::u64(..));
    println!("exporting every operator case to {} from {}", dir.display(), gpus.native.adapter());
    println!("random inputs from seed {seed} (replay with --seed {seed})");
    let cases = chosen_cases(filter, seed)?;
    let start = Instant::now();
    let runs =
        export_cases(dir, &cases, &gpus, seed).with_context(|| format!("exporting the cases to {}", dir.display()))?;
    println!("{:<14} {:<28} {:<40} {:>6} {:>10} {:>9}", "op", "case", "kernels", "lanes", "err/tol", "ms here");
    let (mut run_here, mut recorded_only) = (0, 0);
    for run in &runs {
        for v in &run.variants {
            let kernels = v.kernels.join("+");
            let lanes = v.subgroup_size.map_or("-".to_string(), |w| w.to_string());
            match (&v.comparison, v.millis) {
                (Some(c), Some(ms)) => {
                    println!("{:<14} {:<28} {kernels:<40} {lanes:>6} {:>10.3} {ms:>9.2}", run.op, run.label, c.worst);
                    run_here += 1;
                }
                _ => {
                    println!("{:<14} {:<28} {kernels:<40} {lanes:>6} {:>20}", run.op, run.label, "recorded, not run");
                    recorded_only += 1;
                }
            }
        }
    }
    println!(
        "{} cases: {run_here} variants run here, all match their references; {recorded_only} variants for other \
         subgroup widths recorded, not run; written to {} ({:.1} s)",
        runs.len(),
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every case from `seed`, keeping those whose op name contains `filter`.
fn chosen_cases(filter: Option<&str>, seed: u64) -> Result<Vec<Case>> {
    let cases: Vec<_> = all_cases(&mut fastrand::Rng::with_seed(seed))
        .into_iter()
        .filter(|c| filter.is_none_or(|f| c.op.name().contains(f)))
        .collect();
    if cases.is_empty() {
        bail!("no op matches --filter {:?}; ops: {}", filter.unwrap_or(""), op_names().join(", "));
    }
    Ok(cases)
}

pub fn op_names() -> Vec<&'static str> {
    let mut names: Vec<_> = all_cases(&mut fastrand::Rng::with_seed(0)).iter().map(|c| c.op.name()).collect();
    names.dedup();
    names
}
