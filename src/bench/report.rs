//! The benchmark report: one JSON schema (documented in BENCHMARKS.md) shared
//! with tools/bench_torch.py, the table, the CSV and the comparison of two reports.

use super::breakdown::{KernelTime, OpTime};
use super::table::status_word;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The schema tag every report carries.
pub const SCHEMA: &str = "glimpse-bench/1";

/// What happened to a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Checked and timed.
    Ok,
    /// Differs from the CPU reference: not timed.
    Wrong,
    /// The device cannot hold it (the reason says which tensor and limit).
    Skipped,
    /// Failed for another reason (in `reason`).
    Error,
}

/// One workload variant's measurements. Times are per run of all its
/// dispatches; optional fields are null when not measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// Op stem or block architecture.
    pub name: String,
    /// "ops", "blocks", "networks" or "ceiling".
    pub suite: String,
    /// The workload's size, e.g. "8x256x56x56" (same string in every tool).
    pub shape: String,
    /// "auto" (the kernel glimpse picks), a forced kernel, or "fused" / "unfused";
    /// PyTorch rows use the same names, "eager" for blocks.
    pub variant: String,
    /// Checked and timed, or why not.
    pub status: Status,
    /// Why the status is not ok.
    #[serde(default)]
    pub reason: String,
    /// The kernels that ran, in order of first use.
    #[serde(default)]
    pub kernels: String,
    /// Dispatches per run.
    #[serde(default)]
    pub dispatches: Option<usize>,
    /// Bytes of the plan's activation buffers (after liveness reuse): its peak memory
    /// besides the weights. Pairs only.
    #[serde(default)]
    pub activation_bytes: Option<u64>,
    /// "gpu-timestamps" (summed per dispatch), "wall" (submit to idle), or
    /// "wall-sync" (PyTorch: call plus device sync).
    #[serde(default)]
    pub timing: String,
    /// Timed runs.
    #[serde(default)]
    pub repeats: usize,
    /// Median time per run, ms.
    pub median_ms: Option<f64>,
    /// Fastest run, ms.
    #[serde(default)]
    pub min_ms: Option<f64>,
    /// Slowest run, ms.
    #[serde(default)]
    pub max_ms: Option<f64>,
    /// Median wall time per run (submit to idle), ms.
    #[serde(default)]
    pub wall_median_ms: Option<f64>,
    /// First run, including pipeline compilation (and plan build for blocks), ms.
    #[serde(default)]
    pub cold_ms: Option<f64>,
    /// The part of `cold_ms` spent on the pipelines this workload was the first to use
    /// (earlier workloads of the run compiled the others): their creation and first dispatch, ms.
    #[serde(default)]
    pub compile_ms: Option<f64>,
    /// Those pipelines, one by one, in order of first use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compiles: Vec<Compile>,
    /// FLOPs per run from the ops' cost models.
    #[serde(default)]
    pub flops: u64,
    /// Minimum bytes moved per run from the ops' cost models.
    #[serde(default)]
    pub bytes: u64,
    /// flops / median.
    #[serde(default)]
    pub gflops: Option<f64>,
    /// bytes / median.
    #[serde(default)]
    pub gbps: Option<f64>,
    /// Arithmetic intensity, flops / bytes.
    #[serde(default)]
    pub intensity: Option<f64>,
    /// gflops as a percentage of the device's best GEMM in this run.
    #[serde(default)]
    pub pct_compute: Option<f64>,
    /// gbps as a percentage of the device's stream kernel in this run.
    #[serde(default)]
    pub pct_bandwidth: Option<f64>,
    /// gflops as a percentage of the roofline at this intensity.
    #[serde(default)]
    pub pct_roofline: Option<f64>,
    /// Largest |GPU - CPU reference|.
    #[serde(default)]
    pub max_error: Option<f64>,
    /// Relative L2 error against the CPU reference.
    #[serde(default)]
    pub rel_l2: Option<f64>,
    /// "full", or the smaller instance the reference checked ("reduced: ...").
    #[serde(default)]
    pub checked_on: String,
    /// Seconds the check took (CPU reference and comparison).
    #[serde(default)]
    pub check_s: Option<f64>,
    /// Unfused median over fused median (fused rows only).
    #[serde(default)]
    pub speedup_vs_unfused: Option<f64>,
    /// The reference GEMM timed interleaved with this row (convs suite): its rate at its fastest
    /// run, GFLOP/s.
    #[serde(default)]
    pub reference_gflops: Option<f64>,
    /// This row's rate at its fastest run as a percentage of `reference_gflops`.
    #[serde(default)]
    pub pct_reference: Option<f64>,
    /// Where a plan's time went, by op at its shapes, slowest first (blocks and networks timed
    /// with timestamps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_by_op: Vec<OpTime>,
    /// The same by kernel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_by_kernel: Vec<KernelTime>,
}

/// What one pipeline cost to compile (see `Gpu::pipeline_compiles`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Compile {
    /// The kernel and its override constants, `kernel[NAME=VALUE,...]`.
    pub pipeline: String,
    /// Creating the shader module and the pipeline, ms.
    pub create_ms: f64,
    /// Its first dispatch, submitted alone (lazy drivers such as llvmpipe generate
    /// the machine code here; it includes that dispatch's own run), ms.
    pub first_run_ms: Option<f64>,
}

impl Compile {
    /// Creation and first dispatch, ms.
    pub fn total_ms(&self) -> f64 {
        self.create_ms + self.first_run_ms.unwrap_or(0.0)
    }
}

impl Row {
    /// `name shape variant`, the key rows are matched by.
    pub fn label(&self) -> String {
        format!("{} {} {}", self.name, self.shape, self.variant)
    }

    /// Derived rates once the median is known.
    pub(super) fn derive(&mut self, ceilings: &Ceilings) {
        let Some(ms) = self.median_ms.filter(|&m| m > 0.0) else { return };
        let s = ms / 1e3;
        let gflops = self.flops as f64 / s / 1e9;
        let gbps = self.bytes as f64 / s / 1e9;
        self.gflops = Some(gflops);
        self.gbps = Some(gbps);
        self.intensity = (self.bytes > 0).then(|| self.flops as f64 / self.bytes as f64);
        if let Some(peak) = ceilings.gemm_gflops.filter(|&p| p > 0.0) {
            self.pct_compute = Some(100.0 * gflops / peak);
        }
        if let Some(bw) = ceilings.stream_gbps.filter(|&b| b > 0.0) {
            self.pct_bandwidth = Some(100.0 * gbps / bw);
        }
        if let (Some(peak), Some(bw), Some(ai)) = (ceilings.gemm_gflops, ceilings.stream_gbps, self.intensity) {
            let roof = peak.min(ai * bw);
            self.pct_roofline = (roof > 0.0 && self.flops > 0).then(|| 100.0 * gflops / roof);
        }
    }
}

/// The adapter the report was measured on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Adapter {
    /// As the driver names it.
    pub name: String,
    /// Vulkan, Gl, Metal, Dx12 (or pytorch-cpu / pytorch-cuda).
    pub backend: String,
    /// Driver name and version.
    pub driver: String,
    /// Cpu, DiscreteGpu, IntegratedGpu, VirtualGpu.
    pub device_type: String,
}

/// This device's ceilings, measured in the same run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ceilings {
    /// Bandwidth, GB/s: the stream kernel (eltwise Add over 64 MiB tensors),
    /// or the fastest kernel of the run when one moved its bytes faster.
    pub stream_gbps: Option<f64>,
    /// Best GEMM of the run (or the fastest workload when one beat it), GFLOP/s.
    pub gemm_gflops: Option<f64>,
    /// Which rows set them.
    #[serde(default)]
    pub source: String,
}

/// A whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// "glimpse" or "pytorch".
    pub tool: String,
    /// The tool's version (and wgpu's, or torch's).
    pub version: String,
    /// UTC, ISO 8601.
    pub date: String,
    /// The command line that produced it.
    #[serde(default)]
    pub command: String,
    /// The device.
    pub adapter: Adapter,
    /// The host: OS and logical CPUs.
    #[serde(default)]
    pub host: String,
    /// Ceilings measured in the same run.
    #[serde(default)]
    pub ceilings: Ceilings,
    /// Every workload variant.
    pub workloads: Vec<Row>,
    /// Set while the run goes on ("12 of 40 workloads measured"): a report written before
    /// the end, left so by an interrupted run. Absent from a finished report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<String>,
}

impl Report {
    /// Reads a report written by `glimpse bench --json` or tools/bench_torch.py.
    pub fn read(path: &Path) -> Result<Report> {
        let file_error = |msg: String| Error::File { path: path.display().to_string(), msg };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
        let report: Report = serde_json::from_str(&text)
            .map_err(|e| file_error(format!("not a benchmark report ({SCHEMA} JSON): {e}")))?;
        if report.schema != SCHEMA {
            return Err(file_error(format!("schema is '{}', expected '{SCHEMA}'", report.schema)));
        }
        Ok(report)
    }

    /// The row matching `row` in this report: the same name, shape and variant;
    /// a fused block row also matches PyTorch's "eager" row.
    pub fn find(&self, row: &Row) -> Option<&Row> {
        let same = |r: &&Row, variant: &str| r.name == row.name && r.shape == row.shape && r.variant == variant;
        let exact = self.workloads.iter().find(|r| same(r, &row.variant));
        exact.or_else(|| (row.variant == "fused").then(|| self.workloads.iter().find(|r| same(r, "eager"))).flatten())
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// The report as CSV, one row per workload variant.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "name,suite,shape,variant,status,kernels,dispatches,activation_bytes,timing,repeats,median_ms,min_ms,max_ms,\
             cold_ms,compile_ms,gflops,gbps,intensity,pct_compute,pct_bandwidth,pct_roofline,max_error,rel_l2,\
             checked_on,check_s,speedup_vs_unfused,reason\n",
        );
        let f = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        for r in &self.workloads {
            let fields = [
                csv(&r.name),
                csv(&r.suite),
                csv(&r.shape),
                csv(&r.variant),
                status_word(r.status).to_lowercase(),
                csv(&r.kernels),
                r.dispatches.map(|d| d.to_string()).unwrap_or_default(),
                r.activation_bytes.map(|b| b.to_string()).unwrap_or_default(),
                csv(&r.timing),
                r.repeats.to_string(),
                f(r.median_ms),
                f(r.min_ms),
                f(r.max_ms),
                f(r.cold_ms),
                f(r.compile_ms),
                f(r.gflops),
                f(r.gbps),
                f(r.intensity),
                f(r.pct_compute),
                f(r.pct_bandwidth),
                f(r.pct_roofline),
                r.max_error.map(|e| format!("{e:.3e}")).unwrap_or_default(),
                r.rel_l2.map(|e| format!("{e:.3e}")).unwrap_or_default(),
                csv(&r.checked_on),
                f(r.check_s),
                f(r.speedup_vs_unfused),
                csv(&r.reason),
            ];
            out += &fields.join(",");
            out.push('\n');
        }
        out
    }
}

/// A CSV field, quoted when it holds a comma, quote or newline.
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile_table, is_regression, table};
    use super::*;

    /// A report by `tool` holding `workloads`, every other field empty.
    fn report(tool: &str, workloads: Vec<Row>) -> Report {
        Report {
            schema: SCHEMA.into(),
            tool: tool.into(),
            version: String::new(),
            date: String::new(),
            command: String::new(),
            adapter: Adapter::default(),
            host: String::new(),
            ceilings: Ceilings::default(),
            workloads,
            unfinished: None,
        }
    }

    fn row(name: &str, variant: &str, median: f64, min: f64, max: f64) -> Row {
        let json = format!(
            r#"{{"name": "{name}", "suite": "blocks", "shape": "1x8", "variant": "{variant}", "status": "ok",
                "median_ms": {median}, "min_ms": {min}, "max_ms": {max}}}"#
        );
        serde_json::from_str(&json).expect("a minimal row parses")
    }

    #[test]
    fn regressions_need_more_than_the_spread() {
        let before = row("a", "fused", 10.0, 9.0, 11.0);
        assert!(!is_regression(&row("a", "fused", 11.5, 11.0, 12.0), &before));
        assert!(is_regression(&row("a", "fused", 13.5, 13.0, 14.0), &before));
        assert!(!is_regression(&row("a", "fused", 8.0, 7.0, 9.0), &before));
    }

    #[test]
    fn fused_rows_match_pytorch_eager_rows_and_csv_quotes() {
        let other = report("pytorch", vec![row("a", "eager", 5.0, 4.0, 6.0)]);
        assert!(other.find(&row("a", "fused", 1.0, 1.0, 1.0)).is_some());
        assert!(other.find(&row("a", "unfused", 1.0, 1.0, 1.0)).is_none());
        assert_eq!(csv("a,b \"c\""), "\"a,b \"\"c\"\"\"");
        assert!(table(&other, Some(&other)).contains("pytorch ms"));
    }

    #[test]
    fn the_table_header_names_every_column_and_calibration_rows_are_labelled() {
        let mut ceiling = row("eltwise", "auto", 1.0, 1.0, 1.0);
        ceiling.suite = "ceiling".into();
        let mut report = report("glimpse", vec![ceiling, row("a", "fused", 2.0, 1.5, 2.5)]);
        report.workloads[1].dispatches = Some(3);
        report.workloads[1].speedup_vs_unfused = Some(1.5);
        let text = table(&report, None);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("-- calibration") && lines[3] == "-- blocks", "{text}");
        // Every column of a timed row under its heading: the check column and the last one.
        assert_eq!(lines[0].find("check"), lines[4].find("small"), "{text}");
        assert_eq!(lines[0].trim_end().len(), lines[4].trim_end().len(), "{text}");
    }

    #[test]
    fn the_compile_table_lists_the_slowest_pipelines_with_the_workload_that_used_them_first() {
        let compile =
            |pipeline: &str, create_ms, first_run_ms| Compile { pipeline: pipeline.into(), create_ms, first_run_ms };
        let mut a = row("a", "fused", 2.0, 1.5, 2.5);
        a.compiles = vec![compile("fast", 1.0, Some(2.0)), compile("slow[X=1]", 5.0, Some(900.0))];
        let mut b = row("b", "fused", 2.0, 1.5, 2.5);
        b.compiles = vec![compile("middle", 40.0, None)];
        let text = compile_table(&report("glimpse", vec![a, b]));
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with(
                "-- pipeline compiles: 3 pipelines, 948 ms summed over the threads compiling at once (of which 902 ms"
            ),
            "{text}"
        );
        assert!(lines[2].contains("slow[X=1]") && lines[2].ends_with("a 1x8 fused"), "{text}");
        assert!(lines[3].contains("middle") && lines[4].contains("fast"), "{text}");
        assert_eq!(compile_table(&report("glimpse", vec![])), "");
    }
}
