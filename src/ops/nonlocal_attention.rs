//! nonlocal_attention: the embedded-Gaussian Non-local attention (Wang et al. 2018), flash style:
//! the Q x K attention matrix is never stored.

use super::{expect_inputs, expect_output, random_input, shapes_of, Case, Cost, Op};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Result, Shape, Tensor};
use std::ops::Range;

/// y = softmax(scale * theta^T phi) g^T, channel-major as 1x1 convolutions produce and consume it:
/// `theta` [N, D, Q] and `phi` [N, D, K] (D inter channels, Q query pixels, K key pixels: H * W, or
/// fewer when phi and g are sub-sampled), `g` [N, Dv, K] -> `y` [N, Dv, Q] with
/// y[n, c, q] = sum_k f[q, k] g[n, c, k], f[q, :] = softmax_k(scale * sum_d theta[n, d, q] phi[n, d, k]).
///
/// The kernel walks keys in blocks with an online softmax (running max and sum per query), so memory is
/// O((Q + K) * (D + Dv)) and the work is split over dispatches of at most [`FLOPS_PER_DISPATCH`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NonLocalAttention {
    /// Multiplies every score: 1 in the original block, in_channels^-0.5 in timm's. Must be finite.
    pub scale: f32,
    /// Which flash kernel runs.
    pub kernel: FlashKernel,
}

/// The flash kernels; all compute the same thing with the same online softmax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashKernel {
    /// What [`crate::ops::choose::nonlocal_attention`] picks: Subgroup where subgroups have one fixed
    /// width from 4 to 64 lanes, else Portable.
    Auto,
    /// What runs on any device: nonlocal_attention (32 channels per invocation) up to Dv = 64,
    /// nonlocal_attention_wide (scores shared over 128 channels in workgroup memory) above.
    Portable,
    /// nonlocal_attention_subgroup: the narrow kernel with phi and g shared across subgroups of 4 to 64 lanes.
    Subgroup,
}

impl NonLocalAttention {
    /// The attention with score factor `scale`, on the kernel [`FlashKernel::Auto`] picks.
    pub fn new(scale: f32) -> NonLocalAttention {
        NonLocalAttention { scale, kernel: FlashKernel::Auto }
    }
}

/// Mirrors `struct Params` in shaders/nonlocal_attention.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct NonLocalAttentionParams {
    d: u32,
    dv: u32,
    q: u32,
    k: u32,
    q_begin: u32,
    q_end: u32,
    n_begin: u32,
    n_end: u32,
    scale: f32,
    _pad: [u32; 3],
}

/// Most FLOPs one dispatch of the Non-local kernels may do: about 0.1 s on lavapipe, far below the
/// 2 s driver watchdogs on any GPU.
pub const FLOPS_PER_DISPATCH: u64 = 1 << 28;

/// Queries one workgroup covers: 64 invocations x 4 queries (WG x QPI in the shader).
const QUERIES_PER_WORKGROUP: usize = 256;
/// Output channels one invocation accumulates (DVC in the shader).
const CHANNELS_PER_INVOCATION: usize = 32;
/// Value widths above this run nonlocal_attention_wide (see `encode` for the measurement).
const WIDE_ABOVE_DV: usize = 2 * CHANNELS_PER_INVOCATION;

/// Output channels one invocation of nonlocal_attention_subgroup accumulates (DVC in its shader).
const SUBGROUP_CHANNELS_PER_INVOCATION: usize = 128;

/// Queries one workgroup of nonlocal_attention_wide covers (QB in its shader).
const QUERIES_PER_WIDE_WORKGROUP: usize = 64;
/// Output channels one workgroup of nonlocal_attention_wide covers (4 x CI in its shader).
const CHANNELS_PER_WIDE_WORKGROUP: usize = 128;
/// Most workgroups along one grid dimension on every WebGPU device.
const MAX_GRID: usize = 65535;
/// Shaders add small offsets to indices (key blocks, strided queries); sizes keep this much headroom
/// below 2^32 so that no u32 expression can wrap.
const INDEX_HEADROOM: usize = 1 << 16;

/// N, D and the pixel counts of a score matrix theta^T phi.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScoreDims {
    pub n: usize,
    pub d: usize,
    pub q: usize,
    pub k: usize,
}

/// Validates `scale`, theta [N, D, Q] and phi [N, D, K] for `op`.
pub(crate) fn score_dims(op: &str, scale: f32, theta: &Shape, phi: &Shape) -> Result<ScoreDims> {
    ensure!(scale.is_finite(), op, "scale must be finite, got {scale}");
    let [n, d, q] = dims3(op, "theta", "N x D x Q", theta)?;
    let [pn, pd, k] = dims3(op, "phi", "N x D x K", phi)?;
    ensure!(
        pn == n && pd == d,
        op,
        "theta {theta} and phi {phi} must agree in N (batch) and D (channels), got N {n} vs {pn}, D {d} vs {pd}"
    );
    Ok(ScoreDims { n, d, q, k })
}

/// The three dimensions of a rank-3 tensor whose element count the shaders can index.
pub(crate) fn dims3(op: &str, name: &str, layout: &str, shape: &Shape) -> Result<[usize; 3]> {
    let &[a, b, c] = shape.dims() else {
        return Err(crate::Error::invalid(op, format!("{name} must be {layout}, got {shape}")));
    };
    ensure!(
        shape.numel() as u64 + INDEX_HEADROOM as u64 <= u32::MAX as u64,
        op,
        "{name} {shape} has {} elements, beyond the 32-bit index range of the shaders",
        shape.numel()
    );
    Ok([a, b, c])
}

/// The reference softmax row f[q, :] of image `n` in f64: max-subtracted scores, exponentials, sum.
pub(crate) fn softmax_row(theta: &[f32], phi: &[f32], dims: ScoreDims, scale: f32, n: usize, q: usize) -> Vec<f64> {
    let ScoreDims { d, q: nq, k: nk, .. } = dims;
    let (t, p) = (&theta[n * d * nq..(n + 1) * d * nq], &phi[n * d * nk..(n + 1) * d * nk]);
    let scores: Vec<f64> = (0..nk)
        .map(|k| scale as f64 * (0..d).map(|c| t[c * nq + q] as f64 * p[c * nk + k] as f64).sum::<f64>())
        .collect();
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Splits `n` images x `items` work items (queries, rows) into dispatch rectangles of at most
/// [`FLOPS_PER_DISPATCH`] (or one `step` of items where even that is more): item ranges of a multiple
/// of `step` and at most `max_items`, then as many images (at most 65535, a grid dimension) as fit.
pub(crate) fn split_work(
    n: usize,
    items: usize,
    step: usize,
    max_items: usize,
    flops_per_item: u64,
) -> Vec<(Range<usize>, Range<usize>)> {
    let flops_per_item = flops_per_item.max(1);
    let budget = (FLOPS_PER_DISPATCH / flops_per_item).min(items as u64) as usize;
    let chunk = if budget == items { items } else { (budget / step * step).max(step) };
    let chunk = chunk.min(max_items / step * step).min(items);
    let images = (FLOPS_PER_DISPATCH / (chunk as u64 * flops_per_item)).clamp(1, MAX_GRID as u64) as usize;
    let mut out = Vec::new();
    for n0 in (0..n).step_by(images) {
        for i0 in (0..items).step_by(chunk) {
            out.push((n0..(n0 + images).min(n), i0..(i0 + chunk).min(items)));
        }
    }
    out
}

impl NonLocalAttention {
    /// Validates the inputs; returns the score dims and Dv.
    fn dims(&self, inputs: &[&Shape]) -> Result<(ScoreDims, usize)> {
        expect_inputs(self, inputs)?;
        let op = self.name();
        let dims = score_dims(op, self.scale, inputs[0], inputs[1])?;
        let [gn, dv, gk] = dims3(op, "g", "N x Dv x K", inputs[2])?;
        ensure!(
            gn == dims.n && gk == dims.k,
            op,
            "g {} must have phi's N = {} and K = {} (phi {}), got N {gn} and K {gk}",
            inputs[2],
            dims.n,
            dims.k,
            inputs[1]
        );
        // y [N, Dv, Q] must be indexable too.
        dims3(op, "y", "N x Dv x Q", &Shape::new(&[dims.n, dv, dims.q])?)?;
        Ok((dims, dv))
    }
}

impl Op for NonLocalAttention {
    fn name(&self) -> &'static str {
        "nonlocal_attention"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["theta", "phi", "g"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        let (dims, dv) = self.dims(inputs)?;
        Shape::new(&[dims.n, dv, dims.q])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let (dims, dv) = self.dims(&shapes_of(inputs))?;
        let (theta, phi, g) = (inputs[0].data(), inputs[1].data(), inputs[2].data());
        let mut y = vec![0.0f32; shape.numel()];
        for n in 0..dims.n {
            for q in 0..dims.q {
                let f = softmax_row(theta, phi, dims, self.scale, n, q);
                for c in 0..dv {
                    let g_row = &g[(n * dv + c) * dims.k..][..dims.k];
                    let v: f64 = f.iter().zip(g_row).map(|(&p, &x)| p * x as f64).sum();
                    y[(n * dv + c) * dims.q + q] = v as f32;
                }
            }
        }
        Tensor::new(shape, y)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let (dims, dv) = self.dims(&super::gpu_shapes_of(inputs))?;
        // Narrow: one invocation holds 32 channels of its queries, no workgroup memory; wider values
        // recompute the scores per 32 channels. Wide: a workgroup shares each score over 128 channels
        // at the price of two barriers per key block. Measured on lavapipe (`glimpse bench --filter
        // NonLocal`): at Dv = 64 two narrow chunks won (51.5 against 66.6 ms, timm.NonLocalAttn
        // 1x512x28x28), at Dv = 128 the wide kernel did (299 against 540 ms, NonLocal 1x256x56x56).
        // With 8-lane subgroups, sharing the phi and g loads beat both at every Dv, and holding 128
        // channels per invocation beat 32 and 64 (fewer score recomputations outweigh the spills): at
        // 1x256x56x56, timm.NonLocalAttn (Dv = 32) 115 against 218 ms, NonLocal (Dv = 128) 122 against
        // 280 ms; NonLocal 1x512x28x28 (Dv = 256) 52.7 against 85.5 ms. Its 128 running sums per
        // query now live in y rather than in registers (the register array cost 8-14 s of llvmpipe
        // compile at the first dispatch; see the shader).
        let subgroups = super::choose::flash_subgroups(gpu.profile());
        let subgroup = match self.kernel {
            FlashKernel::Auto => super::choose::nonlocal_attention(gpu.profile()) == FlashKernel::Subgroup,
            FlashKernel::Portable => false,
            FlashKernel::Subgroup if subgroups => true,
            FlashKernel::Subgroup => {
                return Err(crate::Error::invalid(
                    self.name(),
                    format!(
                        "the Subgroup kernel needs subgroups of one fixed width from 4 to 64, which {} lacks",
                        gpu.adapter().name
                    ),
                ))
            }
        };
        let (kernel, queries_per_workgroup, channels) = if subgroup {
            (kernel!("nonlocal_attention_subgroup"), QUERIES_PER_WORKGROUP, SUBGROUP_CHANNELS_PER_INVOCATION)
        } else if dv > WIDE_ABOVE_DV {
            (kernel!("nonlocal_attention_wide"), QUERIES_PER_WIDE_WORKGROUP, CHANNELS_PER_WIDE_WORKGROUP)
        } else {
            (kernel!("nonlocal_attention"), QUERIES_PER_WORKGROUP, CHANNELS_PER_INVOCATION)
        };
        // The subgroup kernel's key layout follows the width (lanes load 2 keys each, or 4 with 4 lanes).
        let constants: Vec<(&str, f64)> = match gpu.profile().subgroup_width {
            Some(w) if subgroup => vec![("SUBGROUP_WIDTH", w as f64)],
            _ => vec![],
        };
        let chunks = dv.div_ceil(channels);
        // Each channel chunk recomputes the scores.
        let per_query = 2 * dims.k as u64 * (dims.d as u64 * chunks as u64 + dv as u64);
        let max_queries = MAX_GRID * queries_per_workgroup;
        let rects = split_work(dims.n, dims.q, queries_per_workgroup, max_queries, per_query);
        let mut dispatches = Vec::with_capacity(rects.len());
        for (images, queries) in rects {
            // Every value fits: dims3 bounded each tensor's element count below 2^32.
            let params = NonLocalAttentionParams {
                d: dims.d as u32,
                dv: dv as u32,
                q: dims.q as u32,
                k: dims.k as u32,
                q_begin: queries.start as u32,
                q_end: queries.end as u32,
                n_begin: images.start as u32,
                n_end: images.end as u32,
                scale: self.scale,
                _pad: [0; 3],
            };
            let grid = [queries.len().div_ceil(queries_per_workgroup) as u32, chunks as u32, images.len() as u32];
            let bindings = [inputs[0], inputs[1], inputs[2], output];
            dispatches.push(gpu.prepare(&kernel, &constants, &params, &bindings, grid)?);
        }
        Ok(dispatches)
    }

    /// 2 FLOPs per multiply-add of theta^T phi and of f g (4 Q K D per image when Dv = D); the
    /// exponentials and the score recomputation of channel chunks are not counted. Bytes: every input
    /// read once, y written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let Ok((dims, dv)) = self.dims(inputs) else {
            return Cost::default();
        };
        let (n, d, q, k, dv) = (dims.n as u64, dims.d as u64, dims.q as u64, dims.k as u64, dv as u64);
        Cost { flops: 2 * n * q * k * (d + dv), bytes: 4 * n * (d * q + d * k + dv * k + dv * q) }
    }
}

/// Random theta [n, d, q], phi [n, d, k], g [n, dv, k] in [-1, 1).
fn inputs(rng: &mut fastrand::Rng, n: usize, d: usize, dv: usize, q: usize, k: usize) -> Vec<Tensor> {
    let t = |dims: &[usize], rng: &mut fastrand::Rng| random_input(rng, dims, -1.0, 1.0);
    vec![t(&[n, d, q], rng), t(&[n, d, k], rng), t(&[n, dv, k], rng)]
}

/// Correctness cases: Q = K over 1 x 1, 7 x 7, 13 x 17, 28 x 28 and 56 x 56 pixels, sub-sampled keys
/// (K = Q / 4), D and Dv in 1, 3, 16, 65 (Dv = 65 spans three channel chunks), batch 1 and 3, scale 1
/// and D^-0.5, logits above 300, one dominant key, and work split over query and image ranges; for the
/// wide kernel (Dv > 64) Dv 65, 96, 128, 150 and 256, K not a multiple of its key block, logits above
/// 300. Every case runs on [`FlashKernel::Auto`] and, but the 56 x 56 ones, on the portable kernels.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut specs: Vec<(String, NonLocalAttention, Vec<Tensor>)> = Vec::new();
    // (n, d, dv, q, k): 1 x 1, 7 x 7, 13 x 17, 28 x 28 and sub-sampled 28 x 28 -> 14 x 14.
    for (n, d, dv, q, k) in [
        (1, 1, 1, 1, 1),
        (3, 3, 3, 49, 49),
        (1, 16, 65, 221, 221),
        (3, 65, 16, 221, 221),
        (1, 16, 16, 784, 784),
        (3, 65, 65, 784, 196),
        (3, 3, 1, 49, 12),
    ] {
        for scale in [1.0, (d as f32).powf(-0.5)] {
            let op = NonLocalAttention::new(scale);
            let label = format!("D {d}, Dv {dv}, Q {q}, K {k}, scale {scale}");
            specs.push((label, op, inputs(rng, n, d, dv, q, k)));
        }
    }
    // Logits of several hundred (integers in [-20, 20] at D = 16: std about 530), so the online softmax
    // must rescale and never exponentiate a positive number. Integer inputs make every score exact in
    // f32: with random reals, rounding a score near 500 (ulp 3e-5) alone changes exp(s - m) by up to
    // 3e-5 relative, in any f32 implementation, more than the tolerance allows.
    let mut big = inputs(rng, 3, 16, 16, 221, 221);
    for t in &mut big[..2] {
        t.data_mut().iter_mut().for_each(|v| *v = rng.i32(-20..=20) as f32);
    }
    specs.push(("logits above 300".into(), NonLocalAttention::new(1.0), big));
    // One key every query prefers by about 160 (theta >= 0, phi's column 100 all 20): y ~ g[:, 100].
    let mut dominant = inputs(rng, 1, 16, 16, 221, 221);
    for v in dominant[0].data_mut() {
        *v = v.abs();
    }
    for c in 0..16 {
        dominant[1].data_mut()[c * 221 + 100] = 20.0;
    }
    specs.push(("one dominant key".into(), NonLocalAttention::new(1.0), dominant));
    // Dv 64: two narrow chunks. nonlocal_attention_wide (Dv > 64; the cases above with Dv 65 run it
    // too): Dv 96, 128, 150 and 256 (two chunks of 128 channels, the last of 150 partial: so for the
    // subgroup kernel), queries not a multiple of its 64 and keys not of its 32-key block.
    for (n, d, dv, q, k) in
        [(1, 8, 64, 100, 45), (1, 8, 96, 100, 45), (2, 16, 128, 221, 70), (1, 8, 150, 100, 45), (1, 32, 256, 130, 49)]
    {
        let op = NonLocalAttention::new((d as f32).powf(-0.5));
        specs.push((format!("D {d}, Dv {dv}, Q {q}, K {k}"), op, inputs(rng, n, d, dv, q, k)));
    }
    let mut big = inputs(rng, 2, 16, 100, 150, 77);
    for t in &mut big[..2] {
        t.data_mut().iter_mut().for_each(|v| *v = rng.i32(-20..=20) as f32);
    }
    specs.push(("wide: logits above 300".into(), NonLocalAttention::new(1.0), big));
    // 56 x 56: batch 2 runs one dispatch per image; D = Dv = 8 at batch 1 splits its queries over
    // two dispatches (2 Q K (D + Dv) = 315 M FLOPs > FLOPS_PER_DISPATCH).
    let op = NonLocalAttention::new(0.5);
    specs.push(("56 x 56, one dispatch per image".into(), op, inputs(rng, 2, 4, 4, 3136, 3136)));
    specs.push(("56 x 56, query ranges".into(), op, inputs(rng, 1, 8, 8, 3136, 3136)));
    // The tutorial's size (64 channels, inter 32) at scale 1: peaked rows whose y nearly cancels, where
    // the rounding of the scores themselves decides whether the tolerance holds.
    let op = NonLocalAttention::new(1.0);
    specs.push(("56 x 56, D 32, scale 1".into(), op, inputs(rng, 1, 32, 32, 3136, 3136)));
    // Auto runs the subgroup kernel where subgroups have a fixed width (lavapipe on Vulkan): the portable
    // kernels again on the same inputs, all but the 56 x 56 cases (those run them on other devices).
    let mut cases = Vec::new();
    for (label, op, inputs) in specs {
        if !label.starts_with("56 x 56") {
            let portable = NonLocalAttention { kernel: FlashKernel::Portable, ..op };
            cases.push(Case::new(format!("{label}, portable kernels"), portable, inputs.clone()));
        }
        cases.push(Case::new(label, op, inputs));
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(dims: &[usize]) -> Shape {
        Shape::new(dims).unwrap()
    }

    fn err(op: NonLocalAttention, dims: [&[usize]; 3]) -> String {
        let shapes = dims.map(shape);
        op.output_shape(&[&shapes[0], &shapes[1], &shapes[2]]).unwrap_err().to_string()
    }

    #[test]
    fn reference_matches_a_hand_computed_example() {
        // D = 1, Q = K = 2: query 0 scores [0, ln 3] -> f = [1/4, 3/4]; query 1 scores [0, 0] -> [1/2, 1/2].
        let theta = Tensor::from_vec(&[1, 1, 2], vec![1.0, 0.0]).unwrap();
        let phi = Tensor::from_vec(&[1, 1, 2], vec![0.0, 3f32.ln()]).unwrap();
        let g = Tensor::from_vec(&[1, 1, 2], vec![4.0, 8.0]).unwrap();
        let y = NonLocalAttention::new(1.0).reference(&[&theta, &phi, &g]).unwrap();
        assert_eq!(y.shape(), &shape(&[1, 1, 2]));
        assert!((y.data()[0] - 7.0).abs() < 1e-5 && (y.data()[1] - 6.0).abs() < 1e-6, "{:?}", y.data());
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let op = NonLocalAttention::new(1.0);
        let e = err(op, [&[2, 8, 49], &[2, 4, 49], &[2, 8, 49]]);
        assert!(e.contains("nonlocal_attention") && e.contains("[2 x 8 x 49]") && e.contains("D 8 vs 4"), "{e}");
        let e = err(op, [&[2, 8, 49], &[3, 8, 49], &[3, 8, 49]]);
        assert!(e.contains("N 2 vs 3"), "{e}");
        let e = err(op, [&[2, 8, 49], &[2, 8, 12], &[2, 8, 49]]);
        assert!(e.contains("g [2 x 8 x 49]") && e.contains("K = 12"), "{e}");
        let e = err(op, [&[2, 8, 49], &[2, 8, 12], &[1, 8, 12]]);
        assert!(e.contains("N = 2") && e.contains("got N 1"), "{e}");
        let e = err(op, [&[2, 8, 7, 7], &[2, 8, 49], &[2, 8, 49]]);
        assert!(e.contains("theta must be N x D x Q, got [2 x 8 x 7 x 7]"), "{e}");
        let e = err(op, [&[2, 8, 49], &[2, 8, 49], &[2, 8 * 49]]);
        assert!(e.contains("g must be N x Dv x K"), "{e}");
        for scale in [f32::NAN, f32::INFINITY] {
            assert!(err(NonLocalAttention::new(scale), [&[1, 1, 1]; 3]).contains("scale must be finite"));
        }
        // 2^32 elements would wrap the shaders' u32 indices; so would a y beyond them.
        let e = err(op, [&[1, 65536, 65536], &[1, 65536, 1], &[1, 1, 1]]);
        assert!(e.contains("theta [1 x 65536 x 65536]") && e.contains("32-bit"), "{e}");
        let e = err(op, [&[1, 1, 65536], &[1, 1, 1], &[1, 65536, 1]]);
        assert!(e.contains("y [1 x 65536 x 65536]") && e.contains("32-bit"), "{e}");
        let t = Tensor::zeros(shape(&[1, 1, 1]));
        let e = op.reference(&[&t, &t]).unwrap_err().to_string();
        assert!(e.contains("expects 3 inputs (theta, phi, g), got 2"), "{e}");
    }

    #[test]
    fn work_splits_into_bounded_dispatches_covering_everything() {
        // (n, items, step, max_items, flops per item)
        for (n, items, step, max, f) in
            [(3, 49, 256, 1 << 24, 1000), (2, 3136, 256, 1 << 24, 100_000), (1, 3136, 256, 1 << 24, 1 << 29)]
        {
            let rects = split_work(n, items, step, max, f);
            let mut covered = vec![0u32; n * items];
            for (images, range) in &rects {
                assert!(images.len() as u64 * range.len() as u64 * f <= FLOPS_PER_DISPATCH || range.len() <= step);
                assert!(range.start % step == 0);
                for i in images.clone() {
                    range.clone().for_each(|j| covered[i * items + j] += 1);
                }
            }
            assert!(covered.iter().all(|&c| c == 1), "{rects:?}");
        }
        assert_eq!(split_work(3, 49, 256, 1 << 24, 1000).len(), 1);
        assert_eq!(split_work(1, 3136, 256, 1 << 24, 1000), vec![(0..1, 0..3136)], "no split when it fits");
        assert_eq!(split_work(2, 3136, 256, 1 << 24, 100_000).len(), 2 * 3136usize.div_ceil(2560));
        assert_eq!(split_work(1, 40, 1, 16, 10).len(), 3, "at most 16 rows per dispatch");
    }
}
