//! render_overlay: an attention map upsampled bilinearly to a photo (PyTorch's
//! align_corners=False rule), coloured through a colormap and alpha-blended over it.

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Result, Shape, Tensor};

/// Entries of a colormap table: the `colormap` input is [COLORMAP_SIZE, 3].
pub const COLORMAP_SIZE: usize = 256;

/// Draws `map` [1, h, w] over `photo` [3, H, W] (values in [0, 1]) with `colormap`
/// [256, 3] -> [3, H, W]. Map values `lo` and `hi` get the first and last colour (the
/// range is floored at 1e-12, so a flat map draws with the first colour); values outside
/// are clamped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderOverlay {
    /// Weight of the colour over the photo, in [0, 1].
    pub alpha: f32,
    /// Map value drawn with the first colour. Finite.
    pub lo: f32,
    /// Map value drawn with the last colour. Finite, at least `lo`.
    pub hi: f32,
}

/// Mirrors `struct Params` in shaders/render_overlay.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RenderOverlayParams {
    height: u32,
    width: u32,
    map_h: u32,
    map_w: u32,
    alpha: f32,
    lo: f32,
    hi: f32,
    _pad: u32,
}

const WORKGROUP: u64 = 256;

/// The lower and upper source index along one axis and the upper one's weight, for output
/// index `dst` of `size_out` sampling `size_in`: PyTorch's area_pixel_compute_source_index,
/// src = max((dst + 0.5) * in / out - 0.5, 0), in exact integers as the shader computes it.
/// PyTorch rounds src in f32; its error times the map's slope times the colormap's would
/// alone exceed the op tolerance, so both sides take the exact value (within 1e-6 of PyTorch's).
fn source(dst: usize, size_in: usize, size_out: usize) -> (usize, usize, f64) {
    // src = ((2 dst + 1) in - out) / (2 out), clamped at 0.
    let num = ((2 * dst + 1) * size_in).saturating_sub(size_out);
    let den = 2 * size_out;
    let i0 = (num / den).min(size_in - 1);
    let lambda = if num / den >= size_in - 1 { 0.0 } else { (num % den) as f64 / den as f64 };
    (i0, (i0 + 1).min(size_in - 1), lambda)
}

impl Op for RenderOverlay {
    fn name(&self) -> &'static str {
        "render_overlay"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["photo", "map", "colormap"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let op = self.name();
        let (photo, map, colormap) = (inputs[0], inputs[1], inputs[2]);
        ensure!(
            self.alpha.is_finite() && (0.0..=1.0).contains(&self.alpha),
            op,
            "alpha {} is not in [0, 1]",
            self.alpha
        );
        ensure!(
            self.lo.is_finite() && self.hi.is_finite() && self.lo <= self.hi,
            op,
            "range lo {} .. hi {} must be finite with lo <= hi",
            self.lo,
            self.hi
        );
        ensure!(photo.rank() == 3 && photo.dims()[0] == 3, op, "photo must be [3 x H x W], got {photo}");
        ensure!(map.rank() == 3 && map.dims()[0] == 1, op, "map must be [1 x h x w], got {map}");
        ensure!(colormap.dims() == [COLORMAP_SIZE, 3], op, "colormap must be [{COLORMAP_SIZE} x 3], got {colormap}");
        Ok(photo.clone())
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let (photo, map, cm) = (inputs[0].data(), inputs[1].data(), inputs[2].data());
        let [_, hh, ww] = shape.dims() else { unreachable!("checked to be 3-D") };
        let (mh, mw) = (inputs[1].shape().dims()[1], inputs[1].shape().dims()[2]);
        let (lo, hi, alpha) = (self.lo as f64, self.hi as f64, self.alpha as f64);
        let at = |y: usize, x: usize| map[y * mw + x] as f64;
        let plane = hh * ww;
        let mut out = vec![0.0f32; 3 * plane];
        for y in 0..*hh {
            let (y0, y1, ly) = source(y, mh, *hh);
            for x in 0..*ww {
                let (x0, x1, lx) = source(x, mw, *ww);
                // a + l * (b - a): exact for a flat map, whose t must be exactly 0 (see the shader).
                let top = at(y0, x0) + lx * (at(y0, x1) - at(y0, x0));
                let bottom = at(y1, x0) + lx * (at(y1, x1) - at(y1, x0));
                let v = top + ly * (bottom - top);
                let t = ((v - lo) / (hi - lo).max(1e-12)).clamp(0.0, 1.0);
                let pos = t * (COLORMAP_SIZE - 1) as f64;
                let k = (pos.floor() as usize).min(COLORMAP_SIZE - 2);
                let f = pos - k as f64;
                for c in 0..3 {
                    let rgb = cm[k * 3 + c] as f64 * (1.0 - f) + cm[(k + 1) * 3 + c] as f64 * f;
                    let i = c * plane + y * ww + x;
                    out[i] = ((1.0 - alpha) * photo[i] as f64 + alpha * rgb) as f32;
                }
            }
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        let shape = expect_output(self, inputs, output)?;
        let op = self.name();
        let map = inputs[1].shape().dims();
        let params = RenderOverlayParams {
            height: to_u32(op, "photo height", shape.dims()[1])?,
            width: to_u32(op, "photo width", shape.dims()[2])?,
            map_h: to_u32(op, "map height", map[1])?,
            map_w: to_u32(op, "map width", map[2])?,
            alpha: self.alpha,
            lo: self.lo,
            hi: self.hi,
            _pad: 0,
        };
        // The shader indexes channel planes of 3 * H * W elements, and finds sample points
        // as (2 y + 1) * h in u32.
        to_u32(op, "photo element count", shape.numel())?;
        to_u32(op, "sample numerator (2 H + 1) * h", (2 * shape.dims()[1] + 1) * map[1])?;
        to_u32(op, "sample numerator (2 W + 1) * w", (2 * shape.dims()[2] + 1) * map[2])?;
        let grid = gpu.grid_1d(op, (shape.numel() as u64 / 3).div_ceil(WORKGROUP))?;
        Ok(vec![gpu.prepare(
            &kernel!("render_overlay"),
            &[],
            &params,
            &[inputs[0], inputs[1], inputs[2], output],
            grid,
        )?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let pixels = (inputs[0].numel() / 3) as u64;
        // Per pixel: 4 map reads, ~10 flops for the bilinear weights and lerps, ~6 to
        // normalise and find the entry, 3 x 5 to interpolate the colour and blend.
        let bytes = 4 * (2 * inputs[0].numel() + inputs[1].numel() + inputs[2].numel()) as u64;
        Cost { flops: 31 * pixels, bytes }
    }
}

/// Correctness cases: non-integer up- and downsampling factors, equal sizes, 1 x 1 maps and
/// photos, alpha 0 and 1, flat maps (lo == hi and inside a fixed range) and clamped values.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    // A real colormap: random entries would make the colour jump between neighbours and
    // magnify rounding in t far beyond what any drawn map sees.
    let colormap = crate::viz::Colormap::Turbo.table();
    let mut specs: Vec<(String, RenderOverlay, [usize; 2], Tensor)> = Vec::new();
    let overlay = RenderOverlay { alpha: 0.6, lo: 0.0, hi: 1.0 };
    for (photo, map) in [([17, 13], [7, 5]), ([3, 5], [13, 11]), ([65, 57], [65, 57]), ([257, 301], [13, 17])] {
        let m = random_input(rng, &[1, map[0], map[1]], 0.0, 1.0);
        specs.push((format!("photo {photo:?}, map {map:?}"), overlay, photo, m));
    }
    let map = random_input(rng, &[1, 7, 9], -2.0, 3.0);
    for alpha in [0.0, 1.0] {
        specs.push((format!("alpha {alpha}"), RenderOverlay { alpha, lo: -2.0, hi: 3.0 }, [23, 19], map.clone()));
    }
    specs.push(("values clamped to [-0.5, 1]".into(), RenderOverlay { alpha: 0.7, lo: -0.5, hi: 1.0 }, [23, 19], map));
    let flat = Tensor::full(Shape::new(&[1, 5, 3]).expect("valid"), 0.37);
    specs.push(("flat map, lo == hi".into(), RenderOverlay { alpha: 0.5, lo: 0.37, hi: 0.37 }, [11, 29], flat.clone()));
    specs.push(("flat map, fixed range".into(), overlay, [11, 29], flat));
    specs.push(("1 x 1 map".into(), overlay, [9, 7], Tensor::full(Shape::new(&[1, 1, 1]).expect("valid"), 0.8)));
    let m = random_input(rng, &[1, 3, 4], 0.0, 1.0);
    specs.push(("1 x 1 photo".into(), overlay, [1, 1], m));
    let mut cases = Vec::new();
    for (label, op, [h, w], map) in specs {
        let photo = random_input(rng, &[3, h, w], 0.0, 1.0);
        cases.push(Case::new(label, op, vec![photo, map, colormap.clone()]));
    }
    // 65^2 pixels need 17 workgroups of 256: past SMALL_GRID the grid folds into y.
    let photo = random_input(rng, &[3, 65, 65], 0.0, 1.0);
    let map = random_input(rng, &[1, 3, 4], 0.0, 1.0);
    cases.push(Case::new("folded grid", overlay, vec![photo, map, colormap]).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(d: &[usize]) -> Shape {
        Shape::new(d).unwrap()
    }

    fn err(op: RenderOverlay, photo: &[usize], map: &[usize], cm: &[usize]) -> String {
        op.output_shape(&[&shape(photo), &shape(map), &shape(cm)]).unwrap_err().to_string()
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let ok = RenderOverlay { alpha: 0.5, lo: 0.0, hi: 1.0 };
        let e = err(ok, &[4, 5, 5], &[1, 2, 2], &[256, 3]);
        assert!(e.contains("render_overlay") && e.contains("photo") && e.contains("[4 x 5 x 5]"), "{e}");
        let e = err(ok, &[3, 5, 5], &[2, 2, 2], &[256, 3]);
        assert!(e.contains("map must be [1 x h x w], got [2 x 2 x 2]"), "{e}");
        let e = err(ok, &[3, 5, 5], &[1, 2, 2], &[255, 3]);
        assert!(e.contains("colormap must be [256 x 3], got [255 x 3]"), "{e}");
        let e = err(RenderOverlay { alpha: 1.5, ..ok }, &[3, 5, 5], &[1, 2, 2], &[256, 3]);
        assert!(e.contains("alpha 1.5"), "{e}");
        let e = err(RenderOverlay { lo: 2.0, ..ok }, &[3, 5, 5], &[1, 2, 2], &[256, 3]);
        assert!(e.contains("lo 2 .. hi 1"), "{e}");
        let e = err(RenderOverlay { hi: f32::NAN, ..ok }, &[3, 5, 5], &[1, 2, 2], &[256, 3]);
        assert!(e.contains("finite"), "{e}");
        assert!(ok.output_shape(&[&shape(&[3, 5, 5])]).is_err());
    }

    /// A 1 x 2 map [0, 1] drawn over a black 1 x 4 photo with a gray ramp and alpha 1: PyTorch's
    /// F.interpolate(torch.tensor([[[[0., 1.]]]]), size=(1, 4), mode="bilinear",
    /// align_corners=False) gives [0, 0.25, 0.75, 1].
    #[test]
    fn reference_upsamples_like_pytorch() {
        let ramp: Vec<f32> = (0..256).flat_map(|i| [i as f32 / 255.0; 3]).collect();
        let cm = Tensor::from_vec(&[256, 3], ramp).unwrap();
        let photo = Tensor::zeros(shape(&[3, 1, 4]));
        let map = Tensor::from_vec(&[1, 1, 2], vec![0.0, 1.0]).unwrap();
        let op = RenderOverlay { alpha: 1.0, lo: 0.0, hi: 1.0 };
        let y = op.reference(&[&photo, &map, &cm]).unwrap();
        for (got, want) in y.data()[..4].iter().zip([0.0, 0.25, 0.75, 1.0]) {
            assert!((got - want).abs() < 1e-6, "{:?}", y.data());
        }
        // alpha 0.5 over a white photo, a flat map (lo == hi): the first colour (black) at half.
        let white = Tensor::full(shape(&[3, 1, 4]), 1.0);
        let op = RenderOverlay { alpha: 0.5, lo: 1.0, hi: 1.0 };
        let y = op.reference(&[&white, &Tensor::full(shape(&[1, 1, 2]), 1.0), &cm]).unwrap();
        assert!(y.data().iter().all(|&v| (v - 0.5).abs() < 1e-6), "{:?}", y.data());
    }
}
