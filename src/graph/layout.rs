//! Where each value of a graph lives on the GPU, worked out from the shapes alone: which
//! buffer holds it (a dead intermediate's buffer is reused, best fit first) and every buffer's
//! size. So a plan knows its whole memory, and checks it against the budget, before it
//! allocates a single buffer.

use super::{Graph, Source, ValueId};
use crate::gpu::{Gpu, GpuTensor};
use crate::Result;

/// The buffers of a plan and the buffer of each value.
#[derive(Debug)]
pub(super) struct Layout {
    /// Each buffer's bytes, in the order the plan creates them.
    pub sizes: Vec<u64>,
    /// The buffer holding each value that owns memory (inputs, weights, node outputs); views
    /// live in their root's.
    pub home: Vec<Option<usize>>,
    /// Bytes of the inputs, intermediates and outputs.
    pub activation_bytes: u64,
    /// Bytes of the weights.
    pub weight_bytes: u64,
}

impl Layout {
    /// Lays out `graph`. Fails, naming the op, when a tensor exceeds one binding of `gpu`.
    pub fn of(gpu: &Gpu, graph: &Graph) -> Result<Layout> {
        let n = graph.values.len();
        // The node index after which each value's memory is dead (views keep their root
        // alive); named outputs and inputs never die.
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

        let mut layout = Layout { sizes: Vec::new(), home: vec![None; n], activation_bytes: 0, weight_bytes: 0 };
        for (i, value) in graph.values.iter().enumerate() {
            let (op, weight) = match &value.source {
                Source::Input(_) => ("allocate", false),
                Source::Const(_) => ("upload", true),
                Source::Node | Source::View(_) => continue,
            };
            gpu.check_fits(op, "tensor", &value.shape)?;
            layout.home[i] = Some(layout.add(GpuTensor::buffer_bytes(&value.shape), weight));
        }

        let mut free: Vec<usize> = Vec::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            let written: Vec<ValueId> = std::iter::once(node.output).chain(node.side.iter().copied()).collect();
            for &id in &written {
                let shape = graph.shape(id);
                // Best fit among dead buffers; a fresh one when none is big enough.
                let best = (0..free.len())
                    .filter(|&j| layout.sizes[free[j]] >= shape.bytes())
                    .min_by_key(|&j| layout.sizes[free[j]]);
                layout.home[id.0] = Some(match best {
                    Some(j) => free.swap_remove(j),
                    None => {
                        // Name the op whose output does not fit, not the allocator.
                        gpu.check_fits(node.op.name(), "output", shape)?;
                        layout.add(GpuTensor::buffer_bytes(shape), false)
                    }
                });
            }
            // Intermediates whose last reader was this node give their memory back.
            let mut roots: Vec<ValueId> = node.inputs.iter().map(|&v| graph.root(v)).collect();
            roots.extend(&written);
            roots.sort();
            roots.dedup();
            for root in roots {
                let intermediate = matches!(graph.values[root.0].source, Source::Node);
                if intermediate && !pinned[root.0] && last_use[root.0].is_none_or(|last| last <= i) {
                    free.push(layout.home[root.0].expect("laid out above"));
                }
            }
        }
        Ok(layout)
    }

    /// A new buffer of `bytes`; its index.
    fn add(&mut self, bytes: u64, weight: bool) -> usize {
        if weight {
            self.weight_bytes += bytes;
        } else {
            self.activation_bytes += bytes;
        }
        self.sizes.push(bytes);
        self.sizes.len() - 1
    }
}
