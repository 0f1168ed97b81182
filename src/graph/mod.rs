//! A small dataflow graph of ops and the two ways to run it: the CPU executor
//! (every node through its reference) and the GPU [`Plan`].
//!
//! Nodes can only consume values that already exist, so the node list is in
//! topological order by construction; shapes are inferred as nodes are added,
//! so a bad shape fails while the graph is built, naming the op.

mod fuse;
mod layout;
mod plan;
mod rewrite;

pub use fuse::{fuse, Event, Fusion, Report, Rule};
pub use plan::{Plan, Step};

use crate::ops::{Cost, Op};
use crate::{Error, Result, Shape, Tensor};
use std::collections::BTreeMap;

/// A value in a [`Graph`]: an input, a constant, a node's output or a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(usize);

#[derive(Debug)]
enum Source {
    /// Fed at run time under this name.
    Input(String),
    /// Weights: uploaded once when a plan is compiled.
    Const(Tensor),
    /// Written by a node.
    Node,
    /// The same elements as another value under another shape (no copy).
    View(ValueId),
}

#[derive(Debug)]
struct Value {
    shape: Shape,
    source: Source,
}

/// One op application.
#[derive(Debug)]
pub struct Node {
    op: Box<dyn Op>,
    inputs: Vec<ValueId>,
    output: ValueId,
    /// Values the op writes besides `output` ([`Op::side_outputs`]).
    side: Vec<ValueId>,
    /// The builder's scope when the node was added ("layer2.0.se"), for reports.
    at: String,
}

/// Ops wired by values, with named inputs and outputs.
#[derive(Debug, Default)]
pub struct Graph {
    values: Vec<Value>,
    nodes: Vec<Node>,
    outputs: Vec<(String, ValueId)>,
    /// Where nodes added now are said to be (see [`Graph::set_scope`]).
    scope: String,
}

/// Named tensors, as fed to and returned from a run.
pub type Tensors = BTreeMap<String, Tensor>;

/// Fails when any output holds a NaN or an infinity, naming the first such
/// output and how many of its values are affected: a result is never handed
/// on silently when the f32 kernels overflowed (inputs far outside the range
/// the network was trained on can do that where the f64 CPU path does not).
pub fn check_finite(outputs: &Tensors) -> Result<()> {
    check_finite_image(outputs, 0, 1)
}

/// [`check_finite`] for image `image` of a batch of `images` (every output's
/// leading dimension): one bad picture need not fail its whole batch.
pub fn check_finite_image(outputs: &Tensors, image: usize, images: usize) -> Result<()> {
    for (name, t) in outputs {
        let per_image = t.shape().numel() / images.max(1);
        let values = &t.data()[image * per_image..(image + 1) * per_image];
        if let Some(first) = values.iter().position(|v| !v.is_finite()) {
            let bad = values.iter().filter(|v| !v.is_finite()).count();
            return Err(Error::invalid(
                "run",
                format!(
                    "output '{name}' {} has {bad} non-finite value(s) (NaN or infinity), the first at element \
                     {first}: the computation overflowed f32; check the input's range (--device cpu \
                     accumulates in f64)",
                    t.shape()
                ),
            ));
        }
    }
    Ok(())
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    fn push(&mut self, shape: Shape, source: Source) -> ValueId {
        self.values.push(Value { shape, source });
        ValueId(self.values.len() - 1)
    }

    /// A run-time input called `name`.
    pub fn input(&mut self, name: &str, shape: Shape) -> ValueId {
        self.push(shape, Source::Input(name.to_string()))
    }

    /// A constant (weights), uploaded once per plan.
    pub fn constant(&mut self, tensor: Tensor) -> ValueId {
        self.push(tensor.shape().clone(), Source::Const(tensor))
    }

    /// Applies `op` to `inputs`; fails with the op's own message on bad shapes.
    pub fn add(&mut self, op: impl Op + 'static, inputs: &[ValueId]) -> Result<ValueId> {
        let shapes: Vec<&Shape> = inputs.iter().map(|v| &self.values[v.0].shape).collect();
        let shape = op.output_shape(&shapes)?;
        let output = self.push(shape, Source::Node);
        let at = self.scope.clone();
        self.nodes.push(Node { op: Box::new(op), inputs: inputs.to_vec(), output, side: Vec::new(), at });
        Ok(output)
    }

    /// Names where the nodes added from now on sit ("layer2.0.se"): the
    /// fusion report says where each rule fired by it.
    pub fn set_scope(&mut self, scope: &str) {
        self.scope = scope.to_string();
    }

    /// Number of nodes (op applications).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// `value` seen under `dims` (same element count).
    pub fn view(&mut self, value: ValueId, dims: &[usize]) -> Result<ValueId> {
        let shape = Shape::new(dims)?;
        let from = &self.values[value.0].shape;
        if shape.numel() != from.numel() {
            return Err(Error::invalid("view", format!("cannot view {from} as {shape}")));
        }
        Ok(self.push(shape, Source::View(value)))
    }

    /// Marks `value` as a named output (`y`, or an attention map).
    pub fn output(&mut self, name: &str, value: ValueId) {
        self.outputs.push((name.to_string(), value));
    }

    /// The shape of `value`.
    pub fn shape(&self, value: ValueId) -> &Shape {
        &self.values[value.0].shape
    }

    /// Names and shapes of the run-time inputs.
    pub fn inputs(&self) -> Vec<(&str, &Shape)> {
        self.values
            .iter()
            .filter_map(|v| match &v.source {
                Source::Input(name) => Some((name.as_str(), &v.shape)),
                _ => None,
            })
            .collect()
    }

    /// Names of the outputs, in the order they were marked.
    pub fn output_names(&self) -> Vec<&str> {
        self.outputs.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Every node's op with its input shapes, in order (for listings such as the convs suite).
    pub fn ops(&self) -> Vec<(&dyn Op, Vec<&Shape>)> {
        self.nodes.iter().map(|n| (n.op.as_ref(), n.inputs.iter().map(|v| &self.values[v.0].shape).collect())).collect()
    }

    /// The summed [`Cost`] of every node (what the benchmark divides by time).
    pub fn cost(&self) -> Cost {
        self.nodes.iter().fold(Cost::default(), |total, node| {
            let shapes: Vec<&Shape> = node.inputs.iter().map(|v| &self.values[v.0].shape).collect();
            let c = node.op.cost(&shapes);
            Cost { flops: total.flops + c.flops, bytes: total.bytes + c.bytes }
        })
    }

    /// The value a view ultimately shares memory with.
    pub(crate) fn root(&self, mut value: ValueId) -> ValueId {
        while let Source::View(base) = self.values[value.0].source {
            value = base;
        }
        value
    }

    /// Host bytes [`Graph::run_cpu`] holds at its peak: every input and node output (all
    /// are kept until the end), plus the copies of the largest node's inputs.
    pub fn cpu_bytes(&self) -> u64 {
        let bytes = |id: &ValueId| crate::budget::f32_bytes(self.values[id.0].shape.dims());
        let kept = (0..self.values.len())
            .filter(|&i| matches!(self.values[i].source, Source::Input(_) | Source::Node))
            .map(|i| bytes(&ValueId(i)))
            .fold(0u64, u64::saturating_add);
        let copies = self.nodes.iter().map(|n| n.inputs.iter().map(bytes).fold(0u64, u64::saturating_add)).max();
        kept.saturating_add(copies.unwrap_or(0))
    }

    /// Checks that `feed` holds every input with the right shape.
    fn check_feed<'a>(&'a self, feed: &'a Tensors) -> Result<Vec<(ValueId, &'a Tensor)>> {
        let mut bound = Vec::new();
        for (i, v) in self.values.iter().enumerate() {
            if let Source::Input(name) = &v.source {
                let t = feed
                    .get(name)
                    .ok_or_else(|| Error::invalid("run", format!("missing input '{name}' {}", v.shape)))?;
                if t.shape() != &v.shape {
                    return Err(Error::invalid(
                        "run",
                        format!("input '{name}' must be {}, got {}", v.shape, t.shape()),
                    ));
                }
                bound.push((ValueId(i), t));
            }
        }
        Ok(bound)
    }

    /// Runs every node through its CPU reference.
    pub fn run_cpu(&self, feed: &Tensors) -> Result<Tensors> {
        crate::budget::check(
            "the CPU reference's tensors for this graph",
            self.cpu_bytes(),
            crate::budget::HOST_BYTES,
        )?;
        let mut values: Vec<Option<Tensor>> = vec![None; self.values.len()];
        for (id, t) in self.check_feed(feed)? {
            values[id.0] = Some(t.clone());
        }
        let resolve = |values: &Vec<Option<Tensor>>, id: ValueId| -> Tensor {
            let root = self.root(id);
            let base = match &self.values[root.0].source {
                Source::Const(t) => t.clone(),
                _ => values[root.0].clone().expect("values are computed before their uses"),
            };
            base.reshape(self.values[id.0].shape.dims()).expect("views keep the element count")
        };
        for node in &self.nodes {
            let inputs: Vec<Tensor> = node.inputs.iter().map(|&i| resolve(&values, i)).collect();
            let refs: Vec<&Tensor> = inputs.iter().collect();
            let outs = node.op.reference_all(&refs)?;
            for (id, t) in std::iter::once(node.output).chain(node.side.iter().copied()).zip(outs) {
                values[id.0] = Some(t);
            }
        }
        Ok(self.outputs.iter().map(|(name, id)| (name.clone(), resolve(&values, *id))).collect())
    }
}
