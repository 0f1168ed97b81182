//! The benchmark harness, following PERF.md: every workload is checked against
//! the CPU reference before it is timed (a wrong one is reported, never timed),
//! its first run is timed apart as the cold start, then it is repeated and the
//! median and spread of GPU time (timestamp queries summed over dispatches, or
//! wall time where the adapter has none) are reported with GFLOP/s and GB/s
//! from the ops' cost models, as percentages of this device's own ceilings
//! measured in the same run (a stream kernel and the best GEMM).
//!
//! Workloads: the ops suite (each op at the shapes the blocks give it) and the
//! blocks suite (every block at three ResNet stages, fused and unfused plans
//! timed interleaved). Everything goes through public APIs (`Op`,
//! `blocks::build`, `Plan`), so kernels can change under the harness.

mod blocks;
mod breakdown;
mod cold;
mod convs;
mod measure;
mod networks;
mod ops;
mod plot;
mod report;
mod table;

pub use blocks::random_weights;
pub use breakdown::{breakdown_table, KernelTime, OpTime};
pub use measure::summary;
pub use plot::svg;
pub use report::{Adapter, Ceilings, Compile, Report, Row, Status, SCHEMA};
pub use table::{format_ms, is_regression, table};

use crate::gpu::Gpu;
use crate::graph::{Graph, Tensors};
use crate::ops::Op;
use crate::{Error, Result, Tensor};

/// Which workloads run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// Single ops at the blocks' shapes.
    Ops,
    /// Whole blocks, fused against unfused.
    Blocks,
    /// Whole timm networks at 224 x 224, fused against unfused.
    Networks,
    /// Every distinct conv of timm.skresnet18 and timm.resnet50, alone (not part of `All`).
    Convs,
    /// Both.
    All,
}

/// How a run is configured.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which suite.
    pub suite: Suite,
    /// Only workloads whose `name shape` contains this text.
    pub filter: Option<String>,
    /// The batch besides 1 that blocks (and the Non-local pair) run at.
    pub batch: usize,
    /// Most timed runs per variant (big workloads get fewer, at least 3).
    pub repeat: usize,
    /// Seed of the random inputs and weights.
    pub seed: u64,
}

/// Which instance of a workload to build: `batch` caps the batch and `div`
/// divides the channels (the full instance is [`Scale::FULL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Largest batch.
    pub batch: usize,
    /// Channel divisor.
    pub div: usize,
}

impl Scale {
    /// The workload as benchmarked.
    pub const FULL: Scale = Scale { batch: usize::MAX, div: 1 };
}

/// One op and its inputs.
pub struct OpInstance {
    /// The op.
    pub op: Box<dyn Op>,
    /// Its inputs, in `input_names` order.
    pub inputs: Vec<Tensor>,
    /// The indices of the inputs a network holds as weights: uploaded as constants, as a plan
    /// does, so that launches computing from them alone run once, untimed.
    pub weights: Vec<usize>,
}

impl OpInstance {
    /// An instance whose inputs are all activations (timed with everything they feed).
    pub fn new(op: Box<dyn Op>, inputs: Vec<Tensor>) -> OpInstance {
        OpInstance { op, inputs, weights: Vec::new() }
    }

    /// Whether input `i` is a weight.
    pub fn is_weight(&self, i: usize) -> bool {
        self.weights.contains(&i)
    }
}

type MakeOp = Box<dyn Fn(&mut fastrand::Rng, usize) -> Result<OpInstance>>;
type MakeGraph = Box<dyn Fn(u64, Scale, bool) -> Result<(Graph, Tensors)>>;

enum Kind {
    /// A single op: built from an rng and a channel divisor; with a reference op (the GEMM), the
    /// two are timed interleaved and the row gets the op's rate as a share of the reference's.
    Op { variant: String, make: MakeOp, reference: Option<MakeOp> },
    /// A fused / unfused pair: built from a seed, a scale and `fused`.
    Pair(MakeGraph),
}

/// Something to benchmark.
pub struct Workload {
    /// "ops", "blocks" or "ceiling".
    pub suite: &'static str,
    /// Op stem or architecture.
    pub name: String,
    /// Size, e.g. "1x256x56x56".
    pub shape: String,
    kind: Kind,
}

impl Workload {
    fn op(
        suite: &'static str,
        name: &str,
        shape: &str,
        variant: &str,
        make: impl Fn(&mut fastrand::Rng, usize) -> Result<OpInstance> + 'static,
    ) -> Workload {
        let kind = Kind::Op { variant: variant.to_string(), make: Box::new(make), reference: None };
        Workload { suite, name: name.to_string(), shape: shape.to_string(), kind }
    }

    /// This single-op workload timed interleaved with `reference` (see [`Kind::Op`]).
    fn against(mut self, reference: impl Fn(&mut fastrand::Rng, usize) -> Result<OpInstance> + 'static) -> Workload {
        if let Kind::Op { reference: r, .. } = &mut self.kind {
            *r = Some(Box::new(reference));
        }
        self
    }

    fn pair(
        suite: &'static str,
        name: &str,
        shape: &str,
        make: impl Fn(u64, Scale, bool) -> Result<(Graph, Tensors)> + 'static,
    ) -> Workload {
        Workload { suite, name: name.to_string(), shape: shape.to_string(), kind: Kind::Pair(Box::new(make)) }
    }

    /// `name shape variant` (variants "fused/unfused" for pairs).
    pub fn label(&self) -> String {
        match &self.kind {
            Kind::Op { variant, .. } => format!("{} {} {variant}", self.name, self.shape),
            Kind::Pair(_) => format!("{} {} fused/unfused", self.name, self.shape),
        }
    }

    /// This workload's own seed: the run's seed mixed with its label (FNV-1a),
    /// so that filtering does not change any workload's inputs.
    fn seed(&self, seed: u64) -> u64 {
        self.label().bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
    }

    fn rng(&self, seed: u64) -> fastrand::Rng {
        fastrand::Rng::with_seed(self.seed(seed))
    }

    /// An empty row for `variant` of this workload.
    fn row(&self, variant: &str) -> Row {
        Row {
            name: self.name.clone(),
            suite: self.suite.to_string(),
            shape: self.shape.clone(),
            variant: variant.to_string(),
            status: Status::Error,
            reason: String::new(),
            kernels: String::new(),
            dispatches: None,
            activation_bytes: None,
            timing: String::new(),
            repeats: 0,
            median_ms: None,
            min_ms: None,
            max_ms: None,
            wall_median_ms: None,
            cold_ms: None,
            compile_ms: None,
            compiles: Vec::new(),
            flops: 0,
            bytes: 0,
            gflops: None,
            gbps: None,
            intensity: None,
            pct_compute: None,
            pct_bandwidth: None,
            pct_roofline: None,
            max_error: None,
            rel_l2: None,
            checked_on: String::new(),
            check_s: None,
            speedup_vs_unfused: None,
            reference_gflops: None,
            pct_reference: None,
            time_by_op: Vec::new(),
            time_by_kernel: Vec::new(),
        }
    }

    /// Checks and times every variant; errors become the rows' status.
    pub fn run(&self, gpu: &Gpu, options: &Options) -> Vec<Row> {
        match &self.kind {
            Kind::Op { variant, make, reference } => {
                vec![measure::run_op(gpu, self, variant, make, reference.as_ref(), options)]
            }
            Kind::Pair(make) => measure::run_pair(gpu, self, make, options),
        }
    }
}

/// Every workload of `suite` at `batch`, before filtering.
pub fn suite_workloads(suite: Suite, batch: usize) -> Vec<Workload> {
    let mut list = Vec::new();
    if matches!(suite, Suite::Ops | Suite::All) {
        list.extend(ops::workloads(batch));
    }
    if matches!(suite, Suite::Blocks | Suite::All) {
        list.extend(blocks::workloads(batch));
    }
    if matches!(suite, Suite::Networks | Suite::All) {
        list.extend(networks::workloads(batch));
    }
    if suite == Suite::Convs {
        list.extend(convs::workloads(batch));
    }
    list
}

/// The workloads `options` selects, or an error listing the valid names when
/// the filter matches none.
pub fn workloads(options: &Options) -> Result<Vec<Workload>> {
    let all = suite_workloads(options.suite, options.batch);
    let Some(filter) = options.filter.as_deref() else { return Ok(all) };
    let names = |list: &[Workload]| {
        let mut n: Vec<String> = list.iter().map(|w| w.name.clone()).collect();
        n.dedup();
        n.join(", ")
    };
    // `A|B` selects the workloads whose label contains A or B.
    let matches = |w: &Workload| filter.split('|').any(|part| !part.is_empty() && w.label().contains(part));
    let valid = names(&all);
    let chosen: Vec<Workload> = all.into_iter().filter(matches).collect();
    if chosen.is_empty() {
        let elsewhere = suite_workloads(Suite::All, options.batch).into_iter().filter(matches).count();
        let hint = if elsewhere > 0 {
            format!(" ({elsewhere} match in another suite: try --suite all)")
        } else {
            String::new()
        };
        return Err(Error::invalid(
            "bench",
            format!("no workload matches --filter '{filter}'{hint}; workloads of this suite: {valid}"),
        ));
    }
    Ok(chosen)
}

/// The ceiling kernels (stream and GEMM), run before the workloads.
pub fn ceiling_workloads() -> Vec<Workload> {
    ops::ceilings()
}

/// The report of a run: ceilings from its rows (the stream kernel and the best
/// GEMM, each raised by any row that beat it), every row's rates and percentages.
pub fn report(gpu: &Gpu, mut rows: Vec<Row>, command: &str) -> Report {
    let ok = |r: &&Row| r.status == Status::Ok;
    let rate = |r: &Row, amount: u64| r.median_ms.map_or(0.0, |ms| amount as f64 / (ms / 1e3) / 1e9);
    let best = |rows: &[Row], pick: &dyn Fn(&Row) -> bool, amount: &dyn Fn(&Row) -> u64| {
        let candidates = rows.iter().filter(ok).filter(|r| pick(r));
        candidates
            .max_by(|a, b| rate(a, amount(a)).total_cmp(&rate(b, amount(b))))
            .map(|r| (rate(r, amount(r)), r.label()))
    };
    // Bandwidth: the stream kernel, or any kernel that moved its bytes faster
    // (eltwise launches one workgroup per 256 elements, which costs lavapipe
    // more than the memory traffic). Compute: the best GEMM of the run, or any
    // workload that sustained more (a noisy GEMM sample must not put others
    // above 100%).
    let stream = best(&rows, &|r| r.suite == "ceiling" && r.name == "eltwise", &|r| r.bytes);
    let fastest = best(&rows, &|_| true, &|r| r.bytes);
    let gemm = best(&rows, &|r| r.name == "matmul", &|r| r.flops);
    let mut ceilings = Ceilings::default();
    let mut sources = Vec::new();
    if let Some((gbps, label)) = stream {
        ceilings.stream_gbps = Some(gbps);
        sources.push(format!("stream kernel {label}: {gbps:.2} GB/s"));
    }
    if let Some((gbps, label)) = fastest.filter(|(g, _)| ceilings.stream_gbps.is_none_or(|s| *g > s)) {
        ceilings.stream_gbps = Some(gbps);
        sources.push(format!("bandwidth raised to {gbps:.2} GB/s by {label}"));
    }
    if let Some((gflops, label)) = gemm {
        ceilings.gemm_gflops = Some(gflops);
        sources.push(format!("compute: {label}: {gflops:.2} GFLOP/s"));
    }
    let fastest = best(&rows, &|_| true, &|r| r.flops);
    if let Some((gflops, label)) = fastest.filter(|(g, _)| ceilings.gemm_gflops.is_none_or(|c| *g > c)) {
        ceilings.gemm_gflops = Some(gflops);
        sources.push(format!("compute raised to {gflops:.2} GFLOP/s by {label}"));
    }
    ceilings.source = sources.join("; ");
    for r in &mut rows {
        r.derive(&ceilings);
    }
    let a = gpu.adapter();
    Report {
        schema: SCHEMA.to_string(),
        tool: "glimpse".to_string(),
        version: format!("glimpse {} (wgpu {})", env!("CARGO_PKG_VERSION"), wgpu_version()),
        date: utc_now(),
        command: command.to_string(),
        adapter: Adapter {
            name: a.name.clone(),
            backend: a.backend.clone(),
            driver: a.driver.clone(),
            device_type: a.device_type.clone(),
        },
        host: format!(
            "{} {}, {} logical CPUs",
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        ceilings,
        workloads: rows,
        unfinished: None,
    }
}

/// The wgpu version this binary was built with, from Cargo.lock.
pub fn wgpu_version() -> &'static str {
    const LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"));
    LOCK.split("[[package]]")
        .find(|p| p.contains("\nname = \"wgpu\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map_or("unknown", |v| v.trim_end_matches('"'))
}

/// Now as ISO 8601 UTC (civil date from days since 1970, Howard Hinnant's algorithm).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_dates_are_well_formed() {
        assert!(wgpu_version().starts_with("30."), "{}", wgpu_version());
        let d = utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }

    #[test]
    fn a_filter_matching_nothing_lists_the_workloads() {
        let options = Options { suite: Suite::Ops, filter: Some("nope".into()), batch: 1, repeat: 3, seed: 0 };
        let e = workloads(&options).err().expect("no match").to_string();
        assert!(e.contains("no workload matches --filter 'nope'") && e.contains("conv2d, matmul"), "{e}");
        let options = Options { filter: Some("CbamModule".into()), ..options };
        let e = workloads(&options).err().expect("other suite").to_string();
        assert!(e.contains("try --suite all"), "{e}");
    }

    #[test]
    fn a_filter_takes_alternatives() {
        let options = Options { suite: Suite::Blocks, filter: None, batch: 1, repeat: 3, seed: 0 };
        let count = |filter: &str| {
            workloads(&Options { filter: Some(filter.into()), ..options.clone() }).map_or(0, |w| w.len())
        };
        let (sk, basic) = (count("SelectiveKernel"), count("BasicBlock"));
        assert!(sk > 0 && basic > 0);
        assert_eq!(count("SelectiveKernel|BasicBlock"), sk + basic);
        assert_eq!(count("SelectiveKernel|"), sk, "an empty alternative matches nothing");
    }

    #[test]
    fn summary_gives_median_min_max() {
        assert_eq!(summary(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(summary(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }
}
