//! A graph compiled for the GPU: every buffer allocated once (dead
//! intermediates reused), weights uploaded once, pipelines and bind groups
//! created once; each run writes the inputs, submits every dispatch in one
//! command buffer and reads the outputs back in one mapping.

use super::{Graph, Source, Tensors, ValueId};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{Error, Result};

/// A compiled graph, runnable any number of times.
#[derive(Debug)]
pub struct Plan {
    inputs: Vec<(String, GpuTensor)>,
    outputs: Vec<(String, GpuTensor)>,
    dispatches: Vec<Dispatch>,
    activation_bytes: u64,
    weight_bytes: u64,
}

impl Plan {
    /// Compiles `graph` for `gpu`.
    pub fn compile(gpu: &Gpu, graph: &Graph) -> Result<Plan> {
        let n = graph.values.len();
        // The node index after which each value's memory is dead (views keep
        // their root alive); named outputs and inputs never die.
        let mut last_use: Vec<Option<usize>> = vec![None; n];
        for (i, node) in graph.nodes.iter().enumerate() {
            for &input in &node.inputs {
                last_use[graph.root(input).0] = Some(i);
            }
        }
        let mut pinned = vec![false; n];
        for (_, id) in &graph.outputs {
            pinned[graph.root(*id).0] = true;
        }

        let mut tensors: Vec<Option<GpuTensor>> = vec![None; n];
        let (mut activation_bytes, mut weight_bytes) = (0u64, 0u64);
        let mut inputs = Vec::new();
        for (i, value) in graph.values.iter().enumerate() {
            match &value.source {
                Source::Input(name) => {
                    let t = gpu.empty(&value.shape)?;
                    activation_bytes += t.capacity();
                    inputs.push((name.clone(), t.clone()));
                    tensors[i] = Some(t);
                }
                Source::Const(c) => {
                    let t = gpu.upload(c)?;
                    weight_bytes += t.capacity();
                    tensors[i] = Some(t);
                }
                Source::Node | Source::View(_) => {}
            }
        }

        let mut free: Vec<GpuTensor> = Vec::new();
        let mut dispatches = Vec::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            let bound = node
                .inputs
                .iter()
                .map(|&id| {
                    let root = tensors[graph.root(id).0].as_ref().expect("inputs are bound before their uses");
                    root.reshape(graph.shape(id).dims())
                })
                .collect::<Result<Vec<_>>>()?;
            let written: Vec<ValueId> = std::iter::once(node.output).chain(node.side.iter().copied()).collect();
            let mut outputs = Vec::new();
            for &id in &written {
                let shape = graph.shape(id);
                // Best fit among dead buffers; a fresh one when none is big enough.
                let best = (0..free.len())
                    .filter(|&j| free[j].capacity() >= shape.bytes())
                    .min_by_key(|&j| free[j].capacity());
                outputs.push(match best {
                    Some(j) => free.swap_remove(j).reuse_as(shape)?,
                    None => {
                        let t = gpu.empty(shape).map_err(|e| match e {
                            // Name the op whose output does not fit, not the allocator.
                            Error::TooLarge { what, bytes, limit, .. } => Error::TooLarge {
                                op: node.op.name().to_string(),
                                what: format!("output {what}"),
                                bytes,
                                limit,
                            },
                            other => other,
                        })?;
                        activation_bytes += t.capacity();
                        t
                    }
                });
            }
            let refs: Vec<&GpuTensor> = bound.iter().collect();
            let out_refs: Vec<&GpuTensor> = outputs.iter().collect();
            dispatches.extend(node.op.encode_all(gpu, &refs, &out_refs)?);
            for (id, t) in written.iter().zip(outputs) {
                tensors[id.0] = Some(t);
            }
            // Intermediates whose last reader was this node give their memory back.
            let mut roots: Vec<ValueId> = node.inputs.iter().map(|&v| graph.root(v)).collect();
            roots.extend(&written);
            roots.sort();
            roots.dedup();
            for root in roots {
                let intermediate = matches!(graph.values[root.0].source, Source::Node);
                if intermediate && !pinned[root.0] && last_use[root.0].is_none_or(|last| last <= i) {
                    free.push(tensors[root.0].clone().expect("computed above"));
                }
            }
        }

        let outputs = graph
            .outputs
            .iter()
            .map(|(name, id)| {
                let root = tensors[graph.root(*id).0].as_ref().expect("outputs are computed");
                Ok((name.clone(), root.reshape(graph.shape(*id).dims())?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Plan { inputs, outputs, dispatches, activation_bytes, weight_bytes })
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

    /// Number of dispatches per run.
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    /// Bytes of GPU memory for inputs, intermediates and outputs (after reuse).
    pub fn activation_bytes(&self) -> u64 {
        self.activation_bytes
    }

    /// Bytes of GPU memory for weights.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }
}
