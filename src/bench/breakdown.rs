//! Where a plan's time went: each dispatch's GPU time (its median over the timed runs) summed by
//! what it computes, the graph node's op at its shapes (a network's repeated blocks add up under
//! one line), and by kernel. Timestamps only: without them a run has no per-dispatch times.

use super::measure::summary;
use super::table::format_ms;
use super::Report;
use crate::graph::Plan;
use serde::{Deserialize, Serialize};

/// One op at one set of shapes in a plan, with the time its dispatches took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpTime {
    /// The op at its input shapes (`conv2d 1x64x56x56>64 3x3/1`: [`crate::ops::Op::describe`]).
    pub op: String,
    /// The plan's nodes with that op at those shapes.
    pub nodes: usize,
    /// Their dispatches per run.
    pub dispatches: usize,
    /// GPU time per run, ms: each dispatch's median over the timed runs, summed.
    pub ms: f64,
    /// `ms` as a percentage of the row's per-dispatch medians summed (close to, not equal to, the
    /// median run).
    pub pct: f64,
    /// The nodes' FLOPs per run over `ms`, GFLOP/s; none for ops without arithmetic to count.
    pub gflops: Option<f64>,
}

/// One kernel in a plan, with the time its dispatches took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelTime {
    /// The kernel (shader file stem).
    pub kernel: String,
    /// Its dispatches per run.
    pub dispatches: usize,
    /// GPU time per run, ms (summed per-dispatch medians, as in [`OpTime`]).
    pub ms: f64,
    /// `ms` as a percentage of the row's per-dispatch medians summed.
    pub pct: f64,
}

/// Ops and kernels, slowest first, from `runs`: each timed run's per-dispatch GPU times in
/// nanoseconds, in the plan's dispatch order. Empty when no run has one time per dispatch.
pub fn breakdown(plan: &Plan, runs: &[Vec<f64>]) -> (Vec<OpTime>, Vec<KernelTime>) {
    let count = plan.dispatches().len();
    let runs: Vec<&Vec<f64>> = runs.iter().filter(|r| r.len() == count).collect();
    if runs.is_empty() || count == 0 {
        return (Vec::new(), Vec::new());
    }
    let medians: Vec<f64> =
        (0..count).map(|i| summary(&runs.iter().map(|r| r[i] / 1e6).collect::<Vec<_>>()).0).collect();
    let total: f64 = medians.iter().sum();
    let pct = |ms: f64| if total > 0.0 { 100.0 * ms / total } else { 0.0 };

    let steps = plan.steps();
    let mut ops: Vec<(OpTime, Vec<usize>, u64)> = Vec::new();
    let mut kernels: Vec<KernelTime> = Vec::new();
    for ((dispatch, &origin), &ms) in plan.dispatches().iter().zip(plan.origins()).zip(&medians) {
        let step = &steps[origin];
        let at = match ops.iter().position(|(o, _, _)| o.op == step.what) {
            Some(i) => i,
            None => {
                let op = OpTime { op: step.what.clone(), nodes: 0, dispatches: 0, ms: 0.0, pct: 0.0, gflops: None };
                ops.push((op, Vec::new(), 0));
                ops.len() - 1
            }
        };
        let (op, nodes, flops) = &mut ops[at];
        op.dispatches += 1;
        op.ms += ms;
        if !nodes.contains(&origin) {
            nodes.push(origin);
            *flops += step.flops;
        }
        let label = dispatch.label();
        match kernels.iter_mut().find(|k| k.kernel == label) {
            Some(k) => (k.dispatches, k.ms) = (k.dispatches + 1, k.ms + ms),
            None => kernels.push(KernelTime { kernel: label.to_string(), dispatches: 1, ms, pct: 0.0 }),
        }
    }
    let mut ops: Vec<OpTime> = ops
        .into_iter()
        .map(|(mut op, nodes, flops)| {
            op.nodes = nodes.len();
            op.pct = pct(op.ms);
            op.gflops = (flops > 0 && op.ms > 0.0).then(|| flops as f64 / (op.ms / 1e3) / 1e9);
            op
        })
        .collect();
    for k in &mut kernels {
        k.pct = pct(k.ms);
    }
    ops.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    kernels.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    (ops, kernels)
}

/// Ops listed per row in the text, the slowest first.
const TOP_OPS: usize = 12;
/// Kernels listed per row in the text.
const TOP_KERNELS: usize = 8;

/// For every row with a breakdown (plans timed with timestamps: blocks and networks), its slowest
/// ops and kernels: what `glimpse bench --verbose` prints under the table.
pub fn breakdown_table(report: &Report) -> String {
    let mut s = String::new();
    for r in report.workloads.iter().filter(|r| !r.time_by_op.is_empty()) {
        let total: f64 = r.time_by_op.iter().map(|o| o.ms).sum();
        s += &format!(
            "-- where the time went: {} ({} ms summed over {} dispatches' medians; the {} slowest of {} ops)\n",
            r.label(),
            format_ms(Some(total)),
            r.time_by_op.iter().map(|o| o.dispatches).sum::<usize>(),
            r.time_by_op.len().min(TOP_OPS),
            r.time_by_op.len()
        );
        s += &format!("{:>9} {:>4} {:>5} {:>4} {:>8}  op\n", "ms", "%", "nodes", "disp", "GFLOP/s");
        for o in r.time_by_op.iter().take(TOP_OPS) {
            let gflops = o.gflops.map(|g| format!("{g:.2}")).unwrap_or_else(|| "-".into());
            s += &format!(
                "{:>9} {:>4.0} {:>5} {:>4} {:>8}  {}\n",
                format_ms(Some(o.ms)),
                o.pct,
                o.nodes,
                o.dispatches,
                gflops,
                o.op
            );
        }
        let kernels: Vec<String> = r
            .time_by_kernel
            .iter()
            .take(TOP_KERNELS)
            .map(|k| format!("{} {:.0}% ({})", k.kernel, k.pct, k.dispatches))
            .collect();
        s += &format!("kernels (share, dispatches): {}\n", kernels.join(", "));
    }
    s
}
