//! `glimpse classify` end to end, and the library pieces it is made of (image lists, top-k,
//! labels, reports). Until the networks land, the end-to-end runs use `GlobalAvgPool`: it
//! maps an image to one score per colour channel, a 3-class "classifier" whose logits are
//! known exactly (the channel means of a solid image), so batching, the partial last batch,
//! a bad file among good ones, and the JSON / CSV reports are all checked against numbers.

mod common;

use glimpse::classify::{self, report, Labels, Outcome, Ranked};
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn glimpse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("glimpse runs")
}

/// A fresh folder for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-classify-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Solid images (name, width, height, colour): the logits of GlobalAvgPool with mean 0 and
/// std 1 are the colour / 255, whatever the resize does to a uniform image.
const SOLIDS: [(&str, u32, u32, [u8; 3]); 4] = [
    ("a.png", 20, 12, [200, 10, 30]),
    ("b.png", 9, 30, [0, 255, 0]),
    ("c.jpg", 16, 16, [128, 128, 128]),
    ("d.PNG", 33, 17, [10, 20, 240]),
];

fn write_images(dir: &Path) {
    for (name, w, h, rgb) in SOLIDS {
        let img = RgbImage::from_pixel(w, h, Rgb(rgb));
        // JPEG is lossy even for a solid colour: store every image as PNG, named as listed
        // (the decoder goes by content).
        img.save_with_format(dir.join(name), image::ImageFormat::Png).unwrap();
    }
    std::fs::write(dir.join("broken.png"), b"not an image at all").unwrap();
    std::fs::write(dir.join("notes.txt"), b"skipped: not an image name").unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    RgbImage::new(4, 4).save(dir.join("sub/nested.png")).unwrap();
}

fn expected_probs(rgb: [u8; 3]) -> Vec<f64> {
    let logits = rgb.map(|v| v as f32 / 255.0);
    classify::softmax(&logits).unwrap()
}

fn classify_folder(device: &str) {
    let dir = scratch(&format!("e2e-{device}"));
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_images(&images);
    std::fs::write(dir.join("labels.txt"), "red\ngreen\nblue\n").unwrap();
    let (json, csv) = (dir.join("out.json"), dir.join("out.csv"));
    #[rustfmt::skip]
    let o = glimpse(&[
        "classify", "--arch", "GlobalAvgPool", "--img-size", "8", "--crop-pct", "1", "--mean", "0,0,0",
        "--std", "1,1,1", "--labels", s(&dir.join("labels.txt")), "--batch-size", "3", "--topk", "2",
        "--json", s(&json), "--csv", s(&csv), "--device", device, s(&images),
    ]);
    let err = stderr(&o);
    assert!(!o.status.success() && !err.contains("panicked"), "one bad file fails the run at the end: {err}");
    assert!(err.contains(&format!("{}: ", images.join("broken.png").display())), "{err}");
    assert!(err.contains("1 of 5 image(s) could not be classified"), "{err}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("a.png") && stdout.contains("red"), "{stdout}");

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report.get("unfinished").is_none(), "a finished run's report is not marked: {report}");
    let list = report["images"].as_array().unwrap();
    let names: Vec<String> =
        list.iter().map(|v| v["path"].as_str().unwrap().rsplit('/').next().unwrap().into()).collect();
    assert_eq!(names, ["a.png", "b.png", "broken.png", "c.jpg", "d.PNG"], "sorted, no subfolders or .txt");
    assert!(list[2]["error"].as_str().unwrap().contains("not a PNG or JPEG"), "{}", list[2]);
    for (name, _, _, rgb) in SOLIDS {
        let entry = &list[names.iter().position(|n| n == name).unwrap()];
        let probs = expected_probs(rgb);
        let topk = entry["topk"].as_array().unwrap();
        assert_eq!(topk.len(), 2, "{entry}");
        let best = (0..3).max_by(|&a, &b| probs[a].total_cmp(&probs[b]).then(b.cmp(&a))).unwrap();
        assert_eq!(topk[0]["index"], best, "{name}: {entry}");
        assert_eq!(topk[0]["label"], ["red", "green", "blue"][best]);
        let p = topk[0]["prob"].as_f64().unwrap();
        assert!((p - probs[best]).abs() < 1e-5, "{name}: {p} vs {}", probs[best]);
    }
    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "path,rank,index,label,prob");
    assert_eq!(lines.len(), 1 + 4 * 2, "{csv}");
    assert!(lines[1].contains("a.png,1,0,red,"), "{csv}");
}

#[test]
fn classify_runs_batches_on_the_cpu() {
    classify_folder("cpu");
}

#[test]
fn classify_runs_batches_on_the_gpu() {
    if common::gpu().is_none() {
        return;
    }
    classify_folder("gpu");
}

#[test]
fn classify_rejects_bad_setups_before_the_work() {
    let dir = scratch("errors");
    let img = dir.join("x.png");
    RgbImage::from_pixel(8, 8, Rgb([1, 2, 3])).save(&img).unwrap();
    let before = std::fs::read(&img).unwrap();
    let two = dir.join("two.txt");
    std::fs::write(&two, "a\nb\n").unwrap();
    let base = ["classify", "--arch", "GlobalAvgPool", "--device", "cpu"];
    let cases: [(Vec<&str>, &str); 6] = [
        (vec![s(&img)], "GlobalAvgPool has no pretrained preprocessing configuration; give --img-size"),
        (vec!["--img-size", "8", "--json", s(&img), s(&img)], "inputs are never overwritten"),
        (vec!["--img-size", "8", "--csv", s(&dir), s(&img)], "not a regular file"),
        (vec!["--img-size", "8", "--labels", s(&two), s(&img)], "2 labels for a network with 3"),
        (vec!["--img-size", "8", "--crop-pct", "1.5", s(&img)], "crop_pct 1.5 is outside (0, 1]"),
        (vec!["--img-size", "8", "--mean", "1,2", s(&img)], "expected three comma-separated numbers"),
    ];
    for (args, want) in cases {
        let o = glimpse(&[&base[..], &args[..]].concat());
        let err = stderr(&o);
        assert!(!o.status.success() && !err.contains("panicked") && err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&img).unwrap(), before, "the input is untouched");
}

#[test]
fn images_are_collected_per_folder_sorted_and_not_recursively() {
    let dir = scratch("collect");
    write_images(&dir);
    let missing = dir.join("missing.jpg");
    let found = classify::collect_images(&[missing.clone(), dir.clone()]).unwrap();
    let names: Vec<&str> = found.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
    // A missing file named on the command line is kept: it is reported when it fails to load.
    assert_eq!(names, ["missing.jpg", "a.png", "b.png", "broken.png", "c.jpg", "d.PNG"]);
}

#[test]
fn reports_hold_every_image_and_quote_labels() {
    let labels = Labels::imagenet1k();
    let mut logits = vec![0.0f32; 1000];
    logits[0] = 5.0;
    let topk = classify::top_k(&logits, 2, &labels).unwrap();
    assert_eq!(topk[0], Ranked { index: 0, label: "tench, Tinca tinca".into(), prob: topk[0].prob });
    let outcomes = vec![
        Outcome { path: "x.jpg".into(), result: Ok(topk.clone()) },
        Outcome { path: "bad.png".into(), result: Err("bad.png: not a PNG or JPEG image".into()) },
    ];
    let json: serde_json::Value = serde_json::from_str(&report::json(&outcomes, None)).unwrap();
    assert_eq!(json["images"][0]["topk"][0]["label"], "tench, Tinca tinca");
    assert_eq!(json["images"][0]["topk"][1]["index"], 1);
    assert_eq!(json["images"][1]["error"], "bad.png: not a PNG or JPEG image");
    assert!(json.get("unfinished").is_none(), "{json}");
    let so_far: serde_json::Value =
        serde_json::from_str(&report::json(&outcomes[..1], Some("1 of 2 image(s) done"))).unwrap();
    assert_eq!(so_far["unfinished"], "1 of 2 image(s) done");
    assert_eq!(so_far["images"].as_array().unwrap().len(), 1);
    let csv = report::csv(&outcomes);
    assert_eq!(csv.lines().nth(1).unwrap(), format!("x.jpg,1,0,\"tench, Tinca tinca\",{}", topk[0].prob));
    assert_eq!(csv.lines().count(), 3, "failed images have no rows: {csv}");
}

#[test]
fn reports_are_never_written_over_inputs() {
    let dir = scratch("outputs");
    let input = dir.join("in.png");
    RgbImage::new(2, 2).save(&input).unwrap();
    let link = dir.join("link.png");
    std::fs::hard_link(&input, &link).unwrap();
    let inputs = [input.clone()];
    for bad in [input.clone(), dir.join(".").join("in.png"), link] {
        let err = glimpse::output::check_output(&bad, &inputs).unwrap_err().to_string();
        assert!(err.contains("inputs are never overwritten"), "{}: {err}", bad.display());
    }
    assert!(glimpse::output::check_output(&dir, &inputs).is_err());
    assert!(glimpse::output::check_output(&dir.join("no/such/dir/out.json"), &inputs).is_err());
    glimpse::output::check_output(&dir.join("out.json"), &inputs).unwrap();
    assert!(!dir.join("out.json").exists() && !dir.join(".out.json.probe").exists(), "the probe is removed");
}

/// The real thing: timm's skresnet18 (random weights with the hub checkpoint's keys), its
/// pretrained preprocessing and the ImageNet labels.
#[test]
fn classify_runs_skresnet18() {
    use glimpse::tensorfile::TensorFile;
    use glimpse::Tensor;
    let dir = scratch("skresnet18");
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/networks/timm.skresnet18.keys.json");
    let keys: Vec<(String, Vec<usize>, String)> =
        serde_json::from_str(&std::fs::read_to_string(keys).unwrap()).unwrap();
    let mut rng = fastrand::Rng::with_seed(18);
    let mut tensors = Vec::new();
    for (name, dims, dtype) in keys.into_iter().filter(|(_, _, d)| d == "float32") {
        assert_eq!(dtype, "float32");
        let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
        let (lo, hi) = match name.rsplit('.').next().unwrap() {
            "running_var" => (0.5, 1.5),
            "weight" if dims.len() == 1 => (0.8, 1.2), // BatchNorm scale
            _ => (-1.0 / (fan_in as f32).sqrt(), 1.0 / (fan_in as f32).sqrt()),
        };
        tensors.push((name, Tensor::random(glimpse::Shape::new(&dims).unwrap(), &mut rng, lo, hi)));
    }
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let weights = dir.join("skresnet18.safetensors");
    TensorFile::write(&weights, &named, &Default::default()).unwrap();
    let img = dir.join("photo.png");
    RgbImage::from_fn(300, 200, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90])).save(&img).unwrap();
    let json = dir.join("out.json");
    let device = if common::gpu().is_some() { "gpu" } else { "cpu" };
    #[rustfmt::skip]
    let o = glimpse(&["classify", "--arch", "timm.skresnet18", "--weights", s(&weights), "--json", s(&json),
                      "--device", device, s(&img), s(&img)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let list = report["images"].as_array().unwrap();
    let topk = list[0]["topk"].as_array().unwrap();
    assert_eq!(topk.len(), 5);
    let label = topk[0]["label"].as_str().unwrap();
    assert_eq!(label, Labels::imagenet1k().get(topk[0]["index"].as_u64().unwrap() as usize));
    assert_eq!(list[0]["topk"], list[1]["topk"], "the same image twice in one batch");
}

/// `classify -q`: the table on stdout, no setup or summary line (nor progress bar) on stderr.
#[test]
fn quiet_classify_prints_the_table_and_no_summary() {
    let dir = scratch("quiet");
    for (name, w, h, rgb) in SOLIDS {
        RgbImage::from_pixel(w, h, Rgb(rgb)).save_with_format(dir.join(name), image::ImageFormat::Png).unwrap();
    }
    #[rustfmt::skip]
    let run = |flag: &str| glimpse(&[
        "classify", flag, "--arch", "GlobalAvgPool", "--img-size", "8", "--mean", "0,0,0", "--std", "1,1,1",
        "--device", "cpu", s(&dir),
    ]);
    let loud = run("--verbose");
    assert!(loud.status.success() && stderr(&loud).contains("classified 4 of 4 image(s)"), "{}", stderr(&loud));
    let quiet = run("-q");
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "", "no summary line");
    let stdout = String::from_utf8_lossy(&quiet.stdout);
    for (name, ..) in SOLIDS {
        assert!(stdout.contains(name), "{name} in the table: {stdout}");
    }
    assert!(stdout.contains("   1  "), "ranked rows: {stdout}");
}
