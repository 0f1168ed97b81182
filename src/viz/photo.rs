//! Photos in and pictures out: decoding under explicit limits (an untrusted file cannot make
//! glimpse allocate more than [`DECODE_BYTES`]), conversion to RGB8, the model's normalised
//! input, the display copy the overlays are drawn on, and PNG encoding.

use crate::budget::{DECODE_BYTES, MAX_SIDE};
use crate::models::NetworkSpec;
use crate::{Error, Result, Shape, Tensor};
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use std::path::Path;

/// Longest side of the pictures drawn: larger photos are shrunk (the overlay of an 8192-pixel
/// photo would exceed a GPU binding and nobody views it at that size), smaller ones enlarged
/// to [`DISPLAY_MIN`] so that a 32-pixel input still gives a readable picture.
pub const DISPLAY_MAX: u32 = 1024;
/// Shortest longest side of the pictures drawn.
pub const DISPLAY_MIN: u32 = 256;

fn file_error(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::File { path: path.display().to_string(), msg: msg.to_string() }
}

/// Decodes a PNG or JPEG (told by its content, not its name) as 8-bit RGB, upright: the EXIF
/// orientation is applied as PIL's `ImageOps.exif_transpose` does, gray is replicated, 16-bit
/// is rounded to 8, alpha is dropped (as PIL's `convert("RGB")` does).
pub fn load(path: &Path) -> Result<RgbImage> {
    // The format comes from the content only: a mislabeled file decodes by what it is, and a
    // file that is neither PNG nor JPEG is named as such instead of failing in a decoder.
    let size = std::fs::metadata(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?.len();
    if size > DECODE_BYTES {
        return Err(file_error(
            path,
            format!("{size} bytes: glimpse reads pictures of at most {} MiB", DECODE_BYTES >> 20),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    decode(&bytes).map_err(|msg| file_error(path, msg))
}

/// [`load`] for a file's bytes; the error says what is wrong (the caller adds the path).
pub fn decode(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    let mut reader =
        ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| format!("cannot read: {e}"))?;
    match reader.format() {
        None => return Err("not a PNG or JPEG image".into()),
        // The JPEG decoder fills a truncated scan with grey and succeeds; PIL refuses such files.
        Some(image::ImageFormat::Jpeg) if jpeg_is_truncated(bytes) => {
            return Err("truncated JPEG: the image data ends before its end-of-image marker".into())
        }
        Some(_) => {}
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(DECODE_BYTES);
    reader.limits(limits.clone());
    let decode_error = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => {
            format!("{e} (glimpse decodes at most {MAX_SIDE} x {MAX_SIDE} pixels and {} MiB)", DECODE_BYTES >> 20)
        }
        e => format!("cannot decode: {e}"),
    };
    // `ImageReader::decode` would drop the orientation: decode through the decoder instead,
    // charging the pixel buffer to the allocation limit as `decode` does.
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let orientation = decoder.orientation().map_err(decode_error)?;
    limits.reserve(decoder.total_bytes()).map_err(decode_error)?;
    decoder.set_limits(limits).map_err(decode_error)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    Ok(image.to_rgb8())
}

/// Whether a JPEG's bytes lack the end-of-image marker (FF D9) after its last scan: no EOI at
/// all, or a start-of-scan (FF DA) after the last EOI (which then belonged to an EXIF thumbnail).
/// Bytes after a complete image (padding, appended data without a scan) are accepted, as PIL does.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xD9), last(0xDA)) {
        (None, _) => true,
        (Some(eoi), Some(sos)) => sos > eoi,
        (Some(_), None) => false,
    }
}

/// The network's input for `photo`: resized (bilinear, as a CPU preprocessing step) to the
/// spec's H x W, scaled to [0, 1], normalised with its mean and std, as [C, H, W]; one-channel
/// networks get the luma (PIL's "L" weights).
pub fn model_input(photo: &RgbImage, spec: &NetworkSpec) -> Result<Tensor> {
    let [c, h, w] = spec.input;
    if c != 1 && c != 3 {
        return Err(Error::invalid(
            spec.name.clone(),
            format!("photos make 1- or 3-channel inputs; the network takes {c} channels"),
        ));
    }
    let (h32, w32) = (u32::try_from(h), u32::try_from(w));
    let (Ok(h32), Ok(w32)) = (h32, w32) else {
        return Err(Error::invalid(spec.name.clone(), format!("input {h} x {w} is too large")));
    };
    let resized = image::imageops::resize(photo, w32, h32, FilterType::Triangle);
    let mut data = vec![0.0f32; c * h * w];
    for (i, p) in resized.pixels().enumerate() {
        let rgb = p.0.map(|v| v as f32 / 255.0);
        if c == 1 {
            data[i] = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
        } else {
            for ch in 0..3 {
                data[ch * h * w + i] = rgb[ch];
            }
        }
    }
    for ch in 0..c {
        let mean = spec.mean.get(ch).copied().unwrap_or(0.0);
        let std = spec.std.get(ch).copied().unwrap_or(1.0);
        data[ch * h * w..(ch + 1) * h * w].iter_mut().for_each(|v| *v = (*v - mean) / std);
    }
    Tensor::new(Shape::new(&[c, h, w])?, data)
}

/// The copy of `photo` the pictures are drawn on: the longest side scaled into
/// [`DISPLAY_MIN`, `DISPLAY_MAX`], the aspect ratio kept.
pub fn display(photo: &RgbImage) -> RgbImage {
    let longest = photo.width().max(photo.height());
    let target = longest.clamp(DISPLAY_MIN, DISPLAY_MAX);
    if target == longest {
        return photo.clone();
    }
    let scale = target as f64 / longest as f64;
    let size = |v: u32| ((v as f64 * scale).round() as u32).max(1);
    image::imageops::resize(photo, size(photo.width()), size(photo.height()), FilterType::Triangle)
}

/// An RGB8 picture as [3, H, W] in [0, 1].
pub fn to_tensor(image: &RgbImage) -> Tensor {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut data = vec![0.0f32; 3 * h * w];
    for (i, p) in image.pixels().enumerate() {
        for ch in 0..3 {
            data[ch * h * w + i] = p.0[ch] as f32 / 255.0;
        }
    }
    Tensor::new(Shape::new(&[3, h, w]).expect("an image has a size"), data).expect("sized to fit")
}

/// A [3, H, W] tensor in [0, 1] (clamped) as an RGB8 picture.
pub fn from_tensor(t: &Tensor) -> RgbImage {
    let [_, h, w] = t.shape().dims() else { panic!("from_tensor takes [3, H, W], got {}", t.shape()) };
    let plane = h * w;
    let d = t.data();
    RgbImage::from_fn(*w as u32, *h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Rgb([0, 1, 2].map(|c| (d[c * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}

/// `image` encoded as PNG.
pub fn png(image: &RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    // Fast compression: the default level took most of the time spent writing a picture.
    let encoder = PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, PngFilter::Adaptive);
    image.write_with_encoder(encoder).map_err(|e| {
        Error::invalid("png", format!("cannot encode a {} x {} picture: {e}", image.width(), image.height()))
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_truncated_jpeg_is_refused_and_a_complete_one_loads() {
        let full = include_bytes!("../../tests/fixtures/preprocess/exif6.jpg");
        assert!(!jpeg_is_truncated(full));
        let padded: Vec<u8> = full.iter().copied().chain([0u8; 16]).collect();
        assert!(!jpeg_is_truncated(&padded), "padding after the end-of-image marker is fine");
        for cut in [full.len() / 3, full.len() * 2 / 3, full.len() - 2] {
            assert!(jpeg_is_truncated(&full[..cut]), "cut at {cut} of {}", full.len());
        }
        let dir = std::env::temp_dir().join(format!("glimpse-photo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("half.jpg");
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("half.jpg") && e.contains("truncated JPEG"), "{e}");
        std::fs::write(&path, full).unwrap();
        assert!(load(&path).is_ok());
    }

    use super::*;

    fn spec(input: [usize; 3], mean: Vec<f32>, std: Vec<f32>) -> NetworkSpec {
        NetworkSpec { name: "t".into(), input, layers: vec![], labels: vec![], mean, std }
    }

    #[test]
    fn model_input_is_resized_and_normalised() {
        let photo = RgbImage::from_pixel(5, 3, image::Rgb([255, 0, 51]));
        let x = model_input(&photo, &spec([3, 4, 2], vec![0.5; 3], vec![0.5; 3])).unwrap();
        assert_eq!(x.shape().dims(), &[3, 4, 2]);
        let at = |c: usize| x.data()[c * 8];
        assert!((at(0) - 1.0).abs() < 1e-6 && (at(1) + 1.0).abs() < 1e-6 && (at(2) + 0.6).abs() < 1e-6);
        let gray = model_input(&photo, &spec([1, 2, 2], vec![], vec![])).unwrap();
        assert!((gray.data()[0] - (0.299 + 0.114 * 0.2)).abs() < 1e-6);
        let err = model_input(&photo, &spec([4, 2, 2], vec![], vec![])).unwrap_err().to_string();
        assert!(err.contains("takes 4 channels"), "{err}");
    }

    #[test]
    fn display_size_is_bounded_and_tensors_round_trip() {
        assert_eq!(display(&RgbImage::new(32, 16)).dimensions(), (256, 128));
        assert_eq!(display(&RgbImage::new(4096, 100)).dimensions(), (1024, 25));
        assert_eq!(display(&RgbImage::new(300, 500)).dimensions(), (300, 500));
        let img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 80, y as u8 * 200, 7]));
        assert_eq!(from_tensor(&to_tensor(&img)), img);
    }
}
