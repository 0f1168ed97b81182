//! center_crop: the central window of each image, as torchvision's `CenterCrop`.

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Result, Shape, Tensor};

/// Keeps the central `size` = (h, w) window of every plane: x [N, C, H, W] ->
/// [N, C, h, w], at torchvision's offsets (see [`crop_offset`]). Unlike
/// torchvision, which pads an image smaller than the crop with zeros, a crop
/// larger than the input is an error here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CenterCrop {
    /// Crop (height, width); each at least 1 and at most the input's.
    pub size: [usize; 2],
}

/// Mirrors `struct Params` in shaders/center_crop.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CenterCropParams {
    n: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    top: u32,
    left: u32,
    _pad: u32,
}

const WORKGROUP: u64 = 256;

/// The first index kept when cropping `crop` out of `input` (`crop <= input`):
/// torchvision's `int(round((input - crop) / 2.0))`, where Python's `round`
/// rounds halves to even. The margin m = input - crop is an integer, so m / 2 is
/// either exact or k + 0.5 with k = m / 2 (floor), which rounds to k when k is
/// even and to k + 1 when k is odd: margin 5 gives 2, margin 7 gives 4.
pub fn crop_offset(input: usize, crop: usize) -> usize {
    let margin = input - crop;
    let k = margin / 2;
    if margin % 2 == 1 && k % 2 == 1 {
        k + 1
    } else {
        k
    }
}

impl CenterCrop {
    /// A crop to `size` = (height, width).
    pub fn new(size: [usize; 2]) -> CenterCrop {
        CenterCrop { size }
    }

    /// Validates the crop against x's shape and returns the shader parameters.
    fn params(&self, x: &Shape) -> Result<CenterCropParams> {
        let op = self.name();
        let [n, c, h, w] = x.nchw(op, "x")?;
        let [oh, ow] = self.size;
        ensure!(oh > 0 && ow > 0, op, "crop size must be at least 1 x 1, got {oh} x {ow}");
        ensure!(
            oh <= h && ow <= w,
            op,
            "crop {oh} x {ow} is larger than x {x} (torchvision would pad; glimpse does not)"
        );
        to_u32(op, "input element count", x.numel())?;
        let u = |what: &str, v: usize| to_u32(op, what, v);
        Ok(CenterCropParams {
            // n * c * oh * ow <= numel(x), which fits.
            n: u("output element count", n * c * oh * ow)?,
            h: u("height", h)?,
            w: u("width", w)?,
            oh: u("crop height", oh)?,
            ow: u("crop width", ow)?,
            top: u("top offset", crop_offset(h, oh))?,
            left: u("left offset", crop_offset(w, ow))?,
            _pad: 0,
        })
    }
}

impl Op for CenterCrop {
    fn name(&self) -> &'static str {
        "center_crop"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        self.params(inputs[0])?;
        let [n, c, _, _] = inputs[0].nchw(self.name(), "x")?;
        Shape::new(&[n, c, self.size[0], self.size[1]])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [n, c, h, w] = inputs[0].shape().nchw(self.name(), "x")?;
        let [oh, ow] = self.size;
        let (top, left) = (crop_offset(h, oh), crop_offset(w, ow));
        let mut out = Vec::with_capacity(shape.numel());
        for plane in inputs[0].data().chunks(h * w).take(n * c) {
            for row in plane.chunks(w).skip(top).take(oh) {
                out.extend_from_slice(&row[left..left + ow]);
            }
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let params = self.params(inputs[0].shape())?;
        let grid = gpu.grid_1d(self.name(), (params.n as u64).div_ceil(WORKGROUP))?;
        Ok(vec![gpu.prepare(&kernel!("center_crop"), &[], &params, &[inputs[0], output], grid)?])
    }

    /// A copy: no FLOPs; only the kept elements are read, and each is written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        match self.output_shape(inputs) {
            Ok(out) => Cost { flops: 0, bytes: 8 * out.numel() as u64 },
            Err(_) => Cost::default(),
        }
    }
}

/// Correctness cases: even and odd margins, including the half-to-even ones
/// (margins 5 and 7, where rounding half up would be off by one), 1 x 1 crops
/// and the identity crop.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let crops: [([usize; 4], [usize; 2]); 9] = [
        ([1, 1, 1, 1], [1, 1]),
        ([3, 3, 7, 7], [2, 4]),      // margins 5 (-> 2) and 3 (-> 2)
        ([1, 3, 7, 7], [7, 7]),      // identity
        ([1, 1, 7, 7], [1, 1]),      // margins 6 (-> 3)
        ([3, 65, 13, 17], [6, 10]),  // margins 7 (-> 4) and 7
        ([1, 3, 13, 17], [8, 12]),   // margins 5 and 5 (-> 2)
        ([1, 65, 56, 56], [49, 51]), // margins 7 and 5
        ([3, 1, 56, 56], [32, 45]),  // margins 24 and 11 (-> 6)
        ([3, 3, 56, 56], [1, 1]),    // margin 55 (27.5 -> 28)
    ];
    for (dims, size) in crops {
        let x = random_input(rng, &dims, -1.0, 1.0);
        let label = format!("crop {} x {}", size[0], size[1]);
        cases.push(Case::new(label, CenterCrop::new(size), vec![x]));
    }
    // 65^2 outputs need 17 workgroups of 256: past SMALL_GRID the grid folds into y.
    let x = random_input(rng, &[1, 1, 68, 71], -1.0, 1.0);
    cases.push(Case::new("folded grid", CenterCrop::new([65, 65]), vec![x]).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_half_to_even() {
        // Python: [round(m / 2) for m in range(10)] == [0, 0, 1, 2, 2, 2, 3, 4, 4, 4]
        let got: Vec<usize> = (0..10).map(|m| crop_offset(20, 20 - m)).collect();
        assert_eq!(got, [0, 0, 1, 2, 2, 2, 3, 4, 4, 4]);
        assert_eq!(crop_offset(56, 1), 28); // 27.5 -> 28
        assert_eq!(crop_offset(7, 2), 2); // 2.5 -> 2
        assert_eq!(crop_offset(13, 6), 4); // 3.5 -> 4
    }

    #[test]
    fn reference_keeps_the_centre() {
        // 1 x 1 x 4 x 5 holding 0..20: a 2 x 2 crop has margins 2 and 3 -> top 1, left 2.
        let x = Tensor::from_vec(&[1, 1, 4, 5], (0..20).map(|v| v as f32).collect()).unwrap();
        let y = CenterCrop::new([2, 2]).reference(&[&x]).unwrap();
        assert_eq!(y.shape().dims(), [1, 1, 2, 2]);
        assert_eq!(y.data(), &[7.0, 8.0, 12.0, 13.0]);
    }

    #[test]
    fn bad_arguments_are_rejected() {
        let x = Shape::new(&[1, 3, 7, 9]).unwrap();
        let err = |crop: CenterCrop, s: &Shape| crop.output_shape(&[s]).unwrap_err().to_string();
        let e = err(CenterCrop::new([8, 4]), &x);
        assert!(e.contains("center_crop") && e.contains("crop 8 x 4") && e.contains("[1 x 3 x 7 x 9]"), "{e}");
        assert!(err(CenterCrop::new([4, 10]), &x).contains("larger than x"));
        assert!(err(CenterCrop::new([0, 3]), &x).contains("at least 1 x 1, got 0 x 3"));
        let e = err(CenterCrop::new([2, 2]), &Shape::new(&[7, 9]).unwrap());
        assert!(e.contains("N x C x H x W") && e.contains("[7 x 9]"), "{e}");
        let e = err(CenterCrop::new([2, 2]), &Shape::new(&[1, 1, 70_000, 70_000]).unwrap());
        assert!(e.contains("32-bit"), "{e}");
        let t = Tensor::zeros(x);
        let e = CenterCrop::new([2, 2]).reference(&[]).unwrap_err().to_string();
        assert!(e.contains("expects 1 inputs (x), got 0"), "{e}");
        assert!(CenterCrop::new([2, 2]).reference(&[&t, &t]).is_err());
    }
}
