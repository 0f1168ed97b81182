//! What the fusion pass may do to a graph: look at nodes, values and
//! constants, insert nodes, turn a value into a view of another, and drop
//! nodes. Every rewrite keeps the node list in topological order: a new node
//! goes where each of its inputs is already written.

use super::{Graph, Node, Source, ValueId};
use crate::ops::Op;
use crate::{Error, Result, Shape, Tensor};
use std::collections::BTreeMap;

/// Who reads each value: computed once per pass step, read by the rules.
#[derive(Debug)]
pub(crate) struct Uses {
    /// Per root value: the nodes reading it (directly or through a view), each once.
    readers: Vec<Vec<usize>>,
    /// Per root value: the node that writes it.
    writer: Vec<Option<usize>>,
    /// Per root value: the output names it is marked as.
    outputs: BTreeMap<ValueId, Vec<String>>,
}

impl Graph {
    /// The node at `index`.
    pub(crate) fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    /// The op of node `index` as `T`, when it is one.
    pub(crate) fn op_as<T: 'static>(&self, index: usize) -> Option<&T> {
        self.nodes[index].op.as_any().downcast_ref::<T>()
    }

    /// The constant behind `value` (through views), when it is one.
    pub(crate) fn constant_of(&self, value: ValueId) -> Option<&Tensor> {
        match &self.values[self.root(value).0].source {
            Source::Const(t) => Some(t),
            _ => None,
        }
    }

    /// Readers, writers and output names of every value.
    pub(crate) fn uses(&self) -> Uses {
        let n = self.values.len();
        let (mut readers, mut writer) = (vec![Vec::new(); n], vec![None; n]);
        for (i, node) in self.nodes.iter().enumerate() {
            for out in std::iter::once(node.output).chain(node.side.iter().copied()) {
                writer[out.0] = Some(i);
            }
            for &input in &node.inputs {
                let r: &mut Vec<usize> = &mut readers[self.root(input).0];
                if r.last() != Some(&i) {
                    r.push(i);
                }
            }
        }
        let mut outputs: BTreeMap<ValueId, Vec<String>> = BTreeMap::new();
        for (name, id) in &self.outputs {
            outputs.entry(self.root(*id)).or_default().push(name.clone());
        }
        Uses { readers, writer, outputs }
    }

    /// Inserts `op` on `inputs` before node `position`; returns its output.
    pub(crate) fn insert(&mut self, position: usize, op: Box<dyn Op>, inputs: &[ValueId], at: &str) -> Result<ValueId> {
        self.insert_with_side(position, op, inputs, at).map(|(out, _)| out)
    }

    /// [`Graph::insert`], returning the op's side outputs as well.
    pub(crate) fn insert_with_side(
        &mut self,
        position: usize,
        op: Box<dyn Op>,
        inputs: &[ValueId],
        at: &str,
    ) -> Result<(ValueId, Vec<ValueId>)> {
        let shapes: Vec<&Shape> = inputs.iter().map(|v| &self.values[v.0].shape).collect();
        let (shape, sides) = (op.output_shape(&shapes)?, op.side_outputs(&shapes)?);
        let output = self.push(shape, Source::Node);
        let side: Vec<ValueId> = sides.into_iter().map(|s| self.push(s, Source::Node)).collect();
        let node = Node { op, inputs: inputs.to_vec(), output, side: side.clone(), at: at.to_string() };
        self.nodes.insert(position, node);
        Ok((output, side))
    }

    /// Makes `old` (a node's output) the same elements as `new` under its own
    /// shape: every reader of `old` now reads what `new`'s writer computes.
    pub(crate) fn retarget(&mut self, old: ValueId, new: ValueId) -> Result<()> {
        let (from, to) = (&self.values[old.0].shape, &self.values[new.0].shape);
        if from.numel() != to.numel() {
            return Err(Error::invalid("fuse", format!("cannot stand {to} in for {from}")));
        }
        self.values[old.0].source = Source::View(new);
        Ok(())
    }

    /// Gives node `index` another op on the same inputs (its output shape unchanged).
    pub(crate) fn set_op(&mut self, index: usize, op: Box<dyn Op>) {
        self.nodes[index].op = op;
    }

    /// Drops the nodes at `indices` (their outputs must have been retargeted or be unread).
    pub(crate) fn remove(&mut self, indices: &[usize]) {
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for i in sorted.into_iter().rev() {
            self.nodes.remove(i);
        }
    }
}

impl Uses {
    /// The nodes reading `value`'s memory.
    pub(crate) fn readers(&self, g: &Graph, value: ValueId) -> &[usize] {
        &self.readers[g.root(value).0]
    }

    /// The node writing `value`'s memory (None for inputs and constants).
    pub(crate) fn writer(&self, g: &Graph, value: ValueId) -> Option<usize> {
        self.writer[g.root(value).0]
    }

    /// The output names `value`'s memory is marked as.
    pub(crate) fn outputs(&self, g: &Graph, value: ValueId) -> &[String] {
        self.outputs.get(&g.root(value)).map_or(&[], |v| v.as_slice())
    }
}
