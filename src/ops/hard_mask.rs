//! hard_mask: a hard 0/1 attention mask from a soft map, by threshold or top-k.

use super::{expect_inputs, expect_output, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Result, Shape, Tensor};

/// How a plane of soft values becomes 0/1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaskRule {
    /// 1 where x >= the threshold (which must be finite).
    Threshold(f32),
    /// 1 for the k largest values of each plane (1 <= k <= H * W), ties going
    /// to the lower flat index (the first k of a stable descending sort), so
    /// exactly k ones per plane.
    TopK(usize),
}

/// A hard mask of a soft map x [N, C, H, W] (usually C = 1): 0/1 of the same
/// shape, decided per (n, c) plane of H * W values by `rule`.
///
/// The GPU top-k ranks every element against its whole plane, O((H * W)^2)
/// comparisons per plane: fine for attention maps (a 64 x 64 plane is 16.8 M
/// comparisons), so planes over [`MAX_TOP_K_PLANE`] values are rejected, and
/// planes are spread over several dispatches so none runs long enough to trip
/// a driver watchdog.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HardMask {
    /// Threshold or top-k.
    pub rule: MaskRule,
}

/// The largest plane (H * W) top-k accepts: 128 x 128, 2^28 comparisons.
pub const MAX_TOP_K_PLANE: usize = 16384;

/// Most comparisons one top-k dispatch may do: one plane of the largest size.
const COMPARISONS_PER_DISPATCH: usize = MAX_TOP_K_PLANE * MAX_TOP_K_PLANE;

/// Mirrors `struct Params` in shaders/hard_mask.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct HardMaskParams {
    n: u32,
    hw: u32,
    base: u32,
    rule: u32,
    k: u32,
    threshold: f32,
    _pad: [u32; 2],
}

const WORKGROUP: u64 = 256;

impl HardMask {
    /// 1 where x >= `t`.
    pub fn threshold(t: f32) -> HardMask {
        HardMask { rule: MaskRule::Threshold(t) }
    }

    /// 1 for the `k` largest values of each plane.
    pub fn top_k(k: usize) -> HardMask {
        HardMask { rule: MaskRule::TopK(k) }
    }

    /// Validates the rule against x's shape; returns the plane size H * W.
    fn plane(&self, x: &Shape) -> Result<usize> {
        let op = self.name();
        let [_, _, h, w] = x.nchw(op, "x")?;
        let hw = h * w; // cannot overflow: numel(x) fits
        match self.rule {
            MaskRule::Threshold(t) => ensure!(t.is_finite(), op, "the threshold must be finite, got {t}"),
            MaskRule::TopK(k) => {
                ensure!((1..=hw).contains(&k), op, "top-k needs 1 <= k <= H * W = {hw} (x {x}), got k = {k}");
                ensure!(
                    hw <= MAX_TOP_K_PLANE,
                    op,
                    "top-k ranks every pair of a plane's values: planes of at most {MAX_TOP_K_PLANE} values \
                     (128 x 128), x {x} has {h} x {w} = {hw}"
                );
            }
        }
        to_u32(op, "element count", x.numel())?;
        Ok(hw)
    }
}

impl Op for HardMask {
    fn name(&self) -> &'static str {
        "hard_mask"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        self.plane(inputs[0])?;
        Ok(inputs[0].clone())
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let hw = self.plane(&shape)?;
        let x = inputs[0].data();
        let mut out = vec![0.0f32; x.len()];
        match self.rule {
            MaskRule::Threshold(t) => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = if v >= t { 1.0 } else { 0.0 };
                }
            }
            MaskRule::TopK(k) => {
                for (o, plane) in out.chunks_mut(hw).zip(x.chunks(hw)) {
                    // A stable sort keeps equal values in index order. -0.0 and
                    // 0.0 compare equal, as on the GPU; total_cmp keeps the order
                    // total (sort_by may panic otherwise) even for NaN input.
                    let key = |i: usize| if plane[i] == 0.0 { 0.0 } else { plane[i] };
                    let mut order: Vec<usize> = (0..hw).collect();
                    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
                    for &i in &order[..k] {
                        o[i] = 1.0;
                    }
                }
            }
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        let shape = expect_output(self, inputs, output)?;
        let hw = self.plane(&shape)?;
        let total = shape.numel();
        let (rule, k, threshold, per_dispatch) = match self.rule {
            MaskRule::Threshold(t) => (0, 0, t, total),
            // Whole planes, as many as the comparison budget allows (at least one).
            MaskRule::TopK(k) => (1, k, 0.0, (COMPARISONS_PER_DISPATCH / (hw * hw)).max(1) * hw),
        };
        let mut dispatches = Vec::new();
        for base in (0..total).step_by(per_dispatch) {
            let n = per_dispatch.min(total - base);
            let params = HardMaskParams {
                n: to_u32(self.name(), "element count", n)?,
                hw: to_u32(self.name(), "plane size", hw)?,
                base: to_u32(self.name(), "first element", base)?,
                rule,
                k: to_u32(self.name(), "k", k)?,
                threshold,
                _pad: [0; 2],
            };
            let grid = gpu.grid_1d(self.name(), (n as u64).div_ceil(WORKGROUP))?;
            dispatches.push(gpu.prepare(&kernel!("hard_mask"), &[], &params, &[inputs[0], output], grid)?);
        }
        Ok(dispatches)
    }

    /// One comparison per element for a threshold; the rank kernel's H * W per
    /// element for top-k (an upper bound: it stops once an element's rank
    /// reaches k). Bytes: x read once, the mask written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let Ok(hw) = self.plane(inputs[0]) else {
            return Cost::default();
        };
        let n = inputs[0].numel() as u64;
        let per_element = match self.rule {
            MaskRule::Threshold(_) => 1,
            MaskRule::TopK(_) => hw as u64,
        };
        Cost { flops: n * per_element, bytes: 8 * n }
    }
}

/// Correctness cases: thresholds, top-k with k = 1, some and all, odd plane
/// sizes, many channels, and repeated values that only the tie rule orders.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let shape = |dims: &[usize]| Shape::new(dims).expect("case shapes are valid");
    for dims in [[1, 1, 1, 1], [3, 1, 7, 7], [1, 3, 13, 17], [3, 65, 13, 17], [3, 1, 56, 56]] {
        let x = Tensor::random(shape(&dims), rng, 0.0, 1.0);
        cases.push(Case::new("threshold 0.5", HardMask::threshold(0.5), vec![x.clone()]));
        let hw = dims[2] * dims[3];
        for k in [1, hw.div_ceil(3), hw] {
            cases.push(Case::new(format!("top-{k}"), HardMask::top_k(k), vec![x.clone()]));
        }
    }
    // Threshold exactly on values present in x: >= must keep them.
    let x = Tensor::random(shape(&[1, 65, 7, 7]), rng, 0.0, 1.0);
    let t = x.data()[17];
    cases.push(Case::new("threshold on a value", HardMask::threshold(t), vec![x]));
    // Values from a small set: most ranks are decided by the lower-index rule,
    // and k cuts through a run of equal values.
    for (dims, k) in [([3, 1, 13, 17], 100), ([1, 3, 56, 56], 1000), ([1, 1, 7, 7], 5)] {
        let data = (0..shape(&dims).numel()).map(|_| rng.usize(0..4) as f32 * 0.25).collect();
        let x = Tensor::new(shape(&dims), data).expect("valid");
        cases.push(Case::new(format!("top-{k}, repeated values"), HardMask::top_k(k), vec![x]));
    }
    let x = Tensor::full(shape(&[1, 1, 13, 17]), 0.5);
    cases.push(Case::new("top-7, all equal", HardMask::top_k(7), vec![x]));
    // The largest planes take one dispatch each: later dispatches start at `base`.
    let x = Tensor::random(shape(&[3, 1, 128, 128]), rng, 0.0, 1.0);
    cases.push(Case::new("top-1, one dispatch per plane", HardMask::top_k(1), vec![x.clone()]));
    cases.push(Case::new("top-500, one dispatch per plane", HardMask::top_k(500), vec![x]));
    // 65^2 pixels need 17 workgroups of 256: past SMALL_GRID the grid folds into y.
    let x = Tensor::random(shape(&[1, 1, 65, 65]), rng, 0.0, 1.0);
    cases.push(Case::new("threshold, folded grid", HardMask::threshold(0.3), vec![x]).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_breaks_ties_toward_the_lower_index() {
        let x = Tensor::from_vec(&[1, 1, 2, 3], vec![0.5, 0.9, 0.5, 0.1, 0.9, 0.5]).unwrap();
        let mask = |rule| HardMask { rule }.reference(&[&x]).unwrap().into_data();
        assert_eq!(mask(MaskRule::TopK(1)), [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(mask(MaskRule::TopK(3)), [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(mask(MaskRule::TopK(4)), [1.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(mask(MaskRule::TopK(6)), [1.0; 6]);
        assert_eq!(mask(MaskRule::Threshold(0.5)), [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
        // Planes are independent: two planes of two values.
        let x = Tensor::from_vec(&[1, 2, 1, 2], vec![1.0, 2.0, 4.0, 3.0]).unwrap();
        assert_eq!(HardMask::top_k(1).reference(&[&x]).unwrap().data(), &[0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn bad_arguments_are_rejected() {
        let x = Shape::new(&[2, 1, 3, 5]).unwrap();
        let err = |m: HardMask, s: &Shape| m.output_shape(&[s]).unwrap_err().to_string();
        for k in [0, 16] {
            let e = err(HardMask::top_k(k), &x);
            assert!(e.contains("hard_mask") && e.contains(&format!("k = {k}")) && e.contains("= 15"), "{e}");
        }
        assert!(HardMask::top_k(15).output_shape(&[&x]).is_ok());
        for t in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(err(HardMask::threshold(t), &x).contains("must be finite"));
        }
        let e = err(HardMask::top_k(1), &Shape::new(&[1, 1, 129, 128]).unwrap());
        assert!(e.contains("at most 16384") && e.contains("129 x 128 = 16512"), "{e}");
        assert!(HardMask::top_k(1).output_shape(&[&Shape::new(&[9, 1, 128, 128]).unwrap()]).is_ok());
        let e = err(HardMask::threshold(0.5), &Shape::new(&[15]).unwrap());
        assert!(e.contains("N x C x H x W") && e.contains("[15]"), "{e}");
        let e = err(HardMask::threshold(0.5), &Shape::new(&[1, 1, 70_000, 70_000]).unwrap());
        assert!(e.contains("32-bit"), "{e}");
        let t = Tensor::zeros(x);
        let e = HardMask::threshold(0.5).reference(&[&t, &t]).unwrap_err().to_string();
        assert!(e.contains("expects 1 inputs (x), got 2"), "{e}");
    }

    #[test]
    fn cost_counts_comparisons() {
        let x = Shape::new(&[2, 1, 3, 5]).unwrap();
        assert_eq!(HardMask::threshold(0.0).cost(&[&x]), Cost { flops: 30, bytes: 240 });
        assert_eq!(HardMask::top_k(3).cost(&[&x]), Cost { flops: 30 * 15, bytes: 240 });
    }
}
