//! Non-local blocks (embedded Gaussian, Wang et al. 2018): the tutorial's NonLocal and timm's
//! NonLocalAttn. Both compute z = W(y) + x with y = softmax_k(scale * theta^T phi) g.
//!
//! Fused (rule NonLocalFlash): theta, phi and g as one 1x1 GEMM with concatenated weights (biases and
//! the score scale in its epilogue), channel windows cut out by narrow (after one 2x2 max pool when
//! sub-sampled), the flash attention kernel (online softmax: the Q x K matrix is never stored), and
//! W (+ BN) + residual as one GEMM epilogue. Memory O(HW * C).
//! Unfused: one 1x1 GEMM per conv, max pools, scores = theta^T phi as a GEMM, softmax over keys,
//! y = f g as a GEMM, then the same W GEMM. Memory O(HW^2): where the N x Q x K scores exceed the
//! device's binding limit, plan compilation fails with [`crate::Error::TooLarge`].
//!
//! Map `attention` [N, queries, Hk, Wk]: the softmax rows of the query pixels (x, y) in
//! [`Builder::queries`] (the center pixel (W / 2, H / 2) when none are given) over the key grid
//! Hk x Wk (H / 2 x W / 2, floored, when sub-sampled).

use super::{Arch, Args, Builder};
use crate::graph::{Rule, ValueId};
use crate::ops::attention_rows::AttentionRows;
use crate::ops::matmul::Matmul;
use crate::ops::max_pool2d::MaxPool2d;
use crate::ops::narrow::Narrow;
use crate::ops::nonlocal_attention::NonLocalAttention;
use crate::ops::softmax::Softmax;
use crate::ops::Epilogue;
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

pub const NON_LOCAL: Arch = Arch {
    name: "NonLocal",
    about: "the tutorial's embedded-Gaussian Non-local block: theta, phi, g 1x1 convs, softmax(theta^T phi) g, \
            W (+BN) + x; map rows for --query X,Y pixels (default: the center pixel W/2,H/2)",
    args: "sub_sample=true (must match the names phi.0/g.0; inter channels and the W BatchNorm come from the weights)",
    maps: &["attention"],
    build: non_local,
};

pub const TIMM_NON_LOCAL: Arch = Arch {
    name: "timm.NonLocalAttn",
    about: "timm's NonLocalAttn: t, p, g 1x1 convs, softmax(C^-0.5 t^T p) g, z conv + BN + x; map rows for \
            --query X,Y pixels (default: the center pixel W/2,H/2)",
    args: "use_scale=true (channels and rd come from the weights)",
    maps: &["attention"],
    build: timm_non_local,
};

/// A 1x1 conv with bias: weight [Cout, Cin], bias [Cout].
struct Conv {
    weight: Tensor,
    bias: Tensor,
}

/// A block's weights in the layout the graph uses.
struct NonLocalWeights {
    theta: Conv,
    phi: Conv,
    g: Conv,
    /// W (timm: z) as [C, inter].
    out: Tensor,
    /// W's bias, or W's bias folded into the BatchNorm after it, as an epilogue affine [2, C].
    out_affine: Tensor,
    /// Multiplies every score; folded into theta's affine on the host.
    scale: f64,
    /// phi and g pass a 2x2 max pool.
    sub_sample: bool,
}

fn non_local(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let arch = "NonLocal";
    let sub_sample = args.bool("sub_sample", true)?;
    let [_, c, _, _] = b.graph.shape(x).nchw(arch, "input x")?;
    // The reference code wraps phi and g in nn.Sequential(conv, MaxPool2d) when sub-sampling.
    let (found, want) = if sub_sample { ("phi.weight", "phi.0.weight") } else { ("phi.0.weight", "phi.weight") };
    if !b.weights.has(want) && b.weights.has(found) {
        let hint = if sub_sample { "a block built with sub_sample=False" } else { "a sub-sampled block" };
        return Err(Error::invalid(
            arch,
            format!(
                "sub_sample={sub_sample} expects '{want}', but the weights hold '{found}' ({hint}): \
                 pass sub_sample={}",
                !sub_sample
            ),
        ));
    }
    let sub = if sub_sample { ".0" } else { "" };
    let theta = conv1x1(b, arch, "theta", c, None)?;
    let inter = theta.weight.shape().dims()[0];
    let phi = conv1x1(b, arch, &format!("phi{sub}"), c, Some(inter))?;
    let g = conv1x1(b, arch, &format!("g{sub}"), c, Some(inter))?;
    let (out, out_affine) = if b.weights.has("W.0.weight") {
        let w = conv1x1(b, arch, "W.0", inter, Some(c))?;
        (w.weight, b.weights.batchnorm("W.1", c, Some(&w.bias))?)
    } else {
        let w = conv1x1(b, arch, "W", inter, Some(c))?;
        (w.weight, Weights::bias_affine(&w.bias)?)
    };
    let weights = NonLocalWeights { theta, phi, g, out, out_affine, scale: 1.0, sub_sample };
    non_local_graph(b, x, arch, weights)
}

fn timm_non_local(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let arch = "timm.NonLocalAttn";
    let use_scale = args.bool("use_scale", true)?;
    let [_, c, _, _] = b.graph.shape(x).nchw(arch, "input x")?;
    let theta = conv1x1(b, arch, "t", c, None)?;
    let rd = theta.weight.shape().dims()[0];
    let phi = conv1x1(b, arch, "p", c, Some(rd))?;
    let g = conv1x1(b, arch, "g", c, Some(rd))?;
    let z = conv1x1(b, arch, "z", rd, Some(c))?;
    let out_affine = b.weights.batchnorm("norm", c, Some(&z.bias))?;
    // timm: self.scale = in_channels ** -0.5 if use_scale else 1.0.
    let scale = if use_scale { (c as f64).powf(-0.5) } else { 1.0 };
    let weights = NonLocalWeights { theta, phi, g, out: z.weight, out_affine, scale, sub_sample: false };
    non_local_graph(b, x, arch, weights)
}

/// The 1x1 conv `{prefix}.weight` [Cout, cin, 1, 1] (Cout inferred when `cout` is None) and its bias.
fn conv1x1(b: &mut Builder, arch: &str, prefix: &str, cin: usize, cout: Option<usize>) -> Result<Conv> {
    let name = format!("{prefix}.weight");
    let cout = match cout {
        Some(co) => co,
        None => match b.weights.dims(&name)?[..] {
            [co, ci, 1, 1] if ci == cin && co > 0 => co,
            ref d => {
                let msg = format!("'{name}' is {d:?}, expected a 1x1 conv [inter, {cin}, 1, 1] over {cin} channels");
                return Err(Error::invalid(arch, msg));
            }
        },
    };
    let weight = b.weights.expect(&name, &[cout, cin, 1, 1])?.reshape(&[cout, cin])?;
    let bias = b.weights.expect(&format!("{prefix}.bias"), &[cout])?;
    Ok(Conv { weight, bias })
}

/// Stacks convs over the same input into one weight [1, sum Cout, Cin] and the epilogue affine
/// [2, sum Cout] with scale `s` and shift `s * bias` per conv (exactly s * (W x + bias)).
fn stacked(convs: &[(&Conv, f64)]) -> Result<(Tensor, Tensor)> {
    let cin = convs[0].0.weight.shape().dims()[1];
    let (mut weight, mut scale, mut shift) = (Vec::new(), Vec::new(), Vec::new());
    for (conv, s) in convs {
        weight.extend_from_slice(conv.weight.data());
        scale.extend(conv.bias.data().iter().map(|_| *s as f32));
        shift.extend(conv.bias.data().iter().map(|&v| (s * v as f64) as f32));
    }
    let rows = scale.len();
    scale.extend(shift);
    Ok((Tensor::from_vec(&[1, rows, cin], weight)?, Tensor::from_vec(&[2, rows], scale)?))
}

/// The flat indices y * W + x of the query pixels, checked against the H x W map.
fn query_pixels(b: &Builder, arch: &str, h: usize, w: usize) -> Result<Vec<usize>> {
    if b.queries.is_empty() {
        return Ok(vec![(h / 2) * w + w / 2]);
    }
    let mut flat = Vec::with_capacity(b.queries.len());
    for (i, &[qx, qy]) in b.queries.iter().enumerate() {
        if qx >= w || qy >= h {
            return Err(Error::invalid(
                arch,
                format!(
                    "query {i} at pixel ({qx}, {qy}) is outside the {h} x {w} (H x W) map: X must be below {w} \
                     and Y below {h}"
                ),
            ));
        }
        flat.push(qy * w + qx);
    }
    Ok(flat)
}

/// Adds the block to the graph (fused or unfused as the rules allow) and returns z [N, C, H, W].
fn non_local_graph(b: &mut Builder, x: ValueId, arch: &str, nl: NonLocalWeights) -> Result<ValueId> {
    let [n, c, h, w] = b.graph.shape(x).nchw(arch, "input x")?;
    let inter = nl.theta.weight.shape().dims()[0];
    let queries = query_pixels(b, arch, h, w)?;
    if nl.sub_sample && (h < 2 || w < 2) {
        return Err(Error::invalid(
            arch,
            format!("sub_sample pools 2x2 and needs H, W >= 2, got x {}", b.graph.shape(x)),
        ));
    }
    // PyTorch's MaxPool2d(2) floors: an odd last row or column is dropped.
    let (hk, wk) = if nl.sub_sample { (h / 2, w / 2) } else { (h, w) };
    let (q, k) = (h * w, hk * wk);
    let pool = MaxPool2d::new([2, 2], [0, 0]);
    let x_flat = b.graph.view(x, &[n, c, q])?;
    let affine = Epilogue { affine: true, ..Epilogue::NONE };
    let flash = b.fusion.allows(Rule::NonLocalFlash);

    let (theta, phi, g) = if flash {
        let (weight, bias) = stacked(&[(&nl.theta, nl.scale), (&nl.phi, 1.0), (&nl.g, 1.0)])?;
        let (weight, bias) = (b.constant(weight), b.constant(bias));
        let tpg = b.graph.add(Matmul::conv1x1(affine), &[weight, x_flat, bias])?; // [N, 3 inter, Q]
        let tpg = b.graph.view(tpg, &[n, 3 * inter, h, w])?;
        let theta = b.graph.add(Narrow { first: 0, count: inter }, &[tpg])?;
        // Pooling all three parts at once costs a quarter more pooling than phi|g alone, but saves
        // copying phi|g out at full resolution first.
        let keys = if nl.sub_sample { b.graph.add(pool, &[tpg])? } else { tpg };
        let phi = b.graph.add(Narrow { first: inter, count: inter }, &[keys])?;
        let g = b.graph.add(Narrow { first: 2 * inter, count: inter }, &[keys])?;
        (theta, phi, g)
    } else {
        let mut convs = Vec::new();
        for (conv, scale) in [(&nl.theta, nl.scale), (&nl.phi, 1.0), (&nl.g, 1.0)] {
            let (weight, bias) = stacked(&[(conv, scale)])?;
            let (weight, bias) = (b.constant(weight), b.constant(bias));
            convs.push(b.graph.add(Matmul::conv1x1(affine), &[weight, x_flat, bias])?);
            // [N, inter, Q]
        }
        let theta = convs[0];
        let mut keys = Vec::new();
        for &v in &convs[1..] {
            let v = b.graph.view(v, &[n, inter, h, w])?;
            keys.push(if nl.sub_sample { b.graph.add(pool, &[v])? } else { v });
        }
        (theta, keys[0], keys[1])
    };
    let theta = b.graph.view(theta, &[n, inter, q])?;
    let phi = b.graph.view(phi, &[n, inter, k])?;
    let g = b.graph.view(g, &[n, inter, k])?;

    if b.maps {
        let rows = queries.len();
        let att = b.graph.add(AttentionRows { scale: 1.0, queries }, &[theta, phi])?;
        let att = b.graph.view(att, &[n, rows, hk, wk])?;
        b.map("attention", att);
    }

    let y = if flash {
        b.graph.add(NonLocalAttention { scale: 1.0 }, &[theta, phi, g])?
    } else {
        let scores = b.graph.add(Matmul::new(true, false), &[theta, phi])?; // [N, Q, K]
        let f = b.graph.add(Softmax { axis: 2 }, &[scores])?;
        b.graph.add(Matmul::new(false, true), &[g, f])? // [N, inter, Q]
    };
    let out = b.constant(nl.out.reshape(&[1, c, inter])?);
    let out_affine = b.constant(nl.out_affine);
    let epilogue = Epilogue { affine: true, residual: true, ..Epilogue::NONE };
    let z = b.graph.add(Matmul::conv1x1(epilogue), &[out, y, out_affine, x_flat])?;
    b.graph.view(z, &[n, c, h, w])
}
