//! The text table `glimpse bench` prints: one line per workload, the comparison
//! columns, the convs suite's share of the interleaved GEMM and the slowest pipelines
//! to compile. The report's data and files stay in report.rs.

use super::report::{Compile, Report, Row, Status};

/// A time for the table: 3 significant digits.
pub fn format_ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) if v >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "-".into())
}

/// The table for stdout: one line per row, and the other report's time and the
/// ratio when comparing. Regressions are flagged when `other` is a glimpse run.
pub fn table(report: &Report, other: Option<&Report>) -> String {
    let mut s = format!(
        "{:<22} {:<16} {:<8} {:>4} {:>9} {:>17} {:>8} {:>3} {:>8} {:>7} {:>6} {:>5} {:>8} {:<5} {:>7}",
        "workload",
        "shape",
        "variant",
        "disp",
        "median ms",
        "min..max",
        "cold ms",
        "src",
        "GFLOP/s",
        "GB/s",
        "AI",
        "%roof",
        "err",
        "check",
        "speedup"
    );
    if let Some(o) = other {
        s += &format!(" {:>10} {:>7}", format!("{} ms", short_tool(o)), "ratio");
    }
    s.push('\n');
    let mut suite = "";
    for r in &report.workloads {
        // A heading where the suite changes, so the calibration rows are told from the workloads.
        if r.suite != suite {
            suite = &r.suite;
            s += &match suite {
                "ceiling" => "-- calibration: the bandwidth and GEMM ceilings the percentages are of\n".to_string(),
                other => format!("-- {other}\n"),
            };
        }
        let line = if r.status == Status::Ok {
            let src = if r.timing == "gpu-timestamps" { "gpu" } else { "w" };
            let err = r.rel_l2.filter(|_| r.suite == "blocks" || r.variant == "fused" || r.variant == "unfused");
            let err = err.or(r.max_error).map(|e| format!("{e:.1e}")).unwrap_or_else(|| "-".into());
            let speedup = r.speedup_vs_unfused.map(|x| format!("{x:.2}x")).unwrap_or_default();
            format!(
                "{:<22} {:<16} {:<8} {:>4} {:>9} {:>17} {:>8} {:>3} {:>8} {:>7} {:>6} {:>5} {:>8} {:<5} {:>7}",
                r.name,
                r.shape,
                r.variant,
                r.dispatches.map(|d| d.to_string()).unwrap_or_default(),
                format_ms(r.median_ms),
                format!("{}..{}", format_ms(r.min_ms), format_ms(r.max_ms)),
                format_ms(r.cold_ms),
                src,
                num(r.gflops, 2),
                num(r.gbps, 2),
                num(r.intensity, 2),
                num(r.pct_roofline, 0),
                err,
                if r.checked_on == "full" { "full" } else { "small" },
                speedup
            )
        } else {
            format!("{:<22} {:<16} {:<8} {}: {}", r.name, r.shape, r.variant, status_word(r.status), r.reason)
        };
        s += &line;
        if let (Some(pct), Some(reference)) = (r.pct_reference, r.reference_gflops) {
            s += &format!("  {pct:.0}% of GEMM ({reference:.2} GFLOP/s interleaved)");
        }
        if let Some(o) = other {
            s += &compare_cell(r, o);
        }
        s.push('\n');
    }
    s + &reference_summary(&report.workloads) + &compile_table(report)
}

/// Pipelines shown by [`compile_table`]: the slowest to compile.
const SLOWEST_COMPILES: usize = 12;

/// The slowest pipelines to compile in the run, each with the workload that used it
/// first: what a first run on this driver spends its time on.
pub(super) fn compile_table(report: &Report) -> String {
    let mut all: Vec<(&Compile, &Row)> =
        report.workloads.iter().flat_map(|r| r.compiles.iter().map(move |c| (c, r))).collect();
    if all.is_empty() {
        return String::new();
    }
    let total: f64 = all.iter().map(|(c, _)| c.total_ms()).fold(0.0, |a, b| a + b);
    let first_runs: f64 = all.iter().filter_map(|(c, _)| c.first_run_ms).fold(0.0, |a, b| a + b);
    all.sort_by(|a, b| b.0.total_ms().total_cmp(&a.0.total_ms()));
    let mut s = format!(
        "-- pipeline compiles: {} pipelines, {} ms summed over the threads compiling at once (of which {} ms in first \
         dispatches, where lazy drivers compile); \
         the {} slowest:\n{:>9} {:>9} {:>9}  {:<48} first used by\n",
        all.len(),
        format_ms(Some(total)),
        format_ms(Some(first_runs)),
        all.len().min(SLOWEST_COMPILES),
        "total ms",
        "create",
        "1st run",
        "pipeline"
    );
    for (c, r) in all.iter().take(SLOWEST_COMPILES) {
        s += &format!(
            "{:>9} {:>9} {:>9}  {:<48} {}\n",
            format_ms(Some(c.total_ms())),
            format_ms(Some(c.create_ms)),
            format_ms(c.first_run_ms),
            c.pipeline,
            r.label()
        );
    }
    s
}

/// For rows timed against an interleaved GEMM (the convs suite): how many reach 80% of it, the
/// lowest and the median share, and the same against the fastest GEMM of the whole run (a
/// stricter yardstick: that GEMM ran in the run's quietest moment, not beside the row).
fn reference_summary(rows: &[Row]) -> String {
    let timed: Vec<&Row> = rows.iter().filter(|r| r.pct_reference.is_some()).collect();
    if timed.is_empty() {
        return String::new();
    }
    let best = timed.iter().filter_map(|r| r.reference_gflops).fold(0.0, f64::max);
    let share = |pcts: Vec<f64>| {
        let (median, min, _) = super::summary(&pcts);
        let at_80 = pcts.iter().filter(|&&p| p >= 80.0).count();
        format!("{at_80} of {} rows >= 80%, lowest {min:.0}%, median {median:.0}%", pcts.len())
    };
    let own = share(timed.iter().filter_map(|r| r.pct_reference).collect());
    let strict = share(timed.iter().filter_map(|r| Some(r.pct_reference? * r.reference_gflops? / best)).collect());
    format!("vs the GEMM interleaved with each row: {own}\nvs the run's fastest GEMM ({best:.2} GFLOP/s): {strict}\n")
}

fn short_tool(r: &Report) -> &str {
    if r.tool == "glimpse" {
        "before"
    } else {
        &r.tool
    }
}

/// " other_ms ratio [flag]" for one row.
fn compare_cell(r: &Row, other: &Report) -> String {
    let Some(o) = other.find(r) else { return format!(" {:>10} {:>7}", "-", "") };
    let ratio = match (r.median_ms, o.median_ms) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let mut cell =
        format!(" {:>10} {:>7}", format_ms(o.median_ms), ratio.map(|x| format!("{x:.2}x")).unwrap_or_default());
    if other.tool == "glimpse" && is_regression(r, o) {
        cell += "  REGRESSION";
    }
    cell
}

/// Slower than `before` by more than the measured spread (max - min) of
/// either run: a difference the noise of these runs does not explain.
pub fn is_regression(now: &Row, before: &Row) -> bool {
    let (Some(a), Some(b)) = (now.median_ms, before.median_ms) else { return false };
    let spread = |r: &Row| r.max_ms.zip(r.min_ms).map_or(0.0, |(max, min)| max - min);
    a - b > spread(now).max(spread(before))
}

/// The status as the table shows it: failures in capitals so they stand out.
pub(super) fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Wrong => "WRONG",
        Status::Skipped => "SKIPPED",
        Status::Error => "ERROR",
    }
}
