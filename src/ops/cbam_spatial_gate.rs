//! cbam_spatial_gate: CBAM's spatial attention (k x k conv on the channel
//! mean/max, optional BatchNorm, sigmoid) applied with the channel gate, the
//! residual and the ReLU, x read once and the output written once (the
//! `CbamSpatialGate` fusion).
//!
//! Two dispatches: `cbam_spatial_map` writes the map s (into the requested side output, so a
//! requested spatial map costs no second conv, or a device scratch slot), then
//! `cbam_spatial_apply_vec4` gates x plane by plane with 16-byte accesses where 4 divides H * W,
//! `cbam_spatial_apply` element by element elsewhere. On lavapipe 1.1-2.2x faster in the
//! CbamModule blocks and resnet50 + CBAM than the one pass over the channels per pixel they
//! replaced, which walked C planes at once (cbam_spatial_apply_vec4 says more).

use super::cbam_channel_mlp::coarse_random;
use super::{
    expect_inputs, expect_output, gpu_shapes_of, random_input, shapes_of, sigmoid, to_u32, Case, Cost, Op, SMALL_GRID,
};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Result, Shape, Tensor};

/// Inputs `x` [N, C, H, W], `ca` [N, C] (channel weights, already sigmoid-ed),
/// `pooled` [N, 2, H, W] (channel mean and max of x * ca), `weight` [1, 2, k, k]
/// (the spatial conv, no bias, padding k / 2), then `affine` [2, 1] (scale,
/// shift) when `affine` and `residual` [N, C, H, W] when `residual` ->
/// out [N, C, H, W] = post(x * ca[n, c] * s[n, p]) with
/// s = sigmoid(affine(conv_k(pooled))); post adds the residual, then applies
/// ReLU, when those flags are set (the CBAM BasicBlock's relu(x * ca * sa + identity)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CbamSpatialGate {
    /// Conv kernel size k (odd: 3 or 7 in CBAM).
    pub kernel: usize,
    /// A BatchNorm on the conv output (timm): `y = scale * conv + shift`.
    pub affine: bool,
    /// Add a `residual` input after gating.
    pub residual: bool,
    /// ReLU last.
    pub relu: bool,
    /// Also write s [N, 1, H, W] as a side output: the spatial map, when it is
    /// a requested output, without a second conv to compute it.
    pub map: bool,
}

/// Mirrors `struct Params` in shaders/cbam_spatial_map.wgsl (and the apply kernels).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CbamSpatialGateParams {
    pixels: u32,
    c: u32,
    h: u32,
    w: u32,
    k: u32,
    flags: u32,
    _pad: [u32; 2],
}

const WORKGROUP: u64 = 256;
/// cbam_spatial_apply_vec4's workgroup: pixel quads of one plane (the other kernels take 256).
const APPLY_WORKGROUP: u64 = 64;

impl CbamSpatialGate {
    /// Validates the arguments and shapes; returns x's [N, C, H, W].
    fn dims(&self, inputs: &[&Shape]) -> Result<[usize; 4]> {
        expect_inputs(self, inputs)?;
        let (op, k) = (self.name(), self.kernel);
        let (x, ca, pooled, weight) = (inputs[0], inputs[1], inputs[2], inputs[3]);
        ensure!(k % 2 == 1, op, "kernel must be odd (padding k / 2 keeps the size), got {k}");
        let [n, c, h, w] = x.nchw(op, "x")?;
        ensure!(
            ca.dims() == [n, c],
            op,
            "ca must be [{n} x {c}] (one weight per image and channel of x {x}), got {ca}"
        );
        ensure!(pooled.dims() == [n, 2, h, w], op, "pooled must be [{n} x 2 x {h} x {w}] for x {x}, got {pooled}");
        ensure!(weight.dims() == [1, 2, k, k], op, "weight must be [1 x 2 x {k} x {k}] for kernel {k}, got {weight}");
        if self.affine {
            let affine = inputs[4];
            ensure!(affine.dims() == [2, 1], op, "affine must be [2 x 1] (scale, shift), got {affine}");
        }
        if self.residual {
            let residual = inputs[inputs.len() - 1];
            ensure!(residual == x, op, "residual must be shaped like x {x}, got {residual}");
        }
        to_u32(op, "x element count", x.numel())?;
        to_u32(op, "pooled element count", pooled.numel())?;
        to_u32(op, "weight element count", weight.numel())?;
        to_u32(op, "height plus kernel", h.saturating_add(k))?;
        to_u32(op, "width plus kernel", w.saturating_add(k))?;
        Ok([n, c, h, w])
    }

    fn flags(&self) -> u32 {
        self.affine as u32 | (self.residual as u32) << 1 | (self.relu as u32) << 2 | (self.map as u32) << 3
    }

    /// The output and the spatial map s [N, 1, H, W], from the same f64 values.
    fn compute(&self, inputs: &[&Tensor]) -> Result<(Tensor, Tensor)> {
        let [n, c, h, w] = self.dims(&shapes_of(inputs))?;
        let (x, ca, pooled, weight) = (inputs[0].data(), inputs[1].data(), inputs[2].data(), inputs[3].data());
        let (k, pad, hw) = (self.kernel, self.kernel / 2, h * w);
        // The spatial attention map s [N, H, W]: conv (zero padding), affine, sigmoid.
        let mut s = vec![0.0f64; n * hw];
        for img in 0..n {
            for y in 0..h {
                for xx in 0..w {
                    let mut z = 0.0f64;
                    for ch in 0..2 {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (Some(iy), Some(ix)) = ((y + ky).checked_sub(pad), (xx + kx).checked_sub(pad))
                                else {
                                    continue;
                                };
                                if iy < h && ix < w {
                                    let tap = weight[(ch * k + ky) * k + kx] as f64;
                                    z += tap * pooled[((img * 2 + ch) * h + iy) * w + ix] as f64;
                                }
                            }
                        }
                    }
                    if self.affine {
                        let a = inputs[4].data();
                        z = a[0] as f64 * z + a[1] as f64;
                    }
                    s[img * hw + y * w + xx] = sigmoid(z);
                }
            }
        }
        // Both gates, then the residual and the ReLU.
        let residual = self.residual.then(|| inputs[inputs.len() - 1].data());
        let mut out = Vec::with_capacity(x.len());
        for (i, &v) in x.iter().enumerate() {
            let (nc, p) = (i / hw, i % hw);
            let mut y = v as f64 * ca[nc] as f64 * s[(nc / c) * hw + p];
            if let Some(r) = residual {
                y += r[i] as f64;
            }
            if self.relu {
                y = y.max(0.0);
            }
            out.push(y as f32);
        }
        let s = s.iter().map(|&v| v as f32).collect();
        Ok((Tensor::new(inputs[0].shape().clone(), out)?, Tensor::new(Shape::new(&[n, 1, h, w])?, s)?))
    }
}

impl Op for CbamSpatialGate {
    fn name(&self) -> &'static str {
        "cbam_spatial_gate"
    }

    fn input_names(&self) -> Vec<&'static str> {
        let mut names = vec!["x", "ca", "pooled", "weight"];
        if self.affine {
            names.push("affine");
        }
        if self.residual {
            names.push("residual");
        }
        names
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        self.dims(inputs)?;
        Ok(inputs[0].clone())
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        Ok(self.compute(inputs)?.0)
    }

    fn side_outputs(&self, inputs: &[&Shape]) -> Result<Vec<Shape>> {
        let [n, _, h, w] = self.dims(inputs)?;
        Ok(if self.map { vec![Shape::new(&[n, 1, h, w])?] } else { Vec::new() })
    }

    fn reference_all(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (out, s) = self.compute(inputs)?;
        Ok(if self.map { vec![out, s] } else { vec![out] })
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        crate::ensure!(!self.map, self.name(), "the spatial map is a side output: encode it with encode_all");
        self.encode_all(gpu, inputs, &[output])
    }

    fn encode_all(&self, gpu: &Gpu, inputs: &[&GpuTensor], outputs: &[&GpuTensor]) -> Result<Vec<Dispatch>> {
        let output = outputs[0];
        let want = 1 + self.map as usize;
        crate::ensure!(outputs.len() == want, self.name(), "expects {want} outputs, got {}", outputs.len());
        expect_output(self, inputs, output)?;
        if let Some(map) = outputs.get(1) {
            let want = &self.side_outputs(&gpu_shapes_of(inputs))?[0];
            crate::ensure!(map.shape() == want, self.name(), "map must be {want}, got {}", map.shape());
        }
        let [n, c, h, w] = self.dims(&gpu_shapes_of(inputs))?;
        let op = self.name();

        // Every size below is at most an element count or h + k, checked by dims().
        let params = CbamSpatialGateParams {
            pixels: (n * h * w) as u32,
            c: c as u32,
            h: h as u32,
            w: w as u32,
            k: self.kernel as u32,
            flags: self.flags(),
            _pad: [0; 2],
        };
        // Absent optional inputs: a small input (weight) or x fills the slot, never read.
        let affine = if self.affine { inputs[4] } else { inputs[3] };
        let residual = if self.residual { inputs[inputs.len() - 1] } else { inputs[0] };
        // Two passes, plane-major (cbam_spatial_apply_vec4 says why): the map s into the requested
        // side output or the device's scratch slot, then x gated in memory order.
        let slot;
        let map = match outputs.get(1) {
            Some(m) => *m,
            None => {
                slot = gpu.scratch("cbam_spatial_map", &Shape::new(&[n, 1, h, w])?)?;
                &slot
            }
        };
        let grid = gpu.grid_1d(op, (params.pixels as u64).div_ceil(WORKGROUP))?;
        let spatial =
            gpu.prepare(&kernel!("cbam_spatial_map"), &[], &params, &[inputs[2], inputs[3], affine, map], grid)?;
        let bindings = [inputs[0], inputs[1], map, residual, output];
        let apply = if super::choose::pixels_in_vec4s(h * w) {
            // Four pixels of one plane per invocation, 16-byte accesses; the planes on y and z.
            let [y, z, _] = gpu.grid_1d(op, (n * c) as u64)?;
            let grid = [((h * w / 4) as u64).div_ceil(APPLY_WORKGROUP) as u32, y, z];
            gpu.prepare(&kernel!("cbam_spatial_apply_vec4"), &[], &params, &bindings, grid)?
        } else {
            let grid = gpu.grid_1d(op, ((n * c * h * w) as u64).div_ceil(WORKGROUP))?;
            gpu.prepare(&kernel!("cbam_spatial_apply"), &[], &params, &bindings, grid)?
        };
        Ok(vec![spatial.into_auxiliary(), apply])
    }

    /// Per pixel the conv (4 k^2), affine and sigmoid (about 6); per element two
    /// products and the optional add and max. Bytes: every input read once
    /// (x, and residual when present, dominate) and the output written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let Ok([n, c, h, w]) = self.dims(inputs) else {
            return Cost::default();
        };
        let (numel, pixels, k) = ((n * c * h * w) as u64, (n * h * w) as u64, self.kernel as u64);
        let per_element = 2 + self.residual as u64 + self.relu as u64;
        let reads =
            numel * (1 + self.residual as u64) + (n * c) as u64 + 2 * pixels + 2 * k * k + 2 * self.affine as u64;
        Cost { flops: pixels * (4 * k * k + 6) + numel * per_element, bytes: 4 * (reads + numel) }
    }
}

/// Inputs for `op` on x [n, c, h, w]: values in [-1, 1] (ca in [0, 1), affine
/// scale near 1), or with `huge` magnitudes on a coarse grid so that the conv
/// sums are exact in f32 and the sigmoids saturate.
fn inputs(op: &CbamSpatialGate, [n, c, h, w]: [usize; 4], huge: bool, rng: &mut fastrand::Rng) -> Vec<Tensor> {
    let k = op.kernel;
    let rand = |dims: &[usize], rng: &mut fastrand::Rng, max: f32| random_input(rng, dims, -max, max);
    let (scale, pooled, weight) = if huge {
        (1e4, coarse_random(&[n, 2, h, w], rng, 200.0, 1.0), coarse_random(&[1, 2, k, k], rng, 1.0, 8.0))
    } else {
        (1.0, rand(&[n, 2, h, w], rng, 1.0), rand(&[1, 2, k, k], rng, 1.0))
    };
    let ca = random_input(rng, &[n, c], 0.0, 1.0);
    let mut inputs = vec![rand(&[n, c, h, w], rng, scale), ca, pooled, weight];
    if op.affine {
        let affine = coarse_random(&[2, 1], rng, 2.0, 8.0);
        inputs.push(if huge { affine } else { Tensor::from_vec(&[2, 1], vec![0.8, 0.1]).expect("valid") });
    }
    if op.residual {
        inputs.push(rand(&[n, c, h, w], rng, scale));
    }
    inputs
}

/// Correctness cases: every flag combination over C in 1, 3, 65, spatial
/// 1 x 1, 7 x 7, 13 x 17 (scalar kernel), 56 x 56, 2 x 6, 2 x 2 and 4 x 1
/// (vec4 kernel: groups of 4 pixels that straddle rows, k larger than the
/// image), batch 1 to 3, k = 3 and 7, and saturating sigmoids. The 1 x 1 map
/// has 2 images: with one output element, x * gate + residual could cancel to
/// near 0, where no f32 result meets a tolerance relative to the output (it
/// happened: seed 6709908688870895294, err/tol 1.114 on 4.4e-9).
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    // The last four shapes have 4 | H * W and run cbam_spatial_apply_vec4, the others cbam_spatial_apply.
    let shapes = [
        ([2, 1, 1, 1], 3),
        ([3, 3, 7, 7], 7),
        ([1, 65, 13, 17], 7),
        ([3, 3, 13, 17], 3),
        ([1, 65, 56, 56], 7),
        ([3, 65, 2, 6], 3),
        ([3, 3, 2, 2], 7),
        ([1, 65, 4, 1], 3),
    ];
    for flags in 0..8u32 {
        let (affine, residual, relu) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
        for (dims, kernel) in shapes {
            let op = CbamSpatialGate { kernel, affine, residual, relu, map: false };
            let label = format!("k {kernel}, affine {affine}, residual {residual}, relu {relu}");
            cases.push(Case::new(label, op, inputs(&op, dims, false, rng)));
        }
    }
    let big = CbamSpatialGate { kernel: 7, affine: false, residual: false, relu: false, map: false };
    cases.push(Case::new("k 7, batch 3, 56 x 56", big, inputs(&big, [3, 65, 56, 56], false, rng)));
    // Saturating on both apply kernels: 13 x 17 and 12 x 16.
    for (affine, residual, relu) in [(false, false, false), (true, true, true), (true, false, false)] {
        let op = CbamSpatialGate { kernel: 7, affine, residual, relu, map: false };
        for (h, w) in [(13, 17), (12, 16)] {
            let label = format!("saturating {h} x {w}, affine {affine}, residual {residual}, relu {relu}");
            cases.push(Case::new(label, op, inputs(&op, [3, 65, h, w], true, rng)));
        }
    }
    // 65^2 pixels need 17 map workgroups of 256 (and 3 x 65^2 elements 50 apply workgroups): past
    // SMALL_GRID the grids fold into y.
    let op = CbamSpatialGate { kernel: 7, affine: true, residual: true, relu: true, map: false };
    let x = inputs(&op, [1, 3, 65, 65], false, rng);
    cases.push(Case::new("folded grid", op, x).with_grid_limit(SMALL_GRID));
    // 2 x 48 x 48 pixels need 18 map workgroups of 256, and 34 planes fold cbam_spatial_apply_vec4's
    // plane index from y into z.
    let x = inputs(&op, [2, 17, 48, 48], false, rng);
    cases.push(Case::new("vec4, folded grid", op, x).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: CbamSpatialGate =
        CbamSpatialGate { kernel: 3, affine: false, residual: false, relu: false, map: false };

    fn err(op: CbamSpatialGate, dims: &[&[usize]]) -> String {
        let shapes: Vec<Shape> = dims.iter().map(|d| Shape::new(d).unwrap()).collect();
        op.output_shape(&shapes.iter().collect::<Vec<_>>()).unwrap_err().to_string()
    }

    #[test]
    fn bad_shapes_and_arguments_are_rejected() {
        let (x, ca, pooled, w3): (&[usize], &[usize], &[usize], &[usize]) =
            (&[2, 3, 7, 7], &[2, 3], &[2, 2, 7, 7], &[1, 2, 3, 3]);
        let e = err(CbamSpatialGate { kernel: 4, ..PLAIN }, &[x, ca, pooled, &[1, 2, 4, 4]]);
        assert!(e.contains("cbam_spatial_gate") && e.contains("kernel must be odd") && e.contains("got 4"), "{e}");
        let e = err(PLAIN, &[&[2, 3, 7], ca, pooled, w3]);
        assert!(e.contains("x must be N x C x H x W, got [2 x 3 x 7]"), "{e}");
        let e = err(PLAIN, &[x, &[3, 2], pooled, w3]);
        assert!(e.contains("ca must be [2 x 3]") && e.contains("got [3 x 2]"), "{e}");
        let e = err(PLAIN, &[x, ca, &[2, 1, 7, 7], w3]);
        assert!(e.contains("pooled must be [2 x 2 x 7 x 7] for x [2 x 3 x 7 x 7], got [2 x 1 x 7 x 7]"), "{e}");
        let e = err(PLAIN, &[x, ca, pooled, &[1, 2, 7, 7]]);
        assert!(e.contains("weight must be [1 x 2 x 3 x 3] for kernel 3, got [1 x 2 x 7 x 7]"), "{e}");
        let affine = CbamSpatialGate { affine: true, ..PLAIN };
        let e = err(affine, &[x, ca, pooled, w3, &[1, 2]]);
        assert!(e.contains("affine must be [2 x 1] (scale, shift), got [1 x 2]"), "{e}");
        let both = CbamSpatialGate { affine: true, residual: true, ..PLAIN };
        let e = err(both, &[x, ca, pooled, w3, &[2, 1], &[2, 3, 7, 8]]);
        assert!(e.contains("residual must be shaped like x [2 x 3 x 7 x 7], got [2 x 3 x 7 x 8]"), "{e}");
        let e = err(both, &[x, ca, pooled, w3, &[2, 1]]);
        assert!(e.contains("expects 6 inputs (x, ca, pooled, weight, affine, residual), got 5"), "{e}");
        let big: &[usize] = &[1, 2, 65536, 65536];
        let e = err(PLAIN, &[big, &[1, 2], &[1, 2, 65536, 65536], w3]);
        assert!(e.contains("x element count") && e.contains("32-bit"), "{e}");
        let e = err(PLAIN, &[&[1, 1, 65536, 40000], &[1, 1], &[1, 2, 65536, 40000], w3]);
        assert!(e.contains("pooled element count") && e.contains("32-bit"), "{e}");
    }

    #[test]
    fn reference_matches_a_hand_computed_example() {
        // One image, C = 2, 1 x 2 pixels, k = 3 with only the centre taps set:
        // z = 1 * mean + 2 * max, then affine 0.5 * z - 1, relu(x * ca * s + residual).
        let x = Tensor::from_vec(&[1, 2, 1, 2], vec![1.0, 2.0, -3.0, 4.0]).unwrap();
        let ca = Tensor::from_vec(&[1, 2], vec![0.5, 1.0]).unwrap();
        let pooled = Tensor::from_vec(&[1, 2, 1, 2], vec![1.0, 0.0, 1.0, 1.0]).unwrap();
        let mut taps = vec![0.0; 18];
        (taps[4], taps[13]) = (1.0, 2.0);
        let weight = Tensor::from_vec(&[1, 2, 3, 3], taps).unwrap();
        let affine = Tensor::from_vec(&[2, 1], vec![0.5, -1.0]).unwrap();
        let residual = Tensor::from_vec(&[1, 2, 1, 2], vec![0.0, 0.0, 1.0, 0.0]).unwrap();
        let op = CbamSpatialGate { kernel: 3, affine: true, residual: true, relu: true, map: false };
        let y = op.reference(&[&x, &ca, &pooled, &weight, &affine, &residual]).unwrap();
        // z = [3, 2] -> affine [0.5, 0]; s = [sigmoid(0.5), 0.5].
        let s0 = 1.0 / (1.0 + (-0.5f64).exp());
        let want = [0.5 * s0, 1.0 * 0.5, (1.0 - 3.0 * s0).max(0.0), 4.0 * 0.5];
        for (g, w) in y.data().iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-7, "{:?} vs {want:?}", y.data());
        }
    }

    #[test]
    fn cost_counts_the_optional_inputs() {
        let shapes: Vec<Shape> = [&[1, 4, 5, 5][..], &[1, 4], &[1, 2, 5, 5], &[1, 2, 3, 3], &[1, 4, 5, 5]]
            .iter()
            .map(|d| Shape::new(d).unwrap())
            .collect();
        let refs: Vec<&Shape> = shapes.iter().collect();
        let op = CbamSpatialGate { residual: true, ..PLAIN };
        assert_eq!(op.cost(&refs).bytes, 4 * (100 + 100 + 4 + 50 + 18 + 100));
        assert_eq!(PLAIN.cost(&refs[..4]).bytes, 4 * (100 + 4 + 50 + 18 + 100));
    }
}
