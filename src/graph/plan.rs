//! A graph compiled for the GPU: every buffer allocated once (dead
//! intermediates reused), weights uploaded once, pipelines and bind groups
//! created once, what kernels compute from the weights alone computed once
//! (prepared launches: Winograd's transformed weights, padded weight rows);
//! each run writes the inputs, submits every other dispatch in one command
//! buffer and reads the outputs back in one mapping.

use super::layout::Layout;
use super::{Graph, Source, Tensors, ValueId};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{budget, Error, Result, Shape};

/// A node of a compiled graph as reports name it (where a plan's time went).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The op at its input shapes ([`crate::ops::Op::describe`]).
    pub what: String,
    /// FLOPs per run ([`crate::ops::Op::cost`]).
    pub flops: u64,
}

/// A compiled graph, runnable any number of times.
#[derive(Debug)]
pub struct Plan {
    inputs: Vec<(String, GpuTensor)>,
    outputs: Vec<(String, GpuTensor)>,
    dispatches: Vec<Dispatch>,
    /// The node each dispatch computes, an index into `steps`.
    origins: Vec<usize>,
    /// The graph's nodes as reports name them, in order.
    steps: Vec<Step>,
    activation_bytes: u64,
    weight_bytes: u64,
    scratch_bytes: u64,
}

impl Plan {
    /// Compiles `graph` for `gpu`. The whole plan's memory is laid out and checked against
    /// the device's plan budget ([`Gpu::plan_bytes`]) before any buffer is allocated; the
    /// buffers that prepared launches fill ([`Dispatch::into_prepared`]: 16/9 of a Winograd
    /// conv's weights at most) are known only once the ops are encoded, and checked then, before
    /// anything runs.
    pub fn compile(gpu: &Gpu, graph: &Graph) -> Result<Plan> {
        let layout = Layout::of(gpu, graph)?;
        budget::check_gpu_plan(layout.weight_bytes, layout.activation_bytes, 0, gpu.plan_bytes())?;

        // Inputs and weights first, in value order, then the intermediates' buffers.
        let mut buffers: Vec<Option<GpuTensor>> = vec![None; layout.sizes.len()];
        let mut inputs = Vec::new();
        for (i, value) in graph.values.iter().enumerate() {
            let t = match &value.source {
                Source::Input(name) => {
                    let t = gpu.empty(&value.shape)?;
                    inputs.push((name.clone(), t.clone()));
                    t
                }
                Source::Const(c) => gpu.upload_constant(c)?,
                Source::Node | Source::View(_) => continue,
            };
            buffers[layout.home[i].expect("inputs and weights have buffers")] = Some(t);
        }
        for (buffer, &bytes) in buffers.iter_mut().zip(&layout.sizes) {
            if buffer.is_none() {
                *buffer = Some(gpu.empty(&Shape::new(&[(bytes / 4) as usize])?)?);
            }
        }
        let home =
            |id: ValueId| buffers[layout.home[id.0].expect("every root is laid out")].as_ref().expect("allocated");

        // The ops' pipelines compile on worker threads while the ops encode (gpu/pipelines.rs);
        // every one has finished when the call returns, and a driver's compile error is raised here.
        let (all, origins, steps) = gpu.compiling_in_parallel(|| -> Result<_> {
            let (mut all, mut origins, mut steps) = (Vec::new(), Vec::new(), Vec::new());
            for node in &graph.nodes {
                let bound = node
                    .inputs
                    .iter()
                    .map(|&id| home(graph.root(id)).reuse_as(graph.shape(id)))
                    .collect::<Result<Vec<_>>>()?;
                let outputs = std::iter::once(node.output)
                    .chain(node.side.iter().copied())
                    .map(|id| home(id).reuse_as(graph.shape(id)))
                    .collect::<Result<Vec<_>>>()?;
                let refs: Vec<&GpuTensor> = bound.iter().collect();
                let out_refs: Vec<&GpuTensor> = outputs.iter().collect();
                let encoded = node.op.encode_all(gpu, &refs, &out_refs)?;
                origins.extend(std::iter::repeat_n(steps.len(), encoded.len()));
                all.extend(encoded);
                let shapes: Vec<&Shape> = node.inputs.iter().map(|&id| graph.shape(id)).collect();
                steps.push(Step { what: node.op.describe(&shapes), flops: node.op.cost(&shapes).flops });
            }
            Ok((all, origins, steps))
        })?;
        for d in &all {
            d.ready()?;
        }

        let outputs = graph
            .outputs
            .iter()
            .map(|(name, id)| Ok((name.clone(), home(graph.root(*id)).reuse_as(graph.shape(*id))?)))
            .collect::<Result<Vec<_>>>()?;
        let own: Vec<GpuTensor> = buffers.into_iter().flatten().collect();
        let elsewhere = bound_elsewhere(&all, &own);
        let (mut prepared, mut dispatches, mut run_origins) = (Vec::new(), Vec::new(), Vec::new());
        for (d, origin) in all.into_iter().zip(origins) {
            if d.prepared_bytes().is_some() {
                prepared.push(d);
            } else {
                dispatches.push(d);
                run_origins.push(origin);
            }
        }
        let origins = run_origins;
        let prepared_bytes: u64 = prepared.iter().filter_map(Dispatch::prepared_bytes).sum();
        let (activation_bytes, weight_bytes) = (layout.activation_bytes, layout.weight_bytes + prepared_bytes);
        let scratch_bytes = elsewhere - prepared_bytes;
        budget::check_gpu_plan(weight_bytes, activation_bytes, scratch_bytes, gpu.plan_bytes())?;
        if !prepared.is_empty() {
            gpu.submit(&prepared)?;
        }
        Ok(Plan { inputs, outputs, dispatches, origins, steps, activation_bytes, weight_bytes, scratch_bytes })
    }

    /// Writes `feed` into the input buffers, runs every dispatch, and reads the outputs.
    pub fn run(&self, gpu: &Gpu, feed: &Tensors) -> Result<Tensors> {
        self.write_inputs(gpu, feed)?;
        let outputs: Vec<&GpuTensor> = self.outputs.iter().map(|(_, t)| t).collect();
        let tensors = gpu.run(&self.dispatches, &outputs)?;
        Ok(self.outputs.iter().map(|(n, _)| n.clone()).zip(tensors).collect())
    }

    /// Writes `feed` into the input buffers (for timing runs without readback).
    pub fn write_inputs(&self, gpu: &Gpu, feed: &Tensors) -> Result<()> {
        for (name, t) in &self.inputs {
            let data =
                feed.get(name).ok_or_else(|| Error::invalid("run", format!("missing input '{name}' {}", t.shape())))?;
            gpu.write(t, data)?;
        }
        Ok(())
    }

    /// The recorded dispatches, in order (what the benchmark times).
    pub fn dispatches(&self) -> &[Dispatch] {
        &self.dispatches
    }

    /// The graph's nodes as reports name them, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The node (an index into [`Plan::steps`]) each of [`Plan::dispatches`] computes.
    pub fn origins(&self) -> &[usize] {
        &self.origins
    }

    /// Number of dispatches per run (prepared launches ran once, at compile time, and are not
    /// counted).
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    /// Bytes of GPU memory for inputs, intermediates and outputs (after reuse).
    pub fn activation_bytes(&self) -> u64 {
        self.activation_bytes
    }

    /// Bytes of GPU memory for weights and what prepared launches computed from them.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Bytes of the device's scratch buffers this plan's launches bind ([`Gpu::scratch`]: shared
    /// with the device's other plans, so two plans' figures may count one buffer twice).
    pub fn scratch_bytes(&self) -> u64 {
        self.scratch_bytes
    }

    /// Every byte of GPU memory the plan holds or binds: weights, activations and scratch (what
    /// the budget check adds up).
    pub fn bytes(&self) -> u64 {
        self.weight_bytes + self.activation_bytes + self.scratch_bytes
    }
}

/// Bytes of the distinct buffers `dispatches` bind that are none of `own`: the device's scratch
/// slots and the buffers prepared launches fill.
fn bound_elsewhere(dispatches: &[Dispatch], own: &[GpuTensor]) -> u64 {
    let mut seen: Vec<&GpuTensor> = Vec::new();
    for t in dispatches.iter().flat_map(|d| &d.recipe().bindings) {
        if !own.iter().chain(seen.iter().copied()).any(|o| o.shares_buffer(t)) {
            seen.push(t);
        }
    }
    seen.iter().map(|t| t.capacity()).sum()
}
