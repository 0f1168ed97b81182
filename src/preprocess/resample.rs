//! Pillow's `Image.resize` for 8-bit RGB, bit for bit: the separable convolution of
//! libImaging/Resample.c (BICUBIC, BILINEAR) and the nearest-neighbour affine scaling of
//! libImaging/Geometry.c (NEAREST), restricted to a window of the output so that the centre
//! crop of a huge resize costs only the crop.
//!
//! Resample.c, in the order it works:
//! - `precompute_coeffs`: per output pixel, the filter centred on `(i + 0.5) * scale` with its
//!   support widened by the downscale factor (antialiasing), the taps normalised to sum 1;
//! - `normalize_coeffs_8bpc`: the taps to fixed point with PRECISION_BITS = 32 - 8 - 2 bits,
//!   rounded half away from zero;
//! - the horizontal pass first (only over the input rows the vertical pass reads), its result
//!   clipped and rounded to uint8, then the vertical pass on that; a pass whose axis keeps its
//!   size is skipped (`need_horizontal`, `need_vertical`).
//!
//! A windowed output pixel is the same number as in the full resize: each output pixel
//! depends only on its own taps, and the uint8 intermediate rows are the same rows.

use image::RgbImage;

/// Fixed-point fraction bits of the taps: 8 bits for the pixel, 2 for the overshoot of
/// negative lobes and the int's sign (Resample.c's reasoning).
pub(crate) const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The resampling filters timm's eval transform may ask Pillow for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// Keys' cubic convolution with a = -0.5, support 2.
    Bicubic,
    /// The triangle filter, support 1.
    Bilinear,
    /// Nearest neighbour (no antialiasing), via Pillow's affine scaling.
    Nearest,
}

impl Interpolation {
    /// timm's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Interpolation::Bicubic => "bicubic",
            Interpolation::Bilinear => "bilinear",
            Interpolation::Nearest => "nearest",
        }
    }

    /// From timm's name ("bicubic", "bilinear", "nearest").
    pub fn parse(name: &str) -> Option<Interpolation> {
        [Interpolation::Bicubic, Interpolation::Bilinear, Interpolation::Nearest].into_iter().find(|i| i.name() == name)
    }

    /// The filter's support at scale 1 (Resample.c's `struct filter`).
    fn support(self) -> f64 {
        match self {
            Interpolation::Bicubic => 2.0,
            Interpolation::Bilinear | Interpolation::Nearest => 1.0,
        }
    }

    /// The filter's weight at `x`, written as Resample.c writes it so that every
    /// intermediate double rounds the same way.
    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Interpolation::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Interpolation::Bilinear | Interpolation::Nearest => (1.0 - x).max(0.0),
        }
    }
}

/// An axis-aligned window of the resized image: columns `x0..x0 + w`, rows `y0..y0 + h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First column.
    pub x0: u32,
    /// First row.
    pub y0: u32,
    /// Columns.
    pub w: u32,
    /// Rows.
    pub h: u32,
}

/// One output pixel's taps: the first input index and the fixed-point weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Taps {
    pub first: usize,
    pub weights: Vec<i32>,
}

/// Resample.c's `precompute_coeffs` + `normalize_coeffs_8bpc` for outputs `first..first + count`
/// of an `in_size` -> `out_size` resize.
pub(crate) fn taps(filter: Interpolation, in_size: u32, out_size: u32, first: u32, count: u32) -> Vec<Taps> {
    // The box edges are C floats: in1 - in0 is `(float)in_size`, exact below 2^24.
    let scale = (in_size as f32) as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let inv_filterscale = 1.0 / filterscale;
    (first..first + count)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) truncates toward zero; a negative start is then clamped to 0.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let w: Vec<f64> =
                (xmin..xmax).map(|x| filter.weight((x as f64 - center + 0.5) * inv_filterscale)).collect();
            let ww: f64 = w.iter().sum();
            let one = (1u32 << PRECISION_BITS) as f64;
            let weights = w
                .iter()
                .map(|&k| if ww != 0.0 { k / ww } else { k })
                .map(|k| if k < 0.0 { (-0.5 + k * one) as i32 } else { (0.5 + k * one) as i32 })
                .collect();
            Taps { first: xmin as usize, weights }
        })
        .collect()
}

/// The fixed-point sums of one output pixel's three channels, each rounded and clipped to
/// uint8 (Resample.c's `clip8` on an accumulator started at one half).
fn convolve(taps: &Taps, sample: impl Fn(usize) -> [u8; 3]) -> [u8; 3] {
    // i64 gives what the C int gives: |taps| sum to under 1.3 * 2^22, times 255 fits in 31 bits.
    let mut ss = [1i64 << (PRECISION_BITS - 1); 3];
    for (i, &k) in taps.weights.iter().enumerate() {
        let px = sample(taps.first + i);
        for c in 0..3 {
            ss[c] += px[c] as i64 * k as i64;
        }
    }
    ss.map(|s| (s >> PRECISION_BITS).clamp(0, 255) as u8)
}

/// `window` of Pillow's `image.resize((out_w, out_h), filter)`.
pub fn resize_window(image: &RgbImage, out_w: u32, out_h: u32, filter: Interpolation, window: Window) -> RgbImage {
    let (in_w, in_h) = image.dimensions();
    if filter == Interpolation::Nearest {
        return nearest_window(image, out_w, out_h, window);
    }
    let need_horizontal = out_w != in_w;
    let need_vertical = out_h != in_h;
    let cols = if need_horizontal { taps(filter, in_w, out_w, window.x0, window.w) } else { vec![] };
    let rows = if need_vertical { taps(filter, in_h, out_h, window.y0, window.h) } else { vec![] };
    // The input rows the vertical pass reads (the window's own rows when it is skipped).
    let (row0, row1) = match (rows.first(), rows.last()) {
        (Some(a), Some(b)) => (a.first, b.first + b.weights.len()),
        _ => (window.y0 as usize, (window.y0 + window.h) as usize),
    };
    let w = window.w as usize;
    // Horizontal pass into uint8 rows row0..row1 of width w.
    let mut mid = vec![[0u8; 3]; (row1 - row0) * w];
    for (r, y) in (row0..row1).enumerate() {
        for (i, out) in mid[r * w..(r + 1) * w].iter_mut().enumerate() {
            *out = if need_horizontal {
                convolve(&cols[i], |x| image.get_pixel(x as u32, y as u32).0)
            } else {
                image.get_pixel(window.x0 + i as u32, y as u32).0
            };
        }
    }
    RgbImage::from_fn(window.w, window.h, |x, y| {
        let (x, y) = (x as usize, y as usize);
        image::Rgb(if need_vertical { convolve(&rows[y], |r| mid[(r - row0) * w + x]) } else { mid[y * w + x] })
    })
}

/// For each output index, the input index Pillow's `ImagingScaleAffine` samples: the centre
/// `(i + 0.5) * scale` accumulated by repeated addition in double (as its loop does), then
/// truncated; None where that falls outside the input (Pillow leaves 0 there).
pub(crate) fn nearest_indices(in_size: u32, out_size: u32, first: u32, count: u32) -> Vec<Option<u32>> {
    let a = (in_size as f32) as f64 / out_size as f64;
    let mut o = a * 0.5;
    let mut found = Vec::with_capacity(count as usize);
    for i in 0..first + count {
        if i >= first {
            let index = if o < 0.0 { -1 } else { o as i64 };
            found.push((0..in_size as i64).contains(&index).then_some(index as u32));
        }
        o += a;
    }
    found
}

fn nearest_window(image: &RgbImage, out_w: u32, out_h: u32, window: Window) -> RgbImage {
    let xs = nearest_indices(image.width(), out_w, window.x0, window.w);
    let ys = nearest_indices(image.height(), out_h, window.y0, window.h);
    RgbImage::from_fn(window.w, window.h, |x, y| match (xs[x as usize], ys[y as usize]) {
        (Some(sx), Some(sy)) => *image.get_pixel(sx, sy),
        _ => image::Rgb([0, 0, 0]),
    })
}
