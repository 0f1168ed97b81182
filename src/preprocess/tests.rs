//! The coefficient maths and the resize on tiny images, against Pillow 13.0.0. The expected
//! pixels come from (pattern `(37 * (x + w * y) + 11 * c) % 256`):
//!
//! ```python
//! from PIL import Image; import numpy as np
//! def pattern(w, h):
//!     px = [[(37 * (x + w * y) + 11 * c) % 256 for x in range(w) for c in range(3)] for y in range(h)]
//!     return Image.fromarray(np.array(px, dtype=np.uint8).reshape(h, w, 3), "RGB")
//! for (w, h), size, f in [((5, 3), (3, 2), Image.BICUBIC), ...]:
//!     print(np.asarray(pattern(w, h).resize(size, f)).reshape(-1).tolist())
//! ```

use super::resample::{nearest_indices, resize_window, taps, Taps, PRECISION_BITS};
use super::*;

fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| image::Rgb([0, 1, 2].map(|c| ((37 * (x + w * y) + 11 * c) % 256) as u8)))
}

fn resize(image: &RgbImage, w: u32, h: u32, filter: Interpolation) -> Vec<u8> {
    resize_window(image, w, h, filter, Window { x0: 0, y0: 0, w, h }).into_raw()
}

#[test]
fn bilinear_downscale_taps_are_pillows() {
    // 4 -> 2: scale 2 widens the triangle to support 2; centre 1.0 covers inputs 0..3 with
    // weights 0.75, 0.75, 0.25, normalised to 3/7, 3/7, 1/7 and rounded to 22 fraction bits.
    let t = taps(Interpolation::Bilinear, 4, 2, 0, 2);
    assert_eq!(t[0], Taps { first: 0, weights: vec![1797559, 1797559, 599186] });
    assert_eq!(t[1], Taps { first: 1, weights: vec![599186, 1797559, 1797559] });
}

#[test]
fn taps_sum_to_one_in_fixed_point() {
    let one = 1i64 << PRECISION_BITS;
    for filter in [Interpolation::Bicubic, Interpolation::Bilinear] {
        for (n_in, n_out) in [(7, 3), (3, 7), (224, 256), (640, 224), (1, 5), (5, 1)] {
            for t in taps(filter, n_in, n_out, 0, n_out) {
                let sum: i64 = t.weights.iter().map(|&k| k as i64).sum();
                // Each tap is rounded on its own: the sum is within half a unit per tap.
                assert!((sum - one).abs() <= t.weights.len() as i64, "{filter:?} {n_in}->{n_out}: {sum}");
                assert!(t.first + t.weights.len() <= n_in as usize);
            }
        }
    }
}

#[test]
fn upscale_and_downscale_match_pillow() {
    let small = pattern(5, 3);
    let cases: [(u32, u32, Interpolation, &[u8]); 5] = [
        (
            3,
            2,
            Interpolation::Bicubic,
            &[84, 95, 106, 62, 73, 84, 106, 117, 128, 162, 173, 184, 148, 159, 170, 81, 92, 103],
        ),
        (
            7,
            4,
            Interpolation::Bilinear,
            &[
                0, 11, 22, 21, 32, 43, 48, 59, 70, 74, 85, 96, 100, 111, 122, 127, 138, 149, 148, 159, 170, 116, 127,
                138, 137, 148, 159, 117, 128, 139, 30, 41, 52, 56, 67, 78, 83, 94, 105, 104, 115, 126, 158, 169, 180,
                179, 190, 201, 160, 171, 182, 72, 83, 94, 98, 109, 120, 84, 95, 106, 50, 61, 72, 114, 125, 136, 135,
                146, 157, 162, 173, 184, 188, 199, 210, 214, 225, 236, 131, 142, 153, 6, 17, 28,
            ],
        ),
        (
            2,
            5,
            Interpolation::Nearest,
            &[
                37, 48, 59, 111, 122, 133, 37, 48, 59, 111, 122, 133, 222, 233, 244, 40, 51, 62, 151, 162, 173, 225,
                236, 247, 151, 162, 173, 225, 236, 247,
            ],
        ),
        // Width grows and height stays: only the horizontal pass runs.
        (
            8,
            3,
            Interpolation::Bicubic,
            &[
                0, 8, 19, 13, 24, 35, 39, 50, 61, 62, 73, 84, 86, 97, 108, 109, 120, 131, 135, 146, 157, 151, 162, 173,
                182, 193, 204, 211, 222, 233, 215, 226, 237, 61, 72, 83, 0, 7, 18, 37, 48, 59, 64, 75, 86, 80, 91, 102,
                111, 122, 133, 127, 138, 149, 153, 164, 175, 176, 187, 198, 208, 219, 230, 230, 241, 252, 94, 105, 116,
                0, 1, 12,
            ],
        ),
        (2, 2, Interpolation::Bilinear, &[80, 91, 102, 89, 100, 111, 151, 162, 173, 110, 121, 132]),
    ];
    for (w, h, filter, want) in cases {
        assert_eq!(resize(&small, w, h, filter), want, "5x3 -> {w}x{h} {filter:?}");
    }
    // 13 x 9 -> 4 x 3: the support widened by the downscale factor (antialiasing).
    let big = pattern(13, 9);
    let cases: [(Interpolation, &[u8]); 3] = [
        (
            Interpolation::Bicubic,
            &[
                93, 104, 106, 123, 137, 147, 123, 134, 118, 100, 113, 117, 167, 177, 157, 112, 97, 88, 153, 158, 150,
                126, 92, 92, 94, 105, 118, 167, 149, 160, 86, 93, 107, 165, 167, 179,
            ],
        ),
        (
            Interpolation::Bilinear,
            &[
                98, 109, 112, 123, 134, 142, 121, 132, 120, 105, 116, 120, 159, 167, 151, 119, 107, 98, 147, 149, 142,
                126, 97, 98, 100, 110, 121, 157, 143, 154, 96, 103, 114, 160, 160, 171,
            ],
        ),
        (
            Interpolation::Nearest,
            &[
                6, 17, 28, 117, 128, 139, 9, 20, 31, 120, 131, 142, 169, 180, 191, 24, 35, 46, 172, 183, 194, 27, 38,
                49, 76, 87, 98, 187, 198, 209, 79, 90, 101, 190, 201, 212,
            ],
        ),
    ];
    for (filter, want) in cases {
        assert_eq!(resize(&big, 4, 3, filter), want, "13x9 -> 4x3 {filter:?}");
    }
}

#[test]
fn a_window_is_the_crop_of_the_full_resize() {
    let image = pattern(23, 17);
    for filter in [Interpolation::Bicubic, Interpolation::Bilinear, Interpolation::Nearest] {
        for (w, h) in [(9, 7), (40, 30), (23, 11), (12, 17)] {
            let full = resize_window(&image, w, h, filter, Window { x0: 0, y0: 0, w, h });
            let window = Window { x0: w / 3, y0: h / 4, w: w / 2, h: h / 2 };
            let part = resize_window(&image, w, h, filter, window);
            let want = image::imageops::crop_imm(&full, window.x0, window.y0, window.w, window.h).to_image();
            assert_eq!(part, want, "{filter:?} {w}x{h}");
        }
    }
}

#[test]
fn nearest_walks_the_centres() {
    // 3 -> 7: centres (i + 0.5) * 3/7 = 0.21, 0.64, 1.07, 1.5, 1.93, 2.36, 2.79.
    let all = nearest_indices(3, 7, 0, 7);
    assert_eq!(all, [0, 0, 1, 1, 1, 2, 2].map(Some));
    assert_eq!(nearest_indices(3, 7, 2, 3), all[2..5]);
}

#[test]
fn sizes_and_offsets_follow_torchvision() {
    let p = Preprocess::imagenet(224);
    assert_eq!(p.scale_size(), 256);
    assert_eq!(p.resized_size(640, 480).unwrap(), (341, 256));
    assert_eq!(p.resized_size(480, 640).unwrap(), (256, 341));
    // 0.9 as timm's Python float, not the widened f32: floor(224 / 0.9) = 248.
    let pretrained = Pretrained {
        input_size: [3, 224, 224],
        crop_pct: 0.9,
        interpolation: "bilinear",
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        num_classes: 1000,
    };
    let p9 = Preprocess::from_pretrained(&pretrained).unwrap();
    assert_eq!((p9.crop_pct, p9.scale_size(), p9.interpolation), (0.9, 248, Interpolation::Bilinear));
    // (257 - 224) / 2 = 16.5 rounds to 16, (259 - 224) / 2 = 17.5 to 18: half to even.
    assert_eq!(p.crop_window(257, 259).unwrap(), Window { x0: 16, y0: 18, w: 224, h: 224 });
}

#[test]
fn apply_normalises_in_f32() {
    let p = Preprocess { size: 2, crop_pct: 1.0, mean: [0.5; 3], std: [0.25; 3], ..Preprocess::imagenet(2) };
    let x = p.apply(&RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 51]))).unwrap();
    assert_eq!(x.shape().dims(), &[3, 2, 2]);
    assert_eq!([x.data()[0], x.data()[4], x.data()[8]], [2.0, -2.0, (0.2f32 - 0.5) / 0.25]);
    // A 1 x 9 strip resized to 2 x 18 and cropped at rows 8..10.
    assert_eq!(p.apply(&RgbImage::new(1, 9)).unwrap().shape().dims(), &[3, 2, 2]);
}

#[test]
fn bad_configurations_are_errors() {
    let image = RgbImage::new(8, 8);
    let base = Preprocess::imagenet(4);
    let bad = [
        (Preprocess { size: 0, ..base.clone() }, "image size 0"),
        (Preprocess { size: MAX_SIDE + 1, ..base.clone() }, "outside 1..="),
        (Preprocess { crop_pct: 0.0, ..base.clone() }, "crop_pct 0 is outside"),
        (Preprocess { crop_pct: 1.5, ..base.clone() }, "crop_pct 1.5"),
        (Preprocess { crop_pct: f64::NAN, ..base.clone() }, "crop_pct NaN"),
        (Preprocess { std: [1.0, 0.0, 1.0], ..base.clone() }, "std"),
        (Preprocess { std: [1.0, -1.0, 1.0], ..base.clone() }, "std"),
        (Preprocess { mean: [f32::INFINITY, 0.0, 0.0], ..base.clone() }, "mean"),
        (Preprocess { crop_pct: 1e-9, ..base.clone() }, "over 16777216 pixels"),
    ];
    for (p, want) in bad {
        let err = p.apply(&image).unwrap_err().to_string();
        assert!(err.contains(want), "{p:?}: {err}");
    }
    assert!(base.crop_window(3, 8).unwrap_err().to_string().contains("smaller than the 4 x 4 crop"));
    let rect = Pretrained {
        input_size: [3, 224, 192],
        crop_pct: 0.9,
        interpolation: "bicubic",
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        num_classes: 1000,
    };
    assert!(Preprocess::from_pretrained(&rect).unwrap_err().to_string().contains("square"));
    let lanczos = Pretrained { input_size: [3, 224, 224], interpolation: "lanczos", ..rect };
    assert!(Preprocess::from_pretrained(&lanczos).unwrap_err().to_string().contains("lanczos"));
}
