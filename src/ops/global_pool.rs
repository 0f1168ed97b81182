//! global_pool: per-channel average and max over the whole map (CBAM's channel
//! attention input, SK's squeeze), in two kernel variants.

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{kernel, Result, Shape, Tensor};

/// Which kernel computes the reductions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PoolVariant {
    /// What [`crate::ops::choose::global_pool`] picks for the device and the map size.
    #[default]
    Auto,
    /// One invocation per (n, c) looping over H x W (global_pool.wgsl): no
    /// barriers; 10-50x faster than `Tree` on lavapipe.
    Serial,
    /// One 256-invocation workgroup per (n, c) with a tree reduction
    /// (global_pool_tree.wgsl): wins on real GPUs when N x C is small and H x W large.
    Tree,
}

/// x [N, C, H, W] -> [N, 2, C]: row 0 is the average over H x W, row 1 the max.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalPool {
    /// The kernel to run; both give the same result within tolerance.
    pub variant: PoolVariant,
}

/// Mirrors `struct Params` in shaders/global_pool.wgsl and global_pool_tree.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GlobalPoolParams {
    n: u32,
    c: u32,
    hw: u32,
    _pad: u32,
}

/// Invocations per workgroup of the serial kernel (the tree kernel uses one workgroup per row).
const SERIAL_WORKGROUP: u64 = 64;

impl GlobalPool {
    /// The variant that runs on `gpu` for maps of `pixels` = H x W (resolves `Auto`).
    pub fn resolve(&self, gpu: &Gpu, pixels: usize) -> PoolVariant {
        match self.variant {
            PoolVariant::Auto => super::choose::global_pool(gpu.profile(), pixels),
            v => v,
        }
    }
}

impl Op for GlobalPool {
    fn name(&self) -> &'static str {
        "global_pool"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let [n, c, _, _] = inputs[0].nchw(self.name(), "x")?;
        Shape::new(&[n, 2, c])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [n, c, h, w] = inputs[0].shape().nchw(self.name(), "x")?;
        let hw = h * w;
        let mut out = vec![0.0; shape.numel()];
        for (row, map) in inputs[0].data().chunks(hw).enumerate() {
            let (b, k) = (row / c, row % c);
            let sum: f64 = map.iter().map(|&v| v as f64).sum();
            out[b * 2 * c + k] = (sum / hw as f64) as f32;
            out[(b * 2 + 1) * c + k] = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        }
        debug_assert_eq!(out.len(), n * 2 * c);
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let op = self.name();
        let [n, c, h, w] = inputs[0].shape().nchw(op, "x")?;
        // The largest index the shaders form is into x.
        to_u32(op, "x element count", inputs[0].shape().numel())?;
        let params = GlobalPoolParams {
            n: to_u32(op, "N", n)?,
            c: to_u32(op, "C", c)?,
            hw: to_u32(op, "H x W", h * w)?,
            _pad: 0,
        };
        let rows = (n * c) as u64;
        let (kernel, grid) = match self.resolve(gpu, h * w) {
            PoolVariant::Tree => (kernel!("global_pool_tree"), gpu.grid_1d(op, rows)?),
            _ => {
                // The serial walk reads four pixels per access where quads never straddle two maps.
                let serial = match super::choose::pixels_in_vec4s(h * w) {
                    true => kernel!("global_pool_vec4"),
                    false => kernel!("global_pool"),
                };
                (serial, gpu.grid_1d(op, rows.div_ceil(SERIAL_WORKGROUP))?)
            }
        };
        Ok(vec![gpu.prepare(&kernel, &[], &params, &[inputs[0], output], grid)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let x = inputs[0].numel() as u64;
        let rows = inputs[0].dims().iter().take(2).product::<usize>() as u64;
        // An add and a max per element, a divide per mean; read x, write 2 values per row.
        Cost { flops: 2 * x + rows, bytes: 4 * (x + 2 * rows) }
    }
}

/// Correctness cases: both variants over C in 1, 3, 65, maps 1 x 1 to 56 x 56 (the serial one's
/// scalar and vec4 kernels), batch 1 to 3, and all-negative maps (the max must not start from 0).
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    // 4 divides H x W in the 56 x 56, 2 x 6 and 12 x 16 maps: the serial variant's vec4 kernel.
    let shapes =
        [[1, 1, 1, 1], [3, 3, 7, 7], [1, 65, 13, 17], [3, 65, 56, 56], [3, 3, 1, 1], [1, 1, 56, 56], [2, 5, 2, 6]];
    for variant in [PoolVariant::Serial, PoolVariant::Tree] {
        for dims in shapes {
            let x = random_input(rng, &dims, -1.0, 1.0);
            cases.push(Case::new(format!("{variant:?}"), GlobalPool { variant }, vec![x]));
        }
        for dims in [[3, 3, 13, 17], [3, 3, 12, 16]] {
            let x = random_input(rng, &dims, -9.0, -1.0);
            cases.push(Case::new(format!("{variant:?}, all negative"), GlobalPool { variant }, vec![x]));
        }
        // One workgroup per row (tree) or per SERIAL_WORKGROUP rows: one more row than
        // SMALL_GRID workgroups cover, so the grid folds into y.
        let per_workgroup = if variant == PoolVariant::Tree { 1 } else { SERIAL_WORKGROUP as usize };
        for hw in [[1, 2], [2, 2]] {
            let x = random_input(rng, &[1, SMALL_GRID as usize * per_workgroup + 1, hw[0], hw[1]], -1.0, 1.0);
            let case = Case::new(format!("{variant:?}, folded grid"), GlobalPool { variant }, vec![x]);
            cases.push(case.with_grid_limit(SMALL_GRID));
        }
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_rejected() {
        let pool = GlobalPool::default();
        let x5 = Shape::new(&[1, 2, 3, 4, 5]).unwrap();
        let err = pool.output_shape(&[&x5]).unwrap_err().to_string();
        assert!(
            err.contains("global_pool")
                && err.contains("x must be N x C x H x W")
                && err.contains("[1 x 2 x 3 x 4 x 5]"),
            "{err}"
        );
        let x = Shape::new(&[1, 2, 3, 4]).unwrap();
        let err = pool.output_shape(&[&x, &x]).unwrap_err().to_string();
        assert!(err.contains("global_pool") && err.contains("expects 1 inputs"), "{err}");
    }

    #[test]
    fn reference_averages_and_maxes_each_map() {
        // Batch 1, two channels of 2 x 2.
        let x = Tensor::from_vec(&[1, 2, 2, 2], vec![1.0, 2.0, 3.0, 6.0, -1.0, -2.0, -3.0, -6.0]).unwrap();
        let y = GlobalPool::default().reference(&[&x]).unwrap();
        assert_eq!(y.shape().dims(), &[1, 2, 2]);
        assert_eq!(y.data(), &[3.0, -3.0, 6.0, -1.0]);
    }
}
