//! `glimpse map` end to end on a small model with random weights (CBAM BasicBlock + SKConv),
//! bad images, bad arguments, and the Non-local attention path on synthetic maps.

mod common;

use glimpse::graph::Tensors;
use glimpse::models::NETWORK_KEY;
use glimpse::ops::random_input;
use glimpse::tensorfile::TensorFile;
use glimpse::viz::figures::{figures, LayerInfo};
use glimpse::viz::render::{write_image, Picture, Renderer};
use glimpse::viz::{Colormap, Normalize, Style};
use glimpse::Tensor;
use image::{Rgb, RgbImage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// 3 x 32 x 32 -> stem (32 channels, stride 2) -> BasicBlock (the fixture's weights) ->
/// SKConv (M 2, random) -> pool -> fc (4 classes).
fn model_file(rng: &mut fastrand::Rng) -> TensorFile {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let block = TensorFile::read(&dir.join("BasicBlock_s1.weights.safetensors")).unwrap();
    let mut file = TensorFile::default();
    for (name, t) in block.tensors {
        file.tensors.insert(format!("layer1.0.{name}"), t);
    }
    file.tensors.insert("stem.conv.weight".into(), random_input(rng, &[32, 3, 3, 3], -0.3, 0.3));
    common::batchnorm(&mut file, rng, "stem.bn", 32);
    for (i, k) in [3, 5].into_iter().enumerate() {
        file.tensors.insert(format!("layer2.0.convs.{i}.0.weight"), random_input(rng, &[32, 32, k, k], -0.05, 0.05));
        file.tensors.insert(format!("layer2.0.convs.{i}.0.bias"), random_input(rng, &[32], -0.1, 0.1));
        common::batchnorm(&mut file, rng, &format!("layer2.0.convs.{i}.1"), 32);
        file.tensors.insert(format!("layer2.0.fcs.{i}.weight"), random_input(rng, &[32, 32], -0.5, 0.5));
        file.tensors.insert(format!("layer2.0.fcs.{i}.bias"), random_input(rng, &[32], -0.1, 0.1));
    }
    file.tensors.insert("layer2.0.fc.weight".into(), random_input(rng, &[32, 32], -0.3, 0.3));
    file.tensors.insert("layer2.0.fc.bias".into(), random_input(rng, &[32], -0.1, 0.1));
    file.tensors.insert("fc.weight".into(), random_input(rng, &[4, 32], -0.5, 0.5));
    file.tensors.insert("fc.bias".into(), random_input(rng, &[4], -0.1, 0.1));
    let spec = r#"{"name": "tiny", "input": [3, 32, 32],
        "layers": [{"arch": "ConvBnAct", "prefix": "stem.", "args": ["stride=2"]},
                   {"arch": "BasicBlock", "prefix": "layer1.0."}, {"arch": "SKConv", "prefix": "layer2.0."},
                   {"arch": "GlobalAvgPool"}, {"arch": "Linear", "prefix": "fc."}],
        "labels": ["circle", "square", "stripes", "noise"], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}"#;
    file.metadata.insert(NETWORK_KEY.into(), spec.into());
    file
}

/// A fresh scratch folder for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-viz-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_model(dir: &Path) -> PathBuf {
    let file = model_file(&mut common::rng());
    let path = dir.join("tiny.safetensors");
    let named: Vec<(&str, &Tensor)> = file.tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    TensorFile::write(&path, &named, &file.metadata).unwrap();
    path
}

/// A photo with a bright disc on a gradient, `w` x `h`.
fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f64 - w as f64 * 0.6, y as f64 - h as f64 * 0.4);
        let disc = (dx * dx + dy * dy).sqrt() < w.min(h) as f64 / 4.0;
        if disc {
            Rgb([250, 220, 40])
        } else {
            Rgb([(x * 255 / w) as u8, 60, (y * 255 / h) as u8])
        }
    })
}

/// The device flag: the GPU when the tests have one (the reason is printed otherwise).
fn device() -> &'static str {
    if common::gpu().is_some() {
        "gpu"
    } else {
        "cpu"
    }
}

fn glimpse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("glimpse runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_fails_with(o: &Output, want: &str) {
    let err = text(&o.stderr);
    assert!(!o.status.success(), "should fail: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains("error:") && err.contains(want), "stderr should mention '{want}': {err}");
}

fn map(model: &Path, inputs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let (model, out) = (model.display().to_string(), out.display().to_string());
    let inputs: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["map", "--model", &model, "-o", &out, "--device", device()];
    args.extend(inputs.iter().map(String::as_str));
    args.extend(extra);
    glimpse(&args)
}

#[test]
fn map_writes_every_picture_and_the_index() {
    let dir = scratch("all");
    let model = write_model(&dir);
    let photos = dir.join("photos");
    std::fs::create_dir_all(photos.join("more")).unwrap();
    photo(64, 48).save(photos.join("wide.png")).unwrap();
    photo(40, 90).save(photos.join("more/tall.jpg")).unwrap();
    image::DynamicImage::ImageRgb8(photo(33, 33)).to_luma16().save(photos.join("gray16.png")).unwrap();
    image::DynamicImage::ImageRgb8(photo(20, 17)).to_rgba8().save(photos.join("alpha.png")).unwrap();
    std::fs::write(photos.join("notes.txt"), "not an image").unwrap();
    let out = dir.join("out");
    let o = map(&model, &[&photos], &out, &["--batch", "3", "--verbose"]);
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{}{stdout}", text(&o.stderr));
    assert!(stdout.contains("mapped 4 image(s), skipped 0") && stdout.contains("images/s"), "{stdout}");
    assert!(stdout.contains("network") && stdout.contains("render"), "{stdout}");
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    for name in ["alpha", "gray16", "tall", "wide"] {
        for file in
            ["layer1.0.spatial.png", "layer1.0.channel.svg", "layer2.0.branch.svg", "sheet.png", "maps.safetensors"]
        {
            let rel = format!("{name}/{file}");
            assert!(out.join(&rel).is_file(), "{rel} missing");
            assert!(index.contains(&format!("\"{rel}\"")), "index.html does not link {rel}");
        }
        let maps = TensorFile::read(&out.join(name).join("maps.safetensors")).unwrap();
        assert_eq!(maps.tensors["layer1.0.spatial"].shape().dims(), &[1, 1, 16, 16]);
        assert_eq!(maps.tensors["layer2.0.branch"].shape().dims(), &[1, 2, 32]);
        assert_eq!(maps.tensors["y"].shape().dims(), &[1, 4]);
    }
    assert!(index.contains("predicted") && index.contains('%'), "{index}");
    let overlay = image::open(out.join("wide/layer1.0.spatial.png")).unwrap();
    assert!(overlay.width() > 256 && overlay.height() == 192, "{}x{}", overlay.width(), overlay.height());

    // Only the layers asked for; an unknown layer lists the valid ones.
    let out2 = dir.join("out2");
    let o = map(&model, &[&photos.join("wide.png")], &out2, &["--layers", "layer2.0"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out2.join("wide/layer2.0.branch.svg").is_file() && !out2.join("wide/layer1.0.spatial.png").exists());
    let o = map(&model, &[&photos.join("wide.png")], &out2, &["--layers", "layer1.0,layer9"]);
    assert_fails_with(&o, "no attention layer 'layer9'; valid: 'layer1.0', 'layer2.0'");
}

#[test]
fn bad_images_are_skipped_with_a_reason() {
    let dir = scratch("bad");
    let model = write_model(&dir);
    let good = dir.join("good.png");
    photo(30, 20).save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.join("truncated.png");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    // A valid PNG header (signature + IHDR with its CRC) declaring 100000 x 100000 pixels.
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100000u32.to_be_bytes());
    ihdr.extend(100000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut huge = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d".to_vec();
    huge.extend(&ihdr);
    huge.extend(crc32(&ihdr).to_be_bytes());
    let huge_path = dir.join("huge.png");
    std::fs::write(&huge_path, huge).unwrap();
    let mislabeled = dir.join("mislabeled.jpg");
    std::fs::write(&mislabeled, "this is text").unwrap();
    let missing = dir.join("missing.png");
    let one = dir.join("one.png");
    RgbImage::from_pixel(1, 1, Rgb([9, 9, 9])).save(&one).unwrap();
    let out = dir.join("out");
    let o = map(&model, &[&truncated, &good, &huge_path, &mislabeled, &missing, &one], &out, &["--batch", "2"]);
    let stdout = text(&o.stdout);
    // The rest complete, but the exit status says some were skipped.
    assert_fails_with(&o, "4 picture(s) skipped: 4 that could not be read or mapped; the other 2 were mapped");
    assert!(stdout.contains("mapped 2 image(s), skipped 4"), "{stdout}");
    for (name, reason) in [
        ("truncated.png", "cannot decode"),
        ("huge.png", "8192 x 8192"),
        ("mislabeled.jpg", "not a PNG or JPEG"),
        ("missing.png", "cannot open"),
    ] {
        assert!(stdout.lines().any(|l| l.contains(name) && l.contains(reason)), "{name}: {reason} in {stdout}");
    }
    assert!(out.join("good/sheet.png").is_file() && out.join("one/sheet.png").is_file());
    assert!(!out.join("truncated").exists());
}

/// CRC-32 (IEEE) of `bytes`, for hand-made PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn bad_arguments_fail_before_any_output() {
    let dir = scratch("args");
    let model = write_model(&dir);
    let good = dir.join("good.png");
    photo(30, 20).save(&good).unwrap();

    // A plain weights file is no model.
    let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/BasicBlock_s1.weights.safetensors");
    let o = map(&plain, &[&good], &dir.join("o1"), &[]);
    assert_fails_with(&o, "no 'glimpse.network' metadata");

    let o = map(&model, &[&good], &dir.join("o2"), &["--query", "32,5"]);
    assert_fails_with(&o, "query (32, 5) is outside the model's 32 x 32 input");
    let o = map(&model, &[&good], &dir.join("o2"), &["--query", "3"]);
    assert_fails_with(&o, "expected X,Y");
    let o = map(&model, &[&good], &dir.join("o2"), &["--alpha", "2"]);
    assert_fails_with(&o, "--alpha 2 is not in [0, 1]");
    assert!(!dir.join("o1").exists() && !dir.join("o2").exists());

    // An output folder that cannot be created (its parent is a file).
    let o = map(&model, &[&good], &good.join("out"), &[]);
    assert_fails_with(&o, "cannot create the output folder");
    // An output folder holding an input.
    let o = map(&model, &[&good], &dir, &[]);
    assert_fails_with(&o, "holds the input");
    assert!(!dir.join("index.html").exists() && !dir.join("good").exists());
}

#[test]
fn normalize_modes_change_the_range() {
    let dir = scratch("norm");
    let model = write_model(&dir);
    let (a, b) = (dir.join("a.png"), dir.join("b.png"));
    photo(30, 20).save(&a).unwrap();
    RgbImage::from_fn(25, 25, |x, _| Rgb([(x * 10) as u8, 0, 0])).save(&b).unwrap();
    let mut pictures = Vec::new();
    for mode in ["image", "batch", "fixed"] {
        let out = dir.join(mode);
        let o = map(&model, &[&a, &b], &out, &["--normalize", mode, "--colormap", "viridis"]);
        assert!(o.status.success(), "{mode}: {}", text(&o.stderr));
        pictures.push(image::open(out.join("a/layer1.0.spatial.png")).unwrap().to_rgb8());
    }
    // The raw maps say which pictures must differ: per image and per batch agree
    // exactly when a's own map holds both the batch's minimum and maximum (the
    // weights are random, so that happens); a sigmoid map never spans 0..1.
    let range = |name: &str| {
        let maps = TensorFile::read(&dir.join("image").join(name).join("maps.safetensors")).unwrap();
        let v = maps.get("layer1.0.spatial").unwrap().data().to_vec();
        (v.iter().cloned().fold(f32::INFINITY, f32::min), v.iter().cloned().fold(f32::NEG_INFINITY, f32::max))
    };
    let ((a_lo, a_hi), (b_lo, b_hi)) = (range("a"), range("b"));
    let widening = (a_lo - a_lo.min(b_lo)) + (a_hi.max(b_hi) - a_hi);
    let ranges = format!("ranges a {a_lo}..{a_hi}, b {b_lo}..{b_hi}");
    if widening == 0.0 {
        assert!(pictures[0] == pictures[1], "image and batch should agree: {ranges}");
    } else if widening > 0.01 * (a_hi - a_lo) {
        // (A widening under 1% may vanish in 8-bit colour: no claim then.)
        assert!(pictures[0] != pictures[1], "image and batch should differ: {ranges}");
    }
    assert!(pictures[0] != pictures[2] && pictures[1] != pictures[2], "fixed 0..1 must differ from the data's range");
    let o = map(&model, &[&a], &dir.join("x"), &["--normalize", "global"]);
    assert_fails_with(&o, "unknown mode 'global'; valid: image, batch, fixed");
}

/// Non-local maps [N, Q, hk, wk] drawn with their query marked, on synthetic outputs.
#[test]
fn attention_rows_are_drawn_with_their_query() {
    let dir = scratch("nl");
    let mut rng = common::rng();
    let outputs = Tensors::from([("nl.attention".to_string(), random_input(&mut rng, &[2, 2, 4, 5], 0.0, 0.1))]);
    let layer = LayerInfo { prefix: "nl.".into(), grid: Some([8, 10]), queries: vec![[2, 3], [9, 7]] };
    let figs = figures(&outputs, &["nl.attention".into()], 2, 1, Normalize::Image, &[layer]).unwrap();
    let style = Style { colormap: Colormap::Inferno, alpha: 1.0 };
    let display = photo(100, 80);
    let maps = [("nl.attention", &outputs["nl.attention"])];
    let mut drawn = Vec::new();
    for gpu in [None, common::gpu()] {
        let renderer = Renderer::new(style, gpu).unwrap();
        let picture = Picture { name: "img", source: "img.png", display: &display, prediction: None };
        let report = write_image(&renderer, &dir, picture, &figs, &maps, &BTreeMap::new()).unwrap();
        assert_eq!(report.figures.len(), 2);
        assert!(report.figures[1].caption.contains("query (9, 7) of 10 x 8"), "{}", report.figures[1].caption);
        drawn.push(image::open(dir.join("img/nl.attention.q1.png")).unwrap().to_rgb8());
    }
    // The marker of query (9, 7) sits at (9.5 / 10, 7.5 / 8) of the picture: white centre dot.
    let img = &drawn[0];
    assert_eq!(img.get_pixel(95, 75), &Rgb([255, 255, 255]));
    if drawn.len() == 2 {
        let diff =
            drawn[0].pixels().zip(drawn[1].pixels()).flat_map(|(a, b)| (0..3).map(move |c| a.0[c].abs_diff(b.0[c])));
        assert!(diff.max().unwrap() <= 1, "GPU and CPU overlays differ by more than rounding");
    }
}

#[test]
fn a_model_listing_one_prefix_twice_is_rejected_before_any_output() {
    let dir = scratch("dup-prefix");
    let mut file = model_file(&mut common::rng());
    let spec = file.metadata[NETWORK_KEY].replace(
        r#"{"arch": "BasicBlock", "prefix": "layer1.0."},"#,
        r#"{"arch": "BasicBlock", "prefix": "layer1.0."}, {"arch": "BasicBlock", "prefix": "layer1.0."},"#,
    );
    file.metadata.insert(NETWORK_KEY.into(), spec);
    let model = dir.join("dup.safetensors");
    let named: Vec<(&str, &Tensor)> = file.tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    TensorFile::write(&model, &named, &file.metadata).unwrap();
    let good = dir.join("good.png");
    photo(30, 20).save(&good).unwrap();
    let out = dir.join("out");
    let o = map(&model, &[&good], &out, &[]);
    assert_fails_with(&o, "both use the prefix 'layer1.0.'");
    assert!(!out.exists(), "no half-filled output folder");
}

#[cfg(unix)]
#[test]
fn symlinks_to_the_folder_itself_are_walked_once() {
    let dir = scratch("links");
    let model = write_model(&dir);
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    photo(30, 20).save(photos.join("only.png")).unwrap();
    // Two links to `.`: a walk that follows them blindly branches 2^depth ways until paths get too long.
    std::os::unix::fs::symlink(".", photos.join("again")).unwrap();
    std::os::unix::fs::symlink(".", photos.join("more")).unwrap();
    let out = dir.join("out");
    let start = std::time::Instant::now();
    let o = map(&model, &[&photos], &out, &[]);
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{}{stdout}", text(&o.stderr));
    assert!(start.elapsed() < std::time::Duration::from_secs(60), "took {:?}", start.elapsed());
    assert!(stdout.contains("mapped 1 image(s), skipped 0"), "{stdout}");
    let folders: Vec<_> =
        std::fs::read_dir(&out).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).collect();
    assert_eq!(folders.len(), 1, "one picture, one folder: {folders:?}");
    assert!(out.join("only/sheet.png").is_file());
}

#[test]
fn the_input_folder_as_output_folder_is_named() {
    let dir = scratch("same");
    let model = write_model(&dir);
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    photo(30, 20).save(photos.join("a.png")).unwrap();
    let o = map(&model, &[&photos], &photos, &[]);
    assert_fails_with(&o, "the output folder is the input folder");
    assert!(!text(&o.stderr).contains("no PNG or JPEG"), "{}", text(&o.stderr));
    assert!(!photos.join("index.html").exists() && !photos.join("a").exists());
}

#[test]
fn pictures_in_other_formats_are_counted_named_and_fail_the_exit_status() {
    let dir = scratch("formats");
    let model = write_model(&dir);
    let photos = dir.join("photos");
    std::fs::create_dir_all(photos.join("sub")).unwrap();
    photo(30, 20).save(photos.join("good.png")).unwrap();
    for name in ["a.webp", "b.BMP", "sub/c.tiff"] {
        std::fs::write(photos.join(name), b"not decoded").unwrap();
    }
    std::fs::write(photos.join("notes.txt"), "no picture").unwrap();
    let out = dir.join("out");
    let o = map(&model, &[&photos], &out, &[]);
    let stdout = text(&o.stdout);
    assert_fails_with(&o, "3 picture(s) skipped: 3 in an unsupported format (glimpse reads PNG and JPEG)");
    assert!(stdout.contains("mapped 1 image(s), skipped 3"), "{stdout}");
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    for name in ["a.webp", "b.BMP", "c.tiff"] {
        assert!(
            stdout.lines().any(|l| l.contains("skipped") && l.contains(name) && l.contains("unsupported format")),
            "{name} in {stdout}"
        );
        assert!(index.contains(name), "index.html lists {name}");
    }
    assert!(!stdout.contains("notes.txt") && out.join("good/sheet.png").is_file());
    // Only unsupported pictures: still no work, and the message says why.
    let only = dir.join("only");
    std::fs::create_dir_all(&only).unwrap();
    std::fs::write(only.join("x.webp"), b"").unwrap();
    assert_fails_with(&map(&model, &[&only], &dir.join("out2"), &[]), "1 picture(s) in formats glimpse does not read");

    let help = text(&glimpse(&["map", "--help"]).stdout);
    assert!(help.contains("Exit status") && help.contains("any picture was skipped"), "{help}");
}

/// A network that overflows f32 (stem weights of 1e38) gives NaN or infinite maps: each picture is
/// skipped with the output named, nothing is drawn from them, and the exit status says so.
#[test]
fn pictures_whose_outputs_overflow_are_skipped_with_the_output_named() {
    let dir = scratch("overflow");
    let mut file = model_file(&mut common::rng());
    let stem = file.tensors["stem.conv.weight"].clone();
    let huge = Tensor::from_vec(stem.shape().dims(), stem.data().iter().map(|v| v * 1e38).collect()).unwrap();
    file.tensors.insert("stem.conv.weight".into(), huge);
    let model = dir.join("overflow.safetensors");
    let named: Vec<(&str, &Tensor)> = file.tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    TensorFile::write(&model, &named, &file.metadata).unwrap();
    let picture = dir.join("p.png");
    photo(40, 40).save(&picture).unwrap();
    let out = dir.join("out");
    let o = map(&model, &[&picture], &out, &[]);
    assert_fails_with(&o, "skipped");
    let err = text(&o.stderr);
    assert!(err.contains("NaN or infinite value(s) for this picture"), "{err}");
    assert!(!out.join("p").join("sheet.png").exists(), "nothing drawn from non-finite maps");
}
