//! Epilogue rules: a conv or GEMM followed by a per-channel affine (folded
//! BatchNorm or bias), a residual add or an activation takes the op into its
//! epilogue, `act(scale[c] * acc + shift[c] + residual)`. Applied in that
//! order, they turn conv -> BN -> + shortcut -> ReLU into one dispatch.

use super::{fits, replace_chain, sole_reader, Found};
use crate::graph::rewrite::Uses;
use crate::graph::{Graph, ValueId};
use crate::ops::channel_affine::ChannelAffine;
use crate::ops::conv2d::Conv2d;
use crate::ops::eltwise::Eltwise;
use crate::ops::matmul::{Axis, Matmul};
use crate::ops::{Activation, Epilogue, Op};
use crate::{Result, Tensor};

/// A node whose op has an epilogue.
#[derive(Clone, Copy, Debug)]
enum Producer {
    Conv(Conv2d),
    Gemm(Matmul),
}

impl Producer {
    fn of(g: &Graph, node: usize) -> Option<Producer> {
        g.op_as::<Conv2d>(node)
            .map(|c| Producer::Conv(*c))
            .or_else(|| g.op_as::<Matmul>(node).map(|m| Producer::Gemm(*m)))
    }

    fn epilogue(&self) -> Epilogue {
        match self {
            Producer::Conv(c) => c.epilogue,
            Producer::Gemm(m) => m.epilogue,
        }
    }

    fn with(self, epilogue: Epilogue, axis: Option<Axis>) -> Box<dyn Op> {
        match self {
            Producer::Conv(c) => Box::new(c.epilogue(epilogue)),
            Producer::Gemm(m) => Box::new(m.epilogue(epilogue, axis.unwrap_or(m.epilogue_axis))),
        }
    }
}

/// The reader of `node`'s output that is the op `T`, when there is one: the
/// pattern starts. Refused when it is not the only reader or the output is a map.
fn next<T: 'static>(g: &Graph, uses: &Uses, node: usize) -> Option<std::result::Result<usize, String>> {
    let out = g.node(node).output;
    let starts = uses.readers(g, out).iter().any(|&r| g.op_as::<T>(r).is_some());
    starts.then(|| sole_reader(g, uses, out, &format!("the {} output", g.node(node).op.name())))
}

/// conv/GEMM -> channel_affine: the affine's constant scale and shift become the
/// epilogue's (composed with one already there: constant folding).
pub(super) fn affine(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    let p = Producer::of(g, node)?;
    let e = p.epilogue();
    if e.residual || e.activation != Activation::None {
        return None;
    }
    let reader = match next::<ChannelAffine>(g, uses, node)? {
        Ok(r) => r,
        Err(why) => return Some(Err(why)),
    };
    let (x, affine) = (g.node(reader).inputs[0], g.node(reader).inputs[1]);
    if g.root(x) != g.node(node).output {
        return Some(Err("the conv/GEMM output is the affine's scale, not its input".into()));
    }
    let Some(new) = g.constant_of(affine).cloned() else {
        return Some(Err("the scale and shift are no constants".into()));
    };
    let axis = match p {
        Producer::Conv(_) => {
            // The affine's channels must be the conv's: x seen as [N, C, ...].
            let (out, seen) = (g.shape(g.node(node).output), g.shape(x));
            if seen.dims().len() < 2 || seen.dims()[..2] != out.dims()[..2] {
                return Some(Err(format!("the affine sees the conv output {out} as {seen}: other channels")));
            }
            None
        }
        Producer::Gemm(m) => match gemm_axis(g, node, x, m) {
            Some(a) => Some(a),
            None => {
                let (out, seen) = (g.shape(g.node(node).output), g.shape(x));
                return Some(Err(format!("the channels of {seen} are neither the rows nor the columns of {out}")));
            }
        },
    };
    let mut inputs = g.node(node).inputs.clone();
    let folded = if e.affine {
        let Some(old) = g.constant_of(inputs[2]).cloned() else {
            return Some(Err("the epilogue's affine is no constant".into()));
        };
        Some(compose(&old, &new))
    } else {
        None
    };
    let op = p.with(Epilogue { affine: true, ..e }, axis);
    let mut shapes: Vec<&crate::Shape> = inputs.iter().map(|&v| g.shape(v)).collect();
    if e.affine {
        shapes[2] = g.shape(affine);
    } else {
        shapes.insert(2, g.shape(affine));
    }
    step!(fits(op.as_ref(), &shapes));
    let nodes = [node, reader];
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        match folded {
            Some(t) => inputs[2] = g.constant(t?),
            None => inputs.insert(2, affine),
        }
        replace_chain(g, &nodes, op, &inputs)?;
        Ok(())
    })))
}

/// The GEMM output axis the channels (dimension 1) of its view `x` run along:
/// rows when `x` is [B, M, ...], columns when `x` is [.., N] with N innermost.
fn gemm_axis(g: &Graph, node: usize, x: ValueId, m: Matmul) -> Option<Axis> {
    let out = g.shape(g.node(node).output).dims().to_vec();
    let d = g.shape(x).dims();
    let rows = d.len() >= 2 && d[0] == out[0] && d[1] == out[1];
    let cols = d.len() >= 2 && d[2..].iter().product::<usize>() == 1 && d[1] == out[2];
    match (rows, cols) {
        (true, true) if m.epilogue.affine => Some(m.epilogue_axis),
        (true, _) => Some(Axis::Rows),
        (_, true) => Some(Axis::Cols),
        _ => None,
    }
}

/// `new(old(v))` for two affines [2, C]: scale s2 * s1, shift s2 * b1 + b2 (in f64).
fn compose(old: &Tensor, new: &Tensor) -> Result<Tensor> {
    let c = old.shape().dims()[1];
    let (a, b) = (old.data(), new.data());
    let mut out = vec![0.0f32; 2 * c];
    for i in 0..c {
        out[i] = (b[i] as f64 * a[i] as f64) as f32;
        out[c + i] = (b[i] as f64 * a[c + i] as f64 + b[c + i] as f64) as f32;
    }
    Tensor::from_vec(&[2, c], out)
}

/// conv/GEMM -> + other: `other` becomes the epilogue's residual.
pub(super) fn residual(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    let p = Producer::of(g, node)?;
    let e = p.epilogue();
    if e.residual || e.activation != Activation::None {
        return None;
    }
    let out = g.node(node).output;
    let is_add = |r: usize| g.op_as::<Eltwise>(r) == Some(&Eltwise::Add);
    if !uses.readers(g, out).iter().any(|&r| is_add(r)) {
        return None;
    }
    let reader = match sole_reader(g, uses, out, &format!("the {} output", g.node(node).op.name())) {
        Ok(r) => r,
        Err(why) => return Some(Err(why)),
    };
    let [a, b] = g.node(reader).inputs[..] else { return None };
    let other = match (g.root(a) == out, g.root(b) == out) {
        (true, false) => b,
        (false, true) => a,
        _ => return Some(Err("the add reads the output twice".into())),
    };
    let dims = g.shape(out).dims().to_vec();
    let mut inputs = g.node(node).inputs.clone();
    let shapes: Vec<&crate::Shape> = inputs.iter().chain([&out]).map(|&v| g.shape(v)).collect();
    step!(fits(p.with(Epilogue { residual: true, ..e }, None).as_ref(), &shapes));
    let nodes = [node, reader];
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        inputs.push(g.view(other, &dims)?);
        replace_chain(g, &nodes, p.with(Epilogue { residual: true, ..e }, None), &inputs)?;
        Ok(())
    })))
}

/// add -> ReLU: one elementwise pass (a residual join outside any epilogue).
fn add_relu(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    if g.op_as::<Eltwise>(node) != Some(&Eltwise::Add) {
        return None;
    }
    let out = g.node(node).output;
    if !uses.readers(g, out).iter().any(|&r| g.op_as::<Eltwise>(r) == Some(&Eltwise::Relu)) {
        return None;
    }
    let reader = match sole_reader(g, uses, out, "the sum") {
        Ok(r) => r,
        Err(why) => return Some(Err(why)),
    };
    let inputs = g.node(node).inputs.clone();
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        replace_chain(g, &[node, reader], Box::new(Eltwise::AddRelu), &inputs)?;
        Ok(())
    })))
}

/// conv/GEMM -> ReLU or sigmoid: the activation becomes the epilogue's
/// (and add -> ReLU becomes one add+relu pass).
pub(super) fn activation(g: &Graph, uses: &Uses, node: usize) -> Option<Found> {
    let Some(p) = Producer::of(g, node) else { return add_relu(g, uses, node) };
    let e = p.epilogue();
    if e.activation != Activation::None {
        return None;
    }
    let out = g.node(node).output;
    let act = |r: usize| match g.op_as::<Eltwise>(r) {
        Some(Eltwise::Relu) => Some(Activation::Relu),
        Some(Eltwise::Sigmoid) => Some(Activation::Sigmoid),
        _ => None,
    };
    if !uses.readers(g, out).iter().any(|&r| act(r).is_some()) {
        return None;
    }
    let reader = match sole_reader(g, uses, out, &format!("the {} output", g.node(node).op.name())) {
        Ok(r) => r,
        Err(why) => return Some(Err(why)),
    };
    let activation = act(reader)?;
    let inputs = g.node(node).inputs.clone();
    let nodes = [node, reader];
    Some(Ok(Box::new(move |g: &mut Graph| -> Result<()> {
        replace_chain(g, &nodes, p.with(Epilogue { activation, ..e }, None), &inputs)?;
        Ok(())
    })))
}
