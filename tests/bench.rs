//! `glimpse bench` end to end: bad arguments and files fail before any work
//! with messages that say what is valid, and a tiny real run writes JSON that
//! parses back, CSV and an SVG, and compares with itself.

mod common;

use glimpse::bench::{Report, Row, Status, SCHEMA};
use std::path::PathBuf;
use std::process::{Command, Output};

fn glimpse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glimpse")).arg("bench").args(args).output().expect("the binary should start")
}

/// The run failed and its stderr holds every one of `needles`.
fn fails_with(args: &[&str], needles: &[&str]) {
    let out = glimpse(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail; stderr: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: stderr lacks {n:?}:\n{stderr}");
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn unknown_suites_and_filters_list_the_valid_ones() {
    fails_with(&["--suite", "model"], &["invalid value 'model'", "ops", "blocks", "all"]);
    fails_with(
        &["--suite", "ops", "--filter", "resnet"],
        &["no workload matches --filter 'resnet'", "conv2d", "matmul"],
    );
    fails_with(&["--suite", "ops", "--filter", "CbamModule"], &["try --suite all"]);
    fails_with(&["--batch", "0"], &["--batch"]);
}

#[test]
fn unreadable_and_malformed_compare_files_are_named() {
    let missing = scratch("missing.json");
    fails_with(&["--compare", missing.to_str().unwrap()], &["--compare", "missing.json", "cannot read"]);
    let garbage = scratch("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    fails_with(&["--compare", garbage.to_str().unwrap()], &["garbage.json", "not a benchmark report"]);
    let other = scratch("other.json");
    std::fs::write(&other, r#"{"schema": "x/9", "tool": "t", "version": "", "date": "", "adapter": {"name": "", "backend": "", "driver": "", "device_type": ""}, "workloads": []}"#).unwrap();
    fails_with(&["--compare", other.to_str().unwrap()], &["other.json", "schema is 'x/9'"]);
    fails_with(&["--json", "/no/such/folder/r.json"], &["--json", "does not exist"]);
}

#[test]
fn outputs_that_cannot_take_a_file_fail_before_the_run() {
    fn with<'a>(quick: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [quick, extra].concat()
    }
    // A quick workload, so a regression (failing only after the run) stays short.
    let quick = ["--suite", "ops", "--filter", "cbam_channel_mlp", "--repeat", "1", "--batch", "1"];
    let dir = scratch("a-folder");
    std::fs::create_dir_all(&dir).unwrap();
    fails_with(&with(&quick, &["--plot", dir.to_str().unwrap()]), &["--plot", "not a regular file"]);
    fails_with(&with(&quick, &["--csv", "/dev/null"]), &["--csv", "not a regular file"]);
    fails_with(&with(&quick, &["--plot", "/no/such/folder/p.svg"]), &["--plot", "does not exist"]);
    let report = scratch("same.json");
    let (r, also) = (report.to_str().unwrap(), dir.join("..").join("same.json"));
    fails_with(&with(&quick, &["--json", r, "--csv", also.to_str().unwrap()]), &["--csv", "also the --json output"]);
    assert!(dir.is_dir() && !report.exists());
}

#[test]
fn a_tiny_run_writes_json_csv_and_svg_and_compares_with_itself() {
    let _gpu = gpu_or_skip!();
    let (json, csv, svg) = (scratch("run.json"), scratch("run.csv"), scratch("run.svg"));
    let args = ["--suite", "ops", "--filter", "cbam_channel_mlp", "--repeat", "2", "--batch", "1", "--seed", "3"];
    let out = glimpse(&[&args[..], &["--json", json.to_str().unwrap()], &["--csv", csv.to_str().unwrap()]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("cbam_channel_mlp") && stdout.contains("ceilings:"), "{stdout}");

    let report = Report::read(&json).expect("the JSON should parse back");
    assert_eq!((report.schema.as_str(), report.tool.as_str()), (SCHEMA, "glimpse"));
    assert!(!report.adapter.name.is_empty() && report.version.contains("wgpu 30."), "{report:?}");
    let row = report.workloads.iter().find(|r| r.name == "cbam_channel_mlp").expect("the filtered op ran");
    assert_eq!(row.status, Status::Ok, "{row:?}");
    assert_eq!((row.repeats, row.dispatches, row.checked_on.as_str()), (2, Some(1), "full"));
    assert!(row.median_ms.is_some_and(|m| m > 0.0) && row.gflops.is_some() && row.max_error.is_some(), "{row:?}");
    assert!(report.ceilings.stream_gbps.is_some() && report.ceilings.gemm_gflops.is_some(), "{:?}", report.ceilings);
    // Its pipeline was compiled first by this row (the calibration rows use others): listed with its cost.
    let compiled: Vec<&str> = row.compiles.iter().map(|c| c.pipeline.as_str()).collect();
    assert_eq!(compiled, ["cbam_channel_mlp_vec4"], "{row:?}");
    assert!(row.compiles[0].first_run_ms.is_some() && row.compile_ms <= row.cold_ms, "{row:?}");
    assert!(stdout.contains("-- pipeline compiles:") && stdout.contains("cold ms"), "{stdout}");
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(csv_text.starts_with("name,suite,shape") && csv_text.contains("cbam_channel_mlp,ops,1x256,auto,ok"));

    let out =
        glimpse(&[&args[..], &["--compare", json.to_str().unwrap()], &["--plot", svg.to_str().unwrap()]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("before ms") && stdout.contains("ratio"), "{stdout}");
    let plot = std::fs::read_to_string(&svg).expect("the plot should be written");
    assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"), "{plot}");
    assert!(plot.contains("cbam_channel_mlp") && plot.contains("roofline"), "{plot}");
}

#[test]
fn a_plan_row_says_where_its_time_went_by_op_and_by_kernel() {
    let _gpu = gpu_or_skip!();
    let json = scratch("breakdown.json");
    let args = ["--suite", "blocks", "--filter", "timm.CbamModule", "--repeat", "2", "--batch", "1", "--seed", "5"];
    let out = glimpse(&[&["--verbose"][..], &args[..], &["--json", json.to_str().unwrap()]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    let report = Report::read(&json).expect("the JSON should parse back");
    let rows: Vec<&Row> = report.workloads.iter().filter(|r| r.suite == "blocks").collect();
    assert_eq!(rows.len(), 6, "three sizes, fused and unfused: {rows:?}");
    for row in rows {
        if row.timing != "gpu-timestamps" {
            // No per-dispatch times without timestamps (OpenGL): no breakdown, and none made up.
            assert!(row.time_by_op.is_empty() && row.time_by_kernel.is_empty(), "{row:?}");
            continue;
        }
        let (ops, kernels) = (&row.time_by_op, &row.time_by_kernel);
        // Every dispatch of the run counted once in each view, the same time in both.
        assert_eq!(ops.iter().map(|o| o.dispatches).sum::<usize>(), row.dispatches.unwrap(), "{row:?}");
        assert_eq!(kernels.iter().map(|k| k.dispatches).sum::<usize>(), row.dispatches.unwrap(), "{row:?}");
        let total: f64 = ops.iter().map(|o| o.ms).sum();
        let kernels_total: f64 = kernels.iter().map(|k| k.ms).sum();
        assert!((total - kernels_total).abs() <= 1e-9 * total.max(1.0), "{row:?}");
        assert!((ops.iter().map(|o| o.pct).sum::<f64>() - 100.0).abs() < 1e-6, "{row:?}");
        // Slowest first; the op names carry their shapes; the fused plan's named CBAM kernels are there.
        assert!(ops.windows(2).all(|w| w[0].ms >= w[1].ms) && kernels.windows(2).all(|w| w[0].ms >= w[1].ms));
        assert!(ops.iter().all(|o| o.nodes >= 1 && o.nodes <= o.dispatches && o.op.contains(' ')), "{ops:?}");
        assert!(ops.iter().any(|o| o.op.contains(&format!(" {} ", row.shape))), "an op on the block's input: {ops:?}");
        if row.variant == "fused" {
            assert!(kernels.iter().any(|k| k.kernel.starts_with("cbam_channel_mlp")), "{kernels:?}");
        }
        assert!(stdout.contains(&format!("-- where the time went: {}", row.label())), "{stdout}");
    }
}
