//! CBAM rules over the canonical chains `blocks::cbam` emits:
//! channel attention `global_pool -> matmul fc1 -> relu -> matmul fc2 -> matmul
//! [1, 1] (sum of the avg and max rows) -> sigmoid`, and spatial attention
//! `gate(x, ca) -> channel_pool -> conv k x k (-> channel_affine) -> sigmoid ->
//! gate(x * ca, sa) (-> add residual -> relu)`.

use super::{fits, replace_chain, sole_reader, Found};
use crate::graph::rewrite::Uses;
use crate::graph::{Graph, ValueId};
use crate::ops::cbam_channel_mlp::CbamChannelMlp;
use crate::ops::cbam_gate_pool::CbamGatePool;
use crate::ops::cbam_spatial_gate::CbamSpatialGate;
use crate::ops::channel_affine::ChannelAffine;
use crate::ops::channel_pool::ChannelPool;
use crate::ops::conv2d::Conv2d;
use crate::ops::eltwise::Eltwise;
use crate::ops::gate::{Gate, GateMode};
use crate::ops::global_pool::GlobalPool;
use crate::ops::matmul::Matmul;
use crate::ops::Epilogue;
use crate::{Result, Shape};

/// `x W^T` with a constant W [1, rows, cols] and no epilogue: W's [rows, cols].
pub(super) fn plain_linear(g: &Graph, node: usize) -> Option<[usize; 2]> {
    let m = g.op_as::<Matmul>(node)?;
    let w = g.node(node).inputs[1];
    let dims = g.constant_of(w).map(|t| t.shape().dims().to_vec())?;
    (!m.trans_a && m.trans_b && m.epilogue == Epilogue::NONE && dims.len() == 3 && dims[0] == 1)
        .then(|| [dims[1], dims[2]])
}

/// global_pool -> fc1 -> relu -> fc2 -> sum of the two rows -> sigmoid: the
/// shared MLP on the average and max vectors in one kernel.
pub(super) fn channel_mlp(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    g.op_as::<GlobalPool>(node)?;
    let pooled = g.node(node).output;
    // The pattern starts where a constant linear layer reads the [N, 2, C] pools.
    let fc1 = uses.readers(g, pooled).iter().copied().find(|&r| plain_linear(g, r).is_some())?;
    if g.node(fc1).inputs[0] != pooled {
        return None;
    }
    step!(sole_reader(g, uses, pooled, "the pooled vectors"));
    let [r, c] = plain_linear(g, fc1)?;
    let hidden = g.node(fc1).output;
    let relu = step!(sole_reader(g, uses, hidden, "fc1's output"));
    if g.op_as::<Eltwise>(relu) != Some(&Eltwise::Relu) {
        return Some(Err(format!("fc1 is followed by {}, not a ReLU (an MLP bias?)", g.node(relu).op.name())));
    }
    let fc2 = step!(sole_reader(g, uses, g.node(relu).output, "the ReLU's output"));
    if plain_linear(g, fc2) != Some([c, r]) || g.node(fc2).inputs[0] != g.node(relu).output {
        return Some(Err("the ReLU is not followed by a bias-free fc2 back to the channels".into()));
    }
    let logits = g.node(fc2).output;
    let sum = step!(sole_reader(g, uses, logits, "fc2's output"));
    let ones = g.node(sum).inputs[0];
    let is_sum = g.op_as::<Matmul>(sum).is_some_and(|m| *m == Matmul::new(false, false))
        && g.node(sum).inputs[1] == logits
        && g.constant_of(ones).is_some_and(|t| t.shape().dims() == [1, 1, 2] && t.data() == [1.0, 1.0]);
    if !is_sum {
        return Some(Err("fc2's rows are not summed (a light CBAM?)".into()));
    }
    let sigmoid = step!(sole_reader(g, uses, g.node(sum).output, "the summed logits"));
    if g.op_as::<Eltwise>(sigmoid) != Some(&Eltwise::Sigmoid) {
        return Some(Err("the summed logits are not followed by a sigmoid".into()));
    }
    let (w1, w2) = (g.node(fc1).inputs[1], g.node(fc2).inputs[1]);
    let (s1, s2) = (Shape::new(&[r, c]).ok()?, Shape::new(&[c, r]).ok()?);
    step!(fits(&CbamChannelMlp, &[g.shape(pooled), &s1, &s2]));
    let nodes = [fc1, relu, fc2, sum, sigmoid];
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        let (w1, w2) = (g.view(w1, &[r, c])?, g.view(w2, &[c, r])?);
        replace_chain(g, &nodes, Box::new(CbamChannelMlp), &[pooled, w1, w2])?;
        Ok(())
    })))
}

/// The spatial attention conv: stride 1, padding k / 2, no groups or dilation,
/// a constant [1, 2, k, k] weight, no epilogue. Returns k.
fn spatial_conv(g: &Graph, node: usize) -> Option<usize> {
    let conv = g.op_as::<Conv2d>(node)?;
    let w = g.constant_of(g.node(node).inputs[1])?.shape().dims().to_vec();
    let k = *w.last()?;
    let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1 && conv.padding == [k / 2, k / 2];
    (plain && conv.epilogue == Epilogue::NONE && w == [1, 2, k, k] && k % 2 == 1).then_some(k)
}

/// gate(x * ca, sigmoid(conv(channel_pool(x * ca)))) (+ residual, ReLU): one
/// pass over x writing the output. When the spatial map is a requested output
/// (or has other readers) the kernel writes it as a side output; only when the
/// conv's own output is read elsewhere does the conv stay, recomputed inside.
pub(super) fn spatial_gate(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    let gate = g.op_as::<Gate>(node)?;
    if *gate != Gate::probabilities(GateMode::Pixel) {
        return None;
    }
    let [gated, sa] = g.node(node).inputs[..] else { return None };
    let channel_gate = uses.writer(g, gated)?;
    if g.op_as::<Gate>(channel_gate) != Some(&Gate::probabilities(GateMode::Channel)) {
        return Some(Err("the pixel gate's input is not channel-gated".into()));
    }
    let [x, ca] = g.node(channel_gate).inputs[..] else { return None };
    // sa = sigmoid([affine](conv(pool))), pool = channel_pool(x * ca).
    let Some(sigmoid) = uses.writer(g, sa).filter(|&s| g.op_as::<Eltwise>(s) == Some(&Eltwise::Sigmoid)) else {
        return Some(Err("the spatial map is not a sigmoid".into()));
    };
    let mut conv = uses.writer(g, g.node(sigmoid).inputs[0])?;
    let mut affine = None;
    if g.op_as::<ChannelAffine>(conv).is_some() {
        let a = g.node(conv).inputs[1];
        if g.constant_of(a).is_none_or(|t| t.shape().dims() != [2, 1]) {
            return Some(Err("the spatial conv's affine is no constant [2, 1]".into()));
        }
        affine = Some((conv, a));
        conv = uses.writer(g, g.node(conv).inputs[0])?;
    }
    let Some(k) = spatial_conv(g, conv) else {
        return Some(Err("the spatial map is not a padded k x k conv on two channels".into()));
    };
    let pooled = g.node(conv).inputs[0];
    let pool = uses.writer(g, pooled)?;
    if g.op_as::<ChannelPool>(pool).is_none() || g.root(g.node(pool).inputs[0]) != g.root(gated) {
        return Some(Err("the spatial conv does not read the channel mean/max of the gated x".into()));
    }
    // The conv's chain goes unless a value inside it is read elsewhere; the map
    // itself, when wanted, is written by the fused kernel as a side output.
    let mut chain = vec![node];
    let alone = |v: ValueId, reader: usize| uses.outputs(g, v).is_empty() && uses.readers(g, v) == [reader];
    let conv_out = g.node(conv).output;
    let inner_alone =
        affine.map_or(alone(conv_out, sigmoid), |(a, _)| alone(conv_out, a) && alone(g.node(a).output, sigmoid));
    // Another node reading the map may sit before the fused kernel: then the conv stays.
    let map_read_here_only = uses.readers(g, sa) == [node];
    let side_map = inner_alone && map_read_here_only && !uses.outputs(g, sa).is_empty();
    if inner_alone && map_read_here_only {
        chain.extend([sigmoid, conv]);
        chain.extend(affine.map(|(a, _)| a));
    }
    let sa_root = g.root(sa);
    // Then optionally + residual and ReLU.
    let mut out = g.node(node).output;
    let mut residual = None;
    let mut relu = false;
    if let Ok(add) = sole_reader(g, uses, out, "the gated output") {
        if g.op_as::<Eltwise>(add) == Some(&Eltwise::Add) {
            let [a, b] = g.node(add).inputs[..] else { return None };
            let other = if g.root(a) == g.root(out) { b } else { a };
            if g.root(other) != g.root(out) && g.shape(other) == g.shape(out) {
                residual = Some(other);
                chain.push(add);
                out = g.node(add).output;
            }
        }
    }
    if let Ok(r) = sole_reader(g, uses, out, "the gated output") {
        if g.op_as::<Eltwise>(r) == Some(&Eltwise::Relu) {
            relu = true;
            chain.push(r);
        }
    }
    let w = g.node(conv).inputs[1];
    let op = CbamSpatialGate { kernel: k, affine: affine.is_some(), residual: residual.is_some(), relu, map: side_map };
    let inputs: Vec<ValueId> = [x, ca, pooled, w].into_iter().chain(affine.map(|(_, a)| a)).chain(residual).collect();
    step!(fits(&op, &inputs.iter().map(|&v| g.shape(v)).collect::<Vec<_>>()));
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        if !side_map {
            replace_chain(g, &chain, Box::new(op), &inputs)?;
            return Ok(());
        }
        let last = *chain.iter().max().expect("a chain has nodes");
        let (result, at) = (g.node(last).output, g.node(last).at.clone());
        let (out, side) = g.insert_with_side(last + 1, Box::new(op), &inputs, &at)?;
        g.retarget(result, out)?;
        g.retarget(sa_root, side[0])?;
        g.remove(&chain);
        Ok(())
    })))
}

/// gate(x, ca) -> channel_pool: the channel mean and max of x * ca without storing x * ca.
pub(super) fn gate_pool(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    if g.op_as::<Gate>(node) != Some(&Gate::probabilities(GateMode::Channel)) {
        return None;
    }
    let gated = g.node(node).output;
    let pool = uses.readers(g, gated).iter().copied().find(|&r| g.op_as::<ChannelPool>(r).is_some())?;
    if let Err(why) = sole_reader(g, uses, gated, "the channel-gated x") {
        return Some(Err(why));
    }
    let inputs = g.node(node).inputs.clone();
    step!(fits(&CbamGatePool, &[g.shape(inputs[0]), g.shape(inputs[1])]));
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        replace_chain(g, &[node, pool], Box::new(CbamGatePool), &inputs)?;
        Ok(())
    })))
}
