//! The `glimpse` binary as a user runs it: output files, exit codes, and a
//! clear one-line error (never a panic) for each bad input.

mod common;

use glimpse::tensorfile::TensorFile;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn glimpse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("glimpse runs")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails the test unless the run failed with an `error:` line containing `want`.
fn assert_fails_with(o: &Output, want: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "should fail: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains("error:") && err.contains(want), "stderr should mention '{want}': {err}");
}

#[test]
fn run_writes_the_output_and_maps() {
    let out = scratch("cbam.safetensors");
    let o = glimpse(&[
        "run",
        "--arch",
        "timm.CbamModule",
        "--weights",
        &fixture("timm.CbamModule.weights.safetensors"),
        "--input",
        &fixture("timm.CbamModule.io.safetensors"),
        "--output",
        out.to_str().unwrap(),
        "--maps",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = TensorFile::read(&out).unwrap();
    let want = TensorFile::read(Path::new(&fixture("timm.CbamModule.io.safetensors"))).unwrap();
    for (name, key) in [("y", "y"), ("channel", "map.channel"), ("spatial", "map.spatial")] {
        assert_eq!(file.get(name).unwrap().shape(), want.get(key).unwrap().shape(), "{name}");
    }
    assert_eq!(file.metadata.get("arch").map(String::as_str), Some("timm.CbamModule"));
}

#[test]
fn run_on_the_gpu_matches_the_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let (gpu_out, cpu_out) = (scratch("sk-gpu.safetensors"), scratch("sk-cpu.safetensors"));
    for (device, out) in [("gpu", &gpu_out), ("cpu", &cpu_out)] {
        let o = glimpse(&[
            "run",
            "--arch",
            "SKConv",
            "--arg",
            "stride=2",
            "--weights",
            &fixture("SKConv_M2_G4_s2.weights.safetensors"),
            "--input",
            &fixture("SKConv_M2_G4_s2.io.safetensors"),
            "--output",
            out.to_str().unwrap(),
            "--device",
            device,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (g, c) = (TensorFile::read(&gpu_out).unwrap(), TensorFile::read(&cpu_out).unwrap());
    let cmp = glimpse::check::compare(g.get("y").unwrap(), c.get("y").unwrap(), glimpse::check::OP_TOLERANCE);
    assert!(cmp.rel_l2 < glimpse::check::BLOCK_REL_L2, "{cmp:?}");
}

#[test]
fn bad_invocations_fail_with_a_clear_message() {
    let out = scratch("never.safetensors");
    let out = out.to_str().unwrap();
    let input = fixture("BasicBlock_s1.io.safetensors");
    let weights = fixture("BasicBlock_s1.weights.safetensors");
    // `glimpse run --arch BasicBlock --input IN` plus `extra`, writing to `out` unless extra names --output.
    let block = |extra: &[&str]| {
        let mut args = vec!["run", "--arch", "BasicBlock", "--input", &input];
        if !extra.contains(&"--output") {
            args.extend(["--output", out]);
        }
        args.extend(extra);
        glimpse(&args)
    };
    assert_fails_with(
        &glimpse(&["run", "--arch", "Nope", "--input", &input, "--output", out]),
        "unknown architecture 'Nope'",
    );
    assert_fails_with(
        &glimpse(&["run", "--arch", "BasicBlock", "--input", "/no/such/in.safetensors", "--output", out]),
        "/no/such/in.safetensors",
    );
    assert_fails_with(&block(&[]), "missing tensor 'conv1.weight'");
    assert_fails_with(&block(&["--weights", &weights, "--arg", "stride"]), "KEY=VALUE");
    // A weights file that is not safetensors at all.
    assert_fails_with(&block(&["--weights", &fixture("README.md")]), "not a valid safetensors file");
    assert_fails_with(
        &glimpse(&["run", "--arch", "NonLocal", "--input", &input, "--output", out, "--query", "3"]),
        "--query 3",
    );
    let unwritable = "/proc/glimpse-cannot-write-here.safetensors";
    assert_fails_with(&block(&["--weights", &weights, "--output", unwritable, "--device", "cpu"]), "cannot write");
    assert!(!Path::new(out).exists(), "no output file after a failed run");
    assert_fails_with(&glimpse(&["check", "--filter", "no-such-op"]), "no op matches");
}

#[test]
fn help_lists_every_architecture() {
    let o = glimpse(&["run", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for arch in glimpse::blocks::ARCHS {
        assert!(help.contains(arch.name), "run --help should list {}", arch.name);
    }
}
