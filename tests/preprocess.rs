//! timm's eval transform against timm itself: every image in tests/fixtures/preprocess/ under
//! every config in expected.safetensors' `configs` (written by
//! tools/make_preprocess_fixtures.py from timm 1.0.31, torchvision 0.29.2, Pillow 13.0.0).
//!
//! Two comparisons per image and config:
//! - the resize, crop and normalisation alone, fed the reference's own RGB pixels
//!   (`<stem>.rgb`, after PIL's exif_transpose and convert('RGB')): must be exact (1e-6 allows
//!   only f32 noise, a uint8 step after normalisation is at least 1 / 255 / std > 0.017);
//! - the whole path from the file through glimpse's decoder (photo::load: EXIF orientation,
//!   alpha dropped, gray replicated): exact for PNG. JPEG decoders do not agree bit for bit:
//!   glimpse's (zune-jpeg, through the image crate) and Pillow's (libjpeg-turbo) round the
//!   IDCT, the chroma upsampling and the YCbCr -> RGB conversion differently. Measured on
//!   this photo at quality 90: 4:2:0 (Pillow's default) up to 4 levels (10136 samples off by
//!   1, 6613 by 2, 26 by 3, 1 by 4 of 67989), 4:4:4 up to 2, grayscale up to 1. The test
//!   bounds the decoded difference and what it becomes after the resize.

use glimpse::preprocess::{Interpolation, Preprocess};
use glimpse::viz::photo;
use image::RgbImage;
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};

/// Largest difference of a normalised value allowed where the pixels are identical.
const EXACT: f32 = 1e-6;
/// Largest per-pixel difference (uint8 levels) allowed between glimpse's JPEG decoding and
/// libjpeg-turbo's (see the module comment for the measurements).
const JPEG_LEVELS: u8 = 4;
/// How much a resize may widen a pixel difference: bicubic's negative lobes make the taps'
/// absolute sum exceed 1 (about 1.2 over two passes), plus the uint8 rounding.
const RESIZE_GAIN: f32 = 1.5;

#[derive(serde::Deserialize)]
struct Config {
    id: String,
    size: u32,
    crop_pct: f64,
    interpolation: String,
    mean: [f64; 3],
    std: [f64; 3],
}

impl Config {
    fn preprocess(&self) -> Preprocess {
        Preprocess {
            size: self.size,
            crop_pct: self.crop_pct,
            interpolation: Interpolation::parse(&self.interpolation).expect("a known interpolation"),
            // torch.tensor(mean) rounds the Python floats to f32.
            mean: self.mean.map(|v| v as f32),
            std: self.std.map(|v| v as f32),
        }
    }
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preprocess")
}

fn images() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/fixtures/preprocess should exist")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no images in {}", dir().display());
    found
}

/// (max |a - b|, elements differing by more than `EXACT`).
fn diff(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0.0f32, 0), |(m, n), (x, y)| {
        let d = (x - y).abs();
        (m.max(d), n + usize::from(d > EXACT))
    })
}

/// (max level difference, pixels differing) between two images of the same size.
fn pixel_diff(a: &RgbImage, b: &RgbImage) -> (u8, usize) {
    assert_eq!(a.dimensions(), b.dimensions());
    a.pixels().zip(b.pixels()).fold((0, 0), |(m, n), (p, q)| {
        let d = (0..3).map(|c| p.0[c].abs_diff(q.0[c])).max().expect("three channels");
        (m.max(d), n + usize::from(d > 0))
    })
}

#[test]
fn preprocessing_should_match_timm() {
    let bytes = std::fs::read(dir().join("expected.safetensors")).expect("expected.safetensors");
    let st = SafeTensors::deserialize(&bytes).expect("a valid safetensors file");
    let (_, header) = SafeTensors::read_metadata(&bytes).expect("a header");
    let meta = header.metadata().as_ref().expect("metadata");
    let configs: Vec<Config> = serde_json::from_str(&meta["configs"]).expect("configs as JSON");
    assert!(!configs.is_empty());
    let tensor = |name: &str| st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));

    let mut failures = Vec::new();
    let mut checked = 0;
    for path in images() {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let rgb = tensor(&format!("{stem}.rgb"));
        let &[h, w, 3] = rgb.shape() else { panic!("{stem}.rgb is {:?}", rgb.shape()) };
        let reference = RgbImage::from_raw(w as u32, h as u32, rgb.data().to_vec()).expect("sized");
        let decoded = photo::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded.dimensions(), reference.dimensions(), "{stem}: size after EXIF orientation");
        let (levels, pixels) = pixel_diff(&decoded, &reference);
        let jpeg = path.extension().is_some_and(|e| e == "jpg");
        eprintln!("{stem}: decoded {w} x {h}, {pixels} pixels differ from Pillow's (max {levels} levels)");
        if levels > if jpeg { JPEG_LEVELS } else { 0 } {
            failures.push(format!("{stem}: decoding differs from Pillow's by {levels} levels"));
        }
        for cfg in &configs {
            let pre = cfg.preprocess();
            let want = tensor(&format!("{stem}.{}", cfg.id));
            let want: Vec<f32> = bytemuck::pod_collect_to_vec(want.data());
            let from_reference = pre.apply(&reference).expect("preprocess the reference pixels");
            let from_file = pre.apply(&decoded).expect("preprocess the decoded pixels");
            let (max, count) = diff(from_reference.data(), &want);
            let (max_file, count_file) = diff(from_file.data(), &want);
            eprintln!(
                "  {:<14} reference pixels: max |diff| {max:.2e}, {count} of {} differ; \
                 decoded file: max |diff| {max_file:.2e}, {count_file} differ",
                cfg.id,
                want.len()
            );
            if max > EXACT {
                failures.push(format!("{stem}.{}: resize/crop/normalise off by {max:e} ({count} values)", cfg.id));
            }
            // A decoded difference of d levels moves a normalised value by d / 255 / std.
            let min_std = pre.std.iter().fold(f32::INFINITY, |m, &s| m.min(s));
            let bound = if jpeg { JPEG_LEVELS as f32 * RESIZE_GAIN / 255.0 / min_std } else { EXACT };
            if max_file > bound {
                failures.push(format!(
                    "{stem}.{}: from the file off by {max_file:e} ({count_file} values), over {bound:e}",
                    cfg.id
                ));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{checked} image x config pairs match timm");
}
