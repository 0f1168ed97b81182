//! timm's eval transform, reproduced as timm, torchvision and Pillow compute it for a PIL RGB
//! image: `Resize(floor(S / crop_pct))` on the shorter side (torchvision's arithmetic for the
//! longer one, Pillow's resampling — see [`resample`]), `CenterCrop(S)` with torchvision's
//! offsets, `ToTensor` (x / 255) and `Normalize(mean, std)`, all in f32 as torch does it.
//!
//! The goal is the same uint8 pixels as Pillow and the same f32 values as torch; the golden
//! test (tests/preprocess.rs) compares against fixtures made by tools/make_preprocess_fixtures.py.

pub mod resample;

pub use resample::{Interpolation, Window};

use crate::blocks::{Pretrained, IMAGENET_MEAN, IMAGENET_STD};
use crate::budget::MAX_SIDE;
use crate::{ensure, Error, Result, Shape, Tensor};
use image::RgbImage;

/// timm's crop_pct when a model's config gives none (DEFAULT_CROP_PCT).
pub const DEFAULT_CROP_PCT: f64 = 0.875;
/// Longest side the intermediate resize may have: Pillow sizes are C ints, and the
/// nearest-neighbour index walk is linear in it (only the crop is ever allocated).
pub const MAX_RESIZED_SIDE: u64 = 1 << 24;

/// The eval preprocessing of one network: an `S x S` centre crop of the image resized so that
/// its shorter side is `floor(S / crop_pct)`, scaled to [0, 1] and normalised per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// The crop's side S.
    pub size: u32,
    /// The crop's share of the resized shorter side, in (0, 1].
    pub crop_pct: f64,
    /// Pillow's resampling filter for the resize.
    pub interpolation: Interpolation,
    /// Per-channel mean subtracted from [0, 1] pixels.
    pub mean: [f32; 3],
    /// Per-channel standard deviation the pixels are divided by.
    pub std: [f32; 3],
}

/// `v` as the Python float its decimal text denotes: timm's configs hold Python floats, so
/// 0.9 must be the double 0.9, not the widened f32 0.899999976.
fn python_float(v: f32) -> f64 {
    v.to_string().parse().expect("an f32 prints as a number")
}

impl Preprocess {
    /// timm's defaults (bicubic, crop_pct 0.875, ImageNet mean and std) at size `size`, as
    /// `resolve_data_config` gives them for a model without a pretrained config.
    pub fn imagenet(size: u32) -> Preprocess {
        Preprocess {
            size,
            crop_pct: DEFAULT_CROP_PCT,
            interpolation: Interpolation::Bicubic,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// The preprocessing of a pretrained timm network.
    pub fn from_pretrained(p: &Pretrained) -> Result<Preprocess> {
        let [c, h, w] = p.input_size;
        ensure!(c == 3, "preprocess", "the network takes {c} channels; photos give 3");
        ensure!(h == w, "preprocess", "the network takes {h} x {w} inputs; only square crops are supported");
        let interpolation = Interpolation::parse(p.interpolation).ok_or_else(|| {
            Error::invalid(
                "preprocess",
                format!("interpolation '{}' is not bicubic, bilinear or nearest", p.interpolation),
            )
        })?;
        let size = u32::try_from(h).map_err(|_| Error::invalid("preprocess", format!("size {h} is too large")))?;
        let pre = Preprocess { size, crop_pct: python_float(p.crop_pct), interpolation, mean: p.mean, std: p.std };
        pre.validate()?;
        Ok(pre)
    }

    /// Checks the configuration: a size in 1..=MAX_SIDE, crop_pct in (0, 1], finite means and
    /// positive finite standard deviations.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            (1..=MAX_SIDE).contains(&self.size),
            "preprocess",
            "image size {} is outside 1..={MAX_SIDE}",
            self.size
        );
        ensure!(
            self.crop_pct > 0.0 && self.crop_pct <= 1.0,
            "preprocess",
            "crop_pct {} is outside (0, 1]",
            self.crop_pct
        );
        ensure!(self.mean.iter().all(|m| m.is_finite()), "preprocess", "mean {:?} is not finite", self.mean);
        ensure!(
            self.std.iter().all(|s| s.is_finite() && *s > 0.0),
            "preprocess",
            "std {:?} must be positive and finite",
            self.std
        );
        Ok(())
    }

    /// timm's `scale_size`: `floor(S / crop_pct)`, the resized shorter side.
    pub fn scale_size(&self) -> u64 {
        (self.size as f64 / self.crop_pct).floor() as u64
    }

    /// The size (width, height) torchvision's `Resize(scale_size)` gives a `w x h` image: the
    /// shorter side becomes scale_size, the longer `int(scale_size * long / short)`.
    pub fn resized_size(&self, w: u32, h: u32) -> Result<(u32, u32)> {
        ensure!(w > 0 && h > 0, "preprocess", "the image is {w} x {h}");
        let (short, long) = (w.min(h) as u64, w.max(h) as u64);
        let new_short = self.scale_size();
        // Python's int * int / int: an exact product, a correctly rounded division, truncation.
        let new_long = ((new_short * long) as f64 / short as f64) as u64;
        ensure!(
            new_long <= MAX_RESIZED_SIDE,
            "preprocess",
            "a {w} x {h} image would be resized to {new_short} x {new_long}, over {MAX_RESIZED_SIDE} pixels"
        );
        let (new_short, new_long) = (new_short as u32, new_long as u32);
        Ok(if w <= h { (new_short, new_long) } else { (new_long, new_short) })
    }

    /// The centre crop of a `w x h` resized image: torchvision's offsets
    /// `int(round((H - S) / 2.0))`, Python's round halving to even.
    pub fn crop_window(&self, w: u32, h: u32) -> Result<Window> {
        let s = self.size;
        // torchvision would pad here; with crop_pct <= 1 the resized image is never smaller.
        ensure!(w >= s && h >= s, "preprocess", "the resized image {w} x {h} is smaller than the {s} x {s} crop");
        let offset = |side: u32| ((side - s) as f64 / 2.0).round_ties_even() as u32;
        Ok(Window { x0: offset(w), y0: offset(h), w: s, h: s })
    }

    /// The resized and cropped uint8 pixels, S x S (what `CenterCrop` hands `ToTensor`).
    pub fn crop(&self, image: &RgbImage) -> Result<RgbImage> {
        self.validate()?;
        let (w, h) = image.dimensions();
        let (rw, rh) = self.resized_size(w, h)?;
        let window = self.crop_window(rw, rh)?;
        // torchvision returns the image itself when the size does not change (Pillow would copy).
        if (rw, rh) == (w, h) {
            return Ok(image::imageops::crop_imm(image, window.x0, window.y0, window.w, window.h).to_image());
        }
        Ok(resample::resize_window(image, rw, rh, self.interpolation, window))
    }

    /// `ToTensor` and `Normalize` of a crop: [3, H, W] with `(v / 255 - mean) / std` in f32.
    pub fn normalise(&self, crop: &RgbImage) -> Tensor {
        let (w, h) = (crop.width() as usize, crop.height() as usize);
        let plane = w * h;
        let mut data = vec![0.0f32; 3 * plane];
        for (i, p) in crop.pixels().enumerate() {
            for c in 0..3 {
                // Two f32 roundings, as torch's `div(255)` then `sub_(mean).div_(std)`.
                data[c * plane + i] = (p.0[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        Tensor::new(Shape::new(&[3, h, w]).expect("a crop has a size"), data).expect("sized to fit")
    }

    /// The network input for `image`: [3, S, S].
    pub fn apply(&self, image: &RgbImage) -> Result<Tensor> {
        Ok(self.normalise(&self.crop(image)?))
    }
}

#[cfg(test)]
mod tests;
