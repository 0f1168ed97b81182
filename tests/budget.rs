//! The memory budget (issue 11, defect 7): allocations sized by a user's input are checked
//! before they are made. A 1024 x 1 photo draws a contact sheet of normal size, and a model
//! input of 3 x 8192 x 8192 on `--device cpu` is refused up front with the bytes it needs.

use glimpse::models::NETWORK_KEY;
use glimpse::tensorfile::TensorFile;
use glimpse::Tensor;
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-budget-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn demo_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/model.safetensors")
}

fn map(model: &Path, photo: &Path, out: &Path) -> Output {
    let args = ["map", "--model", model.to_str().unwrap(), "-o", out.to_str().unwrap(), "--device", "cpu"];
    Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(args)
        .arg(photo)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("glimpse runs")
}

#[test]
fn a_1024_by_1_photo_draws_a_contact_sheet_of_normal_size() {
    let dir = scratch("thin");
    let photo = dir.join("thin.png");
    RgbImage::from_fn(1024, 1, |x, _| Rgb([(x % 256) as u8, 80, 160])).save(&photo).unwrap();
    let out = dir.join("out");
    let o = map(&demo_model(), &photo, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (w, h) = image::image_dimensions(out.join("thin/sheet.png")).unwrap();
    // Each tile is at most 4 x its 192-pixel height wide; it was 196,608 pixels per tile.
    assert!(w < 8000 && h < 400, "sheet {w} x {h}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_3_by_8192_by_8192_input_on_the_cpu_is_refused_up_front_with_the_bytes() {
    let dir = scratch("huge");
    // The demo network without its Non-local block (whose HW x HW scores are refused on
    // their own), declared with an input of 3 x 8192 x 8192.
    let demo = TensorFile::read(&demo_model()).unwrap();
    let mut spec: serde_json::Value = serde_json::from_str(&demo.metadata[NETWORK_KEY]).unwrap();
    spec["input"] = serde_json::json!([3, 8192, 8192]);
    spec["layers"].as_array_mut().unwrap().retain(|l| l["arch"] != "NonLocal");
    let tensors: Vec<(&str, &Tensor)> =
        demo.tensors.iter().filter(|(k, _)| !k.starts_with("nl.")).map(|(k, v)| (k.as_str(), v)).collect();
    let model = dir.join("huge.safetensors");
    let meta = [(NETWORK_KEY.to_string(), spec.to_string())].into_iter().collect();
    TensorFile::write(&model, &tensors, &meta).unwrap();
    let photo = dir.join("p.png");
    RgbImage::from_pixel(8, 8, Rgb([1, 2, 3])).save(&photo).unwrap();
    let start = Instant::now();
    let o = map(&model, &photo, &dir.join("out"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains("memory budget") && err.contains("3 x 8192 x 8192") && err.contains("more than the 4.0 GiB"),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(30), "refused only after {:?}", start.elapsed());
    let _ = std::fs::remove_dir_all(dir);
}
