//! The memory budget (issue 11, defect 7): allocations sized by a user's input are checked
//! before they are made. A 1024 x 1 photo draws a contact sheet of normal size, and a model
//! input of 3 x 8192 x 8192 on `--device cpu` is refused up front with the bytes it needs, and
//! so is a GPU plan over the GPU budget (GLIMPSE_GPU_BYTES).

mod common;

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

/// The demo model's fused GPU graph with its maps at `batch`.
fn demo_graph(batch: usize) -> glimpse::graph::Graph {
    use glimpse::blocks::BuildOptions;
    use glimpse::graph::Fusion;
    let model = glimpse::models::Model::load(&demo_model()).unwrap();
    model.build(batch, BuildOptions { fusion: Fusion::all(), maps: true, queries: vec![] }).unwrap()
}

#[test]
fn a_plan_over_the_gpu_budget_is_refused_before_it_allocates() {
    use glimpse::gpu::{Gpu, GpuOptions};
    use glimpse::graph::Plan;
    let Some(_shared) = common::gpu() else { return };
    let graph = demo_graph(2);
    let with_budget = |bytes| Gpu::with_options(GpuOptions { plan_bytes: Some(bytes), ..Default::default() }).unwrap();
    // Measured on a device of its own: the shared one's scratch slots may have grown for other tests.
    let needed = Plan::compile(&with_budget(glimpse::budget::GPU_BYTES), &graph).unwrap().bytes();
    // Exactly the plan's bytes fit; one byte less is refused, naming the need and the budget.
    Plan::compile(&with_budget(needed), &graph).unwrap();
    let err = Plan::compile(&with_budget(needed - 1), &graph).unwrap_err().to_string();
    let (need, allowed) = (glimpse::budget::size(needed), glimpse::budget::size(needed - 1));
    assert!(err.contains(&format!("needs {need}, more than the {allowed}")), "{err}");
    assert!(err.contains("GPU plan") && err.contains("GLIMPSE_GPU_BYTES"), "{err}");
    // 40 outputs of 120 MB each, every buffer within the binding limit: 4.8 GB in all, refused
    // at once by the default budget, so nothing is allocated first.
    let mut wide = glimpse::graph::Graph::new();
    let x = wide.input("x", glimpse::Shape::new(&[30_000_000]).unwrap());
    for i in 0..40 {
        let y = wide.add(glimpse::ops::eltwise::Eltwise::Relu, &[x]).unwrap();
        wide.output(&format!("y{i}"), y);
    }
    let gpu = with_budget(glimpse::budget::GPU_BYTES);
    let start = Instant::now();
    match Plan::compile(&gpu, &wide) {
        Err(e) => assert!(e.to_string().contains("needs 4.6 GiB, more than the 4.0 GiB"), "{e}"),
        Ok(p) => panic!("a plan of {} bytes was allocated", p.bytes()),
    }
    assert!(start.elapsed() < Duration::from_secs(20), "refused only after {:?}", start.elapsed());
}

#[test]
fn the_gpu_budget_comes_from_glimpse_gpu_bytes() {
    if common::gpu().is_none() {
        return; // the reason is printed; the GPU budget needs an adapter
    }
    let dir = scratch("gpu-env");
    let photo = dir.join("p.png");
    RgbImage::from_pixel(8, 8, Rgb([1, 2, 3])).save(&photo).unwrap();
    let run = |value: &str| {
        Command::new(env!("CARGO_BIN_EXE_glimpse"))
            .args(["map", "--model", demo_model().to_str().unwrap(), "-o", dir.join("out").to_str().unwrap()])
            .arg(&photo)
            .env("XDG_RUNTIME_DIR", "/tmp")
            .env("GLIMPSE_GPU_BYTES", value)
            .output()
            .expect("glimpse runs")
    };
    let o = run("64K");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("GPU plan") && err.contains("more than the 64 KiB"), "{err}");
    let o = run("lots");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("GLIMPSE_GPU_BYTES=\"lots\" is not a size"), "{err}");
    let o = run("1G");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(dir);
}
