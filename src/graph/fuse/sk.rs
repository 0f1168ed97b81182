//! Selective-kernel rules over the canonical chains `blocks::sk` emits:
//! `add (-> add ..) -> global_pool -> narrow to the average row` and
//! `linear fc (-> channel_affine) (-> relu) -> linear select (-> channel_affine)
//! -> softmax over the branches`.

use super::cbam::plain_linear;
use super::{fits, replace_chain, sole_reader, Found};
use crate::graph::rewrite::Uses;
use crate::graph::{Graph, ValueId};
use crate::ops::channel_affine::ChannelAffine;
use crate::ops::eltwise::Eltwise;
use crate::ops::global_pool::GlobalPool;
use crate::ops::narrow::Narrow;
use crate::ops::sk_attention::{SkAttention, MAX_D};
use crate::ops::sk_sum_pool::SkSumPool;
use crate::ops::softmax::Softmax;
use crate::ops::weighted_sum::MAX_BRANCHES;
use crate::ops::Activation;
use crate::{Result, Shape, Tensor};

/// The leaves of the add tree ending in `value` (the adds with no other
/// reader are collected into `adds`).
fn add_leaves(g: &Graph, uses: &Uses, value: ValueId, adds: &mut Vec<usize>, leaves: &mut Vec<ValueId>) {
    let tree = uses
        .writer(g, value)
        .filter(|&w| g.op_as::<Eltwise>(w) == Some(&Eltwise::Add) && g.node(w).output == value)
        .filter(|_| sole_reader(g, uses, value, "").is_ok() || adds.is_empty());
    match tree {
        Some(add) => {
            adds.push(add);
            for &input in &g.node(add).inputs.clone() {
                add_leaves(g, uses, input, adds, leaves);
            }
        }
        None => leaves.push(value),
    }
}

/// add(b0, b1, ..) -> global_pool -> the average row: the sum U is never stored.
pub(super) fn sum_pool(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    let narrow = g.op_as::<Narrow>(node)?;
    if (narrow.first, narrow.count) != (0, 1) {
        return None;
    }
    let rows = g.node(node).inputs[0];
    let pool = uses.writer(g, rows).filter(|&p| g.op_as::<GlobalPool>(p).is_some())?;
    let sum = g.node(pool).inputs[0];
    // The pool's [N, 2, C] seen as [N, 2, C, 1]: narrow's first channel is then the average row.
    let [n, c, _, _] = g.shape(sum).nchw("sk-sum-pool", "sum").ok()?;
    if g.shape(rows).dims() != [n, 2, c, 1] {
        return None;
    }
    let last_add = uses.writer(g, sum).filter(|&w| g.op_as::<Eltwise>(w) == Some(&Eltwise::Add))?;
    let (mut adds, mut leaves) = (Vec::new(), Vec::new());
    add_leaves(g, uses, g.node(last_add).output, &mut adds, &mut leaves);
    step!(sole_reader(g, uses, sum, "the branch sum"));
    step!(sole_reader(g, uses, g.node(pool).output, "the pooled rows"));
    if !(2..=MAX_BRANCHES).contains(&leaves.len()) {
        return Some(Err(format!("{} branches; the kernel sums 2 to {MAX_BRANCHES}", leaves.len())));
    }
    let mut nodes = adds;
    nodes.extend([pool, node]);
    let op = SkSumPool { branches: leaves.len() };
    // Each branch seen as the pooled sum's [N, C, H, W] (the adds may run on other views).
    let dims = g.shape(sum).dims().to_vec();
    step!(fits(&op, &vec![g.shape(sum); leaves.len()]));
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        let leaves = leaves.iter().map(|&l| g.view(l, &dims)).collect::<Result<Vec<_>>>()?;
        replace_chain(g, &nodes, Box::new(op), &leaves)?;
        Ok(())
    })))
}

/// The node writing `value` when it is a channel_affine with a constant [2, C]; its constant.
fn affine_writer<'a>(g: &'a Graph, uses: &Uses, value: ValueId) -> Option<(usize, &'a Tensor)> {
    let w = uses.writer(g, value)?;
    g.op_as::<ChannelAffine>(w)?;
    Some((w, g.constant_of(g.node(w).inputs[1])?))
}

/// s -> fc (-> affine) (-> relu) -> select (-> bias) -> softmax over the
/// branches: the attention MLP in one small kernel.
pub(super) fn attention(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    if g.op_as::<Softmax>(node) != Some(&Softmax { axis: 1 }) {
        return None;
    }
    let &[n, m, c] = g.shape(g.node(node).output).dims() else { return None };
    let mut nodes = vec![node];
    // Walk back from the softmax; every value passed must be read by the next step only.
    let mut v = g.node(node).inputs[0];
    let mut select_bias = None;
    if let Some((a, t)) = affine_writer(g, uses, v) {
        let (scale, shift) = t.data().split_at(t.data().len() / 2);
        if scale.iter().any(|&s| s != 1.0) {
            return Some(Err("the select layer's affine scales (the kernel adds a bias only)".into()));
        }
        step!(sole_reader(g, uses, v, "the branch logits"));
        select_bias = Some(shift.to_vec());
        nodes.push(a);
        v = g.node(a).inputs[0];
    }
    let select = uses.writer(g, v)?;
    let [rows, d] = plain_linear(g, select)?;
    if rows != m * c {
        return Some(Err(format!("the select layer has {rows} rows for {m} branches of {c} channels")));
    }
    step!(sole_reader(g, uses, v, "the branch logits"));
    nodes.push(select);
    let mut v = g.node(select).inputs[0];
    let mut activation = Activation::None;
    if let Some(r) = uses.writer(g, v).filter(|&r| g.op_as::<Eltwise>(r) == Some(&Eltwise::Relu)) {
        step!(sole_reader(g, uses, v, "the reduced descriptor"));
        activation = Activation::Relu;
        nodes.push(r);
        v = g.node(r).inputs[0];
    }
    let mut fc_affine = None;
    if let Some((a, _)) = affine_writer(g, uses, v) {
        step!(sole_reader(g, uses, v, "the reduced descriptor"));
        fc_affine = Some(g.node(a).inputs[1]);
        nodes.push(a);
        v = g.node(a).inputs[0];
    }
    let Some(fc) = uses.writer(g, v).filter(|&f| plain_linear(g, f) == Some([d, c])) else {
        return Some(Err("the select layer is not fed by a linear reduction of the channels".into()));
    };
    step!(sole_reader(g, uses, v, "the reduced descriptor"));
    nodes.push(fc);
    let s = g.node(fc).inputs[0];
    if g.shape(s).numel() != n * c {
        return Some(Err(format!("the descriptor {} is not one row of {c} channels per image", g.shape(s))));
    }
    if !(2..=MAX_BRANCHES).contains(&m) || d > MAX_D {
        return Some(Err(format!(
            "{m} branches and {d} reduced channels; the kernel takes 2 to {MAX_BRANCHES} and {MAX_D}"
        )));
    }
    let (w_fc, w_select) = (g.node(fc).inputs[1], g.node(select).inputs[1]);
    let op = SkAttention { branches: m, reduce_activation: activation };
    let shapes = [[n, c], [d, c], [2, d], [m * c, d]].map(|dims| Shape::new(&dims));
    let [Ok(s0), Ok(s1), Ok(s2), Ok(s3)] = &shapes else { return None };
    step!(fits(&op, &[s0, s1, s2, s3, &Shape::new(&[m * c]).ok()?]));
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        let s = g.view(s, &[n, c])?;
        let (w_fc, w_select) = (g.view(w_fc, &[d, c])?, g.view(w_select, &[m * c, d])?);
        // Constant folding: a missing affine is the identity, a missing bias zeros.
        let fc_affine = match fc_affine {
            Some(a) => a,
            None => {
                let identity = [vec![1.0; d], vec![0.0; d]].concat();
                g.constant(Tensor::from_vec(&[2, d], identity)?)
            }
        };
        let bias = select_bias.unwrap_or_else(|| vec![0.0; m * c]);
        let bias = g.constant(Tensor::new(Shape::new(&[m * c])?, bias)?);
        replace_chain(g, &nodes, Box::new(op), &[s, w_fc, fc_affine, w_select, bias])?;
        Ok(())
    })))
}
