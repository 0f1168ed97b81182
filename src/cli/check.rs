//! `glimpse check`: every operator against its CPU reference on this adapter.

use anyhow::{bail, Context, Result};
use glimpse::check::run_case;
use glimpse::gpu::Gpu;
use glimpse::ops::all_cases;
use std::time::Instant;

/// Runs every op's cases (or those matching `filter`) and prints a table.
pub fn check(filter: Option<&str>, seed: Option<u64>) -> Result<()> {
    let gpu = Gpu::new().context("opening the default adapter")?;
    let seed = seed.unwrap_or_else(|| fastrand::u64(..));
    println!("checking every operator against its CPU reference on {}", gpu.adapter());
    println!("random inputs from seed {seed} (replay with --seed {seed})");
    let cases: Vec<_> = all_cases(&mut fastrand::Rng::with_seed(seed))
        .into_iter()
        .filter(|c| filter.is_none_or(|f| c.op.name().contains(f)))
        .collect();
    if cases.is_empty() {
        bail!("no op matches --filter {:?}; ops: {}", filter.unwrap_or(""), op_names().join(", "));
    }
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

pub fn op_names() -> Vec<&'static str> {
    let mut names: Vec<_> = all_cases(&mut fastrand::Rng::with_seed(0)).iter().map(|c| c.op.name()).collect();
    names.dedup();
    names
}
