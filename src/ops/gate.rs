//! gate: scales a feature map by per-channel or per-pixel weights, given
//! either as logits (sigmoid applied here) or as probabilities (CBAM's channel
//! and spatial gates).

use super::{expect_inputs, expect_output, random_input, shapes_of, sigmoid, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{kernel, Error, Result, Shape, Tensor};

/// What one gate logit covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateMode {
    /// g [N, C]: one logit per channel, shared by its H x W pixels.
    Channel,
    /// g [N, 1, H, W]: one logit per pixel, shared by its C channels.
    Pixel,
}

/// Inputs `x` [N, C, H, W] and `g` -> x * sigmoid(g) (or x * g), shaped like x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    /// Whether `g` holds channel or pixel weights.
    pub mode: GateMode,
    /// Whether `g` holds logits (apply a sigmoid) or probabilities (use as is).
    pub sigmoid: bool,
}

/// Mirrors `struct Params` in shaders/gate.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GateParams {
    planes: u32,
    c: u32,
    hw: u32,
    mode: u32,
}

/// Invocations per workgroup, along the pixels of one (n, c) plane.
const WORKGROUP: u32 = 64;

impl Gate {
    /// x * sigmoid(g): `g` holds logits.
    pub fn logits(mode: GateMode) -> Gate {
        Gate { mode, sigmoid: true }
    }

    /// x * g: `g` holds weights already squashed to (0, 1).
    pub fn probabilities(mode: GateMode) -> Gate {
        Gate { mode, sigmoid: false }
    }

    /// The shape `g` must have for `x` [N, C, H, W].
    fn gate_dims(&self, [n, c, h, w]: [usize; 4]) -> Vec<usize> {
        match self.mode {
            GateMode::Channel => vec![n, c],
            GateMode::Pixel => vec![n, 1, h, w],
        }
    }
}

impl Op for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x", "g"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let (x, g) = (inputs[0], inputs[1]);
        let want = self.gate_dims(x.nchw(self.name(), "x")?);
        if g.dims() != want {
            let what = match self.mode {
                GateMode::Channel => "N x C",
                GateMode::Pixel => "N x 1 x H x W",
            };
            return Err(Error::invalid(
                self.name(),
                format!("{:?} gate g must be {what} for x {x}, got g {g}", self.mode),
            ));
        }
        Ok(x.clone())
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [_, c, h, w] = shape.nchw(self.name(), "x")?;
        let (x, g, hw) = (inputs[0].data(), inputs[1].data(), h * w);
        let out = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let j = match self.mode {
                    GateMode::Channel => i / hw,
                    GateMode::Pixel => i / (c * hw) * hw + i % hw,
                };
                (v as f64 * if self.sigmoid { sigmoid(g[j] as f64) } else { g[j] as f64 }) as f32
            })
            .collect();
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        let shape = expect_output(self, inputs, output)?;
        let op = self.name();
        let [n, c, h, w] = shape.nchw(op, "x")?;
        // The largest index the shader forms is into x.
        to_u32(op, "x element count", shape.numel())?;
        let params = GateParams {
            planes: to_u32(op, "N x C", n * c)?,
            c: to_u32(op, "C", c)?,
            hw: to_u32(op, "H x W", h * w)?,
            mode: match self.mode {
                GateMode::Channel => 0,
                GateMode::Pixel => 1,
            } | (self.sigmoid as u32) << 1,
        };
        // x along a plane's pixels; the planes folded into y and z.
        let [y, z, _] = gpu.grid_1d(op, (n * c) as u64)?;
        let grid = [params.hw.div_ceil(WORKGROUP), y, z];
        Ok(vec![gpu.prepare(&kernel!("gate"), &[], &params, &[inputs[0], inputs[1], output], grid)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let (x, g) = (inputs[0].numel() as u64, inputs[1].numel() as u64);
        // A multiply per element; a sigmoid (negate, exp, add, divide) per logit.
        let squash = if self.sigmoid { 4 * g } else { 0 };
        Cost { flops: x + squash, bytes: 4 * (2 * x + g) }
    }
}

/// Correctness cases: both modes over C in 1, 3, 65, maps 1 x 1 to 56 x 56,
/// batch 1 and 3, and logits of +-400 (outputs exactly x or about 0, never NaN).
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for mode in [GateMode::Channel, GateMode::Pixel] {
        for (gate, lo, hi) in [(Gate::logits(mode), -6.0, 6.0), (Gate::probabilities(mode), 0.0, 1.0)] {
            for dims in [[1, 1, 1, 1], [3, 3, 7, 7], [1, 65, 13, 17], [3, 65, 56, 56], [3, 3, 1, 1]] {
                let x = random_input(rng, &dims, -1.0, 1.0);
                let g_shape = Shape::new(&gate.gate_dims(dims)).expect("valid");
                let g = Tensor::random(g_shape, rng, lo, hi);
                let what = if gate.sigmoid { "logits" } else { "probabilities" };
                cases.push(Case::new(format!("{mode:?}, {what}"), gate, vec![x, g]));
            }
        }
        let gate = Gate::logits(mode);
        let dims = [3, 3, 13, 17];
        let x = random_input(rng, &dims, -1.0, 1.0);
        let mut g = Tensor::zeros(Shape::new(&gate.gate_dims(dims)).expect("valid"));
        g.data_mut().iter_mut().for_each(|v| *v = if rng.bool() { 400.0 } else { -400.0 });
        cases.push(Case::new(format!("{mode:?}, logits +-400"), gate, vec![x, g]));
        // More planes than SMALL_GRID: the plane index must fold from y into z.
        let dims = [1, SMALL_GRID as usize + 1, 1, 1];
        let x = random_input(rng, &dims, -1.0, 1.0);
        let g = random_input(rng, &gate.gate_dims(dims), -6.0, 6.0);
        cases.push(Case::new(format!("{mode:?}, folded grid"), gate, vec![x, g]).with_grid_limit(SMALL_GRID));
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(dims: &[usize]) -> Shape {
        Shape::new(dims).unwrap()
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let channel = Gate::logits(GateMode::Channel);
        let pixel = Gate::logits(GateMode::Pixel);
        let x = shape(&[2, 3, 4, 5]);
        let err = channel.output_shape(&[&shape(&[2, 3, 20]), &shape(&[2, 3])]).unwrap_err().to_string();
        assert!(
            err.contains("gate") && err.contains("x must be N x C x H x W") && err.contains("[2 x 3 x 20]"),
            "{err}"
        );
        let err = channel.output_shape(&[&x, &shape(&[2, 4])]).unwrap_err().to_string();
        assert!(err.contains("gate") && err.contains("[2 x 3 x 4 x 5]") && err.contains("[2 x 4]"), "{err}");
        let err = channel.output_shape(&[&x, &shape(&[3, 3])]).unwrap_err().to_string();
        assert!(err.contains("[3 x 3]"), "{err}");
        let err = pixel.output_shape(&[&x, &shape(&[2, 1, 5, 4])]).unwrap_err().to_string();
        assert!(err.contains("gate") && err.contains("N x 1 x H x W") && err.contains("[2 x 1 x 5 x 4]"), "{err}");
        assert!(pixel.output_shape(&[&x, &shape(&[2, 3])]).is_err());
        assert!(channel.output_shape(&[&x, &shape(&[2, 1, 4, 5])]).is_err());
        let err = channel.output_shape(&[&x]).unwrap_err().to_string();
        assert!(err.contains("gate") && err.contains("expects 2 inputs"), "{err}");
    }

    #[test]
    fn reference_scales_by_sigmoid() {
        // x [1, 2, 1, 2]; channel logits (0, -400), pixel logits (0, 400).
        let x = Tensor::from_vec(&[1, 2, 1, 2], vec![2.0, 4.0, 6.0, 8.0]).unwrap();
        let g = Tensor::from_vec(&[1, 2], vec![0.0, -400.0]).unwrap();
        let y = Gate::logits(GateMode::Channel).reference(&[&x, &g]).unwrap();
        assert_eq!(y.data(), &[1.0, 2.0, 0.0, 0.0]);
        let g = Tensor::from_vec(&[1, 1, 1, 2], vec![0.0, 400.0]).unwrap();
        let y = Gate::logits(GateMode::Pixel).reference(&[&x, &g]).unwrap();
        assert_eq!(y.data(), &[1.0, 4.0, 3.0, 8.0]);
        let g = Tensor::from_vec(&[1, 2], vec![0.5, 0.25]).unwrap();
        let y = Gate::probabilities(GateMode::Channel).reference(&[&x, &g]).unwrap();
        assert_eq!(y.data(), &[1.0, 2.0, 1.5, 2.0]);
    }
}
