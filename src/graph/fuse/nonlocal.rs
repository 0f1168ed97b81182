//! Non-local rules over the canonical chain `blocks::nonlocal` emits:
//! `theta, phi, g = 1x1 GEMM -> bias affine (-> 2x2 max pool)` over one input,
//! `scores = theta^T phi (-> uniform scale) -> softmax over keys -> y = g f^T`.

use super::{replace_chain, sole_reader, Found};
use crate::graph::rewrite::Uses;
use crate::graph::{Graph, ValueId};
use crate::ops::channel_affine::ChannelAffine;
use crate::ops::matmul::Matmul;
use crate::ops::max_pool2d::MaxPool2d;
use crate::ops::narrow::Narrow;
use crate::ops::nonlocal_attention::NonLocalAttention;
use crate::ops::softmax::Softmax;
use crate::ops::{Epilogue, Op};
use crate::{Result, Tensor};

/// softmax_k(s * theta^T phi) then y = g f^T: the flash kernel, which never stores the Q x K scores.
pub(super) fn flash(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    if g.op_as::<Softmax>(node) != Some(&Softmax { axis: 2 }) {
        return None;
    }
    let mut nodes = vec![node];
    let mut scores = g.node(node).inputs[0];
    let mut scale = 1.0f32;
    if let Some(a) = uses.writer(g, scores).filter(|&w| g.op_as::<ChannelAffine>(w).is_some()) {
        // Only one factor for all scores folds into the kernel's scale (a broadcast form check).
        let t = g.constant_of(g.node(a).inputs[1])?;
        let (s, shift) = t.data().split_at(t.data().len() / 2);
        if s.iter().any(|&v| v != s[0]) || shift.iter().any(|&v| v != 0.0) {
            return Some(Err("the scores are scaled per query, not by one factor".into()));
        }
        step!(sole_reader(g, uses, scores, "the scaled scores"));
        scale = s[0];
        nodes.push(a);
        scores = g.node(a).inputs[0];
    }
    let product = uses.writer(g, scores).filter(|&w| g.op_as::<Matmul>(w) == Some(&Matmul::new(true, false)))?;
    step!(sole_reader(g, uses, scores, "the scores"));
    nodes.push(product);
    let f = g.node(node).output;
    let y = step!(sole_reader(g, uses, f, "the attention matrix"));
    if g.op_as::<Matmul>(y) != Some(&Matmul::new(false, true)) || g.node(y).inputs[1] != f {
        return Some(Err("the attention matrix is not applied to values as g f^T".into()));
    }
    nodes.push(y);
    let [theta, phi] = g.node(product).inputs[..] else { return None };
    let values = g.node(y).inputs[0];
    let op = NonLocalAttention::new(scale);
    if let Err(e) = op.output_shape(&[g.shape(theta), g.shape(phi), g.shape(values)]) {
        return Some(Err(format!("shapes: {e}")));
    }
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        replace_chain(g, &nodes, Box::new(op), &[theta, phi, values])?;
        Ok(())
    })))
}

/// One projection: a 1x1 GEMM with a constant weight [1, co, ci] over `x`,
/// then optionally a constant affine and a max pool; its nodes and parts.
struct Projection {
    gemm: usize,
    weight: Tensor,
    affine: Option<Tensor>,
    pool: Option<(usize, MaxPool2d, [usize; 2])>,
    nodes: Vec<usize>,
    result: ValueId,
}

/// The projection whose result is `value`, when it is one.
fn projection(g: &Graph, uses: &Uses, value: ValueId) -> std::result::Result<Option<Projection>, String> {
    let mut nodes = Vec::new();
    let mut v = value;
    let mut pool = None;
    if let Some(p) = uses.writer(g, v).filter(|&w| g.op_as::<MaxPool2d>(w).is_some()) {
        let input = g.node(p).inputs[0];
        let &[_, _, h, w] = g.shape(input).dims() else { return Ok(None) };
        sole_reader(g, uses, input, "a projection before its pool")?;
        pool = Some((p, *g.op_as::<MaxPool2d>(p).expect("checked"), [h, w]));
        nodes.push(p);
        v = input;
    }
    let mut affine = None;
    if let Some(a) = uses.writer(g, v).filter(|&w| g.op_as::<ChannelAffine>(w).is_some()) {
        let Some(t) = g.constant_of(g.node(a).inputs[1]) else { return Ok(None) };
        if pool.is_some() {
            sole_reader(g, uses, v, "a projection before its pool")?;
        }
        affine = Some(t.clone());
        nodes.push(a);
        v = g.node(a).inputs[0];
    }
    let Some(gemm) = uses.writer(g, v) else { return Ok(None) };
    if g.op_as::<Matmul>(gemm) != Some(&Matmul::conv1x1(Epilogue::NONE)) {
        return Ok(None);
    }
    let Some(weight) = g.constant_of(g.node(gemm).inputs[0]).cloned() else { return Ok(None) };
    if affine.is_some() || pool.is_some() {
        sole_reader(g, uses, v, "a projection's GEMM output")?;
    }
    nodes.push(gemm);
    Ok(Some(Projection { gemm, weight, affine, pool, nodes, result: g.root(value) }))
}

/// theta, phi and g of a flash attention, 1x1 convs over one input: one GEMM
/// with stacked weights and biases (constant folding), x read once; narrow
/// cuts each window out, after one shared max pool when phi and g are pooled.
/// When only the attention reads theta, its score scale folds into theta's rows.
pub(super) fn projections(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    let attention = *g.op_as::<NonLocalAttention>(node)?;
    let mut parts = Vec::new();
    for &v in &g.node(node).inputs {
        match projection(g, uses, v) {
            Ok(Some(p)) => parts.push(p),
            Ok(None) => return None,
            Err(why) => return Some(Err(why)),
        }
    }
    let x = g.node(parts[0].gemm).inputs[1];
    if parts.iter().any(|p| g.node(p.gemm).inputs[1] != x) {
        return Some(Err("theta, phi and g do not read the same input".into()));
    }
    // theta unpooled; phi and g both unpooled or both through the same pool.
    let pools: Vec<Option<MaxPool2d>> = parts.iter().map(|p| p.pool.map(|(_, op, _)| op)).collect();
    if pools[0].is_some() || pools[1] != pools[2] {
        return Some(Err("phi and g are not pooled alike (theta unpooled)".into()));
    }
    let &[n, _, q] = g.shape(x).dims() else { return None };
    let [h, w] = parts[1].pool.map_or([q, 1], |(_, _, hw)| hw);
    let ci = g.shape(x).dims()[1];
    let rows: Vec<usize> = parts.iter().map(|p| p.weight.shape().dims()[1]).collect();
    // theta * s: its scale and shift rows times s, and the kernel's factor 1 (an attention map reading theta keeps it).
    let theta = g.node(node).inputs[0];
    let fold = attention.scale != 1.0 && uses.readers(g, theta) == [node] && uses.outputs(g, theta).is_empty();
    let theta_factor = if fold { attention.scale } else { 1.0 };
    let total: usize = rows.iter().sum();
    let mut weight = Vec::with_capacity(total * ci);
    let (mut scale, mut shift) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for (i, (p, &co)) in parts.iter().zip(&rows).enumerate() {
        weight.extend_from_slice(p.weight.data());
        let factor = if i == 0 { theta_factor as f64 } else { 1.0 };
        let (s, b) = match &p.affine {
            Some(a) => (a.data()[..co].to_vec(), a.data()[co..].to_vec()),
            None => (vec![1.0; co], vec![0.0; co]),
        };
        scale.extend(s.iter().map(|&v| (v as f64 * factor) as f32));
        shift.extend(b.iter().map(|&v| (v as f64 * factor) as f32));
    }
    let first = parts.iter().map(|p| p.gemm).min().expect("three parts");
    let at = g.node(first).at.clone();
    let pool = pools[1];
    let results: Vec<ValueId> = parts.iter().map(|p| p.result).collect();
    let nodes: Vec<usize> = parts.iter().flat_map(|p| p.nodes.clone()).collect();
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        scale.extend(shift);
        let weight = g.constant(Tensor::from_vec(&[1, total, ci], weight)?);
        let affine = g.constant(Tensor::from_vec(&[2, total], scale)?);
        let epilogue = Epilogue { affine: true, ..Epilogue::NONE };
        let mut at_pos = first;
        let stacked = g.insert(at_pos, Box::new(Matmul::conv1x1(epilogue)), &[weight, x, affine], &at)?;
        at_pos += 1;
        let stacked = g.view(stacked, &[n, total, h, w])?;
        // Pooling all three costs a quarter more pooling than phi|g alone, but saves copying
        // phi|g out at full resolution first.
        let keys = match pool {
            Some(op) => {
                let v = g.insert(at_pos, Box::new(op), &[stacked], &at)?;
                at_pos += 1;
                v
            }
            None => stacked,
        };
        let mut offset = 0;
        for (i, (&co, &result)) in rows.iter().zip(&results).enumerate() {
            let from = if i == 0 { stacked } else { keys };
            let window = g.insert(at_pos, Box::new(Narrow { first: offset, count: co }), &[from], &at)?;
            at_pos += 1;
            g.retarget(result, window)?;
            offset += co;
        }
        // The old nodes sit after the inserted ones now.
        let shift_index = |i: usize| if i >= first { i + at_pos - first } else { i };
        if fold {
            g.set_op(shift_index(node), Box::new(NonLocalAttention { scale: 1.0, ..attention }));
        }
        let shifted: Vec<usize> = nodes.iter().map(|&i| shift_index(i)).collect();
        g.remove(&shifted);
        Ok(())
    })))
}
