//! The bundled demo model (examples/demo/model.safetensors, trained by
//! tools/train_demo.py) on its committed held-out images: the class of the
//! odd-coloured shape must be right on >= 95% of them, and the peak of the last
//! CBAM spatial attention map must fall inside that shape's box on >= 90%
//! (the pointing game). Runs on the GPU; only without one on the CPU executor.

mod common;

use glimpse::blocks::{self, BuildOptions};
use glimpse::graph::{Fusion, Plan, Tensors};
use glimpse::models::Model;
use glimpse::Tensor;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Images per graph run: four runs of one compiled plan cover the 200 images.
const BATCH: usize = 50;

/// One line of labels.json (written by tools/demo_data.py).
#[derive(Deserialize)]
struct Entry {
    file: String,
    label: usize,
    /// x0, y0, x1, y1 in pixels of the image file; x1 and y1 exclusive.
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")
}

/// The images of `dir` as one normalised [n, 3, H, W] batch per BATCH entries
/// (the last one padded with zeros), with boxes scaled to the model's input size.
fn load_images(model: &Model, dir: &Path) -> (Vec<Entry>, Vec<Tensor>) {
    let json = std::fs::read_to_string(dir.join("labels.json")).expect("labels.json should be readable");
    let mut entries: Vec<Entry> = serde_json::from_str(&json).expect("labels.json should parse");
    let [c, h, w] = model.spec.input;
    assert_eq!(c, 3, "the demo model takes RGB images");
    let stat = |v: &[f32], i: usize, default: f32| v.get(i).copied().unwrap_or(default);
    let mut batches = Vec::new();
    for chunk in entries.chunks_mut(BATCH) {
        let mut data = vec![0.0f32; BATCH * c * h * w];
        for (n, entry) in chunk.iter_mut().enumerate() {
            let img = image::open(dir.join(&entry.file)).expect("image should decode").to_rgb8();
            let (sx, sy) = (w as f32 / img.width() as f32, h as f32 / img.height() as f32);
            entry.bbox = [entry.bbox[0] * sx, entry.bbox[1] * sy, entry.bbox[2] * sx, entry.bbox[3] * sy];
            let img = image::imageops::resize(&img, w as u32, h as u32, image::imageops::FilterType::Triangle);
            for (x, y, pixel) in img.enumerate_pixels() {
                for ch in 0..c {
                    let v = pixel.0[ch] as f32 / 255.0;
                    let normalised = (v - stat(&model.spec.mean, ch, 0.0)) / stat(&model.spec.std, ch, 1.0);
                    data[((n * c + ch) * h + y as usize) * w + x as usize] = normalised;
                }
            }
        }
        batches.push(Tensor::from_vec(&[BATCH, c, h, w], data).expect("batch shape"));
    }
    (entries, batches)
}

/// The name of the last CBAM spatial map: `{prefix}spatial` of the last layer that has one.
fn last_spatial_map(model: &Model) -> String {
    let layer = model
        .spec
        .layers
        .iter()
        .rev()
        .find(|l| blocks::arch(&l.arch).is_ok_and(|a| a.maps.iter().any(|m| m.name == "spatial")));
    format!("{}spatial", layer.expect("the demo model should have a CBAM layer").prefix)
}

/// Index of the first maximum of `values`.
fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

/// (accuracy, pointing-game rate, executor) of the model over the images in `dir`.
fn score(model: &Model, dir: &Path) -> (f64, f64, &'static str) {
    let (entries, batches) = load_images(model, dir);
    let map_name = last_spatial_map(model);
    let graph = model.build(BATCH, BuildOptions { fusion: Fusion::all(), maps: true, queries: vec![] }).unwrap();
    let plan = common::gpu().map(|gpu| Plan::compile(gpu, &graph).expect("the demo plan should compile"));
    if plan.is_none() {
        eprintln!("no GPU: the demo model runs on the CPU executor instead");
    }
    let [_, h, w] = model.spec.input;
    let (mut correct, mut hits) = (0, 0);
    for (chunk, x) in entries.chunks(BATCH).zip(batches) {
        let feed = Tensors::from([("x".to_string(), x)]);
        let out = match (&plan, common::gpu()) {
            (Some(plan), Some(gpu)) => plan.run(gpu, &feed).unwrap(),
            _ => graph.run_cpu(&feed).unwrap(),
        };
        let (logits, map) = (&out["y"], &out[map_name.as_str()]);
        let classes = logits.shape().dims()[1];
        let [_, _, mh, mw] = map.shape().nchw("demo", "spatial map").unwrap();
        for (n, entry) in chunk.iter().enumerate() {
            correct += usize::from(argmax(&logits.data()[n * classes..(n + 1) * classes]) == entry.label);
            // The peak cell's centre, in input pixels (the map is the image downscaled by h / mh, w / mw).
            let peak = argmax(&map.data()[n * mh * mw..(n + 1) * mh * mw]);
            let px = ((peak % mw) as f32 + 0.5) * (w as f32 / mw as f32);
            let py = ((peak / mw) as f32 + 0.5) * (h as f32 / mh as f32);
            let [x0, y0, x1, y1] = entry.bbox;
            hits += usize::from(x0 <= px && px < x1 && y0 <= py && py < y1);
        }
    }
    let n = entries.len() as f64;
    (correct as f64 / n, hits as f64 / n, if plan.is_some() { "GPU" } else { "CPU executor" })
}

#[test]
fn demo_model_finds_and_classifies_the_odd_shape() {
    let model = Model::load(&demo_dir().join("model.safetensors")).expect("the demo model should load");
    let layers: Vec<&str> = model.spec.layers.iter().map(|l| l.arch.as_str()).collect();
    let (accuracy, pointing, executor) = score(&model, &demo_dir().join("heldout"));
    eprintln!(
        "demo model ({}) on examples/demo/heldout ({executor}): accuracy {:.1}%, pointing game ({}) {:.1}%",
        layers.join(" -> "),
        accuracy * 100.0,
        last_spatial_map(&model),
        pointing * 100.0
    );
    assert!(accuracy >= 0.95, "accuracy {accuracy:.3} < 0.95");
    assert!(pointing >= 0.90, "pointing game {pointing:.3} < 0.90");
}

#[test]
fn demo_pictures_are_classified() {
    let model = Model::load(&demo_dir().join("model.safetensors")).expect("the demo model should load");
    let (accuracy, pointing, executor) = score(&model, &demo_dir().join("images"));
    eprintln!(
        "demo model on examples/demo/images (resized to 64 x 64, {executor}): accuracy {:.1}%, pointing {:.1}%",
        accuracy * 100.0,
        pointing * 100.0
    );
    assert!(accuracy >= 0.85, "the demo pictures should show the model working: accuracy {accuracy:.3}");
}
