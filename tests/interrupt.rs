//! Ctrl-C or kill in the middle of `glimpse map`, `classify` and `bench` (issue 11, defect 9):
//! the run stops with status 130, the report written so far is valid and lists only
//! finished work, and no temporary file is left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-interrupt-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn demo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo").join(path).display().to_string()
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("glimpse starts")
}

/// Waits (at most a minute) for `path` to appear while the child runs.
fn wait_for(child: &mut Child, path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "glimpse ended before writing {}", path.display());
        assert!(start.elapsed() < Duration::from_secs(60), "{} not written within a minute", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` and returns the exit code and stderr; fails if it takes over a minute.
fn interrupt(mut child: Child, signal: &str) -> (Option<i32>, String) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal}");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("glimpse did not stop within a minute of {signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Every file under `dir` whose name marks it temporary.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(leftovers(&path));
        } else {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".tmp") || name.ends_with(".probe") || name.starts_with(".glimpse") {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn an_interrupted_map_leaves_a_valid_smaller_index_and_no_temp_files() {
    let dir = scratch("map");
    let out = dir.join("out");
    // 200 pictures on the CPU reference: about a minute, so the signal lands mid-run.
    let args = ["map", "--model", &demo("model.safetensors"), "-o", out.to_str().unwrap(), "--device", "cpu"];
    let mut child = spawn(&[&args[..], &[&demo("heldout")]].concat());
    wait_for(&mut child, &out.join("index.html"));
    std::thread::sleep(Duration::from_millis(300));
    let (code, stderr) = interrupt(child, "-INT");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted") && !stderr.contains("panicked"), "{stderr}");
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.trim_end().ends_with("</html>") && index.contains("unfinished"), "{index}");
    let sections = index.matches("<section class=\"picture\"").count();
    assert!((1..200).contains(&sections), "{sections} pictures listed");
    // Every picture the index links was written whole (links within the page, the grid
    // view's "#picture", are no files).
    let links = index.split("href=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]);
    for link in links.filter(|l| !l.starts_with('#')) {
        let path = out.join(link);
        assert!(path.is_file() && std::fs::metadata(&path).unwrap().len() > 0, "{link} missing");
    }
    assert_eq!(leftovers(&out), Vec::<PathBuf>::new());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_interrupted_classify_leaves_valid_smaller_reports_and_no_temp_files() {
    let dir = scratch("classify");
    let (json, csv) = (dir.join("top.json"), dir.join("top.csv"));
    // 200 pictures scaled to 1024 x 1024, one per batch, on the CPU: tens of seconds.
    #[rustfmt::skip]
    let args = ["classify", "--arch", "GlobalAvgPool", "--img-size", "1024", "--batch-size", "1", "--topk", "2",
                "--device", "cpu", "--json", json.to_str().unwrap(), "--csv", csv.to_str().unwrap()];
    let mut child = spawn(&[&args[..], &[&demo("heldout")]].concat());
    wait_for(&mut child, &json);
    std::thread::sleep(Duration::from_millis(300));
    let (code, stderr) = interrupt(child, "-INT");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted") && !stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let images = report["images"].as_array().unwrap();
    assert!((1..200).contains(&images.len()), "{} images listed", images.len());
    let unfinished = report["unfinished"].as_str().expect("an interrupted report says it is unfinished");
    assert_eq!(unfinished, format!("{} of 200 image(s) done", images.len()));
    for (i, image) in images.iter().enumerate() {
        assert_eq!(image["topk"].as_array().map(Vec::len), Some(2), "image {i}: {image}");
    }
    // The CSV was written with the JSON: the same images, two rows each.
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    assert_eq!(rows, 2 * images.len(), "the CSV holds the JSON's images");
    assert_eq!(leftovers(&dir), Vec::<PathBuf>::new());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_interrupted_bench_keeps_the_rows_measured_so_far() {
    if common::gpu().is_none() {
        return; // the reason is printed; bench needs an adapter
    }
    let dir = scratch("bench");
    let json = dir.join("bench.json");
    let csv = dir.join("bench.csv");
    let args = ["bench", "--suite", "blocks", "--batch", "1", "--repeat", "1", "--json", json.to_str().unwrap()];
    let mut child = spawn(&[&args[..], &["--csv", csv.to_str().unwrap()]].concat());
    wait_for(&mut child, &json);
    let (code, stderr) = interrupt(child, "-TERM");
    assert_eq!(code, Some(130), "{stderr}");
    let report = glimpse::bench::Report::read(&json).unwrap();
    let unfinished = report.unfinished.expect("an interrupted report says it is unfinished");
    assert!(unfinished.contains("workloads measured") && !report.workloads.is_empty(), "{unfinished}");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    assert_eq!(rows, report.workloads.len(), "the CSV holds the same rows");
    assert_eq!(leftovers(&dir), Vec::<PathBuf>::new());
    let _ = std::fs::remove_dir_all(dir);
}
