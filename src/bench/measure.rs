//! Running one workload: check against the CPU reference, cold start, warm-up,
//! timed repeats (GPU timestamps summed per run, or wall time around submit +
//! wait), and the row that describes it.

use super::breakdown::breakdown;
use super::cold::{compiled_so_far, record_compiles};
use super::report::{Row, Status};
use super::{MakeGraph, MakeOp, OpInstance, Options, Scale, Workload};
use crate::check::{compare, BLOCK_REL_L2, OP_TOLERANCE};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::graph::{Plan, Tensors};
use crate::ops::{gpu_shapes_of, shapes_of, Cost};
use crate::{Error, Result, Tensor};
use std::time::Instant;

/// What the CPU reference is assumed to sustain, to predict how long a check
/// takes (measured on the development machine: f64 convs and GEMMs run at
/// 0.3-1 GFLOP/s, streaming passes at a few GB/s).
const REFERENCE_FLOPS_PER_S: f64 = 4e8;
const REFERENCE_BYTES_PER_S: f64 = 1e9;
/// Checks predicted to take longer run on a smaller instance of the same kernels.
const CHECK_BUDGET_S: f64 = 10.0;
/// Channel divisors tried for the smaller instance.
const DIVISORS: [usize; 5] = [1, 2, 4, 8, 16];
/// GPU seconds spent timing one variant of a workload, after the first timed
/// run: big workloads get fewer repeats (never fewer than 3 unless asked).
const TIME_BUDGET_S: f64 = 3.0;
/// Most back-to-back repeats of an op in one timed run against the reference (see `time_against`).
const MAX_REPEATS_PER_RUN: f64 = 64.0;

fn reference_seconds(cost: Cost) -> f64 {
    cost.flops as f64 / REFERENCE_FLOPS_PER_S + cost.bytes as f64 / REFERENCE_BYTES_PER_S
}

/// The scales to check on: the full one when its check is cheap, else batch 1
/// and then fewer channels until it is (the smallest when none is).
fn check_scale(batch: usize, cost_at: impl Fn(Scale) -> Result<Cost>) -> Result<Scale> {
    let full = Scale { batch, div: 1 };
    if reference_seconds(cost_at(full)?) <= CHECK_BUDGET_S {
        return Ok(full);
    }
    let mut last = full;
    for div in DIVISORS {
        let scale = Scale { batch: 1, div };
        if reference_seconds(cost_at(scale)?) <= CHECK_BUDGET_S {
            return Ok(scale);
        }
        last = scale;
    }
    Ok(last)
}

/// One timed run: (GPU ms summed over dispatches or None, wall ms).
fn time_once(gpu: &Gpu, dispatches: &[Dispatch]) -> Result<(Option<f64>, f64)> {
    let (per_dispatch, wall) = time_each(gpu, dispatches)?;
    Ok((per_dispatch.map(|ns| ns.iter().sum::<f64>() / 1e6), wall))
}

/// One timed run: (each dispatch's GPU ns or None, wall ms).
fn time_each(gpu: &Gpu, dispatches: &[Dispatch]) -> Result<(Option<Vec<f64>>, f64)> {
    let start = Instant::now();
    if gpu.has_timestamps() {
        let ns = gpu.submit_timed(dispatches)?;
        Ok((Some(ns), start.elapsed().as_secs_f64() * 1e3))
    } else {
        gpu.submit(dispatches)?;
        Ok((None, start.elapsed().as_secs_f64() * 1e3))
    }
}

/// Timing samples of one variant.
#[derive(Default)]
struct Samples {
    gpu_ms: Vec<f64>,
    wall_ms: Vec<f64>,
    /// Each run's per-dispatch GPU ns, where kept (plans: [`breakdown`]).
    per_dispatch: Vec<Vec<f64>>,
}

impl Samples {
    fn add(&mut self, (gpu, wall): (Option<f64>, f64)) {
        if let Some(g) = gpu {
            self.gpu_ms.push(g);
        }
        self.wall_ms.push(wall);
    }

    /// A run with per-dispatch times: its sum is the run's GPU time, as in [`Samples::add`].
    fn add_each(&mut self, (per_dispatch, wall): (Option<Vec<f64>>, f64)) {
        self.add((per_dispatch.as_ref().map(|ns| ns.iter().sum::<f64>() / 1e6), wall));
        self.per_dispatch.extend(per_dispatch);
    }

    /// Fills the row's timing fields: GPU time when every run had timestamps.
    fn fill(&self, row: &mut Row) {
        let (source, times) = if !self.gpu_ms.is_empty() && self.gpu_ms.len() == self.wall_ms.len() {
            ("gpu-timestamps", &self.gpu_ms)
        } else {
            ("wall", &self.wall_ms)
        };
        let (median, min, max) = summary(times);
        row.timing = source.to_string();
        row.repeats = times.len();
        row.median_ms = Some(median);
        row.min_ms = Some(min);
        row.max_ms = Some(max);
        row.wall_median_ms = Some(summary(&self.wall_ms).0);
    }
}

/// Median, min and max (the mean of the middle two for an even count).
pub fn summary(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    (median, s[0], s[n - 1])
}

/// Timed repeats for runs of about `run_ms`: as many as fit the time budget,
/// at most `repeat`, and at least 3 (2 past a second per run, 1 past ten
/// seconds: batch-8 blocks on lavapipe) unless `repeat` asks for fewer.
fn repeats(options: &Options, run_ms: f64) -> usize {
    let fit = (TIME_BUDGET_S * 1e3 / run_ms.max(1e-3)) as usize;
    let floor = match run_ms {
        t if t <= 1e3 => 3,
        t if t <= 1e4 => 2,
        _ => 1,
    };
    options.repeat.min(fit.max(floor))
}

/// The time of one warm run: measured by an untimed warm-up run after a quick
/// cold start, or the cold start itself when it was slow (pipelines are
/// compiled before the first submit, so a slow cold run is mostly the run).
fn warm_estimate(gpu: &Gpu, dispatches: &[&[Dispatch]], cold_ms: f64) -> Result<f64> {
    if cold_ms > 1e3 {
        return Ok(cold_ms);
    }
    let mut total = 0.0;
    for d in dispatches {
        let (g, wall) = time_once(gpu, d)?;
        total += g.unwrap_or(wall);
    }
    Ok(total)
}

/// A row for an error: skipped when the device cannot hold the workload.
fn failed(mut row: Row, e: &Error) -> Row {
    row.status = if matches!(e, Error::TooLarge { .. }) { Status::Skipped } else { Status::Error };
    row.reason = e.to_string();
    row
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A single op on GPU tensors, ready to run: its launches per run (prepared launches, which
/// compute from weights alone, already ran once, as a plan runs them) and its output.
struct Bound {
    dispatches: Vec<Dispatch>,
    output: GpuTensor,
    /// The distinct kernel names, the prepared ones marked "(once)".
    kernels: String,
}

fn bind_op(gpu: &Gpu, inst: &OpInstance) -> Result<Bound> {
    let uploaded = inst
        .inputs
        .iter()
        .enumerate()
        .map(|(i, t)| if inst.is_weight(i) { gpu.upload_constant(t) } else { gpu.upload(t) })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&GpuTensor> = uploaded.iter().collect();
    let output = gpu.empty(&inst.op.output_shape(&gpu_shapes_of(&refs))?)?;
    // Poisoned: an element the kernel forgets to write cannot pass the check.
    gpu.fill(&output, f32::NAN)?;
    let all = inst.op.encode(gpu, &refs, &output)?;
    let kernels = kernel_names(&all);
    let (prepared, dispatches): (Vec<Dispatch>, Vec<Dispatch>) =
        all.into_iter().partition(|d| d.prepared_bytes().is_some());
    gpu.submit(&prepared)?;
    Ok(Bound { dispatches, output, kernels })
}

/// Runs one single-op workload; never fails (errors become the row's status).
pub(super) fn run_op(
    gpu: &Gpu,
    w: &Workload,
    variant: &str,
    make: &MakeOp,
    reference: Option<&MakeOp>,
    options: &Options,
) -> Row {
    let row = w.row(variant);
    match try_run_op(gpu, w, make, reference, options, row.clone()) {
        Ok(row) => row,
        Err(e) => failed(row, &e),
    }
}

fn try_run_op(
    gpu: &Gpu,
    w: &Workload,
    make: &MakeOp,
    reference: Option<&MakeOp>,
    options: &Options,
    mut row: Row,
) -> Result<Row> {
    let mut rng = w.rng(options.seed);
    let inst = make(&mut rng, 1)?;
    let cost = inst.op.cost(&shapes_of(&inst.inputs.iter().collect::<Vec<_>>()));
    (row.flops, row.bytes) = (cost.flops, cost.bytes);
    let check = check_scale(1, |s| {
        let i = make(&mut w.rng(options.seed), s.div)?;
        Ok(i.op.cost(&shapes_of(&i.inputs.iter().collect::<Vec<_>>())))
    })?;

    let (cold, compiled) = (Instant::now(), compiled_so_far(gpu));
    let bound = bind_op(gpu, &inst)?;
    gpu.submit(&bound.dispatches)?;
    row.cold_ms = Some(ms_since(cold));
    record_compiles(&mut row, gpu, compiled);
    row.dispatches = Some(bound.dispatches.len());
    row.kernels = bound.kernels.clone();

    // Check first, on these inputs or on the smaller instance of the same kernels.
    let checking = Instant::now();
    let (got, want, on) = if check.div == 1 {
        let want = inst.op.reference(&inst.inputs.iter().collect::<Vec<_>>())?;
        (gpu.read(&bound.output)?, want, "full".to_string())
    } else {
        let small = make(&mut w.rng(options.seed), check.div)?;
        let b = bind_op(gpu, &small)?;
        gpu.submit(&b.dispatches)?;
        let want = small.op.reference(&small.inputs.iter().collect::<Vec<_>>())?;
        (gpu.read(&b.output)?, want, format!("reduced: {}", shape_list(&small.inputs)))
    };
    let c = compare(&got, &want, OP_TOLERANCE);
    row.check_s = Some(checking.elapsed().as_secs_f64());
    row.checked_on = on;
    (row.max_error, row.rel_l2) = (Some(c.max_abs), Some(c.rel_l2));
    if !c.passed {
        row.status = Status::Wrong;
        row.reason = format!(
            "differs from the CPU reference: worst element {} is {:.2}x the tolerance (max |err| {:.3e}); not timed",
            c.worst_index, c.worst, c.max_abs
        );
        return Ok(row);
    }

    let mut samples = Samples::default();
    let run_ms = warm_estimate(gpu, &[&bound.dispatches], row.cold_ms.unwrap_or(0.0))?;
    match reference {
        None => {
            for _ in 0..repeats(options, run_ms) {
                samples.add(time_once(gpu, &bound.dispatches)?);
            }
        }
        Some(make_reference) => {
            let (reference_samples, reference_flops) =
                time_against(gpu, w, options, &bound, run_ms, make_reference, &mut samples)?;
            let fastest_rate = |s: &Samples, flops: u64| {
                let times = if s.gpu_ms.len() == s.wall_ms.len() { &s.gpu_ms } else { &s.wall_ms };
                flops as f64 / (summary(times).1 / 1e3) / 1e9
            };
            let reference_gflops = fastest_rate(&reference_samples, reference_flops);
            row.reference_gflops = Some(reference_gflops);
            row.pct_reference = Some(100.0 * fastest_rate(&samples, row.flops) / reference_gflops);
        }
    }
    samples.fill(&mut row);
    row.status = Status::Ok;
    Ok(row)
}

/// Times the bound op and the reference op interleaved, alternating which runs first in each
/// round, so that both see the same load (this machine's load moves within seconds): the
/// reference's samples and FLOPs per run. The reference (the run's GEMM ceiling kernel) is checked
/// by its own ceiling row; here it is only timed, warmed once first. The shorter of the two is
/// repeated back to back (in one submit) until both runs last about as long: a 30 ms GEMM would
/// otherwise find a quiet moment between other processes' bursts more easily than a 400 ms conv
/// (and a 3 ms conv more easily than the GEMM), and the fastest of a few runs would favour it.
/// The row's samples are per single run of its op (a repeated run's time divided by the repeats).
fn time_against(
    gpu: &Gpu,
    w: &Workload,
    options: &Options,
    bound: &Bound,
    run_ms: f64,
    make_reference: &MakeOp,
    samples: &mut Samples,
) -> Result<(Samples, u64)> {
    let inst = make_reference(&mut w.rng(options.seed), 1)?;
    let flops = inst.op.cost(&shapes_of(&inst.inputs.iter().collect::<Vec<_>>())).flops;
    let reference = bind_op(gpu, &inst)?;
    gpu.submit(&reference.dispatches)?;
    let once_ms = warm_estimate(gpu, &[&reference.dispatches], 0.0)?;
    let target_ms = run_ms.max(once_ms);
    let times = |ms: f64| (target_ms / ms.max(1e-3)).round().clamp(1.0, MAX_REPEATS_PER_RUN) as usize;
    let (reference_times, row_times) = (times(once_ms), times(run_ms));
    let (reference_run, row_run) = (repeated(&reference, reference_times), repeated(bound, row_times));
    let mut reference_samples = Samples::default();
    for round in 0..repeats(options, 2.0 * target_ms) {
        for turn in 0..2 {
            if (round + turn) % 2 == 0 {
                let (gpu_ms, wall_ms) = time_once(gpu, &row_run)?;
                samples.add((gpu_ms.map(|t| t / row_times as f64), wall_ms / row_times as f64));
            } else {
                reference_samples.add(time_once(gpu, &reference_run)?);
            }
        }
    }
    Ok((reference_samples, flops * reference_times as u64))
}

/// The bound op's dispatches `times` over, for one submit.
fn repeated(bound: &Bound, times: usize) -> Vec<Dispatch> {
    (0..times).flat_map(|_| bound.dispatches.iter().cloned()).collect()
}

fn shape_list(inputs: &[Tensor]) -> String {
    inputs.iter().map(|t| t.shape().to_string()).collect::<Vec<_>>().join(", ")
}

/// The distinct kernel names of `dispatches`, in order; a prepared launch's (run once, not timed:
/// [`Dispatch::into_prepared`]) marked "(once)".
fn kernel_names(dispatches: &[Dispatch]) -> String {
    let mut names: Vec<String> = Vec::new();
    for d in dispatches {
        let name = if d.prepared_bytes().is_some() { format!("{} (once)", d.label()) } else { d.label().to_string() };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join("+")
}

/// Runs a fused / unfused pair: both checked, both timed interleaved; returns
/// the fused row then the unfused one, each with its status.
pub(super) fn run_pair(gpu: &Gpu, w: &Workload, make: &MakeGraph, options: &Options) -> Vec<Row> {
    let seed = w.seed(options.seed);
    let mut rows = [w.row("fused"), w.row("unfused")];
    let mut plans: [Option<(Plan, Tensor)>; 2] = [None, None];
    let mut feed = Tensors::new();
    for (i, fused) in [true, false].into_iter().enumerate() {
        let row = &mut rows[i];
        let result = make(seed, Scale::FULL, fused).and_then(|(graph, f)| {
            let cost = graph.cost();
            (row.flops, row.bytes) = (cost.flops, cost.bytes);
            let (cold, compiled) = (Instant::now(), compiled_so_far(gpu));
            let plan = Plan::compile(gpu, &graph)?;
            let y = output_y(plan.run(gpu, &f)?)?;
            row.cold_ms = Some(ms_since(cold));
            record_compiles(row, gpu, compiled);
            row.dispatches = Some(plan.dispatch_count());
            row.activation_bytes = Some(plan.activation_bytes());
            row.kernels = kernel_names(plan.dispatches());
            feed = f;
            Ok((plan, y))
        });
        match result {
            Ok(p) => plans[i] = Some(p),
            Err(e) => rows[i] = failed(rows[i].clone(), &e),
        }
    }
    if plans.iter().any(Option::is_some) {
        if let Err(e) = check_pair(gpu, make, seed, &mut rows, &mut plans) {
            drop_live(&mut rows, &mut plans, &e);
        }
    }
    if plans.iter().any(Option::is_some) {
        if let Err(e) = time_pair(gpu, options, &feed, &mut rows, &plans) {
            drop_live(&mut rows, &mut plans, &e);
        }
    }
    if let (Some(f), Some(u)) = (rows[0].median_ms, rows[1].median_ms) {
        rows[0].speedup_vs_unfused = Some(u / f);
    }
    rows.into()
}

/// Marks every variant still running as failed with `e`.
fn drop_live(rows: &mut [Row; 2], plans: &mut [Option<(Plan, Tensor)>; 2], e: &Error) {
    for (row, plan) in rows.iter_mut().zip(plans) {
        if plan.take().is_some() {
            *row = failed(row.clone(), e);
        }
    }
}

fn output_y(mut outputs: Tensors) -> Result<Tensor> {
    outputs.remove("y").ok_or_else(|| Error::invalid("bench", "the block has no output y"))
}

/// Checks both plans' `y` against the CPU executor run on the unfused graph
/// (the chain of single-op references): the full instance's outputs when its
/// check is cheap enough, otherwise freshly compiled plans of a smaller
/// instance. A variant that differs is marked wrong and not timed.
fn check_pair(
    gpu: &Gpu,
    make: &MakeGraph,
    seed: u64,
    rows: &mut [Row; 2],
    plans: &mut [Option<(Plan, Tensor)>; 2],
) -> Result<()> {
    let checking = Instant::now();
    let check = check_scale(usize::MAX, |s| Ok(make(seed, s, false)?.0.cost()))?;
    let (reference_graph, feed) = make(seed, check, false)?;
    let want = output_y(reference_graph.run_cpu(&feed)?)?;
    let on = if check == Scale::FULL {
        "full".to_string()
    } else {
        let shapes: Vec<String> = reference_graph.inputs().iter().map(|(_, s)| s.to_string()).collect();
        format!("reduced: {}", shapes.join(", "))
    };
    for (i, fused) in [true, false].into_iter().enumerate() {
        let Some((_, full_y)) = &plans[i] else { continue };
        let got = if check == Scale::FULL {
            full_y.clone()
        } else {
            let (graph, _) = make(seed, check, fused)?;
            output_y(Plan::compile(gpu, &graph)?.run(gpu, &feed)?)?
        };
        let c = compare(&got, &want, OP_TOLERANCE);
        let row = &mut rows[i];
        row.checked_on = on.clone();
        row.check_s = Some(checking.elapsed().as_secs_f64());
        (row.max_error, row.rel_l2) = (Some(c.max_abs), Some(c.rel_l2));
        // A NaN output fails too.
        if got.shape() != want.shape() || c.rel_l2.is_nan() || c.rel_l2 > BLOCK_REL_L2 {
            row.status = Status::Wrong;
            row.reason = format!(
                "relative L2 error {:.2e} against the CPU reference exceeds {BLOCK_REL_L2:.0e}; not timed",
                c.rel_l2
            );
            plans[i] = None;
        }
    }
    Ok(())
}

/// Times the plans that passed, alternating which goes first in each round.
fn time_pair(
    gpu: &Gpu,
    options: &Options,
    feed: &Tensors,
    rows: &mut [Row; 2],
    plans: &[Option<(Plan, Tensor)>; 2],
) -> Result<()> {
    let live: Vec<&Plan> = plans.iter().flatten().map(|(p, _)| p).collect();
    let index: Vec<usize> = (0..2).filter(|&i| plans[i].is_some()).collect();
    for plan in &live {
        plan.write_inputs(gpu, feed)?;
    }
    let cold_ms: f64 = index.iter().filter_map(|&i| rows[i].cold_ms).sum();
    let dispatches: Vec<&[Dispatch]> = live.iter().map(|p| p.dispatches()).collect();
    let run_ms = warm_estimate(gpu, &dispatches, cold_ms)?;
    let mut samples = [Samples::default(), Samples::default()];
    for round in 0..repeats(options, run_ms) {
        for k in 0..live.len() {
            // Alternate the order so that neither variant always runs on a warmer cache.
            let k = if round % 2 == 0 { k } else { live.len() - 1 - k };
            samples[index[k]].add_each(time_each(gpu, live[k].dispatches())?);
        }
    }
    for (k, &i) in index.iter().enumerate() {
        samples[i].fill(&mut rows[i]);
        (rows[i].time_by_op, rows[i].time_by_kernel) = breakdown(live[k], &samples[i].per_dispatch);
        rows[i].status = Status::Ok;
    }
    Ok(())
}
